//! Mermaid output: the data-flow diagram as a `flowchart LR`, one subgraph per trust zone,
//! node shapes by element kind and boundary-crossing flows drawn dashed in red.

use std::collections::{BTreeSet, HashMap};

use vigil_core::{DataFlow, Dfd, DfdNode, ElementKind, Review, TrustZone};

/// Words Mermaid reads as keywords; an id equal to one gets a prefix.
const RESERVED: [&str; 8] = [
    "end",
    "graph",
    "subgraph",
    "flowchart",
    "style",
    "class",
    "classdef",
    "click",
];

/// Renders every review's diagram, each preceded by a comment naming the artifact.
pub fn render_mermaid(reviews: &[Review]) -> String {
    let mut out = String::new();
    for (i, review) in reviews.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!(
            "%% {} ({})\n",
            comment(&review.title),
            comment(&review.artifact)
        ));
        out.push_str(&flowchart(&review.dfd));
    }
    out
}

/// One diagram as a Mermaid flowchart, without a code fence.
pub fn flowchart(dfd: &Dfd) -> String {
    let ids = MermaidIds::new(dfd);
    let mut out = String::from("flowchart LR\n");

    for zone in TrustZone::ALL {
        let members: Vec<&DfdNode> = dfd.nodes.iter().filter(|n| n.trust_zone == zone).collect();
        if members.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "  subgraph zone_{}[\"{}\"]\n",
            zone.as_str(),
            label(zone.label())
        ));
        for node in members {
            out.push_str(&format!("    {}\n", node_decl(&ids, node)));
        }
        out.push_str("  end\n");
    }

    let mut crossing = Vec::new();
    for (index, flow) in dfd.flows.iter().enumerate() {
        let arrow = if flow.crosses_boundary { "-.->" } else { "-->" };
        let text = flow_label(flow);
        let from = ids.get(&flow.from);
        let to = ids.get(&flow.to);
        if text.is_empty() {
            out.push_str(&format!("  {from} {arrow} {to}\n"));
        } else {
            out.push_str(&format!("  {from} {arrow}|\"{}\"| {to}\n", label(&text)));
        }
        if flow.crosses_boundary {
            crossing.push(index.to_string());
        }
    }

    out.push_str("  classDef process fill:#e8f0fe,stroke:#1a56db,color:#0b1f44\n");
    out.push_str("  classDef store fill:#fef6e4,stroke:#b45309,color:#3b2006\n");
    out.push_str("  classDef external fill:#f1f5f9,stroke:#475569,color:#0f172a\n");
    for (class, kind) in [
        ("process", ElementKind::Process),
        ("store", ElementKind::DataStore),
        ("external", ElementKind::ExternalEntity),
    ] {
        let members: Vec<&str> = dfd
            .nodes
            .iter()
            .filter(|n| n.kind == kind)
            .map(|n| ids.get(&n.id))
            .collect();
        if !members.is_empty() {
            out.push_str(&format!("  class {} {class}\n", members.join(",")));
        }
    }
    if !crossing.is_empty() {
        out.push_str(&format!(
            "  linkStyle {} stroke:#d32f2f,stroke-width:2px,color:#d32f2f\n",
            crossing.join(",")
        ));
    }
    out
}

/// A node with the shape of its kind: rounded process, cylinder store, rectangle entity.
fn node_decl(ids: &MermaidIds, node: &DfdNode) -> String {
    let id = ids.get(&node.id);
    let name = label(&node.name);
    match node.kind {
        ElementKind::Process | ElementKind::Flow => format!("{id}(\"{name}\")"),
        ElementKind::DataStore => format!("{id}[(\"{name}\")]"),
        ElementKind::ExternalEntity => format!("{id}[\"{name}\"]"),
    }
}

/// "interaction (protocol): data, data".
pub(crate) fn flow_label(flow: &DataFlow) -> String {
    let mut text = flow.interaction.clone();
    if let Some(protocol) = &flow.protocol {
        text.push_str(&format!(" ({protocol})"));
    }
    if !flow.data.is_empty() {
        text.push_str(": ");
        text.push_str(&flow.data.join(", "));
    }
    text.trim().to_owned()
}

/// Text safe inside a quoted Mermaid label: entity codes for characters Mermaid would read.
pub fn label(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '#' => out.push_str("#35;"),
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '|' => out.push_str("#124;"),
            '\n' | '\r' | '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A comment line cannot span lines.
fn comment(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// Diagram ids rewritten to Mermaid-safe, unique identifiers.
struct MermaidIds {
    map: HashMap<String, String>,
}

impl MermaidIds {
    fn new(dfd: &Dfd) -> Self {
        let mut map = HashMap::new();
        let mut used = BTreeSet::new();
        let ids = dfd.nodes.iter().map(|n| n.id.as_str()).chain(
            dfd.flows
                .iter()
                .flat_map(|f| [f.from.as_str(), f.to.as_str()]),
        );
        for id in ids {
            if map.contains_key(id) {
                continue;
            }
            let base = sanitize_id(id);
            let mut candidate = base.clone();
            let mut n = 2;
            while !used.insert(candidate.clone()) {
                candidate = format!("{base}_{n}");
                n += 1;
            }
            map.insert(id.to_owned(), candidate);
        }
        MermaidIds { map }
    }

    fn get(&self, id: &str) -> &str {
        self.map.get(id).map_or("unknown", String::as_str)
    }
}

/// Letters, digits and `_` only, starting with a letter and never a keyword.
pub fn sanitize_id(id: &str) -> String {
    let mut out: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let starts_with_letter = out.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if !starts_with_letter || RESERVED.contains(&out.to_ascii_lowercase().as_str()) {
        out.insert_str(0, "id_");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_escape_quotes_and_markup() {
        assert_eq!(
            label(r#"say "hi" <b>|#"#),
            "say #quot;hi#quot; #lt;b#gt;#124;#35;"
        );
        assert_eq!(label("two\nlines"), "two lines");
    }

    #[test]
    fn ids_are_sanitized() {
        assert_eq!(sanitize_id("n1"), "n1");
        assert_eq!(sanitize_id("checkout-api"), "checkout_api");
        assert_eq!(sanitize_id("1st"), "id_1st");
        assert_eq!(sanitize_id("end"), "id_end");
        assert_eq!(sanitize_id(""), "id_");
    }
}
