//! The app's SQLite database: reference data (products, users, shipping zones) and the
//! domain's tables (orders, history, notifications, stock reservations, payment requests,
//! shipments).
//!
//! [`Db`] owns the one connection on a dedicated thread and runs closures on it, so SQLite
//! never blocks the async runtime. The repository modules are plain synchronous functions on a
//! `&rusqlite::Connection`, meant to be called inside [`Db::call`]:
//!
//! ```no_run
//! # async fn demo() -> Result<(), zeroapp_app::db::DbError> {
//! use zeroapp_app::db::{Db, catalog, stock};
//!
//! let db = Db::open("data/app.sqlite").await?;
//! let products = db.call(|conn| catalog::products(conn)).await?;
//! let reservation = db
//!     .call(|conn| stock::reserve(conn, "order-1", &[(1, 2), (5, 1)], 1_700_000_000_000))
//!     .await?;
//! # let _ = (products, reservation);
//! # Ok(()) }
//! ```
//!
//! Every write a durable step makes is idempotent (by order id or by event key), so a step
//! replayed after a crash changes nothing the second time. Functions that write more than one
//! row do so atomically; inside a caller's own transaction they use a savepoint, so they
//! compose (`let tx = conn.transaction()?; … ; tx.commit()?`).
//!
//! Times are milliseconds since the Unix epoch, passed in by the caller (from the engine's
//! journaled clock), never read here.

pub mod auth;
pub mod catalog;
mod error;
pub mod migrate;
pub mod notifications;
pub mod orders;
pub mod payments;
pub mod shipments;
mod sql;
pub mod stock;

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

pub use self::error::DbError;

/// How long a statement waits for another connection's lock before failing with "busy".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A unit of work for the database thread.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// What the database thread is asked to do.
enum Message {
    /// Run a call.
    Job(Job),
    /// Checkpoint the log into the database file, close the connection and stop; then answer.
    Close(oneshot::Sender<Result<(), DbError>>),
}

/// A handle on the database. Cheap to clone; all clones talk to the one thread that owns the
/// connection, which runs their calls one at a time in the order they arrive. The thread
/// stops, closing the connection, on [`Db::close`] or once every clone is dropped.
#[derive(Debug, Clone)]
pub struct Db {
    jobs: mpsc::Sender<Message>,
}

impl Db {
    /// Opens (creating it and its folder if needed) the database file at `path`, configures the
    /// connection and applies the migrations this build has and the file lacks.
    ///
    /// The work runs on the database thread; this waits for it without blocking the runtime.
    /// Fails with [`DbError::Open`] if the file cannot be opened, and with
    /// [`DbError::SchemaTooNew`] if a newer build has migrated it.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, DbError> {
        let path = path.as_ref().to_path_buf();
        Self::start(move || open_file(&path)).await
    }

    /// A private in-memory database with the migrations applied, gone when the last clone is
    /// dropped: for tests that do not care about the file.
    pub async fn open_in_memory() -> Result<Self, DbError> {
        Self::start(|| {
            let conn = Connection::open_in_memory()?;
            configure(&conn)?;
            Ok(conn)
        })
        .await
    }

    /// Starts the database thread, which opens the connection with `open` and migrates it,
    /// and waits for it to be ready.
    async fn start(
        open: impl FnOnce() -> Result<Connection, DbError> + Send + 'static,
    ) -> Result<Self, DbError> {
        let (jobs, queue) = mpsc::channel::<Message>();
        let (ready_tx, ready_rx) = oneshot::channel::<Result<(), DbError>>();
        thread::Builder::new()
            .name("zeroapp-sqlite".into())
            .spawn(move || {
                let opened = open().and_then(|mut conn| {
                    migrate::apply(&mut conn)?;
                    Ok(conn)
                });
                match opened {
                    Ok(mut conn) => {
                        // If the opener stopped waiting, no Db exists to send calls: stop.
                        if ready_tx.send(Ok(())).is_ok() {
                            if let Some(answer) = serve(&mut conn, &queue) {
                                let _ = answer.send(close(conn));
                            }
                        }
                    }
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                    }
                }
            })
            .map_err(|e| DbError::Sqlite(format!("cannot start the database thread: {e}")))?;
        ready_rx.await.map_err(|_| DbError::Closed)??;
        Ok(Self { jobs })
    }

    /// Runs `f` on the database thread with the connection and returns what it returns.
    ///
    /// Calls run one at a time, in the order they were made. A call, once made, runs to the
    /// end even if the caller stops waiting for it. If `f` panics, the call fails with
    /// [`DbError::Panicked`]; a transaction `f` left open is rolled back either way, and the
    /// thread goes on serving other calls.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let (answer_tx, answer_rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = catch_unwind(AssertUnwindSafe(|| f(conn)))
                .unwrap_or_else(|panic| Err(DbError::Panicked(panic_message(&*panic))));
            // The caller may have stopped waiting; the work is done either way.
            let _ = answer_tx.send(result);
        });
        self.jobs
            .send(Message::Job(job))
            .map_err(|_| DbError::Closed)?;
        answer_rx.await.map_err(|_| DbError::Closed)?
    }

    /// Finishes the calls already made, then checkpoints the write-ahead log into the database
    /// file and closes the connection, so the file alone holds every committed row (no
    /// `-wal` is left beside it). Later calls, from any clone, fail with [`DbError::Closed`].
    /// For a clean stop: the process may exit once this returns.
    pub async fn close(&self) -> Result<(), DbError> {
        let (answer_tx, answer_rx) = oneshot::channel();
        self.jobs
            .send(Message::Close(answer_tx))
            .map_err(|_| DbError::Closed)?;
        answer_rx.await.map_err(|_| DbError::Closed)?
    }
}

/// Runs jobs until every [`Db`] clone has been dropped (`None`) or a close is asked for (its
/// answer).
fn serve(
    conn: &mut Connection,
    queue: &mpsc::Receiver<Message>,
) -> Option<oneshot::Sender<Result<(), DbError>>> {
    for message in queue {
        match message {
            Message::Job(job) => {
                job(conn);
                if !conn.is_autocommit() {
                    // A call must not leak an open transaction into the next one.
                    let _ = conn.execute_batch("ROLLBACK");
                }
            }
            Message::Close(answer) => return Some(answer),
        }
    }
    None
}

/// Checkpoints the log into the database file and closes the connection; SQLite removes the
/// `-wal` and `-shm` files when its last connection closes cleanly.
fn close(conn: Connection) -> Result<(), DbError> {
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    conn.close().map_err(|(_, error)| DbError::from(error))
}

/// Opens the file at `path`, creating it and its folder if needed, and configures it.
fn open_file(path: &Path) -> Result<Connection, DbError> {
    let failed = |message: String| DbError::Open {
        path: path.to_path_buf(),
        message,
    };
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).map_err(|e| failed(e.to_string()))?;
    }
    let conn = Connection::open(path).map_err(|e| failed(e.to_string()))?;
    configure(&conn).map_err(|e| failed(e.to_string()))?;
    Ok(conn)
}

/// Sets the connection up:
///
/// * `journal_mode = WAL`: readers never block the writer, and a commit appends to the log
///   instead of rewriting pages.
/// * `synchronous = FULL`: every commit is fsynced before it returns. In WAL mode NORMAL would
///   survive a kill -9 (the log is in the OS's page cache) but not a power loss or an OS crash,
///   which can roll back the last commits. Durable steps journal their completion in redb — an
///   fsynced store — right after the SQLite write returns; if that write could still vanish,
///   replay would skip a step whose effect (a stock decrement, a charge, a shipment) was lost,
///   and the counts would no longer balance. FULL in WAL mode costs one fsync of the log per
///   transaction, the same price the journal pays.
/// * `foreign_keys = ON`: SQLite leaves them off unless asked, per connection.
/// * `busy_timeout`: waits for a lock held by another connection (such as an inspection tool)
///   instead of failing at once.
fn configure(conn: &Connection) -> Result<(), DbError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Answers with the mode in force: "wal", or "memory" for an in-memory database.
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

/// The message of a panic payload, for [`DbError::Panicked`].
fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
