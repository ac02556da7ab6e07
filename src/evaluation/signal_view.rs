//! One tenant's signals as the rules see them at an instant: fresh values, expired values and
//! the current collection gaps, indexed for lookups by key and by namespace, and the typed
//! cause ([`Undetected`]) of a signal a rule needs but cannot read.
//!
//! Pure: no IO, no clock (`now` is given), no CEL (the CEL maps are built from this view by
//! `rules`). It must not decide outcomes: it only answers what is fresh, expired or uncollected.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use chrono::{DateTime, Utc};

use super::undetected::{Expiry, Undetected};
use crate::signals::{Signal, SignalGap};

/// One tenant's signals as rules see them at `now`: fresh values, expired values (for
/// causes), and the current collection gaps. Built once per evaluation (its maps hash with
/// `foldhash`: keys are the tenant's own signal keys, built and dropped within the evaluation).
pub struct SignalView<'a> {
    now: DateTime<Utc>,
    /// Fresh signals by key.
    fresh: HashMap<&'a str, &'a Signal>,
    /// Every key and key prefix (`a`, `a.b`, `a.b.c`) of a fresh signal.
    fresh_nodes: HashSet<&'a str>,
    /// Every key and key prefix of an expired signal, to one such signal.
    expired_nodes: HashMap<&'a str, &'a Signal>,
    /// Expired signals.
    expired: Vec<&'a Signal>,
    gaps: &'a [SignalGap],
}

impl<'a> SignalView<'a> {
    /// Index the latest signals (one per key; when a key repeats, the latest observation wins)
    /// against `now`: a signal is fresh when `expires_at > now`, expired otherwise.
    pub fn new(now: DateTime<Utc>, signals: &'a [Signal], gaps: &'a [SignalGap]) -> Self {
        let mut latest: HashMap<&'a str, &'a Signal> = HashMap::with_capacity(signals.len());
        for s in signals {
            match latest.get(&*s.key) {
                Some(prev) if prev.observed_at > s.observed_at => {}
                _ => {
                    latest.insert(&*s.key, s);
                }
            }
        }
        let mut fresh = HashMap::with_capacity(latest.len());
        let mut fresh_nodes = HashSet::with_capacity(latest.len() * 3);
        let mut expired_nodes = HashMap::new();
        let mut expired = Vec::new();
        for (&key, &signal) in &latest {
            if signal.expires_at > now {
                fresh.insert(key, signal);
                for node in key_nodes(key) {
                    fresh_nodes.insert(node);
                }
            } else {
                expired.push(signal);
                for node in key_nodes(key) {
                    expired_nodes.entry(node).or_insert(signal);
                }
            }
        }
        SignalView {
            now,
            fresh,
            fresh_nodes,
            expired_nodes,
            expired,
            gaps,
        }
    }

    /// The instant the view was built for.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// A fresh signal by exact key.
    pub fn fresh(&self, key: &str) -> Option<&'a Signal> {
        self.fresh.get(key).copied()
    }

    /// The latest signal by exact key, fresh or expired.
    pub fn latest(&self, key: &str) -> Option<&'a Signal> {
        self.fresh(key).or_else(|| {
            self.expired_nodes
                .get(key)
                .copied()
                .filter(|s| &*s.key == key)
        })
    }

    /// Every expired signal, unordered.
    pub fn expired_signals(&self) -> impl Iterator<Item = &'a Signal> + '_ {
        self.expired.iter().copied()
    }

    /// Every fresh signal, unordered.
    pub fn fresh_signals(&self) -> impl Iterator<Item = &'a Signal> + '_ {
        self.fresh.values().copied()
    }

    /// The current collection gaps.
    pub fn gaps(&self) -> &'a [SignalGap] {
        self.gaps
    }

    /// The first segment of `path` that no fresh signal provides (`None` when the whole path
    /// resolves to a fresh value or namespace). For `msgraph.mfa.x` with only `msgraph.ca.y`
    /// fresh: `Some("mfa")`.
    pub fn first_unresolved_segment<'p>(&self, path: &'p str) -> Option<&'p str> {
        if self.fresh_nodes.contains(path) {
            return None;
        }
        let mut start = 0;
        for node in key_nodes(path) {
            let end = node.len();
            if !self.fresh_nodes.contains(node) {
                return Some(&path[start..end]);
            }
            start = end + 1;
        }
        None
    }

    /// Why `key` (a signal key or a namespace) is not available to a rule:
    /// [`Undetected::Gap`] for the most specific gap covering it (with the expiry of its last
    /// value, if any), else [`Undetected::Stale`] when only an expired value exists, else
    /// [`Undetected::Missing`].
    pub fn missing_cause(&self, key: &str) -> Undetected {
        let gap = self
            .gaps
            .iter()
            .filter(|g| gap_covers(&g.prefix, key))
            .max_by_key(|g| g.prefix.len());
        let expired = self.expired_nodes.get(key).map(|s| Expiry {
            key: s.key.to_string(),
            expired_at: s.expires_at,
        });
        match (gap, expired) {
            (Some(g), expired) => Undetected::Gap {
                prefix: g.prefix.clone(),
                kind: g.kind.clone(),
                reason: g.reason.clone(),
                expired,
            },
            (None, Some(e)) => Undetected::Stale {
                key: e.key,
                expired_at: e.expired_at,
            },
            (None, None) => Undetected::Missing {
                key: key.to_string(),
            },
        }
    }
}

/// `true` when a gap prefix (ending in `.`) covers `key`: the key lies under it, or the key is
/// a namespace containing it.
fn gap_covers(prefix: &str, key: &str) -> bool {
    let bare = prefix.trim_end_matches('.');
    key == bare
        || key.starts_with(prefix)
        || (bare.starts_with(key) && bare.as_bytes().get(key.len()) == Some(&b'.'))
}

/// `a`, `a.b`, `a.b.c` for key `a.b.c` (slices of the key, no allocation).
fn key_nodes(key: &str) -> impl Iterator<Item = &str> {
    key.match_indices('.')
        .map(move |(i, _)| &key[..i])
        .chain(std::iter::once(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluation::testutil::{expired, fresh, gap, now};

    #[test]
    fn missing_cause_prefers_the_most_specific_gap_then_expiry() {
        let signals = [
            fresh("msgraph.ca.enabled_total", 1.0),
            expired("msgraph.mfa.registered_ratio", 0.5),
        ];
        let gaps = [
            gap("msgraph.", "unauthorized", "401"),
            gap("msgraph.mfa.", "forbidden", "403"),
        ];
        let expiry = Expiry {
            key: "msgraph.mfa.registered_ratio".into(),
            expired_at: now() - chrono::Duration::hours(1),
        };
        let view = SignalView::new(now(), &signals, &gaps);
        assert_eq!(
            view.missing_cause("msgraph.mfa.registered_ratio"),
            Undetected::Gap {
                prefix: "msgraph.mfa.".into(),
                kind: "forbidden".into(),
                reason: "403".into(),
                expired: Some(expiry.clone()),
            }
        );
        assert_eq!(
            view.missing_cause("msgraph.labels.total"),
            Undetected::Gap {
                prefix: "msgraph.".into(),
                kind: "unauthorized".into(),
                reason: "401".into(),
                expired: None,
            }
        );
        let view = SignalView::new(now(), &signals, &[]);
        assert_eq!(
            view.missing_cause("msgraph.mfa.registered_ratio"),
            Undetected::Stale {
                key: expiry.key,
                expired_at: expiry.expired_at,
            }
        );
        assert_eq!(
            view.missing_cause("msgraph.labels.total"),
            Undetected::Missing {
                key: "msgraph.labels.total".into()
            }
        );
    }

    #[test]
    fn gap_covers_keys_under_it_and_namespaces_above_it() {
        assert!(gap_covers("msgraph.mfa.", "msgraph.mfa.x"));
        assert!(gap_covers("msgraph.mfa.", "msgraph.mfa"));
        assert!(gap_covers("msgraph.mfa.", "msgraph"));
        assert!(!gap_covers("msgraph.mfa.", "msgraph.mfax"));
        assert!(!gap_covers("msgraph.mfa.", "msgraph.ca.x"));
    }

    #[test]
    fn lookups_by_freshness() {
        let signals = [
            fresh("a.b.c", 1.0),
            expired("a.d", true),
            // an older observation of a.b.c loses against the latest
            expired("a.b.c", 0.0),
        ];
        let view = SignalView::new(now(), &signals, &[]);
        assert!(view.fresh("a.b.c").is_some());
        assert!(view.fresh("a.d").is_none());
        assert_eq!(view.latest("a.d").map(|s| &*s.key), Some("a.d"));
        assert!(view.latest("a").is_none(), "a namespace is not a signal");
        assert_eq!(view.first_unresolved_segment("a.b.c"), None);
        assert_eq!(view.first_unresolved_segment("a.b"), None);
        assert_eq!(view.first_unresolved_segment("a.d.e"), Some("d"));
        assert_eq!(view.first_unresolved_segment("x.y"), Some("x"));
        assert_eq!(view.expired_signals().count(), 1);
        assert_eq!(view.fresh_signals().count(), 1);
    }
}
