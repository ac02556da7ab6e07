//! OSCAL catalog import from JSON (`{"catalog": {...}}`): NIST's SP 800-53 rev 5 catalog, a
//! resolved baseline profile catalog, any OSCAL 1.x catalog.
//!
//! Walks the `serde_json` value (serde_json refuses documents nested deeper than 128 levels,
//! which bounds the recursion here) and flattens it into an [`OscalCatalog`], locating every
//! problem by its JSON path (`catalog.groups[0].controls[3].id`).
//!
//! Must not: read files or the store, or build templates (that is [`super::template`]).

use std::collections::HashMap;

use serde_json::Value;

use super::{OscalCatalog, OscalControl, array, collapse_ws, json_root, param_text, str_of};
use crate::interchange::ImportError;

/// Parse an OSCAL catalog in JSON (`{"catalog": {...}}`), e.g. NIST's SP 800-53 rev 5 catalog
/// or a resolved baseline profile catalog.
///
/// # Errors
///
/// Every problem, located: `line:column` for malformed JSON, else a JSON path such as
/// `catalog.groups[0].controls[3].id` for a missing id or title.
pub fn catalog_from_json(text: &str) -> Result<OscalCatalog, Vec<ImportError>> {
    let root = json_root(text)?;
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
    collect_params(cat, &mut params);
    walk(
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

/// Every `params` entry anywhere under `v` (outside `metadata` and `back-matter`), id →
/// display text.
fn collect_params(v: &Value, params: &mut HashMap<String, String>) {
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
                    collect_params(child, params);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_params(i, params)),
        _ => {}
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

/// The `label` prop's value: the first without a `class`, else the first.
fn label_prop(v: &Value) -> Option<String> {
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

/// A part's label and prose, then its sub-parts', depth-first.
fn flatten_part(part: &Value, out: &mut Vec<String>) {
    if let Some(label) = label_prop(part) {
        out.push(label);
    }
    if let Some(prose) = part.get("prose").and_then(Value::as_str) {
        out.push(prose.to_owned());
    }
    for p in array(part, "parts") {
        flatten_part(p, out);
    }
}

/// Flatten the `groups` and `controls` under `node` (at JSON path `path`) into `out`.
#[allow(clippy::too_many_arguments)]
fn walk(
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
        walk(group, &gpath, fam, parent, params, out, errors);
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
                flatten_part(part, &mut prose);
            }
        }
        let withdrawn = array(control, "props").iter().any(|p| {
            p.get("name").and_then(Value::as_str) == Some("status")
                && p.get("value").and_then(Value::as_str) == Some("withdrawn")
        });
        out.push(OscalControl {
            id: id.clone(),
            label: label_prop(control),
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
        walk(control, &cpath, family, Some(&id), params, out, errors);
    }
}
