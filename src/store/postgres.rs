//! PostgreSQL store: the same model as SQLite, for larger deployments.
//!
//! All PostgreSQL SQL lives here; row decoding is shared (`rows.rs`) and so is the decision of
//! what a poll changes (`plan.rs`). `record_poll` is one transaction that first takes a
//! transaction-scoped advisory lock on the tenant (so two connectors of one tenant write one
//! after the other and compare against each other's results), then writes each table with one
//! statement, binding arrays and expanding them with `UNNEST` (a handful of round trips per
//! poll, whatever the number of signals and actions).
//!
//! Must not: hold a transaction across an await on anything but this database.

use std::collections::HashMap;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use super::alerts::EncodedAlerts;
use super::plan::{EncodedPoll, Plan, Stored};
use super::rows::{
    self, ActionStateRow, GapRow, PollDbRow, SignalChangeRow, SignalRow, SignalValueRow,
    SnapshotRow, TransitionDbRow,
};
use super::{
    PollRecord, PollRow, ScoreSnapshot, SignalChange, Store, StoreError, TenantState, TransitionRow,
};

/// Migrations of `migrations/postgres`, embedded at build time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

const LOCK_TENANT: &str = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";
const INSERT_POLL: &str = "INSERT INTO polls \
    (tenant, connector, started_at, finished_at, outcome, error_summary) \
    VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";
const SELECT_SIGNAL_VALUES: &str = "SELECT key, value FROM signal_current WHERE tenant = $1";
const SELECT_SIGNALS: &str = "SELECT key, value, observed_at, expires_at \
    FROM signal_current WHERE tenant = $1 ORDER BY key";
const UPSERT_SIGNALS: &str = "INSERT INTO signal_current \
    (tenant, key, value, observed_at, expires_at) \
    SELECT $1, u.key, u.value, u.observed_at, u.expires_at \
    FROM UNNEST($2::text[], $3::text[], $4::bigint[], $5::bigint[]) \
    AS u (key, value, observed_at, expires_at) \
    ON CONFLICT (tenant, key) DO UPDATE SET value = EXCLUDED.value, \
    observed_at = EXCLUDED.observed_at, expires_at = EXCLUDED.expires_at";
const INSERT_HISTORY: &str = "INSERT INTO signal_history (tenant, key, value, observed_at) \
    SELECT $1, u.key, u.value, u.observed_at \
    FROM UNNEST($2::text[], $3::text[], $4::bigint[]) AS u (key, value, observed_at)";
const SELECT_HISTORY: &str = "SELECT key, value, observed_at FROM signal_history \
    WHERE tenant = $1 AND observed_at >= $2 ORDER BY observed_at, id";
const SELECT_HISTORY_FOR_KEY: &str = "SELECT key, value, observed_at FROM signal_history \
    WHERE tenant = $1 AND key = $3 AND observed_at >= $2 ORDER BY observed_at, id";
const DELETE_GAPS: &str = "DELETE FROM signal_gaps WHERE tenant = $1 AND connector = $2";
const INSERT_GAPS: &str = "INSERT INTO signal_gaps (tenant, connector, prefix, kind, reason) \
    SELECT $1, $2, u.prefix, u.kind, u.reason \
    FROM UNNEST($3::text[], $4::text[], $5::text[]) AS u (prefix, kind, reason)";
const SELECT_GAPS: &str =
    "SELECT prefix, kind, reason FROM signal_gaps WHERE tenant = $1 ORDER BY connector, prefix";
const SELECT_ACTIONS: &str = "SELECT action_id, test_status, implementation_status, credit, \
    points, points_achieved, points_possible, since, reason, testing_logic \
    FROM action_state WHERE tenant = $1";
const UPSERT_ACTIONS: &str = "INSERT INTO action_state \
    (tenant, action_id, test_status, implementation_status, credit, points, points_achieved, \
    points_possible, since, updated_at, reason, testing_logic) \
    SELECT $1, u.action_id, u.test_status, u.implementation_status, u.credit, u.points, \
    u.points_achieved, u.points_possible, u.since, u.updated_at, u.reason, u.testing_logic \
    FROM UNNEST($2::text[], $3::text[], $4::text[], $5::float8[], $6::bigint[], \
    $7::float8[], $8::float8[], $9::bigint[], $10::bigint[], $11::text[], $12::text[]) \
    AS u (action_id, test_status, implementation_status, credit, points, points_achieved, \
    points_possible, since, updated_at, reason, testing_logic) \
    ON CONFLICT (tenant, action_id) DO UPDATE SET test_status = EXCLUDED.test_status, \
    implementation_status = EXCLUDED.implementation_status, credit = EXCLUDED.credit, \
    points = EXCLUDED.points, points_achieved = EXCLUDED.points_achieved, \
    points_possible = EXCLUDED.points_possible, since = EXCLUDED.since, \
    updated_at = EXCLUDED.updated_at, reason = EXCLUDED.reason, \
    testing_logic = EXCLUDED.testing_logic";
const INSERT_TRANSITIONS: &str = "INSERT INTO action_transitions \
    (tenant, action_id, from_status, to_status, from_credit, to_credit, points_achieved, \
    points_possible, reason, signals, at, poll_id, testing_logic) \
    SELECT $1, u.action_id, u.from_status, u.to_status, u.from_credit, u.to_credit, \
    u.points_achieved, u.points_possible, u.reason, u.signals, u.at, $12, u.testing_logic \
    FROM UNNEST($2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[], \
    $7::float8[], $8::float8[], $9::text[], $10::text[], $11::bigint[], $13::text[]) \
    WITH ORDINALITY AS u (action_id, from_status, to_status, from_credit, to_credit, \
    points_achieved, points_possible, reason, signals, at, testing_logic, n) ORDER BY u.n";
const SELECT_TRANSITIONS: &str = "SELECT tenant, action_id, from_status, to_status, \
    from_credit, to_credit, points_achieved, points_possible, reason, signals, at, \
    testing_logic FROM action_transitions WHERE tenant = $1 AND at >= $2 ORDER BY at, id";
const SELECT_TRANSITIONS_FOR_ACTION: &str = "SELECT tenant, action_id, from_status, to_status, \
    from_credit, to_credit, points_achieved, points_possible, reason, signals, at, \
    testing_logic FROM action_transitions WHERE tenant = $1 AND action_id = $3 AND at >= $2 ORDER BY at, id";
const SELECT_LATEST_SCORE: &str = "SELECT points_achieved, points_possible \
    FROM score_snapshots WHERE tenant = $1 ORDER BY at DESC, id DESC LIMIT 1";
const INSERT_SNAPSHOT: &str = "INSERT INTO score_snapshots \
    (tenant, at, points_achieved, points_possible, ratio) VALUES ($1, $2, $3, $4, $5)";
const SELECT_SNAPSHOTS: &str = "SELECT at, points_achieved, points_possible, ratio \
    FROM score_snapshots WHERE tenant = $1 AND at >= $2 ORDER BY at, id";
const SELECT_POLLS: &str = "SELECT id, tenant, connector, started_at, finished_at, outcome, \
    error_summary FROM polls WHERE tenant = $1 ORDER BY started_at DESC, id DESC LIMIT $2";

/// A [`Store`] over one PostgreSQL database (tables in the connection's `search_path`).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connect to `url` (`postgres://user:pass@host:port/db`, or
    /// `postgres:///db?host=/run/postgresql` for a socket directory). Does not migrate.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        Self::connect_with(PgConnectOptions::from_str(url)?, max_connections).await
    }

    /// Connect with prepared options, e.g. with a `search_path` to keep the tables in a
    /// dedicated schema (as the PostgreSQL conformance tests do). Does not migrate.
    pub async fn connect_with(
        options: PgConnectOptions,
        max_connections: u32,
    ) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect_with(options)
            .await?;
        Ok(PostgresStore { pool })
    }

    /// The connection pool (for the alert queries in `postgres_alerts.rs`).
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Read the tenant's stored state that `record_poll` compares against.
    async fn stored(conn: &mut PgConnection, tenant: &str) -> Result<Stored, StoreError> {
        let signal_values = sqlx::query_as::<_, SignalValueRow>(SELECT_SIGNAL_VALUES)
            .bind(tenant)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|r| (r.key, r.value))
            .collect();
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
        Ok(Stored {
            signal_values,
            actions,
            latest_score,
        })
    }

    /// Execute the writes of one poll (after the poll row), one statement per table.
    async fn write(
        conn: &mut PgConnection,
        poll: &EncodedPoll<'_>,
        plan: &Plan<'_, '_>,
        poll_id: i64,
    ) -> Result<(), StoreError> {
        let tenant = poll.poll.tenant;
        if !poll.signals.is_empty() {
            let s = &poll.signals;
            sqlx::query(UPSERT_SIGNALS)
                .bind(tenant)
                .bind(s.iter().map(|s| s.key).collect::<Vec<_>>())
                .bind(s.iter().map(|s| s.value.as_str()).collect::<Vec<_>>())
                .bind(s.iter().map(|s| s.observed_at).collect::<Vec<_>>())
                .bind(s.iter().map(|s| s.expires_at).collect::<Vec<_>>())
                .execute(&mut *conn)
                .await?;
        }
        if !plan.history.is_empty() {
            let h = &plan.history;
            sqlx::query(INSERT_HISTORY)
                .bind(tenant)
                .bind(h.iter().map(|s| s.key).collect::<Vec<_>>())
                .bind(h.iter().map(|s| s.value.as_str()).collect::<Vec<_>>())
                .bind(h.iter().map(|s| s.observed_at).collect::<Vec<_>>())
                .execute(&mut *conn)
                .await?;
        }
        sqlx::query(DELETE_GAPS)
            .bind(tenant)
            .bind(poll.poll.connector)
            .execute(&mut *conn)
            .await?;
        if !poll.gaps.is_empty() {
            let g = &poll.gaps;
            sqlx::query(INSERT_GAPS)
                .bind(tenant)
                .bind(poll.poll.connector)
                .bind(g.iter().map(|g| g.prefix).collect::<Vec<_>>())
                .bind(g.iter().map(|g| g.kind).collect::<Vec<_>>())
                .bind(g.iter().map(|g| g.reason).collect::<Vec<_>>())
                .execute(&mut *conn)
                .await?;
        }
        if !plan.actions.is_empty() {
            let a = &plan.actions;
            sqlx::query(UPSERT_ACTIONS)
                .bind(tenant)
                .bind(a.iter().map(|a| a.action_id).collect::<Vec<_>>())
                .bind(a.iter().map(|a| a.test_status).collect::<Vec<_>>())
                .bind(
                    a.iter()
                        .map(|a| a.implementation_status)
                        .collect::<Vec<_>>(),
                )
                .bind(a.iter().map(|a| a.credit).collect::<Vec<_>>())
                .bind(a.iter().map(|a| a.points).collect::<Vec<_>>())
                .bind(a.iter().map(|a| a.points_achieved).collect::<Vec<_>>())
                .bind(a.iter().map(|a| a.points_possible).collect::<Vec<_>>())
                .bind(a.iter().map(|a| a.since).collect::<Vec<_>>())
                .bind(a.iter().map(|a| a.updated_at).collect::<Vec<_>>())
                .bind(a.iter().map(|a| a.reason).collect::<Vec<_>>())
                .bind(a.iter().map(|a| a.testing_logic).collect::<Vec<_>>())
                .execute(&mut *conn)
                .await?;
        }
        if !poll.transitions.is_empty() {
            let t = &poll.transitions;
            sqlx::query(INSERT_TRANSITIONS)
                .bind(tenant)
                .bind(t.iter().map(|t| t.action_id).collect::<Vec<_>>())
                .bind(t.iter().map(|t| t.from_status).collect::<Vec<_>>())
                .bind(t.iter().map(|t| t.to_status).collect::<Vec<_>>())
                .bind(t.iter().map(|t| t.from_credit).collect::<Vec<_>>())
                .bind(t.iter().map(|t| t.to_credit).collect::<Vec<_>>())
                .bind(t.iter().map(|t| t.points_achieved).collect::<Vec<_>>())
                .bind(t.iter().map(|t| t.points_possible).collect::<Vec<_>>())
                .bind(t.iter().map(|t| t.reason).collect::<Vec<_>>())
                .bind(t.iter().map(|t| t.signals.as_str()).collect::<Vec<_>>())
                .bind(t.iter().map(|t| t.at).collect::<Vec<_>>())
                .bind(poll_id)
                .bind(t.iter().map(|t| t.testing_logic).collect::<Vec<_>>())
                .execute(&mut *conn)
                .await?;
        }
        if let Some(s) = &plan.snapshot {
            sqlx::query(INSERT_SNAPSHOT)
                .bind(tenant)
                .bind(s.at)
                .bind(s.points_achieved)
                .bind(s.points_possible)
                .bind(s.ratio)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn load_tenant_state(&self, tenant: &str) -> Result<TenantState, StoreError> {
        // One snapshot for the three reads.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?;
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
        let p = &encoded.poll;
        let mut tx = self.pool.begin().await?;
        sqlx::query(LOCK_TENANT)
            .bind(p.tenant)
            .execute(&mut *tx)
            .await?;
        let poll_id: i64 = sqlx::query_scalar(INSERT_POLL)
            .bind(p.tenant)
            .bind(p.connector)
            .bind(p.started_at)
            .bind(p.finished_at)
            .bind(p.outcome)
            .bind(p.error_summary.as_deref())
            .fetch_one(&mut *tx)
            .await?;
        let stored = Self::stored(&mut tx, p.tenant).await?;
        let plan = encoded.plan(&stored);
        Self::write(&mut tx, &encoded, &plan, poll_id).await?;
        Self::write_alerts(&mut tx, p.tenant, p.finished_at, &alerts, poll.evaluation).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn transitions(
        &self,
        tenant: &str,
        action: Option<&str>,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<TransitionRow>, StoreError> {
        let sql = match action {
            Some(_) => SELECT_TRANSITIONS_FOR_ACTION,
            None => SELECT_TRANSITIONS,
        };
        let mut query = sqlx::query_as::<_, TransitionDbRow>(sql)
            .bind(tenant)
            .bind(rows::since_millis(since));
        if let Some(action) = action {
            query = query.bind(action);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows::decode_all(rows, TransitionDbRow::into_row)
    }

    async fn signal_history(
        &self,
        tenant: &str,
        key: Option<&str>,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<SignalChange>, StoreError> {
        let sql = match key {
            Some(_) => SELECT_HISTORY_FOR_KEY,
            None => SELECT_HISTORY,
        };
        let mut query = sqlx::query_as::<_, SignalChangeRow>(sql)
            .bind(tenant)
            .bind(rows::since_millis(since));
        if let Some(key) = key {
            query = query.bind(key);
        }
        let rows = query.fetch_all(&self.pool).await?;
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
            .fetch_all(&self.pool)
            .await?;
        rows::decode_all(rows, SnapshotRow::into_snapshot)
    }

    async fn recent_polls(&self, tenant: &str, limit: u32) -> Result<Vec<PollRow>, StoreError> {
        let rows = sqlx::query_as::<_, PollDbRow>(SELECT_POLLS)
            .bind(tenant)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows::decode_all(rows, PollDbRow::into_poll)
    }
}
