//! Table tests of the SCuBA conditional access checks ([`super::scuba`]): each row names the
//! baseline policy it is about and builds a Graph-shaped policy (the v1.0
//! `conditionalAccessPolicy` of `../shared/realdata/msgraph/conditionalAccessPolicy-get*.json`)
//! with one property changed.

use serde_json::{Value, json};

use super::model::ConditionalAccessPolicy;
use super::scuba::{Check, Declared, Exclusions, evaluate};

const BREAK_GLASS: &str = "c3f9a1e2-0000-4000-8000-00000000b001";
const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";

/// An enabled policy for all users and all apps, every client app, no exclusion, granting
/// `builtInControls` with `operator`.
fn base(name: &str, operator: &str, controls: &[&str]) -> Value {
    json!({
        "id": format!("id-{name}"),
        "displayName": name,
        "state": "enabled",
        "conditions": {
            "userRiskLevels": [], "signInRiskLevels": [], "clientAppTypes": ["all"],
            "servicePrincipalRiskLevels": [], "platforms": null, "locations": null,
            "devices": null,
            "applications": { "includeApplications": ["All"], "excludeApplications": [],
                              "includeUserActions": [] },
            "users": { "includeUsers": ["All"], "excludeUsers": [], "includeGroups": [],
                       "excludeGroups": [], "includeRoles": [], "excludeRoles": [],
                       "includeGuestsOrExternalUsers": null,
                       "excludeGuestsOrExternalUsers": null }
        },
        "grantControls": { "operator": operator, "builtInControls": controls,
                           "customAuthenticationFactors": [], "termsOfUse": [],
                           "authenticationStrength": null }
    })
}

fn with(mut v: Value, pointer: &str, value: Value) -> Value {
    *v.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer} in the base policy")) = value;
    v
}

fn strength(id: &str, combos: &[&str]) -> Value {
    json!({ "id": id, "displayName": "strength", "allowedCombinations": combos })
}

fn legacy_block() -> Value {
    with(
        base("Block legacy authentication", "OR", &["block"]),
        "/conditions/clientAppTypes",
        json!(["exchangeActiveSync", "other"]),
    )
}

fn run(check: Check, policy: Value, ex: &Exclusions) -> (bool, String) {
    let p: ConditionalAccessPolicy = serde_json::from_value(policy).expect("Graph shape");
    let v = evaluate(check, &[p], ex);
    (v.met(), v.detail())
}

/// (SCuBA policy, row, check, policy, satisfied, a word the reason must contain)
type Row = (&'static str, &'static str, Check, Value, bool, &'static str);

fn rows() -> Vec<Row> {
    let mfa = || base("MFA for everyone", "OR", &["mfa"]);
    let pr = || {
        with(
            base("Phishing-resistant MFA", "OR", &[]),
            "/grantControls/authenticationStrength",
            strength("00000000-0000-0000-0000-000000000004", &[]),
        )
    };
    let device = || {
        base(
            "Managed devices",
            "OR",
            &["compliantDevice", "domainJoinedDevice"],
        )
    };
    let risk_users = || {
        with(
            base("Block risky users", "OR", &["block"]),
            "/conditions/userRiskLevels",
            json!(["high"]),
        )
    };
    let risk_sign_ins = || {
        with(
            base("Block risky sign-ins", "OR", &["block"]),
            "/conditions/signInRiskLevels",
            json!(["high", "medium"]),
        )
    };
    vec![
        // --- MS.AAD.1.1v1 legacy authentication -------------------------------------------
        (
            "MS.AAD.1.1v1",
            "blocks EAS and other clients for all",
            Check::LegacyAuth,
            legacy_block(),
            true,
            "satisfied",
        ),
        (
            "MS.AAD.1.1v1",
            "bug: a block scoped to one application",
            Check::LegacyAuth,
            with(
                legacy_block(),
                "/conditions/applications/includeApplications",
                json!(["00000002-0000-0ff1-ce00-000000000000"]),
            ),
            false,
            "all cloud apps",
        ),
        (
            "MS.AAD.1.1v1",
            "excludes an application",
            Check::LegacyAuth,
            with(
                legacy_block(),
                "/conditions/applications/excludeApplications",
                json!(["00000002-0000-0ff1-ce00-000000000000"]),
            ),
            false,
            "excludes applications",
        ),
        (
            "MS.AAD.1.1v1",
            "only Exchange ActiveSync",
            Check::LegacyAuth,
            with(
                legacy_block(),
                "/conditions/clientAppTypes",
                json!(["exchangeActiveSync"]),
            ),
            false,
            "both Exchange ActiveSync and other",
        ),
        (
            "MS.AAD.1.1v1",
            "report-only",
            Check::LegacyAuth,
            with(
                legacy_block(),
                "/state",
                json!("enabledForReportingButNotEnforced"),
            ),
            false,
            "no enabled conditional access policy",
        ),
        (
            "MS.AAD.1.1v1",
            "bug: an undeclared user exclusion",
            Check::LegacyAuth,
            with(
                legacy_block(),
                "/conditions/users/excludeUsers",
                json!([BREAK_GLASS]),
            ),
            false,
            "not declared as exclusions for MS.AAD.1.1v1",
        ),
        (
            "MS.AAD.1.1v1",
            "a role exclusion",
            Check::LegacyAuth,
            with(
                legacy_block(),
                "/conditions/users/excludeRoles",
                json!([GLOBAL_ADMIN]),
            ),
            false,
            "excludes directory roles",
        ),
        (
            "MS.AAD.1.1v1",
            "a guest-type exclusion",
            Check::LegacyAuth,
            with(
                legacy_block(),
                "/conditions/users/excludeGuestsOrExternalUsers",
                json!({"guestOrExternalUserTypes": "b2bCollaborationGuest", "externalTenants": null}),
            ),
            false,
            "guest or external",
        ),
        (
            "MS.AAD.1.1v1",
            "limited to some locations",
            Check::LegacyAuth,
            with(
                legacy_block(),
                "/conditions/locations",
                json!({"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}),
            ),
            false,
            "some locations",
        ),
        // --- MS.AAD.2.1v1 / 2.3v1 risk ------------------------------------------------------
        (
            "MS.AAD.2.1v1",
            "blocks high user risk",
            Check::HighRiskUsers,
            risk_users(),
            true,
            "satisfied",
        ),
        (
            "MS.AAD.2.1v1",
            "bug: user risk [\"none\"]",
            Check::HighRiskUsers,
            with(risk_users(), "/conditions/userRiskLevels", json!(["none"])),
            false,
            "high user risk",
        ),
        (
            "MS.AAD.2.1v1",
            "bug: user risk [\"\"]",
            Check::HighRiskUsers,
            with(risk_users(), "/conditions/userRiskLevels", json!([""])),
            false,
            "high user risk",
        ),
        (
            "MS.AAD.2.1v1",
            "bug: high risk with MFA instead of a block",
            Check::HighRiskUsers,
            with(
                risk_users(),
                "/grantControls/builtInControls",
                json!(["mfa"]),
            ),
            false,
            "does not require block access",
        ),
        (
            "MS.AAD.2.1v1",
            "also limited by sign-in risk",
            Check::HighRiskUsers,
            with(
                risk_users(),
                "/conditions/signInRiskLevels",
                json!(["high"]),
            ),
            false,
            "sign-in risk",
        ),
        (
            "MS.AAD.2.3v1",
            "blocks high sign-in risk",
            Check::HighRiskSignIns,
            risk_sign_ins(),
            true,
            "satisfied",
        ),
        (
            "MS.AAD.2.3v1",
            "a user-risk block is not a sign-in-risk block",
            Check::HighRiskSignIns,
            risk_users(),
            false,
            "no enabled conditional access policy blocks high-risk sign-ins",
        ),
        (
            "MS.AAD.2.3v1",
            "only medium sign-in risk",
            Check::HighRiskSignIns,
            with(
                risk_sign_ins(),
                "/conditions/signInRiskLevels",
                json!(["medium"]),
            ),
            false,
            "high sign-in risk",
        ),
        // --- MS.AAD.3.1v1 / 3.2v1 MFA -------------------------------------------------------
        (
            "MS.AAD.3.2v1",
            "mfa built-in control",
            Check::Mfa,
            mfa(),
            true,
            "satisfied",
        ),
        (
            "MS.AAD.3.2v1",
            "bug: OR with compliantDevice",
            Check::Mfa,
            base("MFA or device", "OR", &["mfa", "compliantDevice"]),
            false,
            "operator OR",
        ),
        (
            "MS.AAD.3.2v1",
            "AND with compliantDevice enforces both",
            Check::Mfa,
            base("MFA and device", "AND", &["mfa", "compliantDevice"]),
            true,
            "satisfied",
        ),
        (
            "MS.AAD.3.2v1",
            "bug: a password-only authentication strength",
            Check::Mfa,
            with(
                base("Weak strength", "OR", &[]),
                "/grantControls/authenticationStrength",
                strength("a1b2c3d4-0000-4000-8000-000000000001", &["password"]),
            ),
            false,
            "does not require MFA",
        ),
        (
            "MS.AAD.3.2v1",
            "bug: a strength allowing SMS sign-in alone",
            Check::Mfa,
            with(
                base("SMS strength", "OR", &[]),
                "/grantControls/authenticationStrength",
                strength("a1b2c3d4-0000-4000-8000-000000000002", &["fido2", "sms"]),
            ),
            false,
            "does not require MFA",
        ),
        (
            "MS.AAD.3.2v1",
            "bug: a custom strength without combinations",
            Check::Mfa,
            with(
                base("Unknown strength", "OR", &[]),
                "/grantControls/authenticationStrength",
                strength("a1b2c3d4-0000-4000-8000-000000000003", &[]),
            ),
            false,
            "does not require MFA",
        ),
        (
            "MS.AAD.3.2v1",
            "the built-in MFA strength",
            Check::Mfa,
            with(
                base("MFA strength", "OR", &[]),
                "/grantControls/authenticationStrength",
                strength("00000000-0000-0000-0000-000000000002", &[]),
            ),
            true,
            "satisfied",
        ),
        (
            "MS.AAD.3.2v1",
            "a phishing-resistant policy counts for 3.2",
            Check::Mfa,
            pr(),
            true,
            "satisfied",
        ),
        (
            "MS.AAD.3.2v1",
            "declared break-glass exclusion",
            Check::Mfa,
            with(
                mfa(),
                "/conditions/users/excludeUsers",
                json!([BREAK_GLASS]),
            ),
            true,
            "satisfied",
        ),
        (
            "MS.AAD.3.2v1",
            "bug: an undeclared group exclusion",
            Check::Mfa,
            with(
                mfa(),
                "/conditions/users/excludeGroups",
                json!(["eedad040-3722-4bcb-bde5-bc7c857f4983"]),
            ),
            false,
            "groups eedad040-3722-4bcb-bde5-bc7c857f4983",
        ),
        (
            "MS.AAD.3.2v1",
            "limited to some platforms",
            Check::Mfa,
            with(
                mfa(),
                "/conditions/platforms",
                json!({"includePlatforms": ["android"], "excludePlatforms": []}),
            ),
            false,
            "device platforms",
        ),
        (
            "MS.AAD.3.2v1",
            "limited to browsers",
            Check::Mfa,
            with(mfa(), "/conditions/clientAppTypes", json!(["browser"])),
            false,
            "client app types",
        ),
        (
            "MS.AAD.3.2v1",
            "limited by user risk",
            Check::Mfa,
            with(mfa(), "/conditions/userRiskLevels", json!(["medium"])),
            false,
            "user risk",
        ),
        (
            "MS.AAD.3.1v1",
            "built-in phishing-resistant strength",
            Check::PhishingResistantMfa,
            pr(),
            true,
            "satisfied",
        ),
        (
            "MS.AAD.3.1v1",
            "the mfa control is not phishing-resistant",
            Check::PhishingResistantMfa,
            mfa(),
            false,
            "phishing-resistant",
        ),
        (
            "MS.AAD.3.1v1",
            "passwordless strength allows phone sign-in",
            Check::PhishingResistantMfa,
            with(
                pr(),
                "/grantControls/authenticationStrength",
                strength("00000000-0000-0000-0000-000000000003", &[]),
            ),
            false,
            "phishing-resistant",
        ),
        (
            "MS.AAD.3.1v1",
            "custom strength of FIDO2 and WHfB",
            Check::PhishingResistantMfa,
            with(
                pr(),
                "/grantControls/authenticationStrength",
                strength(
                    "a1b2c3d4-0000-4000-8000-000000000004",
                    &["fido2", "windowsHelloForBusiness"],
                ),
            ),
            true,
            "satisfied",
        ),
        (
            "MS.AAD.3.1v1",
            "strength OR compliant device",
            Check::PhishingResistantMfa,
            with(
                pr(),
                "/grantControls/builtInControls",
                json!(["compliantDevice"]),
            ),
            false,
            "operator OR",
        ),
        // --- MS.AAD.3.6v1 privileged roles ---------------------------------------------------
        (
            "MS.AAD.3.6v1",
            "every privileged role included",
            Check::PrivilegedPhishingResistantMfa,
            with(
                with(pr(), "/conditions/users/includeUsers", json!([])),
                "/conditions/users/includeRoles",
                json!(
                    super::scuba::PRIVILEGED_ROLES
                        .iter()
                        .map(|(id, _)| *id)
                        .collect::<Vec<_>>()
                ),
            ),
            true,
            "satisfied",
        ),
        (
            "MS.AAD.3.6v1",
            "only Global Administrator included",
            Check::PrivilegedPhishingResistantMfa,
            with(
                with(pr(), "/conditions/users/includeUsers", json!([])),
                "/conditions/users/includeRoles",
                json!([GLOBAL_ADMIN]),
            ),
            false,
            "Privileged Role Administrator",
        ),
        (
            "MS.AAD.3.6v1",
            "an all-users policy protects the roles too",
            Check::PrivilegedPhishingResistantMfa,
            pr(),
            true,
            "satisfied",
        ),
        // --- MS.AAD.3.7v1 / 3.8v1 managed devices ---------------------------------------------
        (
            "MS.AAD.3.7v1",
            "compliant or hybrid-joined",
            Check::ManagedDevice,
            device(),
            true,
            "satisfied",
        ),
        (
            "MS.AAD.3.7v1",
            "bug: OR with mfa",
            Check::ManagedDevice,
            base("Device or MFA", "OR", &["mfa", "compliantDevice"]),
            false,
            "operator OR",
        ),
        (
            "MS.AAD.3.8v1",
            "registration needs a managed device",
            Check::ManagedDeviceRegistration,
            with(
                with(
                    device(),
                    "/conditions/applications/includeApplications",
                    json!([]),
                ),
                "/conditions/applications/includeUserActions",
                json!(["urn:user:registersecurityinfo"]),
            ),
            true,
            "satisfied",
        ),
        (
            "MS.AAD.3.8v1",
            "a sign-in policy is not a registration policy",
            Check::ManagedDeviceRegistration,
            device(),
            false,
            "registering security information",
        ),
    ]
}

#[test]
fn scuba_conditional_access_table() {
    let mut ex = Exclusions::default();
    ex.per_policy.insert(
        "MS.AAD.3.2v1".into(),
        Declared {
            users: [BREAK_GLASS.to_owned()].into(),
            groups: Default::default(),
        },
    );
    for (policy, row, check, value, want, word) in rows() {
        assert_eq!(check.policy_id(), Some(policy), "{row}");
        let (met, detail) = run(check, value, &ex);
        assert_eq!(met, want, "{policy} {row}: {detail}");
        assert!(
            detail.contains(word),
            "{policy} {row}: {detail:?} lacks {word:?}"
        );
    }
}

/// A break-glass account declared for every check (`break_glass`) is accepted by all of them;
/// one declared for another policy id is not.
#[test]
fn exclusions_are_declared_per_policy_or_for_all() {
    let legacy = with(
        legacy_block(),
        "/conditions/users/excludeUsers",
        json!([BREAK_GLASS]),
    );
    let mut other = Exclusions::default();
    other.per_policy.insert(
        "MS.AAD.3.2v1".into(),
        Declared {
            users: [BREAK_GLASS.to_owned()].into(),
            groups: Default::default(),
        },
    );
    assert!(!run(Check::LegacyAuth, legacy.clone(), &other).0);
    let all = Exclusions {
        all: Declared {
            users: [BREAK_GLASS.to_owned()].into(),
            groups: Default::default(),
        },
        per_policy: Default::default(),
        permanent_assignments: Default::default(),
    };
    assert!(run(Check::LegacyAuth, legacy, &all).0);
}

/// The reason of a failure names the near misses, at most five, then a count.
#[test]
fn reasons_name_the_policies_and_are_capped() {
    let policies: Vec<ConditionalAccessPolicy> = (0..7)
        .map(|i| {
            serde_json::from_value(base(
                &format!("MFA or device {i}"),
                "OR",
                &["mfa", "compliantDevice"],
            ))
            .unwrap()
        })
        .collect();
    let v = evaluate(Check::Mfa, &policies, &Exclusions::default());
    assert!(!v.met());
    let d = v.detail();
    assert!(d.contains("MFA or device 0: lets users choose"), "{d}");
    assert!(d.ends_with("(and 2 more)"), "{d}");
}

/// `msgraph.ca.mfa_admins` (not a baseline policy): any enforced MFA for all users or every
/// privileged role, by the rules of MS.AAD.3.6v1.
#[test]
fn mfa_for_the_privileged_roles() {
    let roles: Vec<&str> = super::scuba::PRIVILEGED_ROLES
        .iter()
        .map(|(id, _)| *id)
        .collect();
    let for_roles = with(
        with(
            base("MFA for admins", "OR", &["mfa"]),
            "/conditions/users/includeUsers",
            json!([]),
        ),
        "/conditions/users/includeRoles",
        json!(roles),
    );
    let none = Exclusions::default();
    assert!(run(Check::PrivilegedMfa, for_roles.clone(), &none).0);
    assert!(
        run(
            Check::PrivilegedMfa,
            base("MFA for all", "AND", &["mfa"]),
            &none
        )
        .0
    );
    let (met, why) = run(
        Check::PrivilegedMfa,
        with(
            for_roles.clone(),
            "/conditions/users/excludeUsers",
            json!([BREAK_GLASS]),
        ),
        &none,
    );
    assert!(!met);
    assert!(
        why.contains("not declared as break-glass exclusions"),
        "{why}"
    );
    let (met, why) = run(
        Check::PrivilegedMfa,
        with(
            for_roles,
            "/conditions/users/includeRoles",
            json!([GLOBAL_ADMIN]),
        ),
        &none,
    );
    assert!(!met);
    assert!(
        why.contains("missing: Privileged Role Administrator"),
        "{why}"
    );
}
