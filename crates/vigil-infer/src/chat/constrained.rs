//! JSON-schema-constrained decoding with llguidance: the schema becomes a grammar, and before
//! each token the grammar's mask of allowed tokens is laid over the logits, so what the model
//! writes always parses and conforms.
//!
//! llguidance walks a trie of the vocabulary's token bytes; control tokens are marked with its
//! special-token byte so they never match text. Whitespace between JSON tokens is fixed
//! (`", "` and `": "`) rather than free: a small model may otherwise fill its budget with
//! spaces. Near the end of the token budget, tokens that close a string, object or array are
//! favoured so the value completes; past the budget, generation goes on for at most
//! [`COMPLETION_ALLOWANCE`] tokens in which only the end of the value, or a token that closes a
//! string, object or array, may be chosen where the schema allows one, so a value the budget
//! cut short is closed rather than lost.

use llguidance::api::TopLevelGrammar;
use llguidance::toktrie::{SimpleVob, TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};
use llguidance::{Matcher, ParserFactory};
use std::sync::Arc;

use super::ChatTokenizer;
use crate::{Error, Result};

/// Tokens before the budget's end from which closing tokens are favoured.
pub(crate) const CLOSING_RESERVE: usize = 24;

/// Tokens past the budget a constrained generation may take to close its value. Only a value
/// whose schema forces more than this after the budget (many required members still to write,
/// or a minimum of items not yet reached) can still fail, and the error says so.
pub const COMPLETION_ALLOWANCE: usize = 96;

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

/// How the mask is laid over the logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closing {
    /// Only what the schema forbids is removed.
    No,
    /// Near the budget's end: tokens that close a string, object or array are raised.
    Favour,
    /// Past the budget: the end of the value when allowed; else, inside a string, tokens that
    /// begin with its closing quote, and outside one, tokens that begin by closing an object
    /// or array, then tokens that begin with a quote (a key or item the schema requires); else
    /// what the schema allows.
    Force {
        /// Whether the text so far ends inside a JSON string.
        in_string: bool,
    },
}

/// Whether JSON text written so far ends inside a string, followed byte by byte.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct JsonScan {
    in_string: bool,
    escaped: bool,
}

impl JsonScan {
    /// Follows the bytes of one more token.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.escaped {
                self.escaped = false;
            } else if self.in_string && b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = !self.in_string;
            }
        }
    }

    /// Whether the text ends inside a string.
    pub(crate) fn in_string(&self) -> bool {
        self.in_string
    }
}

fn closes(tokenizer: &ChatTokenizer, id: u32) -> bool {
    tokenizer
        .token_bytes(id)
        .iter()
        .any(|b| matches!(b, b'"' | b'}' | b']'))
}

/// Sets the logits of tokens the mask forbids to minus infinity, and favours or forces closing
/// tokens as `closing` says. `ends` are the tokens that end the generation (EOS, stop tokens).
pub(crate) fn apply_mask(
    logits: &mut [f32],
    mask: &SimpleVob,
    closing: Closing,
    tokenizer: &ChatTokenizer,
    ends: &[u32],
) {
    let allowed = |id: usize| id < mask.len() && mask.is_allowed(id as TokenId);
    let forced: Option<Box<dyn Fn(usize) -> bool>> = match closing {
        Closing::Force { .. } if ends.iter().any(|&e| allowed(e as usize)) => {
            Some(Box::new(|id| ends.contains(&(id as u32))))
        }
        Closing::Force { in_string } => {
            let starts = |first: &'static [u8]| {
                move |id: usize| {
                    tokenizer
                        .token_bytes(id as u32)
                        .first()
                        .is_some_and(|b| first.contains(b))
                }
            };
            let order: &[&'static [u8]] = if in_string { &[b"\""] } else { &[b"}]", b"\""] };
            order
                .iter()
                .map(|first| starts(first))
                .find(|starts| (0..logits.len()).any(|id| allowed(id) && starts(id)))
                .map(|starts| Box::new(starts) as Box<dyn Fn(usize) -> bool>)
        }
        _ => None,
    };
    for (id, logit) in logits.iter_mut().enumerate() {
        if !allowed(id) || forced.as_ref().is_some_and(|keep| !keep(id)) {
            *logit = f32::NEG_INFINITY;
        } else if closing == Closing::Favour && closes(tokenizer, id as u32) {
            *logit += CLOSING_BIAS;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::JsonScan;

    #[test]
    fn the_scan_knows_when_text_ends_inside_a_string() {
        let mut scan = JsonScan::default();
        for (piece, inside) in [
            (&b"{\"sum"[..], true),
            (b"mary\": \"a \\\"quoted", true),
            (b"\\\\", true),
            (b"\"", false),
            (b", \"k\": [\"}\", \"", true),
            (b"]\"]}", false),
        ] {
            scan.push(piece);
            assert_eq!(
                scan.in_string(),
                inside,
                "after {:?}",
                String::from_utf8_lossy(piece)
            );
        }
    }
}
