//! Persistence of API tokens: their metadata and the SHA-256 digest of their secret (never the
//! secret itself).
//!
//! [`TokenStore`] is a supertrait of [`super::Store`], so every store (and `Arc<dyn Store>`) has
//! these methods. Its one implementation, for both backends, is below: the SQL (table
//! `api_tokens` of the migrations `0006_api_tokens.sql`) is written once with `$n` placeholders
//! over [`SqlStore<DB>`], and so is the row mapping.
//!
//! Must not: mint or check secrets (the server does: `server::tokens`), or decide what a role
//! may do.

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{ColumnIndex, Encode, Executor, Type};

use super::StoreError;
use super::audit::{AuditRecord, insert_audit};
use super::backend::{Column, Param, SqlBackend, SqlStore};
use super::rows::{from_millis, to_millis};
use crate::access::{Role, Scope};

/// An API token's metadata, as listed: never its secret nor the secret's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApiToken {
    /// The token's id: the `<id>` of `pst_<id>_<secret>`.
    pub id: String,
    /// A person's label for it (what it is for).
    pub name: String,
    /// The role it grants.
    pub role: Role,
    /// The tenants and groups it is limited to (`null`: every one).
    #[schema(value_type = Object)]
    pub scope: Scope,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Who created it: `token:<id>`, `oidc:<sub>`, `api_token` (the shared token) or
    /// `cli:<user>`.
    pub created_by: String,
    /// When it stops working (`null`: never).
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked (`null`: not revoked).
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it was last used, to the minute (`null`: never).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiToken {
    /// Whether the token may be used at `now`: neither revoked nor expired (a token expires at
    /// its `expires_at` instant).
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

/// A stored token with the digest its presented secret is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    /// The metadata.
    pub token: ApiToken,
    /// SHA-256 of the secret, 32 bytes.
    pub secret_sha256: [u8; 32],
}

/// API tokens. Implemented by every store backend.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Insert a new token and its `audit` rows in one transaction. An id already stored is
    /// refused with [`StoreError::Invalid`] (nothing is replaced or audited); so are an empty id
    /// or name.
    async fn create_token(
        &self,
        token: &StoredToken,
        audit: &[AuditRecord],
    ) -> Result<(), StoreError>;
    /// The token `id` with its secret's digest, for authentication (revoked and expired ones
    /// included: the caller decides).
    async fn token(&self, id: &str) -> Result<Option<StoredToken>, StoreError>;
    /// Every token (revoked and expired ones included), oldest first (ties by id).
    async fn tokens(&self) -> Result<Vec<ApiToken>, StoreError>;
    /// Revoke token `id` at `at`, with its `audit` rows in the same transaction: `true` when it
    /// was not revoked and is now, `false` (nothing written, nothing audited) when it is unknown
    /// or already revoked (its first revocation instant is kept).
    async fn revoke_token(
        &self,
        id: &str,
        at: DateTime<Utc>,
        audit: &[AuditRecord],
    ) -> Result<bool, StoreError>;
    /// Record a use of token `id` at `at` unless one at or after `at - min_interval` is
    /// recorded already: `true` when written. Keeps authentication to at most one write per
    /// token and interval.
    async fn touch_token(
        &self,
        id: &str,
        at: DateTime<Utc>,
        min_interval: chrono::Duration,
    ) -> Result<bool, StoreError>;
}

const INSERT: &str = "INSERT INTO api_tokens (id, name, role, tenant_scope, group_scope, \
    secret_sha256, created_at, created_by, expires_at, revoked_at, last_used_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING";
macro_rules! select_tokens {
    ($rest:literal) => {
        concat!(
            "SELECT id, name, role, tenant_scope, group_scope, secret_sha256, created_at, ",
            "created_by, expires_at, revoked_at, last_used_at FROM api_tokens ",
            $rest
        )
    };
}
const SELECT_ONE: &str = select_tokens!("WHERE id = $1");
const SELECT_ALL: &str = select_tokens!("ORDER BY created_at, id");
const REVOKE: &str = "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
const TOUCH: &str = "UPDATE api_tokens SET last_used_at = $2 \
    WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)";

/// One `api_tokens` row as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
struct TokenRow {
    id: String,
    name: String,
    role: String,
    tenant_scope: Option<String>,
    group_scope: Option<String>,
    secret_sha256: String,
    created_at: i64,
    created_by: String,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    last_used_at: Option<i64>,
}

const TABLE: &str = "api_tokens";

fn corrupt(detail: String) -> StoreError {
    StoreError::Corrupt {
        table: TABLE,
        detail,
    }
}

fn encode_set(set: Option<&BTreeSet<String>>) -> Result<Option<String>, StoreError> {
    set.map(|s| serde_json::to_string(s).map_err(|e| StoreError::Invalid(format!("scope: {e}"))))
        .transpose()
}

fn decode_set(
    id: &str,
    column: &str,
    text: Option<&str>,
) -> Result<Option<BTreeSet<String>>, StoreError> {
    text.map(|t| {
        serde_json::from_str(t).map_err(|e| {
            corrupt(format!(
                "token {id}: {column} is not a JSON list of ids: {e}"
            ))
        })
    })
    .transpose()
}

fn millis(at: Option<DateTime<Utc>>) -> Option<i64> {
    at.map(to_millis)
}

fn instant(ms: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    ms.map(|m| from_millis(TABLE, m)).transpose()
}

impl TokenRow {
    fn decode(self) -> Result<StoredToken, StoreError> {
        let role = Role::parse(&self.role)
            .ok_or_else(|| corrupt(format!("token {}: unknown role {:?}", self.id, self.role)))?;
        let mut secret_sha256 = [0u8; 32];
        hex::decode_to_slice(&self.secret_sha256, &mut secret_sha256).map_err(|_| {
            corrupt(format!(
                "token {}: secret digest is not 64 hex digits",
                self.id
            ))
        })?;
        let scope = Scope {
            tenants: decode_set(&self.id, "tenant_scope", self.tenant_scope.as_deref())?,
            groups: decode_set(&self.id, "group_scope", self.group_scope.as_deref())?,
        };
        Ok(StoredToken {
            token: ApiToken {
                name: self.name,
                role,
                scope,
                created_at: from_millis(TABLE, self.created_at)?,
                created_by: self.created_by,
                expires_at: instant(self.expires_at)?,
                revoked_at: instant(self.revoked_at)?,
                last_used_at: instant(self.last_used_at)?,
                id: self.id,
            },
            secret_sha256,
        })
    }
}

#[async_trait]
impl<DB> TokenStore for SqlStore<DB>
where
    DB: SqlBackend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'s> &'s str: Encode<'s, DB> + Type<DB> + ColumnIndex<DB::Row>,
    for<'s> Option<&'s str>: Encode<'s, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    i64: Param<DB> + Column<DB>,
    Option<i64>: Param<DB>,
    String: Column<DB>,
{
    async fn create_token(
        &self,
        stored: &StoredToken,
        audit: &[AuditRecord],
    ) -> Result<(), StoreError> {
        let t = &stored.token;
        if t.id.trim().is_empty() || t.name.trim().is_empty() {
            return Err(StoreError::Invalid(
                "a token needs an id and a name".to_string(),
            ));
        }
        let tenants = encode_set(t.scope.tenants.as_ref())?;
        let groups = encode_set(t.scope.groups.as_ref())?;
        let digest = hex::encode(stored.secret_sha256);
        let mut tx = self.writer()?.begin_with(DB::BEGIN_WRITE).await?;
        let done = sqlx::query(INSERT)
            .bind(t.id.as_str())
            .bind(t.name.as_str())
            .bind(t.role.as_str())
            .bind(tenants.as_deref())
            .bind(groups.as_deref())
            .bind(digest.as_str())
            .bind(to_millis(t.created_at))
            .bind(t.created_by.as_str())
            .bind(millis(t.expires_at))
            .bind(millis(t.revoked_at))
            .bind(millis(t.last_used_at))
            .execute(&mut *tx)
            .await?;
        if DB::rows_affected(&done) == 0 {
            return Err(StoreError::Invalid(format!(
                "a token with the id {} exists already",
                t.id
            )));
        }
        insert_audit::<DB>(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn token(&self, id: &str) -> Result<Option<StoredToken>, StoreError> {
        sqlx::query_as::<_, TokenRow>(SELECT_ONE)
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(TokenRow::decode)
            .transpose()
    }

    async fn tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        sqlx::query_as::<_, TokenRow>(SELECT_ALL)
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(|r| r.decode().map(|s| s.token))
            .collect()
    }

    async fn revoke_token(
        &self,
        id: &str,
        at: DateTime<Utc>,
        audit: &[AuditRecord],
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer()?.begin_with(DB::BEGIN_WRITE).await?;
        let done = sqlx::query(REVOKE)
            .bind(id)
            .bind(to_millis(at))
            .execute(&mut *tx)
            .await?;
        if DB::rows_affected(&done) == 0 {
            return Ok(false);
        }
        insert_audit::<DB>(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn touch_token(
        &self,
        id: &str,
        at: DateTime<Utc>,
        min_interval: chrono::Duration,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(TOUCH)
            .bind(id)
            .bind(to_millis(at))
            .bind(to_millis(at - min_interval))
            .execute(self.writer()?)
            .await?;
        Ok(DB::rows_affected(&done) > 0)
    }
}
