//! The scores a poll needs of one tenant's assessments, without building the model: the tenant
//! score, its per-category breakdown, and per assessment its score, rollup status, progress,
//! automated points ratio and control counts per rollup status ([`AssessmentSummary`]).
//!
//! [`ScoringPlan::new`] resolves a tenant's assessments against their templates once (the
//! de-duplicated instance keys, in key order, each with the assessments that reference it, and
//! per control its instances); it depends only on the templates and on each assessment's
//! template and group, so every tenant whose assessments have the same templates and groups
//! shares one plan. [`ScoringPlan::scores`] then decides each instance's status (the one body,
//! `scoring::resolve`) from the tenant's rule results and manual records, and sums.
//!
//! The figures equal those of [`ComplianceModel`](super::ComplianceModel) over the same inputs,
//! to the bit: instances are summed in the model's key order (tenant-scoped instances by
//! action id, then group-scoped ones by group and action id); a `parent` manual record copies
//! its parent's status as the model does (one level; the same scope first, then, for a
//! group-scoped instance, the tenant's); rule results out of order are sorted first (the first
//! of a repeated id kept, as the model finds it); any number of assessments. Where the plan
//! cannot promise equality it answers a [`PlanFallback`] and the caller builds the model: a
//! wildcard or catalog reference landing on a provider-managed action of another template
//! ([`PlanFallback::SharedProviderAction`]), or two assessments with one id
//! ([`PlanFallback::DuplicateAssessmentId`], which a validated configuration rules out).
//! Pure: no IO, no clock.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::assessment::{Assessment, InstanceScope, ManualStatus};
use super::registry::TemplateRegistry;
use super::report::{AssessmentReport, AssessmentStatus, ControlStatus, TestingSource};
use super::rollup::{ActionClass, assessment_status, classify, control_status, progress};
use super::scoring::{ActionKind, Resolved, copied_status, points_of, resolve, score_of};
use super::template::{ImplementationType, Responsibility, TemplateAction, is_pattern};
use crate::evaluation::{ActionResult, ScoreSummary};

/// Control rollup statuses in the order of [`AssessmentSummary::controls`].
pub const CONTROL_STATUS_ORDER: [ControlStatus; 5] = [
    ControlStatus::Passed,
    ControlStatus::Failed,
    ControlStatus::None,
    ControlStatus::OutOfScope,
    ControlStatus::InProgress,
];

/// What a poll keeps of one assessment: the figures of its [`AssessmentReport`] without the
/// texts.
#[derive(Debug, Clone, PartialEq)]
pub struct AssessmentSummary {
    /// Assessment id.
    pub id: String,
    /// Score over the assessment's instances, each once.
    pub score: ScoreSummary,
    /// Rollup of its controls' statuses.
    pub status: AssessmentStatus,
    /// Share of controls passed (out-of-scope controls excluded), in [0, 1].
    pub progress: f64,
    /// Share of the possible points tested automatically, in [0, 1].
    pub automated_points_ratio: f64,
    /// How many controls have each rollup status, in the order of [`CONTROL_STATUS_ORDER`].
    pub controls: [usize; 5],
}

impl AssessmentSummary {
    /// The summary of a full report.
    pub fn of(report: &AssessmentReport) -> AssessmentSummary {
        AssessmentSummary {
            id: report.id.clone(),
            score: report.score,
            status: report.status,
            progress: report.progress,
            automated_points_ratio: report.automated_points_ratio,
            controls: control_counts(report.controls.iter().map(|c| c.status)),
        }
    }

    /// How many controls have `status`.
    pub fn controls_with(&self, status: ControlStatus) -> usize {
        CONTROL_STATUS_ORDER
            .iter()
            .position(|s| *s == status)
            .map_or(0, |i| self.controls[i])
    }
}

fn control_counts(statuses: impl Iterator<Item = ControlStatus>) -> [usize; 5] {
    let mut counts = [0usize; 5];
    for status in statuses {
        if let Some(i) = CONTROL_STATUS_ORDER.iter().position(|s| *s == status) {
            counts[i] += 1;
        }
    }
    counts
}

/// The tenant's scores over its assessments ([`ScoringPlan::scores`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TenantScores {
    /// Σ achieved / Σ possible over every instance of the tenant's assessments, each once.
    pub score: ScoreSummary,
    /// The same per category, sorted by category.
    pub categories: Vec<(String, ScoreSummary)>,
    /// Per assessment built (those naming an unknown template are left out), in input order.
    pub assessments: Vec<AssessmentSummary>,
}

/// Why [`ScoringPlan::scores`] left a tenant to the model (the `reason` label of
/// `postured_scoring_plan_fallbacks_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanFallback {
    /// A wildcard, or an id its template does not define, reaches a rule result whose id is a
    /// provider-managed (or non-technical) action of another of the tenant's templates: which
    /// definition the model keeps depends on the order it meets them.
    SharedProviderAction,
    /// Two of the tenant's assessments have one id (the model scores them as one).
    DuplicateAssessmentId,
}

impl PlanFallback {
    /// Every reason, in the order of the metric's series.
    pub const ALL: [PlanFallback; 2] = [
        PlanFallback::SharedProviderAction,
        PlanFallback::DuplicateAssessmentId,
    ];

    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            PlanFallback::SharedProviderAction => "shared_provider_action",
            PlanFallback::DuplicateAssessmentId => "duplicate_assessment_id",
        }
    }
}

/// Manual status records indexed by scope and action (built once per set of records; the
/// last record of a repeated scope and action wins, as in the model).
#[derive(Debug, Default)]
pub struct ManualIndex {
    records: Arc<Vec<ManualStatus>>,
    tenants: HashMap<String, HashMap<String, usize>>,
    groups: HashMap<String, HashMap<String, usize>>,
}

impl ManualIndex {
    /// Index `records`.
    pub fn new(records: Arc<Vec<ManualStatus>>) -> ManualIndex {
        let mut tenants: HashMap<String, HashMap<String, usize>> = HashMap::new();
        let mut groups: HashMap<String, HashMap<String, usize>> = HashMap::new();
        for (i, m) in records.iter().enumerate() {
            let (map, scope) = match &m.scope {
                InstanceScope::Tenant(t) => (&mut tenants, t),
                InstanceScope::Group(g) => (&mut groups, g),
            };
            map.entry(scope.clone())
                .or_default()
                .insert(m.action.clone(), i);
        }
        ManualIndex {
            records,
            tenants,
            groups,
        }
    }

    /// The records, in their original order.
    pub fn records(&self) -> &Arc<Vec<ManualStatus>> {
        &self.records
    }

    fn scope(&self, per_tenant: bool, id: &str) -> Option<&HashMap<String, usize>> {
        if per_tenant {
            self.tenants.get(id)
        } else {
            self.groups.get(id)
        }
    }
}

/// One de-duplicated instance of the plan (a template action).
#[derive(Debug)]
struct Slot {
    action: String,
    /// `None`: keyed by the tenant; else by `ScoringPlan::groups[i]`.
    group: Option<usize>,
    kind: ActionKind,
}

/// A control reference resolved per tenant (from its rule results).
#[derive(Debug)]
enum Reference {
    /// A wildcard: every result whose id starts with the prefix.
    Prefix(String),
    /// An id the template does not define: the result of that id, if any.
    Exact(String),
}

#[derive(Debug, Default)]
struct PlannedControl {
    /// Indices into `ScoringPlan::slots`, each once.
    slots: Vec<usize>,
    references: Vec<Reference>,
}

#[derive(Debug)]
struct PlannedAssessment {
    /// Position in the assessment list the plan was built from.
    position: usize,
    controls: Vec<PlannedControl>,
}

/// A tenant's assessments resolved against their templates ([`ScoringPlan::new`]), shared by
/// every tenant whose assessments name the same templates and groups in the same order.
#[derive(Debug)]
pub struct ScoringPlan {
    /// In instance key order.
    slots: Vec<Slot>,
    /// How many of `slots` (the first ones) are keyed by the tenant.
    tenant_slots: usize,
    /// Tenant-keyed slots by action id.
    by_action: HashMap<String, usize>,
    groups: Vec<String>,
    /// The assessments built, in input order.
    assessments: Vec<PlannedAssessment>,
    /// Words of a member set: `ceil(assessments / 64)`, at least 1.
    words: usize,
    /// Per slot (in slot order), `words` words: bit `i` set when the plan's assessment `i`
    /// references it.
    members: Vec<u64>,
    /// (position, message) of the assessments skipped.
    problems: Vec<(usize, String)>,
}

impl ScoringPlan {
    /// Resolve one tenant's `assessments` (their templates and groups; the tenant is not
    /// read) against `templates`, in the model's order. An assessment naming an unknown
    /// template is skipped ([`ScoringPlan::problems`]).
    pub fn new(templates: &TemplateRegistry, assessments: &[&Assessment]) -> ScoringPlan {
        let mut slots: Vec<Slot> = Vec::new();
        // Per slot, the plan's assessments that reference it.
        let mut slot_members: Vec<Vec<usize>> = Vec::new();
        let mut keys: HashMap<(Option<usize>, &str), usize> = HashMap::new();
        let mut groups: Vec<String> = Vec::new();
        let mut planned = Vec::new();
        let mut problems = Vec::new();
        for (position, assessment) in assessments.iter().enumerate() {
            let Some(template) = templates.get(&assessment.template) else {
                problems.push((
                    position,
                    format!("unknown template \"{}\"", assessment.template),
                ));
                continue;
            };
            let member = planned.len();
            let defs: HashMap<&str, &TemplateAction> = template
                .actions
                .iter()
                .map(|a| (a.id.as_str(), a))
                .collect();
            let mut controls = Vec::with_capacity(template.controls.len());
            for control in &template.controls {
                let mut c = PlannedControl::default();
                for id in &control.actions {
                    if is_pattern(id) {
                        c.references
                            .push(Reference::Prefix(id.trim_end_matches('*').to_owned()));
                        continue;
                    }
                    let Some(def) = defs.get(id.as_str()) else {
                        c.references.push(Reference::Exact(id.clone()));
                        continue;
                    };
                    let kind = ActionKind::of(def);
                    let group = (!kind.per_tenant()).then(|| {
                        groups
                            .iter()
                            .position(|g| *g == assessment.group)
                            .unwrap_or_else(|| {
                                groups.push(assessment.group.clone());
                                groups.len() - 1
                            })
                    });
                    // The first definition of a key wins, as in the model.
                    let slot = *keys.entry((group, def.id.as_str())).or_insert_with(|| {
                        slots.push(Slot {
                            action: def.id.clone(),
                            group,
                            kind,
                        });
                        slot_members.push(Vec::new());
                        slots.len() - 1
                    });
                    if slot_members[slot].last() != Some(&member) {
                        slot_members[slot].push(member);
                    }
                    if !c.slots.contains(&slot) {
                        c.slots.push(slot);
                    }
                }
                controls.push(c);
            }
            planned.push(PlannedAssessment { position, controls });
        }
        drop(keys);
        // Key order: tenant-scoped (`InstanceScope::Tenant` sorts first) by action, then by
        // group and action.
        let mut order: Vec<usize> = (0..slots.len()).collect();
        order.sort_by(|&a, &b| {
            let (x, y) = (&slots[a], &slots[b]);
            let group = |s: &Slot| s.group.map(|g| &groups[g]);
            (group(x), &x.action).cmp(&(group(y), &y.action))
        });
        let mut new_index = vec![0usize; slots.len()];
        for (new, &old) in order.iter().enumerate() {
            new_index[old] = new;
        }
        let mut taken: Vec<Option<Slot>> = slots.into_iter().map(Some).collect();
        let slots: Vec<Slot> = order.iter().filter_map(|&old| taken[old].take()).collect();
        for a in &mut planned {
            for c in &mut a.controls {
                for s in &mut c.slots {
                    *s = new_index[*s];
                }
            }
        }
        let tenant_slots = slots.iter().take_while(|s| s.group.is_none()).count();
        let by_action = slots[..tenant_slots]
            .iter()
            .enumerate()
            .map(|(i, s)| (s.action.clone(), i))
            .collect();
        let words = planned.len().div_ceil(64).max(1);
        let mut members = vec![0u64; slots.len() * words];
        for (new, &old) in order.iter().enumerate() {
            for &m in &slot_members[old] {
                members[new * words + m / 64] |= 1 << (m % 64);
            }
        }
        ScoringPlan {
            slots,
            tenant_slots,
            by_action,
            groups,
            assessments: planned,
            words,
            members,
            problems,
        }
    }

    /// The assessments skipped, as (position in the list the plan was built from, message).
    pub fn problems(&self) -> &[(usize, String)] {
        &self.problems
    }

    /// The scores of `tenant`, whose assessments are `assessments` (the list the plan was
    /// built from, or one of the same templates and groups; all `tenant`'s), over its rule
    /// results `actions` (any order; the evaluator gives them sorted by id, which saves a
    /// sorted copy) and the manual records.
    ///
    /// # Errors
    ///
    /// A [`PlanFallback`] when only the model can answer exactly (see the module docs).
    pub fn scores(
        &self,
        tenant: &str,
        assessments: &[&Assessment],
        actions: &[ActionResult],
        manual: &ManualIndex,
    ) -> Result<TenantScores, PlanFallback> {
        let mut ids: Vec<&str> = self
            .assessments
            .iter()
            .map(|a| assessments[a.position].id.as_str())
            .collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(PlanFallback::DuplicateAssessmentId);
        }
        if actions.windows(2).all(|w| w[0].action_id < w[1].action_id) {
            return self.scores_sorted(tenant, assessments, actions, manual);
        }
        // The model takes the first result of a repeated id: a stable sort keeps it first.
        let mut sorted = actions.to_vec();
        sorted.sort_by(|a, b| a.action_id.cmp(&b.action_id));
        sorted.dedup_by(|later, earlier| later.action_id == earlier.action_id);
        self.scores_sorted(tenant, assessments, &sorted, manual)
    }

    /// [`ScoringPlan::scores`] over results strictly sorted by id.
    fn scores_sorted(
        &self,
        tenant: &str,
        assessments: &[&Assessment],
        actions: &[ActionResult],
        manual: &ManualIndex,
    ) -> Result<TenantScores, PlanFallback> {
        let words = self.words;
        let result = |id: &str| {
            let i = actions.partition_point(|r| r.action_id.as_str() < id);
            actions.get(i).filter(|r| r.action_id == id)
        };
        let tenant_records = manual.scope(true, tenant);
        let group_records: Vec<Option<&HashMap<String, usize>>> =
            self.groups.iter().map(|g| manual.scope(false, g)).collect();
        let record = |group: Option<usize>, action: &str| -> Option<&ManualStatus> {
            let records = match group {
                None => tenant_records,
                Some(g) => group_records[g],
            };
            records
                .and_then(|m| m.get(action))
                .map(|&i| &manual.records[i])
        };
        // Parent-tested instances with their parent's action id.
        let mut parents: Vec<(Instance, &str)> = Vec::new();

        let mut statuses: Vec<Resolved<'_>> = Vec::with_capacity(self.slots.len());
        for (i, slot) in self.slots.iter().enumerate() {
            let r = if slot.kind.rule_decides() {
                result(&slot.action)
            } else {
                None
            };
            let m = noting_parent(
                Instance::Slot(i),
                record(slot.group, &slot.action),
                &mut parents,
            );
            statuses.push(resolve(slot.kind, r, true, m));
        }
        let mut members = self.members.clone();

        // The rule results the controls reach by wildcard or by an id the template does not
        // define: instances keyed by the tenant, unless the key is a slot's already.
        let mut extra: Vec<u64> = Vec::new();
        for (bit, a) in self.assessments.iter().enumerate() {
            let (word, mask) = (bit / 64, 1u64 << (bit % 64));
            for c in &a.controls {
                for i in c.references.iter().flat_map(|r| matches(r, actions)) {
                    match self.shared_slot(&actions[i])? {
                        Some(s) => members[s * words + word] |= mask,
                        None => {
                            if extra.is_empty() {
                                extra = vec![0; actions.len() * words];
                            }
                            extra[i * words + word] |= mask;
                        }
                    }
                }
            }
        }
        let mut extra_statuses: Vec<Option<Resolved<'_>>> = Vec::new();
        if !extra.is_empty() {
            extra_statuses.reserve(actions.len());
            for (i, (r, bits)) in actions.iter().zip(extra.chunks_exact(words)).enumerate() {
                extra_statuses.push(if bits.iter().all(|&b| b == 0) {
                    None
                } else {
                    let kind = ActionKind {
                        implementation_type: ImplementationType::Technical,
                        responsibility: Responsibility::Customer,
                        points: r.points,
                    };
                    let m =
                        noting_parent(Instance::Extra(i), record(None, &r.action_id), &mut parents);
                    Some(resolve(kind, Some(r), true, m))
                });
            }
        }
        if !parents.is_empty() {
            self.copy_parents(&parents, actions, &mut statuses, &mut extra_statuses);
        }

        // Sums in key order: tenant-keyed slots merged with the extra instances by action id,
        // then the group-keyed slots.
        let n = self.assessments.len();
        let mut sums = Sums::new(n);
        let mut pending = extra_statuses
            .iter()
            .enumerate()
            .filter_map(|(i, status)| status.as_ref().map(|status| (i, status)))
            .peekable();
        for (i, slot) in self.slots[..self.tenant_slots].iter().enumerate() {
            while let Some((e, extra_status)) =
                pending.next_if(|(e, _)| actions[*e].action_id < slot.action)
            {
                sums.add(extra_status, row(&extra, e, words));
            }
            sums.add(&statuses[i], row(&members, i, words));
        }
        for (e, extra_status) in pending {
            sums.add(extra_status, row(&extra, e, words));
        }
        for (i, status) in statuses.iter().enumerate().skip(self.tenant_slots) {
            sums.add(status, row(&members, i, words));
        }

        let mut summaries = Vec::with_capacity(n);
        let mut classes: Vec<ActionClass> = Vec::new();
        let mut seen: Vec<Instance> = Vec::new();
        for (bit, a) in self.assessments.iter().enumerate() {
            let mut control_statuses = Vec::with_capacity(a.controls.len());
            for c in &a.controls {
                classes.clear();
                let class = |r: &Resolved<'_>| classify(r.implementation, r.test);
                classes.extend(c.slots.iter().map(|&i| class(&statuses[i])));
                if !c.references.is_empty() {
                    seen.clear();
                    seen.extend(c.slots.iter().map(|&i| Instance::Slot(i)));
                    for i in c.references.iter().flat_map(|r| matches(r, actions)) {
                        let instance = match self.shared_slot(&actions[i])? {
                            Some(s) => Instance::Slot(s),
                            None => Instance::Extra(i),
                        };
                        if seen.contains(&instance) {
                            continue;
                        }
                        seen.push(instance);
                        let status = match instance {
                            Instance::Slot(s) => Some(&statuses[s]),
                            Instance::Extra(i) => extra_statuses[i].as_ref(),
                        };
                        // An extra instance matched here was resolved above.
                        classes.extend(status.map(class));
                    }
                }
                control_statuses.push(control_status(&classes));
            }
            let (achieved, possible, automated) = sums.assessments[bit];
            summaries.push(AssessmentSummary {
                id: assessments[a.position].id.clone(),
                score: score_of(achieved, possible),
                status: assessment_status(&control_statuses),
                progress: progress(&control_statuses),
                automated_points_ratio: if possible > 0.0 {
                    automated / possible
                } else {
                    0.0
                },
                controls: control_counts(control_statuses.iter().copied()),
            });
        }
        Ok(TenantScores {
            score: score_of(sums.total.0, sums.total.1),
            categories: sums
                .categories
                .into_iter()
                .map(|(c, (a, p))| (c.to_owned(), score_of(a, p)))
                .collect(),
            assessments: summaries,
        })
    }

    /// The slot a wildcard- or id-matched rule result shares its key with, if any; `Err`
    /// (the model decides) when that slot's definition would resolve differently from the
    /// result's (a provider-managed action), as the first definition met wins in the model.
    fn shared_slot(&self, r: &ActionResult) -> Result<Option<usize>, PlanFallback> {
        match self.by_action.get(r.action_id.as_str()) {
            None => Ok(None),
            Some(&s) if self.slots[s].kind.rule_decides() => Ok(Some(s)),
            Some(_) => Err(PlanFallback::SharedProviderAction),
        }
    }

    /// The group-keyed slot of `(groups[group], action)`, if any.
    fn group_slot(&self, group: usize, action: &str) -> Option<usize> {
        let name = self.groups[group].as_str();
        self.slots[self.tenant_slots..]
            .binary_search_by(|s| {
                let g = s.group.map_or("", |g| self.groups[g].as_str());
                (g, s.action.as_str()).cmp(&(name, action))
            })
            .ok()
            .map(|i| self.tenant_slots + i)
    }

    /// Give each parent-tested instance its parent's status, as the model does: the first of
    /// the parent action's instance in the same scope and (a group-scoped instance; the plan
    /// is one tenant's) the tenant's that exists and is not parent-tested itself (one
    /// level); none: `could_not_be_detected` ([`copied_status`]); then its points
    /// ([`points_of`]).
    fn copy_parents<'a>(
        &self,
        parents: &[(Instance, &str)],
        actions: &[ActionResult],
        statuses: &mut [Resolved<'a>],
        extra_statuses: &mut [Option<Resolved<'a>>],
    ) {
        let copies: Vec<(Instance, _)> = {
            let status = |instance: Instance| match instance {
                Instance::Slot(s) => statuses.get(s),
                Instance::Extra(i) => extra_statuses.get(i).and_then(Option::as_ref),
            };
            let tenant_instance = |action: &str| match self.by_action.get(action) {
                Some(&s) => Some(Instance::Slot(s)),
                None => {
                    let i = actions.partition_point(|r| r.action_id.as_str() < action);
                    actions
                        .get(i)
                        .is_some_and(|r| r.action_id == action)
                        .then_some(Instance::Extra(i))
                }
            };
            parents
                .iter()
                .map(|&(child, parent)| {
                    let group = match child {
                        Instance::Slot(s) => self.slots[s].group,
                        Instance::Extra(_) => None,
                    };
                    let candidates = match group {
                        Some(g) => [
                            self.group_slot(g, parent).map(Instance::Slot),
                            tenant_instance(parent),
                        ],
                        None => [tenant_instance(parent), None],
                    };
                    let found = candidates
                        .into_iter()
                        .flatten()
                        .filter_map(status)
                        .find(|p| p.source != TestingSource::Parent);
                    (
                        child,
                        copied_status(found.map(|p| (p.implementation, p.test, p.credit))),
                    )
                })
                .collect()
        };
        for (child, (implementation, test, credit)) in copies {
            let r = match child {
                Instance::Slot(s) => Some(&mut statuses[s]),
                Instance::Extra(i) => extra_statuses[i].as_mut(),
            };
            if let Some(r) = r {
                let (credit, achieved, possible) =
                    points_of(r.points, implementation, test, credit);
                r.implementation = implementation;
                r.test = test;
                r.credit = credit;
                r.points_achieved = achieved;
                r.points_possible = possible;
            }
        }
    }
}

/// An instance met while rolling a control up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Instance {
    Slot(usize),
    /// A rule result's (index into the results).
    Extra(usize),
}

/// Row `i` of a member set matrix of `words` words a row.
fn row(set: &[u64], i: usize, words: usize) -> &[u64] {
    &set[i * words..(i + 1) * words]
}

/// `record`, noting its instance in `parents` when it is a `parent` record.
fn noting_parent<'m>(
    instance: Instance,
    record: Option<&'m ManualStatus>,
    parents: &mut Vec<(Instance, &'m str)>,
) -> Option<&'m ManualStatus> {
    if let Some(m) = record.filter(|m| m.testing_source == TestingSource::Parent) {
        parents.push((instance, m.parent.as_deref().unwrap_or_default()));
    }
    record
}

/// Indices of the rule results a reference reaches.
fn matches<'a>(
    reference: &'a Reference,
    actions: &'a [ActionResult],
) -> impl Iterator<Item = usize> + 'a {
    let (prefix, exact) = match reference {
        Reference::Prefix(p) => (p.as_str(), false),
        Reference::Exact(id) => (id.as_str(), true),
    };
    let start = actions.partition_point(|r| r.action_id.as_str() < prefix);
    (start..actions.len())
        .take_while(move |&i| {
            let id = actions[i].action_id.as_str();
            if exact {
                id == prefix
            } else {
                id.starts_with(prefix)
            }
        })
        .take(if exact { 1 } else { usize::MAX })
}

/// Running sums in instance key order.
struct Sums<'a> {
    total: (f64, f64),
    categories: BTreeMap<&'a str, (f64, f64)>,
    /// Per assessment: achieved, possible, possible tested automatically.
    assessments: Vec<(f64, f64, f64)>,
}

impl<'a> Sums<'a> {
    fn new(n: usize) -> Sums<'a> {
        Sums {
            total: (0.0, 0.0),
            categories: BTreeMap::new(),
            assessments: vec![(0.0, 0.0, 0.0); n],
        }
    }

    fn add(&mut self, r: &Resolved<'a>, members: &[u64]) {
        self.total.0 += r.points_achieved;
        self.total.1 += r.points_possible;
        let c = self.categories.entry(r.category).or_insert((0.0, 0.0));
        c.0 += r.points_achieved;
        c.1 += r.points_possible;
        let automatic = r.source == TestingSource::Automatic;
        for (word, &set) in members.iter().enumerate() {
            let mut bits = set;
            while bits != 0 {
                let i = word * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let a = &mut self.assessments[i];
                a.0 += r.points_achieved;
                a.1 += r.points_possible;
                // Possible points are whole numbers: their sum does not depend on the order
                // (the report sums them by action id).
                if automatic {
                    a.2 += r.points_possible;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;
    use crate::evaluation::evaluator::implementation_status;
    use crate::evaluation::{Catalog, TenantEvaluation, TestStatus};
    use crate::interchange::oscal::framework_controls;
    use crate::model::scoring::{ComplianceModel, Dimension, ModelInput, ScoreFilter};
    use crate::model::template::{Template, TemplateControl};

    const TEMPLATES: [&str; 6] = [
        "data-protection-baseline",
        "iso-27001-2022",
        "nist-800-53-r5",
        "nist-csf-2.0",
        "gdpr",
        "hipaa-security-rule",
    ];

    /// xorshift64: deterministic statuses from a seed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn now() -> chrono::DateTime<chrono::Utc> {
        chrono::Utc
            .with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
            .single()
            .expect("valid")
    }

    /// A custom template: a wildcard over the generated actions, a catalog action declared as
    /// technical, a provider-managed action and a documentation action.
    fn custom() -> Template {
        let action =
            |id: &str, kind: ImplementationType, responsibility: Responsibility| TemplateAction {
                id: id.into(),
                title: id.into(),
                implementation_type: kind,
                points: 7,
                responsibility,
                description_title: String::new(),
                description: String::new(),
                guidance: String::new(),
                evidence: String::new(),
            };
        let control = |id: &str, actions: &[&str]| TemplateControl {
            id: id.into(),
            family: "F".into(),
            title: id.into(),
            description: String::new(),
            actions: actions.iter().map(|a| (*a).to_owned()).collect(),
        };
        Template {
            id: "custom".into(),
            title: "Custom".into(),
            product: String::new(),
            certification: "Custom 1".into(),
            in_scope_services: Vec::new(),
            controls: vec![
                control("C-1", &["securescore.*", "securescore.Gen1"]),
                control("C-2", &["msgraph.mfa.all_users", "custom.provider"]),
                control("C-3", &["custom.doc", "securescore.*"]),
                control("C-4", &[]),
            ],
            actions: vec![
                action(
                    "msgraph.mfa.all_users",
                    ImplementationType::Technical,
                    Responsibility::Customer,
                ),
                action(
                    "securescore.Gen1",
                    ImplementationType::Technical,
                    Responsibility::Customer,
                ),
                action(
                    "custom.provider",
                    ImplementationType::Operational,
                    Responsibility::Provider,
                ),
                action(
                    "custom.doc",
                    ImplementationType::Documentation,
                    Responsibility::Customer,
                ),
            ],
        }
    }

    fn registry() -> (Catalog, TemplateRegistry) {
        let catalog = Catalog::builtin();
        let mut registry = TemplateRegistry::builtin(&catalog.actions, framework_controls)
            .unwrap_or_else(|e| panic!("{e:?}"));
        registry
            .insert(custom())
            .unwrap_or_else(|e| panic!("{e:?}"));
        (catalog, registry)
    }

    fn assessments(tenant: &str) -> Vec<Assessment> {
        let mut out: Vec<Assessment> = TEMPLATES
            .iter()
            .enumerate()
            .map(|(i, t)| Assessment {
                id: format!("{tenant}-{t}"),
                tenant: tenant.into(),
                template: (*t).into(),
                group: if i % 2 == 0 { "default" } else { "eu" }.into(),
            })
            .collect();
        out.push(Assessment {
            id: format!("{tenant}-custom"),
            tenant: tenant.into(),
            template: "custom".into(),
            group: "eu".into(),
        });
        out.push(Assessment {
            id: format!("{tenant}-missing"),
            tenant: tenant.into(),
            template: "no-such-template".into(),
            group: "default".into(),
        });
        out
    }

    const STATUSES: [TestStatus; 8] = [
        TestStatus::Passed,
        TestStatus::FailedHighRisk,
        TestStatus::FailedLowRisk,
        TestStatus::PartiallyTested,
        TestStatus::OutOfScope,
        TestStatus::CouldNotBeDetected,
        TestStatus::None,
        TestStatus::ToBeDetected,
    ];

    /// Rule results for every catalog action and some generated ones, sorted by id.
    fn results(catalog: &Catalog, rng: &mut Rng) -> Vec<ActionResult> {
        let mut ids: Vec<(String, u32)> = catalog
            .actions
            .iter()
            .map(|a| (a.id.clone(), a.points()))
            .collect();
        for i in 0..rng.below(12) {
            ids.push((format!("securescore.Gen{i}"), 1 + rng.below(10) as u32));
        }
        let mut out: Vec<ActionResult> = ids
            .into_iter()
            .map(|(id, points)| {
                let test = STATUSES[rng.below(STATUSES.len() as u64) as usize];
                let alternative = rng.below(8) == 0;
                let implementation = implementation_status(test, alternative);
                let credit = match test {
                    TestStatus::Passed => 1.0,
                    TestStatus::PartiallyTested => rng.below(1000) as f64 / 1000.0,
                    _ => 0.0,
                };
                let oos = test == TestStatus::OutOfScope;
                let possible = if oos { 0.0 } else { f64::from(points) };
                ActionResult {
                    title: id.as_str().into(),
                    category: ["Identity", "Data", "Apps"][rng.below(3) as usize].into(),
                    solution: "Entra".into(),
                    action_id: id,
                    implementation_status: implementation,
                    test_status: test,
                    credit,
                    points,
                    points_achieved: possible * credit,
                    points_possible: possible,
                    testing_logic: "true".into(),
                    reason: None,
                    cause: None,
                    signals: Vec::new(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.action_id.cmp(&b.action_id));
        out
    }

    /// Manual records for about one instance in `1 / every` of the model's, in the three
    /// sources; a `parent` record names another instance's action (of any scope: the same,
    /// another group's, the tenant's; itself parent-tested or not), an action no instance
    /// has, or none.
    fn records(model: &ComplianceModel, rng: &mut Rng, every: u64) -> Vec<ManualStatus> {
        let all: Vec<_> = model.instances().collect();
        let chosen: Vec<_> = all.iter().filter(|_| rng.below(every) == 0).collect();
        chosen
            .into_iter()
            .map(|i| {
                let source = match rng.below(4) {
                    0 => TestingSource::Automatic,
                    1 => TestingSource::Parent,
                    _ => TestingSource::Manual,
                };
                let mut m = ManualStatus::new(i.key.scope.clone(), &i.key.action, source, now());
                m.test_status = Some(STATUSES[rng.below(STATUSES.len() as u64) as usize]);
                if source == TestingSource::Parent {
                    m.parent = match rng.below(8) {
                        0 => None,
                        1 => Some("no.such.action".into()),
                        _ => Some(all[rng.below(all.len() as u64) as usize].key.action.clone()),
                    };
                }
                m
            })
            .collect()
    }

    /// `results` in a random order with some ids repeated (the copies with other statuses,
    /// after the first).
    fn shuffled(mut results: Vec<ActionResult>, rng: &mut Rng) -> Vec<ActionResult> {
        for i in (1..results.len()).rev() {
            results.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for _ in 0..rng.below(6) {
            let mut copy = results[rng.below(results.len() as u64) as usize].clone();
            copy.test_status = STATUSES[rng.below(STATUSES.len() as u64) as usize];
            copy.points_achieved = 0.0;
            let at = rng.below(results.len() as u64 + 1) as usize;
            let first = results.iter().position(|r| r.action_id == copy.action_id);
            results.insert(at.max(first.map_or(0, |f| f + 1)), copy);
        }
        results
    }

    fn model(
        registry: &TemplateRegistry,
        assessments: &[Assessment],
        evaluation: &TenantEvaluation,
        manual: &[ManualStatus],
    ) -> ComplianceModel {
        ComplianceModel::build(&ModelInput {
            templates: registry,
            assessments,
            evaluations: std::slice::from_ref(evaluation),
            manual,
            now: now(),
        })
    }

    fn expected(model: &ComplianceModel, tenant: &str) -> TenantScores {
        let filter = ScoreFilter {
            tenant: Some(tenant.into()),
            ..ScoreFilter::default()
        };
        TenantScores {
            score: model.score(&filter),
            categories: model.scores_by(Dimension::Category, &filter),
            assessments: model.reports().iter().map(AssessmentSummary::of).collect(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// The plan's figures are the model's, to the bit, for two tenants sharing one plan:
        /// the six assessments of the issue plus a custom template (wildcards, a catalog
        /// action declared again, provider-managed and documentation actions) and one naming
        /// an unknown template; random rule results (a quarter of them out of order with
        /// repeated ids), generated actions and manual records of the three sources (`parent`
        /// ones naming actions in and out of scope).
        #[test]
        fn plan_scores_equal_the_model(seed in 1u64..u64::MAX) {
            let (catalog, registry) = registry();
            let mut rng = Rng(seed);
            let first = assessments("t1");
            let refs: Vec<&Assessment> = first.iter().collect();
            let plan = ScoringPlan::new(&registry, &refs);
            prop_assert_eq!(plan.problems().len(), 1);
            for tenant in ["t1", "t2"] {
                let owned = assessments(tenant);
                let refs: Vec<&Assessment> = owned.iter().collect();
                let mut actions = results(&catalog, &mut rng);
                if rng.below(4) == 0 {
                    actions = shuffled(actions, &mut rng);
                }
                let evaluation = TenantEvaluation {
                    tenant: tenant.into(),
                    evaluated_at: now(),
                    actions,
                    score: ScoreSummary::default(),
                    categories: Vec::new(),
                };
                let bare = model(&registry, &owned, &evaluation, &[]);
                let every = 1 + rng.below(8);
                let manual = records(&bare, &mut rng, every);
                let full = model(&registry, &owned, &evaluation, &manual);
                let index = ManualIndex::new(Arc::new(manual));
                let scores = plan.scores(tenant, &refs, &evaluation.actions, &index);
                prop_assert_eq!(scores, Ok(expected(&full, tenant)));
            }
        }

        /// Past 64 assessments (member sets of two words and more) the figures are still the
        /// model's: 150 assessments of three templates over seven groups, parent records
        /// included.
        #[test]
        fn plan_scores_equal_the_model_past_64_assessments(seed in 1u64..u64::MAX) {
            let (catalog, registry) = registry();
            let mut rng = Rng(seed);
            let owned: Vec<Assessment> = (0..150)
                .map(|i| Assessment {
                    id: format!("t1-{i}"),
                    tenant: "t1".into(),
                    template: ["custom", "data-protection-baseline", "gdpr"][i % 3].into(),
                    group: format!("g{}", i % 7),
                })
                .collect();
            let refs: Vec<&Assessment> = owned.iter().collect();
            let plan = ScoringPlan::new(&registry, &refs);
            prop_assert!(plan.words >= 3);
            let evaluation = TenantEvaluation {
                tenant: "t1".into(),
                evaluated_at: now(),
                actions: results(&catalog, &mut rng),
                score: ScoreSummary::default(),
                categories: Vec::new(),
            };
            let bare = model(&registry, &owned, &evaluation, &[]);
            let manual = records(&bare, &mut rng, 4);
            let full = model(&registry, &owned, &evaluation, &manual);
            let index = ManualIndex::new(Arc::new(manual));
            let scores = plan.scores("t1", &refs, &evaluation.actions, &index);
            prop_assert_eq!(scores, Ok(expected(&full, "t1")));
        }
    }

    /// A parent record and results out of order no longer leave the tenant to the model
    /// (past 64 assessments: the proptest above); where only the model is exact, the plan answers why: a wildcard
    /// reaching a provider-managed action of another template, two assessments with one id.
    #[test]
    fn plan_defers_to_the_model_only_where_it_must() {
        let (catalog, mut registry) = registry();
        let owned = assessments("t1");
        let refs: Vec<&Assessment> = owned.iter().collect();
        let plan = ScoringPlan::new(&registry, &refs);
        let actions = results(&catalog, &mut Rng(7));
        let none = ManualIndex::default();
        assert!(plan.scores("t1", &refs, &actions, &none).is_ok());

        // A documentation action tested through a technical one: the parent's status.
        let mut parent = ManualStatus::new(
            InstanceScope::Group("eu".into()),
            "custom.doc",
            TestingSource::Parent,
            now(),
        );
        parent.parent = Some("msgraph.mfa.all_users".into());
        let evaluation = TenantEvaluation {
            tenant: "t1".into(),
            evaluated_at: now(),
            actions: actions.clone(),
            score: ScoreSummary::default(),
            categories: Vec::new(),
        };
        let full = model(
            &registry,
            &owned,
            &evaluation,
            std::slice::from_ref(&parent),
        );
        let doc = full
            .instances()
            .find(|i| i.key.action == "custom.doc")
            .expect("instance");
        let mfa = full
            .instances()
            .find(|i| i.key.action == "msgraph.mfa.all_users")
            .expect("instance");
        assert_eq!(
            (doc.testing_source, doc.test_status),
            (TestingSource::Parent, mfa.test_status)
        );
        let index = ManualIndex::new(Arc::new(vec![parent]));
        assert_eq!(
            plan.scores("t1", &refs, &actions, &index),
            Ok(expected(&full, "t1"))
        );

        let mut reversed = actions.clone();
        reversed.reverse();
        assert_eq!(
            plan.scores("t1", &refs, &reversed, &none),
            plan.scores("t1", &refs, &actions, &none)
        );

        let mut twice = owned.clone();
        twice[1].id = twice[0].id.clone();
        let twice: Vec<&Assessment> = twice.iter().collect();
        assert_eq!(
            plan.scores("t1", &twice, &actions, &none),
            Err(PlanFallback::DuplicateAssessmentId)
        );

        let mut provider = custom();
        provider.id = "provider".into();
        provider.controls.truncate(1);
        provider.controls[0].actions = vec![actions[0].action_id.clone()];
        provider.actions = vec![TemplateAction {
            id: actions[0].action_id.clone(),
            title: "Provider".into(),
            implementation_type: ImplementationType::Technical,
            points: 3,
            responsibility: Responsibility::Provider,
            description_title: String::new(),
            description: String::new(),
            guidance: String::new(),
            evidence: String::new(),
        }];
        registry
            .insert(provider)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let mut with_provider = owned.clone();
        with_provider.insert(
            0,
            Assessment {
                id: "t1-provider".into(),
                tenant: "t1".into(),
                template: "provider".into(),
                group: "default".into(),
            },
        );
        let mut wildcard = custom();
        wildcard.id = "wildcard".into();
        wildcard.controls.truncate(1);
        wildcard.controls[0].actions = vec![format!("{}*", actions[0].action_id)];
        wildcard.actions.clear();
        registry
            .insert(wildcard)
            .unwrap_or_else(|e| panic!("{e:?}"));
        with_provider.push(Assessment {
            id: "t1-wildcard".into(),
            tenant: "t1".into(),
            template: "wildcard".into(),
            group: "default".into(),
        });
        let refs: Vec<&Assessment> = with_provider.iter().collect();
        let plan = ScoringPlan::new(&registry, &refs);
        assert_eq!(
            plan.scores("t1", &refs, &actions, &none),
            Err(PlanFallback::SharedProviderAction)
        );
    }
}
