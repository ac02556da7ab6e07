//! Evidence over real HTTP against a running daemon with a real SQLite file: multipart upload
//! (size limit, allowed types, content sniffing), links, downloads that re-check the hash
//! (a blob corrupted in the database or on disk is never served), the withdrawal rules (only
//! while the instance is undecided; the row stays), audit rows, roles, and the automatic
//! evidence a poll stores for each status change.

mod support;

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use support::{API_TOKEN, TestApp, mount_graph_examples, mount_token_ok, principals, tenant_block};
use wiremock::MockServer;

const GUID: &str = "00000001-0001-0001-0001-000000000001c";
const ROPA: &str = "gdpr.records.ropa";
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, 0x49, 0x48, 0x44, 0x52, 0, 0, 0,
    1, 0, 0, 0, 1, 8, 6, 0, 0, 0,
];

/// A daemon with one tenant that these tests never poll, and `extra` sections.
async fn app(extra: &str) -> TestApp {
    TestApp::spawn(
        extra,
        &tenant_block(
            "contoso",
            GUID,
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

fn file(name: &str, media: Option<&str>, bytes: &[u8]) -> Form {
    let mut part = Part::bytes(bytes.to_vec()).file_name(name.to_string());
    if let Some(m) = media {
        part = part.mime_str(m).expect("media type");
    }
    Form::new().part("file", part)
}

/// POST a file to the ROPA instance of group `default` with the shared token.
async fn upload(app: &TestApp, form: Form) -> (StatusCode, Value) {
    let r = client()
        .post(format!(
            "http://{}/api/v1/actions/{ROPA}/evidence?group=default",
            app.addr
        ))
        .bearer_auth(API_TOKEN)
        .multipart(form)
        .send()
        .await
        .expect("send");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn list(app: &TestApp) -> Vec<Value> {
    app.get(
        &format!("/api/v1/actions/{ROPA}/evidence?group=default"),
        Some(API_TOKEN),
    )
    .await
    .json::<Value>()
    .await
    .expect("json")
    .as_array()
    .expect("array")
    .clone()
}

async fn delete(app: &TestApp, id: i64) -> (StatusCode, Value) {
    let r = client()
        .delete(format!("http://{}/api/v1/evidence/{id}", app.addr))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .expect("send");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn db(app: &TestApp) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        app.dir.path().join("postured.db").display()
    ))
    .await
    .expect("open the daemon's database")
}

#[tokio::test]
async fn files_are_stored_by_hash_and_served_only_while_their_hash_matches() {
    let app = app("").await;
    let text = "Register of processing activities\nünïcode\n".as_bytes();
    let (status, row) = upload(&app, file("ropa.txt", Some("text/plain"), text)).await;
    assert_eq!(status, StatusCode::CREATED, "{row}");
    let sha = postured::model::evidence::sha256_hex(text);
    assert_eq!(row["kind"], "file");
    assert_eq!(row["name"], "ropa.txt");
    assert_eq!(row["media_type"], "text/plain");
    assert_eq!(row["size"], text.len());
    assert_eq!(row["sha256"], sha);
    assert_eq!(row["uploaded_by"], "api_token");
    let id = row["id"].as_i64().expect("id");

    // The same bytes again: a second row, the same content address.
    let (status, again) = upload(&app, file("../../copy.TXT", None, text)).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["sha256"], sha);
    assert_eq!(again["name"], "copy.TXT");
    assert_eq!(list(&app).await.len(), 2);

    let r = app
        .get(&format!("/api/v1/evidence/{id}"), Some(API_TOKEN))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"ropa.txt\""
    );
    assert_eq!(r.bytes().await.expect("body").as_ref(), text);

    // Bytes changed behind the daemon's back are never served.
    let pool = db(&app).await;
    sqlx::query("UPDATE evidence_blobs SET content = $1 WHERE sha256 = $2")
        .bind(b"Register of processing activities\nedited\n".to_vec())
        .bind(&sha)
        .execute(&pool)
        .await
        .expect("corrupt the blob");
    let r = app
        .get(&format!("/api/v1/evidence/{id}"), Some(API_TOKEN))
        .await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let problem: Value = r.json().await.expect("json");
    assert_eq!(problem["type"], "/problems/evidence-corrupt");
    assert!(!problem.to_string().contains("edited"));

    // Without the API token: 401; an unknown id: 404.
    assert_eq!(
        app.get(&format!("/api/v1/evidence/{id}"), None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let r = app.get("/api/v1/evidence/999999", Some(API_TOKEN)).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn uploads_are_bounded_typed_and_sniffed() {
    let app = app(r#"
[evidence]
max_file_bytes = 1024
allowed_types = ["pdf", "png", "txt"]
max_per_instance = 2
"#)
    .await;
    let cases: Vec<(Form, StatusCode, &str)> = vec![
        (
            file("big.txt", Some("text/plain"), &vec![b'a'; 1025]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "/problems/evidence-too-large",
        ),
        (
            file("a.docx", None, b"PK\x03\x04"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "/problems/evidence-type-not-allowed",
        ),
        (
            file("setup.exe", Some("application/x-msdownload"), b"MZ\x90\0"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "/problems/evidence-type-not-allowed",
        ),
        // Declared a PNG, but it is text.
        (
            file("shot.png", Some("image/png"), b"just some text"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "/problems/evidence-content-mismatch",
        ),
        // Declared a PDF (by its name), but the bytes are a PNG.
        (
            file("report.pdf", None, PNG),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "/problems/evidence-content-mismatch",
        ),
        // Declared text, but the bytes are a PNG.
        (
            file("notes.txt", Some("text/plain"), PNG),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "/problems/evidence-content-mismatch",
        ),
        (
            Form::new().text("note", "no file"),
            StatusCode::BAD_REQUEST,
            "/problems/invalid-body",
        ),
    ];
    for (form, status, kind) in cases {
        let (got, problem) = upload(&app, form).await;
        assert_eq!(got, status, "{problem}");
        assert_eq!(problem["type"], kind, "{problem}");
    }
    assert!(list(&app).await.is_empty(), "nothing refused was stored");
    // Exactly at the limit, and a real PNG: accepted.
    let (status, _) = upload(&app, file("max.txt", Some("text/plain"), &vec![b'a'; 1024])).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, row) = upload(&app, file("shot.png", Some("image/png"), PNG)).await;
    assert_eq!(status, StatusCode::CREATED, "{row}");
    assert_eq!(row["media_type"], "image/png");
    // The instance holds max_per_instance files and links.
    let (status, problem) = upload(&app, file("third.txt", Some("text/plain"), b"3")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["type"], "/problems/evidence-limit");
    // Neither multipart nor JSON.
    let r = client()
        .post(format!(
            "http://{}/api/v1/actions/{ROPA}/evidence?group=default",
            app.addr
        ))
        .bearer_auth(API_TOKEN)
        .body("x")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // An unknown action or the wrong scope kind.
    let r = client()
        .post(format!(
            "http://{}/api/v1/actions/no.such.action/evidence?group=default",
            app.addr
        ))
        .bearer_auth(API_TOKEN)
        .json(&json!({"url": "https://example.com"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = client()
        .post(format!(
            "http://{}/api/v1/actions/{ROPA}/evidence?tenant=contoso",
            app.addr
        ))
        .bearer_auth(API_TOKEN)
        .json(&json!({"url": "https://example.com"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn links_are_http_urls_of_bounded_length() {
    let app = app("").await;
    let post = |body: Value| {
        client()
            .post(format!(
                "http://{}/api/v1/actions/{ROPA}/evidence?group=default",
                app.addr
            ))
            .bearer_auth(API_TOKEN)
            .json(&body)
            .send()
    };
    let r = post(json!({"url": "https://intranet.example/ropa.xlsx"}))
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::CREATED);
    let link: Value = r.json().await.expect("json");
    assert_eq!(link["kind"], "link");
    assert_eq!(link["name"], "https://intranet.example/ropa.xlsx");
    assert_eq!(link["sha256"], Value::Null);
    let long = format!("https://example.com/{}", "a".repeat(2_000));
    for bad in [
        json!({"url": "javascript:alert(1)"}),
        json!({"url": "file:///etc/passwd"}),
        json!({"url": long}),
    ] {
        let r = post(bad.clone()).await.expect("send");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        let p: Value = r.json().await.expect("json");
        assert_eq!(p["type"], "/problems/invalid-link");
    }
    let r = post(json!({"url": "https://a.example", "extra": 1}))
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = post(json!({"url": "x".repeat(10_000)}))
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // A link has no bytes to download.
    let r = app
        .get(&format!("/api/v1/evidence/{}", link["id"]), Some(API_TOKEN))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(list(&app).await.len(), 1);
}

#[tokio::test]
async fn evidence_is_withdrawn_only_while_the_instance_is_undecided() {
    let app = app("").await;
    let (_, first) = upload(&app, file("draft.txt", Some("text/plain"), b"draft")).await;
    let first_id = first["id"].as_i64().expect("id");
    let (status, withdrawn) = delete(&app, first_id).await;
    assert_eq!(status, StatusCode::OK, "{withdrawn}");
    assert!(withdrawn["withdrawn_at"].is_string());
    assert_eq!(withdrawn["withdrawn_by"], "api_token");
    let (status, problem) = delete(&app, first_id).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(problem["type"], "/problems/evidence-withdrawn");
    // The row and its bytes stay.
    assert_eq!(list(&app).await.len(), 1);
    let r = app
        .get(&format!("/api/v1/evidence/{first_id}"), Some(API_TOKEN))
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // Once the instance is passed, its evidence stays.
    let (_, kept) = upload(&app, file("final.txt", Some("text/plain"), b"final")).await;
    let kept_id = kept["id"].as_i64().expect("id");
    let r = client()
        .put(format!("http://{}/api/v1/actions/{ROPA}/status", app.addr))
        .bearer_auth(API_TOKEN)
        .json(&json!({"group": "default", "test_status": "passed"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let (status, problem) = delete(&app, kept_id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["type"], "/problems/evidence-locked");
    assert!(problem["detail"].as_str().unwrap().contains("passed"));
    // A correction adds (and names the row it corrects); nothing is erased.
    let r = client()
        .post(format!(
            "http://{}/api/v1/actions/{ROPA}/evidence?group=default&supersedes={kept_id}",
            app.addr
        ))
        .bearer_auth(API_TOKEN)
        .multipart(file(
            "final-v2.txt",
            Some("text/plain"),
            b"final, corrected",
        ))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::CREATED);
    let correction: Value = r.json().await.expect("json");
    let rows = list(&app).await;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1]["superseded_by"], correction["id"]);
    assert!(rows[1]["withdrawn_at"].is_null());
    // Failed and out of scope lock too.
    for (status_body, name) in [
        (
            json!({"group": "default", "test_status": "failed_high_risk"}),
            "failed_high_risk",
        ),
        (
            json!({"group": "default", "test_status": "in_progress", "implementation_status": "out_of_scope"}),
            "out_of_scope",
        ),
    ] {
        let body = status_body;
        let r = client()
            .put(format!("http://{}/api/v1/actions/{ROPA}/status", app.addr))
            .bearer_auth(API_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), StatusCode::OK);
        let (status, problem) = delete(&app, kept_id).await;
        assert_eq!(status, StatusCode::CONFLICT, "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(name),
            "{problem}"
        );
    }

    // Every add and the withdrawal are audited, with the row before and after.
    let page: Value = app
        .get("/api/v1/audit?group=default", Some(API_TOKEN))
        .await
        .json()
        .await
        .expect("json");
    let evidence_rows: Vec<&Value> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["field"] == "evidence")
        .collect();
    let verbs: Vec<&str> = evidence_rows
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        verbs,
        [
            "evidence.add",
            "evidence.withdraw",
            "evidence.add",
            "evidence.add"
        ]
    );
    assert_eq!(evidence_rows[1]["old_value"]["withdrawn"], false);
    assert_eq!(evidence_rows[1]["new_value"]["withdrawn"], true);
    assert_eq!(evidence_rows[1]["new_value"]["id"], first_id);
}

#[tokio::test]
async fn a_directory_store_keeps_files_by_hash_and_checks_them_when_served() {
    let files = tempfile::tempdir().expect("tempdir");
    let app = app(&format!(
        "[evidence]\nstore = \"directory\"\npath = \"{}\"\n",
        files.path().display()
    ))
    .await;
    let pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n";
    let (status, row) = upload(&app, file("policy.pdf", Some("application/pdf"), pdf)).await;
    assert_eq!(status, StatusCode::CREATED, "{row}");
    let sha = row["sha256"].as_str().expect("sha").to_string();
    let on_disk = files.path().join(&sha[..2]).join(&sha);
    assert_eq!(std::fs::read(&on_disk).expect("the file by its hash"), pdf);
    let held: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT content FROM evidence_blobs WHERE sha256 = $1")
            .bind(&sha)
            .fetch_one(&db(&app).await)
            .await
            .expect("blob row");
    assert_eq!(held, None, "the bytes are not in the database");
    let id = row["id"].as_i64().unwrap();
    let r = app
        .get(&format!("/api/v1/evidence/{id}"), Some(API_TOKEN))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert_eq!(r.bytes().await.unwrap().as_ref(), pdf);
    std::fs::write(&on_disk, b"%PDF-1.7 forged").expect("tamper");
    let r = app
        .get(&format!("/api/v1/evidence/{id}"), Some(API_TOKEN))
        .await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    std::fs::remove_file(&on_disk).expect("remove");
    let r = app
        .get(&format!("/api/v1/evidence/{id}"), Some(API_TOKEN))
        .await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    // Uploading the bytes again restores the file.
    let (status, _) = upload(&app, file("policy.pdf", Some("application/pdf"), pdf)).await;
    assert_eq!(status, StatusCode::CREATED);
    let r = app
        .get(&format!("/api/v1/evidence/{id}"), Some(API_TOKEN))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// A file of the evidence directory larger than many stream chunks (64 KiB) is served whole,
/// with its length, from the handle its hash was checked on; a copy of the same length with one
/// byte changed in its last chunk, one byte longer or one byte shorter is never served.
#[tokio::test]
async fn a_directory_file_is_streamed_whole_and_refused_when_changed_anywhere() {
    let files = tempfile::tempdir().expect("tempdir");
    let app = app(&format!(
        "[evidence]\nstore = \"directory\"\npath = \"{}\"\n",
        files.path().display()
    ))
    .await;
    let text: Vec<u8> = (0..60_000)
        .flat_map(|i| format!("line {i:05} of the register\n").into_bytes())
        .chain(*b"tail")
        .collect();
    assert!(text.len() > 20 * 64 * 1024, "{}", text.len());
    let (status, row) = upload(&app, file("register.txt", Some("text/plain"), &text)).await;
    assert_eq!(status, StatusCode::CREATED, "{row}");
    let sha = row["sha256"].as_str().expect("sha").to_string();
    let id = row["id"].as_i64().unwrap();
    let on_disk = files.path().join(&sha[..2]).join(&sha);
    let url = format!("/api/v1/evidence/{id}");
    let get = || app.get(&url, Some(API_TOKEN));
    let r = get().await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-length"].to_str().unwrap(),
        text.len().to_string()
    );
    assert_eq!(r.headers()["x-evidence-sha256"].to_str().unwrap(), sha);
    let body = r.bytes().await.unwrap();
    assert!(body.as_ref() == text.as_slice(), "the served bytes differ");

    let mut flipped = text.clone();
    let last = flipped.len() - 2;
    flipped[last] ^= 0x20;
    let longer = [text.as_slice(), b"!"].concat();
    let shorter = text[..text.len() - 1].to_vec();
    for (what, bytes) in [
        ("one byte changed", flipped),
        ("one byte more", longer),
        ("one byte less", shorter),
    ] {
        std::fs::write(&on_disk, &bytes).expect("tamper");
        let r = get().await;
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR, "{what}");
        let problem: Value = r.json().await.expect("json");
        assert_eq!(problem["type"], "/problems/evidence-corrupt", "{what}");
    }
    std::fs::write(&on_disk, &text).expect("restore");
    assert_eq!(get().await.status(), StatusCode::OK);
}

#[tokio::test]
async fn readers_read_evidence_and_contributors_add_it() {
    let app = app("").await;
    let addr = principals::serve(app.app.clone()).await;
    let post = |who: &'static str| {
        client()
            .post(format!(
                "http://{addr}/api/v1/actions/{ROPA}/evidence?group=default"
            ))
            .header(principals::HEADER, who)
            .multipart(file("a.txt", Some("text/plain"), b"a"))
            .send()
    };
    let r = post("reader").await.expect("send");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post("contributor").await.expect("send");
    assert_eq!(r.status(), StatusCode::CREATED);
    let row: Value = r.json().await.expect("json");
    assert_eq!(row["uploaded_by"], "token:contributor");
    let id = row["id"].as_i64().unwrap();
    for path in [
        format!("/api/v1/actions/{ROPA}/evidence?group=default"),
        format!("/api/v1/evidence/{id}"),
    ] {
        let r = client()
            .get(format!("http://{addr}{path}"))
            .header(principals::HEADER, "reader")
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    let r = client()
        .delete(format!("http://{addr}/api/v1/evidence/{id}"))
        .header(principals::HEADER, "reader")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A tenant's technical action, for a caller limited to another tenant: refused.
    let r = client()
        .post(format!(
            "http://{addr}/api/v1/actions/msgraph.mfa.all_users/evidence?tenant=contoso"
        ))
        .header(principals::HEADER, "contributor@fabrikam")
        .json(&json!({"url": "https://example.com"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_poll_stores_the_signals_behind_each_status_change_as_evidence() {
    let graph = MockServer::start().await;
    mount_token_ok(&graph, GUID).await;
    mount_graph_examples(&graph).await;
    let app = TestApp::spawn(
        "",
        &tenant_block("contoso", GUID, "client-1", &graph.uri(), "0 0 * * * *"),
    )
    .await;
    app.poll("contoso").await;
    let rows: Vec<Value> = app
        .get("/api/v1/tenants/contoso/transitions", Some(API_TOKEN))
        .await
        .json()
        .await
        .expect("json");
    assert!(!rows.is_empty());
    let with: Vec<&Value> = rows
        .iter()
        .filter(|r| r["evidence_sha256"].is_string())
        .collect();
    assert_eq!(
        with.len(),
        rows.len(),
        "every first status has its evidence"
    );
    let t = with
        .iter()
        .find(|r| !r["signals"].as_array().unwrap().is_empty())
        .expect("a transition that read signals");
    let action = t["action_id"].as_str().unwrap();
    let listed: Vec<Value> = app
        .get(
            &format!("/api/v1/actions/{action}/evidence?tenant=contoso"),
            Some(API_TOKEN),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["kind"], "automatic");
    assert_eq!(listed[0]["uploaded_by"], "poll:msgraph");
    assert_eq!(listed[0]["sha256"], t["evidence_sha256"]);
    let r = app
        .get(
            &format!("/api/v1/evidence/{}", listed[0]["id"]),
            Some(API_TOKEN),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    let bytes = r.bytes().await.unwrap();
    assert_eq!(
        postured::model::evidence::sha256_hex(&bytes),
        t["evidence_sha256"].as_str().unwrap()
    );
    let doc: Value = serde_json::from_slice(&bytes).expect("a JSON document");
    assert_eq!(doc["action"], action);
    assert_eq!(doc["test_status"], t["to_status"]);
    let keys: Vec<&str> = doc["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    let mut want: Vec<&str> = t["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[0].as_str().unwrap())
        .collect();
    want.sort_unstable();
    assert_eq!(keys, want);
    // A second poll with the same answers changes no status: no new evidence.
    app.poll("contoso").await;
    let again: Vec<Value> = app
        .get(
            &format!("/api/v1/actions/{action}/evidence?tenant=contoso"),
            Some(API_TOKEN),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(again.len(), 1);
}
