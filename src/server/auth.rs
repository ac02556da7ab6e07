//! Who is calling and what they may do: roles, scopes and the [`Principal`] every protected
//! handler receives.
//!
//! Roles are ordered, each including the ones below it:
//!
//! | role | may |
//! |---|---|
//! | `reader` | read tenants, scores, assessments, controls, actions, templates, alerts, the audit log |
//! | `contributor` | also assign actions, write implementation notes, attach evidence |
//! | `assessor` | also set test status (and so the points of manual actions) |
//! | `administrator` | also import and export templates, manage assessments and API tokens |
//!
//! A principal may be limited to some tenants and/or some groups ([`Scope`]); outside its
//! scope a resource is answered as if it did not exist (404) for reads and 403 for writes.
//!
//! The authentication middleware ([`authenticate`]) resolves the `Authorization: Bearer`
//! header into a [`Principal`] and stores it in the request's extensions; handlers take it as
//! an extractor and call [`Principal::require`] / [`Principal::require_tenant`]. A request
//! that reaches a protected handler without a principal is answered 401.
//!
//! Sources of principals: the legacy shared `[server] api_token` (an administrator over
//! everything, kept so existing integrations keep working). The dashboard's sign-in resolves
//! the token a person pastes through the same [`resolve`] and keeps the principal in its
//! session.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::server::problem::Problem;

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

    /// The role named `name` (`reader`, `contributor`, `assessor`, `administrator`).
    pub fn parse(name: &str) -> Option<Role> {
        [
            Role::Reader,
            Role::Contributor,
            Role::Assessor,
            Role::Administrator,
        ]
        .into_iter()
        .find(|r| r.as_str() == name)
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

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// Who: `token:<id>` for an API token, `oidc:<sub>` for an identity provider's user,
    /// `api_token` for the legacy shared token. Written to the audit log.
    pub subject: String,
    /// The principal's role.
    pub role: Role,
    /// The tenants and groups it is limited to.
    pub scope: Scope,
}

impl Principal {
    /// `Ok` when the principal's role is at least `role`, else a 403 problem.
    pub fn require(&self, role: Role) -> Result<(), Problem> {
        if self.role >= role {
            Ok(())
        } else {
            Err(forbidden(format!(
                "this call needs the role {} or higher; the caller is {}",
                role.as_str(),
                self.role.as_str()
            )))
        }
    }

    /// `Ok` when the principal's role is at least `role` and `tenant` is in its scope, else a
    /// 403 problem.
    pub fn require_tenant(&self, role: Role, tenant: &str) -> Result<(), Problem> {
        self.require(role)?;
        if self.scope.allows_tenant(tenant) {
            Ok(())
        } else {
            Err(forbidden("the tenant is outside the caller's scope"))
        }
    }
}

/// The 403 problem of a caller without the needed role or scope.
pub fn forbidden(detail: impl Into<String>) -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "/problems/forbidden",
        "Forbidden",
        detail,
    )
}

/// The 401 problem of a request without valid credentials (with `WWW-Authenticate: Bearer`).
pub fn unauthorized(detail: impl Into<String>) -> Response {
    let mut response = Problem::new(
        StatusCode::UNAUTHORIZED,
        "/problems/unauthorized",
        "Unauthorized",
        detail,
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| unauthorized("missing or invalid bearer token"))
    }
}

/// Middleware of the protected routes: resolve the bearer token into a [`Principal`] (stored
/// in the request's extensions) or answer 401.
pub async fn authenticate(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| bearer_token(v.as_bytes()));
    let Some(presented) = presented else {
        return unauthorized("missing or invalid bearer token");
    };
    match resolve(&app, presented).await {
        Some(principal) => {
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        None => unauthorized("missing or invalid bearer token"),
    }
}

/// The principal a presented token stands for, if any: the one resolution of credentials,
/// used by the API's bearer middleware ([`authenticate`]) and the dashboard's sign-in
/// (`crate::server::dashboard::signin`) alike, so every source of principals applies to both.
pub(crate) async fn resolve(app: &App, presented: &[u8]) -> Option<Principal> {
    match &app.config.api_token {
        Some(expected) if token_matches(expected, presented) => Some(Principal {
            subject: "api_token".into(),
            role: Role::Administrator,
            scope: Scope::default(),
        }),
        _ => None,
    }
}

/// The token of an `Authorization` value under RFC 6750 §2.1: the scheme `Bearer` in any
/// case, one or more spaces, then the token, taken exactly (nothing trimmed: a tab or trailing
/// space makes it a different token).
pub fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let space = value.iter().position(|b| *b == b' ')?;
    let (scheme, rest) = value.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = &rest[rest.iter().position(|b| *b != b' ')?..];
    Some(token)
}

/// Whether `given` is the configured token: the SHA-256 digests of both are compared in
/// constant time, so the time taken reveals neither the token's content nor its length.
fn token_matches(expected: &SecretString, given: &[u8]) -> bool {
    let expected: [u8; 32] = Sha256::digest(expected.expose_secret().as_bytes()).into();
    let given: [u8; 32] = Sha256::digest(given).into();
    bool::from(expected[..].ct_eq(&given[..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 8 row 16: RFC 6750 bearer parsing: the scheme in any case, the token exact (a
    /// trailing space or tab, or a tab before it, is not the token).
    #[test]
    fn bearer_scheme_is_case_insensitive_and_the_token_exact() {
        for (value, token) in [
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("BEARER   abc", Some("abc")),
            ("Bearer abc ", Some("abc ")),
            ("Bearer abc\t", Some("abc\t")),
            ("Bearer \tabc", Some("\tabc")),
            ("Basic abc", None),
            ("Bearerabc", None),
            ("Bearer", None),
            ("Bearer ", None),
        ] {
            assert_eq!(
                bearer_token(value.as_bytes()),
                token.map(str::as_bytes),
                "{value:?}"
            );
        }
        let secret = SecretString::from("abc");
        assert!(token_matches(&secret, b"abc"));
        for wrong in [&b"abc "[..], b"abc\t", b"\tabc", b"ab", b"abcd", b""] {
            assert!(!token_matches(&secret, wrong), "{wrong:?}");
        }
    }

    #[test]
    fn roles_are_ordered_and_scopes_limit_tenants() {
        let p = Principal {
            subject: "token:1".into(),
            role: Role::Contributor,
            scope: Scope {
                tenants: Some(["a".to_string()].into()),
                groups: None,
            },
        };
        assert!(p.require(Role::Reader).is_ok());
        assert!(p.require(Role::Contributor).is_ok());
        assert_eq!(p.require(Role::Assessor).unwrap_err().status, 403);
        assert!(p.require_tenant(Role::Reader, "a").is_ok());
        assert_eq!(p.require_tenant(Role::Reader, "b").unwrap_err().status, 403);
        for r in [
            Role::Reader,
            Role::Contributor,
            Role::Assessor,
            Role::Administrator,
        ] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
    }
}
