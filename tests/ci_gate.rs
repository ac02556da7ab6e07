//! The CI gate of `postured once` (docs/ci-gate.md), run as the real binary on the demo
//! configuration (recordings replayed, no network) and on a loopback Graph whose sign-in
//! fails: exit codes for a score under and over `--fail-under` (tenant and assessment),
//! `--fail-on` hits and misses, undetected actions that never pass silently, usage and
//! configuration errors told apart, the one-line reasons without secrets, and the JUnit XML
//! and SARIF 2.1.0 outputs parsed back (SARIF against the OASIS schema) and checked against
//! the JSON report of the same run.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use serde_json::Value;

const GATE_BREACH: i32 = 3;
const GATE_UNDECIDED: i32 = 4;
const USAGE: i32 = 2;
const CONFIG: i32 = 64;

/// The OASIS SARIF 2.1.0 schema (errata 01), see tests/fixtures/sarif/SOURCES.md.
const SARIF_SCHEMA: &str = include_str!("fixtures/sarif/sarif-schema-2.1.0.json");

/// `postured once` with the given arguments, its store in `dir`.
fn once(dir: &Path, config: &str, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_postured"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .env("POSTURED__SERVER__LISTEN", "127.0.0.1:0")
        .env(
            "POSTURED__STORE__URL",
            format!("sqlite://{}", dir.join("gate.db").display()),
        )
        .env("POSTURED__LOG__LEVEL", "error")
        .env("TEST_CLIENT_SECRET", SECRET)
        .args(["once", "--config", config])
        .args(args)
        .output()
        .expect("postured runs")
}

fn demo(dir: &Path, args: &[&str]) -> Output {
    once(dir, "config/demo.toml", args)
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

/// The gate's lines on standard error (logs are at level error, and none are expected).
fn gate_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("postured: "))
        .map(str::to_owned)
        .collect()
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn tenant<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .find(|t| t["tenant"] == id)
        .unwrap_or_else(|| panic!("tenant {id} in {report}"))
}

fn statuses(t: &Value) -> BTreeMap<String, String> {
    t["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| {
            (
                a["id"].as_str().expect("id").to_owned(),
                a["test_status"].as_str().expect("status").to_owned(),
            )
        })
        .collect()
}

#[test]
fn fail_under_passes_at_the_tenant_score_and_breaches_above_it() {
    let dir = tempfile::tempdir().unwrap();
    // The AWS demo account: every action detected; its score is the JSON report's.
    let out = demo(
        dir.path(),
        &[
            "--tenant",
            "aws-demo",
            "--fail-under",
            "0.05",
            "--output",
            "json",
        ],
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(gate_lines(&out).is_empty(), "{:?}", gate_lines(&out));
    let report = stdout_json(&out);
    assert_eq!(report["tenants"].as_array().map(Vec::len), Some(1));
    let ratio = tenant(&report, "aws-demo")["score"]["ratio"]
        .as_f64()
        .unwrap();
    // 192 of 3,755 points: the framework assessments' operational actions are not yet done.
    assert!((0.05..0.06).contains(&ratio), "{ratio}");

    let out = demo(dir.path(), &["--tenant", "aws-demo", "--fail-under", "6%"]);
    assert_eq!(code(&out), GATE_BREACH);
    assert_eq!(
        gate_lines(&out),
        [format!(
            "postured: tenant aws-demo: compliance score {ratio:.2} is under 0.06"
        )]
    );
    // The table is still printed.
    assert!(String::from_utf8_lossy(&out.stdout).contains("Tenant aws-demo"));

    // Every tenant judged: Contoso (219.38 / 4,129 = 0.0531) passes 0.053 with a warning for
    // its undetected action, the AWS account (0.0511) does not.
    let out = demo(dir.path(), &["--fail-under", "0.053"]);
    assert_eq!(code(&out), GATE_BREACH);
    let lines = gate_lines(&out);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("postured: tenant aws-demo: compliance score 0.051")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .filter(|l| l.contains("contoso-demo"))
            .all(|l| l.contains("warning:")),
        "{lines:?}"
    );
}

#[test]
fn fail_under_judges_one_assessment_with_assessment() {
    let dir = tempfile::tempdir().unwrap();
    let out = demo(
        dir.path(),
        &[
            "--assessment",
            "aws-demo-iso27001",
            "--fail-under",
            "0.08",
            "--output",
            "json",
        ],
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let report = stdout_json(&out);
    let iso = tenant(&report, "aws-demo")["assessments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "aws-demo-iso27001")
        .expect("the ISO assessment")["score"]["ratio"]
        .as_f64()
        .unwrap();
    // The assessment's own score (192 / 2,363), not the tenant's (0.05).
    assert!((0.08..0.09).contains(&iso), "{iso}");

    let out = demo(
        dir.path(),
        &["--assessment", "aws-demo-iso27001", "--fail-under", "0.09"],
    );
    assert_eq!(code(&out), GATE_BREACH);
    assert_eq!(
        gate_lines(&out),
        [format!(
            "postured: tenant aws-demo: assessment aws-demo-iso27001: compliance score {iso:.2} \
             is under 0.09"
        )]
    );

    // The AWS account's default baseline holds only Microsoft actions: no points possible,
    // so no score to judge: undecided, never a pass.
    let out = demo(
        dir.path(),
        &[
            "--assessment",
            "aws-demo-data-protection-baseline",
            "--fail-under",
            "0",
        ],
    );
    assert_eq!(code(&out), GATE_UNDECIDED);
    assert!(
        gate_lines(&out)[0].contains("no points are possible"),
        "{:?}",
        gate_lines(&out)
    );
}

#[test]
fn an_undetected_action_never_passes_fail_under_silently() {
    // Contoso's Secure Score control AdminMFAV2 has no score in the recording:
    // msgraph.securescore.admin_mfa is could_not_be_detected (10 points, counted as 0). The
    // score is 219.38 / 4,129 = 0.0531; had it passed, 229.38 / 4,129 = 0.0556.
    let dir = tempfile::tempdir().unwrap();
    let args = |t: &'static str| ["--tenant", "contoso-demo", "--fail-under", t];

    // Over the threshold even with 0 points for it: a pass that names it.
    let out = demo(dir.path(), &args("0.05"));
    assert_eq!(code(&out), 0);
    assert_eq!(
        gate_lines(&out),
        [
            "postured: tenant contoso-demo: warning: 1 improvement action could not be detected \
             (counted as 0 points): msgraph.securescore.admin_mfa"
        ]
    );
    // Under the threshold only because of it: undecided (4), not a breach.
    let out = demo(dir.path(), &args("0.055"));
    assert_eq!(code(&out), GATE_UNDECIDED);
    assert_eq!(
        gate_lines(&out),
        [
            "postured: tenant contoso-demo: compliance score 0.053 is under 0.055, but 1 \
             improvement action could not be detected (up to 0.056 if they passed): \
             msgraph.securescore.admin_mfa"
        ]
    );
    // Under the threshold whatever it turns out to be: a breach.
    let out = demo(dir.path(), &args("0.06"));
    assert_eq!(code(&out), GATE_BREACH);
    assert_eq!(
        gate_lines(&out)[0],
        "postured: tenant contoso-demo: compliance score 0.05 is under 0.06"
    );
}

#[test]
fn fail_on_hits_and_misses() {
    let dir = tempfile::tempdir().unwrap();
    let out = demo(
        dir.path(),
        &[
            "--tenant",
            "aws-demo",
            "--fail-on",
            "failed_high_risk",
            "--output",
            "json",
        ],
    );
    assert_eq!(code(&out), GATE_BREACH);
    let report = stdout_json(&out);
    let high: Vec<String> = statuses(tenant(&report, "aws-demo"))
        .into_iter()
        .filter(|(_, s)| s == "failed_high_risk")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(high, ["aws_iam.policies.no_full_admin", "aws_iam.root.mfa"]);
    assert_eq!(
        gate_lines(&out),
        [
            "postured: tenant aws-demo: 2 improvement actions failed_high_risk: \
             aws_iam.policies.no_full_admin, aws_iam.root.mfa"
        ]
    );

    // One line per status hit, in the order asked.
    let out = demo(
        dir.path(),
        &[
            "--tenant",
            "aws-demo",
            "--fail-on",
            "failed_medium_risk,failed_low_risk",
        ],
    );
    assert_eq!(code(&out), GATE_BREACH);
    let lines = gate_lines(&out);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        lines[0],
        "postured: tenant aws-demo: 1 improvement action failed_medium_risk: \
         aws_iam.root.hardware_mfa"
    );
    assert!(
        lines[1].starts_with("postured: tenant aws-demo: 4 improvement actions failed_low_risk: "),
        "{lines:?}"
    );

    // A miss: nothing the AWS account has.
    let out = demo(
        dir.path(),
        &[
            "--tenant",
            "aws-demo",
            "--fail-on",
            "could_not_be_detected,to_be_detected",
        ],
    );
    assert_eq!(code(&out), 0, "{:?}", gate_lines(&out));
    assert!(gate_lines(&out).is_empty());

    // Contoso's undetected action, asked for: a failure told apart from a breach (4).
    let out = demo(
        dir.path(),
        &[
            "--tenant",
            "contoso-demo",
            "--fail-on",
            "could_not_be_detected",
        ],
    );
    assert_eq!(code(&out), GATE_UNDECIDED);
    assert_eq!(
        gate_lines(&out),
        [
            "postured: tenant contoso-demo: 1 improvement action could_not_be_detected: \
             msgraph.securescore.admin_mfa"
        ]
    );
    // With a breach beside it, the breach decides the exit code.
    let out = demo(
        dir.path(),
        &["--fail-on", "could_not_be_detected,failed_high_risk"],
    );
    assert_eq!(code(&out), GATE_BREACH);
    assert_eq!(gate_lines(&out).len(), 3, "{:?}", gate_lines(&out));
}

#[test]
fn usage_and_configuration_errors_are_not_gate_results() {
    let dir = tempfile::tempdir().unwrap();
    let out = demo(dir.path(), &["--fail-on", "failed_high_risk,failed_badly"]);
    assert_eq!(code(&out), USAGE);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid value 'failed_badly'"), "{err}");
    assert!(
        err.contains("could_not_be_detected"),
        "the list of statuses: {err}"
    );

    for bad in ["80", "1.5", "-1%", "most"] {
        let out = demo(dir.path(), &["--fail-under", bad]);
        assert_eq!(code(&out), USAGE, "{bad}");
    }

    let out = demo(dir.path(), &["--tenant", "nobody", "--fail-under", "0.5"]);
    assert_eq!(code(&out), USAGE);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--tenant nobody: no such tenant (configured: contoso-demo, aws-demo)"),
        "{err}"
    );
    let out = demo(
        dir.path(),
        &["--tenant", "aws-demo", "--assessment", "contoso-demo-scuba"],
    );
    assert_eq!(code(&out), USAGE);
    let out = demo(dir.path(), &["--assessment", "contoso-demo-sox"]);
    assert_eq!(code(&out), USAGE);

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[scheduler]\nmax_concurrent_polls = \"many\"\n").unwrap();
    let out = once(dir.path(), bad.to_str().unwrap(), &["--fail-under", "0.5"]);
    assert_eq!(code(&out), CONFIG);
}

#[test]
fn junit_has_one_test_case_per_tenant_action_with_the_reports_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let json = stdout_json(&demo(dir.path(), &["--output", "json"]));
    let file = dir.path().join("postured.xml");
    let out = demo(
        dir.path(),
        &["--output", "junit", "--output-file", file.to_str().unwrap()],
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.stdout.is_empty(),
        "--output-file replaces standard output"
    );
    let xml = std::fs::read_to_string(&file).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("well-formed JUnit XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    let names: Vec<_> = suites.iter().filter_map(|s| s.attribute("name")).collect();
    assert_eq!(names, ["contoso-demo", "aws-demo"]);
    let mut tests = 0;
    for suite in &suites {
        let id = suite.attribute("name").unwrap();
        let t = tenant(&json, id);
        let property = |name: &str| {
            suite
                .descendants()
                .find(|n| n.has_tag_name("property") && n.attribute("name") == Some(name))
                .and_then(|n| n.attribute("value"))
                .map(str::to_owned)
        };
        assert_eq!(
            property("compliance_score"),
            Some(format!("{:.4}", t["score"]["ratio"].as_f64().unwrap()))
        );
        let cases: BTreeMap<&str, roxmltree::Node> = suite
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .map(|n| (n.attribute("name").unwrap(), n))
            .collect();
        let count: usize = suite.attribute("tests").unwrap().parse().unwrap();
        assert_eq!(count, cases.len());
        tests += count;
        // Every action of the JSON report is a test case of its tenant, its outcome the one
        // its status maps to.
        for (action, status) in statuses(t) {
            let case = cases
                .get(action.as_str())
                .unwrap_or_else(|| panic!("{id}/{action}"));
            assert_eq!(case.attribute("classname"), Some(id));
            let child = case.children().find(|n| {
                ["failure", "error", "skipped"]
                    .iter()
                    .any(|k| n.has_tag_name(*k))
            });
            let got = child.map(|n| (n.tag_name().name(), n.attribute("type").unwrap()));
            let want = match status.as_str() {
                "passed" => None,
                s if s.starts_with("failed_") || s == "partially_tested" => Some(("failure", s)),
                s @ ("could_not_be_detected" | "to_be_detected") => Some(("error", s)),
                s => Some(("skipped", s)),
            };
            assert_eq!(got, want, "{id}/{action}");
        }
    }
    assert_eq!(root.attribute("tests"), Some(tests.to_string().as_str()));

    // The demo's known statuses, with points and reasons.
    let contoso = suites[0];
    let outcome = |action: &str| {
        contoso
            .children()
            .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some(action))
            .and_then(|c| {
                c.children()
                    .find(|n| n.is_element() && !n.has_tag_name("properties"))
            })
            .map(|n| n.attribute("message").unwrap_or("").to_owned())
    };
    assert_eq!(
        outcome("msgraph.privileged.least_privilege").as_deref(),
        Some(
            "failed_medium_risk: 0 of 27 points: 3 Global Administrators, 0 users holding only \
             other privileged roles (no more Global Administrators than those wanted)"
        )
    );
    assert_eq!(outcome("msgraph.privileged.global_admins_count"), None);
    assert_eq!(
        outcome("msgraph.securescore.admin_mfa").as_deref(),
        Some(
            "could_not_be_detected: 0 of 10 points: signal \
             msgraph.securescore.controls.AdminMFAV2.score not available"
        )
    );
    assert!(
        outcome("msgraph.privileged.no_permanent_assignments")
            .unwrap()
            .starts_with("out_of_scope: the tenant has no Microsoft Entra ID P2 licence")
    );
}

#[test]
fn sarif_is_valid_and_has_a_rule_per_action_and_a_result_per_failing_one() {
    let dir = tempfile::tempdir().unwrap();
    let json = stdout_json(&demo(dir.path(), &["--output", "json"]));
    let out = demo(
        dir.path(),
        &["--output", "sarif", "--fail-on", "failed_high_risk"],
    );
    // The output is written, then the gate decides the exit code.
    assert_eq!(code(&out), GATE_BREACH);
    let sarif = stdout_json(&out);

    let schema: Value = serde_json::from_str(SARIF_SCHEMA).unwrap();
    let validator = jsonschema::draft4::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the SARIF schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&sarif)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The validator does reject a broken log (the check is not vacuous).
    let mut broken = sarif.clone();
    broken["runs"][0]["results"][0]["level"] = Value::from("fatal");
    assert!(!validator.is_valid(&broken));

    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "postured");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let rule_ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let mut sorted = rule_ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(rule_ids, sorted, "one rule per action, sorted");
    let rule = |id: &str| {
        rules
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("rule {id}"))
    };
    let legacy = rule("msgraph.ca.legacy_auth_blocked");
    assert!(legacy["shortDescription"]["text"].as_str().unwrap().len() > 5);
    assert!(
        legacy["help"]["text"]
            .as_str()
            .unwrap()
            .contains("Testing logic:")
    );
    assert!(legacy["properties"]["points"].as_u64().unwrap() > 0);
    let frameworks: Vec<&str> = legacy["properties"]["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(frameworks.contains(&"ISO/IEC 27001:2022"), "{frameworks:?}");

    // One result per failing or undetected action of each tenant, by risk.
    let mut want = Vec::new();
    for t in json["tenants"].as_array().unwrap() {
        for (action, status) in statuses(t) {
            let level = match status.as_str() {
                "failed_high_risk" => ("fail", "error"),
                "failed_medium_risk" => ("fail", "warning"),
                "failed_low_risk" | "partially_tested" => ("fail", "note"),
                "could_not_be_detected" | "to_be_detected" => ("open", "none"),
                _ => continue,
            };
            want.push((format!("{}/{action}", t["tenant"].as_str().unwrap()), level));
        }
    }
    let results = run["results"].as_array().unwrap();
    let mut got: Vec<(String, (&str, &str))> = results
        .iter()
        .map(|r| {
            let index = r["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rule_ids[index], r["ruleId"].as_str().unwrap());
            (
                r["partialFingerprints"]["postured/v1"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                (r["kind"].as_str().unwrap(), r["level"].as_str().unwrap()),
            )
        })
        .collect();
    // Every action of the report that fails, plus the non-technical ones it does not list
    // (none fails in the demo: they are untested).
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert!(want.contains(&("aws-demo/aws_iam.root.mfa".to_owned(), ("fail", "error"))));
    assert!(want.contains(&(
        "contoso-demo/msgraph.securescore.admin_mfa".to_owned(),
        ("open", "none")
    )));
    let first = &results[0];
    assert_eq!(
        first["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "config/demo.toml"
    );
}

const SECRET: &str = "gate-test-client-secret-5d1f";

#[tokio::test]
async fn a_collection_failure_is_undecided_not_a_breach_and_no_line_has_the_secret() {
    // Two tenants on a loopback Graph: `healthy` signs in and reads the official examples;
    // `down`'s sign-in is refused (401 invalid_client), so every one of its actions is
    // could_not_be_detected.
    let graph = wiremock::MockServer::start().await;
    support::mount_token_ok(&graph, "healthy-guid").await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/down-guid/oauth2/v2.0/token"))
        .respond_with(wiremock::ResponseTemplate::new(401).set_body_raw(
            format!(
                r#"{{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided: {SECRET}"}}"#
            ),
            "application/json",
        ))
        .mount(&graph)
        .await;
    support::mount_graph_examples(&graph).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("postured.toml");
    std::fs::write(
        &config,
        format!(
            "[scheduler]\nstartup_jitter = \"0s\"\n{}{}",
            support::tenant_block(
                "healthy",
                "healthy-guid",
                "client-1",
                &graph.uri(),
                "0 0 * * * *"
            ),
            support::tenant_block("down", "down-guid", "client-2", &graph.uri(), "0 0 * * * *"),
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap().to_owned();
    let run = |args: &[&str]| {
        let (dir, config) = (dir.path().to_owned(), config.clone());
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            once(&dir, &config, &args)
        })
    };

    // The sign-in failure alone: undecided at any threshold the undetected actions could
    // reach, never a breach.
    let out = run(&["--tenant", "down", "--fail-under", "0.5"])
        .await
        .unwrap();
    assert_eq!(
        code(&out),
        GATE_UNDECIDED,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = gate_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("postured: tenant down: compliance score 0.00 is under 0.50, but")
            && lines[0].contains("could not be detected (up to 1.00 if they passed)"),
        "{lines:?}"
    );
    // The healthy tenant's high-risk failures are a breach, which wins over `down`.
    let out = run(&[
        "--fail-on",
        "failed_high_risk,could_not_be_detected",
        "--output",
        "junit",
    ])
    .await
    .unwrap();
    assert_eq!(code(&out), GATE_BREACH);
    let lines = gate_lines(&out);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("postured: tenant healthy: ")
                && l.contains(" failed_high_risk: msgraph.ca.legacy_auth_blocked")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("postured: tenant down: ")
                && l.contains(" could_not_be_detected: ")),
        "{lines:?}"
    );
    // `down`'s test cases are errors, not failures.
    let xml = String::from_utf8(out.stdout.clone()).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let down = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite") && n.attribute("name") == Some("down"))
        .expect("down's suite");
    assert_eq!(down.attribute("failures"), Some("0"));
    assert_ne!(down.attribute("errors"), Some("0"));

    // The secret was sent to the identity provider, which echoed it; it reaches no line and
    // no output.
    let sent = graph.received_requests().await.unwrap_or_default();
    assert!(
        sent.iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains(SECRET)),
        "the client secret was used"
    );
    for args in [
        &["--fail-under", "0.9", "--output", "junit"][..],
        &["--fail-under", "0.9", "--output", "sarif"][..],
        &["--fail-on", "could_not_be_detected", "--output", "json"][..],
    ] {
        let out = run(args).await.unwrap();
        assert!(
            !out.stdout.is_empty() && !gate_lines(&out).is_empty(),
            "{args:?}"
        );
        for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(
                !String::from_utf8_lossy(bytes).contains(SECRET),
                "{args:?} {name} holds the secret"
            );
        }
    }
}
