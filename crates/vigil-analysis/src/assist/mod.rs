//! What models add to the deterministic pipeline, behind traits so that this crate loads no
//! model itself: embeddings widen extraction ([`semantic`]), and a chat model reviews the
//! diagram for threats the rules missed and writes a summary ([`reviewer`]).
//!
//! Models only add. A model's proposal must name a catalogue rule and a diagram element and
//! quote the artifact, or it is dropped; nothing a model says removes or lowers a rule's finding.

pub mod reviewer;
pub mod semantic;

pub use reviewer::{LlmReview, ReviewerConfig};
pub use semantic::{SemanticHints, SemanticIndex};

/// A model failed; the message says which and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ModelError(pub String);

/// Turns sentences into L2-normalised vectors whose dot product is their similarity.
pub trait SentenceEmbedder: Send + Sync {
    /// One vector per text, in order.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError>;
}

/// One message of a chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTurn {
    /// `system` or `user`.
    pub role: &'static str,
    /// The text.
    pub content: String,
}

/// A chat model that answers with JSON conforming to a schema (decoding is constrained, so the
/// answer always parses and always conforms).
pub trait JsonChat: Send + Sync {
    /// Generates an answer to `messages` under `schema`, at most `max_tokens` long.
    fn generate_json(
        &self,
        messages: &[ChatTurn],
        schema: &serde_json::Value,
        max_tokens: usize,
    ) -> Result<serde_json::Value, ModelError>;

    /// The model's name, for the record of what produced a finding.
    fn name(&self) -> &str;
}
