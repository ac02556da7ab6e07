//! Signals as the daemon keeps them: a connector's observations plus their expiry.
//!
//! Connectors normalise their payloads into a connector-agnostic
//! [`postured_connectors::Snapshot`] (`(key, value, observed_at)` facts and gaps); this module
//! gives each fact the instant after which it is stale ([`SignalBatch::from_snapshot`]). The
//! key vocabulary of every connector is in `docs/signals.md`.
//!
//! Every tenant has the same few hundred keys (`msgraph.securescore.controls.<control>.score`
//! ...), so a key is kept once per process: [`intern`] gives the one shared `Arc<str>` of a
//! key, and [`Signal::key`] is that `Arc` (16 bytes, no allocation of its own per tenant).
//!
//! Pure: no IO, no clock (the expiry is passed in), cannot fail. Knows no connector.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use postured_connectors::{CollectionError, Snapshot};
use serde::{Deserialize, Serialize};

pub use postured_connectors::{SignalGap, SignalValue};

/// One normalised fact about a tenant: `(key, value, observed_at, expires_at)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// Namespaced key, e.g. `msgraph.mfa.registered_ratio` (see `docs/signals.md`); the
    /// process-wide shared copy ([`intern`]) when it came from a poll or the store.
    pub key: Arc<str>,
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
                    key: intern(&s.key),
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

/// The interned keys: every key in use once, plus those dropped since the last sweep.
struct Interner {
    keys: HashSet<Arc<str>>,
    /// Size at which the next insertion first drops the keys no one else holds.
    sweep_at: usize,
}

/// Keys below this count are never swept (the vocabulary of a few tenants' connectors).
const SWEEP_MIN: usize = 4096;

static KEYS: LazyLock<Mutex<Interner>> = LazyLock::new(|| {
    Mutex::new(Interner {
        keys: HashSet::new(),
        sweep_at: SWEEP_MIN,
    })
});

/// The process-wide shared copy of `key`: equal keys (and action ids) interned anywhere are
/// one allocation. Bounded: when the set reaches twice the keys held at the last sweep (at
/// least [`SWEEP_MIN`]), the keys held by nothing but the set are dropped, so keys that stop
/// being used (a connector removed, a control retired) do not accumulate.
pub fn intern(key: &str) -> Arc<str> {
    let mut set = KEYS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(k) = set.keys.get(key) {
        return k.clone();
    }
    if set.keys.len() >= set.sweep_at {
        set.keys.retain(|k| Arc::strong_count(k) > 1);
        set.sweep_at = (set.keys.len() * 2).max(SWEEP_MIN);
    }
    let k: Arc<str> = Arc::from(key);
    set.keys.insert(k.clone());
    k
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

    #[test]
    fn equal_keys_share_one_copy_and_unused_ones_are_swept() {
        let a = intern("test.intern.shared");
        let b = intern(&String::from("test.intern.shared"));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&*a, "test.intern.shared");
        // Past the sweep size, keys nobody holds are dropped, held ones stay shared.
        for i in 0..2 * SWEEP_MIN + 1 {
            intern(&format!("test.intern.dropped.{i}"));
        }
        let len = KEYS.lock().unwrap().keys.len();
        assert!(len <= 2 * SWEEP_MIN, "{len}");
        assert!(Arc::ptr_eq(&a, &intern("test.intern.shared")));
    }
}
