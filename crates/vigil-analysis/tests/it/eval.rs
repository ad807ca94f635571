//! Integration tests: eval. Scores a hand-made review against fixture cases through the public
//! entry points, with known expected numbers.

use std::fs;
use std::path::{Path, PathBuf};

use vigil_analysis::eval::{evaluate_dir, evaluate_dir_with, EvalReport};
use vigil_analysis::{Engine, Error};
use vigil_core::Review;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eval")
}

fn fake_review() -> Review {
    let text = fs::read_to_string(fixtures().join("clinic-notes.review.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn fake_engine(origin: &str, _bytes: &[u8]) -> vigil_analysis::Result<Vec<Review>> {
    if origin.contains("clinic-notes") {
        Ok(vec![fake_review()])
    } else {
        Err(Error::InvalidJson {
            origin: origin.to_owned(),
            offset: 52,
            message: "EOF".into(),
        })
    }
}

#[test]
fn scores_fixture_cases_with_known_numbers() {
    let report = evaluate_dir_with(&fixtures().join("cases"), fake_engine).unwrap();

    let names: Vec<&str> = report.cases.iter().map(|c| c.case.as_str()).collect();
    assert_eq!(
        names,
        ["clinic-notes", "missing-artifact", "unreadable-ticket"]
    );

    let clinic = &report.cases[0];
    assert_eq!(clinic.error, None);
    assert_eq!(clinic.kind, "design-doc");
    assert_eq!(clinic.metrics.element_recall, Some(0.75));
    assert_eq!(clinic.metrics.category_recall, Some(0.8));
    assert_eq!(clinic.metrics.element_category_recall, Some(0.6));
    assert_eq!(clinic.metrics.cwe_agreement, Some(0.5));
    assert_eq!(clinic.metrics.noise, Some(1.2));

    let missing = &report.cases[1];
    assert!(missing
        .error
        .as_deref()
        .unwrap()
        .contains("no artifact file"));
    assert_eq!((missing.counts.gold_threats, missing.counts.errors), (2, 1));

    let unreadable = &report.cases[2];
    assert!(unreadable
        .error
        .as_deref()
        .unwrap()
        .contains("invalid JSON"));
    assert_eq!(unreadable.kind, "jira-issue");

    let t = &report.total;
    assert_eq!(t.cases, 3);
    assert_eq!(t.counts.gold_elements, 4 + 1 + 2);
    assert_eq!(t.counts.matched_elements, 3);
    assert_eq!(t.counts.gold_threats, 5 + 2 + 1);
    assert_eq!(t.counts.findings, 6);
    assert_eq!(t.counts.errors, 2);
    assert_eq!(t.micro.element_recall, Some(3.0 / 7.0));
    assert_eq!(t.micro.category_recall, Some(4.0 / 8.0));
    assert_eq!(t.micro.element_category_recall, Some(3.0 / 8.0));
    assert_eq!(t.micro.cwe_agreement, Some(0.5));
    assert_eq!(t.micro.noise, Some(6.0 / 8.0));
    assert_eq!(t.macro_element_category_recall, Some(0.6 / 3.0));
}

#[test]
fn report_round_trips_through_json_and_prints_a_table() {
    let report = evaluate_dir_with(&fixtures().join("cases"), fake_engine).unwrap();

    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["total"]["counts"]["gold_threats"], 8);
    assert_eq!(
        json["cases"][0]["missed_threats"],
        serde_json::json!(["T4", "T5"])
    );
    let back: EvalReport = serde_json::from_value(json).unwrap();
    assert_eq!(back, report);

    let table = report.to_table();
    assert_eq!(table.lines().filter(|l| l.starts_with("total")).count(), 1);
    assert!(table.contains("clinic-notes"));
    assert!(table.contains("60.0%"));
}

#[test]
fn the_engine_runs_every_case_whatever_its_stages_find() {
    let engine = Engine::with_defaults().unwrap();
    let report = evaluate_dir(&engine, &fixtures().join("cases")).unwrap();

    assert_eq!(report.total.cases, 3);
    assert_eq!(report.total.counts.gold_threats, 8);
    assert_eq!(report.total.counts.gold_elements, 7);
    assert!(
        report.total.counts.errors >= 1,
        "the folder without an artifact is always an error"
    );
}

#[test]
fn a_folder_without_cases_is_an_error() {
    let err = evaluate_dir_with(&fixtures(), fake_engine).unwrap_err();
    assert!(err.to_string().contains("no case folders"), "{err}");
}
