//! Real HTTP (wiremock on loopback) test of the privileged-access requests of the Graph
//! connector (SCuBA MS.AAD.7): the exact queries, `@odata.nextLink` paging, the `/users`
//! lookups 15 ids at a time, group expansion, an untyped eligible principal that is neither a
//! user nor a group, and a 403 on one PIM endpoint gapping only its namespace. Bodies are the
//! documentation's examples (`fixtures/msgraph/`) with one property changed where noted.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use postured_connectors::msgraph::scuba::Exclusions;
use postured_connectors::msgraph::signals::normalise;
use postured_connectors::msgraph::{MsGraphConfig, MsGraphConnector};
use postured_connectors::signal::SignalValue;
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TENANT: &str = "00000001-0001-0001-0001-000000000001";
const GA: &str = "62e90394-69f5-4237-9190-012177145e10";
const USER_ADMIN: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
const GROUP: &str = "0b5cf1d4-1a40-4b0e-8a52-2b4c0d0c0c01";
const SYNCED: &str = "ace08ec9-aa11-4ada-9145-addf0398233e";

fn fixture(rel: &str) -> Value {
    let p = format!("{}/fixtures/msgraph/{rel}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn ok(body: &Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.to_string(), "application/json")
}

/// The fourteen User Administrators of page 2 (ids derived from one pattern).
fn extra_user(i: usize) -> String {
    format!("{i:08x}-0000-4000-8000-00000000a000")
}

/// Answers `GET /users?$filter=id in ('a','b')&$select=...` with the users among the ids:
/// every user of the role assignments (the documentation's Joey Cruz, `SYNCED`, anchored
/// on-premises) and of page 2; any other id (the eligible service principal) is not a user.
struct Users;

impl Respond for Users {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let filter = req
            .url
            .query_pairs()
            .find(|(k, _)| k == "$filter")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let select = req
            .url
            .query_pairs()
            .find(|(k, _)| k == "$select")
            .map(|(_, v)| v.into_owned());
        assert_eq!(
            select.as_deref(),
            Some("id,accountEnabled,onPremisesImmutableId")
        );
        let ids: Vec<String> = filter
            .trim_start_matches("id in (")
            .trim_end_matches(')')
            .split(',')
            .map(|s| s.trim_matches('\'').to_owned())
            .collect();
        assert!(ids.len() <= 15, "{} ids in one request", ids.len());
        // users-list.json's first user, with the fields of the $select
        let template = &fixture("users-list.json")["value"][0];
        let known = |id: &str| {
            id == SYNCED
                || id == "6f87972e-2e7e-4b49-9980-eb3888bdcfe1"
                || id == "10fc1cc8-ac36-4186-b99b-0cf814aa2dd5"
                || id.ends_with("-0000-4000-8000-00000000a000")
        };
        let value: Vec<Value> = ids
            .iter()
            .filter(|id| known(id))
            .map(|id| {
                let mut u = template.clone();
                u["id"] = json!(id);
                u["accountEnabled"] = json!(true);
                u["onPremisesImmutableId"] = if id == SYNCED {
                    json!("5Hk3+Yx0HkSe/0lX/3Xq1g==")
                } else {
                    Value::Null
                };
                u
            })
            .collect();
        ok(&json!({ "value": value }))
    }
}

fn config(server: &MockServer) -> MsGraphConfig {
    let _ = rustls::crypto::ring::default_provider().install_default();
    MsGraphConfig {
        graph_base: format!("{}/v1.0", server.uri()),
        token_url: Some(format!("{}/token", server.uri())),
        request_timeout: Duration::from_secs(5),
        max_retries: 0,
        ..MsGraphConfig::new(TENANT, "app", SecretString::from("s3cret-value"))
    }
}

async fn mount(server: &MockServer) {
    let base = server.uri();
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ok(&fixture("../entra-oauth/token-response-success.json")))
        .mount(server)
        .await;
    // Role assignments: the documentation's page (three GA users), then a page with a group
    // holding GA, a service principal holding User Administrator and fourteen User
    // Administrators.
    let roles = "roleDefinitionId in ('62e90394-69f5-4237-9190-012177145e10','e8611ab8-c189-46e8-94e1-60213ab1f814','fe930be7-5e62-47db-91af-98c3a49a38b1','f28a1f50-f6e7-4571-818b-6a12f2af6b6c','29232cdf-9323-42fd-ade2-1d097af3e4de','8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2','9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3','158c047a-c907-4556-b7ef-446551a6b5f7')";
    let mut page1 = fixture("roleAssignments-list-expand-principal.json");
    page1["@odata.nextLink"] = json!(format!(
        "{base}/v1.0/roleManagement/directory/roleAssignments?$skiptoken=p2"
    ));
    Mock::given(method("GET"))
        .and(path("/v1.0/roleManagement/directory/roleAssignments"))
        .and(query_param("$filter", roles))
        .and(query_param("$expand", "principal"))
        .respond_with(ok(&page1))
        .expect(1)
        .mount(server)
        .await;
    let one = page1["value"][0].clone();
    let assignment = |id: &str, role: &str, odata: &str| {
        let mut a = one.clone();
        a["principalId"] = json!(id);
        a["principal"]["id"] = json!(id);
        a["principal"]["@odata.type"] = json!(odata);
        a["roleDefinitionId"] = json!(role);
        a
    };
    let mut page2 = vec![
        assignment(GROUP, GA, "#microsoft.graph.group"),
        assignment(
            "9c7b0000-0000-4000-8000-00000000005e",
            USER_ADMIN,
            "#microsoft.graph.servicePrincipal",
        ),
    ];
    page2.extend((0..14).map(|i| assignment(&extra_user(i), USER_ADMIN, "#microsoft.graph.user")));
    Mock::given(method("GET"))
        .and(path("/v1.0/roleManagement/directory/roleAssignments"))
        .and(query_param("$skiptoken", "p2"))
        .respond_with(ok(&json!({ "value": page2 })))
        .expect(1)
        .mount(server)
        .await;
    // The group's users (users-list.json, typed), and the untyped eligible principal is no
    // group either (404).
    let mut members = fixture("users-list.json");
    for m in members["value"].as_array_mut().unwrap() {
        m["@odata.type"] = json!("#microsoft.graph.user");
    }
    Mock::given(method("GET"))
        .and(path(format!(
            "/v1.0/groups/{GROUP}/transitiveMembers/microsoft.graph.user"
        )))
        .and(query_param(
            "$select",
            "id,accountEnabled,onPremisesImmutableId",
        ))
        .respond_with(ok(&members))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/v1\.0/groups/[^/]+/transitiveMembers"))
        .respond_with(
            ResponseTemplate::new(404).set_body_raw(
                r#"{"error": {"code": "Request_ResourceNotFound", "message": "Resource does not exist."}}"#,
                "application/json",
            ),
        )
        .with_priority(10)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .respond_with(Users)
        .expect(2) // 17 users and 1 untyped id: 15 + 3
        .mount(server)
        .await;
    // The documentation's eligibility, for Global Administrator.
    let mut eligibility = fixture("roleEligibilityScheduleInstances-list.json");
    eligibility["value"][0]["roleDefinitionId"] = json!(GA);
    Mock::given(method("GET"))
        .and(path(
            "/v1.0/roleManagement/directory/roleEligibilityScheduleInstances",
        ))
        .respond_with(ok(&eligibility))
        .expect(1)
        .mount(server)
        .await;
    // PIM active assignments: permission not granted.
    Mock::given(method("GET"))
        .and(path(
            "/v1.0/roleManagement/directory/roleAssignmentScheduleInstances",
        ))
        .respond_with(ResponseTemplate::new(403).set_body_raw(
            r#"{"error": {"code": "Authorization_RequestDenied", "message": "Insufficient privileges to complete the operation."}}"#,
            "application/json",
        ))
        .expect(1)
        .mount(server)
        .await;
    // PIM policies: the list example with the documentation's policy expanded in each.
    let mut policies = fixture("roleManagementPolicyAssignments-list.json");
    let policy = fixture("unifiedRoleManagementPolicy-get-expand-rules.json");
    for a in policies["value"].as_array_mut().unwrap() {
        a["scopeType"] = json!("DirectoryRole");
        a["policy"] = policy.clone();
    }
    Mock::given(method("GET"))
        .and(path("/v1.0/policies/roleManagementPolicyAssignments"))
        .and(query_param(
            "$filter",
            "scopeId eq '/' and scopeType eq 'DirectoryRole'",
        ))
        .and(query_param("$expand", "policy($expand=rules)"))
        .respond_with(ok(&policies))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn privileged_requests_paging_lookups_and_a_forbidden_part() {
    let server = MockServer::start().await;
    mount(&server).await;
    let c = MsGraphConnector::new(config(&server), reqwest::Client::new()).unwrap();

    let s = c.snapshot().await;
    let p = &s.privileged;
    assert_eq!(p.assignments.as_ref().unwrap().len(), 3 + 16);
    let principals = p.principals.as_ref().unwrap();
    assert_eq!(principals.len(), 3 + 1 + 1 + 14 + 1, "{principals:?}");
    let active = p.active.as_ref().unwrap_err();
    assert_eq!(active.kind, postured_connectors::ErrorKind::Forbidden);
    assert_eq!(
        active.endpoint,
        "/roleManagement/directory/roleAssignmentScheduleInstances"
    );
    assert_eq!(p.policies.as_ref().unwrap().len(), 2);

    let snap = normalise(
        &s,
        &Exclusions::default(),
        Utc.with_ymd_and_hms(2026, 11, 29, 8, 0, 0).unwrap(),
    );
    let get = |k: &str| {
        snap.signals
            .iter()
            .find(|x| x.key == k)
            .map(|x| x.value.clone())
    };
    // GA: three users, the group's two users; the eligible principal is no user.
    assert_eq!(
        get("msgraph.privileged.roles.global_admins_total"),
        Some(SignalValue::Number(5.0))
    );
    assert_eq!(
        get("msgraph.privileged.roles.users_total"),
        Some(SignalValue::Number(19.0))
    );
    assert_eq!(
        get("msgraph.privileged.roles.not_cloud_only"),
        Some(SignalValue::Text(SYNCED.into()))
    );
    assert_eq!(
        get("msgraph.privileged.roles.scuba.aad_7_2.met"),
        Some(SignalValue::Bool(true))
    );
    assert_eq!(
        get("msgraph.privileged.pim_policies.scuba.aad_7_6.met"),
        Some(SignalValue::Bool(false))
    );
    let gaps: Vec<&str> = snap
        .gaps
        .iter()
        .map(|g| g.prefix.as_str())
        .filter(|p| p.starts_with("msgraph.privileged."))
        .collect();
    assert_eq!(gaps, vec!["msgraph.privileged.pim_assignments."]);
    assert!(
        snap.signals
            .iter()
            .all(|x| !x.key.starts_with("msgraph.privileged.pim_assignments."))
    );
}
