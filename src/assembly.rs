//! Start-up assembly: configuration -> store, catalog/evaluator, metrics, connectors -> [`App`].
//!
//! The only place that knows how a configured connector kind becomes a
//! [`postured_connectors::Connector`]. Also hosts `postured record`. Performs IO only while
//! building (opening the store, reading the catalog); never during polls.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use postured_connectors::record::{PersonalData, Recorder, create_private_dir};
use postured_connectors::settings::BuildContext;
use postured_connectors::{Connector, PollContext};

use crate::app::{App, ConnectorSlot};
use crate::config::{Config, ConfigError, ConfigProblem, ConnectorConfig};
use crate::evaluation::Evaluator;
use crate::evaluation::catalog::Catalog;
use crate::http::http_client;
use crate::metrics::Metrics;
use crate::store::{self, Store};

/// Open the configured store and apply its migrations.
pub async fn open_store(cfg: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let store = store::open_configured(&cfg.store)
        .await
        .context("opening the store")?;
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

/// Compile the configured catalog: a `[catalog] path` file, or else the registered kinds'
/// catalogs, merged with the catalog files that connectors name themselves
/// ([`postured_connectors::ConnectorSettings::catalog`], e.g. an `http_json` connector's
/// `catalog`). A file named by several connectors is read once; its problems are reported
/// under the key path of the first connector naming it
/// (`tenants[0].connectors[1].catalog: actions[2].rule: ...`).
pub fn evaluator(cfg: &Config) -> anyhow::Result<Evaluator> {
    let listed = |errs: &[crate::evaluation::catalog::CatalogError]| {
        errs.iter()
            .map(|e| format!("  - {e}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    // (source name, text, scope): the scope becomes each action's `kind` — a kind's catalog
    // applies to tenants with a connector of that kind, a connector's own catalog file to
    // tenants with a connector naming it, a `[catalog] path` file to every tenant.
    let base: Vec<(String, String, Option<String>)> = match &cfg.catalog.path {
        Some(p) => {
            let text = postured_connectors::settings::read_catalog(p)
                .map_err(|m| anyhow::anyhow!("catalog {} is invalid:\n  - {m}", p.display()))?;
            if let Err(errs) = Catalog::from_toml_str(&text) {
                anyhow::bail!("catalog {} is invalid:\n{}", p.display(), listed(&errs));
            }
            vec![(p.display().to_string(), text, None)]
        }
        None => cfg
            .registry
            .catalogs()
            .into_iter()
            .map(|(k, t)| (k.to_owned(), t.to_owned(), Some(k.to_owned())))
            .collect(),
    };
    let mut sources = base;
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, t) in cfg.tenants.iter().enumerate() {
        for (j, c) in t.connectors.iter().enumerate() {
            let Some(path) = c.settings.catalog() else {
                continue;
            };
            // One scope per file (its canonical path): a file named by several connectors is
            // read once.
            let scope = crate::config::catalog_scope(&path);
            if !seen.insert(scope.clone()) {
                continue;
            }
            let key = format!("tenants[{i}].connectors[{j}].catalog");
            match postured_connectors::settings::read_catalog(&path) {
                Ok(text) => {
                    sources.push((format!("{key} ({})", path.display()), text, Some(scope)))
                }
                Err(m) => problems.push(format!("  - {key}: {m}")),
            }
        }
    }
    if !problems.is_empty() {
        anyhow::bail!(
            "the connector catalogs are invalid:\n{}",
            problems.join("\n")
        );
    }
    let refs: Vec<(&str, &str, Option<&str>)> = sources
        .iter()
        .map(|(n, t, scope)| (n.as_str(), t.as_str(), scope.as_deref()))
        .collect();
    let catalog = Catalog::from_sources(&refs).map_err(|errs| {
        anyhow::anyhow!("the connector catalogs are invalid:\n{}", listed(&errs))
    })?;
    Evaluator::new(catalog).map_err(|errs| {
        anyhow::anyhow!(
            "catalog rules are invalid:\n{}",
            errs.iter()
                .map(|e| format!("  - {e}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

/// Build one connector of tenant `tenant` from its configuration (through its kind's
/// settings).
pub fn build_connector(
    tenant: &str,
    c: &ConnectorConfig,
    http: &reqwest::Client,
) -> anyhow::Result<Arc<dyn Connector>> {
    let cx = BuildContext {
        tenant,
        http,
        record: None,
    };
    c.settings.build(&cx).map_err(anyhow::Error::msg)
}

/// Build the whole app: store (migrated), evaluator, metrics and every tenant's connectors.
pub async fn build_app(cfg: Config) -> anyhow::Result<App> {
    let evaluator = Arc::new(evaluator(&cfg)?);
    let store = open_store(&cfg).await?;
    let metrics = Arc::new(Metrics::new(cfg.metrics.per_action_series));
    let http = http_client()?;
    let mut connectors = HashMap::new();
    for t in &cfg.tenants {
        let mut slots = Vec::new();
        for c in &t.connectors {
            slots.push(ConnectorSlot {
                config: c.clone(),
                connector: build_connector(&t.id, c, &http)
                    .with_context(|| format!("tenant {}", t.id))?,
            });
        }
        connectors.insert(t.id.clone(), slots);
    }
    let app = App::new(Arc::new(cfg), store, evaluator, metrics, connectors);
    // Every assessment must name a template that exists somewhere: built in, in a
    // `[templates] dirs` file, or imported into the store.
    app.model
        .refresh(app.store.as_ref())
        .await
        .context("loading imported templates and manual statuses")?;
    app.model.publish_skipped(&app.metrics);
    // A template that is in the store but skipped (corrupt or invalid row) is not unknown: its
    // assessments are skipped with a warning (the model reports them), the daemon still starts.
    let skipped = app.model.skipped_templates();
    for a in &app.model.assessments {
        if let Some(t) = skipped.iter().find(|t| t.id == a.template) {
            tracing::warn!(assessment = %a.id, template = %t.id, reason = t.reason.as_str(),
                "assessment skipped: its stored template cannot be used ({})", t.detail);
        }
    }
    let known: BTreeSet<String> = app
        .model
        .registry()
        .ids()
        .map(str::to_owned)
        .chain(skipped.into_iter().map(|t| t.id))
        .collect();
    let problems = app.config.unknown_templates(&known);
    if !problems.is_empty() {
        return Err(ConfigError {
            source_name: "configuration".into(),
            problems,
        }
        .into());
    }
    Ok(app)
}

/// `[[assessments]]` whose template is neither built in, nor in `[templates] dirs`, nor imported
/// into the configured store, with their key paths (what `postured check-config` reports).
///
/// The store is read only when some template is not found without it, and never created or
/// migrated: a SQLite file that does not exist yet holds no imported templates. A store that
/// cannot be read is reported in the problem's message.
pub async fn unknown_templates(cfg: &Config) -> anyhow::Result<Vec<ConfigProblem>> {
    let evaluator = evaluator(cfg)?;
    let (model, _) = crate::app::model::ModelRuntime::new(cfg, &evaluator);
    let mut known: BTreeSet<String> = model.registry().ids().map(str::to_owned).collect();
    let problems = cfg.unknown_templates(&known);
    if problems.is_empty() {
        return Ok(problems);
    }
    let sqlite_missing = sqlite_file(&cfg.store.url).is_some_and(|f| !f.exists());
    let imported = if sqlite_missing {
        Ok(Vec::new())
    } else {
        match store::open_store(&cfg.store.url, 1).await {
            Ok(s) => s
                .list_templates()
                .await
                .map(|l| l.templates)
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    };
    match imported {
        Ok(templates) => {
            known.extend(templates.into_iter().map(|t| t.id));
            Ok(cfg.unknown_templates(&known))
        }
        Err(e) => Ok(problems
            .into_iter()
            .map(|mut p| {
                p.message = format!(
                    "{} (imported templates could not be read from the store: {e})",
                    p.message
                );
                p
            })
            .collect()),
    }
}

/// The file behind a SQLite store URL (`sqlite://PATH`, `sqlite:PATH` or a bare path).
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .or_else(|| (!url.contains("://")).then_some(url))?;
    let file = rest.split('?').next().unwrap_or_default();
    (!file.is_empty() && file != ":memory:").then(|| std::path::PathBuf::from(file))
}

/// `postured record`: poll the tenant's connectors live once, writing every response to `out`
/// (created with mode `0700` when missing; files `0600`). Personal fields are pseudonymised
/// with one random key for the whole run unless `personal` is [`PersonalData::Keep`]
/// (`--keep-personal-data`; see `postured_connectors::pseudonym`). Returns the number of
/// files in `out` afterwards.
pub async fn record(
    cfg: &Config,
    tenant: &str,
    out: &Path,
    personal: PersonalData,
) -> anyhow::Result<usize> {
    let t = cfg
        .tenant(tenant)
        .with_context(|| format!("no tenant {tenant:?} in the configuration"))?;
    create_private_dir(out).with_context(|| format!("creating {}", out.display()))?;
    let http = http_client()?;
    let recorder = Recorder::new(out, personal);
    for c in &t.connectors {
        anyhow::ensure!(
            !c.settings.replays(),
            "tenant {tenant} replays recordings already; recording needs a live connector"
        );
        let cx = BuildContext {
            tenant,
            http: &http,
            record: Some(&recorder),
        };
        let conn = c.settings.build(&cx).map_err(anyhow::Error::msg)?;
        let snapshot = conn
            .poll(&PollContext {
                observed_at: chrono::Utc::now(),
            })
            .await;
        for e in &snapshot.errors {
            eprintln!("warning: not recorded: {e}");
        }
    }
    Ok(std::fs::read_dir(out)?.count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn fixture(rel: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/connectors/fixtures/{rel}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn json(status: u16, body: &str) -> ResponseTemplate {
        ResponseTemplate::new(status).set_body_raw(body.to_owned(), "application/json")
    }

    /// Issue 8 row 2, the daemon's side: the client assembly hands to the connectors never
    /// requests a `Location` on another origin (the connector then classifies the 3xx).
    #[tokio::test]
    async fn the_connectors_client_does_not_follow_a_redirect_to_another_origin() {
        let home = MockServer::start().await;
        let other = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1.0/x"))
            .respond_with(
                ResponseTemplate::new(302).insert_header("location", format!("{}/y", other.uri())),
            )
            .mount(&home)
            .await;
        Mock::given(method("GET"))
            .respond_with(json(200, "{}"))
            .mount(&other)
            .await;
        let client = postured_connectors::http::HttpClient::new(
            http_client().unwrap(),
            postured_connectors::record::Mode::Live,
            Default::default(),
        );
        let url = url::Url::parse(&format!("{}/v1.0/x", home.uri())).unwrap();
        let e = client
            .get_json::<serde_json::Value>("/x", &url, None)
            .await
            .unwrap_err();
        assert_eq!(e.kind, postured_connectors::ErrorKind::Redirect);
        assert!(other.received_requests().await.unwrap().is_empty());
    }

    /// Issue 8 row 19, `postured record`: one run pseudonymises personal data across the
    /// tenant's recordings, in a 0700 directory of 0600 files; `PersonalData::Keep`
    /// (`--keep-personal-data`) keeps it.
    #[tokio::test]
    async fn record_pseudonymises_unless_asked_to_keep_personal_data() {
        use std::os::unix::fs::PermissionsExt;
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(json(
                200,
                &fixture("entra-oauth/token-response-success.json"),
            ))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(
                "/v1.0/reports/authenticationMethods/userRegistrationDetails",
            ))
            .respond_with(json(
                200,
                &fixture("msgraph/userRegistrationDetails-list.json"),
            ))
            .mount(&server)
            .await;
        let text = format!(
            r#"
            [[tenants]]
            id = "t"
            [[tenants.connectors]]
            kind = "msgraph"
            schedule = "0 0 * * * *"
            tenant_id = "00000001-0001-0001-0001-000000000001"
            client_id = "app"
            client_secret = {{ env = "SECRET" }}
            authority = "{uri}"
            graph_base = "{uri}/v1.0"
            max_retries = 0
            "#,
            uri = server.uri()
        );
        let env = |k: &str| (k == "SECRET").then(|| "s3cret".to_owned());
        let cfg = Config::parse(&text, &[], &env).unwrap();
        let root = tempfile::tempdir().unwrap();
        for (personal, upn_kept) in [
            (PersonalData::Pseudonymise, false),
            (PersonalData::Keep, true),
        ] {
            let out = root.path().join(format!("{personal:?}"));
            assert_eq!(record(&cfg, "t", &out, personal).await.unwrap(), 1);
            let dir_mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
            assert_eq!(dir_mode, 0o700);
            let file = out.join("v1.0_reports_authenticationMethods_userRegistrationDetails.json");
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let text = std::fs::read_to_string(&file).unwrap();
            assert_eq!(text.contains("AlexW@Contoso.com"), upn_kept, "{personal:?}");
            assert_eq!(text.contains("pseudonym:"), !upn_kept, "{personal:?}");
        }
    }
}
