//! The tokenizer builders on tiny synthetic vocabularies: the SentencePiece path (the default
//! model's vocabulary is byte-level BPE, so only these tests exercise it) and the byte-level
//! details.

use super::*;

/// A SentencePiece-style vocabulary: `<unk>`, `<s>`, `</s>`, the 256 byte pieces, single
/// characters, then pieces whose scores rank the merges.
fn spm_vocab() -> GgufVocab {
    let mut tokens = vec!["<unk>".to_owned(), "<s>".to_owned(), "</s>".to_owned()];
    let mut types = vec![TYPE_UNKNOWN, TYPE_CONTROL, TYPE_CONTROL];
    let mut scores = vec![0.0, 0.0, 0.0];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(TYPE_BYTE);
        scores.push(0.0);
    }
    for c in ["▁", "h", "e", "l", "o", "w", "r", "d"] {
        tokens.push(c.to_owned());
        types.push(1);
        scores.push(-100.0);
    }
    let pieces = [
        "he", "ll", "llo", "hello", "▁hello", "or", "wor", "ld", "world", "▁world",
    ];
    for (rank, piece) in pieces.iter().enumerate() {
        tokens.push((*piece).to_owned());
        types.push(1);
        scores.push(-1.0 - rank as f32);
    }
    GgufVocab {
        model: "llama".to_owned(),
        pre: None,
        tokens,
        token_types: types,
        scores,
        merges: Vec::new(),
        add_space_prefix: Some(true),
        unknown_token_id: Some(0),
    }
}

fn names(tokenizer: &ChatTokenizer, ids: &[u32]) -> Vec<String> {
    ids.iter()
        .map(|&id| tokenizer.token_name(id).unwrap_or_default())
        .collect()
}

#[test]
fn sentencepiece_merges_follow_scores() {
    let vocab = spm_vocab();
    let merges = merges_from_scores(&vocab);
    let first: Vec<(&str, &str)> = merges
        .iter()
        .take(5)
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(
        first,
        [
            ("h", "e"),
            ("l", "l"),
            ("ll", "o"),
            ("he", "llo"),
            ("▁", "hello")
        ]
    );
}

#[test]
fn sentencepiece_words_get_a_space_prefix_and_merge_whole() {
    let tokenizer = ChatTokenizer::from_gguf_vocab(&spm_vocab(), Path::new("spm.gguf")).unwrap();
    assert_eq!(tokenizer.kind(), VocabKind::SentencePiece);

    let ids = tokenizer.encode("hello world").unwrap();

    assert_eq!(names(&tokenizer, &ids), ["▁hello", "▁world"]);
    assert_eq!(tokenizer.decode(&ids, true).unwrap(), "hello world");
    assert_eq!(tokenizer.token_bytes(ids[1]), b" world");
}

#[test]
fn sentencepiece_unknown_characters_fall_back_to_bytes() {
    let tokenizer = ChatTokenizer::from_gguf_vocab(&spm_vocab(), Path::new("spm.gguf")).unwrap();

    let ids = tokenizer.encode("hello é\n").unwrap();

    assert_eq!(
        names(&tokenizer, &ids),
        ["▁hello", "▁", "<0xC3>", "<0xA9>", "<0x0A>"]
    );
    assert_eq!(tokenizer.decode(&ids, true).unwrap(), "hello é\n");
    let bytes: Vec<u8> = ids
        .iter()
        .flat_map(|&id| tokenizer.token_bytes(id).to_vec())
        .collect();
    assert_eq!(bytes, " hello é\n".as_bytes());
}

#[test]
fn sentencepiece_control_tokens_are_single_tokens() {
    let tokenizer = ChatTokenizer::from_gguf_vocab(&spm_vocab(), Path::new("spm.gguf")).unwrap();

    let ids = tokenizer.encode("<s>hello</s>").unwrap();

    assert_eq!(ids.first(), Some(&1));
    assert_eq!(ids.last(), Some(&2));
    assert!(tokenizer.is_control(1) && tokenizer.is_control(2));
    assert!(tokenizer.text_bytes(2).is_empty());
    assert_eq!(tokenizer.decode(&ids, true).unwrap(), "hello");
}

fn byte_level_vocab(pre: &str) -> GgufVocab {
    let tokens: Vec<String> = ["h", "i", "Ġ", "hi", "Ġhi", "1", "2", "<|end|>"]
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
    let mut types = vec![1; tokens.len()];
    types[7] = TYPE_CONTROL;
    GgufVocab {
        model: "gpt2".to_owned(),
        pre: Some(pre.to_owned()),
        tokens,
        token_types: types,
        merges: vec!["h i".to_owned(), "Ġ hi".to_owned()],
        ..GgufVocab::default()
    }
}

#[test]
fn byte_level_bpe_splits_and_merges() {
    let vocab = byte_level_vocab("gpt-2");
    let tokenizer = ChatTokenizer::from_gguf_vocab(&vocab, Path::new("bpe.gguf")).unwrap();

    let ids = tokenizer.encode("hi hi<|end|>").unwrap();

    assert_eq!(ids, [3, 4, 7]);
    assert_eq!(tokenizer.token_bytes(4), b" hi");
    assert_eq!(tokenizer.decode(&ids, true).unwrap(), "hi hi");
    assert_eq!(tokenizer.decode(&ids, false).unwrap(), "hi hi<|end|>");
}

#[test]
fn gpt2_byte_map_is_reversible() {
    let table = unicode_to_byte();
    assert_eq!(table.len(), 256);
    assert_eq!(table[&'Ġ'], b' ');
    assert_eq!(table[&'Ċ'], b'\n');
    assert_eq!(table[&'A'], b'A');
    assert_eq!(
        token_to_bytes(VocabKind::ByteLevelBpe, "ĠcafÃ©", 1),
        " café".as_bytes()
    );
}

#[test]
fn unknown_pre_tokenizer_and_model_are_named() {
    let error = ChatTokenizer::from_gguf_vocab(&byte_level_vocab("mystery"), Path::new("x.gguf"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("mystery") && error.contains("qwen2"),
        "{error}"
    );

    let mut vocab = spm_vocab();
    vocab.model = "rwkv".to_owned();
    let error = ChatTokenizer::from_gguf_vocab(&vocab, Path::new("x.gguf"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("rwkv") && error.contains("x.gguf"),
        "{error}"
    );
}
