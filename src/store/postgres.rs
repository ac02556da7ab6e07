//! PostgreSQL backend: the same model as SQLite, for larger deployments.
//!
//! Connecting, and the few `SqlBackend` items where PostgreSQL differs from SQLite; the store
//! itself is shared ([`SqlStore`], `polls.rs`, `alerts.rs`, `model.rs`). `record_poll`'s
//! transaction first takes a transaction-scoped advisory lock on the tenant (so two connectors
//! of one tenant write one after the other and compare against each other's results). The
//! rows of a poll go in the shared multi-row statements (`batch.rs`).
//! Every session has a `statement_timeout` (`[store] statement_timeout`, 30 s by default); TLS
//! follows the URL's `sslmode` (rustls with ring, the system's CA roots or `sslrootcert`).
//!
//! Must not: hold a transaction across an await on anything but this database.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Postgres;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgQueryResult};

use super::StoreError;
use super::backend::{SqlBackend, SqlStore, pool_options};
use crate::config::StoreConfig;

/// A [`Store`](super::Store) over one PostgreSQL database (tables in the connection's
/// `search_path`).
pub type PostgresStore = SqlStore<Postgres>;

/// The connect options a `postgres://` URL names (`sslmode`, `sslrootcert`, `options` ... as
/// libpq reads them).
pub fn options(url: &str) -> Result<PgConnectOptions, StoreError> {
    Ok(PgConnectOptions::from_str(url)?)
}

impl PostgresStore {
    /// Connect to `url` (`postgres://user:pass@host:port/db`, or
    /// `postgres:///db?host=/run/postgresql` for a socket directory), with the default
    /// `[store] statement_timeout`. Does not migrate.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        Self::connect_with(
            options(url)?,
            max_connections,
            StoreConfig::default().statement_timeout,
        )
        .await
    }

    /// Connect with prepared options, e.g. with a `search_path` to keep the tables in a
    /// dedicated schema (as the PostgreSQL conformance tests do). Every session gets
    /// `statement_timeout` (zero: none), so that a stalled statement fails as a classified
    /// database error instead of holding a pooled connection, and the poll waiting on it,
    /// forever; it bounds waits for locks too. It is set after the URL's own `options`, so it
    /// wins over a `-c statement_timeout=` there. Does not migrate.
    pub async fn connect_with(
        options: PgConnectOptions,
        max_connections: u32,
        statement_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let options = options.options([(
            "statement_timeout",
            format!("{}ms", statement_timeout.as_millis()),
        )]);
        let pool = pool_options::<Postgres>()
            .max_connections(max_connections.max(1))
            .connect_with(options)
            .await?;
        Ok(SqlStore::from_pool(pool, None))
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
    const MIGRATION_SESSION: Option<&'static str> = Some("SET statement_timeout = 0");

    // sqlx exposes the count only as an inherent method of each driver's result type.
    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
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
    use crate::store::conformance::{
        alerts::ALERT_CHECKS, audit::AUDIT_CHECKS, batch::BATCH_CHECKS, compact::COMPACT_CHECKS,
        evidence::EVIDENCE_CHECKS, model::MODEL_CHECKS, polls::CHECKS, tokens::TOKEN_CHECKS,
    };
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
            .chain(COMPACT_CHECKS)
            .chain(BATCH_CHECKS)
            .chain(MODEL_CHECKS)
            .chain(ALERT_CHECKS)
            .chain(AUDIT_CHECKS)
            .chain(EVIDENCE_CHECKS)
            .chain(TOKEN_CHECKS)
            .enumerate()
        {
            let (schema, store) = schema_store(&url, &admin, index, Duration::from_secs(30)).await;
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
            drop_schema(&admin, &schema).await;
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

    /// A fresh schema on the test server, with a store whose sessions use it and have
    /// `statement_timeout`, not migrated; the schema is dropped by [`drop_schema`].
    async fn schema_connect(
        url: &str,
        admin: &sqlx::PgPool,
        index: usize,
        statement_timeout: Duration,
    ) -> (String, PostgresStore) {
        let schema = schema_name(index);
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
            .await
            .expect("create schema");
        let options = options(url)
            .expect("parse URL")
            .options([("search_path", schema.as_str())]);
        let store = PostgresStore::connect_with(options, 4, statement_timeout)
            .await
            .expect("connect");
        (schema, store)
    }

    /// [`schema_connect`], then migrated.
    async fn schema_store(
        url: &str,
        admin: &sqlx::PgPool,
        index: usize,
        statement_timeout: Duration,
    ) -> (String, PostgresStore) {
        let (schema, store) = schema_connect(url, admin, index, statement_timeout).await;
        store.migrate().await.expect("migrate");
        (schema, store)
    }

    async fn drop_schema(admin: &sqlx::PgPool, schema: &str) {
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA \"{schema}\" CASCADE"
            )))
            .await
            .expect("drop schema");
    }

    /// Migration 0008 on a database with polls written before it.
    #[tokio::test]
    async fn migration_0008_counts_the_polls_stored_before_it() {
        let Some(url) = url() else { return };
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .expect("connect");
        let (schema, store) = schema_connect(&url, &admin, 901, Duration::from_secs(30)).await;
        let before = Migrator::with_migrations(
            <Postgres as SqlBackend>::MIGRATOR
                .iter()
                .filter(|m| m.version < 8)
                .cloned()
                .collect(),
        );
        before
            .run(store.pool())
            .await
            .expect("migrations before 0008");
        sqlx::query(crate::store::conformance::compact::POLLS_BEFORE_0008)
            .execute(store.pool())
            .await
            .expect("old polls");
        store.migrate().await.expect("migrate");
        let result =
            crate::store::conformance::compact::polls_stored_before_0008_are_counted(&store).await;
        drop(store);
        drop_schema(&admin, &schema).await;
        result.expect("0008 on old polls");
    }

    /// The audit log is append-only in the database itself: its trigger rejects an UPDATE, a
    /// DELETE and a TRUNCATE, whoever sends them.
    #[tokio::test]
    async fn audit_rows_cannot_be_changed_or_deleted() {
        let Some(url) = url() else { return };
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .expect("connect");
        let (schema, store) = schema_store(&url, &admin, 900, Duration::from_secs(30)).await;
        let record = crate::store::AuditRecord {
            at: chrono::Utc::now(),
            actor: "token:1".into(),
            action: "action.update".into(),
            tenant: Some("t".into()),
            group: None,
            object: "a".into(),
            field: Some("notes".into()),
            old_value: None,
            new_value: Some(serde_json::json!("n")),
            request_id: None,
        };
        crate::store::AuditStore::append_audit(&store, &[record])
            .await
            .expect("append");
        for sql in [
            "UPDATE audit_log SET actor = 'someone else'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
        ] {
            let err = sqlx::query(sql).execute(store.pool()).await.expect_err(sql);
            assert!(err.to_string().contains("append-only"), "{sql}: {err}");
        }
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
            .fetch_one(store.pool())
            .await
            .expect("count");
        assert_eq!(n, 1);
        drop(store);
        drop_schema(&admin, &schema).await;
    }

    /// Issue 8 row 20: without a statement timeout a stalled write (here: another session
    /// holding the tenant's advisory lock, which `record_poll` waits for) held its connection
    /// and the poll forever. Every session now has `[store] statement_timeout` (default 30 s),
    /// and the stalled write fails as a classified store error within it.
    #[tokio::test]
    async fn statement_timeout_bounds_a_stalled_write() {
        let Some(url) = url() else { return };
        let default = PostgresStore::connect(&url, 1).await.expect("connect");
        let shown: String = sqlx::query_scalar("SHOW statement_timeout")
            .fetch_one(default.pool())
            .await
            .unwrap();
        assert_eq!(shown, "30s", "the default [store] statement_timeout");

        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .expect("connect to POSTURED_TEST_POSTGRES_URL");
        let (schema, store) = schema_store(&url, &admin, 1000, Duration::from_millis(300)).await;
        for _ in 0..2 {
            let shown: String = sqlx::query_scalar("SHOW statement_timeout")
                .fetch_one(store.pool())
                .await
                .unwrap();
            assert_eq!(
                shown, "300ms",
                "migrating left a pooled session without its timeout"
            );
        }
        let tenant = format!("{schema}-stalled");
        let mut holder = admin.acquire().await.unwrap();
        sqlx::query("SELECT pg_advisory_lock(hashtextextended($1, 0))")
            .bind(&tenant)
            .execute(&mut *holder)
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(
            Duration::from_secs(10),
            crate::store::conformance::record_one(
                &store,
                &crate::store::conformance::one_action_poll(&tenant, 0),
            ),
        )
        .await
        .expect("the stalled write must end within its statement timeout");
        let elapsed = started.elapsed();
        sqlx::query("SELECT pg_advisory_unlock_all()")
            .execute(&mut *holder)
            .await
            .unwrap();
        drop(holder);
        let err = result.expect_err("the write waited for the lock past the timeout");
        assert_eq!(err.kind(), "database", "{err}");
        assert!(
            matches!(&err, StoreError::Database(sqlx::Error::Database(db)) if db.code().as_deref() == Some("57014")),
            "query_canceled expected, got {err}"
        );
        assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
        // The connection is usable again and the next write lands.
        crate::store::conformance::record_one(
            &store,
            &crate::store::conformance::one_action_poll(&tenant, 1),
        )
        .await
        .expect("write after the timeout");
        drop(store);
        drop_schema(&admin, &schema).await;
    }

    /// Issue 8 row 20: sqlx was built without TLS, so `sslmode=require` could not work. With
    /// `tls-rustls-ring-native-roots` the session is encrypted (the test server of
    /// scripts/test.sh, a Debian cluster, has `ssl = on` with its snake-oil certificate, which
    /// `require` does not verify, as in libpq).
    #[tokio::test]
    async fn sslmode_require_connects_over_tls() {
        let Some(url) = url() else { return };
        let plain = PostgresStore::connect(&url, 1).await.expect("connect");
        let ssl_on: String = sqlx::query_scalar("SHOW ssl")
            .fetch_one(plain.pool())
            .await
            .unwrap();
        if ssl_on != "on" {
            assert!(
                std::env::var_os("POSTURED_REQUIRE_TEST_SERVERS").is_none(),
                "the PostgreSQL test server has ssl = off; TLS cannot be tested"
            );
            eprintln!("note: the PostgreSQL test server has ssl = off; skipping the TLS test");
            return;
        }
        let sep = if url.contains('?') { '&' } else { '?' };
        let tls = open_store(&format!("{url}{sep}sslmode=require"), 1)
            .await
            .expect("connect with sslmode=require");
        tls.ping().await.unwrap();
        let tls = PostgresStore::connect(&format!("{url}{sep}sslmode=require"), 1)
            .await
            .unwrap();
        let (ssl, version): (bool, Option<String>) =
            sqlx::query_as("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(tls.pool())
                .await
                .unwrap();
        assert!(ssl, "the session is not encrypted");
        assert!(version.is_some_and(|v| v.starts_with("TLS")));
    }

    /// Issue 8 row 20, without a server: with `sslmode=require` the client asks a loopback
    /// listener for TLS (an `SSLRequest`) and, refused, fails with a classified TLS error.
    /// Built without TLS, sqlx sent nothing and failed at once.
    #[tokio::test]
    async fn sslmode_require_asks_for_tls_and_fails_classified_when_refused() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 8];
            let read = socket.read_exact(&mut request).await;
            if read.is_ok() {
                // 'N': this server does not do TLS.
                socket.write_all(b"N").await.unwrap();
            }
            read.ok().map(|_| request)
        });
        let err = PostgresStore::connect(
            &format!(
                "postgres://postured:secret-password@127.0.0.1:{port}/postured?sslmode=require"
            ),
            1,
        )
        .await
        .expect_err("the server refused TLS");
        assert_eq!(err.kind(), "database");
        assert!(
            matches!(err, StoreError::Database(sqlx::Error::Tls(_))),
            "{err}"
        );
        assert!(
            err.to_string().contains("server does not support TLS"),
            "{err}"
        );
        assert!(!err.to_string().contains("secret-password"));
        let request = server
            .await
            .unwrap()
            .expect("the client sent an SSLRequest");
        // Length 8, then the SSLRequest code 80877103 (1234 << 16 | 5679).
        assert_eq!(request, [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
    }
}
