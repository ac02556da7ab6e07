//! Observations -> signals: normalise what a connector saw into namespaced facts.
//!
//! Pure: no IO, no clock (the observation time is passed in), cannot fail. The key table is
//! `docs/signals.md`; every key produced here must be listed there.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A signal's value. Serialised untagged: `true`, `0.8`, `"enabled"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SignalValue {
    /// A flag, e.g. `msgraph.security_defaults.enabled`.
    Bool(bool),
    /// A count, ratio or score (ratios are in [0, 1]).
    Number(f64),
    /// A label, e.g. a Secure Score control's title or state.
    Text(String),
}

/// One normalised fact about a tenant: `(key, value, observed_at, expires_at)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// Namespaced key, e.g. `msgraph.mfa.registered_ratio` (see `docs/signals.md`).
    pub key: String,
    /// Observed value.
    pub value: SignalValue,
    /// When the connector observed it (poll start).
    pub observed_at: DateTime<Utc>,
    /// After this instant the value is stale and no longer decides a test status.
    pub expires_at: DateTime<Utc>,
}

/// A signal namespace that a poll could not collect, e.g. prefix `msgraph.mfa.` after a 403.
///
/// Rules whose signals are missing under this prefix become `could_not_be_detected` with this
/// reason; the previous good signals stay in force until they expire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalGap {
    /// Key prefix the failed endpoint would have produced, ending in `.`.
    pub prefix: String,
    /// Error kind (`forbidden`, `throttled`, ... from the connector's `ErrorKind::as_str`).
    pub kind: String,
    /// Secret-free detail, e.g. `403 Authorization_RequestDenied on /reports/...`.
    pub reason: String,
}

/// Everything one poll contributed: fresh signals plus the namespaces it could not collect.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SignalBatch {
    /// Signals observed in this poll.
    pub signals: Vec<Signal>,
    /// Namespaces that failed in this poll.
    pub gaps: Vec<SignalGap>,
}
