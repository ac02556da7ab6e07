//! The poll pipeline of one (tenant, connector), in named stages with typed hand-offs:
//!
//! ```text
//! collect -> normalise -> evaluate -> plan -> persist -> publish
//! Collected  Normalised  Evaluated   Planned  (one txn)  PollReport
//! ```
//!
//! - **collect**: the connector's [`Snapshot`] under the poll deadline (a timeout collects
//!   nothing).
//! - **normalise**: signals get their expiry; the outcome is classified.
//! - **evaluate**: the tenant's signals in force (this poll's merged into the last ones) are
//!   tested by the catalog's rules (unless they, the gaps and the model's inputs are those of
//!   the tenant's last evaluation: then its action results are reused, [`same_inputs`]; a poll
//!   that would write a transition or raise a regression event from them runs the rules after
//!   all, since those records carry the signals each rule read), then the model (assessments, manual statuses from memory)
//!   gives the one tenant score and the assessment reports; the reports are reduced at once to
//!   what the poll writes and exports (each assessment's score, its metric series) and dropped,
//!   so the polls waiting for the store hold no report (a tenant's reports copy every control
//!   and action text of its six templates).
//! - **plan**: the writes: status transitions, regression events with their routes and the
//!   detector states, assessment score snapshots.
//! - **persist**: everything in one store transaction, with the tenant's state lock released
//!   (the API reads the tenant meanwhile; the tenant's poll lock keeps its polls in order).
//! - **publish**: only after it: the in-memory state (stored action states, detector state,
//!   latest evaluation and reports) and the metrics and logs.
//!
//! Must not: decide timing, or advance the in-memory "last stored" state when the write failed
//! (the next poll then writes the same transitions again, so no history is lost).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use postured_connectors::{CollectionError, ErrorKind, PollContext, Snapshot};

use super::model::ModelSnapshot;
use super::plan::{self, AlertPlan};
use super::{App, ConnectorSlot, PollReport, TenantMemory, TenantRuntime};
use crate::evaluation::{
    ActionState, EvaluationInput, ScoreSummary, TenantEvaluation, Transition, transitions,
};
use crate::model::plan::AssessmentSummary;
use crate::signals::{Signal, SignalBatch, SignalGap, intern};
use crate::store::{AutomaticEvidence, PollOutcome, PollRecord};

/// Stage 1: what the connector returned, or that it ran out of time.
#[derive(Debug)]
pub struct Collected {
    /// When the poll started (every signal's `observed_at`).
    pub started_at: DateTime<Utc>,
    /// The connector's snapshot; empty when it timed out.
    pub snapshot: Snapshot,
    /// The deadline error when the poll timed out.
    pub timeout: Option<CollectionError>,
}

/// Stage 2: this poll's signals with their expiry, its errors and its outcome.
#[derive(Debug)]
pub struct Normalised {
    /// When the poll started.
    pub started_at: DateTime<Utc>,
    /// Signals and gaps of this poll.
    pub batch: SignalBatch,
    /// Every endpoint error of this poll.
    pub errors: Vec<CollectionError>,
    /// How the poll ended.
    pub outcome: PollOutcome,
}

/// Stage 3: the tenant after this poll.
#[derive(Debug)]
pub struct Evaluated {
    /// The tenant's signals in force, this poll's merged in (installed by publish).
    pub signals: Vec<crate::signals::Signal>,
    /// The tenant's gaps per connector id, this poll's included (installed by publish).
    pub gaps: HashMap<String, Vec<SignalGap>>,
    /// The evaluation, its score the one tenant score (over the tenant's assessments).
    pub evaluation: TenantEvaluation,
    /// The tenant's assessments' figures (the reports are computed on demand).
    pub assessments: Vec<AssessmentSummary>,
    /// The model inputs they were computed with (kept by the tenant instead of the reports).
    pub snapshot: ModelSnapshot,
    /// Whether a signal of this poll's connector in force for the tenant has expired.
    pub stale: bool,
    /// Whether the catalog's rules ran. `false` when the inputs were those of the tenant's last
    /// evaluation ([`same_inputs`]): its action results were reused (without the signals each
    /// rule read, which the tenant does not keep) and only the model's figures computed again.
    pub rules_ran: bool,
}

/// Stage 4: what the poll writes.
#[derive(Debug)]
pub struct Planned {
    /// Status transitions against the last stored state.
    pub transitions: Vec<Transition>,
    /// Regression events with their routes, and the detector states that changed.
    pub alerts: AlertPlan,
    /// The tenant's assessment scores (a snapshot is stored for each one that changed).
    pub assessment_scores: Vec<(String, ScoreSummary)>,
    /// The automatic evidence of the status changes (at most `[evidence]
    /// max_automatic_bytes_per_poll` bytes).
    pub evidence: Vec<AutomaticEvidence>,
}

/// Run every stage for connector `index` of `tenant`.
pub(super) async fn run(app: &App, tenant: &TenantRuntime, index: usize) -> PollReport {
    let slot = &tenant.connectors[index];
    // The connector's id (its kind, or `<kind>.<name>`) keys its polls, gaps and metrics.
    let kind = slot.config.id.as_str();
    let _in_flight = app.metrics.poll_started();
    let clock = Instant::now();
    let collected = collect(slot, app.poll_timeout(slot)).await;
    let ttl = chrono::Duration::from_std(app.signal_ttl(slot, collected.started_at))
        .unwrap_or(chrono::Duration::hours(1));
    let normalised = normalise(collected, kind, ttl);
    for e in &normalised.errors {
        tracing::warn!(
            tenant = %tenant.id, connector = kind, kind = e.kind.as_str(),
            endpoint = %e.endpoint, status = e.status, code = e.code.as_deref(),
            "could not collect: {}", e.message
        );
    }

    // One poll of the tenant at a time (held across the store I/O); the state lock, which the
    // API's reads take too, is held only for in-memory work.
    let _serial = tenant.poll.lock().await;
    let (after_start, resumed) = resume(app, tenant).await;
    let now = Utc::now();
    let (evaluated, planned) = {
        let state = tenant.state.lock().await;
        let kinds: Vec<&str> = tenant.scopes.iter().map(String::as_str).collect();
        let (signals, gaps) = merge(kind, &normalised.batch, resumed, &state);
        let mut evaluated = evaluate(
            app,
            &tenant.id,
            &kinds,
            kind,
            signals,
            gaps,
            Some(&state),
            now,
        );
        let mut planned = plan(app, &state, &evaluated);
        if !evaluated.rules_ran
            && (!planned.transitions.is_empty() || !planned.alerts.routed.is_empty())
        {
            // A reused evaluation lacks the signals each rule read, which a transition's
            // record, its automatic evidence and a regression event carry: run the rules.
            let (signals, gaps) = (evaluated.signals, evaluated.gaps);
            evaluated = evaluate(app, &tenant.id, &kinds, kind, signals, gaps, None, now);
            planned = plan(app, &state, &evaluated);
        }
        (evaluated, planned)
    };
    let record = PollRecord {
        tenant: &tenant.id,
        connector: kind,
        started_at: normalised.started_at,
        finished_at: now,
        outcome: normalised.outcome,
        signals: &normalised.batch.signals,
        gaps: &normalised.batch.gaps,
        evaluation: &evaluated.evaluation,
        transitions: &planned.transitions,
        assessments: &planned.assessment_scores,
        alerts: planned.alerts.writes(),
        evidence: &planned.evidence,
        after_start,
    };
    let stored = persist(app, &record, kind).await;
    let mut state = tenant.state.lock().await;
    publish(
        app, &mut state, kind, normalised, evaluated, planned, stored, clock, now,
    )
}

/// Stage 1, collect: poll the connector under `timeout`.
pub async fn collect(slot: &ConnectorSlot, timeout: Duration) -> Collected {
    let started_at = Utc::now();
    let cx = PollContext {
        observed_at: started_at,
    };
    match tokio::time::timeout(timeout, slot.connector.poll(&cx)).await {
        Ok(snapshot) => Collected {
            started_at,
            snapshot,
            timeout: None,
        },
        Err(_) => Collected {
            started_at,
            snapshot: Snapshot::default(),
            timeout: Some(CollectionError::new(
                ErrorKind::Timeout,
                slot.config.id.as_str(),
                format!("poll exceeded its {}s deadline", timeout.as_secs_f64()),
            )),
        },
    }
}

/// Stage 2, normalise: give every signal its expiry (`started_at + ttl`) and classify the
/// poll of connector `id` (its signal namespace): a timeout collected nothing (its whole
/// namespace is a gap), no error is a success, errors with no signal a failure, errors with
/// signals a partial poll.
pub fn normalise(c: Collected, id: &str, ttl: chrono::Duration) -> Normalised {
    if let Some(err) = c.timeout {
        return Normalised {
            started_at: c.started_at,
            batch: SignalBatch::nothing_collected(id, &err),
            errors: vec![err],
            outcome: PollOutcome::Timeout,
        };
    }
    let mut snapshot = c.snapshot;
    let errors = std::mem::take(&mut snapshot.errors);
    let batch = SignalBatch::from_snapshot(snapshot, c.started_at + ttl);
    let outcome = if errors.is_empty() {
        PollOutcome::Success
    } else if batch.signals.is_empty() {
        PollOutcome::Failure
    } else {
        PollOutcome::Partial
    };
    Normalised {
        started_at: c.started_at,
        batch,
        errors,
        outcome,
    }
}

/// The stored signals and gaps (per owning connector id) of a tenant, loaded by [`resume`]
/// and merged in by [`evaluate`] under what memory holds.
type Resumed = Option<(Vec<crate::signals::Signal>, HashMap<String, Vec<SignalGap>>)>;

/// Load what the store knows about the tenant on its first poll (signals, gaps, stored action
/// states, detector state). What was gathered in memory while the store was away is newer and
/// wins. A failure is counted and retried on the next poll. The reads run without the state
/// lock (the caller holds the tenant's poll lock, so nothing else changes what they fill in).
/// Returns whether this poll loaded (or tried to load) the stored state: the tenant's first
/// poll since postured started, which the store keeps a full poll row of; and the loaded
/// signals and gaps, which [`evaluate`] merges in (the tenant's state keeps the inputs of its
/// last evaluation until this poll publishes its own).
async fn resume(app: &App, tenant: &TenantRuntime) -> (bool, Resumed) {
    let mut resumed = None;
    let (load_state, load_alerts) = {
        let state = tenant.state.lock().await;
        (!state.loaded, state.alert_state.is_none())
    };
    let id = tenant.id.as_str();
    if load_state {
        match app.store.load_tenant_state(id).await {
            Ok(stored) => {
                let mut state = tenant.state.lock().await;
                for (id, a) in stored.actions {
                    state.stored.entry(intern(&id)).or_insert(a);
                }
                // A gap's prefix starts with its connector's id (`msgraph.`,
                // `http_json.github_org.`): the longest id that prefixes it owns it.
                let mut stored_gaps: HashMap<String, Vec<SignalGap>> = HashMap::new();
                for gap in stored.gaps {
                    let owner = tenant
                        .connectors
                        .iter()
                        .map(|c| c.config.id.as_str())
                        .filter(|id| {
                            gap.prefix
                                .strip_prefix(id)
                                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
                        })
                        .max_by_key(|id| id.len())
                        .unwrap_or_else(|| gap.prefix.split('.').next().unwrap_or_default())
                        .to_owned();
                    stored_gaps.entry(owner).or_default().push(gap);
                }
                resumed = Some((stored.signals, stored_gaps));
                state.loaded = true;
            }
            Err(e) => {
                app.metrics.observe_store_error(e.kind());
                tracing::error!(tenant = id, error = %e, "loading tenant state failed; evaluating from this poll only");
            }
        }
    }
    if load_alerts {
        match app.store.load_alert_state(id).await {
            Ok(s) => {
                let s = s.into_iter().map(|(id, s)| (intern(&id), s)).collect();
                tenant.state.lock().await.alert_state = Some(s);
            }
            Err(e) => {
                app.metrics.observe_store_error(e.kind());
                tracing::error!(tenant = id, error = %e, "loading regression state failed; regressions are not detected in this poll");
            }
        }
    }
    (load_state, resumed)
}

/// Stage 3, first half: this poll's signals and gaps merged into the tenant's (and the stored
/// ones `resumed` under those, which memory's win): the tenant's signals sorted by key, one
/// per key, and its gaps per connector id. They are the tenant's from publish on.
fn merge(
    kind: &str,
    batch: &SignalBatch,
    resumed: Resumed,
    state: &TenantMemory,
) -> (Vec<Signal>, HashMap<String, Vec<SignalGap>>) {
    let mut merged_gaps = state.gaps.clone();
    let base = match resumed {
        Some((signals, gaps)) => {
            for (owner, gaps) in gaps {
                merged_gaps.entry(owner).or_insert(gaps);
            }
            // What this process gathered meanwhile is newer: the stored signals fill in only
            // the keys it lacks.
            let stored = super::merge_signals(Vec::new(), signals);
            super::merge_signals(stored, state.signals.clone())
        }
        None => state.signals.clone(),
    };
    let merged = super::merge_signals(base, batch.signals.clone());
    merged_gaps.insert(kind.to_owned(), batch.gaps.clone());
    (merged, merged_gaps)
}

/// Stage 3, evaluate: when `last` (the tenant's state) is given and the merged inputs are those
/// of its last evaluation ([`same_inputs`]) that evaluation's action results are reused, else
/// every action is tested by the catalog's rules (those outside the tenant's catalog scopes
/// are out of scope); then the model (the tenant's assessments and the manual statuses in
/// memory) gives the tenant score and the assessments' figures. Pure apart from reading the
/// shared model.
#[allow(clippy::too_many_arguments)]
fn evaluate(
    app: &App,
    tenant: &str,
    kinds: &[&str],
    kind: &str,
    signals: Vec<Signal>,
    gaps: HashMap<String, Vec<SignalGap>>,
    last: Option<&TenantMemory>,
    now: DateTime<Utc>,
) -> Evaluated {
    let snapshot = app.model.snapshot();
    let reused = last.and_then(|state| {
        let last = state.last.as_ref()?;
        let same = state
            .snapshot
            .as_ref()
            .is_some_and(|s| s.same_as(&snapshot))
            && same_inputs(
                (&state.signals, &state.gaps, last.evaluated_at),
                (&signals, &gaps, now),
            );
        same.then(|| last.actions.clone())
    });
    let rules_ran = reused.is_none();
    let actions = reused.unwrap_or_else(|| {
        let all_gaps: Vec<SignalGap> = gaps.values().flatten().cloned().collect();
        app.evaluator.evaluate_actions_of(
            &EvaluationInput {
                tenant,
                now,
                signals: &signals,
                gaps: &all_gaps,
            },
            &|k: &str| kinds.contains(&k),
        )
    });
    let (evaluation, assessments) = app
        .model
        .assess(&snapshot, tenant, now, actions, &app.metrics);
    Evaluated {
        stale: plan::has_expired(&signals, kind, now),
        signals,
        gaps,
        evaluation,
        assessments,
        snapshot,
        rules_ran,
    }
}

/// Whether the catalog's rules give the same results for `now`'s inputs as for `before`'s
/// (signals sorted by key, one per key, as [`merge`] gives them; gaps per connector; the
/// evaluation instant). Evaluation is pure, and it reads of a signal only its key, its value
/// and whether it is fresh at the evaluation instant (`expires_at > now`), plus the expiry of
/// an expired one, which a stale cause names (`crate::evaluation::SignalView`); the gaps are
/// read whole. So equal keys and values, equal gaps, the same freshness at each instant and
/// the same expiry of each expired signal give equal results; the observation times (every
/// poll renews them) do not matter.
fn same_inputs(
    before: (&[Signal], &HashMap<String, Vec<SignalGap>>, DateTime<Utc>),
    now: (&[Signal], &HashMap<String, Vec<SignalGap>>, DateTime<Utc>),
) -> bool {
    let ((a, a_gaps, a_at), (b, b_gaps, b_at)) = (before, now);
    a.len() == b.len()
        && a_gaps == b_gaps
        && a.iter().zip(b).all(|(x, y)| {
            let (x_fresh, y_fresh) = (x.expires_at > a_at, y.expires_at > b_at);
            x.key == y.key
                && x.value == y.value
                && x_fresh == y_fresh
                && (x_fresh || x.expires_at == y.expires_at)
        })
}

/// Stage 4, plan: the transitions against the last stored state, the regression detector's
/// events and states, and the assessment scores to snapshot.
fn plan(app: &App, state: &TenantMemory, evaluated: &Evaluated) -> Planned {
    let transitions = transitions(&state.stored, &evaluated.evaluation);
    let evidence = automatic_evidence(
        &app.pseudonymiser,
        &evaluated.evaluation,
        &transitions,
        app.config.evidence.max_automatic_bytes_per_poll,
    );
    Planned {
        evidence,
        transitions,
        alerts: plan::alerts(
            &app.config.alerts,
            &app.evaluator,
            state.alert_state.as_ref(),
            &evaluated.evaluation,
        ),
        assessment_scores: evaluated
            .assessments
            .iter()
            .map(|a| (a.id.clone(), a.score))
            .collect(),
    }
}

/// The automatic evidence of a poll's status changes (a transition whose test status differs
/// from the stored one, the first evaluation included): the canonical document of the signals
/// and values that decided each (`model::evidence::automatic_document`), addressed by its
/// SHA-256, in transition order until `max_bytes` (documents past it are left out and
/// logged). The signals that name users, and those names in the reason, are pseudonymised
/// first, as `postured record` does (`postured_connectors::pseudonym`).
fn automatic_evidence(
    pseudonymiser: &postured_connectors::pseudonym::Pseudonymiser,
    evaluation: &TenantEvaluation,
    transitions: &[Transition],
    max_bytes: u64,
) -> Vec<AutomaticEvidence> {
    let mut out = Vec::new();
    let mut bytes = 0u64;
    let mut left_out = 0usize;
    for t in transitions {
        if t.from_status == Some(t.to_status) {
            continue;
        }
        let testing_logic = evaluation
            .actions
            .iter()
            .find(|a| a.action_id == t.action_id)
            .map(|a| &*a.testing_logic)
            .unwrap_or_default();
        let mut signals = t.signals.clone();
        let mut reason = t.reason.clone();
        match reason.as_mut() {
            Some(r) => pseudonymiser.signals(&mut signals, &mut [r]),
            None => pseudonymiser.signals(&mut signals, &mut []),
        }
        let content = crate::model::evidence::automatic_document(
            &t.action_id,
            testing_logic,
            t.to_status,
            reason.as_deref(),
            &signals,
        );
        let size = content.len() as u64;
        if bytes + size > max_bytes {
            left_out += 1;
            continue;
        }
        bytes += size;
        out.push(AutomaticEvidence {
            action_id: t.action_id.clone(),
            sha256: crate::model::evidence::sha256_hex(&content),
            content,
        });
    }
    if left_out > 0 {
        tracing::warn!(
            tenant = %evaluation.tenant, left_out, max_bytes,
            "automatic evidence past [evidence] max_automatic_bytes_per_poll was not stored"
        );
    }
    out
}

/// Stage 5, persist: the whole poll in one store transaction. `false` (counted and logged)
/// when the store refused it.
async fn persist(app: &App, record: &PollRecord<'_>, kind: &str) -> bool {
    match app.store.record_poll(record).await {
        Ok(()) => true,
        Err(e) => {
            app.metrics.observe_store_error(e.kind());
            tracing::error!(tenant = %record.tenant, connector = kind, error = %e, "writing the poll failed; it will be written with the next poll");
            false
        }
    }
}

/// Stage 6, publish: advance the in-memory state (only what was stored), then the metrics and
/// logs.
#[allow(clippy::too_many_arguments)]
fn publish(
    app: &App,
    state: &mut TenantMemory,
    kind: &str,
    normalised: Normalised,
    evaluated: Evaluated,
    planned: Planned,
    stored: bool,
    clock: Instant,
    now: DateTime<Utc>,
) -> PollReport {
    let tenant = evaluated.evaluation.tenant.clone();
    if stored {
        for t in &planned.transitions {
            state.stored.insert(
                intern(&t.action_id),
                ActionState {
                    test_status: t.to_status,
                    credit: t.to_credit,
                    points_achieved: t.points_achieved,
                    points_possible: t.points_possible,
                    since: t.at,
                },
            );
        }
        plan::applied(state.alert_state.as_mut(), &planned.alerts, &app.metrics);
    }
    for t in &planned.transitions {
        tracing::info!(
            tenant = %tenant, action = %t.action_id,
            from = t.from_status.map(|s| s.as_str()), to = t.to_status.as_str(),
            reason = t.reason.as_deref(), "test status changed"
        );
    }
    state.signals = evaluated.signals;
    state.gaps = evaluated.gaps;
    state.last = Some(super::without_signals(&evaluated.evaluation));
    state.snapshot = Some(evaluated.snapshot);
    app.metrics
        .observe_assessment_summaries(&tenant, &evaluated.assessments);
    app.metrics.observe_evaluation(&evaluated.evaluation);
    app.metrics.set_signal_stale(&tenant, kind, evaluated.stale);
    let kinds: Vec<&str> = normalised.errors.iter().map(|e| e.kind.as_str()).collect();
    app.metrics.observe_poll(
        &tenant,
        kind,
        normalised.outcome,
        &kinds,
        clock.elapsed().as_secs_f64(),
        now.timestamp_millis() as f64 / 1000.0,
    );
    let retry_after = normalised.errors.iter().filter_map(|e| e.retry_after).max();
    PollReport {
        outcome: normalised.outcome,
        errors: normalised.errors,
        evaluation: evaluated.evaluation,
        stored,
        rules_ran: evaluated.rules_ran,
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluation::TestStatus;
    use crate::signals::SignalValue;
    use postured_connectors::pseudonym::Pseudonymiser;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .expect("instant")
            .with_timezone(&Utc)
            + chrono::Duration::minutes(minute)
    }

    /// A signal observed at `observed` minutes, expiring at `expires` minutes.
    fn signal(key: &str, value: f64, observed: i64, expires: i64) -> Signal {
        Signal {
            key: intern(key),
            value: SignalValue::Number(value),
            observed_at: at(observed),
            expires_at: at(expires),
        }
    }

    #[test]
    fn inputs_are_the_same_only_when_the_rules_would_read_the_same() {
        let no_gaps = HashMap::new();
        // Evaluated at minute 1 with both signals fresh; polled again at minute 6 with both
        // renewed: the same inputs though every time moved.
        let before = vec![signal("a", 1.0, 0, 10), signal("b", 2.0, 0, 10)];
        let renewed = vec![signal("a", 1.0, 5, 15), signal("b", 2.0, 5, 15)];
        let same = |b: &[Signal], g: &HashMap<String, Vec<SignalGap>>, now: i64| {
            same_inputs((&before, &no_gaps, at(1)), (b, g, at(now)))
        };
        assert!(same(&renewed, &no_gaps, 6));
        // Another value, another key, one signal more or less.
        let changed = vec![signal("a", 1.5, 5, 15), signal("b", 2.0, 5, 15)];
        assert!(!same(&changed, &no_gaps, 6));
        let renamed = vec![signal("a", 1.0, 5, 15), signal("c", 2.0, 5, 15)];
        assert!(!same(&renamed, &no_gaps, 6));
        assert!(!same(&renewed[..1], &no_gaps, 6));
        // A signal not renewed that expired since: stale now, fresh before.
        let expired = vec![signal("a", 1.0, 5, 15), signal("b", 2.0, 0, 10)];
        assert!(!same(&expired, &no_gaps, 11));
        // A gap appeared.
        let gap = SignalGap {
            prefix: "a.".into(),
            kind: "forbidden".into(),
            reason: "403".into(),
        };
        let gaps = HashMap::from([("a".to_owned(), vec![gap])]);
        assert!(!same(&renewed, &gaps, 6));
        // Stale before and after with the same expiry (the cause names it): the same; with
        // another expiry: not.
        let stale = vec![signal("a", 1.0, 0, 1)];
        let later = |expires| {
            same_inputs(
                (&stale, &no_gaps, at(2)),
                (&[signal("a", 1.0, 0, expires)], &no_gaps, at(3)),
            )
        };
        assert!(later(1));
        assert!(!later(2));
    }

    #[test]
    fn automatic_evidence_holds_pseudonyms_of_listed_users_stable_across_polls() {
        let upns = ["alice@contoso.com", "bob@contoso.com"];
        let listed = upns.join(", ");
        let evaluation = TenantEvaluation {
            tenant: "contoso".into(),
            evaluated_at: Utc::now(),
            actions: Vec::new(),
            score: Default::default(),
            categories: Vec::new(),
        };
        let transition = Transition {
            action_id: "aws_iam.console_mfa".into(),
            from_status: None,
            to_status: TestStatus::FailedHighRisk,
            from_credit: None,
            to_credit: 0.0,
            points_achieved: 0.0,
            points_possible: 1.0,
            reason: Some(format!("console users without MFA: {listed}")),
            signals: vec![
                (
                    "aws_iam.credentials.console_users_without_mfa".into(),
                    SignalValue::Text(listed.clone()),
                ),
                (
                    "aws_iam.credentials.console_users_without_mfa_total".into(),
                    SignalValue::Number(2.0),
                ),
            ],
            at: Utc::now(),
        };
        let key = Pseudonymiser::with_key(&[7; 32]);
        let poll = |p: &Pseudonymiser| {
            automatic_evidence(p, &evaluation, std::slice::from_ref(&transition), 1 << 20)
        };
        let first = poll(&key);
        assert_eq!(first.len(), 1);
        let text = String::from_utf8(first[0].content.clone()).expect("utf8");
        for upn in upns {
            assert!(!text.contains(upn), "{upn} in {text}");
            assert!(text.contains(&key.pseudonym(upn)), "{text}");
        }
        assert!(
            text.contains("console users without MFA: pseudonym:"),
            "{text}"
        );
        // The same answer on a later poll gives the same document, so the same address.
        let again = poll(&key);
        assert_eq!(again[0].sha256, first[0].sha256);
        assert_eq!(again[0].content, first[0].content);
        // Another key gives other pseudonyms.
        assert_ne!(
            poll(&Pseudonymiser::with_key(&[8; 32]))[0].sha256,
            first[0].sha256
        );
    }
}
