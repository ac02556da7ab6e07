//! Generated action families: a catalog's `[[families]]` tables, each saying that every *item*
//! found under a signal prefix becomes an improvement action of its own, and the evaluation of
//! one item from its signals.
//!
//! For the `msgraph` kind the one family is Microsoft Secure Score: every control profile under
//! `msgraph.securescore.controls.` becomes the action `securescore.<control id>`, and a catalog
//! action naming a control in `secure_score_control` takes that control's credit instead. All
//! of this is data of the kind's catalog file; the behaviour of a family is fixed and generic:
//!
//! - item `X` of a family exists when some signal (fresh or expired) has a key
//!   `<signal_prefix>X.<field>`; the fields read are `score`, `max_score` (numbers), `title`,
//!   `category`, `state` (text) and `deprecated` (bool);
//! - credit = `score / max_score` clamped to [0, 1] from fresh signals, with the risk of a plain
//!   failure given by the family (generated action) or the catalog action; `max_score <= 0` ->
//!   not applicable;
//! - a `deprecated` item -> not applicable (and no generated action); a `state` (lower-cased)
//!   listed in `not_applicable_states` -> not applicable; in `alternative_states` ->
//!   implementation status `alternative_implementation`;
//! - points of a generated action: the latest `max_score` rounded, clamped to 1..=99 (1 when
//!   unknown).
//!
//! Pure: no IO, no clock. It must not name any connector kind, family, prefix or state word:
//! every one of them comes from the catalog.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::catalog::{ACTION_FIELDS, CatalogError, string_field, string_list};
use super::evaluator::Evaluated;
use super::points::{MAX_POINTS, MIN_POINTS};
use super::rules::Outcome;
use super::signal_view::SignalView;
use super::status::Risk;
use super::undetected::Undetected;
use crate::signals::SignalValue;

/// The fields of an item a family reads: `<signal_prefix><item>.<field>`.
pub const ITEM_FIELDS: [&str; 6] = [
    "score",
    "max_score",
    "title",
    "category",
    "state",
    "deprecated",
];

/// One generated action family of a catalog (a `[[families]]` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FamilyDef {
    /// Display name, used in reasons and errors (`Secure Score`).
    pub name: String,
    /// What one item is called, used in reasons (`control`: "Secure Score control X is
    /// deprecated").
    pub item: String,
    /// The `[[actions]]` field with which a catalog action takes one item's credit
    /// (`secure_score_control = "AdminMFAV2"`).
    pub item_field: String,
    /// Prefix of the generated action ids, lower-case segments each followed by `.`
    /// (`securescore.`: item `X` generates `securescore.X`). Catalog ids may not use it.
    pub id_prefix: String,
    /// Key prefix of the items' signals, ending in `.` (`msgraph.securescore.controls.`).
    pub signal_prefix: String,
    /// Solution of the generated actions (`Microsoft Secure Score`).
    pub solution: String,
    /// Category of a generated action whose item has no `category` signal.
    pub default_category: String,
    /// Risk of a generated action whose credit is 0 (default `medium`).
    pub risk: Risk,
    /// Lower-case `state` values that make an item not applicable (`ignored`).
    pub not_applicable_states: Vec<String>,
    /// Lower-case `state` values that make an item's implementation status
    /// `alternative_implementation` (`thirdparty`, `reviewed`).
    pub alternative_states: Vec<String>,
}

/// A catalog action's reference to one item of a family, whose credit the action takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyItemRef {
    /// The action field naming it: its family's [`FamilyDef::item_field`].
    pub field: String,
    /// The item id (`AdminMFAV2`).
    pub item: String,
}

impl FamilyDef {
    /// Key of one field of an item: `<signal_prefix><item>.<field>`.
    pub fn key(&self, item: &str, field: &str) -> String {
        format!("{}{item}.{field}", self.signal_prefix)
    }

    /// Id of the action generated for an item: `<id_prefix><item>`.
    pub fn generated_id(&self, item: &str) -> String {
        format!("{}{item}", self.id_prefix)
    }

    /// Testing logic shown for an action backed by an item: `<score key> / <max_score key>`.
    pub fn testing_logic(&self, item: &str) -> String {
        format!(
            "{} / {}",
            self.key(item, "score"),
            self.key(item, "max_score")
        )
    }

    /// Ids of every item with a signal (fresh or expired), sorted.
    pub fn item_ids<'a>(&self, view: &SignalView<'a>) -> BTreeSet<&'a str> {
        view.fresh_signals()
            .chain(view.expired_signals())
            .filter_map(|s| {
                let rest = s.key.strip_prefix(self.signal_prefix.as_str())?;
                let (id, _field) = rest.rsplit_once('.')?;
                (!id.is_empty()).then_some(id)
            })
            .collect()
    }

    /// Whether the latest `deprecated` value of an item (fresh or expired) is `true`.
    pub fn is_deprecated(&self, view: &SignalView<'_>, item: &str) -> bool {
        view.latest(&self.key(item, "deprecated"))
            .is_some_and(|s| s.value == SignalValue::Bool(true))
    }

    /// The latest non-blank text of an item's field (fresh or expired).
    pub fn latest_text(&self, view: &SignalView<'_>, item: &str, field: &str) -> Option<String> {
        match view.latest(&self.key(item, field)).map(|s| &s.value) {
            Some(SignalValue::Text(t)) if !t.trim().is_empty() => Some(t.clone()),
            _ => None,
        }
    }

    /// Points of the action generated for an item, from its latest `max_score` (even stale,
    /// so a stale item keeps its weight); see [`item_points`].
    pub fn generated_points(&self, view: &SignalView<'_>, item: &str) -> u32 {
        let max_score = match view.latest(&self.key(item, "max_score")).map(|s| &s.value) {
            Some(SignalValue::Number(n)) => Some(*n),
            _ => None,
        };
        item_points(max_score)
    }

    /// An item as an outcome, with the given risk of a plain failure: credit
    /// `score / max_score` clamped to [0, 1] from fresh signals; deprecated, a
    /// not-applicable state or `max_score <= 0` -> not applicable; an alternative state ->
    /// alternative implementation; `score` or `max_score` missing, stale or not a number ->
    /// unknown with that cause.
    pub(super) fn outcome(&self, view: &SignalView<'_>, item: &str, risk: Risk) -> Evaluated {
        let mut signals = Vec::new();
        let mut fresh = |field: &str| -> Option<SignalValue> {
            let s = view.fresh(&self.key(item, field))?;
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
        let alternative = self.alternative_states.contains(&state);
        let done = |outcome: Outcome, reason: Option<String>, signals: Vec<_>| Evaluated {
            reason: match &outcome {
                Outcome::Unknown(cause) => Some(cause.to_string()),
                _ => reason,
            },
            outcome,
            signals,
            alternative,
        };
        let (name, noun) = (&self.name, &self.item);
        if deprecated {
            let reason = format!("{name} {noun} {item} is deprecated");
            return done(Outcome::NotApplicable, Some(reason), signals);
        }
        if self.not_applicable_states.contains(&state) {
            let reason = format!("{name} {noun} {item} is marked {state}");
            return done(Outcome::NotApplicable, Some(reason), signals);
        }
        let number = |v: Option<SignalValue>, field: &str| match v {
            Some(SignalValue::Number(n)) if n.is_finite() => Ok(n),
            Some(_) => Err(Undetected::NotANumber {
                key: self.key(item, field),
            }),
            None => Err(view.missing_cause(&self.key(item, field))),
        };
        let (score, max_score) = match (number(score, "score"), number(max_score, "max_score")) {
            (Ok(s), Ok(m)) => (s, m),
            (Err(e), _) | (_, Err(e)) => return done(Outcome::Unknown(e), None, signals),
        };
        if max_score <= 0.0 {
            let reason = format!("{name} {noun} {item} has no attainable points");
            return done(Outcome::NotApplicable, Some(reason), signals);
        }
        let fraction = (score / max_score).clamp(0.0, 1.0);
        let reason = alternative.then(|| format!("{name} state: {state}"));
        done(Outcome::from_fraction(fraction, risk), reason, signals)
    }

    /// Every problem of this family alone, at `families[index].<field>`.
    fn problems(&self, index: usize) -> Vec<CatalogError> {
        let at = |field: &str| format!("families[{index}].{field}");
        let mut errors = Vec::new();
        for (field, value) in [
            ("name", &self.name),
            ("item", &self.item),
            ("solution", &self.solution),
            ("default_category", &self.default_category),
        ] {
            if value.trim().is_empty() {
                errors.push(CatalogError::new(at(field), "must not be empty"));
            }
        }
        let f = &self.item_field;
        if f.is_empty()
            || !f
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            errors.push(CatalogError::new(
                at("item_field"),
                format!("\"{f}\" is not a field name (lower-case [a-z0-9_])"),
            ));
        } else if ACTION_FIELDS.contains(&f.as_str()) {
            errors.push(CatalogError::new(
                at("item_field"),
                format!("\"{f}\" is already a field of [[actions]]"),
            ));
        }
        if !is_id_prefix(&self.id_prefix) {
            errors.push(CatalogError::new(
                at("id_prefix"),
                format!(
                    "\"{}\" is not an id prefix (lower-case [a-z0-9_] segments, each followed by '.')",
                    self.id_prefix
                ),
            ));
        }
        if !is_key_prefix(&self.signal_prefix) {
            errors.push(CatalogError::new(
                at("signal_prefix"),
                format!(
                    "\"{}\" is not a signal key prefix (non-empty segments without spaces, each followed by '.')",
                    self.signal_prefix
                ),
            ));
        }
        for (field, list) in [
            ("not_applicable_states", &self.not_applicable_states),
            ("alternative_states", &self.alternative_states),
        ] {
            for (j, state) in list.iter().enumerate() {
                if state.is_empty()
                    || state.contains(char::is_whitespace)
                    || state.to_ascii_lowercase() != *state
                {
                    errors.push(CatalogError::new(
                        format!("families[{index}].{field}[{j}]"),
                        format!("\"{state}\" is not a lower-case state without spaces"),
                    ));
                }
            }
        }
        for (j, state) in self.alternative_states.iter().enumerate() {
            if self.not_applicable_states.contains(state) {
                errors.push(CatalogError::new(
                    format!("families[{index}].alternative_states[{j}]"),
                    format!("\"{state}\" is also a not-applicable state"),
                ));
            }
        }
        errors
    }
}

/// Every problem of a catalog's families: each family's fields, and two families declaring the
/// same `item_field` or overlapping `id_prefix`es.
pub(super) fn validate_families(families: &[FamilyDef]) -> Vec<CatalogError> {
    let mut errors = Vec::new();
    for (i, family) in families.iter().enumerate() {
        errors.extend(family.problems(i));
        for (j, earlier) in families[..i].iter().enumerate() {
            if family.item_field == earlier.item_field {
                errors.push(CatalogError::new(
                    format!("families[{i}].item_field"),
                    format!(
                        "\"{}\" is already declared by families[{j}]",
                        family.item_field
                    ),
                ));
            }
            if family.id_prefix.starts_with(&earlier.id_prefix)
                || earlier.id_prefix.starts_with(&family.id_prefix)
            {
                errors.push(CatalogError::new(
                    format!("families[{i}].id_prefix"),
                    format!(
                        "\"{}\" overlaps the id prefix \"{}\" of families[{j}]",
                        family.id_prefix, earlier.id_prefix
                    ),
                ));
            }
        }
    }
    errors
}

/// Points of an action generated for an item: its `max_score` rounded, clamped to 1..=99
/// (keeps the source's relative weights between items); 1 when unknown or not finite.
pub fn item_points(max_score: Option<f64>) -> u32 {
    match max_score {
        Some(m) if m.is_finite() => {
            m.round()
                .clamp(f64::from(MIN_POINTS), f64::from(MAX_POINTS)) as u32
        }
        _ => MIN_POINTS,
    }
}

/// `a.`, `a_1.b.`: lower-case `[a-z0-9_]` segments, each followed by `.`.
fn is_id_prefix(p: &str) -> bool {
    p.strip_suffix('.').is_some_and(|body| {
        body.split('.').all(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
    })
}

/// `msgraph.securescore.controls.`: non-empty segments without whitespace, each followed by `.`.
fn is_key_prefix(p: &str) -> bool {
    p.strip_suffix('.').is_some_and(|body| {
        body.split('.')
            .all(|s| !s.is_empty() && !s.contains(char::is_whitespace))
    })
}

const FAMILY_FIELDS: [&str; 10] = [
    "name",
    "item",
    "item_field",
    "id_prefix",
    "signal_prefix",
    "solution",
    "default_category",
    "risk",
    "not_applicable_states",
    "alternative_states",
];

/// Parse one `[[families]]` entry, recording every problem; missing or broken fields get a
/// neutral placeholder so the rest can still be checked.
pub(super) fn parse_family(
    path: &str,
    item: &toml::Value,
    errors: &mut Vec<CatalogError>,
) -> FamilyDef {
    let mut def = FamilyDef {
        name: String::new(),
        item: String::new(),
        item_field: String::new(),
        id_prefix: String::new(),
        signal_prefix: String::new(),
        solution: String::new(),
        default_category: String::new(),
        risk: Risk::default(),
        not_applicable_states: Vec::new(),
        alternative_states: Vec::new(),
    };
    let Some(table) = item.as_table() else {
        errors.push(CatalogError::new(path, "expected a table"));
        return def;
    };
    for key in table.keys() {
        if !FAMILY_FIELDS.contains(&key.as_str()) {
            errors.push(CatalogError::new(format!("{path}.{key}"), "unknown field"));
        }
    }
    def.name = string_field(table, path, "name", true, errors);
    def.item = string_field(table, path, "item", true, errors);
    def.item_field = string_field(table, path, "item_field", true, errors);
    def.id_prefix = string_field(table, path, "id_prefix", true, errors);
    def.signal_prefix = string_field(table, path, "signal_prefix", true, errors);
    def.solution = string_field(table, path, "solution", true, errors);
    def.default_category = string_field(table, path, "default_category", true, errors);
    if let Some(toml::Value::String(risk)) = table.get("risk") {
        match Risk::parse(risk) {
            Some(r) => def.risk = r,
            None => errors.push(CatalogError::new(
                format!("{path}.risk"),
                format!("unknown risk \"{risk}\" (expected low, medium or high)"),
            )),
        }
    } else if table.contains_key("risk") {
        string_field(table, path, "risk", false, errors);
    }
    def.not_applicable_states = string_list(table, path, "not_applicable_states", errors);
    def.alternative_states = string_list(table, path, "alternative_states", errors);
    def
}

#[cfg(test)]
mod tests {
    use crate::evaluation::testutil::{expired, fresh, now};
    use crate::evaluation::{
        Catalog, EvaluationInput, Evaluator, ImplementationStatus, TenantEvaluation, TestStatus,
    };
    use crate::signals::Signal;

    /// A family of a made-up kind: nothing in it is Secure Score.
    const WIDGETS: &str = r#"
[[families]]
name = "Widget audit"
item = "check"
item_field = "widget_check"
id_prefix = "widgetaudit."
signal_prefix = "widgets.audit.checks."
solution = "Widget console"
default_category = "Widgets"
risk = "high"
not_applicable_states = ["waived"]
alternative_states = ["external"]

[[actions]]
id = "widgets.encryption"
title = "Encrypt every widget"
category = "Data protection"
solution = "Widget console"
description = "Taken from the widget audit check Encrypt."
purpose = "preventative"
enforcement = "mandatory"
points = 5
risk = "low"
widget_check = "Encrypt"
"#;

    fn check(id: &str, score: f64, max: f64, state: &str) -> Vec<Signal> {
        let k = |f: &str| format!("widgets.audit.checks.{id}.{f}");
        vec![
            fresh(&k("score"), score),
            fresh(&k("max_score"), max),
            fresh(&k("state"), state),
        ]
    }

    fn evaluate(catalog: &str, signals: &[Signal]) -> TenantEvaluation {
        let catalog = Catalog::from_toml_str(catalog).unwrap_or_else(|e| panic!("{e:#?}"));
        let ev = Evaluator::new(catalog).unwrap_or_else(|e| panic!("{e:#?}"));
        ev.evaluate(&EvaluationInput {
            tenant: "acme",
            now: now(),
            signals,
            gaps: &[],
        })
    }

    #[test]
    fn a_family_of_another_kind_generates_its_own_actions() {
        let mut signals = Vec::new();
        signals.extend(check("Half", 1.0, 2.0, "default"));
        signals.extend(check("Zero", 0.0, 4.0, "default"));
        signals.extend(check("Waived", 0.0, 3.0, "Waived"));
        signals.extend(check("Elsewhere", 6.0, 6.0, "external"));
        signals.extend(check("Encrypt", 0.0, 7.0, "default"));
        signals.push(fresh("widgets.audit.checks.Half.title", "Half done"));
        signals.push(fresh("widgets.audit.checks.Gone.deprecated", true));
        signals.push(expired("widgets.audit.checks.Old.max_score", 2.0));
        let e = evaluate(WIDGETS, &signals);
        let find = |id: &str| {
            e.actions
                .iter()
                .find(|a| a.action_id == id)
                .unwrap_or_else(|| panic!("no {id} in {:#?}", e.actions))
        };
        let ids: Vec<&str> = e.actions.iter().map(|a| a.action_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "widgetaudit.Elsewhere",
                "widgetaudit.Half",
                "widgetaudit.Old",
                "widgetaudit.Waived",
                "widgetaudit.Zero",
                "widgets.encryption",
            ]
        );

        let half = find("widgetaudit.Half");
        assert_eq!((&*half.title, &*half.category), ("Half done", "Widgets"));
        assert_eq!(&*half.solution, "Widget console");
        assert_eq!(half.test_status, TestStatus::PartiallyTested);
        assert_eq!(half.points, 2);
        assert_eq!(
            &*half.testing_logic,
            "widgets.audit.checks.Half.score / widgets.audit.checks.Half.max_score"
        );
        // the family's risk, its own state words and its own reason words
        assert_eq!(
            find("widgetaudit.Zero").test_status,
            TestStatus::FailedHighRisk
        );
        let waived = find("widgetaudit.Waived");
        assert_eq!(waived.test_status, TestStatus::OutOfScope);
        assert_eq!(
            waived.reason.as_deref(),
            Some("Widget audit check Waived is marked waived")
        );
        let elsewhere = find("widgetaudit.Elsewhere");
        assert_eq!(
            elsewhere.implementation_status,
            ImplementationStatus::AlternativeImplementation
        );
        assert_eq!(
            elsewhere.reason.as_deref(),
            Some("Widget audit state: external")
        );
        assert_eq!(
            find("widgetaudit.Old").test_status,
            TestStatus::CouldNotBeDetected
        );
        // the catalog action takes its item's credit, with its own risk and points
        let encryption = find("widgets.encryption");
        assert_eq!(encryption.test_status, TestStatus::FailedLowRisk);
        assert_eq!(encryption.points, 5);
        assert_eq!(
            &*encryption.testing_logic,
            "widgets.audit.checks.Encrypt.score / widgets.audit.checks.Encrypt.max_score"
        );
    }

    #[test]
    fn a_catalog_without_families_generates_nothing() {
        let catalog = WIDGETS
            .split("[[actions]]")
            .nth(1)
            .map(|a| format!("[[actions]]{a}"))
            .expect("one action")
            .replace("widget_check = \"Encrypt\"", "rule = \"true\"");
        let e = evaluate(&catalog, &check("Half", 1.0, 2.0, "default"));
        let ids: Vec<&str> = e.actions.iter().map(|a| a.action_id.as_str()).collect();
        assert_eq!(ids, ["widgets.encryption"]);
    }

    #[test]
    fn family_problems_are_reported_with_their_paths() {
        let text = r#"
[[families]]
name = ""
item = "check"
item_field = "rule"
id_prefix = "Audit"
signal_prefix = "widgets..checks."
solution = "S"
default_category = "C"
risk = "extreme"
not_applicable_states = ["Waived", 3]
alternative_states = ["gone", "waived"]
colour = "red"

[[families]]
name = "Other"
item = "check"
item_field = "widget_check"
id_prefix = "audit.more."
signal_prefix = "widgets.more."
solution = "S"

[[families]]
name = "Third"
item = "check"
item_field = "widget_check"
id_prefix = "audit."
signal_prefix = "widgets.third."
solution = "S"
default_category = "C"

[[actions]]
id = "audit.more.thing"
title = "T"
category = "C"
solution = "S"
description = "D"
purpose = "preventative"
enforcement = "mandatory"
widget_check = " "
"#;
        let errors = Catalog::from_toml_str(text).expect_err("invalid catalog");
        let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let expected = [
            "families[0].colour: unknown field",
            "families[0].risk: unknown risk \"extreme\" (expected low, medium or high)",
            "families[0].not_applicable_states[1]: expected a string, found integer",
            "families[1].default_category: missing",
            "families[0].name: must not be empty",
            "families[0].item_field: \"rule\" is already a field of [[actions]]",
            "families[0].id_prefix: \"Audit\" is not an id prefix (lower-case [a-z0-9_] segments, each followed by '.')",
            "families[0].signal_prefix: \"widgets..checks.\" is not a signal key prefix (non-empty segments without spaces, each followed by '.')",
            "families[0].not_applicable_states[0]: \"Waived\" is not a lower-case state without spaces",
            "families[2].item_field: \"widget_check\" is already declared by families[1]",
            "families[2].id_prefix: \"audit.\" overlaps the id prefix \"audit.more.\" of families[1]",
            "actions[0].id: \"audit.more.thing\": the prefix \"audit.more.\" is reserved for generated Other actions",
            "actions[0].widget_check: \" \" is not a check id",
        ];
        for e in expected {
            assert!(
                got.iter().any(|g| g == e),
                "missing error {e:?} in {got:#?}"
            );
        }
        assert_eq!(got.len(), expected.len(), "{got:#?}");
    }

    #[test]
    fn references_need_a_family_of_the_same_document() {
        let action = WIDGETS.split("[[actions]]").nth(1).expect("one action");
        let errors =
            Catalog::from_toml_str(&format!("[[actions]]{action}")).expect_err("no family");
        assert_eq!(
            errors[0].to_string(),
            "actions[0].widget_check: unknown field"
        );
        let two = WIDGETS.replace(
            "widget_check = \"Encrypt\"",
            "widget_check = \"Encrypt\"\nrule = \"true\"",
        );
        assert!(Catalog::from_toml_str(&two).is_ok());
        // one item per action, even with two families
        let gadgets = WIDGETS
            .split("[[actions]]")
            .next()
            .expect("the family")
            .replace("widget", "gadget");
        let both = format!(
            "{gadgets}{}",
            WIDGETS.replace(
                "widget_check = \"Encrypt\"",
                "widget_check = \"Encrypt\"\ngadget_check = \"Encrypt\""
            )
        );
        let errors = Catalog::from_toml_str(&both).expect_err("two items");
        let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "actions[0].widget_check: an action takes one family item only (gadget_check is already set)"
            ]
        );
    }

    #[test]
    fn merged_documents_must_not_share_family_names_or_prefixes() {
        let other = WIDGETS.replace("widgets.encryption", "gadgets.encryption");
        let errors =
            Catalog::from_sources(&[("widgets", WIDGETS, None), ("gadgets", &other, None)])
                .expect_err("clash");
        let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(
            got.contains(
                &"families[1].item_field: \"widget_check\" is already declared by families[0]"
                    .to_string()
            ),
            "{got:#?}"
        );
        assert!(
            got.contains(
                &"families[1].id_prefix: \"widgetaudit.\" overlaps the id prefix \"widgetaudit.\" of families[0]"
                    .to_string()
            ),
            "{got:#?}"
        );
        // an action id under another document's family prefix
        let intruder = r#"
[[actions]]
id = "widgetaudit.mine"
title = "T"
category = "C"
solution = "S"
description = "D"
purpose = "preventative"
enforcement = "mandatory"
rule = "true"
"#;
        let errors =
            Catalog::from_sources(&[("widgets", WIDGETS, None), ("intruder", intruder, None)])
                .expect_err("reserved");
        assert_eq!(
            errors[0].to_string(),
            "actions[1].id: \"widgetaudit.mine\": the prefix \"widgetaudit.\" is reserved for generated Widget audit actions"
        );
    }
}
