//! `postured once --output junit`: the CI view ([`super::ci`]) as JUnit XML, written with
//! `quick-junit`, for the test reports of GitLab, Jenkins and GitHub Actions.
//!
//! One `<testsuite>` per tenant (or per assessment with `--assessment`), named after it, with
//! the compliance score as properties; one `<testcase>` per improvement action instance:
//! `name` the action id (stable across runs, so the CI's test history follows it),
//! `classname` the tenant id. Test status -> JUnit:
//!
//! | test status | JUnit | why |
//! |---|---|---|
//! | `passed` | pass | |
//! | `failed_high_risk`, `failed_medium_risk`, `failed_low_risk` | `<failure type="<status>">` | the posture fails the action |
//! | `partially_tested` | `<failure type="partially_tested">` | points are missing (the message says how many) |
//! | `could_not_be_detected`, `to_be_detected` | `<error type="<status>">` | the test itself could not run (a collection failure, a stale or missing signal): JUnit's *error*, not a failure of the posture, and not *skipped* either, which every reporter (GitLab, Jenkins, GitHub) shows as harmless; errors count as failing in all three |
//! | `out_of_scope` | `<skipped type="out_of_scope">` | does not apply |
//! | `none`, `not_assessed`, `in_progress` | `<skipped type="<status>">` | a person has not tested it yet |
//!
//! A failure's or error's message is `<status>: <achieved> of <possible> points: <reason>`;
//! its text holds the title, the testing logic and the mapped controls.

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::ci::{CiAction, CiReport, CiScope};
use crate::evaluation::TestStatus;

/// The report as JUnit XML (UTF-8, with the XML declaration).
pub fn render(report: &CiReport) -> Result<String, quick_junit::SerializeError> {
    let mut junit = Report::new("postured");
    junit.set_timestamp(report.generated_at.fixed_offset());
    junit.add_test_suites(report.scopes.iter().map(suite));
    junit.to_string()
}

fn suite(scope: &CiScope) -> TestSuite {
    let name = match &scope.assessment {
        Some(a) => format!("{} / {a}", scope.tenant),
        None => scope.tenant.clone(),
    };
    let mut suite = TestSuite::new(name);
    if let Some(at) = scope.evaluated_at {
        suite.set_timestamp(at.fixed_offset());
    }
    suite.add_property(Property::new("tenant", scope.tenant.as_str()));
    if let Some(n) = &scope.name {
        suite.add_property(Property::new("tenant_name", n.as_str()));
    }
    if let Some(a) = &scope.assessment {
        suite.add_property(Property::new("assessment", a.as_str()));
    }
    suite.add_properties([
        Property::new("compliance_score", format!("{:.4}", scope.score.ratio)),
        Property::new(
            "points_achieved",
            format!("{:.2}", scope.score.points_achieved),
        ),
        Property::new(
            "points_possible",
            format!("{:.0}", scope.score.points_possible),
        ),
    ]);
    suite.add_test_cases(scope.actions.iter().map(|a| case(&scope.tenant, a)));
    suite
}

fn case(tenant: &str, a: &CiAction) -> TestCase {
    let status = a.test_status;
    let mut outcome = match status {
        TestStatus::Passed => TestCaseStatus::success(),
        TestStatus::FailedHighRisk
        | TestStatus::FailedMediumRisk
        | TestStatus::FailedLowRisk
        | TestStatus::PartiallyTested => TestCaseStatus::non_success(NonSuccessKind::Failure),
        TestStatus::CouldNotBeDetected | TestStatus::ToBeDetected => {
            TestCaseStatus::non_success(NonSuccessKind::Error)
        }
        TestStatus::OutOfScope
        | TestStatus::None
        | TestStatus::NotAssessed
        | TestStatus::InProgress => TestCaseStatus::skipped(),
    };
    outcome
        .set_type(status.as_str())
        .set_message(message(a))
        .set_description(description(a));
    let mut case = TestCase::new(a.id.as_str(), outcome);
    case.set_classname(tenant);
    case.add_properties([
        Property::new("title", a.title.as_str()),
        Property::new("category", a.category.as_str()),
        Property::new("test_status", status.as_str()),
        Property::new("points", a.points.to_string()),
    ]);
    case
}

/// `failed_high_risk: 0 of 27 points: <reason>`; out of scope: `out_of_scope: <reason>`.
fn message(a: &CiAction) -> String {
    let mut m = a.test_status.as_str().to_owned();
    if a.test_status != TestStatus::OutOfScope {
        m.push_str(&format!(
            ": {} of {:.0} points",
            points(a.points_achieved),
            a.points_possible
        ));
    }
    if let Some(r) = &a.reason {
        m.push_str(": ");
        m.push_str(r);
    }
    m
}

/// Whole points without decimals, partial ones with two.
fn points(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

fn description(a: &CiAction) -> String {
    let mut d = format!("{}\n", a.title);
    if !a.text.description.is_empty() {
        d.push_str(&format!("\n{}\n", a.text.description.trim()));
    }
    if !a.testing_logic.is_empty() {
        d.push_str(&format!("\nTesting logic:\n{}\n", a.testing_logic));
    }
    if !a.controls.is_empty() {
        d.push_str("\nControls:");
        for c in &a.controls {
            d.push_str(&format!("\n- {} {}", c.framework, c.control));
        }
        d.push('\n');
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ci::testutil::{action, report, scope};

    #[test]
    fn statuses_map_to_pass_failure_error_and_skipped() {
        let mut s = scope(
            "contoso",
            vec![
                action("a.passed", TestStatus::Passed, 27),
                action("b.high", TestStatus::FailedHighRisk, 27),
                action("c.partial", TestStatus::PartiallyTested, 9),
                action("d.undetected", TestStatus::CouldNotBeDetected, 3),
                action("e.scope", TestStatus::OutOfScope, 9),
                action("f.manual", TestStatus::None, 3),
            ],
        );
        s.name = Some("Contoso <Ltd> & Co".into());
        let xml = render(&report(vec![s])).expect("serialises");
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let suites = doc.root_element();
        assert_eq!(suites.tag_name().name(), "testsuites");
        assert_eq!(suites.attribute("tests"), Some("6"));
        assert_eq!(suites.attribute("failures"), Some("2"));
        assert_eq!(suites.attribute("errors"), Some("1"));
        let suite = suites
            .children()
            .find(|n| n.has_tag_name("testsuite"))
            .expect("a suite");
        assert_eq!(suite.attribute("name"), Some("contoso"));
        let prop = |name: &str| {
            suite
                .descendants()
                .find(|n| n.has_tag_name("property") && n.attribute("name") == Some(name))
                .and_then(|n| n.attribute("value"))
        };
        assert_eq!(prop("tenant_name"), Some("Contoso <Ltd> & Co"));
        // (27 + 4.5) of 27 + 27 + 9 + 3 + 3 (out of scope: 0 possible).
        assert_eq!(prop("compliance_score"), Some("0.4565"));
        let outcome = |id: &str| {
            let case = suite
                .children()
                .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some(id))
                .unwrap_or_else(|| panic!("{id}"));
            assert_eq!(case.attribute("classname"), Some("contoso"));
            case.children()
                .find(|n| {
                    ["failure", "error", "skipped"]
                        .iter()
                        .any(|t| n.has_tag_name(*t))
                })
                .map(|n| {
                    (
                        n.tag_name().name().to_owned(),
                        n.attribute("type").unwrap_or("").to_owned(),
                        n.attribute("message").unwrap_or("").to_owned(),
                    )
                })
        };
        assert_eq!(outcome("a.passed"), None);
        assert_eq!(
            outcome("b.high"),
            Some((
                "failure".into(),
                "failed_high_risk".into(),
                "failed_high_risk: 0 of 27 points: reason of b.high".into()
            ))
        );
        assert_eq!(
            outcome("c.partial").map(|o| o.2),
            Some("partially_tested: 4.50 of 9 points: reason of c.partial".into())
        );
        assert_eq!(
            outcome("d.undetected").map(|o| (o.0, o.1)),
            Some(("error".into(), "could_not_be_detected".into()))
        );
        assert_eq!(
            outcome("e.scope"),
            Some((
                "skipped".into(),
                "out_of_scope".into(),
                "out_of_scope: reason of e.scope".into()
            ))
        );
        assert_eq!(
            outcome("f.manual").map(|o| (o.0, o.1)),
            Some(("skipped".into(), "none".into()))
        );
        // The failure's text has the testing logic and the controls.
        let failure = suite
            .descendants()
            .find(|n| n.has_tag_name("failure"))
            .and_then(|n| n.text())
            .expect("failure text");
        assert!(
            failure.contains("Testing logic:\nmsgraph.x == 1.0"),
            "{failure}"
        );
        assert!(failure.contains("- ISO/IEC 27001:2022 A.8.5"), "{failure}");
    }
}
