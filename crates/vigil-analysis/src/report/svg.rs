//! SVG output drawn in-process, without Graphviz. A small layered layout: columns are layers
//! assigned by longest path from the entry points, rows are trust-zone bands from the least to
//! the most trusted, and a few barycentre sweeps order the nodes inside each band to reduce
//! crossings. Flows are cubic curves with arrowheads and small labels; flows that cross a trust
//! boundary are dashed red. A legend closes each diagram.

use std::collections::BTreeMap;
use std::fmt::Write;

use vigil_core::{DataFlow, Dfd, DfdNode, ElementKind, Review, TrustZone};

use super::{mermaid::flow_label, summary_line};

/// Node box width.
const NODE_W: f64 = 156.0;
/// Node box height.
const NODE_H: f64 = 52.0;
/// Horizontal distance between layer columns (box plus room for edge labels).
const COL_W: f64 = NODE_W + 124.0;
/// Vertical distance between rows inside a band.
const ROW_H: f64 = NODE_H + 40.0;
/// Space above a band's first row, for its label.
const BAND_HEAD: f64 = 26.0;
/// Space below a band's last row.
const BAND_FOOT: f64 = 18.0;
/// Gap between two bands.
const BAND_GAP: f64 = 10.0;
/// Outer margin.
const MARGIN: f64 = 20.0;
/// Left inset of the first column inside a band.
const INSET: f64 = 36.0;
/// Height of the title block.
const TITLE_H: f64 = 48.0;
/// Height of the legend block.
const LEGEND_H: f64 = 44.0;
/// Characters of a flow label drawn on the edge (the full label is in its tooltip).
const EDGE_LABEL_CHARS: usize = 30;
/// Characters of a node name per line.
const NAME_CHARS: usize = 22;
/// Estimated width of a character of 10px sans-serif text.
const CHAR_W_SMALL: f64 = 5.6;

/// Boundary-crossing red.
const RED: &str = "#c62828";
/// Ordinary edge grey.
const EDGE_GREY: &str = "#546e7a";

/// Renders every review's diagram into one SVG document, stacked vertically.
pub fn render_svg(reviews: &[Review]) -> String {
    let diagrams: Vec<(String, f64, f64)> = reviews.iter().map(diagram).collect();
    let width = diagrams.iter().map(|d| d.1).fold(480.0, f64::max);
    let height: f64 = diagrams.iter().map(|d| d.2).sum::<f64>().max(80.0);

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="Helvetica, Arial, sans-serif">"#,
        w = num(width),
        h = num(height)
    );
    out.push_str(DEFS);
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
    );
    let mut y = 0.0;
    for (body, _, h) in &diagrams {
        let _ = writeln!(out, r#"<g transform="translate(0,{})">"#, num(y));
        out.push_str(body);
        out.push_str("</g>\n");
        y += h;
    }
    if reviews.is_empty() {
        out.push_str(r##"<text x="20" y="44" font-size="14" fill="#37474f">No artifacts.</text>"##);
        out.push('\n');
    }
    out.push_str("</svg>\n");
    out
}

/// Arrowhead markers, one per edge colour.
const DEFS: &str = r##"<defs>
<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#546e7a"/></marker>
<marker id="arrow-cross" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#c62828"/></marker>
</defs>
"##;

/// A laid-out node: its index in the diagram and its box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeBox {
    /// Index into `Dfd::nodes`.
    pub node: usize,
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
}

impl NodeBox {
    /// Whether two boxes share any area.
    pub fn overlaps(&self, other: &NodeBox) -> bool {
        self.x < other.x + other.w
            && other.x < self.x + self.w
            && self.y < other.y + other.h
            && other.y < self.y + self.h
    }
}

/// A trust-zone band.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    /// The zone.
    pub zone: TrustZone,
    /// Top edge.
    pub y: f64,
    /// Height.
    pub h: f64,
}

/// Positions of every node and band, relative to the top of the drawing area.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// One box per node, in `Dfd::nodes` order.
    pub boxes: Vec<NodeBox>,
    /// Bands of the zones that hold nodes, top to bottom.
    pub bands: Vec<Band>,
    /// Width of the drawing area.
    pub width: f64,
    /// Height of the drawing area.
    pub height: f64,
}

/// Lays out a diagram: layers by longest path, zones as bands, barycentre ordering in bands.
pub fn layout(dfd: &Dfd) -> Layout {
    let n = dfd.nodes.len();
    let index: BTreeMap<&str, usize> = dfd
        .nodes
        .iter()
        .enumerate()
        .map(|(i, node)| (node.id.as_str(), i))
        .collect();
    let edges: Vec<(usize, usize)> = dfd
        .flows
        .iter()
        .filter_map(|f| Some((*index.get(f.from.as_str())?, *index.get(f.to.as_str())?)))
        .filter(|(a, b)| a != b)
        .collect();

    let layer = assign_layers(dfd, &edges);
    let layers = layer.iter().copied().max().map_or(0, |m| m + 1);
    let zones: Vec<TrustZone> = TrustZone::ALL
        .into_iter()
        .filter(|z| dfd.nodes.iter().any(|n| n.trust_zone == *z))
        .collect();
    let zone_of = |i: usize| {
        zones
            .iter()
            .position(|z| *z == dfd.nodes[i].trust_zone)
            .unwrap_or(0)
    };

    // slots[(layer, zone)] = node indices in their vertical order.
    let mut slots: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
    for (i, &l) in layer.iter().enumerate() {
        slots.entry((l, zone_of(i))).or_default().push(i);
    }
    order_by_barycentre(&mut slots, &edges, n, layers);

    let mut rows = vec![0usize; zones.len()];
    for ((_, zone), members) in &slots {
        rows[*zone] = rows[*zone].max(members.len());
    }
    let mut bands = Vec::new();
    let mut y = 0.0;
    for (z, zone) in zones.iter().enumerate() {
        let h = BAND_HEAD + rows[z] as f64 * ROW_H - (ROW_H - NODE_H) + BAND_FOOT;
        bands.push(Band { zone: *zone, y, h });
        y += h + BAND_GAP;
    }
    let height = (y - BAND_GAP).max(0.0);

    let mut boxes: Vec<NodeBox> = (0..n)
        .map(|i| NodeBox {
            node: i,
            x: 0.0,
            y: 0.0,
            w: NODE_W,
            h: NODE_H,
        })
        .collect();
    for ((l, z), members) in &slots {
        // Centre a short column inside its band so single nodes do not hug the band's top.
        let spare = (rows[*z] - members.len()) as f64 * ROW_H / 2.0;
        for (slot, &i) in members.iter().enumerate() {
            boxes[i].x = INSET + *l as f64 * COL_W;
            boxes[i].y = bands[*z].y + BAND_HEAD + spare + slot as f64 * ROW_H;
        }
    }
    let width = INSET + layers.max(1) as f64 * COL_W - (COL_W - NODE_W) + INSET;

    Layout {
        boxes,
        bands,
        width,
        height,
    }
}

/// Longest-path layers from the entry points, after turning back edges around so cycles (a
/// request and its reply) do not push nodes rightwards forever.
fn assign_layers(dfd: &Dfd, edges: &[(usize, usize)]) -> Vec<usize> {
    let n = dfd.nodes.len();
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in edges {
        out[a].push(b);
    }

    // Depth-first from the most "outside" nodes first, so edges point inwards.
    let mut roots: Vec<usize> = (0..n).collect();
    roots.sort_by_key(|&i| {
        let node = &dfd.nodes[i];
        let entry = node.entry_point || dfd.entry_points.contains(&node.id);
        let has_incoming = edges.iter().any(|&(_, b)| b == i);
        (
            node.kind != ElementKind::ExternalEntity,
            !entry,
            has_incoming,
            TrustZone::ALL.iter().position(|z| *z == node.trust_zone),
            i,
        )
    });
    let mut state = vec![0u8; n]; // 0 new, 1 on stack, 2 done
    let mut forward: Vec<(usize, usize)> = Vec::new();
    for root in roots {
        if state[root] != 0 {
            continue;
        }
        let mut stack = vec![(root, 0usize)];
        state[root] = 1;
        while let Some(&mut (v, ref mut next)) = stack.last_mut() {
            if let Some(&w) = out[v].get(*next) {
                *next += 1;
                match state[w] {
                    0 => {
                        forward.push((v, w));
                        state[w] = 1;
                        stack.push((w, 0));
                    }
                    1 => {} // back edge: ignored for layering
                    _ => forward.push((v, w)),
                }
            } else {
                state[v] = 2;
                stack.pop();
            }
        }
    }

    // Longest path over the acyclic forward edges (Kahn's order).
    let mut indegree = vec![0usize; n];
    for &(_, b) in &forward {
        indegree[b] += 1;
    }
    let mut layer = vec![0usize; n];
    let mut queue: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut head = 0;
    while head < queue.len() {
        let v = queue[head];
        head += 1;
        for &(a, b) in forward.iter().filter(|(a, _)| *a == v) {
            layer[b] = layer[b].max(layer[a] + 1);
            indegree[b] -= 1;
            if indegree[b] == 0 {
                queue.push(b);
            }
        }
    }
    layer
}

/// Reorders each (layer, zone) group by the mean position of its neighbours, sweeping left to
/// right and back a few times. Stable: ties keep the previous order.
fn order_by_barycentre(
    slots: &mut BTreeMap<(usize, usize), Vec<usize>>,
    edges: &[(usize, usize)],
    n: usize,
    layers: usize,
) {
    let position = |slots: &BTreeMap<(usize, usize), Vec<usize>>| {
        let mut pos = vec![0.0; n];
        for ((_, zone), members) in slots {
            for (slot, &i) in members.iter().enumerate() {
                pos[i] = *zone as f64 * 1000.0 + slot as f64;
            }
        }
        pos
    };
    let keys: Vec<(usize, usize)> = slots.keys().copied().collect();
    for sweep in 0..4 {
        let rightwards = sweep % 2 == 0;
        let mut order: Vec<usize> = (0..layers).collect();
        if !rightwards {
            order.reverse();
        }
        for l in order {
            let pos = position(slots);
            for key in keys.iter().filter(|k| k.0 == l) {
                let members = slots.get_mut(key).expect("key taken from the map");
                let mut keyed: Vec<(f64, usize)> = members
                    .iter()
                    .enumerate()
                    .map(|(slot, &i)| {
                        let neighbours: Vec<f64> = edges
                            .iter()
                            .filter_map(|&(a, b)| match (a == i, b == i) {
                                (true, _) => Some(pos[b]),
                                (_, true) => Some(pos[a]),
                                _ => None,
                            })
                            .collect();
                        let centre = if neighbours.is_empty() {
                            pos[i]
                        } else {
                            neighbours.iter().sum::<f64>() / neighbours.len() as f64
                        };
                        (centre + slot as f64 * 1e-6, i)
                    })
                    .collect();
                keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
                *members = keyed.into_iter().map(|(_, i)| i).collect();
            }
        }
    }
}

/// One review's drawing: its SVG body, width and height.
fn diagram(review: &Review) -> (String, f64, f64) {
    let dfd = &review.dfd;
    let lay = layout(dfd);
    let width = (lay.width + 2.0 * MARGIN).max(560.0);
    let top = MARGIN + TITLE_H;
    let height = top + lay.height + 16.0 + LEGEND_H + MARGIN;
    let mut out = String::new();

    let _ = writeln!(
        out,
        r##"<text x="{}" y="{}" font-size="16" font-weight="bold" fill="#263238">{}</text>"##,
        num(MARGIN),
        num(MARGIN + 16.0),
        escape(&review.title)
    );
    let _ = writeln!(
        out,
        r##"<text x="{}" y="{}" font-size="11" fill="#607d8b">{} · {}</text>"##,
        num(MARGIN),
        num(MARGIN + 34.0),
        escape(&review.artifact),
        escape(&summary_line(review))
    );

    let _ = writeln!(
        out,
        r#"<g transform="translate({},{})">"#,
        num(MARGIN),
        num(top)
    );
    for band in &lay.bands {
        draw_band(&mut out, band, lay.width);
    }
    draw_edges(&mut out, dfd, &lay);
    for b in &lay.boxes {
        draw_node(&mut out, &dfd.nodes[b.node], b);
    }
    out.push_str("</g>\n");

    draw_legend(&mut out, MARGIN, top + lay.height + 16.0);
    (out, width, height)
}

/// A zone band with its label.
fn draw_band(out: &mut String, band: &Band, width: f64) {
    let (fill, stroke, ink) = if band.zone.is_untrusted() {
        ("#fff5f5", "#f2c4c4", "#b71c1c")
    } else {
        ("#f5f8fc", "#cfd8e3", "#37474f")
    };
    let _ = writeln!(
        out,
        r#"<rect x="0" y="{}" width="{}" height="{}" rx="10" fill="{fill}" stroke="{stroke}"/>"#,
        num(band.y),
        num(width),
        num(band.h)
    );
    let trust = if band.zone.is_untrusted() {
        "untrusted"
    } else {
        "trusted"
    };
    let _ = writeln!(
        out,
        r#"<text x="12" y="{}" font-size="11" font-weight="bold" letter-spacing="0.5" fill="{ink}">{} <tspan font-weight="normal" fill="{ink}" fill-opacity="0.7">({trust})</tspan></text>"#,
        num(band.y + 17.0),
        escape(&band.zone.label().to_uppercase())
    );
}

/// Every flow as a curve with an arrowhead and a label placed where it overlaps no other.
fn draw_edges(out: &mut String, dfd: &Dfd, lay: &Layout) {
    let index: BTreeMap<&str, usize> = dfd
        .nodes
        .iter()
        .enumerate()
        .map(|(i, node)| (node.id.as_str(), i))
        .collect();
    let ports = Ports::new(dfd, lay, &index);
    let mut placed: Vec<(f64, f64, f64, f64)> =
        lay.boxes.iter().map(|b| (b.x, b.y, b.w, b.h)).collect();
    let mut labels = String::new();

    for (fi, flow) in dfd.flows.iter().enumerate() {
        let (Some(&a), Some(&b)) = (index.get(flow.from.as_str()), index.get(flow.to.as_str()))
        else {
            continue;
        };
        let curve = route(&lay.boxes[a], &lay.boxes[b], ports.offsets[fi]);
        let (color, marker, dash) = if flow.crosses_boundary {
            (RED, "arrow-cross", r#" stroke-dasharray="6 4""#)
        } else {
            (EDGE_GREY, "arrow", "")
        };
        let full = flow_label(flow);
        let _ = writeln!(
            out,
            r#"<path d="{}" fill="none" stroke="{color}" stroke-width="1.4"{dash} marker-end="url(#{marker})"><title>{}</title></path>"#,
            curve.path(),
            escape(&edge_tooltip(dfd, flow, &full))
        );
        if !full.is_empty() {
            place_label(&mut labels, &mut placed, &curve, &full, color);
        }
    }
    out.push_str(&labels);
}

/// "Source -> Target: label" for a tooltip.
fn edge_tooltip(dfd: &Dfd, flow: &DataFlow, label: &str) -> String {
    let mut text = dfd.flow_name(flow);
    if !label.is_empty() {
        text.push_str(": ");
        text.push_str(label);
    }
    if let Some(boundary) = &flow.boundary {
        text.push_str(&format!(" [crosses {boundary}]"));
    }
    text
}

/// Puts a label on the curve at the first of a few positions that overlaps nothing placed yet.
fn place_label(
    out: &mut String,
    placed: &mut Vec<(f64, f64, f64, f64)>,
    curve: &Curve,
    text: &str,
    color: &str,
) {
    let short = shorten(text, EDGE_LABEL_CHARS);
    let w = short.chars().count() as f64 * CHAR_W_SMALL + 6.0;
    let h = 13.0;
    let candidates = [0.5, 0.38, 0.62, 0.28, 0.72, 0.5];
    let mut chosen = None;
    for (k, t) in candidates.iter().enumerate() {
        let (cx, cy) = curve.at(*t);
        let lift = if k == candidates.len() - 1 { -h } else { 0.0 };
        let rect = (cx - w / 2.0, cy - h / 2.0 + lift, w, h);
        let clear = placed.iter().all(|p| !rects_overlap(p, &rect));
        if clear || k == candidates.len() - 1 {
            chosen = Some(rect);
            if clear {
                break;
            }
        }
    }
    let Some(rect) = chosen else { return };
    placed.push(rect);
    let _ = writeln!(
        out,
        r##"<text x="{}" y="{}" font-size="10" text-anchor="middle" fill="{color}" stroke="#ffffff" stroke-width="3" stroke-linejoin="round" paint-order="stroke">{}</text>"##,
        num(rect.0 + rect.2 / 2.0),
        num(rect.1 + 10.0),
        escape(&short)
    );
}

/// Whether two (x, y, w, h) rectangles overlap.
fn rects_overlap(a: &(f64, f64, f64, f64), b: &(f64, f64, f64, f64)) -> bool {
    a.0 < b.0 + b.2 && b.0 < a.0 + a.2 && a.1 < b.1 + b.3 && b.1 < a.1 + a.3
}

/// One end of a flow at a node side: the other end's height, the flow index and whether this
/// end is the flow's source.
type PortEnd = (f64, usize, bool);

/// Vertical port offsets so several flows on one side of a node do not share a point.
struct Ports {
    /// Per flow: offset at the source, offset at the target.
    offsets: Vec<(f64, f64)>,
}

impl Ports {
    fn new(dfd: &Dfd, lay: &Layout, index: &BTreeMap<&str, usize>) -> Self {
        // Group flow ends by (node, side); order each group by the other end's height.
        let mut groups: BTreeMap<(usize, bool), Vec<PortEnd>> = BTreeMap::new();
        for (fi, flow) in dfd.flows.iter().enumerate() {
            let (Some(&a), Some(&b)) = (index.get(flow.from.as_str()), index.get(flow.to.as_str()))
            else {
                continue;
            };
            let (source_right, target_right) = sides(&lay.boxes[a], &lay.boxes[b]);
            groups
                .entry((a, source_right))
                .or_default()
                .push((lay.boxes[b].y, fi, true));
            groups
                .entry((b, target_right))
                .or_default()
                .push((lay.boxes[a].y, fi, false));
        }
        let mut offsets = vec![(0.0, 0.0); dfd.flows.len()];
        for members in groups.values_mut() {
            members.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
            let count = members.len() as f64;
            let step = (NODE_H - 16.0) / count.max(1.0);
            for (k, (_, fi, at_source)) in members.iter().enumerate() {
                let offset = if count <= 1.0 {
                    0.0
                } else {
                    (k as f64 - (count - 1.0) / 2.0) * step
                };
                if *at_source {
                    offsets[*fi].0 = offset;
                } else {
                    offsets[*fi].1 = offset;
                }
            }
        }
        Ports { offsets }
    }
}

/// A cubic Bézier curve.
struct Curve {
    p: [(f64, f64); 4],
}

impl Curve {
    fn path(&self) -> String {
        let [a, b, c, d] = self.p;
        format!(
            "M{},{} C{},{} {},{} {},{}",
            num(a.0),
            num(a.1),
            num(b.0),
            num(b.1),
            num(c.0),
            num(c.1),
            num(d.0),
            num(d.1)
        )
    }

    fn at(&self, t: f64) -> (f64, f64) {
        let u = 1.0 - t;
        let [a, b, c, d] = self.p;
        let f = |a: f64, b: f64, c: f64, d: f64| {
            u * u * u * a + 3.0 * u * u * t * b + 3.0 * u * t * t * c + t * t * t * d
        };
        (f(a.0, b.0, c.0, d.0), f(a.1, b.1, c.1, d.1))
    }
}

/// Which sides a flow leaves and enters by (`true` for the right side): rightwards flows leave
/// right and enter left, leftwards flows the reverse, and flows within a column loop out to the
/// right and back.
fn sides(from: &NodeBox, to: &NodeBox) -> (bool, bool) {
    if to.x > from.x {
        (true, false)
    } else if to.x < from.x {
        (false, true)
    } else {
        (true, true)
    }
}

/// The curve of a flow between the sides [`sides`] picks, offset along each side by its port.
fn route(from: &NodeBox, to: &NodeBox, (out_offset, in_offset): (f64, f64)) -> Curve {
    let start_y = from.y + from.h / 2.0 + out_offset;
    let end_y = to.y + to.h / 2.0 + in_offset;
    let p = match sides(from, to) {
        (true, false) => {
            let start = (from.x + from.w, start_y);
            let end = (to.x - 2.0, end_y);
            let pull = ((end.0 - start.0) * 0.5).max(30.0);
            [start, (start.0 + pull, start.1), (end.0 - pull, end.1), end]
        }
        (false, true) => {
            let start = (from.x, start_y);
            let end = (to.x + to.w + 2.0, end_y);
            let pull = ((start.0 - end.0) * 0.5).max(30.0);
            [start, (start.0 - pull, start.1), (end.0 + pull, end.1), end]
        }
        _ => {
            let start = (from.x + from.w, start_y);
            let end = (to.x + to.w + 2.0, end_y);
            let bow = 40.0 + (end_y - start_y).abs() * 0.15;
            [start, (start.0 + bow, start.1), (end.0 + bow, end.1), end]
        }
    };
    Curve { p }
}

/// One node with its kind's shape, its name (up to two lines) and its component type.
fn draw_node(out: &mut String, node: &DfdNode, b: &NodeBox) {
    let (fill, stroke) = match node.kind {
        ElementKind::Process | ElementKind::Flow => ("#e8f0fe", "#1a56db"),
        ElementKind::DataStore => ("#fef6e4", "#b45309"),
        ElementKind::ExternalEntity => ("#eceff1", "#455a64"),
    };
    let _ = writeln!(out, r#"<g class="node {}">"#, node.kind.as_str());
    let _ = writeln!(
        out,
        "<title>{}</title>",
        escape(&format!(
            "{} ({}, {})",
            node.name,
            node.kind.as_str(),
            node.trust_zone
        ))
    );
    draw_shape(out, node.kind, b.x, b.y, b.w, b.h, fill, stroke);

    let lines = name_lines(&node.name);
    let cx = b.x + b.w / 2.0;
    let store_shift = if node.kind == ElementKind::DataStore {
        5.0
    } else {
        0.0
    };
    let first = b.y + b.h / 2.0 + store_shift - if lines.len() > 1 { 9.0 } else { 3.0 };
    for (k, line) in lines.iter().enumerate() {
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" font-size="12" font-weight="600" text-anchor="middle" fill="#1c2833">{}</text>"##,
            num(cx),
            num(first + k as f64 * 14.0),
            escape(line)
        );
    }
    if !node.component.is_empty() {
        let y = first + lines.len() as f64 * 14.0 - 1.0;
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" font-size="9.5" text-anchor="middle" fill="#607d8b">{}</text>"##,
            num(cx),
            num(y),
            escape(&shorten(&node.component, NAME_CHARS))
        );
    }
    out.push_str("</g>\n");
}

/// The outline of an element kind: rounded rectangle, cylinder or plain rectangle.
#[allow(clippy::too_many_arguments)]
fn draw_shape(
    out: &mut String,
    kind: ElementKind,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    fill: &str,
    stroke: &str,
) {
    match kind {
        ElementKind::Process | ElementKind::Flow => {
            let _ = writeln!(
                out,
                r#"<rect x="{}" y="{}" width="{}" height="{}" rx="{}" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>"#,
                num(x),
                num(y),
                num(w),
                num(h),
                num((h * 0.3).min(16.0))
            );
        }
        ElementKind::DataStore => {
            let ry = 7.0;
            let _ = writeln!(
                out,
                r#"<path d="M{x0},{top} V{bottom} A{rx},{ry} 0 0 0 {x1},{bottom} V{top} A{rx},{ry} 0 0 0 {x0},{top} Z" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>"#,
                x0 = num(x),
                x1 = num(x + w),
                top = num(y + ry),
                bottom = num(y + h - ry),
                rx = num(w / 2.0),
                ry = num(ry)
            );
            let _ = writeln!(
                out,
                r#"<ellipse cx="{}" cy="{}" rx="{}" ry="{}" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>"#,
                num(x + w / 2.0),
                num(y + ry),
                num(w / 2.0),
                num(ry)
            );
        }
        ElementKind::ExternalEntity => {
            let _ = writeln!(
                out,
                r#"<rect x="{}" y="{}" width="{}" height="{}" rx="2" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>"#,
                num(x),
                num(y),
                num(w),
                num(h)
            );
        }
    }
}

/// The legend: the three shapes and the two kinds of flow.
fn draw_legend(out: &mut String, x: f64, y: f64) {
    let _ = writeln!(
        out,
        r##"<g transform="translate({},{})" font-size="11" fill="#37474f">"##,
        num(x),
        num(y)
    );
    let items = [
        (ElementKind::Process, "#e8f0fe", "#1a56db", "Process"),
        (ElementKind::DataStore, "#fef6e4", "#b45309", "Data store"),
        (
            ElementKind::ExternalEntity,
            "#eceff1",
            "#455a64",
            "External entity",
        ),
    ];
    let mut cx = 0.0;
    for (kind, fill, stroke, name) in items {
        draw_shape(out, kind, cx, 8.0, 34.0, 22.0, fill, stroke);
        let _ = writeln!(out, r#"<text x="{}" y="23">{name}</text>"#, num(cx + 42.0));
        cx += 42.0 + name.len() as f64 * 6.2 + 24.0;
    }
    let _ = writeln!(
        out,
        r#"<path d="M{},19 H{}" stroke="{EDGE_GREY}" stroke-width="1.4" marker-end="url(#arrow)"/>"#,
        num(cx),
        num(cx + 40.0)
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="23">Data flow</text>"#,
        num(cx + 48.0)
    );
    cx += 48.0 + 9.0 * 6.2 + 24.0;
    let _ = writeln!(
        out,
        r#"<path d="M{},19 H{}" stroke="{RED}" stroke-width="1.4" stroke-dasharray="6 4" marker-end="url(#arrow-cross)"/>"#,
        num(cx),
        num(cx + 40.0)
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="23">Crosses a trust boundary</text>"#,
        num(cx + 48.0)
    );
    out.push_str("</g>\n");
}

/// A node name in at most two lines of [`NAME_CHARS`], the second cut with an ellipsis.
fn name_lines(name: &str) -> Vec<String> {
    let lines = super::table::wrap(name, NAME_CHARS);
    match lines.len() {
        0 | 1 => lines,
        _ => {
            let rest = lines[1..].join(" ");
            vec![lines[0].clone(), shorten(&rest, NAME_CHARS)]
        }
    }
}

/// Cuts text to `max` characters with an ellipsis.
fn shorten(text: &str, max: usize) -> String {
    super::table::truncate(text, max)
}

/// Text safe in XML content and attribute values; characters XML forbids are dropped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// A coordinate with at most one decimal, so output is stable and compact.
fn num(value: f64) -> String {
    let rounded = (value * 10.0).round() / 10.0;
    if rounded == rounded.trunc() {
        format!("{}", rounded as i64)
    } else {
        format!("{rounded:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::DataFlow;

    fn node(i: usize, kind: ElementKind, zone: TrustZone) -> DfdNode {
        DfdNode {
            id: format!("n{i}"),
            name: format!("Component number {i}"),
            kind,
            component: "service".into(),
            trust_zone: zone,
            entry_point: i == 0,
            technologies: vec![],
            data: vec![],
            controls: vec![],
            absent_controls: vec![],
            signals: vec![],
            mentions: vec![],
        }
    }

    fn flow(i: usize, from: usize, to: usize) -> DataFlow {
        DataFlow {
            id: format!("f{i}"),
            from: format!("n{from}"),
            to: format!("n{to}"),
            interaction: "calls".into(),
            data: vec!["personal".into()],
            protocol: None,
            crosses_boundary: i.is_multiple_of(3),
            boundary: None,
            controls: vec![],
            absent_controls: vec![],
            signals: vec![],
            evidence: vec![],
        }
    }

    /// 25 nodes over 5 zones and 40 flows, with cycles.
    fn big_dfd() -> Dfd {
        let zones = [
            TrustZone::Internet,
            TrustZone::Edge,
            TrustZone::Internal,
            TrustZone::Restricted,
            TrustZone::ThirdParty,
        ];
        let kinds = [
            ElementKind::ExternalEntity,
            ElementKind::Process,
            ElementKind::DataStore,
        ];
        let nodes = (0..25)
            .map(|i| node(i, kinds[i % 3], zones[(i * 7) % 5]))
            .collect();
        let flows = (0..40)
            .map(|i| flow(i, (i * 3) % 25, (i * 7 + 1) % 25))
            .collect();
        Dfd {
            nodes,
            flows,
            boundaries: vec![],
            entry_points: vec!["n0".into()],
        }
    }

    #[test]
    fn node_boxes_never_overlap() {
        let lay = layout(&big_dfd());
        assert_eq!(lay.boxes.len(), 25);
        for (i, a) in lay.boxes.iter().enumerate() {
            for b in &lay.boxes[i + 1..] {
                assert!(!a.overlaps(b), "{a:?} overlaps {b:?}");
            }
        }
    }

    #[test]
    fn nodes_sit_inside_their_zone_band() {
        let dfd = big_dfd();
        let lay = layout(&dfd);
        for b in &lay.boxes {
            let zone = dfd.nodes[b.node].trust_zone;
            let band = lay
                .bands
                .iter()
                .find(|band| band.zone == zone)
                .expect("band of the zone");
            assert!(
                b.y >= band.y && b.y + b.h <= band.y + band.h,
                "{b:?} outside {band:?}"
            );
            assert!(b.x >= 0.0 && b.x + b.w <= lay.width);
        }
    }

    #[test]
    fn flows_go_left_to_right_from_the_entry_point() {
        let nodes = vec![
            node(0, ElementKind::ExternalEntity, TrustZone::Internet),
            node(1, ElementKind::Process, TrustZone::Edge),
            node(2, ElementKind::DataStore, TrustZone::Restricted),
        ];
        let flows = vec![flow(1, 0, 1), flow(2, 1, 2), flow(3, 2, 1), flow(4, 1, 0)];
        let dfd = Dfd {
            nodes,
            flows,
            boundaries: vec![],
            entry_points: vec![],
        };
        let lay = layout(&dfd);
        assert!(lay.boxes[0].x < lay.boxes[1].x);
        assert!(lay.boxes[1].x < lay.boxes[2].x);
    }

    #[test]
    fn escape_covers_markup_and_control_characters() {
        assert_eq!(escape(r#"<a & "b">"#), "&lt;a &amp; &quot;b&quot;&gt;");
        assert_eq!(escape("it's\u{1}"), "it&apos;s");
    }

    #[test]
    fn numbers_are_compact() {
        assert_eq!(num(12.0), "12");
        assert_eq!(num(12.34), "12.3");
        assert_eq!(num(-0.04), "0");
    }
}
