//! Evaluation: scores the engine's reviews against the threats a human reviewer found, case by
//! case, as `shared/eval/FORMAT.md` ("Scoring") defines it.
//!
//! A case is a folder with one artifact (`artifact.md`, `artifact.json` or `artifact.html`) and
//! a `gold.toml`. The scorer matches names by words (see [`names_match`]), then counts element
//! recall, category recall (L1), element-and-category recall (L2, the headline figure), CWE
//! agreement and noise. Totals are micro-averaged; the macro average of L2 is reported beside.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vigil_core::{Finding, Review, ThreatCategory};

use crate::error::{Error, Result};
use crate::pipeline::Engine;

/// The artifact file names a case may hold; exactly one must be present.
pub const ARTIFACT_FILES: [&str; 3] = ["artifact.md", "artifact.json", "artifact.html"];

/// Words that never make two names match on their own.
pub const GENERIC_WORDS: [&str; 19] = [
    "the",
    "a",
    "an",
    "of",
    "api",
    "service",
    "services",
    "server",
    "database",
    "db",
    "app",
    "application",
    "client",
    "system",
    "store",
    "data",
    "web",
    "backend",
    "frontend",
];

// ---------------------------------------------------------------------------------------------
// gold.toml
// ---------------------------------------------------------------------------------------------

/// A case's `gold.toml`: what a human reviewer found. Unknown keys are ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Gold {
    /// About the case.
    #[serde(default)]
    pub case: GoldCase,
    /// Elements of the reviewer's data-flow diagram.
    #[serde(default)]
    pub element: Vec<GoldElement>,
    /// Flows of the reviewer's data-flow diagram.
    #[serde(default)]
    pub flow: Vec<GoldFlow>,
    /// Threats the reviewer found.
    #[serde(default)]
    pub threat: Vec<GoldThreat>,
}

/// The `[case]` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GoldCase {
    /// Title of the case.
    #[serde(default)]
    pub title: String,
    /// Domain (payments, identity, health, ...).
    #[serde(default)]
    pub domain: String,
    /// Artifact kind (design-doc, jira-issue, github-issue, ...).
    #[serde(default)]
    pub kind: String,
    /// Where the case comes from.
    #[serde(default)]
    pub source: String,
}

/// One `[[element]]`: a node of the reviewer's diagram and the names the artifact uses for it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GoldElement {
    /// Element id, referenced by flows and threats.
    pub id: String,
    /// process, data_store or external_entity.
    #[serde(default)]
    pub kind: String,
    /// Names the artifact uses for it.
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// One `[[flow]]` of the reviewer's diagram.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GoldFlow {
    /// Source element id.
    pub from: String,
    /// Target element id.
    pub to: String,
    /// Whether the flow crosses a trust boundary.
    #[serde(default)]
    pub crosses_boundary: bool,
}

/// One `[[threat]]` the reviewer found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoldThreat {
    /// Threat id (`T1`, ...).
    pub id: String,
    /// STRIDE or LINDDUN category.
    pub category: ThreatCategory,
    /// Element ids it is about; a threat on a flow names both ends.
    #[serde(default)]
    pub elements: Vec<String>,
    /// CWE ids; any of them counts.
    #[serde(default)]
    pub cwe: Vec<u32>,
    /// CAPEC ids.
    #[serde(default)]
    pub capec: Vec<u32>,
    /// ATT&CK technique ids.
    #[serde(default)]
    pub attack: Vec<String>,
    /// What the threat is, in a sentence.
    #[serde(default)]
    pub summary: String,
}

impl Gold {
    /// Parses a `gold.toml`; `case` names the case in the error.
    pub fn parse(case: &str, text: &str) -> Result<Gold> {
        toml::from_str(text).map_err(|e| eval_error(case, format!("gold.toml: {e}")))
    }

    /// The names an element id may be written as: its aliases, or the id itself when the
    /// element has none (or is not declared).
    pub fn aliases_of(&self, element_id: &str) -> Vec<String> {
        match self.element.iter().find(|e| e.id == element_id) {
            Some(element) if !element.aliases.is_empty() => element.aliases.clone(),
            _ => vec![element_id.to_owned()],
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Name matching
// ---------------------------------------------------------------------------------------------

/// The words of a name: lower-cased, `->`, `-`, `/` and `_` read as separators, any other
/// punctuation dropped.
pub fn name_words(name: &str) -> BTreeSet<String> {
    let mut cleaned = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() || c.is_whitespace() {
            cleaned.push(c);
        } else if matches!(c, '-' | '>' | '/' | '_') {
            cleaned.push(' ');
        }
    }
    cleaned.split_whitespace().map(str::to_owned).collect()
}

fn is_generic(word: &str) -> bool {
    GENERIC_WORDS.contains(&word)
}

/// Whether two names match: the same words, or one's words all appear in the other and the two
/// share a word that is not generic. An empty name matches nothing.
pub fn names_match(a: &str, b: &str) -> bool {
    words_match(&name_words(a), &name_words(b))
}

fn words_match(a: &BTreeSet<String>, b: &BTreeSet<String>) -> bool {
    if a.is_empty() || b.is_empty() {
        return false;
    }
    if a == b {
        return true;
    }
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    small.is_subset(large) && small.iter().any(|w| !is_generic(w))
}

/// Whether `name` matches any of `aliases`.
pub fn matches_any_alias(name: &str, aliases: &[String]) -> bool {
    let words = name_words(name);
    aliases
        .iter()
        .any(|alias| words_match(&words, &name_words(alias)))
}

// ---------------------------------------------------------------------------------------------
// Reports
// ---------------------------------------------------------------------------------------------

/// The raw counts behind a case's (or the total's) metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalCounts {
    /// Gold elements.
    pub gold_elements: usize,
    /// Gold elements matched by some diagram node name.
    pub matched_elements: usize,
    /// Gold threats.
    pub gold_threats: usize,
    /// Gold threats whose category appears among the findings (L1).
    pub category_matches: usize,
    /// Gold threats matched by a finding of the same category on one of their elements (L2).
    pub element_category_matches: usize,
    /// L2 matches whose gold threat carries CWEs.
    pub cwe_eligible: usize,
    /// Of those, the ones where a matching finding names one of the gold CWEs.
    pub cwe_agreements: usize,
    /// Findings the engine emitted.
    pub findings: usize,
    /// Cases that could not be scored (0 or 1 for a case).
    pub errors: usize,
}

impl EvalCounts {
    fn add(&mut self, other: &EvalCounts) {
        self.gold_elements += other.gold_elements;
        self.matched_elements += other.matched_elements;
        self.gold_threats += other.gold_threats;
        self.category_matches += other.category_matches;
        self.element_category_matches += other.element_category_matches;
        self.cwe_eligible += other.cwe_eligible;
        self.cwe_agreements += other.cwe_agreements;
        self.findings += other.findings;
        self.errors += other.errors;
    }
}

/// Metrics derived from counts; a ratio whose denominator is zero is `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalMetrics {
    /// Matched elements / gold elements.
    pub element_recall: Option<f64>,
    /// L1: category matches / gold threats.
    pub category_recall: Option<f64>,
    /// L2 (headline): element-and-category matches / gold threats.
    pub element_category_recall: Option<f64>,
    /// CWE agreements / L2 matches carrying gold CWEs.
    pub cwe_agreement: Option<f64>,
    /// Findings per gold threat.
    pub noise: Option<f64>,
}

impl EvalMetrics {
    /// The metrics of a set of counts (micro-averaged when the counts are sums).
    pub fn from_counts(c: &EvalCounts) -> EvalMetrics {
        EvalMetrics {
            element_recall: ratio(c.matched_elements, c.gold_elements),
            category_recall: ratio(c.category_matches, c.gold_threats),
            element_category_recall: ratio(c.element_category_matches, c.gold_threats),
            cwe_agreement: ratio(c.cwe_agreements, c.cwe_eligible),
            noise: ratio(c.findings, c.gold_threats),
        }
    }
}

fn ratio(numerator: usize, denominator: usize) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

/// The score of one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseReport {
    /// Case id: the folder name.
    pub case: String,
    /// Artifact kind from `gold.toml` (empty when it could not be read).
    pub kind: String,
    /// Raw counts.
    pub counts: EvalCounts,
    /// Metrics from the counts.
    pub metrics: EvalMetrics,
    /// Gold element ids no diagram node matched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missed_elements: Vec<String>,
    /// Gold threat ids with no L2 match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missed_threats: Vec<String>,
    /// Gold threats matched at L2 whose CWEs no matching finding names (JSON report only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cwe_misses: Vec<CweMiss>,
    /// Why the case could not be analysed, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl CaseReport {
    /// A case that could not be analysed: its gold still counts (nothing was matched).
    pub fn failed(case: &str, gold: Option<&Gold>, error: &Error) -> CaseReport {
        let mut counts = EvalCounts {
            errors: 1,
            ..EvalCounts::default()
        };
        let mut kind = String::new();
        let mut missed_elements = Vec::new();
        let mut missed_threats = Vec::new();
        if let Some(gold) = gold {
            counts.gold_elements = gold.element.len();
            counts.gold_threats = gold.threat.len();
            kind.clone_from(&gold.case.kind);
            missed_elements = gold.element.iter().map(|e| e.id.clone()).collect();
            missed_threats = gold.threat.iter().map(|t| t.id.clone()).collect();
        }
        CaseReport {
            case: case.to_owned(),
            kind,
            metrics: EvalMetrics::from_counts(&counts),
            counts,
            missed_elements,
            missed_threats,
            cwe_misses: Vec::new(),
            error: Some(error.to_string()),
        }
    }
}

/// A gold threat matched at L2 whose CWEs no matching finding names: what was expected and
/// what the matching findings cite instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CweMiss {
    /// Gold threat id.
    pub threat: String,
    /// The gold CWEs (any of them would have agreed).
    pub gold: Vec<u32>,
    /// Each matching finding's rule and CWEs.
    pub raised: Vec<(String, Vec<u32>)>,
}

/// Totals over all cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalTotals {
    /// Number of cases.
    pub cases: usize,
    /// Summed counts.
    pub counts: EvalCounts,
    /// Micro-averaged metrics: summed matches over summed gold.
    pub micro: EvalMetrics,
    /// Mean of the per-case L2 over the cases that have gold threats.
    pub macro_element_category_recall: Option<f64>,
}

/// The result of an evaluation run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Per case, in folder-name order.
    pub cases: Vec<CaseReport>,
    /// Totals.
    pub total: EvalTotals,
}

impl EvalReport {
    /// Bundles case reports and computes the totals.
    pub fn from_cases(cases: Vec<CaseReport>) -> EvalReport {
        let mut counts = EvalCounts::default();
        for case in &cases {
            counts.add(&case.counts);
        }
        let per_case_l2: Vec<f64> = cases
            .iter()
            .filter_map(|c| c.metrics.element_category_recall)
            .collect();
        let macro_l2 = (!per_case_l2.is_empty())
            .then(|| per_case_l2.iter().sum::<f64>() / per_case_l2.len() as f64);
        let total = EvalTotals {
            cases: cases.len(),
            micro: EvalMetrics::from_counts(&counts),
            counts,
            macro_element_category_recall: macro_l2,
        };
        EvalReport { cases, total }
    }

    /// A plain-text table: one row per case, then the total, then any case errors.
    pub fn to_table(&self) -> String {
        let header = [
            "case",
            "kind",
            "elements",
            "elem recall",
            "threats",
            "L1",
            "L2",
            "CWE agr",
            "findings",
            "noise",
        ];
        let mut rows: Vec<[String; 10]> = self
            .cases
            .iter()
            .map(|c| table_row(&c.case, &c.kind, &c.counts, &c.metrics))
            .collect();
        rows.push(table_row(
            "total",
            "",
            &self.total.counts,
            &self.total.micro,
        ));

        let mut widths = header.map(str::len);
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }

        let mut out = String::new();
        push_line(&mut out, &header.map(str::to_owned), &widths);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        out.push_str(rule.join("  ").trim_end());
        out.push('\n');
        let total_row = rows.len() - 1;
        for (i, row) in rows.iter().enumerate() {
            if i == total_row {
                out.push_str(rule.join("  ").trim_end());
                out.push('\n');
            }
            push_line(&mut out, row, &widths);
        }

        let _ = writeln!(
            out,
            "\n{} cases, {} errors; L2 micro {}, macro {}",
            self.total.cases,
            self.total.counts.errors,
            percent(self.total.micro.element_category_recall),
            percent(self.total.macro_element_category_recall),
        );
        for case in self.cases.iter().filter(|c| c.error.is_some()) {
            let _ = writeln!(
                out,
                "error in {}: {}",
                case.case,
                case.error.as_deref().unwrap_or("")
            );
        }
        out
    }
}

fn table_row(case: &str, kind: &str, c: &EvalCounts, m: &EvalMetrics) -> [String; 10] {
    [
        case.to_owned(),
        kind.to_owned(),
        format!("{}/{}", c.matched_elements, c.gold_elements),
        percent(m.element_recall),
        c.gold_threats.to_string(),
        percent(m.category_recall),
        percent(m.element_category_recall),
        percent(m.cwe_agreement),
        c.findings.to_string(),
        m.noise
            .map_or_else(|| "-".to_owned(), |n| format!("{n:.2}")),
    ]
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{:.1}%", v * 100.0))
}

fn push_line(out: &mut String, cells: &[String; 10], widths: &[usize; 10]) {
    let mut line = String::new();
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        // Text columns align left, numbers right.
        if i < 2 {
            let _ = write!(line, "{cell:<width$}");
        } else {
            let _ = write!(line, "{cell:>width$}");
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

// ---------------------------------------------------------------------------------------------
// Scoring
// ---------------------------------------------------------------------------------------------

/// Scores the reviews of one case's artifact against its gold. Nodes and findings of all the
/// reviews count together (a Jira search result gives several).
pub fn score_case(case: &str, gold: &Gold, reviews: &[Review]) -> CaseReport {
    let node_names: Vec<BTreeSet<String>> = reviews
        .iter()
        .flat_map(|r| &r.dfd.nodes)
        .map(|n| name_words(&n.name))
        .collect();
    let findings: Vec<&Finding> = reviews.iter().flat_map(|r| &r.findings).collect();

    let mut counts = EvalCounts {
        gold_elements: gold.element.len(),
        gold_threats: gold.threat.len(),
        findings: findings.len(),
        ..EvalCounts::default()
    };

    let mut missed_elements = Vec::new();
    for element in &gold.element {
        let aliases = alias_words(&gold.aliases_of(&element.id));
        let matched = node_names
            .iter()
            .any(|n| aliases.iter().any(|a| words_match(n, a)));
        if matched {
            counts.matched_elements += 1;
        } else {
            missed_elements.push(element.id.clone());
        }
    }

    let categories: BTreeSet<ThreatCategory> = findings.iter().map(|f| f.category).collect();
    let mut missed_threats = Vec::new();
    let mut cwe_misses = Vec::new();
    for threat in &gold.threat {
        if categories.contains(&threat.category) {
            counts.category_matches += 1;
        }
        let matching = matching_findings(gold, threat, &findings);
        if matching.is_empty() {
            missed_threats.push(threat.id.clone());
            continue;
        }
        counts.element_category_matches += 1;
        if !threat.cwe.is_empty() {
            counts.cwe_eligible += 1;
            if matching
                .iter()
                .any(|f| f.cwe.iter().any(|c| threat.cwe.contains(c)))
            {
                counts.cwe_agreements += 1;
            } else {
                cwe_misses.push(CweMiss {
                    threat: threat.id.clone(),
                    gold: threat.cwe.clone(),
                    raised: matching
                        .iter()
                        .map(|f| (f.rule.clone(), f.cwe.clone()))
                        .collect(),
                });
            }
        }
    }

    CaseReport {
        case: case.to_owned(),
        kind: gold.case.kind.clone(),
        metrics: EvalMetrics::from_counts(&counts),
        counts,
        missed_elements,
        missed_threats,
        cwe_misses,
        error: None,
    }
}

fn alias_words(aliases: &[String]) -> Vec<BTreeSet<String>> {
    aliases.iter().map(|a| name_words(a)).collect()
}

/// Findings of the threat's category whose element name matches an alias of one of its
/// elements. A flow finding's "Source -> Target" name is compared whole.
fn matching_findings<'f>(
    gold: &Gold,
    threat: &GoldThreat,
    findings: &[&'f Finding],
) -> Vec<&'f Finding> {
    let aliases: Vec<BTreeSet<String>> = threat
        .elements
        .iter()
        .flat_map(|id| alias_words(&gold.aliases_of(id)))
        .collect();
    findings
        .iter()
        .copied()
        .filter(|f| f.category == threat.category)
        .filter(|f| {
            let name = name_words(&f.element_name);
            aliases.iter().any(|a| words_match(&name, a))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Case folders
// ---------------------------------------------------------------------------------------------

/// A case folder, read: its id, the artifact's path and bytes, and the gold.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalCase {
    /// Folder name.
    pub id: String,
    /// Path of the artifact file.
    pub artifact_path: PathBuf,
    /// The artifact's bytes.
    pub artifact: Vec<u8>,
    /// The reviewer's findings.
    pub gold: Gold,
}

fn eval_error(case: &str, message: impl Into<String>) -> Error {
    Error::EvalCase {
        case: case.to_owned(),
        message: message.into(),
    }
}

fn case_id(dir: &Path) -> String {
    dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Reads and parses a case folder's `gold.toml`.
pub fn load_gold(dir: &Path) -> Result<Gold> {
    let case = case_id(dir);
    let path = dir.join("gold.toml");
    let text = fs::read_to_string(&path)
        .map_err(|e| eval_error(&case, format!("{}: {e}", path.display())))?;
    Gold::parse(&case, &text)
}

/// The one artifact file in a case folder.
pub fn find_artifact(dir: &Path) -> Result<PathBuf> {
    let case = case_id(dir);
    let present: Vec<PathBuf> = ARTIFACT_FILES
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.is_file())
        .collect();
    match present.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(eval_error(
            &case,
            format!("no artifact file (one of {})", ARTIFACT_FILES.join(", ")),
        )),
        _ => Err(eval_error(&case, "more than one artifact file")),
    }
}

/// Reads a case folder: its gold and its one artifact.
pub fn load_case(dir: &Path) -> Result<EvalCase> {
    let gold = load_gold(dir)?;
    let artifact_path = find_artifact(dir)?;
    let artifact = fs::read(&artifact_path)
        .map_err(|e| eval_error(&case_id(dir), format!("{}: {e}", artifact_path.display())))?;
    Ok(EvalCase {
        id: case_id(dir),
        artifact_path,
        artifact,
        gold,
    })
}

/// Scores one case folder, analysing its artifact with `analyze(origin, bytes)`. A case that
/// cannot be read or analysed is reported with its error, its gold counted when readable.
pub fn evaluate_case_with<F>(dir: &Path, analyze: F) -> CaseReport
where
    F: FnOnce(&str, &[u8]) -> Result<Vec<Review>>,
{
    let id = case_id(dir);
    let case = match load_case(dir) {
        Ok(case) => case,
        Err(error) => return CaseReport::failed(&id, load_gold(dir).ok().as_ref(), &error),
    };
    let origin = case.artifact_path.display().to_string();
    match analyze(&origin, &case.artifact) {
        Ok(reviews) => score_case(&id, &case.gold, &reviews),
        Err(error) => CaseReport::failed(&id, Some(&case.gold), &error),
    }
}

/// The case folders under `dir`: its sub-folders holding a `gold.toml`, sorted by name.
pub fn case_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let label = dir.display().to_string();
    let entries = fs::read_dir(dir).map_err(|e| eval_error(&label, e.to_string()))?;
    let mut dirs = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| eval_error(&label, e.to_string()))?.path();
        if path.is_dir() && path.join("gold.toml").is_file() {
            dirs.push(path);
        }
    }
    dirs.sort();
    if dirs.is_empty() {
        return Err(eval_error(
            &label,
            "no case folders (sub-folders with a gold.toml)",
        ));
    }
    Ok(dirs)
}

/// Evaluates every case folder under `dir` with `analyze(origin, bytes)`; a failing case is
/// counted with its error and the run continues.
pub fn evaluate_dir_with<F>(dir: &Path, mut analyze: F) -> Result<EvalReport>
where
    F: FnMut(&str, &[u8]) -> Result<Vec<Review>>,
{
    let cases = case_dirs(dir)?
        .iter()
        .map(|case| evaluate_case_with(case, |origin, bytes| analyze(origin, bytes)))
        .collect();
    Ok(EvalReport::from_cases(cases))
}

/// Evaluates every case folder under `dir` with the engine.
pub fn evaluate_dir(engine: &Engine, dir: &Path) -> Result<EvalReport> {
    evaluate_dir_with(dir, |origin, bytes| engine.analyze_bytes(origin, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eval")
    }

    #[test]
    fn words_are_lower_cased_and_split_on_separators() {
        let words: Vec<String> = name_words("Mobile-App -> Checkout_API/v2 (EU)")
            .into_iter()
            .collect();
        assert_eq!(words, ["api", "app", "checkout", "eu", "mobile", "v2"]);
        assert!(name_words("  ...  ").is_empty());
    }

    #[test]
    fn format_examples_match() {
        assert!(names_match("Checkout API", "checkout api service"));
        assert!(names_match("API server", "api server"));
        assert!(names_match("API", "api"));
        assert!(!names_match("API", "api server"));
        assert!(!names_match("API", "checkout api"));
        assert!(!names_match("API server", "checkout api server"));
    }

    #[test]
    fn subset_needs_a_shared_specific_word() {
        assert!(names_match("Postgres", "orders postgres database"));
        assert!(!names_match("orders database", "payments database"));
        assert!(!names_match("the data store", "data store of the ledger"));
        assert!(names_match("Ledger", "the ledger"));
        assert!(!names_match("", ""));
        assert!(!names_match("Ledger", ""));
    }

    #[test]
    fn word_order_and_punctuation_do_not_matter() {
        assert!(names_match("Service, Checkout", "checkout service"));
        assert!(names_match("Payment-Gateway", "payment gateway"));
        assert!(names_match("user's browser", "users browser"));
    }

    #[test]
    fn flow_names_are_compared_whole() {
        let mobile = vec!["mobile app".to_owned()];
        let checkout = vec!["checkout api".to_owned(), "checkout service".to_owned()];
        let flow = "Mobile App -> Checkout API";
        assert!(matches_any_alias(flow, &checkout));
        assert!(matches_any_alias(flow, &mobile));
        assert!(!matches_any_alias("Mobile App -> Payments DB", &checkout));
        // Only generic words in common: no match.
        assert!(!matches_any_alias("Web App -> API", &checkout));
    }

    #[test]
    fn gold_tolerates_unknown_keys_and_defaults() {
        let gold = Gold::parse(
            "t",
            r#"
            extra = 1
            [case]
            kind = "design-doc"
            owner = "someone"
            [[element]]
            id = "queue"
            [[threat]]
            id = "T1"
            category = "denial_of_service"
            elements = ["queue", "undeclared-thing"]
            "#,
        )
        .unwrap();
        assert_eq!(gold.aliases_of("queue"), ["queue"]);
        assert_eq!(gold.aliases_of("undeclared-thing"), ["undeclared-thing"]);
        assert!(gold.threat[0].cwe.is_empty());
    }

    #[test]
    fn unknown_category_is_a_case_error() {
        let err = Gold::parse("bad", "[[threat]]\nid = \"T1\"\ncategory = \"mischief\"\n");
        assert!(matches!(err, Err(Error::EvalCase { ref case, .. }) if case == "bad"));
    }

    #[test]
    fn metric_arithmetic_on_the_tiny_case() {
        let dir = fixtures().join("cases/clinic-notes");
        let gold = load_gold(&dir).unwrap();
        let review: Review = serde_json::from_str(
            &fs::read_to_string(fixtures().join("clinic-notes.review.json")).unwrap(),
        )
        .unwrap();
        let report = score_case("clinic-notes", &gold, &[review]);

        let c = report.counts;
        assert_eq!((c.gold_elements, c.matched_elements), (4, 3));
        assert_eq!(
            (
                c.gold_threats,
                c.category_matches,
                c.element_category_matches
            ),
            (5, 4, 3)
        );
        assert_eq!((c.cwe_eligible, c.cwe_agreements), (2, 1));
        assert_eq!((c.findings, c.errors), (6, 0));
        assert_eq!(report.missed_elements, ["audit-log"]);
        assert_eq!(report.missed_threats, ["T4", "T5"]);
        // The one CWE disagreement names the gold CWEs and what the matching finding cited.
        assert_eq!(report.cwe_misses.len(), 1);
        assert!(!report.cwe_misses[0].gold.is_empty() && !report.cwe_misses[0].raised.is_empty());

        let m = report.metrics;
        assert_eq!(m.element_recall, Some(0.75));
        assert_eq!(m.category_recall, Some(0.8));
        assert_eq!(m.element_category_recall, Some(0.6));
        assert_eq!(m.cwe_agreement, Some(0.5));
        assert_eq!(m.noise, Some(1.2));
    }

    #[test]
    fn totals_are_micro_averaged_with_a_macro_l2() {
        let gold = load_gold(&fixtures().join("cases/clinic-notes")).unwrap();
        let scored = score_case("a", &gold, &[]);
        let failed = CaseReport::failed("b", Some(&gold), &eval_error("b", "boom"));
        let mut half = scored.clone();
        half.counts.gold_threats = 2;
        half.counts.element_category_matches = 1;
        half.metrics = EvalMetrics::from_counts(&half.counts);
        let empty = score_case("c", &Gold::default(), &[]);

        let report = EvalReport::from_cases(vec![scored, failed, half, empty]);
        let t = &report.total;
        assert_eq!(t.cases, 4);
        assert_eq!(t.counts.gold_threats, 5 + 5 + 2);
        assert_eq!(t.counts.errors, 1);
        assert_eq!(t.micro.element_category_recall, Some(1.0 / 12.0));
        // Per-case L2: 0, 0, 0.5; the case without gold threats has none and is left out.
        assert_eq!(t.macro_element_category_recall, Some(0.5 / 3.0));
        assert_eq!(t.micro.cwe_agreement, None);
    }

    #[test]
    fn table_has_a_row_per_case_and_a_total() {
        let gold = load_gold(&fixtures().join("cases/clinic-notes")).unwrap();
        let report = EvalReport::from_cases(vec![
            score_case("clinic-notes", &gold, &[]),
            CaseReport::failed("broken", None, &eval_error("broken", "no artifact file")),
        ]);
        let table = report.to_table();
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("case"));
        assert!(lines[0].contains("elem recall") && lines[0].trim_end().ends_with("noise"));
        assert!(lines[2].starts_with("clinic-notes  design-doc"));
        assert!(lines[3].starts_with("broken"));
        assert!(lines[5].starts_with("total"));
        assert!(table.contains("error in broken: broken: no artifact file"));
    }
}
