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

    // Creation and revocation are in the audit log, with who did it; never the secret.
    let audit = app
        .get("/api/v1/audit?action=token.create", Some(API_TOKEN))
        .await
        .text()
        .await
        .unwrap();
    let page: Value = serde_json::from_str(&audit).unwrap();
    let created_row = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["object"] == format!("token:{id}"))
        .unwrap_or_else(|| panic!("token.create row: {audit}"));
    assert_eq!(created_row["actor"], "api_token");
    assert_eq!(created_row["new_value"]["role"], "assessor");
    assert!(!audit.contains(secret), "{audit}");
    assert!(!audit.contains(&hex::encode(stored.secret_sha256)));
    let revoked: Value = app
        .get("/api/v1/audit?action=token.revoke", Some(API_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    let rows = revoked["entries"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "revoked twice, audited once: {revoked}");
    assert_eq!(rows[0]["object"], format!("token:{id}"));
    assert_eq!(rows[0]["field"], "revoked_at");

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

    // Both changes are in the audit log, by the CLI's user.
    let out = postured()
        .args([
            "audit",
            "export",
            "--config",
            "config/demo.toml",
            "--format",
            "json",
        ])
        .env("POSTURED__STORE__URL", &db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let audit = String::from_utf8(out.stdout).unwrap();
    assert!(
        audit.contains("token.create") && audit.contains("token.revoke"),
        "{audit}"
    );
    assert!(
        audit.contains(&format!("token:{id}")) && audit.contains("cli:"),
        "{audit}"
    );
    assert!(!audit.contains(&token[token.len() - 20..]), "{audit}");

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

/// A token of the real OAuth2 server (oauth2-mock-server, scripts/test.sh) with `claims`
/// merged over its defaults (tests/support/oauth2/server.mjs).
async fn idp_token(oauth: &str, claims: Value) -> String {
    let resp: Value = client()
        .post(format!("{oauth}/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "postured-test"),
            ("client_secret", "not-a-secret"),
            ("postured_claims", &claims.to_string()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    resp["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

#[tokio::test]
async fn jwts_of_a_real_oauth2_server_authenticate_with_their_mapped_role() {
    let Some(oauth) = std::env::var("POSTURED_TEST_OAUTH2_URL").ok() else {
        assert!(
            !servers_required(),
            "POSTURED_TEST_OAUTH2_URL is required (scripts/test.sh starts it)"
        );
        eprintln!("skipped: POSTURED_TEST_OAUTH2_URL not set (run scripts/test.sh)");
        return;
    };
    let app = app_with(&format!(
        r#"
[server.oidc]
issuer = "{oauth}"
audience = "api://postured-test"
roles = {{ "Postured.Read" = "reader", "Postured.Admin" = "administrator" }}
tenant_claim = "postured_tenants"
"#
    ))
    .await;
    let aud = "api://postured-test";
    let now = Utc::now().timestamp();
    let reader = idp_token(&oauth, json!({"aud": aud, "sub": "alice", "roles": ["Postured.Read"], "postured_tenants": ["contoso"]})).await;
    let admin = idp_token(&oauth, json!({"aud": aud, "sub": "bob", "roles": ["Other", "Postured.Admin"], "postured_tenants": ["contoso"]})).await;
    let elsewhere = idp_token(&oauth, json!({"aud": aud, "sub": "carol", "roles": "Postured.Admin", "postured_tenants": ["fabrikam"]})).await;
    let no_role = idp_token(
        &oauth,
        json!({"aud": aud, "sub": "dave", "roles": ["Other"]}),
    )
    .await;
    let wrong_audience = idp_token(&oauth, json!({"roles": ["Postured.Admin"]})).await;
    let expired = idp_token(&oauth, json!({"aud": aud, "roles": ["Postured.Admin"], "exp": now - 3600, "iat": now - 7200, "nbf": now - 7200})).await;

    let status = |token: String, path: &'static str| {
        let app = &app;
        async move { app.get(path, Some(&token)).await.status() }
    };
    assert_eq!(
        status(reader.clone(), "/api/v1/assessments").await,
        StatusCode::OK
    );
    assert_eq!(
        status(reader.clone(), "/api/v1/tokens").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(reader.clone(), "/api/v1/tenants/contoso/transitions").await,
        StatusCode::OK
    );
    // A tenant claim naming another tenant keeps the caller out of contoso: a read outside the
    // caller's scope is answered as if the tenant did not exist.
    assert_eq!(
        status(elsewhere, "/api/v1/tenants/contoso/transitions").await,
        StatusCode::NOT_FOUND
    );
    // Scoped to a tenant, an administrator still may not manage tokens.
    assert_eq!(
        status(admin.clone(), "/api/v1/tokens").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(status(admin, "/api/v1/report").await, StatusCode::OK);
    assert_eq!(
        status(no_role, "/api/v1/report").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(wrong_audience, "/api/v1/report").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(expired, "/api/v1/report").await,
        StatusCode::UNAUTHORIZED
    );
    // A forged signature: the reader's token with its payload changed to the admin role.
    let mut parts: Vec<String> = reader.split('.').map(str::to_string).collect();
    {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut payload: Value = serde_json::from_slice(&b64.decode(&parts[1]).unwrap()).unwrap();
        payload["roles"] = json!(["Postured.Admin"]);
        payload.as_object_mut().unwrap().remove("postured_tenants");
        parts[1] = b64.encode(payload.to_string());
    }
    assert_eq!(
        status(parts.join("."), "/api/v1/tokens").await,
        StatusCode::UNAUTHORIZED
    );
    // The shared token still works beside OIDC.
    assert_eq!(
        status(API_TOKEN.to_string(), "/api/v1/tokens").await,
        StatusCode::OK
    );

    let metrics = app.metrics().await;
    assert_eq!(failures(&metrics, "no_role"), 1.0);
    assert_eq!(failures(&metrics, "jwt_expired"), 1.0);
    assert_eq!(
        failures(&metrics, "jwt_invalid"),
        2.0,
        "wrong audience, forged"
    );
    assert_eq!(failures(&metrics, "jwks_unavailable"), 0.0);
}

/// An identity provider that cannot be reached: JWTs are answered 503 (no key set was ever
/// fetched), API tokens and the shared token keep working.
#[tokio::test]
async fn an_unreachable_identity_provider_makes_jwts_unavailable_not_other_tokens() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let app = app_with(&format!(
        "[server.oidc]\nissuer = \"{dead}\"\naudience = \"a\"\nroles = {{ \"r\" = \"reader\" }}\n"
    ))
    .await;
    let jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.eyJzdWIiOiJ4In0.c2ln";
    assert_eq!(
        app.get("/api/v1/report", Some(jwt)).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        app.get("/api/v1/report", Some(API_TOKEN)).await.status(),
        StatusCode::OK
    );
    assert_eq!(failures(&app.metrics().await, "jwks_unavailable"), 1.0);
}
