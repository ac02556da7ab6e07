//! Template quality checks over every built-in template (issue 11 item 6): every control has an
//! action; no two actions with the same title in one template; every action a control names is
//! defined by the template (or a family pattern) and every template action is named by some
//! control; every non-technical action says what to do, how, and what evidence an auditor
//! expects; every action of the shared library serves some template; every technical mapping
//! rests on a crosswalk that `config/templates/SOURCES.md` names; the workbook export re-imports
//! to the same template.

use std::collections::BTreeMap;

use postured::evaluation::Catalog;
use postured::interchange::oscal::framework_controls;
use postured::model::registry::{
    BUILTIN_TEMPLATES, CatalogRefs, TemplateRegistry, builtin_library_actions, mapping_pair,
    mapping_sources, normalise_control_id,
};
use postured::model::template::{ImplementationType, Template, is_pattern};

const SOURCES: &str = include_str!("../config/templates/SOURCES.md");

fn builtin() -> (Catalog, TemplateRegistry) {
    let catalog = Catalog::builtin();
    let registry = TemplateRegistry::builtin(&catalog.actions, framework_controls)
        .unwrap_or_else(|e| panic!("{e:?}"));
    (catalog, registry)
}

/// The technical mappings of `t` (read from the template file `text`) that no crosswalk of its
/// `[[mapping_sources]]` supports, and crosswalks `SOURCES.md` does not name. A mapping made by
/// `catalog_refs` is supported when the template names a `catalog_refs = true` crosswalk and the
/// catalog action's reference names the control or one of its enhancements; any other technical
/// mapping (or wildcard) must be a listed `"control = action"` pair.
fn unsupported_mappings(t: &Template, text: &str, catalog: &Catalog) -> Vec<String> {
    let mut problems = Vec::new();
    let (refs, sources) = mapping_sources(text).unwrap_or_else(|e| panic!("{}: {e}", t.id));
    // SOURCES.md wraps lines: compare with runs of white space collapsed.
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let named = words(SOURCES);
    for (crosswalk, _, _) in &sources {
        if !named.contains(&words(crosswalk)) {
            problems.push(format!(
                "{}: crosswalk {crosswalk:?} is not named in SOURCES.md",
                t.id
            ));
        }
    }
    let by_refs = sources.iter().any(|(_, catalog_refs, _)| *catalog_refs);
    let pairs: Vec<(String, &str)> = sources
        .iter()
        .flat_map(|(_, _, pairs)| pairs.iter().filter_map(|p| mapping_pair(p)))
        .map(|(c, a)| (normalise_control_id(c), a))
        .collect();
    for c in &t.controls {
        let control = normalise_control_id(&c.id);
        for id in &c.actions {
            let technical = is_pattern(id)
                || t.actions
                    .iter()
                    .any(|a| &a.id == id && a.implementation_type == ImplementationType::Technical);
            if !technical {
                continue;
            }
            let listed = pairs.iter().any(|(pc, pa)| *pc == control && pa == id);
            let referenced = by_refs
                && catalog.get(id).is_some_and(|def| {
                    let list = match refs {
                        Some(CatalogRefs::Iso27001) => &def.controls.iso27001,
                        Some(CatalogRefs::Nist80053) => &def.controls.nist_800_53,
                        Some(CatalogRefs::Gdpr) => &def.controls.gdpr,
                        Some(CatalogRefs::Scuba) => &def.controls.scuba,
                        None => return false,
                    };
                    list.iter().any(|r| {
                        let r = normalise_control_id(r);
                        r == control || r.starts_with(&format!("{control}."))
                    })
                });
            if !listed && !referenced {
                problems.push(format!(
                    "{}: control {} names technical action {id}, which no crosswalk of its mapping_sources supports",
                    t.id, c.id
                ));
            }
        }
    }
    problems
}

fn template_text(id: &str) -> &'static str {
    BUILTIN_TEMPLATES
        .iter()
        .map(|(_, text)| *text)
        .find(|text| mapping_sources(text).is_ok() && text.contains(&format!("\nid = \"{id}\"\n")))
        .unwrap_or_else(|| panic!("no file for {id}"))
}

#[test]
fn every_technical_mapping_rests_on_a_named_crosswalk() {
    let (catalog, registry) = builtin();
    let mut problems = Vec::new();
    for t in registry.iter() {
        problems.extend(unsupported_mappings(t, template_text(&t.id), &catalog));
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The check fails when someone maps a technical action no crosswalk supports, and when a
/// template names a crosswalk SOURCES.md does not.
#[test]
fn an_unsupported_technical_mapping_is_reported() {
    let (catalog, registry) = builtin();
    let mut iso = registry.get("iso-27001-2022").expect("iso").clone();
    // The catalog's AWS root-MFA action references A.5.17 and A.8.5, not A.5.1.
    let control = iso
        .controls
        .iter_mut()
        .find(|c| c.id == "A.5.1")
        .expect("A.5.1");
    control.actions.push("aws_iam.root.mfa".into());
    let problems = unsupported_mappings(&iso, template_text("iso-27001-2022"), &catalog);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].contains("A.5.1") && problems[0].contains("aws_iam.root.mfa"));

    let renamed = template_text("hipaa-security-rule").replace(
        "HHS/NIST HIPAA Security Rule to",
        "A crosswalk nobody published:",
    );
    let hipaa = registry.get("hipaa-security-rule").expect("hipaa");
    let problems = unsupported_mappings(hipaa, &renamed, &catalog);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("not named in SOURCES.md")),
        "{problems:#?}"
    );
}

#[test]
fn every_control_has_an_action_and_every_manual_action_says_how_and_with_what_evidence() {
    let (_, registry) = builtin();
    let mut problems = Vec::new();
    for t in registry.iter() {
        for c in t.controls.iter().filter(|c| c.actions.is_empty()) {
            problems.push(format!("{}: control {} has no action", t.id, c.id));
        }
        for a in &t.actions {
            if a.implementation_type == ImplementationType::Technical {
                continue;
            }
            for (field, text) in [
                ("description", &a.description),
                ("guidance", &a.guidance),
                ("evidence", &a.evidence),
            ] {
                if text.trim().is_empty() {
                    problems.push(format!("{}: action {} has no {field}", t.id, a.id));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems: {problems:#?}",
        problems.len()
    );
}

/// Every action of the shared library serves some built-in template, and a template names it
/// rather than declaring a copy (the registry refuses a redeclaration).
#[test]
fn every_library_action_serves_a_template() {
    let (_, registry) = builtin();
    let library = builtin_library_actions().unwrap_or_else(|e| panic!("{e:?}"));
    assert!(library.len() > 150, "{} library actions", library.len());
    let unused: Vec<&str> = library
        .iter()
        .filter(|a| {
            !registry
                .iter()
                .any(|t| t.controls.iter().any(|c| c.actions.contains(&a.id)))
        })
        .map(|a| a.id.as_str())
        .collect();
    assert!(unused.is_empty(), "{unused:#?}");
}

#[test]
fn builtin_templates_pass_the_quality_checks() {
    let (_, registry) = builtin();
    let mut problems = Vec::new();
    for t in registry.iter() {
        let mut titles: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for a in &t.actions {
            titles
                .entry(a.title.as_str())
                .or_default()
                .push(a.id.as_str());
        }
        for (title, ids) in titles.iter().filter(|(_, ids)| ids.len() > 1) {
            problems.push(format!("{}: {ids:?} share the title {title:?}", t.id));
        }
        for c in &t.controls {
            for id in &c.actions {
                if !is_pattern(id) && !t.actions.iter().any(|a| &a.id == id) {
                    problems.push(format!(
                        "{}: control {} names unknown action {id}",
                        t.id, c.id
                    ));
                }
            }
        }
        for a in &t.actions {
            if !t.controls.iter().any(|c| c.actions.contains(&a.id)) {
                problems.push(format!("{}: action {} is on no control", t.id, a.id));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The Compliance Manager workbook export of every built-in template re-imports to the same
/// template (controls, their actions, the actions' types, points, guidance and evidence).
#[test]
fn builtin_templates_round_trip_through_the_workbook() {
    use postured::interchange::excel::{template_from_xlsx, template_to_xlsx};
    let catalog = Catalog::builtin();
    let registry = TemplateRegistry::builtin(&catalog.actions, framework_controls)
        .unwrap_or_else(|e| panic!("{e:?}"));
    for t in registry.iter() {
        let bytes = template_to_xlsx(t).unwrap_or_else(|e| panic!("{}: {e}", t.id));
        let back =
            template_from_xlsx(&bytes, &catalog).unwrap_or_else(|e| panic!("{}: {e:?}", t.id));
        assert_eq!(back.id, t.id);
        let controls = |t: &Template| -> Vec<(String, Vec<String>)> {
            t.controls
                .iter()
                .map(|c| {
                    let mut a = c.actions.clone();
                    a.sort();
                    (c.id.clone(), a)
                })
                .collect()
        };
        assert_eq!(controls(&back), controls(t), "{}", t.id);
        let actions = |t: &Template| -> Vec<(String, String, u32, String, String)> {
            let mut a: Vec<_> = t
                .actions
                .iter()
                .map(|a| {
                    (
                        a.id.clone(),
                        a.implementation_type.as_str().to_owned(),
                        a.points,
                        a.guidance.clone(),
                        a.evidence.clone(),
                    )
                })
                .collect();
            a.sort();
            a
        };
        assert_eq!(actions(&back), actions(t), "{}", t.id);
    }
}
