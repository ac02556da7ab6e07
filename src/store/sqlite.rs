//! SQLite backend: the default, one database file in WAL mode.
//!
//! Opening the file, and the few `SqlBackend` items where SQLite differs from PostgreSQL; the
//! store itself is shared ([`SqlStore`], `polls.rs`, `alerts.rs`, `model.rs`). Connection
//! settings: WAL journal, `synchronous=NORMAL`, a 5 s busy timeout, foreign keys on. Write
//! transactions start with `BEGIN IMMEDIATE`, so concurrent writers queue on the busy timeout
//! instead of failing when a read transaction upgrades to a write (and two polls of one tenant
//! write one after the other). The file is created once, at open; the pool's connections never
//! create it, and its (device, inode) is kept to tell when the path no longer names it.
//!
//! Must not: hold a transaction across an await on anything but this database.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteQueryResult, SqliteSynchronous,
};
use sqlx::{Connection, Sqlite};

use super::StoreError;
use super::backend::{FileIdentity, SqlBackend, SqlStore, pool_options};

/// A [`Store`](super::Store) over one SQLite database.
pub type SqliteStore = SqlStore<Sqlite>;

/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl SqliteStore {
    /// Open (creating when missing) the database at `url_or_path`: a `sqlite:` URL
    /// (`sqlite:data/postured.db`, `sqlite::memory:`) or a bare file path. Does not migrate.
    ///
    /// The file is created by a first connection; the pool's connections then open it without
    /// creating it, and the file's identity is recorded, so that a file removed or replaced
    /// later is reported ([`StoreError::FileReplaced`]) instead of silently taking writes that
    /// would be lost (see [`Store::check_health`](super::Store::check_health)).
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
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let mut pool = pool_options::<Sqlite>().max_connections(max_connections.max(1));
        if in_memory {
            pool = pool
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
            let pool = pool.connect_with(options.create_if_missing(true)).await?;
            return Ok(SqlStore::from_pool(pool, None));
        }
        SqliteConnection::connect_with(&options.clone().create_if_missing(true))
            .await?
            .close()
            .await?;
        let file = FileIdentity::of(options.get_filename()).map_err(sqlx::Error::Io)?;
        let pool = pool.connect_with(options.create_if_missing(false)).await?;
        Ok(SqlStore::from_pool(pool, Some(file)))
    }
}

impl SqlBackend for Sqlite {
    const BACKEND: &'static str = "sqlite";
    // A deferred transaction would fail, not wait, when it upgrades to a write under another
    // writer; IMMEDIATE takes the write lock first.
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    // A transaction in WAL mode already reads one snapshot.
    const BEGIN_SNAPSHOT: &'static str = "BEGIN";
    // `BEGIN IMMEDIATE` already makes every writer, hence every poll, wait for the others.
    const LOCK_TENANT: Option<&'static str> = None;
    const MIGRATOR: &'static Migrator = &sqlx::migrate!("./migrations/sqlite");
    // No statement timeout to lift (and an in-memory database lives in its one connection).
    const MIGRATION_SESSION: Option<&'static str> = None;

    // sqlx exposes the count only as an inherent method of each driver's result type.
    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;
    use crate::evaluation::TestStatus;
    use crate::store::conformance::{
        self, alerts::ALERT_CHECKS, audit::AUDIT_CHECKS, batch::BATCH_CHECKS,
        compact::COMPACT_CHECKS, evidence::EVIDENCE_CHECKS, model::MODEL_CHECKS, one_action_poll,
        polls, record_one, tokens::TOKEN_CHECKS,
    };
    use crate::store::{PollOutcome, PollRecord, Store};

    async fn fresh(dir: &tempfile::TempDir, name: &str) -> SqliteStore {
        let path = dir.path().join(format!("{name}.db"));
        let store = SqliteStore::open(&path.to_string_lossy(), 4).await.unwrap();
        store.migrate().await.unwrap();
        store
    }

    #[tokio::test]
    async fn conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let checks = polls::CHECKS
            .iter()
            .chain(COMPACT_CHECKS)
            .chain(BATCH_CHECKS)
            .chain(MODEL_CHECKS)
            .chain(AUDIT_CHECKS)
            .chain(EVIDENCE_CHECKS)
            .chain(TOKEN_CHECKS);
        let failures = conformance::failures(checks, |name| fresh(&dir, name)).await;
        assert!(
            failures.is_empty(),
            "failed checks:\n{}",
            failures.join("\n")
        );
    }

    #[tokio::test]
    async fn alert_conformance_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let failures = conformance::failures(ALERT_CHECKS, |name| fresh(&dir, name)).await;
        assert!(
            failures.is_empty(),
            "failed checks:\n{}",
            failures.join("\n")
        );
    }

    /// Migration 0008 on a database with polls written before it.
    #[tokio::test]
    async fn migration_0008_counts_the_polls_stored_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let store = SqliteStore::open(&path.to_string_lossy(), 2).await.unwrap();
        let before = Migrator::with_migrations(
            <Sqlite as SqlBackend>::MIGRATOR
                .iter()
                .filter(|m| m.version < 8)
                .cloned()
                .collect(),
        );
        before.run(store.pool()).await.unwrap();
        sqlx::query(conformance::compact::POLLS_BEFORE_0008)
            .execute(store.pool())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        conformance::compact::polls_stored_before_0008_are_counted(&store)
            .await
            .unwrap();
    }

    /// The plan SQLite chooses for `sql` (`EXPLAIN QUERY PLAN`, its detail lines) with
    /// `params` bound as text or integers.
    async fn query_plan(store: &SqliteStore, sql: &str, params: &[&dyn PlanParam]) -> String {
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let mut query = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(explain));
        for p in params {
            query = p.bind_to(query);
        }
        let rows = query.fetch_all(store.pool()).await.unwrap();
        rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("\n")
    }

    type PlanQuery<'q> = sqlx::query::QueryAs<
        'q,
        Sqlite,
        (i64, i64, i64, String),
        <Sqlite as sqlx::Database>::Arguments,
    >;

    /// A parameter of [`query_plan`].
    trait PlanParam: Sync {
        fn bind_to<'q>(&self, query: PlanQuery<'q>) -> PlanQuery<'q>;
    }
    impl PlanParam for &str {
        fn bind_to<'q>(&self, query: PlanQuery<'q>) -> PlanQuery<'q> {
            query.bind(self.to_string())
        }
    }
    impl PlanParam for i64 {
        fn bind_to<'q>(&self, query: PlanQuery<'q>) -> PlanQuery<'q> {
            query.bind(*self)
        }
    }

    /// Migration 0009: the steady poll's one read counts the connector's marked signal rows
    /// from `signal_current_poll` (not every signal row of the tenant), and the dashboard's
    /// audit rows of one action instance, newest first, are an index range of
    /// `audit_log_tenant_object` or `audit_log_group_object` (not a walk of the whole log).
    #[tokio::test]
    async fn the_steady_read_and_the_audit_history_of_an_action_use_their_indexes() {
        use crate::store::audit::{AuditFilter, AuditOrder, audit_query};

        let dir = tempfile::tempdir().unwrap();
        let store = fresh(&dir, "plans").await;
        let plan = query_plan(
            &store,
            crate::store::polls::SELECT_POLL_STATE,
            &[&"t", &"msgraph"],
        )
        .await;
        assert!(
            plan.contains("USING COVERING INDEX signal_current_poll (tenant=? AND poll_id=?)"),
            "{plan}"
        );
        // A log of some size (the plan of an empty table does not tell): 20,000 rows of 2
        // tenants and 2 groups, 200 objects each.
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) \
            INSERT INTO audit_log (at, actor, action, tenant, group_id, object) \
            SELECT i, 'token:1', 'action.update', \
            CASE WHEN i % 4 = 0 THEN 't' WHEN i % 4 = 1 THEN 'u' END, \
            CASE WHEN i % 4 = 2 THEN 'g' WHEN i % 4 = 3 THEN 'h' END, \
            'a.' || (i % 200) FROM n",
        )
        .execute(store.pool())
        .await
        .unwrap();
        for (tenant, group, index) in [
            (Some("t"), None, "audit_log_tenant_object"),
            (None, Some("g"), "audit_log_group_object"),
        ] {
            let filter = AuditFilter {
                tenant: tenant.map(str::to_owned),
                group: group.map(str::to_owned),
                object: Some("a.passed".into()),
                order: AuditOrder::NewestFirst,
                ..AuditFilter::default()
            };
            let sql = audit_query::<Sqlite>(&filter, 50).into_string();
            let scope = tenant.or(group).unwrap();
            let params: [&dyn PlanParam; 3] = [&scope, &"a.passed", &50];
            let plan = query_plan(&store, &sql, &params).await;
            assert!(plan.contains(&format!("USING INDEX {index} (")), "{plan}");
            assert!(!plan.contains("TEMP B-TREE"), "sorted by the index: {plan}");
        }
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
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(fk, 1);
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(sync, 1, "NORMAL");
    }

    #[tokio::test]
    async fn in_memory_store_passes_a_check() {
        let store = SqliteStore::open("sqlite::memory:", 8).await.unwrap();
        store.migrate().await.unwrap();
        polls::round_trips_signals_gaps_and_actions(&store)
            .await
            .unwrap();
        polls::concurrent_polls_of_one_tenant_both_land(&store)
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

    /// Issue 8 row 8: an error inside a poll transaction after which SQLite has rolled the
    /// transaction back itself (what an I/O error or a full disk may do; injected here by a
    /// trigger's `RAISE(ROLLBACK)`, on a real database file) left pooled connections at a
    /// "non-zero transaction depth", and most later writes failed long after the fault cleared.
    /// Such connections are now discarded: once the fault is gone, every write lands.
    #[tokio::test]
    async fn connections_are_discarded_after_a_fault_inside_a_write_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let store = fresh(&dir, "fault").await;
        sqlx::query(
            "CREATE TRIGGER injected_fault BEFORE INSERT ON polls \
            BEGIN SELECT RAISE(ROLLBACK, 'injected I/O fault'); END",
        )
        .execute(store.pool())
        .await
        .unwrap();
        // Four writers at once, so that every pooled connection meets the fault.
        let mut writers = tokio::task::JoinSet::new();
        for i in 0..4 {
            let store = store.clone();
            writers.spawn(async move {
                record_one(&store, &one_action_poll(&format!("fault-{i}"), i)).await
            });
        }
        let results = writers.join_all().await;
        assert!(results.iter().all(Result::is_err), "{results:?}");

        sqlx::query("DROP TRIGGER injected_fault")
            .execute(store.pool())
            .await
            .unwrap();
        let mut failed = Vec::new();
        for minute in 10..22 {
            if let Err(e) = record_one(&store, &one_action_poll("after-fault", minute)).await {
                failed.push(e.to_string());
            }
        }
        assert!(
            failed.is_empty(),
            "writes failing after the fault cleared: {failed:?}"
        );
        let polls: i64 = sqlx::query_scalar("SELECT count(*) FROM polls")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(
            polls, 1,
            "the first poll's full row; the same poll again is only counted"
        );
        let counted: i64 = sqlx::query_scalar("SELECT sum(polls) FROM poll_days")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(counted, 12, "only the writes after the fault landed");
    }

    /// Issue 8 row 9: the directory holding the database file was deleted while the daemon ran;
    /// the open connections kept taking writes into the unlinked file (no error), all of them
    /// lost at the next start. Now the health check reports it and every write (a poll, a
    /// manual status, an outbox update) is refused with `file_replaced`, so the poll counts it
    /// and keeps its transitions in memory; a file put back at the path is not the one opened
    /// either.
    #[tokio::test]
    async fn writes_are_refused_once_the_database_file_is_removed_or_replaced() {
        use crate::model::report::TestingSource;
        use crate::model::{InstanceScope, ManualStatus};
        use crate::store::{AlertStore, ModelStore};

        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let path = data.join("postured.db");
        let store = SqliteStore::open(&format!("sqlite://{}", path.display()), 4)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        store.check_health().await.unwrap();
        record_one(&store, &one_action_poll("t", 0)).await.unwrap();

        std::fs::remove_dir_all(&data).unwrap();
        assert_eq!(
            store.check_health().await.unwrap_err().kind(),
            "file_replaced"
        );
        let err = record_one(&store, &one_action_poll("t", 1))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "file_replaced", "{err}");
        assert!(err.to_string().contains("postured.db"), "{err}");
        let manual = ManualStatus::new(
            InstanceScope::Tenant("t".into()),
            "a.passed",
            TestingSource::Manual,
            DateTime::from_timestamp_millis(1_800_000_000_000).unwrap(),
        );
        let err = store.save_manual_status(&manual, &[]).await.unwrap_err();
        assert_eq!(err.kind(), "file_replaced");
        assert_eq!(
            store
                .mark_delivered(1, manual.updated_at)
                .await
                .unwrap_err()
                .kind(),
            "file_replaced"
        );

        // Another file at the same path (a restore, a new empty database) is not the one the
        // connections have open.
        std::fs::create_dir(&data).unwrap();
        let other = SqliteStore::open(&path.to_string_lossy(), 1).await.unwrap();
        other.migrate().await.unwrap();
        other.check_health().await.unwrap();
        assert_eq!(
            store.check_health().await.unwrap_err().kind(),
            "file_replaced"
        );
        assert_eq!(
            record_one(&store, &one_action_poll("t", 2))
                .await
                .unwrap_err()
                .kind(),
            "file_replaced"
        );
    }

    /// Issue 8 row 10: the health check is a write probe, not `SELECT 1`: a database that
    /// still answers reads but cannot commit a write (injected here by a trigger failing the
    /// probe's upsert, as an I/O error or a full disk would) is unhealthy, and healthy again
    /// once the fault clears.
    #[tokio::test]
    async fn health_check_fails_while_writes_fail() {
        let dir = tempfile::tempdir().unwrap();
        let store = fresh(&dir, "probe").await;
        store.check_health().await.unwrap();
        let probed: i64 = sqlx::query_scalar("SELECT count(*) FROM store_health")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(probed, 1, "the probe writes its one row");
        for event in ["INSERT", "UPDATE"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE TRIGGER injected_fault_{event} BEFORE {event} ON store_health \
                BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
            )))
            .execute(store.pool())
            .await
            .unwrap();
        }
        store.ping().await.unwrap();
        let err = store.check_health().await.unwrap_err();
        assert_eq!(err.kind(), "database", "{err}");
        for event in ["INSERT", "UPDATE"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP TRIGGER injected_fault_{event}"
            )))
            .execute(store.pool())
            .await
            .unwrap();
        }
        store.check_health().await.unwrap();
    }

    #[tokio::test]
    async fn corrupt_rows_are_reported_with_their_table() {
        let dir = tempfile::tempdir().unwrap();
        let store = fresh(&dir, "corrupt").await;
        polls::round_trips_signals_gaps_and_actions(&store)
            .await
            .unwrap();
        let tenant = "conformance-roundtrip";

        sqlx::query("UPDATE signal_current SET value = 'not json' WHERE key = 'msgraph.a.enabled'")
            .execute(store.pool())
            .await
            .unwrap();
        match store.load_tenant_state(tenant).await {
            Err(StoreError::Corrupt { table, .. }) => assert_eq!(table, "signal_current"),
            other => panic!("expected corrupt signal_current, got {other:?}"),
        }
        sqlx::query("UPDATE signal_current SET value = 'true'")
            .execute(store.pool())
            .await
            .unwrap();

        sqlx::query(
            "UPDATE action_state SET test_status = 'splendid' WHERE action_id = 'a.passed'",
        )
        .execute(store.pool())
        .await
        .unwrap();
        match store.load_tenant_state(tenant).await {
            Err(StoreError::Corrupt { table, .. }) => assert_eq!(table, "action_state"),
            other => panic!("expected corrupt action_state, got {other:?}"),
        }
        sqlx::query("UPDATE action_transitions SET signals = '{' WHERE action_id = 'a.passed'")
            .execute(store.pool())
            .await
            .unwrap();
        match store.transitions(tenant, None, None).await {
            Err(StoreError::Corrupt { table, .. }) => assert_eq!(table, "action_transitions"),
            other => panic!("expected corrupt action_transitions, got {other:?}"),
        }
        sqlx::query("UPDATE polls SET error_summary = '[1]'")
            .execute(store.pool())
            .await
            .unwrap();
        assert_eq!(
            store.recent_polls(tenant, 5).await.unwrap_err().kind(),
            "corrupt"
        );
    }

    #[tokio::test]
    async fn a_corrupt_stored_action_is_overwritten_by_the_next_poll() {
        let dir = tempfile::tempdir().unwrap();
        let store = fresh(&dir, "heal").await;
        polls::round_trips_signals_gaps_and_actions(&store)
            .await
            .unwrap();
        let tenant = "conformance-roundtrip";
        sqlx::query(
            "UPDATE action_state SET test_status = 'splendid' WHERE action_id = 'a.passed'",
        )
        .execute(store.pool())
        .await
        .unwrap();
        assert_eq!(
            store.load_tenant_state(tenant).await.unwrap_err().kind(),
            "corrupt"
        );

        // Recording compares raw rows and never decodes them: the poll lands and heals the row.
        let evaluation = one_action_poll(tenant, 0);
        let now = evaluation.evaluated_at;
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
            assessments: &[],
            alerts: Default::default(),
            evidence: &[],
            after_start: false,
        };
        store.record_poll(&record).await.unwrap();
        let state = store.load_tenant_state(tenant).await.unwrap();
        assert_eq!(state.actions.len(), 5);
        assert_eq!(state.actions["a.passed"].test_status, TestStatus::Passed);
        assert_eq!(state.actions["a.passed"].since, now);
    }
}
