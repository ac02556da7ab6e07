//! SQLite SQL of the Compliance Manager model: the [`ModelStore`] implementation (imported
//! templates, manual statuses; migration `migrations/sqlite/0002_model.sql`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use super::model::{MANUAL_COLUMNS, ManualRow, ModelStore, TemplateRow};
use super::rows::to_millis;
use super::sqlite::SqliteStore;
use crate::model::template::Template;
use crate::model::{InstanceScope, ManualStatus};

const UPSERT_TEMPLATE: &str = "INSERT INTO templates (id, body, updated_at) VALUES (?, ?, ?) \
    ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at";
const SELECT_TEMPLATES: &str = "SELECT id, body FROM templates ORDER BY id";
const DELETE_TEMPLATE: &str = "DELETE FROM templates WHERE id = ?";
const UPSERT_MANUAL: &str = "INSERT INTO manual_statuses (scope_kind, scope_id, action_id, \
    testing_source, implementation_status, test_status, parent, assigned_to, notes, evidence, \
    updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
    ON CONFLICT (scope_kind, scope_id, action_id) DO UPDATE SET \
    testing_source = excluded.testing_source, \
    implementation_status = excluded.implementation_status, test_status = excluded.test_status, \
    parent = excluded.parent, assigned_to = excluded.assigned_to, notes = excluded.notes, \
    evidence = excluded.evidence, updated_at = excluded.updated_at";

#[async_trait]
impl ModelStore for SqliteStore {
    async fn save_template(
        &self,
        template: &Template,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let body = TemplateRow::encode(template)?;
        sqlx::query(UPSERT_TEMPLATE)
            .bind(&template.id)
            .bind(body)
            .bind(to_millis(now))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn list_templates(&self) -> Result<Vec<Template>, StoreError> {
        sqlx::query_as::<_, TemplateRow>(SELECT_TEMPLATES)
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(TemplateRow::decode)
            .collect()
    }

    async fn delete_template(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(DELETE_TEMPLATE)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn save_manual_status(&self, status: &ManualStatus) -> Result<(), StoreError> {
        let r = ManualRow::encode(status)?;
        sqlx::query(UPSERT_MANUAL)
            .bind(r.scope_kind)
            .bind(r.scope_id)
            .bind(r.action_id)
            .bind(r.testing_source)
            .bind(r.implementation_status)
            .bind(r.test_status)
            .bind(r.parent)
            .bind(r.assigned_to)
            .bind(r.notes)
            .bind(r.evidence)
            .bind(r.updated_at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn manual_status(
        &self,
        scope: &InstanceScope,
        action: &str,
    ) -> Result<Option<ManualStatus>, StoreError> {
        let sql = format!(
            "SELECT {MANUAL_COLUMNS} FROM manual_statuses \
             WHERE scope_kind = ? AND scope_id = ? AND action_id = ?"
        );
        sqlx::query_as::<_, ManualRow>(sqlx::AssertSqlSafe(sql))
            .bind(scope.kind())
            .bind(scope.id())
            .bind(action)
            .fetch_optional(self.pool())
            .await?
            .map(ManualRow::decode)
            .transpose()
    }

    async fn manual_statuses(&self) -> Result<Vec<ManualStatus>, StoreError> {
        let sql = format!(
            "SELECT {MANUAL_COLUMNS} FROM manual_statuses ORDER BY scope_kind, scope_id, action_id"
        );
        sqlx::query_as::<_, ManualRow>(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(ManualRow::decode)
            .collect()
    }
}
