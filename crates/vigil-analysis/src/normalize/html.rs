//! HTML and Confluence storage format (XHTML with `ac:`/`ri:` macros) to sections.
//!
//! A tolerant, single-pass tokenizer drives the renderer directly: no tree is built and nothing
//! recurses, so deep nesting and large pages cost time linear in their size. Open elements live
//! on an explicit stack bounded by the depth limit.

use std::ops::Range;

use super::sections::{SectionBuilder, Source};
use crate::error::{Error, Result};

/// Whether markup holds Confluence storage elements.
pub(crate) fn is_confluence(text: &str) -> bool {
    text.contains("<ac:") || text.contains("<ri:")
}

/// Whether text that starts with `<` is markup rather than Markdown that opens with a tag.
pub(crate) fn looks_like_markup(text: &str) -> bool {
    let head = text.trim_start();
    if !head.starts_with('<') {
        return false;
    }
    let lower: String = head
        .chars()
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase();
    lower.starts_with("<!doctype") || lower.starts_with("<html") || lower.starts_with("<?xml") || {
        // Markdown rarely opens with a tag and then closes tags everywhere.
        let closes = text.matches("</").count();
        let markdown_headings = text
            .lines()
            .filter(|l| l.starts_with("# ") || l.starts_with("## "))
            .count();
        closes > 0 && markdown_headings == 0
    }
}

/// What an open element means to the renderer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Inline,
    Block,
    Row,
    Cell,
    Heading { started: bool },
    Pre,
    Parameter { keep: bool },
    Dropped,
    Link,
    PlainBody { code: bool },
}

#[derive(Debug)]
struct Open {
    name: String,
    role: Role,
}

#[derive(Debug, Default)]
struct LinkState {
    target: Option<Range<usize>>,
    had_text: bool,
}

struct Renderer<'s, 'b> {
    src: &'s Source<'s>,
    b: &'b mut SectionBuilder,
    stack: Vec<Open>,
    rows: Vec<usize>,
    links: Vec<LinkState>,
    dropped: usize,
    pre: usize,
    plain_code: usize,
}

/// Renders HTML or Confluence storage `src` into `b`; nesting deeper than `max_depth` fails.
pub(crate) fn render(
    src: &Source<'_>,
    b: &mut SectionBuilder,
    origin: &str,
    max_depth: usize,
) -> Result<()> {
    let mut r = Renderer {
        src,
        b,
        stack: Vec::new(),
        rows: Vec::new(),
        links: Vec::new(),
        dropped: 0,
        pre: 0,
        plain_code: 0,
    };
    let text = src.text;
    let bytes = text.as_bytes();
    let mut i = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let mut text_start = i;
    while i < bytes.len() {
        let Some(off) = text[i..].find('<') else {
            break;
        };
        let lt = i + off;
        let rest = &text[lt..];
        let next = bytes.get(lt + 1).copied().unwrap_or(b' ');
        if let Some(comment) = rest.strip_prefix("<!--") {
            r.text(text_start..lt);
            i = comment.find("-->").map_or(bytes.len(), |e| lt + 4 + e + 3);
        } else if let Some(cdata) = rest.strip_prefix("<![CDATA[") {
            r.text(text_start..lt);
            let end = cdata.find("]]>").map_or(bytes.len(), |e| lt + 9 + e);
            r.cdata(lt + 9..end);
            i = (end + 3).min(bytes.len());
        } else if next == b'!' || next == b'?' {
            r.text(text_start..lt);
            i = rest.find('>').map_or(bytes.len(), |e| lt + e + 1);
        } else if next == b'/' && bytes.get(lt + 2).is_some_and(u8::is_ascii_alphabetic) {
            r.text(text_start..lt);
            let name_end = name_end(bytes, lt + 2);
            let name = text[lt + 2..name_end].to_ascii_lowercase();
            i = rest.find('>').map_or(bytes.len(), |e| lt + e + 1);
            r.end_tag(&name);
        } else if next.is_ascii_alphabetic() {
            r.text(text_start..lt);
            let tag = parse_start_tag(text, lt);
            i = tag.end;
            let name = tag.name.clone();
            r.start_tag(&tag, origin, max_depth)?;
            if !tag.self_closing
                && matches!(name.as_str(), "script" | "style" | "title" | "textarea")
            {
                i = find_close(text, i, &name);
                r.end_tag(&name);
            }
        } else {
            // A lone '<' is text.
            i = lt + 1;
            continue;
        }
        text_start = i;
    }
    r.text(text_start..bytes.len());
    Ok(())
}

struct StartTag {
    name: String,
    attrs: Vec<(String, Range<usize>)>,
    self_closing: bool,
    end: usize,
}

fn name_end(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && !bytes[at].is_ascii_whitespace() && !matches!(bytes[at], b'>' | b'/')
    {
        at += 1;
    }
    at
}

/// Parses the start tag at `lt`; attribute values are ranges of the text (quotes excluded).
fn parse_start_tag(text: &str, lt: usize) -> StartTag {
    let bytes = text.as_bytes();
    let mut at = name_end(bytes, lt + 1);
    let name = text[lt + 1..at].to_ascii_lowercase();
    let mut attrs = Vec::new();
    let mut self_closing = false;
    loop {
        while at < bytes.len() && bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        match bytes.get(at) {
            None => break,
            Some(b'>') => {
                at += 1;
                break;
            }
            Some(b'/') => {
                self_closing = bytes.get(at + 1) == Some(&b'>');
                at += 1;
                continue;
            }
            Some(_) => {}
        }
        let key_start = at;
        while at < bytes.len()
            && !bytes[at].is_ascii_whitespace()
            && !matches!(bytes[at], b'=' | b'>' | b'/')
        {
            at += 1;
        }
        let key = text[key_start..at].to_ascii_lowercase();
        if at == key_start {
            at += 1;
            continue;
        }
        while at < bytes.len() && bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        if bytes.get(at) != Some(&b'=') {
            attrs.push((key, at..at));
            continue;
        }
        at += 1;
        while at < bytes.len() && bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        let value = match bytes.get(at) {
            Some(&q @ (b'"' | b'\'')) => {
                let start = at + 1;
                let end = text[start..]
                    .find(q as char)
                    .map_or(bytes.len(), |e| start + e);
                at = (end + 1).min(bytes.len());
                start..end
            }
            _ => {
                let start = at;
                while at < bytes.len() && !bytes[at].is_ascii_whitespace() && bytes[at] != b'>' {
                    at += 1;
                }
                start..at
            }
        };
        attrs.push((key, value));
    }
    StartTag {
        name,
        attrs,
        self_closing,
        end: at,
    }
}

/// The offset of `</name` at or after `from` (the end of the text if there is none).
fn find_close(text: &str, from: usize, name: &str) -> usize {
    let mut at = from;
    while let Some(off) = text[at..].find("</") {
        let candidate = at + off;
        let after = candidate + 2;
        if text
            .get(after..after + name.len())
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
        {
            return text[candidate..]
                .find('>')
                .map_or(text.len(), |e| candidate + e + 1);
        }
        at = after;
    }
    text.len()
}

const VOID: &[&str] = &[
    "br", "hr", "img", "input", "meta", "link", "col", "area", "base", "embed", "source", "track",
    "wbr", "param",
];

const BLOCK: &[&str] = &[
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "blockquote",
    "section",
    "article",
    "header",
    "footer",
    "main",
    "nav",
    "aside",
    "dl",
    "dt",
    "dd",
    "figure",
    "figcaption",
    "form",
    "fieldset",
    "address",
    "details",
    "summary",
    "table",
    "tbody",
    "thead",
    "tfoot",
    "caption",
    "body",
    "html",
    "ac:structured-macro",
    "ac:rich-text-body",
    "ac:layout",
    "ac:layout-section",
    "ac:layout-cell",
    "ac:task-list",
    "ac:task",
    "ac:task-body",
    "ac:adf-extension",
    "ac:adf-node",
    "ac:adf-content",
];

/// Elements a new one of the same name closes implicitly.
const SELF_CLOSING_SIBLINGS: &[&str] = &["p", "li", "tr", "td", "th", "dt", "dd", "option"];

fn role_of(tag: &StartTag) -> Role {
    let name = tag.name.as_str();
    if name.len() == 2 && name.starts_with('h') && (b'1'..=b'6').contains(&name.as_bytes()[1]) {
        return Role::Heading { started: false };
    }
    match name {
        "tr" => Role::Row,
        "td" | "th" => Role::Cell,
        "pre" => Role::Pre,
        // Whether to keep it depends on the attribute value, read by the caller.
        "ac:parameter" => Role::Parameter { keep: false },
        "head" | "ac:task-id" | "ac:task-status" | "ac:placeholder" | "ri:user" => Role::Dropped,
        "ac:link" => Role::Link,
        "ac:plain-text-body" => Role::PlainBody { code: true },
        "ac:plain-text-link-body" | "ac:link-body" => Role::PlainBody { code: false },
        _ if BLOCK.contains(&name) => Role::Block,
        _ => Role::Inline,
    }
}

fn attr(tag: &StartTag, key: &str) -> Option<Range<usize>> {
    tag.attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

impl Renderer<'_, '_> {
    fn start_tag(&mut self, tag: &StartTag, origin: &str, max_depth: usize) -> Result<()> {
        let name = tag.name.as_str();
        if VOID.contains(&name) {
            if matches!(name, "br" | "hr") {
                self.b.newline();
            }
            return Ok(());
        }
        if matches!(
            name,
            "ri:page" | "ri:attachment" | "ri:blog-post" | "ri:space"
        ) {
            let key = if name == "ri:attachment" {
                "ri:filename"
            } else {
                "ri:content-title"
            };
            if let (Some(link), Some(target)) = (self.links.last_mut(), attr(tag, key)) {
                link.target.get_or_insert(target);
            }
        }
        if tag.self_closing {
            return Ok(());
        }
        if SELF_CLOSING_SIBLINGS.contains(&name)
            && self.stack.last().is_some_and(|o| o.name == name)
        {
            self.pop();
        }
        if self.stack.len() >= max_depth {
            return Err(Error::TooDeep {
                origin: origin.to_string(),
                limit: max_depth,
            });
        }

        let mut role = role_of(tag);
        if role == (Role::Parameter { keep: false }) {
            let value = attr(tag, "ac:name").map(|r| &self.src.text[r]);
            role = Role::Parameter {
                keep: value == Some("title"),
            };
        }
        match role {
            Role::Inline => {}
            Role::Block => self.b.newline(),
            Role::Row => {
                self.b.newline();
                self.rows.push(0);
            }
            Role::Cell => {
                if let Some(cells) = self.rows.last_mut() {
                    if *cells > 0 {
                        self.b.cell_separator();
                    }
                    *cells += 1;
                }
                self.b.enter_cell();
            }
            Role::Heading { .. } => {
                let level = name[1..].parse().unwrap_or(1);
                role = Role::Heading {
                    started: self.b.start_heading(level),
                };
            }
            Role::Pre => {
                self.b.newline();
                self.pre += 1;
            }
            Role::Parameter { keep: true } => self.b.newline(),
            Role::Parameter { keep: false } | Role::Dropped => self.dropped += 1,
            Role::Link => self.links.push(LinkState::default()),
            Role::PlainBody { code } => {
                if code {
                    self.b.newline();
                    self.plain_code += 1;
                }
            }
        }
        self.stack.push(Open {
            name: tag.name.clone(),
            role,
        });
        Ok(())
    }

    fn end_tag(&mut self, name: &str) {
        // Look a little way down for the element: stray end tags are ignored.
        let found = self
            .stack
            .iter()
            .rev()
            .take(32)
            .position(|o| o.name == name);
        if let Some(depth) = found {
            for _ in 0..=depth {
                self.pop();
            }
        }
    }

    fn pop(&mut self) {
        let Some(open) = self.stack.pop() else {
            return;
        };
        match open.role {
            Role::Inline => {}
            Role::Block | Role::Parameter { keep: true } => self.b.newline(),
            Role::Row => {
                self.rows.pop();
                self.b.newline();
            }
            Role::Cell => self.b.leave_cell(),
            Role::Heading { started } => {
                if started {
                    self.b.end_heading();
                }
            }
            Role::Pre => {
                self.pre = self.pre.saturating_sub(1);
                self.b.newline();
            }
            Role::Parameter { keep: false } | Role::Dropped => {
                self.dropped = self.dropped.saturating_sub(1)
            }
            Role::Link => {
                if let Some(LinkState {
                    target: Some(target),
                    had_text: false,
                }) = self.links.pop()
                {
                    self.entity_text(target, true);
                }
            }
            Role::PlainBody { code } => {
                if code {
                    self.plain_code = self.plain_code.saturating_sub(1);
                    self.b.newline();
                }
            }
        }
    }

    /// Text between tags.
    fn text(&mut self, range: Range<usize>) {
        if range.is_empty() || self.dropped > 0 {
            return;
        }
        let collapse = self.pre == 0 && self.plain_code == 0;
        if collapse && self.src.text[range.clone()].trim().is_empty() {
            self.b.space();
            return;
        }
        self.entity_text(range, collapse);
    }

    fn cdata(&mut self, range: Range<usize>) {
        if range.is_empty() || self.dropped > 0 {
            return;
        }
        self.mark_link_text();
        if self.pre > 0 || self.plain_code > 0 {
            self.b.text(self.src, range);
        } else {
            self.b.collapsed(self.src, range);
        }
    }

    fn mark_link_text(&mut self) {
        if let Some(link) = self.links.last_mut() {
            link.had_text = true;
        }
    }

    /// Text with entities decoded, whitespace collapsed or kept.
    fn entity_text(&mut self, range: Range<usize>, collapse: bool) {
        self.mark_link_text();
        let text = self.src.text;
        let mut plain_start = range.start;
        let mut at = range.start;
        while let Some(off) = text[at..range.end].find('&') {
            let amp = at + off;
            let Some((decoded, len)) = decode_entity(&text[amp..range.end]) else {
                at = amp + 1;
                continue;
            };
            self.plain(plain_start..amp, collapse);
            if collapse && decoded.chars().all(char::is_whitespace) {
                self.b.space();
            } else {
                self.b.decoded(&decoded, self.src, amp..amp + len);
            }
            at = amp + len;
            plain_start = at;
        }
        self.plain(plain_start..range.end, collapse);
    }

    fn plain(&mut self, range: Range<usize>, collapse: bool) {
        if collapse {
            self.b.collapsed(self.src, range);
        } else {
            self.b.text(self.src, range);
        }
    }
}

/// Decodes the entity at the start of `s` (which starts with `&`): the text and its length.
pub(crate) fn decode_entity(s: &str) -> Option<(String, usize)> {
    let semi = s.as_bytes().iter().take(12).position(|&b| b == b';')?;
    let body = &s[1..semi];
    let decoded = if let Some(num) = body.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse::<u32>().ok()?,
        };
        char::from_u32(code)
            .filter(|c| *c != '\0')
            .unwrap_or('\u{fffd}')
            .to_string()
    } else {
        named_entity(body)?.to_string()
    };
    Some((decoded, semi + 1))
}

fn named_entity(name: &str) -> Option<&'static str> {
    Some(match name {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        "nbsp" | "ensp" | "emsp" | "thinsp" => " ",
        "ndash" => "\u{2013}",
        "mdash" => "\u{2014}",
        "hellip" => "\u{2026}",
        "lsquo" => "\u{2018}",
        "rsquo" => "\u{2019}",
        "ldquo" => "\u{201c}",
        "rdquo" => "\u{201d}",
        "laquo" => "\u{ab}",
        "raquo" => "\u{bb}",
        "copy" => "\u{a9}",
        "reg" => "\u{ae}",
        "trade" => "\u{2122}",
        "middot" => "\u{b7}",
        "bull" => "\u{2022}",
        "times" => "\u{d7}",
        "divide" => "\u{f7}",
        "deg" => "\u{b0}",
        "plusmn" => "\u{b1}",
        "euro" => "\u{20ac}",
        "pound" => "\u{a3}",
        "yen" => "\u{a5}",
        "cent" => "\u{a2}",
        "sect" => "\u{a7}",
        "para" => "\u{b6}",
        "larr" => "\u{2190}",
        "rarr" => "\u{2192}",
        "uarr" => "\u{2191}",
        "darr" => "\u{2193}",
        "harr" => "\u{2194}",
        "le" => "\u{2264}",
        "ge" => "\u{2265}",
        "ne" => "\u{2260}",
        "check" => "\u{2713}",
        "eacute" => "\u{e9}",
        "egrave" => "\u{e8}",
        "agrave" => "\u{e0}",
        "aacute" => "\u{e1}",
        "ccedil" => "\u{e7}",
        "auml" => "\u{e4}",
        "ouml" => "\u{f6}",
        "uuml" => "\u{fc}",
        "szlig" => "\u{df}",
        "shy" | "zwnj" | "zwj" => "",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render_ok(text: &str) -> Vec<vigil_core::Section> {
        let mut b = SectionBuilder::new();
        render(&Source::file(text, 0), &mut b, "t.html", 256).unwrap();
        b.finish()
    }

    #[test]
    fn blocks_tables_and_entities() {
        let html = "<h1>Doc</h1><p>Tom &amp; <b>Jerry</b>\n  run</p><table><tr><th>A</th><th>B</th></tr>\
                    <tr><td><p>1</p></td><td>2&nbsp;3</td></tr></table><script>x()</script><ul><li>one<li>two</ul>";
        let s = render_ok(html);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].heading_path, ["Doc"]);
        assert_eq!(s[0].text, "Doc\nTom & Jerry run\nA | B\n1 | 2 3\none\ntwo");
        let at = s[0].text.find("Jerry").unwrap();
        assert_eq!(&html[s[0].original_range(at..at + 5)], "Jerry");
        let amp = s[0].text.find('&').unwrap();
        assert_eq!(&html[s[0].original_range(amp..amp + 1)], "&amp;");
    }

    #[test]
    fn confluence_macros_and_links() {
        let xhtml = r#"<ac:structured-macro ac:name="info"><ac:parameter ac:name="title">Heads up</ac:parameter><ac:parameter ac:name="icon">true</ac:parameter><ac:rich-text-body><p>Read this.</p></ac:rich-text-body></ac:structured-macro><p>See <ac:link><ri:page ri:content-title="Runbook &amp; Ops" /></ac:link> and <ac:link><ri:page ri:content-title="X" /><ac:plain-text-link-body><![CDATA[the guide]]></ac:plain-text-link-body></ac:link> by <ac:link><ri:user ri:account-id="abc" /></ac:link>.</p><ac:structured-macro ac:name="code"><ac:parameter ac:name="language">json</ac:parameter><ac:plain-text-body><![CDATA[{"tls": false,
  "port": 80}]]></ac:plain-text-body></ac:structured-macro>"#;
        let s = render_ok(xhtml);
        let text = &s[0].text;
        assert!(
            text.starts_with("Heads up\nRead this.\nSee Runbook & Ops and the guide by ."),
            "{text}"
        );
        assert!(text.contains("{\"tls\": false,\n  \"port\": 80}"));
        assert!(!text.contains("json") && !text.contains("true"));
        let at = text.find("Runbook").unwrap();
        assert!(xhtml[s[0].original_range(at..at + 7)].contains("Runbook"));
    }

    #[test]
    fn entities() {
        assert_eq!(decode_entity("&#233;x"), Some(("é".to_string(), 6)));
        assert_eq!(decode_entity("&#x41;"), Some(("A".to_string(), 6)));
        assert_eq!(decode_entity("&bogus;"), None);
        assert_eq!(decode_entity("& x"), None);
    }

    #[test]
    fn depth_limit_and_stray_tags() {
        let deep = "<div>".repeat(1000) + "x";
        let mut b = SectionBuilder::new();
        let err = render(&Source::file(&deep, 0), &mut b, "t", 256).unwrap_err();
        assert!(matches!(err, Error::TooDeep { limit: 256, .. }));
        let s = render_ok("</p>a < b <p>c</span></p>");
        assert_eq!(s[0].text, "a < b\nc");
    }
}
