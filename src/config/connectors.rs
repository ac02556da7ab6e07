//! `[[tenants]]` and their `[[tenants.connectors]]` tables: the keys every connector has
//! (`kind`, `schedule`, `poll_timeout`) are decoded here; the rest of each table goes to its
//! registered kind (`crate::registry`), which returns typed settings or problems with their key
//! paths.
//!
//! Must not: know any connector kind by name.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use postured_connectors::ConnectorSettings;
use postured_connectors::settings::{SettingsContext, decode};
use serde::Deserialize;

use super::{ConfigProblem, problem};
use crate::registry::Registry;

/// `[[tenants]]`: one organisation whose configuration is polled.
#[derive(Debug, Clone)]
pub struct TenantConfig {
    /// Stable id, used in metric labels and the store (`[a-z0-9_.-]`, at most 64 chars).
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// The tenant's connectors.
    pub connectors: Vec<ConnectorConfig>,
}

impl TenantConfig {
    /// The catalog scopes of the tenant's actions: each connector's kind, and
    /// [`catalog_scope`] of each catalog file a connector names. An action of another scope
    /// is out of scope for the tenant (`crate::evaluation::ActionDef::kind`).
    pub fn scopes(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in &self.connectors {
            let scopes = std::iter::once(c.kind.to_owned())
                .chain(c.settings.catalog().map(|p| catalog_scope(&p)));
            for s in scopes {
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
        out
    }
}

/// The scope of the actions of a catalog file a connector names (`catalog = "PATH"`):
/// `catalog:<canonical path>`, the same for every connector naming the file.
pub fn catalog_scope(path: &Path) -> String {
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    format!("catalog:{}", canonical.display())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    connectors: Vec<toml::Value>,
}

/// One connector of one tenant.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    /// Cron expression (seconds field first, as the `cron` crate reads it:
    /// `sec min hour day-of-month month day-of-week [year]`), e.g. `0 */15 * * * *`.
    pub schedule: cron::Schedule,
    /// The schedule as written.
    pub schedule_text: String,
    /// Per-connector poll deadline overriding `[scheduler] poll_timeout`.
    pub poll_timeout: Option<Duration>,
    /// The registered connector kind (`msgraph`).
    pub kind: &'static str,
    /// The connector's id within its tenant, unique there: its kind (`msgraph`), or
    /// `<kind>.<name>` for kinds whose connectors are named (`http_json.github_org`; see
    /// `ConnectorSettings::instance`). It is the `connector` of its stored polls and gaps and
    /// of its metrics, and the namespace of its signals.
    pub id: String,
    /// Kind-specific settings, typed and validated by the kind (secrets resolved).
    pub settings: Arc<dyn ConnectorSettings>,
}

impl ConnectorConfig {
    /// Connector kind name (`msgraph`).
    pub fn kind_name(&self) -> &'static str {
        self.kind
    }
}

/// The keys every connector table has; the rest belongs to its kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommonConnectorKeys {
    schedule: String,
    #[serde(default, with = "humantime_serde")]
    poll_timeout: Option<Duration>,
}

/// What parsing a connector table needs besides the table: secret lookup, the registered
/// kinds, the directory relative paths are resolved against, and whether the connectors'
/// secrets are resolved (`super::Secrets::connectors`).
pub(super) type ConnectorContext<'a> = (
    &'a dyn Fn(&str) -> Option<String>,
    &'a Registry,
    Option<&'a Path>,
    bool,
);

pub(super) fn parse_tenant(
    path: &str,
    value: &toml::Value,
    cx: ConnectorContext<'_>,
    problems: &mut Vec<ConfigProblem>,
) -> Option<TenantConfig> {
    let raw: RawTenant = match decode(path, value.clone()) {
        Ok(r) => r,
        Err(p) => {
            problems.push(p);
            return None;
        }
    };
    let id_ok = !raw.id.is_empty()
        && raw.id.len() <= 64
        && raw
            .id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c));
    if !id_ok {
        problems.push(problem(
            format!("{path}.id"),
            format!(
                "{:?} must be 1-64 characters of a-z, 0-9, '_', '.', '-'",
                raw.id
            ),
        ));
    }
    if raw.connectors.is_empty() {
        problems.push(problem(
            format!("{path}.connectors"),
            "a tenant needs at least one connector",
        ));
    }
    let mut connectors: Vec<ConnectorConfig> = Vec::new();
    for (j, c) in raw.connectors.into_iter().enumerate() {
        let cpath = format!("{path}.connectors[{j}]");
        if let Some(c) = parse_connector(&cpath, &raw.id, c, cx, problems) {
            // Polls, gaps and metrics are kept per connector id: two connectors with one id
            // would overwrite each other's.
            if connectors.iter().any(|o| o.id == c.id) {
                let what = match c.settings.instance() {
                    Some(name) => format!("a second {} connector named {name:?}", c.kind),
                    None => format!(
                        "a second {} connector: a tenant has at most one of this kind",
                        c.kind
                    ),
                };
                problems.push(problem(cpath, what));
                continue;
            }
            connectors.push(c);
        }
    }
    Some(TenantConfig {
        id: raw.id,
        name: raw.name,
        connectors,
    })
}

/// One `[[tenants.connectors]]` table: the common keys here, the rest by its registered kind.
fn parse_connector(
    path: &str,
    tenant: &str,
    value: toml::Value,
    (env, registry, base_dir, resolve_secrets): ConnectorContext<'_>,
    problems: &mut Vec<ConfigProblem>,
) -> Option<ConnectorConfig> {
    let toml::Value::Table(mut table) = value else {
        problems.push(problem(path, "must be a table"));
        return None;
    };
    let kind = match table.remove("kind") {
        Some(toml::Value::String(k)) => match registry.get(&k) {
            Some(kind) => kind.clone(),
            None => {
                problems.push(problem(
                    format!("{path}.kind"),
                    format!(
                        "unknown connector kind {k:?} (known: {})",
                        registry.names().join(", ")
                    ),
                ));
                return None;
            }
        },
        Some(_) | None => {
            problems.push(problem(format!("{path}.kind"), "missing connector kind"));
            return None;
        }
    };
    let mut common = toml::Table::new();
    for key in ["schedule", "poll_timeout"] {
        if let Some(v) = table.remove(key) {
            common.insert(key.to_owned(), v);
        }
    }
    let common: Option<CommonConnectorKeys> = match decode(path, toml::Value::Table(common)) {
        Ok(c) => Some(c),
        Err(p) => {
            problems.push(p);
            None
        }
    };
    let schedule = common
        .as_ref()
        .and_then(|c| match cron::Schedule::from_str(&c.schedule) {
            // A valid expression may still name no instant to come (`0 0 0 30 2 *`, a past
            // year): such a connector would never poll.
            Ok(s) if s.upcoming(chrono::Utc).next().is_none() => {
                problems.push(problem(
                    format!("{path}.schedule"),
                    format!("{:?} never fires (no future time matches it)", c.schedule),
                ));
                None
            }
            Ok(s) => Some(s),
            Err(e) => {
                problems.push(problem(
                    format!("{path}.schedule"),
                    format!(
                        "{:?} is not a cron expression (sec min hour dom month dow): {e}",
                        c.schedule
                    ),
                ));
                None
            }
        });
    let cx = SettingsContext {
        path,
        tenant,
        env,
        base_dir,
        resolve_secrets,
    };
    let settings = match kind.settings(table, &cx) {
        Ok(s) => Some(s),
        Err(mut p) => {
            problems.append(&mut p);
            None
        }
    };
    let common = common?;
    let settings = settings?;
    let id = match settings.instance() {
        Some(name) => format!("{}.{name}", kind.name()),
        None => kind.name().to_owned(),
    };
    Some(ConnectorConfig {
        schedule: schedule?,
        schedule_text: common.schedule,
        poll_timeout: common.poll_timeout,
        kind: kind.name(),
        id,
        settings,
    })
}
