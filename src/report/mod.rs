//! Reports of the latest evaluations: the JSON document of `once --output json` and
//! `GET /api/v1/report`, and the terminal table of `once`.
//!
//! JSON shape (stable, documented in README.md):
//! `{"generated_at", "tenants": [{"tenant", "name", "score": {"points_achieved",
//! "points_possible", "ratio"}, "categories": [{"category", "points_achieved",
//! "points_possible", "ratio"}], "actions": [{"id", "title", "category", "solution",
//! "implementation_status", "test_status", "points_achieved", "points_possible",
//! "testing_logic", "reason", "cause"?}]}]}` (`cause`: the typed cause of
//! `could_not_be_detected`, see `evaluation::Undetected`). Ratios are in [0, 1]. Pure formatting:
//! no IO.
//!
//! For CI systems ([`ci`] the view, docs/ci-gate.md): the gate of `once --fail-under /
//! --fail-on` ([`gate`]), JUnit XML ([`junit`]) and SARIF 2.1.0 ([`sarif`]).

pub mod audit;
pub mod ci;
pub mod gate;
pub mod junit;
pub mod ledger;
pub mod sarif;

use chrono::{DateTime, SecondsFormat, Utc};
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

use crate::evaluation::{ImplementationStatus, ScoreSummary, TenantEvaluation, TestStatus};
use crate::model::report::{AssessmentReport, AssessmentStatus, ControlStatus};

/// The whole report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// RFC 3339 UTC time the report was built.
    pub generated_at: String,
    /// One entry per evaluated tenant, in configuration order.
    pub tenants: Vec<TenantReport>,
}

/// One tenant's score, categories and actions.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TenantReport {
    /// Tenant id.
    pub tenant: String,
    /// Display name, if configured.
    pub name: Option<String>,
    /// RFC 3339 UTC time of the evaluation.
    pub evaluated_at: String,
    /// Overall compliance score.
    pub score: ScoreSummary,
    /// Per-category scores, sorted by category.
    pub categories: Vec<CategoryReport>,
    /// Every improvement action, sorted by id.
    pub actions: Vec<ActionReport>,
    /// The tenant's assessments (configured ones, then the default Data Protection
    /// Baseline), filled by [`with_assessments`].
    pub assessments: Vec<AssessmentSummary>,
}

/// One assessment of a tenant: its score over its de-duplicated instances, rollup status and
/// progress.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AssessmentSummary {
    /// Assessment id.
    pub id: String,
    /// Template id.
    pub template: String,
    /// Regulation or standard of the template.
    pub certification: String,
    /// Group id.
    pub group: String,
    /// Points and ratio over the assessment's instances, each once.
    pub score: ScoreSummary,
    /// `complete`, `incomplete`, `none` or `in_progress`.
    pub status: AssessmentStatus,
    /// Share of in-scope controls passed, in [0, 1].
    pub progress: f64,
    /// Share of the possible points tested automatically, in [0, 1].
    pub automated_points_ratio: f64,
    /// Number of controls per rollup status.
    pub controls: ControlCounts,
}

/// Controls of an assessment per rollup status.
#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
pub struct ControlCounts {
    /// `passed`.
    pub passed: usize,
    /// `failed`.
    pub failed: usize,
    /// `none`.
    pub none: usize,
    /// `out_of_scope`.
    pub out_of_scope: usize,
    /// `in_progress`.
    pub in_progress: usize,
}

/// Attach assessment reports to the tenants of a report (each to its tenant, in the given
/// order).
pub fn with_assessments(mut report: Report, assessments: &[AssessmentReport]) -> Report {
    for t in &mut report.tenants {
        t.assessments = assessments
            .iter()
            .filter(|a| a.tenant == t.tenant)
            .map(|a| {
                let mut controls = ControlCounts::default();
                for c in &a.controls {
                    match c.status {
                        ControlStatus::Passed => controls.passed += 1,
                        ControlStatus::Failed => controls.failed += 1,
                        ControlStatus::None => controls.none += 1,
                        ControlStatus::OutOfScope => controls.out_of_scope += 1,
                        ControlStatus::InProgress => controls.in_progress += 1,
                    }
                }
                AssessmentSummary {
                    id: a.id.clone(),
                    template: a.template_id.clone(),
                    certification: a.certification.clone(),
                    group: a.group.clone(),
                    score: ScoreSummary {
                        points_achieved: round2(a.score.points_achieved),
                        ..a.score
                    },
                    status: a.status,
                    progress: a.progress,
                    automated_points_ratio: a.automated_points_ratio,
                    controls,
                }
            })
            .collect();
    }
    report
}

/// Attach each action's ledger (by tenant, then action id) to the report's actions.
pub fn with_ledger(
    mut report: Report,
    ledgers: &std::collections::HashMap<String, Vec<crate::report::ledger::ActionLedger>>,
) -> Report {
    for t in &mut report.tenants {
        let Some(list) = ledgers.get(&t.tenant) else {
            continue;
        };
        for a in &mut t.actions {
            a.ledger = list.iter().find(|l| l.action_id == a.id).cloned();
        }
    }
    report
}

/// A category's points.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CategoryReport {
    /// Category name, e.g. `Identity`.
    pub category: String,
    /// Points and ratio.
    #[serde(flatten)]
    pub score: ScoreSummary,
}

/// One improvement action's state.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActionReport {
    /// Action id (`msgraph.mfa.all_users`, `securescore.<control>`).
    pub id: String,
    /// Title.
    pub title: String,
    /// Category (score breakdown).
    pub category: String,
    /// Product or service that implements it.
    pub solution: String,
    /// Implementation status derived from the test (or set by a person).
    pub implementation_status: ImplementationStatus,
    /// Test status.
    pub test_status: TestStatus,
    /// Points achieved (points possible × credit).
    pub points_achieved: f64,
    /// Points possible (0 when out of scope).
    pub points_possible: f64,
    /// The rule, as shown to users.
    pub testing_logic: String,
    /// Why the status is what it is, when not plainly passed.
    pub reason: Option<String>,
    /// Why the action is `could_not_be_detected`, typed (collection gap, stale signal, missing
    /// signal, rule error); absent for every other status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<crate::evaluation::Undetected>,
    /// The action's regression ledger (time in state, first failed, regressions, time to
    /// recover), when the report was built with the store's history (see [`with_ledger`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger: Option<crate::report::ledger::ActionLedger>,
}

/// Build the report from evaluations and the tenants' display names.
pub fn build(
    now: DateTime<Utc>,
    evaluations: &[TenantEvaluation],
    name_of: impl Fn(&str) -> Option<String>,
) -> Report {
    Report {
        generated_at: now.to_rfc3339_opts(SecondsFormat::Secs, true),
        tenants: evaluations
            .iter()
            .map(|e| TenantReport {
                tenant: e.tenant.clone(),
                name: name_of(&e.tenant),
                evaluated_at: e.evaluated_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                score: e.score,
                categories: e
                    .categories
                    .iter()
                    .map(|(c, s)| CategoryReport {
                        category: c.clone(),
                        score: *s,
                    })
                    .collect(),
                actions: e
                    .actions
                    .iter()
                    .map(|a| ActionReport {
                        id: a.action_id.clone(),
                        title: a.title.to_string(),
                        category: a.category.to_string(),
                        solution: a.solution.to_string(),
                        implementation_status: a.implementation_status,
                        test_status: a.test_status,
                        points_achieved: round2(a.points_achieved),
                        points_possible: a.points_possible,
                        testing_logic: a.testing_logic.to_string(),
                        reason: a.reason.clone(),
                        cause: a.cause.clone(),
                        ledger: None,
                    })
                    .collect(),
                assessments: Vec::new(),
            })
            .collect(),
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn pct(s: &ScoreSummary) -> String {
    format!(
        "{:.2} / {:.0} ({:.1}%)",
        s.points_achieved,
        s.points_possible,
        s.ratio * 100.0
    )
}

/// Render the report as terminal tables: per tenant, the score line, categories and actions.
pub fn render_table(report: &Report) -> String {
    let mut out = String::new();
    for t in &report.tenants {
        out.push_str(&format!(
            "Tenant {}{}  compliance score {}\n",
            t.tenant,
            t.name
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default(),
            pct(&t.score)
        ));
        let mut cats = Table::new();
        cats.load_preset(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_header(vec!["category", "points", "score"]);
        for c in &t.categories {
            cats.add_row(vec![
                Cell::new(&c.category),
                Cell::new(format!(
                    "{:.2} / {:.0}",
                    c.score.points_achieved, c.score.points_possible
                ))
                .set_alignment(CellAlignment::Right),
                Cell::new(format!("{:.1}%", c.score.ratio * 100.0))
                    .set_alignment(CellAlignment::Right),
            ]);
        }
        out.push_str(&cats.to_string());
        out.push('\n');
        if !t.assessments.is_empty() {
            out.push_str(&assessment_table(&t.assessments));
            out.push('\n');
        }
        let mut actions = Table::new();
        actions
            .load_preset(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(160)
            .set_header(vec![
                "action",
                "category",
                "test status",
                "points",
                "reason",
            ]);
        for a in &t.actions {
            actions.add_row(vec![
                Cell::new(&a.id),
                Cell::new(&a.category),
                Cell::new(a.test_status.as_str()),
                Cell::new(format!(
                    "{:.2} / {:.0}",
                    a.points_achieved, a.points_possible
                ))
                .set_alignment(CellAlignment::Right),
                Cell::new(a.reason.as_deref().unwrap_or("")),
            ]);
        }
        out.push_str(&actions.to_string());
        out.push_str("\n\n");
    }
    out
}

/// The per-assessment table of `once`: id, template, group, points, score, status, progress
/// and controls passed / in scope.
fn assessment_table(assessments: &[AssessmentSummary]) -> String {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(160)
        .set_header(vec![
            "assessment",
            "certification",
            "group",
            "points",
            "score",
            "status",
            "controls passed",
        ]);
    for a in assessments {
        let c = a.controls;
        let in_scope = c.passed + c.failed + c.none + c.in_progress;
        table.add_row(vec![
            Cell::new(&a.id),
            Cell::new(&a.certification),
            Cell::new(&a.group),
            Cell::new(format!(
                "{:.2} / {:.0}",
                a.score.points_achieved, a.score.points_possible
            ))
            .set_alignment(CellAlignment::Right),
            Cell::new(format!("{:.1}%", a.score.ratio * 100.0)).set_alignment(CellAlignment::Right),
            Cell::new(assessment_status_name(a.status)),
            Cell::new(format!(
                "{} / {} ({:.0}%)",
                c.passed,
                in_scope,
                a.progress * 100.0
            ))
            .set_alignment(CellAlignment::Right),
        ]);
    }
    format!("{table}\n")
}

fn assessment_status_name(s: AssessmentStatus) -> &'static str {
    match s {
        AssessmentStatus::Complete => "complete",
        AssessmentStatus::Incomplete => "incomplete",
        AssessmentStatus::None => "none",
        AssessmentStatus::InProgress => "in_progress",
    }
}

/// Render stored transitions as a table: when, action, from -> to, points, reason, and the
/// start of the automatic evidence's SHA-256.
pub fn render_history(rows: &[crate::store::TransitionRow]) -> String {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(160)
        .set_header(vec![
            "at", "action", "from", "to", "points", "reason", "evidence",
        ]);
    for r in rows {
        let t = &r.transition;
        table.add_row(vec![
            Cell::new(t.at.to_rfc3339_opts(SecondsFormat::Secs, true)),
            Cell::new(&t.action_id),
            Cell::new(t.from_status.map(|s| s.as_str()).unwrap_or("-")),
            Cell::new(t.to_status.as_str()),
            Cell::new(format!(
                "{:.2} / {:.0}",
                t.points_achieved, t.points_possible
            ))
            .set_alignment(CellAlignment::Right),
            Cell::new(t.reason.as_deref().unwrap_or("")),
            // The first 12 hex digits of the automatic evidence's SHA-256 (the full address is
            // in the JSON output and the API).
            Cell::new(
                r.evidence_sha256
                    .as_deref()
                    .map_or("", |h| &h[..h.len().min(12)]),
            ),
        ]);
    }
    format!("{table}\n")
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::report::ControlReport;

    #[test]
    fn assessments_attach_to_their_tenant_with_counts_and_a_table() {
        let now = Utc
            .with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
            .single()
            .expect("valid");
        let eval = |tenant: &str| TenantEvaluation {
            tenant: tenant.into(),
            evaluated_at: now,
            actions: Vec::new(),
            score: ScoreSummary::default(),
            categories: Vec::new(),
        };
        let control = |status| ControlReport {
            id: "C".into(),
            family: "F".into(),
            title: "T".into(),
            description: String::new(),
            status,
            actions: Vec::new(),
        };
        let a = AssessmentReport {
            id: "t2-gdpr".into(),
            tenant: "t2".into(),
            group: "eu".into(),
            template_id: "gdpr".into(),
            template_title: "GDPR".into(),
            certification: "GDPR".into(),
            generated_at: now,
            score: ScoreSummary {
                points_achieved: 1.0 / 3.0,
                points_possible: 3.0,
                ratio: 1.0 / 9.0,
            },
            status: AssessmentStatus::Incomplete,
            progress: 0.5,
            automated_points_ratio: 0.0,
            controls: vec![
                control(ControlStatus::Passed),
                control(ControlStatus::Failed),
                control(ControlStatus::OutOfScope),
            ],
            actions: Vec::new(),
        };
        let r = with_assessments(build(now, &[eval("t1"), eval("t2")], |_| None), &[a]);
        assert!(r.tenants[0].assessments.is_empty());
        let s = &r.tenants[1].assessments[0];
        assert_eq!(s.id, "t2-gdpr");
        assert_eq!(s.score.points_achieved, 0.33);
        assert_eq!(
            (
                s.controls.passed,
                s.controls.failed,
                s.controls.out_of_scope
            ),
            (1, 1, 1)
        );
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(json["tenants"][1]["assessments"][0]["status"], "incomplete");
        assert_eq!(json["tenants"][1]["assessments"][0]["progress"], 0.5);
        let table = render_table(&r);
        assert!(table.contains("t2-gdpr"), "{table}");
        assert!(table.contains("1 / 2 (50%)"), "{table}");
    }
}
