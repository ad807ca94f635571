//! JSON-schema-constrained decoding with llguidance: the schema becomes a grammar, and before
//! each token the grammar's mask of allowed tokens is laid over the logits, so what the model
//! writes always parses and conforms.
//!
//! llguidance walks a trie of the vocabulary's token bytes; control tokens are marked with its
//! special-token byte so they never match text. Whitespace between JSON tokens is fixed
//! (`", "` and `": "`) rather than free: a small model may otherwise fill its budget with
//! spaces. Near the end of the token budget, tokens that close a string, object or array are
//! favoured so the value completes.

use llguidance::api::TopLevelGrammar;
use llguidance::toktrie::{SimpleVob, TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};
use llguidance::{Matcher, ParserFactory};
use std::sync::Arc;

use super::ChatTokenizer;
use crate::{Error, Result};

// TODO(constrained-decoding): closing near the end of the budget is a bias, not a guarantee: a
// schema whose shortest completion is longer than the reserve can still run out, which
// generate_json reports as an error. Computing the shortest completion from the grammar would
// make it exact.
/// Tokens before the budget's end from which closing tokens are favoured.
pub(crate) const CLOSING_RESERVE: usize = 24;

/// How much a closing token's logit is raised near the end of the budget.
const CLOSING_BIAS: f32 = 8.0;

/// The vocabulary as llguidance sees it.
struct VocabularyEnv {
    trie: TokTrie,
    tokenizer: Arc<ChatTokenizer>,
}

impl TokenizerEnv for VocabularyEnv {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        match std::str::from_utf8(s) {
            Ok(text) => self
                .tokenizer
                .encode(text)
                .unwrap_or_else(|_| self.trie.greedy_tokenize(s)),
            Err(_) => self.trie.greedy_tokenize(s),
        }
    }
}

/// Compiles schemas into token matchers for one model's vocabulary.
pub(crate) struct JsonConstraint {
    model: String,
    factory: ParserFactory,
}

impl JsonConstraint {
    pub(crate) fn new(
        model: &str,
        tokenizer: Arc<ChatTokenizer>,
        eos: Option<u32>,
    ) -> Result<JsonConstraint> {
        let words: Vec<Vec<u8>> = (0..tokenizer.vocab_size() as u32)
            .map(|id| {
                let bytes = tokenizer.token_bytes(id);
                if tokenizer.is_control(id) {
                    let mut marked = vec![TokTrie::SPECIAL_TOKEN_MARKER];
                    marked.extend_from_slice(bytes);
                    marked
                } else {
                    bytes.to_vec()
                }
            })
            .collect();
        let info = TokRxInfo::new(words.len() as u32, eos.unwrap_or(0));
        let trie = TokTrie::from(&info, &words);
        let env: TokEnv = Arc::new(VocabularyEnv { trie, tokenizer });
        let mut factory = ParserFactory::new_simple(&env).map_err(|e| Error::StructuredOutput {
            model: model.to_owned(),
            reason: format!("cannot build the token trie: {e}"),
        })?;
        factory.quiet();
        Ok(JsonConstraint {
            model: model.to_owned(),
            factory,
        })
    }

    /// A fresh matcher for one generation under `schema`.
    pub(crate) fn matcher(&self, schema: &serde_json::Value) -> Result<Matcher> {
        let mut schema = schema.clone();
        if let Some(object) = schema.as_object_mut() {
            object.insert(
                "x-guidance".to_owned(),
                serde_json::json!({
                    "whitespace_flexible": false,
                    "item_separator": ", ",
                    "key_separator": ": ",
                }),
            );
        }
        let grammar = TopLevelGrammar::from_json_schema(schema);
        let parser = self
            .factory
            .create_parser(grammar)
            .map_err(|e| Error::StructuredOutput {
                model: self.model.clone(),
                reason: format!("the schema cannot be used: {e}"),
            })?;
        Ok(Matcher::new(Ok(parser)))
    }
}

/// Sets the logits of tokens the mask forbids to minus infinity; with `closing`, raises those
/// of allowed tokens that close a string, object or array.
pub(crate) fn apply_mask(logits: &mut [f32], mask: &SimpleVob, closing: Option<&ChatTokenizer>) {
    for (id, logit) in logits.iter_mut().enumerate() {
        if id >= mask.len() || !mask.is_allowed(id as TokenId) {
            *logit = f32::NEG_INFINITY;
        } else if let Some(tokenizer) = closing {
            let bytes = tokenizer.token_bytes(id as u32);
            if bytes.iter().any(|b| matches!(b, b'"' | b'}' | b']')) {
                *logit += CLOSING_BIAS;
            }
        }
    }
}
