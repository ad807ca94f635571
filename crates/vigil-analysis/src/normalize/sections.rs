//! Section building: text accumulates with a map back to the original file, and headings split
//! it into sections. Every format's renderer writes through [`SectionBuilder`].

use std::ops::Range;

use vigil_core::{Section, Segment};

/// Text a renderer reads (the file itself, or a decoded JSON string) with where each of its bytes
/// came from in the original file.
#[derive(Debug, Clone)]
pub(crate) struct Source<'a> {
    /// The text to render.
    pub text: &'a str,
    pieces: Vec<Segment>,
    /// Original offset used when the text is empty.
    anchor: usize,
}

impl<'a> Source<'a> {
    /// A slice of the original file starting at byte `base`.
    pub fn file(text: &'a str, base: usize) -> Source<'a> {
        let piece = Segment {
            text_start: 0,
            text_len: text.len(),
            orig_start: base,
            orig_end: base + text.len(),
            verbatim: true,
        };
        Source {
            text,
            pieces: vec![piece],
            anchor: base,
        }
    }

    /// Decoded text whose pieces (in text order, covering it) say where it came from.
    pub fn decoded(text: &'a str, pieces: Vec<Segment>, anchor: usize) -> Source<'a> {
        Source {
            text,
            pieces,
            anchor,
        }
    }

    fn first_piece(&self, at: usize) -> usize {
        self.pieces
            .partition_point(|p| p.text_start + p.text_len <= at)
    }

    /// The original byte range behind a range of this text, as one span.
    pub fn span(&self, range: Range<usize>) -> Range<usize> {
        let mut start = None;
        let mut end = self.anchor;
        self.for_each_piece(range, |_, orig, _| {
            start.get_or_insert(orig.start);
            end = orig.end;
        });
        match start {
            Some(start) => start..end.max(start),
            None => {
                let at = self
                    .pieces
                    .get(self.first_piece(0))
                    .map_or(self.anchor, |p| p.orig_start);
                at..at
            }
        }
    }

    /// Calls `f(text_range, orig_range, verbatim)` for each piece overlapping `range`.
    fn for_each_piece(
        &self,
        range: Range<usize>,
        mut f: impl FnMut(Range<usize>, Range<usize>, bool),
    ) {
        let mut idx = self.first_piece(range.start);
        while let Some(p) = self.pieces.get(idx) {
            if p.text_start >= range.end {
                break;
            }
            let from = range.start.max(p.text_start);
            let to = range.end.min(p.text_start + p.text_len);
            if from < to {
                let orig = if p.verbatim {
                    p.orig_start + (from - p.text_start)..p.orig_start + (to - p.text_start)
                } else {
                    p.orig_start..p.orig_end
                };
                f(from..to, orig, p.verbatim);
            }
            idx += 1;
        }
    }
}

/// A separator owed before the next text; stronger ones win.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Pending {
    None,
    Space,
    Cell,
    Line,
}

/// Accumulates text into heading-delimited sections.
#[derive(Debug, Default)]
pub(crate) struct SectionBuilder {
    done: Vec<Section>,
    current: Section,
    path: Vec<(u8, String)>,
    pending: Option<PendingSep>,
    heading: Option<u8>,
    cell_depth: usize,
    headings: Vec<(u8, String)>,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, Copy)]
struct PendingSep(Pending);

impl SectionBuilder {
    /// An empty builder.
    pub fn new() -> SectionBuilder {
        SectionBuilder::default()
    }

    fn owe(&mut self, sep: Pending) {
        let now = self.pending.map_or(Pending::None, |p| p.0);
        if sep > now {
            self.pending = Some(PendingSep(sep));
        }
    }

    /// Words that follow are separated by a space.
    pub fn space(&mut self) {
        self.owe(Pending::Space);
    }

    /// What follows starts a new line (a space inside a table cell).
    pub fn newline(&mut self) {
        if self.cell_depth > 0 || self.heading.is_some() {
            self.owe(Pending::Space);
        } else {
            self.owe(Pending::Line);
        }
    }

    /// What follows is the next cell of a table row.
    pub fn cell_separator(&mut self) {
        self.owe(Pending::Cell);
    }

    /// Enters a table cell: line breaks inside become spaces.
    pub fn enter_cell(&mut self) {
        self.cell_depth += 1;
    }

    /// Leaves a table cell.
    pub fn leave_cell(&mut self) {
        self.cell_depth = self.cell_depth.saturating_sub(1);
    }

    fn prepare(&mut self) {
        let pending = self.pending.take().map_or(Pending::None, |p| p.0);
        let text = &mut self.current.text;
        if text.is_empty() {
            return;
        }
        match pending {
            Pending::None => {}
            Pending::Space if !text.ends_with(char::is_whitespace) => text.push(' '),
            Pending::Space => {}
            Pending::Cell => text.push_str(" | "),
            Pending::Line if !text.ends_with('\n') => text.push('\n'),
            Pending::Line => {}
        }
    }

    fn push_segment(&mut self, text: &str, orig: Range<usize>, verbatim: bool) {
        let text_start = self.current.text.len();
        self.current.text.push_str(text);
        let segment = Segment {
            text_start,
            text_len: text.len(),
            orig_start: orig.start,
            orig_end: orig.end,
            verbatim,
        };
        if let Some(last) = self.segments.last_mut() {
            if verbatim
                && last.verbatim
                && last.text_start + last.text_len == text_start
                && last.orig_end == orig.start
            {
                last.text_len += text.len();
                last.orig_end = orig.end;
                return;
            }
        }
        self.segments.push(segment);
    }

    /// Appends `src.text[range]` as it is.
    pub fn text(&mut self, src: &Source<'_>, range: Range<usize>) {
        if range.is_empty() {
            return;
        }
        self.prepare();
        let mut parts = Vec::new();
        src.for_each_piece(range, |text, orig, verbatim| {
            parts.push((text, orig, verbatim))
        });
        for (text, orig, verbatim) in parts {
            self.push_segment(&src.text[text], orig, verbatim);
        }
    }

    /// Appends `src.text[range]` with each run of whitespace collapsed to one space.
    pub fn collapsed(&mut self, src: &Source<'_>, range: Range<usize>) {
        let bytes = src.text.as_bytes();
        let mut run: Option<usize> = None;
        let mut i = range.start;
        while i < range.end {
            if bytes[i].is_ascii_whitespace() {
                let mut j = i + 1;
                while j < range.end && bytes[j].is_ascii_whitespace() {
                    j += 1;
                }
                let inner_single_space =
                    j == i + 1 && bytes[i] == b' ' && j < range.end && run.is_some();
                if !inner_single_space {
                    if let Some(start) = run.take() {
                        self.text(src, start..i);
                    }
                    self.space();
                }
                i = j;
            } else {
                run.get_or_insert(i);
                i += 1;
            }
        }
        if let Some(start) = run {
            self.text(src, start..range.end);
        }
    }

    /// Appends `decoded`, which stands for `src.text[range]` (an entity, a macro's title, ...).
    pub fn decoded(&mut self, decoded: &str, src: &Source<'_>, range: Range<usize>) {
        if decoded.is_empty() {
            return;
        }
        self.prepare();
        let orig = src.span(range);
        self.push_segment(decoded, orig, false);
    }

    /// Ends the current section (kept when it has text) and starts an empty one.
    pub fn finish_section(&mut self) {
        let heading_path = self.path.iter().map(|(_, h)| h.clone()).collect();
        let mut done = std::mem::replace(
            &mut self.current,
            Section {
                heading_path,
                ..Section::default()
            },
        );
        for segment in self.segments.drain(..) {
            done.map.push(segment);
        }
        self.pending = None;
        if !done.text.trim().is_empty() {
            self.done.push(done);
        }
    }

    /// Starts a section under a label that is not a heading of the text (a JSON field).
    pub fn labelled_section(&mut self, label: &str) {
        self.path = vec![(0, label.to_string())];
        self.finish_section();
    }

    /// Starts a heading of `level` (1 outermost); its text follows until [`Self::end_heading`].
    /// Returns false (and does nothing) inside another heading.
    pub fn start_heading(&mut self, level: u8) -> bool {
        if self.heading.is_some() {
            return false;
        }
        self.finish_section();
        self.heading = Some(level.max(1));
        true
    }

    /// Ends the heading started last: the section it opens gets its path.
    pub fn end_heading(&mut self) {
        let Some(level) = self.heading.take() else {
            return;
        };
        let title = self
            .current
            .text
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if title.is_empty() {
            return;
        }
        while self.path.last().is_some_and(|(l, _)| *l >= level) {
            self.path.pop();
        }
        self.path.push((level, title.clone()));
        self.headings.push((level, title));
        self.current.heading_path = self.path.iter().map(|(_, h)| h.clone()).collect();
        self.newline();
    }

    /// Headings seen so far, in order, with their levels.
    pub fn headings(&self) -> &[(u8, String)] {
        &self.headings
    }

    /// The sections built.
    pub fn finish(mut self) -> Vec<Section> {
        self.heading = None;
        self.finish_section();
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapses_whitespace_and_maps_words() {
        let original = "xx  Hello \n  big   world ";
        let src = Source::file(&original[2..], 2);
        let mut b = SectionBuilder::new();
        b.collapsed(&src, 0..src.text.len());
        let sections = b.finish();
        let s = &sections[0];
        assert_eq!(s.text, "Hello big world");
        let at = s.text.find("big world").unwrap();
        let r = s.original_range(at..at + 9);
        assert!(original[r].contains("big"));
    }

    #[test]
    fn headings_build_paths() {
        let text = "Top Intro Sub Body Other";
        let src = Source::file(text, 0);
        let mut b = SectionBuilder::new();
        b.start_heading(1);
        b.text(&src, 0..3);
        b.end_heading();
        b.text(&src, 4..9);
        b.start_heading(2);
        b.text(&src, 10..13);
        b.end_heading();
        b.text(&src, 14..18);
        b.start_heading(1);
        b.text(&src, 19..24);
        b.end_heading();
        let sections = b.finish();
        let paths: Vec<_> = sections.iter().map(|s| s.heading_path.join("/")).collect();
        assert_eq!(paths, ["Top", "Top/Sub", "Other"]);
        assert_eq!(sections[0].text, "Top\nIntro");
    }

    #[test]
    fn decoded_pieces_compose() {
        // "a\"b" in JSON: the text a"b with the quote from an escape.
        let pieces = vec![
            Segment {
                text_start: 0,
                text_len: 1,
                orig_start: 1,
                orig_end: 2,
                verbatim: true,
            },
            Segment {
                text_start: 1,
                text_len: 1,
                orig_start: 2,
                orig_end: 4,
                verbatim: false,
            },
            Segment {
                text_start: 2,
                text_len: 1,
                orig_start: 4,
                orig_end: 5,
                verbatim: true,
            },
        ];
        let src = Source::decoded("a\"b", pieces, 0);
        let mut b = SectionBuilder::new();
        b.text(&src, 0..3);
        let s = &b.finish()[0];
        assert_eq!(s.original_range(0..3), 1..5);
        assert_eq!(s.original_range(2..3), 4..5);
    }
}
