//! Local inference for Vigil: the model manifest, finding and verifying model files, and sentence
//! embeddings with candle on the CPU (or an NVIDIA GPU with the `cuda` feature).
//!
//! This crate knows nothing about findings: it turns text into vectors (and, later, prompts into
//! completions) for the layers above.

mod bert;
pub mod embed;
mod error;
pub mod models;

pub use embed::Embedder;
pub use error::{Error, Result};
pub use models::{Manifest, ModelRole, ModelSearch, ModelSpec, ResolvedModel, Verification};
