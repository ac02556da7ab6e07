//! `kind = "http_json"`: any JSON REST endpoint described in configuration, its signals
//! declared as JMESPath expressions (`docs/connectors/http_json.md`).
//!
//! Role: GET the configured URL through [`HttpClient`] (retries with `Retry-After`, the
//! `max_response_bytes` cap, same-origin redirects only) with the configured credentials,
//! follow the configured paging scheme up to `max_pages`, select each page's items with the
//! `items` expression and concatenate them, then evaluate every declared signal's expression
//! over the result and check its type. Keys: `http_json.<name>.<signal>`.
//!
//! Failures: a collection failure (HTTP, auth, paging, a body that is not JSON, an `items`
//! result that is not an array, more than `max_pages` pages) is one gap over the whole
//! namespace `http_json.<name>.`; a signal whose expression fails at run time or gives a value
//! of another type than declared is a `malformed` gap of its own (`http_json.<name>.<signal>.`),
//! the other signals are kept. Never a failed control.
//!
//! Must not: send credentials to another origin (a next link or `Link` URL to another origin
//! is refused), log or return a secret, or read the clock.

pub mod settings;

use std::sync::Arc;

use async_trait::async_trait;
use jmespath::{Rcvar, Variable};
use oauth2::AuthType;
use secrecy::SecretString;
use url::Url;

use crate::http::{Credentials, HttpClient, HttpSettings};
use crate::msgraph::auth::{TokenOptions, TokenSource};
use crate::record::Mode;
use crate::{
    CollectionError, Connector, ErrorKind, PollContext, SignalValue, Snapshot, SnapshotBuilder,
};
pub use settings::{Auth, ClientAuth, HTTP_JSON, HttpJsonSettings, Jmes, Paging, SignalType};

/// The kind name and first segment of every signal key.
pub const KIND: &str = "http_json";

/// A configured HTTP-JSON source of one tenant.
#[derive(Debug)]
pub struct HttpJsonConnector {
    settings: HttpJsonSettings,
    http: HttpClient,
    token: Option<TokenSource>,
    endpoint: String,
}

impl HttpJsonConnector {
    /// Build from validated settings. Errors: the OAuth2 token client cannot be built (no
    /// rustls provider installed, a bad token URL).
    pub fn new(
        settings: HttpJsonSettings,
        client: reqwest::Client,
        mode: Mode,
    ) -> Result<Self, CollectionError> {
        let http_settings = HttpSettings {
            request_timeout: settings.request_timeout,
            max_retries: settings.max_retries,
            max_retry_wait: settings.max_retry_wait,
            max_pages: settings.max_pages,
            max_response_bytes: settings.max_response_bytes,
            ..HttpSettings::default()
        };
        let token = match &settings.auth {
            Auth::OAuth2 {
                token_url,
                client_id,
                client_secret,
                scopes,
                client_auth,
            } => {
                let endpoint = Url::parse(token_url)
                    .map(|u| u.path().to_owned())
                    .unwrap_or_else(|_| "token".to_owned());
                Some(TokenSource::with_options(
                    token_url,
                    client_id,
                    client_secret.clone().unwrap_or_default(),
                    http_settings.clone(),
                    TokenOptions {
                        scopes: scopes.clone(),
                        auth_type: match client_auth {
                            ClientAuth::Basic => AuthType::BasicAuth,
                            ClientAuth::Body => AuthType::RequestBody,
                        },
                        endpoint,
                    },
                )?)
            }
            _ => None,
        };
        Ok(Self {
            endpoint: settings.url.path().to_owned(),
            http: HttpClient::new(client, mode, http_settings),
            token,
            settings,
        })
    }

    /// The settings it was built from.
    pub fn settings(&self) -> &HttpJsonSettings {
        &self.settings
    }

    /// Read every page and return what the signals see: the concatenated items (with `items`)
    /// or the one response body.
    pub async fn collect(&self) -> Result<Rcvar, CollectionError> {
        let bearer: Option<SecretString> = match &self.token {
            Some(t) => Some(t.token().await?),
            None => None,
        };
        let credentials = match (&self.settings.auth, &bearer) {
            (_, Some(token)) => Credentials::Bearer(token),
            (Auth::Bearer { token: Some(t) }, _) => Credentials::Bearer(t),
            (
                Auth::Basic {
                    username,
                    password: Some(p),
                },
                _,
            ) => Credentials::Basic {
                username,
                password: p,
            },
            (
                Auth::Header {
                    name,
                    value: Some(v),
                },
                _,
            ) => Credentials::Header { name, value: v },
            _ => Credentials::None,
        };
        let ep = self.endpoint.as_str();
        let first = self.settings.url.clone();
        let Some(items_expr) = &self.settings.items else {
            let page = self.http.get_page(ep, &first, credentials).await?;
            return parse_json(ep, &page.body);
        };
        let mut items: Vec<Rcvar> = Vec::new();
        let mut next = Some(self.page_url(&first, None));
        let mut pages = 0usize;
        let mut last_cursor: Option<String> = None;
        while let Some(url) = next.take() {
            if pages >= self.settings.max_pages {
                return Err(CollectionError::new(
                    ErrorKind::Other,
                    ep,
                    format!(
                        "more than {} pages (max_pages); giving up rather than judging a part",
                        self.settings.max_pages
                    ),
                ));
            }
            pages += 1;
            let page = self.http.get_page(ep, &url, credentials).await?;
            let body = parse_json(ep, &page.body)?;
            let selected = search(ep, items_expr, &body)?;
            let count = match &*selected {
                Variable::Array(a) => {
                    items.extend(a.iter().cloned());
                    a.len()
                }
                other => {
                    return Err(CollectionError::new(
                        ErrorKind::Malformed,
                        ep,
                        format!(
                            "items expression {:?} gave {} on page {pages}, not an array",
                            items_expr.text,
                            other.get_type()
                        ),
                    ));
                }
            };
            next = match &self.settings.paging {
                Paging::None => None,
                Paging::NextLink { path } => match text_of(ep, path, &body)? {
                    Some(link) => Some(same_origin(ep, &first, &url, &link)?),
                    None => None,
                },
                Paging::LinkHeader => match link_next(ep, &page.headers)? {
                    Some(link) => Some(same_origin(ep, &first, &url, &link)?),
                    None => None,
                },
                Paging::Offset { size, .. } => {
                    if count == 0 || size.is_some_and(|s| (count as u64) < s) {
                        None
                    } else {
                        Some(self.page_url(&first, Some(&items.len().to_string())))
                    }
                }
                Paging::Cursor { path, .. } => match text_of(ep, path, &body)? {
                    Some(c) if last_cursor.as_deref() == Some(c.as_str()) => {
                        return Err(CollectionError::new(
                            ErrorKind::Malformed,
                            ep,
                            "the cursor did not change between pages; not followed",
                        ));
                    }
                    Some(c) => {
                        let u = self.page_url(&first, Some(&c));
                        last_cursor = Some(c);
                        Some(u)
                    }
                    None => None,
                },
            };
        }
        tracing::debug!(endpoint = ep, pages, items = items.len(), "http_json read");
        Ok(Arc::new(Variable::Array(items)))
    }

    /// The URL of a page: the configured URL with the paging parameters set (`value` is the
    /// offset or the cursor; `None` for the first page).
    fn page_url(&self, first: &Url, value: Option<&str>) -> Url {
        let mut set: Vec<(&str, String)> = Vec::new();
        match &self.settings.paging {
            Paging::Offset {
                param,
                size_param,
                size,
            } => {
                set.push((param, value.unwrap_or("0").to_owned()));
                if let (Some(p), Some(s)) = (size_param, size) {
                    set.push((p, s.to_string()));
                }
            }
            Paging::Cursor { param, .. } => {
                if let Some(v) = value {
                    set.push((param, v.to_owned()));
                }
            }
            _ => {}
        }
        if set.is_empty() {
            return first.clone();
        }
        let kept: Vec<(String, String)> = first
            .query_pairs()
            .filter(|(k, _)| !set.iter().any(|(p, _)| k == p))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut url = first.clone();
        {
            let mut q = url.query_pairs_mut();
            q.clear();
            q.extend_pairs(kept);
            q.extend_pairs(set);
        }
        url
    }

    /// Evaluate the declared signals over `doc` into `b`.
    fn signals(&self, doc: &Rcvar, b: &mut SnapshotBuilder) {
        let prefix = self.settings.prefix();
        for s in &self.settings.signals {
            let key = format!("{prefix}{}", s.name);
            let value = s
                .expr
                .expr
                .search(doc)
                .map_err(|e| format!("expression {:?} failed: {}", s.expr.text, e.reason))
                .and_then(|v| {
                    typed(&v, s.ty).ok_or_else(|| {
                        format!(
                            "expression {:?} gave {} ({}), not the declared {}",
                            s.expr.text,
                            v.get_type(),
                            preview(&v),
                            s.ty.as_str()
                        )
                    })
                });
            match value {
                Ok(v) => b.push(key, v),
                Err(message) => {
                    let e =
                        CollectionError::new(ErrorKind::Malformed, self.endpoint.as_str(), message);
                    b.gap(&format!("{key}."), &e);
                }
            }
        }
    }
}

/// The JSON value as the declared type; `None` on any mismatch (no coercion).
fn typed(v: &Variable, ty: SignalType) -> Option<SignalValue> {
    match (ty, v) {
        (SignalType::Number, Variable::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(SignalValue::Number),
        (SignalType::Bool, Variable::Bool(b)) => Some(SignalValue::Bool(*b)),
        (SignalType::Text, Variable::String(s)) => Some(SignalValue::Text(s.clone())),
        _ => None,
    }
}

/// At most 60 characters of a value's JSON, for a gap's reason.
fn preview(v: &Variable) -> String {
    let text = v.to_string();
    if text.chars().count() > 60 {
        format!("{}...", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}

fn parse_json(ep: &str, body: &[u8]) -> Result<Rcvar, CollectionError> {
    let value: serde_json::Value = crate::http::parse_body(ep, body)?;
    Variable::try_from(value)
        .map(Arc::new)
        .map_err(|e| CollectionError::new(ErrorKind::Malformed, ep, format!("response body: {e}")))
}

fn search(ep: &str, expr: &Jmes, doc: &Rcvar) -> Result<Rcvar, CollectionError> {
    expr.expr.search(doc).map_err(|e| {
        CollectionError::new(
            ErrorKind::Malformed,
            ep,
            format!("expression {:?} failed: {}", expr.text, e.reason),
        )
    })
}

/// A paging expression's string (a number is taken as its text); null or `""` is `None`.
fn text_of(ep: &str, expr: &Jmes, doc: &Rcvar) -> Result<Option<String>, CollectionError> {
    let v = search(ep, expr, doc)?;
    match &*v {
        Variable::Null => Ok(None),
        Variable::String(s) if s.is_empty() => Ok(None),
        Variable::String(s) => Ok(Some(s.clone())),
        Variable::Number(n) => Ok(Some(n.to_string())),
        other => Err(CollectionError::new(
            ErrorKind::Malformed,
            ep,
            format!(
                "paging expression {:?} gave {}, not a string",
                expr.text,
                other.get_type()
            ),
        )),
    }
}

/// The `rel="next"` URL of the `Link` header (RFC 8288), if any.
fn link_next(
    ep: &str,
    headers: &reqwest::header::HeaderMap,
) -> Result<Option<String>, CollectionError> {
    let mut next = None;
    for value in headers.get_all(reqwest::header::LINK) {
        let text = value.to_str().map_err(|_| {
            CollectionError::new(ErrorKind::Malformed, ep, "Link header is not text")
        })?;
        // Links without a `rel` are allowed (and ignored).
        let links = parse_link_header::parse(text).map_err(|e| {
            CollectionError::new(ErrorKind::Malformed, ep, format!("Link header: {e}"))
        })?;
        if let Some(l) = links.get(&Some("next".to_owned())) {
            next = Some(l.raw_uri.clone());
        }
    }
    Ok(next)
}

/// Resolve a next-page link against the current page; it must keep the first page's origin
/// (the credentials never go elsewhere).
fn same_origin(ep: &str, first: &Url, current: &Url, link: &str) -> Result<Url, CollectionError> {
    let next = current.join(link).map_err(|e| {
        CollectionError::new(ErrorKind::Malformed, ep, format!("bad next-page link: {e}"))
    })?;
    if next.origin() != first.origin() {
        return Err(CollectionError::new(
            ErrorKind::Redirect,
            ep,
            format!(
                "next-page link to another origin ({}); not followed",
                crate::http::origin_label(&next)
            ),
        ));
    }
    Ok(next)
}

#[async_trait]
impl Connector for HttpJsonConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn poll(&self, cx: &PollContext) -> Snapshot {
        let mut b = SnapshotBuilder::new(cx.observed_at);
        match self.collect().await {
            Ok(doc) => self.signals(&doc, &mut b),
            Err(e) => b.gap(&self.settings.prefix(), &e),
        }
        b.finish()
    }
}
