//! Every supported chat architecture, run end to end on a tiny model of random weights made
//! here: the GGUF names the architecture, carries the default model's tokenizer and chat
//! template, and holds the tensors candle's implementation of that architecture reads. Random
//! weights say nothing about quality; they do show that the architecture is picked from
//! `general.architecture`, that its metadata and tensors are read, that generation is
//! deterministic, that constrained output conforms, and that decoding with the key-value cache
//! gives the logits a full forward pass gives.

use anyhow::{Context, Result};
use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;

use vigil_infer::{
    Architecture, CancelToken, ChatMessage, ChatModel, ChatOptions, GenerationParams, Manifest,
    ModelRole, ModelSearch, Verification,
};

use crate::workspace_root;

const EMBED: usize = 64;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const HEAD_DIM: usize = 16;
const FFN: usize = 128;
const BLOCKS: usize = 2;
const CONTEXT: u32 = 256;

/// Deterministic small random numbers (a linear congruential generator).
struct Noise(u64);

impl Noise {
    fn tensor(&mut self, shape: &[usize], scale: f32) -> QTensor {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n)
            .map(|_| {
                self.0 = self
                    .0
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0 * scale
            })
            .collect();
        let t = Tensor::from_vec(values, shape, &Device::Cpu).unwrap();
        QTensor::quantize(&t, GgmlDType::F32).unwrap()
    }

    fn ones(&mut self, n: usize) -> QTensor {
        let t = Tensor::ones(n, candle_core::DType::F32, &Device::Cpu).unwrap();
        QTensor::quantize(&t, GgmlDType::F32).unwrap()
    }
}

/// The default chat model's tokenizer and template metadata.
fn tokenizer_metadata() -> Result<Vec<(String, gguf_file::Value)>> {
    let manifest = Manifest::builtin()?;
    let spec = manifest.default_for(ModelRole::Chat)?;
    let search = ModelSearch::from_lookup(None, &workspace_root(), |k| std::env::var_os(k));
    let model = search
        .resolve(spec, Verification::Cached)
        .context("these tests need the default models; run scripts/fetch-models")?;
    let path = &model
        .files
        .iter()
        .find(|f| f.path.extension().is_some_and(|e| e == "gguf"))
        .context("the default chat model has a .gguf file")?
        .path;
    let mut file = std::fs::File::open(path)?;
    let content = gguf_file::Content::read(&mut file)?;
    Ok(content
        .metadata
        .into_iter()
        .filter(|(k, _)| k.starts_with("tokenizer."))
        .collect())
}

/// Writes a tiny `arch` model of random weights to `path`.
fn write_tiny(
    arch: &str,
    vocab: usize,
    mut metadata: Vec<(String, gguf_file::Value)>,
    path: &Path,
) {
    use gguf_file::Value::{String as S, F32, U32};
    let mut noise = Noise(arch.len() as u64 * 7919);
    let key = |k: &str| format!("{arch}.{k}");
    metadata.push(("general.architecture".to_owned(), S(arch.to_owned())));
    metadata.push(("general.name".to_owned(), S(format!("tiny {arch}"))));
    for (k, v) in [
        ("block_count", U32(BLOCKS as u32)),
        ("context_length", U32(CONTEXT)),
        ("embedding_length", U32(EMBED as u32)),
        ("feed_forward_length", U32(FFN as u32)),
        ("attention.head_count", U32(HEADS as u32)),
        ("attention.head_count_kv", U32(KV_HEADS as u32)),
        ("attention.key_length", U32(HEAD_DIM as u32)),
        ("attention.value_length", U32(HEAD_DIM as u32)),
        ("attention.layer_norm_rms_epsilon", F32(1e-5)),
        ("attention.sliding_window", U32(64)),
        ("rope.freq_base", F32(10_000.0)),
        ("rope.dimension_count", U32(HEAD_DIM as u32)),
    ] {
        metadata.push((key(k), v));
    }

    let q = HEADS * HEAD_DIM;
    let kv = KV_HEADS * HEAD_DIM;
    let mut tensors: Vec<(String, QTensor)> = vec![
        (
            "token_embd.weight".into(),
            noise.tensor(&[vocab, EMBED], 0.5),
        ),
        ("output_norm.weight".into(), noise.ones(EMBED)),
        ("output.weight".into(), noise.tensor(&[vocab, EMBED], 0.5)),
    ];
    for b in 0..BLOCKS {
        let p = |name: &str| format!("blk.{b}.{name}");
        let mut put = |name: &str, t: QTensor| tensors.push((p(name), t));
        put("attn_norm.weight", noise.ones(EMBED));
        put("ffn_norm.weight", noise.ones(EMBED));
        put("ffn_down.weight", noise.tensor(&[EMBED, FFN], 0.1));
        put("attn_output.weight", noise.tensor(&[EMBED, q], 0.1));
        if arch == "phi3" {
            put("attn_qkv.weight", noise.tensor(&[q + 2 * kv, EMBED], 0.1));
            put("ffn_up.weight", noise.tensor(&[2 * FFN, EMBED], 0.1));
            continue;
        }
        put("attn_q.weight", noise.tensor(&[q, EMBED], 0.1));
        put("attn_k.weight", noise.tensor(&[kv, EMBED], 0.1));
        put("attn_v.weight", noise.tensor(&[kv, EMBED], 0.1));
        put("ffn_gate.weight", noise.tensor(&[FFN, EMBED], 0.1));
        put("ffn_up.weight", noise.tensor(&[FFN, EMBED], 0.1));
        if arch == "qwen2" {
            put("attn_q.bias", noise.tensor(&[q], 0.1));
            put("attn_k.bias", noise.tensor(&[kv], 0.1));
            put("attn_v.bias", noise.tensor(&[kv], 0.1));
        }
        if arch == "qwen3" || arch == "gemma3" {
            put("attn_q_norm.weight", noise.ones(HEAD_DIM));
            put("attn_k_norm.weight", noise.ones(HEAD_DIM));
        }
        if arch == "gemma3" {
            put("post_attention_norm.weight", noise.ones(EMBED));
            put("post_ffw_norm.weight", noise.ones(EMBED));
        }
    }

    let metadata: Vec<(&str, &gguf_file::Value)> =
        metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let mut file = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut file, &metadata, &tensors).unwrap();
}

fn greedy(max_tokens: usize) -> GenerationParams {
    GenerationParams {
        max_tokens,
        temperature: 0.0,
        ..GenerationParams::default()
    }
}

fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn every_supported_architecture_loads_generates_and_caches() -> Result<()> {
    let tokenizer = tokenizer_metadata()?;
    let vocab = tokenizer
        .iter()
        .find(|(k, _)| k == "tokenizer.ggml.tokens")
        .and_then(|(_, v)| v.to_vec().ok())
        .map(|tokens| tokens.len())
        .context("the default model lists its tokens")?;
    let dir = tempfile::tempdir()?;
    let mut seen = HashMap::new();
    for &name in Architecture::SUPPORTED {
        let path = dir.path().join(format!("tiny-{name}.gguf"));
        write_tiny(name, vocab, tokenizer.clone(), &path);
        let options = ChatOptions {
            engine: vigil_infer::ChatEngine::Candle,
            ..ChatOptions::default()
        };
        let mut model = ChatModel::load_file(&path, &format!("tiny-{name}"), options)
            .with_context(|| format!("loading the tiny {name} model"))?;
        assert_eq!(model.architecture().as_str(), name);
        assert_eq!(model.context_length(), CONTEXT as usize);

        // Deterministic greedy generation through the chat template.
        let messages = [ChatMessage::user("Which data crosses the trust boundary?")];
        let cancel = CancelToken::new();
        let a = model.generate(
            &messages,
            &greedy(8),
            &mut |_| std::ops::ControlFlow::Continue(()),
            &cancel,
        )?;
        let b = model.generate(
            &messages,
            &greedy(8),
            &mut |_| std::ops::ControlFlow::Continue(()),
            &cancel,
        )?;
        assert_eq!(a.tokens, b.tokens, "{name}");
        assert!(!a.tokens.is_empty() || a.stop_reason == vigil_infer::StopReason::EndOfTurn);

        // Decoding with the cache gives the logits a full pass over the same tokens gives.
        let prompt: Vec<u32> = (1..=12).collect();
        let (full, _) = model.prefill(&prompt)?;
        let _ = model.prefill(&prompt[..11])?;
        let stepped = model.decode_step(prompt[11], 11)?;
        let diff = largest_difference(&full, &stepped);
        assert!(diff < 1e-3, "{name}: cached decoding differs by {diff}");

        // Constrained output conforms whatever the weights.
        let schema = json!({
            "type": "object",
            "properties": {"stride": {"enum": ["S", "T", "R", "I", "D", "E"]}, "why": {"type": "string", "maxLength": 20}},
            "required": ["stride", "why"],
            "additionalProperties": false
        });
        let value = model.generate_json(&messages, &schema, &greedy(24))?;
        assert!(
            jsonschema::validator_for(&schema)?.is_valid(&value),
            "{name}: {value}"
        );
        seen.insert(name, a.text);
    }
    for (name, text) in &seen {
        println!("{name}: {text:?}");
    }
    assert_eq!(seen.len(), Architecture::SUPPORTED.len());
    Ok(())
}
