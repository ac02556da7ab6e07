//! Authentication end to end: the API token lifecycle over the API and the CLI (created, shown
//! once, listed without secret or digest, used, revoked, expired), the refusal metric, and
//! OpenID Connect bearer JWTs from the real OAuth2 server scripts/test.sh runs.

mod support;

use std::process::Command;

use chrono::Utc;
use postured::access::{Role, Scope};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::*;
use wiremock::MockServer;

const GUID: &str = "00000001-0001-0001-0001-000000000001c";

async fn app_with(extra: &str) -> TestApp {
    let graph = MockServer::start().await;
    mount_token_ok(&graph, GUID).await;
    mount_graph_examples(&graph).await;
    let app = TestApp::spawn(
        extra,
        &tenant_block("contoso", GUID, "client-1", &graph.uri(), "0 0 * * * *"),
    )
    .await;
    // The wiremock server lives as long as the test needs no poll.
    std::mem::forget(graph);
    app
}

fn client() -> reqwest::Client {
    postured::http::install_crypto_provider();
    reqwest::Client::new()
}

fn failures(metrics: &str, reason: &str) -> f64 {
    sample(
        metrics,
        &format!("postured_auth_failures_total{{reason=\"{reason}\"}}"),
    )
    .unwrap_or(-1.0)
}

#[tokio::test]
async fn api_tokens_are_shown_once_listed_without_secrets_and_refused_once_revoked_or_expired() {
    let app = app_with("").await;
    let base = format!("http://{}", app.addr);
    let http = client();
    let created: Value = http
        .post(format!("{base}/api/v1/tokens"))
        .bearer_auth(API_TOKEN)
        .json(&json!({"role": "assessor", "name": "ci pipeline", "tenants": ["contoso"], "expires": "90d"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = created["token"].as_str().expect("token shown").to_string();
    let id = created["id"].as_str().unwrap().to_string();
    assert!(token.starts_with(&format!("pst_{id}_")), "{token}");
    let secret = &token[format!("pst_{id}_").len()..];
    assert!(secret.len() >= 43, "32 bytes base64url: {secret}");
    assert_eq!(created["role"], "assessor");
    assert_eq!(created["scope"]["tenants"], json!(["contoso"]));
    assert_eq!(created["created_by"], "api_token");

    // Used: 200, and its last use recorded.
    assert_eq!(
        app.get("/api/v1/assessments", Some(&token)).await.status(),
        StatusCode::OK
    );
    let stored = app.app.store.token(&id).await.unwrap().unwrap();
    assert!(stored.token.last_used_at.is_some());
    // Neither the secret nor its digest is ever listed.
    let listing = app
        .get("/api/v1/tokens", Some(API_TOKEN))
        .await
        .text()
        .await
        .unwrap();
    assert!(listing.contains(&id), "{listing}");
    assert!(!listing.contains(secret), "{listing}");
    assert!(
        !listing.contains(&hex::encode(stored.secret_sha256)),
        "{listing}"
    );
    // The token cannot manage tokens (assessor), nor could a scoped administrator.
    assert_eq!(
        app.get("/api/v1/tokens", Some(&token)).await.status(),
        StatusCode::FORBIDDEN
    );

    // A wrong secret with the right id is unknown.
    let wrong = format!("pst_{id}_{}", "A".repeat(43));
    assert_eq!(
        app.get("/api/v1/assessments", Some(&wrong)).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Revoked: 401 from then on; revoking again is fine; an unknown id is 404.
    for _ in 0..2 {
        let r = http
            .delete(format!("{base}/api/v1/tokens/{id}"))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let refused = app.get("/api/v1/assessments", Some(&token)).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.text().await.unwrap().contains("revoked"));
    let unknown = http
        .delete(format!("{base}/api/v1/tokens/0000000000000000"))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    // Expired: a token whose expiry has passed is refused.
    let minted = postured::server::tokens::create(
        app.app.store.as_ref(),
        postured::server::tokens::NewToken {
            name: "expired".into(),
            role: Role::Administrator,
            scope: Scope::default(),
            expires_at: Some(Utc::now() - chrono::Duration::seconds(1)),
        },
        "test",
        Utc::now() - chrono::Duration::days(1),
    )
    .await
    .unwrap();
    let expired = secrecy::ExposeSecret::expose_secret(&minted.text).to_string();
    let refused = app.get("/api/v1/assessments", Some(&expired)).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.text().await.unwrap().contains("expired"));

    // Past the header bound: refused unread.
    let long = format!(
        "pst_{}",
        "a".repeat(postured::server::auth::MAX_AUTHORIZATION_BYTES)
    );
    assert_eq!(
        app.get("/api/v1/assessments", Some(&long)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // A body with a bad field: every problem at once.
    let bad = http
        .post(format!("{base}/api/v1/tokens"))
        .bearer_auth(API_TOKEN)
        .json(&json!({"role": "reader", "tenants": ["nope"], "expires": "yesterday"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let detail = bad.text().await.unwrap();
    assert!(
        detail.contains("nope") && detail.contains("expires"),
        "{detail}"
    );

    let metrics = app.metrics().await;
    assert_eq!(failures(&metrics, "revoked"), 1.0);
    assert_eq!(failures(&metrics, "expired"), 1.0);
    assert_eq!(failures(&metrics, "unknown_token"), 1.0);
    assert_eq!(failures(&metrics, "too_long"), 1.0);
    assert_eq!(failures(&metrics, "missing"), 0.0);
    assert!(!metrics.contains(secret));
}

fn postured() -> Command {
    Command::new(env!("CARGO_BIN_EXE_postured"))
}

/// `postured token create|list|revoke` on the demo configuration's store.
#[test]
fn the_cli_creates_lists_and_revokes_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("demo.db").display());
    let run = |args: &[&str]| {
        postured()
            .args(["token", "--config", "config/demo.toml"])
            .args(args)
            .env("POSTURED__STORE__URL", &db)
            .output()
            .unwrap()
    };
    let out = run(&[
        "create",
        "--role",
        "contributor",
        "--tenant",
        "contoso-demo",
        "--expires",
        "90d",
        "--name",
        "cli test",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut lines = stdout.lines();
    let token = lines.next().unwrap().to_string();
    let id = lines
        .next()
        .unwrap()
        .strip_prefix("id: ")
        .unwrap()
        .to_string();
    assert!(token.starts_with(&format!("pst_{id}_")));

    let out = run(&["list"]);
    assert!(out.status.success());
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["role"], "contributor");
    assert!(
        listed[0]["created_by"]
            .as_str()
            .unwrap()
            .starts_with("cli:")
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains(&token[token.len() - 20..]), "{text}");

    assert_eq!(run(&["revoke", &id]).status.code(), Some(0));
    assert_eq!(run(&["revoke", "0000000000000000"]).status.code(), Some(1));
    let out = run(&["list"]);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(listed[0]["revoked_at"].is_string());

    let bad = run(&[
        "create",
        "--role",
        "reader",
        "--tenant",
        "nope",
        "--expires",
        "soon",
    ]);
    assert_eq!(bad.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("nope") && stderr.contains("expires"),
        "{stderr}"
    );
}
