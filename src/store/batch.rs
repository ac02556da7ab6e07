//! Multi-row writes of a poll, written once for both backends: the rows that come in any number
//! (signals, signal history, gaps, action states, transitions, category and assessment
//! snapshots, detector states, automatic evidence) go as `INSERT ... VALUES (...), (...), ...`,
//! one statement per chunk of rows, instead of one statement (one round trip to the database,
//! through sqlx's SQLite worker thread a context switch too) per row.
//!
//! sqlx's `QueryBuilder::push_values` writes each backend's placeholders (`?` or `$n`), so the
//! statement text is shared; the `ON CONFLICT` clauses are the ones the single-row statements
//! had, so a chunk does what its rows one by one did (PostgreSQL refuses an upsert that meets
//! one key twice in a statement: the callers' rows have distinct keys). A chunk carries at most
//! [`MAX_BIND_PARAMETERS`] bound values. The statements of a chunk are not kept prepared
//! (their text varies with the number of rows; caching them would push the steady poll's
//! statements out of sqlx's statement cache).
//!
//! Must not: open or commit a transaction (the caller's transaction holds every chunk).

use sqlx::query_builder::Separated;
use sqlx::{Executor, QueryBuilder};

use super::StoreError;
use super::backend::SqlBackend;

/// Most values bound in one statement: SQLite's limit (`SQLITE_MAX_VARIABLE_NUMBER`, 32,766
/// since SQLite 3.32; libsqlite3-sys 0.37, which sqlx 0.9 uses, bundles SQLite 3.51.3 built
/// with the default), the lower of the two backends' (PostgreSQL's is 65,535).
pub(crate) const MAX_BIND_PARAMETERS: usize = 32_766;

/// How many rows of `columns` bound values each one statement carries (at least one).
pub(crate) const fn rows_per_statement(columns: usize) -> usize {
    let rows = MAX_BIND_PARAMETERS / columns;
    if rows == 0 { 1 } else { rows }
}

/// Insert `rows` inside the caller's transaction: `insert` (`INSERT INTO t (c1, c2 ...) `),
/// then `VALUES` with the `columns` values `bind` pushes for each row, then `tail` (an
/// `ON CONFLICT` clause, or empty); one statement per chunk of [`rows_per_statement`] rows, in
/// the order of `rows` (which is the order SQLite and PostgreSQL insert them in, so ids
/// increase along `rows`). Nothing is sent when `rows` is empty.
///
/// # Errors
///
/// [`StoreError::Database`] when a statement fails (the caller's transaction is then rolled
/// back with everything else).
pub(crate) async fn insert_rows<DB, T>(
    conn: &mut DB::Connection,
    insert: &str,
    tail: &str,
    columns: usize,
    rows: &[T],
    mut bind: impl FnMut(Separated<'_, DB, &'static str>, &T) + Send,
) -> Result<(), StoreError>
where
    DB: SqlBackend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    T: Sync,
{
    for chunk in rows.chunks(rows_per_statement(columns)) {
        let mut query = QueryBuilder::<DB>::new(insert);
        query.push_values(chunk, &mut bind).push(tail);
        query.build().persistent(false).execute(&mut *conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_stay_within_the_parameter_limit() {
        for columns in [1, 4, 6, 10, 12, 13] {
            let rows = rows_per_statement(columns);
            assert!(rows * columns <= MAX_BIND_PARAMETERS, "{columns}");
            assert!((rows + 1) * columns > MAX_BIND_PARAMETERS, "{columns}");
        }
        assert_eq!(rows_per_statement(6), 5_461);
        assert_eq!(rows_per_statement(MAX_BIND_PARAMETERS + 1), 1);
    }
}
