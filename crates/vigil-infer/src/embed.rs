//! Sentence embeddings with a BERT-family model (all-MiniLM-L6-v2 by default): word-piece
//! tokens, the encoder (`crate::bert`), mean pooling over the real tokens, L2 normalisation.
//! The same recipe as sentence-transformers, so vectors agree with it to within rounding.
//!
//! On the CPU the encoder is `crate::fast_bert` (packed matrix products, AVX-512 with bfloat16
//! inputs where the CPU has AVX512_BF16, else AVX-512 or AVX2 in f32, chosen at run time; each
//! batch split across `RAYON_NUM_THREADS` threads, default every core; set it lower to leave
//! cores to other work). candle's BERT (`crate::bert`) runs models that
//! path does not cover, runs on a GPU with the `cuda` feature, and serves as the baseline
//! ([`Embedder::with_candle`]).

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config as BertConfig;
use std::path::{Path, PathBuf};
use tokenizers::{Encoding, Tokenizer, TruncationParams};

use crate::bert::Encoder;
use crate::fast_bert::FastBert;
use crate::models::{ModelRole, ResolvedModel};
use crate::{Error, Result};

/// How many texts go through the encoder together unless [`Embedder::with_batch_size`] says
/// otherwise. Larger batches pad more and use more memory for little gain on a CPU.
const BATCH_SIZE: usize = 32;

/// A loaded embeddings model.
pub struct Embedder {
    name: String,
    model: Encoder,
    /// The fast CPU path, when it covers the model; `model` runs otherwise.
    fast: Option<FastBert>,
    tokenizer: Tokenizer,
    tokenizer_path: PathBuf,
    device: Device,
    dimensions: usize,
    max_tokens: usize,
    batch_size: usize,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("name", &self.name)
            .field("dimensions", &self.dimensions)
            .field("max_tokens", &self.max_tokens)
            .field("device", &self.device)
            .field("engine", &self.engine_name())
            .finish_non_exhaustive()
    }
}

impl Embedder {
    /// Loads a resolved embeddings model (`config.json`, `tokenizer.json`, `model.safetensors`).
    pub fn load(model: &ResolvedModel) -> Result<Embedder> {
        let name = model.spec.name.clone();
        check_kind(model)?;
        let started = std::time::Instant::now();

        let config_path = model.file("config.json")?;
        let config = read_config(config_path)?;
        let max_tokens = model
            .spec
            .max_tokens
            .unwrap_or(config.max_position_embeddings)
            .min(config.max_position_embeddings);
        let tokenizer_path = model.file("tokenizer.json")?.to_path_buf();
        let tokenizer = load_tokenizer(&tokenizer_path, max_tokens)?;

        let device = device(&name)?;
        let weights_path = model.file("model.safetensors")?;
        let weights = std::fs::read(weights_path).map_err(|source| Error::Io {
            path: weights_path.to_path_buf(),
            source,
        })?;
        let candle = |source| Error::Candle {
            model: name.clone(),
            source,
        };
        let vb =
            VarBuilder::from_buffered_safetensors(weights, DType::F32, &device).map_err(candle)?;
        let bert = Encoder::load(vb.clone(), &config).map_err(candle)?;
        let fast = if device.is_cpu() {
            let threads = candle_core::utils::get_num_threads();
            FastBert::load(vb, &config, threads).map_err(candle)?
        } else {
            None
        };

        tracing::info!(
            model = %name,
            dimensions = config.hidden_size,
            max_tokens,
            threads = candle_core::utils::get_num_threads(),
            engine = fast.as_ref().map_or("candle", |f| f.kernel_name()),
            ms = started.elapsed().as_millis() as u64,
            "embeddings model loaded"
        );
        Ok(Embedder {
            name,
            model: bert,
            fast,
            tokenizer,
            tokenizer_path,
            device,
            dimensions: config.hidden_size,
            max_tokens,
            batch_size: BATCH_SIZE,
        })
    }

    /// The same embedder, running at most `texts` texts through the encoder at once (at least 1).
    pub fn with_batch_size(mut self, texts: usize) -> Embedder {
        self.batch_size = texts.max(1);
        self
    }

    /// The same embedder on candle's BERT alone, never the fast CPU path: the baseline the
    /// bench compares against.
    pub fn with_candle(mut self) -> Embedder {
        self.fast = None;
        self
    }

    /// The encoder in use: `fast-bert (KERNELS, N threads)` with KERNELS `avx512-bf16`,
    /// `avx512`, `avx2` or `portable`; or `candle`.
    pub fn engine_name(&self) -> String {
        match &self.fast {
            Some(fast) => format!(
                "fast-bert ({}, {} threads)",
                fast.kernel_name(),
                fast.threads()
            ),
            None => "candle".to_owned(),
        }
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Length of every vector.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// Longest input in tokens, special tokens included; longer texts are truncated.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// One unit-length vector per text, in order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| self.tokenizer_error(e))?;
        crate::usage::count_embedded(encodings.iter().map(|e| e.get_ids().len()).sum());

        // Texts of similar length share a batch, so little of each batch is padding.
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| encodings[i].get_ids().len());
        let mut vectors = vec![Vec::new(); encodings.len()];
        for chunk in order.chunks(self.batch_size) {
            let batch: Vec<&Encoding> = chunk.iter().map(|&i| &encodings[i]).collect();
            let embedded = self.embed_batch(&batch).map_err(|source| Error::Candle {
                model: self.name.clone(),
                source,
            })?;
            for (&i, vector) in chunk.iter().zip(embedded) {
                vectors[i] = vector;
            }
        }
        Ok(vectors)
    }

    /// Runs the encoder on one batch, padded to its longest member.
    fn embed_batch(&self, batch: &[&Encoding]) -> candle_core::Result<Vec<Vec<f32>>> {
        if let Some(fast) = &self.fast {
            let ids: Vec<&[u32]> = batch.iter().map(|e| e.get_ids()).collect();
            return fast.embed(&ids);
        }
        let longest = batch.iter().map(|e| e.get_ids().len()).max().unwrap_or(0);
        let span = tracing::trace_span!("embed_batch", texts = batch.len(), tokens = longest);
        let _entered = span.enter();

        let mut ids = Vec::with_capacity(batch.len() * longest);
        let mut mask = Vec::with_capacity(batch.len() * longest);
        for encoding in batch {
            let n = encoding.get_ids().len();
            ids.extend_from_slice(encoding.get_ids());
            ids.extend(std::iter::repeat_n(0u32, longest - n));
            mask.extend(std::iter::repeat_n(1u32, n));
            mask.extend(std::iter::repeat_n(0u32, longest - n));
        }
        let shape = (batch.len(), longest);
        let ids = Tensor::from_vec(ids, shape, &self.device)?;
        let mask = Tensor::from_vec(mask, shape, &self.device)?;
        let hidden = self.model.forward(&ids, &mask)?;
        let pooled = mean_pool(&hidden, &mask)?;
        normalize(&pooled)?.to_vec2::<f32>()
    }

    fn tokenizer_error(&self, error: tokenizers::Error) -> Error {
        Error::Tokenizer {
            path: self.tokenizer_path.clone(),
            message: error.to_string(),
        }
    }
}

/// The mean of the token vectors the mask keeps: (batch, tokens, dims) -> (batch, dims).
fn mean_pool(hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let mask = mask.to_dtype(hidden.dtype())?.unsqueeze(2)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
    summed.broadcast_div(&counts)
}

/// Each row divided by its Euclidean length (rows of zeros stay zero).
fn normalize(rows: &Tensor) -> candle_core::Result<Tensor> {
    let norms = rows.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    rows.broadcast_div(&norms)
}

fn check_kind(model: &ResolvedModel) -> Result<()> {
    let spec = &model.spec;
    let problem = if spec.role != ModelRole::Embeddings {
        Some(format!("its role is {}, not embeddings", spec.role))
    } else if spec.format != "safetensors" {
        Some(format!(
            "format {} is not supported for embeddings",
            spec.format
        ))
    } else if spec.architecture != "bert" {
        Some(format!(
            "architecture {} is not supported for embeddings (bert is)",
            spec.architecture
        ))
    } else {
        None
    };
    match problem {
        Some(reason) => Err(Error::Unsupported {
            model: spec.name.clone(),
            reason,
        }),
        None => Ok(()),
    }
}

fn read_config(path: &Path) -> Result<BertConfig> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| Error::ModelConfig {
        path: path.to_path_buf(),
        source,
    })
}

/// The tokenizer with its own padding turned off (batches are padded here) and truncation at
/// `max_tokens`.
fn load_tokenizer(path: &Path, max_tokens: usize) -> Result<Tokenizer> {
    let error = |e: tokenizers::Error| Error::Tokenizer {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut tokenizer = Tokenizer::from_file(path).map_err(error)?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: max_tokens,
            ..TruncationParams::default()
        }))
        .map_err(error)?;
    Ok(tokenizer)
}

/// The CPU, or the first GPU when built with `cuda` and one is present.
pub(crate) fn device(model: &str) -> Result<Device> {
    if cfg!(feature = "cuda") {
        Device::cuda_if_available(0).map_err(|source| Error::Candle {
            model: model.to_owned(),
            source,
        })
    } else {
        Ok(Device::Cpu)
    }
}
