//! What one `record_poll` must write, computed without SQL and shared by both backends.
//!
//! [`EncodedPoll::new`] validates and encodes a [`PollRecord`] before any transaction opens (so
//! invalid input never half-writes anything), with two digests: of its signals (keys, values,
//! times relative to the poll's start) and of the tenant state it leaves (every evaluated
//! action's state, the score, the category and assessment scores). Inside the transaction the
//! backend reads the connector's row of `connector_state` and the tenant's `tenant_digest`;
//! only what differs from them is read further ([`Stored`]: the signal values when the signal
//! digest differs, the action rows and latest snapshots when the state digest differs), and
//! [`EncodedPoll::plan`] decides which signal values changed (history rows), which action
//! states changed (upserts, with `since`), which snapshots are due, whether the connector's
//! gaps are rewritten, and whether the poll gets a full `polls` row. The backend then executes
//! the [`Plan`].

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest, Sha256};

use super::alerts::changed_categories;
use super::rows::{self, ActionStateRow, ConnectorStateRow};
use super::{PollOutcome, PollRecord, StoreError};
use crate::evaluation::ScoreSummary;

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
    /// UTC day of `started_at` (days since the Unix epoch): the `poll_days` row it counts in.
    pub day: i64,
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
    /// The category scores of the evaluation (a snapshot for each one that changed).
    pub categories: &'a [(String, ScoreSummary)],
    /// The assessment scores (a snapshot for each one that changed).
    pub assessments: &'a [(String, ScoreSummary)],
    /// Digest of the signals: keys, values, and times relative to the poll's start.
    pub signals_digest: String,
    /// Digest of the tenant state the poll leaves: actions, score, categories, assessments.
    pub state_digest: String,
    /// The tenant's first poll since postured started ([`PollRecord::after_start`]).
    pub after_start: bool,
}

/// What the store holds for the tenant when the poll is written, as far as it was read.
#[derive(Debug, Default)]
pub(crate) struct Stored {
    /// The connector's row of `connector_state`; `None` before its first poll.
    pub connector: Option<ConnectorStateRow>,
    /// Current signal values (JSON text) by key; `None` when the connector's stored signal
    /// digest equals the poll's (not read: every value is the same).
    pub signal_values: Option<HashMap<String, String>>,
    /// The stored action rows and latest snapshots; `None` when the tenant's stored state digest
    /// equals the poll's (not read: nothing differs).
    pub state: Option<StoredState>,
}

/// The tenant's stored action rows and latest snapshots.
#[derive(Debug, Default)]
pub(crate) struct StoredState {
    /// Current action rows by action id.
    pub actions: HashMap<String, ActionStateRow>,
    /// `(points_achieved, points_possible)` of the latest score snapshot.
    pub latest_score: Option<(f64, f64)>,
    /// `(points_achieved, points_possible)` of the latest snapshot of each category.
    pub latest_categories: HashMap<String, (f64, f64)>,
    /// `(points_achieved, points_possible)` of the latest snapshot of each assessment.
    pub latest_assessments: HashMap<String, (f64, f64)>,
}

/// The writes of one poll besides its alerts and evidence.
#[derive(Debug)]
pub(crate) struct Plan<'p, 'a> {
    /// Whether the poll gets a full `polls` row (else it is only counted in `poll_days` and
    /// `connector_state`).
    pub record: bool,
    /// Whether the poll's signals are written (upserted, marked with the poll's id): every
    /// signal of the poll when they differ from the connector's stored set, else none (the
    /// connector's `signals_seen` carries their freshness).
    pub write_signals: bool,
    /// The connector's rows of `signal_current` to bring forward by this many milliseconds
    /// before the signals are written: `(signals_poll_id, signals_seen - signals_base)`.
    pub materialise: Option<(i64, i64)>,
    /// Signals whose value changed (or that are new): one history row each.
    pub history: Vec<&'p EncodedSignal<'a>>,
    /// Whether the connector's gaps are replaced by the poll's (they or the previous poll's
    /// are not empty).
    pub replace_gaps: bool,
    /// Action states that differ from the stored rows, `since` settled.
    pub actions: Vec<EncodedAction<'a>>,
    /// A snapshot when the score differs from the latest one.
    pub snapshot: Option<EncodedScore>,
    /// Categories whose score differs from their latest snapshot.
    pub categories: Vec<&'a (String, ScoreSummary)>,
    /// Assessments whose score differs from their latest snapshot.
    pub assessments: Vec<&'a (String, ScoreSummary)>,
    /// Whether the tenant's state digest is written (it differs from the stored one).
    pub write_digest: bool,
}

impl<'a> EncodedPoll<'a> {
    /// Validate and encode. Fails with [`StoreError::Invalid`] on a non-finite signal number or
    /// an evaluation of another tenant; nothing has been written then.
    pub fn new(poll: &PollRecord<'a>) -> Result<Self, StoreError> {
        let started_at = rows::to_millis(poll.started_at);
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
            signals.insert(&*s.key, s);
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

        let actions: Vec<EncodedAction<'a>> = evaluation
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

        let score = EncodedScore {
            at: evaluated_at,
            points_achieved: evaluation.score.points_achieved,
            points_possible: evaluation.score.points_possible,
            ratio: evaluation.score.ratio,
        };
        Ok(EncodedPoll {
            poll: EncodedPollRow {
                tenant: poll.tenant,
                connector: poll.connector,
                started_at,
                finished_at: rows::to_millis(poll.finished_at),
                outcome: poll.outcome.as_str(),
                error_summary: rows::encode_gaps(poll.gaps)?,
                day: started_at.div_euclid(MILLIS_PER_DAY),
            },
            signals_digest: signals_digest(&signals, started_at),
            state_digest: state_digest(&actions, &score, &evaluation.categories, poll.assessments),
            signals,
            gaps,
            actions,
            transitions,
            score,
            categories: &evaluation.categories,
            assessments: poll.assessments,
            after_start: poll.after_start,
        })
    }

    /// Whether the connector's stored signal set is the poll's: same digest, and every row of
    /// it still marked as the connector's (none overwritten by another writer since).
    pub fn signals_unchanged(&self, connector: Option<&ConnectorStateRow>) -> bool {
        connector.is_some_and(|c| {
            c.signals_poll_id.is_some()
                && usize::try_from(c.signals_marked).is_ok_and(|n| n == self.signals.len())
                && c.signals_base.is_some()
                && c.signals_seen.is_some()
                && c.signals_digest.as_deref() == Some(self.signals_digest.as_str())
        })
    }

    /// Compare with what is stored and decide the conditional writes. `other_writes`: the poll
    /// also writes alert events or automatic evidence (which alone earn it a full row).
    pub fn plan<'p>(&'p self, stored: &Stored, other_writes: bool) -> Plan<'p, 'a> {
        let connector = stored.connector.as_ref();
        let write_signals = stored.signal_values.is_some();
        let history = match &stored.signal_values {
            Some(values) => self
                .signals
                .iter()
                .filter(|s| values.get(s.key) != Some(&s.value))
                .collect(),
            None => Vec::new(),
        };
        let materialise = connector.filter(|_| write_signals).and_then(|c| {
            let shift = c.signals_seen? - c.signals_base?;
            Some((c.signals_poll_id?, shift)).filter(|_| shift != 0)
        });
        let replace_gaps =
            !self.gaps.is_empty() || connector.is_none_or(|c| c.last_error_summary.is_some());

        let state = stored.state.as_ref();
        let (actions, snapshot, categories, assessments) = match state {
            Some(state) => (
                self.changed_actions(state),
                self.score_changed(state.latest_score).then_some(self.score),
                changed_categories(self.categories, &state.latest_categories),
                changed_categories(self.assessments, &state.latest_assessments),
            ),
            None => (Vec::new(), None, Vec::new(), Vec::new()),
        };

        let changed = write_signals
            || !history.is_empty()
            || !self.gaps.is_empty()
            || !actions.is_empty()
            || !self.transitions.is_empty()
            || snapshot.is_some()
            || !categories.is_empty()
            || !assessments.is_empty();
        let record = changed
            || other_writes
            || self.after_start
            || self.poll.outcome != PollOutcome::Success.as_str()
            || connector.is_none_or(|c| c.last_outcome != PollOutcome::Success.as_str());

        Plan {
            record,
            write_signals,
            materialise,
            history,
            replace_gaps,
            actions,
            snapshot,
            categories,
            assessments,
            write_digest: state.is_some(),
        }
    }

    /// The action states that differ from the stored rows, `since` settled.
    fn changed_actions(&self, stored: &StoredState) -> Vec<EncodedAction<'a>> {
        self.actions
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
            .collect()
    }

    /// Whether the score differs from the latest snapshot's (or there is none).
    fn score_changed(&self, latest: Option<(f64, f64)>) -> bool {
        match latest {
            None => true,
            Some((achieved, possible)) => {
                (achieved - self.score.points_achieved).abs() > SCORE_EPSILON
                    || (possible - self.score.points_possible).abs() > SCORE_EPSILON
            }
        }
    }
}

/// Milliseconds in a UTC day.
const MILLIS_PER_DAY: i64 = 86_400_000;

/// Fields fed to SHA-256 unambiguously (each length-prefixed or fixed-size), after a version
/// tag, so that the digest changes when its encoding does. Stored as the first 128 bits in
/// hex.
struct Digester(Sha256);

impl Digester {
    fn new(tag: &str) -> Self {
        let mut d = Digester(Sha256::new());
        d.str(tag);
        d
    }
    fn str(&mut self, s: &str) {
        self.0.update((s.len() as u64).to_le_bytes());
        self.0.update(s.as_bytes());
    }
    fn opt(&mut self, s: Option<&str>) {
        match s {
            None => self.0.update([0]),
            Some(s) => {
                self.0.update([1]);
                self.str(s);
            }
        }
    }
    fn i64(&mut self, v: i64) {
        self.0.update(v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.0.update(v.to_bits().to_le_bytes());
    }
    fn scores(&mut self, scores: &[(String, ScoreSummary)]) {
        self.i64(scores.len() as i64);
        for (name, s) in scores {
            self.str(name);
            self.f64(s.points_achieved);
            self.f64(s.points_possible);
        }
    }
    fn finish(self) -> String {
        hex::encode(&self.0.finalize()[..16])
    }
}

/// The digest of a poll's signals (sorted by key): keys, values, and `observed_at` and
/// `expires_at` relative to the poll's start `base`.
fn signals_digest(signals: &[EncodedSignal<'_>], base: i64) -> String {
    let mut d = Digester::new("postured signals v1");
    d.i64(signals.len() as i64);
    for s in signals {
        d.str(s.key);
        d.str(&s.value);
        d.i64(s.observed_at.wrapping_sub(base));
        d.i64(s.expires_at.wrapping_sub(base));
    }
    d.finish()
}

/// The digest of the tenant state a poll leaves: every evaluated action's state (`since` and
/// `updated_at` aside), in evaluation order, the score, the category and assessment scores.
fn state_digest(
    actions: &[EncodedAction<'_>],
    score: &EncodedScore,
    categories: &[(String, ScoreSummary)],
    assessments: &[(String, ScoreSummary)],
) -> String {
    let mut d = Digester::new("postured tenant state v1");
    d.i64(actions.len() as i64);
    for a in actions {
        d.str(a.action_id);
        d.str(a.test_status);
        d.str(a.implementation_status);
        d.f64(a.credit);
        d.i64(a.points);
        d.f64(a.points_achieved);
        d.f64(a.points_possible);
        d.opt(a.reason);
        d.str(a.testing_logic);
    }
    d.f64(score.points_achieved);
    d.f64(score.points_possible);
    d.scores(categories);
    d.scores(assessments);
    d.finish()
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
