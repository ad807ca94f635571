//! Memory consulted before a review is final.
//!
//! [`recall`] runs after the analysis pipeline (the pipeline itself knows nothing of storage):
//! - unexpired risk acceptances and false positives that apply to a finding mark it accepted
//!   or false positive instead of raising it again; an expired acceptance reopens it;
//! - approved patterns whose statement matches the artifact count as stated controls;
//! - similar past findings that were mitigated bring their precedent ("mitigated in PAY-412:
//!   tokenized card data");
//! - a rule this organisation keeps marking false positive is scored lower, with the reason
//!   added to the score's adjustments.
//!
//! A decision applies to a finding by scope: the same fingerprint; the same rule and a finding
//! whose text is at least `decision_similarity` similar to the one decided on (the same design,
//! reworded); the same rule on the named component; or, for patterns, an artifact chunk at
//! least `pattern_similarity` similar to the pattern.

use serde::{Deserialize, Serialize};

use vigil_analysis::score::SeverityBands;
use vigil_core::{Finding, Review};

use crate::decisions::{finding_text, DecisionKind, DecisionScope, StoredDecision};
use crate::embed::{cosine, TextEmbedder};
use crate::memory::Memory;
use crate::Result;

/// Thresholds of [`recall`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecallConfig {
    /// Least cosine similarity between a finding and the finding a decision was made on for the
    /// decision to apply.
    pub decision_similarity: f32,
    /// Least similarity between an approved pattern and an artifact chunk.
    pub pattern_similarity: f32,
    /// Least similarity for a past mitigation to be offered as a precedent.
    pub precedent_similarity: f32,
    /// Most precedents shown per finding.
    pub max_precedents: usize,
    /// Dispositions of a rule counted before feedback lowers its score.
    pub feedback_min_dispositions: u32,
    /// Share of false positives among them that lowers the score.
    pub feedback_false_positive_share: f64,
    /// Factor applied to the score of such a rule's findings.
    pub feedback_score_factor: f64,
}

impl Default for RecallConfig {
    fn default() -> Self {
        RecallConfig {
            decision_similarity: 0.80,
            pattern_similarity: 0.70,
            precedent_similarity: 0.60,
            max_precedents: 3,
            feedback_min_dispositions: 5,
            feedback_false_positive_share: 0.6,
            feedback_score_factor: 0.7,
        }
    }
}

/// Where memory leaves a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Raised.
    Open,
    /// An unexpired risk acceptance applies: shown as accepted, not raised again.
    Accepted,
    /// A false-positive decision applies.
    FalsePositive,
    /// A risk acceptance applied but has expired: raised again.
    Reopened,
    /// An approved pattern in the artifact counts as a control against it.
    Controlled,
}

/// A past mitigation offered for a finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Precedent {
    /// The decision.
    pub decision_id: String,
    /// The artifact key it was made on, e.g. `PAY-412`.
    pub external_key: Option<String>,
    /// How it was mitigated.
    pub rationale: String,
    /// Ticket or pull request.
    pub link: Option<String>,
    /// Similarity to this finding.
    pub similarity: f32,
    /// For people: "mitigated in PAY-412: ...".
    pub summary: String,
}

/// What memory said about one finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingRecall {
    /// The finding's fingerprint.
    pub fingerprint: String,
    /// Its disposition.
    pub disposition: Disposition,
    /// The decision that set it.
    pub decision_id: Option<String>,
    /// Why, for people.
    pub reason: String,
    /// Past mitigations of similar findings.
    pub precedents: Vec<Precedent>,
}

/// Who is asking and when: the organisation whose feedback counts and today's date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecallContext {
    /// The organisation.
    pub org: String,
    /// Today, `YYYY-MM-DD` (acceptances expiring before it are expired).
    pub today: String,
}

/// Consults memory for every finding of `review`, applies feedback to scores in place, and
/// returns one [`FindingRecall`] per finding in order.
pub async fn recall(
    memory: &Memory,
    feedback: &[(String, String, u32)],
    review: &mut Review,
    ctx: &RecallContext,
    embedder: &dyn TextEmbedder,
    config: &RecallConfig,
    bands: &SeverityBands,
) -> Result<Vec<FindingRecall>> {
    let decisions = memory.decisions().await?;
    let texts: Vec<String> = review.findings.iter().map(finding_text).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let vectors = embedder.embed(&refs)?;
    let patterns = pattern_matches(memory, review, &decisions, embedder, config).await?;
    // A decision recorded for one team or project applies within it only.
    let place = Place {
        team: review.meta.team.clone(),
        project: review.meta.project.clone(),
    };
    let in_place: Vec<StoredDecision> = decisions
        .iter()
        .filter(|d| place.admits(&d.decision))
        .cloned()
        .collect();

    let mut out = Vec::with_capacity(review.findings.len());
    for (finding, vector) in review.findings.iter_mut().zip(&vectors) {
        let mut r = decide(finding, vector, &in_place, &patterns, ctx, config);
        r.precedents = precedents(vector, &decisions, config);
        apply_feedback(finding, feedback, config, bands);
        out.push(r);
    }
    tracing::debug!(
        findings = out.len(),
        decisions = decisions.len(),
        "memory consulted"
    );
    Ok(out)
}

/// The approved patterns (and pattern-scoped policies) that match some chunk of the artifact.
async fn pattern_matches<'a>(
    memory: &Memory,
    review: &Review,
    decisions: &'a [StoredDecision],
    embedder: &dyn TextEmbedder,
    config: &RecallConfig,
) -> Result<Vec<&'a StoredDecision>> {
    let patterns: Vec<&StoredDecision> = decisions
        .iter()
        .filter(|d| d.decision.scope == DecisionScope::Pattern)
        .filter(|d| {
            matches!(
                d.decision.kind,
                DecisionKind::ApprovedPattern | DecisionKind::Policy
            )
        })
        .collect();
    if patterns.is_empty() {
        return Ok(Vec::new());
    }
    let mut sentences = quoted_evidence(review);
    if let Some(text) = memory.latest_text(&review.artifact).await? {
        sentences.extend(sentences_of(&text));
    }
    sentences.sort();
    sentences.dedup();
    let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let vectors = embedder.embed(&refs)?;
    Ok(patterns
        .into_iter()
        .filter(|p| {
            vectors
                .iter()
                .any(|v| cosine(v, &p.vector) >= config.pattern_similarity)
        })
        .collect())
}

/// The sentences the review's findings quote; patterns are matched sentence by sentence
/// against them and the artifact's stored text (when it was put in memory before the review),
/// since a pattern is one statement and a whole chunk dilutes it.
fn quoted_evidence(review: &Review) -> Vec<String> {
    review
        .findings
        .iter()
        .flat_map(|f| f.evidence.iter().map(|e| e.text.clone()))
        .collect()
}

/// The sentences of a text (split at `.`, `!` and `?`; line breaks inside a paragraph are
/// spaces), short fragments dropped.
fn sentences_of(text: &str) -> Vec<String> {
    text.replace('\n', " ")
        .split(['.', '!', '?'])
        .map(str::trim)
        .filter(|s| s.len() >= 20)
        .map(str::to_owned)
        .collect()
}

/// The team and project of the artifact under review.
struct Place {
    team: Option<String>,
    project: Option<String>,
}

impl Place {
    /// Whether a decision may apply here: a team or project it names must be this one (an
    /// artifact that names none is outside it).
    fn admits(&self, d: &crate::decisions::Decision) -> bool {
        let same = |decided: &Option<String>, here: &Option<String>| match (decided, here) {
            (Some(a), Some(b)) => a.trim().eq_ignore_ascii_case(b.trim()),
            (Some(_), None) => false,
            (None, _) => true,
        };
        d.scope == DecisionScope::Pattern
            || (same(&d.team, &self.team) && same(&d.project, &self.project))
    }
}

fn decide(
    finding: &Finding,
    vector: &[f32],
    decisions: &[StoredDecision],
    patterns: &[&StoredDecision],
    ctx: &RecallContext,
    config: &RecallConfig,
) -> FindingRecall {
    let open = |reason: &str| FindingRecall {
        fingerprint: finding.id.clone(),
        disposition: Disposition::Open,
        decision_id: None,
        reason: reason.to_owned(),
        precedents: Vec::new(),
    };

    let best = decisions
        .iter()
        .filter(|d| {
            matches!(
                d.decision.kind,
                DecisionKind::RiskAccepted | DecisionKind::FalsePositive
            )
        })
        .filter_map(|d| applies(d, finding, vector, config).map(|s| (d, s)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((d, similarity)) = best {
        let how = match (&d.decision.scope, &d.decision.rule, &d.decision.component) {
            (DecisionScope::RuleOnComponent, Some(rule), Some(component)) => {
                format!("rule {rule} on {component}")
            }
            _ if similarity >= 1.0 => "this finding".to_owned(),
            _ => format!("a finding {:.0}% similar", similarity * 100.0),
        };
        let (disposition, reason) = match d.decision.kind {
            DecisionKind::FalsePositive => (
                Disposition::FalsePositive,
                format!("false positive ({how}): {}", d.decision.rationale),
            ),
            _ => match &d.decision.expires_on {
                Some(day) if day.as_str() < ctx.today.as_str() => (
                    Disposition::Reopened,
                    format!("risk acceptance expired on {day}: raised again"),
                ),
                _ => (
                    Disposition::Accepted,
                    format!(
                        "risk accepted ({how}) by {} until {}: {}",
                        d.decision
                            .approver
                            .as_deref()
                            .unwrap_or("the security team"),
                        d.decision.expires_on.as_deref().unwrap_or("revoked"),
                        d.decision.rationale
                    ),
                ),
            },
        };
        return FindingRecall {
            disposition,
            decision_id: Some(d.decision.id.clone()),
            reason,
            ..open("")
        };
    }

    let pattern = patterns
        .iter()
        .find(|p| p.decision.rule.as_deref().is_none_or(|r| r == finding.rule));
    if let Some(p) = pattern {
        return FindingRecall {
            disposition: Disposition::Controlled,
            decision_id: Some(p.decision.id.clone()),
            reason: format!("approved pattern stated: {}", p.decision.rationale),
            ..open("")
        };
    }
    open("no decision applies")
}

/// Whether a decision applies to a finding, and how closely (1.0 for an exact scope match).
fn applies(d: &StoredDecision, f: &Finding, vector: &[f32], config: &RecallConfig) -> Option<f32> {
    let dec = &d.decision;
    let same_rule = dec.rule.as_deref().is_none_or(|r| r == f.rule);
    match dec.scope {
        DecisionScope::Finding => {
            if dec.fingerprint.as_deref() == Some(f.id.as_str()) {
                return Some(1.0);
            }
            let s = cosine(&d.vector, vector);
            (same_rule && dec.rule.is_some() && s >= config.decision_similarity).then_some(s)
        }
        DecisionScope::RuleOnComponent => {
            let component = dec.component.as_deref()?.to_lowercase();
            let name = f.element_name.to_lowercase();
            (same_rule && dec.rule.is_some() && name.contains(&component)).then_some(1.0)
        }
        DecisionScope::Pattern => None,
    }
}

fn precedents(
    vector: &[f32],
    decisions: &[StoredDecision],
    config: &RecallConfig,
) -> Vec<Precedent> {
    let mut found: Vec<Precedent> = decisions
        .iter()
        .filter(|d| d.decision.kind == DecisionKind::Mitigated)
        .map(|d| (d, cosine(&d.vector, vector)))
        .filter(|(_, s)| *s >= config.precedent_similarity)
        .map(|(d, similarity)| Precedent {
            decision_id: d.decision.id.clone(),
            external_key: d.decision.external_key.clone(),
            rationale: d.decision.rationale.clone(),
            link: d.decision.link.clone(),
            similarity,
            summary: format!(
                "mitigated in {}: {}",
                d.decision
                    .external_key
                    .as_deref()
                    .unwrap_or("an earlier review"),
                d.decision.rationale
            ),
        })
        .collect();
    found.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
    found.truncate(config.max_precedents);
    found
}

/// Lowers the score of a rule this organisation keeps marking false positive, visibly.
fn apply_feedback(
    f: &mut Finding,
    feedback: &[(String, String, u32)],
    config: &RecallConfig,
    bands: &SeverityBands,
) {
    let counts = feedback.iter().filter(|(rule, _, _)| *rule == f.rule);
    let (mut total, mut false_positive) = (0u32, 0u32);
    for (_, disposition, n) in counts {
        total += n;
        if disposition == DecisionKind::FalsePositive.as_str() {
            false_positive += n;
        }
    }
    if total < config.feedback_min_dispositions
        || f64::from(false_positive) / f64::from(total) < config.feedback_false_positive_share
    {
        return;
    }
    let before = f.score.value;
    f.score.value = (before * config.feedback_score_factor * 10.0).round() / 10.0;
    f.score.severity = bands.severity(f.score.value);
    f.score.adjustments.push(format!(
        "x{}: this organisation marked {false_positive} of {total} findings of {} false \
         positive ({before:.1} -> {:.1})",
        config.feedback_score_factor, f.rule, f.score.value
    ));
}
