//! A short-lived cache of verified API tokens, so that a request does not read the store for
//! its `pst_` token each time ([`crate::server::tokens::check`] consults it).
//!
//! An entry is the token's record as the store held it, the digest of its stored secret and
//! the instant its store read began. It is used only when the presented secret's digest equals
//! the cached one (compared in constant time) and the entry is younger than
//! [`TOKEN_CACHE_TTL`]; expiry is checked against the request's time on every use. Refusals
//! (unknown, wrong secret, revoked, expired, store unavailable) are never cached.
//!
//! Revocation bound: a revoked token is refused at most [`TOKEN_CACHE_TTL`] (5 s) after its
//! revocation, wherever it was made (`DELETE /api/v1/tokens/{id}`, `postured token revoke`,
//! another daemon on the same database), because no entry outlives the store read it was made
//! from by more than that (the read's start is recorded, so a read racing the revocation is
//! bounded too). A revocation through this server's route also drops the entry at once, so
//! there the next request reads the store. A reload (SIGHUP) starts with an empty cache.
//!
//! Bounded: at most [`MAX_CACHED_TOKENS`] entries; when full, entries past their lifetime are
//! dropped, and when none is, the cache is emptied.
//!
//! Must not: hold a secret (only the stored digest, which the store holds too); cache a
//! refusal.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use subtle::ConstantTimeEq;

use crate::store::ApiToken;

/// Longest time a verified token is used without reading the store again: the bound on how
/// long a revocation made by another process takes to reach this server.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);
/// Most tokens cached at once.
pub const MAX_CACHED_TOKENS: usize = 1024;

struct Entry {
    digest: [u8; 32],
    token: ApiToken,
    read_at: Instant,
}

/// Verified API tokens by id, each for at most [`TOKEN_CACHE_TTL`]; one per served router.
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache").finish_non_exhaustive()
    }
}

impl TokenCache {
    /// The cached record of token `id` when `digest` (SHA-256 of the presented secret) equals
    /// its stored digest and its store read began less than [`TOKEN_CACHE_TTL`] before `now`.
    pub fn get(&self, id: &str, digest: &[u8; 32], now: Instant) -> Option<ApiToken> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(id)?;
        let fresh = now.saturating_duration_since(entry.read_at) < TOKEN_CACHE_TTL;
        (fresh && bool::from(entry.digest[..].ct_eq(&digest[..]))).then(|| entry.token.clone())
    }

    /// Cache `token` (not revoked, verified against `digest`), read from the store from
    /// `read_at` on (the instant before the read, so that the entry never outlives a revocation
    /// made during the read by more than [`TOKEN_CACHE_TTL`]).
    pub fn insert(&self, digest: [u8; 32], token: ApiToken, read_at: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_CACHED_TOKENS && !entries.contains_key(&token.id) {
            entries.retain(|_, e| read_at.saturating_duration_since(e.read_at) < TOKEN_CACHE_TTL);
            if entries.len() >= MAX_CACHED_TOKENS {
                entries.clear();
            }
        }
        entries.insert(
            token.id.clone(),
            Entry {
                digest,
                token,
                read_at,
            },
        );
    }

    /// Record in the cached entry of `id` (if any) that its last use was written at `at`.
    pub fn used(&self, id: &str, at: DateTime<Utc>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = entries.get_mut(id) {
            e.token.last_used_at = Some(at);
        }
    }

    /// Forget token `id` (it was revoked).
    pub fn remove(&self, id: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// Number of cached tokens.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no token is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{Role, Scope};

    fn token(id: &str) -> ApiToken {
        ApiToken {
            id: id.to_string(),
            name: "ci".to_string(),
            role: Role::Reader,
            scope: Scope::default(),
            created_at: Utc::now(),
            created_by: "api_token".to_string(),
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
        }
    }

    /// An entry serves only its own secret's digest, only for TOKEN_CACHE_TTL after its read
    /// began, and not after it is removed.
    #[test]
    fn an_entry_serves_its_digest_for_the_ttl_until_removed() {
        let cache = TokenCache::default();
        let t0 = Instant::now();
        cache.insert([1; 32], token("a"), t0);
        assert_eq!(cache.get("a", &[1; 32], t0).map(|t| t.id), Some("a".into()));
        let almost = t0 + TOKEN_CACHE_TTL - Duration::from_millis(1);
        assert!(cache.get("a", &[1; 32], almost).is_some());
        assert!(cache.get("a", &[1; 32], t0 + TOKEN_CACHE_TTL).is_none());
        assert!(cache.get("a", &[2; 32], t0).is_none(), "another secret");
        assert!(cache.get("b", &[1; 32], t0).is_none(), "another id");
        let at = Utc::now();
        cache.used("a", at);
        assert_eq!(cache.get("a", &[1; 32], t0).unwrap().last_used_at, Some(at));
        cache.remove("a");
        assert!(cache.get("a", &[1; 32], t0).is_none(), "removed");
    }

    /// At most MAX_CACHED_TOKENS entries: a full cache drops its stale entries, else empties.
    #[test]
    fn the_cache_is_bounded() {
        let cache = TokenCache::default();
        let t0 = Instant::now();
        for i in 0..MAX_CACHED_TOKENS {
            cache.insert([0; 32], token(&format!("{i:016x}")), t0);
        }
        assert_eq!(cache.len(), MAX_CACHED_TOKENS);
        cache.insert([0; 32], token("new"), t0);
        assert_eq!(cache.len(), 1, "none stale: emptied, then the new one");
        let later = t0 + TOKEN_CACHE_TTL;
        for i in 0..MAX_CACHED_TOKENS - 2 {
            cache.insert([0; 32], token(&format!("{i:016x}")), later);
        }
        cache.insert([0; 32], token("last"), later);
        cache.insert([0; 32], token("over"), later);
        assert_eq!(
            cache.len(),
            MAX_CACHED_TOKENS,
            "the stale entry made room for one"
        );
        assert!(cache.get("new", &[0; 32], later).is_none());
        assert!(cache.get("over", &[0; 32], later).is_some());
    }
}
