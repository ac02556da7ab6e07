//! The background tasks of `postured run` besides polling: alert delivery and history
//! retention. Both stop when the daemon's cancellation token fires and keep no state outside
//! the store.

use std::sync::Arc;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::config::HistoryConfig;
use super::outbox::Delivery;
use crate::app::App;
use crate::metrics::Metrics;
use crate::store::Store;

/// Spawn the outbox delivery task and, when `[history] retention` is not 0, the prune task, on
/// `tracker`.
pub fn spawn(
    app: &Arc<App>,
    cancel: &CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<()> {
    let client = crate::sources::http_client()?;
    let delivery = Delivery::new(
        app.store.clone(),
        app.config.alerts.clone(),
        client,
        app.metrics.clone(),
    );
    tracker.spawn(delivery.run(cancel.clone()));
    if !app.config.history.retention.is_zero() {
        tracker.spawn(prune_loop(
            app.store.clone(),
            app.config.history.clone(),
            app.metrics.clone(),
            cancel.clone(),
        ));
    }
    Ok(())
}

/// Prune history older than the retention every `prune_interval` (first run right away).
pub async fn prune_loop(
    store: Arc<dyn Store>,
    config: HistoryConfig,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) {
    loop {
        let retention =
            chrono::Duration::from_std(config.retention).unwrap_or(chrono::Duration::MAX);
        if let Some(before) = Utc::now().checked_sub_signed(retention) {
            match store.prune_history(before).await {
                Ok(r) if r.total() > 0 => {
                    tracing::info!(before = %before, polls = r.polls, signal_history = r.signal_history,
                        transitions = r.transitions, snapshots = r.snapshots, events = r.events,
                        notifications = r.notifications, "history pruned");
                }
                Ok(_) => {}
                Err(e) => {
                    metrics.observe_store_error(e.kind());
                    tracing::error!(error = %e, "pruning history failed; retrying next interval");
                }
            }
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(config.prune_interval) => {}
        }
    }
}
