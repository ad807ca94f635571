//! Integration tests: report. Every format is rendered from one hand-written review of a card
//! payments design and compared with a committed snapshot; SARIF is also validated against the
//! official SARIF 2.1.0 schema and SVG parsed as XML.

use std::path::PathBuf;

use serde_json::Value;
use vigil_analysis::report::{self, table, OutputFormat};
use vigil_core::Review;

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/report")
        .join(name)
}

fn review() -> Review {
    let text = std::fs::read_to_string(fixture_path("review.json")).expect("fixture readable");
    serde_json::from_str(&text).expect("fixture is a Review")
}

fn render(format: OutputFormat) -> String {
    report::render(&[review()], format)
}

#[test]
fn format_names_round_trip() {
    for format in OutputFormat::ALL {
        assert_eq!(format.to_string().parse::<OutputFormat>().unwrap(), format);
    }
    assert_eq!(
        "MD".parse::<OutputFormat>().unwrap(),
        OutputFormat::Markdown
    );
    assert!("pdf".parse::<OutputFormat>().is_err());
}

#[test]
fn json_snapshot() {
    insta::assert_snapshot!(render(OutputFormat::Json));
}

#[test]
fn json_carries_the_evaluation_fields() {
    let out = render(OutputFormat::Json);
    let value: Value = serde_json::from_str(&out).expect("one JSON object");
    let node = &value["dfd"]["nodes"][0];
    for key in ["id", "name", "kind", "trust_zone"] {
        assert!(!node[key].is_null(), "dfd.nodes[].{key}");
    }
    let flow = &value["dfd"]["flows"][0];
    for key in ["id", "from", "to", "crosses_boundary"] {
        assert!(!flow[key].is_null(), "dfd.flows[].{key}");
    }
    let finding = &value["findings"][0];
    for key in [
        "id",
        "rule",
        "title",
        "category",
        "element",
        "element_name",
        "cwe",
        "capec",
        "attack",
    ] {
        assert!(!finding[key].is_null(), "findings[].{key}");
    }
    assert!(finding["score"]["value"].is_number());
    assert!(finding["score"]["severity"].is_string());
    let evidence = &finding["evidence"][0];
    assert!(evidence["text"].is_string());
    assert!(evidence["start"].is_u64());
    assert!(evidence["end"].is_u64());
}

#[test]
fn json_of_several_reviews_is_a_stream() {
    let out = report::render(&[review(), review()], OutputFormat::Json);
    let values: Vec<Value> = serde_json::Deserializer::from_str(&out)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .expect("valid JSON stream");
    assert_eq!(values.len(), 2);
}

#[test]
fn table_snapshot() {
    insta::assert_snapshot!(render(OutputFormat::Table));
}

#[test]
fn table_lines_stay_within_the_width() {
    for line in render(OutputFormat::Table).lines() {
        assert!(line.chars().count() <= table::MAX_WIDTH, "too wide: {line}");
    }
}

#[test]
fn table_colours_only_when_asked() {
    assert!(!render(OutputFormat::Table).contains('\x1b'));
    let coloured = table::render_table(&[review()], true);
    assert!(coloured.contains("\x1b[1;31mcritical"));
}

#[test]
fn markdown_snapshot() {
    insta::assert_snapshot!(render(OutputFormat::Markdown));
}

#[test]
fn sarif_snapshot() {
    insta::assert_snapshot!(render(OutputFormat::Sarif));
}

#[test]
fn sarif_is_valid_against_the_official_schema() {
    let schema_text =
        std::fs::read_to_string(fixture_path("sarif-schema-2.1.0.json")).expect("schema fixture");
    let schema: Value = serde_json::from_str(&schema_text).expect("schema is JSON");
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(true)
        .build(&schema)
        .expect("schema compiles");

    let log: Value = serde_json::from_str(&render(OutputFormat::Sarif)).expect("SARIF is JSON");
    let errors: Vec<String> = validator
        .iter_errors(&log)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "SARIF schema violations:\n{}",
        errors.join("\n")
    );

    // The schema must also reject what is not SARIF, or the check above proves nothing.
    let mut broken = log.clone();
    broken["runs"][0]["results"][0]["level"] = Value::from("fatal");
    assert!(!validator.is_valid(&broken));
}

#[test]
fn sarif_results_follow_the_findings() {
    let log: Value = serde_json::from_str(&render(OutputFormat::Sarif)).unwrap();
    let run = &log["runs"][0];
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    let first = &results[0];
    assert_eq!(first["level"], "error");
    assert_eq!(first["partialFingerprints"]["vigil/v1"], "c0ffee01a1b2c3d4");
    assert_eq!(
        first["locations"][0]["physicalLocation"]["region"]["charOffset"],
        1104
    );
    let index = first["ruleIndex"].as_u64().unwrap() as usize;
    assert_eq!(run["tool"]["driver"]["rules"][index]["id"], first["ruleId"]);
    assert_eq!(
        run["tool"]["driver"]["rules"][index]["properties"]["security-severity"],
        "9.2"
    );
}

#[test]
fn mermaid_snapshot() {
    insta::assert_snapshot!(render(OutputFormat::Mermaid));
}

#[test]
fn dot_snapshot() {
    insta::assert_snapshot!(render(OutputFormat::Dot));
}

#[test]
fn svg_snapshot() {
    insta::assert_snapshot!(render(OutputFormat::Svg));
}

#[test]
fn svg_is_well_formed_xml() {
    let mut reviews = vec![review()];
    let mut hostile = review();
    hostile.title = r#"<script>alert("x")</script> & 'more'"#.into();
    hostile.dfd.nodes[0].name = "A < B & \"C\" \u{1}".into();
    reviews.push(hostile);
    let svg = report::render(&reviews, OutputFormat::Svg);

    let mut reader = quick_xml::Reader::from_str(&svg);
    let mut depth = 0i32;
    let mut elements = 0;
    loop {
        match reader.read_event().expect("well-formed XML") {
            quick_xml::events::Event::Start(_) => {
                depth += 1;
                elements += 1;
            }
            quick_xml::events::Event::Empty(_) => elements += 1,
            quick_xml::events::Event::End(_) => depth -= 1,
            quick_xml::events::Event::Text(text) => {
                text.decode().expect("text decodes");
            }
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0);
    assert!(elements > 50);
    assert!(!svg.contains("<script>"));
}

#[test]
fn render_is_deterministic() {
    for format in OutputFormat::ALL {
        assert_eq!(render(format), render(format), "{format}");
    }
}
