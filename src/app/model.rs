//! The Compliance Manager model at run time: templates, assessments and manual statuses of a
//! running daemon, the per-tenant assessment reports of each poll, and `postured action set`.
//!
//! [`ModelRuntime`] is built once from the configuration (built-in templates, `[templates]
//! dirs`, `[[groups]]`, `[[assessments]]` plus the default assessment per tenant); templates
//! imported into the store and the manual statuses are loaded from the store at start-up
//! ([`ModelRuntime::refresh`]) and kept in memory: the API's writes update them at once
//! ([`ModelRuntime::apply_action_set`]), and `postured run` re-reads them every `[model]
//! manual_refresh` for writes of other processes (`postured action set`). A poll never reads
//! them from the store. The computation is the pure [`crate::model`]; this module only
//! gathers its inputs.
//!
//! Must not: decide statuses or scores (the model does); write anything but manual statuses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::evaluation::{
    ActionDef, ActionResult, ActionState, Evaluator, ScoreSummary, TenantEvaluation,
};
use crate::interchange::oscal::framework_controls;
use crate::metrics::Metrics;
use crate::model::plan::{AssessmentSummary, ManualIndex, ScoringPlan};
use crate::model::report::{AssessmentReport, TestingSource};
use crate::model::template::{ImplementationType, Responsibility};
use crate::model::{
    Assessment, ComplianceModel, Dimension, Group, InstanceScope, ManualStatus, ManualUpdate,
    ModelInput, ScoreFilter, TemplateRegistry,
};
use crate::store::{AuditRecord, Store, StoreError};

/// Templates, assessments, groups and the cached manual statuses of a running daemon.
#[derive(Debug)]
pub struct ModelRuntime {
    /// Built-in and `[templates] dirs` templates (and, after [`ModelRuntime::refresh`], the
    /// store's imported ones).
    registry: RwLock<Arc<TemplateRegistry>>,
    /// Active assessments, in configuration order (defaults last).
    pub assessments: Vec<Assessment>,
    /// Groups (`default` first).
    pub groups: Vec<Group>,
    /// Manual statuses as last read from the store, indexed.
    manual: RwLock<Arc<ManualIndex>>,
    /// Per tenant, its assessments (indices into `assessments`) and their shape.
    by_tenant: HashMap<String, TenantAssessments>,
    /// The scoring plans of the current registry, one per shape.
    plans: Mutex<PlanCache>,
    /// Whether the store's templates have been merged into the registry.
    imported_loaded: std::sync::atomic::AtomicBool,
    /// Stored templates left out of the registry by the load.
    skipped: RwLock<Vec<SkippedTemplate>>,
}

/// A tenant's assessments.
#[derive(Debug)]
struct TenantAssessments {
    /// Indices into [`ModelRuntime::assessments`], in order.
    indices: Vec<usize>,
    /// Tenants whose assessments name the same templates and groups in the same order share
    /// a shape, and so a [`ScoringPlan`].
    shape: usize,
}

/// The scoring plans of one registry, by shape.
#[derive(Debug, Default)]
struct PlanCache {
    registry: Option<Arc<TemplateRegistry>>,
    plans: HashMap<usize, Arc<ScoringPlan>>,
}

/// Why a stored template was left out of the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Its row no longer decodes as a template.
    Corrupt,
    /// It decodes but fails the template validation (e.g. against a changed catalog).
    Invalid,
}

impl SkipReason {
    /// Every reason, in the order of the metric's series.
    pub const ALL: [SkipReason; 2] = [SkipReason::Corrupt, SkipReason::Invalid];

    /// The `reason` label of `postured_templates_skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Corrupt => "corrupt",
            SkipReason::Invalid => "invalid",
        }
    }
}

/// A stored template left out of the registry, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedTemplate {
    /// The template id (the row's).
    pub id: String,
    /// Why.
    pub reason: SkipReason,
    /// The decoder's or validation's message(s).
    pub detail: String,
}

/// Problems met building the runtime (invalid extra templates), as display lines.
pub type RuntimeProblems = Vec<String>;

impl ModelRuntime {
    /// Build from the configuration and the compiled catalog. Invalid extra template files are
    /// skipped and returned as problems (the built-in templates' validity is a tested build
    /// invariant; should they fail, the registry starts empty and the problems say why).
    pub fn new(config: &Config, evaluator: &Evaluator) -> (ModelRuntime, RuntimeProblems) {
        let catalog: Vec<ActionDef> = evaluator.actions().cloned().collect();
        let mut problems = Vec::new();
        let mut registry =
            TemplateRegistry::builtin(&catalog, framework_controls).unwrap_or_else(|errors| {
                problems.extend(errors.iter().map(ToString::to_string));
                TemplateRegistry::new()
            });
        for dir in &config.templates.dirs {
            if let Err(errors) = registry.load_dir(dir, &catalog, framework_controls) {
                problems.extend(errors.iter().map(ToString::to_string));
            }
        }
        let assessments = config.active_assessments();
        let by_tenant = by_tenant(&assessments);
        let runtime = ModelRuntime {
            registry: RwLock::new(Arc::new(registry)),
            assessments,
            groups: crate::model::settings::groups(&config.groups),
            manual: RwLock::new(Arc::new(ManualIndex::default())),
            by_tenant,
            plans: Mutex::new(PlanCache::default()),
            imported_loaded: std::sync::atomic::AtomicBool::new(false),
            skipped: RwLock::new(Vec::new()),
        };
        (runtime, problems)
    }

    /// The current template registry.
    pub fn registry(&self) -> Arc<TemplateRegistry> {
        match self.registry.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The cached manual statuses.
    pub fn manual(&self) -> Arc<Vec<ManualStatus>> {
        self.manual_index().records().clone()
    }

    fn manual_index(&self) -> Arc<ManualIndex> {
        match self.manual.read() {
            Ok(m) => m.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Load the manual statuses from the store and, the first time, merge the store's
    /// imported templates into the registry (built-in and directory templates win on an id
    /// clash). A stored template that no longer decodes or fails validation is skipped with a
    /// warning, never an error: it is listed by [`ModelRuntime::skipped_templates`] and counted
    /// by [`ModelRuntime::publish_skipped`]. Called at start-up and by the periodic reload task
    /// of `postured run` (`[model] manual_refresh`), never by a poll. On error (the store
    /// cannot be read) the cache is kept.
    pub async fn refresh(&self, store: &dyn Store) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        if !self.imported_loaded.load(Ordering::Acquire) {
            let stored = store.list_templates().await?;
            let mut registry = (*self.registry()).clone();
            let mut skipped: Vec<SkippedTemplate> = stored
                .corrupt
                .into_iter()
                .map(|c| SkippedTemplate {
                    id: c.id,
                    reason: SkipReason::Corrupt,
                    detail: c.problem,
                })
                .collect();
            for t in stored.templates {
                if registry.get(&t.id).is_some() {
                    continue;
                }
                let id = t.id.clone();
                if let Err(errors) = registry.insert(t) {
                    skipped.push(SkippedTemplate {
                        id,
                        reason: SkipReason::Invalid,
                        detail: errors
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; "),
                    });
                }
            }
            for s in &skipped {
                tracing::warn!(
                    template = %s.id,
                    reason = s.reason.as_str(),
                    problem = %s.detail,
                    "a stored template cannot be used; skipped"
                );
            }
            if let Ok(mut r) = self.registry.write() {
                *r = Arc::new(registry);
            }
            if let Ok(mut k) = self.skipped.write() {
                *k = skipped;
            }
            self.imported_loaded.store(true, Ordering::Release);
        }
        let manual = ManualIndex::new(Arc::new(store.manual_statuses().await?));
        if let Ok(mut m) = self.manual.write() {
            *m = Arc::new(manual);
        }
        Ok(())
    }

    /// Add a template imported through the API to the in-memory registry (it is already
    /// saved to the store); assessments naming it are built from the next poll on.
    ///
    /// # Errors
    ///
    /// The registry's validation problems (nothing is added).
    pub fn insert_template(
        &self,
        template: crate::model::template::Template,
    ) -> Result<(), Vec<crate::model::TemplateError>> {
        // Under the write lock, so two imports at once both land.
        let mut guard = match self.registry.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut registry = (**guard).clone();
        registry.insert(template)?;
        *guard = Arc::new(registry);
        Ok(())
    }

    /// The stored templates the last load left out of the registry (empty before
    /// [`ModelRuntime::refresh`]).
    pub fn skipped_templates(&self) -> Vec<SkippedTemplate> {
        match self.skipped.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Export how many stored templates were skipped, per reason
    /// (`postured_templates_skipped{reason}`).
    pub fn publish_skipped(&self, metrics: &Metrics) {
        let skipped = self.skipped_templates();
        for reason in SkipReason::ALL {
            let n = skipped.iter().filter(|s| s.reason == reason).count();
            metrics.set_templates_skipped(reason.as_str(), n);
        }
    }

    /// Record a person's update of one action instance: write it to the store
    /// ([`apply_action_set`]), then to the in-memory statuses, so the tenant's next poll shows
    /// it. Returns the saved record.
    ///
    /// # Errors
    ///
    /// Store errors; the in-memory statuses are then unchanged.
    pub async fn apply_action_set(
        &self,
        store: &dyn Store,
        scope: InstanceScope,
        action: &str,
        update: ManualUpdate,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<ManualStatus, StoreError> {
        let record = apply_action_set(store, scope, action, update, actor, now).await?;
        let mut cached = (*self.manual()).clone();
        match cached
            .iter_mut()
            .find(|m| m.scope == record.scope && m.action == record.action)
        {
            Some(m) => *m = record.clone(),
            None => cached.push(record.clone()),
        }
        if let Ok(mut m) = self.manual.write() {
            *m = Arc::new(ManualIndex::new(Arc::new(cached)));
        }
        Ok(record)
    }

    /// The assessments of one tenant.
    pub fn assessments_of<'a>(&'a self, tenant: &'a str) -> impl Iterator<Item = &'a Assessment> {
        self.assessments.iter().filter(move |a| a.tenant == tenant)
    }

    /// The shared inputs the model reads now: the template registry and the manual statuses
    /// (two `Arc`s, nothing copied). A tenant keeps the snapshot its last poll was assessed
    /// with, so its reports can be computed again on demand ([`ModelRuntime::reports_at`])
    /// instead of being kept per tenant.
    pub fn snapshot(&self) -> ModelSnapshot {
        ModelSnapshot {
            registry: self.registry(),
            manual: self.manual_index(),
        }
    }

    /// The assessments of one tenant, from the index.
    fn tenant_assessments(&self, tenant: &str) -> Vec<&Assessment> {
        self.by_tenant.get(tenant).map_or_else(Vec::new, |t| {
            t.indices.iter().map(|&i| &self.assessments[i]).collect()
        })
    }

    /// The scoring plan of a tenant's assessments under the snapshot's registry (built the
    /// first time a shape is met, then shared).
    fn plan(
        &self,
        snapshot: &ModelSnapshot,
        shape: usize,
        assessments: &[&Assessment],
    ) -> Arc<ScoringPlan> {
        let mut cache = match self.plans.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !cache
            .registry
            .as_ref()
            .is_some_and(|r| Arc::ptr_eq(r, &snapshot.registry))
        {
            cache.registry = Some(snapshot.registry.clone());
            cache.plans.clear();
        }
        cache
            .plans
            .entry(shape)
            .or_insert_with(|| Arc::new(ScoringPlan::new(&snapshot.registry, assessments)))
            .clone()
    }

    /// Build the model over some evaluations (the tenants without one are "not evaluated yet")
    /// and the given assessments.
    pub fn model(
        &self,
        assessments: &[Assessment],
        evaluations: &[TenantEvaluation],
        now: DateTime<Utc>,
    ) -> ComplianceModel {
        model_with(&self.snapshot(), assessments, evaluations, now)
    }

    /// The model of one tenant's assessments over its evaluation, `None` when it has none.
    fn tenant_model(
        &self,
        snapshot: &ModelSnapshot,
        evaluation: &TenantEvaluation,
    ) -> Option<ComplianceModel> {
        let assessments: Vec<Assessment> = self
            .tenant_assessments(&evaluation.tenant)
            .into_iter()
            .cloned()
            .collect();
        (!assessments.is_empty()).then(|| {
            model_with(
                snapshot,
                &assessments,
                std::slice::from_ref(evaluation),
                evaluation.evaluated_at,
            )
        })
    }

    /// Score a tenant's evaluated actions once: with the tenant's assessments, the score and
    /// per-category breakdown are the overall score over the de-duplicated instances of all of
    /// them (SCORING.md "Overall tenant score", manual statuses of `snapshot`), returned with
    /// a summary of each assessment (the figures of its report, without the texts: the
    /// reports are computed on demand by [`ModelRuntime::reports_at`]); a tenant without
    /// assessments is scored over its actions alone ([`TenantEvaluation::from_actions`]). With
    /// only the default assessment the two are equal.
    ///
    /// The figures come from the tenant's [`ScoringPlan`] (resolved once per registry and
    /// shape of assessments); where only the model can answer exactly, from the model, counted
    /// in `metrics` (`postured_scoring_plan_fallbacks_total{reason}`) and logged at debug.
    pub fn assess(
        &self,
        snapshot: &ModelSnapshot,
        tenant: &str,
        at: DateTime<Utc>,
        actions: Vec<ActionResult>,
        metrics: &Metrics,
    ) -> (TenantEvaluation, Vec<AssessmentSummary>) {
        let Some(set) = self.by_tenant.get(tenant) else {
            return (
                TenantEvaluation::from_actions(tenant, at, actions),
                Vec::new(),
            );
        };
        let assessments: Vec<&Assessment> =
            set.indices.iter().map(|&i| &self.assessments[i]).collect();
        let plan = self.plan(snapshot, set.shape, &assessments);
        let fallback = match plan.scores(tenant, &assessments, &actions, &snapshot.manual) {
            Ok(scores) => {
                for (position, message) in plan.problems() {
                    tracing::warn!(assessment = %assessments[*position].id, "assessment skipped: {message}");
                }
                let evaluation = TenantEvaluation {
                    tenant: tenant.to_owned(),
                    evaluated_at: at,
                    actions,
                    score: scores.score,
                    categories: scores.categories,
                };
                return (evaluation, scores.assessments);
            }
            Err(reason) => reason,
        };
        metrics.observe_scoring_plan_fallback(fallback);
        tracing::debug!(
            tenant,
            reason = fallback.as_str(),
            "scoring plan fallback: the full model scores this tenant"
        );
        let mut evaluation = TenantEvaluation {
            tenant: tenant.to_owned(),
            evaluated_at: at,
            actions,
            score: ScoreSummary::default(),
            categories: Vec::new(),
        };
        let assessments: Vec<Assessment> = assessments.into_iter().cloned().collect();
        let model = model_with(
            snapshot,
            &assessments,
            std::slice::from_ref(&evaluation),
            at,
        );
        let filter = ScoreFilter {
            tenant: Some(tenant.to_owned()),
            ..ScoreFilter::default()
        };
        evaluation.score = model.score(&filter);
        evaluation.categories = model.scores_by(Dimension::Category, &filter);
        let summaries = model.reports().iter().map(AssessmentSummary::of).collect();
        (evaluation, summaries)
    }

    /// The reports of one tenant's assessments at `evaluation`, as [`ModelRuntime::assess`]
    /// gave them, computed again from the snapshot it was assessed with and the tenant's
    /// stored states (the daemon keeps these, not the reports: a tenant's reports hold every
    /// control and action text of its templates).
    pub fn reports_at(
        &self,
        snapshot: &ModelSnapshot,
        evaluation: &TenantEvaluation,
        stored: &crate::evaluation::ActionMap<ActionState>,
    ) -> Vec<AssessmentReport> {
        self.tenant_model(snapshot, evaluation)
            .map(|m| dated_reports(&m, stored, evaluation.evaluated_at))
            .unwrap_or_default()
    }

    /// The reports of one tenant's assessments after an evaluation.
    pub fn tenant_reports(&self, evaluation: &TenantEvaluation) -> Vec<AssessmentReport> {
        self.tenant_model(&self.snapshot(), evaluation)
            .map(|m| m.reports())
            .unwrap_or_default()
    }
}

/// The shared inputs of the model at one instant ([`ModelRuntime::snapshot`]).
#[derive(Debug, Clone)]
pub struct ModelSnapshot {
    registry: Arc<TemplateRegistry>,
    manual: Arc<ManualIndex>,
}

impl ModelSnapshot {
    /// Whether both snapshots are the same inputs (the same shared registry and manual
    /// statuses, not merely equal ones): an assessment over either gives the same figures.
    pub fn same_as(&self, other: &ModelSnapshot) -> bool {
        Arc::ptr_eq(&self.registry, &other.registry) && Arc::ptr_eq(&self.manual, &other.manual)
    }
}

/// Index the assessments by tenant, giving tenants whose assessments name the same templates
/// and groups in the same order one shape.
fn by_tenant(assessments: &[Assessment]) -> HashMap<String, TenantAssessments> {
    let mut indices: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, a) in assessments.iter().enumerate() {
        indices.entry(a.tenant.as_str()).or_default().push(i);
    }
    let mut shapes: HashMap<Vec<(&str, &str)>, usize> = HashMap::new();
    indices
        .into_iter()
        .map(|(tenant, indices)| {
            let key: Vec<(&str, &str)> = indices
                .iter()
                .map(|&i| {
                    (
                        assessments[i].template.as_str(),
                        assessments[i].group.as_str(),
                    )
                })
                .collect();
            let n = shapes.len();
            let shape = *shapes.entry(key).or_insert(n);
            (tenant.to_owned(), TenantAssessments { indices, shape })
        })
        .collect()
}

fn model_with(
    snapshot: &ModelSnapshot,
    assessments: &[Assessment],
    evaluations: &[TenantEvaluation],
    now: DateTime<Utc>,
) -> ComplianceModel {
    let model = ComplianceModel::build(&ModelInput {
        templates: &snapshot.registry,
        assessments,
        evaluations,
        manual: snapshot.manual.records(),
        now,
    });
    for p in model.problems() {
        tracing::warn!(assessment = %p.assessment, "assessment skipped: {}", p.message);
    }
    model
}

/// The model's reports with their automatic instances dated from `stored`: an action whose
/// stored status is its current one keeps the stored `since`, any other gets `at`.
fn dated_reports(
    model: &ComplianceModel,
    stored: &crate::evaluation::ActionMap<ActionState>,
    at: DateTime<Utc>,
) -> Vec<AssessmentReport> {
    let mut reports = model.reports();
    for a in reports.iter_mut().flat_map(|r| r.actions.iter_mut()) {
        if a.testing_source == TestingSource::Automatic && a.status_since.is_none() {
            a.status_since = Some(
                stored
                    .get(a.id.as_str())
                    .filter(|s| s.test_status == a.test_status)
                    .map_or(at, |s| s.since),
            );
        }
    }
    reports
}

/// What `postured action set` changes.
#[derive(Debug, Clone)]
pub struct ActionSet {
    /// The tenant (technical and provider-managed actions).
    pub tenant: Option<String>,
    /// The group (operational and documentation actions).
    pub group: Option<String>,
    /// Action id.
    pub action: String,
    /// The update.
    pub update: ManualUpdate,
}

/// The scope an action's manual status lives in, given `--tenant`/`--group`: technical and
/// provider-managed actions by tenant, others by group. Looks the action up in the templates
/// of the configured assessments (any action not found there is treated as technical when a
/// tenant is given, non-technical when a group is given).
///
/// # Errors
///
/// A message for the user: unknown tenant/group, the wrong one of the two for the action.
pub fn scope_for(
    runtime: &ModelRuntime,
    config: &Config,
    set: &ActionSet,
) -> Result<InstanceScope, String> {
    let registry = runtime.registry();
    let def = registry
        .iter()
        .flat_map(|t| t.actions.iter())
        .find(|a| a.id == set.action);
    let per_tenant = def.map(|a| {
        a.implementation_type == ImplementationType::Technical
            || a.responsibility == Responsibility::Provider
    });
    match (&set.tenant, &set.group, per_tenant) {
        (Some(t), None, Some(true) | None) => {
            if config.tenant(t).is_none() {
                return Err(format!("unknown tenant {t:?}"));
            }
            Ok(InstanceScope::Tenant(t.clone()))
        }
        (None, Some(g), Some(false) | None) => {
            if !runtime.groups.iter().any(|x| &x.id == g) {
                return Err(format!("unknown group {g:?}"));
            }
            Ok(InstanceScope::Group(g.clone()))
        }
        (Some(_), None, Some(false)) => Err(format!(
            "{} is a non-technical action, counted once per group: use --group",
            set.action
        )),
        (None, Some(_), Some(true)) => Err(format!(
            "{} is a technical or provider-managed action, counted once per tenant: use --tenant",
            set.action
        )),
        _ => Err("give exactly one of --tenant and --group".to_string()),
    }
}

/// Who makes a change, as the audit log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The principal's subject (`token:<id>`, `oidc:<sub>`, `api_token`, `cli:<os user>`).
    pub subject: String,
    /// Id shared by the audit rows of one request, when there is one.
    pub request_id: Option<String>,
}

impl Actor {
    /// The person running a command: `cli:<os user>` (`$USER`, else `$LOGNAME`, else
    /// `unknown`).
    pub fn cli() -> Actor {
        let user = ["USER", "LOGNAME"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|u| !u.trim().is_empty()))
            .unwrap_or_else(|| "unknown".to_string());
        let user: String = user.chars().filter(|c| !c.is_control()).take(128).collect();
        Actor {
            subject: format!("cli:{user}"),
            request_id: None,
        }
    }
}

/// The audit rows of a change of one instance's manual status: one `action.update` row per
/// field whose value changed, none for an unchanged field.
pub fn audit_rows(
    before: &ManualStatus,
    after: &ManualStatus,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Vec<AuditRecord> {
    let (tenant, group) = match &after.scope {
        InstanceScope::Tenant(t) => (Some(t.clone()), None),
        InstanceScope::Group(g) => (None, Some(g.clone())),
    };
    before
        .changes(after)
        .into_iter()
        .map(|c| AuditRecord {
            at: now,
            actor: actor.subject.clone(),
            action: "action.update".to_string(),
            tenant: tenant.clone(),
            group: group.clone(),
            object: after.action.clone(),
            field: Some(c.field.to_string()),
            old_value: Some(c.old),
            new_value: Some(c.new),
            request_id: actor.request_id.clone(),
        })
        .collect()
}

/// Apply `postured action set` (or the API's status call) to the store: read the record, apply
/// the update at `now`, write it back with one audit row per changed field (in one
/// transaction). Returns the saved record.
///
/// # Errors
///
/// Store errors; nothing is written then.
pub async fn apply_action_set(
    store: &dyn Store,
    scope: InstanceScope,
    action: &str,
    update: ManualUpdate,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<ManualStatus, StoreError> {
    // A new record starts with the testing source automatic: an owner or notes alone leave
    // the test to the rule (a non-technical action has no rule and stays manual); setting a
    // status switches the source to manual (`ManualStatus::apply`).
    let before = store
        .manual_status(&scope, action)
        .await?
        .unwrap_or_else(|| ManualStatus::new(scope, action, TestingSource::Automatic, now));
    let mut record = before.clone();
    record.apply(update, now);
    let audit = audit_rows(&before, &record, actor, now);
    store.save_manual_status(&record, &audit).await?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluation::TestStatus;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{AuditStore, ModelStore};

    fn config(text: &str) -> Config {
        Config::parse(text, &[], &|_| None).unwrap_or_else(|e| panic!("{e:#?}"))
    }

    const TEXT: &str = r#"
        [[tenants]]
        id = "t"
          [[tenants.connectors]]
          kind = "msgraph"
          schedule = "0 * * * * *"
          replay_dir = "demo/msgraph"
        [[groups]]
        id = "eu"
        [[assessments]]
        id = "t-iso"
        tenant = "t"
        template = "iso-27001-2022"
        group = "eu"
    "#;

    #[tokio::test]
    async fn action_set_scopes_and_persists() {
        let cfg = config(TEXT);
        let evaluator = Evaluator::builtin().expect("catalog");
        let (runtime, problems) = ModelRuntime::new(&cfg, &evaluator);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(runtime.assessments.len(), 2);
        let set = |tenant: Option<&str>, group: Option<&str>, action: &str| ActionSet {
            tenant: tenant.map(str::to_string),
            group: group.map(str::to_string),
            action: action.to_string(),
            update: ManualUpdate::default(),
        };
        assert_eq!(
            scope_for(
                &runtime,
                &cfg,
                &set(Some("t"), None, "msgraph.mfa.all_users")
            ),
            Ok(InstanceScope::Tenant("t".into()))
        );
        assert_eq!(
            scope_for(&runtime, &cfg, &set(None, Some("eu"), "iso.isms.policy")),
            Ok(InstanceScope::Group("eu".into()))
        );
        assert!(scope_for(&runtime, &cfg, &set(Some("t"), None, "iso.isms.policy")).is_err());
        assert!(
            scope_for(
                &runtime,
                &cfg,
                &set(None, Some("eu"), "msgraph.mfa.all_users")
            )
            .is_err()
        );
        assert!(scope_for(&runtime, &cfg, &set(None, Some("nope"), "iso.isms.policy")).is_err());
        assert!(
            scope_for(
                &runtime,
                &cfg,
                &set(Some("x"), None, "msgraph.mfa.all_users")
            )
            .is_err()
        );

        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("m.db").to_string_lossy(), 2)
            .await
            .expect("open");
        store.migrate().await.expect("migrate");
        let now = Utc::now();
        let update = ManualUpdate {
            test_status: Some(TestStatus::Passed),
            evidence: vec!["https://intranet/policy.pdf".into()],
            ..ManualUpdate::default()
        };
        let scope = InstanceScope::Group("eu".into());
        let actor = Actor {
            subject: "cli:tester".into(),
            request_id: None,
        };
        apply_action_set(
            &store,
            scope.clone(),
            "iso.isms.policy",
            update,
            &actor,
            now,
        )
        .await
        .expect("save");
        // One audit row per changed field: the source (none -> manual), the test status and
        // its date, the evidence.
        let rows = store
            .audit_entries(&crate::store::AuditFilter::default(), 100)
            .await
            .expect("audit");
        let fields: Vec<&str> = rows
            .iter()
            .filter_map(|r| r.record.field.as_deref())
            .collect();
        assert_eq!(
            fields,
            ["testing_source", "test_status", "test_date", "evidence"]
        );
        assert!(rows.iter().all(|r| r.record.actor == "cli:tester"
            && r.record.group.as_deref() == Some("eu")
            && r.record.object == "iso.isms.policy"));
        assert_eq!(rows[1].record.old_value, Some(serde_json::Value::Null));
        assert_eq!(rows[1].record.new_value, Some(serde_json::json!("passed")));
        // The same update again changes nothing: no new row.
        let again = ManualUpdate {
            test_status: Some(TestStatus::Passed),
            ..ManualUpdate::default()
        };
        apply_action_set(&store, scope.clone(), "iso.isms.policy", again, &actor, now)
            .await
            .expect("save");
        let n = store
            .audit_entries(&crate::store::AuditFilter::default(), 100)
            .await
            .expect("audit")
            .len();
        assert_eq!(n, 4);
        runtime.refresh(&store).await.expect("refresh");
        assert_eq!(runtime.manual().len(), 1);

        // The policy counts in the ISO assessment (group eu), not in the baseline.
        // Tenant t has one msgraph connector: the other kinds' actions are out of scope.
        let input = crate::evaluation::EvaluationInput {
            tenant: "t",
            now,
            signals: &[],
            gaps: &[],
        };
        let evaluation = TenantEvaluation::from_actions(
            "t",
            now,
            evaluator.evaluate_actions_of(&input, &|k| k == "msgraph"),
        );
        let reports = runtime.tenant_reports(&evaluation);
        let iso = reports
            .iter()
            .find(|r| r.id == "t-iso")
            .expect("iso report");
        let policy = iso
            .actions
            .iter()
            .find(|a| a.id == "iso.isms.policy")
            .expect("policy");
        assert_eq!(policy.test_status, TestStatus::Passed);
        assert_eq!(policy.testing_source, TestingSource::Manual);
        assert_eq!(
            policy.evidence,
            vec!["https://intranet/policy.pdf".to_string()]
        );
        let baseline = reports
            .iter()
            .find(|r| r.id == "t-data-protection-baseline")
            .expect("baseline");
        assert_eq!(baseline.score, evaluation.score);

        // The tenant's overall score covers every instance of its assessments, once: the ISO
        // assessment's non-technical actions grow the denominator; categories follow.
        let mfa = "msgraph.mfa.all_users";
        let earlier = now - chrono::Duration::hours(1);
        let stored = crate::evaluation::ActionMap::from_iter([(
            Arc::<str>::from(mfa),
            ActionState {
                test_status: TestStatus::CouldNotBeDetected,
                credit: 0.0,
                points_achieved: 0.0,
                points_possible: 27.0,
                since: earlier,
            },
        )]);
        let snapshot = runtime.snapshot();
        let (overall, summaries) = runtime.assess(
            &snapshot,
            &evaluation.tenant,
            evaluation.evaluated_at,
            evaluation.actions.clone(),
            &Metrics::new(false),
        );
        let reports2 = runtime.reports_at(&snapshot, &overall, &stored);
        // The poll's summaries are the reports' figures.
        assert_eq!(
            summaries,
            reports2
                .iter()
                .map(AssessmentSummary::of)
                .collect::<Vec<_>>()
        );
        let since = |id: &str| {
            reports2[0]
                .actions
                .iter()
                .find(|a| a.id == id)
                .and_then(|a| a.status_since)
        };
        // Unchanged status: the stored `since`; no stored state: the evaluation instant.
        assert_eq!(since(mfa), Some(earlier));
        assert_eq!(since("msgraph.labels.published"), Some(now));
        // Manual: when the record was last changed (stored to the millisecond).
        let manual_since = since("iso.isms.policy").expect("manual since");
        assert!((manual_since - now).num_milliseconds().abs() <= 1);
        assert_eq!(reports2.len(), reports.len());
        let (mut extra_achieved, mut extra_possible) = (0.0, 0.0);
        for a in iso
            .actions
            .iter()
            .filter(|a| a.implementation_type != ImplementationType::Technical)
        {
            extra_achieved += a.points_achieved;
            extra_possible += a.points_possible;
        }
        assert!(extra_possible > 0.0);
        let s = overall.score;
        assert!(
            (s.points_possible - evaluation.score.points_possible - extra_possible).abs() < 1e-9,
            "{s:?} vs {:?}",
            evaluation.score
        );
        assert!(
            (s.points_achieved - evaluation.score.points_achieved - extra_achieved).abs() < 1e-9
        );
        assert!(overall.categories.iter().any(|(c, _)| c == "Documentation"));
        assert_eq!(overall.actions, evaluation.actions);
    }

    /// Issue 8 row 14 (the runtime's part): stored templates that do not decode or fail
    /// validation are skipped with a warning and counted per reason, the others are loaded.
    #[tokio::test]
    async fn unusable_stored_templates_are_skipped_and_counted() {
        let cfg = config(TEXT);
        let evaluator = Evaluator::builtin().expect("catalog");
        let (runtime, _) = ModelRuntime::new(&cfg, &evaluator);
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("m.db").to_string_lossy(), 2)
            .await
            .expect("open");
        store.migrate().await.expect("migrate");
        let good = crate::model::template::one_control_template("acme", "ACME", "ACME 1");
        // Invalid for the model: a control naming an action the template does not have.
        let mut invalid = good.clone();
        invalid.id = "broken".into();
        invalid.controls[0].actions = vec!["custom.nowhere".into()];
        let now = Utc::now();
        store.save_template(&good, now).await.expect("save");
        store.save_template(&invalid, now).await.expect("save");
        assert!(runtime.skipped_templates().is_empty());
        runtime.refresh(&store).await.expect("refresh");
        assert!(runtime.registry().get("acme").is_some());
        assert!(runtime.registry().get("broken").is_none());
        let skipped = runtime.skipped_templates();
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert_eq!(
            (skipped[0].id.as_str(), skipped[0].reason),
            ("broken", SkipReason::Invalid)
        );
        let metrics = Metrics::new(false);
        runtime.publish_skipped(&metrics);
        let families = metrics.registry().gather();
        let family = families
            .iter()
            .find(|f| f.name() == "postured_templates_skipped")
            .expect("the family is exported");
        let by_reason: Vec<(String, f64)> = family
            .get_metric()
            .iter()
            .map(|m| {
                (
                    m.get_label()[0].value().to_owned(),
                    m.get_gauge().get_value(),
                )
            })
            .collect();
        assert_eq!(
            by_reason,
            vec![("corrupt".to_owned(), 0.0), ("invalid".to_owned(), 1.0)]
        );
    }

    /// A tenant the scoring plan cannot score exactly (here two assessments with one id) is
    /// scored by the full model, and the fallback is counted by reason.
    #[test]
    fn a_plan_fallback_is_scored_by_the_model_and_counted() {
        let cfg = config(TEXT);
        let evaluator = Evaluator::builtin().expect("catalog");
        let (mut runtime, _) = ModelRuntime::new(&cfg, &evaluator);
        let at = Utc::now();
        let metrics = Metrics::new(false);
        let fallbacks = |metrics: &Metrics| -> Vec<(String, u64)> {
            let families = metrics.registry().gather();
            let family = families
                .iter()
                .find(|f| f.name() == "postured_scoring_plan_fallbacks_total")
                .expect("the family is exported");
            family
                .get_metric()
                .iter()
                .map(|m| {
                    (
                        m.get_label()[0].value().to_owned(),
                        m.get_counter().get_value() as u64,
                    )
                })
                .collect()
        };
        let zero = vec![
            ("duplicate_assessment_id".to_owned(), 0),
            ("shared_provider_action".to_owned(), 0),
        ];
        let snapshot = runtime.snapshot();
        let (_, summaries) = runtime.assess(&snapshot, "t", at, Vec::new(), &metrics);
        assert_eq!(summaries.len(), 2);
        assert_eq!(fallbacks(&metrics), zero, "the plan scored the tenant");

        let first = runtime.assessments[0].id.clone();
        runtime.assessments[1].id = first;
        let (evaluation, summaries) = runtime.assess(&snapshot, "t", at, Vec::new(), &metrics);
        let model = runtime.model(&runtime.assessments, std::slice::from_ref(&evaluation), at);
        assert_eq!(
            summaries,
            model
                .reports()
                .iter()
                .map(AssessmentSummary::of)
                .collect::<Vec<_>>()
        );
        assert_eq!(
            fallbacks(&metrics),
            vec![
                ("duplicate_assessment_id".to_owned(), 1),
                ("shared_provider_action".to_owned(), 0),
            ]
        );
    }
}
