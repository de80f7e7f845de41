//! Error types: what a handler returns, and what each engine operation can fail with.
//!
//! Handlers speak two kinds of failure, as in Restate:
//!
//! * a [`TerminalError`] ends the invocation. It is recorded in the journal as the invocation's
//!   result and returned to the caller; it is never retried.
//! * any other error (and a panic) is *retryable*: the engine backs off and runs the handler again
//!   by replaying its journal. Finished steps are not executed again.
//!
//! [`HandlerError`] carries either kind, so `?` works on any error inside a handler. Wrap an error
//! in [`TerminalError`] (or call [`IntoTerminal::terminal`]) when retrying cannot help.
//!
//! Engine operations have one error type each ([`OpenError`], [`CallError`], [`StoreError`]), so
//! callers match only on what an operation can return.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An error that ends an invocation: recorded as its result, returned to its caller, never retried.
///
/// The `code` follows HTTP conventions (400 bad input, 404 unknown, 409 conflict, 500 default),
/// as Restate's terminal errors do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalError {
    code: u16,
    message: String,
}

impl TerminalError {
    /// The default code of a terminal error.
    pub const DEFAULT_CODE: u16 = 500;
    /// Code of the error recorded when replay finds a journal entry that does not match the code.
    pub const JOURNAL_MISMATCH: u16 = 570;
    /// Code of the error returned to an invocation that was cancelled or killed.
    pub const CANCELLED: u16 = 409;
    /// Code of the error a handler gets for completing an awakeable or promise that is already
    /// completed, or that does not exist.
    pub const CONFLICT: u16 = 409;
    /// Code of the error returned when a durable future did not complete before its timeout.
    pub const TIMED_OUT: u16 = 408;

    /// A terminal error with code 500.
    pub fn new(message: impl Into<String>) -> Self {
        Self::with_code(Self::DEFAULT_CODE, message)
    }

    /// A terminal error with an explicit code.
    pub fn with_code(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The error's code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The error's message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for TerminalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.code, self.message)
    }
}

impl std::error::Error for TerminalError {}

/// The error a handler (or a `run` closure) returns: retryable unless it is a [`TerminalError`].
///
/// Any `std::error::Error` converts into it with `?`.
pub struct HandlerError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl HandlerError {
    /// A retryable error with a plain message.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self(message.into().into())
    }

    /// The terminal error this carries, if it is terminal.
    pub fn as_terminal(&self) -> Option<&TerminalError> {
        self.0.downcast_ref::<TerminalError>()
    }

    /// Whether retrying cannot help.
    pub fn is_terminal(&self) -> bool {
        self.as_terminal().is_some()
    }

    pub(crate) fn into_terminal(self) -> Result<TerminalError, Self> {
        match self.0.downcast::<TerminalError>() {
            Ok(terminal) => Ok(*terminal),
            Err(other) => Err(Self(other)),
        }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for HandlerError {
    fn from(error: E) -> Self {
        Self(Box::new(error))
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Turns any error into a terminal one at a call site: `thing().terminal()?`.
pub trait IntoTerminal<T> {
    /// Maps the error into a [`TerminalError`] with code 500 and the error's message.
    fn terminal(self) -> Result<T, TerminalError>;
}

impl<T, E: fmt::Display> IntoTerminal<T> for Result<T, E> {
    fn terminal(self) -> Result<T, TerminalError> {
        self.map_err(|e| TerminalError::new(e.to_string()))
    }
}

/// Opening the engine's data folder failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The data folder or file could not be created or read.
    #[error("cannot open data folder {path}: {source}")]
    Io {
        /// The folder or file.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Another process has the data file open.
    #[error("data file {0} is in use by another process")]
    Locked(std::path::PathBuf),
    /// The file was written by an incompatible version of the engine.
    #[error(
        "data file {path} has format version {found}, this engine reads version {expected}; \
         use a matching engine release or start from an empty data folder"
    )]
    IncompatibleFormat {
        /// The data file.
        path: std::path::PathBuf,
        /// The version found in the file.
        found: u32,
        /// The version this engine reads and writes.
        expected: u32,
    },
    /// The data file is damaged: the storage layer found it inconsistent, or failed on it.
    #[error(
        "data file {path} is damaged ({message}); restore it from a backup, or move it away to \
         start with an empty engine (every invocation in it would be lost)"
    )]
    Corrupted {
        /// The data file.
        path: std::path::PathBuf,
        /// What the storage layer said.
        message: String,
    },
    /// The data file belongs to another data folder: it carries another folder identity.
    #[error(
        "data file {path} belongs to another data folder (identity {found}, this folder's is \
         {expected}); put back this folder's own file, from a backup taken with the rest of it"
    )]
    ForeignFile {
        /// The data file.
        path: std::path::PathBuf,
        /// The identity in the file.
        found: uuid::Uuid,
        /// The identity the folder expects.
        expected: uuid::Uuid,
    },
    /// The storage layer failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Two registered services share a name.
    #[error("service {0} is registered twice")]
    DuplicateService(String),
    /// The engine must be opened from inside a tokio runtime.
    #[error("the engine must be opened from inside a tokio runtime")]
    NoRuntime,
}

/// The durable store failed. Whether a retry can help is in [`StoreError::is_retryable`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// redb reported an error.
    #[error("storage error: {0}")]
    Redb(String),
    /// A record could not be decoded: the file is damaged or of another format.
    #[error("corrupted record: {0}")]
    Corrupted(String),
    /// The engine is shutting down; nothing more is accepted.
    #[error("the engine is shut down")]
    ShutDown,
    /// The engine was opened for inspection only; it accepts no requests.
    #[error("the engine is open for inspection only")]
    ReadOnly,
    /// The disk (or the file-size limit) is full: nothing was written. Reads go on; writes are
    /// accepted again once space is freed.
    #[error("no space left for the engine's data file ({0}); writes resume once space is freed")]
    StorageFull(String),
    /// A copy of the data file could not be written.
    #[error("backup failed: {0}")]
    Backup(String),
}

impl StoreError {
    /// Whether the same operation may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Redb(_) | Self::StorageFull(_))
    }
}

/// A call, send or attach through the [`Client`](crate::Client) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// No service, object or workflow of that name, or no such handler.
    #[error("unknown target: {0}")]
    UnknownTarget(String),
    /// The target needs a key (objects, workflows) or must not have one (services).
    #[error("bad key: {0}")]
    BadKey(String),
    /// The input does not decode into the handler's input type. Nothing was written.
    #[error("bad input: {0}")]
    BadInput(String),
    /// The invocation has not finished yet (for operations that need a finished one).
    #[error("invocation {0} has not finished")]
    NotFinished(String),
    /// The input could not be serialized, or the output deserialized.
    #[error("cannot encode or decode the payload: {0}")]
    Codec(String),
    /// The invocation ended with a terminal error.
    #[error("invocation failed: {0}")]
    Failed(TerminalError),
    /// No invocation has this id.
    #[error("unknown invocation {0}")]
    UnknownInvocation(String),
    /// An idempotency key was reused with a different request.
    #[error("idempotency key conflict: {0}")]
    Conflict(String),
    /// The awakeable id is malformed, forged, or names no awakeable.
    #[error("unknown awakeable {0}")]
    UnknownAwakeable(String),
    /// The awakeable or promise was already completed; the first completion stands.
    #[error("{0} was already completed")]
    AlreadyCompleted(String),
    /// The engine has no workflow of that name, or the workflow key never ran.
    #[error("unknown workflow {0}")]
    UnknownWorkflow(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CallError {
    /// The terminal error the invocation ended with, if that is what this is.
    pub fn as_terminal(&self) -> Option<&TerminalError> {
        match self {
            Self::Failed(e) => Some(e),
            _ => None,
        }
    }
}

/// The message of a panic payload.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}
