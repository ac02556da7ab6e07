//! The rule result contract: what a rule's CEL value means ([`interpret`]), and what an
//! [`Outcome`] means for the test status and the credit.
//!
//! Pure mapping of values: it must not evaluate rules or look at signals (the table is in the
//! `rules` module docs).

use std::sync::Arc;

use cel_interpreter::Value;
use cel_interpreter::objects::{Key, Map};

use crate::evaluation::status::{Risk, TestStatus};
use crate::evaluation::undetected::Undetected;

/// What a rule concluded about one action for one tenant.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The action is in place.
    Pass,
    /// The action is not in place; the risk picks the failed status.
    Fail(Risk),
    /// Partly in place: a fraction strictly between 0 and 1 (40 of 50 users -> 0.8).
    Partial(f64),
    /// The action does not apply to this tenant (e.g. a tenant without admins).
    NotApplicable,
    /// The rule could not decide; the cause says why (missing, stale or uncollected signal,
    /// rule error, undecided result).
    Unknown(Undetected),
}

impl Outcome {
    /// Test status of this outcome (SCORING.md "Automatic testing").
    pub fn test_status(&self) -> TestStatus {
        match self {
            Outcome::Pass => TestStatus::Passed,
            Outcome::Fail(risk) => risk.failed_status(),
            Outcome::Partial(_) => TestStatus::PartiallyTested,
            Outcome::NotApplicable => TestStatus::OutOfScope,
            Outcome::Unknown(_) => TestStatus::CouldNotBeDetected,
        }
    }

    /// Credit in [0, 1]: pass 1, partial f, everything else 0.
    pub fn credit(&self) -> f64 {
        match self {
            Outcome::Pass => 1.0,
            Outcome::Partial(f) => f.clamp(0.0, 1.0),
            _ => 0.0,
        }
    }

    /// The cause of an [`Outcome::Unknown`]; `None` for a decided outcome.
    pub fn cause(&self) -> Option<&Undetected> {
        match self {
            Outcome::Unknown(cause) => Some(cause),
            _ => None,
        }
    }

    /// Outcome of a fraction in [0, 1]: 1 pass, 0 fail(risk), in between partial, otherwise
    /// unknown ([`Undetected::Undecided`]).
    pub fn from_fraction(f: f64, risk: Risk) -> Outcome {
        if !f.is_finite() {
            undecided(format!("rule returned {f}, not a number in [0, 1]"))
        } else if f == 1.0 {
            Outcome::Pass
        } else if f == 0.0 {
            Outcome::Fail(risk)
        } else if f > 0.0 && f < 1.0 {
            Outcome::Partial(f)
        } else {
            undecided(format!("rule returned {f}, outside [0, 1]"))
        }
    }
}

/// An unknown outcome whose cause is an undecided result with this text.
fn undecided(message: impl Into<String>) -> Outcome {
    Outcome::Unknown(Undetected::undecided(message))
}

/// Map a rule's CEL value to an outcome (and an optional detail reason), per the contract in
/// the `rules` module docs. A map result reads:
///
/// - `outcome`: `"pass"`, `"fail"`, `"fail:<risk>"`, `"partial"`, `"not_applicable"` or
///   `"unknown"`; when absent, `fraction` decides as a plain number would;
/// - `fraction`: a number in [0, 1], required for `"partial"`;
/// - `risk`: `"low"`, `"medium"` or `"high"`, overriding the action's risk for a failure;
/// - `reason`: free text kept as the action's reason.
pub fn interpret(value: &Value, risk: Risk) -> (Outcome, Option<String>) {
    match value {
        Value::Bool(true) => (Outcome::Pass, None),
        Value::Bool(false) => (Outcome::Fail(risk), None),
        Value::Int(_) | Value::UInt(_) | Value::Float(_) => (
            Outcome::from_fraction(as_number(value).unwrap_or(f64::NAN), risk),
            None,
        ),
        Value::String(s) => (outcome_from_str(s, risk), None),
        Value::Map(map) => interpret_map(map, risk),
        other => (
            undecided(format!(
                "rule returned a {}, expected a bool, number, string or map",
                other.type_of()
            )),
            None,
        ),
    }
}

fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Int(i) => Some(*i as f64),
        Value::UInt(u) => Some(*u as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

fn outcome_from_str(s: &str, risk: Risk) -> Outcome {
    match s {
        "pass" => Outcome::Pass,
        "fail" => Outcome::Fail(risk),
        "not_applicable" => Outcome::NotApplicable,
        "unknown" => undecided("rule returned unknown"),
        other => match other.strip_prefix("fail:").and_then(Risk::parse) {
            Some(r) => Outcome::Fail(r),
            None => undecided(format!("rule returned unsupported outcome \"{other}\"")),
        },
    }
}

fn interpret_map(map: &Map, risk: Risk) -> (Outcome, Option<String>) {
    let get = |k: &str| map.map.get(&Key::String(Arc::new(k.to_string())));
    let reason = match get("reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.to_string()),
        Some(other) => Some(format!("{other:?}")),
    };
    let risk = match get("risk") {
        None | Some(Value::Null) => risk,
        Some(Value::String(s)) => match Risk::parse(s) {
            Some(r) => r,
            None => {
                return (
                    undecided(format!("rule returned unsupported risk \"{s}\"")),
                    reason,
                );
            }
        },
        Some(other) => {
            return (
                undecided(format!("rule returned a {} as risk", other.type_of())),
                reason,
            );
        }
    };
    let fraction = match get("fraction") {
        None | Some(Value::Null) => None,
        Some(v) => match as_number(v) {
            Some(f) => Some(f),
            None => {
                return (
                    undecided(format!("rule returned a {} as fraction", v.type_of())),
                    reason,
                );
            }
        },
    };
    let outcome = match (get("outcome"), fraction) {
        (None | Some(Value::Null), Some(f)) => Outcome::from_fraction(f, risk),
        (None | Some(Value::Null), None) => {
            undecided("rule returned a map without outcome or fraction")
        }
        (Some(Value::String(s)), fraction) => match (s.as_str(), fraction) {
            ("partial", Some(f)) => Outcome::from_fraction(f, risk),
            ("partial", None) => undecided("rule returned partial without a fraction"),
            ("unknown", _) => undecided(
                reason
                    .clone()
                    .unwrap_or_else(|| "rule returned unknown".to_string()),
            ),
            (s, _) => outcome_from_str(s, risk),
        },
        (Some(other), _) => undecided(format!("rule returned a {} as outcome", other.type_of())),
    };
    (outcome, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_to_test_status() {
        use Outcome::*;
        let table = [
            (Pass, TestStatus::Passed),
            (Fail(Risk::Low), TestStatus::FailedLowRisk),
            (Fail(Risk::Medium), TestStatus::FailedMediumRisk),
            (Fail(Risk::High), TestStatus::FailedHighRisk),
            (Partial(0.5), TestStatus::PartiallyTested),
            (NotApplicable, TestStatus::OutOfScope),
            (Unknown("x".into()), TestStatus::CouldNotBeDetected),
        ];
        for (outcome, status) in table {
            assert_eq!(outcome.test_status(), status, "{outcome:?}");
        }
    }
}
