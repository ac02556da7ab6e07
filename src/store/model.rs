//! Persistence of the Compliance Manager model: imported templates and manual action statuses.
//!
//! [`ModelStore`] is a supertrait of [`super::Store`], so every store (and `Arc<dyn Store>`)
//! has these methods. The SQL lives in `sqlite_model.rs` and `postgres_model.rs`
//! (migrations `0002_model.sql`); the row mapping shared by both backends is here. Conformance
//! checks: `conformance_model.rs`.
//!
//! Must not: decide statuses (the model does; the store keeps what it is given).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
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
    /// Every stored template, sorted by id.
    async fn list_templates(&self) -> Result<Vec<Template>, StoreError>;
    /// Delete a stored template; `true` when one was deleted.
    async fn delete_template(&self, id: &str) -> Result<bool, StoreError>;
    /// Insert or replace the manual status of one instance (keyed by `(scope, action)`).
    async fn save_manual_status(&self, status: &ManualStatus) -> Result<(), StoreError>;
    /// The manual status of one instance, if recorded.
    async fn manual_status(
        &self,
        scope: &InstanceScope,
        action: &str,
    ) -> Result<Option<ManualStatus>, StoreError>;
    /// Every manual status, sorted by (scope kind, scope id, action).
    async fn manual_statuses(&self) -> Result<Vec<ManualStatus>, StoreError>;
}

/// SQL column list of `manual_statuses`, in the order of [`ManualRow`].
pub(crate) const MANUAL_COLUMNS: &str = "scope_kind, scope_id, action_id, testing_source, \
    implementation_status, test_status, parent, assigned_to, notes, evidence, updated_at";

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
