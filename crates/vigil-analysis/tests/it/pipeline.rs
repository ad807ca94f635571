//! Integration tests of the whole deterministic pipeline: extraction, modelling, threats,
//! scoring and attack paths on small design documents kept as fixture files.

use std::path::PathBuf;

use vigil_analysis::Engine;
use vigil_core::{ElementKind, Review, ThreatCategory};

fn fixture(name: &str) -> (String, Vec<u8>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pipeline")
        .join(name);
    (
        path.display().to_string(),
        std::fs::read(&path).expect("fixture exists"),
    )
}

fn review(name: &str) -> (Review, Vec<u8>) {
    let engine = Engine::with_defaults().expect("embedded catalogue loads");
    let (origin, bytes) = fixture(name);
    let mut reviews = engine
        .analyze_bytes(&origin, &bytes)
        .expect("fixture analyses");
    assert_eq!(reviews.len(), 1);
    (reviews.remove(0), bytes)
}

fn node<'a>(review: &'a Review, name: &str) -> &'a vigil_core::DfdNode {
    review
        .dfd
        .nodes
        .iter()
        .find(|n| n.name.eq_ignore_ascii_case(name))
        .or_else(|| {
            review
                .dfd
                .nodes
                .iter()
                .find(|n| n.name.to_lowercase().ends_with(&name.to_lowercase()))
        })
        .unwrap_or_else(|| {
            panic!(
                "no node {name:?} in {:?}",
                review.dfd.nodes.iter().map(|n| &n.name).collect::<Vec<_>>()
            )
        })
}

#[test]
fn names_components_as_the_artifact_does() {
    let (r, _) = review("exposed.md");
    assert_eq!(node(&r, "Browser").kind, ElementKind::ExternalEntity);
    assert_eq!(node(&r, "Storefront").kind, ElementKind::Process);
    assert_eq!(node(&r, "Loyalty API").component, "api");
    let db = node(&r, "Loyalty database");
    assert_eq!(db.kind, ElementKind::DataStore);
    assert!(
        db.technologies.iter().any(|t| t == "postgresql"),
        "{:?}",
        db.technologies
    );
    assert!(db.data.iter().any(|d| d == "personal"), "{:?}", db.data);
    assert!(
        db.signals.iter().any(|s| s == "open_network"),
        "{:?}",
        db.signals
    );
}

#[test]
fn flows_follow_the_verbs() {
    let (r, _) = review("exposed.md");
    let name = |id: &str| {
        r.dfd
            .node(id)
            .map(|n| {
                n.name
                    .to_lowercase()
                    .trim_start_matches("brightcart ")
                    .to_owned()
            })
            .unwrap_or_default()
    };
    let flows: Vec<(String, String)> = r
        .dfd
        .flows
        .iter()
        .map(|f| (name(&f.from), name(&f.to)))
        .collect();
    for pair in [
        ("browser", "storefront"),
        ("storefront", "loyalty api"),
        ("loyalty api", "loyalty database"),
    ] {
        assert!(
            flows.iter().any(|(a, b)| a == pair.0 && b == pair.1),
            "missing {pair:?} in {flows:?}"
        );
    }
    let browser_flow = r
        .dfd
        .flows
        .iter()
        .find(|f| name(&f.from) == "browser")
        .unwrap();
    assert!(
        browser_flow.crosses_boundary,
        "browser -> storefront crosses from the internet"
    );
    assert!(r.dfd.entry_points.contains(&node(&r, "Storefront").id));
}

#[test]
fn stated_weaknesses_raise_findings_with_quotes() {
    let (r, bytes) = review("exposed.md");
    let on = |element: &str, category: ThreatCategory| {
        let id = &node(&r, element).id;
        r.findings
            .iter()
            .any(|f| &f.element == id && f.category == category)
    };
    assert!(
        on("Loyalty API", ThreatCategory::Spoofing),
        "unauthenticated API should be spoofable"
    );
    assert!(on(
        "Loyalty database",
        ThreatCategory::InformationDisclosure
    ));
    assert!(
        on("Storefront", ThreatCategory::Tampering),
        "SQL built from parameters is injection"
    );
    for f in &r.findings {
        assert!(!f.evidence.is_empty(), "{} has no evidence", f.rule);
        for e in &f.evidence {
            let quoted = String::from_utf8_lossy(&bytes[e.start..e.end]);
            let first_word = e.text.split_whitespace().next().unwrap();
            assert!(
                quoted.contains(first_word),
                "{}: {:?} not at {}..{}",
                f.rule,
                e.text,
                e.start,
                e.end
            );
        }
    }
}

#[test]
fn stated_controls_lower_or_suppress_findings() {
    let (exposed, _) = review("exposed.md");
    let (protected, _) = review("protected.md");
    assert!(
        protected.findings.len() < exposed.findings.len(),
        "protected {} vs exposed {}",
        protected.findings.len(),
        exposed.findings.len()
    );
    let top = |r: &Review| r.findings.first().map_or(0.0, |f| f.score.value);
    assert!(
        top(&protected) < top(&exposed),
        "{} vs {}",
        top(&protected),
        top(&exposed)
    );
    let api = &node(&protected, "Loyalty API").id;
    assert!(
        !protected.findings.iter().any(|f| &f.element == api
            && f.category == ThreatCategory::Spoofing
            && f.rule.contains("-S-")
            && f.evidence
                .iter()
                .any(|e| e.text.contains("no authentication"))),
        "authentication is stated for the protected API"
    );
}

#[test]
fn scores_are_explained_and_banded() {
    let (r, _) = review("exposed.md");
    assert!(!r.findings.is_empty());
    let bands = vigil_analysis::score::SeverityBands::default();
    for f in &r.findings {
        let s = &f.score;
        assert!((0.0..=10.0).contains(&s.value));
        assert_eq!(s.severity, bands.severity(s.value));
        let sla = vigil_analysis::score::SlaDays::default();
        assert_eq!(s.sla_days, sla.days(s.severity));
        for group in [&s.exploitability, &s.blast_radius, &s.urgency] {
            assert!(!group.factors.is_empty());
            assert!(group
                .factors
                .iter()
                .all(|x| !x.reason.is_empty() && (0.0..=1.0).contains(&x.value)));
        }
        assert!(s.formula.contains("exploitability"));
    }
    let sorted = r
        .findings
        .windows(2)
        .all(|w| w[0].score.value >= w[1].score.value);
    assert!(sorted, "findings are ranked by score");
}

#[test]
fn the_same_input_gives_the_same_review() {
    let (a, _) = review("exposed.md");
    let (b, _) = review("exposed.md");
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
}

#[test]
fn attack_paths_lead_from_the_internet_to_the_database() {
    let (r, _) = review("exposed.md");
    let db = &node(&r, "Loyalty database").id;
    let path = r
        .attack_paths
        .iter()
        .find(|p| &p.steps.last().unwrap().element == db)
        .expect("a path to the database");
    let start = r.dfd.node(&path.steps[0].element).unwrap();
    assert!(start.entry_point || start.trust_zone.is_untrusted());
    assert!(path.score > 0.0 && path.score <= 10.0);
}

#[test]
fn finding_ids_are_stable_in_an_artifact_and_distinct_across_artifacts() {
    let engine = Engine::with_defaults().expect("embedded catalogue loads");
    let (_, bytes) = fixture("exposed.md");
    let ids = |origin: &str| -> Vec<String> {
        let reviews = engine.analyze_bytes(origin, &bytes).expect("analyses");
        reviews[0].findings.iter().map(|f| f.id.clone()).collect()
    };
    let a = ids("docs/a.md");
    assert!(!a.is_empty());
    assert_eq!(a, ids("docs/a.md"), "the same artifact keeps its ids");
    let b = ids("docs/b.md");
    assert!(
        a.iter().all(|id| !b.contains(id)),
        "a copy elsewhere gets ids of its own"
    );
}
