//! A fast loopback Microsoft Graph for the fleet benchmark: every endpoint the `msgraph`
//! connector reads (`connectors/src/msgraph/mod.rs`, `privileged.rs`) and the Entra token
//! endpoint, answered from bodies generated once at start from the documented shapes in
//! `connectors/fixtures/msgraph/` (official Graph examples), scaled to a realistic tenant:
//! [`USERS`] users over pages of [`PAGE`] in `userRegistrationDetails`, [`CONTROLS`] Secure
//! Score control profiles (with their scores), [`CA_POLICIES`] conditional access policies.
//! Every tenant gets the same bodies (the connector does not read the tenant from them).
//!
//! The server runs on its own thread with a current-thread runtime, so its CPU time is that
//! thread's ([`Graph::cpu`], `GET /__bench/cpu`) and the benchmark subtracts it from the
//! process's. A request for a path it does not know is answered 404 and counted
//! ([`Graph::unserved`]): a new connector endpoint shows up there instead of as a silent gap.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Users in the MFA registration report.
pub const USERS: usize = 500;
/// Users per `userRegistrationDetails` page (Graph's default page is 100 rows or more).
pub const PAGE: usize = 100;
/// Secure Score control profiles (and control scores).
pub const CONTROLS: usize = 60;
/// Conditional access policies.
pub const CA_POLICIES: usize = 30;

const REGISTRATION: &str = "/reports/authenticationMethods/userRegistrationDetails";

/// The generated bodies, by Graph path (without the version segment).
struct Bodies {
    by_path: HashMap<&'static str, Bytes>,
    registration_pages: Vec<Bytes>,
    token: Bytes,
    not_found: Bytes,
    unserved: AtomicU64,
}

/// The running loopback Graph.
pub struct Graph {
    /// `http://127.0.0.1:port`: the authority; the Graph base is `{base}/v1.0`.
    pub base: String,
    bodies: Arc<Bodies>,
}

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("connectors/fixtures")
}

fn fixture(name: &str) -> Value {
    let path = fixtures_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

fn values(name: &str) -> Vec<Value> {
    match fixture(&format!("msgraph/{name}")).get("value") {
        Some(Value::Array(v)) if !v.is_empty() => v.clone(),
        _ => panic!("fixture msgraph/{name} has no `value` rows"),
    }
}

fn guid(kind: u32, i: usize) -> String {
    format!("{kind:08x}-0000-4000-8000-{i:012x}")
}

fn bytes(v: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).expect("JSON serialises"))
}

/// `n` rows cycling through the fixture's rows, each with `edit` applied (its index given).
fn scaled(rows: &[Value], n: usize, edit: impl Fn(&mut Value, usize)) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let mut row = rows[i % rows.len()].clone();
            edit(&mut row, i);
            row
        })
        .collect()
}

/// The Secure Score control ids the catalog names (`secure_score_control = "..."`), so the
/// generated profiles feed real actions as well as generated ones.
fn catalog_controls() -> Vec<String> {
    let catalog = postured_connectors::msgraph::settings::CATALOG;
    let mut ids: Vec<String> = catalog
        .lines()
        .filter_map(|l| l.trim().strip_prefix("secure_score_control = \""))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

fn build(base: &str) -> Bodies {
    let mut by_path: HashMap<&'static str, Bytes> = HashMap::new();

    // MFA registration report: USERS rows over pages of PAGE, linked by @odata.nextLink.
    let users = scaled(
        &values("userRegistrationDetails-list.json"),
        USERS,
        |u, i| {
            u["id"] = json!(guid(1, i));
            u["userPrincipalName"] = json!(format!("user{i}@contoso.example"));
            u["userDisplayName"] = json!(format!("User {i}"));
            u["isAdmin"] = json!(i % 50 == 0);
            u["isMfaRegistered"] = json!(i % 10 != 0);
        },
    );
    let pages = users.chunks(PAGE).count();
    let registration_pages = users
        .chunks(PAGE)
        .enumerate()
        .map(|(k, rows)| {
            let mut page = json!({ "value": rows });
            if k + 1 < pages {
                page["@odata.nextLink"] =
                    json!(format!("{base}/v1.0{REGISTRATION}?$skiptoken={}", k + 1));
            }
            bytes(&page)
        })
        .collect();

    // Secure Score: CONTROLS profiles and the latest score with one control score each.
    let mut controls = catalog_controls();
    controls.truncate(CONTROLS);
    for i in controls.len()..CONTROLS {
        controls.push(format!("BenchControl{i}"));
    }
    let profiles = scaled(
        &values("secureScoreControlProfiles-list.json"),
        CONTROLS,
        |p, i| {
            p["id"] = json!(controls[i]);
            p["title"] = json!(format!("Control {}", controls[i]));
            p["maxScore"] = json!(1 + (i % 10));
        },
    );
    let mut score = values("secureScores-list.json").swap_remove(0);
    let scores: Vec<Value> = controls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({ "controlCategory": "Identity", "controlName": c,
                    "description": format!("Control {c}"), "score": (i % 7) as f64 })
        })
        .collect();
    score["controlScores"] = json!(scores);
    by_path.insert(
        "/security/secureScoreControlProfiles",
        bytes(&json!({ "value": profiles })),
    );
    by_path.insert(
        "/security/secureScores",
        bytes(&json!({ "value": [score] })),
    );

    // Conditional access: CA_POLICIES from the list and get examples.
    let mut ca = values("conditionalAccessPolicies-list.json");
    ca.push(fixture("msgraph/conditionalAccessPolicy-get.json"));
    ca.push(fixture(
        "msgraph/conditionalAccessPolicy-get-authenticationStrength.json",
    ));
    let policies = scaled(&ca, CA_POLICIES, |p, i| {
        if let Some(o) = p.as_object_mut() {
            o.remove("@odata.context");
            o.remove("@microsoft.graph.tips");
        }
        p["id"] = json!(guid(2, i));
        p["displayName"] = json!(format!("Policy {i}"));
    });
    by_path.insert(
        "/identity/conditionalAccess/policies",
        bytes(&json!({ "value": policies })),
    );

    // The other endpoints, as documented.
    for (path, file) in [
        (
            "/policies/identitySecurityDefaultsEnforcementPolicy",
            "identitySecurityDefaultsEnforcementPolicy-get.json",
        ),
        (
            "/security/dataSecurityAndGovernance/sensitivityLabels",
            "sensitivityLabels-list-v1.json",
        ),
        ("/subscribedSkus", "subscribedSkus-list.json"),
        (
            "/policies/authenticationMethodsPolicy",
            "authenticationMethodsPolicy-get-featureSettings.json",
        ),
        (
            "/policies/authorizationPolicy",
            "authorizationPolicy-get.json",
        ),
        (
            "/policies/adminConsentRequestPolicy",
            "adminConsentRequestPolicy-get.json",
        ),
        ("/domains", "domains-list.json"),
        (
            "/roleManagement/directory/roleAssignments",
            "roleAssignments-list-expand-principal.json",
        ),
        (
            "/roleManagement/directory/roleEligibilityScheduleInstances",
            "roleEligibilityScheduleInstances-list.json",
        ),
        (
            "/roleManagement/directory/roleAssignmentScheduleInstances",
            "roleAssignmentScheduleInstances-list.json",
        ),
        (
            "/policies/roleManagementPolicyAssignments",
            "roleManagementPolicyAssignments-list.json",
        ),
        ("/users", "users-list.json"),
    ] {
        by_path.insert(path, bytes(&fixture(&format!("msgraph/{file}"))));
    }
    Bodies {
        by_path,
        registration_pages,
        token: bytes(&fixture("entra-oauth/token-response-success.json")),
        not_found: bytes(&fixture("msgraph/error-generic.json")),
        unserved: AtomicU64::new(0),
    }
}

fn json_body(body: &Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response()
}

async fn answer(State(b): State<Arc<Bodies>>, uri: Uri) -> Response {
    let path = uri.path();
    if path == "/__bench/cpu" {
        return thread_cpu().as_micros().to_string().into_response();
    }
    if path.ends_with("/oauth2/v2.0/token") {
        return json_body(&b.token);
    }
    let graph = path
        .strip_prefix("/v1.0")
        .or_else(|| path.strip_prefix("/beta"))
        .unwrap_or(path);
    if graph == REGISTRATION {
        let page = uri
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("$skiptoken=")))
            .and_then(|k| k.parse::<usize>().ok())
            .unwrap_or(0);
        if let Some(body) = b.registration_pages.get(page) {
            return json_body(body);
        }
    } else if graph.starts_with("/groups/") && graph.contains("/transitiveMembers") {
        return json_body(&b.by_path["/users"]);
    } else if let Some(body) = b.by_path.get(graph) {
        return json_body(body);
    }
    b.unserved.fetch_add(1, Ordering::Relaxed);
    (StatusCode::NOT_FOUND, json_body(&b.not_found)).into_response()
}

/// CPU time (user + system) of the calling thread.
pub fn thread_cpu() -> Duration {
    crate::probe::rusage(libc::RUSAGE_THREAD)
}

impl Graph {
    /// Bind 127.0.0.1:0, generate the bodies and serve them from a new thread.
    pub fn start() -> Graph {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr: SocketAddr = listener.local_addr().expect("local address");
        let base = format!("http://{addr}");
        let bodies = Arc::new(build(&base));
        let app = Router::new().fallback(answer).with_state(bodies.clone());
        std::thread::Builder::new()
            .name("bench-graph".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("graph runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                    axum::serve(listener, app).await.expect("graph serves");
                });
            })
            .expect("graph thread");
        Graph { base, bodies }
    }

    /// Requests answered 404 so far (paths the bench does not serve).
    pub fn unserved(&self) -> u64 {
        self.bodies.unserved.load(Ordering::Relaxed)
    }

    /// CPU time the server thread has used so far.
    pub async fn cpu(&self, client: &reqwest::Client) -> Duration {
        let text = client
            .get(format!("{}/__bench/cpu", self.base))
            .send()
            .await
            .expect("graph answers")
            .text()
            .await
            .expect("graph body");
        Duration::from_micros(text.trim().parse().expect("micros"))
    }
}
