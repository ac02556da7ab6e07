//! API tokens: minting, checking a presented token, and the administrator's routes
//! `GET /api/v1/tokens`, `POST /api/v1/tokens` and `DELETE /api/v1/tokens/{id}` (the CLI's
//! `postured token create|list|revoke` use the same functions).
//!
//! A token's text is `pst_<id>_<secret>`: `<id>` is 16 lower-case hex digits (64 random bits),
//! `<secret>` the unpadded base64url encoding of [`SECRET_BYTES`] bytes from the operating
//! system's random source. Only the SHA-256 digest of the secret is stored; a presented secret
//! is hashed and compared with it in constant time. The text is shown once, at creation.
//!
//! Limits (a request past one is answered 400, the CLI exits 64): a name of at most
//! [`MAX_NAME_CHARS`] characters, at most [`MAX_SCOPE_ENTRIES`] tenants and as many groups, each
//! a configured one, an expiry in the future and at most [`MAX_LIFETIME_DAYS`] days away. Only an
//! administrator without a tenant or group scope manages tokens (a scoped administrator could
//! otherwise mint a token wider than its own scope).
//!
//! Must not: log, return or store a secret after creation.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::{DateTime, Utc};
use rand::TryRngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::access::{Role, Scope};
use crate::app::App;
use crate::config::Config;
use crate::server::auth::{Principal, forbidden};
use crate::server::problem::{self, Problem, excerpt};
use crate::server::token_cache::TokenCache;
use crate::store::{ApiToken, AuditRecord, Store, StoreError, StoredToken};

/// Prefix of every API token's text.
pub const TOKEN_PREFIX: &str = "pst_";
/// Random bytes in a token's secret (256 bits).
pub const SECRET_BYTES: usize = 32;
/// Random bytes in a token's id (64 bits, 16 hex digits).
pub const ID_BYTES: usize = 8;
/// Longest token name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Most tenants, and most groups, one token may be limited to.
pub const MAX_SCOPE_ENTRIES: usize = 64;
/// Longest lifetime of a token, in days (about ten years).
pub const MAX_LIFETIME_DAYS: i64 = 3653;
/// A token's last use is written at most once per this many seconds.
pub const LAST_USE_INTERVAL_SECS: i64 = 60;
/// Largest accepted body of `POST /api/v1/tokens` (16 KiB: every field at its limit fits).
pub const MAX_CREATE_BODY_BYTES: usize = 16 * 1024;

/// What a new token is for, checked ([`check_new_token`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Its scope.
    pub scope: Scope,
    /// When it stops working.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A freshly minted token: what is stored, and the text to show once.
pub struct Minted {
    /// The stored record (digest, no secret).
    pub stored: StoredToken,
    /// The token's text, `pst_<id>_<secret>`.
    pub text: SecretString,
}

/// Why a token could not be minted.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// The operating system's random source failed.
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn random_bytes<const N: usize>() -> Result<[u8; N], MintError> {
    let mut buf = [0u8; N];
    rand::rngs::OsRng
        .try_fill_bytes(&mut buf)
        .map_err(|e| MintError::Random(e.to_string()))?;
    Ok(buf)
}

/// Mint a token for `new`, created by `created_by` at `now`, and store it with its audit row
/// ([`token_audit`]). Returns the record and the text (shown once; only its digest is kept).
///
/// # Errors
///
/// [`MintError`] when the random source or the store fails (an id clash, one in 2^64 per
/// pair, is a store error too).
pub async fn create(
    store: &dyn crate::store::TokenStore,
    new: NewToken,
    created_by: &str,
    now: DateTime<Utc>,
) -> Result<Minted, MintError> {
    let id = hex::encode(random_bytes::<ID_BYTES>()?);
    let secret =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<SECRET_BYTES>()?);
    let stored = StoredToken {
        token: ApiToken {
            id: id.clone(),
            name: new.name,
            role: new.role,
            scope: new.scope,
            created_at: now,
            created_by: created_by.to_string(),
            expires_at: new.expires_at,
            revoked_at: None,
            last_used_at: None,
        },
        secret_sha256: Sha256::digest(secret.as_bytes()).into(),
    };
    let audit = token_audit(created_by, "token.create", &stored.token, now);
    store.create_token(&stored, &[audit]).await?;
    Ok(Minted {
        stored,
        text: SecretString::from(format!("{TOKEN_PREFIX}{id}_{secret}")),
    })
}

/// The `(id, secret)` of a presented `pst_<id>_<secret>` token, `None` when it is not of that
/// shape.
pub fn split_token(presented: &[u8]) -> Option<(&str, &[u8])> {
    let rest = presented.strip_prefix(TOKEN_PREFIX.as_bytes())?;
    let (id, secret) = rest.split_at_checked(ID_BYTES * 2)?;
    let secret = secret.strip_prefix(b"_")?;
    let id = std::str::from_utf8(id).ok()?;
    if !id
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        || secret.is_empty()
    {
        return None;
    }
    Some((id, secret))
}

/// Why a presented API token was refused (a bounded metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    /// Not of the token shape, unknown id, or wrong secret.
    Unknown,
    /// Past its expiry.
    Expired,
    /// Revoked.
    Revoked,
    /// The store could not be read.
    StoreUnavailable,
}

/// The stored token a presented `pst_` token stands for, checked: the secret's digest equal
/// (constant time), not revoked, not expired at `now`. With a `cache`, a token verified less
/// than [`crate::server::token_cache::TOKEN_CACHE_TTL`] ago is taken from it instead of the
/// store (so a revocation by another process takes effect within that bound) and a verified
/// one is put in it. Records its use (at most once a [`LAST_USE_INTERVAL_SECS`]; a failure to
/// record is logged, not a refusal).
pub async fn check(
    app: &App,
    cache: Option<&TokenCache>,
    presented: &[u8],
    now: DateTime<Utc>,
) -> Result<ApiToken, TokenRefusal> {
    let Some((id, secret)) = split_token(presented) else {
        return Err(TokenRefusal::Unknown);
    };
    let given: [u8; 32] = Sha256::digest(secret).into();
    let cached = cache.and_then(|c| c.get(id, &given, std::time::Instant::now()));
    let token = match cached {
        Some(token) => token,
        None => {
            let read_at = std::time::Instant::now();
            let stored = match app.store.token(id).await {
                Ok(Some(s)) => s,
                Ok(None) => return Err(TokenRefusal::Unknown),
                Err(e) => {
                    app.metrics.observe_store_error(e.kind());
                    tracing::warn!(error = %e, "reading an API token failed");
                    return Err(TokenRefusal::StoreUnavailable);
                }
            };
            if !bool::from(given[..].ct_eq(&stored.secret_sha256[..])) {
                return Err(TokenRefusal::Unknown);
            }
            let token = stored.token;
            if token.revoked_at.is_some() {
                return Err(TokenRefusal::Revoked);
            }
            if let Some(c) = cache {
                c.insert(given, token.clone(), read_at);
            }
            token
        }
    };
    if !token.is_active(now) {
        return Err(TokenRefusal::Expired);
    }
    let interval = chrono::Duration::seconds(LAST_USE_INTERVAL_SECS);
    if token.last_used_at.is_none_or(|last| now - last > interval) {
        match app.store.touch_token(&token.id, now, interval).await {
            Ok(_) => {
                if let Some(c) = cache {
                    c.used(&token.id, now);
                }
            }
            Err(e) => {
                app.metrics.observe_store_error(e.kind());
                tracing::warn!(token = %token.id, error = %e, "recording an API token's use failed");
            }
        }
    }
    Ok(token)
}

/// Parse an expiry: a duration from `now` (`90d`, `12h`, humantime syntax) or an RFC 3339
/// instant.
///
/// # Errors
///
/// What is wrong, for a person.
pub fn parse_expiry(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let d = humantime::parse_duration(text).map_err(|_| {
        format!(
            "{:?} is neither a duration (90d, 12h) nor an RFC 3339 instant",
            excerpt(text, 40)
        )
    })?;
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .ok_or_else(|| "the expiry is too far away".to_string())
}

/// Check a new token's fields against the limits and `cfg` (tenants and groups must be
/// configured ones; an empty list is refused: leave it out for every one).
///
/// # Errors
///
/// Every problem, one per line, for a person.
pub fn check_new_token(
    cfg: &Config,
    name: Option<&str>,
    role: Role,
    tenants: Option<&[String]>,
    groups: Option<&[String]>,
    expires: Option<&str>,
    now: DateTime<Utc>,
) -> Result<NewToken, String> {
    let mut problems = Vec::new();
    let name = match name.map(str::trim) {
        None | Some("") => format!("{} token", role.as_str()),
        Some(n) if n.chars().count() > MAX_NAME_CHARS => {
            problems.push(format!("name: longer than {MAX_NAME_CHARS} characters"));
            String::new()
        }
        Some(n) if n.chars().any(char::is_control) => {
            problems.push("name: contains control characters".to_string());
            String::new()
        }
        Some(n) => n.to_string(),
    };
    let mut set = |field: &str, list: Option<&[String]>, known: &dyn Fn(&str) -> bool| {
        let list = list?;
        if list.is_empty() {
            problems.push(format!(
                "{field}: empty; leave it out for a token over every one"
            ));
        } else if list.len() > MAX_SCOPE_ENTRIES {
            problems.push(format!("{field}: more than {MAX_SCOPE_ENTRIES} entries"));
        }
        for id in list.iter().take(MAX_SCOPE_ENTRIES) {
            if !known(id) {
                problems.push(format!("{field}: {:?} is not configured", excerpt(id, 64)));
            }
        }
        Some(list.iter().cloned().collect::<BTreeSet<String>>())
    };
    let tenants = set("tenants", tenants, &|t| cfg.tenant(t).is_some());
    let groups = set("groups", groups, &|g| cfg.groups.iter().any(|c| c.id == g));
    let expires_at = match expires.map(|e| parse_expiry(e, now)) {
        None => None,
        Some(Err(e)) => {
            problems.push(format!("expires: {e}"));
            None
        }
        Some(Ok(at)) if at <= now => {
            problems.push("expires: must be in the future".to_string());
            None
        }
        Some(Ok(at)) if at - now > chrono::Duration::days(MAX_LIFETIME_DAYS) => {
            problems.push(format!("expires: more than {MAX_LIFETIME_DAYS} days away"));
            None
        }
        Some(Ok(at)) => Some(at),
    };
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    Ok(NewToken {
        name,
        role,
        scope: Scope { tenants, groups },
        expires_at,
    })
}

/// The audit row of a token change: verb `token.create` (the new value is the token's record:
/// name, role, scope, expiry; never the secret or its digest) or `token.revoke` (field
/// `revoked_at`), object `token:<id>`, actor `by` (the principal's subject). Written in the
/// same transaction as the change.
pub fn token_audit(
    by: &str,
    action: &'static str,
    token: &ApiToken,
    at: DateTime<Utc>,
) -> AuditRecord {
    let (field, new_value) = match action {
        "token.revoke" => (
            Some("revoked_at".to_string()),
            serde_json::to_value(token.revoked_at).ok(),
        ),
        _ => (None, serde_json::to_value(token).ok()),
    };
    AuditRecord {
        at,
        actor: by.to_string(),
        action: action.to_string(),
        tenant: None,
        group: None,
        object: format!("token:{}", token.id),
        field,
        old_value: None,
        new_value,
        request_id: None,
    }
}

/// Body of `POST /api/v1/tokens`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenBody {
    /// What the token is for (at most 100 characters; default `<role> token`).
    pub name: Option<String>,
    /// The role it grants.
    pub role: Role,
    /// Tenants it is limited to (configured ids; absent: every tenant).
    pub tenants: Option<Vec<String>>,
    /// Groups it is limited to (configured ids; absent: every group).
    pub groups: Option<Vec<String>>,
    /// When it expires: a duration from now (`90d`) or an RFC 3339 instant (absent: never).
    pub expires: Option<String>,
}

/// Answer of `POST /api/v1/tokens`: the token's text, shown this once, and its record.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    /// `pst_<id>_<secret>`: present it as `Authorization: Bearer <token>`. Not shown again.
    pub token: String,
    /// The stored record.
    #[serde(flatten)]
    pub record: ApiToken,
}

/// Answer of `GET /api/v1/tokens`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenList {
    /// Every token, oldest first (revoked and expired ones included).
    pub tokens: Vec<ApiToken>,
}

/// `Ok` for an administrator over every tenant and group; else 403.
fn require_token_admin(principal: &Principal) -> Result<(), Problem> {
    principal.require(Role::Administrator)?;
    if principal.scope.is_unlimited() {
        Ok(())
    } else {
        Err(forbidden(
            "managing tokens needs an administrator without a tenant or group scope",
        ))
    }
}

/// `GET /api/v1/tokens`.
#[utoipa::path(
    get,
    operation_id = "list_tokens",
    path = "/api/v1/tokens",
    tag = "tokens",
    security(("bearer" = ["administrator"])),
    responses(
        (status = 200, description = "Every API token (never a secret or its digest)", body = TokenList),
        (status = 401, description = "No valid credentials", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator over every tenant and group", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = crate::server::problem::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn list(State(app): State<Arc<App>>, principal: Principal) -> Response {
    if let Err(p) = require_token_admin(&principal) {
        return p.into_response();
    }
    match app.store.tokens().await {
        Ok(tokens) => Json(TokenList { tokens }).into_response(),
        Err(e) => problem::store_failed(&app, e.kind()).into_response(),
    }
}

/// `POST /api/v1/tokens`.
#[utoipa::path(
    post,
    operation_id = "create_token",
    path = "/api/v1/tokens",
    tag = "tokens",
    security(("bearer" = ["administrator"])),
    request_body = CreateTokenBody,
    responses(
        (status = 201, description = "The token, its text shown this once", body = CreatedToken),
        (status = 401, description = "No valid credentials", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 400, description = "Invalid body or field", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator over every tenant and group", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = crate::server::problem::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn create_route(
    State(app): State<Arc<App>>,
    principal: Principal,
    body: Result<Json<CreateTokenBody>, JsonRejection>,
) -> Response {
    if let Err(p) = require_token_admin(&principal) {
        return p.into_response();
    }
    let body = match body {
        Ok(Json(b)) => b,
        Err(e) => return problem::json_rejection(&e).into_response(),
    };
    let now = Utc::now();
    let new = match check_new_token(
        &app.config,
        body.name.as_deref(),
        body.role,
        body.tenants.as_deref(),
        body.groups.as_deref(),
        body.expires.as_deref(),
        now,
    ) {
        Ok(n) => n,
        Err(m) => {
            return problem::INVALID_FIELD
                .at(StatusCode::BAD_REQUEST, m)
                .into_response();
        }
    };
    match create(app.store.as_ref(), new, &principal.subject, now).await {
        Ok(minted) => (
            StatusCode::CREATED,
            Json(CreatedToken {
                token: minted.text.expose_secret().to_string(),
                record: minted.stored.token,
            }),
        )
            .into_response(),
        Err(MintError::Store(e)) => problem::store_failed(&app, e.kind()).into_response(),
        Err(e @ MintError::Random(_)) => {
            tracing::error!(error = %e, "minting a token failed");
            problem::RANDOM_SOURCE
                .at(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the operating system's random source failed; see the logs",
                )
                .into_response()
        }
    }
}

/// `DELETE /api/v1/tokens/{id}`: revoke a token (kept, listed as revoked).
#[utoipa::path(
    delete,
    operation_id = "revoke_token",
    path = "/api/v1/tokens/{id}",
    tag = "tokens",
    security(("bearer" = ["administrator"])),
    params(("id" = String, Path, description = "Token id (the `<id>` of `pst_<id>_<secret>`)")),
    responses(
        (status = 204, description = "Revoked (or revoked already)"),
        (status = 401, description = "No valid credentials", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator over every tenant and group", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown token", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = crate::server::problem::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn revoke_route(
    State(app): State<Arc<App>>,
    principal: Principal,
    cache: Option<Extension<Arc<TokenCache>>>,
    Path(id): Path<String>,
) -> Response {
    if let Err(p) = require_token_admin(&principal) {
        return p.into_response();
    }
    match revoke(app.store.as_ref(), &id, &principal.subject).await {
        Ok(Some(_)) => {
            // This server's cached copy goes at once (other servers' within their TTL).
            if let Some(Extension(cache)) = cache {
                cache.remove(&id);
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(None) => problem::UNKNOWN_TOKEN
            .at(
                StatusCode::NOT_FOUND,
                format!("no token has the id {:?}", excerpt(&id, 32)),
            )
            .into_response(),
        Err(e) => problem::store_failed(&app, e.kind()).into_response(),
    }
}

/// Revoke token `id` on behalf of `by`: `Some(record)` when it exists (revoked now, with its
/// audit row, or revoked already), `None` when unknown.
///
/// # Errors
///
/// The store's.
pub async fn revoke(store: &dyn Store, id: &str, by: &str) -> Result<Option<ApiToken>, StoreError> {
    let Some(stored) = store.token(id).await? else {
        return Ok(None);
    };
    let now = Utc::now();
    let mut token = stored.token;
    token.revoked_at = Some(now);
    let audit = token_audit(by, "token.revoke", &token, now);
    if store.revoke_token(id, now, &[audit]).await? {
        return Ok(Some(token));
    }
    Ok(store.token(id).await?.map(|s| s.token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_token_shape_splits() {
        let secret = "A".repeat(43);
        let ok = format!("pst_0123456789abcdef_{secret}");
        assert_eq!(
            split_token(ok.as_bytes()),
            Some(("0123456789abcdef", secret.as_bytes()))
        );
        for bad in [
            "pst_0123456789abcdef_".to_string(),
            "pst_0123456789ABCDEF_x".to_string(),
            "pst_0123456789abcde_xx".to_string(),
            "pst_0123456789abcdefx".to_string(),
            "pst0123456789abcdef_x".to_string(),
            format!("Pst_0123456789abcdef_{secret}"),
            "pst_".to_string(),
        ] {
            assert_eq!(split_token(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn expiries_are_durations_or_instants() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_expiry("90d", now).unwrap(),
            now + chrono::Duration::days(90)
        );
        assert_eq!(
            parse_expiry("2026-02-01T00:00:00+01:00", now).unwrap(),
            DateTime::parse_from_rfc3339("2026-01-31T23:00:00Z").unwrap()
        );
        assert!(parse_expiry("soon", now).is_err());
    }

    #[test]
    fn new_tokens_are_bounded_and_name_configured_tenants_and_groups() {
        let cfg = Config::parse(
            "[[tenants]]\nid = \"a\"\n[[tenants.connectors]]\nkind = \"msgraph\"\n\
             schedule = \"0 * * * * *\"\nreplay_dir = \"demo\"\n[[groups]]\nid = \"g\"\n",
            &[],
            &|_| None,
        )
        .unwrap();
        let now = Utc::now();
        let ok = check_new_token(
            &cfg,
            None,
            Role::Reader,
            Some(&["a".to_string()]),
            Some(&["g".to_string()]),
            Some("90d"),
            now,
        )
        .unwrap();
        assert_eq!(ok.name, "reader token");
        assert_eq!(ok.scope.tenants, Some(["a".to_string()].into()));
        let long = "n".repeat(MAX_NAME_CHARS + 1);
        let many: Vec<String> = (0..=MAX_SCOPE_ENTRIES).map(|i| i.to_string()).collect();
        let err = check_new_token(
            &cfg,
            Some(&long),
            Role::Reader,
            Some(&many),
            Some(&[]),
            Some("2000-01-01T00:00:00Z"),
            now,
        )
        .unwrap_err();
        for want in [
            "name: longer",
            "tenants: more than 64",
            "tenants: \"0\" is not configured",
            "groups: empty",
            "expires: must be in the future",
        ] {
            assert!(err.contains(want), "{want} in {err}");
        }
        assert!(
            check_new_token(&cfg, None, Role::Reader, None, None, Some("20y"), now)
                .unwrap_err()
                .contains("days away")
        );
    }
}
