//! Text helpers shared by the stages: sentences and word tokens with byte offsets into a
//! section's text, and the name normalization used to compare component names.

use std::ops::Range;

/// A word with its byte range in the text it was cut from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Byte range in the text.
    pub range: Range<usize>,
    /// The word, lower case.
    pub lower: String,
}

/// Splits `text` into sentence ranges: at `.`, `!` or `?` followed by white space, at line
/// breaks, and at ` | ` table cell separators. Empty sentences are skipped.
pub fn sentences(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let end_here = match b {
            b'\n' => Some(i),
            b'.' | b'!' | b'?' => {
                let next = bytes.get(i + 1).copied();
                let after_space = next.is_none_or(|n| n == b' ' || n == b'\n' || n == b'\t');
                // "e.g. " and "i.e. " and decimals do not end a sentence.
                let abbreviation =
                    i >= 3 && matches!(&text[i - 3..i], "e.g" | "i.e" | "etc" | " vs");
                (after_space && !abbreviation).then_some(i + 1)
            }
            b'|' if i > 0 && bytes[i - 1] == b' ' && bytes.get(i + 1) == Some(&b' ') => Some(i),
            _ => None,
        };
        if let Some(end) = end_here {
            push_trimmed(text, start..end, &mut out);
            start = if b == b'|' || b == b'\n' { i + 1 } else { end };
        }
        i += 1;
    }
    push_trimmed(text, start..text.len(), &mut out);
    out
}

fn push_trimmed(text: &str, range: Range<usize>, out: &mut Vec<Range<usize>>) {
    let slice = &text[range.clone()];
    let lead = slice.len() - slice.trim_start().len();
    let trail = slice.len() - slice.trim_end().len();
    let r = range.start + lead..range.end - trail;
    if r.end > r.start && text[r.clone()].chars().any(|c| c.is_alphanumeric()) {
        out.push(r);
    }
}

/// Cuts `text[range]` into word tokens. A word is a run of letters, digits and the inner
/// punctuation of names (`-`, `.`, `'`, `/`, `_`, `+`, `#`); trailing punctuation is dropped.
pub fn tokens(text: &str, range: Range<usize>) -> Vec<Token> {
    let mut out = Vec::new();
    let mut word_start: Option<usize> = None;
    let slice = &text[range.clone()];
    for (i, c) in slice
        .char_indices()
        .chain(std::iter::once((slice.len(), ' ')))
    {
        let inner = c.is_alphanumeric() || matches!(c, '-' | '.' | '\'' | '/' | '_' | '+' | '#');
        match (word_start, inner) {
            (None, true) if c.is_alphanumeric() => word_start = Some(i),
            (Some(s), false) => {
                push_word(slice, s..i, range.start, &mut out);
                word_start = None;
            }
            _ => {}
        }
    }
    out
}

fn push_word(slice: &str, mut r: Range<usize>, base: usize, out: &mut Vec<Token>) {
    while r.end > r.start && !slice[..r.end].ends_with(|c: char| c.is_alphanumeric()) {
        r.end -= slice[..r.end].chars().next_back().map_or(1, char::len_utf8);
    }
    if r.end > r.start {
        let lower = slice[r.clone()].to_lowercase();
        out.push(Token {
            range: base + r.start..base + r.end,
            lower,
        });
    }
}

/// Whether `range` in `text` starts and ends on word boundaries.
pub fn on_word_boundaries(text: &str, range: &Range<usize>) -> bool {
    let before = text[..range.start].chars().next_back();
    let after = text[range.end..].chars().next();
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    !before.is_some_and(is_word) && !after.is_some_and(is_word)
}

/// The singular of a lower-case English noun, good enough for component heads.
pub fn singular(word: &str) -> String {
    if word.len() <= 3 || word.ends_with("ss") || word.ends_with("us") || word.ends_with("is") {
        return word.to_owned();
    }
    if let Some(stem) = word.strip_suffix("ies") {
        return format!("{stem}y");
    }
    if word.ends_with("aches") {
        return word[..word.len() - 1].to_owned();
    }
    for suffix in ["ches", "shes", "sses", "xes"] {
        if word.ends_with(suffix) {
            return word[..word.len() - 2].to_owned();
        }
    }
    word.strip_suffix('s')
        .map_or_else(|| word.to_owned(), str::to_owned)
}

/// The plural of a lower-case English noun phrase (its last word).
pub fn plural(phrase: &str) -> String {
    if phrase.ends_with('s')
        || phrase.ends_with('x')
        || phrase.ends_with("ch")
        || phrase.ends_with("sh")
    {
        format!("{phrase}es")
    } else if phrase.ends_with('y')
        && !phrase.ends_with("ay")
        && !phrase.ends_with("ey")
        && !phrase.ends_with("oy")
    {
        format!("{}ies", &phrase[..phrase.len() - 1])
    } else {
        format!("{phrase}s")
    }
}

/// Upper-cases the first letter of each word that is all lower case ("receipt queue" ->
/// "Receipt queue" keeps later words as written).
pub fn capitalize_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().collect::<String>() + chars.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_sentences_and_lines() {
        let text = "The web app stores files. It uses TLS, e.g. 1.3!\nNext line | cell two";
        let got: Vec<&str> = sentences(text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(
            got,
            [
                "The web app stores files.",
                "It uses TLS, e.g. 1.3!",
                "Next line",
                "cell two"
            ]
        );
    }

    #[test]
    fn tokens_keep_offsets_and_inner_punctuation() {
        let text = "Calls the check-out API (v2.1), then S3.";
        let toks = tokens(text, 0..text.len());
        let words: Vec<&str> = toks.iter().map(|t| &text[t.range.clone()]).collect();
        assert_eq!(
            words,
            ["Calls", "the", "check-out", "API", "v2.1", "then", "S3"]
        );
        assert_eq!(toks[3].lower, "api");
    }

    #[test]
    fn singular_and_plural() {
        assert_eq!(singular("databases"), "database");
        assert_eq!(singular("queries"), "query");
        assert_eq!(singular("status"), "status");
        assert_eq!(singular("caches"), "cache");
        assert_eq!(plural("proxy"), "proxies");
        assert_eq!(plural("database"), "databases");
        assert_eq!(plural("gateway"), "gateways");
    }

    #[test]
    fn word_boundaries() {
        let text = "apis and api";
        assert!(!on_word_boundaries(text, &(0..3)));
        assert!(on_word_boundaries(text, &(9..12)));
    }
}
