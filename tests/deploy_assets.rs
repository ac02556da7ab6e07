//! The shipped operations assets in `deploy/` (see deploy/README.md):
//!
//! - the Prometheus rules pass `promtool check rules` and their unit tests
//!   (`promtool test rules`), and every Grafana dashboard query parses as PromQL;
//! - every `postured_*` metric the rules and the dashboard reference is one the daemon exports
//!   (`postured::metrics::Metrics`, every family driven so it renders), and every recording
//!   rule they reference is defined, with a `level:postured_metric:operations` name.
//!
//! - the packaging (`packaging/`): the Kubernetes ConfigMap's configuration is valid, and the
//!   systemd unit and the Debian package metadata agree (`packaging/check.sh` builds,
//!   installs and verifies the package itself).
//!
//! promtool comes from the Debian package `prometheus` (scripts/test.sh installs it); without
//! it the promtool tests print a note and pass, unless POSTURED_REQUIRE_TEST_SERVERS is set.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use postured::evaluation::{
    ActionResult, ImplementationStatus, ScoreSummary, TenantEvaluation, TestStatus,
};
use postured::metrics::Metrics;
use postured::model::plan::AssessmentSummary;
use postured::model::report::{AssessmentReport, AssessmentStatus, ControlReport, ControlStatus};
use postured::store::PollOutcome;

const RULES: &str = "deploy/prometheus/postured.rules.yml";
const RULE_TESTS: &str = "deploy/prometheus/postured.rules.test.yml";
const DASHBOARD: &str = "deploy/grafana/postured-dashboard.json";

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_path(relative))
        .unwrap_or_else(|e| panic!("reading {relative}: {e}"))
}

/// Runs `promtool ARGS` in the repository root; `None` (after a note) when promtool is not
/// installed and not required.
fn promtool(args: &[&str]) -> Option<std::process::Output> {
    match Command::new("promtool")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
    {
        Ok(out) => Some(out),
        Err(e) => {
            assert!(
                std::env::var_os("POSTURED_REQUIRE_TEST_SERVERS").is_none(),
                "promtool is required (scripts/test.sh installs it): {e}"
            );
            eprintln!(
                "skipped: promtool not installed ({e}); `promtool {}`",
                args.join(" ")
            );
            None
        }
    }
}

fn assert_success(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rules_pass_promtool_check_and_unit_tests() {
    let Some(out) = promtool(&["check", "rules", RULES]) else {
        return;
    };
    assert_success(&out, "promtool check rules");
    let Some(out) = promtool(&["test", "rules", RULE_TESTS]) else {
        return;
    };
    assert_success(&out, "promtool test rules");
}

/// The `expr` of every target of every panel, and the query of every query variable.
fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    let panels = dashboard["panels"].as_array().expect("dashboard panels");
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("?");
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("panel {title:?}: a target without expr"));
            queries.push((format!("panel {title:?}"), expr.to_owned()));
        }
    }
    let variables = dashboard["templating"]["list"].as_array();
    for var in variables.into_iter().flatten() {
        if var["type"] == "query" {
            let q = &var["query"];
            let q = q
                .as_str()
                .or_else(|| q["query"].as_str())
                .expect("variable query");
            queries.push((format!("variable {}", var["name"]), q.to_owned()));
        }
    }
    queries
}

/// Grafana's template variables replaced by values PromQL accepts: `$tenant` and
/// `$assessment` by the regular expressions given.
fn substitute_grafana_variables(query: &str, tenant: &str, assessment: &str) -> String {
    query
        .replace("$__rate_interval", "1m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h")
        .replace("$tenant", tenant)
        .replace("$assessment", assessment)
}

/// `label_values(SELECTOR, LABEL)` is Grafana's, not PromQL: its selector is what Prometheus
/// evaluates.
fn promql_of(query: &str, tenant: &str, assessment: &str) -> String {
    let q = substitute_grafana_variables(query, tenant, assessment);
    match q.strip_prefix("label_values(") {
        Some(rest) => {
            let selector = rest
                .rsplit_once(',')
                .expect("label_values(selector, label)")
                .0;
            selector.trim().to_owned()
        }
        None => q,
    }
}

#[test]
fn dashboard_queries_are_valid_promql() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read(DASHBOARD)).expect("dashboard is JSON");
    let queries = dashboard_queries(&dashboard);
    assert!(queries.len() > 10, "too few queries found: {queries:?}");
    // promtool parses every expression of a rules file: one recording rule per query.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (place, query)) in queries.iter().enumerate() {
        let expr =
            serde_json::to_string(&promql_of(query, ".*", ".*")).expect("JSON string is YAML");
        rules.push_str(&format!(
            "      # {place}\n      - record: dashboard:query_{i}:check\n        expr: {expr}\n"
        ));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("dashboard-queries.yml");
    std::fs::write(&file, &rules).expect("write rules");
    let Some(out) = promtool(&["check", "rules", file.to_str().expect("UTF-8 path")]) else {
        return;
    };
    if !out.status.success() {
        eprintln!("{rules}");
    }
    assert_success(
        &out,
        "promtool check rules on the dashboard's queries (the rules file is above)",
    );
}

/// promtool input series from an exposition: gauges keep their value, counters and histogram
/// series grow by 1 a minute (so `increase()` and `rate()` see activity).
fn promtool_input_series(exposition: &str) -> String {
    let families = exported_families(exposition);
    let mut series = String::new();
    for line in exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (selector, value) = line.rsplit_once(' ').expect("sample line: series value");
        let name = selector.split('{').next().unwrap_or(selector);
        let growing = families.get(name).is_some_and(|kind| kind == "counter")
            || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
                name.strip_suffix(suffix)
                    .and_then(|base| families.get(base))
                    .is_some_and(|kind| kind == "histogram")
            });
        let values = if growing {
            "0+1x180".to_owned()
        } else {
            format!("{value}x180")
        };
        let selector = serde_json::to_string(selector).expect("JSON string is YAML");
        series.push_str(&format!(
            "      - series: {selector}\n        values: '{values}'\n"
        ));
    }
    series
}

#[test]
fn dashboard_queries_return_data_from_the_daemons_metrics() {
    // Catches queries that name the right metric but select nothing: a label the family does
    // not have (the poll-duration histogram has no tenant), a misspelt label value, a join on
    // the wrong labels.
    let dashboard: serde_json::Value =
        serde_json::from_str(&read(DASHBOARD)).expect("dashboard is JSON");
    let mut tests =
        String::from("evaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n");
    tests.push_str(&promtool_input_series(&every_family_driven().render()));
    tests.push_str("    promql_expr_test:\n");
    for (place, query) in dashboard_queries(&dashboard) {
        // One selected tenant and assessment (not "All" = `.*`, which also matches series
        // without the label).
        let expr = format!(
            "count({}) > bool 0",
            promql_of(&query, DRIVEN_TENANT, DRIVEN_ASSESSMENT)
        );
        let expr = serde_json::to_string(&expr).expect("JSON string is YAML");
        tests.push_str(&format!(
            "      # {place}\n      - expr: {expr}\n        eval_time: 2h\n        \
             exp_samples: [{{labels: '{{}}', value: 1}}]\n"
        ));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("dashboard-data.test.yml");
    std::fs::write(&file, &tests).expect("write tests");
    let Some(out) = promtool(&["test", "rules", file.to_str().expect("UTF-8 path")]) else {
        return;
    };
    if !out.status.success() {
        eprintln!("{tests}");
    }
    assert_success(
        &out,
        "dashboard queries on the daemon's metrics (an empty result fails; the test file is above)",
    );
}

/// Maximal runs of `[A-Za-z0-9_:]`, without trailing colons.
fn identifiers(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .map(|t| t.trim_end_matches(':'))
        .filter(|t| !t.is_empty())
}

/// `postured_*` metric names, and recording-rule names (`level:postured_metric:operations`),
/// referenced in a text.
fn references(text: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut metrics = BTreeSet::new();
    let mut recorded = BTreeSet::new();
    for id in identifiers(text) {
        if id.contains(':') {
            if id.split(':').any(|part| part.starts_with("postured_")) {
                recorded.insert(id.to_owned());
            }
        } else if id.starts_with("postured_") && id != "postured_" {
            // (`postured_` alone is the prefix in prose: "postured_* metrics".)
            metrics.insert(id.to_owned());
        }
    }
    (metrics, recorded)
}

/// Names defined by `record:` in the rules file.
fn recording_rules(rules: &str) -> BTreeSet<String> {
    rules
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- record:"))
        .map(|n| n.trim().to_owned())
        .collect()
}

fn action(id: &str, category: &str, status: TestStatus, achieved: f64) -> ActionResult {
    ActionResult {
        action_id: id.into(),
        title: id.into(),
        category: category.into(),
        solution: "Microsoft Entra ID".into(),
        implementation_status: ImplementationStatus::Implemented,
        test_status: status,
        credit: achieved / 27.0,
        points: 27,
        points_achieved: achieved,
        points_possible: 27.0,
        testing_logic: "true".into(),
        reason: None,
        cause: None,
        signals: vec![],
    }
}

fn summary(achieved: f64, possible: f64) -> ScoreSummary {
    ScoreSummary {
        points_achieved: achieved,
        points_possible: possible,
        ratio: achieved / possible,
    }
}

/// The tenant and assessment whose series `every_family_driven` exports.
const DRIVEN_TENANT: &str = "t1";
const DRIVEN_ASSESSMENT: &str = "a1";

/// A daemon's metrics with every family holding at least one sample.
fn every_family_driven() -> Metrics {
    let m = Metrics::new(true);
    m.observe_evaluation(&TenantEvaluation {
        tenant: DRIVEN_TENANT.into(),
        evaluated_at: chrono::Utc::now(),
        actions: vec![
            action(
                "msgraph.mfa.all_users",
                "Identity",
                TestStatus::Passed,
                27.0,
            ),
            action(
                "msgraph.legacy_auth",
                "Identity",
                TestStatus::FailedHighRisk,
                0.0,
            ),
        ],
        score: summary(27.0, 54.0),
        categories: vec![("Identity".into(), summary(27.0, 54.0))],
    });
    m.observe_poll(
        "t1",
        "msgraph",
        PollOutcome::Partial,
        &["forbidden"],
        0.3,
        1.0e9,
    );
    {
        let _in_flight = m.poll_started();
    }
    m.observe_store_error("write");
    m.observe_regression("t1", "msgraph.legacy_auth");
    m.observe_recovery("t1", "msgraph.legacy_auth");
    m.observe_alert_delivery("webhook", "success");
    m.set_outbox_pending(1);
    m.set_signal_stale("t1", "msgraph", true);
    m.observe_assessment_summaries(
        DRIVEN_TENANT,
        &[AssessmentSummary::of(&AssessmentReport {
            id: DRIVEN_ASSESSMENT.into(),
            tenant: DRIVEN_TENANT.into(),
            group: "default".into(),
            template_id: "cis-m365".into(),
            template_title: "CIS Microsoft 365".into(),
            certification: "CIS".into(),
            generated_at: chrono::Utc::now(),
            score: summary(27.0, 54.0),
            status: AssessmentStatus::Incomplete,
            progress: 0.5,
            automated_points_ratio: 0.0,
            controls: ["1.1", "1.2"]
                .iter()
                .zip([ControlStatus::Passed, ControlStatus::Failed])
                .map(|(id, status)| ControlReport {
                    id: (*id).into(),
                    family: "Identity".into(),
                    title: (*id).into(),
                    description: String::new(),
                    status,
                    actions: vec![],
                })
                .collect(),
            actions: vec![],
        })],
    );
    m
}

/// Family name -> type, from the `# TYPE` lines of an exposition.
fn exported_families(exposition: &str) -> BTreeMap<String, String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, kind)| (name.to_owned(), kind.trim().to_owned()))
        .collect()
}

/// Whether `name` is an exported family or a histogram's `_bucket`/`_sum`/`_count` series.
fn is_exported(name: &str, families: &BTreeMap<String, String>) -> bool {
    if families.contains_key(name) {
        return true;
    }
    ["_bucket", "_sum", "_count"].iter().any(|suffix| {
        name.strip_suffix(suffix)
            .and_then(|base| families.get(base))
            .is_some_and(|kind| kind == "histogram" || kind == "summary")
    })
}

#[test]
fn every_referenced_metric_is_exported() {
    let exposition = every_family_driven().render();
    let families = exported_families(&exposition);
    assert!(
        families.contains_key("postured_build_info"),
        "no families parsed from:\n{exposition}"
    );

    let rules = read(RULES);
    let defined = recording_rules(&rules);
    let mut referenced: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let mut problems = Vec::new();
    for (file, text) in [(RULES, rules.clone()), (DASHBOARD, read(DASHBOARD))] {
        let (metrics, recorded) = references(&text);
        for name in metrics {
            referenced.entry(name).or_default().insert(file);
        }
        for name in recorded {
            if !defined.contains(&name) {
                problems.push(format!(
                    "{file}: recording rule {name} is not defined in {RULES}"
                ));
            }
        }
    }
    for name in &defined {
        let parts: Vec<&str> = name.split(':').collect();
        let well_formed = parts.len() == 3
            && parts.iter().all(|p| !p.is_empty())
            && parts[1].starts_with("postured_");
        if !well_formed {
            problems.push(format!(
                "{RULES}: recording rule {name} is not named level:postured_metric:operations"
            ));
        }
    }
    for (name, files) in &referenced {
        if !is_exported(name, &families) {
            problems.push(format!(
                "{name} (referenced in {}) is not exported by postured::metrics::Metrics",
                files.iter().copied().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n\nexported families: {:?}",
        problems.join("\n"),
        families.keys().collect::<Vec<_>>()
    );

    let unused: Vec<&String> = families
        .keys()
        .filter(|f| {
            !["", "_bucket", "_sum", "_count"]
                .iter()
                .any(|suffix| referenced.contains_key(&format!("{f}{suffix}")))
        })
        .collect();
    if !unused.is_empty() {
        eprintln!("note: exported families not used by the rules or the dashboard: {unused:?}");
    }
}

#[test]
fn reference_extraction_finds_names_and_recording_rules() {
    let (metrics, recorded) = references(
        "sum by (le) (rate(postured_connector_poll_duration_seconds_bucket[5m])) \
         / tenant:postured_compliance_points_missing:sum\n- record: tenant:postured_x:sum\n\
         legendFormat: \"{{tenant}}\", uid: postured-overview, title: \"postured: posture\"",
    );
    assert_eq!(
        metrics.into_iter().collect::<Vec<_>>(),
        ["postured_connector_poll_duration_seconds_bucket"]
    );
    assert_eq!(
        recorded.into_iter().collect::<Vec<_>>(),
        [
            "tenant:postured_compliance_points_missing:sum",
            "tenant:postured_x:sum"
        ]
    );
    let families = BTreeMap::from([(
        "postured_connector_poll_duration_seconds".to_owned(),
        "histogram".to_owned(),
    )]);
    assert!(is_exported(
        "postured_connector_poll_duration_seconds_bucket",
        &families
    ));
    assert!(!is_exported(
        "postured_connector_poll_duration_seconds_total",
        &families
    ));
}

/// The configuration the Kubernetes ConfigMap ships (`packaging/kubernetes/configmap.yaml`) is
/// valid for this build: every key known, the secret files named where the Deployment mounts
/// them (not read here: `Secrets::NONE`).
#[test]
fn the_kubernetes_configmap_holds_a_valid_configuration() {
    let manifest = read("packaging/kubernetes/configmap.yaml");
    let (_, block) = manifest
        .split_once("  postured.toml: |\n")
        .expect("the ConfigMap's postured.toml");
    let text: String = block
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    let cfg = postured::config::Config::parse_resolving(
        &text,
        &[],
        &|_| None,
        &postured::registry::Registry::builtin(),
        None,
        postured::config::Secrets::NONE,
    )
    .unwrap_or_else(|p| panic!("{p:#?}\n{text}"));
    assert_eq!(cfg.tenants.len(), 1);
    assert_eq!(cfg.server.listen, "0.0.0.0:9898");
    let deployment = read("packaging/kubernetes/deployment.yaml");
    assert!(deployment.contains("mountPath: /etc/postured/secrets"));
    assert!(text.contains("/etc/postured/secrets/contoso-client-secret"));
}

/// The systemd unit starts the daemon the way the CLI defines it, and the Debian package
/// installs what the unit and the docs name.
#[test]
fn the_systemd_unit_and_the_package_agree() {
    let unit = read("packaging/debian/postured.service");
    assert!(unit.contains("ExecStart=/usr/bin/postured run --config /etc/postured/postured.toml"));
    assert!(unit.contains("Type=notify"));
    assert!(unit.contains("ExecReload=/bin/kill -HUP $MAINPID"));
    let cargo = read("Cargo.toml");
    for installed in [
        "\"target/release/postured\", \"usr/bin/\"",
        "\"config/example.toml\", \"etc/postured/postured.toml\"",
        "conf-files = [\"/etc/postured/postured.toml\"]",
    ] {
        assert!(cargo.contains(installed), "{installed}");
    }
}
