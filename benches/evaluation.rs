//! Criterion benchmark of the pure evaluation path (issue 12, target 5): one tenant's signals
//! -> test statuses -> points -> its six assessments' rollups and scores, as a poll runs it
//! (`Evaluator::evaluate_actions_of`, then `ModelRuntime::assess`), with no IO.
//!
//! The signals are the demo tenant's (the official Graph examples of `config/demo/msgraph`,
//! replayed once and normalised by the connector); the tenant has the default assessment and
//! the five framework assessments (ISO 27001, NIST 800-53, NIST CSF, GDPR, HIPAA), as in the
//! issue and the fleet benchmark. Three cases: the tenant as configured; the same with ten
//! `parent` manual records (ISO operational and documentation actions tested through a
//! technical one, which the scoring plan serves since they no longer fall back); and the same
//! with two assessments sharing an id, which the plan leaves to the full model (what a
//! fallback costs, as a parent record did before).
//!
//!   cargo bench --bench evaluation            # target: >= 5,000 evaluations/s per core

use std::hint::black_box;

use chrono::Utc;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use postured::app::model::{Actor, ModelRuntime, ModelSnapshot};
use postured::config::Config;
use postured::evaluation::{EvaluationInput, Evaluator};
use postured::metrics::Metrics;
use postured::model::report::TestingSource;
use postured::model::template::ImplementationType;
use postured::model::{InstanceScope, ManualUpdate};
use postured::signals::SignalBatch;
use postured_connectors::msgraph::{MsGraphConfig, MsGraphConnector, signals};

const TENANT: &str = "bench";

fn config() -> Config {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/config/demo/msgraph");
    let mut text = format!(
        "[store]\nurl = \"sqlite::memory:\"\n[[tenants]]\nid = \"{TENANT}\"\n  [[tenants.connectors]]\n  \
         kind = \"msgraph\"\n  schedule = \"0 0 * * * *\"\n  replay_dir = \"{dir}\"\n"
    );
    for template in [
        "iso-27001-2022",
        "nist-800-53-r5",
        "nist-csf-2.0",
        "gdpr",
        "hipaa-security-rule",
    ] {
        text.push_str(&format!(
            "[[assessments]]\nid = \"{TENANT}-{template}\"\ntenant = \"{TENANT}\"\ntemplate = \"{template}\"\n"
        ));
    }
    Config::parse(&text, &[], &|_| None).unwrap_or_else(|p| panic!("{p:?}"))
}

/// The demo tenant's signals, as one poll normalises them.
fn demo_signals() -> SignalBatch {
    postured::http::install_crypto_provider();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/config/demo/msgraph");
    let connector =
        MsGraphConnector::new(MsGraphConfig::replay(TENANT, dir), reqwest::Client::new())
            .expect("replay connector");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let snapshot = rt.block_on(connector.snapshot());
    assert!(snapshot.errors().is_empty(), "{:?}", snapshot.errors());
    let now = Utc::now();
    SignalBatch::from_snapshot(
        signals::normalise(&snapshot, &Default::default(), now),
        now + chrono::Duration::hours(1),
    )
}

/// Ten `parent` records: ISO operational and documentation actions (group `default`) tested
/// through the tenant's MFA action, saved as `postured action set` saves them.
fn with_parent_records(model: &ModelRuntime) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = postured::store::open_store("sqlite::memory:", 1)
            .await
            .expect("store");
        store.migrate().await.expect("migrate");
        let registry = model.registry();
        let iso = registry.get("iso-27001-2022").expect("ISO template");
        let actions = iso
            .actions
            .iter()
            .filter(|a| a.implementation_type != ImplementationType::Technical)
            .take(10);
        let actor = Actor {
            subject: "bench".into(),
            request_id: None,
        };
        for action in actions {
            let update = ManualUpdate {
                testing_source: Some(TestingSource::Parent),
                parent: Some("msgraph.mfa.all_users".into()),
                ..ManualUpdate::default()
            };
            let scope = InstanceScope::Group("default".into());
            model
                .apply_action_set(&*store, scope, &action.id, update, &actor, Utc::now())
                .await
                .expect("saved");
        }
    });
    assert_eq!(model.manual().len(), 10);
}

/// How many assessments the plan left to the full model.
fn fallbacks(metrics: &Metrics) -> u64 {
    metrics
        .registry()
        .gather()
        .iter()
        .filter(|f| f.name() == "postured_scoring_plan_fallbacks_total")
        .flat_map(|f| f.get_metric())
        .map(|m| m.get_counter().get_value() as u64)
        .sum()
}

/// One poll's evaluation of the tenant (what each iteration measures).
fn assess_once(
    evaluator: &Evaluator,
    model: &ModelRuntime,
    snapshot: &ModelSnapshot,
    batch: &SignalBatch,
    metrics: &Metrics,
) -> impl Sized {
    let scopes = ["msgraph"];
    let now = Utc::now();
    let actions = evaluator.evaluate_actions_of(
        &EvaluationInput {
            tenant: TENANT,
            now,
            signals: &batch.signals,
            gaps: &batch.gaps,
        },
        &|k| scopes.contains(&k),
    );
    let (evaluation, assessments) = model.assess(snapshot, TENANT, now, actions, metrics);
    assert_eq!(assessments.len(), 6);
    (evaluation, assessments)
}

fn evaluation(c: &mut Criterion) {
    let cfg = config();
    let evaluator = postured::assembly::evaluator(&cfg).expect("catalog");
    let (mut model, problems) = ModelRuntime::new(&cfg, &evaluator);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(model.assessments_of(TENANT).count(), 6);
    let batch = demo_signals();
    let metrics = Metrics::new(false);
    // Whether the full model scored the tenant (one evaluation, outside the measurement).
    let fell_back = |model: &ModelRuntime, snapshot: &ModelSnapshot| {
        let before = fallbacks(&metrics);
        black_box(assess_once(&evaluator, model, snapshot, &batch, &metrics));
        fallbacks(&metrics) > before
    };
    let mut group = c.benchmark_group("evaluation");
    group.throughput(Throughput::Elements(1));

    let snapshot = model.snapshot();
    assert!(!fell_back(&model, &snapshot));
    group.bench_function("one tenant, six assessments", |b| {
        b.iter(|| black_box(assess_once(&evaluator, &model, &snapshot, &batch, &metrics)))
    });

    with_parent_records(&model);
    let snapshot = model.snapshot();
    assert!(
        !fell_back(&model, &snapshot),
        "the plan serves parent records"
    );
    group.bench_function("one tenant, six assessments, ten parent records", |b| {
        b.iter(|| black_box(assess_once(&evaluator, &model, &snapshot, &batch, &metrics)))
    });

    let first = model.assessments[0].id.clone();
    model.assessments[1].id = first;
    assert!(fell_back(&model, &snapshot), "two assessments with one id");
    group.bench_function(
        "one tenant, six assessments, ten parent records, full model (a plan fallback)",
        |b| b.iter(|| black_box(assess_once(&evaluator, &model, &snapshot, &batch, &metrics))),
    );
    group.finish();
}

criterion_group!(benches, evaluation);
criterion_main!(benches);
