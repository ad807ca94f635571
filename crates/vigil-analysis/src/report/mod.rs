//! Reports: a list of reviews rendered for a terminal (table), for machines (JSON, SARIF), for a
//! ticket (Markdown) or as a diagram (Mermaid, Graphviz DOT, SVG drawn in-process).

pub mod dot;
pub mod json;
pub mod markdown;
pub mod mermaid;
pub mod sarif;
pub mod svg;
pub mod table;

use std::fmt;
use std::str::FromStr;

use vigil_core::{Finding, FrameworkRefs, Review, Severity};

/// The shapes a report can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    /// Fixed-width findings table for a terminal.
    Table,
    /// One pretty JSON object per review, a stream `jq` reads.
    Json,
    /// A report to paste into a ticket.
    Markdown,
    /// SARIF 2.1.0 for code-scanning dashboards.
    Sarif,
    /// The data-flow diagrams as Mermaid flowcharts.
    Mermaid,
    /// The data-flow diagrams as Graphviz digraphs.
    Dot,
    /// The data-flow diagrams drawn as SVG.
    Svg,
}

impl OutputFormat {
    /// Every format, in the order help texts list them.
    pub const ALL: [OutputFormat; 7] = [
        OutputFormat::Table,
        OutputFormat::Json,
        OutputFormat::Markdown,
        OutputFormat::Sarif,
        OutputFormat::Mermaid,
        OutputFormat::Dot,
        OutputFormat::Svg,
    ];

    /// Stable lower-case name, as given on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Table => "table",
            OutputFormat::Json => "json",
            OutputFormat::Markdown => "markdown",
            OutputFormat::Sarif => "sarif",
            OutputFormat::Mermaid => "mermaid",
            OutputFormat::Dot => "dot",
            OutputFormat::Svg => "svg",
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A format name that is not one of [`OutputFormat::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown output format `{0}` (expected one of table, json, markdown, sarif, mermaid, dot, svg)"
)]
pub struct UnknownFormat(pub String);

impl FromStr for OutputFormat {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, UnknownFormat> {
        let wanted = s.trim().to_ascii_lowercase();
        let wanted = match wanted.as_str() {
            "md" => "markdown",
            "graphviz" => "dot",
            other => other,
        };
        OutputFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == wanted)
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

/// Renders the reviews in one format. Table output has no colours; see [`table::render_table`].
pub fn render(reviews: &[Review], format: OutputFormat) -> String {
    match format {
        OutputFormat::Table => table::render_table(reviews, false),
        OutputFormat::Json => json::render_json(reviews),
        OutputFormat::Markdown => markdown::render_markdown(reviews),
        OutputFormat::Sarif => sarif::render_sarif(reviews),
        OutputFormat::Mermaid => mermaid::render_mermaid(reviews),
        OutputFormat::Dot => dot::render_dot(reviews),
        OutputFormat::Svg => svg::render_svg(reviews),
    }
}

/// Severities from the most to the least severe.
pub(crate) const SEVERITIES_DESC: [Severity; 5] = [
    Severity::Critical,
    Severity::High,
    Severity::Medium,
    Severity::Low,
    Severity::Info,
];

/// The review's findings, highest score first; ties keep the review's order.
pub(crate) fn ranked(review: &Review) -> Vec<&Finding> {
    let mut findings: Vec<&Finding> = review.findings.iter().collect();
    findings.sort_by(|a, b| b.score.value.total_cmp(&a.score.value));
    findings
}

/// How many findings fall in each severity, most severe first.
pub(crate) fn severity_counts(review: &Review) -> [(Severity, usize); 5] {
    SEVERITIES_DESC.map(|s| {
        (
            s,
            review
                .findings
                .iter()
                .filter(|f| f.score.severity == s)
                .count(),
        )
    })
}

/// "5 findings: 1 critical, 2 high, 1 medium, 1 low, 0 info".
pub(crate) fn summary_line(review: &Review) -> String {
    let n = review.findings.len();
    let counts = severity_counts(review)
        .iter()
        .map(|(s, c)| format!("{c} {s}"))
        .collect::<Vec<_>>()
        .join(", ");
    let noun = if n == 1 { "finding" } else { "findings" };
    format!("{n} {noun}: {counts}")
}

/// Every framework reference of a finding as display labels, in a fixed order:
/// CWE, CAPEC, ATT&CK, OWASP, NIST CSF, PCI DSS, HIPAA, SOC 2.
pub(crate) fn mapping_labels(finding: &Finding) -> Vec<String> {
    let FrameworkRefs {
        owasp_2021,
        owasp_2025,
        nist_csf,
        pci_dss,
        hipaa,
        soc2,
    } = &finding.frameworks;
    let mut labels = Vec::new();
    labels.extend(finding.cwe.iter().map(|id| format!("CWE-{id}")));
    labels.extend(finding.capec.iter().map(|id| format!("CAPEC-{id}")));
    labels.extend(finding.attack.iter().map(|id| format!("ATT&CK {id}")));
    labels.extend(
        owasp_2021
            .iter()
            .chain(owasp_2025)
            .map(|id| format!("OWASP {id}")),
    );
    labels.extend(nist_csf.iter().map(|id| format!("NIST CSF {id}")));
    labels.extend(pci_dss.iter().map(|id| format!("PCI DSS {id}")));
    labels.extend(hipaa.iter().map(|id| format!("HIPAA {id}")));
    labels.extend(soc2.iter().map(|id| format!("SOC 2 {id}")));
    labels
}

/// A score with one decimal, as every report prints it.
pub(crate) fn score_text(value: f64) -> String {
    format!("{value:.1}")
}
