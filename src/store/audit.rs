//! The append-only audit log: who changed what, when, from which value to which.
//!
//! [`AuditStore`] is a supertrait of [`super::Store`]. Rows are only ever inserted: the store
//! has no statement that updates or deletes one, and the migrations (`0007_audit_evidence.sql`)
//! add triggers that abort an `UPDATE` or `DELETE` (and, on PostgreSQL, a `TRUNCATE`) of
//! `audit_log`. A change and its audit rows commit together: the writes that record a change
//! (a manual status, an evidence row, a token) insert their rows with [`insert_audit`] inside
//! their own transaction; [`AuditStore::append_audit`] is for a change with nothing else to
//! write. The SQL is written once, with `$n` placeholders, over [`SqlStore<DB>`].
//!
//! Reading is filtered by tenant, group, verb, actor, object and a time range, ordered by id
//! oldest or newest first ([`AuditOrder`]), and paged by keyset (the last id seen, as
//! [`AuditFilter::after`] oldest first or [`AuditFilter::before`] newest first); at most
//! [`MAX_AUDIT_PAGE`] rows per call.
//!
//! Must not: update or delete an audit row; decide what is audited (callers do).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{ColumnIndex, Encode, Executor, QueryBuilder, Type};

use super::StoreError;
use super::backend::{Column, Param, SqlBackend, SqlStore};
use super::rows::{from_millis, to_millis};

/// Most rows one [`AuditStore::audit_entries`] call returns.
pub const MAX_AUDIT_PAGE: u32 = 1_000;

/// One change to append to the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRecord {
    /// When the change was made.
    pub at: DateTime<Utc>,
    /// Who made it: the principal's subject (`token:<id>`, `oidc:<sub>`, `api_token`,
    /// `cli:<os user>`).
    pub actor: String,
    /// Stable verb: `action.update`, `evidence.add`, `evidence.withdraw`, `token.create`, ...
    pub action: String,
    /// The tenant of the changed action instance, if tenant-scoped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The group of the changed action instance, if group-scoped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// What changed: an improvement action id (its manual status fields and its evidence),
    /// `token:<id>`.
    pub object: String,
    /// The field that changed (one row per field); `None` for a whole-object event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The value before (JSON); `None` when there was none.
    #[serde(default)]
    pub old_value: Option<serde_json::Value>,
    /// The value after (JSON); `None` when there is none.
    #[serde(default)]
    pub new_value: Option<serde_json::Value>,
    /// Id shared by the rows of one request, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// One stored audit row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Row id, increasing with insertion order (the paging cursor).
    pub id: i64,
    /// The change.
    #[serde(flatten)]
    pub record: AuditRecord,
}

/// The order of the rows [`AuditStore::audit_entries`] returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuditOrder {
    /// By increasing id (insertion order): page on with [`AuditFilter::after`].
    #[default]
    OldestFirst,
    /// By decreasing id (the newest row first): page on with [`AuditFilter::before`].
    NewestFirst,
}

/// Which audit rows to read, and in which order: every given criterion must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only rows of this tenant.
    pub tenant: Option<String>,
    /// Only rows of this group.
    pub group: Option<String>,
    /// Only this verb (`action.update`, ...).
    pub action: Option<String>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Only rows of this object (an improvement action id, `token:<id>`).
    pub object: Option<String>,
    /// Only rows at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Only rows before this instant.
    pub until: Option<DateTime<Utc>>,
    /// Only rows with an id greater than this (the cursor of [`AuditOrder::OldestFirst`]: the
    /// last id of the previous page).
    pub after: Option<i64>,
    /// Only rows with an id less than this (the cursor of [`AuditOrder::NewestFirst`]: the
    /// last id of the previous page).
    pub before: Option<i64>,
    /// The order of the rows (oldest first unless set).
    pub order: AuditOrder,
}

/// The append-only audit log. Implemented by every store backend.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Append `records` in one transaction (for a change with nothing else to write; a change
    /// that writes other rows appends its audit rows in its own transaction).
    async fn append_audit(&self, records: &[AuditRecord]) -> Result<(), StoreError>;
    /// Audit rows matching `filter`, in its [`AuditOrder`] (by increasing id unless set), at
    /// most `limit` (capped at [`MAX_AUDIT_PAGE`]).
    async fn audit_entries(
        &self,
        filter: &AuditFilter,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError>;
}

const INSERT_AUDIT: &str = "INSERT INTO audit_log (at, actor, action, tenant, group_id, object, \
    field, old_value, new_value, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
/// The one audit read for both backends, completed by [`audit_query`]: a `WHERE` term for each
/// criterion of the filter that is given (and none for the others), the order and the limit.
/// Only the given criteria are in the statement, so an index on them can serve it (a
/// `(<value> IS NULL OR <column> = <value>)` term is not indexable, and an unused bound such
/// as `id < <largest id>` leads SQLite's planner to a worse index): the dashboard's rows of one
/// action instance, newest first, are an index range of `audit_log_tenant_object` or
/// `audit_log_group_object` (migration 0009).
const SELECT_AUDIT: &str = "SELECT id, at, actor, action, tenant, group_id, object, field, \
    old_value, new_value, request_id FROM audit_log";

/// Most characters of an audit row's text fields (actor, verb, object, field, request id).
const MAX_AUDIT_TEXT: usize = 512;

/// One `audit_log` row as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
struct AuditDbRow {
    id: i64,
    at: i64,
    actor: String,
    action: String,
    tenant: Option<String>,
    group_id: Option<String>,
    object: String,
    field: Option<String>,
    old_value: Option<String>,
    new_value: Option<String>,
    request_id: Option<String>,
}

impl AuditDbRow {
    fn decode(self) -> Result<AuditEntry, StoreError> {
        const T: &str = "audit_log";
        let json = |v: Option<String>| -> Result<Option<serde_json::Value>, StoreError> {
            v.map(|text| {
                serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                    table: T,
                    detail: format!("row {}: a value is not JSON: {e}", self.id),
                })
            })
            .transpose()
        };
        Ok(AuditEntry {
            id: self.id,
            record: AuditRecord {
                at: from_millis(T, self.at)?,
                actor: self.actor,
                action: self.action,
                tenant: self.tenant,
                group: self.group_id,
                object: self.object,
                field: self.field,
                old_value: json(self.old_value)?,
                new_value: json(self.new_value)?,
                request_id: self.request_id,
            },
        })
    }
}

/// Check a record before it is written (nothing is written when one is refused).
fn check(record: &AuditRecord) -> Result<(), StoreError> {
    let texts = [
        ("actor", Some(record.actor.as_str())),
        ("action", Some(record.action.as_str())),
        ("object", Some(record.object.as_str())),
        ("field", record.field.as_deref()),
        ("request_id", record.request_id.as_deref()),
    ];
    for (name, text) in texts {
        let Some(text) = text else { continue };
        if name != "field" && name != "request_id" && text.trim().is_empty() {
            return Err(StoreError::Invalid(format!("an audit row needs an {name}")));
        }
        if text.chars().count() > MAX_AUDIT_TEXT {
            return Err(StoreError::Invalid(format!(
                "audit {name} longer than {MAX_AUDIT_TEXT} characters"
            )));
        }
    }
    Ok(())
}

/// Insert `records` on `conn` (inside the caller's transaction, so the change they record and
/// the rows commit together).
///
/// # Errors
///
/// [`StoreError::Invalid`] for an empty actor, verb or object or a text past 512 characters;
/// database errors.
pub(crate) async fn insert_audit<DB>(
    conn: &mut DB::Connection,
    records: &[AuditRecord],
) -> Result<(), StoreError>
where
    DB: SqlBackend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'s> &'s str: Encode<'s, DB> + Type<DB>,
    for<'s> Option<&'s str>: Encode<'s, DB> + Type<DB>,
    i64: Param<DB>,
{
    for r in records {
        check(r)?;
    }
    for r in records {
        let old = r.old_value.as_ref().map(serde_json::Value::to_string);
        let new = r.new_value.as_ref().map(serde_json::Value::to_string);
        sqlx::query(INSERT_AUDIT)
            .bind(to_millis(r.at))
            .bind(r.actor.as_str())
            .bind(r.action.as_str())
            .bind(r.tenant.as_deref())
            .bind(r.group.as_deref())
            .bind(r.object.as_str())
            .bind(r.field.as_deref())
            .bind(old.as_deref())
            .bind(new.as_deref())
            .bind(r.request_id.as_deref())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

#[async_trait]
impl<DB> AuditStore for SqlStore<DB>
where
    DB: SqlBackend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'s> &'s str: Encode<'s, DB> + Type<DB> + ColumnIndex<DB::Row>,
    for<'s> Option<&'s str>: Encode<'s, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    i64: Param<DB> + Column<DB>,
    Option<i64>: Param<DB>,
    f64: Param<DB> + Column<DB>,
    String: Column<DB>,
{
    async fn append_audit(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer()?.begin_with(DB::BEGIN_WRITE).await?;
        insert_audit::<DB>(&mut tx, records).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_entries(
        &self,
        filter: &AuditFilter,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = audit_query::<DB>(filter, limit)
            .build_query_as::<AuditDbRow>()
            .fetch_all(self.pool())
            .await?;
        rows.into_iter().map(AuditDbRow::decode).collect()
    }
}

/// The statement of [`AuditStore::audit_entries`] with its parameters bound (see
/// [`SELECT_AUDIT`]).
pub(crate) fn audit_query<DB>(filter: &AuditFilter, limit: u32) -> QueryBuilder<DB>
where
    DB: SqlBackend,
    for<'s> &'s str: Encode<'s, DB> + Type<DB>,
    i64: Param<DB>,
{
    let mut query = QueryBuilder::<DB>::new(SELECT_AUDIT);
    let mut joiner = " WHERE ";
    let texts = [
        ("tenant = ", filter.tenant.as_deref()),
        ("group_id = ", filter.group.as_deref()),
        ("action = ", filter.action.as_deref()),
        ("actor = ", filter.actor.as_deref()),
        ("object = ", filter.object.as_deref()),
    ];
    for (term, value) in texts {
        if let Some(value) = value {
            query.push(joiner).push(term).push_bind(value);
            joiner = " AND ";
        }
    }
    let bounds = [
        ("at >= ", filter.since.map(to_millis)),
        ("at < ", filter.until.map(to_millis)),
        ("id > ", filter.after),
        ("id < ", filter.before),
    ];
    for (term, value) in bounds {
        if let Some(value) = value {
            query.push(joiner).push(term).push_bind(value);
            joiner = " AND ";
        }
    }
    query
        .push(match filter.order {
            AuditOrder::OldestFirst => " ORDER BY id ASC LIMIT ",
            AuditOrder::NewestFirst => " ORDER BY id DESC LIMIT ",
        })
        .push_bind(i64::from(limit.min(MAX_AUDIT_PAGE)));
    query
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::sqlite::SqliteStore;

    /// The audit log is append-only in the database itself: the SQLite triggers abort an
    /// UPDATE and a DELETE, whoever sends them.
    #[tokio::test]
    async fn audit_rows_cannot_be_changed_or_deleted_on_sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("a.db").to_string_lossy(), 2)
            .await
            .expect("open");
        store.migrate().await.expect("migrate");
        let record = AuditRecord {
            at: Utc::now(),
            actor: "cli:ana".into(),
            action: "action.update".into(),
            tenant: None,
            group: Some("eu".into()),
            object: "iso.policy".into(),
            field: Some("test_status".into()),
            old_value: Some(serde_json::Value::Null),
            new_value: Some(serde_json::json!("passed")),
            request_id: None,
        };
        store.append_audit(&[record]).await.expect("append");
        for sql in [
            "UPDATE audit_log SET actor = 'someone else'",
            "DELETE FROM audit_log",
        ] {
            let err = sqlx::query(sql).execute(store.pool()).await.expect_err(sql);
            assert!(err.to_string().contains("append-only"), "{sql}: {err}");
        }
        let rows = store
            .audit_entries(&AuditFilter::default(), 10)
            .await
            .expect("read");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].record.actor, "cli:ana");
    }
}
