//! Criterion benchmark of the pure evaluation path (issue 12, target 5): one tenant's signals
//! -> test statuses -> points -> its six assessments' rollups and scores, as a poll runs it
//! (`Evaluator::evaluate_actions_of`, then `ModelRuntime::assess`), with no IO.
//!
//! The signals are the demo tenant's (the official Graph examples of `config/demo/msgraph`,
//! replayed once and normalised by the connector); the tenant has the default assessment and
//! the five framework assessments (ISO 27001, NIST 800-53, NIST CSF, GDPR, HIPAA), as in the
//! issue and the fleet benchmark.
//!
//!   cargo bench --bench evaluation            # target: >= 5,000 evaluations/s per core

use std::hint::black_box;

use chrono::Utc;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use postured::app::model::ModelRuntime;
use postured::config::Config;
use postured::evaluation::EvaluationInput;
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

fn evaluation(c: &mut Criterion) {
    let cfg = config();
    let evaluator = postured::assembly::evaluator(&cfg).expect("catalog");
    let (model, problems) = ModelRuntime::new(&cfg, &evaluator);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(model.assessments_of(TENANT).count(), 6);
    let snapshot = model.snapshot();
    let batch = demo_signals();
    let scopes = ["msgraph"];
    let mut group = c.benchmark_group("evaluation");
    group.throughput(Throughput::Elements(1));
    group.bench_function("one tenant, six assessments", |b| {
        b.iter(|| {
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
            let (evaluation, assessments) = model.assess(&snapshot, TENANT, now, actions);
            assert_eq!(assessments.len(), 6);
            black_box((evaluation, assessments))
        })
    });
    group.finish();
}

criterion_group!(benches, evaluation);
criterion_main!(benches);
