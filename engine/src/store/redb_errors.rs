//! How redb's errors become [`StoreError`]s: a full disk (or file-size limit) is
//! [`StoreError::StorageFull`], anything else [`StoreError::Redb`].

use crate::error::StoreError;

/// Whether an I/O error says the disk, or the process's file-size limit, is full.
fn is_full(io: &std::io::Error) -> bool {
    matches!(
        io.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::FileTooLarge
    )
}

impl From<redb::StorageError> for StoreError {
    fn from(error: redb::StorageError) -> Self {
        match error {
            redb::StorageError::Io(io) if is_full(&io) => Self::StorageFull(io.to_string()),
            other => Self::Redb(other.to_string()),
        }
    }
}

impl From<redb::CommitError> for StoreError {
    fn from(error: redb::CommitError) -> Self {
        match error {
            redb::CommitError::Storage(storage) => storage.into(),
            other => Self::Redb(other.to_string()),
        }
    }
}

impl From<redb::TransactionError> for StoreError {
    fn from(error: redb::TransactionError) -> Self {
        match error {
            redb::TransactionError::Storage(storage) => storage.into(),
            other => Self::Redb(other.to_string()),
        }
    }
}

impl From<redb::TableError> for StoreError {
    fn from(error: redb::TableError) -> Self {
        match error {
            redb::TableError::Storage(storage) => storage.into(),
            other => Self::Redb(other.to_string()),
        }
    }
}

impl From<redb::DatabaseError> for StoreError {
    fn from(error: redb::DatabaseError) -> Self {
        match error {
            redb::DatabaseError::Storage(storage) => storage.into(),
            other => Self::Redb(other.to_string()),
        }
    }
}

impl From<redb::Error> for StoreError {
    fn from(error: redb::Error) -> Self {
        match error {
            redb::Error::Io(io) if is_full(&io) => Self::StorageFull(io.to_string()),
            other => Self::Redb(other.to_string()),
        }
    }
}
