//! Automatic testing: CEL rules over a tenant's signals, and what their results mean.
//!
//! Each catalog rule is compiled once ([`CompiledRule::compile`]) and evaluated for every tenant
//! against a [`SignalView`]: the tenant's *fresh* signals (`expires_at > now`) exposed as nested
//! CEL maps rooted at the first key segment, so `msgraph.mfa.registered_ratio` reads the signal
//! `msgraph.mfa.registered_ratio` and `msgraph.securescore.controls.AdminMFAV2.score` (or
//! `msgraph.securescore.controls["AdminMFAV2"].score`) a Secure Score control. Numbers are CEL
//! doubles (compare with `0.0`), flags are bools, labels are strings. Expired signals are not
//! exposed. Every namespace above a path some rule mentions exists as a (possibly empty) map,
//! as do the namespaces of expired signals and gaps, so `has(msgraph.ca.legacy_auth_blocked)`
//! is `false` rather than an error when the value is stale or was never collected.
//!
//! # Rule result contract
//!
//! | the rule returns | outcome |
//! |---|---|
//! | `true` / `false` | pass / fail(the action's risk) |
//! | a number `1` / `0` | pass / fail(the action's risk) |
//! | a number strictly between 0 and 1 | partial(f) |
//! | any other number (or NaN) | unknown, with the value as reason |
//! | `"pass"`, `"fail"`, `"fail:low"`, `"fail:medium"`, `"fail:high"` | pass / fail(risk) |
//! | `"not_applicable"` | not applicable |
//! | `"unknown"` | unknown |
//! | a map `{"outcome": .., "fraction": .., "risk": .., "reason": ..}` | see [`interpret`] |
//! | anything else (null, list, other strings) | unknown, with the reason |
//!
//! Outcome -> test status ([`Outcome::test_status`]): pass -> `passed`, fail -> `failed_<risk>_risk`,
//! partial -> `partially_tested`, not applicable -> `out_of_scope`, unknown ->
//! `could_not_be_detected`.
//!
//! A rule that fails at run time because a signal is missing yields unknown with a reason naming
//! the cause ([`SignalView::missing_reason`]): the collection error when the key lies under a
//! current [`SignalGap`], `stale: <key> expired at <instant>` when only an expired value exists,
//! otherwise `signal <key> not available`.
//!
//! Pure: no IO, no clock, never panics outward (a panicking expression becomes unknown).

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use cel_interpreter::objects::{Key, Map};
use cel_interpreter::{Context, ExecutionError, Program, Value};
use chrono::{DateTime, SecondsFormat, Utc};

use super::status::{Risk, TestStatus};
use crate::signals::{Signal, SignalGap, SignalValue};

/// What a rule concluded about one action for one tenant.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The action is in place.
    Pass,
    /// The action is not in place; the risk picks the failed status.
    Fail(Risk),
    /// Partly in place: a fraction strictly between 0 and 1 (40 of 50 users -> 0.8).
    Partial(f64),
    /// The action does not apply to this tenant (e.g. a tenant without admins).
    NotApplicable,
    /// The rule could not decide; the reason says why (missing, stale or uncollected signal,
    /// rule error).
    Unknown(String),
}

impl Outcome {
    /// Test status of this outcome (SCORING.md "Automatic testing").
    pub fn test_status(&self) -> TestStatus {
        match self {
            Outcome::Pass => TestStatus::Passed,
            Outcome::Fail(risk) => risk.failed_status(),
            Outcome::Partial(_) => TestStatus::PartiallyTested,
            Outcome::NotApplicable => TestStatus::OutOfScope,
            Outcome::Unknown(_) => TestStatus::CouldNotBeDetected,
        }
    }

    /// Credit in [0, 1]: pass 1, partial f, everything else 0.
    pub fn credit(&self) -> f64 {
        match self {
            Outcome::Pass => 1.0,
            Outcome::Partial(f) => f.clamp(0.0, 1.0),
            _ => 0.0,
        }
    }

    /// Outcome of a fraction in [0, 1]: 1 pass, 0 fail(risk), in between partial, otherwise
    /// unknown.
    pub fn from_fraction(f: f64, risk: Risk) -> Outcome {
        if !f.is_finite() {
            Outcome::Unknown(format!("rule returned {f}, not a number in [0, 1]"))
        } else if f == 1.0 {
            Outcome::Pass
        } else if f == 0.0 {
            Outcome::Fail(risk)
        } else if f > 0.0 && f < 1.0 {
            Outcome::Partial(f)
        } else {
            Outcome::Unknown(format!("rule returned {f}, outside [0, 1]"))
        }
    }
}

/// A rule's verdict plus the detail kept for the audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleResult {
    /// The outcome.
    pub outcome: Outcome,
    /// Detail given by the rule (the `reason` of a map result); for [`Outcome::Unknown`] the
    /// unknown reason.
    pub reason: Option<String>,
    /// Fresh signals the rule refers to, with their values, sorted by key.
    pub signals: Vec<(String, SignalValue)>,
}

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
            Ok(Err(error)) => (Outcome::Unknown(self.error_reason(&error, env.view)), None),
            Err(_) => (
                Outcome::Unknown("rule evaluation aborted: unsupported expression".to_string()),
                None,
            ),
        };
        let reason = match &outcome {
            Outcome::Unknown(r) => Some(r.clone()),
            _ => reason,
        };
        RuleResult {
            outcome,
            reason,
            signals,
        }
    }

    fn read_signals(&self, view: &SignalView<'_>) -> Vec<(String, SignalValue)> {
        let mut out: Vec<(String, SignalValue)> = self
            .paths
            .iter()
            .filter_map(|p| view.fresh(p).map(|s| (s.key.clone(), s.value.clone())))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.dedup_by(|a, b| a.0 == b.0);
        out
    }

    /// Explain a run-time error: name the first missing signal the rule mentions, preferring
    /// the one whose first unresolvable segment is the name in the error.
    fn error_reason(&self, error: &ExecutionError, view: &SignalView<'_>) -> String {
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
                return view.missing_reason(path);
            }
            first_missing.get_or_insert(path);
        }
        match first_missing {
            Some(path) => view.missing_reason(path),
            None => format!("rule error: {error}"),
        }
    }
}

/// Map a rule's CEL value to an outcome (and an optional detail reason), per the contract in
/// the module docs. A map result reads:
///
/// - `outcome`: `"pass"`, `"fail"`, `"fail:<risk>"`, `"partial"`, `"not_applicable"` or
///   `"unknown"`; when absent, `fraction` decides as a plain number would;
/// - `fraction`: a number in [0, 1], required for `"partial"`;
/// - `risk`: `"low"`, `"medium"` or `"high"`, overriding the action's risk for a failure;
/// - `reason`: free text kept as the action's reason.
pub fn interpret(value: &Value, risk: Risk) -> (Outcome, Option<String>) {
    match value {
        Value::Bool(true) => (Outcome::Pass, None),
        Value::Bool(false) => (Outcome::Fail(risk), None),
        Value::Int(_) | Value::UInt(_) | Value::Float(_) => (
            Outcome::from_fraction(as_number(value).unwrap_or(f64::NAN), risk),
            None,
        ),
        Value::String(s) => (outcome_from_str(s, risk), None),
        Value::Map(map) => interpret_map(map, risk),
        other => (
            Outcome::Unknown(format!(
                "rule returned a {}, expected a bool, number, string or map",
                other.type_of()
            )),
            None,
        ),
    }
}

fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Int(i) => Some(*i as f64),
        Value::UInt(u) => Some(*u as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

fn outcome_from_str(s: &str, risk: Risk) -> Outcome {
    match s {
        "pass" => Outcome::Pass,
        "fail" => Outcome::Fail(risk),
        "not_applicable" => Outcome::NotApplicable,
        "unknown" => Outcome::Unknown("rule returned unknown".to_string()),
        other => match other.strip_prefix("fail:").and_then(Risk::parse) {
            Some(r) => Outcome::Fail(r),
            None => Outcome::Unknown(format!("rule returned unsupported outcome \"{other}\"")),
        },
    }
}

fn interpret_map(map: &Map, risk: Risk) -> (Outcome, Option<String>) {
    let get = |k: &str| map.map.get(&Key::String(Arc::new(k.to_string())));
    let reason = match get("reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.to_string()),
        Some(other) => Some(format!("{other:?}")),
    };
    let risk = match get("risk") {
        None | Some(Value::Null) => risk,
        Some(Value::String(s)) => match Risk::parse(s) {
            Some(r) => r,
            None => {
                return (
                    Outcome::Unknown(format!("rule returned unsupported risk \"{s}\"")),
                    reason,
                );
            }
        },
        Some(other) => {
            return (
                Outcome::Unknown(format!("rule returned a {} as risk", other.type_of())),
                reason,
            );
        }
    };
    let fraction = match get("fraction") {
        None | Some(Value::Null) => None,
        Some(v) => match as_number(v) {
            Some(f) => Some(f),
            None => {
                return (
                    Outcome::Unknown(format!("rule returned a {} as fraction", v.type_of())),
                    reason,
                );
            }
        },
    };
    let outcome = match (get("outcome"), fraction) {
        (None | Some(Value::Null), Some(f)) => Outcome::from_fraction(f, risk),
        (None | Some(Value::Null), None) => {
            Outcome::Unknown("rule returned a map without outcome or fraction".to_string())
        }
        (Some(Value::String(s)), fraction) => match (s.as_str(), fraction) {
            ("partial", Some(f)) => Outcome::from_fraction(f, risk),
            ("partial", None) => {
                Outcome::Unknown("rule returned partial without a fraction".to_string())
            }
            ("unknown", _) => Outcome::Unknown(
                reason
                    .clone()
                    .unwrap_or_else(|| "rule returned unknown".to_string()),
            ),
            (s, _) => outcome_from_str(s, risk),
        },
        (Some(other), _) => {
            Outcome::Unknown(format!("rule returned a {} as outcome", other.type_of()))
        }
    };
    (outcome, reason)
}

/// Dotted paths a rule text mentions: identifiers joined by `.` (or `["literal"]`), two
/// segments or more, string literals skipped, a trailing method or function name dropped.
/// Order of first appearance, no duplicates.
pub fn signal_paths(source: &str) -> Vec<String> {
    let chars: Vec<char> = source.chars().collect();
    let n = chars.len();
    let is_start = |c: char| c.is_ascii_alphabetic() || c == '_';
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        let c = chars[i];
        if c == '"' || c == '\'' {
            i = skip_string(&chars, i).map_or(n, |(_, end)| end);
            continue;
        }
        let preceded = i > 0 && (is_ident(chars[i - 1]) || chars[i - 1] == '.');
        if !is_start(c) || preceded {
            i += 1;
            continue;
        }
        let mut segments: Vec<String> = Vec::new();
        let start = i;
        while i < n && is_ident(chars[i]) {
            i += 1;
        }
        segments.push(chars[start..i].iter().collect());
        loop {
            if i + 1 < n && chars[i] == '.' && is_start(chars[i + 1]) {
                let s = i + 1;
                i = s;
                while i < n && is_ident(chars[i]) {
                    i += 1;
                }
                segments.push(chars[s..i].iter().collect());
            } else if i + 1 < n && chars[i] == '[' && (chars[i + 1] == '"' || chars[i + 1] == '\'')
            {
                match skip_string(&chars, i + 1) {
                    Some((literal, end)) if end < n && chars[end] == ']' => {
                        segments.push(literal);
                        i = end + 1;
                    }
                    _ => break,
                }
            } else {
                break;
            }
        }
        let mut j = i;
        while j < n && chars[j].is_whitespace() {
            j += 1;
        }
        if j < n && chars[j] == '(' {
            segments.pop();
        }
        if segments.len() >= 2 {
            let path = segments.join(".");
            if seen.insert(path.clone()) {
                out.push(path);
            }
        }
    }
    out
}

/// Skip a string literal starting at `chars[start]` (a quote). Returns its content and the
/// index just after the closing quote; `None` when unterminated.
fn skip_string(chars: &[char], start: usize) -> Option<(String, usize)> {
    let quote = chars[start];
    let mut content = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if let Some(&next) = chars.get(i + 1) {
                    content.push(next);
                }
                i += 2;
            }
            c if c == quote => return Some((content, i + 1)),
            c => {
                content.push(c);
                i += 1;
            }
        }
    }
    None
}

/// One tenant's signals as rules see them at `now`: fresh values, expired values (for
/// reasons), and the current collection gaps. Built once per evaluation.
pub struct SignalView<'a> {
    now: DateTime<Utc>,
    /// Fresh signals by key.
    fresh: HashMap<&'a str, &'a Signal>,
    /// Every key and key prefix (`a`, `a.b`, `a.b.c`) of a fresh signal.
    fresh_nodes: HashSet<&'a str>,
    /// Every key and key prefix of an expired signal, to one such signal.
    expired_nodes: HashMap<&'a str, &'a Signal>,
    /// Expired signals.
    expired: Vec<&'a Signal>,
    gaps: &'a [SignalGap],
}

impl<'a> SignalView<'a> {
    /// Index the latest signals (one per key; when a key repeats, the latest observation wins)
    /// against `now`.
    pub fn new(now: DateTime<Utc>, signals: &'a [Signal], gaps: &'a [SignalGap]) -> Self {
        let mut latest: HashMap<&'a str, &'a Signal> = HashMap::with_capacity(signals.len());
        for s in signals {
            match latest.get(s.key.as_str()) {
                Some(prev) if prev.observed_at > s.observed_at => {}
                _ => {
                    latest.insert(s.key.as_str(), s);
                }
            }
        }
        let mut fresh = HashMap::with_capacity(latest.len());
        let mut fresh_nodes = HashSet::with_capacity(latest.len() * 3);
        let mut expired_nodes = HashMap::new();
        let mut expired = Vec::new();
        for (&key, &signal) in &latest {
            if signal.expires_at > now {
                fresh.insert(key, signal);
                for node in key_nodes(key) {
                    fresh_nodes.insert(node);
                }
            } else {
                expired.push(signal);
                for node in key_nodes(key) {
                    expired_nodes.entry(node).or_insert(signal);
                }
            }
        }
        SignalView {
            now,
            fresh,
            fresh_nodes,
            expired_nodes,
            expired,
            gaps,
        }
    }

    /// The instant the view was built for.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// A fresh signal by exact key.
    pub fn fresh(&self, key: &str) -> Option<&'a Signal> {
        self.fresh.get(key).copied()
    }

    /// The latest signal by exact key, fresh or expired.
    pub fn latest(&self, key: &str) -> Option<&'a Signal> {
        self.fresh(key).or_else(|| {
            self.expired_nodes
                .get(key)
                .copied()
                .filter(|s| s.key == key)
        })
    }

    /// Every expired signal, unordered.
    pub fn expired_signals(&self) -> impl Iterator<Item = &'a Signal> + '_ {
        self.expired.iter().copied()
    }

    /// Every fresh signal, unordered.
    pub fn fresh_signals(&self) -> impl Iterator<Item = &'a Signal> + '_ {
        self.fresh.values().copied()
    }

    /// The first segment of `path` that no fresh signal provides (`None` when the whole path
    /// resolves to a fresh value or namespace).
    fn first_unresolved_segment<'p>(&self, path: &'p str) -> Option<&'p str> {
        if self.fresh_nodes.contains(path) {
            return None;
        }
        let mut start = 0;
        for node in key_nodes(path) {
            let end = node.len();
            if !self.fresh_nodes.contains(node) {
                return Some(&path[start..end]);
            }
            start = end + 1;
        }
        None
    }

    /// Why `key` (a signal key or a namespace) is not available to a rule: the collection
    /// error of the most specific gap covering it, the expiry of its last value, or plain
    /// absence.
    pub fn missing_reason(&self, key: &str) -> String {
        let gap = self
            .gaps
            .iter()
            .filter(|g| gap_covers(&g.prefix, key))
            .max_by_key(|g| g.prefix.len());
        let expired = self.expired_nodes.get(key).copied();
        let at = |s: &Signal| s.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true);
        match (gap, expired) {
            (Some(g), Some(s)) => format!(
                "could not collect {}*: {} ({}); last value of {} expired at {}",
                g.prefix,
                g.kind,
                g.reason,
                s.key,
                at(s)
            ),
            (Some(g), None) => {
                format!("could not collect {}*: {} ({})", g.prefix, g.kind, g.reason)
            }
            (None, Some(s)) => format!("stale: {} expired at {}", s.key, at(s)),
            (None, None) => format!("signal {key} not available"),
        }
    }

    /// The CEL variables of this view: one nested map per root segment. Besides the fresh
    /// values, these namespaces exist as (possibly empty) maps so that `has()` answers `false`
    /// instead of failing: those of expired signals, of gaps, and the given `namespaces` (the
    /// parents of every path the rules mention, see [`rule_namespaces`]).
    pub fn cel_roots<'b>(&'b self, namespaces: &'b [String]) -> Vec<(String, Value)> {
        let mut root: HashMap<&'b str, Node<'b>> = HashMap::new();
        for (&key, &signal) in &self.fresh {
            insert(&mut root, key, Some(to_cel(&signal.value)));
        }
        for &signal in &self.expired {
            insert(&mut root, signal.key.as_str(), None);
        }
        for gap in self.gaps {
            let prefix = gap.prefix.trim_end_matches('.');
            if !prefix.is_empty() {
                insert_namespace(&mut root, prefix);
            }
        }
        for namespace in namespaces {
            insert_namespace(&mut root, namespace);
        }
        root.into_iter()
            .map(|(k, v)| (k.to_string(), v.into_value()))
            .collect()
    }
}

/// The namespaces (`msgraph`, `msgraph.mfa`) above every path the given rules mention, sorted
/// and without duplicates: they always exist as CEL maps, so `has(msgraph.ca.x)` is `false`,
/// not an error, when nothing under `msgraph.ca` was ever collected.
pub fn rule_namespaces<'r>(rules: impl IntoIterator<Item = &'r CompiledRule>) -> Vec<String> {
    let mut out: Vec<String> = rules
        .into_iter()
        .flat_map(|r| r.paths())
        .filter_map(|p| p.rsplit_once('.').map(|(parent, _)| parent.to_string()))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `true` when a gap prefix (ending in `.`) covers `key`: the key lies under it, or the key is
/// a namespace containing it.
fn gap_covers(prefix: &str, key: &str) -> bool {
    let bare = prefix.trim_end_matches('.');
    key == bare
        || key.starts_with(prefix)
        || (bare.starts_with(key) && bare.as_bytes().get(key.len()) == Some(&b'.'))
}

/// `a`, `a.b`, `a.b.c` for key `a.b.c` (slices of the key, no allocation).
fn key_nodes(key: &str) -> impl Iterator<Item = &str> {
    key.match_indices('.')
        .map(move |(i, _)| &key[..i])
        .chain(std::iter::once(key))
}

enum Node<'a> {
    Leaf(Value),
    Branch(HashMap<&'a str, Node<'a>>),
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
fn insert<'a>(root: &mut HashMap<&'a str, Node<'a>>, key: &'a str, value: Option<Value>) {
    let mut segments: Vec<&'a str> = key.split('.').collect();
    let Some(last) = segments.pop() else {
        return;
    };
    let mut level = root;
    for seg in segments {
        let node = level
            .entry(seg)
            .or_insert_with(|| Node::Branch(HashMap::new()));
        if let Node::Leaf(_) = node {
            if value.is_none() {
                return;
            }
            *node = Node::Branch(HashMap::new());
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
fn insert_namespace<'a>(root: &mut HashMap<&'a str, Node<'a>>, namespace: &'a str) {
    let mut level = root;
    for seg in namespace.split('.') {
        let node = level
            .entry(seg)
            .or_insert_with(|| Node::Branch(HashMap::new()));
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
    /// evaluator); `namespaces` are made to exist as maps (see [`rule_namespaces`]).
    pub fn new(base: &'a Context<'a>, view: &'a SignalView<'a>, namespaces: &[String]) -> Self {
        let mut ctx = base.new_inner_scope();
        for (name, value) in view.cel_roots(namespaces) {
            ctx.add_variable_from_value(name, value);
        }
        RuleEnv { view, ctx }
    }

    /// The signals behind this environment.
    pub fn view(&self) -> &'a SignalView<'a> {
        self.view
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluation::testutil::{expired, fresh, gap, now};

    fn run(rule: &str, signals: &[Signal], gaps: &[SignalGap]) -> RuleResult {
        let rule = CompiledRule::compile(rule).expect("rule compiles");
        let base = Context::default();
        let view = SignalView::new(now(), signals, gaps);
        let namespaces = rule_namespaces([&rule]);
        let env = RuleEnv::new(&base, &view, &namespaces);
        rule.evaluate(&env, Risk::Medium)
    }

    #[test]
    fn rule_result_contract() {
        use Outcome::*;
        let table: Vec<(&str, Outcome)> = vec![
            // bool
            ("true", Pass),
            ("false", Fail(Risk::Medium)),
            // numbers
            ("1.0", Pass),
            ("1", Pass),
            ("0.0", Fail(Risk::Medium)),
            ("0", Fail(Risk::Medium)),
            ("0.8", Partial(0.8)),
            ("1.5", Unknown("rule returned 1.5, outside [0, 1]".into())),
            ("-0.5", Unknown("rule returned -0.5, outside [0, 1]".into())),
            // strings
            ("'pass'", Pass),
            ("'fail'", Fail(Risk::Medium)),
            ("'fail:low'", Fail(Risk::Low)),
            ("'fail:medium'", Fail(Risk::Medium)),
            ("'fail:high'", Fail(Risk::High)),
            ("'not_applicable'", NotApplicable),
            ("'unknown'", Unknown("rule returned unknown".into())),
            (
                "'maybe'",
                Unknown("rule returned unsupported outcome \"maybe\"".into()),
            ),
            (
                "'fail:extreme'",
                Unknown("rule returned unsupported outcome \"fail:extreme\"".into()),
            ),
            // maps
            ("{'outcome': 'pass'}", Pass),
            ("{'outcome': 'fail', 'risk': 'high'}", Fail(Risk::High)),
            ("{'outcome': 'fail:low'}", Fail(Risk::Low)),
            ("{'outcome': 'partial', 'fraction': 0.25}", Partial(0.25)),
            ("{'outcome': 'partial', 'fraction': 1.0}", Pass),
            ("{'fraction': 0.5}", Partial(0.5)),
            ("{'fraction': 0.0, 'risk': 'low'}", Fail(Risk::Low)),
            (
                "{'outcome': 'not_applicable', 'reason': 'no admins'}",
                NotApplicable,
            ),
            (
                "{'outcome': 'unknown', 'reason': 'licence missing'}",
                Unknown("licence missing".into()),
            ),
            (
                "{'outcome': 'partial'}",
                Unknown("rule returned partial without a fraction".into()),
            ),
            (
                "{'reason': 'x'}",
                Unknown("rule returned a map without outcome or fraction".into()),
            ),
            (
                "{'outcome': 'fail', 'risk': 'severe'}",
                Unknown("rule returned unsupported risk \"severe\"".into()),
            ),
            // other types
            (
                "null",
                Unknown("rule returned a null, expected a bool, number, string or map".into()),
            ),
            (
                "[1, 2]",
                Unknown("rule returned a list, expected a bool, number, string or map".into()),
            ),
        ];
        for (rule, expected) in table {
            let result = run(rule, &[], &[]);
            assert_eq!(result.outcome, expected, "rule {rule}");
        }
    }

    #[test]
    fn map_reason_is_kept() {
        let r = run(
            "{'outcome': 'not_applicable', 'reason': 'no admins'}",
            &[],
            &[],
        );
        assert_eq!(r.reason.as_deref(), Some("no admins"));
        let r = run("true", &[], &[]);
        assert_eq!(r.reason, None);
    }

    #[test]
    fn outcome_to_test_status() {
        use Outcome::*;
        let table = [
            (Pass, TestStatus::Passed),
            (Fail(Risk::Low), TestStatus::FailedLowRisk),
            (Fail(Risk::Medium), TestStatus::FailedMediumRisk),
            (Fail(Risk::High), TestStatus::FailedHighRisk),
            (Partial(0.5), TestStatus::PartiallyTested),
            (NotApplicable, TestStatus::OutOfScope),
            (Unknown("x".into()), TestStatus::CouldNotBeDetected),
        ];
        for (outcome, status) in table {
            assert_eq!(outcome.test_status(), status, "{outcome:?}");
        }
    }

    #[test]
    fn nested_signal_maps() {
        let signals = [
            fresh("msgraph.mfa.registered_ratio", 0.8),
            fresh("msgraph.mfa.users_total", 50.0),
            fresh("msgraph.security_defaults.enabled", true),
            fresh("msgraph.securescore.controls.AdminMFAV2.score", 5.0),
            fresh("msgraph.securescore.controls.AdminMFAV2.max_score", 10.0),
            fresh("msgraph.securescore.controls.AdminMFAV2.state", "default"),
        ];
        let table = [
            ("msgraph.mfa.registered_ratio", Outcome::Partial(0.8)),
            ("msgraph.mfa.users_total == 50.0", Outcome::Pass),
            ("msgraph.security_defaults.enabled", Outcome::Pass),
            (
                "msgraph.securescore.controls.AdminMFAV2.score / msgraph.securescore.controls.AdminMFAV2.max_score",
                Outcome::Partial(0.5),
            ),
            (
                "msgraph.securescore.controls[\"AdminMFAV2\"].score / 10.0",
                Outcome::Partial(0.5),
            ),
            (
                "msgraph.securescore.controls.AdminMFAV2.state.startsWith('def')",
                Outcome::Pass,
            ),
            ("has(msgraph.mfa.admins_total)", Outcome::Fail(Risk::Medium)),
            ("size(msgraph.mfa) == 2", Outcome::Pass),
        ];
        for (rule, expected) in table {
            assert_eq!(run(rule, &signals, &[]).outcome, expected, "rule {rule}");
        }
    }

    #[test]
    fn records_signals_the_rule_mentions() {
        let signals = [
            fresh("msgraph.mfa.registered_ratio", 0.8),
            fresh("msgraph.mfa.users_total", 50.0),
            fresh("msgraph.mfa.admins_total", 3.0),
        ];
        let r = run(
            "msgraph.mfa.users_total == 0.0 ? 'not_applicable' : msgraph.mfa.registered_ratio",
            &signals,
            &[],
        );
        assert_eq!(
            r.signals,
            vec![
                (
                    "msgraph.mfa.registered_ratio".to_string(),
                    SignalValue::Number(0.8)
                ),
                (
                    "msgraph.mfa.users_total".to_string(),
                    SignalValue::Number(50.0)
                ),
            ]
        );
    }

    #[test]
    fn missing_stale_and_gap_reasons() {
        let at = "2026-03-01T11:00:00Z";
        let g = gap(
            "msgraph.mfa.",
            "forbidden",
            "403 Authorization_RequestDenied on /reports/authenticationMethods/userRegistrationDetails",
        );
        let table: Vec<(&str, Vec<Signal>, Vec<SignalGap>, String)> = vec![
            (
                "msgraph.mfa.registered_ratio",
                vec![fresh("msgraph.ca.mfa_all_users", true)],
                vec![],
                "signal msgraph.mfa.registered_ratio not available".into(),
            ),
            (
                "msgraph.mfa.registered_ratio",
                vec![fresh("msgraph.mfa.users_total", 50.0)],
                vec![],
                "signal msgraph.mfa.registered_ratio not available".into(),
            ),
            (
                "msgraph.mfa.registered_ratio",
                vec![expired("msgraph.mfa.registered_ratio", 1.0)],
                vec![],
                format!("stale: msgraph.mfa.registered_ratio expired at {at}"),
            ),
            (
                "msgraph.mfa.registered_ratio",
                vec![],
                vec![g.clone()],
                "could not collect msgraph.mfa.*: forbidden (403 Authorization_RequestDenied on /reports/authenticationMethods/userRegistrationDetails)".into(),
            ),
            (
                "msgraph.mfa.registered_ratio",
                vec![expired("msgraph.mfa.registered_ratio", 1.0)],
                vec![g.clone()],
                format!(
                    "could not collect msgraph.mfa.*: forbidden (403 Authorization_RequestDenied on /reports/authenticationMethods/userRegistrationDetails); last value of msgraph.mfa.registered_ratio expired at {at}"
                ),
            ),
            (
                // a token failure gaps the whole connector namespace
                "msgraph.mfa.registered_ratio",
                vec![],
                vec![gap("msgraph.", "unauthorized", "401 invalid_client")],
                "could not collect msgraph.*: unauthorized (401 invalid_client)".into(),
            ),
            (
                // the missing key is the one evaluated, not the first one in the text
                "msgraph.ca.mfa_all_users ? msgraph.mfa.registered_ratio : false",
                vec![fresh("msgraph.ca.mfa_all_users", true)],
                vec![],
                "signal msgraph.mfa.registered_ratio not available".into(),
            ),
            (
                "msgraph.securescore.controls['AdminMFAV2'].score > 0.0",
                vec![fresh("msgraph.securescore.controls.Other.score", 1.0)],
                vec![],
                "signal msgraph.securescore.controls.AdminMFAV2.score not available".into(),
            ),
            (
                "1.0 / 'x'",
                vec![],
                vec![],
                "rule error: Unsupported binary operator 'div': Float(1.0), String(\"x\")".into(),
            ),
        ];
        for (rule, signals, gaps, reason) in table {
            let r = run(rule, &signals, &gaps);
            assert_eq!(r.outcome, Outcome::Unknown(reason.clone()), "rule {rule}");
            assert_eq!(r.reason, Some(reason), "rule {rule}");
        }
    }

    #[test]
    fn expired_signal_is_not_exposed() {
        // A stale true must not pass; has() sees the namespace but not the value.
        let signals = [
            expired("msgraph.security_defaults.enabled", true),
            fresh("msgraph.ca.enabled_total", 1.0),
        ];
        let r = run("msgraph.security_defaults.enabled", &signals, &[]);
        assert_eq!(r.outcome.test_status(), TestStatus::CouldNotBeDetected);
        let r = run("has(msgraph.security_defaults.enabled)", &signals, &[]);
        assert_eq!(r.outcome, Outcome::Fail(Risk::Medium));
        // a gap namespace is a (possibly empty) map as well
        let r = run(
            "has(msgraph.labels.total)",
            &[],
            &[gap("msgraph.labels.", "forbidden", "403")],
        );
        assert_eq!(r.outcome, Outcome::Fail(Risk::Medium));
    }

    #[test]
    fn signal_paths_from_text() {
        let table: [(&str, &[&str]); 6] = [
            (
                "msgraph.mfa.users_total == 0.0 ? 'n' : msgraph.mfa.registered_ratio",
                &["msgraph.mfa.users_total", "msgraph.mfa.registered_ratio"],
            ),
            (
                "msgraph.securescore.controls[\"AdminMFAV2\"].score",
                &["msgraph.securescore.controls.AdminMFAV2.score"],
            ),
            (
                "msgraph.securescore.controls.X.state.startsWith('a.b.c')",
                &["msgraph.securescore.controls.X.state"],
            ),
            ("'msgraph.mfa.not_a_path' == x", &[]),
            ("has(msgraph.a.b) && msgraph.a.b", &["msgraph.a.b"]),
            ("size(x) > 0.5", &[]),
        ];
        for (rule, expected) in table {
            assert_eq!(signal_paths(rule), expected, "rule {rule}");
        }
    }

    #[test]
    fn unsupported_expression_does_not_panic_outward() {
        // cel-interpreter 0.10 leaves struct construction unimplemented (it panics).
        let r = run("Foo{a: 1}", &[], &[]);
        assert!(matches!(r.outcome, Outcome::Unknown(_)), "{:?}", r.outcome);
    }

    #[test]
    fn compile_errors_are_reported() {
        assert!(CompiledRule::compile("msgraph.mfa.").is_err());
        assert!(CompiledRule::compile("(1 + ").is_err());
        assert!(CompiledRule::compile("msgraph.mfa.registered_ratio >= 0.9").is_ok());
    }
}
