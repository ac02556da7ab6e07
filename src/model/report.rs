//! Point-in-time view of one assessment: what the exporters (Excel, CSV, JSON, OSCAL) and the
//! JSON report render. Built by the model from a tenant's evaluation and manual statuses.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::template::{ImplementationType, Responsibility};
use crate::evaluation::{ImplementationStatus, ScoreSummary, TestStatus};

/// Who or what sets an action's test status (SCORING.md "testing source").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestingSource {
    /// A rule over signals.
    Automatic,
    /// A person.
    Manual,
    /// Copied from another action.
    Parent,
}

/// Rollup status of a control (SCORING.md "Rollups").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlStatus {
    Passed,
    Failed,
    None,
    OutOfScope,
    InProgress,
}

/// Rollup status of an assessment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssessmentStatus {
    Complete,
    Incomplete,
    None,
    InProgress,
}

/// One action instance as it stands in an assessment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionInstanceReport {
    pub id: String,
    pub title: String,
    pub implementation_type: ImplementationType,
    pub responsibility: Responsibility,
    pub testing_source: TestingSource,
    pub implementation_status: ImplementationStatus,
    pub test_status: TestStatus,
    /// The action's points (1..=99).
    pub points: u32,
    pub points_achieved: f64,
    pub points_possible: f64,
    /// Rule text for automatic actions; empty for manual ones.
    pub testing_logic: String,
    pub reason: Option<String>,
    pub assigned_to: Option<String>,
    pub notes: Option<String>,
    /// Evidence links (URLs or document references).
    pub evidence: Vec<String>,
    /// When the current test status was set.
    pub status_since: Option<DateTime<Utc>>,
}

/// One control with its rollup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlReport {
    pub id: String,
    pub family: String,
    pub title: String,
    pub description: String,
    pub status: ControlStatus,
    /// Ids of the actions mapped to this control (details in [`AssessmentReport::actions`]).
    pub actions: Vec<String>,
}

/// A point-in-time report of one assessment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssessmentReport {
    /// Assessment id.
    pub id: String,
    pub tenant: String,
    pub group: String,
    pub template_id: String,
    pub template_title: String,
    /// Regulation / standard (template `certification`).
    pub certification: String,
    pub generated_at: DateTime<Utc>,
    /// Score over this assessment's instances, each once.
    pub score: ScoreSummary,
    pub status: AssessmentStatus,
    /// Share of controls passed, in [0, 1].
    pub progress: f64,
    pub controls: Vec<ControlReport>,
    /// Every action instance of the assessment, each once, sorted by id.
    pub actions: Vec<ActionInstanceReport>,
}
