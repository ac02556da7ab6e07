//! OSCAL: catalogs (JSON and XML) and profiles in, `assessment-results` JSON out.
//!
//! Import is lenient about what it does not use and strict about what it needs: every control
//! must have an `id` and a `title`. Catalogs are flattened into [`OscalCatalog`] (every
//! control and enhancement, depth-first, in document order, with its top-level group as
//! family); [`template_from_catalog`] turns one into a [`Template`](crate::model::template::Template)
//! without actions; for SP 800-53 rev 5 and CSF 2.0 ([`framework::recognise`]) the import
//! (`crate::interchange::formats::import`) then names the built-in template's actions on
//! them ([`mapping::map_actions`]).
//!
//! Sources: NIST OSCAL 1.x catalog and profile models
//! (<https://pages.nist.gov/OSCAL/reference/latest/catalog/json-reference/>); tested on NIST's
//! SP 800-53 rev 5 resolved-profile catalogs (JSON) and the CSF 2.0 catalog (XML).
//!
//! One module per responsibility, their public items re-exported here (callers use
//! `crate::interchange::oscal::...`):
//! - `catalog_json`: catalog import from JSON ([`catalog_from_json`]);
//! - `catalog_xml`: catalog import from XML with roxmltree ([`catalog_from_xml`],
//!   [`MAX_XML_DEPTH`]);
//!
//! Both catalog importers spend one [`MAX_INSERT_EXPANSION_BYTES`] budget on the parameter
//! text that `insert`s add to statements; JSON documents are held to [`MAX_JSON_VALUES`]
//! values, XML ones to [`MAX_XML_NODES`] nodes.
//! - `profile`: the control ids a profile selects and its title ([`profile_control_ids`],
//!   [`profile_selection`]);
//! - [`framework`]: which framework a catalog or profile is (SP 800-53 rev 5, CSF 2.0) and
//!   the id an import derives;
//! - [`mapping`]: the actions an imported framework takes from its built-in template;
//! - `template`: catalog → template ([`template_from_catalog`], [`MAX_DESCRIPTION_CHARS`]);
//! - `export`: report → `assessment-results` ([`assessment_results`],
//!   [`assessment_results_json`]).
//!
//! This file holds what they share: the flattened catalog types, the control-id forms
//! ([`OscalControl::template_id`], [`control_token`]) and small JSON/text helpers.
//!
//! Stable API used by the model's built-in templates: [`catalog_from_json`],
//! [`catalog_from_xml`], [`profile_control_ids`], [`template_from_catalog`].
//!
//! Must not: do IO (files, store, clock; exported UUIDs are random v4) — the CLI
//! (`super::cli`) reads and writes.

use serde_json::Value;

use super::ImportError;

mod catalog_json;
mod catalog_xml;
mod export;
pub mod framework;
pub mod mapping;
mod profile;
mod template;

pub use catalog_json::catalog_from_json;
pub use catalog_xml::{MAX_XML_DEPTH, MAX_XML_NODES, catalog_from_xml};
pub use export::{OSCAL_VERSION, POSTURED_NS, assessment_results, assessment_results_json};
pub use profile::{ProfileSelection, profile_control_ids, profile_selection};
pub use template::{MAX_DESCRIPTION_CHARS, framework_controls, template_from_catalog};

/// Most bytes of parameter text that `insert`s may add to a catalog's statements, all
/// together: 4 MiB. Parameters inserted into statements (and, in JSON, into other parameters'
/// labels, two levels deep) can multiply a small file into gigabytes; NIST's SP 800-53 rev 5
/// MODERATE baseline catalog adds about 20 KB. Past the budget the import fails, located at
/// the control whose statement crossed it.
pub const MAX_INSERT_EXPANSION_BYTES: usize = 4 * 1024 * 1024;

/// The bytes `insert`s have added so far to one catalog's statements (see
/// [`MAX_INSERT_EXPANSION_BYTES`]).
#[derive(Debug, Default)]
struct InsertBudget {
    used: usize,
}

impl InsertBudget {
    /// Count `bytes` more inserted text; `false` once the total is past the budget.
    fn spend(&mut self, bytes: usize) -> bool {
        self.used = self.used.saturating_add(bytes);
        !self.exhausted()
    }

    fn exhausted(&self) -> bool {
        self.used > MAX_INSERT_EXPANSION_BYTES
    }

    /// The error for the control at `location` whose statement crossed the budget.
    fn error(location: String) -> ImportError {
        ImportError::new(
            location,
            format!(
                "parameter inserts expand the statements past {MAX_INSERT_EXPANSION_BYTES} \
                 bytes (parameters inserted too often, or into each other)"
            ),
        )
    }
}

/// A catalog flattened for import.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OscalCatalog {
    /// Catalog `uuid`.
    pub uuid: String,
    /// `metadata.title`.
    pub title: String,
    /// `metadata.version`.
    pub version: String,
    /// `metadata.oscal-version`.
    pub oscal_version: String,
    /// Every control and control enhancement, depth-first in document order.
    pub controls: Vec<OscalControl>,
}

impl OscalCatalog {
    /// The control with this OSCAL id (`ac-2.1`) or label (`AC-2(1)`), case-insensitively.
    pub fn find(&self, id: &str) -> Option<&OscalControl> {
        self.controls.iter().find(|c| c.matches(id))
    }
}

/// One control (or enhancement) of a catalog.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OscalControl {
    /// OSCAL id, e.g. `ac-2.1`, `GV.OC-01`.
    pub id: String,
    /// The `label` prop without a class (else the first `label`), e.g. `AC-2(1)`,
    /// `Organizational Context (GV.OC)`.
    pub label: Option<String>,
    /// Control `class`, e.g. `SP800-53-enhancement`, `subcategory`.
    pub class: Option<String>,
    /// Control title.
    pub title: String,
    /// Title of the top-level group it sits in (`Access Control`, `GOVERN`); empty when none.
    pub family: String,
    /// OSCAL id of the enclosing control, for enhancements and sub-controls.
    pub parent: Option<String>,
    /// The `statement` part's prose, flattened: item labels kept (`a. ... b. ...`), parameter
    /// inserts replaced by `[Assignment: label]` / `[Selection: a; b]`, whitespace collapsed.
    pub statement: String,
    /// `status` prop is `withdrawn`.
    pub withdrawn: bool,
}

impl OscalControl {
    /// The id used in templates: the label when it is a single token (`AC-2(1)`, `GV.OC-01`),
    /// else the OSCAL id upper-cased with an 800-53 style enhancement suffix `.N` written `(N)`
    /// (`ac-2.1` → `AC-2(1)`, `GV.OC` → `GV.OC`).
    pub fn template_id(&self) -> String {
        if let Some(label) = &self.label
            && !label.is_empty()
            && !label.chars().any(char::is_whitespace)
        {
            return label.clone();
        }
        upper_id(&self.id)
    }

    /// Whether `id` names this control (OSCAL id, label or template id; case-insensitive).
    pub fn matches(&self, id: &str) -> bool {
        let id = id.trim();
        self.id.eq_ignore_ascii_case(id)
            || self
                .label
                .as_deref()
                .is_some_and(|l| l.eq_ignore_ascii_case(id))
            || self.template_id().eq_ignore_ascii_case(id)
    }
}

/// `ac-2.1` → `AC-2(1)`; other ids are only upper-cased.
fn upper_id(id: &str) -> String {
    let up = id.to_ascii_uppercase();
    if let Some((base, enh)) = up.split_once('.')
        && base.contains('-')
        && !base.contains('.')
        && !enh.is_empty()
        && enh.chars().all(|c| c.is_ascii_digit())
    {
        return format!("{base}({enh})");
    }
    up
}

/// The OSCAL `control-id` token for a template control id: `AC-2(1)` → `ac-2.1`,
/// `A.8.5` → `a.8.5`, `Art. 32` → `art.32`, `PR.AA-03` → `pr.aa-03`.
///
/// Rule: lower-case; `(` becomes `.`, `)` is dropped; any character other than letters,
/// digits, `.`, `-`, `_` becomes `-`; a `-` right after a `.` or another `-` is dropped and
/// trailing `.`/`-` are removed; a result not starting with a letter or `_` gets a leading
/// `_` (OSCAL tokens must). Catalog ids (`ac-2.1`) map to themselves.
pub fn control_token(id: &str) -> String {
    let mut out = String::with_capacity(id.len() + 1);
    for c in id.trim().chars() {
        let mapped = match c {
            '(' => '.',
            ')' => continue,
            c if c.is_alphanumeric() || c == '.' || c == '_' || c == '-' => c,
            _ => '-',
        };
        if mapped == '-' && (out.ends_with('-') || out.ends_with('.')) {
            continue;
        }
        if mapped == '.' && out.ends_with('-') {
            out.pop();
        }
        for l in mapped.to_lowercase() {
            out.push(l);
        }
    }
    while out.ends_with('-') || out.ends_with('.') {
        out.pop();
    }
    if !out.starts_with(|c: char| c.is_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    out
}

/// Most JSON values (objects, arrays, strings, numbers, booleans, nulls; keys not counted) a
/// catalog or profile may have: 2,000,000. NIST's SP 800-53 rev 5 MODERATE baseline catalog
/// has about 71,000. Counted while parsing, before any value is built, so a file of tiny
/// values (`[0,0,0,...]`) cannot grow into a huge `serde_json::Value`.
pub const MAX_JSON_VALUES: usize = 2_000_000;

/// A `serde` visitor counting a document's values without building them, failing past
/// [`MAX_JSON_VALUES`].
struct CountValues<'a>(&'a std::cell::Cell<usize>);

impl CountValues<'_> {
    fn tick<E: serde::de::Error>(&self) -> Result<(), E> {
        let n = self.0.get() + 1;
        self.0.set(n);
        if n > MAX_JSON_VALUES {
            Err(E::custom(format!(
                "the document has more than {MAX_JSON_VALUES} values"
            )))
        } else {
            Ok(())
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for CountValues<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for CountValues<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.tick()
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.tick()
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        self.tick()
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        self.tick()
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        self.tick()
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.tick()
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.tick()?;
        while seq.next_element_seed(CountValues(self.0))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.tick()?;
        while map.next_key::<serde::de::IgnoredAny>()?.is_some() {
            map.next_value_seed(CountValues(self.0))?;
        }
        Ok(())
    }
}

/// Parse JSON text (a catalog or a profile): first counted ([`MAX_JSON_VALUES`]), then built.
/// Malformed JSON (also nesting deeper than `serde_json`'s 128 levels) is one error located
/// `line:column`, and so is a document past the value limit.
fn json_root(text: &str) -> Result<Value, Vec<ImportError>> {
    let located = |e: serde_json::Error| {
        let message = if e.classify() == serde_json::error::Category::Data {
            e.to_string()
        } else {
            format!("not JSON: {e}")
        };
        vec![ImportError::new(
            format!("{}:{}", e.line(), e.column()),
            message,
        )]
    };
    let count = std::cell::Cell::new(0);
    let mut de = serde_json::Deserializer::from_str(text);
    serde::de::DeserializeSeed::deserialize(CountValues(&count), &mut de).map_err(located)?;
    de.end().map_err(located)?;
    serde_json::from_str(text).map_err(located)
}

/// The string at `key` of a JSON object ("" when absent or not a string).
fn str_of(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The array at `key` of a JSON object (empty when absent or not an array).
fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// How a parameter insert is shown in a statement: `[Selection: a; b]` when it has choices,
/// else `[Assignment: label]`, else `[Assignment]`.
fn param_text(label: &str, choices: &[&str]) -> String {
    if !choices.is_empty() {
        format!("[Selection: {}]", choices.join("; "))
    } else if !label.is_empty() {
        format!("[Assignment: {label}]")
    } else {
        "[Assignment]".to_owned()
    }
}

/// Runs of whitespace collapsed to one space, trimmed.
fn collapse_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NIST's MODERATE resolved-profile catalog and CSF 2.0 catalog, as embedded for the
    /// built-in templates (config/frameworks/SOURCES.md); the LOW profile is a test fixture.
    const MODERATE: &str = include_str!(
        "../../../config/frameworks/NIST_SP-800-53_rev5_MODERATE-baseline-resolved-profile_catalog-min.json"
    );
    const LOW_PROFILE: &str =
        include_str!("../../../tests/fixtures/oscal/NIST_SP-800-53_rev5_LOW-baseline_profile.json");
    const CSF: &str = include_str!("../../../config/frameworks/NIST_CSF_v2.0_catalog.xml");

    #[test]
    fn moderate_baseline_catalog_becomes_a_template() {
        let cat = catalog_from_json(MODERATE).expect("MODERATE catalog parses");
        assert!(cat.title.contains("800-53"), "{}", cat.title);
        let ia21 = cat.find("ia-2.1").expect("ia-2.1");
        assert_eq!(ia21.template_id(), "IA-2(1)");
        assert_eq!(ia21.parent.as_deref(), Some("ia-2"));
        assert_eq!(ia21.family, "Identification and Authentication");
        let t = template_from_catalog(
            &cat,
            "nist-moderate",
            "NIST MODERATE",
            "NIST SP 800-53 Rev. 5",
            None,
        );
        let ac2 = t.controls.iter().find(|c| c.id == "AC-2").expect("AC-2");
        assert_eq!(ac2.family, "Access Control");
        assert_eq!(ac2.title, "Account Management");
        assert!(
            ac2.description.starts_with("a. Define and document"),
            "{}",
            ac2.description
        );
        assert!(!ac2.description.contains("{{"), "{}", ac2.description);
        assert!(
            ac2.description.contains("[Assignment: "),
            "{}",
            ac2.description
        );
        assert!(ac2.description.chars().count() <= MAX_DESCRIPTION_CHARS);
        assert!(t.actions.is_empty());
    }

    #[test]
    fn profile_selects_controls_from_the_catalog() {
        let ids = profile_control_ids(LOW_PROFILE).expect("profile parses");
        assert_eq!(ids.len(), 149);
        assert!(ids.contains(&"ia-2.1".to_owned()));
        let cat = catalog_from_json(MODERATE).expect("MODERATE catalog parses");
        let t = template_from_catalog(&cat, "low", "LOW", "NIST", Some(&ids));
        assert_eq!(t.controls.len(), 149);
        assert!(t.controls.iter().any(|c| c.id == "IA-2(1)"));
    }

    #[test]
    fn csf_xml_catalog_parses() {
        let cat = catalog_from_xml(CSF).expect("CSF parses");
        assert_eq!(cat.title, "NIST Cybersecurity Framework 2.0");
        assert_eq!(cat.controls.len(), 219);
        let t = template_from_catalog(&cat, "csf", "CSF 2.0", "NIST CSF 2.0", None);
        let oc01 = t
            .controls
            .iter()
            .find(|c| c.id == "GV.OC-01")
            .expect("GV.OC-01");
        assert_eq!(oc01.family, "GOVERN");
        assert_eq!(oc01.title, "Organizational Context");
        assert_eq!(
            oc01.description,
            "The organizational mission is understood and informs cybersecurity risk management"
        );
        let oc = t
            .controls
            .iter()
            .find(|c| c.id == "GV.OC")
            .expect("GV.OC category");
        assert_eq!(oc.title, "Organizational Context");
        let subcats: Vec<String> = cat
            .controls
            .iter()
            .filter(|c| c.class.as_deref() == Some("subcategory"))
            .map(|c| c.id.clone())
            .collect();
        let only = template_from_catalog(&cat, "csf", "CSF", "CSF", Some(&subcats));
        assert!(only.controls.iter().all(|c| c.id.contains('-')));
    }

    #[test]
    fn malformed_inputs_are_located() {
        let e = catalog_from_json("{\n  \"catalog\": [").unwrap_err();
        assert!(e[0].location.starts_with("2:"), "{e:?}");
        let e = catalog_from_json(r#"{"profile": {}}"#).unwrap_err();
        assert_eq!(
            e[0].to_string(),
            "$: not an OSCAL catalog: no top-level `catalog` object (this is a profile: import \
             its catalog and pass the profile with --profile)"
        );
        let e = catalog_from_json(
            r#"{"catalog": {"groups": [{"title": "G", "controls": [{"id": "x-1"}, {"title": "T"}]}]}}"#,
        )
        .unwrap_err();
        let msgs: Vec<String> = e.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            vec![
                "catalog.groups[0].controls[0].title: missing control title",
                "catalog.groups[0].controls[1].id: missing control id",
            ]
        );
        let e = catalog_from_xml("<catalog><group><control id='a'></group></catalog>").unwrap_err();
        assert!(e[0].message.contains("malformed XML"), "{e:?}");
        let e = catalog_from_xml("<?xml version=\"1.0\"?>\n  <profile/>").unwrap_err();
        assert!(e[0].message.contains("root element is `profile`"), "{e:?}");
        assert_eq!(e[0].location, "2:3");
        let e = catalog_from_xml(
            "<catalog>\n<group><title>G</title>\n  <control id=\"x\"/></group></catalog>",
        )
        .unwrap_err();
        assert_eq!(e[0].to_string(), "3:3: control `x` has no title");
        let e =
            profile_control_ids(r#"{"profile": {"imports": [{"include-all": {}}]}}"#).unwrap_err();
        assert_eq!(e[0].location, "profile.imports[0].include-all");
    }

    #[test]
    fn control_tokens() {
        assert_eq!(control_token("AC-2(1)"), "ac-2.1");
        assert_eq!(control_token("ac-2.1"), "ac-2.1");
        assert_eq!(control_token("A.8.5"), "a.8.5");
        assert_eq!(control_token("Art. 32"), "art.32");
        assert_eq!(control_token("PR.AA-03"), "pr.aa-03");
        assert_eq!(control_token("5.1 (a)"), "_5.1.a");
        assert_eq!(upper_id("ac-2.1"), "AC-2(1)");
        assert_eq!(upper_id("gv.oc-01"), "GV.OC-01");
    }
}
