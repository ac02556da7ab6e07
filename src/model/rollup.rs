//! Rollups (SCORING.md "Rollups"): the status of a control from its actions' statuses, and of
//! an assessment from its controls' statuses. Pure functions.
//!
//! An action counts as:
//! - **out of scope** when its test status or its implementation status is `out_of_scope`;
//! - **passed** when its test status is `passed`;
//! - **failed** when its test status is `failed_low_risk`, `failed_medium_risk` or
//!   `failed_high_risk`;
//! - **untested** when its test status is `none`, `not_assessed` or `to_be_detected` (nothing
//!   has been decided yet);
//! - **in progress** otherwise (`in_progress`, `partially_tested`, `could_not_be_detected`:
//!   testing happened but did not conclude).
//!
//! Control, checked in this order: no actions, or every action untested or out of scope
//! without all being out of scope -> `none`; every action out of scope -> `out_of_scope`; any
//! failed -> `failed`; every action passed or out of scope (so at least one passed) ->
//! `passed`; otherwise `in_progress`.
//!
//! Assessment, the same logic over its controls: every control out of scope, no controls, or
//! every control `none`/`out_of_scope` -> `none`; any control failed -> `incomplete`; every
//! control passed or out of scope -> `complete`; otherwise `in_progress`.

use super::report::{AssessmentStatus, ControlStatus};
use crate::evaluation::{ImplementationStatus, TestStatus};

/// How one action instance counts in a control rollup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionClass {
    /// Test or implementation status `out_of_scope`.
    OutOfScope,
    /// `passed`.
    Passed,
    /// Any `failed_*_risk`.
    Failed,
    /// `none`, `not_assessed`, `to_be_detected`.
    Untested,
    /// `in_progress`, `partially_tested`, `could_not_be_detected`.
    InProgress,
}

/// Classify an instance's statuses for rollups (see the module docs).
pub fn classify(implementation: ImplementationStatus, test: TestStatus) -> ActionClass {
    if implementation == ImplementationStatus::OutOfScope || test == TestStatus::OutOfScope {
        return ActionClass::OutOfScope;
    }
    match test {
        TestStatus::Passed => ActionClass::Passed,
        t if t.is_failed() => ActionClass::Failed,
        TestStatus::None | TestStatus::NotAssessed | TestStatus::ToBeDetected => {
            ActionClass::Untested
        }
        _ => ActionClass::InProgress,
    }
}

/// The rollup of a control from its actions' classes.
pub fn control_status(actions: &[ActionClass]) -> ControlStatus {
    let count = |c: ActionClass| actions.iter().filter(|a| **a == c).count();
    let (oos, passed, failed, untested) = (
        count(ActionClass::OutOfScope),
        count(ActionClass::Passed),
        count(ActionClass::Failed),
        count(ActionClass::Untested),
    );
    if actions.is_empty() {
        ControlStatus::None
    } else if oos == actions.len() {
        ControlStatus::OutOfScope
    } else if failed > 0 {
        ControlStatus::Failed
    } else if passed + oos == actions.len() {
        ControlStatus::Passed
    } else if untested + oos == actions.len() {
        ControlStatus::None
    } else {
        ControlStatus::InProgress
    }
}

/// The rollup of an assessment from its controls' statuses.
pub fn assessment_status(controls: &[ControlStatus]) -> AssessmentStatus {
    let count = |c: ControlStatus| controls.iter().filter(|s| **s == c).count();
    let (oos, passed, failed, none) = (
        count(ControlStatus::OutOfScope),
        count(ControlStatus::Passed),
        count(ControlStatus::Failed),
        count(ControlStatus::None),
    );
    if controls.is_empty() || none + oos == controls.len() {
        AssessmentStatus::None
    } else if failed > 0 {
        AssessmentStatus::Incomplete
    } else if passed + oos == controls.len() {
        AssessmentStatus::Complete
    } else {
        AssessmentStatus::InProgress
    }
}

/// Assessment progress: controls passed / controls not out of scope, in [0, 1]; 0 when every
/// control is out of scope or there are none.
pub fn progress(controls: &[ControlStatus]) -> f64 {
    let in_scope = controls
        .iter()
        .filter(|s| **s != ControlStatus::OutOfScope)
        .count();
    let passed = controls
        .iter()
        .filter(|s| **s == ControlStatus::Passed)
        .count();
    if in_scope == 0 {
        0.0
    } else {
        passed as f64 / in_scope as f64
    }
}

#[cfg(test)]
mod tests {
    use super::ActionClass::Untested as U;
    use super::ActionClass::{Failed as F, InProgress as P, OutOfScope as O, Passed as S};
    use super::*;

    #[test]
    fn classify_table() {
        use ImplementationStatus as I;
        use TestStatus as T;
        let cases = [
            (I::Implemented, T::Passed, S),
            (I::NotImplemented, T::FailedLowRisk, F),
            (I::NotImplemented, T::FailedMediumRisk, F),
            (I::NotImplemented, T::FailedHighRisk, F),
            (I::NotImplemented, T::None, U),
            (I::NotImplemented, T::NotAssessed, U),
            (I::NotImplemented, T::ToBeDetected, U),
            (I::NotImplemented, T::InProgress, P),
            (I::NotImplemented, T::PartiallyTested, P),
            (I::NotImplemented, T::CouldNotBeDetected, P),
            (I::NotImplemented, T::OutOfScope, O),
            (I::OutOfScope, T::Passed, O),
            (I::OutOfScope, T::FailedHighRisk, O),
            (I::Planned, T::None, U),
        ];
        for (i, t, want) in cases {
            assert_eq!(classify(i, t), want, "{} / {}", i.as_str(), t.as_str());
        }
    }

    #[test]
    fn control_rollup_table() {
        use ControlStatus as C;
        let cases: &[(&[ActionClass], ControlStatus)] = &[
            (&[], C::None),
            (&[S], C::Passed),
            (&[S, S], C::Passed),
            (&[S, O], C::Passed),
            (&[S, O, O], C::Passed),
            (&[O], C::OutOfScope),
            (&[O, O], C::OutOfScope),
            (&[F], C::Failed),
            (&[S, F], C::Failed),
            (&[F, O], C::Failed),
            (&[F, U], C::Failed),
            (&[F, P], C::Failed),
            (&[U], C::None),
            (&[U, U], C::None),
            (&[U, O], C::None),
            (&[S, U], C::InProgress),
            (&[P], C::InProgress),
            (&[S, P], C::InProgress),
            (&[U, P], C::InProgress),
            (&[P, O], C::InProgress),
        ];
        for (actions, want) in cases {
            assert_eq!(control_status(actions), *want, "{actions:?}");
        }
    }

    #[test]
    fn assessment_rollup_table() {
        use AssessmentStatus as A;
        use ControlStatus as C;
        let cases: &[(&[ControlStatus], AssessmentStatus)] = &[
            (&[], A::None),
            (&[C::None], A::None),
            (&[C::None, C::OutOfScope], A::None),
            (&[C::OutOfScope], A::None),
            (&[C::Passed], A::Complete),
            (&[C::Passed, C::OutOfScope], A::Complete),
            (&[C::Passed, C::Passed], A::Complete),
            (&[C::Failed], A::Incomplete),
            (&[C::Passed, C::Failed], A::Incomplete),
            (&[C::Failed, C::None], A::Incomplete),
            (&[C::Failed, C::InProgress], A::Incomplete),
            (&[C::Passed, C::None], A::InProgress),
            (&[C::InProgress], A::InProgress),
            (&[C::InProgress, C::OutOfScope], A::InProgress),
        ];
        for (controls, want) in cases {
            assert_eq!(assessment_status(controls), *want, "{controls:?}");
        }
    }

    #[test]
    fn progress_is_share_of_in_scope_controls_passed() {
        use ControlStatus as C;
        let cases: &[(&[ControlStatus], f64)] = &[
            (&[], 0.0),
            (&[C::OutOfScope], 0.0),
            (&[C::Passed], 1.0),
            (&[C::Passed, C::Failed], 0.5),
            (&[C::Passed, C::OutOfScope], 1.0),
            (&[C::Passed, C::None, C::InProgress, C::Failed], 0.25),
        ];
        for (controls, want) in cases {
            assert!((progress(controls) - want).abs() < 1e-12, "{controls:?}");
        }
    }
}
