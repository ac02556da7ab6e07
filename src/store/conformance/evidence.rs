//! Conformance checks of [`EvidenceStore`](crate::store::EvidenceStore) (evidence rows,
//! content-addressed blobs, withdrawal, corrections) and of the automatic evidence a poll
//! writes, run by the same harnesses as [`super::polls::CHECKS`]. Each check takes a freshly
//! migrated, empty store.
//!
//! Must not: be called on a production database (checks write `conformance-*` rows).

use chrono::{DateTime, TimeZone, Utc};

use super::{Check, CheckResult, ConformanceFailure, one_action_poll};
use crate::evaluation::{TestStatus, Transition};
use crate::model::InstanceScope;
use crate::model::evidence::sha256_hex;
use crate::signals::SignalValue;
use crate::store::{
    AuditFilter, AuditRecord, AutomaticEvidence, BlobRef, Evidence, EvidenceKind, NewEvidence,
    PollOutcome, PollRecord, Store,
};

/// Every evidence conformance check, in a stable order.
pub const EVIDENCE_CHECKS: &[Check] = &[
    Check {
        name: "evidence_rows_and_blobs_round_trip",
        run: |store| Box::pin(evidence_rows_and_blobs_round_trip(store)),
    },
    Check {
        name: "automatic_evidence_is_written_with_its_poll",
        run: |store| Box::pin(automatic_evidence_is_written_with_its_poll(store)),
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

fn audit_of(e: &Evidence) -> Vec<AuditRecord> {
    vec![AuditRecord {
        at: e.withdrawn_at.unwrap_or(e.uploaded_at),
        actor: e
            .withdrawn_by
            .clone()
            .unwrap_or_else(|| e.uploaded_by.clone()),
        action: if e.withdrawn_at.is_some() {
            "evidence.withdraw".into()
        } else {
            "evidence.add".into()
        },
        tenant: Some(e.scope.id().to_string()),
        group: None,
        object: format!("evidence:{}", e.id),
        field: None,
        old_value: None,
        new_value: Some(serde_json::json!({"name": e.name, "sha256": e.sha256})),
        request_id: None,
    }]
}

fn file(scope: &InstanceScope, name: &str, bytes: &[u8], minute: u32) -> NewEvidence {
    NewEvidence {
        scope: scope.clone(),
        action: "a.one".into(),
        kind: EvidenceKind::File,
        name: name.into(),
        media_type: Some("text/plain".into()),
        blob: Some(BlobRef {
            sha256: sha256_hex(bytes),
            size: bytes.len() as i64,
        }),
        uploaded_by: "token:1".into(),
        uploaded_at: at(minute),
        supersedes: None,
    }
}

/// Files and links come back whole with their ids, per instance and oldest first; the same
/// bytes are one blob; a correction marks the row it supersedes (only a row of its instance,
/// once); a withdrawal keeps the row and blob and happens once; every write has its audit row.
pub async fn evidence_rows_and_blobs_round_trip(store: &dyn Store) -> CheckResult {
    let scope = InstanceScope::Tenant("conformance-a".into());
    let other = InstanceScope::Group("conformance-eu".into());
    let bytes = "ünïcode evidence\n".as_bytes();
    let first = store
        .add_evidence(&file(&scope, "a.txt", bytes, 0), Some(bytes), &audit_of)
        .await?;
    let again = store
        .add_evidence(&file(&scope, "copy.txt", bytes, 1), Some(bytes), &audit_of)
        .await?;
    let link = NewEvidence {
        kind: EvidenceKind::Link,
        name: "https://intranet.example/ropa".into(),
        media_type: None,
        blob: None,
        ..file(&scope, "", b"", 2)
    };
    let link = store.add_evidence(&link, None, &audit_of).await?;
    let elsewhere = store
        .add_evidence(
            &file(&other, "b.txt", b"other", 3),
            Some(b"other"),
            &audit_of,
        )
        .await?;
    let listed = store.evidence_of(&scope, "a.one").await?;
    let want = vec![first.clone(), again.clone(), link.clone()];
    if listed != want {
        return Err(fail(format!(
            "instance evidence: expected {want:?}, got {listed:?}"
        )));
    }
    if store.evidence(elsewhere.id).await?.as_ref() != Some(&elsewhere) {
        return Err(fail("evidence(id) does not return the row".into()));
    }
    if first.sha256 != again.sha256 || first.size != Some(bytes.len() as i64) {
        return Err(fail(format!(
            "content address or size: {first:?} {again:?}"
        )));
    }
    let blob = store.evidence_blob(&sha256_hex(bytes)).await?;
    if blob.as_ref().and_then(|b| b.content.as_deref()) != Some(bytes) {
        return Err(fail(format!("blob: {blob:?}")));
    }
    // A blob kept outside the database: a row without content.
    let outside = file(&scope, "big.pdf", b"outside", 4);
    store.add_evidence(&outside, None, &audit_of).await?;
    let blob = store.evidence_blob(&sha256_hex(b"outside")).await?;
    if blob.as_ref().map(|b| (b.size, b.content.is_none())) != Some((7, true)) {
        return Err(fail(format!("blob kept outside: {blob:?}")));
    }
    // A correction supersedes a row of its instance, once.
    let correction = NewEvidence {
        supersedes: Some(first.id),
        ..file(&scope, "a-v2.txt", b"v2", 5)
    };
    let corrected = store
        .add_evidence(&correction, Some(b"v2"), &audit_of)
        .await?;
    let old = store.evidence(first.id).await?;
    if old.and_then(|o| o.superseded_by) != Some(corrected.id) {
        return Err(fail(
            "the corrected row does not name its correction".into(),
        ));
    }
    for bad in [first.id, elsewhere.id, 999_999] {
        let n = NewEvidence {
            supersedes: Some(bad),
            ..file(&scope, "x.txt", b"x", 6)
        };
        if store.add_evidence(&n, Some(b"x"), &audit_of).await.is_ok() {
            return Err(fail(format!("superseding {bad} was accepted")));
        }
    }
    if store.evidence_blob(&sha256_hex(b"x")).await?.is_some() {
        return Err(fail("a refused correction wrote its blob".into()));
    }
    // Invalid input writes nothing.
    let mut lying = file(&scope, "l.txt", b"abc", 7);
    lying.blob = Some(BlobRef {
        sha256: "not-a-hash".into(),
        size: 3,
    });
    if store
        .add_evidence(&lying, Some(b"abc"), &audit_of)
        .await
        .is_ok()
    {
        return Err(fail("a malformed content address was accepted".into()));
    }
    // Withdrawal: once; the row and blob stay.
    if !store
        .withdraw_evidence(again.id, "token:2", at(8), &audit_of)
        .await?
    {
        return Err(fail("withdraw returned false".into()));
    }
    if store
        .withdraw_evidence(again.id, "token:2", at(9), &audit_of)
        .await?
    {
        return Err(fail("a second withdrawal returned true".into()));
    }
    if store
        .withdraw_evidence(999_999, "token:2", at(9), &audit_of)
        .await?
    {
        return Err(fail("withdrawing a missing row returned true".into()));
    }
    let withdrawn = store.evidence(again.id).await?;
    match withdrawn {
        Some(w)
            if w.withdrawn_at == Some(at(8))
                && w.withdrawn_by.as_deref() == Some("token:2")
                && w.sha256 == again.sha256 => {}
        other => return Err(fail(format!("withdrawn row: {other:?}"))),
    }
    if store.evidence_blob(&sha256_hex(bytes)).await?.is_none() {
        return Err(fail("the blob of a withdrawn row is gone".into()));
    }
    let verbs: Vec<String> = store
        .audit_entries(&AuditFilter::default(), 100)
        .await?
        .into_iter()
        .map(|e| format!("{} {}", e.record.action, e.record.object))
        .collect();
    let want: Vec<String> = [
        format!("evidence.add evidence:{}", first.id),
        format!("evidence.add evidence:{}", again.id),
        format!("evidence.add evidence:{}", link.id),
        format!("evidence.add evidence:{}", elsewhere.id),
        format!("evidence.add evidence:{}", elsewhere.id + 1),
        format!("evidence.add evidence:{}", corrected.id),
        format!("evidence.withdraw evidence:{}", again.id),
    ]
    .into();
    if verbs != want {
        return Err(fail(format!(
            "audit rows: expected {want:?}, got {verbs:?}"
        )));
    }
    Ok(())
}

/// A poll's automatic evidence lands with the poll: the blob, an automatic evidence row of the
/// tenant's instance and the address on the transition; the same document twice is one blob;
/// a document whose address is wrong rejects the whole poll.
pub async fn automatic_evidence_is_written_with_its_poll(store: &dyn Store) -> CheckResult {
    let tenant = "conformance-auto";
    let eval = one_action_poll(tenant, 0);
    let signals = vec![(
        std::sync::Arc::<str>::from("msgraph.x"),
        SignalValue::Bool(true),
    )];
    let transition = Transition {
        action_id: "a.passed".into(),
        from_status: None,
        to_status: TestStatus::Passed,
        from_credit: None,
        to_credit: 1.0,
        points_achieved: 27.0,
        points_possible: 27.0,
        reason: None,
        signals: signals.clone(),
        at: eval.evaluated_at,
    };
    let doc = crate::model::evidence::automatic_document(
        "a.passed",
        "msgraph.x",
        TestStatus::Passed,
        None,
        &signals,
    );
    let evidence = vec![AutomaticEvidence {
        action_id: "a.passed".into(),
        sha256: sha256_hex(&doc),
        content: doc.clone(),
    }];
    let record = |eval, transitions, evidence| PollRecord {
        tenant,
        connector: "msgraph",
        started_at: at(0),
        finished_at: at(0),
        outcome: PollOutcome::Success,
        signals: &[],
        gaps: &[],
        evaluation: eval,
        transitions,
        assessments: &[],
        alerts: Default::default(),
        evidence,
        after_start: false,
    };
    let mut wrong = evidence.clone();
    wrong[0].sha256 = sha256_hex(b"something else");
    if store
        .record_poll(&record(&eval, std::slice::from_ref(&transition), &wrong))
        .await
        .is_ok()
    {
        return Err(fail(
            "a poll with a wrong content address was stored".into(),
        ));
    }
    if !store.recent_polls(tenant, 10).await?.is_empty() {
        return Err(fail("the rejected poll left a poll row".into()));
    }
    store
        .record_poll(&record(&eval, std::slice::from_ref(&transition), &evidence))
        .await?;
    let rows = store.transitions(tenant, Some("a.passed"), None).await?;
    if rows.len() != 1 || rows[0].evidence_sha256.as_deref() != Some(evidence[0].sha256.as_str()) {
        return Err(fail(format!("transition evidence: {rows:?}")));
    }
    let scope = InstanceScope::Tenant(tenant.into());
    let listed = store.evidence_of(&scope, "a.passed").await?;
    match listed.as_slice() {
        [e] if e.kind == EvidenceKind::Automatic
            && e.sha256 == rows[0].evidence_sha256
            && e.uploaded_by == "poll:msgraph"
            && e.uploaded_at == eval.evaluated_at
            && e.media_type.as_deref() == Some("application/json") => {}
        other => return Err(fail(format!("automatic evidence rows: {other:?}"))),
    }
    let blob = store.evidence_blob(&evidence[0].sha256).await?;
    if blob.and_then(|b| b.content) != Some(doc) {
        return Err(fail("the automatic evidence blob differs".into()));
    }
    // The same document in a later poll: a second row, still one blob.
    let later = one_action_poll(tenant, 5);
    let mut t2 = transition.clone();
    t2.from_status = Some(TestStatus::FailedHighRisk);
    t2.at = later.evaluated_at;
    store
        .record_poll(&record(&later, std::slice::from_ref(&t2), &evidence))
        .await?;
    let listed = store.evidence_of(&scope, "a.passed").await?;
    if listed.len() != 2 || listed[0].sha256 != listed[1].sha256 {
        return Err(fail(format!("second poll: {listed:?}")));
    }
    Ok(())
}
