//! The one store type of both databases, and the few things the two databases do differently.
//!
//! [`SqlStore`] is the store over a sqlx database: its [`Store`](super::Store),
//! [`AlertStore`](super::AlertStore) and [`ModelStore`](super::ModelStore) implementations
//! (`polls.rs`, `alerts.rs`, `model.rs`) are written once, generic over the database, with SQL in
//! `$n` placeholders that both drivers accept. [`SqlBackend`], implemented for `sqlx::Sqlite`
//! (`sqlite.rs`) and `sqlx::Postgres` (`postgres.rs`), holds only what differs: how transactions
//! begin, PostgreSQL's per-tenant lock, the batched writes of a poll, and the migrations.
//!
//! Rust does not carry the bounds a generic impl needs (a bound parameter `i64: Encode<DB>`,
//! a column index `&str: ColumnIndex<DB::Row>` ...) from a trait to its users, so every generic
//! impl of the store states them; [`Param`] and [`Column`] keep that list short.
//!
//! Must not: hold SQL that both backends run (it belongs to the shared files).

use std::future::Future;

use sqlx::migrate::{Migrate, Migrator};
use sqlx::{Database, Decode, Encode, IntoArguments, Pool, Type};

use super::StoreError;
use super::plan::{EncodedPoll, Plan};

/// A store over one database of backend `DB` (`sqlx::Sqlite` or `sqlx::Postgres`); opened with
/// [`SqliteStore::open`](super::sqlite::SqliteStore::open) or
/// [`PostgresStore::connect`](super::postgres::PostgresStore::connect).
#[derive(Debug)]
pub struct SqlStore<DB: Database> {
    pool: Pool<DB>,
}

impl<DB: Database> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        SqlStore {
            pool: self.pool.clone(),
        }
    }
}

impl<DB: Database> SqlStore<DB> {
    /// Wrap an open pool (no migration).
    pub(crate) fn from_pool(pool: Pool<DB>) -> Self {
        SqlStore { pool }
    }

    /// The connection pool.
    pub(crate) fn pool(&self) -> &Pool<DB> {
        &self.pool
    }
}

/// What differs between the SQLite and the PostgreSQL store. Everything else is shared.
pub(crate) trait SqlBackend:
    Database<Connection: Migrate, Arguments: IntoArguments<Self>>
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

    /// Number of rows a statement changed (each driver has its own result type).
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// Write the rows of a poll that come in any number, inside its transaction: the signal
    /// upserts, the history rows, the gaps (the connector's old ones are already deleted), the
    /// changed action states and the transitions (with `poll_id`).
    fn write_rows(
        conn: &mut Self::Connection,
        poll: &EncodedPoll<'_>,
        plan: &Plan<'_, '_>,
        poll_id: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A Rust value bound as a statement parameter of `DB` (shorthand for the generic impls'
/// bounds).
pub(crate) trait Param<DB: Database>: for<'q> Encode<'q, DB> + Type<DB> {}

impl<DB: Database, T> Param<DB> for T where T: for<'q> Encode<'q, DB> + Type<DB> {}

/// A Rust value decoded from a column of `DB` (shorthand for the generic impls' bounds).
pub(crate) trait Column<DB: Database>: for<'r> Decode<'r, DB> + Type<DB> {}

impl<DB: Database, T> Column<DB> for T where T: for<'r> Decode<'r, DB> + Type<DB> {}
