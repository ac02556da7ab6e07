//! Privileged access of a tenant (CISA SCuBA Entra ID section 7): who holds the privileged
//! roles, how (permanent, through PIM, by group) and the PIM policies of those roles.
//!
//! Role: read these Graph v1.0 endpoints once per poll into a [`PrivilegedAccess`] (each its
//! own `Result`, so one missing permission or licence gaps only what depends on it), and
//! resolve the principals that hold a privileged role into users ([`Resolved`]).
//! [`super::privileged_signals`] turns the result into the `msgraph.privileged.*` signals.
//!
//! | field of [`PrivilegedAccess`] | request | application permission |
//! |---|---|---|
//! | `assignments` | `GET /roleManagement/directory/roleAssignments?$filter=roleDefinitionId in (<the 8 roles>)&$expand=principal` | RoleManagement.Read.Directory |
//! | `eligibility` | `GET /roleManagement/directory/roleEligibilityScheduleInstances` | RoleEligibilitySchedule.Read.Directory (PIM: Entra ID P2) |
//! | `active` | `GET /roleManagement/directory/roleAssignmentScheduleInstances` | RoleAssignmentSchedule.Read.Directory (PIM: Entra ID P2) |
//! | `policies` | `GET /policies/roleManagementPolicyAssignments?$filter=scopeId eq '/' and scopeType eq 'DirectoryRole'&$expand=policy($expand=rules)` | RoleManagementPolicy.Read.Directory (PIM: Entra ID P2) |
//! | `principals` | `GET /users?$filter=id in (...)&$select=id,accountEnabled,onPremisesImmutableId` (15 ids a request) and `GET /groups/{id}/transitiveMembers/microsoft.graph.user?$select=...` | User.Read.All, GroupMember.Read.All |
//!
//! Every collection follows `@odata.nextLink` (bounded by the HTTP client's page limit). The
//! principals are bounded too: at most [`MAX_USERS`] users looked up and [`MAX_GROUPS`] groups
//! expanded per poll; past either bound `principals` is an error (a gap), never a partial
//! answer. Principals of the eligibility instances carry no type: an id that is not a user is
//! tried as a group, and one that is neither (a service principal, a deleted object) holds no
//! user.
//!
//! Must not: evaluate anything (that is [`super::privileged_signals`]), or put an id that is
//! not a GUID into a filter or a path.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::MsGraphConnector;
use super::scuba::PRIVILEGED_ROLES;
use crate::{CollectionError, ErrorKind};

/// Request paths (relative to the Graph base), used as error and log labels.
pub mod endpoints {
    /// Active role assignments with their principal (RoleManagement.Read.Directory).
    pub const ROLE_ASSIGNMENTS: &str = "/roleManagement/directory/roleAssignments";
    /// PIM eligible assignments (RoleEligibilitySchedule.Read.Directory).
    pub const ELIGIBILITY: &str = "/roleManagement/directory/roleEligibilityScheduleInstances";
    /// PIM active assignments, permanent and time-bound (RoleAssignmentSchedule.Read.Directory).
    pub const ACTIVE: &str = "/roleManagement/directory/roleAssignmentScheduleInstances";
    /// PIM policies of the directory roles, with their rules (RoleManagementPolicy.Read.Directory).
    pub const POLICY_ASSIGNMENTS: &str = "/policies/roleManagementPolicyAssignments";
    /// Users by id, with `onPremisesImmutableId` (User.Read.All).
    pub const USERS: &str = "/users";
    /// The users of a group, transitively (GroupMember.Read.All); the label of
    /// `/groups/{id}/transitiveMembers/microsoft.graph.user`.
    pub const GROUP_MEMBERS: &str = "/groups/{id}/transitiveMembers";
}

/// Most users looked up by id per poll (the distinct users and untyped principals holding a
/// privileged role); more makes `principals` an error.
pub const MAX_USERS: usize = 1000;

/// Most groups expanded per poll (groups holding a privileged role); more makes `principals`
/// an error.
pub const MAX_GROUPS: usize = 100;

/// Ids per `$filter=id in (...)` request (Graph accepts at most 15 values in an `in`).
pub const USERS_PER_REQUEST: usize = 15;

/// The `$select` of a user read for the baseline.
const USER_SELECT: &str = "$select=id,accountEnabled,onPremisesImmutableId";

/// Whether `role` (a role definition id, the template id for built-in roles) is one of the
/// baseline's privileged roles.
pub fn is_privileged(role: &str) -> bool {
    PRIVILEGED_ROLES
        .iter()
        .any(|(id, _)| id.eq_ignore_ascii_case(role))
}

/// The display name of a privileged role (its id when not privileged).
pub fn role_name(role: &str) -> &str {
    PRIVILEGED_ROLES
        .iter()
        .find(|(id, _)| id.eq_ignore_ascii_case(role))
        .map_or(role, |(_, name)| name)
}

/// A directory object as Graph returns it in a principal or a member list (user, group,
/// service principal): only the fields the baseline needs.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryObject {
    /// `#microsoft.graph.user`, `#microsoft.graph.group`, `#microsoft.graph.servicePrincipal`.
    #[serde(rename = "@odata.type", default)]
    pub odata_type: Option<String>,
    /// Object id.
    #[serde(default)]
    pub id: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Whether a user's account is enabled (users only; selected in the lookups).
    #[serde(default)]
    pub account_enabled: Option<bool>,
    /// The on-premises identity a synchronised user is anchored to; `null` for a cloud-only
    /// user. Only present when selected.
    #[serde(default)]
    pub on_premises_immutable_id: Option<String>,
}

/// `unifiedRoleAssignment`, with `$expand=principal`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignment {
    /// Assignment id.
    #[serde(default)]
    pub id: String,
    /// The assigned principal's object id.
    pub principal_id: String,
    /// The role definition (the template id for built-in roles).
    pub role_definition_id: String,
    /// The expanded principal.
    #[serde(default)]
    pub principal: Option<DirectoryObject>,
}

/// `unifiedRoleAssignmentScheduleInstance` or `unifiedRoleEligibilityScheduleInstance`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleInstance {
    /// Instance id.
    #[serde(default)]
    pub id: String,
    /// The principal's object id (user, group or service principal; untyped).
    pub principal_id: String,
    /// The role definition.
    pub role_definition_id: String,
    /// Start; `null` for an assignment made outside PIM (directly).
    #[serde(default)]
    pub start_date_time: Option<DateTime<Utc>>,
    /// End; `null` for a permanent assignment.
    #[serde(default)]
    pub end_date_time: Option<DateTime<Utc>>,
    /// `Assigned` or `Activated` (active instances only).
    #[serde(default)]
    pub assignment_type: Option<String>,
    /// `Direct`, `Group` or `Inherited`.
    #[serde(default)]
    pub member_type: Option<String>,
}

/// `unifiedRoleManagementPolicyAssignment`, with `$expand=policy($expand=rules)`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyAssignment {
    /// `/` for the tenant.
    #[serde(default)]
    pub scope_id: Option<String>,
    /// `DirectoryRole` (or `Directory` in the documentation's example).
    #[serde(default)]
    pub scope_type: Option<String>,
    /// The role the policy governs.
    pub role_definition_id: String,
    /// The expanded policy.
    #[serde(default)]
    pub policy: Option<RoleManagementPolicy>,
}

/// `unifiedRoleManagementPolicy` with its rules.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleManagementPolicy {
    /// Policy id.
    #[serde(default)]
    pub id: String,
    /// The rules (approval, notification, expiration, enablement ...).
    #[serde(default)]
    pub rules: Vec<PolicyRule>,
}

/// One rule of a PIM policy: the fields of the approval and notification rules.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    /// Rule id, e.g. `Approval_EndUser_Assignment`, `Notification_Admin_Admin_Assignment`.
    pub id: String,
    /// Notification rules: `Email`.
    #[serde(default)]
    pub notification_type: Option<String>,
    /// Notification rules: the additional recipients (email addresses).
    #[serde(default)]
    pub notification_recipients: Vec<String>,
    /// Approval rules: the approval settings.
    #[serde(default)]
    pub setting: Option<ApprovalSettings>,
}

/// `approvalSettings` of an approval rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalSettings {
    /// Whether activating the role needs an approval.
    #[serde(default)]
    pub is_approval_required: Option<bool>,
}

/// A user holding a privileged role, directly or through a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivilegedUser {
    /// Object id (lower case).
    pub id: String,
    /// `onPremisesImmutableId`: `Some` for a user synchronised from on-premises.
    pub on_premises_immutable_id: Option<String>,
    /// `accountEnabled` is `false` (a disabled account still holding the role).
    pub disabled: bool,
}

impl PrivilegedUser {
    fn from_object(o: &DirectoryObject) -> Option<Self> {
        Some(Self {
            id: o.id.as_deref()?.to_ascii_lowercase(),
            on_premises_immutable_id: o.on_premises_immutable_id.clone().filter(|s| !s.is_empty()),
            disabled: o.account_enabled == Some(false),
        })
    }
}

/// What a principal holding a privileged role is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// A user.
    User(PrivilegedUser),
    /// A group, with its users (transitively).
    Group(Vec<PrivilegedUser>),
    /// A user that the `/users` lookup did not return (deleted since, or not readable).
    UserNotFound,
    /// Neither a user nor a group (a service principal, or a deleted object): holds no user.
    Other,
}

/// One poll's privileged-access data; each part fails on its own.
#[derive(Debug, Clone)]
pub struct PrivilegedAccess {
    /// Active role assignments of the privileged roles, principals expanded.
    pub assignments: Result<Vec<RoleAssignment>, CollectionError>,
    /// PIM eligibility instances (every role; the privileged ones are picked when evaluating).
    pub eligibility: Result<Vec<ScheduleInstance>, CollectionError>,
    /// The principals of the privileged assignments and eligibilities, by lower-case id.
    pub principals: Result<BTreeMap<String, Resolved>, CollectionError>,
    /// PIM active assignment instances (every role).
    pub active: Result<Vec<ScheduleInstance>, CollectionError>,
    /// PIM policy assignments of the directory roles, with their rules.
    pub policies: Result<Vec<PolicyAssignment>, CollectionError>,
}

impl PrivilegedAccess {
    /// The number of results (fields) this struct holds; each counts as one endpoint of
    /// [`super::MsGraphSnapshot::ENDPOINTS`].
    pub const RESULTS: usize = 5;

    /// Every part failed with the same error (a token failure).
    pub fn all_failed(e: CollectionError) -> Self {
        Self {
            assignments: Err(e.clone()),
            eligibility: Err(e.clone()),
            principals: Err(e.clone()),
            active: Err(e.clone()),
            policies: Err(e),
        }
    }

    /// The errors of the failed parts, in field order.
    pub fn errors(&self) -> Vec<&CollectionError> {
        [
            self.assignments.as_ref().err(),
            self.eligibility.as_ref().err(),
            self.principals.as_ref().err(),
            self.active.as_ref().err(),
            self.policies.as_ref().err(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// The `$filter` and `$expand` of the role assignments request: the privileged roles only.
fn assignments_query() -> String {
    let ids: Vec<String> = PRIVILEGED_ROLES
        .iter()
        .map(|(id, _)| format!("'{id}'"))
        .collect();
    format!(
        "?$filter=roleDefinitionId in ({})&$expand=principal",
        ids.join(",")
    )
}

const POLICIES_QUERY: &str =
    "?$filter=scopeId eq '/' and scopeType eq 'DirectoryRole'&$expand=policy($expand=rules)";

/// A canonical object id (lower-case GUID), or `None` for anything else.
fn object_id(id: &str) -> Option<String> {
    uuid::Uuid::parse_str(id)
        .ok()
        .map(|u| u.hyphenated().to_string())
}

fn is_type(o: &DirectoryObject, t: &str) -> bool {
    o.odata_type
        .as_deref()
        .is_some_and(|x| x.eq_ignore_ascii_case(t))
}

impl MsGraphConnector {
    /// Read the privileged-access endpoints (see the module table): the four lists
    /// concurrently, then the principals of the privileged roles.
    pub(super) async fn privileged(&self, token: Option<SecretString>) -> PrivilegedAccess {
        use endpoints::*;
        let t = token.as_ref();
        let query = assignments_query();
        let (assignments, eligibility, active, policies) = tokio::join!(
            self.collection::<RoleAssignment>(ROLE_ASSIGNMENTS, ROLE_ASSIGNMENTS, &query, t),
            self.collection::<ScheduleInstance>(ELIGIBILITY, ELIGIBILITY, "", t),
            self.collection::<ScheduleInstance>(ACTIVE, ACTIVE, "", t),
            self.collection::<PolicyAssignment>(
                POLICY_ASSIGNMENTS,
                POLICY_ASSIGNMENTS,
                POLICIES_QUERY,
                t
            ),
        );
        let principals = self
            .resolve(
                assignments.as_deref().unwrap_or_default(),
                eligibility.as_deref().unwrap_or_default(),
                t,
            )
            .await;
        PrivilegedAccess {
            assignments,
            eligibility,
            principals,
            active,
            policies,
        }
    }

    /// One collection, all pages; `label` names it in errors and logs.
    async fn collection<T: DeserializeOwned>(
        &self,
        label: &'static str,
        path: &str,
        query: &str,
        token: Option<&SecretString>,
    ) -> Result<Vec<T>, CollectionError> {
        let url = self.url(path, query)?;
        self.http
            .get_collection(label, &url, token, true)
            .instrument(tracing::debug_span!("msgraph_endpoint", endpoint = label))
            .await
    }

    /// Resolve the principals holding a privileged role: typed ones from the assignments'
    /// expanded principal, untyped ones (eligibilities) by trying `/users`, then the group.
    async fn resolve(
        &self,
        assignments: &[RoleAssignment],
        eligibility: &[ScheduleInstance],
        token: Option<&SecretString>,
    ) -> Result<BTreeMap<String, Resolved>, CollectionError> {
        let mut out = BTreeMap::new();
        let mut users = BTreeSet::new();
        let mut groups = BTreeSet::new();
        let mut untyped = BTreeSet::new();
        for a in assignments
            .iter()
            .filter(|a| is_privileged(&a.role_definition_id))
        {
            let Some(id) = object_id(&a.principal_id) else {
                out.insert(a.principal_id.to_ascii_lowercase(), Resolved::Other);
                continue;
            };
            match &a.principal {
                Some(p) if is_type(p, "#microsoft.graph.user") => {
                    users.insert(id);
                }
                Some(p) if is_type(p, "#microsoft.graph.group") => {
                    groups.insert(id);
                }
                // a service principal (or another type): holds no user
                Some(p) if p.odata_type.is_some() => {
                    out.insert(id, Resolved::Other);
                }
                _ => {
                    untyped.insert(id);
                }
            }
        }
        for e in eligibility
            .iter()
            .filter(|e| is_privileged(&e.role_definition_id))
        {
            match object_id(&e.principal_id) {
                Some(id)
                    if !users.contains(&id) && !groups.contains(&id) && !out.contains_key(&id) =>
                {
                    untyped.insert(id);
                }
                Some(_) => {}
                None => {
                    out.insert(e.principal_id.to_ascii_lowercase(), Resolved::Other);
                }
            }
        }
        let lookup: Vec<&String> = users.iter().chain(&untyped).collect();
        if lookup.len() > MAX_USERS {
            return Err(CollectionError::new(
                ErrorKind::Other,
                endpoints::USERS,
                format!(
                    "{} principals hold privileged roles, more than the {MAX_USERS} looked up per poll",
                    lookup.len()
                ),
            ));
        }
        let found = self.users_by_id(&lookup, token).await?;
        for id in &users {
            let r = found
                .get(id)
                .cloned()
                .map_or(Resolved::UserNotFound, Resolved::User);
            out.insert(id.clone(), r);
        }
        for id in untyped {
            match found.get(&id) {
                Some(u) => {
                    out.insert(id, Resolved::User(u.clone()));
                }
                None => {
                    groups.insert(id);
                }
            }
        }
        if groups.len() > MAX_GROUPS {
            return Err(CollectionError::new(
                ErrorKind::Other,
                endpoints::GROUP_MEMBERS,
                format!(
                    "{} groups or untyped principals hold privileged roles, more than the {MAX_GROUPS} expanded per poll",
                    groups.len()
                ),
            ));
        }
        for id in groups {
            let path = format!("/groups/{id}/transitiveMembers/microsoft.graph.user");
            let members = self
                .collection::<DirectoryObject>(
                    endpoints::GROUP_MEMBERS,
                    &path,
                    &format!("?{USER_SELECT}"),
                    token,
                )
                .await;
            let r = match members {
                Ok(m) => {
                    Resolved::Group(m.iter().filter_map(PrivilegedUser::from_object).collect())
                }
                // An untyped principal that is no group either (a service principal).
                Err(e) if e.kind == ErrorKind::NotFound => Resolved::Other,
                Err(e) => return Err(e),
            };
            out.insert(id, r);
        }
        Ok(out)
    }

    /// The users among `ids` (lower-case GUIDs), [`USERS_PER_REQUEST`] ids a request.
    async fn users_by_id(
        &self,
        ids: &[&String],
        token: Option<&SecretString>,
    ) -> Result<BTreeMap<String, PrivilegedUser>, CollectionError> {
        let mut found = BTreeMap::new();
        for chunk in ids.chunks(USERS_PER_REQUEST) {
            let list: Vec<String> = chunk.iter().map(|id| format!("'{id}'")).collect();
            let query = format!("?$filter=id in ({})&{USER_SELECT}", list.join(","));
            let users: Vec<DirectoryObject> = self
                .collection(endpoints::USERS, endpoints::USERS, &query, token)
                .await?;
            for u in users.iter().filter_map(PrivilegedUser::from_object) {
                found.insert(u.id.clone(), u);
            }
        }
        Ok(found)
    }
}
