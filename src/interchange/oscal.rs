//! OSCAL: catalogs (JSON and XML) and profiles in, `assessment-results` JSON out.
//!
//! Import is lenient about what it does not use and strict about what it needs: every control
//! must have an `id` and a `title`. Catalogs are flattened into [`OscalCatalog`] (every
//! control and enhancement, depth-first, in document order, with its top-level group as
//! family); [`template_from_catalog`] turns one into a [`Template`] without actions (controls
//! only; actions are mapped by other templates or by hand).
//!
//! Sources: NIST OSCAL 1.x catalog and profile models
//! (<https://pages.nist.gov/OSCAL/reference/latest/catalog/json-reference/>); tested on NIST's
//! SP 800-53 rev 5 resolved-profile catalogs (JSON) and the CSF 2.0 catalog (XML).
//!
//! Stable API used by the model's built-in templates: [`catalog_from_json`],
//! [`catalog_from_xml`], [`profile_control_ids`], [`template_from_catalog`].

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use quick_xml::events::Event;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{ExportError, ImportError};
use crate::model::report::{AssessmentReport, ControlStatus, TestingSource};
use crate::model::template::{Template, TemplateControl};

/// Longest control description kept by [`template_from_catalog`], in characters; longer
/// statements are cut at a word boundary and end with `…`.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;

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

// ---------------------------------------------------------------------------------------------
// JSON catalogs and profiles
// ---------------------------------------------------------------------------------------------

/// Parse an OSCAL catalog in JSON (`{"catalog": {...}}`), e.g. NIST's SP 800-53 rev 5 catalog
/// or a resolved baseline profile catalog.
///
/// # Errors
///
/// Every problem, located: `line:column` for malformed JSON, else a JSON path such as
/// `catalog.groups[0].controls[3].id` for a missing id or title.
pub fn catalog_from_json(text: &str) -> Result<OscalCatalog, Vec<ImportError>> {
    let root: Value = serde_json::from_str(text).map_err(|e| {
        vec![ImportError::new(
            format!("{}:{}", e.line(), e.column()),
            format!("not JSON: {e}"),
        )]
    })?;
    let Some(cat) = root.get("catalog").filter(|c| c.is_object()) else {
        let hint = if root.get("profile").is_some() {
            " (this is a profile: import its catalog and pass the profile with --profile)"
        } else {
            ""
        };
        return Err(vec![ImportError::new(
            "$",
            format!("not an OSCAL catalog: no top-level `catalog` object{hint}"),
        )]);
    };
    let meta = cat.get("metadata");
    let meta_str = |k: &str| {
        meta.and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let mut out = OscalCatalog {
        uuid: str_of(cat, "uuid"),
        title: meta_str("title"),
        version: meta_str("version"),
        oscal_version: meta_str("oscal-version"),
        controls: Vec::new(),
    };
    let mut errors = Vec::new();
    let mut params = HashMap::new();
    collect_json_params(cat, &mut params);
    walk_json(
        cat,
        "catalog",
        "",
        None,
        &params,
        &mut out.controls,
        &mut errors,
    );
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn str_of(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Every `params` entry anywhere under `v`, id → display text.
fn collect_json_params(v: &Value, params: &mut HashMap<String, String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(ps)) = map.get("params") {
                for p in ps {
                    let id = str_of(p, "id");
                    if id.is_empty() {
                        continue;
                    }
                    let choices: Vec<&str> =
                        array(p.get("select").unwrap_or(&Value::Null), "choice")
                            .iter()
                            .filter_map(Value::as_str)
                            .collect();
                    let label = str_of(p, "label");
                    params.insert(id, param_text(&label, &choices));
                }
            }
            for (k, child) in map {
                if k != "params" && k != "back-matter" && k != "metadata" {
                    collect_json_params(child, params);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_json_params(i, params)),
        _ => {}
    }
}

fn param_text(label: &str, choices: &[&str]) -> String {
    if !choices.is_empty() {
        format!("[Selection: {}]", choices.join("; "))
    } else if !label.is_empty() {
        format!("[Assignment: {label}]")
    } else {
        "[Assignment]".to_owned()
    }
}

/// Replace `{{ insert: param, ID }}` by the parameter's text (nested inserts resolved once).
fn resolve_inserts(text: &str, params: &HashMap<String, String>, depth: u8) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        out.push_str(&rest[..start]);
        let inner = rest[start + 2..start + len].trim();
        let id = inner
            .strip_prefix("insert:")
            .map(str::trim)
            .and_then(|s| s.split_once(','))
            .map(|(_, id)| id.trim())
            .unwrap_or(inner);
        match params.get(id) {
            Some(t) if depth > 0 => out.push_str(&resolve_inserts(t, params, depth - 1)),
            _ => out.push_str("[Assignment]"),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

fn label_prop_json(v: &Value) -> Option<String> {
    let labels: Vec<&Value> = array(v, "props")
        .iter()
        .filter(|p| p.get("name").and_then(Value::as_str) == Some("label"))
        .collect();
    labels
        .iter()
        .find(|p| p.get("class").is_none())
        .or_else(|| labels.first())
        .and_then(|p| p.get("value"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn flatten_json_part(part: &Value, out: &mut Vec<String>) {
    if let Some(label) = label_prop_json(part) {
        out.push(label);
    }
    if let Some(prose) = part.get("prose").and_then(Value::as_str) {
        out.push(prose.to_owned());
    }
    for p in array(part, "parts") {
        flatten_json_part(p, out);
    }
}

#[allow(clippy::too_many_arguments)]
fn walk_json(
    node: &Value,
    path: &str,
    family: &str,
    parent: Option<&str>,
    params: &HashMap<String, String>,
    out: &mut Vec<OscalControl>,
    errors: &mut Vec<ImportError>,
) {
    for (i, group) in array(node, "groups").iter().enumerate() {
        let gpath = format!("{path}.groups[{i}]");
        let title = str_of(group, "title");
        if title.is_empty() {
            errors.push(ImportError::new(
                format!("{gpath}.title"),
                "missing group title",
            ));
        }
        let fam = if family.is_empty() {
            title.as_str()
        } else {
            family
        };
        walk_json(group, &gpath, fam, parent, params, out, errors);
    }
    for (i, control) in array(node, "controls").iter().enumerate() {
        let cpath = format!("{path}.controls[{i}]");
        let id = str_of(control, "id");
        let title = str_of(control, "title");
        if id.is_empty() {
            errors.push(ImportError::new(
                format!("{cpath}.id"),
                "missing control id",
            ));
        }
        if title.trim().is_empty() {
            errors.push(ImportError::new(
                format!("{cpath}.title"),
                "missing control title",
            ));
        }
        let mut prose = Vec::new();
        for part in array(control, "parts") {
            if part.get("name").and_then(Value::as_str) == Some("statement") {
                flatten_json_part(part, &mut prose);
            }
        }
        let withdrawn = array(control, "props").iter().any(|p| {
            p.get("name").and_then(Value::as_str) == Some("status")
                && p.get("value").and_then(Value::as_str) == Some("withdrawn")
        });
        out.push(OscalControl {
            id: id.clone(),
            label: label_prop_json(control),
            class: control
                .get("class")
                .and_then(Value::as_str)
                .map(str::to_owned),
            title: collapse_ws(&title),
            family: family.to_owned(),
            parent: parent.map(str::to_owned),
            statement: collapse_ws(&resolve_inserts(&prose.join(" "), params, 2)),
            withdrawn,
        });
        walk_json(control, &cpath, family, Some(&id), params, out, errors);
    }
}

fn collapse_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The control ids an OSCAL profile (JSON, `{"profile": {...}}`) selects: every
/// `imports[].include-controls[].with-ids[]`, in order, without duplicates, minus every
/// `imports[].exclude-controls[].with-ids[]`. Ids are returned as written (`ac-2`, `ia-2.1`);
/// pass them as `select` to [`template_from_catalog`] with the imported catalog.
///
/// # Errors
///
/// Malformed JSON (`line:column`), no `profile` object, an import with `include-all` (select
/// nothing to take the whole catalog instead) or with `matching` patterns (not supported), or
/// a profile that selects no id.
pub fn profile_control_ids(text: &str) -> Result<Vec<String>, Vec<ImportError>> {
    let root: Value = serde_json::from_str(text).map_err(|e| {
        vec![ImportError::new(
            format!("{}:{}", e.line(), e.column()),
            format!("not JSON: {e}"),
        )]
    })?;
    let Some(profile) = root.get("profile").filter(|p| p.is_object()) else {
        return Err(vec![ImportError::new(
            "$",
            "not an OSCAL profile: no top-level `profile` object",
        )]);
    };
    let mut errors = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    let mut excluded: Vec<String> = Vec::new();
    for (i, import) in array(profile, "imports").iter().enumerate() {
        let ipath = format!("profile.imports[{i}]");
        if import.get("include-all").is_some() {
            errors.push(ImportError::new(
                format!("{ipath}.include-all"),
                "include-all is not supported: import the catalog without a profile",
            ));
        }
        for (key, into) in [
            ("include-controls", &mut ids),
            ("exclude-controls", &mut excluded),
        ] {
            for (j, sel) in array(import, key).iter().enumerate() {
                if sel.get("matching").is_some() {
                    errors.push(ImportError::new(
                        format!("{ipath}.{key}[{j}].matching"),
                        "`matching` patterns are not supported; list the ids in `with-ids`",
                    ));
                }
                for id in array(sel, "with-ids").iter().filter_map(Value::as_str) {
                    if !into.iter().any(|x| x == id) {
                        into.push(id.to_owned());
                    }
                }
            }
        }
    }
    ids.retain(|id| !excluded.contains(id));
    if errors.is_empty() && ids.is_empty() {
        errors.push(ImportError::new(
            "profile.imports",
            "the profile selects no control (no include-controls with-ids)",
        ));
    }
    if errors.is_empty() {
        Ok(ids)
    } else {
        Err(errors)
    }
}

// ---------------------------------------------------------------------------------------------
// XML catalogs
// ---------------------------------------------------------------------------------------------

/// A minimal element tree: enough to walk an OSCAL catalog.
#[derive(Debug, Default)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
    /// Byte offset of the start tag, for error locations.
    offset: u64,
}

#[derive(Debug)]
enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn elements<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter_map(move |n| match n {
            Node::Element(e) if e.name == name => Some(e),
            _ => None,
        })
    }

    fn child_text(&self, name: &str) -> String {
        self.elements(name)
            .next()
            .map(|e| {
                let mut s = String::new();
                e.text_into(&mut s, &HashMap::new());
                collapse_ws(&s)
            })
            .unwrap_or_default()
    }

    /// All text below, `insert` elements replaced by their parameter's text; child `prop`s
    /// skipped, a `part`'s label prop written before its text.
    fn text_into(&self, out: &mut String, params: &HashMap<String, String>) {
        for n in &self.children {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Element(e) => match e.name.as_str() {
                    "prop" | "link" | "title" => {}
                    "insert" => {
                        let id = e.attr("id-ref").unwrap_or_default();
                        out.push(' ');
                        out.push_str(params.get(id).map(String::as_str).unwrap_or("[Assignment]"));
                        out.push(' ');
                    }
                    "part" => {
                        out.push(' ');
                        if let Some(l) = e.label() {
                            out.push_str(&l);
                            out.push(' ');
                        }
                        e.text_into(out, params);
                        out.push(' ');
                    }
                    _ => {
                        out.push(' ');
                        e.text_into(out, params);
                        out.push(' ');
                    }
                },
            }
        }
    }

    fn label(&self) -> Option<String> {
        let labels: Vec<&Element> = self
            .elements("prop")
            .filter(|p| p.attr("name") == Some("label"))
            .collect();
        labels
            .iter()
            .find(|p| p.attr("class").is_none())
            .or_else(|| labels.first())
            .and_then(|p| p.attr("value"))
            .map(str::to_owned)
    }
}

fn local_name(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    match s.rsplit_once(':') {
        Some((_, local)) => local.to_owned(),
        None => s.into_owned(),
    }
}

fn parse_xml(text: &str) -> Result<Element, ImportError> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut stack: Vec<Element> = vec![Element::default()];
    let xml_err = |pos: u64, e: &dyn std::fmt::Display| {
        ImportError::new(format!("byte {pos}"), format!("malformed XML: {e}"))
    };
    loop {
        let pos = reader.buffer_position();
        match reader.read_event() {
            Err(e) => return Err(xml_err(reader.error_position(), &e)),
            Ok(Event::Eof) => break,
            Ok(Event::Start(start)) => {
                stack.push(element_of(&start, pos).map_err(|e| xml_err(pos, &e))?);
            }
            Ok(Event::Empty(start)) => {
                let el = element_of(&start, pos).map_err(|e| xml_err(pos, &e))?;
                if let Some(top) = stack.last_mut() {
                    top.children.push(Node::Element(el));
                }
            }
            Ok(Event::End(_)) => {
                if stack.len() < 2 {
                    return Err(xml_err(pos, &"unexpected end tag"));
                }
                if let Some(el) = stack.pop()
                    && let Some(top) = stack.last_mut()
                {
                    top.children.push(Node::Element(el));
                }
            }
            Ok(Event::Text(t)) => {
                let s = t.decode().map_err(|e| xml_err(pos, &e))?;
                let s = quick_xml::escape::unescape(&s).map_err(|e| xml_err(pos, &e))?;
                if let Some(top) = stack.last_mut() {
                    top.children.push(Node::Text(s.into_owned()));
                }
            }
            Ok(Event::GeneralRef(r)) => {
                let name = r.decode().map_err(|e| xml_err(pos, &e))?;
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => quick_xml::escape::resolve_predefined_entity(&name)
                        .map(str::to_owned)
                        .unwrap_or_default(),
                };
                if let Some(top) = stack.last_mut() {
                    top.children.push(Node::Text(resolved));
                }
            }
            Ok(Event::CData(c)) => {
                let s = String::from_utf8_lossy(&c.into_inner()).into_owned();
                if let Some(top) = stack.last_mut() {
                    top.children.push(Node::Text(s));
                }
            }
            Ok(_) => {}
        }
    }
    if stack.len() != 1 {
        return Err(ImportError::new(
            "end of document",
            "malformed XML: unclosed element",
        ));
    }
    let mut doc = stack.pop().unwrap_or_default();
    doc.children
        .drain(..)
        .find_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
        .ok_or_else(|| ImportError::new("byte 0", "empty XML document"))
}

fn element_of(
    start: &quick_xml::events::BytesStart<'_>,
    offset: u64,
) -> Result<Element, quick_xml::Error> {
    let mut attrs = Vec::new();
    for a in start.attributes() {
        let a = a.map_err(quick_xml::Error::from)?;
        let value = a.unescape_value()?.into_owned();
        attrs.push((local_name(a.key.as_ref()), value));
    }
    Ok(Element {
        name: local_name(start.name().as_ref()),
        attrs,
        children: Vec::new(),
        offset,
    })
}

/// Parse an OSCAL catalog in XML (root element `catalog` in the OSCAL namespace), e.g. NIST's
/// CSF 2.0 catalog, which NIST publishes as XML.
///
/// # Errors
///
/// Malformed XML, a root element other than `catalog`, or controls without an `id` or
/// `title`; each located `line:column` (1-based) of the offending start tag or XML error.
pub fn catalog_from_xml(text: &str) -> Result<OscalCatalog, Vec<ImportError>> {
    catalog_from_xml_inner(text).map_err(|errors| {
        errors
            .into_iter()
            .map(
                |e| match e.location.strip_prefix("byte ").map(str::parse::<usize>) {
                    Some(Ok(offset)) => ImportError::new(line_column(text, offset), e.message),
                    _ => e,
                },
            )
            .collect()
    })
}

/// `line:column` (1-based, column in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> String {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("{line}:{column}")
}

fn catalog_from_xml_inner(text: &str) -> Result<OscalCatalog, Vec<ImportError>> {
    let root = parse_xml(text).map_err(|e| vec![e])?;
    if root.name != "catalog" {
        return Err(vec![ImportError::new(
            format!("byte {}", root.offset),
            format!("not an OSCAL catalog: root element is `{}`", root.name),
        )]);
    }
    let meta = root.elements("metadata").next();
    let meta_text = |k: &str| meta.map(|m| m.child_text(k)).unwrap_or_default();
    let mut out = OscalCatalog {
        uuid: root.attr("uuid").unwrap_or_default().to_owned(),
        title: meta_text("title"),
        version: meta_text("version"),
        oscal_version: meta_text("oscal-version"),
        controls: Vec::new(),
    };
    let mut params = HashMap::new();
    collect_xml_params(&root, &mut params);
    let mut errors = Vec::new();
    walk_xml(&root, "", None, &params, &mut out.controls, &mut errors);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn collect_xml_params(el: &Element, params: &mut HashMap<String, String>) {
    for n in &el.children {
        let Node::Element(e) = n else { continue };
        if e.name == "param" {
            if let Some(id) = e.attr("id") {
                let label = e.child_text("label");
                let choices: Vec<String> = e
                    .elements("select")
                    .flat_map(|s| s.elements("choice"))
                    .map(|c| {
                        let mut s = String::new();
                        c.text_into(&mut s, &HashMap::new());
                        collapse_ws(&s)
                    })
                    .collect();
                let refs: Vec<&str> = choices.iter().map(String::as_str).collect();
                params.insert(id.to_owned(), param_text(&label, &refs));
            }
        } else if e.name != "metadata" && e.name != "back-matter" {
            collect_xml_params(e, params);
        }
    }
}

fn walk_xml(
    el: &Element,
    family: &str,
    parent: Option<&str>,
    params: &HashMap<String, String>,
    out: &mut Vec<OscalControl>,
    errors: &mut Vec<ImportError>,
) {
    for n in &el.children {
        let Node::Element(e) = n else { continue };
        match e.name.as_str() {
            "group" => {
                let title = e.child_text("title");
                let fam = if family.is_empty() {
                    title.as_str()
                } else {
                    family
                };
                walk_xml(e, fam, parent, params, out, errors);
            }
            "control" => {
                let id = e.attr("id").unwrap_or_default().to_owned();
                let title = e.child_text("title");
                let at = format!("byte {}", e.offset);
                if id.is_empty() {
                    errors.push(ImportError::new(&at, "control without an id"));
                }
                if title.is_empty() {
                    errors.push(ImportError::new(
                        &at,
                        format!("control `{id}` has no title"),
                    ));
                }
                let mut statement = String::new();
                for part in e
                    .elements("part")
                    .filter(|p| p.attr("name") == Some("statement"))
                {
                    part.text_into(&mut statement, params);
                    statement.push(' ');
                }
                let withdrawn = e.elements("prop").any(|p| {
                    p.attr("name") == Some("status") && p.attr("value") == Some("withdrawn")
                });
                out.push(OscalControl {
                    id: id.clone(),
                    label: e.label(),
                    class: e.attr("class").map(str::to_owned),
                    title,
                    family: family.to_owned(),
                    parent: parent.map(str::to_owned),
                    statement: collapse_ws(&statement),
                    withdrawn,
                });
                walk_xml(e, family, Some(&id), params, out, errors);
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Catalog -> template
// ---------------------------------------------------------------------------------------------

/// A template of the catalog's controls, without actions.
///
/// Controls: every control and enhancement that is not withdrawn, in catalog order; with
/// `select`, only those whose OSCAL id, label or template id is listed (case-insensitive; e.g.
/// the ids of [`profile_control_ids`]). Each becomes a [`TemplateControl`] with
/// id = [`OscalControl::template_id`] (`AC-2`, `AC-2(1)`, `GV.OC-01`), family = top-level group
/// title, title = control title — or, when the title is just the control's id (CSF
/// subcategories are titled `GV.OC-01`), the parent control's title —, description = the
/// flattened statement cut to [`MAX_DESCRIPTION_CHARS`]. `product` and `in_scope_services`
/// are left empty.
pub fn template_from_catalog(
    catalog: &OscalCatalog,
    id: &str,
    title: &str,
    certification: &str,
    select: Option<&[String]>,
) -> Template {
    let by_id: HashMap<&str, &OscalControl> = catalog
        .controls
        .iter()
        .map(|c| (c.id.as_str(), c))
        .collect();
    let controls = catalog
        .controls
        .iter()
        .filter(|c| !c.withdrawn)
        .filter(|c| select.is_none_or(|ids| ids.iter().any(|s| c.matches(s))))
        .map(|c| {
            let tid = c.template_id();
            let mut ctitle = c.title.clone();
            if (ctitle.eq_ignore_ascii_case(&tid) || ctitle.eq_ignore_ascii_case(&c.id))
                && let Some(p) = c.parent.as_deref().and_then(|p| by_id.get(p))
            {
                ctitle = p.title.clone();
            }
            TemplateControl {
                id: tid,
                family: c.family.clone(),
                title: ctitle,
                description: truncate(&c.statement, MAX_DESCRIPTION_CHARS),
                actions: Vec::new(),
            }
        })
        .collect();
    Template {
        id: id.to_owned(),
        title: title.to_owned(),
        product: String::new(),
        certification: certification.to_owned(),
        in_scope_services: Vec::new(),
        controls,
        actions: Vec::new(),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let cut: String = s.chars().take(max - 1).collect();
    let cut = match cut.rfind(' ') {
        Some(i) if i > max / 2 => cut[..i].to_owned(),
        _ => cut,
    };
    format!("{}…", cut.trim_end())
}

// ---------------------------------------------------------------------------------------------
// assessment-results export
// ---------------------------------------------------------------------------------------------

/// OSCAL version the exported `assessment-results` documents declare; they are tested against
/// NIST's published v1.2.1 JSON schema (`tests/fixtures/oscal/schema/`).
pub const OSCAL_VERSION: &str = "1.2.1";

/// Namespace of postured's own OSCAL props (`test-status`, `points-achieved` ...).
pub const POSTURED_NS: &str = "urn:postured:oscal";

/// One line, whitespace collapsed, never empty (OSCAL `MarkupLine` / `String` values).
fn line(text: &str, fallback: &str) -> String {
    let t = collapse_ws(text);
    if t.is_empty() { fallback.to_owned() } else { t }
}

fn prop(name: &str, value: impl AsRef<str>) -> Option<Value> {
    let v = collapse_ws(value.as_ref());
    (!v.is_empty()).then(|| json!({ "name": name, "ns": POSTURED_NS, "value": v }))
}

/// A number as an OSCAL prop value: at most 4 decimals, no trailing zeros (`21.6`, `27`).
fn num(x: f64) -> String {
    let r = (x * 10_000.0).round() / 10_000.0;
    format!("{r}")
}

fn props(items: impl IntoIterator<Item = Option<Value>>) -> Vec<Value> {
    items.into_iter().flatten().collect()
}

fn oscal_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn uuid4() -> String {
    Uuid::new_v4().to_string()
}

/// An evidence link as OSCAL `relevant-evidence`: `href` only when the link is an absolute URL
/// (anything else, e.g. a document reference with spaces, is kept as the description).
fn evidence(link: &str) -> Value {
    let text = line(link, "evidence");
    match url::Url::parse(link.trim()) {
        Ok(u) if !link.trim().contains(char::is_whitespace) => {
            json!({ "href": u.as_str(), "description": text })
        }
        _ => json!({ "description": text }),
    }
}

/// The report as an OSCAL `assessment-results` document (JSON value).
///
/// Shape (every UUID a fresh v4):
/// - `metadata`: title `<template title> — <tenant> (<assessment>)`, `last-modified` and
///   `version` = the report's `generated_at`, `oscal-version` [`OSCAL_VERSION`];
/// - `import-ap`: `#<uuid>` of a `back-matter` resource titled "Assessment plan (not
///   published)" — postured assesses continuously against a template and publishes no OSCAL
///   assessment plan, so the reference points inside the document, which says so;
/// - one `result`: `start` = `end` = `generated_at`; props with the assessment, tenant, group,
///   template, certification, status, progress, points and score; `local-definitions` with
///   postured as a software component; `reviewed-controls` listing every control not out of
///   scope in `include-controls` (and the out-of-scope ones in `exclude-controls`) by
///   [`control_token`] (`AC-2(1)` → `ac-2.1`, NIST's own id form);
/// - `observations`: one per action instance — methods `TEST` for automatic testing, else
///   `EXAMINE`; props `action-id`, `implementation-type`, `responsibility`, `testing-source`,
///   `implementation-status`, `test-status`, `points`, `points-achieved`, `points-possible`
///   (ns [`POSTURED_NS`]); the testing logic and reason in `remarks`; `relevant-evidence` per
///   evidence link; `collected` = when the status was set, else `generated_at`; automatic
///   ones have postured as origin;
/// - `findings`: one per reviewed control, target `objective-id` `<control>_obj` with state
///   `satisfied` (control passed, reason `pass`) or `not-satisfied` (failed: reason `fail`;
///   not or partly tested: reason `other`), the control status as a prop, and the control's
///   observations as `related-observations`.
pub fn assessment_results(report: &AssessmentReport) -> Value {
    let at = oscal_time(report.generated_at);
    let plan_uuid = uuid4();
    let tool_uuid = uuid4();
    let mut observation_of: HashMap<&str, String> = HashMap::new();
    let controls_of = super::controls_by_action(report);
    let observations: Vec<Value> = report
        .actions
        .iter()
        .map(|a| {
            let id = uuid4();
            observation_of.insert(a.id.as_str(), id.clone());
            let automatic = a.testing_source == TestingSource::Automatic;
            let mut remarks = Vec::new();
            if !a.testing_logic.trim().is_empty() {
                remarks.push(format!("Testing logic: `{}`", a.testing_logic.trim()));
            }
            if let Some(r) = a.reason.as_deref().filter(|r| !r.trim().is_empty()) {
                remarks.push(format!("Reason: {}", r.trim()));
            }
            if let Some(n) = a.notes.as_deref().filter(|n| !n.trim().is_empty()) {
                remarks.push(format!("Notes: {}", n.trim()));
            }
            let controls = controls_of
                .get(a.id.as_str())
                .map(|c| c.join(", "))
                .unwrap_or_default();
            let mut o = json!({
                "uuid": id,
                "title": line(&a.title, &a.id),
                "description": format!(
                    "Improvement action `{}` ({} points): test status {}, implementation status {}{}.",
                    a.id,
                    a.points,
                    a.test_status.as_str(),
                    a.implementation_status.as_str(),
                    if controls.is_empty() { String::new() } else { format!("; controls {controls}") },
                ),
                "props": props([
                    prop("action-id", &a.id),
                    prop("implementation-type", a.implementation_type.as_str()),
                    prop("responsibility", super::snake(&a.responsibility)),
                    prop("testing-source", super::snake(&a.testing_source)),
                    prop("implementation-status", a.implementation_status.as_str()),
                    prop("test-status", a.test_status.as_str()),
                    prop("points", a.points.to_string()),
                    prop("points-achieved", num(a.points_achieved)),
                    prop("points-possible", num(a.points_possible)),
                    a.assigned_to.as_deref().and_then(|p| prop("assigned-to", p)),
                ]),
                "methods": [if automatic { "TEST" } else { "EXAMINE" }],
                "types": ["control-objective"],
                "collected": oscal_time(a.status_since.unwrap_or(report.generated_at)),
            });
            if automatic {
                o["origins"] = json!([{ "actors": [{ "type": "tool", "actor-uuid": tool_uuid }] }]);
            }
            if !a.evidence.is_empty() {
                o["relevant-evidence"] = a.evidence.iter().map(|e| evidence(e)).collect();
            }
            if !remarks.is_empty() {
                o["remarks"] = json!(remarks.join("\n\n"));
            }
            o
        })
        .collect();

    let mut include = Vec::new();
    let mut exclude = Vec::new();
    let mut findings = Vec::new();
    for c in &report.controls {
        let token = control_token(&c.id);
        if c.status == ControlStatus::OutOfScope {
            exclude.push(json!({ "control-id": token }));
            continue;
        }
        include.push(json!({ "control-id": token }));
        let (state, reason) = match c.status {
            ControlStatus::Passed => ("satisfied", "pass"),
            ControlStatus::Failed => ("not-satisfied", "fail"),
            _ => ("not-satisfied", "other"),
        };
        let (achieved, possible) = super::control_points(report, c);
        let mut f = json!({
            "uuid": uuid4(),
            "title": line(&format!("{} {}", c.id, c.title), &c.id),
            "description": if c.description.trim().is_empty() { line(&c.title, &c.id) } else { c.description.trim().to_owned() },
            "props": props([
                prop("control-status", super::snake(&c.status)),
                prop("points-achieved", num(achieved)),
                prop("points-possible", num(possible)),
            ]),
            "target": {
                "type": "objective-id",
                "target-id": format!("{token}_obj"),
                "title": line(&c.title, &c.id),
                "status": { "state": state, "reason": reason },
            },
        });
        if let Some(p) = prop("control-family", &c.family)
            && let Some(arr) = f["props"].as_array_mut()
        {
            arr.push(p);
        }
        let related: Vec<Value> = c
            .actions
            .iter()
            .filter_map(|a| observation_of.get(a.as_str()))
            .map(|u| json!({ "observation-uuid": u }))
            .collect();
        if !related.is_empty() {
            f["related-observations"] = json!(related);
        }
        findings.push(f);
    }
    let mut selection = serde_json::Map::new();
    selection.insert(
        "description".into(),
        json!(format!("Controls of template `{}`", report.template_id)),
    );
    if include.is_empty() {
        selection.insert("include-all".into(), json!({}));
    } else {
        selection.insert("include-controls".into(), json!(include));
    }
    if !exclude.is_empty() {
        selection.insert("exclude-controls".into(), json!(exclude));
    }

    let mut result = json!({
        "uuid": uuid4(),
        "title": line(&format!("Assessment {} of tenant {}", report.id, report.tenant), "Assessment"),
        "description": format!(
            "Point-in-time results of assessment `{}` ({}, {}) for tenant `{}`: {:.1} of {:.1} points ({:.1} %), status {}.",
            report.id,
            collapse_ws(&report.template_title),
            collapse_ws(&report.certification),
            report.tenant,
            report.score.points_achieved,
            report.score.points_possible,
            report.score.ratio * 100.0,
            super::snake(&report.status),
        ),
        "start": at,
        "end": at,
        "props": props([
            prop("assessment-id", &report.id),
            prop("tenant", &report.tenant),
            prop("group", &report.group),
            prop("template-id", &report.template_id),
            prop("certification", &report.certification),
            prop("assessment-status", super::snake(&report.status)),
            prop("progress", num(report.progress)),
            prop("points-achieved", num(report.score.points_achieved)),
            prop("points-possible", num(report.score.points_possible)),
            prop("score-ratio", num(report.score.ratio)),
        ]),
        "local-definitions": {
            "components": [{
                "uuid": tool_uuid,
                "type": "software",
                "title": "postured",
                "description": "Continuous compliance assessment daemon: tests improvement actions automatically from tenant configuration signals.",
                "props": [{ "name": "version", "value": env!("CARGO_PKG_VERSION") }],
                "status": { "state": "operational" },
            }],
        },
        "reviewed-controls": { "control-selections": [Value::Object(selection)] },
    });
    if !observations.is_empty() {
        result["observations"] = json!(observations);
    }
    if !findings.is_empty() {
        result["findings"] = json!(findings);
    }
    let mut doc = json!({
        "assessment-results": {
            "uuid": uuid4(),
            "metadata": {
                "title": line(
                    &format!("{} — {} ({})", report.template_title, report.tenant, report.id),
                    "postured assessment results",
                ),
                "last-modified": at,
                "version": at,
                "oscal-version": OSCAL_VERSION,
            },
            "import-ap": {
                "href": format!("#{plan_uuid}"),
                "remarks": "postured assesses continuously against a template and publishes no OSCAL assessment plan; this reference points to a back-matter resource that says so.",
            },
            "results": [result],
            "back-matter": {
                "resources": [{
                    "uuid": plan_uuid,
                    "title": "Assessment plan (not published)",
                    "description": format!(
                        "Placeholder. The plan is the template `{}` ({}) applied to tenant `{}`; actions are tested continuously by postured.",
                        report.template_id,
                        collapse_ws(&report.certification),
                        report.tenant,
                    ),
                }],
            },
        }
    });
    prune_empty_arrays(&mut doc);
    doc
}

/// OSCAL arrays have `minItems: 1`: drop every empty array.
fn prune_empty_arrays(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, x| !matches!(x, Value::Array(a) if a.is_empty()));
            map.values_mut().for_each(prune_empty_arrays);
        }
        Value::Array(items) => items.iter_mut().for_each(prune_empty_arrays),
        _ => {}
    }
}

/// [`assessment_results`] as pretty-printed JSON.
///
/// # Errors
///
/// Serialisation failure (not expected for a `Value`).
pub fn assessment_results_json(report: &AssessmentReport) -> Result<String, ExportError> {
    Ok(serde_json::to_string_pretty(&assessment_results(report))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NIST's MODERATE resolved-profile catalog and CSF 2.0 catalog, as embedded for the
    /// built-in templates (config/frameworks/SOURCES.md); the LOW profile is a test fixture.
    const MODERATE: &str = include_str!(
        "../../config/frameworks/NIST_SP-800-53_rev5_MODERATE-baseline-resolved-profile_catalog-min.json"
    );
    const LOW_PROFILE: &str =
        include_str!("../../tests/fixtures/oscal/NIST_SP-800-53_rev5_LOW-baseline_profile.json");
    const CSF: &str = include_str!("../../config/frameworks/NIST_CSF_v2.0_catalog.xml");

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
