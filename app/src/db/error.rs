//! The one error type of the SQLite layer.

use std::path::PathBuf;

use super::payments::PaymentStatus;

/// Why a database operation failed.
///
/// The variants split in two (see [`DbError::is_terminal`]): refusals by the data, which a retry
/// would meet again (out of stock, not found, already decided, bad input, a schema from the
/// future), and failures of the database itself, which a retry may get past.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DbError {
    /// SQLite reported an error (busy past the timeout, disk full, a violated constraint...).
    #[error("sqlite: {0}")]
    Sqlite(String),
    /// The database file could not be opened or created.
    #[error("cannot open the database {}: {message}", path.display())]
    Open {
        /// The file that was being opened.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The database records a schema version newer than any migration this build has: it was
    /// written by a newer build, and this one could misread it.
    #[error(
        "the database's schema is at version {found}, but this build knows migrations up to \
         version {supported} only; run a newer build or restore an older database"
    )]
    SchemaTooNew {
        /// The newest version recorded in `schema_migrations`.
        found: i64,
        /// The newest migration this build embeds.
        supported: i64,
    },
    /// A migration recorded in the database has another name than this build's migration of the
    /// same version: the two builds disagree on what the schema is.
    #[error(
        "migration {version} is recorded as {recorded:?}, but this build names it {expected:?}"
    )]
    MigrationMismatch {
        /// The version number both share.
        version: i64,
        /// The name recorded in `schema_migrations`.
        recorded: String,
        /// The name this build gives it.
        expected: String,
    },
    /// The database thread has stopped, so the call could not run or its answer was lost.
    #[error("the database thread has stopped")]
    Closed,
    /// The closure given to [`Db::call`](super::Db::call) panicked; its transaction, if any,
    /// was rolled back and the database thread goes on serving.
    #[error("a database call panicked: {0}")]
    Panicked(String),
    /// A row the operation needs does not exist.
    #[error("{what} {id:?} not found")]
    NotFound {
        /// The kind of row: "product", "order", "zone", "payment request"...
        what: &'static str,
        /// Its key.
        id: String,
    },
    /// A reservation asked for more of a product than is in stock. Nothing was reserved.
    #[error(
        "not enough stock of {name} (product {product_id}): {requested} requested, \
         {available} available"
    )]
    OutOfStock {
        /// The product that is short.
        product_id: i64,
        /// Its name, for the shopper.
        name: String,
        /// The quantity the order asked for.
        requested: u32,
        /// The quantity in stock.
        available: u32,
    },
    /// A payment request was decided before; it is decided once only.
    #[error("the payment of order {order_id:?} was already decided: {status}")]
    AlreadyDecided {
        /// The order whose payment it is.
        order_id: String,
        /// The decision that stands.
        status: PaymentStatus,
    },
    /// The arguments make no sense (an empty order, a zero quantity, totals that do not add up).
    #[error("invalid input: {0}")]
    Invalid(String),
}

impl DbError {
    /// True for refusals by the data, which a retry would meet again: a durable step should
    /// turn these into a terminal error. False for failures of the database (busy, I/O, the
    /// thread stopped, a panic), which a retry may get past.
    pub fn is_terminal(&self) -> bool {
        match self {
            Self::SchemaTooNew { .. }
            | Self::MigrationMismatch { .. }
            | Self::NotFound { .. }
            | Self::OutOfStock { .. }
            | Self::AlreadyDecided { .. }
            | Self::Invalid(_) => true,
            Self::Sqlite(_) | Self::Open { .. } | Self::Closed | Self::Panicked(_) => false,
        }
    }

    /// A [`DbError::NotFound`] for a row of kind `what` with key `id`.
    pub fn not_found(what: &'static str, id: impl ToString) -> Self {
        Self::NotFound {
            what,
            id: id.to_string(),
        }
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Sqlite(error.to_string())
    }
}
