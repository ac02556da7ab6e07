//! Conformance checks of compact poll records and of what a steady poll skips (issue 12):
//! which polls get a full `polls` row, the daily counts (`poll_days`) and each connector's
//! latest poll (`connector_state`), the freshness of signals a steady poll does not rewrite
//! (after a restart too), another writer of the same database, and retention.
//!
//! Every check returns a [`ConformanceFailure`] naming what differed instead of panicking.

use chrono::TimeDelta;

use super::polls::{Poll, action, at, gap, signal};
use super::{Check, CheckResult, ConformanceFailure};
use crate::evaluation::{ActionResult, TestStatus};
use crate::signals::Signal;
use crate::signals::SignalValue;
use crate::store::{PollDay, PollOutcome, Store};

macro_rules! checks {
    ($($name:ident),* $(,)?) => {
        /// Every compact-record check, in a stable order.
        pub const COMPACT_CHECKS: &[Check] = &[
            $(Check { name: stringify!($name), run: |store| Box::pin($name(store)) },)*
        ];
    };
}

checks![
    steady_polls_are_counted_not_recorded,
    every_failure_change_and_start_is_recorded,
    unchanged_signals_stay_fresh_after_a_restart,
    a_partial_poll_keeps_the_freshness_of_what_it_missed,
    another_writer_is_never_mistaken_for_the_same_state,
    a_signal_overwritten_by_another_connector_is_written_again,
    retention_prunes_the_daily_counts,
];

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

/// The two signals of the checks' tenants: `msgraph.a.enabled = true` and `msgraph.b.ratio`,
/// observed at `minute` (each expires 15 minutes later).
fn two_signals(ratio: f64, minute: i64) -> Vec<Signal> {
    vec![
        signal("msgraph.a.enabled", SignalValue::Bool(true), minute),
        signal("msgraph.b.ratio", SignalValue::Number(ratio), minute),
    ]
}

/// The checks' one action `a` (27 points), passed.
fn passed() -> Vec<ActionResult> {
    vec![action("a", TestStatus::Passed, 1.0, 27)]
}

/// The checks' one action `a`, failed (high risk).
fn failed() -> Vec<ActionResult> {
    vec![action("a", TestStatus::FailedHighRisk, 0.0, 27)]
}

/// A poll of `msgraph` at `minute` with [`two_signals`] and `actions`.
fn two_signal_poll(tenant: &str, minute: i64, ratio: f64, actions: Vec<ActionResult>) -> Poll<'_> {
    Poll::new(tenant, minute)
        .signals(two_signals(ratio, minute))
        .actions(actions)
}

/// A poll of the steady tenant at `minute`.
fn steady(tenant: &str, minute: i64) -> Poll<'_> {
    two_signal_poll(tenant, minute, 0.5, passed())
}

/// A day's counts: polls, successes, partials, failures, timeouts, full rows.
fn counts(d: &PollDay) -> [u64; 6] {
    [
        d.polls,
        d.successes,
        d.partials,
        d.failures,
        d.timeouts,
        d.recorded,
    ]
}

/// The outcomes of the tenant's full poll rows, oldest first.
async fn recorded(
    store: &dyn Store,
    tenant: &str,
) -> Result<Vec<(i64, PollOutcome)>, ConformanceFailure> {
    let mut rows = store.recent_polls(tenant, 1000).await?;
    rows.reverse();
    Ok(rows
        .into_iter()
        .map(|p| ((p.started_at - at(0)).num_minutes(), p.outcome))
        .collect())
}

/// Successful polls that change nothing get no `polls` row: they are counted in the day's
/// `poll_days` row, and the connector's latest poll (`last_polls`) is the latest of them.
pub async fn steady_polls_are_counted_not_recorded(store: &dyn Store) -> CheckResult {
    let tenant = "conformance-steady";
    for minute in [0, 5, 10, 15] {
        steady(tenant, minute).record(store).await?;
    }
    ensure_eq!(
        recorded(store, tenant).await?,
        vec![(0, PollOutcome::Success)],
        "full rows: the first poll only"
    );
    let days = store.poll_days(tenant, None).await?;
    ensure_eq!(days.len(), 1, "days");
    let d = &days[0];
    ensure_eq!(
        counts(d),
        [4, 4, 0, 0, 0, 1],
        "polls, successes, partials, failures, timeouts, recorded"
    );
    ensure_eq!(d.connector.as_str(), "msgraph", "connector");
    ensure_eq!(d.day, at(0).date_naive(), "day");
    ensure_eq!(
        (d.first_started_at, d.last_started_at, d.last_finished_at),
        (at(0), at(15), at(15) + TimeDelta::seconds(3)),
        "first start, last start, last end"
    );
    let last = store.last_polls(tenant).await?;
    ensure_eq!(last.len(), 1, "connectors with a last poll");
    ensure_eq!(
        (
            last[0].connector.as_str(),
            last[0].started_at,
            last[0].outcome,
            last[0].last_success_at
        ),
        (
            "msgraph",
            at(15),
            PollOutcome::Success,
            Some(at(15) + TimeDelta::seconds(3))
        ),
        "last poll"
    );
    ensure_eq!(
        store.signal_history(tenant, None, None).await?.len(),
        2,
        "history rows (first observations only)"
    );
    ensure_eq!(
        store.score_history(tenant, None).await?.len(),
        1,
        "score snapshots"
    );
    // A poll on the next UTC day opens a new day.
    steady(tenant, 24 * 60).record(store).await?;
    let days = store.poll_days(tenant, None).await?;
    ensure_eq!(
        days.iter().map(|d| (d.day, d.polls)).collect::<Vec<_>>(),
        vec![(at(0).date_naive(), 4), ((at(24 * 60)).date_naive(), 1)],
        "days, oldest first"
    );
    ensure_eq!(
        store.poll_days(tenant, Some(at(60))).await?.len(),
        1,
        "days whose last poll is since an instant"
    );
    Ok(())
}

/// A full row for: the connector's first poll, every poll that is not a success, the first
/// success after one, a changed signal value, a status change, the tenant's first poll after a
/// start; the gaps of the latest poll are its connector's last gaps, and a success clears them.
pub async fn every_failure_change_and_start_is_recorded(store: &dyn Store) -> CheckResult {
    let tenant = "conformance-recorded";
    use PollOutcome::*;
    steady(tenant, 0).record(store).await?; // first: recorded
    steady(tenant, 5).record(store).await?; // steady
    steady(tenant, 10)
        .gaps(vec![gap("msgraph.ca.", "forbidden")])
        .record(store)
        .await?; // partial
    let last = store.last_polls(tenant).await?;
    ensure_eq!(
        last.first()
            .map(|l| (l.outcome, l.gaps.len(), l.last_success_at)),
        Some((Partial, 1, Some(at(5) + TimeDelta::seconds(3)))),
        "last poll after the partial one"
    );
    steady(tenant, 15).record(store).await?; // first success after a partial
    steady(tenant, 20).record(store).await?; // steady
    Poll::new(tenant, 25)
        .outcome(Failure)
        .gaps(vec![gap("msgraph.", "unauthorized")])
        .actions(passed())
        .record(store)
        .await?;
    Poll::new(tenant, 30)
        .outcome(Timeout)
        .gaps(vec![gap("msgraph.", "timeout")])
        .actions(passed())
        .record(store)
        .await?;
    steady(tenant, 35).record(store).await?; // recovery
    steady(tenant, 40).record(store).await?; // steady
    two_signal_poll(tenant, 45, 0.75, passed())
        .record(store)
        .await?; // a value changed
    two_signal_poll(tenant, 50, 0.75, failed())
        .record(store)
        .await?; // a status changed
    two_signal_poll(tenant, 55, 0.75, failed())
        .record(store)
        .await?; // steady
    two_signal_poll(tenant, 60, 0.75, failed())
        .after_start()
        .record(store)
        .await?; // first after a start
    ensure_eq!(
        recorded(store, tenant).await?,
        vec![
            (0, Success),
            (10, Partial),
            (15, Success),
            (25, Failure),
            (30, Timeout),
            (35, Success),
            (45, Success),
            (50, Success),
            (60, Success),
        ],
        "full rows (minute, outcome)"
    );
    let days = store.poll_days(tenant, None).await?;
    let d = days
        .first()
        .ok_or_else(|| ConformanceFailure("no day counted".into()))?;
    ensure_eq!(
        counts(d),
        [13, 10, 1, 1, 1, 9],
        "polls, successes, partials, failures, timeouts, recorded"
    );
    let last = store.last_polls(tenant).await?;
    ensure_eq!(
        last.first()
            .map(|l| (l.started_at, l.outcome, l.gaps.len())),
        Some((at(60), Success, 0)),
        "last poll"
    );
    let state = store.load_tenant_state(tenant).await?;
    ensure_eq!(state.gaps, vec![], "gaps cleared by the successes");
    Ok(())
}

/// Signals a steady poll does not rewrite are fresh as of that poll for whoever loads the
/// tenant's state (a restart), with each signal's own lifetime kept, and stay so once a later
/// poll writes them again.
pub async fn unchanged_signals_stay_fresh_after_a_restart(store: &dyn Store) -> CheckResult {
    let tenant = "conformance-fresh";
    // One signal with the connector's lifetime (15 minutes), one whose source gave a shorter
    // one (5 minutes).
    let signals = |minute: i64| {
        let mut short = signal("msgraph.short", SignalValue::Bool(true), minute);
        short.expires_at = at(minute + 5);
        vec![
            signal("msgraph.long", SignalValue::Bool(true), minute),
            short,
        ]
    };
    let poll = |minute| {
        Poll::new(tenant, minute)
            .signals(signals(minute))
            .actions(passed())
    };
    for minute in [0, 5, 10] {
        poll(minute).record(store).await?;
    }
    ensure_eq!(
        recorded(store, tenant).await?.len(),
        1,
        "full rows (the steady polls did not rewrite the signals)"
    );
    let times = |state: &crate::store::TenantState| {
        state
            .signals
            .iter()
            .map(|s| (s.key.to_string(), s.observed_at, s.expires_at))
            .collect::<Vec<_>>()
    };
    let fresh_at = |minute: i64| {
        vec![
            ("msgraph.long".to_string(), at(minute), at(minute + 15)),
            ("msgraph.short".to_string(), at(minute), at(minute + 5)),
        ]
    };
    ensure_eq!(
        times(&store.load_tenant_state(tenant).await?),
        fresh_at(10),
        "signals as loaded after the steady polls"
    );
    // A value changes: the signals are written again, fresh as of that poll.
    let mut changed = signals(15);
    changed[1].value = SignalValue::Bool(false);
    Poll::new(tenant, 15)
        .signals(changed)
        .actions(passed())
        .record(store)
        .await?;
    ensure_eq!(
        times(&store.load_tenant_state(tenant).await?),
        fresh_at(15),
        "signals as loaded after a change"
    );
    ensure_eq!(
        store.signal_history(tenant, None, None).await?.len(),
        3,
        "history rows: two first observations, one change"
    );
    Ok(())
}

/// A poll that misses some of its connector's signals (partial, or a failure) leaves those
/// as fresh as the last poll that observed them, not older and not newer; the signals of
/// another connector keep their own freshness.
pub async fn a_partial_poll_keeps_the_freshness_of_what_it_missed(
    store: &dyn Store,
) -> CheckResult {
    let tenant = "conformance-missed";
    for minute in [0, 5] {
        Poll::new(tenant, minute)
            .connector("github")
            .signals(vec![signal("github.flag", SignalValue::Bool(true), minute)])
            .actions(passed())
            .record(store)
            .await?;
    }
    for minute in [0, 5, 10] {
        steady(tenant, minute).record(store).await?;
    }
    // Partial: only `a` observed.
    Poll::new(tenant, 15)
        .signals(vec![signal(
            "msgraph.a.enabled",
            SignalValue::Bool(true),
            15,
        )])
        .gaps(vec![gap("msgraph.b.", "forbidden")])
        .actions(passed())
        .record(store)
        .await?;
    // Failure: nothing observed.
    Poll::new(tenant, 20)
        .outcome(PollOutcome::Failure)
        .gaps(vec![gap("msgraph.", "unauthorized")])
        .actions(passed())
        .record(store)
        .await?;
    let state = store.load_tenant_state(tenant).await?;
    let times: Vec<_> = state
        .signals
        .iter()
        .map(|s| (&*s.key, s.observed_at, s.expires_at))
        .collect();
    ensure_eq!(
        times,
        vec![
            ("github.flag", at(5), at(20)),
            ("msgraph.a.enabled", at(15), at(30)),
            ("msgraph.b.ratio", at(10), at(25)),
        ],
        "signals (key, observed, expires)"
    );
    Ok(())
}

/// Another writer of the same database (a second daemon, an older process) that stores other
/// signals or another state in between is never mistaken for the state a poll brings: the
/// poll writes its own again.
pub async fn another_writer_is_never_mistaken_for_the_same_state(store: &dyn Store) -> CheckResult {
    let tenant = "conformance-two-writers";
    // "A" stores passed / 0.5, "B" failed / 0.75, "A" its own again (its memory unchanged, so
    // it derives no transition: the store must still compare with what B left).
    two_signal_poll(tenant, 0, 0.5, passed())
        .record(store)
        .await?;
    two_signal_poll(tenant, 5, 0.75, failed())
        .record(store)
        .await?;
    let eval = super::polls::evaluation(tenant, 10, passed());
    Poll::new(tenant, 10)
        .signals(two_signals(0.5, 10))
        .record_with(store, &eval, &[])
        .await?;
    let state = store.load_tenant_state(tenant).await?;
    ensure_eq!(
        state.actions.get("a").map(|a| (a.test_status, a.since)),
        Some((TestStatus::Passed, at(10))),
        "action state (A's again, since A's write)"
    );
    ensure_eq!(
        state
            .signals
            .iter()
            .map(|s| (&*s.key, s.value.clone()))
            .collect::<Vec<_>>(),
        vec![
            ("msgraph.a.enabled", SignalValue::Bool(true)),
            ("msgraph.b.ratio", SignalValue::Number(0.5)),
        ],
        "signal values"
    );
    ensure_eq!(
        store
            .signal_history(tenant, Some("msgraph.b.ratio"), None)
            .await?
            .len(),
        3,
        "value changes of b"
    );
    ensure_eq!(
        store.score_history(tenant, None).await?.len(),
        3,
        "score snapshots"
    );
    ensure_eq!(
        recorded(store, tenant).await?.len(),
        3,
        "full rows (each poll changed something)"
    );
    Ok(())
}

/// A connector's unchanged signal set is not trusted once one of its rows was written by
/// another connector (or another writer) since: the next poll writes its value again.
pub async fn a_signal_overwritten_by_another_connector_is_written_again(
    store: &dyn Store,
) -> CheckResult {
    let tenant = "conformance-overwritten";
    for minute in [0, 5] {
        steady(tenant, minute).record(store).await?;
    }
    Poll::new(tenant, 7)
        .connector("other")
        .signals(vec![signal(
            "msgraph.b.ratio",
            SignalValue::Number(0.25),
            7,
        )])
        .actions(passed())
        .record(store)
        .await?;
    steady(tenant, 10).record(store).await?;
    let state = store.load_tenant_state(tenant).await?;
    ensure_eq!(
        state
            .signals
            .iter()
            .map(|s| (&*s.key, s.value.clone(), s.observed_at))
            .collect::<Vec<_>>(),
        vec![
            ("msgraph.a.enabled", SignalValue::Bool(true), at(10)),
            ("msgraph.b.ratio", SignalValue::Number(0.5), at(10)),
        ],
        "signals (the connector's own values, fresh)"
    );
    ensure_eq!(
        store
            .signal_history(tenant, Some("msgraph.b.ratio"), None)
            .await?
            .len(),
        3,
        "value changes of b"
    );
    Ok(())
}

/// `[history] retention` prunes the daily counts whose last poll is older than the cutoff,
/// with the full poll rows, and keeps every later day and each connector's latest poll.
pub async fn retention_prunes_the_daily_counts(store: &dyn Store) -> CheckResult {
    let tenant = "conformance-retention-days";
    let day = 24 * 60;
    for minute in [0, 5, day, day + 5] {
        steady(tenant, minute).record(store).await?;
    }
    steady(tenant, 2 * day).after_start().record(store).await?;
    let report = store.prune_history(at(day + 1)).await?;
    ensure_eq!(report.poll_days, 1, "days pruned");
    ensure_eq!(report.polls, 1, "full rows pruned (the first poll's)");
    let days = store.poll_days(tenant, None).await?;
    ensure_eq!(
        days.iter().map(|d| (d.day, d.polls)).collect::<Vec<_>>(),
        vec![(at(day).date_naive(), 2), (at(2 * day).date_naive(), 1)],
        "days kept (the one straddling the cutoff too)"
    );
    ensure_eq!(
        store
            .last_polls(tenant)
            .await?
            .first()
            .map(|l| l.started_at),
        Some(at(2 * day)),
        "last poll"
    );
    // The newest full row is never pruned (a `polls` id, which marks stored signals, is then
    // never given again by SQLite).
    let report = store.prune_history(at(3 * day)).await?;
    ensure_eq!(
        (report.polls, report.poll_days),
        (0, 2),
        "pruned past the end"
    );
    ensure_eq!(
        recorded(store, tenant).await?,
        vec![(2 * day, PollOutcome::Success)],
        "full rows kept"
    );
    Ok(())
}

/// Rows of `polls` as postured wrote them before migration 0008 (SQL both backends run): two
/// polls of `msgraph` on 2026-01-01 (a success, a failure), one on 2026-01-02, a timeout of
/// `github` on 2026-01-01. A backend's test applies the migrations before 0008, runs this, then
/// migrates and calls [`polls_stored_before_0008_are_counted`].
pub(crate) const POLLS_BEFORE_0008: &str = "INSERT INTO polls \
    (tenant, connector, started_at, finished_at, outcome, error_summary) VALUES \
    ('conformance-old', 'msgraph', 1767225600000, 1767225603000, 'success', NULL), \
    ('conformance-old', 'msgraph', 1767225900000, 1767225903000, 'failure', \
    '[{\"prefix\":\"msgraph.\",\"kind\":\"unauthorized\",\"reason\":\"401\"}]'), \
    ('conformance-old', 'msgraph', 1767312000000, 1767312003000, 'success', NULL), \
    ('conformance-old', 'github', 1767225600000, 1767225601000, 'timeout', \
    '[{\"prefix\":\"github.\",\"kind\":\"timeout\",\"reason\":\"deadline\"}]')";

/// Migration 0008 counts the polls stored before it in `poll_days` and gives each connector
/// its latest one; the full rows stay, and the next poll is counted on top.
pub(crate) async fn polls_stored_before_0008_are_counted(store: &dyn Store) -> CheckResult {
    let tenant = "conformance-old";
    let day = 24 * 60;
    let days: Vec<_> = store
        .poll_days(tenant, None)
        .await?
        .into_iter()
        .map(|d| {
            (
                d.connector.clone(),
                d.day,
                counts(&d),
                d.first_started_at,
                d.last_started_at,
            )
        })
        .collect();
    ensure_eq!(
        days,
        vec![
            (
                "github".to_string(),
                at(0).date_naive(),
                [1, 0, 0, 0, 1, 1],
                at(0),
                at(0)
            ),
            (
                "msgraph".to_string(),
                at(0).date_naive(),
                [2, 1, 0, 1, 0, 2],
                at(0),
                at(5)
            ),
            (
                "msgraph".to_string(),
                at(day).date_naive(),
                [1, 1, 0, 0, 0, 1],
                at(day),
                at(day)
            ),
        ],
        "days (connector, day, counts, first, last)"
    );
    let last: Vec<_> = store
        .last_polls(tenant)
        .await?
        .into_iter()
        .map(|l| {
            (
                l.connector,
                l.started_at,
                l.outcome,
                l.gaps.len(),
                l.last_success_at,
            )
        })
        .collect();
    ensure_eq!(
        last,
        vec![
            ("github".to_string(), at(0), PollOutcome::Timeout, 1, None),
            (
                "msgraph".to_string(),
                at(day),
                PollOutcome::Success,
                0,
                Some(at(day) + TimeDelta::seconds(3))
            ),
        ],
        "last polls"
    );
    steady(tenant, day + 5).record(store).await?;
    let days = store.poll_days(tenant, None).await?;
    ensure_eq!(
        days.last().map(|d| (d.polls, d.recorded)),
        Some((2, 2)),
        "the day after a poll (its first signal write is recorded)"
    );
    ensure_eq!(store.recent_polls(tenant, 10).await?.len(), 5, "full rows");
    Ok(())
}
