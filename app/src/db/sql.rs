//! Helpers the repository modules share: atomic sections, typed row mapping, enums stored as
//! text, and basket-line normalization.

use rusqlite::{Connection, OptionalExtension, Params, Row};

use super::DbError;

/// A domain type read from the columns [`FromRow::COLUMNS`] of [`FromRow::TABLE`].
pub(crate) trait FromRow: Sized {
    /// The table (or `FROM` clause) the type is read from.
    const TABLE: &'static str;
    /// The column list, in the order [`FromRow::from_row`] reads them.
    const COLUMNS: &'static str;
    /// Builds the value from a row that has [`FromRow::COLUMNS`].
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self>;
}

/// Implements [`FromRow`] for a struct whose fields are named after the columns of `$table`,
/// reading each by name, so the column list and the fields cannot drift apart.
macro_rules! from_row {
    ($type:ty, $table:literal, [$first:ident $(, $field:ident)* $(,)?]) => {
        impl $crate::db::sql::FromRow for $type {
            const TABLE: &'static str = $table;
            const COLUMNS: &'static str = concat!(stringify!($first) $(, ", ", stringify!($field))*);
            fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                Ok(Self {
                    $first: row.get(stringify!($first))?,
                    $($field: row.get(stringify!($field))?,)*
                })
            }
        }
    };
}
pub(crate) use from_row;

/// `SELECT <T::COLUMNS> FROM <T::TABLE> <tail>`: every row, in the order `tail` asks for.
pub(crate) fn select<T: FromRow>(
    conn: &Connection,
    tail: &str,
    params: impl Params,
) -> Result<Vec<T>, DbError> {
    let mut statement = conn.prepare_cached(&select_sql::<T>(tail))?;
    let rows = statement.query_map(params, T::from_row)?;
    Ok(rows.collect::<Result<Vec<T>, _>>()?)
}

/// `SELECT <T::COLUMNS> FROM <T::TABLE> <tail>`: the first row, if any.
pub(crate) fn select_one<T: FromRow>(
    conn: &Connection,
    tail: &str,
    params: impl Params,
) -> Result<Option<T>, DbError> {
    query_one(conn, &select_sql::<T>(tail), params)
}

fn select_sql<T: FromRow>(tail: &str) -> String {
    format!("SELECT {} FROM {} {tail}", T::COLUMNS, T::TABLE)
}

/// Runs `sql` (a `SELECT`, or a write with `RETURNING <T::COLUMNS>`) and maps its first row.
pub(crate) fn query_one<T: FromRow>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
) -> Result<Option<T>, DbError> {
    let mut statement = conn.prepare_cached(sql)?;
    Ok(statement.query_row(params, T::from_row).optional()?)
}

/// Runs a write and returns how many rows it changed.
pub(crate) fn write(conn: &Connection, sql: &str, params: impl Params) -> Result<usize, DbError> {
    Ok(conn.prepare_cached(sql)?.execute(params)?)
}

/// Runs a `SELECT COUNT(*) …` and returns the count.
pub(crate) fn count(conn: &Connection, sql: &str, params: impl Params) -> Result<i64, DbError> {
    Ok(conn
        .prepare_cached(sql)?
        .query_row(params, |row| row.get(0))?)
}

/// Runs `f` atomically: inside `BEGIN IMMEDIATE … COMMIT` when `conn` is not in a transaction,
/// or inside a savepoint of the caller's transaction when it is (so repository functions
/// compose into a larger transaction). An error from `f` — or a panic — rolls back everything
/// `f` wrote.
///
/// `IMMEDIATE` takes the write lock up front, so the reads that decide a write (is there stock,
/// was this key seen) cannot be invalidated by another connection before the write.
pub(crate) fn atomic<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, DbError>,
) -> Result<T, DbError> {
    let nested = !conn.is_autocommit();
    conn.execute_batch(if nested {
        "SAVEPOINT zeroapp_atomic"
    } else {
        "BEGIN IMMEDIATE"
    })?;
    let mut guard = RollbackGuard {
        conn,
        nested,
        finished: false,
    };
    let value = f(conn)?;
    conn.execute_batch(if nested {
        "RELEASE zeroapp_atomic"
    } else {
        "COMMIT"
    })?;
    guard.finished = true;
    Ok(value)
}

/// Rolls back the section [`atomic`] opened unless it was committed.
struct RollbackGuard<'c> {
    conn: &'c Connection,
    nested: bool,
    finished: bool,
}

impl Drop for RollbackGuard<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let sql = if self.nested {
            "ROLLBACK TO zeroapp_atomic; RELEASE zeroapp_atomic"
        } else {
            "ROLLBACK"
        };
        // Nothing to do with a failure here: SQLite rolls back an unfinished transaction
        // itself, and the database thread rolls back whatever a call leaves open.
        let _ = self.conn.execute_batch(sql);
    }
}

/// Declares an enum stored as a fixed lowercase string (matching a `CHECK (col IN (...))`),
/// serialized by serde as the same string.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// The string stored in the database and used by serde.
            pub fn as_str(self) -> &'static str {
                match self { $( Self::$variant => $text, )+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                match value.as_str()? {
                    $( $text => Ok(Self::$variant), )+
                    other => Err(rusqlite::types::FromSqlError::Other(
                        format!("{other:?} is not a {}", stringify!($name)).into(),
                    )),
                }
            }
        }
    };
}
pub(crate) use text_enum;
