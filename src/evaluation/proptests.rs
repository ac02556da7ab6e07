//! Property tests of the evaluator (issue 8 item 3): arbitrary signal sets — any keys, any
//! values including NaN, infinities and wrong types, fresh or expired, with or without
//! collection gaps — never panic the evaluator, and every score it gives is a ratio in
//! [0, 1] with achieved points within the possible ones.

use chrono::Duration;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::testutil::now;
use super::{EvaluationInput, Evaluator, ScoreSummary};
use crate::signals::{Signal, SignalGap, SignalValue};

/// The signal keys the built-in catalog's rules name (every `msgraph.` word of its file).
fn catalog_keys() -> Vec<String> {
    let text = include_str!("../../config/catalog/msgraph.toml");
    let mut keys: Vec<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
        .filter(|w| w.starts_with("msgraph.") && !w.ends_with('.'))
        .map(str::to_owned)
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

fn value() -> impl Strategy<Value = SignalValue> {
    prop_oneof![
        any::<bool>().prop_map(SignalValue::Bool),
        prop_oneof![
            1 => Just(f64::NAN),
            1 => Just(f64::INFINITY),
            1 => Just(f64::NEG_INFINITY),
            1 => Just(0.0),
            1 => Just(-0.0),
            6 => 0.0..=1.0f64,
            4 => 0.0..100.0f64,
            1 => -1e6..1e6f64,
            1 => any::<f64>(),
        ]
        .prop_map(SignalValue::Number),
        ".{0,12}".prop_map(SignalValue::Text),
    ]
}

fn key(known: Vec<String>) -> impl Strategy<Value = String> {
    let field = prop::sample::select(vec![
        "score",
        "max_score",
        "title",
        "category",
        "state",
        "deprecated",
    ]);
    prop_oneof![
        4 => prop::sample::select(known),
        // Secure Score control items of the generated family.
        3 => ("[A-Za-z]{1,4}", field)
            .prop_map(|(item, f)| format!("msgraph.securescore.controls.{item}.{f}")),
        1 => "[a-z.]{0,24}",
    ]
}

fn signal(known: Vec<String>) -> impl Strategy<Value = Signal> {
    (key(known), value(), -120i64..120, 0i64..240).prop_map(|(key, value, expires, age)| Signal {
        key: key.into(),
        value,
        observed_at: now() - Duration::minutes(age),
        expires_at: now() + Duration::minutes(expires),
    })
}

fn gap() -> impl Strategy<Value = SignalGap> {
    (
        prop::sample::select(vec![
            "msgraph.",
            "msgraph.mfa.",
            "msgraph.securescore.",
            "msgraph.ca.",
            "other.",
            "",
        ]),
        prop::sample::select(vec!["forbidden", "throttled", "timeout", "too_large", "?"]),
    )
        .prop_map(|(prefix, kind)| SignalGap {
            prefix: prefix.to_owned(),
            kind: kind.to_owned(),
            reason: "r".to_owned(),
        })
}

fn check(s: &ScoreSummary, what: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        s.ratio.is_finite() && (0.0..=1.0).contains(&s.ratio),
        "{what}: ratio {}",
        s.ratio
    );
    prop_assert!(
        s.points_achieved >= 0.0 && s.points_possible >= 0.0,
        "{what}: {s:?}"
    );
    prop_assert!(
        s.points_achieved <= s.points_possible + 1e-9,
        "{what}: {s:?}"
    );
    Ok(())
}

#[test]
fn arbitrary_signal_sets_never_panic_and_give_ratios_in_0_1() {
    let evaluator = Evaluator::builtin().expect("the built-in catalog compiles");
    let known = catalog_keys();
    assert!(known.len() > 20, "{known:?}");
    let mut runner = TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    });
    let input = (
        prop::collection::vec(signal(known), 0..40),
        prop::collection::vec(gap(), 0..3),
    );
    runner
        .run(&input, |(signals, gaps)| {
            let e = evaluator.evaluate(&EvaluationInput {
                tenant: "t",
                now: now(),
                signals: &signals,
                gaps: &gaps,
            });
            check(&e.score, "tenant")?;
            for (category, s) in &e.categories {
                check(s, category)?;
            }
            for a in &e.actions {
                prop_assert!(
                    a.credit.is_finite() && (0.0..=1.0).contains(&a.credit),
                    "{}: credit {}",
                    a.action_id,
                    a.credit
                );
                prop_assert!(
                    a.points_achieved >= 0.0 && a.points_achieved <= a.points_possible + 1e-9,
                    "{}: {} of {}",
                    a.action_id,
                    a.points_achieved,
                    a.points_possible
                );
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}
