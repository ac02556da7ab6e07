//! The improvement-action catalog: what can be tested, how many points it earns, which
//! framework controls it satisfies, and the CEL rule that tests it; plus the generated action
//! families ([`FamilyDef`], `[[families]]` tables) whose items become actions of their own.
//!
//! The built-in catalog is data: each connector kind's `config/catalog/<kind>.toml`, embedded
//! in the connectors crate and merged here;
//! [`Catalog::load`] reads another file. Loading validates everything and reports **every**
//! problem at once, each with its key path (`actions[3].points: 120 is not in 1..=99`).
//! No IO except [`Catalog::load`] reading its file. It must not know any connector kind or
//! family by name: those are the catalog files' data.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use super::family::{FamilyDef, FamilyItemRef};
use super::family::{parse_family, validate_families};
use super::points::{Enforcement, Purpose, default_points, validate_points};
use super::rules::CompiledRule;
use super::status::Risk;

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
    pub(super) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
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
    /// CISA SCuBA baseline policy ids, e.g. `MS.AAD.3.2v1`: the action follows that policy's
    /// semantics exactly (the connector's docs say how).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scuba: Vec<String>,
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
    /// CEL rule (see `rules`); may be empty only when [`Self::family_item`] is set.
    pub rule: String,
    /// The item of a generated action family whose credit this action takes (written
    /// `<family item_field> = "<item id>"`, e.g. `secure_score_control = "AdminMFAV2"`). With a
    /// rule, the rule decides; either way the item generates no action of its own.
    pub family_item: Option<FamilyItemRef>,
    /// The scope of the action, given with its document to [`Catalog::from_sources`]: the
    /// connector kind whose catalog defines it, or `catalog:<path>` for a catalog file a
    /// connector names. For a tenant without that
    /// scope the action is out of scope. `None` (a catalog given by `[catalog] path`): it
    /// applies to every tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
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
    /// Generated action families in file order (`[[families]]`, optional).
    #[serde(default)]
    pub families: Vec<FamilyDef>,
}

impl Catalog {
    /// The built-in catalog: the catalogs of every built-in connector kind
    /// (`config/catalog/<kind>.toml`, embedded at build time), merged.
    ///
    /// # Panics
    ///
    /// Never in a released build: the embedded catalog's validity is a build invariant held by
    /// the test `builtin_catalog_loads_and_compiles`. Use [`Catalog::try_builtin`] to get the
    /// errors instead.
    pub fn builtin() -> Catalog {
        match Catalog::try_builtin() {
            Ok(catalog) => catalog,
            Err(errors) => panic!("the built-in catalog is invalid: {errors:?}"),
        }
    }

    /// The built-in catalog, or its problems.
    pub fn try_builtin() -> Result<Catalog, Vec<CatalogError>> {
        let kinds = postured_connectors::builtin_kinds();
        let sources: Vec<_> = kinds
            .iter()
            .map(|k| (k.name(), k.catalog(), Some(k.name())))
            .collect();
        Catalog::from_sources(&sources)
    }

    /// Merge catalog documents `(name, TOML text, scope)`, e.g. every registered connector
    /// kind's `(kind, text, Some(kind))`; each action gets its document's scope
    /// ([`ActionDef::kind`]).
    /// A document's problems are prefixed with its name (`msgraph: actions[3].rule`); an id
    /// defined by two documents, two documents' families declaring the same `item_field` or
    /// overlapping id prefixes, and an action id under another document's family prefix are
    /// problems of the merged catalog (paths into the merged `actions` and `families`).
    pub fn from_sources(
        sources: &[(&str, &str, Option<&str>)],
    ) -> Result<Catalog, Vec<CatalogError>> {
        let mut errors = Vec::new();
        let mut actions = Vec::new();
        let mut families = Vec::new();
        for (name, text, scope) in sources {
            match Catalog::from_toml_str(text) {
                Ok(c) => {
                    actions.extend(c.actions.into_iter().map(|mut a| {
                        a.kind = scope.map(str::to_owned);
                        a
                    }));
                    families.extend(c.families);
                }
                Err(errs) => errors.extend(errs.into_iter().map(|e| CatalogError {
                    path: if e.path.is_empty() {
                        (*name).to_owned()
                    } else {
                        format!("{name}: {}", e.path)
                    },
                    message: e.message,
                })),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let catalog = Catalog { actions, families };
        let errors = catalog.validate();
        if errors.is_empty() {
            Ok(catalog)
        } else {
            Err(errors)
        }
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

    /// Parse and validate a catalog document (`[[actions]]` tables, optional `[[families]]`
    /// tables). An action may name an item only of a family declared in the same document.
    pub fn from_toml_str(text: &str) -> Result<Catalog, Vec<CatalogError>> {
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            vec![CatalogError::new(
                "",
                format!("invalid TOML: {}", e.to_string().trim()),
            )]
        })?;
        let mut errors = Vec::new();
        let mut actions = Vec::new();
        let mut families = Vec::new();
        for key in table.keys() {
            if key != "actions" && key != "families" {
                errors.push(CatalogError::new(key.as_str(), "unknown key"));
            }
        }
        match table.get("families") {
            None => {}
            Some(toml::Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let path = format!("families[{i}]");
                    families.push(parse_family(&path, item, &mut errors));
                }
            }
            Some(_) => errors.push(CatalogError::new("families", "expected an array of tables")),
        }
        let item_fields: Vec<&str> = families.iter().map(|f| f.item_field.as_str()).collect();
        match table.get("actions") {
            None => errors.push(CatalogError::new("actions", "missing")),
            Some(toml::Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let path = format!("actions[{i}]");
                    actions.push(parse_action(&path, item, &item_fields, &mut errors));
                }
            }
            Some(_) => errors.push(CatalogError::new("actions", "expected an array of tables")),
        }
        let catalog = Catalog { actions, families };
        errors.extend(catalog.validate());
        let errors = dedup_errors(errors);
        if errors.is_empty() {
            Ok(catalog)
        } else {
            Err(errors)
        }
    }

    /// Every semantic problem: families (fields, clashes between families), action ids
    /// (format, duplicates, a family's reserved prefix), texts, points, family item references
    /// (unknown family, blank id, an item taken twice), rule (empty, does not compile),
    /// control ids.
    pub fn validate(&self) -> Vec<CatalogError> {
        let mut errors = validate_families(&self.families);
        let mut ids: HashMap<&str, usize> = HashMap::new();
        let mut taken: HashMap<(usize, &str), usize> = HashMap::new();
        let item_fields: Vec<&str> = self
            .families
            .iter()
            .map(|f| f.item_field.as_str())
            .collect();
        for (i, action) in self.actions.iter().enumerate() {
            let at = |field: &str| format!("actions[{i}].{field}");
            if let Err(m) = check_id(&action.id, &self.families) {
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
            if let Some(r) = &action.family_item {
                let c = &r.item;
                match self.family_of(&r.field) {
                    None => errors.push(CatalogError::new(
                        at(&r.field),
                        "no family of this catalog declares this item_field",
                    )),
                    Some((_, family)) if c.trim().is_empty() || c.contains(char::is_whitespace) => {
                        errors.push(CatalogError::new(
                            at(&r.field),
                            format!("\"{c}\" is not a {} id", family.item),
                        ));
                    }
                    Some((k, _)) => {
                        if let Some(first) = taken.insert((k, c), i) {
                            errors.push(CatalogError::new(
                                at(&r.field),
                                format!("\"{c}\" is already taken by actions[{first}]"),
                            ));
                            taken.insert((k, c), first);
                        }
                    }
                }
            }
            if action.rule.trim().is_empty() {
                if action.family_item.is_none() {
                    let message = if item_fields.is_empty() {
                        "must not be empty".to_string()
                    } else {
                        format!(
                            "must not be empty (unless {} is set)",
                            item_fields.join(" or ")
                        )
                    };
                    errors.push(CatalogError::new(at("rule"), message));
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
                ("scuba", &refs.scuba, check_scuba),
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

    /// The family declaring an `[[actions]]` item field, with its index in [`Self::families`].
    pub fn family_of(&self, item_field: &str) -> Option<(usize, &FamilyDef)> {
        self.families
            .iter()
            .enumerate()
            .find(|(_, f)| f.item_field == item_field)
    }
}

fn framework_name(field: &str) -> &'static str {
    match field {
        "iso27001" => "ISO/IEC 27001:2022 Annex A",
        "nist_800_53" => "NIST SP 800-53 rev 5",
        "scuba" => "CISA SCuBA policy",
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

/// The fields of an `[[actions]]` table, besides the item fields its catalog's families
/// declare.
pub(super) const ACTION_FIELDS: [&str; 11] = [
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
];

/// A string field of a table: its value, or `""` after recording a problem at
/// `<path>.<field>` (`expected a string, found integer`; `missing` when `required`).
pub(super) fn string_field(
    table: &toml::Table,
    path: &str,
    field: &str,
    required: bool,
    errors: &mut Vec<CatalogError>,
) -> String {
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
}

/// An optional array of strings at `<path>.<field>`: its strings, after recording a problem
/// for every element that is not one (`<path>.<field>[j]`) or for a value that is not an array.
pub(super) fn string_list(
    table: &toml::Table,
    path: &str,
    field: &str,
    errors: &mut Vec<CatalogError>,
) -> Vec<String> {
    let fpath = format!("{path}.{field}");
    match table.get(field) {
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
}

/// Parse one `[[actions]]` entry, recording every problem; missing or broken fields get a
/// neutral placeholder so the rest can still be checked. `item_fields`: the item fields the
/// document's families declare (at most one may be set).
fn parse_action(
    path: &str,
    item: &toml::Value,
    item_fields: &[&str],
    errors: &mut Vec<CatalogError>,
) -> ActionDef {
    let mut def = ActionDef {
        kind: None,
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
        family_item: None,
    };
    let Some(table) = item.as_table() else {
        errors.push(CatalogError::new(path, "expected a table"));
        return def;
    };
    for key in table.keys() {
        if !ACTION_FIELDS.contains(&key.as_str()) && !item_fields.contains(&key.as_str()) {
            errors.push(CatalogError::new(format!("{path}.{key}"), "unknown field"));
        }
    }
    let text = |field: &str, required: bool, errors: &mut Vec<CatalogError>| -> String {
        string_field(table, path, field, required, errors)
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
    for field in table.keys().filter(|k| item_fields.contains(&k.as_str())) {
        match &def.family_item {
            None => {
                def.family_item = Some(FamilyItemRef {
                    field: field.clone(),
                    item: text(field, false, errors),
                });
            }
            Some(first) => errors.push(CatalogError::new(
                format!("{path}.{field}"),
                format!(
                    "an action takes one family item only ({} is already set)",
                    first.field
                ),
            )),
        }
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
                if !["iso27001", "nist_800_53", "gdpr", "scuba"].contains(&key.as_str()) {
                    errors.push(CatalogError::new(format!("{cpath}.{key}"), "unknown field"));
                }
            }
            let mut list = |field: &str| string_list(controls, &cpath, field, errors);
            def.controls = ControlRefs {
                iso27001: list("iso27001"),
                nist_800_53: list("nist_800_53"),
                gdpr: list("gdpr"),
                scuba: list("scuba"),
            };
        }
        Some(other) => errors.push(CatalogError::new(
            format!("{path}.controls"),
            format!("expected a table, found {}", other.type_str()),
        )),
    }
    def
}

/// Namespaced id: lower-case segments of `[a-z0-9_]` joined by `.`, at least two, not under a
/// family's reserved `id_prefix`.
fn check_id(id: &str, families: &[FamilyDef]) -> Result<(), String> {
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
    for family in families {
        let prefix = &family.id_prefix;
        if !prefix.is_empty() && id.starts_with(prefix.as_str()) {
            return Err(format!(
                "\"{id}\": the prefix \"{prefix}\" is reserved for generated {} actions",
                family.name
            ));
        }
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

/// A CISA SCuBA policy id: `MS.<PRODUCT>.<group>.<number>v<version>`, e.g. `MS.AAD.3.2v1`.
pub fn check_scuba(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("MS.") else {
        return false;
    };
    let mut parts = rest.splitn(3, '.');
    let (Some(product), Some(group), Some(tail)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Some((number, version)) = tail.split_once('v') else {
        return false;
    };
    !product.is_empty()
        && product.chars().all(|c| c.is_ascii_uppercase())
        && [group, number, version]
            .iter()
            .all(|n| small_number(n).is_some_and(|n| n >= 1))
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::evaluation::rules::CompiledRule;

    const SIGNALS_MD: &str = include_str!("../../docs/signals.md");

    /// The Secure Score family, as `config/catalog/msgraph.toml` declares it.
    const SECURE_SCORE_FAMILY: &str = r#"
[[families]]
name = "Secure Score"
item = "control"
item_field = "secure_score_control"
id_prefix = "securescore."
signal_prefix = "msgraph.securescore.controls."
solution = "Microsoft Secure Score"
default_category = "Secure Score"
not_applicable_states = ["ignored"]
alternative_states = ["thirdparty", "reviewed"]
"#;

    fn one_action(extra: &str) -> String {
        format!(
            r#"
[[actions]]
id = "test.action"
title = "T"
category = "Identity"
solution = "S"
description = "D"
purpose = "preventative"
enforcement = "mandatory"
rule = "true"
{extra}
"#
        )
    }

    #[test]
    fn builtin_catalog_loads_and_compiles() {
        let catalog = Catalog::try_builtin().unwrap_or_else(|e| panic!("{e:#?}"));
        assert!(catalog.actions.len() >= 15, "{}", catalog.actions.len());
        for a in &catalog.actions {
            if !a.rule.trim().is_empty() {
                CompiledRule::compile(&a.rule).unwrap_or_else(|e| panic!("{}: {e}", a.id));
            }
            assert!(
                !a.controls.iso27001.is_empty()
                    && !a.controls.nist_800_53.is_empty()
                    && !a.controls.gdpr.is_empty(),
                "{} maps no control of some framework",
                a.id
            );
        }
        let referenced: Vec<_> = catalog
            .actions
            .iter()
            .filter_map(|a| a.family_item.as_ref().map(|r| r.item.as_str()))
            .collect();
        assert!(referenced.contains(&"AdminMFAV2"));
    }

    /// Key patterns from the docs/signals.md table: `msgraph.securescore.controls.<id>.score`
    /// becomes `["msgraph", "securescore", "controls", "*", "score"]`.
    fn documented_keys() -> Vec<Vec<String>> {
        let mut keys = Vec::new();
        for line in SIGNALS_MD.lines().filter(|l| l.starts_with("| `")) {
            let first_cell = line.split('|').nth(1).unwrap_or_default();
            for part in first_cell.split('`').skip(1).step_by(2) {
                keys.push(
                    part.split('.')
                        .map(|s| {
                            if s.starts_with('<') {
                                "*".to_string()
                            } else {
                                s.to_string()
                            }
                        })
                        .collect(),
                );
            }
        }
        keys
    }

    #[test]
    fn builtin_rules_only_read_documented_signals() {
        let documented = documented_keys();
        assert!(documented.len() > 30, "parsed {} keys", documented.len());
        let matches = |path: &str| {
            let segs: Vec<&str> = path.split('.').collect();
            documented.iter().any(|k| {
                k.len() == segs.len() && k.iter().zip(&segs).all(|(p, s)| p == "*" || p == s)
            })
        };
        let catalog = Catalog::try_builtin().unwrap_or_else(|e| panic!("{e:#?}"));
        let mut undocumented = BTreeSet::new();
        for a in &catalog.actions {
            let rule = CompiledRule::compile(&a.rule).ok();
            for path in rule.iter().flat_map(|r| r.paths()) {
                let kinds = postured_connectors::builtin_kinds();
                let of_a_kind = kinds
                    .iter()
                    .any(|k| path.starts_with(&format!("{}.", k.name())));
                if of_a_kind && !matches(path) {
                    undocumented.insert(format!("{}: {path}", a.id));
                }
                assert!(of_a_kind, "{}: unexpected path {path}", a.id);
            }
        }
        assert!(undocumented.is_empty(), "{undocumented:#?}");
    }

    #[test]
    fn builtin_families_read_documented_signals() {
        let documented = documented_keys();
        let catalog = Catalog::try_builtin().unwrap_or_else(|e| panic!("{e:#?}"));
        assert!(!catalog.families.is_empty());
        for family in &catalog.families {
            for field in crate::evaluation::family::ITEM_FIELDS {
                let key = family.key("X", field);
                let segs: Vec<&str> = key.split('.').collect();
                let documented = documented.iter().any(|k| {
                    k.len() == segs.len() && k.iter().zip(&segs).all(|(p, s)| p == "*" || p == s)
                });
                assert!(
                    documented,
                    "{}: {key} is not in docs/signals.md",
                    family.name
                );
            }
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let actions = r#"
[[actions]]
id = "a.one"
title = "One"
category = "Identity"
solution = "S"
description = "D"
purpose = "preventive"
enforcement = "mandatory"
points = 120
rule = "true"

[[actions]]
id = "a.one"
title = ""
category = "Identity"
solution = "S"
description = "D"
purpose = "detective"
enforcement = "sometimes"
rule = ""
colour = "red"

[[actions]]
id = "Bad Id"
title = "T"
category = "C"
solution = "S"
description = "D"
purpose = "corrective"
enforcement = "discretionary"
risk = "extreme"
rule = "msgraph.mfa. >"
controls = { iso27001 = ["A.9.1", "A.8.5"], nist_800_53 = ["IA-2(1)", "XX-1"], gdpr = ["Article 32"] }

[[actions]]
id = "securescore.admin_mfa"
title = "T"
category = "C"
solution = "S"
description = "D"
enforcement = "discretionary"
points = "ten"
rule = "true"
"#;
        let text = format!("{SECURE_SCORE_FAMILY}{actions}");
        let errors = Catalog::from_toml_str(&text).expect_err("invalid catalog");
        let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let expected = [
            "actions[0].purpose: unknown purpose \"preventive\" (expected preventative, detective or corrective)",
            "actions[0].points: 120 is not in 1..=99",
            "actions[1].colour: unknown field",
            "actions[1].enforcement: unknown enforcement \"sometimes\" (expected mandatory or discretionary)",
            "actions[2].risk: unknown risk \"extreme\" (expected low, medium or high)",
            "actions[3].purpose: missing",
            "actions[3].points: expected a whole number, found string",
            "actions[1].id: duplicate id \"a.one\" (first at actions[0])",
            "actions[1].title: must not be empty",
            "actions[1].rule: must not be empty (unless secure_score_control is set)",
            "actions[2].id: \"Bad Id\" is not a namespaced id (lower-case [a-z0-9_] segments joined by '.', at least two)",
            "actions[2].controls.iso27001[0]: \"A.9.1\" is not a valid ISO/IEC 27001:2022 Annex A id",
            "actions[2].controls.nist_800_53[1]: \"XX-1\" is not a valid NIST SP 800-53 rev 5 id",
            "actions[2].controls.gdpr[0]: \"Article 32\" is not a valid GDPR article id",
            "actions[3].id: \"securescore.admin_mfa\": the prefix \"securescore.\" is reserved for generated Secure Score actions",
        ];
        for e in expected {
            assert!(
                got.iter().any(|g| g == e),
                "missing error {e:?} in {got:#?}"
            );
        }
        let rule_error = got
            .iter()
            .find(|g| g.starts_with("actions[2].rule: does not compile: "));
        assert!(rule_error.is_some(), "{got:#?}");
        assert_eq!(got.len(), expected.len() + 1, "{got:#?}");
    }

    #[test]
    fn documents_that_do_not_parse() {
        let table = [
            ("actions = 3", "actions: expected an array of tables"),
            ("", "actions: missing"),
            ("[[actions]]\nid = ", "invalid TOML: "),
            ("actions = [1]", "actions[0]: expected a table"),
        ];
        for (text, expected) in table {
            let errors = Catalog::from_toml_str(text).expect_err(text);
            assert!(
                errors[0].to_string().starts_with(expected),
                "{text:?}: {errors:?}"
            );
        }
    }

    #[test]
    fn points_default_and_override() {
        let catalog = Catalog::from_toml_str(&one_action("")).expect("valid");
        assert_eq!(catalog.actions[0].points(), 27);
        assert_eq!(catalog.actions[0].risk, Risk::Medium);
        let catalog =
            Catalog::from_toml_str(&one_action("points = 5\nrisk = \"high\"")).expect("valid");
        assert_eq!(catalog.actions[0].points(), 5);
        assert_eq!(catalog.actions[0].risk, Risk::High);
        let errors = Catalog::from_toml_str(&one_action("points = 0")).expect_err("0");
        assert_eq!(
            errors[0].to_string(),
            "actions[0].points: 0 is not in 1..=99"
        );
    }

    #[test]
    fn secure_score_reference_allows_an_empty_rule_once() {
        let action =
            one_action("secure_score_control = \"AdminMFAV2\"").replace("rule = \"true\"", "");
        let ok = format!("{SECURE_SCORE_FAMILY}{action}");
        assert!(Catalog::from_toml_str(&ok).is_ok());
        let twice = format!("{ok}\n{}", action.replace("test.action", "test.other"));
        let errors = Catalog::from_toml_str(&twice).expect_err("twice");
        assert_eq!(
            errors[0].to_string(),
            "actions[1].secure_score_control: \"AdminMFAV2\" is already taken by actions[0]"
        );
    }

    #[test]
    fn load_reads_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("actions.toml");
        std::fs::write(&path, one_action("")).expect("write");
        assert_eq!(Catalog::load(&path).expect("load").actions.len(), 1);
        let missing = Catalog::load(&dir.path().join("nope.toml")).expect_err("missing");
        assert!(
            missing[0].message.starts_with("cannot read "),
            "{missing:?}"
        );
    }

    #[test]
    fn control_id_formats() {
        for (id, ok) in [
            ("A.5.1", true),
            ("A.5.37", true),
            ("A.5.38", false),
            ("A.6.8", true),
            ("A.7.14", true),
            ("A.8.34", true),
            ("A.8.35", false),
            ("A.9.1", false),
            ("A.8.05", false),
        ] {
            assert_eq!(check_iso27001(id), ok, "{id}");
        }
        for (id, ok) in [
            ("IA-2", true),
            ("IA-2(1)", true),
            ("AC-6(5)", true),
            ("ia-2", false),
            ("IA-2(1", false),
            ("XX-1", false),
            ("IA-", false),
        ] {
            assert_eq!(check_nist(id), ok, "{id}");
        }
        for (id, ok) in [
            ("Art. 32", true),
            ("Art. 32(1)", true),
            ("Art. 5(1)(f)", true),
            ("Art 32", false),
            ("Art. 0", false),
            ("Art. 5(1", false),
            ("Art. 5(F)", false),
        ] {
            assert_eq!(check_gdpr(id), ok, "{id}");
        }
    }
}
