//! The models in the analysis: loads the embeddings and chat models that `[llm]` asks for and
//! hands them to the engine behind its traits. With `mode = "auto"` a missing model is a
//! warning and the analysis is the deterministic one; with `mode = "on"` it is an error.

use anyhow::{Context, Result};
use std::sync::Arc;

use vigil_analysis::assist::{ModelError, SemanticIndex, SentenceEmbedder};
use vigil_analysis::Engine;
use vigil_infer::{Embedder, Manifest, ModelRole, ModelSearch, Verification};

use crate::config::{Config, LlmMode};
use crate::models;

/// The embeddings model as the analysis sees it.
struct Embeddings(Embedder);

impl SentenceEmbedder for Embeddings {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        self.0.embed(texts).map_err(|e| ModelError(e.to_string()))
    }
}

/// `engine` with the models the configuration asks for.
pub fn attach(engine: Engine, config: &Config) -> Result<Engine> {
    let llm = &config.llm;
    if llm.mode == LlmMode::Off || !(llm.embeddings || llm.reviewer) {
        return Ok(engine);
    }
    match load_embeddings(config) {
        Ok(embedder) => {
            let mut engine = engine;
            if llm.embeddings {
                let started = std::time::Instant::now();
                let name = embedder.0.name().to_string();
                let embedder: Arc<dyn SentenceEmbedder> = Arc::new(embedder);
                let index =
                    SemanticIndex::build(&engine.catalog().lexicon, embedder, llm.similarity)
                        .map_err(|e| anyhow::anyhow!("embedding the catalogue's exemplars: {e}"))?;
                tracing::info!(
                    exemplars = index.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "exemplar index built"
                );
                engine = engine.with_semantic(&name, index);
            }
            Ok(engine)
        }
        Err(err) if llm.mode == LlmMode::Auto => {
            eprintln!(
                "warning: analysing without models ({err:#}); run scripts/fetch-models, or pass \
                 --no-llm to silence this"
            );
            Ok(engine)
        }
        Err(err) => Err(err),
    }
}

fn load_embeddings(config: &Config) -> Result<Embeddings> {
    let manifest: Manifest = models::manifest(config.models.manifest.as_deref())?;
    let spec = manifest.default_for(ModelRole::Embeddings)?;
    let search = ModelSearch::from_env(config.models.dir.as_deref());
    let resolved = search
        .resolve(spec, Verification::Cached)
        .with_context(|| format!("embeddings model {}", spec.name))?;
    Ok(Embeddings(Embedder::load(&resolved)?))
}
