//! Real HTTP (wiremock on loopback) tests of the Graph connector: token, paging, throttling,
//! per-endpoint failures, malformed bodies and record/replay.

use std::time::{Duration, Instant};

use postured_connectors::msgraph::{
    MsGraphConfig, MsGraphConnector, MsGraphSnapshot, record_tenant,
};
use postured_connectors::record::{Mode, PersonalData, Recorder};
use postured_connectors::{Connector, ErrorKind, PollContext};
use secrecy::SecretString;
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TENANT: &str = "00000001-0001-0001-0001-000000000001";
const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsIng1dCI6Ik1uQ19WWmNBVGZNNXBP...";
const SECRET: &str = "qWgdYAmab0YSkuL1qKv5bPX";

fn fixture(rel: &str) -> String {
    std::fs::read_to_string(format!("{}/fixtures/{rel}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn json(status: u16, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.to_owned(), "application/json")
}

fn config(server: &MockServer) -> MsGraphConfig {
    let _ = rustls::crypto::ring::default_provider().install_default();
    MsGraphConfig {
        authority: server.uri(),
        graph_base: format!("{}/v1.0", server.uri()),
        request_timeout: Duration::from_secs(5),
        max_retries: 2,
        max_retry_wait: Duration::from_secs(2),
        ..MsGraphConfig::new(
            TENANT,
            "00001111-aaaa-2222-bbbb-3333cccc4444",
            SecretString::from(SECRET),
        )
    }
}

fn connector(cfg: MsGraphConfig) -> MsGraphConnector {
    MsGraphConnector::new(cfg, reqwest::Client::new()).unwrap()
}

async fn mount_token(server: &MockServer, expect: u64) {
    Mock::given(method("POST"))
        .and(path(format!("/{TENANT}/oauth2/v2.0/token")))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains(
            "scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
        ))
        .respond_with(json(
            200,
            &fixture("entra-oauth/token-response-success.json"),
        ))
        .expect(expect)
        .mount(server)
        .await;
}

/// (path (under /v1.0), fixture) of every endpoint: the one list in
/// `connectors/fixtures/msgraph/endpoints.tsv`.
fn endpoints() -> Vec<(String, String)> {
    fixture("msgraph/endpoints.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (p, f) = l.split_once('\t').expect("path<TAB>fixture");
            (format!("/v1.0{p}"), f.to_owned())
        })
        .collect()
}

/// Mount every endpoint with its official example, except the paths in `skip`.
async fn mount_graph_ok(server: &MockServer, skip: &[&str]) {
    for (p, f) in endpoints() {
        if skip.contains(&p.as_str()) {
            continue;
        }
        Mock::given(method("GET"))
            .and(path(p))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .respond_with(json(200, &fixture(&f)))
            .mount(server)
            .await;
    }
}

fn assert_all_ok(s: &MsGraphSnapshot) {
    assert!(s.errors().is_empty(), "errors: {:?}", s.errors());
    assert_eq!(
        s.secure_score
            .as_ref()
            .unwrap()
            .as_ref()
            .unwrap()
            .current_score,
        387.0
    );
    assert_eq!(s.control_profiles.as_ref().unwrap().len(), 1);
    assert_eq!(s.registration_details.as_ref().unwrap().len(), 3);
    assert_eq!(s.conditional_access.as_ref().unwrap().len(), 2);
    assert!(s.security_defaults.as_ref().unwrap().is_enabled);
    assert_eq!(s.sensitivity_labels.as_ref().unwrap().len(), 1);
}

#[tokio::test]
async fn happy_path_all_endpoints() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    mount_graph_ok(&server, &[]).await;
    let c = connector(config(&server));
    let s = c.snapshot().await;
    assert_all_ok(&s);
    // through the connector contract: normalised signals, no gaps
    let snap = c
        .poll(&PollContext {
            observed_at: chrono::Utc::now(),
        })
        .await;
    assert!(snap.gaps.is_empty() && snap.errors.is_empty() && !snap.signals.is_empty());
    let reqs = server.received_requests().await.unwrap();
    let ss = reqs
        .iter()
        .find(|r| r.url.path().ends_with("/secureScores"))
        .unwrap();
    assert_eq!(ss.url.query(), Some("$top=1"));
}

#[tokio::test]
async fn paging_follows_next_link_verbatim() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    mount_graph_ok(
        &server,
        &["/v1.0/reports/authenticationMethods/userRegistrationDetails"],
    )
    .await;
    let p = "/v1.0/reports/authenticationMethods/userRegistrationDetails";
    let next = format!("{}{p}?$skiptoken=X%274453707%27", server.uri());
    let page1 = format!(
        r#"{{"value": [{{"id": "u1", "isMfaRegistered": true, "isMfaCapable": true}}], "@odata.nextLink": "{next}"}}"#
    );
    let page2 = r#"{"value": [{"id": "u2", "isMfaRegistered": false, "isMfaCapable": false},
                              {"id": "u3", "isMfaRegistered": true, "isMfaCapable": false}]}"#;
    Mock::given(method("GET"))
        .and(path(p))
        .and(query_param("$skiptoken", "X'4453707'"))
        .respond_with(json(200, page2))
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(p))
        .respond_with(json(200, &page1))
        .expect(1)
        .with_priority(2)
        .mount(&server)
        .await;
    let s = connector(config(&server)).snapshot().await;
    let users = s.registration_details.unwrap();
    // Both pages, in order (u1, u2, u3 differ in these two flags).
    let flags: Vec<_> = users
        .iter()
        .map(|u| (u.is_mfa_registered, u.is_mfa_capable))
        .collect();
    assert_eq!(flags, [(true, true), (false, false), (true, false)]);
    let reqs = server.received_requests().await.unwrap();
    let second = reqs
        .iter()
        .find(|r| r.url.query().is_some_and(|q| q.contains("skiptoken")))
        .unwrap();
    assert_eq!(
        second.url.query(),
        Some("$skiptoken=X%274453707%27"),
        "nextLink sent verbatim"
    );
    assert!(
        second.headers.get("authorization").is_some(),
        "bearer sent on next pages"
    );
}

#[tokio::test]
async fn throttled_429_waits_fractional_retry_after() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    mount_graph_ok(&server, &["/v1.0/security/secureScoreControlProfiles"]).await;
    let p = "/v1.0/security/secureScoreControlProfiles";
    Mock::given(method("GET"))
        .and(path(p))
        .respond_with(
            json(429, &fixture("msgraph/error-429-throttled.json"))
                .insert_header("Retry-After", "0.3"),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(p))
        .respond_with(json(
            200,
            &fixture("msgraph/secureScoreControlProfiles-list.json"),
        ))
        .with_priority(2)
        .expect(1)
        .mount(&server)
        .await;
    let started = Instant::now();
    let s = connector(config(&server)).snapshot().await;
    let elapsed = started.elapsed();
    assert_all_ok(&s);
    assert!(
        elapsed >= Duration::from_millis(300),
        "retried after {elapsed:?}"
    );
}

#[tokio::test]
async fn throttled_after_budget_keeps_retry_after_and_code() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    let p = "/v1.0/identity/conditionalAccess/policies";
    mount_graph_ok(&server, &[p]).await;
    Mock::given(method("GET"))
        .and(path(p))
        .respond_with(
            json(429, &fixture("msgraph/error-429-throttled.json"))
                .insert_header("Retry-After", "0.05"),
        )
        .expect(3) // first attempt + max_retries (2)
        .mount(&server)
        .await;
    let s = connector(config(&server)).snapshot().await;
    let e = s.conditional_access.as_ref().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Throttled);
    assert_eq!(e.status, Some(429));
    assert_eq!(e.code.as_deref(), Some("TooManyRequests"));
    assert_eq!(e.retry_after, Some(Duration::from_millis(50)));
    assert_eq!(e.endpoint, "/identity/conditionalAccess/policies");
    assert_eq!(s.errors().len(), 1);
}

#[tokio::test]
async fn forbidden_on_one_endpoint_leaves_others_intact() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    let p = "/v1.0/reports/authenticationMethods/userRegistrationDetails";
    mount_graph_ok(&server, &[p]).await;
    let body = r#"{"error": {"code": "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
        "message": "Neither tenant is B2C or tenant doesn't have premium license",
        "innerError": {"date": "2024-01-01T00:00:00", "request-id": "r", "client-request-id": "c"}}}"#;
    Mock::given(method("GET"))
        .and(path(p))
        .respond_with(json(403, body))
        .expect(1) // 403 is not retried
        .mount(&server)
        .await;
    let s = connector(config(&server)).snapshot().await;
    let e = s.registration_details.as_ref().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    assert_eq!(e.status, Some(403));
    assert_eq!(
        e.code.as_deref(),
        Some("Authentication_RequestFromNonPremiumTenantOrB2CTenant")
    );
    assert_eq!(s.errors().len(), 1);
    assert!(s.secure_score.is_ok() && s.control_profiles.is_ok() && s.conditional_access.is_ok());
    assert!(s.security_defaults.is_ok() && s.sensitivity_labels.is_ok());
    assert!(s.token_error().is_none());
}

#[tokio::test]
async fn token_invalid_client_fails_every_endpoint_without_graph_calls() {
    let server = MockServer::start().await;
    let body = r#"{"error": "invalid_client",
        "error_description": "AADSTS7000222: The provided client secret keys for app '00001111-aaaa-2222-bbbb-3333cccc4444' are expired. Visit the Azure portal to create new keys for your app.\r\nTrace ID: 12345\r\nCorrelation ID: 6789\r\nTimestamp: 2024-02-03 03:07:11Z",
        "error_codes": [7000222], "timestamp": "2024-02-03 03:07:11Z", "trace_id": "12345",
        "correlation_id": "6789", "error_uri": "https://login.microsoftonline.com/error?code=7000222"}"#;
    Mock::given(method("POST"))
        .and(path(format!("/{TENANT}/oauth2/v2.0/token")))
        .respond_with(json(401, body))
        .expect(1) // not retried
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(json(200, "{}"))
        .expect(0)
        .mount(&server)
        .await;
    let s = connector(config(&server)).snapshot().await;
    let errs = s.errors();
    assert_eq!(errs.len(), MsGraphSnapshot::ENDPOINTS);
    for e in &errs {
        assert_eq!(e.kind, ErrorKind::Unauthorized);
        assert_eq!(e.status, Some(401));
        assert_eq!(e.code.as_deref(), Some("invalid_client AADSTS7000222"));
        assert!(e.message.contains("expired"), "{}", e.message);
        assert!(!e.message.contains(SECRET) && !format!("{e:?}").contains(SECRET));
    }
    assert!(s.token_error().is_some());
}

#[tokio::test]
async fn token_server_error_is_retried_then_classified() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "0.01"))
        .expect(3)
        .mount(&server)
        .await;
    let s = connector(config(&server)).snapshot().await;
    let e = s.token_error().unwrap();
    assert_eq!(e.kind, ErrorKind::Server);
    assert_eq!(e.status, Some(503));
}

#[tokio::test]
async fn token_cached_across_polls_and_token_url_override() {
    let server = MockServer::start().await;
    // oauth2-mock-server style: POST /token at the root
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(json(
            200,
            &fixture("entra-oauth/token-response-success.json"),
        ))
        .expect(1)
        .mount(&server)
        .await;
    mount_graph_ok(&server, &[]).await;
    let cfg = MsGraphConfig {
        token_url: Some(format!("{}/token", server.uri())),
        ..config(&server)
    };
    let c = connector(cfg);
    let (a, b) = tokio::join!(c.snapshot(), c.snapshot());
    assert_all_ok(&a);
    assert_all_ok(&b);
    assert_all_ok(&c.snapshot().await);
}

#[tokio::test]
async fn malformed_json_is_malformed() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    let p = "/v1.0/policies/identitySecurityDefaultsEnforcementPolicy";
    mount_graph_ok(&server, &[p]).await;
    Mock::given(method("GET"))
        .and(path(p))
        .respond_with(json(200, r#"{"isEnabled": tru"#))
        .expect(1)
        .mount(&server)
        .await;
    let s = connector(config(&server)).snapshot().await;
    assert_eq!(
        s.security_defaults.as_ref().unwrap_err().kind,
        ErrorKind::Malformed
    );
    assert_eq!(s.errors().len(), 1);
}

#[tokio::test]
async fn record_then_replay_round_trip() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    mount_graph_ok(&server, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let recorder = Recorder::new(dir.path(), PersonalData::Pseudonymise);
    let live = record_tenant(config(&server), reqwest::Client::new(), recorder)
        .await
        .unwrap();
    assert_all_ok(&live);
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), MsGraphSnapshot::ENDPOINTS, "{names:?}");
    assert!(names.contains(&"v1.0_security_secureScores__top=1.json".to_owned()));
    for n in &names {
        let text = std::fs::read_to_string(dir.path().join(n)).unwrap();
        assert!(!text.contains(TOKEN) && !text.contains(SECRET) && !text.contains("Bearer"));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["status"], 200);
        assert!(v["request"].as_str().unwrap().starts_with("GET /v1.0/"));
    }
    drop(server); // replay must not need the network

    let replay = MsGraphConnector::new(
        MsGraphConfig::replay(TENANT, dir.path()),
        reqwest::Client::new(),
    )
    .unwrap();
    assert_all_ok(&replay.snapshot().await);

    // a missing recording is its own error kind; the others still replay
    std::fs::remove_file(
        dir.path()
            .join("v1.0_identity_conditionalAccess_policies.json"),
    )
    .unwrap();
    let s = replay.snapshot().await;
    assert_eq!(
        s.conditional_access.unwrap_err().kind,
        ErrorKind::ReplayMissing
    );
    assert!(s.security_defaults.is_ok());
}

#[tokio::test]
async fn replay_serves_edited_status() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("v1.0_security_dataSecurityAndGovernance_sensitivityLabels.json"),
        r#"{"request": "GET /v1.0/security/dataSecurityAndGovernance/sensitivityLabels", "status": 403,
            "body": {"error": {"code": "Authorization_RequestDenied", "message": "Insufficient privileges"}}}"#,
    )
    .unwrap();
    let cfg = MsGraphConfig {
        mode: Mode::Replay(dir.path().into()),
        ..MsGraphConfig::replay(TENANT, "")
    };
    let s = MsGraphConnector::new(cfg, reqwest::Client::new())
        .unwrap()
        .snapshot()
        .await;
    let e = s.sensitivity_labels.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    assert_eq!(e.code.as_deref(), Some("Authorization_RequestDenied"));
    assert_eq!(s.secure_score.unwrap_err().kind, ErrorKind::ReplayMissing);
}

#[tokio::test]
async fn demo_recordings_replay_all_endpoints() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = format!("{}/../config/demo/msgraph", env!("CARGO_MANIFEST_DIR"));
    let c =
        MsGraphConnector::new(MsGraphConfig::replay("demo", dir), reqwest::Client::new()).unwrap();
    let s = c.snapshot().await;
    assert!(s.errors().is_empty(), "errors: {:?}", s.errors());
    assert_eq!(s.secure_score.unwrap().unwrap().max_score, 697.0);
    assert!(
        s.control_profiles
            .unwrap()
            .iter()
            .any(|p| p.id == "DLPEnabled")
    );
    assert_eq!(s.registration_details.unwrap().len(), 3);
}

#[test]
fn config_debug_redacts_secret() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cfg = MsGraphConfig::new(TENANT, "app", SecretString::from(SECRET));
    let dbg = format!("{cfg:?}");
    assert!(!dbg.contains(SECRET) && dbg.contains("[redacted]"));
    assert_eq!(
        cfg.resolved_token_url(),
        format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token")
    );
    let c = MsGraphConnector::new(cfg, reqwest::Client::new()).unwrap();
    assert!(!format!("{c:?}").contains(SECRET));
}
