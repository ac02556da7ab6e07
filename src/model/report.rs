//! Point-in-time view of one assessment: what the exporters (Excel, CSV, JSON, OSCAL) and the
//! JSON report render. Built by the model from a tenant's evaluation and manual statuses.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::template::{ImplementationType, Responsibility};
use crate::evaluation::{ImplementationStatus, ScoreSummary, TestStatus};

/// Who or what sets an action's test status (SCORING.md "testing source").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ControlStatus {
    /// Every action passed, or at least one passed and the rest are out of scope.
    Passed,
    /// At least one action failed.
    Failed,
    /// No action has been tested (or the control has no actions).
    None,
    /// Every action is out of scope.
    OutOfScope,
    /// Testing under way or inconclusive (partial, could not be detected, some untested).
    InProgress,
}

/// Rollup status of an assessment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssessmentStatus {
    /// Every control passed or is out of scope.
    Complete,
    /// At least one control failed.
    Incomplete,
    /// No control tested (or none in scope).
    None,
    /// Otherwise.
    InProgress,
}

/// One action instance as it stands in an assessment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActionInstanceReport {
    /// Action id.
    pub id: String,
    /// Action title.
    pub title: String,
    /// Technical, operational or documentation.
    pub implementation_type: ImplementationType,
    /// Customer or provider managed.
    pub responsibility: Responsibility,
    /// Who set the test status.
    pub testing_source: TestingSource,
    /// Implementation status.
    pub implementation_status: ImplementationStatus,
    /// Test status.
    pub test_status: TestStatus,
    /// The action's points (1..=99).
    pub points: u32,
    /// points × credit; 0 when out of scope.
    pub points_achieved: f64,
    /// points; 0 when out of scope.
    pub points_possible: f64,
    /// Rule text for automatic actions; empty for manual ones.
    pub testing_logic: String,
    /// Why the status is what it is (failure detail, missing signal, "set manually" ...).
    pub reason: Option<String>,
    /// Owner, from the manual status record.
    pub assigned_to: Option<String>,
    /// Implementation notes, from the manual status record.
    pub notes: Option<String>,
    /// When the implementation status was set, from the manual status record.
    #[serde(default)]
    pub implementation_date: Option<DateTime<Utc>>,
    /// Test notes, from the manual status record.
    #[serde(default)]
    pub test_notes: Option<String>,
    /// When the test status was set, from the manual status record.
    #[serde(default)]
    pub test_date: Option<DateTime<Utc>>,
    /// Evidence links (URLs or document references).
    pub evidence: Vec<String>,
    /// How to carry the action out (the template action's `guidance`; empty for technical
    /// actions completed from the catalog).
    #[serde(default)]
    pub guidance: String,
    /// What an auditor would expect to see as evidence (the template action's `evidence`).
    #[serde(default)]
    pub expected_evidence: String,
    /// When the current test status was set: the manual record's time for manual and parent
    /// sources; for automatic ones, when the daemon knows it, since the stored status began
    /// (`None` from the pure model alone).
    pub status_since: Option<DateTime<Utc>>,
}

/// One control with its rollup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ControlReport {
    /// Control id.
    pub id: String,
    /// Control family.
    pub family: String,
    /// Control title.
    pub title: String,
    /// Control description.
    pub description: String,
    /// Rollup of its actions' statuses.
    pub status: ControlStatus,
    /// Ids of the actions mapped to this control (details in [`AssessmentReport::actions`]).
    pub actions: Vec<String>,
}

/// A point-in-time report of one assessment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssessmentReport {
    /// Assessment id.
    pub id: String,
    /// Tenant id.
    pub tenant: String,
    /// Group id.
    pub group: String,
    /// Template id.
    pub template_id: String,
    /// Template title.
    pub template_title: String,
    /// Regulation / standard (template `certification`).
    pub certification: String,
    /// The instant the report describes (the evaluation's `now`).
    pub generated_at: DateTime<Utc>,
    /// Score over this assessment's instances, each once.
    pub score: ScoreSummary,
    /// Rollup of its controls' statuses.
    pub status: AssessmentStatus,
    /// Share of controls passed (out-of-scope controls excluded), in [0, 1].
    pub progress: f64,
    /// Share of the possible points whose instances are tested automatically (testing source
    /// `automatic`), in [0, 1]; 0 without possible points.
    #[serde(default)]
    pub automated_points_ratio: f64,
    /// Controls in template order.
    pub controls: Vec<ControlReport>,
    /// Every action instance of the assessment, each once, sorted by id.
    pub actions: Vec<ActionInstanceReport>,
}
