//! What one `record_poll` must write, computed without SQL and shared by both backends.
//!
//! [`EncodedPoll::new`] validates and encodes a [`PollRecord`] before any transaction opens (so
//! invalid input never half-writes anything). Inside the transaction the backend reads the
//! tenant's stored state once ([`Stored`]) and [`EncodedPoll::plan`] decides which signal values
//! changed (history rows), which action states changed (upserts, with `since`) and whether the
//! score changed (snapshot). The backend then executes the [`Plan`].

use std::collections::{BTreeMap, HashMap};

use super::rows::{self, ActionStateRow};
use super::{PollRecord, StoreError};

/// Scores closer than this are the same score (guards against summation-order noise).
const SCORE_EPSILON: f64 = 1e-9;

/// The poll row.
#[derive(Debug)]
pub(crate) struct EncodedPollRow<'a> {
    pub tenant: &'a str,
    pub connector: &'a str,
    pub started_at: i64,
    pub finished_at: i64,
    pub outcome: &'static str,
    pub error_summary: Option<String>,
}

/// One signal, ready to bind.
#[derive(Debug)]
pub(crate) struct EncodedSignal<'a> {
    pub key: &'a str,
    pub value: String,
    pub observed_at: i64,
    pub expires_at: i64,
}

/// One gap, ready to bind.
#[derive(Debug)]
pub(crate) struct EncodedGap<'a> {
    pub prefix: &'a str,
    pub kind: &'a str,
    pub reason: &'a str,
}

/// One action's full state row, ready to bind (`since` is settled by [`EncodedPoll::plan`]).
#[derive(Debug, Clone)]
pub(crate) struct EncodedAction<'a> {
    pub action_id: &'a str,
    pub test_status: &'static str,
    pub implementation_status: &'static str,
    pub credit: f64,
    pub points: i64,
    pub points_achieved: f64,
    pub points_possible: f64,
    pub since: i64,
    pub updated_at: i64,
    pub reason: Option<&'a str>,
    pub testing_logic: &'a str,
}

/// One transition, ready to bind.
#[derive(Debug)]
pub(crate) struct EncodedTransition<'a> {
    pub action_id: &'a str,
    pub from_status: Option<&'static str>,
    pub to_status: &'static str,
    pub from_credit: Option<f64>,
    pub to_credit: f64,
    pub points_achieved: f64,
    pub points_possible: f64,
    pub reason: Option<&'a str>,
    pub signals: String,
    pub at: i64,
    /// The rule of the action at this evaluation (audit trail).
    pub testing_logic: Option<&'a str>,
}

/// One score snapshot, ready to bind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct EncodedScore {
    pub at: i64,
    pub points_achieved: f64,
    pub points_possible: f64,
    pub ratio: f64,
}

/// A validated, encoded [`PollRecord`]. Signals are de-duplicated by key and gaps by prefix
/// (last wins), both sorted, so batches touch rows in a stable order.
#[derive(Debug)]
pub(crate) struct EncodedPoll<'a> {
    pub poll: EncodedPollRow<'a>,
    pub signals: Vec<EncodedSignal<'a>>,
    pub gaps: Vec<EncodedGap<'a>>,
    pub actions: Vec<EncodedAction<'a>>,
    pub transitions: Vec<EncodedTransition<'a>>,
    pub score: EncodedScore,
}

/// What the store holds for the tenant when the poll is written.
#[derive(Debug, Default)]
pub(crate) struct Stored {
    /// Current signal values (JSON text) by key.
    pub signal_values: HashMap<String, String>,
    /// Current action rows by action id.
    pub actions: HashMap<String, ActionStateRow>,
    /// `(points_achieved, points_possible)` of the latest score snapshot.
    pub latest_score: Option<(f64, f64)>,
}

/// The writes of one poll besides the poll row, the signal upserts (all signals), the gaps
/// (all, after deleting the connector's old ones) and the transitions (all), which the backend
/// takes from the [`EncodedPoll`] directly.
#[derive(Debug)]
pub(crate) struct Plan<'p, 'a> {
    /// Signals whose value changed (or that are new): one history row each.
    pub history: Vec<&'p EncodedSignal<'a>>,
    /// Action states that differ from the stored rows, `since` settled.
    pub actions: Vec<EncodedAction<'a>>,
    /// A snapshot when the score differs from the latest one.
    pub snapshot: Option<EncodedScore>,
}

impl<'a> EncodedPoll<'a> {
    /// Validate and encode. Fails with [`StoreError::Invalid`] on a non-finite signal number or
    /// an evaluation of another tenant; nothing has been written then.
    pub fn new(poll: &PollRecord<'a>) -> Result<Self, StoreError> {
        let evaluation = poll.evaluation;
        if evaluation.tenant != poll.tenant {
            return Err(StoreError::Invalid(format!(
                "poll of tenant {:?} carries an evaluation of tenant {:?}",
                poll.tenant, evaluation.tenant
            )));
        }
        let evaluated_at = rows::to_millis(evaluation.evaluated_at);

        let mut signals = BTreeMap::new();
        for s in poll.signals {
            signals.insert(s.key.as_str(), s);
        }
        let signals = signals
            .into_values()
            .map(|s| {
                Ok(EncodedSignal {
                    key: &s.key,
                    value: rows::encode_value(&s.key, &s.value)?,
                    observed_at: rows::to_millis(s.observed_at),
                    expires_at: rows::to_millis(s.expires_at),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;

        let mut gaps = BTreeMap::new();
        for g in poll.gaps {
            gaps.insert(g.prefix.as_str(), g);
        }
        let gaps = gaps
            .into_values()
            .map(|g| EncodedGap {
                prefix: &g.prefix,
                kind: &g.kind,
                reason: &g.reason,
            })
            .collect();

        let actions = evaluation
            .actions
            .iter()
            .map(|a| EncodedAction {
                action_id: &a.action_id,
                test_status: a.test_status.as_str(),
                implementation_status: a.implementation_status.as_str(),
                credit: a.credit,
                points: i64::from(a.points),
                points_achieved: a.points_achieved,
                points_possible: a.points_possible,
                since: evaluated_at,
                updated_at: evaluated_at,
                reason: a.reason.as_deref(),
                testing_logic: &a.testing_logic,
            })
            .collect();

        let transitions = poll
            .transitions
            .iter()
            .map(|t| {
                Ok(EncodedTransition {
                    action_id: &t.action_id,
                    from_status: t.from_status.map(|s| s.as_str()),
                    to_status: t.to_status.as_str(),
                    from_credit: t.from_credit,
                    to_credit: t.to_credit,
                    points_achieved: t.points_achieved,
                    points_possible: t.points_possible,
                    reason: t.reason.as_deref(),
                    signals: rows::encode_signal_list(&t.signals)?,
                    at: rows::to_millis(t.at),
                    testing_logic: evaluation
                        .actions
                        .iter()
                        .find(|a| a.action_id == t.action_id)
                        .map(|a| &*a.testing_logic),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;

        Ok(EncodedPoll {
            poll: EncodedPollRow {
                tenant: poll.tenant,
                connector: poll.connector,
                started_at: rows::to_millis(poll.started_at),
                finished_at: rows::to_millis(poll.finished_at),
                outcome: poll.outcome.as_str(),
                error_summary: rows::encode_gaps(poll.gaps)?,
            },
            signals,
            gaps,
            actions,
            transitions,
            score: EncodedScore {
                at: evaluated_at,
                points_achieved: evaluation.score.points_achieved,
                points_possible: evaluation.score.points_possible,
                ratio: evaluation.score.ratio,
            },
        })
    }

    /// Compare with what is stored and decide the conditional writes.
    pub fn plan<'p>(&'p self, stored: &Stored) -> Plan<'p, 'a> {
        let history = self
            .signals
            .iter()
            .filter(|s| stored.signal_values.get(s.key) != Some(&s.value))
            .collect();

        let actions = self
            .actions
            .iter()
            .filter_map(|new| {
                let old = stored.actions.get(new.action_id);
                if old.is_some_and(|old| same_action(old, new)) {
                    return None;
                }
                let since = match old {
                    Some(old) if old.test_status == new.test_status => old.since,
                    // The status began with the latest transition into it, else now.
                    _ => self
                        .transitions
                        .iter()
                        .rev()
                        .find(|t| t.action_id == new.action_id && t.to_status == new.test_status)
                        .map_or(new.updated_at, |t| t.at),
                };
                Some(EncodedAction {
                    since,
                    ..new.clone()
                })
            })
            .collect();

        let changed = match stored.latest_score {
            None => true,
            Some((achieved, possible)) => {
                (achieved - self.score.points_achieved).abs() > SCORE_EPSILON
                    || (possible - self.score.points_possible).abs() > SCORE_EPSILON
            }
        };

        Plan {
            history,
            actions,
            snapshot: changed.then_some(self.score),
        }
    }
}

/// Whether a stored row already holds the evaluated state (`since` and `updated_at` aside).
fn same_action(old: &ActionStateRow, new: &EncodedAction<'_>) -> bool {
    old.test_status == new.test_status
        && old.implementation_status == new.implementation_status
        && old.credit == new.credit
        && old.points == new.points
        && old.points_achieved == new.points_achieved
        && old.points_possible == new.points_possible
        && old.reason.as_deref() == new.reason
        && old.testing_logic == new.testing_logic
}
