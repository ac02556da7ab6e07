//! Signals as the daemon keeps them: a connector's observations plus their expiry.
//!
//! Connectors normalise their payloads into a connector-agnostic
//! [`postured_connectors::Snapshot`] (`(key, value, observed_at)` facts and gaps); this module
//! gives each fact the instant after which it is stale ([`SignalBatch::from_snapshot`]). The
//! key vocabulary of every connector is in `docs/signals.md`.
//!
//! Pure: no IO, no clock (the expiry is passed in), cannot fail. Knows no connector.

use chrono::{DateTime, Utc};
use postured_connectors::{CollectionError, Snapshot};
use serde::{Deserialize, Serialize};

pub use postured_connectors::{SignalGap, SignalValue};

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

/// Everything one poll contributed: fresh signals plus the namespaces it could not collect.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SignalBatch {
    /// Signals observed in this poll.
    pub signals: Vec<Signal>,
    /// Namespaces that failed in this poll.
    pub gaps: Vec<SignalGap>,
}

impl SignalBatch {
    /// The signals and gaps of a connector's snapshot, every signal stale after `expires_at`.
    pub fn from_snapshot(snapshot: Snapshot, expires_at: DateTime<Utc>) -> Self {
        Self {
            signals: snapshot
                .signals
                .into_iter()
                .map(|s| Signal {
                    key: s.key,
                    value: s.value,
                    observed_at: s.observed_at,
                    expires_at,
                })
                .collect(),
            gaps: snapshot.gaps,
        }
    }

    /// A poll of connector `kind` that collected nothing (it timed out): the whole namespace
    /// `<kind>.` is a gap.
    pub fn nothing_collected(kind: &str, err: &CollectionError) -> Self {
        Self {
            signals: Vec::new(),
            gaps: vec![SignalGap::whole(kind, err)],
        }
    }
}
