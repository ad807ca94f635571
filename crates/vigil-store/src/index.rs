//! The in-process search index over memory's chunks: every chunk's embedding in one contiguous
//! matrix and an inverted index of its words, so that a hybrid query is an exact vector scan and
//! a BM25 ranking in memory instead of two SQL scans.
//!
//! SQLite stays the source of truth: the index is built from `mem_chunks` at the first search
//! and brought up to date before every search. Chunks and artifact versions are only ever
//! appended, so the index remembers the largest chunk id and artifact row id it has read (its
//! generation) and reads only what lies beyond them; a chunk whose artifact has a newer version
//! is marked dead and skipped, and dead rows are compacted away once they are a third of the
//! index. Writes by another process (`vigil ingest` while `vigil serve` runs) are seen the same
//! way. If the tables ever shrink (a restored snapshot), the index is rebuilt from scratch.
//!
//! Memory: 4 bytes per dimension per chunk (1.5 KiB for 384 dimensions, 150 MiB at 100,000
//! chunks) plus the postings.

use rusqlite::types::Type;
use rusqlite::Connection;
use std::collections::HashMap;

use crate::memory::SearchFilter;
use crate::Result;

/// BM25 term-frequency saturation.
const BM25_K1: f32 = 1.2;
/// BM25 length normalisation.
const BM25_B: f32 = 0.75;

/// Strings seen often (artifact ids, teams, projects, tools) stored once, referred to by number.
#[derive(Debug, Default)]
struct Interner {
    ids: HashMap<String, u32>,
}

impl Interner {
    fn intern(&mut self, s: &str) -> u32 {
        let next = self.ids.len() as u32;
        *self.ids.entry(s.to_owned()).or_insert(next)
    }

    fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }
}

/// What the index keeps of one chunk besides its vector and words.
#[derive(Debug, Clone, Copy)]
struct Row {
    id: i64,
    artifact: u32,
    version: u32,
    team: Option<u32>,
    project: Option<u32>,
    tool: u32,
    created_at: i64,
    words: u32,
    alive: bool,
}

/// A query's filter in the index's numbering; `None` when some value was never stored, so
/// nothing can match.
struct RowFilter {
    team: Option<u32>,
    project: Option<u32>,
    tool: Option<u32>,
    since_ms: Option<i64>,
    until_ms: Option<i64>,
}

impl RowFilter {
    fn accepts(&self, row: &Row) -> bool {
        row.alive
            && self.team.is_none_or(|t| row.team == Some(t))
            && self.project.is_none_or(|p| row.project == Some(p))
            && self.tool.is_none_or(|t| row.tool == t)
            && self.since_ms.is_none_or(|t| row.created_at >= t)
            && self.until_ms.is_none_or(|t| row.created_at < t)
    }
}

/// One ranked chunk: its id and the rank lists it came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ranked {
    /// Chunk ids by cosine similarity, best first.
    pub by_vector: Vec<i64>,
    /// Chunk ids by BM25, best first.
    pub by_text: Vec<i64>,
}

/// The index; see the module documentation.
#[derive(Debug)]
pub(crate) struct ChunkIndex {
    dims: usize,
    /// Largest `mem_chunks.id` read.
    last_chunk: i64,
    /// Largest `mem_artifacts.rowid` read.
    last_artifact: i64,
    /// Latest version of each artifact (by interned id).
    latest: HashMap<u32, u32>,
    /// Rows of each artifact, to mark the old ones dead when a version arrives.
    rows_of: HashMap<u32, Vec<u32>>,
    rows: Vec<Row>,
    /// Unit vectors, `dims` floats per row.
    vectors: Vec<f32>,
    /// Word -> (row, occurrences in the chunk).
    postings: HashMap<String, Vec<(u32, u32)>>,
    artifacts: Interner,
    labels: Interner,
    dead: usize,
    /// Words in alive rows, for the average length BM25 needs.
    alive_words: u64,
}

impl ChunkIndex {
    /// An empty index for vectors of `dims` dimensions.
    pub fn new(dims: usize) -> ChunkIndex {
        ChunkIndex {
            dims,
            last_chunk: 0,
            last_artifact: 0,
            latest: HashMap::new(),
            rows_of: HashMap::new(),
            rows: Vec::new(),
            vectors: Vec::new(),
            postings: HashMap::new(),
            artifacts: Interner::default(),
            labels: Interner::default(),
            dead: 0,
            alive_words: 0,
        }
    }

    /// Chunks the index holds that are searchable (their artifact's latest version).
    pub fn alive(&self) -> usize {
        self.rows.len() - self.dead
    }

    /// Reads what was appended since the last refresh, in one read transaction so that artifact
    /// versions and their chunks are seen together.
    pub fn refresh(&mut self, conn: &mut Connection) -> Result<()> {
        let tx = conn.transaction()?;
        let (max_chunk, max_artifact): (i64, i64) = tx.query_row(
            "SELECT (SELECT coalesce(max(id), 0) FROM mem_chunks), \
                    (SELECT coalesce(max(rowid), 0) FROM mem_artifacts)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if max_chunk == self.last_chunk && max_artifact == self.last_artifact {
            return Ok(());
        }
        if max_chunk < self.last_chunk || max_artifact < self.last_artifact {
            *self = ChunkIndex::new(self.dims);
        }

        let mut stmt = tx.prepare(
            "SELECT rowid, artifact_id, version FROM mem_artifacts WHERE rowid > ?1 \
             ORDER BY rowid",
        )?;
        let mut q = stmt.query([self.last_artifact])?;
        while let Some(r) = q.next()? {
            let artifact = self.artifacts.intern(str_at(r, 1)?);
            let version: u32 = r.get(2)?;
            self.last_artifact = r.get(0)?;
            let latest = self.latest.entry(artifact).or_insert(0);
            if version > *latest {
                *latest = version;
                for &row in self.rows_of.get(&artifact).into_iter().flatten() {
                    let row = &mut self.rows[row as usize];
                    if row.alive && row.version < version {
                        row.alive = false;
                        self.dead += 1;
                        self.alive_words -= u64::from(row.words);
                    }
                }
            }
        }
        drop(q);
        drop(stmt);

        let mut stmt = tx.prepare(
            "SELECT id, artifact_id, version, team, project, tool, created_at, text, vector \
             FROM mem_chunks WHERE id > ?1 ORDER BY id",
        )?;
        let mut q = stmt.query([self.last_chunk])?;
        while let Some(r) = q.next()? {
            let id: i64 = r.get(0)?;
            self.last_chunk = id;
            let blob = blob_at(r, 8)?;
            if blob.len() != self.dims * 4 {
                // A vector of another model's size cannot be compared; it stays out of the index.
                tracing::warn!(chunk = id, "chunk embedding has the wrong dimensions");
                continue;
            }
            let artifact = self.artifacts.intern(str_at(r, 1)?);
            let version: u32 = r.get(2)?;
            let team = opt_str_at(r, 3)?.map(|s| self.labels.intern(s));
            let project = opt_str_at(r, 4)?.map(|s| self.labels.intern(s));
            let tool = self.labels.intern(str_at(r, 5)?);
            let created_at: i64 = r.get(6)?;
            let text = str_at(r, 7)?;
            let alive = self.latest.get(&artifact).is_none_or(|&v| version >= v);
            self.push(
                Row {
                    id,
                    artifact,
                    version,
                    team,
                    project,
                    tool,
                    created_at,
                    words: 0,
                    alive,
                },
                text,
                blob,
            );
        }
        drop(q);
        drop(stmt);
        tx.finish()?;
        if self.dead * 3 > self.rows.len() {
            self.compact();
        }
        tracing::debug!(
            chunks = self.alive(),
            dead = self.dead,
            "memory index refreshed"
        );
        Ok(())
    }

    fn push(&mut self, mut row: Row, text: &str, blob: &[u8]) {
        let index = self.rows.len() as u32;
        let mut counts: HashMap<String, u32> = HashMap::new();
        for word in words(text) {
            *counts.entry(word).or_default() += 1;
        }
        row.words = counts.values().sum();
        for (word, n) in counts {
            self.postings.entry(word).or_default().push((index, n));
        }
        let start = self.vectors.len();
        self.vectors.extend(
            blob.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
        normalise(&mut self.vectors[start..]);
        if row.alive {
            self.alive_words += u64::from(row.words);
        } else {
            self.dead += 1;
        }
        self.rows_of.entry(row.artifact).or_default().push(index);
        self.rows.push(row);
    }

    /// Drops dead rows, renumbering the live ones.
    fn compact(&mut self) {
        let mut renumber = vec![u32::MAX; self.rows.len()];
        let mut rows = Vec::with_capacity(self.alive());
        let mut vectors = Vec::with_capacity(self.alive() * self.dims);
        for (old, row) in self.rows.iter().enumerate() {
            if row.alive {
                renumber[old] = rows.len() as u32;
                rows.push(*row);
                vectors.extend_from_slice(&self.vectors[old * self.dims..(old + 1) * self.dims]);
            }
        }
        for list in self.postings.values_mut() {
            list.retain_mut(|(row, _)| {
                *row = renumber[*row as usize];
                *row != u32::MAX
            });
        }
        self.postings.retain(|_, list| !list.is_empty());
        for list in self.rows_of.values_mut() {
            list.retain_mut(|row| {
                *row = renumber[*row as usize];
                *row != u32::MAX
            });
        }
        self.rows = rows;
        self.vectors = vectors;
        self.dead = 0;
    }

    fn row_filter(&self, filter: &SearchFilter) -> Option<RowFilter> {
        let label = |value: &Option<String>| match value {
            None => Some(None),
            Some(v) => self.labels.get(v).map(Some),
        };
        Some(RowFilter {
            team: label(&filter.team)?,
            project: label(&filter.project)?,
            tool: label(&filter.tool)?,
            since_ms: filter.since_ms,
            until_ms: filter.until_ms,
        })
    }

    /// The `depth` best chunks by cosine similarity to `vector` and by BM25 for `text`'s words,
    /// among the latest versions that pass `filter`.
    pub fn rank(&self, text: &str, vector: &[f32], filter: &SearchFilter, depth: usize) -> Ranked {
        let Some(filter) = self.row_filter(filter) else {
            return Ranked {
                by_vector: Vec::new(),
                by_text: Vec::new(),
            };
        };
        // The two rankings are independent: on a machine with a spare core they run side by side.
        let (by_vector, by_text) = std::thread::scope(|scope| {
            let by_text = scope.spawn(|| self.by_text(text, &filter, depth));
            let by_vector = self.by_vector(vector, &filter, depth);
            (by_vector, by_text.join().unwrap_or_default())
        });
        Ranked { by_vector, by_text }
    }

    fn by_vector(&self, vector: &[f32], filter: &RowFilter, depth: usize) -> Vec<i64> {
        if vector.len() != self.dims || depth == 0 {
            return Vec::new();
        }
        let mut query = vector.to_vec();
        if !normalise(&mut query) {
            return Vec::new();
        }
        let mut scored: Vec<(f32, u32)> = self
            .rows
            .iter()
            .zip(self.vectors.chunks_exact(self.dims))
            .enumerate()
            .filter(|(_, (row, _))| filter.accepts(row))
            .map(|(i, (_, v))| (dot(&query, v), i as u32))
            .collect();
        self.top(&mut scored, depth)
    }

    fn by_text(&self, text: &str, filter: &RowFilter, depth: usize) -> Vec<i64> {
        let alive = self.alive();
        if alive == 0 || depth == 0 {
            return Vec::new();
        }
        let mut terms: Vec<String> = words(text).collect();
        terms.sort();
        terms.dedup();
        let average = (self.alive_words as f32 / alive as f32).max(1.0);
        // Dense scores and the rows touched: cheaper than a map when a common word matches most
        // of the index.
        let mut scores = vec![0.0f32; self.rows.len()];
        let mut touched: Vec<u32> = Vec::new();
        for term in &terms {
            let Some(list) = self.postings.get(term) else {
                continue;
            };
            let n = list
                .iter()
                .filter(|(row, _)| self.rows[*row as usize].alive)
                .count() as f32;
            if n == 0.0 {
                continue;
            }
            // Always positive, so a touched row never scores zero.
            let idf = ((alive as f32 - n + 0.5) / (n + 0.5) + 1.0).ln();
            for &(row, tf) in list {
                let r = &self.rows[row as usize];
                if !filter.accepts(r) {
                    continue;
                }
                let tf = tf as f32;
                let norm = 1.0 - BM25_B + BM25_B * r.words as f32 / average;
                let slot = &mut scores[row as usize];
                if *slot == 0.0 {
                    touched.push(row);
                }
                *slot += idf * tf * (BM25_K1 + 1.0) / (tf + BM25_K1 * norm);
            }
        }
        let mut scored: Vec<(f32, u32)> = touched
            .into_iter()
            .map(|row| (scores[row as usize], row))
            .collect();
        self.top(&mut scored, depth)
    }

    /// Chunk ids of the `depth` highest scores, best first (ties by chunk id, oldest first).
    fn top(&self, scored: &mut Vec<(f32, u32)>, depth: usize) -> Vec<i64> {
        let order = |a: &(f32, u32), b: &(f32, u32)| {
            b.0.total_cmp(&a.0)
                .then_with(|| self.rows[a.1 as usize].id.cmp(&self.rows[b.1 as usize].id))
        };
        if scored.len() > depth {
            scored.select_nth_unstable_by(depth - 1, order);
            scored.truncate(depth);
        }
        scored.sort_unstable_by(order);
        scored
            .iter()
            .map(|&(_, row)| self.rows[row as usize].id)
            .collect()
    }
}

/// Column `i` of a row as text, read in place.
fn str_at<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<&'r str> {
    r.get_ref(i)?
        .as_str()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, Type::Text, Box::new(e)))
}

/// Column `i` of a row as text or NULL, read in place.
fn opt_str_at<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<&'r str>> {
    r.get_ref(i)?
        .as_str_or_null()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, Type::Text, Box::new(e)))
}

/// Column `i` of a row as a blob, read in place.
fn blob_at<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<&'r [u8]> {
    r.get_ref(i)?
        .as_blob()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, Type::Blob, Box::new(e)))
}

/// Lower-cased alphanumeric words of more than one character, as the full-text ranking sees
/// them.
pub(crate) fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().nth(1).is_some())
        .map(str::to_lowercase)
}

/// Scales `v` to unit length; false (and unchanged) when it is all zeros.
fn normalise(v: &mut [f32]) -> bool {
    let norm = dot(v, v).sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return false;
    }
    v.iter_mut().for_each(|x| *x /= norm);
    true
}

/// Dot product with eight independent sums, which the compiler turns into vector instructions.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut sums = [0.0f32; 8];
    let (a8, a_rest) = a.split_at(a.len() / 8 * 8);
    let (b8, b_rest) = b.split_at(a8.len());
    for (x, y) in a8.chunks_exact(8).zip(b8.chunks_exact(8)) {
        for i in 0..8 {
            sums[i] += x[i] * y[i];
        }
    }
    let tail: f32 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    sums.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_the_plain_sum() {
        let a: Vec<f32> = (0..389).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..389).map(|i| (i as f32 * 0.11).cos()).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-4);
    }

    #[test]
    fn words_are_lower_cased_and_single_letters_dropped() {
        let w: Vec<String> = words("The mTLS mesh, a B2B API!").collect();
        assert_eq!(w, ["the", "mtls", "mesh", "b2b", "api"]);
    }

    #[test]
    fn zero_vectors_are_not_normalised() {
        let mut v = vec![0.0; 4];
        assert!(!normalise(&mut v));
        let mut v = vec![3.0, 4.0];
        assert!(normalise(&mut v));
        assert!((v[0] - 0.6).abs() < 1e-6);
    }
}
