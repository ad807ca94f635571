//! Decisions the security team made and the finding texts they were made on, with embeddings,
//! in institutional memory.
//!
//! Kinds: risk accepted (owner, approver, rationale, expiry), false positive (reason),
//! mitigated (how, with a link to the ticket or pull request), approved pattern (a design the
//! team approved, which counts as a stated control), policy. Scopes: one finding, a rule on a
//! component, or a pattern across projects.

use serde::{Deserialize, Serialize};

use vigil_core::Finding;

use crate::embed::TextEmbedder;
use crate::lance::{self, lit, Rows, Value};
use crate::memory::Memory;
use crate::{Error, Result};

/// What was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// The risk is accepted until an expiry date.
    RiskAccepted,
    /// The finding is wrong.
    FalsePositive,
    /// The risk is mitigated; `link` points to the change.
    Mitigated,
    /// An approved design pattern: counts as a stated control where it applies.
    ApprovedPattern,
    /// An organisation policy.
    Policy,
}

/// What a decision applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionScope {
    /// One finding (and the same finding in reworded versions of the design).
    Finding,
    /// A rule on a named component, wherever it appears.
    RuleOnComponent,
    /// A pattern across projects.
    Pattern,
}

macro_rules! names {
    ($t:ty { $($v:ident = $s:literal),* $(,)? }) => {
        impl $t {
            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }

            /// Parses a stored name.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)* _ => None }
            }
        }
    };
}

names!(DecisionKind {
    RiskAccepted = "risk_accepted",
    FalsePositive = "false_positive",
    Mitigated = "mitigated",
    ApprovedPattern = "approved_pattern",
    Policy = "policy",
});

names!(DecisionScope {
    Finding = "finding",
    RuleOnComponent = "rule_on_component",
    Pattern = "pattern",
});

/// One decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Unique id.
    pub id: String,
    /// What was decided.
    pub kind: DecisionKind,
    /// What it applies to.
    pub scope: DecisionScope,
    /// The finding decided on (scope `finding`).
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// The rule (scopes `finding` and `rule_on_component`; optional for patterns).
    #[serde(default)]
    pub rule: Option<String>,
    /// The component (scope `rule_on_component`).
    #[serde(default)]
    pub component: Option<String>,
    /// The artifact it was made on.
    #[serde(default)]
    pub artifact_id: Option<String>,
    /// The artifact's key in its tool, e.g. `PAY-412`.
    #[serde(default)]
    pub external_key: Option<String>,
    /// Source tool.
    #[serde(default)]
    pub tool: Option<String>,
    /// Team.
    #[serde(default)]
    pub team: Option<String>,
    /// Project.
    #[serde(default)]
    pub project: Option<String>,
    /// Why: the reason, the mitigation, the pattern's statement.
    pub rationale: String,
    /// Who owns the risk.
    #[serde(default)]
    pub owner: Option<String>,
    /// Who approved it.
    #[serde(default)]
    pub approver: Option<String>,
    /// Last day the decision holds, `YYYY-MM-DD` (risk acceptances).
    #[serde(default)]
    pub expires_on: Option<String>,
    /// Ticket or pull request of a mitigation.
    #[serde(default)]
    pub link: Option<String>,
    /// The text the decision is matched by meaning against: the finding and its evidence, or
    /// the pattern; the rationale when empty.
    #[serde(default)]
    pub context: String,
    /// When it was made, ms since the epoch.
    #[serde(default)]
    pub created_at_ms: i64,
}

impl Decision {
    /// Whether a search narrowed by `filter` should show this decision: one that names a team,
    /// project or tool shows only under that one (one that names none holds everywhere), and
    /// it must have been made within the filter's time range.
    pub fn within(&self, filter: &crate::SearchFilter) -> bool {
        let holds = |own: &Option<String>, wanted: &Option<String>| match (own, wanted) {
            (Some(own), Some(wanted)) => own == wanted,
            _ => true,
        };
        holds(&self.team, &filter.team)
            && holds(&self.project, &filter.project)
            && holds(&self.tool, &filter.tool)
            && filter.since_ms.is_none_or(|t| self.created_at_ms >= t)
            && filter.until_ms.is_none_or(|t| self.created_at_ms < t)
    }

    /// The text embedded for matching.
    pub fn matching_text(&self) -> &str {
        if self.context.trim().is_empty() {
            &self.rationale
        } else {
            &self.context
        }
    }
}

impl Decision {
    /// Checks the fields its kind and scope need, the one check for every way a decision is
    /// recorded (the API's `POST /api/v1/decisions` and `vigil ingest`): a rationale; owner,
    /// approver and an `expires_on` written `YYYY-MM-DD` for a risk acceptance (a day in another
    /// form would never expire); a link for a mitigation; the fingerprint of a decision on a
    /// finding; rule and component of one on a rule. The error says what is missing or wrong.
    pub fn check(&self) -> std::result::Result<(), String> {
        fn required<'a>(
            value: &'a Option<String>,
            what: &str,
            kind: &str,
        ) -> std::result::Result<&'a str, String> {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("a {kind} decision needs `{what}`"))
        }

        if self.rationale.trim().is_empty() {
            return Err("a decision needs a `rationale`".to_owned());
        }
        match self.kind {
            DecisionKind::RiskAccepted => {
                required(&self.owner, "owner", "risk_accepted")?;
                required(&self.approver, "approver", "risk_accepted")?;
                let day = required(&self.expires_on, "expires_on", "risk_accepted")?;
                if !is_day(day) {
                    return Err(format!("expires_on `{day}` is not a date (YYYY-MM-DD)"));
                }
            }
            DecisionKind::Mitigated => {
                required(&self.link, "link", "mitigated")?;
            }
            DecisionKind::FalsePositive | DecisionKind::ApprovedPattern | DecisionKind::Policy => {}
        }
        match self.scope {
            DecisionScope::Finding => {
                required(&self.fingerprint, "fingerprint", "finding-scoped")?;
            }
            DecisionScope::RuleOnComponent => {
                required(&self.rule, "rule", "rule_on_component")?;
                required(&self.component, "component", "rule_on_component")?;
            }
            DecisionScope::Pattern => {}
        }
        Ok(())
    }
}

/// Whether `s` is a day written `YYYY-MM-DD`.
pub fn is_day(s: &str) -> bool {
    let b = s.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return false;
    }
    let number = |range: std::ops::Range<usize>| s[range].parse::<u32>().unwrap_or(0);
    let (year, month, day) = (number(0..4), number(5..7), number(8..10));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// A stored decision with its embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDecision {
    /// The decision.
    pub decision: Decision,
    /// Embedding of its matching text.
    pub vector: Vec<f32>,
}

/// The text of a finding that is embedded and compared: what, where, and the quoted evidence.
pub fn finding_text(f: &Finding) -> String {
    let evidence: Vec<&str> = f.evidence.iter().map(|e| e.text.as_str()).collect();
    format!("{} on {}. {}", f.title, f.element_name, evidence.join(" "))
}

/// A decision as the `decisions` table's `body` column holds it.
fn stored_body(body: &str) -> Result<Decision> {
    serde_json::from_str(body).map_err(|e| Error::Invalid {
        what: "stored decision",
        reason: e.to_string(),
    })
}

/// What [`Memory::add_decisions`] did with the decisions it was given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecisionsStored {
    /// Decisions with an id not stored before.
    pub added: usize,
    /// Ids of stored decisions that were replaced by different ones.
    pub replaced: Vec<String>,
    /// Decisions already stored as given (but for when they were recorded): left as they were.
    pub unchanged: usize,
}

impl Memory {
    /// Stores decisions, embedding their matching texts in one batch, in one commit of the
    /// `decisions` table. One with the id of a stored decision replaces it when it differs
    /// (keeping when the stored one was made) and is left out when it is the same; the answer
    /// says which, so that an import does not replace decisions unseen.
    pub async fn add_decisions(
        &self,
        decisions: &[Decision],
        embedder: &dyn TextEmbedder,
    ) -> Result<DecisionsStored> {
        let mut stored = DecisionsStored::default();
        if decisions.is_empty() {
            return Ok(stored);
        }
        // The last of several decisions with one id wins, as if stored one after the other.
        let mut seen = std::collections::HashSet::new();
        let mut latest: Vec<Decision> = decisions
            .iter()
            .rev()
            .filter(|d| seen.insert(d.id.as_str()))
            .cloned()
            .collect();
        latest.reverse();
        let before = self.decisions_by_id(&latest).await?;
        let mut fresh = Vec::new();
        for mut d in latest {
            match before.get(&d.id) {
                None => stored.added += 1,
                Some(old) => {
                    let made = old.created_at_ms;
                    d.created_at_ms = made;
                    if *old == d {
                        stored.unchanged += 1;
                        continue;
                    }
                    stored.replaced.push(d.id.clone());
                }
            }
            fresh.push(d);
        }
        if fresh.is_empty() {
            return Ok(stored);
        }
        let texts: Vec<&str> = fresh.iter().map(Decision::matching_text).collect();
        let vectors = embedder.embed(&texts)?;
        let mut rows = Rows::new(lance::decisions_schema(self.dimensions()));
        for (d, v) in fresh.iter().zip(&vectors) {
            let body = serde_json::to_string(d).map_err(|e| Error::Invalid {
                what: "decision",
                reason: e.to_string(),
            })?;
            rows.push(&[
                Value::Text(&d.id),
                Value::Text(d.kind.as_str()),
                Value::Text(&body),
                Value::Text(d.matching_text()),
                Value::Int(d.created_at_ms),
                Value::Vector(v),
            ])?;
        }
        let mut merge = self.tables().await?.decisions.merge_insert(&["id"]);
        merge
            .when_matched_update_all(None)
            .when_not_matched_insert_all();
        merge.execute(lance::reader(rows.finish()?)).await?;
        Ok(stored)
    }

    /// The stored decisions among those with the ids of `decisions`, by id.
    async fn decisions_by_id(
        &self,
        decisions: &[Decision],
    ) -> Result<std::collections::HashMap<String, Decision>> {
        let tables = self.tables().await?;
        let mut found = std::collections::HashMap::new();
        for group in decisions.chunks(500) {
            let ids: Vec<String> = group.iter().map(|d| lance::lit(&d.id)).collect();
            let filter = format!("id IN ({})", ids.join(", "));
            for b in lance::select(&tables.decisions, Some(filter), &["body"]).await? {
                let bodies = lance::strings(&b, "body")?;
                for i in 0..b.num_rows() {
                    let d = stored_body(bodies.value(i))?;
                    found.insert(d.id.clone(), d);
                }
            }
        }
        Ok(found)
    }

    /// Every stored decision (a security team's decisions number in the thousands, so they are
    /// compared in memory).
    pub async fn decisions(&self) -> Result<Vec<StoredDecision>> {
        let tables = self.tables().await?;
        let mut out = Vec::new();
        for b in lance::select(&tables.decisions, None, &["id", "body", "vector"]).await? {
            let bodies = lance::strings(&b, "body")?;
            for i in 0..b.num_rows() {
                let decision = stored_body(bodies.value(i))?;
                out.push(StoredDecision {
                    decision,
                    vector: lance::vector_at(&b, i)?,
                });
            }
        }
        out.sort_by(|a: &StoredDecision, b| a.decision.id.cmp(&b.decision.id));
        Ok(out)
    }

    /// Decisions by hybrid search (shared words, and meaning at
    /// [`MIN_SIMILARITY`](crate::memory::MIN_SIMILARITY) or closer, fused by reciprocal rank),
    /// best first.
    pub async fn search_decisions(
        &self,
        text: &str,
        vector: &[f32],
        kind: Option<DecisionKind>,
        limit: usize,
    ) -> Result<Vec<(StoredDecision, f32)>> {
        let all = self.decisions().await?;
        let candidates: Vec<&StoredDecision> = all
            .iter()
            .filter(|d| kind.is_none_or(|k| d.decision.kind == k))
            .collect();
        let mut by_vector: Vec<(&StoredDecision, f32)> = candidates
            .iter()
            .map(|d| (*d, crate::embed::cosine(&d.vector, vector)))
            .filter(|(_, similarity)| *similarity >= crate::memory::MIN_SIMILARITY)
            .collect();
        by_vector.sort_by(|a, b| b.1.total_cmp(&a.1));
        let vector_ids: Vec<String> = by_vector
            .iter()
            .map(|(d, _)| d.decision.id.clone())
            .collect();
        let text_ids: Vec<String> = rank_by_terms(text, &candidates);

        let fused = crate::memory::fuse(&[&vector_ids, &text_ids]);
        Ok(fused
            .into_iter()
            .take(limit)
            .filter_map(|(id, score)| {
                let d = candidates.iter().find(|d| d.decision.id == id)?;
                Some(((*d).clone(), score))
            })
            .collect())
    }

    /// Stores the finding texts of one artifact version with their embeddings, replacing what
    /// an earlier call stored for that version (so a repeated call stores them once), in one
    /// commit of the `findings` table.
    pub async fn add_findings(
        &self,
        artifact: &crate::memory::ArtifactRecord,
        version: u32,
        findings: &[Finding],
        embedder: &dyn TextEmbedder,
    ) -> Result<()> {
        if findings.is_empty() {
            return Ok(());
        }
        let texts: Vec<String> = findings.iter().map(finding_text).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vectors = embedder.embed(&refs)?;
        let a = artifact;
        let at = now_ms();
        let mut rows = Rows::new(lance::findings_schema(self.dimensions()));
        let mut seen = std::collections::HashSet::new();
        for ((f, text), v) in findings.iter().zip(&texts).zip(&vectors) {
            if !seen.insert(f.id.as_str()) {
                continue;
            }
            rows.push(&[
                Value::Text(&f.id),
                Value::Text(&a.artifact_id),
                Value::Int(i64::from(version)),
                Value::Text(&f.rule),
                Value::Text(&f.element_name),
                Value::Text(&f.title),
                Value::Text(text),
                Value::Text(&a.tool),
                Value::Maybe(a.team.as_deref()),
                Value::Maybe(a.project.as_deref()),
                Value::Int(at),
                Value::Vector(v),
            ])?;
        }
        let mut merge =
            self.tables()
                .await?
                .findings
                .merge_insert(&["artifact_id", "version", "fingerprint"]);
        merge
            .when_matched_update_all(None)
            .when_not_matched_insert_all()
            .when_not_matched_by_source_delete(Some(format!(
                "artifact_id = {} AND version = {version}",
                lit(&a.artifact_id)
            )));
        merge.execute(lance::reader(rows.finish()?)).await?;
        Ok(())
    }

    /// Number of stored finding texts for an artifact.
    pub async fn finding_count(&self, artifact_id: &str) -> Result<usize> {
        Ok(self
            .tables()
            .await?
            .findings
            .count_rows(Some(format!("artifact_id = {}", lit(artifact_id))))
            .await?)
    }
}

/// Candidates ranked by how many of the query's words their texts share (a small in-memory
/// full-text ranking for the decision set).
fn rank_by_terms(query: &str, candidates: &[&StoredDecision]) -> Vec<String> {
    let terms: Vec<String> = words(query);
    let mut scored: Vec<(usize, &str)> = candidates
        .iter()
        .map(|d| {
            let hay = words(&format!(
                "{} {}",
                d.decision.matching_text(),
                d.decision.rationale
            ));
            let hits = terms.iter().filter(|t| hay.contains(t)).count();
            (hits, d.decision.id.as_str())
        })
        .filter(|(hits, _)| *hits > 0)
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.into_iter().map(|(_, id)| id.to_owned()).collect()
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 2)
        .map(str::to_lowercase)
        .collect()
}

/// Characters that print as nothing or reorder text: zero-width spaces and joiners, direction
/// marks and overrides, the byte-order mark, and line and paragraph separators.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{00AD}')
}

/// The civil date (year, month, day) of a day counted from 1970-01-01 (H. Hinnant's algorithm).
pub fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as u32, d as u32)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(kind: DecisionKind, scope: DecisionScope) -> Decision {
        Decision {
            id: "d1".to_owned(),
            kind,
            scope,
            fingerprint: Some("fp".to_owned()),
            rule: None,
            component: None,
            artifact_id: None,
            external_key: None,
            tool: None,
            team: None,
            project: None,
            rationale: "why".to_owned(),
            owner: None,
            approver: None,
            expires_on: None,
            link: None,
            context: String::new(),
            created_at_ms: 0,
        }
    }

    #[test]
    fn days_are_calendar_dates() {
        for day in ["2027-12-31", "2028-02-29", "2000-02-29"] {
            assert!(is_day(day), "{day}");
        }
        for day in [
            "2027-13-45",
            "2027-02-29",
            "1900-02-29",
            "2027-04-31",
            "2027-00-10",
            "31/12/2027",
        ] {
            assert!(!is_day(day), "{day}");
        }
    }

    #[test]
    fn check_names_what_a_kind_and_scope_need() {
        let ok = decision(DecisionKind::FalsePositive, DecisionScope::Finding);
        assert_eq!(ok.check(), Ok(()));

        let mut d = decision(DecisionKind::RiskAccepted, DecisionScope::Finding);
        assert_eq!(
            d.check().unwrap_err(),
            "a risk_accepted decision needs `owner`"
        );
        d.owner = Some("ana".to_owned());
        d.approver = Some(" ".to_owned());
        assert_eq!(
            d.check().unwrap_err(),
            "a risk_accepted decision needs `approver`"
        );
        d.approver = Some("bo".to_owned());
        d.expires_on = Some("31/12/2027".to_owned());
        assert_eq!(
            d.check().unwrap_err(),
            "expires_on `31/12/2027` is not a date (YYYY-MM-DD)"
        );
        d.expires_on = Some("2027-12-31".to_owned());
        assert_eq!(d.check(), Ok(()));

        let mut d = decision(DecisionKind::Policy, DecisionScope::RuleOnComponent);
        d.component = Some("api".to_owned());
        assert_eq!(
            d.check().unwrap_err(),
            "a rule_on_component decision needs `rule`"
        );

        let mut d = decision(DecisionKind::FalsePositive, DecisionScope::Finding);
        d.fingerprint = None;
        assert_eq!(
            d.check().unwrap_err(),
            "a finding-scoped decision needs `fingerprint`"
        );

        let d = decision(DecisionKind::Mitigated, DecisionScope::Pattern);
        assert_eq!(d.check().unwrap_err(), "a mitigated decision needs `link`");
    }
}
