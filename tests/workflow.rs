//! The manual workflow of an action instance over real HTTP: the fields a person records
//! (implementation and test status with their dates and notes, assignee, testing source), the
//! role rules (a contributor may not set what decides points; a reader may not write), and the
//! append-only audit log every change writes (one row per changed field, old and new value),
//! read through `GET /api/v1/audit` with filters and paging and exported as CSV or JSON.

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{API_TOKEN, TestApp, principals, tenant_block};

/// One tenant that is never polled here (its Graph address is never called).
async fn app() -> TestApp {
    TestApp::spawn(
        "",
        &tenant_block(
            "contoso",
            "00000001-0001-0001-0001-000000000001c",
            "client-1",
            "http://127.0.0.1:9",
            "0 0 0 1 1 * 2099",
        ),
    )
    .await
}

fn client() -> reqwest::Client {
    postured::http::install_crypto_provider();
    reqwest::Client::new()
}

/// PUT a status as the caller `who` (see `principals::HEADER`) on the role-injecting server.
async fn put_as(
    addr: std::net::SocketAddr,
    who: &str,
    action: &str,
    body: Value,
) -> (StatusCode, Value) {
    let r = client()
        .put(format!("http://{addr}/api/v1/actions/{action}/status"))
        .header(principals::HEADER, who)
        .json(&body)
        .send()
        .await
        .expect("send");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get_as(addr: std::net::SocketAddr, who: &str, path: &str) -> (StatusCode, Value) {
    let r = client()
        .get(format!("http://{addr}{path}"))
        .header(principals::HEADER, who)
        .send()
        .await
        .expect("send");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn each_changed_field_is_audited_with_its_old_and_new_value() {
    let app = app().await;
    let put = |body: Value| {
        client()
            .put(format!(
                "http://{}/api/v1/actions/gdpr.records.ropa/status",
                app.addr
            ))
            .bearer_auth(API_TOKEN)
            .json(&body)
            .send()
    };
    let first = put(json!({
        "group": "default",
        "implementation_status": "implemented",
        "implementation_date": "2026-10-01T09:00:00Z",
        "implementation_notes": "records of processing kept in the register",
        "assigned_to": "dpo@contoso.example",
        "test_status": "passed",
        "test_notes": "sampled 5 records",
    }))
    .await
    .expect("put");
    assert_eq!(first.status(), StatusCode::OK);
    let saved: Value = first.json().await.expect("json");
    assert_eq!(saved["implementation_date"], "2026-10-01T09:00:00Z");
    assert_eq!(saved["notes"], "records of processing kept in the register");
    assert_eq!(saved["test_notes"], "sampled 5 records");
    // The test date defaults to the time of the change.
    let test_date = saved["test_date"].as_str().expect("test date set");
    assert_eq!(test_date, saved["updated_at"].as_str().expect("updated_at"));

    let page: Value = app
        .get("/api/v1/audit?group=default", Some(API_TOKEN))
        .await
        .json()
        .await
        .expect("json");
    let rows = page["entries"].as_array().expect("entries");
    let fields: Vec<&str> = rows.iter().map(|r| r["field"].as_str().unwrap()).collect();
    assert_eq!(
        fields,
        [
            "testing_source",
            "implementation_status",
            "implementation_date",
            "notes",
            "test_status",
            "test_date",
            "test_notes",
            "assigned_to"
        ]
    );
    for r in rows {
        assert_eq!(r["actor"], "api_token");
        assert_eq!(r["action"], "action.update");
        assert_eq!(r["object"], "gdpr.records.ropa");
        assert_eq!(r["request_id"], rows[0]["request_id"], "one request id");
    }
    assert_eq!(rows[4]["old_value"], Value::Null);
    assert_eq!(rows[4]["new_value"], "passed");

    // A second change: only the fields that changed get a row, with the old value.
    let second = put(
        json!({"group": "default", "test_status": "passed", "assigned_to": "ciso@contoso.example"}),
    )
    .await
    .expect("put");
    assert_eq!(second.status(), StatusCode::OK);
    let page: Value = app
        .get("/api/v1/audit?group=default&limit=100", Some(API_TOKEN))
        .await
        .json()
        .await
        .expect("json");
    let rows = page["entries"].as_array().expect("entries");
    assert_eq!(rows.len(), 9, "{page}");
    assert_eq!(rows[8]["field"], "assigned_to");
    assert_eq!(rows[8]["old_value"], "dpo@contoso.example");
    assert_eq!(rows[8]["new_value"], "ciso@contoso.example");
    assert_eq!(page["next_cursor"], Value::Null);

    // Cursor paging: pages of 4 cover the 9 rows once, in id order.
    let mut seen = Vec::new();
    let mut cursor: Option<i64> = None;
    loop {
        let path = match cursor {
            Some(c) => format!("/api/v1/audit?limit=4&cursor={c}"),
            None => "/api/v1/audit?limit=4".to_string(),
        };
        let page: Value = app
            .get(&path, Some(API_TOKEN))
            .await
            .json()
            .await
            .expect("json");
        seen.extend(
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_i64() {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 9);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));

    // Filters: by field-less criteria (actor, verb, time) and a bad query is a problem.
    let none: Value = app
        .get("/api/v1/audit?actor=token:nobody", Some(API_TOKEN))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(none["entries"], json!([]));
    let future: Value = app
        .get("/api/v1/audit?since=2099-01-01T00:00:00Z", Some(API_TOKEN))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(future["entries"], json!([]));
    let bad = app.get("/api/v1/audit?limit=0", Some(API_TOKEN)).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(bad.headers()["content-type"], "application/problem+json");
    let bad = app
        .get("/api/v1/audit?since=yesterday", Some(API_TOKEN))
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    // Export: CSV with a header and one line per row; JSON the same rows.
    let csv = app
        .get(
            "/api/v1/audit/export?format=csv&group=default",
            Some(API_TOKEN),
        )
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let text = csv.text().await.expect("text");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(reader.headers().unwrap().get(7), Some("field"));
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), 9);
    assert_eq!(&records[8][9], "\"ciso@contoso.example\"");
    let json_rows: Value = app
        .get("/api/v1/audit/export?format=json", Some(API_TOKEN))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(json_rows.as_array().unwrap().len(), 9);
}

#[tokio::test]
async fn roles_decide_who_may_set_what() {
    let app = app().await;
    let addr = principals::serve(app.app.clone()).await;
    let ropa = "gdpr.records.ropa";
    // A reader may not write at all.
    let (status, problem) = put_as(
        addr,
        "reader",
        ropa,
        json!({"group": "default", "assigned_to": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(problem["type"], "/problems/forbidden");
    // A contributor may assign, write implementation notes and status and its date...
    let (status, saved) = put_as(
        addr,
        "contributor",
        ropa,
        json!({"group": "default", "assigned_to": "ana", "notes": "n", "implementation_status": "planned", "implementation_date": "2026-11-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["implementation_status"], "planned");
    // ...but not the test status, its date or its notes.
    for body in [
        json!({"group": "default", "test_status": "passed"}),
        json!({"group": "default", "test_date": "2026-11-02T00:00:00Z"}),
        json!({"group": "default", "test_notes": "looks fine"}),
    ] {
        let (status, problem) = put_as(addr, "contributor", ropa, body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(problem["type"], "/problems/forbidden");
    }
    // An assessor may.
    let (status, saved) = put_as(
        addr,
        "assessor",
        ropa,
        json!({"group": "default", "test_status": "failed_low_risk", "test_date": "2026-11-02T00:00:00Z", "test_notes": "two records missing"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["test_date"], "2026-11-02T00:00:00Z");
    // A contributor of the tenant may assign its technical action (which stays automatic)...
    let (status, saved) = put_as(
        addr,
        "contributor@contoso",
        "msgraph.mfa.all_users",
        json!({"tenant": "contoso", "assigned_to": "it@contoso.example"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["testing_source"], "automatic");
    // ...one limited to another tenant may not.
    let (status, _) = put_as(
        addr,
        "contributor@fabrikam",
        "msgraph.mfa.all_users",
        json!({"tenant": "contoso", "assigned_to": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Nothing refused was saved or audited: the contributor's four fields (and the source the
    // status switched), the assessor's three, the tenant contributor's one.
    let (status, page) = get_as(addr, "reader", "/api/v1/audit").await;
    assert_eq!(status, StatusCode::OK);
    let rows = page["entries"].as_array().unwrap();
    let by: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["actor"].as_str().unwrap(), r["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        by,
        [
            ("token:contributor", "testing_source"),
            ("token:contributor", "implementation_status"),
            ("token:contributor", "implementation_date"),
            ("token:contributor", "notes"),
            ("token:contributor", "assigned_to"),
            ("token:assessor", "test_status"),
            ("token:assessor", "test_date"),
            ("token:assessor", "test_notes"),
            ("token:contributor@contoso", "assigned_to"),
        ]
    );
    // A reader limited to another tenant does not see the tenant's rows (it sees the groups').
    let (_, page) = get_as(addr, "reader@fabrikam", "/api/v1/audit").await;
    let rows = page["entries"].as_array().unwrap();
    assert_eq!(rows.len(), 8);
    assert!(rows.iter().all(|r| r["tenant"].is_null()));
    let (_, page) = get_as(addr, "reader@contoso", "/api/v1/audit?tenant=contoso").await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 1);
}

/// `postured action set` records the workflow fields with the person running it as actor
/// (`cli:<user>`), and `postured audit export` writes the rows as CSV or JSON.
#[test]
fn the_cli_sets_the_workflow_fields_and_exports_the_audit_log() {
    use std::process::Command;

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("postured.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"sqlite://{}?mode=rwc\"\n\n[[tenants]]\nid = \"contoso\"\n\n  \
             [[tenants.connectors]]\n  kind = \"msgraph\"\n  schedule = \"0 * * * * *\"\n  \
             replay_dir = \"{}\"\n",
            dir.path().join("store.db").display(),
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("config/demo/msgraph")
                .display()
        ),
    )
    .expect("config");
    let cfg = config.to_str().expect("utf-8 path");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_postured"))
            .args(args)
            .env_remove("POSTURED_CONFIG")
            .env("USER", "ana")
            .output()
            .expect("runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = run(&[
        "action",
        "set",
        "--config",
        cfg,
        "--group",
        "default",
        "--action",
        "gdpr.records.ropa",
        "--test-status",
        "passed",
        "--test-date",
        "2026-11-20T10:00:00Z",
        "--test-notes",
        "sampled 5 records",
        "--implementation-notes",
        "kept in the register",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let saved: Value = serde_json::from_str(&stdout).expect("the record as JSON");
    assert_eq!(saved["test_date"], "2026-11-20T10:00:00Z");
    assert_eq!(saved["test_notes"], "sampled 5 records");
    assert_eq!(saved["notes"], "kept in the register");

    let (code, stdout, stderr) = run(&["audit", "export", "--config", cfg, "--format", "csv"]);
    assert_eq!(code, Some(0), "{stderr}");
    let mut reader = csv::Reader::from_reader(stdout.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    let fields: Vec<&str> = rows.iter().map(|r| &r[7]).collect();
    assert_eq!(
        fields,
        [
            "testing_source",
            "notes",
            "test_status",
            "test_date",
            "test_notes"
        ]
    );
    assert!(
        rows.iter()
            .all(|r| &r[2] == "cli:ana" && &r[5] == "default")
    );
    assert_eq!(&rows[2][9], "\"passed\"");

    let (code, stdout, _) = run(&[
        "audit",
        "export",
        "--config",
        cfg,
        "--since",
        "2099-01-01T00:00:00Z",
    ]);
    assert_eq!(code, Some(0));
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).expect("json"),
        json!([])
    );
}
