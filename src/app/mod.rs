//! The running daemon: the shared pieces, each tenant's in-memory state, the poll pipeline
//! ([`poll`]), the model at run time ([`model`]) and the background tasks ([`tasks`],
//! [`delivery`]).
//!
//! [`App`] owns the shared pieces (store, evaluator, metrics, connectors, model runtime) and
//! each tenant's in-memory state (latest signals, gaps, last stored action states, regression
//! detector state, last evaluation and the model snapshot it was assessed with), loaded from the store on first use
//! so that a restart resumes where it stopped. Polls of one tenant are serialised by that
//! tenant's poll lock; different tenants never wait for each other. The tenant's state lock,
//! which the API's reads take too, is never held across store I/O: a poll loads and writes with
//! it released and takes it again to merge and publish, so a stalled database never blocks the
//! API. A store failure is logged and counted, never fatal: the action states it could not
//! persist stay "unwritten", so the next successful poll writes the transitions again and no
//! history is lost. [`check_store`] is the store's health as `/readyz` and the metrics see it.
//!
//! Must not: decide timing (the scheduler calls [`App::poll`]) or hold SQL.

pub mod delivery;
pub mod evidence;
pub mod model;
pub mod plan;
pub mod poll;
pub mod tasks;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use postured_connectors::{CollectionError, Connector};
use tokio::sync::Mutex;

use crate::config::{Config, ConnectorConfig};
use crate::evaluation::{ActionState, Evaluator, TenantEvaluation};
use crate::metrics::Metrics;
use crate::signals::{Signal, SignalGap};
use crate::store::{PollOutcome, Store};

/// Run the store's health check ([`Store::check_health`]: the database file is still the one
/// opened, a write probe commits) within `timeout`, export it (`postured_store_healthy`,
/// `postured_store_health_failures_total`) and log a failure. `Err` carries the bounded reason:
/// a store error kind (`database`, `file_replaced` ...) or `timeout`.
pub async fn check_store(
    store: &dyn Store,
    metrics: &Metrics,
    timeout: Duration,
) -> Result<(), &'static str> {
    let reason = match tokio::time::timeout(timeout, store.check_health()).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => {
            tracing::error!(error = %e, kind = e.kind(), "store health check failed");
            Some(e.kind())
        }
        Err(_) => {
            tracing::error!(
                timeout_s = timeout.as_secs_f64(),
                "store health check did not finish in time"
            );
            Some("timeout")
        }
    };
    metrics.observe_store_health(reason);
    reason.map_or(Ok(()), Err)
}

/// One configured connector of one tenant, ready to poll.
pub struct ConnectorSlot {
    /// The connector's configuration (schedule, timeout, kind).
    pub config: ConnectorConfig,
    /// The connector itself.
    pub connector: Arc<dyn Connector>,
}

/// A tenant's connectors and in-memory state.
pub struct TenantRuntime {
    /// Tenant id.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// Connectors in configuration order.
    pub connectors: Vec<ConnectorSlot>,
    /// The catalog scopes of its actions ([`crate::config::TenantConfig::scopes`]).
    pub scopes: Vec<String>,
    /// Held for a whole poll of the tenant (store I/O included): polls of one tenant run one
    /// after the other, so each one plans against the last one's published state.
    poll: Mutex<()>,
    /// The tenant's in-memory state; held only for in-memory work, never across I/O.
    state: Mutex<TenantMemory>,
}

#[derive(Default)]
struct TenantMemory {
    loaded: bool,
    /// The latest signal per key, sorted by key (one per key: [`merge_signals`]): the signals
    /// `last` was evaluated with (a poll installs its merged signals with its evaluation).
    signals: Vec<Signal>,
    /// Gaps per connector id (`ConnectorConfig::id`), as `last` was evaluated with them.
    gaps: HashMap<String, Vec<SignalGap>>,
    /// Last *stored* state per action, keyed by the shared action id
    /// ([`crate::signals::intern`]).
    stored: crate::evaluation::ActionMap<ActionState>,
    /// The last evaluation without the signals each rule read ([`without_signals`]): those
    /// are evaluated again from `signals` and `gaps` when one tenant's evaluation is asked for
    /// ([`App::evaluation`]), not kept per tenant.
    last: Option<TenantEvaluation>,
    /// The model inputs (templates, manual statuses; shared, not copied) `last` was assessed
    /// with: its assessment reports are computed again from them when asked for
    /// ([`App::assessment_reports`]), not kept per tenant.
    snapshot: Option<model::ModelSnapshot>,
    /// Regression detector state per action as last stored; `None` until loaded.
    /// Keyed by the shared action id like `stored`.
    alert_state: Option<crate::evaluation::ActionMap<crate::alerts::InstanceState>>,
}

/// `base` with `newer` merged in, sorted by key with one signal per key: a key of `newer`
/// replaces the same key of `base` (of equal keys within `newer`, the last wins). `base` must
/// be sorted by key with unique keys (what this returns).
fn merge_signals(base: Vec<Signal>, mut newer: Vec<Signal>) -> Vec<Signal> {
    // Stable sort, then keep the last of each run of equal keys.
    newer.sort_by(|a, b| a.key.cmp(&b.key));
    newer.reverse();
    newer.dedup_by(|a, b| a.key == b.key);
    newer.reverse();
    if base.is_empty() {
        return newer;
    }
    let mut out = Vec::with_capacity(base.len() + newer.len());
    let mut newer = newer.into_iter().peekable();
    for b in base {
        while let Some(n) = newer.next_if(|n| n.key < b.key) {
            out.push(n);
        }
        match newer.next_if(|n| n.key == b.key) {
            Some(n) => out.push(n),
            None => out.push(b),
        }
    }
    out.extend(newer);
    // Kept until the next poll: give back the room reserved for keys that were replaced.
    out.shrink_to_fit();
    out
}

/// `evaluation` without the signals each action's rule read (every other field kept): the copy
/// a tenant keeps of its last evaluation.
fn without_signals(evaluation: &TenantEvaluation) -> TenantEvaluation {
    TenantEvaluation {
        tenant: evaluation.tenant.clone(),
        evaluated_at: evaluation.evaluated_at,
        actions: evaluation
            .actions
            .iter()
            .map(|a| crate::evaluation::ActionResult {
                action_id: a.action_id.clone(),
                title: a.title.clone(),
                category: a.category.clone(),
                solution: a.solution.clone(),
                implementation_status: a.implementation_status,
                test_status: a.test_status,
                credit: a.credit,
                points: a.points,
                points_achieved: a.points_achieved,
                points_possible: a.points_possible,
                testing_logic: a.testing_logic.clone(),
                reason: a.reason.clone(),
                cause: a.cause.clone(),
                signals: Vec::new(),
            })
            .collect(),
        score: evaluation.score,
        categories: evaluation.categories.clone(),
    }
}

/// What one poll produced.
#[derive(Debug, Clone)]
pub struct PollReport {
    /// How the poll ended.
    pub outcome: PollOutcome,
    /// Endpoint errors (empty on success).
    pub errors: Vec<CollectionError>,
    /// The tenant's evaluation after the poll.
    pub evaluation: TenantEvaluation,
    /// Whether the store accepted the write.
    pub stored: bool,
    /// Whether the catalog's rules ran in this poll; `false` when its inputs were those of the
    /// tenant's last evaluation, whose action results were reused (`evaluation`'s actions then
    /// carry no signals read: [`App::evaluation`] evaluates them again on demand).
    pub rules_ran: bool,
    /// Longest `Retry-After` any endpoint asked for.
    pub retry_after: Option<Duration>,
}

/// Shared application state.
pub struct App {
    /// The loaded configuration.
    pub config: Arc<Config>,
    /// The store.
    pub store: Arc<dyn Store>,
    /// The compiled catalog.
    pub evaluator: Arc<Evaluator>,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// Templates, assessments, groups and manual statuses (see `crate::assessments`).
    pub model: Arc<crate::app::model::ModelRuntime>,
    /// The pseudonyms of the automatic evidence: keyed by `[evidence] pseudonym_key`, else by
    /// a random key drawn at start and never stored (as `postured record` does).
    pub pseudonymiser: Arc<postured_connectors::pseudonym::Pseudonymiser>,
    tenants: Vec<Arc<TenantRuntime>>,
    /// Index of `tenants` by tenant id (the first of a duplicated id, as a scan would find).
    tenant_index: HashMap<String, usize>,
}

impl App {
    /// Assemble the app from already-built parts. `tenants` pairs each configured tenant with its
    /// connectors (see `crate::assembly::build_connectors`).
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        evaluator: Arc<Evaluator>,
        metrics: Arc<Metrics>,
        connectors: HashMap<String, Vec<ConnectorSlot>>,
    ) -> Self {
        let mut connectors = connectors;
        let tenants = config
            .tenants
            .iter()
            .map(|t| {
                Arc::new(TenantRuntime {
                    id: t.id.clone(),
                    name: t.name.clone(),
                    connectors: connectors.remove(&t.id).unwrap_or_default(),
                    scopes: t.scopes(),
                    poll: Mutex::new(()),
                    state: Mutex::new(TenantMemory::default()),
                })
            })
            .collect::<Vec<Arc<TenantRuntime>>>();
        let mut tenant_index = HashMap::with_capacity(tenants.len());
        for (i, t) in tenants.iter().enumerate() {
            tenant_index.entry(t.id.clone()).or_insert(i);
        }
        let (model, problems) = crate::app::model::ModelRuntime::new(&config, &evaluator);
        for p in problems {
            tracing::error!("template problem (template skipped): {p}");
        }
        let pseudonymiser = match &config.pseudonym_key {
            Some(key) => {
                use secrecy::ExposeSecret;
                postured_connectors::pseudonym::Pseudonymiser::with_key(
                    key.expose_secret().as_bytes(),
                )
            }
            None => postured_connectors::pseudonym::Pseudonymiser::random(),
        };
        Self {
            config,
            store,
            evaluator,
            metrics,
            model: Arc::new(model),
            pseudonymiser: Arc::new(pseudonymiser),
            tenants,
            tenant_index,
        }
    }

    /// The parts the background tasks use ([`tasks::spawn`]).
    pub fn background(&self) -> tasks::Background {
        tasks::Background {
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            alerts: self.config.alerts.clone(),
            history: self.config.history.clone(),
            model: self.model.clone(),
            manual_refresh: self.config.model.manual_refresh,
            store_health_interval: self.config.store.health_interval,
            store_health_timeout: self.config.store.health_timeout,
        }
    }

    /// The store's health now ([`check_store`] under `[store] health_timeout`), as `/readyz`
    /// reports it.
    pub async fn check_store(&self) -> Result<(), &'static str> {
        check_store(
            self.store.as_ref(),
            &self.metrics,
            self.config.store.health_timeout,
        )
        .await
    }

    /// Every tenant, in configuration order.
    pub fn tenants(&self) -> &[Arc<TenantRuntime>] {
        &self.tenants
    }

    /// The tenant with this id (a hash lookup).
    pub fn tenant(&self, id: &str) -> Option<&Arc<TenantRuntime>> {
        self.tenant_index.get(id).map(|&i| &self.tenants[i])
    }

    /// The latest evaluation of every tenant that has been evaluated, without the signals each
    /// rule read (`ActionResult::signals` is empty; [`App::evaluation`] of one tenant has
    /// them): statuses, points, reasons and scores as the poll computed them.
    pub async fn evaluations(&self) -> Vec<TenantEvaluation> {
        let mut out = Vec::new();
        for t in &self.tenants {
            if let Some(e) = &t.state.lock().await.last {
                out.push(e.clone());
            }
        }
        out
    }

    /// The latest evaluation of `tenant`, `None` before its first poll (or for an unknown id),
    /// whole: the poll's evaluation as it published it, the signals each rule read included.
    /// The tenant keeps it without those ([`without_signals`]); they are evaluated again here
    /// from the signals and gaps it was evaluated with, at its `evaluated_at` (evaluation is
    /// pure, so the actions come out the same; the scores are the kept ones).
    pub async fn evaluation(&self, tenant: &str) -> Option<TenantEvaluation> {
        let t = self.tenant(tenant)?;
        let state = t.state.lock().await;
        let last = state.last.as_ref()?;
        let gaps: Vec<SignalGap> = state.gaps.values().flatten().cloned().collect();
        let kinds: Vec<&str> = t.scopes.iter().map(String::as_str).collect();
        let actions = self.evaluator.evaluate_actions_of(
            &crate::evaluation::EvaluationInput {
                tenant,
                now: last.evaluated_at,
                signals: &state.signals,
                gaps: &gaps,
            },
            &|k| kinds.contains(&k),
        );
        let same = actions.len() == last.actions.len()
            && actions
                .iter()
                .zip(&last.actions)
                .all(|(a, b)| a.action_id == b.action_id && a.test_status == b.test_status);
        if !same {
            // Cannot happen while evaluation is pure; the kept copy is still right but for
            // the signals read.
            tracing::error!(
                tenant,
                "the evaluation computed again differs from the kept one"
            );
            return Some(last.clone());
        }
        Some(TenantEvaluation {
            tenant: last.tenant.clone(),
            evaluated_at: last.evaluated_at,
            actions,
            score: last.score,
            categories: last.categories.clone(),
        })
    }

    /// When `tenant` was last evaluated and its score then, `None` before its first poll (or
    /// for an unknown id): [`App::evaluation`]'s figures without evaluating anything again.
    pub async fn last_score(
        &self,
        tenant: &str,
    ) -> Option<(DateTime<Utc>, crate::evaluation::ScoreSummary)> {
        let state = self.tenant(tenant)?.state.lock().await;
        state.last.as_ref().map(|e| (e.evaluated_at, e.score))
    }

    /// The last stored state of each of `tenant`'s actions (empty before its first poll).
    pub async fn stored_states(&self, tenant: &str) -> crate::evaluation::ActionMap<ActionState> {
        match self.tenant(tenant) {
            Some(t) => t.state.lock().await.stored.clone(),
            None => crate::evaluation::ActionMap::new(),
        }
    }

    /// The JSON report of every evaluated tenant (`crate::report`), with its assessments and,
    /// when `ledgers`, each action's regression ledger read from the store (a store that fails
    /// leaves the ledgers out). Served by `GET /api/v1/report` and printed by `postured once`.
    pub async fn report(&self, ledgers: bool) -> crate::report::Report {
        let evaluations = self.evaluations().await;
        let r = crate::report::with_assessments(
            crate::report::build(Utc::now(), &evaluations, |t| {
                self.tenant(t).and_then(|t| t.name.clone())
            }),
            &self.assessment_reports().await,
        );
        if !ledgers {
            return r;
        }
        let tenants: Vec<String> = evaluations.iter().map(|e| e.tenant.clone()).collect();
        let ledgers =
            crate::report::ledger::for_report(self.store.as_ref(), &tenants, Utc::now()).await;
        crate::report::with_ledger(r, &ledgers)
    }

    /// The latest assessment reports of every evaluated tenant, tenants in configuration
    /// order, each tenant's assessments in configuration order (defaults last).
    /// They are computed again from each tenant's last evaluation, the model snapshot it was
    /// assessed with and its stored states (the tenant's state lock is released first).
    pub async fn assessment_reports(&self) -> Vec<crate::model::report::AssessmentReport> {
        self.assessment_reports_of(|_| true).await
    }

    /// [`App::assessment_reports`] of the tenants for which `tenant` is true only (the others'
    /// reports are not computed).
    pub async fn assessment_reports_of(
        &self,
        tenant: impl Fn(&str) -> bool,
    ) -> Vec<crate::model::report::AssessmentReport> {
        let mut out = Vec::new();
        for t in self.tenants.iter().filter(|t| tenant(&t.id)) {
            let inputs = {
                let state = t.state.lock().await;
                match (&state.last, &state.snapshot) {
                    (Some(last), Some(snapshot)) => {
                        Some((last.clone(), snapshot.clone(), state.stored.clone()))
                    }
                    _ => None,
                }
            };
            if let Some((last, snapshot, stored)) = inputs {
                out.extend(self.model.reports_at(&snapshot, &last, &stored));
            }
        }
        out
    }

    /// The model over every active assessment and the latest evaluations, for scores across
    /// tenants and groups with filters (`ComplianceModel::score`).
    pub async fn compliance_model(&self) -> crate::model::ComplianceModel {
        self.compliance_model_of(|_| true).await
    }

    /// [`App::compliance_model`] over the active assessments for which `keep` is true (an API
    /// caller's scope: its tenants and groups).
    pub async fn compliance_model_of(
        &self,
        keep: impl Fn(&crate::model::Assessment) -> bool,
    ) -> crate::model::ComplianceModel {
        let evaluations = self.evaluations().await;
        let assessments: Vec<crate::model::Assessment> = self
            .model
            .assessments
            .iter()
            .filter(|a| keep(a))
            .cloned()
            .collect();
        self.model.model(&assessments, &evaluations, Utc::now())
    }

    /// Signal lifetime for a connector: `signal_ttl_polls` × the schedule's interval (the gap
    /// between its next two fire times), at least one poll timeout.
    pub fn signal_ttl(&self, slot: &ConnectorSlot, now: DateTime<Utc>) -> Duration {
        let mut next = slot.config.schedule.after(&now);
        let interval = match (next.next(), next.next()) {
            (Some(a), Some(b)) => (b - a).to_std().unwrap_or(Duration::from_secs(3600)),
            _ => Duration::from_secs(3600),
        };
        let polls = self.config.scheduler.signal_ttl_polls.max(1);
        (interval * polls).max(self.poll_timeout(slot))
    }

    /// The deadline of one poll of this connector.
    pub fn poll_timeout(&self, slot: &ConnectorSlot) -> Duration {
        slot.config
            .poll_timeout
            .unwrap_or(self.config.scheduler.poll_timeout)
    }

    /// Poll connector `index` of `tenant` once and carry the result through the stages of
    /// [`poll`]: collect, normalise, evaluate, plan, persist, publish. Never fails: collection
    /// problems become gaps, store problems are counted and retried with the next poll.
    pub async fn poll(&self, tenant: &TenantRuntime, index: usize) -> PollReport {
        poll::run(self, tenant, index).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::SignalValue;

    fn signal(key: &str, v: f64) -> Signal {
        let at = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .expect("instant")
            .with_timezone(&Utc);
        Signal {
            key: key.into(),
            value: SignalValue::Number(v),
            observed_at: at,
            expires_at: at,
        }
    }

    fn pairs(v: &[Signal]) -> Vec<(&str, SignalValue)> {
        v.iter().map(|s| (&*s.key, s.value.clone())).collect()
    }

    #[test]
    fn merged_signals_are_sorted_one_per_key_the_newer_winning() {
        let base = merge_signals(
            Vec::new(),
            vec![signal("b", 1.0), signal("d", 1.0), signal("a", 1.0)],
        );
        assert_eq!(
            pairs(&base),
            [
                ("a", SignalValue::Number(1.0)),
                ("b", SignalValue::Number(1.0)),
                ("d", SignalValue::Number(1.0)),
            ]
        );
        // Of equal keys within the newer ones the last wins; a newer key replaces the base's,
        // new keys land in order, before, between and after the base's.
        let merged = merge_signals(
            base,
            vec![
                signal("e", 2.0),
                signal("b", 2.0),
                signal("c", 2.0),
                signal("b", 3.0),
                signal("0", 2.0),
            ],
        );
        assert_eq!(
            pairs(&merged),
            [
                ("0", SignalValue::Number(2.0)),
                ("a", SignalValue::Number(1.0)),
                ("b", SignalValue::Number(3.0)),
                ("c", SignalValue::Number(2.0)),
                ("d", SignalValue::Number(1.0)),
                ("e", SignalValue::Number(2.0)),
            ]
        );
        assert_eq!(
            pairs(&merge_signals(merged.clone(), Vec::new())),
            pairs(&merged)
        );
    }
}
