//! The BERT encoder behind the embedder, written for throughput on the CPU.
//!
//! The arithmetic is the same as `candle_transformers::models::bert::BertModel` (and Hugging
//! Face's `BertModel`): embeddings and layer norm, then per layer self-attention, residual and
//! layer norm, a GELU (erf) feed-forward block, residual and layer norm. What differs is the
//! shape of the work:
//!
//! - every linear layer runs as one matrix product over all the batch's tokens,
//!   `(texts x tokens, in) x (in, out)`, instead of one small product per text;
//! - query, key and value come from one product with their weights side by side;
//! - the query is scaled before the attention product rather than the scores after it, and the
//!   softmax is candle's fused last-dimension kernel;
//! - the padding mask is built once per batch as an additive bias.
//!
//! Fewer, larger operations matter on a CPU: each candle operation allocates its output and,
//! with more than one thread, splits its work, so many small operations cost more than the
//! arithmetic in them.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{LayerNorm, Linear, VarBuilder};
use candle_transformers::models::bert::{Config, HiddenAct};

/// A loaded BERT encoder (no pooler: the embedder pools itself).
pub(crate) struct Encoder {
    word_embeddings: Tensor,
    position_embeddings: Tensor,
    /// Token type 0's embedding: every sentence is a single segment.
    token_type: Tensor,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
}

/// One transformer layer.
struct Layer {
    /// Query, key and value weights stacked: output columns `[q | k | v]`.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

impl Encoder {
    /// Reads the weights of a Hugging Face `BertModel` (optionally under a `bert.` prefix).
    pub(crate) fn load(vb: VarBuilder, config: &Config) -> Result<Encoder> {
        if config.hidden_act != HiddenAct::Gelu {
            candle_core::bail!("only the erf GELU activation is supported");
        }
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else {
            vb
        };
        let hidden = config.hidden_size;
        let heads = config.num_attention_heads;
        if heads == 0 || !hidden.is_multiple_of(heads) {
            candle_core::bail!("hidden size {hidden} is not a multiple of {heads} heads");
        }
        let eps = config.layer_norm_eps;
        let embeddings = vb.pp("embeddings");
        let word_embeddings =
            embeddings.get((config.vocab_size, hidden), "word_embeddings.weight")?;
        let position_embeddings = embeddings.get(
            (config.max_position_embeddings, hidden),
            "position_embeddings.weight",
        )?;
        let token_type = embeddings
            .get(
                (config.type_vocab_size, hidden),
                "token_type_embeddings.weight",
            )?
            .get(0)?;
        let embeddings_norm = candle_nn::layer_norm(hidden, eps, embeddings.pp("LayerNorm"))?;

        let layers = (0..config.num_hidden_layers)
            .map(|i| Layer::load(vb.pp(format!("encoder.layer.{i}")), config))
            .collect::<Result<Vec<_>>>()?;
        Ok(Encoder {
            word_embeddings,
            position_embeddings,
            token_type,
            embeddings_norm,
            layers,
            heads,
            head_dim: hidden / heads,
        })
    }

    /// Hidden states `(texts, tokens, hidden)` for token ids `(texts, tokens)`; `mask` is 1 for
    /// real tokens and 0 for padding, which no real token attends to.
    pub(crate) fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (texts, tokens) = ids.dims2()?;
        let hidden = self.word_embeddings.dim(1)?;

        let words = self.word_embeddings.index_select(&ids.flatten_all()?, 0)?;
        let positions = self
            .position_embeddings
            .narrow(0, 0, tokens)?
            .broadcast_add(&self.token_type)?;
        let x = words
            .reshape((texts, tokens, hidden))?
            .broadcast_add(&positions)?
            .reshape((texts * tokens, hidden))?;
        let mut x = self.embeddings_norm.forward(&x)?;

        // 0 where a key is a real token, a large negative number where it is padding.
        let bias = ((mask.to_dtype(DType::F32)? - 1.0)? * f64::from(f32::MAX))?
            .reshape((texts, 1, 1, tokens))?;
        for layer in &self.layers {
            x = layer.forward(&x, &bias, texts, tokens, self.heads, self.head_dim)?;
        }
        x.reshape((texts, tokens, hidden))
    }
}

impl Layer {
    fn load(vb: VarBuilder, config: &Config) -> Result<Layer> {
        let hidden = config.hidden_size;
        let eps = config.layer_norm_eps;
        let attention = vb.pp("attention");
        let projection = |name: &str| -> Result<(Tensor, Tensor)> {
            let vb = attention.pp("self").pp(name);
            Ok((vb.get((hidden, hidden), "weight")?, vb.get(hidden, "bias")?))
        };
        let (q_w, q_b) = projection("query")?;
        let (k_w, k_b) = projection("key")?;
        let (v_w, v_b) = projection("value")?;
        let qkv = Linear::new(
            Tensor::cat(&[q_w, k_w, v_w], 0)?,
            Some(Tensor::cat(&[q_b, k_b, v_b], 0)?),
        );
        Ok(Layer {
            qkv,
            attention_out: candle_nn::linear(hidden, hidden, attention.pp("output.dense"))?,
            attention_norm: candle_nn::layer_norm(hidden, eps, attention.pp("output.LayerNorm"))?,
            intermediate: candle_nn::linear(
                hidden,
                config.intermediate_size,
                vb.pp("intermediate.dense"),
            )?,
            output: candle_nn::linear(config.intermediate_size, hidden, vb.pp("output.dense"))?,
            output_norm: candle_nn::layer_norm(hidden, eps, vb.pp("output.LayerNorm"))?,
        })
    }

    /// `x` is `(texts x tokens, hidden)`; so is the result.
    fn forward(
        &self,
        x: &Tensor,
        bias: &Tensor,
        texts: usize,
        tokens: usize,
        heads: usize,
        head_dim: usize,
    ) -> Result<Tensor> {
        let hidden = heads * head_dim;
        let qkv = self
            .qkv
            .forward(x)?
            .reshape((texts, tokens, 3, heads, head_dim))?;
        // (texts, heads, tokens, head_dim) for each of q, k, v.
        let part = |i: usize| {
            qkv.narrow(2, i, 1)?
                .squeeze(2)?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = (part(0)? * (1.0 / (head_dim as f64).sqrt()))?;
        let k = part(1)?;
        let v = part(2)?;

        let scores = q.matmul(&k.t()?)?.broadcast_add(bias)?;
        let probabilities = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = probabilities
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((texts * tokens, hidden))?;

        let attended = (self.attention_out.forward(&context)? + x)?;
        let x = self.attention_norm.forward(&attended)?;
        let inner = self.intermediate.forward(&x)?.gelu_erf()?;
        let out = (self.output.forward(&inner)? + &x)?;
        self.output_norm.forward(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// A tiny random BERT, through this encoder and through candle's `BertModel`: the same
    /// hidden states for every real token, padding included in the batch.
    #[test]
    fn matches_candle_bert_model() -> Result<()> {
        let config: Config = serde_json::from_str(
            r#"{"vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 2,
                "num_attention_heads": 4, "intermediate_size": 32, "hidden_act": "gelu",
                "hidden_dropout_prob": 0.0, "max_position_embeddings": 20,
                "type_vocab_size": 2, "initializer_range": 0.02, "layer_norm_eps": 1e-12,
                "pad_token_id": 0, "position_embedding_type": "absolute", "use_cache": false,
                "model_type": "bert"}"#,
        )
        .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let device = Device::Cpu;
        let varmap = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        // candle's loader creates every weight in the var map (random, layer norms at 1 and 0).
        let reference = candle_transformers::models::bert::BertModel::load(vb.clone(), &config)?;
        // Layer norm weights of exactly 1 and 0 would hide a swapped scale and shift.
        for (name, var) in varmap.data().lock().expect("var map lock").iter() {
            if name.contains("LayerNorm") || name.ends_with("bias") {
                var.set(&Tensor::randn(0f32, 0.5, var.shape(), &device)?)?;
            }
        }
        let encoder = Encoder::load(vb, &config)?;

        let ids = Tensor::new(&[[3u32, 7, 11, 2, 9], [5, 8, 1, 0, 0]], &device)?;
        let mask = Tensor::new(&[[1u32, 1, 1, 1, 1], [1, 1, 1, 0, 0]], &device)?;
        let ours = encoder.forward(&ids, &mask)?;
        let theirs = reference.forward(&ids, &ids.zeros_like()?, Some(&mask))?;

        let real = |t: &Tensor| -> Result<Vec<f32>> {
            let first = t.get(0)?.flatten_all()?.to_vec1::<f32>()?;
            let second = t.get(1)?.narrow(0, 0, 3)?.flatten_all()?.to_vec1::<f32>()?;
            Ok([first, second].concat())
        };
        let (a, b) = (real(&ours)?, real(&theirs)?);
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(worst < 1e-4, "largest difference {worst}");
        Ok(())
    }
}
