//! Who may do what: the [`Role`]s of callers and the [`Scope`] of tenants and groups they may
//! be limited to. The vocabulary of API tokens (`store`), the OpenID Connect role mapping
//! (`config`) and the API's checks (`server::auth`).
//!
//! Must not: authenticate anyone (the server does) or hold secrets.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// A role, ordered: each role may do everything the roles below it may.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read everything in scope.
    Reader,
    /// Reader, plus assignment, implementation notes and evidence.
    Contributor,
    /// Contributor, plus test status.
    Assessor,
    /// Assessor, plus templates, assessments and API tokens.
    Administrator,
}

impl Role {
    /// The role's name as written in config, tokens and the OpenAPI document.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Contributor => "contributor",
            Role::Assessor => "assessor",
            Role::Administrator => "administrator",
        }
    }

    /// Every role, lowest first.
    pub const ALL: [Role; 4] = [
        Role::Reader,
        Role::Contributor,
        Role::Assessor,
        Role::Administrator,
    ];

    /// The role named `name` (`reader`, `contributor`, `assessor`, `administrator`).
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// What a principal may see: every tenant and group when both sets are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// Tenant ids the principal is limited to (`None`: every tenant).
    pub tenants: Option<BTreeSet<String>>,
    /// Group ids the principal is limited to (`None`: every group).
    pub groups: Option<BTreeSet<String>>,
}

impl Scope {
    /// Whether the scope covers every tenant and group.
    pub fn is_unlimited(&self) -> bool {
        self.tenants.is_none() && self.groups.is_none()
    }

    /// Whether `tenant` is in scope.
    pub fn allows_tenant(&self, tenant: &str) -> bool {
        self.tenants.as_ref().is_none_or(|t| t.contains(tenant))
    }

    /// Whether `group` is in scope.
    pub fn allows_group(&self, group: &str) -> bool {
        self.groups.as_ref().is_none_or(|g| g.contains(group))
    }
}
