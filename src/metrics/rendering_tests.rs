//! The per-tenant families rendered from prepared state against the registry that exported
//! them before (`Reference`, the former body kept here as the oracle): both texts parsed with
//! `prometheus-parse`, series sets, values, types and HELP texts compared, over several tenants
//! and publishes (with label values that need escaping, vanished actions, categories and
//! assessments, counters), with and without per-action series; and `promtool check metrics`
//! on the new text.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write as _;
use std::process::{Command, Stdio};

use prometheus::{Encoder, GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

use super::Metrics;
use crate::evaluation::{
    ActionResult, ImplementationStatus, ScoreSummary, TenantEvaluation, TestStatus,
};
use crate::model::plan::AssessmentSummary;
use crate::model::report::{AssessmentReport, AssessmentStatus, ControlReport, ControlStatus};

const CONTROL_STATUSES: [(ControlStatus, &str); 5] = [
    (ControlStatus::Passed, "passed"),
    (ControlStatus::Failed, "failed"),
    (ControlStatus::None, "none"),
    (ControlStatus::OutOfScope, "out_of_scope"),
    (ControlStatus::InProgress, "in_progress"),
];

/// The per-tenant families as the registry exported them before (same definitions, same
/// updates and removals).
struct Reference {
    registry: Registry,
    per_action: bool,
    g: HashMap<&'static str, GaugeVec>,
    actions_by_status: IntGaugeVec,
    control_status: IntGaugeVec,
    regressions: IntCounterVec,
    recoveries: IntCounterVec,
    actions: HashMap<String, (BTreeSet<String>, BTreeSet<String>)>,
    assessments: HashMap<String, BTreeSet<String>>,
}

const GAUGES: [(&str, &str, &[&str]); 11] = [
    (
        "postured_assessment_points_achieved",
        "Points achieved over an assessment's de-duplicated action instances.",
        &["tenant", "assessment"],
    ),
    (
        "postured_assessment_points_possible",
        "Points possible over an assessment's action instances (out of scope excluded).",
        &["tenant", "assessment"],
    ),
    (
        "postured_assessment_progress_ratio",
        "Share of an assessment's in-scope controls that passed, in [0, 1].",
        &["tenant", "assessment"],
    ),
    (
        "postured_assessment_automated_points_ratio",
        "Share of an assessment's possible points tested automatically (testing source automatic), in [0, 1].",
        &["tenant", "assessment"],
    ),
    (
        "postured_compliance_score_ratio",
        "Compliance score of a tenant: points achieved / points possible, in [0, 1].",
        &["tenant"],
    ),
    (
        "postured_compliance_points_achieved",
        "Points achieved by a tenant over its de-duplicated improvement actions.",
        &["tenant"],
    ),
    (
        "postured_compliance_points_possible",
        "Points possible for a tenant (out-of-scope actions excluded).",
        &["tenant"],
    ),
    (
        "postured_category_points_achieved",
        "Points achieved by a tenant in one action category.",
        &["tenant", "category"],
    ),
    (
        "postured_category_points_possible",
        "Points possible for a tenant in one action category.",
        &["tenant", "category"],
    ),
    (
        "postured_action_points_achieved",
        "Points achieved by one improvement action of a tenant.",
        &["tenant", "action"],
    ),
    (
        "postured_action_points_possible",
        "Points possible for one improvement action of a tenant (0 when out of scope).",
        &["tenant", "action"],
    ),
];

impl Reference {
    fn new(per_action: bool) -> Self {
        let registry = Registry::new();
        let mut g = HashMap::new();
        for (name, help, labels) in GAUGES {
            let v = GaugeVec::new(Opts::new(name, help), labels).expect("gauge");
            registry.register(Box::new(v.clone())).expect("register");
            g.insert(name, v);
        }
        let int_gauge = |name: &str, help: &str, labels: &[&str]| {
            let v = IntGaugeVec::new(Opts::new(name, help), labels).expect("gauge");
            registry.register(Box::new(v.clone())).expect("register");
            v
        };
        let counter = |name: &str, help: &str| {
            let v =
                IntCounterVec::new(Opts::new(name, help), &["tenant", "action"]).expect("counter");
            registry.register(Box::new(v.clone())).expect("register");
            v
        };
        Reference {
            actions_by_status: int_gauge(
                "postured_actions",
                "Improvement actions of a tenant per test status.",
                &["tenant", "test_status"],
            ),
            control_status: int_gauge(
                "postured_control_status",
                "Controls of an assessment per rollup status (passed, failed, none, out_of_scope, in_progress).",
                &["tenant", "assessment", "status"],
            ),
            regressions: counter(
                "postured_action_regressions_total",
                "Debounced regressions of an improvement action (credit dropped and stayed down).",
            ),
            recoveries: counter(
                "postured_action_recoveries_total",
                "Recoveries of an improvement action after a regression.",
            ),
            registry,
            per_action,
            g,
            actions: HashMap::new(),
            assessments: HashMap::new(),
        }
    }

    fn set(&self, family: &str, labels: &[&str], v: f64) {
        self.g[family].with_label_values(labels).set(v);
    }

    fn observe_evaluation(&mut self, eval: &TenantEvaluation) {
        let t = eval.tenant.as_str();
        self.set("postured_compliance_score_ratio", &[t], eval.score.ratio);
        self.set(
            "postured_compliance_points_achieved",
            &[t],
            eval.score.points_achieved,
        );
        self.set(
            "postured_compliance_points_possible",
            &[t],
            eval.score.points_possible,
        );
        let (mut categories, mut actions) = (BTreeSet::new(), BTreeSet::new());
        for (c, s) in &eval.categories {
            self.set(
                "postured_category_points_achieved",
                &[t, c],
                s.points_achieved,
            );
            self.set(
                "postured_category_points_possible",
                &[t, c],
                s.points_possible,
            );
            categories.insert(c.clone());
        }
        let mut counts: HashMap<TestStatus, i64> = HashMap::new();
        for a in &eval.actions {
            *counts.entry(a.test_status).or_default() += 1;
            if self.per_action {
                let l = [t, a.action_id.as_str()];
                self.set("postured_action_points_achieved", &l, a.points_achieved);
                self.set("postured_action_points_possible", &l, a.points_possible);
                let _ = self.regressions.with_label_values(&l);
                let _ = self.recoveries.with_label_values(&l);
                actions.insert(a.action_id.clone());
            }
        }
        for s in TestStatus::ALL {
            self.actions_by_status
                .with_label_values(&[t, s.as_str()])
                .set(counts.get(&s).copied().unwrap_or(0));
        }
        if let Some((before_c, before_a)) = self.actions.get(t) {
            for gone in before_c.difference(&categories) {
                for f in [
                    "postured_category_points_achieved",
                    "postured_category_points_possible",
                ] {
                    let _ = self.g[f].remove_label_values(&[t, gone]);
                }
            }
            for gone in before_a.difference(&actions) {
                for f in [
                    "postured_action_points_achieved",
                    "postured_action_points_possible",
                ] {
                    let _ = self.g[f].remove_label_values(&[t, gone]);
                }
                let _ = self.regressions.remove_label_values(&[t, gone]);
                let _ = self.recoveries.remove_label_values(&[t, gone]);
            }
        }
        self.actions.insert(t.to_owned(), (categories, actions));
    }

    fn observe_assessments(&mut self, tenant: &str, reports: &[AssessmentReport]) {
        let mut now = BTreeSet::new();
        for r in reports.iter().filter(|r| r.tenant == tenant) {
            let l = [tenant, r.id.as_str()];
            self.set(
                "postured_assessment_points_achieved",
                &l,
                r.score.points_achieved,
            );
            self.set(
                "postured_assessment_points_possible",
                &l,
                r.score.points_possible,
            );
            self.set("postured_assessment_progress_ratio", &l, r.progress);
            self.set(
                "postured_assessment_automated_points_ratio",
                &l,
                r.automated_points_ratio,
            );
            for (status, name) in CONTROL_STATUSES {
                let n = r.controls.iter().filter(|c| c.status == status).count();
                self.control_status
                    .with_label_values(&[tenant, r.id.as_str(), name])
                    .set(i64::try_from(n).expect("small"));
            }
            now.insert(r.id.clone());
        }
        if let Some(before) = self.assessments.get(tenant) {
            for gone in before.difference(&now) {
                for (f, _, _) in &GAUGES[..4] {
                    let _ = self.g[f].remove_label_values(&[tenant, gone]);
                }
                for (_, name) in CONTROL_STATUSES {
                    let _ = self
                        .control_status
                        .remove_label_values(&[tenant, gone, name]);
                }
            }
        }
        self.assessments.insert(tenant.to_owned(), now);
    }
}

fn encode(registry: &Registry) -> String {
    let mut buf = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut buf)
        .expect("encode");
    String::from_utf8(buf).expect("UTF-8")
}

fn action(id: &str, category: &str, status: TestStatus, achieved: f64) -> ActionResult {
    ActionResult {
        action_id: id.into(),
        title: id.into(),
        category: category.into(),
        solution: "Microsoft Entra ID".into(),
        implementation_status: ImplementationStatus::Implemented,
        test_status: status,
        credit: achieved / 9.0,
        points: 9,
        points_achieved: achieved,
        points_possible: 9.0,
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

/// Tenant `t`'s evaluation with actions `a00..a{n}` (and one id needing escapes), statuses and
/// points varied by `seed`; categories `Identity`, `Data` (when `data`) and one needing escapes.
fn evaluation(t: &str, n: usize, seed: usize, data: bool) -> TenantEvaluation {
    let mut actions: Vec<ActionResult> = (0..n)
        .map(|i| {
            let status = TestStatus::ALL[(i + seed) % TestStatus::ALL.len()];
            let achieved = ((i * 7 + seed) % 10) as f64 / 3.0;
            let category = if i % 2 == 0 || !data {
                "Identity"
            } else {
                "Data"
            };
            action(&format!("a{i:02}"), category, status, achieved)
        })
        .collect();
    actions.push(action(
        "act\"x\\y\nz",
        "Cat\"q",
        TestStatus::FailedHighRisk,
        0.0,
    ));
    let mut categories = vec![
        ("Cat\"q".to_owned(), summary(0.0, 9.0)),
        ("Identity".to_owned(), summary(4.5, 27.0 + seed as f64)),
    ];
    if data {
        categories.insert(0, ("Data".to_owned(), summary(1.0 / 3.0, 18.0)));
    }
    TenantEvaluation {
        tenant: t.into(),
        evaluated_at: chrono::DateTime::UNIX_EPOCH,
        actions,
        score: summary(12.25 + seed as f64, 81.0),
        categories,
    }
}

/// What a poll publishes of `tenant`'s reports: their summaries (foreign reports left out, as
/// `ModelRuntime::assess` gives only the tenant's own).
fn summaries(tenant: &str, reports: &[AssessmentReport]) -> Vec<AssessmentSummary> {
    reports
        .iter()
        .filter(|r| r.tenant == tenant)
        .map(AssessmentSummary::of)
        .collect()
}

fn assessment(tenant: &str, id: &str, seed: usize) -> AssessmentReport {
    AssessmentReport {
        id: id.into(),
        tenant: tenant.into(),
        group: "default".into(),
        template_id: "tpl".into(),
        template_title: "Template".into(),
        certification: "Cert".into(),
        generated_at: chrono::DateTime::UNIX_EPOCH,
        score: summary(3.5 + seed as f64, 12.0),
        status: AssessmentStatus::InProgress,
        progress: 0.1 * (seed % 10) as f64,
        automated_points_ratio: 2.0 / 3.0,
        controls: (0..seed % 7)
            .map(|i| ControlReport {
                id: format!("C-{i}"),
                family: "F".into(),
                title: "T".into(),
                description: String::new(),
                status: CONTROL_STATUSES[i % 5].0,
                actions: Vec::new(),
            })
            .collect(),
        actions: Vec::new(),
    }
}

/// Series of a text: `name{labels}` (labels sorted) -> value with its type; and HELP texts.
type Parsed = (BTreeMap<String, String>, BTreeMap<String, String>);

fn parse(text: &str) -> Parsed {
    let scrape =
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parses");
    let mut series = BTreeMap::new();
    for s in &scrape.samples {
        let key = format!("{}{{{}}}", s.metric, s.labels);
        let value = format!("{:?}", s.value);
        assert!(
            series.insert(key.clone(), value).is_none(),
            "series {key} twice"
        );
    }
    (series, scrape.docs.into_iter().collect())
}

/// Every family name in `# TYPE` lines, each once (a family's series contiguous under it).
fn assert_families_once(text: &str) {
    let mut seen = BTreeSet::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().expect("name").to_owned();
            assert!(seen.insert(name.clone()), "family {name} twice");
            current = name;
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().expect("name");
            let family = name
                .strip_suffix("_bucket")
                .or_else(|| name.strip_suffix("_sum"))
                .or_else(|| name.strip_suffix("_count"))
                .filter(|f| *f == current)
                .unwrap_or(name);
            assert_eq!(family, current, "series {line} outside its family");
        }
    }
}

/// Runs the scenario against both and compares; returns the new text.
fn compare(per_action: bool) -> String {
    let m = Metrics::new(per_action);
    let mut old = Reference::new(per_action);
    let weird = "we\"ird\\ten\nant";
    let mut tenants: Vec<String> = (0..25).map(|i| format!("tenant-{i:02}")).collect();
    tenants.push(weird.into());
    // Counted before their first evaluation (as a poll counts before publishing).
    for (t, a, recovery) in [
        ("tenant-01", "a01", false),
        ("tenant-01", "a01", false),
        ("tenant-01", "a01", true),
        ("tenant-02", "a03", false),
        ("tenant-02", "zz-never-evaluated", true),
        (weird, "act\"x\\y\nz", false),
    ] {
        if recovery {
            m.observe_recovery(t, a);
            (old.recoveries.with_label_values(&[t, a])).inc();
        } else {
            m.observe_regression(t, a);
            old.regressions.with_label_values(&[t, a]).inc();
        }
    }
    for (i, t) in tenants.iter().enumerate() {
        let e = evaluation(t, 5 + i % 4, i, true);
        m.observe_evaluation(&e);
        old.observe_evaluation(&e);
        let mut reports: Vec<_> = ["default", "iso-27001-2022", "nist \"csf\""]
            .iter()
            .map(|a| assessment(t, a, i))
            .collect();
        reports.push(assessment("someone-else", "foreign", i));
        m.observe_assessment_summaries(t, &summaries(t, &reports));
        old.observe_assessments(t, &reports);
    }
    // Second publish of some tenants: actions a01, a02 gone (a01 counted), category Data
    // gone, one assessment gone; a third tenant gets no assessments at all.
    for (i, t) in ["tenant-01", "tenant-02", weird].into_iter().enumerate() {
        let mut e = evaluation(t, 6, i + 40, false);
        e.actions
            .retain(|a| a.action_id != "a01" && a.action_id != "a02");
        m.observe_evaluation(&e);
        old.observe_evaluation(&e);
        let reports = [assessment(t, "default", i + 3)];
        m.observe_assessment_summaries(t, &summaries(t, &reports));
        old.observe_assessments(t, &reports);
    }
    m.observe_assessment_summaries("tenant-03", &[]);
    old.observe_assessments("tenant-03", &[]);
    m.observe_regression("tenant-04", "a00");
    old.regressions
        .with_label_values(&["tenant-04", "a00"])
        .inc();

    let new = m.render();
    let before = format!("{}{}", encode(&old.registry), encode(m.registry()));
    assert_families_once(&new);
    let (new_series, new_docs) = parse(&new);
    let (old_series, old_docs) = parse(&before);
    assert_eq!(new_docs, old_docs, "HELP texts");
    let only_new: Vec<_> = new_series
        .iter()
        .filter(|(k, v)| old_series.get(*k) != Some(*v))
        .collect();
    let only_old: Vec<_> = old_series
        .iter()
        .filter(|(k, v)| new_series.get(*k) != Some(*v))
        .collect();
    assert!(
        only_new.is_empty() && only_old.is_empty(),
        "differ: new {only_new:#?}\nbefore {only_old:#?}"
    );
    // The scenario reached what it meant to compare (checked on the text: `prometheus-parse`
    // keeps label values as written, and trims a trailing escaped quote with the closing one).
    let has = |s: &str| new.contains(s);
    assert!(has("tenant=\"we\\\"ird\\\\ten\\nant\""), "escaped tenant");
    assert!(has(
        "postured_control_status{assessment=\"nist \\\"csf\\\"\""
    ));
    // Counters of a vanished action go with it when per-action series are on (as before).
    assert_eq!(
        has("postured_action_regressions_total{action=\"a01\",tenant=\"tenant-01\"}"),
        !per_action
    );
    assert!(has("action=\"zz-never-evaluated\""));
    assert_eq!(has("postured_action_points_achieved{"), per_action);
    assert!(new_series.len() > 1000, "{} series", new_series.len());
    new
}

#[test]
fn chunks_end_at_line_ends_and_make_the_whole_text() {
    let m = Metrics::new(true);
    for i in 0..30 {
        m.observe_evaluation(&evaluation(&format!("tenant-{i:02}"), 8, i, true));
    }
    let whole = m.render();
    let mut chunks = Vec::new();
    m.render_chunks(4096, &mut |c| chunks.push(c));
    assert!(chunks.len() > 3, "{} chunks", chunks.len());
    let (last, full) = chunks.split_last().expect("chunks");
    for c in full {
        assert!(
            c.len() >= 4096 && c.ends_with('\n'),
            "chunk of {} bytes",
            c.len()
        );
    }
    assert!(last.ends_with('\n'));
    assert_eq!(chunks.concat(), whole);
}

#[test]
fn per_tenant_families_render_as_the_registry_did_with_per_action_series() {
    promtool_check(&compare(true));
}

#[test]
fn per_tenant_families_render_as_the_registry_did_without_per_action_series() {
    promtool_check(&compare(false));
}

/// `promtool check metrics` on `text` (skipped with a note when promtool is not installed,
/// unless POSTURED_REQUIRE_TEST_SERVERS is set).
fn promtool_check(text: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if std::env::var_os("POSTURED_REQUIRE_TEST_SERVERS").is_some() => {
            panic!("promtool is required (scripts/test.sh installs it): {e}")
        }
        Err(e) => {
            eprintln!("skipped: promtool not installed ({e}); `promtool check metrics`");
            return;
        }
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
