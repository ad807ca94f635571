//! Institutional memory: artifact versions, their chunks with embeddings, finding texts with
//! embeddings and decisions with their rationale and embeddings; hybrid search that fuses a
//! full-text ranking (SQLite FTS5, BM25) and a vector ranking (cosine) by reciprocal rank.
//!
//! The tables live in the operational store's SQLite file, so a new artifact version (its
//! chunks and its row) is written in one transaction: a process killed mid-write leaves nothing
//! of that version behind, and readers never see half of one.
//!
//! Searches run on an in-process index of the chunks ([`crate::index`]), kept in step with the
//! tables before every query; the FTS5 table serves the smaller searches over decisions.
// TODO(lancedb): the architecture puts memory in LanceDB under `<data_dir>/lance/` (versioned
// manifests, ANN indexes past a million chunks). This module's API is what that backend must
// offer; the in-process index is an exact scan, which holds every vector in memory.

use rusqlite::{params, OptionalExtension, Transaction};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::embed::TextEmbedder;
use crate::index::ChunkIndex;
use crate::migrate::Migration;
use crate::ops::OpsStore;
use crate::{Error, Result};

/// Memory's schema.
pub const MIGRATIONS: &[Migration] = &[Migration {
    id: "memory/0001_artifacts_chunks_findings_decisions",
    sql: "
CREATE TABLE mem_artifacts (
    artifact_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    tool TEXT NOT NULL,
    external_key TEXT,
    content_hash TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    team TEXT,
    project TEXT,
    due_date TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (artifact_id, version)
);
CREATE TABLE mem_chunks (
    id INTEGER PRIMARY KEY,
    artifact_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    ordinal INTEGER NOT NULL,
    tool TEXT NOT NULL,
    team TEXT,
    project TEXT,
    created_at INTEGER NOT NULL,
    heading TEXT NOT NULL,
    text TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    vector BLOB NOT NULL,
    FOREIGN KEY (artifact_id, version) REFERENCES mem_artifacts (artifact_id, version)
        DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX mem_chunks_by_version ON mem_chunks (artifact_id, version);
CREATE VIRTUAL TABLE mem_chunks_fts USING fts5 (text, content = 'mem_chunks', content_rowid = 'id');
CREATE TRIGGER mem_chunks_fts_insert AFTER INSERT ON mem_chunks BEGIN
    INSERT INTO mem_chunks_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TABLE mem_findings (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    artifact_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    rule TEXT NOT NULL,
    element TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    tool TEXT NOT NULL,
    team TEXT,
    project TEXT,
    created_at INTEGER NOT NULL,
    vector BLOB NOT NULL
);
CREATE TABLE mem_decisions (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    vector BLOB NOT NULL
);",
}];

/// Largest chunk, in characters; longer sections are split at paragraph boundaries.
const MAX_CHUNK_CHARS: usize = 800;
/// Reciprocal rank fusion constant (the customary 60).
const RRF_K: f32 = 60.0;

/// Where an artifact version came from and what it says: the input to [`Memory::put_artifact`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArtifactRecord {
    /// Stable artifact id (the tool's key, or derived from the path).
    pub artifact_id: String,
    /// Source tool: `jira`, `confluence`, `github`, `markdown`, ...
    pub tool: String,
    /// External key such as `PROJ-123`.
    pub external_key: Option<String>,
    /// Title.
    pub title: String,
    /// Owning team.
    pub team: Option<String>,
    /// Project or repository.
    pub project: Option<String>,
    /// Due date, `YYYY-MM-DD`.
    pub due_date: Option<String>,
    /// Sections as (heading, normalized text).
    pub sections: Vec<(String, String)>,
    /// When it was recorded, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

impl ArtifactRecord {
    /// The record of a normalized artifact, with headings joined by ` > `.
    pub fn from_artifact(artifact: &vigil_core::Artifact, created_at_ms: i64) -> ArtifactRecord {
        let tool = serde_json::to_value(artifact.format)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "unknown".to_owned());
        ArtifactRecord {
            artifact_id: artifact.id.clone(),
            tool,
            external_key: artifact.meta.key.clone(),
            title: artifact.title.clone(),
            team: artifact.meta.team.clone(),
            project: artifact.meta.project.clone(),
            due_date: artifact.meta.due_date.clone(),
            sections: artifact
                .sections
                .iter()
                .map(|s| (s.heading_path.join(" > "), s.text.clone()))
                .collect(),
            created_at_ms,
        }
    }

    /// The normalized text of the whole artifact.
    pub fn text(&self) -> String {
        let parts: Vec<&str> = self.sections.iter().map(|(_, t)| t.as_str()).collect();
        parts.join("\n\n")
    }

    /// SHA-256 of title and text: equal hashes mean an unchanged artifact.
    pub fn content_hash(&self) -> String {
        hash(&format!("{}\n{}", self.title, self.text()))
    }
}

/// What [`Memory::put_artifact`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutOutcome {
    /// The artifact's version after the call (from 1).
    pub version: u32,
    /// Whether a new version was written (false: content unchanged).
    pub created: bool,
    /// Chunks embedded now.
    pub embedded: usize,
    /// Chunks whose embedding was reused from the previous version (same text).
    pub reused: usize,
}

/// Filters applied to searches; `None` is no filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchFilter {
    /// Owning team.
    pub team: Option<String>,
    /// Project.
    pub project: Option<String>,
    /// Source tool.
    pub tool: Option<String>,
    /// Recorded at or after, ms since the epoch.
    pub since_ms: Option<i64>,
    /// Recorded before, ms since the epoch.
    pub until_ms: Option<i64>,
}

/// One chunk found by [`Memory::search_chunks`].
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkHit {
    /// The chunk's row id.
    pub chunk_id: i64,
    /// The artifact.
    pub artifact_id: String,
    /// Its version.
    pub version: u32,
    /// The chunk's text.
    pub text: String,
    /// Fused score (higher is better).
    pub score: f32,
    /// Rank in the vector results (1-based), when there.
    pub vector_rank: Option<usize>,
    /// Rank in the full-text results (1-based), when there.
    pub text_rank: Option<usize>,
}

/// Institutional memory over the operational store's connection.
#[derive(Debug, Clone)]
pub struct Memory {
    ops: OpsStore,
    dims: usize,
    /// The chunk search index, shared by clones; built at the first search.
    index: Arc<Mutex<ChunkIndex>>,
}

impl Memory {
    /// Memory for embeddings of `dims` dimensions (its tables come with the store's migrations).
    pub fn new(ops: OpsStore, dims: usize) -> Memory {
        Memory {
            ops,
            dims,
            index: Arc::new(Mutex::new(ChunkIndex::new(dims))),
        }
    }

    /// Dimensions of the stored embeddings.
    pub fn dimensions(&self) -> usize {
        self.dims
    }

    /// The store it lives in.
    pub(crate) fn ops(&self) -> &OpsStore {
        &self.ops
    }

    /// Stores `record` as a new version when its content differs from the latest version, in
    /// one transaction; chunks whose text is unchanged reuse their stored embedding instead of
    /// being re-embedded.
    pub async fn put_artifact(
        &self,
        record: &ArtifactRecord,
        embedder: &dyn TextEmbedder,
    ) -> Result<PutOutcome> {
        let hash = record.content_hash();
        let latest = self.latest_version(&record.artifact_id).await?;
        if let Some((version, latest_hash)) = &latest {
            if *latest_hash == hash {
                return Ok(PutOutcome {
                    version: *version,
                    created: false,
                    embedded: 0,
                    reused: 0,
                });
            }
        }

        let chunks = chunk_sections(&record.sections);
        let known = match &latest {
            Some((v, _)) => self.chunk_vectors(&record.artifact_id, *v).await?,
            None => HashMap::new(),
        };
        let (vectors, embedded) = embed_missing(&chunks, &known, embedder, self.dims)?;

        let record = record.clone();
        let reused = chunks.len() - embedded;
        let version = self
            .ops
            .transaction(move |tx| write_version(tx, &record, &hash, &chunks, &vectors))
            .await?;
        Ok(PutOutcome {
            version,
            created: true,
            embedded,
            reused,
        })
    }

    /// The latest version of an artifact and its content hash.
    pub async fn latest_version(&self, artifact_id: &str) -> Result<Option<(u32, String)>> {
        let id = artifact_id.to_owned();
        self.ops
            .call(move |c| {
                Ok(c.query_row(
                    "SELECT version, content_hash FROM mem_artifacts WHERE artifact_id = ?1 \
                     ORDER BY version DESC LIMIT 1",
                    [&id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?)
            })
            .await
    }

    /// The normalized text of an artifact's latest version.
    pub async fn latest_text(&self, artifact_id: &str) -> Result<Option<String>> {
        let id = artifact_id.to_owned();
        self.ops
            .call(move |c| {
                Ok(c.query_row(
                    "SELECT text FROM mem_artifacts WHERE artifact_id = ?1 \
                     ORDER BY version DESC LIMIT 1",
                    [&id],
                    |r| r.get(0),
                )
                .optional()?)
            })
            .await
    }

    /// Number of stored versions of an artifact and of chunks stored for it.
    pub async fn counts(&self, artifact_id: &str) -> Result<(usize, usize)> {
        let id = artifact_id.to_owned();
        self.ops
            .call(move |c| {
                let count = |sql: &str| c.query_row(sql, [&id], |r| r.get::<_, i64>(0));
                Ok((
                    count("SELECT count(*) FROM mem_artifacts WHERE artifact_id = ?1")? as usize,
                    count("SELECT count(*) FROM mem_chunks WHERE artifact_id = ?1")? as usize,
                ))
            })
            .await
    }

    /// Total rows: artifact versions, chunks, findings, decisions.
    pub async fn table_rows(&self) -> Result<[usize; 4]> {
        self.ops
            .call(|c| {
                let mut out = [0; 4];
                for (i, t) in [
                    "mem_artifacts",
                    "mem_chunks",
                    "mem_findings",
                    "mem_decisions",
                ]
                .iter()
                .enumerate()
                {
                    let n: i64 =
                        c.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))?;
                    out[i] = n as usize;
                }
                Ok(out)
            })
            .await
    }

    /// Builds (or brings up to date) the chunk search index now, so that the first search does
    /// not pay for reading every chunk; returns the number of searchable chunks. The service
    /// calls it at start.
    pub async fn prepare_index(&self) -> Result<usize> {
        let index = Arc::clone(&self.index);
        self.ops
            .call(move |conn| {
                let mut index = lock_index(&index)?;
                index.refresh(conn)?;
                Ok(index.alive())
            })
            .await
    }

    /// Hybrid search over the latest version of each artifact's chunks: the `limit` best by
    /// reciprocal rank fusion of a full-text (BM25) and a vector (cosine) ranking, both
    /// restricted by `filter`.
    pub async fn search_chunks(
        &self,
        text: &str,
        vector: &[f32],
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<ChunkHit>> {
        let depth = (limit * 4).max(20);
        // Bring the index up to date under the connection (only what was appended is read),
        // then rank without holding the connection, so writers wait only for the refresh.
        let index = Arc::clone(&self.index);
        self.ops
            .call(move |conn| lock_index(&index)?.refresh(conn))
            .await?;
        let index = Arc::clone(&self.index);
        let (text, vector, filter) = (text.to_owned(), vector.to_vec(), filter.clone());
        let ranked = crate::ops::blocking(move || {
            Ok(lock_index(&index)?.rank(&text, &vector, &filter, depth))
        })
        .await?;

        let vector_ids: Vec<String> = ranked.by_vector.iter().map(i64::to_string).collect();
        let text_ids: Vec<String> = ranked.by_text.iter().map(i64::to_string).collect();
        let fused: Vec<(i64, f32)> = fuse(&[&vector_ids, &text_ids])
            .into_iter()
            .take(limit)
            .filter_map(|(id, score)| Some((id.parse::<i64>().ok()?, score)))
            .collect();
        self.ops
            .call(move |conn| {
                let mut stmt = conn
                    .prepare("SELECT artifact_id, version, text FROM mem_chunks WHERE id = ?1")?;
                let mut hits = Vec::with_capacity(fused.len());
                for (chunk_id, score) in fused {
                    let (artifact_id, version, text) =
                        stmt.query_row([chunk_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                    hits.push(ChunkHit {
                        chunk_id,
                        vector_rank: ranked
                            .by_vector
                            .iter()
                            .position(|x| *x == chunk_id)
                            .map(|p| p + 1),
                        text_rank: ranked
                            .by_text
                            .iter()
                            .position(|x| *x == chunk_id)
                            .map(|p| p + 1),
                        artifact_id,
                        version,
                        text,
                        score,
                    });
                }
                Ok(hits)
            })
            .await
    }

    /// Embeddings of one version's chunks by the hash of their text.
    pub(crate) async fn chunk_vectors(
        &self,
        artifact_id: &str,
        version: u32,
    ) -> Result<HashMap<String, Vec<f32>>> {
        let id = artifact_id.to_owned();
        self.ops
            .call(move |c| {
                let mut stmt = c.prepare(
                    "SELECT text_hash, vector FROM mem_chunks WHERE artifact_id = ?1 AND version = ?2",
                )?;
                let out = stmt
                    .query_map(params![id, version], |r| {
                        Ok((r.get::<_, String>(0)?, from_blob(&r.get::<_, Vec<u8>>(1)?)))
                    })?
                    .collect::<rusqlite::Result<HashMap<_, _>>>()?;
                Ok(out)
            })
            .await
    }
}

/// Writes one new version (the next number) with its chunks; returns the version.
fn write_version(
    tx: &Transaction<'_>,
    record: &ArtifactRecord,
    hash: &str,
    chunks: &[(String, String)],
    vectors: &[Vec<f32>],
) -> Result<u32> {
    let version: u32 = tx.query_row(
        "SELECT coalesce(max(version), 0) + 1 FROM mem_artifacts WHERE artifact_id = ?1",
        [&record.artifact_id],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO mem_artifacts (artifact_id, version, tool, external_key, content_hash, title, \
         text, team, project, due_date, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            record.artifact_id,
            version,
            record.tool,
            record.external_key,
            hash,
            record.title,
            record.text(),
            record.team,
            record.project,
            record.due_date,
            record.created_at_ms
        ],
    )?;
    let mut stmt = tx.prepare(
        "INSERT INTO mem_chunks (artifact_id, version, ordinal, tool, team, project, created_at, \
         heading, text, text_hash, vector) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    for (i, ((heading, text), vector)) in chunks.iter().zip(vectors).enumerate() {
        stmt.execute(params![
            record.artifact_id,
            version,
            i as i64,
            record.tool,
            record.team,
            record.project,
            record.created_at_ms,
            heading,
            text,
            hash_of(text),
            to_blob(vector)
        ])?;
    }
    Ok(version)
}

/// Reciprocal rank fusion of ranked id lists: each id scores the sum of `1 / (60 + rank)`.
pub fn fuse(lists: &[&[String]]) -> Vec<(String, f32)> {
    let mut scores: HashMap<&str, f32> = HashMap::new();
    for list in lists {
        for (rank, id) in list.iter().enumerate() {
            *scores.entry(id.as_str()).or_default() += 1.0 / (RRF_K + rank as f32 + 1.0);
        }
    }
    let mut fused: Vec<(String, f32)> =
        scores.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    fused
}

/// The words of a query as an FTS5 expression (each quoted, joined by OR), `None` when the query
/// has no words.
pub fn fts_terms(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 1)
        .map(|w| format!("\"{}\"", w.to_lowercase()))
        .collect();
    (!words.is_empty()).then(|| words.join(" OR "))
}

/// Splits sections into chunks of at most [`MAX_CHUNK_CHARS`] at paragraph boundaries (a
/// paragraph longer than that is its own chunk); empty sections are skipped.
pub fn chunk_sections(sections: &[(String, String)]) -> Vec<(String, String)> {
    let mut chunks = Vec::new();
    for (heading, text) in sections {
        let mut current = String::new();
        for para in text.split('\n').map(str::trim).filter(|p| !p.is_empty()) {
            if !current.is_empty() && current.len() + para.len() + 1 > MAX_CHUNK_CHARS {
                chunks.push((heading.clone(), std::mem::take(&mut current)));
            }
            if !current.is_empty() {
                current.push('\n');
            }
            current.push_str(para);
        }
        if !current.is_empty() {
            chunks.push((heading.clone(), current));
        }
    }
    chunks
}

/// Vectors for every chunk: reused by text hash from `known`, the rest embedded in one batch.
fn embed_missing(
    chunks: &[(String, String)],
    known: &HashMap<String, Vec<f32>>,
    embedder: &dyn TextEmbedder,
    dims: usize,
) -> Result<(Vec<Vec<f32>>, usize)> {
    let missing: Vec<&str> = chunks
        .iter()
        .filter(|(_, t)| !known.contains_key(&hash_of(t)))
        .map(|(_, t)| t.as_str())
        .collect();
    let mut fresh = if missing.is_empty() {
        Vec::new().into_iter()
    } else {
        embedder.embed(&missing)?.into_iter()
    };
    let vectors = chunks
        .iter()
        .map(|(_, t)| match known.get(&hash_of(t)) {
            Some(v) => Ok(v.clone()),
            None => fresh
                .next()
                .ok_or_else(|| Error::Embedding("too few vectors".to_owned())),
        })
        .collect::<Result<Vec<_>>>()?;
    if let Some(bad) = vectors.iter().find(|v| v.len() != dims) {
        return Err(Error::Embedding(format!(
            "vector of {} dimensions, expected {dims}",
            bad.len()
        )));
    }
    Ok((vectors, missing.len()))
}

/// SHA-256 of a text, hex.
pub(crate) fn hash(text: &str) -> String {
    hash_of(text)
}

fn hash_of(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A vector as little-endian f32 bytes.
pub(crate) fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The chunk index, or an error when a panic poisoned it.
fn lock_index(index: &Mutex<ChunkIndex>) -> Result<std::sync::MutexGuard<'_, ChunkIndex>> {
    index
        .lock()
        .map_err(|_| Error::Task("memory index poisoned".to_owned()))
}

/// The inverse of [`to_blob`].
pub(crate) fn from_blob(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fusion_rewards_agreement() {
        let v: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let t: Vec<String> = ["c", "d"].map(String::from).to_vec();
        let fused = fuse(&[&v, &t]);
        assert_eq!(fused[0].0, "c");
        assert_eq!(fused.len(), 4);
    }

    #[test]
    fn query_words_are_quoted_for_fts() {
        assert_eq!(
            fts_terms("PAN \"out\" of-it").unwrap(),
            "\"pan\" OR \"out\" OR \"of\" OR \"it\""
        );
        assert_eq!(fts_terms("?!"), None);
    }

    #[test]
    fn long_sections_split_at_paragraphs() {
        let para = "x".repeat(500);
        let sections = vec![("H".to_owned(), format!("{para}\n{para}\n\nshort"))];
        let chunks = chunk_sections(&sections);
        assert_eq!(chunks.len(), 2);
        assert!(chunks[1].1.ends_with("short"));
    }

    #[test]
    fn vectors_round_trip_through_blobs() {
        let v = vec![0.5, -1.25, 3.0];
        assert_eq!(from_blob(&to_blob(&v)), v);
    }
}
