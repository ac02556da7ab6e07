//! Parser tests for [`super::model`] against the official Graph examples in `fixtures/msgraph`.

use super::model::*;
use crate::ErrorKind;
use crate::http::{ODataPage, parse_body};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/fixtures/msgraph/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn truncated(name: &str) -> Vec<u8> {
    let b = fixture(name);
    b[..b.len() / 2].to_vec()
}

fn page<T: serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<ODataPage<T>, crate::CollectionError> {
    parse_body("/test", body)
}

fn assert_malformed<T: serde::de::DeserializeOwned + std::fmt::Debug>(body: &[u8]) {
    let e = parse_body::<T>("/test", body).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Malformed, "{e}");
}

// --- secureScores -----------------------------------------------------------------------------

#[test]
fn secure_scores_official_example() {
    let p: ODataPage<SecureScore> = page(&fixture("secureScores-list.json")).unwrap();
    assert_eq!(p.value.len(), 1);
    let s = &p.value[0];
    assert_eq!(s.current_score, 387.0);
    assert_eq!(s.max_score, 697.0);
    assert_eq!(s.licensed_user_count, Some(100));
    assert_eq!(s.active_user_count, Some(0));
    assert_eq!(s.control_scores.len(), 2);
    assert_eq!(s.control_scores[1].control_name, "DLPEnabled");
    assert_eq!(s.control_scores[1].score, Some(20.0));
    assert!(p.next_link.is_none());
}

#[test]
fn secure_scores_truncated_malformed_and_extras() {
    assert_malformed::<ODataPage<SecureScore>>(&truncated("secureScores-list.json"));
    assert_malformed::<ODataPage<SecureScore>>(
        br#"{"value": [{"currentScore": "high", "maxScore": 1}]}"#,
    );
    assert_malformed::<ODataPage<SecureScore>>(br#"{"items": []}"#);
    // OpenType controlScores: undeclared keys (seen in live responses) are ignored
    let body = br#"{"value": [{"currentScore": 1.5, "maxScore": 10, "newTopLevel": {"x": 1},
        "controlScores": [{"controlName": "MFARegistrationV2", "score": 9, "scoreInPercentage": 100.0,
        "implementationStatus": "You have 3 of 3 users registered", "count": "3", "total": "3"}],
        "enabledServices": null}], "@odata.nextLink": "https://graph.microsoft.com/v1.0/security/secureScores?$skip=1"}"#;
    let p: ODataPage<SecureScore> = page(body).unwrap();
    assert_eq!(p.value[0].control_scores[0].score, Some(9.0));
    assert!(p.next_link.is_some());
}

// --- secureScoreControlProfiles ---------------------------------------------------------------

#[test]
fn control_profiles_official_example() {
    let p: ODataPage<SecureScoreControlProfile> =
        page(&fixture("secureScoreControlProfiles-list.json")).unwrap();
    let c = &p.value[0];
    assert_eq!(c.id, "DLPEnabled");
    assert_eq!(
        c.title.as_deref(),
        Some("Apply Data Loss Prevention policies")
    );
    assert_eq!(c.control_category.as_deref(), Some("Data"));
    assert_eq!(c.max_score, Some(20.0));
    assert_eq!(c.deprecated, Some(false));
    assert_eq!(c.latest_state(), Some(&ControlState::Default));
}

#[test]
fn control_profiles_truncated_malformed_unknown_enum() {
    assert_malformed::<ODataPage<SecureScoreControlProfile>>(&truncated(
        "secureScoreControlProfiles-list.json",
    ));
    assert_malformed::<ODataPage<SecureScoreControlProfile>>(br#"{"value": [{"title": "no id"}]}"#);
    let body = br#"{"value": [{"id": "X", "extra": true, "controlStateUpdates": [
        {"state": "Default", "updatedDateTime": "2019-03-19T22:37:14Z"},
        {"state": "unknownFutureValue", "updatedDateTime": "2024-01-01T00:00:00Z"}]}]}"#;
    let p: ODataPage<SecureScoreControlProfile> = page(body).unwrap();
    assert_eq!(
        p.value[0].latest_state(),
        Some(&ControlState::Other("unknownFutureValue".into()))
    );
    let body = br#"{"value": [{"id": "X", "controlStateUpdates": [{"state": "thirdParty"}]}]}"#;
    let p: ODataPage<SecureScoreControlProfile> = page(body).unwrap();
    assert_eq!(p.value[0].latest_state(), Some(&ControlState::ThirdParty));
}

// --- userRegistrationDetails ------------------------------------------------------------------

#[test]
fn registration_details_official_example() {
    let p: ODataPage<UserRegistrationDetails> =
        page(&fixture("userRegistrationDetails-list.json")).unwrap();
    assert_eq!(p.value.len(), 3);
    assert_eq!(p.value.iter().filter(|u| u.is_mfa_registered).count(), 2);
    assert_eq!(p.value[1].user_type, UserType::Guest);
    assert_eq!(p.value[0].user_type, UserType::Member);
    assert_eq!(p.value[0].is_admin, Some(false));
    assert!(p.value[2].is_sspr_registered);
}

#[test]
fn registration_details_truncated_malformed_unknown_enum() {
    assert_malformed::<ODataPage<UserRegistrationDetails>>(&truncated(
        "userRegistrationDetails-list.json",
    ));
    assert_malformed::<ODataPage<UserRegistrationDetails>>(
        br#"{"value": [{"id": "u", "isMfaRegistered": "yes", "isMfaCapable": true}]}"#,
    );
    let body = br#"{"value": [{"id": "u", "isMfaRegistered": true, "isMfaCapable": false,
        "userType": "unknownFutureValue", "isAdmin": null, "methodsRegistered": null, "brandNew": 1}]}"#;
    let p: ODataPage<UserRegistrationDetails> = page(body).unwrap();
    assert_eq!(
        p.value[0].user_type,
        UserType::Other("unknownFutureValue".into())
    );
    assert_eq!(p.value[0].is_admin, None);
}

// --- conditionalAccess ------------------------------------------------------------------------

#[test]
fn conditional_access_list_official_example() {
    let p: ODataPage<ConditionalAccessPolicy> =
        page(&fixture("conditionalAccessPolicies-list.json")).unwrap();
    assert_eq!(p.value.len(), 2);
    assert!(
        p.value
            .iter()
            .all(|c| c.state == PolicyState::Disabled && !c.is_enabled())
    );
    assert!(!p.value[0].requires_mfa());
    assert!(grants(&p.value[0], &BuiltInControl::Block));
    assert!(p.value[1].requires_mfa());
    assert_eq!(p.value[1].users().include_users, ["None"]);
    let cond = p.value[0].conditions.as_ref().unwrap();
    assert_eq!(cond.client_app_types, [ClientAppType::All]);
}

#[test]
fn conditional_access_get_official_example() {
    let c: ConditionalAccessPolicy =
        parse_body("/t", &fixture("conditionalAccessPolicy-get.json")).unwrap();
    assert!(c.requires_mfa());
    assert!(grants(&c, &BuiltInControl::CompliantDevice));
    let cond = c.conditions.as_ref().unwrap();
    assert_eq!(cond.sign_in_risk_levels, ["medium", "low"]);
    assert_eq!(
        cond.client_app_types,
        [
            ClientAppType::MobileAppsAndDesktopClients,
            ClientAppType::ExchangeActiveSync,
            ClientAppType::OtherClients
        ]
    );
    assert_eq!(c.users().include_roles.len(), 3);
    assert_eq!(c.users().exclude_users[1], "GuestsOrExternalUsers");
    assert!(c.applications().all_apps());
    assert_eq!(
        c.grant_controls.as_ref().unwrap().operator.as_deref(),
        Some("OR")
    );
}

#[test]
fn conditional_access_authentication_strength_and_unknowns() {
    // live shape: authenticationStrength object inside grantControls, future enum members
    let body = br#"{"value": [{"id": "p1", "displayName": "MFA via strength", "state": "enabled",
        "templateId": null, "conditions": {"users": {"includeUsers": ["All"], "excludeGroups": null},
          "applications": {"includeApplications": ["All"]}, "clientAppTypes": ["all", "unknownFutureValue"],
          "userRiskLevels": ["high"], "insiderRiskLevels": null},
        "grantControls": {"operator": "OR", "builtInControls": [],
          "authenticationStrength@odata.context": "https://graph.microsoft.com/v1.0/$metadata#x",
          "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000002",
            "displayName": "Multifactor authentication", "allowedCombinations": ["password,sms"]}}},
      {"id": "p2", "state": "enabledForReportingButNotEnforced", "conditions": null,
        "grantControls": {"operator": "AND", "builtInControls": ["mfa", "somethingNew"], "authenticationStrength": null}},
      {"id": "p3", "state": "someFutureState", "grantControls": null}]}"#;
    let p: ODataPage<ConditionalAccessPolicy> = page(body).unwrap();
    assert!(p.value[0].is_enabled() && p.value[0].requires_mfa());
    assert!(p.value[0].users().all_users());
    let cond = p.value[0].conditions.as_ref().unwrap();
    assert_eq!(
        cond.client_app_types[1],
        ClientAppType::Other("unknownFutureValue".into())
    );
    assert_eq!(p.value[1].state, PolicyState::ReportOnly);
    assert!(p.value[1].requires_mfa());
    assert!(grants(
        &p.value[1],
        &BuiltInControl::Other("somethingNew".into())
    ));
    assert_eq!(
        p.value[2].state,
        PolicyState::Other("someFutureState".into())
    );
    assert!(!p.value[2].requires_mfa());
    assert!(p.value[2].users().include_users.is_empty());
}

#[test]
fn conditional_access_truncated_and_malformed() {
    assert_malformed::<ODataPage<ConditionalAccessPolicy>>(&truncated(
        "conditionalAccessPolicies-list.json",
    ));
    assert_malformed::<ODataPage<ConditionalAccessPolicy>>(
        br#"{"value": [{"id": "p", "conditions": {"users": {"includeUsers": "All"}}}]}"#,
    );
}

// --- security defaults ------------------------------------------------------------------------

#[test]
fn security_defaults_official_example_and_errors() {
    let p: SecurityDefaultsPolicy = parse_body(
        "/t",
        &fixture("identitySecurityDefaultsEnforcementPolicy-get.json"),
    )
    .unwrap();
    assert!(p.is_enabled);
    assert_eq!(p.display_name.as_deref(), Some("Security Defaults"));
    assert_malformed::<SecurityDefaultsPolicy>(&truncated(
        "identitySecurityDefaultsEnforcementPolicy-get.json",
    ));
    assert_malformed::<SecurityDefaultsPolicy>(br#"{"isEnabled": "true"}"#);
    assert_malformed::<SecurityDefaultsPolicy>(br#"{"id": "x"}"#);
    let p: SecurityDefaultsPolicy =
        parse_body("/t", br#"{"isEnabled": false, "futureField": [1, 2]}"#).unwrap();
    assert!(!p.is_enabled);
}

// --- sensitivity labels -----------------------------------------------------------------------

#[test]
fn sensitivity_labels_official_example() {
    let p: ODataPage<SensitivityLabel> = page(&fixture("sensitivityLabels-list-v1.json")).unwrap();
    assert_eq!(p.value.len(), 1);
    let l = &p.value[0];
    assert_eq!(l.label_name(), Some("General"));
    assert_eq!(l.priority, Some(10));
    assert_eq!(l.is_enabled, Some(true));
    assert_eq!(l.has_protection, None);
    assert_eq!(l.applicable_to.as_deref(), Some("email,teamwork,file"));
    assert!(l.sublabels.is_empty());
    // the beta model parses too (all fields optional), carrying hasProtection
    let b: ODataPage<SensitivityLabel> = page(&fixture(
        "sensitivityLabels-list-beta-security-informationProtection.json",
    ))
    .unwrap();
    assert_eq!(b.value[0].has_protection, Some(false));
}

#[test]
fn sensitivity_labels_nested_unknown_and_malformed() {
    let body = br#"{"value": [{"id": "a", "name": null, "displayName": "Confidential",
        "hasProtection": false, "actionSource": "unknownFutureValue", "rights": {"x": 1},
        "sublabels": [{"id": "b", "name": "Confidential - Encrypted", "hasProtection": true,
           "sublabels": [{"id": "c", "hasProtection": true, "sublabels": null}]}]}, {}]}"#;
    let p: ODataPage<SensitivityLabel> = page(body).unwrap();
    assert_eq!(p.value[0].label_name(), Some("Confidential"));
    let all = p.value[0].flatten();
    assert_eq!(all.len(), 3);
    assert_eq!(
        all.iter()
            .filter(|l| l.has_protection == Some(true))
            .count(),
        2
    );
    assert_eq!(p.value[1].label_name(), None);
    assert_malformed::<ODataPage<SensitivityLabel>>(&truncated("sensitivityLabels-list-v1.json"));
    assert_malformed::<ODataPage<SensitivityLabel>>(br#"{"value": [{"hasProtection": "yes"}]}"#);
}

/// Whether `p`'s grant names `control` among its built-in controls.
fn grants(p: &ConditionalAccessPolicy, control: &BuiltInControl) -> bool {
    p.grant_controls
        .as_ref()
        .is_some_and(|g| g.built_in_controls.contains(control))
}
