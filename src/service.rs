//! The service manager's protocol (systemd `sd_notify`): readiness, reloading, stopping, a
//! status line, and the watchdog.
//!
//! Role: thin calls over the `sd-notify` crate. Outside systemd (no `NOTIFY_SOCKET`) every call
//! does nothing, so the daemon behaves the same under `cargo run`, in a container or under
//! another supervisor. A failure to notify is logged, never fatal. No other module talks to
//! the service manager.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify the service manager");
    }
}

/// `READY=1` with a status line: the first poll round is done and the store answers (what
/// `/readyz` checks). Also ends a reload.
pub fn ready(status: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// `RELOADING=1`: a configuration reload (SIGHUP) started; [`ready`] ends it.
pub fn reloading() {
    notify(&[
        NotifyState::Reloading,
        NotifyState::Status("reloading the configuration"),
    ]);
}

/// `STOPPING=1`: shutdown started (in-flight polls are drained).
pub fn stopping() {
    notify(&[
        NotifyState::Stopping,
        NotifyState::Status("draining in-flight polls"),
    ]);
}

/// A status line (`STATUS=`), shown by `systemctl status`.
pub fn status(line: &str) {
    notify(&[NotifyState::Status(line)]);
}

/// When the unit sets `WatchdogSec=` (systemd passes `WATCHDOG_USEC`), send `WATCHDOG=1` every
/// half period until `cancel` fires, from a task of the daemon's runtime: a runtime that stops
/// scheduling tasks stops the pings, and systemd restarts the daemon. Returns at once without
/// a watchdog.
pub async fn watchdog(cancel: CancellationToken) {
    let Some(period) = sd_notify::watchdog_enabled() else {
        return;
    };
    let every = (period / 2).max(Duration::from_millis(100));
    tracing::info!(
        period_seconds = period.as_secs_f64(),
        "feeding the systemd watchdog"
    );
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => notify(&[NotifyState::Watchdog]),
        }
    }
}
