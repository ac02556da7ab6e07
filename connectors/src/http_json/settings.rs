//! `kind = "http_json"`: the connector table's keys, their validation, and the kind's registry
//! entry ([`HTTP_JSON`]).
//!
//! Keys (besides `kind`, `schedule` and `poll_timeout`): `name`, `url`, `auth`, `paging`,
//! `max_pages`, `items`, `signals`, `catalog`, `request_timeout`, `max_retries`,
//! `max_retry_wait`, `max_response_bytes`. Every JMESPath expression is compiled here, so a
//! syntax error or an unknown function is a configuration problem with its key path, never a
//! poll failure. Documented in `docs/connectors/http_json.md` and `config/example.toml`.
//!
//! Must not: do network IO or reveal a secret (they are redacted in `Debug`).

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jmespath::Expression;
use jmespath::ast::Ast;
use reqwest::header::HeaderName;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{HttpJsonConnector, KIND};
use crate::Connector;
use crate::record::Mode;
use crate::settings::{
    BuildContext, ConfigProblem, ConnectorSettings, Kind, SecretRef, SettingsContext, decode,
};

/// The kind's own catalog (`config/catalog/http_json.toml`): no actions. Each connector's
/// actions come from the catalog file its `catalog` key names.
pub const CATALOG: &str = include_str!("../../../config/catalog/http_json.toml");

/// Default of `max_pages`: pages read per poll before the poll gives up (a gap).
pub const DEFAULT_MAX_PAGES: usize = 50;

/// The registry entry of the generic HTTP-JSON connector kind.
pub const HTTP_JSON: Kind<HttpJsonSettings> = Kind {
    name: KIND,
    catalog: CATALOG,
    parse: HttpJsonSettings::parse,
};

/// A compiled JMESPath expression with its text.
#[derive(Clone)]
pub struct Jmes {
    /// The expression as written.
    pub text: String,
    /// Compiled (default runtime: the JMESPath built-in functions).
    pub expr: Arc<Expression<'static>>,
}

impl fmt::Debug for Jmes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

/// The type a signal's expression must produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalType {
    /// A JSON number (a finite one), stored as a double.
    Number,
    /// `true` or `false`.
    Bool,
    /// A JSON string.
    Text,
}

impl SignalType {
    /// `number`, `bool`, `text`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalType::Number => "number",
            SignalType::Bool => "bool",
            SignalType::Text => "text",
        }
    }
}

/// One declared signal: `http_json.<name>.<signal>` = the expression's result.
#[derive(Debug, Clone)]
pub struct SignalDef {
    /// The signal's name (the last segments of its key).
    pub name: String,
    /// The expression evaluated over the collected document.
    pub expr: Jmes,
    /// Its required type.
    pub ty: SignalType,
}

/// How the connector authenticates, secrets resolved (`None` when loaded without resolving
/// secrets).
#[derive(Clone)]
pub enum Auth {
    /// No credentials.
    None,
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: Option<SecretString>,
    },
    /// `Authorization: Basic ...`.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: Option<SecretString>,
    },
    /// A custom header whose whole value is the secret.
    Header {
        /// Header name, e.g. `X-Api-Key`.
        name: HeaderName,
        /// Header value.
        value: Option<SecretString>,
    },
    /// OAuth2 client credentials (RFC 6749 section 4.4); the token is sent as a bearer token.
    OAuth2 {
        /// Token endpoint.
        token_url: String,
        /// Client id.
        client_id: String,
        /// Client secret.
        client_secret: Option<SecretString>,
        /// Scopes requested (none: no `scope` parameter).
        scopes: Vec<String>,
        /// `basic` (HTTP Basic, the default) or `body` (in the form body).
        client_auth: ClientAuth,
    },
}

impl Auth {
    fn kind(&self) -> &'static str {
        match self {
            Auth::None => "none",
            Auth::Bearer { .. } => "bearer",
            Auth::Basic { .. } => "basic",
            Auth::Header { .. } => "header",
            Auth::OAuth2 { .. } => "oauth2",
        }
    }

    /// Whether every secret it needs was resolved.
    fn resolved(&self) -> bool {
        match self {
            Auth::None => true,
            Auth::Bearer { token: s }
            | Auth::Basic { password: s, .. }
            | Auth::Header { value: s, .. }
            | Auth::OAuth2 {
                client_secret: s, ..
            } => s.is_some(),
        }
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Auth");
        d.field("kind", &self.kind());
        match self {
            Auth::Basic { username, .. } => {
                d.field("username", username);
            }
            Auth::Header { name, .. } => {
                d.field("name", name);
            }
            Auth::OAuth2 {
                token_url,
                client_id,
                scopes,
                client_auth,
                ..
            } => {
                d.field("token_url", token_url)
                    .field("client_id", client_id)
                    .field("scopes", scopes)
                    .field("client_auth", client_auth);
            }
            Auth::None | Auth::Bearer { .. } => {}
        }
        if !matches!(self, Auth::None) {
            d.field("secret", &"[redacted]");
        }
        d.finish()
    }
}

/// How an OAuth2 client authenticates to the token endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic with the client id and secret (RFC 6749 section 2.3.1's recommendation).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Body,
}

/// How the next page is found.
#[derive(Debug, Clone)]
pub enum Paging {
    /// One request.
    None,
    /// The next page's URL is the string the expression gives over a page (null or `""`: the
    /// last page); relative URLs are resolved against the page's URL.
    NextLink {
        /// The expression, e.g. `links.next` or `"@odata.nextLink"`.
        path: Jmes,
    },
    /// The `Link` response header's `rel="next"` URL (RFC 8288), e.g. GitHub's.
    LinkHeader,
    /// A query parameter counting the items already read (0 first); the last page is an empty
    /// one or one with fewer than `size` items.
    Offset {
        /// The offset parameter, e.g. `offset`.
        param: String,
        /// The page-size parameter, e.g. `limit` (sent with `size`).
        size_param: Option<String>,
        /// Items per page asked for.
        size: Option<u64>,
    },
    /// A query parameter set to the cursor the expression gives over the previous page; null
    /// or `""`: the last page.
    Cursor {
        /// The cursor parameter, e.g. `cursor`.
        param: String,
        /// The expression, e.g. `response_metadata.next_cursor`.
        path: Jmes,
    },
}

/// `kind = "http_json"` settings, secrets resolved.
#[derive(Debug, Clone)]
pub struct HttpJsonSettings {
    /// Signal namespace `http_json.<name>.`: `[a-z][a-z0-9_]*`, unique per tenant.
    pub name: String,
    /// The first page's URL.
    pub url: url::Url,
    /// Credentials.
    pub auth: Auth,
    /// Paging scheme.
    pub paging: Paging,
    /// Most pages read in one poll (default [`DEFAULT_MAX_PAGES`]); more is a gap.
    pub max_pages: usize,
    /// Selects each page's items (an array); the items of every page, concatenated, are what
    /// the signals see. `None`: the signals see the one response body.
    pub items: Option<Jmes>,
    /// The declared signals, by name.
    pub signals: Vec<SignalDef>,
    /// The user's catalog of actions over these signals.
    pub catalog: Option<PathBuf>,
    /// Per-request timeout (default 30 s).
    pub request_timeout: Duration,
    /// Retries of one request on 429/5xx/network errors (default 4).
    pub max_retries: u32,
    /// Longest honoured `Retry-After` (default 120 s).
    pub max_retry_wait: Duration,
    /// Largest response body read, per response (default 8 MiB).
    pub max_response_bytes: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpJson {
    name: String,
    url: String,
    #[serde(default)]
    auth: Option<RawAuth>,
    #[serde(default)]
    paging: Option<RawPaging>,
    #[serde(default = "default_max_pages")]
    max_pages: usize,
    #[serde(default)]
    items: Option<String>,
    signals: BTreeMap<String, RawSignal>,
    #[serde(default)]
    catalog: Option<PathBuf>,
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    request_timeout: Duration,
    #[serde(default = "default_max_retries")]
    max_retries: u32,
    #[serde(default = "default_max_retry_wait", with = "humantime_serde")]
    max_retry_wait: Duration,
    #[serde(default = "default_max_response_bytes")]
    max_response_bytes: u64,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum RawAuth {
    None,
    Bearer {
        token: SecretRef,
    },
    Basic {
        username: String,
        password: SecretRef,
    },
    Header {
        name: String,
        value: SecretRef,
    },
    Oauth2 {
        token_url: String,
        client_id: String,
        client_secret: SecretRef,
        #[serde(default)]
        scopes: Vec<String>,
        #[serde(default)]
        client_auth: ClientAuth,
    },
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum RawPaging {
    None,
    NextLink {
        path: String,
    },
    LinkHeader,
    Offset {
        param: String,
        #[serde(default)]
        size_param: Option<String>,
        #[serde(default)]
        size: Option<u64>,
    },
    Cursor {
        param: String,
        path: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignal {
    expr: String,
    #[serde(rename = "type")]
    ty: SignalType,
}

fn default_max_pages() -> usize {
    DEFAULT_MAX_PAGES
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_max_retries() -> u32 {
    4
}
fn default_max_retry_wait() -> Duration {
    Duration::from_secs(120)
}
fn default_max_response_bytes() -> u64 {
    crate::http::DEFAULT_MAX_RESPONSE_BYTES
}

/// `[a-z][a-z0-9_]*`: a CEL identifier segment of a signal key.
fn is_segment(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Compile a JMESPath expression; a problem at `path` names the column and the reason.
fn compile(path: String, text: &str, problems: &mut Vec<ConfigProblem>) -> Option<Jmes> {
    match jmespath::compile(text) {
        Ok(expr) => {
            let mut unknown = Vec::new();
            unknown_functions(expr.as_ast(), &mut unknown);
            if let Some(name) = unknown.first() {
                problems.push(ConfigProblem::new(
                    path,
                    format!("JMESPath expression {text:?} calls the unknown function {name}()"),
                ));
                return None;
            }
            Some(Jmes {
                text: text.to_owned(),
                expr: Arc::new(expr),
            })
        }
        Err(e) => {
            problems.push(ConfigProblem::new(
                path,
                format!(
                    "invalid JMESPath expression {text:?} (line {}, column {}): {}",
                    e.line + 1,
                    e.column + 1,
                    e.reason
                ),
            ));
            None
        }
    }
}

/// The names of the functions `ast` calls that the default runtime does not have (the
/// `jmespath` crate otherwise finds them only when evaluating).
fn unknown_functions(ast: &Ast, out: &mut Vec<String>) {
    match ast {
        Ast::Function { name, args, .. } => {
            if jmespath::DEFAULT_RUNTIME.get_function(name).is_none() {
                out.push(name.clone());
            }
            for a in args {
                unknown_functions(a, out);
            }
        }
        Ast::Comparison { lhs, rhs, .. }
        | Ast::Projection { lhs, rhs, .. }
        | Ast::And { lhs, rhs, .. }
        | Ast::Or { lhs, rhs, .. }
        | Ast::Subexpr { lhs, rhs, .. } => {
            unknown_functions(lhs, out);
            unknown_functions(rhs, out);
        }
        Ast::Condition {
            predicate, then, ..
        } => {
            unknown_functions(predicate, out);
            unknown_functions(then, out);
        }
        Ast::Expref { ast: node, .. }
        | Ast::Flatten { node, .. }
        | Ast::Not { node, .. }
        | Ast::ObjectValues { node, .. } => unknown_functions(node, out),
        Ast::MultiList { elements, .. } => {
            for e in elements {
                unknown_functions(e, out);
            }
        }
        Ast::MultiHash { elements, .. } => {
            for kv in elements {
                unknown_functions(&kv.value, out);
            }
        }
        Ast::Identity { .. }
        | Ast::Field { .. }
        | Ast::Index { .. }
        | Ast::Literal { .. }
        | Ast::Slice { .. } => {}
    }
}

/// Resolve a secret reference (or only check it is present when secrets are not resolved).
fn secret(
    r: &SecretRef,
    key: String,
    cx: &SettingsContext<'_>,
    problems: &mut Vec<ConfigProblem>,
) -> Option<SecretString> {
    if !cx.resolve_secrets {
        return None;
    }
    match r.resolve(cx.env) {
        Ok(s) if s.expose_secret().is_empty() => {
            problems.push(ConfigProblem::new(key, "the secret is empty"));
            None
        }
        Ok(s) => Some(s),
        Err(m) => {
            problems.push(ConfigProblem::new(key, m));
            None
        }
    }
}

impl HttpJsonSettings {
    /// Decode and validate a connector table (common keys removed). Every problem is returned
    /// at once, each with its key path: the name and signal names are identifiers, the URLs
    /// parse (and are `https://` when credentials go there), every JMESPath expression
    /// compiles, paging other than `none` has an `items` expression, limits are positive, and
    /// every secret resolves to a non-empty value (when [`SettingsContext::resolve_secrets`]).
    pub fn parse(
        table: toml::Table,
        cx: &SettingsContext<'_>,
    ) -> Result<HttpJsonSettings, Vec<ConfigProblem>> {
        let raw: RawHttpJson = decode(cx.path, toml::Value::Table(table)).map_err(|p| vec![p])?;
        let mut problems = Vec::new();
        if !is_segment(&raw.name) {
            problems.push(ConfigProblem::new(
                cx.key("name"),
                format!(
                    "{:?} is not a signal namespace: use lower-case letters, digits and _, \
                     starting with a letter",
                    raw.name
                ),
            ));
        }
        let auth = match raw.auth.unwrap_or(RawAuth::None) {
            RawAuth::None => Auth::None,
            RawAuth::Bearer { token } => Auth::Bearer {
                token: secret(&token, cx.key("auth.token"), cx, &mut problems),
            },
            RawAuth::Basic { username, password } => Auth::Basic {
                username,
                password: secret(&password, cx.key("auth.password"), cx, &mut problems),
            },
            RawAuth::Header { name, value } => {
                let header = HeaderName::try_from(name.as_str());
                if header.is_err() {
                    problems.push(ConfigProblem::new(
                        cx.key("auth.name"),
                        format!("{name:?} is not an HTTP header name"),
                    ));
                }
                let value = secret(&value, cx.key("auth.value"), cx, &mut problems);
                if value.as_ref().is_some_and(|v| {
                    reqwest::header::HeaderValue::from_str(v.expose_secret()).is_err()
                }) {
                    problems.push(ConfigProblem::new(
                        cx.key("auth.value"),
                        "the secret is not a valid header value (control characters)",
                    ));
                }
                Auth::Header {
                    name: header.unwrap_or(reqwest::header::AUTHORIZATION),
                    value,
                }
            }
            RawAuth::Oauth2 {
                token_url,
                client_id,
                client_secret,
                scopes,
                client_auth,
            } => {
                if let Err(m) = crate::settings::check_credential_url(&token_url, false) {
                    problems.push(ConfigProblem::new(cx.key("auth.token_url"), m));
                }
                if client_id.is_empty() {
                    problems.push(ConfigProblem::new(cx.key("auth.client_id"), "is empty"));
                }
                Auth::OAuth2 {
                    token_url,
                    client_id,
                    client_secret: secret(
                        &client_secret,
                        cx.key("auth.client_secret"),
                        cx,
                        &mut problems,
                    ),
                    scopes,
                    client_auth,
                }
            }
        };
        let url = match crate::settings::check_credential_url(&raw.url, matches!(auth, Auth::None))
        {
            Ok(u) => Some(u),
            Err(m) => {
                problems.push(ConfigProblem::new(cx.key("url"), m));
                None
            }
        };
        let items = raw
            .items
            .as_deref()
            .and_then(|t| compile(cx.key("items"), t, &mut problems));
        let paging = match raw.paging.unwrap_or(RawPaging::None) {
            RawPaging::None => Paging::None,
            RawPaging::NextLink { path } => {
                match compile(cx.key("paging.path"), &path, &mut problems) {
                    Some(path) => Paging::NextLink { path },
                    None => Paging::None,
                }
            }
            RawPaging::LinkHeader => Paging::LinkHeader,
            RawPaging::Offset {
                param,
                size_param,
                size,
            } => {
                if param.is_empty() {
                    problems.push(ConfigProblem::new(cx.key("paging.param"), "is empty"));
                }
                if size == Some(0) {
                    problems.push(ConfigProblem::new(
                        cx.key("paging.size"),
                        "must be positive",
                    ));
                }
                if size_param.is_some() && size.is_none() {
                    problems.push(ConfigProblem::new(
                        cx.key("paging.size"),
                        "required with size_param",
                    ));
                }
                Paging::Offset {
                    param,
                    size_param,
                    size,
                }
            }
            RawPaging::Cursor { param, path } => {
                if param.is_empty() {
                    problems.push(ConfigProblem::new(cx.key("paging.param"), "is empty"));
                }
                match compile(cx.key("paging.path"), &path, &mut problems) {
                    Some(path) => Paging::Cursor { param, path },
                    None => Paging::None,
                }
            }
        };
        if !matches!(paging, Paging::None) && raw.items.is_none() {
            problems.push(ConfigProblem::new(
                cx.key("items"),
                "required with paging: the expression selecting each page's items (\"@\" when \
                 the page is the array)",
            ));
        }
        if raw.max_pages == 0 {
            problems.push(ConfigProblem::new(cx.key("max_pages"), "must be positive"));
        }
        if raw.request_timeout.is_zero() {
            problems.push(ConfigProblem::new(
                cx.key("request_timeout"),
                "must be positive",
            ));
        }
        if raw.max_response_bytes == 0 {
            problems.push(ConfigProblem::new(
                cx.key("max_response_bytes"),
                "must be positive",
            ));
        }
        if raw.signals.is_empty() {
            problems.push(ConfigProblem::new(
                cx.key("signals"),
                "declare at least one signal: name = { expr = \"...\", type = \"number\" }",
            ));
        }
        let mut signals = Vec::new();
        for (name, s) in &raw.signals {
            let path = format!("{}.signals.{name}", cx.path);
            if !name.split('.').all(is_segment) {
                problems.push(ConfigProblem::new(
                    path.clone(),
                    "a signal name is dot-separated segments of lower-case letters, digits and \
                     _, each starting with a letter",
                ));
            }
            if let Some(expr) = compile(format!("{path}.expr"), &s.expr, &mut problems) {
                signals.push(SignalDef {
                    name: name.clone(),
                    expr,
                    ty: s.ty,
                });
            }
        }
        // A signal name that is a prefix namespace of another (`a` and `a.b`) cannot be both a
        // value and a namespace.
        for a in raw.signals.keys() {
            if raw.signals.keys().any(|b| {
                b.len() > a.len() && b.starts_with(a.as_str()) && b[a.len()..].starts_with('.')
            }) {
                problems.push(ConfigProblem::new(
                    format!("{}.signals.{a}", cx.path),
                    "is also the namespace of another signal",
                ));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let Some(url) = url else {
            return Err(problems);
        };
        Ok(HttpJsonSettings {
            name: raw.name,
            url,
            auth,
            paging,
            max_pages: raw.max_pages,
            items,
            signals,
            catalog: raw.catalog.map(|p| cx.resolve_path(p)),
            request_timeout: raw.request_timeout,
            max_retries: raw.max_retries,
            max_retry_wait: raw.max_retry_wait,
            max_response_bytes: raw.max_response_bytes,
        })
    }

    /// The signal namespace `http_json.<name>.`.
    pub fn prefix(&self) -> String {
        format!("{KIND}.{}.", self.name)
    }
}

impl ConnectorSettings for HttpJsonSettings {
    fn build(&self, cx: &BuildContext<'_>) -> Result<Arc<dyn Connector>, String> {
        if !self.auth.resolved() {
            // Loaded without resolving secrets (an offline command): never poll without them.
            return Err(format!(
                "the http_json connector {:?}: its {} credentials were not resolved",
                self.name,
                self.auth.kind()
            ));
        }
        let mode = match cx.record {
            Some(recorder) => Mode::Record(recorder.clone()),
            None => Mode::Live,
        };
        let conn = HttpJsonConnector::new(self.clone(), cx.http.clone(), mode)
            .map_err(|e| format!("building the http_json connector {:?}: {e}", self.name))?;
        Ok(Arc::new(conn))
    }

    fn catalog(&self) -> Option<PathBuf> {
        self.catalog.clone()
    }

    fn instance(&self) -> Option<&str> {
        Some(&self.name)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "sup3r-secret-value";

    fn parse(text: &str, resolve_secrets: bool) -> Result<HttpJsonSettings, Vec<ConfigProblem>> {
        let env = |k: &str| (k == "S").then(|| SECRET.to_owned());
        let cx = SettingsContext {
            path: "tenants[0].connectors[2]",
            tenant: "t",
            env: &env,
            base_dir: Some(std::path::Path::new("/etc/postured")),
            resolve_secrets,
        };
        HttpJsonSettings::parse(text.parse().unwrap(), &cx)
    }

    fn table(auth: &str) -> String {
        format!(
            "name = \"n\"\nurl = \"https://api.example.com/v1/x\"\nauth = {auth}\n\
             catalog = \"catalog/x.toml\"\n[signals]\nc = {{ expr = \"length(@)\", type = \"number\" }}"
        )
    }

    const AUTHS: [&str; 4] = [
        r#"{ kind = "bearer", token = { env = "S" } }"#,
        r#"{ kind = "basic", username = "u", password = { env = "S" } }"#,
        r#"{ kind = "header", name = "X-Api-Key", value = { env = "S" } }"#,
        r#"{ kind = "oauth2", token_url = "https://idp.example.com/token", client_id = "c", client_secret = { env = "S" } }"#,
    ];

    #[test]
    fn every_auth_kind_resolves_and_redacts_its_secret() {
        for auth in AUTHS {
            let s = parse(&table(auth), true).unwrap_or_else(|p| panic!("{auth}: {p:?}"));
            assert!(s.auth.resolved());
            let debug = format!("{s:?}");
            assert!(!debug.contains(SECRET), "{debug}");
            assert!(debug.contains("[redacted]"), "{debug}");
            assert_eq!(s.prefix(), "http_json.n.");
            assert_eq!(
                s.catalog.as_deref(),
                Some(std::path::Path::new("/etc/postured/catalog/x.toml"))
            );
            assert_eq!(s.max_pages, DEFAULT_MAX_PAGES);
            assert_eq!(s.max_response_bytes, 8 << 20);
        }
    }

    #[test]
    fn unresolved_secrets_never_build_a_live_connector() {
        for auth in AUTHS {
            let s = parse(&table(auth), false).unwrap();
            assert!(!s.auth.resolved());
            let _ = rustls::crypto::ring::default_provider().install_default();
            let http = reqwest::Client::new();
            let cx = BuildContext {
                tenant: "t",
                http: &http,
                record: None,
            };
            let err = s.build(&cx).err().expect("refused");
            assert!(err.contains("not resolved"), "{err}");
        }
        // Unset and empty variables are problems naming the key and the variable only.
        let problems = parse(
            &table(r#"{ kind = "bearer", token = { env = "UNSET" } }"#),
            true,
        )
        .unwrap_err();
        assert_eq!(problems[0].path, "tenants[0].connectors[2].auth.token");
        assert!(problems[0].message.contains("UNSET"));
    }

    #[test]
    fn plain_http_only_to_loopback_or_without_credentials() {
        let t = |url: &str, auth: &str| {
            format!(
                "name = \"n\"\nurl = \"{url}\"\nauth = {auth}\n[signals]\nc = {{ expr = \"@\", type = \"number\" }}"
            )
        };
        assert!(parse(&t("http://127.0.0.1:8080/x", AUTHS[0]), true).is_ok());
        assert!(
            parse(
                &t("http://intranet.example/x", r#"{ kind = "none" }"#),
                true
            )
            .is_ok()
        );
        let p = parse(&t("http://intranet.example/x", AUTHS[0]), true).unwrap_err();
        assert_eq!(p[0].path, "tenants[0].connectors[2].url");
        let p = parse(
            &t(
                "https://x.example/",
                r#"{ kind = "oauth2", token_url = "http://idp.example/token", client_id = "c", client_secret = { env = "S" } }"#,
            ),
            true,
        )
        .unwrap_err();
        assert_eq!(p[0].path, "tenants[0].connectors[2].auth.token_url");
    }

    #[test]
    fn signal_names_are_key_segments() {
        let t = |signals: &str| {
            format!("name = \"n\"\nurl = \"https://x.example/\"\n[signals]\n{signals}")
        };
        assert!(parse(&t(r#""a.b_2" = { expr = "@", type = "text" }"#), true).is_ok());
        for bad in [
            r#""A" = { expr = "@", type = "text" }"#,
            r#""a..b" = { expr = "@", type = "text" }"#,
            r#""2x" = { expr = "@", type = "text" }"#,
        ] {
            let p = parse(&t(bad), true).unwrap_err();
            assert!(
                p[0].path.starts_with("tenants[0].connectors[2].signals."),
                "{p:?}"
            );
        }
        let p = parse(
            &t("\"a\" = { expr = \"@\", type = \"text\" }\n\"a.b\" = { expr = \"@\", type = \"text\" }"),
            true,
        )
        .unwrap_err();
        assert_eq!(p[0].path, "tenants[0].connectors[2].signals.a");
        let p = parse(&t(""), true).unwrap_err();
        assert_eq!(p[0].path, "tenants[0].connectors[2].signals");
    }
}
