//! Browser sign-in with the OpenID Connect provider of `[server.oidc]` (when it has a
//! `client_id`): the authorization-code flow with PKCE (S256), `state` and `nonce`.
//!
//! - `GET /sign-in/oidc?next=/path`: reads the provider's discovery document
//!   (`authorization_endpoint`, `token_endpoint`, through the API's [`Verifier`]), keeps the
//!   sign-in's state, nonce, PKCE verifier, token endpoint and `next` server-side ([`Pending`]:
//!   at most [`MAX_PENDING`], each for [`PENDING_LIFETIME`], used once), sets a browser-binding
//!   cookie (`postured_oidc`, `HttpOnly`, `SameSite=Lax`, random, only its hash kept) and
//!   answers `303` to the provider's authorization endpoint.
//! - `GET /sign-in/oidc/callback?code=..&state=..` (or `error=..`): the state is taken (a second
//!   use finds nothing), must be younger than [`PENDING_LIFETIME`] and started in this browser
//!   (the cookie); the code is exchanged with the `oauth2` crate (redirects not followed, the
//!   answer read up to [`MAX_DOCUMENT_BYTES`] within [`FETCH_TIMEOUT`]); the configured token
//!   (`sign_in_token`: the ID token, audience the client id and nonce the sign-in's; or the
//!   access token, as an API bearer token) is verified by the API's verifier and mapped to a
//!   role by the same claim mapping; then a session is started exactly as the token sign-in
//!   does. The answer is a short page that moves on to `next` (a `meta` refresh: the session
//!   cookie is `SameSite=Strict`, which a browser withholds from a redirect chain the provider
//!   started).
//!
//! Every refusal renders the sign-in page with a message (the provider's error code at most,
//! never a token, code or secret).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::Query;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};
use maud::html;
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::SignInToken;
use crate::server::auth::{AuthFailure, AuthState};
use crate::server::dashboard::layout::{self, Nav};
use crate::server::dashboard::session::{Sessions, local_target};
use crate::server::dashboard::{html_response, signin};
use crate::server::oidc::{FETCH_TIMEOUT, MAX_DOCUMENT_BYTES, Verifier};

/// How long a started sign-in may take, from the button to the callback (10 minutes).
pub const PENDING_LIFETIME: Duration = Duration::from_secs(600);
/// Most sign-ins pending at once; past it the oldest is dropped.
pub const MAX_PENDING: usize = 1000;
/// Longest `state`, `code` or `error` parameter read from the callback, in characters.
pub const MAX_CALLBACK_PARAM_CHARS: usize = 4096;

/// The extra field of the token response: the ID token.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct IdTokenField {
    /// The ID token, when the provider returned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl ExtraTokenFields for IdTokenField {}

type TokenResponseWithId = StandardTokenResponse<IdTokenField, BasicTokenType>;
type FlowClient = oauth2::Client<
    BasicErrorResponse,
    TokenResponseWithId,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

struct PendingEntry {
    nonce: String,
    verifier: PkceCodeVerifier,
    browser: [u8; 32],
    next: String,
    token_endpoint: String,
    created: Instant,
}

/// The sign-ins started and not yet finished, by `state` (see the module docs).
pub struct Pending {
    table: Mutex<HashMap<String, PendingEntry>>,
    max: usize,
}

/// Why a callback's state was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateRefusal {
    /// No pending sign-in has this state (made up, from another server, or already used).
    Unknown,
    /// The sign-in was started more than [`PENDING_LIFETIME`] ago.
    Expired,
    /// The sign-in was started in another browser (the binding cookie differs or is absent).
    OtherBrowser,
}

impl Pending {
    /// An empty table holding at most `max` sign-ins.
    pub fn with_capacity(max: usize) -> Pending {
        Pending {
            table: Mutex::new(HashMap::new()),
            max: max.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PendingEntry>> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn insert(&self, state: String, entry: PendingEntry) {
        let now = entry.created;
        let mut table = self.lock();
        table.retain(|_, e| now.duration_since(e.created) < PENDING_LIFETIME);
        while table.len() >= self.max {
            let oldest = table
                .iter()
                .min_by_key(|(_, e)| e.created)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => table.remove(&k),
                None => break,
            };
        }
        table.insert(state, entry);
    }

    /// Take (remove) the sign-in of `state` at `now`, checked against the browser's binding.
    fn take_at(
        &self,
        state: &str,
        browser: Option<&str>,
        now: Instant,
    ) -> Result<PendingEntry, StateRefusal> {
        let entry = self.lock().remove(state).ok_or(StateRefusal::Unknown)?;
        if now.duration_since(entry.created) >= PENDING_LIFETIME {
            return Err(StateRefusal::Expired);
        }
        if browser.is_none_or(|b| hash(b) != entry.browser) {
            return Err(StateRefusal::OtherBrowser);
        }
        Ok(entry)
    }

    /// Sign-ins held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn hash(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The browser sign-in of one served router (built from `[server.oidc]`).
pub struct OidcSignIn {
    client_id: String,
    client_secret: Option<SecretString>,
    redirect_url: String,
    audience: String,
    token: SignInToken,
    label: String,
    verifier: Arc<Verifier>,
    http: reqwest::Client,
    pending: Pending,
    secure: bool,
}

impl std::fmt::Debug for OidcSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSignIn")
            .field("client_id", &self.client_id)
            .field("redirect_url", &self.redirect_url)
            .finish_non_exhaustive()
    }
}

impl OidcSignIn {
    /// The browser sign-in of `auth`'s configuration, `None` when `[server.oidc]` has no
    /// `client_id` (or no redirect URL, which validation reports). `secure` marks the
    /// binding cookie `Secure` (as the session cookie).
    pub fn from_auth(auth: &AuthState, secure: bool) -> Option<OidcSignIn> {
        let server = &auth.app.config.server;
        let cfg = server.oidc.as_ref()?;
        let client_id = cfg.client_id.clone()?;
        let redirect_url = server.oidc_redirect_url()?;
        let verifier = auth.oidc.clone()?;
        crate::http::install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent(concat!("postured/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(
                |e| tracing::error!(error = %e, "no HTTP client for the OpenID Connect sign-in"),
            )
            .ok()?;
        let label = cfg.display_name.clone().unwrap_or_else(|| {
            url::Url::parse(&cfg.issuer)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| cfg.issuer.clone())
        });
        Some(OidcSignIn {
            client_id,
            client_secret: auth.app.config.oidc_client_secret.clone(),
            redirect_url,
            audience: cfg.audience.clone(),
            token: cfg.sign_in_token,
            label,
            verifier,
            http,
            pending: Pending::with_capacity(MAX_PENDING),
            secure,
        })
    }

    /// The provider's name on the sign-in button.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The sign-ins pending.
    pub fn pending(&self) -> &Pending {
        &self.pending
    }

    fn cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-postured_oidc"
        } else {
            "postured_oidc"
        }
    }

    fn binding_cookie(&self, value: &str, max_age: Duration) -> HeaderValue {
        let c = Cookie::build((self.cookie_name(), value.to_owned()))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .secure(self.secure)
            .max_age(cookie::time::Duration::seconds(
                i64::try_from(max_age.as_secs()).unwrap_or(0),
            ))
            .build();
        HeaderValue::from_str(&c.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    fn binding_from(&self, headers: &HeaderMap) -> Option<String> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .find(|c| c.name() == self.cookie_name())
            .map(|c| c.value().to_owned())
    }

    fn client(&self, auth_url: &str, token_url: &str) -> Result<FlowClient, String> {
        let mut client = oauth2::Client::new(ClientId::new(self.client_id.clone()))
            .set_auth_uri(AuthUrl::new(auth_url.to_owned()).map_err(|e| e.to_string())?)
            .set_token_uri(TokenUrl::new(token_url.to_owned()).map_err(|e| e.to_string())?)
            .set_redirect_uri(
                RedirectUrl::new(self.redirect_url.clone()).map_err(|e| e.to_string())?,
            );
        if let Some(s) = &self.client_secret {
            client = client.set_client_secret(ClientSecret::new(s.expose_secret().to_owned()));
        }
        Ok(client)
    }

    /// The token request: POST through the client without redirects, the answer bounded.
    async fn send(
        http: reqwest::Client,
        req: oauth2::HttpRequest,
    ) -> Result<oauth2::HttpResponse, std::io::Error> {
        let io = |m: String| std::io::Error::other(m);
        let req = reqwest::Request::try_from(req).map_err(|e| io(format!("bad request: {e}")))?;
        let work = async {
            let mut resp = http
                .execute(req)
                .await
                .map_err(|e| io(format!("token request failed: {}", e.without_url())))?;
            let mut out = oauth2::http::Response::builder().status(resp.status().as_u16());
            for (name, value) in resp.headers() {
                out = out.header(name.as_str(), value.as_bytes());
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| io(format!("token answer failed: {}", e.without_url())))?
            {
                if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                    return Err(io(format!(
                        "token answer larger than {MAX_DOCUMENT_BYTES} bytes"
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            out.body(body).map_err(|e| io(e.to_string()))
        };
        tokio::time::timeout(FETCH_TIMEOUT, work)
            .await
            .unwrap_or_else(|_| Err(io(format!("no token answer within {FETCH_TIMEOUT:?}"))))
    }
}

/// Query of `GET /sign-in/oidc`.
#[derive(Debug, Default, Deserialize)]
pub struct Start {
    /// Where to go after signing in.
    pub next: Option<String>,
}

/// `GET /sign-in/oidc`.
pub async fn start(
    Extension(oidc): Extension<Option<Arc<OidcSignIn>>>,
    Query(q): Query<Start>,
) -> Response {
    let next = local_target(q.next.as_deref().unwrap_or("/")).to_owned();
    let Some(oidc) = oidc else {
        return signin::render(
            &next,
            Some("Signing in with an identity provider is not configured."),
            StatusCode::NOT_FOUND,
            None,
        );
    };
    let refuse =
        |message: &str, status| signin::render(&next, Some(message), status, Some(oidc.label()));
    let endpoints = match oidc.verifier.endpoints().await {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "the identity provider's discovery document could not be read");
            return refuse(
                "The identity provider could not be reached. Try again later, or sign in with an API token.",
                StatusCode::SERVICE_UNAVAILABLE,
            );
        }
    };
    let client = match oidc.client(&endpoints.authorization, &endpoints.token) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "the identity provider's endpoints are not usable");
            return refuse(
                "The identity provider could not be reached. Try again later, or sign in with an API token.",
                StatusCode::SERVICE_UNAVAILABLE,
            );
        }
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let nonce = random_hex();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("openid".into()))
        .add_extra_param("nonce", nonce.clone())
        .set_pkce_challenge(challenge)
        .url();
    let browser = random_hex();
    oidc.pending.insert(
        state.secret().clone(),
        PendingEntry {
            nonce,
            verifier,
            browser: hash(&browser),
            next,
            token_endpoint: endpoints.token,
            created: Instant::now(),
        },
    );
    let mut response = Redirect::to(url.as_str()).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        oidc.binding_cookie(&browser, PENDING_LIFETIME),
    );
    response
}

/// Query of `GET /sign-in/oidc/callback`.
#[derive(Debug, Default, Deserialize)]
pub struct Callback {
    /// The authorization code.
    pub code: Option<String>,
    /// The sign-in's state.
    pub state: Option<String>,
    /// The provider's error code, when it refused.
    pub error: Option<String>,
}

/// `GET /sign-in/oidc/callback`.
pub async fn callback(
    Extension(oidc): Extension<Option<Arc<OidcSignIn>>>,
    Extension(sessions): Extension<Arc<Sessions>>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Response {
    let Some(oidc) = oidc else {
        return signin::render(
            "/",
            Some("Signing in with an identity provider is not configured."),
            StatusCode::NOT_FOUND,
            None,
        );
    };
    let label = oidc.label().to_owned();
    let refuse = |next: &str, message: &str, status| {
        let mut r = signin::render(next, Some(message), status, Some(&label));
        r.headers_mut()
            .insert(header::SET_COOKIE, oidc.binding_cookie("", Duration::ZERO));
        r
    };
    let too_long = |v: &Option<String>| {
        v.as_ref()
            .is_some_and(|s| s.chars().count() > MAX_CALLBACK_PARAM_CHARS)
    };
    if too_long(&q.code) || too_long(&q.state) || too_long(&q.error) {
        return refuse(
            "/",
            "The sign-in answer was malformed. Start again.",
            StatusCode::BAD_REQUEST,
        );
    }
    let entry = match q.state.as_deref().map(|s| {
        oidc.pending
            .take_at(s, oidc.binding_from(&headers).as_deref(), Instant::now())
    }) {
        Some(Ok(e)) => e,
        Some(Err(StateRefusal::Expired)) => {
            return refuse(
                "/",
                "The sign-in took longer than 10 minutes and has expired. Start again.",
                StatusCode::BAD_REQUEST,
            );
        }
        Some(Err(StateRefusal::OtherBrowser)) => {
            return refuse(
                "/",
                "This sign-in was started in another browser. Start again here.",
                StatusCode::BAD_REQUEST,
            );
        }
        None | Some(Err(StateRefusal::Unknown)) => {
            return refuse(
                "/",
                "This sign-in answer does not belong to a sign-in in progress (it is unknown, expired or already used). Start again.",
                StatusCode::BAD_REQUEST,
            );
        }
    };
    let next = entry.next.clone();
    if let Some(error) = &q.error {
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return refuse(
            &next,
            &format!("The identity provider did not sign you in ({code})."),
            StatusCode::UNAUTHORIZED,
        );
    }
    let Some(code) = q.code.filter(|c| !c.is_empty()) else {
        return refuse(
            &next,
            "The sign-in answer carried no code. Start again.",
            StatusCode::BAD_REQUEST,
        );
    };
    // The authorization endpoint is not needed for the exchange; the token endpoint stands in.
    let client = match oidc.client(&entry.token_endpoint, &entry.token_endpoint) {
        Ok(c) => c,
        Err(_) => {
            return refuse(
                &next,
                "The identity provider could not be reached.",
                StatusCode::BAD_GATEWAY,
            );
        }
    };
    let http = oidc.http.clone();
    let send = move |req: oauth2::HttpRequest| OidcSignIn::send(http.clone(), req);
    let answer = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(entry.verifier)
        .request_async(&send)
        .await;
    let tokens = match answer {
        Ok(t) => t,
        Err(RequestTokenError::ServerResponse(e)) => {
            let code = e.error().as_ref().to_owned();
            tracing::info!(error = %code, "the identity provider refused the sign-in code");
            return refuse(
                &next,
                &format!("The identity provider refused the sign-in ({code}). Start again."),
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "exchanging the sign-in code failed");
            return refuse(
                &next,
                "The identity provider could not be reached to finish the sign-in. Try again later.",
                StatusCode::BAD_GATEWAY,
            );
        }
    };
    let verified = match oidc.token {
        SignInToken::IdToken => match tokens.extra_fields().id_token.as_deref() {
            Some(t) => {
                oidc.verifier
                    .verify_for(t, &oidc.client_id, Some(&entry.nonce))
                    .await
            }
            None => Err(AuthFailure::JwtInvalid),
        },
        SignInToken::AccessToken => {
            oidc.verifier
                .verify_for(tokens.access_token().secret(), &oidc.audience, None)
                .await
        }
    };
    let principal = match verified {
        Ok(p) => p,
        Err(AuthFailure::NoRole) => {
            return refuse(
                &next,
                &format!(
                    "You signed in at {label}, but your account has no postured role. Ask an administrator for one."
                ),
                StatusCode::FORBIDDEN,
            );
        }
        Err(e) => {
            tracing::info!(reason = ?e, "the identity provider's sign-in token was not accepted");
            return refuse(
                &next,
                "The identity provider's token was not accepted. Start again.",
                StatusCode::UNAUTHORIZED,
            );
        }
    };
    tracing::info!(subject = %principal.subject, role = principal.role.as_str(), "dashboard sign-in (OpenID Connect)");
    let (id, _) = sessions.create(principal);
    let content = html! {
        div.signin {
            h1 { "Signed in" }
            p { a href=(next) { "Continue" } }
        }
    };
    let mut page = layout::page("Signed in", Nav::None, None, content).into_string();
    // The refresh moves on from this page (same site), where the session cookie is sent.
    let refresh = format!(
        "<meta http-equiv=\"refresh\" content=\"0;url={}\">",
        maud::html! { (next) }.into_string()
    );
    page = page.replacen("<head>", &format!("<head>{refresh}"), 1);
    let mut response = html_response(StatusCode::OK, maud::PreEscaped(page));
    let h = response.headers_mut();
    h.append(header::SET_COOKIE, sessions.set_cookie(&id));
    h.append(header::SET_COOKIE, oidc.binding_cookie("", Duration::ZERO));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(browser: &str, created: Instant) -> PendingEntry {
        PendingEntry {
            nonce: "n".into(),
            verifier: PkceCodeVerifier::new("v".repeat(43)),
            browser: hash(browser),
            next: "/".into(),
            token_endpoint: "http://127.0.0.1/token".into(),
            created,
        }
    }

    #[test]
    fn pending_sign_ins_are_single_use_bound_expiring_and_bounded() {
        let p = Pending::with_capacity(2);
        let t0 = Instant::now();
        p.insert("a".into(), entry("ba", t0));
        assert!(p.take_at("a", Some("ba"), t0).is_ok());
        assert_eq!(
            p.take_at("a", Some("ba"), t0).err(),
            Some(StateRefusal::Unknown),
            "single use"
        );
        p.insert("b".into(), entry("bb", t0));
        assert_eq!(
            p.take_at("b", Some("other"), t0).err(),
            Some(StateRefusal::OtherBrowser)
        );
        p.insert("c".into(), entry("bc", t0));
        assert_eq!(
            p.take_at("c", Some("bc"), t0 + PENDING_LIFETIME).err(),
            Some(StateRefusal::Expired)
        );
        p.insert("d".into(), entry("bd", t0));
        p.insert("e".into(), entry("be", t0 + Duration::from_secs(1)));
        p.insert("f".into(), entry("bf", t0 + Duration::from_secs(2)));
        assert_eq!(p.len(), 2, "bounded: the oldest was dropped");
        assert_eq!(
            p.take_at("d", Some("bd"), t0).err(),
            Some(StateRefusal::Unknown)
        );
        assert_eq!(
            p.take_at("f", None, t0 + Duration::from_secs(2)).err(),
            Some(StateRefusal::OtherBrowser)
        );
    }
}
