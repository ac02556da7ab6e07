//! `postured action set`: record a person's status, owner, notes or evidence for an action
//! instance, and the parsers of its status arguments.
//!
//! Must not: decide the scope of an action itself (the model runtime does).

use std::process::ExitCode;

use chrono::Utc;

use super::EXIT_CONFIG;
use crate::app::model::{ActionSet, Actor, ModelRuntime, apply_action_set};
use crate::config::Config;
use crate::evaluation::{ImplementationStatus, TestStatus};
use crate::model::report::TestingSource;

/// Run `postured action set`: validate, save, print the record. Exit code 64 for a usage
/// problem, nothing saved: a malformed or unknown action id, a field past its limit, an
/// unknown tenant or group, or the wrong scope (the checks of the API,
/// [`crate::server::input::check_action_set`]).
///
/// # Errors
///
/// Store and catalog errors.
pub async fn action_set(cfg: Config, set: ActionSet) -> anyhow::Result<ExitCode> {
    let evaluator = crate::assembly::evaluator(&cfg)?;
    let store = crate::assembly::open_store(&cfg).await?;
    let (runtime, problems) = ModelRuntime::new(&cfg, &evaluator);
    for p in problems {
        tracing::warn!("template problem: {p}");
    }
    runtime.refresh(store.as_ref()).await?;
    let checked =
        crate::server::input::check_action_set(&runtime, &evaluator, store.as_ref(), &cfg, &set)
            .await;
    let scope = match checked {
        Ok(s) => s,
        Err(crate::server::input::ActionSetError::Store(e)) => return Err(e.into()),
        Err(e) => {
            eprintln!("postured action set: {e}");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    let record = apply_action_set(
        store.as_ref(),
        scope,
        &set.action,
        set.update,
        &Actor::cli(),
        Utc::now(),
    )
    .await?;
    println!("{}", serde_json::to_string_pretty(&record)?);
    Ok(ExitCode::SUCCESS)
}

/// Parse an implementation status name for the CLI.
///
/// # Errors
///
/// The list of valid names.
pub fn parse_implementation_status(s: &str) -> Result<ImplementationStatus, String> {
    ImplementationStatus::parse(s).ok_or_else(|| {
        "expected one of not_implemented, planned, implemented, alternative_implementation, out_of_scope".to_string()
    })
}

/// Parse a test status name for the CLI.
///
/// # Errors
///
/// The list of valid names.
pub fn parse_test_status(s: &str) -> Result<TestStatus, String> {
    TestStatus::parse(s).ok_or_else(|| {
        let names: Vec<&str> = TestStatus::ALL.iter().map(|t| t.as_str()).collect();
        format!("expected one of {}", names.join(", "))
    })
}

/// Parse a testing source name for the CLI (`manual`, `automatic` or `parent`).
///
/// # Errors
///
/// The list of valid names.
pub fn parse_testing_source(s: &str) -> Result<TestingSource, String> {
    match s {
        "manual" => Ok(TestingSource::Manual),
        "automatic" => Ok(TestingSource::Automatic),
        "parent" => Ok(TestingSource::Parent),
        _ => Err("expected one of manual, automatic, parent".to_string()),
    }
}
