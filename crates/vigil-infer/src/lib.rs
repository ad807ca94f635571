//! Local inference for Vigil: the model manifest, finding and verifying model files, sentence
//! embeddings and quantized GGUF chat models with candle on the CPU (or an NVIDIA GPU with the
//! `cuda` feature).
//!
//! This crate knows nothing about findings: it turns text into vectors, and conversations into
//! answers or schema-conforming JSON, for the layers above.

mod bert;
pub mod chat;
pub mod embed;
mod error;
mod fast_bert;
pub mod models;
mod usage;

pub use chat::{
    Architecture, CancelToken, ChatEngine, ChatMessage, ChatModel, ChatModelInfo, ChatOptions,
    ChatTokenizer, Generation, GenerationParams, Role, StopReason, TokenTimings,
};
pub use embed::Embedder;
pub use error::{Error, Result};
pub use models::{Manifest, ModelRole, ModelSearch, ModelSpec, ResolvedModel, Verification};
pub use usage::{token_usage, TokenUsage};
