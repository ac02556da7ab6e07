//! PostgreSQL backend: the same model as SQLite, for larger deployments.
//!
//! Connecting, and the few `SqlBackend` items where PostgreSQL differs from SQLite; the store
//! itself is shared ([`SqlStore`], `polls.rs`, `alerts.rs`, `model.rs`). `record_poll`'s
//! transaction first takes a transaction-scoped advisory lock on the tenant (so two connectors
//! of one tenant write one after the other and compare against each other's results), and
//! writes each table of a poll with one statement, binding arrays and expanding them with
//! `UNNEST` (a handful of round trips per poll, whatever the number of signals and actions).
//!
//! Must not: hold a transaction across an await on anything but this database.

use std::str::FromStr;

use sqlx::Postgres;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions, PgQueryResult};

use super::StoreError;
use super::backend::{SqlBackend, SqlStore};
use super::plan::{EncodedPoll, Plan};
use super::polls::{action_conflict, signal_conflict};

/// A [`Store`](super::Store) over one PostgreSQL database (tables in the connection's
/// `search_path`).
pub type PostgresStore = SqlStore<Postgres>;

// PostgreSQL binds arrays, so each table's rows of a poll go in one statement (SQLite writes
// them one statement per row).
const UPSERT_SIGNALS: &str = concat!(
    "INSERT INTO signal_current (tenant, key, value, observed_at, expires_at) \
    SELECT $1, u.key, u.value, u.observed_at, u.expires_at \
    FROM UNNEST($2::text[], $3::text[], $4::bigint[], $5::bigint[]) \
    AS u (key, value, observed_at, expires_at) ",
    signal_conflict!()
);
const INSERT_HISTORY: &str = "INSERT INTO signal_history (tenant, key, value, observed_at) \
    SELECT $1, u.key, u.value, u.observed_at \
    FROM UNNEST($2::text[], $3::text[], $4::bigint[]) AS u (key, value, observed_at)";
const INSERT_GAPS: &str = "INSERT INTO signal_gaps (tenant, connector, prefix, kind, reason) \
    SELECT $1, $2, u.prefix, u.kind, u.reason \
    FROM UNNEST($3::text[], $4::text[], $5::text[]) AS u (prefix, kind, reason)";
const UPSERT_ACTIONS: &str = concat!(
    "INSERT INTO action_state (tenant, action_id, test_status, implementation_status, credit, \
    points, points_achieved, points_possible, since, updated_at, reason, testing_logic) \
    SELECT $1, u.action_id, u.test_status, u.implementation_status, u.credit, u.points, \
    u.points_achieved, u.points_possible, u.since, u.updated_at, u.reason, u.testing_logic \
    FROM UNNEST($2::text[], $3::text[], $4::text[], $5::float8[], $6::bigint[], \
    $7::float8[], $8::float8[], $9::bigint[], $10::bigint[], $11::text[], $12::text[]) \
    AS u (action_id, test_status, implementation_status, credit, points, points_achieved, \
    points_possible, since, updated_at, reason, testing_logic) ",
    action_conflict!()
);
const INSERT_TRANSITIONS: &str = "INSERT INTO action_transitions \
    (tenant, action_id, from_status, to_status, from_credit, to_credit, points_achieved, \
    points_possible, reason, signals, at, poll_id, testing_logic) \
    SELECT $1, u.action_id, u.from_status, u.to_status, u.from_credit, u.to_credit, \
    u.points_achieved, u.points_possible, u.reason, u.signals, u.at, $12, u.testing_logic \
    FROM UNNEST($2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[], \
    $7::float8[], $8::float8[], $9::text[], $10::text[], $11::bigint[], $13::text[]) \
    WITH ORDINALITY AS u (action_id, from_status, to_status, from_credit, to_credit, \
    points_achieved, points_possible, reason, signals, at, testing_logic, n) ORDER BY u.n";

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
        Ok(SqlStore::from_pool(pool))
    }
}

impl SqlBackend for Postgres {
    const BACKEND: &'static str = "postgres";
    // Two polls of one tenant are ordered by LOCK_TENANT; other writes need no more.
    const BEGIN_WRITE: &'static str = "BEGIN";
    // The default isolation (READ COMMITTED) gives each statement its own snapshot.
    const BEGIN_SNAPSHOT: &'static str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
    // Row locks alone would let two polls of one tenant read the same stored state.
    const LOCK_TENANT: Option<&'static str> =
        Some("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))");
    const MIGRATOR: &'static Migrator = &sqlx::migrate!("./migrations/postgres");

    // sqlx exposes the count only as an inherent method of each driver's result type.
    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }

    async fn write_rows(
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
        Ok(())
    }
}

/// The conformance suite on a real server, when `POSTURED_TEST_POSTGRES_URL` names one (the
/// tests pass with a note otherwise). Each check gets a fresh schema (tables found through
/// `search_path`), dropped afterwards. For a throw-away cluster:
///
/// ```sh
/// pg_virtualenv -t sh -c 'POSTURED_TEST_POSTGRES_URL="postgres://${PGUSER}:${PGPASSWORD}@localhost:${PGPORT}/postgres" cargo test -p postured --lib store::postgres'
/// ```
#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use sqlx::Executor;
    use sqlx::postgres::PgPoolOptions;

    use super::*;
    use crate::store::conformance::{alerts::ALERT_CHECKS, model::MODEL_CHECKS, polls::CHECKS};
    use crate::store::{Store, open_store};

    const URL_VAR: &str = "POSTURED_TEST_POSTGRES_URL";

    fn url() -> Option<String> {
        match std::env::var(URL_VAR) {
            Ok(url) if !url.trim().is_empty() => Some(url),
            _ => {
                eprintln!("note: {URL_VAR} is not set; skipping the PostgreSQL store tests");
                None
            }
        }
    }

    /// A schema name unique to this process, moment and check (well under PostgreSQL's 63-byte
    /// identifier limit).
    fn schema_name(index: usize) -> String {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let pid = std::process::id();
        format!("postured_test_{pid}_{}_{index}", nanos % 1_000_000_000)
    }

    #[tokio::test]
    async fn conformance_suite_on_postgres() {
        let Some(url) = url() else { return };
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .expect("connect to POSTURED_TEST_POSTGRES_URL");
        let mut failures = Vec::new();
        for (index, check) in CHECKS
            .iter()
            .chain(MODEL_CHECKS)
            .chain(ALERT_CHECKS)
            .enumerate()
        {
            let schema = schema_name(index);
            admin
                .execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
                .await
                .expect("create schema");
            let options = PgConnectOptions::from_str(&url)
                .expect("parse URL")
                .options([("search_path", schema.as_str())]);
            let store = PostgresStore::connect_with(options, 4)
                .await
                .expect("connect");
            store.migrate().await.expect("migrate");
            let tables: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
            )
            .bind(&schema)
            .fetch_one(&admin)
            .await
            .expect("count tables");
            assert!(tables >= 8, "migrations must land in the check's schema");
            if let Err(e) = (check.run)(&store).await {
                failures.push(format!("{}: {e}", check.name));
            }
            drop(store);
            admin
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA \"{schema}\" CASCADE"
                )))
                .await
                .expect("drop schema");
        }
        assert!(
            failures.is_empty(),
            "failed checks on PostgreSQL:\n{}",
            failures.join("\n")
        );
    }

    #[tokio::test]
    async fn open_store_selects_postgres() {
        let Some(url) = url() else { return };
        let store = open_store(&url, 2).await.expect("open_store");
        assert_eq!(store.backend(), "postgres");
        store.ping().await.expect("ping");
    }
}
