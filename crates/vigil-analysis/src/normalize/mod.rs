//! Normalization: detects the format of an input from its content and turns it into artifacts
//! made of sections whose text maps back to byte offsets in the original.
//!
//! JSON (first non-blank byte `{` or `[`) is read by shape: Jira, GitHub, Azure DevOps, Linear.
//! Markup is Confluence storage when it holds `ac:`/`ri:` elements, else HTML. Anything else is
//! Markdown, plain text included.

mod adf;
mod html;
mod json;
mod markdown;
mod sections;
mod tickets;
mod wiki;

use std::path::Path;

use vigil_core::{Artifact, ArtifactMeta, SourceFormat};

use crate::error::{Error, Result};
use sections::{SectionBuilder, Source};

/// Limits on untrusted input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest input accepted, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting accepted (JSON, HTML, ADF).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bytes: 32 * 1024 * 1024,
            max_depth: 256,
        }
    }
}

/// Detects the format of `bytes` and normalizes them into one artifact (or several, for a Jira
/// search result).
pub fn normalize(origin: &str, bytes: &[u8], limits: &Limits) -> Result<Vec<Artifact>> {
    if bytes.len() > limits.max_bytes {
        return Err(Error::TooLarge {
            origin: origin.to_string(),
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| Error::InvalidUtf8 {
        origin: origin.to_string(),
        offset: e.valid_up_to(),
    })?;
    if let Some(offset) = text.find('\0') {
        return Err(Error::Binary {
            origin: origin.to_string(),
            offset,
        });
    }
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    if body.trim_start().is_empty() {
        return Err(Error::Empty {
            origin: origin.to_string(),
        });
    }

    if looks_like_json(body) {
        return tickets::normalize(origin, text, limits);
    }
    document(origin, body, text.len() - body.len(), limits).map(|a| vec![a])
}

/// Whether text is meant as JSON: an object opening with a key or closing at once, or an array
/// opening with a value. A Markdown document may start with `[link](...)` or `{placeholder}`.
fn looks_like_json(body: &str) -> bool {
    let mut rest = body.trim_start().chars();
    let open = rest.next();
    let next = rest.as_str().trim_start().chars().next();
    match (open, next) {
        (Some('{'), Some(c)) => matches!(c, '"' | '}'),
        (Some('['), Some(c)) => {
            matches!(c, '{' | '[' | '"' | ']' | '-' | '0'..='9' | 't' | 'f' | 'n')
        }
        (Some('{' | '['), None) => true,
        _ => false,
    }
}

/// A Markdown, HTML or Confluence document starting at byte `base` of the file.
fn document(origin: &str, body: &str, base: usize, limits: &Limits) -> Result<Artifact> {
    let src = Source::file(body, base);
    let mut b = SectionBuilder::new();
    let format = if html::looks_like_markup(body) {
        html::render(&src, &mut b, origin, limits.max_depth)?;
        if html::is_confluence(body) {
            SourceFormat::ConfluenceStorage
        } else {
            SourceFormat::Html
        }
    } else {
        markdown::render(&src, &mut b);
        SourceFormat::Markdown
    };

    let headings = b.headings();
    let title = headings
        .iter()
        .find(|(level, _)| *level == 1)
        .or(headings.first())
        .map(|(_, h)| h.clone())
        .unwrap_or_else(|| file_stem(origin));
    let sections = b.finish();
    if sections.is_empty() {
        return Err(Error::NoText {
            origin: origin.to_string(),
        });
    }
    Ok(Artifact {
        id: file_stem(origin),
        title,
        format,
        origin: origin.to_string(),
        meta: ArtifactMeta::default(),
        sections,
    })
}

/// The file name of `origin` without its extension (the whole origin when it has none).
fn file_stem(origin: &str) -> String {
    Path::new(origin)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| origin.to_string())
}

#[cfg(test)]
mod detection_tests {
    use super::*;

    #[test]
    fn markdown_opening_with_a_link_or_brace_is_not_json() {
        assert!(looks_like_json("  {\"key\": 1}"));
        assert!(looks_like_json("[{\"id\": 2}]"));
        assert!(looks_like_json("[1, 2]"));
        assert!(looks_like_json("{"));
        assert!(!looks_like_json(
            "[Design doc](https://example.com) for the checkout"
        ));
        assert!(!looks_like_json("{placeholder} intro text"));
        let doc =
            b"[Overview](#overview)\n\n# Checkout\n\nThe web app stores orders in the database.\n";
        let got = normalize("doc.md", doc, &Limits::default()).unwrap();
        assert_eq!(got[0].format, SourceFormat::Markdown);
    }
}
