//! Quantized GGUF chat models: loading (the architecture from `general.architecture`), the
//! tokenizer and chat template from the GGUF's own metadata, and generation with sampling,
//! streaming, cancellation and JSON-schema-constrained output.
//!
//! One [`ChatModel`] runs one generation at a time (`&mut self`): each starts a new sequence
//! at position 0, so the key-value cache of the last one is never reused, and the whole prompt
//! goes through the model in one forward pass (prefill) before tokens are decoded one by one.

mod arch;
mod constrained;
mod fast_llama;
mod kernels;
mod pool;
mod stream;
pub mod template;
pub mod tokenizer;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use arch::Architecture;
pub use constrained::COMPLETION_ALLOWANCE;
pub use template::ChatTemplate;
pub use tokenizer::{ChatTokenizer, GgufVocab, VocabKind};

use crate::models::{ModelRole, ResolvedModel};
use crate::{Error, Result};
use arch::Weights;
use constrained::JsonConstraint;
use fast_llama::FastLlama;
use stream::Utf8Stream;

/// Control tokens that end an assistant's turn in common templates, used as stop tokens when
/// the vocabulary has them (besides the GGUF's EOS, EOT and EOM tokens).
const END_OF_TURN_TOKENS: &[&str] = &[
    "<|im_end|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end_of_text|>",
    "<|endoftext|>",
    "<end_of_turn>",
    "<|end|>",
    "</s>",
];

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the model.
    System,
    /// The person (or program) asking.
    User,
    /// The model's earlier answers.
    Assistant,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who wrote it.
    pub role: Role,
    /// Its text.
    pub content: String,
}

impl ChatMessage {
    /// A message from `role`.
    pub fn new(role: Role, content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role,
            content: content.into(),
        }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> ChatMessage {
        ChatMessage::new(Role::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> ChatMessage {
        ChatMessage::new(Role::User, content)
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> ChatMessage {
        ChatMessage::new(Role::Assistant, content)
    }
}

/// How a chat model is loaded.
#[derive(Debug, Clone, Default)]
pub struct ChatOptions {
    /// A `tokenizer.json` to use instead of the GGUF's vocabulary. Without it, one beside the
    /// GGUF (`NAME.tokenizer.json`, then `tokenizer.json`) is used when present.
    pub tokenizer_json: Option<PathBuf>,
    /// A context length below the model's, to bound memory.
    pub max_context: Option<usize>,
    /// Which implementation runs the model.
    pub engine: ChatEngine,
    /// Threads of the forward pass (the fast llama path; candle reads `RAYON_NUM_THREADS`).
    /// Default: `RAYON_NUM_THREADS` when set, else the CPUs this process may use.
    pub threads: Option<usize>,
}

/// The implementation that runs a chat model's forward pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatEngine {
    /// The fast llama path when the GGUF is a llama model with Q4_0, Q4_1 or Q8_0 matrices,
    /// candle otherwise.
    #[default]
    Auto,
    /// candle-transformers' quantized implementations, always.
    Candle,
}

/// A model's loaded weights with the implementation that runs them.
enum Engine {
    Candle(Box<Weights>),
    Fast(Box<FastLlama>),
}

/// How tokens are chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationParams {
    /// Most tokens to generate (fewer when the context fills first).
    pub max_tokens: usize,
    /// Softmax temperature; 0 picks the most likely token every time (greedy).
    pub temperature: f64,
    /// Nucleus sampling: sample among the most likely tokens whose probabilities add up to
    /// this (1.0 turns it off). Ignored when greedy.
    pub top_p: f64,
    /// Seed of the sampler's random numbers: the same seed and prompt give the same text.
    pub seed: u64,
    /// Divides the logits of tokens seen in the last `repeat_last_n` tokens (1.0: off).
    pub repeat_penalty: f32,
    /// How many of the latest tokens the repeat penalty looks at.
    pub repeat_last_n: usize,
}

impl Default for GenerationParams {
    fn default() -> Self {
        GenerationParams {
            max_tokens: 512,
            temperature: 0.0,
            top_p: 1.0,
            seed: 299_792_458,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
        }
    }
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model ended its turn (an EOS or end-of-turn token), or the JSON was complete.
    EndOfTurn,
    /// `max_tokens` were generated.
    MaxTokens,
    /// The context window is full.
    ContextFull,
    /// The cancel token was set.
    Cancelled,
    /// The token callback asked to stop.
    Callback,
}

/// The result of one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The generated text (control tokens left out), exactly the streamed pieces joined.
    pub text: String,
    /// The generated token ids, the stop token not included.
    pub tokens: Vec<u32>,
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Tokens generated (`tokens.len()`).
    pub generated_tokens: usize,
    /// Why it ended.
    pub stop_reason: StopReason,
    /// Time of the prompt's forward pass.
    pub prefill: Duration,
    /// Time spent generating after the prefill.
    pub decode: Duration,
}

/// Prefill and decode timings on given token ids, for comparisons on identical input.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenTimings {
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Time of the prompt's forward pass.
    pub prefill: Duration,
    /// The greedily decoded ids (stop tokens do not end the run).
    pub generated: Vec<u32>,
    /// Time of the decode steps.
    pub decode: Duration,
}

impl TokenTimings {
    /// Prompt tokens per second of the prefill.
    pub fn prefill_tokens_per_second(&self) -> f64 {
        self.prompt_tokens as f64 / self.prefill.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// Generated tokens per second of the decode steps.
    pub fn decode_tokens_per_second(&self) -> f64 {
        self.generated.len() as f64 / self.decode.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// Asks a running generation to stop; clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token not yet cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Stops the generations watching this token after their current step.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A loaded chat model with its tokenizer and chat template.
pub struct ChatModel {
    name: String,
    path: PathBuf,
    architecture: Architecture,
    engine: Engine,
    tokenizer: Arc<ChatTokenizer>,
    template: ChatTemplate,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
    stop_tokens: Vec<u32>,
    context_length: usize,
    device: Device,
    json: Option<JsonConstraint>,
}

impl std::fmt::Debug for ChatModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatModel")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("architecture", &self.architecture)
            .field("context_length", &self.context_length)
            .field("stop_tokens", &self.stop_tokens)
            .finish_non_exhaustive()
    }
}

impl ChatModel {
    /// Loads a resolved chat model of the manifest (its `.gguf` file).
    pub fn load(model: &ResolvedModel, options: ChatOptions) -> Result<ChatModel> {
        ChatModel::load_file(gguf_path(model)?, &model.spec.name, options)
    }

    /// As [`ChatModel::inspect_file`], for a resolved chat model of the manifest.
    pub fn inspect(model: &ResolvedModel, options: ChatOptions) -> Result<ChatModelInfo> {
        ChatModel::inspect_file(gguf_path(model)?, &model.spec.name, options)
    }

    /// Loads a GGUF file; `name` names the model in logs and errors.
    pub fn load_file(path: &Path, name: &str, options: ChatOptions) -> Result<ChatModel> {
        let started = Instant::now();
        let (content, mut file, header) = Header::read(path, name, &options)?;

        let device = crate::embed::device(name)?;
        let fast = match (options.engine, header.architecture, device.is_cpu()) {
            (ChatEngine::Auto, Architecture::Llama, true) => fast_llama::unsupported(&content)
                .map(|reason| tracing::info!(model = %name, %reason, "fast llama path not used"))
                .is_none(),
            _ => false,
        };
        let engine = if fast {
            let threads = options
                .threads
                .unwrap_or_else(candle_core::utils::get_num_threads)
                .max(1);
            let model = FastLlama::load(
                &content,
                &mut file,
                path,
                name,
                header.context_length,
                threads,
            )?;
            Engine::Fast(Box::new(model))
        } else {
            let weights = Weights::load(header.architecture, content, &mut file, &device).map_err(
                |source| Error::Candle {
                    model: name.to_owned(),
                    source,
                },
            )?;
            Engine::Candle(Box::new(weights))
        };

        tracing::info!(
            model = %name,
            engine = if fast { "fast-llama" } else { "candle" },
            architecture = %header.architecture,
            context_length = header.context_length,
            vocabulary = header.tokenizer.vocab_size(),
            ms = started.elapsed().as_millis() as u64,
            "chat model loaded"
        );
        Ok(ChatModel {
            name: name.to_owned(),
            path: path.to_path_buf(),
            architecture: header.architecture,
            engine,
            tokenizer: Arc::new(header.tokenizer),
            template: header.template,
            bos: header.bos,
            eos: header.eos,
            add_bos: header.add_bos,
            stop_tokens: header.stop_tokens,
            context_length: header.context_length,
            device,
            json: None,
        })
    }

    /// Checks a GGUF without loading its weights: the architecture is supported, the
    /// tokenizer builds, and the chat template renders a conversation that tokenizes. Cheap
    /// enough for a health check.
    pub fn inspect_file(path: &Path, name: &str, options: ChatOptions) -> Result<ChatModelInfo> {
        let (_, _, header) = Header::read(path, name, &options)?;
        let sample = [
            ChatMessage::system("You review designs."),
            ChatMessage::user("Is this design safe?"),
        ];
        let prompt = header.template.render(&sample, true)?;
        let prompt_tokens = header.tokenizer.encode(&prompt)?.len();
        Ok(ChatModelInfo {
            architecture: header.architecture,
            context_length: header.context_length,
            vocab_size: header.tokenizer.vocab_size(),
            vocab_kind: header.tokenizer.kind(),
            stop_tokens: header.stop_tokens.len(),
            sample_prompt_tokens: prompt_tokens,
        })
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The GGUF file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its architecture.
    pub fn architecture(&self) -> Architecture {
        self.architecture
    }

    /// The implementation running the model: `fast-llama` or `candle`.
    pub fn engine_name(&self) -> &'static str {
        match self.engine {
            Engine::Fast(_) => "fast-llama",
            Engine::Candle(_) => "candle",
        }
    }

    /// Longest sequence, prompt and generated tokens together.
    pub fn context_length(&self) -> usize {
        self.context_length
    }

    /// Its tokenizer.
    pub fn tokenizer(&self) -> &ChatTokenizer {
        &self.tokenizer
    }

    /// The ids that end a generation: EOS and the template's end-of-turn tokens.
    pub fn stop_tokens(&self) -> &[u32] {
        &self.stop_tokens
    }

    /// The BOS token id, if the model has one.
    pub fn bos_token(&self) -> Option<u32> {
        self.bos
    }

    /// The EOS token id, if the model has one.
    pub fn eos_token(&self) -> Option<u32> {
        self.eos
    }

    /// The prompt text of a conversation, the assistant's turn opened.
    pub fn render_prompt(&self, messages: &[ChatMessage]) -> Result<String> {
        self.template.render(messages, true)
    }

    /// The prompt's token ids: the rendered template, with BOS first when the model wants one
    /// and the template did not write it.
    pub fn prompt_tokens(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        let text = self.render_prompt(messages)?;
        let mut ids = self.tokenizer.encode(&text)?;
        if let (true, Some(bos)) = (self.add_bos, self.bos) {
            if ids.first() != Some(&bos) {
                ids.insert(0, bos);
            }
        }
        Ok(ids)
    }

    /// Generates the assistant's answer to a conversation. `on_token` receives the text as it
    /// completes (whole UTF-8 characters; a piece may hold several tokens' text, or none
    /// while a character is split across tokens) and may stop the generation.
    pub fn generate(
        &mut self,
        messages: &[ChatMessage],
        params: &GenerationParams,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
        cancel: &CancelToken,
    ) -> Result<Generation> {
        let prompt = self.prompt_tokens(messages)?;
        self.run(&prompt, params, on_token, cancel, None)
    }

    /// As [`ChatModel::generate`], on prompt token ids given as they are.
    pub fn generate_from_tokens(
        &mut self,
        prompt: &[u32],
        params: &GenerationParams,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
        cancel: &CancelToken,
    ) -> Result<Generation> {
        self.run(prompt, params, on_token, cancel, None)
    }

    /// Generates a JSON value that conforms to `schema` (a JSON Schema): every token is chosen
    /// among those the schema allows next, so the text always parses and conforms. A value
    /// still open when `max_tokens` is reached is closed in at most
    /// [`COMPLETION_ALLOWANCE`] more tokens (strings, arrays and objects closed as
    /// soon as the schema allows). Fails when the schema uses what the constraint compiler does
    /// not support, or when the context, or that allowance, ends before the value is complete.
    pub fn generate_json(
        &mut self,
        messages: &[ChatMessage],
        schema: &serde_json::Value,
        params: &GenerationParams,
    ) -> Result<serde_json::Value> {
        let prompt = self.prompt_tokens(messages)?;
        if self.json.is_none() {
            self.json = Some(JsonConstraint::new(
                &self.name,
                self.tokenizer.clone(),
                self.eos,
            )?);
        }
        let mut matcher = self
            .json
            .as_ref()
            .map(|json| json.matcher(schema))
            .transpose()?
            .ok_or_else(|| Error::StructuredOutput {
                model: self.name.clone(),
                reason: "no constraint".to_owned(),
            })?;
        let generation = self.run(
            &prompt,
            params,
            &mut |_| ControlFlow::Continue(()),
            &CancelToken::new(),
            Some(&mut matcher),
        )?;
        if generation.stop_reason != StopReason::EndOfTurn {
            return Err(Error::StructuredOutput {
                model: self.name.clone(),
                reason: format!(
                    "generation stopped ({:?}) after {} tokens before the JSON value was \
                     complete: {}",
                    generation.stop_reason, generation.generated_tokens, generation.text
                ),
            });
        }
        serde_json::from_str(&generation.text).map_err(|e| Error::StructuredOutput {
            model: self.name.clone(),
            reason: format!(
                "constrained output does not parse ({e}): {}",
                generation.text
            ),
        })
    }

    /// Runs the prompt through the model in one forward pass from position 0 (a new sequence)
    /// and returns the logits of the next token and the time taken.
    pub fn prefill(&mut self, prompt: &[u32]) -> Result<(Vec<f32>, Duration)> {
        let started = Instant::now();
        let logits = self.forward(prompt, 0)?;
        Ok((logits, started.elapsed()))
    }

    /// Runs one token at `position` (the number of tokens already in the sequence) and
    /// returns the next token's logits.
    pub fn decode_step(&mut self, token: u32, position: usize) -> Result<Vec<f32>> {
        self.forward(&[token], position)
    }

    /// Prefill on `prompt`, then `decode_tokens` greedy decode steps whatever tokens come,
    /// timed apart: for comparing throughput with other engines on identical token ids.
    pub fn time_tokens(&mut self, prompt: &[u32], decode_tokens: usize) -> Result<TokenTimings> {
        self.check_context(prompt.len() + decode_tokens)?;
        let (mut logits, prefill) = self.prefill(prompt)?;
        let started = Instant::now();
        let mut generated = Vec::with_capacity(decode_tokens);
        for step in 0..decode_tokens {
            let token = argmax(&logits);
            generated.push(token);
            if step + 1 < decode_tokens {
                logits = self.decode_step(token, prompt.len() + step)?;
            }
        }
        Ok(TokenTimings {
            prompt_tokens: prompt.len(),
            prefill,
            generated,
            decode: started.elapsed(),
        })
    }

    /// Drops the key-value cache (a new generation replaces it anyway; this frees memory).
    pub fn clear_cache(&mut self) {
        match &mut self.engine {
            Engine::Candle(weights) => weights.clear_cache(),
            Engine::Fast(model) => model.clear_cache(),
        }
    }

    fn run(
        &mut self,
        prompt: &[u32],
        params: &GenerationParams,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
        cancel: &CancelToken,
        mut constraint: Option<&mut llguidance::Matcher>,
    ) -> Result<Generation> {
        self.check_context(prompt.len() + 1)?;
        let room = self.context_length - prompt.len();
        // A constrained value the budget cuts short gets a few more tokens to close.
        let allowance = if constraint.is_some() {
            constrained::COMPLETION_ALLOWANCE
        } else {
            0
        };
        let limit = (params.max_tokens + allowance).min(room);
        let mut sampler = LogitsProcessor::from_sampling(params.seed, sampling(params));
        let mut stream = Utf8Stream::default();
        let mut text = String::new();
        let mut tokens: Vec<u32> = Vec::new();
        let mut history: Vec<u32> = prompt.to_vec();
        let mut scan = constrained::JsonScan::default();

        let started = Instant::now();
        let span = tracing::trace_span!("prefill", tokens = prompt.len());
        let mut logits = {
            let _entered = span.enter();
            self.forward(prompt, 0)?
        };
        let prefill = started.elapsed();
        let decode_started = Instant::now();

        let stop_reason = loop {
            if cancel.is_cancelled() {
                break StopReason::Cancelled;
            }
            if tokens.len() >= limit {
                break if limit < params.max_tokens + allowance {
                    StopReason::ContextFull
                } else {
                    StopReason::MaxTokens
                };
            }
            let mask = match constraint.as_deref_mut() {
                Some(matcher) => Some(matcher.compute_mask().map_err(|e| self.json_error(e))?),
                None => None,
            };
            let budget_left = params.max_tokens.min(room).saturating_sub(tokens.len());
            let closing = if budget_left == 0 {
                constrained::Closing::Force {
                    in_string: scan.in_string(),
                }
            } else if budget_left <= constrained::CLOSING_RESERVE {
                constrained::Closing::Favour
            } else {
                constrained::Closing::No
            };
            let recent = &history[history.len().saturating_sub(params.repeat_last_n)..];
            // The penalty and the mask change logits, before softmax and sampling.
            let mut values = std::mem::take(&mut logits);
            apply_repeat_penalty(&mut values, params.repeat_penalty, recent);
            if let Some(mask) = &mask {
                let mut ends = self.stop_tokens.clone();
                ends.extend(self.eos);
                constrained::apply_mask(&mut values, mask, closing, &self.tokenizer, &ends);
            }
            let count = values.len();
            let token = Tensor::from_vec(values, count, &Device::Cpu)
                .and_then(|values| sampler.sample(&values))
                .map_err(|source| self.candle_error(source))?;

            if let Some(matcher) = constraint.as_deref_mut() {
                if self.stop_tokens.contains(&token) || Some(token) == self.eos {
                    break StopReason::EndOfTurn;
                }
                matcher
                    .consume_token(token)
                    .map_err(|e| self.json_error(e))?;
            } else if self.stop_tokens.contains(&token) {
                break StopReason::EndOfTurn;
            }
            tokens.push(token);
            history.push(token);
            scan.push(self.tokenizer.token_bytes(token));

            let piece = stream.push(self.tokenizer.text_bytes(token));
            if !piece.is_empty() {
                text.push_str(&piece);
                if on_token(&piece).is_break() {
                    break StopReason::Callback;
                }
            }
            if constraint.as_deref().is_some_and(|m| m.is_stopped()) {
                break StopReason::EndOfTurn;
            }
            if tokens.len() < limit && !cancel.is_cancelled() {
                let position = prompt.len() + tokens.len() - 1;
                logits = self.forward(&[token], position)?;
            }
        };
        let rest = stream.finish();
        if !rest.is_empty() {
            text.push_str(&rest);
            // The generation is over; what the callback says no longer matters.
            let _ = on_token(&rest);
        }

        let decode = decode_started.elapsed();
        tracing::debug!(
            model = %self.name,
            prompt_tokens = prompt.len(),
            generated_tokens = tokens.len(),
            stop_reason = ?stop_reason,
            prefill_ms = prefill.as_millis() as u64,
            decode_ms = decode.as_millis() as u64,
            "generation finished"
        );
        crate::usage::count_generation(prompt.len(), tokens.len());
        Ok(Generation {
            text,
            generated_tokens: tokens.len(),
            tokens,
            prompt_tokens: prompt.len(),
            stop_reason,
            prefill,
            decode,
        })
    }

    fn check_context(&self, needed: usize) -> Result<()> {
        if needed > self.context_length {
            return Err(Error::ContextLength {
                model: self.name.clone(),
                tokens: needed,
                context_length: self.context_length,
            });
        }
        Ok(())
    }

    /// One forward pass over `tokens` starting at `position`; the logits of the last one.
    fn forward(&mut self, tokens: &[u32], position: usize) -> Result<Vec<f32>> {
        if tokens.is_empty() {
            return Err(Error::Unsupported {
                model: self.name.clone(),
                reason: "a forward pass needs at least one token".to_owned(),
            });
        }
        self.check_context(position + tokens.len())?;
        let _span = tracing::trace_span!("forward", tokens = tokens.len(), position).entered();
        let weights = match &mut self.engine {
            Engine::Fast(model) => return model.forward(tokens, position).map(<[f32]>::to_vec),
            Engine::Candle(weights) => weights,
        };
        let input = Tensor::new(tokens, &self.device)
            .and_then(|t| t.unsqueeze(0))
            .map_err(|source| Error::Candle {
                model: self.name.clone(),
                source,
            })?;
        weights
            .forward(&input, position)
            .and_then(|logits| logits.to_dtype(candle_core::DType::F32))
            .and_then(|logits| logits.to_vec1::<f32>())
            .map_err(|source| Error::Candle {
                model: self.name.clone(),
                source,
            })
    }

    fn candle_error(&self, source: candle_core::Error) -> Error {
        Error::Candle {
            model: self.name.clone(),
            source,
        }
    }

    fn json_error(&self, error: impl std::fmt::Display) -> Error {
        Error::StructuredOutput {
            model: self.name.clone(),
            reason: error.to_string(),
        }
    }
}

/// What a GGUF's header says, read before (or instead of) its weights.
struct Header {
    architecture: Architecture,
    tokenizer: ChatTokenizer,
    template: ChatTemplate,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
    stop_tokens: Vec<u32>,
    context_length: usize,
}

impl Header {
    fn read(
        path: &Path,
        name: &str,
        options: &ChatOptions,
    ) -> Result<(gguf_file::Content, std::fs::File, Header)> {
        let mut file = std::fs::File::open(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let content = gguf_file::Content::read(&mut file).map_err(|source| Error::Gguf {
            path: path.to_path_buf(),
            source,
        })?;
        let metadata = &content.metadata;

        let arch_name = meta_string(metadata, "general.architecture").unwrap_or_default();
        let architecture = Architecture::from_gguf_name(&arch_name).ok_or_else(|| {
            Error::UnsupportedArchitecture {
                model: name.to_owned(),
                path: path.to_path_buf(),
                architecture: arch_name.clone(),
                supported: Architecture::SUPPORTED.join(", "),
            }
        })?;
        let vocab = GgufVocab::from_metadata(metadata);
        let tokenizer = load_tokenizer(path, vocab.as_ref(), options)?;
        let bos = meta_u32(metadata, "tokenizer.ggml.bos_token_id");
        let eos = meta_u32(metadata, "tokenizer.ggml.eos_token_id");
        let add_bos = metadata
            .get("tokenizer.ggml.add_bos_token")
            .and_then(|v| v.to_bool().ok())
            .unwrap_or(tokenizer.kind() == VocabKind::SentencePiece);
        let stop_tokens = stop_tokens(metadata, &tokenizer, eos);
        let token_text = |id: Option<u32>| {
            id.and_then(|id| tokenizer.token_name(id))
                .unwrap_or_default()
        };
        let template_source = meta_string(metadata, "tokenizer.chat_template");
        if template_source.is_none() {
            tracing::warn!(model = %name, "GGUF has no chat template, using ChatML");
        }
        let template = ChatTemplate::new(
            template_source
                .as_deref()
                .unwrap_or(template::CHATML_TEMPLATE),
            name,
            &token_text(bos),
            &token_text(eos),
        )?;
        let context_length = [
            meta_u32(metadata, &format!("{arch_name}.context_length")).map(|n| n as usize),
            architecture.implementation_limit(),
            options.max_context,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(2048);
        let header = Header {
            architecture,
            tokenizer,
            template,
            bos,
            eos,
            add_bos,
            stop_tokens,
            context_length,
        };
        Ok((content, file, header))
    }
}

/// What [`ChatModel::inspect_file`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatModelInfo {
    /// The architecture.
    pub architecture: Architecture,
    /// Longest sequence the model will run.
    pub context_length: usize,
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
    /// Where the tokenizer came from.
    pub vocab_kind: VocabKind,
    /// How many stop tokens were found.
    pub stop_tokens: usize,
    /// Tokens of a short sample conversation rendered by the chat template.
    pub sample_prompt_tokens: usize,
}

/// The `.gguf` file of a chat model of the manifest.
fn gguf_path(model: &ResolvedModel) -> Result<&Path> {
    let spec = &model.spec;
    let unsupported = |reason: String| Error::Unsupported {
        model: spec.name.clone(),
        reason,
    };
    if spec.role != ModelRole::Chat {
        return Err(unsupported(format!("its role is {}, not chat", spec.role)));
    }
    if spec.format != "gguf" {
        return Err(unsupported(format!(
            "format {} is not supported for chat (gguf is)",
            spec.format
        )));
    }
    model
        .files
        .iter()
        .find(|f| f.spec.path.ends_with(".gguf"))
        .map(|f| f.path.as_path())
        .ok_or_else(|| unsupported("the manifest lists no .gguf file".to_owned()))
}

fn sampling(params: &GenerationParams) -> Sampling {
    if params.temperature <= 0.0 {
        Sampling::ArgMax
    } else if params.top_p < 1.0 {
        Sampling::TopP {
            p: params.top_p,
            temperature: params.temperature,
        }
    } else {
        Sampling::All {
            temperature: params.temperature,
        }
    }
}

/// Divides positive logits (multiplies negative ones) of tokens seen recently by `penalty`.
fn apply_repeat_penalty(logits: &mut [f32], penalty: f32, recent: &[u32]) {
    if penalty == 1.0 {
        return;
    }
    let mut seen = std::collections::HashSet::new();
    for &token in recent {
        if !seen.insert(token) {
            continue;
        }
        if let Some(logit) = logits.get_mut(token as usize) {
            *logit = if *logit >= 0.0 {
                *logit / penalty
            } else {
                *logit * penalty
            };
        }
    }
}

fn argmax(logits: &[f32]) -> u32 {
    logits
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i as u32)
        .unwrap_or(0)
}

fn meta_string(metadata: &HashMap<String, gguf_file::Value>, key: &str) -> Option<String> {
    metadata.get(key).and_then(|v| v.to_string().ok()).cloned()
}

fn meta_u32(metadata: &HashMap<String, gguf_file::Value>, key: &str) -> Option<u32> {
    metadata.get(key).and_then(|v| v.to_u32().ok())
}

/// EOS, EOT and EOM from the metadata, then the known end-of-turn control tokens the
/// vocabulary has.
fn stop_tokens(
    metadata: &HashMap<String, gguf_file::Value>,
    tokenizer: &ChatTokenizer,
    eos: Option<u32>,
) -> Vec<u32> {
    let mut stops: Vec<u32> = [
        eos,
        meta_u32(metadata, "tokenizer.ggml.eot_token_id"),
        meta_u32(metadata, "tokenizer.ggml.eom_token_id"),
    ]
    .into_iter()
    .flatten()
    .collect();
    for name in END_OF_TURN_TOKENS {
        if let Some(id) = tokenizer.token_id(name) {
            if tokenizer.is_control(id) && !stops.contains(&id) {
                stops.push(id);
            }
        }
    }
    stops
}

fn load_tokenizer(
    gguf: &Path,
    vocab: Option<&GgufVocab>,
    options: &ChatOptions,
) -> Result<ChatTokenizer> {
    let beside = gguf.file_stem().map(|stem| {
        let mut name = stem.to_os_string();
        name.push(".tokenizer.json");
        gguf.with_file_name(name)
    });
    let json = options.tokenizer_json.clone().or_else(|| {
        [beside, Some(gguf.with_file_name("tokenizer.json"))]
            .into_iter()
            .flatten()
            .find(|p| p.is_file())
    });
    match (json, vocab) {
        (Some(path), vocab) => ChatTokenizer::from_file(&path, vocab),
        (None, Some(vocab)) => ChatTokenizer::from_gguf_vocab(vocab, gguf),
        (None, None) => Err(Error::Tokenizer {
            path: gguf.to_path_buf(),
            message: "the GGUF has no tokenizer.ggml.model and no tokenizer.json is beside it"
                .to_owned(),
        }),
    }
}
