//! Entra ID OAuth2 client-credentials token for Microsoft Graph, cached until shortly before
//! it expires.
//!
//! Role: obtain a bearer token from `{authority}/{tenant_id}/oauth2/v2.0/token` (or a full
//! `token_url` override) with scope `https://graph.microsoft.com/.default`, using the `oauth2`
//! crate over a reqwest client of its own ([`token_client`]), and classify failures. It must
//! not log, record or put into an error message the client secret or a token; token requests
//! never go through [`crate::record`].
//!
//! The token request carries the client secret in its form body, so it never follows a
//! redirect (reqwest would re-POST the form to the `Location` of a 307/308, wherever it
//! points): its client is built with `redirect::Policy::none()` and any 3xx answer is
//! [`ErrorKind::Redirect`]. Its body is read under the connector's `max_response_bytes` cap
//! ([`ErrorKind::TooLarge`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, SystemTime};

use oauth2::basic::{
    BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenResponse,
};
use oauth2::{
    AuthType, Client, ClientId, ClientSecret, EndpointNotSet, EndpointSet, ErrorResponse,
    RequestTokenError, Scope, StandardRevocableToken, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::http::{
    HttpSettings, classify_status, is_retryable, origin_label, parse_retry_after, read_capped,
    retry_wait,
};
use crate::{CollectionError, ErrorKind};

/// Scope requested: every application permission granted to the app on Microsoft Graph.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// Endpoint label used in token errors (the tenant id is not part of it).
pub const TOKEN_ENDPOINT: &str = "/oauth2/v2.0/token";

/// A token is refreshed this long before its `expires_in` runs out.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(300);

/// Entra token-endpoint error body: RFC 6749 fields plus Entra's `error_codes` (AADSTS numbers).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct EntraTokenError {
    /// OAuth error, e.g. `invalid_client`, `invalid_scope`.
    pub error: String,
    /// `AADSTSnnnn: ...\r\nTrace ID: ...` (diagnostics only).
    #[serde(default)]
    pub error_description: Option<String>,
    /// AADSTS numbers, e.g. `[7000222]`.
    #[serde(default)]
    pub error_codes: Option<Vec<u64>>,
    /// Link to the error-code page.
    #[serde(default)]
    pub error_uri: Option<String>,
}

impl std::fmt::Display for EntraTokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.error)?;
        if let Some(n) = self.aadsts() {
            write!(f, " AADSTS{n}")?;
        }
        Ok(())
    }
}

impl ErrorResponse for EntraTokenError {}

impl EntraTokenError {
    /// The first AADSTS number, from `error_codes` or else the `AADSTSnnnn:` description prefix.
    pub fn aadsts(&self) -> Option<u64> {
        if let Some(n) = self.error_codes.as_ref().and_then(|c| c.first()) {
            return Some(*n);
        }
        let d = self.error_description.as_deref()?;
        let rest = &d[d.find("AADSTS")? + "AADSTS".len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    }

    /// The classified error (see [`TokenSource::token`] for the mapping).
    fn to_collection_error(
        &self,
        status: Option<u16>,
        secret: &SecretString,
        endpoint: &str,
    ) -> CollectionError {
        let kind = match self.error.as_str() {
            "invalid_client" | "unauthorized_client" => ErrorKind::Unauthorized,
            "temporarily_unavailable" => ErrorKind::Server,
            _ => ErrorKind::Auth,
        };
        let n = self.aadsts();
        let hint = match n {
            Some(7_000_215) => {
                "client secret is invalid (often the secret ID was configured instead of its value)"
            }
            Some(7_000_222) => "client secret has expired; create a new secret for the app",
            Some(7_000_218) => "request lacks a client secret or assertion",
            Some(700_016) | Some(700_011) => "application (client_id) not found in the tenant",
            Some(7_000_112) => "application is disabled",
            Some(90_002) => "tenant not found",
            Some(70_011) => "invalid scope",
            Some(53_003) | Some(530_035) => "blocked by conditional access or security defaults",
            _ => "token endpoint rejected the request",
        };
        let first_line = self
            .error_description
            .as_deref()
            .and_then(|d| d.lines().next())
            .map(|l| scrub(l, secret))
            .unwrap_or_default();
        let message = if first_line.is_empty() {
            hint.to_owned()
        } else {
            format!("{hint}: {first_line}")
        };
        CollectionError {
            kind,
            endpoint: endpoint.to_owned(),
            status,
            code: Some(self.to_string()),
            message,
            retry_after: None,
        }
    }
}

/// Remove the secret from a server-provided text, should it ever be echoed.
fn scrub(text: &str, secret: &SecretString) -> String {
    let s = secret.expose_secret();
    if s.len() >= 4 {
        text.replace(s, "[redacted]")
    } else {
        text.to_owned()
    }
}

/// Transport-level failure inside the oauth2 http-client closure.
#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("token request timed out")]
    Timeout,
    #[error("token endpoint unreachable: {0}")]
    Network(String),
    #[error("token endpoint returned HTTP {status}")]
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("token endpoint answered HTTP {status} redirecting to {target}; not followed")]
    Redirect { status: u16, target: String },
    #[error("token endpoint response larger than {limit} bytes (max_response_bytes); not read")]
    TooLarge { status: u16, limit: u64 },
}

/// The client of token requests: no redirect is ever followed (the form body holds the client
/// secret), the daemon's user agent. Errors ([`ErrorKind::Auth`]): no rustls crypto provider
/// is installed (the daemon installs ring's at start; building without one would panic), or
/// the client cannot be built.
pub fn token_client() -> Result<reqwest::Client, CollectionError> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        return Err(CollectionError::new(
            ErrorKind::Auth,
            TOKEN_ENDPOINT,
            "no rustls crypto provider is installed",
        ));
    }
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("postured/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            CollectionError::new(
                ErrorKind::Auth,
                TOKEN_ENDPOINT,
                format!("building the token client: {}", e.without_url()),
            )
        })
}

type EntraClient = Client<
    EntraTokenError,
    BasicTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// What distinguishes one client-credentials token endpoint from another
/// ([`TokenSource::with_options`]).
#[derive(Debug, Clone)]
pub struct TokenOptions {
    /// Scopes requested (none: the `scope` parameter is omitted).
    pub scopes: Vec<String>,
    /// How the client authenticates: HTTP Basic (`AuthType::BasicAuth`, RFC 6749's
    /// recommendation) or `client_id`/`client_secret` in the form body
    /// (`AuthType::RequestBody`, what Entra expects).
    pub auth_type: AuthType,
    /// Endpoint label of token errors (a path, never the full URL).
    pub endpoint: String,
}

struct Cached {
    token: SecretString,
    refresh_at: Instant,
}

/// Client-credentials token source for one tenant, with a shared cache: concurrent callers
/// wait for a single refresh.
pub struct TokenSource {
    client: EntraClient,
    http: reqwest::Client,
    settings: HttpSettings,
    secret: SecretString,
    scopes: Vec<String>,
    endpoint: String,
    cache: Mutex<Option<Cached>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("token_url", &self.client.token_uri().as_str())
            .field("client_secret", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// Build a token source for `token_url` (already resolved from authority + tenant or the
    /// override), with its own [`token_client`]. Errors ([`ErrorKind::Auth`]): `token_url` is
    /// not a valid URL, or the client cannot be built.
    pub fn new(
        token_url: &str,
        client_id: &str,
        client_secret: SecretString,
        settings: HttpSettings,
    ) -> Result<Self, CollectionError> {
        Self::with_options(
            token_url,
            client_id,
            client_secret,
            settings,
            TokenOptions {
                scopes: vec![GRAPH_SCOPE.to_owned()],
                auth_type: AuthType::RequestBody,
                endpoint: TOKEN_ENDPOINT.to_owned(),
            },
        )
    }

    /// A token source for any OAuth2 (RFC 6749 section 4.4) client-credentials token endpoint:
    /// the scopes requested, how the client authenticates, and the endpoint label of its
    /// errors. The same redirect refusal, byte cap, retries, caching and error classification
    /// as the Graph token source.
    pub fn with_options(
        token_url: &str,
        client_id: &str,
        client_secret: SecretString,
        settings: HttpSettings,
        options: TokenOptions,
    ) -> Result<Self, CollectionError> {
        let TokenOptions {
            scopes,
            auth_type,
            endpoint,
        } = options;
        let http = token_client()?;
        let url = TokenUrl::new(token_url.to_owned()).map_err(|e| {
            CollectionError::new(
                ErrorKind::Auth,
                endpoint.as_str(),
                format!("invalid token URL: {e}"),
            )
        })?;
        let client = Client::new(ClientId::new(client_id.to_owned()))
            .set_client_secret(ClientSecret::new(client_secret.expose_secret().to_owned()))
            .set_auth_type(auth_type)
            .set_token_uri(url);
        Ok(Self {
            client,
            http,
            settings,
            secret: client_secret,
            scopes,
            endpoint,
            cache: Mutex::new(None),
        })
    }

    /// A valid access token, from the cache or freshly requested (retrying 429/5xx/network
    /// failures within the retry budget).
    ///
    /// Errors: `invalid_client`/`unauthorized_client` (bad or expired secret, unknown app) →
    /// [`ErrorKind::Unauthorized`] with code like `invalid_client AADSTS7000222`; other OAuth
    /// errors → [`ErrorKind::Auth`]; 429 → Throttled; 5xx → Server; timeouts → Timeout;
    /// transport → Network. Messages never contain the secret or a token.
    pub async fn token(&self) -> Result<SecretString, CollectionError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let mut attempt = 0;
        let (token, lifetime) = loop {
            match self.request_once().await {
                Ok(t) => break t,
                Err(e) if is_retryable(&e) && attempt < self.settings.max_retries => {
                    let wait = retry_wait(e.retry_after, attempt, &self.settings);
                    tracing::info!(kind = %e.kind, status = e.status, attempt, wait_ms = wait.as_millis() as u64, "token request retry");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => {
                    tracing::warn!(kind = %e.kind, status = e.status, code = e.code.as_deref(), "token request failed");
                    return Err(e);
                }
            }
        };
        let margin = EXPIRY_MARGIN.min(lifetime / 2);
        *cache = Some(Cached {
            token: token.clone(),
            refresh_at: Instant::now() + lifetime.saturating_sub(margin),
        });
        tracing::debug!(lifetime_s = lifetime.as_secs(), "token acquired");
        Ok(token)
    }

    /// One token request through oauth2, sent with our reqwest client.
    async fn request_once(&self) -> Result<(SecretString, Duration), CollectionError> {
        // Owned clones: the future must be `Send` for any lifetime (async-trait callers).
        let last_status = Arc::new(AtomicU16::new(0));
        let timeout = self.settings.request_timeout;
        let limit = self.settings.max_response_bytes;
        let (client, cell) = (self.http.clone(), last_status.clone());
        let send = move |req: oauth2::HttpRequest| {
            let (http, status_cell) = (client.clone(), cell.clone());
            async move {
                let mut req = reqwest::Request::try_from(req)
                    .map_err(|e| SendError::Network(format!("bad request: {e}")))?;
                let requested = req.url().clone();
                *req.timeout_mut() = Some(timeout);
                let mut resp = http.execute(req).await.map_err(|e| {
                    if e.is_timeout() {
                        SendError::Timeout
                    } else {
                        SendError::Network(e.without_url().to_string())
                    }
                })?;
                let status = resp.status();
                status_cell.store(status.as_u16(), Ordering::Relaxed);
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, SystemTime::now()));
                if status.is_redirection() {
                    let target = resp
                        .headers()
                        .get(reqwest::header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|l| requested.join(l).ok())
                        .map(|t| origin_label(&t))
                        .unwrap_or_else(|| "no usable Location".to_owned());
                    return Err(SendError::Redirect {
                        status: status.as_u16(),
                        target,
                    });
                }
                if status.as_u16() == 429 || status.is_server_error() {
                    return Err(SendError::Status {
                        status: status.as_u16(),
                        retry_after,
                    });
                }
                let mut builder = http::Response::builder().status(status);
                for (k, v) in resp.headers() {
                    builder = builder.header(k, v);
                }
                let body = read_capped(&mut resp, limit)
                    .await
                    .map_err(|e| {
                        if e.is_timeout() {
                            SendError::Timeout
                        } else {
                            SendError::Network(e.without_url().to_string())
                        }
                    })?
                    .ok_or(SendError::TooLarge {
                        status: status.as_u16(),
                        limit,
                    })?;
                builder
                    .body(body.to_vec())
                    .map_err(|e| SendError::Network(format!("bad response: {e}")))
            }
        };
        let result = self
            .client
            .exchange_client_credentials()
            .add_scopes(self.scopes.iter().cloned().map(Scope::new))
            .request_async(&send)
            .await;
        let status = match last_status.load(Ordering::Relaxed) {
            0 => None,
            s => Some(s),
        };
        match result {
            Ok(resp) => {
                let lifetime = resp.expires_in().unwrap_or(Duration::from_secs(600));
                Ok((
                    SecretString::from(resp.access_token().secret().to_owned()),
                    lifetime,
                ))
            }
            Err(e) => Err(self.classify(e, status)),
        }
    }

    fn classify(
        &self,
        e: RequestTokenError<SendError, EntraTokenError>,
        status: Option<u16>,
    ) -> CollectionError {
        let by_status = |fallback: ErrorKind| match status {
            Some(s) if !(200..300).contains(&s) => match classify_status(s) {
                ErrorKind::Other => fallback,
                k => k,
            },
            _ => fallback,
        };
        match e {
            RequestTokenError::ServerResponse(err) => {
                err.to_collection_error(status, &self.secret, &self.endpoint)
            }
            RequestTokenError::Request(SendError::Status {
                status,
                retry_after,
            }) => CollectionError {
                kind: classify_status(status),
                endpoint: self.endpoint.clone(),
                status: Some(status),
                code: None,
                message: format!("token endpoint returned HTTP {status}"),
                retry_after,
            },
            RequestTokenError::Request(e @ SendError::Redirect { status, .. }) => CollectionError {
                status: Some(status),
                ..CollectionError::new(ErrorKind::Redirect, self.endpoint.as_str(), e.to_string())
            },
            RequestTokenError::Request(e @ SendError::TooLarge { status, .. }) => CollectionError {
                status: Some(status),
                ..CollectionError::new(ErrorKind::TooLarge, self.endpoint.as_str(), e.to_string())
            },
            RequestTokenError::Request(SendError::Timeout) => CollectionError::new(
                ErrorKind::Timeout,
                self.endpoint.as_str(),
                "token request timed out",
            ),
            RequestTokenError::Request(e @ SendError::Network(_)) => {
                CollectionError::new(ErrorKind::Network, self.endpoint.as_str(), e.to_string())
            }
            RequestTokenError::Parse(err, _) => {
                let ok = matches!(status, Some(s) if (200..300).contains(&s));
                let kind = if ok {
                    ErrorKind::Malformed
                } else {
                    by_status(ErrorKind::Auth)
                };
                CollectionError {
                    kind,
                    status,
                    ..CollectionError::new(
                        kind,
                        self.endpoint.as_str(),
                        format!("token endpoint response not understood: {}", err.inner()),
                    )
                }
            }
            RequestTokenError::Other(msg) => {
                let kind = by_status(ErrorKind::Auth);
                CollectionError {
                    status,
                    ..CollectionError::new(kind, self.endpoint.as_str(), scrub(&msg, &self.secret))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> SecretString {
        SecretString::from("s3cr3t-value".to_owned())
    }

    #[test]
    fn invalid_client_7000215_from_realdata() {
        let body = include_str!(
            "../../fixtures/entra-oauth/token-error-invalid_client-7000215-supportdoc.json"
        );
        let e: EntraTokenError = serde_json::from_str(body).unwrap();
        assert_eq!(e.aadsts(), Some(7_000_215));
        let c = e.to_collection_error(Some(401), &secret(), TOKEN_ENDPOINT);
        assert_eq!(c.kind, ErrorKind::Unauthorized);
        assert_eq!(c.code.as_deref(), Some("invalid_client AADSTS7000215"));
        assert!(c.message.contains("secret is invalid"), "{}", c.message);
        assert!(!c.message.contains("Trace ID"));
    }

    #[test]
    fn invalid_scope_is_auth() {
        let body = include_str!(
            "../../fixtures/entra-oauth/token-error-invalid_scope-clientcreds-doc.json"
        );
        let e: EntraTokenError = serde_json::from_str(body).unwrap();
        let c = e.to_collection_error(Some(400), &secret(), TOKEN_ENDPOINT);
        assert_eq!(c.kind, ErrorKind::Auth);
        assert_eq!(c.code.as_deref(), Some("invalid_scope AADSTS70011"));
    }

    #[test]
    fn aadsts_from_description_when_codes_missing() {
        let e = EntraTokenError {
            error: "invalid_client".into(),
            error_description: Some("AADSTS7000222: The provided client secret keys are expired. s3cr3t-value\r\nTrace ID: x".into()),
            error_codes: None,
            error_uri: None,
        };
        assert_eq!(e.aadsts(), Some(7_000_222));
        let c = e.to_collection_error(Some(401), &secret(), TOKEN_ENDPOINT);
        assert!(c.message.contains("expired"));
        assert!(!c.message.contains("s3cr3t-value"));
    }
}
