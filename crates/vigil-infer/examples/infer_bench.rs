//! Inference throughput on this machine, as one JSON object on stdout, for `scripts/bench-infer`.
//!
//! ```text
//! infer_bench decode --model FILE.gguf --ids FILE.json [--decode N] [--reps N] [--baseline candle]
//! infer_bench embed --model DIR --sentences FILE.json [--batch N] [--reps N]
//! ```
//!
//! `decode` loads a quantized llama-architecture GGUF as the product does ([`ChatModel`], which
//! picks the fast llama path when the weights allow), runs the prompt token ids (a JSON array,
//! normally from llama.cpp's tokenizer so both engines see the same ids) through one forward pass
//! (prefill), then `N` greedy decode steps; it reports load time, prefill and decode tokens per
//! second (median over `--reps` after a warm-up), the greedy token ids and peak resident memory.
//! `--baseline candle` also measures the same model on candle-transformers' `quantized_llama`
//! (slow: about a minute per run) and reports it under `baseline`.
//! `embed` loads the embeddings model folder and embeds the sentences (a JSON array of strings)
//! in batches of `--batch`, reporting embeddings per second the same way; `--baseline candle`
//! also measures candle's BERT (the fallback path) on the same sentences, under `baseline`.
//!
//! Threads: `RAYON_NUM_THREADS` (candle's matrix products and quantized kernels read it, and the
//! fast llama path takes its thread count from it).

use anyhow::{bail, Context, Result};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

use vigil_infer::{
    ChatEngine, ChatModel, ChatOptions, Embedder, Manifest, ModelRole, ModelSearch, Verification,
};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let options = Options::parse(args)?;
    let report = match mode.as_str() {
        "decode" => decode(&options)?,
        "embed" => embed(&options)?,
        other => bail!("unknown mode {other:?}: use decode or embed"),
    };
    println!("{report}");
    Ok(())
}

/// Command-line options shared by both modes.
struct Options {
    model: Option<PathBuf>,
    ids: Option<PathBuf>,
    sentences: Option<PathBuf>,
    decode: usize,
    batch: usize,
    reps: usize,
    baseline: bool,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Options> {
        let mut options = Options {
            model: None,
            ids: None,
            sentences: None,
            decode: 128,
            batch: 32,
            reps: 5,
            baseline: false,
        };
        while let Some(flag) = args.next() {
            let value = args
                .next()
                .with_context(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--model" => options.model = Some(value.into()),
                "--ids" => options.ids = Some(value.into()),
                "--sentences" => options.sentences = Some(value.into()),
                "--decode" => options.decode = number(&flag, &value)?,
                "--batch" => options.batch = number(&flag, &value)?.max(1),
                "--reps" => options.reps = number(&flag, &value)?.max(1),
                "--baseline" => match value.as_str() {
                    "candle" => options.baseline = true,
                    "none" => options.baseline = false,
                    _ => bail!("--baseline takes candle or none, not {value:?}"),
                },
                _ => bail!("unknown flag {flag}"),
            }
        }
        Ok(options)
    }
}

fn number(flag: &str, value: &str) -> Result<usize> {
    value
        .parse()
        .with_context(|| format!("{flag} needs a number, not {value:?}"))
}

/// Prefill and greedy decode timings for a quantized llama GGUF.
fn decode(options: &Options) -> Result<serde_json::Value> {
    let path = options
        .model
        .as_ref()
        .context("--model FILE.gguf is required")?;
    let ids_path = options
        .ids
        .as_ref()
        .context("--ids FILE.json is required")?;
    let ids: Vec<u32> = serde_json::from_slice(&std::fs::read(ids_path)?)
        .with_context(|| format!("{} is not a JSON array of token ids", ids_path.display()))?;
    if ids.is_empty() {
        bail!("{} holds no token ids", ids_path.display());
    }

    let mut report = measure(path, &ids, options, ChatEngine::Auto)?;
    if options.baseline {
        report["baseline"] = measure(path, &ids, options, ChatEngine::Candle)?;
    }
    report["peak_rss_mib"] = json!(peak_rss_mib());
    Ok(report)
}

/// Load time, prefill and decode rates of one engine.
fn measure(
    path: &Path,
    ids: &[u32],
    options: &Options,
    engine: ChatEngine,
) -> Result<serde_json::Value> {
    let started = Instant::now();
    let chat_options = ChatOptions {
        engine,
        ..ChatOptions::default()
    };
    let mut model = ChatModel::load_file(path, "chat", chat_options)?;
    let load_s = started.elapsed().as_secs_f64();

    // Warm-up: a short prompt and a few steps, so page faults and thread start-up are not timed.
    run_greedy(&mut model, &ids[..ids.len().min(16)], 4)?;

    let mut prefill = Vec::new();
    let mut decode = Vec::new();
    let mut prefill_cpu = Vec::new();
    let mut decode_cpu = Vec::new();
    let mut tokens = Vec::new();
    for _ in 0..options.reps {
        let run = run_greedy(&mut model, ids, options.decode)?;
        prefill.push(ids.len() as f64 / run.prefill_s);
        decode.push(options.decode as f64 / run.decode_s);
        prefill_cpu.push(run.prefill_cpu_s * 1000.0 / ids.len() as f64);
        decode_cpu.push(run.decode_cpu_s * 1000.0 / options.decode as f64);
        tokens = run.tokens;
    }
    Ok(json!({
        "engine": format!("vigil ({})", model.engine_name()),
        "threads": candle_core::utils::get_num_threads(),
        "load_s": load_s,
        "prompt_tokens": ids.len(),
        "decode_tokens": options.decode,
        "prefill_tok_s": median(&mut prefill),
        "decode_tok_s": median(&mut decode),
        "prefill_tok_s_all": prefill,
        "decode_tok_s_all": decode,
        "prefill_cpu_ms_per_token": median(&mut prefill_cpu),
        "decode_cpu_ms_per_token": median(&mut decode_cpu),
        "generated": tokens,
    }))
}

/// Timings and output of one prefill + greedy decode run.
struct GreedyRun {
    prefill_s: f64,
    decode_s: f64,
    /// CPU time of the whole process (every thread) in each phase: on a shared machine it
    /// shows the work done, where wall time also shows the other processes.
    prefill_cpu_s: f64,
    decode_cpu_s: f64,
    tokens: Vec<u32>,
}

/// One forward pass over `prompt`, then `steps` greedy steps, as a new sequence.
fn run_greedy(model: &mut ChatModel, prompt: &[u32], steps: usize) -> Result<GreedyRun> {
    let cpu = process_cpu_s();
    let started = Instant::now();
    let (logits, _) = model.prefill(prompt)?;
    let mut next = argmax(&logits);
    let prefill_s = started.elapsed().as_secs_f64();
    let prefill_cpu_s = process_cpu_s() - cpu;

    let cpu = process_cpu_s();
    let started = Instant::now();
    let mut tokens = Vec::with_capacity(steps);
    for step in 0..steps {
        tokens.push(next);
        let logits = model.decode_step(next, prompt.len() + step)?;
        next = argmax(&logits);
    }
    Ok(GreedyRun {
        prefill_s,
        decode_s: started.elapsed().as_secs_f64(),
        prefill_cpu_s,
        decode_cpu_s: process_cpu_s() - cpu,
        tokens,
    })
}

/// User and system CPU seconds of this process so far (`/proc/self/stat`, in clock ticks of
/// 1/100 s); 0 where /proc is not available.
fn process_cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line: 11 and 12 counting from the state.
    (ticks(11) + ticks(12)) / 100.0
}

/// The id of the largest logit (the first one on ties, as llama.cpp's greedy sampler does).
fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &value) in logits.iter().enumerate() {
        if value > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Embeddings per second with the embedder the product uses.
fn embed(options: &Options) -> Result<serde_json::Value> {
    let sentences_path = options
        .sentences
        .as_ref()
        .context("--sentences FILE.json is required")?;
    let sentences: Vec<String> = serde_json::from_slice(&std::fs::read(sentences_path)?)
        .with_context(|| {
            format!(
                "{} is not a JSON array of strings",
                sentences_path.display()
            )
        })?;
    let texts: Vec<&str> = sentences.iter().map(String::as_str).collect();

    let manifest = Manifest::builtin()?;
    let spec = manifest.default_for(ModelRole::Embeddings)?;
    let search = ModelSearch::from_env(options.model.as_deref());
    let started = Instant::now();
    // The bench measures loading, not the sha256 check `vigil models verify` does.
    let model = search
        .resolve(spec, Verification::PresenceOnly)
        .context("run scripts/fetch-models first")?;
    let embedder = Embedder::load(&model)?.with_batch_size(options.batch);
    let load_s = started.elapsed().as_secs_f64();

    let mut report = json!({
        "engine": format!("vigil ({})", embedder.engine_name()),
        "threads": candle_core::utils::get_num_threads(),
        "load_s": load_s,
        "sentences": texts.len(),
        "batch": options.batch,
    });
    let rates = embed_rates(&embedder, &texts, options.reps)?;
    report["embeddings_s"] = json!(median(&mut rates.clone()));
    report["embeddings_s_all"] = json!(rates);
    if options.baseline {
        let candle = embedder.with_candle();
        let mut rates = embed_rates(&candle, &texts, options.reps)?;
        report["baseline"] = json!({
            "engine": "vigil (candle bert)",
            "embeddings_s": median(&mut rates),
            "embeddings_s_all": rates,
        });
    }
    report["peak_rss_mib"] = json!(peak_rss_mib());
    Ok(report)
}

/// Embeddings per second of each of `reps` runs over `texts`, after a warm-up run.
fn embed_rates(embedder: &Embedder, texts: &[&str], reps: usize) -> Result<Vec<f64>> {
    embedder.embed(texts)?;
    let mut rates = Vec::new();
    for _ in 0..reps {
        let started = Instant::now();
        embedder.embed(texts)?;
        rates.push(texts.len() as f64 / started.elapsed().as_secs_f64());
    }
    Ok(rates)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Peak resident set size of this process (`VmHWM`), in MiB; 0 where /proc is not available.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kib| kib / 1024.0)
}
