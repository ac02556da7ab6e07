//! The daemon's own configuration sections: `[server]`, `[store]`, `[scheduler]`, `[metrics]`,
//! `[log]`, `[catalog]`, `[history]` and `[evidence]`, with their defaults (documented in
//! `config/example.toml`). Decoded by `super::Config::parse`, validated there.
//!
//! Must not: resolve secrets or read files.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigProblem, SecretRef};

/// `[server]`: the HTTP listener for `/metrics`, `/healthz` and the API, and its limits
/// against slow or many clients.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Listen address, e.g. `127.0.0.1:9898`; port 0 picks a free port.
    pub listen: String,
    /// Serve `/metrics` without authentication (Prometheus scrapes usually are).
    pub metrics_public: bool,
    /// Bearer token for the API routes; when unset the API routes answer 401.
    pub api_token: Option<SecretRef>,
    /// A connection must send a complete request head (request line and headers) within this
    /// long after it opens or after its previous response (an idle keep-alive connection
    /// included), else it is closed (default 10 s).
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Longest time from a request head to its response, the request body included; past it
    /// the answer is `408 Request Timeout` (default 30 s).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Open connections served at once; a connection accepted beyond it is closed at once
    /// (default 256).
    pub max_connections: usize,
    /// `[server.oidc]`: accept bearer JWTs of an OpenID Connect identity provider (absent:
    /// API tokens and the shared token only).
    pub oidc: Option<OidcConfig>,
    /// The URL people reach the dashboard at (`https://postured.example.com`, no query), when
    /// it differs from the listen address (behind a proxy). The OpenID Connect sign-in derives
    /// its redirect URL from it: `<public_url>/sign-in/oidc/callback`.
    pub public_url: Option<String>,
}

/// `[server.oidc]`: the organisation's OpenID Connect identity provider, whose access tokens
/// (JWTs) the API accepts as bearer tokens. See docs/security.md for Entra ID and others.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer, exactly as in the tokens' `iss` claim (`https://login.microsoftonline.com/
    /// <tenant-id>/v2.0` for Entra ID). `https://`, or `http://` on a loopback host only.
    pub issuer: String,
    /// The audience the tokens must name in `aud` (the API's application id URI or client id).
    pub audience: String,
    /// The claim holding the caller's roles: a string or a list of strings; a dotted path
    /// reaches into objects (`realm_access.roles`). Default `roles`.
    #[serde(default = "default_role_claim")]
    pub role_claim: String,
    /// Claim value -> postured role (`reader`, `contributor`, `assessor`, `administrator`);
    /// several matching values give the highest of their roles. A token whose claim matches
    /// none is refused with 403.
    #[serde(default)]
    pub roles: BTreeMap<String, String>,
    /// A claim listing the tenant ids the caller is limited to (absent from config: every
    /// tenant; configured but absent from a token: none).
    pub tenant_claim: Option<String>,
    /// A claim listing the group ids the caller is limited to (as `tenant_claim`).
    pub group_claim: Option<String>,
    /// The key set's URL; default: the `jwks_uri` of `<issuer>/.well-known/openid-configuration`.
    pub jwks_url: Option<String>,
    /// How often the key set is fetched again (default 1 h, at least 10 s); also fetched on an
    /// unknown `kid`, at most once per 30 s. A failed fetch keeps the last good key set.
    #[serde(with = "humantime_serde", default = "default_jwks_refresh")]
    pub refresh_interval: Duration,
    /// Accepted signature algorithms (default `["RS256", "ES256"]`); asymmetric only: `none`
    /// and HMAC (`HS*`) are refused.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf` (default 60 s, at most 5 min).
    #[serde(with = "humantime_serde", default = "default_leeway")]
    pub leeway: Duration,
    /// The dashboard's client id at the provider: when set, the sign-in page offers "Sign in
    /// with <provider>" (authorization-code flow with PKCE; see docs/dashboard.md).
    pub client_id: Option<String>,
    /// The client secret of a confidential client (`{ env = ".." }`, `{ file = ".." }` or
    /// `{ credential = ".." }`; absent: a public client, PKCE only).
    pub client_secret: Option<SecretRef>,
    /// The redirect URL registered at the provider; default `<[server] public_url>/sign-in/
    /// oidc/callback`. `https://`, or `http://` on a loopback host only.
    pub redirect_url: Option<String>,
    /// Which token of the sign-in's token response is verified and mapped to a role:
    /// `id_token` (default; its audience must be `client_id`, its nonce the sign-in's) or
    /// `access_token` (verified exactly as an API bearer token, audience `audience`).
    #[serde(default)]
    pub sign_in_token: SignInToken,
    /// The provider's name on the sign-in button (default: the issuer's host).
    pub display_name: Option<String>,
}

/// `[server.oidc] sign_in_token`: which token of a browser sign-in carries the role claim.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInToken {
    /// The ID token (audience: the client id; the nonce is checked).
    #[default]
    IdToken,
    /// The access token (audience: `[server.oidc] audience`, as for API calls).
    AccessToken,
}

/// The signature algorithms `[server.oidc] algorithms` may name.
pub const OIDC_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

fn default_role_claim() -> String {
    "roles".to_string()
}

fn default_jwks_refresh() -> Duration {
    Duration::from_secs(3600)
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".to_string(), "ES256".to_string()]
}

fn default_leeway() -> Duration {
    Duration::from_secs(60)
}

/// Problems of an identity provider URL: `https://`, or `http://` on a loopback host.
fn check_provider_url(text: &str) -> Option<String> {
    match url::Url::parse(text) {
        Err(e) => Some(format!("not a URL: {e}")),
        Ok(u) if u.scheme() == "https" => None,
        Ok(u)
            if u.scheme() == "http"
                && matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")) =>
        {
            None
        }
        Ok(_) => Some("must be an https:// URL (http:// only on a loopback host)".to_string()),
    }
}

impl OidcConfig {
    /// The role mapping, claim value -> role (values naming no role are left out; validation
    /// reports them).
    pub fn role_map(&self) -> BTreeMap<String, crate::access::Role> {
        self.roles
            .iter()
            .filter_map(|(k, v)| crate::access::Role::parse(v).map(|r| (k.clone(), r)))
            .collect()
    }

    /// Validate; every problem carries its `server.oidc.` key path.
    pub fn validate(&self, problems: &mut Vec<ConfigProblem>) {
        let mut push = |key: &str, message: String| {
            problems.push(ConfigProblem::new(format!("server.oidc.{key}"), message));
        };
        if let Some(m) = check_provider_url(&self.issuer) {
            push("issuer", m);
        }
        if let Some(m) = self.jwks_url.as_deref().and_then(check_provider_url) {
            push("jwks_url", m);
        }
        if self.audience.trim().is_empty() {
            push("audience", "must not be empty".to_string());
        }
        if self.role_claim.trim().is_empty() || self.role_claim.split('.').any(str::is_empty) {
            push(
                "role_claim",
                "must be a claim name or a dotted path of names".to_string(),
            );
        }
        if self.roles.is_empty() {
            push(
                "roles",
                "map at least one claim value to a role (e.g. \"Postured.Read\" = \"reader\")"
                    .to_string(),
            );
        }
        for (value, role) in &self.roles {
            if crate::access::Role::parse(role).is_none() {
                push(
                    &format!("roles.{value:?}"),
                    format!(
                        "{role:?} is not a role (reader, contributor, assessor, administrator)"
                    ),
                );
            }
        }
        for (key, claim) in [
            ("tenant_claim", &self.tenant_claim),
            ("group_claim", &self.group_claim),
        ] {
            if claim.as_deref().is_some_and(|c| c.trim().is_empty()) {
                push(key, "must not be empty".to_string());
            }
        }
        if self.refresh_interval < Duration::from_secs(10) {
            push("refresh_interval", "must be at least 10s".to_string());
        }
        if self.leeway > Duration::from_secs(300) {
            push("leeway", "must be at most 5m".to_string());
        }
        if self.algorithms.is_empty() {
            push("algorithms", "name at least one algorithm".to_string());
        }
        for (i, alg) in self.algorithms.iter().enumerate() {
            if OIDC_ALGORITHMS.contains(&alg.as_str()) {
                continue;
            }
            let why = if alg.to_ascii_uppercase().starts_with("HS") {
                "HMAC algorithms are refused: an identity provider's keys are public, and a \
                 public key must never verify an HMAC"
                    .to_string()
            } else if alg.eq_ignore_ascii_case("none") {
                "unsigned tokens are refused".to_string()
            } else {
                format!(
                    "unknown algorithm {alg:?}; one of {}",
                    OIDC_ALGORITHMS.join(", ")
                )
            };
            push(&format!("algorithms[{i}]"), why);
        }
    }
}

/// Default of [`ServerConfig::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of [`ServerConfig::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default of [`ServerConfig::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9898".into(),
            metrics_public: true,
            api_token: None,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            oidc: None,
            public_url: None,
        }
    }
}

impl ServerConfig {
    /// Validate the limits; problems carry `server.` key paths (the listen address and the
    /// token are checked by `super::Config`).
    pub fn validate(&self, problems: &mut Vec<ConfigProblem>) {
        for (key, d) in [
            ("server.header_read_timeout", self.header_read_timeout),
            ("server.request_timeout", self.request_timeout),
        ] {
            if d.is_zero() {
                problems.push(ConfigProblem::new(key, "must be positive"));
            }
        }
        if self.max_connections == 0 {
            problems.push(ConfigProblem::new(
                "server.max_connections",
                "must be at least 1",
            ));
        }
        if let Some(u) = &self.public_url
            && let Some(m) = check_public_url(u)
        {
            problems.push(ConfigProblem::new("server.public_url", m));
        }
        if let Some(oidc) = &self.oidc {
            oidc.validate(problems);
            if let Some(u) = &oidc.redirect_url
                && let Some(m) = check_provider_url(u)
            {
                problems.push(ConfigProblem::new("server.oidc.redirect_url", m));
            }
            if oidc.client_id.as_deref().is_some_and(str::is_empty) {
                problems.push(ConfigProblem::new(
                    "server.oidc.client_id",
                    "must not be empty",
                ));
            }
            if oidc.client_id.is_some() && self.oidc_redirect_url().is_none() {
                problems.push(ConfigProblem::new(
                    "server.oidc.client_id",
                    "the browser sign-in needs a redirect URL: set [server] public_url or \
                     [server.oidc] redirect_url",
                ));
            }
            if oidc.client_secret.is_some() && oidc.client_id.is_none() {
                problems.push(ConfigProblem::new(
                    "server.oidc.client_secret",
                    "needs server.oidc.client_id",
                ));
            }
        }
    }

    /// The redirect URL of the OpenID Connect browser sign-in: `[server.oidc] redirect_url`,
    /// else `<public_url>/sign-in/oidc/callback`; `None` without either or without `[server.oidc]`.
    pub fn oidc_redirect_url(&self) -> Option<String> {
        let oidc = self.oidc.as_ref()?;
        oidc.redirect_url.clone().or_else(|| {
            self.public_url
                .as_ref()
                .map(|u| format!("{}/sign-in/oidc/callback", u.trim_end_matches('/')))
        })
    }
}

/// Problems of `[server] public_url`: an `https://` URL (or `http://` on a loopback host)
/// without query or fragment.
fn check_public_url(text: &str) -> Option<String> {
    check_provider_url(text).or_else(|| {
        let u = url::Url::parse(text).ok()?;
        (u.query().is_some() || u.fragment().is_some())
            .then(|| "must not have a query or fragment".to_string())
    })
}

/// `[store]`: where history is kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://PATH` (default `sqlite://postured.db`), a bare path, or `postgres://...`
    /// (TLS with `sslmode=require`, `verify-ca` or `verify-full`; the system's roots, or
    /// `sslrootcert=FILE`).
    pub url: String,
    /// Connection pool size.
    pub max_connections: u32,
    /// PostgreSQL only: each session's `statement_timeout` (`30s`; `0s`: none). A statement
    /// running (or waiting for a lock) longer fails as a store error, which the poll counts
    /// and retries with the next one. SQLite waits at most 5 s for another writer.
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
    /// How often the store's health (the database file still the one opened, a write probe)
    /// is checked for `postured_store_healthy` (`30s`; `0s`: only when `/readyz` is asked).
    #[serde(with = "humantime_serde")]
    pub health_interval: Duration,
    /// Deadline of one health check (`5s`); past it the store counts as unhealthy.
    #[serde(with = "humantime_serde")]
    pub health_timeout: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://postured.db".into(),
            max_connections: 4,
            statement_timeout: Duration::from_secs(30),
            health_interval: Duration::from_secs(30),
            health_timeout: Duration::from_secs(5),
        }
    }
}

impl StoreConfig {
    /// Validate the timing keys; problems carry `store.` key paths (the URL and pool size are
    /// checked with the other sections).
    pub fn validate(&self, problems: &mut Vec<ConfigProblem>) {
        if self.health_timeout.is_zero() {
            problems.push(ConfigProblem::new(
                "store.health_timeout",
                "must be positive",
            ));
        }
        if !self.statement_timeout.is_zero() && self.statement_timeout < Duration::from_millis(1) {
            problems.push(ConfigProblem::new(
                "store.statement_timeout",
                "must be 0s (no timeout) or at least 1ms (PostgreSQL counts milliseconds)",
            ));
        }
    }
}

/// `[scheduler]`: when and how polls run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// Global cap on polls running at once, across all tenants.
    pub max_concurrent_polls: usize,
    /// Deadline of one poll of one (tenant, connector); past it the poll is abandoned and its
    /// signals are marked not collected (`timeout`).
    #[serde(with = "humantime_serde")]
    pub poll_timeout: Duration,
    /// Each (tenant, connector) delays its first poll by a random amount up to this, so that a
    /// restart does not poll every tenant at the same instant.
    #[serde(with = "humantime_serde")]
    pub startup_jitter: Duration,
    /// Poll once right after start (after the jitter) instead of waiting for the first cron
    /// fire time.
    pub poll_on_start: bool,
    /// Signals expire after this many schedule intervals (SCORING.md default: 3).
    pub signal_ttl_polls: u32,
    /// First retry delay after a failed poll; doubles per consecutive failure.
    #[serde(with = "humantime_serde")]
    pub backoff_initial: Duration,
    /// Cap of the retry delay (the next cron fire time is used when it comes sooner).
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// On SIGINT/SIGTERM, in-flight polls get this long to finish; a second signal exits at
    /// once.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            max_concurrent_polls: 16,
            poll_timeout: Duration::from_secs(120),
            startup_jitter: Duration::from_secs(30),
            poll_on_start: true,
            signal_ttl_polls: 3,
            backoff_initial: Duration::from_secs(10),
            backoff_max: Duration::from_secs(15 * 60),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// `[metrics]`: what `/metrics` exports.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Export `postured_action_points_*{tenant,action}` (tenants × actions series). Turn off
    /// for very large fleets.
    pub per_action_series: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            per_action_series: true,
        }
    }
}

/// `[log]`: tracing output.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// An `EnvFilter` directive, e.g. `info` or `postured=debug,info`; `RUST_LOG` wins.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[catalog]`: the improvement-action catalog.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogConfig {
    /// A catalog TOML file replacing the merged built-in catalogs of the connector kinds
    /// (`config/catalog/<kind>.toml`) and the connectors' own catalogs (an `exec` connector's
    /// `catalog`): its actions and families are the whole catalog.
    pub path: Option<PathBuf>,
}

/// `[history]`: how long history is kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// Polls, signal history, transitions, score snapshots, alert events and delivered
    /// notifications older than this are pruned (`400d`); `0s` keeps everything.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// How often the prune task runs.
    #[serde(with = "humantime_serde")]
    pub prune_interval: Duration,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(400 * 86_400),
            prune_interval: Duration::from_secs(3600),
        }
    }
}

impl HistoryConfig {
    /// Validate; problems carry `history.` key paths.
    pub fn validate(&self, problems: &mut Vec<ConfigProblem>) {
        if !self.retention.is_zero() && self.retention < Duration::from_secs(3600) {
            problems.push(ConfigProblem::new(
                "history.retention",
                "must be 0s (keep everything) or at least 1h",
            ));
        }
        if self.prune_interval.is_zero() {
            problems.push(ConfigProblem::new(
                "history.prune_interval",
                "must be positive",
            ));
        }
    }
}

/// Where uploaded evidence files are kept (`[evidence] store`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceStorage {
    /// In the database (`evidence_blobs.content`).
    #[default]
    Database,
    /// In `[evidence] path`, one file per content address.
    Directory,
}

/// `[evidence]`: evidence files attached to action instances.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvidenceConfig {
    /// Largest accepted file, in bytes (25 MiB); a larger upload is answered 413.
    pub max_file_bytes: u64,
    /// File types accepted (`pdf`, `png`, `jpeg`, `txt`, `csv`, `xlsx`, `docx`, `json`: all
    /// by default).
    pub allowed_types: Vec<crate::model::evidence::EvidenceType>,
    /// Where file contents are kept: `database` (default) or `directory`.
    pub store: EvidenceStorage,
    /// The directory of `store = "directory"` (created if missing, mode 0700).
    pub path: Option<PathBuf>,
    /// Most bytes of automatic evidence (the documents of automatic status changes) written by
    /// one poll (1 MiB); changes past it are stored without evidence and logged.
    pub max_automatic_bytes_per_poll: u64,
    /// Most files and links of one action instance, withdrawn ones included (1,000); one more
    /// is refused (422).
    pub max_per_instance: u32,
    /// The key of the pseudonyms in automatic evidence (a secret reference, at least 32
    /// characters; resolved into `Config::pseudonym_key` by the commands that poll). Unset: a
    /// random key per daemon start, never stored, so pseudonyms are stable within one run only.
    pub pseudonym_key: Option<SecretRef>,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        Self {
            max_file_bytes: 25 * 1024 * 1024,
            allowed_types: crate::model::evidence::EvidenceType::ALL.to_vec(),
            store: EvidenceStorage::Database,
            path: None,
            max_automatic_bytes_per_poll: 1024 * 1024,
            max_per_instance: 1_000,
            pseudonym_key: None,
        }
    }
}

/// Largest `[evidence] max_file_bytes` accepted (1 GiB).
pub const MAX_EVIDENCE_FILE_BYTES: u64 = 1024 * 1024 * 1024;

impl EvidenceConfig {
    /// Validate; problems carry `evidence.` key paths.
    pub fn validate(&self, problems: &mut Vec<ConfigProblem>) {
        if self.max_file_bytes == 0 || self.max_file_bytes > MAX_EVIDENCE_FILE_BYTES {
            problems.push(ConfigProblem::new(
                "evidence.max_file_bytes",
                format!("must be between 1 and {MAX_EVIDENCE_FILE_BYTES}"),
            ));
        }
        if self.allowed_types.is_empty() {
            problems.push(ConfigProblem::new(
                "evidence.allowed_types",
                "must name at least one type",
            ));
        }
        if self.store == EvidenceStorage::Directory && self.path.is_none() {
            problems.push(ConfigProblem::new(
                "evidence.path",
                "is required with store = \"directory\"",
            ));
        }
        if self.max_per_instance == 0 {
            problems.push(ConfigProblem::new(
                "evidence.max_per_instance",
                "must be at least 1",
            ));
        }
        if self.max_automatic_bytes_per_poll > MAX_EVIDENCE_FILE_BYTES {
            problems.push(ConfigProblem::new(
                "evidence.max_automatic_bytes_per_poll",
                format!("must be at most {MAX_EVIDENCE_FILE_BYTES}"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The browser sign-in's settings: a redirect URL is needed (explicit or from
    /// `public_url`), URLs are https (http on loopback only), a secret needs a client id.
    #[test]
    fn oidc_sign_in_settings_are_checked_and_the_redirect_url_derived() {
        let server = |text: &str| -> ServerConfig { toml::from_str(text).unwrap() };
        let problems = |s: &ServerConfig| {
            let mut p = Vec::new();
            s.validate(&mut p);
            p.into_iter().map(|p| p.path).collect::<Vec<String>>()
        };
        let oidc = "[oidc]\nissuer = \"https://idp.example.com\"\naudience = \"api://p\"\n\
                    roles = { \"R\" = \"reader\" }\n";
        let s = server(&format!(
            "public_url = \"https://postured.example.com/\"\n{oidc}client_id = \"dash\"\n\
             client_secret = {{ env = \"S\" }}\nsign_in_token = \"access_token\"\n"
        ));
        assert!(problems(&s).is_empty(), "{:?}", problems(&s));
        assert_eq!(
            s.oidc_redirect_url().as_deref(),
            Some("https://postured.example.com/sign-in/oidc/callback")
        );
        assert_eq!(
            s.oidc.as_ref().unwrap().sign_in_token,
            SignInToken::AccessToken
        );
        let s = server(&format!(
            "{oidc}client_id = \"dash\"\nredirect_url = \"https://p.example.com/cb\"\n"
        ));
        assert!(problems(&s).is_empty());
        assert_eq!(
            s.oidc_redirect_url().as_deref(),
            Some("https://p.example.com/cb")
        );
        assert_eq!(s.oidc.as_ref().unwrap().sign_in_token, SignInToken::IdToken);
        // No redirect URL; a secret without client; plain-http URLs off loopback.
        assert_eq!(
            problems(&server(&format!("{oidc}client_id = \"dash\"\n"))),
            ["server.oidc.client_id"]
        );
        assert_eq!(
            problems(&server(&format!(
                "{oidc}client_secret = {{ env = \"S\" }}\n"
            ))),
            ["server.oidc.client_secret"]
        );
        assert_eq!(
            problems(&server(&format!(
                "public_url = \"http://postured.example.com?x=1\"\n{oidc}client_id = \"dash\"\n\
                 redirect_url = \"http://p.example.com/cb\"\n"
            ))),
            ["server.public_url", "server.oidc.redirect_url"]
        );
        // Without a client id, no sign-in button is offered and nothing more is needed.
        assert!(problems(&server(oidc)).is_empty());
    }

    #[test]
    fn oidc_problems_are_reported_together_with_their_paths() {
        let cfg: OidcConfig = toml::from_str(
            r#"
            issuer = "http://idp.example.com"
            audience = " "
            role_claim = "realm_access..roles"
            roles = { "Postured.Admin" = "administrator", "Postured.Boss" = "boss" }
            tenant_claim = ""
            jwks_url = "ftp://idp.example.com/keys"
            refresh_interval = "1s"
            leeway = "10m"
            algorithms = ["RS256", "HS256", "none", "XX1"]
            "#,
        )
        .unwrap();
        let mut p = Vec::new();
        cfg.validate(&mut p);
        let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "server.oidc.issuer",
                "server.oidc.jwks_url",
                "server.oidc.audience",
                "server.oidc.role_claim",
                "server.oidc.roles.\"Postured.Boss\"",
                "server.oidc.tenant_claim",
                "server.oidc.refresh_interval",
                "server.oidc.leeway",
                "server.oidc.algorithms[1]",
                "server.oidc.algorithms[2]",
                "server.oidc.algorithms[3]",
            ]
        );
        assert!(p[8].message.contains("HMAC"), "{}", p[8].message);
        let ok: OidcConfig = toml::from_str(
            r#"
            issuer = "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0"
            audience = "api://postured"
            roles = { "Postured.Read" = "reader" }
            "#,
        )
        .unwrap();
        let mut p = Vec::new();
        ok.validate(&mut p);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(ok.role_claim, "roles");
        assert_eq!(ok.algorithms, ["RS256", "ES256"]);
        assert_eq!(ok.role_map()["Postured.Read"], crate::access::Role::Reader);
    }

    #[test]
    fn evidence_bounds() {
        let mut p = Vec::new();
        EvidenceConfig::default().validate(&mut p);
        assert!(p.is_empty());
        EvidenceConfig {
            max_file_bytes: 0,
            allowed_types: Vec::new(),
            store: EvidenceStorage::Directory,
            path: None,
            max_automatic_bytes_per_poll: u64::MAX,
            max_per_instance: 0,
            pseudonym_key: None,
        }
        .validate(&mut p);
        let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "evidence.max_file_bytes",
                "evidence.allowed_types",
                "evidence.path",
                "evidence.max_per_instance",
                "evidence.max_automatic_bytes_per_poll"
            ]
        );
    }

    #[test]
    fn store_timing_bounds() {
        let mut p = Vec::new();
        StoreConfig::default().validate(&mut p);
        assert!(p.is_empty());
        StoreConfig {
            statement_timeout: Duration::from_micros(10),
            health_timeout: Duration::ZERO,
            ..StoreConfig::default()
        }
        .validate(&mut p);
        let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["store.health_timeout", "store.statement_timeout"]);
    }

    #[test]
    fn history_retention_bounds() {
        let mut p = Vec::new();
        HistoryConfig::default().validate(&mut p);
        assert!(p.is_empty());
        HistoryConfig {
            retention: Duration::from_secs(60),
            prune_interval: Duration::ZERO,
        }
        .validate(&mut p);
        assert_eq!(p.len(), 2);
    }
}
