//! OSCAL `assessment-results` export: an [`AssessmentReport`] as a JSON document valid against
//! NIST's published OSCAL v1.2.1 schema (tested in `tests/interchange.rs`).
//!
//! Must not: do IO, read the clock (documents are stamped with the report's `generated_at`;
//! only the UUIDs are fresh random v4), or import anything.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{collapse_ws, control_token};
use crate::interchange::{ExportError, control_points, controls_by_action, snake};
use crate::model::report::{AssessmentReport, ControlStatus, TestingSource};

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

/// A postured prop (ns [`POSTURED_NS`]) with the value's whitespace collapsed; `None` when
/// the value is empty (OSCAL values must not be).
fn prop(name: &str, value: impl AsRef<str>) -> Option<Value> {
    let v = collapse_ws(value.as_ref());
    (!v.is_empty()).then(|| json!({ "name": name, "ns": POSTURED_NS, "value": v }))
}

/// A number as an OSCAL prop value: at most 4 decimals, no trailing zeros (`21.6`, `27`).
fn num(x: f64) -> String {
    let r = (x * 10_000.0).round() / 10_000.0;
    format!("{r}")
}

/// The props that have a value.
fn props(items: impl IntoIterator<Item = Option<Value>>) -> Vec<Value> {
    items.into_iter().flatten().collect()
}

/// RFC 3339 in UTC, whole seconds, `Z` suffix.
fn oscal_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A fresh random (v4) UUID.
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
    let controls_of = controls_by_action(report);
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
                    prop("responsibility", snake(&a.responsibility)),
                    prop("testing-source", snake(&a.testing_source)),
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
        let (achieved, possible) = control_points(report, c);
        let mut f = json!({
            "uuid": uuid4(),
            "title": line(&format!("{} {}", c.id, c.title), &c.id),
            "description": if c.description.trim().is_empty() { line(&c.title, &c.id) } else { c.description.trim().to_owned() },
            "props": props([
                prop("control-status", snake(&c.status)),
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
            snake(&report.status),
        ),
        "start": at,
        "end": at,
        "props": props([
            prop("assessment-id", &report.id),
            prop("tenant", &report.tenant),
            prop("group", &report.group),
            prop("template-id", &report.template_id),
            prop("certification", &report.certification),
            prop("assessment-status", snake(&report.status)),
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
