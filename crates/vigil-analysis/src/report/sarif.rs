//! SARIF 2.1.0 output: one run whose driver, "Vigil", describes every rule that raised a finding,
//! and one result per finding located by its first evidence quote in the artifact it came from.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use vigil_core::{Finding, Review, Severity};

use super::{ranked, score_text};

/// The schema URI written into `$schema`.
pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// Key of the partial fingerprint that carries the finding id.
pub const FINGERPRINT_KEY: &str = "vigil/v1";

/// Renders all reviews as one SARIF log with a single run, pretty-printed with keys sorted: the
/// same bytes whether or not another crate in the build turns on serde_json's `preserve_order`.
pub fn render_sarif(reviews: &[Review]) -> String {
    let mut log = sarif_log(reviews);
    log.sort_all_objects();
    let mut out = serde_json::to_string_pretty(&log).expect("a JSON value always serializes");
    out.push('\n');
    out
}

/// All reviews as a SARIF log value.
pub fn sarif_log(reviews: &[Review]) -> Value {
    let findings: Vec<(&Review, &Finding)> = reviews
        .iter()
        .flat_map(|r| ranked(r).into_iter().map(move |f| (r, f)))
        .collect();
    let rules = RuleTable::new(findings.iter().map(|(_, f)| *f));
    let results: Vec<Value> = findings
        .iter()
        .map(|(review, finding)| result(review, finding, &rules))
        .collect();

    json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "Vigil",
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "rules": rules.descriptors(),
                }
            },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }]
    })
}

/// SARIF level for a severity.
pub fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// One result.
fn result(review: &Review, finding: &Finding, rules: &RuleTable) -> Value {
    let mut physical = Map::new();
    physical.insert(
        "artifactLocation".into(),
        json!({ "uri": uri_reference(&review.origin) }),
    );
    if let Some(evidence) = finding.evidence.first() {
        let length = evidence.end.saturating_sub(evidence.start);
        // TODO(sarif-offsets): evidence carries byte offsets; charOffset/charLength equal them
        // only for ASCII text. Exact character offsets need the original file at render time.
        physical.insert(
            "region".into(),
            json!({
                "charOffset": evidence.start,
                "charLength": length,
                "byteOffset": evidence.start,
                "byteLength": length,
                "snippet": { "text": evidence.text },
            }),
        );
    }

    json!({
        "ruleId": finding.rule,
        "ruleIndex": rules.index(&finding.rule),
        "level": level(finding.score.severity),
        "message": { "text": format!("{} ({})", finding.title, finding.element_name) },
        "locations": [{
            "physicalLocation": physical,
            "logicalLocations": [{
                "name": finding.element_name,
                "fullyQualifiedName": format!("{}/{}", review.artifact, finding.element),
                "kind": finding.element_kind.as_str(),
            }],
        }],
        "partialFingerprints": { FINGERPRINT_KEY: finding.id },
        "properties": {
            "score": finding.score.value,
            "severity": finding.score.severity.as_str(),
            "category": finding.category.as_str(),
            "artifact": review.artifact,
            "element": finding.element,
        },
    })
}

/// The rules used, in order of first use, with the findings' data that describe each.
struct RuleTable<'a> {
    order: Vec<&'a str>,
    by_id: BTreeMap<&'a str, Vec<&'a Finding>>,
}

impl<'a> RuleTable<'a> {
    fn new(findings: impl Iterator<Item = &'a Finding>) -> Self {
        let mut order = Vec::new();
        let mut by_id: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
        for finding in findings {
            let entry = by_id.entry(finding.rule.as_str()).or_default();
            if entry.is_empty() {
                order.push(finding.rule.as_str());
            }
            entry.push(finding);
        }
        RuleTable { order, by_id }
    }

    fn index(&self, rule: &str) -> usize {
        self.order.iter().position(|r| *r == rule).unwrap_or(0)
    }

    fn descriptors(&self) -> Vec<Value> {
        self.order
            .iter()
            .map(|rule| descriptor(rule, &self.by_id[rule]))
            .collect()
    }
}

/// A reportingDescriptor from the findings one rule raised; the first (highest) describes it.
fn descriptor(rule: &str, findings: &[&Finding]) -> Value {
    let first = findings[0];
    let max_score = findings
        .iter()
        .map(|f| f.score.value)
        .fold(f64::MIN, f64::max);

    let mut tags = vec!["security".to_owned(), first.category.as_str().to_owned()];
    tags.extend(first.cwe.iter().map(|id| format!("external/cwe/cwe-{id}")));
    tags.extend(
        first
            .capec
            .iter()
            .map(|id| format!("external/capec/capec-{id}")),
    );
    tags.extend(
        first
            .attack
            .iter()
            .map(|id| format!("external/attack/{}", id.to_lowercase())),
    );

    let help_text: Vec<String> = first.mitigations.iter().map(|m| format!("- {m}")).collect();
    let help_markdown: Vec<String> = first
        .mitigations
        .iter()
        .map(|m| format!("- [ ] {m}"))
        .collect();

    json!({
        "id": rule,
        "name": first.title,
        "shortDescription": { "text": first.title },
        "fullDescription": { "text": first.rationale },
        "help": { "text": help_text.join("\n"), "markdown": help_markdown.join("\n") },
        "properties": {
            "category": first.category.as_str(),
            "cwe": first.cwe,
            "capec": first.capec,
            "attack": first.attack,
            "tags": tags,
            "security-severity": score_text(max_score),
        },
    })
}

/// A path as a URI reference: separators as `/`, characters outside RFC 3986 percent-encoded.
pub fn uri_reference(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.replace('\\', "/").bytes() {
        let keep = byte.is_ascii_alphanumeric() || b"-._~/:@!$&'()*+,;=".contains(&byte);
        if keep {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_severity() {
        assert_eq!(level(Severity::Critical), "error");
        assert_eq!(level(Severity::High), "error");
        assert_eq!(level(Severity::Medium), "warning");
        assert_eq!(level(Severity::Low), "note");
        assert_eq!(level(Severity::Info), "note");
    }

    #[test]
    fn origins_become_uri_references() {
        assert_eq!(uri_reference("docs/design doc.md"), "docs/design%20doc.md");
        assert_eq!(uri_reference(r"docs\a.md"), "docs/a.md");
        assert_eq!(uri_reference("café.md"), "caf%C3%A9.md");
    }
}
