//! Command line: `run`, `once`, `check-config`, `print-config`, `migrate`, `record`, `history`,
//! `template import|list`, `export`, `action set`.
//!
//! Exit codes: 0 success, 64 invalid configuration (every problem printed, with its key path),
//! 65 invalid template import file (every problem printed, located), 1 any other error, 130
//! when a second signal forces an immediate exit. `run` answers SIGHUP with a configuration
//! reload ([`daemon`]).

pub mod action;
pub mod assets;
pub mod audit;
mod daemon;
pub mod interchange;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use postured_connectors::record::PersonalData;

use crate::config::{Config, ConfigError, ConfigProblem, Secrets};
use crate::{assembly, report, telemetry};

/// Exit code for an invalid configuration.
pub const EXIT_CONFIG: u8 = 64;

/// `postured --version`: the package version and the git commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("POSTURED_GIT_COMMIT"),
    ")"
);

/// postured: continuous compliance assessment daemon.
#[derive(Debug, Parser)]
#[command(name = "postured", version = VERSION, about)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: poll every tenant on its schedule and serve /metrics and the API.
    Run {
        /// Configuration file.
        #[arg(long, short, env = "POSTURED_CONFIG")]
        config: PathBuf,
    },
    /// Poll every tenant once, store the results, print the scores and exit.
    Once {
        /// Configuration file.
        #[arg(long, short, env = "POSTURED_CONFIG")]
        config: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Validate a configuration file; prints every problem with its key path (exit 64).
    CheckConfig {
        /// Configuration file.
        file: PathBuf,
    },
    /// Print a fully commented example configuration.
    PrintConfig,
    /// Write the manual pages and shell completions into a directory (for packages).
    #[command(hide = true)]
    GenerateAssets {
        /// Output directory (`man/`, `completions/` are created in it).
        out: PathBuf,
    },
    /// Apply database migrations and exit.
    Migrate {
        /// Configuration file (its [store] section is used).
        #[arg(long, short, env = "POSTURED_CONFIG")]
        config: PathBuf,
    },
    /// Record a tenant's live responses to a directory for replay (secrets and tokens are
    /// never written; files are private to their owner, mode 0600). Personal data (user
    /// principal names, display names, e-mail addresses, user ids) is replaced by keyed
    /// pseudonyms, consistent within the recording, so it can be shared.
    Record {
        /// Configuration file.
        #[arg(long, short, env = "POSTURED_CONFIG")]
        config: PathBuf,
        /// Tenant id to record.
        #[arg(long)]
        tenant: String,
        /// Directory to write the recording to (created if missing, mode 0700).
        #[arg(long)]
        out: PathBuf,
        /// Write personal data as received instead of pseudonymising it.
        #[arg(long)]
        keep_personal_data: bool,
    },
    /// Print a tenant's stored status transitions (oldest first), its per-action ledger
    /// (first failed, time in state, regressions, time to recover) and its alert events.
    History {
        /// Configuration file.
        #[arg(long, short, env = "POSTURED_CONFIG")]
        config: PathBuf,
        /// Tenant id.
        #[arg(long)]
        tenant: String,
        /// Only this improvement action.
        #[arg(long)]
        action: Option<String>,
        /// Only transitions at or after this RFC 3339 instant.
        #[arg(long)]
        since: Option<DateTime<Utc>>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Import or list compliance templates (see `postured template --help`).
    Template {
        /// Configuration file: imported templates are saved to its store (without it, `import`
        /// only validates).
        #[arg(long, short, global = true, env = "POSTURED_CONFIG")]
        config: Option<PathBuf>,
        /// `import` or `list`.
        #[command(subcommand)]
        command: crate::cli::interchange::TemplateCommand,
    },
    /// Set manual statuses of improvement actions (see `postured action set --help`).
    Action {
        /// `set`.
        #[command(subcommand)]
        command: ActionCommand,
    },
    /// Export the append-only audit log (see `postured audit export --help`).
    Audit {
        /// `export`.
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Export an assessment as a point-in-time report (xlsx, csv, json or OSCAL
    /// assessment-results).
    Export {
        /// Configuration file.
        #[arg(long, short, env = "POSTURED_CONFIG")]
        config: PathBuf,
        /// Tenant id.
        #[arg(long)]
        tenant: String,
        /// Assessment id: a configured one, or `<tenant>-<template id>` (e.g.
        /// `contoso-data-protection-baseline`).
        #[arg(long)]
        assessment: String,
        /// Output format.
        #[arg(long, value_enum)]
        format: crate::cli::interchange::ExportFormat,
        /// File to write.
        #[arg(long)]
        out: PathBuf,
    },
}

/// `postured action ...`.
#[derive(Debug, Subcommand)]
pub enum ActionCommand {
    /// Record a person's status, owner, notes or evidence for one action instance: a
    /// technical or provider-managed action of a tenant (`--tenant`), or a non-technical action
    /// of a group (`--group`). Setting a status makes the testing source `manual` (automation
    /// no longer overwrites it) unless `--testing-source` says otherwise; `--testing-source
    /// automatic` hands it back to the rule. Shown from the next poll on.
    Set {
        /// Configuration file.
        #[arg(long, short, env = "POSTURED_CONFIG")]
        config: PathBuf,
        /// Tenant (technical and provider-managed actions).
        #[arg(long, conflicts_with = "group", required_unless_present = "group")]
        tenant: Option<String>,
        /// Group (operational and documentation actions).
        #[arg(long)]
        group: Option<String>,
        /// Action id.
        #[arg(long)]
        action: String,
        /// not_implemented, planned, implemented, alternative_implementation, out_of_scope.
        #[arg(long, value_parser = crate::cli::action::parse_implementation_status)]
        implementation_status: Option<crate::evaluation::ImplementationStatus>,
        /// A test status: none, not_assessed, in_progress, passed, failed_high_risk, ...
        #[arg(long, value_parser = crate::cli::action::parse_test_status)]
        test_status: Option<crate::evaluation::TestStatus>,
        /// manual, automatic or parent.
        #[arg(long, value_parser = crate::cli::action::parse_testing_source)]
        testing_source: Option<crate::model::report::TestingSource>,
        /// Action whose status is copied (with `--testing-source parent`).
        #[arg(long)]
        parent: Option<String>,
        /// Owner.
        #[arg(long)]
        assigned_to: Option<String>,
        /// Implementation notes.
        #[arg(long, visible_alias = "implementation-notes")]
        notes: Option<String>,
        /// When the implementation status was set (RFC 3339; default: now when it changes).
        #[arg(long)]
        implementation_date: Option<DateTime<Utc>>,
        /// Test notes.
        #[arg(long)]
        test_notes: Option<String>,
        /// When the test status was set (RFC 3339; default: now when it changes).
        #[arg(long)]
        test_date: Option<DateTime<Utc>>,
        /// Evidence link to add (repeatable).
        #[arg(long)]
        evidence: Vec<String>,
    },
}

/// `postured audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Write the audit log (every change: who, when, what, old and new value) to standard
    /// output, oldest first.
    Export {
        /// Configuration file (its [store] section is used).
        #[arg(long, short, env = "POSTURED_CONFIG")]
        config: PathBuf,
        /// Only rows at or after this RFC 3339 instant.
        #[arg(long)]
        since: Option<DateTime<Utc>>,
        /// Only rows of this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// `csv` or `json` (an array).
        #[arg(long, value_enum, default_value_t = crate::cli::audit::AuditFormat::Json)]
        format: crate::cli::audit::AuditFormat,
    },
}

/// Output format of `once` and `history`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Output {
    /// Human-readable tables.
    Table,
    /// JSON (see README.md for the report shape).
    Json,
}

/// Run the parsed command line and return the process exit code.
pub fn main(cli: Cli) -> ExitCode {
    match &cli.command {
        Command::PrintConfig => {
            print!("{}", crate::config::EXAMPLE);
            return ExitCode::SUCCESS;
        }
        Command::GenerateAssets { out } => {
            return match assets::generate(out) {
                Ok(files) => {
                    for f in files {
                        println!("{}", f.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: writing into {}: {e}", out.display());
                    ExitCode::FAILURE
                }
            };
        }
        Command::CheckConfig { file } => return check_config(file),
        _ => {}
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match dispatch(cli.command).await {
            Ok(code) => code,
            Err(Failure::Config(e)) => config_failure(&e),
            Err(Failure::Other(e)) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        }
    })
}

/// `postured check-config`: the file's own problems (every secret resolved), then assessments
/// naming a template that exists nowhere (built in, `[templates] dirs`, or imported into the
/// store), and a `[server] listen` address that cannot be bound (in use, or not allowed).
/// The catalog (the kinds', `[catalog] path`, and the files connectors name) must compile.
fn check_config(file: &std::path::Path) -> ExitCode {
    let cfg = match Config::load_resolving(file, Secrets::ALL) {
        Ok(cfg) => cfg,
        Err(e) => return config_failure(&e),
    };
    if let Err(e) = assembly::evaluator(&cfg) {
        eprintln!("error: {e:#}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let unknown = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(assembly::unknown_templates(&cfg)))
        .map(|mut problems| {
            problems.extend(listen_problem(&cfg.server.listen));
            problems
        });
    match unknown {
        Ok(problems) if problems.is_empty() => {
            println!(
                "{}: ok ({} tenant(s), {} connector(s), {} assessment(s))",
                file.display(),
                cfg.tenants.len(),
                cfg.tenants
                    .iter()
                    .map(|t| t.connectors.len())
                    .sum::<usize>(),
                cfg.active_assessments().len()
            );
            ExitCode::SUCCESS
        }
        Ok(problems) => config_failure(&ConfigError {
            source_name: file.display().to_string(),
            problems,
        }),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `postured run` could listen on `listen` (a valid `IP:port`): bound and released at
/// once; port 0 (any free port) is not tried.
fn listen_problem(listen: &str) -> Option<ConfigProblem> {
    let addr: std::net::SocketAddr = listen.parse().ok()?;
    if addr.port() == 0 {
        return None;
    }
    match std::net::TcpListener::bind(addr) {
        Ok(_) => None,
        Err(e) => Some(ConfigProblem::new(
            "server.listen",
            match e.kind() {
                std::io::ErrorKind::AddrInUse => {
                    format!("{listen} is in use (is postured already running?)")
                }
                _ => format!("cannot listen on {listen}: {e}"),
            },
        )),
    }
}

fn config_failure(e: &ConfigError) -> ExitCode {
    eprint!("{e}");
    ExitCode::from(EXIT_CONFIG)
}

enum Failure {
    Config(ConfigError),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        match e.downcast::<ConfigError>() {
            Ok(config) => Failure::Config(config),
            Err(other) => Failure::Other(other),
        }
    }
}

/// Load the configuration resolving only the `secrets` the command uses, and start logging.
fn load(path: &std::path::Path, secrets: Secrets) -> Result<Config, Failure> {
    let cfg = Config::load_resolving(path, secrets).map_err(Failure::Config)?;
    telemetry::init(&cfg.log);
    Ok(cfg)
}

async fn dispatch(command: Command) -> Result<ExitCode, Failure> {
    match command {
        Command::Run { config } => daemon::run(&config, load(&config, Secrets::ALL)?).await,
        Command::Once { config, output } => once(load(&config, Secrets::CONNECTORS)?, output).await,
        Command::Migrate { config } => {
            let cfg = load(&config, Secrets::NONE)?;
            assembly::open_store(&cfg).await?;
            println!("migrations applied to {}", redact_url(&cfg.store.url));
            Ok(ExitCode::SUCCESS)
        }
        Command::Record {
            config,
            tenant,
            out,
            keep_personal_data,
        } => {
            let cfg = load(&config, Secrets::CONNECTORS)?;
            let personal = if keep_personal_data {
                PersonalData::Keep
            } else {
                PersonalData::Pseudonymise
            };
            let written = assembly::record(&cfg, &tenant, &out, personal).await?;
            println!(
                "recorded {written} response(s) of tenant {tenant} to {}",
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::History {
            config,
            tenant,
            action,
            since,
            output,
        } => {
            let cfg = load(&config, Secrets::NONE)?;
            let store = assembly::open_store(&cfg).await?;
            let history = crate::report::ledger::load(
                store.as_ref(),
                &tenant,
                action.as_deref(),
                since,
                Utc::now(),
            )
            .await
            .map_err(anyhow::Error::from)?;
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&history).map_err(anyhow::Error::from)?
                ),
                Output::Table => {
                    println!("Transitions");
                    print!("{}", report::render_history(&history.transitions));
                    print!("{}", crate::report::ledger::render(&history));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Template { config, command } => {
            let cfg = match config {
                Some(path) => Some(load(&path, Secrets::NONE)?),
                None => None,
            };
            Ok(crate::cli::interchange::template(cfg, command).await?)
        }
        Command::Export {
            config,
            tenant,
            assessment,
            format,
            out,
        } => {
            let cfg = load(&config, Secrets::NONE)?;
            Ok(crate::cli::interchange::export(cfg, &tenant, &assessment, format, &out).await?)
        }
        Command::Action {
            command:
                ActionCommand::Set {
                    config,
                    tenant,
                    group,
                    action,
                    implementation_status,
                    test_status,
                    testing_source,
                    parent,
                    assigned_to,
                    notes,
                    implementation_date,
                    test_notes,
                    test_date,
                    evidence,
                },
        } => {
            let cfg = load(&config, Secrets::NONE)?;
            let update = crate::model::ManualUpdate {
                testing_source,
                implementation_status,
                test_status,
                parent,
                assigned_to,
                notes,
                implementation_date,
                test_notes,
                test_date,
                evidence,
            };
            let set = crate::app::model::ActionSet {
                tenant,
                group,
                action,
                update,
            };
            Ok(crate::cli::action::action_set(cfg, set).await?)
        }
        Command::Audit {
            command:
                AuditCommand::Export {
                    config,
                    since,
                    tenant,
                    format,
                },
        } => {
            let cfg = load(&config, Secrets::NONE)?;
            Ok(crate::cli::audit::export(cfg, since, tenant, format).await?)
        }
        Command::PrintConfig | Command::CheckConfig { .. } | Command::GenerateAssets { .. } => {
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Hide a password in a database URL before printing it.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

async fn once(cfg: Config, output: Output) -> Result<ExitCode, Failure> {
    let app = Arc::new(assembly::build_app(cfg).await?);
    let permits = Arc::new(tokio::sync::Semaphore::new(
        app.config.scheduler.max_concurrent_polls,
    ));
    let mut polls = tokio::task::JoinSet::new();
    for tenant in app.tenants().iter().cloned() {
        for index in 0..tenant.connectors.len() {
            let (app, tenant, permits) = (app.clone(), tenant.clone(), permits.clone());
            polls.spawn(async move {
                let _permit = permits.acquire_owned().await;
                app.poll(&tenant, index).await
            });
        }
    }
    while polls.join_next().await.is_some() {}
    let r = app.report(output == Output::Json).await;
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&r).map_err(anyhow::Error::from)?
        ),
        Output::Table => print!("{}", report::render_table(&r)),
    }
    Ok(ExitCode::SUCCESS)
}
