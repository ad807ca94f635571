//! A JSON parser that keeps byte spans: every value knows its range in the file, and every string
//! knows where each byte of its decoded text came from, so quotes map back through escapes.
//! Iterative (an explicit stack), with a depth limit.

use std::ops::Range;

use vigil_core::Segment;

use super::sections::Source;
use crate::error::{Error, Result};

/// A JSON value and its byte range in the file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Value {
    /// Bytes of the file the value spans.
    pub span: Range<usize>,
    /// What it is.
    pub kind: Kind,
}

/// The kinds of JSON values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Null,
    Bool(bool),
    /// A number, as written.
    Number(String),
    Str(JsonStr),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

/// A decoded string with the pieces mapping its text to the file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JsonStr {
    /// The decoded text.
    pub value: String,
    /// Verbatim runs and escapes, in text order.
    pub pieces: Vec<Segment>,
    /// Offset just after the opening quote.
    pub anchor: usize,
}

impl JsonStr {
    /// The string as a source for a renderer.
    pub fn source(&self) -> Source<'_> {
        Source::decoded(&self.value, self.pieces.clone(), self.anchor)
    }
}

impl Value {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match &self.kind {
            Kind::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value at a path of object keys.
    pub fn at(&self, path: &[&str]) -> Option<&Value> {
        path.iter().try_fold(self, |v, key| v.get(key))
    }

    /// The decoded text of a string value.
    pub fn as_str(&self) -> Option<&str> {
        self.as_json_str().map(|s| s.value.as_str())
    }

    /// A string value with its pieces.
    pub fn as_json_str(&self) -> Option<&JsonStr> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The items of an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match &self.kind {
            Kind::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The members of an object.
    pub fn as_object(&self) -> Option<&[(String, Value)]> {
        match &self.kind {
            Kind::Object(members) => Some(members),
            _ => None,
        }
    }

    /// A string, number or boolean as text; None for the rest and for blank strings.
    pub fn scalar(&self) -> Option<String> {
        let text = match &self.kind {
            Kind::Str(s) => s.value.trim().to_string(),
            Kind::Number(n) => n.clone(),
            Kind::Bool(b) => b.to_string(),
            _ => return None,
        };
        (!text.is_empty()).then_some(text)
    }
}

enum Frame {
    Array {
        start: usize,
        items: Vec<Value>,
    },
    Object {
        start: usize,
        members: Vec<(String, Value)>,
        key: String,
    },
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    origin: &'a str,
}

/// Parses `text` (the whole file) into a value with spans.
pub(crate) fn parse(origin: &str, text: &str, max_depth: usize) -> Result<Value> {
    let mut p = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        origin,
    };
    if text.starts_with('\u{feff}') {
        p.pos = 3;
    }
    let mut stack: Vec<Frame> = Vec::new();

    'value: loop {
        p.skip_ws();
        let start = p.pos;
        let mut value = match p.peek()? {
            b'{' | b'[' => {
                if stack.len() >= max_depth {
                    return Err(Error::TooDeep {
                        origin: origin.to_string(),
                        limit: max_depth,
                    });
                }
                let open = p.bytes[p.pos];
                p.pos += 1;
                p.skip_ws();
                if open == b'[' {
                    if p.peek()? == b']' {
                        p.pos += 1;
                        Value {
                            span: start..p.pos,
                            kind: Kind::Array(Vec::new()),
                        }
                    } else {
                        stack.push(Frame::Array {
                            start,
                            items: Vec::new(),
                        });
                        continue 'value;
                    }
                } else if p.peek()? == b'}' {
                    p.pos += 1;
                    Value {
                        span: start..p.pos,
                        kind: Kind::Object(Vec::new()),
                    }
                } else {
                    let key = p.key()?;
                    stack.push(Frame::Object {
                        start,
                        members: Vec::new(),
                        key,
                    });
                    continue 'value;
                }
            }
            b'"' => {
                let s = p.string()?;
                Value {
                    span: start..p.pos,
                    kind: Kind::Str(s),
                }
            }
            b't' => p.literal("true", Kind::Bool(true))?,
            b'f' => p.literal("false", Kind::Bool(false))?,
            b'n' => p.literal("null", Kind::Null)?,
            b'-' | b'0'..=b'9' => p.number()?,
            _ => return Err(p.error("expected a value")),
        };

        // Attach the finished value to its container, closing containers as they end.
        loop {
            match stack.last_mut() {
                None => {
                    p.skip_ws();
                    if p.pos < p.bytes.len() {
                        return Err(p.error("unexpected data after the value"));
                    }
                    return Ok(value);
                }
                Some(Frame::Array { items, .. }) => {
                    items.push(value);
                    p.skip_ws();
                    match p.peek()? {
                        b',' => {
                            p.pos += 1;
                            continue 'value;
                        }
                        b']' => p.pos += 1,
                        _ => return Err(p.error("expected ',' or ']'")),
                    }
                }
                Some(Frame::Object { members, key, .. }) => {
                    members.push((std::mem::take(key), value));
                    p.skip_ws();
                    match p.peek()? {
                        b',' => {
                            p.pos += 1;
                            p.skip_ws();
                            *key = p.key()?;
                            continue 'value;
                        }
                        b'}' => p.pos += 1,
                        _ => return Err(p.error("expected ',' or '}'")),
                    }
                }
            }
            value = match stack.pop() {
                Some(Frame::Array { start, items }) => Value {
                    span: start..p.pos,
                    kind: Kind::Array(items),
                },
                Some(Frame::Object { start, members, .. }) => Value {
                    span: start..p.pos,
                    kind: Kind::Object(members),
                },
                None => return Err(p.error("unbalanced containers")),
            };
        }
    }
}

impl Parser<'_> {
    fn error(&self, message: &str) -> Error {
        let message = if self.pos >= self.bytes.len() {
            format!("unexpected end of input ({message})")
        } else {
            message.to_string()
        };
        Error::InvalidJson {
            origin: self.origin.to_string(),
            offset: self.pos,
            message,
        }
    }

    fn peek(&self) -> Result<u8> {
        self.bytes
            .get(self.pos)
            .copied()
            .ok_or_else(|| self.error("truncated"))
    }

    fn skip_ws(&mut self) {
        while self.pos < self.bytes.len()
            && matches!(self.bytes[self.pos], b' ' | b'\t' | b'\n' | b'\r')
        {
            self.pos += 1;
        }
    }

    fn key(&mut self) -> Result<String> {
        if self.peek()? != b'"' {
            return Err(self.error("expected a string key"));
        }
        let key = self.string()?.value;
        self.skip_ws();
        if self.peek()? != b':' {
            return Err(self.error("expected ':'"));
        }
        self.pos += 1;
        Ok(key)
    }

    fn literal(&mut self, word: &str, kind: Kind) -> Result<Value> {
        let start = self.pos;
        if self.text[start..].starts_with(word) {
            self.pos += word.len();
            Ok(Value {
                span: start..self.pos,
                kind,
            })
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn number(&mut self) -> Result<Value> {
        let start = self.pos;
        while self.pos < self.bytes.len()
            && matches!(
                self.bytes[self.pos],
                b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
            )
        {
            self.pos += 1;
        }
        let raw = &self.text[start..self.pos];
        if raw.parse::<f64>().is_err() {
            self.pos = start;
            return Err(self.error("invalid number"));
        }
        Ok(Value {
            span: start..self.pos,
            kind: Kind::Number(raw.to_string()),
        })
    }

    /// Reads a string at the opening quote.
    fn string(&mut self) -> Result<JsonStr> {
        self.pos += 1;
        let anchor = self.pos;
        let mut value = String::new();
        let mut pieces = Vec::new();
        let mut run = self.pos;
        loop {
            let b = self.peek()?;
            match b {
                b'"' | b'\\' => {
                    if run < self.pos {
                        pieces.push(Segment {
                            text_start: value.len(),
                            text_len: self.pos - run,
                            orig_start: run,
                            orig_end: self.pos,
                            verbatim: true,
                        });
                        value.push_str(&self.text[run..self.pos]);
                    }
                    if b == b'"' {
                        self.pos += 1;
                        return Ok(JsonStr {
                            value,
                            pieces,
                            anchor,
                        });
                    }
                    let escape_start = self.pos;
                    let decoded = self.escape()?;
                    let text_start = value.len();
                    value.push(decoded);
                    pieces.push(Segment {
                        text_start,
                        text_len: decoded.len_utf8(),
                        orig_start: escape_start,
                        orig_end: self.pos,
                        verbatim: false,
                    });
                    run = self.pos;
                }
                0..=0x1f => return Err(self.error("control character in string")),
                _ => self.pos += 1,
            }
        }
    }

    /// Decodes the escape at a backslash.
    fn escape(&mut self) -> Result<char> {
        self.pos += 1;
        let c = match self.peek()? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                self.pos += 1;
                let high = self.hex4()?;
                if (0xD800..0xDC00).contains(&high) && self.text[self.pos..].starts_with("\\u") {
                    let save = self.pos;
                    self.pos += 2;
                    let low = self.hex4()?;
                    if (0xDC00..0xE000).contains(&low) {
                        let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                        return Ok(char::from_u32(code).unwrap_or('\u{fffd}'));
                    }
                    self.pos = save;
                }
                return Ok(char::from_u32(high).unwrap_or('\u{fffd}'));
            }
            _ => return Err(self.error("invalid escape")),
        };
        self.pos += 1;
        Ok(c)
    }

    fn hex4(&mut self) -> Result<u32> {
        let digits = self
            .text
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.error("truncated escape"))?;
        let code = u32::from_str_radix(digits, 16).map_err(|_| self.error("invalid \\u escape"))?;
        self.pos += 4;
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Value {
        parse("t.json", text, 64).unwrap()
    }

    #[test]
    fn spans_and_members() {
        let text = r#" {"a": [1, true, null], "b": {"c": "x"}} "#;
        let v = parse_ok(text);
        assert_eq!(
            &text[v.span.clone()],
            r#"{"a": [1, true, null], "b": {"c": "x"}}"#
        );
        let a = v.get("a").unwrap();
        assert_eq!(&text[a.span.clone()], "[1, true, null]");
        assert_eq!(v.at(&["b", "c"]).unwrap().as_str(), Some("x"));
        assert_eq!(a.as_array().unwrap()[0].scalar().as_deref(), Some("1"));
    }

    #[test]
    fn string_pieces_map_escapes() {
        let text = r#"{"s": "caf\u00e9 \"ok\"\nline"}"#;
        let v = parse_ok(text);
        let s = v.get("s").unwrap().as_json_str().unwrap();
        assert_eq!(s.value, "café \"ok\"\nline");
        let verbatim: Vec<_> = s.pieces.iter().filter(|p| p.verbatim).collect();
        for p in verbatim {
            assert_eq!(
                &s.value[p.text_start..p.text_start + p.text_len],
                &text[p.orig_start..p.orig_end]
            );
        }
        let e = s.pieces.iter().find(|p| !p.verbatim).unwrap();
        assert_eq!(&text[e.orig_start..e.orig_end], "\\u00e9");
    }

    #[test]
    fn surrogate_pairs_decode() {
        let v = parse_ok(r#"["\ud83d\ude00"]"#);
        assert_eq!(v.as_array().unwrap()[0].as_str(), Some("😀"));
    }

    #[test]
    fn errors_have_offsets() {
        let Err(Error::InvalidJson { offset, .. }) = parse("t", r#"{"a": [1, 2"#, 64) else {
            panic!("expected InvalidJson");
        };
        assert_eq!(offset, 11);
        assert!(matches!(
            parse("t", "{\"a\" 1}", 64),
            Err(Error::InvalidJson { offset: 5, .. })
        ));
        assert!(matches!(
            parse("t", "[1] x", 64),
            Err(Error::InvalidJson { .. })
        ));
        assert!(matches!(
            parse("t", "[01x]", 64),
            Err(Error::InvalidJson { .. })
        ));
    }

    #[test]
    fn depth_is_limited_without_recursion() {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        assert!(matches!(
            parse("t", &deep, 256),
            Err(Error::TooDeep { limit: 256, .. })
        ));
        let ok = "[".repeat(50) + &"]".repeat(50);
        assert!(parse("t", &ok, 64).is_ok());
    }
}
