//! Markdown output: what a reviewer pastes into a ticket. Per review a title, a summary line,
//! the diagram as a Mermaid block, a findings table and then each finding in full (rationale,
//! evidence, mitigations as a checklist, framework mappings and the explained score), closing
//! with the attack paths.
//!
//! Artifact text is untrusted: everything taken from it is written with `<` and `&`
//! escaped (code spans aside, which renderers show literally), so HTML in a ticket's title or a
//! quoted line cannot become markup where the report is pasted.

use vigil_core::{Evidence, FactorGroup, Finding, Review};

use super::{mapping_labels, mermaid, ranked, score_text, summary_line};

/// Renders every review as a Markdown report, separated by a horizontal rule.
pub fn render_markdown(reviews: &[Review]) -> String {
    let mut out = String::new();
    for (i, review) in reviews.iter().enumerate() {
        if i > 0 {
            out.push_str("\n---\n\n");
        }
        render_review(&mut out, review);
    }
    out
}

/// One review.
fn render_review(out: &mut String, review: &Review) {
    out.push_str(&format!("# Threat model: {}\n\n", inline(&review.title)));
    out.push_str(&format!(
        "`{}` · {} · `{}`\n\n",
        code(&review.artifact),
        review.format.as_str(),
        code(&review.origin)
    ));
    out.push_str(&format!("**{}**\n\n", summary_line(review)));

    out.push_str("## Data-flow diagram\n\n```mermaid\n");
    out.push_str(&mermaid::flowchart(&review.dfd));
    out.push_str("```\n\n");

    let findings = ranked(review);
    if findings.is_empty() {
        out.push_str("## Findings\n\nNo findings.\n");
    } else {
        render_findings_table(out, &findings);
        out.push_str("## Details\n");
        for finding in &findings {
            render_finding(out, finding);
        }
    }

    render_attack_paths(out, review);
}

/// Score, severity, category, element, title.
fn render_findings_table(out: &mut String, findings: &[&Finding]) {
    out.push_str("## Findings\n\n");
    out.push_str("| Score | Severity | Category | Element | Title |\n");
    out.push_str("|---:|---|---|---|---|\n");
    for f in findings {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            score_text(f.score.value),
            f.score.severity,
            cell(f.category.label()),
            cell(&f.element_name),
            cell(&f.title)
        ));
    }
    out.push('\n');
}

/// One finding in full.
fn render_finding(out: &mut String, f: &Finding) {
    out.push_str(&format!(
        "\n### {} {} · {} ({})\n\n",
        score_text(f.score.value),
        f.score.severity,
        inline(&f.title),
        inline(&f.element_name)
    ));
    out.push_str(&format!(
        "Rule `{}` · {} · element `{}` ({}) · id `{}`\n\n",
        code(&f.rule),
        f.category.label(),
        code(&f.element),
        f.element_kind.as_str(),
        code(&f.id)
    ));
    out.push_str(&format!("{}\n\n", html_safe(f.rationale.trim())));

    if !f.evidence.is_empty() {
        out.push_str("**Evidence**\n\n");
        for evidence in &f.evidence {
            render_evidence(out, evidence);
        }
    }

    if !f.mitigations.is_empty() {
        out.push_str("**Mitigations**\n\n");
        for mitigation in &f.mitigations {
            out.push_str(&format!("- [ ] {}\n", inline(mitigation)));
        }
        out.push('\n');
    }

    let mappings = mapping_labels(f);
    if !mappings.is_empty() {
        out.push_str(&format!("**Mappings:** {}\n\n", mappings.join(" · ")));
    }

    render_score(out, f);
}

/// A quote as a blockquote, with where it sits.
fn render_evidence(out: &mut String, evidence: &Evidence) {
    for line in evidence.text.lines() {
        out.push_str(&format!("> {}\n", html_safe(line.trim_end())));
    }
    let place = if evidence.section.is_empty() {
        format!("bytes {}–{}", evidence.start, evidence.end)
    } else {
        format!(
            "{}, bytes {}–{}",
            inline(&evidence.section),
            evidence.start,
            evidence.end
        )
    };
    out.push_str(&format!(">\n> — *{place}*\n\n"));
}

/// Each factor group with its value and its factors, so a reader sees where the number comes
/// from.
fn render_score(out: &mut String, f: &Finding) {
    let score = &f.score;
    out.push_str(&format!(
        "**Score {} ({})** = {}\n\n",
        score_text(score.value),
        score.severity,
        inline(&score.formula)
    ));
    for (name, group) in [
        ("Exploitability", &score.exploitability),
        ("Blast radius", &score.blast_radius),
        ("Urgency", &score.urgency),
    ] {
        render_group(out, name, group);
    }
    for adjustment in &score.adjustments {
        out.push_str(&format!("- Adjustment: {}\n", inline(adjustment)));
    }
    if let Some(days) = score.sla_days {
        out.push_str(&format!("- SLA: fix within {days} days of triage\n"));
    }
    out.push('\n');
}

/// One factor group as a nested list.
fn render_group(out: &mut String, name: &str, group: &FactorGroup) {
    out.push_str(&format!("- {name} **{:.2}**\n", group.value));
    for factor in &group.factors {
        out.push_str(&format!(
            "  - `{}` {:.2} (weight {:.2}): {}\n",
            code(&factor.name),
            factor.value,
            factor.weight,
            inline(&factor.reason)
        ));
    }
}

/// The attack paths, highest first, as a numbered list.
fn render_attack_paths(out: &mut String, review: &Review) {
    if review.attack_paths.is_empty() {
        return;
    }
    out.push_str("\n## Attack paths\n\n");
    for (i, path) in review.attack_paths.iter().enumerate() {
        let steps: Vec<String> = path.steps.iter().map(|s| inline(&s.element_name)).collect();
        let findings: Vec<String> = path
            .steps
            .iter()
            .flat_map(|s| &s.findings)
            .map(|id| format!("`{}`", code(id)))
            .collect();
        out.push_str(&format!(
            "{}. **{}** ({}): {}. {}",
            i + 1,
            path.id,
            score_text(path.score),
            steps.join(" → "),
            inline(&path.summary)
        ));
        if !findings.is_empty() {
            out.push_str(&format!(" Findings: {}.", findings.join(", ")));
        }
        out.push('\n');
    }
}

/// Text for a table cell: HTML and pipes escaped, line breaks as `<br>`.
pub fn cell(text: &str) -> String {
    html_safe(text.trim())
        .replace('|', "\\|")
        .replace("\r\n", "<br>")
        .replace(['\n', '\r'], "<br>")
}

/// Text on one line (headings, list items): HTML escaped, line breaks become spaces.
fn inline(text: &str) -> String {
    html_safe(&one_line(text))
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text inside a code span: no backticks, one line (shown literally, so not escaped).
fn code(text: &str) -> String {
    one_line(text).replace('`', "'")
}

/// `&` and `<` as entities, so text renders as text: no tag can open (`>` alone opens
/// nothing, and stays readable in `a -> b`).
fn html_safe(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_escape_pipes_and_newlines() {
        assert_eq!(cell("a | b"), "a \\| b");
        assert_eq!(cell("one\ntwo\r\nthree"), "one<br>two<br>three");
    }

    #[test]
    fn html_from_the_artifact_is_escaped_outside_code_spans() {
        let hostile = "XSS <img src=x onerror=alert(1)> & <script>";
        assert_eq!(
            inline(hostile),
            "XSS &lt;img src=x onerror=alert(1)> &amp; &lt;script>"
        );
        assert!(!cell(hostile).contains('<'));
        assert_eq!(code("<b>"), "<b>");
    }

    #[test]
    fn inline_text_stays_on_one_line() {
        assert_eq!(inline("two\n  lines "), "two lines");
        assert_eq!(code("a`b"), "a'b");
    }
}
