//! The role-by-route matrix (issue 13 item 4): every operation of the served OpenAPI document,
//! called with an API token of every role, with a tenant-scoped token and without a token,
//! against a real daemon (loopback HTTP, real SQLite file, two tenants polled from wiremock).
//!
//! [`EXPECTED`] is the specification: the least role of every operation. The test fails when
//! the document has an operation missing from it (a new route without a role here), when an
//! operation declares another role than the one here, when a role at or above the declared one
//! is refused (401/403), when a role below is not answered 403, or when a call without a token
//! is not answered 401. A token scoped to one tenant gets 403 or 404 for another tenant's
//! paths. `/healthz` and `/readyz` are open; `/metrics` is open only with `metrics_public`.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use postured::access::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::*;
use wiremock::MockServer;

const GUID: &str = "00000001-0001-0001-0001-000000000001c";

/// Every operation of the API with the least role it needs: add a row with each new route.
const EXPECTED: &[(&str, &str, Role)] = &[
    ("get", "/api/v1/openapi.json", Role::Reader),
    ("get", "/api/v1/report", Role::Reader),
    ("get", "/api/v1/tenants/{tenant}/transitions", Role::Reader),
    ("get", "/api/v1/tenants/{tenant}/polls", Role::Reader),
    ("get", "/api/v1/assessments", Role::Reader),
    ("get", "/api/v1/scores", Role::Reader),
    ("put", "/api/v1/actions/{action}/status", Role::Contributor),
    ("get", "/api/v1/audit", Role::Reader),
    ("get", "/api/v1/audit/export", Role::Reader),
    (
        "post",
        "/api/v1/actions/{action}/evidence",
        Role::Contributor,
    ),
    ("get", "/api/v1/actions/{action}/evidence", Role::Reader),
    ("get", "/api/v1/evidence/{id}", Role::Reader),
    ("delete", "/api/v1/evidence/{id}", Role::Contributor),
    ("get", "/api/v1/tenants", Role::Reader),
    ("get", "/api/v1/tenants/{tenant}", Role::Reader),
    ("get", "/api/v1/score", Role::Reader),
    (
        "get",
        "/api/v1/assessments/{tenant}/{assessment}",
        Role::Reader,
    ),
    (
        "get",
        "/api/v1/assessments/{tenant}/{assessment}/controls/{control}",
        Role::Reader,
    ),
    (
        "get",
        "/api/v1/assessments/{tenant}/{assessment}/export",
        Role::Reader,
    ),
    ("get", "/api/v1/actions", Role::Reader),
    ("get", "/api/v1/actions/{action}", Role::Reader),
    ("get", "/api/v1/alerts", Role::Reader),
    ("get", "/api/v1/templates", Role::Reader),
    ("post", "/api/v1/templates", Role::Administrator),
    ("get", "/api/v1/templates/{id}", Role::Reader),
    ("get", "/api/v1/templates/{id}/export", Role::Reader),
    ("get", "/api/v1/tokens", Role::Administrator),
    ("post", "/api/v1/tokens", Role::Administrator),
    ("delete", "/api/v1/tokens/{id}", Role::Administrator),
];

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn call(&self, method: &str, path: &str, token: Option<&str>) -> (StatusCode, String) {
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if method == Method::POST || method == Method::PUT || method == Method::PATCH {
            req = req.json(&json!({}));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.text().await.unwrap_or_default())
    }

    async fn create_token(&self, body: Value) -> (String, String) {
        let resp = self
            .http
            .post(format!("{}/api/v1/tokens", self.base))
            .bearer_auth(API_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED, "{body}");
        let v: Value = resp.json().await.unwrap();
        (
            v["token"].as_str().unwrap().to_string(),
            v["id"].as_str().unwrap().to_string(),
        )
    }
}

/// The declared role of every operation of the document, by (method, path).
fn declared(doc: &Value) -> BTreeMap<(String, String), Role> {
    let mut out = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let roles = op["security"][0]["bearer"]
                .as_array()
                .unwrap_or_else(|| panic!("{method} {path}: no bearer security requirement"));
            assert_eq!(roles.len(), 1, "{method} {path}: exactly one role");
            let role = Role::parse(roles[0].as_str().unwrap_or_default())
                .unwrap_or_else(|| panic!("{method} {path}: unknown role {}", roles[0]));
            out.insert((method.to_string(), path.clone()), role);
        }
    }
    out
}

/// `path` with its `{parameter}`s filled from `values`, looked up first as `segment/{name}`
/// (the segment before it: `tokens/{id}`, `templates/{id}` name different things), then as
/// `name`; panics naming a parameter it has no value for (add one to `values` with the route).
fn fill(path: &str, values: &BTreeMap<&str, String>) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').expect("closing brace") + open;
        let name = &rest[open + 1..close];
        let before = out.clone() + &rest[..open];
        let segment = before
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("");
        let value = values
            .get(format!("{segment}/{{{name}}}").as_str())
            .or_else(|| values.get(name))
            .unwrap_or_else(|| panic!("{path}: no test value for the path parameter {name}"));
        out.push_str(&rest[..open]);
        out.push_str(value);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn every_operation_is_allowed_at_its_role_and_refused_below_it() {
    let graph = MockServer::start().await;
    mount_token_ok(&graph, GUID).await;
    mount_graph_examples(&graph).await;
    let tenants = format!(
        "{}{}",
        tenant_block("contoso", GUID, "client-1", &graph.uri(), "0 0 * * * *"),
        tenant_block("fabrikam", GUID, "client-2", &graph.uri(), "0 0 * * * *")
    );
    let app = TestApp::spawn("", &tenants).await;
    app.poll("contoso").await;
    app.poll("fabrikam").await;
    postured::http::install_crypto_provider();
    let client = Client {
        http: reqwest::Client::new(),
        base: format!("http://{}", app.addr),
    };

    let mut tokens = BTreeMap::new();
    for role in Role::ALL {
        let (token, _) = client
            .create_token(
                json!({"role": role.as_str(), "name": format!("matrix {}", role.as_str())}),
            )
            .await;
        tokens.insert(role, token);
    }
    let (scoped, _) = client
        .create_token(json!({"role": "administrator", "tenants": ["contoso"]}))
        .await;
    let (_, victim) = client.create_token(json!({"role": "reader"})).await;

    let (status, body) = client
        .call("get", "/api/v1/openapi.json", Some(&tokens[&Role::Reader]))
        .await;
    assert_eq!(status, StatusCode::OK);
    let doc: Value = serde_json::from_str(&body).unwrap();
    let declared = declared(&doc);
    let expected: BTreeMap<(String, String), Role> = EXPECTED
        .iter()
        .map(|(m, p, r)| ((m.to_string(), p.to_string()), *r))
        .collect();
    let undocumented: BTreeSet<_> = declared
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .collect();
    assert!(
        undocumented.is_empty(),
        "operations without a row in EXPECTED (give each new route its least role there): {undocumented:?}"
    );
    let missing: BTreeSet<_> = expected
        .keys()
        .filter(|k| !declared.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "operations no longer served: {missing:?}"
    );
    for (op, role) in &declared {
        assert_eq!(role, &expected[op], "{op:?} declares the wrong role");
    }

    let report: Value = serde_json::from_str(
        &client
            .call("get", "/api/v1/report", Some(&tokens[&Role::Reader]))
            .await
            .1,
    )
    .unwrap();
    let action = report["tenants"][0]["actions"][0]["id"]
        .as_str()
        .or_else(|| report["tenants"][0]["actions"][0]["action_id"].as_str())
        .unwrap_or_else(|| panic!("an action id in the report: {report:#}"))
        .to_string();
    // A piece of evidence (a link) on that action of contoso, for the evidence/{id} routes.
    let evidence: Value = client
        .http
        .post(format!(
            "{}/api/v1/actions/{action}/evidence?tenant=contoso",
            client.base
        ))
        .bearer_auth(API_TOKEN)
        .json(&json!({"url": "https://evidence.example.com/policy.pdf"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let evidence = evidence["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("an evidence id: {evidence}"))
        .to_string();
    // An assessment of contoso, one of its controls and its template, for routes that name
    // them (the listing is a list, or an object holding one under "assessments").
    let listed: Value = serde_json::from_str(
        &client
            .call("get", "/api/v1/assessments", Some(&tokens[&Role::Reader]))
            .await
            .1,
    )
    .unwrap_or_default();
    let assessment = listed
        .as_array()
        .or_else(|| listed["assessments"].as_array())
        .and_then(|l| l.iter().find(|a| a["tenant"] == "contoso"))
        .cloned()
        .unwrap_or_default();
    let mut named: Vec<(&str, String)> = Vec::new();
    for (key, value) in [
        ("assessment", &assessment["id"]),
        ("control", &assessment["controls"][0]["id"]),
        ("templates/{id}", &assessment["template_id"]),
    ] {
        if let Some(v) = value.as_str() {
            named.push((key, v.to_string()));
        }
    }
    let values: BTreeMap<&str, String> = [
        ("tenant", "contoso".to_string()),
        ("action", action),
        ("tokens/{id}", victim.clone()),
        ("evidence/{id}", evidence.clone()),
    ]
    .into_iter()
    .chain(named.clone())
    .collect();
    let other: BTreeMap<&str, String> = [
        ("tenant", "fabrikam".to_string()),
        ("action", values["action"].clone()),
        ("tokens/{id}", victim.clone()),
        ("evidence/{id}", evidence.clone()),
    ]
    .into_iter()
    .chain(named)
    .collect();

    let mut failures = Vec::new();
    for ((method, path), least) in &declared {
        let url = fill(path, &values);
        let (status, _) = client.call(method, &url, None).await;
        if status != StatusCode::UNAUTHORIZED {
            failures.push(format!(
                "{method} {path} without a token: {status}, expected 401"
            ));
        }
        for role in Role::ALL {
            let (status, body) = client.call(method, &url, Some(&tokens[&role])).await;
            let refused = status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN;
            if role >= *least && refused {
                failures.push(format!(
                    "{method} {path} as {}: {status} {body}, expected it allowed (declared {})",
                    role.as_str(),
                    least.as_str()
                ));
            }
            if role < *least && status != StatusCode::FORBIDDEN {
                failures.push(format!(
                    "{method} {path} as {}: {status}, expected 403 (declared {})",
                    role.as_str(),
                    least.as_str()
                ));
            }
        }
        if path.contains("{tenant}") {
            let (status, _) = client
                .call(method, &fill(path, &other), Some(&scoped))
                .await;
            if status != StatusCode::FORBIDDEN && status != StatusCode::NOT_FOUND {
                failures.push(format!(
                    "{method} {path} for another tenant with a token scoped to contoso: {status}, expected 403 or 404"
                ));
            }
            let (status, _) = client.call(method, &url, Some(&scoped)).await;
            if status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED {
                failures.push(format!(
                    "{method} {path} for its own tenant with a token scoped to contoso: {status}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "role matrix:\n{}", failures.join("\n"));
}

/// `/healthz` and `/readyz` answer without a token; `/metrics` does only with
/// `metrics_public = true`, else it needs a token (any role).
#[tokio::test]
async fn health_is_open_and_metrics_open_only_when_public() {
    let graph = MockServer::start().await;
    mount_token_ok(&graph, GUID).await;
    mount_graph_examples(&graph).await;
    let tenants = tenant_block("contoso", GUID, "client-1", &graph.uri(), "0 0 * * * *");
    for public in [true, false] {
        let app = TestApp::spawn_overridden(
            "",
            &tenants,
            &postured::registry::Registry::builtin(),
            &[(
                "POSTURED__SERVER__METRICS_PUBLIC",
                if public { "true" } else { "false" },
            )],
        )
        .await;
        for open in ["/healthz", "/readyz"] {
            assert_eq!(app.get(open, None).await.status(), StatusCode::OK, "{open}");
        }
        let anonymous = app.get("/metrics", None).await.status();
        if public {
            assert_eq!(anonymous, StatusCode::OK);
        } else {
            assert_eq!(anonymous, StatusCode::UNAUTHORIZED);
            let client = Client {
                http: reqwest::Client::new(),
                base: format!("http://{}", app.addr),
            };
            let (reader, _) = client.create_token(json!({"role": "reader"})).await;
            assert_eq!(
                app.get("/metrics", Some(&reader)).await.status(),
                StatusCode::OK
            );
        }
    }
}
