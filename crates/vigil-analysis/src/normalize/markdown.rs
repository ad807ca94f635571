//! Markdown (and plain text) to sections, with pulldown-cmark's offsets for exact mapping.

use std::ops::Range;

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use super::sections::{SectionBuilder, Source};

/// Renders Markdown `src` into `b`.
pub(crate) fn render(src: &Source<'_>, b: &mut SectionBuilder) {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut in_code = false;
    let mut cells = 0usize;
    for (event, range) in Parser::new_ext(src.text, options).into_offset_iter() {
        match event {
            Event::Start(tag) => match tag {
                Tag::Heading { level, .. } => {
                    b.start_heading(heading_level(level));
                }
                Tag::Paragraph | Tag::Item | Tag::BlockQuote(_) | Tag::List(_) => b.newline(),
                Tag::CodeBlock(_) => {
                    b.newline();
                    in_code = true;
                }
                Tag::TableHead | Tag::TableRow => {
                    b.newline();
                    cells = 0;
                }
                Tag::TableCell => {
                    if cells > 0 {
                        b.cell_separator();
                    }
                    cells += 1;
                    b.enter_cell();
                }
                _ => {}
            },
            Event::End(tag) => match tag {
                TagEnd::Heading(_) => b.end_heading(),
                TagEnd::CodeBlock => {
                    in_code = false;
                    b.newline();
                }
                TagEnd::TableCell => b.leave_cell(),
                TagEnd::Paragraph
                | TagEnd::Item
                | TagEnd::BlockQuote(_)
                | TagEnd::List(_)
                | TagEnd::TableHead
                | TagEnd::TableRow => b.newline(),
                _ => {}
            },
            Event::Text(text) if in_code => push(b, src, &text, range, false),
            Event::Text(text) | Event::Code(text) => push(b, src, &text, range, true),
            Event::SoftBreak => b.space(),
            Event::HardBreak | Event::Rule => b.newline(),
            // TODO(markdown-html): raw HTML inside Markdown (`<details>`, `<br>`) is dropped, and
            // with it any text on the same line as its tags; render it through the HTML tokenizer.
            _ => {}
        }
    }
}

/// Pushes event text: verbatim where it occurs in its source range, decoded otherwise.
fn push(b: &mut SectionBuilder, src: &Source<'_>, text: &str, range: Range<usize>, collapse: bool) {
    let slice = &src.text[range.clone()];
    let entity = slice != text && slice.starts_with('&') && slice.ends_with(';');
    match slice.find(text).filter(|_| !entity) {
        Some(at) => {
            let start = range.start + at;
            if collapse {
                b.collapsed(src, start..start + text.len());
            } else {
                b.text(src, start..start + text.len());
            }
        }
        None => b.decoded(text, src, range),
    }
}

fn heading_level(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
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
    fn splits_by_heading_and_keeps_lead_ins() {
        let doc = "# Title\n\nIntro.\n\n## Users\n\n- **Browser.** Employees use it &amp; more\n";
        let s = sections(doc);
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].heading_path, ["Title", "Users"]);
        assert!(
            s[1].text.contains("Browser. Employees use it & more"),
            "{}",
            s[1].text
        );
        let at = s[1].text.find("Employees use").unwrap();
        let r = s[1].original_range(at..at + 13);
        assert_eq!(&doc[r], "Employees use");
        let amp = s[1].text.find('&').unwrap();
        assert_eq!(&doc[s[1].original_range(amp..amp + 1)], "&amp;");
    }

    #[test]
    fn tables_and_code() {
        let doc = "| A | B |\n|---|---|\n| 1 | 2 |\n\n```json\n{\"k\": 1}\n```\n";
        let s = sections(doc);
        assert_eq!(s[0].text, "A | B\n1 | 2\n{\"k\": 1}\n");
    }
}
