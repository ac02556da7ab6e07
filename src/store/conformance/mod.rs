//! Store conformance suite: behavioural checks every [`Store`] backend must pass, compiled for
//! the library's unit tests only.
//!
//! `polls.rs` checks polls, signals, gaps, action states, transitions and score snapshots
//! ([`polls::CHECKS`]), `compact.rs` compact poll records and what a steady poll skips
//! ([`compact::COMPACT_CHECKS`]), `model.rs` templates and manual statuses ([`model::MODEL_CHECKS`]),
//! `alerts.rs` the alert ledger, outbox and snapshots ([`alerts::ALERT_CHECKS`]), `audit.rs` the
//! append-only audit log ([`audit::AUDIT_CHECKS`]), `evidence.rs` evidence and automatic
//! evidence ([`evidence::EVIDENCE_CHECKS`]), `tokens.rs` API tokens ([`tokens::TOKEN_CHECKS`]),
//! `batch.rs` a poll larger than one multi-row statement ([`batch::BATCH_CHECKS`]).
//! The SQLite
//! unit tests (`sqlite.rs`) run them on a fresh database file per check; the PostgreSQL ones
//! (`postgres.rs`) on a fresh schema per check of the server `POSTURED_TEST_POSTGRES_URL`
//! names, and skip themselves with a note when it is unset.
//!
//! Must not: be called on a production database (checks write rows for `conformance-*`
//! tenants).

pub(crate) mod alerts;
pub(crate) mod audit;
pub(crate) mod batch;
pub(crate) mod compact;
pub(crate) mod evidence;
pub(crate) mod model;
pub(crate) mod polls;
pub(crate) mod tokens;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use chrono::DateTime;

use crate::evaluation::{
    ActionResult, ImplementationStatus, ScoreSummary, TenantEvaluation, TestStatus,
};
use crate::store::{PollOutcome, PollRecord, Store, StoreError};

/// Why a check failed.
#[derive(Debug, Clone, PartialEq)]
pub struct ConformanceFailure(pub String);

impl fmt::Display for ConformanceFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConformanceFailure {}

impl From<StoreError> for ConformanceFailure {
    fn from(e: StoreError) -> Self {
        ConformanceFailure(format!("unexpected store error ({}): {e}", e.kind()))
    }
}

/// Outcome of one check.
pub type CheckResult = Result<(), ConformanceFailure>;

/// A boxed check future borrowing the store.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = CheckResult> + Send + 'a>>;

/// One named check. `run` expects a freshly migrated, empty store.
#[derive(Clone, Copy)]
pub struct Check {
    /// Check name (the function name).
    pub name: &'static str,
    /// Runs the check against a store.
    pub run: for<'a> fn(&'a dyn Store) -> CheckFuture<'a>,
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Check").field("name", &self.name).finish()
    }
}

/// Run each check against the store `fresh` opens for it (freshly migrated and empty), and list
/// the failures as `check name: reason`.
pub async fn failures<'c, S, F, Fut>(
    checks: impl IntoIterator<Item = &'c Check>,
    mut fresh: F,
) -> Vec<String>
where
    S: Store,
    F: FnMut(&'static str) -> Fut,
    Fut: Future<Output = S>,
{
    let mut failures = Vec::new();
    for check in checks {
        let store = fresh(check.name).await;
        if let Err(e) = (check.run)(&store).await {
            failures.push(format!("{}: {e}", check.name));
        }
    }
    failures
}

/// An evaluation of `tenant` with one passed action, at `minute` past a fixed instant (for the
/// backends' own tests).
pub(crate) fn one_action_poll(tenant: &str, minute: i64) -> TenantEvaluation {
    let now = DateTime::from_timestamp_millis(1_800_000_000_000 + minute * 60_000)
        .expect("instant in range");
    TenantEvaluation {
        tenant: tenant.into(),
        evaluated_at: now,
        actions: vec![ActionResult {
            action_id: "a.passed".into(),
            title: "".into(),
            category: "".into(),
            solution: "".into(),
            implementation_status: ImplementationStatus::Implemented,
            test_status: TestStatus::Passed,
            credit: 1.0,
            points: 27,
            points_achieved: 27.0,
            points_possible: 27.0,
            testing_logic: "".into(),
            reason: None,
            cause: None,
            signals: Vec::new(),
        }],
        score: ScoreSummary::default(),
        categories: Vec::new(),
    }
}

/// Record a successful poll of `evaluation`'s tenant with no signals and no transitions.
pub(crate) async fn record_one(
    store: &dyn Store,
    evaluation: &TenantEvaluation,
) -> Result<(), StoreError> {
    store
        .record_poll(&PollRecord {
            tenant: &evaluation.tenant,
            connector: "msgraph",
            started_at: evaluation.evaluated_at,
            finished_at: evaluation.evaluated_at,
            outcome: PollOutcome::Success,
            signals: &[],
            gaps: &[],
            evaluation,
            transitions: &[],
            assessments: &[],
            alerts: Default::default(),
            evidence: &[],
            after_start: false,
        })
        .await
}
