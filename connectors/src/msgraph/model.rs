//! Typed, lenient models of the Microsoft Graph v1.0 payloads the connector reads.
//!
//! Role: describe shapes only (serde). Unknown fields are ignored, unknown enum members are kept
//! in an `Other(String)` variant, nullable fields are `Option`, and a JSON `null` array reads as
//! empty. No IO and no interpretation beyond small helpers (e.g. [`ConditionalAccessPolicy::requires_mfa`]).
//!
//! A model declares only the documented fields the signals read (`super::signals`, the SCuBA
//! checks); serde skips the others without allocating them. A steady poll of a 500-user tenant
//! parses these payloads every time, and the strings it never read (user names, method lists,
//! remediation HTML) were most of its allocations (issue 12, `docs/performance.md`). Types
//! are still checked where a field is read: a wrong type there is `Malformed`.

use serde::{Deserialize, Deserializer};

/// Read `null` or a missing array as an empty `Vec`.
pub(crate) fn nullable_vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// Declares a string enum that tolerates unknown members (kept in `Other`), matched
/// case-insensitively.
macro_rules! lenient_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A member this version does not know (e.g. `unknownFutureValue`), verbatim.
            Other(String),
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name::parse(&s).unwrap_or($name::Other(s))
            }
        }

        impl $name {
            /// The known member spelled `s` (any case), else `None`.
            fn parse(s: &str) -> Option<Self> {
                $(if s.eq_ignore_ascii_case($text) { return Some($name::$variant); })+
                None
            }
        }

        // Matched on the borrowed text: a known member allocates nothing (a poll reads one
        // per user and per state update); only an unknown one is copied into `Other`.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Text;
                impl serde::de::Visitor<'_> for Text {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("a string")
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<$name, E> {
                        Ok($name::parse(s).unwrap_or_else(|| $name::Other(s.to_owned())))
                    }
                    fn visit_string<E: serde::de::Error>(self, s: String) -> Result<$name, E> {
                        Ok($name::from(s))
                    }
                }
                d.deserialize_str(Text)
            }
        }

        impl $name {
            /// The Graph spelling of this member.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Other(s) => s,
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::Other(String::new())
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Secure Score
// ---------------------------------------------------------------------------------------------

/// One daily tenant Secure Score snapshot (`GET /security/secureScores`, SecurityEvents.Read.All).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecureScore {
    /// Points earned.
    pub current_score: f64,
    /// Points attainable.
    pub max_score: f64,
    /// Licensed users.
    #[serde(default)]
    pub licensed_user_count: Option<i64>,
    /// Active users.
    #[serde(default)]
    pub active_user_count: Option<i64>,
    /// Points per control.
    #[serde(default, deserialize_with = "nullable_vec")]
    pub control_scores: Vec<ControlScore>,
}

/// Points earned for one control in a snapshot (OpenType: undeclared extras are ignored).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlScore {
    /// Control id, joins to [`SecureScoreControlProfile::id`].
    pub control_name: String,
    /// Points earned (absent → not reported).
    #[serde(default)]
    pub score: Option<f64>,
}

lenient_enum! {
    /// `secureScoreControlStateUpdate.state`.
    ControlState {
        /// Default.
        Default = "Default",
        /// Ignored by an admin.
        Ignored = "Ignored",
        /// Covered by a third party.
        ThirdParty = "ThirdParty",
        /// Reviewed.
        Reviewed = "Reviewed",
    }
}

/// A Secure Score control definition (`GET /security/secureScoreControlProfiles`,
/// SecurityEvents.Read.All).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecureScoreControlProfile {
    /// Control id, e.g. `DLPEnabled`.
    pub id: String,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Identity, Data, Device, Apps, Infrastructure.
    #[serde(default)]
    pub control_category: Option<String>,
    /// Points attainable.
    #[serde(default)]
    pub max_score: Option<f64>,
    /// Whether the control is deprecated.
    #[serde(default)]
    pub deprecated: Option<bool>,
    /// State changes, in service order.
    #[serde(default, deserialize_with = "nullable_vec")]
    pub control_state_updates: Vec<ControlStateUpdate>,
}

impl SecureScoreControlProfile {
    /// The most recent state update (greatest `updatedDateTime`; ISO-8601 sorts as text).
    pub fn latest_state(&self) -> Option<&ControlState> {
        self.control_state_updates
            .iter()
            .max_by(|a, b| a.updated_date_time.cmp(&b.updated_date_time))
            .map(|u| &u.state)
    }
}

/// One `controlStateUpdates[]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlStateUpdate {
    /// New state.
    #[serde(default)]
    pub state: ControlState,
    /// When (ISO-8601).
    #[serde(default)]
    pub updated_date_time: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// MFA registration
// ---------------------------------------------------------------------------------------------

lenient_enum! {
    /// `userRegistrationDetails.userType`.
    UserType {
        /// Member.
        Member = "member",
        /// Guest.
        Guest = "guest",
    }
}

/// A user's authentication-method registration
/// (`GET /reports/authenticationMethods/userRegistrationDetails`, AuditLog.Read.All; the tenant
/// needs Entra ID P1/P2).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRegistrationDetails {
    /// member or guest.
    #[serde(default)]
    pub user_type: UserType,
    /// Holds an admin role (nullable).
    #[serde(default)]
    pub is_admin: Option<bool>,
    /// A strong method is registered.
    pub is_mfa_registered: bool,
    /// Registered and allowed by the authentication-methods policy.
    pub is_mfa_capable: bool,
    /// Registered for SSPR.
    #[serde(default)]
    pub is_sspr_registered: bool,
    /// Passwordless capable.
    #[serde(default)]
    pub is_passwordless_capable: bool,
}

// ---------------------------------------------------------------------------------------------
// Conditional access
// ---------------------------------------------------------------------------------------------

lenient_enum! {
    /// `conditionalAccessPolicy.state`.
    PolicyState {
        /// Enforced.
        Enabled = "enabled",
        /// Off.
        Disabled = "disabled",
        /// Report-only.
        ReportOnly = "enabledForReportingButNotEnforced",
    }
}

lenient_enum! {
    /// `conditionalAccessGrantControls.builtInControls[]`.
    BuiltInControl {
        /// Block access.
        Block = "block",
        /// Require MFA.
        Mfa = "mfa",
        /// Require a compliant device.
        CompliantDevice = "compliantDevice",
        /// Require a hybrid-joined device.
        DomainJoinedDevice = "domainJoinedDevice",
        /// Require an approved client app.
        ApprovedApplication = "approvedApplication",
        /// Require an app protection policy.
        CompliantApplication = "compliantApplication",
        /// Require password change.
        PasswordChange = "passwordChange",
        /// Require risk remediation.
        RiskRemediation = "riskRemediation",
    }
}

lenient_enum! {
    /// `conditions.clientAppTypes[]`.
    ClientAppType {
        /// All client apps.
        All = "all",
        /// Browser.
        Browser = "browser",
        /// Modern-auth mobile/desktop.
        MobileAppsAndDesktopClients = "mobileAppsAndDesktopClients",
        /// Exchange ActiveSync (legacy).
        ExchangeActiveSync = "exchangeActiveSync",
        /// EAS-supported platforms.
        EasSupported = "easSupported",
        /// Other legacy clients.
        OtherClients = "other",
    }
}

/// A conditional access policy (`GET /identity/conditionalAccess/policies`, Policy.Read.All).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionalAccessPolicy {
    /// Policy id.
    pub id: String,
    /// Name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// enabled / disabled / report-only.
    #[serde(default)]
    pub state: PolicyState,
    /// Conditions (absent → empty).
    #[serde(default)]
    pub conditions: Option<ConditionSet>,
    /// Grant controls (null for session-only policies).
    #[serde(default)]
    pub grant_controls: Option<GrantControls>,
}

impl ConditionalAccessPolicy {
    /// `state == enabled` (report-only does not enforce).
    pub fn is_enabled(&self) -> bool {
        self.state == PolicyState::Enabled
    }

    /// Names MFA among its grant controls: `mfa` in `builtInControls`, or a non-null
    /// `authenticationStrength`. Whether the grant *enforces* it (operator, strength
    /// combinations) is [`super::scuba`]'s question.
    pub fn requires_mfa(&self) -> bool {
        self.grant_controls.as_ref().is_some_and(|g| {
            g.built_in_controls.contains(&BuiltInControl::Mfa)
                || g.authentication_strength.is_some()
        })
    }

    /// The user conditions, or empty ones.
    pub fn users(&self) -> UserConditions {
        self.conditions
            .as_ref()
            .and_then(|c| c.users.clone())
            .unwrap_or_default()
    }

    /// The application conditions, or empty ones.
    pub fn applications(&self) -> ApplicationConditions {
        self.conditions
            .as_ref()
            .and_then(|c| c.applications.clone())
            .unwrap_or_default()
    }
}

/// `conditionalAccessConditionSet` (only the parts the daemon reads; the rest is ignored).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionSet {
    /// Who.
    #[serde(default)]
    pub users: Option<UserConditions>,
    /// Which apps.
    #[serde(default)]
    pub applications: Option<ApplicationConditions>,
    /// Which client app types.
    #[serde(default, deserialize_with = "nullable_vec")]
    pub client_app_types: Vec<ClientAppType>,
    /// Sign-in risk levels (`low`, `medium`, `high`, `hidden`, `none`, ...).
    #[serde(default, deserialize_with = "nullable_vec")]
    pub sign_in_risk_levels: Vec<String>,
    /// User risk levels.
    #[serde(default, deserialize_with = "nullable_vec")]
    pub user_risk_levels: Vec<String>,
    /// Service-principal risk levels.
    #[serde(default, deserialize_with = "nullable_vec")]
    pub service_principal_risk_levels: Vec<String>,
    /// Device platforms the policy is limited to (`null`: every platform).
    #[serde(default)]
    pub platforms: Option<serde_json::Value>,
    /// Network locations the policy is limited to (`null`: every location).
    #[serde(default)]
    pub locations: Option<serde_json::Value>,
    /// A device filter (`null`: every device).
    #[serde(default)]
    pub devices: Option<serde_json::Value>,
}

/// `conditionalAccessUsers`. Special values: `All`, `None`, `GuestsOrExternalUsers`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserConditions {
    /// Included user ids or `All`/`None`/`GuestsOrExternalUsers`.
    #[serde(default, deserialize_with = "nullable_vec")]
    pub include_users: Vec<String>,
    /// Excluded user ids.
    #[serde(default, deserialize_with = "nullable_vec")]
    pub exclude_users: Vec<String>,
    /// Included group ids.
    #[serde(default, deserialize_with = "nullable_vec")]
    pub include_groups: Vec<String>,
    /// Excluded group ids.
    #[serde(default, deserialize_with = "nullable_vec")]
    pub exclude_groups: Vec<String>,
    /// Included directory role template ids.
    #[serde(default, deserialize_with = "nullable_vec")]
    pub include_roles: Vec<String>,
    /// Excluded directory role template ids.
    #[serde(default, deserialize_with = "nullable_vec")]
    pub exclude_roles: Vec<String>,
    /// Excluded guest or external user types (`null`: none excluded).
    #[serde(default)]
    pub exclude_guests_or_external_users: Option<serde_json::Value>,
}

impl UserConditions {
    /// `includeUsers` contains `All`.
    pub fn all_users(&self) -> bool {
        self.include_users
            .iter()
            .any(|u| u.eq_ignore_ascii_case("All"))
    }
}

/// `conditionalAccessApplications`. Special values: `All`, `None`, `Office365`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationConditions {
    /// Included app ids or `All`/`None`.
    #[serde(default, deserialize_with = "nullable_vec")]
    pub include_applications: Vec<String>,
    /// Excluded app ids.
    #[serde(default, deserialize_with = "nullable_vec")]
    pub exclude_applications: Vec<String>,
    /// User actions, e.g. `urn:user:registersecurityinfo`.
    #[serde(default, deserialize_with = "nullable_vec")]
    pub include_user_actions: Vec<String>,
}

impl ApplicationConditions {
    /// `includeApplications` contains `All`.
    pub fn all_apps(&self) -> bool {
        self.include_applications
            .iter()
            .any(|a| a.eq_ignore_ascii_case("All"))
    }
}

/// `conditionalAccessGrantControls`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantControls {
    /// `AND` or `OR`.
    #[serde(default)]
    pub operator: Option<String>,
    /// Built-in controls.
    #[serde(default, deserialize_with = "nullable_vec")]
    pub built_in_controls: Vec<BuiltInControl>,
    /// Custom factors.
    #[serde(default, deserialize_with = "nullable_vec")]
    pub custom_authentication_factors: Vec<String>,
    /// Terms-of-use ids.
    #[serde(default, deserialize_with = "nullable_vec")]
    pub terms_of_use: Vec<String>,
    /// Authentication strength (newer way to require MFA); null when not used.
    #[serde(default)]
    pub authentication_strength: Option<AuthenticationStrength>,
}

/// `authenticationStrengthPolicy` (only identifying fields).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationStrength {
    /// Policy id.
    #[serde(default)]
    pub id: Option<String>,
    /// Name, e.g. `Multifactor authentication`.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The method combinations that satisfy it, e.g. `fido2`, `password,sms` (expanded inline
    /// in the policy; empty when the response does not carry them).
    #[serde(default, deserialize_with = "nullable_vec")]
    pub allowed_combinations: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Security defaults
// ---------------------------------------------------------------------------------------------

/// `GET /policies/identitySecurityDefaultsEnforcementPolicy` (Policy.Read.All).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityDefaultsPolicy {
    /// Policy id.
    #[serde(default)]
    pub id: Option<String>,
    /// Name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Whether security defaults are on.
    pub is_enabled: bool,
}

// ---------------------------------------------------------------------------------------------
// Licences
// ---------------------------------------------------------------------------------------------

/// A commercial subscription of the tenant (`GET /subscribedSkus`, Organization.Read.All).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribedSku {
    /// e.g. `ENTERPRISEPREMIUM`.
    #[serde(default)]
    pub sku_part_number: Option<String>,
    /// `Enabled`, `Warning` (grace period), `Suspended`, `Deleted`, `LockedOut`.
    #[serde(default)]
    pub capability_status: Option<String>,
    /// The service plans it includes.
    #[serde(default, deserialize_with = "nullable_vec")]
    pub service_plans: Vec<ServicePlanInfo>,
}

/// `servicePlanInfo` of a [`SubscribedSku`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePlanInfo {
    /// e.g. `AAD_PREMIUM_P2`.
    #[serde(default)]
    pub service_plan_name: Option<String>,
    /// `Success`, `Disabled`, `PendingInput`, ...
    #[serde(default)]
    pub provisioning_status: Option<String>,
}

impl SubscribedSku {
    /// Whether the subscription is in force (`Enabled`, or `Warning` during its grace period)
    /// and includes the service plan `name` not disabled.
    pub fn provides(&self, name: &str) -> bool {
        let active = matches!(
            self.capability_status.as_deref(),
            Some("Enabled") | Some("Warning")
        );
        active
            && self.service_plans.iter().any(|p| {
                p.service_plan_name.as_deref() == Some(name)
                    && p.provisioning_status.as_deref() != Some("Disabled")
            })
    }
}

// ---------------------------------------------------------------------------------------------
// Sensitivity labels
// ---------------------------------------------------------------------------------------------

/// A tenant sensitivity label (`GET /security/dataSecurityAndGovernance/sensitivityLabels`,
/// SensitivityLabels.Read.All). Every field is optional: the v1.0 CSDL and the docs disagree.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SensitivityLabel {
    /// Label id.
    #[serde(default)]
    pub id: Option<String>,
    /// Name (preferred; `displayName` is reported to come back null).
    #[serde(default)]
    pub name: Option<String>,
    /// Display name (fallback).
    #[serde(default)]
    pub display_name: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Order (higher = more sensitive).
    #[serde(default)]
    pub priority: Option<i64>,
    /// Enabled (docs example).
    #[serde(default)]
    pub is_enabled: Option<bool>,
    /// Default label.
    #[serde(default)]
    pub is_default: Option<bool>,
    /// Applies encryption via Azure Rights Management.
    #[serde(default)]
    pub has_protection: Option<bool>,
    /// `email,teamwork,file` (comma list).
    #[serde(default)]
    pub applicable_to: Option<String>,
    /// manual, automatic, recommended, none.
    #[serde(default)]
    pub action_source: Option<String>,
    /// Child labels.
    #[serde(default, deserialize_with = "nullable_vec")]
    pub sublabels: Vec<SensitivityLabel>,
}

impl SensitivityLabel {
    /// `name`, else `displayName`.
    pub fn label_name(&self) -> Option<&str> {
        self.name.as_deref().or(self.display_name.as_deref())
    }

    /// This label and every nested sublabel, depth-first.
    pub fn flatten(&self) -> Vec<&SensitivityLabel> {
        let mut out = vec![self];
        for s in &self.sublabels {
            out.extend(s.flatten());
        }
        out
    }
}
