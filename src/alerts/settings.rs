//! `[alerts]` and `[history]` configuration: debounce windows, notifiers, routes, delivery
//! retries, and history retention. Decoded and validated by `crate::config` with key paths like
//! every other section; webhook secrets are references resolved at load and never printed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::regression::{DEFAULT_DEBOUNCE_OBSERVATIONS, Debounce, EventKind, Severity};
use postured_connectors::settings::{ConfigProblem, SecretRef};

/// Reads an environment variable (secret references).
type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// `[alerts]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Consecutive observations a credit drop must persist to be a regression (default 2).
    pub debounce_observations: u32,
    /// Per-action windows: `"action.id" = N`.
    pub debounce_per_action: BTreeMap<String, u32>,
    /// Delivery task settings.
    pub delivery: DeliveryConfig,
    /// Where notifications can go.
    pub notifiers: Vec<NotifierConfig>,
    /// Which events go to which notifiers. Every matching route applies.
    pub routes: Vec<RouteConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            debounce_observations: DEFAULT_DEBOUNCE_OBSERVATIONS,
            debounce_per_action: BTreeMap::new(),
            delivery: DeliveryConfig::default(),
            notifiers: Vec::new(),
            routes: Vec::new(),
        }
    }
}

/// `[alerts.delivery]`: the outbox delivery task.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// How often the task looks for due notifications.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Most notifications handled per round.
    pub batch_size: u32,
    /// First retry delay after a failed delivery; doubles per attempt (with jitter).
    #[serde(with = "humantime_serde")]
    pub backoff_initial: Duration,
    /// Cap of the retry delay.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Give up after this many attempts (the row is kept, marked failed); 0 retries forever.
    pub max_attempts: u32,
    /// Alertmanager only: firing alerts are re-posted this often (with `endsAt` four intervals
    /// ahead), as Prometheus does, so Alertmanager keeps them active until they resolve.
    #[serde(with = "humantime_serde")]
    pub resend_interval: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            batch_size: 100,
            backoff_initial: Duration::from_secs(5),
            backoff_max: Duration::from_secs(15 * 60),
            max_attempts: 0,
            resend_interval: Duration::from_secs(60),
        }
    }
}

/// Notifier kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifierKind {
    /// Prometheus Alertmanager API v2 (`url` is the Alertmanager base URL).
    Alertmanager,
    /// Generic JSON webhook, signed with HMAC-SHA256 when `secret` is set.
    Webhook,
    /// Slack incoming webhook.
    Slack,
    /// Microsoft Teams incoming webhook or Workflows URL (a message with an Adaptive Card).
    Teams,
}

impl NotifierKind {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifierKind::Alertmanager => "alertmanager",
            NotifierKind::Webhook => "webhook",
            NotifierKind::Slack => "slack",
            NotifierKind::Teams => "teams",
        }
    }
}

/// `[[alerts.notifiers]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifierConfig {
    /// Unique name, used by routes and as the `notifier` metric label.
    pub name: String,
    /// Kind.
    pub kind: NotifierKind,
    /// Alertmanager base URL (`http://alertmanager:9093`) or the webhook URL.
    pub url: String,
    /// Webhook only: the HMAC-SHA256 key, `{ env = "VAR" }` or `{ file = "/path" }`.
    #[serde(default)]
    pub secret: Option<SecretRef>,
    /// Per-request timeout.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// The resolved secret (never printed).
    #[serde(skip)]
    pub secret_value: Option<SecretString>,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// `[[alerts.routes]]`: events matching every given matcher go to `notifiers`. An empty matcher
/// matches everything.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteConfig {
    /// Severities (`info`, `warning`, `critical`).
    pub severities: Vec<String>,
    /// Tenant ids.
    pub tenants: Vec<String>,
    /// Event families (`regression`, `stale`, `collection_error`).
    pub kinds: Vec<String>,
    /// Notifier names.
    pub notifiers: Vec<String>,
}

const FAMILIES: [&str; 3] = ["regression", "stale", "collection_error"];

fn problem(path: impl Into<String>, message: impl Into<String>) -> ConfigProblem {
    ConfigProblem {
        path: path.into(),
        message: message.into(),
    }
}

impl AlertsConfig {
    /// The debounce settings.
    pub fn debounce(&self) -> Debounce {
        Debounce {
            observations: self.debounce_observations.max(1),
            per_action: self
                .debounce_per_action
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        }
    }

    /// The notifier with this name.
    pub fn notifier(&self, name: &str) -> Option<&NotifierConfig> {
        self.notifiers.iter().find(|n| n.name == name)
    }

    /// Names of the notifiers an event of this tenant, kind and severity goes to (each once, in
    /// notifier order).
    pub fn route(&self, tenant: &str, kind: EventKind, severity: Severity) -> Vec<String> {
        let mut names = BTreeSet::new();
        for r in &self.routes {
            let sev_ok =
                r.severities.is_empty() || r.severities.iter().any(|s| s == severity.as_str());
            let tenant_ok = r.tenants.is_empty() || r.tenants.iter().any(|t| t == tenant);
            let kind_ok = r.kinds.is_empty() || r.kinds.iter().any(|k| k == kind.family());
            if sev_ok && tenant_ok && kind_ok {
                names.extend(r.notifiers.iter().map(String::as_str));
            }
        }
        self.notifiers
            .iter()
            .filter(|n| names.contains(n.name.as_str()))
            .map(|n| n.name.clone())
            .collect()
    }

    /// Resolve webhook secrets and validate; problems carry `alerts.` key paths.
    pub fn resolve_and_validate(
        &mut self,
        env: &dyn Fn(&str) -> Option<String>,
        problems: &mut Vec<ConfigProblem>,
    ) {
        self.check(Some(env), problems);
    }

    /// Validate without reading any secret (for commands that deliver no alert).
    pub fn validate_unresolved(&mut self, problems: &mut Vec<ConfigProblem>) {
        self.check(None, problems);
    }

    /// Validate, resolving the webhook secrets through `env` when given.
    fn check(&mut self, env: Option<EnvLookup<'_>>, problems: &mut Vec<ConfigProblem>) {
        if self.debounce_observations == 0 {
            problems.push(problem(
                "alerts.debounce_observations",
                "must be at least 1",
            ));
        }
        for (action, n) in &self.debounce_per_action {
            if *n == 0 {
                problems.push(problem(
                    format!("alerts.debounce_per_action.{action:?}"),
                    "must be at least 1",
                ));
            }
        }
        let d = &self.delivery;
        if d.interval.is_zero() {
            problems.push(problem("alerts.delivery.interval", "must be positive"));
        }
        if d.batch_size == 0 {
            problems.push(problem("alerts.delivery.batch_size", "must be at least 1"));
        }
        if d.backoff_initial.is_zero() || d.backoff_initial > d.backoff_max {
            problems.push(problem(
                "alerts.delivery.backoff_initial",
                "must be positive and not above alerts.delivery.backoff_max",
            ));
        }
        if d.resend_interval.is_zero() {
            problems.push(problem(
                "alerts.delivery.resend_interval",
                "must be positive",
            ));
        }
        let mut names = BTreeSet::new();
        for (i, n) in self.notifiers.iter_mut().enumerate() {
            let path = format!("alerts.notifiers[{i}]");
            let name_ok = !n.name.is_empty()
                && n.name.len() <= 64
                && n.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !name_ok {
                problems.push(problem(
                    format!("{path}.name"),
                    "must be 1-64 characters of letters, digits, '_', '.', '-'",
                ));
            }
            if !names.insert(n.name.clone()) {
                problems.push(problem(
                    format!("{path}.name"),
                    format!("duplicate notifier name {:?}", n.name),
                ));
            }
            match reqwest::Url::parse(&n.url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => problems.push(problem(
                    format!("{path}.url"),
                    "must be an http:// or https:// URL",
                )),
            }
            if n.timeout.is_zero() {
                problems.push(problem(format!("{path}.timeout"), "must be positive"));
            }
            match (&n.secret, n.kind) {
                (Some(_), k) if k != NotifierKind::Webhook => problems.push(problem(
                    format!("{path}.secret"),
                    "only webhook notifiers sign their requests",
                )),
                (Some(r), _) => match env.map(|env| r.resolve(env)) {
                    Some(Ok(s)) => n.secret_value = Some(s),
                    Some(Err(m)) => problems.push(problem(format!("{path}.secret"), m)),
                    None => {}
                },
                (None, _) => {}
            }
        }
        for (i, r) in self.routes.iter().enumerate() {
            let path = format!("alerts.routes[{i}]");
            for s in &r.severities {
                if Severity::parse(s).is_none() {
                    problems.push(problem(
                        format!("{path}.severities"),
                        format!("unknown severity {s:?} (known: info, warning, critical)"),
                    ));
                }
            }
            for k in &r.kinds {
                if !FAMILIES.contains(&k.as_str()) {
                    problems.push(problem(
                        format!("{path}.kinds"),
                        format!("unknown kind {k:?} (known: regression, stale, collection_error)"),
                    ));
                }
            }
            if r.notifiers.is_empty() {
                problems.push(problem(
                    format!("{path}.notifiers"),
                    "a route needs at least one notifier",
                ));
            }
            for n in &r.notifiers {
                if !names.contains(n) {
                    problems.push(problem(
                        format!("{path}.notifiers"),
                        format!("no notifier named {n:?}"),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (AlertsConfig, Vec<ConfigProblem>) {
        let value: toml::Value = toml::from_str(text).unwrap();
        let mut cfg: AlertsConfig = value.try_into().unwrap();
        let mut problems = Vec::new();
        let env = |k: &str| (k == "HOOK_KEY").then(|| "s3cret".to_string());
        cfg.resolve_and_validate(&env, &mut problems);
        (cfg, problems)
    }

    #[test]
    fn routes_match_severity_tenant_and_kind() {
        let (cfg, problems) = parse(
            r#"
            [[notifiers]]
            name = "am"
            kind = "alertmanager"
            url = "http://127.0.0.1:9093"
            [[notifiers]]
            name = "hook"
            kind = "webhook"
            url = "https://example.org/hook"
            secret = { env = "HOOK_KEY" }
            [[routes]]
            notifiers = ["am"]
            [[routes]]
            severities = ["critical"]
            tenants = ["t1"]
            kinds = ["regression"]
            notifiers = ["hook"]
            "#,
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert!(cfg.notifiers[1].secret_value.is_some());
        assert!(
            !format!("{cfg:?}").contains("s3cret"),
            "secret leaked into Debug"
        );
        assert_eq!(
            cfg.route("t1", EventKind::Regression, Severity::Critical),
            ["am", "hook"]
        );
        assert_eq!(
            cfg.route("t1", EventKind::Recovery, Severity::Critical),
            ["am", "hook"]
        );
        assert_eq!(
            cfg.route("t2", EventKind::Regression, Severity::Critical),
            ["am"]
        );
        assert_eq!(cfg.route("t1", EventKind::Stale, Severity::Warning), ["am"]);
        assert_eq!(cfg.debounce().window("x"), 2);
    }

    #[test]
    fn every_problem_has_a_key_path() {
        let (_, problems) = parse(
            r#"
            debounce_observations = 0
            debounce_per_action = { "a.b" = 0 }
            [[notifiers]]
            name = "am"
            kind = "slack"
            url = "ftp://x"
            secret = { env = "HOOK_KEY" }
            [[notifiers]]
            name = "am"
            kind = "webhook"
            url = "http://x"
            secret = { env = "MISSING" }
            [[routes]]
            severities = ["loud"]
            kinds = ["nope"]
            notifiers = ["ghost"]
            "#,
        );
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        for expected in [
            "alerts.debounce_observations",
            "alerts.debounce_per_action.\"a.b\"",
            "alerts.notifiers[0].url",
            "alerts.notifiers[0].secret",
            "alerts.notifiers[1].name",
            "alerts.notifiers[1].secret",
            "alerts.routes[0].severities",
            "alerts.routes[0].kinds",
            "alerts.routes[0].notifiers",
        ] {
            assert!(paths.contains(&expected), "{expected} missing in {paths:?}");
        }
        let text = format!("{problems:?}");
        assert!(!text.contains("s3cret"));
    }
}
