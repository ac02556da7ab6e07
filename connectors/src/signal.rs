//! The connector-agnostic snapshot a poll returns: typed signals and gaps.
//!
//! Every connector normalises what it fetched into this one vocabulary, so the daemon never
//! learns a source's payload shapes. A signal is a namespaced fact (`msgraph.mfa.registered_ratio
//! = 0.8`, observed at the poll's start); a gap is a namespace the poll could not collect
//! (`msgraph.mfa.` after a 403), with the classified error kind and a secret-free reason.
//!
//! Must not: read the clock (the observation time comes from [`crate::PollContext`]) or decide
//! freshness (the daemon gives each signal its expiry; a source may only shorten it, through
//! [`ObservedSignal::expires_at`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::CollectionError;

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

/// One normalised fact as a connector observed it: `(key, value, observed_at)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedSignal {
    /// Namespaced key `<kind>.<area>.<name>`, e.g. `msgraph.mfa.registered_ratio`; listed in the
    /// connector's module docs and in `docs/signals.md`.
    pub key: String,
    /// Observed value.
    pub value: SignalValue,
    /// When the connector observed it (the poll's start).
    pub observed_at: DateTime<Utc>,
    /// An expiry the source gave the fact itself (the `exec` connector's `expires_in`): the
    /// daemon makes the signal stale at the earlier of this and its own expiry. `None` for
    /// most connectors: the daemon's expiry alone applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A signal namespace that a poll could not collect, e.g. prefix `msgraph.mfa.` after a 403.
///
/// Rules whose signals are missing under this prefix become `could_not_be_detected` with this
/// cause; the previous good signals stay in force until they expire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalGap {
    /// Key prefix the failed endpoint would have produced, ending in `.`.
    pub prefix: String,
    /// Error kind (`forbidden`, `throttled`, ... from [`crate::ErrorKind::as_str`]).
    pub kind: String,
    /// Secret-free detail, e.g. `403 Authorization_RequestDenied on /reports/...`.
    pub reason: String,
}

impl SignalGap {
    /// The gap of a whole connector namespace (`<namespace>.`: its kind, or `<kind>.<name>`
    /// for a named connector), e.g. after a poll timeout.
    pub fn whole(namespace: &str, e: &CollectionError) -> Self {
        Self {
            prefix: format!("{namespace}."),
            kind: e.kind.as_str().to_owned(),
            reason: e.message.clone(),
        }
    }
}

/// What one poll of one connector returned for one tenant.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Signals observed in this poll.
    pub signals: Vec<ObservedSignal>,
    /// Namespaces that failed in this poll (one per prefix).
    pub gaps: Vec<SignalGap>,
    /// Every endpoint error of this poll (for logs, metrics and `Retry-After`), one per failed
    /// request; several may share one gap.
    pub errors: Vec<CollectionError>,
}

/// Most names a list signal (a text of names, e.g. users failing a check) holds.
pub const MAX_LISTED: usize = 10;

/// `a, b, c` with at most [`MAX_LISTED`] names, then ` and N more`; empty for no name.
pub fn listing(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(MAX_LISTED).map(String::as_str).collect();
    let mut out = shown.join(", ");
    if names.len() > MAX_LISTED {
        out.push_str(&format!(" and {} more", names.len() - MAX_LISTED));
    }
    out
}

/// Builds a [`Snapshot`], stamping every signal with the poll's observation time.
#[derive(Debug)]
pub struct SnapshotBuilder {
    snapshot: Snapshot,
    observed_at: DateTime<Utc>,
}

impl SnapshotBuilder {
    /// An empty snapshot observed at `observed_at`.
    pub fn new(observed_at: DateTime<Utc>) -> Self {
        Self {
            snapshot: Snapshot::default(),
            observed_at,
        }
    }

    /// The finished snapshot.
    pub fn finish(self) -> Snapshot {
        self.snapshot
    }

    /// Add one signal.
    pub fn push(&mut self, key: impl Into<String>, value: SignalValue) {
        self.snapshot.signals.push(ObservedSignal {
            key: key.into(),
            value,
            observed_at: self.observed_at,
            expires_at: None,
        });
    }

    /// Add a signal as a source gave it (its own expiry kept), stamped with the poll's
    /// observation time.
    pub fn push_observed(&mut self, signal: ObservedSignal) {
        self.snapshot.signals.push(ObservedSignal {
            observed_at: self.observed_at,
            ..signal
        });
    }

    /// Add a number.
    pub fn num(&mut self, key: impl Into<String>, v: f64) {
        self.push(key, SignalValue::Number(v));
    }

    /// Add a count.
    pub fn count(&mut self, key: impl Into<String>, n: usize) {
        self.num(key, n as f64);
    }

    /// Add a flag.
    pub fn flag(&mut self, key: impl Into<String>, v: bool) {
        self.push(key, SignalValue::Bool(v));
    }

    /// Add a text.
    pub fn text(&mut self, key: impl Into<String>, v: impl Into<String>) {
        self.push(key, SignalValue::Text(v.into()));
    }

    /// Add `num / den`, omitted when `den == 0` (a ratio over nothing is no fact).
    pub fn ratio(&mut self, key: impl Into<String>, num: usize, den: usize) {
        if den > 0 {
            self.num(key, num as f64 / den as f64);
        }
    }

    /// Record that `prefix` could not be collected because of `e`: one gap per prefix (the
    /// reasons of several failed endpoints are joined with `; `). The error is kept too.
    pub fn gap(&mut self, prefix: &str, e: &CollectionError) {
        self.snapshot.errors.push(e.clone());
        let reason = gap_reason(e);
        if let Some(g) = self.snapshot.gaps.iter_mut().find(|g| g.prefix == prefix) {
            g.reason = format!("{}; {reason}", g.reason);
            return;
        }
        self.snapshot.gaps.push(SignalGap {
            prefix: prefix.to_owned(),
            kind: e.kind.as_str().to_owned(),
            reason,
        });
    }

    /// Keep an endpoint error that made no gap of its own (e.g. the token failure repeated for
    /// every endpoint after the whole namespace was gapped once).
    pub fn error(&mut self, e: &CollectionError) {
        self.snapshot.errors.push(e.clone());
    }
}

/// `403 Authorization_RequestDenied on /reports/...: detail` (parts omitted when unknown).
pub fn gap_reason(e: &CollectionError) -> String {
    let mut head = Vec::new();
    if let Some(s) = e.status {
        head.push(s.to_string());
    }
    if let Some(c) = &e.code {
        head.push(c.clone());
    }
    if head.is_empty() {
        head.push(e.kind.as_str().to_owned());
    }
    format!("{} on {}: {}", head.join(" "), e.endpoint, e.message)
}
