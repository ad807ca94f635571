//! The embedder against reference vectors from sentence-transformers, with the real
//! all-MiniLM-L6-v2 files (`scripts/fetch-models` puts them in `models/`).

use anyhow::{Context, Result};
use serde::Deserialize;

use vigil_infer::{Embedder, Manifest, ModelRole, ModelSearch, Verification};

use crate::{fixture_path, workspace_root};

#[derive(Debug, Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Case {
    text: String,
    vector: Vec<f32>,
}

/// The default embeddings model, found as the product finds it (from the workspace root).
fn embedder() -> Result<Embedder> {
    let manifest = Manifest::builtin()?;
    let spec = manifest.default_for(ModelRole::Embeddings)?;
    let search = ModelSearch::from_lookup(None, &workspace_root(), |k| std::env::var_os(k));
    let model = search
        .resolve(spec, Verification::Cached)
        .context("these tests need the default models; run scripts/fetch-models")?;
    Ok(Embedder::load(&model)?)
}

fn fixture() -> Result<Fixture> {
    let path = fixture_path("embeddings.json");
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    Ok(serde_json::from_str(&text)?)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

#[test]
fn vectors_match_sentence_transformers() -> Result<()> {
    let embedder = embedder()?;
    let fixture = fixture()?;
    let texts: Vec<&str> = fixture.cases.iter().map(|c| c.text.as_str()).collect();

    let before = vigil_infer::token_usage().embedded;
    let vectors = embedder.embed(&texts)?;
    // Every text is at least [CLS] word [SEP]; other tests may embed at the same time.
    let counted = vigil_infer::token_usage().embedded - before;
    assert!(
        counted >= 3 * texts.len() as u64,
        "{counted} tokens counted"
    );

    assert_eq!(vectors.len(), fixture.cases.len());
    let mut worst = f32::MAX;
    for (case, vector) in fixture.cases.iter().zip(&vectors) {
        assert_eq!(vector.len(), embedder.dimensions());
        let similarity = cosine(vector, &case.vector);
        let preview: String = case.text.chars().take(50).collect();
        println!("cosine {similarity:.7}  {preview:?}");
        assert!(similarity >= 0.999, "cosine {similarity} for {preview:?}");
        worst = worst.min(similarity);
    }
    println!("lowest cosine similarity: {worst:.7}");
    Ok(())
}

#[test]
fn a_batch_equals_one_by_one() -> Result<()> {
    let embedder = embedder()?;
    let fixture = fixture()?;
    let texts: Vec<&str> = fixture.cases.iter().map(|c| c.text.as_str()).collect();

    let batched = embedder.embed(&texts)?;

    for (text, together) in texts.iter().zip(&batched) {
        let alone = embedder.embed(&[text])?.remove(0);
        let diff = alone
            .iter()
            .zip(together)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(diff <= 1e-5, "largest difference {diff} for {text:?}");
    }
    assert!(embedder.embed(&[])?.is_empty());
    Ok(())
}

#[test]
fn vectors_have_unit_length_and_long_texts_are_truncated() -> Result<()> {
    let embedder = embedder()?;
    assert_eq!(embedder.max_tokens(), 256);
    let long = "token ".repeat(2000);
    let vectors = embedder.embed(&[&long, "short"])?;
    for vector in &vectors {
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
    Ok(())
}

#[test]
fn the_fast_path_agrees_with_candle() -> Result<()> {
    let fast = embedder()?;
    let candle = embedder()?.with_candle();
    assert_eq!(candle.engine_name(), "candle");
    let fixture = fixture()?;
    let texts: Vec<&str> = fixture.cases.iter().map(|c| c.text.as_str()).collect();
    for (ours, theirs) in fast.embed(&texts)?.iter().zip(candle.embed(&texts)?) {
        let similarity = cosine(ours, &theirs);
        // The fast path rounds the products' inputs to bfloat16 where the CPU has AVX512_BF16.
        assert!(similarity >= 0.9999, "cosine {similarity}");
    }
    Ok(())
}
