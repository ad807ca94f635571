//! Threat generation: every enabled catalogue rule is checked against every element and flow of
//! the diagram. A rule fires when the element has the facts its conditions ask for; a control
//! the artifact states for the element suppresses the rules it mitigates. Findings quote the
//! sentences that made the rule fire.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

use vigil_catalog::{Catalog, Rule, RuleConditions};
use vigil_core::{
    DataFlow, DfdNode, ElementKind, Evidence, Finding, FindingOrigin, FrameworkRefs, Score,
    Severity, ThreatCategory, TrustZone,
};

use crate::model::{ElementFacts, Model};
use crate::score::FactorGroupBuilder;

/// How many findings are kept per element; the best-evidenced win.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FindingLimits {
    /// Most findings on one element over all categories (0: no limit).
    pub per_element: usize,
    /// Most findings on one element in one category (0: no limit).
    pub per_category: usize,
}

impl Default for FindingLimits {
    fn default() -> Self {
        FindingLimits {
            per_element: 3,
            per_category: 2,
        }
    }
}

/// Controls that, stated for the design as a whole, hold for every flow.
const TRANSPORT_CONTROLS: [&str; 2] = ["tls", "mtls"];

/// Most quotes attached to one finding.
const MAX_EVIDENCE: usize = 3;

/// The facts of one element as a rule sees them.
struct Subject<'a> {
    kind: ElementKind,
    id: &'a str,
    name: String,
    components: Vec<&'a str>,
    from_component: Option<&'a str>,
    to_component: Option<&'a str>,
    zones: Vec<TrustZone>,
    from_zone: Option<TrustZone>,
    technologies: Vec<&'a str>,
    entry_point: bool,
    crosses_boundary: Option<bool>,
    interaction: Option<&'a str>,
    facts: &'a ElementFacts,
    /// Facts of a flow's ends, consulted for data classes.
    end_facts: Vec<&'a ElementFacts>,
}

/// A rule that matched, before scoring.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The finding, with a placeholder score.
    pub finding: Finding,
    /// How specific the evidence is: signals and ruled-out controls count most.
    pub strength: u32,
    /// Whether a design-wide control addresses the threat (lowers exploitability).
    pub partially_mitigated: Option<String>,
    /// The rule's own likelihood times impact, to rank equally evidenced candidates.
    pub priority: f64,
}

/// Runs the catalogue over the model.
pub fn generate(model: &Model, catalog: &Catalog, limits: FindingLimits) -> Vec<Candidate> {
    let subjects = subjects(model);
    let mut candidates = Vec::new();
    for rule in catalog.rules.enabled() {
        for subject in &subjects {
            if let Some(c) = apply(rule, subject, model) {
                candidates.push(c);
            }
        }
    }
    keep_strongest(candidates, limits)
}

fn subjects(model: &Model) -> Vec<Subject<'_>> {
    let dfd = &model.dfd;
    let mut out = Vec::new();
    for (node, facts) in dfd.nodes.iter().zip(&model.node_facts) {
        out.push(node_subject(node, facts));
    }
    for (i, (flow, facts)) in dfd.flows.iter().zip(&model.flow_facts).enumerate() {
        // A request and its reply are one conversation: threats are raised on the first,
        // unless the reply carries data or signals of its own.
        let reply = dfd.flows[..i]
            .iter()
            .zip(&model.flow_facts)
            .any(|(f, first)| {
                f.from == flow.to
                    && f.to == flow.from
                    && facts.data.keys().all(|d| first.data.contains_key(d))
                    && facts.signals.keys().all(|x| first.signals.contains_key(x))
            });
        if reply {
            continue;
        }
        let end = |id: &str| dfd.nodes.iter().position(|n| n.id == id);
        let (Some(a), Some(b)) = (end(&flow.from), end(&flow.to)) else {
            continue;
        };
        out.push(flow_subject(
            flow,
            facts,
            (&dfd.nodes[a], &model.node_facts[a]),
            (&dfd.nodes[b], &model.node_facts[b]),
            dfd.flow_name(flow),
        ));
    }
    out
}

fn node_subject<'a>(node: &'a DfdNode, facts: &'a ElementFacts) -> Subject<'a> {
    Subject {
        kind: node.kind,
        id: &node.id,
        name: node.name.clone(),
        components: vec![node.component.as_str()],
        from_component: None,
        to_component: None,
        zones: vec![node.trust_zone],
        from_zone: None,
        technologies: node.technologies.iter().map(String::as_str).collect(),
        entry_point: node.entry_point,
        crosses_boundary: None,
        interaction: None,
        facts,
        end_facts: Vec::new(),
    }
}

fn flow_subject<'a>(
    flow: &'a DataFlow,
    facts: &'a ElementFacts,
    (from, from_facts): (&'a DfdNode, &'a ElementFacts),
    (to, to_facts): (&'a DfdNode, &'a ElementFacts),
    name: String,
) -> Subject<'a> {
    Subject {
        kind: ElementKind::Flow,
        id: &flow.id,
        name,
        components: vec![from.component.as_str(), to.component.as_str()],
        from_component: Some(from.component.as_str()),
        to_component: Some(to.component.as_str()),
        zones: vec![from.trust_zone, to.trust_zone],
        from_zone: Some(from.trust_zone),
        technologies: from
            .technologies
            .iter()
            .chain(&to.technologies)
            .map(String::as_str)
            .collect(),
        entry_point: to.entry_point,
        crosses_boundary: Some(flow.crosses_boundary),
        interaction: Some(flow.interaction.as_str()),
        facts,
        end_facts: vec![from_facts, to_facts],
    }
}

/// Checks one rule against one element; the evidence gathered says why it matched.
fn apply(rule: &Rule, s: &Subject<'_>, model: &Model) -> Option<Candidate> {
    if !rule.applies_to.contains(&s.kind) {
        return None;
    }
    let w = &rule.when;
    let mut evidence: Vec<Evidence> = Vec::new();
    let mut strength = 0;
    if !structural_match(w, s) {
        return None;
    }
    if !w.data.is_empty() {
        let ev = w.data.iter().find_map(|d| {
            s.facts
                .data
                .get(d)
                .or_else(|| s.end_facts.iter().find_map(|f| f.data.get(d)))
        })?;
        evidence.push(ev.clone());
        strength += 1;
    }
    if !w.signals.is_empty() {
        let ev = w.signals.iter().find_map(|x| s.facts.signals.get(x))?;
        evidence.insert(0, ev.clone());
        strength += 3;
    }
    if !w.controls_ruled_out.is_empty() {
        let ev = w.controls_ruled_out.iter().find_map(|c| {
            s.facts
                .absent_controls
                .get(c)
                .or_else(|| model.global.absent_controls.get(c))
        })?;
        evidence.insert(0, ev.clone());
        strength += 3;
    }
    if !w.controls_present.is_empty() {
        let ev = w.controls_present.iter().find_map(|c| {
            s.facts
                .controls
                .get(c)
                .or_else(|| model.global.controls.get(c))
        })?;
        evidence.push(ev.clone());
        strength += 1;
    }
    if !w.technologies.is_empty() {
        strength += 1;
    }
    // A transport control stated for the whole design ("all traffic uses mTLS") covers every flow.
    let design_wide = |c: &String| {
        s.kind == ElementKind::Flow
            && TRANSPORT_CONTROLS.contains(&c.as_str())
            && model.global.controls.contains_key(c)
    };
    if rule
        .mitigated_by
        .iter()
        .any(|c| s.facts.controls.contains_key(c) || design_wide(c))
    {
        return None;
    }
    let partially_mitigated = rule
        .mitigated_by
        .iter()
        .find(|c| model.global.controls.contains_key(*c))
        .cloned();
    if evidence.is_empty() {
        evidence.extend(s.facts.mentions.first().cloned());
    }
    evidence.dedup();
    evidence.truncate(MAX_EVIDENCE);
    let priority = rule.likelihood.value() * rule.impact.value();
    Some(Candidate {
        finding: finding(rule, s, evidence),
        strength,
        partially_mitigated,
        priority,
    })
}

/// The rules that could apply to element `element` by its type, place and wiring, that no
/// control stated for it mitigates, and that `raised` does not already hold for it: the
/// candidates a reviewer may propose beyond what the artifact's words made fire.
pub fn open_rules<'c>(
    model: &Model,
    catalog: &'c Catalog,
    element: &str,
    raised: &[Finding],
) -> Vec<&'c Rule> {
    let subjects = subjects(model);
    let Some(s) = subjects.iter().find(|s| s.id == element) else {
        return Vec::new();
    };
    catalog
        .rules
        .enabled()
        .filter(|rule| applicable(rule, s))
        .filter(|rule| {
            !raised
                .iter()
                .any(|f| f.element == element && f.rule == rule.id)
        })
        .collect()
}

/// A finding of `rule` on `element` that a model proposed, quoting `evidence`; `None` when the
/// element does not exist or the rule cannot apply to it.
pub fn proposed(
    model: &Model,
    rule: &Rule,
    element: &str,
    evidence: Evidence,
) -> Option<Candidate> {
    let subjects = subjects(model);
    let s = subjects.iter().find(|s| s.id == element)?;
    if !applicable(rule, s) {
        return None;
    }
    let mut finding = finding(rule, s, vec![evidence]);
    finding.origin = FindingOrigin::Model;
    Some(Candidate {
        finding,
        strength: 0,
        partially_mitigated: None,
        priority: rule.likelihood.value() * rule.impact.value(),
    })
}

/// Whether `rule` fits the element's type, place and wiring and no control stated for the
/// element mitigates it.
fn applicable(rule: &Rule, s: &Subject<'_>) -> bool {
    rule.applies_to.contains(&s.kind)
        && structural_match(&rule.when, s)
        && !rule
            .mitigated_by
            .iter()
            .any(|c| s.facts.controls.contains_key(c))
}

/// The conditions that depend only on the element's type, place and wiring.
fn structural_match(w: &RuleConditions, s: &Subject<'_>) -> bool {
    let any = |list: &[String], values: &[&str]| {
        list.is_empty() || list.iter().any(|x| values.contains(&x.as_str()))
    };
    let opt = |list: &[String], value: Option<&str>| {
        list.is_empty() || value.is_some_and(|v| list.iter().any(|x| x == v))
    };
    any(&w.components, &s.components)
        && opt(&w.from_components, s.from_component)
        && opt(&w.to_components, s.to_component)
        && (w.zones.is_empty() || w.zones.iter().any(|z| s.zones.contains(z)))
        && (w.from_zones.is_empty() || s.from_zone.is_some_and(|z| w.from_zones.contains(&z)))
        && any(&w.technologies, &s.technologies)
        && opt(&w.interactions, s.interaction)
        && w.crosses_boundary
            .is_none_or(|b| s.crosses_boundary == Some(b))
        && w.entry_point.is_none_or(|e| s.entry_point == e)
}

fn finding(rule: &Rule, s: &Subject<'_>, evidence: Vec<Evidence>) -> Finding {
    let placeholder = FactorGroupBuilder::default().build();
    Finding {
        id: fingerprint(&rule.id, &s.name, &evidence),
        rule: rule.id.clone(),
        title: rule.title.clone(),
        category: rule.category,
        element: s.id.to_owned(),
        element_name: s.name.clone(),
        element_kind: s.kind,
        rationale: rule.rationale.clone(),
        mitigations: rule.mitigations.clone(),
        cwe: rule.cwe.clone(),
        capec: rule.capec.clone(),
        attack: rule.attack.clone(),
        frameworks: FrameworkRefs {
            owasp_2021: rule.owasp_2021.clone(),
            owasp_2025: rule.owasp_2025.clone(),
            nist_csf: rule.nist_csf.clone(),
            pci_dss: rule.pci_dss.clone(),
            hipaa: rule.hipaa.clone(),
            soc2: rule.soc2.clone(),
        },
        score: Score {
            value: 0.0,
            severity: Severity::Info,
            exploitability: placeholder.clone(),
            blast_radius: placeholder.clone(),
            urgency: placeholder,
            adjustments: Vec::new(),
            formula: String::new(),
            sla_days: None,
        },
        evidence,
        origin: FindingOrigin::Rule,
    }
}

/// A stable id: the rule, the element's name and the evidence it quotes, normalized, so the
/// same finding keeps its id across runs and small edits elsewhere in the artifact.
pub fn fingerprint(rule: &str, element_name: &str, evidence: &[Evidence]) -> String {
    let norm = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    let mut hasher = Sha256::new();
    hasher.update(rule.as_bytes());
    hasher.update([0]);
    hasher.update(norm(element_name).as_bytes());
    for e in evidence {
        hasher.update([0]);
        hasher.update(norm(&e.text).as_bytes());
    }
    let digest = hasher.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// A finding's id within its artifact: the fingerprint hashed with the artifact id, so equal
/// text in two artifacts (a template, a copied paragraph) gives two findings, each with an id of
/// its own, while the id stays stable across versions of one artifact.
pub fn scoped_id(artifact_id: &str, fingerprint: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(artifact_id.as_bytes());
    hasher.update([0]);
    hasher.update(fingerprint.as_bytes());
    let digest = hasher.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Keeps the best-evidenced findings: a few per element and category, and a few per element
/// over all categories, so a reviewer reads the threats that matter rather than every rule that
/// could apply. A finding inferred from the kind of element alone (no stated fact behind it) is
/// kept only when nothing better covers that element and category.
fn keep_strongest(mut candidates: Vec<Candidate>, limits: FindingLimits) -> Vec<Candidate> {
    let unlimited = |n: usize| if n == 0 { usize::MAX } else { n };
    let element_limit = unlimited(limits.per_element);
    let category_limit = unlimited(limits.per_category);
    candidates.sort_by(|a, b| {
        b.strength
            .cmp(&a.strength)
            .then_with(|| b.priority.total_cmp(&a.priority))
            .then_with(|| a.finding.rule.cmp(&b.finding.rule))
    });
    let mut per_category: BTreeMap<(String, ThreatCategory), usize> = BTreeMap::new();
    let mut per_element: BTreeMap<String, usize> = BTreeMap::new();
    candidates.retain(|c| {
        let key = (c.finding.element.clone(), c.finding.category);
        let in_category = per_category.entry(key).or_default();
        let limit = if c.strength == 0 { 1 } else { category_limit };
        let on_element = per_element.entry(c.finding.element.clone()).or_default();
        if *in_category >= limit || *on_element >= element_limit {
            return false;
        }
        *in_category += 1;
        *on_element += 1;
        true
    });
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::{extract, Matcher};
    use crate::model::build;
    use crate::normalize::{normalize, Limits};

    fn run(markdown: &str, limits: FindingLimits) -> (Model, Vec<Candidate>) {
        let catalog = Catalog::embedded().unwrap();
        let matcher = Matcher::new(&catalog.lexicon);
        let artifact = normalize("t.md", markdown.as_bytes(), &Limits::default())
            .unwrap()
            .remove(0);
        let model = build(
            &extract(&artifact, &catalog.lexicon, &matcher),
            &catalog.lexicon,
        );
        let candidates = generate(&model, &catalog, limits);
        (model, candidates)
    }

    fn on<'a>(model: &Model, candidates: &'a [Candidate], name: &str) -> Vec<&'a Candidate> {
        let node = model
            .dfd
            .nodes
            .iter()
            .find(|n| n.name.eq_ignore_ascii_case(name))
            .expect(name);
        candidates
            .iter()
            .filter(|c| c.finding.element == node.id)
            .collect()
    }

    const WEAK: &str =
        "# D\n\nThe billing worker reads its settings from the billing config file. \
                        The billing config file holds the database password in plaintext.\n";

    #[test]
    fn a_stated_weakness_fires_its_rule_and_is_quoted_first() {
        let (model, candidates) = run(WEAK, FindingLimits::default());
        let config = on(&model, &candidates, "billing config file");
        let secret = config
            .iter()
            .find(|c| c.finding.rule == "VGL-I-008")
            .expect("plaintext secret rule");
        assert!(secret.strength >= 3);
        assert!(
            secret.finding.evidence[0].text.contains("plaintext"),
            "{:?}",
            secret.finding.evidence
        );
        assert_eq!(
            secret.finding.category,
            ThreatCategory::InformationDisclosure
        );
        assert!(secret.finding.cwe.contains(&256) || !secret.finding.cwe.is_empty());
    }

    #[test]
    fn a_control_stated_for_the_element_suppresses_the_rules_it_mitigates() {
        let managed = WEAK.replace(
            "in plaintext",
            "in the secrets manager, rotated automatically",
        );
        let (model, candidates) = run(&managed, FindingLimits::default());
        let config = on(&model, &candidates, "billing config file");
        assert!(
            config
                .iter()
                .all(|c| !["VGL-I-008", "VGL-I-029"].contains(&c.finding.rule.as_str())),
            "{config:?}"
        );
    }

    #[test]
    fn a_design_wide_control_only_lowers() {
        let doc = format!("{WEAK}\n## Security\n\nAll credentials are rotated automatically.\n");
        let (model, candidates) = run(&doc, FindingLimits::default());
        let config = on(&model, &candidates, "billing config file");
        let secret = config
            .iter()
            .find(|c| c.finding.rule == "VGL-I-008")
            .expect("still raised");
        assert_eq!(
            secret.partially_mitigated.as_deref(),
            Some("secrets_management")
        );
    }

    #[test]
    fn limits_keep_the_best_evidenced_findings() {
        let doc = "# D\n\nShoppers use the storefront web app. The storefront builds SQL from the query \
                   string, renders user comments as HTML and logs full requests. It has no rate limit.\n";
        let (model, all) = run(
            doc,
            FindingLimits {
                per_element: 0,
                per_category: 0,
            },
        );
        let (_, capped) = run(
            doc,
            FindingLimits {
                per_element: 2,
                per_category: 1,
            },
        );
        let all_on = on(&model, &all, "storefront web app");
        let capped_on = on(&model, &capped, "storefront web app");
        assert!(all_on.len() > 2, "{}", all_on.len());
        assert_eq!(capped_on.len(), 2);
        let strongest = all_on.iter().map(|c| c.strength).max().unwrap();
        assert_eq!(
            capped_on[0].strength, strongest,
            "the best-evidenced finding is kept first"
        );
        let mut categories: Vec<_> = capped_on.iter().map(|c| c.finding.category).collect();
        categories.dedup();
        assert_eq!(categories.len(), 2, "one per category");
    }

    #[test]
    fn fingerprints_are_stable_and_follow_the_evidence() {
        let quote = |t: &str| Evidence {
            text: t.to_owned(),
            start: 0,
            end: t.len(),
            section: String::new(),
        };
        let a = fingerprint(
            "VGL-T-002",
            "Orders API",
            &[quote("builds SQL  from input")],
        );
        assert_eq!(
            a,
            fingerprint("VGL-T-002", "orders api", &[quote("builds sql from input")])
        );
        assert_ne!(
            a,
            fingerprint(
                "VGL-T-002",
                "Orders API",
                &[quote("builds SQL from cookies")]
            )
        );
        assert_eq!(a.len(), 16);
    }
}
