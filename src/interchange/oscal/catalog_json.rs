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

use super::{
    InsertBudget, OscalCatalog, OscalControl, array, collapse_ws, json_root, param_text, str_of,
};
use crate::interchange::ImportError;

/// Parse an OSCAL catalog in JSON (`{"catalog": {...}}`), e.g. NIST's SP 800-53 rev 5 catalog
/// or a resolved baseline profile catalog.
///
/// # Errors
///
/// Every problem, located: `line:column` for malformed JSON (also for nesting deeper than
/// `serde_json`'s 128 levels), else a JSON path such as `catalog.groups[0].controls[3].id`
/// for a missing id or title, or `catalog.groups[0].controls[3].parts` for statements whose
/// parameter inserts go past [`super::MAX_INSERT_EXPANSION_BYTES`].
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
    let mut cx = Walk {
        params: &params,
        budget: InsertBudget::default(),
        out: &mut out.controls,
        errors: &mut errors,
    };
    walk(cat, "catalog", "", None, &mut cx);
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

/// Replace `{{ insert: param, ID }}` by the parameter's text (nested inserts resolved once,
/// `depth` levels), spending the inserted bytes from `budget`; `None` once it is exhausted.
fn resolve_inserts(
    text: &str,
    params: &HashMap<String, String>,
    depth: u8,
    budget: &mut InsertBudget,
) -> Option<String> {
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
            Some(t) if depth > 0 => {
                if !budget.spend(t.len()) {
                    return None;
                }
                out.push_str(&resolve_inserts(t, params, depth - 1, budget)?);
            }
            _ => out.push_str("[Assignment]"),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    Some(out)
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

/// What [`walk`] carries along: the parameters, the insert budget and what it collects.
struct Walk<'a> {
    params: &'a HashMap<String, String>,
    budget: InsertBudget,
    out: &'a mut Vec<OscalControl>,
    errors: &'a mut Vec<ImportError>,
}

/// Flatten the `groups` and `controls` under `node` (at JSON path `path`) into `cx.out`;
/// stops once the insert budget is exhausted (the error is located at that control).
fn walk(node: &Value, path: &str, family: &str, parent: Option<&str>, cx: &mut Walk<'_>) {
    for (i, group) in array(node, "groups").iter().enumerate() {
        if cx.budget.exhausted() {
            return;
        }
        let gpath = format!("{path}.groups[{i}]");
        let title = str_of(group, "title");
        if title.is_empty() {
            cx.errors.push(ImportError::new(
                format!("{gpath}.title"),
                "missing group title",
            ));
        }
        let fam = if family.is_empty() {
            title.as_str()
        } else {
            family
        };
        walk(group, &gpath, fam, parent, cx);
    }
    for (i, control) in array(node, "controls").iter().enumerate() {
        if cx.budget.exhausted() {
            return;
        }
        let cpath = format!("{path}.controls[{i}]");
        let id = str_of(control, "id");
        let title = str_of(control, "title");
        if id.is_empty() {
            cx.errors.push(ImportError::new(
                format!("{cpath}.id"),
                "missing control id",
            ));
        }
        if title.trim().is_empty() {
            cx.errors.push(ImportError::new(
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
        let Some(statement) = resolve_inserts(&prose.join(" "), cx.params, 2, &mut cx.budget)
        else {
            cx.errors
                .push(InsertBudget::error(format!("{cpath}.parts")));
            return;
        };
        let withdrawn = array(control, "props").iter().any(|p| {
            p.get("name").and_then(Value::as_str) == Some("status")
                && p.get("value").and_then(Value::as_str) == Some("withdrawn")
        });
        cx.out.push(OscalControl {
            id: id.clone(),
            label: label_prop(control),
            class: control
                .get("class")
                .and_then(Value::as_str)
                .map(str::to_owned),
            title: collapse_ws(&title),
            family: family.to_owned(),
            parent: parent.map(str::to_owned),
            statement: collapse_ws(&statement),
            withdrawn,
        });
        walk(control, &cpath, family, Some(&id), cx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interchange::oscal::MAX_INSERT_EXPANSION_BYTES;

    /// Issue 8 row 7 (JSON): a 132 KB catalog whose parameters insert each other expanded to
    /// gigabytes (still running after 120 s at 2 GB). Inserted text now spends one
    /// `MAX_INSERT_EXPANSION_BYTES` budget; past it the import fails at the control.
    #[test]
    fn parameters_inserting_each_other_exhaust_the_budget_with_a_location() {
        let insert = |p: &str, n: usize| format!("{{{{ insert: param, {p} }}}}").repeat(n);
        let params = serde_json::json!([
            {"id": "p1", "label": insert("p2", 1000)},
            {"id": "p2", "label": insert("p3", 1000)},
            {"id": "p3", "label": "x".repeat(1000)},
        ]);
        let control = |id: &str, prose: String| {
            serde_json::json!({
                "id": id, "title": "T", "params": params,
                "parts": [{"name": "statement", "prose": prose}]
            })
        };
        let doc = serde_json::json!({"catalog": {"groups": [{"title": "G", "controls": [
            control("c-0", "plain".into()),
            control("c-1", insert("p1", 1000)),
        ]}]}});
        let text = doc.to_string();
        assert!(text.len() < 200_000, "{}", text.len());
        let started = std::time::Instant::now();
        let e = catalog_from_json(&text).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(
            e[0].to_string(),
            format!(
                "catalog.groups[0].controls[1].parts: parameter inserts expand the statements \
                 past {MAX_INSERT_EXPANSION_BYTES} bytes (parameters inserted too often, or into \
                 each other)"
            )
        );
        // A few inserts are resolved as before, two levels deep.
        let params = serde_json::json!([
            {"id": "a", "label": "{{ insert: param, b }} or more"},
            {"id": "b", "label": "two"},
        ]);
        let doc = serde_json::json!({"catalog": {"params": params, "controls": [{
            "id": "c", "title": "T",
            "parts": [{"name": "statement", "prose": "Pick {{ insert: param, a }}."}]
        }]}});
        let cat = catalog_from_json(&doc.to_string()).expect("parses");
        assert_eq!(
            cat.controls[0].statement,
            "Pick [Assignment: [Assignment: two] or more]."
        );
    }
}
