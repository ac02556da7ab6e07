//! The outbox delivery task: reads due notifications from the store, delivers them through
//! their notifier, and marks them delivered, retrying failures with capped exponential backoff
//! and jitter ([`retry_backoff`]).
//!
//! Guarantees:
//! - **At least once**: a row is marked delivered only after the receiver accepted it; a crash
//!   in between delivers it again after the restart (its dedup key is unchanged, so
//!   Alertmanager merges it and webhook receivers can drop it).
//! - **Restart-safe**: all state is in the store (rows, attempts, next attempt); nothing is
//!   kept in memory across rounds except the Alertmanager re-post clock.
//! - **Ordered per alert**: the store never hands out a notification while an earlier one of
//!   the same (notifier, alert) is pending, so a resolution never overtakes its firing post.
//! - A notifier that fails in a round is not tried again in that round (its other rows wait
//!   without spending attempts).
//!
//! Alertmanager forgets an alert whose `endsAt` passed; firing alerts are therefore re-posted
//! every `resend_interval` with `endsAt` four intervals ahead, until their resolution is
//! delivered.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use postured_connectors::backoff::{Backoff, Jitter};
use tokio_util::sync::CancellationToken;

use crate::alerts::notifiers::{self, DeliveryError, Timing};
use crate::alerts::settings::{AlertsConfig, DeliveryConfig, NotifierKind};
use crate::metrics::Metrics;
use crate::store::{OutboxEntry, Store, StoreError};

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundReport {
    /// Notifications delivered.
    pub delivered: u32,
    /// Failed attempts that will be retried.
    pub retried: u32,
    /// Notifications given up (permanent error, unknown notifier, or `max_attempts`).
    pub failed: u32,
}

/// The delivery task's parts.
pub struct Delivery {
    store: Arc<dyn Store>,
    config: AlertsConfig,
    client: reqwest::Client,
    metrics: Arc<Metrics>,
}

impl Delivery {
    /// Build the task from the app's store, the `[alerts]` configuration, the shared HTTP
    /// client and the metrics.
    pub fn new(
        store: Arc<dyn Store>,
        config: AlertsConfig,
        client: reqwest::Client,
        metrics: Arc<Metrics>,
    ) -> Self {
        for n in &config.notifiers {
            metrics.init_alert_notifier(&n.name);
        }
        Self {
            store,
            config,
            client,
            metrics,
        }
    }

    /// Run rounds every `delivery.interval` until `cancel` fires (the round in progress
    /// finishes its current request first; undelivered rows stay pending for the next start).
    pub async fn run(self, cancel: CancellationToken) {
        let interval = self.config.delivery.interval;
        let resend = self.config.delivery.resend_interval;
        let mut last_resend: Option<DateTime<Utc>> = None;
        loop {
            let now = Utc::now();
            if let Err(e) = self.round(now, Some(&cancel)).await {
                self.metrics.observe_store_error(e.kind());
                tracing::error!(error = %e, "alert delivery round failed; retrying next round");
            }
            let due = last_resend.is_none_or(|t| (now - t).to_std().unwrap_or_default() >= resend);
            if due && !cancel.is_cancelled() {
                last_resend = Some(now);
                if let Err(e) = self.resend_firing(now).await {
                    self.metrics.observe_store_error(e.kind());
                    tracing::error!(error = %e, "re-posting firing alerts failed");
                }
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(interval) => {}
            }
        }
        tracing::info!("alert delivery stopped");
    }

    /// One round: deliver every due notification (at most `batch_size`), then refresh the
    /// pending gauge. Stops early when `cancel` fires.
    pub async fn round(
        &self,
        now: DateTime<Utc>,
        cancel: Option<&CancellationToken>,
    ) -> Result<RoundReport, StoreError> {
        let d = &self.config.delivery;
        let due = self.store.due_notifications(now, d.batch_size).await?;
        let mut report = RoundReport::default();
        let mut failing: HashSet<String> = HashSet::new();
        for row in due {
            if cancel.is_some_and(CancellationToken::is_cancelled) {
                break;
            }
            if failing.contains(&row.notifier) {
                continue;
            }
            let Some(notifier) = self.config.notifier(&row.notifier) else {
                let msg = format!("notifier {:?} is no longer configured", row.notifier);
                self.store
                    .mark_attempt_failed(row.id, row.attempts + 1, None, &msg)
                    .await?;
                self.metrics.observe_alert_delivery(&row.notifier, "failed");
                tracing::error!(notifier = %row.notifier, id = row.id, "{msg}; notification dropped");
                report.failed += 1;
                continue;
            };
            let timing = self.timing(now);
            match notifiers::deliver(&self.client, notifier, &[&row.event], timing).await {
                Ok(()) => {
                    self.store.mark_delivered(row.id, Utc::now()).await?;
                    self.metrics
                        .observe_alert_delivery(&row.notifier, "success");
                    tracing::info!(
                        notifier = %row.notifier, kind = row.event.kind.as_str(),
                        dedup_key = %row.event.dedup_key(), attempts = row.attempts + 1,
                        "alert delivered"
                    );
                    report.delivered += 1;
                }
                Err(err) => {
                    failing.insert(row.notifier.clone());
                    if self.fail(&row, &err, now).await? {
                        report.retried += 1;
                    } else {
                        report.failed += 1;
                    }
                }
            }
        }
        let pending = self.store.pending_notifications().await?;
        self.metrics.set_outbox_pending(pending);
        Ok(report)
    }

    /// Record a failed attempt; `true` when it will be retried.
    async fn fail(
        &self,
        row: &OutboxEntry,
        err: &DeliveryError,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let d = &self.config.delivery;
        let attempts = row.attempts.saturating_add(1);
        let exhausted = d.max_attempts > 0 && attempts >= d.max_attempts;
        let retry_at = match err {
            DeliveryError::Retryable(_) if !exhausted => {
                let delay = retry_backoff(d).delay(attempts, None, &mut rand::rng());
                Some(now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX))
            }
            _ => None,
        };
        self.store
            .mark_attempt_failed(row.id, attempts, retry_at, &err.to_string())
            .await?;
        let outcome = if retry_at.is_some() {
            "retry"
        } else {
            "failed"
        };
        self.metrics.observe_alert_delivery(&row.notifier, outcome);
        match retry_at {
            Some(at) => tracing::warn!(
                notifier = %row.notifier, id = row.id, attempts, retry_at = %at,
                "alert delivery failed, will retry: {err}"
            ),
            None => tracing::error!(
                notifier = %row.notifier, id = row.id, attempts,
                "alert delivery failed, giving up: {err}"
            ),
        }
        Ok(retry_at.is_some())
    }

    /// Re-post every firing alert to every Alertmanager notifier (one request each).
    pub async fn resend_firing(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let timing = self.timing(now);
        for n in &self.config.notifiers {
            if n.kind != NotifierKind::Alertmanager {
                continue;
            }
            let firing = self.store.firing_alerts(&n.name).await?;
            if firing.is_empty() {
                continue;
            }
            // One alert per key (the newest row), already guaranteed by the store.
            let by_key: BTreeMap<String, &OutboxEntry> =
                firing.iter().map(|r| (r.event.alert_key(), r)).collect();
            let events: Vec<_> = by_key.values().map(|r| &r.event).collect();
            match notifiers::deliver(&self.client, n, &events, timing).await {
                Ok(()) => {
                    tracing::debug!(notifier = %n.name, alerts = events.len(), "firing alerts re-posted");
                }
                Err(e) => {
                    self.metrics.observe_alert_delivery(&n.name, "retry");
                    tracing::warn!(notifier = %n.name, "re-posting firing alerts failed: {e}");
                }
            }
        }
        Ok(())
    }

    fn timing(&self, now: DateTime<Utc>) -> Timing {
        let ahead = self.config.delivery.resend_interval * 4;
        Timing {
            now,
            firing_ends_at: now
                + chrono::Duration::from_std(ahead).unwrap_or(chrono::Duration::hours(1)),
        }
    }
}

/// The retry backoff of failed deliveries: `backoff_initial` doubling per failed attempt,
/// capped at `backoff_max`, with equal jitter (uniform in `[step/2, step]`). Equal rather than
/// full jitter: the spread only has to keep many rows failing together from retrying in
/// lockstep, while a retry almost at once would just spend one of `max_attempts` on a receiver
/// that is still down. Receivers send no `Retry-After` the outbox reads, so there is no floor.
pub fn retry_backoff(d: &DeliveryConfig) -> Backoff {
    Backoff {
        initial: d.backoff_initial,
        cap: d.backoff_max,
        jitter: Jitter::Equal,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let d = DeliveryConfig {
            backoff_initial: Duration::from_secs(5),
            backoff_max: Duration::from_secs(60),
            ..DeliveryConfig::default()
        };
        let b = retry_backoff(&d);
        let secs: Vec<u64> = (1..=6).map(|a| b.step(a).as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 60, 60]);
        assert_eq!(b.step(1000).as_secs(), 60);
        let mut rng = rand::rng();
        for _ in 0..100 {
            let j = b.jitter.apply(Duration::from_secs(10), &mut rng);
            assert!(
                j >= Duration::from_secs(5) && j <= Duration::from_secs(10),
                "{j:?}"
            );
        }
    }
}
