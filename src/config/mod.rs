//! Configuration: a TOML file, then environment overrides, then validation.
//!
//! Loading never stops at the first problem: syntax aside, every section, tenant and connector
//! is decoded on its own and then validated, and every problem is returned at once with its key
//! path (`tenants[1].connectors[0].schedule: ...`). Secrets are references (`{ env = "VAR" }` or
//! `{ file = "/run/secrets/x" }`) resolved at load into [`SecretString`]s, but only the groups
//! a command uses ([`Secrets`]: `run` and `check-config` resolve all of them, `once` and
//! `record` the connectors', offline commands such as `export`, `history` and `template` none);
//! the references of the other groups are still checked for shape, never read. Secrets never
//! appear in `Debug` output, errors or logs. This module does no network IO.
//!
//! Environment overrides: `POSTURED__SECTION__KEY=value` sets `section.key` (segments are
//! lower-cased; a numeric segment indexes an array, e.g.
//! `POSTURED__TENANTS__0__CONNECTORS__0__SCHEDULE`). The value is read as a TOML value when it
//! parses as one (`42`, `true`, `"x"`), otherwise as a string.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use postured_connectors::settings::decode;
use secrecy::SecretString;
use serde::de::DeserializeOwned;

use crate::registry::Registry;

mod connectors;
mod overlay;
mod sections;

pub use connectors::{ConnectorConfig, TenantConfig, catalog_scope};
pub use sections::{
    CatalogConfig, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_REQUEST_TIMEOUT,
    EvidenceConfig, EvidenceStorage, HistoryConfig, LogConfig, LogFormat, MetricsConfig,
    OIDC_ALGORITHMS, OidcConfig, SchedulerConfig, ServerConfig, SignInToken, StoreConfig,
};

/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "POSTURED__";

pub use postured_connectors::settings::{ConfigProblem, SecretRef};

/// Which groups of secret references loading resolves. A command resolves only the secrets it
/// uses; the references of the other groups are checked for shape but never read, so an offline
/// command works without them (and a missing one is no problem for it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Secrets {
    /// `[server] api_token` (into [`Config::api_token`]).
    pub api_token: bool,
    /// The webhook secrets of `[[alerts.notifiers]]`.
    pub alerts: bool,
    /// The connectors' secrets (e.g. `client_secret` of `kind = "msgraph"`).
    pub connectors: bool,
}

impl Secrets {
    /// Every secret (`run`, `check-config`).
    pub const ALL: Secrets = Secrets {
        api_token: true,
        alerts: true,
        connectors: true,
    };
    /// No secret (commands that only read the store and files).
    pub const NONE: Secrets = Secrets {
        api_token: false,
        alerts: false,
        connectors: false,
    };
    /// The connectors' secrets only (`once`, `record`: they poll, but serve nothing and deliver
    /// no alert).
    pub const CONNECTORS: Secrets = Secrets {
        api_token: false,
        alerts: false,
        connectors: true,
    };
}

/// Every problem found in a configuration, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The source file (or `<string>`).
    pub source_name: String,
    /// All problems, in file order where possible.
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} problem(s) in {}:",
            self.problems.len(),
            self.source_name
        )?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

/// The whole, validated configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `[server]`: listener, metrics exposure, API token reference.
    pub server: ServerConfig,
    /// `[store]`: database URL and pool size.
    pub store: StoreConfig,
    /// `[scheduler]`: concurrency, deadlines, jitter, backoff, signal lifetime.
    pub scheduler: SchedulerConfig,
    /// `[metrics]`: per-action series.
    pub metrics: MetricsConfig,
    /// `[log]`: format and filter.
    pub log: LogConfig,
    /// `[catalog]`: a catalog file replacing the built-in ones.
    pub catalog: CatalogConfig,
    /// `[[tenants]]` with their connectors, in file order.
    pub tenants: Vec<TenantConfig>,
    /// `[model]`: the default assessment.
    pub model: crate::model::settings::ModelSettings,
    /// `[templates]`: extra template directories.
    pub templates: crate::model::settings::TemplatesConfig,
    /// `[[groups]]`.
    pub groups: Vec<crate::model::settings::GroupConfig>,
    /// `[[assessments]]`.
    pub assessments: Vec<crate::model::settings::AssessmentConfig>,
    /// `[alerts]`: regression debounce, notifiers, routes, delivery (secrets resolved).
    pub alerts: crate::alerts::settings::AlertsConfig,
    /// `[history]`: retention of history rows.
    pub history: HistoryConfig,
    /// `[evidence]`: evidence files (limits, types, storage).
    pub evidence: EvidenceConfig,
    /// Resolved `[server] api_token`; `None` when unset or not resolved ([`Config::secrets`]).
    pub api_token: Option<SecretString>,
    /// Resolved `[server.oidc] client_secret` (resolved with the `api_token` group).
    pub oidc_client_secret: Option<SecretString>,
    /// Resolved `[evidence] pseudonym_key` (with the connectors' secrets, by the commands that
    /// poll); `None` when unset or not resolved.
    pub pseudonym_key: Option<SecretString>,
    /// The secret groups resolved at load.
    pub secrets: Secrets,
    /// The connector kinds this configuration was parsed against (their catalogs make the
    /// built-in catalog).
    pub registry: Registry,
}

impl Config {
    /// Load `path`, apply `POSTURED__*` overrides from the process environment and validate,
    /// resolving every secret. Relative paths inside the file (replay dirs, catalog, SQLite
    /// file) are resolved against the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::load_resolving(path, Secrets::ALL)
    }

    /// [`Config::load`] resolving only the `secrets` groups.
    pub fn load_resolving(path: &Path, secrets: Secrets) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source_name: path.display().to_string(),
            problems: vec![ConfigProblem {
                path: String::new(),
                message: format!("cannot read file: {e}"),
            }],
        })?;
        let env: Vec<(String, String)> = std::env::vars().collect();
        let lookup = |k: &str| std::env::var(k).ok();
        let base = path.parent().unwrap_or(Path::new("."));
        let mut cfg = Self::parse_resolving(
            &text,
            &env,
            &lookup,
            &Registry::builtin(),
            Some(base),
            secrets,
        )
        .map_err(|problems| ConfigError {
            source_name: path.display().to_string(),
            problems,
        })?;
        cfg.resolve_relative_paths(base);
        Ok(cfg)
    }

    /// Parse and validate TOML text. `overrides` are `(name, value)` environment pairs (only
    /// those starting with [`ENV_PREFIX`] are used); `env` resolves secret references.
    pub fn parse(
        text: &str,
        overrides: &[(String, String)],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, Vec<ConfigProblem>> {
        Self::parse_with(text, overrides, env, &Registry::builtin(), None)
    }

    /// [`Config::parse`] against the connector kinds of `registry`; relative paths inside
    /// connector tables (replay directories) are resolved against `base_dir` when given.
    pub fn parse_with(
        text: &str,
        overrides: &[(String, String)],
        env: &dyn Fn(&str) -> Option<String>,
        registry: &Registry,
        base_dir: Option<&Path>,
    ) -> Result<Config, Vec<ConfigProblem>> {
        Self::parse_resolving(text, overrides, env, registry, base_dir, Secrets::ALL)
    }

    /// [`Config::parse_with`] resolving only the `secrets` groups (the others' references are
    /// checked for shape, never read).
    pub fn parse_resolving(
        text: &str,
        overrides: &[(String, String)],
        env: &dyn Fn(&str) -> Option<String>,
        registry: &Registry,
        base_dir: Option<&Path>,
        secrets: Secrets,
    ) -> Result<Config, Vec<ConfigProblem>> {
        let mut root: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            vec![ConfigProblem {
                path: String::new(),
                message: format!("invalid TOML: {}", e.message().trim()),
            }]
        })?;
        let mut problems = Vec::new();
        overlay::apply_overrides(&mut root, overrides, &mut problems);

        let mut cfg = Config {
            registry: registry.clone(),
            secrets,
            ..Config::default()
        };
        let known = [
            "server",
            "store",
            "scheduler",
            "metrics",
            "log",
            "catalog",
            "tenants",
            "model",
            "templates",
            "groups",
            "assessments",
            "alerts",
            "history",
            "evidence",
        ];
        for key in root.keys() {
            if !known.contains(&key.as_str()) {
                problems.push(problem(key, "unknown section or key"));
            }
        }
        section(&root, "server", &mut cfg.server, &mut problems);
        section(&root, "store", &mut cfg.store, &mut problems);
        section(&root, "scheduler", &mut cfg.scheduler, &mut problems);
        section(&root, "metrics", &mut cfg.metrics, &mut problems);
        section(&root, "log", &mut cfg.log, &mut problems);
        section(&root, "catalog", &mut cfg.catalog, &mut problems);
        section(&root, "model", &mut cfg.model, &mut problems);
        section(&root, "templates", &mut cfg.templates, &mut problems);
        section(&root, "groups", &mut cfg.groups, &mut problems);
        section(&root, "assessments", &mut cfg.assessments, &mut problems);
        section(&root, "alerts", &mut cfg.alerts, &mut problems);
        section(&root, "history", &mut cfg.history, &mut problems);
        section(&root, "evidence", &mut cfg.evidence, &mut problems);
        if secrets.alerts {
            cfg.alerts.resolve_and_validate(env, &mut problems);
        } else {
            cfg.alerts.validate_unresolved(&mut problems);
        }
        cfg.history.validate(&mut problems);
        cfg.evidence.validate(&mut problems);
        cfg.store.validate(&mut problems);

        if let Some(r) = &cfg.server.api_token
            && secrets.api_token
        {
            match r.resolve(env).and_then(check_api_token) {
                Ok(s) => cfg.api_token = Some(s),
                Err(m) => problems.push(problem("server.api_token", m)),
            }
        }
        if let Some(r) = cfg
            .server
            .oidc
            .as_ref()
            .and_then(|o| o.client_secret.as_ref())
            && secrets.api_token
        {
            match r.resolve(env) {
                Ok(s) => cfg.oidc_client_secret = Some(s),
                Err(m) => problems.push(problem("server.oidc.client_secret", m)),
            }
        }
        if let Some(r) = &cfg.evidence.pseudonym_key
            && secrets.connectors
        {
            match r.resolve(env).and_then(check_pseudonym_key) {
                Ok(s) => cfg.pseudonym_key = Some(s),
                Err(m) => problems.push(problem("evidence.pseudonym_key", m)),
            }
        }
        cfg.validate_sections(&mut problems);

        match root.get("tenants") {
            None => {}
            Some(toml::Value::Array(tenants)) => {
                for (i, t) in tenants.iter().enumerate() {
                    let path = format!("tenants[{i}]");
                    let cx = (env, registry, base_dir, secrets.connectors);
                    if let Some(t) = connectors::parse_tenant(&path, t, cx, &mut problems) {
                        cfg.tenants.push(t);
                    }
                }
            }
            Some(_) => problems.push(problem(
                "tenants",
                "must be an array of tables ([[tenants]])",
            )),
        }
        let mut seen = BTreeSet::new();
        for (i, t) in cfg.tenants.iter().enumerate() {
            if !seen.insert(t.id.clone()) {
                problems.push(problem(
                    format!("tenants[{i}].id"),
                    format!("duplicate tenant id {:?}", t.id),
                ));
            }
        }
        // Template ids are checked once every source of templates is known (built-ins,
        // `[templates] dirs` and templates imported into the store): see
        // `Config::unknown_templates` and `crate::assembly::unknown_templates`.
        cfg.validate_model(None, &mut problems);
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(problems)
        }
    }

    /// `[[assessments]]` entries whose template is not among `known` template ids, each with its
    /// key path (`assessments[2].template`). Meant for a configuration that parsed, whose other
    /// model problems are therefore already empty.
    pub fn unknown_templates(
        &self,
        known: &std::collections::BTreeSet<String>,
    ) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        self.validate_model(Some(known), &mut problems);
        problems
    }

    /// Problems of `[[groups]]` and `[[assessments]]` (see `crate::model::settings::validate`).
    fn validate_model(
        &self,
        templates: Option<&std::collections::BTreeSet<String>>,
        problems: &mut Vec<ConfigProblem>,
    ) {
        let tenants: Vec<&str> = self.tenants.iter().map(|t| t.id.as_str()).collect();
        for (path, message) in
            crate::model::settings::validate(&tenants, &self.groups, &self.assessments, templates)
        {
            problems.push(problem(path, message));
        }
    }

    /// The active assessments: `[[assessments]]` plus the default one per tenant.
    pub fn active_assessments(&self) -> Vec<crate::model::Assessment> {
        let tenants: Vec<&str> = self.tenants.iter().map(|t| t.id.as_str()).collect();
        crate::model::settings::assessments(&self.model, &tenants, &self.assessments)
    }

    fn validate_sections(&self, problems: &mut Vec<ConfigProblem>) {
        if SocketAddr::from_str(&self.server.listen).is_err() {
            problems.push(problem(
                "server.listen",
                format!("{:?} is not an IP:port address", self.server.listen),
            ));
        }
        self.server.validate(problems);
        let url = &self.store.url;
        if url.trim().is_empty() {
            problems.push(problem("store.url", "must not be empty"));
        } else if url.contains("://")
            && !["sqlite:", "postgres:", "postgresql:"]
                .iter()
                .any(|s| url.starts_with(s))
        {
            problems.push(problem(
                "store.url",
                "unsupported scheme (use sqlite://PATH or postgres://...)",
            ));
        }
        if self.store.max_connections == 0 {
            problems.push(problem("store.max_connections", "must be at least 1"));
        }
        let s = &self.scheduler;
        if s.max_concurrent_polls == 0 {
            problems.push(problem(
                "scheduler.max_concurrent_polls",
                "must be at least 1",
            ));
        }
        if s.poll_timeout.is_zero() {
            problems.push(problem("scheduler.poll_timeout", "must be positive"));
        }
        if s.signal_ttl_polls == 0 {
            problems.push(problem("scheduler.signal_ttl_polls", "must be at least 1"));
        }
        if s.backoff_initial.is_zero() || s.backoff_initial > s.backoff_max {
            problems.push(problem(
                "scheduler.backoff_initial",
                "must be positive and not above scheduler.backoff_max",
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            problems.push(problem(
                "log.level",
                format!("{:?} is not a valid filter directive", self.log.level),
            ));
        }
    }

    fn resolve_relative_paths(&mut self, base: &Path) {
        let join = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(p) = self.catalog.path.as_mut() {
            join(p);
        }
        for p in &mut self.templates.dirs {
            join(p);
        }
        if let Some(p) = self.evidence.path.as_mut() {
            join(p);
        }
        let url = &self.store.url;
        let (prefix, rest) = match url.strip_prefix("sqlite://") {
            Some(rest) => ("sqlite://", rest),
            None if !url.contains("://") && !url.starts_with("sqlite:") => ("", url.as_str()),
            None => return,
        };
        let rest = rest.to_owned();
        let (file, query) = rest.split_once('?').unwrap_or((&rest, ""));
        if file.is_empty() || file == ":memory:" || Path::new(file).is_absolute() {
            return;
        }
        let joined = base.join(file);
        self.store.url = if query.is_empty() {
            format!("{prefix}{}", joined.display())
        } else {
            format!("{prefix}{}?{query}", joined.display())
        };
    }

    /// The configured tenant with this id.
    pub fn tenant(&self, id: &str) -> Option<&TenantConfig> {
        self.tenants.iter().find(|t| t.id == id)
    }
}

/// A resolved `[server] api_token` must be a non-empty RFC 6750 `b64token` (letters, digits,
/// `-._~+/`, then `=` padding): the exact string a client sends after `Bearer `, so a stray
/// space or newline in a secret file cannot make a token nobody can present. The message never
/// contains the token.
/// Fewest characters of `[evidence] pseudonym_key`.
pub const MIN_PSEUDONYM_KEY_CHARS: usize = 32;

fn check_pseudonym_key(key: SecretString) -> Result<SecretString, String> {
    use secrecy::ExposeSecret;
    if key.expose_secret().chars().count() >= MIN_PSEUDONYM_KEY_CHARS {
        Ok(key)
    } else {
        Err(format!(
            "the key must have at least {MIN_PSEUDONYM_KEY_CHARS} characters"
        ))
    }
}

fn check_api_token(token: SecretString) -> Result<SecretString, String> {
    use secrecy::ExposeSecret;
    let t = token.expose_secret();
    let body = t.trim_end_matches('=');
    let ok = !body.is_empty()
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~+/".contains(c));
    if ok {
        Ok(token)
    } else if t.is_empty() {
        Err("the token is empty".into())
    } else {
        Err(
            "the token must be an RFC 6750 b64token (letters, digits, '-._~+/', then '=' \
             padding): no spaces, line breaks or other characters"
                .into(),
        )
    }
}

fn problem(path: impl Into<String>, message: impl Into<String>) -> ConfigProblem {
    ConfigProblem {
        path: path.into(),
        message: message.into(),
    }
}

/// Decode `root[name]` into `out` (keeping defaults when absent), recording problems.
fn section<T: DeserializeOwned>(
    root: &toml::Table,
    name: &str,
    out: &mut T,
    problems: &mut Vec<ConfigProblem>,
) {
    if let Some(v) = root.get(name) {
        match decode::<T>(name, v.clone()) {
            Ok(t) => *out = t,
            Err(p) => problems.push(p),
        }
    }
}

/// A fully commented example configuration (`postured print-config`); the same text as
/// `config/example.toml`.
pub const EXAMPLE: &str = include_str!("../../config/example.toml");

#[cfg(test)]
mod tests {
    use super::*;
    use postured_connectors::msgraph::MsGraphSettings;
    use postured_connectors::record::Mode;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn example_config_parses() {
        let env = |k: &str| (k == "POSTURED_CONTOSO_CLIENT_SECRET").then(|| "s3cret".to_owned());
        let cfg = Config::parse(EXAMPLE, &[], &env).expect("example.toml is valid");
        assert_eq!(cfg.tenants.len(), 2);
        assert_eq!(cfg.tenants[0].connectors[0].kind_name(), "msgraph");
        assert_eq!(cfg.assessments.len(), 2);
        assert_eq!(cfg.groups[0].id, "eu");
        // Two configured assessments plus one default assessment per tenant.
        assert_eq!(cfg.active_assessments().len(), 4);
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("s3cret"), "secret leaked into Debug: {dbg}");
    }

    #[test]
    fn demo_config_parses() {
        let text = include_str!("../../config/demo.toml");
        let cfg = Config::parse(text, &[], &no_env).expect("demo.toml is valid");
        let settings = cfg.tenants[0].connectors[0].settings.as_any();
        assert!(matches!(
            settings.downcast_ref::<MsGraphSettings>(),
            Some(g) if matches!(g.config.mode, Mode::Replay(_))
        ));
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let text = r#"
            bogus = 1
            [server]
            listen = "not an address"
            [scheduler]
            max_concurrent_polls = 0
            poll_timeout = "soon"
            [[tenants]]
            id = "Bad Id"
            [[tenants.connectors]]
            kind = "msgraph"
            schedule = "every minute"
            client_id = "x"
            client_secret = { env = "MISSING_SECRET" }
            [[tenants]]
            id = "ok"
            [[tenants.connectors]]
            kind = "okta2"
            schedule = "0 * * * * *"
        "#;
        let problems = Config::parse(text, &[], &no_env).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        for want in [
            "bogus",
            "server.listen",
            "scheduler.poll_timeout",
            "tenants[0].id",
            "tenants[0].connectors[0].schedule",
            "tenants[0].connectors[0].tenant_id",
            "tenants[0].connectors[0].client_secret",
            "tenants[1].connectors[0].kind",
        ] {
            assert!(paths.contains(&want), "missing {want} in {paths:?}");
        }
        let secret_problem = problems
            .iter()
            .find(|p| p.path == "tenants[0].connectors[0].client_secret")
            .unwrap();
        assert!(secret_problem.message.contains("MISSING_SECRET"));
    }

    #[tokio::test]
    async fn template_dirs_are_read_to_check_assessment_templates() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tpl")).unwrap();
        std::fs::write(
            dir.path().join("tpl/acme.toml"),
            r#"
id = "acme"
title = "ACME"
certification = "ACME"
[[controls]]
id = "AC-1"
family = "Access"
title = "Multifactor everywhere"
actions = ["msgraph.mfa.all_users"]
"#,
        )
        .unwrap();
        let text = r#"
            [store]
            url = "sqlite://never-created.db"
            [templates]
            dirs = ["tpl"]
            [[tenants]]
            id = "t"
              [[tenants.connectors]]
              kind = "msgraph"
              schedule = "0 * * * * *"
              replay_dir = "demo"
            [[assessments]]
            id = "t-acme"
            tenant = "t"
            template = "acme"
            [[assessments]]
            id = "t-missing"
            tenant = "t"
            template = "missing"
        "#;
        let path = dir.path().join("postured.toml");
        std::fs::write(&path, text).unwrap();
        // Parsing leaves template ids alone: they may live in the store.
        let cfg = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.templates.dirs, [dir.path().join("tpl")]);
        // Built-ins and directory templates are known; the store does not exist, so it is not
        // created just to look for imported templates.
        let problems = crate::assembly::unknown_templates(&cfg).await.unwrap();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["assessments[1].template"], "{problems:?}");
        assert!(!dir.path().join("never-created.db").exists());
        std::fs::write(&path, text.replace("\"missing\"", "\"gdpr\"")).unwrap();
        let cfg = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            crate::assembly::unknown_templates(&cfg)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn model_problems_are_reported_with_their_paths() {
        let text = r#"
            [model]
            default_assessment = "yes"
            [[tenants]]
            id = "t"
            [[groups]]
            id = "g"
            [[assessments]]
            id = "a"
            tenant = "t"
            template = "gdpr"
            group = "g"
            [[assessments]]
            id = "b"
            tenant = "nobody"
            template = "gdpr"
            group = "g"
            [[assessments]]
            id = "c"
            tenant = "t"
            template = "gdpr"
            group = "g"
            [[assessments]]
            id = "d"
            tenant = "t"
            template = "no-such-template"
            group = "nope"
        "#;
        let problems = Config::parse(text, &[], &no_env).unwrap_err();
        let paths: Vec<&str> = problems
            .iter()
            .map(|p| p.path.as_str())
            .filter(|p| !p.starts_with("tenants"))
            .collect();
        assert_eq!(
            paths,
            [
                "model.default_assessment",
                "assessments[1].tenant",
                "assessments[2].template",
                "assessments[3].group",
            ],
            "{problems:#?}"
        );
    }

    #[test]
    fn env_overrides_apply_by_path() {
        let text = r#"
            [[tenants]]
            id = "a"
            [[tenants.connectors]]
            kind = "msgraph"
            schedule = "0 * * * * *"
            replay_dir = "x"
        "#;
        let overrides = vec![
            (
                "POSTURED__SERVER__LISTEN".to_owned(),
                "0.0.0.0:1234".to_owned(),
            ),
            (
                "POSTURED__SCHEDULER__MAX_CONCURRENT_POLLS".to_owned(),
                "3".to_owned(),
            ),
            (
                "POSTURED__TENANTS__0__CONNECTORS__0__SCHEDULE".to_owned(),
                "0 */5 * * * *".to_owned(),
            ),
            ("UNRELATED".to_owned(), "1".to_owned()),
        ];
        let cfg = Config::parse(text, &overrides, &no_env).unwrap();
        assert_eq!(cfg.server.listen, "0.0.0.0:1234");
        assert_eq!(cfg.scheduler.max_concurrent_polls, 3);
        assert_eq!(cfg.tenants[0].connectors[0].schedule_text, "0 */5 * * * *");
    }

    #[test]
    fn secret_from_file_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s");
        std::fs::write(&f, "abc\n").unwrap();
        let r = SecretRef::File { file: f };
        use secrecy::ExposeSecret;
        assert_eq!(r.resolve(&no_env).unwrap().expose_secret(), "abc");
    }

    /// Issue 10 item 3: the msgraph credential problems (several credentials, an unreadable
    /// certificate, an unset federated token variable, a plain-http managed identity endpoint)
    /// are reported with their key paths, together with the file's other problems.
    #[test]
    fn msgraph_credential_problems_are_reported_with_the_others() {
        let text = r#"
            [server]
            max_connections = 0
            [[tenants]]
            id = "a"
              [[tenants.connectors]]
              kind = "msgraph"
              schedule = "0 0 * * * *"
              tenant_id = "t"
              client_id = "c"
              client_secret = { env = "SECRET" }
              managed_identity = {}
              [[tenants.connectors]]
              kind = "msgraph"
              schedule = "0 0 * * * *"
              tenant_id = "t"
              client_id = "c"
              certificate = { key = { file = "/nonexistent/key.pem" }, certificate = { file = "/nonexistent/cert.pem" } }
            [[tenants]]
            id = "b"
              [[tenants.connectors]]
              kind = "msgraph"
              schedule = "0 0 * * * *"
              tenant_id = "t"
              client_id = "c"
              federated_token_file = { env = "AZURE_FEDERATED_TOKEN_FILE" }
              [[tenants.connectors]]
              kind = "msgraph"
              schedule = "0 0 * * * *"
              tenant_id = "t"
              managed_identity = { endpoint = "http://identity.example.com/token" }
            "#;
        let env = |k: &str| (k == "SECRET").then(|| "s".to_owned());
        let problems = Config::parse(text, &[], &env).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "server.max_connections",
                "tenants[0].connectors[0].client_secret",
                "tenants[0].connectors[0].managed_identity",
                "tenants[0].connectors[1].certificate.key",
                "tenants[0].connectors[1].certificate.certificate",
                "tenants[1].connectors[0].federated_token_file",
                "tenants[1].connectors[1].managed_identity.endpoint",
            ],
            "{problems:#?}"
        );
    }

    /// Issue 8 row 17: an empty or malformed API token, `http://` token and Graph URLs (not
    /// to a loopback host), a cron schedule that never fires and zero server limits are each a
    /// located problem.
    #[test]
    fn check_config_rejects_unusable_tokens_urls_schedules_and_limits() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty-token");
        std::fs::write(&empty, "\n").unwrap();
        let text = format!(
            r#"
            [server]
            api_token = {{ file = "{}" }}
            header_read_timeout = "0s"
            max_connections = 0
            [[tenants]]
            id = "a"
              [[tenants.connectors]]
              kind = "msgraph"
              schedule = "0 0 0 30 2 *"
              tenant_id = "t"
              client_id = "c"
              client_secret = {{ env = "SECRET" }}
              authority = "http://login.example.com"
              token_url = "http://login.example.com/t/oauth2/v2.0/token"
              graph_base = "ftp://graph.example.com/v1.0"
            [[tenants]]
            id = "b"
              [[tenants.connectors]]
              kind = "msgraph"
              schedule = "0 0 0 1 1 * 2001"
              tenant_id = "t"
              client_id = "c"
              client_secret = {{ env = "EMPTY" }}
              authority = "http://127.0.0.1:8080"
              graph_base = "http://[::1]:8080/v1.0"
              token_url = "http://localhost:8080/token"
            "#,
            empty.display()
        );
        let env = |k: &str| (k == "SECRET").then(|| "s".to_owned());
        let problems = Config::parse(&text, &[], &env).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        for want in [
            "server.api_token",
            "server.header_read_timeout",
            "server.max_connections",
            "tenants[0].connectors[0].schedule",
            "tenants[0].connectors[0].authority",
            "tenants[0].connectors[0].token_url",
            "tenants[0].connectors[0].graph_base",
            "tenants[1].connectors[0].schedule",
            "tenants[1].connectors[0].client_secret",
        ] {
            assert!(paths.contains(&want), "missing {want} in {problems:#?}");
        }
        // Loopback http URLs (test doubles) are fine.
        for p in ["authority", "graph_base", "token_url"] {
            let path = format!("tenants[1].connectors[0].{p}");
            assert!(!paths.contains(&path.as_str()), "{problems:#?}");
        }
        let never = problems
            .iter()
            .find(|p| p.path == "tenants[0].connectors[0].schedule")
            .unwrap();
        assert!(never.message.contains("never fires"), "{never}");

        for (token, ok) in [
            ("abc-._~+/123==", true),
            ("abc def", false),
            ("abc\t", false),
            ("==", false),
        ] {
            std::fs::write(&empty, token).unwrap();
            let text = format!(
                "[server]\napi_token = {{ file = \"{}\" }}\n",
                empty.display()
            );
            assert_eq!(Config::parse(&text, &[], &no_env).is_ok(), ok, "{token:?}");
        }
    }

    /// `[evidence] pseudonym_key` is resolved with the connectors' secrets and must have at
    /// least [`MIN_PSEUDONYM_KEY_CHARS`] characters; its value is never in a problem.
    #[test]
    fn the_pseudonym_key_is_resolved_and_checked() {
        use secrecy::ExposeSecret;
        let text = "[evidence]\npseudonym_key = { env = \"PSEUDONYM_KEY\" }\n";
        let long = "k".repeat(MIN_PSEUDONYM_KEY_CHARS);
        let env = |n: &str| (n == "PSEUDONYM_KEY").then(|| long.clone());
        let cfg = Config::parse(text, &[], &env).expect("valid");
        assert_eq!(
            cfg.pseudonym_key
                .as_ref()
                .map(|k| k.expose_secret().to_owned()),
            Some(long.clone())
        );
        let short = |n: &str| (n == "PSEUDONYM_KEY").then(|| "short-secret".to_string());
        let problems = Config::parse(text, &[], &short).unwrap_err();
        let shown = format!("{problems:?}");
        assert!(shown.contains("evidence.pseudonym_key"), "{shown}");
        assert!(!shown.contains("short-secret"), "{shown}");
        assert!(Config::parse(text, &[], &no_env).is_err(), "unset variable");
    }

    /// Issue 8 row 22: a command that uses no secret loads a configuration whose API token,
    /// webhook secret and client secret are not available (their references are still checked
    /// for shape); resolving all of them reports each missing one.
    #[test]
    fn secrets_are_resolved_only_when_asked() {
        let text = r#"
            [server]
            api_token = { env = "POSTURED_API_TOKEN" }
            [alerts]
            [[alerts.notifiers]]
            name = "hook"
            kind = "webhook"
            url = "https://hooks.example.com/x"
            secret = { env = "HOOK_SECRET" }
            [[tenants]]
            id = "a"
              [[tenants.connectors]]
              kind = "msgraph"
              schedule = "0 0 * * * *"
              tenant_id = "t"
              client_id = "c"
              client_secret = { env = "CLIENT_SECRET" }
        "#;
        let parse = |secrets| {
            Config::parse_resolving(text, &[], &no_env, &Registry::builtin(), None, secrets)
        };
        let cfg = parse(Secrets::NONE).unwrap_or_else(|p| panic!("{p:#?}"));
        assert!(cfg.api_token.is_none());
        assert_eq!(cfg.secrets, Secrets::NONE);
        // Never built into a live connector without its secret.
        let http = crate::http::http_client().unwrap();
        let built = cfg.tenants[0].connectors[0].settings.build(
            &postured_connectors::settings::BuildContext {
                tenant: "a",
                http: &http,
                record: None,
            },
        );
        assert!(built.is_err());
        let problems = parse(Secrets::ALL).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "alerts.notifiers[0].secret",
                "server.api_token",
                "tenants[0].connectors[0].client_secret"
            ]
        );
        let problems = parse(Secrets::CONNECTORS).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:#?}");
        // A missing reference is still a problem when nothing is resolved.
        let without = text.replace("client_secret = { env = \"CLIENT_SECRET\" }", "");
        let problems = Config::parse_resolving(
            &without,
            &[],
            &no_env,
            &Registry::builtin(),
            None,
            Secrets::NONE,
        )
        .unwrap_err();
        assert_eq!(problems[0].path, "tenants[0].connectors[0].client_secret");
    }

    #[test]
    fn syntax_error_is_one_problem() {
        let problems = Config::parse("[server\nlisten=", &[], &no_env).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.starts_with("invalid TOML"));
    }
}

#[cfg(test)]
mod connector_id_tests {
    use super::*;

    /// Polls, gaps and metrics are kept per connector id: a tenant's connectors must have
    /// distinct ones (one per unnamed kind, one per name of a named kind).
    #[test]
    fn connector_ids_are_unique_per_tenant() {
        let text = r#"
[[tenants]]
id = "t"
  [[tenants.connectors]]
  kind = "msgraph"
  schedule = "0 * * * * *"
  replay_dir = "a"
  [[tenants.connectors]]
  kind = "msgraph"
  schedule = "0 * * * * *"
  replay_dir = "b"
  [[tenants.connectors]]
  kind = "exec"
  schedule = "0 * * * * *"
  name = "probe"
  argv = ["/bin/true"]
  [[tenants.connectors]]
  kind = "exec"
  schedule = "0 * * * * *"
  name = "other"
  argv = ["/bin/true"]
  [[tenants.connectors]]
  kind = "exec"
  schedule = "0 * * * * *"
  name = "probe"
  argv = ["/bin/true"]
"#;
        let problems = Config::parse(text, &[], &|_| None).unwrap_err();
        let at = |path: &str| {
            problems
                .iter()
                .find(|p| p.path == path)
                .unwrap_or_else(|| panic!("{path} in {problems:?}"))
                .message
                .clone()
        };
        assert!(at("tenants[0].connectors[1]").contains("a second msgraph connector"));
        assert!(at("tenants[0].connectors[4]").contains("a second exec connector named \"probe\""));
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}

#[cfg(test)]
mod tenant_id_tests {
    use super::*;

    /// Every duplicated tenant id and every assessment naming an unknown tenant is reported
    /// at once, each at its key path (the checks look ids up in sets built once).
    #[test]
    fn duplicate_and_unknown_tenants_are_all_reported() {
        let tenant = |id: &str| {
            format!(
                "[[tenants]]\nid = \"{id}\"\n  [[tenants.connectors]]\n  kind = \"msgraph\"\n  \
                 schedule = \"0 * * * * *\"\n  replay_dir = \"r\"\n"
            )
        };
        let assessment = |id: &str, tenant: &str| {
            format!("[[assessments]]\nid = \"{id}\"\ntenant = \"{tenant}\"\ntemplate = \"gdpr\"\n")
        };
        let text = [
            tenant("a"),
            tenant("b"),
            tenant("a"),
            tenant("c"),
            tenant("b"),
            assessment("a-gdpr", "a"),
            assessment("x-gdpr", "x"),
            assessment("c-gdpr", "c"),
            assessment("y-gdpr", "y"),
        ]
        .concat();
        let problems = Config::parse(&text, &[], &|_| None).unwrap_err();
        let got: Vec<(&str, &str)> = problems
            .iter()
            .map(|p| (p.path.as_str(), p.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("tenants[2].id", "duplicate tenant id \"a\""),
                ("tenants[4].id", "duplicate tenant id \"b\""),
                ("assessments[1].tenant", "unknown tenant \"x\""),
                ("assessments[3].tenant", "unknown tenant \"y\""),
            ]
        );
    }
}
