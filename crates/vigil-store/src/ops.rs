//! The operational store: one SQLite file in the data directory for what changes often and must
//! be transactional (reviews, finding workflow, jobs, connector cursors, and the modules that
//! register their own tables).
//!
//! SQLite is synchronous; [`OpsStore`] owns one connection behind a mutex and runs every
//! operation on tokio's blocking pool, so async callers never block a runtime worker. SQLite
//! serialises writers anyway, and in WAL mode a single connection keeps reads and writes of one
//! process consistent without a pool.
//!
//! Connection settings, applied on open:
//! - `journal_mode = WAL`: readers (and `vigil backup`) never block the writer.
//! - `synchronous = FULL`: every commit is fsynced to the WAL before it returns. `NORMAL` would
//!   be faster but may lose the last commits on power loss, and the inbox acknowledges a webhook
//!   only once it is durable, so durability wins.
//! - `foreign_keys = ON`, and a busy timeout so a second process (a backup, `vigil ingest`
//!   while `vigil serve` runs) waits for the lock instead of failing at once.

use rusqlite::Connection;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::layout::DataDir;
use crate::migrate::{self, Migration};
use crate::{Error, Result};

/// How the operational store is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsOptions {
    /// How long a statement waits for a lock held by another connection.
    pub busy_timeout: Duration,
}

impl Default for OpsOptions {
    fn default() -> Self {
        OpsOptions {
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// The operational store: one SQLite connection used through an async API.
#[derive(Debug, Clone)]
pub struct OpsStore {
    conn: Arc<Mutex<Connection>>,
    /// Where it lives (memory's LanceDB tables are beside it).
    data_dir: DataDir,
    /// The data directory's shared lock, held while any clone is alive.
    _lock: Arc<std::fs::File>,
}

impl OpsStore {
    /// Opens (creating when missing) `<data_dir>/vigil.db` and applies the product's migrations
    /// ([`crate::migrations`]) followed by `extra`.
    pub async fn open(
        data_dir: &DataDir,
        options: &OpsOptions,
        extra: &[Migration],
    ) -> Result<Self> {
        data_dir.create()?;
        // A restore interrupted after staging its files is finished first; the copies of one
        // stopped while staging are removed when no other process has the stores open.
        let (staged, staged_lance) = crate::snapshot::staged_paths(data_dir);
        if data_dir
            .root()
            .join(crate::snapshot::RESTORE_MARKER)
            .exists()
        {
            let _exclusive = data_dir.lock(true)?;
            crate::snapshot::finish_restore(data_dir)?;
        } else if staged.exists() || staged_lance.exists() {
            if let Ok(_exclusive) = data_dir.lock(true) {
                crate::snapshot::finish_restore(data_dir)?;
            }
        }
        // Shared with every other process using the stores; only a restore is excluded.
        let lock = data_dir.lock(false)?;
        data_dir.prepare_ops_db()?;
        let path = data_dir.ops_db();
        let options = options.clone();
        let mut all = crate::migrations();
        all.extend_from_slice(extra);

        let conn = blocking(move || {
            let mut conn = Connection::open(&path)?;
            configure(&conn, &options)?;
            let applied = migrate::apply(&mut conn, &all)?;
            tracing::info!(
                path = %path.display(),
                applied = applied.len(),
                "operational store opened"
            );
            Ok(conn)
        })
        .await?;
        Ok(OpsStore {
            conn: Arc::new(Mutex::new(conn)),
            data_dir: data_dir.clone(),
            _lock: Arc::new(lock),
        })
    }

    /// The data directory the store was opened in.
    pub fn data_dir(&self) -> &DataDir {
        &self.data_dir
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| Error::Task("operational store connection poisoned".to_owned()))?;
            f(&mut guard)
        })
        .await
    }

    /// Runs `f` inside one immediate transaction (the write lock is taken at the start), committed
    /// when `f` returns `Ok`, rolled back otherwise.
    pub async fn transaction<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T> + Send + 'static,
    {
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })
        .await
    }

    /// The names of the migrations recorded in the store, oldest first.
    pub async fn applied_migrations(&self) -> Result<Vec<String>> {
        self.call(|conn| migrate::applied(conn)).await
    }
}

/// Applies the connection settings described in the module documentation.
fn configure(conn: &Connection, options: &OpsOptions) -> Result<()> {
    conn.busy_timeout(options.busy_timeout)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Invalid {
            what: "journal mode",
            reason: format!("SQLite kept `{mode}` instead of WAL"),
        });
    }
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
    Ok(())
}

/// Runs `f` on tokio's blocking pool.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn open_sets_wal_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = OpsStore::open(&DataDir::new(dir.path()), &OpsOptions::default(), &[])
            .await
            .unwrap();
        let (mode, fk, sync): (String, i64, i64) = store
            .call(|c| {
                let mode = c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
                let fk = c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
                let sync = c.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
                Ok((mode, fk, sync))
            })
            .await
            .unwrap();
        assert_eq!((mode.as_str(), fk, sync), ("wal", 1, 2));
        assert!(dir.path().join("vigil.db").is_file());
    }

    #[tokio::test]
    async fn a_failed_transaction_is_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let extra = [Migration {
            id: "test/0001_t",
            sql: "CREATE TABLE t (x INTEGER NOT NULL);",
        }];
        let store = OpsStore::open(&DataDir::new(dir.path()), &OpsOptions::default(), &extra)
            .await
            .unwrap();
        let err = store
            .transaction(|tx| {
                tx.execute("INSERT INTO t VALUES (1)", [])?;
                tx.execute("INSERT INTO t VALUES (NULL)", [])?;
                Ok(())
            })
            .await;
        assert!(err.is_err());
        let n: i64 = store
            .call(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(n, 0);
    }
}
