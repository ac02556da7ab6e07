//! End-to-end tests of the daemon: real HTTP over loopback, a real SQLite file, wiremock for
//! Microsoft Graph and the Entra token endpoint, a real OAuth2 server (oauth2-mock-server) and
//! a real `promtool` where scripts/test.sh provides them.

mod support;

use std::time::{Duration, Instant};

use postured::evaluation::TestStatus;
use postured::store::PollOutcome;
use support::*;
use wiremock::matchers::{header_regex, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const GUID: &str = "00000001-0001-0001-0001-000000000001c";

async fn graph_with_examples() -> MockServer {
    let graph = MockServer::start().await;
    mount_token_ok(&graph, GUID).await;
    mount_graph_examples(&graph).await;
    graph
}

fn action<'a>(
    eval: &'a postured::evaluation::TenantEvaluation,
    id: &str,
) -> &'a postured::evaluation::ActionResult {
    eval.actions
        .iter()
        .find(|a| a.action_id == id)
        .unwrap_or_else(|| panic!("action {id} missing"))
}

#[tokio::test]
async fn first_poll_scores_the_official_examples_and_serves_metrics() {
    let graph = graph_with_examples().await;
    let app = TestApp::spawn(
        "",
        &tenant_block("contoso", GUID, "client-1", &graph.uri(), "0 0 * * * *"),
    )
    .await;

    let report = app.poll("contoso").await;
    assert_eq!(
        report.outcome,
        PollOutcome::Success,
        "errors: {:?}",
        report.errors
    );
    assert!(report.stored);
    let eval = &report.evaluation;

    // 2 of the 3 users in the official example are registered for MFA: partial credit 2/3.
    let mfa = action(eval, "msgraph.mfa.all_users");
    assert_eq!(mfa.test_status, TestStatus::PartiallyTested);
    assert!(
        (mfa.points_achieved - 27.0 * 2.0 / 3.0).abs() < 1e-9,
        "{mfa:?}"
    );
    // Nobody in the example is an admin: not applicable, out of both sums.
    let admins = action(eval, "msgraph.mfa.admins");
    assert_eq!(admins.test_status, TestStatus::OutOfScope);
    assert_eq!(admins.points_possible, 0.0);
    // Security defaults are on in the example.
    assert_eq!(
        action(eval, "msgraph.security_defaults.baseline").test_status,
        TestStatus::Passed
    );
    // Secure Score control profiles become actions (DLPEnabled: 20 of 20).
    assert!(eval.actions.iter().any(
        |a| a.action_id.starts_with("securescore.") || a.action_id == "msgraph.securescore.dlp"
    ));

    // The overall score is the sum over actions, never a mean.
    let achieved: f64 = eval.actions.iter().map(|a| a.points_achieved).sum();
    let possible: f64 = eval.actions.iter().map(|a| a.points_possible).sum();
    assert!((eval.score.points_achieved - achieved).abs() < 1e-9);
    assert!((eval.score.points_possible - possible).abs() < 1e-9);
    assert!((eval.score.ratio - achieved / possible).abs() < 1e-12);
    assert!(eval.actions.len() >= 15);

    let m = app.metrics().await;
    let ratio = sample(&m, "postured_compliance_score_ratio{tenant=\"contoso\"}").unwrap();
    assert!(
        (ratio - eval.score.ratio).abs() < 1e-9,
        "{ratio} vs {}",
        eval.score.ratio
    );
    assert_eq!(
        sample(
            &m,
            "postured_compliance_points_possible{tenant=\"contoso\"}"
        )
        .unwrap(),
        possible
    );
    let mfa_metric = sample(
        &m,
        "postured_action_points_achieved{action=\"msgraph.mfa.all_users\",tenant=\"contoso\"}",
    )
    .unwrap();
    assert!((mfa_metric - 18.0).abs() < 1e-9);
    assert_eq!(
        sample(
            &m,
            "postured_connector_polls_total{connector=\"msgraph\",outcome=\"success\",tenant=\"contoso\"}"
        ),
        Some(1.0)
    );
    assert!(sample(&m, "postured_connector_last_success_timestamp_seconds{connector=\"msgraph\",tenant=\"contoso\"}").unwrap() > 1.7e9);
    assert!(m.contains("postured_category_points_achieved{category="));
    assert!(m.contains("postured_connector_poll_duration_seconds_bucket{connector=\"msgraph\""));
    assert!(m.contains("postured_build_info{version="));
}

#[tokio::test]
async fn assessments_share_technical_instances_and_take_manual_statuses_from_the_next_poll() {
    use postured::model::report::{AssessmentStatus, TestingSource};
    use postured::model::{InstanceScope, ManualUpdate};

    let graph = graph_with_examples().await;
    let extra = r#"
[[groups]]
id = "eu"
[[assessments]]
id = "contoso-iso"
tenant = "contoso"
template = "iso-27001-2022"
group = "eu"
[[assessments]]
id = "contoso-gdpr"
tenant = "contoso"
template = "gdpr"
group = "eu"
"#;
    let app = TestApp::spawn(
        extra,
        &tenant_block("contoso", GUID, "client-1", &graph.uri(), "0 0 * * * *"),
    )
    .await;
    let report = app.poll("contoso").await;
    let reports = app.app.assessment_reports().await;
    let ids: Vec<&str> = reports.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "contoso-iso",
            "contoso-gdpr",
            "contoso-data-protection-baseline"
        ]
    );
    // The default assessment scores exactly the evaluated actions; the tenant's overall score
    // covers every instance of its three assessments, once (a larger denominator).
    let eval = &report.evaluation;
    let possible: f64 = eval.actions.iter().map(|a| a.points_possible).sum();
    assert!((reports[2].score.points_possible - possible).abs() < 1e-9);
    let achieved: f64 = eval.actions.iter().map(|a| a.points_achieved).sum();
    assert!((reports[2].score.points_achieved - achieved).abs() < 1e-9);
    assert!(eval.score.points_possible > possible);
    assert!(eval.score.points_possible >= reports[0].score.points_possible);
    assert!(eval.categories.iter().any(|(c, _)| c == "Documentation"));
    // ISO adds non-technical actions (none yet): a larger denominator, not a mean.
    assert!(reports[0].score.points_possible > 0.0);
    let policy = |r: &postured::model::report::AssessmentReport| {
        r.actions
            .iter()
            .find(|a| a.id == "iso.isms.policy")
            .cloned()
            .expect("policy action")
    };
    assert_eq!(policy(&reports[0]).test_status, TestStatus::None);
    assert_ne!(reports[0].status, AssessmentStatus::Complete);
    // Technical instances are shared: the same status in every assessment of the tenant.
    let mfa = |r: &postured::model::report::AssessmentReport| {
        r.actions
            .iter()
            .find(|a| a.id == "msgraph.mfa.all_users")
            .map(|a| (a.test_status, a.points_achieved))
    };
    assert_eq!(mfa(&reports[0]), mfa(&reports[1]));
    assert_eq!(mfa(&reports[0]), mfa(&reports[2]));

    // A person sets the policy (group scope); the next poll shows it.
    let before = reports[0].score;
    app.app
        .model
        .apply_action_set(
            app.app.store.as_ref(),
            InstanceScope::Group("eu".into()),
            "iso.isms.policy",
            ManualUpdate {
                test_status: Some(TestStatus::Passed),
                assigned_to: Some("ciso@contoso.example".into()),
                ..ManualUpdate::default()
            },
            &postured::app::model::Actor {
                subject: "cli:test".into(),
                request_id: None,
            },
            chrono::Utc::now(),
        )
        .await
        .expect("saved");
    app.poll("contoso").await;
    let reports = app.app.assessment_reports().await;
    let p = policy(&reports[0]);
    assert_eq!(p.test_status, TestStatus::Passed);
    assert_eq!(p.testing_source, TestingSource::Manual);
    assert_eq!(p.assigned_to.as_deref(), Some("ciso@contoso.example"));
    assert!((reports[0].score.points_achieved - before.points_achieved - 3.0).abs() < 1e-9);

    let m = app.metrics().await;
    let possible = sample(
        &m,
        "postured_assessment_points_possible{assessment=\"contoso-iso\",tenant=\"contoso\"}",
    )
    .expect("assessment metric");
    assert!((possible - reports[0].score.points_possible).abs() < 1e-9);
    assert!(m.contains(
        "postured_control_status{assessment=\"contoso-gdpr\",status=\"passed\",tenant=\"contoso\"}"
    ));
    assert!(m.contains(
        "postured_assessment_progress_ratio{assessment=\"contoso-data-protection-baseline\""
    ));
}

#[tokio::test]
async fn api_serves_assessments_filtered_scores_and_takes_manual_statuses() {
    let graph = graph_with_examples().await;
    let extra = r#"
[[assessments]]
id = "contoso-gdpr"
tenant = "contoso"
template = "gdpr"
"#;
    let app = TestApp::spawn(
        extra,
        &tenant_block("contoso", GUID, "client-1", &graph.uri(), "0 0 * * * *"),
    )
    .await;
    app.poll("contoso").await;
    assert_eq!(
        app.get("/api/v1/assessments", None).await.status(),
        reqwest::StatusCode::UNAUTHORIZED
    );
    let list: serde_json::Value = app
        .get("/api/v1/assessments", Some(API_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["id"], "contoso-gdpr");
    assert!(list[0]["controls"].as_array().unwrap().len() >= 10);

    let all: serde_json::Value = app
        .get("/api/v1/scores?tenant=contoso", Some(API_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    let gdpr: serde_json::Value = app
        .get(
            "/api/v1/scores?regulation=GDPR&testing_source=manual&by=category",
            Some(API_TOKEN),
        )
        .await
        .json()
        .await
        .unwrap();
    let possible = |v: &serde_json::Value| v["score"]["points_possible"].as_f64().unwrap();
    assert!(
        possible(&gdpr) > 0.0 && possible(&gdpr) < possible(&all),
        "{gdpr} {all}"
    );
    let categories: Vec<&str> = gdpr["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[0].as_str().unwrap())
        .collect();
    assert_eq!(categories, ["Documentation", "Operational"]);

    postured::http::install_crypto_provider();
    let put = |body: serde_json::Value| {
        reqwest::Client::new()
            .put(format!(
                "http://{}/api/v1/actions/gdpr.records.ropa/status",
                app.addr
            ))
            .bearer_auth(API_TOKEN)
            .json(&body)
            .send()
    };
    let wrong = put(serde_json::json!({"tenant": "contoso", "test_status": "passed"}))
        .await
        .unwrap();
    assert_eq!(wrong.status(), reqwest::StatusCode::BAD_REQUEST);
    let ok = put(serde_json::json!({
        "group": "default",
        "test_status": "passed",
        "evidence": ["https://intranet.example/ropa.xlsx"]
    }))
    .await
    .unwrap();
    assert_eq!(ok.status(), reqwest::StatusCode::OK);
    let saved: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(saved["testing_source"], "manual");
    app.poll("contoso").await;
    let after: serde_json::Value = app
        .get("/api/v1/scores?tenant=contoso", Some(API_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    let achieved = |v: &serde_json::Value| v["score"]["points_achieved"].as_f64().unwrap();
    assert!(
        (achieved(&after) - achieved(&all) - 3.0).abs() < 1e-6,
        "{after} {all}"
    );
}

#[tokio::test]
async fn mfa_registration_drop_changes_status_and_stores_the_transition() {
    let graph = graph_with_examples().await;
    let app = TestApp::spawn(
        "",
        &tenant_block("contoso", GUID, "client-1", &graph.uri(), "0 0 * * * *"),
    )
    .await;
    let first = app.poll("contoso").await;
    assert_eq!(
        action(&first.evaluation, "msgraph.mfa.all_users").test_status,
        TestStatus::PartiallyTested
    );

    // Everyone loses their MFA registration.
    let body = fixture("msgraph/userRegistrationDetails-list.json")
        .replace("\"isMfaRegistered\": true", "\"isMfaRegistered\": false");
    Mock::given(method("GET"))
        .and(path(
            "/v1.0/reports/authenticationMethods/userRegistrationDetails",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
        .with_priority(1)
        .mount(&graph)
        .await;
    let second = app.poll("contoso").await;
    // The tenant keeps its evaluation without the signals each rule read; asked for, they are
    // evaluated again from its signals and come out as the poll had them.
    assert_eq!(
        app.app.evaluation("contoso").await.as_ref(),
        Some(&second.evaluation)
    );
    let kept = app.app.evaluations().await;
    assert_eq!(kept[0].score, second.evaluation.score);
    assert!(kept[0].actions.iter().all(|a| a.signals.is_empty()));
    assert!(
        second
            .evaluation
            .actions
            .iter()
            .any(|a| !a.signals.is_empty())
    );
    let mfa = action(&second.evaluation, "msgraph.mfa.all_users");
    assert_eq!(mfa.test_status, TestStatus::FailedHighRisk);
    assert_eq!(mfa.points_achieved, 0.0);
    assert!(second.evaluation.score.points_achieved < first.evaluation.score.points_achieved);

    let history = app
        .app
        .store
        .transitions("contoso", Some("msgraph.mfa.all_users"), None)
        .await
        .unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[0].transition.from_status, None);
    assert_eq!(
        history[1].transition.from_status,
        Some(TestStatus::PartiallyTested)
    );
    assert_eq!(history[1].transition.to_status, TestStatus::FailedHighRisk);
    assert!(
        history[1]
            .transition
            .signals
            .iter()
            .any(|(k, _)| k.starts_with("msgraph.mfa."))
    );

    // The API serves the same history, behind the bearer token.
    let unauth = app.get("/api/v1/tenants/contoso/transitions", None).await;
    assert_eq!(unauth.status(), 401);
    let rows: serde_json::Value = app
        .get(
            "/api/v1/tenants/contoso/transitions?action=msgraph.mfa.all_users",
            Some(API_TOKEN),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);

    assert!(first.rules_ran && second.rules_ran);
    // A third identical poll has the same inputs, but the regression detector's debounce
    // raises its events now, and an event carries the signals each rule read: the rules run.
    let third = app.poll("contoso").await;
    assert!(third.rules_ran);
    // A fourth: nothing to raise, so the second's action results are reused (the rules do not
    // run) with the same statuses, points and score; asked for, the tenant's evaluation is
    // the second's again, the signals each rule read included.
    let third = app.poll("contoso").await;
    assert!(!third.rules_ran);
    let figures = |e: &postured::evaluation::TenantEvaluation| {
        e.actions
            .iter()
            .map(|a| {
                (
                    a.action_id.clone(),
                    a.test_status,
                    a.points_achieved,
                    a.reason.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(figures(&third.evaluation), figures(&second.evaluation));
    assert_eq!(third.evaluation.score, second.evaluation.score);
    assert_eq!(
        app.app.evaluation("contoso").await.map(|e| e.actions),
        Some(second.evaluation.actions.clone())
    );
    // A third identical poll writes no new transition.
    let again = app
        .app
        .store
        .transitions("contoso", None, None)
        .await
        .unwrap();
    let before = app
        .app
        .store
        .transitions("contoso", None, Some(second.evaluation.evaluated_at))
        .await
        .unwrap();
    assert!(again.len() >= before.len());
    assert_eq!(
        app.app
            .store
            .transitions("contoso", Some("msgraph.mfa.all_users"), None)
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn throttling_retry_after_is_honoured() {
    let graph = graph_with_examples().await;
    // The documented 429 shape, with a short fractional Retry-After, then success.
    Mock::given(method("GET"))
        .and(path("/v1.0/security/secureScores"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "0.6")
                .set_body_raw(
                    fixture("msgraph/error-429-throttled.json"),
                    "application/json",
                ),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&graph)
        .await;
    let app = TestApp::spawn(
        "",
        &tenant_block("contoso", GUID, "client-1", &graph.uri(), "0 0 * * * *"),
    )
    .await;
    let started = Instant::now();
    let report = app.poll("contoso").await;
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "retried too early"
    );
    assert_eq!(report.outcome, PollOutcome::Success, "{:?}", report.errors);
    let calls = graph
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/v1.0/security/secureScores")
        .count();
    assert_eq!(calls, 2);
}

#[tokio::test]
async fn token_401_is_could_not_be_detected_and_other_tenants_keep_polling() {
    let graph = graph_with_examples().await;
    // Fabrikam's secret is rejected (the documented AADSTS7000215 body).
    Mock::given(method("POST"))
        .and(path("/fabrikam-guid/oauth2/v2.0/token"))
        .respond_with(ResponseTemplate::new(401).set_body_raw(
            fixture("entra-oauth/token-error-invalid_client-7000215-supportdoc.json"),
            "application/json",
        ))
        .mount(&graph)
        .await;
    let tenants = format!(
        "{}{}",
        tenant_block("contoso", GUID, "client-1", &graph.uri(), "* * * * * *"),
        tenant_block(
            "fabrikam",
            "fabrikam-guid",
            "client-2",
            &graph.uri(),
            "* * * * * *"
        ),
    );
    let app = TestApp::spawn("", &tenants).await;

    let report = app.poll("fabrikam").await;
    assert_eq!(report.outcome, PollOutcome::Failure);
    assert!(
        report
            .errors
            .iter()
            .all(|e| e.kind.as_str() == "unauthorized"),
        "{:?}",
        report.errors
    );
    for a in &report.evaluation.actions {
        assert!(
            !a.test_status.is_failed(),
            "{} failed on a collection error",
            a.action_id
        );
        assert!(matches!(
            a.test_status,
            TestStatus::CouldNotBeDetected | TestStatus::OutOfScope
        ));
    }
    assert_eq!(report.evaluation.score.points_achieved, 0.0);
    // Computed again from the tenant's gaps, the evaluation is the poll's.
    assert_eq!(
        app.app.evaluation("fabrikam").await.as_ref(),
        Some(&report.evaluation)
    );

    // Under the scheduler, contoso keeps being polled every second while fabrikam fails.
    let tracker = tokio_util::task::TaskTracker::new();
    postured::scheduler::spawn_all(app.app.clone(), app.cancel.clone(), &tracker);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = app.metrics().await;
        let ok = sample(&m, "postured_connector_polls_total{connector=\"msgraph\",outcome=\"success\",tenant=\"contoso\"}").unwrap_or(0.0);
        let failed = sample(&m, "postured_connector_polls_total{connector=\"msgraph\",outcome=\"failure\",tenant=\"fabrikam\"}").unwrap_or(0.0);
        if ok >= 2.0 && failed >= 2.0 {
            assert!(m.contains("postured_connector_errors_total{connector=\"msgraph\",kind=\"unauthorized\",tenant=\"fabrikam\"}"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "scheduler stalled: contoso ok={ok} fabrikam failed={failed}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.cancel.cancel();
    tracker.close();
    tokio::time::timeout(Duration::from_secs(10), tracker.wait())
        .await
        .expect("polls drain after cancel");
}

#[tokio::test]
async fn client_credentials_against_a_real_oauth2_server() {
    let Some(oauth) = std::env::var("POSTURED_TEST_OAUTH2_URL").ok() else {
        assert!(
            !servers_required(),
            "POSTURED_TEST_OAUTH2_URL is required (scripts/test.sh starts it)"
        );
        eprintln!("skipped: POSTURED_TEST_OAUTH2_URL not set (run scripts/test.sh)");
        return;
    };
    let graph = MockServer::start().await;
    // Graph accepts only a signed JWT (header.payload.signature) as bearer.
    for (p, f) in graph_endpoints() {
        Mock::given(method("GET"))
            .and(path(p))
            .and(header_regex(
                "authorization",
                r"^Bearer [\w-]+\.[\w-]+\.[\w-]+$",
            ))
            .respond_with(ResponseTemplate::new(200).set_body_raw(fixture(&f), "application/json"))
            .mount(&graph)
            .await;
    }
    let block = |id: &str, client: &str| {
        tenant_block(id, GUID, client, &graph.uri(), "0 0 * * * *").replace(
            "  request_timeout",
            &format!("  token_url = \"{oauth}/token\"\n  request_timeout"),
        )
    };
    let app = TestApp::spawn(
        "",
        &format!(
            "{}{}",
            block("contoso", "client-1"),
            block("revoked", "revoked-client")
        ),
    )
    .await;

    let ok = app.poll("contoso").await;
    assert_eq!(ok.outcome, PollOutcome::Success, "{:?}", ok.errors);
    let revoked = app.poll("revoked").await;
    assert_eq!(revoked.outcome, PollOutcome::Failure);
    let e = &revoked.errors[0];
    assert_eq!(e.kind.as_str(), "unauthorized");
    assert!(e.code.as_deref().unwrap_or("").contains("7000222"), "{e:?}");
    assert!(!e.message.contains("not-a-real-secret"));
    assert!(
        revoked
            .evaluation
            .actions
            .iter()
            .all(|a| !a.test_status.is_failed())
    );
}

#[tokio::test]
async fn metrics_exposition_passes_promtool() {
    let graph = graph_with_examples().await;
    let app = TestApp::spawn(
        "",
        &tenant_block("contoso", GUID, "client-1", &graph.uri(), "0 0 * * * *"),
    )
    .await;
    app.poll("contoso").await;
    let text = app.metrics().await;
    let promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match promtool {
        Ok(c) => c,
        Err(e) => {
            assert!(
                !servers_required(),
                "promtool is required (scripts/test.sh installs it): {e}"
            );
            eprintln!("skipped: promtool not installed");
            return;
        }
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn health_is_public_and_the_api_needs_the_token() {
    let graph = graph_with_examples().await;
    let app = TestApp::spawn(
        "",
        &tenant_block("contoso", GUID, "client-1", &graph.uri(), "0 0 * * * *"),
    )
    .await;
    app.poll("contoso").await;
    assert_eq!(app.get("/healthz", None).await.status(), 200);
    assert_eq!(app.get("/readyz", None).await.status(), 200);
    assert_eq!(app.get("/api/v1/report", None).await.status(), 401);
    assert_eq!(app.get("/api/v1/report", Some("wrong")).await.status(), 401);
    let report: serde_json::Value = app
        .get("/api/v1/report", Some(API_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    let t = &report["tenants"][0];
    assert_eq!(t["tenant"], "contoso");
    for key in ["points_achieved", "points_possible", "ratio"] {
        assert!(t["score"][key].is_number(), "{key}");
    }
    let a = &t["actions"][0];
    for key in [
        "id",
        "title",
        "test_status",
        "points_achieved",
        "points_possible",
        "testing_logic",
        "reason",
    ] {
        assert!(a.get(key).is_some(), "action lacks {key}");
    }
}

// ---- the binary ------------------------------------------------------------------------

fn postured() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_postured"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c.env_remove("RUST_LOG");
    // `check-config` tries to bind `[server] listen`: never depend on the demo's fixed port
    // being free on the machine running the tests (a test may set another address).
    c.env("POSTURED__SERVER__LISTEN", "127.0.0.1:0");
    c
}

#[test]
fn check_config_reports_every_problem_with_exit_64() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.toml");
    std::fs::write(
        &f,
        r#"
[server]
listen = "nowhere"
[scheduler]
signal_ttl_polls = 0
[[tenants]]
id = "a"
  [[tenants.connectors]]
  kind = "msgraph"
  schedule = "every day"
  client_secret = { env = "POSTURED_TEST_UNSET_SECRET" }
"#,
    )
    .unwrap();
    let out = postured()
        .arg("check-config")
        .arg(&f)
        .env_remove("POSTURED__SERVER__LISTEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    for path in [
        "server.listen",
        "scheduler.signal_ttl_polls",
        "tenants[0].connectors[0].schedule",
        "tenants[0].connectors[0].tenant_id",
        "tenants[0].connectors[0].client_secret",
    ] {
        assert!(err.contains(path), "missing {path} in:\n{err}");
    }

    let ok = postured()
        .args(["check-config", "config/demo.toml"])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn print_config_is_the_documented_example() {
    let out = postured().arg("print-config").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text,
        std::fs::read_to_string("config/example.toml").unwrap()
    );
}

#[test]
fn once_on_the_demo_prints_the_json_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = postured()
        .args(["once", "--config", "config/demo.toml", "--output", "json"])
        .env(
            "POSTURED__STORE__URL",
            format!("sqlite://{}", dir.path().join("demo.db").display()),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["generated_at"].is_string());
    let t = &report["tenants"][0];
    assert_eq!(t["tenant"], "contoso-demo");
    let ratio = t["score"]["ratio"].as_f64().unwrap();
    assert!(ratio > 0.0 && ratio < 1.0, "{ratio}");
    assert!(t["actions"].as_array().unwrap().len() >= 15);
    assert!(t["categories"].as_array().unwrap().len() >= 2);
    // Six framework assessments and the default one, each with score, rollup and progress.
    let assessments = t["assessments"].as_array().unwrap();
    assert_eq!(assessments.len(), 7, "{assessments:?}");
    for a in assessments {
        assert!(a["status"].is_string(), "{a}");
        let progress = a["progress"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&progress), "{progress}");
    }
    // The baseline scores exactly the evaluated actions; the tenant's score covers the
    // instances of all seven assessments, each once, so its denominator is larger.
    let baseline = assessments
        .iter()
        .find(|a| a["id"] == "contoso-demo-data-protection-baseline")
        .expect("the default assessment");
    let actions_possible: f64 = t["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["points_possible"].as_f64().unwrap())
        .sum();
    let base_possible = baseline["score"]["points_possible"].as_f64().unwrap();
    assert!((base_possible - actions_possible).abs() < 1e-6);
    assert!(t["score"]["points_possible"].as_f64().unwrap() > base_possible);
    // Every endpoint of the demo is collected: no action lacks a signal for a collection error.
    let actions = t["actions"].as_array().unwrap();
    assert!(
        actions.iter().all(|a| !a["reason"]
            .as_str()
            .unwrap_or("")
            .contains("could not collect")),
        "{t}"
    );

    // The CISA SCuBA Entra ID assessment: the documentation's tenant has no enabled
    // conditional access policy and no Entra ID P2 plan, so its risk policies and its PIM
    // policies (MS.AAD.7.4-7.9) are not applicable and the other conditional access policies
    // fail with the reason; some tenant-wide settings pass (the admin consent workflow is on),
    // and its three cloud-only Global Administrators (the role assignments example) meet
    // MS.AAD.7.1 and 7.3; 7.2 fails (no other privileged user).
    let scuba = assessments
        .iter()
        .find(|a| a["id"] == "contoso-demo-scuba")
        .expect("the SCuBA assessment");
    let achieved = scuba["score"]["points_achieved"].as_f64().unwrap();
    assert!(
        achieved > 0.0 && achieved < scuba["score"]["points_possible"].as_f64().unwrap(),
        "{scuba}"
    );
    assert_eq!(scuba["status"], "incomplete");
    // Every SCuBA action is technical and tested by the connector, except the four manual
    // verification actions of the policies Graph v1.0 cannot answer (scuba.manual.*: two
    // detective and two preventative mandatory actions, 3 + 3 + 27 + 27 points, untested).
    let possible = scuba["score"]["points_possible"].as_f64().unwrap();
    let ratio = scuba["automated_points_ratio"].as_f64().unwrap();
    assert!(
        (ratio - (possible - 60.0) / possible).abs() < 1e-12,
        "{scuba}"
    );
    let action = |id: &str| {
        actions
            .iter()
            .find(|a| a["id"] == id)
            .unwrap_or_else(|| panic!("{id}"))
    };
    let earned: f64 = [
        "msgraph.privileged.global_admins_count",
        "msgraph.privileged.cloud_only",
    ]
    .iter()
    .map(|id| {
        let a = action(id);
        assert_eq!(a["test_status"], "passed", "{a}");
        a["points_achieved"].as_f64().unwrap()
    })
    .sum();
    assert!(earned > 0.0);
    assert!(
        scuba["score"]["points_achieved"].as_f64().unwrap() >= earned,
        "{scuba}"
    );
    let least = action("msgraph.privileged.least_privilege");
    assert_eq!(least["test_status"], "failed_medium_risk", "{least}");
    assert!(
        least["reason"]
            .as_str()
            .unwrap()
            .contains("3 Global Administrators, 0 users"),
        "{least}"
    );
    let pim = action("msgraph.privileged.no_permanent_assignments");
    assert_eq!(pim["test_status"], "out_of_scope", "{pim}");
    assert!(pim["reason"].as_str().unwrap().contains("Entra ID P2"));
    let risky = action("msgraph.ca.high_risk_users_blocked");
    assert_eq!(risky["test_status"], "out_of_scope", "{risky}");
    assert!(risky["reason"].as_str().unwrap().contains("Entra ID P2"));
    let legacy = action("msgraph.ca.legacy_auth_blocked");
    assert_eq!(legacy["test_status"], "failed_high_risk", "{legacy}");
    assert!(
        legacy["reason"]
            .as_str()
            .unwrap()
            .contains("security defaults are on"),
        "{legacy}"
    );

    // The AWS tenant, replayed from moto recordings with ages measured on the recording day:
    // the exact CIS verdicts of the recorded account (see config/demo/aws_iam/SOURCES.md).
    let aws = &report["tenants"][1];
    assert_eq!(aws["tenant"], "aws-demo");
    let status = |id: &str| -> (String, f64) {
        let a = aws["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .unwrap_or_else(|| panic!("{id} in {aws}"));
        (
            a["test_status"].as_str().unwrap().to_owned(),
            a["points_achieved"].as_f64().unwrap(),
        )
    };
    for (id, want, points) in [
        ("aws_iam.root.no_access_keys", "passed", 27.0),
        ("aws_iam.root.mfa", "failed_high_risk", 0.0),
        ("aws_iam.password.min_length", "passed", 27.0),
        ("aws_iam.password.uppercase", "failed_low_risk", 0.0),
        ("aws_iam.users.console_mfa", "partially_tested", 18.0),
        ("aws_iam.credentials.unused_disabled", "passed", 27.0),
        ("aws_iam.keys.one_active", "failed_low_risk", 0.0),
        ("aws_iam.keys.rotated", "passed", 27.0),
        (
            "aws_iam.users.permissions_via_groups",
            "failed_low_risk",
            0.0,
        ),
        ("aws_iam.policies.no_full_admin", "failed_high_risk", 0.0),
        ("msgraph.mfa.all_users", "out_of_scope", 0.0),
    ] {
        assert_eq!(status(id), (want.to_owned(), points), "{id}");
    }
    assert_eq!(
        aws["score"]["points_achieved"].as_f64(),
        Some(192.0),
        "{aws}"
    );
}

#[test]
fn action_set_on_the_demo_counts_from_the_next_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("demo.db").display());
    let once = || {
        let out = postured()
            .args(["once", "--config", "config/demo.toml", "--output", "json"])
            .env("POSTURED__STORE__URL", &store)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let gdpr = report["tenants"][0]["assessments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == "contoso-demo-gdpr")
            .cloned()
            .unwrap();
        gdpr["score"]["points_achieved"].as_f64().unwrap()
    };
    let before = once();
    let set = |args: &[&str]| {
        postured()
            .args(["action", "set", "--config", "config/demo.toml"])
            .args(args)
            .env("POSTURED__STORE__URL", &store)
            .output()
            .unwrap()
    };
    // A documentation action is set per group, not per tenant (exit 64, nothing saved).
    let wrong = set(&[
        "--tenant",
        "contoso-demo",
        "--action",
        "gdpr.records.ropa",
        "--test-status",
        "passed",
    ]);
    assert_eq!(wrong.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("--group"));
    let bad_status = set(&[
        "--group",
        "default",
        "--action",
        "gdpr.records.ropa",
        "--test-status",
        "done",
    ]);
    assert!(!bad_status.status.success());
    let ok = set(&[
        "--group",
        "default",
        "--action",
        "gdpr.records.ropa",
        "--test-status",
        "passed",
        "--evidence",
        "https://intranet.example/ropa.xlsx",
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let record: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(record["testing_source"], "manual");
    assert!((once() - before - 3.0).abs() < 1e-6);
}

#[test]
fn run_serves_the_demo_score_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = postured()
        .args(["run", "--config", "config/demo.toml"])
        .env("POSTURED__SERVER__LISTEN", "127.0.0.1:0")
        .env(
            "POSTURED__STORE__URL",
            format!("sqlite://{}", dir.path().join("demo.db").display()),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = served_url(&mut child);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let score = loop {
        postured::http::install_crypto_provider();
        let text = rt
            .block_on(async { reqwest::get(&url).await?.text().await })
            .unwrap_or_default();
        if let Some(v) = sample(
            &text,
            "postured_compliance_score_ratio{tenant=\"contoso-demo\"}",
        ) {
            break v;
        }
        assert!(Instant::now() < deadline, "no score on {url}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(score > 0.0 && score < 1.0);
    send_signal(child.id(), "TERM");
    exits_cleanly(&mut child, Duration::from_secs(15));
}

#[test]
fn an_assessment_may_use_a_template_imported_into_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("postured.db");
    let csv = dir.path().join("acme.csv");
    std::fs::write(
        &csv,
        "templateId,title,certification,controlName,controlFamily,controlTitle,actionId,actionTitle,implementationType,actionScore\n\
         acme-policy,ACME security policy,ACME 2026,AC-1,Access,Multifactor everywhere,msgraph.mfa.all_users,Register every user for multifactor authentication,Technical,27\n\
         acme-policy,ACME security policy,ACME 2026,AC-2,Access,A written policy,,Keep an access policy,Documentation,3\n",
    )
    .unwrap();
    let config = dir.path().join("postured.toml");
    let demo = std::fs::read_to_string("config/demo.toml").unwrap();
    let recordings = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo/msgraph");
    let aws_recordings =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo/aws_iam");
    let text = format!(
        "{}\n[[assessments]]\nid = \"acme\"\ntenant = \"contoso-demo\"\ntemplate = \"acme-policy\"\ngroup = \"default\"\n",
        demo.replace(
            "sqlite://postured-demo.db",
            &format!("sqlite://{}", db.display())
        )
        .replace(
            "replay_dir = \"demo/msgraph\"",
            &format!("replay_dir = \"{}\"", recordings.display())
        )
        .replace(
            "replay_dir = \"demo/aws_iam\"",
            &format!("replay_dir = \"{}\"", aws_recordings.display())
        )
    );
    std::fs::write(&config, text).unwrap();

    // Before the import the template exists nowhere: exit 64 with the key path.
    let before = postured()
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(before.status.code(), Some(64));
    let err = String::from_utf8_lossy(&before.stderr);
    assert!(
        err.contains("template") && err.contains("acme-policy"),
        "{err}"
    );
    let once_before = postured()
        .args(["once", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(
        once_before.status.code(),
        Some(64),
        "{}",
        String::from_utf8_lossy(&once_before.stderr)
    );

    let import = postured()
        .args(["template", "import"])
        .arg(&csv)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );

    let after = postured()
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        after.status.success(),
        "{}",
        String::from_utf8_lossy(&after.stderr)
    );
    let once = postured()
        .args(["once", "--output", "json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        once.status.success(),
        "{}",
        String::from_utf8_lossy(&once.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&once.stdout).unwrap();
    let acme = report["tenants"][0]["assessments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "acme")
        .cloned()
        .unwrap_or_else(|| panic!("no acme assessment in {report}"));
    // MFA (27 points, 2 of 3 users registered) plus an untested documentation action (3).
    assert_eq!(
        acme["score"]["points_possible"].as_f64(),
        Some(30.0),
        "{acme}"
    );
    assert!(
        (acme["score"]["points_achieved"].as_f64().unwrap() - 18.0).abs() < 1e-9,
        "{acme}"
    );
}

// ---- issue 8: hostile API clients and configurations -------------------------------------

/// A running app without tenants whose `[server]` section has `server` appended (limits).
struct Served {
    app: std::sync::Arc<postured::app::App>,
    addr: std::net::SocketAddr,
    cancel: tokio_util::sync::CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn serve_with(server: &str) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\napi_token = {{ env = \"T\" }}\n{server}\n[store]\nurl = \"sqlite://{}\"\n",
        dir.path().join("p.db").display()
    );
    let env = |k: &str| (k == "T").then(|| API_TOKEN.to_owned());
    let cfg = postured::config::Config::parse(&text, &[], &env).unwrap_or_else(|p| panic!("{p:?}"));
    let app = std::sync::Arc::new(postured::assembly::build_app(cfg).await.unwrap());
    let cancel = tokio_util::sync::CancellationToken::new();
    let (addr, serve) = postured::server::bind(app.clone(), "127.0.0.1:0", cancel.clone())
        .await
        .unwrap();
    tokio::spawn(serve);
    Served {
        app,
        addr,
        cancel,
        _dir: dir,
    }
}

/// Read from `stream` until it is closed (EOF or reset) or `limit` passes; returns the bytes
/// read and whether it was closed.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (out, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Issue 8 row 15: half-open connections (a request head never finished) are closed after
/// `[server] header_read_timeout`, connections beyond `max_connections` are closed at once, an
/// idle keep-alive connection is closed too, and the server still answers afterwards.
#[tokio::test]
async fn half_open_connections_are_closed_and_the_connection_count_is_capped() {
    use tokio::io::AsyncWriteExt;
    let header_timeout = Duration::from_secs(2);
    let s = serve_with("header_read_timeout = \"2s\"\nmax_connections = 5").await;
    let opened = Instant::now();
    let mut readers = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let mut c = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: postured\r\n")
            .await
            .unwrap();
        readers.spawn(async move {
            let (_, closed) = read_until_closed(&mut c, Duration::from_secs(10)).await;
            (closed, opened.elapsed())
        });
    }
    let mut early = 0;
    while let Some(r) = readers.join_next().await {
        let (closed, after) = r.unwrap();
        assert!(
            closed,
            "a half-open connection is still open after {after:?}"
        );
        if after < header_timeout {
            early += 1;
        }
    }
    // Beyond the 5 connections served, each was closed at once, before the header timeout.
    assert!(
        early >= 45,
        "{early} connections closed before the header timeout"
    );

    // A complete request is answered; the idle keep-alive connection is closed afterwards.
    let mut c = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: postured\r\n\r\n")
        .await
        .unwrap();
    let (answer, closed) = read_until_closed(&mut c, Duration::from_secs(10)).await;
    assert!(closed, "an idle keep-alive connection stays open");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(s.app.config.server.max_connections, 5);
}

/// Issue 8 row 15: a request whose body never arrives is answered 408 after `[server]
/// request_timeout` instead of holding its connection.
#[tokio::test]
async fn a_request_body_that_never_arrives_is_answered_408() {
    use tokio::io::AsyncWriteExt;
    let s = serve_with("request_timeout = \"500ms\"").await;
    let mut c = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    c.write_all(
        format!(
            "PUT /api/v1/actions/msgraph.mfa.all_users/status HTTP/1.1\r\nHost: postured\r\n\
             Authorization: Bearer {API_TOKEN}\r\nContent-Type: application/json\r\n\
             Content-Length: 100\r\n\r\n{{"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let (answer, _) = read_until_closed(&mut c, Duration::from_secs(10)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
}

/// Issue 8 row 16: the `Bearer` scheme is matched in any case and the token exactly (RFC
/// 6750): a tab before the token, or a token with a character more or less, is refused.
#[tokio::test]
async fn bearer_scheme_in_any_case_and_the_exact_token() {
    let s = serve_with("").await;
    postured::http::install_crypto_provider();
    let client = reqwest::Client::new();
    let status = |value: String| {
        let req = client
            .get(format!("http://{}/api/v1/report", s.addr))
            .header("Authorization", value);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(format!("Bearer {API_TOKEN}")).await, 200);
    assert_eq!(status(format!("bearer {API_TOKEN}")).await, 200);
    assert_eq!(status(format!("BEARER  {API_TOKEN}")).await, 200);
    assert_eq!(status(format!("Bearer \t{API_TOKEN}")).await, 401);
    assert_eq!(status(format!("Bearer {API_TOKEN}x")).await, 401);
    assert_eq!(status(format!("Bearer {}", &API_TOKEN[1..])).await, 401);
    assert_eq!(status(format!("Basic {API_TOKEN}")).await, 401);
}

fn problem_put(
    app: &TestApp,
    action: &str,
    body: serde_json::Value,
) -> impl Future<Output = reqwest::Response> {
    postured::http::install_crypto_provider();
    let req = reqwest::Client::new()
        .put(format!(
            "http://{}/api/v1/actions/{action}/status",
            app.addr
        ))
        .bearer_auth(API_TOKEN)
        .json(&body);
    async move { req.send().await.unwrap() }
}

/// The status and problem details of a refused request.
async fn problem_of(r: reqwest::Response) -> (u16, serde_json::Value) {
    let status = r.status().as_u16();
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "status {status}"
    );
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], status, "{body}");
    assert!(
        body["type"].is_string() && body["title"].is_string(),
        "{body}"
    );
    (status, body)
}

/// Issue 8 row 13: `PUT` of an action id no template or catalog knows, or that is malformed
/// (path traversal, markup), is 404 with RFC 9457 problem details, and nothing is stored.
#[tokio::test]
async fn put_of_an_unknown_or_malformed_action_id_is_refused_with_problem_details() {
    let graph = graph_with_examples().await;
    let app = TestApp::spawn(
        "",
        &tenant_block("contoso", GUID, "client-1", &graph.uri(), "0 0 * * * *"),
    )
    .await;
    app.poll("contoso").await;
    let body = || serde_json::json!({"tenant": "contoso", "test_status": "passed"});
    for (action, want) in [
        ("..%2F..%2Fetc%2Fpasswd", 404),
        ("%3Cscript%3Ealert(1)%3C%2Fscript%3E", 404),
        ("msgraph.no_such.action", 404),
        ("securescore.no_such_control", 404),
    ] {
        let (status, problem) = problem_of(problem_put(&app, action, body()).await).await;
        assert_eq!(status, want, "{action}: {problem}");
    }
    let (status, problem) = problem_of(
        problem_put(
            &app,
            "msgraph.mfa.all_users",
            serde_json::json!({"tenant": "contoso", "testing_source": "parent", "parent": "nope.nope"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    assert!(app.app.store.manual_statuses().await.unwrap().is_empty());
    // Known actions, a generated Secure Score one included, are accepted.
    let generated = app.app.evaluations().await[0]
        .actions
        .iter()
        .find(|a| a.action_id.starts_with("securescore."))
        .map(|a| a.action_id.clone())
        .expect("a generated action");
    for action in ["msgraph.mfa.all_users", generated.as_str()] {
        let r = problem_put(&app, action, body()).await;
        assert_eq!(r.status(), 200, "{action}: {}", r.text().await.unwrap());
    }
    assert_eq!(app.app.store.manual_statuses().await.unwrap().len(), 2);
}

/// Issue 8 row 12: notes, owner and evidence past their limits are refused with problem
/// details (400, or 413 for a body past 64 KiB), counting the evidence already saved, and
/// nothing is stored; values at the limits are saved.
#[tokio::test]
async fn put_caps_notes_owner_and_evidence() {
    use postured::server::input::{MAX_ASSIGNED_TO_CHARS, MAX_EVIDENCE_LINKS, MAX_NOTES_CHARS};
    let graph = graph_with_examples().await;
    let app = TestApp::spawn(
        "",
        &tenant_block("contoso", GUID, "client-1", &graph.uri(), "0 0 * * * *"),
    )
    .await;
    let action = "msgraph.mfa.all_users";
    let put = |fields: serde_json::Value| {
        let mut body = serde_json::json!({"tenant": "contoso"});
        body.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        problem_put(&app, action, body)
    };
    let links = |from: usize, n: usize| -> Vec<String> {
        (from..from + n)
            .map(|i| format!("https://intranet.example/evidence/{i}"))
            .collect()
    };
    for fields in [
        serde_json::json!({"notes": "n".repeat(40_000)}),
        serde_json::json!({"notes": "n".repeat(MAX_NOTES_CHARS + 1)}),
        serde_json::json!({"notes": "a\u{0}b"}),
        serde_json::json!({"assigned_to": "x".repeat(MAX_ASSIGNED_TO_CHARS + 1)}),
        serde_json::json!({"evidence": links(0, MAX_EVIDENCE_LINKS + 1)}),
        serde_json::json!({"evidence": ["x".repeat(2_001)]}),
    ] {
        let (status, problem) = problem_of(put(fields).await).await;
        assert_eq!(status, 400, "{problem}");
    }
    let (status, _) = problem_of(put(serde_json::json!({"notes": "n".repeat(70_000)})).await).await;
    assert_eq!(status, 413);
    assert!(app.app.store.manual_statuses().await.unwrap().is_empty());

    let ok = put(serde_json::json!({
        "notes": "n".repeat(MAX_NOTES_CHARS),
        "assigned_to": "x".repeat(MAX_ASSIGNED_TO_CHARS),
        "evidence": links(0, MAX_EVIDENCE_LINKS - 2),
    }))
    .await;
    assert_eq!(ok.status(), 200);
    // Links already saved count: two more fit (a repeated one is not counted), three do not.
    let (status, problem) =
        problem_of(put(serde_json::json!({"evidence": links(0, 17)})).await).await;
    assert_eq!(status, 400, "{problem}");
    let ok = put(serde_json::json!({"evidence": links(10, 6)})).await;
    assert_eq!(ok.status(), 200);
    let saved = app.app.store.manual_statuses().await.unwrap();
    assert_eq!(saved[0].evidence.len(), MAX_EVIDENCE_LINKS);
    assert_eq!(
        saved[0].notes.as_ref().map(|n| n.len()),
        Some(MAX_NOTES_CHARS)
    );
}

/// Issue 8 row 12: `postured action set` refuses what the API refuses (exit 64, nothing
/// printed as saved): notes of 40,000 characters, an unknown action id.
#[test]
fn action_set_refuses_long_notes_and_unknown_actions_with_exit_64() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("demo.db").display());
    let set = |args: &[&str]| {
        postured()
            .args(["action", "set", "--config", "config/demo.toml"])
            .args(args)
            .env("POSTURED__STORE__URL", &store)
            .output()
            .unwrap()
    };
    let notes = "n".repeat(40_000);
    for args in [
        vec![
            "--group",
            "default",
            "--action",
            "gdpr.records.ropa",
            "--notes",
            &notes,
        ],
        vec![
            "--group",
            "default",
            "--action",
            "../../etc/passwd",
            "--notes",
            "x",
        ],
        vec![
            "--tenant",
            "contoso-demo",
            "--action",
            "msgraph.no_such.action",
            "--notes",
            "x",
        ],
    ] {
        let out = set(&args);
        assert_eq!(
            out.status.code(),
            Some(64),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty());
    }
    let ok = set(&[
        "--group",
        "default",
        "--action",
        "gdpr.records.ropa",
        "--notes",
        "fine",
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

/// Issue 8 row 17: `check-config` reports a `[server] listen` address in use with its key
/// path, and `run` fails on it before it creates or migrates the store.
#[test]
fn a_listen_port_in_use_is_a_config_problem_and_run_fails_before_migrating() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = busy.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let cmd = |args: &[&str]| {
        postured()
            .args(args)
            .env("POSTURED__SERVER__LISTEN", &listen)
            .env("POSTURED__STORE__URL", format!("sqlite://{}", db.display()))
            .output()
            .unwrap()
    };
    let out = cmd(&["check-config", "config/demo.toml"]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("server.listen") && err.contains("in use"),
        "{err}"
    );
    let out = cmd(&["run", "--config", "config/demo.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot listen"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !db.exists(),
        "run migrated the store before failing to listen"
    );
    drop(busy);
}

/// Issue 8 row 21: log lines written to a pipe or file carry no ANSI colour codes.
#[test]
fn logs_carry_no_ansi_codes_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let out = postured()
        .args(["once", "--config", "config/demo.toml"])
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .env(
            "POSTURED__STORE__URL",
            format!("sqlite://{}", dir.path().join("demo.db").display()),
        )
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("INFO"), "no log lines: {err}");
    assert!(!err.contains('\u{1b}'), "ANSI codes in {err:?}");
}

/// Issue 8 row 22: `template list`, `history` and `export` work without the API token, the
/// webhook secret and the client secret in the environment; `check-config` still reports each
/// of them missing.
#[test]
fn offline_commands_need_no_server_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("postured.toml");
    std::fs::write(
        &config,
        r#"
[server]
api_token = { env = "POSTURED_TEST_UNSET_API_TOKEN" }
[store]
url = "sqlite://postured.db"
[alerts]
[[alerts.notifiers]]
name = "hook"
kind = "webhook"
url = "https://hooks.example.com/x"
secret = { env = "POSTURED_TEST_UNSET_HOOK_SECRET" }
[[tenants]]
id = "a"
  [[tenants.connectors]]
  kind = "msgraph"
  schedule = "0 0 * * * *"
  tenant_id = "00000000-0000-0000-0000-000000000000"
  client_id = "c"
  client_secret = { env = "POSTURED_TEST_UNSET_CLIENT_SECRET" }
"#,
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let out_file = dir.path().join("a.json");
    for args in [
        vec!["template", "list", "--config", config],
        vec!["history", "--config", config, "--tenant", "a"],
        vec![
            "export",
            "--config",
            config,
            "--tenant",
            "a",
            "--assessment",
            "a-data-protection-baseline",
            "--format",
            "json",
            "--out",
            out_file.to_str().unwrap(),
        ],
    ] {
        let out = postured().args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(out_file.exists());
    let out = postured().args(["check-config", config]).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    for path in [
        "server.api_token",
        "alerts.notifiers[0].secret",
        "tenants[0].connectors[0].client_secret",
    ] {
        assert!(err.contains(path), "missing {path} in {err}");
    }
}
