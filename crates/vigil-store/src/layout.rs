//! The layout of the data directory: where each store keeps its files.
//!
//! ```text
//! <data_dir>/
//!   vigil.db          operational store and institutional memory (SQLite; vigil.db-wal and
//!                     vigil.db-shm beside it while open)
//!   lance/            reserved for the LanceDB memory tables (not written yet)
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

    /// The folder reserved for LanceDB tables.
    pub fn lance_dir(&self) -> PathBuf {
        self.root.join(LANCE_DIR)
    }
}
