//! Template quality checks over every built-in template (issue 11 item 6, in part): no two
//! actions with the same title in one template, every action a control names defined by the
//! template (or a family pattern), and every template action named by some control.

use std::collections::BTreeMap;

use postured::evaluation::Catalog;
use postured::interchange::oscal::framework_controls;
use postured::model::registry::TemplateRegistry;
use postured::model::template::{Template, is_pattern};

#[test]
fn builtin_templates_pass_the_quality_checks() {
    let catalog = Catalog::builtin();
    let registry = TemplateRegistry::builtin(&catalog.actions, framework_controls)
        .unwrap_or_else(|e| panic!("{e:?}"));
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
