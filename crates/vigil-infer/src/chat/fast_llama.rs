//! A dedicated CPU forward pass for llama-architecture GGUF models whose matrices are Q4_0,
//! Q4_1 or Q8_0: the weights stay in the file's block layout, activations are quantized to
//! 8 bits once per matrix product, and every buffer (the key-value cache included) is
//! allocated once, so a decode step allocates nothing.
//!
//! The arithmetic follows candle-transformers' `quantized_llama` (and llama.cpp): RMSNorm,
//! interleaved rotary embeddings (llama's "normal" RoPE, pairs `2i, 2i+1`) with the GGUF's
//! frequency base, grouped-query attention with a causal mask, a SiLU-gated MLP, the final
//! norm and the output matrix (the token embeddings when the GGUF ties them). Matrix products
//! run on a [`WorkerPool`]; the prompt goes through as a batch, each weight row multiplied
//! with four tokens' activations at a time.

use candle_core::quantized::{gguf_file, GgmlDType};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Mutex;

use super::kernels::{self, ActBlock, Kernels, WeightFormat, BLOCK};
use super::pool::WorkerPool;
use crate::{Error, Result};

/// Prompt tokens run through the layers together; longer prompts go in several batches, which
/// bounds the scratch memory.
const MAX_BATCH: usize = 512;

/// Weight rows multiplied together before moving to the next tokens (they stay in L1).
const ROW_TILE: usize = 16;

/// The shapes and constants of one llama model.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LlamaShape {
    dim: usize,
    layers: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    hidden: usize,
    vocab: usize,
    eps: f32,
    rope_base: f32,
}

impl LlamaShape {
    fn from_metadata(
        metadata: &HashMap<String, gguf_file::Value>,
    ) -> std::result::Result<Self, String> {
        let number = |key: &str| {
            metadata
                .get(&format!("llama.{key}"))
                .and_then(|v| v.to_u32().ok())
                .map(|v| v as usize)
                .ok_or_else(|| format!("llama.{key} is missing"))
        };
        let float = |key: &str, default: Option<f32>| {
            metadata
                .get(&format!("llama.{key}"))
                .and_then(|v| v.to_f32().ok())
                .or(default)
                .ok_or_else(|| format!("llama.{key} is missing"))
        };
        if metadata.contains_key("llama.expert_count") {
            return Err("mixture-of-experts models run on candle".to_owned());
        }
        let dim = number("embedding_length")?;
        let heads = number("attention.head_count")?;
        let kv_heads = number("attention.head_count_kv").unwrap_or(heads);
        if heads == 0 || kv_heads == 0 || dim % heads != 0 || heads % kv_heads != 0 {
            return Err(format!(
                "{heads} heads, {kv_heads} key-value heads, width {dim}"
            ));
        }
        let head_dim = dim / heads;
        let rope_dim = number("rope.dimension_count").unwrap_or(head_dim);
        if rope_dim != head_dim || head_dim % 2 != 0 {
            return Err(format!(
                "rotary dimension {rope_dim} of head dimension {head_dim}"
            ));
        }
        Ok(LlamaShape {
            dim,
            layers: number("block_count")?,
            heads,
            kv_heads,
            head_dim,
            hidden: number("feed_forward_length")?,
            vocab: 0,
            eps: float("attention.layer_norm_rms_epsilon", None)?,
            rope_base: float("rope.freq_base", Some(10_000.0))?,
        })
    }

    fn kv_dim(&self) -> usize {
        self.kv_heads * self.head_dim
    }

    fn qkv_width(&self) -> usize {
        self.dim + 2 * self.kv_dim()
    }
}

/// A weight matrix in its GGUF block layout, `rows` rows of `cols` values.
struct QMatrix {
    format: WeightFormat,
    rows: usize,
    cols: usize,
    row_bytes: usize,
    data: Vec<u8>,
}

impl QMatrix {
    fn row(&self, row: usize) -> &[u8] {
        &self.data[row * self.row_bytes..(row + 1) * self.row_bytes]
    }
}

struct Layer {
    attn_norm: Vec<f32>,
    /// The query, key and value matrices stacked, so one product computes all three.
    qkv: QMatrix,
    output: QMatrix,
    ffn_norm: Vec<f32>,
    /// The gate and up matrices stacked.
    gate_up: QMatrix,
    down: QMatrix,
}

/// The model's weights, read once.
struct Weights {
    embeddings: QMatrix,
    layers: Vec<Layer>,
    norm: Vec<f32>,
    /// `None` when the output matrix is the token embeddings.
    output: Option<QMatrix>,
}

/// Buffers of one batch of tokens, grown to the largest batch seen.
#[derive(Default)]
struct Scratch {
    tokens: usize,
    x: Vec<f32>,
    normed: Vec<f32>,
    act: Vec<ActBlock>,
    qkv: Vec<f32>,
    attended: Vec<f32>,
    projected: Vec<f32>,
    gate_up: Vec<f32>,
    gated: Vec<f32>,
}

impl Scratch {
    fn ensure(&mut self, tokens: usize, shape: &LlamaShape) {
        if tokens <= self.tokens {
            return;
        }
        let grow = |v: &mut Vec<f32>, width: usize| v.resize(tokens * width, 0.0);
        grow(&mut self.x, shape.dim);
        grow(&mut self.normed, shape.dim);
        grow(&mut self.qkv, shape.qkv_width());
        grow(&mut self.attended, shape.dim);
        grow(&mut self.projected, shape.dim);
        grow(&mut self.gate_up, 2 * shape.hidden);
        grow(&mut self.gated, shape.hidden);
        self.act.resize(
            tokens * shape.dim.max(shape.hidden) / BLOCK,
            ActBlock::default(),
        );
        self.tokens = tokens;
    }
}

/// Keys and values of every layer, `[layer][kv head][position][head dim]`, sized to the
/// context once.
struct KvCache {
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    context: usize,
}

impl KvCache {
    fn new(shape: &LlamaShape, context: usize) -> KvCache {
        // Zeroed allocations of this size are mapped lazily: memory is only committed for the
        // positions a sequence reaches.
        let size = shape.kv_heads * context * shape.head_dim;
        KvCache {
            keys: (0..shape.layers).map(|_| vec![0.0; size]).collect(),
            values: (0..shape.layers).map(|_| vec![0.0; size]).collect(),
            context,
        }
    }
}

/// Per-thread attention buffers: the scores of one query over the positions, and its output.
struct AttentionScratch {
    scores: Vec<f32>,
    out: Vec<f32>,
}

/// A llama model ready to run on the CPU.
pub(crate) struct FastLlama {
    shape: LlamaShape,
    weights: Weights,
    cache: KvCache,
    scratch: Scratch,
    attention: Vec<Mutex<AttentionScratch>>,
    /// `cos` and `sin` of every position and frequency, `[position][head_dim / 2]`.
    rope_cos: Vec<f32>,
    rope_sin: Vec<f32>,
    logits: Vec<f32>,
    kernels: Kernels,
    pool: WorkerPool,
}

impl std::fmt::Debug for FastLlama {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastLlama")
            .field("shape", &self.shape)
            .field("avx2", &self.kernels.uses_avx2())
            .field("threads", &self.pool.threads())
            .finish_non_exhaustive()
    }
}

/// What the GGUF holds that the fast path does not run, if anything: the reason the model
/// goes to candle instead.
pub(crate) fn unsupported(content: &gguf_file::Content) -> Option<String> {
    let shape = match LlamaShape::from_metadata(&content.metadata) {
        Ok(shape) => shape,
        Err(reason) => return Some(reason),
    };
    let mut names = vec!["token_embd.weight".to_owned()];
    for layer in 0..shape.layers {
        for part in [
            "attn_q",
            "attn_k",
            "attn_v",
            "attn_output",
            "ffn_gate",
            "ffn_up",
            "ffn_down",
        ] {
            names.push(format!("blk.{layer}.{part}.weight"));
        }
    }
    if content.tensor_infos.contains_key("output.weight") {
        names.push("output.weight".to_owned());
    }
    for name in names {
        let Some(info) = content.tensor_infos.get(&name) else {
            return Some(format!("tensor {name} is missing"));
        };
        if weight_format(info.ggml_dtype).is_none() {
            return Some(format!("tensor {name} is {:?}", info.ggml_dtype));
        }
        if info
            .shape
            .dims()
            .last()
            .is_none_or(|cols| cols % BLOCK != 0)
        {
            return Some(format!("tensor {name} has shape {:?}", info.shape));
        }
    }
    for layer in 0..shape.layers {
        for group in [
            ["attn_q", "attn_k", "attn_v"].as_slice(),
            &["ffn_gate", "ffn_up"],
        ] {
            let formats: Vec<_> = group
                .iter()
                .map(|part| content.tensor_infos[&format!("blk.{layer}.{part}.weight")].ggml_dtype)
                .collect();
            if formats.windows(2).any(|w| w[0] != w[1]) {
                return Some(format!("layer {layer} mixes {formats:?} in {group:?}"));
            }
        }
    }
    None
}

fn weight_format(dtype: GgmlDType) -> Option<WeightFormat> {
    match dtype {
        GgmlDType::Q4_0 => Some(WeightFormat::Q4_0),
        GgmlDType::Q4_1 => Some(WeightFormat::Q4_1),
        GgmlDType::Q8_0 => Some(WeightFormat::Q8_0),
        _ => None,
    }
}

/// Reads tensors' bytes from the GGUF file.
struct TensorReader<'a> {
    content: &'a gguf_file::Content,
    file: &'a mut File,
    path: &'a Path,
    name: &'a str,
}

impl<'a> TensorReader<'a> {
    fn bytes(&mut self, tensor: &str) -> Result<(&'a gguf_file::TensorInfo, Vec<u8>)> {
        let content: &'a gguf_file::Content = self.content;
        let info = content
            .tensor_infos
            .get(tensor)
            .ok_or_else(|| self.unsupported(format!("tensor {tensor} is missing")))?;
        let dtype = info.ggml_dtype;
        let size = info.shape.elem_count() / dtype.block_size() * dtype.type_size();
        let mut data = vec![0u8; size];
        let start = self.content.tensor_data_offset + info.offset;
        self.file
            .seek(SeekFrom::Start(start))
            .and_then(|_| self.file.read_exact(&mut data))
            .map_err(|source| Error::Io {
                path: self.path.to_path_buf(),
                source,
            })?;
        Ok((info, data))
    }

    fn vector(&mut self, tensor: &str, len: usize) -> Result<Vec<f32>> {
        let (info, data) = self.bytes(tensor)?;
        if info.ggml_dtype != GgmlDType::F32 || info.shape.elem_count() != len {
            return Err(self.unsupported(format!(
                "tensor {tensor} is {:?} {:?}, expected F32 of {len}",
                info.ggml_dtype, info.shape
            )));
        }
        Ok(data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    fn matrix(&mut self, tensor: &str, rows: usize, cols: usize) -> Result<QMatrix> {
        self.stacked(&[tensor], &[rows], cols)
    }

    /// Several matrices of the same width and format, one under the other.
    fn stacked(&mut self, tensors: &[&str], rows: &[usize], cols: usize) -> Result<QMatrix> {
        let mut data = Vec::new();
        let mut format = None;
        for (tensor, &expected_rows) in tensors.iter().zip(rows) {
            let (info, bytes) = self.bytes(tensor)?;
            let dims = info.shape.dims();
            let this = weight_format(info.ggml_dtype);
            if dims != [expected_rows, cols]
                || this.is_none()
                || (format.is_some() && this != format)
            {
                return Err(self.unsupported(format!(
                    "tensor {tensor} is {:?} {:?}, expected {expected_rows}x{cols}",
                    info.ggml_dtype, dims
                )));
            }
            format = this;
            data.extend_from_slice(&bytes);
        }
        let format = format.ok_or_else(|| self.unsupported("no tensor to stack".to_owned()))?;
        Ok(QMatrix {
            format,
            rows: rows.iter().sum(),
            cols,
            row_bytes: cols / BLOCK * format.block_bytes(),
            data,
        })
    }

    fn unsupported(&self, reason: String) -> Error {
        Error::Unsupported {
            model: self.name.to_owned(),
            reason,
        }
    }
}

impl FastLlama {
    /// Loads the weights of a GGUF that [`unsupported`] accepted, with a key-value cache for
    /// `context` positions and `threads` threads.
    pub(crate) fn load(
        content: &gguf_file::Content,
        file: &mut File,
        path: &Path,
        name: &str,
        context: usize,
        threads: usize,
    ) -> Result<FastLlama> {
        let unsupported = |reason: String| Error::Unsupported {
            model: name.to_owned(),
            reason,
        };
        let mut shape = LlamaShape::from_metadata(&content.metadata).map_err(unsupported)?;
        let mut reader = TensorReader {
            content,
            file,
            path,
            name,
        };
        let vocab = content
            .tensor_infos
            .get("token_embd.weight")
            .map(|info| info.shape.dims()[0])
            .unwrap_or(0);
        shape.vocab = vocab;
        let weights = read_weights(&mut reader, &shape)?;
        let (rope_cos, rope_sin) = rope_tables(&shape, context);
        let pool = WorkerPool::new(threads).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let attention = (0..pool.threads())
            .map(|_| {
                Mutex::new(AttentionScratch {
                    scores: vec![0.0; context],
                    out: vec![0.0; shape.head_dim],
                })
            })
            .collect();
        let kernels = Kernels::detect();
        tracing::debug!(
            model = %name,
            avx2 = kernels.uses_avx2(),
            threads = pool.threads(),
            "fast llama path ready"
        );
        Ok(FastLlama {
            cache: KvCache::new(&shape, context),
            logits: vec![0.0; vocab],
            shape,
            weights,
            scratch: Scratch::default(),
            attention,
            rope_cos,
            rope_sin,
            kernels,
            pool,
        })
    }

    /// Uses the portable kernels instead of the AVX2 ones (for comparisons).
    #[cfg(test)]
    fn with_kernels(mut self, kernels: Kernels) -> FastLlama {
        self.kernels = kernels;
        self
    }

    /// Runs `tokens` at positions `position..`, overwriting the cache from `position` on, and
    /// returns the logits of the token after the last one.
    pub(crate) fn forward(&mut self, tokens: &[u32], position: usize) -> Result<&[f32]> {
        if tokens.is_empty() || position + tokens.len() > self.cache.context {
            return Err(Error::Unsupported {
                model: "fast llama".to_owned(),
                reason: format!(
                    "{} tokens at position {position} do not fit a context of {}",
                    tokens.len(),
                    self.cache.context
                ),
            });
        }
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= self.shape.vocab) {
            return Err(Error::Unsupported {
                model: "fast llama".to_owned(),
                reason: format!(
                    "token id {bad} is outside the vocabulary of {}",
                    self.shape.vocab
                ),
            });
        }
        let mut start = 0;
        let mut last = 0;
        while start < tokens.len() {
            let end = (start + MAX_BATCH).min(tokens.len());
            self.forward_batch(&tokens[start..end], position + start);
            last = end - start - 1;
            start = end;
        }
        self.output(last);
        Ok(&self.logits)
    }

    /// Frees the key-value cache's memory (it is mapped again as positions are written).
    pub(crate) fn clear_cache(&mut self) {
        self.cache = KvCache::new(&self.shape, self.cache.context);
    }

    fn forward_batch(&mut self, tokens: &[u32], position: usize) {
        let n = tokens.len();
        let dim = self.shape.dim;
        self.scratch.ensure(n, &self.shape);
        let embeddings = &self.weights.embeddings;
        for (t, &token) in tokens.iter().enumerate() {
            kernels::dequantize_row(
                embeddings.format,
                embeddings.row(token as usize),
                &mut self.scratch.x[t * dim..(t + 1) * dim],
            );
        }
        for layer in 0..self.shape.layers {
            self.attention_block(layer, n, position);
            self.mlp_block(layer, n);
        }
    }

    /// `x += attention(norm(x))` for the batch's `n` tokens at `position..`.
    fn attention_block(&mut self, layer: usize, n: usize, position: usize) {
        let shape = &self.shape;
        let weights = &self.weights.layers[layer];
        let scratch = &mut self.scratch;
        let (dim, kv_dim, head_dim) = (shape.dim, shape.kv_dim(), shape.head_dim);
        let width = shape.qkv_width();

        rms_norm(
            &scratch.x,
            &weights.attn_norm,
            shape.eps,
            &mut scratch.normed,
            n,
        );
        quantize_rows(&scratch.normed, dim, n, &mut scratch.act);
        let act = &scratch.act[..n * dim / BLOCK];
        matmul(
            &self.pool,
            self.kernels,
            &weights.qkv,
            act,
            n,
            &mut scratch.qkv,
        );

        let half = head_dim / 2;
        let context = self.cache.context;
        let keys = &mut self.cache.keys[layer];
        let values = &mut self.cache.values[layer];
        for t in 0..n {
            let pos = position + t;
            let cos = &self.rope_cos[pos * half..(pos + 1) * half];
            let sin = &self.rope_sin[pos * half..(pos + 1) * half];
            let row = &mut scratch.qkv[t * width..(t + 1) * width];
            for head in row[..dim + kv_dim].chunks_exact_mut(head_dim) {
                rope(head, cos, sin);
            }
            for kv in 0..shape.kv_heads {
                let at = (kv * context + pos) * head_dim;
                let key = &row[dim + kv * head_dim..dim + (kv + 1) * head_dim];
                let value = &row[dim + kv_dim + kv * head_dim..dim + kv_dim + (kv + 1) * head_dim];
                keys[at..at + head_dim].copy_from_slice(key);
                values[at..at + head_dim].copy_from_slice(value);
            }
        }

        let keys = &self.cache.keys[layer];
        let values = &self.cache.values[layer];
        let qkv = &scratch.qkv;
        let group = shape.heads / shape.kv_heads;
        let scale = 1.0 / (head_dim as f32).sqrt();
        let buffers = &self.attention;
        let kernels = self.kernels;
        self.pool.run_columns(
            &mut scratch.attended,
            n,
            dim,
            head_dim,
            &|thread, columns, out| {
                let mut buffer = buffers[thread].lock().unwrap_or_else(|e| e.into_inner());
                let AttentionScratch { scores, out: mixed } = &mut *buffer;
                for head in columns.start / head_dim..columns.end / head_dim {
                    let kv = head / group;
                    let keys = &keys[kv * context * head_dim..(kv + 1) * context * head_dim];
                    let values = &values[kv * context * head_dim..(kv + 1) * context * head_dim];
                    for t in 0..n {
                        let seen = position + t + 1;
                        let query =
                            &qkv[t * width + head * head_dim..t * width + (head + 1) * head_dim];
                        let scores = &mut scores[..seen];
                        kernels.scores(query, keys, scale, scores);
                        softmax(scores);
                        kernels.mix(scores, values, mixed);
                        out.set_run(t, head * head_dim, mixed);
                    }
                }
            },
        );

        quantize_rows(&scratch.attended, dim, n, &mut scratch.act);
        let act = &scratch.act[..n * dim / BLOCK];
        matmul(
            &self.pool,
            self.kernels,
            &weights.output,
            act,
            n,
            &mut scratch.projected,
        );
        add(&mut scratch.x[..n * dim], &scratch.projected[..n * dim]);
    }

    /// `x += down(silu(gate(norm(x))) * up(norm(x)))` for the batch's `n` tokens.
    fn mlp_block(&mut self, layer: usize, n: usize) {
        let shape = &self.shape;
        let weights = &self.weights.layers[layer];
        let scratch = &mut self.scratch;
        let (dim, hidden) = (shape.dim, shape.hidden);

        rms_norm(
            &scratch.x,
            &weights.ffn_norm,
            shape.eps,
            &mut scratch.normed,
            n,
        );
        quantize_rows(&scratch.normed, dim, n, &mut scratch.act);
        let act = &scratch.act[..n * dim / BLOCK];
        matmul(
            &self.pool,
            self.kernels,
            &weights.gate_up,
            act,
            n,
            &mut scratch.gate_up,
        );

        for t in 0..n {
            let both = &scratch.gate_up[t * 2 * hidden..(t + 1) * 2 * hidden];
            let (gate, up) = both.split_at(hidden);
            let out = &mut scratch.gated[t * hidden..(t + 1) * hidden];
            for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
                *o = g / (1.0 + (-g).exp()) * u;
            }
        }
        quantize_rows(&scratch.gated, hidden, n, &mut scratch.act);
        let act = &scratch.act[..n * hidden / BLOCK];
        matmul(
            &self.pool,
            self.kernels,
            &weights.down,
            act,
            n,
            &mut scratch.projected,
        );
        add(&mut scratch.x[..n * dim], &scratch.projected[..n * dim]);
    }

    /// The logits of batch token `last`: final norm, then the output matrix.
    fn output(&mut self, last: usize) {
        let dim = self.shape.dim;
        let scratch = &mut self.scratch;
        let x = &scratch.x[last * dim..(last + 1) * dim];
        rms_norm(
            x,
            &self.weights.norm,
            self.shape.eps,
            &mut scratch.normed,
            1,
        );
        quantize_rows(&scratch.normed, dim, 1, &mut scratch.act);
        let output = self
            .weights
            .output
            .as_ref()
            .unwrap_or(&self.weights.embeddings);
        let act = &scratch.act[..dim / BLOCK];
        matmul(&self.pool, self.kernels, output, act, 1, &mut self.logits);
    }
}

fn read_weights(reader: &mut TensorReader<'_>, shape: &LlamaShape) -> Result<Weights> {
    let (dim, kv_dim, hidden) = (shape.dim, shape.kv_dim(), shape.hidden);
    let embeddings = reader.matrix("token_embd.weight", shape.vocab, dim)?;
    let output = if reader.content.tensor_infos.contains_key("output.weight") {
        Some(reader.matrix("output.weight", shape.vocab, dim)?)
    } else {
        None
    };
    let mut layers = Vec::with_capacity(shape.layers);
    for i in 0..shape.layers {
        let name = |part: &str| format!("blk.{i}.{part}.weight");
        layers.push(Layer {
            attn_norm: reader.vector(&name("attn_norm"), dim)?,
            qkv: reader.stacked(
                &[&name("attn_q"), &name("attn_k"), &name("attn_v")],
                &[dim, kv_dim, kv_dim],
                dim,
            )?,
            output: reader.matrix(&name("attn_output"), dim, dim)?,
            ffn_norm: reader.vector(&name("ffn_norm"), dim)?,
            gate_up: reader.stacked(
                &[&name("ffn_gate"), &name("ffn_up")],
                &[hidden, hidden],
                dim,
            )?,
            down: reader.matrix(&name("ffn_down"), dim, hidden)?,
        });
    }
    Ok(Weights {
        embeddings,
        layers,
        norm: reader.vector("output_norm.weight", dim)?,
        output,
    })
}

/// `cos` and `sin` of `position * base^(-2i / head_dim)`, computed in `f32` as candle does.
fn rope_tables(shape: &LlamaShape, context: usize) -> (Vec<f32>, Vec<f32>) {
    let half = shape.head_dim / 2;
    let theta: Vec<f32> = (0..half)
        .map(|i| 1.0 / shape.rope_base.powf((2 * i) as f32 / shape.head_dim as f32))
        .collect();
    let mut cos = Vec::with_capacity(context * half);
    let mut sin = Vec::with_capacity(context * half);
    for position in 0..context {
        for &t in &theta {
            let angle = position as f32 * t;
            cos.push(angle.cos());
            sin.push(angle.sin());
        }
    }
    (cos, sin)
}

/// Rotates the pairs `(2i, 2i + 1)` of one head.
fn rope(head: &mut [f32], cos: &[f32], sin: &[f32]) {
    for ((pair, &c), &s) in head.chunks_exact_mut(2).zip(cos).zip(sin) {
        let (x0, x1) = (pair[0], pair[1]);
        pair[0] = x0 * c - x1 * s;
        pair[1] = x0 * s + x1 * c;
    }
}

/// `out = x / sqrt(mean(x^2) + eps) * weight`, row by row, for `n` rows of `weight.len()`.
fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32], n: usize) {
    let dim = weight.len();
    for (row, out) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)).take(n) {
        let sum: f32 = row.iter().map(|v| v * v).sum();
        let scale = 1.0 / (sum / dim as f32 + eps).sqrt();
        for ((o, &v), &w) in out.iter_mut().zip(row).zip(weight) {
            *o = v * scale * w;
        }
    }
}

fn softmax(scores: &mut [f32]) {
    let max = scores.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0.0;
    for score in scores.iter_mut() {
        *score = (*score - max).exp();
        sum += *score;
    }
    let inverse = 1.0 / sum;
    for score in scores.iter_mut() {
        *score *= inverse;
    }
}

fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

fn quantize_rows(x: &[f32], width: usize, n: usize, out: &mut [ActBlock]) {
    let blocks = width / BLOCK;
    for t in 0..n {
        kernels::quantize_row(
            &x[t * width..(t + 1) * width],
            &mut out[t * blocks..(t + 1) * blocks],
        );
    }
}

/// `out[t][r] = w.row(r) . act[t]` for `tokens` tokens, rows split across the pool's threads.
fn matmul(
    pool: &WorkerPool,
    kernels: Kernels,
    w: &QMatrix,
    act: &[ActBlock],
    tokens: usize,
    out: &mut [f32],
) {
    let blocks = w.cols / BLOCK;
    let token_act = |t: usize| &act[t * blocks..(t + 1) * blocks];
    pool.run_columns(out, tokens, w.rows, ROW_TILE, &|_, rows, out| {
        let mut tile = rows.start;
        while tile < rows.end {
            let tile_end = (tile + ROW_TILE).min(rows.end);
            let mut t = 0;
            while t + 4 <= tokens {
                let acts = [
                    token_act(t),
                    token_act(t + 1),
                    token_act(t + 2),
                    token_act(t + 3),
                ];
                for r in tile..tile_end {
                    let dots = kernels.dot4(w.format, w.row(r), acts);
                    for (k, dot) in dots.into_iter().enumerate() {
                        out.set(t + k, r, dot);
                    }
                }
                t += 4;
            }
            for t in t..tokens {
                let mut r = tile;
                while r + 4 <= tile_end {
                    let rows = [w.row(r), w.row(r + 1), w.row(r + 2), w.row(r + 3)];
                    let dots = kernels.dot_rows4(w.format, rows, token_act(t));
                    for (k, dot) in dots.into_iter().enumerate() {
                        out.set(t, r + k, dot);
                    }
                    r += 4;
                }
                for r in r..tile_end {
                    out.set(t, r, kernels.dot(w.format, w.row(r), token_act(t)));
                }
            }
            tile = tile_end;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default chat model, when `scripts/fetch-models` has put it in `models/`.
    fn default_model() -> Option<std::path::PathBuf> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../models/SmolLM2-135M-Instruct.Q4_1.gguf");
        path.is_file().then_some(path)
    }

    fn load(path: &Path, threads: usize) -> FastLlama {
        let mut file = File::open(path).unwrap();
        let content = gguf_file::Content::read(&mut file).unwrap();
        assert_eq!(unsupported(&content), None);
        FastLlama::load(&content, &mut file, path, "test", 64, threads).unwrap()
    }

    #[test]
    fn portable_and_simd_kernels_give_the_same_logits() {
        let Some(path) = default_model() else {
            println!("models/ has no default chat model: skipped");
            return;
        };
        let prompt = [
            1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 2, 198,
        ];
        let mut simd = load(&path, 2);
        let mut portable = load(&path, 1).with_kernels(Kernels::scalar());
        for step in 0..3 {
            let (tokens, position) = if step == 0 {
                (&prompt[..], 0)
            } else {
                (&prompt[step..step + 1], prompt.len() + step - 1)
            };
            let a = simd.forward(tokens, position).unwrap().to_vec();
            let b = portable.forward(tokens, position).unwrap();
            // Each product agrees to float rounding (see the kernel tests), but a value that
            // lands on the other side of an 8-bit rounding boundary makes the next layers'
            // quantization differ: logits agree to the quantization noise, not bit for bit.
            let (worst, spread) = difference(&a, b);
            let mean = a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32;
            println!("step {step}: largest difference {worst}, mean {mean}, span {spread}");
            assert!(worst < 0.05 * spread, "step {step}: {worst} of {spread}");
            assert_eq!(argmax(&a), argmax(b), "step {step}");
        }
    }

    #[test]
    fn batched_prefill_equals_token_by_token() {
        let Some(path) = default_model() else {
            println!("models/ has no default chat model: skipped");
            return;
        };
        let prompt = [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173];
        let mut model = load(&path, 2);
        let batched = model.forward(&prompt, 0).unwrap().to_vec();
        let mut stepped = Vec::new();
        for (position, &token) in prompt.iter().enumerate() {
            stepped = model.forward(&[token], position).unwrap().to_vec();
        }
        // The same kernels in the same order: the batch changes nothing but the speed.
        assert_eq!(difference(&batched, &stepped).0, 0.0);
    }

    /// The largest absolute difference, and the span of `reference`.
    fn difference(values: &[f32], reference: &[f32]) -> (f32, f32) {
        let worst = values
            .iter()
            .zip(reference)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        let high = reference.iter().fold(f32::MIN, |m, &v| m.max(v));
        let low = reference.iter().fold(f32::MAX, |m, &v| m.min(v));
        (worst, high - low)
    }

    fn argmax(values: &[f32]) -> usize {
        values
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i)
    }
}
