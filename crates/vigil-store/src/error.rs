//! The crate's one error type and its `Result` alias.

use std::path::PathBuf;

/// What can go wrong in Vigil's stores.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder of the data directory could not be created, read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done, e.g. "cannot create".
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// SQLite refused an operation on the operational store.
    #[error("operational store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A schema migration failed; the store is left at the migration before it.
    #[error("migration `{id}` failed: {source}")]
    Migration {
        /// The migration's name.
        id: String,
        /// Why it failed.
        source: rusqlite::Error,
    },
    /// Two migrations were registered under one name.
    #[error("migration `{0}` is registered twice")]
    DuplicateMigration(String),
    /// The embedding model failed.
    /// LanceDB refused an operation on memory's tables.
    #[error("memory (LanceDB): {0}")]
    Lance(#[from] lancedb::Error),

    /// Memory's rows could not be converted to or from Arrow.
    #[error("memory (Arrow): {0}")]
    Arrow(#[from] arrow_schema::ArrowError),

    #[error("embedding: {0}")]
    Embedding(String),
    /// The blocking task running a store operation panicked or was cancelled.
    #[error("store task did not complete: {0}")]
    Task(String),
    /// A record that was asked for does not exist.
    #[error("{kind} `{id}` not found")]
    NotFound {
        /// What kind of record, e.g. "review".
        kind: &'static str,
        /// Its id.
        id: String,
    },
    /// Another process has the data directory open, so it cannot be replaced now.
    #[error(
        "the data directory {0} is in use by another Vigil process (`vigil serve` or \
         `vigil ingest`); stop it and try again"
    )]
    InUse(PathBuf),
    /// Input that cannot be stored as given.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was invalid.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An [`Error::Io`] about `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
