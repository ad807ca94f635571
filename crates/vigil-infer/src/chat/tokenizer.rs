//! The chat model's tokenizer, built from the GGUF's own metadata (`tokenizer.ggml.*`) with the
//! `tokenizers` crate, or read from a `tokenizer.json` beside the GGUF when there is one.
//!
//! Two vocabularies are understood, as llama.cpp writes them:
//!
//! - `gpt2`: byte-level BPE with the merges list; the text is first split by the pre-tokenizer
//!   regexes that `tokenizer.ggml.pre` names (GPT-2, Llama 3, Qwen 2, SmolLM/StarCoder).
//! - `llama`: SentencePiece-style BPE whose merges follow from the pieces' scores, with byte
//!   fallback (`<0x0A>`) and `▁` for spaces.
//!
//! Control and user-defined tokens (`token_type` 3 and 4) are added tokens: they are recognised
//! as single tokens wherever they appear in the text, so a rendered chat template's
//! `<|im_start|>` is one token. Every token also has its exact bytes here, for streaming text
//! out token by token and for the constrained decoder's token trie.

use candle_core::quantized::gguf_file;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizerSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{
    AddedToken, DecoderWrapper, NormalizerWrapper, PreTokenizerWrapper, SplitDelimiterBehavior,
    Tokenizer,
};

use crate::{Error, Result};

/// GPT-2's pre-tokenizer regex.
const GPT2_REGEX: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
/// Llama 3's pre-tokenizer regex (numbers in groups of up to three digits).
const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen 2's pre-tokenizer regex (every digit on its own).
const QWEN2_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The `tokenizer.ggml.pre` values understood, each with the regexes applied in turn.
const PRE_TOKENIZERS: &[(&[&str], &[&str], bool)] = &[
    (&["gpt-2", "gpt2", "mpt", "olmo"], &[GPT2_REGEX], false),
    (
        &["smollm", "starcoder", "refact", "command-r", "codeshell"],
        &[r"\p{N}", GPT2_REGEX],
        false,
    ),
    (
        &["llama-bpe", "llama3", "dbrx", "smaug-bpe"],
        &[LLAMA3_REGEX],
        true,
    ),
    (
        &["qwen2", "stablelm2", "deepseek-r1-qwen"],
        &[QWEN2_REGEX],
        false,
    ),
];

/// GGUF token types (llama.cpp's `llama_token_type`).
const TYPE_UNKNOWN: i32 = 2;
const TYPE_CONTROL: i32 = 3;
const TYPE_USER_DEFINED: i32 = 4;
const TYPE_BYTE: i32 = 6;

/// Which kind of vocabulary the tokenizer has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VocabKind {
    /// Byte-level BPE (`tokenizer.ggml.model = "gpt2"`).
    ByteLevelBpe,
    /// SentencePiece-style BPE with scores and byte fallback (`"llama"`).
    SentencePiece,
    /// Read from a `tokenizer.json`.
    TokenizerJson,
}

/// The vocabulary as the GGUF metadata gives it, before a tokenizer is built from it.
#[derive(Debug, Clone, Default)]
pub struct GgufVocab {
    /// `tokenizer.ggml.model`: `gpt2` or `llama`.
    pub model: String,
    /// `tokenizer.ggml.pre`, for `gpt2`.
    pub pre: Option<String>,
    /// The tokens, by id.
    pub tokens: Vec<String>,
    /// Each token's type (1 normal, 2 unknown, 3 control, 4 user-defined, 6 byte).
    pub token_types: Vec<i32>,
    /// SentencePiece scores, by id.
    pub scores: Vec<f32>,
    /// BPE merges, `"left right"`, by rank.
    pub merges: Vec<String>,
    /// `tokenizer.ggml.add_space_prefix` (SentencePiece; default true).
    pub add_space_prefix: Option<bool>,
    /// `tokenizer.ggml.unknown_token_id`.
    pub unknown_token_id: Option<u32>,
}

impl GgufVocab {
    /// Reads the `tokenizer.ggml.*` keys of a GGUF's metadata.
    pub fn from_metadata(metadata: &HashMap<String, gguf_file::Value>) -> Option<GgufVocab> {
        let strings = |key: &str| -> Vec<String> {
            metadata
                .get(key)
                .and_then(|v| v.to_vec().ok())
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| i.to_string().ok().cloned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let model = metadata
            .get("tokenizer.ggml.model")?
            .to_string()
            .ok()?
            .clone();
        let token_types = metadata
            .get("tokenizer.ggml.token_type")
            .and_then(|v| v.to_vec().ok())
            .map(|items| items.iter().filter_map(|i| i.to_i32().ok()).collect())
            .unwrap_or_default();
        let scores = metadata
            .get("tokenizer.ggml.scores")
            .and_then(|v| v.to_vec().ok())
            .map(|items| items.iter().filter_map(|i| i.to_f32().ok()).collect())
            .unwrap_or_default();
        Some(GgufVocab {
            model,
            pre: metadata
                .get("tokenizer.ggml.pre")
                .and_then(|v| v.to_string().ok())
                .cloned(),
            tokens: strings("tokenizer.ggml.tokens"),
            token_types,
            scores,
            merges: strings("tokenizer.ggml.merges"),
            add_space_prefix: metadata
                .get("tokenizer.ggml.add_space_prefix")
                .and_then(|v| v.to_bool().ok()),
            unknown_token_id: metadata
                .get("tokenizer.ggml.unknown_token_id")
                .and_then(|v| v.to_u32().ok()),
        })
    }

    fn token_type(&self, id: usize) -> i32 {
        self.token_types.get(id).copied().unwrap_or(1)
    }
}

/// A chat model's tokenizer: text to token ids and back, and each token's bytes.
#[derive(Debug, Clone)]
pub struct ChatTokenizer {
    inner: Tokenizer,
    kind: VocabKind,
    /// Each token's bytes as it appears in text (control tokens: their name).
    token_bytes: Vec<Vec<u8>>,
    /// Control tokens: never part of the generated text.
    control: HashSet<u32>,
    source: PathBuf,
}

impl ChatTokenizer {
    /// Builds the tokenizer from GGUF vocabulary metadata; `source` names the GGUF in errors.
    pub fn from_gguf_vocab(vocab: &GgufVocab, source: &Path) -> Result<ChatTokenizer> {
        let error = |message: String| Error::Tokenizer {
            path: source.to_path_buf(),
            message,
        };
        if vocab.tokens.is_empty() {
            return Err(error("the GGUF has no tokenizer.ggml.tokens".to_owned()));
        }
        let (mut inner, kind) = match vocab.model.as_str() {
            "gpt2" => (
                byte_level_bpe(vocab).map_err(error)?,
                VocabKind::ByteLevelBpe,
            ),
            "llama" => (
                sentencepiece_bpe(vocab).map_err(error)?,
                VocabKind::SentencePiece,
            ),
            other => {
                return Err(error(format!(
                    "tokenizer.ggml.model `{other}` is not supported (gpt2 and llama are); put \
                     a tokenizer.json beside the GGUF"
                )))
            }
        };
        let added: Vec<AddedToken> = (0..vocab.tokens.len())
            .filter(|&id| matches!(vocab.token_type(id), TYPE_CONTROL | TYPE_USER_DEFINED))
            .map(|id| {
                AddedToken::from(
                    vocab.tokens[id].clone(),
                    vocab.token_type(id) == TYPE_CONTROL,
                )
                .normalized(false)
            })
            .collect();
        inner
            .add_special_tokens(added)
            .map_err(|e| error(e.to_string()))?;

        let control = (0..vocab.tokens.len())
            .filter(|&id| vocab.token_type(id) == TYPE_CONTROL)
            .map(|id| id as u32)
            .collect();
        let token_bytes = vocab
            .tokens
            .iter()
            .enumerate()
            .map(|(id, token)| token_to_bytes(kind, token, vocab.token_type(id)))
            .collect();
        Ok(ChatTokenizer {
            inner,
            kind,
            token_bytes,
            control,
            source: source.to_path_buf(),
        })
    }

    // TODO(tokenizer-json): token bytes for a tokenizer.json are derived from the token
    // strings (`Ġ` or `▁` style guessed from the vocabulary); no test runs a real one yet.
    /// Reads a `tokenizer.json`; control tokens are its special added tokens and, given the
    /// GGUF's vocabulary, the GGUF's control tokens.
    pub fn from_file(path: &Path, vocab: Option<&GgufVocab>) -> Result<ChatTokenizer> {
        let inner = Tokenizer::from_file(path).map_err(|e| Error::Tokenizer {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let size = inner.get_vocab_size(true);
        let specials: HashSet<u32> = inner
            .get_added_tokens_decoder()
            .iter()
            .filter(|(_, t)| t.special)
            .map(|(id, _)| *id)
            .collect();
        let control = match vocab {
            Some(v) => (0..v.tokens.len())
                .filter(|&id| v.token_type(id) == TYPE_CONTROL)
                .map(|id| id as u32)
                .chain(specials.iter().copied())
                .collect(),
            None => specials,
        };
        // Byte-level vocabularies write a leading space as `Ġ`, SentencePiece ones as `▁`.
        let vocab_map = inner.get_vocab(true);
        let spm = vocab_map.keys().filter(|t| t.starts_with('▁')).count()
            > vocab_map.keys().filter(|t| t.starts_with('Ġ')).count();
        let style = if spm {
            VocabKind::SentencePiece
        } else {
            VocabKind::ByteLevelBpe
        };
        let token_bytes = (0..size as u32)
            .map(|id| {
                let name = inner.id_to_token(id).unwrap_or_default();
                let token_type = if control.contains(&id) {
                    TYPE_CONTROL
                } else if name.starts_with("<0x") && name.len() == 6 {
                    TYPE_BYTE
                } else {
                    1
                };
                token_to_bytes(style, &name, token_type)
            })
            .collect();
        Ok(ChatTokenizer {
            inner,
            kind: VocabKind::TokenizerJson,
            token_bytes,
            control,
            source: path.to_path_buf(),
        })
    }

    /// The kind of vocabulary.
    pub fn kind(&self) -> VocabKind {
        self.kind
    }

    /// Number of tokens, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.token_bytes.len()
    }

    /// Token ids of `text`. Control tokens written in the text (`<|im_start|>`) become single
    /// tokens; no BOS is added here.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| self.error(e))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The text of token ids; with `skip_control`, control tokens are left out.
    pub fn decode(&self, ids: &[u32], skip_control: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_control)
            .map_err(|e| self.error(e))
    }

    /// The id of a token written out (`<|im_end|>`), if the vocabulary has it.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The token's text as written in the vocabulary (`Ġthe`, `<|im_end|>`).
    pub fn token_name(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Whether the token is a control token (`<|im_end|>`, `<s>`).
    pub fn is_control(&self, id: u32) -> bool {
        self.control.contains(&id)
    }

    /// The bytes a token stands for in text; empty for an id out of range.
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        self.token_bytes
            .get(id as usize)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The bytes a generated token adds to the text: nothing for a control token.
    pub fn text_bytes(&self, id: u32) -> &[u8] {
        if self.is_control(id) {
            &[]
        } else {
            self.token_bytes(id)
        }
    }

    fn error(&self, error: tokenizers::Error) -> Error {
        Error::Tokenizer {
            path: self.source.clone(),
            message: error.to_string(),
        }
    }
}

fn byte_level_bpe(vocab: &GgufVocab) -> std::result::Result<Tokenizer, String> {
    let pre_name = vocab.pre.as_deref().unwrap_or("gpt-2");
    let (regexes, ignore_merges) = PRE_TOKENIZERS
        .iter()
        .find(|(names, _, _)| names.contains(&pre_name))
        .map(|(_, regexes, ignore)| (*regexes, *ignore))
        .ok_or_else(|| {
            let known: Vec<&str> = PRE_TOKENIZERS
                .iter()
                .flat_map(|(n, _, _)| *n)
                .copied()
                .collect();
            format!(
                "tokenizer.ggml.pre `{pre_name}` is not supported (supported: {}); put a \
                 tokenizer.json beside the GGUF",
                known.join(", ")
            )
        })?;
    if vocab.pre.is_none() {
        tracing::warn!("GGUF names no pre-tokenizer, using GPT-2's");
    }

    let ids = token_ids(vocab);
    let merges = vocab
        .merges
        .iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .ok_or_else(|| format!("merge `{m}` is not two tokens"))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(ids.into_iter().collect::<Vocab>(), merges)
        .ignore_merges(ignore_merges)
        .build()
        .map_err(|e| e.to_string())?;

    let mut pre: Vec<PreTokenizerWrapper> = Vec::new();
    for regex in regexes {
        let split = Split::new(
            SplitPattern::Regex((*regex).to_owned()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(|e| e.to_string())?;
        pre.push(split.into());
    }
    pre.push(ByteLevel::new(false, false, false).into());

    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(PreTokenizerSequence::new(pre)));
    tokenizer.with_decoder(Some(ByteLevel::new(false, false, false)));
    Ok(tokenizer)
}

fn sentencepiece_bpe(vocab: &GgufVocab) -> std::result::Result<Tokenizer, String> {
    let ids = token_ids(vocab);
    let merges = if vocab.merges.is_empty() {
        merges_from_scores(vocab)
    } else {
        vocab
            .merges
            .iter()
            .filter_map(|m| m.split_once(' '))
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .collect()
    };
    let mut builder = BPE::builder()
        .vocab_and_merges(ids.into_iter().collect::<Vocab>(), merges)
        .byte_fallback(true)
        .fuse_unk(true);
    let unk = vocab
        .unknown_token_id
        .map(|id| id as usize)
        .or_else(|| (0..vocab.tokens.len()).find(|&id| vocab.token_type(id) == TYPE_UNKNOWN))
        .and_then(|id| vocab.tokens.get(id));
    if let Some(unk) = unk {
        builder = builder.unk_token(unk.clone());
    }
    let bpe = builder.build().map_err(|e| e.to_string())?;

    let add_prefix = vocab.add_space_prefix.unwrap_or(true);
    let mut normalizers: Vec<NormalizerWrapper> = Vec::new();
    if add_prefix {
        normalizers.push(Prepend::new("▁".to_owned()).into());
    }
    normalizers.push(Replace::new(" ", "▁").map_err(|e| e.to_string())?.into());
    let mut decoders: Vec<DecoderWrapper> = vec![
        Replace::new("▁", " ").map_err(|e| e.to_string())?.into(),
        ByteFallback::new().into(),
        Fuse::new().into(),
    ];
    if add_prefix {
        decoders.push(Strip::new(' ', 1, 0).into());
    }

    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer
        .with_normalizer(Some(NormalizerSequence::new(normalizers)))
        .map_err(|e| e.to_string())?;
    tokenizer.with_decoder(Some(DecoderSequence::new(decoders)));
    Ok(tokenizer)
}

fn token_ids(vocab: &GgufVocab) -> HashMap<String, u32> {
    let mut ids = HashMap::with_capacity(vocab.tokens.len());
    for (id, token) in vocab.tokens.iter().enumerate() {
        // The first id of a token written twice wins, as in llama.cpp.
        ids.entry(token.clone()).or_insert(id as u32);
    }
    ids
}

/// SentencePiece BPE merges two pieces when the joined piece is in the vocabulary, highest
/// score first; as a ranked merges list: every split of every normal piece into two pieces of
/// the vocabulary, ordered by the joined piece's score (then by id, for a stable order).
fn merges_from_scores(vocab: &GgufVocab) -> Vec<(String, String)> {
    let ids = token_ids(vocab);
    let mut ranked: Vec<(f32, u32, u32, String, String)> = Vec::new();
    for (id, piece) in vocab.tokens.iter().enumerate() {
        if vocab.token_type(id) != 1 {
            continue;
        }
        let score = vocab.scores.get(id).copied().unwrap_or(0.0);
        for (split, _) in piece.char_indices().skip(1) {
            let (left, right) = piece.split_at(split);
            if let (Some(&l), Some(_)) = (ids.get(left), ids.get(right)) {
                ranked.push((score, id as u32, l, left.to_owned(), right.to_owned()));
            }
        }
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    ranked.into_iter().map(|(_, _, _, l, r)| (l, r)).collect()
}

/// The bytes a vocabulary entry stands for.
fn token_to_bytes(kind: VocabKind, token: &str, token_type: i32) -> Vec<u8> {
    if matches!(token_type, TYPE_CONTROL | TYPE_USER_DEFINED) {
        return token.as_bytes().to_vec();
    }
    match kind {
        VocabKind::ByteLevelBpe => {
            let table = unicode_to_byte();
            token
                .chars()
                .flat_map(|c| match table.get(&c) {
                    Some(&b) => vec![b],
                    None => c.to_string().into_bytes(),
                })
                .collect()
        }
        VocabKind::SentencePiece | VocabKind::TokenizerJson => {
            if token_type == TYPE_BYTE {
                if let Some(byte) = token
                    .strip_prefix("<0x")
                    .and_then(|t| t.strip_suffix('>'))
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                {
                    return vec![byte];
                }
            }
            token.replace('▁', " ").into_bytes()
        }
    }
}

/// GPT-2's reversible map from bytes to printable characters, inverted.
fn unicode_to_byte() -> &'static HashMap<char, u8> {
    static TABLE: std::sync::OnceLock<HashMap<char, u8>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        let mut map = HashMap::with_capacity(256);
        let mut shifted = 0u32;
        for b in 0..=255u8 {
            let c = if printable(b) {
                char::from(b)
            } else {
                shifted += 1;
                char::from_u32(255 + shifted).unwrap_or(char::REPLACEMENT_CHARACTER)
            };
            map.insert(c, b);
        }
        map
    })
}

#[cfg(test)]
mod tests;
