//! Schema migrations: the numbered SQL files of `migrations/`, embedded in the binary and
//! applied in order at start-up, each in its own transaction, each recorded in
//! `schema_migrations`.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::DbError;

/// One embedded migration file.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Its number, the `NNNN` of `NNNN_name.sql`; versions go 1, 2, 3… without gaps.
    pub version: i64,
    /// Its name, the part of the file name after the number, without `.sql`.
    pub name: &'static str,
    /// The SQL it runs.
    pub sql: &'static str,
}

/// Every migration this build knows, in order. A new file in `migrations/` must be added here
/// (a test checks that the folder and this list agree).
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "schema",
        sql: include_str!("../../../migrations/0001_schema.sql"),
    },
    Migration {
        version: 2,
        name: "seed",
        sql: include_str!("../../../migrations/0002_seed.sql"),
    },
    Migration {
        version: 3,
        name: "auth",
        sql: include_str!("../../../migrations/0003_auth.sql"),
    },
    Migration {
        version: 4,
        name: "shipment_attempts",
        sql: include_str!("../../../migrations/0004_shipment_attempts.sql"),
    },
    Migration {
        version: 5,
        name: "folder_identity",
        sql: include_str!("../../../migrations/0005_folder_identity.sql"),
    },
    Migration {
        version: 6,
        name: "order_carrier",
        sql: include_str!("../../../migrations/0006_order_carrier.sql"),
    },
];

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Brings the database up to [`latest_version`], applying only migrations not yet recorded,
/// and returns the versions it applied (empty when the schema was already current).
///
/// Refuses with [`DbError::SchemaTooNew`] a database whose recorded version is newer than this
/// build knows, and with [`DbError::MigrationMismatch`] one whose recorded migration names
/// differ from this build's; it changes nothing then.
pub fn apply(conn: &mut Connection) -> Result<Vec<i64>, DbError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version       INTEGER PRIMARY KEY,
             name          TEXT    NOT NULL,
             applied_at_ms INTEGER NOT NULL
         ) STRICT",
    )?;
    let found = current_version(conn)?;
    let supported = latest_version();
    if found > supported {
        return Err(DbError::SchemaTooNew { found, supported });
    }
    let mut applied = Vec::new();
    for migration in MIGRATIONS {
        // Each migration checks, applies and records itself under the write lock, so two
        // processes opening the same file at once cannot both apply it.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let recorded: Option<String> = tx
            .query_row(
                "SELECT name FROM schema_migrations WHERE version = ?1",
                [migration.version],
                |row| row.get(0),
            )
            .optional()?;
        match recorded {
            Some(recorded) if recorded == migration.name => continue,
            Some(recorded) => {
                return Err(DbError::MigrationMismatch {
                    version: migration.version,
                    recorded,
                    expected: migration.name.to_string(),
                });
            }
            None => {}
        }
        tx.execute_batch(migration.sql)?;
        // The time is informational and never replayed, so SQLite's own clock will do.
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at_ms)
             VALUES (?1, ?2, CAST(unixepoch('subsec') * 1000 AS INTEGER))",
            (migration.version, migration.name),
        )?;
        tx.commit()?;
        applied.push(migration.version);
    }
    Ok(applied)
}

/// The newest version recorded in `schema_migrations` (0 for a new database).
pub fn current_version(conn: &Connection) -> Result<i64, DbError> {
    Ok(conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |row| row.get(0),
    )?)
}
