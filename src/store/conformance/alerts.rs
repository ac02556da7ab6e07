//! Conformance checks of the alert persistence ([`AlertStore`](crate::store::AlertStore) and
//! the alert writes of `record_poll`), run by the same harnesses as [`super::polls::CHECKS`].
//! Same contract: each check takes a freshly migrated, empty store and returns an error instead
//! of panicking.
//!
//! Must not: be called on a production database (checks write rows for `conformance-*`
//! tenants).

use chrono::{DateTime, TimeDelta, Utc};

use super::{Check, CheckResult, ConformanceFailure};
use crate::alerts::{AlertEvent, EventKind, InstanceState, Severity};
use crate::evaluation::{
    ActionResult, ImplementationStatus, ScoreSummary, TenantEvaluation, TestStatus,
};
use crate::signals::SignalValue;
use crate::store::{AlertWrites, PollOutcome, PollRecord, RoutedEvent, Store, StoreError};

/// Every alert conformance check, in a stable order.
pub const ALERT_CHECKS: &[Check] = &[
    Check {
        name: "alert_writes_land_with_the_poll",
        run: |s| Box::pin(alert_writes_land_with_the_poll(s)),
    },
    Check {
        name: "rejected_poll_writes_no_alerts",
        run: |s| Box::pin(rejected_poll_writes_no_alerts(s)),
    },
    Check {
        name: "outbox_delivery_lifecycle",
        run: |s| Box::pin(outbox_delivery_lifecycle(s)),
    },
    Check {
        name: "notifications_are_listed_with_their_state",
        run: |s| Box::pin(notifications_are_listed_with_their_state(s)),
    },
    Check {
        name: "rows_of_one_alert_are_due_in_order",
        run: |s| Box::pin(rows_of_one_alert_are_due_in_order(s)),
    },
    Check {
        name: "duplicate_events_are_stored_once",
        run: |s| Box::pin(duplicate_events_are_stored_once(s)),
    },
    Check {
        name: "category_snapshots_only_on_change",
        run: |s| Box::pin(category_snapshots_only_on_change(s)),
    },
    Check {
        name: "assessment_snapshots_only_on_change",
        run: |s| Box::pin(assessment_snapshots_only_on_change(s)),
    },
    Check {
        name: "transitions_keep_the_rule_that_decided_them",
        run: |s| Box::pin(transitions_keep_the_rule_that_decided_them(s)),
    },
    Check {
        name: "prune_keeps_current_and_firing_rows",
        run: |s| Box::pin(prune_keeps_current_and_firing_rows(s)),
    },
];

fn fail(msg: impl Into<String>) -> ConformanceFailure {
    ConformanceFailure(msg.into())
}

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> CheckResult {
    if cond { Ok(()) } else { Err(fail(msg())) }
}

/// Whole minutes after a fixed instant (the stores keep milliseconds).
fn at(minute: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default() + TimeDelta::minutes(minute)
}

fn evaluation(
    tenant: &str,
    minute: i64,
    credit: f64,
    categories: &[(&str, f64)],
) -> TenantEvaluation {
    TenantEvaluation {
        tenant: tenant.into(),
        evaluated_at: at(minute),
        actions: vec![ActionResult {
            action_id: "a.one".into(),
            title: "One".into(),
            category: "Identity".into(),
            solution: "Entra".into(),
            implementation_status: ImplementationStatus::Implemented,
            test_status: if credit > 0.5 {
                TestStatus::Passed
            } else {
                TestStatus::FailedHighRisk
            },
            credit,
            points: 27,
            points_achieved: 27.0 * credit,
            points_possible: 27.0,
            testing_logic: "x".into(),
            reason: None,
            cause: None,
            signals: Vec::new(),
        }],
        score: ScoreSummary {
            points_achieved: 27.0 * credit,
            points_possible: 27.0,
            ratio: credit,
        },
        categories: categories
            .iter()
            .map(|(c, achieved)| {
                (
                    (*c).to_string(),
                    ScoreSummary {
                        points_achieved: *achieved,
                        points_possible: 27.0,
                        ratio: achieved / 27.0,
                    },
                )
            })
            .collect(),
    }
}

fn event(tenant: &str, kind: EventKind, minute: i64, episode: i64) -> AlertEvent {
    AlertEvent {
        tenant: tenant.into(),
        action_id: "a.one".into(),
        title: "One".into(),
        kind,
        severity: Severity::Critical,
        at: at(minute),
        episode_started_at: at(episode),
        old_status: Some(TestStatus::Passed),
        new_status: TestStatus::FailedHighRisk,
        old_credit: Some(1.0),
        new_credit: 0.0,
        points_lost: 27.0,
        score_delta: -1.0,
        reason: Some("not enforced".into()),
        signals: vec![("msgraph.x".into(), SignalValue::Bool(false))],
        controls: vec!["iso27001:A.8.5".into()],
    }
}

async fn record(
    store: &dyn Store,
    eval: &TenantEvaluation,
    events: &[RoutedEvent],
    states: &[(String, InstanceState)],
) -> Result<(), StoreError> {
    let record = PollRecord {
        tenant: &eval.tenant,
        connector: "msgraph",
        started_at: eval.evaluated_at,
        finished_at: eval.evaluated_at,
        outcome: PollOutcome::Success,
        signals: &[],
        gaps: &[],
        evaluation: eval,
        transitions: &[],
        assessments: &[],
        alerts: AlertWrites { events, states },
        evidence: &[],
        after_start: false,
    };
    store.record_poll(&record).await
}

fn routed(event: AlertEvent, notifiers: &[&str]) -> RoutedEvent {
    RoutedEvent {
        event,
        notifiers: notifiers.iter().map(|s| (*s).to_string()).collect(),
    }
}

/// Events, outbox rows, detector states and category snapshots are written by `record_poll`.
pub async fn alert_writes_land_with_the_poll(store: &dyn Store) -> CheckResult {
    let t = "conformance-alerts";
    let state = InstanceState {
        baseline_credit: Some(1.0),
        pending: 1,
        pending_since: Some(at(1)),
        ..InstanceState::default()
    };
    let events = [routed(
        event(t, EventKind::Regression, 2, 1),
        &["am", "hook"],
    )];
    let eval = evaluation(t, 2, 0.0, &[("Identity", 0.0)]);
    record(store, &eval, &events, &[("a.one".into(), state.clone())]).await?;

    let states = store.load_alert_state(t).await?;
    ensure(states.get("a.one") == Some(&state), || {
        format!("detector state not round-tripped: {states:?}")
    })?;
    ensure(store.load_alert_state("other").await?.is_empty(), || {
        "detector state leaked to another tenant".into()
    })?;
    let stored = store.alert_events(t, None, None).await?;
    ensure(
        stored.len() == 1 && stored[0].event == events[0].event,
        || format!("event not round-tripped: {stored:?}"),
    )?;
    ensure(stored[0].dedup_key == events[0].event.dedup_key(), || {
        "dedup key differs".into()
    })?;
    ensure(
        store
            .alert_events(t, Some("other.action"), None)
            .await?
            .is_empty(),
        || "action filter ignored".into(),
    )?;
    ensure(
        store.alert_events(t, None, Some(at(3))).await?.is_empty(),
        || "since filter ignored".into(),
    )?;
    let due = store.due_notifications(at(2), 10).await?;
    let notifiers: Vec<&str> = due.iter().map(|d| d.notifier.as_str()).collect();
    ensure(notifiers == ["am", "hook"], || {
        format!("outbox rows: {notifiers:?}")
    })?;
    ensure(
        due.iter()
            .all(|d| d.attempts == 0 && d.event == events[0].event),
        || "outbox rows carry the event".into(),
    )?;
    ensure(store.pending_notifications().await? == 2, || {
        "pending count".into()
    })?;
    let cats = store.category_history(t, None).await?;
    ensure(cats.len() == 1 && cats[0].category == "Identity", || {
        format!("category snapshot: {cats:?}")
    })?;
    Ok(())
}

/// A poll rejected before its transaction (event of another tenant) writes nothing.
pub async fn rejected_poll_writes_no_alerts(store: &dyn Store) -> CheckResult {
    let t = "conformance-reject";
    let events = [routed(
        event("someone-else", EventKind::Regression, 2, 1),
        &["am"],
    )];
    let eval = evaluation(t, 2, 0.0, &[("Identity", 0.0)]);
    match record(store, &eval, &events, &[]).await {
        Err(StoreError::Invalid(_)) => {}
        other => return Err(fail(format!("expected invalid input, got {other:?}"))),
    }
    ensure(store.recent_polls(t, 5).await?.is_empty(), || {
        "poll row written".into()
    })?;
    ensure(store.pending_notifications().await? == 0, || {
        "outbox written".into()
    })?;
    ensure(store.category_history(t, None).await?.is_empty(), || {
        "category snapshot written".into()
    })
}

/// Retry scheduling, delivery, giving up, and which alerts count as firing.
pub async fn outbox_delivery_lifecycle(store: &dyn Store) -> CheckResult {
    let t = "conformance-outbox";
    let fire = [routed(
        event(t, EventKind::Regression, 2, 1),
        &["am", "hook"],
    )];
    record(store, &evaluation(t, 2, 0.0, &[]), &fire, &[]).await?;
    let due = store.due_notifications(at(2), 10).await?;
    let (am, hook) = (&due[0], &due[1]);

    store
        .mark_attempt_failed(am.id, 1, Some(at(5)), "503 from alertmanager")
        .await?;
    let due = store.due_notifications(at(3), 10).await?;
    ensure(due.len() == 1 && due[0].id == hook.id, || {
        format!("a retry is not due before its time: {due:?}")
    })?;
    let due = store.due_notifications(at(5), 10).await?;
    ensure(due.len() == 2 && due[0].attempts == 1, || {
        format!("the retry is due at its time with its attempt count: {due:?}")
    })?;
    ensure(store.due_notifications(at(5), 1).await?.len() == 1, || {
        "limit ignored".into()
    })?;

    store.mark_delivered(am.id, at(5)).await?;
    store
        .mark_attempt_failed(hook.id, 7, None, "gave up")
        .await?;
    ensure(
        store.due_notifications(at(60), 10).await?.is_empty(),
        || "delivered and failed rows are not due".into(),
    )?;
    ensure(store.pending_notifications().await? == 0, || {
        "pending count".into()
    })?;
    let firing = store.firing_alerts("am").await?;
    ensure(firing.len() == 1 && firing[0].id == am.id, || {
        format!("a delivered firing alert is firing: {firing:?}")
    })?;
    ensure(store.firing_alerts("hook").await?.is_empty(), || {
        "an undelivered alert is not firing".into()
    })?;

    let resolve = [routed(event(t, EventKind::Recovery, 9, 1), &["am"])];
    record(store, &evaluation(t, 9, 1.0, &[]), &resolve, &[]).await?;
    ensure(store.firing_alerts("am").await?.is_empty(), || {
        "a pending resolution stops the re-posting".into()
    })?;
    let due = store.due_notifications(at(9), 10).await?;
    ensure(
        due.len() == 1 && due[0].event.kind == EventKind::Recovery,
        || format!("the recovery is due: {due:?}"),
    )?;
    store.mark_delivered(due[0].id, at(9)).await?;
    ensure(store.firing_alerts("am").await?.is_empty(), || {
        "a resolved alert is not firing".into()
    })
}

/// `notifications` lists the outbox newest first with its delivery state, filtered by tenant
/// and state, paged by id.
pub async fn notifications_are_listed_with_their_state(store: &dyn Store) -> CheckResult {
    use crate::store::NotificationFilter;
    use crate::store::alerts::OutboxState;
    let (a, b) = ("conformance-list-a", "conformance-list-b");
    let fire = [routed(
        event(a, EventKind::Regression, 2, 1),
        &["am", "hook"],
    )];
    record(store, &evaluation(a, 2, 0.0, &[]), &fire, &[]).await?;
    let other = [routed(event(b, EventKind::Regression, 3, 1), &["am"])];
    record(store, &evaluation(b, 3, 0.0, &[]), &other, &[]).await?;
    let all = store
        .notifications(NotificationFilter::default(), 10)
        .await?;
    ensure(all.len() == 3, || format!("three rows: {all:?}"))?;
    ensure(all.windows(2).all(|w| w[0].id > w[1].id), || {
        "newest first".into()
    })?;
    ensure(
        all.iter()
            .all(|n| n.state == OutboxState::Pending && n.attempts == 0),
        || format!("pending, no attempt: {all:?}"),
    )?;
    let due = store.due_notifications(at(3), 10).await?;
    let first = due
        .iter()
        .find(|d| d.event.tenant == a)
        .ok_or_else(|| fail("due"))?;
    store.mark_delivered(first.id, at(4)).await?;
    let second = due
        .iter()
        .find(|d| d.event.tenant == a && d.id != first.id)
        .ok_or_else(|| fail("due"))?;
    store
        .mark_attempt_failed(second.id, 3, None, "410 gone")
        .await?;
    let of_a = |state| NotificationFilter {
        tenant: Some(a),
        state,
        before_id: None,
    };
    let delivered = store
        .notifications(of_a(Some(OutboxState::Delivered)), 10)
        .await?;
    ensure(
        delivered.len() == 1
            && delivered[0].id == first.id
            && delivered[0].delivered_at == Some(at(4))
            && delivered[0].attempts == 1,
        || format!("the delivered row: {delivered:?}"),
    )?;
    let failed = store
        .notifications(of_a(Some(OutboxState::Failed)), 10)
        .await?;
    ensure(
        failed.len() == 1
            && failed[0].attempts == 3
            && failed[0].last_error.as_deref() == Some("410 gone"),
        || format!("the failed row: {failed:?}"),
    )?;
    ensure(
        store.notifications(of_a(None), 10).await?.len() == 2,
        || "tenant filter".into(),
    )?;
    let page1 = store
        .notifications(NotificationFilter::default(), 2)
        .await?;
    let page2 = store
        .notifications(
            NotificationFilter {
                before_id: page1.last().map(|n| n.id),
                ..NotificationFilter::default()
            },
            2,
        )
        .await?;
    let ids: Vec<i64> = page1.iter().chain(&page2).map(|n| n.id).collect();
    let want: Vec<i64> = all.iter().map(|n| n.id).collect();
    ensure(ids == want, || format!("pages by id: {ids:?} vs {want:?}"))
}

/// A later notification of the same alert and notifier (a resolution) is not due while an
/// earlier one is pending, so a retried firing post never lands after its resolution.
pub async fn rows_of_one_alert_are_due_in_order(store: &dyn Store) -> CheckResult {
    let t = "conformance-order";
    let fire = [routed(event(t, EventKind::Regression, 2, 1), &["am"])];
    record(store, &evaluation(t, 2, 0.0, &[]), &fire, &[]).await?;
    let resolve = [routed(event(t, EventKind::Recovery, 3, 1), &["am"])];
    record(store, &evaluation(t, 3, 1.0, &[]), &resolve, &[]).await?;
    let due = store.due_notifications(at(3), 10).await?;
    ensure(
        due.len() == 1 && due[0].event.kind == EventKind::Regression,
        || format!("only the firing row is due first: {due:?}"),
    )?;
    store
        .mark_attempt_failed(due[0].id, 1, Some(at(6)), "503")
        .await?;
    ensure(store.due_notifications(at(4), 10).await?.is_empty(), || {
        "the resolution waits for the firing row's retry".into()
    })?;
    let retry = store.due_notifications(at(6), 10).await?;
    ensure(retry.len() == 1 && retry[0].id == due[0].id, || {
        format!("{retry:?}")
    })?;
    store.mark_delivered(retry[0].id, at(6)).await?;
    let next = store.due_notifications(at(6), 10).await?;
    ensure(
        next.len() == 1 && next[0].event.kind == EventKind::Recovery,
        || format!("then the resolution: {next:?}"),
    )
}

/// The same event written twice (same dedup key) is stored and queued once.
pub async fn duplicate_events_are_stored_once(store: &dyn Store) -> CheckResult {
    let t = "conformance-dedup";
    let events = [routed(event(t, EventKind::Regression, 2, 1), &["am"])];
    record(store, &evaluation(t, 2, 0.0, &[]), &events, &[]).await?;
    record(store, &evaluation(t, 3, 0.0, &[]), &events, &[]).await?;
    let stored = store.alert_events(t, None, None).await?;
    ensure(stored.len() == 1, || format!("events: {}", stored.len()))?;
    ensure(store.pending_notifications().await? == 1, || {
        "outbox rows".into()
    })
}

/// A category gains a snapshot only when its points change.
pub async fn category_snapshots_only_on_change(store: &dyn Store) -> CheckResult {
    let t = "conformance-categories";
    let cats = |a: f64, b: f64| vec![("Access control", a), ("Identity", b)];
    record(store, &evaluation(t, 1, 1.0, &cats(27.0, 27.0)), &[], &[]).await?;
    record(store, &evaluation(t, 2, 1.0, &cats(27.0, 27.0)), &[], &[]).await?;
    record(store, &evaluation(t, 3, 1.0, &cats(27.0, 13.5)), &[], &[]).await?;
    record(store, &evaluation(t, 4, 1.0, &cats(27.0, 27.0)), &[], &[]).await?;
    let history = store.category_history(t, None).await?;
    let got: Vec<(String, i64, f64)> = history
        .iter()
        .map(|s| {
            (
                s.category.clone(),
                (s.at - at(0)).num_minutes(),
                s.score.points_achieved,
            )
        })
        .collect();
    let want = vec![
        ("Access control".to_string(), 1, 27.0),
        ("Identity".to_string(), 1, 27.0),
        ("Identity".to_string(), 3, 13.5),
        ("Identity".to_string(), 4, 27.0),
    ];
    ensure(got == want, || {
        format!("category history {got:?}, want {want:?}")
    })?;
    let since = store.category_history(t, Some(at(3))).await?;
    ensure(since.len() == 2, || "since filter".into())
}

/// An assessment gains a snapshot only when its points change.
pub async fn assessment_snapshots_only_on_change(store: &dyn Store) -> CheckResult {
    let t = "conformance-assessments";
    let score = |achieved: f64| ScoreSummary {
        points_achieved: achieved,
        points_possible: 54.0,
        ratio: achieved / 54.0,
    };
    for (minute, iso, gdpr) in [(1, 27.0, 54.0), (2, 27.0, 54.0), (3, 0.0, 54.0)] {
        let eval = evaluation(t, minute, 1.0, &[]);
        let assessments = [
            ("t-gdpr".to_string(), score(gdpr)),
            ("t-iso".to_string(), score(iso)),
        ];
        let record = PollRecord {
            tenant: t,
            connector: "msgraph",
            started_at: eval.evaluated_at,
            finished_at: eval.evaluated_at,
            outcome: PollOutcome::Success,
            signals: &[],
            gaps: &[],
            evaluation: &eval,
            transitions: &[],
            assessments: &assessments,
            alerts: AlertWrites {
                events: &[],
                states: &[],
            },
            evidence: &[],
            after_start: false,
        };
        store.record_poll(&record).await?;
    }
    let got: Vec<(String, i64, f64)> = store
        .assessment_history(t, None)
        .await?
        .into_iter()
        .map(|s| {
            (
                s.assessment,
                (s.at - at(0)).num_minutes(),
                s.score.points_achieved,
            )
        })
        .collect();
    let want = vec![
        ("t-gdpr".to_string(), 1, 54.0),
        ("t-iso".to_string(), 1, 27.0),
        ("t-iso".to_string(), 3, 0.0),
    ];
    ensure(got == want, || {
        format!("assessment history {got:?}, want {want:?}")
    })?;
    ensure(
        store.assessment_history(t, Some(at(2))).await?.len() == 1,
        || "since filter".into(),
    )
}

/// A stored transition carries the testing logic of its action at that evaluation.
pub async fn transitions_keep_the_rule_that_decided_them(store: &dyn Store) -> CheckResult {
    let t = "conformance-rule";
    let eval = evaluation(t, 1, 0.0, &[]);
    let transitions = crate::evaluation::transitions(&Default::default(), &eval);
    let record = PollRecord {
        tenant: t,
        connector: "msgraph",
        started_at: eval.evaluated_at,
        finished_at: eval.evaluated_at,
        outcome: PollOutcome::Success,
        signals: &[],
        gaps: &[],
        evaluation: &eval,
        transitions: &transitions,
        assessments: &[],
        alerts: AlertWrites::default(),
        evidence: &[],
        after_start: false,
    };
    store.record_poll(&record).await?;
    let rows = store.transitions(t, None, None).await?;
    ensure(
        rows.len() == 1 && rows[0].testing_logic.as_deref() == Some("x"),
        || format!("transition rule not stored: {rows:?}"),
    )
}

/// Pruning removes old history but keeps current state, pending notifications, the newest
/// outbox row of every alert, and the newest snapshot of every series.
pub async fn prune_keeps_current_and_firing_rows(store: &dyn Store) -> CheckResult {
    let t = "conformance-prune";
    let state = InstanceState {
        baseline_credit: Some(1.0),
        ..InstanceState::default()
    };
    let fire = [routed(event(t, EventKind::Regression, 2, 1), &["am"])];
    record(
        store,
        &evaluation(t, 2, 0.0, &[("Identity", 0.0)]),
        &fire,
        &[("a.one".into(), state)],
    )
    .await?;
    let first = store.due_notifications(at(2), 10).await?;
    store.mark_delivered(first[0].id, at(2)).await?;
    let stale = [routed(event(t, EventKind::Stale, 3, 3), &["am"])];
    record(
        store,
        &evaluation(t, 3, 1.0, &[("Identity", 27.0)]),
        &stale,
        &[],
    )
    .await?;
    record(
        store,
        &evaluation(t, 500, 0.5, &[("Identity", 13.5)]),
        &[],
        &[],
    )
    .await?;

    let report = store.prune_history(at(100)).await?;
    ensure(report.polls == 2, || format!("polls pruned: {report:?}"))?;
    ensure(report.snapshots >= 2, || {
        format!("snapshots pruned: {report:?}")
    })?;
    ensure(report.notifications == 0, || {
        format!("the newest row of a firing alert is kept: {report:?}")
    })?;
    ensure(store.recent_polls(t, 10).await?.len() == 1, || {
        "new poll kept".into()
    })?;
    ensure(store.load_alert_state(t).await?.len() == 1, || {
        "detector state kept".into()
    })?;
    ensure(store.firing_alerts("am").await?.len() == 1, || {
        "firing alert kept".into()
    })?;
    ensure(store.pending_notifications().await? == 1, || {
        "pending row kept".into()
    })?;
    ensure(store.category_history(t, None).await?.len() == 1, || {
        "newest category snapshot kept".into()
    })?;
    ensure(store.score_history(t, None).await?.len() == 1, || {
        "newest score snapshot kept".into()
    })?;
    ensure(store.alert_events(t, None, None).await?.len() == 2, || {
        "events still referenced by the outbox are kept".into()
    })?;
    Ok(())
}
