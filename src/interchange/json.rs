//! JSON export of an assessment report: the [`AssessmentReport`] itself, serialised with its
//! serde field names (snake_case statuses, RFC 3339 times). Template JSON import is OSCAL
//! (see [`super::oscal`]).

use super::ExportError;
use crate::model::report::AssessmentReport;

/// The report as pretty-printed JSON (the shape of [`AssessmentReport`]).
///
/// # Errors
///
/// Serialisation failure (e.g. a non-finite number).
pub fn report_to_json(report: &AssessmentReport) -> Result<String, ExportError> {
    Ok(serde_json::to_string_pretty(report)?)
}
