//! The [`Store`] implementation of both backends: polls, signals, gaps, action states,
//! transitions and score snapshots.
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

use super::alerts::{EncodedAlerts, write_alerts, write_snapshots};
use super::backend::{Column, Param, SqlBackend, SqlStore};
use super::evidence::write_automatic;
use super::plan::{EncodedPoll, Stored};
use super::rows::{
    self, ActionStateRow, GapRow, PollDbRow, SignalChangeRow, SignalRow, SignalValueRow,
    SnapshotRow, TransitionDbRow,
};
use super::{
    PollRecord, PollRow, ScoreSnapshot, SignalChange, Store, StoreError, TenantState, TransitionRow,
};

const INSERT_POLL: &str = "INSERT INTO polls \
    (tenant, connector, started_at, finished_at, outcome, error_summary) \
    VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";
const SELECT_SIGNAL_VALUES: &str = "SELECT key, value FROM signal_current WHERE tenant = $1";
const SELECT_SIGNALS: &str = "SELECT key, value, observed_at, expires_at \
    FROM signal_current WHERE tenant = $1 ORDER BY key";
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

/// What the signal upsert of either backend updates on a key already stored (a macro, so that
/// each backend's statement includes it with `concat!`).
macro_rules! signal_conflict {
    () => {
        "ON CONFLICT (tenant, key) DO UPDATE SET value = excluded.value, \
        observed_at = excluded.observed_at, expires_at = excluded.expires_at"
    };
}
pub(crate) use signal_conflict;

/// What the action-state upsert of either backend updates on an action already stored (a
/// macro, so that each backend's statement includes it with `concat!`).
macro_rules! action_conflict {
    () => {
        "ON CONFLICT (tenant, action_id) DO UPDATE SET test_status = excluded.test_status, \
        implementation_status = excluded.implementation_status, credit = excluded.credit, \
        points = excluded.points, points_achieved = excluded.points_achieved, \
        points_possible = excluded.points_possible, since = excluded.since, \
        updated_at = excluded.updated_at, reason = excluded.reason, \
        testing_logic = excluded.testing_logic"
    };
}
pub(crate) use action_conflict;

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
        let poll_id = write_poll::<DB>(&mut tx, &encoded, &alerts).await?;
        write_automatic::<DB>(
            &mut tx,
            poll.tenant,
            poll.connector,
            poll.evaluation.evaluated_at,
            poll_id,
            poll.evidence,
        )
        .await?;
        write_snapshots::<DB>(&mut tx, poll.tenant, poll.evaluation, poll.assessments).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn transitions(
        &self,
        tenant: &str,
        action: Option<&str>,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<TransitionRow>, StoreError> {
        let query = match action {
            Some(action) => sqlx::query_as::<_, TransitionDbRow>(SELECT_TRANSITIONS_FOR_ACTION)
                .bind(tenant)
                .bind(action),
            None => sqlx::query_as::<_, TransitionDbRow>(SELECT_TRANSITIONS).bind(tenant),
        };
        let rows = query
            .bind(rows::since_millis(since))
            .fetch_all(self.pool())
            .await?;
        rows::decode_all(rows, TransitionDbRow::into_row)
    }

    async fn signal_history(
        &self,
        tenant: &str,
        key: Option<&str>,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<SignalChange>, StoreError> {
        let query = match key {
            Some(key) => sqlx::query_as::<_, SignalChangeRow>(SELECT_HISTORY_FOR_KEY)
                .bind(tenant)
                .bind(key),
            None => sqlx::query_as::<_, SignalChangeRow>(SELECT_HISTORY).bind(tenant),
        };
        let rows = query
            .bind(rows::since_millis(since))
            .fetch_all(self.pool())
            .await?;
        rows::decode_all(rows, SignalChangeRow::into_change)
    }

    async fn score_history(
        &self,
        tenant: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<ScoreSnapshot>, StoreError> {
        let rows = sqlx::query_as::<_, SnapshotRow>(SELECT_SNAPSHOTS)
            .bind(tenant)
            .bind(rows::since_millis(since))
            .fetch_all(self.pool())
            .await?;
        rows::decode_all(rows, SnapshotRow::into_snapshot)
    }

    async fn recent_polls(&self, tenant: &str, limit: u32) -> Result<Vec<PollRow>, StoreError> {
        let rows = sqlx::query_as::<_, PollDbRow>(SELECT_POLLS)
            .bind(tenant)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
        rows::decode_all(rows, PollDbRow::into_poll)
    }
}

/// The writes of one poll inside its transaction: the poll row, then what changed compared with
/// the stored state (read here, after the transaction began), then the alert writes. Returns
/// the poll row's id.
async fn write_poll<DB>(
    conn: &mut DB::Connection,
    poll: &EncodedPoll<'_>,
    alerts: &EncodedAlerts<'_>,
) -> Result<i64, StoreError>
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
    let p = &poll.poll;
    let poll_id: i64 = sqlx::query_scalar(INSERT_POLL)
        .bind(p.tenant)
        .bind(p.connector)
        .bind(p.started_at)
        .bind(p.finished_at)
        .bind(p.outcome)
        .bind(p.error_summary.as_deref())
        .fetch_one(&mut *conn)
        .await?;

    let signal_values = sqlx::query_as::<_, SignalValueRow>(SELECT_SIGNAL_VALUES)
        .bind(p.tenant)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|r| (r.key, r.value))
        .collect();
    let actions = sqlx::query_as::<_, ActionStateRow>(SELECT_ACTIONS)
        .bind(p.tenant)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|r| (r.action_id.clone(), r))
        .collect();
    let latest_score = sqlx::query_as::<_, (f64, f64)>(SELECT_LATEST_SCORE)
        .bind(p.tenant)
        .fetch_optional(&mut *conn)
        .await?;
    let plan = poll.plan(&Stored {
        signal_values,
        actions,
        latest_score,
    });

    sqlx::query(DELETE_GAPS)
        .bind(p.tenant)
        .bind(p.connector)
        .execute(&mut *conn)
        .await?;
    DB::write_rows(conn, poll, &plan, poll_id).await?;
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
    write_alerts::<DB>(conn, p.tenant, p.finished_at, alerts).await?;
    Ok(poll_id)
}
