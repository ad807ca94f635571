//! Snapshots of the data directory: taken while the service runs, restored with it stopped.
//!
//! The operational store and memory are one SQLite file in WAL mode. `VACUUM INTO` copies it
//! inside one read transaction, so a snapshot is exactly the database as of one commit: writers
//! go on meanwhile, and nothing half-written is included. The copy is compacted and has no WAL.

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};

use crate::layout::DataDir;
use crate::ops::OpsStore;
use crate::{Error, Result};

/// Writes a snapshot of `ops` to `dest`, which must not exist; it is created 0600 on Unix (it
/// holds what the data directory holds).
pub async fn backup(ops: &OpsStore, dest: &Path) -> Result<()> {
    let exists = || Error::Invalid {
        what: "snapshot path",
        reason: format!("{} exists", dest.display()),
    };
    if dest.exists() {
        return Err(exists());
    }
    let target = dest
        .to_str()
        .ok_or_else(|| Error::Invalid {
            what: "snapshot path",
            reason: format!("{} is not UTF-8", dest.display()),
        })?
        .to_owned();
    // `VACUUM INTO` writes into an empty file, keeping its permissions.
    crate::layout::private_options()
        .write(true)
        .create_new(true)
        .open(dest)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => exists(),
            _ => Error::io("cannot create", dest, e),
        })?;
    let written = ops
        .call(move |c| {
            c.execute("VACUUM INTO ?1", [&target])?;
            Ok(())
        })
        .await;
    if let Err(err) = written {
        let _ = std::fs::remove_file(dest);
        return Err(err);
    }
    crate::layout::restrict_file(dest)?;
    tracing::info!(dest = %dest.display(), "snapshot written");
    Ok(())
}

/// Checks `src` and replaces the data directory's database with it: copied beside the database,
/// synced, then renamed over it, so a crash leaves the old or the new database, never a mix.
/// The database it replaces is kept beside it as `vigil.db.replaced-<UTC time>` (with its WAL,
/// so nothing committed to it is lost); its path is returned (`None` when there was none).
/// Refused with [`Error::InUse`] while any process (this one included) has the stores open.
pub fn restore(data_dir: &DataDir, src: &Path) -> Result<Option<PathBuf>> {
    check(src)?;
    data_dir.create()?;
    let _exclusive = data_dir.lock(true)?;
    let target = data_dir.ops_db();
    let staged = sibling(&target, "restoring");
    std::fs::copy(src, &staged).map_err(|e| Error::io("cannot copy snapshot to", &staged, e))?;
    crate::layout::restrict_file(&staged)?;
    std::fs::File::open(&staged)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("cannot sync", &staged, e))?;
    let kept = if target.exists() {
        Some(keep_replaced(&target)?)
    } else {
        None
    };
    for suffix in ["wal", "shm"] {
        let side = sibling(&target, suffix);
        if side.exists() {
            std::fs::remove_file(&side).map_err(|e| Error::io("cannot remove", &side, e))?;
        }
    }
    std::fs::rename(&staged, &target).map_err(|e| Error::io("cannot replace", &target, e))?;
    tracing::info!(src = %src.display(), "snapshot restored");
    Ok(kept)
}

/// Keeps the database about to be replaced under a new name beside it: a hard link (the live
/// name still points at it until the rename), with a copy of its WAL under the new name's.
fn keep_replaced(target: &Path) -> Result<PathBuf> {
    let stamp = utc_stamp(std::time::SystemTime::now());
    let mut kept = target.with_file_name(format!("{}.replaced-{stamp}", file_name(target)));
    let mut n = 1;
    while kept.exists() {
        n += 1;
        kept = target.with_file_name(format!("{}.replaced-{stamp}-{n}", file_name(target)));
    }
    std::fs::hard_link(target, &kept)
        .or_else(|_| std::fs::copy(target, &kept).map(|_| ()))
        .map_err(|e| Error::io("cannot keep the replaced database as", &kept, e))?;
    let wal = sibling(target, "wal");
    if wal.exists() {
        let kept_wal = sibling(&kept, "wal");
        std::fs::copy(&wal, &kept_wal).map_err(|e| Error::io("cannot keep", &kept_wal, e))?;
        crate::layout::restrict_file(&kept_wal)?;
    }
    Ok(kept)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `20261205T004512Z`: the UTC time to the second, for file names.
fn utc_stamp(time: std::time::SystemTime) -> String {
    let secs = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = crate::decisions::civil_date(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A snapshot is restorable when SQLite finds it intact and it holds Vigil's schema.
pub fn check(path: &Path) -> Result<()> {
    let invalid = |reason: String| Error::Invalid {
        what: "snapshot",
        reason,
    };
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| invalid(format!("{} is not a SQLite database: {e}", path.display())))?;
    if verdict != "ok" {
        return Err(invalid(format!("{} is damaged: {verdict}", path.display())));
    }
    let migrations: i64 = conn
        .query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0))
        .map_err(|_| invalid(format!("{} is not a Vigil snapshot", path.display())))?;
    if migrations == 0 {
        return Err(invalid(format!(
            "{} is not a Vigil snapshot",
            path.display()
        )));
    }
    Ok(())
}

/// `vigil.db` -> `vigil.db-<suffix>`.
fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(format!("-{suffix}"));
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OpsOptions;

    #[tokio::test]
    async fn a_snapshot_restores_what_was_committed() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path().join("data"));
        let ops = OpsStore::open(&data, &OpsOptions::default(), &[])
            .await
            .unwrap();
        ops.set_cursor("jira", "one").await.unwrap();
        let snap = dir.path().join("snap.db");
        backup(&ops, &snap).await.unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&snap).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(
            backup(&ops, &snap).await.is_err(),
            "an existing file is kept"
        );
        ops.set_cursor("jira", "two").await.unwrap();
        let open = ops.clone();
        drop(ops);
        // While the stores are open (here or in another process) the restore is refused.
        assert!(matches!(restore(&data, &snap), Err(Error::InUse(_))));
        drop(open);

        let kept = restore(&data, &snap)
            .unwrap()
            .expect("the replaced database is kept");
        let name = kept.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("vigil.db.replaced-"), "{name}");
        let ops = OpsStore::open(&data, &OpsOptions::default(), &[])
            .await
            .unwrap();
        assert_eq!(ops.cursor("jira").await.unwrap().as_deref(), Some("one"));
        // The replaced database holds what was committed after the snapshot.
        let old = Connection::open_with_flags(&kept, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let cursor: String = old
            .query_row("SELECT cursor FROM connector_cursors", [], |r| r.get(0))
            .unwrap();
        assert_eq!(cursor, "two");
    }

    #[test]
    fn utc_stamps_are_civil_times() {
        let at = |secs| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        assert_eq!(utc_stamp(at(0)), "19700101T000000Z");
        assert_eq!(utc_stamp(at(1_796_431_512)), "20261205T004512Z");
        assert_eq!(utc_stamp(at(951_782_400)), "20000229T000000Z");
    }

    #[test]
    fn a_file_that_is_not_a_snapshot_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("x.db");
        std::fs::write(&bad, b"not a database at all, just text").unwrap();
        assert!(check(&bad).is_err());
    }
}
