//! Table tests of the SCuBA privileged-access checks (MS.AAD.7.1v1–7.9v1,
//! [`super::privileged_signals`]): each row names the policy it is about and builds Graph-shaped
//! data from the documentation's examples (`connectors/fixtures/msgraph/role*.json`,
//! `unifiedRoleManagementPolicy-get-expand-rules.json`, `users-list.json`) with one property
//! changed. That a P2-only action is not applicable without Entra ID P2 is the catalog rule's
//! job (tested in `src/evaluation/evaluator.rs`); here the P2 flag only decides whether the
//! eligibilities are needed.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::MsGraphSnapshot;
use super::model::SubscribedSku;
use super::privileged::{
    PolicyAssignment, PrivilegedAccess, PrivilegedUser, Resolved, RoleAssignment,
};
use super::privileged_signals::{PIM_ASSIGNMENTS, PIM_POLICIES, ROLES};
use super::scuba::{Declared, Exclusions, PRIVILEGED_ROLES};
use super::signals::normalise;
use crate::http::{ODataPage, parse_body};
use crate::signal::{SignalValue, Snapshot};
use crate::{CollectionError, ErrorKind};

const GA: &str = "62e90394-69f5-4237-9190-012177145e10";
const USER_ADMIN: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";

fn fixture(name: &str) -> Value {
    let p = format!("{}/fixtures/msgraph/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
    serde_json::from_slice(&bytes).unwrap()
}

fn items(name: &str) -> Vec<Value> {
    fixture(name)["value"].as_array().unwrap().clone()
}

fn parse<T: DeserializeOwned>(v: Vec<Value>) -> Vec<T> {
    let body = serde_json::to_vec(&json!({ "value": v })).unwrap();
    parse_body::<ODataPage<T>>("/t", &body).unwrap().value
}

/// The documentation's GA assignment (Joey Cruz) with `principal` id and `role` changed.
fn assignment(principal: &str, role: &str) -> Value {
    let mut a = items("roleAssignments-list-expand-principal.json")[0].clone();
    a["principalId"] = json!(principal);
    a["principal"]["id"] = json!(principal);
    a["roleDefinitionId"] = json!(role);
    a
}

/// The documentation's active instance with `principal`, `role`, start and end changed.
fn instance(principal: &str, role: &str, start: Value, end: Value) -> Value {
    let mut i = items("roleAssignmentScheduleInstances-list.json")[0].clone();
    i["principalId"] = json!(principal);
    i["roleDefinitionId"] = json!(role);
    i["startDateTime"] = start;
    i["endDateTime"] = end;
    i
}

/// The documentation's policy assignment (GA), for `role`, with the documentation's policy
/// (`rules` of `unifiedRoleManagementPolicy-get-expand-rules.json`) expanded in it, scope type
/// as requested (`DirectoryRole`), and `change` applied to the policy.
fn policy(role: &str, change: &dyn Fn(&mut Value)) -> Value {
    let mut a = items("roleManagementPolicyAssignments-list.json")[0].clone();
    a["roleDefinitionId"] = json!(role);
    a["scopeType"] = json!("DirectoryRole");
    let mut p = fixture("unifiedRoleManagementPolicy-get-expand-rules.json");
    change(&mut p);
    a["policy"] = p;
    a
}

/// Set `field` of the rule `id` of a policy.
fn rule(p: &mut Value, id: &str, field: &str, value: Value) {
    let r = p["rules"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("rule {id}"));
    *r.pointer_mut(field)
        .unwrap_or_else(|| panic!("{id}{field}")) = value;
}

/// A policy meeting 7.6–7.9: approval required, a recipient on every admin alert.
fn good_policy(p: &mut Value) {
    rule(
        p,
        "Approval_EndUser_Assignment",
        "/setting/isApprovalRequired",
        json!(true),
    );
    for id in [
        "Notification_Admin_Admin_Assignment",
        "Notification_Admin_Admin_Eligibility",
        "Notification_Admin_EndUser_Assignment",
    ] {
        rule(
            p,
            id,
            "/notificationRecipients",
            json!(["security@contoso.com"]),
        );
    }
}

fn cloud_user(id: &str) -> Resolved {
    Resolved::User(PrivilegedUser {
        id: id.to_owned(),
        on_premises_immutable_id: None,
        disabled: false,
    })
}

/// The documentation's examples as one poll: three Global Administrators (users, resolved as
/// cloud-only), one eligibility of a role that is not privileged, two permanent active GA
/// assignments made outside PIM, and the documentation's PIM policy for GA.
pub(super) fn official() -> PrivilegedAccess {
    let assignments: Vec<RoleAssignment> =
        parse(items("roleAssignments-list-expand-principal.json"));
    let principals = assignments
        .iter()
        .map(|a| (a.principal_id.clone(), cloud_user(&a.principal_id)))
        .collect();
    PrivilegedAccess {
        assignments: Ok(assignments),
        eligibility: Ok(parse(items("roleEligibilityScheduleInstances-list.json"))),
        principals: Ok(principals),
        active: Ok(parse(items("roleAssignmentScheduleInstances-list.json"))),
        policies: Ok(parse(vec![policy(GA, &|_| {})])),
    }
}

/// The documentation's subscriptions, with Entra ID P2 added to the first (enabled) one when
/// `p2`.
fn skus(p2: bool) -> Vec<SubscribedSku> {
    let mut v = items("subscribedSkus-list.json");
    if p2 {
        v[0]["servicePlans"][0]["servicePlanName"] = json!("AAD_PREMIUM_P2");
    }
    parse(v)
}

fn forbidden(endpoint: &str) -> CollectionError {
    CollectionError {
        kind: ErrorKind::Forbidden,
        endpoint: endpoint.into(),
        status: Some(403),
        code: Some("Authorization_RequestDenied".into()),
        message: "Insufficient privileges to complete the operation.".into(),
        retry_after: None,
    }
}

/// Normalise a poll whose other endpoints failed (their gaps are not looked at) with `p`.
fn run_with(p: PrivilegedAccess, p2: bool, ex: &Exclusions) -> Snapshot {
    let mut s = MsGraphSnapshot::all_failed(forbidden("/other"));
    s.subscribed_skus = Ok(skus(p2));
    s.privileged = p;
    normalise(&s, ex, Utc.with_ymd_and_hms(2026, 11, 29, 8, 0, 0).unwrap())
}

fn run(p: PrivilegedAccess, p2: bool) -> Snapshot {
    run_with(p, p2, &Exclusions::default())
}

fn value<'a>(s: &'a Snapshot, key: &str) -> Option<&'a SignalValue> {
    let mut hits = s.signals.iter().filter(|x| x.key == key);
    let v = hits.next().map(|x| &x.value);
    assert!(hits.next().is_none(), "duplicate {key}");
    v
}

/// `(met, detail)` of `msgraph.privileged.<ns>scuba.aad_7_<n>`.
fn check(s: &Snapshot, n: u8) -> (bool, String) {
    let ns = match n {
        1..=3 => ROLES,
        4 | 5 => PIM_ASSIGNMENTS,
        _ => PIM_POLICIES,
    };
    let met = match value(s, &format!("{ns}scuba.aad_7_{n}.met")) {
        Some(SignalValue::Bool(b)) => *b,
        other => panic!("7.{n} met: {other:?} in {:?}", s.gaps),
    };
    let detail = match value(s, &format!("{ns}scuba.aad_7_{n}.detail")) {
        Some(SignalValue::Text(t)) => t.clone(),
        other => panic!("7.{n} detail: {other:?}"),
    };
    (met, detail)
}

fn num(s: &Snapshot, key: &str) -> f64 {
    match value(s, key) {
        Some(SignalValue::Number(n)) => *n,
        other => panic!("{key}: {other:?}"),
    }
}

fn gap_prefixes(s: &Snapshot) -> Vec<&str> {
    s.gaps
        .iter()
        .map(|g| g.prefix.as_str())
        .filter(|p| p.starts_with("msgraph.privileged."))
        .collect()
}

/// Users `u1..=un` holding `role` actively, resolved cloud-only.
fn holders(p: &mut PrivilegedAccess, role: &str, prefix: &str, n: usize) {
    for i in 0..n {
        let id = format!("{prefix}{i:07}-0000-4000-8000-000000000000");
        let a: RoleAssignment = parse(vec![assignment(&id, role)]).remove(0);
        p.assignments.as_mut().unwrap().push(a);
        p.principals
            .as_mut()
            .unwrap()
            .insert(id.clone(), cloud_user(&id));
    }
}

fn empty() -> PrivilegedAccess {
    PrivilegedAccess {
        assignments: Ok(vec![]),
        eligibility: Ok(vec![]),
        principals: Ok(BTreeMap::new()),
        active: Ok(vec![]),
        policies: Ok(vec![]),
    }
}

#[test]
fn documentation_examples() {
    let s = run(official(), false);
    assert!(gap_prefixes(&s).is_empty(), "{:?}", s.gaps);
    assert_eq!(num(&s, &format!("{ROLES}global_admins_total")), 3.0);
    assert_eq!(num(&s, &format!("{ROLES}users_total")), 3.0);
    assert_eq!(num(&s, &format!("{ROLES}not_cloud_only_total")), 0.0);
    // 7.1: three GAs; 7.2: no other privileged user, so GAs outnumber them.
    assert!(check(&s, 1).0, "{}", check(&s, 1).1);
    let (met, why) = check(&s, 2);
    assert!(!met);
    assert!(why.contains("3 Global Administrators, 0 users"), "{why}");
    assert!(check(&s, 3).0);
    // Both documented active GA assignments: no start, no end.
    let (met, why) = check(&s, 4);
    assert!(!met);
    assert!(
        why.starts_with("2 permanent")
            && why.contains("6be4b305-b75e-4efc-bfcc-31bd3b53a5f8 (Global Administrator)"),
        "{why}"
    );
    assert!(!check(&s, 5).0);
    assert_eq!(num(&s, &format!("{PIM_ASSIGNMENTS}permanent_total")), 2.0);
    assert_eq!(num(&s, &format!("{PIM_ASSIGNMENTS}outside_pim_total")), 2.0);
    // The documented GA policy: no approval, no extra recipient; other roles have no policy.
    let (met, why) = check(&s, 6);
    assert!(!met);
    assert_eq!(
        why,
        "Global Administrator: Approval_EndUser_Assignment approval not required"
    );
    let (_, why) = check(&s, 7);
    assert!(
        why.contains(
            "Global Administrator: Notification_Admin_Admin_Assignment no additional recipient"
        ) && why.contains("User Administrator: no PIM policy"),
        "{why}"
    );
    assert!(!check(&s, 8).0);
    assert!(!check(&s, 9).0);
}

#[test]
fn aad_7_1_global_admin_count() {
    for (n, met) in [
        (0, false),
        (1, false),
        (2, true),
        (8, true),
        (9, false),
        (12, false),
    ] {
        let mut p = empty();
        holders(&mut p, GA, "a", n);
        let (m, why) = check(&run(p, false), 1);
        assert_eq!(m, met, "{n} GAs: {why}");
        assert!(why.starts_with(&format!("{n} users hold")), "{why}");
        // object ids, at most 10, then a count
        assert_eq!(why.ends_with(" and 2 more"), n == 12, "{why}");
        assert_eq!(why.matches("-4000-8000-").count(), n.min(10), "{why}");
    }
}

#[test]
fn aad_7_2_least_privilege() {
    // 2 GA, 2 only User Administrator: passes; a GA who is also User Admin counts as GA.
    let mut p = empty();
    holders(&mut p, GA, "a", 2);
    holders(&mut p, USER_ADMIN, "b", 2);
    holders(&mut p, USER_ADMIN, "a", 1);
    assert!(check(&run(p.clone(), false), 2).0);
    // 3 GA, 2 others: fails.
    holders(&mut p, GA, "c", 1);
    let (met, why) = check(&run(p, false), 2);
    assert!(
        !met && why.contains("3 Global Administrators, 2 users"),
        "{why}"
    );
    // 7.1 not met: 7.2 not met either, saying why.
    let mut p = empty();
    holders(&mut p, GA, "a", 1);
    holders(&mut p, USER_ADMIN, "b", 5);
    let (met, why) = check(&run(p, false), 2);
    assert!(!met && why.starts_with("MS.AAD.7.1v1 is not met"), "{why}");
}

#[test]
fn aad_7_3_cloud_only() {
    let mut p = official();
    let joey = "ace08ec9-aa11-4ada-9145-addf0398233e";
    p.principals.as_mut().unwrap().insert(
        joey.into(),
        Resolved::User(PrivilegedUser {
            id: joey.into(),
            on_premises_immutable_id: Some("5Hk3+Yx0HkSe/0lX/3Xq1g==".into()),
            disabled: false,
        }),
    );
    let s = run(p.clone(), false);
    let (met, why) = check(&s, 3);
    assert!(!met && why.contains(joey), "{why}");
    assert_eq!(num(&s, &format!("{ROLES}not_cloud_only_total")), 1.0);
    assert!(matches!(
        value(&s, &format!("{ROLES}not_cloud_only")),
        Some(SignalValue::Text(t)) if t == joey
    ));
    // A user the lookup did not return is not shown cloud-only: stricter than ScubaGear.
    p.principals
        .as_mut()
        .unwrap()
        .insert(joey.into(), Resolved::UserNotFound);
    let (met, why) = check(&run(p, false), 3);
    assert!(!met && why.contains("could not be read as users"), "{why}");
}

#[test]
fn groups_count_their_members_and_eligibility_needs_p2() {
    // A group holds GA: its two members (one synchronised) are privileged users; a GA
    // eligibility (the documented eligibility, role changed) adds a third user.
    let group = "0b5cf1d4-1a40-4b0e-8a52-2b4c0d0c0c01";
    let mut a = assignment(group, GA);
    a["principal"]["@odata.type"] = json!("#microsoft.graph.group");
    let mut e = items("roleEligibilityScheduleInstances-list.json")[0].clone();
    e["roleDefinitionId"] = json!(GA);
    let eligible = e["principalId"].as_str().unwrap().to_owned();
    let member = |id: &str, synced: bool| PrivilegedUser {
        id: id.into(),
        on_premises_immutable_id: synced.then(|| "anchor".to_owned()),
        disabled: synced,
    };
    let p = PrivilegedAccess {
        assignments: Ok(parse(vec![a])),
        eligibility: Ok(parse(vec![e])),
        principals: Ok([
            (
                group.to_owned(),
                Resolved::Group(vec![
                    member("6ea91a8d-e32e-41a1-b7bd-d2d185eed0e0", false),
                    member("4562bcc8-c436-4f95-b7c0-4f8ce89dca5e", true),
                ]),
            ),
            (eligible.clone(), cloud_user(&eligible)),
        ]
        .into()),
        ..empty()
    };
    let s = run(p.clone(), true);
    assert_eq!(num(&s, &format!("{ROLES}global_admins_total")), 3.0);
    assert_eq!(num(&s, &format!("{ROLES}disabled_total")), 1.0);
    let (met, why) = check(&s, 3);
    assert!(
        !met && why.contains("4562bcc8-c436-4f95-b7c0-4f8ce89dca5e"),
        "{why}"
    );

    // The eligibilities could not be read: with P2 the roles cannot be counted (a gap) ...
    let unreadable = PrivilegedAccess {
        eligibility: Err(forbidden(super::privileged::endpoints::ELIGIBILITY)),
        ..p
    };
    let s = run(unreadable.clone(), true);
    assert_eq!(gap_prefixes(&s), vec![ROLES]);
    assert!(value(&s, &format!("{ROLES}scuba.aad_7_1.met")).is_none());
    assert!(s.gaps[s.gaps.len() - 1].reason.contains("403"));
    // ... without P2 there are none to count: the active assignments decide, no gap.
    let s = run(unreadable, false);
    assert!(gap_prefixes(&s).is_empty(), "{:?}", s.gaps);
    assert_eq!(num(&s, &format!("{ROLES}global_admins_total")), 2.0);
    assert!(s.errors.iter().any(|e| e.endpoint.contains("Eligibility")));
}

#[test]
fn aad_7_4_permanent_assignments() {
    let user = "6be4b305-b75e-4efc-bfcc-31bd3b53a5f8";
    let start = json!("2026-11-01T08:00:00Z");
    let mut p = empty();
    // Time-bound: passes.
    p.active = Ok(parse(vec![instance(
        user,
        GA,
        start.clone(),
        json!("2026-12-01T08:00:00Z"),
    )]));
    assert!(check(&run(p.clone(), true), 4).0);
    // Permanent: fails, unless the principal is allowed (as a user or as a group).
    p.active = Ok(parse(vec![instance(user, GA, start.clone(), Value::Null)]));
    let (met, why) = check(&run(p.clone(), true), 4);
    assert!(!met && why.contains(user), "{why}");
    for allowed in [
        Declared {
            users: [user.to_owned()].into(),
            groups: Default::default(),
        },
        Declared {
            users: Default::default(),
            groups: [user.to_owned()].into(),
        },
    ] {
        let ex = Exclusions {
            permanent_assignments: allowed,
            ..Exclusions::default()
        };
        assert!(check(&run_with(p.clone(), true, &ex), 4).0);
    }
    // The copy a group's member inherits (memberType Group) is not judged: the group's own
    // assignment is.
    let mut inherited = instance(user, GA, Value::Null, Value::Null);
    inherited["memberType"] = json!("Group");
    p.active = Ok(parse(vec![inherited]));
    let s = run(p.clone(), true);
    assert!(check(&s, 4).0 && check(&s, 5).0);
    // A permanent assignment of a role that is not privileged is not looked at.
    p.active = Ok(parse(vec![instance(
        user,
        "88d8e3e3-8f55-4a1e-953a-9b9898b8876b",
        Value::Null,
        Value::Null,
    )]));
    let s = run(p, true);
    assert!(check(&s, 4).0 && check(&s, 5).0);
}

#[test]
fn aad_7_5_assignments_through_pim() {
    let user = "56f2d212-e49c-42e3-8298-0188e5bef094";
    let mut p = empty();
    p.active = Ok(parse(vec![instance(
        user,
        USER_ADMIN,
        json!("2026-11-01T08:00:00Z"),
        Value::Null,
    )]));
    assert!(check(&run(p.clone(), true), 5).0);
    p.active = Ok(parse(vec![instance(
        user,
        USER_ADMIN,
        Value::Null,
        Value::Null,
    )]));
    let (met, why) = check(&run(p, true), 5);
    assert!(
        !met && why.contains(&format!("{user} (User Administrator)")),
        "{why}"
    );
}

/// A change to a policy.
type Change = Box<dyn Fn(&mut Value)>;

/// Make one part of the data fail.
type Break = fn(&mut PrivilegedAccess, CollectionError);

/// Policies for every privileged role: `good_policy` plus `change` for `role`.
fn policies(role: &str, change: &dyn Fn(&mut Value)) -> Vec<PolicyAssignment> {
    parse(
        PRIVILEGED_ROLES
            .iter()
            .map(|(id, _)| {
                policy(id, &|p| {
                    good_policy(p);
                    if *id == role {
                        change(p);
                    }
                })
            })
            .collect(),
    )
}

#[test]
fn aad_7_6_to_7_9_pim_policies() {
    let mut p = empty();
    p.policies = Ok(policies(GA, &|_| {}));
    let s = run(p.clone(), true);
    for n in 6..=9 {
        assert!(check(&s, n).0, "7.{n}: {}", check(&s, n).1);
    }
    // (policy, the role changed, the change, the checks failing).
    let no_recipient =
        |id: &'static str| move |p: &mut Value| rule(p, id, "/notificationRecipients", json!([]));
    let rows: Vec<(&str, &str, Change, Vec<u8>)> = vec![
        (
            "7.6 approval",
            GA,
            Box::new(|p| {
                rule(
                    p,
                    "Approval_EndUser_Assignment",
                    "/setting/isApprovalRequired",
                    json!(false),
                )
            }),
            vec![6],
        ),
        (
            "7.7 active assignment alert",
            USER_ADMIN,
            Box::new(no_recipient("Notification_Admin_Admin_Assignment")),
            vec![7],
        ),
        (
            "7.7 eligible assignment alert",
            GA,
            Box::new(no_recipient("Notification_Admin_Admin_Eligibility")),
            vec![7],
        ),
        (
            "7.8 GA activation alert",
            GA,
            Box::new(no_recipient("Notification_Admin_EndUser_Assignment")),
            vec![8],
        ),
        (
            "7.8 not by email",
            GA,
            Box::new(|p| {
                rule(
                    p,
                    "Notification_Admin_EndUser_Assignment",
                    "/notificationType",
                    json!("Teams"),
                )
            }),
            vec![8],
        ),
        (
            "7.9 other role activation alert",
            USER_ADMIN,
            Box::new(no_recipient("Notification_Admin_EndUser_Assignment")),
            vec![9],
        ),
        (
            "rule missing",
            GA,
            Box::new(|p| {
                p["rules"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|r| r["id"] != "Approval_EndUser_Assignment")
            }),
            vec![6],
        ),
    ];
    for (name, role, change, failing) in rows {
        p.policies = Ok(policies(role, &*change));
        let s = run(p.clone(), true);
        for n in 6..=9 {
            let (met, why) = check(&s, n);
            assert_eq!(!met, failing.contains(&n), "{name}: 7.{n}: {why}");
        }
    }
    // A privileged role without a policy fails 7.7 and 7.9.
    let mut some = policies(GA, &|_| {});
    some.retain(|a| a.role_definition_id != USER_ADMIN);
    p.policies = Ok(some);
    let s = run(p, true);
    let (met, why) = check(&s, 9);
    assert!(!met && why == "User Administrator: no PIM policy", "{why}");
    assert!(!check(&s, 7).0 && check(&s, 6).0 && check(&s, 8).0);
}

/// A 403 (missing permission or licence) on one part gaps only its namespace.
#[test]
fn forbidden_parts_are_gaps_of_their_own() {
    use super::privileged::endpoints::*;
    let rows: [(&str, Break, &str); 5] = [
        (ROLE_ASSIGNMENTS, |p, e| p.assignments = Err(e), ROLES),
        (USERS, |p, e| p.principals = Err(e), ROLES),
        (ACTIVE, |p, e| p.active = Err(e), PIM_ASSIGNMENTS),
        (POLICY_ASSIGNMENTS, |p, e| p.policies = Err(e), PIM_POLICIES),
        (ELIGIBILITY, |p, e| p.eligibility = Err(e), ROLES),
    ];
    for (endpoint, set, prefix) in rows {
        let mut p = official();
        set(&mut p, forbidden(endpoint));
        let s = run(p, true);
        assert_eq!(gap_prefixes(&s), vec![prefix], "{endpoint}");
        let gap = s.gaps.iter().find(|g| g.prefix == prefix).unwrap();
        assert_eq!(gap.kind, "forbidden");
        assert!(gap.reason.contains(endpoint), "{}", gap.reason);
        assert!(
            s.signals.iter().all(|x| !x.key.starts_with(prefix)),
            "{endpoint}"
        );
        // the other namespaces are still decided
        for other in [ROLES, PIM_ASSIGNMENTS, PIM_POLICIES] {
            if other != prefix {
                assert!(
                    s.signals.iter().any(|x| x.key.starts_with(other)),
                    "{endpoint}: {other}"
                );
            }
        }
    }
}

/// Every key and gap prefix of this module is documented in `docs/signals.md`.
#[test]
fn privileged_keys_are_documented() {
    let doc = include_str!("../../../docs/signals.md");
    let s = run(official(), true);
    let keys: Vec<&str> = s
        .signals
        .iter()
        .map(|x| x.key.as_str())
        .filter(|k| k.starts_with("msgraph.privileged."))
        .collect();
    assert_eq!(keys.len(), 5 + 2 * 3 + 2 + 2 * 2 + 2 * 4, "{keys:?}");
    for prefix in [ROLES, PIM_ASSIGNMENTS, PIM_POLICIES] {
        assert!(doc.contains(&format!("`{prefix}`")), "gap prefix {prefix}");
    }
}

/// A token failure is one gap on `msgraph.`, each privileged part counted as an endpoint.
#[test]
fn token_failure_counts_every_part() {
    let e = CollectionError::new(ErrorKind::Unauthorized, super::auth::TOKEN_ENDPOINT, "x");
    let s = MsGraphSnapshot::all_failed(e);
    assert_eq!(s.errors().len(), MsGraphSnapshot::ENDPOINTS);
    assert!(s.token_error().is_some());
}

/// `permanent_assignments` is validated like `break_glass`: object ids only, lower-cased.
#[test]
fn permanent_assignments_setting() {
    use super::settings::MsGraphSettings;
    use crate::settings::SettingsContext;
    let env = |_: &str| None;
    let cx = SettingsContext {
        path: "tenants[0].connectors[0]",
        tenant: "t",
        env: &env,
        base_dir: None,
        resolve_secrets: true,
    };
    let parse = |text: &str| MsGraphSettings::parse(text.parse().unwrap(), &cx);
    let s = parse(
        "replay_dir = \"d\"\npermanent_assignments = { users = [\"C3F9A1E2-0000-4000-8000-00000000B001\"], groups = [] }",
    )
    .unwrap();
    assert_eq!(
        s.config.exclusions.permanent_assignments.users,
        ["c3f9a1e2-0000-4000-8000-00000000b001".to_owned()].into()
    );
    assert!(s.config.exclusions.all.users.is_empty());
    let problems =
        parse("replay_dir = \"d\"\npermanent_assignments = { groups = [\"admins\"] }").unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(
        problems[0].path,
        "tenants[0].connectors[0].permanent_assignments.groups[0]"
    );
    assert!(parse("replay_dir = \"d\"\npermanent_assignments = { roles = [] }").is_err());
}
