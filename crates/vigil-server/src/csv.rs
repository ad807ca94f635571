//! Findings as CSV for spreadsheets: one row per finding with its artifact, score and workflow
//! state. Cells that a spreadsheet would run as a formula are prefixed with `'`.

use crate::store::FindingRecord;

const HEADER: &str = "finding_id,review_id,artifact,artifact_title,tool,project,team,rule,title,\
category,severity,score,status,assignee,element,cwe";

/// The records as CSV, a header line first.
pub fn findings_csv(records: &[FindingRecord]) -> String {
    let mut out = String::from(HEADER);
    out.push('\n');
    for r in records {
        let f = &r.finding;
        let cwe: Vec<String> = f.cwe.iter().map(|c| format!("CWE-{c}")).collect();
        let cells = [
            f.id.as_str(),
            &r.review_id,
            &r.artifact,
            &r.artifact_title,
            &r.tool,
            r.project.as_deref().unwrap_or(""),
            r.team.as_deref().unwrap_or(""),
            &f.rule,
            &f.title,
            f.category.as_str(),
            f.score.severity.as_str(),
            &format!("{:.1}", f.score.value),
            r.state.status.as_str(),
            r.state.assignee.as_deref().unwrap_or(""),
            &f.element_name,
            &cwe.join(" "),
        ];
        let line: Vec<String> = cells.iter().map(|c| cell(c)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

/// One quoted cell, neutralised against formula injection.
fn cell(text: &str) -> String {
    let guarded = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    format!("\"{}\"", guarded.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_formulas_neutralised() {
        assert_eq!(cell("a \"b\""), "\"a \"\"b\"\"\"");
        assert_eq!(cell("=HYPERLINK(1)"), "\"'=HYPERLINK(1)\"");
        assert_eq!(findings_csv(&[]).lines().count(), 1);
    }
}
