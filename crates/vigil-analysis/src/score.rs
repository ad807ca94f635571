//! Scoring: every finding gets a 0-10 score from named factors in three groups, exploitability,
//! blast radius and urgency, each factor with its value and the reason for it, so a reader can
//! see why a finding scores 8.1 and not 5.0. Weights, severity bands and SLAs come from config;
//! the same input always gives the same score.

use serde::{Deserialize, Serialize};

use vigil_catalog::Catalog;
use vigil_core::{Artifact, ElementKind, Factor, FactorGroup, Finding, Score, Severity, TrustZone};

use crate::model::Model;
use crate::threats::Candidate;

/// Weights of the factors inside the exploitability group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExploitabilityWeights {
    /// How hard the attack is, from the rule.
    pub attack_complexity: f64,
    /// Who can reach the element.
    pub access: f64,
    /// Whether a person must be tricked.
    pub user_interaction: f64,
    /// Controls stated or ruled out.
    pub controls: f64,
    /// How directly the artifact states the weakness.
    pub evidence: f64,
}

impl Default for ExploitabilityWeights {
    fn default() -> Self {
        ExploitabilityWeights {
            attack_complexity: 1.0,
            access: 1.5,
            user_interaction: 0.5,
            controls: 1.0,
            evidence: 1.0,
        }
    }
}

/// Weights of the factors inside the blast-radius group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlastRadiusWeights {
    /// Sensitivity of the data exposed.
    pub data_class: f64,
    /// How far an attacker can move from here.
    pub lateral_movement: f64,
    /// How much the business depends on the element.
    pub business_criticality: f64,
    /// Compliance regimes in scope.
    pub compliance_scope: f64,
    /// The rule's own impact rating.
    pub threat_impact: f64,
}

impl Default for BlastRadiusWeights {
    fn default() -> Self {
        BlastRadiusWeights {
            data_class: 1.5,
            lateral_movement: 1.0,
            business_criticality: 1.0,
            compliance_scope: 0.5,
            threat_impact: 1.5,
        }
    }
}

/// Weights of the factors inside the urgency group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UrgencyWeights {
    /// Due date or sprint of the artifact.
    pub due_date: f64,
    /// Elements that depend on this one.
    pub dependencies: f64,
    /// Whether the pattern is widely exploited.
    pub known_exploited: f64,
}

impl Default for UrgencyWeights {
    fn default() -> Self {
        UrgencyWeights {
            due_date: 1.0,
            dependencies: 0.5,
            known_exploited: 1.0,
        }
    }
}

/// Lower bounds of the severity bands on the 0-10 scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeverityBands {
    /// Critical from here.
    pub critical: f64,
    /// High from here.
    pub high: f64,
    /// Medium from here.
    pub medium: f64,
    /// Low from here; below is info.
    pub low: f64,
}

impl Default for SeverityBands {
    fn default() -> Self {
        SeverityBands {
            critical: 9.0,
            high: 7.0,
            medium: 4.0,
            low: 1.0,
        }
    }
}

impl SeverityBands {
    /// The band of a score.
    pub fn severity(&self, value: f64) -> Severity {
        if value >= self.critical {
            Severity::Critical
        } else if value >= self.high {
            Severity::High
        } else if value >= self.medium {
            Severity::Medium
        } else if value >= self.low {
            Severity::Low
        } else {
            Severity::Info
        }
    }
}

/// Days to fix a finding of each severity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlaDays {
    /// Critical.
    pub critical: u32,
    /// High.
    pub high: u32,
    /// Medium.
    pub medium: u32,
    /// Low.
    pub low: u32,
}

impl Default for SlaDays {
    fn default() -> Self {
        SlaDays {
            critical: 7,
            high: 30,
            medium: 90,
            low: 120,
        }
    }
}

impl SlaDays {
    /// Days allowed for a severity; info findings have none.
    pub fn days(&self, severity: Severity) -> Option<u32> {
        match severity {
            Severity::Critical => Some(self.critical),
            Severity::High => Some(self.high),
            Severity::Medium => Some(self.medium),
            Severity::Low => Some(self.low),
            Severity::Info => None,
        }
    }
}

/// The scoring configuration (`[scoring]` in vigil.toml).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoringConfig {
    /// Exponent of exploitability in the formula.
    pub exploitability_weight: f64,
    /// Exponent of blast radius in the formula.
    pub blast_radius_weight: f64,
    /// Share of the score that urgency can move, 0..=1.
    pub urgency_share: f64,
    /// Factor weights of exploitability.
    pub exploitability: ExploitabilityWeights,
    /// Factor weights of blast radius.
    pub blast_radius: BlastRadiusWeights,
    /// Factor weights of urgency.
    pub urgency: UrgencyWeights,
    /// Severity bands.
    pub bands: SeverityBands,
    /// SLA days per severity.
    pub sla_days: SlaDays,
    /// Date (YYYY-MM-DD) urgency is measured from; by default the artifact's last update.
    pub as_of: Option<String>,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        ScoringConfig {
            exploitability_weight: 0.5,
            blast_radius_weight: 0.5,
            urgency_share: 0.25,
            exploitability: ExploitabilityWeights::default(),
            blast_radius: BlastRadiusWeights::default(),
            urgency: UrgencyWeights::default(),
            bands: SeverityBands::default(),
            sla_days: SlaDays::default(),
            as_of: None,
        }
    }
}

/// Collects weighted factors and averages them.
#[derive(Debug, Clone, Default)]
pub struct FactorGroupBuilder {
    factors: Vec<Factor>,
}

impl FactorGroupBuilder {
    /// Adds a factor.
    pub fn add(mut self, name: &str, value: f64, weight: f64, reason: impl Into<String>) -> Self {
        self.factors.push(Factor {
            name: name.to_owned(),
            value: round2(value),
            weight,
            reason: reason.into(),
        });
        self
    }

    /// The weighted mean of the factors (0 with none).
    pub fn build(self) -> FactorGroup {
        let total: f64 = self.factors.iter().map(|f| f.weight).sum();
        let value = if total > 0.0 {
            self.factors.iter().map(|f| f.value * f.weight).sum::<f64>() / total
        } else {
            0.0
        };
        FactorGroup {
            value: round2(value),
            factors: self.factors,
        }
    }
}

/// Scores the candidates and returns the findings, highest score first.
pub fn score_all(
    candidates: Vec<Candidate>,
    model: &Model,
    artifact: &Artifact,
    catalog: &Catalog,
    config: &ScoringConfig,
) -> Vec<Finding> {
    let timing = Timing::of(artifact, config);
    let mut findings: Vec<Finding> = candidates
        .into_iter()
        .map(|c| {
            let mut finding = c.finding.clone();
            finding.score = score(&c, model, &timing, catalog, config);
            // The same rule, element name and quote in two artifacts are two findings.
            finding.id = crate::threats::scoped_id(&artifact.id, &finding.id);
            finding
        })
        .collect();
    rank(&mut findings);
    findings
}

/// Orders findings highest score first; ties by rule, then element, so the order is stable.
pub fn rank(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.score
            .value
            .total_cmp(&a.score.value)
            .then_with(|| a.rule.cmp(&b.rule))
            .then_with(|| a.element.cmp(&b.element))
    });
}

fn score(
    c: &Candidate,
    model: &Model,
    timing: &Timing,
    catalog: &Catalog,
    config: &ScoringConfig,
) -> Score {
    let f = &c.finding;
    let rule = catalog.rules.get(&f.rule);
    let view = ElementView::of(f, model);
    let exploitability = exploitability(c, rule, &view, catalog, config);
    let blast_radius = blast_radius(rule, &view, catalog, config);
    let urgency = urgency(rule, &view, timing, config);
    let u = config.urgency_share.clamp(0.0, 1.0);
    let raw = 10.0
        * exploitability.value.powf(config.exploitability_weight)
        * blast_radius.value.powf(config.blast_radius_weight)
        * (1.0 - u + u * urgency.value);
    let value = (raw.clamp(0.0, 10.0) * 10.0).round() / 10.0;
    let mut adjustments = Vec::new();
    if let Some(control) = &c.partially_mitigated {
        let label = catalog
            .lexicon
            .control(control)
            .map_or(control.as_str(), |c| c.label.as_str());
        adjustments.push(format!(
            "lowered: the design states {label}, which addresses this threat"
        ));
    }
    let severity = config.bands.severity(value);
    Score {
        value,
        severity,
        sla_days: config.sla_days.days(severity),
        exploitability,
        blast_radius,
        urgency,
        adjustments,
        formula: format!(
            "10 x exploitability^{} x blast_radius^{} x ({:.2} + {:.2} x urgency)",
            config.exploitability_weight,
            config.blast_radius_weight,
            1.0 - u,
            u
        ),
    }
}

/// What scoring needs to know of the element a finding is on.
struct ElementView {
    zones: Vec<TrustZone>,
    entry_point: bool,
    components: Vec<String>,
    data: Vec<String>,
    signals: Vec<String>,
    absent_controls: Vec<String>,
    degree: usize,
    in_degree: usize,
}

impl ElementView {
    fn of(f: &Finding, model: &Model) -> ElementView {
        let dfd = &model.dfd;
        let degree_of = |id: &str| {
            dfd.flows
                .iter()
                .filter(|fl| fl.from == id || fl.to == id)
                .count()
        };
        let in_degree_of = |id: &str| dfd.flows.iter().filter(|fl| fl.to == id).count();
        if f.element_kind == ElementKind::Flow {
            let i = dfd
                .flows
                .iter()
                .position(|fl| fl.id == f.element)
                .unwrap_or(0);
            let flow = &dfd.flows[i];
            let facts = &model.flow_facts[i];
            let ends: Vec<_> = [&flow.from, &flow.to]
                .into_iter()
                .filter_map(|id| dfd.node(id))
                .collect();
            let mut data: Vec<String> = facts.data.keys().cloned().collect();
            data.extend(ends.iter().flat_map(|n| n.data.iter().cloned()));
            return ElementView {
                zones: ends.iter().map(|n| n.trust_zone).collect(),
                entry_point: ends.iter().any(|n| n.entry_point),
                components: ends.iter().map(|n| n.component.clone()).collect(),
                data,
                signals: facts.signals.keys().cloned().collect(),
                absent_controls: facts.absent_controls.keys().cloned().collect(),
                degree: ends.iter().map(|n| degree_of(&n.id)).max().unwrap_or(0),
                in_degree: ends.iter().map(|n| in_degree_of(&n.id)).max().unwrap_or(0),
            };
        }
        let i = dfd
            .nodes
            .iter()
            .position(|n| n.id == f.element)
            .unwrap_or(0);
        let node = &dfd.nodes[i];
        ElementView {
            zones: vec![node.trust_zone],
            entry_point: node.entry_point,
            components: vec![node.component.clone()],
            data: node.data.clone(),
            signals: node.signals.clone(),
            absent_controls: node.absent_controls.clone(),
            degree: degree_of(&node.id),
            in_degree: in_degree_of(&node.id),
        }
    }
}

fn exploitability(
    c: &Candidate,
    rule: Option<&vigil_catalog::Rule>,
    view: &ElementView,
    catalog: &Catalog,
    config: &ScoringConfig,
) -> FactorGroup {
    let w = &config.exploitability;
    let likelihood = rule.map_or(0.6, |r| r.likelihood.value());
    let (access, access_reason) = access(view);
    let (interaction, interaction_reason) =
        if view.signals.iter().any(|s| s == "social_engineering") {
            (0.6, "a person has to be tricked first")
        } else {
            (1.0, "no user interaction needed")
        };
    let ruled_out = rule.and_then(|r| {
        r.mitigated_by
            .iter()
            .find(|m| view.absent_controls.contains(m))
    });
    let (controls, controls_reason) = match (ruled_out, &c.partially_mitigated) {
        (Some(m), _) => (
            1.0,
            format!("the artifact rules out {}", control_label(catalog, m)),
        ),
        (None, Some(m)) => (
            0.5,
            format!(
                "the design states {} elsewhere, which lowers the odds",
                control_label(catalog, m)
            ),
        ),
        (None, None) => (0.8, "no control for this threat is stated".to_owned()),
    };
    let (evidence, evidence_reason) = match c.strength {
        s if s >= 3 => (1.0, "the artifact states the weakness"),
        s if s >= 1 => (0.75, "the artifact states facts the threat needs"),
        _ => (0.5, "inferred from the kind of component"),
    };
    FactorGroupBuilder::default()
        .add(
            "attack_complexity",
            likelihood,
            w.attack_complexity,
            format!("rule likelihood {}", level_word(likelihood)),
        )
        .add("access", access, w.access, access_reason)
        .add(
            "user_interaction",
            interaction,
            w.user_interaction,
            interaction_reason,
        )
        .add("controls", controls, w.controls, controls_reason)
        .add("evidence", evidence, w.evidence, evidence_reason)
        .build()
}

fn access(view: &ElementView) -> (f64, String) {
    if view.entry_point || view.zones.contains(&TrustZone::Internet) {
        return (1.0, "reachable by untrusted callers".to_owned());
    }
    let best = view
        .zones
        .iter()
        .map(|z| match z {
            TrustZone::Internet => 1.0,
            TrustZone::Edge => 0.9,
            TrustZone::Device => 0.7,
            TrustZone::Partner | TrustZone::ThirdParty => 0.6,
            TrustZone::Internal => 0.45,
            TrustZone::Restricted => 0.3,
        })
        .fold(0.0, f64::max);
    let zone = view
        .zones
        .iter()
        .max_by(|a, b| a.cmp(b))
        .map_or("unknown", |z| z.as_str());
    (best, format!("needs a foothold in the {zone} zone first"))
}

fn blast_radius(
    rule: Option<&vigil_catalog::Rule>,
    view: &ElementView,
    catalog: &Catalog,
    config: &ScoringConfig,
) -> FactorGroup {
    let w = &config.blast_radius;
    let classes: Vec<_> = view
        .data
        .iter()
        .filter_map(|d| catalog.lexicon.data_class(d))
        .collect();
    let top = classes.iter().max_by_key(|d| d.sensitivity);
    let (data, data_reason) = match top {
        Some(d) => (
            f64::from(d.sensitivity) / 4.0,
            format!("handles {}", d.label.to_lowercase()),
        ),
        None => (0.25, "no sensitive data named".to_owned()),
    };
    let credentials = view
        .data
        .iter()
        .any(|d| d == "credentials" || d == "tokens");
    let (lateral, lateral_reason) = if credentials {
        (
            0.9,
            "credentials or tokens here let an attacker move on".to_owned(),
        )
    } else {
        let v = (0.3 + 0.1 * view.degree as f64).min(1.0);
        (v, format!("connected to {} flow(s)", view.degree))
    };
    let criticality = view
        .components
        .iter()
        .filter_map(|c| catalog.lexicon.component(c))
        .map(|c| c.criticality)
        .fold(0.0, f64::max);
    let scopes: Vec<&str> = classes
        .iter()
        .flat_map(|d| d.scopes.iter().map(String::as_str))
        .collect();
    let (compliance, compliance_reason) = if scopes.iter().any(|s| *s == "pci_dss" || *s == "hipaa")
    {
        (1.0, "in PCI DSS or HIPAA scope")
    } else if scopes.contains(&"gdpr") {
        (0.7, "personal data: privacy law in scope")
    } else if scopes.contains(&"soc2") {
        (0.5, "in SOC 2 scope")
    } else {
        (0.3, "no regulated data named")
    };
    let impact = rule.map_or(0.6, |r| r.impact.value());
    FactorGroupBuilder::default()
        .add("data_class", data, w.data_class, data_reason)
        .add(
            "lateral_movement",
            lateral,
            w.lateral_movement,
            lateral_reason,
        )
        .add(
            "business_criticality",
            criticality,
            w.business_criticality,
            "criticality of the component type",
        )
        .add(
            "compliance_scope",
            compliance,
            w.compliance_scope,
            compliance_reason,
        )
        .add(
            "threat_impact",
            impact,
            w.threat_impact,
            format!("rule impact {}", level_word(impact)),
        )
        .build()
}

fn urgency(
    rule: Option<&vigil_catalog::Rule>,
    view: &ElementView,
    timing: &Timing,
    config: &ScoringConfig,
) -> FactorGroup {
    let w = &config.urgency;
    let (due, due_reason) = timing.due_factor();
    let dependencies = (0.2 + 0.2 * view.in_degree as f64).min(1.0);
    let known = rule.is_some_and(|r| r.known_exploited);
    FactorGroupBuilder::default()
        .add("due_date", due, w.due_date, due_reason)
        .add(
            "dependencies",
            dependencies,
            w.dependencies,
            format!("{} flow(s) lead into it", view.in_degree),
        )
        .add(
            "known_exploited",
            if known { 1.0 } else { 0.3 },
            w.known_exploited,
            if known {
                "pattern widely exploited in the wild"
            } else {
                "not a commonly exploited pattern"
            },
        )
        .build()
}

/// When the artifact is due, relative to the reference date.
struct Timing {
    days_left: Option<i64>,
    sprint: Option<String>,
}

impl Timing {
    fn of(artifact: &Artifact, config: &ScoringConfig) -> Timing {
        let reference = config
            .as_of
            .as_deref()
            .or(artifact.meta.updated.as_deref())
            .and_then(days_from_date);
        let due = artifact.meta.due_date.as_deref().and_then(days_from_date);
        let days_left = match (due, reference) {
            (Some(d), Some(r)) => Some(d - r),
            _ => None,
        };
        Timing {
            days_left,
            sprint: artifact.meta.sprint.clone(),
        }
    }

    fn due_factor(&self) -> (f64, String) {
        match (self.days_left, &self.sprint) {
            (Some(d), _) if d < 0 => (1.0, format!("overdue by {} day(s)", -d)),
            (Some(d), _) if d <= 14 => (1.0, format!("due in {d} day(s)")),
            (Some(d), _) if d <= 45 => (0.7, format!("due in {d} days")),
            (Some(d), _) => (0.4, format!("due in {d} days")),
            (None, Some(s)) => (0.8, format!("planned for {s}")),
            (None, None) => (0.3, "no due date or sprint in the artifact".to_owned()),
        }
    }
}

/// Days since 1970-01-01 of a date written `YYYY-MM-DD...`.
pub fn days_from_date(s: &str) -> Option<i64> {
    let y: i64 = s.get(0..4)?.parse().ok()?;
    let m: i64 = s.get(5..7)?.parse().ok()?;
    let d: i64 = s.get(8..10)?.parse().ok()?;
    let month_days = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&m) || d < 1 || d > month_days[(m - 1) as usize] {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

fn control_label<'a>(catalog: &'a Catalog, id: &'a str) -> String {
    catalog
        .lexicon
        .control(id)
        .map_or(id, |c| c.label.as_str())
        .to_lowercase()
}

fn level_word(v: f64) -> &'static str {
    if v >= 0.8 {
        "high"
    } else if v >= 0.5 {
        "medium"
    } else {
        "low"
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_count_days() {
        assert_eq!(days_from_date("1970-01-01"), Some(0));
        assert_eq!(
            days_from_date("2026-12-04T10:00:00Z").zip(days_from_date("2026-11-04")),
            Some((20_791, 20_761))
        );
        assert_eq!(
            days_from_date("2024-03-01").map(|d| d - days_from_date("2024-02-28").unwrap()),
            Some(2)
        );
        assert_eq!(days_from_date("garbage"), None);
    }

    #[test]
    fn bands_follow_thresholds() {
        let bands = SeverityBands::default();
        assert_eq!(bands.severity(9.0), Severity::Critical);
        assert_eq!(bands.severity(8.99), Severity::High);
        assert_eq!(bands.severity(4.0), Severity::Medium);
        assert_eq!(bands.severity(0.5), Severity::Info);
    }

    #[test]
    fn groups_are_weighted_means() {
        let g = FactorGroupBuilder::default()
            .add("a", 1.0, 3.0, "")
            .add("b", 0.0, 1.0, "")
            .build();
        assert_eq!(g.value, 0.75);
        assert_eq!(FactorGroupBuilder::default().build().value, 0.0);
    }
}
