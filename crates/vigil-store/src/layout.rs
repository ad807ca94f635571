//! The layout of the data directory: where each store keeps its files.
//!
//! ```text
//! <data_dir>/
//!   vigil.db          operational store (SQLite; vigil.db-wal and vigil.db-shm beside it while
//!                     open), including which memory versions are committed
//!   vigil.lock        held (shared) by every process using the stores; `vigil restore`
//!                     takes it exclusively, so it refuses to run while the service runs
//!   memory-prune.lock held by `vigil backup` while it copies `lance/`, so that old table versions
//!                     are not pruned meanwhile
//!   lance/            institutional memory: the LanceDB tables `artifacts`, `chunks`,
//!                     `findings` and `decisions` (one folder each, `<table>.lance/`)
//! ```
//!
//! Everything Vigil keeps is under this one folder, so copying a snapshot of it (`vigil backup`)
//! or moving it to a new disk is moving one folder.
//!
//! It holds design documents and token hashes, so on Unix it is private to the user running
//! Vigil whatever the umask: the folder is created 0700 and the database (with its WAL and
//! shared-memory files), the lock and snapshots 0600; a folder and files made more open before
//! are tightened when the stores are opened (with a warning, not an error, where that is not
//! allowed, e.g. a folder another user owns).

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// File name of the operational store inside the data directory.
pub const OPS_DB_FILE: &str = "vigil.db";
/// File name of the lock every process using the stores holds.
pub const LOCK_FILE: &str = "vigil.lock";
/// File name of the lock between snapshots and pruning of old memory files.
pub const PRUNE_LOCK_FILE: &str = "memory-prune.lock";
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

    /// Creates the data directory when missing (0700 on Unix), and makes an existing one
    /// private to its owner.
    pub fn create(&self) -> Result<()> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&self.root)
            .map_err(|e| Error::io("cannot create", &self.root, e))?;
        restrict(&self.root, 0o700)
    }

    /// Creates the operational store's file when missing (0600 on Unix; SQLite gives its WAL
    /// and shared-memory files the database's permissions) and makes existing ones private.
    pub(crate) fn prepare_ops_db(&self) -> Result<()> {
        let db = self.ops_db();
        private_file(&db)?;
        for suffix in ["-wal", "-shm"] {
            let mut side = db.clone().into_os_string();
            side.push(suffix);
            let side = PathBuf::from(side);
            if side.exists() {
                restrict_file(&side)?;
            }
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

    /// The lock file: shared while the stores are open, exclusive while a snapshot is restored.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join(LOCK_FILE)
    }

    /// Takes the data directory's lock, shared (any number of processes using the stores) or
    /// exclusive (a restore); the lock lasts as long as the returned file is open.
    pub(crate) fn lock(&self, exclusive: bool) -> Result<std::fs::File> {
        let path = self.lock_file();
        let file = open_lock(&path)?;
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

    /// The lock that keeps old memory files from being deleted while a snapshot copies them:
    /// held shared by `vigil backup`, tried exclusively before old table versions are pruned.
    pub fn prune_lock_file(&self) -> PathBuf {
        self.root.join(PRUNE_LOCK_FILE)
    }

    /// Takes the prune lock (see [`DataDir::prune_lock_file`]): shared, waiting for an
    /// exclusive holder; exclusive without waiting, `None` when a snapshot holds it.
    pub(crate) fn prune_lock(&self, exclusive: bool) -> Result<Option<std::fs::File>> {
        let path = self.prune_lock_file();
        let file = open_lock(&path)?;
        if !exclusive {
            // A snapshot waits for a prune in progress (they are short).
            file.lock_shared()
                .map_err(|e| Error::io("cannot lock", &path, e))?;
            return Ok(Some(file));
        }
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io("cannot lock", &path, e)),
        }
    }

    /// The folder of memory's LanceDB tables.
    pub fn lance_dir(&self) -> PathBuf {
        self.root.join(LANCE_DIR)
    }
}

/// Opens (creating when missing) a lock file, 0600 on Unix.
fn open_lock(path: &Path) -> Result<std::fs::File> {
    let file = private_options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::io("cannot open", path, e))?;
    restrict_file(path)?;
    Ok(file)
}

/// Options that create a file 0600 on Unix.
pub(crate) fn private_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Creates `path` empty and 0600 when missing; makes it 0600 when it exists.
pub(crate) fn private_file(path: &Path) -> Result<()> {
    private_options()
        .create(true)
        .truncate(false)
        .append(true)
        .open(path)
        .map_err(|e| Error::io("cannot create", path, e))?;
    restrict_file(path)
}

/// Makes a file readable and writable by its owner only (Unix; nothing elsewhere).
pub(crate) fn restrict_file(path: &Path) -> Result<()> {
    restrict(path, 0o600)
}

/// Makes a folder accessible by its owner only (Unix; nothing elsewhere).
pub(crate) fn restrict_dir(path: &Path) -> Result<()> {
    restrict(path, 0o700)
}

/// Sets `mode` on `path` when it allows more (Unix; nothing elsewhere).
#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| Error::io("cannot read", path, e))?;
    if meta.permissions().mode() & 0o777 & !mode == 0 {
        return Ok(());
    }
    // Best effort: a folder or file owned by another user (a data directory an administrator
    // made, group-writable) cannot be changed, and that must not stop Vigil from starting.
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
        tracing::warn!(path = %path.display(), error = %e, mode = format!("{mode:o}"),
            "cannot make the data directory private");
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) -> Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_data_directory_and_its_files_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::new(tmp.path().join("a/data"));
        data.create().unwrap();
        assert_eq!(mode(data.root()), 0o700);
        let _lock = data.lock(false).unwrap();
        assert_eq!(mode(&data.lock_file()), 0o600);
        data.prepare_ops_db().unwrap();
        assert_eq!(mode(&data.ops_db()), 0o600);

        // Made under a loose umask before: tightened when opened again.
        let old = DataDir::new(tmp.path().join("old"));
        std::fs::create_dir(old.root()).unwrap();
        std::fs::set_permissions(old.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(old.ops_db(), b"").unwrap();
        std::fs::set_permissions(old.ops_db(), std::fs::Permissions::from_mode(0o644)).unwrap();
        let wal = tmp.path().join("old/vigil.db-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).unwrap();
        old.create().unwrap();
        old.prepare_ops_db().unwrap();
        assert_eq!(mode(old.root()), 0o700);
        assert_eq!(mode(&old.ops_db()), 0o600);
        assert_eq!(mode(&wal), 0o600);
    }
}
