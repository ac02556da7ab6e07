//! Per-tenant evaluation: every action's status and points, the overall and per-category score,
//! and the status transitions since the previous evaluation.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ImplementationStatus, TestStatus};
use crate::signals::{Signal, SignalGap, SignalValue};

/// What the evaluator needs for one tenant. `signals` holds the latest value per key (fresh or
/// expired: expiry is judged against `now`); `gaps` the namespaces the latest polls could not
/// collect.
#[derive(Debug, Clone, Copy)]
pub struct EvaluationInput<'a> {
    pub tenant: &'a str,
    pub now: DateTime<Utc>,
    pub signals: &'a [Signal],
    pub gaps: &'a [SignalGap],
}

/// One improvement action's evaluated state for a tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionResult {
    /// Stable action id (`msgraph.mfa.all_users`, or `securescore.<controlName>`).
    pub action_id: String,
    pub title: String,
    pub category: String,
    pub solution: String,
    pub implementation_status: ImplementationStatus,
    pub test_status: TestStatus,
    /// Credit in [0, 1] (SCORING.md): 1 passed, f partial, 0 otherwise.
    pub credit: f64,
    /// The action's points (1..=99).
    pub points: u32,
    /// points × credit; 0 when out of scope.
    pub points_achieved: f64,
    /// points; 0 when out of scope.
    pub points_possible: f64,
    /// The rule text shown to users as the action's testing logic.
    pub testing_logic: String,
    /// Why the status is what it is when not plainly passed (failure detail, missing or stale
    /// signal, collection error).
    pub reason: Option<String>,
    /// Signals the rule read, with their values, for the audit trail.
    pub signals: Vec<(String, SignalValue)>,
}

/// Points and ratio over a set of action instances.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ScoreSummary {
    pub points_achieved: f64,
    pub points_possible: f64,
    /// points_achieved / points_possible in [0, 1]; 0 when nothing is possible.
    pub ratio: f64,
}

/// A tenant's evaluation at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantEvaluation {
    pub tenant: String,
    pub evaluated_at: DateTime<Utc>,
    /// Sorted by action id.
    pub actions: Vec<ActionResult>,
    pub score: ScoreSummary,
    /// Sorted by category name.
    pub categories: Vec<(String, ScoreSummary)>,
}

/// The last stored state of one action instance (what transitions are computed against).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionState {
    pub test_status: TestStatus,
    pub credit: f64,
    pub points_achieved: f64,
    pub points_possible: f64,
    /// When the current status began.
    pub since: DateTime<Utc>,
}

/// A change of an action instance's test status or credit between two evaluations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub action_id: String,
    /// `None` the first time the action is evaluated for the tenant.
    pub from_status: Option<TestStatus>,
    pub to_status: TestStatus,
    pub from_credit: Option<f64>,
    pub to_credit: f64,
    pub points_achieved: f64,
    pub points_possible: f64,
    pub reason: Option<String>,
    pub signals: Vec<(String, SignalValue)>,
    pub at: DateTime<Utc>,
}

/// Compiled catalog: rules parsed once, evaluated for every tenant and poll.
pub struct Evaluator {}

impl Evaluator {
    /// Evaluate every catalog action, plus one action per Secure Score control profile seen in
    /// the signals, for one tenant.
    pub fn evaluate(&self, _input: &EvaluationInput<'_>) -> TenantEvaluation {
        unimplemented!("evaluation work item")
    }
}

/// Transitions from the previous stored states to a new evaluation (status or credit changed,
/// or the action is new).
pub fn transitions(
    _previous: &HashMap<String, ActionState>,
    _current: &TenantEvaluation,
) -> Vec<Transition> {
    unimplemented!("evaluation work item")
}
