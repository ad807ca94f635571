//! The crate's error type: every variant names the model or file it is about.

use std::path::PathBuf;

/// Errors from loading manifests, resolving and verifying model files, and running models.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifest file could not be read.
    #[error("cannot read model manifest {path}: {source}")]
    ManifestRead {
        /// The manifest's path.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// The manifest is not valid TOML or does not have the expected shape.
    #[error("invalid model manifest {origin}: {source}")]
    ManifestParse {
        /// The manifest's path, or `built-in manifest`.
        origin: String,
        /// The parser's message, with line and column.
        source: toml::de::Error,
    },

    /// The manifest parses but says something impossible (a bad hash, a duplicate name).
    #[error("invalid model manifest {origin}: model `{model}`: {reason}")]
    ManifestInvalid {
        /// The manifest's path, or `built-in manifest`.
        origin: String,
        /// The model entry at fault.
        model: String,
        /// What is wrong.
        reason: String,
    },

    /// No model of that name (or role) in the manifest.
    #[error("no model `{model}` in the model manifest (known: {known})")]
    UnknownModel {
        /// The name asked for.
        model: String,
        /// The names the manifest has, comma-separated.
        known: String,
    },

    /// A model file is in none of the places searched.
    #[error(
        "model file `{file}` of {model} not found; searched: {}; run scripts/fetch-models to \
         download and verify the default models (or set VIGIL_MODELS_DIR to where they are)",
        searched_list(.searched)
    )]
    FileMissing {
        /// The model the file belongs to.
        model: String,
        /// The file, as the manifest names it.
        file: String,
        /// Every path tried, in order.
        searched: Vec<PathBuf>,
    },

    /// A model file's sha256 is not the one in the manifest.
    #[error(
        "model file {path} of {model} has sha256 {actual} ({actual_size} bytes), expected \
         {expected} ({expected_size} bytes); remove it and run scripts/fetch-models"
    )]
    ChecksumMismatch {
        /// The model the file belongs to.
        model: String,
        /// The file that was hashed.
        path: PathBuf,
        /// The sha256 the manifest gives.
        expected: String,
        /// The sha256 of the file on disk.
        actual: String,
        /// The size the manifest gives.
        expected_size: u64,
        /// The size on disk.
        actual_size: u64,
    },

    /// A model file could not be read.
    #[error("cannot read model file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// A model's `config.json` is not what the loader expects.
    #[error("invalid model configuration {path}: {source}")]
    ModelConfig {
        /// The configuration file.
        path: PathBuf,
        /// The parser's message.
        source: serde_json::Error,
    },

    /// A tokenizer file could not be loaded, or text could not be tokenized.
    #[error("tokenizer {path}: {message}")]
    Tokenizer {
        /// The `tokenizer.json` in use.
        path: PathBuf,
        /// The tokenizers crate's message.
        message: String,
    },

    /// The model cannot be used for what was asked (wrong role, format or architecture).
    #[error("model {model}: {reason}")]
    Unsupported {
        /// The model.
        model: String,
        /// Why not.
        reason: String,
    },

    /// A GGUF file's header or metadata could not be read.
    #[error("cannot read GGUF file {path}: {source}")]
    Gguf {
        /// The file.
        path: PathBuf,
        /// candle's error.
        source: candle_core::Error,
    },

    /// A GGUF holds a model architecture no loader exists for.
    #[error(
        "model {model} ({path}): architecture `{architecture}` is not supported (supported: \
         {supported})"
    )]
    UnsupportedArchitecture {
        /// The model.
        model: String,
        /// The GGUF file.
        path: PathBuf,
        /// Its `general.architecture`.
        architecture: String,
        /// The supported architectures, comma-separated.
        supported: String,
    },

    /// A chat template does not compile or fails to render.
    #[error("chat template of {model}: {message}")]
    ChatTemplate {
        /// The model.
        model: String,
        /// minijinja's message, with the line.
        message: String,
    },

    /// The prompt (with room for what is generated) does not fit the context window.
    #[error(
        "model {model}: {tokens} tokens do not fit its context of {context_length} tokens; \
         shorten the prompt"
    )]
    ContextLength {
        /// The model.
        model: String,
        /// Tokens needed.
        tokens: usize,
        /// The context window.
        context_length: usize,
    },

    /// Constrained (JSON schema) generation failed: an unsupported schema, or the token budget
    /// ended before the value was complete.
    #[error("model {model}: structured output: {reason}")]
    StructuredOutput {
        /// The model.
        model: String,
        /// What went wrong.
        reason: String,
    },

    /// The tensor library failed while loading or running a model.
    #[error("model {model}: {source}")]
    Candle {
        /// The model.
        model: String,
        /// candle's error.
        source: candle_core::Error,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn searched_list(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "nowhere (no search location is set)".to_owned();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
