//! Persistence of the Compliance Manager model: imported templates and manual action statuses.
//!
//! [`ModelStore`] is a supertrait of [`super::Store`], so every store (and `Arc<dyn Store>`)
//! has these methods. Its one implementation, for both backends, is below: the SQL (tables of
//! the migrations `0002_model.sql`) is written once with `$n` placeholders over
//! [`SqlStore<DB>`], and so is the row mapping.
//!
//! Must not: decide statuses (the model does; the store keeps what it is given).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Encode, Executor, Type};

use super::StoreError;
use super::audit::{AuditRecord, insert_audit};
use super::backend::{Column, Param, SqlBackend, SqlStore};
use super::rows::{from_millis, to_millis};
use crate::evaluation::{ImplementationStatus, TestStatus};
use crate::model::report::TestingSource;
use crate::model::template::Template;
use crate::model::{InstanceScope, ManualStatus};

/// Templates and manual statuses. Implemented by every store backend.
#[async_trait]
pub trait ModelStore: Send + Sync {
    /// Insert or replace an imported template (keyed by `template.id`), stamped `now`.
    /// Validation is the caller's job (`TemplateRegistry::insert`). For
    /// `postured template import`: templates saved here are added to the registry at start-up
    /// (after the built-in and `[templates] dirs` ones, which win on an id clash).
    async fn save_template(
        &self,
        template: &Template,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Every stored template, sorted by id. Each row is decoded on its own: a row that no
    /// longer decodes (hand-edited, or written by an incompatible version) is returned in
    /// [`StoredTemplates::corrupt`] instead of failing the listing, so one bad row never keeps
    /// the daemon from starting; the caller warns and counts it.
    async fn list_templates(&self) -> Result<StoredTemplates, StoreError>;
    /// Delete a stored template; `true` when one was deleted.
    async fn delete_template(&self, id: &str) -> Result<bool, StoreError>;
    /// Insert or replace the manual status of one instance (keyed by `(scope, action)`) and
    /// append `audit` (the rows recording the change) in the same transaction: both commit or
    /// neither does.
    async fn save_manual_status(
        &self,
        status: &ManualStatus,
        audit: &[AuditRecord],
    ) -> Result<(), StoreError>;
    /// The manual status of one instance, if recorded.
    async fn manual_status(
        &self,
        scope: &InstanceScope,
        action: &str,
    ) -> Result<Option<ManualStatus>, StoreError>;
    /// Every manual status, sorted by (scope kind, scope id, action).
    async fn manual_statuses(&self) -> Result<Vec<ManualStatus>, StoreError>;
}

const UPSERT_TEMPLATE: &str = "INSERT INTO templates (id, body, updated_at) \
    VALUES ($1, $2, $3) \
    ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at";
const SELECT_TEMPLATES: &str = "SELECT id, body FROM templates ORDER BY id";
const DELETE_TEMPLATE: &str = "DELETE FROM templates WHERE id = $1";
const UPSERT_MANUAL: &str = "INSERT INTO manual_statuses (scope_kind, scope_id, action_id, \
    testing_source, implementation_status, test_status, parent, assigned_to, notes, evidence, \
    updated_at, implementation_date, test_date, test_notes) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
    ON CONFLICT (scope_kind, scope_id, action_id) DO UPDATE SET \
    testing_source = excluded.testing_source, \
    implementation_status = excluded.implementation_status, test_status = excluded.test_status, \
    parent = excluded.parent, assigned_to = excluded.assigned_to, notes = excluded.notes, \
    evidence = excluded.evidence, updated_at = excluded.updated_at, \
    implementation_date = excluded.implementation_date, test_date = excluded.test_date, \
    test_notes = excluded.test_notes";
const SELECT_MANUAL_ALL: &str = "SELECT scope_kind, scope_id, action_id, testing_source, \
    implementation_status, test_status, parent, assigned_to, notes, evidence, updated_at, \
    implementation_date, test_date, test_notes \
    FROM manual_statuses ORDER BY scope_kind, scope_id, action_id";
const SELECT_MANUAL_ONE: &str = "SELECT scope_kind, scope_id, action_id, testing_source, \
    implementation_status, test_status, parent, assigned_to, notes, evidence, updated_at, \
    implementation_date, test_date, test_notes \
    FROM manual_statuses WHERE scope_kind = $1 AND scope_id = $2 AND action_id = $3";

/// The stored templates: those that decode, and the rows that do not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredTemplates {
    /// The templates that decoded, sorted by id.
    pub templates: Vec<Template>,
    /// The rows that did not decode, sorted by id.
    pub corrupt: Vec<CorruptTemplate>,
}

/// A `templates` row whose body does not decode as a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptTemplate {
    /// The row's id.
    pub id: String,
    /// Why it does not decode (the decoder's message; no template text).
    pub problem: String,
}

/// One `manual_statuses` row as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ManualRow {
    pub scope_kind: String,
    pub scope_id: String,
    pub action_id: String,
    pub testing_source: String,
    pub implementation_status: Option<String>,
    pub test_status: Option<String>,
    pub parent: Option<String>,
    pub assigned_to: Option<String>,
    pub notes: Option<String>,
    pub evidence: String,
    pub updated_at: i64,
    pub implementation_date: Option<i64>,
    pub test_date: Option<i64>,
    pub test_notes: Option<String>,
}

/// One `templates` row as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct TemplateRow {
    pub id: String,
    pub body: String,
}

fn corrupt(table: &'static str, detail: String) -> StoreError {
    StoreError::Corrupt { table, detail }
}

/// Stable name of a testing source.
pub(crate) fn source_name(s: TestingSource) -> &'static str {
    match s {
        TestingSource::Automatic => "automatic",
        TestingSource::Manual => "manual",
        TestingSource::Parent => "parent",
    }
}

fn parse_source(s: &str) -> Option<TestingSource> {
    [
        TestingSource::Automatic,
        TestingSource::Manual,
        TestingSource::Parent,
    ]
    .into_iter()
    .find(|t| source_name(*t) == s)
}

impl ManualRow {
    /// Encode a record.
    pub(crate) fn encode(m: &ManualStatus) -> Result<ManualRow, StoreError> {
        if m.action.trim().is_empty() || m.scope.id().trim().is_empty() {
            return Err(StoreError::Invalid(
                "a manual status needs an action and a scope id".to_string(),
            ));
        }
        let evidence = serde_json::to_string(&m.evidence)
            .map_err(|e| StoreError::Invalid(format!("evidence: {e}")))?;
        Ok(ManualRow {
            scope_kind: m.scope.kind().to_string(),
            scope_id: m.scope.id().to_string(),
            action_id: m.action.clone(),
            testing_source: source_name(m.testing_source).to_string(),
            implementation_status: m.implementation_status.map(|s| s.as_str().to_string()),
            test_status: m.test_status.map(|s| s.as_str().to_string()),
            parent: m.parent.clone(),
            assigned_to: m.assigned_to.clone(),
            notes: m.notes.clone(),
            evidence,
            updated_at: to_millis(m.updated_at),
            implementation_date: m.implementation_date.map(to_millis),
            test_date: m.test_date.map(to_millis),
            test_notes: m.test_notes.clone(),
        })
    }

    /// Decode a stored row.
    pub(crate) fn decode(self) -> Result<ManualStatus, StoreError> {
        const T: &str = "manual_statuses";
        let scope = InstanceScope::from_parts(&self.scope_kind, &self.scope_id)
            .ok_or_else(|| corrupt(T, format!("unknown scope kind {:?}", self.scope_kind)))?;
        let testing_source = parse_source(&self.testing_source).ok_or_else(|| {
            corrupt(
                T,
                format!("unknown testing source {:?}", self.testing_source),
            )
        })?;
        let implementation_status = match &self.implementation_status {
            None => None,
            Some(s) => Some(
                ImplementationStatus::parse(s)
                    .ok_or_else(|| corrupt(T, format!("unknown implementation status {s:?}")))?,
            ),
        };
        let test_status = match &self.test_status {
            None => None,
            Some(s) => Some(
                TestStatus::parse(s)
                    .ok_or_else(|| corrupt(T, format!("unknown test status {s:?}")))?,
            ),
        };
        let evidence: Vec<String> = serde_json::from_str(&self.evidence)
            .map_err(|e| corrupt(T, format!("evidence is not a JSON list of strings: {e}")))?;
        Ok(ManualStatus {
            scope,
            action: self.action_id,
            testing_source,
            implementation_status,
            test_status,
            parent: self.parent,
            assigned_to: self.assigned_to,
            notes: self.notes,
            implementation_date: self
                .implementation_date
                .map(|ms| from_millis(T, ms))
                .transpose()?,
            test_notes: self.test_notes,
            test_date: self.test_date.map(|ms| from_millis(T, ms)).transpose()?,
            evidence,
            updated_at: from_millis(T, self.updated_at)?,
        })
    }
}

impl TemplateRow {
    /// Encode a template as its JSON body.
    pub(crate) fn encode(t: &Template) -> Result<String, StoreError> {
        if t.id.trim().is_empty() {
            return Err(StoreError::Invalid("a template needs an id".to_string()));
        }
        serde_json::to_string(t).map_err(|e| StoreError::Invalid(format!("template: {e}")))
    }

    /// Decode a stored template.
    pub(crate) fn decode(self) -> Result<Template, StoreError> {
        serde_json::from_str(&self.body)
            .map_err(|e| corrupt("templates", format!("template {}: {e}", self.id)))
    }
}

#[async_trait]
impl<DB> ModelStore for SqlStore<DB>
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
    async fn save_template(
        &self,
        template: &Template,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let body = TemplateRow::encode(template)?;
        sqlx::query(UPSERT_TEMPLATE)
            .bind(template.id.as_str())
            .bind(body.as_str())
            .bind(to_millis(now))
            .execute(self.writer()?)
            .await?;
        Ok(())
    }

    async fn list_templates(&self) -> Result<StoredTemplates, StoreError> {
        let rows = sqlx::query_as::<_, TemplateRow>(SELECT_TEMPLATES)
            .fetch_all(self.pool())
            .await?;
        let mut out = StoredTemplates::default();
        for row in rows {
            let id = row.id.clone();
            match row.decode() {
                Ok(t) => out.templates.push(t),
                Err(e) => out.corrupt.push(CorruptTemplate {
                    id,
                    problem: e.to_string(),
                }),
            }
        }
        Ok(out)
    }

    async fn delete_template(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(DELETE_TEMPLATE)
            .bind(id)
            .execute(self.writer()?)
            .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    async fn save_manual_status(
        &self,
        status: &ManualStatus,
        audit: &[AuditRecord],
    ) -> Result<(), StoreError> {
        let r = ManualRow::encode(status)?;
        let mut tx = self.writer()?.begin_with(DB::BEGIN_WRITE).await?;
        sqlx::query(UPSERT_MANUAL)
            .bind(r.scope_kind.as_str())
            .bind(r.scope_id.as_str())
            .bind(r.action_id.as_str())
            .bind(r.testing_source.as_str())
            .bind(r.implementation_status.as_deref())
            .bind(r.test_status.as_deref())
            .bind(r.parent.as_deref())
            .bind(r.assigned_to.as_deref())
            .bind(r.notes.as_deref())
            .bind(r.evidence.as_str())
            .bind(r.updated_at)
            .bind(r.implementation_date)
            .bind(r.test_date)
            .bind(r.test_notes.as_deref())
            .execute(&mut *tx)
            .await?;
        insert_audit::<DB>(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn manual_status(
        &self,
        scope: &InstanceScope,
        action: &str,
    ) -> Result<Option<ManualStatus>, StoreError> {
        sqlx::query_as::<_, ManualRow>(SELECT_MANUAL_ONE)
            .bind(scope.kind())
            .bind(scope.id())
            .bind(action)
            .fetch_optional(self.pool())
            .await?
            .map(ManualRow::decode)
            .transpose()
    }

    async fn manual_statuses(&self) -> Result<Vec<ManualStatus>, StoreError> {
        sqlx::query_as::<_, ManualRow>(SELECT_MANUAL_ALL)
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(ManualRow::decode)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::sqlite::SqliteStore;

    fn template(id: &str) -> Template {
        crate::model::template::one_control_template(id, &format!("Template {id}"), "C")
    }

    /// Issue 8 row 14 (the store's part): one stored template that no longer parses failed
    /// the whole listing, so the daemon refused to start. Rows are now decoded one by one and
    /// a bad one is returned as corrupt, beside the good ones.
    #[tokio::test]
    async fn a_corrupt_template_row_is_listed_apart_from_the_good_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path.to_string_lossy(), 2)
            .await
            .expect("open");
        store.migrate().await.expect("migrate");
        let now = chrono::Utc::now();
        for id in ["a", "b", "c"] {
            store.save_template(&template(id), now).await.expect("save");
        }
        for (id, body) in [("b", "{\"id\": \"b\", \"title\": "), ("c", "[1, 2]")] {
            sqlx::query("UPDATE templates SET body = $1 WHERE id = $2")
                .bind(body)
                .bind(id)
                .execute(store.pool())
                .await
                .expect("corrupted");
        }
        let listed = store
            .list_templates()
            .await
            .expect("the listing still works");
        assert_eq!(listed.templates, vec![template("a")]);
        let ids: Vec<&str> = listed.corrupt.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["b", "c"]);
        assert!(
            listed.corrupt[0].problem.contains("template b"),
            "{:?}",
            listed.corrupt
        );
    }
}
