//! `kind = "msgraph"`: the connector table's keys, their validation, and the kind's registry
//! entry ([`MSGRAPH`]).
//!
//! Keys (besides `kind`, `schedule` and `poll_timeout`, which every connector has):
//! `tenant_id`, `client_id`, `client_secret` (a [`SecretRef`]), `authority`, `token_url`,
//! `graph_base`, `request_timeout`, `max_retries`, `max_retry_wait`, `max_response_bytes`,
//! `replay_dir`, and the conditional access exclusions the SCuBA checks accept: `break_glass =
//! { users = [...], groups = [...] }` (object ids, every check) and `scuba_exclusions."<policy
//! id>" = { users, groups }` (one check, e.g. `MS.AAD.3.2v1`); the principals allowed a
//! permanent privileged role assignment (MS.AAD.7.4v1): `permanent_assignments = { users,
//! groups }` (object ids). Documented
//! with their defaults in `config/example.toml`.
//!
//! Must not: do network IO or reveal the client secret (it is redacted in `Debug`).

use std::any::Any;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde::Deserialize;

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
    /// `Debug` redacts the secret). `mode` is [`Mode::Live`] or [`Mode::Replay`]
    /// (`replay_dir`, resolved against the configuration file's directory); `tenant_id` is
    /// empty when a replay omits it (the postured tenant id stands in at build); the client
    /// secret is empty in replay and when it was not resolved.
    pub config: MsGraphConfig,
    /// Whether the client secret was resolved ([`SettingsContext::resolve_secrets`]): a live
    /// connector loaded without it (an offline command) refuses to build.
    pub secret_resolved: bool,
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
        let raw: RawMsGraph = decode(cx.path, toml::Value::Table(table)).map_err(|p| vec![p])?;
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
            all: raw.break_glass.check(&cx.key("break_glass"), &mut problems),
            per_policy: BTreeMap::new(),
            permanent_assignments: raw
                .permanent_assignments
                .check(&cx.key("permanent_assignments"), &mut problems),
        };
        for (policy, declared) in raw.scuba_exclusions {
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
        let mode = match raw.replay_dir {
            Some(d) => Mode::Replay(cx.resolve_path(d)),
            None => Mode::Live,
        };
        let mut secret = None;
        if mode == Mode::Live {
            for (key, v) in [("tenant_id", &raw.tenant_id), ("client_id", &raw.client_id)] {
                if v.as_deref().is_none_or(str::is_empty) {
                    problems.push(ConfigProblem::new(
                        cx.key(key),
                        "required for a live connector",
                    ));
                }
            }
            match &raw.client_secret {
                None => problems.push(ConfigProblem::new(
                    cx.key("client_secret"),
                    "required for a live connector ({ env = \"VAR\" } or { file = \"PATH\" })",
                )),
                Some(_) if !cx.resolve_secrets => {}
                Some(r) => match r.resolve(cx.env) {
                    Ok(s) if s.expose_secret().is_empty() => problems.push(ConfigProblem::new(
                        cx.key("client_secret"),
                        "the secret is empty",
                    )),
                    Ok(s) => secret = Some(s),
                    Err(m) => problems.push(ConfigProblem::new(cx.key("client_secret"), m)),
                },
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(MsGraphSettings {
            secret_resolved: secret.is_some(),
            config: MsGraphConfig {
                tenant_id: raw.tenant_id.unwrap_or_default(),
                client_id: raw.client_id.unwrap_or_default(),
                client_secret: secret.unwrap_or_default(),
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

impl ConnectorSettings for MsGraphSettings {
    fn build(&self, cx: &BuildContext<'_>) -> Result<Arc<dyn Connector>, String> {
        if !self.secret_resolved && self.config.mode == Mode::Live {
            // Loaded without resolving secrets (an offline command): never poll live with an
            // empty secret.
            return Err("the msgraph client secret was not resolved".into());
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
