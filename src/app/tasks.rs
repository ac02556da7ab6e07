//! The background tasks of `postured run` besides polling: alert delivery, history retention
//! and the reload of manual statuses written by other processes. Each receives the parts it
//! uses ([`Background`]), stops when the daemon's cancellation token fires and keeps no state
//! outside the store and the model runtime.

use std::sync::Arc;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use std::time::Duration;

use super::delivery::Delivery;
use super::model::ModelRuntime;
use crate::alerts::settings::AlertsConfig;
use crate::config::HistoryConfig;
use crate::metrics::Metrics;
use crate::store::Store;

/// What the background tasks use (see `super::App::background`).
#[derive(Clone)]
pub struct Background {
    /// The store (outbox, history, manual statuses).
    pub store: Arc<dyn Store>,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// `[alerts]`: notifiers, routes and delivery settings.
    pub alerts: AlertsConfig,
    /// `[history]`: retention.
    pub history: HistoryConfig,
    /// The model runtime whose manual statuses are reloaded.
    pub model: Arc<ModelRuntime>,
    /// `[model] manual_refresh`; zero: never.
    pub manual_refresh: Duration,
    /// `[store] health_interval`; zero: only when `/readyz` is asked.
    pub store_health_interval: Duration,
    /// `[store] health_timeout`.
    pub store_health_timeout: Duration,
}

/// Spawn on `tracker`: the outbox delivery task; the prune task when `[history] retention` is
/// not 0; the manual-status reload when `[model] manual_refresh` is not 0; the store health
/// check when `[store] health_interval` is not 0.
///
/// # Errors
///
/// The HTTP client for the notifiers cannot be built.
pub fn spawn(
    parts: Background,
    cancel: &CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<()> {
    let client = crate::http::http_client()?;
    let delivery = Delivery::new(
        parts.store.clone(),
        parts.alerts.clone(),
        client,
        parts.metrics.clone(),
    );
    tracker.spawn(delivery.run(cancel.clone()));
    if !parts.history.retention.is_zero() {
        tracker.spawn(prune_loop(
            parts.store.clone(),
            parts.history.clone(),
            parts.metrics.clone(),
            cancel.clone(),
        ));
    }
    if !parts.store_health_interval.is_zero() {
        tracker.spawn(store_health_loop(parts.clone(), cancel.clone()));
    }
    if !parts.manual_refresh.is_zero() {
        tracker.spawn(manual_reload_loop(parts, cancel.clone()));
    }
    Ok(())
}

/// Check the store's health at once, then every `[store] health_interval`, into
/// `postured_store_healthy` (`super::check_store`).
pub async fn store_health_loop(parts: Background, cancel: CancellationToken) {
    loop {
        let check = super::check_store(
            parts.store.as_ref(),
            &parts.metrics,
            parts.store_health_timeout,
        );
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = check => {}
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(parts.store_health_interval) => {}
        }
    }
}

/// Every `manual_refresh`, re-read the manual statuses from the store into the model runtime
/// (writes of `postured action set` from another process); the first read was at start-up.
pub async fn manual_reload_loop(parts: Background, cancel: CancellationToken) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(parts.manual_refresh) => {}
        }
        if let Err(e) = parts.model.refresh(parts.store.as_ref()).await {
            parts.metrics.observe_store_error(e.kind());
            tracing::warn!(error = %e, "reloading manual statuses failed; keeping the ones in memory");
        }
    }
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
                    tracing::info!(before = %before, polls = r.polls, poll_days = r.poll_days, signal_history = r.signal_history,
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
