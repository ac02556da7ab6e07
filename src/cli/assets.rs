//! `postured generate-assets DIR`: the manual pages and shell completions generated from the
//! command line's own definition (clap), for packages (`packaging/build-deb.sh`).
//!
//! Writes `DIR/man/postured.1` and one `postured-<command>.1` per command (`clap_mangen`), and
//! `DIR/completions/postured.bash`, `_postured` (zsh), `postured.fish` (`clap_complete`).

use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;

/// Generate every asset into `dir` (created when missing). Errors: the directory or a file
/// cannot be written.
pub fn generate(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut written = Vec::new();
    let man = dir.join("man");
    std::fs::create_dir_all(&man)?;
    let cmd = Cli::command();
    let page = |cmd: clap::Command, file: &Path| -> std::io::Result<()> {
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut out)?;
        std::fs::write(file, out)
    };
    let main = man.join("postured.1");
    page(cmd.clone(), &main)?;
    written.push(main);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("postured-{}", sub.get_name());
        let file = man.join(format!("{name}.1"));
        page(sub.clone().name(name), &file)?;
        written.push(file);
    }
    let completions = dir.join("completions");
    std::fs::create_dir_all(&completions)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = Cli::command();
        written.push(clap_complete::generate_to(
            shell,
            &mut cmd,
            "postured",
            &completions,
        )?);
    }
    Ok(written)
}
