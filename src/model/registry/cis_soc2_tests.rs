//! Quality checks of the CIS AWS Foundations v3.0.0 and SOC 2 built-in templates: their control
//! lists, the published mappings of technical actions, and actions shared with other templates.

use std::collections::{HashMap, HashSet};

use super::TemplateRegistry;
use crate::evaluation::Catalog;
// The OSCAL reader is what the daemon passes in; tests may reach across layers.
#[cfg(test)]
use crate::interchange::oscal::framework_controls;
use crate::model::template::{ImplementationType, Template};

fn builtin() -> TemplateRegistry {
    TemplateRegistry::builtin(&Catalog::builtin().actions, framework_controls)
        .unwrap_or_else(|e| panic!("{e:?}"))
}

/// Every control has an action, and no two actions of the template have the same title.
fn assert_quality(t: &Template) {
    for c in &t.controls {
        assert!(!c.actions.is_empty(), "{}: {} has no action", t.id, c.id);
    }
    let mut titles = HashSet::new();
    for a in &t.actions {
        assert!(
            titles.insert(a.title.trim().to_lowercase()),
            "{}: two actions titled {:?}",
            t.id,
            a.title
        );
    }
}

/// The controls of `t` that name `action`.
fn controls_with<'t>(t: &'t Template, action: &str) -> Vec<&'t str> {
    t.controls
        .iter()
        .filter(|c| c.actions.iter().any(|a| a == action))
        .map(|c| c.id.as_str())
        .collect()
}

#[test]
fn cis_aws_has_every_v3_recommendation_and_maps_the_iam_actions_that_follow_them() {
    let r = builtin();
    let t = r.get("cis-aws-foundations-3.0").expect("template");
    assert_quality(t);
    assert_eq!(t.controls.len(), 62);
    let per_section: Vec<usize> = ["1.", "2.", "3.", "4.", "5."]
        .iter()
        .map(|p| t.controls.iter().filter(|c| c.id.starts_with(p)).count())
        .collect();
    assert_eq!(per_section, [22, 9, 9, 16, 6]);
    for id in ["2.1.4", "2.2.1", "2.3.3", "2.4.1", "4.16", "5.6"] {
        assert!(t.controls.iter().any(|c| c.id == id), "{id}");
    }
    // Each aws_iam action whose title says it follows a v3.0 recommendation is mapped to that
    // control only; the v1.2 ones (composition rules, maximum age) are not mapped at all.
    let catalog = Catalog::builtin();
    let mut mapped = 0;
    for def in catalog
        .actions
        .iter()
        .filter(|d| d.id.starts_with("aws_iam."))
    {
        let got = controls_with(t, &def.id);
        match def.title.split("(CIS AWS 3.0 ").nth(1) {
            Some(rest) => {
                let id = rest.trim_end_matches(')');
                assert_eq!(got, [id], "{}", def.id);
                assert!(id.starts_with("1."), "{}", def.id);
                mapped += 1;
            }
            None => {
                assert!(def.title.contains("(CIS AWS 1.2 "), "{}", def.title);
                assert!(got.is_empty(), "{} is a v1.2 action: {got:?}", def.id);
            }
        }
    }
    assert_eq!(mapped, 11);
    let tested = t
        .controls
        .iter()
        .filter(|c| c.actions.iter().any(|a| a.starts_with("aws_iam.")))
        .count();
    assert_eq!(tested, 11);
    // The rest are operational actions of this template, one per recommendation.
    for a in &t.actions {
        match a.implementation_type {
            ImplementationType::Technical => assert!(a.id.starts_with("aws_iam."), "{}", a.id),
            _ => {
                assert!(a.id.starts_with("cisaws."), "{}", a.id);
                assert!(!a.evidence.trim().is_empty(), "{}", a.id);
            }
        }
    }
}

/// The Annex A controls that the SOC 2 to ISO/IEC 27001:2022 crosswalk (CISO Assistant,
/// `mapping-soc2-2017-rev-2022-to-iso27001-2022.yaml`) pairs with each criterion that takes
/// technical actions.
const SOC2_TO_ISO: &[(&str, &[&str])] = &[
    (
        "CC6.1",
        &[
            "A.5.12", "A.5.13", "A.5.16", "A.5.17", "A.6.7", "A.8.5", "A.8.22", "A.8.24", "A.8.31",
        ],
    ),
    ("CC6.2", &["A.5.9", "A.5.15", "A.5.18"]),
    ("CC6.3", &["A.5.9", "A.5.15", "A.5.18"]),
    ("CC6.6", &["A.8.2"]),
    ("CC6.8", &["A.8.7", "A.8.9", "A.8.16", "A.8.18"]),
    ("CC7.1", &["A.5.33", "A.8.8", "A.8.9", "A.8.15", "A.8.18"]),
    ("CC7.2", &["A.8.6", "A.8.16"]),
    ("CC7.3", &["A.8.16"]),
];

#[test]
fn soc2_has_the_common_criteria_and_maps_technical_actions_by_the_crosswalk() {
    let r = builtin();
    let t = r.get("soc2-tsc-2017").expect("template");
    assert_quality(t);
    let ids: Vec<&str> = t.controls.iter().map(|c| c.id.as_str()).collect();
    let want: Vec<String> = [
        (1, 5),
        (2, 3),
        (3, 4),
        (4, 2),
        (5, 3),
        (6, 8),
        (7, 5),
        (8, 1),
        (9, 2),
    ]
    .iter()
    .flat_map(|&(cc, n)| (1..=n).map(move |i| format!("CC{cc}.{i}")))
    .collect();
    assert_eq!(ids, want);
    let catalog = Catalog::builtin();
    let defs: HashMap<&str, _> = catalog.actions.iter().map(|d| (d.id.as_str(), d)).collect();
    let crosswalk: HashMap<&str, &[&str]> = SOC2_TO_ISO.iter().copied().collect();
    let mut with_technical = Vec::new();
    for c in &t.controls {
        let technical: Vec<&String> = c
            .actions
            .iter()
            .filter(|a| defs.contains_key(a.as_str()))
            .collect();
        if technical.is_empty() {
            continue;
        }
        with_technical.push(c.id.as_str());
        let iso = crosswalk
            .get(c.id.as_str())
            .unwrap_or_else(|| panic!("{} takes technical actions no crosswalk supports", c.id));
        for a in technical {
            let def = defs[a.as_str()];
            assert!(
                matches!(def.kind.as_deref(), Some("msgraph" | "aws_iam")),
                "{a}"
            );
            assert!(
                def.controls
                    .iso27001
                    .iter()
                    .any(|r| iso.contains(&r.as_str())),
                "{}: {a} has no ISO reference the crosswalk pairs with it",
                c.id
            );
        }
    }
    assert_eq!(
        with_technical,
        [
            "CC6.1", "CC6.2", "CC6.3", "CC6.6", "CC6.8", "CC7.1", "CC7.2", "CC7.3"
        ]
    );
    // Every catalog action whose ISO references the crosswalk pairs with a criterion is there.
    for (cc, iso) in SOC2_TO_ISO {
        let control = t.controls.iter().find(|c| c.id == *cc).expect("criterion");
        for def in catalog.actions.iter().filter(|d| {
            matches!(d.kind.as_deref(), Some("msgraph" | "aws_iam"))
                && d.controls
                    .iso27001
                    .iter()
                    .any(|r| iso.contains(&r.as_str()))
        }) {
            assert!(
                control.actions.contains(&def.id),
                "{cc}: {} missing",
                def.id
            );
        }
    }
}

#[test]
fn soc2_names_the_shared_actions_of_other_templates_instead_of_copying_them() {
    let r = builtin();
    let t = r.get("soc2-tsc-2017").expect("template");
    let catalog = Catalog::builtin();
    let mut shared = 0;
    for a in t
        .actions
        .iter()
        .filter(|a| !catalog.actions.iter().any(|d| d.id == a.id))
    {
        if a.id.starts_with("soc2.") {
            continue;
        }
        // Declared by another built-in template: the very same action (title, points, text),
        // so an assessment of both in one group has one instance of it.
        let owner = r
            .iter()
            .filter(|o| o.id != t.id)
            .find_map(|o| o.actions.iter().find(|x| x.id == a.id))
            .unwrap_or_else(|| panic!("{} is declared by no other template", a.id));
        assert_eq!(owner, a);
        shared += 1;
    }
    assert!(shared >= 10, "{shared}");
    for id in [
        "iso.isms.policy",
        "iso.incident.plan",
        "iso.ops.change_management",
        "iso.supplier.policy",
        "nist.ra.risk_assessment",
    ] {
        assert!(t.actions.iter().any(|a| a.id == id), "{id}");
    }
}

#[test]
fn a_template_directory_may_name_actions_of_the_built_in_templates() {
    let catalog = Catalog::builtin();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("acme.toml"),
        r#"
id = "acme"
title = "ACME"
certification = "ACME"
[[controls]]
id = "ACME-1"
title = "Policy"
actions = ["iso.isms.policy"]
"#,
    )
    .expect("write");
    let mut r = builtin();
    r.load_dir(dir.path(), &catalog.actions, framework_controls)
        .expect("loads");
    let iso = r.get("iso-27001-2022").expect("iso");
    let acme = r.get("acme").expect("acme");
    assert_eq!(acme.actions.len(), 1);
    assert_eq!(
        Some(&acme.actions[0]),
        iso.actions.iter().find(|a| a.id == "iso.isms.policy")
    );
    // Without the built-in templates loaded first, the name is unknown.
    let mut empty = TemplateRegistry::new();
    let errors = empty
        .load_dir(dir.path(), &catalog.actions, framework_controls)
        .expect_err("unknown action");
    assert!(
        errors[0]
            .to_string()
            .contains("unknown action \"iso.isms.policy\"")
    );
}

/// A template names another's action by id and gets the first declaration; an id declared by
/// several built-in templates (the provider-managed ones) must therefore be declared alike.
#[test]
fn an_action_declared_by_several_built_in_templates_is_declared_alike() {
    let r = builtin();
    let mut seen: HashMap<&str, (&str, &crate::model::template::TemplateAction)> = HashMap::new();
    for t in r.iter() {
        for a in &t.actions {
            match seen.get(a.id.as_str()) {
                Some((first, b)) => assert_eq!(*b, a, "{} differs in {first} and {}", a.id, t.id),
                None => {
                    seen.insert(a.id.as_str(), (t.id.as_str(), a));
                }
            }
        }
    }
}
