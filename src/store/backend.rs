//! The one store type of both databases, and the few things the two databases do differently.
//!
//! [`SqlStore`] is the store over a sqlx database: its [`Store`](super::Store),
//! [`AlertStore`](super::AlertStore) and [`ModelStore`](super::ModelStore) implementations
//! (`polls.rs`, `alerts.rs`, `model.rs`) are written once, generic over the database, with SQL in
//! `$n` placeholders that both drivers accept. [`SqlBackend`], implemented for `sqlx::Sqlite`
//! (`sqlite.rs`) and `sqlx::Postgres` (`postgres.rs`), holds only what differs: how transactions
//! begin, PostgreSQL's per-tenant lock, and the migrations.
//!
//! Rust does not carry the bounds a generic impl needs (a bound parameter `i64: Encode<DB>`,
//! a column index `&str: ColumnIndex<DB::Row>` ...) from a trait to its users, so every generic
//! impl of the store states them; [`Param`] and [`Column`] keep that list short.
//!
//! Must not: hold SQL that both backends run (it belongs to the shared files).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sqlx::database::HasStatementCache;
use sqlx::migrate::{Migrate, Migrator};
use sqlx::pool::PoolOptions;
use sqlx::{Connection, Database, Decode, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::StoreError;

/// A store over one database of backend `DB` (`sqlx::Sqlite` or `sqlx::Postgres`); opened with
/// [`SqliteStore::open`](super::sqlite::SqliteStore::open) or
/// [`PostgresStore::connect`](super::postgres::PostgresStore::connect).
#[derive(Debug)]
pub struct SqlStore<DB: Database> {
    pool: Pool<DB>,
    /// The database file as opened (SQLite on a file only).
    file: Option<Arc<FileIdentity>>,
}

impl<DB: Database> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        SqlStore {
            pool: self.pool.clone(),
            file: self.file.clone(),
        }
    }
}

impl<DB: Database> SqlStore<DB> {
    /// Wrap an open pool (no migration); `file` is the database file as opened, when the
    /// database is one.
    pub(crate) fn from_pool(pool: Pool<DB>, file: Option<FileIdentity>) -> Self {
        SqlStore {
            pool,
            file: file.map(Arc::new),
        }
    }

    /// The connection pool, for reads.
    pub(crate) fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// The connection pool, for writes: refused with [`StoreError::FileReplaced`] when the
    /// database file is no longer the one opened (a write would land in a file nobody reads
    /// again).
    pub(crate) fn writer(&self) -> Result<&Pool<DB>, StoreError> {
        self.check_file()?;
        Ok(&self.pool)
    }

    /// [`StoreError::FileReplaced`] when the database file is no longer the one opened.
    pub(crate) fn check_file(&self) -> Result<(), StoreError> {
        match &self.file {
            Some(file) => file.check(),
            None => Ok(()),
        }
    }
}

impl<DB: Database> SqlStore<DB> {
    /// The rows of one tenant that a listing reads, decoded: `sql` is run with the tenant as
    /// `$1`, then `key` (an action id, a signal key ...) as the next parameter when given, then
    /// `last` (a lower bound in epoch milliseconds, a row limit ...) when given; `decode`
    /// turns each row into its domain type. The statement holds every placeholder it binds.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] when the statement fails; the first
    /// [`StoreError::Corrupt`] that `decode` returns.
    pub(crate) async fn rows_of<R, T>(
        &self,
        sql: &'static str,
        tenant: &str,
        key: Option<&str>,
        last: Option<i64>,
        decode: fn(R) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError>
    where
        DB: SqlBackend,
        for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
        for<'s> &'s str: Encode<'s, DB> + Type<DB>,
        i64: Param<DB>,
        R: for<'r> FromRow<'r, DB::Row> + Send + Unpin,
    {
        let mut query = sqlx::query_as::<DB, R>(sql).bind(tenant);
        if let Some(key) = key {
            query = query.bind(key);
        }
        if let Some(last) = last {
            query = query.bind(last);
        }
        super::rows::decode_all(query.fetch_all(self.pool()).await?, decode)
    }

    /// [`SqlStore::rows_of`] for a history listing: its rows at or after `since` (all of them
    /// when `None`), the bound bound last as epoch milliseconds ([`super::rows::since_millis`]).
    ///
    /// # Errors
    ///
    /// As [`SqlStore::rows_of`].
    pub(crate) async fn history_of<R, T>(
        &self,
        sql: &'static str,
        tenant: &str,
        key: Option<&str>,
        since: Option<chrono::DateTime<chrono::Utc>>,
        decode: fn(R) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError>
    where
        DB: SqlBackend,
        for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
        for<'s> &'s str: Encode<'s, DB> + Type<DB>,
        i64: Param<DB>,
        R: for<'r> FromRow<'r, DB::Row> + Send + Unpin,
    {
        let since = Some(super::rows::since_millis(since));
        self.rows_of(sql, tenant, key, since, decode).await
    }
}

/// Pool options both backends start from. A connection that comes back to the pool still inside
/// a transaction (its `COMMIT` or `ROLLBACK` failed: SQLite may roll a transaction back by
/// itself after an I/O error or a full disk, and sqlx's later `ROLLBACK` then fails, leaving
/// the connection at a non-zero transaction depth where every `BEGIN` fails) is closed when it
/// is next taken from the pool, and a fresh connection is opened in its place.
pub(crate) fn pool_options<DB: Database>() -> PoolOptions<DB> {
    PoolOptions::new().before_acquire(|conn: &mut DB::Connection, _| {
        let reusable = !conn.is_in_transaction();
        if !reusable {
            tracing::warn!("closing a database connection left inside a failed transaction");
        }
        Box::pin(async move { Ok(reusable) })
    })
}

/// The identity (device, inode) of a database file when it was opened, to tell whether the path
/// still names it: a file removed (or its directory) or replaced while the daemon runs keeps
/// taking writes through the open connections, which are lost at the next start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileIdentity {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl FileIdentity {
    /// The identity of the file at `path` now (made absolute, so a later change of the working
    /// directory does not matter).
    pub(crate) fn of(path: &Path) -> std::io::Result<Self> {
        let path = std::path::absolute(path)?;
        let meta = std::fs::metadata(&path)?;
        Ok(FileIdentity {
            dev: meta.dev(),
            ino: meta.ino(),
            path,
        })
    }

    /// [`StoreError::FileReplaced`] unless `path` still names the file opened.
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        match std::fs::metadata(&self.path) {
            Ok(meta) if meta.dev() == self.dev && meta.ino() == self.ino => Ok(()),
            _ => Err(StoreError::FileReplaced(self.path.display().to_string())),
        }
    }
}

/// What differs between the SQLite and the PostgreSQL store. Everything else is shared.
pub(crate) trait SqlBackend:
    Database<Connection: Migrate, Arguments: IntoArguments<Self>> + HasStatementCache
{
    /// Backend name, as [`Store::backend`](super::Store::backend) reports it.
    const BACKEND: &'static str;
    /// Statement that opens a write transaction (`record_poll`, `prune_history`).
    const BEGIN_WRITE: &'static str;
    /// Statement that opens the read transaction of `load_tenant_state` (one snapshot of the
    /// three tables it reads).
    const BEGIN_SNAPSHOT: &'static str;
    /// Statement run first in `record_poll`'s transaction with the tenant as `$1`, when the
    /// write transaction alone does not make two polls of one tenant write one after the other.
    const LOCK_TENANT: Option<&'static str>;

    /// The migrations of `migrations/<backend>/`, embedded at build time.
    const MIGRATOR: &'static Migrator;
    /// Statement that lifts the session's statement timeout for the migrations (which may run
    /// longer than any statement of a poll: an index over a year of history), run on a
    /// connection of their own that is closed afterwards; `None` when there is no timeout.
    const MIGRATION_SESSION: Option<&'static str>;

    /// Number of rows a statement changed (each driver has its own result type).
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

/// A Rust value bound as a statement parameter of `DB` (shorthand for the generic impls'
/// bounds).
pub(crate) trait Param<DB: Database>: for<'q> Encode<'q, DB> + Type<DB> {}

impl<DB: Database, T> Param<DB> for T where T: for<'q> Encode<'q, DB> + Type<DB> {}

/// A Rust value decoded from a column of `DB` (shorthand for the generic impls' bounds).
pub(crate) trait Column<DB: Database>: for<'r> Decode<'r, DB> + Type<DB> {}

impl<DB: Database, T> Column<DB> for T where T: for<'r> Decode<'r, DB> + Type<DB> {}
