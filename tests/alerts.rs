//! End-to-end tests of regression detection and alert delivery: wiremock stands in for
//! Microsoft Graph, the app polls it through `App::poll`, and the outbox delivery task delivers
//! to a **real Prometheus Alertmanager** on loopback (`POSTURED_TEST_ALERTMANAGER_URL`, started
//! by scripts/test.sh; the Alertmanager test is skipped with a note when it is not set, and fails
//! when `POSTURED_REQUIRE_TEST_SERVERS` is set) and to wiremock webhook receivers.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use hmac::{Hmac, Mac};
use postured::alerts::EventKind;
use postured::app::App;
use postured::app::delivery::Delivery;
use postured::config::Config;
use postured::evaluation::TestStatus;
use serde_json::Value;
use sha2::Sha256;
use support::*;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const GUID: &str = "00000001-0001-0001-0001-000000000002c";
const MFA_PATH: &str = "/v1.0/reports/authenticationMethods/userRegistrationDetails";
/// The action the tests flip: self-service password reset registration (only it reads
/// `isSsprRegistered`, so exactly one action regresses).
const MFA_ACTION: &str = "msgraph.mfa.sspr";

/// A tenant id unique to this run (Alertmanager is shared by every test of a run).
fn unique_tenant(prefix: &str) -> String {
    let n = Utc::now().timestamp_micros() % 1_000_000_000;
    format!("{prefix}-{}-{n}", std::process::id())
}

/// (Re)mount Graph: the official examples, with every user registered for self-service
/// password reset (`true`: the SSPR action passes) or none (`false`: it fails).
async fn mount_graph(graph: &MockServer, mfa_registered: bool) {
    graph.reset().await;
    mount_token_ok(graph, GUID).await;
    mount_graph_examples(graph).await;
    let body = if mfa_registered {
        fixture("msgraph/userRegistrationDetails-list.json")
            .replace("\"isSsprRegistered\": false", "\"isSsprRegistered\": true")
    } else {
        fixture("msgraph/userRegistrationDetails-list.json")
            .replace("\"isSsprRegistered\": true", "\"isSsprRegistered\": false")
    };
    Mock::given(method("GET"))
        .and(path(MFA_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
        .with_priority(1)
        .mount(graph)
        .await;
}

fn delivery(app: &App) -> Delivery {
    Delivery::new(
        app.store.clone(),
        app.config.alerts.clone(),
        postured::http::http_client().expect("client"),
        app.metrics.clone(),
    )
}

fn status_of(report: &postured::app::PollReport, id: &str) -> TestStatus {
    report
        .evaluation
        .actions
        .iter()
        .find(|a| a.action_id == id)
        .map(|a| a.test_status)
        .unwrap_or_else(|| panic!("action {id} missing"))
}

fn points_of(report: &postured::app::PollReport, id: &str) -> f64 {
    report
        .evaluation
        .actions
        .iter()
        .find(|a| a.action_id == id)
        .map(|a| a.points_possible)
        .unwrap_or_else(|| panic!("action {id} missing"))
}

fn alertmanager_url() -> Option<String> {
    match std::env::var("POSTURED_TEST_ALERTMANAGER_URL") {
        Ok(u) if !u.trim().is_empty() => Some(u.trim_end_matches('/').to_owned()),
        _ => {
            assert!(
                !servers_required(),
                "POSTURED_TEST_ALERTMANAGER_URL must be set when POSTURED_REQUIRE_TEST_SERVERS is"
            );
            eprintln!(
                "note: POSTURED_TEST_ALERTMANAGER_URL is not set; skipping the real Alertmanager test (scripts/test.sh starts one)"
            );
            None
        }
    }
}

/// Alerts of `tenant` in Alertmanager (`GET /api/v2/alerts`, every state).
async fn alertmanager_alerts(am: &str, tenant: &str) -> Vec<Value> {
    let url = format!("{am}/api/v2/alerts");
    let resp = reqwest::Client::new()
        .get(url)
        .query(&[("filter", format!("tenant=\"{tenant}\""))])
        .send()
        .await
        .expect("GET /api/v2/alerts");
    assert!(resp.status().is_success(), "{}", resp.status());
    resp.json::<Vec<Value>>().await.expect("alerts JSON")
}

fn is_active(alert: &Value) -> bool {
    let ends_at = alert["endsAt"]
        .as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc));
    alert["status"]["state"] == "active" && ends_at.is_some_and(|t| t > Utc::now())
}

#[tokio::test]
async fn pass_fail_fail_pass_fires_and_resolves_exactly_one_alert_in_a_real_alertmanager() {
    let Some(am) = alertmanager_url() else { return };
    postured::http::install_crypto_provider();
    let tenant = unique_tenant("am");
    let graph = MockServer::start().await;
    mount_graph(&graph, true).await;
    let extra = format!(
        r#"
[alerts]
debounce_observations = 2
[[alerts.notifiers]]
name = "am"
kind = "alertmanager"
url = "{am}"
timeout = "5s"
[[alerts.routes]]
kinds = ["regression"]
notifiers = ["am"]
"#
    );
    let app = TestApp::spawn(
        &extra,
        &tenant_block(&tenant, GUID, "client-1", &graph.uri(), "0 0 * * * *"),
    )
    .await;
    let delivery = delivery(&app.app);

    // pass
    let r = app.poll(&tenant).await;
    assert_eq!(status_of(&r, MFA_ACTION), TestStatus::Passed);
    let points = points_of(&r, MFA_ACTION);
    delivery.round(Utc::now(), None).await.unwrap();
    assert!(alertmanager_alerts(&am, &tenant).await.is_empty());

    // fail: inside the debounce window, nothing yet
    mount_graph(&graph, false).await;
    let r = app.poll(&tenant).await;
    assert_eq!(status_of(&r, MFA_ACTION), TestStatus::FailedLowRisk);
    let d = delivery.round(Utc::now(), None).await.unwrap();
    assert_eq!(d.delivered, 0);
    assert!(alertmanager_alerts(&am, &tenant).await.is_empty());

    // fail again: one regression, one firing alert
    app.poll(&tenant).await;
    let d = delivery.round(Utc::now(), None).await.unwrap();
    assert_eq!(d.delivered, 1, "{d:?}");
    let alerts = alertmanager_alerts(&am, &tenant).await;
    assert_eq!(alerts.len(), 1, "exactly one alert: {alerts:#?}");
    let a = &alerts[0];
    assert!(is_active(a), "firing: {a:#}");
    assert_eq!(a["labels"]["alertname"], "PosturedActionRegression");
    assert_eq!(a["labels"]["action"], MFA_ACTION);
    assert_eq!(a["labels"]["severity"], "info", "low-risk failure");
    assert_eq!(a["labels"]["kind"], "regression");
    assert_eq!(a["annotations"]["points_lost"], format!("{points:.2}"));
    assert_eq!(a["annotations"]["old_status"], "passed");
    assert_eq!(a["annotations"]["new_status"], "failed_low_risk");
    eprintln!("firing alert in Alertmanager: {a:#}");

    // Re-posting the firing alert (as the task does every resend_interval) keeps it one alert.
    delivery.resend_firing(Utc::now()).await.unwrap();
    let alerts = alertmanager_alerts(&am, &tenant).await;
    assert_eq!(alerts.len(), 1);
    assert!(is_active(&alerts[0]));

    // pass: one recovery resolves it
    mount_graph(&graph, true).await;
    let r = app.poll(&tenant).await;
    assert_eq!(status_of(&r, MFA_ACTION), TestStatus::Passed);
    let d = delivery.round(Utc::now(), None).await.unwrap();
    assert_eq!(d.delivered, 1, "{d:?}");
    let alerts = alertmanager_alerts(&am, &tenant).await;
    assert!(alerts.len() <= 1, "{alerts:#?}");
    assert!(
        alerts.iter().all(|a| !is_active(a)),
        "resolved after recovery: {alerts:#?}"
    );
    if let Some(a) = alerts.first() {
        eprintln!("resolved alert in Alertmanager: {a:#}");
    } else {
        eprintln!("resolved alert no longer listed by Alertmanager");
    }
    // Nothing is left firing to re-post.
    assert!(app.app.store.firing_alerts("am").await.unwrap().is_empty());

    // The ledger: exactly one regression and one recovery, both delivered once.
    let events = app
        .app
        .store
        .alert_events(&tenant, None, None)
        .await
        .unwrap();
    let kinds: Vec<EventKind> = events.iter().map(|e| e.event.kind).collect();
    assert_eq!(kinds, [EventKind::Regression, EventKind::Recovery]);
    let m = app.metrics().await;
    let series = |name: &str| format!("{name}{{action=\"{MFA_ACTION}\",tenant=\"{tenant}\"}}");
    assert_eq!(
        sample(&m, &series("postured_action_regressions_total")),
        Some(1.0)
    );
    assert_eq!(
        sample(&m, &series("postured_action_recoveries_total")),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            "postured_alerts_delivered_total{notifier=\"am\",outcome=\"success\"}"
        ),
        Some(2.0)
    );
    assert_eq!(sample(&m, "postured_alert_outbox_pending"), Some(0.0));
}

/// A webhook receiver on wiremock; returns the server.
async fn hook_server(status: u16) -> MockServer {
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(status))
        .mount(&hook)
        .await;
    hook
}

fn webhook_alerts(hook: &str, key_file: &std::path::Path, kinds: &str) -> String {
    format!(
        r#"
[alerts]
debounce_observations = 2
[alerts.delivery]
backoff_initial = "1s"
backoff_max = "2s"
interval = "100ms"
[[alerts.notifiers]]
name = "hook"
kind = "webhook"
url = "{hook}/hook"
secret = {{ file = "{key}" }}
timeout = "5s"
[[alerts.routes]]
kinds = [{kinds}]
notifiers = ["hook"]
"#,
        key = key_file.display()
    )
}

#[tokio::test]
async fn webhook_is_signed_with_hmac_sha256_and_retried_after_a_5xx() {
    postured::http::install_crypto_provider();
    let graph = MockServer::start().await;
    mount_graph(&graph, true).await;
    let hook = hook_server(503).await;
    let keydir = tempfile::tempdir().unwrap();
    let key_file = keydir.path().join("hook.key");
    let secret = "correct horse battery staple";
    std::fs::write(&key_file, format!("{secret}\n")).unwrap();
    let app = TestApp::spawn(
        &webhook_alerts(&hook.uri(), &key_file, "\"regression\""),
        &tenant_block("hooked", GUID, "client-1", &graph.uri(), "0 0 * * * *"),
    )
    .await;
    let delivery = delivery(&app.app);
    let points = points_of(&app.poll("hooked").await, MFA_ACTION);
    mount_graph(&graph, false).await;
    app.poll("hooked").await;
    app.poll("hooked").await;

    // The receiver answers 503: the attempt is recorded and retried later.
    let now = Utc::now();
    let d = delivery.round(now, None).await.unwrap();
    assert_eq!((d.delivered, d.retried), (0, 1), "{d:?}");
    assert_eq!(app.app.store.pending_notifications().await.unwrap(), 1);
    let d = delivery.round(now, None).await.unwrap();
    assert_eq!(d, Default::default(), "not due before its backoff");

    hook.reset().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&hook)
        .await;
    let d = delivery
        .round(now + chrono::Duration::seconds(10), None)
        .await
        .unwrap();
    assert_eq!(d.delivered, 1, "{d:?}");

    let requests = hook.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    let sig = req
        .headers
        .get("x-postured-signature")
        .and_then(|v| v.to_str().ok())
        .expect("signature header");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&req.body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        sig,
        format!("sha256={expected}"),
        "HMAC-SHA256 of the raw body"
    );
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["status"], "firing");
    assert_eq!(body["event"]["kind"], "regression");
    assert_eq!(body["event"]["action_id"], MFA_ACTION);
    assert_eq!(body["event"]["points_lost"], points);
    assert_eq!(body["event"]["old_status"], "passed");
    assert!(
        body["event"]["signals"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    );
    assert_eq!(
        req.headers
            .get("x-postured-delivery")
            .and_then(|v| v.to_str().ok()),
        body["dedup_key"].as_str()
    );
    // The secret never reaches the payload or the stored rows.
    assert!(!String::from_utf8_lossy(&req.body).contains(secret));
    let m = app.metrics().await;
    assert_eq!(
        sample(
            &m,
            "postured_alerts_delivered_total{notifier=\"hook\",outcome=\"retry\"}"
        ),
        Some(1.0)
    );
}

/// Build a second app (a restarted daemon) on the same SQLite file and config text.
async fn restarted(db: &std::path::Path, extra: &str, tenants: &str) -> Arc<App> {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[store]\nurl = \"sqlite://{}\"\n{extra}\n{tenants}",
        db.display()
    );
    let env = |k: &str| (k == "TEST_CLIENT_SECRET").then(|| "not-a-real-secret".to_owned());
    let cfg = Config::parse(&text, &[], &env).unwrap_or_else(|p| panic!("config: {p:?}"));
    Arc::new(
        postured::assembly::build_app(cfg)
            .await
            .expect("app builds"),
    )
}

#[tokio::test]
async fn undelivered_notifications_and_debounce_state_survive_a_restart() {
    postured::http::install_crypto_provider();
    let graph = MockServer::start().await;
    mount_graph(&graph, true).await;
    let hook = hook_server(503).await;
    let keydir = tempfile::tempdir().unwrap();
    let key_file = keydir.path().join("hook.key");
    std::fs::write(&key_file, "k").unwrap();
    let extra = webhook_alerts(&hook.uri(), &key_file, "\"regression\"");
    let tenants = tenant_block("restart", GUID, "client-1", &graph.uri(), "0 0 * * * *");
    let first = TestApp::spawn(&extra, &tenants).await;
    let db = first.dir.path().join("postured.db");

    first.poll("restart").await;
    mount_graph(&graph, false).await;
    first.poll("restart").await;
    first.poll("restart").await;
    let d = delivery(&first.app).round(Utc::now(), None).await.unwrap();
    assert_eq!(d.retried, 1, "the receiver is down: {d:?}");
    first.cancel.cancel();

    // "Restart": a new app and a new delivery task on the same database; the receiver is back.
    hook.reset().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hook)
        .await;
    let second = restarted(&db, &extra, &tenants).await;
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    postured::app::tasks::spawn(second.background(), &cancel, &tracker).unwrap();
    tracker.close();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while second.store.pending_notifications().await.unwrap() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pending notification was not delivered after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let received = hook.received_requests().await.unwrap();
    assert_eq!(received.len(), 1, "delivered once after the restart");
    let body: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(body["event"]["kind"], "regression");

    // The detector state survived too: still failing is no second regression; passing is one
    // recovery.
    let t = second.tenant("restart").unwrap().clone();
    second.poll(&t, 0).await;
    mount_graph(&graph, true).await;
    second.poll(&t, 0).await;
    let kinds: Vec<EventKind> = second
        .store
        .alert_events("restart", None, None)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event.kind)
        .collect();
    assert_eq!(kinds, [EventKind::Regression, EventKind::Recovery]);
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), tracker.wait())
        .await
        .expect("tasks stop on cancel");
}

#[tokio::test]
async fn golden_5_an_expired_signal_is_one_staleness_notification_and_no_regression() {
    postured::http::install_crypto_provider();
    const ACTION: &str = "msgraph.security_defaults.baseline";
    const POLICY: &str = "/v1.0/policies/identitySecurityDefaultsEnforcementPolicy";
    let graph = MockServer::start().await;
    mount_graph(&graph, true).await;
    let hook = hook_server(200).await;
    let keydir = tempfile::tempdir().unwrap();
    let key_file = keydir.path().join("hook.key");
    std::fs::write(&key_file, "k").unwrap();
    // One poll per second and signals that live one poll: a value expires one second after
    // it was collected.
    let tenants = format!(
        r#"
[[tenants]]
id = "stale"
  [[tenants.connectors]]
  kind = "msgraph"
  schedule = "* * * * * *"
  poll_timeout = "2s"
  tenant_id = "{GUID}"
  client_id = "client-1"
  client_secret = {{ env = "TEST_CLIENT_SECRET" }}
  authority = "{g}"
  graph_base = "{g}/v1.0"
  request_timeout = "1s"
  max_retries = 0
"#,
        g = graph.uri()
    );
    // `signal_ttl_polls` lands in the harness's [scheduler] section.
    let extra = format!(
        "signal_ttl_polls = 1\n{}",
        webhook_alerts(
            &hook.uri(),
            &key_file,
            "\"regression\", \"stale\", \"collection_error\"",
        )
    );
    let app = TestApp::spawn(&extra, &tenants).await;
    let delivery = delivery(&app.app);
    let r = app.poll("stale").await;
    assert_eq!(status_of(&r, ACTION), TestStatus::Passed);

    // The policy endpoint starts failing; the last good value stands until it expires.
    Mock::given(method("GET"))
        .and(path(POLICY))
        .respond_with(ResponseTemplate::new(503))
        .with_priority(1)
        .mount(&graph)
        .await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = app.poll("stale").await;
    let a = r
        .evaluation
        .actions
        .iter()
        .find(|a| a.action_id == ACTION)
        .unwrap();
    assert_eq!(a.test_status, TestStatus::CouldNotBeDetected, "{a:?}");
    assert_eq!(a.points_achieved, 0.0);
    assert!(
        a.reason
            .as_deref()
            .unwrap_or_default()
            .contains("expired at"),
        "{a:?}"
    );
    // Still stale on the next poll: no second notification, no regression ever.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.poll("stale").await;
    delivery.round(Utc::now(), None).await.unwrap();

    let events = app
        .app
        .store
        .alert_events("stale", Some(ACTION), None)
        .await
        .unwrap();
    let kinds: Vec<EventKind> = events.iter().map(|e| e.event.kind).collect();
    assert_eq!(
        kinds,
        [EventKind::Stale],
        "one staleness event, no regression"
    );
    let all = app
        .app
        .store
        .alert_events("stale", None, None)
        .await
        .unwrap();
    assert!(
        all.iter().all(|e| e.event.kind != EventKind::Regression),
        "no regression of any action: {all:?}"
    );
    let received = hook.received_requests().await.unwrap();
    let stale: Vec<Value> = received
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
        .filter(|b| b["event"]["action_id"] == ACTION)
        .collect();
    assert_eq!(stale.len(), 1, "{stale:#?}");
    assert_eq!(stale[0]["event"]["kind"], "stale");
    assert_eq!(stale[0]["status"], "firing");
    let m = app.metrics().await;
    assert_eq!(
        sample(
            &m,
            "postured_signal_stale{connector=\"msgraph\",tenant=\"stale\"}"
        ),
        Some(1.0)
    );
}

/// Golden vector 6 end to end: pass, fail, pass inside the debounce window (2 observations)
/// goes through the daemon's polls, the detector, the outbox and the delivery task, and no
/// notification of any kind reaches the receiver.
#[tokio::test]
async fn golden_6_a_flap_inside_the_debounce_window_notifies_nobody() {
    postured::http::install_crypto_provider();
    let graph = MockServer::start().await;
    mount_graph(&graph, true).await;
    let hook = hook_server(204).await;
    let keydir = tempfile::tempdir().unwrap();
    let key_file = keydir.path().join("hook.key");
    std::fs::write(&key_file, "flap-secret\n").unwrap();
    let app = TestApp::spawn(
        &webhook_alerts(&hook.uri(), &key_file, ""),
        &tenant_block("flappy", GUID, "client-1", &graph.uri(), "0 0 * * * *"),
    )
    .await;
    let delivery = delivery(&app.app);

    assert_eq!(
        status_of(&app.poll("flappy").await, MFA_ACTION),
        TestStatus::Passed
    );
    mount_graph(&graph, false).await;
    assert!(status_of(&app.poll("flappy").await, MFA_ACTION).is_failed());
    mount_graph(&graph, true).await;
    assert_eq!(
        status_of(&app.poll("flappy").await, MFA_ACTION),
        TestStatus::Passed
    );

    let d = delivery
        .round(Utc::now() + chrono::Duration::seconds(10), None)
        .await
        .unwrap();
    assert_eq!(d, Default::default(), "nothing to deliver: {d:?}");
    assert_eq!(app.app.store.pending_notifications().await.unwrap(), 0);
    assert!(hook.received_requests().await.unwrap().is_empty());
    // The flap is still in the ledger: both transitions are stored.
    let history = app
        .app
        .store
        .transitions("flappy", Some(MFA_ACTION), None)
        .await
        .unwrap();
    assert_eq!(history.len(), 3, "{history:?}");
    let m = app.metrics().await;
    assert_eq!(
        sample(
            &m,
            &format!(
                "postured_action_regressions_total{{action=\"{MFA_ACTION}\",tenant=\"flappy\"}}"
            )
        ),
        Some(0.0)
    );

    // The same route does deliver once the failure persists for the window.
    mount_graph(&graph, false).await;
    app.poll("flappy").await;
    app.poll("flappy").await;
    let d = delivery
        .round(Utc::now() + chrono::Duration::seconds(20), None)
        .await
        .unwrap();
    assert_eq!(d.delivered, 1, "{d:?}");
    let body: Value =
        serde_json::from_slice(&hook.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(body["event"]["kind"], "regression");
}
