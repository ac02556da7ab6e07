//! Start-up assembly: configuration -> store, catalog/evaluator, metrics, connectors -> [`App`].
//!
//! The only place that knows how a configured connector kind becomes a
//! [`postured_connectors::Connector`]. Also hosts `postured record`. Performs IO only while
//! building (opening the store, reading the catalog); never during polls.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
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
    let store = store::open_store(&cfg.store.url, cfg.store.max_connections)
        .await
        .context("opening the store")?;
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

/// Compile the configured catalog (a file, or the built-in one).
pub fn evaluator(cfg: &Config) -> anyhow::Result<Evaluator> {
    let catalog = match &cfg.catalog.path {
        Some(p) => Catalog::load(p).map_err(|errs| {
            anyhow::anyhow!(
                "catalog {} is invalid:\n{}",
                p.display(),
                errs.iter()
                    .map(|e| format!("  - {e}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        })?,
        None => Catalog::from_sources(&cfg.registry.catalogs()).map_err(|errs| {
            anyhow::anyhow!(
                "the connector catalogs are invalid:\n{}",
                errs.iter()
                    .map(|e| format!("  - {e}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        })?,
    };
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
        record_to: None,
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
    let known: BTreeSet<String> = app.model.registry().ids().map(str::to_owned).collect();
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

/// `postured record`: poll the tenant's connectors live once, writing every response to `out`.
/// Returns the number of files in `out` afterwards.
pub async fn record(cfg: &Config, tenant: &str, out: &Path) -> anyhow::Result<usize> {
    let t = cfg
        .tenant(tenant)
        .with_context(|| format!("no tenant {tenant:?} in the configuration"))?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let http = http_client()?;
    for c in &t.connectors {
        anyhow::ensure!(
            !c.settings.replays(),
            "tenant {tenant} replays recordings already; recording needs a live connector"
        );
        let cx = BuildContext {
            tenant,
            http: &http,
            record_to: Some(out),
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
