//! The conditional access policies of CISA's SCuBA baseline for Microsoft Entra ID
//! (`MS.AAD.1.1v1`, `2.1`, `2.3`, `3.1`, `3.2`, `3.6`, `3.7`, `3.8`): which enabled policies of a
//! tenant satisfy each one, and why the others do not.
//!
//! Role: a pure function of the tenant's policies ([`ConditionalAccessPolicy`]) and the
//! exclusions its configuration declares ([`Exclusions`]); `signals` turns each [`Verdict`]
//! into `msgraph.scuba.<check>.*` signals. Source of truth: the baseline's policy text and its
//! reference implementation (ScubaGear's `AADConfig.rego` and `utils/AADConfig.rego`), whose
//! rules are restated in our own words in `docs/connectors/msgraph.md`, "SCuBA", with the
//! points where postured is stricter:
//!
//! - a policy counts only when it is enabled, applies to all users (`includeUsers` has `All`)
//!   and all cloud apps (`includeApplications` has `All`; for 3.8, the user action
//!   "register security information" instead), excludes no role, no application and no guest
//!   or external user type, and excludes only users and groups the configuration declares
//!   for that policy (break-glass accounts). ScubaGear checks excluded applications for 3.1 and
//!   3.6 only, and guest-type exclusions never;
//! - a policy limited by user or sign-in risk levels (other than the one the check is about),
//!   device platforms, locations, a device filter or client app types other than `all` (other
//!   than the legacy ones 1.1 is about) does not protect every sign-in, so it does not count
//!   (ScubaGear does not look at these conditions);
//! - a grant control counts only when it is enforced: with operator `AND` (or alone) one of the
//!   policy's requirements must be it; with `OR` every alternative must be it, since the user
//!   picks the weakest. ScubaGear looks for `mfa` in `builtInControls` whatever the operator;
//! - an authentication strength is multifactor only when every combination it allows is (two
//!   methods, or one method that is multifactor by itself), and phishing-resistant only when
//!   every combination is Windows Hello for Business, FIDO2 or certificate multifactor.
//!
//! Must not: do IO, or name an excluded account other than by the object id the policy holds.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{
    BuiltInControl, ClientAppType, ConditionSet, ConditionalAccessPolicy, GrantControls,
};

/// The eight privileged roles of the baseline (ScubaGear's default `privileged_roles`), by the
/// role template ids Microsoft gives the built-in roles (the same in every tenant).
pub const PRIVILEGED_ROLES: [(&str, &str); 8] = [
    (
        "62e90394-69f5-4237-9190-012177145e10",
        "Global Administrator",
    ),
    (
        "e8611ab8-c189-46e8-94e1-60213ab1f814",
        "Privileged Role Administrator",
    ),
    ("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator"),
    (
        "f28a1f50-f6e7-4571-818b-6a12f2af6b6c",
        "SharePoint Administrator",
    ),
    (
        "29232cdf-9323-42fd-ade2-1d097af3e4de",
        "Exchange Administrator",
    ),
    (
        "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2",
        "Hybrid Identity Administrator",
    ),
    (
        "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
        "Application Administrator",
    ),
    (
        "158c047a-c907-4556-b7ef-446551a6b5f7",
        "Cloud Application Administrator",
    ),
];

/// The methods of a phishing-resistant authentication strength (the baseline's 3.1).
const PHISHING_RESISTANT: [&str; 3] = [
    "windowsHelloForBusiness",
    "fido2",
    "x509CertificateMultiFactor",
];

/// Methods that are multifactor on their own (a combination of two methods is multifactor
/// too). Graph's `authenticationMethodModes`; single-factor modes (`password`, `sms`, `voice`,
/// `email`, `x509CertificateSingleFactor`, `federatedSingleFactor`, OATH codes alone) are not
/// listed.
const MULTIFACTOR_ALONE: [&str; 7] = [
    "windowsHelloForBusiness",
    "fido2",
    "x509CertificateMultiFactor",
    "deviceBasedPush",
    "temporaryAccessPassOneTime",
    "temporaryAccessPassMultiUse",
    "federatedMultiFactor",
];

/// The allowed combinations of Microsoft's three built-in authentication strengths, for a
/// response that names a strength without expanding it (Graph `GET
/// /policies/authenticationStrengthPolicies`, documentation example 1).
const BUILT_IN_STRENGTHS: [(&str, &[&str]); 3] = [
    (
        "00000000-0000-0000-0000-000000000002",
        &[
            "windowsHelloForBusiness",
            "fido2",
            "x509CertificateMultiFactor",
            "deviceBasedPush",
            "temporaryAccessPassOneTime",
            "temporaryAccessPassMultiUse",
            "password,microsoftAuthenticatorPush",
            "password,softwareOath",
            "password,hardwareOath",
            "password,x509CertificateSingleFactor",
            "password,x509CertificateMultiFactor",
            "password,sms",
            "password,voice",
            "federatedMultiFactor",
            "microsoftAuthenticatorPush,federatedSingleFactor",
            "softwareOath,federatedSingleFactor",
            "hardwareOath,federatedSingleFactor",
            "sms,federatedSingleFactor",
            "voice,federatedSingleFactor",
        ],
    ),
    (
        "00000000-0000-0000-0000-000000000003",
        &[
            "windowsHelloForBusiness",
            "fido2",
            "x509CertificateMultiFactor",
            "deviceBasedPush",
        ],
    ),
    (
        "00000000-0000-0000-0000-000000000004",
        &[
            "windowsHelloForBusiness",
            "fido2",
            "x509CertificateMultiFactor",
        ],
    ),
];

/// A conditional access policy of the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Check {
    /// MS.AAD.1.1v1: legacy authentication blocked.
    LegacyAuth,
    /// MS.AAD.2.1v1: users detected as high risk blocked (Entra ID P2).
    HighRiskUsers,
    /// MS.AAD.2.3v1: sign-ins detected as high risk blocked (Entra ID P2).
    HighRiskSignIns,
    /// MS.AAD.3.1v1: phishing-resistant MFA for all users.
    PhishingResistantMfa,
    /// MS.AAD.3.2v1: MFA for all users (a 3.1 policy counts).
    Mfa,
    /// MS.AAD.3.6v1: phishing-resistant MFA for the privileged roles.
    PrivilegedPhishingResistantMfa,
    /// MS.AAD.3.7v1: a managed device required to sign in.
    ManagedDevice,
    /// MS.AAD.3.8v1: a managed device required to register security information.
    ManagedDeviceRegistration,
    /// Not a baseline policy (postured's `msgraph.ca.mfa_admins`): MFA of any kind for the
    /// privileged roles, with the rules of 3.6.
    PrivilegedMfa,
}

impl Check {
    /// Every check of the baseline, in policy id order.
    pub const SCUBA: [Check; 8] = [
        Check::LegacyAuth,
        Check::HighRiskUsers,
        Check::HighRiskSignIns,
        Check::PhishingResistantMfa,
        Check::Mfa,
        Check::PrivilegedPhishingResistantMfa,
        Check::ManagedDevice,
        Check::ManagedDeviceRegistration,
    ];

    /// The baseline's policy id, e.g. `MS.AAD.3.2v1` (`None` for [`Check::PrivilegedMfa`]).
    pub fn policy_id(self) -> Option<&'static str> {
        Some(match self {
            Check::LegacyAuth => "MS.AAD.1.1v1",
            Check::HighRiskUsers => "MS.AAD.2.1v1",
            Check::HighRiskSignIns => "MS.AAD.2.3v1",
            Check::PhishingResistantMfa => "MS.AAD.3.1v1",
            Check::Mfa => "MS.AAD.3.2v1",
            Check::PrivilegedPhishingResistantMfa => "MS.AAD.3.6v1",
            Check::ManagedDevice => "MS.AAD.3.7v1",
            Check::ManagedDeviceRegistration => "MS.AAD.3.8v1",
            Check::PrivilegedMfa => return None,
        })
    }

    /// The signal segment, e.g. `aad_3_2` (signals `msgraph.scuba.aad_3_2.*`).
    pub fn key(self) -> &'static str {
        match self {
            Check::LegacyAuth => "aad_1_1",
            Check::HighRiskUsers => "aad_2_1",
            Check::HighRiskSignIns => "aad_2_3",
            Check::PhishingResistantMfa => "aad_3_1",
            Check::Mfa => "aad_3_2",
            Check::PrivilegedPhishingResistantMfa => "aad_3_6",
            Check::ManagedDevice => "aad_3_7",
            Check::ManagedDeviceRegistration => "aad_3_8",
            Check::PrivilegedMfa => "mfa_admins",
        }
    }

    /// Whether the check is about the privileged roles (all users or every privileged role
    /// included).
    fn privileged(self) -> bool {
        matches!(
            self,
            Check::PrivilegedPhishingResistantMfa | Check::PrivilegedMfa
        )
    }

    /// What a satisfying policy does, for reasons ("blocks legacy authentication").
    fn what(self) -> &'static str {
        match self {
            Check::LegacyAuth => "blocks legacy authentication for all users",
            Check::HighRiskUsers => "blocks high-risk users",
            Check::HighRiskSignIns => "blocks high-risk sign-ins",
            Check::PhishingResistantMfa => "requires phishing-resistant MFA of all users",
            Check::Mfa => "requires MFA of all users",
            Check::PrivilegedPhishingResistantMfa => {
                "requires phishing-resistant MFA of the privileged roles"
            }
            Check::ManagedDevice => "requires a managed device of all users",
            Check::ManagedDeviceRegistration => {
                "requires a managed device to register security information"
            }
            Check::PrivilegedMfa => "requires MFA of the privileged roles",
        }
    }

    /// Whether the check is about this risk condition (a policy limited by another risk level
    /// does not apply to every sign-in).
    fn allows_user_risk(self) -> bool {
        self == Check::HighRiskUsers
    }

    fn allows_sign_in_risk(self) -> bool {
        self == Check::HighRiskSignIns
    }
}

/// Users and groups a policy may exclude (break-glass accounts), by object id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Declared {
    /// User object ids.
    pub users: BTreeSet<String>,
    /// Group object ids.
    pub groups: BTreeSet<String>,
}

/// The exclusions a tenant's configuration declares: for every check, and per policy id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exclusions {
    /// Accepted by every check (`break_glass`).
    pub all: Declared,
    /// Accepted by one check, by policy id (`scuba_exclusions."MS.AAD.3.2v1"`).
    pub per_policy: BTreeMap<String, Declared>,
    /// Principals allowed a permanent active privileged role assignment (MS.AAD.7.4v1,
    /// `permanent_assignments`; see [`super::privileged_signals`]).
    pub permanent_assignments: Declared,
}

impl Exclusions {
    fn declared(&self, check: Check) -> Option<&Declared> {
        check.policy_id().and_then(|id| self.per_policy.get(id))
    }

    fn accepts_user(&self, check: Check, id: &str) -> bool {
        self.all.users.contains(id) || self.declared(check).is_some_and(|d| d.users.contains(id))
    }

    fn accepts_group(&self, check: Check, id: &str) -> bool {
        self.all.groups.contains(id) || self.declared(check).is_some_and(|d| d.groups.contains(id))
    }
}

/// One check's outcome over a tenant's policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The check.
    pub check: Check,
    /// Display names (or ids) of the policies that satisfy it.
    pub satisfying: Vec<String>,
    /// Why each enabled policy aimed at the check does not satisfy it (`"<name>: <why>"`),
    /// for the reason of a failed action.
    pub near_misses: Vec<String>,
}

impl Verdict {
    /// Whether at least one policy satisfies the check.
    pub fn met(&self) -> bool {
        !self.satisfying.is_empty()
    }

    /// The reason of a failure: the near misses, or that no enabled policy does what is asked.
    pub fn detail(&self) -> String {
        if self.met() {
            return format!("satisfied by: {}", self.satisfying.join(", "));
        }
        if self.near_misses.is_empty() {
            return format!("no enabled conditional access policy {}", self.check.what());
        }
        const SHOWN: usize = 5;
        let mut out = format!(
            "no enabled conditional access policy {}; {}",
            self.check.what(),
            self.near_misses
                .iter()
                .take(SHOWN)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        );
        if self.near_misses.len() > SHOWN {
            out.push_str(&format!(" (and {} more)", self.near_misses.len() - SHOWN));
        }
        out
    }
}

/// Evaluate `check` over `policies`.
pub fn evaluate(
    check: Check,
    policies: &[ConditionalAccessPolicy],
    exclusions: &Exclusions,
) -> Verdict {
    let mut satisfying = Vec::new();
    let mut near_misses = Vec::new();
    for p in policies.iter().filter(|p| p.is_enabled()) {
        // Only policies aimed at the check (its grant or its defining condition) are worth
        // explaining; the others are simply not about it.
        if !aimed_at(check, p) {
            continue;
        }
        let name = p.display_name.clone().unwrap_or_else(|| p.id.clone());
        match why_not(check, p, exclusions) {
            None => satisfying.push(name),
            Some(why) => near_misses.push(format!("{name}: {why}")),
        }
    }
    Verdict {
        check,
        satisfying,
        near_misses,
    }
}

/// Whether the policy is about the check: it grants (or requires) what the check asks, or has
/// the condition the check is about.
fn aimed_at(check: Check, p: &ConditionalAccessPolicy) -> bool {
    let (no_grant, no_conditions) = (GrantControls::default(), ConditionSet::default());
    let g = p.grant_controls.as_ref().unwrap_or(&no_grant);
    let c = p.conditions.as_ref().unwrap_or(&no_conditions);
    match check {
        Check::LegacyAuth => {
            g.built_in_controls.contains(&BuiltInControl::Block)
                && (c.client_app_types.contains(&ClientAppType::OtherClients)
                    || c.client_app_types
                        .contains(&ClientAppType::ExchangeActiveSync))
        }
        Check::HighRiskUsers => !c.user_risk_levels.is_empty(),
        Check::HighRiskSignIns => !c.sign_in_risk_levels.is_empty(),
        Check::PhishingResistantMfa
        | Check::PrivilegedPhishingResistantMfa
        | Check::Mfa
        | Check::PrivilegedMfa => {
            g.built_in_controls.contains(&BuiltInControl::Mfa)
                || g.authentication_strength.is_some()
        }
        Check::ManagedDevice | Check::ManagedDeviceRegistration => {
            g.built_in_controls
                .contains(&BuiltInControl::CompliantDevice)
                || g.built_in_controls
                    .contains(&BuiltInControl::DomainJoinedDevice)
        }
    }
}

/// `None` when the (enabled) policy satisfies the check, else why not.
fn why_not(check: Check, p: &ConditionalAccessPolicy, ex: &Exclusions) -> Option<String> {
    let users = p.users();
    let apps = p.applications();
    let no_conditions = ConditionSet::default();
    let c = p.conditions.as_ref().unwrap_or(&no_conditions);

    // Who: all users (3.6: or every privileged role).
    if check.privileged() && !users.all_users() {
        let missing: Vec<&str> = PRIVILEGED_ROLES
            .iter()
            .filter(|(id, _)| {
                !users
                    .include_roles
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(id))
            })
            .map(|(_, name)| *name)
            .collect();
        if !missing.is_empty() {
            return Some(format!(
                "neither all users nor every privileged role is included (missing: {})",
                missing.join(", ")
            ));
        }
    } else if !check.privileged() && !users.all_users() {
        return Some("does not include all users".into());
    }
    if !users.exclude_roles.is_empty() {
        return Some(format!(
            "excludes directory roles ({})",
            users.exclude_roles.join(", ")
        ));
    }
    if users
        .exclude_guests_or_external_users
        .as_ref()
        .is_some_and(|v| !v.is_null())
    {
        return Some("excludes guest or external user types".into());
    }
    let undeclared_users: Vec<&str> = users
        .exclude_users
        .iter()
        .filter(|u| !ex.accepts_user(check, u))
        .map(String::as_str)
        .collect();
    let undeclared_groups: Vec<&str> = users
        .exclude_groups
        .iter()
        .filter(|g| !ex.accepts_group(check, g))
        .map(String::as_str)
        .collect();
    if !undeclared_users.is_empty() || !undeclared_groups.is_empty() {
        let mut parts = Vec::new();
        if !undeclared_users.is_empty() {
            parts.push(format!("users {}", undeclared_users.join(", ")));
        }
        if !undeclared_groups.is_empty() {
            parts.push(format!("groups {}", undeclared_groups.join(", ")));
        }
        let scope = match check.policy_id() {
            Some(id) => format!("exclusions for {id}"),
            None => "break-glass exclusions".to_owned(),
        };
        return Some(format!(
            "excludes {} not declared as {scope}",
            parts.join(" and ")
        ));
    }

    // What: all cloud apps, none excluded (3.8: the security-information registration).
    if check == Check::ManagedDeviceRegistration {
        if !apps
            .include_user_actions
            .iter()
            .any(|a| a.eq_ignore_ascii_case("urn:user:registersecurityinfo"))
        {
            return Some("is not applied to registering security information".into());
        }
    } else if !apps.all_apps() {
        return Some("does not include all cloud apps".into());
    } else if !apps.exclude_applications.is_empty() {
        return Some(format!(
            "excludes applications ({})",
            apps.exclude_applications.join(", ")
        ));
    }

    // Narrowing conditions: the policy must apply to every sign-in of those users.
    if !check.allows_user_risk() && !c.user_risk_levels.is_empty() {
        return Some("applies only at some user risk levels".into());
    }
    if !check.allows_sign_in_risk() && !c.sign_in_risk_levels.is_empty() {
        return Some("applies only at some sign-in risk levels".into());
    }
    for (present, what) in [
        (c.platforms.as_ref(), "some device platforms"),
        (c.locations.as_ref(), "some locations"),
        (c.devices.as_ref(), "devices matching a filter"),
    ] {
        if present.is_some_and(|v| !v.is_null()) {
            return Some(format!("applies only to {what}"));
        }
    }
    let client_apps_all =
        c.client_app_types.is_empty() || c.client_app_types.contains(&ClientAppType::All);
    match check {
        Check::LegacyAuth => {
            let legacy = c
                .client_app_types
                .contains(&ClientAppType::ExchangeActiveSync)
                && c.client_app_types.contains(&ClientAppType::OtherClients);
            if !legacy && !client_apps_all {
                return Some(
                    "does not cover both Exchange ActiveSync and other legacy clients".into(),
                );
            }
        }
        _ if !client_apps_all => return Some("applies only to some client app types".into()),
        _ => {}
    }

    // The defining condition and the grant.
    match check {
        Check::LegacyAuth => enforced(p, Requirement::Block),
        Check::HighRiskUsers => {
            if !c.user_risk_levels.iter().any(|l| l == "high") {
                return Some("does not apply to high user risk".into());
            }
            enforced(p, Requirement::Block)
        }
        Check::HighRiskSignIns => {
            if !c.sign_in_risk_levels.iter().any(|l| l == "high") {
                return Some("does not apply to high sign-in risk".into());
            }
            enforced(p, Requirement::Block)
        }
        Check::Mfa | Check::PrivilegedMfa => enforced(p, Requirement::Mfa),
        Check::PhishingResistantMfa | Check::PrivilegedPhishingResistantMfa => {
            enforced(p, Requirement::PhishingResistantMfa)
        }
        Check::ManagedDevice | Check::ManagedDeviceRegistration => {
            enforced(p, Requirement::ManagedDevice)
        }
    }
}

/// What a grant control must enforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Requirement {
    Block,
    Mfa,
    PhishingResistantMfa,
    ManagedDevice,
}

impl Requirement {
    fn what(self) -> &'static str {
        match self {
            Requirement::Block => "block access",
            Requirement::Mfa => "MFA",
            Requirement::PhishingResistantMfa => "phishing-resistant MFA",
            Requirement::ManagedDevice => "a compliant or hybrid-joined device",
        }
    }
}

/// One requirement of a policy's grant: a built-in control or its authentication strength.
enum Element<'a> {
    BuiltIn(&'a BuiltInControl),
    Strength(Option<&'a str>, &'a [String]),
    Other,
}

/// `None` when the policy's grant enforces `req` (see the module header on operators).
fn enforced(p: &ConditionalAccessPolicy, req: Requirement) -> Option<String> {
    let Some(g) = p.grant_controls.as_ref() else {
        return Some(format!(
            "has no grant control (does not require {})",
            req.what()
        ));
    };
    let mut elements: Vec<Element<'_>> = g.built_in_controls.iter().map(Element::BuiltIn).collect();
    if let Some(s) = g.authentication_strength.as_ref() {
        elements.push(Element::Strength(s.id.as_deref(), &s.allowed_combinations));
    }
    elements.extend(
        g.custom_authentication_factors
            .iter()
            .chain(&g.terms_of_use)
            .map(|_| Element::Other),
    );
    if elements.is_empty() {
        return Some(format!(
            "has no grant control (does not require {})",
            req.what()
        ));
    }
    let any_of = g
        .operator
        .as_deref()
        .is_some_and(|o| o.eq_ignore_ascii_case("OR"))
        && elements.len() > 1;
    let satisfied: Vec<bool> = elements.iter().map(|e| satisfies(e, req)).collect();
    let ok = if any_of {
        satisfied.iter().all(|s| *s)
    } else {
        satisfied.iter().any(|s| *s)
    };
    if ok {
        None
    } else if any_of && satisfied.iter().any(|s| *s) {
        Some(format!(
            "lets users choose another grant control (operator OR) instead of {}",
            req.what()
        ))
    } else {
        Some(format!("does not require {}", req.what()))
    }
}

fn satisfies(e: &Element<'_>, req: Requirement) -> bool {
    match (e, req) {
        (Element::BuiltIn(c), Requirement::Block) => **c == BuiltInControl::Block,
        (Element::BuiltIn(c), Requirement::Mfa) => **c == BuiltInControl::Mfa,
        (Element::BuiltIn(c), Requirement::ManagedDevice) => {
            **c == BuiltInControl::CompliantDevice || **c == BuiltInControl::DomainJoinedDevice
        }
        (Element::Strength(id, combos), Requirement::Mfa) => {
            strength_combinations(*id, combos).is_some_and(|c| c.iter().all(|c| multifactor(c)))
        }
        (Element::Strength(id, combos), Requirement::PhishingResistantMfa) => {
            strength_combinations(*id, combos)
                .is_some_and(|c| c.iter().all(|c| PHISHING_RESISTANT.contains(&c.as_str())))
        }
        _ => false,
    }
}

/// The allowed combinations of a strength: as expanded in the response, else those of a
/// built-in strength; `None` when unknown or empty (it then satisfies nothing).
fn strength_combinations(id: Option<&str>, combos: &[String]) -> Option<Vec<String>> {
    if !combos.is_empty() {
        return Some(combos.to_vec());
    }
    let id = id?;
    BUILT_IN_STRENGTHS
        .iter()
        .find(|(b, _)| b.eq_ignore_ascii_case(id))
        .map(|(_, c)| c.iter().map(|s| (*s).to_owned()).collect())
}

/// Whether a combination (`password,sms`) is multifactor: two methods or more, or one that is
/// multifactor by itself.
fn multifactor(combination: &str) -> bool {
    let methods: Vec<&str> = combination
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect();
    methods.len() >= 2
        || methods
            .first()
            .is_some_and(|m| MULTIFACTOR_ALONE.contains(m))
}
