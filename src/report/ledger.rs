//! The regression ledger: per-action statistics derived from stored transitions and alert
//! events (pure; `now` is passed in), and the `postured history` tables.
//!
//! Per action: current status and since when (time in the current state), when it first
//! failed and since when it has been failing, how many debounced regressions and recoveries it
//! had, the open regression, and the time to recover (last and mean) of closed regressions.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

use crate::alerts::regression::EventKind;
use crate::evaluation::TestStatus;
use crate::store::{AssessmentSnapshot, CategorySnapshot, StoredEvent, TransitionRow};

/// Statistics of one action instance of a tenant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionLedger {
    /// Action id.
    pub action_id: String,
    /// Current test status (of the latest transition).
    pub status: TestStatus,
    /// When the current status began.
    pub since: DateTime<Utc>,
    /// `now - since`, in seconds.
    pub time_in_state_seconds: i64,
    /// First transition into a failed status in the retained history.
    pub first_failed_at: Option<DateTime<Utc>>,
    /// Start of the current failing streak (`None` when not failing now).
    pub failing_since: Option<DateTime<Utc>>,
    /// Stored transitions.
    pub transitions: u32,
    /// Debounced regressions.
    pub regressions: u32,
    /// Recoveries.
    pub recoveries: u32,
    /// Start of the regression still open, if any.
    pub open_regression_since: Option<DateTime<Utc>>,
    /// Time to recover of the latest closed regression, in seconds (episode start to recovery).
    pub last_time_to_recover_seconds: Option<i64>,
    /// Mean time to recover over closed regressions, in seconds.
    pub mean_time_to_recover_seconds: Option<i64>,
    /// Staleness episodes.
    pub stale_episodes: u32,
    /// Collection-error episodes.
    pub collection_error_episodes: u32,
}

/// Everything `postured history` shows for a tenant.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    /// Tenant id.
    pub tenant: String,
    /// Per-action statistics, by action id.
    pub ledger: Vec<ActionLedger>,
    /// Status transitions, oldest first.
    pub transitions: Vec<TransitionRow>,
    /// Regression, recovery, staleness and collection-error events, oldest first.
    pub events: Vec<StoredEvent>,
    /// Category score snapshots (stored when they changed), oldest first.
    pub categories: Vec<CategorySnapshot>,
    /// Assessment score snapshots (stored when they changed), oldest first.
    pub assessments: Vec<AssessmentSnapshot>,
}

/// Per-action statistics from a tenant's transitions and events (both oldest first).
pub fn ledger(
    transitions: &[TransitionRow],
    events: &[StoredEvent],
    now: DateTime<Utc>,
) -> Vec<ActionLedger> {
    let mut by_action: BTreeMap<&str, ActionLedger> = BTreeMap::new();
    for row in transitions {
        let t = &row.transition;
        let l = by_action
            .entry(t.action_id.as_str())
            .or_insert_with(|| ActionLedger {
                action_id: t.action_id.clone(),
                status: t.to_status,
                since: t.at,
                time_in_state_seconds: 0,
                first_failed_at: None,
                failing_since: None,
                transitions: 0,
                regressions: 0,
                recoveries: 0,
                open_regression_since: None,
                last_time_to_recover_seconds: None,
                mean_time_to_recover_seconds: None,
                stale_episodes: 0,
                collection_error_episodes: 0,
            });
        l.transitions += 1;
        if l.transitions == 1 || t.from_status != Some(t.to_status) {
            if l.transitions > 1 {
                l.since = t.at;
            }
            l.status = t.to_status;
        }
        if t.to_status.is_failed() {
            l.first_failed_at.get_or_insert(t.at);
            l.failing_since.get_or_insert(t.at);
        } else if t.to_status != TestStatus::CouldNotBeDetected {
            // Undetectable is not "no longer failing": the streak is unknown, kept.
            l.failing_since = None;
        }
    }
    let mut recover_times: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for e in events {
        let e = &e.event;
        let Some(l) = by_action.get_mut(e.action_id.as_str()) else {
            continue;
        };
        match e.kind {
            EventKind::Regression => {
                l.regressions += 1;
                l.open_regression_since = Some(e.episode_started_at);
            }
            EventKind::Recovery => {
                l.recoveries += 1;
                l.open_regression_since = None;
                let secs = (e.at - e.episode_started_at).num_seconds().max(0);
                l.last_time_to_recover_seconds = Some(secs);
                recover_times
                    .entry(e.action_id.clone())
                    .or_default()
                    .push(secs);
            }
            EventKind::Stale => l.stale_episodes += 1,
            EventKind::CollectionError => l.collection_error_episodes += 1,
            EventKind::StaleCleared | EventKind::CollectionRecovered => {}
        }
    }
    let mut out: Vec<ActionLedger> = by_action.into_values().collect();
    for l in &mut out {
        l.time_in_state_seconds = (now - l.since).num_seconds().max(0);
        if let Some(times) = recover_times.get(l.action_id.as_str()) {
            let sum: i64 = times.iter().sum();
            l.mean_time_to_recover_seconds = Some(sum / times.len() as i64);
        }
    }
    out
}

/// Read a tenant's history from the store and compute its ledger.
pub async fn load(
    store: &dyn crate::store::Store,
    tenant: &str,
    action: Option<&str>,
    since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<History, crate::store::StoreError> {
    let transitions = store.transitions(tenant, action, since).await?;
    let events = store.alert_events(tenant, action, since).await?;
    let categories = store.category_history(tenant, since).await?;
    let assessments = store.assessment_history(tenant, since).await?;
    Ok(History {
        tenant: tenant.to_owned(),
        ledger: ledger(&transitions, &events, now),
        transitions,
        events,
        categories,
        assessments,
    })
}

/// The ledgers of several tenants for the JSON report; a tenant whose history cannot be read
/// is logged and left out (the report is still served).
pub async fn for_report(
    store: &dyn crate::store::Store,
    tenants: &[String],
    now: DateTime<Utc>,
) -> std::collections::HashMap<String, Vec<ActionLedger>> {
    let mut out = std::collections::HashMap::new();
    for tenant in tenants {
        let tenant = tenant.as_str();
        let read = async {
            let transitions = store.transitions(tenant, None, None).await?;
            let events = store.alert_events(tenant, None, None).await?;
            Ok::<_, crate::store::StoreError>(ledger(&transitions, &events, now))
        };
        match read.await {
            Ok(l) => {
                out.insert(tenant.to_owned(), l);
            }
            Err(e) => {
                tracing::warn!(tenant, error = %e, "reading the ledger failed; report without it");
            }
        }
    }
    out
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `3d 4h`, `2h 5m`, `40s`.
pub fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {}s", s % 60)
    } else {
        format!("{s}s")
    }
}

fn table(header: Vec<&str>) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(160)
        .set_header(header);
    t
}

/// The ledger and event tables printed by `postured history` after the transitions.
pub fn render(history: &History) -> String {
    let mut out = String::new();
    let mut l = table(vec![
        "action",
        "status",
        "in state",
        "first failed",
        "failing since",
        "regressions",
        "open since",
        "recoveries",
        "recover (last / mean)",
    ]);
    for a in &history.ledger {
        let ttr = match (
            a.last_time_to_recover_seconds,
            a.mean_time_to_recover_seconds,
        ) {
            (Some(last), Some(mean)) => {
                format!("{} / {}", human_duration(last), human_duration(mean))
            }
            _ => "-".into(),
        };
        l.add_row(vec![
            Cell::new(&a.action_id),
            Cell::new(a.status.as_str()),
            Cell::new(human_duration(a.time_in_state_seconds)).set_alignment(CellAlignment::Right),
            Cell::new(a.first_failed_at.map_or("-".into(), ts)),
            Cell::new(a.failing_since.map_or("-".into(), ts)),
            Cell::new(a.regressions).set_alignment(CellAlignment::Right),
            Cell::new(a.open_regression_since.map_or("-".into(), ts)),
            Cell::new(a.recoveries).set_alignment(CellAlignment::Right),
            Cell::new(ttr),
        ]);
    }
    out.push_str("Ledger\n");
    out.push_str(&format!("{l}\n"));
    let mut e = table(vec![
        "at",
        "action",
        "event",
        "severity",
        "points lost",
        "score delta",
        "since",
    ]);
    for s in &history.events {
        let ev = &s.event;
        e.add_row(vec![
            Cell::new(ts(ev.at)),
            Cell::new(&ev.action_id),
            Cell::new(ev.kind.as_str()),
            Cell::new(ev.severity.as_str()),
            Cell::new(format!("{:.2}", ev.points_lost)).set_alignment(CellAlignment::Right),
            Cell::new(format!("{:+.4}", ev.score_delta)).set_alignment(CellAlignment::Right),
            Cell::new(ts(ev.episode_started_at)),
        ]);
    }
    out.push_str("Events\n");
    out.push_str(&format!("{e}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::regression::{AlertEvent, Severity};
    use crate::evaluation::Transition;
    use chrono::TimeZone;

    fn at(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single().unwrap()
            + chrono::Duration::minutes(min)
    }

    fn tr(min: i64, from: Option<TestStatus>, to: TestStatus) -> TransitionRow {
        TransitionRow {
            evidence_sha256: None,
            tenant: "t1".into(),
            testing_logic: None,
            transition: Transition {
                action_id: "a".into(),
                from_status: from,
                to_status: to,
                from_credit: None,
                to_credit: 0.0,
                points_achieved: 0.0,
                points_possible: 27.0,
                reason: None,
                signals: vec![],
                at: at(min),
            },
        }
    }

    fn ev(kind: EventKind, min: i64, episode: i64) -> StoredEvent {
        StoredEvent {
            id: min,
            dedup_key: String::new(),
            event: AlertEvent {
                tenant: "t1".into(),
                action_id: "a".into(),
                title: String::new(),
                kind,
                severity: Severity::Critical,
                at: at(min),
                episode_started_at: at(episode),
                old_status: None,
                new_status: TestStatus::Passed,
                old_credit: None,
                new_credit: 1.0,
                points_lost: 27.0,
                score_delta: 0.0,
                reason: None,
                signals: vec![],
                controls: vec![],
            },
        }
    }

    #[test]
    fn stats_from_transitions_and_events() {
        use TestStatus::*;
        let transitions = [
            tr(0, Option::None, Passed),
            tr(10, Some(Passed), FailedHighRisk),
            tr(30, Some(FailedHighRisk), Passed),
            tr(40, Some(Passed), FailedHighRisk),
            tr(45, Some(FailedHighRisk), CouldNotBeDetected),
        ];
        let events = [
            ev(EventKind::Regression, 11, 10),
            ev(EventKind::Recovery, 30, 10),
            ev(EventKind::Regression, 41, 40),
            ev(EventKind::Stale, 45, 45),
        ];
        let l = ledger(&transitions, &events, at(60));
        assert_eq!(l.len(), 1);
        let a = &l[0];
        assert_eq!(a.status, CouldNotBeDetected);
        assert_eq!(a.since, at(45));
        assert_eq!(a.time_in_state_seconds, 15 * 60);
        assert_eq!(a.first_failed_at, Some(at(10)));
        assert_eq!(
            a.failing_since,
            Some(at(40)),
            "undetectable keeps the streak"
        );
        assert_eq!(a.transitions, 5);
        assert_eq!((a.regressions, a.recoveries), (2, 1));
        assert_eq!(a.open_regression_since, Some(at(40)));
        assert_eq!(a.last_time_to_recover_seconds, Some(20 * 60));
        assert_eq!(a.mean_time_to_recover_seconds, Some(20 * 60));
        assert_eq!(a.stale_episodes, 1);
        let text = render(&History {
            tenant: "t1".into(),
            ledger: l,
            transitions: vec![],
            events: events.to_vec(),
            categories: vec![],
            assessments: vec![],
        });
        assert!(text.contains("┆ 2026-03-01T12:40:00Z ┆"), "{text}");
        assert!(text.contains("20m 0s / 20m 0s"), "{text}");
    }

    #[test]
    fn durations_are_human() {
        assert_eq!(human_duration(40), "40s");
        assert_eq!(human_duration(3 * 86_400 + 4 * 3600 + 5), "3d 4h");
        assert_eq!(human_duration(7500), "2h 5m");
    }
}
