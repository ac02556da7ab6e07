//! Conformance checks of [`TokenStore`](crate::store::TokenStore) (API tokens), run by the same
//! harnesses as [`super::polls::CHECKS`]. Each check takes a freshly migrated, empty store.
//!
//! Must not: be called on a production database (checks write `conformance-*` tokens).

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::{Check, CheckResult, ConformanceFailure};
use crate::access::{Role, Scope};
use crate::store::{ApiToken, AuditFilter, AuditRecord, Store, StoreError, StoredToken};

/// Every token conformance check, in a stable order.
pub const TOKEN_CHECKS: &[Check] = &[
    Check {
        name: "tokens_round_trip_without_their_digest_in_listings",
        run: |store| Box::pin(tokens_round_trip_without_their_digest_in_listings(store)),
    },
    Check {
        name: "token_ids_are_never_replaced",
        run: |store| Box::pin(token_ids_are_never_replaced(store)),
    },
    Check {
        name: "revocation_keeps_its_first_instant",
        run: |store| Box::pin(revocation_keeps_its_first_instant(store)),
    },
    Check {
        name: "token_changes_commit_with_their_audit_rows",
        run: |store| Box::pin(token_changes_commit_with_their_audit_rows(store)),
    },
    Check {
        name: "last_use_is_written_at_most_once_per_interval",
        run: |store| Box::pin(last_use_is_written_at_most_once_per_interval(store)),
    },
];

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .unwrap_or_default()
        + Duration::minutes(minute)
}

fn fail(message: String) -> ConformanceFailure {
    ConformanceFailure(message)
}

fn token(id: &str, minute: i64, scope: Scope) -> StoredToken {
    let mut secret_sha256 = [0u8; 32];
    for (i, b) in secret_sha256.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(7) ^ id.len() as u8;
    }
    StoredToken {
        token: ApiToken {
            id: id.to_string(),
            name: format!("conformance {id} ünïcode"),
            role: Role::Assessor,
            scope,
            created_at: at(minute),
            created_by: "cli:conformance".to_string(),
            expires_at: Some(at(minute + 90 * 24 * 60)),
            revoked_at: None,
            last_used_at: None,
        },
        secret_sha256,
    }
}

fn scoped() -> Scope {
    Scope {
        tenants: Some(["conformance-a".to_string(), "conformance-b".to_string()].into()),
        groups: Some([].into()),
    }
}

/// A created token comes back whole by id (scope sets, instants, digest); the listing holds
/// every token oldest first, as metadata; an unknown id is `None`.
pub async fn tokens_round_trip_without_their_digest_in_listings(store: &dyn Store) -> CheckResult {
    let later = token("conformance-2", 5, Scope::default());
    let mut first = token("conformance-1", 1, scoped());
    first.token.expires_at = None;
    first.token.role = Role::Administrator;
    store.create_token(&later, &[]).await?;
    store.create_token(&first, &[]).await?;
    for want in [&first, &later] {
        let got = store.token(&want.token.id).await?;
        if got.as_ref() != Some(want) {
            return Err(fail(format!(
                "token {}: expected {want:?}, got {got:?}",
                want.token.id
            )));
        }
    }
    let listed = store.tokens().await?;
    if listed != vec![first.token.clone(), later.token.clone()] {
        return Err(fail(format!("listing: got {listed:?}")));
    }
    if let Some(t) = store.token("conformance-none").await? {
        return Err(fail(format!("unknown id returned {t:?}")));
    }
    Ok(())
}

/// Creating an id that exists is refused as invalid and leaves the stored token as it was;
/// a token without a name is refused.
pub async fn token_ids_are_never_replaced(store: &dyn Store) -> CheckResult {
    let original = token("conformance-1", 1, Scope::default());
    store.create_token(&original, &[]).await?;
    let mut other = token("conformance-1", 2, scoped());
    other.secret_sha256 = [0xAB; 32];
    match store.create_token(&other, &[]).await {
        Err(StoreError::Invalid(_)) => {}
        r => return Err(fail(format!("duplicate id: expected invalid, got {r:?}"))),
    }
    let got = store.token("conformance-1").await?;
    if got.as_ref() != Some(&original) {
        return Err(fail(format!("duplicate id replaced the token: {got:?}")));
    }
    let mut unnamed = token("conformance-2", 1, Scope::default());
    unnamed.token.name = " ".to_string();
    if !matches!(
        store.create_token(&unnamed, &[]).await,
        Err(StoreError::Invalid(_))
    ) {
        return Err(fail("a token without a name was accepted".to_string()));
    }
    Ok(())
}

/// Revoking is `true` once, then `false`; the first instant stays; an unknown id is `false`.
pub async fn revocation_keeps_its_first_instant(store: &dyn Store) -> CheckResult {
    store
        .create_token(&token("conformance-1", 1, Scope::default()), &[])
        .await?;
    if !store.revoke_token("conformance-1", at(10), &[]).await? {
        return Err(fail("first revocation returned false".to_string()));
    }
    if store.revoke_token("conformance-1", at(20), &[]).await? {
        return Err(fail("second revocation returned true".to_string()));
    }
    if store.revoke_token("conformance-none", at(20), &[]).await? {
        return Err(fail("revoking an unknown id returned true".to_string()));
    }
    let got = store.token("conformance-1").await?.map(|t| t.token);
    match got {
        Some(t) if t.revoked_at == Some(at(10)) && !t.is_active(at(11)) => Ok(()),
        other => Err(fail(format!("revoked token: got {other:?}"))),
    }
}

/// The last use is written when none is recorded or the recorded one is older than the
/// interval, and not otherwise.
pub async fn last_use_is_written_at_most_once_per_interval(store: &dyn Store) -> CheckResult {
    store
        .create_token(&token("conformance-1", 0, Scope::default()), &[])
        .await?;
    let minute = Duration::minutes(1);
    let seconds = |s: i64| at(1) + Duration::seconds(s);
    for (instant, written) in [
        (seconds(0), true),
        (seconds(30), false),
        (seconds(60), false),
        (seconds(61), true),
        (seconds(90), false),
    ] {
        let done = store.touch_token("conformance-1", instant, minute).await?;
        if done != written {
            return Err(fail(format!(
                "touch at {instant}: expected {written}, got {done}"
            )));
        }
    }
    let last = store
        .token("conformance-1")
        .await?
        .and_then(|t| t.token.last_used_at);
    if last != Some(seconds(61)) {
        return Err(fail(format!(
            "last use: expected {}, got {last:?}",
            seconds(61)
        )));
    }
    if store.touch_token("conformance-none", at(5), minute).await? {
        return Err(fail("touching an unknown id returned true".to_string()));
    }
    Ok(())
}

fn audit(action: &str, minute: i64) -> AuditRecord {
    AuditRecord {
        at: at(minute),
        actor: "cli:conformance".to_string(),
        action: action.to_string(),
        tenant: None,
        group: None,
        object: "token:conformance-1".to_string(),
        field: None,
        old_value: None,
        new_value: Some(serde_json::json!({"role": "assessor"})),
        request_id: None,
    }
}

/// Creating and revoking write their audit rows with them; a refused creation (an id that
/// exists) and a revocation that changes nothing write none.
pub async fn token_changes_commit_with_their_audit_rows(store: &dyn Store) -> CheckResult {
    let t = token("conformance-1", 1, Scope::default());
    store.create_token(&t, &[audit("token.create", 1)]).await?;
    if store
        .create_token(&t, &[audit("token.create", 2)])
        .await
        .is_ok()
    {
        return Err(fail("a duplicate id was accepted".to_string()));
    }
    store
        .revoke_token("conformance-1", at(3), &[audit("token.revoke", 3)])
        .await?;
    store
        .revoke_token("conformance-1", at(4), &[audit("token.revoke", 4)])
        .await?;
    let rows = store.audit_entries(&AuditFilter::default(), 100).await?;
    let got: Vec<(&str, DateTime<Utc>)> = rows
        .iter()
        .map(|e| (e.record.action.as_str(), e.record.at))
        .collect();
    if got != [("token.create", at(1)), ("token.revoke", at(3))] {
        return Err(fail(format!("audit rows: got {got:?}")));
    }
    Ok(())
}
