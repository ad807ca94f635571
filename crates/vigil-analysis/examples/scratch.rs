use vigil_analysis::extract;
use vigil_core::*;
fn main() {
    let lexicon = vigil_catalog::Lexicon::embedded().unwrap();
    let matcher = extract::Matcher::new(&lexicon);
    for path in std::env::args().skip(1) {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut map = OffsetMap::default();
        map.push(Segment { text_start: 0, text_len: text.len(), orig_start: 0, orig_end: text.len(), verbatim: true });
        let text2 = text.replace("**", "  ");
        let a = Artifact { id: "x".into(), title: "x".into(), format: SourceFormat::Markdown, origin: path.clone(), meta: Default::default(), sections: vec![Section { heading_path: vec![], text: text2, map }] };
        let facts = extract::extract(&a, &lexicon, &matcher);
        let model = vigil_analysis::model::build(&facts, &lexicon);
        println!("== {path}");
        for n in &model.dfd.nodes { println!("  {} [{}:{}:{}] data={:?} sig={:?} ctl={:?} abs={:?}", n.name, n.component, n.kind.as_str(), n.trust_zone, n.data, n.signals, n.controls, n.absent_controls); }
        for f in &model.dfd.flows { println!("  FLOW {} ({})", model.dfd.flow_name(f), f.interaction); }
    }
}
