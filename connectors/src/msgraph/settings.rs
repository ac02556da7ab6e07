//! `kind = "msgraph"`: the connector table's keys, their validation, and the kind's registry
//! entry ([`MSGRAPH`]).
//!
//! Keys (besides `kind`, `schedule` and `poll_timeout`, which every connector has):
//! `tenant_id`, `client_id`, one credential (`client_secret` a [`SecretRef`], `certificate`,
//! `federated_token_file` or `managed_identity`), `authority`, `token_url`, `graph_base`,
//! `request_timeout`, `max_retries`, `max_retry_wait`, `max_response_bytes`, `replay_dir`, and
//! the conditional access exclusions the SCuBA checks accept: `break_glass = { users = [...],
//! groups = [...] }` (object ids, every check) and `scuba_exclusions."<policy id>" = { users,
//! groups }` (one check, e.g. `MS.AAD.3.2v1`); the principals allowed a permanent privileged
//! role assignment (MS.AAD.7.4v1): `permanent_assignments = { users, groups }` (object ids). Documented with their defaults in
//! `config/example.toml` and `docs/connectors/msgraph.md` ("Sign-in", "SCuBA conditional
//! access").
//!
//! Must not: do network IO or reveal a secret or key (they are redacted in `Debug`).

use std::any::Any;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::credential::{
    CertificateKey, CertificatePart, Credential, DEFAULT_IMDS_ENDPOINT, ManagedIdentity,
    read_federated_token,
};
use super::scuba::{Check, Declared, Exclusions};
use super::{DEFAULT_AUTHORITY, DEFAULT_GRAPH_BASE, KIND, MsGraphConfig, MsGraphConnector};
use crate::Connector;
use crate::record::Mode;
use crate::settings::{
    BuildContext, ConfigProblem, ConnectorSettings, Kind, SecretRef, SettingsContext, decode,
};

/// The catalog of Microsoft Graph improvement actions (`config/catalog/msgraph.toml`).
pub const CATALOG: &str = include_str!("../../../config/catalog/msgraph.toml");

/// The registry entry of the Microsoft Graph connector kind.
pub const MSGRAPH: Kind<MsGraphSettings> = Kind {
    name: KIND,
    catalog: CATALOG,
    parse: MsGraphSettings::parse,
};

/// `kind = "msgraph"` settings: the connector's configuration as the table gives it.
#[derive(Clone, Debug)]
pub struct MsGraphSettings {
    /// The connector configuration ([`MsGraphConfig`] documents every key and default; its
    /// `Debug` redacts the credential). `mode` is [`Mode::Live`] or [`Mode::Replay`]
    /// (`replay_dir`, resolved against the configuration file's directory); `tenant_id` is
    /// empty when a replay omits it (the postured tenant id stands in at build); the
    /// credential is an empty client secret in replay and when it was not resolved.
    pub config: MsGraphConfig,
    /// Whether the credential was resolved ([`SettingsContext::resolve_secrets`]; a managed
    /// identity through IMDS needs nothing resolved): a live connector loaded without it (an
    /// offline command) refuses to build.
    pub credential_resolved: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMsGraph {
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<SecretRef>,
    #[serde(default)]
    certificate: Option<RawCertificate>,
    #[serde(default)]
    federated_token_file: Option<PathOrEnv>,
    #[serde(default)]
    managed_identity: Option<RawManagedIdentity>,
    #[serde(default = "default_authority")]
    authority: String,
    #[serde(default)]
    token_url: Option<String>,
    #[serde(default = "default_graph_base")]
    graph_base: String,
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    request_timeout: Duration,
    #[serde(default = "default_max_retries")]
    max_retries: u32,
    #[serde(default = "default_max_retry_wait", with = "humantime_serde")]
    max_retry_wait: Duration,
    #[serde(default = "default_max_response_bytes")]
    max_response_bytes: u64,
    #[serde(default)]
    replay_dir: Option<PathBuf>,
    #[serde(default)]
    break_glass: RawDeclared,
    #[serde(default)]
    scuba_exclusions: BTreeMap<String, RawDeclared>,
    #[serde(default)]
    permanent_assignments: RawDeclared,
}

/// Users and groups a conditional access policy may exclude, by object id.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeclared {
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
}

impl RawDeclared {
    /// Validated: every entry an object id (a GUID, as conditional access policies hold them).
    fn check(self, path: &str, problems: &mut Vec<ConfigProblem>) -> Declared {
        let mut out = Declared::default();
        for (field, ids, set) in [
            ("users", self.users, &mut out.users),
            ("groups", self.groups, &mut out.groups),
        ] {
            for (i, id) in ids.into_iter().enumerate() {
                if uuid::Uuid::parse_str(&id).is_err() {
                    problems.push(ConfigProblem::new(
                        format!("{path}.{field}[{i}]"),
                        format!(
                            "{id:?} is not an object id (a GUID, as the policy's excludeUsers and \
                             excludeGroups hold them)"
                        ),
                    ));
                } else {
                    set.insert(id.to_ascii_lowercase());
                }
            }
        }
        out
    }
}

/// `certificate = { key = {...}, certificate = {...} }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCertificate {
    key: SecretRef,
    certificate: SecretRef,
}

/// `federated_token_file = "PATH"` or `{ env = "VAR" }` (the variable holds the path, as
/// `AZURE_FEDERATED_TOKEN_FILE` does on AKS).
#[derive(Debug, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
enum PathOrEnv {
    Path(PathBuf),
    Env { env: String },
}

/// `managed_identity = { source = "imds" | "app_service", client_id = "...", endpoint = "..." }`
/// (all optional).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManagedIdentity {
    #[serde(default)]
    source: IdentitySource,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    endpoint: Option<String>,
}

/// Where a managed identity's token comes from.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum IdentitySource {
    /// The Azure Instance Metadata Service (VMs, scale sets, AKS nodes, Container Instances).
    #[default]
    Imds,
    /// App Service and Functions: `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`.
    AppService,
}

/// The credential keys, in the order problems name them.
const CREDENTIAL_KEYS: [&str; 4] = [
    "client_secret",
    "certificate",
    "federated_token_file",
    "managed_identity",
];

fn default_authority() -> String {
    DEFAULT_AUTHORITY.into()
}
fn default_graph_base() -> String {
    DEFAULT_GRAPH_BASE.into()
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

impl MsGraphSettings {
    /// Decode and validate a connector table (common keys removed): URLs parse and are
    /// `https://` (`http://` only for a loopback host: a test double), the request timeout is
    /// positive, and a live connector has a tenant id, a client id and a client secret that
    /// resolves to a non-empty value (resolved only when [`SettingsContext::resolve_secrets`];
    /// otherwise only its reference must be present). Every problem is returned at once.
    pub fn parse(
        table: toml::Table,
        cx: &SettingsContext<'_>,
    ) -> Result<MsGraphSettings, Vec<ConfigProblem>> {
        let mut raw: RawMsGraph =
            decode(cx.path, toml::Value::Table(table)).map_err(|p| vec![p])?;
        let mut problems = Vec::new();
        for (key, url) in [
            ("authority", Some(&raw.authority)),
            ("graph_base", Some(&raw.graph_base)),
            ("token_url", raw.token_url.as_ref()),
        ] {
            if let Some(url) = url
                && let Err(m) = crate::settings::check_credential_url(url, false)
            {
                problems.push(ConfigProblem::new(cx.key(key), m));
            }
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
        let mut exclusions = Exclusions {
            all: std::mem::take(&mut raw.break_glass).check(&cx.key("break_glass"), &mut problems),
            per_policy: BTreeMap::new(),
            permanent_assignments: std::mem::take(&mut raw.permanent_assignments)
                .check(&cx.key("permanent_assignments"), &mut problems),
        };
        for (policy, declared) in std::mem::take(&mut raw.scuba_exclusions) {
            let path = cx.key(&format!("scuba_exclusions.\"{policy}\""));
            if !Check::SCUBA
                .iter()
                .any(|c| c.policy_id() == Some(policy.as_str()))
            {
                let known: Vec<&str> = Check::SCUBA.iter().filter_map(|c| c.policy_id()).collect();
                problems.push(ConfigProblem::new(
                    path.clone(),
                    format!(
                        "not a SCuBA conditional access policy id (known: {})",
                        known.join(", ")
                    ),
                ));
            }
            let declared = declared.check(&path, &mut problems);
            exclusions.per_policy.insert(policy, declared);
        }
        let mode = match raw.replay_dir.clone() {
            Some(d) => Mode::Replay(cx.resolve_path(d)),
            None => Mode::Live,
        };
        let mut credential = None;
        if mode == Mode::Live {
            // With a managed identity (and no other credential) the app's client id is unused.
            let managed = raw.managed_identity.is_some()
                && raw.client_secret.is_none()
                && raw.certificate.is_none()
                && raw.federated_token_file.is_none();
            let mut required = vec![("tenant_id", &raw.tenant_id)];
            if !managed {
                required.push(("client_id", &raw.client_id));
            } else if raw.client_id.is_some() {
                problems.push(ConfigProblem::new(
                    cx.key("client_id"),
                    "not used with managed_identity (a user-assigned identity is chosen with \
                     managed_identity.client_id)",
                ));
            }
            for (key, v) in required {
                if v.as_deref().is_none_or(str::is_empty) {
                    problems.push(ConfigProblem::new(
                        cx.key(key),
                        "required for a live connector",
                    ));
                }
            }
            credential = resolve_credential(&raw, cx, &mut problems);
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(MsGraphSettings {
            credential_resolved: credential.is_some(),
            config: MsGraphConfig {
                tenant_id: raw.tenant_id.unwrap_or_default(),
                client_id: raw.client_id.unwrap_or_default(),
                credential: credential
                    .unwrap_or_else(|| Credential::Secret(SecretString::from(String::new()))),
                authority: raw.authority,
                token_url: raw.token_url,
                graph_base: raw.graph_base,
                request_timeout: raw.request_timeout,
                max_retries: raw.max_retries,
                max_retry_wait: raw.max_retry_wait,
                max_response_bytes: raw.max_response_bytes,
                mode,
                exclusions,
            },
        })
    }

    /// The connector configuration for postured tenant `tenant` in `mode`. A replayed
    /// connector may omit the Entra tenant id; the postured tenant id stands in for it.
    pub fn connector_config(&self, tenant: &str, mode: Mode) -> MsGraphConfig {
        let mut config = self.config.clone();
        if config.tenant_id.is_empty() {
            config.tenant_id = tenant.to_owned();
        }
        config.mode = mode;
        config
    }
}

/// The one credential of a live connector, checked and (when
/// [`SettingsContext::resolve_secrets`]) loaded; `None` with problems pushed, or when nothing
/// was resolved. Exactly one of [`CREDENTIAL_KEYS`] must be set: none is a problem at
/// `client_secret`, several are a problem at each of them.
fn resolve_credential(
    raw: &RawMsGraph,
    cx: &SettingsContext<'_>,
    problems: &mut Vec<ConfigProblem>,
) -> Option<Credential> {
    let set: Vec<&str> = CREDENTIAL_KEYS
        .into_iter()
        .zip([
            raw.client_secret.is_some(),
            raw.certificate.is_some(),
            raw.federated_token_file.is_some(),
            raw.managed_identity.is_some(),
        ])
        .filter_map(|(k, on)| on.then_some(k))
        .collect();
    match set.as_slice() {
        [] => {
            problems.push(ConfigProblem::new(
                cx.key("client_secret"),
                "required for a live connector ({ env = \"VAR\" } or { file = \"PATH\" }), or \
                 another credential: certificate, federated_token_file or managed_identity",
            ));
            return None;
        }
        [_] => {}
        many => {
            for key in many {
                let others: Vec<&str> = many.iter().copied().filter(|k| k != key).collect();
                problems.push(ConfigProblem::new(
                    cx.key(key),
                    format!(
                        "only one credential may be set; also set: {}",
                        others.join(", ")
                    ),
                ));
            }
            return None;
        }
    }
    if let Some(mi) = &raw.managed_identity {
        return managed_identity(mi, cx, problems);
    }
    let mut problem = |key: &str, m: String| problems.push(ConfigProblem::new(cx.key(key), m));
    if !cx.resolve_secrets {
        return None;
    }
    if let Some(r) = &raw.client_secret {
        return match r.resolve(cx.env) {
            Ok(s) if s.expose_secret().is_empty() => {
                problem("client_secret", "the secret is empty".into());
                None
            }
            Ok(s) => Some(Credential::Secret(s)),
            Err(m) => {
                problem("client_secret", m);
                None
            }
        };
    }
    if let Some(c) = &raw.certificate {
        // Files are read from the configuration's directory when relative.
        let in_dir = |r: &SecretRef| match r {
            SecretRef::File { file } => SecretRef::File {
                file: cx.resolve_path(file.clone()),
            },
            other => other.clone(),
        };
        let key = in_dir(&c.key)
            .resolve(cx.env)
            .map_err(|m| problem("certificate.key", m))
            .ok();
        let cert = in_dir(&c.certificate)
            .resolve(cx.env)
            .map_err(|m| problem("certificate.certificate", m))
            .ok();
        let (key, cert) = (key?, cert?);
        return match CertificateKey::from_pem(key.expose_secret(), cert.expose_secret()) {
            Ok(k) => Some(Credential::Certificate(Arc::new(k))),
            Err((part, m)) => {
                let key = match part {
                    CertificatePart::Key => "certificate.key",
                    CertificatePart::Certificate => "certificate.certificate",
                    CertificatePart::Pair => "certificate",
                };
                problem(key, m);
                None
            }
        };
    }
    let path = match raw.federated_token_file.as_ref()? {
        PathOrEnv::Path(p) => cx.resolve_path(p.clone()),
        PathOrEnv::Env { env } => match (cx.env)(env).filter(|v| !v.is_empty()) {
            Some(p) => cx.resolve_path(PathBuf::from(p)),
            None => {
                problem(
                    "federated_token_file",
                    format!("environment variable {env} is not set"),
                );
                return None;
            }
        },
    };
    match read_federated_token(&path) {
        Ok(_) => Some(Credential::FederatedToken(path)),
        Err(m) => {
            problem("federated_token_file", m);
            None
        }
    }
}

/// A managed identity: its endpoint checked (IMDS by default; on App Service `IDENTITY_ENDPOINT`
/// unless `endpoint` is set) and, on App Service, its `IDENTITY_HEADER` read (when
/// [`SettingsContext::resolve_secrets`]). Problems are under `managed_identity.*`.
fn managed_identity(
    mi: &RawManagedIdentity,
    cx: &SettingsContext<'_>,
    problems: &mut Vec<ConfigProblem>,
) -> Option<Credential> {
    let before = problems.len();
    let mut problem = |key: &str, m: String| {
        problems.push(ConfigProblem::new(
            cx.key(&format!("managed_identity.{key}")),
            m,
        ))
    };
    if mi.client_id.as_deref() == Some("") {
        problem(
            "client_id",
            "is empty (omit it for the system-assigned identity)".into(),
        );
    }
    let from_env = |var: &str| (cx.env)(var).filter(|v| !v.is_empty());
    let unset = |var: &str| {
        format!(
            "environment variable {var} is not set (App Service sets it when the app has a managed identity)"
        )
    };
    let (endpoint, identity_header) = match mi.source {
        IdentitySource::Imds => (
            Some(
                mi.endpoint
                    .clone()
                    .unwrap_or_else(|| DEFAULT_IMDS_ENDPOINT.to_owned()),
            ),
            None,
        ),
        IdentitySource::AppService if !cx.resolve_secrets => (None, None),
        IdentitySource::AppService => {
            let endpoint = mi
                .endpoint
                .clone()
                .or_else(|| from_env("IDENTITY_ENDPOINT"));
            if endpoint.is_none() {
                problem("source", unset("IDENTITY_ENDPOINT"));
            }
            let header = from_env("IDENTITY_HEADER").map(SecretString::from);
            if header.is_none() {
                problem("source", unset("IDENTITY_HEADER"));
            }
            (endpoint, header)
        }
    };
    if let Some(e) = &endpoint
        && let Err(m) = check_imds_url(e)
    {
        problem("endpoint", m);
    }
    if problems.len() > before {
        return None;
    }
    let unresolved = mi.source == IdentitySource::AppService && identity_header.is_none();
    if unresolved {
        return None;
    }
    Some(Credential::ManagedIdentity(ManagedIdentity {
        endpoint: endpoint?,
        client_id: mi.client_id.clone(),
        identity_header,
    }))
}

/// The managed identity endpoint: `https://`, or `http://` to a loopback host (a test double)
/// or a link-local one (IMDS itself, 169.254.169.254, which has no TLS).
fn check_imds_url(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|_| format!("{text:?} is not a URL"))?;
    let link_local = matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_link_local());
    if url.scheme() == "http" && link_local {
        return Ok(());
    }
    crate::settings::check_credential_url(text, false)
        .map(drop)
        .map_err(|m| format!("{m} or to the link-local metadata address"))
}

impl ConnectorSettings for MsGraphSettings {
    fn build(&self, cx: &BuildContext<'_>) -> Result<Arc<dyn Connector>, String> {
        if !self.credential_resolved && self.config.mode == Mode::Live {
            // Loaded without resolving secrets (an offline command): never poll live with an
            // empty secret.
            return Err("the msgraph credential was not resolved".into());
        }
        let mode = match cx.record {
            Some(recorder) => Mode::Record(recorder.clone()),
            None => self.config.mode.clone(),
        };
        let conn = MsGraphConnector::new(self.connector_config(cx.tenant, mode), cx.http.clone())
            .map_err(|e| format!("building the msgraph connector: {e}"))?;
        Ok(Arc::new(conn))
    }

    fn replays(&self) -> bool {
        matches!(self.config.mode, Mode::Replay(_))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MsGraphSettings, Vec<ConfigProblem>> {
        let env = |_: &str| None;
        let cx = SettingsContext {
            path: "tenants[0].connectors[0]",
            tenant: "t",
            env: &env,
            base_dir: None,
            resolve_secrets: true,
        };
        MsGraphSettings::parse(text.parse().unwrap(), &cx)
    }

    #[test]
    fn max_response_bytes_defaults_to_8_mib_and_must_be_positive() {
        let s = parse(r#"replay_dir = "d""#).unwrap();
        assert_eq!(s.config.max_response_bytes, 8 * 1024 * 1024);
        let s = parse("replay_dir = \"d\"\nmax_response_bytes = 1024").unwrap();
        assert_eq!(s.config.max_response_bytes, 1024);
        let cfg = s.connector_config("t", Mode::Live);
        assert_eq!(cfg.max_response_bytes, 1024);
        let problems = parse("replay_dir = \"d\"\nmax_response_bytes = 0").unwrap_err();
        assert_eq!(
            problems,
            vec![ConfigProblem::new(
                "tenants[0].connectors[0].max_response_bytes",
                "must be positive"
            )]
        );
        let problems = parse("replay_dir = \"d\"\nmax_response_bytes = -1").unwrap_err();
        assert_eq!(
            problems[0].path,
            "tenants[0].connectors[0].max_response_bytes"
        );
    }
}
