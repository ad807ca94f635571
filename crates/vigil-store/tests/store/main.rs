//! vigil-store against a real SQLite file in temporary folders, with the real embedding model
//! (`scripts/fetch-models` puts it in `models/`).

mod lance;
mod lineage;
mod recall;
mod search;

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

use vigil_analysis::Engine;
use vigil_core::Review;
use vigil_infer::{Embedder, Manifest, ModelRole, ModelSearch, Verification};
use vigil_store::{ArtifactRecord, DataDir, Memory, OpsOptions, OpsStore};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The default embeddings model, found as the product finds it.
pub fn embedder() -> Result<Embedder> {
    let manifest = Manifest::builtin()?;
    let spec = manifest.default_for(ModelRole::Embeddings)?;
    let search = ModelSearch::from_lookup(None, &workspace_root(), |k| std::env::var_os(k));
    let model = search
        .resolve(spec, Verification::Cached)
        .context("these tests need the default models; run scripts/fetch-models")?;
    Ok(Embedder::load(&model)?)
}

/// A fixture's bytes.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Both stores in a fresh data directory.
pub struct Stores {
    /// Keeps the folder alive.
    pub dir: tempfile::TempDir,
    pub ops: OpsStore,
    pub memory: Memory,
}

pub async fn stores() -> Result<Stores> {
    let dir = tempfile::tempdir()?;
    let data = DataDir::new(dir.path());
    let ops = OpsStore::open(&data, &OpsOptions::default(), &[]).await?;
    let memory = Memory::new(ops.clone(), 384);
    Ok(Stores { dir, ops, memory })
}

/// Analyses a fixture read as if it came from `origin` (which sets the artifact id); returns
/// the review and the memory record of its one artifact.
pub fn analyze(name: &str, origin: &str) -> Result<(Review, ArtifactRecord)> {
    let engine = Engine::with_defaults()?;
    let bytes = fixture(name);
    let artifacts = vigil_analysis::normalize::normalize(origin, &bytes, &Default::default())?;
    let artifact = artifacts.into_iter().next().context("no artifact")?;
    let review = engine.analyze_artifact(&artifact);
    Ok((
        review,
        ArtifactRecord::from_artifact(&artifact, 1_700_000_000_000),
    ))
}
