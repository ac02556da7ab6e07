//! What a CI pipeline is shown of one `postured once` run: for each selected tenant, or for
//! one assessment, its compliance score and its improvement actions with the controls they
//! map to. The gate ([`super::gate`]), the JUnit XML ([`super::junit`]) and the SARIF log
//! ([`super::sarif`]) all read this one view, so they never disagree on which actions count.
//!
//! The actions of a scope are the model's de-duplicated **instances** that its score covers
//! (`ComplianceModel::score` over a tenant or an assessment filter): technical and
//! provider-managed actions once per tenant, operational and documentation actions once per
//! group; the score is the model's over the same instances. Pure: no IO, no clock (`now` is
//! given).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::evaluation::{Risk, ScoreSummary, TestStatus};
use crate::model::report::AssessmentReport;
use crate::model::{ComplianceModel, Instance, ScoreFilter};

/// What the CI outputs cover: every tenant, one tenant, or one assessment (of its tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every configured tenant, each over all its assessments.
    All,
    /// One tenant (its id), over all its assessments.
    Tenant(String),
    /// One assessment: its tenant, and the assessment's id.
    Assessment {
        /// The assessment's tenant.
        tenant: String,
        /// Assessment id.
        assessment: String,
    },
}

/// The texts of an improvement action that the model's instances do not carry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActionText {
    /// What the action is, why it matters and what to do (the catalog's `description`, or the
    /// template's action description); empty when unknown.
    pub description: String,
    /// The risk of a plain failure (the catalog's `risk`); `None` for actions tested by a
    /// person.
    pub risk: Option<Risk>,
}

/// A control an action is mapped to by one of the scope's assessments.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ControlRef {
    /// The template's regulation or standard (`ISO/IEC 27001:2022`).
    pub framework: String,
    /// Control id (`A.8.5`).
    pub control: String,
}

/// One improvement action instance as the CI outputs show it.
#[derive(Debug, Clone, PartialEq)]
pub struct CiAction {
    /// Action id (`msgraph.ca.legacy_auth_blocked`).
    pub id: String,
    /// Title.
    pub title: String,
    /// Category.
    pub category: String,
    /// Product or service that implements it.
    pub solution: String,
    /// Test status.
    pub test_status: TestStatus,
    /// The action's points (1..=99).
    pub points: u32,
    /// points × credit; 0 when out of scope.
    pub points_achieved: f64,
    /// points; 0 when out of scope.
    pub points_possible: f64,
    /// Why the status is what it is (failure detail, missing signal ...).
    pub reason: Option<String>,
    /// The rule, for automatic actions; empty otherwise.
    pub testing_logic: String,
    /// Description and risk.
    pub text: ActionText,
    /// Controls it maps to in the scope's assessments, sorted, each once.
    pub controls: Vec<ControlRef>,
}

/// One tenant (or one of its assessments) with its score and actions.
#[derive(Debug, Clone, PartialEq)]
pub struct CiScope {
    /// Tenant id.
    pub tenant: String,
    /// Tenant display name, if configured.
    pub name: Option<String>,
    /// The assessment, when the selection is one assessment.
    pub assessment: Option<String>,
    /// When the tenant was last evaluated; `None`: never (its automatic actions are
    /// `to_be_detected`).
    pub evaluated_at: Option<DateTime<Utc>>,
    /// The model's score over [`Self::actions`].
    pub score: ScoreSummary,
    /// The instances the score covers, sorted by id.
    pub actions: Vec<CiAction>,
}

impl CiScope {
    /// `tenant contoso` or `tenant contoso, assessment contoso-iso27001`: how lines about the
    /// scope begin.
    pub fn label(&self) -> String {
        match &self.assessment {
            Some(a) => format!("tenant {}: assessment {a}", self.tenant),
            None => format!("tenant {}", self.tenant),
        }
    }
}

/// The CI view of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct CiReport {
    /// When the view was built.
    pub generated_at: DateTime<Utc>,
    /// One scope per selected tenant, in configuration order.
    pub scopes: Vec<CiScope>,
}

/// Whether a test status leaves an action without a verdict: `could_not_be_detected` (a
/// collection failure, a stale or missing signal, a rule error) or `to_be_detected` (not
/// evaluated yet). Such an action earns 0 points but says nothing about the posture.
pub fn is_undetected(status: TestStatus) -> bool {
    matches!(
        status,
        TestStatus::CouldNotBeDetected | TestStatus::ToBeDetected
    )
}

/// What [`build`] reads.
pub struct CiInput<'a> {
    /// When the view is built.
    pub now: DateTime<Utc>,
    /// Every configured tenant in order: id and display name.
    pub tenants: &'a [(String, Option<String>)],
    /// When each tenant was last evaluated (absent: never).
    pub evaluated_at: &'a BTreeMap<String, DateTime<Utc>>,
    /// The model over every active assessment and the latest evaluations.
    pub model: &'a ComplianceModel,
    /// The model's assessment reports (`ComplianceModel::reports`): the controls each action
    /// maps to.
    pub reports: &'a [AssessmentReport],
    /// The description and risk of an action id.
    pub describe: &'a dyn Fn(&str) -> ActionText,
}

/// Build the CI view of the selected tenants or assessment. A tenant or assessment the
/// model does not know gives an empty scope (score 0 of 0 possible).
pub fn build(input: &CiInput<'_>, selection: &Selection) -> CiReport {
    let scopes = input
        .tenants
        .iter()
        .filter_map(|(tenant, name)| {
            let assessment = match selection {
                Selection::All => None,
                Selection::Tenant(t) if t == tenant => None,
                Selection::Assessment {
                    tenant: t,
                    assessment,
                } if t == tenant => Some(assessment.clone()),
                _ => return None,
            };
            Some(scope(input, tenant, name.clone(), assessment))
        })
        .collect();
    CiReport {
        generated_at: input.now,
        scopes,
    }
}

fn scope(
    input: &CiInput<'_>,
    tenant: &str,
    name: Option<String>,
    assessment: Option<String>,
) -> CiScope {
    let filter = ScoreFilter {
        tenant: Some(tenant.to_owned()),
        assessment: assessment.clone(),
        ..ScoreFilter::default()
    };
    let controls = controls_of(input.reports, tenant, assessment.as_deref());
    let mut actions: Vec<CiAction> = input
        .model
        .instances()
        .filter(|i| filter.matches(i))
        .map(|i| action(i, &controls, input.describe))
        .collect();
    actions.sort_by(|a, b| a.id.cmp(&b.id));
    CiScope {
        tenant: tenant.to_owned(),
        name,
        assessment,
        evaluated_at: input.evaluated_at.get(tenant).copied(),
        score: input.model.score(&filter),
        actions,
    }
}

/// For each action id, the (framework, control) pairs of the tenant's assessments (or of the
/// one assessment) that map it.
fn controls_of(
    reports: &[AssessmentReport],
    tenant: &str,
    assessment: Option<&str>,
) -> BTreeMap<String, BTreeSet<ControlRef>> {
    let mut out: BTreeMap<String, BTreeSet<ControlRef>> = BTreeMap::new();
    for r in reports
        .iter()
        .filter(|r| r.tenant == tenant && assessment.is_none_or(|a| a == r.id))
    {
        for c in &r.controls {
            for a in &c.actions {
                out.entry(a.clone()).or_default().insert(ControlRef {
                    framework: r.certification.clone(),
                    control: c.id.clone(),
                });
            }
        }
    }
    out
}

fn action(
    i: &Instance,
    controls: &BTreeMap<String, BTreeSet<ControlRef>>,
    describe: &dyn Fn(&str) -> ActionText,
) -> CiAction {
    CiAction {
        id: i.key.action.clone(),
        title: i.title.clone(),
        category: i.category.clone(),
        solution: i.solution.clone(),
        test_status: i.test_status,
        points: i.points,
        points_achieved: i.points_achieved,
        points_possible: i.points_possible,
        reason: i.reason.clone(),
        testing_logic: i.testing_logic.clone(),
        text: describe(&i.key.action),
        controls: controls
            .get(&i.key.action)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Hand-made CI views for the gate, JUnit and SARIF unit tests.

    use chrono::TimeZone;

    use super::*;

    /// An action with a status, `points` possible and the credit a status gives (partial: a
    /// half).
    pub fn action(id: &str, status: TestStatus, points: u32) -> CiAction {
        let credit = match status {
            TestStatus::Passed => 1.0,
            TestStatus::PartiallyTested => 0.5,
            _ => 0.0,
        };
        let possible = if status == TestStatus::OutOfScope {
            0.0
        } else {
            f64::from(points)
        };
        CiAction {
            id: id.into(),
            title: format!("Title of {id}"),
            category: "Identity".into(),
            solution: "Microsoft Entra ID".into(),
            test_status: status,
            points,
            points_achieved: possible * credit,
            points_possible: possible,
            reason: (status != TestStatus::Passed).then(|| format!("reason of {id}")),
            testing_logic: "msgraph.x == 1.0".into(),
            text: ActionText {
                description: format!("Do {id}."),
                risk: Some(Risk::High),
            },
            controls: vec![ControlRef {
                framework: "ISO/IEC 27001:2022".into(),
                control: "A.8.5".into(),
            }],
        }
    }

    /// A scope over these actions, its score summed from them.
    pub fn scope(tenant: &str, actions: Vec<CiAction>) -> CiScope {
        let achieved: f64 = actions.iter().map(|a| a.points_achieved).sum();
        let possible: f64 = actions.iter().map(|a| a.points_possible).sum();
        CiScope {
            tenant: tenant.into(),
            name: None,
            assessment: None,
            evaluated_at: Some(now()),
            score: ScoreSummary {
                points_achieved: achieved,
                points_possible: possible,
                ratio: if possible > 0.0 {
                    achieved / possible
                } else {
                    0.0
                },
            },
            actions,
        }
    }

    /// 2026-03-01T12:00:00Z.
    pub fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
            .single()
            .expect("valid")
    }

    /// A report of these scopes.
    pub fn report(scopes: Vec<CiScope>) -> CiReport {
        CiReport {
            generated_at: now(),
            scopes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluation::{ActionResult, TenantEvaluation};
    use crate::model::template::{
        ImplementationType, Responsibility, Template, TemplateAction, TemplateControl,
    };
    use crate::model::{Assessment, ModelInput, TemplateRegistry};

    fn result(id: &str, test: TestStatus) -> ActionResult {
        let credit = if test == TestStatus::Passed { 1.0 } else { 0.0 };
        ActionResult {
            action_id: id.into(),
            title: id.into(),
            category: "Identity".into(),
            solution: "Microsoft Entra ID".into(),
            implementation_status: crate::evaluation::evaluator::implementation_status(test, false),
            test_status: test,
            credit,
            points: 27,
            points_achieved: 27.0 * credit,
            points_possible: 27.0,
            testing_logic: "rule".into(),
            reason: None,
            cause: None,
            signals: Vec::new(),
        }
    }

    fn template_action(id: &str, kind: ImplementationType, points: u32) -> TemplateAction {
        TemplateAction {
            id: id.into(),
            title: id.into(),
            implementation_type: kind,
            points,
            responsibility: Responsibility::Customer,
            description_title: String::new(),
            description: format!("Do {id}."),
            guidance: String::new(),
            evidence: String::new(),
        }
    }

    #[test]
    fn scopes_hold_the_instances_their_score_covers_with_controls() {
        let mut registry = TemplateRegistry::new();
        registry
            .insert(Template {
                id: "iso".into(),
                title: "ISO".into(),
                product: String::new(),
                certification: "ISO/IEC 27001:2022".into(),
                in_scope_services: Vec::new(),
                controls: vec![TemplateControl {
                    id: "A.8.5".into(),
                    family: "F".into(),
                    title: "T".into(),
                    description: String::new(),
                    actions: vec!["tech.a".into(), "doc.b".into()],
                }],
                actions: vec![
                    template_action("tech.a", ImplementationType::Technical, 27),
                    template_action("doc.b", ImplementationType::Documentation, 3),
                ],
            })
            .expect("valid template");
        let assessment = |id: &str, tenant: &str| Assessment {
            id: id.into(),
            tenant: tenant.into(),
            template: "iso".into(),
            group: "g".into(),
        };
        let assessments = [assessment("t1-iso", "t1"), assessment("t2-iso", "t2")];
        let now = testutil::now();
        let evaluation = |tenant: &str, status| TenantEvaluation {
            tenant: tenant.into(),
            evaluated_at: now,
            actions: vec![result("tech.a", status)],
            score: ScoreSummary::default(),
            categories: Vec::new(),
        };
        let evaluations = [
            evaluation("t1", TestStatus::Passed),
            evaluation("t2", TestStatus::CouldNotBeDetected),
        ];
        let model = ComplianceModel::build(&ModelInput {
            templates: &registry,
            assessments: &assessments,
            evaluations: &evaluations,
            manual: &[],
            now,
        });
        let reports = model.reports();
        let tenants = [
            ("t1".to_owned(), Some("Tenant one".to_owned())),
            ("t2".to_owned(), None),
            ("t3".to_owned(), None),
        ];
        let evaluated_at = BTreeMap::from([("t1".to_owned(), now), ("t2".to_owned(), now)]);
        let describe = |id: &str| ActionText {
            description: format!("about {id}"),
            risk: None,
        };
        let input = CiInput {
            now,
            tenants: &tenants,
            evaluated_at: &evaluated_at,
            model: &model,
            reports: &reports,
            describe: &describe,
        };

        let all = build(&input, &Selection::All);
        let ids: Vec<&str> = all.scopes.iter().map(|s| s.tenant.as_str()).collect();
        assert_eq!(ids, ["t1", "t2", "t3"]);
        let t1 = &all.scopes[0];
        assert_eq!(t1.name.as_deref(), Some("Tenant one"));
        // The technical action once for the tenant, the documentation one of its group.
        let actions: Vec<(&str, TestStatus)> = t1
            .actions
            .iter()
            .map(|a| (a.id.as_str(), a.test_status))
            .collect();
        assert_eq!(
            actions,
            [("doc.b", TestStatus::None), ("tech.a", TestStatus::Passed)]
        );
        assert_eq!(
            t1.actions[1].controls,
            [ControlRef {
                framework: "ISO/IEC 27001:2022".into(),
                control: "A.8.5".into()
            }]
        );
        assert_eq!(t1.actions[1].text.description, "about tech.a");
        // The model's score over the same instances: 27 of 27 + 3.
        assert_eq!(
            (t1.score.points_achieved, t1.score.points_possible),
            (27.0, 30.0)
        );
        let t2 = &all.scopes[1];
        assert_eq!(t2.actions[1].test_status, TestStatus::CouldNotBeDetected);
        // A tenant the model has no assessment of: an empty scope, never evaluated.
        let t3 = &all.scopes[2];
        assert!(t3.actions.is_empty() && t3.evaluated_at.is_none());
        assert_eq!(t3.score.points_possible, 0.0);

        let one = build(&input, &Selection::Tenant("t2".into()));
        assert_eq!(one.scopes.len(), 1);
        assert_eq!(one.scopes[0].label(), "tenant t2");

        let a = build(
            &input,
            &Selection::Assessment {
                tenant: "t1".into(),
                assessment: "t1-iso".into(),
            },
        );
        assert_eq!(a.scopes.len(), 1);
        assert_eq!(a.scopes[0].label(), "tenant t1: assessment t1-iso");
        assert_eq!(a.scopes[0].actions.len(), 2);
        assert_eq!(
            a.scopes[0].score,
            model.score(&ScoreFilter {
                assessment: Some("t1-iso".into()),
                ..ScoreFilter::default()
            })
        );
    }
}
