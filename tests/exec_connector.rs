//! The exec connector end to end through the daemon: a `kind = "exec"` table runs a real
//! program (a `/bin/sh` script written here), its JSON-lines signals are scored by a rule of the
//! connector's own `catalog` file, and a failing run is a gap (`could_not_be_detected`), never
//! a failed action.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use postured::evaluation::TestStatus;
use postured::store::PollOutcome;
use support::*;

const CATALOG: &str = r#"
[[actions]]
id = "exec.backup.recent"
title = "Back up every day"
category = "Operations"
solution = "restic"
description = "The last successful backup is at most 26 hours old."
purpose = "corrective"
enforcement = "mandatory"
risk = "high"
rule = 'exec.backup.last_success_age_hours <= 26.0'

[[actions]]
id = "exec.backup.encrypted_share"
title = "Encrypt every backup repository"
category = "Operations"
solution = "restic"
description = "Credit is the share of repositories encrypted."
purpose = "preventative"
enforcement = "mandatory"
rule = 'exec.backup.repositories == 0.0 ? "not_applicable" : exec.backup.encrypted_ratio'
"#;

/// Writes the program, the catalog and a template of the two actions; returns the extra
/// configuration sections and the tenant block.
fn setup(dir: &Path, body: &str) -> (String, String) {
    let program = dir.join("check-backup");
    std::fs::write(&program, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("backup-catalog.toml"), CATALOG).unwrap();
    std::fs::write(
        dir.join("backup.toml"),
        r#"
id = "backup"
title = "Backup hygiene"
certification = "Backup hygiene"
[[controls]]
id = "B-1"
family = "Backup"
title = "Backups are recent and encrypted"
actions = ["exec.backup.recent", "exec.backup.encrypted_share"]
"#,
    )
    .unwrap();
    let extra = format!(
        r#"
[model]
default_assessment = false
[templates]
dirs = ["{dir}"]
[[assessments]]
id = "acme-backup"
tenant = "acme"
template = "backup"
"#,
        dir = dir.display()
    );
    let tenant = format!(
        r#"
[[tenants]]
id = "acme"
  [[tenants.connectors]]
  kind = "exec"
  schedule = "0 0 * * * *"
  name = "backup"
  argv = ["{program}", "--repo", "all"]
  timeout = "5s"
  env = ["PATH"]
  working_dir = "{dir}"
  catalog = "{dir}/backup-catalog.toml"
"#,
        program = program.display(),
        dir = dir.display()
    );
    (extra, tenant)
}

#[tokio::test]
async fn an_exec_connectors_signals_are_scored_by_its_own_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let (extra, tenant) = setup(
        dir.path(),
        r#"[ "$1 $2" = "--repo all" ] || exit 9
echo '{"key": "exec.backup.last_success_age_hours", "value": 3.5, "expires_in": "1h"}'
echo '{"key": "exec.backup.repositories", "value": 4}'
echo '{"key": "exec.backup.encrypted_ratio", "value": 0.75}'"#,
    );
    let app = TestApp::spawn(&extra, &tenant).await;
    let report = app.poll("acme").await;
    assert_eq!(report.outcome, PollOutcome::Success, "{:?}", report.errors);
    let eval = &report.evaluation;
    let find = |id: &str| {
        eval.actions
            .iter()
            .find(|a| a.action_id == id)
            .unwrap_or_else(|| panic!("{id} evaluated"))
    };
    let recent = find("exec.backup.recent");
    assert_eq!(recent.test_status, TestStatus::Passed, "{recent:?}");
    assert!((recent.points_achieved - recent.points_possible).abs() < 1e-9);
    let enc = find("exec.backup.encrypted_share");
    assert_eq!(enc.test_status, TestStatus::PartiallyTested, "{enc:?}");
    assert!((enc.credit - 0.75).abs() < 1e-12);
    let possible = recent.points_possible + enc.points_possible;
    let achieved = recent.points_possible + 0.75 * enc.points_possible;
    assert!((eval.score.points_possible - possible).abs() < 1e-9);
    assert!((eval.score.points_achieved - achieved).abs() < 1e-9);

    let m = app.metrics().await;
    assert_eq!(
        sample(
            &m,
            "postured_connector_polls_total{connector=\"exec.backup\",outcome=\"success\",tenant=\"acme\"}"
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_failing_program_is_a_gap_never_a_failed_action() {
    let dir = tempfile::tempdir().unwrap();
    let (extra, tenant) = setup(
        dir.path(),
        r#"echo '{"key": "exec.backup.last_success_age_hours", "value": 999}'
echo "restic: repository is locked" >&2
exit 1"#,
    );
    let app = TestApp::spawn(&extra, &tenant).await;
    let report = app.poll("acme").await;
    assert_eq!(report.outcome, PollOutcome::Failure, "{:?}", report.errors);
    assert_eq!(report.errors.len(), 1);
    assert!(
        report.errors[0]
            .message
            .ends_with("stderr: restic: repository is locked"),
        "{:?}",
        report.errors
    );
    for a in &report.evaluation.actions {
        if a.action_id.starts_with("exec.backup.") {
            assert_eq!(a.test_status, TestStatus::CouldNotBeDetected, "{a:?}");
        }
    }
}

#[test]
fn a_catalog_file_named_by_several_connectors_is_merged_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_, tenant) = setup(dir.path(), "exit 0");
    let text = format!(
        "{tenant}\n{}",
        tenant.replace("id = \"acme\"", "id = \"globex\"")
    );
    let cfg = postured::config::Config::parse(&text, &[], &|_| None).unwrap();
    let catalog = dir.path().join("backup-catalog.toml").display().to_string();
    // Merged twice, its ids would clash: it compiles, with each action once.
    let evaluator = postured::assembly::evaluator(&cfg).expect("merged catalog compiles");
    assert_eq!(
        evaluator
            .actions()
            .filter(|a| a.id.starts_with("exec.backup."))
            .count(),
        CATALOG.matches("[[actions]]").count()
    );

    // A broken connector catalog is a start-up error naming the file and the key path.
    std::fs::write(
        dir.path().join("backup-catalog.toml"),
        CATALOG.replace("<= 26.0", "<= "),
    )
    .unwrap();
    let cfg = postured::config::Config::parse(&text, &[], &|_| None).unwrap();
    let Err(err) = postured::assembly::evaluator(&cfg) else {
        panic!("an invalid rule must not compile");
    };
    let err = format!("{err:#}");
    assert!(err.contains(&catalog), "{err}");
    assert!(err.contains("actions[0].rule"), "{err}");
}

#[test]
fn the_example_block_uncommented_is_a_valid_exec_connector() {
    let example = postured::config::EXAMPLE;
    let start = example
        .find("  # [[tenants.connectors]]\n  # kind = \"exec\"")
        .expect("exec block in config/example.toml");
    let block: String = example[start..]
        .lines()
        .take_while(|l| l.trim_start().starts_with('#'))
        .filter_map(|l| l.trim_start().strip_prefix("# "))
        .filter(|l| !l.starts_with("# "))
        // The catalog file is the reader's own.
        .filter(|l| !l.starts_with("catalog"))
        .map(|l| format!("{l}\n"))
        .collect();
    let text = format!("[[tenants]]\nid = \"acme\"\n{block}");
    let cfg = postured::config::Config::parse(&text, &[], &|_| None)
        .unwrap_or_else(|p| panic!("{p:?}\n{text}"));
    let c = &cfg.tenants[0].connectors[0];
    assert_eq!(c.kind_name(), "exec");
    let s = c
        .settings
        .as_any()
        .downcast_ref::<postured_connectors::exec::ExecSettings>()
        .unwrap();
    assert_eq!(s.config.namespace(), "exec.backup.");
    assert_eq!(s.config.max_stdout_bytes, 1 << 20);
}
