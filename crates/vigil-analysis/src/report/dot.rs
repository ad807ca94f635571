//! Graphviz output: the data-flow diagram as a left-to-right digraph, a cluster per trust zone,
//! shapes by element kind and boundary-crossing flows as dashed red edges.

use vigil_core::{Dfd, DfdNode, ElementKind, Review, TrustZone};

use super::mermaid::flow_label;

/// Renders one digraph per review.
pub fn render_dot(reviews: &[Review]) -> String {
    let mut out = String::new();
    for (i, review) in reviews.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&digraph(&review.title, &review.dfd));
    }
    out
}

/// One diagram as a Graphviz digraph titled `title`.
pub fn digraph(title: &str, dfd: &Dfd) -> String {
    let mut out = format!("digraph {} {{\n", quote(title));
    out.push_str("  graph [rankdir=LR, fontname=\"Helvetica,Arial,sans-serif\", fontsize=12,");
    out.push_str(&format!(" labelloc=t, label={}];\n", quote(title)));
    out.push_str("  node [fontname=\"Helvetica,Arial,sans-serif\", fontsize=11, style=filled];\n");
    out.push_str(
        "  edge [fontname=\"Helvetica,Arial,sans-serif\", fontsize=9, color=\"#475569\"];\n",
    );

    for zone in TrustZone::ALL {
        let members: Vec<&DfdNode> = dfd.nodes.iter().filter(|n| n.trust_zone == zone).collect();
        if members.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "  subgraph {} {{\n",
            quote(&format!("cluster_{}", zone.as_str()))
        ));
        out.push_str(&format!("    label={};\n", quote(zone.label())));
        let (fill, stroke) = if zone.is_untrusted() {
            ("#fdf2f2", "#e0a3a3")
        } else {
            ("#f4f7fb", "#9fb3c8")
        };
        out.push_str(&format!(
            "    style=\"rounded,filled\"; fillcolor=\"{fill}\"; color=\"{stroke}\";\n"
        ));
        for node in members {
            out.push_str(&format!("    {}\n", node_decl(node)));
        }
        out.push_str("  }\n");
    }

    for flow in &dfd.flows {
        let mut attrs = vec![format!("label={}", quote(&flow_label(flow)))];
        if flow.crosses_boundary {
            attrs.push("style=dashed, color=\"#d32f2f\", fontcolor=\"#d32f2f\"".to_owned());
        }
        out.push_str(&format!(
            "  {} -> {} [{}];\n",
            quote(&flow.from),
            quote(&flow.to),
            attrs.join(", ")
        ));
    }
    out.push_str("}\n");
    out
}

/// A node with its kind's shape: ellipse process, cylinder store, box external entity.
fn node_decl(node: &DfdNode) -> String {
    let (shape, fill, stroke) = match node.kind {
        ElementKind::Process | ElementKind::Flow => ("ellipse", "#e8f0fe", "#1a56db"),
        ElementKind::DataStore => ("cylinder", "#fef6e4", "#b45309"),
        ElementKind::ExternalEntity => ("box", "#f1f5f9", "#475569"),
    };
    format!(
        "{} [label={}, shape={shape}, fillcolor=\"{fill}\", color=\"{stroke}\"];",
        quote(&node.id),
        quote(&node.name)
    )
}

/// A double-quoted DOT string: backslashes and quotes escaped, newlines as `\n` line breaks.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_quotes_backslashes_and_newlines() {
        assert_eq!(quote(r#"a "b" \c"#), r#""a \"b\" \\c""#);
        assert_eq!(quote("x\ny"), r#""x\ny""#);
    }
}
