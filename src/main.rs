//! The `postured` binary: parse the command line and hand over to [`postured::cli`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    postured::cli::main(postured::cli::Cli::parse())
}
