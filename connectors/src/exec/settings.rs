//! `kind = "exec"`: the connector table's keys, their validation, and the kind's registry
//! entry ([`EXEC`]).
//!
//! Keys (besides `kind`, `schedule` and `poll_timeout`, which every connector has): `name`
//! (required; signals are `exec.<name>.…`), `argv` (required; `argv[0]` an absolute path, or a
//! relative path with a `/` resolved against the configuration file's directory; no shell, no
//! `PATH` search), `timeout` (default 60 s), `env` (names of the daemon's environment
//! variables passed to the program; nothing else is), `env_set` (literal variables),
//! `working_dir`, `catalog` (a catalog TOML file of this connector's actions), `max_stdout_bytes`
//! (1 MiB), `max_stderr_bytes` (4 KiB), `max_signals` (10 000). Documented in
//! `docs/connectors/exec.md` and `config/example.toml`.
//!
//! Must not: run anything (settings are parsed while loading configuration), or reveal an
//! environment value or an argument in `Debug` or a problem message.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::{
    DEFAULT_MAX_SIGNALS, DEFAULT_MAX_STDERR_BYTES, DEFAULT_MAX_STDOUT_BYTES, DEFAULT_TIMEOUT,
    ExecConfig, ExecConnector, KIND,
};
use crate::Connector;
use crate::settings::{
    BuildContext, ConfigProblem, ConnectorSettings, Kind, MAX_CATALOG_BYTES, SettingsContext,
    decode,
};

/// The kind's own catalog (`config/catalog/exec.toml`): no actions; each connector brings its
/// actions in its `catalog` file.
pub const CATALOG: &str = include_str!("../../../config/catalog/exec.toml");

/// Longest `name`.
pub const MAX_NAME_LEN: usize = 64;

/// The registry entry of the exec connector kind.
pub const EXEC: Kind<ExecSettings> = Kind {
    name: KIND,
    catalog: CATALOG,
    parse: ExecSettings::parse,
};

/// `kind = "exec"` settings, validated; environment values read from the daemon's
/// environment at load time.
#[derive(Clone)]
pub struct ExecSettings {
    /// Run configuration.
    pub config: ExecConfig,
    /// The connector's catalog file (read by the daemon with the other catalogs).
    pub catalog: Option<PathBuf>,
}

impl fmt::Debug for ExecSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecSettings")
            .field("config", &self.config)
            .field("catalog", &self.catalog)
            .finish()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExec {
    name: String,
    argv: Vec<String>,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    timeout: Duration,
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    env_set: BTreeMap<String, String>,
    #[serde(default)]
    working_dir: Option<PathBuf>,
    #[serde(default)]
    catalog: Option<PathBuf>,
    #[serde(default = "default_max_stdout_bytes")]
    max_stdout_bytes: u64,
    #[serde(default = "default_max_stderr_bytes")]
    max_stderr_bytes: usize,
    #[serde(default = "default_max_signals")]
    max_signals: usize,
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}
fn default_max_stdout_bytes() -> u64 {
    DEFAULT_MAX_STDOUT_BYTES
}
fn default_max_stderr_bytes() -> usize {
    DEFAULT_MAX_STDERR_BYTES
}
fn default_max_signals() -> usize {
    DEFAULT_MAX_SIGNALS
}

fn valid_env_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['=', '\0'])
}

impl ExecSettings {
    /// Decode and validate a connector table (common keys removed): `name` is `[a-z0-9_]+`
    /// (at most 64), `argv` is non-empty with an absolute program path (or a relative one
    /// containing `/`, resolved against the configuration file's directory) and no NUL byte,
    /// the timeout and limits are positive, variable names are valid and not both in `env` and
    /// `env_set`, and the `catalog` file is readable (at most 1 MiB). Every problem is
    /// returned at once.
    pub fn parse(
        table: toml::Table,
        cx: &SettingsContext<'_>,
    ) -> Result<ExecSettings, Vec<ConfigProblem>> {
        let raw: RawExec = decode(cx.path, toml::Value::Table(table)).map_err(|p| vec![p])?;
        let mut problems = Vec::new();
        if raw.name.is_empty()
            || raw.name.len() > MAX_NAME_LEN
            || !raw
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            problems.push(ConfigProblem::new(
                cx.key("name"),
                format!("must be 1 to {MAX_NAME_LEN} of a-z 0-9 _ (signals are exec.<name>.…)"),
            ));
        }
        let mut argv = raw.argv;
        match argv.first_mut() {
            None => problems.push(ConfigProblem::new(
                cx.key("argv"),
                "must name a program: [\"/path/to/program\", \"arg\", ...]",
            )),
            Some(program) => {
                let p = PathBuf::from(program.as_str());
                if p.is_absolute() {
                    // Used as written.
                } else if program.contains('/') {
                    *program = cx.resolve_path(p).to_string_lossy().into_owned();
                } else {
                    problems.push(ConfigProblem::new(
                        cx.key("argv[0]"),
                        "must be a path (absolute, or relative to the configuration file's \
                         directory with a `/`): the program is not searched in PATH",
                    ));
                }
            }
        }
        if let Some(i) = argv.iter().position(|a| a.contains('\0')) {
            problems.push(ConfigProblem::new(
                cx.key(&format!("argv[{i}]")),
                "contains a NUL byte",
            ));
        }
        if raw.timeout.is_zero() {
            problems.push(ConfigProblem::new(cx.key("timeout"), "must be positive"));
        }
        for (key, zero) in [
            ("max_stdout_bytes", raw.max_stdout_bytes == 0),
            ("max_stderr_bytes", raw.max_stderr_bytes == 0),
            ("max_signals", raw.max_signals == 0),
        ] {
            if zero {
                problems.push(ConfigProblem::new(cx.key(key), "must be positive"));
            }
        }
        let mut env = Vec::new();
        for (i, name) in raw.env.iter().enumerate() {
            if !valid_env_name(name) {
                problems.push(ConfigProblem::new(
                    cx.key(&format!("env[{i}]")),
                    "not a variable name",
                ));
            } else if raw.env_set.contains_key(name) {
                problems.push(ConfigProblem::new(
                    cx.key(&format!("env[{i}]")),
                    format!("{name} is also set in env_set"),
                ));
            } else if let Some(v) = (cx.env)(name) {
                env.push((name.clone(), SecretString::from(v)));
            }
        }
        for (name, value) in &raw.env_set {
            if !valid_env_name(name) || value.contains('\0') {
                problems.push(ConfigProblem::new(
                    cx.key(&format!("env_set.{name}")),
                    "not a variable name, or the value contains a NUL byte",
                ));
            } else {
                env.push((name.clone(), SecretString::from(value.clone())));
            }
        }
        // Only checked here (a file of at most MAX_CATALOG_BYTES): the daemon reads it once,
        // with every other catalog.
        let catalog = raw.catalog.map(|p| cx.resolve_path(p));
        if let Some(p) = &catalog {
            match std::fs::metadata(p) {
                Ok(m) if m.is_file() && m.len() <= MAX_CATALOG_BYTES => {}
                Ok(_) => problems.push(ConfigProblem::new(
                    cx.key("catalog"),
                    format!(
                        "{} is not a file of at most {MAX_CATALOG_BYTES} bytes",
                        p.display()
                    ),
                )),
                Err(e) => problems.push(ConfigProblem::new(
                    cx.key("catalog"),
                    format!("cannot read {}: {e}", p.display()),
                )),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(ExecSettings {
            config: ExecConfig {
                name: raw.name,
                argv,
                env,
                working_dir: raw.working_dir.map(|d| cx.resolve_path(d)),
                timeout: raw.timeout,
                max_stdout_bytes: raw.max_stdout_bytes,
                max_stderr_bytes: raw.max_stderr_bytes,
                max_signals: raw.max_signals,
            },
            catalog,
        })
    }
}

impl ConnectorSettings for ExecSettings {
    fn build(&self, _cx: &BuildContext<'_>) -> Result<Arc<dyn Connector>, String> {
        Ok(Arc::new(ExecConnector::new(self.config.clone())?))
    }

    fn catalog(&self) -> Option<PathBuf> {
        self.catalog.clone()
    }

    fn instance(&self) -> Option<&str> {
        Some(&self.config.name)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ExecSettings, Vec<ConfigProblem>> {
        let cx = SettingsContext {
            path: "tenants[0].connectors[0]",
            tenant: "t",
            env,
            base_dir: Some(std::path::Path::new("/etc/postured")),
            resolve_secrets: true,
        };
        ExecSettings::parse(text.parse().unwrap(), &cx)
    }

    fn parse(text: &str) -> Result<ExecSettings, Vec<ConfigProblem>> {
        parse_with(text, &|_| None)
    }

    #[test]
    fn defaults() {
        let s = parse("name = \"backup\"\nargv = [\"/usr/bin/check\", \"--json\"]").unwrap();
        let c = &s.config;
        assert_eq!(c.namespace(), "exec.backup.");
        assert_eq!(c.argv, ["/usr/bin/check", "--json"]);
        assert_eq!(c.timeout, Duration::from_secs(60));
        assert_eq!(c.max_stdout_bytes, 1 << 20);
        assert_eq!(c.max_stderr_bytes, 4096);
        assert_eq!(c.max_signals, 10_000);
        assert!(c.env.is_empty());
        assert_eq!(c.working_dir, None);
        assert!(s.catalog.is_none());
    }

    #[test]
    fn every_problem_with_its_path() {
        let problems = parse(
            "name = \"Bad-Name\"\nargv = [\"sh\"]\ntimeout = \"0s\"\nmax_stdout_bytes = 0\n\
             max_signals = 0\nenv = [\"A=B\", \"X\"]\nenv_set = { X = \"1\" }\n\
             catalog = \"/nonexistent/catalog.toml\"",
        )
        .unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        let base = "tenants[0].connectors[0]";
        for key in [
            "name",
            "argv[0]",
            "timeout",
            "max_stdout_bytes",
            "max_signals",
            "env[0]",
            "env[1]",
            "catalog",
        ] {
            assert!(
                paths.contains(&format!("{base}.{key}").as_str()),
                "{key}: {problems:?}"
            );
        }
        let problems = parse("name = \"x\"\nargv = []").unwrap_err();
        assert_eq!(problems[0].path, format!("{base}.argv"));
        let problems = parse("name = \"x\"\nargv = [\"/bin/true\"]\nshell = true").unwrap_err();
        assert_eq!(problems[0].path, format!("{base}.shell"));
    }

    #[test]
    fn relative_paths_resolve_against_the_configuration_directory() {
        let s = parse("name = \"x\"\nargv = [\"./bin/check\"]\nworking_dir = \"work\"").unwrap();
        assert_eq!(s.config.argv[0], "/etc/postured/./bin/check");
        assert_eq!(
            s.config.working_dir.as_deref(),
            Some(std::path::Path::new("/etc/postured/work"))
        );
    }

    #[test]
    fn environment_values_are_read_once_and_never_shown() {
        let env = |k: &str| (k == "TOKEN").then(|| "s3cret".to_owned());
        let s = parse_with(
            "name = \"x\"\nargv = [\"/bin/true\", \"--password=hunter2\"]\n\
             env = [\"TOKEN\", \"UNSET\"]\nenv_set = { LANG = \"C.UTF-8\" }",
            &env,
        )
        .unwrap();
        let names: Vec<&str> = s.config.env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["TOKEN", "LANG"]);
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("s3cret") && !debug.contains("hunter2"),
            "{debug}"
        );
        assert!(!debug.contains("C.UTF-8"), "{debug}");
    }
}
