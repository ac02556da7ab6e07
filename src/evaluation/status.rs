//! Implementation and test statuses (SCORING.md "Statuses"), the risk of a failure, and the
//! credit each status earns. Pure data: no IO.

use serde::{Deserialize, Serialize};

/// Whether an improvement action has been put in place, as a person or provider reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImplementationStatus {
    /// Not in place (or not shown to be: an automatic test that did not pass).
    NotImplemented,
    /// Someone intends to put it in place.
    Planned,
    /// In place (an automatic test passed).
    Implemented,
    /// Covered another way (a family item in an alternative state, e.g. Secure Score `reviewed`).
    AlternativeImplementation,
    /// Does not apply to this tenant; leaves the score.
    OutOfScope,
}

/// Result of testing an improvement action, set automatically by a rule or by a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TestStatus {
    /// Never tested.
    None,
    /// Deliberately not assessed.
    NotAssessed,
    /// A manual test is under way.
    InProgress,
    /// Automatic testing is set up but has not run yet.
    ToBeDetected,
    /// An automatic test could not decide (missing, stale or uncollected signal, rule error).
    CouldNotBeDetected,
    /// Partly in place; the credit is the rule's fraction.
    PartiallyTested,
    /// In place.
    Passed,
    /// Not in place; low risk.
    FailedLowRisk,
    /// Not in place; medium risk.
    FailedMediumRisk,
    /// Not in place; high risk.
    FailedHighRisk,
    /// Does not apply to this tenant (not applicable, or ignored); leaves the score.
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

/// Risk of a failed test: which `failed_<risk>_risk` status a failing rule yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    /// `failed_low_risk`.
    Low,
    /// `failed_medium_risk` (the default when a catalog entry names no risk).
    #[default]
    Medium,
    /// `failed_high_risk`.
    High,
}

impl Risk {
    /// Every risk level.
    pub const ALL: [Risk; 3] = [Risk::Low, Risk::Medium, Risk::High];

    /// Stable snake_case name (`"high"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }

    /// Parse a name; `None` when unknown.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The failed test status of this risk.
    pub fn failed_status(self) -> TestStatus {
        match self {
            Risk::Low => TestStatus::FailedLowRisk,
            Risk::Medium => TestStatus::FailedMediumRisk,
            Risk::High => TestStatus::FailedHighRisk,
        }
    }
}

impl TestStatus {
    /// Credit a status earns (SCORING.md): `passed` 1, `partially_tested` the rule's fraction
    /// (clamped to [0, 1]), every other status 0.
    pub fn credit(self, fraction: f64) -> f64 {
        match self {
            TestStatus::Passed => 1.0,
            TestStatus::PartiallyTested if fraction.is_finite() => fraction.clamp(0.0, 1.0),
            _ => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in TestStatus::ALL {
            assert_eq!(TestStatus::parse(s.as_str()), Some(s));
        }
        for r in Risk::ALL {
            assert_eq!(Risk::parse(r.as_str()), Some(r));
        }
        for i in [
            ImplementationStatus::NotImplemented,
            ImplementationStatus::Planned,
            ImplementationStatus::Implemented,
            ImplementationStatus::AlternativeImplementation,
            ImplementationStatus::OutOfScope,
        ] {
            assert_eq!(ImplementationStatus::parse(i.as_str()), Some(i));
        }
    }

    #[test]
    fn credit_per_status() {
        for s in TestStatus::ALL {
            let expected = match s {
                TestStatus::Passed => 1.0,
                TestStatus::PartiallyTested => 0.8,
                _ => 0.0,
            };
            assert_eq!(s.credit(0.8), expected, "{}", s.as_str());
        }
        assert_eq!(Risk::High.failed_status(), TestStatus::FailedHighRisk);
        assert_eq!(Risk::Low.failed_status(), TestStatus::FailedLowRisk);
    }
}
