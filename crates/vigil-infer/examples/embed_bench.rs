//! Model load time and embeddings per second for batches of 64 short sentences on this machine.
//!
//! `cargo run --release -p vigil-infer --example embed_bench` (models from `scripts/fetch-models`;
//! `RAYON_NUM_THREADS` sets the threads).

use anyhow::{Context, Result};
use std::time::Instant;

use vigil_infer::{Embedder, Manifest, ModelRole, ModelSearch, Verification};

const SUBJECTS: [&str; 8] = [
    "The billing service",
    "The mobile app",
    "An admin user",
    "The nightly export job",
    "The partner API",
    "The support portal",
    "The audit log writer",
    "The webhook receiver",
];
const ACTIONS: [&str; 8] = [
    "stores card numbers in a shared database.",
    "calls the identity provider over TLS.",
    "uploads customer files to object storage.",
    "reads secrets from environment variables.",
    "accepts unauthenticated requests from the internet.",
    "writes personal data to debug logs.",
    "forwards events to a third-party analytics vendor.",
    "runs SQL built from request parameters.",
];

fn main() -> Result<()> {
    let sentences: Vec<String> = (0..64)
        .map(|i| format!("{} {}", SUBJECTS[i % 8], ACTIONS[(i / 8 + i) % 8]))
        .collect();
    let texts: Vec<&str> = sentences.iter().map(String::as_str).collect();

    let manifest = Manifest::builtin()?;
    let spec = manifest.default_for(ModelRole::Embeddings)?;
    let search = ModelSearch::from_env(None);
    let started = Instant::now();
    let model = search
        .resolve(spec, Verification::Full)
        .context("run scripts/fetch-models first")?;
    let verified = started.elapsed();
    let embedder = Embedder::load(&model)?;
    let loaded = started.elapsed();
    println!(
        "load: {:.0} ms ({:.0} ms sha256 of {} files, {:.0} ms reading and building the model)",
        loaded.as_secs_f64() * 1e3,
        verified.as_secs_f64() * 1e3,
        model.files.len(),
        (loaded - verified).as_secs_f64() * 1e3,
    );

    embedder.embed(&texts)?;
    let rounds = 10;
    let started = Instant::now();
    for _ in 0..rounds {
        embedder.embed(&texts)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "embed: {:.1} embeddings/s ({rounds} batches of {}, {:.1} ms a batch, {} threads)",
        (rounds * texts.len()) as f64 / seconds,
        texts.len(),
        seconds * 1e3 / rounds as f64,
        candle_threads(),
    );
    Ok(())
}

fn candle_threads() -> String {
    std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| {
        std::thread::available_parallelism().map_or("?".into(), |n| n.to_string())
    })
}
