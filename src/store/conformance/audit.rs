//! Conformance checks of [`AuditStore`](crate::store::AuditStore) (the append-only audit log
//! and its atomicity with the manual status it records), run by the same harnesses as
//! [`super::polls::CHECKS`]. Each check takes a freshly migrated, empty store.
//!
//! Must not: be called on a production database (checks write `conformance-*` rows).

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

use super::{Check, CheckResult, ConformanceFailure};
use crate::model::report::TestingSource;
use crate::model::{InstanceScope, ManualStatus};
use crate::store::audit::AuditOrder;
use crate::store::{AuditFilter, AuditRecord, Store};

/// Every audit conformance check, in a stable order.
pub const AUDIT_CHECKS: &[Check] = &[
    Check {
        name: "audit_rows_round_trip_filtered_and_paged",
        run: |store| Box::pin(audit_rows_round_trip_filtered_and_paged(store)),
    },
    Check {
        name: "audit_rows_of_an_object_newest_first_by_keyset",
        run: |store| Box::pin(audit_rows_of_an_object_newest_first_by_keyset(store)),
    },
    Check {
        name: "audit_rows_commit_with_their_manual_status",
        run: |store| Box::pin(audit_rows_commit_with_their_manual_status(store)),
    },
];

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, minute, 0)
        .single()
        .unwrap_or_default()
}

fn fail(message: String) -> ConformanceFailure {
    ConformanceFailure(message)
}

fn record(minute: u32, actor: &str, action: &str, tenant: Option<&str>) -> AuditRecord {
    AuditRecord {
        at: at(minute),
        actor: actor.to_string(),
        action: action.to_string(),
        tenant: tenant.map(str::to_string),
        group: None,
        object: "msgraph.mfa.all_users".to_string(),
        field: Some("notes".to_string()),
        old_value: Some(json!(null)),
        new_value: Some(json!({"text": "ünïcode \"quoted\"", "n": [1, 2.5]})),
        request_id: Some(format!("req-{minute}")),
    }
}

/// Appended rows come back whole, by increasing id; each filter (tenant, group, verb, actor,
/// time range) and the cursor select exactly the matching rows.
pub async fn audit_rows_round_trip_filtered_and_paged(store: &dyn Store) -> CheckResult {
    let mut grouped = record(3, "cli:ana", "action.update", None);
    grouped.group = Some("conformance-eu".to_string());
    grouped.old_value = None;
    let records = vec![
        record(0, "token:1", "action.update", Some("conformance-a")),
        record(1, "oidc:bob", "evidence.add", Some("conformance-a")),
        record(2, "token:1", "action.update", Some("conformance-b")),
        grouped,
    ];
    store.append_audit(&records[..2]).await?;
    store.append_audit(&records[2..]).await?;
    store.append_audit(&[]).await?;
    let all = store.audit_entries(&AuditFilter::default(), 100).await?;
    let got: Vec<AuditRecord> = all.iter().map(|e| e.record.clone()).collect();
    if got != records {
        return Err(fail(format!("expected {records:?}, got {got:?}")));
    }
    if !all.windows(2).all(|w| w[0].id < w[1].id) {
        return Err(fail("ids do not increase with insertion".to_string()));
    }
    let minutes = |filter: AuditFilter, limit: u32| async move {
        let rows = store.audit_entries(&filter, limit).await?;
        Ok::<Vec<String>, ConformanceFailure>(
            rows.into_iter()
                .filter_map(|e| e.record.request_id)
                .collect(),
        )
    };
    let cases: Vec<(AuditFilter, u32, Vec<&str>)> = vec![
        (
            AuditFilter {
                tenant: Some("conformance-a".into()),
                ..AuditFilter::default()
            },
            100,
            vec!["req-0", "req-1"],
        ),
        (
            AuditFilter {
                group: Some("conformance-eu".into()),
                ..AuditFilter::default()
            },
            100,
            vec!["req-3"],
        ),
        (
            AuditFilter {
                action: Some("action.update".into()),
                actor: Some("token:1".into()),
                ..AuditFilter::default()
            },
            100,
            vec!["req-0", "req-2"],
        ),
        (
            AuditFilter {
                since: Some(at(1)),
                until: Some(at(3)),
                ..AuditFilter::default()
            },
            100,
            vec!["req-1", "req-2"],
        ),
        (AuditFilter::default(), 2, vec!["req-0", "req-1"]),
        (
            AuditFilter {
                after: Some(all[1].id),
                ..AuditFilter::default()
            },
            2,
            vec!["req-2", "req-3"],
        ),
        (
            AuditFilter {
                after: Some(all[3].id),
                ..AuditFilter::default()
            },
            2,
            vec![],
        ),
    ];
    for (filter, limit, want) in cases {
        let got = minutes(filter.clone(), limit).await?;
        if got != want {
            return Err(fail(format!(
                "{filter:?} (limit {limit}): expected {want:?}, got {got:?}"
            )));
        }
    }
    let mut bad = record(4, " ", "action.update", None);
    match store
        .append_audit(&[record(4, "x", "y", None), bad.clone()])
        .await
    {
        Err(e) if e.kind() == "invalid" => {}
        other => {
            return Err(fail(format!(
                "blank actor: expected invalid, got {other:?}"
            )));
        }
    }
    bad.actor = "a".repeat(513);
    if store.append_audit(&[bad]).await.is_ok() {
        return Err(fail("an actor of 513 characters was accepted".to_string()));
    }
    let n = store
        .audit_entries(&AuditFilter::default(), 100)
        .await?
        .len();
    if n != 4 {
        return Err(fail(format!("a refused append wrote rows: {n} rows")));
    }
    Ok(())
}

/// The object filter selects one action's rows among others; newest first returns them by
/// decreasing id, paged on with `before` (the last id seen), and combines with the other
/// filters and with `after`.
pub async fn audit_rows_of_an_object_newest_first_by_keyset(store: &dyn Store) -> CheckResult {
    let mut records = Vec::new();
    for minute in 0..12 {
        let mut r = record(minute, "token:1", "action.update", Some("conformance-a"));
        r.object = if minute % 3 == 0 {
            "conformance.wanted".to_string()
        } else {
            format!("conformance.other{minute}")
        };
        if minute == 9 {
            r.tenant = Some("conformance-b".to_string());
        }
        records.push(r);
    }
    store.append_audit(&records).await?;
    let ids = |rows: Vec<crate::store::AuditEntry>| -> Vec<String> {
        rows.into_iter()
            .filter_map(|e| e.record.request_id)
            .collect()
    };
    let wanted = AuditFilter {
        object: Some("conformance.wanted".into()),
        ..AuditFilter::default()
    };
    let oldest = store.audit_entries(&wanted, 100).await?;
    let got = ids(oldest.clone());
    if got != ["req-0", "req-3", "req-6", "req-9"] {
        return Err(fail(format!("object filter, oldest first: got {got:?}")));
    }
    let newest = AuditFilter {
        order: AuditOrder::NewestFirst,
        ..wanted.clone()
    };
    let first = store.audit_entries(&newest, 2).await?;
    let last_id = first.last().map(|e| e.id);
    let got = ids(first);
    if got != ["req-9", "req-6"] {
        return Err(fail(format!("newest first, first page: got {got:?}")));
    }
    let next = AuditFilter {
        before: last_id,
        ..newest.clone()
    };
    let got = ids(store.audit_entries(&next, 2).await?);
    if got != ["req-3", "req-0"] {
        return Err(fail(format!("newest first, second page: got {got:?}")));
    }
    let cases: Vec<(AuditFilter, Vec<&str>)> = vec![
        (
            AuditFilter {
                tenant: Some("conformance-a".into()),
                ..newest.clone()
            },
            vec!["req-6", "req-3", "req-0"],
        ),
        (
            AuditFilter {
                after: Some(oldest[0].id),
                before: Some(oldest[3].id),
                ..newest.clone()
            },
            vec!["req-6", "req-3"],
        ),
        (
            AuditFilter {
                before: Some(oldest[0].id),
                ..newest.clone()
            },
            vec![],
        ),
    ];
    for (filter, want) in cases {
        let got = ids(store.audit_entries(&filter, 100).await?);
        if got != want {
            return Err(fail(format!("{filter:?}: expected {want:?}, got {got:?}")));
        }
    }
    let every_newest = AuditFilter {
        order: AuditOrder::NewestFirst,
        ..AuditFilter::default()
    };
    let got = ids(store.audit_entries(&every_newest, 100).await?);
    let want: Vec<String> = (0..12).rev().map(|m| format!("req-{m}")).collect();
    if got != want {
        return Err(fail(format!("every row newest first: got {got:?}")));
    }
    Ok(())
}

/// A manual status and its audit rows commit together: a refused audit row leaves neither.
pub async fn audit_rows_commit_with_their_manual_status(store: &dyn Store) -> CheckResult {
    let scope = InstanceScope::Tenant("conformance-a".to_string());
    let mut status = ManualStatus::new(scope.clone(), "a.one", TestingSource::Manual, at(0));
    status.notes = Some("first".to_string());
    let row = record(0, "token:1", "action.update", Some("conformance-a"));
    store
        .save_manual_status(&status, std::slice::from_ref(&row))
        .await?;
    let mut changed = status.clone();
    changed.notes = Some("second".to_string());
    let mut bad = row.clone();
    bad.object = String::new();
    if store
        .save_manual_status(&changed, &[row.clone(), bad])
        .await
        .is_ok()
    {
        return Err(fail(
            "a save with an invalid audit row succeeded".to_string(),
        ));
    }
    let stored = store.manual_status(&scope, "a.one").await?;
    if stored.as_ref() != Some(&status) {
        return Err(fail(format!(
            "the refused save changed the status: {stored:?}"
        )));
    }
    let rows = store.audit_entries(&AuditFilter::default(), 100).await?;
    if rows.len() != 1 || rows[0].record != row {
        return Err(fail(format!(
            "expected the first save's row only, got {rows:?}"
        )));
    }
    Ok(())
}
