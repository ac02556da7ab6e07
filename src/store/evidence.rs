//! Evidence of action instances: metadata rows (`evidence`) and content-addressed blobs
//! (`evidence_blobs`, keyed by SHA-256), the [`EvidenceStore`] trait and its one implementation
//! for both backends (SQL written once, `$n` placeholders, over [`SqlStore<DB>`]).
//!
//! Evidence is never deleted: [`EvidenceStore::withdraw_evidence`] marks a row withdrawn (the
//! row and the blob stay), and a correction is a new row that names the one it supersedes.
//! Each write appends its audit rows in the same transaction. A blob is inserted once per
//! content address (`ON CONFLICT DO NOTHING`): the same bytes uploaded twice, or the same
//! source answer deciding two status changes, are kept once. Blob content may be held outside
//! the database (`[evidence] store = "directory"`): the row then has no content and the caller
//! keeps the bytes.
//!
//! The automatic evidence of a poll is written by `record_poll` ([`write_automatic`]) in the
//! poll's transaction, in multi-row statements; the poll's transitions carry its addresses.
//!
//! Must not: decide whether evidence may be withdrawn or what is audited (callers do); check
//! content types.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{ColumnIndex, Encode, Executor, Type};

use super::StoreError;
use super::audit::{AuditRecord, insert_audit};
use super::backend::{Column, Param, SqlBackend, SqlStore};
use super::batch::insert_rows;
use super::rows::{from_millis, to_millis};
use crate::model::InstanceScope;

/// What an evidence row holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// An uploaded file.
    File,
    /// A link (URL).
    Link,
    /// The source answer that decided an automatic status change.
    Automatic,
}

impl EvidenceKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::File => "file",
            EvidenceKind::Link => "link",
            EvidenceKind::Automatic => "automatic",
        }
    }

    fn parse(s: &str) -> Option<EvidenceKind> {
        [
            EvidenceKind::File,
            EvidenceKind::Link,
            EvidenceKind::Automatic,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One stored evidence row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Evidence {
    /// Row id.
    pub id: i64,
    /// The instance: tenant- or group-scoped.
    #[schema(value_type = Object)]
    pub scope: InstanceScope,
    /// Action id.
    pub action: String,
    /// File, link or automatic.
    pub kind: EvidenceKind,
    /// File name, the link's URL, or a label of automatic evidence.
    pub name: String,
    /// Media type of the content (files and automatic evidence).
    pub media_type: Option<String>,
    /// Size of the content in bytes.
    pub size: Option<i64>,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: Option<String>,
    /// Who added it (the principal's subject; `poll:<connector>` for automatic evidence).
    pub uploaded_by: String,
    /// When it was added.
    pub uploaded_at: DateTime<Utc>,
    /// When it was withdrawn, if it was.
    pub withdrawn_at: Option<DateTime<Utc>>,
    /// Who withdrew it.
    pub withdrawn_by: Option<String>,
    /// The evidence that corrects this one, if any.
    pub superseded_by: Option<i64>,
}

/// An evidence row to add.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvidence {
    /// The instance.
    pub scope: InstanceScope,
    /// Action id.
    pub action: String,
    /// File, link or automatic.
    pub kind: EvidenceKind,
    /// File name, URL or label.
    pub name: String,
    /// Media type of the content.
    pub media_type: Option<String>,
    /// The content's address and size, when there is content.
    pub blob: Option<BlobRef>,
    /// Who adds it.
    pub uploaded_by: String,
    /// When.
    pub uploaded_at: DateTime<Utc>,
    /// An evidence row of the same instance this one corrects.
    pub supersedes: Option<i64>,
}

/// A content address and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: i64,
}

/// A stored blob: its size and, when it is held in the database, its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    /// Size in bytes as recorded when it was written.
    pub size: i64,
    /// The bytes; `None` when they are held in the evidence directory.
    pub content: Option<Vec<u8>>,
}

/// The automatic evidence of one status change of a poll: the document's bytes and address,
/// for the transition of `action_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutomaticEvidence {
    /// The action whose transition this evidence decided.
    pub action_id: String,
    /// SHA-256 of `content`, lower-case hex.
    pub sha256: String,
    /// The canonical JSON document (`crate::model::evidence::automatic_document`).
    pub content: Vec<u8>,
}

/// Builds the audit rows of an evidence write from the row as stored (with its id).
pub type AuditOf<'a> = &'a (dyn Fn(&Evidence) -> Vec<AuditRecord> + Send + Sync);

/// Evidence rows and blobs. Implemented by every store backend.
#[async_trait]
pub trait EvidenceStore: Send + Sync {
    /// Add an evidence row (and its blob: `content` is the bytes to keep in the database, or
    /// `None` when the caller keeps them in the evidence directory) with the audit rows
    /// `audit` builds from the stored row, in one transaction. When `supersedes` names a row
    /// of the same instance not superseded yet, it is marked superseded by the new one;
    /// otherwise [`StoreError::Invalid`] and nothing is written.
    async fn add_evidence(
        &self,
        new: &NewEvidence,
        content: Option<&[u8]>,
        audit: AuditOf<'_>,
    ) -> Result<Evidence, StoreError>;
    /// One evidence row.
    async fn evidence(&self, id: i64) -> Result<Option<Evidence>, StoreError>;
    /// The evidence of one instance, oldest first (withdrawn rows included).
    async fn evidence_of(
        &self,
        scope: &InstanceScope,
        action: &str,
    ) -> Result<Vec<Evidence>, StoreError>;
    /// A blob by content address.
    async fn evidence_blob(&self, sha256: &str) -> Result<Option<StoredBlob>, StoreError>;
    /// Mark a row withdrawn by `by` at `at` (the row and blob stay), with the audit rows
    /// `audit` builds, in one transaction. `false` when it was already withdrawn or does not
    /// exist (nothing written then).
    async fn withdraw_evidence(
        &self,
        id: i64,
        by: &str,
        at: DateTime<Utc>,
        audit: AuditOf<'_>,
    ) -> Result<bool, StoreError>;
}

/// The columns of an evidence row, in [`EvidenceDbRow`]'s order (a macro, for `concat!`).
macro_rules! evidence_columns {
    () => {
        "SELECT id, scope_kind, scope_id, action_id, kind, name, media_type, size, sha256, \
        uploaded_by, uploaded_at, withdrawn_at, withdrawn_by, superseded_by FROM evidence "
    };
}
const INSERT_BLOB: &str = "INSERT INTO evidence_blobs (sha256, size, content, created_at) \
    VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO NOTHING";
const INSERT_EVIDENCE: &str = "INSERT INTO evidence (scope_kind, scope_id, action_id, kind, \
    name, media_type, size, sha256, uploaded_by, uploaded_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id";
const SUPERSEDE: &str = "UPDATE evidence SET superseded_by = $1 WHERE id = $2 \
    AND scope_kind = $3 AND scope_id = $4 AND action_id = $5 AND superseded_by IS NULL \
    AND id <> $1";
const WITHDRAW: &str = "UPDATE evidence SET withdrawn_at = $1, withdrawn_by = $2 \
    WHERE id = $3 AND withdrawn_at IS NULL";
const SELECT_BLOB: &str = "SELECT size, content FROM evidence_blobs WHERE sha256 = $1";
// The automatic evidence of a poll, in multi-row statements (`batch::insert_rows`).
const INSERT_BLOBS: &str = "INSERT INTO evidence_blobs (sha256, size, content, created_at) ";
const BLOB_CONFLICT: &str = " ON CONFLICT (sha256) DO NOTHING";
const INSERT_EVIDENCE_ROWS: &str = "INSERT INTO evidence (scope_kind, scope_id, action_id, \
    kind, name, media_type, size, sha256, uploaded_by, uploaded_at) ";

const SELECT_ONE: &str = concat!(evidence_columns!(), "WHERE id = $1");
const SELECT_INSTANCE: &str = concat!(
    evidence_columns!(),
    "WHERE scope_kind = $1 AND scope_id = $2 AND action_id = $3 ORDER BY id"
);

/// Most characters of an evidence name (a URL of 2,000 characters fits).
const MAX_STORED_NAME: usize = 2_048;

/// One `evidence` row as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
struct EvidenceDbRow {
    id: i64,
    scope_kind: String,
    scope_id: String,
    action_id: String,
    kind: String,
    name: String,
    media_type: Option<String>,
    size: Option<i64>,
    sha256: Option<String>,
    uploaded_by: String,
    uploaded_at: i64,
    withdrawn_at: Option<i64>,
    withdrawn_by: Option<String>,
    superseded_by: Option<i64>,
}

impl EvidenceDbRow {
    fn decode(self) -> Result<Evidence, StoreError> {
        const T: &str = "evidence";
        let corrupt = |detail: String| StoreError::Corrupt { table: T, detail };
        Ok(Evidence {
            scope: InstanceScope::from_parts(&self.scope_kind, &self.scope_id)
                .ok_or_else(|| corrupt(format!("unknown scope kind {:?}", self.scope_kind)))?,
            kind: EvidenceKind::parse(&self.kind)
                .ok_or_else(|| corrupt(format!("unknown kind {:?}", self.kind)))?,
            uploaded_at: from_millis(T, self.uploaded_at)?,
            withdrawn_at: self.withdrawn_at.map(|ms| from_millis(T, ms)).transpose()?,
            id: self.id,
            action: self.action_id,
            name: self.name,
            media_type: self.media_type,
            size: self.size,
            sha256: self.sha256,
            uploaded_by: self.uploaded_by,
            withdrawn_by: self.withdrawn_by,
            superseded_by: self.superseded_by,
        })
    }
}

fn check_new(new: &NewEvidence, content: Option<&[u8]>) -> Result<(), StoreError> {
    let invalid = |m: &str| Err(StoreError::Invalid(format!("evidence: {m}")));
    if new.action.trim().is_empty() || new.scope.id().trim().is_empty() {
        return invalid("an action and a scope id are required");
    }
    if new.name.trim().is_empty() || new.name.chars().count() > MAX_STORED_NAME {
        return invalid("the name must be 1 to 2048 characters");
    }
    if new.uploaded_by.trim().is_empty() {
        return invalid("uploaded_by is required");
    }
    match (&new.blob, content) {
        (None, Some(_)) => invalid("content without a content address"),
        (Some(b), Some(c)) if b.size != c.len() as i64 => invalid("size and content differ"),
        (Some(b), _) if !crate::model::evidence::is_sha256_hex(&b.sha256) => {
            invalid("the content address is not a SHA-256 in lower-case hex")
        }
        _ => Ok(()),
    }
}

/// Insert a blob (once per address) and an evidence row on `conn`; the row's id.
async fn insert_row<DB>(
    conn: &mut DB::Connection,
    new: &NewEvidence,
    content: Option<&[u8]>,
) -> Result<i64, StoreError>
where
    DB: SqlBackend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'s> &'s str: Encode<'s, DB> + Type<DB>,
    for<'s> Option<&'s str>: Encode<'s, DB> + Type<DB>,
    for<'s> Option<&'s [u8]>: Encode<'s, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    i64: Param<DB> + Column<DB>,
    Option<i64>: Param<DB>,
{
    let at = to_millis(new.uploaded_at);
    if let Some(b) = &new.blob {
        sqlx::query(INSERT_BLOB)
            .bind(b.sha256.as_str())
            .bind(b.size)
            .bind(content)
            .bind(at)
            .execute(&mut *conn)
            .await?;
    }
    let id: i64 = sqlx::query_scalar(INSERT_EVIDENCE)
        .bind(new.scope.kind())
        .bind(new.scope.id())
        .bind(new.action.as_str())
        .bind(new.kind.as_str())
        .bind(new.name.as_str())
        .bind(new.media_type.as_deref())
        .bind(new.blob.as_ref().map(|b| b.size))
        .bind(new.blob.as_ref().map(|b| b.sha256.as_str()))
        .bind(new.uploaded_by.as_str())
        .bind(at)
        .fetch_one(&mut *conn)
        .await?;
    Ok(id)
}

/// The automatic evidence of a poll, inside its transaction: each document's blob (once per
/// address) and an evidence row for the tenant's instance, each table's in multi-row
/// statements. The poll's transitions carry the addresses (`record_poll` writes them).
///
/// # Errors
///
/// [`StoreError::Invalid`] when a document's address is not its SHA-256 (the caller's
/// transaction is then rolled back); database errors.
pub(crate) async fn write_automatic<DB>(
    conn: &mut DB::Connection,
    tenant: &str,
    connector: &str,
    at: DateTime<Utc>,
    evidence: &[AutomaticEvidence],
) -> Result<(), StoreError>
where
    DB: SqlBackend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'s> &'s str: Encode<'s, DB> + Type<DB>,
    for<'s> Option<&'s str>: Encode<'s, DB> + Type<DB>,
    for<'s> Option<&'s [u8]>: Encode<'s, DB> + Type<DB>,
    i64: Param<DB>,
    Option<i64>: Param<DB>,
{
    let rows = evidence
        .iter()
        .map(|e| {
            let new = NewEvidence {
                scope: InstanceScope::Tenant(tenant.to_string()),
                action: e.action_id.clone(),
                kind: EvidenceKind::Automatic,
                name: format!("{connector} poll: signals behind the test status"),
                media_type: Some("application/json".to_string()),
                blob: Some(BlobRef {
                    sha256: e.sha256.clone(),
                    size: e.content.len() as i64,
                }),
                uploaded_by: format!("poll:{connector}"),
                uploaded_at: at,
                supersedes: None,
            };
            check_new(&new, Some(&e.content))?;
            if crate::model::evidence::sha256_hex(&e.content) != e.sha256 {
                return Err(StoreError::Invalid(
                    "automatic evidence: the content address is not the content's SHA-256".into(),
                ));
            }
            Ok((new, e.content.as_slice()))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let at = to_millis(at);
    insert_rows::<DB, _>(
        conn,
        INSERT_BLOBS,
        BLOB_CONFLICT,
        4,
        &rows,
        |mut row, (new, content)| {
            let blob = new.blob.as_ref();
            row.push_bind(blob.map(|b| b.sha256.as_str()))
                .push_bind(blob.map(|b| b.size))
                .push_bind(Some(*content))
                .push_bind(at);
        },
    )
    .await?;
    insert_rows::<DB, _>(
        conn,
        INSERT_EVIDENCE_ROWS,
        "",
        10,
        &rows,
        |mut row, (new, _)| {
            row.push_bind(new.scope.kind())
                .push_bind(new.scope.id())
                .push_bind(new.action.as_str())
                .push_bind(new.kind.as_str())
                .push_bind(new.name.as_str())
                .push_bind(new.media_type.as_deref())
                .push_bind(new.blob.as_ref().map(|b| b.size))
                .push_bind(new.blob.as_ref().map(|b| b.sha256.as_str()))
                .push_bind(new.uploaded_by.as_str())
                .push_bind(at);
        },
    )
    .await
}

#[async_trait]
impl<DB> EvidenceStore for SqlStore<DB>
where
    DB: SqlBackend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'s> &'s str: Encode<'s, DB> + Type<DB> + ColumnIndex<DB::Row>,
    for<'s> Option<&'s str>: Encode<'s, DB> + Type<DB>,
    for<'s> Option<&'s [u8]>: Encode<'s, DB> + Type<DB>,
    Vec<u8>: Column<DB>,
    usize: ColumnIndex<DB::Row>,
    i64: Param<DB> + Column<DB>,
    Option<i64>: Param<DB>,
    f64: Param<DB> + Column<DB>,
    String: Column<DB>,
{
    async fn add_evidence(
        &self,
        new: &NewEvidence,
        content: Option<&[u8]>,
        audit: AuditOf<'_>,
    ) -> Result<Evidence, StoreError> {
        check_new(new, content)?;
        let mut tx = self.writer()?.begin_with(DB::BEGIN_WRITE).await?;
        self.check_file()?;
        let id = insert_row::<DB>(&mut tx, new, content).await?;
        if let Some(old) = new.supersedes {
            let done = sqlx::query(SUPERSEDE)
                .bind(id)
                .bind(old)
                .bind(new.scope.kind())
                .bind(new.scope.id())
                .bind(new.action.as_str())
                .execute(&mut *tx)
                .await?;
            if DB::rows_affected(&done) == 0 {
                return Err(StoreError::Invalid(format!(
                    "evidence {old} is not evidence of this instance that is not superseded yet"
                )));
            }
        }
        let stored = sqlx::query_as::<_, EvidenceDbRow>(SELECT_ONE)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?
            .decode()?;
        insert_audit::<DB>(&mut tx, &audit(&stored)).await?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn evidence(&self, id: i64) -> Result<Option<Evidence>, StoreError> {
        sqlx::query_as::<_, EvidenceDbRow>(SELECT_ONE)
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(EvidenceDbRow::decode)
            .transpose()
    }

    async fn evidence_of(
        &self,
        scope: &InstanceScope,
        action: &str,
    ) -> Result<Vec<Evidence>, StoreError> {
        sqlx::query_as::<_, EvidenceDbRow>(SELECT_INSTANCE)
            .bind(scope.kind())
            .bind(scope.id())
            .bind(action)
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(EvidenceDbRow::decode)
            .collect()
    }

    async fn evidence_blob(&self, sha256: &str) -> Result<Option<StoredBlob>, StoreError> {
        let row = sqlx::query_as::<_, (i64, Option<Vec<u8>>)>(SELECT_BLOB)
            .bind(sha256)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|(size, content)| StoredBlob { size, content }))
    }

    async fn withdraw_evidence(
        &self,
        id: i64,
        by: &str,
        at: DateTime<Utc>,
        audit: AuditOf<'_>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer()?.begin_with(DB::BEGIN_WRITE).await?;
        self.check_file()?;
        let done = sqlx::query(WITHDRAW)
            .bind(to_millis(at))
            .bind(by)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if DB::rows_affected(&done) == 0 {
            return Ok(false);
        }
        let stored = sqlx::query_as::<_, EvidenceDbRow>(SELECT_ONE)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?
            .decode()?;
        insert_audit::<DB>(&mut tx, &audit(&stored)).await?;
        tx.commit().await?;
        Ok(true)
    }
}
