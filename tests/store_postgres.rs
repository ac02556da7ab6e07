//! Store conformance suite on PostgreSQL.
//!
//! Runs every check of `postured::store::conformance::CHECKS` against a real server when
//! `POSTURED_TEST_POSTGRES_URL` is set (skipped with a note otherwise). Each check gets a fresh
//! schema (tables found through `search_path`), dropped afterwards. For a throw-away cluster:
//!
//! ```sh
//! pg_virtualenv sh -c 'POSTURED_TEST_POSTGRES_URL="postgres:///postgres?host=$PGHOST&port=$PGPORT&user=$PGUSER&password=$PGPASSWORD" cargo test -p postured --test store_postgres'
//! ```

use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use postured::store::conformance::CHECKS;
use postured::store::postgres::PostgresStore;
use postured::store::{Store, open_store};
use sqlx::Executor;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

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
        .chain(postured::store::conformance_model::MODEL_CHECKS)
        .chain(postured::store::conformance_alerts::ALERT_CHECKS)
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
