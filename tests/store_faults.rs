//! A failing database under the running daemon (issue 8 rows 9, 10 and 20): real HTTP over
//! loopback, a real SQLite file whose directory is removed, whose writes fail, or whose write
//! lock another process holds; wiremock stands in for Microsoft Graph.

mod support;

use std::time::Duration;

use sqlx::{Connection, Executor, SqliteConnection};
use support::*;
use wiremock::MockServer;

const GUID: &str = "00000001-0001-0001-0001-000000000001c";

async fn graph_with_examples() -> MockServer {
    let graph = MockServer::start().await;
    mount_token_ok(&graph, GUID).await;
    mount_graph_examples(&graph).await;
    graph
}

async fn spawn(graph: &MockServer) -> TestApp {
    TestApp::spawn(
        "",
        &tenant_block("contoso", GUID, "client-1", &graph.uri(), "0 0 * * * *"),
    )
    .await
}

/// A second connection to the app's database file, as another process would open it.
async fn connect_db(app: &TestApp) -> SqliteConnection {
    let path = app.dir.path().join("postured.db");
    SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

async fn readyz(app: &TestApp) -> (u16, String) {
    let r = app.get("/readyz", None).await;
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Issue 8 rows 9 and 10: with the directory holding the SQLite file removed (`rm -rf`) the
/// daemon said nothing, `/readyz` answered 200 (`SELECT 1`), and every write went into the
/// unlinked file, gone at the next start. Now `/readyz` is 503 with the reason,
/// `postured_store_healthy` is 0, and a poll's write is refused and counted
/// (`postured_store_errors_total{kind="file_replaced"}`), its transitions kept in memory.
#[tokio::test]
async fn readyz_and_metrics_report_a_removed_database_directory() {
    let graph = graph_with_examples().await;
    let app = spawn(&graph).await;
    assert!(app.poll("contoso").await.stored);
    assert_eq!(readyz(&app).await, (200, "ready\n".to_owned()));
    assert_eq!(
        sample(&app.metrics().await, "postured_store_healthy"),
        Some(1.0)
    );

    std::fs::remove_dir_all(app.dir.path()).unwrap();
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("file_replaced"), "{body}");
    let report = app.poll("contoso").await;
    assert!(!report.stored, "the write must be refused, not lost");
    let m = app.metrics().await;
    assert_eq!(sample(&m, "postured_store_healthy"), Some(0.0));
    assert_eq!(
        sample(
            &m,
            "postured_store_health_failures_total{reason=\"file_replaced\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&m, "postured_store_errors_total{kind=\"file_replaced\"}"),
        Some(1.0)
    );
}

/// Issue 8 row 10: during a write fault (the database still answers `SELECT 1` but no write
/// commits: injected by a trigger failing the health probe's upsert) `/readyz` answered 200.
/// It is 503 while writes fail and 200 again once they succeed.
#[tokio::test]
async fn readyz_fails_while_the_database_refuses_writes() {
    let graph = graph_with_examples().await;
    let app = spawn(&graph).await;
    assert_eq!(readyz(&app).await.0, 200);
    let mut db = connect_db(&app).await;
    for event in ["INSERT", "UPDATE"] {
        db.execute(sqlx::AssertSqlSafe(format!(
            "CREATE TRIGGER injected_fault_{event} BEFORE {event} ON store_health \
            BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
        )))
        .await
        .unwrap();
    }
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("store unhealthy: database"), "{body}");
    assert_eq!(
        sample(&app.metrics().await, "postured_store_healthy"),
        Some(0.0)
    );
    for event in ["INSERT", "UPDATE"] {
        db.execute(sqlx::AssertSqlSafe(format!(
            "DROP TRIGGER injected_fault_{event}"
        )))
        .await
        .unwrap();
    }
    assert_eq!(readyz(&app).await.0, 200);
    assert_eq!(
        sample(&app.metrics().await, "postured_store_healthy"),
        Some(1.0)
    );
}

/// Issue 8 rows 9 and 10: the health check also runs every `[store] health_interval`, so
/// `postured_store_healthy` turns 0 without anyone asking `/readyz`.
#[tokio::test]
async fn the_periodic_health_check_sets_the_metric() {
    let graph = graph_with_examples().await;
    let app = spawn(&graph).await;
    let mut parts = app.app.background();
    parts.store_health_interval = Duration::from_millis(20);
    let task = tokio::spawn(postured::app::tasks::store_health_loop(
        parts,
        app.cancel.clone(),
    ));
    let healthy = || async { sample(&app.metrics().await, "postured_store_healthy") };
    for _ in 0..250 {
        if healthy().await == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(healthy().await, Some(1.0));
    std::fs::remove_dir_all(app.dir.path()).unwrap();
    for _ in 0..250 {
        if healthy().await == Some(0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(healthy().await, Some(0.0));
    app.cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the loop stops on cancellation")
        .unwrap();
}

/// Issue 8 row 20: a poll held its tenant's lock while it wrote to the store, so a stalled
/// write (here: another process holding SQLite's write lock) blocked every API read of the
/// tenant. The lock is now released during the write: the report is served at once, and the
/// poll's write lands when the database frees up.
#[tokio::test]
async fn a_stalled_store_write_does_not_block_api_reads() {
    let graph = graph_with_examples().await;
    let app = spawn(&graph).await;
    assert!(app.poll("contoso").await.stored);
    let graph_calls = || async {
        graph
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.url.path().starts_with("/v1.0/"))
            .count()
    };
    let before = graph_calls().await;

    let mut blocker = connect_db(&app).await;
    blocker.execute("BEGIN IMMEDIATE").await.unwrap();
    let tenant = app.app.tenant("contoso").unwrap().clone();
    let daemon = app.app.clone();
    let poll = tokio::spawn(async move { daemon.poll(&tenant, 0).await });
    // Collection is over once every Graph endpoint was asked again; evaluating takes
    // milliseconds, then the poll waits for the write lock (up to SQLite's 5 s busy timeout).
    for _ in 0..500 {
        if graph_calls().await >= before + graph_endpoints().len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(graph_calls().await >= before + graph_endpoints().len());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !poll.is_finished(),
        "the poll should be waiting for the store"
    );

    let read = tokio::time::timeout(
        Duration::from_secs(2),
        app.get("/api/v1/report", Some(API_TOKEN)),
    )
    .await;
    let still_writing = !poll.is_finished();
    blocker.execute("ROLLBACK").await.unwrap();
    let response = read.expect("an API read of the tenant waited for the store write");
    assert_eq!(response.status(), 200);
    assert!(
        still_writing,
        "the read must have happened during the write"
    );
    let report = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .expect("the poll ends once the lock is free")
        .unwrap();
    assert!(report.stored, "the write lands once the database frees up");
}
