//! Jira wiki markup (Data Center REST v2 descriptions) to sections, line by line.

use std::ops::Range;

use super::sections::{SectionBuilder, Source};

/// Renders wiki markup `src` into `b`.
pub(crate) fn render(src: &Source<'_>, b: &mut SectionBuilder) {
    let text = src.text;
    let mut in_code: Option<&'static str> = None;
    let mut line_start = 0;
    while line_start < text.len() {
        let line_end = text[line_start..]
            .find('\n')
            .map_or(text.len(), |e| line_start + e);
        let mut line = line_start..line_end;
        if text[line.clone()].ends_with('\r') {
            line.end -= 1;
        }
        line_start = line_end + 1;

        if let Some(close) = in_code {
            match text[line.clone()].find(close) {
                Some(at) => {
                    b.text(src, line.start..line.start + at);
                    b.newline();
                    in_code = None;
                }
                None => {
                    b.text(src, line.clone());
                    b.newline();
                }
            }
            continue;
        }
        in_code = block_line(src, b, line);
    }
}

/// Renders one line outside code; returns the closing tag when it opens a code block.
fn block_line(
    src: &Source<'_>,
    b: &mut SectionBuilder,
    line: Range<usize>,
) -> Option<&'static str> {
    let text = src.text;
    let indent = text[line.clone()].len() - text[line.clone()].trim_start().len();
    let start = line.start + indent;
    let body = &text[start..line.end];

    for (open, close) in [("{code", "{code}"), ("{noformat", "{noformat}")] {
        if body.starts_with(open) {
            let Some(brace) = body.find('}') else {
                continue;
            };
            let inner = start + brace + 1;
            b.newline();
            return match text[inner..line.end].find(close) {
                Some(at) => {
                    b.text(src, inner..inner + at);
                    b.newline();
                    None
                }
                None => {
                    if inner < line.end {
                        b.text(src, inner..line.end);
                        b.newline();
                    }
                    Some(close)
                }
            };
        }
    }

    let bytes = body.as_bytes();
    if bytes.len() >= 3 && bytes[0] == b'h' && (b'1'..=b'6').contains(&bytes[1]) && bytes[2] == b'.'
    {
        let started = b.start_heading(bytes[1] - b'0');
        inline(src, b, start + 3..line.end);
        if started {
            b.end_heading();
        }
        return None;
    }
    if body.starts_with('|') {
        b.newline();
        table_row(src, b, start..line.end);
        b.newline();
        return None;
    }
    let markers = bytes
        .iter()
        .take_while(|c| matches!(c, b'*' | b'#' | b'-'))
        .count();
    if markers > 0 && bytes.get(markers) == Some(&b' ') {
        b.newline();
        inline(src, b, start + markers + 1..line.end);
        b.newline();
        return None;
    }
    let body_start = if body.starts_with("bq. ") {
        start + 4
    } else {
        start
    };
    if body.trim().is_empty() {
        b.newline();
    } else {
        inline(src, b, body_start..line.end);
        b.newline();
    }
    None
}

/// A `||th||th||` or `|td|td|` row: cells joined by the cell separator.
fn table_row(src: &Source<'_>, b: &mut SectionBuilder, row: Range<usize>) {
    let bytes = src.text.as_bytes();
    let mut cells = 0;
    let mut at = row.start;
    let mut cell_start = None;
    let mut brackets = 0usize;
    while at <= row.end {
        let c = bytes.get(at).copied().filter(|_| at < row.end);
        match c {
            Some(b'[') => brackets += 1,
            Some(b']') => brackets = brackets.saturating_sub(1),
            _ => {}
        }
        if c.is_none() || (c == Some(b'|') && brackets == 0) {
            if let Some(s) = cell_start.take() {
                if !src.text[s..at].trim().is_empty() {
                    if cells > 0 {
                        b.cell_separator();
                    }
                    b.enter_cell();
                    inline(src, b, s..at);
                    b.leave_cell();
                    cells += 1;
                }
            }
            while bytes.get(at) == Some(&b'|') && at < row.end {
                at += 1;
            }
            cell_start = Some(at);
            if c.is_none() {
                break;
            }
            continue;
        }
        at += 1;
    }
}

/// Inline markup: emphasis marks, `{{monospace}}`, `{color}` tokens and link syntax dropped.
fn inline(src: &Source<'_>, b: &mut SectionBuilder, range: Range<usize>) {
    let text = src.text;
    let bytes = text.as_bytes();
    let mut run = range.start;
    let mut at = range.start;
    while at < range.end {
        let skip = match bytes[at] {
            b'{' if bytes.get(at + 1) == Some(&b'{') => Some(2),
            b'}' if bytes.get(at + 1) == Some(&b'}') => Some(2),
            b'{' => macro_token(&text[at..range.end]),
            b'*' | b'_' | b'+' if is_emphasis(bytes, at, range.clone()) => Some(1),
            b'[' => {
                if let Some(close) = text[at..range.end].find(']') {
                    b.collapsed(src, run..at);
                    let inner = at + 1..at + close;
                    let shown = match text[inner.clone()].find('|') {
                        Some(bar) => inner.start..inner.start + bar,
                        None if text[inner.clone()].starts_with('~') => inner.start + 1..inner.end,
                        None => inner,
                    };
                    b.collapsed(src, shown);
                    at += close + 1;
                    run = at;
                    continue;
                }
                None
            }
            _ => None,
        };
        match skip {
            Some(n) => {
                b.collapsed(src, run..at);
                at += n;
                run = at;
            }
            None => at += 1,
        }
    }
    b.collapsed(src, run..range.end);
}

/// Length of a `{name}` or `{name:params}` token at the start of `s`.
fn macro_token(s: &str) -> Option<usize> {
    let close = s.find('}')?;
    let inner = &s[1..close];
    let name = inner.split(':').next()?;
    (!name.is_empty() && name.bytes().all(|c| c.is_ascii_alphabetic())).then_some(close + 1)
}

/// Whether the mark at `at` opens or closes emphasis (touches a word on one side only).
fn is_emphasis(bytes: &[u8], at: usize, range: Range<usize>) -> bool {
    let word = |c: Option<&u8>| c.is_some_and(|c| c.is_ascii_alphanumeric() || *c >= 0x80);
    let before = if at > range.start {
        bytes.get(at - 1)
    } else {
        None
    };
    let after = if at + 1 < range.end {
        bytes.get(at + 1)
    } else {
        None
    };
    let space =
        |c: Option<&u8>| c.is_none_or(|c| c.is_ascii_whitespace() || c.is_ascii_punctuation());
    (space(before) && word(after)) || (word(before) && space(after))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sections(text: &str) -> Vec<vigil_core::Section> {
        let mut b = SectionBuilder::new();
        render(&Source::file(text, 0), &mut b);
        b.finish()
    }

    #[test]
    fn headings_lists_and_inline() {
        let doc =
            "h1. Login\nUse *SSO* via [the portal|https://x.example] {color:red}now{color}.\n\
                   * first item with client_id\n## nested\nh2. Details\nbq. quoted {{mono}}";
        let s = sections(doc);
        assert_eq!(s[0].heading_path, ["Login"]);
        assert_eq!(
            s[0].text,
            "Login\nUse SSO via the portal now.\nfirst item with client_id\nnested"
        );
        assert_eq!(s[1].heading_path, ["Login", "Details"]);
        assert_eq!(s[1].text, "Details\nquoted mono");
        let at = s[0].text.find("the portal").unwrap();
        assert_eq!(&doc[s[0].original_range(at..at + 10)], "the portal");
    }

    #[test]
    fn tables_and_code() {
        let doc = "||Port||Use||\n|8443|admin [API|http://a]|\n{code:json}\n{\"tls\": false}\n{code}\nafter";
        let s = sections(doc);
        assert_eq!(
            s[0].text,
            "Port | Use\n8443 | admin API\n{\"tls\": false}\nafter"
        );
    }
}
