//! Attack paths: chains from the places an attacker starts (entry points and untrusted zones)
//! to the most valuable stores, through elements and flows that carry findings. A chain is only
//! as strong as its weakest link, so a path scores its weakest step's exploitability times the
//! value of the store it ends at.

use std::collections::BTreeMap;

use vigil_catalog::Lexicon;
use vigil_core::{AttackPath, AttackStep, Dfd, ElementKind, Finding};

/// Most paths reported that end at the same store.
const MAX_PER_TARGET: usize = 2;

/// Longest chain considered, in elements.
const MAX_DEPTH: usize = 6;

/// Finds the top `limit` paths, highest score first.
pub fn find(dfd: &Dfd, findings: &[Finding], lexicon: &Lexicon, limit: usize) -> Vec<AttackPath> {
    let graph = Graph::new(dfd, findings);
    let mut best: BTreeMap<(usize, usize), (f64, Vec<usize>)> = BTreeMap::new();
    for start in graph.starts(dfd) {
        let mut path = vec![start];
        graph.walk(&mut path, 1.0, &mut |path, weakest| {
            let target = *path.last().expect("paths are never empty");
            let value = target_value(dfd, target, lexicon);
            if path.len() < 2 || value <= 0.0 {
                return;
            }
            let score = (weakest * value * 100.0).round() / 10.0;
            let key = (path[0], target);
            if best
                .get(&key)
                .is_none_or(|(s, p)| score > *s || (score == *s && path.len() < p.len()))
            {
                best.insert(key, (score, path.to_vec()));
            }
        });
    }
    let mut ranked: Vec<(f64, Vec<usize>)> = best.into_values().collect();
    ranked.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(a.1.len().cmp(&b.1.len()))
            .then(a.1.cmp(&b.1))
    });
    // Variety over repetition: at most two paths end at the same store.
    let mut per_target: BTreeMap<usize, usize> = BTreeMap::new();
    ranked.retain(|(_, path)| {
        let count = per_target
            .entry(*path.last().expect("paths are never empty"))
            .or_default();
        *count += 1;
        *count <= MAX_PER_TARGET
    });
    ranked
        .into_iter()
        .take(limit)
        .enumerate()
        .map(|(i, (score, path))| graph.to_path(dfd, i, score, &path))
        .collect()
}

/// Adjacency between nodes, and the findings that open each node and each edge.
struct Graph<'a> {
    adjacency: Vec<Vec<(usize, Option<usize>)>>,
    external: Vec<bool>,
    node_findings: Vec<Vec<&'a Finding>>,
    flow_findings: Vec<Vec<&'a Finding>>,
}

impl<'a> Graph<'a> {
    fn new(dfd: &Dfd, findings: &'a [Finding]) -> Graph<'a> {
        let index = |id: &str| dfd.nodes.iter().position(|n| n.id == id);
        let mut adjacency = vec![Vec::new(); dfd.nodes.len()];
        for (fi, flow) in dfd.flows.iter().enumerate() {
            if let (Some(a), Some(b)) = (index(&flow.from), index(&flow.to)) {
                adjacency[a].push((b, Some(fi)));
                adjacency[b].push((a, Some(fi)));
            }
        }
        let mut node_findings = vec![Vec::new(); dfd.nodes.len()];
        let mut flow_findings = vec![Vec::new(); dfd.flows.len()];
        for f in findings {
            if f.category.is_privacy() {
                continue;
            }
            if f.element_kind == ElementKind::Flow {
                if let Some(i) = dfd.flows.iter().position(|fl| fl.id == f.element) {
                    flow_findings[i].push(f);
                }
            } else if let Some(i) = index(&f.element) {
                node_findings[i].push(f);
            }
        }
        let external = dfd
            .nodes
            .iter()
            .map(|n| n.kind == ElementKind::ExternalEntity)
            .collect();
        Graph {
            adjacency,
            external,
            node_findings,
            flow_findings,
        }
    }

    fn starts(&self, dfd: &Dfd) -> Vec<usize> {
        (0..dfd.nodes.len())
            .filter(|&i| dfd.nodes[i].entry_point || dfd.nodes[i].trust_zone.is_untrusted())
            .collect()
    }

    /// The most exploitable finding that opens a step onto `node` through `flow`.
    fn step_strength(&self, node: usize, flow: Option<usize>) -> Option<f64> {
        let via_flow = flow.into_iter().flat_map(|f| self.flow_findings[f].iter());
        self.node_findings[node]
            .iter()
            .chain(via_flow)
            .map(|f| f.score.exploitability.value)
            .max_by(f64::total_cmp)
    }

    fn walk(&self, path: &mut Vec<usize>, weakest: f64, visit: &mut dyn FnMut(&[usize], f64)) {
        visit(path, weakest);
        if path.len() >= MAX_DEPTH {
            return;
        }
        let here = *path.last().expect("paths are never empty");
        for &(next, flow) in &self.adjacency[here] {
            // An attacker moves through systems, not through people: external entities only
            // start a path.
            if path.contains(&next) || self.external[next] {
                continue;
            }
            let Some(strength) = self.step_strength(next, flow) else {
                continue;
            };
            path.push(next);
            self.walk(path, weakest.min(strength), visit);
            path.pop();
        }
    }

    fn to_path(&self, dfd: &Dfd, i: usize, score: f64, path: &[usize]) -> AttackPath {
        let steps: Vec<AttackStep> = path
            .iter()
            .map(|&n| AttackStep {
                element: dfd.nodes[n].id.clone(),
                element_name: dfd.nodes[n].name.clone(),
                findings: self.node_findings[n]
                    .iter()
                    .take(3)
                    .map(|f| f.id.clone())
                    .collect(),
            })
            .collect();
        let names: Vec<&str> = steps.iter().map(|s| s.element_name.as_str()).collect();
        let first_finding = |n: usize| {
            self.node_findings[n]
                .first()
                .map(|f| f.title.to_lowercase())
        };
        let how = path
            .iter()
            .skip(1)
            .find_map(|&n| first_finding(n))
            .unwrap_or_default();
        AttackPath {
            id: format!("p{}", i + 1),
            summary: format!("From {} to {}: {}", names[0], names[names.len() - 1], how),
            steps,
            score,
        }
    }
}

/// How much an attacker gains by reaching a node: sensitive stores and secrets most.
fn target_value(dfd: &Dfd, node: usize, lexicon: &Lexicon) -> f64 {
    let n = &dfd.nodes[node];
    if n.kind != ElementKind::DataStore {
        return 0.0;
    }
    let sensitivity = n
        .data
        .iter()
        .filter_map(|d| lexicon.data_class(d))
        .map(|d| d.sensitivity)
        .max()
        .unwrap_or(0);
    let criticality = lexicon
        .component(&n.component)
        .map_or(0.5, |c| c.criticality);
    if sensitivity < 3 && criticality < 0.9 {
        return 0.0;
    }
    (f64::from(sensitivity) / 4.0).max(criticality)
}

#[cfg(test)]
mod tests {
    use crate::Engine;

    fn review(doc: &str) -> vigil_core::Review {
        Engine::with_defaults()
            .unwrap()
            .analyze_bytes("t.md", doc.as_bytes())
            .unwrap()
            .remove(0)
    }

    #[test]
    fn a_path_runs_from_the_internet_through_findings_to_the_sensitive_store() {
        let r = review(
            "# D\n\nCustomers use the claims portal. The claims portal builds SQL from the query string \
             and calls the claims API. The claims API writes diagnoses and patient names to the claims database.\n",
        );
        let path = r.attack_paths.first().expect("a path");
        let names: Vec<&str> = path.steps.iter().map(|s| s.element_name.as_str()).collect();
        assert_eq!(names.last().copied(), Some("Claims database"), "{names:?}");
        let start = r.dfd.node(&path.steps[0].element).unwrap();
        assert!(start.entry_point || start.trust_zone.is_untrusted());
        assert!(path.steps[1..]
            .iter()
            .all(|s| !s.findings.is_empty() || s.element_name == "Claims database"));
        assert!(path.score > 0.0 && path.score <= 10.0);
        assert!(path.summary.starts_with("From "));
        for p in &r.attack_paths {
            let people = p.steps[1..].iter().filter_map(|s| r.dfd.node(&s.element));
            let people = people
                .filter(|n| n.kind == vigil_core::ElementKind::ExternalEntity)
                .count();
            assert_eq!(
                people, 0,
                "external entities only start a path: {:?}",
                p.summary
            );
        }
        let sorted = r.attack_paths.windows(2).all(|w| w[0].score >= w[1].score);
        assert!(sorted);
    }

    #[test]
    fn no_sensitive_store_means_no_path() {
        let r = review(
            "# D\n\nVisitors use the brochure site. The brochure site shows opening hours.\n",
        );
        assert!(r.attack_paths.is_empty(), "{:?}", r.attack_paths);
    }
}
