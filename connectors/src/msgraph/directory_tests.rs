//! Table tests of the tenant-wide SCuBA checks ([`super::directory`]): each row names the
//! baseline policy and changes one property of a documented Graph v1.0 example
//! (`connectors/fixtures/msgraph/`, see its SOURCES.md).

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::directory::{
    AdminConsentRequestPolicy, AuthenticationMethodsPolicy, AuthorizationPolicy, Domain,
    PasswordExpiry,
};

fn example(name: &str) -> Value {
    let p = format!("{}/fixtures/msgraph/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn parse<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("Graph shape")
}

/// The methods policy example with `f` applied to the configuration of method `id`.
fn methods(id: &str, f: impl FnOnce(&mut Value)) -> AuthenticationMethodsPolicy {
    let mut v = example("authenticationMethodsPolicy-get-featureSettings.json");
    let m = v["authenticationMethodConfigurations"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("{id} in the example"));
    f(m);
    parse(v)
}

fn authenticator_shows_context(m: &mut Value) {
    for f in [
        "displayAppInformationRequiredState",
        "displayLocationInformationRequiredState",
    ] {
        m["featureSettings"][f]["state"] = json!("enabled");
    }
}

#[test]
fn ms_aad_3_3_authenticator_context() {
    // The example leaves both features to Microsoft's default: not configured by the tenant.
    let p = methods("MicrosoftAuthenticator", |_| {});
    assert!(p.authenticator_enabled());
    let why = p.authenticator_context().expect("fails");
    assert!(
        why.contains("showing the application name is default"),
        "{why}"
    );
    assert!(
        why.contains("showing the sign-in location is default"),
        "{why}"
    );

    let p = methods("MicrosoftAuthenticator", authenticator_shows_context);
    assert_eq!(p.authenticator_context(), None);

    let p = methods("MicrosoftAuthenticator", |m| {
        authenticator_shows_context(m);
        m["featureSettings"]["displayLocationInformationRequiredState"]["excludeTarget"]["id"] =
            json!("dad4ae4a-730c-4e52-826c-0d9094971f04");
    });
    assert_eq!(
        p.authenticator_context().as_deref(),
        Some("showing the sign-in location excludes group dad4ae4a-730c-4e52-826c-0d9094971f04")
    );
    let p = methods("MicrosoftAuthenticator", |m| {
        authenticator_shows_context(m);
        m["featureSettings"]["displayAppInformationRequiredState"]["includeTarget"]["id"] =
            json!("dad4ae4a-730c-4e52-826c-0d9094971f04");
    });
    assert!(
        p.authenticator_context()
            .unwrap()
            .contains("not enabled for all users")
    );
    let p = methods("MicrosoftAuthenticator", |m| {
        authenticator_shows_context(m);
        m["includeTargets"][0]["id"] = json!("dad4ae4a-730c-4e52-826c-0d9094971f04");
    });
    assert!(
        p.authenticator_context()
            .unwrap()
            .contains("does not target all users")
    );
    let p = methods("MicrosoftAuthenticator", |m| m["state"] = json!("disabled"));
    assert!(!p.authenticator_enabled());
}

#[test]
fn ms_aad_3_4_migration_complete() {
    let p: AuthenticationMethodsPolicy = parse(example(
        "authenticationMethodsPolicy-get-featureSettings.json",
    ));
    assert!(!p.migration_complete(), "the example is preMigration");
    let mut v = example("authenticationMethodsPolicy-get-featureSettings.json");
    v["policyMigrationState"] = json!("migrationComplete");
    assert!(parse::<AuthenticationMethodsPolicy>(v).migration_complete());
    let mut v = example("authenticationMethodsPolicy-get-featureSettings.json");
    v["policyMigrationState"] = json!("migrationInProgress");
    assert!(!parse::<AuthenticationMethodsPolicy>(v).migration_complete());
}

#[test]
fn ms_aad_3_5_sms_voice_email() {
    // The example: SMS, voice and email all disabled.
    let p: AuthenticationMethodsPolicy = parse(example(
        "authenticationMethodsPolicy-get-featureSettings.json",
    ));
    assert!(p.weak_methods_enabled().is_empty());
    let p = methods("Sms", |m| m["state"] = json!("enabled"));
    assert_eq!(p.weak_methods_enabled(), ["Sms"]);
    let p = methods("Email", |m| m["state"] = json!("enabled"));
    assert_eq!(p.weak_methods_enabled(), ["Email"]);
}

fn authorization(f: impl FnOnce(&mut Value)) -> AuthorizationPolicy {
    let mut v = example("authorizationPolicy-get.json");
    f(&mut v);
    parse(v)
}

#[test]
fn ms_aad_5_1_and_5_2_registration_and_consent() {
    // The example lets members register apps; its grant policy ("just-user-read") is not a
    // user-consent policy.
    let p = authorization(|_| {});
    assert!(p.users_can_register_apps());
    assert!(p.user_consent_policies().is_empty());
    let p =
        authorization(|v| v["defaultUserRolePermissions"]["allowedToCreateApps"] = json!(false));
    assert!(!p.users_can_register_apps());
    let p = authorization(|v| {
        v["defaultUserRolePermissions"]["permissionGrantPoliciesAssigned"] =
            json!(["ManagePermissionGrantsForSelf.microsoft-user-default-low"])
    });
    assert_eq!(
        p.user_consent_policies(),
        ["ManagePermissionGrantsForSelf.microsoft-user-default-low"]
    );
    let p = authorization(|v| {
        v["defaultUserRolePermissions"]["permissionGrantPoliciesAssigned"] = json!([
            "ManagePermissionGrantsForOwnedResource.microsoft-dynamically-managed-permissions-for-team",
            "ManagePermissionGrantsForSelf.microsoft-user-default-legacy"
        ])
    });
    assert_eq!(p.user_consent_policies().len(), 1);
}

#[test]
fn ms_aad_5_3_admin_consent_workflow() {
    let p: AdminConsentRequestPolicy = parse(example("adminConsentRequestPolicy-get.json"));
    assert!(p.is_enabled);
    assert_eq!(p.reviewers.len(), 2);
}

#[test]
fn ms_aad_8_1_and_8_2_guests() {
    // The v1.0 example has no guestUserRoleId: unknown, not restricted.
    let p = authorization(|_| {});
    assert_eq!(p.guest_access(), ("unknown ()".to_owned(), false));
    assert!(!p.invites_limited(), "everyone may invite");
    for (id, restricted) in [
        ("2af84b1e-32c8-42b7-82bc-daa82404023b", true),
        ("10dae51f-b6af-4016-8d66-8c2a99b929b3", true),
        ("a0b1b346-4d3e-4e8b-98f8-753987be4970", false),
    ] {
        let p = authorization(|v| v["guestUserRoleId"] = json!(id));
        assert_eq!(p.guest_access().1, restricted, "{id}");
    }
    for (from, limited) in [
        ("adminsAndGuestInviters", true),
        ("none", true),
        ("adminsGuestInvitersAndAllMembers", false),
        ("everyone", false),
    ] {
        let p = authorization(|v| v["allowInvitesFrom"] = json!(from));
        assert_eq!(p.invites_limited(), limited, "{from}");
    }
}

#[test]
fn ms_aad_6_1_passwords_never_expire() {
    let domain = |id: &str, auth: &str, verified: bool, days: Option<i64>| {
        let mut v = example("domains-list.json")["value"][0].clone();
        v["id"] = json!(id);
        v["authenticationType"] = json!(auth);
        v["isVerified"] = json!(verified);
        v["passwordValidityPeriodInDays"] = json!(days);
        parse::<Domain>(v)
    };
    // The example itself: a placeholder authentication type, not verified: nothing counted.
    let raw: Vec<Domain> = parse(example("domains-list.json")["value"].clone());
    assert!(!PasswordExpiry::of(&raw).met());
    let ok = PasswordExpiry::of(&[
        domain("contoso.com", "Managed", true, Some(2_147_483_647)),
        domain("fabrikam.com", "Federated", true, Some(90)),
        domain("unverified.example", "Managed", false, Some(90)),
    ]);
    assert!(ok.met());
    assert_eq!(ok.federated, ["fabrikam.com"]);
    let bad = PasswordExpiry::of(&[
        domain("contoso.com", "Managed", true, Some(2_147_483_647)),
        domain("sales.contoso.com", "Managed", true, Some(90)),
    ]);
    assert!(!bad.met());
    assert_eq!(bad.expiring, ["sales.contoso.com"]);
    // Only federated domains: no managed domain shows that passwords never expire.
    assert!(!PasswordExpiry::of(&[domain("fabrikam.com", "Federated", true, None)]).met());
}
