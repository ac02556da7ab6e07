//! CEL compile and evaluate: a catalog rule parsed once ([`CompiledRule`]), the per-tenant CEL
//! environment built from a [`SignalView`] ([`RuleEnv`]), and one evaluation turned into a
//! [`RuleResult`] (through the result contract, or a typed cause when the rule cannot run).
//!
//! Never panics outward (a panicking parser or expression becomes an error or an unknown
//! outcome). It must not decide what a missing signal means (the view gives the cause) nor
//! how a value maps to an outcome (the contract does).

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use cel_interpreter::objects::{Key, Map};
use cel_interpreter::{Context, ExecutionError, Program, Value};

use super::RuleResult;
use super::contract::{Outcome, interpret};
use super::paths::signal_paths;
use crate::evaluation::signal_view::SignalView;
use crate::evaluation::status::Risk;
use crate::evaluation::undetected::Undetected;
use crate::signals::SignalValue;

/// A CEL rule compiled once, with the signal paths its text mentions.
#[derive(Debug)]
pub struct CompiledRule {
    source: String,
    program: Program,
    paths: Vec<String>,
}

impl CompiledRule {
    /// Parse a rule. The error is the parser's message.
    pub fn compile(source: &str) -> Result<CompiledRule, String> {
        // The parser is not known to panic, but a catalog is user input: never let it abort.
        let parsed = catch_unwind(|| Program::compile(source))
            .map_err(|_| "the CEL parser aborted on this rule".to_string())?;
        let program = parsed.map_err(|e| e.to_string().trim().replace('\n', " "))?;
        Ok(CompiledRule {
            source: source.to_string(),
            program,
            paths: signal_paths(source),
        })
    }

    /// The rule text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Dotted paths (two segments or more) the rule text mentions, in order of appearance,
    /// without duplicates; index syntax `a["b"]` is normalised to `a.b`.
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// Evaluate against a tenant's signals. `risk` is the action's risk for a plain failure.
    pub fn evaluate(&self, env: &RuleEnv<'_>, risk: Risk) -> RuleResult {
        let signals = self.read_signals(env.view);
        let executed = catch_unwind(AssertUnwindSafe(|| self.program.execute(&env.ctx)));
        let (outcome, reason) = match executed {
            Ok(Ok(value)) => interpret(&value, risk),
            Ok(Err(error)) => (Outcome::Unknown(self.error_cause(&error, env.view)), None),
            Err(_) => (Outcome::Unknown(Undetected::Aborted), None),
        };
        let reason = match outcome.cause() {
            Some(cause) => Some(cause.to_string()),
            None => reason,
        };
        RuleResult {
            outcome,
            reason,
            signals,
        }
    }

    fn read_signals(&self, view: &SignalView<'_>) -> Vec<(Arc<str>, SignalValue)> {
        let mut out: Vec<(Arc<str>, SignalValue)> = self
            .paths
            .iter()
            .filter_map(|p| view.fresh(p).map(|s| (s.key.clone(), s.value.clone())))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.dedup_by(|a, b| a.0 == b.0);
        out
    }

    /// The cause of a run-time error: the first missing signal the rule mentions (see
    /// [`SignalView::missing_cause`]), preferring the one whose first unresolvable segment is
    /// the name in the error; a [`Undetected::RuleError`] when every signal is there.
    fn error_cause(&self, error: &ExecutionError, view: &SignalView<'_>) -> Undetected {
        let name = match error {
            ExecutionError::NoSuchKey(n) | ExecutionError::UndeclaredReference(n) => {
                Some(n.as_str())
            }
            _ => None,
        };
        let mut first_missing: Option<&str> = None;
        for path in &self.paths {
            let Some(segment) = view.first_unresolved_segment(path) else {
                continue;
            };
            if name == Some(segment) {
                return view.missing_cause(path);
            }
            first_missing.get_or_insert(path);
        }
        match first_missing {
            Some(path) => view.missing_cause(path),
            None => Undetected::RuleError {
                message: error.to_string(),
            },
        }
    }
}

/// The CEL variables of a view: one nested map per root segment. Besides the fresh values,
/// these namespaces exist as (possibly empty) maps so that `has()` answers `false` instead of
/// failing: those of expired signals, the parents of gaps, and the given `namespaces` (the
/// parents of every path the rules mention, see [`rule_namespaces`](super::rule_namespaces)).
fn cel_roots<'b>(view: &SignalView<'b>, namespaces: &'b [String]) -> Vec<(String, Value)> {
    let mut root: Branch<'b> = Branch::default();
    for signal in view.fresh_signals() {
        insert(&mut root, &signal.key, Some(to_cel(&signal.value)));
    }
    for signal in view.expired_signals() {
        insert(&mut root, &signal.key, None);
    }
    for gap in view.gaps() {
        // The gap's parents only: its own prefix may be the very key a rule reads as a value
        // (a per-signal gap `http_json.<name>.<signal>.`), which must stay missing so that the
        // rule is undetected with the gap as its cause; a namespace a rule reads into exists
        // through `namespaces` anyway.
        if let Some((parent, _)) = gap.prefix.trim_end_matches('.').rsplit_once('.') {
            insert_namespace(&mut root, parent);
        }
    }
    for namespace in namespaces {
        insert_namespace(&mut root, namespace);
    }
    root.into_iter()
        .map(|(k, v)| (k.to_string(), v.into_value()))
        .collect()
}

/// A namespace under construction (`foldhash`: built and dropped within one evaluation; the
/// CEL maps made of it are the interpreter's own).
type Branch<'a> = foldhash::HashMap<&'a str, Node<'a>>;

enum Node<'a> {
    Leaf(Value),
    Branch(Branch<'a>),
}

impl Node<'_> {
    fn into_value(self) -> Value {
        match self {
            Node::Leaf(v) => v,
            Node::Branch(children) => {
                let map: HashMap<Key, Value> = children
                    .into_iter()
                    .map(|(k, v)| (Key::String(Arc::new(k.to_string())), v.into_value()))
                    .collect();
                Value::Map(Map { map: Arc::new(map) })
            }
        }
    }
}

/// Insert `key` into the tree: with `Some(value)` as a leaf; with `None` only its parent
/// namespaces. A namespace wins over a leaf of the same name.
fn insert<'a>(root: &mut Branch<'a>, key: &'a str, value: Option<Value>) {
    let (parents, last) = match key.rsplit_once('.') {
        Some((parents, last)) => (Some(parents), last),
        None => (None, key),
    };
    let mut level = root;
    for seg in parents.into_iter().flat_map(|p| p.split('.')) {
        let node = level
            .entry(seg)
            .or_insert_with(|| Node::Branch(Branch::default()));
        if let Node::Leaf(_) = node {
            if value.is_none() {
                return;
            }
            *node = Node::Branch(Branch::default());
        }
        level = match node {
            Node::Branch(children) => children,
            Node::Leaf(_) => return,
        };
    }
    if let Some(value) = value {
        level.entry(last).or_insert(Node::Leaf(value));
    }
}

/// Make sure `namespace` exists as a map (every segment a branch).
fn insert_namespace<'a>(root: &mut Branch<'a>, namespace: &'a str) {
    let mut level = root;
    for seg in namespace.split('.') {
        let node = level
            .entry(seg)
            .or_insert_with(|| Node::Branch(Branch::default()));
        if let Node::Leaf(_) = node {
            return;
        }
        level = match node {
            Node::Branch(children) => children,
            Node::Leaf(_) => return,
        };
    }
}

fn to_cel(value: &SignalValue) -> Value {
    match value {
        SignalValue::Bool(b) => Value::Bool(*b),
        SignalValue::Number(n) => Value::Float(*n),
        SignalValue::Text(t) => Value::String(Arc::new(t.clone())),
    }
}

/// The CEL environment of one evaluation: a child scope of the evaluator's base context (the
/// standard functions) holding the view's root maps. Built once per tenant evaluation and
/// shared by every rule.
pub struct RuleEnv<'a> {
    view: &'a SignalView<'a>,
    ctx: Context<'a>,
}

impl<'a> RuleEnv<'a> {
    /// Build the environment over `base` (usually `Context::default()`, kept by the
    /// evaluator); `namespaces` are made to exist as maps (see
    /// [`rule_namespaces`](super::rule_namespaces)).
    pub fn new(base: &'a Context<'a>, view: &'a SignalView<'a>, namespaces: &[String]) -> Self {
        let mut ctx = base.new_inner_scope();
        for (name, value) in cel_roots(view, namespaces) {
            ctx.add_variable_from_value(name, value);
        }
        RuleEnv { view, ctx }
    }

    /// The signals behind this environment.
    pub fn view(&self) -> &'a SignalView<'a> {
        self.view
    }
}
