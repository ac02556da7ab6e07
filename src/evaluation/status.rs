//! Implementation and test statuses (SCORING.md "Statuses") and the credit they earn.

use serde::{Deserialize, Serialize};

/// Whether an improvement action has been put in place, as a person or provider reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImplementationStatus {
    NotImplemented,
    Planned,
    Implemented,
    AlternativeImplementation,
    OutOfScope,
}

/// Result of testing an improvement action, set automatically by a rule or by a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestStatus {
    None,
    NotAssessed,
    InProgress,
    ToBeDetected,
    CouldNotBeDetected,
    PartiallyTested,
    Passed,
    FailedLowRisk,
    FailedMediumRisk,
    FailedHighRisk,
    OutOfScope,
}

impl TestStatus {
    /// Every status, in the order of SCORING.md.
    pub const ALL: [TestStatus; 11] = [
        TestStatus::None,
        TestStatus::NotAssessed,
        TestStatus::InProgress,
        TestStatus::ToBeDetected,
        TestStatus::CouldNotBeDetected,
        TestStatus::PartiallyTested,
        TestStatus::Passed,
        TestStatus::FailedLowRisk,
        TestStatus::FailedMediumRisk,
        TestStatus::FailedHighRisk,
        TestStatus::OutOfScope,
    ];

    /// Stable snake_case name, as stored and exported (`"failed_high_risk"`).
    pub fn as_str(self) -> &'static str {
        match self {
            TestStatus::None => "none",
            TestStatus::NotAssessed => "not_assessed",
            TestStatus::InProgress => "in_progress",
            TestStatus::ToBeDetected => "to_be_detected",
            TestStatus::CouldNotBeDetected => "could_not_be_detected",
            TestStatus::PartiallyTested => "partially_tested",
            TestStatus::Passed => "passed",
            TestStatus::FailedLowRisk => "failed_low_risk",
            TestStatus::FailedMediumRisk => "failed_medium_risk",
            TestStatus::FailedHighRisk => "failed_high_risk",
            TestStatus::OutOfScope => "out_of_scope",
        }
    }

    /// Parse a stored name; `None` for an unknown name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Any `failed_*_risk` status.
    pub fn is_failed(self) -> bool {
        matches!(
            self,
            TestStatus::FailedLowRisk | TestStatus::FailedMediumRisk | TestStatus::FailedHighRisk
        )
    }
}

impl ImplementationStatus {
    /// Stable snake_case name, as stored and exported.
    pub fn as_str(self) -> &'static str {
        match self {
            ImplementationStatus::NotImplemented => "not_implemented",
            ImplementationStatus::Planned => "planned",
            ImplementationStatus::Implemented => "implemented",
            ImplementationStatus::AlternativeImplementation => "alternative_implementation",
            ImplementationStatus::OutOfScope => "out_of_scope",
        }
    }

    /// Parse a stored name; `None` for an unknown name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            ImplementationStatus::NotImplemented,
            ImplementationStatus::Planned,
            ImplementationStatus::Implemented,
            ImplementationStatus::AlternativeImplementation,
            ImplementationStatus::OutOfScope,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}
