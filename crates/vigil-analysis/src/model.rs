//! Modelling: turns extracted facts into the data-flow diagram. Keeps the components a reviewer
//! would draw, places each in a trust zone, marks entry points, and finds the trust boundaries
//! that flows cross.

use std::collections::BTreeSet;

use vigil_catalog::Lexicon;
use vigil_core::{DataFlow, Dfd, DfdNode, ElementKind, Evidence, TrustBoundary, TrustZone};

use crate::extract::{Entity, FactMap, Facts};

/// Most nodes drawn for one artifact; the least mentioned go first.
const MAX_NODES: usize = 40;

/// Signals that make a component reachable by untrusted callers.
const EXPOSURE_SIGNALS: [&str; 2] = ["open_network", "no_authentication"];

/// Words in a component's own name that say outsiders reach it.
const EXPOSURE_WORDS: [&str; 5] = [
    "public",
    "internet-facing",
    "external",
    "customer-facing",
    "partner-facing",
];

/// Protocol words recognised in a flow's sentence, with the protocol they name.
const PROTOCOLS: [(&str, &str); 16] = [
    ("https", "https"),
    ("http", "http"),
    ("grpc", "grpc"),
    ("mqtt", "mqtt"),
    ("bluetooth", "bluetooth"),
    ("ble", "bluetooth"),
    ("websocket", "websocket"),
    ("tcp", "tcp"),
    ("udp", "udp"),
    ("ssh", "ssh"),
    ("amqp", "amqp"),
    ("smtp", "smtp"),
    ("sftp", "sftp"),
    ("graphql", "graphql"),
    ("sql", "sql"),
    ("nfc", "nfc"),
];

/// What the artifact says about one diagram element, with the sentences that say it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ElementFacts {
    /// Data classes.
    pub data: FactMap,
    /// Controls stated.
    pub controls: FactMap,
    /// Controls ruled out.
    pub absent_controls: FactMap,
    /// Risk signals.
    pub signals: FactMap,
    /// Where it is named.
    pub mentions: Vec<Evidence>,
}

/// The diagram plus the facts behind each element, for the threat stage.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// The diagram.
    pub dfd: Dfd,
    /// Facts per node, in `dfd.nodes` order.
    pub node_facts: Vec<ElementFacts>,
    /// Facts per flow, in `dfd.flows` order.
    pub flow_facts: Vec<ElementFacts>,
    /// Facts stated for the design as a whole.
    pub global: ElementFacts,
}

/// Builds the diagram from the facts.
pub fn build(facts: &Facts, lexicon: &Lexicon) -> Model {
    let kept = select_entities(facts);
    let mut model = Model {
        global: ElementFacts {
            controls: facts.global_controls.clone(),
            absent_controls: facts.global_absent_controls.clone(),
            signals: facts.global_signals.clone(),
            ..ElementFacts::default()
        },
        ..Model::default()
    };
    let mut node_of = vec![None; facts.entities.len()];
    for (n, &e) in kept.iter().enumerate() {
        node_of[e] = Some(n);
        let (node, node_facts) = node(&facts.entities[e], n, lexicon);
        model.dfd.nodes.push(node);
        model.node_facts.push(node_facts);
    }
    for flow in &facts.flows {
        let (Some(from), Some(to)) = (node_of[flow.from], node_of[flow.to]) else {
            continue;
        };
        let id = format!("f{}", model.dfd.flows.len() + 1);
        let zones = (
            model.dfd.nodes[from].trust_zone,
            model.dfd.nodes[to].trust_zone,
        );
        let protocol = protocol(&flow.evidence);
        model.dfd.flows.push(DataFlow {
            id,
            from: model.dfd.nodes[from].id.clone(),
            to: model.dfd.nodes[to].id.clone(),
            interaction: flow.interaction.clone(),
            data: flow.data.keys().cloned().collect(),
            protocol,
            crosses_boundary: zones.0 != zones.1,
            boundary: (zones.0 != zones.1).then(|| boundary_id(zones.0, zones.1)),
            controls: flow.controls.keys().cloned().collect(),
            absent_controls: flow.absent_controls.keys().cloned().collect(),
            signals: flow.signals.keys().cloned().collect(),
            evidence: flow.evidence.clone(),
        });
        model.flow_facts.push(ElementFacts {
            data: flow.data.clone(),
            controls: flow.controls.clone(),
            absent_controls: flow.absent_controls.clone(),
            signals: flow.signals.clone(),
            mentions: flow.evidence.clone(),
        });
        // A store holds what flows into it.
        if model.dfd.nodes[to].kind == ElementKind::DataStore {
            for (class, evidence) in &flow.data {
                model.node_facts[to]
                    .data
                    .entry(class.clone())
                    .or_insert_with(|| evidence.clone());
            }
        }
    }
    finish(&mut model, lexicon);
    model
}

/// The entities worth a box: named specifically, named more than once, or taking part in a
/// flow; the most mentioned first when there are too many.
fn select_entities(facts: &Facts) -> Vec<usize> {
    let in_flow = |i: usize| facts.flows.iter().any(|f| f.from == i || f.to == i);
    let mut kept: Vec<usize> = (0..facts.entities.len())
        .filter(|&i| {
            let e = &facts.entities[i];
            e.specific || e.mention_count() >= 2 || in_flow(i)
        })
        .collect();
    if kept.len() > MAX_NODES {
        kept.sort_by_key(|&i| std::cmp::Reverse(facts.entities[i].mention_count()));
        kept.truncate(MAX_NODES);
        kept.sort_unstable();
    }
    kept
}

fn node(entity: &Entity, n: usize, lexicon: &Lexicon) -> (DfdNode, ElementFacts) {
    let component = &lexicon.components[entity.component];
    let name = if component.kind == ElementKind::ExternalEntity {
        singular_name(&entity.name)
    } else {
        entity.name.clone()
    };
    let node = DfdNode {
        id: format!("n{}", n + 1),
        name,
        kind: component.kind,
        component: component.id.clone(),
        trust_zone: component.zone,
        entry_point: component.entry_point,
        technologies: entity.technologies.iter().cloned().collect(),
        data: Vec::new(),
        controls: Vec::new(),
        absent_controls: Vec::new(),
        signals: Vec::new(),
        mentions: entity.mentions.iter().take(3).cloned().collect(),
    };
    let facts = ElementFacts {
        data: entity.data.clone(),
        controls: entity.controls.clone(),
        absent_controls: entity.absent_controls.clone(),
        signals: entity.signals.clone(),
        mentions: entity.mentions.clone(),
    };
    (node, facts)
}

/// Zones, entry points and boundaries, once all flows are known.
fn finish(model: &mut Model, lexicon: &Lexicon) {
    for (node, facts) in model.dfd.nodes.iter_mut().zip(&model.node_facts) {
        let most_sensitive = facts
            .data
            .keys()
            .filter_map(|d| lexicon.data_class(d))
            .map(|d| d.sensitivity)
            .max()
            .unwrap_or(0);
        if node.kind == ElementKind::DataStore && most_sensitive >= 4 {
            node.trust_zone = TrustZone::Restricted;
        }
        let exposed_name = node
            .name
            .split_whitespace()
            .any(|w| EXPOSURE_WORDS.contains(&w.to_lowercase().as_str()));
        if exposed_name
            || EXPOSURE_SIGNALS
                .iter()
                .any(|s| facts.signals.contains_key(*s))
        {
            node.entry_point = true;
        }
    }
    let untrusted: BTreeSet<String> = model
        .dfd
        .nodes
        .iter()
        .filter(|n| n.trust_zone.is_untrusted())
        .map(|n| n.id.clone())
        .collect();
    for flow in &model.dfd.flows {
        if untrusted.contains(&flow.from) {
            if let Some(target) = model.dfd.nodes.iter_mut().find(|n| n.id == flow.to) {
                if !target.trust_zone.is_untrusted() {
                    target.entry_point = true;
                }
            }
        }
    }
    for (flow, facts) in model.dfd.flows.iter_mut().zip(&model.flow_facts) {
        let from = model
            .dfd
            .nodes
            .iter()
            .find(|n| n.id == flow.from)
            .map(|n| n.trust_zone);
        let to = model
            .dfd
            .nodes
            .iter()
            .find(|n| n.id == flow.to)
            .map(|n| n.trust_zone);
        if let (Some(a), Some(b)) = (from, to) {
            flow.crosses_boundary = a != b;
            flow.boundary = (a != b).then(|| boundary_id(a, b));
        }
        flow.data = facts.data.keys().cloned().collect();
    }
    for (node, facts) in model.dfd.nodes.iter_mut().zip(&model.node_facts) {
        node.data = facts.data.keys().cloned().collect();
        node.controls = facts.controls.keys().cloned().collect();
        node.absent_controls = facts.absent_controls.keys().cloned().collect();
        node.signals = facts.signals.keys().cloned().collect();
    }
    let mut boundaries: Vec<TrustBoundary> = Vec::new();
    for flow in &model.dfd.flows {
        let Some(id) = &flow.boundary else { continue };
        if boundaries.iter().any(|b| &b.id == id) {
            continue;
        }
        let zone = |node: &str| model.dfd.node(node).map(|n| n.trust_zone);
        if let (Some(a), Some(b)) = (zone(&flow.from), zone(&flow.to)) {
            let (outer, inner) = if a < b { (a, b) } else { (b, a) };
            boundaries.push(TrustBoundary {
                id: id.clone(),
                name: format!("{} / {}", outer.label(), inner.label()),
                outer,
                inner,
            });
        }
    }
    boundaries.sort_by(|a, b| a.id.cmp(&b.id));
    model.dfd.boundaries = boundaries;
    model.dfd.entry_points = model
        .dfd
        .nodes
        .iter()
        .filter(|n| n.entry_point)
        .map(|n| n.id.clone())
        .collect();
}

/// Actors are drawn in the singular: "Signed-in users" becomes "Signed-in user".
fn singular_name(name: &str) -> String {
    match name.rsplit_once(' ') {
        Some((head, last)) => format!("{head} {}", singular_word(last)),
        None => singular_word(name),
    }
}

fn singular_word(word: &str) -> String {
    let lower = word.to_lowercase();
    let singular = crate::text::singular(&lower);
    if singular == lower || word.len() != lower.len() {
        return word.to_owned();
    }
    // Keep the original casing of the letters that remain.
    word[..singular.len().min(word.len())].to_owned() + &singular[singular.len().min(word.len())..]
}

fn boundary_id(a: TrustZone, b: TrustZone) -> String {
    let (outer, inner) = if a < b { (a, b) } else { (b, a) };
    format!(
        "b-{}-{}",
        outer.as_str().replace('_', "-"),
        inner.as_str().replace('_', "-")
    )
}

fn protocol(evidence: &[Evidence]) -> Option<String> {
    evidence.iter().find_map(|e| {
        let words: Vec<String> = e
            .text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        PROTOCOLS
            .iter()
            .find(|(word, _)| words.iter().any(|w| w == word))
            .map(|(_, p)| (*p).to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::{extract, Matcher};
    use crate::normalize::{normalize, Limits};

    fn model(markdown: &str) -> Model {
        let lexicon = Lexicon::embedded().unwrap();
        let matcher = Matcher::new(&lexicon);
        let artifact = normalize("t.md", markdown.as_bytes(), &Limits::default())
            .unwrap()
            .remove(0);
        build(&extract(&artifact, &lexicon, &matcher), &lexicon)
    }

    fn node<'a>(m: &'a Model, name: &str) -> &'a DfdNode {
        m.dfd
            .nodes
            .iter()
            .find(|n| n.name.eq_ignore_ascii_case(name))
            .expect(name)
    }

    const DOC: &str =
        "# D\n\nCustomers use the booking portal. The booking portal stores card numbers in the \
                       payments database. The portal calls Stripe.\n";

    #[test]
    fn zones_follow_component_types_and_data() {
        let m = model(DOC);
        assert_eq!(node(&m, "Customer").trust_zone, TrustZone::Internet);
        assert_eq!(node(&m, "Customer").kind, ElementKind::ExternalEntity);
        assert_eq!(node(&m, "booking portal").trust_zone, TrustZone::Internal);
        assert_eq!(
            node(&m, "payments database").trust_zone,
            TrustZone::Restricted
        );
        assert!(node(&m, "payments database")
            .data
            .contains(&"cardholder".to_owned()));
        assert_eq!(node(&m, "Stripe").trust_zone, TrustZone::ThirdParty);
    }

    #[test]
    fn flows_from_untrusted_zones_mark_entry_points_and_boundaries() {
        let m = model(DOC);
        let portal = node(&m, "booking portal");
        assert!(portal.entry_point);
        assert!(m.dfd.entry_points.contains(&portal.id));
        let from_customer = m
            .dfd
            .flows
            .iter()
            .find(|f| f.to == portal.id)
            .expect("customer flow");
        assert!(from_customer.crosses_boundary);
        assert_eq!(
            from_customer.boundary.as_deref(),
            Some("b-internet-internal")
        );
        assert!(m
            .dfd
            .boundaries
            .iter()
            .any(|b| b.outer == TrustZone::Internet && b.inner == TrustZone::Internal));
    }

    #[test]
    fn actors_are_named_in_the_singular() {
        assert_eq!(singular_name("Signed-in users"), "Signed-in user");
        assert_eq!(singular_name("Browser"), "Browser");
        assert_eq!(singular_name("Support agents"), "Support agent");
    }
}
