//! The improvement-action catalog: what can be tested, how many points it earns, which
//! framework controls it satisfies, and the CEL rule that tests it.
//!
//! The built-in catalog is data (`config/catalog/actions.toml`, embedded at build time);
//! [`Catalog::load`] reads another file. Loading validates everything and reports **every**
//! problem at once, each with its key path (`actions[3].points: 120 is not in 1..=99`).
//! No IO except [`Catalog::load`] reading its file.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::points::{Enforcement, Purpose, default_points, validate_points};
use super::rules::CompiledRule;
use super::status::Risk;

/// The built-in catalog's TOML source.
pub const BUILTIN_TOML: &str = include_str!("../../config/catalog/actions.toml");

/// Prefix of the ids of actions generated from Secure Score control profiles; catalog ids may
/// not use it.
pub const SECURE_SCORE_ID_PREFIX: &str = "securescore.";

/// One catalog problem, with the key path it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", display_error(path, message))]
pub struct CatalogError {
    /// Key path, e.g. `actions[3].points`; empty for the whole document.
    pub path: String,
    /// What is wrong, e.g. `120 is not in 1..=99`.
    pub message: String,
}

fn display_error(path: &str, message: &str) -> String {
    if path.is_empty() {
        message.to_string()
    } else {
        format!("{path}: {message}")
    }
}

impl CatalogError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        CatalogError {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Bounded label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        "catalog"
    }
}

/// Framework controls an action helps satisfy (ids only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlRefs {
    /// ISO/IEC 27001:2022 Annex A ids, e.g. `A.5.17`, `A.8.5`.
    pub iso27001: Vec<String>,
    /// NIST SP 800-53 rev 5 ids, e.g. `IA-2`, `IA-2(1)`.
    pub nist_800_53: Vec<String>,
    /// GDPR articles, e.g. `Art. 32`, `Art. 5(1)(f)`.
    pub gdpr: Vec<String>,
}

/// One improvement action of the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionDef {
    /// Stable, namespaced id (`msgraph.mfa.all_users`).
    pub id: String,
    /// Short imperative title.
    pub title: String,
    /// Category used for per-category scores (`Identity`, `Access control` ...).
    pub category: String,
    /// Product or service that implements it (`Microsoft Entra ID` ...).
    pub solution: String,
    /// What the action is and why it matters.
    pub description: String,
    /// Purpose axis of the default points.
    pub purpose: Purpose,
    /// Enforcement axis of the default points.
    pub enforcement: Enforcement,
    /// Custom points (1..=99) replacing the default.
    pub points: Option<u32>,
    /// Risk of a plain failure (`false`, `0`, `"fail"`).
    pub risk: Risk,
    /// Framework controls it helps satisfy.
    pub controls: ControlRefs,
    /// CEL rule (see `rules`); may be empty only when `secure_score_control` is set.
    pub rule: String,
    /// Secure Score control profile id whose credit this action takes (`AdminMFAV2`).
    pub secure_score_control: Option<String>,
}

impl ActionDef {
    /// The action's points: the custom value, else the default of purpose × enforcement.
    pub fn points(&self) -> u32 {
        self.points
            .unwrap_or_else(|| default_points(self.purpose, self.enforcement))
    }
}

/// The improvement-action catalog.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// Actions in file order.
    pub actions: Vec<ActionDef>,
}

impl Catalog {
    /// The built-in catalog (`config/catalog/actions.toml`).
    pub fn builtin() -> Result<Catalog, Vec<CatalogError>> {
        Catalog::from_toml_str(BUILTIN_TOML)
    }

    /// Read and validate a catalog file.
    pub fn load(path: &Path) -> Result<Catalog, Vec<CatalogError>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![CatalogError::new(
                "",
                format!("cannot read {}: {e}", path.display()),
            )]
        })?;
        Catalog::from_toml_str(&text)
    }

    /// Parse and validate a catalog document (`[[actions]]` tables).
    pub fn from_toml_str(text: &str) -> Result<Catalog, Vec<CatalogError>> {
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            vec![CatalogError::new(
                "",
                format!("invalid TOML: {}", e.to_string().trim()),
            )]
        })?;
        let mut errors = Vec::new();
        let mut actions = Vec::new();
        for key in table.keys() {
            if key != "actions" {
                errors.push(CatalogError::new(key.as_str(), "unknown key"));
            }
        }
        match table.get("actions") {
            None => errors.push(CatalogError::new("actions", "missing")),
            Some(toml::Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let path = format!("actions[{i}]");
                    actions.push(parse_action(&path, item, &mut errors));
                }
            }
            Some(_) => errors.push(CatalogError::new("actions", "expected an array of tables")),
        }
        let catalog = Catalog { actions };
        errors.extend(catalog.validate());
        let errors = dedup_errors(errors);
        if errors.is_empty() {
            Ok(catalog)
        } else {
            Err(errors)
        }
    }

    /// Every semantic problem: ids (format, duplicates, reserved prefix), texts, points, rule
    /// (empty, does not compile), control ids, Secure Score references.
    pub fn validate(&self) -> Vec<CatalogError> {
        let mut errors = Vec::new();
        let mut ids: HashMap<&str, usize> = HashMap::new();
        let mut controls: HashMap<&str, usize> = HashMap::new();
        for (i, action) in self.actions.iter().enumerate() {
            let at = |field: &str| format!("actions[{i}].{field}");
            if let Err(m) = check_id(&action.id) {
                errors.push(CatalogError::new(at("id"), m));
            } else if let Some(first) = ids.insert(&action.id, i) {
                errors.push(CatalogError::new(
                    at("id"),
                    format!("duplicate id \"{}\" (first at actions[{first}])", action.id),
                ));
                ids.insert(&action.id, first);
            }
            for (field, value) in [
                ("title", &action.title),
                ("category", &action.category),
                ("solution", &action.solution),
                ("description", &action.description),
            ] {
                if value.trim().is_empty() {
                    errors.push(CatalogError::new(at(field), "must not be empty"));
                }
            }
            if let Some(p) = action.points
                && let Err(m) = validate_points(i64::from(p))
            {
                errors.push(CatalogError::new(at("points"), m));
            }
            match &action.secure_score_control {
                Some(c) if c.trim().is_empty() || c.contains(char::is_whitespace) => {
                    errors.push(CatalogError::new(
                        at("secure_score_control"),
                        format!("\"{c}\" is not a control id"),
                    ));
                }
                Some(c) => {
                    if let Some(first) = controls.insert(c, i) {
                        errors.push(CatalogError::new(
                            at("secure_score_control"),
                            format!("\"{c}\" is already taken by actions[{first}]"),
                        ));
                        controls.insert(c, first);
                    }
                }
                None => {}
            }
            if action.rule.trim().is_empty() {
                if action.secure_score_control.is_none() {
                    errors.push(CatalogError::new(
                        at("rule"),
                        "must not be empty (unless secure_score_control is set)",
                    ));
                }
            } else if let Err(m) = CompiledRule::compile(&action.rule) {
                errors.push(CatalogError::new(
                    at("rule"),
                    format!("does not compile: {m}"),
                ));
            }
            let refs = &action.controls;
            for (field, list, check) in [
                (
                    "iso27001",
                    &refs.iso27001,
                    check_iso27001 as fn(&str) -> bool,
                ),
                ("nist_800_53", &refs.nist_800_53, check_nist),
                ("gdpr", &refs.gdpr, check_gdpr),
            ] {
                for (j, id) in list.iter().enumerate() {
                    if !check(id) {
                        errors.push(CatalogError::new(
                            format!("actions[{i}].controls.{field}[{j}]"),
                            format!("\"{id}\" is not a valid {} id", framework_name(field)),
                        ));
                    }
                }
            }
        }
        errors
    }

    /// An action by id.
    pub fn get(&self, id: &str) -> Option<&ActionDef> {
        self.actions.iter().find(|a| a.id == id)
    }
}

fn framework_name(field: &str) -> &'static str {
    match field {
        "iso27001" => "ISO/IEC 27001:2022 Annex A",
        "nist_800_53" => "NIST SP 800-53 rev 5",
        _ => "GDPR article",
    }
}

/// Drop an error whose path equals or lies under the path of an earlier error (a broken
/// field is reported once, by the parser, not again by validation).
fn dedup_errors(errors: Vec<CatalogError>) -> Vec<CatalogError> {
    let mut out: Vec<CatalogError> = Vec::with_capacity(errors.len());
    for e in errors {
        let covered = out.iter().any(|prev| {
            !prev.path.is_empty()
                && (e.path == prev.path
                    || e.path.starts_with(&format!("{}.", prev.path))
                    || e.path.starts_with(&format!("{}[", prev.path)))
        });
        if !covered {
            out.push(e);
        }
    }
    out
}

const ACTION_FIELDS: [&str; 12] = [
    "id",
    "title",
    "category",
    "solution",
    "description",
    "purpose",
    "enforcement",
    "points",
    "risk",
    "controls",
    "rule",
    "secure_score_control",
];

/// Parse one `[[actions]]` entry, recording every problem; missing or broken fields get a
/// neutral placeholder so the rest can still be checked.
fn parse_action(path: &str, item: &toml::Value, errors: &mut Vec<CatalogError>) -> ActionDef {
    let mut def = ActionDef {
        id: String::new(),
        title: String::new(),
        category: String::new(),
        solution: String::new(),
        description: String::new(),
        purpose: Purpose::Preventative,
        enforcement: Enforcement::Mandatory,
        points: None,
        risk: Risk::default(),
        controls: ControlRefs::default(),
        rule: String::new(),
        secure_score_control: None,
    };
    let Some(table) = item.as_table() else {
        errors.push(CatalogError::new(path, "expected a table"));
        return def;
    };
    for key in table.keys() {
        if !ACTION_FIELDS.contains(&key.as_str()) {
            errors.push(CatalogError::new(format!("{path}.{key}"), "unknown field"));
        }
    }
    let text = |field: &str, required: bool, errors: &mut Vec<CatalogError>| -> String {
        match table.get(field) {
            Some(toml::Value::String(s)) => s.clone(),
            Some(other) => {
                errors.push(CatalogError::new(
                    format!("{path}.{field}"),
                    format!("expected a string, found {}", other.type_str()),
                ));
                String::new()
            }
            None if required => {
                errors.push(CatalogError::new(format!("{path}.{field}"), "missing"));
                String::new()
            }
            None => String::new(),
        }
    };
    def.id = text("id", true, errors);
    def.title = text("title", true, errors);
    def.category = text("category", true, errors);
    def.solution = text("solution", true, errors);
    def.description = text("description", true, errors);
    def.rule = text("rule", false, errors);
    let purpose = text("purpose", true, errors);
    let enforcement = text("enforcement", true, errors);
    if table.get("purpose").is_some_and(toml::Value::is_str) {
        match Purpose::parse(&purpose) {
            Some(p) => def.purpose = p,
            None => errors.push(CatalogError::new(
                format!("{path}.purpose"),
                format!(
                    "unknown purpose \"{purpose}\" (expected preventative, detective or corrective)"
                ),
            )),
        }
    }
    if table.get("enforcement").is_some_and(toml::Value::is_str) {
        match Enforcement::parse(&enforcement) {
            Some(e) => def.enforcement = e,
            None => errors.push(CatalogError::new(
                format!("{path}.enforcement"),
                format!(
                    "unknown enforcement \"{enforcement}\" (expected mandatory or discretionary)"
                ),
            )),
        }
    }
    if table.get("risk").is_some() {
        let risk = text("risk", false, errors);
        if table.get("risk").is_some_and(toml::Value::is_str) {
            match Risk::parse(&risk) {
                Some(r) => def.risk = r,
                None => errors.push(CatalogError::new(
                    format!("{path}.risk"),
                    format!("unknown risk \"{risk}\" (expected low, medium or high)"),
                )),
            }
        }
    }
    if table.get("secure_score_control").is_some() {
        def.secure_score_control = Some(text("secure_score_control", false, errors));
    }
    match table.get("points") {
        None => {}
        Some(toml::Value::Integer(p)) => match validate_points(*p) {
            Ok(p) => def.points = Some(p),
            Err(m) => errors.push(CatalogError::new(format!("{path}.points"), m)),
        },
        Some(other) => errors.push(CatalogError::new(
            format!("{path}.points"),
            format!("expected a whole number, found {}", other.type_str()),
        )),
    }
    match table.get("controls") {
        None => {}
        Some(toml::Value::Table(controls)) => {
            let cpath = format!("{path}.controls");
            for key in controls.keys() {
                if !["iso27001", "nist_800_53", "gdpr"].contains(&key.as_str()) {
                    errors.push(CatalogError::new(format!("{cpath}.{key}"), "unknown field"));
                }
            }
            let mut list = |field: &str| -> Vec<String> {
                let fpath = format!("{cpath}.{field}");
                match controls.get(field) {
                    None => Vec::new(),
                    Some(toml::Value::Array(items)) => items
                        .iter()
                        .enumerate()
                        .filter_map(|(j, v)| match v.as_str() {
                            Some(s) => Some(s.to_string()),
                            None => {
                                errors.push(CatalogError::new(
                                    format!("{fpath}[{j}]"),
                                    format!("expected a string, found {}", v.type_str()),
                                ));
                                None
                            }
                        })
                        .collect(),
                    Some(other) => {
                        errors.push(CatalogError::new(
                            fpath,
                            format!("expected an array of strings, found {}", other.type_str()),
                        ));
                        Vec::new()
                    }
                }
            };
            def.controls = ControlRefs {
                iso27001: list("iso27001"),
                nist_800_53: list("nist_800_53"),
                gdpr: list("gdpr"),
            };
        }
        Some(other) => errors.push(CatalogError::new(
            format!("{path}.controls"),
            format!("expected a table, found {}", other.type_str()),
        )),
    }
    def
}

/// Namespaced id: lower-case segments of `[a-z0-9_]` joined by `.`, at least two, not under
/// the reserved `securescore.` prefix.
fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".to_string());
    }
    let segments: Vec<&str> = id.split('.').collect();
    let valid = segments.len() >= 2
        && segments.iter().all(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        });
    if !valid {
        return Err(format!(
            "\"{id}\" is not a namespaced id (lower-case [a-z0-9_] segments joined by '.', at least two)"
        ));
    }
    if id.starts_with(SECURE_SCORE_ID_PREFIX) {
        return Err(format!(
            "\"{id}\": the prefix \"{SECURE_SCORE_ID_PREFIX}\" is reserved for generated Secure Score actions"
        ));
    }
    Ok(())
}

fn small_number(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 3 || !s.chars().all(|c| c.is_ascii_digit()) || s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

/// ISO/IEC 27001:2022 Annex A: `A.5.1`..`A.5.37`, `A.6.1`..`A.6.8`, `A.7.1`..`A.7.14`,
/// `A.8.1`..`A.8.34`.
pub fn check_iso27001(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("A.") else {
        return false;
    };
    let Some((clause, n)) = rest.split_once('.') else {
        return false;
    };
    let max = match clause {
        "5" => 37,
        "6" => 8,
        "7" => 14,
        "8" => 34,
        _ => return false,
    };
    small_number(n).is_some_and(|n| (1..=max).contains(&n))
}

/// NIST SP 800-53 rev 5 control or enhancement: `IA-2`, `IA-2(1)` (family codes of rev 5).
pub fn check_nist(id: &str) -> bool {
    const FAMILIES: [&str; 20] = [
        "AC", "AT", "AU", "CA", "CM", "CP", "IA", "IR", "MA", "MP", "PE", "PL", "PM", "PS", "PT",
        "RA", "SA", "SC", "SI", "SR",
    ];
    let Some((family, rest)) = id.split_once('-') else {
        return false;
    };
    if !FAMILIES.contains(&family) {
        return false;
    }
    let (base, enhancement) = match rest.split_once('(') {
        Some((base, enh)) => match enh.strip_suffix(')') {
            Some(e) => (base, Some(e)),
            None => return false,
        },
        None => (rest, None),
    };
    small_number(base).is_some() && enhancement.is_none_or(|e| small_number(e).is_some())
}

/// GDPR article reference: `Art. 32`, `Art. 32(1)`, `Art. 5(1)(f)` (articles 1..=99).
pub fn check_gdpr(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("Art. ") else {
        return false;
    };
    let (article, mut tail) = match rest.find('(') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if !small_number(article).is_some_and(|n| (1..=99).contains(&n)) {
        return false;
    }
    while !tail.is_empty() {
        let Some(inner_end) = tail.find(')') else {
            return false;
        };
        let inner = &tail[1..inner_end];
        let ok = small_number(inner).is_some()
            || (inner.len() == 1 && inner.chars().all(|c| c.is_ascii_lowercase()));
        if !tail.starts_with('(') || !ok {
            return false;
        }
        tail = &tail[inner_end + 1..];
    }
    true
}

impl fmt::Display for ActionDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.id, self.title)
    }
}
