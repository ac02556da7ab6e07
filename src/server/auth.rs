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
//! Sources of principals, tried in order: API tokens (`pst_<id>_<secret>`, [`crate::server::tokens`];
//! subject `token:<id>`), JWTs of the organisation's OpenID Connect identity provider
//! (`[server.oidc]`; subject `oidc:<sub>`), and the legacy shared `[server] api_token` (an
//! administrator over everything, subject `api_token`, kept so existing integrations keep
//! working). Refusals: [`AuthFailure`].
//! The dashboard's sign-in resolves the token a person pastes through the same [`resolve`]
//! and keeps the principal in its session.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use crate::access::{Role, Scope};
use crate::app::App;
use crate::server::problem::{self, Problem};

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
    problem::FORBIDDEN.at(StatusCode::FORBIDDEN, detail)
}

/// The 401 problem of a request without valid credentials (with `WWW-Authenticate: Bearer`).
pub fn unauthorized(detail: impl Into<String>) -> Response {
    let mut response = problem::UNAUTHORIZED
        .at(StatusCode::UNAUTHORIZED, detail)
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

/// Longest accepted `Authorization` header value, in bytes (16 KiB: an identity provider's JWT
/// with many group claims fits); a longer one is refused (401, reason `too_long`) unread.
pub const MAX_AUTHORIZATION_BYTES: usize = 16 * 1024;

/// Why a request was not authenticated: the `reason` label of
/// `postured_auth_failures_total` (bounded) and the answer's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header.
    Missing,
    /// Not `Bearer <token>`.
    Malformed,
    /// Longer than [`MAX_AUTHORIZATION_BYTES`].
    TooLong,
    /// No API token, JWT or shared token matches.
    UnknownToken,
    /// An API token past its expiry.
    Expired,
    /// A revoked API token.
    Revoked,
    /// A JWT that does not verify (signature, issuer, audience, not-before, shape).
    JwtInvalid,
    /// A JWT past its `exp` (beyond the leeway).
    JwtExpired,
    /// A JWT signed with a key (`kid`) the identity provider's key set does not hold.
    JwtUnknownKey,
    /// A JWT whose algorithm is not allowed (`none`, HMAC, or outside the configured list).
    JwtAlgorithm,
    /// The identity provider's key set could never be fetched (503).
    JwksUnavailable,
    /// A valid JWT whose role claim maps to no role (403: authenticated, no role).
    NoRole,
    /// The store could not be read to check an API token (503).
    StoreUnavailable,
}

impl AuthFailure {
    /// The metric label (one of [`crate::metrics::AUTH_FAILURE_REASONS`]).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Malformed => "malformed",
            AuthFailure::TooLong => "too_long",
            AuthFailure::UnknownToken => "unknown_token",
            AuthFailure::Expired => "expired",
            AuthFailure::Revoked => "revoked",
            AuthFailure::JwtInvalid => "jwt_invalid",
            AuthFailure::JwtExpired => "jwt_expired",
            AuthFailure::JwtUnknownKey => "jwt_unknown_key",
            AuthFailure::JwtAlgorithm => "jwt_algorithm",
            AuthFailure::JwksUnavailable => "jwks_unavailable",
            AuthFailure::NoRole => "no_role",
            AuthFailure::StoreUnavailable => "store_unavailable",
        }
    }

    /// The answer: 401 (with `WWW-Authenticate: Bearer`) for credentials that do not
    /// authenticate, 403 for [`AuthFailure::NoRole`], 503 when the store or the identity
    /// provider's keys are unavailable. The detail never holds the token.
    pub fn response(self) -> Response {
        match self {
            AuthFailure::NoRole => forbidden(
                "the identity provider's token carries no role postured knows \
                 ([server.oidc] roles)",
            )
            .into_response(),
            AuthFailure::StoreUnavailable | AuthFailure::JwksUnavailable => {
                problem::AUTHENTICATION_UNAVAILABLE
                    .at(
                        StatusCode::SERVICE_UNAVAILABLE,
                        if self == AuthFailure::StoreUnavailable {
                            "the store could not be read to check the token"
                        } else {
                            "the identity provider's signing keys could not be fetched"
                        },
                    )
                    .into_response()
            }
            AuthFailure::Expired | AuthFailure::JwtExpired => unauthorized("the token has expired"),
            AuthFailure::Revoked => unauthorized("the token was revoked"),
            AuthFailure::TooLong => unauthorized(format!(
                "the Authorization header is longer than {MAX_AUTHORIZATION_BYTES} bytes"
            )),
            _ => unauthorized("missing or invalid bearer token"),
        }
    }
}

/// What the authentication middleware needs: the app (its store, shared token, metrics) and
/// the identity provider's verifier when `[server.oidc]` is configured.
#[derive(Clone)]
pub struct AuthState {
    /// The app.
    pub app: Arc<App>,
    /// The JWT verifier of `[server.oidc]`.
    pub oidc: Option<Arc<crate::server::oidc::Verifier>>,
    /// Verified API tokens, for at most [`crate::server::token_cache::TOKEN_CACHE_TTL`] each
    /// (also handed to the protected routes as a request extension, so that revoking a token
    /// drops its entry).
    pub tokens: Arc<crate::server::token_cache::TokenCache>,
}

impl AuthState {
    /// The state of `app`'s configuration (a new verifier, with no keys fetched yet).
    pub fn new(app: Arc<App>) -> AuthState {
        let oidc = app.config.server.oidc.as_ref().map(|cfg| {
            let http = match crate::http::http_client() {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(error = %e, "no HTTP client for the identity provider's keys");
                    None
                }
            };
            Arc::new(crate::server::oidc::Verifier::new(cfg, http))
        });
        AuthState {
            app,
            oidc,
            tokens: Arc::default(),
        }
    }
}

/// Middleware of the protected routes: resolve the bearer token into a [`Principal`] (stored
/// in the request's extensions) or refuse ([`AuthFailure::response`]); each refusal is counted
/// by reason and logged at debug level, without the token.
pub async fn authenticate(State(auth): State<AuthState>, mut req: Request, next: Next) -> Response {
    let app = &auth.app;
    let resolved = match req.headers().get(header::AUTHORIZATION) {
        None => Err(AuthFailure::Missing),
        Some(v) if v.len() > MAX_AUTHORIZATION_BYTES => Err(AuthFailure::TooLong),
        Some(v) => match bearer_token(v.as_bytes()) {
            None => Err(AuthFailure::Malformed),
            Some(presented) => resolve(&auth, presented).await,
        },
    };
    match resolved {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            req.extensions_mut().insert(auth.tokens.clone());
            next.run(req).await
        }
        Err(failure) => {
            app.metrics.observe_auth_failure(failure.as_str());
            tracing::debug!(
                reason = failure.as_str(),
                path = %req.uri().path(),
                "authentication refused"
            );
            failure.response()
        }
    }
}

/// The principal a presented token stands for (the one resolution of credentials, used by
/// the API's bearer middleware and the dashboard's sign-in alike), tried in order: an API token (prefix
/// `pst_`), a JWT of the configured identity provider (three dot-separated parts), the legacy
/// shared `[server] api_token`.
pub(crate) async fn resolve(auth: &AuthState, presented: &[u8]) -> Result<Principal, AuthFailure> {
    let app = auth.app.as_ref();
    if presented.starts_with(crate::server::tokens::TOKEN_PREFIX.as_bytes()) {
        return match crate::server::tokens::check(
            app,
            Some(&auth.tokens),
            presented,
            chrono::Utc::now(),
        )
        .await
        {
            Ok(token) => Ok(Principal {
                subject: format!("token:{}", token.id),
                role: token.role,
                scope: token.scope,
            }),
            Err(crate::server::tokens::TokenRefusal::Unknown) => Err(AuthFailure::UnknownToken),
            Err(crate::server::tokens::TokenRefusal::Expired) => Err(AuthFailure::Expired),
            Err(crate::server::tokens::TokenRefusal::Revoked) => Err(AuthFailure::Revoked),
            Err(crate::server::tokens::TokenRefusal::StoreUnavailable) => {
                Err(AuthFailure::StoreUnavailable)
            }
        };
    }
    if let Some(oidc) = &auth.oidc
        && crate::server::oidc::Verifier::looks_like_jwt(presented)
    {
        // looks_like_jwt admits ASCII only.
        let token = std::str::from_utf8(presented).map_err(|_| AuthFailure::JwtInvalid)?;
        return oidc.verify(token).await;
    }
    match &app.config.api_token {
        Some(expected) if token_matches(expected, presented) => Ok(Principal {
            subject: "api_token".into(),
            role: Role::Administrator,
            scope: Scope::default(),
        }),
        _ => Err(AuthFailure::UnknownToken),
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
