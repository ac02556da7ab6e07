//! The poll pipeline of one (tenant, connector):
//! `connector.poll() -> signals -> evaluation -> store (one transaction) -> metrics`.
//!
//! [`App`] owns the shared pieces (store, evaluator, metrics, connectors) and each tenant's
//! in-memory state (latest signals, gaps, last stored action states, last evaluation), loaded
//! from the store on first use so that a restart resumes where it stopped. Polls of one tenant
//! are serialised by that tenant's lock; different tenants never wait for each other. A store
//! failure is logged and counted, never fatal: the action states it could not persist stay
//! "unwritten", so the next successful poll writes the transitions again and no history is lost.
//! This module decides nothing about timing: the scheduler calls [`App::poll`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use postured_connectors::{CollectionError, Connector, ErrorKind, PollContext};
use tokio::sync::Mutex;

use crate::config::{Config, ConnectorConfig};
use crate::evaluation::{ActionState, EvaluationInput, Evaluator, TenantEvaluation, transitions};
use crate::metrics::Metrics;
use crate::signals::{Signal, SignalBatch, SignalGap};
use crate::store::{PollOutcome, PollRecord, Store};

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
    state: Mutex<TenantMemory>,
}

#[derive(Default)]
struct TenantMemory {
    loaded: bool,
    signals: BTreeMap<String, Signal>,
    /// Gaps per connector kind.
    gaps: HashMap<String, Vec<SignalGap>>,
    /// Last *stored* state per action.
    stored: HashMap<String, ActionState>,
    last: Option<TenantEvaluation>,
    /// Reports of the tenant's assessments at `last`.
    assessments: Vec<crate::model::report::AssessmentReport>,
    /// Regression detector state per action as last stored; `None` until loaded.
    alert_state: Option<HashMap<String, crate::alerts::InstanceState>>,
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
    pub model: Arc<crate::assessments::ModelRuntime>,
    tenants: Vec<Arc<TenantRuntime>>,
}

impl App {
    /// Assemble the app from already-built parts. `tenants` pairs each configured tenant with its
    /// connectors (see `crate::sources::build_connectors`).
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
                    state: Mutex::new(TenantMemory::default()),
                })
            })
            .collect();
        let (model, problems) = crate::assessments::ModelRuntime::new(&config, &evaluator);
        for p in problems {
            tracing::error!("template problem (template skipped): {p}");
        }
        Self {
            config,
            store,
            evaluator,
            metrics,
            model: Arc::new(model),
            tenants,
        }
    }

    /// Every tenant, in configuration order.
    pub fn tenants(&self) -> &[Arc<TenantRuntime>] {
        &self.tenants
    }

    /// The tenant with this id.
    pub fn tenant(&self, id: &str) -> Option<&Arc<TenantRuntime>> {
        self.tenants.iter().find(|t| t.id == id)
    }

    /// The latest evaluation of every tenant that has been evaluated.
    pub async fn evaluations(&self) -> Vec<TenantEvaluation> {
        let mut out = Vec::new();
        for t in &self.tenants {
            if let Some(e) = &t.state.lock().await.last {
                out.push(e.clone());
            }
        }
        out
    }

    /// The latest assessment reports of every evaluated tenant, tenants in configuration
    /// order, each tenant's assessments in configuration order (defaults last).
    pub async fn assessment_reports(&self) -> Vec<crate::model::report::AssessmentReport> {
        let mut out = Vec::new();
        for t in &self.tenants {
            out.extend(t.state.lock().await.assessments.iter().cloned());
        }
        out
    }

    /// The model over every active assessment and the latest evaluations, for scores across
    /// tenants and groups with filters (`ComplianceModel::score`).
    pub async fn compliance_model(&self) -> crate::model::ComplianceModel {
        let evaluations = self.evaluations().await;
        self.model
            .model(&self.model.assessments, &evaluations, Utc::now())
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

    /// Poll connector `index` of `tenant` once and carry the result through evaluation, the
    /// store and metrics. Never fails: collection problems become gaps, store problems are
    /// counted and retried with the next poll.
    pub async fn poll(&self, tenant: &TenantRuntime, index: usize) -> PollReport {
        let slot = &tenant.connectors[index];
        let kind = slot.connector.kind();
        let _in_flight = self.metrics.poll_started();
        let started_at = Utc::now();
        let clock = Instant::now();
        let ttl = chrono::Duration::from_std(self.signal_ttl(slot, started_at))
            .unwrap_or(chrono::Duration::hours(1));
        let timeout = self.poll_timeout(slot);

        let cx = PollContext {
            observed_at: started_at,
        };
        let (batch, errors, timed_out) =
            match tokio::time::timeout(timeout, slot.connector.poll(&cx)).await {
                Ok(mut snapshot) => {
                    let errors = std::mem::take(&mut snapshot.errors);
                    let batch = SignalBatch::from_snapshot(snapshot, started_at + ttl);
                    (batch, errors, false)
                }
                Err(_) => {
                    let err = CollectionError::new(
                        ErrorKind::Timeout,
                        kind,
                        format!("poll exceeded its {}s deadline", timeout.as_secs_f64()),
                    );
                    (SignalBatch::nothing_collected(kind, &err), vec![err], true)
                }
            };
        let outcome = if timed_out {
            PollOutcome::Timeout
        } else if errors.is_empty() {
            PollOutcome::Success
        } else if batch.signals.is_empty() {
            PollOutcome::Failure
        } else {
            PollOutcome::Partial
        };
        for e in &errors {
            tracing::warn!(
                tenant = %tenant.id, connector = kind, kind = e.kind.as_str(),
                endpoint = %e.endpoint, status = e.status, code = e.code.as_deref(),
                "could not collect: {}", e.message
            );
        }

        let mut state = tenant.state.lock().await;
        if !state.loaded {
            match self.store.load_tenant_state(&tenant.id).await {
                Ok(stored) => {
                    // Signals gathered in memory while the store was away are newer: keep them.
                    for s in stored.signals {
                        state.signals.entry(s.key.clone()).or_insert(s);
                    }
                    for (id, a) in stored.actions {
                        state.stored.entry(id).or_insert(a);
                    }
                    // A gap's prefix starts with its connector kind (`msgraph.`); gaps seen in
                    // memory since are newer than the stored ones.
                    let mut stored_gaps: HashMap<String, Vec<SignalGap>> = HashMap::new();
                    for gap in stored.gaps {
                        let owner = gap.prefix.split('.').next().unwrap_or_default().to_owned();
                        stored_gaps.entry(owner).or_default().push(gap);
                    }
                    for (owner, gaps) in stored_gaps {
                        state.gaps.entry(owner).or_insert(gaps);
                    }
                    state.loaded = true;
                }
                Err(e) => {
                    self.metrics.observe_store_error(e.kind());
                    tracing::error!(tenant = %tenant.id, error = %e, "loading tenant state failed; evaluating from this poll only");
                }
            }
        }
        if state.alert_state.is_none() {
            match self.store.load_alert_state(&tenant.id).await {
                Ok(s) => state.alert_state = Some(s),
                Err(e) => {
                    self.metrics.observe_store_error(e.kind());
                    tracing::error!(tenant = %tenant.id, error = %e, "loading regression state failed; regressions are not detected in this poll");
                }
            }
        }
        for s in &batch.signals {
            state.signals.insert(s.key.clone(), s.clone());
        }
        state.gaps.insert(kind.to_owned(), batch.gaps.clone());

        let now = Utc::now();
        let signals: Vec<Signal> = state.signals.values().cloned().collect();
        let gaps: Vec<SignalGap> = state.gaps.values().flatten().cloned().collect();
        let evaluation = self.evaluator.evaluate(&EvaluationInput {
            tenant: &tenant.id,
            now,
            signals: &signals,
            gaps: &gaps,
        });
        // The tenant's assessments: the overall score becomes the score over their
        // de-duplicated instances (manual statuses reloaded, so `postured action set` shows).
        if let Err(e) = self.model.refresh(self.store.as_ref()).await {
            self.metrics.observe_store_error(e.kind());
            tracing::warn!(tenant = %tenant.id, error = %e, "loading manual statuses failed; using the last ones read");
        }
        let (evaluation, assessments) = self.model.assess(evaluation, &state.stored);
        let changes = transitions(&state.stored, &evaluation);
        let alert_plan = crate::alerts::pipeline::plan(
            &self.config.alerts,
            &self.evaluator,
            state.alert_state.as_ref(),
            &evaluation,
        )
        .with_assessments(assessments.iter().map(|a| (a.id.clone(), a.score)));
        let record = PollRecord {
            tenant: &tenant.id,
            connector: kind,
            started_at,
            finished_at: now,
            outcome,
            signals: &batch.signals,
            gaps: &batch.gaps,
            evaluation: &evaluation,
            transitions: &changes,
            alerts: alert_plan.writes(),
        };
        let stored = match self.store.record_poll(&record).await {
            Ok(()) => {
                for t in &changes {
                    state.stored.insert(
                        t.action_id.clone(),
                        ActionState {
                            test_status: t.to_status,
                            credit: t.to_credit,
                            points_achieved: t.points_achieved,
                            points_possible: t.points_possible,
                            since: t.at,
                        },
                    );
                }
                crate::alerts::pipeline::applied(
                    state.alert_state.as_mut(),
                    &alert_plan,
                    &self.metrics,
                );
                true
            }
            Err(e) => {
                self.metrics.observe_store_error(e.kind());
                tracing::error!(tenant = %tenant.id, connector = kind, error = %e, "writing the poll failed; it will be written with the next poll");
                false
            }
        };
        for t in &changes {
            tracing::info!(
                tenant = %tenant.id, action = %t.action_id,
                from = t.from_status.map(|s| s.as_str()), to = t.to_status.as_str(),
                reason = t.reason.as_deref(), "test status changed"
            );
        }
        state.last = Some(evaluation.clone());
        state.assessments = assessments;
        self.metrics
            .observe_assessments(&tenant.id, &state.assessments);
        drop(state);

        self.metrics.observe_evaluation(&evaluation);
        self.metrics.set_signal_stale(
            &tenant.id,
            kind,
            crate::alerts::pipeline::has_expired(&signals, kind, now),
        );
        let kinds: Vec<&str> = errors.iter().map(|e| e.kind.as_str()).collect();
        self.metrics.observe_poll(
            &tenant.id,
            kind,
            outcome,
            &kinds,
            clock.elapsed().as_secs_f64(),
            now.timestamp_millis() as f64 / 1000.0,
        );
        let retry_after = errors.iter().filter_map(|e| e.retry_after).max();
        PollReport {
            outcome,
            errors,
            evaluation,
            stored,
            retry_after,
        }
    }
}
