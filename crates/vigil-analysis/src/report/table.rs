//! Terminal output: per review a header line, a fixed-width table of findings ranked by score
//! and the top attack paths, one line each. Lines stay within [`MAX_WIDTH`] columns: long cells
//! wrap (element, title) or are cut with an ellipsis (category, rule).

use vigil_core::{Finding, Review, Severity};

use super::{ranked, score_text, summary_line};

/// The widest line the table writes, in characters.
pub const MAX_WIDTH: usize = 120;

/// Attack paths listed under each table.
const MAX_PATHS: usize = 5;

/// Gap between columns.
const GAP: &str = "  ";

/// How a column treats text wider than it.
#[derive(Clone, Copy)]
enum Overflow {
    Wrap,
    Truncate,
}

/// A table column: header, width and overflow.
struct Column {
    header: &'static str,
    width: usize,
    overflow: Overflow,
}

/// Score, severity, category, element, title, rule: 5 + 8 + 22 + 20 + 29 + 26 plus five gaps
/// of two is exactly 120. Rule ids wrap rather than being cut, since readers look them up.
const COLUMNS: [Column; 6] = [
    Column {
        header: "SCORE",
        width: 5,
        overflow: Overflow::Truncate,
    },
    Column {
        header: "SEVERITY",
        width: 8,
        overflow: Overflow::Truncate,
    },
    Column {
        header: "CATEGORY",
        width: 22,
        overflow: Overflow::Truncate,
    },
    Column {
        header: "ELEMENT",
        width: 20,
        overflow: Overflow::Wrap,
    },
    Column {
        header: "TITLE",
        width: 29,
        overflow: Overflow::Wrap,
    },
    Column {
        header: "RULE",
        width: 26,
        overflow: Overflow::Wrap,
    },
];

/// Renders every review as a terminal table; `color` adds ANSI colours to severities.
pub fn render_table(reviews: &[Review], color: bool) -> String {
    let mut out = String::new();
    for (i, review) in reviews.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        render_review(&mut out, review, color);
    }
    out
}

/// One review: header, findings table, attack paths.
fn render_review(out: &mut String, review: &Review, color: bool) {
    let header = format!(
        "{} [{} | {}] {}",
        review.title,
        review.artifact,
        review.format.as_str(),
        summary_line(review)
    );
    out.push_str(&truncate(&header, MAX_WIDTH));
    out.push('\n');

    if review.findings.is_empty() {
        out.push_str("No findings.\n");
    } else {
        render_findings(out, &ranked(review), color);
    }

    if !review.attack_paths.is_empty() {
        out.push_str("\nTop attack paths:\n");
        for path in review.attack_paths.iter().take(MAX_PATHS) {
            let steps: Vec<&str> = path.steps.iter().map(|s| s.element_name.as_str()).collect();
            let line = format!(
                "  {} {:>4}  {}: {}",
                path.id,
                score_text(path.score),
                steps.join(" -> "),
                path.summary
            );
            out.push_str(&truncate(&line, MAX_WIDTH));
            out.push('\n');
        }
    }
}

/// The header row, a rule and one or more lines per finding.
fn render_findings(out: &mut String, findings: &[&Finding], color: bool) {
    let headers: Vec<Vec<String>> = COLUMNS.iter().map(|c| vec![c.header.to_owned()]).collect();
    push_row(out, &headers, None);
    let rule: Vec<Vec<String>> = COLUMNS.iter().map(|c| vec!["-".repeat(c.width)]).collect();
    push_row(out, &rule, None);

    for finding in findings {
        let cells = [
            score_text(finding.score.value),
            finding.score.severity.as_str().to_owned(),
            finding.category.as_str().to_owned(),
            finding.element_name.clone(),
            finding.title.clone(),
            finding.rule.clone(),
        ];
        let lines: Vec<Vec<String>> = COLUMNS
            .iter()
            .zip(cells)
            .map(|(column, cell)| match column.overflow {
                Overflow::Wrap => wrap(&cell, column.width),
                Overflow::Truncate => vec![truncate(&cell, column.width)],
            })
            .collect();
        let severity = color.then_some(finding.score.severity);
        push_row(out, &lines, severity);
    }
}

/// Writes one logical row, as many physical lines as its tallest cell. The severity cell is
/// coloured when `severity` is given; padding is applied before colouring so widths hold.
fn push_row(out: &mut String, cells: &[Vec<String>], severity: Option<Severity>) {
    let height = cells.iter().map(Vec::len).max().unwrap_or(1);
    for line in 0..height {
        let mut text = String::new();
        for (i, (column, cell)) in COLUMNS.iter().zip(cells).enumerate() {
            let value = cell.get(line).map_or("", String::as_str);
            let padded = pad(value, column.width, i == 0);
            match (i, severity) {
                (1, Some(s)) if !value.is_empty() => text.push_str(&paint(&padded, s)),
                _ => text.push_str(&padded),
            }
            if i + 1 < COLUMNS.len() {
                text.push_str(GAP);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
}

/// Pads to `width` characters, right-aligned for numbers.
fn pad(value: &str, width: usize, right: bool) -> String {
    let fill = width.saturating_sub(value.chars().count());
    if right {
        format!("{}{value}", " ".repeat(fill))
    } else {
        format!("{value}{}", " ".repeat(fill))
    }
}

/// ANSI colour for a severity.
fn paint(text: &str, severity: Severity) -> String {
    let code = match severity {
        Severity::Critical => "1;31",
        Severity::High => "31",
        Severity::Medium => "33",
        Severity::Low => "34",
        Severity::Info => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// Cuts `text` to `width` characters, ending with an ellipsis when cut. Newlines become spaces.
pub(crate) fn truncate(text: &str, width: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= width {
        return flat;
    }
    let mut cut: String = flat.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Word-wraps `text` into lines of at most `width` characters; a word longer than a line is
/// split. Never returns an empty list.
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        loop {
            let used = line.chars().count();
            let needed = if used == 0 {
                word.len()
            } else {
                used + 1 + word.len()
            };
            if needed <= width {
                if used > 0 {
                    line.push(' ');
                }
                line.extend(word.iter());
                break;
            }
            if used > 0 {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            let rest = word.split_off(width);
            lines.push(word.iter().collect());
            word = rest;
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fill_exactly_the_maximum_width() {
        let total: usize = COLUMNS.iter().map(|c| c.width).sum::<usize>() + GAP.len() * 5;
        assert_eq!(total, MAX_WIDTH);
    }

    #[test]
    fn wrap_breaks_on_words_and_splits_long_words() {
        assert_eq!(
            wrap("card vault service", 10),
            vec!["card vault", "service"]
        );
        assert_eq!(wrap("abcdefghijkl", 5), vec!["abcde", "fghij", "kl"]);
        assert_eq!(wrap("", 5), vec![""]);
    }

    #[test]
    fn truncate_marks_the_cut_and_flattens_newlines() {
        assert_eq!(truncate("spoofing", 8), "spoofing");
        assert_eq!(truncate("information_disclosure", 8), "informa…");
        assert_eq!(truncate("a\nb", 8), "a b");
    }
}
