//! Decision exports in CSV (RFC 4180: commas, double-quoted fields with `""` escapes, a header
//! row naming the columns).
//!
//! Columns, by header name: `id`, `kind` (risk_accepted, false_positive, mitigated,
//! approved_pattern, policy), `rationale` are required; `scope` (finding, rule_on_component,
//! pattern; by default `finding` with a fingerprint, `rule_on_component` with a rule and a
//! component, `pattern` otherwise), `fingerprint`, `rule`, `component`, `artifact_id`,
//! `external_key`, `tool`, `team`, `project`, `owner`, `approver`, `expires_on`, `link` and
//! `context` are optional. Other columns are ignored. Each row is checked as the API checks a
//! decision (e.g. a risk acceptance needs owner, approver and a `YYYY-MM-DD` expiry); a bad
//! row is named by the line it starts on, the header being line 1. A leading byte-order mark
//! (as spreadsheets write) is skipped.

use anyhow::{bail, Context, Result};
use std::collections::HashMap;

use vigil_store::{Decision, DecisionKind, DecisionScope};

/// The decisions of a CSV export.
pub fn decisions(text: &str) -> Result<Vec<Decision>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = records(text)?.into_iter();
    let (_, header) = rows.next().context("the CSV export is empty")?;
    let index: HashMap<String, usize> = header
        .iter()
        .enumerate()
        .map(|(i, h)| (h.trim().to_lowercase(), i))
        .collect();
    for required in ["id", "kind", "rationale"] {
        if !index.contains_key(required) {
            bail!("the CSV export has no `{required}` column");
        }
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    rows.filter(|(_, row)| row.iter().any(|f| !f.trim().is_empty()))
        .map(|(line, row)| {
            let d = decision(&index, &row).with_context(|| format!("CSV row {line}"))?;
            if let Some(first) = seen.insert(d.id.clone(), line) {
                bail!("CSV row {line}: id `{}` is on row {first} as well", d.id);
            }
            Ok(d)
        })
        .collect()
}

fn decision(index: &HashMap<String, usize>, row: &[String]) -> Result<Decision> {
    let get = |name: &str| -> Option<String> {
        index
            .get(name)
            .and_then(|i| row.get(*i))
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let kind = get("kind").unwrap_or_default();
    let scope = get("scope").unwrap_or_else(|| {
        if get("fingerprint").is_some() {
            "finding"
        } else if get("rule").is_some() && get("component").is_some() {
            "rule_on_component"
        } else {
            "pattern"
        }
        .to_owned()
    });
    let decision = Decision {
        id: get("id").context("empty id")?,
        kind: DecisionKind::parse(&kind).with_context(|| format!("unknown kind `{kind}`"))?,
        scope: DecisionScope::parse(&scope).with_context(|| format!("unknown scope `{scope}`"))?,
        fingerprint: get("fingerprint"),
        rule: get("rule"),
        component: get("component"),
        artifact_id: get("artifact_id"),
        external_key: get("external_key"),
        tool: get("tool"),
        team: get("team"),
        project: get("project"),
        rationale: get("rationale").context("empty rationale")?,
        owner: get("owner"),
        approver: get("approver"),
        expires_on: get("expires_on"),
        link: get("link"),
        context: get("context").unwrap_or_default(),
        created_at_ms: vigil_store::decisions::now_ms(),
    };
    decision.check().map_err(anyhow::Error::msg)?;
    Ok(decision)
}

/// The records of a CSV text, each with the line it starts on (from 1).
fn records(text: &str) -> Result<Vec<(usize, Vec<String>)>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let (mut line, mut start) = (1, 1);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
        }
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            // A line break inside a field is kept as `\n`, whichever the file uses.
            (true, '\r') if chars.peek() == Some(&'\n') => {}
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push((start, std::mem::take(&mut row)));
                start = line;
            }
            (false, '\r') => {}
            (false, c) => field.push(c),
        }
    }
    if quoted {
        bail!("the CSV export ends inside a quoted field");
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push((start, row));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_and_escapes() {
        let text = "id,kind,rationale,external_key,scope,link\n\
                    d1,mitigated,\"tokenized, before the \"\"ledger\"\"\",PAY-412,pattern,PR-9\n\
                    \n\
                    d2,false_positive,not reachable,,pattern,\n";
        let d = decisions(text).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].rationale, "tokenized, before the \"ledger\"");
        assert_eq!(d[0].external_key.as_deref(), Some("PAY-412"));
        assert_eq!(d[1].kind, DecisionKind::FalsePositive);
        assert_eq!(d[1].external_key, None);
    }

    #[test]
    fn a_byte_order_mark_is_skipped_and_the_scope_follows_the_columns_given() {
        let text = "\u{feff}id,kind,rationale,fingerprint,rule,component\n\
                    d1,policy,no plain HTTP,,,\n\
                    d2,false_positive,not reachable,fp-1,,\n\
                    d3,false_positive,internal only,,VGL-R-001,admin console\n";
        let d = decisions(text).unwrap();
        let scopes: Vec<DecisionScope> = d.iter().map(|d| d.scope).collect();
        assert_eq!(
            scopes,
            [
                DecisionScope::Pattern,
                DecisionScope::Finding,
                DecisionScope::RuleOnComponent
            ]
        );
    }

    #[test]
    fn missing_columns_and_bad_kinds_are_named() {
        let err = decisions("id,kind\nd1,mitigated\n").unwrap_err();
        assert!(err.to_string().contains("rationale"));
        let err = decisions("id,kind,rationale\nd1,maybe,x\n").unwrap_err();
        assert!(format!("{err:#}").contains("row 2"), "{err:#}");
    }

    #[test]
    fn rows_are_checked_like_the_api_checks_a_decision() {
        let text = "id,kind,rationale,scope,owner,approver,expires_on\n\
                    d1,policy,ok,pattern,,,\n\
                    d2,risk_accepted,fine,pattern,ana,bo,31/12/2027\n";
        let err = format!("{:#}", decisions(text).unwrap_err());
        assert_eq!(
            err,
            "CSV row 3: expires_on `31/12/2027` is not a date (YYYY-MM-DD)"
        );
        // A rationale over two lines: the bad row after it is named by the line it is on.
        let text = "id,kind,rationale,scope\r\n\
                    d1,policy,\"first line\r\nsecond line\",pattern\r\n\
                    d2,maybe,x,pattern\r\n";
        let err = format!("{:#}", decisions(text).unwrap_err());
        assert!(err.starts_with("CSV row 4:"), "{err}");
        let first = decisions(text.replace("d2,maybe", "d2,policy").as_str()).unwrap();
        assert_eq!(first[0].rationale, "first line\nsecond line");
        let err = decisions("id,kind,rationale\nd1,policy,x\nd1,policy,y\n").unwrap_err();
        assert_eq!(err.to_string(), "CSV row 3: id `d1` is on row 2 as well");
        let err = decisions("id,kind,rationale,scope\nd1,policy,x,rule_on_component\n");
        assert_eq!(
            format!("{:#}", err.unwrap_err()),
            "CSV row 2: a rule_on_component decision needs `rule`"
        );
    }
}
