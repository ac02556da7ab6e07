//! The `http_json` kind end to end through the daemon: two connectors of a tenant configured
//! against a GitHub-shaped loopback API (GitHub's own example payloads), their signals tested by
//! the user's catalog file (named by the connectors' `catalog` key, merged with the kinds'
//! catalogs) into statuses, points and the assessment score; a wrong-type answer and a server
//! error are `could_not_be_detected`, never failed; a broken user catalog stops start-up with
//! its key path.

mod support;

use postured::config::Config;
use postured::evaluation::TestStatus;
use postured::registry::Registry;
use serde_json::json;
use support::*;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const USER_CATALOG: &str = r#"
[[actions]]
id = "github.org.two_factor_required"
title = "Require two-factor authentication for the organization"
category = "Identity"
solution = "GitHub"
description = "The organization requires every member to enable two-factor authentication."
purpose = "preventative"
enforcement = "mandatory"
risk = "high"
rule = 'http_json.github_org.two_factor_required'

[[actions]]
id = "github.members.all_have_2fa"
title = "No member without two-factor authentication"
category = "Identity"
solution = "GitHub"
description = "Every member of the organization has two-factor authentication enabled."
purpose = "preventative"
enforcement = "mandatory"
risk = "high"
rule = 'http_json.github_2fa.members_without_2fa == 0.0'
"#;

fn fixture_json(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(format!(
        "{}/connectors/fixtures/http_json/github/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// GitHub-shaped API: `/orgs/{org}` and `/orgs/{org}/members?filter=2fa_disabled` in pages
/// linked by the `Link` header. `acme` requires 2FA and has no member without it on... two
/// pages of them (3 members); `beta` answers a string where a boolean is expected and its
/// members endpoint fails with 500.
async fn github(server: &MockServer) {
    let token = "Bearer not-a-real-secret";
    let mut org = fixture_json("orgs-get.json");
    Mock::given(method("GET"))
        .and(path("/orgs/acme"))
        .and(header("authorization", token))
        .respond_with(ResponseTemplate::new(200).set_body_json(org.clone()))
        .mount(server)
        .await;
    org["two_factor_requirement_enabled"] = json!("yes");
    Mock::given(method("GET"))
        .and(path("/orgs/beta"))
        .respond_with(ResponseTemplate::new(200).set_body_json(org))
        .mount(server)
        .await;
    let member = fixture_json("orgs-list-members.json")[0].clone();
    let base = server.uri();
    Mock::given(method("GET"))
        .and(path("/orgs/acme/members"))
        .and(query_param("filter", "2fa_disabled"))
        .and(query_param("page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([member.clone()])))
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/orgs/acme/members"))
        .and(query_param("filter", "2fa_disabled"))
        .and(header("authorization", token))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([member.clone(), member]))
                .insert_header(
                    "link",
                    format!(
                        "<{base}/orgs/acme/members?filter=2fa_disabled&per_page=2&page=2>; rel=\"next\", \
                         <{base}/orgs/acme/members?filter=2fa_disabled&per_page=2&page=2>; rel=\"last\""
                    )
                    .as_str(),
                ),
        )
        .with_priority(5)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/orgs/beta/members"))
        .respond_with(ResponseTemplate::new(500))
        .mount(server)
        .await;
}

fn tenant(id: &str, base: &str, catalog: &std::path::Path) -> String {
    format!(
        r#"
[[tenants]]
id = "{id}"
  [[tenants.connectors]]
  kind = "http_json"
  schedule = "0 0 * * * *"
  name = "github_2fa"
  url = "{base}/orgs/{id}/members?filter=2fa_disabled&per_page=2"
  auth = {{ kind = "bearer", token = {{ env = "TEST_CLIENT_SECRET" }} }}
  paging = {{ kind = "link_header" }}
  items = "@"
  max_retries = 0
  catalog = "{catalog}"
  signals = {{ members_without_2fa = {{ expr = "length(@)", type = "number" }} }}
  [[tenants.connectors]]
  kind = "http_json"
  schedule = "0 0 * * * *"
  name = "github_org"
  url = "{base}/orgs/{id}"
  auth = {{ kind = "bearer", token = {{ env = "TEST_CLIENT_SECRET" }} }}
  catalog = "{catalog}"
  signals = {{ two_factor_required = {{ expr = "two_factor_requirement_enabled", type = "bool" }} }}
"#,
        catalog = catalog.display()
    )
}

fn assessment(dir: &std::path::Path) -> String {
    std::fs::write(
        dir.join("github.toml"),
        r#"
id = "github"
title = "GitHub hygiene"
certification = "GitHub hygiene"
[[controls]]
id = "G-1"
family = "Identity"
title = "Two-factor authentication everywhere"
actions = ["github.org.two_factor_required", "github.members.all_have_2fa"]
"#,
    )
    .unwrap();
    format!(
        r#"
[model]
default_assessment = false
[templates]
dirs = ["{}"]
[[assessments]]
id = "acme-github"
tenant = "acme"
template = "github"
[[assessments]]
id = "beta-github"
tenant = "beta"
template = "github"
"#,
        dir.display()
    )
}

#[tokio::test]
async fn a_user_declared_source_is_polled_and_scored_by_the_users_catalog() {
    let server = MockServer::start().await;
    github(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("github.catalog.toml");
    std::fs::write(&catalog, USER_CATALOG).unwrap();
    let tenants = format!(
        "{}{}",
        tenant("acme", &server.uri(), &catalog),
        tenant("beta", &server.uri(), &catalog)
    );
    let app = TestApp::spawn(&assessment(dir.path()), &tenants).await;

    let t = app.app.tenant("acme").unwrap().clone();
    let members = app.app.poll(&t, 0).await;
    assert!(members.errors.is_empty(), "{:?}", members.errors);
    let org = app.app.poll(&t, 1).await;
    assert!(org.errors.is_empty(), "{:?}", org.errors);
    let eval = &org.evaluation;
    let status = |id: &str| {
        eval.actions
            .iter()
            .find(|a| a.action_id == id)
            .unwrap_or_else(|| panic!("{id} evaluated"))
            .clone()
    };
    let required = status("github.org.two_factor_required");
    assert_eq!(required.test_status, TestStatus::Passed, "{required:?}");
    let members = status("github.members.all_have_2fa");
    // Three members without 2FA across the two pages: failed (high risk), no points.
    assert_eq!(
        members.test_status,
        TestStatus::FailedHighRisk,
        "{members:?}"
    );
    assert_eq!(members.points_achieved, 0.0);
    assert!(
        (eval.score.points_achieved - required.points_possible).abs() < 1e-9,
        "{:?}",
        eval.score
    );
    assert!(
        (eval.score.points_possible - required.points_possible - members.points_possible).abs()
            < 1e-9
    );
    let signal = members
        .signals
        .iter()
        .find(|(k, _)| &**k == "http_json.github_2fa.members_without_2fa")
        .expect("signal shown with the action");
    assert_eq!(signal.1, postured_connectors::SignalValue::Number(3.0));

    // The two connectors' gaps are kept apart: once the members endpoint fails, its gap
    // outlives the other connector's successful poll in the store (the members
    // signal of the earlier poll stays in use until it expires, as the scoring contract says).
    Mock::given(method("GET"))
        .and(path("/orgs/acme/members"))
        .respond_with(ResponseTemplate::new(500))
        .with_priority(1)
        .mount(&server)
        .await;
    let failed = app.app.poll(&t, 0).await;
    assert_eq!(failed.errors.len(), 1, "{:?}", failed.errors);
    let org = app.app.poll(&t, 1).await;
    assert!(org.errors.is_empty(), "{:?}", org.errors);
    let stored = app.app.store.load_tenant_state("acme").await.unwrap();
    let prefixes: Vec<&str> = stored.gaps.iter().map(|g| g.prefix.as_str()).collect();
    assert_eq!(prefixes, ["http_json.github_2fa."], "{:?}", stored.gaps);

    // beta: a string where a bool is declared, a 500 on the members: undetected, never failed.
    let t = app.app.tenant("beta").unwrap().clone();
    let members = app.app.poll(&t, 0).await;
    assert!(!members.errors.is_empty());
    let org = app.app.poll(&t, 1).await;
    for a in &org.evaluation.actions {
        if a.action_id.starts_with("github.") {
            assert_eq!(a.test_status, TestStatus::CouldNotBeDetected, "{a:?}");
        }
    }
    let m = app.metrics().await;
    // Each connector has its own series, labelled with its id `http_json.<name>`.
    for id in ["http_json.github_2fa", "http_json.github_org"] {
        assert_eq!(
            sample(
                &m,
                &format!(
                    "postured_connector_polls_total{{connector=\"{id}\",outcome=\"failure\",tenant=\"beta\"}}"
                )
            ),
            Some(1.0),
            "{m}"
        );
    }
}

#[test]
fn a_broken_user_catalog_stops_start_up_with_its_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("broken.toml");
    std::fs::write(
        &catalog,
        USER_CATALOG.replace(
            "rule = 'http_json.github_org.two_factor_required'",
            "rule = 'http_json.github_org.two_factor_required &&'",
        ),
    )
    .unwrap();
    let text = format!(
        "[store]\nurl = \"sqlite://{}\"\n{}",
        dir.path().join("db").display(),
        tenant("acme", "https://api.github.com", &catalog)
    );
    let env = |k: &str| (k == "TEST_CLIENT_SECRET").then(|| "x".to_owned());
    let cfg = Config::parse_with(&text, &[], &env, &Registry::builtin(), None).unwrap();
    let err = postured::assembly::evaluator(&cfg).unwrap_err().to_string();
    assert!(err.contains("tenants[0].connectors[0].catalog"), "{err}");
    // A catalog file that does not exist.
    std::fs::remove_file(&catalog).unwrap();
    let err = postured::assembly::evaluator(&cfg).unwrap_err().to_string();
    assert!(
        err.contains("tenants[0].connectors[0].catalog: cannot read"),
        "{err}"
    );
}

#[test]
fn check_config_compiles_the_user_catalog_named_relative_to_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("catalog")).unwrap();
    let catalog = dir.path().join("catalog/github.toml");
    let config = dir.path().join("postured.toml");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[store]\nurl = \"sqlite://{}\"\n{}",
        dir.path().join("db").display(),
        tenant(
            "acme",
            "https://api.github.com",
            std::path::Path::new("catalog/github.toml")
        )
    );
    std::fs::write(&config, text).unwrap();
    let check = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_postured"))
            .arg("check-config")
            .arg(&config)
            .env("TEST_CLIENT_SECRET", "x")
            .output()
            .unwrap()
    };
    std::fs::write(&catalog, USER_CATALOG).unwrap();
    let ok = check();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    std::fs::write(
        &catalog,
        USER_CATALOG.replace("risk = \"high\"", "risk = \"huge\""),
    )
    .unwrap();
    let bad = check();
    assert_eq!(bad.status.code(), Some(64));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("tenants[0].connectors[0].catalog") && err.contains("risk"),
        "{err}"
    );
}

/// The worked example of `docs/connectors/http_json.md` is a valid configuration and catalog.
#[test]
fn the_documented_worked_example_is_valid() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/connectors/http_json.md"
    ))
    .unwrap();
    let blocks: Vec<&str> = doc
        .split("```toml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert_eq!(blocks.len(), 2, "a configuration and a catalog");
    let env = |k: &str| (k == "POSTURED_GITHUB_TOKEN").then(|| "t".to_owned());
    let cfg = Config::parse_with(blocks[0], &[], &env, &Registry::builtin(), None)
        .unwrap_or_else(|p| panic!("{p:?}"));
    assert_eq!(cfg.tenants[0].connectors.len(), 2);
    let catalog = postured::evaluation::catalog::Catalog::from_toml_str(blocks[1])
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(catalog.actions.len(), 2);
    postured::evaluation::Evaluator::new(catalog).expect("rules compile");
}
