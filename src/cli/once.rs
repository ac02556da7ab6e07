//! `postured once`: poll every tenant (or the one selected) once, store the results, write
//! the report as a table, JSON, JUnit XML or SARIF, and judge the CI gate (`--fail-under`,
//! `--fail-on`; `crate::report::gate`) into the exit code. See docs/ci-gate.md.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use chrono::Utc;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, ValueEnum};

use crate::app::App;
use crate::config::Config;
use crate::evaluation::TestStatus;
use crate::report::ci::{self, ActionText, Selection};
use crate::report::gate::{self, Gate, Outcome, Threshold};
use crate::{assembly, report};

/// Exit code of a gate breach: a score under `--fail-under`, or an action with a
/// `--fail-on` status.
pub const EXIT_GATE_BREACH: u8 = 3;
/// Exit code of a gate that cannot decide: improvement actions could not be detected (a
/// collection failure, a stale or missing signal) and they, not the posture, keep the score
/// under `--fail-under`; or `--fail-on` names `could_not_be_detected` / `to_be_detected`
/// and an action has it; or a scope has no points possible.
pub const EXIT_GATE_UNDECIDED: u8 = 4;
/// Exit code of a command line naming an unknown tenant or assessment (as clap's usage
/// errors).
pub const EXIT_USAGE: u8 = 2;

/// Output format of `once`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OnceOutput {
    /// Human-readable tables.
    Table,
    /// JSON (see README.md for the report shape).
    Json,
    /// JUnit XML: one test case per (tenant, improvement action) (docs/ci-gate.md).
    Junit,
    /// SARIF 2.1.0: one rule per improvement action, one result per failing or undetected
    /// one (docs/ci-gate.md).
    Sarif,
}

/// The CI options of `postured once`.
#[derive(Debug, Clone, Args)]
pub struct GateArgs {
    /// Fail with exit code 3 when the compliance score is under RATIO: a ratio in 0..1
    /// (`0.8`) or a percentage (`80%`). The tenant's score over all its assessments, or with
    /// --assessment that assessment's. Undetected actions count 0 points: when only they keep
    /// the score under RATIO, the exit code is 4 (undecided), not 3.
    #[arg(long, value_name = "RATIO")]
    pub fail_under: Option<Threshold>,
    /// Fail with exit code 3 when an improvement action has one of these test statuses
    /// (comma-separated, e.g. `failed_high_risk,failed_medium_risk`; one line per status
    /// named, repeats ignored); `could_not_be_detected` and `to_be_detected` fail with exit
    /// code 4.
    #[arg(
        long,
        value_name = "STATUS,...",
        value_delimiter = ',',
        value_parser = PossibleValuesParser::new(TestStatus::ALL.map(TestStatus::as_str))
            .try_map(|s| crate::cli::action::parse_test_status(&s))
    )]
    pub fail_on: Vec<TestStatus>,
    /// Only this tenant: polled, reported and judged alone.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Judge this assessment (its score and its actions) instead of its tenant's, and report
    /// only its actions in JUnit and SARIF (table and JSON show its tenant); only its tenant
    /// is polled. A configured id, or `<tenant>-data-protection-baseline`.
    #[arg(long)]
    pub assessment: Option<String>,
    /// Write the output to this file instead of standard output.
    #[arg(long, value_name = "PATH")]
    pub output_file: Option<PathBuf>,
}

/// Run `once`: poll, store, write the output, judge the gate. `config_path` becomes the
/// SARIF results' physical location.
pub async fn run(
    cfg: Config,
    config_path: &Path,
    output: OnceOutput,
    args: GateArgs,
) -> anyhow::Result<ExitCode> {
    let app = Arc::new(assembly::build_app(cfg).await?);
    let selection = match select(&app, &args) {
        Ok(s) => s,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    poll(&app, &selection).await;
    let mut fail_on = args.fail_on;
    let mut seen = std::collections::HashSet::new();
    fail_on.retain(|s| seen.insert(*s));
    let gate = Gate {
        fail_under: args.fail_under,
        fail_on,
    };
    // One view for the output and the gate, so they never disagree.
    let view = if gate.is_set() || matches!(output, OnceOutput::Junit | OnceOutput::Sarif) {
        ci_report(&app, &selection).await
    } else {
        ci::CiReport {
            generated_at: Utc::now(),
            scopes: Vec::new(),
        }
    };
    let text = match output {
        OnceOutput::Table => report::render_table(&app.report(false).await),
        OnceOutput::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&app.report(true).await)?
        ),
        OnceOutput::Junit => report::junit::render(&view)?,
        OnceOutput::Sarif => {
            report::sarif::render(&view, crate::cli::VERSION, Some(&artifact_uri(config_path)))?
        }
    };
    match &args.output_file {
        Some(path) => std::fs::write(path, text.as_bytes())
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?,
        None => print!("{text}"),
    }
    if !gate.is_set() {
        return Ok(ExitCode::SUCCESS);
    }
    let verdict = gate::judge(&gate, &view);
    for finding in &verdict.findings {
        eprintln!("{finding}");
    }
    Ok(match verdict.outcome() {
        Outcome::Pass => ExitCode::SUCCESS,
        Outcome::Breach => ExitCode::from(EXIT_GATE_BREACH),
        Outcome::Undecided => ExitCode::from(EXIT_GATE_UNDECIDED),
    })
}

/// The selection the options name, checked against the configuration: an unknown tenant or
/// assessment, or an assessment of another tenant than `--tenant`, is refused with the known
/// ids.
fn select(app: &App, args: &GateArgs) -> Result<Selection, String> {
    let tenants: Vec<&str> = app.tenants().iter().map(|t| t.id.as_str()).collect();
    if let Some(t) = &args.tenant
        && !tenants.contains(&t.as_str())
    {
        return Err(format!(
            "--tenant {t}: no such tenant (configured: {})",
            tenants.join(", ")
        ));
    }
    let Some(id) = &args.assessment else {
        return Ok(args
            .tenant
            .clone()
            .map_or(Selection::All, Selection::Tenant));
    };
    let Some(a) = app.model.assessments.iter().find(|a| &a.id == id) else {
        let ids: Vec<&str> = app
            .model
            .assessments
            .iter()
            .map(|a| a.id.as_str())
            .collect();
        return Err(format!(
            "--assessment {id}: no such assessment (configured: {})",
            ids.join(", ")
        ));
    };
    if let Some(t) = &args.tenant
        && *t != a.tenant
    {
        return Err(format!(
            "--assessment {id} belongs to tenant {}, not to --tenant {t}",
            a.tenant
        ));
    }
    Ok(Selection::Assessment {
        tenant: a.tenant.clone(),
        assessment: a.id.clone(),
    })
}

/// Poll every connector of the selected tenants once, `[scheduler] max_concurrent_polls` at
/// a time. A poll never fails: collection problems become gaps and undetected actions.
async fn poll(app: &Arc<App>, selection: &Selection) {
    let permits = Arc::new(tokio::sync::Semaphore::new(
        app.config.scheduler.max_concurrent_polls,
    ));
    let mut polls = tokio::task::JoinSet::new();
    for tenant in app.tenants().iter().filter(|t| match selection {
        Selection::All => true,
        Selection::Tenant(id) | Selection::Assessment { tenant: id, .. } => t.id == *id,
    }) {
        for index in 0..tenant.connectors.len() {
            let (app, tenant, permits) = (app.clone(), tenant.clone(), permits.clone());
            polls.spawn(async move {
                let _permit = permits.acquire_owned().await;
                app.poll(&tenant, index).await
            });
        }
    }
    while polls.join_next().await.is_some() {}
}

/// The CI view of the selection over the app's latest evaluations.
async fn ci_report(app: &App, selection: &Selection) -> ci::CiReport {
    let model = app.compliance_model().await;
    let reports = model.reports();
    let evaluated_at = app
        .evaluations()
        .await
        .into_iter()
        .map(|e| (e.tenant, e.evaluated_at))
        .collect();
    let tenants: Vec<(String, Option<String>)> = app
        .tenants()
        .iter()
        .map(|t| (t.id.clone(), t.name.clone()))
        .collect();
    let registry = app.model.registry();
    let describe = |id: &str| match app.evaluator.action(id) {
        Some(def) => ActionText {
            description: def.description.clone(),
            risk: Some(def.risk),
        },
        None => ActionText {
            description: registry
                .iter()
                .flat_map(|t| &t.actions)
                .find(|a| a.id == id)
                .map(|a| a.description.clone())
                .unwrap_or_default(),
            risk: None,
        },
    };
    ci::build(
        &ci::CiInput {
            now: Utc::now(),
            tenants: &tenants,
            evaluated_at: &evaluated_at,
            model: &model,
            reports: &reports,
            describe: &describe,
        },
        selection,
    )
}

/// The configuration file as a URI for SARIF: a relative path as written (`/`-separated, so
/// a viewer resolves it against the repository), an absolute one as a `file://` URL.
fn artifact_uri(path: &Path) -> String {
    if path.is_absolute() {
        url::Url::from_file_path(path)
            .map(|u| u.to_string())
            .unwrap_or_else(|()| path.display().to_string())
    } else {
        path.components()
            .filter_map(|c| match c {
                std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                std::path::Component::ParentDir => Some("..".to_owned()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_file_is_a_relative_uri_or_a_file_url() {
        assert_eq!(
            artifact_uri(Path::new("./config/demo.toml")),
            "config/demo.toml"
        );
        assert_eq!(
            artifact_uri(Path::new("/etc/postured/postured.toml")),
            "file:///etc/postured/postured.toml"
        );
    }
}
