//! Artifacts (a design document, a ticket, a page) after normalization: plain-text sections that
//! remember where each byte of their text came from in the original file.

use serde::{Deserialize, Serialize};
use std::ops::Range;

/// The shape an artifact arrived in, detected from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceFormat {
    /// A Markdown (or plain text) design document.
    Markdown,
    /// An HTML page.
    Html,
    /// A Confluence page body in storage format (XHTML with `ac:`/`ri:` macros).
    ConfluenceStorage,
    /// A Jira issue from REST v3, description in Atlassian Document Format.
    JiraV3,
    /// A Jira issue from REST v2, description in wiki markup.
    JiraV2,
    /// A GitHub issue (Markdown body).
    GithubIssue,
    /// A GitHub pull request (Markdown body).
    GithubPullRequest,
    /// An Azure DevOps work item (HTML description).
    AzureDevopsWorkItem,
    /// A Linear issue (Markdown description).
    LinearIssue,
}

impl SourceFormat {
    /// Stable snake_case name, as used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceFormat::Markdown => "markdown",
            SourceFormat::Html => "html",
            SourceFormat::ConfluenceStorage => "confluence_storage",
            SourceFormat::JiraV3 => "jira_v3",
            SourceFormat::JiraV2 => "jira_v2",
            SourceFormat::GithubIssue => "github_issue",
            SourceFormat::GithubPullRequest => "github_pull_request",
            SourceFormat::AzureDevopsWorkItem => "azure_devops_work_item",
            SourceFormat::LinearIssue => "linear_issue",
        }
    }
}

/// Metadata a planning tool attaches to an artifact; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArtifactMeta {
    /// External key such as `PROJ-123`, `owner/repo#57` or `ENG-42`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Link back to the artifact in its tool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Project or repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Owning team, area path or component.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Issue type (Epic, Story, Feature, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_type: Option<String>,
    /// Status or state in the tool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Priority as the tool names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// Due date (ISO 8601 date) when the artifact has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_date: Option<String>,
    /// Sprint or iteration name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sprint: Option<String>,
    /// Labels or tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Last update time in the tool (ISO 8601).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
}

/// One contiguous piece of a section's text and the bytes of the original it came from.
///
/// A verbatim segment is a byte-for-byte copy of `orig`, so offsets inside it map exactly; a
/// decoded one (an entity, an escape, a separator the normalizer added) maps to its whole range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// Start of the segment in the section text.
    pub text_start: usize,
    /// Length of the segment in the section text, in bytes.
    pub text_len: usize,
    /// Start of the source bytes in the original file.
    pub orig_start: usize,
    /// End (exclusive) of the source bytes in the original file.
    pub orig_end: usize,
    /// Whether the text is an exact copy of the source bytes.
    pub verbatim: bool,
}

/// Maps byte offsets in a section's text back to byte offsets in the original file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetMap {
    segments: Vec<Segment>,
}

impl OffsetMap {
    /// Records a segment; segments must be pushed in text order.
    pub fn push(&mut self, segment: Segment) {
        debug_assert!(self
            .segments
            .last()
            .is_none_or(|last| last.text_start + last.text_len <= segment.text_start));
        self.segments.push(segment);
    }

    /// The recorded segments, in text order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The original byte range behind the text range `text`.
    pub fn to_original(&self, text: Range<usize>) -> Range<usize> {
        let start = self.map_point(text.start, false);
        let end = self.map_point(text.end, true).max(start);
        start..end
    }

    fn map_point(&self, at: usize, is_end: bool) -> usize {
        if self.segments.is_empty() {
            return 0;
        }
        let idx = self
            .segments
            .partition_point(|s| s.text_start + s.text_len <= at);
        let idx = if is_end && idx > 0 {
            // An end offset that falls exactly on a segment end belongs to that segment.
            let prev = &self.segments[idx - 1];
            if prev.text_start + prev.text_len == at {
                idx - 1
            } else {
                idx
            }
        } else {
            idx
        };
        let Some(seg) = self.segments.get(idx) else {
            return self.segments.last().map_or(0, |s| s.orig_end);
        };
        if at <= seg.text_start {
            return seg.orig_start;
        }
        if seg.verbatim {
            (seg.orig_start + (at - seg.text_start)).min(seg.orig_end)
        } else if is_end {
            seg.orig_end
        } else {
            seg.orig_start
        }
    }
}

/// A heading-delimited part of an artifact, as plain text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Section {
    /// Headings above this section, outermost first.
    pub heading_path: Vec<String>,
    /// Plain text: paragraphs and list items separated by newlines, table cells by ` | `.
    pub text: String,
    /// Where the text came from in the original file.
    #[serde(skip)]
    pub map: OffsetMap,
}

impl Section {
    /// The original byte range behind a range of this section's text.
    pub fn original_range(&self, text: Range<usize>) -> Range<usize> {
        self.map.to_original(text)
    }
}

/// A normalized planning artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    /// Stable id: the tool's key when there is one, else derived from the file path.
    pub id: String,
    /// Title or summary.
    pub title: String,
    /// Format it was read from.
    pub format: SourceFormat,
    /// Path or URL it was read from.
    pub origin: String,
    /// Metadata from the tool.
    pub meta: ArtifactMeta,
    /// The text, split by headings.
    pub sections: Vec<Section>,
}

impl Artifact {
    /// Number of words over all sections, for throughput figures.
    pub fn word_count(&self) -> usize {
        self.sections
            .iter()
            .map(|s| s.text.split_whitespace().count())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> OffsetMap {
        let mut m = OffsetMap::default();
        // "Hello" copied from 10..15, then "&" decoded from "&amp;" at 15..20, then "World" 20..25.
        m.push(Segment {
            text_start: 0,
            text_len: 5,
            orig_start: 10,
            orig_end: 15,
            verbatim: true,
        });
        m.push(Segment {
            text_start: 5,
            text_len: 1,
            orig_start: 15,
            orig_end: 20,
            verbatim: false,
        });
        m.push(Segment {
            text_start: 6,
            text_len: 5,
            orig_start: 20,
            orig_end: 25,
            verbatim: true,
        });
        m
    }

    #[test]
    fn verbatim_ranges_map_exactly() {
        assert_eq!(map().to_original(1..4), 11..14);
        assert_eq!(map().to_original(6..11), 20..25);
    }

    #[test]
    fn decoded_ranges_cover_their_source() {
        assert_eq!(map().to_original(5..6), 15..20);
        assert_eq!(map().to_original(3..8), 13..22);
    }

    #[test]
    fn out_of_range_clamps_to_end() {
        assert_eq!(map().to_original(11..40), 25..25);
        assert_eq!(OffsetMap::default().to_original(0..3), 0..0);
    }
}
