//! The data folder's identity: a random id recorded in both stores (`app.sqlite` and the
//! engine's `engine.redb`) when the folder is first used, and compared before either is opened
//! for writing. A store that is missing or empty while the other holds data, or one copied in
//! from another folder, is refused with one line naming the file and what to do — never served,
//! and never re-seeded over existing orders.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use uuid::Uuid;
use zeroapp_engine::{DATA_FILE, Engine, OpenError, StoredIdentity};

use crate::DATABASE_FILE;

/// Why the folder's stores cannot be served together.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    /// One store is missing (or empty) while the other holds this folder's data.
    #[error(
        "{missing} is missing or empty while {present} holds this folder's data; restore \
         {missing} from the backup taken with {present} (or move both away to start an empty \
         shop)"
    )]
    Missing {
        /// The missing store's file.
        missing: &'static str,
        /// The store that holds data.
        present: &'static str,
    },
    /// The two stores carry different identities, or only one carries one.
    #[error(
        "{file} does not belong to this data folder ({detail}); put back the {file} of this \
         folder, from the backup taken with the rest of it"
    )]
    Foreign {
        /// The file that does not match.
        file: &'static str,
        /// The identities found.
        detail: String,
    },
    /// The app's database lacks orders the engine's workflows are about: rows lost, typically
    /// with its write-ahead log.
    #[error(
        "{DATABASE_FILE} lacks {count} order(s) that {DATA_FILE}'s workflows are about (such as \
         {example}){hint}; restore the folder from a backup"
    )]
    LostOrders {
        /// How many.
        count: usize,
        /// One of them.
        example: String,
        /// What probably happened.
        hint: String,
    },
    /// A store cannot be read.
    #[error("cannot read {file}: {message}")]
    Unreadable {
        /// The file.
        file: &'static str,
        /// Why.
        message: String,
    },
}

/// What `app.sqlite` holds, as far as the identity goes.
enum AppStore {
    NoFile,
    Unnamed { orders: u64 },
    Named(Uuid),
}

/// The folder's identity, checked against both stores before either is opened for writing:
/// the recorded one, or a new one for a fresh folder (and for one from before identities).
/// `with_engine` false: the handlers run on a Restate cluster and the folder has no engine file.
/// Record it with [`App::record_identity`](crate::App::record_identity) and
/// `EngineBuilder::folder_identity`.
pub async fn identity(dir: &Path, with_engine: bool) -> Result<Uuid, FolderError> {
    // Before anything opens app.sqlite, which (re)creates an empty log beside it.
    let hint = wal_hint(dir);
    let app_path = dir.join(DATABASE_FILE);
    let app = tokio::task::spawn_blocking(move || read_app(&app_path))
        .await
        .map_err(|e| FolderError::Unreadable {
            file: DATABASE_FILE,
            message: e.to_string(),
        })??;
    if !with_engine {
        return Ok(match app {
            AppStore::Named(identity) => identity,
            AppStore::NoFile | AppStore::Unnamed { .. } => Uuid::new_v4(),
        });
    }
    let engine = Engine::read_identity(dir).await.map_err(|e| match e {
        OpenError::Locked(_) => FolderError::Unreadable {
            file: DATA_FILE,
            message: "another process has it open".into(),
        },
        other => FolderError::Unreadable {
            file: DATA_FILE,
            message: other.to_string(),
        },
    })?;
    let missing = |missing, present| Err(FolderError::Missing { missing, present });
    let identity = match (app, engine) {
        (AppStore::NoFile, StoredIdentity::NoFile) => Ok(Uuid::new_v4()),
        (AppStore::NoFile, _) => missing(DATABASE_FILE, DATA_FILE),
        (AppStore::Named(_), StoredIdentity::NoFile) => missing(DATA_FILE, DATABASE_FILE),
        (AppStore::Unnamed { orders }, StoredIdentity::NoFile) if orders > 0 => {
            missing(DATA_FILE, DATABASE_FILE)
        }
        (AppStore::Unnamed { .. }, StoredIdentity::NoFile | StoredIdentity::Unnamed) => {
            Ok(Uuid::new_v4())
        }
        (AppStore::Named(app), StoredIdentity::Named(engine)) if app == engine => Ok(app),
        (AppStore::Named(app), StoredIdentity::Named(engine)) => Err(FolderError::Foreign {
            file: DATA_FILE,
            detail: format!("it carries identity {engine}, {DATABASE_FILE} carries {app}"),
        }),
        (AppStore::Named(app), StoredIdentity::Unnamed) => Err(FolderError::Foreign {
            file: DATA_FILE,
            detail: format!("it carries no identity, {DATABASE_FILE} carries {app}"),
        }),
        (AppStore::Unnamed { .. }, StoredIdentity::Named(engine)) => Err(FolderError::Foreign {
            file: DATABASE_FILE,
            detail: format!("it carries no identity, {DATA_FILE} carries {engine}{hint}"),
        }),
    }?;
    orders_present(dir, hint).await?;
    Ok(identity)
}

/// A hint for when `app.sqlite` lacks rows and no log is beside it (a killed server leaves one).
fn wal_hint(dir: &Path) -> String {
    let wal = format!("{DATABASE_FILE}-wal");
    if dir.join(&wal).exists() {
        String::new()
    } else {
        format!("; if the server was killed, its write-ahead log {wal} may have been lost")
    }
}

/// Every fulfillment workflow the engine holds has its order in `app.sqlite`.
async fn orders_present(dir: &Path, hint: String) -> Result<(), FolderError> {
    let keys = Engine::read_workflow_keys(dir, crate::fulfillment::NAME)
        .await
        .map_err(|e| FolderError::Unreadable {
            file: DATA_FILE,
            message: e.to_string(),
        })?;
    if keys.is_empty() {
        return Ok(());
    }
    let path = dir.join(DATABASE_FILE);
    let lost = tokio::task::spawn_blocking(move || -> Result<Vec<String>, rusqlite::Error> {
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let mut exists = conn.prepare("SELECT 1 FROM orders WHERE id = ?1")?;
        let mut lost = Vec::new();
        for key in keys {
            if !exists.exists([&key])? {
                lost.push(key);
            }
        }
        Ok(lost)
    })
    .await
    .map_err(|e| FolderError::Unreadable {
        file: DATABASE_FILE,
        message: e.to_string(),
    })?
    .map_err(|e| FolderError::Unreadable {
        file: DATABASE_FILE,
        message: e.to_string(),
    })?;
    match lost.first() {
        None => Ok(()),
        Some(example) => Err(FolderError::LostOrders {
            count: lost.len(),
            example: example.clone(),
            hint,
        }),
    }
}

/// Reads `app.sqlite` without writing (and without creating it).
fn read_app(path: &Path) -> Result<AppStore, FolderError> {
    let unreadable = |e: rusqlite::Error| FolderError::Unreadable {
        file: DATABASE_FILE,
        message: e.to_string(),
    };
    match std::fs::metadata(path) {
        Err(_) => return Ok(AppStore::NoFile),
        Ok(meta) if meta.len() == 0 => return Ok(AppStore::NoFile),
        Ok(_) => {}
    }
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(unreadable)?;
    let has_table = |name: &str| -> Result<bool, rusqlite::Error> {
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |row| row.get::<_, i64>(0),
        )
        .map(|n| n > 0)
    };
    if has_table("folder_identity").map_err(unreadable)? {
        let recorded: Option<String> = conn
            .query_row("SELECT id FROM folder_identity LIMIT 1", [], |row| {
                row.get(0)
            })
            .optional()
            .map_err(unreadable)?;
        if let Some(recorded) = recorded {
            let identity = Uuid::parse_str(&recorded).map_err(|e| FolderError::Unreadable {
                file: DATABASE_FILE,
                message: format!("its folder identity {recorded:?} is damaged: {e}"),
            })?;
            return Ok(AppStore::Named(identity));
        }
    }
    let orders = if has_table("orders").map_err(unreadable)? {
        conn.query_row("SELECT count(*) FROM orders", [], |row| {
            row.get::<_, i64>(0)
        })
        .map_err(unreadable)?
    } else {
        0
    };
    Ok(AppStore::Unnamed {
        orders: u64::try_from(orders).unwrap_or(0),
    })
}
