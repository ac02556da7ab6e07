//! Rust-side row mapping shared by the SQLite and PostgreSQL stores.
//!
//! Both schemas use the same column names and portable types (text, 64-bit integers, doubles),
//! so one set of `FromRow` structs decodes rows of either backend, and one set of functions turns
//! them into domain types. Decoding never panics: a bad value becomes [`StoreError::Corrupt`]
//! naming the table. No SQL here.

use chrono::{DateTime, Utc};

use super::{
    ConnectorLastPoll, PollDay, PollOutcome, PollRow, ScoreSnapshot, SignalChange, StoreError,
    TransitionRow,
};
use crate::evaluation::{ActionState, ScoreSummary, TestStatus, Transition};
use crate::signals::{Signal, SignalGap, SignalValue};

/// Table names, as used in [`StoreError::Corrupt`].
pub(crate) mod table {
    pub const POLLS: &str = "polls";
    pub const SIGNAL_CURRENT: &str = "signal_current";
    pub const SIGNAL_HISTORY: &str = "signal_history";
    pub const ACTION_STATE: &str = "action_state";
    pub const ACTION_TRANSITIONS: &str = "action_transitions";
    pub const CONNECTOR_STATE: &str = "connector_state";
    pub const POLL_DAYS: &str = "poll_days";
}

/// An instant as stored: milliseconds since the Unix epoch.
pub(crate) fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A stored instant back to a `DateTime` (`Corrupt` when out of chrono's range).
pub(crate) fn from_millis(table: &'static str, ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| StoreError::Corrupt {
        table,
        detail: format!("timestamp {ms} out of range"),
    })
}

/// Lower bound for optional `since` filters: every stored instant is `>=` it.
pub(crate) fn since_millis(since: Option<DateTime<Utc>>) -> i64 {
    since.map_or(i64::MIN, to_millis)
}

/// Reject values that JSON cannot carry faithfully (serde_json writes NaN and infinities as
/// `null`, which would then fail to decode).
fn check_finite(key: &str, value: &SignalValue) -> Result<(), StoreError> {
    match value {
        SignalValue::Number(n) if !n.is_finite() => Err(StoreError::Invalid(format!(
            "signal {key:?} has a non-finite number"
        ))),
        _ => Ok(()),
    }
}

/// A signal value as stored: untagged JSON (`true`, `0.8`, `"enabled"`).
pub(crate) fn encode_value(key: &str, value: &SignalValue) -> Result<String, StoreError> {
    check_finite(key, value)?;
    serde_json::to_string(value).map_err(|e| StoreError::Invalid(format!("signal {key:?}: {e}")))
}

/// A transition's signal list as stored: a JSON array of `[key, value]` pairs.
pub(crate) fn encode_signal_list(
    list: &[(std::sync::Arc<str>, SignalValue)],
) -> Result<String, StoreError> {
    for (key, value) in list {
        check_finite(key, value)?;
    }
    serde_json::to_string(list).map_err(|e| StoreError::Invalid(format!("transition signals: {e}")))
}

/// A poll's error summary as stored: the gaps as a JSON array, `None` when there are none.
pub(crate) fn encode_gaps(gaps: &[SignalGap]) -> Result<Option<String>, StoreError> {
    if gaps.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(gaps)
        .map(Some)
        .map_err(|e| StoreError::Invalid(format!("poll gaps: {e}")))
}

fn decode_json<T: serde::de::DeserializeOwned>(
    table: &'static str,
    what: &str,
    raw: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt {
        table,
        detail: format!("{what}: {e}"),
    })
}

fn decode_status(table: &'static str, raw: &str) -> Result<TestStatus, StoreError> {
    TestStatus::parse(raw).ok_or_else(|| StoreError::Corrupt {
        table,
        detail: format!("unknown test status {raw:?}"),
    })
}

/// `signal_current`: latest value per key.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SignalRow {
    pub key: String,
    pub value: String,
    pub observed_at: i64,
    pub expires_at: i64,
}

impl SignalRow {
    /// Decode into a [`Signal`].
    pub fn into_signal(self) -> Result<Signal, StoreError> {
        let t = table::SIGNAL_CURRENT;
        Ok(Signal {
            value: decode_json(t, &format!("value of {:?}", self.key), &self.value)?,
            observed_at: from_millis(t, self.observed_at)?,
            expires_at: from_millis(t, self.expires_at)?,
            key: crate::signals::intern(&self.key),
        })
    }
}

/// `signal_current`, key and value only (what `record_poll` compares against).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SignalValueRow {
    pub key: String,
    pub value: String,
}

/// `signal_history`: one value change.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SignalChangeRow {
    pub key: String,
    pub value: String,
    pub observed_at: i64,
}

impl SignalChangeRow {
    /// Decode into a [`SignalChange`].
    pub fn into_change(self) -> Result<SignalChange, StoreError> {
        let t = table::SIGNAL_HISTORY;
        Ok(SignalChange {
            value: decode_json(t, &format!("value of {:?}", self.key), &self.value)?,
            observed_at: from_millis(t, self.observed_at)?,
            key: self.key,
        })
    }
}

/// `signal_gaps`: one namespace a connector could not collect.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct GapRow {
    pub prefix: String,
    pub kind: String,
    pub reason: String,
}

impl From<GapRow> for SignalGap {
    fn from(r: GapRow) -> Self {
        SignalGap {
            prefix: r.prefix,
            kind: r.kind,
            reason: r.reason,
        }
    }
}

/// `action_state`: every column but the tenant and `updated_at`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ActionStateRow {
    pub action_id: String,
    pub test_status: String,
    pub implementation_status: String,
    pub credit: f64,
    pub points: i64,
    pub points_achieved: f64,
    pub points_possible: f64,
    pub since: i64,
    pub reason: Option<String>,
    pub testing_logic: String,
}

impl ActionStateRow {
    /// Decode into `(action_id, ActionState)`.
    pub fn into_state(self) -> Result<(String, ActionState), StoreError> {
        let t = table::ACTION_STATE;
        let state = ActionState {
            test_status: decode_status(t, &self.test_status)?,
            credit: self.credit,
            points_achieved: self.points_achieved,
            points_possible: self.points_possible,
            since: from_millis(t, self.since)?,
        };
        Ok((self.action_id, state))
    }
}

/// `action_transitions`: one stored transition.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TransitionDbRow {
    pub tenant: String,
    pub action_id: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub from_credit: Option<f64>,
    pub to_credit: f64,
    pub points_achieved: f64,
    pub points_possible: f64,
    pub reason: Option<String>,
    pub signals: String,
    pub at: i64,
    pub testing_logic: Option<String>,
    pub evidence_sha256: Option<String>,
}

impl TransitionDbRow {
    /// Decode into a [`TransitionRow`].
    pub fn into_row(self) -> Result<TransitionRow, StoreError> {
        let t = table::ACTION_TRANSITIONS;
        let from_status = match self.from_status.as_deref() {
            Some(s) => Some(decode_status(t, s)?),
            None => None,
        };
        Ok(TransitionRow {
            evidence_sha256: self.evidence_sha256,
            tenant: self.tenant,
            testing_logic: self.testing_logic,
            transition: Transition {
                from_status,
                to_status: decode_status(t, &self.to_status)?,
                from_credit: self.from_credit,
                to_credit: self.to_credit,
                points_achieved: self.points_achieved,
                points_possible: self.points_possible,
                reason: self.reason,
                signals: decode_json(t, "signals", &self.signals)?,
                at: from_millis(t, self.at)?,
                action_id: self.action_id,
            },
        })
    }
}

/// `score_snapshots`: one score.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SnapshotRow {
    pub at: i64,
    pub points_achieved: f64,
    pub points_possible: f64,
    pub ratio: f64,
}

impl SnapshotRow {
    /// Decode into a [`ScoreSnapshot`].
    pub fn into_snapshot(self) -> Result<ScoreSnapshot, StoreError> {
        Ok(ScoreSnapshot {
            at: from_millis("score_snapshots", self.at)?,
            score: ScoreSummary {
                points_achieved: self.points_achieved,
                points_possible: self.points_possible,
                ratio: self.ratio,
            },
        })
    }
}

/// `polls`: one poll.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct PollDbRow {
    pub id: i64,
    pub tenant: String,
    pub connector: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub outcome: String,
    pub error_summary: Option<String>,
}

impl PollDbRow {
    /// Decode into a [`PollRow`].
    pub fn into_poll(self) -> Result<PollRow, StoreError> {
        let t = table::POLLS;
        let outcome = decode_outcome(t, &self.outcome)?;
        let gaps = match self.error_summary.as_deref() {
            Some(raw) => decode_json(t, "error_summary", raw)?,
            None => Vec::new(),
        };
        Ok(PollRow {
            id: self.id,
            tenant: self.tenant,
            connector: self.connector,
            started_at: from_millis(t, self.started_at)?,
            finished_at: from_millis(t, self.finished_at)?,
            outcome,
            gaps,
        })
    }
}

fn decode_outcome(table: &'static str, raw: &str) -> Result<PollOutcome, StoreError> {
    PollOutcome::parse(raw).ok_or_else(|| StoreError::Corrupt {
        table,
        detail: format!("unknown outcome {raw:?}"),
    })
}

/// `connector_state`: what a poll reads of its connector's row (the latest poll's outcome and
/// gaps, the stored signal set).
#[derive(Debug, Clone)]
pub(crate) struct ConnectorStateRow {
    pub last_outcome: String,
    pub last_error_summary: Option<String>,
    pub last_success_at: Option<i64>,
    pub signals_poll_id: Option<i64>,
    pub signals_digest: Option<String>,
    pub signals_base: Option<i64>,
    pub signals_seen: Option<i64>,
    /// Rows of `signal_current` still marked with `signals_poll_id`.
    pub signals_marked: i64,
}

/// The tenant's `tenant_digest` and the connector's `connector_state` row, as a poll reads them
/// in one statement (`last_outcome` is NULL when the connector has no row).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct PollStateRow {
    pub digest: Option<String>,
    pub last_outcome: Option<String>,
    pub last_error_summary: Option<String>,
    pub last_success_at: Option<i64>,
    pub signals_poll_id: Option<i64>,
    pub signals_digest: Option<String>,
    pub signals_base: Option<i64>,
    pub signals_seen: Option<i64>,
    pub signals_marked: i64,
}

impl PollStateRow {
    /// The tenant's state digest and the connector's row, when stored.
    pub fn split(self) -> (Option<String>, Option<ConnectorStateRow>) {
        let connector = self.last_outcome.map(|last_outcome| ConnectorStateRow {
            last_outcome,
            last_error_summary: self.last_error_summary,
            last_success_at: self.last_success_at,
            signals_poll_id: self.signals_poll_id,
            signals_digest: self.signals_digest,
            signals_base: self.signals_base,
            signals_seen: self.signals_seen,
            signals_marked: self.signals_marked,
        });
        (self.digest, connector)
    }
}

/// `connector_state`: a connector's latest poll, for listings.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct LastPollDbRow {
    pub connector: String,
    pub last_started_at: i64,
    pub last_finished_at: i64,
    pub last_outcome: String,
    pub last_error_summary: Option<String>,
    pub last_success_at: Option<i64>,
}

impl LastPollDbRow {
    /// Decode into a [`ConnectorLastPoll`].
    pub fn into_last_poll(self) -> Result<ConnectorLastPoll, StoreError> {
        let t = table::CONNECTOR_STATE;
        Ok(ConnectorLastPoll {
            started_at: from_millis(t, self.last_started_at)?,
            finished_at: from_millis(t, self.last_finished_at)?,
            outcome: decode_outcome(t, &self.last_outcome)?,
            gaps: match self.last_error_summary.as_deref() {
                Some(raw) => decode_json(t, "last_error_summary", raw)?,
                None => Vec::new(),
            },
            last_success_at: self
                .last_success_at
                .map(|ms| from_millis(t, ms))
                .transpose()?,
            connector: self.connector,
        })
    }
}

/// `poll_days`: one connector's polls on one UTC day.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct PollDayDbRow {
    pub connector: String,
    pub day: i64,
    pub polls: i64,
    pub successes: i64,
    pub partials: i64,
    pub failures: i64,
    pub timeouts: i64,
    pub recorded: i64,
    pub first_started_at: i64,
    pub last_started_at: i64,
    pub last_finished_at: i64,
}

impl PollDayDbRow {
    /// Decode into a [`PollDay`].
    pub fn into_day(self) -> Result<PollDay, StoreError> {
        let t = table::POLL_DAYS;
        let count = |n: i64| {
            u64::try_from(n).map_err(|_| StoreError::Corrupt {
                table: t,
                detail: format!("negative count {n}"),
            })
        };
        let day = from_millis(t, self.day.saturating_mul(86_400_000))?.date_naive();
        Ok(PollDay {
            day,
            polls: count(self.polls)?,
            successes: count(self.successes)?,
            partials: count(self.partials)?,
            failures: count(self.failures)?,
            timeouts: count(self.timeouts)?,
            recorded: count(self.recorded)?,
            first_started_at: from_millis(t, self.first_started_at)?,
            last_started_at: from_millis(t, self.last_started_at)?,
            last_finished_at: from_millis(t, self.last_finished_at)?,
            connector: self.connector,
        })
    }
}

/// Decode every row, stopping at the first corrupt one.
pub(crate) fn decode_all<R, T>(
    rows: Vec<R>,
    decode: impl Fn(R) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.into_iter().map(decode).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_as_untagged_json() {
        for v in [
            SignalValue::Bool(true),
            SignalValue::Number(0.8),
            SignalValue::Number(3.0),
            SignalValue::Number(-1e-300),
            SignalValue::Text("\"quoted\" é".into()),
        ] {
            let raw = encode_value("k", &v).unwrap();
            let row = SignalRow {
                key: "k".into(),
                value: raw,
                observed_at: 0,
                expires_at: 1,
            };
            assert_eq!(row.into_signal().unwrap().value, v);
        }
        assert_eq!(
            encode_value("k", &SignalValue::Bool(false)).unwrap(),
            "false"
        );
        assert_eq!(
            encode_value("k", &SignalValue::Number(f64::NAN))
                .unwrap_err()
                .kind(),
            "invalid"
        );
        let list = vec![("a".into(), SignalValue::Number(f64::INFINITY))];
        assert_eq!(encode_signal_list(&list).unwrap_err().kind(), "invalid");
    }

    #[test]
    fn bad_rows_are_corrupt_not_panics() {
        let row = SignalRow {
            key: "k".into(),
            value: "null".into(),
            observed_at: 0,
            expires_at: 0,
        };
        match row.into_signal() {
            Err(StoreError::Corrupt { table, .. }) => assert_eq!(table, "signal_current"),
            other => panic!("expected corrupt, got {other:?}"),
        }
        let row = SignalRow {
            key: "k".into(),
            value: "true".into(),
            observed_at: i64::MAX,
            expires_at: 0,
        };
        assert_eq!(row.into_signal().unwrap_err().kind(), "corrupt");
        let row = ActionStateRow {
            action_id: "a".into(),
            test_status: "great".into(),
            implementation_status: "implemented".into(),
            credit: 1.0,
            points: 1,
            points_achieved: 1.0,
            points_possible: 1.0,
            since: 0,
            reason: None,
            testing_logic: String::new(),
        };
        assert_eq!(row.into_state().unwrap_err().kind(), "corrupt");
        let row = PollDbRow {
            id: 1,
            tenant: "t".into(),
            connector: "c".into(),
            started_at: 0,
            finished_at: 0,
            outcome: "exploded".into(),
            error_summary: None,
        };
        assert_eq!(row.into_poll().unwrap_err().kind(), "corrupt");
    }
}
