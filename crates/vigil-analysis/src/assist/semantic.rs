//! Extraction widened by meaning: sentences that name no lexicon term but mean a data class or a
//! risk signal ("people's contact details and dates of birth", "nobody has to sign in") are
//! recognised by their similarity to the catalogue's exemplar sentences.
//!
//! The exemplars are embedded once, when the index is built; each artifact's sentences are
//! embedded in one batch. What is recognised joins what the lexicon found in the same sentence,
//! with the sentence as evidence, so the rest of the pipeline treats it like any other fact.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use vigil_catalog::Lexicon;
use vigil_core::Artifact;

use super::{ModelError, SentenceEmbedder};
use crate::text;

/// Cosine similarity a sentence needs to an exemplar to be recognised. Paraphrases of the same
/// statement score 0.6 to 0.9 with all-MiniLM-L6-v2; sentences on the same topic that say
/// something else, 0.3 to 0.5.
pub const DEFAULT_THRESHOLD: f32 = 0.6;

/// Sentences shorter than this many words carry too little meaning to compare.
const MIN_WORDS: usize = 4;

/// What an exemplar stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FactKind {
    /// A data class (`personal`, `credentials`, ...).
    Data,
    /// A risk signal (`no_authentication`, `long_retention`, ...).
    Signal,
}

/// Facts recognised by meaning in one artifact, by section index and sentence range.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SemanticHints {
    by_sentence: HashMap<(usize, usize, usize), Vec<(FactKind, String)>>,
}

impl SemanticHints {
    /// The facts recognised in sentence `range` of section `section`.
    pub fn sentence(&self, section: usize, range: &Range<usize>) -> &[(FactKind, String)] {
        self.by_sentence
            .get(&(section, range.start, range.end))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// How many sentences gained at least one fact.
    pub fn sentences(&self) -> usize {
        self.by_sentence.len()
    }

    /// How many facts were recognised in all.
    pub fn facts(&self) -> usize {
        self.by_sentence.values().map(Vec::len).sum()
    }
}

/// The catalogue's exemplar sentences with their embeddings.
#[derive(Clone)]
pub struct SemanticIndex {
    embedder: Arc<dyn SentenceEmbedder>,
    exemplars: Vec<(FactKind, String, Vec<f32>)>,
    threshold: f32,
}

impl std::fmt::Debug for SemanticIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SemanticIndex")
            .field("exemplars", &self.exemplars.len())
            .field("threshold", &self.threshold)
            .finish_non_exhaustive()
    }
}

impl SemanticIndex {
    /// Embeds every exemplar of the lexicon's data classes and signals.
    pub fn build(
        lexicon: &Lexicon,
        embedder: Arc<dyn SentenceEmbedder>,
        threshold: f32,
    ) -> Result<SemanticIndex, ModelError> {
        let mut labels = Vec::new();
        let mut texts = Vec::new();
        let data = lexicon
            .data_classes
            .iter()
            .map(|d| (FactKind::Data, &d.id, &d.exemplars));
        let signals = lexicon
            .signals
            .iter()
            .map(|s| (FactKind::Signal, &s.id, &s.exemplars));
        for (kind, id, exemplars) in data.chain(signals) {
            for sentence in exemplars {
                labels.push((kind, id.clone()));
                texts.push(sentence.as_str());
            }
        }

        let vectors = embedder.embed(&texts)?;
        let exemplars = labels
            .into_iter()
            .zip(vectors)
            .map(|((kind, id), v)| (kind, id, v))
            .collect();
        Ok(SemanticIndex {
            embedder,
            exemplars,
            threshold,
        })
    }

    /// How many exemplars the index holds.
    pub fn len(&self) -> usize {
        self.exemplars.len()
    }

    /// Whether the index holds no exemplars.
    pub fn is_empty(&self) -> bool {
        self.exemplars.is_empty()
    }

    /// Recognises facts in every sentence of `artifact`.
    pub fn hints(&self, artifact: &Artifact) -> Result<SemanticHints, ModelError> {
        let mut keys = Vec::new();
        let mut texts = Vec::new();
        for (i, section) in artifact.sections.iter().enumerate() {
            for range in text::sentences(&section.text) {
                let sentence = &section.text[range.clone()];
                if sentence.split_whitespace().count() >= MIN_WORDS {
                    keys.push((i, range.start, range.end));
                    texts.push(sentence);
                }
            }
        }
        if texts.is_empty() {
            return Ok(SemanticHints::default());
        }

        let vectors = self.embedder.embed(&texts)?;
        let mut by_sentence = HashMap::new();
        for (key, v) in keys.into_iter().zip(&vectors) {
            let facts = self.recognise(v);
            if !facts.is_empty() {
                by_sentence.insert(key, facts);
            }
        }
        Ok(SemanticHints { by_sentence })
    }

    /// The facts whose best exemplar is at least the threshold away from `vector`, best first.
    fn recognise(&self, vector: &[f32]) -> Vec<(FactKind, String)> {
        let mut best: HashMap<(FactKind, &str), f32> = HashMap::new();
        for (kind, id, e) in &self.exemplars {
            let similarity = dot(vector, e);
            if similarity >= self.threshold {
                let slot = best.entry((*kind, id.as_str())).or_insert(similarity);
                *slot = slot.max(similarity);
            }
        }
        let mut found: Vec<_> = best.into_iter().collect();
        found.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0 .1.cmp(b.0 .1)));
        found
            .into_iter()
            .map(|((kind, id), _)| (kind, id.to_string()))
            .collect()
    }
}

/// Dot product; the embeddings are L2-normalised, so this is their cosine similarity.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::{self, Limits};
    use vigil_catalog::Catalog;

    /// Embeds a text as a bag of its words hashed into 64 buckets: enough to tell equal
    /// sentences from unrelated ones without a model.
    struct BagOfWords;

    impl SentenceEmbedder for BagOfWords {
        fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
            Ok(texts
                .iter()
                .map(|t| {
                    let mut v = vec![0f32; 64];
                    for w in t.split_whitespace() {
                        let w = w
                            .trim_matches(|c: char| !c.is_alphanumeric())
                            .to_lowercase();
                        let h = w
                            .bytes()
                            .fold(7usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
                        v[h % 64] += 1.0;
                    }
                    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
                    v.into_iter().map(|x| x / n).collect()
                })
                .collect())
        }
    }

    fn artifact(text: &str) -> Artifact {
        let mut a = normalize::normalize("t.md", b"# T\n\nplaceholder", &Limits::default())
            .unwrap()
            .remove(0);
        a.sections.truncate(1);
        a.sections[0].text = text.to_string();
        a
    }

    #[test]
    fn an_exemplar_sentence_is_recognised_and_an_unrelated_one_is_not() {
        let catalog = Catalog::embedded().unwrap();
        let index = SemanticIndex::build(&catalog.lexicon, Arc::new(BagOfWords), 0.9).unwrap();
        assert!(index.len() > 60);
        let exemplar = catalog
            .lexicon
            .signals
            .iter()
            .find(|s| s.id == "no_rate_limit")
            .unwrap()
            .exemplars[0]
            .clone();
        let text = format!("{exemplar} The weather in the valley was mild all week.");
        let hints = index.hints(&artifact(&text)).unwrap();

        let sentences = text::sentences(&text);
        let first = hints.sentence(0, &sentences[0]);
        assert!(first.contains(&(FactKind::Signal, "no_rate_limit".to_string())));
        assert!(hints.sentence(0, &sentences[1]).is_empty());
        assert_eq!(hints.sentences(), 1);
    }

    #[test]
    fn short_sentences_and_empty_artifacts_give_no_hints() {
        let catalog = Catalog::embedded().unwrap();
        let index = SemanticIndex::build(&catalog.lexicon, Arc::new(BagOfWords), 0.5).unwrap();
        assert_eq!(index.hints(&artifact("Okay. Fine.")).unwrap().facts(), 0);
        assert_eq!(index.hints(&artifact("")).unwrap().facts(), 0);
    }
}
