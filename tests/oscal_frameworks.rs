//! NIST's own OSCAL files imported as templates of a recognised framework: the SP 800-53
//! rev 5 catalog with NIST's LOW and HIGH baseline profiles (exact copies in
//! `tests/fixtures/oscal/`, see its SOURCES.md) and the CSF 2.0 catalog. The imports take the
//! profile's title, a short id and the actions of the built-in template of the framework;
//! `postured template coverage` works on the imported template.

use std::collections::HashSet;

use postured::evaluation::Catalog;
use postured::interchange::formats::{ImportFormat, ImportOptions, Imported, import};
use postured::interchange::oscal;
use postured::model::TemplateRegistry;
use postured::model::registry::builtin_library_actions;
use postured::model::template::{ImplementationType, Template};

const CATALOG: &[u8] = include_bytes!("fixtures/oscal/NIST_SP-800-53_rev5_catalog-min.json");
const LOW: &str = include_str!("fixtures/oscal/NIST_SP-800-53_rev5_LOW-baseline_profile.json");
const HIGH: &str = include_str!("fixtures/oscal/NIST_SP-800-53_rev5_HIGH-baseline_profile.json");
const CSF: &[u8] = include_bytes!("../config/frameworks/NIST_CSF_v2.0_catalog.xml");

fn import_with(profile: Option<&str>, options: ImportOptions) -> Imported {
    let options = ImportOptions {
        profile: profile.map(str::to_owned),
        ..options
    };
    import(
        ImportFormat::OscalJson,
        "NIST_SP-800-53_rev5_catalog-min.json",
        CATALOG.to_vec(),
        &options,
        &Catalog::builtin(),
    )
    .unwrap_or_else(|e| panic!("{e:?}"))
}

fn builtin(id: &str) -> Template {
    TemplateRegistry::builtin(&Catalog::builtin().actions, oscal::framework_controls)
        .expect("built-in templates")
        .get(id)
        .expect("built-in template")
        .clone()
}

/// The technical (catalog) actions a control of `t` names, wildcards included.
fn technical(t: &Template, control: &str) -> Vec<String> {
    let c = t
        .controls
        .iter()
        .find(|c| c.id == control)
        .expect("control");
    c.actions
        .iter()
        .filter(|a| {
            a.ends_with('*')
                || t.actions
                    .iter()
                    .any(|x| &x.id == *a && x.implementation_type == ImplementationType::Technical)
        })
        .cloned()
        .collect()
}

#[test]
fn low_baseline_imports_with_the_builtin_mappings() {
    let imported = import_with(Some(LOW), ImportOptions::default());
    let t = &imported.template;
    assert_eq!(t.controls.len(), 149);
    assert_eq!(t.id, "nist-800-53-r5-low");
    assert_eq!(
        t.title,
        "NIST Special Publication 800-53 Revision 5.1.1 LOW IMPACT BASELINE"
    );
    let mapping = imported.mapping.as_ref().expect("recognised");
    assert_eq!(mapping.framework, oscal::framework::Framework::Sp80053R5);
    assert_eq!(mapping.builtin_template, "nist-800-53-r5");
    assert!(mapping.no_action.is_empty(), "{:?}", mapping.no_action);
    assert_eq!(mapping.same_control, 149);
    for c in &t.controls {
        assert!(!c.actions.is_empty(), "{} has no action", c.id);
    }
    // One source of truth: a control shared with the built-in moderate template names the
    // same actions, and so the same technical ones.
    let moderate = builtin("nist-800-53-r5");
    let mut technical_total = 0;
    for c in &t.controls {
        let m = moderate
            .controls
            .iter()
            .find(|m| m.id == c.id)
            .expect("LOW is within MODERATE");
        assert_eq!(c.actions, m.actions, "{}", c.id);
        let (ours, theirs) = (technical(t, &c.id), technical(&moderate, &c.id));
        assert_eq!(ours.len(), theirs.len(), "{}", c.id);
        technical_total += ours.len();
    }
    assert!(technical_total > 0);
    // The declarations are the built-in ones, each once.
    for a in &t.actions {
        assert_eq!(
            Some(a),
            moderate.actions.iter().find(|m| m.id == a.id),
            "{}",
            a.id
        );
    }
    assert!(
        imported.summary().contains("0 with no action"),
        "{}",
        imported.summary()
    );
}

#[test]
fn high_baseline_takes_base_control_actions_and_reports_the_rest() {
    let imported = import_with(Some(HIGH), ImportOptions::default());
    let t = &imported.template;
    assert_eq!(t.controls.len(), 370);
    assert_eq!(t.id, "nist-800-53-r5-high");
    assert_eq!(
        t.title,
        "NIST Special Publication 800-53 Revision 5.1.1 HIGH IMPACT BASELINE"
    );
    let moderate = builtin("nist-800-53-r5");
    let library: HashSet<String> = builtin_library_actions()
        .expect("library")
        .into_iter()
        .map(|a| a.id)
        .collect();
    let mapping = imported.mapping.as_ref().expect("recognised");
    // AC-2(11) is HIGH only: it names AC-2's shared actions and none of AC-2's technical ones.
    assert!(moderate.controls.iter().all(|c| c.id != "AC-2(11)"));
    let ac2_11 = t
        .controls
        .iter()
        .find(|c| c.id == "AC-2(11)")
        .expect("AC-2(11)");
    let ac2 = moderate
        .controls
        .iter()
        .find(|c| c.id == "AC-2")
        .expect("AC-2");
    let shared: Vec<&String> = ac2
        .actions
        .iter()
        .filter(|a| library.contains(*a))
        .collect();
    assert!(!shared.is_empty());
    assert_eq!(ac2_11.actions.iter().collect::<Vec<_>>(), shared);
    assert!(technical(t, "AC-2(11)").is_empty());
    // Every control is counted once: same control, base control or no action.
    assert_eq!(
        mapping.same_control + mapping.base_control + mapping.no_action.len(),
        370
    );
    assert_eq!(mapping.base_control, 70);
    // HIGH-only base controls (and their enhancements) that neither the built-in template nor
    // a library action covers.
    assert_eq!(
        mapping.no_action,
        [
            "AC-10", "AU-10", "CA-8", "CA-8(1)", "PE-18", "SA-16", "SA-17", "SA-21", "SC-3",
            "SC-24", "SI-6", "SR-9", "SR-9(1)"
        ]
    );
    for id in &mapping.no_action {
        let c = t
            .controls
            .iter()
            .find(|c| &c.id == id)
            .expect("listed control");
        assert!(c.actions.is_empty());
        assert!(moderate.controls.iter().all(|m| m.id != *id), "{id}");
    }
    let with_actions = t.controls.iter().filter(|c| !c.actions.is_empty()).count();
    assert_eq!(with_actions, 370 - mapping.no_action.len());
    assert!(
        imported
            .summary()
            .contains(&format!("{} with no action", mapping.no_action.len())),
        "{}",
        imported.summary()
    );
}

#[test]
fn overrides_and_derived_ids() {
    let imported = import_with(
        Some(LOW),
        ImportOptions {
            id: Some("fedramp-low".into()),
            title: Some("FedRAMP Low".into()),
            ..ImportOptions::default()
        },
    );
    assert_eq!(imported.template.id, "fedramp-low");
    assert_eq!(imported.template.title, "FedRAMP Low");
    assert!(imported.mapping.is_some());
    // A derived id avoids the ids in use.
    let imported = import_with(
        Some(LOW),
        ImportOptions {
            taken_ids: vec!["nist-800-53-r5-low".into()],
            ..ImportOptions::default()
        },
    );
    assert_eq!(imported.template.id, "nist-800-53-r5-low-2");
    // The whole catalog without a profile: the catalog's title, a slug of at most 48
    // characters, the built-in mappings (1,000+ controls, most without one).
    let whole = import_with(None, ImportOptions::default());
    assert_eq!(
        whole.template.id,
        "nist-special-publication-800-53-revision-5"
    );
    assert!(
        whole
            .template
            .title
            .starts_with("NIST Special Publication 800-53 Revision 5:")
    );
    let mapping = whole.mapping.expect("recognised");
    assert!(mapping.same_control >= 287, "{mapping:?}");
}

#[test]
fn csf_catalog_imports_with_the_builtin_mappings() {
    let imported = import(
        ImportFormat::OscalXml,
        "NIST_CSF_v2.0_catalog.xml",
        CSF.to_vec(),
        &ImportOptions::default(),
        &Catalog::builtin(),
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    let mapping = imported.mapping.as_ref().expect("recognised");
    assert_eq!(mapping.framework, oscal::framework::Framework::Csf20);
    let csf = builtin("nist-csf-2.0");
    let t = &imported.template;
    assert_eq!(t.id, "nist-cybersecurity-framework-2-0");
    for c in &csf.controls {
        let ours = t.controls.iter().find(|x| x.id == c.id).expect("control");
        assert_eq!(ours.actions, c.actions, "{}", c.id);
    }
    assert_eq!(mapping.same_control, csf.controls.len());
    // What the built-in template leaves out (the functions, CSF 1.1 items 2.0 withdrew) gets
    // no action: no base-control fallback for CSF.
    assert_eq!(mapping.base_control, 0);
    assert_eq!(
        mapping.no_action.len(),
        t.controls.len() - csf.controls.len()
    );
    assert!(mapping.no_action.iter().any(|id| id == "PR.DS-03"));
}

/// `postured template import` of the catalog with the LOW profile, then `template coverage`.
#[test]
fn cli_imports_low_and_reports_its_coverage() {
    use std::process::Command;

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("postured.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"sqlite://{}?mode=rwc\"\n",
            dir.path().join("store.db").display()
        ),
    )
    .expect("config");
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oscal");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_postured"))
            .args(args)
            .env_remove("POSTURED_CONFIG")
            .output()
            .expect("runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let cfg = config.to_str().expect("utf-8");
    let catalog = fixtures.join("NIST_SP-800-53_rev5_catalog-min.json");
    let profile = fixtures.join("NIST_SP-800-53_rev5_LOW-baseline_profile.json");
    let (code, stdout, stderr) = run(&[
        "template",
        "import",
        catalog.to_str().unwrap(),
        "--profile",
        profile.to_str().unwrap(),
        "--config",
        cfg,
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("imported template nist-800-53-r5-low \"NIST Special Publication 800-53 Revision 5.1.1 LOW IMPACT BASELINE\" (149 controls"),
        "{stdout}"
    );
    assert!(
        stdout.contains("149 controls mapped as in nist-800-53-r5"),
        "{stdout}"
    );
    assert!(stdout.contains("0 with no action"), "{stdout}");
    let (code, stdout, stderr) = run(&[
        "template",
        "coverage",
        "nist-800-53-r5-low",
        "--config",
        cfg,
        "--output",
        "json",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let rows: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    let row = &rows[0];
    assert_eq!(row["template"], "nist-800-53-r5-low");
    assert_eq!(row["controls"], 149);
    assert_eq!(row["controls_without_actions"], 0);
}
