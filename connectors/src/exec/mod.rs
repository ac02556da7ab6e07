//! The generic `exec` connector: runs a configured program and reads signals from its stdout.
//!
//! Role: spawn `argv` directly (no shell: `argv[0]` is an absolute path, the other elements are
//! passed verbatim), in its own process group, with a cleared environment plus the
//! allow-listed variables, in the configured working directory, stdin `/dev/null`; read its
//! stdout (at most `max_stdout_bytes`) and keep the tail of its stderr (the last
//! `max_stderr_bytes`); parse stdout as JSON lines ([`signals`], one signal per line under the
//! connector's namespace `exec.<name>.`). A non-zero exit (classified by [`EX_TEMPFAIL`] and
//! [`EX_NOPERM`], else `other`), a timeout, an oversized output, a
//! line that does not parse or a key outside the namespace is one [`CollectionError`] (its
//! message ends with the stderr tail) and one gap on `exec.<name>.`; no signal of that run is
//! kept. The whole process group is killed (`SIGKILL`) when the run ends, on timeout, on an
//! oversized output and when the poll is dropped (the daemon's poll deadline or shutdown).
//!
//! [`settings`] owns the connector table's keys and [`EXEC`] is the kind's registry entry
//! (catalog `config/catalog/exec.toml`, empty: a connector's actions come from its own
//! `catalog` file). Documented in `docs/connectors/exec.md`.
//!
//! Must not: run a shell, search `PATH`, pass the daemon's environment beyond the allow-list,
//! log argument values or environment values, or leave a process of the group running.

pub mod settings;
pub mod signals;

use std::collections::VecDeque;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::signal::SnapshotBuilder;
use crate::{CollectionError, Connector, ErrorKind, PollContext, Snapshot};
pub use settings::{EXEC, ExecSettings};

/// Connector kind; signal keys are `exec.<name>.…`.
pub const KIND: &str = "exec";

/// Default deadline of one run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default cap on stdout bytes read; more is a `too_large` error.
pub const DEFAULT_MAX_STDOUT_BYTES: u64 = 1 << 20;
/// Default length of the stderr tail kept for the error reason.
pub const DEFAULT_MAX_STDERR_BYTES: usize = 4096;
/// Default cap on signals (lines) of one run; more is a `too_large` error.
pub const DEFAULT_MAX_SIGNALS: usize = 10_000;

/// What to run and how (built from [`ExecSettings`]).
#[derive(Clone)]
pub struct ExecConfig {
    /// The connector's name: its signals are `exec.<name>.…`.
    pub name: String,
    /// Program (absolute path) and its arguments; no shell, no `PATH` search.
    pub argv: Vec<String>,
    /// The child's whole environment (allow-listed variables with the daemon's values, then
    /// `env_set`); values redacted in `Debug`.
    pub env: Vec<(String, SecretString)>,
    /// Working directory; `None` inherits the daemon's.
    pub working_dir: Option<PathBuf>,
    /// Deadline of one run (spawn to exit and end of output).
    pub timeout: Duration,
    /// Largest stdout read.
    pub max_stdout_bytes: u64,
    /// Length of the stderr tail kept.
    pub max_stderr_bytes: usize,
    /// Most signals of one run.
    pub max_signals: usize,
}

impl std::fmt::Debug for ExecConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecConfig")
            .field("name", &self.name)
            .field("program", &self.argv.first())
            .field("args", &self.argv.len().saturating_sub(1))
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("working_dir", &self.working_dir)
            .field("timeout", &self.timeout)
            .field("max_stdout_bytes", &self.max_stdout_bytes)
            .field("max_stderr_bytes", &self.max_stderr_bytes)
            .field("max_signals", &self.max_signals)
            .finish()
    }
}

impl ExecConfig {
    /// The signal namespace `exec.<name>.` (also the gap prefix).
    pub fn namespace(&self) -> String {
        format!("{KIND}.{}.", self.name)
    }
}

/// One configured program, polled by running it.
#[derive(Debug, Clone)]
pub struct ExecConnector {
    cfg: ExecConfig,
}

/// Kills a process group (`SIGKILL`) when dropped: at the end of a run, and when the poll
/// future is dropped mid-run (deadline, shutdown).
struct GroupKill(Option<Pid>);

impl GroupKill {
    fn kill(&self) {
        if let Some(pgid) = self.0 {
            // ESRCH (the group is already gone) is the normal case after a clean exit.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `sysexits.h` `EX_TEMPFAIL`: a temporary failure, try again later (the source throttled).
pub const EX_TEMPFAIL: i32 = 75;
/// `sysexits.h` `EX_NOPERM`: the program lacks a permission it needs at the source.
pub const EX_NOPERM: i32 = 77;

/// The class of a non-zero exit status: [`EX_TEMPFAIL`] is [`ErrorKind::Throttled`] (transient:
/// the scheduler backs off), [`EX_NOPERM`] is [`ErrorKind::Forbidden`]; any other status (or a
/// signal) is [`ErrorKind::Other`].
fn exit_kind(code: Option<i32>) -> ErrorKind {
    match code {
        Some(EX_TEMPFAIL) => ErrorKind::Throttled,
        Some(EX_NOPERM) => ErrorKind::Forbidden,
        _ => ErrorKind::Other,
    }
}

/// The bytes read from a stream, capped.
enum Capped {
    Complete(Vec<u8>),
    TooLarge,
}

/// Read `r` to its end, refusing more than `max` bytes.
async fn read_capped<R: AsyncRead + Unpin>(mut r: R, max: u64) -> std::io::Result<Capped> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok(Capped::Complete(out));
        }
        if out.len() as u64 + n as u64 > max {
            return Ok(Capped::TooLarge);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Read `r` to its end into `tail`, keeping only the last `max` bytes.
async fn read_tail<R: AsyncRead + Unpin>(mut r: R, tail: &mut VecDeque<u8>, max: usize) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            return;
        }
        tail.extend(&buf[..n]);
        let excess = tail.len().saturating_sub(max);
        tail.drain(..excess);
    }
}

/// The stderr tail as one printable line: lossy UTF-8, line breaks as ` | `, other control
/// characters as spaces, trimmed.
fn printable_tail(tail: &VecDeque<u8>) -> String {
    let bytes: Vec<u8> = tail.iter().copied().collect();
    let text = String::from_utf8_lossy(&bytes);
    let mut out = String::with_capacity(text.len());
    for line in text.trim().lines() {
        let line: String = line
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push_str(" | ");
        }
        out.push_str(line);
    }
    out
}

/// What a successful run (exit status 0 within the limits) produced.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// Everything the program wrote to stdout.
    pub stdout: Vec<u8>,
    /// The last `max_stderr_bytes` of its stderr, printable (line breaks as ` | `).
    pub stderr_tail: String,
}

/// How a run failed, before the stderr tail is added.
struct RunFailure {
    kind: ErrorKind,
    code: Option<String>,
    message: String,
}

impl RunFailure {
    fn new(kind: ErrorKind, code: Option<String>, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
        }
    }
}

impl ExecConnector {
    /// A connector running `cfg.argv`. Errors: an empty `argv`.
    pub fn new(cfg: ExecConfig) -> Result<Self, String> {
        if cfg.argv.is_empty() {
            return Err("argv is empty".into());
        }
        Ok(Self { cfg })
    }

    /// The connector's configuration.
    pub fn config(&self) -> &ExecConfig {
        &self.cfg
    }

    fn program(&self) -> &str {
        self.cfg.argv.first().map_or("", String::as_str)
    }

    /// Run the program once: its stdout and stderr tail, or the classified failure (its
    /// message ends with the stderr tail).
    pub async fn run(&self) -> Result<RunOutput, CollectionError> {
        let mut tail = VecDeque::new();
        let result = self.run_inner(&mut tail).await;
        let stderr_tail = printable_tail(&tail);
        match result {
            Ok(stdout) => Ok(RunOutput {
                stdout,
                stderr_tail,
            }),
            Err(f) => Err(self.error(f.kind, f.code, f.message, &stderr_tail)),
        }
    }

    fn error(
        &self,
        kind: ErrorKind,
        code: Option<String>,
        message: String,
        stderr_tail: &str,
    ) -> CollectionError {
        let message = if stderr_tail.is_empty() {
            format!("{message} (stderr empty)")
        } else {
            format!("{message}; stderr: {stderr_tail}")
        };
        CollectionError {
            code,
            ..CollectionError::new(kind, self.program(), message)
        }
    }

    async fn run_inner(&self, tail: &mut VecDeque<u8>) -> Result<Vec<u8>, RunFailure> {
        let cfg = &self.cfg;
        let mut cmd = tokio::process::Command::new(self.program());
        cmd.args(&cfg.argv[1..])
            .env_clear()
            .envs(cfg.env.iter().map(|(k, v)| (k, v.expose_secret())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(dir) = &cfg.working_dir {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn().map_err(|e| {
            let kind = match e.kind() {
                std::io::ErrorKind::NotFound => ErrorKind::NotFound,
                std::io::ErrorKind::PermissionDenied => ErrorKind::Forbidden,
                _ => ErrorKind::Other,
            };
            RunFailure::new(kind, Some("spawn".into()), format!("cannot start: {e}"))
        })?;
        // The child leads its own group: its pid is the group id.
        let group = GroupKill(
            child
                .id()
                .and_then(|id| i32::try_from(id).ok())
                .map(Pid::from_raw),
        );
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(RunFailure::new(
                ErrorKind::Other,
                None,
                "no pipes to the child",
            ));
        };
        let max_stderr = cfg.max_stderr_bytes;
        let max_stdout = cfg.max_stdout_bytes;
        let run = async {
            let (out, ()) = tokio::join!(
                async {
                    let r = read_capped(stdout, max_stdout).await;
                    if matches!(r, Ok(Capped::TooLarge)) {
                        // Stop the program now: its stderr then ends too.
                        group.kill();
                    }
                    r
                },
                read_tail(stderr, tail, max_stderr),
            );
            let status = child.wait().await;
            (out, status)
        };
        let outcome = tokio::time::timeout(cfg.timeout, run).await;
        // Whatever happened, nothing of the group outlives the run. After a normal exit the
        // leader is reaped already: a process left in the group keeps the group id in use;
        // with none left, `killpg` finds no group (ESRCH) unless the kernel handed the same id
        // to a new group leader in these microseconds, which its cyclic pid allocation makes
        // practically impossible. On a timeout the leader is unreaped (a zombie at worst), so
        // the group id cannot be reused.
        group.kill();
        let Ok((out, status)) = outcome else {
            return Err(RunFailure::new(
                ErrorKind::Timeout,
                None,
                format!(
                    "did not finish within {}; its process group was killed",
                    humantime::format_duration(cfg.timeout)
                ),
            ));
        };
        let out = match out {
            Ok(Capped::Complete(out)) => out,
            Ok(Capped::TooLarge) => {
                return Err(RunFailure::new(
                    ErrorKind::TooLarge,
                    None,
                    format!("wrote more than {max_stdout} bytes to stdout; killed"),
                ));
            }
            Err(e) => {
                return Err(RunFailure::new(
                    ErrorKind::Other,
                    None,
                    format!("reading stdout: {e}"),
                ));
            }
        };
        let status =
            status.map_err(|e| RunFailure::new(ErrorKind::Other, None, format!("waiting: {e}")))?;
        if !status.success() {
            let (code, message) = match (status.code(), status.signal()) {
                (Some(c), _) => (format!("exit {c}"), format!("exited with status {c}")),
                (None, Some(s)) => (format!("signal {s}"), format!("killed by signal {s}")),
                (None, None) => ("exit".into(), format!("failed: {status}")),
            };
            return Err(RunFailure::new(
                exit_kind(status.code()),
                Some(code),
                message,
            ));
        }
        Ok(out)
    }

    /// Run the program and parse its output into signals (see the module docs).
    pub async fn collect(
        &self,
        cx: &PollContext,
    ) -> Result<Vec<crate::ObservedSignal>, CollectionError> {
        let out = self.run().await?;
        signals::parse_output(
            &out.stdout,
            &self.cfg.namespace(),
            cx.observed_at,
            self.cfg.max_signals,
        )
        .map_err(|e| {
            let (kind, code) = if e.too_many {
                (ErrorKind::TooLarge, "too_many_signals")
            } else if e.outside_namespace {
                (ErrorKind::Malformed, "namespace")
            } else {
                (ErrorKind::Malformed, "line")
            };
            self.error(
                kind,
                Some(code.into()),
                format!("stdout line {}: {}", e.line, e.message),
                &out.stderr_tail,
            )
        })
    }
}

#[async_trait]
impl Connector for ExecConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn poll(&self, cx: &PollContext) -> Snapshot {
        let mut b = SnapshotBuilder::new(cx.observed_at);
        match self.collect(cx).await {
            Ok(signals) => {
                for s in signals {
                    b.push_observed(s);
                }
            }
            Err(e) => b.gap(&self.cfg.namespace(), &e),
        }
        b.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysexits_statuses_are_classified() {
        assert_eq!(exit_kind(Some(75)), ErrorKind::Throttled);
        assert_eq!(exit_kind(Some(77)), ErrorKind::Forbidden);
        for other in [Some(1), Some(2), Some(64), Some(76), Some(78), None] {
            assert_eq!(exit_kind(other), ErrorKind::Other, "{other:?}");
        }
    }
}
