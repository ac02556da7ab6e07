//! Microsoft Graph payloads -> signals: the `msgraph.*` vocabulary.
//!
//! Pure: no IO, no clock (the observation time is passed in), cannot fail. Every key produced
//! here is listed in `docs/signals.md`; a failed endpoint becomes a gap on its namespace, a
//! token failure one gap on `msgraph.`; a ratio whose denominator is 0 is omitted.
//!
//! | namespace (gap prefix) | from |
//! |---|---|
//! | `msgraph.securescore.` | `secureScores` (latest) and `secureScoreControlProfiles`: overall score, per-control `score`, `max_score`, `title`, `category`, `state`, `deprecated` |
//! | `msgraph.mfa.` | `userRegistrationDetails`: users, members and admins registered for MFA, MFA capable, SSPR registered, passwordless capable |
//! | `msgraph.ca.` | conditional access policies: enabled / report-only counts, MFA for all users and admins, legacy authentication blocked, managed devices, and each SCuBA conditional access policy (`msgraph.ca.scuba.<check>.met`, `.detail`; see [`super::scuba`]) |
//! | `msgraph.licences.` | `subscribedSkus`: an active Entra ID P2 service plan |
//! | `msgraph.auth_methods.` | `authenticationMethodsPolicy`: migration state, Microsoft Authenticator context, SMS/voice/email |
//! | `msgraph.authorization.` | `authorizationPolicy`: app registration, user consent, guest access, guest invitations |
//! | `msgraph.admin_consent.` | `adminConsentRequestPolicy`: the admin consent workflow |
//! | `msgraph.domains.` | `domains`: verified managed domains whose passwords expire |
//! | `msgraph.security_defaults.` | `identitySecurityDefaultsEnforcementPolicy`: enabled |
//! | `msgraph.labels.` | sensitivity labels: total, with protection (rights management) |
//! | `msgraph.privileged.roles.`, `.pim_assignments.`, `.pim_policies.` | privileged roles, PIM instances and policies: SCuBA MS.AAD.7.1v1–7.9v1 (see [`super::privileged_signals`]) |

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::MsGraphSnapshot;
use super::directory::{AuthenticationMethodsPolicy, AuthorizationPolicy, Domain, PasswordExpiry};
use super::model::{
    ConditionalAccessPolicy, PolicyState, SecureScore, SecureScoreControlProfile,
    SecurityDefaultsPolicy, SensitivityLabel, UserRegistrationDetails, UserType,
};
use super::scuba::{self, Check, Exclusions};
use crate::signal::{Snapshot, SnapshotBuilder, listing};

/// Normalise one poll's payloads into a [`Snapshot`] observed at `observed_at` (keys and gap
/// prefixes exactly as in `docs/signals.md`); `exclusions` are the conditional access
/// exclusions the tenant's configuration declares.
pub fn normalise(
    s: &MsGraphSnapshot,
    exclusions: &Exclusions,
    observed_at: DateTime<Utc>,
) -> Snapshot {
    let mut b = SnapshotBuilder::new(observed_at);
    msgraph(&mut b, s, exclusions);
    b.finish()
}

const SECURESCORE: &str = "msgraph.securescore.";
const MFA: &str = "msgraph.mfa.";
const CA: &str = "msgraph.ca.";
const SECURITY_DEFAULTS: &str = "msgraph.security_defaults.";
const LABELS: &str = "msgraph.labels.";
const LICENCES: &str = "msgraph.licences.";
const AUTH_METHODS: &str = "msgraph.auth_methods.";
const AUTHORIZATION: &str = "msgraph.authorization.";
const ADMIN_CONSENT: &str = "msgraph.admin_consent.";
const DOMAINS: &str = "msgraph.domains.";

fn msgraph(b: &mut SnapshotBuilder, s: &MsGraphSnapshot, exclusions: &Exclusions) {
    if let Some(e) = s.token_error() {
        b.gap("msgraph.", e);
        // the same token error stands for every endpoint: keep each for logs and metrics
        for e in s.errors().into_iter().skip(1) {
            b.error(e);
        }
        return;
    }
    match &s.secure_score {
        Ok(Some(score)) => secure_score(b, score),
        Ok(None) => {}
        Err(e) => b.gap(SECURESCORE, e),
    }
    match &s.control_profiles {
        Ok(profiles) => control_profiles(b, profiles),
        Err(e) => b.gap(SECURESCORE, e),
    }
    match &s.registration_details {
        Ok(users) => mfa(b, users),
        Err(e) => b.gap(MFA, e),
    }
    match &s.conditional_access {
        Ok(policies) => conditional_access(b, policies, exclusions),
        Err(e) => b.gap(CA, e),
    }
    match &s.security_defaults {
        Ok(p) => security_defaults(b, p),
        Err(e) => b.gap(SECURITY_DEFAULTS, e),
    }
    match &s.sensitivity_labels {
        Ok(labels) => sensitivity_labels(b, labels),
        Err(e) => b.gap(LABELS, e),
    }
    match &s.subscribed_skus {
        Ok(skus) => b.flag(
            "msgraph.licences.aad_premium_p2",
            skus.iter().any(|s| s.provides("AAD_PREMIUM_P2")),
        ),
        Err(e) => b.gap(LICENCES, e),
    }
    match &s.authentication_methods {
        Ok(p) => authentication_methods(b, p),
        Err(e) => b.gap(AUTH_METHODS, e),
    }
    match &s.authorization {
        Ok(p) => authorization(b, p),
        Err(e) => b.gap(AUTHORIZATION, e),
    }
    match &s.admin_consent {
        Ok(p) => {
            b.flag("msgraph.admin_consent.enabled", p.is_enabled);
            b.count("msgraph.admin_consent.reviewers_total", p.reviewers.len());
        }
        Err(e) => b.gap(ADMIN_CONSENT, e),
    }
    match &s.domains {
        Ok(d) => domains(b, d),
        Err(e) => b.gap(DOMAINS, e),
    }
    super::privileged_signals::privileged(b, s, exclusions);
}

fn authentication_methods(b: &mut SnapshotBuilder, p: &AuthenticationMethodsPolicy) {
    let k = |f: &str| format!("{AUTH_METHODS}{f}");
    b.flag(k("migration_complete"), p.migration_complete());
    b.text(
        k("migration_state"),
        p.policy_migration_state
            .clone()
            .unwrap_or_else(|| "unknown".into()),
    );
    b.flag(k("authenticator_enabled"), p.authenticator_enabled());
    let context = p.authenticator_context();
    b.flag(k("authenticator_context"), context.is_none());
    b.text(
        k("authenticator_context_detail"),
        context.unwrap_or_else(|| {
            "the application name and the location are shown to all users".into()
        }),
    );
    let weak = p.weak_methods_enabled();
    b.count(k("weak_methods_enabled_total"), weak.len());
    b.text(k("weak_methods_enabled"), listing(&weak));
}

fn authorization(b: &mut SnapshotBuilder, p: &AuthorizationPolicy) {
    let k = |f: &str| format!("{AUTHORIZATION}{f}");
    b.flag(k("users_can_register_apps"), p.users_can_register_apps());
    let consent = p.user_consent_policies();
    b.count(k("user_consent_policies_total"), consent.len());
    b.text(k("user_consent_policies"), listing(&consent));
    let (guests, restricted) = p.guest_access();
    b.text(k("guest_access"), guests);
    b.flag(k("guest_access_restricted"), restricted);
    b.text(
        k("invites_from"),
        p.allow_invites_from
            .clone()
            .unwrap_or_else(|| "unknown".into()),
    );
    b.flag(k("invites_limited"), p.invites_limited());
}

fn domains(b: &mut SnapshotBuilder, domains: &[Domain]) {
    let e = PasswordExpiry::of(domains);
    let k = |f: &str| format!("{DOMAINS}{f}");
    b.count(k("expiring_total"), e.expiring.len());
    b.text(k("expiring"), listing(&e.expiring));
    b.count(k("never_expiring_total"), e.never_expiring.len());
    b.count(k("federated_total"), e.federated.len());
    b.flag(k("password_expiry_met"), e.met());
}

fn secure_score(b: &mut SnapshotBuilder, s: &SecureScore) {
    b.num("msgraph.securescore.current_score", s.current_score);
    b.num("msgraph.securescore.max_score", s.max_score);
    if s.max_score > 0.0 {
        b.num("msgraph.securescore.ratio", s.current_score / s.max_score);
    }
    if let Some(n) = s.licensed_user_count {
        b.num("msgraph.securescore.licensed_user_count", n as f64);
    }
    if let Some(n) = s.active_user_count {
        b.num("msgraph.securescore.active_user_count", n as f64);
    }
    for c in &s.control_scores {
        if let Some(score) = c.score {
            b.num(
                format!("{SECURESCORE}controls.{}.score", c.control_name),
                score,
            );
        }
    }
}

fn control_profiles(b: &mut SnapshotBuilder, profiles: &[SecureScoreControlProfile]) {
    for p in profiles {
        let k = |f: &str| format!("{SECURESCORE}controls.{}.{f}", p.id);
        if let Some(m) = p.max_score {
            b.num(k("max_score"), m);
        }
        if let Some(t) = &p.title {
            b.text(k("title"), t.clone());
        }
        if let Some(c) = &p.control_category {
            b.text(k("category"), c.clone());
        }
        if let Some(state) = p.latest_state() {
            b.text(k("state"), state.as_str().to_ascii_lowercase());
        }
        if let Some(d) = p.deprecated {
            b.flag(k("deprecated"), d);
        }
    }
}

fn mfa(b: &mut SnapshotBuilder, users: &[UserRegistrationDetails]) {
    let total = users.len();
    let count =
        |f: &dyn Fn(&UserRegistrationDetails) -> bool| users.iter().filter(|u| f(u)).count();
    let registered = count(&|u| u.is_mfa_registered);
    b.count("msgraph.mfa.users_total", total);
    b.count("msgraph.mfa.registered_users", registered);
    b.ratio("msgraph.mfa.registered_ratio", registered, total);
    b.ratio(
        "msgraph.mfa.capable_ratio",
        count(&|u| u.is_mfa_capable),
        total,
    );

    let members: Vec<_> = users
        .iter()
        .filter(|u| u.user_type == UserType::Member)
        .collect();
    b.count("msgraph.mfa.members_total", members.len());
    b.ratio(
        "msgraph.mfa.members_registered_ratio",
        members.iter().filter(|u| u.is_mfa_registered).count(),
        members.len(),
    );

    let admins: Vec<_> = users.iter().filter(|u| u.is_admin == Some(true)).collect();
    b.count("msgraph.mfa.admins_total", admins.len());
    b.ratio(
        "msgraph.mfa.admins_registered_ratio",
        admins.iter().filter(|u| u.is_mfa_registered).count(),
        admins.len(),
    );
    b.ratio(
        "msgraph.mfa.sspr_registered_ratio",
        count(&|u| u.is_sspr_registered),
        total,
    );
    b.ratio(
        "msgraph.mfa.passwordless_capable_ratio",
        count(&|u| u.is_passwordless_capable),
        total,
    );
}

fn conditional_access(
    b: &mut SnapshotBuilder,
    policies: &[ConditionalAccessPolicy],
    exclusions: &Exclusions,
) {
    let enabled: Vec<_> = policies.iter().filter(|p| p.is_enabled()).collect();
    b.count("msgraph.ca.policies_total", policies.len());
    b.count("msgraph.ca.enabled_total", enabled.len());
    b.count(
        "msgraph.ca.report_only_total",
        policies
            .iter()
            .filter(|p| p.state == PolicyState::ReportOnly)
            .count(),
    );
    b.count(
        "msgraph.ca.mfa_policies_total",
        enabled.iter().filter(|p| p.requires_mfa()).count(),
    );
    // Every check is evaluated once; the flags of the original actions are SCuBA verdicts
    // (one body of the rules, with exclusions, operators and authentication strengths
    // counted; see `super::scuba`).
    let verdicts: BTreeMap<Check, scuba::Verdict> = Check::SCUBA
        .into_iter()
        .chain([Check::PrivilegedMfa])
        .map(|check| (check, scuba::evaluate(check, policies, exclusions)))
        .collect();
    let met = |check: Check| verdicts[&check].met();
    b.flag("msgraph.ca.mfa_all_users", met(Check::Mfa));
    b.flag("msgraph.ca.mfa_admins", met(Check::PrivilegedMfa));
    b.text(
        "msgraph.ca.mfa_admins_detail",
        verdicts[&Check::PrivilegedMfa].detail(),
    );
    b.flag("msgraph.ca.legacy_auth_blocked", met(Check::LegacyAuth));
    b.flag(
        "msgraph.ca.compliant_device_required",
        met(Check::ManagedDevice),
    );
    for check in Check::SCUBA {
        let v = &verdicts[&check];
        let key = |field: &str| format!("msgraph.ca.scuba.{}.{field}", check.key());
        b.flag(key("met"), v.met());
        b.text(key("detail"), v.detail());
    }
}
fn security_defaults(b: &mut SnapshotBuilder, p: &SecurityDefaultsPolicy) {
    b.flag("msgraph.security_defaults.enabled", p.is_enabled);
}

fn sensitivity_labels(b: &mut SnapshotBuilder, labels: &[SensitivityLabel]) {
    let all: Vec<_> = labels.iter().flat_map(|l| l.flatten()).collect();
    let protected = all
        .iter()
        .filter(|l| l.has_protection == Some(true))
        .count();
    b.count("msgraph.labels.total", all.len());
    b.count("msgraph.labels.protected_total", protected);
    b.flag("msgraph.labels.protection_enabled", protected > 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{ODataPage, parse_body};
    use crate::signal::{SignalGap, SignalValue};
    use crate::{CollectionError, ErrorKind};
    use chrono::TimeZone;
    use serde::de::DeserializeOwned;

    fn fixture(name: &str) -> Vec<u8> {
        let p = format!("{}/fixtures/msgraph/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    fn list<T: DeserializeOwned>(name: &str) -> Vec<T> {
        parse_body::<ODataPage<T>>("/t", &fixture(name))
            .unwrap()
            .value
    }

    /// A snapshot built from the official Graph examples.
    fn official() -> MsGraphSnapshot {
        MsGraphSnapshot {
            secure_score: Ok(list("secureScores-list.json").into_iter().next()),
            control_profiles: Ok(list("secureScoreControlProfiles-list.json")),
            registration_details: Ok(list("userRegistrationDetails-list.json")),
            conditional_access: Ok(list("conditionalAccessPolicies-list.json")),
            security_defaults: Ok(parse_body(
                "/t",
                &fixture("identitySecurityDefaultsEnforcementPolicy-get.json"),
            )
            .unwrap()),
            sensitivity_labels: Ok(list("sensitivityLabels-list-v1.json")),
            subscribed_skus: Ok(list("subscribedSkus-list.json")),
            authentication_methods: Ok(parse_body(
                "/t",
                &fixture("authenticationMethodsPolicy-get-featureSettings.json"),
            )
            .unwrap()),
            authorization: Ok(parse_body("/t", &fixture("authorizationPolicy-get.json")).unwrap()),
            admin_consent: Ok(
                parse_body("/t", &fixture("adminConsentRequestPolicy-get.json")).unwrap(),
            ),
            domains: Ok(list("domains-list.json")),
            privileged: crate::msgraph::privileged_tests::official(),
        }
    }

    fn times() -> (DateTime<Utc>, DateTime<Utc>) {
        let t = Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap();
        (t, t + chrono::Duration::hours(3))
    }

    fn run(s: MsGraphSnapshot) -> SignalBatch {
        let (o, e) = times();
        let snap = normalise(&s, &Exclusions::default(), o);
        SignalBatch {
            signals: snap
                .signals
                .into_iter()
                .map(|x| Stamped {
                    key: x.key,
                    value: x.value,
                    observed_at: x.observed_at,
                    expires_at: e,
                })
                .collect(),
            gaps: snap.gaps,
        }
    }

    /// A signal as the daemon keeps it: the observation plus the expiry it gives it.
    struct Stamped {
        key: String,
        value: SignalValue,
        observed_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    }

    /// The snapshot with every signal stamped.
    struct SignalBatch {
        signals: Vec<Stamped>,
        gaps: Vec<SignalGap>,
    }

    fn get<'a>(b: &'a SignalBatch, key: &str) -> Option<&'a SignalValue> {
        let mut hits = b.signals.iter().filter(|s| s.key == key);
        let first = hits.next().map(|s| &s.value);
        assert!(hits.next().is_none(), "duplicate key {key}");
        first
    }

    fn num(b: &SignalBatch, key: &str) -> f64 {
        match get(b, key) {
            Some(SignalValue::Number(n)) => *n,
            other => panic!("{key}: {other:?}"),
        }
    }

    fn flag(b: &SignalBatch, key: &str) -> bool {
        match get(b, key) {
            Some(SignalValue::Bool(v)) => *v,
            other => panic!("{key}: {other:?}"),
        }
    }

    fn text<'a>(b: &'a SignalBatch, key: &str) -> &'a str {
        match get(b, key) {
            Some(SignalValue::Text(v)) => v,
            other => panic!("{key}: {other:?}"),
        }
    }

    fn err(
        kind: ErrorKind,
        endpoint: &str,
        status: Option<u16>,
        code: Option<&str>,
    ) -> CollectionError {
        CollectionError {
            kind,
            endpoint: endpoint.into(),
            status,
            code: code.map(Into::into),
            message: "detail".into(),
            retry_after: None,
        }
    }

    #[test]
    fn official_examples_give_documented_values() {
        let b = run(official());
        assert!(b.gaps.is_empty(), "{:?}", b.gaps);
        let (o, e) = times();
        assert!(
            b.signals
                .iter()
                .all(|s| s.observed_at == o && s.expires_at == e)
        );

        assert_eq!(num(&b, "msgraph.securescore.current_score"), 387.0);
        assert_eq!(num(&b, "msgraph.securescore.max_score"), 697.0);
        assert!((num(&b, "msgraph.securescore.ratio") - 387.0 / 697.0).abs() < 1e-12);
        assert_eq!(num(&b, "msgraph.securescore.licensed_user_count"), 100.0);
        assert_eq!(num(&b, "msgraph.securescore.active_user_count"), 0.0);
        assert_eq!(
            num(&b, "msgraph.securescore.controls.DLPEnabled.score"),
            20.0
        );
        assert_eq!(
            num(&b, "msgraph.securescore.controls.DLPEnabled.max_score"),
            20.0
        );
        assert_eq!(num(&b, "msgraph.securescore.controls.AdminMFA.score"), 35.0);
        assert_eq!(
            text(&b, "msgraph.securescore.controls.DLPEnabled.title"),
            "Apply Data Loss Prevention policies"
        );
        assert_eq!(
            text(&b, "msgraph.securescore.controls.DLPEnabled.category"),
            "Data"
        );
        assert_eq!(
            text(&b, "msgraph.securescore.controls.DLPEnabled.state"),
            "default"
        );
        assert!(!flag(
            &b,
            "msgraph.securescore.controls.DLPEnabled.deprecated"
        ));

        // 2 of 3 users registered; Bianca (member) and Alex (member) registered, Allan (guest) not
        assert_eq!(num(&b, "msgraph.mfa.users_total"), 3.0);
        assert_eq!(num(&b, "msgraph.mfa.registered_users"), 2.0);
        assert!((num(&b, "msgraph.mfa.registered_ratio") - 2.0 / 3.0).abs() < 1e-12);
        assert!((num(&b, "msgraph.mfa.capable_ratio") - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(num(&b, "msgraph.mfa.members_total"), 2.0);
        assert_eq!(num(&b, "msgraph.mfa.members_registered_ratio"), 1.0);
        assert_eq!(num(&b, "msgraph.mfa.admins_total"), 0.0);
        assert_eq!(
            get(&b, "msgraph.mfa.admins_registered_ratio"),
            None,
            "0 admins: omitted"
        );
        assert!((num(&b, "msgraph.mfa.sspr_registered_ratio") - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(num(&b, "msgraph.mfa.passwordless_capable_ratio"), 0.0);

        // both example policies are disabled
        assert_eq!(num(&b, "msgraph.ca.policies_total"), 2.0);
        assert_eq!(num(&b, "msgraph.ca.enabled_total"), 0.0);
        assert_eq!(num(&b, "msgraph.ca.report_only_total"), 0.0);
        assert_eq!(num(&b, "msgraph.ca.mfa_policies_total"), 0.0);
        assert!(!flag(&b, "msgraph.ca.mfa_all_users"));
        assert!(!flag(&b, "msgraph.ca.mfa_admins"));
        assert!(!flag(&b, "msgraph.ca.legacy_auth_blocked"));
        assert!(!flag(&b, "msgraph.ca.compliant_device_required"));
        for check in Check::SCUBA {
            let key = format!("msgraph.ca.scuba.{}.met", check.key());
            assert!(!flag(&b, &key), "{key}");
        }
        // The documentation's subscriptions hold no Entra ID P2 plan.
        assert!(!flag(&b, "msgraph.licences.aad_premium_p2"));
        // The documented tenant-wide settings: before the methods migration, Authenticator's
        // context features left to Microsoft's default, SMS/voice/email off; members may
        // register apps, guests' level unknown, everyone may invite; the consent workflow on;
        // the domains example is not verified (nothing to judge: 6.1 not met).
        assert!(!flag(&b, "msgraph.auth_methods.migration_complete"));
        assert_eq!(
            text(&b, "msgraph.auth_methods.migration_state"),
            "preMigration"
        );
        assert!(flag(&b, "msgraph.auth_methods.authenticator_enabled"));
        assert!(!flag(&b, "msgraph.auth_methods.authenticator_context"));
        assert_eq!(
            num(&b, "msgraph.auth_methods.weak_methods_enabled_total"),
            0.0
        );
        assert!(flag(&b, "msgraph.authorization.users_can_register_apps"));
        assert_eq!(
            num(&b, "msgraph.authorization.user_consent_policies_total"),
            0.0
        );
        assert!(!flag(&b, "msgraph.authorization.guest_access_restricted"));
        assert!(!flag(&b, "msgraph.authorization.invites_limited"));
        assert!(flag(&b, "msgraph.admin_consent.enabled"));
        assert!(!flag(&b, "msgraph.domains.password_expiry_met"));

        assert!(flag(&b, "msgraph.security_defaults.enabled"));
        assert_eq!(num(&b, "msgraph.labels.total"), 1.0);
        assert_eq!(num(&b, "msgraph.labels.protected_total"), 0.0);
        assert!(!flag(&b, "msgraph.labels.protection_enabled"));
    }

    /// Issue 10's conditional access bugs at the signal level (each assertion marked "bug"
    /// failed on the rules before the SCuBA checks): the documentation's example policy,
    /// enabled, grants MFA *or* a device *or* an app (operator OR), for three roles, at some
    /// sign-in risks, platforms and locations; it enforces nothing for everyone.
    #[test]
    fn enabled_policies_drive_ca_signals() {
        let mut policies: Vec<ConditionalAccessPolicy> =
            list("conditionalAccessPolicies-list.json");
        let mut get_one: ConditionalAccessPolicy =
            parse_body("/t", &fixture("conditionalAccessPolicy-get.json")).unwrap();
        get_one.state = PolicyState::Enabled;
        policies.push(get_one);
        let extra = br#"{"value": [
          {"id": "unknown-strength", "state": "enabled",
           "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}},
           "grantControls": {"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": "x"}}},
          {"id": "legacy-one-app", "state": "enabled",
           "conditions": {"users": {"includeUsers": ["All"]},
                          "applications": {"includeApplications": ["00000002-0000-0ff1-ce00-000000000000"]},
                          "clientAppTypes": ["exchangeActiveSync", "other"]},
           "grantControls": {"operator": "OR", "builtInControls": ["block"]}},
          {"id": "ro", "state": "enabledForReportingButNotEnforced",
           "conditions": {"users": {"includeUsers": ["All"]}, "userRiskLevels": ["high"]},
           "grantControls": {"operator": "OR", "builtInControls": ["block"]}}]}"#;
        policies.extend(
            parse_body::<ODataPage<ConditionalAccessPolicy>>("/t", extra)
                .unwrap()
                .value,
        );
        let b = run(MsGraphSnapshot {
            conditional_access: Ok(policies.clone()),
            ..official()
        });
        assert_eq!(num(&b, "msgraph.ca.policies_total"), 6.0);
        assert_eq!(num(&b, "msgraph.ca.enabled_total"), 3.0);
        assert_eq!(num(&b, "msgraph.ca.report_only_total"), 1.0);
        assert_eq!(num(&b, "msgraph.ca.mfa_policies_total"), 2.0);
        assert!(
            !flag(&b, "msgraph.ca.mfa_all_users"),
            "bug: a strength whose combinations are unknown counted as MFA"
        );
        assert!(
            !flag(&b, "msgraph.ca.mfa_admins"),
            "bug: MFA as one alternative of five, for 3 roles, counted"
        );
        assert!(
            !flag(&b, "msgraph.ca.legacy_auth_blocked"),
            "bug: a block scoped to one application counted"
        );
        assert!(
            !flag(&b, "msgraph.ca.compliant_device_required"),
            "bug: a device as one alternative (operator OR) counted"
        );
        assert!(!flag(&b, "msgraph.ca.scuba.aad_2_1.met"), "report-only");
        let why = text(&b, "msgraph.ca.scuba.aad_1_1.detail");
        assert!(
            why.contains("legacy-one-app: does not include all cloud apps"),
            "{why}"
        );

        // The documentation's policy with an authentication strength expanded inline: the
        // built-in "Multifactor authentication" strength, for all users, with an undeclared
        // group exclusion. Declared (for MS.AAD.3.2v1), it enforces MFA for everyone.
        let mut strength: ConditionalAccessPolicy = parse_body(
            "/t",
            &fixture("conditionalAccessPolicy-get-authenticationStrength.json"),
        )
        .unwrap();
        strength
            .conditions
            .as_mut()
            .unwrap()
            .user_risk_levels
            .clear();
        let s = MsGraphSnapshot {
            conditional_access: Ok(vec![strength]),
            ..official()
        };
        let undeclared = run(s.clone());
        assert!(!flag(&undeclared, "msgraph.ca.mfa_all_users"));
        assert!(
            text(&undeclared, "msgraph.ca.scuba.aad_3_2.detail")
                .contains("groups eedad040-3722-4bcb-bde5-bc7c857f4983 not declared")
        );
        let mut ex = Exclusions::default();
        ex.per_policy.insert(
            "MS.AAD.3.2v1".into(),
            crate::msgraph::scuba::Declared {
                users: Default::default(),
                groups: ["eedad040-3722-4bcb-bde5-bc7c857f4983".to_owned()].into(),
            },
        );
        let declared = normalise(&s, &ex, times().0);
        let met = declared
            .signals
            .iter()
            .find(|x| x.key == "msgraph.ca.mfa_all_users")
            .unwrap();
        assert_eq!(met.value, SignalValue::Bool(true));
    }

    #[test]
    fn endpoint_errors_become_gaps_and_other_signals_stay() {
        let s = MsGraphSnapshot {
            registration_details: Err(err(
                ErrorKind::Forbidden,
                "/reports/authenticationMethods/userRegistrationDetails",
                Some(403),
                Some("Authorization_RequestDenied"),
            )),
            sensitivity_labels: Err(err(
                ErrorKind::Throttled,
                "/security/dataSecurityAndGovernance/sensitivityLabels",
                Some(429),
                None,
            )),
            ..official()
        };
        let b = run(s);
        assert_eq!(b.gaps.len(), 2);
        assert_eq!(b.gaps[0].prefix, "msgraph.mfa.");
        assert_eq!(b.gaps[0].kind, "forbidden");
        assert_eq!(
            b.gaps[0].reason,
            "403 Authorization_RequestDenied on /reports/authenticationMethods/userRegistrationDetails: detail"
        );
        assert_eq!(b.gaps[1].prefix, "msgraph.labels.");
        assert_eq!(b.gaps[1].kind, "throttled");
        assert!(b.signals.iter().all(|s| !s.key.starts_with("msgraph.mfa.")));
        assert!(
            b.signals
                .iter()
                .all(|s| !s.key.starts_with("msgraph.labels."))
        );
        assert!(flag(&b, "msgraph.security_defaults.enabled"));
        assert_eq!(num(&b, "msgraph.securescore.current_score"), 387.0);
    }

    #[test]
    fn both_secure_score_endpoints_failing_is_one_gap() {
        let s = MsGraphSnapshot {
            secure_score: Err(err(
                ErrorKind::Forbidden,
                "/security/secureScores",
                Some(403),
                None,
            )),
            control_profiles: Err(err(
                ErrorKind::Timeout,
                "/security/secureScoreControlProfiles",
                None,
                None,
            )),
            ..official()
        };
        let b = run(s);
        assert_eq!(b.gaps.len(), 1);
        assert_eq!(b.gaps[0].prefix, "msgraph.securescore.");
        assert!(
            b.gaps[0].reason.contains("secureScores")
                && b.gaps[0]
                    .reason
                    .contains("timeout on /security/secureScoreControlProfiles")
        );
        assert!(
            b.signals
                .iter()
                .all(|s| !s.key.starts_with("msgraph.securescore."))
        );
    }

    #[test]
    fn token_failure_gaps_the_whole_namespace() {
        let e = CollectionError {
            kind: ErrorKind::Unauthorized,
            endpoint: super::super::auth::TOKEN_ENDPOINT.into(),
            status: Some(401),
            code: Some("invalid_client AADSTS7000222".into()),
            message: "client secret has expired".into(),
            retry_after: None,
        };
        let b = run(MsGraphSnapshot::all_failed(e));
        assert!(b.signals.is_empty());
        assert_eq!(b.gaps.len(), 1);
        assert_eq!(b.gaps[0].prefix, "msgraph.");
        assert_eq!(b.gaps[0].kind, "unauthorized");
        assert!(
            b.gaps[0]
                .reason
                .starts_with("401 invalid_client AADSTS7000222 on /oauth2/v2.0/token")
        );
    }

    #[test]
    fn zero_denominators_omit_ratios() {
        let s = MsGraphSnapshot {
            registration_details: Ok(Vec::new()),
            secure_score: Ok(Some(
                parse_body("/t", br#"{"currentScore": 0, "maxScore": 0}"#).unwrap(),
            )),
            ..official()
        };
        let b = run(s);
        assert_eq!(num(&b, "msgraph.mfa.users_total"), 0.0);
        for k in [
            "msgraph.mfa.registered_ratio",
            "msgraph.mfa.capable_ratio",
            "msgraph.mfa.members_registered_ratio",
            "msgraph.mfa.sspr_registered_ratio",
            "msgraph.mfa.passwordless_capable_ratio",
            "msgraph.securescore.ratio",
        ] {
            assert_eq!(get(&b, k), None, "{k}");
        }
    }

    #[test]
    fn nested_protected_labels_are_counted() {
        let labels = br#"{"value": [{"name": "Confidential", "hasProtection": false,
            "sublabels": [{"name": "Encrypted", "hasProtection": true}, {"name": "Open"}]}]}"#;
        let s = MsGraphSnapshot {
            sensitivity_labels: Ok(parse_body::<ODataPage<SensitivityLabel>>("/t", labels)
                .unwrap()
                .value),
            ..official()
        };
        let b = run(s);
        assert_eq!(num(&b, "msgraph.labels.total"), 3.0);
        assert_eq!(num(&b, "msgraph.labels.protected_total"), 1.0);
        assert!(flag(&b, "msgraph.labels.protection_enabled"));
    }

    /// Every key produced (with the official examples plus every CA/label branch) matches a
    /// row of `docs/signals.md`; every gap prefix is listed there too.
    #[test]
    fn every_emitted_key_is_documented() {
        let doc = include_str!("../../../docs/signals.md");
        let patterns: Vec<Vec<&str>> = doc
            .lines()
            .filter(|l| l.starts_with("| `"))
            .flat_map(|l| {
                l.split('|')
                    .nth(1)
                    .unwrap_or_default()
                    .split('`')
                    .skip(1)
                    .step_by(2)
            })
            .map(|k| k.split('.').collect())
            .collect();
        let documented = |key: &str| {
            let segs: Vec<&str> = key.split('.').collect();
            patterns.iter().any(|p| {
                p.len() == segs.len()
                    && p.iter()
                        .zip(&segs)
                        .all(|(p, s)| p.starts_with('<') || p == s)
            })
        };
        let b = run(official());
        assert!(b.signals.len() > 30);
        for s in &b.signals {
            assert!(documented(&s.key), "undocumented key {}", s.key);
        }
        for prefix in [
            "msgraph.",
            SECURESCORE,
            MFA,
            CA,
            SECURITY_DEFAULTS,
            LABELS,
            LICENCES,
            AUTH_METHODS,
            AUTHORIZATION,
            ADMIN_CONSENT,
            DOMAINS,
        ] {
            assert!(
                doc.contains(&format!("`{prefix}`")),
                "gap prefix {prefix} not documented"
            );
        }
    }
}
