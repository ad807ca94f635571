//! The layout of the data directory: where each store keeps its files.
//!
//! ```text
//! <data_dir>/
//!   vigil.db          operational store and institutional memory (SQLite; vigil.db-wal and
//!                     vigil.db-shm beside it while open)
//!   vigil.lock        held (shared) by every process using the stores; `vigil restore`
//!                     takes it exclusively, so it refuses to run while the service runs
//!   lance/            reserved for the LanceDB memory tables (not written yet)
//! ```
//!
//! Everything Vigil keeps is under this one folder, so copying a snapshot of it (`vigil backup`)
//! or moving it to a new disk is moving one folder.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// File name of the operational store inside the data directory.
pub const OPS_DB_FILE: &str = "vigil.db";
/// File name of the lock every process using the stores holds.
pub const LOCK_FILE: &str = "vigil.lock";
/// Folder of the LanceDB tables inside the data directory.
pub const LANCE_DIR: &str = "lance";

/// The data directory and the paths of the stores inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The layout rooted at `root`; nothing is created until [`DataDir::create`].
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    /// Creates the data directory when missing.
    pub fn create(&self) -> Result<()> {
        std::fs::create_dir_all(&self.root).map_err(|e| Error::io("cannot create", &self.root, e))
    }

    /// The data directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The SQLite file of the operational store.
    pub fn ops_db(&self) -> PathBuf {
        self.root.join(OPS_DB_FILE)
    }

    /// The lock file: shared while the stores are open, exclusive while a snapshot is restored.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join(LOCK_FILE)
    }

    /// Takes the data directory's lock, shared (any number of processes using the stores) or
    /// exclusive (a restore); the lock lasts as long as the returned file is open.
    pub(crate) fn lock(&self, exclusive: bool) -> Result<std::fs::File> {
        let path = self.lock_file();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("cannot open", &path, e))?;
        let taken = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match taken {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::InUse(self.root.clone())),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io("cannot lock", &path, e)),
        }
    }

    /// The folder reserved for LanceDB tables.
    pub fn lance_dir(&self) -> PathBuf {
        self.root.join(LANCE_DIR)
    }
}
