//! Command-line handlers of `postured template import|list` and `postured export` (the clap
//! definitions are here; `crate::cli` dispatches to them). The only place in this module that
//! does IO: reading the imported file, the store, writing the export.
//!
//! Exit codes: 0 success; [`EXIT_INVALID_INPUT`] when the imported file has problems (every
//! one printed to stderr, nothing saved); 1 any other error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use chrono::Utc;
use clap::{Subcommand, ValueEnum};

use crate::assembly;
use crate::config::Config;
use crate::evaluation::{Catalog, EvaluationInput, Evaluator};
use crate::interchange::formats::{
    ImportFormat, Imported, ReportFormat, export_report, import, utf8_text,
};
use crate::interchange::{ImportError, MAX_IMPORT_FILE_BYTES, oscal, render_errors};
use crate::model::report::AssessmentReport;
use crate::model::{Assessment, ComplianceModel, DEFAULT_GROUP, ModelInput, TemplateRegistry};
use crate::store::Store;

/// Exit code of an import whose file has problems (`EX_DATAERR`).
pub const EXIT_INVALID_INPUT: u8 = 65;

/// `postured template ...` subcommands.
#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Import a template: Compliance Manager workbook (.xlsx, .xlsm, .xlsb; .xls and .ods are
    /// refused), flat CSV (.csv, UTF-8), OSCAL catalog (.json, .xml; with --profile, only the
    /// profile's controls). Every problem is printed as `Sheet!Row:Column: message` and
    /// nothing is saved (exit 65); so is a file past a limit (32 MiB, 1,000,000 cells a sheet,
    /// 64 MiB unpacked, 2,000,000 JSON values or XML nodes, 128 levels of nesting, 4 MiB of
    /// OSCAL parameter inserts). With a configuration the template is saved to its store,
    /// else only validated.
    Import {
        /// File to import.
        file: PathBuf,
        /// OSCAL profile (JSON) selecting controls of the OSCAL catalog FILE.
        #[arg(long)]
        profile: Option<PathBuf>,
        /// Template id (default: the file's, else derived from the title).
        #[arg(long)]
        id: Option<String>,
        /// Template title (default: the file's; for OSCAL the catalog title).
        #[arg(long)]
        title: Option<String>,
        /// Certification / regulation (OSCAL only; default: the catalog title).
        #[arg(long)]
        certification: Option<String>,
    },
    /// List the templates: built-in ones and, with a configuration, imported ones.
    List,
    /// Automation coverage per template: controls, controls with an automatically tested
    /// action (by connector kind), the share of possible points automation can decide. With a
    /// configuration, only the connector kinds some tenant has count (and imported templates
    /// are included).
    Coverage {
        /// One template (default: every template).
        template: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = crate::cli::Output::Table)]
        output: crate::cli::Output,
    },
}

/// Format of `postured export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Excel workbook: Summary, Controls, Actions, Evidence sheets.
    Xlsx,
    /// CSV, one row per (control, action).
    Csv,
    /// The JSON assessment report.
    Json,
    /// OSCAL assessment-results (JSON).
    Oscal,
}

pub use crate::interchange::formats::ImportOptions;

/// Import a template file by its extension (`xlsx`/`xlsm`/`xlsb`, also `xls`/`ods` which
/// the workbook importer refuses; `csv`; `json` = OSCAL catalog, `xml` = OSCAL catalog)
/// with [`crate::interchange::formats::import_template`], the one import body the API's
/// `POST /api/v1/templates` uses too. The file is read up to [`MAX_IMPORT_FILE_BYTES`].
///
/// # Errors
///
/// Every problem, located (model validation errors are located `template.<path>`); an
/// unreadable, too large or non-UTF-8 file or an unknown extension as a single error.
pub fn import_file(
    path: &Path,
    options: &ImportOptions,
    catalog: &Catalog,
) -> Result<Imported, Vec<ImportError>> {
    let shown = path.display().to_string();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| shown.clone());
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let Some(format) = ImportFormat::from_extension(&ext) else {
        return Err(vec![ImportError::new(
            &shown,
            format!(
                "unknown file type `.{ext}` (expected .xlsx, .xlsm, .xlsb, .csv, .json or .xml)"
            ),
        )]);
    };
    let bytes = read_capped(path, &shown).map_err(|e| vec![e])?;
    import(format, &name, bytes, options, catalog)
}

/// Read a file to import, refusing one larger than [`MAX_IMPORT_FILE_BYTES`] (without
/// reading past the limit); problems are located at `shown`.
fn read_capped(path: &Path, shown: &str) -> Result<Vec<u8>, ImportError> {
    use std::io::Read;
    let unreadable = |e: std::io::Error| ImportError::new(shown, format!("cannot read: {e}"));
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut bytes = Vec::new();
    file.take(MAX_IMPORT_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_IMPORT_FILE_BYTES {
        return Err(ImportError::new(
            shown,
            format!("the file is larger than the {MAX_IMPORT_FILE_BYTES} bytes accepted"),
        ));
    }
    Ok(bytes)
}

/// [`read_capped`] for a text file, which must be UTF-8 (a UTF-8 byte-order mark is fine).
fn read_text(path: &Path, shown: &str) -> Result<String, ImportError> {
    utf8_text(read_capped(path, shown)?, shown)
}

/// The catalog of a configuration (its file, else the built-in one).
fn catalog_of(cfg: Option<&Config>) -> anyhow::Result<(Catalog, Option<Evaluator>)> {
    match cfg {
        Some(cfg) => {
            let evaluator = assembly::evaluator(cfg)?;
            let catalog = Catalog {
                actions: evaluator.actions().cloned().collect(),
                families: evaluator.families().to_vec(),
            };
            Ok((catalog, Some(evaluator)))
        }
        None => Ok((Catalog::builtin(), None)),
    }
}

/// Where a template of the registry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Builtin,
    Directory,
    Imported,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Builtin => "built-in",
            Source::Directory => "dir",
            Source::Imported => "imported",
        }
    }
}

/// The templates as the daemon sees them: built-in, then `[templates] dirs`, then those saved
/// in the store (built-in and directory ones win on an id clash, as at start-up), with the
/// source of each id.
async fn registry(
    catalog: &Catalog,
    cfg: Option<&Config>,
    store: Option<&Arc<dyn Store>>,
) -> anyhow::Result<(TemplateRegistry, HashMap<String, Source>)> {
    let describe = |what: String, errs: Vec<crate::model::TemplateError>| {
        anyhow!(
            "{what} are invalid:\n{}",
            errs.iter()
                .map(|e| format!("  - {}: {}: {}\n", e.file, e.path, e.message))
                .collect::<String>()
        )
    };
    let mut registry = TemplateRegistry::builtin(&catalog.actions, oscal::framework_controls)
        .map_err(|errs| describe("the built-in templates".into(), errs))?;
    let mut sources: HashMap<String, Source> = registry
        .ids()
        .map(|id| (id.to_owned(), Source::Builtin))
        .collect();
    for dir in cfg.map(|c| c.templates.dirs.as_slice()).unwrap_or_default() {
        registry
            .load_dir(dir, &catalog.actions, oscal::framework_controls)
            .map_err(|errs| describe(format!("the templates of {}", dir.display()), errs))?;
    }
    for id in registry.ids() {
        sources.entry(id.to_owned()).or_insert(Source::Directory);
    }
    if let Some(store) = store {
        let stored = store
            .list_templates()
            .await
            .context("listing stored templates")?;
        for c in &stored.corrupt {
            tracing::warn!(
                template = %c.id,
                problem = %c.problem,
                "a stored template no longer decodes; skipped"
            );
        }
        for t in stored.templates {
            if registry.get(&t.id).is_some() {
                continue;
            }
            let id = t.id.clone();
            match registry.insert(t) {
                Ok(()) => {
                    sources.insert(id, Source::Imported);
                }
                Err(errs) => tracing::warn!(
                    template = %id,
                    problems = errs.len(),
                    "a stored template is invalid; skipped"
                ),
            }
        }
    }
    Ok((registry, sources))
}

/// Run `postured template ...`.
///
/// # Errors
///
/// Store, catalog or output errors (an invalid import file is an exit code, not an error).
pub async fn template(cfg: Option<Config>, command: TemplateCommand) -> anyhow::Result<ExitCode> {
    let (catalog, _) = catalog_of(cfg.as_ref())?;
    let store = match &cfg {
        Some(cfg) => Some(assembly::open_store(cfg).await?),
        None => None,
    };
    match command {
        TemplateCommand::Import {
            file,
            profile,
            id,
            title,
            certification,
        } => {
            let profile = match profile {
                Some(p) => match read_text(&p, &p.display().to_string()) {
                    Ok(text) => Some(text),
                    Err(e) => {
                        eprintln!("{e}\n{}: nothing was imported", file.display());
                        return Ok(ExitCode::from(EXIT_INVALID_INPUT));
                    }
                },
                None => None,
            };
            let (existing, _) = registry(&catalog, cfg.as_ref(), None).await?;
            let options = ImportOptions {
                profile,
                id,
                title,
                certification,
                // Built-in and `[templates] dirs` ids: a derived id avoids them; a stored
                // import of the same id is replaced, as before.
                taken_ids: existing.ids().map(str::to_owned).collect(),
            };
            let imported = match import_file(&file, &options, &catalog) {
                Ok(t) => t,
                Err(errors) => {
                    eprint!("{}", render_errors(&errors));
                    eprintln!(
                        "{}: {} problem(s); nothing was imported",
                        file.display(),
                        errors.len()
                    );
                    return Ok(ExitCode::from(EXIT_INVALID_INPUT));
                }
            };
            let summary = imported.summary();
            let no_action = imported.mapping.as_ref().map(|m| &m.no_action);
            let no_action = match no_action {
                Some(ids) if !ids.is_empty() => {
                    format!("\nno action ({}): {}", ids.len(), ids.join(", "))
                }
                _ => String::new(),
            };
            let template = imported.template;
            if existing.get(&template.id).is_some() {
                eprintln!(
                    "{}: template id `{}` is taken by a built-in or `[templates] dirs` \
                     template (which would win); choose another with --id",
                    file.display(),
                    template.id
                );
                return Ok(ExitCode::from(EXIT_INVALID_INPUT));
            }
            match &store {
                Some(store) => {
                    store
                        .save_template(&template, Utc::now())
                        .await
                        .context("saving the template")?;
                    println!("imported {summary}{no_action}");
                }
                None => println!("valid {summary}; not saved (no --config){no_action}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        TemplateCommand::Coverage { template, output } => {
            let (registry, _) = registry(&catalog, cfg.as_ref(), store.as_ref()).await?;
            let scopes: Option<Vec<String>> = cfg
                .as_ref()
                .map(|c| c.tenants.iter().flat_map(|t| t.scopes()).collect());
            let in_scope = |kind: Option<&str>| match (&scopes, kind) {
                (None, _) | (_, None) => true,
                (Some(s), Some(k)) => s.iter().any(|x| x == k),
            };
            let mut rows = Vec::new();
            for t in registry.iter() {
                if template.as_deref().is_none_or(|id| id == t.id) {
                    rows.push(crate::model::coverage::coverage(t, &catalog, &in_scope));
                }
            }
            if let Some(id) = &template
                && rows.is_empty()
            {
                bail!("unknown template `{id}`");
            }
            match output {
                crate::cli::Output::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
                crate::cli::Output::Table => print!("{}", coverage_table(&rows)),
            }
            Ok(ExitCode::SUCCESS)
        }
        TemplateCommand::List => {
            let (registry, sources) = registry(&catalog, cfg.as_ref(), store.as_ref()).await?;
            println!(
                "{:<32} {:<9} {:>8} {:>7}  TITLE (CERTIFICATION)",
                "ID", "SOURCE", "CONTROLS", "ACTIONS"
            );
            for t in registry.iter() {
                let source = sources.get(&t.id).map_or("", |s| s.as_str());
                println!(
                    "{:<32} {:<9} {:>8} {:>7}  {} ({})",
                    t.id,
                    source,
                    t.controls.len(),
                    t.actions.len(),
                    t.title,
                    t.certification
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The coverage rows as a text table: template, controls, controls with an automated action
/// (and per kind), controls with no action, the automated share of points.
fn coverage_table(rows: &[crate::model::coverage::Coverage]) -> String {
    let mut out = format!(
        "{:<28} {:>8} {:>9} {:>9} {:>8}  AUTOMATED CONTROLS BY KIND\n",
        "TEMPLATE", "CONTROLS", "AUTOMATED", "NO ACTION", "POINTS"
    );
    for r in rows {
        let kinds: Vec<String> = r
            .automated_controls_by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        out.push_str(&format!(
            "{:<28} {:>8} {:>9} {:>9} {:>7.1}%  {}\n",
            r.template,
            r.controls,
            r.automated_controls,
            r.controls_without_actions,
            100.0 * r.automated_points_ratio(),
            kinds.join(", ")
        ));
    }
    out
}

/// Build the current report of one assessment of `tenant`: the tenant's stored signals
/// evaluated now, the stored manual statuses, the built-in and imported templates.
///
/// Assessment ids: an active assessment of the configuration (`[[assessments]]` and the
/// default one per tenant) — or, for any known template, `<tenant>-<template id>`: that
/// template applied to the tenant in group `default`.
///
/// # Errors
///
/// Unknown tenant or assessment, store errors.
pub async fn assessment_report(
    cfg: &Config,
    store: &Arc<dyn Store>,
    tenant: &str,
    assessment: &str,
) -> anyhow::Result<AssessmentReport> {
    if !cfg.tenants.iter().any(|t| t.id == tenant) {
        bail!("unknown tenant `{tenant}` (not in the configuration)");
    }
    let (catalog, evaluator) = catalog_of(Some(cfg))?;
    let evaluator = evaluator.ok_or_else(|| anyhow!("no evaluator"))?;
    let (registry, _) = registry(&catalog, Some(cfg), Some(store)).await?;
    let configured = cfg.active_assessments();
    let found = match configured.iter().find(|a| a.id == assessment) {
        Some(a) if a.tenant != tenant => {
            bail!(
                "assessment `{assessment}` belongs to tenant `{}`, not `{tenant}`",
                a.tenant
            )
        }
        Some(a) => Some(a.clone()),
        None => assessment
            .strip_prefix(tenant)
            .and_then(|s| s.strip_prefix('-'))
            .filter(|id| registry.get(id).is_some())
            .map(|template| Assessment {
                id: assessment.to_owned(),
                tenant: tenant.to_owned(),
                template: template.to_owned(),
                group: DEFAULT_GROUP.to_owned(),
            }),
    };
    let Some(found) = found else {
        let mut known: Vec<String> = configured
            .iter()
            .filter(|a| a.tenant == tenant)
            .map(|a| a.id.clone())
            .collect();
        known.extend(registry.ids().map(|id| format!("{tenant}-{id}")));
        known.sort();
        known.dedup();
        bail!(
            "unknown assessment `{assessment}` of tenant `{tenant}`; one of: {}",
            known.join(", ")
        );
    };
    let assessments = [found];
    let now = Utc::now();
    let state = store
        .load_tenant_state(tenant)
        .await
        .context("loading the tenant's signals")?;
    // The same scoping as a poll: actions of kinds the tenant has no connector of are out of
    // scope.
    let kinds: Vec<&str> = cfg
        .tenant(tenant)
        .map(|t| t.connectors.iter().map(|c| c.kind).collect())
        .unwrap_or_default();
    let has_kind = |k: &str| kinds.contains(&k);
    let actions = evaluator.evaluate_actions_of(
        &EvaluationInput {
            tenant,
            now,
            signals: &state.signals,
            gaps: &state.gaps,
        },
        &has_kind,
    );
    let evaluation = crate::evaluation::TenantEvaluation::from_actions(tenant, now, actions);
    let manual = store
        .manual_statuses()
        .await
        .context("loading manual statuses")?;
    let model = ComplianceModel::build(&ModelInput {
        templates: &registry,
        assessments: &assessments,
        evaluations: &[evaluation],
        manual: &manual,
        now,
    });
    model
        .report(assessment)
        .ok_or_else(|| anyhow!("assessment `{assessment}` could not be built"))
}

/// Run `postured export`: write the assessment's report in `format` to `out`.
///
/// # Errors
///
/// See [`assessment_report`]; export and write errors.
pub async fn export(
    cfg: Config,
    tenant: &str,
    assessment: &str,
    format: ExportFormat,
    out: &Path,
) -> anyhow::Result<ExitCode> {
    let store = assembly::open_store(&cfg).await?;
    let report = assessment_report(&cfg, &store, tenant, assessment).await?;
    let bytes = export_report(
        &report,
        match format {
            ExportFormat::Xlsx => ReportFormat::Xlsx,
            ExportFormat::Csv => ReportFormat::Csv,
            ExportFormat::Json => ReportFormat::Json,
            ExportFormat::Oscal => ReportFormat::Oscal,
        },
    )?;
    std::fs::write(out, bytes).with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "exported assessment {assessment} of tenant {tenant} ({} controls, {} actions, score {:.1} %) to {}",
        report.controls.len(),
        report.actions.len(),
        report.score.ratio * 100.0,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
