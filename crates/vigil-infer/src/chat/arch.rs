//! The model architectures a GGUF may hold, dispatched on `general.architecture`, each backed
//! by candle-transformers' quantized implementation.

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::{
    quantized_gemma3, quantized_llama, quantized_phi3, quantized_qwen2, quantized_qwen3,
};
use std::fs::File;

// The default model exercises llama with real weights; every architecture, llama included, is
// run on a tiny GGUF of random weights (tests/it/architectures.rs): dispatch, metadata,
// tensors, generation, constrained output and the key-value cache. What real qwen2, qwen3,
// phi3 or gemma3 weights say is not checked here: no such model is fetched by default.
/// A supported architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// Llama 2 and 3, SmolLM2, Mistral-style models (`llama`).
    Llama,
    /// Qwen 2 and 2.5 (`qwen2`).
    Qwen2,
    /// Qwen 3 (`qwen3`).
    Qwen3,
    /// Phi-3 and Phi-3.5 (`phi3`).
    Phi3,
    /// Gemma 3 (`gemma3`).
    Gemma3,
}

impl Architecture {
    /// Every supported architecture, as GGUF names them.
    pub const SUPPORTED: &'static [&'static str] = &["llama", "qwen2", "qwen3", "phi3", "gemma3"];

    /// The architecture of a `general.architecture` value.
    pub fn from_gguf_name(name: &str) -> Option<Architecture> {
        Some(match name {
            "llama" => Architecture::Llama,
            "qwen2" => Architecture::Qwen2,
            "qwen3" => Architecture::Qwen3,
            "phi3" => Architecture::Phi3,
            "gemma3" => Architecture::Gemma3,
            _ => return None,
        })
    }

    /// The name GGUF metadata uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Qwen2 => "qwen2",
            Architecture::Qwen3 => "qwen3",
            Architecture::Phi3 => "phi3",
            Architecture::Gemma3 => "gemma3",
        }
    }

    /// The longest sequence candle's implementation can run, whatever the GGUF says: its
    /// rotary tables are precomputed to this length.
    pub fn implementation_limit(self) -> Option<usize> {
        match self {
            Architecture::Llama => Some(quantized_llama::MAX_SEQ_LEN),
            Architecture::Gemma3 => Some(quantized_gemma3::MAX_SEQ_LEN),
            Architecture::Qwen2 | Architecture::Qwen3 | Architecture::Phi3 => None,
        }
    }
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Loaded weights of one architecture.
pub(crate) enum Weights {
    Llama(quantized_llama::ModelWeights),
    Qwen2(quantized_qwen2::ModelWeights),
    Qwen3(quantized_qwen3::ModelWeights),
    Phi3(quantized_phi3::ModelWeights),
    Gemma3(quantized_gemma3::ModelWeights),
}

impl Weights {
    pub(crate) fn load(
        arch: Architecture,
        content: gguf_file::Content,
        file: &mut File,
        device: &Device,
    ) -> candle_core::Result<Weights> {
        Ok(match arch {
            Architecture::Llama => Weights::Llama(quantized_llama::ModelWeights::from_gguf(
                content, file, device,
            )?),
            Architecture::Qwen2 => Weights::Qwen2(quantized_qwen2::ModelWeights::from_gguf(
                content, file, device,
            )?),
            Architecture::Qwen3 => Weights::Qwen3(quantized_qwen3::ModelWeights::from_gguf(
                content, file, device,
            )?),
            Architecture::Phi3 => Weights::Phi3(quantized_phi3::ModelWeights::from_gguf(
                false, content, file, device,
            )?),
            Architecture::Gemma3 => Weights::Gemma3(quantized_gemma3::ModelWeights::from_gguf(
                content, file, device,
            )?),
        })
    }

    /// Runs `tokens` (shape `(1, n)`) at `position`, returning the last position's logits.
    /// Position 0 starts a new sequence: every implementation then replaces its key-value
    /// cache (Qwen 3's is cleared first, since it only appends).
    pub(crate) fn forward(
        &mut self,
        tokens: &Tensor,
        position: usize,
    ) -> candle_core::Result<Tensor> {
        let logits = match self {
            Weights::Llama(m) => m.forward(tokens, position)?,
            Weights::Qwen2(m) => m.forward(tokens, position)?,
            Weights::Qwen3(m) => {
                if position == 0 {
                    m.clear_kv_cache();
                }
                m.forward(tokens, position)?
            }
            Weights::Phi3(m) => m.forward(tokens, position)?,
            Weights::Gemma3(m) => m.forward(tokens, position)?,
        };
        logits.squeeze(0)
    }

    /// Drops the key-value cache where the implementation allows it (the others replace it at
    /// the next position 0).
    pub(crate) fn clear_cache(&mut self) {
        match self {
            Weights::Llama(m) => m.clear_kv_cache(),
            Weights::Qwen2(m) => m.clear_kv_cache(),
            Weights::Qwen3(m) => m.clear_kv_cache(),
            Weights::Phi3(_) | Weights::Gemma3(_) => {}
        }
    }
}
