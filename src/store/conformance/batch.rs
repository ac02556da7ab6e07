//! Conformance check of the multi-row writes of a poll (`batch.rs`): a poll with more rows of
//! each kind than one statement carries writes every one of them, in order, and a second such
//! poll updates every stored row (the `ON CONFLICT` path across chunks).
//!
//! Every check returns a [`ConformanceFailure`] naming what differed instead of panicking.

use super::polls::{action, at, diff, evaluation, signal};
use super::{Check, CheckResult, ConformanceFailure};
use crate::evaluation::TestStatus;
use crate::model::InstanceScope;
use crate::signals::{Signal, SignalValue};
use crate::store::batch::rows_per_statement;
use crate::store::{AutomaticEvidence, PollOutcome, PollRecord, Store};

/// Every multi-row check, in a stable order.
pub const BATCH_CHECKS: &[Check] = &[Check {
    name: "a_poll_larger_than_one_statement_writes_every_row",
    run: |store| Box::pin(a_poll_larger_than_one_statement_writes_every_row(store)),
}];

/// More signals than one statement of the widest signal table's rows carries (history rows:
/// 4 values each), and more actions (with a transition and automatic evidence each) than one
/// statement of action states, transitions or evidence rows (10 to 14 values each) carries;
/// every second action shares its evidence document with the one before (one blob for both,
/// inside one statement). Then the same poll again with every value and status changed.
pub async fn a_poll_larger_than_one_statement_writes_every_row(store: &dyn Store) -> CheckResult {
    let tenant = "conformance-batch";
    let signals_n = rows_per_statement(4) + 7;
    let actions_n = rows_per_statement(10) + 5;
    for (minute, flag, status) in [
        (0, true, TestStatus::Passed),
        (5, false, TestStatus::FailedHighRisk),
    ] {
        let signals: Vec<Signal> = (0..signals_n)
            .map(|i| signal(&format!("msgraph.s{i:05}"), SignalValue::Bool(flag), minute))
            .collect();
        let credit = if flag { 1.0 } else { 0.0 };
        let actions = (0..actions_n)
            .map(|i| action(&format!("a{i:05}"), status, credit, 1))
            .collect();
        let eval = evaluation(tenant, minute, actions);
        let previous = store.load_tenant_state(tenant).await?;
        let transitions = diff(&previous.actions, &eval);
        let evidence: Vec<AutomaticEvidence> = transitions
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let content = format!("{{\"minute\":{minute},\"pair\":{}}}", i / 2).into_bytes();
                AutomaticEvidence {
                    action_id: t.action_id.clone(),
                    sha256: crate::model::evidence::sha256_hex(&content),
                    content,
                }
            })
            .collect();
        store
            .record_poll(&PollRecord {
                tenant,
                connector: "msgraph",
                started_at: at(minute),
                finished_at: at(minute),
                outcome: PollOutcome::Success,
                signals: &signals,
                gaps: &[],
                evaluation: &eval,
                transitions: &transitions,
                assessments: &[],
                alerts: Default::default(),
                evidence: &evidence,
                after_start: false,
            })
            .await?;

        let state = store.load_tenant_state(tenant).await?;
        let stored_signals: Vec<_> = state
            .signals
            .iter()
            .map(|s| (&*s.key, &s.value, s.observed_at))
            .collect();
        let expected: Vec<_> = signals
            .iter()
            .map(|s| (&*s.key, &s.value, s.observed_at))
            .collect();
        if stored_signals != expected {
            return Err(ConformanceFailure(format!(
                "minute {minute}: {} signals stored of {signals_n}, or not as written",
                stored_signals.len()
            )));
        }
        let statuses = state
            .actions
            .values()
            .filter(|a| a.test_status == status && a.since == at(minute))
            .count();
        if state.actions.len() != actions_n || statuses != actions_n {
            return Err(ConformanceFailure(format!(
                "minute {minute}: {} actions stored, {statuses} of them {} since the poll; \
                expected {actions_n}",
                state.actions.len(),
                status.as_str()
            )));
        }
        let history = store.signal_history(tenant, None, None).await?;
        let rounds = if minute == 0 { 1 } else { 2 };
        if history.len() != signals_n * rounds {
            return Err(ConformanceFailure(format!(
                "minute {minute}: {} history rows, expected {}",
                history.len(),
                signals_n * rounds
            )));
        }
        let stored = store.transitions(tenant, None, Some(at(minute))).await?;
        let stored: Vec<_> = stored
            .iter()
            .map(|r| {
                (
                    r.transition.action_id.as_str(),
                    r.evidence_sha256.as_deref(),
                )
            })
            .collect();
        let given: Vec<_> = evidence
            .iter()
            .map(|e| (e.action_id.as_str(), Some(e.sha256.as_str())))
            .collect();
        if stored != given {
            return Err(ConformanceFailure(format!(
                "minute {minute}: {} transitions stored of {}, or not in the order given \
                with their evidence addresses",
                stored.len(),
                given.len()
            )));
        }
        for e in [&evidence[0], &evidence[1], &evidence[actions_n - 1]] {
            let blob = store.evidence_blob(&e.sha256).await?;
            if blob.and_then(|b| b.content).as_deref() != Some(e.content.as_slice()) {
                return Err(ConformanceFailure(format!(
                    "minute {minute}: the blob of {} is not stored",
                    e.action_id
                )));
            }
            let scope = InstanceScope::Tenant(tenant.to_string());
            let rows = store.evidence_of(&scope, &e.action_id).await?;
            if rows.len() != rounds
                || rows.last().and_then(|r| r.sha256.as_ref()) != Some(&e.sha256)
            {
                return Err(ConformanceFailure(format!(
                    "minute {minute}: evidence rows of {}: {rows:?}",
                    e.action_id
                )));
            }
        }
    }
    Ok(())
}
