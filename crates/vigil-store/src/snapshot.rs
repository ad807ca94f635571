//! Snapshots of the data directory: taken while the service runs, restored with it stopped.
//!
//! A snapshot is a folder:
//!
//! ```text
//! <snapshot>/
//!   vigil.db        the operational store as of one commit (`VACUUM INTO`: compacted, no WAL)
//!   lance/          memory's LanceDB tables
//!   snapshot.json   the version of each LanceDB table the snapshot holds, and the size and
//!                   SHA-256 of every file beside it; written last
//! ```
//!
//! Files are written 0600 and folders 0700 on Unix, whatever the umask. A restore checks every
//! file against `snapshot.json` before anything is replaced: a file missing, cut short or
//! changed since the snapshot was taken makes it refuse.
//!
//! Consistency between the two stores: the operational store is copied first, inside one read
//! transaction, while writers go on. Then the current version of each LanceDB table is
//! recorded and the table folders are copied. LanceDB never changes a file once written (a new
//! table version is new files and a new manifest), and memory writes LanceDB before it records
//! the commit in SQLite, so the recorded versions hold every row the copied database refers
//! to; rows of writes the copied database does not know are ignored by readers, as after a
//! crash. A restore rolls each table back to its recorded version.
//!
//! A restore stages both stores beside the live ones, writes a `restore.pending` marker, then
//! swaps the memory folder and the database; should it be interrupted, the next open of the
//! stores finishes it, so the data directory never holds one store from the snapshot and the
//! other from before.

use rusqlite::{Connection, OpenFlags};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::layout::{DataDir, LANCE_DIR, OPS_DB_FILE};
use crate::ops::OpsStore;
use crate::{Error, Result};

/// The file naming what a snapshot holds.
pub const SNAPSHOT_FILE: &str = "snapshot.json";
/// Marker of a restore that has staged its files and not yet swapped them all in.
pub const RESTORE_MARKER: &str = "restore.pending";

/// Where a restore stages the database and the memory folder before swapping them in.
pub(crate) fn staged_paths(data_dir: &DataDir) -> (PathBuf, PathBuf) {
    (
        sibling(&data_dir.ops_db(), "restoring"),
        data_dir.root().join(format!("{LANCE_DIR}.restoring")),
    )
}

/// The restore marker's content when the snapshot has memory tables, and when not.
const WITH_MEMORY: &[u8] = b"restore staged: database and memory\n";
const WITHOUT_MEMORY: &[u8] = b"restore staged: database\n";

/// What a snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotInfo {
    /// Layout version of the snapshot folder (1).
    pub format: u32,
    /// Each LanceDB table and the version of it the snapshot holds.
    pub lance_tables: BTreeMap<String, u64>,
    /// Bytes written.
    #[serde(default)]
    pub bytes: u64,
    /// Every file of the snapshot but `snapshot.json`, by its path inside the snapshot folder
    /// (`/`-separated). Absent from snapshots of earlier releases, whose files go unchecked.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, FileSum>,
}

/// The size and digest of one file of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileSum {
    /// Its length in bytes.
    pub bytes: u64,
    /// SHA-256 of its content, lowercase hex.
    pub sha256: String,
}

/// What a restore replaced, kept beside the data directory's stores.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    /// The database it replaced (`vigil.db.replaced-<UTC time>`).
    pub kept_db: Option<PathBuf>,
    /// The memory folder it replaced (`lance.replaced-<UTC time>`).
    pub kept_lance: Option<PathBuf>,
}

fn invalid(what: &'static str, reason: String) -> Error {
    Error::Invalid { what, reason }
}

/// Writes a snapshot of the data directory `ops` lives in to the folder `dest`, which must not
/// exist; it is created 0700 on Unix (it holds what the data directory holds).
pub async fn backup(ops: &OpsStore, dest: &Path) -> Result<SnapshotInfo> {
    let target = dest
        .join(OPS_DB_FILE)
        .to_str()
        .ok_or_else(|| invalid("snapshot path", format!("{} is not UTF-8", dest.display())))?
        .to_owned();
    // A snapshot inside the data directory would copy itself (`lance/`) or be restored over.
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if let (Ok(root), Ok(parent)) = (
        std::fs::canonicalize(ops.data_dir().root()),
        std::fs::canonicalize(&parent),
    ) {
        if parent.starts_with(&root) {
            return Err(invalid(
                "snapshot path",
                format!(
                    "{} is inside the data directory {}; choose a folder outside it",
                    dest.display(),
                    root.display()
                ),
            ));
        }
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dest).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            invalid("snapshot path", format!("{} exists", dest.display()))
        }
        _ => Error::io("cannot create", dest, e),
    })?;
    let written = write_snapshot(ops, dest, target).await;
    match written {
        Ok(info) => {
            tracing::info!(dest = %dest.display(), bytes = info.bytes, "snapshot written");
            Ok(info)
        }
        Err(err) => {
            let _ = std::fs::remove_dir_all(dest);
            Err(err)
        }
    }
}

async fn write_snapshot(ops: &OpsStore, dest: &Path, target: String) -> Result<SnapshotInfo> {
    // `VACUUM INTO` writes into an empty file, keeping its permissions.
    crate::layout::private_options()
        .write(true)
        .create_new(true)
        .open(&target)
        .map_err(|e| Error::io("cannot create", &target, e))?;
    ops.call(move |c| {
        c.execute("VACUUM INTO ?1", [&target])?;
        Ok(())
    })
    .await?;
    let mut files = BTreeMap::new();
    let db = dest.join(OPS_DB_FILE);
    files.insert(OPS_DB_FILE.to_owned(), sum_file(&db)?);

    let lance = ops.data_dir().lance_dir();
    let mut lance_tables = BTreeMap::new();
    // Held while the tables are copied: no version's files are pruned meanwhile.
    let _no_pruning = ops.data_dir().prune_lock(false)?;
    if lance.is_dir() {
        let uri = lance
            .to_str()
            .ok_or_else(|| invalid("memory folder", format!("{} is not UTF-8", lance.display())))?;
        let db = lancedb::connect(uri).execute().await?;
        for name in db.table_names().execute().await? {
            let version = db
                .open_table(name.as_str())
                .execute()
                .await?
                .version()
                .await?;
            lance_tables.insert(name, version);
        }
        copy_tree(&lance, &dest.join(LANCE_DIR), LANCE_DIR, &mut files)?;
    }
    let info = SnapshotInfo {
        format: 1,
        lance_tables,
        bytes: files.values().map(|f| f.bytes).sum(),
        files,
    };
    let json = serde_json::to_vec_pretty(&info).map_err(|e| invalid("snapshot", e.to_string()))?;
    let path = dest.join(SNAPSHOT_FILE);
    crate::layout::private_options()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &json))
        .map_err(|e| Error::io("cannot write", &path, e))?;
    sync_tree(dest)?;
    Ok(info)
}

/// Copies the folder `from` to `to` (which must not exist), file by file, files 0600 and
/// folders 0700; records each file's size and digest in `sums` under `prefix/<path inside>`.
/// A file that disappears meanwhile is skipped: it belonged to no version the snapshot records.
fn copy_tree(
    from: &Path,
    to: &Path,
    prefix: &str,
    sums: &mut BTreeMap<String, FileSum>,
) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(to)
        .map_err(|e| Error::io("cannot create", to, e))?;
    let entries = std::fs::read_dir(from).map_err(|e| Error::io("cannot read", from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("cannot read", from, e))?;
        let path = entry.path();
        let dest = to.join(entry.file_name());
        let name = format!("{prefix}/{}", entry.file_name().to_string_lossy());
        let kind = entry
            .file_type()
            .map_err(|e| Error::io("cannot read", &path, e))?;
        if kind.is_dir() {
            copy_tree(&path, &dest, &name, sums)?;
        } else if kind.is_file() {
            match copy_file(&path, &dest) {
                Ok(sum) => {
                    sums.insert(name, sum);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("cannot copy", &path, e)),
            }
        }
    }
    Ok(())
}

/// Copies one file to `to` (created 0600, must not exist), hashing what it copies.
fn copy_file(from: &Path, to: &Path) -> std::io::Result<FileSum> {
    use std::io::Write;
    let source = std::fs::File::open(from)?;
    let mut dest = crate::layout::private_options()
        .write(true)
        .create_new(true)
        .open(to)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", to.display())))?;
    let sum = digest(source, |chunk| dest.write_all(chunk))?;
    dest.flush()?;
    Ok(sum)
}

/// The size and digest of the file at `path`.
fn sum_file(path: &Path) -> Result<FileSum> {
    std::fs::File::open(path)
        .and_then(|f| digest(f, |_| Ok(())))
        .map_err(|e| Error::io("cannot read", path, e))
}

/// Reads `source` to its end in 1 MiB pieces, handing each to `each`; returns its size and
/// SHA-256.
fn digest(
    mut source: std::fs::File,
    mut each: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<FileSum> {
    use sha2::Digest;
    use std::io::Read;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        each(&buf[..n])?;
        bytes += n as u64;
    }
    let sha256 = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(FileSum { bytes, sha256 })
}

/// Checks the files a restore copied (`copied`, by path inside the snapshot) against those the
/// snapshot recorded under `prefix`.
fn verify(
    src: &Path,
    info: &SnapshotInfo,
    prefix: &str,
    copied: &BTreeMap<String, FileSum>,
) -> Result<()> {
    if !info.files.is_empty() {
        if let Some(extra) = copied.keys().find(|k| !info.files.contains_key(*k)) {
            return Err(damaged(src, extra, "is not one the snapshot recorded"));
        }
    }
    for (name, want) in info.files.range(prefix.to_owned()..) {
        if !name.starts_with(prefix) {
            break;
        }
        let got = copied.get(name);
        present_at_size(src, name, got.map(|g| g.bytes), want)?;
        if got.is_some_and(|g| g.sha256 != want.sha256) {
            return Err(damaged(
                src,
                name,
                "has changed since the snapshot was taken",
            ));
        }
    }
    Ok(())
}

/// Checks that the snapshot's file `name`, of `bytes` bytes when there, is as recorded.
fn present_at_size(src: &Path, name: &str, bytes: Option<u64>, want: &FileSum) -> Result<()> {
    match bytes {
        None => Err(damaged(src, name, "is missing")),
        Some(n) if n != want.bytes => Err(damaged(
            src,
            name,
            &format!("is {n} bytes, {} when the snapshot was taken", want.bytes),
        )),
        Some(_) => Ok(()),
    }
}

fn damaged(src: &Path, name: &str, what: &str) -> Error {
    invalid(
        "snapshot",
        format!("{}: {name} {what}; it cannot be restored", src.display()),
    )
}

/// fsyncs every file under `dir`, then the folders.
fn sync_tree(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("cannot read", dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| Error::io("cannot read", dir, e))?.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io("cannot sync", &path, e))?;
        }
    }
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("cannot sync", dir, e))?;
    Ok(())
}

/// Reads and checks a snapshot: a folder written by [`backup`], or the single database file
/// older releases wrote (memory was inside it then, and is moved into LanceDB at the next
/// open). Returns the database file and, for a folder, what it holds.
pub fn inspect(src: &Path) -> Result<(PathBuf, Option<SnapshotInfo>)> {
    if !src.is_dir() {
        if !src.exists() {
            return Err(invalid(
                "snapshot",
                format!("{} does not exist", src.display()),
            ));
        }
        check(src)?;
        // A database that records memory commits belongs to a snapshot folder: restored alone,
        // memory would lose every row it refers to.
        let conn = Connection::open_with_flags(src, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let commits: i64 = conn
            .query_row("SELECT count(*) FROM mem_versions", [], |r| r.get(0))
            .unwrap_or(0);
        if commits > 0 {
            return Err(invalid(
                "snapshot",
                format!(
                    "{} is the database of a snapshot folder; restore the folder it is in, \
                     which holds the memory tables it refers to",
                    src.display()
                ),
            ));
        }
        return Ok((src.to_path_buf(), None));
    }
    let info_path = src.join(SNAPSHOT_FILE);
    let raw = std::fs::read(&info_path).map_err(|_| {
        invalid(
            "snapshot",
            format!(
                "{} has no {SNAPSHOT_FILE}: not a snapshot, or one whose writing was interrupted",
                src.display()
            ),
        )
    })?;
    let info: SnapshotInfo = serde_json::from_slice(&raw)
        .map_err(|e| invalid("snapshot", format!("{}: {e}", info_path.display())))?;
    if info.format != 1 {
        return Err(invalid(
            "snapshot",
            format!(
                "{} is of format {}, this release reads 1",
                src.display(),
                info.format
            ),
        ));
    }
    for (name, want) in &info.files {
        let path = name
            .split('/')
            .fold(src.to_path_buf(), |p, part| p.join(part));
        let bytes = std::fs::metadata(&path).ok().map(|m| m.len());
        present_at_size(src, name, bytes, want)?;
    }
    let db = src.join(OPS_DB_FILE);
    check(&db)?;
    for (table, version) in &info.lance_tables {
        let versions = src
            .join(LANCE_DIR)
            .join(format!("{table}.lance"))
            .join("_versions");
        if manifest_of(&versions, *version).is_none() {
            return Err(invalid(
                "snapshot",
                format!(
                    "{} lacks version {version} of memory table `{table}`",
                    src.display()
                ),
            ));
        }
    }
    Ok((db, Some(info)))
}

/// The version a manifest file name stands for: `<n>.manifest` (older naming) or
/// `<u64::MAX - n, 20 digits>.manifest`.
fn manifest_version(name: &str) -> Option<u64> {
    let n: u64 = name.strip_suffix(".manifest")?.parse().ok()?;
    Some(if name.len() == 29 && n > u64::MAX / 2 {
        u64::MAX - n
    } else {
        n
    })
}

fn manifest_of(versions: &Path, version: u64) -> Option<PathBuf> {
    std::fs::read_dir(versions)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(manifest_version)
                == Some(version)
        })
}

/// Checks `src` (see [`inspect`]) and replaces the data directory's stores with it. What it
/// replaces is kept beside them (the database with its WAL, so nothing committed to it is
/// lost). Refused with [`Error::InUse`] while any process (this one included) has the stores
/// open.
pub fn restore(data_dir: &DataDir, src: &Path) -> Result<Restored> {
    let (db, info) = inspect(src)?;
    data_dir.create()?;
    let _exclusive = data_dir.lock(true)?;
    // Also removes what an earlier restore staged and never swapped in.
    finish_restore(data_dir)?;
    let (staged, staged_lance) = staged_paths(data_dir);
    if let Err(err) = stage(src, &db, info.as_ref(), &staged, &staged_lance) {
        let _ = std::fs::remove_file(&staged);
        let _ = std::fs::remove_dir_all(&staged_lance);
        return Err(err);
    }
    let marker = data_dir.root().join(RESTORE_MARKER);
    let plan: &[u8] = if staged_lance.exists() {
        WITH_MEMORY
    } else {
        WITHOUT_MEMORY
    };
    std::fs::write(&marker, plan).map_err(|e| Error::io("cannot write", &marker, e))?;
    sync_dir(data_dir.root())?;
    let restored = finish_restore(data_dir)?;
    tracing::info!(src = %src.display(), "snapshot restored");
    Ok(restored)
}

/// Copies the snapshot's database to `staged` and its memory folder to `staged_lance`, each
/// file checked against what the snapshot recorded, and rolls each table back to its
/// recorded version.
fn stage(
    src: &Path,
    db: &Path,
    info: Option<&SnapshotInfo>,
    staged: &Path,
    staged_lance: &Path,
) -> Result<()> {
    let sum = copy_file(db, staged).map_err(|e| Error::io("cannot copy snapshot to", staged, e))?;
    std::fs::File::open(staged)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("cannot sync", staged, e))?;
    let Some(info) = info else {
        return Ok(());
    };
    verify(
        src,
        info,
        OPS_DB_FILE,
        &BTreeMap::from([(OPS_DB_FILE.to_owned(), sum)]),
    )?;
    let from = src.join(LANCE_DIR);
    if from.is_dir() {
        let mut copied = BTreeMap::new();
        copy_tree(&from, staged_lance, LANCE_DIR, &mut copied)?;
        verify(src, info, &format!("{LANCE_DIR}/"), &copied)?;
        for (table, version) in &info.lance_tables {
            roll_back(&staged_lance.join(format!("{table}.lance")), *version)?;
        }
        sync_tree(staged_lance)?;
    }
    Ok(())
}

/// Removes the manifests of versions after `version` from a copied table, so that `version` is
/// the table's latest.
fn roll_back(table: &Path, version: u64) -> Result<()> {
    let versions = table.join("_versions");
    let entries =
        std::fs::read_dir(&versions).map_err(|e| Error::io("cannot read", &versions, e))?;
    for entry in entries {
        let path = entry
            .map_err(|e| Error::io("cannot read", &versions, e))?
            .path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if manifest_version(name).is_some_and(|v| v > version) {
            std::fs::remove_file(&path).map_err(|e| Error::io("cannot remove", &path, e))?;
        }
    }
    let hint = table.join("_latest.manifest");
    if hint.exists() {
        let manifest = manifest_of(&versions, version).ok_or_else(|| {
            invalid(
                "snapshot",
                format!("{} lacks version {version}", table.display()),
            )
        })?;
        std::fs::copy(&manifest, &hint).map_err(|e| Error::io("cannot write", &hint, e))?;
    }
    Ok(())
}

/// Finishes a restore that staged its files ([`RESTORE_MARKER`]): the memory folder is swapped
/// first, then the database, then the marker removed; each step is skipped when already done,
/// so running it again after an interruption completes the same restore. Nothing to do
/// without the marker. The caller holds the data directory's lock exclusively.
pub(crate) fn finish_restore(data_dir: &DataDir) -> Result<Restored> {
    let marker = data_dir.root().join(RESTORE_MARKER);
    let mut restored = Restored::default();
    let (staged, staged_lance) = staged_paths(data_dir);
    if !marker.exists() {
        // Copies a restore staged before it was stopped, short of its marker: never used.
        if staged.exists() {
            std::fs::remove_file(&staged).map_err(|e| Error::io("cannot remove", &staged, e))?;
        }
        if staged_lance.exists() {
            std::fs::remove_dir_all(&staged_lance)
                .map_err(|e| Error::io("cannot remove", &staged_lance, e))?;
        }
        return Ok(restored);
    }
    let target = data_dir.ops_db();
    let lance = data_dir.lance_dir();
    let plan = std::fs::read(&marker).map_err(|e| Error::io("cannot read", &marker, e))?;
    let keep_lance = |restored: &mut Restored| -> Result<()> {
        let kept = unused(
            data_dir.root(),
            &format!(
                "{LANCE_DIR}.replaced-{}",
                utc_stamp(std::time::SystemTime::now())
            ),
        );
        std::fs::rename(&lance, &kept).map_err(|e| Error::io("cannot keep", &lance, e))?;
        restored.kept_lance = Some(kept);
        Ok(())
    };
    if plan == WITH_MEMORY {
        // The staged folder still there means it has not replaced the live one yet.
        if staged_lance.exists() {
            if lance.exists() {
                keep_lance(&mut restored)?;
            }
            std::fs::rename(&staged_lance, &lance)
                .map_err(|e| Error::io("cannot restore", &lance, e))?;
        }
    } else if staged.exists() && lance.exists() {
        // A snapshot without memory tables (an older release's single file, whose memory is
        // inside the database) replaces the memory folder with none.
        keep_lance(&mut restored)?;
    }
    if staged.exists() {
        if target.exists() {
            restored.kept_db = Some(keep_replaced(&target)?);
        }
        for suffix in ["wal", "shm"] {
            let side = sibling(&target, suffix);
            if side.exists() {
                std::fs::remove_file(&side).map_err(|e| Error::io("cannot remove", &side, e))?;
            }
        }
        std::fs::rename(&staged, &target).map_err(|e| Error::io("cannot replace", &target, e))?;
    }
    sync_dir(data_dir.root())?;
    std::fs::remove_file(&marker).map_err(|e| Error::io("cannot remove", &marker, e))?;
    Ok(restored)
}

fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("cannot sync", dir, e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// `dir/name`, or `dir/name-2`, `-3`... when taken.
fn unused(dir: &Path, name: &str) -> PathBuf {
    let mut path = dir.join(name);
    let mut n = 1;
    while path.exists() {
        n += 1;
        path = dir.join(format!("{name}-{n}"));
    }
    path
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
        // SQLite lists every problem it found, one per line; the first says enough.
        let first = verdict.lines().next().unwrap_or_default();
        let first: String = first.chars().take(200).collect();
        return Err(invalid(format!(
            "{} is damaged (SQLite's integrity check: {first})",
            path.display()
        )));
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
        let snap = dir.path().join("snap");
        backup(&ops, &snap).await.unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&snap), 0o700);
            assert_eq!(mode(&snap.join(OPS_DB_FILE)), 0o600);
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
            .kept_db
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
    fn manifest_names_of_both_namings_give_versions() {
        assert_eq!(manifest_version("7.manifest"), Some(7));
        let v2 = format!("{:020}.manifest", u64::MAX - 42);
        assert_eq!(manifest_version(&v2), Some(42));
        assert_eq!(manifest_version("x.manifest"), None);
        assert_eq!(manifest_version("7.txn"), None);
    }

    #[test]
    fn a_folder_without_its_description_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = inspect(dir.path()).unwrap_err().to_string();
        assert!(err.contains("snapshot.json"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_a_snapshot_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("x.db");
        std::fs::write(&bad, b"not a database at all, just text").unwrap();
        assert!(check(&bad).is_err());
    }
}
