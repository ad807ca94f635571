//! The layout of the data directory: where each store keeps its files.
//!
//! ```text
//! <data_dir>/
//!   vigil.db          operational store (SQLite; vigil.db-wal and vigil.db-shm beside it while open)
//!   lance/            institutional memory (LanceDB: one folder per table, versioned manifests)
//! ```
//!
//! Everything Vigil keeps is under this one folder, so copying a snapshot of it (`vigil backup`)
//! or moving it to a new disk is moving one folder.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// File name of the operational store inside the data directory.
pub const OPS_DB_FILE: &str = "vigil.db";
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

    /// Creates the data directory and the LanceDB folder when missing.
    pub fn create(&self) -> Result<()> {
        for dir in [self.root.clone(), self.lance_dir()] {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", dir, e))?;
        }
        Ok(())
    }

    /// The data directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The SQLite file of the operational store.
    pub fn ops_db(&self) -> PathBuf {
        self.root.join(OPS_DB_FILE)
    }

    /// The folder LanceDB keeps its tables in.
    pub fn lance_dir(&self) -> PathBuf {
        self.root.join(LANCE_DIR)
    }
}
