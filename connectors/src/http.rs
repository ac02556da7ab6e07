//! HTTP transport shared by connectors: per-request timeout, retries with `Retry-After` or
//! capped exponential backoff with full jitter ([`crate::backoff`]), OData paging, error classification, and the
//! switch between live, record and replay ([`crate::record::Mode`]).
//!
//! Role: turn one logical GET into either a typed value or a classified [`CollectionError`].
//! It knows nothing about a source's endpoints or models, obtains no tokens itself (callers
//! pass a bearer token) and never logs or returns a token or a header value.
//!
//! Hostile sources: every body is read as a stream with a running byte count and abandoned
//! past [`HttpSettings::max_response_bytes`] ([`ErrorKind::TooLarge`]); a redirect to another
//! origin is never followed and its response never used ([`ErrorKind::Redirect`]), whatever
//! redirect policy the shared client has ([`redirect_policy`] is the one the daemon installs).

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{LOCATION, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::backoff::{Backoff, Jitter};
use crate::record::{self, Mode};
use crate::{CollectionError, ErrorKind};

/// Default of [`HttpSettings::max_response_bytes`]: 8 MiB, several times the largest Graph page
/// postured reads (a page of 1,000 user registration records is about 1 MB).
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;

/// Most bytes of an error (non-2xx) body read for its error envelope; the rest is discarded
/// (the status alone classifies the error).
pub const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// A recording file may be this many times [`HttpSettings::max_response_bytes`] (recordings
/// are pretty-printed, hence larger than the body on the wire).
pub const RECORDING_SIZE_FACTOR: u64 = 4;

/// Most redirects followed within one origin by [`redirect_policy`].
pub const MAX_REDIRECTS: usize = 5;

/// The redirect policy for source requests: follow a redirect only when it stays on the
/// request's origin (scheme, host and port), at most [`MAX_REDIRECTS`] times; otherwise stop
/// and hand the 3xx to the caller, which [`HttpClient`] classifies as [`ErrorKind::Redirect`].
/// The daemon builds its shared client with it, so a cross-origin `Location` is never
/// requested. Token requests use no redirects at all (see `msgraph::auth`).
pub fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let previous = attempt.previous();
        let same_origin = previous
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if same_origin && previous.len() <= MAX_REDIRECTS {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// Retry, timeout and paging limits of an [`HttpClient`].
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Deadline of one HTTP attempt (connect + headers + body).
    pub request_timeout: Duration,
    /// Retries after the first attempt for 429, 500/502/503/504, timeouts and network errors.
    pub max_retries: u32,
    /// Upper bound of any single wait between attempts (also caps `Retry-After`).
    pub max_retry_wait: Duration,
    /// First backoff step when the source sent no `Retry-After` (doubles per attempt).
    pub base_backoff: Duration,
    /// Most pages followed through `@odata.nextLink` before giving up with an error.
    pub max_pages: usize,
    /// Largest response body read, per response (each page of a collection, the token
    /// response); a larger one is abandoned at this count and is [`ErrorKind::TooLarge`].
    /// Default [`DEFAULT_MAX_RESPONSE_BYTES`] (8 MiB). A replayed recording file may be
    /// [`RECORDING_SIZE_FACTOR`] times this.
    pub max_response_bytes: u64,
}

impl HttpSettings {
    /// The retry backoff: `base_backoff` doubling per retry, capped at `max_retry_wait`, with
    /// full jitter. Full rather than equal jitter because a request retry is cheap and many
    /// connectors throttled by the same tenant at once should spread as widely as possible.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            initial: self.base_backoff,
            cap: self.max_retry_wait,
            jitter: Jitter::Full,
        }
    }

    /// Largest recording file replay reads: `max_response_bytes` times
    /// [`RECORDING_SIZE_FACTOR`].
    pub fn max_recording_bytes(&self) -> u64 {
        self.max_response_bytes
            .saturating_mul(RECORDING_SIZE_FACTOR)
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            max_retries: 3,
            max_retry_wait: Duration::from_secs(60),
            base_backoff: Duration::from_millis(500),
            max_pages: 200,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// An OData collection page: `{"value": [...], "@odata.nextLink"?: "..."}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ODataPage<T> {
    /// Items of this page.
    pub value: Vec<T>,
    /// Full URL of the next page, when there is one (followed verbatim).
    #[serde(rename = "@odata.nextLink", default)]
    pub next_link: Option<String>,
}

/// The Graph error envelope `{"error": {"code", "message", "innerError"?}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct GraphErrorEnvelope {
    /// The error object.
    pub error: GraphError,
}

/// Graph `error` object. Classify on `code`, never on `message`.
#[derive(Debug, Clone, Deserialize)]
pub struct GraphError {
    /// Machine-readable code, e.g. `Authorization_RequestDenied`, `TooManyRequests`.
    #[serde(default)]
    pub code: Option<String>,
    /// Human-readable message (diagnostics only).
    #[serde(default)]
    pub message: Option<String>,
    /// Nested detail; may itself carry a `code` and further `innerError`s.
    #[serde(rename = "innerError", default)]
    pub inner_error: Option<Box<GraphError>>,
}

impl GraphError {
    /// Codes of the nested inner errors, outermost first (the top-level code excluded).
    pub fn inner_codes(&self) -> Vec<&str> {
        let mut out = Vec::new();
        let mut cur = self.inner_error.as_deref();
        while let Some(e) = cur {
            if let Some(c) = e.code.as_deref() {
                out.push(c);
            }
            cur = e.inner_error.as_deref();
        }
        out
    }
}

/// A raw response: status, parsed `Retry-After`, the headers and the body bytes.
#[derive(Debug, Clone)]
struct RawResponse {
    status: u16,
    retry_after: Option<Duration>,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

/// Returns the headers of one attempt at a URL (e.g. an AWS SigV4 signature); see
/// [`HttpClient::get_signed`]. Errors abort the request without retry.
pub type SignFn<'a> =
    dyn Fn(&Url) -> Result<Vec<(String, String)>, CollectionError> + Send + Sync + 'a;

/// Builds the classified error of a non-2xx response from `(endpoint, status, Retry-After,
/// body prefix)`; see [`HttpClient::get_signed`].
pub type ErrorFn = dyn Fn(&str, u16, Option<Duration>, &[u8]) -> CollectionError + Send + Sync;

/// The credentials sent with a source request. Values are marked sensitive (never logged by
/// the HTTP stack) and never appear in an error.
#[derive(Clone, Copy, Default)]
pub enum Credentials<'a> {
    /// No credentials.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(&'a SecretString),
    /// `Authorization: Basic base64(<username>:<password>)`.
    Basic {
        /// User name (not secret).
        username: &'a str,
        /// Password.
        password: &'a SecretString,
    },
    /// Headers computed for each attempt, e.g. an AWS SigV4 signature (see
    /// [`HttpClient::get_signed`]).
    Signed(&'a SignFn<'a>),
    /// A custom header carrying the secret as its whole value, e.g. `X-Api-Key`.
    Header {
        /// Header name.
        name: &'a reqwest::header::HeaderName,
        /// Header value.
        value: &'a SecretString,
    },
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credentials::None => "None",
            Credentials::Bearer(_) => "Bearer([redacted])",
            Credentials::Basic { .. } => "Basic([redacted])",
            Credentials::Header { .. } => "Header([redacted])",
            Credentials::Signed(_) => "Signed([redacted])",
        })
    }
}

/// One 2xx response: its body and headers (e.g. `Link`, for paging).
#[derive(Debug, Clone)]
pub struct Page {
    /// The body, read under [`HttpSettings::max_response_bytes`].
    pub body: Vec<u8>,
    /// The response headers (none in replay).
    pub headers: reqwest::header::HeaderMap,
}

/// GET client over a shared [`reqwest::Client`], honouring the [`Mode`].
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    mode: Mode,
    settings: HttpSettings,
}

impl HttpClient {
    /// Wrap a shared client. In [`Mode::Replay`] the client is never used.
    pub fn new(client: reqwest::Client, mode: Mode, settings: HttpSettings) -> Self {
        Self {
            client,
            mode,
            settings,
        }
    }

    /// The record/replay mode.
    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// The limits in force.
    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    /// GET `url` and parse the body once, straight into `T`.
    ///
    /// `endpoint` is the path label used in errors and logs (never a full URL). Errors are
    /// classified as described on [`classify_status`]; an undecodable body is
    /// [`ErrorKind::Malformed`].
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        url: &Url,
        bearer: Option<&SecretString>,
    ) -> Result<T, CollectionError> {
        let body = self.get_bytes(endpoint, url, bearer).await?;
        parse_body(endpoint, &body)
    }

    /// GET an OData collection, appending each page's `value` to the result. With
    /// `follow_next`, `@odata.nextLink` is followed verbatim until absent (at most
    /// [`HttpSettings::max_pages`] pages; a nextLink to another origin is refused so the bearer
    /// token never leaves the source's host). Without it only the first page is read.
    pub async fn get_collection<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        url: &Url,
        bearer: Option<&SecretString>,
        follow_next: bool,
    ) -> Result<Vec<T>, CollectionError> {
        let mut items = Vec::new();
        let mut next = Some(url.clone());
        let mut pages = 0usize;
        while let Some(page_url) = next.take() {
            if pages >= self.settings.max_pages {
                return Err(CollectionError::new(
                    ErrorKind::Other,
                    endpoint,
                    format!("more than {} pages; giving up", self.settings.max_pages),
                ));
            }
            pages += 1;
            let page: ODataPage<T> = self.get_json(endpoint, &page_url, bearer).await?;
            items.extend(page.value);
            if !follow_next {
                break;
            }
            if let Some(link) = page.next_link {
                next = Some(next_page_url(endpoint, url, &link)?);
            }
        }
        tracing::debug!(endpoint, pages, items = items.len(), "collection read");
        Ok(items)
    }

    /// GET with retries; returns the 2xx body.
    async fn get_bytes(
        &self,
        endpoint: &str,
        url: &Url,
        bearer: Option<&SecretString>,
    ) -> Result<Vec<u8>, CollectionError> {
        let credentials = bearer.map_or(Credentials::None, Credentials::Bearer);
        Ok(self.get_page(endpoint, url, credentials).await?.body)
    }

    /// GET `url` with `credentials`, with the same retries, byte cap, redirect checks and
    /// record/replay as every other request; returns the 2xx body and the response headers
    /// (for callers with their own paging scheme, e.g. the `Link` header).
    pub async fn get_page(
        &self,
        endpoint: &str,
        url: &Url,
        credentials: Credentials<'_>,
    ) -> Result<Page, CollectionError> {
        self.get_page_with(endpoint, url, credentials, &graph_error)
            .await
    }

    /// GET `url` with the request headers `sign` returns (called before every attempt, e.g. a
    /// fresh AWS SigV4 signature; not called in replay) and retries; returns the 2xx body
    /// bytes unparsed. `error` builds the classified error of a non-2xx response from
    /// `(endpoint, status, Retry-After, first bytes of the body)`: a source whose throttling
    /// is not a 429 (AWS: HTTP 400 `Throttling`) returns [`ErrorKind::Throttled`], which is
    /// retried like a 429. Replay serves a recording whose body is a JSON string as that
    /// string's bytes (an XML body is recorded so).
    pub async fn get_signed(
        &self,
        endpoint: &str,
        url: &Url,
        sign: &SignFn<'_>,
        error: &ErrorFn,
    ) -> Result<Vec<u8>, CollectionError> {
        Ok(self
            .get_page_with(endpoint, url, Credentials::Signed(sign), error)
            .await?
            .body)
    }

    /// The one request loop: retries with `Retry-After`, byte cap, redirect checks,
    /// record/replay; `error` classifies a non-2xx answer.
    async fn get_page_with(
        &self,
        endpoint: &str,
        url: &Url,
        credentials: Credentials<'_>,
        error: &ErrorFn,
    ) -> Result<Page, CollectionError> {
        let mut attempt: u32 = 0;
        loop {
            let err = match self.attempt(endpoint, url, credentials).await {
                Ok(resp) if (200..300).contains(&resp.status) => {
                    tracing::debug!(endpoint, status = resp.status, attempt, "response");
                    if let Mode::Record(recorder) = &self.mode {
                        match recorder.write("GET", url, resp.status, &resp.body) {
                            Ok(path) => {
                                tracing::info!(endpoint, file = %path.display(), "recorded")
                            }
                            Err(e) => tracing::warn!(endpoint, error = %e, "recording failed"),
                        }
                    }
                    return Ok(Page {
                        body: resp.body,
                        headers: resp.headers,
                    });
                }
                Ok(resp) => error(endpoint, resp.status, resp.retry_after, &resp.body),
                Err(e) => e,
            };
            let replay = matches!(self.mode, Mode::Replay(_));
            if replay || !is_retryable(&err) || attempt >= self.settings.max_retries {
                tracing::warn!(endpoint, kind = %err.kind, status = err.status, code = err.code.as_deref(), attempt, "request failed");
                return Err(err);
            }
            let wait = retry_wait(err.retry_after, attempt, &self.settings);
            tracing::info!(endpoint, kind = %err.kind, status = err.status, attempt, wait_ms = wait.as_millis() as u64, "retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// One attempt (live or replay), no retries.
    async fn attempt(
        &self,
        endpoint: &str,
        url: &Url,
        credentials: Credentials<'_>,
    ) -> Result<RawResponse, CollectionError> {
        if let Mode::Replay(dir) = &self.mode {
            let rec = record::read(
                dir,
                "GET",
                url,
                endpoint,
                self.settings.max_recording_bytes(),
            )?;
            let body = match rec.body {
                serde_json::Value::String(text) => text.into_bytes(),
                other => serde_json::to_vec(&other).map_err(|e| {
                    CollectionError::new(ErrorKind::Malformed, endpoint, format!("recording: {e}"))
                })?,
            };
            return Ok(RawResponse {
                status: rec.status,
                retry_after: None,
                headers: reqwest::header::HeaderMap::new(),
                body,
            });
        }
        let mut req = self
            .client
            .get(url.clone())
            .timeout(self.settings.request_timeout)
            .header(reqwest::header::ACCEPT, "application/json");
        match credentials {
            Credentials::None => {}
            Credentials::Bearer(token) => req = req.bearer_auth(token.expose_secret()),
            Credentials::Signed(sign) => {
                for (name, value) in sign(url)? {
                    req = req.header(name, value);
                }
            }
            Credentials::Basic { username, password } => {
                req = req.basic_auth(username, Some(password.expose_secret()));
            }
            Credentials::Header { name, value } => {
                let mut v = reqwest::header::HeaderValue::from_str(value.expose_secret()).map_err(
                    |_| {
                        CollectionError::new(
                            ErrorKind::Auth,
                            endpoint,
                            format!("the {name} header value is not a valid header value"),
                        )
                    },
                )?;
                v.set_sensitive(true);
                req = req.header(name.clone(), v);
            }
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| transport_error(endpoint, &e))?;
        let status = resp.status().as_u16();
        check_redirect(endpoint, url, &resp)?;
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let body = if (200..300).contains(&status) {
            let limit = self.settings.max_response_bytes;
            read_capped(&mut resp, limit)
                .await
                .map_err(|e| transport_error(endpoint, &e))?
                .ok_or_else(|| too_large(endpoint, status, limit))?
        } else {
            read_prefix(
                &mut resp,
                ERROR_BODY_LIMIT.min(self.settings.max_response_bytes),
            )
            .await
        };
        Ok(RawResponse {
            status,
            retry_after,
            headers: resp.headers().clone(),
            body,
        })
    }
}

/// Read a whole body, counting bytes as they arrive: `Ok(None)` as soon as it is known to be
/// larger than `limit` (an announced `Content-Length` over it, or the running count passing
/// it); the rest of the body is then never read. Memory stays below `limit` plus one chunk.
pub async fn read_capped(
    resp: &mut reqwest::Response,
    limit: u64,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Ok(None);
    }
    let hint = resp.content_length().unwrap_or(0).min(limit).min(1 << 20);
    let mut body = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
    while let Some(chunk) = resp.chunk().await? {
        if (body.len() as u64).saturating_add(chunk.len() as u64) > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// Read at most `limit` bytes of a body (an error response's envelope), dropping the rest and
/// any transport error: what was read is all the caller gets.
pub async fn read_prefix(resp: &mut reqwest::Response, limit: u64) -> Vec<u8> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }
    body
}

/// The [`ErrorKind::TooLarge`] error of a body over `limit` bytes.
pub fn too_large(endpoint: &str, status: u16, limit: u64) -> CollectionError {
    CollectionError {
        status: Some(status),
        ..CollectionError::new(
            ErrorKind::TooLarge,
            endpoint,
            format!("response body larger than {limit} bytes (max_response_bytes); not read"),
        )
    }
}

/// Refuse a response that is not from `requested`'s origin (a client that followed a
/// redirect elsewhere: the data is not trusted) and any 3xx (a redirect the client did not
/// follow: to another origin, or past [`MAX_REDIRECTS`]), as [`ErrorKind::Redirect`]. Only
/// the origin of the redirect target is named, never its path or query.
fn check_redirect(
    endpoint: &str,
    requested: &Url,
    resp: &reqwest::Response,
) -> Result<(), CollectionError> {
    let status = resp.status().as_u16();
    let err = |message: String| CollectionError {
        status: Some(status),
        ..CollectionError::new(ErrorKind::Redirect, endpoint, message)
    };
    if resp.url().origin() != requested.origin() {
        return Err(err(format!(
            "redirected to another origin ({}); the response is not used",
            origin_label(resp.url())
        )));
    }
    if !(300..400).contains(&status) {
        return Ok(());
    }
    let target = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| requested.join(l).ok());
    Err(err(match target {
        Some(t) if t.origin() != requested.origin() => format!(
            "HTTP {status} redirect to another origin ({}); not followed",
            origin_label(&t)
        ),
        Some(_) => format!(
            "HTTP {status} redirect not followed (more than {MAX_REDIRECTS} within the origin, or redirects disabled)"
        ),
        None => format!("HTTP {status} redirect without a usable Location"),
    }))
}

/// `scheme://host:port` of a URL, at most 100 characters (never its path or query).
pub fn origin_label(url: &Url) -> String {
    url.origin()
        .ascii_serialization()
        .chars()
        .take(100)
        .collect()
}

/// Parse a body once into `T`; failure is [`ErrorKind::Malformed`] with the serde position.
pub fn parse_body<T: DeserializeOwned>(endpoint: &str, body: &[u8]) -> Result<T, CollectionError> {
    serde_json::from_slice(body).map_err(|e| {
        CollectionError::new(
            ErrorKind::Malformed,
            endpoint,
            format!("response body does not match the documented shape: {e}"),
        )
    })
}

/// Resolve and check a nextLink: it must parse and share the first page's origin.
fn next_page_url(endpoint: &str, first: &Url, link: &str) -> Result<Url, CollectionError> {
    let next = first.join(link).map_err(|e| {
        CollectionError::new(
            ErrorKind::Malformed,
            endpoint,
            format!("bad @odata.nextLink: {e}"),
        )
    })?;
    if next.origin() != first.origin() {
        return Err(CollectionError::new(
            ErrorKind::Malformed,
            endpoint,
            "@odata.nextLink points to a different origin; not followed",
        ));
    }
    Ok(next)
}

/// Map an HTTP status to an [`ErrorKind`]: 429 → Throttled, 401 → Unauthorized,
/// 403 → Forbidden, 404 → NotFound, 5xx → Server, anything else → Other.
pub fn classify_status(status: u16) -> ErrorKind {
    match status {
        429 => ErrorKind::Throttled,
        401 => ErrorKind::Unauthorized,
        403 => ErrorKind::Forbidden,
        404 => ErrorKind::NotFound,
        500..=599 => ErrorKind::Server,
        _ => ErrorKind::Other,
    }
}

fn graph_error(
    endpoint: &str,
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> CollectionError {
    error_from_response(
        endpoint,
        &RawResponse {
            status,
            retry_after,
            headers: Default::default(),
            body: body.to_vec(),
        },
    )
}

/// Build the error for a non-2xx response, reading the Graph error envelope for `code`.
/// A 503 carrying `Retry-After` counts as throttling.
fn error_from_response(endpoint: &str, resp: &RawResponse) -> CollectionError {
    let mut kind = classify_status(resp.status);
    if resp.status == 503 && resp.retry_after.is_some() {
        kind = ErrorKind::Throttled;
    }
    let graph = serde_json::from_slice::<GraphErrorEnvelope>(&resp.body).ok();
    let code = graph.as_ref().and_then(|g| g.error.code.clone());
    let reason = StatusCode::from_u16(resp.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("unexpected status");
    let mut message = format!("HTTP {} {reason}", resp.status);
    if let Some(g) = &graph {
        if let Some(c) = &g.error.code {
            message.push_str(&format!(" ({c}"));
            for inner in g.error.inner_codes() {
                message.push_str(&format!(" / {inner}"));
            }
            message.push(')');
        }
        if let Some(m) = &g.error.message {
            message.push_str(": ");
            message.extend(m.chars().take(300));
        }
    }
    CollectionError {
        kind,
        endpoint: endpoint.to_owned(),
        status: Some(resp.status),
        code,
        message,
        retry_after: resp.retry_after,
    }
}

/// Classify a reqwest transport error (timeout or network); the URL is not included.
fn transport_error(endpoint: &str, e: &reqwest::Error) -> CollectionError {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Network
    };
    let msg = format!("{}", DisplayChain(e));
    CollectionError::new(kind, endpoint, msg)
}

/// Display an error with its sources, `a: b: c`, without the request URL.
struct DisplayChain<'a>(&'a reqwest::Error);

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        let mut cur: Option<&dyn std::error::Error> = Some(self.0);
        while let Some(e) = cur {
            let text = e.to_string();
            // reqwest's top-level message contains the URL ("error sending request for url (...)")
            let text = match text.find(" for url (") {
                Some(i) => text[..i].to_owned(),
                None => text,
            };
            if !first {
                f.write_str(": ")?;
            }
            f.write_str(&text)?;
            first = false;
            cur = e.source();
        }
        Ok(())
    }
}

/// Whether a failed attempt may be retried: 429, 500, 502, 503, 504, any error classified
/// [`ErrorKind::Throttled`], timeouts and network errors.
pub fn is_retryable(err: &CollectionError) -> bool {
    if err.kind == ErrorKind::Throttled {
        // A source-specific throttling answer (AWS: HTTP 400 `Throttling`).
        return true;
    }
    match err.status {
        Some(s) => matches!(s, 429 | 500 | 502 | 503 | 504),
        None => matches!(err.kind, ErrorKind::Timeout | ErrorKind::Network),
    }
}

/// Wait before retry number `attempt + 1` (`attempt` counts the retries already made): the
/// server's `Retry-After` when given, else the settings' [`HttpSettings::backoff`] with a
/// fresh random draw; always capped by `max_retry_wait`.
///
/// Unlike the scheduler, a `Retry-After` here replaces the backoff instead of flooring it: the
/// server named the moment it will serve this very request again, and the caller is waiting
/// inside one poll whose deadline is short.
pub fn retry_wait(retry_after: Option<Duration>, attempt: u32, s: &HttpSettings) -> Duration {
    match retry_after {
        Some(ra) => ra.min(s.max_retry_wait),
        None => s
            .backoff()
            .delay(attempt.saturating_add(1), None, &mut rand::rng()),
    }
}

/// Parse a `Retry-After` value: delta-seconds, possibly fractional (`2.128`), or an HTTP-date
/// (a date in the past gives zero). Unparseable or negative values give `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(
            parse_retry_after("2.128", now),
            Some(Duration::from_millis(2128))
        );
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let cap = Duration::from_secs(2);
        let s = HttpSettings {
            base_backoff: Duration::from_millis(100),
            max_retry_wait: cap,
            ..HttpSettings::default()
        };
        for attempt in 0..40 {
            let d = retry_wait(None, attempt, &s);
            assert!(d <= cap);
            assert!(d <= Duration::from_millis(100) * 2u32.saturating_pow(attempt.min(20)));
        }
        let s = HttpSettings {
            max_retry_wait: Duration::from_secs(5),
            ..HttpSettings::default()
        };
        assert_eq!(
            retry_wait(Some(Duration::from_secs(100)), 0, &s),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn graph_error_envelope_and_classification() {
        let body = include_bytes!("../fixtures/msgraph/error-429-throttled.json");
        let resp = RawResponse {
            status: 429,
            retry_after: Some(Duration::from_millis(2128)),
            headers: Default::default(),
            body: body.to_vec(),
        };
        let e = error_from_response("/x", &resp);
        assert_eq!(e.kind, ErrorKind::Throttled);
        assert_eq!(e.code.as_deref(), Some("TooManyRequests"));
        assert_eq!(e.retry_after, Some(Duration::from_millis(2128)));
        assert!(e.message.contains("TooManyRequests / 429"), "{}", e.message);

        let generic = include_bytes!("../fixtures/msgraph/error-generic.json");
        let e = error_from_response(
            "/x",
            &RawResponse {
                status: 403,
                retry_after: None,
                headers: Default::default(),
                body: generic.to_vec(),
            },
        );
        assert_eq!(e.kind, ErrorKind::Forbidden);
        assert_eq!(e.code.as_deref(), Some("invalidRange"));

        let e = error_from_response(
            "/x",
            &RawResponse {
                status: 502,
                retry_after: None,
                headers: Default::default(),
                body: b"<html>bad gateway</html>".to_vec(),
            },
        );
        assert_eq!(e.kind, ErrorKind::Server);
        assert_eq!(e.code, None);
        assert!(is_retryable(&e));
        assert_eq!(classify_status(404), ErrorKind::NotFound);
        assert_eq!(classify_status(401), ErrorKind::Unauthorized);
        assert_eq!(classify_status(418), ErrorKind::Other);
    }

    #[test]
    fn next_link_must_keep_origin() {
        let first = Url::parse("https://graph.microsoft.com/v1.0/users").unwrap();
        assert!(
            next_page_url(
                "/u",
                &first,
                "https://graph.microsoft.com/v1.0/users?$skiptoken=a"
            )
            .is_ok()
        );
        let e = next_page_url("/u", &first, "https://evil.example/v1.0/users").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Malformed);
    }
}
