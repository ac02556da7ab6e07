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
    /// The signals and gaps of a connector's snapshot, every signal stale after `expires_at`,
    /// or earlier when the source gave the signal an earlier expiry of its own
    /// ([`postured_connectors::ObservedSignal::expires_at`]; never later).
    pub fn from_snapshot(snapshot: Snapshot, expires_at: DateTime<Utc>) -> Self {
        Self {
            signals: snapshot
                .signals
                .into_iter()
                .map(|s| Signal {
                    key: s.key,
                    value: s.value,
                    observed_at: s.observed_at,
                    expires_at: s.expires_at.map_or(expires_at, |own| own.min(expires_at)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use postured_connectors::ObservedSignal;

    #[test]
    fn a_source_expiry_shortens_the_daemons_never_extends_it() {
        let t0 = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let ttl = t0 + chrono::Duration::hours(2);
        let signal = |key: &str, own: Option<i64>| ObservedSignal {
            key: key.into(),
            value: SignalValue::Bool(true),
            observed_at: t0,
            expires_at: own.map(|h| t0 + chrono::Duration::hours(h)),
        };
        let snapshot = Snapshot {
            signals: vec![
                signal("a", None),
                signal("b", Some(1)),
                signal("c", Some(26)),
            ],
            ..Snapshot::default()
        };
        let batch = SignalBatch::from_snapshot(snapshot, ttl);
        let expiry: Vec<_> = batch.signals.iter().map(|s| s.expires_at).collect();
        assert_eq!(expiry, [ttl, t0 + chrono::Duration::hours(1), ttl]);
    }
}
