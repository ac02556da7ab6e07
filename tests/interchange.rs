//! Import and export end to end: a Compliance-Manager-format workbook built here is imported,
//! assessed with the model, exported as xlsx, CSV, JSON and OSCAL `assessment-results`
//! (validated against NIST's published OSCAL v1.2.1 JSON schema), and its template exported
//! and re-imported unchanged.

use std::io::Cursor;

use calamine::Reader;
use chrono::{TimeZone, Utc};
use rust_xlsxwriter::Workbook;
use serde_json::Value;

use postured::evaluation::{
    ActionResult, Catalog, ImplementationStatus, ScoreSummary, TenantEvaluation, TestStatus,
};
use postured::interchange::{csv, excel, json, oscal};
use postured::model::report::{AssessmentReport, TestingSource};
use postured::model::template::Template;
use postured::model::{
    Assessment, ComplianceModel, InstanceScope, ManualStatus, ModelInput, TemplateRegistry,
};

const SCHEMA: &str = include_str!("fixtures/oscal/schema/oscal_assessment-results_schema.json");
const NIST_EXAMPLE: &str = include_str!("fixtures/oscal/ifa_assessment-results-example.json");

/// The validator for NIST's assessment-results schema (draft-07, `\p{L}` patterns, formats
/// checked).
fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(SCHEMA).expect("schema is JSON");
    jsonschema::draft7::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the OSCAL schema compiles")
}

fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// A workbook in the Compliance Manager template layout, columns deliberately out of the
/// documented order, a `Dimensions` sheet, `;;` lists with spaces.
fn compliance_manager_workbook() -> Vec<u8> {
    let mut wb = Workbook::new();
    let rows = |ws: &mut rust_xlsxwriter::Worksheet, rows: &[&[&str]]| {
        for (r, cells) in rows.iter().enumerate() {
            for (c, v) in cells.iter().enumerate() {
                if r > 0
                    && let Ok(n) = v.parse::<f64>()
                {
                    ws.write_number(r as u32, c as u16, n).expect("cell");
                } else {
                    ws.write_string(r as u32, c as u16, *v).expect("cell");
                }
            }
        }
    };
    let ws = wb.add_worksheet();
    ws.set_name("Template").expect("name");
    rows(
        ws,
        &[
            &["certification", "title", "inScopeServices", "product"],
            &[
                "ACME Security Standard 1.0",
                "ACME Security Baseline",
                "Exchange Online;; Microsoft Entra ID",
                "Microsoft 365",
            ],
        ],
    );
    let ws = wb.add_worksheet();
    ws.set_name("ControlFamily").expect("name");
    rows(
        ws,
        &[
            &[
                "controlActionTitle",
                "controlName",
                "controlTitle",
                "controlFamily",
                "controlDescription",
            ],
            &[
                "Register every user for multifactor authentication ;; Keep an access control policy",
                "AC-2",
                "Account Management",
                "Access Control",
                "Manage accounts and require strong authentication.",
            ],
            &[
                "Train staff on phishing",
                "AT-2(2)",
                "Insider Threat",
                "Awareness and Training",
                "",
            ],
            &[
                "keep an access control policy",
                "Art. 32",
                "Security of processing",
                "GDPR",
                "Appropriate technical and organisational measures.",
            ],
        ],
    );
    let ws = wb.add_worksheet();
    ws.set_name("Actions").expect("name");
    rows(
        ws,
        &[
            &[
                "actionScore",
                "actionTitle",
                "actionDescription",
                "implementationType",
                "actionDescriptionTitle",
            ],
            &[
                "27",
                "Register every user for multifactor authentication",
                "Every user registers a second factor.",
                "Technical",
                "MFA registration",
            ],
            &[
                "3",
                "Keep an access control policy",
                "Write, approve and review the access control policy.",
                "Documentation",
                "Policy",
            ],
            &[
                "1",
                "Train staff on phishing",
                "Run yearly awareness training.",
                "Operational",
                "Training",
            ],
        ],
    );
    let ws = wb.add_worksheet();
    ws.set_name("Dimensions").expect("name");
    rows(ws, &[&["key", "value"], &["Product", "Microsoft 365"]]);
    wb.save_to_buffer().expect("workbook")
}

fn assess(template: &Template) -> AssessmentReport {
    let now = Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap();
    let mut registry = TemplateRegistry::new();
    registry
        .insert(template.clone())
        .expect("the imported template is valid for the model");
    let assessment = Assessment {
        id: "contoso-acme".into(),
        tenant: "contoso".into(),
        template: template.id.clone(),
        group: "default".into(),
    };
    let evaluation = TenantEvaluation {
        tenant: "contoso".into(),
        evaluated_at: now,
        actions: vec![ActionResult {
            action_id: "msgraph.mfa.all_users".into(),
            title: "Register every user for multifactor authentication".into(),
            category: "Identity".into(),
            solution: "Microsoft Entra ID".into(),
            implementation_status: ImplementationStatus::NotImplemented,
            test_status: TestStatus::PartiallyTested,
            credit: 0.8,
            points: 27,
            points_achieved: 21.6,
            points_possible: 27.0,
            testing_logic:
                "msgraph.mfa.users_total == 0.0 ? \"not_applicable\" : msgraph.mfa.registered_ratio"
                    .into(),
            reason: Some("40 of 50 users registered".into()),
            cause: None,
            signals: Vec::new(),
        }],
        score: ScoreSummary {
            points_achieved: 21.6,
            points_possible: 27.0,
            ratio: 0.8,
        },
        categories: Vec::new(),
    };
    let mut policy = ManualStatus::new(
        InstanceScope::Group("default".into()),
        "custom.keep_an_access_control_policy",
        TestingSource::Manual,
        now,
    );
    policy.test_status = Some(TestStatus::Passed);
    policy.assigned_to = Some("ciso@contoso.example".into());
    policy.implementation_date = Some(Utc.with_ymd_and_hms(2026, 10, 1, 9, 0, 0).unwrap());
    policy.test_date = Some(Utc.with_ymd_and_hms(2026, 11, 2, 14, 30, 0).unwrap());
    policy.test_notes = Some("reviewed against ISO 27001 A.5.15".into());
    policy.notes = Some("owned by the CISO".into());
    policy.evidence = vec![
        "https://contoso.sharepoint.com/policies/access-control.pdf".into(),
        "ISMS binder, section 4".into(),
    ];
    let model = ComplianceModel::build(&ModelInput {
        templates: &registry,
        assessments: &[assessment],
        evaluations: &[evaluation],
        manual: &[policy],
        now,
    });
    assert!(model.problems().is_empty(), "{:?}", model.problems());
    model.report("contoso-acme").expect("report")
}

#[test]
fn compliance_manager_workbook_round_trips_through_assessment_and_exports() {
    let catalog = Catalog::builtin();
    let template =
        excel::template_from_xlsx(&compliance_manager_workbook(), &catalog).expect("imports");
    assert_eq!(template.id, "acme-security-baseline");
    assert_eq!(
        template.in_scope_services,
        vec!["Exchange Online", "Microsoft Entra ID"]
    );
    let ids: Vec<&str> = template.actions.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![
            "msgraph.mfa.all_users",
            "custom.keep_an_access_control_policy",
            "custom.train_staff_on_phishing"
        ]
    );
    assert_eq!(
        template.controls[2].actions,
        vec!["custom.keep_an_access_control_policy"]
    );

    let report = assess(&template);
    assert_eq!(report.controls.len(), 3);
    assert_eq!(report.actions.len(), 3);
    let mfa = report
        .actions
        .iter()
        .find(|a| a.id == "msgraph.mfa.all_users")
        .expect("mfa");
    assert_eq!(mfa.test_status, TestStatus::PartiallyTested);

    // xlsx: one sheet per view, evidence rows.
    let xlsx = excel::report_to_xlsx(&report).expect("xlsx");
    let mut wb = calamine::open_workbook_auto_from_rs(Cursor::new(xlsx)).expect("readable");
    assert_eq!(
        wb.sheet_names(),
        vec!["Summary", "Controls", "Actions", "Evidence"]
    );
    let actions = wb.worksheet_range("Actions").expect("Actions");
    assert_eq!(actions.height(), 1 + report.actions.len());
    let evidence = wb.worksheet_range("Evidence").expect("Evidence");
    assert_eq!(evidence.height(), 3);
    // The workflow fields of the manual record, in their columns.
    let cell = |row: usize, name: &str| -> String {
        let col = (0..actions.width())
            .find(|&c| actions.get((0, c)).map(|v| v.to_string()).as_deref() == Some(name))
            .unwrap_or_else(|| panic!("column {name}"));
        actions
            .get((row, col))
            .map(|v| v.to_string())
            .unwrap_or_default()
    };
    let policy_row = (1..actions.height())
        .find(|&r| cell(r, "action") == "custom.keep_an_access_control_policy")
        .expect("the policy's row");
    assert_eq!(cell(policy_row, "assigned to"), "ciso@contoso.example");
    assert_eq!(cell(policy_row, "notes"), "owned by the CISO");
    assert_eq!(
        cell(policy_row, "implementation date"),
        "2026-10-01T09:00:00Z"
    );
    assert_eq!(cell(policy_row, "test date"), "2026-11-02T14:30:00Z");
    assert_eq!(
        cell(policy_row, "test notes"),
        "reviewed against ISO 27001 A.5.15"
    );

    // CSV: one row per (control, action).
    let text = csv::report_to_csv(&report).expect("csv");
    let mut reader = ::csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().expect("header").clone();
    assert_eq!(headers.len(), csv::REPORT_COLUMNS.len());
    let rows: Vec<::csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 4);
    let status = headers
        .iter()
        .position(|h| h == "test_status")
        .expect("col");
    assert!(rows.iter().any(|r| &r[status] == "partially_tested"));
    let col = |name: &str| headers.iter().position(|h| h == name).expect(name);
    let policy = rows
        .iter()
        .find(|r| &r[col("action")] == "custom.keep_an_access_control_policy")
        .expect("the policy's row");
    for (name, want) in [
        ("assigned_to", "ciso@contoso.example"),
        ("notes", "owned by the CISO"),
        ("implementation_date", "2026-10-01T09:00:00Z"),
        ("test_date", "2026-11-02T14:30:00Z"),
        ("test_notes", "reviewed against ISO 27001 A.5.15"),
    ] {
        assert_eq!(&policy[col(name)], want, "{name}");
    }

    // JSON: the report itself.
    let text = json::report_to_json(&report).expect("json");
    let back: AssessmentReport = serde_json::from_str(&text).expect("parses");
    assert_eq!(back, report);

    // OSCAL: valid against NIST's schema, with findings and observations.
    let doc = oscal::assessment_results(&report);
    let v = validator();
    assert_eq!(errors(&v, &doc), Vec::<String>::new());
    let result = &doc["assessment-results"]["results"][0];
    let selected: Vec<&str> =
        result["reviewed-controls"]["control-selections"][0]["include-controls"]
            .as_array()
            .expect("include-controls")
            .iter()
            .map(|c| c["control-id"].as_str().unwrap_or_default())
            .collect();
    assert_eq!(selected, vec!["ac-2", "at-2.2", "art.32"]);
    assert_eq!(result["observations"].as_array().map(Vec::len), Some(3));
    assert_eq!(result["findings"].as_array().map(Vec::len), Some(3));
    let art32 = &result["findings"][2]["target"];
    assert_eq!(art32["target-id"], "art.32_obj");
    assert_eq!(art32["status"]["state"], "satisfied");
    let ac2 = &result["findings"][0]["target"];
    assert_eq!(ac2["status"]["state"], "not-satisfied");

    // The template exported as a workbook and re-imported is the same template.
    let exported = excel::template_to_xlsx(&template).expect("template workbook");
    assert_eq!(
        excel::template_from_xlsx(&exported, &catalog).expect("re-imports"),
        template
    );
    let flat = csv::template_to_csv(&template).expect("template csv");
    assert_eq!(
        csv::template_from_csv(&flat, "t.csv", &catalog).expect("re-imports"),
        template
    );
}

#[test]
fn the_validator_accepts_nists_example_and_rejects_broken_documents() {
    let v = validator();
    let example: Value = serde_json::from_str(NIST_EXAMPLE).expect("example is JSON");
    assert_eq!(errors(&v, &example), Vec::<String>::new());

    // A bad uuid, a missing title, a non-token control id, a bad state: each is caught.
    let mut broken = example.clone();
    broken["assessment-results"]["uuid"] = "not-a-uuid".into();
    let metadata = broken["assessment-results"]["metadata"]
        .as_object_mut()
        .expect("metadata");
    metadata.remove("title");
    assert_eq!(errors(&v, &broken).len(), 2, "{:?}", errors(&v, &broken));

    let catalog = Catalog::builtin();
    let template =
        excel::template_from_xlsx(&compliance_manager_workbook(), &catalog).expect("imports");
    let mut doc = oscal::assessment_results(&assess(&template));
    doc["assessment-results"]["results"][0]["reviewed-controls"]["control-selections"][0]["include-controls"]
        [0]["control-id"] = "Art. 32".into();
    doc["assessment-results"]["results"][0]["findings"][0]["target"]["status"]["state"] =
        "passed".into();
    doc["assessment-results"]["metadata"]["last-modified"] = "yesterday".into();
    let found = errors(&v, &doc);
    assert!(found.len() >= 3, "{found:?}");
    assert!(found.iter().any(|e| e.contains("control-id")), "{found:?}");
    assert!(
        found.iter().any(|e| e.contains("last-modified")),
        "{found:?}"
    );
}

#[test]
fn an_invalid_workbook_yields_every_error_and_no_template() {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("Template").expect("name");
    for (c, h) in ["title", "product", "certification"].iter().enumerate() {
        ws.write_string(0, c as u16, *h).expect("cell");
    }
    ws.write_string(1, 0, "T").expect("cell");
    ws.write_string(1, 2, "C").expect("cell");
    let ws = wb.add_worksheet();
    ws.set_name("ControlFamily").expect("name");
    for (c, h) in [
        "controlName",
        "controlFamily",
        "controlTitle",
        "controlActionTitle",
    ]
    .iter()
    .enumerate()
    {
        ws.write_string(0, c as u16, *h).expect("cell");
    }
    for r in [1, 2] {
        ws.write_string(r, 0, "X-1").expect("cell");
        ws.write_string(r, 1, "F").expect("cell");
        ws.write_string(r, 2, "T").expect("cell");
        ws.write_string(r, 3, "A;;B").expect("cell");
    }
    let ws = wb.add_worksheet();
    ws.set_name("Actions").expect("name");
    for (c, h) in ["actionTitle", "implementationType", "actionScore"]
        .iter()
        .enumerate()
    {
        ws.write_string(0, c as u16, *h).expect("cell");
    }
    ws.write_string(1, 0, "A").expect("cell");
    ws.write_string(1, 1, "Technical").expect("cell");
    ws.write_number(1, 2, 120.0).expect("cell");
    let bytes = wb.save_to_buffer().expect("saved");
    let got: Vec<String> = excel::template_from_xlsx(&bytes, &Catalog::builtin())
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        got,
        vec![
            "Actions!2:actionScore: `120` is not an integer in 1..=99",
            "ControlFamily!2:controlActionTitle: no action titled `B` in sheet Actions",
            "ControlFamily!3:controlActionTitle: no action titled `B` in sheet Actions",
            "ControlFamily!3:controlName: duplicate control `X-1` (first at row 2)",
        ]
    );
}

/// The commands end to end on a temporary SQLite store and the demo tenant's recordings:
/// `template import` (valid and invalid workbooks), `template list`, `once`, `export` in every
/// format (the OSCAL document validated against the schema).
#[test]
fn cli_imports_lists_and_exports() {
    use std::process::Command;

    let dir = tempfile::tempdir().expect("tempdir");
    let replay = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo/msgraph");
    let config = dir.path().join("postured.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"sqlite://{}?mode=rwc\"\n\n[[tenants]]\nid = \"contoso\"\n\n  \
             [[tenants.connectors]]\n  kind = \"msgraph\"\n  schedule = \"0 * * * * *\"\n  \
             replay_dir = \"{}\"\n",
            dir.path().join("store.db").display(),
            replay.display()
        ),
    )
    .expect("config");
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
    let cfg = config.to_str().expect("utf-8 path");

    let good = dir.path().join("acme.xlsx");
    std::fs::write(&good, compliance_manager_workbook()).expect("workbook");
    let mut wb = Workbook::new();
    wb.add_worksheet().set_name("Template").expect("name");
    let bad = dir.path().join("bad.xlsx");
    std::fs::write(&bad, wb.save_to_buffer().expect("saved")).expect("workbook");

    let (code, _, stderr) = run(&["template", "import", bad.to_str().unwrap(), "--config", cfg]);
    assert_eq!(code, Some(65), "{stderr}");
    assert!(stderr.contains("ControlFamily: missing sheet"), "{stderr}");

    let (code, stdout, stderr) = run(&[
        "template",
        "import",
        good.to_str().unwrap(),
        "--config",
        cfg,
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("imported template acme-security-baseline"),
        "{stdout}"
    );
    let (code, stdout, _) = run(&["template", "list", "--config", cfg]);
    assert_eq!(code, Some(0));
    let line = stdout
        .lines()
        .find(|l| l.starts_with("acme-security-baseline"))
        .expect("listed");
    assert!(line.contains("imported"), "{line}");
    // Coverage: the imported template is there, and with this configuration (msgraph only)
    // the AWS actions of the built-in templates do not count.
    let (code, stdout, stderr) =
        run(&["template", "coverage", "--config", cfg, "--output", "json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let rows: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    let row = |id: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["template"] == id)
            .unwrap_or_else(|| panic!("{id} in {stdout}"))
            .clone()
    };
    assert!(row("acme-security-baseline")["controls"].as_u64().unwrap() > 0);
    let hipaa = row("hipaa-security-rule");
    assert!(
        hipaa["automated_controls_by_kind"].get("aws_iam").is_none(),
        "{hipaa}"
    );
    assert!(
        hipaa["automated_controls_by_kind"]["msgraph"]
            .as_u64()
            .unwrap()
            > 0
    );
    let (code, _, stderr) = run(&["template", "coverage", "no-such-template"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("unknown template `no-such-template`"),
        "{stderr}"
    );

    let (code, _, stderr) = run(&["once", "--config", cfg, "--output", "json"]);
    assert_eq!(code, Some(0), "{stderr}");

    let export = |format: &str| {
        let out = dir.path().join(format!("report.{format}"));
        let (code, _, stderr) = run(&[
            "export",
            "--config",
            cfg,
            "--tenant",
            "contoso",
            "--assessment",
            "contoso-acme-security-baseline",
            "--format",
            format,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, Some(0), "{format}: {stderr}");
        std::fs::read(out).expect("written")
    };
    let doc: Value = serde_json::from_slice(&export("oscal")).expect("OSCAL JSON");
    assert_eq!(errors(&validator(), &doc), Vec::<String>::new());
    let report: AssessmentReport = serde_json::from_slice(&export("json")).expect("report");
    assert_eq!(report.template_id, "acme-security-baseline");
    assert_eq!(report.actions.len(), 3);
    let mfa = report
        .actions
        .iter()
        .find(|a| a.id == "msgraph.mfa.all_users")
        .expect("mfa");
    assert_eq!(mfa.testing_source, TestingSource::Automatic);
    assert_ne!(mfa.test_status, TestStatus::None);
    let csv_text = String::from_utf8(export("csv")).expect("utf-8");
    assert_eq!(csv_text.lines().count(), 5);
    let xlsx = export("xlsx");
    let wb = calamine::open_workbook_auto_from_rs(Cursor::new(xlsx)).expect("readable");
    assert_eq!(wb.sheet_names().len(), 4);
}

/// Edge cases of the OSCAL export stay valid: no controls at all, an out-of-scope control,
/// evidence that is not a URL, multi-line testing logic, a control id that is no OSCAL token.
#[test]
fn oscal_export_edge_cases_validate() {
    use postured::evaluation::ScoreSummary;
    use postured::model::report::{
        ActionInstanceReport, AssessmentStatus, ControlReport, ControlStatus,
    };
    use postured::model::template::{ImplementationType, Responsibility};

    let at = Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap();
    let empty = AssessmentReport {
        id: "a".into(),
        tenant: "t".into(),
        group: "default".into(),
        template_id: "x".into(),
        template_title: "".into(),
        certification: " ".into(),
        generated_at: at,
        score: ScoreSummary::default(),
        status: AssessmentStatus::None,
        progress: 0.0,
        automated_points_ratio: 0.0,
        controls: Vec::new(),
        actions: Vec::new(),
    };
    let v = validator();
    let doc = oscal::assessment_results(&empty);
    assert_eq!(errors(&v, &doc), Vec::<String>::new());

    let mut report = empty.clone();
    report.controls = vec![
        ControlReport {
            id: "5.1 (a)".into(),
            family: "".into(),
            title: "Odd id".into(),
            description: "".into(),
            status: ControlStatus::InProgress,
            actions: vec!["custom.a".into()],
        },
        ControlReport {
            id: "OOS-1".into(),
            family: "F".into(),
            title: "Out".into(),
            description: "Line one\nline two".into(),
            status: ControlStatus::OutOfScope,
            actions: Vec::new(),
        },
    ];
    report.actions = vec![ActionInstanceReport {
        id: "custom.a".into(),
        title: " Multi\nline title ".into(),
        implementation_type: ImplementationType::Operational,
        responsibility: Responsibility::Provider,
        testing_source: TestingSource::Parent,
        implementation_status: ImplementationStatus::Planned,
        test_status: TestStatus::InProgress,
        points: 3,
        points_achieved: 0.0,
        points_possible: 3.0,
        testing_logic: "a &&\n  b".into(),
        reason: Some(" ".into()),
        assigned_to: Some("".into()),
        notes: Some("see\nbinder".into()),
        implementation_date: None,
        test_notes: None,
        test_date: None,
        evidence: vec![
            "Binder 4, shelf 2".into(),
            "https://example.org/e?x=1".into(),
        ],
        guidance: String::new(),
        expected_evidence: String::new(),
        status_since: None,
    }];
    let doc = oscal::assessment_results(&report);
    assert_eq!(errors(&v, &doc), Vec::<String>::new());
    let result = &doc["assessment-results"]["results"][0];
    assert_eq!(
        result["reviewed-controls"]["control-selections"][0]["exclude-controls"][0]["control-id"],
        "oos-1"
    );
    assert_eq!(result["findings"][0]["target"]["target-id"], "_5.1.a_obj");
    let evidence = &result["observations"][0]["relevant-evidence"];
    assert!(evidence[0].get("href").is_none());
    assert_eq!(evidence[1]["href"], "https://example.org/e?x=1");
}

/// Every built-in template survives export and re-import in both template layouts.
#[test]
fn builtin_templates_round_trip_through_workbook_and_csv() {
    let catalog = Catalog::builtin();
    let registry = TemplateRegistry::builtin(
        &catalog.actions,
        postured::interchange::oscal::framework_controls,
    )
    .expect("built-in templates");
    assert!(registry.iter().count() >= 5);
    for template in registry.iter() {
        let xlsx = excel::template_to_xlsx(template).expect("workbook");
        assert_eq!(
            excel::template_from_xlsx(&xlsx, &catalog).as_ref(),
            Ok(template),
            "{} via xlsx",
            template.id
        );
        let text = csv::template_to_csv(template).expect("csv");
        assert_eq!(
            csv::template_from_csv(&text, "t.csv", &catalog).as_ref(),
            Ok(template),
            "{} via csv",
            template.id
        );
    }
}
