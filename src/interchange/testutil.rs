//! Test helpers of the interchange module: a small assessment report whose texts can be
//! chosen (hostile titles, long notes).

use chrono::{TimeZone, Utc};

use crate::evaluation::{ImplementationStatus, ScoreSummary, TestStatus};
use crate::model::report::{
    ActionInstanceReport, AssessmentReport, AssessmentStatus, ControlReport, ControlStatus,
    TestingSource,
};
use crate::model::template::{ImplementationType, Responsibility};

/// A report with one control `C-1` (titled `control_title`) and one action `a.one` (titled
/// `action_title`, with `notes` and `reason`).
pub(crate) fn report(
    control_title: &str,
    action_title: &str,
    notes: &str,
    reason: &str,
) -> AssessmentReport {
    AssessmentReport {
        id: "t-acme".into(),
        tenant: "t".into(),
        group: "default".into(),
        template_id: "acme".into(),
        template_title: "ACME".into(),
        certification: "ACME 1.0".into(),
        generated_at: Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap(),
        score: ScoreSummary {
            points_achieved: 1.0,
            points_possible: 3.0,
            ratio: 1.0 / 3.0,
        },
        status: AssessmentStatus::InProgress,
        progress: 0.0,
        automated_points_ratio: 0.0,
        controls: vec![ControlReport {
            id: "C-1".into(),
            family: "F".into(),
            title: control_title.into(),
            description: String::new(),
            status: ControlStatus::InProgress,
            actions: vec!["a.one".into()],
        }],
        actions: vec![ActionInstanceReport {
            id: "a.one".into(),
            title: action_title.into(),
            implementation_type: ImplementationType::Documentation,
            responsibility: Responsibility::Customer,
            testing_source: TestingSource::Manual,
            implementation_status: ImplementationStatus::Planned,
            test_status: TestStatus::None,
            points: 3,
            points_achieved: 1.0,
            points_possible: 3.0,
            testing_logic: String::new(),
            reason: Some(reason.into()),
            assigned_to: Some("@owner".into()),
            notes: Some(notes.into()),
            implementation_date: None,
            test_notes: None,
            test_date: None,
            evidence: vec!["=HYPERLINK(\"https://evil.example\")".into()],
            guidance: String::new(),
            expected_evidence: String::new(),
            status_since: None,
        }],
    }
}
