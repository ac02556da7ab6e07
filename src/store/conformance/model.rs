//! Conformance checks of [`ModelStore`](crate::store::ModelStore) (templates, manual
//! statuses), run by the same harnesses as [`super::polls::CHECKS`]. Each check takes a freshly
//! migrated, empty store.
//!
//! Must not: be called on a production database (checks write `conformance-*` records).

use chrono::{DateTime, TimeZone, Utc};

use super::{Check, CheckResult, ConformanceFailure};
use crate::evaluation::{ImplementationStatus, TestStatus};
use crate::model::report::TestingSource;
use crate::model::template::{
    ImplementationType, Responsibility, Template, TemplateAction, TemplateControl,
};
use crate::model::{InstanceScope, ManualStatus};
use crate::store::Store;

/// Every model conformance check, in a stable order.
pub const MODEL_CHECKS: &[Check] = &[
    Check {
        name: "templates_round_trip_and_replace",
        run: |store| Box::pin(templates_round_trip_and_replace(store)),
    },
    Check {
        name: "manual_statuses_round_trip_and_replace",
        run: |store| Box::pin(manual_statuses_round_trip_and_replace(store)),
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

fn template(id: &str, points: u32) -> Template {
    Template {
        id: id.to_string(),
        title: format!("Template {id}"),
        product: "Microsoft 365".to_string(),
        certification: "Test certification".to_string(),
        in_scope_services: vec!["Microsoft Entra ID".to_string()],
        controls: vec![TemplateControl {
            id: "C-1".to_string(),
            family: "Family".to_string(),
            title: "Control ünïcode".to_string(),
            description: "Line one\nline two".to_string(),
            actions: vec!["doc.policy".to_string()],
        }],
        actions: vec![TemplateAction {
            id: "doc.policy".to_string(),
            title: "Maintain a policy".to_string(),
            implementation_type: ImplementationType::Documentation,
            points,
            responsibility: Responsibility::Provider,
            description_title: "Why".to_string(),
            description: "Because.".to_string(),
            guidance: String::new(),
            evidence: String::new(),
        }],
    }
}

/// Saved templates come back whole, sorted by id; saving an id again replaces it; deleting
/// reports whether something was deleted.
pub async fn templates_round_trip_and_replace(store: &dyn Store) -> CheckResult {
    store.save_template(&template("b", 3), at(0)).await?;
    store.save_template(&template("a", 3), at(0)).await?;
    store.save_template(&template("b", 9), at(1)).await?;
    let list = store.list_templates().await?.templates;
    let want = vec![template("a", 3), template("b", 9)];
    if list != want {
        return Err(fail(format!("templates: expected {want:?}, got {list:?}")));
    }
    if !store.delete_template("a").await? {
        return Err(fail("delete_template(a) returned false".to_string()));
    }
    if store.delete_template("a").await? {
        return Err(fail("second delete_template(a) returned true".to_string()));
    }
    let ids: Vec<String> = store
        .list_templates()
        .await?
        .templates
        .into_iter()
        .map(|t| t.id)
        .collect();
    if ids != ["b"] {
        return Err(fail(format!("after delete: {ids:?}")));
    }
    Ok(())
}

/// Manual statuses round-trip every field; `(scope, action)` is the key (a tenant and a group
/// of the same id are different scopes); saving again replaces the record.
pub async fn manual_statuses_round_trip_and_replace(store: &dyn Store) -> CheckResult {
    let tenant = InstanceScope::Tenant("conformance-x".to_string());
    let group = InstanceScope::Group("conformance-x".to_string());
    let mut full = ManualStatus::new(
        tenant.clone(),
        "msgraph.mfa.all_users",
        TestingSource::Manual,
        at(0),
    );
    full.implementation_status = Some(ImplementationStatus::Planned);
    full.test_status = Some(TestStatus::FailedHighRisk);
    full.assigned_to = Some("alice@example.com".to_string());
    full.notes = Some("waiting for licences".to_string());
    full.implementation_date = Some(at(3));
    full.test_date = Some(at(4));
    full.test_notes = Some("tested on the pilot ünïcode".to_string());
    full.evidence = vec!["https://example.com/a".to_string(), "doc-42".to_string()];
    let bare = ManualStatus::new(
        group.clone(),
        "msgraph.mfa.all_users",
        TestingSource::Automatic,
        at(1),
    );
    let mut parent = ManualStatus::new(group.clone(), "ops.review", TestingSource::Parent, at(2));
    parent.parent = Some("doc.policy".to_string());
    for m in [&full, &bare, &parent] {
        store.save_manual_status(m, &[]).await?;
    }
    let got = store
        .manual_status(&tenant, "msgraph.mfa.all_users")
        .await?;
    if got.as_ref() != Some(&full) {
        return Err(fail(format!(
            "tenant record: expected {full:?}, got {got:?}"
        )));
    }
    let got = store.manual_status(&group, "msgraph.mfa.all_users").await?;
    if got.as_ref() != Some(&bare) {
        return Err(fail(format!(
            "group record: expected {bare:?}, got {got:?}"
        )));
    }
    if store.manual_status(&tenant, "ops.review").await?.is_some() {
        return Err(fail("a record leaked across scopes".to_string()));
    }
    let mut changed = full.clone();
    changed.testing_source = TestingSource::Automatic;
    changed.evidence.clear();
    changed.notes = None;
    changed.updated_at = at(5);
    store.save_manual_status(&changed, &[]).await?;
    let all = store.manual_statuses().await?;
    let want = vec![bare, parent, changed];
    if all != want {
        return Err(fail(format!("all records: expected {want:?}, got {all:?}")));
    }
    let mut invalid = ManualStatus::new(tenant, "", TestingSource::Manual, at(0));
    invalid.notes = Some("x".to_string());
    match store.save_manual_status(&invalid, &[]).await {
        Err(e) if e.kind() == "invalid" => Ok(()),
        other => Err(fail(format!(
            "empty action id: expected invalid, got {other:?}"
        ))),
    }
}
