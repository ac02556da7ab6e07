//! Store side of regressions and alerts: the [`AlertStore`] trait (detector state, the alert
//! ledger, the transactional outbox, category history, retention), its types, and its one
//! implementation for both backends.
//!
//! The writes that must be atomic with a poll (events, outbox rows, detector state, category and
//! assessment snapshots) are part of [`super::Store::record_poll`] through [`AlertWrites`]
//! (`write_alerts`); everything else here is what the delivery task, the ledger and the prune
//! task read and update afterwards. The SQL is written once, with `$n` placeholders, over
//! [`SqlStore<DB>`]; the only backend difference used here is how a write transaction begins.
//!
//! Must not: deliver notifications or decide what is a regression (`crate::alerts` does).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{ColumnIndex, Encode, Executor, Type};

use super::StoreError;
use super::backend::{Column, Param, SqlBackend, SqlStore};
use super::batch::insert_rows;
use super::rows;
use crate::alerts::{AlertEvent, InstanceState};
use crate::evaluation::ScoreSummary;

/// An event and the notifiers routing chose for it (possibly none: the event is still kept in
/// the ledger).
#[derive(Debug, Clone, PartialEq)]
pub struct RoutedEvent {
    /// The event.
    pub event: AlertEvent,
    /// Notifier names; one outbox row each.
    pub notifiers: Vec<String>,
}

/// The ledger writes of one poll, made in the poll's transaction.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlertWrites<'a> {
    /// Detected events with their routes.
    pub events: &'a [RoutedEvent],
    /// Detector states that changed, by action id.
    pub states: &'a [(String, InstanceState)],
}

/// One notification of the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    /// Row id (increases with insertion order).
    pub id: i64,
    /// Notifier name.
    pub notifier: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the row was written (with its poll).
    pub created_at: DateTime<Utc>,
    /// The event to deliver.
    pub event: AlertEvent,
}

/// Delivery state of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Not delivered yet.
    Pending,
    /// Delivered.
    Delivered,
    /// Gave up after `max_attempts`.
    Failed,
}

impl OutboxState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Delivered => "delivered",
            OutboxState::Failed => "failed",
        }
    }
}

/// One notification of the outbox with its delivery state, for listings
/// ([`AlertStore::notifications`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notification {
    /// Row id (increases with insertion order).
    pub id: i64,
    /// Notifier name.
    pub notifier: String,
    /// Delivery state.
    pub state: OutboxState,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the row was written (with its poll).
    pub created_at: DateTime<Utc>,
    /// When the next attempt is due (pending rows).
    pub next_attempt_at: DateTime<Utc>,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
    /// The last delivery error (secret-free).
    pub last_error: Option<String>,
    /// The event.
    pub event: AlertEvent,
}

/// Which notifications [`AlertStore::notifications`] lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotificationFilter<'a> {
    /// Only this tenant's.
    pub tenant: Option<&'a str>,
    /// Only in this state.
    pub state: Option<OutboxState>,
    /// Only rows with an id below this one (the previous page's last id).
    pub before_id: Option<i64>,
}

/// A stored alert event, for the ledger and history listings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Row id.
    pub id: i64,
    /// The stable de-duplication key.
    pub dedup_key: String,
    /// The event.
    #[serde(flatten)]
    pub event: AlertEvent,
}

/// A category's score from one instant on (stored only when it changed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategorySnapshot {
    /// Category name.
    pub category: String,
    /// Evaluation instant at which the score took this value.
    pub at: DateTime<Utc>,
    /// Points and ratio.
    pub score: ScoreSummary,
}

/// An assessment's score from one instant on (stored only when it changed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssessmentSnapshot {
    /// Assessment id.
    pub assessment: String,
    /// Evaluation instant at which the score took this value.
    pub at: DateTime<Utc>,
    /// Points and ratio.
    pub score: ScoreSummary,
}

/// Rows removed by one prune.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// Poll rows.
    pub polls: u64,
    /// Daily poll counts (`poll_days`), each pruned once its day's last poll is older than
    /// the cutoff.
    pub poll_days: u64,
    /// Signal history rows.
    pub signal_history: u64,
    /// Transitions.
    pub transitions: u64,
    /// Score, category and assessment snapshots.
    pub snapshots: u64,
    /// Alert events (with their outbox rows).
    pub events: u64,
    /// Delivered or failed outbox rows.
    pub notifications: u64,
}

impl PruneReport {
    /// Total rows removed.
    pub fn total(&self) -> u64 {
        self.polls
            + self.poll_days
            + self.signal_history
            + self.transitions
            + self.snapshots
            + self.events
            + self.notifications
    }
}

/// Persistence of the regression detector, the alert ledger and the outbox.
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// The detector state of every action instance of `tenant`.
    async fn load_alert_state(
        &self,
        tenant: &str,
    ) -> Result<HashMap<String, InstanceState>, StoreError>;
    /// Pending notifications due at `now` (`next_attempt_at <= now`), oldest first.
    async fn due_notifications(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError>;
    /// Mark a notification delivered.
    async fn mark_delivered(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Record a failed attempt: retry at `retry_at`, or give up (state `failed`) when `None`.
    /// `error` must be secret-free.
    async fn mark_attempt_failed(
        &self,
        id: i64,
        attempts: u32,
        retry_at: Option<DateTime<Utc>>,
        error: &str,
    ) -> Result<(), StoreError>;
    /// Number of pending notifications.
    async fn pending_notifications(&self) -> Result<i64, StoreError>;
    /// Alerts of `notifier` that are firing: the newest row of each alert key is a delivered,
    /// non-resolving event (Alertmanager re-posts them).
    async fn firing_alerts(&self, notifier: &str) -> Result<Vec<OutboxEntry>, StoreError>;
    /// Notifications with their delivery state, newest first (by id), at most `limit`.
    async fn notifications(
        &self,
        filter: NotificationFilter<'_>,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError>;
    /// Alert events of a tenant, oldest first, optionally for one action and since an instant.
    async fn alert_events(
        &self,
        tenant: &str,
        action: Option<&str>,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// Category snapshots of a tenant, oldest first, since an instant.
    async fn category_history(
        &self,
        tenant: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<CategorySnapshot>, StoreError>;
    /// Assessment snapshots of a tenant, oldest first, since an instant.
    async fn assessment_history(
        &self,
        tenant: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<AssessmentSnapshot>, StoreError>;
    /// Delete history older than `before`: polls, signal history, transitions, snapshots, alert
    /// events and delivered or failed notifications. Current state (signals, gaps, action
    /// states, detector state), pending notifications and the newest row per alert key of the
    /// outbox (an alert still firing) are kept, as is the newest snapshot of every series.
    async fn prune_history(&self, before: DateTime<Utc>) -> Result<PruneReport, StoreError>;
}

/// One event encoded for insertion.
#[derive(Debug)]
pub(crate) struct EncodedEvent<'a> {
    pub dedup_key: String,
    pub alert_key: String,
    pub action_id: &'a str,
    pub kind: &'static str,
    pub severity: &'static str,
    pub resolves: i64,
    pub at: i64,
    pub episode_started_at: i64,
    pub json: String,
    pub notifiers: &'a [String],
}

/// One detector state encoded for upsert.
#[derive(Debug)]
pub(crate) struct EncodedState<'a> {
    pub action_id: &'a str,
    pub json: String,
}

/// The alert writes of a poll, validated and encoded before the transaction opens.
#[derive(Debug, Default)]
pub(crate) struct EncodedAlerts<'a> {
    pub events: Vec<EncodedEvent<'a>>,
    pub states: Vec<EncodedState<'a>>,
}

impl<'a> EncodedAlerts<'a> {
    /// Encode; events of another tenant are rejected ([`StoreError::Invalid`]).
    pub fn new(tenant: &str, writes: &AlertWrites<'a>) -> Result<Self, StoreError> {
        let mut events = Vec::with_capacity(writes.events.len());
        for r in writes.events {
            let e = &r.event;
            if e.tenant != tenant {
                return Err(StoreError::Invalid(format!(
                    "poll of tenant {tenant:?} carries an alert event of tenant {:?}",
                    e.tenant
                )));
            }
            let json = serde_json::to_string(e)
                .map_err(|err| StoreError::Invalid(format!("alert event: {err}")))?;
            events.push(EncodedEvent {
                dedup_key: e.dedup_key(),
                alert_key: e.alert_key(),
                action_id: &e.action_id,
                kind: e.kind.as_str(),
                severity: e.severity.as_str(),
                resolves: i64::from(e.kind.is_resolution()),
                at: rows::to_millis(e.at),
                episode_started_at: rows::to_millis(e.episode_started_at),
                json,
                notifiers: &r.notifiers,
            });
        }
        // One row per action (the last state given wins, as when each was upserted in turn):
        // a multi-row upsert may not meet one key twice.
        let mut states = std::collections::BTreeMap::new();
        for (id, s) in writes.states {
            states.insert(id.as_str(), s);
        }
        let states = states
            .into_iter()
            .map(|(id, s)| {
                Ok(EncodedState {
                    action_id: id,
                    json: serde_json::to_string(s)
                        .map_err(|err| StoreError::Invalid(format!("alert state: {err}")))?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Self { events, states })
    }
}

/// Table names for [`StoreError::Corrupt`].
pub(crate) mod table {
    pub const ALERT_STATE: &str = "alert_state";
    pub const ALERT_EVENTS: &str = "alert_events";
    pub const ALERT_OUTBOX: &str = "alert_outbox";
    pub const CATEGORY_SNAPSHOTS: &str = "category_snapshots";
    pub const ASSESSMENT_SNAPSHOTS: &str = "assessment_snapshots";
}

/// Decode a detector state.
pub(crate) fn decode_state(raw: &str) -> Result<InstanceState, StoreError> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt {
        table: table::ALERT_STATE,
        detail: format!("state: {e}"),
    })
}

/// Decode an event.
pub(crate) fn decode_event(table: &'static str, raw: &str) -> Result<AlertEvent, StoreError> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt {
        table,
        detail: format!("event: {e}"),
    })
}

/// An outbox row joined with its event.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct OutboxDbRow {
    pub id: i64,
    pub notifier: String,
    pub attempts: i64,
    pub created_at: i64,
    pub event: String,
}

impl OutboxDbRow {
    pub fn into_entry(self) -> Result<OutboxEntry, StoreError> {
        Ok(OutboxEntry {
            id: self.id,
            notifier: self.notifier,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            created_at: rows::from_millis(table::ALERT_OUTBOX, self.created_at)?,
            event: decode_event(table::ALERT_OUTBOX, &self.event)?,
        })
    }
}

/// An outbox row with its delivery state and event.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct NotificationDbRow {
    pub id: i64,
    pub notifier: String,
    pub state: String,
    pub attempts: i64,
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub delivered_at: Option<i64>,
    pub last_error: Option<String>,
    pub event: String,
}

impl NotificationDbRow {
    pub fn into_notification(self) -> Result<Notification, StoreError> {
        let state = match self.state.as_str() {
            "pending" => OutboxState::Pending,
            "delivered" => OutboxState::Delivered,
            "failed" => OutboxState::Failed,
            other => {
                return Err(StoreError::Corrupt {
                    table: table::ALERT_OUTBOX,
                    detail: format!("unknown state {other:?}"),
                });
            }
        };
        Ok(Notification {
            id: self.id,
            notifier: self.notifier,
            state,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            created_at: rows::from_millis(table::ALERT_OUTBOX, self.created_at)?,
            next_attempt_at: rows::from_millis(table::ALERT_OUTBOX, self.next_attempt_at)?,
            delivered_at: self
                .delivered_at
                .map(|t| rows::from_millis(table::ALERT_OUTBOX, t))
                .transpose()?,
            last_error: self.last_error,
            event: decode_event(table::ALERT_OUTBOX, &self.event)?,
        })
    }
}

/// An alert event row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct EventDbRow {
    pub id: i64,
    pub dedup_key: String,
    pub event: String,
}

impl EventDbRow {
    pub fn into_event(self) -> Result<StoredEvent, StoreError> {
        Ok(StoredEvent {
            id: self.id,
            dedup_key: self.dedup_key,
            event: decode_event(table::ALERT_EVENTS, &self.event)?,
        })
    }
}

/// A category snapshot row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct CategoryDbRow {
    pub category: String,
    pub at: i64,
    pub points_achieved: f64,
    pub points_possible: f64,
    pub ratio: f64,
}

impl CategoryDbRow {
    pub fn into_snapshot(self) -> Result<CategorySnapshot, StoreError> {
        Ok(CategorySnapshot {
            category: self.category,
            at: rows::from_millis(table::CATEGORY_SNAPSHOTS, self.at)?,
            score: ScoreSummary {
                points_achieved: self.points_achieved,
                points_possible: self.points_possible,
                ratio: self.ratio,
            },
        })
    }
}

/// An assessment snapshot row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AssessmentDbRow {
    pub assessment: String,
    pub at: i64,
    pub points_achieved: f64,
    pub points_possible: f64,
    pub ratio: f64,
}

impl AssessmentDbRow {
    pub fn into_snapshot(self) -> Result<AssessmentSnapshot, StoreError> {
        Ok(AssessmentSnapshot {
            assessment: self.assessment,
            at: rows::from_millis(table::ASSESSMENT_SNAPSHOTS, self.at)?,
            score: ScoreSummary {
                points_achieved: self.points_achieved,
                points_possible: self.points_possible,
                ratio: self.ratio,
            },
        })
    }
}

/// Series (categories, assessments) whose score differs from the latest stored snapshot (`latest`: category ->
/// (achieved, possible)).
pub(crate) fn changed_categories<'e>(
    categories: &'e [(String, ScoreSummary)],
    latest: &HashMap<String, (f64, f64)>,
) -> Vec<&'e (String, ScoreSummary)> {
    const EPS: f64 = 1e-9;
    categories
        .iter()
        .filter(|(c, s)| match latest.get(c) {
            None => true,
            Some((a, p)) => {
                (a - s.points_achieved).abs() > EPS || (p - s.points_possible).abs() > EPS
            }
        })
        .collect()
}

const INSERT_EVENT: &str = "INSERT INTO alert_events \
    (dedup_key, tenant, action_id, kind, severity, at, episode_started_at, event) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (dedup_key) DO NOTHING RETURNING id";
const INSERT_OUTBOX: &str = "INSERT INTO alert_outbox \
    (event_id, notifier, alert_key, resolves, created_at, state, attempts, next_attempt_at) \
    VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6) ON CONFLICT (event_id, notifier) DO NOTHING";
// Detector states and snapshots of a poll, in multi-row statements (`batch::insert_rows`).
const INSERT_STATES: &str = "INSERT INTO alert_state (tenant, action_id, state, updated_at) ";
const STATE_CONFLICT: &str = " ON CONFLICT (tenant, action_id) DO UPDATE SET \
    state = excluded.state, updated_at = excluded.updated_at";
const SELECT_STATES: &str = "SELECT action_id, state FROM alert_state WHERE tenant = $1";
const SELECT_LATEST_CATEGORIES: &str = "SELECT c.category, c.points_achieved, \
    c.points_possible FROM category_snapshots c WHERE c.tenant = $1 AND c.id = \
    (SELECT MAX(l.id) FROM category_snapshots l WHERE l.tenant = c.tenant \
    AND l.category = c.category)";
const SELECT_LATEST_ASSESSMENTS: &str = "SELECT a.assessment, a.points_achieved, \
    a.points_possible FROM assessment_snapshots a WHERE a.tenant = $1 AND a.id = \
    (SELECT MAX(l.id) FROM assessment_snapshots l WHERE l.tenant = a.tenant \
    AND l.assessment = a.assessment)";
const INSERT_CATEGORIES: &str = "INSERT INTO category_snapshots \
    (tenant, category, at, points_achieved, points_possible, ratio) ";
const INSERT_ASSESSMENTS: &str = "INSERT INTO assessment_snapshots \
    (tenant, assessment, at, points_achieved, points_possible, ratio) ";
const SELECT_DUE: &str = "SELECT o.id, o.notifier, o.attempts, o.created_at, e.event \
    FROM alert_outbox o JOIN alert_events e ON e.id = o.event_id \
    WHERE o.state = 'pending' AND o.next_attempt_at <= $1 \
    AND NOT EXISTS (SELECT 1 FROM alert_outbox p WHERE p.notifier = o.notifier \
    AND p.alert_key = o.alert_key AND p.state = 'pending' AND p.id < o.id) \
    ORDER BY o.id LIMIT $2";
const SELECT_FIRING: &str = "SELECT o.id, o.notifier, o.attempts, o.created_at, e.event \
    FROM alert_outbox o JOIN alert_events e ON e.id = o.event_id \
    WHERE o.notifier = $1 AND o.resolves = 0 AND o.state = 'delivered' \
    AND o.id = (SELECT MAX(n.id) FROM alert_outbox n \
    WHERE n.notifier = o.notifier AND n.alert_key = o.alert_key) ORDER BY o.id";
const MARK_DELIVERED: &str = "UPDATE alert_outbox SET state = 'delivered', delivered_at = $1, \
    attempts = attempts + 1, last_error = NULL WHERE id = $2";
const MARK_FAILED: &str = "UPDATE alert_outbox SET attempts = $1, \
    next_attempt_at = COALESCE($2, next_attempt_at), last_error = $3, state = $4 WHERE id = $5";
const SELECT_NOTIFICATIONS: &str = "SELECT o.id, o.notifier, o.state, o.attempts, \
    o.created_at, o.next_attempt_at, o.delivered_at, o.last_error, e.event \
    FROM alert_outbox o JOIN alert_events e ON e.id = o.event_id \
    WHERE ($1 IS NULL OR e.tenant = $1) AND ($2 IS NULL OR o.state = $2) \
    AND ($3 IS NULL OR o.id < $3) ORDER BY o.id DESC LIMIT $4";
const COUNT_PENDING: &str = "SELECT COUNT(*) FROM alert_outbox WHERE state = 'pending'";
const SELECT_EVENTS: &str = "SELECT id, dedup_key, event FROM alert_events \
    WHERE tenant = $1 AND at >= $2 ORDER BY at, id";
const SELECT_EVENTS_FOR_ACTION: &str = "SELECT id, dedup_key, event FROM alert_events \
    WHERE tenant = $1 AND action_id = $2 AND at >= $3 ORDER BY at, id";
const SELECT_CATEGORIES: &str = "SELECT category, at, points_achieved, points_possible, ratio \
    FROM category_snapshots WHERE tenant = $1 AND at >= $2 ORDER BY at, category, id";
const SELECT_ASSESSMENTS: &str = "SELECT assessment, at, points_achieved, points_possible, \
    ratio FROM assessment_snapshots WHERE tenant = $1 AND at >= $2 \
    ORDER BY at, assessment, id";
/// The deletes of `prune_history`, each with the cutoff as `$1`, and the report field it counts
/// towards.
const PRUNE: [(&str, &str); 9] = [
    // The newest row is kept: SQLite gives a new row the largest id + 1, so an id (which marks
    // the stored signals of a connector, `signal_current.poll_id`) is never given twice.
    (
        "polls",
        "DELETE FROM polls WHERE started_at < $1 AND id < (SELECT MAX(id) FROM polls)",
    ),
    (
        "poll_days",
        "DELETE FROM poll_days WHERE last_started_at < $1",
    ),
    (
        "signal_history",
        "DELETE FROM signal_history WHERE observed_at < $1",
    ),
    (
        "transitions",
        "DELETE FROM action_transitions WHERE at < $1",
    ),
    (
        "snapshots",
        "DELETE FROM score_snapshots WHERE at < $1 AND id NOT IN \
        (SELECT MAX(id) FROM score_snapshots GROUP BY tenant)",
    ),
    (
        "snapshots",
        "DELETE FROM category_snapshots WHERE at < $1 AND id NOT IN \
        (SELECT MAX(id) FROM category_snapshots GROUP BY tenant, category)",
    ),
    (
        "snapshots",
        "DELETE FROM assessment_snapshots WHERE at < $1 AND id NOT IN \
        (SELECT MAX(id) FROM assessment_snapshots GROUP BY tenant, assessment)",
    ),
    (
        "notifications",
        "DELETE FROM alert_outbox WHERE created_at < $1 AND state <> 'pending' AND id NOT IN \
        (SELECT MAX(id) FROM alert_outbox GROUP BY notifier, alert_key)",
    ),
    (
        "events",
        "DELETE FROM alert_events WHERE at < $1 AND NOT EXISTS \
        (SELECT 1 FROM alert_outbox o WHERE o.event_id = alert_events.id)",
    ),
];

/// The alert writes of one poll, inside its transaction: events (skipping any already stored
/// under the same dedup key, with their outbox rows) and detector states.
pub(crate) async fn write_alerts<DB>(
    conn: &mut DB::Connection,
    tenant: &str,
    written_at: i64,
    alerts: &EncodedAlerts<'_>,
) -> Result<(), StoreError>
where
    DB: SqlBackend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'s> &'s str: Encode<'s, DB> + Type<DB> + ColumnIndex<DB::Row>,
    for<'s> Option<&'s str>: Encode<'s, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    i64: Param<DB> + Column<DB>,
    Option<i64>: Param<DB>,
    f64: Param<DB> + Column<DB>,
    String: Column<DB>,
{
    for e in &alerts.events {
        let id: Option<i64> = sqlx::query_scalar(INSERT_EVENT)
            .bind(e.dedup_key.as_str())
            .bind(tenant)
            .bind(e.action_id)
            .bind(e.kind)
            .bind(e.severity)
            .bind(e.at)
            .bind(e.episode_started_at)
            .bind(e.json.as_str())
            .fetch_optional(&mut *conn)
            .await?;
        let Some(id) = id else { continue };
        for n in e.notifiers {
            sqlx::query(INSERT_OUTBOX)
                .bind(id)
                .bind(n.as_str())
                .bind(e.alert_key.as_str())
                .bind(e.resolves)
                .bind(written_at)
                .bind(written_at)
                .execute(&mut *conn)
                .await?;
        }
    }
    insert_rows::<DB, _>(
        conn,
        INSERT_STATES,
        STATE_CONFLICT,
        4,
        &alerts.states,
        |mut row, s| {
            row.push_bind(tenant)
                .push_bind(s.action_id)
                .push_bind(s.json.as_str())
                .push_bind(written_at);
        },
    )
    .await
}

/// The latest category and assessment snapshots of a tenant (name -> (achieved, possible)),
/// inside a poll's transaction.
pub(crate) async fn latest_snapshots<DB>(
    conn: &mut DB::Connection,
    tenant: &str,
) -> Result<[HashMap<String, (f64, f64)>; 2], StoreError>
where
    DB: SqlBackend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'s> &'s str: Encode<'s, DB> + Type<DB> + ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
    f64: Param<DB> + Column<DB>,
    String: Column<DB>,
{
    let mut out = [HashMap::new(), HashMap::new()];
    for (select, latest) in [SELECT_LATEST_CATEGORIES, SELECT_LATEST_ASSESSMENTS]
        .into_iter()
        .zip(out.iter_mut())
    {
        *latest = sqlx::query_as::<_, (String, f64, f64)>(select)
            .bind(tenant)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|(name, achieved, possible)| (name, (achieved, possible)))
            .collect();
    }
    Ok(out)
}

/// The category and assessment snapshots of one poll (those that changed), at `at`, inside its
/// transaction.
pub(crate) async fn write_snapshots<DB>(
    conn: &mut DB::Connection,
    tenant: &str,
    at: i64,
    categories: &[&(String, ScoreSummary)],
    assessments: &[&(String, ScoreSummary)],
) -> Result<(), StoreError>
where
    DB: SqlBackend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'s> &'s str: Encode<'s, DB> + Type<DB>,
    i64: Param<DB>,
    f64: Param<DB>,
{
    for (insert, scores) in [
        (INSERT_CATEGORIES, categories),
        (INSERT_ASSESSMENTS, assessments),
    ] {
        insert_rows::<DB, _>(conn, insert, "", 6, scores, |mut row, (name, s)| {
            row.push_bind(tenant)
                .push_bind(name.as_str())
                .push_bind(at)
                .push_bind(s.points_achieved)
                .push_bind(s.points_possible)
                .push_bind(s.ratio);
        })
        .await?;
    }
    Ok(())
}

#[async_trait]
impl<DB> AlertStore for SqlStore<DB>
where
    DB: SqlBackend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'s> &'s str: Encode<'s, DB> + Type<DB> + ColumnIndex<DB::Row>,
    for<'s> Option<&'s str>: Encode<'s, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    i64: Param<DB> + Column<DB>,
    Option<i64>: Param<DB>,
    f64: Param<DB> + Column<DB>,
    String: Column<DB>,
{
    async fn load_alert_state(
        &self,
        tenant: &str,
    ) -> Result<HashMap<String, InstanceState>, StoreError> {
        let rows = sqlx::query_as::<_, (String, String)>(SELECT_STATES)
            .bind(tenant)
            .fetch_all(self.pool())
            .await?;
        rows.into_iter()
            .map(|(id, raw)| Ok((id, decode_state(&raw)?)))
            .collect()
    }

    async fn due_notifications(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = sqlx::query_as::<_, OutboxDbRow>(SELECT_DUE)
            .bind(rows::to_millis(now))
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
        rows::decode_all(rows, OutboxDbRow::into_entry)
    }

    async fn mark_delivered(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(MARK_DELIVERED)
            .bind(rows::to_millis(at))
            .bind(id)
            .execute(self.writer()?)
            .await?;
        Ok(())
    }

    async fn mark_attempt_failed(
        &self,
        id: i64,
        attempts: u32,
        retry_at: Option<DateTime<Utc>>,
        error: &str,
    ) -> Result<(), StoreError> {
        let state = if retry_at.is_some() {
            OutboxState::Pending
        } else {
            OutboxState::Failed
        };
        sqlx::query(MARK_FAILED)
            .bind(i64::from(attempts))
            .bind(retry_at.map(rows::to_millis))
            .bind(error)
            .bind(state.as_str())
            .bind(id)
            .execute(self.writer()?)
            .await?;
        Ok(())
    }

    async fn pending_notifications(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(COUNT_PENDING)
            .fetch_one(self.pool())
            .await?)
    }

    async fn firing_alerts(&self, notifier: &str) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = sqlx::query_as::<_, OutboxDbRow>(SELECT_FIRING)
            .bind(notifier)
            .fetch_all(self.pool())
            .await?;
        rows::decode_all(rows, OutboxDbRow::into_entry)
    }

    async fn notifications(
        &self,
        filter: NotificationFilter<'_>,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        let rows = sqlx::query_as::<_, NotificationDbRow>(SELECT_NOTIFICATIONS)
            .bind(filter.tenant)
            .bind(filter.state.map(OutboxState::as_str))
            .bind(filter.before_id)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
        rows::decode_all(rows, NotificationDbRow::into_notification)
    }

    async fn alert_events(
        &self,
        tenant: &str,
        action: Option<&str>,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = action.map_or(SELECT_EVENTS, |_| SELECT_EVENTS_FOR_ACTION);
        self.history_of(sql, tenant, action, since, EventDbRow::into_event)
            .await
    }

    async fn category_history(
        &self,
        tenant: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<CategorySnapshot>, StoreError> {
        self.history_of(
            SELECT_CATEGORIES,
            tenant,
            None,
            since,
            CategoryDbRow::into_snapshot,
        )
        .await
    }

    async fn assessment_history(
        &self,
        tenant: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<AssessmentSnapshot>, StoreError> {
        self.history_of(
            SELECT_ASSESSMENTS,
            tenant,
            None,
            since,
            AssessmentDbRow::into_snapshot,
        )
        .await
    }

    async fn prune_history(&self, before: DateTime<Utc>) -> Result<PruneReport, StoreError> {
        let before = rows::to_millis(before);
        let mut report = PruneReport::default();
        let mut tx = self.writer()?.begin_with(DB::BEGIN_WRITE).await?;
        for (what, sql) in PRUNE {
            let done = sqlx::query(sql).bind(before).execute(&mut *tx).await?;
            let n = DB::rows_affected(&done);
            match what {
                "polls" => report.polls += n,
                "poll_days" => report.poll_days += n,
                "signal_history" => report.signal_history += n,
                "transitions" => report.transitions += n,
                "snapshots" => report.snapshots += n,
                "notifications" => report.notifications += n,
                _ => report.events += n,
            }
        }
        tx.commit().await?;
        Ok(report)
    }
}
