//! Conformance checks of the core [`Store`] behaviour: polls, signals, gaps, action states,
//! transitions and score snapshots.
//!
//! Each check takes a freshly migrated, empty store and returns a [`CheckResult`] instead of
//! panicking; the harnesses run every entry of [`CHECKS`] and report the failures by name.
//! Timestamps used here are whole minutes, because the stores keep millisecond precision.
//! The checks build transitions themselves (status or credit changed, or the action is new),
//! as the store stores what it is given and never derives them.
//!
//! Must not: be called on a production database (checks write rows for `conformance-*`
//! tenants).

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};

use super::{Check, CheckResult, ConformanceFailure};
use crate::evaluation::{
    ActionResult, ActionState, ImplementationStatus, ScoreSummary, TenantEvaluation, TestStatus,
    Transition,
};
use crate::signals::{Signal, SignalGap, SignalValue};
use crate::store::{PollOutcome, PollRecord, Store, StoreError, TenantState};

macro_rules! checks {
    ($($name:ident),* $(,)?) => {
        /// Every conformance check, in a stable order.
        pub const CHECKS: &[Check] = &[
            $(Check { name: stringify!($name), run: |store| Box::pin($name(store)) },)*
        ];
    };
}

checks![
    migrate_is_idempotent,
    round_trips_signals_gaps_and_actions,
    gaps_are_replaced_per_connector,
    unchanged_signals_add_no_history,
    status_change_writes_one_transition_and_updates_since,
    credit_change_keeps_since,
    since_follows_status_without_transitions,
    unchanged_state_writes_no_transition,
    score_snapshot_only_on_change,
    transitions_filter_by_action_and_since,
    failed_poll_leaves_nothing,
    invalid_input_is_rejected_before_writing,
    tenants_are_isolated,
    missing_actions_keep_their_state,
    duplicates_in_one_poll_last_wins,
    concurrent_polls_of_one_tenant_both_land,
    health_check_passes_and_repeats,
];

macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(ConformanceFailure(format!($($arg)+)));
        }
    };
}

macro_rules! ensure_eq {
    ($left:expr, $right:expr, $what:expr) => {{
        let (left, right) = (&$left, &$right);
        if left != right {
            return Err(ConformanceFailure(format!(
                "{}: expected {:?}, got {:?}",
                $what, right, left
            )));
        }
    }};
}

// ---------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------

/// 2026-01-01T00:00:00Z plus `minute` minutes.
pub(super) fn at(minute: i64) -> DateTime<Utc> {
    DateTime::UNIX_EPOCH + TimeDelta::seconds(1_767_225_600) + TimeDelta::minutes(minute)
}

pub(super) fn signal(key: &str, value: SignalValue, minute: i64) -> Signal {
    Signal {
        key: key.into(),
        value,
        observed_at: at(minute),
        expires_at: at(minute + 15),
    }
}

pub(super) fn gap(prefix: &str, kind: &str) -> SignalGap {
    SignalGap {
        prefix: prefix.to_string(),
        kind: kind.to_string(),
        reason: format!("{kind} on {prefix}"),
    }
}

pub(super) fn action(id: &str, status: TestStatus, credit: f64, points: u32) -> ActionResult {
    let out_of_scope = status == TestStatus::OutOfScope;
    let possible = if out_of_scope { 0.0 } else { f64::from(points) };
    ActionResult {
        action_id: id.to_string(),
        title: format!("Title of {id}").into(),
        category: "identity".to_string().into(),
        solution: "conformance".to_string().into(),
        implementation_status: if out_of_scope {
            ImplementationStatus::OutOfScope
        } else {
            ImplementationStatus::Implemented
        },
        test_status: status,
        credit,
        points,
        points_achieved: possible * credit,
        points_possible: possible,
        testing_logic: format!("rule of {id}").into(),
        reason: (status != TestStatus::Passed).then(|| format!("{id} is {}", status.as_str())),
        cause: None,
        signals: vec![(format!("{id}.flag").into(), SignalValue::Bool(credit > 0.0))],
    }
}

pub(super) fn evaluation(
    tenant: &str,
    minute: i64,
    actions: Vec<ActionResult>,
) -> TenantEvaluation {
    let achieved: f64 = actions.iter().map(|a| a.points_achieved).sum();
    let possible: f64 = actions.iter().map(|a| a.points_possible).sum();
    let score = ScoreSummary {
        points_achieved: achieved,
        points_possible: possible,
        ratio: if possible > 0.0 {
            achieved / possible
        } else {
            0.0
        },
    };
    TenantEvaluation {
        tenant: tenant.to_string(),
        evaluated_at: at(minute),
        actions,
        score,
        categories: vec![("identity".to_string(), score)],
    }
}

/// Transitions from stored states to an evaluation: the action is new, or its status or credit
/// changed.
pub(super) fn diff(
    previous: &HashMap<String, ActionState>,
    eval: &TenantEvaluation,
) -> Vec<Transition> {
    eval.actions
        .iter()
        .filter_map(|a| {
            let old = previous.get(&a.action_id);
            if old.is_some_and(|o| o.test_status == a.test_status && o.credit == a.credit) {
                return None;
            }
            Some(Transition {
                action_id: a.action_id.clone(),
                from_status: old.map(|o| o.test_status),
                to_status: a.test_status,
                from_credit: old.map(|o| o.credit),
                to_credit: a.credit,
                points_achieved: a.points_achieved,
                points_possible: a.points_possible,
                reason: a.reason.clone(),
                signals: a.signals.clone(),
                at: eval.evaluated_at,
            })
        })
        .collect()
}

/// One poll to record.
pub(super) struct Poll<'a> {
    tenant: &'a str,
    connector: &'a str,
    minute: i64,
    signals: Vec<Signal>,
    gaps: Vec<SignalGap>,
    actions: Vec<ActionResult>,
    outcome: Option<PollOutcome>,
    after_start: bool,
}

impl<'a> Poll<'a> {
    pub(super) fn new(tenant: &'a str, minute: i64) -> Self {
        Poll {
            tenant,
            connector: "msgraph",
            minute,
            signals: Vec::new(),
            gaps: Vec::new(),
            actions: Vec::new(),
            outcome: None,
            after_start: false,
        }
    }

    /// Another outcome than the default (success without gaps, else partial).
    pub(super) fn outcome(mut self, outcome: PollOutcome) -> Self {
        self.outcome = Some(outcome);
        self
    }

    /// The tenant's first poll since postured started.
    pub(super) fn after_start(mut self) -> Self {
        self.after_start = true;
        self
    }

    pub(super) fn connector(mut self, connector: &'a str) -> Self {
        self.connector = connector;
        self
    }

    pub(super) fn signals(mut self, signals: Vec<Signal>) -> Self {
        self.signals = signals;
        self
    }

    pub(super) fn gaps(mut self, gaps: Vec<SignalGap>) -> Self {
        self.gaps = gaps;
        self
    }

    pub(super) fn actions(mut self, actions: Vec<ActionResult>) -> Self {
        self.actions = actions;
        self
    }

    /// Load the previous states, derive the transitions, record. Returns the transitions.
    pub(super) async fn record(self, store: &dyn Store) -> Result<Vec<Transition>, StoreError> {
        let previous = store.load_tenant_state(self.tenant).await?;
        let eval = evaluation(self.tenant, self.minute, self.actions.clone());
        let transitions = diff(&previous.actions, &eval);
        self.record_with(store, &eval, &transitions).await?;
        Ok(transitions)
    }

    /// Record with an explicit evaluation and transitions.
    pub(super) async fn record_with(
        &self,
        store: &dyn Store,
        eval: &TenantEvaluation,
        transitions: &[Transition],
    ) -> Result<(), StoreError> {
        let record = PollRecord {
            tenant: self.tenant,
            connector: self.connector,
            started_at: at(self.minute),
            finished_at: at(self.minute) + TimeDelta::seconds(3),
            outcome: self.outcome.unwrap_or(if self.gaps.is_empty() {
                PollOutcome::Success
            } else {
                PollOutcome::Partial
            }),
            signals: &self.signals,
            gaps: &self.gaps,
            evaluation: eval,
            transitions,
            assessments: &[],
            alerts: Default::default(),
            evidence: &[],
            after_start: self.after_start,
        };
        store.record_poll(&record).await
    }
}

pub(super) fn sorted_gaps(mut gaps: Vec<SignalGap>) -> Vec<SignalGap> {
    gaps.sort_by(|a, b| a.prefix.cmp(&b.prefix));
    gaps
}

pub(super) fn state_of<'s>(
    state: &'s TenantState,
    action_id: &str,
) -> Result<&'s ActionState, ConformanceFailure> {
    state
        .actions
        .get(action_id)
        .ok_or_else(|| ConformanceFailure(format!("action {action_id} missing from state")))
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

/// `migrate` can run again on a migrated store, and data survives it.
pub async fn migrate_is_idempotent(store: &dyn Store) -> CheckResult {
    store.migrate().await?;
    store.migrate().await?;
    store.ping().await?;
    let tenant = "conformance-migrate";
    Poll::new(tenant, 0)
        .signals(vec![signal("a.flag", SignalValue::Bool(true), 0)])
        .record(store)
        .await?;
    store.migrate().await?;
    let state = store.load_tenant_state(tenant).await?;
    ensure_eq!(state.signals.len(), 1, "signals after re-migrating");
    Ok(())
}

/// The health check (a write probe) passes on a healthy store, again and again (its probe is an
/// upsert of one row), and a poll still lands after it.
pub async fn health_check_passes_and_repeats(store: &dyn Store) -> CheckResult {
    for _ in 0..3 {
        store.check_health().await?;
    }
    Poll::new("conformance-health", 0).record(store).await?;
    store.check_health().await?;
    Ok(())
}

/// Signals of every value kind, gaps, action states and the poll row come back as written.
pub async fn round_trips_signals_gaps_and_actions(store: &dyn Store) -> CheckResult {
    let tenant = "conformance-roundtrip";
    let signals = vec![
        signal("msgraph.a.enabled", SignalValue::Bool(true), 0),
        signal("msgraph.b.disabled", SignalValue::Bool(false), 0),
        signal("msgraph.c.ratio", SignalValue::Number(0.8), 0),
        signal("msgraph.d.count", SignalValue::Number(3.0), 0),
        signal("msgraph.e.tiny", SignalValue::Number(-1.25e-7), 0),
        signal(
            "msgraph.f.label",
            SignalValue::Text("enabled \"quoted\" é ✓".into()),
            0,
        ),
        signal("msgraph.g.numeric_text", SignalValue::Text("42".into()), 0),
    ];
    let gaps = vec![
        gap("msgraph.mfa.", "forbidden"),
        gap("msgraph.ca.", "throttled"),
    ];
    let actions = vec![
        action("a.passed", TestStatus::Passed, 1.0, 27),
        action("b.partial", TestStatus::PartiallyTested, 0.8, 27),
        action("c.failed", TestStatus::FailedHighRisk, 0.0, 9),
        action("d.scope", TestStatus::OutOfScope, 0.0, 3),
        action("e.unknown", TestStatus::CouldNotBeDetected, 0.0, 1),
    ];
    Poll::new(tenant, 0)
        .signals(signals.clone())
        .gaps(gaps.clone())
        .actions(actions.clone())
        .record(store)
        .await?;

    let state = store.load_tenant_state(tenant).await?;
    ensure_eq!(state.signals, signals, "signals");
    ensure_eq!(
        sorted_gaps(state.gaps.clone()),
        sorted_gaps(gaps.clone()),
        "gaps"
    );
    ensure_eq!(
        state.actions.len(),
        actions.len(),
        "number of action states"
    );
    for a in &actions {
        let expected = ActionState {
            test_status: a.test_status,
            credit: a.credit,
            points_achieved: a.points_achieved,
            points_possible: a.points_possible,
            since: at(0),
        };
        ensure_eq!(
            *state_of(&state, &a.action_id)?,
            expected,
            format!("state of {}", a.action_id)
        );
    }

    let polls = store.recent_polls(tenant, 10).await?;
    ensure_eq!(polls.len(), 1, "polls");
    let poll = &polls[0];
    ensure_eq!(poll.tenant.as_str(), tenant, "poll tenant");
    ensure_eq!(poll.connector.as_str(), "msgraph", "poll connector");
    ensure_eq!(poll.started_at, at(0), "poll started_at");
    ensure_eq!(
        poll.finished_at,
        at(0) + TimeDelta::seconds(3),
        "poll finished_at"
    );
    ensure_eq!(poll.outcome, PollOutcome::Partial, "poll outcome");
    ensure_eq!(poll.gaps, gaps, "poll error summary");
    ensure!(
        store.load_tenant_state("conformance-nobody").await? == TenantState::default(),
        "an unknown tenant must load as an empty state"
    );
    Ok(())
}

/// A poll replaces its own connector's gaps and leaves other connectors' gaps alone.
pub async fn gaps_are_replaced_per_connector(store: &dyn Store) -> CheckResult {
    let tenant = "conformance-gaps";
    Poll::new(tenant, 0)
        .connector("msgraph")
        .gaps(vec![
            gap("msgraph.mfa.", "forbidden"),
            gap("msgraph.ca.", "timeout"),
        ])
        .record(store)
        .await?;
    Poll::new(tenant, 1)
        .connector("github")
        .gaps(vec![gap("github.org.", "throttled")])
        .record(store)
        .await?;
    Poll::new(tenant, 5)
        .connector("msgraph")
        .gaps(vec![gap("msgraph.secure_score.", "forbidden")])
        .record(store)
        .await?;
    let state = store.load_tenant_state(tenant).await?;
    ensure_eq!(
        sorted_gaps(state.gaps),
        sorted_gaps(vec![
            gap("github.org.", "throttled"),
            gap("msgraph.secure_score.", "forbidden")
        ]),
        "gaps after msgraph's second poll"
    );
    Poll::new(tenant, 10)
        .connector("msgraph")
        .record(store)
        .await?;
    let state = store.load_tenant_state(tenant).await?;
    ensure_eq!(
        state.gaps,
        vec![gap("github.org.", "throttled")],
        "gaps after a clean msgraph poll"
    );
    Ok(())
}

/// Re-observing a value refreshes the current row but adds no history; a change adds one row.
pub async fn unchanged_signals_add_no_history(store: &dyn Store) -> CheckResult {
    let tenant = "conformance-history";
    let key = "msgraph.sd.enabled";
    let steady = "msgraph.steady.count";
    for (minute, value) in [(0, true), (5, true), (10, false), (15, false)] {
        Poll::new(tenant, minute)
            .signals(vec![
                signal(key, SignalValue::Bool(value), minute),
                signal(steady, SignalValue::Number(7.0), minute),
            ])
            .record(store)
            .await?;
    }
    let history = store.signal_history(tenant, Some(key), None).await?;
    let values: Vec<_> = history
        .iter()
        .map(|c| (c.value.clone(), c.observed_at))
        .collect();
    ensure_eq!(
        values,
        vec![
            (SignalValue::Bool(true), at(0)),
            (SignalValue::Bool(false), at(10))
        ],
        "history of a key that changed once"
    );
    let all = store.signal_history(tenant, None, None).await?;
    ensure_eq!(all.len(), 3, "history rows of all keys");
    ensure!(
        all.windows(2).all(|w| w[0].observed_at <= w[1].observed_at),
        "history must be oldest first"
    );
    let recent = store.signal_history(tenant, None, Some(at(10))).await?;
    ensure_eq!(recent.len(), 1, "history since minute 10 (inclusive)");
    let state = store.load_tenant_state(tenant).await?;
    ensure_eq!(
        state.signals,
        vec![
            signal(key, SignalValue::Bool(false), 15),
            signal(steady, SignalValue::Number(7.0), 15)
        ],
        "current signals carry the latest observation"
    );
    Ok(())
}

/// A status change stores exactly the one transition given and moves `since`.
pub async fn status_change_writes_one_transition_and_updates_since(
    store: &dyn Store,
) -> CheckResult {
    let tenant = "conformance-status";
    let id = "msgraph.mfa.all_users";
    let first = Poll::new(tenant, 0)
        .actions(vec![action(id, TestStatus::Passed, 1.0, 27)])
        .record(store)
        .await?;
    ensure_eq!(first.len(), 1, "transitions of a first evaluation");
    Poll::new(tenant, 5)
        .actions(vec![action(id, TestStatus::Passed, 1.0, 27)])
        .record(store)
        .await?;
    let state = store.load_tenant_state(tenant).await?;
    ensure_eq!(state_of(&state, id)?.since, at(0), "since while passed");

    Poll::new(tenant, 10)
        .actions(vec![action(id, TestStatus::FailedHighRisk, 0.0, 27)])
        .record(store)
        .await?;
    let rows = store.transitions(tenant, None, None).await?;
    ensure_eq!(rows.len(), 2, "transitions after one status change");
    let last = &rows[1].transition;
    ensure_eq!(last.from_status, Some(TestStatus::Passed), "from_status");
    ensure_eq!(last.to_status, TestStatus::FailedHighRisk, "to_status");
    ensure_eq!(last.from_credit, Some(1.0), "from_credit");
    ensure_eq!(last.at, at(10), "transition at");
    let state = store.load_tenant_state(tenant).await?;
    let s = state_of(&state, id)?;
    ensure_eq!(s.test_status, TestStatus::FailedHighRisk, "stored status");
    ensure_eq!(s.since, at(10), "since after the change");
    ensure_eq!(s.points_achieved, 0.0, "points_achieved after the change");
    Ok(())
}

/// A credit change within one status updates the state but keeps `since`.
pub async fn credit_change_keeps_since(store: &dyn Store) -> CheckResult {
    let tenant = "conformance-credit";
    let id = "msgraph.mfa.registered";
    Poll::new(tenant, 0)
        .actions(vec![action(id, TestStatus::PartiallyTested, 0.8, 27)])
        .record(store)
        .await?;
    let written = Poll::new(tenant, 5)
        .actions(vec![action(id, TestStatus::PartiallyTested, 0.6, 27)])
        .record(store)
        .await?;
    ensure_eq!(written.len(), 1, "transitions of a credit change");
    let state = store.load_tenant_state(tenant).await?;
    let s = state_of(&state, id)?;
    ensure_eq!(s.credit, 0.6, "credit");
    ensure_eq!(s.points_achieved, 27.0 * 0.6, "points_achieved");
    ensure_eq!(s.since, at(0), "since");
    ensure_eq!(
        store.transitions(tenant, None, None).await?.len(),
        2,
        "transitions"
    );
    Ok(())
}

/// Even when the caller passes no transitions, `since` follows the stored status.
pub async fn since_follows_status_without_transitions(store: &dyn Store) -> CheckResult {
    let tenant = "conformance-since";
    let id = "a";
    for (minute, status, credit) in [
        (0, TestStatus::Passed, 1.0),
        (5, TestStatus::Passed, 1.0),
        (10, TestStatus::FailedLowRisk, 0.0),
        (15, TestStatus::FailedLowRisk, 0.0),
    ] {
        let poll = Poll::new(tenant, minute);
        let eval = evaluation(tenant, minute, vec![action(id, status, credit, 9)]);
        poll.record_with(store, &eval, &[]).await?;
    }
    let state = store.load_tenant_state(tenant).await?;
    let s = state_of(&state, id)?;
    ensure_eq!(s.test_status, TestStatus::FailedLowRisk, "status");
    ensure_eq!(s.since, at(10), "since");
    ensure!(
        store.transitions(tenant, None, None).await?.is_empty(),
        "the store must not invent transitions"
    );
    Ok(())
}

/// Re-recording an identical evaluation writes no transition and keeps `since`.
pub async fn unchanged_state_writes_no_transition(store: &dyn Store) -> CheckResult {
    let tenant = "conformance-unchanged";
    let actions = || {
        vec![
            action("a", TestStatus::Passed, 1.0, 27),
            action("b", TestStatus::FailedMediumRisk, 0.0, 3),
        ]
    };
    for minute in [0, 5, 10] {
        Poll::new(tenant, minute)
            .actions(actions())
            .record(store)
            .await?;
    }
    ensure_eq!(
        store.transitions(tenant, None, None).await?.len(),
        2,
        "transitions (the two first evaluations only)"
    );
    let state = store.load_tenant_state(tenant).await?;
    for id in ["a", "b"] {
        ensure_eq!(state_of(&state, id)?.since, at(0), format!("since of {id}"));
    }
    ensure_eq!(
        store.recent_polls(tenant, 10).await?.len(),
        1,
        "full poll rows (the first; the two unchanged polls are only counted)"
    );
    let days = store.poll_days(tenant, None).await?;
    ensure_eq!(
        days.iter()
            .map(|d| (d.polls, d.recorded))
            .collect::<Vec<_>>(),
        vec![(3, 1)],
        "polls counted that day, recorded"
    );
    Ok(())
}

/// A score snapshot is written on the first poll and whenever the score changes, only then.
pub async fn score_snapshot_only_on_change(store: &dyn Store) -> CheckResult {
    let tenant = "conformance-score";
    let id = "a";
    let plan = [
        (0, TestStatus::Passed, 1.0),
        (5, TestStatus::Passed, 1.0),
        (10, TestStatus::FailedHighRisk, 0.0),
        (15, TestStatus::FailedHighRisk, 0.0),
        (20, TestStatus::PartiallyTested, 0.5),
        (25, TestStatus::PartiallyTested, 0.5),
    ];
    for (minute, status, credit) in plan {
        Poll::new(tenant, minute)
            .actions(vec![action(id, status, credit, 27)])
            .record(store)
            .await?;
    }
    let snapshots = store.score_history(tenant, None).await?;
    let got: Vec<_> = snapshots
        .iter()
        .map(|s| {
            (
                s.at,
                s.score.points_achieved,
                s.score.points_possible,
                s.score.ratio,
            )
        })
        .collect();
    ensure_eq!(
        got,
        vec![
            (at(0), 27.0, 27.0, 1.0),
            (at(10), 0.0, 27.0, 0.0),
            (at(20), 13.5, 27.0, 0.5)
        ],
        "snapshots"
    );
    ensure_eq!(
        store.score_history(tenant, Some(at(10))).await?.len(),
        2,
        "snapshots since minute 10 (inclusive)"
    );
    Ok(())
}

/// `transitions` filters by action and by `since` (inclusive), oldest first, and round-trips
/// every field.
pub async fn transitions_filter_by_action_and_since(store: &dyn Store) -> CheckResult {
    let tenant = "conformance-filters";
    let steps = [
        (0, TestStatus::Passed, TestStatus::Passed),
        (5, TestStatus::FailedHighRisk, TestStatus::Passed),
        (10, TestStatus::FailedHighRisk, TestStatus::FailedLowRisk),
        (15, TestStatus::Passed, TestStatus::FailedLowRisk),
    ];
    let mut written = Vec::new();
    for (minute, a, b) in steps {
        let credit = |s: TestStatus| if s == TestStatus::Passed { 1.0 } else { 0.0 };
        written.extend(
            Poll::new(tenant, minute)
                .actions(vec![
                    action("a", a, credit(a), 27),
                    action("b", b, credit(b), 9),
                ])
                .record(store)
                .await?,
        );
    }
    let all = store.transitions(tenant, None, None).await?;
    ensure_eq!(all.len(), 5, "all transitions");
    let got: Vec<_> = all.iter().map(|r| r.transition.clone()).collect();
    ensure_eq!(got, written, "transitions as written, oldest first");
    ensure!(
        all.iter().all(|r| r.tenant == tenant),
        "transition rows carry the tenant"
    );

    let only_a: Vec<_> = store
        .transitions(tenant, Some("a"), None)
        .await?
        .into_iter()
        .map(|r| (r.transition.action_id, r.transition.at))
        .collect();
    ensure_eq!(
        only_a,
        vec![
            ("a".to_string(), at(0)),
            ("a".to_string(), at(5)),
            ("a".to_string(), at(15))
        ],
        "transitions of action a"
    );
    let a_since: Vec<_> = store
        .transitions(tenant, Some("a"), Some(at(5)))
        .await?
        .into_iter()
        .map(|r| r.transition.at)
        .collect();
    ensure_eq!(
        a_since,
        vec![at(5), at(15)],
        "transitions of a since minute 5"
    );
    let since: Vec<_> = store
        .transitions(tenant, None, Some(at(10)))
        .await?
        .into_iter()
        .map(|r| (r.transition.action_id, r.transition.at))
        .collect();
    ensure_eq!(
        since,
        vec![("b".to_string(), at(10)), ("a".to_string(), at(15))],
        "transitions since minute 10"
    );
    ensure!(
        store
            .transitions(tenant, Some("zzz"), None)
            .await?
            .is_empty(),
        "an unknown action has no transitions"
    );
    Ok(())
}

/// Everything the store can observe after a poll, for before/after comparisons.
#[derive(Debug, PartialEq)]
struct Observed {
    state: TenantState,
    polls: usize,
    days: Vec<crate::store::PollDay>,
    last: Vec<crate::store::ConnectorLastPoll>,
    transitions: usize,
    history: usize,
    snapshots: usize,
}

async fn observe(store: &dyn Store, tenant: &str) -> Result<Observed, StoreError> {
    let mut state = store.load_tenant_state(tenant).await?;
    state.gaps = sorted_gaps(state.gaps);
    Ok(Observed {
        state,
        polls: store.recent_polls(tenant, 1000).await?.len(),
        days: store.poll_days(tenant, None).await?,
        last: store.last_polls(tenant).await?,
        transitions: store.transitions(tenant, None, None).await?.len(),
        history: store.signal_history(tenant, None, None).await?.len(),
        snapshots: store.score_history(tenant, None).await?.len(),
    })
}

/// A poll that fails inside its transaction (here: a credit outside [0, 1], rejected by the
/// schema after the signals and gaps were written) leaves nothing behind.
pub async fn failed_poll_leaves_nothing(store: &dyn Store) -> CheckResult {
    let tenant = "conformance-atomic";
    Poll::new(tenant, 0)
        .signals(vec![signal("x.flag", SignalValue::Bool(true), 0)])
        .gaps(vec![gap("x.mfa.", "forbidden")])
        .actions(vec![action("a", TestStatus::Passed, 1.0, 27)])
        .record(store)
        .await?;
    let before = observe(store, tenant).await?;

    let mut broken = action("b", TestStatus::Passed, 1.5, 9);
    broken.points_achieved = 13.5;
    let result = Poll::new(tenant, 5)
        .signals(vec![
            signal("x.flag", SignalValue::Bool(false), 5),
            signal("x.new", SignalValue::Number(1.0), 5),
        ])
        .gaps(vec![gap("x.other.", "timeout")])
        .actions(vec![
            action("a", TestStatus::FailedHighRisk, 0.0, 27),
            broken,
        ])
        .record(store)
        .await;
    match result {
        Err(e) => ensure_eq!(e.kind(), "database", "kind of the failure"),
        Ok(_) => {
            return Err(ConformanceFailure(
                "a credit of 1.5 must be rejected by the store".into(),
            ));
        }
    }
    let after = observe(store, tenant).await?;
    ensure_eq!(after, before, "state after a failed poll");

    // The store is still usable afterwards.
    Poll::new(tenant, 10)
        .signals(vec![signal("x.flag", SignalValue::Bool(false), 10)])
        .record(store)
        .await?;
    ensure_eq!(
        observe(store, tenant).await?.polls,
        2,
        "polls after recovery"
    );
    Ok(())
}

/// Invalid input (a non-finite number, an evaluation of another tenant) is rejected as
/// `invalid` and writes nothing.
pub async fn invalid_input_is_rejected_before_writing(store: &dyn Store) -> CheckResult {
    let tenant = "conformance-invalid";
    Poll::new(tenant, 0)
        .signals(vec![signal("x.count", SignalValue::Number(1.0), 0)])
        .record(store)
        .await?;
    let before = observe(store, tenant).await?;

    let result = Poll::new(tenant, 5)
        .signals(vec![signal("x.count", SignalValue::Number(f64::NAN), 5)])
        .record(store)
        .await;
    ensure_eq!(
        result.err().map(|e| e.kind()),
        Some("invalid"),
        "kind for a NaN signal"
    );
    let poll = Poll::new(tenant, 5);
    let other = evaluation("conformance-someone-else", 5, Vec::new());
    let result = poll.record_with(store, &other, &[]).await;
    ensure_eq!(
        result.err().map(|e| e.kind()),
        Some("invalid"),
        "kind for an evaluation of another tenant"
    );
    ensure_eq!(
        observe(store, tenant).await?,
        before,
        "state after invalid input"
    );
    Ok(())
}

/// Two tenants with the same keys and actions do not see each other.
pub async fn tenants_are_isolated(store: &dyn Store) -> CheckResult {
    let (t1, t2) = ("conformance-iso-1", "conformance-iso-2");
    Poll::new(t1, 0)
        .signals(vec![signal("k.flag", SignalValue::Bool(true), 0)])
        .gaps(vec![gap("k.mfa.", "forbidden")])
        .actions(vec![action("a", TestStatus::Passed, 1.0, 27)])
        .record(store)
        .await?;
    Poll::new(t2, 1)
        .signals(vec![signal("k.flag", SignalValue::Bool(false), 1)])
        .gaps(vec![gap("k.ca.", "throttled")])
        .actions(vec![action("a", TestStatus::FailedLowRisk, 0.0, 27)])
        .record(store)
        .await?;
    // t2's clean poll of the same connector must not clear t1's gaps.
    Poll::new(t2, 2)
        .signals(vec![signal("k.flag", SignalValue::Bool(false), 2)])
        .actions(vec![action("a", TestStatus::FailedLowRisk, 0.0, 27)])
        .record(store)
        .await?;

    let s1 = store.load_tenant_state(t1).await?;
    ensure_eq!(
        s1.signals,
        vec![signal("k.flag", SignalValue::Bool(true), 0)],
        "t1 signals"
    );
    ensure_eq!(s1.gaps, vec![gap("k.mfa.", "forbidden")], "t1 gaps");
    ensure_eq!(
        state_of(&s1, "a")?.test_status,
        TestStatus::Passed,
        "t1 status"
    );
    let s2 = store.load_tenant_state(t2).await?;
    ensure!(s2.gaps.is_empty(), "t2 gaps must be cleared");
    ensure_eq!(
        state_of(&s2, "a")?.test_status,
        TestStatus::FailedLowRisk,
        "t2 status"
    );
    ensure_eq!(
        store.transitions(t1, None, None).await?.len(),
        1,
        "t1 transitions"
    );
    ensure_eq!(
        store.transitions(t2, None, None).await?.len(),
        1,
        "t2 transitions"
    );
    ensure_eq!(
        store.score_history(t1, None).await?.len(),
        1,
        "t1 snapshots"
    );
    ensure_eq!(
        store.score_history(t2, None).await?.len(),
        1,
        "t2 snapshots"
    );
    ensure_eq!(store.recent_polls(t1, 10).await?.len(), 1, "t1 polls");
    ensure_eq!(
        store.signal_history(t1, None, None).await?.len(),
        1,
        "t1 history"
    );
    Ok(())
}

/// Actions absent from a later evaluation keep their stored state.
pub async fn missing_actions_keep_their_state(store: &dyn Store) -> CheckResult {
    let tenant = "conformance-missing";
    Poll::new(tenant, 0)
        .actions(vec![
            action("a", TestStatus::Passed, 1.0, 27),
            action("b", TestStatus::FailedHighRisk, 0.0, 9),
        ])
        .record(store)
        .await?;
    Poll::new(tenant, 5)
        .actions(vec![action("a", TestStatus::Passed, 1.0, 27)])
        .record(store)
        .await?;
    let state = store.load_tenant_state(tenant).await?;
    ensure_eq!(state.actions.len(), 2, "action states");
    ensure_eq!(
        state_of(&state, "b")?.test_status,
        TestStatus::FailedHighRisk,
        "b status"
    );
    Ok(())
}

/// Duplicate signal keys or gap prefixes in one poll do not fail it: the last one wins.
pub async fn duplicates_in_one_poll_last_wins(store: &dyn Store) -> CheckResult {
    let tenant = "conformance-dupes";
    let mut second_gap = gap("d.mfa.", "timeout");
    second_gap.reason = "second".into();
    Poll::new(tenant, 0)
        .signals(vec![
            signal("d.flag", SignalValue::Bool(true), 0),
            signal("d.flag", SignalValue::Bool(false), 0),
        ])
        .gaps(vec![gap("d.mfa.", "forbidden"), second_gap.clone()])
        .record(store)
        .await?;
    let state = store.load_tenant_state(tenant).await?;
    ensure_eq!(
        state.signals,
        vec![signal("d.flag", SignalValue::Bool(false), 0)],
        "signals"
    );
    ensure_eq!(state.gaps, vec![second_gap], "gaps");
    Ok(())
}

/// Two connectors of one tenant recording at the same time both succeed.
pub async fn concurrent_polls_of_one_tenant_both_land(store: &dyn Store) -> CheckResult {
    let tenant = "conformance-concurrent";
    let actions = vec![action("a", TestStatus::Passed, 1.0, 27)];
    let one = Poll::new(tenant, 0)
        .connector("msgraph")
        .signals(vec![signal("msgraph.flag", SignalValue::Bool(true), 0)])
        .actions(actions.clone())
        .record(store);
    let two = Poll::new(tenant, 0)
        .connector("github")
        .signals(vec![signal("github.flag", SignalValue::Bool(true), 0)])
        .actions(actions)
        .record(store);
    let (r1, r2) = tokio::join!(one, two);
    r1?;
    r2?;
    let state = store.load_tenant_state(tenant).await?;
    ensure_eq!(state.signals.len(), 2, "signals of both connectors");
    ensure_eq!(store.recent_polls(tenant, 10).await?.len(), 2, "polls");
    ensure_eq!(
        store.score_history(tenant, None).await?.len(),
        1,
        "snapshots"
    );
    Ok(())
}
