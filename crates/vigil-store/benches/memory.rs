//! Memory benchmark (LanceDB beside SQLite): ingest throughput with real embeddings, and hybrid
//! query latency at 10,000 and 100,000 chunks on a synthetic corpus. Prints figures and ratios; asserts nothing.
//!
//! Run with `cargo test -p vigil-store --bench memory` (the workspace's dev profile, whose
//! dependencies are optimised); `VIGIL_BENCH_CHUNKS=10000` limits the latency corpora.

use anyhow::{Context, Result};
use std::path::Path;
use std::time::Instant;

use vigil_infer::{Embedder, Manifest, ModelRole, ModelSearch, Verification};
use vigil_store::{
    ArtifactRecord, DataDir, Memory, OpsOptions, OpsStore, SearchFilter, TextEmbedder,
};

const WORDS: &[&str] = &[
    "payment",
    "ledger",
    "token",
    "card",
    "order",
    "refund",
    "queue",
    "worker",
    "bucket",
    "export",
    "partner",
    "admin",
    "console",
    "session",
    "cookie",
    "password",
    "hash",
    "mesh",
    "certificate",
    "gateway",
    "database",
    "replica",
    "backup",
    "region",
    "tenant",
    "audit",
    "webhook",
    "signature",
    "secret",
    "vault",
    "cache",
    "search",
    "index",
    "profile",
    "address",
];

/// Deterministic pseudo-random numbers (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn unit(&mut self, dims: usize) -> Vec<f32> {
        let v: Vec<f32> = (0..dims)
            .map(|_| (self.next() % 2000) as f32 / 1000.0 - 1.0)
            .collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    }

    fn sentence(&mut self, n: usize) -> String {
        let words: Vec<&str> = (0..n)
            .map(|_| WORDS[(self.next() % WORDS.len() as u64) as usize])
            .collect();
        words.join(" ")
    }
}

/// Synthetic vectors, for corpora too large to embed here.
struct SyntheticEmbedder(std::sync::Mutex<Rng>);

impl TextEmbedder for SyntheticEmbedder {
    fn dimensions(&self) -> usize {
        384
    }

    fn embed(&self, texts: &[&str]) -> vigil_store::Result<Vec<Vec<f32>>> {
        let mut rng = self.0.lock().expect("rng");
        Ok(texts.iter().map(|_| rng.unit(384)).collect())
    }
}

fn real_embedder() -> Result<Embedder> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let manifest = Manifest::builtin()?;
    let spec = manifest.default_for(ModelRole::Embeddings)?;
    let search = ModelSearch::from_lookup(None, &root, |k| std::env::var_os(k));
    let model = search
        .resolve(spec, Verification::Cached)
        .context("the benchmark needs the default models; run scripts/fetch-models")?;
    Ok(Embedder::load(&model)?)
}

fn artifact(rng: &mut Rng, id: usize, sections: usize) -> ArtifactRecord {
    ArtifactRecord {
        artifact_id: format!("BENCH-{id}"),
        tool: "jira".to_owned(),
        external_key: Some(format!("BENCH-{id}")),
        title: format!("Design {id}"),
        team: Some(format!("team-{}", id % 8)),
        project: Some("bench".to_owned()),
        sections: (0..sections)
            .map(|s| (format!("Section {s}"), format!("{}.", rng.sentence(40))))
            .collect(),
        created_at_ms: 1_700_000_000_000 + id as i64,
        ..ArtifactRecord::default()
    }
}

async fn memory(dir: &Path) -> Result<Memory> {
    let ops = OpsStore::open(&DataDir::new(dir), &OpsOptions::default(), &[]).await?;
    Ok(Memory::new(ops, 384))
}

async fn ingest(rng: &mut Rng) -> Result<()> {
    let embedder = real_embedder()?;
    let dir = tempfile::tempdir()?;
    let memory = memory(dir.path()).await?;
    let mut records: Vec<ArtifactRecord> = (0..40).map(|i| artifact(rng, i, 4)).collect();

    let started = Instant::now();
    for r in &records {
        memory.put_artifact(r, &embedder).await?;
    }
    let first = started.elapsed().as_secs_f64();
    for r in &mut records {
        r.sections[3].1 = format!("{}.", rng.sentence(40));
    }
    let started = Instant::now();
    for r in &records {
        memory.put_artifact(r, &embedder).await?;
    }
    let second = started.elapsed().as_secs_f64();
    println!(
        "ingest, real embeddings: {:.2} artifacts/s ({:.1} chunks/s) for new artifacts of 4 \
         sections; {:.2} artifacts/s for new versions with 1 of 4 sections changed ({:.1}x)",
        40.0 / first,
        160.0 / first,
        40.0 / second,
        first / second
    );
    Ok(())
}

async fn latency(rng: &mut Rng, chunks: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let memory = memory(dir.path()).await?;
    let embedder = SyntheticEmbedder(std::sync::Mutex::new(Rng(7)));
    let started = Instant::now();
    let artifacts = chunks / 10;
    for first in (0..artifacts).step_by(500) {
        let batch: Vec<ArtifactRecord> = (first..(first + 500).min(artifacts))
            .map(|i| artifact(rng, i, 10))
            .collect();
        memory.put_artifacts(&batch, &embedder).await?;
    }
    let load = started.elapsed().as_secs_f64();
    let started = Instant::now();
    memory.optimize().await?;
    memory.prepare_index().await?;
    let build = started.elapsed().as_secs_f64();
    let indexes = memory.indexes().await?.join(" and ");

    let mut times = Vec::new();
    // 200 queries, every other one filtered by team, so that p99 is more than the slowest one.
    for i in 0..200 {
        let q = rng.sentence(6);
        let v = rng.unit(384);
        let filter = SearchFilter {
            team: (i % 2 == 1).then(|| format!("team-{}", i % 8)),
            ..SearchFilter::default()
        };
        let t = Instant::now();
        memory.search_chunks(&q, &v, &filter, 10).await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    println!(
        "hybrid query, {chunks} chunks in LanceDB (synthetic vectors, stored in {load:.1} s in \
         batches of 500 artifacts, indexes on {indexes} built in {build:.1} s): p50 {:.1} ms, \
         p99 {:.1} ms (target p99 < 50 ms: {:.2}x of target)",
        pct(0.5),
        pct(0.99),
        pct(0.99) / 50.0
    );

    // What the service does with each webhook: one artifact written at a time, new versions of
    // existing artifacts among them, upkeep of the indexes and fragments included.
    let mut times = Vec::new();
    for i in 0..100 {
        let id = if i % 2 == 0 { i } else { artifacts + i };
        let record = artifact(rng, id, 10);
        let t = Instant::now();
        memory.put_artifact(&record, &embedder).await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    println!(
        "single writes into {chunks} chunks (10 chunks each, half of them new versions): \
         p50 {:.1} ms, p99 {:.1} ms, mean {:.1} ms",
        pct(0.5),
        pct(0.99),
        times.iter().sum::<f64>() / times.len() as f64
    );
    Ok(())
}

fn main() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut rng = Rng(42);
    let largest: usize = std::env::var("VIGIL_BENCH_CHUNKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    rt.block_on(async {
        ingest(&mut rng).await?;
        for chunks in [10_000, 100_000].into_iter().filter(|c| *c <= largest) {
            latency(&mut rng, chunks).await?;
        }
        anyhow::Ok(())
    })
}
