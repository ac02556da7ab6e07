//! The [`Evaluator`]: per-tenant evaluation of a compiled catalog (every action's status and
//! points, plus one generated action per item of the catalog's generated action families), the
//! overall and per-category score, and the status transitions since the previous evaluation.
//!
//! Pure: no IO, no clock (`now` comes with the input), cannot fail once built. It must not
//! interpret rule values (`rules` does), score a family item (`family` does) nor decide why a
//! signal is missing (the [`SignalView`] does); an undecided action carries the typed cause it
//! was given. It knows no connector kind or family by name.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

use cel_interpreter::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::catalog::{ActionDef, Catalog, CatalogError, FamilyDef};
use super::rules::{CompiledRule, Outcome, RuleEnv, rule_namespaces};
use super::signal_view::SignalView;
use super::undetected::Undetected;
use super::{ImplementationStatus, TestStatus};
use crate::signals::{Signal, SignalGap, SignalValue};

/// What the evaluator needs for one tenant. `signals` holds the latest value per key (fresh or
/// expired: expiry is judged against `now`); `gaps` the namespaces the latest polls could not
/// collect.
#[derive(Debug, Clone, Copy)]
pub struct EvaluationInput<'a> {
    /// Tenant id.
    pub tenant: &'a str,
    /// The evaluation instant: signals with `expires_at <= now` are stale.
    pub now: DateTime<Utc>,
    /// Latest value per key, fresh or expired.
    pub signals: &'a [Signal],
    /// Current collection gaps of the tenant's connectors.
    pub gaps: &'a [SignalGap],
}

/// One improvement action's evaluated state for a tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionResult {
    /// Stable action id (`msgraph.mfa.all_users`, or `<family id_prefix><item>` for a
    /// generated action, e.g. `securescore.AdminMFAV2`).
    pub action_id: String,
    /// Action title (a catalog action's is shared with the catalog, not copied per tenant).
    pub title: Arc<str>,
    /// Category for per-category scores (shared with the catalog like the title).
    pub category: Arc<str>,
    /// Product that implements the action (shared with the catalog like the title).
    pub solution: Arc<str>,
    /// Derived implementation status (see `docs/scoring.md`).
    pub implementation_status: ImplementationStatus,
    /// Test status of the rule's outcome.
    pub test_status: TestStatus,
    /// Credit in [0, 1] (SCORING.md): 1 passed, f partial, 0 otherwise.
    pub credit: f64,
    /// The action's points (1..=99).
    pub points: u32,
    /// points × credit; 0 when out of scope.
    pub points_achieved: f64,
    /// points; 0 when out of scope.
    pub points_possible: f64,
    /// The rule text shown to users as the action's testing logic (a catalog action's is
    /// shared with the catalog).
    pub testing_logic: Arc<str>,
    /// Why the status is what it is when not plainly passed (failure detail, missing or stale
    /// signal, collection error). For `could_not_be_detected` it is the text of [`Self::cause`].
    pub reason: Option<String>,
    /// Why the action is `could_not_be_detected` (`None` for any other status). Omitted from
    /// JSON when `None`; read it instead of parsing [`Self::reason`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Undetected>,
    /// Signals the rule read, with their values, for the audit trail.
    pub signals: Vec<(Arc<str>, SignalValue)>,
}

/// Points and ratio over a set of action instances.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScoreSummary {
    /// Σ points achieved.
    pub points_achieved: f64,
    /// Σ points possible (out-of-scope actions add 0).
    pub points_possible: f64,
    /// points_achieved / points_possible in [0, 1]; 0 when nothing is possible.
    pub ratio: f64,
}

/// A tenant's evaluation at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantEvaluation {
    /// Tenant id.
    pub tenant: String,
    /// The `now` of the evaluation.
    pub evaluated_at: DateTime<Utc>,
    /// Sorted by action id.
    pub actions: Vec<ActionResult>,
    /// Overall score: Σ achieved / Σ possible over every action.
    pub score: ScoreSummary,
    /// Sorted by category name.
    pub categories: Vec<(String, ScoreSummary)>,
}

/// The last stored state of one action instance (what transitions are computed against).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionState {
    /// Last test status.
    pub test_status: TestStatus,
    /// Last credit in [0, 1].
    pub credit: f64,
    /// Last points achieved.
    pub points_achieved: f64,
    /// Last points possible.
    pub points_possible: f64,
    /// When the current status began.
    pub since: DateTime<Utc>,
}

/// A change of an action instance's test status or credit between two evaluations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Transition {
    /// The action.
    pub action_id: String,
    /// `None` the first time the action is evaluated for the tenant.
    pub from_status: Option<TestStatus>,
    /// New test status.
    pub to_status: TestStatus,
    /// Previous credit; `None` the first time.
    pub from_credit: Option<f64>,
    /// New credit.
    pub to_credit: f64,
    /// New points achieved.
    pub points_achieved: f64,
    /// New points possible.
    pub points_possible: f64,
    /// The new result's reason.
    pub reason: Option<String>,
    /// Signals the new result read, with their values.
    #[schema(value_type = Vec<(String, serde_json::Value)>)]
    pub signals: Vec<(Arc<str>, SignalValue)>,
    /// The evaluation instant.
    pub at: DateTime<Utc>,
}

/// A catalog action ready to evaluate: its rule compiled once.
struct CompiledAction {
    def: ActionDef,
    points: u32,
    /// `None`: the action takes the credit of its family item (if any).
    rule: Option<CompiledRule>,
    /// Index in [`Evaluator::families`] of the family of `def.family_item`.
    family: Option<usize>,
    /// The texts every result of this action carries, shared by all of them.
    title: Arc<str>,
    category: Arc<str>,
    solution: Arc<str>,
    testing_logic: Arc<str>,
}

/// Compiled catalog: rules parsed once, evaluated for every tenant and poll.
///
/// `Send + Sync`: share one evaluator through an `Arc` across tasks.
pub struct Evaluator {
    /// Sorted by id.
    actions: Vec<CompiledAction>,
    /// The catalog's generated action families, in catalog order.
    families: Vec<FamilyDef>,
    /// Per family (same index), the item ids taken by catalog actions (no generated action
    /// for them).
    taken: Vec<HashSet<String>>,
    /// Per family (same index), its solution and default category, shared by the results.
    family_texts: Vec<(Arc<str>, Arc<str>)>,
    /// CEL standard functions; each evaluation runs in a child scope of it.
    base: Context<'static>,
    /// Namespaces above every path the rules mention (always present as CEL maps).
    namespaces: Vec<String>,
}

impl fmt::Debug for Evaluator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Evaluator")
            .field(
                "actions",
                &self.actions.iter().map(|a| &a.def.id).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Outcome of one action before points: what the rule (or the family item) concluded.
pub(super) struct Evaluated {
    pub(super) outcome: Outcome,
    pub(super) reason: Option<String>,
    pub(super) signals: Vec<(Arc<str>, SignalValue)>,
    /// Set by a family item's alternative state (Secure Score `thirdparty`, `reviewed`).
    pub(super) alternative: bool,
}

impl Evaluator {
    /// Validate and compile a catalog. Every problem is reported at once.
    pub fn new(catalog: Catalog) -> Result<Evaluator, Vec<CatalogError>> {
        let errors = catalog.validate();
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut errors = Vec::new();
        let mut actions = Vec::with_capacity(catalog.actions.len());
        let mut taken = vec![HashSet::new(); catalog.families.len()];
        let families = catalog.families;
        for (i, def) in catalog.actions.into_iter().enumerate() {
            let rule = if def.rule.trim().is_empty() {
                None
            } else {
                match CompiledRule::compile(&def.rule) {
                    Ok(r) => Some(r),
                    Err(m) => {
                        errors.push(CatalogError {
                            path: format!("actions[{i}].rule"),
                            message: format!("does not compile: {m}"),
                        });
                        continue;
                    }
                }
            };
            // `validate` resolved every reference, so `family` is set exactly when
            // `def.family_item` is.
            let family = def.family_item.as_ref().and_then(|r| {
                families
                    .iter()
                    .position(|f| f.item_field == r.field)
                    .map(|k| (k, r.item.as_str()))
            });
            let testing_logic = match (&rule, family) {
                (Some(_), _) => def.rule.trim().to_string(),
                (None, Some((k, item))) => families[k].testing_logic(item),
                (None, None) => String::new(),
            };
            if let Some((k, item)) = family {
                taken[k].insert(item.to_owned());
            }
            actions.push(CompiledAction {
                points: def.points(),
                family: family.map(|(k, _)| k),
                title: def.title.as_str().into(),
                category: def.category.as_str().into(),
                solution: def.solution.as_str().into(),
                testing_logic: testing_logic.into(),
                def,
                rule,
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        actions.sort_by(|a, b| a.def.id.cmp(&b.def.id));
        let namespaces = rule_namespaces(actions.iter().filter_map(|a| a.rule.as_ref()));
        let family_texts = families
            .iter()
            .map(|f| {
                (
                    f.solution.as_str().into(),
                    f.default_category.as_str().into(),
                )
            })
            .collect();
        Ok(Evaluator {
            actions,
            families,
            taken,
            family_texts,
            base: Context::default(),
            namespaces,
        })
    }

    /// The evaluator of the built-in catalog.
    pub fn builtin() -> Result<Evaluator, Vec<CatalogError>> {
        Evaluator::new(Catalog::try_builtin()?)
    }

    /// The catalog actions, sorted by id (generated actions are not included).
    pub fn actions(&self) -> impl Iterator<Item = &ActionDef> {
        self.actions.iter().map(|a| &a.def)
    }

    /// The catalog's generated action families, in catalog order.
    pub fn families(&self) -> &[FamilyDef] {
        &self.families
    }

    /// A catalog action by id.
    pub fn action(&self, id: &str) -> Option<&ActionDef> {
        self.actions
            .binary_search_by(|a| a.def.id.as_str().cmp(id))
            .ok()
            .map(|i| &self.actions[i].def)
    }

    /// Evaluate every catalog action, plus one action per item of each generated action family
    /// seen in the signals (unless deprecated or taken by a catalog action), for one tenant.
    pub fn evaluate(&self, input: &EvaluationInput<'_>) -> TenantEvaluation {
        TenantEvaluation::from_actions(input.tenant, input.now, self.evaluate_actions(input))
    }

    /// Every action's result for one tenant (as [`Evaluator::evaluate`]), sorted by id, not yet
    /// scored: the caller scores them, through the model over the tenant's assessments or
    /// [`TenantEvaluation::from_actions`].
    pub fn evaluate_actions(&self, input: &EvaluationInput<'_>) -> Vec<ActionResult> {
        self.evaluate_actions_of(input, &|_| true)
    }

    /// [`Evaluator::evaluate_actions`] for a tenant whose connector kinds are those for which
    /// `has_kind` is true: an action of another kind's catalog ([`ActionDef::kind`]) is
    /// `out_of_scope` ("the tenant has no <kind> connector"), so a source the tenant does not
    /// use never lowers its score.
    pub fn evaluate_actions_of(
        &self,
        input: &EvaluationInput<'_>,
        has_kind: &dyn Fn(&str) -> bool,
    ) -> Vec<ActionResult> {
        let view = SignalView::new(input.now, input.signals, input.gaps);
        let env = RuleEnv::new(&self.base, &view, &self.namespaces);
        let mut actions = Vec::with_capacity(self.actions.len());

        for action in &self.actions {
            let def = &action.def;
            let item = def.family_item.as_ref().map(|r| r.item.as_str());
            let foreign = def.kind.as_deref().filter(|k| !has_kind(k));
            let evaluated = match (&action.rule, action.family.zip(item)) {
                _ if foreign.is_some() => Evaluated {
                    outcome: Outcome::NotApplicable,
                    reason: foreign.map(|k| format!("the tenant has no {k} connector")),
                    signals: Vec::new(),
                    alternative: false,
                },
                (Some(rule), _) => {
                    let r = rule.evaluate(&env, def.risk);
                    Evaluated {
                        outcome: r.outcome,
                        reason: r.reason,
                        signals: r.signals,
                        alternative: false,
                    }
                }
                (None, Some((k, item))) => self.families[k].outcome(&view, item, def.risk),
                (None, None) => Evaluated {
                    outcome: Outcome::Unknown(Undetected::NoRule),
                    reason: None,
                    signals: Vec::new(),
                    alternative: false,
                },
            };
            actions.push(action_result(
                def.id.clone(),
                action.title.clone(),
                action.category.clone(),
                action.solution.clone(),
                action.points,
                action.testing_logic.clone(),
                evaluated,
            ));
        }

        for ((family, taken), (solution, default_category)) in self
            .families
            .iter()
            .zip(&self.taken)
            .zip(&self.family_texts)
        {
            for item in family.item_ids(&view) {
                if taken.contains(item) || family.is_deprecated(&view, item) {
                    continue;
                }
                actions.push(action_result(
                    family.generated_id(item),
                    family
                        .latest_text(&view, item, "title")
                        .unwrap_or_else(|| item.to_string())
                        .into(),
                    family
                        .latest_text(&view, item, "category")
                        .map_or_else(|| default_category.clone(), Arc::from),
                    solution.clone(),
                    family.generated_points(&view, item),
                    family.testing_logic(item).into(),
                    family.outcome(&view, item, family.risk),
                ));
            }
        }

        actions.sort_by(|a, b| a.action_id.cmp(&b.action_id));
        actions
    }
}

impl TenantEvaluation {
    /// An evaluation scored over its own actions: the overall score and one per category
    /// (sorted by name), both by [`summarise`].
    pub fn from_actions(tenant: &str, at: DateTime<Utc>, actions: Vec<ActionResult>) -> Self {
        let score = summarise(actions.iter());
        let mut by_category: BTreeMap<&str, Vec<&ActionResult>> = BTreeMap::new();
        for a in &actions {
            by_category.entry(&a.category).or_default().push(a);
        }
        let categories = by_category
            .into_iter()
            .map(|(c, list)| (c.to_string(), summarise(list.into_iter())))
            .collect();
        TenantEvaluation {
            tenant: tenant.to_string(),
            evaluated_at: at,
            actions,
            score,
            categories,
        }
    }
}

/// Status, credit and points of one action from its outcome.
fn action_result(
    action_id: String,
    title: Arc<str>,
    category: Arc<str>,
    solution: Arc<str>,
    points: u32,
    testing_logic: Arc<str>,
    evaluated: Evaluated,
) -> ActionResult {
    let test_status = evaluated.outcome.test_status();
    let implementation_status = implementation_status(test_status, evaluated.alternative);
    let out_of_scope = test_status == TestStatus::OutOfScope
        || implementation_status == ImplementationStatus::OutOfScope;
    let credit = if out_of_scope {
        0.0
    } else {
        evaluated.outcome.credit()
    };
    let possible = if out_of_scope { 0.0 } else { f64::from(points) };
    ActionResult {
        action_id,
        title,
        category,
        solution,
        implementation_status,
        test_status,
        credit,
        points,
        points_achieved: possible * credit,
        points_possible: possible,
        testing_logic,
        reason: evaluated.reason,
        cause: evaluated.outcome.cause().cloned(),
        signals: evaluated.signals,
    }
}

/// Implementation status derived from an automatic test: `passed` -> implemented,
/// `out_of_scope` -> out of scope, anything else (failed, partially tested, could not be
/// detected) -> not implemented; a family item's alternative state (Secure Score
/// `thirdparty`/`reviewed`) -> alternative implementation (unless out of scope).
pub fn implementation_status(test: TestStatus, alternative: bool) -> ImplementationStatus {
    match test {
        TestStatus::OutOfScope => ImplementationStatus::OutOfScope,
        _ if alternative => ImplementationStatus::AlternativeImplementation,
        TestStatus::Passed => ImplementationStatus::Implemented,
        _ => ImplementationStatus::NotImplemented,
    }
}

/// Σ achieved / Σ possible over a set of action instances (out-of-scope ones add 0 to both).
pub fn summarise<'a>(actions: impl Iterator<Item = &'a ActionResult>) -> ScoreSummary {
    let (achieved, possible) = actions.fold((0.0, 0.0), |(a, p), r| {
        (a + r.points_achieved, p + r.points_possible)
    });
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

/// Credits closer than this are equal (no transition).
pub const CREDIT_EPSILON: f64 = 1e-9;

/// Transitions from the previous stored states (keyed by action id, the ids shared:
/// [`crate::signals::intern`]) to a new evaluation (status or credit changed, or the action is
/// new), in action-id order, each stamped with `evaluated_at`. Actions that disappeared
/// produce nothing.
pub fn transitions(
    previous: &crate::evaluation::ActionMap<ActionState>,
    current: &TenantEvaluation,
) -> Vec<Transition> {
    current
        .actions
        .iter()
        .filter_map(|a| {
            let prev = previous.get(a.action_id.as_str());
            let changed = match prev {
                None => true,
                Some(p) => {
                    p.test_status != a.test_status || (p.credit - a.credit).abs() > CREDIT_EPSILON
                }
            };
            changed.then(|| Transition {
                action_id: a.action_id.clone(),
                from_status: prev.map(|p| p.test_status),
                to_status: a.test_status,
                from_credit: prev.map(|p| p.credit),
                to_credit: a.credit,
                points_achieved: a.points_achieved,
                points_possible: a.points_possible,
                reason: a.reason.clone(),
                signals: a.signals.clone(),
                at: current.evaluated_at,
            })
        })
        .collect()
}

impl ActionResult {
    /// The state to store for this result, starting at `since`.
    pub fn state(&self, since: DateTime<Utc>) -> ActionState {
        ActionState {
            test_status: self.test_status,
            credit: self.credit,
            points_achieved: self.points_achieved,
            points_possible: self.points_possible,
            since,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluation::family::item_points;
    use crate::evaluation::testutil::{expired, fresh, gap, now};

    const EPS: f64 = 1e-9;

    fn evaluator(toml: &str) -> Evaluator {
        Evaluator::new(Catalog::from_toml_str(toml).unwrap_or_else(|e| panic!("{e:#?}")))
            .unwrap_or_else(|e| panic!("{e:#?}"))
    }

    fn action_toml(id: &str, purpose: &str, enforcement: &str, rule: &str) -> String {
        format!(
            "[[actions]]\nid = \"{id}\"\ntitle = \"{id}\"\ncategory = \"Test\"\nsolution = \"S\"\n\
             description = \"D\"\npurpose = \"{purpose}\"\nenforcement = \"{enforcement}\"\n\
             rule = '''{rule}'''\n"
        )
    }

    /// The evaluation of a Microsoft 365 tenant (its one connector kind is msgraph: the other
    /// built-in kinds' actions are out of scope).
    fn evaluate(ev: &Evaluator, signals: &[Signal], gaps: &[SignalGap]) -> TenantEvaluation {
        let input = EvaluationInput {
            tenant: "contoso",
            now: now(),
            signals,
            gaps,
        };
        let actions = ev.evaluate_actions_of(&input, &|k| k == "msgraph");
        TenantEvaluation::from_actions(input.tenant, input.now, actions)
    }

    fn find<'a>(e: &'a TenantEvaluation, id: &str) -> &'a ActionResult {
        e.actions
            .iter()
            .find(|a| a.action_id == id)
            .unwrap_or_else(|| panic!("no action {id} in {:?}", e.actions))
    }

    #[test]
    fn evaluator_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Evaluator>();
        assert_send_sync::<std::sync::Arc<Evaluator>>();
    }

    /// SCORING.md golden vector 3: MFA action (27), 40 of 50 users registered -> 21.6/27.
    #[test]
    fn golden_vector_3_partial_mfa() {
        let ev = Evaluator::builtin().unwrap_or_else(|e| panic!("{e:#?}"));
        let signals = [
            fresh("msgraph.mfa.users_total", 50.0),
            fresh("msgraph.mfa.registered_users", 40.0),
            fresh("msgraph.mfa.registered_ratio", 0.8),
        ];
        let e = evaluate(&ev, &signals, &[]);
        let a = find(&e, "msgraph.mfa.all_users");
        assert_eq!(a.points, 27);
        assert_eq!(a.test_status, TestStatus::PartiallyTested);
        assert_eq!(
            a.implementation_status,
            ImplementationStatus::NotImplemented
        );
        assert!((a.credit - 0.8).abs() < EPS);
        assert!(
            (a.points_achieved - 21.6).abs() < EPS,
            "{}",
            a.points_achieved
        );
        assert_eq!(a.points_possible, 27.0);
        assert_eq!(
            a.signals,
            vec![
                (
                    "msgraph.mfa.registered_ratio".into(),
                    SignalValue::Number(0.8)
                ),
                ("msgraph.mfa.users_total".into(), SignalValue::Number(50.0)),
            ]
        );
    }

    /// SCORING.md golden vector 4: an out-of-scope action (9) beside a failed action (27)
    /// -> 0/27, not 0/36.
    #[test]
    fn golden_vector_4_out_of_scope_leaves_denominator() {
        let toml = format!(
            "{}{}",
            action_toml("t.failed", "preventative", "mandatory", "false"),
            action_toml("t.oos", "preventative", "discretionary", "'not_applicable'")
        );
        let e = evaluate(&evaluator(&toml), &[], &[]);
        let oos = find(&e, "t.oos");
        assert_eq!(oos.points, 9);
        assert_eq!(oos.test_status, TestStatus::OutOfScope);
        assert_eq!(oos.implementation_status, ImplementationStatus::OutOfScope);
        assert_eq!((oos.points_achieved, oos.points_possible), (0.0, 0.0));
        let failed = find(&e, "t.failed");
        assert_eq!(failed.test_status, TestStatus::FailedMediumRisk);
        assert_eq!(
            e.score,
            ScoreSummary {
                points_achieved: 0.0,
                points_possible: 27.0,
                ratio: 0.0
            }
        );
        assert_eq!(e.categories, vec![("Test".to_string(), e.score)]);
    }

    /// SCORING.md golden vector 5 (status and points): a passed action whose signal expired ->
    /// could_not_be_detected, 0 points achieved, still counted as possible.
    #[test]
    fn golden_vector_5_stale_pass_is_not_a_pass() {
        let ev = Evaluator::builtin().unwrap_or_else(|e| panic!("{e:#?}"));
        let before = evaluate(&ev, &[fresh("msgraph.ca.mfa_all_users", true)], &[]);
        let a = find(&before, "msgraph.ca.mfa_all_users");
        assert_eq!(a.test_status, TestStatus::Passed);
        assert_eq!(a.points_achieved, 27.0);

        let after = evaluate(&ev, &[expired("msgraph.ca.mfa_all_users", true)], &[]);
        let a = find(&after, "msgraph.ca.mfa_all_users");
        assert_eq!(a.test_status, TestStatus::CouldNotBeDetected);
        assert_eq!(a.credit, 0.0);
        assert_eq!((a.points_achieved, a.points_possible), (0.0, 27.0));
        assert_eq!(
            a.reason.as_deref(),
            Some("stale: msgraph.ca.mfa_all_users expired at 2026-03-01T11:00:00Z")
        );
        assert!(a.signals.is_empty());
        let t = transitions(
            &before
                .actions
                .iter()
                .map(|a| {
                    (
                        Arc::from(a.action_id.as_str()),
                        a.state(before.evaluated_at),
                    )
                })
                .collect(),
            &after,
        );
        let t: Vec<_> = t
            .iter()
            .filter(|t| t.action_id == "msgraph.ca.mfa_all_users")
            .collect();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].from_status, Some(TestStatus::Passed));
        assert_eq!(t[0].to_status, TestStatus::CouldNotBeDetected);
    }

    #[test]
    fn collection_gap_is_never_a_failure() {
        let ev = Evaluator::builtin().unwrap_or_else(|e| panic!("{e:#?}"));
        let gaps = [gap(
            "msgraph.mfa.",
            "forbidden",
            "403 Authorization_RequestDenied",
        )];
        let e = evaluate(&ev, &[], &gaps);
        let a = find(&e, "msgraph.mfa.admins");
        assert_eq!(a.test_status, TestStatus::CouldNotBeDetected);
        assert_eq!(
            a.reason.as_deref(),
            Some("could not collect msgraph.mfa.*: forbidden (403 Authorization_RequestDenied)")
        );
    }

    /// Only undetected actions carry a cause, and their reason is its text.
    #[test]
    fn undetected_actions_carry_their_typed_cause() {
        let ev = Evaluator::builtin().unwrap_or_else(|e| panic!("{e:#?}"));
        let mut signals = full_signals();
        signals.retain(|s| &*s.key != "msgraph.ca.mfa_all_users");
        signals.push(expired("msgraph.ca.mfa_all_users", true));
        signals.retain(|s| {
            !s.key
                .starts_with("msgraph.securescore.controls.DLPEnabled.")
        });
        signals.push(fresh(
            "msgraph.securescore.controls.DLPEnabled.score",
            "high",
        ));
        signals.push(fresh(
            "msgraph.securescore.controls.DLPEnabled.max_score",
            10.0,
        ));
        let e = evaluate(&ev, &signals, &[]);
        for a in &e.actions {
            let undetected = a.test_status == TestStatus::CouldNotBeDetected;
            assert_eq!(a.cause.is_some(), undetected, "{}", a.action_id);
            if let Some(cause) = &a.cause {
                assert_eq!(a.reason, Some(cause.to_string()), "{}", a.action_id);
            }
        }
        assert_eq!(
            find(&e, "msgraph.ca.mfa_all_users").cause,
            Some(Undetected::Stale {
                key: "msgraph.ca.mfa_all_users".into(),
                expired_at: now() - chrono::Duration::hours(1),
            })
        );
        assert_eq!(
            find(&e, "msgraph.securescore.dlp").cause,
            Some(Undetected::NotANumber {
                key: "msgraph.securescore.controls.DLPEnabled.score".into()
            })
        );
        // JSON keeps its shape for decided actions: no `cause` key
        let passed = find(&e, "msgraph.mfa.admins");
        let json = serde_json::to_value(passed).unwrap();
        assert!(json.get("cause").is_none(), "{json}");
        let back: ActionResult = serde_json::from_value(json).unwrap();
        assert_eq!(&back, passed);
    }

    #[test]
    fn no_admins_is_not_applicable() {
        let ev = Evaluator::builtin().unwrap_or_else(|e| panic!("{e:#?}"));
        let e = evaluate(&ev, &[fresh("msgraph.mfa.admins_total", 0.0)], &[]);
        let a = find(&e, "msgraph.mfa.admins");
        assert_eq!(a.test_status, TestStatus::OutOfScope);
        assert_eq!(a.points_possible, 0.0);
    }

    /// The tenant-wide SCuBA actions from their signals: pass, fail (with the reason), the
    /// baseline's not-applicable cases, and undetected without the signal (a gap).
    #[test]
    fn scuba_tenant_wide_rules() {
        let ev = Evaluator::builtin().unwrap_or_else(|e| panic!("{e:#?}"));
        let k = |s: &str| format!("msgraph.{s}");
        type Row = (&'static str, Vec<Signal>, TestStatus, &'static str);
        let rows: Vec<Row> = vec![
            // MS.AAD.3.3v1: not applicable when 3.1 is met or Authenticator is off.
            (
                "msgraph.auth_methods.authenticator_context",
                vec![fresh(&k("ca.scuba.aad_3_1.met"), true)],
                TestStatus::OutOfScope,
                "phishing-resistant MFA is enforced",
            ),
            (
                "msgraph.auth_methods.authenticator_context",
                vec![
                    fresh(&k("ca.scuba.aad_3_1.met"), false),
                    fresh(&k("auth_methods.authenticator_enabled"), false),
                ],
                TestStatus::OutOfScope,
                "Microsoft Authenticator is disabled",
            ),
            (
                "msgraph.auth_methods.authenticator_context",
                vec![
                    fresh(&k("ca.scuba.aad_3_1.met"), false),
                    fresh(&k("auth_methods.authenticator_enabled"), true),
                    fresh(&k("auth_methods.authenticator_context"), true),
                ],
                TestStatus::Passed,
                "",
            ),
            // MS.AAD.3.5v1: not applicable before the migration is complete.
            (
                "msgraph.auth_methods.weak_methods_disabled",
                vec![fresh(&k("auth_methods.migration_complete"), false)],
                TestStatus::OutOfScope,
                "migration",
            ),
            (
                "msgraph.auth_methods.weak_methods_disabled",
                vec![
                    fresh(&k("auth_methods.migration_complete"), true),
                    fresh(&k("auth_methods.weak_methods_enabled_total"), 2.0),
                    fresh(&k("auth_methods.weak_methods_enabled"), "Sms, Voice"),
                ],
                TestStatus::FailedMediumRisk,
                "enabled: Sms, Voice",
            ),
            (
                "msgraph.auth_methods.migration_complete",
                vec![
                    fresh(&k("auth_methods.migration_complete"), false),
                    fresh(&k("auth_methods.migration_state"), "migrationInProgress"),
                ],
                TestStatus::FailedMediumRisk,
                "migrationInProgress",
            ),
            (
                "msgraph.apps.admin_consent_only",
                vec![
                    fresh(&k("authorization.user_consent_policies_total"), 1.0),
                    fresh(
                        &k("authorization.user_consent_policies"),
                        "ManagePermissionGrantsForSelf.microsoft-user-default-low",
                    ),
                ],
                TestStatus::FailedHighRisk,
                "microsoft-user-default-low",
            ),
            (
                "msgraph.apps.admin_consent_workflow",
                vec![fresh(&k("admin_consent.enabled"), true)],
                TestStatus::Passed,
                "",
            ),
            (
                "msgraph.passwords.never_expire",
                vec![
                    fresh(&k("domains.password_expiry_met"), false),
                    fresh(&k("domains.expiring_total"), 0.0),
                ],
                TestStatus::FailedLowRisk,
                "no verified managed domain",
            ),
            (
                "msgraph.guests.access_restricted",
                vec![
                    fresh(&k("authorization.guest_access_restricted"), false),
                    fresh(
                        &k("authorization.guest_access"),
                        "the same access as members",
                    ),
                ],
                TestStatus::FailedMediumRisk,
                "guests have the same access as members",
            ),
            (
                "msgraph.guests.invites_limited",
                vec![],
                TestStatus::CouldNotBeDetected,
                "",
            ),
        ];
        for (id, signals, status, reason) in rows {
            let e = evaluate(&ev, &signals, &[]);
            let a = find(&e, id);
            assert_eq!(a.test_status, status, "{id}: {a:?}");
            assert!(
                a.reason.as_deref().unwrap_or("").contains(reason),
                "{id}: {a:?}"
            );
        }
    }

    /// SCuBA MS.AAD.1.1v1: only a conditional access policy meets it; security defaults are
    /// named in the reason of the failure, not counted.
    #[test]
    fn legacy_auth_rule_follows_scuba_1_1() {
        let ev = Evaluator::builtin().unwrap_or_else(|e| panic!("{e:#?}"));
        let id = "msgraph.ca.legacy_auth_blocked";
        let ca = "msgraph.ca.legacy_auth_blocked";
        let detail = "msgraph.ca.scuba.aad_1_1.detail";
        let why = "no enabled conditional access policy blocks legacy authentication for all users";
        let sd = "msgraph.security_defaults.enabled";
        let table: Vec<(Vec<Signal>, TestStatus, Option<&str>)> = vec![
            (vec![fresh(ca, true)], TestStatus::Passed, None),
            (
                vec![fresh(ca, false), fresh(detail, why), fresh(sd, true)],
                TestStatus::FailedHighRisk,
                Some("security defaults are on"),
            ),
            (
                vec![fresh(ca, false), fresh(detail, why), fresh(sd, false)],
                TestStatus::FailedHighRisk,
                Some(why),
            ),
            (
                vec![fresh(ca, false), fresh(detail, why)],
                TestStatus::FailedHighRisk,
                Some(why),
            ),
            (vec![fresh(sd, true)], TestStatus::CouldNotBeDetected, None),
            (vec![], TestStatus::CouldNotBeDetected, None),
        ];
        for (signals, status, reason) in table {
            let e = evaluate(&ev, &signals, &[]);
            let a = find(&e, id);
            assert_eq!(a.test_status, status, "{signals:?}");
            if let Some(r) = reason {
                assert!(a.reason.as_deref().unwrap_or("").contains(r), "{a:?}");
            }
        }
    }

    fn control(id: &str, score: f64, max: f64, state: &str) -> Vec<Signal> {
        let k = |f: &str| format!("msgraph.securescore.controls.{id}.{f}");
        vec![
            fresh(&k("score"), score),
            fresh(&k("max_score"), max),
            fresh(&k("title"), format!("Title of {id}").as_str()),
            fresh(&k("category"), "Identity"),
            fresh(&k("state"), state),
            fresh(&k("deprecated"), false),
        ]
    }

    #[test]
    fn secure_score_generated_actions_and_states() {
        let ev = Evaluator::builtin().unwrap_or_else(|e| panic!("{e:#?}"));
        let mut signals = Vec::new();
        signals.extend(control("PartlyDone", 5.0, 10.0, "default"));
        signals.extend(control("Ignored", 0.0, 8.0, "ignored"));
        signals.extend(control("ThirdParty", 3.0, 3.0, "thirdParty"));
        signals.extend(control("Reviewed", 0.0, 2.0, "reviewed"));
        signals.extend(control("Huge", 150.0, 150.0, "default"));
        signals.extend(control("Tiny", 0.0, 0.4, "default"));
        signals.extend(control("Over", 12.0, 10.0, "default"));
        signals.extend(control("Old", 1.0, 5.0, "default"));
        signals.push(fresh("msgraph.securescore.controls.Old.deprecated", true));
        signals.retain(|s| {
            !(&*s.key == "msgraph.securescore.controls.Old.deprecated"
                && s.value == SignalValue::Bool(false))
        });
        signals.extend(control("AdminMFAV2", 2.5, 10.0, "default"));
        let e = evaluate(&ev, &signals, &[]);

        // (id, points, test status, implementation status, credit, possible)
        let table = [
            (
                "securescore.PartlyDone",
                10,
                TestStatus::PartiallyTested,
                ImplementationStatus::NotImplemented,
                0.5,
                10.0,
            ),
            (
                "securescore.Ignored",
                8,
                TestStatus::OutOfScope,
                ImplementationStatus::OutOfScope,
                0.0,
                0.0,
            ),
            (
                "securescore.ThirdParty",
                3,
                TestStatus::Passed,
                ImplementationStatus::AlternativeImplementation,
                1.0,
                3.0,
            ),
            (
                "securescore.Reviewed",
                2,
                TestStatus::FailedMediumRisk,
                ImplementationStatus::AlternativeImplementation,
                0.0,
                2.0,
            ),
            (
                "securescore.Huge",
                99,
                TestStatus::Passed,
                ImplementationStatus::Implemented,
                1.0,
                99.0,
            ),
            (
                "securescore.Tiny",
                1,
                TestStatus::FailedMediumRisk,
                ImplementationStatus::NotImplemented,
                0.0,
                1.0,
            ),
            (
                "securescore.Over",
                10,
                TestStatus::Passed,
                ImplementationStatus::Implemented,
                1.0,
                10.0,
            ),
            // the catalog action referencing AdminMFAV2 takes its credit, with its own points
            (
                "msgraph.securescore.admin_mfa",
                10,
                TestStatus::PartiallyTested,
                ImplementationStatus::NotImplemented,
                0.25,
                10.0,
            ),
        ];
        for (id, points, test, implementation, credit, possible) in table {
            let a = find(&e, id);
            assert_eq!(a.points, points, "{id}");
            assert_eq!(a.test_status, test, "{id}");
            assert_eq!(a.implementation_status, implementation, "{id}");
            assert!((a.credit - credit).abs() < EPS, "{id}: {}", a.credit);
            assert_eq!(a.points_possible, possible, "{id}");
        }
        let generated = find(&e, "securescore.PartlyDone");
        assert_eq!(&*generated.title, "Title of PartlyDone");
        assert_eq!(&*generated.category, "Identity");
        assert_eq!(&*generated.solution, "Microsoft Secure Score");
        assert_eq!(
            &*generated.testing_logic,
            "msgraph.securescore.controls.PartlyDone.score / msgraph.securescore.controls.PartlyDone.max_score"
        );
        assert!(
            generated
                .signals
                .iter()
                .any(|(k, _)| k.ends_with("PartlyDone.score"))
        );
        // deprecated and referenced controls generate nothing
        assert!(e.actions.iter().all(|a| a.action_id != "securescore.Old"));
        assert!(
            e.actions
                .iter()
                .all(|a| a.action_id != "securescore.AdminMFAV2")
        );
    }

    #[test]
    fn stale_secure_score_control_is_not_detected() {
        let ev = Evaluator::builtin().unwrap_or_else(|e| panic!("{e:#?}"));
        let signals = [
            expired("msgraph.securescore.controls.MFARegistrationV2.score", 9.0),
            expired(
                "msgraph.securescore.controls.MFARegistrationV2.max_score",
                9.0,
            ),
            expired(
                "msgraph.securescore.controls.MFARegistrationV2.title",
                "Ensure MFA",
            ),
        ];
        let e = evaluate(&ev, &signals, &[]);
        let a = find(&e, "securescore.MFARegistrationV2");
        assert_eq!(a.test_status, TestStatus::CouldNotBeDetected);
        assert_eq!(a.points, 9);
        assert_eq!((a.points_achieved, a.points_possible), (0.0, 9.0));
        assert_eq!(&*a.title, "Ensure MFA");
        assert_eq!(
            a.reason.as_deref(),
            Some(
                "stale: msgraph.securescore.controls.MFARegistrationV2.score expired at 2026-03-01T11:00:00Z"
            )
        );
        // a catalog action referencing a control that was never seen
        let dlp = find(&e, "msgraph.securescore.dlp");
        assert_eq!(dlp.test_status, TestStatus::CouldNotBeDetected);
        assert_eq!(
            dlp.reason.as_deref(),
            Some("signal msgraph.securescore.controls.DLPEnabled.score not available")
        );
    }

    #[test]
    fn evaluation_is_deterministic_and_sorted() {
        let ev = Evaluator::builtin().unwrap_or_else(|e| panic!("{e:#?}"));
        let mut signals = full_signals();
        let a = evaluate(&ev, &signals, &[]);
        signals.reverse();
        let b = evaluate(&ev, &signals, &[]);
        assert_eq!(a, b);
        let ids: Vec<_> = a.actions.iter().map(|a| a.action_id.clone()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        let cats: Vec<_> = a.categories.iter().map(|c| c.0.clone()).collect();
        let mut sorted = cats.clone();
        sorted.sort();
        assert_eq!(cats, sorted);
        // overall = Σ achieved / Σ possible, and category sums add up to it
        let achieved: f64 = a.actions.iter().map(|x| x.points_achieved).sum();
        let possible: f64 = a.actions.iter().map(|x| x.points_possible).sum();
        assert!((a.score.points_achieved - achieved).abs() < EPS);
        assert!((a.score.ratio - achieved / possible).abs() < EPS);
        let cat_possible: f64 = a.categories.iter().map(|c| c.1.points_possible).sum();
        assert!((cat_possible - possible).abs() < EPS);
    }

    /// A healthy tenant: every built-in rule decides.
    fn full_signals() -> Vec<Signal> {
        let mut s = vec![
            fresh("msgraph.mfa.users_total", 50.0),
            fresh("msgraph.mfa.registered_users", 40.0),
            fresh("msgraph.mfa.registered_ratio", 0.8),
            fresh("msgraph.mfa.capable_ratio", 0.7),
            fresh("msgraph.mfa.members_total", 45.0),
            fresh("msgraph.mfa.members_registered_ratio", 0.8),
            fresh("msgraph.mfa.admins_total", 2.0),
            fresh("msgraph.mfa.admins_registered_ratio", 1.0),
            fresh("msgraph.mfa.sspr_registered_ratio", 0.5),
            fresh("msgraph.mfa.passwordless_capable_ratio", 0.1),
            fresh("msgraph.ca.policies_total", 4.0),
            fresh("msgraph.ca.enabled_total", 3.0),
            fresh("msgraph.ca.report_only_total", 1.0),
            fresh("msgraph.ca.mfa_policies_total", 2.0),
            fresh("msgraph.ca.mfa_all_users", true),
            fresh("msgraph.ca.mfa_admins", true),
            fresh(
                "msgraph.ca.mfa_admins_detail",
                "satisfied by: MFA for everyone",
            ),
            fresh("msgraph.ca.legacy_auth_blocked", false),
            fresh("msgraph.ca.compliant_device_required", false),
            fresh("msgraph.licences.aad_premium_p2", true),
            fresh("msgraph.auth_methods.migration_complete", true),
            fresh("msgraph.auth_methods.migration_state", "migrationComplete"),
            fresh("msgraph.auth_methods.authenticator_enabled", true),
            fresh("msgraph.auth_methods.authenticator_context", false),
            fresh(
                "msgraph.auth_methods.authenticator_context_detail",
                "showing the sign-in location is default",
            ),
            fresh("msgraph.auth_methods.weak_methods_enabled_total", 1.0),
            fresh("msgraph.auth_methods.weak_methods_enabled", "Sms"),
            fresh("msgraph.authorization.users_can_register_apps", false),
            fresh("msgraph.authorization.user_consent_policies_total", 0.0),
            fresh("msgraph.authorization.user_consent_policies", ""),
            fresh("msgraph.authorization.guest_access", "limited access"),
            fresh("msgraph.authorization.guest_access_restricted", true),
            fresh("msgraph.authorization.invites_from", "everyone"),
            fresh("msgraph.authorization.invites_limited", false),
            fresh("msgraph.admin_consent.enabled", true),
            fresh("msgraph.domains.password_expiry_met", false),
            fresh("msgraph.domains.expiring_total", 1.0),
            fresh("msgraph.domains.expiring", "contoso.com"),
            fresh("msgraph.security_defaults.enabled", false),
            fresh("msgraph.labels.total", 3.0),
            fresh("msgraph.labels.protected_total", 0.0),
            fresh("msgraph.labels.protection_enabled", false),
            fresh("msgraph.securescore.current_score", 40.0),
            fresh("msgraph.securescore.max_score", 100.0),
            fresh("msgraph.securescore.ratio", 0.4),
        ];
        for (key, met) in [
            ("aad_1_1", false),
            ("aad_2_1", false),
            ("aad_2_3", true),
            ("aad_3_1", false),
            ("aad_3_2", true),
            ("aad_3_6", false),
            ("aad_3_7", false),
            ("aad_3_8", false),
        ] {
            s.push(fresh(&format!("msgraph.ca.scuba.{key}.met"), met));
            s.push(fresh(
                &format!("msgraph.ca.scuba.{key}.detail"),
                if met {
                    "satisfied by: P"
                } else {
                    "no enabled conditional access policy"
                },
            ));
        }
        s.extend(privileged_signals(&[
            ("roles", 1, 3, true),
            ("pim_assignments", 4, 5, false),
        ]));
        s.extend(privileged_signals(&[("pim_policies", 6, 9, true)]));
        s.extend(control("AdminMFAV2", 10.0, 10.0, "default"));
        s.extend(control("DLPEnabled", 0.0, 10.0, "default"));
        s.extend(control("MFARegistrationV2", 4.5, 9.0, "default"));
        s
    }

    /// `msgraph.privileged.<ns>.scuba.aad_7_<n>.met` / `.detail` for each `(ns, first, last,
    /// met)`.
    fn privileged_signals(rows: &[(&str, u8, u8, bool)]) -> Vec<Signal> {
        let mut s = Vec::new();
        for (ns, first, last, met) in rows {
            for n in *first..=*last {
                let key = |f: &str| format!("msgraph.privileged.{ns}.scuba.aad_7_{n}.{f}");
                s.push(fresh(&key("met"), *met));
                s.push(fresh(&key("detail"), format!("7.{n} detail").as_str()));
            }
        }
        s
    }

    /// SCuBA MS.AAD.7: 7.1–7.3 need no licence; 7.4–7.9 (PIM) are not applicable without
    /// Entra ID P2, and with it a gap on their namespace leaves them undetected.
    #[test]
    fn privileged_access_actions_follow_p2() {
        let ev = Evaluator::builtin().unwrap_or_else(|e| panic!("{e:#?}"));
        let pim = [
            "msgraph.privileged.no_permanent_assignments",
            "msgraph.privileged.assigned_through_pim",
            "msgraph.privileged.ga_activation_approval",
            "msgraph.privileged.assignment_alerts",
            "msgraph.privileged.ga_activation_alert",
            "msgraph.privileged.activation_alerts",
        ];
        // No P2, and the PIM endpoints forbidden: not applicable, with the reason.
        let mut signals = vec![fresh("msgraph.licences.aad_premium_p2", false)];
        signals.extend(privileged_signals(&[("roles", 1, 3, false)]));
        let gaps = [
            gap("msgraph.privileged.pim_assignments.", "forbidden", "403"),
            gap("msgraph.privileged.pim_policies.", "forbidden", "403"),
        ];
        let e = evaluate(&ev, &signals, &gaps);
        for id in pim {
            let a = find(&e, id);
            assert_eq!(a.test_status, TestStatus::OutOfScope, "{id}");
            assert!(a.reason.as_deref().unwrap().contains("Entra ID P2"), "{id}");
        }
        let ga = find(&e, "msgraph.privileged.global_admins_count");
        assert_eq!(ga.test_status, TestStatus::FailedHighRisk);
        assert_eq!(ga.reason.as_deref(), Some("7.1 detail"));
        // P2: the gaps leave the PIM actions undetected, naming the gap.
        signals[0] = fresh("msgraph.licences.aad_premium_p2", true);
        let e = evaluate(&ev, &signals, &gaps);
        for id in pim {
            let a = find(&e, id);
            assert_eq!(a.test_status, TestStatus::CouldNotBeDetected, "{id}");
            assert!(
                a.reason.as_deref().unwrap().contains("could not collect"),
                "{id}: {:?}",
                a.reason
            );
        }
        // 7.1-7.3 need no licence: a gap on the roles leaves them undetected, naming it.
        let roles_gap = [gap(
            "msgraph.privileged.roles.",
            "forbidden",
            "403 on /users",
        )];
        let e = evaluate(&ev, &signals[..1], &roles_gap);
        for id in [
            "msgraph.privileged.global_admins_count",
            "msgraph.privileged.least_privilege",
            "msgraph.privileged.cloud_only",
        ] {
            let a = find(&e, id);
            assert_eq!(a.test_status, TestStatus::CouldNotBeDetected, "{id}");
            assert!(
                a.reason.as_deref().unwrap().contains("403 on /users"),
                "{id}: {:?}",
                a.reason
            );
        }
        // 7.9 is a Should: a failure is low risk.
        signals.extend(privileged_signals(&[("pim_policies", 9, 9, false)]));
        let e = evaluate(&ev, &signals, &gaps);
        assert_eq!(
            find(&e, "msgraph.privileged.activation_alerts").test_status,
            TestStatus::FailedLowRisk
        );
    }

    #[test]
    fn builtin_catalog_on_a_healthy_tenant() {
        let ev = Evaluator::builtin().unwrap_or_else(|e| panic!("{e:#?}"));
        let e = evaluate(&ev, &full_signals(), &[]);
        let undecided: Vec<_> = e
            .actions
            .iter()
            .filter(|a| a.test_status == TestStatus::CouldNotBeDetected)
            .map(|a| (&a.action_id, &a.reason))
            .collect();
        assert!(undecided.is_empty(), "{undecided:#?}");
        let table = [
            ("msgraph.mfa.admins", TestStatus::Passed),
            ("msgraph.ca.legacy_auth_blocked", TestStatus::FailedHighRisk),
            (
                "msgraph.ca.high_risk_users_blocked",
                TestStatus::FailedHighRisk,
            ),
            ("msgraph.ca.high_risk_sign_ins_blocked", TestStatus::Passed),
            (
                "msgraph.ca.phishing_resistant_mfa",
                TestStatus::FailedHighRisk,
            ),
            (
                "msgraph.ca.managed_device_registration",
                TestStatus::FailedMediumRisk,
            ),
            (
                "msgraph.auth_methods.authenticator_context",
                TestStatus::FailedMediumRisk,
            ),
            (
                "msgraph.auth_methods.weak_methods_disabled",
                TestStatus::FailedMediumRisk,
            ),
            ("msgraph.apps.admin_registration_only", TestStatus::Passed),
            (
                "msgraph.guests.invites_limited",
                TestStatus::FailedMediumRisk,
            ),
            ("msgraph.passwords.never_expire", TestStatus::FailedLowRisk),
            ("msgraph.security_defaults.baseline", TestStatus::OutOfScope),
            ("msgraph.labels.protection", TestStatus::FailedMediumRisk),
            ("msgraph.securescore.overall", TestStatus::PartiallyTested),
            ("msgraph.securescore.admin_mfa", TestStatus::Passed),
            ("msgraph.privileged.cloud_only", TestStatus::Passed),
            (
                "msgraph.privileged.no_permanent_assignments",
                TestStatus::FailedHighRisk,
            ),
            ("msgraph.privileged.assignment_alerts", TestStatus::Passed),
            ("msgraph.securescore.dlp", TestStatus::FailedMediumRisk),
            ("securescore.MFARegistrationV2", TestStatus::PartiallyTested),
        ];
        for (id, status) in table {
            assert_eq!(find(&e, id).test_status, status, "{id}");
        }
        let sd = find(&e, "msgraph.security_defaults.baseline");
        assert_eq!(
            sd.reason.as_deref(),
            Some("conditional access policies enforce MFA for all users instead")
        );
        let overall = find(&e, "msgraph.securescore.overall");
        assert!((overall.credit - 0.4 / 0.7).abs() < EPS);
    }

    #[test]
    fn empty_catalog_scores_zero() {
        let ev = Evaluator::new(Catalog::default()).expect("empty catalog");
        let e = evaluate(&ev, &[], &[]);
        assert!(e.actions.is_empty());
        assert_eq!(e.score, ScoreSummary::default());
        assert_eq!(e.tenant, "contoso");
        assert_eq!(e.evaluated_at, now());
    }

    #[test]
    fn invalid_catalog_is_rejected_by_new() {
        let mut catalog =
            Catalog::from_toml_str(&action_toml("t.a", "detective", "mandatory", "true"))
                .expect("valid");
        catalog.actions[0].points = Some(120);
        catalog.actions[0].rule = "(".to_string();
        let errors = Evaluator::new(catalog).expect_err("invalid");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(
            errors[0].to_string(),
            "actions[0].points: 120 is not in 1..=99"
        );
    }

    fn state(status: TestStatus, credit: f64) -> ActionState {
        ActionState {
            test_status: status,
            credit,
            points_achieved: 27.0 * credit,
            points_possible: 27.0,
            since: now() - chrono::Duration::hours(1),
        }
    }

    #[test]
    fn transitions_on_new_status_and_credit_changes() {
        let toml = action_toml(
            "t.mfa",
            "preventative",
            "mandatory",
            "msgraph.mfa.registered_ratio",
        );
        let ev = evaluator(&toml);
        let e = evaluate(&ev, &[fresh("msgraph.mfa.registered_ratio", 0.8)], &[]);
        let id = "t.mfa".to_string();
        // (previous state, expected transition from)
        let table: Vec<(Option<ActionState>, Option<Option<TestStatus>>)> = vec![
            (None, Some(None)),
            (Some(state(TestStatus::PartiallyTested, 0.8)), None),
            (Some(state(TestStatus::PartiallyTested, 0.8 + 1e-12)), None),
            (
                Some(state(TestStatus::PartiallyTested, 0.9)),
                Some(Some(TestStatus::PartiallyTested)),
            ),
            (
                Some(state(TestStatus::Passed, 1.0)),
                Some(Some(TestStatus::Passed)),
            ),
            (
                Some(state(TestStatus::CouldNotBeDetected, 0.0)),
                Some(Some(TestStatus::CouldNotBeDetected)),
            ),
        ];
        for (prev, expected) in table {
            let previous: crate::evaluation::ActionMap<ActionState> = prev
                .clone()
                .map(|p| (Arc::from(id.as_str()), p))
                .into_iter()
                .collect();
            let t = transitions(&previous, &e);
            match expected {
                None => assert!(t.is_empty(), "{prev:?}: {t:?}"),
                Some(from) => {
                    assert_eq!(t.len(), 1, "{prev:?}");
                    let t = &t[0];
                    assert_eq!(t.action_id, id);
                    assert_eq!(t.from_status, from);
                    assert_eq!(t.from_credit, prev.as_ref().map(|p| p.credit));
                    assert_eq!(t.to_status, TestStatus::PartiallyTested);
                    assert!((t.to_credit - 0.8).abs() < EPS);
                    assert!((t.points_achieved - 21.6).abs() < EPS);
                    assert_eq!(t.points_possible, 27.0);
                    assert_eq!(t.at, now());
                    assert_eq!(
                        t.signals,
                        vec![(
                            "msgraph.mfa.registered_ratio".into(),
                            SignalValue::Number(0.8)
                        )]
                    );
                }
            }
        }
    }

    #[test]
    fn transition_carries_the_reason() {
        let toml = action_toml(
            "t.mfa",
            "preventative",
            "mandatory",
            "msgraph.mfa.registered_ratio",
        );
        let ev = evaluator(&toml);
        let gaps = [gap("msgraph.mfa.", "throttled", "429 retries exhausted")];
        let e = evaluate(&ev, &[], &gaps);
        let previous = crate::evaluation::ActionMap::from_iter([(
            Arc::<str>::from("t.mfa"),
            state(TestStatus::Passed, 1.0),
        )]);
        let t = transitions(&previous, &e);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].to_status, TestStatus::CouldNotBeDetected);
        assert_eq!(
            t[0].reason.as_deref(),
            Some("could not collect msgraph.mfa.*: throttled (429 retries exhausted)")
        );
    }

    #[test]
    fn secure_score_points_rule() {
        let table = [
            (None, 1),
            (Some(f64::NAN), 1),
            (Some(0.0), 1),
            (Some(0.4), 1),
            (Some(2.5), 3),
            (Some(10.0), 10),
            (Some(99.4), 99),
            (Some(150.0), 99),
        ];
        for (max, points) in table {
            assert_eq!(item_points(max), points, "{max:?}");
        }
    }
}

#[cfg(test)]
mod perf {
    use super::*;
    use crate::evaluation::testutil::fresh;

    /// Rough throughput check: `cargo test -p postured --lib evaluation::evaluator::perf -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing, run by hand"]
    fn evaluate_2000_tenants() {
        let ev = Evaluator::builtin().unwrap_or_else(|e| panic!("{e:#?}"));
        let mut signals = vec![
            fresh("msgraph.mfa.users_total", 500.0),
            fresh("msgraph.mfa.registered_ratio", 0.8),
            fresh("msgraph.mfa.admins_total", 0.0),
            fresh("msgraph.ca.mfa_all_users", true),
            fresh("msgraph.security_defaults.enabled", false),
        ];
        for i in 0..80 {
            for (f, v) in [("score", 1.0), ("max_score", 5.0)] {
                signals.push(fresh(&format!("msgraph.securescore.controls.C{i}.{f}"), v));
            }
            signals.push(fresh(
                &format!("msgraph.securescore.controls.C{i}.title"),
                "t",
            ));
            signals.push(fresh(
                &format!("msgraph.securescore.controls.C{i}.state"),
                "default",
            ));
        }
        let start = std::time::Instant::now();
        let mut total = 0.0;
        for _ in 0..2000 {
            let e = ev.evaluate(&EvaluationInput {
                tenant: "t",
                now: crate::evaluation::testutil::now(),
                signals: &signals,
                gaps: &[],
            });
            total += e.score.ratio;
        }
        println!(
            "2000 evaluations of {} signals: {:?} ({total})",
            signals.len(),
            start.elapsed()
        );
    }
}
