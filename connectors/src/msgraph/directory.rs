//! Tenant-wide Entra ID settings the SCuBA baseline checks outside conditional access: the
//! authentication methods policy (MS.AAD.3.3 to 3.5), the authorization policy (5.1, 5.2, 8.1,
//! 8.2), the admin consent request policy (5.3) and the domains' password expiry (6.1).
//!
//! Role: lenient serde models of the four Graph v1.0 payloads and the pure verdicts drawn from
//! them; `signals` turns the verdicts into `msgraph.auth_methods.*`, `msgraph.authorization.*`,
//! `msgraph.admin_consent.*` and `msgraph.domains.*` signals. The rules are restated in
//! `docs/connectors/msgraph.md`, "SCuBA: methods, applications, passwords and guests", with the
//! points where postured is stricter than ScubaGear. Must not: do IO.

use serde::Deserialize;

use super::model::nullable_vec;

/// The all-zero id Graph puts in a feature's `excludeTarget` when nobody is excluded.
const NOBODY: &str = "00000000-0000-0000-0000-000000000000";

// ---------------------------------------------------------------------------------------------
// Authentication methods policy
// ---------------------------------------------------------------------------------------------

/// `GET /policies/authenticationMethodsPolicy` (Policy.Read.All): the tenant's methods.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationMethodsPolicy {
    /// `preMigration`, `migrationInProgress` or `migrationComplete` (absent on old tenants).
    #[serde(default)]
    pub policy_migration_state: Option<String>,
    /// One configuration per method (`Fido2`, `MicrosoftAuthenticator`, `Sms`, ...).
    #[serde(default, deserialize_with = "nullable_vec")]
    pub authentication_method_configurations: Vec<MethodConfiguration>,
}

/// `authenticationMethodConfiguration` (the fields the checks read).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MethodConfiguration {
    /// Method id, e.g. `MicrosoftAuthenticator`, `Sms`, `Voice`, `Email`.
    #[serde(default)]
    pub id: String,
    /// `enabled` or `disabled`.
    #[serde(default)]
    pub state: Option<String>,
    /// Who may use it (`all_users` or group ids).
    #[serde(default, deserialize_with = "nullable_vec")]
    pub include_targets: Vec<Target>,
    /// Microsoft Authenticator only: its feature settings.
    #[serde(default)]
    pub feature_settings: Option<AuthenticatorFeatures>,
}

/// An include or exclude target: `all_users` or a group id.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// `all_users`, a group object id, or the all-zero id for nobody.
    #[serde(default)]
    pub id: String,
}

/// `microsoftAuthenticatorFeatureSettings` (v1.0 names).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticatorFeatures {
    /// Show the application name in push notifications.
    #[serde(default)]
    pub display_app_information_required_state: Option<FeatureTarget>,
    /// Show the sign-in location in push notifications.
    #[serde(default)]
    pub display_location_information_required_state: Option<FeatureTarget>,
}

/// `authenticationMethodFeatureConfiguration`: a feature's state and targets.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureTarget {
    /// `enabled`, `disabled` or `default` (Microsoft's choice, which may change).
    #[serde(default)]
    pub state: Option<String>,
    /// Who gets it.
    #[serde(default)]
    pub include_target: Option<Target>,
    /// Who does not.
    #[serde(default)]
    pub exclude_target: Option<Target>,
}

impl FeatureTarget {
    /// Enabled (not left to Microsoft's default) for all users, nobody excluded; else why not.
    fn why_not(&self, what: &str) -> Option<String> {
        if self.state.as_deref() != Some("enabled") {
            return Some(format!(
                "{what} is {}",
                self.state.as_deref().unwrap_or("not set")
            ));
        }
        if self.include_target.as_ref().map(|t| t.id.as_str()) != Some("all_users") {
            return Some(format!("{what} is not enabled for all users"));
        }
        match self.exclude_target.as_ref().map(|t| t.id.as_str()) {
            None | Some("") | Some(NOBODY) => None,
            Some(group) => Some(format!("{what} excludes group {group}")),
        }
    }
}

impl AuthenticationMethodsPolicy {
    fn method(&self, id: &str) -> Option<&MethodConfiguration> {
        self.authentication_method_configurations
            .iter()
            .find(|m| m.id.eq_ignore_ascii_case(id))
    }

    /// Whether the migration to this policy is complete (MS.AAD.3.4v1).
    pub fn migration_complete(&self) -> bool {
        self.policy_migration_state.as_deref() == Some("migrationComplete")
    }

    /// Whether Microsoft Authenticator is enabled.
    pub fn authenticator_enabled(&self) -> bool {
        self.method("MicrosoftAuthenticator")
            .is_some_and(|m| m.state.as_deref() == Some("enabled"))
    }

    /// MS.AAD.3.3v1: `None` when Microsoft Authenticator shows the application name and the
    /// location to all users, nobody excluded, and the method itself targets all users; else
    /// why not.
    pub fn authenticator_context(&self) -> Option<String> {
        let Some(m) = self.method("MicrosoftAuthenticator") else {
            return Some("the policy has no Microsoft Authenticator configuration".into());
        };
        if !m.include_targets.iter().any(|t| t.id == "all_users") {
            return Some("Microsoft Authenticator does not target all users".into());
        }
        let no_features = AuthenticatorFeatures::default();
        let f = m.feature_settings.as_ref().unwrap_or(&no_features);
        let missing = FeatureTarget::default();
        let problems: Vec<String> = [
            (
                f.display_app_information_required_state.as_ref(),
                "showing the application name",
            ),
            (
                f.display_location_information_required_state.as_ref(),
                "showing the sign-in location",
            ),
        ]
        .into_iter()
        .filter_map(|(t, what)| t.unwrap_or(&missing).why_not(what))
        .collect();
        (!problems.is_empty()).then(|| problems.join("; "))
    }

    /// MS.AAD.3.5v1: the methods among SMS, voice call and email one-time passcode that are
    /// not disabled (a method the policy does not list is not offered).
    pub fn weak_methods_enabled(&self) -> Vec<String> {
        ["Sms", "Voice", "Email"]
            .into_iter()
            .filter(|id| {
                self.method(id)
                    .is_some_and(|m| m.state.as_deref() != Some("disabled"))
            })
            .map(str::to_owned)
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Authorization policy
// ---------------------------------------------------------------------------------------------

/// The guest user role ids of the authorization policy (`guestUserRoleId`), as documented:
/// (id, name, restricted enough for MS.AAD.8.1v1).
pub const GUEST_ROLES: [(&str, &str, bool); 3] = [
    (
        "2af84b1e-32c8-42b7-82bc-daa82404023b",
        "restricted access",
        true,
    ),
    (
        "10dae51f-b6af-4016-8d66-8c2a99b929b3",
        "limited access",
        true,
    ),
    (
        "a0b1b346-4d3e-4e8b-98f8-753987be4970",
        "the same access as members",
        false,
    ),
];

/// The permission grant policies that let a user consent to applications by themselves
/// (`ManagePermissionGrantsForSelf.<id>` assigned to the default user role).
pub const USER_CONSENT_POLICIES: [&str; 2] = [
    "ManagePermissionGrantsForSelf.microsoft-user-default-legacy",
    "ManagePermissionGrantsForSelf.microsoft-user-default-low",
];

/// `GET /policies/authorizationPolicy` (Policy.Read.All).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationPolicy {
    /// `none`, `adminsAndGuestInviters`, `adminsGuestInvitersAndAllMembers`, `everyone`.
    #[serde(default)]
    pub allow_invites_from: Option<String>,
    /// The role template id guests get (see [`GUEST_ROLES`]).
    #[serde(default)]
    pub guest_user_role_id: Option<String>,
    /// What members may do.
    #[serde(default)]
    pub default_user_role_permissions: Option<DefaultUserRolePermissions>,
}

/// `defaultUserRolePermissions`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DefaultUserRolePermissions {
    /// Members may register applications.
    #[serde(default)]
    pub allowed_to_create_apps: Option<bool>,
    /// Permission grant policies assigned to members (user consent).
    #[serde(default, deserialize_with = "nullable_vec")]
    pub permission_grant_policies_assigned: Vec<String>,
}

impl AuthorizationPolicy {
    fn permissions(&self) -> DefaultUserRolePermissions {
        self.default_user_role_permissions
            .clone()
            .unwrap_or_default()
    }

    /// MS.AAD.5.1v1: whether members may register applications (unknown counts as yes: it is
    /// Entra's default).
    pub fn users_can_register_apps(&self) -> bool {
        self.permissions().allowed_to_create_apps != Some(false)
    }

    /// MS.AAD.5.2v1: the user-consent policies assigned to members.
    pub fn user_consent_policies(&self) -> Vec<String> {
        self.permissions()
            .permission_grant_policies_assigned
            .into_iter()
            .filter(|p| {
                USER_CONSENT_POLICIES
                    .iter()
                    .any(|u| u.eq_ignore_ascii_case(p))
            })
            .collect()
    }

    /// The guests' access level (a [`GUEST_ROLES`] name, or `unknown (<id>)`) and whether it
    /// is restricted enough for MS.AAD.8.1v1.
    pub fn guest_access(&self) -> (String, bool) {
        let id = self.guest_user_role_id.as_deref().unwrap_or("");
        match GUEST_ROLES
            .iter()
            .find(|(r, _, _)| r.eq_ignore_ascii_case(id))
        {
            Some((_, name, ok)) => ((*name).to_owned(), *ok),
            None => (format!("unknown ({id})"), false),
        }
    }

    /// MS.AAD.8.2v1: only administrators and guest inviters (or nobody) may invite guests.
    pub fn invites_limited(&self) -> bool {
        matches!(
            self.allow_invites_from.as_deref(),
            Some("adminsAndGuestInviters") | Some("none")
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Admin consent request policy
// ---------------------------------------------------------------------------------------------

/// `GET /policies/adminConsentRequestPolicy` (Policy.Read.All).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminConsentRequestPolicy {
    /// Users may request an administrator's consent.
    #[serde(default)]
    pub is_enabled: bool,
    /// Who reviews the requests.
    #[serde(default, deserialize_with = "nullable_vec")]
    pub reviewers: Vec<serde_json::Value>,
}

// ---------------------------------------------------------------------------------------------
// Domains
// ---------------------------------------------------------------------------------------------

/// Graph's value of `passwordValidityPeriodInDays` for passwords that never expire.
pub const NEVER_EXPIRES: i64 = 2_147_483_647;

/// `GET /domains` (Domain.Read.All): one domain of the tenant.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Domain {
    /// The domain name.
    #[serde(default)]
    pub id: String,
    /// `Managed` or `Federated`.
    #[serde(default)]
    pub authentication_type: Option<String>,
    /// Ownership verified.
    #[serde(default)]
    pub is_verified: bool,
    /// Days before a password expires ([`NEVER_EXPIRES`]: never).
    #[serde(default)]
    pub password_validity_period_in_days: Option<i64>,
}

/// MS.AAD.6.1v1 over the domains: the verified managed domains whose passwords expire, the
/// verified managed domains whose do not, and the verified federated ones (their passwords are
/// governed by the identity provider, outside the tenant).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PasswordExpiry {
    /// Verified managed domains with an expiry.
    pub expiring: Vec<String>,
    /// Verified managed domains without one.
    pub never_expiring: Vec<String>,
    /// Verified federated domains.
    pub federated: Vec<String>,
}

impl PasswordExpiry {
    /// Sort the verified domains.
    pub fn of(domains: &[Domain]) -> Self {
        let mut out = Self::default();
        for d in domains.iter().filter(|d| d.is_verified) {
            match d.authentication_type.as_deref() {
                Some(t) if t.eq_ignore_ascii_case("Federated") => out.federated.push(d.id.clone()),
                Some(t) if t.eq_ignore_ascii_case("Managed") => {
                    if d.password_validity_period_in_days == Some(NEVER_EXPIRES) {
                        out.never_expiring.push(d.id.clone());
                    } else {
                        out.expiring.push(d.id.clone());
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Met when no verified managed domain's passwords expire and there is at least one.
    pub fn met(&self) -> bool {
        self.expiring.is_empty() && !self.never_expiring.is_empty()
    }
}
