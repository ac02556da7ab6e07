//! Tracing initialisation: once per process, text or JSON lines on stderr.
//!
//! Text lines carry ANSI colours only when stderr is a terminal: redirected to a file, a pipe or
//! the journal they are plain text.
//!
//! `RUST_LOG`, when set, wins over `[log] level`. Secrets never reach here: config types
//! redact them in `Debug`, and connector errors are secret-free by construction.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Install the global subscriber. Calling it twice is harmless (the second call is ignored).
pub fn init(cfg: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match cfg.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
