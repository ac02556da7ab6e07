//! Entra ID access token for Microsoft Graph, cached until shortly before it expires.
//!
//! Role: obtain a bearer token for the connector's [`Credential`] and classify failures. With
//! a client secret, a certificate or a federated token file: an OAuth2 client-credentials
//! request to `{authority}/{tenant_id}/oauth2/v2.0/token` (or a full `token_url` override)
//! with scope `https://graph.microsoft.com/.default`, built by the `oauth2` crate, carrying
//! `client_secret` or a `client_assertion` (RFC 7523). With a managed identity: a `GET` of
//! the instance metadata endpoint with `Metadata: true`. Both go over one reqwest client of
//! their own ([`token_client`]) through one send function and one classification. It must not
//! log, record or put into an error message a secret, a key, an assertion or a token; token
//! requests never go through [`crate::record`].
//!
//! The token request carries the credential in its form body, so it never follows a redirect
//! (reqwest would re-POST the form to the `Location` of a 307/308, wherever it points): its
//! client is built with `redirect::Policy::none()` and any 3xx answer is
//! [`ErrorKind::Redirect`]. Its body is read under the connector's `max_response_bytes` cap
//! ([`ErrorKind::TooLarge`]).

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use super::credential::{
    APP_SERVICE_API_VERSION, ASSERTION_TYPE, Credential, GRAPH_RESOURCE, IMDS_API_VERSION,
    ManagedIdentity, read_federated_token,
};

use oauth2::basic::{
    BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenResponse,
};
use oauth2::{
    AuthType, Client, ClientId, ClientSecret, EndpointNotSet, EndpointSet, RequestTokenError,
    Scope, StandardRevocableToken, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::http::{
    HttpSettings, classify_status, is_retryable, origin_label, parse_retry_after, read_capped,
    retry_wait,
};
use crate::{CollectionError, ErrorKind};

pub use super::token_error::EntraTokenError;
use super::token_error::scrub;

/// Scope requested: every application permission granted to the app on Microsoft Graph.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// Endpoint label used in token errors (the tenant id is not part of it).
pub const TOKEN_ENDPOINT: &str = "/oauth2/v2.0/token";

/// A token is refreshed this long before its `expires_in` runs out.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(300);

/// Transport-level failure of a token request.
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

/// Why one token request failed, before classification ([`TokenSource::classify`]): the
/// OAuth2 path's `RequestTokenError` and the managed-identity path both come down to it.
enum Failure {
    /// No usable response (transport, 429/5xx, redirect, too large).
    Send(SendError),
    /// An RFC 6749 error body (`error`, `error_description`); IMDS answers the same shape.
    Server(EntraTokenError),
    /// A body that is not the documented shape.
    Parse(String),
    /// Anything else (e.g. a client assertion that could not be signed).
    Other(String),
}

impl From<RequestTokenError<SendError, EntraTokenError>> for Failure {
    fn from(e: RequestTokenError<SendError, EntraTokenError>) -> Self {
        match e {
            RequestTokenError::ServerResponse(err) => Failure::Server(err),
            RequestTokenError::Request(e) => Failure::Send(e),
            RequestTokenError::Parse(err, _) => Failure::Parse(err.inner().to_string()),
            RequestTokenError::Other(msg) => Failure::Other(msg),
        }
    }
}

/// The client of token requests: no redirect is ever followed (the form body holds the client
/// secret or assertion, a managed identity request its header), the daemon's user agent, and no
/// idle connection kept (a token is asked for about once an hour per tenant, and a pooled
/// connection would belong to the async runtime that opened it). Built once per process and
/// shared by every token source (a clone is a reference count): building a client loads the
/// platform's root certificates, about 2 ms, which at 2,000 tenants was most of the daemon's
/// start-up (docs/performance.md, target 6). Errors ([`ErrorKind::Auth`]): no rustls crypto
/// provider is installed (the daemon installs ring's at start; building without one would
/// panic), or the client cannot be built.
pub fn token_client() -> Result<reqwest::Client, CollectionError> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client.clone());
    }
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        return Err(CollectionError::new(
            ErrorKind::Auth,
            TOKEN_ENDPOINT,
            "no rustls crypto provider is installed",
        ));
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("postured/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| {
            CollectionError::new(
                ErrorKind::Auth,
                TOKEN_ENDPOINT,
                format!("building the token client: {}", e.without_url()),
            )
        })?;
    // Two first callers at once both build one; either is kept.
    Ok(CLIENT.get_or_init(|| client).clone())
}

/// Send one token request: the attempt deadline, no redirect (a 3xx is
/// [`SendError::Redirect`]), 429/5xx as [`SendError::Status`] (retried by the caller), any
/// other answer read under `limit` bytes. The status is stored in `status_cell` for the
/// classification of a body that does not parse.
async fn send(
    http: reqwest::Client,
    mut req: reqwest::Request,
    timeout: Duration,
    limit: u64,
    status_cell: Arc<AtomicU16>,
) -> Result<http::Response<Vec<u8>>, SendError> {
    let requested = req.url().clone();
    *req.timeout_mut() = Some(timeout);
    let transport = |e: reqwest::Error| {
        if e.is_timeout() {
            SendError::Timeout
        } else {
            SendError::Network(e.without_url().to_string())
        }
    };
    let mut resp = http.execute(req).await.map_err(transport)?;
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
        .map_err(transport)?
        .ok_or(SendError::TooLarge {
            status: status.as_u16(),
            limit,
        })?;
    builder
        .body(body)
        .map_err(|e| SendError::Network(format!("bad response: {e}")))
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

/// The managed identity token response: IMDS gives `expires_in` (a string of seconds), App
/// Service only `expires_on` (a string of epoch seconds); numbers are accepted too.
#[derive(Deserialize)]
struct ImdsToken {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    expires_on: Option<serde_json::Value>,
}

impl ImdsToken {
    /// The token's lifetime from `now` (600 s when the response gives neither field).
    fn lifetime(&self, now: SystemTime) -> Duration {
        let seconds = |v: &Option<serde_json::Value>| match v {
            Some(serde_json::Value::String(s)) => s.parse::<u64>().ok(),
            Some(v) => v.as_u64(),
            None => None,
        };
        let epoch = now
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let secs = seconds(&self.expires_in)
            .or_else(|| seconds(&self.expires_on).map(|at| at.saturating_sub(epoch)))
            .unwrap_or(600);
        Duration::from_secs(secs)
    }
}

/// Token source for one tenant, with a shared cache: concurrent callers wait for a single
/// refresh.
pub struct TokenSource {
    client: EntraClient,
    http: reqwest::Client,
    settings: HttpSettings,
    credential: Credential,
    client_id: String,
    token_url: String,
    scopes: Vec<String>,
    endpoint: String,
    cache: Mutex<Option<Cached>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("token_url", &self.token_url)
            .field("credential", &self.credential)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// Build the Graph token source for `credential`: `token_url` (already resolved from
    /// authority + tenant or the override; for a managed identity, its endpoint) with its own
    /// [`token_client`]. Errors ([`ErrorKind::Auth`]): `token_url` is not a valid URL, or the
    /// client cannot be built.
    pub fn new(
        token_url: &str,
        client_id: &str,
        credential: Credential,
        settings: HttpSettings,
    ) -> Result<Self, CollectionError> {
        Self::build(
            token_url,
            client_id,
            credential,
            settings,
            TokenOptions {
                scopes: vec![GRAPH_SCOPE.to_owned()],
                auth_type: AuthType::RequestBody,
                endpoint: TOKEN_ENDPOINT.to_owned(),
            },
        )
    }

    /// A token source for any OAuth2 (RFC 6749 section 4.4) client-credentials token endpoint
    /// with a client secret: the scopes requested, how the client authenticates, and the
    /// endpoint label of its errors. The same redirect refusal, byte cap, retries, caching and
    /// error classification as the Graph token source.
    pub fn with_options(
        token_url: &str,
        client_id: &str,
        client_secret: SecretString,
        settings: HttpSettings,
        options: TokenOptions,
    ) -> Result<Self, CollectionError> {
        Self::build(
            token_url,
            client_id,
            Credential::Secret(client_secret),
            settings,
            options,
        )
    }

    fn build(
        token_url: &str,
        client_id: &str,
        credential: Credential,
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
        let mut client = Client::new(ClientId::new(client_id.to_owned()))
            .set_auth_type(auth_type)
            .set_token_uri(url);
        if let Credential::Secret(secret) = &credential {
            client = client.set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()));
        }
        Ok(Self {
            client,
            http,
            settings,
            credential,
            client_id: client_id.to_owned(),
            token_url: token_url.to_owned(),
            scopes,
            endpoint,
            cache: Mutex::new(None),
        })
    }

    /// A valid access token, from the cache or freshly requested (retrying 429/5xx/network
    /// failures within the retry budget).
    ///
    /// Errors: `invalid_client`/`unauthorized_client` (bad or expired secret, unknown app,
    /// assertion refused) → [`ErrorKind::Unauthorized`] with code like
    /// `invalid_client AADSTS7000222`; other OAuth errors (and IMDS errors, same shape) →
    /// [`ErrorKind::Auth`]; a certificate that cannot sign or an unreadable federated token
    /// file → [`ErrorKind::Auth`]; 429 → Throttled; 5xx → Server; timeouts → Timeout;
    /// transport → Network. Messages never contain a secret, an assertion or a token.
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

    /// One token request for the credential, classified.
    async fn request_once(&self) -> Result<(SecretString, Duration), CollectionError> {
        let status_cell = Arc::new(AtomicU16::new(0));
        let (result, carried) = match &self.credential {
            Credential::ManagedIdentity(mi) => (self.imds_once(mi, &status_cell).await, None),
            Credential::Secret(secret) => (
                self.form_once(None, &status_cell).await,
                Some(secret.clone()),
            ),
            Credential::Certificate(key) => match key.assertion(&self.client_id, &self.token_url) {
                Ok(a) => (self.form_once(Some(&a), &status_cell).await, Some(a)),
                Err(m) => (Err(Failure::Other(m)), None),
            },
            Credential::FederatedToken(path) => match read_federated_token(path) {
                Ok(a) => (self.form_once(Some(&a), &status_cell).await, Some(a)),
                Err(m) => (Err(Failure::Other(m)), None),
            },
        };
        let status = match status_cell.load(Ordering::Relaxed) {
            0 => None,
            s => Some(s),
        };
        result.map_err(|e| self.classify(e, status, carried.as_ref()))
    }

    /// The OAuth2 client-credentials request through the `oauth2` crate, with the client
    /// secret set on the client or `assertion` as `client_assertion`.
    async fn form_once(
        &self,
        assertion: Option<&SecretString>,
        status_cell: &Arc<AtomicU16>,
    ) -> Result<(SecretString, Duration), Failure> {
        // Owned clones: the future must be `Send` for any lifetime (async-trait callers).
        let (timeout, limit) = (
            self.settings.request_timeout,
            self.settings.max_response_bytes,
        );
        let (client, cell) = (self.http.clone(), status_cell.clone());
        let send_one = move |req: oauth2::HttpRequest| {
            let (http, cell) = (client.clone(), cell.clone());
            async move {
                let req = reqwest::Request::try_from(req)
                    .map_err(|e| SendError::Network(format!("bad request: {e}")))?;
                send(http, req, timeout, limit, cell).await
            }
        };
        let mut request = self
            .client
            .exchange_client_credentials()
            .add_scopes(self.scopes.iter().cloned().map(Scope::new));
        if let Some(a) = assertion {
            request = request
                .add_extra_param("client_assertion_type", ASSERTION_TYPE)
                .add_extra_param("client_assertion", a.expose_secret().to_owned());
        }
        let resp = request.request_async(&send_one).await?;
        let lifetime = resp.expires_in().unwrap_or(Duration::from_secs(600));
        Ok((
            SecretString::from(resp.access_token().secret().to_owned()),
            lifetime,
        ))
    }

    /// The managed-identity request: `GET {endpoint}?api-version=2018-02-01&resource=
    /// https://graph.microsoft.com[&client_id=...]` with `Metadata: true` (IMDS), or with
    /// `api-version=2019-08-01` and `X-IDENTITY-HEADER` (App Service, Functions).
    async fn imds_once(
        &self,
        mi: &ManagedIdentity,
        status_cell: &Arc<AtomicU16>,
    ) -> Result<(SecretString, Duration), Failure> {
        let (api_version, name, value) = match &mi.identity_header {
            None => (IMDS_API_VERSION, "Metadata", "true"),
            Some(h) => (
                APP_SERVICE_API_VERSION,
                "X-IDENTITY-HEADER",
                h.expose_secret(),
            ),
        };
        let mut url = url::Url::parse(&mi.endpoint)
            .map_err(|e| Failure::Other(format!("invalid managed identity endpoint: {e}")))?;
        url.query_pairs_mut()
            .append_pair("api-version", api_version)
            .append_pair("resource", GRAPH_RESOURCE);
        if let Some(id) = &mi.client_id {
            url.query_pairs_mut().append_pair("client_id", id);
        }
        let mut value = reqwest::header::HeaderValue::from_str(value)
            .map_err(|_| Failure::Other(format!("the {name} header value is not valid")))?;
        value.set_sensitive(true);
        let req = self
            .http
            .get(url)
            .header(name, value)
            .build()
            .map_err(|e| Failure::Other(format!("bad request: {}", e.without_url())))?;
        let resp = send(
            self.http.clone(),
            req,
            self.settings.request_timeout,
            self.settings.max_response_bytes,
            status_cell.clone(),
        )
        .await
        .map_err(Failure::Send)?;
        let body = resp.body();
        if !resp.status().is_success() {
            return Err(match serde_json::from_slice::<EntraTokenError>(body) {
                Ok(err) => Failure::Server(err),
                Err(_) => Failure::Other(format!(
                    "managed identity endpoint returned HTTP {}",
                    resp.status().as_u16()
                )),
            });
        }
        let token: ImdsToken =
            serde_json::from_slice(body).map_err(|e| Failure::Parse(e.to_string()))?;
        let lifetime = token.lifetime(SystemTime::now());
        Ok((SecretString::from(token.access_token), lifetime))
    }

    /// The classified error of one failed token request; `carried` (the secret or assertion
    /// the request sent) is scrubbed from any server-provided text.
    fn classify(
        &self,
        e: Failure,
        status: Option<u16>,
        carried: Option<&SecretString>,
    ) -> CollectionError {
        let by_status = |fallback: ErrorKind| match status {
            Some(s) if !(200..300).contains(&s) => match classify_status(s) {
                ErrorKind::Other => fallback,
                k => k,
            },
            _ => fallback,
        };
        let endpoint = self.endpoint.as_str();
        match e {
            Failure::Server(err) => err.to_collection_error(status, carried, endpoint),
            Failure::Send(SendError::Status {
                status,
                retry_after,
            }) => CollectionError {
                kind: classify_status(status),
                endpoint: endpoint.to_owned(),
                status: Some(status),
                code: None,
                message: format!("token endpoint returned HTTP {status}"),
                retry_after,
            },
            Failure::Send(e @ SendError::Redirect { status, .. }) => CollectionError {
                status: Some(status),
                ..CollectionError::new(ErrorKind::Redirect, endpoint, e.to_string())
            },
            Failure::Send(e @ SendError::TooLarge { status, .. }) => CollectionError {
                status: Some(status),
                ..CollectionError::new(ErrorKind::TooLarge, endpoint, e.to_string())
            },
            Failure::Send(SendError::Timeout) => {
                CollectionError::new(ErrorKind::Timeout, endpoint, "token request timed out")
            }
            Failure::Send(e @ SendError::Network(_)) => {
                CollectionError::new(ErrorKind::Network, endpoint, e.to_string())
            }
            Failure::Parse(err) => {
                let ok = matches!(status, Some(s) if (200..300).contains(&s));
                let kind = if ok {
                    ErrorKind::Malformed
                } else {
                    by_status(ErrorKind::Auth)
                };
                CollectionError {
                    status,
                    ..CollectionError::new(
                        kind,
                        endpoint,
                        format!("token endpoint response not understood: {err}"),
                    )
                }
            }
            Failure::Other(msg) => {
                let kind = by_status(ErrorKind::Auth);
                CollectionError {
                    status,
                    ..CollectionError::new(kind, endpoint, scrub(&msg, carried))
                }
            }
        }
    }
}
