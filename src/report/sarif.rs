//! `postured once --output sarif`: the CI view ([`super::ci`]) as a SARIF 2.1.0 log, built
//! with the `serde-sarif` types, for GitHub code scanning and the other SARIF viewers.
//!
//! One run; its driver `postured` has **one rule per improvement action** of the selected
//! scopes (sorted by id): `id` the action id, `name` and `shortDescription` its title,
//! `fullDescription` and `help` its description (the implementation guidance; `help` adds
//! the testing logic), `defaultConfiguration.level` from the catalog's risk, and properties
//! `points`, `category`, `solution`, `risk`, `controls` (`<framework> <control>`),
//! `frameworks`, `tags` and GitHub's `security-severity` (high 8.0, medium 5.0, low 2.0).
//!
//! **One result per failing or undetected action** of each scope:
//!
//! | test status | `kind` | `level` |
//! |---|---|---|
//! | `failed_high_risk` | `fail` | `error` |
//! | `failed_medium_risk` | `fail` | `warning` |
//! | `failed_low_risk`, `partially_tested` | `fail` | `note` |
//! | `could_not_be_detected`, `to_be_detected` | `open` | `none` |
//!
//! SARIF says an `open` result ("not enough information to decide") must have level `none`
//! (§3.27.10), so an undetected action is told apart from a failed one. Each result has a
//! logical location `<tenant>/<action id>` (kind `resource`), the configuration file as its
//! physical location when given (GitHub needs a file to show an alert on), and the partial
//! fingerprint `postured/v1` = `<tenant>/<action id>` so viewers follow it across runs.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use serde_sarif::sarif::{
    ArtifactLocation, Invocation, Location, LogicalLocation, Message, MultiformatMessageString,
    PhysicalLocation, PropertyBag, ReportingConfiguration, ReportingDescriptor, Result as Finding,
    ResultKind, ResultLevel, Run, Sarif, Tool, ToolComponent,
};

use super::ci::{CiAction, CiReport, CiScope, is_undetected};
use crate::evaluation::{Risk, TestStatus};

/// The `$schema` of the log: the OASIS SARIF 2.1.0 (errata 01) schema.
pub const SCHEMA_URI: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// The key of the results' partial fingerprint.
pub const FINGERPRINT: &str = "postured/v1";

/// The report as a SARIF 2.1.0 log (pretty JSON). `version`: postured's version;
/// `artifact`: the URI of the configuration file, the results' physical location.
pub fn render(
    report: &CiReport,
    version: &str,
    artifact: Option<&str>,
) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(&log(report, version, artifact))
}

/// The SARIF log of the report (see [`render`]).
pub fn log(report: &CiReport, version: &str, artifact: Option<&str>) -> Sarif {
    // Each action id once, with every control it maps to in any scope.
    let mut actions: BTreeMap<&str, (&CiAction, Vec<String>)> = BTreeMap::new();
    for a in report.scopes.iter().flat_map(|s| &s.actions) {
        let entry = actions.entry(a.id.as_str()).or_insert((a, Vec::new()));
        entry.1.extend(
            a.controls
                .iter()
                .map(|c| format!("{} {}", c.framework, c.control)),
        );
    }
    let index: BTreeMap<&str, i64> = actions
        .keys()
        .enumerate()
        .map(|(i, id)| (*id, i64::try_from(i).unwrap_or(i64::MAX)))
        .collect();
    let rules: Vec<ReportingDescriptor> = actions
        .values()
        .map(|(a, controls)| rule(a, controls))
        .collect();
    let results: Vec<Finding> = report
        .scopes
        .iter()
        .flat_map(|s| s.actions.iter().map(move |a| (s, a)))
        .filter_map(|(s, a)| result(s, a, index.get(a.id.as_str()).copied()?, artifact))
        .collect();
    let driver = ToolComponent::builder()
        .name("postured")
        .full_name(format!("postured {version}"))
        .version(version)
        .semantic_version(version.split_whitespace().next().unwrap_or(version))
        .rules(rules)
        .build();
    let scores: Vec<Value> = report
        .scopes
        .iter()
        .map(|s| {
            json!({
                "tenant": s.tenant,
                "assessment": s.assessment,
                "compliance_score": s.score.ratio,
                "points_achieved": s.score.points_achieved,
                "points_possible": s.score.points_possible,
            })
        })
        .collect();
    let run = Run::builder()
        .tool(Tool::builder().driver(driver).build())
        .invocations(vec![
            Invocation::builder()
                .execution_successful(true)
                .end_time_utc(
                    report
                        .generated_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                )
                .build(),
        ])
        .results(results)
        .properties(bag(BTreeMap::from([(
            "compliance_scores".to_owned(),
            Value::Array(scores),
        )])))
        .build();
    Sarif::builder()
        .schema(SCHEMA_URI)
        .version(json!("2.1.0"))
        .runs(vec![run])
        .build()
}

fn bag(properties: BTreeMap<String, Value>) -> PropertyBag {
    PropertyBag::builder()
        .additional_properties(properties)
        .build()
}

fn text(s: impl Into<String>) -> MultiformatMessageString {
    MultiformatMessageString::builder().text(s).build()
}

fn risk_level(risk: Option<Risk>) -> ResultLevel {
    match risk {
        Some(Risk::High) => ResultLevel::Error,
        Some(Risk::Low) => ResultLevel::Note,
        Some(Risk::Medium) | None => ResultLevel::Warning,
    }
}

fn rule(a: &CiAction, controls: &[String]) -> ReportingDescriptor {
    let mut controls = controls.to_vec();
    controls.sort();
    controls.dedup();
    let mut frameworks: Vec<String> = a.controls.iter().map(|c| c.framework.clone()).collect();
    frameworks.extend(
        controls
            .iter()
            .filter_map(|c| c.rsplit_once(' ').map(|(f, _)| f.to_owned())),
    );
    frameworks.sort();
    frameworks.dedup();
    let description = if a.text.description.trim().is_empty() {
        a.title.clone()
    } else {
        a.text.description.trim().to_owned()
    };
    let help = if a.testing_logic.is_empty() {
        description.clone()
    } else {
        format!("{description}\n\nTesting logic:\n{}", a.testing_logic)
    };
    let help_markdown = if a.testing_logic.is_empty() {
        description.clone()
    } else {
        format!(
            "{description}\n\n**Testing logic**\n\n```\n{}\n```",
            a.testing_logic
        )
    };
    let mut properties = BTreeMap::from([
        ("points".to_owned(), json!(a.points)),
        ("category".to_owned(), json!(a.category)),
        ("solution".to_owned(), json!(a.solution)),
        ("controls".to_owned(), json!(controls)),
        ("frameworks".to_owned(), json!(frameworks)),
    ]);
    if let Some(risk) = a.text.risk {
        let (name, severity) = match risk {
            Risk::High => ("high", "8.0"),
            Risk::Medium => ("medium", "5.0"),
            Risk::Low => ("low", "2.0"),
        };
        properties.insert("risk".to_owned(), json!(name));
        properties.insert("security-severity".to_owned(), json!(severity));
    }
    let mut tags = vec!["compliance".to_owned(), a.category.clone()];
    tags.dedup();
    ReportingDescriptor::builder()
        .id(a.id.as_str())
        .name(a.title.as_str())
        .short_description(text(a.title.as_str()))
        .full_description(text(description))
        .help(
            MultiformatMessageString::builder()
                .text(help)
                .markdown(help_markdown)
                .build(),
        )
        .default_configuration(
            ReportingConfiguration::builder()
                .level(json!(risk_level(a.text.risk)))
                .build(),
        )
        .properties(
            PropertyBag::builder()
                .tags(tags)
                .additional_properties(properties)
                .build(),
        )
        .build()
}

/// The result of one action of a scope; `None` for an action that neither fails nor lacks a
/// verdict.
fn result(
    scope: &CiScope,
    a: &CiAction,
    rule_index: i64,
    artifact: Option<&str>,
) -> Option<Finding> {
    let (kind, level) = match a.test_status {
        TestStatus::FailedHighRisk => (ResultKind::Fail, ResultLevel::Error),
        TestStatus::FailedMediumRisk => (ResultKind::Fail, ResultLevel::Warning),
        TestStatus::FailedLowRisk | TestStatus::PartiallyTested => {
            (ResultKind::Fail, ResultLevel::Note)
        }
        s if is_undetected(s) => (ResultKind::Open, ResultLevel::None),
        _ => return None,
    };
    let qualified = format!("{}/{}", scope.tenant, a.id);
    let mut message = format!(
        "{} ({}): {}, {} of {:.0} points",
        a.title,
        scope.label(),
        a.test_status.as_str(),
        points(a.points_achieved),
        a.points_possible
    );
    if let Some(r) = &a.reason {
        message.push_str(": ");
        message.push_str(r);
    }
    let logical = vec![
        LogicalLocation::builder()
            .name(a.id.as_str())
            .fully_qualified_name(qualified.as_str())
            .kind("resource")
            .build(),
    ];
    let location = match artifact {
        Some(uri) => Location::builder()
            .logical_locations(logical)
            .physical_location(
                PhysicalLocation::builder()
                    .artifact_location(ArtifactLocation::builder().uri(uri).build())
                    .build(),
            )
            .build(),
        None => Location::builder().logical_locations(logical).build(),
    };
    let mut properties = BTreeMap::from([
        ("tenant".to_owned(), json!(scope.tenant)),
        ("test_status".to_owned(), json!(a.test_status.as_str())),
        ("points_achieved".to_owned(), json!(a.points_achieved)),
        ("points_possible".to_owned(), json!(a.points_possible)),
    ]);
    if let Some(assessment) = &scope.assessment {
        properties.insert("assessment".to_owned(), json!(assessment));
    }
    Some(
        Finding::builder()
            .rule_id(a.id.as_str())
            .rule_index(rule_index)
            .kind(kind)
            .level(level)
            .message(Message::builder().text(message).build())
            .locations(vec![location])
            .partial_fingerprints(BTreeMap::from([(FINGERPRINT.to_owned(), qualified)]))
            .properties(bag(properties))
            .build(),
    )
}

/// Whole points without decimals, partial ones with two.
fn points(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ci::testutil::{action, report, scope};

    #[test]
    fn one_rule_per_action_and_one_result_per_failing_or_undetected_action() {
        let mut low = action("c.low", TestStatus::FailedLowRisk, 3);
        low.text.risk = Some(Risk::Low);
        let one = scope(
            "contoso",
            vec![
                action("a.passed", TestStatus::Passed, 27),
                action("b.high", TestStatus::FailedHighRisk, 27),
                low,
                action("d.undetected", TestStatus::CouldNotBeDetected, 9),
                action("e.scope", TestStatus::OutOfScope, 9),
                action("f.medium", TestStatus::FailedMediumRisk, 9),
            ],
        );
        // The same action in a second tenant: one rule, a second result.
        let two = scope(
            "fabrikam",
            vec![action("b.high", TestStatus::FailedHighRisk, 27)],
        );
        let log = serde_json::to_value(log(
            &report(vec![one, two]),
            "1.2.3 (commit x)",
            Some("config/postured.toml"),
        ))
        .expect("json");
        assert_eq!(log["version"], "2.1.0");
        let run = &log["runs"][0];
        let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
        let ids: Vec<&str> = rules.iter().filter_map(|r| r["id"].as_str()).collect();
        assert_eq!(
            ids,
            [
                "a.passed",
                "b.high",
                "c.low",
                "d.undetected",
                "e.scope",
                "f.medium"
            ]
        );
        let high = &rules[1];
        assert_eq!(high["shortDescription"]["text"], "Title of b.high");
        assert_eq!(high["fullDescription"]["text"], "Do b.high.");
        assert!(
            high["help"]["text"]
                .as_str()
                .expect("help")
                .starts_with("Do b.high.")
        );
        assert_eq!(high["properties"]["points"], 27);
        assert_eq!(
            high["properties"]["controls"],
            json!(["ISO/IEC 27001:2022 A.8.5"])
        );
        assert_eq!(
            high["properties"]["frameworks"],
            json!(["ISO/IEC 27001:2022"])
        );
        assert_eq!(high["properties"]["security-severity"], "8.0");
        assert_eq!(high["defaultConfiguration"]["level"], "error");
        assert_eq!(run["tool"]["driver"]["semanticVersion"], "1.2.3");
        let results = run["results"].as_array().expect("results");
        let summary: Vec<(String, String, String, i64)> = results
            .iter()
            .map(|r| {
                (
                    r["ruleId"].as_str().unwrap_or("").to_owned(),
                    r["kind"].as_str().unwrap_or("").to_owned(),
                    r["level"].as_str().unwrap_or("").to_owned(),
                    r["ruleIndex"].as_i64().unwrap_or(-1),
                )
            })
            .collect();
        let row = |id: &str, kind: &str, level: &str, index: i64| {
            (id.to_owned(), kind.to_owned(), level.to_owned(), index)
        };
        assert_eq!(
            summary,
            [
                row("b.high", "fail", "error", 1),
                row("c.low", "fail", "note", 2),
                row("d.undetected", "open", "none", 3),
                row("f.medium", "fail", "warning", 5),
                row("b.high", "fail", "error", 1),
            ]
        );
        let first = &results[0];
        assert_eq!(
            first["message"]["text"],
            "Title of b.high (tenant contoso): failed_high_risk, 0 of 27 points: reason of b.high"
        );
        assert_eq!(
            first["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
            "contoso/b.high"
        );
        assert_eq!(
            first["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "config/postured.toml"
        );
        assert_eq!(first["partialFingerprints"][FINGERPRINT], "contoso/b.high");
        assert_eq!(
            results[4]["partialFingerprints"][FINGERPRINT],
            "fabrikam/b.high"
        );
    }
}
