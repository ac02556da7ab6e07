//! OpenID Connect bearer JWTs (`[server.oidc]`): a token of the organisation's identity
//! provider is verified against the provider's published keys (JWKS) and turned into a
//! [`Principal`] with the role its role claim maps to.
//!
//! Verification ([`Verifier::verify`], with `jsonwebtoken`): the header's algorithm must be one
//! of `[server.oidc] algorithms` (asymmetric only: `none` and HMAC never verify, so a public
//! key can never be used as an HMAC secret), the key is the JWKS key of the header's `kid` (or
//! the only key when the set has one and the header names none), of the algorithm's family and,
//! when the key names an algorithm, of that algorithm; then the signature, `iss` (exactly the
//! issuer), `aud` (the audience), `exp` and `nbf` (with the leeway) and the presence of `sub`.
//! A verified token whose role claim maps to no role is authenticated but refused with 403
//! ([`AuthFailure::NoRole`]): the person exists, postured does not let them in.
//!
//! Keys: fetched with the shared HTTP client from `jwks_url` or the `jwks_uri` of
//! `<issuer>/.well-known/openid-configuration`, each answer read up to [`MAX_DOCUMENT_BYTES`]
//! within [`FETCH_TIMEOUT`]. The key set is fetched when first needed, again in the background
//! once older than `refresh_interval` (requests keep using the current set meanwhile), and
//! inline on an unknown `kid` at most once per [`UNKNOWN_KID_REFRESH`] (a key rotation is picked
//! up at once, a flood of made-up `kid`s costs one fetch per period). A failed fetch keeps the
//! last good key set and is logged; without any key set JWTs are answered 503.
//!
//! Discovery: the document (`<issuer>/.well-known/openid-configuration`, for the key set's
//! `jwks_uri` and the sign-in's endpoints, [`Verifier::endpoints`]) is cached like the key set:
//! fetched when first needed, again once older than `refresh_interval` (one fetch at a time;
//! callers arriving meanwhile wait for it and share it), at most once per
//! [`UNKNOWN_KID_REFRESH`] after a failed attempt. A failed fetch keeps the last good document
//! (logged), so sign-in presses and key refreshes cost no discovery request in between.
//!
//! Must not: log a token or its claims.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::Value;

use crate::access::{Role, Scope};
use crate::config::OidcConfig;
use crate::server::auth::{AuthFailure, Principal};

/// Largest discovery document or key set read, in bytes (1 MiB).
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Deadline of one discovery or key set request.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// An unknown `kid` fetches the key set again at most once per this long.
pub const UNKNOWN_KID_REFRESH: Duration = Duration::from_secs(30);
/// Longest `sub` kept in a principal's subject, in characters.
pub const MAX_SUBJECT_CHARS: usize = 256;
/// Most entries read from a token's tenant or group claim.
pub const MAX_SCOPE_CLAIM_ENTRIES: usize = 256;

/// The usable keys of a key set, by `kid` (keys without one under the empty string).
#[derive(Debug, Default)]
pub struct KeySet {
    keys: BTreeMap<String, Jwk>,
}

impl KeySet {
    /// The usable keys of a JWKS document: public signature keys (`use` absent or `sig`) of an
    /// asymmetric type that parse; symmetric (`oct`) keys and keys that do not parse are left out.
    ///
    /// # Errors
    ///
    /// When the document is not a JSON object with a `keys` list.
    pub fn parse(document: &[u8]) -> Result<KeySet, String> {
        let doc: Value = serde_json::from_slice(document).map_err(|e| format!("not JSON: {e}"))?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| "no \"keys\" list".to_string())?;
        let mut out = KeySet::default();
        for key in keys {
            let Ok(jwk) = serde_json::from_value::<Jwk>(key.clone()) else {
                continue;
            };
            let usable = matches!(
                jwk.algorithm,
                AlgorithmParameters::RSA(_)
                    | AlgorithmParameters::EllipticCurve(_)
                    | AlgorithmParameters::OctetKeyPair(_)
            ) && matches!(
                jwk.common.public_key_use,
                None | Some(PublicKeyUse::Signature)
            );
            if usable {
                out.keys
                    .insert(jwk.common.key_id.clone().unwrap_or_default(), jwk);
            }
        }
        Ok(out)
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is usable.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn find(&self, kid: Option<&str>) -> Option<&Jwk> {
        match kid {
            Some(kid) => self.keys.get(kid),
            None if self.keys.len() == 1 => self.keys.values().next(),
            None => None,
        }
    }
}

#[derive(Default)]
struct KeyState {
    keys: Option<Arc<KeySet>>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
    refreshing: bool,
}

/// The cached discovery document and when it was fetched or last attempted.
#[derive(Default)]
struct DiscoveryState {
    document: Option<Arc<Value>>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
    /// Why the last attempt failed (logged text), for an answer while no document is held.
    last_error: Option<String>,
}

/// Verifies the identity provider's JWTs; one per served router (a reload builds a new one).
pub struct Verifier {
    cfg: OidcConfig,
    roles: BTreeMap<String, Role>,
    algorithms: Vec<Algorithm>,
    http: Option<reqwest::Client>,
    state: Mutex<KeyState>,
    fetch: tokio::sync::Mutex<()>,
    /// The discovery document; the lock is held across its fetch, so one fetch at a time.
    discovery: tokio::sync::Mutex<DiscoveryState>,
    /// [`UNKNOWN_KID_REFRESH`], shorter in tests.
    unknown_kid_refresh: Duration,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.cfg.issuer)
            .finish_non_exhaustive()
    }
}

/// The endpoints of the authorization-code flow, from the discovery document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// `authorization_endpoint`: where the browser is sent to sign in.
    pub authorization: String,
    /// `token_endpoint`: where the code is exchanged.
    pub token: String,
}

/// Why the key set could not be fetched (logged, never answered).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The request failed or timed out.
    #[error("request to {url} failed: {source}")]
    Request {
        /// The URL requested.
        url: String,
        /// Why.
        source: reqwest::Error,
    },
    /// An answer other than 200.
    #[error("{url} answered {status}")]
    Status {
        /// The URL requested.
        url: String,
        /// Its status.
        status: u16,
    },
    /// The answer was too large or not the expected document.
    #[error("{url}: {reason}")]
    Document {
        /// The URL requested.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// No HTTP client could be built.
    #[error("no HTTP client")]
    NoClient,
}

impl Verifier {
    /// A verifier of `cfg` (validated) fetching keys with `http` (`None`: no key set can be
    /// fetched; only [`Verifier::with_keys`] keys verify).
    pub fn new(cfg: &OidcConfig, http: Option<reqwest::Client>) -> Verifier {
        Verifier {
            roles: cfg.role_map(),
            algorithms: cfg
                .algorithms
                .iter()
                .filter_map(|a| Algorithm::from_str(a).ok())
                .filter(|a| a.family() != jsonwebtoken::AlgorithmFamily::Hmac)
                .collect(),
            cfg: cfg.clone(),
            http,
            state: Mutex::new(KeyState::default()),
            fetch: tokio::sync::Mutex::new(()),
            discovery: tokio::sync::Mutex::new(DiscoveryState::default()),
            unknown_kid_refresh: UNKNOWN_KID_REFRESH,
        }
    }

    /// A verifier with a fixed key set, as if just fetched (for tests and start-up checks).
    pub fn with_keys(cfg: &OidcConfig, keys: KeySet, http: Option<reqwest::Client>) -> Verifier {
        let v = Verifier::new(cfg, http);
        {
            let mut s = v.state.lock().unwrap_or_else(|e| e.into_inner());
            s.keys = Some(Arc::new(keys));
            s.fetched_at = Some(Instant::now());
            s.attempted_at = s.fetched_at;
        }
        v
    }

    /// Whether `presented` has the shape of a JWT (three dot-separated base64url parts).
    pub fn looks_like_jwt(presented: &[u8]) -> bool {
        let parts: Vec<&[u8]> = presented.split(|b| *b == b'.').collect();
        parts.len() == 3
            && parts[..2].iter().all(|p| !p.is_empty())
            && presented
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    }

    /// The principal of a presented JWT, verified (see the module docs), or why not.
    pub async fn verify(self: &Arc<Self>, token: &str) -> Result<Principal, AuthFailure> {
        let audience = self.cfg.audience.clone();
        self.verify_for(token, &audience, None).await
    }

    /// [`Verifier::verify`] with another audience (a sign-in's ID token names the client id)
    /// and, when `nonce` is given, a `nonce` claim that must equal it (else
    /// [`AuthFailure::JwtInvalid`]).
    pub async fn verify_for(
        self: &Arc<Self>,
        token: &str,
        audience: &str,
        nonce: Option<&str>,
    ) -> Result<Principal, AuthFailure> {
        let header = decode_header(token).map_err(|e| match e.kind() {
            ErrorKind::InvalidAlgorithmName | ErrorKind::MissingAlgorithm => {
                AuthFailure::JwtAlgorithm
            }
            // A header naming an algorithm the library does not know (`none`) fails to parse.
            _ if names_an_algorithm(token) => AuthFailure::JwtAlgorithm,
            _ => AuthFailure::JwtInvalid,
        })?;
        if !self.algorithms.contains(&header.alg) {
            return Err(AuthFailure::JwtAlgorithm);
        }
        let keys = self.current_keys().await?;
        let kid = header.kid.as_deref();
        let jwk = match keys.find(kid) {
            Some(k) => k.clone(),
            None => {
                let keys = self
                    .refresh_for_unknown_kid()
                    .await
                    .ok_or(AuthFailure::JwtUnknownKey)?;
                keys.find(kid).cloned().ok_or(AuthFailure::JwtUnknownKey)?
            }
        };
        let family_matches = matches!(
            (&jwk.algorithm, header.alg.family()),
            (
                AlgorithmParameters::RSA(_),
                jsonwebtoken::AlgorithmFamily::Rsa
            ) | (
                AlgorithmParameters::EllipticCurve(_),
                jsonwebtoken::AlgorithmFamily::Ec
            ) | (
                AlgorithmParameters::OctetKeyPair(_),
                jsonwebtoken::AlgorithmFamily::Ed
            )
        );
        let key_alg_matches = jwk
            .common
            .key_algorithm
            .is_none_or(|a| serde_json::to_value(a).ok() == serde_json::to_value(header.alg).ok());
        if !family_matches || !key_alg_matches {
            return Err(AuthFailure::JwtAlgorithm);
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| AuthFailure::JwtUnknownKey)?;
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.set_issuer(&[self.cfg.issuer.as_str()]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = self.cfg.leeway.as_secs();
        let data = decode::<Value>(token, &key, &validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => AuthFailure::JwtExpired,
            ErrorKind::InvalidAlgorithm => AuthFailure::JwtAlgorithm,
            _ => AuthFailure::JwtInvalid,
        })?;
        if let Some(expected) = nonce {
            let given = data.claims.get("nonce").and_then(Value::as_str);
            let same = given.is_some_and(|g| {
                use subtle::ConstantTimeEq;
                g.len() == expected.len() && bool::from(g.as_bytes().ct_eq(expected.as_bytes()))
            });
            if !same {
                return Err(AuthFailure::JwtInvalid);
            }
        }
        self.principal(&data.claims)
    }

    /// The provider's authorization and token endpoints, from the discovery document
    /// (`<issuer>/.well-known/openid-configuration`, cached: see the module docs; read as the
    /// key set is: bounded, with a deadline); both must be `https://` URLs (`http://` only on a
    /// loopback host).
    ///
    /// # Errors
    ///
    /// When no document could be fetched yet or it lacks either endpoint.
    pub async fn endpoints(&self) -> Result<Endpoints, FetchError> {
        let (discovery, doc) = self.discovery().await?;
        let endpoint = |name: &str| {
            doc.get(name)
                .and_then(Value::as_str)
                .filter(|u| {
                    url::Url::parse(u).is_ok_and(|u| {
                        u.scheme() == "https"
                            || (u.scheme() == "http"
                                && matches!(
                                    u.host_str(),
                                    Some("localhost" | "127.0.0.1" | "[::1]")
                                ))
                    })
                })
                .map(str::to_string)
                .ok_or_else(|| FetchError::Document {
                    url: discovery.clone(),
                    reason: format!("no usable {name}"),
                })
        };
        Ok(Endpoints {
            authorization: endpoint("authorization_endpoint")?,
            token: endpoint("token_endpoint")?,
        })
    }

    /// The principal of verified claims: subject `oidc:<sub>`, the highest role the role
    /// claim's values map to ([`AuthFailure::NoRole`] without one), the scope claims.
    fn principal(&self, claims: &Value) -> Result<Principal, AuthFailure> {
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or(AuthFailure::JwtInvalid)?;
        let role = strings(claim(claims, &self.cfg.role_claim))
            .filter_map(|v| self.roles.get(v).copied())
            .max()
            .ok_or(AuthFailure::NoRole)?;
        let scope_of = |name: &Option<String>| {
            name.as_ref().map(|n| {
                strings(claim(claims, n))
                    .take(MAX_SCOPE_CLAIM_ENTRIES)
                    .map(str::to_string)
                    .collect::<BTreeSet<String>>()
            })
        };
        Ok(Principal {
            subject: format!(
                "oidc:{}",
                sub.chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_SUBJECT_CHARS)
                    .collect::<String>()
            ),
            role,
            scope: Scope {
                tenants: scope_of(&self.cfg.tenant_claim),
                groups: scope_of(&self.cfg.group_claim),
            },
        })
    }

    /// The key set to verify with: the current one (refreshed in the background when older
    /// than `refresh_interval`), or one fetched now when there is none yet.
    async fn current_keys(self: &Arc<Self>) -> Result<Arc<KeySet>, AuthFailure> {
        let (keys, stale) = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let stale = s
                .fetched_at
                .is_none_or(|t| t.elapsed() >= self.cfg.refresh_interval)
                && s.attempted_at
                    .is_none_or(|t| t.elapsed() >= self.unknown_kid_refresh)
                && !s.refreshing;
            if stale && s.keys.is_some() {
                s.refreshing = true;
            }
            (s.keys.clone(), stale)
        };
        match keys {
            Some(keys) => {
                if stale {
                    let this = self.clone();
                    tokio::spawn(async move {
                        this.refresh().await;
                        this.state
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .refreshing = false;
                    });
                }
                Ok(keys)
            }
            None => {
                let attempted_recently = self
                    .state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .attempted_at
                    .is_some_and(|t| t.elapsed() < self.unknown_kid_refresh);
                if !attempted_recently {
                    self.refresh().await;
                }
                self.state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .keys
                    .clone()
                    .ok_or(AuthFailure::JwksUnavailable)
            }
        }
    }

    /// Fetch the key set again for an unknown `kid`, unless one was fetched or attempted within
    /// [`UNKNOWN_KID_REFRESH`]; the key set after it.
    async fn refresh_for_unknown_kid(&self) -> Option<Arc<KeySet>> {
        let recent = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .attempted_at
            .is_some_and(|t| t.elapsed() < self.unknown_kid_refresh);
        if !recent {
            self.refresh().await;
        }
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys
            .clone()
    }

    /// Fetch the key set once (callers waiting meanwhile share the fetch); on failure keep the
    /// last good set and log why.
    pub async fn refresh(&self) {
        let started = Instant::now();
        let _one = self.fetch.lock().await;
        if self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .attempted_at
            .is_some_and(|t| t >= started)
        {
            return; // another caller fetched while this one waited
        }
        let result = self.fetch_keys().await;
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.attempted_at = Some(Instant::now());
        match result {
            Ok(keys) => {
                tracing::debug!(keys = keys.len(), issuer = %self.cfg.issuer, "identity provider keys fetched");
                s.keys = Some(Arc::new(keys));
                s.fetched_at = s.attempted_at;
            }
            Err(e) => {
                tracing::warn!(error = %e, kept = s.keys.is_some(), "fetching the identity provider's keys failed; keeping the last good key set");
            }
        }
    }

    async fn fetch_keys(&self) -> Result<KeySet, FetchError> {
        let url = match &self.cfg.jwks_url {
            Some(u) => u.clone(),
            None => {
                let (discovery, doc) = self.discovery().await?;
                let jwks = doc
                    .get("jwks_uri")
                    .and_then(Value::as_str)
                    .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
                    .ok_or_else(|| FetchError::Document {
                        url: discovery.clone(),
                        reason: "no http(s) jwks_uri".to_string(),
                    })?;
                jwks.to_string()
            }
        };
        let body = self.get(&url).await?;
        KeySet::parse(&body).map_err(|reason| FetchError::Document { url, reason })
    }

    /// The discovery document's URL and the document: the cached one while younger than
    /// `refresh_interval` (or while a failed attempt is younger than the unknown-`kid` period),
    /// else fetched now (the lock held across the fetch: one at a time); a failed fetch keeps
    /// and returns the last good document, and is logged.
    ///
    /// # Errors
    ///
    /// When no document was ever fetched and this fetch (or a recent attempt) failed.
    async fn discovery(&self) -> Result<(String, Arc<Value>), FetchError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.cfg.issuer.trim_end_matches('/')
        );
        let mut s = self.discovery.lock().await;
        let fresh = s
            .fetched_at
            .is_some_and(|t| t.elapsed() < self.cfg.refresh_interval);
        let tried = s
            .attempted_at
            .is_some_and(|t| t.elapsed() < self.unknown_kid_refresh);
        if fresh || tried {
            return match &s.document {
                Some(doc) => Ok((url, doc.clone())),
                None => Err(FetchError::Document {
                    reason: format!(
                        "not fetched again within {:?} of a failed attempt: {}",
                        self.unknown_kid_refresh,
                        s.last_error.as_deref().unwrap_or("unknown error")
                    ),
                    url,
                }),
            };
        }
        let fetched = match self.get(&url).await {
            Ok(body) => serde_json::from_slice::<Value>(&body)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| FetchError::Document {
                    url: url.clone(),
                    reason: "not a JSON object".to_string(),
                }),
            Err(e) => Err(e),
        };
        s.attempted_at = Some(Instant::now());
        match fetched {
            Ok(doc) => {
                let doc = Arc::new(doc);
                s.document = Some(doc.clone());
                s.fetched_at = s.attempted_at;
                s.last_error = None;
                Ok((url, doc))
            }
            Err(e) => {
                tracing::warn!(error = %e, kept = s.document.is_some(), "fetching the identity provider's discovery document failed; keeping the last good one");
                s.last_error = Some(e.to_string());
                match &s.document {
                    Some(doc) => Ok((url, doc.clone())),
                    None => Err(e),
                }
            }
        }
    }

    /// GET `url`, its body read up to [`MAX_DOCUMENT_BYTES`] within [`FETCH_TIMEOUT`].
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let http = self.http.as_ref().ok_or(FetchError::NoClient)?;
        let request = |source| FetchError::Request {
            url: url.to_string(),
            source,
        };
        let work = async {
            let mut resp = http
                .get(url)
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(request)?;
            if resp.status() != reqwest::StatusCode::OK {
                return Err(FetchError::Status {
                    url: url.to_string(),
                    status: resp.status().as_u16(),
                });
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(request)? {
                if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                    return Err(FetchError::Document {
                        url: url.to_string(),
                        reason: format!("larger than {MAX_DOCUMENT_BYTES} bytes"),
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        tokio::time::timeout(FETCH_TIMEOUT, work)
            .await
            .unwrap_or_else(|_| {
                Err(FetchError::Document {
                    url: url.to_string(),
                    reason: format!("no answer within {FETCH_TIMEOUT:?}"),
                })
            })
    }
}

/// Whether the token's header is a JSON object naming an `alg` (one that did not parse).
fn names_an_algorithm(token: &str) -> bool {
    use base64::Engine;
    let Some(encoded) = token.split('.').next() else {
        return false;
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()
        .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
        .is_some_and(|h| h.get("alg").is_some_and(Value::is_string))
}

/// The value at a dotted claim path (`realm_access.roles`).
fn claim<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(claims, |v, name| v.get(name))
}

/// The strings of a claim: itself when a string, its string items when a list.
fn strings(value: Option<&Value>) -> impl Iterator<Item = &str> {
    let (one, many) = match value {
        Some(Value::String(s)) => (Some(s.as_str()), None),
        Some(Value::Array(a)) => (None, Some(a.iter().filter_map(Value::as_str))),
        _ => (None, None),
    };
    one.into_iter().chain(many.into_iter().flatten())
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    use super::*;

    const RSA_A: &str = include_str!("oidc_test_keys/rsa-a.pem");
    const RSA_B: &str = include_str!("oidc_test_keys/rsa-b.pem");
    const EC_A: &str = include_str!("oidc_test_keys/ec-a.pem");
    const ISSUER: &str = "https://idp.example.com/tenant/v2.0";

    fn cfg() -> OidcConfig {
        toml::from_str(&format!(
            r#"
            issuer = "{ISSUER}"
            audience = "api://postured"
            roles = {{ "Postured.Read" = "reader", "Postured.Assess" = "assessor" }}
            tenant_claim = "postured_tenants"
            "#
        ))
        .unwrap()
    }

    fn jwk(pem: &str, alg: Algorithm, kid: &str) -> Value {
        let key = match alg.family() {
            jsonwebtoken::AlgorithmFamily::Ec => EncodingKey::from_ec_pem(pem.as_bytes()),
            _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
        }
        .unwrap();
        let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&key, alg).unwrap()).unwrap();
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        jwk
    }

    fn verifier() -> Arc<Verifier> {
        let set = json!({"keys": [
            jwk(RSA_A, Algorithm::RS256, "rsa-a"),
            jwk(EC_A, Algorithm::ES256, "ec-a"),
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "XYZ", "kid": "odd"},
        ]});
        let keys = KeySet::parse(set.to_string().as_bytes()).unwrap();
        assert_eq!(keys.len(), 2, "the oct and unknown keys are left out");
        Arc::new(Verifier::with_keys(&cfg(), keys, None))
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn claims() -> Value {
        json!({
            "iss": ISSUER,
            "aud": "api://postured",
            "sub": "alice",
            "exp": now() + 600,
            "nbf": now() - 10,
            "roles": ["Other", "Postured.Read", "Postured.Assess"],
            "postured_tenants": ["contoso"],
        })
    }

    fn sign(claims: &Value, pem: &str, alg: Algorithm, kid: Option<&str>) -> String {
        let key = match alg.family() {
            jsonwebtoken::AlgorithmFamily::Ec => EncodingKey::from_ec_pem(pem.as_bytes()),
            _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
        }
        .unwrap();
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_string);
        encode(&header, claims, &key).unwrap()
    }

    #[tokio::test]
    async fn a_good_token_gives_the_highest_mapped_role_and_its_scope() {
        let v = verifier();
        for (pem, alg, kid) in [
            (RSA_A, Algorithm::RS256, "rsa-a"),
            (EC_A, Algorithm::ES256, "ec-a"),
        ] {
            let p = v
                .verify(&sign(&claims(), pem, alg, Some(kid)))
                .await
                .unwrap();
            assert_eq!(p.subject, "oidc:alice");
            assert_eq!(p.role, Role::Assessor);
            assert_eq!(p.scope.tenants, Some(["contoso".to_string()].into()));
            assert_eq!(p.scope.groups, None);
        }
    }

    /// A sign-in's ID token: audience the client id, nonce the sign-in's.
    #[tokio::test]
    async fn a_sign_in_token_needs_the_client_audience_and_the_nonce() {
        let v = verifier();
        let mut c = claims();
        c["aud"] = json!("dashboard-client");
        c["nonce"] = json!("n-1");
        let t = sign(&c, RSA_A, Algorithm::RS256, Some("rsa-a"));
        let p = v
            .verify_for(&t, "dashboard-client", Some("n-1"))
            .await
            .unwrap();
        assert_eq!(p.role, Role::Assessor);
        for (audience, nonce) in [
            ("dashboard-client", Some("n-2")),
            ("dashboard-client", Some("")),
            ("api://postured", Some("n-1")),
        ] {
            assert_eq!(
                v.verify_for(&t, audience, nonce).await.err(),
                Some(AuthFailure::JwtInvalid),
                "{audience} {nonce:?}"
            );
        }
        c.as_object_mut().unwrap().remove("nonce");
        let t = sign(&c, RSA_A, Algorithm::RS256, Some("rsa-a"));
        assert_eq!(
            v.verify_for(&t, "dashboard-client", Some("n-1"))
                .await
                .err(),
            Some(AuthFailure::JwtInvalid),
            "no nonce"
        );
        // The API's verification is unchanged: its audience, no nonce needed.
        assert!(
            v.verify(&sign(&claims(), RSA_A, Algorithm::RS256, Some("rsa-a")))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn forged_expired_misaddressed_and_confused_tokens_are_refused() {
        let v = verifier();
        let mut cases: Vec<(&str, String, AuthFailure)> = Vec::new();
        // Signed by another key under the right kid.
        cases.push((
            "bad signature",
            sign(&claims(), RSA_B, Algorithm::RS256, Some("rsa-a")),
            AuthFailure::JwtInvalid,
        ));
        let mut c = claims();
        c["iss"] = json!("https://evil.example.com/");
        cases.push((
            "wrong issuer",
            sign(&c, RSA_A, Algorithm::RS256, Some("rsa-a")),
            AuthFailure::JwtInvalid,
        ));
        let mut c = claims();
        c["aud"] = json!("api://someone-else");
        cases.push((
            "wrong audience",
            sign(&c, RSA_A, Algorithm::RS256, Some("rsa-a")),
            AuthFailure::JwtInvalid,
        ));
        let mut c = claims();
        c["exp"] = json!(now() - 3600);
        cases.push((
            "expired",
            sign(&c, RSA_A, Algorithm::RS256, Some("rsa-a")),
            AuthFailure::JwtExpired,
        ));
        let mut c = claims();
        c["nbf"] = json!(now() + 3600);
        cases.push((
            "not yet valid",
            sign(&c, RSA_A, Algorithm::RS256, Some("rsa-a")),
            AuthFailure::JwtInvalid,
        ));
        let mut c = claims();
        c.as_object_mut().unwrap().remove("exp");
        cases.push((
            "no exp",
            sign(&c, RSA_A, Algorithm::RS256, Some("rsa-a")),
            AuthFailure::JwtInvalid,
        ));
        // Algorithm confusion: HS256 with the RSA key's public JWK bytes as the secret.
        let public = jwk(RSA_A, Algorithm::RS256, "rsa-a").to_string();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("rsa-a".into());
        let hs = encode(
            &header,
            &claims(),
            &EncodingKey::from_secret(public.as_bytes()).unwrap(),
        )
        .unwrap();
        cases.push(("HS256 under an RSA kid", hs, AuthFailure::JwtAlgorithm));
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("hmac".into());
        let hs = encode(
            &header,
            &claims(),
            &EncodingKey::from_secret(b"secret").unwrap(),
        )
        .unwrap();
        cases.push(("HS256 under the oct key", hs, AuthFailure::JwtAlgorithm));
        // RS256 header on the EC key's kid.
        cases.push((
            "RS256 under an EC kid",
            sign(&claims(), RSA_A, Algorithm::RS256, Some("ec-a")),
            AuthFailure::JwtAlgorithm,
        ));
        // An allowed-by-the-library but not configured algorithm.
        cases.push((
            "RS384 not allowed",
            sign(&claims(), RSA_A, Algorithm::RS384, Some("rsa-a")),
            AuthFailure::JwtAlgorithm,
        ));
        // alg none: header {"alg":"none"}, the claims, an empty signature.
        let b64 = |v: &Value| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        cases.push((
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "kid": "rsa-a"})),
                b64(&claims())
            ),
            AuthFailure::JwtAlgorithm,
        ));
        cases.push((
            "unknown kid",
            sign(&claims(), RSA_A, Algorithm::RS256, Some("rotated")),
            AuthFailure::JwtUnknownKey,
        ));
        let mut c = claims();
        c["roles"] = json!(["Other"]);
        cases.push((
            "no mapped role",
            sign(&c, RSA_A, Algorithm::RS256, Some("rsa-a")),
            AuthFailure::NoRole,
        ));
        for (name, token, want) in cases {
            assert_eq!(v.verify(&token).await.err(), Some(want), "{name}");
        }
    }

    /// A wiremock identity provider on loopback, its issuer the server's address.
    struct Idp {
        server: wiremock::MockServer,
    }

    impl Idp {
        async fn start() -> Idp {
            crate::http::install_crypto_provider();
            Idp {
                server: wiremock::MockServer::start().await,
            }
        }

        fn uri(&self) -> String {
            self.server.uri()
        }

        /// Answer `GET path` with `response`, `times` requests at most (`None`: no limit); of
        /// two mounts matching a request, the earlier one with requests left answers.
        async fn answer(
            &self,
            path: &str,
            response: wiremock::ResponseTemplate,
            times: Option<u64>,
        ) {
            let mock = wiremock::Mock::given(wiremock::matchers::method("GET"))
                .and(wiremock::matchers::path(path))
                .respond_with(response);
            let mock = match times {
                Some(n) => mock.up_to_n_times(n),
                None => mock,
            };
            mock.mount(&self.server).await;
        }

        /// The discovery document, its key set at `/keys`.
        fn discovery(&self, authorize: &str) -> wiremock::ResponseTemplate {
            wiremock::ResponseTemplate::new(200).set_body_json(json!({
                "issuer": self.uri(),
                "jwks_uri": format!("{}/keys", self.uri()),
                "authorization_endpoint": format!("{}/{authorize}", self.uri()),
                "token_endpoint": format!("{}/token", self.uri()),
            }))
        }

        /// How many discovery documents were requested.
        async fn discovery_fetches(&self) -> usize {
            self.server
                .received_requests()
                .await
                .unwrap()
                .iter()
                .filter(|r| r.url.path() == DISCOVERY)
                .count()
        }

        /// A verifier of this provider fetching over a real HTTP client, refreshing at once
        /// on an unknown `kid`.
        fn verifier(&self) -> Verifier {
            let mut cfg = cfg();
            cfg.issuer = self.uri();
            let mut v = Verifier::new(&cfg, Some(crate::http::http_client().unwrap()));
            v.unknown_kid_refresh = Duration::ZERO;
            v
        }
    }

    const DISCOVERY: &str = "/.well-known/openid-configuration";

    fn key_set(keys: Vec<Value>) -> wiremock::ResponseTemplate {
        wiremock::ResponseTemplate::new(200).set_body_json(json!({"keys": keys}))
    }

    /// Keys come from the discovery document's `jwks_uri`; a rotated key (unknown `kid`) is
    /// fetched at once; a failed fetch keeps the last good key set; a key set past the size
    /// bound is not read.
    #[tokio::test]
    async fn keys_are_discovered_rotated_and_kept_when_a_fetch_fails() {
        use wiremock::ResponseTemplate;
        let idp = Idp::start().await;
        idp.answer(DISCOVERY, idp.discovery("authorize"), None)
            .await;
        let rsa_a = || jwk(RSA_A, Algorithm::RS256, "rsa-a");
        idp.answer("/keys", key_set(vec![rsa_a()]), Some(1)).await;
        let v = Arc::new(idp.verifier());
        let mut c = claims();
        c["iss"] = json!(idp.uri());
        let a = sign(&c, RSA_A, Algorithm::RS256, Some("rsa-a"));
        let b = sign(&c, RSA_B, Algorithm::RS256, Some("rsa-b"));
        assert_eq!(v.verify(&a).await.unwrap().role, Role::Assessor);
        // Rotation: the provider now publishes rsa-b as well.
        let both = key_set(vec![rsa_a(), jwk(RSA_B, Algorithm::RS256, "rsa-b")]);
        idp.answer("/keys", both, Some(1)).await;
        assert_eq!(v.verify(&b).await.unwrap().subject, "oidc:alice");
        // The provider fails: the last good key set stays.
        idp.answer("/keys", ResponseTemplate::new(500), Some(1))
            .await;
        v.refresh().await;
        assert!(v.verify(&a).await.is_ok() && v.verify(&b).await.is_ok());
        // A key set past the bound is refused whole: the last good one stays.
        let huge = "x".repeat(MAX_DOCUMENT_BYTES);
        let huge = key_set(vec![json!({"kty": "RSA", "n": huge, "e": "AQAB"})]);
        idp.answer("/keys", huge, None).await;
        let err = v.fetch_keys().await.unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
        v.refresh().await;
        assert!(v.verify(&b).await.is_ok());
    }

    /// The discovery document is fetched once for the sign-in's endpoints and the key set's
    /// `jwks_uri` alike while younger than `refresh_interval`; past it, fetched again, and a
    /// failed fetch keeps the last good document; with none yet, the failure is the answer.
    #[tokio::test]
    async fn the_discovery_document_is_cached_and_kept_when_a_fetch_fails() {
        use wiremock::ResponseTemplate;
        let idp = Idp::start().await;
        // No document yet and the provider fails: the failure is the answer.
        idp.answer(DISCOVERY, ResponseTemplate::new(503), Some(1))
            .await;
        let mut v = idp.verifier();
        let err = v.endpoints().await.unwrap_err();
        assert!(err.to_string().contains("503"), "{err}");
        // Fetched once, then served from the cache for sign-ins and the key set alike.
        idp.answer(DISCOVERY, idp.discovery("authorize"), Some(1))
            .await;
        let keys = key_set(vec![jwk(RSA_A, Algorithm::RS256, "rsa-a")]);
        idp.answer("/keys", keys, None).await;
        for _ in 0..3 {
            let e = v.endpoints().await.unwrap();
            assert_eq!(e.authorization, format!("{}/authorize", idp.uri()));
        }
        assert_eq!(v.fetch_keys().await.unwrap().len(), 1);
        assert_eq!(
            idp.discovery_fetches().await,
            2,
            "one failed and one good fetch"
        );
        // Past refresh_interval: fetched again, and a changed document is used.
        v.cfg.refresh_interval = Duration::ZERO;
        idp.answer(DISCOVERY, idp.discovery("authorize-2"), Some(1))
            .await;
        let e = v.endpoints().await.unwrap();
        assert_eq!(e.authorization, format!("{}/authorize-2", idp.uri()));
        // The provider fails (an error status, then a body that is not a document): the last
        // good document stays.
        idp.answer(DISCOVERY, ResponseTemplate::new(500), Some(1))
            .await;
        let e = v.endpoints().await.unwrap();
        assert_eq!(e.authorization, format!("{}/authorize-2", idp.uri()));
        let not_a_document = ResponseTemplate::new(200).set_body_string("[]");
        idp.answer(DISCOVERY, not_a_document, None).await;
        let e = v.endpoints().await.unwrap();
        assert_eq!(e.authorization, format!("{}/authorize-2", idp.uri()));
        assert_eq!(idp.discovery_fetches().await, 5);
    }

    #[test]
    fn jwt_shape_and_claim_paths() {
        assert!(Verifier::looks_like_jwt(b"a.b.c"));
        assert!(Verifier::looks_like_jwt(b"a.b."));
        assert!(!Verifier::looks_like_jwt(b"a.b"));
        assert!(!Verifier::looks_like_jwt(b"a.b.c.d"));
        assert!(!Verifier::looks_like_jwt(b"a b.c.d"));
        let c = json!({"realm_access": {"roles": ["x", 1, "y"]}, "role": "z"});
        let got: Vec<&str> = strings(claim(&c, "realm_access.roles")).collect();
        assert_eq!(got, ["x", "y"]);
        let got: Vec<&str> = strings(claim(&c, "role")).collect();
        assert_eq!(got, ["z"]);
        assert_eq!(strings(claim(&c, "nope.x")).count(), 0);
    }
}
