//! Per-tenant evaluation: every action's status and points, the overall and per-category score,
//! and the status transitions since the previous evaluation.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use cel_interpreter::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::catalog::{ActionDef, Catalog, CatalogError, SECURE_SCORE_ID_PREFIX};
use super::points::{MAX_POINTS, MIN_POINTS};
use super::rules::{CompiledRule, Outcome, RuleEnv, SignalView};
use super::status::Risk;
use super::{ImplementationStatus, TestStatus};
use crate::signals::{Signal, SignalGap, SignalValue};

/// What the evaluator needs for one tenant. `signals` holds the latest value per key (fresh or
/// expired: expiry is judged against `now`); `gaps` the namespaces the latest polls could not
/// collect.
#[derive(Debug, Clone, Copy)]
pub struct EvaluationInput<'a> {
    pub tenant: &'a str,
    pub now: DateTime<Utc>,
    pub signals: &'a [Signal],
    pub gaps: &'a [SignalGap],
}

/// One improvement action's evaluated state for a tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionResult {
    /// Stable action id (`msgraph.mfa.all_users`, or `securescore.<controlName>`).
    pub action_id: String,
    pub title: String,
    pub category: String,
    pub solution: String,
    pub implementation_status: ImplementationStatus,
    pub test_status: TestStatus,
    /// Credit in [0, 1] (SCORING.md): 1 passed, f partial, 0 otherwise.
    pub credit: f64,
    /// The action's points (1..=99).
    pub points: u32,
    /// points × credit; 0 when out of scope.
    pub points_achieved: f64,
    /// points; 0 when out of scope.
    pub points_possible: f64,
    /// The rule text shown to users as the action's testing logic.
    pub testing_logic: String,
    /// Why the status is what it is when not plainly passed (failure detail, missing or stale
    /// signal, collection error).
    pub reason: Option<String>,
    /// Signals the rule read, with their values, for the audit trail.
    pub signals: Vec<(String, SignalValue)>,
}

/// Points and ratio over a set of action instances.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ScoreSummary {
    pub points_achieved: f64,
    pub points_possible: f64,
    /// points_achieved / points_possible in [0, 1]; 0 when nothing is possible.
    pub ratio: f64,
}

/// A tenant's evaluation at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantEvaluation {
    pub tenant: String,
    pub evaluated_at: DateTime<Utc>,
    /// Sorted by action id.
    pub actions: Vec<ActionResult>,
    pub score: ScoreSummary,
    /// Sorted by category name.
    pub categories: Vec<(String, ScoreSummary)>,
}

/// The last stored state of one action instance (what transitions are computed against).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionState {
    pub test_status: TestStatus,
    pub credit: f64,
    pub points_achieved: f64,
    pub points_possible: f64,
    /// When the current status began.
    pub since: DateTime<Utc>,
}

/// A change of an action instance's test status or credit between two evaluations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub action_id: String,
    /// `None` the first time the action is evaluated for the tenant.
    pub from_status: Option<TestStatus>,
    pub to_status: TestStatus,
    pub from_credit: Option<f64>,
    pub to_credit: f64,
    pub points_achieved: f64,
    pub points_possible: f64,
    pub reason: Option<String>,
    pub signals: Vec<(String, SignalValue)>,
    pub at: DateTime<Utc>,
}

/// A catalog action ready to evaluate: its rule compiled once.
struct CompiledAction {
    def: ActionDef,
    points: u32,
    /// `None`: the action takes the credit of its Secure Score control.
    rule: Option<CompiledRule>,
    testing_logic: String,
}

/// Compiled catalog: rules parsed once, evaluated for every tenant and poll.
///
/// `Send + Sync`: share one evaluator through an `Arc` across tasks.
pub struct Evaluator {
    /// Sorted by id.
    actions: Vec<CompiledAction>,
    /// Secure Score control ids taken by catalog actions (no generated action for them).
    referenced_controls: HashSet<String>,
    /// CEL standard functions; each evaluation runs in a child scope of it.
    base: Context<'static>,
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

/// Key prefix of Secure Score control signals.
pub const SECURE_SCORE_CONTROLS_PREFIX: &str = "msgraph.securescore.controls.";

/// Risk given to a generated Secure Score action whose score is 0.
pub const SECURE_SCORE_RISK: Risk = Risk::Medium;

/// Outcome of one action before points: what the rule (or Secure Score) concluded.
struct Evaluated {
    outcome: Outcome,
    reason: Option<String>,
    signals: Vec<(String, SignalValue)>,
    /// Set by a Secure Score state update (`thirdparty`, `reviewed`).
    alternative: bool,
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
        let mut referenced_controls = HashSet::new();
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
            let testing_logic = match (&rule, &def.secure_score_control) {
                (Some(_), _) => def.rule.trim().to_string(),
                (None, Some(control)) => secure_score_logic(control),
                (None, None) => String::new(),
            };
            if let Some(control) = &def.secure_score_control {
                referenced_controls.insert(control.clone());
            }
            actions.push(CompiledAction {
                points: def.points(),
                def,
                rule,
                testing_logic,
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        actions.sort_by(|a, b| a.def.id.cmp(&b.def.id));
        Ok(Evaluator {
            actions,
            referenced_controls,
            base: Context::default(),
        })
    }

    /// The evaluator of the built-in catalog.
    pub fn builtin() -> Result<Evaluator, Vec<CatalogError>> {
        Evaluator::new(Catalog::builtin()?)
    }

    /// The catalog actions, sorted by id (generated Secure Score actions are not included).
    pub fn actions(&self) -> impl Iterator<Item = &ActionDef> {
        self.actions.iter().map(|a| &a.def)
    }

    /// A catalog action by id.
    pub fn action(&self, id: &str) -> Option<&ActionDef> {
        self.actions
            .binary_search_by(|a| a.def.id.as_str().cmp(id))
            .ok()
            .map(|i| &self.actions[i].def)
    }

    /// Evaluate every catalog action, plus one action per Secure Score control profile seen in
    /// the signals, for one tenant.
    pub fn evaluate(&self, input: &EvaluationInput<'_>) -> TenantEvaluation {
        let view = SignalView::new(input.now, input.signals, input.gaps);
        let env = RuleEnv::new(&self.base, &view);
        let controls = secure_score_control_ids(&view);
        let mut actions = Vec::with_capacity(self.actions.len() + controls.len());

        for action in &self.actions {
            let def = &action.def;
            let evaluated = match (&action.rule, &def.secure_score_control) {
                (Some(rule), _) => {
                    let r = rule.evaluate(&env, def.risk);
                    Evaluated {
                        outcome: r.outcome,
                        reason: r.reason,
                        signals: r.signals,
                        alternative: false,
                    }
                }
                (None, Some(control)) => secure_score_outcome(&view, control, def.risk),
                (None, None) => Evaluated {
                    outcome: Outcome::Unknown("action has no rule".to_string()),
                    reason: None,
                    signals: Vec::new(),
                    alternative: false,
                },
            };
            actions.push(action_result(
                def.id.clone(),
                def.title.clone(),
                def.category.clone(),
                def.solution.clone(),
                action.points,
                action.testing_logic.clone(),
                evaluated,
            ));
        }

        for id in controls {
            if self.referenced_controls.contains(id) {
                continue;
            }
            let key = |field: &str| format!("{SECURE_SCORE_CONTROLS_PREFIX}{id}.{field}");
            let deprecated = view
                .latest(&key("deprecated"))
                .is_some_and(|s| s.value == SignalValue::Bool(true));
            if deprecated {
                continue;
            }
            let text = |field: &str| match view.latest(&key(field)).map(|s| &s.value) {
                Some(SignalValue::Text(t)) if !t.trim().is_empty() => Some(t.clone()),
                _ => None,
            };
            let max_score = match view.latest(&key("max_score")).map(|s| &s.value) {
                Some(SignalValue::Number(n)) => Some(*n),
                _ => None,
            };
            let evaluated = secure_score_outcome(&view, id, SECURE_SCORE_RISK);
            actions.push(action_result(
                format!("{SECURE_SCORE_ID_PREFIX}{id}"),
                text("title").unwrap_or_else(|| id.to_string()),
                text("category").unwrap_or_else(|| "Secure Score".to_string()),
                "Microsoft Secure Score".to_string(),
                secure_score_points(max_score),
                secure_score_logic(id),
                evaluated,
            ));
        }

        actions.sort_by(|a, b| a.action_id.cmp(&b.action_id));
        let score = summarise(actions.iter());
        let mut by_category: BTreeMap<&str, Vec<&ActionResult>> = BTreeMap::new();
        for a in &actions {
            by_category.entry(a.category.as_str()).or_default().push(a);
        }
        let categories = by_category
            .into_iter()
            .map(|(c, list)| (c.to_string(), summarise(list.into_iter())))
            .collect();
        TenantEvaluation {
            tenant: input.tenant.to_string(),
            evaluated_at: input.now,
            actions,
            score,
            categories,
        }
    }
}

/// Points of a generated Secure Score action: the profile's `max_score` rounded, clamped to
/// 1..=99 (keeps Secure Score's relative weights); 1 when unknown.
pub fn secure_score_points(max_score: Option<f64>) -> u32 {
    match max_score {
        Some(m) if m.is_finite() => {
            m.round()
                .clamp(f64::from(MIN_POINTS), f64::from(MAX_POINTS)) as u32
        }
        _ => MIN_POINTS,
    }
}

/// Testing logic shown for a Secure Score backed action.
fn secure_score_logic(control: &str) -> String {
    format!(
        "{SECURE_SCORE_CONTROLS_PREFIX}{control}.score / {SECURE_SCORE_CONTROLS_PREFIX}{control}.max_score"
    )
}

/// Ids of every Secure Score control with a signal (fresh or expired), sorted.
fn secure_score_control_ids<'a>(view: &SignalView<'a>) -> BTreeSet<&'a str> {
    view.fresh_signals()
        .chain(view.expired_signals())
        .filter_map(|s| {
            let rest = s.key.strip_prefix(SECURE_SCORE_CONTROLS_PREFIX)?;
            let (id, _field) = rest.rsplit_once('.')?;
            (!id.is_empty()).then_some(id)
        })
        .collect()
}

/// A Secure Score control as an outcome: credit `score / max_score` clamped to [0, 1] from
/// fresh signals; state `ignored` -> not applicable; `thirdparty` / `reviewed` -> alternative
/// implementation; deprecated -> not applicable.
fn secure_score_outcome(view: &SignalView<'_>, control: &str, risk: Risk) -> Evaluated {
    let key = |field: &str| format!("{SECURE_SCORE_CONTROLS_PREFIX}{control}.{field}");
    let mut signals = Vec::new();
    let mut fresh = |field: &str| -> Option<SignalValue> {
        let s = view.fresh(&key(field))?;
        signals.push((s.key.clone(), s.value.clone()));
        Some(s.value.clone())
    };
    let score = fresh("score");
    let max_score = fresh("max_score");
    let state = match fresh("state") {
        Some(SignalValue::Text(t)) => t.to_ascii_lowercase(),
        _ => String::new(),
    };
    let deprecated = fresh("deprecated") == Some(SignalValue::Bool(true));
    let alternative = matches!(state.as_str(), "thirdparty" | "reviewed");
    let done = |outcome: Outcome, reason: Option<String>, signals: Vec<_>| Evaluated {
        reason: match &outcome {
            Outcome::Unknown(r) => Some(r.clone()),
            _ => reason,
        },
        outcome,
        signals,
        alternative,
    };
    if deprecated {
        let reason = format!("Secure Score control {control} is deprecated");
        return done(Outcome::NotApplicable, Some(reason), signals);
    }
    if state == "ignored" {
        let reason = format!("Secure Score control {control} is marked ignored");
        return done(Outcome::NotApplicable, Some(reason), signals);
    }
    let number = |v: Option<SignalValue>, field: &str| match v {
        Some(SignalValue::Number(n)) if n.is_finite() => Ok(n),
        Some(_) => Err(format!("signal {} is not a number", key(field))),
        None => Err(view.missing_reason(&key(field))),
    };
    let (score, max_score) = match (number(score, "score"), number(max_score, "max_score")) {
        (Ok(s), Ok(m)) => (s, m),
        (Err(e), _) | (_, Err(e)) => return done(Outcome::Unknown(e), None, signals),
    };
    if max_score <= 0.0 {
        let reason = format!("Secure Score control {control} has no attainable points");
        return done(Outcome::NotApplicable, Some(reason), signals);
    }
    let fraction = (score / max_score).clamp(0.0, 1.0);
    let reason = (alternative).then(|| format!("Secure Score state: {state}"));
    done(Outcome::from_fraction(fraction, risk), reason, signals)
}

/// Status, credit and points of one action from its outcome.
fn action_result(
    action_id: String,
    title: String,
    category: String,
    solution: String,
    points: u32,
    testing_logic: String,
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
        signals: evaluated.signals,
    }
}

/// Implementation status derived from an automatic test: `passed` -> implemented,
/// `out_of_scope` -> out of scope, anything else (failed, partially tested, could not be
/// detected) -> not implemented; a Secure Score `thirdparty`/`reviewed` state ->
/// alternative implementation (unless out of scope).
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

/// Transitions from the previous stored states to a new evaluation (status or credit changed,
/// or the action is new), in action-id order, each stamped with `evaluated_at`. Actions that
/// disappeared produce nothing.
pub fn transitions(
    previous: &HashMap<String, ActionState>,
    current: &TenantEvaluation,
) -> Vec<Transition> {
    current
        .actions
        .iter()
        .filter_map(|a| {
            let prev = previous.get(&a.action_id);
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
