//! The CI gate of `postured once`: `--fail-under RATIO` and `--fail-on STATUS,...` judged
//! over the CI view ([`super::ci`]), with one line per finding for standard error. Pure.
//!
//! An action that could not be detected (`could_not_be_detected`, `to_be_detected`) has no
//! verdict: it earns 0 points (SCORING.md), so it can only lower a score, never raise it. The
//! gate therefore decides only what those actions could not change:
//!
//! - `--fail-under T`: the score passes when `ratio >= T` (the undetected actions can only
//!   add to it); it is a **breach** when it would stay under `T` even if every undetected
//!   action passed; in between the gate is **undecided** (the collection, not the posture,
//!   is at fault). A scope with no points possible (everything out of scope) is undecided.
//! - `--fail-on S`: each action whose test status is in the list is a breach; when the list
//!   names `could_not_be_detected` or `to_be_detected`, those actions make the gate undecided
//!   (still a failure, told apart from a posture breach).
//! - Undetected actions that decide nothing are still named, as a warning line.
//!
//! A breach wins over undecided: [`Verdict::outcome`]. Lines name tenants, assessments and
//! action ids only (configuration and catalog identifiers), never a reason text, which may
//! carry a source's values.

use std::fmt;
use std::str::FromStr;

use super::ci::{CiReport, CiScope, is_undetected};
use crate::evaluation::TestStatus;

/// How many action ids a line lists before `and N more`.
pub const LISTED_ACTIONS: usize = 10;

/// A compliance score threshold in [0, 1]: `0.8` or `80%` (`--fail-under`).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Threshold(f64);

impl Threshold {
    /// The ratio in [0, 1].
    pub fn ratio(self) -> f64 {
        self.0
    }
}

impl FromStr for Threshold {
    type Err = String;

    /// `0.8`, `1`, `80%`, `80.5%`; anything outside [0, 1] (or [0 %, 100 %]) is refused.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (number, scale) = match s.strip_suffix('%') {
            Some(n) => (n.trim(), 100.0),
            None => (s, 1.0),
        };
        let value: f64 = number
            .parse()
            .map_err(|_| format!("`{s}` is not a ratio (0..1) or a percentage (0%..100%)"))?;
        let ratio = value / scale;
        if !(0.0..=1.0).contains(&ratio) {
            return Err(format!(
                "`{s}` is outside 0..1 (a ratio) or 0%..100% (a percentage)"
            ));
        }
        Ok(Threshold(ratio))
    }
}

/// What the gate checks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gate {
    /// `--fail-under`: the least compliance score ratio.
    pub fail_under: Option<Threshold>,
    /// `--fail-on`: the test statuses no action may have.
    pub fail_on: Vec<TestStatus>,
}

impl Gate {
    /// Whether any check is asked for.
    pub fn is_set(&self) -> bool {
        self.fail_under.is_some() || !self.fail_on.is_empty()
    }
}

/// The kind of a finding, from the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FindingKind {
    /// The posture breaches the gate.
    Breach,
    /// The gate cannot decide: actions could not be detected.
    Undecided,
    /// Nothing fails, but actions could not be detected (counted as 0 points).
    Warning,
}

/// One line of the gate's judgement.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Breach, undecided or warning.
    pub kind: FindingKind,
    /// The scope's label (`tenant contoso` or `tenant contoso: assessment a`).
    pub scope: String,
    /// What was found (`compliance score 0.62 is under 0.80`).
    pub message: String,
}

impl fmt::Display for Finding {
    /// `postured: tenant contoso: compliance score 0.62 is under 0.80`; warnings say
    /// `warning:` after the scope.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            FindingKind::Warning => {
                write!(f, "postured: {}: warning: {}", self.scope, self.message)
            }
            _ => write!(f, "postured: {}: {}", self.scope, self.message),
        }
    }
}

/// How the gate ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every check passed (warnings may stand).
    Pass,
    /// At least one breach.
    Breach,
    /// No breach, but at least one check could not be decided.
    Undecided,
}

/// The gate's findings over every scope, in scope order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    /// Every finding, breaches, undecided checks and warnings, scope by scope.
    pub findings: Vec<Finding>,
}

impl Verdict {
    /// Breach when any finding is one, else undecided when any is, else pass.
    pub fn outcome(&self) -> Outcome {
        match self.findings.iter().map(|f| f.kind).min() {
            Some(FindingKind::Breach) => Outcome::Breach,
            Some(FindingKind::Undecided) => Outcome::Undecided,
            _ => Outcome::Pass,
        }
    }
}

/// Judge every scope of the report.
pub fn judge(gate: &Gate, report: &CiReport) -> Verdict {
    let mut findings = Vec::new();
    if gate.is_set() {
        for scope in &report.scopes {
            judge_scope(gate, scope, &mut findings);
        }
    }
    Verdict { findings }
}

fn judge_scope(gate: &Gate, scope: &CiScope, out: &mut Vec<Finding>) {
    let label = scope.label();
    let mut push = |kind, message: String| {
        out.push(Finding {
            kind,
            scope: label.clone(),
            message,
        })
    };
    let undetected: Vec<&str> = scope
        .actions
        .iter()
        .filter(|a| is_undetected(a.test_status) && a.points_possible > 0.0)
        .map(|a| a.id.as_str())
        .collect();
    let mut undetected_told = false;
    if let Some(threshold) = gate.fail_under {
        let t = threshold.ratio();
        let s = scope.score;
        if s.points_possible <= 0.0 {
            push(
                FindingKind::Undecided,
                "no compliance score: no points are possible (every improvement action is \
                 out of scope, or there is none)"
                    .to_owned(),
            );
        } else if s.ratio >= t {
            // Passes; undetected actions can only raise the score.
        } else {
            let undetected_points: f64 = scope
                .actions
                .iter()
                .filter(|a| is_undetected(a.test_status))
                .map(|a| a.points_possible)
                .sum();
            let best = ((s.points_achieved + undetected_points) / s.points_possible).min(1.0);
            let (score, under) = ratios(s.ratio, t);
            if best < t || undetected.is_empty() {
                push(
                    FindingKind::Breach,
                    format!("compliance score {score} is under {under}"),
                );
            } else {
                let (best, _) = ratios(best, t);
                push(
                    FindingKind::Undecided,
                    format!(
                        "compliance score {score} is under {under}, but {} could not be \
                         detected (up to {best} if they passed): {}",
                        count(undetected.len()),
                        list(&undetected)
                    ),
                );
                undetected_told = true;
            }
        }
    }
    for status in &gate.fail_on {
        let hits: Vec<&str> = scope
            .actions
            .iter()
            .filter(|a| a.test_status == *status)
            .map(|a| a.id.as_str())
            .collect();
        if hits.is_empty() {
            continue;
        }
        let kind = if is_undetected(*status) {
            undetected_told = true;
            FindingKind::Undecided
        } else {
            FindingKind::Breach
        };
        push(
            kind,
            format!("{} {}: {}", count(hits.len()), status.as_str(), list(&hits)),
        );
    }
    if !undetected.is_empty() && !undetected_told {
        push(
            FindingKind::Warning,
            format!(
                "{} could not be detected (counted as 0 points): {}",
                count(undetected.len()),
                list(&undetected)
            ),
        );
    }
}

/// `1 improvement action`, `3 improvement actions`.
fn count(n: usize) -> String {
    if n == 1 {
        "1 improvement action".to_owned()
    } else {
        format!("{n} improvement actions")
    }
}

/// The first [`LISTED_ACTIONS`] ids, comma-separated, then `and N more`.
fn list(ids: &[&str]) -> String {
    let shown = ids[..ids.len().min(LISTED_ACTIONS)].join(", ");
    if ids.len() > LISTED_ACTIONS {
        format!("{shown} and {} more", ids.len() - LISTED_ACTIONS)
    } else {
        shown
    }
}

/// A ratio `a` and a threshold `b` as text: the threshold with as many decimals as it was
/// given (2 to 4: `0.055` stays `0.055`, never rounded to `0.06`), and both with more (up to
/// 4) when that would print them equal (`0.7999` under `0.8000`).
fn ratios(a: f64, b: f64) -> (String, String) {
    let shows_exactly = |d: usize| {
        format!("{b:.d$}")
            .parse::<f64>()
            .is_ok_and(|shown| (shown - b).abs() < 1e-9)
    };
    let least = (2..=4).find(|d| shows_exactly(*d)).unwrap_or(4);
    (least..=4)
        .map(|d| (format!("{a:.d$}"), format!("{b:.d$}")))
        .find(|(x, y)| x != y)
        .unwrap_or_else(|| (format!("{a:.4}"), format!("{b:.4}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ci::testutil::{action, report, scope};

    fn gate(fail_under: Option<&str>, fail_on: &[TestStatus]) -> Gate {
        Gate {
            fail_under: fail_under.map(|t| t.parse().expect("threshold")),
            fail_on: fail_on.to_vec(),
        }
    }

    /// The threshold is shown as given, never rounded to another value.
    #[test]
    fn thresholds_keep_their_decimals() {
        assert_eq!(ratios(0.0531, 0.055), ("0.053".into(), "0.055".into()));
        assert_eq!(ratios(0.62, 0.8), ("0.62".into(), "0.80".into()));
        assert_eq!(ratios(0.7999, 0.8), ("0.7999".into(), "0.8000".into()));
        assert_eq!(ratios(0.05, 0.12345), ("0.0500".into(), "0.1235".into()));
    }

    fn lines(v: &Verdict) -> Vec<String> {
        v.findings.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn thresholds_are_ratios_or_percentages_within_bounds() {
        assert_eq!("0.8".parse::<Threshold>().map(Threshold::ratio), Ok(0.8));
        assert_eq!("80%".parse::<Threshold>().map(Threshold::ratio), Ok(0.8));
        assert_eq!(
            " 100 % ".parse::<Threshold>().map(Threshold::ratio),
            Ok(1.0)
        );
        assert_eq!("0".parse::<Threshold>().map(Threshold::ratio), Ok(0.0));
        for bad in ["80", "1.01", "-0.1", "101%", "NaN", "eighty", "", "%"] {
            assert!(bad.parse::<Threshold>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_score_under_the_threshold_is_a_breach_and_at_it_a_pass() {
        // 27 of 36 = 0.75.
        let r = report(vec![scope(
            "contoso",
            vec![
                action("a", TestStatus::Passed, 27),
                action("b", TestStatus::FailedLowRisk, 9),
            ],
        )]);
        let v = judge(&gate(Some("0.8"), &[]), &r);
        assert_eq!(v.outcome(), Outcome::Breach);
        assert_eq!(
            lines(&v),
            ["postured: tenant contoso: compliance score 0.75 is under 0.80"]
        );
        let v = judge(&gate(Some("75%"), &[]), &r);
        assert_eq!((v.outcome(), v.findings.len()), (Outcome::Pass, 0));
        // No gate asked: nothing judged.
        assert_eq!(judge(&Gate::default(), &r).outcome(), Outcome::Pass);
    }

    #[test]
    fn close_ratios_are_printed_with_enough_digits_to_differ() {
        // 7999 of 10000.
        let mut a = action("a", TestStatus::Passed, 1);
        a.points_achieved = 7999.0;
        a.points_possible = 10000.0;
        let r = report(vec![scope("t", vec![a])]);
        assert_eq!(
            lines(&judge(&gate(Some("0.8"), &[]), &r)),
            ["postured: tenant t: compliance score 0.7999 is under 0.8000"]
        );
    }

    #[test]
    fn undetected_actions_never_pass_the_threshold_silently() {
        // 27 passed, 9 failed, 27 undetected: 27/63 = 0.43; at best 54/63 = 0.86.
        let actions = vec![
            action("a", TestStatus::Passed, 27),
            action("b", TestStatus::FailedLowRisk, 9),
            action("c", TestStatus::CouldNotBeDetected, 27),
        ];
        let r = report(vec![scope("contoso", actions.clone())]);
        // Under 0.8, but the undetected action could lift it over: undecided, not a breach.
        let v = judge(&gate(Some("0.8"), &[]), &r);
        assert_eq!(v.outcome(), Outcome::Undecided);
        assert_eq!(
            lines(&v),
            [
                "postured: tenant contoso: compliance score 0.43 is under 0.80, but 1 \
                 improvement action could not be detected (up to 0.86 if they passed): c"
            ]
        );
        // Under 0.9 even if it passed: a breach whatever the collection would have said; the
        // undetected action is still named.
        let v = judge(&gate(Some("0.9"), &[]), &r);
        assert_eq!(v.outcome(), Outcome::Breach);
        assert_eq!(
            lines(&v),
            [
                "postured: tenant contoso: compliance score 0.43 is under 0.90",
                "postured: tenant contoso: warning: 1 improvement action could not be detected \
                 (counted as 0 points): c"
            ]
        );
        // Over the threshold with 0 points for it: a pass, and a warning naming it.
        let v = judge(&gate(Some("0.4"), &[]), &r);
        assert_eq!(v.outcome(), Outcome::Pass);
        assert_eq!(
            lines(&v),
            [
                "postured: tenant contoso: warning: 1 improvement action could not be detected \
                 (counted as 0 points): c"
            ]
        );
        // Everything undetected (a collection failure): undecided at any threshold it could
        // reach.
        let r = report(vec![scope(
            "down",
            vec![
                action("a", TestStatus::CouldNotBeDetected, 27),
                action("b", TestStatus::ToBeDetected, 9),
            ],
        )]);
        assert_eq!(
            judge(&gate(Some("0.5"), &[]), &r).outcome(),
            Outcome::Undecided
        );
    }

    #[test]
    fn a_scope_without_possible_points_is_undecided() {
        let r = report(vec![scope(
            "aws",
            vec![action("a", TestStatus::OutOfScope, 27)],
        )]);
        let v = judge(&gate(Some("0"), &[]), &r);
        assert_eq!(v.outcome(), Outcome::Undecided);
        assert!(lines(&v)[0].contains("no points are possible"), "{v:?}");
    }

    #[test]
    fn fail_on_names_the_actions_per_status_and_undetected_ones_are_undecided() {
        let many: Vec<_> = (0..12)
            .map(|i| action(&format!("h{i:02}"), TestStatus::FailedHighRisk, 3))
            .chain([
                action("m", TestStatus::FailedMediumRisk, 9),
                action("u", TestStatus::CouldNotBeDetected, 1),
                action("p", TestStatus::Passed, 27),
            ])
            .collect();
        let r = report(vec![scope("contoso", many)]);
        // A miss: no line for the status; the undetected action is a warning.
        let v = judge(&gate(None, &[TestStatus::FailedLowRisk]), &r);
        assert_eq!(v.outcome(), Outcome::Pass);
        assert_eq!(v.findings.len(), 1);
        assert_eq!(v.findings[0].kind, FindingKind::Warning);
        // Hits: one line per status, ids bounded.
        let v = judge(
            &gate(
                None,
                &[TestStatus::FailedHighRisk, TestStatus::FailedMediumRisk],
            ),
            &r,
        );
        assert_eq!(v.outcome(), Outcome::Breach);
        assert_eq!(
            lines(&v),
            [
                "postured: tenant contoso: 12 improvement actions failed_high_risk: h00, h01, \
                 h02, h03, h04, h05, h06, h07, h08, h09 and 2 more",
                "postured: tenant contoso: 1 improvement action failed_medium_risk: m",
                "postured: tenant contoso: warning: 1 improvement action could not be detected \
                 (counted as 0 points): u",
            ]
        );
        // could_not_be_detected in the list: undecided, no extra warning.
        let v = judge(&gate(None, &[TestStatus::CouldNotBeDetected]), &r);
        assert_eq!(v.outcome(), Outcome::Undecided);
        assert_eq!(
            lines(&v),
            ["postured: tenant contoso: 1 improvement action could_not_be_detected: u"]
        );
        // A breach wins over undecided.
        let v = judge(
            &gate(
                None,
                &[TestStatus::CouldNotBeDetected, TestStatus::FailedMediumRisk],
            ),
            &r,
        );
        assert_eq!(v.outcome(), Outcome::Breach);
    }

    #[test]
    fn each_scope_is_judged_and_labelled() {
        let mut one = scope("a", vec![action("x", TestStatus::Passed, 3)]);
        one.assessment = Some("a-iso".into());
        let two = scope("b", vec![action("x", TestStatus::FailedHighRisk, 3)]);
        let v = judge(&gate(Some("0.5"), &[]), &report(vec![one, two]));
        assert_eq!(
            lines(&v),
            ["postured: tenant b: compliance score 0.00 is under 0.50"]
        );
        let mut three = scope("c", vec![action("y", TestStatus::FailedHighRisk, 3)]);
        three.assessment = Some("c-gdpr".into());
        let v = judge(&gate(Some("0.5"), &[]), &report(vec![three]));
        assert_eq!(
            lines(&v),
            ["postured: tenant c: assessment c-gdpr: compliance score 0.00 is under 0.50"]
        );
    }
}
