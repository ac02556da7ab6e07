//! The de-duplicated instance set and every score over it (SCORING.md "De-duplication and
//! aggregation").
//!
//! [`ComplianceModel::build`] takes templates, assessments, the tenants' latest evaluations and
//! the manual status records, and resolves each assessment's actions into **instances**:
//!
//! - technical and provider-managed actions are keyed by `(tenant, action)`: however many
//!   assessments, controls or groups reference one, it is one instance with one status;
//! - customer-managed operational and documentation actions are keyed by `(group, action)`:
//!   one instance per group, shared by every assessment of the group.
//!
//! Every score is `Σ points_achieved / Σ points_possible` over a filtered subset of those
//! instances, each once ([`ComplianceModel::score`] with a [`ScoreFilter`]); the overall score
//! is not a mean of assessment scores, and adding an assessment grows the denominator.
//!
//! How an instance's status is decided:
//!
//! | action | no record, or record with source `automatic` | record with source `manual` | source `parent` |
//! |---|---|---|---|
//! | technical, in the tenant's evaluation | the rule's result (source `automatic`) | the record | the parent's status |
//! | technical, tenant not evaluated yet | `to_be_detected` (source `automatic`) | the record | the parent's status |
//! | technical, not in the evaluation (no rule) | `none` (source `manual`) | the record | the parent's status |
//! | provider-managed | provider-attested: `passed`, `implemented` (source `automatic`) | the record | the parent's status |
//! | operational / documentation | `none`, `not_implemented` (source `manual`) | the record | the parent's status |
//!
//! A manual record without an implementation status derives it from the test status
//! (`passed` -> implemented, `out_of_scope` -> out of scope, else not implemented). A manual
//! `partially_tested` has no fraction and earns 0. Either status `out_of_scope` removes the
//! instance from numerator and denominator. Pure: no IO, no clock.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::assessment::{Assessment, InstanceScope, ManualStatus};
use super::registry::TemplateRegistry;
use super::report::{ActionInstanceReport, AssessmentReport, ControlReport, TestingSource};
use super::rollup::{assessment_status, classify, control_status, progress};
use super::template::{ImplementationType, Responsibility, Template, TemplateAction, is_pattern};
use crate::evaluation::{
    ActionResult, ImplementationStatus, ScoreSummary, TenantEvaluation, TestStatus,
};

/// Category given to operational actions (they have no catalog category).
pub const OPERATIONAL_CATEGORY: &str = "Operational";
/// Category given to documentation actions.
pub const DOCUMENTATION_CATEGORY: &str = "Documentation";
/// Solution given to non-technical, customer-managed actions.
pub const MANUAL_SOLUTION: &str = "Organisation";
/// Solution given to provider-managed actions.
pub const PROVIDER_SOLUTION: &str = "Provider-managed";

/// The key of one de-duplicated action instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InstanceKey {
    /// Tenant (technical, provider-managed) or group (operational, documentation).
    pub scope: InstanceScope,
    /// Action id.
    pub action: String,
}

/// One de-duplicated action instance with its resolved status and points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// Its key.
    pub key: InstanceKey,
    /// Title.
    pub title: String,
    /// Category (catalog category; `Operational` / `Documentation` for non-technical ones).
    pub category: String,
    /// Solution (catalog solution; `Organisation` / `Provider-managed` otherwise).
    pub solution: String,
    /// Technical, operational or documentation.
    pub implementation_type: ImplementationType,
    /// Customer or provider.
    pub responsibility: Responsibility,
    /// Who set the test status.
    pub testing_source: TestingSource,
    /// Implementation status.
    pub implementation_status: ImplementationStatus,
    /// Test status.
    pub test_status: TestStatus,
    /// Credit in [0, 1].
    pub credit: f64,
    /// The action's points (1..=99).
    pub points: u32,
    /// points × credit; 0 when out of scope.
    pub points_achieved: f64,
    /// points; 0 when out of scope.
    pub points_possible: f64,
    /// Rule text for automatic actions; empty otherwise.
    pub testing_logic: String,
    /// Why the status is what it is.
    pub reason: Option<String>,
    /// Owner from the manual record.
    pub assigned_to: Option<String>,
    /// Implementation notes from the manual record.
    pub notes: Option<String>,
    /// Implementation date from the manual record.
    pub implementation_date: Option<DateTime<Utc>>,
    /// Test notes from the manual record.
    pub test_notes: Option<String>,
    /// Test date from the manual record.
    pub test_date: Option<DateTime<Utc>>,
    /// Evidence from the manual record.
    pub evidence: Vec<String>,
    /// How to carry the action out (the template action's `guidance`).
    pub guidance: String,
    /// What an auditor expects to see (the template action's `evidence`).
    pub expected_evidence: String,
    /// When the manual record was last changed (manual and parent sources).
    pub status_since: Option<DateTime<Utc>>,
    /// Tenants whose assessments reference the instance.
    pub tenants: BTreeSet<String>,
    /// Groups whose assessments reference it.
    pub groups: BTreeSet<String>,
    /// Assessments that reference it.
    pub assessments: BTreeSet<String>,
    /// Certifications (regulations) of the templates that reference it.
    pub regulations: BTreeSet<String>,
}

/// Which instances a score covers. Every `Some` field must match (logical AND); the default
/// filter matches everything.
#[derive(
    Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema, utoipa::IntoParams,
)]
#[into_params(parameter_in = Query)]
pub struct ScoreFilter {
    /// Instances referenced by an assessment of this tenant.
    pub tenant: Option<String>,
    /// Instances referenced by this assessment.
    pub assessment: Option<String>,
    /// Instances referenced by a template of this certification (e.g. `ISO/IEC 27001:2022`).
    pub regulation: Option<String>,
    /// Instances of this solution (e.g. `Microsoft Entra ID`).
    pub solution: Option<String>,
    /// Instances referenced by an assessment of this group.
    pub group: Option<String>,
    /// Instances of this category.
    pub category: Option<String>,
    /// Instances with this testing source.
    pub testing_source: Option<TestingSource>,
    /// Instances with this test status.
    pub test_status: Option<TestStatus>,
}

impl ScoreFilter {
    /// Whether an instance passes every set criterion.
    pub fn matches(&self, i: &Instance) -> bool {
        let has =
            |set: &BTreeSet<String>, v: &Option<String>| v.as_ref().is_none_or(|v| set.contains(v));
        has(&i.tenants, &self.tenant)
            && has(&i.assessments, &self.assessment)
            && has(&i.regulations, &self.regulation)
            && has(&i.groups, &self.group)
            && self.solution.as_ref().is_none_or(|s| *s == i.solution)
            && self.category.as_ref().is_none_or(|c| *c == i.category)
            && self.testing_source.is_none_or(|s| s == i.testing_source)
            && self.test_status.is_none_or(|s| s == i.test_status)
    }
}

/// A dimension to break a score down by ([`ComplianceModel::scores_by`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// Per tenant.
    Tenant,
    /// Per assessment id.
    Assessment,
    /// Per certification.
    Regulation,
    /// Per solution.
    Solution,
    /// Per group.
    Group,
    /// Per category.
    Category,
}

/// What [`ComplianceModel::build`] needs.
#[derive(Debug, Clone, Copy)]
pub struct ModelInput<'a> {
    /// Templates by id.
    pub templates: &'a TemplateRegistry,
    /// Active assessments.
    pub assessments: &'a [Assessment],
    /// The latest evaluation of each tenant (tenants without one are "not evaluated yet").
    pub evaluations: &'a [TenantEvaluation],
    /// Manual status records (any scope; unused ones are ignored).
    pub manual: &'a [ManualStatus],
    /// The instant reports are stamped with.
    pub now: DateTime<Utc>,
}

/// One assessment resolved against its template and the instance set.
#[derive(Debug, Clone, PartialEq)]
struct ResolvedAssessment {
    assessment: Assessment,
    template_id: String,
    template_title: String,
    certification: String,
    /// (control, keys of its instances).
    controls: Vec<(super::template::TemplateControl, Vec<InstanceKey>)>,
    instances: BTreeSet<InstanceKey>,
}

/// A problem met while building the model (an assessment naming an unknown template). The
/// assessment is skipped; the rest is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelProblem {
    /// Assessment id.
    pub assessment: String,
    /// What is wrong.
    pub message: String,
}

/// The de-duplicated instance set of a set of assessments, with scores and reports.
#[derive(Debug, Clone, PartialEq)]
pub struct ComplianceModel {
    instances: BTreeMap<InstanceKey, Instance>,
    assessments: Vec<ResolvedAssessment>,
    problems: Vec<ModelProblem>,
    now: DateTime<Utc>,
}

/// The scope an action instance is keyed by in an assessment.
pub fn scope_of(action: &TemplateAction, assessment: &Assessment) -> InstanceScope {
    if ActionKind::of(action).per_tenant() {
        InstanceScope::Tenant(assessment.tenant.clone())
    } else {
        InstanceScope::Group(assessment.group.clone())
    }
}

/// The action definition of an evaluation result (for wildcard-matched actions).
fn action_from_result(r: &ActionResult) -> TemplateAction {
    TemplateAction {
        id: r.action_id.clone(),
        title: r.title.to_string(),
        implementation_type: ImplementationType::Technical,
        points: r.points,
        responsibility: Responsibility::Customer,
        description_title: String::new(),
        description: String::new(),
        guidance: String::new(),
        evidence: String::new(),
    }
}

/// What decides an action instance's status besides the records and the tenant's rule
/// result: its implementation type, responsibility and template points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ActionKind {
    /// Technical, operational or documentation.
    pub(super) implementation_type: ImplementationType,
    /// Customer or provider.
    pub(super) responsibility: Responsibility,
    /// The template's points (the rule result's win when it decides).
    pub(super) points: u32,
}

impl ActionKind {
    /// The kind of a template action.
    pub(super) fn of(def: &TemplateAction) -> ActionKind {
        ActionKind {
            implementation_type: def.implementation_type,
            responsibility: def.responsibility,
            points: def.points,
        }
    }

    /// Whether the tenant's rule result decides the status (technical, customer-managed).
    pub(super) fn rule_decides(self) -> bool {
        self.implementation_type == ImplementationType::Technical
            && self.responsibility == Responsibility::Customer
    }

    /// Whether the instance is keyed by tenant (technical or provider-managed) rather than by
    /// group.
    pub(super) fn per_tenant(self) -> bool {
        self.implementation_type == ImplementationType::Technical
            || self.responsibility == Responsibility::Provider
    }
}

/// The resolved status and points of one instance (the table of the module docs), its texts
/// borrowed from the rule result or static.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Resolved<'a> {
    pub(super) source: TestingSource,
    pub(super) implementation: ImplementationStatus,
    pub(super) test: TestStatus,
    /// Credit in [0, 1]; 0 when out of scope.
    pub(super) credit: f64,
    pub(super) points: u32,
    pub(super) points_achieved: f64,
    pub(super) points_possible: f64,
    pub(super) category: &'a str,
    pub(super) solution: &'a str,
    pub(super) testing_logic: &'a str,
    pub(super) reason: Option<Cow<'a, str>>,
}

/// Decide one instance's status from its kind, the tenant's rule result for it (used only when
/// the rule decides, see [`ActionKind::rule_decides`]), whether the tenant has been evaluated,
/// and its manual record. A `parent` record resolves as automatic here; the parent's status
/// is copied afterwards ([`ComplianceModel::build`]). One body for the model and the scoring
/// plan (`super::plan`).
pub(super) fn resolve<'a>(
    kind: ActionKind,
    result: Option<&'a ActionResult>,
    evaluated: bool,
    record: Option<&ManualStatus>,
) -> Resolved<'a> {
    let technical = kind.implementation_type == ImplementationType::Technical;
    let provider = kind.responsibility == Responsibility::Provider;
    let result = result.filter(|_| kind.rule_decides());
    let (category, solution): (&'a str, &'a str) =
        match (result, provider, kind.implementation_type) {
            (Some(r), _, _) => (&r.category, &r.solution),
            (None, true, _) => ("Provider-managed", PROVIDER_SOLUTION),
            (None, false, ImplementationType::Operational) => {
                (OPERATIONAL_CATEGORY, MANUAL_SOLUTION)
            }
            (None, false, ImplementationType::Documentation) => {
                (DOCUMENTATION_CATEGORY, MANUAL_SOLUTION)
            }
            (None, false, ImplementationType::Technical) => ("Technical", MANUAL_SOLUTION),
        };
    let points = result.map_or(kind.points, |r| r.points);
    let automatic = || -> Status<'a> {
        if let Some(r) = result {
            return Status {
                source: TestingSource::Automatic,
                implementation: r.implementation_status,
                test: r.test_status,
                credit: r.credit,
                testing_logic: &r.testing_logic,
                reason: r.reason.as_deref().map(Cow::Borrowed),
            };
        }
        let (source, implementation, test, reason) = if provider {
            (
                TestingSource::Automatic,
                ImplementationStatus::Implemented,
                TestStatus::Passed,
                Some("provider-managed: implemented and tested by the provider"),
            )
        } else if technical && !evaluated {
            (
                TestingSource::Automatic,
                ImplementationStatus::NotImplemented,
                TestStatus::ToBeDetected,
                Some("the tenant has not been evaluated yet"),
            )
        } else {
            (
                TestingSource::Manual,
                ImplementationStatus::NotImplemented,
                TestStatus::None,
                None,
            )
        };
        Status {
            source,
            implementation,
            test,
            credit: test.credit(0.0),
            testing_logic: "",
            reason: reason.map(Cow::Borrowed),
        }
    };
    let status = match record {
        Some(m) if m.testing_source == TestingSource::Manual => {
            let test = m.test_status.unwrap_or(TestStatus::None);
            Status {
                source: TestingSource::Manual,
                implementation: m
                    .implementation_status
                    .unwrap_or_else(|| derived_implementation(test)),
                test,
                credit: test.credit(0.0),
                testing_logic: result.map_or("", |r| &*r.testing_logic),
                reason: Some(Cow::Borrowed("set manually")),
            }
        }
        Some(m) if m.testing_source == TestingSource::Parent => Status {
            source: TestingSource::Parent,
            ..automatic()
        },
        _ => automatic(),
    };
    let out_of_scope = status.test == TestStatus::OutOfScope
        || status.implementation == ImplementationStatus::OutOfScope;
    let credit = if out_of_scope { 0.0 } else { status.credit };
    let (points_achieved, points_possible) = match result {
        // Keep the evaluator's own points when the rule decides, so the default assessment
        // reproduces the tenant evaluation exactly.
        Some(r) if status.source == TestingSource::Automatic => {
            (r.points_achieved, r.points_possible)
        }
        _ if out_of_scope => (0.0, 0.0),
        _ => (f64::from(points) * credit, f64::from(points)),
    };
    Resolved {
        source: status.source,
        implementation: status.implementation,
        test: status.test,
        credit,
        points,
        points_achieved,
        points_possible,
        category,
        solution,
        testing_logic: status.testing_logic,
        reason: status.reason,
    }
}

/// Status of one instance before its points.
struct Status<'a> {
    source: TestingSource,
    implementation: ImplementationStatus,
    test: TestStatus,
    credit: f64,
    testing_logic: &'a str,
    reason: Option<Cow<'a, str>>,
}

fn derived_implementation(test: TestStatus) -> ImplementationStatus {
    match test {
        TestStatus::Passed => ImplementationStatus::Implemented,
        TestStatus::OutOfScope => ImplementationStatus::OutOfScope,
        _ => ImplementationStatus::NotImplemented,
    }
}

impl ComplianceModel {
    /// Resolve every assessment into the de-duplicated instance set. Assessments naming an
    /// unknown template are skipped and listed in [`ComplianceModel::problems`].
    pub fn build(input: &ModelInput<'_>) -> ComplianceModel {
        let evaluations: HashMap<&str, &TenantEvaluation> = input
            .evaluations
            .iter()
            .map(|e| (e.tenant.as_str(), e))
            .collect();
        let manual: HashMap<(&InstanceScope, &str), &ManualStatus> = input
            .manual
            .iter()
            .map(|m| ((&m.scope, m.action.as_str()), m))
            .collect();
        let mut instances: BTreeMap<InstanceKey, Instance> = BTreeMap::new();
        let mut resolved = Vec::new();
        let mut problems = Vec::new();
        let mut parents: Vec<(InstanceKey, String)> = Vec::new();

        for assessment in input.assessments {
            let Some(template) = input.templates.get(&assessment.template) else {
                problems.push(ModelProblem {
                    assessment: assessment.id.clone(),
                    message: format!("unknown template \"{}\"", assessment.template),
                });
                continue;
            };
            let evaluation = evaluations.get(assessment.tenant.as_str()).copied();
            let defs: HashMap<&str, &TemplateAction> = template
                .actions
                .iter()
                .map(|a| (a.id.as_str(), a))
                .collect();
            let mut keys_all = BTreeSet::new();
            let mut controls = Vec::with_capacity(template.controls.len());
            for control in &template.controls {
                let mut keys = Vec::new();
                for id in &control.actions {
                    let actions: Vec<TemplateAction> = if is_pattern(id) {
                        let prefix = id.trim_end_matches('*');
                        evaluation
                            .map(|e| {
                                e.actions
                                    .iter()
                                    .filter(|r| r.action_id.starts_with(prefix))
                                    .map(action_from_result)
                                    .collect()
                            })
                            .unwrap_or_default()
                    } else {
                        match defs.get(id.as_str()) {
                            Some(def) => vec![(*def).clone()],
                            // A control naming an action the template does not define: take
                            // the evaluation's result if there is one (catalog action).
                            None => evaluation
                                .and_then(|e| e.actions.iter().find(|r| &r.action_id == id))
                                .map(action_from_result)
                                .into_iter()
                                .collect(),
                        }
                    };
                    for def in actions {
                        let key = InstanceKey {
                            scope: scope_of(&def, assessment),
                            action: def.id.clone(),
                        };
                        let instance = instances.entry(key.clone()).or_insert_with(|| {
                            let record = manual.get(&(&key.scope, def.id.as_str())).copied();
                            if let Some(m) = record
                                && m.testing_source == TestingSource::Parent
                            {
                                parents.push((key.clone(), m.parent.clone().unwrap_or_default()));
                            }
                            new_instance(&key, &def, evaluation, record)
                        });
                        instance.tenants.insert(assessment.tenant.clone());
                        instance.groups.insert(assessment.group.clone());
                        instance.assessments.insert(assessment.id.clone());
                        instance.regulations.insert(template.certification.clone());
                        if !keys.contains(&key) {
                            keys.push(key.clone());
                        }
                        keys_all.insert(key);
                    }
                }
                controls.push((control.clone(), keys));
            }
            resolved.push(ResolvedAssessment {
                assessment: assessment.clone(),
                template_id: template.id.clone(),
                template_title: template.title.clone(),
                certification: template.certification.clone(),
                controls,
                instances: keys_all,
            });
        }

        // Parent-tested instances copy their parent's status (one level: a parent that is
        // itself parent-tested is not followed).
        let parent_keys: BTreeSet<InstanceKey> = parents.iter().map(|(k, _)| k.clone()).collect();
        for (key, parent) in parents {
            let candidates = parent_candidates(&key, &parent, &instances);
            let found = candidates
                .into_iter()
                .find(|k| instances.contains_key(k) && !parent_keys.contains(k));
            let copied = found.and_then(|k| instances.get(&k)).map(|p| {
                (
                    (p.implementation_status, p.test_status, p.credit),
                    format!("copied from {}", p.key.action),
                )
            });
            if let Some(i) = instances.get_mut(&key) {
                let (implementation, test, credit) = copied_status(copied.as_ref().map(|c| c.0));
                i.implementation_status = implementation;
                i.test_status = test;
                i.credit = credit;
                i.reason = Some(copied.map_or_else(
                    || format!("parent action \"{parent}\" is not in this scope"),
                    |c| c.1,
                ));
                set_points(i);
            }
        }

        ComplianceModel {
            instances,
            assessments: resolved,
            problems,
            now: input.now,
        }
    }

    /// Problems met while building (assessments skipped).
    pub fn problems(&self) -> &[ModelProblem] {
        &self.problems
    }

    /// Every instance, in key order.
    pub fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.instances.values()
    }

    /// One instance.
    pub fn instance(&self, key: &InstanceKey) -> Option<&Instance> {
        self.instances.get(key)
    }

    /// Ids of the assessments built, in input order.
    pub fn assessment_ids(&self) -> impl Iterator<Item = &str> {
        self.assessments.iter().map(|a| a.assessment.id.as_str())
    }

    /// Σ achieved / Σ possible over the instances the filter matches, each once.
    pub fn score(&self, filter: &ScoreFilter) -> ScoreSummary {
        summarise(self.instances.values().filter(|i| filter.matches(i)))
    }

    /// The score broken down by a dimension, within a filter, sorted by value. An instance
    /// referenced from several values of a set-valued dimension (regulation, group, assessment,
    /// tenant) counts once in each.
    pub fn scores_by(
        &self,
        dimension: Dimension,
        filter: &ScoreFilter,
    ) -> Vec<(String, ScoreSummary)> {
        let mut by: BTreeMap<&str, Vec<&Instance>> = BTreeMap::new();
        for i in self.instances.values().filter(|i| filter.matches(i)) {
            let values: Vec<&str> = match dimension {
                Dimension::Tenant => i.tenants.iter().map(String::as_str).collect(),
                Dimension::Assessment => i.assessments.iter().map(String::as_str).collect(),
                Dimension::Regulation => i.regulations.iter().map(String::as_str).collect(),
                Dimension::Group => i.groups.iter().map(String::as_str).collect(),
                Dimension::Solution => vec![i.solution.as_str()],
                Dimension::Category => vec![i.category.as_str()],
            };
            for v in values {
                by.entry(v).or_default().push(i);
            }
        }
        by.into_iter()
            .map(|(v, list)| (v.to_string(), summarise(list.into_iter())))
            .collect()
    }

    /// The report of one assessment; `None` when it was not built.
    pub fn report(&self, assessment: &str) -> Option<AssessmentReport> {
        let a = self
            .assessments
            .iter()
            .find(|a| a.assessment.id == assessment)?;
        Some(self.build_report(a))
    }

    /// Reports of every assessment built, in input order.
    pub fn reports(&self) -> Vec<AssessmentReport> {
        self.assessments
            .iter()
            .map(|a| self.build_report(a))
            .collect()
    }

    fn build_report(&self, a: &ResolvedAssessment) -> AssessmentReport {
        let controls: Vec<ControlReport> = a
            .controls
            .iter()
            .map(|(c, keys)| {
                let classes: Vec<_> = keys
                    .iter()
                    .filter_map(|k| self.instances.get(k))
                    .map(|i| classify(i.implementation_status, i.test_status))
                    .collect();
                ControlReport {
                    id: c.id.clone(),
                    family: c.family.clone(),
                    title: c.title.clone(),
                    description: c.description.clone(),
                    status: control_status(&classes),
                    actions: keys.iter().map(|k| k.action.clone()).collect(),
                }
            })
            .collect();
        let statuses: Vec<_> = controls.iter().map(|c| c.status).collect();
        let mut actions: Vec<ActionInstanceReport> = a
            .instances
            .iter()
            .filter_map(|k| self.instances.get(k))
            .map(instance_report)
            .collect();
        actions.sort_by(|x, y| x.id.cmp(&y.id));
        let possible: f64 = actions.iter().map(|a| a.points_possible).sum();
        let automated: f64 = actions
            .iter()
            .filter(|a| a.testing_source == TestingSource::Automatic)
            .map(|a| a.points_possible)
            .sum();
        AssessmentReport {
            id: a.assessment.id.clone(),
            tenant: a.assessment.tenant.clone(),
            group: a.assessment.group.clone(),
            template_id: a.template_id.clone(),
            template_title: a.template_title.clone(),
            certification: a.certification.clone(),
            generated_at: self.now,
            score: self.score(&ScoreFilter {
                assessment: Some(a.assessment.id.clone()),
                ..ScoreFilter::default()
            }),
            status: assessment_status(&statuses),
            progress: progress(&statuses),
            automated_points_ratio: if possible > 0.0 {
                automated / possible
            } else {
                0.0
            },
            controls,
            actions,
        }
    }
}

fn parent_candidates(
    key: &InstanceKey,
    parent: &str,
    instances: &BTreeMap<InstanceKey, Instance>,
) -> Vec<InstanceKey> {
    let mut out = vec![InstanceKey {
        scope: key.scope.clone(),
        action: parent.to_string(),
    }];
    if let (InstanceScope::Group(_), Some(i)) = (&key.scope, instances.get(key))
        && i.tenants.len() == 1
        && let Some(t) = i.tenants.iter().next()
    {
        out.push(InstanceKey {
            scope: InstanceScope::Tenant(t.clone()),
            action: parent.to_string(),
        });
    }
    out
}

fn instance_report(i: &Instance) -> ActionInstanceReport {
    ActionInstanceReport {
        id: i.key.action.clone(),
        title: i.title.clone(),
        implementation_type: i.implementation_type,
        responsibility: i.responsibility,
        testing_source: i.testing_source,
        implementation_status: i.implementation_status,
        test_status: i.test_status,
        points: i.points,
        points_achieved: i.points_achieved,
        points_possible: i.points_possible,
        testing_logic: i.testing_logic.clone(),
        reason: i.reason.clone(),
        assigned_to: i.assigned_to.clone(),
        notes: i.notes.clone(),
        implementation_date: i.implementation_date,
        test_notes: i.test_notes.clone(),
        test_date: i.test_date,
        evidence: i.evidence.clone(),
        guidance: i.guidance.clone(),
        expected_evidence: i.expected_evidence.clone(),
        status_since: i.status_since,
    }
}

fn set_points(i: &mut Instance) {
    (i.credit, i.points_achieved, i.points_possible) =
        points_of(i.points, i.implementation_status, i.test_status, i.credit);
}

/// The status a parent-tested instance takes (source `parent`): its parent's implementation
/// status, test status and credit, or, with no parent instance in scope, not implemented,
/// `could_not_be_detected`, no credit. One body for the model and the scoring plan.
pub(super) fn copied_status(
    parent: Option<(ImplementationStatus, TestStatus, f64)>,
) -> (ImplementationStatus, TestStatus, f64) {
    parent.unwrap_or((
        ImplementationStatus::NotImplemented,
        TestStatus::CouldNotBeDetected,
        0.0,
    ))
}

/// (credit, points achieved, points possible) of an instance worth `points` with the given
/// statuses and credit: out of scope (either status) weighs and earns nothing, else
/// `points x credit` of `points`.
pub(super) fn points_of(
    points: u32,
    implementation: ImplementationStatus,
    test: TestStatus,
    credit: f64,
) -> (f64, f64, f64) {
    if test == TestStatus::OutOfScope || implementation == ImplementationStatus::OutOfScope {
        (0.0, 0.0, 0.0)
    } else {
        (credit, f64::from(points) * credit, f64::from(points))
    }
}

fn new_instance(
    key: &InstanceKey,
    def: &TemplateAction,
    evaluation: Option<&TenantEvaluation>,
    record: Option<&ManualStatus>,
) -> Instance {
    let kind = ActionKind::of(def);
    let result = if kind.rule_decides() {
        evaluation.and_then(|e| e.actions.iter().find(|r| r.action_id == def.id))
    } else {
        None
    };
    let status = resolve(kind, result, evaluation.is_some(), record);
    Instance {
        key: key.clone(),
        title: def.title.clone(),
        category: status.category.to_owned(),
        solution: status.solution.to_owned(),
        implementation_type: def.implementation_type,
        responsibility: def.responsibility,
        testing_source: status.source,
        implementation_status: status.implementation,
        test_status: status.test,
        credit: status.credit,
        points: status.points,
        points_achieved: status.points_achieved,
        points_possible: status.points_possible,
        testing_logic: status.testing_logic.to_owned(),
        reason: status.reason.map(Cow::into_owned),
        assigned_to: record.and_then(|m| m.assigned_to.clone()),
        notes: record.and_then(|m| m.notes.clone()),
        implementation_date: record.and_then(|m| m.implementation_date),
        test_notes: record.and_then(|m| m.test_notes.clone()),
        test_date: record.and_then(|m| m.test_date),
        evidence: record.map(|m| m.evidence.clone()).unwrap_or_default(),
        guidance: def.guidance.clone(),
        expected_evidence: def.evidence.clone(),
        status_since: record
            .filter(|m| m.testing_source != TestingSource::Automatic)
            .map(|m| m.updated_at),
        tenants: BTreeSet::new(),
        groups: BTreeSet::new(),
        assessments: BTreeSet::new(),
        regulations: BTreeSet::new(),
    }
}

/// Σ achieved / Σ possible; ratio 0 when nothing is possible.
fn summarise<'a>(instances: impl Iterator<Item = &'a Instance>) -> ScoreSummary {
    let (achieved, possible) = instances.fold((0.0, 0.0), |(a, p), i| {
        (a + i.points_achieved, p + i.points_possible)
    });
    score_of(achieved, possible)
}

/// The summary of sums already taken (in instance order: floating-point sums depend on it).
pub(super) fn score_of(achieved: f64, possible: f64) -> ScoreSummary {
    ScoreSummary {
        points_achieved: achieved,
        points_possible: possible,
        ratio: if possible > 0.0 {
            (achieved / possible).clamp(0.0, 1.0)
        } else {
            0.0
        },
    }
}

/// The templates an assessment set uses, for callers that need them (reports, exporters).
pub fn templates_used<'a>(
    registry: &'a TemplateRegistry,
    assessments: &[Assessment],
) -> Vec<&'a Template> {
    let ids: BTreeSet<&str> = assessments.iter().map(|a| a.template.as_str()).collect();
    ids.into_iter().filter_map(|id| registry.get(id)).collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::report::{AssessmentStatus, ControlStatus};
    use crate::model::template::TemplateControl;

    const EPS: f64 = 1e-9;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
            .single()
            .expect("valid")
    }

    fn result(id: &str, points: u32, test: TestStatus, credit: f64) -> ActionResult {
        let oos = test == TestStatus::OutOfScope;
        ActionResult {
            action_id: id.to_string(),
            title: id.into(),
            category: "Identity".into(),
            solution: "Microsoft Entra ID".into(),
            implementation_status: crate::evaluation::evaluator::implementation_status(test, false),
            test_status: test,
            credit,
            points,
            points_achieved: if oos { 0.0 } else { f64::from(points) * credit },
            points_possible: if oos { 0.0 } else { f64::from(points) },
            testing_logic: "rule".into(),
            reason: None,
            cause: None,
            signals: Vec::new(),
        }
    }

    fn evaluation(tenant: &str, actions: Vec<ActionResult>) -> TenantEvaluation {
        let score = summarise_results(&actions);
        TenantEvaluation {
            tenant: tenant.to_string(),
            evaluated_at: now(),
            actions,
            score,
            categories: Vec::new(),
        }
    }

    fn summarise_results(actions: &[ActionResult]) -> ScoreSummary {
        crate::evaluation::evaluator::summarise(actions.iter())
    }

    fn action(id: &str, kind: ImplementationType, points: u32) -> TemplateAction {
        TemplateAction {
            id: id.to_string(),
            title: id.to_string(),
            implementation_type: kind,
            points,
            responsibility: Responsibility::Customer,
            description_title: String::new(),
            description: String::new(),
            guidance: String::new(),
            evidence: String::new(),
        }
    }

    /// A template with one control per action.
    fn template(id: &str, certification: &str, actions: Vec<TemplateAction>) -> Template {
        Template {
            id: id.to_string(),
            title: id.to_string(),
            product: String::new(),
            certification: certification.to_string(),
            in_scope_services: Vec::new(),
            controls: actions
                .iter()
                .map(|a| TemplateControl {
                    id: format!("C-{}", a.id),
                    family: "F".to_string(),
                    title: a.id.clone(),
                    description: String::new(),
                    actions: vec![a.id.clone()],
                })
                .collect(),
            actions,
        }
    }

    fn registry(templates: Vec<Template>) -> TemplateRegistry {
        let mut r = TemplateRegistry::new();
        for t in templates {
            r.insert(t).unwrap_or_else(|e| panic!("{e:#?}"));
        }
        r
    }

    fn assessment(id: &str, tenant: &str, template: &str, group: &str) -> Assessment {
        Assessment {
            id: id.to_string(),
            tenant: tenant.to_string(),
            template: template.to_string(),
            group: group.to_string(),
        }
    }

    fn manual(scope: InstanceScope, action: &str, test: TestStatus) -> ManualStatus {
        let mut m = ManualStatus::new(scope, action, TestingSource::Manual, now());
        m.test_status = Some(test);
        m
    }

    fn build(
        templates: &TemplateRegistry,
        assessments: &[Assessment],
        evaluations: &[TenantEvaluation],
        manual: &[ManualStatus],
    ) -> ComplianceModel {
        ComplianceModel::build(&ModelInput {
            templates,
            assessments,
            evaluations,
            manual,
            now: now(),
        })
    }

    fn assert_score(s: ScoreSummary, achieved: f64, possible: f64) {
        assert!(
            (s.points_achieved - achieved).abs() < EPS
                && (s.points_possible - possible).abs() < EPS,
            "got {}/{}, want {achieved}/{possible}",
            s.points_achieved,
            s.points_possible
        );
    }

    fn only(assessment: &str) -> ScoreFilter {
        ScoreFilter {
            assessment: Some(assessment.to_string()),
            ..ScoreFilter::default()
        }
    }

    #[test]
    fn golden_vector_1_technical_action_counts_once_per_tenant() {
        let t = ImplementationType::Technical;
        let reg = registry(vec![
            template("iso", "ISO/IEC 27001:2022", vec![action("mfa", t, 27)]),
            template("nist", "NIST SP 800-53 Rev. 5", vec![action("mfa", t, 27)]),
        ]);
        let assessments = [
            assessment("a1", "contoso", "iso", "g"),
            assessment("a2", "contoso", "nist", "g"),
        ];
        let evals = [evaluation(
            "contoso",
            vec![result("mfa", 27, TestStatus::Passed, 1.0)],
        )];
        let m = build(&reg, &assessments, &evals, &[]);
        assert_eq!(m.instances().count(), 1);
        assert_score(m.score(&ScoreFilter::default()), 27.0, 27.0);
        assert_score(m.score(&only("a1")), 27.0, 27.0);
        assert_score(m.score(&only("a2")), 27.0, 27.0);
        let reports = m.reports();
        assert_eq!(reports.len(), 2);
        for r in &reports {
            assert_score(r.score, 27.0, 27.0);
            assert_eq!(r.status, AssessmentStatus::Complete);
            assert!((r.progress - 1.0).abs() < EPS);
            assert_eq!(r.actions[0].testing_source, TestingSource::Automatic);
        }
    }

    /// A template action's guidance and expected evidence reach the action in the assessment
    /// report.
    #[test]
    fn reports_carry_the_action_guidance_and_expected_evidence() {
        let mut policy = action("policy", ImplementationType::Documentation, 27);
        policy.guidance = "Approve it yearly.".into();
        policy.evidence = "The signed policy.".into();
        let reg = registry(vec![template("iso", "ISO/IEC 27001:2022", vec![policy])]);
        let m = build(&reg, &[assessment("a1", "contoso", "iso", "g1")], &[], &[]);
        let report = &m.reports()[0];
        assert_eq!(report.actions[0].guidance, "Approve it yearly.");
        assert_eq!(report.actions[0].expected_evidence, "The signed policy.");
    }

    #[test]
    fn golden_vector_2_non_technical_action_counts_once_per_group() {
        let d = ImplementationType::Documentation;
        let reg = registry(vec![template(
            "iso",
            "ISO/IEC 27001:2022",
            vec![action("policy", d, 3)],
        )]);
        let assessments = [
            assessment("a1", "contoso", "iso", "g1"),
            assessment("a2", "fabrikam", "iso", "g2"),
        ];
        let records = [manual(
            InstanceScope::Group("g1".into()),
            "policy",
            TestStatus::Passed,
        )];
        let m = build(&reg, &assessments, &[], &records);
        assert_eq!(m.instances().count(), 2);
        assert_score(m.score(&ScoreFilter::default()), 3.0, 6.0);
        let by_group = m.scores_by(Dimension::Group, &ScoreFilter::default());
        assert_eq!(by_group.len(), 2);
        assert_score(by_group[0].1, 3.0, 3.0);
        assert_score(by_group[1].1, 0.0, 3.0);
    }

    #[test]
    fn non_technical_action_is_shared_within_a_group() {
        let d = ImplementationType::Documentation;
        let reg = registry(vec![template("iso", "ISO", vec![action("policy", d, 3)])]);
        let assessments = [
            assessment("a1", "contoso", "iso", "g"),
            assessment("a2", "fabrikam", "iso", "g"),
        ];
        let records = [manual(
            InstanceScope::Group("g".into()),
            "policy",
            TestStatus::Passed,
        )];
        let m = build(&reg, &assessments, &[], &records);
        assert_eq!(m.instances().count(), 1);
        assert_score(m.score(&ScoreFilter::default()), 3.0, 3.0);
        assert_score(m.score(&only("a2")), 3.0, 3.0);
        let tenants = m.scores_by(Dimension::Tenant, &ScoreFilter::default());
        assert_eq!(tenants.len(), 2);
    }

    #[test]
    fn golden_vector_3_partial_credit_at_model_level() {
        let reg = registry(vec![template(
            "dpb",
            "DPB",
            vec![action(
                "msgraph.mfa.all_users",
                ImplementationType::Technical,
                27,
            )],
        )]);
        let assessments = [assessment("a", "t", "dpb", "g")];
        let evals = [evaluation(
            "t",
            vec![result(
                "msgraph.mfa.all_users",
                27,
                TestStatus::PartiallyTested,
                0.8,
            )],
        )];
        let m = build(&reg, &assessments, &evals, &[]);
        assert_score(m.score(&ScoreFilter::default()), 21.6, 27.0);
        let r = m.report("a").expect("report");
        assert_eq!(r.actions[0].test_status, TestStatus::PartiallyTested);
        assert_eq!(r.controls[0].status, ControlStatus::InProgress);
    }

    #[test]
    fn golden_vector_4_out_of_scope_leaves_the_denominator_at_model_level() {
        let t = ImplementationType::Technical;
        let reg = registry(vec![template(
            "dpb",
            "DPB",
            vec![action("oos", t, 9), action("failed", t, 27)],
        )]);
        let assessments = [assessment("a", "t", "dpb", "g")];
        let evals = [evaluation(
            "t",
            vec![
                result("oos", 9, TestStatus::OutOfScope, 0.0),
                result("failed", 27, TestStatus::FailedHighRisk, 0.0),
            ],
        )];
        let m = build(&reg, &assessments, &evals, &[]);
        assert_score(m.score(&ScoreFilter::default()), 0.0, 27.0);
        let r = m.report("a").expect("report");
        assert_eq!(r.status, AssessmentStatus::Incomplete);
        let statuses: Vec<_> = r.controls.iter().map(|c| c.status).collect();
        assert_eq!(
            statuses,
            vec![ControlStatus::OutOfScope, ControlStatus::Failed]
        );
        assert!(r.progress.abs() < EPS);
    }

    #[test]
    fn manual_override_wins_until_switched_back() {
        let reg = registry(vec![template(
            "dpb",
            "DPB",
            vec![action("mfa", ImplementationType::Technical, 27)],
        )]);
        let assessments = [assessment("a", "t", "dpb", "g")];
        let evals = [evaluation(
            "t",
            vec![result("mfa", 27, TestStatus::FailedHighRisk, 0.0)],
        )];
        let mut record = manual(InstanceScope::Tenant("t".into()), "mfa", TestStatus::Passed);
        record.assigned_to = Some("alice".into());
        record.test_notes = Some("checked the policy".into());
        record.test_date = Some(now());
        record.implementation_date = Some(now() - chrono::Duration::days(3));
        let m = build(&reg, &assessments, &evals, std::slice::from_ref(&record));
        let i = m.instances().next().expect("instance");
        // The workflow fields reach the instance and the report's action instance.
        assert_eq!(i.test_notes.as_deref(), Some("checked the policy"));
        assert_eq!(i.test_date, Some(now()));
        let report = m.report("a").expect("report");
        let json = serde_json::to_value(&report.actions[0]).expect("json");
        assert_eq!(json["test_notes"], "checked the policy");
        assert_eq!(
            json["implementation_date"],
            serde_json::to_value(record.implementation_date).expect("date")
        );
        assert_eq!(i.testing_source, TestingSource::Manual);
        assert_eq!(i.test_status, TestStatus::Passed);
        assert_eq!(i.implementation_status, ImplementationStatus::Implemented);
        assert_score(m.score(&ScoreFilter::default()), 27.0, 27.0);

        record.testing_source = TestingSource::Automatic;
        let m = build(&reg, &assessments, &evals, &[record]);
        let i = m.instances().next().expect("instance");
        assert_eq!(i.testing_source, TestingSource::Automatic);
        assert_eq!(i.test_status, TestStatus::FailedHighRisk);
        assert_eq!(i.assigned_to.as_deref(), Some("alice"));
        assert_score(m.score(&ScoreFilter::default()), 0.0, 27.0);
    }

    #[test]
    fn statuses_without_records_or_evaluations() {
        let mut provider = action("ms.physical", ImplementationType::Operational, 9);
        provider.responsibility = Responsibility::Provider;
        let reg = registry(vec![template(
            "x",
            "X",
            vec![
                action("mfa", ImplementationType::Technical, 27),
                action("policy", ImplementationType::Documentation, 3),
                provider,
            ],
        )]);
        let assessments = [
            assessment("a1", "t", "x", "g1"),
            assessment("a2", "t", "x", "g2"),
        ];
        // Not evaluated yet: technical -> to_be_detected; documentation -> none (once per
        // group); provider-managed -> passed, once per tenant.
        let m = build(&reg, &assessments, &[], &[]);
        let find = |action: &str| {
            m.instances()
                .filter(|i| i.key.action == action)
                .collect::<Vec<_>>()
        };
        assert_eq!(find("mfa")[0].test_status, TestStatus::ToBeDetected);
        assert_eq!(find("policy").len(), 2);
        assert_eq!(find("policy")[0].test_status, TestStatus::None);
        assert_eq!(find("policy")[0].testing_source, TestingSource::Manual);
        let p = find("ms.physical");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].test_status, TestStatus::Passed);
        assert_eq!(p[0].key.scope, InstanceScope::Tenant("t".into()));
        // 9 (provider) of 27 + 3 + 3 + 9.
        assert_score(m.score(&ScoreFilter::default()), 9.0, 42.0);
    }

    #[test]
    fn filters_combine() {
        let t = ImplementationType::Technical;
        let d = ImplementationType::Documentation;
        let reg = registry(vec![
            template(
                "iso",
                "ISO",
                vec![action("mfa", t, 27), action("policy", d, 3)],
            ),
            template("gdpr", "GDPR", vec![action("labels", t, 9)]),
        ]);
        let assessments = [
            assessment("a1", "t", "iso", "g"),
            assessment("a2", "t", "gdpr", "g"),
        ];
        let evals = [evaluation(
            "t",
            vec![
                result("mfa", 27, TestStatus::Passed, 1.0),
                result("labels", 9, TestStatus::FailedLowRisk, 0.0),
            ],
        )];
        let records = [manual(
            InstanceScope::Group("g".into()),
            "policy",
            TestStatus::Passed,
        )];
        let m = build(&reg, &assessments, &evals, &records);
        let f = |f: ScoreFilter| m.score(&f);
        let s = |v: &str| Some(v.to_string());
        let cases = [
            (ScoreFilter::default(), 30.0, 39.0),
            (
                ScoreFilter {
                    regulation: s("ISO"),
                    ..Default::default()
                },
                30.0,
                30.0,
            ),
            (
                ScoreFilter {
                    regulation: s("GDPR"),
                    ..Default::default()
                },
                0.0,
                9.0,
            ),
            (
                ScoreFilter {
                    category: s("Documentation"),
                    ..Default::default()
                },
                3.0,
                3.0,
            ),
            (
                ScoreFilter {
                    solution: s("Microsoft Entra ID"),
                    ..Default::default()
                },
                27.0,
                36.0,
            ),
            (
                ScoreFilter {
                    testing_source: Some(TestingSource::Manual),
                    ..Default::default()
                },
                3.0,
                3.0,
            ),
            (
                ScoreFilter {
                    test_status: Some(TestStatus::FailedLowRisk),
                    ..Default::default()
                },
                0.0,
                9.0,
            ),
            (
                ScoreFilter {
                    regulation: s("ISO"),
                    testing_source: Some(TestingSource::Automatic),
                    ..Default::default()
                },
                27.0,
                27.0,
            ),
            (
                ScoreFilter {
                    group: s("g"),
                    tenant: s("t"),
                    ..Default::default()
                },
                30.0,
                39.0,
            ),
            (
                ScoreFilter {
                    group: s("other"),
                    ..Default::default()
                },
                0.0,
                0.0,
            ),
        ];
        for (filter, achieved, possible) in cases {
            let got = f(filter.clone());
            assert!(
                (got.points_achieved - achieved).abs() < EPS
                    && (got.points_possible - possible).abs() < EPS,
                "{filter:?}: got {}/{}",
                got.points_achieved,
                got.points_possible
            );
        }
        let regs = m.scores_by(Dimension::Regulation, &ScoreFilter::default());
        assert_eq!(
            regs.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>(),
            ["GDPR", "ISO"]
        );
    }

    #[test]
    fn adding_an_assessment_grows_the_denominator() {
        let t = ImplementationType::Technical;
        let d = ImplementationType::Documentation;
        let reg = registry(vec![
            template("dpb", "DPB", vec![action("mfa", t, 27)]),
            template(
                "iso",
                "ISO",
                vec![action("mfa", t, 27), action("policy", d, 3)],
            ),
        ]);
        let evals = [evaluation(
            "t",
            vec![result("mfa", 27, TestStatus::Passed, 1.0)],
        )];
        let one = [assessment("a1", "t", "dpb", "g")];
        assert_score(
            build(&reg, &one, &evals, &[]).score(&ScoreFilter::default()),
            27.0,
            27.0,
        );
        let two = [one[0].clone(), assessment("a2", "t", "iso", "g")];
        assert_score(
            build(&reg, &two, &evals, &[]).score(&ScoreFilter::default()),
            27.0,
            30.0,
        );
    }

    #[test]
    fn wildcard_takes_generated_actions_and_unknown_template_is_a_problem() {
        let mut tpl = template(
            "dpb",
            "DPB",
            vec![action("mfa", ImplementationType::Technical, 27)],
        );
        tpl.controls.push(TemplateControl {
            id: "SS".into(),
            family: "F".into(),
            title: "Secure Score".into(),
            description: String::new(),
            actions: vec!["securescore.*".into()],
        });
        let reg = registry(vec![tpl]);
        let assessments = [
            assessment("a", "t", "dpb", "g"),
            assessment("b", "t", "nope", "g"),
        ];
        let evals = [evaluation(
            "t",
            vec![
                result("mfa", 27, TestStatus::Passed, 1.0),
                result("securescore.X", 5, TestStatus::PartiallyTested, 0.4),
            ],
        )];
        let m = build(&reg, &assessments, &evals, &[]);
        // The default assessment reproduces the tenant's evaluation score exactly.
        assert_eq!(m.score(&ScoreFilter::default()), evals[0].score);
        assert_eq!(m.problems().len(), 1);
        assert_eq!(m.problems()[0].assessment, "b");
        let r = m.report("a").expect("report");
        assert_eq!(r.controls[1].actions, vec!["securescore.X".to_string()]);
    }

    #[test]
    fn parent_testing_source_copies_the_parent_status() {
        let reg = registry(vec![template(
            "x",
            "X",
            vec![
                action("mfa", ImplementationType::Technical, 27),
                action("mfa.procedure", ImplementationType::Operational, 3),
            ],
        )]);
        let assessments = [assessment("a", "t", "x", "g")];
        let evals = [evaluation(
            "t",
            vec![result("mfa", 27, TestStatus::Passed, 1.0)],
        )];
        let mut record = ManualStatus::new(
            InstanceScope::Group("g".into()),
            "mfa.procedure",
            TestingSource::Parent,
            now(),
        );
        record.parent = Some("mfa".into());
        let m = build(&reg, &assessments, &evals, &[record]);
        assert_score(m.score(&ScoreFilter::default()), 30.0, 30.0);
        let i = m
            .instances()
            .find(|i| i.key.action == "mfa.procedure")
            .expect("instance");
        assert_eq!(i.testing_source, TestingSource::Parent);
        assert_eq!(i.test_status, TestStatus::Passed);
    }
}
