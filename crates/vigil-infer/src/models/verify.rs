//! sha256 verification of model files, streamed, with a per-process cache.
//!
//! Hashing the 90 MB embeddings model takes a noticeable fraction of a second, and a process may
//! load the same model several times (a server's workers, a test binary). So once a file has
//! hashed right, its canonical path, size and modification time are remembered for the life of
//! the process, and a later [`Verification::Cached`] check of the same unchanged file skips the
//! hash. Nothing is written to disk: every new process hashes each file once. A file replaced
//! in place with the same size and a forged modification time would slip past the cache; use
//! [`Verification::Full`] (as `vigil models verify` does) when that matters.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use super::FileSpec;
use crate::{Error, Result};

/// How a model file is checked before it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Check that it exists; do not hash it.
    PresenceOnly,
    /// Hash it unless this process already verified the same path, size and modification time.
    Cached,
    /// Always hash it.
    Full,
}

/// What a verified file looked like when it was hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    size: u64,
    modified: SystemTime,
    sha256: String,
}

static VERIFIED: Mutex<Option<HashMap<PathBuf, Stamp>>> = Mutex::new(None);

/// The sha256 (lowercase hex) and size of a file, read in 1 MiB blocks.
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let io_error = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io_error)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(e)),
        };
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    Ok((hex(&hasher.finalize()), size))
}

/// Checks one file of `model` against its manifest entry.
pub(super) fn verify_file(
    model: &str,
    path: &Path,
    spec: &FileSpec,
    how: Verification,
) -> Result<()> {
    let io_error = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(io_error)?;
    if how == Verification::PresenceOnly {
        return Ok(());
    }
    let key = std::fs::canonicalize(path).map_err(io_error)?;
    let modified = metadata.modified().ok();
    if how == Verification::Cached && is_cached(&key, metadata.len(), modified, &spec.sha256) {
        tracing::debug!(path = %path.display(), "model file verified earlier in this process");
        return Ok(());
    }

    let started = std::time::Instant::now();
    let (actual, actual_size) = sha256_file(path)?;
    tracing::debug!(
        path = %path.display(),
        ms = started.elapsed().as_millis() as u64,
        "model file hashed"
    );
    if actual != spec.sha256 {
        return Err(Error::ChecksumMismatch {
            model: model.to_owned(),
            path: path.to_path_buf(),
            expected: spec.sha256.clone(),
            actual,
            expected_size: spec.size,
            actual_size,
        });
    }

    if let Some(modified) = modified {
        remember(key, actual_size, modified, actual);
    }
    Ok(())
}

fn is_cached(key: &Path, size: u64, modified: Option<SystemTime>, sha256: &str) -> bool {
    let Some(modified) = modified else {
        return false;
    };
    let guard = VERIFIED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    guard
        .as_ref()
        .and_then(|map| map.get(key))
        .is_some_and(|s| s.size == size && s.modified == modified && s.sha256 == sha256)
}

fn remember(key: PathBuf, size: u64, modified: SystemTime, sha256: String) {
    let mut guard = VERIFIED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    guard.get_or_insert_with(HashMap::new).insert(
        key,
        Stamp {
            size,
            modified,
            sha256,
        },
    );
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}
