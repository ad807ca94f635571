//! vigil-infer's integration tests, on the real default models (`scripts/fetch-models` puts
//! them in `models/`): embeddings against sentence-transformers, the chat model's tokenizer,
//! template, generation and constrained output; every supported architecture on tiny GGUFs of
//! random weights made by the test.

mod architectures;
mod chat;
mod embeddings;
mod fast_llama;

use std::path::{Path, PathBuf};

/// The workspace root, where `models/` is looked for as the product looks for it.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file of `tests/fixtures/`.
pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}
