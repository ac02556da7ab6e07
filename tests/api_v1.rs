//! The REST API under `/api/v1` over a real daemon (loopback HTTP, a real SQLite file, the
//! official Microsoft Graph examples replayed by wiremock): tenants, the score with filters and
//! breakdowns, assessments and controls, improvement actions (filter, sort, cursor paging,
//! detail), templates (list, import, export), alerts; every answer checked against the schema
//! the served OpenAPI document declares for it, and the document itself against the official
//! OpenAPI 3.1 meta-schema (and, under scripts/test.sh, the `openapi-spec-validator` CLI).

mod support;

use std::collections::BTreeSet;

use axum::extract::State;
use postured::server::auth::{Principal, Role, Scope};
use serde_json::Value;
use support::*;
use wiremock::MockServer;

const GUID: &str = "00000001-0001-0001-0001-000000000001c";
const GUID2: &str = "00000002-0002-0002-0002-000000000002c";

async fn graph() -> MockServer {
    let graph = MockServer::start().await;
    mount_token_ok(&graph, GUID).await;
    mount_token_ok(&graph, GUID2).await;
    mount_graph_examples(&graph).await;
    graph
}

const EXTRA: &str = r#"
[[groups]]
id = "eu"
name = "EU"
[[assessments]]
id = "contoso-gdpr"
tenant = "contoso"
template = "gdpr"
[[assessments]]
id = "fabrikam-iso"
tenant = "fabrikam"
template = "iso-27001-2022"
group = "eu"
"#;

/// Two tenants (contoso, fabrikam) polled once each.
async fn two_tenants() -> (TestApp, MockServer) {
    let graph = graph().await;
    let tenants = format!(
        "{}{}",
        tenant_block("contoso", GUID, "client-1", &graph.uri(), "0 0 * * * *"),
        tenant_block("fabrikam", GUID2, "client-2", &graph.uri(), "0 0 * * * *")
    );
    let app = TestApp::spawn(EXTRA, &tenants).await;
    assert!(app.poll("contoso").await.stored);
    assert!(app.poll("fabrikam").await.stored);
    (app, graph)
}

/// The served OpenAPI document.
async fn document(app: &TestApp) -> Value {
    let r = app.get("/api/v1/openapi.json", Some(API_TOKEN)).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// The OpenAPI path template that `path` (without query) matches, the most literal first.
fn template_of<'a>(doc: &'a Value, path: &str) -> &'a str {
    let mut best: Option<(&str, usize)> = None;
    for template in doc["paths"].as_object().unwrap().keys() {
        let t: Vec<&str> = template.split('/').collect();
        let p: Vec<&str> = path.split('/').collect();
        if t.len() != p.len() {
            continue;
        }
        let matches = t
            .iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p);
        let params = t.iter().filter(|s| s.starts_with('{')).count();
        if matches && best.is_none_or(|(_, n)| params < n) {
            best = Some((template, params));
        }
    }
    best.unwrap_or_else(|| panic!("no path of the document matches {path}"))
        .0
}

/// What in `body` does not conform to the schema the document declares for `method path`
/// answered `status` with `content_type` (empty when it conforms; at most 5 errors).
fn violations(
    doc: &Value,
    method: &str,
    path: &str,
    status: u16,
    content_type: &str,
    body: &Value,
) -> Vec<String> {
    let path = path.split('?').next().unwrap();
    let template = template_of(doc, path);
    let response = &doc["paths"][template][method]["responses"][status.to_string()];
    assert!(
        !response.is_null(),
        "{method} {template} does not declare the status {status}"
    );
    let schema = &response["content"][content_type]["schema"];
    assert!(
        !schema.is_null(),
        "{method} {template} {status} declares no {content_type} schema: {response}"
    );
    let wrapper = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "allOf": [schema],
    });
    let validator = jsonschema::validator_for(&wrapper).expect("the declared schema compiles");
    validator
        .iter_errors(body)
        .take(5)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// Assert that `body` conforms to its declared schema ([`violations`]).
fn conforms(doc: &Value, method: &str, path: &str, status: u16, content_type: &str, body: &Value) {
    let errors = violations(doc, method, path, status, content_type, body);
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: the body does not conform to the declared schema: {errors:#?}"
    );
}

/// A client of the test app that checks every answer against the served document.
struct Api<'a> {
    app: &'a TestApp,
    doc: Value,
    client: reqwest::Client,
}

impl<'a> Api<'a> {
    async fn new(app: &'a TestApp) -> Api<'a> {
        postured::http::install_crypto_provider();
        let doc = document(app).await;
        Api {
            app,
            doc,
            client: reqwest::Client::new(),
        }
    }

    /// GET `path`, expect `status`; the body checked against its declared schema.
    async fn get(&self, path: &str, status: u16) -> Value {
        let r = self
            .client
            .get(format!("http://{}{path}", self.app.addr))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap();
        self.check("get", path, status, r).await
    }

    async fn check(&self, method: &str, path: &str, status: u16, r: reqwest::Response) -> Value {
        let got = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = r.text().await.unwrap();
        assert_eq!(got, status, "{method} {path}: {text}");
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"));
        let declared = if status >= 400 {
            assert_eq!(content_type, "application/problem+json", "{method} {path}");
            assert!(body["type"].as_str().unwrap().starts_with("/problems/"));
            "application/problem+json"
        } else {
            "application/json"
        };
        conforms(&self.doc, method, path, status, declared, &body);
        body
    }
}

fn principal(role: Role, tenants: Option<&[&str]>) -> Principal {
    Principal {
        subject: "test".into(),
        role,
        scope: Scope {
            tenants: tenants.map(|t| t.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>()),
            groups: None,
        },
    }
}

async fn body_of(response: axum::response::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1() {
    let graph = graph().await;
    let app = TestApp::spawn(
        "",
        &tenant_block("contoso", GUID, "client-1", &graph.uri(), "0 0 * * * *"),
    )
    .await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"].as_str().unwrap().get(..4), Some("3.1."));
    let meta: Value =
        serde_json::from_str(include_str!("fixtures/openapi/oas-3.1-schema.json")).unwrap();
    let validator = jsonschema::validator_for(&meta).expect("the meta-schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .take(10)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The meta-schema does not look into schemas: each component schema must compile as a
    // JSON Schema 2020-12 schema (OpenAPI 3.1's dialect).
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        let wrapper = serde_json::json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": doc["components"],
            "allOf": [schema],
        });
        jsonschema::validator_for(&wrapper)
            .unwrap_or_else(|e| panic!("component schema {name} does not compile: {e}"));
    }
    // Every reference resolves (the meta-schema does not check it).
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let pointer = r.strip_prefix('#').expect("local reference");
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
    // A body of the wrong shape fails its declared schema (the conformance checks can fail).
    let wrong = violations(
        &doc,
        "get",
        "/api/v1/tenants/x",
        200,
        "application/json",
        &serde_json::json!({"id": 5}),
    );
    assert!(wrong.len() >= 2, "{wrong:?}");
    // Every operation answers errors as problem details, names one role and has its own id.
    let mut operation_ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(
                operation_ids.insert(op["operationId"].as_str().unwrap().to_owned()),
                "{method} {path}: operationId {} is not unique",
                op["operationId"]
            );
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("401"), "{method} {path}");
            for (status, r) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(
                        r["content"]["application/problem+json"]["schema"].is_object(),
                        "{method} {path} {status} is not a problem"
                    );
                }
            }
            assert_eq!(op["security"][0]["bearer"].as_array().unwrap().len(), 1);
        }
    }

    // The real validator, as CI runs it (scripts/test.sh installs it).
    match std::env::var("POSTURED_TEST_OPENAPI_VALIDATOR") {
        Ok(validator) => {
            let file = app.dir.path().join("openapi.json");
            std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
            let out = std::process::Command::new(&validator)
                .arg("--schema")
                .arg("3.1.0")
                .arg(&file)
                .output()
                .expect("the validator runs");
            assert!(
                out.status.success(),
                "openapi-spec-validator: {}{}",
                String::from_utf8_lossy(&out.stdout)
                    .chars()
                    .take(3000)
                    .collect::<String>(),
                String::from_utf8_lossy(&out.stderr)
                    .chars()
                    .take(3000)
                    .collect::<String>()
            );
        }
        Err(_) => assert!(
            !servers_required(),
            "POSTURED_TEST_OPENAPI_VALIDATOR is not set (scripts/test.sh sets it)"
        ),
    }
}

#[tokio::test]
async fn tenants_score_assessments_and_controls() {
    let (app, _graph) = two_tenants().await;
    let api = Api::new(&app).await;

    let tenants = api.get("/api/v1/tenants", 200).await;
    let ids: Vec<&str> = tenants
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["contoso", "fabrikam"]);
    let contoso = api.get("/api/v1/tenants/contoso", 200).await;
    assert_eq!(contoso, tenants[0]);
    let connector = &contoso["connectors"][0];
    assert_eq!(connector["id"], "msgraph");
    assert_eq!(connector["last_poll"]["outcome"], "success");
    let evaluation = app.app.evaluation("contoso").await.unwrap();
    assert_eq!(
        contoso["score"]["points_achieved"].as_f64().unwrap(),
        evaluation.score.points_achieved
    );
    let missing = api.get("/api/v1/tenants/nobody", 404).await;
    assert_eq!(missing["type"], "/problems/unknown-tenant");
    // A path no route has is a problem too.
    let nothing = app.get("/api/v1/nothing", Some(API_TOKEN)).await;
    assert_eq!(nothing.status(), 404);
    assert_eq!(
        nothing.headers()["content-type"],
        "application/problem+json"
    );
    let nothing: Value = nothing.json().await.unwrap();
    assert_eq!(nothing["type"], "/problems/no-such-route");
    // The earlier routes answer their declared shapes too.
    let report = api.get("/api/v1/report", 200).await;
    assert_eq!(report["tenants"].as_array().unwrap().len(), 2);
    let transitions = api
        .get(
            "/api/v1/tenants/contoso/transitions?action=msgraph.mfa.all_users",
            200,
        )
        .await;
    assert_eq!(transitions.as_array().unwrap().len(), 1);
    let unknown = api.get("/api/v1/tenants/nobody/transitions", 404).await;
    assert_eq!(unknown["type"], "/problems/unknown-tenant");
    let bad_since = api
        .get("/api/v1/tenants/contoso/transitions?since=yesterday", 400)
        .await;
    assert_eq!(bad_since["type"], "/problems/invalid-query");
    // Polls: a second poll that changes nothing is counted, not recorded, and is the
    // connector's last poll.
    assert!(app.poll("contoso").await.stored);
    let polls = api.get("/api/v1/tenants/contoso/polls", 200).await;
    let days = polls["days"].as_array().unwrap();
    // (Two days only when the two polls straddle midnight UTC.)
    let total = |field: &str| days.iter().map(|d| d[field].as_u64().unwrap()).sum::<u64>();
    assert!(days.iter().all(|d| d["connector"] == "msgraph"), "{polls}");
    assert_eq!((total("polls"), total("successes")), (2, 2), "{polls}");
    assert_eq!(total("recorded"), 1, "the first poll only: {polls}");
    let recorded = polls["recorded"].as_array().unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["outcome"], "success");
    let last_started = &days.last().unwrap()["last_started_at"];
    let contoso = api.get("/api/v1/tenants/contoso", 200).await;
    assert_eq!(
        &contoso["connectors"][0]["last_poll"]["started_at"], last_started,
        "the last poll is the counted one"
    );
    assert_ne!(&recorded[0]["started_at"], last_started);
    let later = api
        .get(
            "/api/v1/tenants/contoso/polls?since=2999-01-01T00:00:00Z",
            200,
        )
        .await;
    assert_eq!(later["days"], serde_json::json!([]));
    assert_eq!(later["recorded"], serde_json::json!([]));

    // The score: every filter narrows it, the breakdown adds up to it.
    let all = api.get("/api/v1/score", 200).await;
    let contoso_score = api.get("/api/v1/score?tenant=contoso", 200).await;
    let possible = |v: &Value| v["score"]["points_possible"].as_f64().unwrap();
    let achieved = |v: &Value| v["score"]["points_achieved"].as_f64().unwrap();
    assert!(possible(&contoso_score) > 0.0 && possible(&contoso_score) < possible(&all));
    assert!(
        (achieved(&contoso_score) - evaluation.score.points_achieved).abs() < 1e-9,
        "the tenant's score is its evaluation's"
    );
    for (param, value) in [
        ("assessment", "contoso-gdpr"),
        ("regulation", "GDPR"),
        ("group", "eu"),
        ("category", "Identity"),
        ("solution", "Microsoft Entra ID"),
        ("testing_source", "manual"),
        ("test_status", "passed"),
    ] {
        let one = api
            .get(&format!("/api/v1/score?{param}={value}"), 200)
            .await;
        assert_eq!(one["filter"][param], value, "{param}");
        assert!(
            possible(&one) > 0.0 && possible(&one) < possible(&all),
            "{param}={value}: {one}"
        );
    }
    let by = api.get("/api/v1/score?by=tenant", 200).await;
    let parts: Vec<&str> = by["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[0].as_str().unwrap())
        .collect();
    assert_eq!(parts, ["contoso", "fabrikam"]);
    let by_category = api
        .get("/api/v1/score?tenant=contoso&by=category", 200)
        .await;
    let sum: f64 = by_category["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[1]["points_possible"].as_f64().unwrap())
        .sum();
    assert!((sum - possible(&contoso_score)).abs() < 1e-6);
    // The earlier name answers the same.
    assert_eq!(
        api.get("/api/v1/scores?tenant=contoso", 200).await,
        contoso_score
    );
    let bad = api.get("/api/v1/score?test_status=green", 400).await;
    assert_eq!(bad["type"], "/problems/invalid-query");
    let bad = api.get("/api/v1/score?by=colour", 400).await;
    assert_eq!(bad["type"], "/problems/invalid-query");

    // Assessments: the list keeps its earlier shape (an array of reports).
    let list = api.get("/api/v1/assessments", 200).await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "contoso-gdpr",
            "contoso-data-protection-baseline",
            "fabrikam-iso",
            "fabrikam-data-protection-baseline"
        ]
    );
    let only = api.get("/api/v1/assessments?tenant=fabrikam", 200).await;
    assert_eq!(only.as_array().unwrap().len(), 2);
    let iso = api
        .get("/api/v1/assessments/fabrikam/fabrikam-iso", 200)
        .await;
    assert_eq!(iso, list[2]);
    assert!(iso["progress"].as_f64().is_some() && iso["status"].is_string());
    let wrong_tenant = api
        .get("/api/v1/assessments/contoso/fabrikam-iso", 404)
        .await;
    assert_eq!(wrong_tenant["type"], "/problems/unknown-assessment");
    let control_id = iso["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["actions"].as_array().unwrap().len() >= 2)
        .expect("a control with two actions")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let control = api
        .get(
            &format!("/api/v1/assessments/fabrikam/fabrikam-iso/controls/{control_id}"),
            200,
        )
        .await;
    assert_eq!(control["control"]["id"], control_id.as_str());
    let action_ids: Vec<&Value> = control["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["id"])
        .collect();
    let declared: Vec<&Value> = control["control"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(action_ids, declared);
    let nope = api
        .get(
            "/api/v1/assessments/fabrikam/fabrikam-iso/controls/Z.9.99",
            404,
        )
        .await;
    assert_eq!(nope["type"], "/problems/unknown-control");
}

/// A caller limited to one tenant sees only it: the other is left out of lists and scores and
/// is not found on its own.
#[tokio::test]
async fn a_scoped_caller_sees_only_its_tenants() {
    let (app, _graph) = two_tenants().await;
    let state = || State(app.app.clone());
    let scoped = principal(Role::Reader, Some(&["fabrikam"]));

    let (status, list) =
        body_of(postured::server::tenants::list(state(), scoped.clone()).await).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], "fabrikam");
    let (status, hidden) = body_of(
        postured::server::tenants::get(
            state(),
            scoped.clone(),
            axum::extract::Path("contoso".to_owned()),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, hidden["type"].as_str()),
        (404, Some("/problems/unknown-tenant"))
    );

    let query = |q: &str| postured::server::extract::ApiQuery(serde_urlencoded_query(q));
    let (_, scores) = body_of(
        postured::server::assessments::score(state(), scoped.clone(), query("by=tenant")).await,
    )
    .await;
    let parts: Vec<&str> = scores["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[0].as_str().unwrap())
        .collect();
    assert_eq!(parts, ["fabrikam"]);
    let (_, everything) = body_of(
        postured::server::assessments::score(
            state(),
            principal(Role::Reader, None),
            query("tenant=fabrikam"),
        )
        .await,
    )
    .await;
    assert_eq!(scores["score"], everything["score"]);

    let (_, assessments) = body_of(
        postured::server::assessments::assessments(
            state(),
            scoped.clone(),
            postured::server::extract::ApiQuery(Default::default()),
        )
        .await,
    )
    .await;
    assert!(
        assessments
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["tenant"] == "fabrikam")
    );
    let (status, _) = body_of(
        postured::server::assessments::assessment(
            state(),
            scoped.clone(),
            axum::extract::Path(("contoso".to_owned(), "contoso-gdpr".to_owned())),
        )
        .await,
    )
    .await;
    assert_eq!(status, 404);
}

/// A score query parsed as the route parses it.
fn serde_urlencoded_query(q: &str) -> postured::server::assessments::ScoresQuery {
    let uri: axum::http::Uri = format!("/?{q}").parse().unwrap();
    axum::extract::Query::try_from_uri(&uri).unwrap().0
}

/// Every item of a listing by pages of `limit`, following `next_cursor`.
async fn all_pages(api: &Api<'_>, query: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/actions?{query}&limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = api.get(&path, 200).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= limit);
        out.extend(items.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(items.len(), limit, "a page before the last is full");
                cursor = Some(c.to_owned());
            }
            None => break,
        }
    }
    out
}

fn instance_ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["instance"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn actions_filter_sort_and_page_with_a_stable_order() {
    let (app, _graph) = two_tenants().await;
    let api = Api::new(&app).await;

    let everything = api.get("/api/v1/actions?limit=500", 200).await;
    let all = everything["items"].as_array().unwrap();
    assert!(all.len() > 50, "{}", all.len());
    assert_eq!(everything["limit"], 500);
    // Default: points, largest first, ties by instance id.
    for w in all.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        let (pa, pb) = (a["points"].as_u64().unwrap(), b["points"].as_u64().unwrap());
        assert!(pa > pb || (pa == pb && a["instance"].as_str() < b["instance"].as_str()));
    }
    let default_page = api.get("/api/v1/actions", 200).await;
    assert_eq!(default_page["limit"], 50);
    assert_eq!(default_page["items"].as_array().unwrap().len(), 50);

    // Filters: the model's, the title, implementation status, owner.
    let identity = api
        .get(
            "/api/v1/actions?tenant=contoso&category=Identity&limit=500",
            200,
        )
        .await;
    let identity = identity["items"].as_array().unwrap();
    assert!(!identity.is_empty());
    assert!(identity.iter().all(|i| i["category"] == "Identity"));
    let mfa = api.get("/api/v1/actions?q=MFA&limit=500", 200).await;
    let mfa = mfa["items"].as_array().unwrap();
    assert!(!mfa.is_empty());
    assert!(
        mfa.iter()
            .all(|i| i["title"].as_str().unwrap().to_lowercase().contains("mfa"))
    );
    let implemented = api
        .get(
            "/api/v1/actions?implementation_status=implemented&limit=500",
            200,
        )
        .await;
    assert!(
        implemented["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["implementation_status"] == "implemented")
    );

    // Pages of every size give the whole listing, each item once, in order; for each sort.
    let query = "assessment=contoso-gdpr";
    for sort in ["points", "title", "status", "updated"] {
        for order in ["asc", "desc"] {
            let q = format!("{query}&sort={sort}&order={order}");
            let whole = api
                .get(&format!("/api/v1/actions?{q}&limit=500"), 200)
                .await;
            let whole = instance_ids(whole["items"].as_array().unwrap());
            let n = whole.len();
            assert!(n >= 10, "{n}");
            for limit in [1, 2, 3, 7, n - 1, n, n + 1] {
                let paged = instance_ids(&all_pages(&api, &q, limit).await);
                assert_eq!(paged, whole, "sort={sort} order={order} limit={limit}");
            }
        }
    }

    // A change between pages: a person passes an action not yet listed; the listing by
    // title continues after the last item returned, nothing repeated or skipped.
    let q = "assessment=contoso-gdpr&sort=title";
    let first = api.get(&format!("/api/v1/actions?{q}&limit=3"), 200).await;
    let seen = instance_ids(first["items"].as_array().unwrap());
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let whole = api
        .get(&format!("/api/v1/actions?{q}&limit=500"), 200)
        .await;
    let whole_items = whole["items"].as_array().unwrap().clone();
    let target = whole_items
        .iter()
        .rev()
        .find(|i| i["scope"]["kind"] == "group" && i["test_status"] != "passed")
        .expect("a group action later in the listing");
    let target_id = target["id"].as_str().unwrap().to_owned();
    let put = api
        .client
        .put(format!("http://{}/api/v1/actions/{target_id}/status", app.addr))
        .bearer_auth(API_TOKEN)
        .json(&serde_json::json!({"group": "default", "test_status": "passed", "assigned_to": "dpo@contoso.example"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let mut rest = Vec::new();
    let mut cursor = Some(cursor);
    while let Some(c) = cursor {
        let page = api
            .get(&format!("/api/v1/actions?{q}&limit=4&cursor={c}"), 200)
            .await;
        rest.extend(page["items"].as_array().unwrap().iter().cloned());
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    let mut joined = seen.clone();
    joined.extend(instance_ids(&rest));
    assert_eq!(joined, instance_ids(&whole_items));
    let changed = rest.iter().find(|i| i["id"] == target_id.as_str()).unwrap();
    assert_eq!(changed["test_status"], "passed");
    assert_eq!(changed["testing_source"], "manual");
    let owned = api
        .get("/api/v1/actions?assigned_to=dpo%40contoso.example", 200)
        .await;
    assert_eq!(instance_ids(owned["items"].as_array().unwrap()).len(), 1);

    // Refusals.
    for (path, kind) in [
        ("/api/v1/actions?limit=0", "/problems/invalid-query"),
        ("/api/v1/actions?limit=501", "/problems/invalid-query"),
        ("/api/v1/actions?sort=colour", "/problems/invalid-query"),
        ("/api/v1/actions?cursor=zz", "/problems/invalid-cursor"),
    ] {
        let p = api.get(path, 400).await;
        assert_eq!(p["type"], kind, "{path}");
    }
    let long = "x".repeat(201);
    assert_eq!(
        api.get(&format!("/api/v1/actions?q={long}"), 400).await["type"],
        "/problems/invalid-query"
    );
    // A cursor of another listing (other sort) is refused.
    let by_points = api.get("/api/v1/actions?limit=1", 200).await;
    let c = by_points["next_cursor"].as_str().unwrap();
    let p = api
        .get(
            &format!("/api/v1/actions?limit=1&sort=title&cursor={c}"),
            400,
        )
        .await;
    assert_eq!(p["type"], "/problems/invalid-cursor");
}

#[tokio::test]
async fn an_action_in_detail() {
    let (app, _graph) = two_tenants().await;
    let api = Api::new(&app).await;
    let d = api
        .get("/api/v1/actions/msgraph.mfa.all_users?tenant=contoso", 200)
        .await;
    assert_eq!(d["action"]["id"], "msgraph.mfa.all_users");
    assert_eq!(d["action"]["test_status"], "partially_tested");
    assert!(!d["testing_logic"]["rule"].as_str().unwrap().is_empty());
    assert!(
        !d["testing_logic"]["description"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    assert_eq!(d["testing_logic"]["kind"], "msgraph");
    let signals = d["evaluation"]["signals"].as_array().unwrap();
    assert!(!signals.is_empty());
    assert!(
        signals
            .iter()
            .all(|s| s[0].as_str().unwrap().starts_with("msgraph."))
    );
    assert!(d["action"]["updated_at"].is_string());
    // History and ledger from the store: the first poll's transition.
    let history = d["history"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["to_status"], "partially_tested");
    assert_eq!(d["ledger"]["transitions"], 1);
    assert!(
        d["framework_controls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c.as_str().unwrap().starts_with("iso27001:"))
    );
    let controls = d["controls"].as_array().unwrap();
    assert!(!controls.is_empty());
    assert!(
        controls
            .iter()
            .all(|c| c["assessment"].as_str().unwrap().starts_with("contoso-"))
    );

    // A group-scoped action: no automatic evaluation, no stored history.
    let g = api
        .get("/api/v1/actions/gdpr.records.ropa?group=default", 200)
        .await;
    assert!(g["evaluation"].is_null());
    assert_eq!(g["action"]["scope"]["kind"], "group");
    assert!(
        g["regulations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "GDPR")
    );

    let p = api.get("/api/v1/actions/msgraph.mfa.all_users", 400).await;
    assert_eq!(p["type"], "/problems/wrong-scope");
    let p = api
        .get(
            "/api/v1/actions/msgraph.mfa.all_users?tenant=contoso&group=default",
            400,
        )
        .await;
    assert_eq!(p["type"], "/problems/wrong-scope");
    let p = api
        .get("/api/v1/actions/nothing.here?tenant=contoso", 404)
        .await;
    assert_eq!(p["type"], "/problems/unknown-action");
    // Outside the caller's scope: not found.
    let (status, hidden) = body_of(
        postured::server::actions::detail(
            State(app.app.clone()),
            principal(Role::Reader, Some(&["fabrikam"])),
            axum::extract::Path("msgraph.mfa.all_users".to_owned()),
            postured::server::extract::ApiQuery(postured::server::actions::DetailQuery {
                tenant: Some("contoso".into()),
                group: None,
            }),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, hidden["type"].as_str()),
        (404, Some("/problems/unknown-action"))
    );
}

impl Api<'_> {
    /// POST `body` as `content_type` to `path`, expect `status`; the answer checked.
    async fn post(&self, path: &str, content_type: &str, body: Vec<u8>, status: u16) -> Value {
        let r = self
            .client
            .post(format!("http://{}{path}", self.app.addr))
            .bearer_auth(API_TOKEN)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        self.check("post", path, status, r).await
    }

    /// GET a file: its content type and bytes.
    async fn file(&self, path: &str) -> (String, Vec<u8>) {
        let r = self
            .client
            .get(format!("http://{}{path}", self.app.addr))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(
            r.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment; filename=")
        );
        (ct, r.bytes().await.unwrap().to_vec())
    }
}

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

#[tokio::test]
async fn templates_list_import_and_export() {
    let (app, _graph) = two_tenants().await;
    let api = Api::new(&app).await;
    let list = api.get("/api/v1/templates", 200).await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"gdpr") && ids.contains(&"iso-27001-2022"),
        "{ids:?}"
    );
    let gdpr = api.get("/api/v1/templates/gdpr", 200).await;
    assert_eq!(gdpr["certification"], "GDPR");
    assert_eq!(
        api.get("/api/v1/templates/nope", 404).await["type"],
        "/problems/unknown-template"
    );

    // Export as CSV and as a workbook; import each back under a new id.
    let (ct, csv) = api.file("/api/v1/templates/gdpr/export?format=csv").await;
    assert!(ct.starts_with("text/csv"));
    let imported = api
        .post(
            "/api/v1/templates?id=gdpr-copy",
            "text/csv",
            csv.clone(),
            201,
        )
        .await;
    assert_eq!(imported["id"], "gdpr-copy");
    assert_eq!(
        imported["controls"],
        gdpr["controls"].as_array().unwrap().len()
    );
    let copy = api.get("/api/v1/templates/gdpr-copy", 200).await;
    assert_eq!(copy["controls"], gdpr["controls"]);
    let (ct, xlsx) = api.file("/api/v1/templates/gdpr/export?format=xlsx").await;
    assert_eq!(ct, XLSX);
    let from_workbook = api
        .post("/api/v1/templates?id=gdpr-workbook", XLSX, xlsx, 201)
        .await;
    assert_eq!(
        from_workbook["actions"],
        gdpr["actions"].as_array().unwrap().len()
    );
    let (_, json) = api
        .file("/api/v1/templates/gdpr-copy/export?format=json")
        .await;
    let json: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(json, copy);
    // Saved to the store: the next start loads it.
    let stored = app.app.store.list_templates().await.unwrap();
    assert!(stored.templates.iter().any(|t| t.id == "gdpr-copy"));

    // NIST's resolved MODERATE baseline catalog: the profile's short id and title, the
    // built-in SP 800-53 template's actions on every control; imported again, the derived id
    // avoids the one now taken; `?title=` overrides.
    let moderate = include_bytes!(
        "../config/frameworks/NIST_SP-800-53_rev5_MODERATE-baseline-resolved-profile_catalog-min.json"
    );
    let first = api
        .post(
            "/api/v1/templates",
            "application/json",
            moderate.to_vec(),
            201,
        )
        .await;
    assert_eq!(first["id"], "nist-800-53-r5-moderate");
    assert_eq!(
        first["title"],
        "NIST Special Publication 800-53 Revision 5.1.1 MODERATE IMPACT BASELINE"
    );
    assert_eq!(first["controls"], 287);
    assert_eq!(first["controls_without_actions"], 0);
    assert!(first["actions"].as_u64().unwrap() > 100, "{first}");
    let detail = api
        .get("/api/v1/templates/nist-800-53-r5-moderate", 200)
        .await;
    assert!(
        detail["controls"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| !c["actions"].as_array().unwrap().is_empty()),
        "a control without an action"
    );
    let second = api
        .post(
            "/api/v1/templates?title=Moderate%20again",
            "application/json",
            moderate.to_vec(),
            201,
        )
        .await;
    assert_eq!(second["id"], "nist-800-53-r5-moderate-2");
    assert_eq!(second["title"], "Moderate again");
    // CSF 2.0 (XML): the built-in template's 128 controls mapped, the rest reported.
    let csf = api
        .post(
            "/api/v1/templates",
            "application/xml",
            include_bytes!("../config/frameworks/NIST_CSF_v2.0_catalog.xml").to_vec(),
            201,
        )
        .await;
    assert_eq!(csf["id"], "nist-cybersecurity-framework-2-0");
    assert_eq!(csf["controls"], 219);
    assert_eq!(csf["controls_without_actions"], 91);

    // Refusals: the id taken, problems in the file, an unknown type, too large a body.
    let taken = api
        .post("/api/v1/templates?id=gdpr", "text/csv", csv.clone(), 409)
        .await;
    assert_eq!(taken["type"], "/problems/template-exists");
    let broken = b"templateId,title\nx,\n".to_vec();
    let invalid = api.post("/api/v1/templates", "text/csv", broken, 422).await;
    assert_eq!(invalid["type"], "/problems/invalid-template");
    assert!(
        !invalid["errors"].as_array().unwrap().is_empty(),
        "{invalid}"
    );
    let odd = api.post("/api/v1/templates", "text/plain", csv, 415).await;
    assert_eq!(odd["type"], "/problems/unsupported-media-type");
    let huge = vec![b'a'; 32 * 1024 * 1024 + 1];
    let large = api.post("/api/v1/templates", "text/csv", huge, 413).await;
    assert_eq!(large["type"], "/problems/body-too-large");
    let bad = api
        .get("/api/v1/templates/gdpr/export?format=pdf", 400)
        .await;
    assert_eq!(bad["type"], "/problems/invalid-query");
    assert!(
        !api.get("/api/v1/templates", 200)
            .await
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == "x")
    );

    // The assessment export: the CLI's formats.
    let report = api
        .get("/api/v1/assessments/contoso/contoso-gdpr", 200)
        .await;
    let (ct, json) = api
        .file("/api/v1/assessments/contoso/contoso-gdpr/export?format=json")
        .await;
    assert_eq!(ct, "application/json");
    let exported: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(exported["id"], report["id"]);
    assert_eq!(exported["score"], report["score"]);
    let (ct, oscal) = api
        .file("/api/v1/assessments/contoso/contoso-gdpr/export?format=oscal")
        .await;
    assert_eq!(ct, "application/oscal.assessment-results+json");
    let oscal: Value = serde_json::from_slice(&oscal).unwrap();
    assert!(oscal["assessment-results"].is_object());
    let (ct, xlsx) = api
        .file("/api/v1/assessments/contoso/contoso-gdpr/export?format=xlsx")
        .await;
    assert_eq!(ct, XLSX);
    assert_eq!(&xlsx[..2], b"PK");
    let (ct, csv) = api
        .file("/api/v1/assessments/contoso/contoso-gdpr/export?format=csv")
        .await;
    assert!(ct.starts_with("text/csv") && !csv.is_empty());
    assert_eq!(
        api.get("/api/v1/assessments/contoso/nope/export?format=csv", 404)
            .await["type"],
        "/problems/unknown-assessment"
    );
}

/// Graph answering every user registered for self-service password reset (`true`) or none.
async fn mount_sspr(graph: &MockServer, registered: bool) {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    graph.reset().await;
    mount_token_ok(graph, GUID).await;
    mount_token_ok(graph, GUID2).await;
    mount_graph_examples(graph).await;
    let body = if registered {
        fixture("msgraph/userRegistrationDetails-list.json")
            .replace("\"isSsprRegistered\": false", "\"isSsprRegistered\": true")
    } else {
        fixture("msgraph/userRegistrationDetails-list.json")
            .replace("\"isSsprRegistered\": true", "\"isSsprRegistered\": false")
    };
    Mock::given(method("GET"))
        .and(path(
            "/v1.0/reports/authenticationMethods/userRegistrationDetails",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
        .with_priority(1)
        .mount(graph)
        .await;
}

#[tokio::test]
async fn alerts_with_their_delivery_state() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    let graph = MockServer::start().await;
    mount_sspr(&graph, true).await;
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&hook)
        .await;
    let keydir = tempfile::tempdir().unwrap();
    let key = keydir.path().join("hook.key");
    std::fs::write(&key, "a webhook secret\n").unwrap();
    let extra = format!(
        r#"
[alerts]
debounce_observations = 2
[alerts.delivery]
backoff_initial = "1s"
backoff_max = "2s"
[[alerts.notifiers]]
name = "hook"
kind = "webhook"
url = "{}/hook"
secret = {{ file = "{}" }}
timeout = "5s"
[[alerts.routes]]
kinds = ["regression"]
notifiers = ["hook"]
"#,
        hook.uri(),
        key.display()
    );
    let tenants = format!(
        "{}{}",
        tenant_block("contoso", GUID, "client-1", &graph.uri(), "0 0 * * * *"),
        tenant_block("fabrikam", GUID2, "client-2", &graph.uri(), "0 0 * * * *")
    );
    let app = TestApp::spawn(&extra, &tenants).await;
    for t in ["contoso", "fabrikam"] {
        app.poll(t).await;
    }
    mount_sspr(&graph, false).await;
    for _ in 0..2 {
        for t in ["contoso", "fabrikam"] {
            app.poll(t).await;
        }
    }
    let api = Api::new(&app).await;
    let pending = api.get("/api/v1/alerts", 200).await;
    let items = pending["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{pending}");
    assert!(
        items
            .iter()
            .all(|n| n["state"] == "pending" && n["attempts"] == 0)
    );
    assert!(
        items[0]["id"].as_i64() > items[1]["id"].as_i64(),
        "newest first"
    );
    assert!(items.iter().all(|n| n["event"]["kind"] == "regression"));

    // One delivery round: the receiver answers 503, the attempt is recorded.
    let delivery = postured::app::delivery::Delivery::new(
        app.app.store.clone(),
        app.app.config.alerts.clone(),
        postured::http::http_client().expect("client"),
        app.app.metrics.clone(),
    );
    let round = delivery.round(chrono::Utc::now(), None).await.unwrap();
    assert!(round.retried >= 1 && round.delivered == 0, "{round:?}");
    let after = api.get("/api/v1/alerts?state=pending", 200).await;
    let tried: Vec<&Value> = after["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["attempts"] == 1)
        .collect();
    assert_eq!(tried.len() as u32, round.retried, "{after}");
    assert!(
        tried
            .iter()
            .all(|n| n["last_error"].as_str().unwrap().contains("503")),
        "{after}"
    );
    assert!(
        api.get("/api/v1/alerts?state=delivered", 200).await["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let of_one = api.get("/api/v1/alerts?tenant=fabrikam", 200).await;
    let of_one = of_one["items"].as_array().unwrap();
    assert_eq!(of_one.len(), 1);
    assert_eq!(of_one[0]["event"]["tenant"], "fabrikam");

    // Pages of one: each row once, in order.
    let first = api.get("/api/v1/alerts?limit=1", 200).await;
    let c = first["next_cursor"].as_str().unwrap();
    let second = api
        .get(&format!("/api/v1/alerts?limit=1&cursor={c}"), 200)
        .await;
    assert!(second["next_cursor"].is_null());
    assert_eq!(first["items"][0], after["items"][0]);
    assert_eq!(second["items"][0], after["items"][1]);
    let other = api
        .get(
            &format!("/api/v1/alerts?limit=1&state=failed&cursor={c}"),
            400,
        )
        .await;
    assert_eq!(other["type"], "/problems/invalid-cursor");
    assert_eq!(
        api.get("/api/v1/alerts?limit=501", 400).await["type"],
        "/problems/invalid-query"
    );
    assert_eq!(
        api.get("/api/v1/alerts?tenant=nobody", 404).await["type"],
        "/problems/unknown-tenant"
    );

    // A caller limited to contoso sees its row only, even through pages of one.
    let scoped = principal(Role::Reader, Some(&["contoso"]));
    let (_, page) = body_of(
        postured::server::alerts::list(
            State(app.app.clone()),
            scoped.clone(),
            postured::server::extract::ApiQuery(postured::server::alerts::AlertsQuery {
                limit: Some(1),
                ..Default::default()
            }),
        )
        .await,
    )
    .await;
    let rows = page["items"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["event"]["tenant"], "contoso");
    assert!(page["next_cursor"].is_null(), "{page}");
}

/// A query string the audit and evidence routes cannot parse (an unknown parameter, a value of
/// the wrong type) answers the 400 problem `/problems/invalid-query` their operations declare,
/// never axum's plain-text rejection.
#[tokio::test]
async fn audit_and_evidence_routes_answer_a_bad_query_with_the_problem() {
    let (app, _graph) = two_tenants().await;
    let api = Api::new(&app).await;
    api.get("/api/v1/audit?limit=2", 200).await;
    let action = "/api/v1/actions/iso.policy/evidence";
    for path in [
        "/api/v1/audit?colour=red".to_string(),
        "/api/v1/audit?limit=many".to_string(),
        "/api/v1/audit?since=yesterday".to_string(),
        "/api/v1/audit/export?format=pdf".to_string(),
        "/api/v1/audit/export?cursor=x".to_string(),
        format!("{action}?group=eu&colour=red"),
    ] {
        let p = api.get(&path, 400).await;
        assert_eq!(p["type"], "/problems/invalid-query", "{path}");
    }
    let p = api
        .post(
            &format!("{action}?group=eu&supersedes=latest"),
            "application/json",
            br#"{"url": "https://intranet.example/policy"}"#.to_vec(),
            400,
        )
        .await;
    assert_eq!(p["type"], "/problems/invalid-query");
}
