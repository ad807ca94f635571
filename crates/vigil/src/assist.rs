//! The models in the analysis: loads the embeddings and chat models that `[llm]` asks for and
//! hands them to the engine behind its traits. With `mode = "auto"` a missing model is a
//! warning and the analysis is the deterministic one; with `mode = "on"` it is an error.

use anyhow::{Context, Result};
use std::sync::{Arc, Mutex};

use vigil_analysis::assist::{
    ChatTurn, JsonChat, LlmReview, ModelError, SemanticIndex, SentenceEmbedder,
};
use vigil_analysis::Engine;
use vigil_infer::{
    ChatMessage, ChatModel, ChatOptions, Embedder, GenerationParams, Manifest, ModelRole,
    ModelSearch, Verification,
};

use crate::config::{Config, LlmMode};
use crate::models;

/// The embeddings model as the analysis sees it.
struct Embeddings(Embedder);

impl SentenceEmbedder for Embeddings {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        self.0.embed(texts).map_err(|e| ModelError(e.to_string()))
    }
}

/// The chat model as the analysis sees it: one generation at a time, greedy, so the same
/// artifact gets the same proposals.
struct Chat {
    name: String,
    model: Mutex<ChatModel>,
}

impl JsonChat for Chat {
    fn generate_json(
        &self,
        messages: &[ChatTurn],
        schema: &serde_json::Value,
        max_tokens: usize,
    ) -> Result<serde_json::Value, ModelError> {
        let messages: Vec<ChatMessage> = messages
            .iter()
            .map(|m| match m.role {
                "system" => ChatMessage::system(m.content.clone()),
                _ => ChatMessage::user(m.content.clone()),
            })
            .collect();
        let params = GenerationParams {
            max_tokens,
            ..GenerationParams::default()
        };
        let mut model = self
            .model
            .lock()
            .map_err(|_| ModelError(format!("{}: an earlier generation panicked", self.name)))?;
        model
            .generate_json(&messages, schema, &params)
            .map_err(|e| ModelError(e.to_string()))
    }

    fn name(&self) -> &str {
        &self.name
    }
}

/// `engine` with the models the configuration asks for.
pub fn attach(engine: Engine, config: &Config) -> Result<Engine> {
    let llm = &config.llm;
    if llm.mode == LlmMode::Off || !(llm.embeddings || llm.reviewer) {
        return Ok(engine);
    }
    match with_models(engine.clone(), config) {
        Ok(engine) => Ok(engine),
        Err(err) if llm.mode == LlmMode::Auto => {
            let err = crate::said(&err);
            let fetch = if crate::models::says_to_fetch(&err) {
                ""
            } else {
                "run scripts/fetch-models, or "
            };
            eprintln!(
                "warning: analysing without models ({err}); {fetch}pass --no-llm to silence this"
            );
            Ok(engine)
        }
        Err(err) => Err(err),
    }
}

fn with_models(mut engine: Engine, config: &Config) -> Result<Engine> {
    let llm = &config.llm;
    let manifest: Manifest = models::manifest(config.models.manifest.as_deref())?;
    let search = ModelSearch::from_env(config.models.dir.as_deref());
    let embedder: Arc<dyn SentenceEmbedder> = Arc::new(load_embeddings(&manifest, &search)?);
    if llm.embeddings {
        let started = std::time::Instant::now();
        let spec = manifest.default_for(ModelRole::Embeddings)?;
        let index =
            SemanticIndex::build(&engine.catalog().lexicon, embedder.clone(), llm.similarity)
                .map_err(|e| anyhow::anyhow!("embedding the catalogue's exemplars: {e}"))?;
        tracing::info!(
            exemplars = index.len(),
            ms = started.elapsed().as_millis() as u64,
            "exemplar index built"
        );
        engine = engine.with_semantic(&spec.name, index);
    }
    if llm.reviewer {
        let chat = Arc::new(load_chat(&manifest, &search)?);
        let reviewer = LlmReview::new(chat, Some(embedder), engine.catalog(), llm.review)
            .map_err(|e| anyhow::anyhow!("embedding the catalogue's rules: {e}"))?;
        engine = engine.with_reviewer(reviewer);
    }
    Ok(engine)
}

fn load_chat(manifest: &Manifest, search: &ModelSearch) -> Result<Chat> {
    let spec = manifest.default_for(ModelRole::Chat)?;
    let resolved = search
        .resolve(spec, Verification::Cached)
        .with_context(|| format!("chat model {}", spec.name))?;
    let model = ChatModel::load(&resolved, ChatOptions::default())?;
    Ok(Chat {
        name: spec.name.clone(),
        model: Mutex::new(model),
    })
}

fn load_embeddings(manifest: &Manifest, search: &ModelSearch) -> Result<Embeddings> {
    let spec = manifest.default_for(ModelRole::Embeddings)?;
    let resolved = search
        .resolve(spec, Verification::Cached)
        .with_context(|| format!("embeddings model {}", spec.name))?;
    Ok(Embeddings(Embedder::load(&resolved)?))
}
