//! Prometheus metrics: daemon-wide families in one `prometheus` registry, per-tenant families
//! prepared at poll time (`tenants`), bounded label sets.
//!
//! Labels come only from configuration (tenant ids, connector ids: a kind, or `<kind>.<name>`
//! for named connectors), the catalog (action ids, categories) and fixed enums (outcomes,
//! error kinds, statuses); never from payload text.
//! Per-action series can be switched off (`[metrics] per_action_series = false`). Series of
//! actions or categories that disappear from a tenant's evaluation are removed. This module
//! only records; it never polls or reads the store.
//!
//! The families that scale with tenants x actions (scores, categories, per-action points and
//! regression/recovery counters, status counts, assessments, control counts) live in
//! [`tenants`]: a poll publishes them as one compact value per tenant, a scrape renders them
//! without waiting for polls. The registry keeps the rest (connector polls, store, alerts,
//! templates, build info): a few series per tenant and connector at most.

#[cfg(test)]
mod rendering_tests;
mod tenants;

use std::sync::atomic::{AtomicUsize, Ordering};

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::evaluation::TenantEvaluation;
use crate::model::plan::{AssessmentSummary, PlanFallback};
use crate::store::PollOutcome;

/// Every `reason` of `postured_auth_failures_total` (exported at 0 from the start): the
/// refusals of `crate::server::auth`.
pub const AUTH_FAILURE_REASONS: &[&str] = &[
    "missing",
    "malformed",
    "too_long",
    "unknown_token",
    "expired",
    "revoked",
    "jwt_invalid",
    "jwt_expired",
    "jwt_unknown_key",
    "jwt_algorithm",
    "jwks_unavailable",
    "no_role",
    "store_unavailable",
];

/// Every metric family postured exports.
pub struct Metrics {
    registry: Registry,
    /// The per-tenant families, outside the registry.
    tenants: tenants::TenantSeries,
    /// Length of the last rendering, to size the next one's buffer.
    last_render_len: AtomicUsize,
    polls_total: IntCounterVec,
    poll_errors_total: IntCounterVec,
    poll_duration: HistogramVec,
    last_success: GaugeVec,
    polls_in_flight: IntGauge,
    store_errors_total: IntCounterVec,
    alerts_delivered_total: IntCounterVec,
    alert_outbox_pending: IntGauge,
    signal_stale: IntGaugeVec,
    /// `postured_store_healthy`, `postured_store_health_failures_total`.
    store_health: StoreHealthMetrics,
    templates_skipped: IntGaugeVec,
    auth_failures_total: IntCounterVec,
    scoring_plan_fallbacks_total: IntCounterVec,
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    registry
        .register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    registry
        .register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

impl Metrics {
    /// Create the registry and every family. Panics only on a programming error (a duplicate or
    /// malformed metric definition), which the unit tests exercise.
    pub fn new(per_action_series: bool) -> Self {
        let registry = Registry::new();
        let r = &registry;
        let build_info = IntGaugeVec::new(
            Opts::new(
                "postured_build_info",
                "Build information; the value is always 1.",
            ),
            &["version"],
        )
        .expect("valid metric definition");
        registry
            .register(Box::new(build_info.clone()))
            .expect("metric registered once");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let poll_duration = HistogramVec::new(
            HistogramOpts::new(
                "postured_connector_poll_duration_seconds",
                "Duration of one connector poll, in seconds.",
            )
            .buckets(vec![
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
            ]),
            &["connector"],
        )
        .expect("valid metric definition");
        registry
            .register(Box::new(poll_duration.clone()))
            .expect("metric registered once");
        let polls_in_flight = IntGauge::new(
            "postured_connector_polls_in_flight",
            "Connector polls running now.",
        )
        .expect("valid metric definition");
        registry
            .register(Box::new(polls_in_flight.clone()))
            .expect("metric registered once");
        let alert_outbox_pending = IntGauge::new(
            "postured_alert_outbox_pending",
            "Alert notifications written to the outbox and not yet delivered.",
        )
        .expect("valid metric definition");
        registry
            .register(Box::new(alert_outbox_pending.clone()))
            .expect("metric registered once");
        let signal_stale = IntGaugeVec::new(
            Opts::new(
                "postured_signal_stale",
                "1 when at least one signal of a tenant's connector is past its expiry, else 0.",
            ),
            &["tenant", "connector"],
        )
        .expect("valid metric definition");
        registry
            .register(Box::new(signal_stale.clone()))
            .expect("metric registered once");
        let templates_skipped = IntGaugeVec::new(
            Opts::new(
                "postured_templates_skipped",
                "Templates imported into the store that the daemon left out at start-up, by reason (corrupt: the row no longer decodes; invalid: it fails validation).",
            ),
            &["reason"],
        )
        .expect("valid metric definition");
        registry
            .register(Box::new(templates_skipped.clone()))
            .expect("metric registered once");
        for reason in ["corrupt", "invalid"] {
            templates_skipped.with_label_values(&[reason]).set(0);
        }
        let auth_failures_total = counter(
            r,
            "postured_auth_failures_total",
            "Refused API authentications by reason (see AUTH_FAILURE_REASONS).",
            &["reason"],
        );
        for reason in AUTH_FAILURE_REASONS {
            auth_failures_total.with_label_values(&[reason]).inc_by(0);
        }
        let scoring_plan_fallbacks_total = counter(
            r,
            "postured_scoring_plan_fallbacks_total",
            "Tenant evaluations whose assessments were scored by building the full model instead of the scoring plan, by reason (see PlanFallback).",
            &["reason"],
        );
        for reason in PlanFallback::ALL {
            scoring_plan_fallbacks_total
                .with_label_values(&[reason.as_str()])
                .inc_by(0);
        }
        Self {
            tenants: tenants::TenantSeries::new(per_action_series),
            scoring_plan_fallbacks_total,
            last_render_len: AtomicUsize::new(0),
            templates_skipped,
            auth_failures_total,
            polls_total: counter(
                r,
                "postured_connector_polls_total",
                "Connector polls by outcome (success, partial, failure, timeout).",
                &["tenant", "connector", "outcome"],
            ),
            poll_errors_total: counter(
                r,
                "postured_connector_errors_total",
                "Endpoint collection errors by kind (forbidden, throttled, timeout, ...).",
                &["tenant", "connector", "kind"],
            ),
            poll_duration,
            last_success: gauge(
                r,
                "postured_connector_last_success_timestamp_seconds",
                "Unix time of the last poll that collected at least one endpoint.",
                &["tenant", "connector"],
            ),
            polls_in_flight,
            store_errors_total: counter(
                r,
                "postured_store_errors_total",
                "Failed store operations by kind; the poll's result is retried with the next poll.",
                &["kind"],
            ),
            alerts_delivered_total: counter(
                r,
                "postured_alerts_delivered_total",
                "Alert delivery attempts per notifier by outcome (success, retry, failed).",
                &["notifier", "outcome"],
            ),
            alert_outbox_pending,
            signal_stale,
            store_health: StoreHealthMetrics::new(r),
            registry,
        }
    }

    /// Export a tenant's assessments from the summaries a poll computes
    /// (`ModelRuntime::assess`; [`AssessmentSummary::of`] a report): points, progress and
    /// control counts per rollup status (one series per status, no per-control series),
    /// removing assessments that are gone.
    pub fn observe_assessment_summaries(&self, tenant: &str, summaries: &[AssessmentSummary]) {
        self.tenants.publish_assessments(tenant, summaries);
    }

    /// Count one tenant evaluation the scoring plan left to the full model
    /// (`postured_scoring_plan_fallbacks_total{reason}`).
    pub fn observe_scoring_plan_fallback(&self, reason: PlanFallback) {
        self.scoring_plan_fallbacks_total
            .with_label_values(&[reason.as_str()])
            .inc();
    }

    /// The underlying registry (for tests and extra collectors).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Record the end of one poll.
    pub fn observe_poll(
        &self,
        tenant: &str,
        connector: &str,
        outcome: PollOutcome,
        error_kinds: &[&str],
        duration_seconds: f64,
        finished_unix_seconds: f64,
    ) {
        self.polls_total
            .with_label_values(&[tenant, connector, outcome.as_str()])
            .inc();
        for kind in error_kinds {
            self.poll_errors_total
                .with_label_values(&[tenant, connector, kind])
                .inc();
        }
        self.poll_duration
            .with_label_values(&[connector])
            .observe(duration_seconds);
        if matches!(outcome, PollOutcome::Success | PollOutcome::Partial) {
            self.last_success
                .with_label_values(&[tenant, connector])
                .set(finished_unix_seconds);
        }
    }

    /// Guard counting one running poll; the gauge drops when the guard is dropped.
    pub fn poll_started(&self) -> InFlight<'_> {
        self.polls_in_flight.inc();
        InFlight(&self.polls_in_flight)
    }

    /// Count one refused API authentication; `reason` is one of [`AUTH_FAILURE_REASONS`].
    pub fn observe_auth_failure(&self, reason: &'static str) {
        debug_assert!(AUTH_FAILURE_REASONS.contains(&reason), "{reason}");
        self.auth_failures_total.with_label_values(&[reason]).inc();
    }

    /// Record a store failure.
    pub fn observe_store_error(&self, kind: &str) {
        self.store_errors_total.with_label_values(&[kind]).inc();
    }

    /// Count one debounced regression of an action.
    pub fn observe_regression(&self, tenant: &str, action: &str) {
        self.tenants.count(tenant, action, false);
    }

    /// Count one recovery of an action.
    pub fn observe_recovery(&self, tenant: &str, action: &str) {
        self.tenants.count(tenant, action, true);
    }

    /// Count one alert delivery attempt; `outcome` is `success`, `retry` or `failed`.
    pub fn observe_alert_delivery(&self, notifier: &str, outcome: &str) {
        self.alerts_delivered_total
            .with_label_values(&[notifier, outcome])
            .inc();
    }

    /// Create a notifier's delivery series at 0 (every outcome), so rates and `increase()` see
    /// the first failure.
    pub fn init_alert_notifier(&self, notifier: &str) {
        for outcome in ["success", "retry", "failed"] {
            let _ = self
                .alerts_delivered_total
                .with_label_values(&[notifier, outcome]);
        }
    }

    /// Set how many stored templates were left out at start-up for `reason` (`corrupt` or
    /// `invalid`).
    pub fn set_templates_skipped(&self, reason: &str, skipped: usize) {
        self.templates_skipped
            .with_label_values(&[reason])
            .set(i64::try_from(skipped).unwrap_or(i64::MAX));
    }

    /// Set the number of undelivered outbox rows.
    pub fn set_outbox_pending(&self, pending: i64) {
        self.alert_outbox_pending.set(pending);
    }

    /// Set whether a tenant's connector has at least one expired signal (0/1).
    pub fn set_signal_stale(&self, tenant: &str, connector: &str, stale: bool) {
        self.signal_stale
            .with_label_values(&[tenant, connector])
            .set(i64::from(stale));
    }

    /// Export a tenant's score, categories, actions and status counts, removing series that are
    /// no longer part of the evaluation.
    pub fn observe_evaluation(&self, eval: &TenantEvaluation) {
        self.tenants.publish_evaluation(eval);
    }

    /// Text exposition format, whole (what `/metrics` serves, in [`Metrics::render_chunks`]).
    pub fn render(&self) -> String {
        let mut text = String::new();
        self.render_chunks(usize::MAX, &mut |c| {
            if text.is_empty() {
                text = c;
            } else {
                text.push_str(&c);
            }
        });
        text
    }

    /// Text exposition format in chunks of at least `chunk` bytes (each ends at a line's end;
    /// the last may be shorter), handed to `sink` in order: the registry's families (encoded
    /// by the `prometheus` crate), then the per-tenant families. Takes the per-tenant map's
    /// lock only to copy its pointers, so a rendering never waits for a poll and each tenant
    /// is as one publish left it; with `chunk` = `usize::MAX` the sink gets one chunk. Tens of
    /// milliseconds for a large fleet: call it off the async workers.
    pub fn render_chunks(&self, chunk: usize, sink: &mut dyn FnMut(String)) {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        let mut text = String::from_utf8(buf).unwrap_or_default();
        text.reserve(self.last_render_len.load(Ordering::Relaxed).min(chunk));
        let mut total = 0;
        self.tenants.render(text, chunk, &mut |c| {
            total += c.len();
            sink(c);
        });
        self.last_render_len.store(total, Ordering::Relaxed);
    }
}

/// The store health families (`Store::check_health`, run by `/readyz` and every
/// `[store] health_interval`).
struct StoreHealthMetrics {
    healthy: IntGauge,
    failures: IntCounterVec,
}

/// Reasons of a failed store health check: the store error kinds a check can end in, and
/// `timeout` (past `[store] health_timeout`). Their series exist from the start, at 0.
const STORE_HEALTH_FAILURES: [&str; 3] = ["database", "file_replaced", "timeout"];

impl StoreHealthMetrics {
    fn new(registry: &Registry) -> Self {
        let healthy = IntGauge::new(
            "postured_store_healthy",
            "1 when the last store health check passed (the database file is the one opened \
            and a write probe committed), else 0 (also before the first check).",
        )
        .expect("valid metric definition");
        registry
            .register(Box::new(healthy.clone()))
            .expect("metric registered once");
        let failures = counter(
            registry,
            "postured_store_health_failures_total",
            "Failed store health checks by reason (database, file_replaced, timeout, ...).",
            &["reason"],
        );
        for reason in STORE_HEALTH_FAILURES {
            let _ = failures.with_label_values(&[reason]);
        }
        StoreHealthMetrics { healthy, failures }
    }
}

impl Metrics {
    /// Record a store health check: `None` when it passed, else the reason of its failure (a
    /// store error kind, or `timeout`).
    pub fn observe_store_health(&self, failure: Option<&str>) {
        let h = &self.store_health;
        h.healthy.set(i64::from(failure.is_none()));
        if let Some(reason) = failure {
            h.failures.with_label_values(&[reason]).inc();
        }
    }
}

/// Decrements the in-flight gauge on drop.
pub struct InFlight<'a>(&'a IntGauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluation::{ActionResult, ImplementationStatus, ScoreSummary, TestStatus};
    use crate::model::plan::CONTROL_STATUS_ORDER;
    use crate::model::report::{AssessmentReport, ControlStatus};

    fn action(id: &str, achieved: f64) -> ActionResult {
        ActionResult {
            action_id: id.into(),
            title: id.into(),
            category: "Identity".into(),
            solution: "Microsoft Entra ID".into(),
            implementation_status: ImplementationStatus::Implemented,
            test_status: TestStatus::Passed,
            credit: 1.0,
            points: 27,
            points_achieved: achieved,
            points_possible: 27.0,
            testing_logic: "true".into(),
            reason: None,
            cause: None,
            signals: vec![],
        }
    }

    fn eval(actions: Vec<ActionResult>) -> TenantEvaluation {
        TenantEvaluation {
            tenant: "t1".into(),
            evaluated_at: chrono::Utc::now(),
            actions,
            score: ScoreSummary {
                points_achieved: 27.0,
                points_possible: 54.0,
                ratio: 0.5,
            },
            categories: vec![(
                "Identity".into(),
                ScoreSummary {
                    points_achieved: 27.0,
                    points_possible: 54.0,
                    ratio: 0.5,
                },
            )],
        }
    }

    #[test]
    fn exports_score_and_removes_vanished_actions() {
        let m = Metrics::new(true);
        m.observe_evaluation(&eval(vec![action("a", 27.0), action("b", 0.0)]));
        let text = m.render();
        assert!(text.contains("postured_compliance_score_ratio{tenant=\"t1\"} 0.5"));
        assert!(text.contains("postured_action_points_achieved{action=\"b\",tenant=\"t1\"} 0"));
        assert!(text.contains("postured_build_info{version="));
        m.observe_evaluation(&eval(vec![action("a", 27.0)]));
        let text = m.render();
        assert!(!text.contains("action=\"b\""), "{text}");
    }

    fn assessment(id: &str, statuses: &[ControlStatus]) -> AssessmentSummary {
        AssessmentSummary::of(&AssessmentReport {
            id: id.into(),
            tenant: "t1".into(),
            group: "default".into(),
            template_id: "tpl".into(),
            template_title: "Template".into(),
            certification: "Cert".into(),
            generated_at: chrono::DateTime::UNIX_EPOCH,
            score: ScoreSummary {
                points_achieved: 3.0,
                points_possible: 12.0,
                ratio: 0.25,
            },
            status: crate::model::report::AssessmentStatus::InProgress,
            progress: 0.5,
            automated_points_ratio: 0.0,
            controls: statuses
                .iter()
                .enumerate()
                .map(|(i, s)| crate::model::report::ControlReport {
                    id: format!("C-{i}"),
                    family: "F".into(),
                    title: "T".into(),
                    description: String::new(),
                    status: *s,
                    actions: Vec::new(),
                })
                .collect(),
            actions: Vec::new(),
        })
    }

    #[test]
    fn exports_assessments_and_removes_vanished_ones() {
        let m = Metrics::new(true);
        let a = assessment(
            "a1",
            &[
                ControlStatus::Passed,
                ControlStatus::Passed,
                ControlStatus::Failed,
            ],
        );
        m.observe_assessment_summaries("t1", &[a.clone(), assessment("a2", &[])]);
        let text = m.render();
        for want in [
            "postured_assessment_points_achieved{assessment=\"a1\",tenant=\"t1\"} 3",
            "postured_assessment_points_possible{assessment=\"a1\",tenant=\"t1\"} 12",
            "postured_assessment_progress_ratio{assessment=\"a1\",tenant=\"t1\"} 0.5",
            "postured_assessment_automated_points_ratio{assessment=\"a1\",tenant=\"t1\"} 0",
            "postured_control_status{assessment=\"a1\",status=\"passed\",tenant=\"t1\"} 2",
            "postured_control_status{assessment=\"a1\",status=\"failed\",tenant=\"t1\"} 1",
            "postured_control_status{assessment=\"a1\",status=\"out_of_scope\",tenant=\"t1\"} 0",
            "postured_control_status{assessment=\"a2\",status=\"none\",tenant=\"t1\"} 0",
        ] {
            assert!(text.contains(want), "{want} missing in {text}");
        }
        // One series per status and assessment, never per control.
        let series = text
            .lines()
            .filter(|l| l.starts_with("postured_control_status{"))
            .count();
        assert_eq!(series, 2 * CONTROL_STATUS_ORDER.len(), "{text}");
        m.observe_assessment_summaries("t1", &[a]);
        let text = m.render();
        assert!(!text.contains("assessment=\"a2\""), "{text}");
        assert!(text.contains("assessment=\"a1\""));
    }

    #[test]
    fn store_health_is_a_gauge_and_failures_by_reason() {
        let m = Metrics::new(true);
        let text = m.render();
        assert!(text.contains("postured_store_healthy 0"), "{text}");
        assert!(text.contains("postured_store_health_failures_total{reason=\"timeout\"} 0"));
        m.observe_store_health(None);
        assert!(m.render().contains("postured_store_healthy 1"));
        m.observe_store_health(Some("file_replaced"));
        let text = m.render();
        assert!(text.contains("postured_store_healthy 0"));
        assert!(text.contains("postured_store_health_failures_total{reason=\"file_replaced\"} 1"));
    }

    #[test]
    fn per_action_series_can_be_switched_off() {
        let m = Metrics::new(false);
        m.observe_evaluation(&eval(vec![action("a", 27.0)]));
        assert!(!m.render().contains("postured_action_points_achieved{"));
    }

    #[test]
    fn poll_outcomes_and_in_flight() {
        let m = Metrics::new(true);
        {
            let _g = m.poll_started();
            assert!(m.render().contains("postured_connector_polls_in_flight 1"));
        }
        m.observe_poll(
            "t1",
            "msgraph",
            PollOutcome::Partial,
            &["forbidden"],
            0.2,
            1.0e9,
        );
        let text = m.render();
        assert!(text.contains("postured_connector_polls_in_flight 0"));
        assert!(text.contains(
            "postured_connector_polls_total{connector=\"msgraph\",outcome=\"partial\",tenant=\"t1\"} 1"
        ));
        assert!(text.contains("postured_connector_errors_total{connector=\"msgraph\",kind=\"forbidden\",tenant=\"t1\"} 1"));
        assert!(text.contains("postured_connector_last_success_timestamp_seconds"));
    }

    #[test]
    fn alert_families_are_exported() {
        let m = Metrics::new(true);
        m.observe_regression("t1", "a");
        m.observe_recovery("t1", "a");
        m.observe_alert_delivery("am", "success");
        m.set_outbox_pending(3);
        m.set_signal_stale("t1", "msgraph", true);
        m.init_alert_notifier("hook");
        let text = m.render();
        assert!(
            text.contains(
                "postured_alerts_delivered_total{notifier=\"hook\",outcome=\"failed\"} 0"
            )
        );
        assert!(text.contains("postured_action_regressions_total{action=\"a\",tenant=\"t1\"} 1"));
        assert!(text.contains("postured_action_recoveries_total{action=\"a\",tenant=\"t1\"} 1"));
        assert!(
            text.contains("postured_alerts_delivered_total{notifier=\"am\",outcome=\"success\"} 1")
        );
        assert!(text.contains("postured_alert_outbox_pending 3"));
        assert!(text.contains("postured_signal_stale{connector=\"msgraph\",tenant=\"t1\"} 1"));
    }
}
