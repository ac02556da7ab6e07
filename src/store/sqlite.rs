//! SQLite store: the default backend, one database file in WAL mode.
//!
//! All SQLite SQL lives here; row decoding is shared (`rows.rs`) and so is the decision of what a
//! poll changes (`plan.rs`). Connection settings: WAL journal, `synchronous=NORMAL`, a 5 s busy
//! timeout, foreign keys on. `record_poll` starts with `BEGIN IMMEDIATE`, so concurrent writers
//! queue on the busy timeout instead of failing when a read transaction upgrades to a write.
//!
//! Must not: hold a transaction across an await on anything but this database.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

use super::alerts::EncodedAlerts;
use super::plan::{EncodedPoll, Plan, Stored};
use super::rows::{
    self, ActionStateRow, GapRow, PollDbRow, SignalChangeRow, SignalRow, SignalValueRow,
    SnapshotRow, TransitionDbRow,
};
use super::{
    PollRecord, PollRow, ScoreSnapshot, SignalChange, Store, StoreError, TenantState, TransitionRow,
};

/// Migrations of `migrations/sqlite`, embedded at build time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const INSERT_POLL: &str = "INSERT INTO polls \
    (tenant, connector, started_at, finished_at, outcome, error_summary) \
    VALUES (?, ?, ?, ?, ?, ?) RETURNING id";
const SELECT_SIGNAL_VALUES: &str = "SELECT key, value FROM signal_current WHERE tenant = ?";
const SELECT_SIGNALS: &str = "SELECT key, value, observed_at, expires_at \
    FROM signal_current WHERE tenant = ? ORDER BY key";
const UPSERT_SIGNAL: &str = "INSERT INTO signal_current \
    (tenant, key, value, observed_at, expires_at) VALUES (?, ?, ?, ?, ?) \
    ON CONFLICT (tenant, key) DO UPDATE SET value = excluded.value, \
    observed_at = excluded.observed_at, expires_at = excluded.expires_at";
const INSERT_HISTORY: &str =
    "INSERT INTO signal_history (tenant, key, value, observed_at) VALUES (?, ?, ?, ?)";
const SELECT_HISTORY: &str = "SELECT key, value, observed_at FROM signal_history \
    WHERE tenant = ? AND observed_at >= ? ORDER BY observed_at, id";
const SELECT_HISTORY_FOR_KEY: &str = "SELECT key, value, observed_at FROM signal_history \
    WHERE tenant = ? AND key = ? AND observed_at >= ? ORDER BY observed_at, id";
const DELETE_GAPS: &str = "DELETE FROM signal_gaps WHERE tenant = ? AND connector = ?";
const INSERT_GAP: &str =
    "INSERT INTO signal_gaps (tenant, connector, prefix, kind, reason) VALUES (?, ?, ?, ?, ?)";
const SELECT_GAPS: &str =
    "SELECT prefix, kind, reason FROM signal_gaps WHERE tenant = ? ORDER BY connector, prefix";
const SELECT_ACTIONS: &str = "SELECT action_id, test_status, implementation_status, credit, \
    points, points_achieved, points_possible, since, reason, testing_logic \
    FROM action_state WHERE tenant = ?";
const UPSERT_ACTION: &str = "INSERT INTO action_state \
    (tenant, action_id, test_status, implementation_status, credit, points, points_achieved, \
    points_possible, since, updated_at, reason, testing_logic) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
    ON CONFLICT (tenant, action_id) DO UPDATE SET test_status = excluded.test_status, \
    implementation_status = excluded.implementation_status, credit = excluded.credit, \
    points = excluded.points, points_achieved = excluded.points_achieved, \
    points_possible = excluded.points_possible, since = excluded.since, \
    updated_at = excluded.updated_at, reason = excluded.reason, \
    testing_logic = excluded.testing_logic";
const INSERT_TRANSITION: &str = "INSERT INTO action_transitions \
    (tenant, action_id, from_status, to_status, from_credit, to_credit, points_achieved, \
    points_possible, reason, signals, at, poll_id, testing_logic) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const SELECT_TRANSITIONS: &str = "SELECT tenant, action_id, from_status, to_status, \
    from_credit, to_credit, points_achieved, points_possible, reason, signals, at, \
    testing_logic FROM action_transitions WHERE tenant = ? AND at >= ? ORDER BY at, id";
const SELECT_TRANSITIONS_FOR_ACTION: &str = "SELECT tenant, action_id, from_status, to_status, \
    from_credit, to_credit, points_achieved, points_possible, reason, signals, at, \
    testing_logic FROM action_transitions WHERE tenant = ? AND action_id = ? AND at >= ? ORDER BY at, id";
const SELECT_LATEST_SCORE: &str = "SELECT points_achieved, points_possible \
    FROM score_snapshots WHERE tenant = ? ORDER BY at DESC, id DESC LIMIT 1";
const INSERT_SNAPSHOT: &str = "INSERT INTO score_snapshots \
    (tenant, at, points_achieved, points_possible, ratio) VALUES (?, ?, ?, ?, ?)";
const SELECT_SNAPSHOTS: &str = "SELECT at, points_achieved, points_possible, ratio \
    FROM score_snapshots WHERE tenant = ? AND at >= ? ORDER BY at, id";
const SELECT_POLLS: &str = "SELECT id, tenant, connector, started_at, finished_at, outcome, \
    error_summary FROM polls WHERE tenant = ? ORDER BY started_at DESC, id DESC LIMIT ?";

/// A [`Store`] over one SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Open (creating when missing) the database at `url_or_path`: a `sqlite:` URL
    /// (`sqlite:data/postured.db`, `sqlite::memory:`) or a bare file path. Does not migrate.
    ///
    /// An in-memory database is limited to one connection, kept open for the store's lifetime
    /// (each pooled connection would otherwise risk losing it).
    pub async fn open(url_or_path: &str, max_connections: u32) -> Result<Self, StoreError> {
        let trimmed = url_or_path.trim();
        let in_memory = trimmed.contains(":memory:") || trimmed.contains("mode=memory");
        let options = if trimmed.to_ascii_lowercase().starts_with("sqlite:") {
            SqliteConnectOptions::from_str(trimmed)?
        } else {
            SqliteConnectOptions::new().filename(trimmed)
        };
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let mut pool = SqlitePoolOptions::new().max_connections(max_connections.max(1));
        if in_memory {
            pool = pool
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        }
        Ok(SqliteStore {
            pool: pool.connect_with(options).await?,
        })
    }

    /// The connection pool (for the alert queries in `sqlite_alerts.rs`).
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Read the tenant's stored state that `record_poll` compares against.
    async fn stored(conn: &mut SqliteConnection, tenant: &str) -> Result<Stored, StoreError> {
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

    /// Execute the writes of one poll (after the poll row).
    async fn write(
        conn: &mut SqliteConnection,
        poll: &EncodedPoll<'_>,
        plan: &Plan<'_, '_>,
        poll_id: i64,
    ) -> Result<(), StoreError> {
        let tenant = poll.poll.tenant;
        for s in &poll.signals {
            sqlx::query(UPSERT_SIGNAL)
                .bind(tenant)
                .bind(s.key)
                .bind(&s.value)
                .bind(s.observed_at)
                .bind(s.expires_at)
                .execute(&mut *conn)
                .await?;
        }
        for s in &plan.history {
            sqlx::query(INSERT_HISTORY)
                .bind(tenant)
                .bind(s.key)
                .bind(&s.value)
                .bind(s.observed_at)
                .execute(&mut *conn)
                .await?;
        }
        sqlx::query(DELETE_GAPS)
            .bind(tenant)
            .bind(poll.poll.connector)
            .execute(&mut *conn)
            .await?;
        for g in &poll.gaps {
            sqlx::query(INSERT_GAP)
                .bind(tenant)
                .bind(poll.poll.connector)
                .bind(g.prefix)
                .bind(g.kind)
                .bind(g.reason)
                .execute(&mut *conn)
                .await?;
        }
        for a in &plan.actions {
            sqlx::query(UPSERT_ACTION)
                .bind(tenant)
                .bind(a.action_id)
                .bind(a.test_status)
                .bind(a.implementation_status)
                .bind(a.credit)
                .bind(a.points)
                .bind(a.points_achieved)
                .bind(a.points_possible)
                .bind(a.since)
                .bind(a.updated_at)
                .bind(a.reason)
                .bind(a.testing_logic)
                .execute(&mut *conn)
                .await?;
        }
        for t in &poll.transitions {
            sqlx::query(INSERT_TRANSITION)
                .bind(tenant)
                .bind(t.action_id)
                .bind(t.from_status)
                .bind(t.to_status)
                .bind(t.from_credit)
                .bind(t.to_credit)
                .bind(t.points_achieved)
                .bind(t.points_possible)
                .bind(t.reason)
                .bind(&t.signals)
                .bind(t.at)
                .bind(poll_id)
                .bind(t.testing_logic)
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
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
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
        // One read transaction: a consistent snapshot of the three tables.
        let mut tx = self.pool.begin().await?;
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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let p = &encoded.poll;
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
        let since = rows::since_millis(since);
        let query = match action {
            Some(action) => sqlx::query_as::<_, TransitionDbRow>(SELECT_TRANSITIONS_FOR_ACTION)
                .bind(tenant)
                .bind(action),
            None => sqlx::query_as::<_, TransitionDbRow>(SELECT_TRANSITIONS).bind(tenant),
        };
        let rows = query.bind(since).fetch_all(&self.pool).await?;
        rows::decode_all(rows, TransitionDbRow::into_row)
    }

    async fn signal_history(
        &self,
        tenant: &str,
        key: Option<&str>,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<SignalChange>, StoreError> {
        let since = rows::since_millis(since);
        let query = match key {
            Some(key) => sqlx::query_as::<_, SignalChangeRow>(SELECT_HISTORY_FOR_KEY)
                .bind(tenant)
                .bind(key),
            None => sqlx::query_as::<_, SignalChangeRow>(SELECT_HISTORY).bind(tenant),
        };
        let rows = query.bind(since).fetch_all(&self.pool).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::{self, CHECKS};

    async fn fresh(dir: &tempfile::TempDir, name: &str) -> SqliteStore {
        let path = dir.path().join(format!("{name}.db"));
        let store = SqliteStore::open(&path.to_string_lossy(), 4).await.unwrap();
        store.migrate().await.unwrap();
        store
    }

    #[tokio::test]
    async fn conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let mut failures = Vec::new();
        for check in CHECKS
            .iter()
            .chain(crate::store::conformance_model::MODEL_CHECKS)
        {
            let store = fresh(&dir, check.name).await;
            if let Err(e) = (check.run)(&store).await {
                failures.push(format!("{}: {e}", check.name));
            }
        }
        assert!(
            failures.is_empty(),
            "failed checks:\n{}",
            failures.join("\n")
        );
    }

    #[tokio::test]
    async fn open_creates_the_file_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        let url = format!("sqlite:{}", path.display());
        let store = SqliteStore::open(&url, 2).await.unwrap();
        store.migrate().await.unwrap();
        assert!(path.exists());
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(fk, 1);
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(sync, 1, "NORMAL");
    }

    #[tokio::test]
    async fn in_memory_store_passes_a_check() {
        let store = SqliteStore::open("sqlite::memory:", 8).await.unwrap();
        store.migrate().await.unwrap();
        conformance::round_trips_signals_gaps_and_actions(&store)
            .await
            .unwrap();
        conformance::concurrent_polls_of_one_tenant_both_land(&store)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn open_store_picks_sqlite_for_paths_and_urls() {
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("bare.db");
        let store = crate::store::open_store(&bare.to_string_lossy(), 2)
            .await
            .unwrap();
        assert_eq!(store.backend(), "sqlite");
        store.migrate().await.unwrap();
        let url = format!("sqlite://{}", dir.path().join("url.db").display());
        let store = crate::store::open_store(&url, 2).await.unwrap();
        assert_eq!(store.backend(), "sqlite");
        store.migrate().await.unwrap();
        store.ping().await.unwrap();
    }

    #[tokio::test]
    async fn corrupt_rows_are_reported_with_their_table() {
        let dir = tempfile::tempdir().unwrap();
        let store = fresh(&dir, "corrupt").await;
        conformance::round_trips_signals_gaps_and_actions(&store)
            .await
            .unwrap();
        let tenant = "conformance-roundtrip";

        sqlx::query("UPDATE signal_current SET value = 'not json' WHERE key = 'msgraph.a.enabled'")
            .execute(&store.pool)
            .await
            .unwrap();
        match store.load_tenant_state(tenant).await {
            Err(StoreError::Corrupt { table, .. }) => assert_eq!(table, "signal_current"),
            other => panic!("expected corrupt signal_current, got {other:?}"),
        }
        sqlx::query("UPDATE signal_current SET value = 'true'")
            .execute(&store.pool)
            .await
            .unwrap();

        sqlx::query(
            "UPDATE action_state SET test_status = 'splendid' WHERE action_id = 'a.passed'",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        match store.load_tenant_state(tenant).await {
            Err(StoreError::Corrupt { table, .. }) => assert_eq!(table, "action_state"),
            other => panic!("expected corrupt action_state, got {other:?}"),
        }
        sqlx::query("UPDATE action_transitions SET signals = '{' WHERE action_id = 'a.passed'")
            .execute(&store.pool)
            .await
            .unwrap();
        match store.transitions(tenant, None, None).await {
            Err(StoreError::Corrupt { table, .. }) => assert_eq!(table, "action_transitions"),
            other => panic!("expected corrupt action_transitions, got {other:?}"),
        }
        sqlx::query("UPDATE polls SET error_summary = '[1]'")
            .execute(&store.pool)
            .await
            .unwrap();
        assert_eq!(
            store.recent_polls(tenant, 5).await.unwrap_err().kind(),
            "corrupt"
        );
    }

    #[tokio::test]
    async fn a_corrupt_stored_action_is_overwritten_by_the_next_poll() {
        use crate::evaluation::TestStatus;
        use crate::evaluation::{
            ActionResult, ImplementationStatus, ScoreSummary, TenantEvaluation,
        };
        use crate::store::{PollOutcome, PollRecord};

        let dir = tempfile::tempdir().unwrap();
        let store = fresh(&dir, "heal").await;
        conformance::round_trips_signals_gaps_and_actions(&store)
            .await
            .unwrap();
        let tenant = "conformance-roundtrip";
        sqlx::query(
            "UPDATE action_state SET test_status = 'splendid' WHERE action_id = 'a.passed'",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        assert_eq!(
            store.load_tenant_state(tenant).await.unwrap_err().kind(),
            "corrupt"
        );

        // Recording compares raw rows and never decodes them: the poll lands and heals the row.
        let now = DateTime::from_timestamp_millis(1_800_000_000_000).unwrap();
        let evaluation = TenantEvaluation {
            tenant: tenant.into(),
            evaluated_at: now,
            actions: vec![ActionResult {
                action_id: "a.passed".into(),
                title: String::new(),
                category: String::new(),
                solution: String::new(),
                implementation_status: ImplementationStatus::Implemented,
                test_status: TestStatus::Passed,
                credit: 1.0,
                points: 27,
                points_achieved: 27.0,
                points_possible: 27.0,
                testing_logic: String::new(),
                reason: None,
                cause: None,
                signals: Vec::new(),
            }],
            score: ScoreSummary::default(),
            categories: Vec::new(),
        };
        let record = PollRecord {
            tenant,
            connector: "msgraph",
            started_at: now,
            finished_at: now,
            outcome: PollOutcome::Success,
            signals: &[],
            gaps: &[],
            evaluation: &evaluation,
            transitions: &[],
            alerts: Default::default(),
        };
        store.record_poll(&record).await.unwrap();
        let state = store.load_tenant_state(tenant).await.unwrap();
        assert_eq!(state.actions.len(), 5);
        assert_eq!(state.actions["a.passed"].test_status, TestStatus::Passed);
        assert_eq!(state.actions["a.passed"].since, now);
    }
}
