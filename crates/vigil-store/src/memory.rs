//! Institutional memory: artifact versions, their chunks with embeddings, finding texts with
//! embeddings and decisions with their rationale and embeddings, in LanceDB tables under
//! `<data_dir>/lance/` ([`crate::lance`]); hybrid search that fuses a full-text ranking (BM25 on
//! LanceDB's inverted index) and a vector ranking (cosine) by reciprocal rank, with filters on
//! team, project, tool and time.
//!
//! # Two stores, one commit
//!
//! A new artifact version is written to LanceDB first (its row in `artifacts`, then its chunks),
//! every row tagged with a fresh commit id; it becomes visible only when the operational store
//! (SQLite) records that commit in `mem_versions`, in one transaction. Readers take the latest
//! committed version of each artifact from SQLite and ignore rows whose commit id is not
//! recorded there. So a process killed between the two writes leaves rows no reader ever sees
//! (removed later by [`Memory::repair`]), never half a version; and a snapshot of SQLite taken
//! before LanceDB is copied is consistent with the copy (see [`crate::snapshot`]).
//!
//! Chunks of older versions stay in `chunks` (the history of what an artifact said) with their
//! `latest` flag cleared, so searches skip them.

use rusqlite::{params, OptionalExtension};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use lancedb::index::scalar::FullTextSearchQuery;
use lancedb::query::{ExecutableQuery, QueryBase, Select};
use lancedb::DistanceType;

use crate::embed::TextEmbedder;
use crate::lance::{self, lit, Rows, Tables, Value};
use crate::migrate::Migration;
use crate::ops::OpsStore;
use crate::{Error, Result};

/// Memory's schema in the operational store. `0001` held memory itself before it moved to
/// LanceDB: `mem_artifacts` stays the catalogue of artifact versions the API lists and filters
/// (written in the same transaction as the commit record), while chunks, findings and decisions
/// an earlier release kept in SQLite are moved into LanceDB the first time memory is opened
/// ([`Memory::tables`]) and their tables left empty.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
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
    },
    Migration {
        id: "memory/0002_lancedb_commits",
        sql: "
CREATE TABLE mem_versions (
    artifact_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    commit_id TEXT NOT NULL UNIQUE,
    content_hash TEXT NOT NULL,
    chunks INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (artifact_id, version)
);",
    },
];

/// Largest chunk, in characters; longer sections are split at paragraph boundaries.
const MAX_CHUNK_CHARS: usize = 800;
/// Reciprocal rank fusion constant (the customary 60).
const RRF_K: f32 = 60.0;
/// Texts embedded in one call during a bulk load.
const EMBED_BATCH: usize = 256;
/// The least cosine similarity at which a row counts as found by meaning. Unrelated text scores
/// below 0.1 against anything with the default embedder (a nonsense query, 0.08 at most), text
/// on the same subject 0.25 and more; without a floor, every query would find its nearest
/// rows, however far.
pub const MIN_SIMILARITY: f32 = 0.2;

/// Whether a row at cosine `distance` is close enough to count as found by meaning.
fn close_enough(distance: f32) -> bool {
    1.0 - distance >= MIN_SIMILARITY
}

/// Writes between two rounds of upkeep (indexes, compaction) of the tables.
const UPKEEP_EVERY: usize = 32;
/// Rows of an unfinished write are removed by [`Memory::repair`] once they are this old (a
/// younger one may belong to a write still in progress in another process).
const ABANDONED_AFTER_MS: i64 = 3_600_000;

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

impl SearchFilter {
    /// The filter as a LanceDB predicate over chunk rows, searchable (latest) rows only.
    fn predicate(&self) -> String {
        let mut terms = vec!["latest = true".to_owned()];
        terms.extend(self.terms());
        terms.join(" AND ")
    }

    /// The filter's terms over rows with `team`, `project`, `tool` and `created_at` columns.
    fn terms(&self) -> Vec<String> {
        let mut terms = Vec::new();
        for (column, value) in [
            ("team", &self.team),
            ("project", &self.project),
            ("tool", &self.tool),
        ] {
            if let Some(v) = value {
                terms.push(format!("{column} = {}", lit(v)));
            }
        }
        if let Some(t) = self.since_ms {
            terms.push(format!("created_at >= {t}"));
        }
        if let Some(t) = self.until_ms {
            terms.push(format!("created_at < {t}"));
        }
        terms
    }
}

/// One finding found by [`Memory::search_findings`]: a finding of an artifact's latest
/// committed version.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingHit {
    /// The artifact.
    pub artifact_id: String,
    /// The finding's fingerprint.
    pub fingerprint: String,
    /// Fused score (higher is better).
    pub score: f32,
    /// Rank in the vector results (1-based), when there.
    pub vector_rank: Option<usize>,
    /// Rank in the full-text results (1-based), when there.
    pub text_rank: Option<usize>,
}

/// One chunk found by [`Memory::search_chunks`].
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkHit {
    /// The chunk's id.
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

/// What [`Memory::check`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryCheck {
    /// Committed artifact versions.
    pub versions: usize,
    /// Of those, the ones whose row and chunks are all in LanceDB.
    pub complete: usize,
    /// Commit ids of committed versions with rows missing (or doubled).
    pub incomplete: Vec<String>,
    /// Writes that never committed (their rows are invisible; repair removes them).
    pub unfinished: usize,
}

/// The latest committed version of every artifact, read from `mem_versions` and kept up to date
/// by reading only the rows appended since.
#[derive(Debug, Default)]
struct Committed {
    last_rowid: i64,
    /// Artifact id -> (version, commit id).
    latest: HashMap<String, (u32, String)>,
}

impl Committed {
    fn refresh(&mut self, conn: &rusqlite::Connection) -> Result<()> {
        let max: i64 = conn.query_row(
            "SELECT coalesce(max(rowid), 0) FROM mem_versions",
            [],
            |r| r.get(0),
        )?;
        if max < self.last_rowid {
            // The table shrank: a restored snapshot. Start over.
            *self = Committed::default();
        }
        let mut stmt = conn.prepare(
            "SELECT rowid, artifact_id, version, commit_id FROM mem_versions WHERE rowid > ?1 \
             ORDER BY rowid",
        )?;
        let mut rows = stmt.query([self.last_rowid])?;
        while let Some(r) = rows.next()? {
            let (rowid, id, version, commit): (i64, String, u32, String) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            self.last_rowid = rowid;
            match self.latest.get(&id) {
                Some((v, _)) if *v >= version => {}
                _ => {
                    self.latest.insert(id, (version, commit));
                }
            }
        }
        Ok(())
    }

    /// Whether `commit` is the latest committed version of `artifact`.
    fn is_latest(&self, artifact: &str, commit: &str) -> bool {
        self.latest.get(artifact).is_some_and(|(_, c)| c == commit)
    }

    /// Whether `version` is the latest committed version of `artifact`.
    fn is_latest_version(&self, artifact: &str, version: u32) -> bool {
        self.latest
            .get(artifact)
            .is_some_and(|(v, _)| *v == version)
    }
}

/// Institutional memory: LanceDB tables beside the operational store.
#[derive(Debug, Clone)]
pub struct Memory {
    ops: OpsStore,
    dims: usize,
    /// The tables, opened at first use.
    tables: Arc<tokio::sync::OnceCell<Tables>>,
    committed: Arc<Mutex<Committed>>,
    /// Writes since the tables were last kept up.
    writes: Arc<AtomicUsize>,
    /// Whether the chunks' full-text index is known to exist.
    fts_ready: Arc<AtomicBool>,
    /// Whether the findings' full-text index is known to exist.
    findings_fts_ready: Arc<AtomicBool>,
}

impl Memory {
    /// Memory for embeddings of `dims` dimensions, in the operational store's data directory
    /// (its tables are opened, and created when missing, at first use).
    pub fn new(ops: OpsStore, dims: usize) -> Memory {
        Memory {
            ops,
            dims,
            tables: Arc::new(tokio::sync::OnceCell::new()),
            committed: Arc::new(Mutex::new(Committed::default())),
            writes: Arc::new(AtomicUsize::new(0)),
            fts_ready: Arc::new(AtomicBool::new(false)),
            findings_fts_ready: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Dimensions of the embeddings stored in a data directory's memory, `None` before memory
    /// holds a table.
    pub async fn stored_dimensions(data_dir: &crate::DataDir) -> Result<Option<usize>> {
        lance::stored_dimensions(&data_dir.lance_dir()).await
    }

    /// Dimensions of the stored embeddings.
    pub fn dimensions(&self) -> usize {
        self.dims
    }

    /// The LanceDB tables: opened (created when missing) at the first call, when memory kept
    /// in the operational store by an earlier release is also moved into them.
    pub(crate) async fn tables(&self) -> Result<&Tables> {
        self.tables
            .get_or_try_init(|| async {
                let tables = Tables::open(self.ops.data_dir(), self.dims).await?;
                move_from_sqlite(&self.ops, &tables, self.dims).await?;
                Ok(tables)
            })
            .await
    }

    /// Stores `record` as a new version when its content differs from the latest version;
    /// chunks whose text is unchanged reuse their stored embedding instead of being re-embedded.
    /// The version is visible to readers all at once, or (when this fails or the process dies
    /// midway) not at all.
    pub async fn put_artifact(
        &self,
        record: &ArtifactRecord,
        embedder: &dyn TextEmbedder,
    ) -> Result<PutOutcome> {
        let outcomes = self
            .put_artifacts(std::slice::from_ref(record), embedder)
            .await?;
        outcomes
            .into_iter()
            .next()
            .ok_or_else(|| Error::Task("no outcome for the artifact".to_owned()))
    }

    /// [`Memory::put_artifact`] for many artifacts at once (a bulk load): their texts are
    /// embedded in batches and the new versions written in one commit of each store. Records
    /// must have distinct artifact ids.
    pub async fn put_artifacts(
        &self,
        records: &[ArtifactRecord],
        embedder: &dyn TextEmbedder,
    ) -> Result<Vec<PutOutcome>> {
        let mut ids = HashSet::new();
        if let Some(twice) = records.iter().find(|r| !ids.insert(r.artifact_id.as_str())) {
            return Err(Error::Invalid {
                what: "artifacts",
                reason: format!("`{}` appears twice in one write", twice.artifact_id),
            });
        }
        let tables = self.tables().await?;
        let mut outcomes = Vec::with_capacity(records.len());
        // (record index, version, commit, hash, chunks, vectors)
        let mut writes = Vec::new();
        for (i, record) in records.iter().enumerate() {
            let hash = record.content_hash();
            let latest = self.latest_commit(&record.artifact_id).await?;
            if let Some((version, latest_hash, _)) = &latest {
                if *latest_hash == hash {
                    outcomes.push(PutOutcome {
                        version: *version,
                        created: false,
                        embedded: 0,
                        reused: 0,
                    });
                    continue;
                }
            }
            let chunks = chunk_sections(&record.sections);
            let known = match &latest {
                Some((_, _, commit)) => self.chunk_vectors(commit).await?,
                None => HashMap::new(),
            };
            let version = latest.as_ref().map_or(1, |(v, _, _)| v + 1);
            let commit = new_commit_id(&record.artifact_id, version);
            outcomes.push(PutOutcome {
                version,
                created: true,
                embedded: 0,
                reused: 0,
            });
            writes.push((i, outcomes.len() - 1, version, commit, hash, chunks, known));
        }
        if writes.is_empty() {
            return Ok(outcomes);
        }

        // Embeddings for every chunk not known from an artifact's previous version, in batches.
        let mut artifact_batch = Rows::new(lance::artifacts_schema());
        let mut chunk_batch = Rows::new(lance::chunks_schema(self.dims));
        let mut pending: Vec<(usize, usize)> = Vec::new();
        let mut texts: Vec<&str> = Vec::new();
        for (w, (_, _, _, _, _, chunks, known)) in writes.iter().enumerate() {
            for (c, (_, text)) in chunks.iter().enumerate() {
                if !known.contains_key(&hash_of(text)) {
                    pending.push((w, c));
                    texts.push(text);
                }
            }
        }
        let mut fresh: HashMap<(usize, usize), Vec<f32>> = HashMap::with_capacity(texts.len());
        for (keys, batch) in pending.chunks(EMBED_BATCH).zip(texts.chunks(EMBED_BATCH)) {
            let vectors = embedder.embed(batch)?;
            if vectors.len() != batch.len() {
                return Err(Error::Embedding("too few vectors".to_owned()));
            }
            fresh.extend(keys.iter().copied().zip(vectors));
        }
        for (w, (i, o, version, commit, hash, chunks, known)) in writes.iter().enumerate() {
            let record = &records[*i];
            push_artifact(&mut artifact_batch, record, *version, commit, hash)?;
            let mut embedded = 0;
            for (c, (heading, text)) in chunks.iter().enumerate() {
                let text_hash = hash_of(text);
                let vector = match known.get(&text_hash) {
                    Some(v) => v,
                    None => {
                        embedded += 1;
                        &fresh[&(w, c)]
                    }
                };
                if vector.len() != self.dims {
                    return Err(Error::Embedding(format!(
                        "vector of {} dimensions, expected {}",
                        vector.len(),
                        self.dims
                    )));
                }
                push_chunk(
                    &mut chunk_batch,
                    record,
                    *version,
                    commit,
                    c,
                    (heading, text, &text_hash),
                    true,
                    vector,
                )?;
            }
            outcomes[*o].embedded = embedded;
            outcomes[*o].reused = chunks.len() - embedded;
        }

        // LanceDB first, untracked until the operational store records the commits.
        tables
            .artifacts
            .add(lance::reader(artifact_batch.finish()?))
            .execute()
            .await?;
        let chunk_batch = chunk_batch.finish()?;
        if chunk_batch.num_rows() > 0 {
            tables
                .chunks
                .add(lance::reader(chunk_batch))
                .execute()
                .await?;
        }
        let rows: Vec<(ArtifactRecord, u32, String, String, i64)> = writes
            .iter()
            .map(|(i, _, version, commit, hash, chunks, _)| {
                (
                    records[*i].clone(),
                    *version,
                    commit.clone(),
                    hash.clone(),
                    chunks.len() as i64,
                )
            })
            .collect();
        self.ops
            .transaction(move |tx| {
                let mut commit_row = tx.prepare(
                    "INSERT INTO mem_versions (artifact_id, version, commit_id, content_hash, \
                     chunks, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                // The catalogue the API lists and filters artifacts by.
                let mut catalogue = tx.prepare(
                    "INSERT INTO mem_artifacts (artifact_id, version, tool, external_key, \
                     content_hash, title, text, team, project, due_date, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )?;
                for (r, version, commit, hash, chunks) in &rows {
                    let id = &r.artifact_id;
                    commit_row
                        .execute(params![id, version, commit, hash, chunks, r.created_at_ms])
                        .map_err(|e| match e {
                            rusqlite::Error::SqliteFailure(f, _)
                                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                            {
                                Error::Invalid {
                                    what: "artifact version",
                                    reason: format!(
                                        "version {version} of `{id}` was written by another \
                                         process at the same time; send it again"
                                    ),
                                }
                            }
                            e => e.into(),
                        })?;
                    catalogue.execute(params![
                        id,
                        version,
                        r.tool,
                        r.external_key,
                        hash,
                        r.title,
                        r.text(),
                        r.team,
                        r.project,
                        r.due_date,
                        r.created_at_ms
                    ])?;
                }
                Ok(())
            })
            .await?;

        // Searches skip the older versions' chunks from now on. Should this fail, readers still
        // ignore them (they are not the latest commit) and repair clears the flag.
        let replaced: Vec<String> = writes
            .iter()
            .filter(|w| w.2 > 1)
            .map(|w| lit(&records[w.0].artifact_id))
            .collect();
        let fresh_commits: Vec<String> = writes.iter().map(|w| lit(&w.3)).collect();
        for ids in replaced.chunks(200) {
            let cleared = tables
                .chunks
                .update()
                .only_if(format!(
                    "latest = true AND artifact_id IN ({}) AND commit_id NOT IN ({})",
                    ids.join(", "),
                    fresh_commits.join(", ")
                ))
                .column("latest", "false")
                .execute()
                .await;
            if let Err(e) = cleared {
                tracing::warn!(error = %e,
                    "older chunks stay flagged latest until memory is repaired");
            }
        }
        self.wrote(writes.len()).await?;
        Ok(outcomes)
    }

    /// Counts `n` written versions; after the first write and every [`UPKEEP_EVERY`] the
    /// tables' indexes and fragments are kept up.
    async fn wrote(&self, n: usize) -> Result<()> {
        let before = self.writes.fetch_add(n, Ordering::Relaxed);
        if before == 0 || before / UPKEEP_EVERY != (before + n) / UPKEEP_EVERY {
            self.tables().await?.upkeep(false).await?;
        }
        Ok(())
    }

    /// The columns of the chunks table that have an index (`text`, and `vector` once the table
    /// is large enough).
    pub async fn indexes(&self) -> Result<Vec<String>> {
        let tables = self.tables().await?;
        Ok(tables
            .chunks
            .list_indices()
            .await?
            .into_iter()
            .flat_map(|i| i.columns)
            .collect())
    }

    /// Builds missing indexes, folds every pending row into them and compacts the tables: run
    /// after a bulk load and at start, so that searches do not scan unindexed rows.
    pub async fn optimize(&self) -> Result<()> {
        self.tables().await?.upkeep(true).await
    }

    /// The latest committed version of an artifact, its content hash and commit id.
    async fn latest_commit(&self, artifact_id: &str) -> Result<Option<(u32, String, String)>> {
        // Opening the tables first moves memory an earlier release kept in SQLite.
        self.tables().await?;
        let id = artifact_id.to_owned();
        self.ops
            .call(move |c| {
                Ok(c.query_row(
                    "SELECT version, content_hash, commit_id FROM mem_versions \
                     WHERE artifact_id = ?1 ORDER BY version DESC LIMIT 1",
                    [&id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?)
            })
            .await
    }

    /// The latest version of an artifact and its content hash.
    pub async fn latest_version(&self, artifact_id: &str) -> Result<Option<(u32, String)>> {
        Ok(self
            .latest_commit(artifact_id)
            .await?
            .map(|(v, hash, _)| (v, hash)))
    }

    /// The normalized text of an artifact's latest version.
    pub async fn latest_text(&self, artifact_id: &str) -> Result<Option<String>> {
        let Some((_, _, commit)) = self.latest_commit(artifact_id).await? else {
            return Ok(None);
        };
        let tables = self.tables().await?;
        let batches = lance::select(
            &tables.artifacts,
            Some(format!("commit_id = {}", lit(&commit))),
            &["text"],
        )
        .await?;
        for b in &batches {
            if b.num_rows() > 0 {
                return Ok(Some(lance::strings(b, "text")?.value(0).to_owned()));
            }
        }
        Ok(None)
    }

    /// Commit ids of every committed version of an artifact.
    async fn commits_of(&self, artifact_id: &str) -> Result<Vec<String>> {
        self.tables().await?;
        let id = artifact_id.to_owned();
        self.ops
            .call(move |c| {
                let mut stmt = c.prepare(
                    "SELECT commit_id FROM mem_versions WHERE artifact_id = ?1 ORDER BY version",
                )?;
                let out = stmt
                    .query_map([&id], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()?;
                Ok(out)
            })
            .await
    }

    /// Number of stored versions of an artifact and of chunks stored for them.
    pub async fn counts(&self, artifact_id: &str) -> Result<(usize, usize)> {
        let commits = self.commits_of(artifact_id).await?;
        if commits.is_empty() {
            return Ok((0, 0));
        }
        let list: Vec<String> = commits.iter().map(|c| lit(c)).collect();
        let chunks = self
            .tables()
            .await?
            .chunks
            .count_rows(Some(format!("commit_id IN ({})", list.join(", "))))
            .await?;
        Ok((commits.len(), chunks))
    }

    /// Total rows: committed artifact versions, chunks, findings, decisions.
    pub async fn table_rows(&self) -> Result<[usize; 4]> {
        let tables = self.tables().await?;
        let versions: i64 = self
            .ops
            .call(|c| Ok(c.query_row("SELECT count(*) FROM mem_versions", [], |r| r.get(0))?))
            .await?;
        Ok([
            versions as usize,
            tables.chunks.count_rows(None).await?,
            tables.findings.count_rows(None).await?,
            tables.decisions.count_rows(None).await?,
        ])
    }

    /// Opens the tables, repairs what an interrupted write left and reads the indexes once, so
    /// that the first search does not pay for it; returns the number of searchable chunks. The
    /// service calls it at start. Indexes are kept up by the writes, not here: an index
    /// rebuilt while the service's workers commit new rows was seen to hold readiness back
    /// for over a minute after a crash.
    pub async fn prepare_index(&self) -> Result<usize> {
        self.repair(false).await?;
        let tables = self.tables().await?;
        let chunks = tables
            .chunks
            .count_rows(Some("latest = true".to_owned()))
            .await?;
        if chunks > 0 {
            // The first search reads the indexes from disk; done here, not in a request.
            let mut probe = vec![0.0; self.dims];
            probe[0] = 1.0;
            self.search_chunks("security", &probe, &SearchFilter::default(), 1)
                .await?;
        }
        Ok(chunks)
    }

    /// Removes the rows of writes that never committed and clears the `latest` flag of chunks
    /// a newer version replaced. Rows of an unfinished write are removed only when `exclusive`
    /// (no other process can be writing: a restore) or once they are an hour old. Returns the
    /// number of versions removed.
    pub async fn repair(&self, exclusive: bool) -> Result<usize> {
        let tables = self.tables().await?;
        let committed: HashMap<String, (String, u32)> = self
            .ops
            .call(|c| {
                let mut stmt =
                    c.prepare("SELECT commit_id, artifact_id, version FROM mem_versions")?;
                let out = stmt
                    .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?
                    .collect::<rusqlite::Result<HashMap<_, _>>>()?;
                Ok(out)
            })
            .await?;
        let mut latest: HashMap<&str, u32> = HashMap::new();
        for (id, v) in committed.values() {
            let e = latest.entry(id.as_str()).or_insert(*v);
            *e = (*e).max(*v);
        }
        let cutoff = crate::decisions::now_ms() - ABANDONED_AFTER_MS;

        let mut abandoned = HashSet::new();
        for b in lance::select(&tables.artifacts, None, &["commit_id", "created_at"]).await? {
            let (commits, created) = (
                lance::strings(&b, "commit_id")?,
                lance::ints(&b, "created_at")?,
            );
            for i in 0..b.num_rows() {
                let c = commits.value(i);
                if !committed.contains_key(c) && (exclusive || created.value(i) < cutoff) {
                    abandoned.insert(c.to_owned());
                }
            }
        }
        // Chunks written before their artifact row was (a write killed in between).
        let mut stale = HashSet::new();
        for b in lance::select(
            &tables.chunks,
            Some("latest = true".to_owned()),
            &["commit_id", "artifact_id", "version", "created_at"],
        )
        .await?
        {
            let commits = lance::strings(&b, "commit_id")?;
            let created = lance::ints(&b, "created_at")?;
            for i in 0..b.num_rows() {
                let c = commits.value(i);
                match committed.get(c) {
                    Some((id, v)) if latest.get(id.as_str()).is_some_and(|l| l > v) => {
                        stale.insert(c.to_owned());
                    }
                    Some(_) => {}
                    None if exclusive || created.value(i) < cutoff => {
                        abandoned.insert(c.to_owned());
                    }
                    None => {}
                }
            }
        }
        for chunk in abandoned.iter().collect::<Vec<_>>().chunks(200) {
            let list: Vec<String> = chunk.iter().map(|c| lit(c)).collect();
            let predicate = format!("commit_id IN ({})", list.join(", "));
            tables.chunks.delete(predicate.as_str()).await?;
            tables.artifacts.delete(predicate.as_str()).await?;
        }
        for chunk in stale.iter().collect::<Vec<_>>().chunks(200) {
            let list: Vec<String> = chunk.iter().map(|c| lit(c)).collect();
            tables
                .chunks
                .update()
                .only_if(format!("commit_id IN ({})", list.join(", ")))
                .column("latest", "false")
                .execute()
                .await?;
        }
        if !abandoned.is_empty() || !stale.is_empty() {
            tracing::info!(
                abandoned = abandoned.len(),
                stale = stale.len(),
                "memory repaired"
            );
        }
        Ok(abandoned.len())
    }

    /// Reads every row of every table and checks that each committed artifact version has its
    /// row and all its chunks in LanceDB. Finds what a damaged or half-restored data directory
    /// would show; `vigil doctor` reports it.
    pub async fn check(&self) -> Result<MemoryCheck> {
        let tables = self.tables().await?;
        let committed: Vec<(String, i64)> = self
            .ops
            .call(|c| {
                let mut stmt = c.prepare("SELECT commit_id, chunks FROM mem_versions")?;
                let out = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(out)
            })
            .await?;
        let mut rows: HashMap<String, (i64, i64)> = HashMap::new();
        for (table, slot) in [(&tables.artifacts, 0), (&tables.chunks, 1)] {
            for b in lance::select(table, None, &["commit_id"]).await? {
                let commits = lance::strings(&b, "commit_id")?;
                for i in 0..b.num_rows() {
                    let e = rows.entry(commits.value(i).to_owned()).or_default();
                    if slot == 0 {
                        e.0 += 1;
                    } else {
                        e.1 += 1;
                    }
                }
            }
        }
        // Every column of every row is decoded once.
        for table in [&tables.findings, &tables.decisions] {
            let batches: Vec<_> = table.query().execute().await?.try_collect().await?;
            drop(batches);
        }
        let mut report = MemoryCheck {
            versions: committed.len(),
            ..MemoryCheck::default()
        };
        let known: HashSet<&str> = committed.iter().map(|(c, _)| c.as_str()).collect();
        for (commit, chunks) in &committed {
            match rows.get(commit) {
                Some((1, n)) if n == chunks => report.complete += 1,
                _ => report.incomplete.push(commit.clone()),
            }
        }
        report.unfinished = rows.keys().filter(|c| !known.contains(c.as_str())).count();
        Ok(report)
    }

    /// Makes sure the full-text index of `table` (chunks or findings) exists before a
    /// full-text search of it; `ready` remembers that it does.
    async fn ensure_fts(
        &self,
        tables: &Tables,
        table: &lancedb::Table,
        ready: &AtomicBool,
    ) -> Result<bool> {
        if ready.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let has = |indices: &[lancedb::index::IndexConfig]| {
            indices
                .iter()
                .any(|i| i.columns.iter().any(|c| c == "text"))
        };
        if !has(&table.list_indices().await?) {
            if table.count_rows(None).await? == 0 {
                return Ok(false);
            }
            tables.upkeep(false).await?;
            if !has(&table.list_indices().await?) {
                return Ok(false);
            }
        }
        ready.store(true, Ordering::Relaxed);
        Ok(true)
    }

    /// The two rankings a hybrid search fuses, of `table`'s rows narrowed by `predicate`: the
    /// nearest to `vector` (cosine, with their `_distance`) and the best full-text (BM25)
    /// matches of `text` (none when it has no words or the table no full-text index yet;
    /// `fts_ready` remembers the index). Each is `limit * 4` deep, at least 20.
    async fn rankings(
        &self,
        table: &lancedb::Table,
        fts_ready: &AtomicBool,
        (text, vector): (&str, &[f32]),
        predicate: Option<String>,
        columns: &[&str],
        limit: usize,
    ) -> Result<(Vec<arrow_array::RecordBatch>, Vec<arrow_array::RecordBatch>)> {
        if vector.len() != self.dims {
            return Err(Error::Embedding(format!(
                "query vector of {} dimensions, expected {}",
                vector.len(),
                self.dims
            )));
        }
        let tables = self.tables().await?;
        let depth = (limit * 4).max(20);
        let by_vector = async {
            let mut query = table
                .query()
                .nearest_to(vector)?
                .distance_type(DistanceType::Cosine);
            if let Some(p) = &predicate {
                query = query.only_if(p.clone());
            }
            let stream = query
                .select(Select::columns(columns))
                .limit(depth)
                .execute()
                .await?;
            Ok::<_, Error>(stream.try_collect::<Vec<_>>().await?)
        };
        let by_text = async {
            if fts_terms(text).is_none() || !self.ensure_fts(tables, table, fts_ready).await? {
                return Ok(Vec::new());
            }
            let mut query = table
                .query()
                .full_text_search(FullTextSearchQuery::new(text.to_owned()));
            if let Some(p) = &predicate {
                query = query.only_if(p.clone());
            }
            let stream = query
                .select(Select::columns(columns))
                .limit(depth)
                .execute()
                .await?;
            Ok::<_, Error>(stream.try_collect::<Vec<_>>().await?)
        };
        futures::try_join!(by_vector, by_text)
    }

    /// The latest committed version of every artifact, brought up to date with the commits
    /// recorded since it was last read.
    async fn committed(&self) -> Result<std::sync::MutexGuard<'_, Committed>> {
        let committed = Arc::clone(&self.committed);
        self.ops
            .call(move |c| {
                committed
                    .lock()
                    .map_err(|_| Error::Task("memory commits poisoned".to_owned()))?
                    .refresh(c)
            })
            .await?;
        self.committed
            .lock()
            .map_err(|_| Error::Task("memory commits poisoned".to_owned()))
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
        let tables = self.tables().await?;
        let columns = ["id", "artifact_id", "version", "commit_id", "text"];
        let (by_vector, by_text) = self
            .rankings(
                &tables.chunks,
                &self.fts_ready,
                (text, vector),
                Some(filter.predicate()),
                &columns,
                limit,
            )
            .await?;
        // Only rows of each artifact's latest committed version count.
        let committed = self.committed().await?;
        let mut found: HashMap<i64, (String, u32, String)> = HashMap::new();
        let mut ranked = |batches: &[arrow_array::RecordBatch], by_meaning: bool| {
            let mut ids = Vec::new();
            for b in batches {
                let distance = by_meaning.then(|| lance::distances(b)).transpose()?;
                let (id, artifact, version, commit, text) = (
                    lance::ints(b, "id")?,
                    lance::strings(b, "artifact_id")?,
                    lance::ints(b, "version")?,
                    lance::strings(b, "commit_id")?,
                    lance::strings(b, "text")?,
                );
                for i in 0..b.num_rows() {
                    if !committed.is_latest(artifact.value(i), commit.value(i))
                        || distance.is_some_and(|d| !close_enough(d.value(i)))
                    {
                        continue;
                    }
                    let id = id.value(i);
                    found.entry(id).or_insert_with(|| {
                        (
                            artifact.value(i).to_owned(),
                            version.value(i) as u32,
                            text.value(i).to_owned(),
                        )
                    });
                    ids.push(id.to_string());
                }
            }
            Ok::<_, Error>(ids)
        };
        let vector_ids = ranked(&by_vector, true)?;
        let text_ids = ranked(&by_text, false)?;
        drop(committed);

        let rank = |list: &[String], id: &str| list.iter().position(|x| x == id).map(|p| p + 1);
        Ok(fuse(&[&vector_ids, &text_ids])
            .into_iter()
            .take(limit)
            .filter_map(|(id, score)| {
                let chunk_id = id.parse::<i64>().ok()?;
                let (artifact_id, version, text) = found.get(&chunk_id)?.clone();
                Some(ChunkHit {
                    chunk_id,
                    artifact_id,
                    version,
                    text,
                    score,
                    vector_rank: rank(&vector_ids, &id),
                    text_rank: rank(&text_ids, &id),
                })
            })
            .collect())
    }

    /// Hybrid search over the findings of each artifact's latest committed version: the `limit`
    /// best by reciprocal rank fusion of a full-text (BM25) and a vector (cosine) ranking of
    /// their texts, both narrowed by `filter` before ranking.
    pub async fn search_findings(
        &self,
        text: &str,
        vector: &[f32],
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<FindingHit>> {
        let tables = self.tables().await?;
        let terms = filter.terms();
        let columns = ["artifact_id", "version", "fingerprint"];
        let (by_vector, by_text) = self
            .rankings(
                &tables.findings,
                &self.findings_fts_ready,
                (text, vector),
                (!terms.is_empty()).then(|| terms.join(" AND ")),
                &columns,
                limit,
            )
            .await?;
        let committed = self.committed().await?;
        // Keys are `artifact id` and `fingerprint` joined by a unit separator.
        let ranked = |batches: &[arrow_array::RecordBatch], by_meaning: bool| {
            let mut keys = Vec::new();
            for b in batches {
                let distance = by_meaning.then(|| lance::distances(b)).transpose()?;
                let (artifact, version, fingerprint) = (
                    lance::strings(b, "artifact_id")?,
                    lance::ints(b, "version")?,
                    lance::strings(b, "fingerprint")?,
                );
                for i in 0..b.num_rows() {
                    if !committed.is_latest_version(artifact.value(i), version.value(i) as u32)
                        || distance.is_some_and(|d| !close_enough(d.value(i)))
                    {
                        continue;
                    }
                    let key = format!("{}\u{1f}{}", artifact.value(i), fingerprint.value(i));
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                }
            }
            Ok::<_, Error>(keys)
        };
        let vector_keys = ranked(&by_vector, true)?;
        let text_keys = ranked(&by_text, false)?;
        drop(committed);

        let rank = |list: &[String], key: &str| list.iter().position(|x| x == key).map(|p| p + 1);
        Ok(fuse(&[&vector_keys, &text_keys])
            .into_iter()
            .take(limit)
            .filter_map(|(key, score)| {
                let (artifact_id, fingerprint) = key.split_once('\u{1f}')?;
                Some(FindingHit {
                    artifact_id: artifact_id.to_owned(),
                    fingerprint: fingerprint.to_owned(),
                    score,
                    vector_rank: rank(&vector_keys, &key),
                    text_rank: rank(&text_keys, &key),
                })
            })
            .collect())
    }

    /// Embeddings of one committed version's chunks, by the hash of their text.
    pub(crate) async fn chunk_vectors(&self, commit: &str) -> Result<HashMap<String, Vec<f32>>> {
        let tables = self.tables().await?;
        let mut out = HashMap::new();
        for b in lance::select(
            &tables.chunks,
            Some(format!("commit_id = {}", lit(commit))),
            &["text_hash", "vector"],
        )
        .await?
        {
            let hashes = lance::strings(&b, "text_hash")?;
            for i in 0..b.num_rows() {
                out.insert(hashes.value(i).to_owned(), lance::vector_at(&b, i)?);
            }
        }
        Ok(out)
    }
}

/// A commit id no other write will have: a hash of the artifact, the version, the time, the
/// process and a counter.
fn new_commit_id(artifact_id: &str, version: u32) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    hash_of(&format!(
        "{artifact_id}\n{version}\n{nanos}\n{}\n{n}",
        std::process::id()
    ))[..32]
        .to_owned()
}

/// A chunk's id: the first 63 bits of a hash of its commit and position.
fn chunk_id(commit: &str, ordinal: usize) -> i64 {
    let digest = Sha256::digest(format!("{commit}/{ordinal}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    (u64::from_le_bytes(bytes) >> 1) as i64
}

/// Appends the `artifacts` row of one version.
fn push_artifact(
    rows: &mut Rows,
    record: &ArtifactRecord,
    version: u32,
    commit: &str,
    hash: &str,
) -> Result<()> {
    let text = record.text();
    rows.push(&[
        Value::Text(&record.artifact_id),
        Value::Int(i64::from(version)),
        Value::Text(commit),
        Value::Text(&record.tool),
        Value::Maybe(record.external_key.as_deref()),
        Value::Text(hash),
        Value::Text(&record.title),
        Value::Text(&text),
        Value::Maybe(record.team.as_deref()),
        Value::Maybe(record.project.as_deref()),
        Value::Maybe(record.due_date.as_deref()),
        Value::Int(record.created_at_ms),
    ])
}

/// Appends the `chunks` row of chunk `ordinal` of one version: its (heading, text, text hash),
/// whether it is searchable (of the latest version) and its embedding.
#[allow(clippy::too_many_arguments)]
fn push_chunk(
    rows: &mut Rows,
    record: &ArtifactRecord,
    version: u32,
    commit: &str,
    ordinal: usize,
    (heading, text, text_hash): (&str, &str, &str),
    latest: bool,
    vector: &[f32],
) -> Result<()> {
    rows.push(&[
        Value::Int(chunk_id(commit, ordinal)),
        Value::Text(&record.artifact_id),
        Value::Int(i64::from(version)),
        Value::Text(commit),
        Value::Int(ordinal as i64),
        Value::Text(&record.tool),
        Value::Maybe(record.team.as_deref()),
        Value::Maybe(record.project.as_deref()),
        Value::Int(record.created_at_ms),
        Value::Text(heading),
        Value::Text(text),
        Value::Text(text_hash),
        Value::Bool(latest),
        Value::Vector(vector),
    ])
}

/// Moves memory that an earlier release kept in the operational store (`mem_artifacts`,
/// `mem_chunks`, `mem_findings`, `mem_decisions`) into the LanceDB tables: written to LanceDB
/// first, then recorded and removed from SQLite in one transaction, so an interruption
/// repeats the move instead of losing anything.
async fn move_from_sqlite(ops: &OpsStore, tables: &Tables, dims: usize) -> Result<()> {
    type Old = (
        Vec<(ArtifactRecord, u32, String)>,
        Vec<(String, u32, usize, String, String, Vec<u8>)>,
        Vec<(String, String, u32, String, String, String, String, String)>,
        Vec<(Option<String>, Option<String>, i64, Vec<u8>)>,
        Vec<(String, String, String, i64, Vec<u8>)>,
    );
    let old: Old = ops
        .call(|c| {
            let rows: i64 = c.query_row(
                "SELECT (SELECT count(*) FROM mem_artifacts a WHERE NOT EXISTS (SELECT 1 FROM \
                 mem_versions v WHERE v.artifact_id = a.artifact_id AND v.version = a.version)) \
                 + (SELECT count(*) FROM mem_findings) + (SELECT count(*) FROM mem_decisions)",
                [],
                |r| r.get(0),
            )?;
            if rows == 0 {
                return Ok(Default::default());
            }
            let mut stmt = c.prepare(
                "SELECT artifact_id, version, tool, external_key, content_hash, title, text, team, \
                 project, due_date, created_at FROM mem_artifacts a WHERE NOT EXISTS (SELECT 1 \
                 FROM mem_versions v WHERE v.artifact_id = a.artifact_id AND v.version = a.version) \
                 ORDER BY artifact_id, version",
            )?;
            let artifacts = stmt
                .query_map([], |r| {
                    Ok((
                        ArtifactRecord {
                            artifact_id: r.get(0)?,
                            tool: r.get(2)?,
                            external_key: r.get(3)?,
                            title: r.get(5)?,
                            team: r.get(7)?,
                            project: r.get(8)?,
                            due_date: r.get(9)?,
                            sections: vec![(String::new(), r.get(6)?)],
                            created_at_ms: r.get(10)?,
                        },
                        r.get(1)?,
                        r.get(4)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut stmt = c.prepare(
                "SELECT artifact_id, version, ordinal, heading, text, vector FROM mem_chunks \
                 ORDER BY id",
            )?;
            let chunks = stmt
                .query_map([], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get::<_, i64>(2)? as usize,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut stmt = c.prepare(
                "SELECT fingerprint, artifact_id, version, rule, element, title, text, tool, \
                 team, project, created_at, vector FROM mem_findings ORDER BY id",
            )?;
            let mut finding_meta = Vec::new();
            let findings = stmt
                .query_map([], |r| {
                    Ok((
                        (
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                            r.get(7)?,
                        ),
                        (r.get(8)?, r.get(9)?, r.get(10)?, r.get(11)?),
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let findings = findings
                .into_iter()
                .map(|(a, b)| {
                    finding_meta.push(b);
                    a
                })
                .collect();
            let mut stmt =
                c.prepare("SELECT id, body, text, created_at, vector FROM mem_decisions")?;
            let decisions = stmt
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((artifacts, chunks, findings, finding_meta, decisions))
        })
        .await?;
    let (artifacts, chunks, findings, finding_meta, decisions) = old;
    if artifacts.is_empty() && findings.is_empty() && decisions.is_empty() {
        return Ok(());
    }
    tracing::info!(
        versions = artifacts.len(),
        chunks = chunks.len(),
        findings = findings.len(),
        decisions = decisions.len(),
        "moving memory from the operational store into LanceDB"
    );

    let mut latest: HashMap<&str, u32> = HashMap::new();
    for (a, v, _) in &artifacts {
        let e = latest.entry(a.artifact_id.as_str()).or_insert(*v);
        *e = (*e).max(*v);
    }
    let mut commits: HashMap<(String, u32), String> = HashMap::new();
    let mut artifact_batch = Rows::new(lance::artifacts_schema());
    for (a, v, hash) in &artifacts {
        let commit = new_commit_id(&a.artifact_id, *v);
        push_artifact(&mut artifact_batch, a, *v, &commit, hash)?;
        commits.insert((a.artifact_id.clone(), *v), commit);
    }
    let by_version: HashMap<(&str, u32), &ArtifactRecord> = artifacts
        .iter()
        .map(|(a, v, _)| ((a.artifact_id.as_str(), *v), a))
        .collect();
    let mut chunk_batch = Rows::new(lance::chunks_schema(dims));
    for (artifact, version, ordinal, heading, text, vector) in &chunks {
        let (Some(a), Some(commit)) = (
            by_version.get(&(artifact.as_str(), *version)),
            commits.get(&(artifact.clone(), *version)),
        ) else {
            continue;
        };
        let text_hash = hash_of(text);
        push_chunk(
            &mut chunk_batch,
            a,
            *version,
            commit,
            *ordinal,
            (heading, text, &text_hash),
            latest.get(artifact.as_str()) == Some(version),
            &from_blob(vector),
        )?;
    }
    if !artifacts.is_empty() {
        tables
            .artifacts
            .add(lance::reader(artifact_batch.finish()?))
            .execute()
            .await?;
        tables
            .chunks
            .add(lance::reader(chunk_batch.finish()?))
            .execute()
            .await?;
    }
    if !findings.is_empty() {
        let mut rows = Rows::new(lance::findings_schema(dims));
        for (f, (team, project, at, vector)) in findings.iter().zip(&finding_meta) {
            rows.push(&[
                Value::Text(&f.0),
                Value::Text(&f.1),
                Value::Int(i64::from(f.2)),
                Value::Text(&f.3),
                Value::Text(&f.4),
                Value::Text(&f.5),
                Value::Text(&f.6),
                Value::Text(&f.7),
                Value::Maybe(team.as_deref()),
                Value::Maybe(project.as_deref()),
                Value::Int(*at),
                Value::Vector(&from_blob(vector)),
            ])?;
        }
        let mut merge = tables
            .findings
            .merge_insert(&["artifact_id", "version", "fingerprint"]);
        merge
            .when_matched_update_all(None)
            .when_not_matched_insert_all();
        merge.execute(lance::reader(rows.finish()?)).await?;
    }
    if !decisions.is_empty() {
        let mut rows = Rows::new(lance::decisions_schema(dims));
        for (id, body, text, at, vector) in &decisions {
            let kind = serde_json::from_str::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned))
                .unwrap_or_default();
            rows.push(&[
                Value::Text(id),
                Value::Text(&kind),
                Value::Text(body),
                Value::Text(text),
                Value::Int(*at),
                Value::Vector(&from_blob(vector)),
            ])?;
        }
        let mut merge = tables.decisions.merge_insert(&["id"]);
        merge
            .when_matched_update_all(None)
            .when_not_matched_insert_all();
        merge.execute(lance::reader(rows.finish()?)).await?;
    }
    let mut per_version: HashMap<(&str, u32), i64> = HashMap::new();
    for (artifact, version, ..) in &chunks {
        *per_version
            .entry((artifact.as_str(), *version))
            .or_default() += 1;
    }
    let recorded: Vec<(String, u32, String, String, i64, i64)> = artifacts
        .iter()
        .map(|(a, v, hash)| {
            (
                a.artifact_id.clone(),
                *v,
                commits[&(a.artifact_id.clone(), *v)].clone(),
                hash.clone(),
                per_version
                    .get(&(a.artifact_id.as_str(), *v))
                    .copied()
                    .unwrap_or(0),
                a.created_at_ms,
            )
        })
        .collect();
    ops.transaction(move |tx| {
        let mut stmt = tx.prepare(
            "INSERT INTO mem_versions (artifact_id, version, commit_id, content_hash, chunks, \
             created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for (id, v, commit, hash, chunks, at) in &recorded {
            stmt.execute(params![id, v, commit, hash, chunks, at])?;
        }
        tx.execute_batch(
            "DELETE FROM mem_chunks; \
             INSERT INTO mem_chunks_fts (mem_chunks_fts) VALUES ('delete-all'); \
             DELETE FROM mem_findings; DELETE FROM mem_decisions;",
        )?;
        Ok(())
    })
    .await?;
    tables.upkeep(true).await
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

/// SHA-256 of a text, hex.
pub(crate) fn hash(text: &str) -> String {
    hash_of(text)
}

fn hash_of(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A vector as little-endian f32 bytes.
#[cfg(test)]
fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
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
