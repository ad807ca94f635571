//! The embedding model as the stores see it: texts in, unit-length vectors out.

use crate::{Error, Result};

/// Turns texts into embedding vectors of a fixed dimension.
pub trait TextEmbedder: Send + Sync {
    /// Length of every vector returned.
    fn dimensions(&self) -> usize;
    /// One vector per text, in order.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;
}

impl TextEmbedder for vigil_infer::Embedder {
    fn dimensions(&self) -> usize {
        vigil_infer::Embedder::dimensions(self)
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        vigil_infer::Embedder::embed(self, texts).map_err(|e| Error::Embedding(e.to_string()))
    }
}

/// Cosine similarity of two vectors (0 when either is all zeros).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}
