//! A dedicated CPU forward pass for the BERT embeddings model, beside candle's (`crate::bert`,
//! which stays the fallback and the baseline).
//!
//! The arithmetic is the same, in f32 except that on CPUs with AVX512_BF16 the matrix products
//! take bfloat16 inputs (summed in f32): embeddings and layer norm, then per layer self-attention,
//! residual and layer norm, a GELU (erf) feed-forward block, residual and layer norm; then mean
//! pooling and L2 normalisation. What differs is the shape of the work:
//!
//! - weights are repacked once, at load, into panels for a register-blocked matrix product
//!   (`kernels`), AVX-512 (bfloat16 or f32) or AVX2 chosen at run time;
//! - a batch is not padded: its texts' tokens lie end to end, every linear layer runs over all of
//!   them at once, and attention runs per text and head over that text's tokens only;
//! - bias, residual and GELU are applied while a block of output rows is still in cache;
//! - the texts of a batch are split into one share per thread, by token count, and each thread
//!   runs its share through the whole model with its own buffers: no synchronisation between
//!   layers.

mod kernels;

use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, HiddenAct};
use std::sync::atomic::{AtomicUsize, Ordering};

use kernels::{Epilogue, Kernels, Packed, MR, NR};

/// Shares of a batch per thread (fewer when the batch has fewer texts).
const SHARES_PER_THREAD: usize = 4;

/// A loaded BERT encoder with mean pooling, for the CPU.
pub(crate) struct FastBert {
    kernels: Kernels,
    word_embeddings: Vec<f32>,
    /// Position embeddings with token type 0's embedding added: every text is one segment.
    position_embeddings: Vec<f32>,
    max_positions: usize,
    embeddings_norm: Norm,
    layers: Vec<Layer>,
    hidden: usize,
    heads: usize,
    threads: usize,
}

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

struct Layer {
    /// Query, key and value side by side: output columns `[q | k | v]`.
    qkv: Packed,
    attention_out: Packed,
    attention_norm: Norm,
    intermediate: Packed,
    output: Packed,
    output_norm: Norm,
}

fn values(tensor: Tensor) -> Result<Vec<f32>> {
    tensor.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()
}

impl FastBert {
    /// Reads the weights of a Hugging Face `BertModel` (optionally under a `bert.` prefix), or
    /// `None` when this path does not cover the model's shape (candle's then runs it).
    pub(crate) fn load(
        vb: VarBuilder,
        config: &Config,
        threads: usize,
    ) -> Result<Option<FastBert>> {
        FastBert::load_with(vb, config, threads, Kernels::detect())
    }

    /// As [`FastBert::load`], with these kernels.
    fn load_with(
        vb: VarBuilder,
        config: &Config,
        threads: usize,
        kernels: Kernels,
    ) -> Result<Option<FastBert>> {
        let hidden = config.hidden_size;
        let heads = config.num_attention_heads;
        let supported = config.hidden_act == HiddenAct::Gelu
            && heads > 0
            && hidden.is_multiple_of(heads)
            && hidden.is_multiple_of(NR)
            && config.intermediate_size.is_multiple_of(NR)
            && config.type_vocab_size > 0;
        if !supported {
            return Ok(None);
        }
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else {
            vb
        };
        let eps = config.layer_norm_eps as f32;
        let norm = |vb: VarBuilder| -> Result<Norm> {
            Ok(Norm {
                gamma: values(vb.get(hidden, "weight")?)?,
                beta: values(vb.get(hidden, "bias")?)?,
                eps,
            })
        };
        let linear = |vb: VarBuilder, n: usize, k: usize| -> Result<Packed> {
            let weight = values(vb.get((n, k), "weight")?)?;
            let bias = values(vb.get(n, "bias")?)?;
            Ok(Packed::for_kernels(kernels, &weight, &bias, n, k))
        };

        let embeddings = vb.pp("embeddings");
        let word_embeddings =
            values(embeddings.get((config.vocab_size, hidden), "word_embeddings.weight")?)?;
        let token_type = embeddings
            .get(
                (config.type_vocab_size, hidden),
                "token_type_embeddings.weight",
            )?
            .get(0)?;
        let position_embeddings = values(
            embeddings
                .get(
                    (config.max_position_embeddings, hidden),
                    "position_embeddings.weight",
                )?
                .broadcast_add(&token_type)?,
        )?;
        let embeddings_norm = norm(embeddings.pp("LayerNorm"))?;

        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let vb = vb.pp(format!("encoder.layer.{i}"));
            let attention = vb.pp("attention");
            let mut weight = Vec::with_capacity(3 * hidden * hidden);
            let mut bias = Vec::with_capacity(3 * hidden);
            for name in ["query", "key", "value"] {
                let vb = attention.pp("self").pp(name);
                weight.extend(values(vb.get((hidden, hidden), "weight")?)?);
                bias.extend(values(vb.get(hidden, "bias")?)?);
            }
            let inner = config.intermediate_size;
            layers.push(Layer {
                qkv: Packed::for_kernels(kernels, &weight, &bias, 3 * hidden, hidden),
                attention_out: linear(attention.pp("output.dense"), hidden, hidden)?,
                attention_norm: norm(attention.pp("output.LayerNorm"))?,
                intermediate: linear(vb.pp("intermediate.dense"), inner, hidden)?,
                output: linear(vb.pp("output.dense"), hidden, inner)?,
                output_norm: norm(vb.pp("output.LayerNorm"))?,
            });
        }
        Ok(Some(FastBert {
            kernels,
            word_embeddings,
            position_embeddings,
            max_positions: config.max_position_embeddings,
            embeddings_norm,
            layers,
            hidden,
            heads,
            threads: threads.max(1),
        }))
    }

    /// The instructions the matrix products use: `avx512`, `avx2` or `portable`.
    pub(crate) fn kernel_name(&self) -> &'static str {
        match self.kernels.level() {
            kernels::Level::Avx512Bf16 => "avx512-bf16",
            kernels::Level::Avx512 => "avx512",
            kernels::Level::Avx2 => "avx2",
            kernels::Level::Portable => "portable",
        }
    }

    /// Threads each batch is split across.
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// One unit-length, mean-pooled vector per text of token ids (special tokens included, at
    /// most the model's positions long), in order.
    pub(crate) fn embed(&self, texts: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        for (i, ids) in texts.iter().enumerate() {
            if ids.len() > self.max_positions {
                candle_core::bail!(
                    "text {i} has {} tokens, more than the model's positions",
                    ids.len()
                );
            }
            if let Some(&id) = ids
                .iter()
                .find(|&&id| id as usize * self.hidden >= self.word_embeddings.len())
            {
                candle_core::bail!("token id {id} is outside the vocabulary");
            }
        }
        let total: usize = texts.iter().map(|t| t.len()).sum();
        let threads = self.threads.min(texts.len()).max(1);
        if threads == 1 {
            return Ok(self.run(texts));
        }
        // Contiguous shares of about equal token counts, several per thread, taken in turn:
        // on a shared machine a thread whose core is busy takes fewer of them.
        let parts = (threads * SHARES_PER_THREAD).min(texts.len());
        let mut bounds = vec![0usize];
        let mut seen = 0usize;
        for (i, ids) in texts.iter().enumerate() {
            seen += ids.len();
            let share = bounds.len();
            if share < parts && seen * parts >= total * share && i + 1 < texts.len() {
                bounds.push(i + 1);
            }
        }
        bounds.push(texts.len());
        let shares: Vec<&[&[u32]]> = bounds.windows(2).map(|w| &texts[w[0]..w[1]]).collect();
        let next = AtomicUsize::new(0);
        let work = || {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(share) = shares.get(i) else {
                    return done;
                };
                done.push((i, self.run(share)));
            }
        };
        let mut done = std::thread::scope(|scope| {
            let handles: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
            let mut done = work();
            for handle in handles {
                match handle.join() {
                    Ok(more) => done.extend(more),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            done
        });
        done.sort_by_key(|(i, _)| *i);
        let vectors = done.into_iter().flat_map(|(_, v)| v).collect();
        Ok(vectors)
    }

    /// The whole model over `texts`, on this thread.
    fn run(&self, texts: &[&[u32]]) -> Vec<Vec<f32>> {
        let h = self.hidden;
        let k = &self.kernels;
        let tokens: usize = texts.iter().map(|t| t.len()).sum();
        let rows = tokens.next_multiple_of(MR).max(MR);
        let longest = texts.iter().map(|t| t.len()).max().unwrap_or(0);
        let inner = self.layers.first().map_or(0, |l| l.intermediate.outputs());
        let dim = h / self.heads;

        let mut x = vec![0f32; rows * h];
        let mut row = 0;
        for ids in texts {
            for (position, &id) in ids.iter().enumerate() {
                let out = &mut x[row * h..][..h];
                let word = &self.word_embeddings[id as usize * h..][..h];
                let place = &self.position_embeddings[position * h..][..h];
                for ((o, w), p) in out.iter_mut().zip(word).zip(place) {
                    *o = w + p;
                }
                row += 1;
            }
        }
        let norm = &self.embeddings_norm;
        k.layer_norm(&mut x[..tokens * h], &norm.gamma, &norm.beta, norm.eps);

        let mut qkv = vec![0f32; rows * 3 * h];
        let mut context = vec![0f32; rows * h];
        let mut attended = vec![0f32; rows * h];
        let mut hidden = vec![0f32; rows * inner];
        let mut scratch = vec![0f32; kernels::attention_scratch(longest, dim)];
        for layer in &self.layers {
            k.linear(&x, rows, &layer.qkv, &mut qkv, Epilogue::None);
            let mut start = 0;
            for ids in texts {
                let n = ids.len();
                for head in 0..self.heads {
                    k.attention(
                        &qkv[start * 3 * h..],
                        3 * h,
                        n,
                        h,
                        head * dim,
                        dim,
                        &mut context[start * h..],
                        h,
                        &mut scratch,
                    );
                }
                start += n;
            }
            k.linear(
                &context,
                rows,
                &layer.attention_out,
                &mut attended,
                Epilogue::Add(&x),
            );
            let norm = &layer.attention_norm;
            k.layer_norm(
                &mut attended[..tokens * h],
                &norm.gamma,
                &norm.beta,
                norm.eps,
            );
            k.linear(
                &attended,
                rows,
                &layer.intermediate,
                &mut hidden,
                Epilogue::Gelu,
            );
            k.linear(
                &hidden,
                rows,
                &layer.output,
                &mut x,
                Epilogue::Add(&attended),
            );
            let norm = &layer.output_norm;
            k.layer_norm(&mut x[..tokens * h], &norm.gamma, &norm.beta, norm.eps);
        }

        let mut vectors = Vec::with_capacity(texts.len());
        let mut start = 0;
        for ids in texts {
            let n = ids.len();
            let mut vector = vec![0f32; h];
            for token in x[start * h..(start + n) * h].chunks_exact(h) {
                for (v, t) in vector.iter_mut().zip(token) {
                    *v += t;
                }
            }
            let count = n.max(1) as f32;
            vector.iter_mut().for_each(|v| *v /= count);
            let length = vector.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            vector.iter_mut().for_each(|v| *v /= length);
            vectors.push(vector);
            start += n;
        }
        vectors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use kernels::Level;

    /// A tiny random BERT through this path and through candle's `BertModel` with the
    /// embedder's pooling: the same vectors, texts of different lengths in one batch, on one
    /// thread and on three.
    #[test]
    fn matches_candle_bert_model() -> Result<()> {
        let config: Config = serde_json::from_str(
            r#"{"vocab_size": 50, "hidden_size": 64, "num_hidden_layers": 2,
                "num_attention_heads": 4, "intermediate_size": 96, "hidden_act": "gelu",
                "hidden_dropout_prob": 0.0, "max_position_embeddings": 20,
                "type_vocab_size": 2, "initializer_range": 0.02, "layer_norm_eps": 1e-12,
                "pad_token_id": 0, "position_embedding_type": "absolute", "use_cache": false,
                "model_type": "bert"}"#,
        )
        .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let device = Device::Cpu;
        let varmap = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let reference = candle_transformers::models::bert::BertModel::load(vb.clone(), &config)?;
        for (name, var) in varmap.data().lock().expect("var map lock").iter() {
            if name.contains("LayerNorm") || name.ends_with("bias") || name.contains("token_type") {
                var.set(&Tensor::randn(0f32, 0.5, var.shape(), &device)?)?;
            }
        }
        let texts: Vec<Vec<u32>> = vec![
            vec![3, 7, 11, 2, 9],
            vec![5, 8, 1],
            vec![4, 4, 6, 10, 12, 13, 14, 15, 16, 17, 18, 19, 20],
            vec![2, 30],
        ];
        let mut expected = Vec::new();
        for ids in &texts {
            let ids = Tensor::new(ids.as_slice(), &device)?.unsqueeze(0)?;
            let hidden = reference.forward(&ids, &ids.zeros_like()?, None)?;
            let mean = hidden.mean(1)?.squeeze(0)?;
            let length = mean.sqr()?.sum_all()?.sqrt()?;
            expected.push(mean.broadcast_div(&length)?.to_vec1::<f32>()?);
        }
        let ids: Vec<&[u32]> = texts.iter().map(Vec::as_slice).collect();
        let levels = [
            Level::Portable,
            Level::Avx2,
            Level::Avx512,
            Level::Avx512Bf16,
        ];
        for kernels in levels.into_iter().filter_map(Kernels::at) {
            for threads in [1, 3] {
                let fast = FastBert::load_with(vb.clone(), &config, threads, kernels)?
                    .expect("supported shape");
                let vectors = fast.embed(&ids)?;
                for (ours, theirs) in vectors.iter().zip(&expected) {
                    if kernels.level() == Level::Avx512Bf16 {
                        // Rounded inputs: the direction, not every digit, must agree.
                        let cosine: f32 = ours.iter().zip(theirs).map(|(x, y)| x * y).sum();
                        assert!(cosine > 0.9995, "cosine {cosine} on {threads} threads");
                        continue;
                    }
                    let worst = ours
                        .iter()
                        .zip(theirs)
                        .map(|(x, y)| (x - y).abs())
                        .fold(0.0, f32::max);
                    assert!(
                        worst < 1e-5,
                        "largest difference {worst} at {:?} on {threads} threads",
                        kernels.level()
                    );
                }
            }
        }
        Ok(())
    }
}
