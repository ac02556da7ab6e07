//! The [`Store`] implementation of both backends: polls (full rows, the daily roll-up
//! `poll_days`, each connector's latest poll in `connector_state`), signals, gaps, action
//! states, transitions and score snapshots.
//!
//! One body over [`SqlStore<DB>`]: the SQL is written once with `$n` placeholders, and only what
//! [`SqlBackend`] names differs (how the transactions begin, PostgreSQL's per-tenant lock, how the
//! rows of a poll are sent). Row decoding is `rows.rs`; what a poll changes is `plan.rs`.
//!
//! Must not: hold a transaction across an await on anything but this database.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Connection, Encode, Executor, Type};

use super::alerts::{EncodedAlerts, latest_snapshots, write_alerts, write_snapshots};
use super::backend::{Column, Param, SqlBackend, SqlStore};
use super::batch::insert_rows;
use super::evidence::{AutomaticEvidence, write_automatic};
use super::plan::{EncodedPoll, Plan, Stored, StoredState};
use super::rows::{
    self, ActionStateRow, ConnectorStateRow, GapRow, LastPollDbRow, PollDayDbRow, PollDbRow,
    PollStateRow, SignalChangeRow, SignalRow, SignalValueRow, SnapshotRow, TransitionDbRow,
};
use super::{
    ConnectorLastPoll, PollDay, PollOutcome, PollRecord, PollRow, ScoreSnapshot, SignalChange,
    Store, StoreError, TenantState, TransitionRow,
};

const INSERT_POLL: &str = "INSERT INTO polls \
    (tenant, connector, started_at, finished_at, outcome, error_summary) \
    VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";
const SELECT_SIGNAL_VALUES: &str = "SELECT key, value FROM signal_current WHERE tenant = $1";
/// A row of the connector's stored signal set (marked with its `signals_poll_id`) is fresh as of
/// the connector's `signals_seen`: its times are brought forward by `signals_seen -
/// signals_base`.
const SELECT_SIGNALS: &str = "SELECT s.key, s.value, \
    s.observed_at + COALESCE(c.signals_seen - c.signals_base, 0) AS observed_at, \
    s.expires_at + COALESCE(c.signals_seen - c.signals_base, 0) AS expires_at \
    FROM signal_current s LEFT JOIN connector_state c \
    ON c.tenant = s.tenant AND c.signals_poll_id = s.poll_id \
    WHERE s.tenant = $1 ORDER BY s.key";
const MATERIALISE_SIGNALS: &str = "UPDATE signal_current SET observed_at = observed_at + $3, \
    expires_at = expires_at + $3 WHERE tenant = $1 AND poll_id = $2";
/// The connector's row of `connector_state` and the tenant's `tenant_digest`, in one round trip
/// (one row, every column NULL for what is not stored yet), with the number of signal rows
/// still marked as the connector's stored set (fewer than the set when another writer has
/// overwritten one of them since).
pub(crate) const SELECT_POLL_STATE: &str = "SELECT d.digest, c.last_outcome, c.last_error_summary, \
    c.last_success_at, c.signals_poll_id, c.signals_digest, c.signals_base, c.signals_seen, \
    (SELECT COUNT(*) FROM signal_current s WHERE s.tenant = k.tenant \
    AND s.poll_id = c.signals_poll_id) AS signals_marked \
    FROM (SELECT CAST($1 AS TEXT) AS tenant, CAST($2 AS TEXT) AS connector) k \
    LEFT JOIN tenant_digest d ON d.tenant = k.tenant \
    LEFT JOIN connector_state c ON c.tenant = k.tenant AND c.connector = k.connector";
const UPSERT_CONNECTOR_STATE: &str = "INSERT INTO connector_state (tenant, connector, \
    last_started_at, last_finished_at, last_outcome, last_error_summary, last_success_at, \
    signals_poll_id, signals_digest, signals_base, signals_seen) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
    ON CONFLICT (tenant, connector) DO UPDATE SET \
    last_started_at = excluded.last_started_at, last_finished_at = excluded.last_finished_at, \
    last_outcome = excluded.last_outcome, last_error_summary = excluded.last_error_summary, \
    last_success_at = excluded.last_success_at, signals_poll_id = excluded.signals_poll_id, \
    signals_digest = excluded.signals_digest, signals_base = excluded.signals_base, \
    signals_seen = excluded.signals_seen";
const UPSERT_TENANT_DIGEST: &str = "INSERT INTO tenant_digest (tenant, digest) VALUES ($1, $2) \
    ON CONFLICT (tenant) DO UPDATE SET digest = excluded.digest";
const UPSERT_POLL_DAY: &str = "INSERT INTO poll_days (tenant, connector, day, polls, \
    successes, partials, failures, timeouts, recorded, first_started_at, last_started_at, \
    last_finished_at) VALUES ($1, $2, $3, 1, $4, $5, $6, $7, $8, $9, $10, $11) \
    ON CONFLICT (tenant, connector, day) DO UPDATE SET polls = poll_days.polls + 1, \
    successes = poll_days.successes + excluded.successes, \
    partials = poll_days.partials + excluded.partials, \
    failures = poll_days.failures + excluded.failures, \
    timeouts = poll_days.timeouts + excluded.timeouts, \
    recorded = poll_days.recorded + excluded.recorded, \
    first_started_at = CASE WHEN excluded.first_started_at < poll_days.first_started_at \
    THEN excluded.first_started_at ELSE poll_days.first_started_at END, \
    last_started_at = CASE WHEN excluded.last_started_at > poll_days.last_started_at \
    THEN excluded.last_started_at ELSE poll_days.last_started_at END, \
    last_finished_at = CASE WHEN excluded.last_finished_at > poll_days.last_finished_at \
    THEN excluded.last_finished_at ELSE poll_days.last_finished_at END";
const SELECT_LAST_POLLS: &str = "SELECT connector, last_started_at, last_finished_at, \
    last_outcome, last_error_summary, last_success_at FROM connector_state \
    WHERE tenant = $1 ORDER BY connector";
const SELECT_POLL_DAYS: &str = "SELECT connector, day, polls, successes, partials, failures, \
    timeouts, recorded, first_started_at, last_started_at, last_finished_at FROM poll_days \
    WHERE tenant = $1 AND last_started_at >= $2 ORDER BY day, connector";
const SELECT_HISTORY: &str = "SELECT key, value, observed_at FROM signal_history \
    WHERE tenant = $1 AND observed_at >= $2 ORDER BY observed_at, id";
const SELECT_HISTORY_FOR_KEY: &str = "SELECT key, value, observed_at FROM signal_history \
    WHERE tenant = $1 AND key = $2 AND observed_at >= $3 ORDER BY observed_at, id";
const DELETE_GAPS: &str = "DELETE FROM signal_gaps WHERE tenant = $1 AND connector = $2";
const SELECT_GAPS: &str =
    "SELECT prefix, kind, reason FROM signal_gaps WHERE tenant = $1 ORDER BY connector, prefix";
const SELECT_ACTIONS: &str = "SELECT action_id, test_status, implementation_status, credit, \
    points, points_achieved, points_possible, since, reason, testing_logic \
    FROM action_state WHERE tenant = $1";
const SELECT_TRANSITIONS: &str = "SELECT tenant, action_id, from_status, to_status, \
    from_credit, to_credit, points_achieved, points_possible, reason, signals, at, \
    testing_logic, evidence_sha256 FROM action_transitions WHERE tenant = $1 AND at >= $2 \
    ORDER BY at, id";
const SELECT_TRANSITIONS_FOR_ACTION: &str = "SELECT tenant, action_id, from_status, to_status, \
    from_credit, to_credit, points_achieved, points_possible, reason, signals, at, \
    testing_logic, evidence_sha256 FROM action_transitions WHERE tenant = $1 AND action_id = $2 \
    AND at >= $3 ORDER BY at, id";
const SELECT_LATEST_SCORE: &str = "SELECT points_achieved, points_possible \
    FROM score_snapshots WHERE tenant = $1 ORDER BY at DESC, id DESC LIMIT 1";
const INSERT_SNAPSHOT: &str = "INSERT INTO score_snapshots \
    (tenant, at, points_achieved, points_possible, ratio) VALUES ($1, $2, $3, $4, $5)";
const SELECT_SNAPSHOTS: &str = "SELECT at, points_achieved, points_possible, ratio \
    FROM score_snapshots WHERE tenant = $1 AND at >= $2 ORDER BY at, id";
const UPSERT_HEALTH: &str = "INSERT INTO store_health (id, checked_at) VALUES (1, $1) \
    ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at";
const SELECT_POLLS: &str = "SELECT id, tenant, connector, started_at, finished_at, outcome, \
    error_summary FROM polls WHERE tenant = $1 ORDER BY started_at DESC, id DESC LIMIT $2";

// The rows of a poll that come in any number, each table's rows in multi-row statements
// (`batch::insert_rows` adds the `VALUES` and each `ON CONFLICT` clause after them).
const INSERT_SIGNALS: &str =
    "INSERT INTO signal_current (tenant, key, value, observed_at, expires_at, poll_id) ";
const SIGNAL_CONFLICT: &str = " ON CONFLICT (tenant, key) DO UPDATE SET value = excluded.value, \
    observed_at = excluded.observed_at, expires_at = excluded.expires_at, \
    poll_id = excluded.poll_id";
const INSERT_HISTORY: &str = "INSERT INTO signal_history (tenant, key, value, observed_at) ";
const INSERT_GAPS: &str = "INSERT INTO signal_gaps (tenant, connector, prefix, kind, reason) ";
const INSERT_ACTIONS: &str = "INSERT INTO action_state (tenant, action_id, test_status, \
    implementation_status, credit, points, points_achieved, points_possible, since, updated_at, \
    reason, testing_logic) ";
const ACTION_CONFLICT: &str = " ON CONFLICT (tenant, action_id) DO UPDATE SET \
    test_status = excluded.test_status, implementation_status = excluded.implementation_status, \
    credit = excluded.credit, points = excluded.points, \
    points_achieved = excluded.points_achieved, points_possible = excluded.points_possible, \
    since = excluded.since, updated_at = excluded.updated_at, reason = excluded.reason, \
    testing_logic = excluded.testing_logic";
const INSERT_TRANSITIONS: &str = "INSERT INTO action_transitions (tenant, action_id, \
    from_status, to_status, from_credit, to_credit, points_achieved, points_possible, reason, \
    signals, at, poll_id, testing_logic, evidence_sha256) ";

#[async_trait]
impl<DB> Store for SqlStore<DB>
where
    DB: SqlBackend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'s> &'s str: Encode<'s, DB> + Type<DB> + ColumnIndex<DB::Row>,
    for<'s> Option<&'s str>: Encode<'s, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    i64: Param<DB> + Column<DB>,
    Option<i64>: Param<DB>,
    f64: Param<DB> + Column<DB>,
    Option<f64>: Param<DB>,
    String: Column<DB>,
    for<'s> Option<&'s [u8]>: Encode<'s, DB> + Type<DB>,
    Vec<u8>: Column<DB>,
{
    fn backend(&self) -> &'static str {
        DB::BACKEND
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let Some(session) = DB::MIGRATION_SESSION else {
            DB::MIGRATOR.run(self.pool()).await?;
            return Ok(());
        };
        // A connection of its own, never returned to the pool with its timeout lifted.
        let mut conn = self.pool().acquire().await?.detach();
        let result = match sqlx::query(session).execute(&mut conn).await {
            Ok(_) => DB::MIGRATOR
                .run_direct(None, &mut conn, false)
                .await
                .map_err(StoreError::from),
            Err(e) => Err(e.into()),
        };
        let _ = conn.close().await;
        result
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(self.pool()).await?;
        Ok(())
    }

    async fn check_health(&self) -> Result<(), StoreError> {
        sqlx::query(UPSERT_HEALTH)
            .bind(Utc::now().timestamp_millis())
            .execute(self.writer()?)
            .await?;
        Ok(())
    }

    async fn load_tenant_state(&self, tenant: &str) -> Result<TenantState, StoreError> {
        let mut tx = self.pool().begin_with(DB::BEGIN_SNAPSHOT).await?;
        let signals = sqlx::query_as::<_, SignalRow>(SELECT_SIGNALS)
            .bind(tenant)
            .fetch_all(&mut *tx)
            .await?;
        let gaps = sqlx::query_as::<_, GapRow>(SELECT_GAPS)
            .bind(tenant)
            .fetch_all(&mut *tx)
            .await?;
        let actions = sqlx::query_as::<_, ActionStateRow>(SELECT_ACTIONS)
            .bind(tenant)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(TenantState {
            signals: rows::decode_all(signals, SignalRow::into_signal)?,
            gaps: gaps.into_iter().map(Into::into).collect(),
            actions: rows::decode_all(actions, ActionStateRow::into_state)?
                .into_iter()
                .collect::<HashMap<_, _>>(),
        })
    }

    async fn record_poll(&self, poll: &PollRecord<'_>) -> Result<(), StoreError> {
        let encoded = EncodedPoll::new(poll)?;
        let alerts = EncodedAlerts::new(poll.tenant, &poll.alerts)?;
        // Checked before a connection is taken (opening one at a removed path fails with a
        // plain database error), and again once the write transaction holds SQLite's write
        // lock, just before writing.
        let mut tx = self.writer()?.begin_with(DB::BEGIN_WRITE).await?;
        self.check_file()?;
        if let Some(lock) = DB::LOCK_TENANT {
            sqlx::query(lock)
                .bind(poll.tenant)
                .execute(&mut *tx)
                .await?;
        }
        let poll_id = write_poll::<DB>(&mut tx, &encoded, &alerts, poll.evidence).await?;
        if poll_id.is_some() {
            write_automatic::<DB>(
                &mut tx,
                poll.tenant,
                poll.connector,
                poll.evaluation.evaluated_at,
                poll.evidence,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn transitions(
        &self,
        tenant: &str,
        action: Option<&str>,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<TransitionRow>, StoreError> {
        let sql = action.map_or(SELECT_TRANSITIONS, |_| SELECT_TRANSITIONS_FOR_ACTION);
        self.history_of(sql, tenant, action, since, TransitionDbRow::into_row)
            .await
    }

    async fn signal_history(
        &self,
        tenant: &str,
        key: Option<&str>,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<SignalChange>, StoreError> {
        let sql = key.map_or(SELECT_HISTORY, |_| SELECT_HISTORY_FOR_KEY);
        self.history_of(sql, tenant, key, since, SignalChangeRow::into_change)
            .await
    }

    async fn score_history(
        &self,
        tenant: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<ScoreSnapshot>, StoreError> {
        self.history_of(
            SELECT_SNAPSHOTS,
            tenant,
            None,
            since,
            SnapshotRow::into_snapshot,
        )
        .await
    }

    async fn recent_polls(&self, tenant: &str, limit: u32) -> Result<Vec<PollRow>, StoreError> {
        let limit = Some(i64::from(limit));
        self.rows_of(SELECT_POLLS, tenant, None, limit, PollDbRow::into_poll)
            .await
    }

    async fn last_polls(&self, tenant: &str) -> Result<Vec<ConnectorLastPoll>, StoreError> {
        self.rows_of(
            SELECT_LAST_POLLS,
            tenant,
            None,
            None,
            LastPollDbRow::into_last_poll,
        )
        .await
    }

    async fn poll_days(
        &self,
        tenant: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<PollDay>, StoreError> {
        self.history_of(
            SELECT_POLL_DAYS,
            tenant,
            None,
            since,
            PollDayDbRow::into_day,
        )
        .await
    }
}

/// The writes of one poll inside its transaction: read the connector's `connector_state` row
/// and the tenant's `tenant_digest` (one statement), then only what differs from them (the signal values, the
/// action rows and latest snapshots), plan, write the full poll row when the plan keeps one,
/// what changed, the alert writes, and count the poll (`connector_state`, `poll_days`).
/// `evidence`: the poll's automatic evidence, whose addresses its transitions carry (the
/// evidence rows are written by the caller). Returns the full poll row's id, if any.
async fn write_poll<DB>(
    conn: &mut DB::Connection,
    poll: &EncodedPoll<'_>,
    alerts: &EncodedAlerts<'_>,
    evidence: &[AutomaticEvidence],
) -> Result<Option<i64>, StoreError>
where
    DB: SqlBackend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'s> &'s str: Encode<'s, DB> + Type<DB> + ColumnIndex<DB::Row>,
    for<'s> Option<&'s str>: Encode<'s, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    i64: Param<DB> + Column<DB>,
    Option<i64>: Param<DB> + Column<DB>,
    f64: Param<DB> + Column<DB>,
    Option<f64>: Param<DB>,
    String: Column<DB>,
    Option<String>: Column<DB>,
{
    let p = &poll.poll;
    let (digest, connector) = sqlx::query_as::<_, PollStateRow>(SELECT_POLL_STATE)
        .bind(p.tenant)
        .bind(p.connector)
        .fetch_one(&mut *conn)
        .await?
        .split();
    let signal_values = if poll.signals_unchanged(connector.as_ref()) {
        None
    } else {
        Some(
            sqlx::query_as::<_, SignalValueRow>(SELECT_SIGNAL_VALUES)
                .bind(p.tenant)
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .map(|r| (r.key, r.value))
                .collect(),
        )
    };
    let state = if digest.as_deref() == Some(poll.state_digest.as_str()) {
        None
    } else {
        Some(read_state::<DB>(conn, p.tenant).await?)
    };
    let stored = Stored {
        connector,
        signal_values,
        state,
    };
    let plan = poll.plan(&stored, !evidence.is_empty() || !alerts.events.is_empty());

    let poll_id = if plan.record {
        Some(
            sqlx::query_scalar(INSERT_POLL)
                .bind(p.tenant)
                .bind(p.connector)
                .bind(p.started_at)
                .bind(p.finished_at)
                .bind(p.outcome)
                .bind(p.error_summary.as_deref())
                .fetch_one(&mut *conn)
                .await?,
        )
    } else {
        None
    };
    if plan.replace_gaps {
        sqlx::query(DELETE_GAPS)
            .bind(p.tenant)
            .bind(p.connector)
            .execute(&mut *conn)
            .await?;
    }
    if let Some((marker, shift)) = plan.materialise {
        sqlx::query(MATERIALISE_SIGNALS)
            .bind(p.tenant)
            .bind(marker)
            .bind(shift)
            .execute(&mut *conn)
            .await?;
    }
    write_rows::<DB>(conn, poll, &plan, poll_id, evidence).await?;
    if let Some(s) = &plan.snapshot {
        sqlx::query(INSERT_SNAPSHOT)
            .bind(p.tenant)
            .bind(s.at)
            .bind(s.points_achieved)
            .bind(s.points_possible)
            .bind(s.ratio)
            .execute(&mut *conn)
            .await?;
    }
    write_snapshots::<DB>(
        conn,
        p.tenant,
        poll.score.at,
        &plan.categories,
        &plan.assessments,
    )
    .await?;
    write_alerts::<DB>(conn, p.tenant, p.finished_at, alerts).await?;
    if plan.write_digest {
        sqlx::query(UPSERT_TENANT_DIGEST)
            .bind(p.tenant)
            .bind(poll.state_digest.as_str())
            .execute(&mut *conn)
            .await?;
    }
    count_poll::<DB>(conn, poll, &plan, stored.connector.as_ref(), poll_id).await?;
    Ok(poll_id)
}

/// Write the rows of a poll that come in any number, inside its transaction, each table's in
/// multi-row statements: the signal upserts (when [`Plan::write_signals`], marked with
/// `poll_id`), the history rows, the gaps (when [`Plan::replace_gaps`]; the connector's old
/// ones are already deleted), the changed action states and the transitions (with `poll_id`,
/// the poll's full row, `None` when it has none, which the plan keeps for every poll that
/// writes signals or transitions; and the address of the automatic evidence of the action,
/// the last one of `evidence` when it has several).
async fn write_rows<DB>(
    conn: &mut DB::Connection,
    poll: &EncodedPoll<'_>,
    plan: &Plan<'_, '_>,
    poll_id: Option<i64>,
    evidence: &[AutomaticEvidence],
) -> Result<(), StoreError>
where
    DB: SqlBackend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'s> &'s str: Encode<'s, DB> + Type<DB>,
    for<'s> Option<&'s str>: Encode<'s, DB> + Type<DB>,
    i64: Param<DB>,
    Option<i64>: Param<DB>,
    f64: Param<DB>,
    Option<f64>: Param<DB>,
{
    let tenant = poll.poll.tenant;
    let signals: &[_] = if plan.write_signals {
        &poll.signals
    } else {
        &[]
    };
    insert_rows::<DB, _>(
        conn,
        INSERT_SIGNALS,
        SIGNAL_CONFLICT,
        6,
        signals,
        |mut row, s| {
            row.push_bind(tenant)
                .push_bind(s.key)
                .push_bind(s.value.as_str())
                .push_bind(s.observed_at)
                .push_bind(s.expires_at)
                .push_bind(poll_id);
        },
    )
    .await?;
    insert_rows::<DB, _>(conn, INSERT_HISTORY, "", 4, &plan.history, |mut row, s| {
        row.push_bind(tenant)
            .push_bind(s.key)
            .push_bind(s.value.as_str())
            .push_bind(s.observed_at);
    })
    .await?;
    let gaps: &[_] = if plan.replace_gaps { &poll.gaps } else { &[] };
    insert_rows::<DB, _>(conn, INSERT_GAPS, "", 5, gaps, |mut row, g| {
        row.push_bind(tenant)
            .push_bind(poll.poll.connector)
            .push_bind(g.prefix)
            .push_bind(g.kind)
            .push_bind(g.reason);
    })
    .await?;
    insert_rows::<DB, _>(
        conn,
        INSERT_ACTIONS,
        ACTION_CONFLICT,
        12,
        &plan.actions,
        |mut row, a| {
            row.push_bind(tenant)
                .push_bind(a.action_id)
                .push_bind(a.test_status)
                .push_bind(a.implementation_status)
                .push_bind(a.credit)
                .push_bind(a.points)
                .push_bind(a.points_achieved)
                .push_bind(a.points_possible)
                .push_bind(a.since)
                .push_bind(a.updated_at)
                .push_bind(a.reason)
                .push_bind(a.testing_logic);
        },
    )
    .await?;
    let evidence_of: HashMap<&str, &str> = evidence
        .iter()
        .map(|e| (e.action_id.as_str(), e.sha256.as_str()))
        .collect();
    insert_rows::<DB, _>(
        conn,
        INSERT_TRANSITIONS,
        "",
        14,
        &poll.transitions,
        |mut row, t| {
            row.push_bind(tenant)
                .push_bind(t.action_id)
                .push_bind(t.from_status)
                .push_bind(t.to_status)
                .push_bind(t.from_credit)
                .push_bind(t.to_credit)
                .push_bind(t.points_achieved)
                .push_bind(t.points_possible)
                .push_bind(t.reason)
                .push_bind(t.signals.as_str())
                .push_bind(t.at)
                .push_bind(poll_id)
                .push_bind(t.testing_logic)
                .push_bind(evidence_of.get(t.action_id).copied());
        },
    )
    .await
}

/// The tenant's action rows and latest snapshots (what a poll compares its evaluation with when
/// the stored state digest differs).
async fn read_state<DB>(conn: &mut DB::Connection, tenant: &str) -> Result<StoredState, StoreError>
where
    DB: SqlBackend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'s> &'s str: Encode<'s, DB> + Type<DB> + ColumnIndex<DB::Row>,
    for<'s> Option<&'s str>: Encode<'s, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    i64: Param<DB> + Column<DB>,
    f64: Param<DB> + Column<DB>,
    String: Column<DB>,
{
    let actions = sqlx::query_as::<_, ActionStateRow>(SELECT_ACTIONS)
        .bind(tenant)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|r| (r.action_id.clone(), r))
        .collect();
    let latest_score = sqlx::query_as::<_, (f64, f64)>(SELECT_LATEST_SCORE)
        .bind(tenant)
        .fetch_optional(&mut *conn)
        .await?;
    let [latest_categories, latest_assessments] = latest_snapshots::<DB>(conn, tenant).await?;
    Ok(StoredState {
        actions,
        latest_score,
        latest_categories,
        latest_assessments,
    })
}

/// Count the poll: its connector's latest poll and stored signal set (`connector_state`) and
/// its day (`poll_days`).
async fn count_poll<DB>(
    conn: &mut DB::Connection,
    poll: &EncodedPoll<'_>,
    plan: &Plan<'_, '_>,
    stored: Option<&ConnectorStateRow>,
    poll_id: Option<i64>,
) -> Result<(), StoreError>
where
    DB: SqlBackend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'s> &'s str: Encode<'s, DB> + Type<DB>,
    for<'s> Option<&'s str>: Encode<'s, DB> + Type<DB>,
    i64: Param<DB>,
    Option<i64>: Param<DB>,
{
    let p = &poll.poll;
    let success = p.outcome == PollOutcome::Success.as_str();
    let last_success_at = if success {
        Some(p.finished_at)
    } else {
        stored.and_then(|c| c.last_success_at)
    };
    // The stored signal set: this poll's when it wrote its signals, else the same set, now
    // fresh as of this poll.
    let (marker, digest, base) = if plan.write_signals {
        (
            poll_id,
            Some(poll.signals_digest.as_str()),
            Some(p.started_at),
        )
    } else {
        (
            stored.and_then(|c| c.signals_poll_id),
            stored.and_then(|c| c.signals_digest.as_deref()),
            stored.and_then(|c| c.signals_base),
        )
    };
    sqlx::query(UPSERT_CONNECTOR_STATE)
        .bind(p.tenant)
        .bind(p.connector)
        .bind(p.started_at)
        .bind(p.finished_at)
        .bind(p.outcome)
        .bind(p.error_summary.as_deref())
        .bind(last_success_at)
        .bind(marker)
        .bind(digest)
        .bind(base)
        .bind(Some(p.started_at))
        .execute(&mut *conn)
        .await?;
    let is = |o: PollOutcome| i64::from(p.outcome == o.as_str());
    sqlx::query(UPSERT_POLL_DAY)
        .bind(p.tenant)
        .bind(p.connector)
        .bind(p.day)
        .bind(is(PollOutcome::Success))
        .bind(is(PollOutcome::Partial))
        .bind(is(PollOutcome::Failure))
        .bind(is(PollOutcome::Timeout))
        .bind(i64::from(poll_id.is_some()))
        .bind(p.started_at)
        .bind(p.started_at)
        .bind(p.finished_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
