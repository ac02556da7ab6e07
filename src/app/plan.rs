//! The alert part of the poll's plan and publish stages (`super::poll`): evaluation -> regression
//! detector -> routed events and detector states for `record_poll`; once the write succeeded,
//! the in-memory detector state, the regression metrics and the logs.
//!
//! Must not: write the store or deliver anything (the outbox task does).

use chrono::{DateTime, Utc};

use crate::alerts::regression::{ActionMeta, EventKind, InstanceState, detect};
use crate::alerts::settings::AlertsConfig;
use crate::evaluation::{Evaluator, TenantEvaluation};
use crate::metrics::Metrics;
use crate::signals::Signal;
use crate::store::{AlertWrites, RoutedEvent};

/// What one poll's evaluation produced for the alert ledger and the outbox.
#[derive(Debug, Clone, Default)]
pub struct AlertPlan {
    /// Events with the notifiers routing chose.
    pub routed: Vec<RoutedEvent>,
    /// Detector states that changed.
    pub states: Vec<(String, InstanceState)>,
}

impl AlertPlan {
    /// The writes for [`crate::store::PollRecord::alerts`].
    pub fn writes(&self) -> AlertWrites<'_> {
        AlertWrites {
            events: &self.routed,
            states: &self.states,
        }
    }
}

/// The catalog data the detector needs about an action (generated Secure Score actions are not
/// in the catalog: medium risk, no controls).
pub fn action_meta(evaluator: &Evaluator, action: &str) -> ActionMeta {
    match evaluator.action(action) {
        Some(def) => {
            let c = &def.controls;
            let controls = c
                .iso27001
                .iter()
                .map(|id| format!("iso27001:{id}"))
                .chain(c.nist_800_53.iter().map(|id| format!("nist_800_53:{id}")))
                .chain(c.gdpr.iter().map(|id| format!("gdpr:{id}")))
                .collect();
            ActionMeta {
                risk: def.risk,
                controls,
            }
        }
        None => ActionMeta::default(),
    }
}

/// Run the detector over an evaluation and route its events. `states` is `None` when the
/// tenant's detector state could not be loaded: nothing is detected then (detecting from an
/// empty state would overwrite the stored debounce windows).
pub fn alerts(
    config: &AlertsConfig,
    evaluator: &Evaluator,
    states: Option<&crate::evaluation::ActionMap<InstanceState>>,
    evaluation: &TenantEvaluation,
) -> AlertPlan {
    let Some(states) = states else {
        return AlertPlan::default();
    };
    let detection = detect(states, evaluation, &config.debounce(), &|id| {
        action_meta(evaluator, id)
    });
    let routed = detection
        .events
        .into_iter()
        .map(|event| RoutedEvent {
            notifiers: config.route(&event.tenant, event.kind, event.severity),
            event,
        })
        .collect();
    AlertPlan {
        routed,
        states: detection.states,
    }
}

/// After the poll was stored: advance the in-memory detector state, count regressions and
/// recoveries, and log every event.
pub fn applied(
    memory: Option<&mut crate::evaluation::ActionMap<InstanceState>>,
    plan: &AlertPlan,
    metrics: &Metrics,
) {
    if let Some(memory) = memory {
        for (id, s) in &plan.states {
            memory.insert(crate::signals::intern(id), s.clone());
        }
    }
    for r in &plan.routed {
        let e = &r.event;
        match e.kind {
            EventKind::Regression => metrics.observe_regression(&e.tenant, &e.action_id),
            EventKind::Recovery => metrics.observe_recovery(&e.tenant, &e.action_id),
            _ => {}
        }
        tracing::warn!(
            tenant = %e.tenant, action = %e.action_id, kind = e.kind.as_str(),
            severity = e.severity.as_str(), points_lost = e.points_lost,
            notifiers = ?r.notifiers, dedup_key = %e.dedup_key(),
            "{}", e.summary()
        );
    }
}

/// `true` when a signal of connector `kind` (keys `kind.*`) is past its expiry at `now`
/// (`postured_signal_stale`).
pub fn has_expired(signals: &[Signal], kind: &str, now: DateTime<Utc>) -> bool {
    signals.iter().any(|s| {
        s.expires_at <= now
            && s.key
                .strip_prefix(kind)
                .is_some_and(|rest| rest.starts_with('.'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_judged_per_connector_namespace() {
        let now = Utc::now();
        let s = |key: &str, ttl: i64| Signal {
            key: key.into(),
            value: crate::signals::SignalValue::Bool(true),
            observed_at: now,
            expires_at: now + chrono::Duration::seconds(ttl),
        };
        let signals = [s("msgraph.a", 10), s("msgraphx.b", -10)];
        assert!(!has_expired(&signals, "msgraph", now));
        assert!(has_expired(&signals, "msgraphx", now));
    }

    #[test]
    fn catalog_controls_are_prefixed_by_framework() {
        let evaluator = Evaluator::builtin().unwrap();
        let m = action_meta(&evaluator, "msgraph.security_defaults.baseline");
        assert!(m.controls.contains(&"iso27001:A.8.5".to_string()), "{m:?}");
        assert_eq!(
            action_meta(&evaluator, "securescore.X"),
            ActionMeta::default()
        );
    }
}
