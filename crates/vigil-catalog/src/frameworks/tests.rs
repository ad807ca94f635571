//! Unit tests of the framework tables: loading, lookups and rejection of unknown or retired ids.

use super::*;
use serde_json::{json, Value};

fn tables() -> Frameworks {
    Frameworks::embedded().expect("embedded framework tables load")
}

fn rule(extra: &str) -> Rule {
    let text = format!(
        r#"
        id = "VGL-T-999"
        category = "tampering"
        title = "Test rule"
        applies_to = ["process"]
        rationale = "A rule built by the framework tests to exercise id checks."
        mitigations = ["Do the right thing."]
        likelihood = "low"
        impact = "low"
        {extra}
        "#
    );
    toml::from_str(&text).expect("test rule parses")
}

fn edited(text: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut value: Value = serde_json::from_str(text).expect("reference file is JSON");
    edit(&mut value);
    value.to_string()
}

#[test]
fn embedded_tables_load_with_expected_counts() {
    let f = tables();
    assert_eq!(f.cwe.len(), 964);
    assert_eq!(f.cwe_groupings.len(), 409 + 54);
    assert_eq!(f.capec.len(), 558);
    assert_eq!(f.techniques.len(), 691);
    assert_eq!(f.techniques_retired.len(), 144);
    assert_eq!(f.csf_subcategories.len(), 106);
    assert_eq!(f.pci.len(), 12 + 63);
    assert_eq!(f.hipaa.len(), 65);
    assert_eq!(f.soc2.len(), 61);
}

#[test]
fn upstream_references_to_retired_ids_are_known_not_errors() {
    let f = tables();
    let seen: Vec<_> = f
        .retired_references()
        .iter()
        .map(|r| (r.owner.as_str(), r.id.as_str()))
        .collect();
    assert!(seen.contains(&("CWE-285", "CAPEC-5")), "{seen:?}");
    assert!(seen.contains(&("CAPEC-641", "T1574.002")), "{seen:?}");
    assert!(seen.contains(&("CAPEC-648", "T1513")), "{seen:?}");
    assert_eq!(seen.len(), 3);
}

#[test]
fn lookups_return_current_entries_only() {
    let f = tables();
    assert!(f.cwe(89).unwrap().name.contains("SQL Command"));
    assert!(f.cwe(1345).is_none(), "a category is not a weakness");
    assert!(f.cwe_grouping(1345).is_some());
    assert_eq!(f.capec(66).unwrap().name, "SQL Injection");
    assert!(f.capec(5).is_none() && f.capec_retired(5).is_some());
    assert_eq!(
        f.attack("T1190").unwrap().name,
        "Exploit Public-Facing Application"
    );
    assert_eq!(
        f.attack("T1552.001").unwrap().subtechnique_of.as_deref(),
        Some("T1552")
    );
    assert!(f.attack("T1002").is_none());
    assert_eq!(f.attack_resolved("T1002").unwrap().id, "T1560");
    assert_eq!(f.owasp_2021("A03:2021").unwrap().name, "Injection");
    assert!(f.owasp_2025("A01:2025").is_some() && f.owasp_2025("A03:2021").is_none());
    assert!(f.nist_csf("PR.AA-01").is_some());
    assert!(f.nist_csf("PR.AC-01").is_none() && f.nist_csf_withdrawn("PR.AC-01"));
    assert!(
        f.nist_csf("PR.AA").is_none(),
        "categories are not subcategories"
    );
    assert!(f.pci_dss("8").is_some() && f.pci_dss("8.4").is_some());
    assert!(f.pci_dss("8.4.2").is_none());
    assert_eq!(f.hipaa("164.312(b)").unwrap().name, "Audit controls");
    assert!(f.soc2("CC6.1").is_some() && f.soc2("CC6").is_none());
    assert!(f.stride().applies(ElementKind::DataStore, "T"));
    assert!(!f.stride().applies(ElementKind::Flow, "S"));
    assert!(f.linddun().applies(ElementKind::ExternalEntity, "U"));
}

#[test]
fn display_names_carry_the_framework_prefix() {
    let f = tables();
    let sqli = f.display(FrameworkKind::Cwe, "89").unwrap();
    assert!(
        sqli.starts_with("CWE-89: Improper Neutralization"),
        "{sqli}"
    );
    assert_eq!(
        f.display(FrameworkKind::Capec, "CAPEC-66").unwrap(),
        "CAPEC-66: SQL Injection"
    );
    assert_eq!(
        f.display(FrameworkKind::Attack, "T1110").unwrap(),
        format!("T1110: {}", f.attack("T1110").unwrap().name)
    );
    assert!(f.display(FrameworkKind::Attack, "T1002").is_none());
    assert!(f.owasp_for_cwe(2021, 89).iter().any(|e| e.id == "A03:2021"));
}

#[test]
fn a_dangling_reference_fails_the_load_naming_the_file() {
    let cwe = edited(CWE, |v| v["weaknesses"][0]["parents"] = json!([9_999_999]));
    let err = Frameworks::from_sources(&Sources {
        cwe: &cwe,
        ..Sources::EMBEDDED
    })
    .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, Error::UnknownId { kind: "cwe", .. }),
        "{message}"
    );
    assert!(
        message.contains("frameworks/cwe.json") && message.contains("9999999"),
        "{message}"
    );

    let capec = edited(CAPEC, |v| {
        v["attack_patterns"][0]["attack"] = json!(["T9999"])
    });
    let err = Frameworks::from_sources(&Sources {
        capec: &capec,
        ..Sources::EMBEDDED
    })
    .unwrap_err();
    assert!(
        matches!(err, Error::UnknownId { kind: "attack", .. }),
        "{err}"
    );
}

#[test]
fn a_duplicate_id_fails_the_load() {
    let attack = edited(ATTACK, |v| {
        let first = v["techniques"][0].clone();
        v["techniques"].as_array_mut().unwrap().push(first);
    });
    let err = Frameworks::from_sources(&Sources {
        attack: &attack,
        ..Sources::EMBEDDED
    });
    assert!(
        matches!(err, Err(Error::Duplicate { ref id, .. }) if id == "T1001"),
        "{err:?}"
    );

    let csf = edited(NIST_CSF, |v| v["withdrawn"][0]["id"] = json!("PR.AA-01"));
    let err = Frameworks::from_sources(&Sources {
        nist_csf: &csf,
        ..Sources::EMBEDDED
    });
    assert!(matches!(err, Err(Error::Duplicate { .. })), "{err:?}");
}

#[test]
fn check_rule_accepts_current_ids() {
    let rule = rule(
        r#"cwe = [89]
        capec = [66]
        attack = ["T1190"]
        owasp_2021 = ["A03:2021"]
        owasp_2025 = ["A05:2025"]
        nist_csf = ["PR.DS-01"]
        pci_dss = ["6.2"]
        hipaa = ["164.312(c)(1)"]
        soc2 = ["CC8.1"]"#,
    );
    tables().check_rule(&rule).unwrap();
}

#[test]
fn check_rule_rejects_a_retired_attack_technique_with_its_successor() {
    let err = tables()
        .check_rule(&rule(r#"attack = ["T1002"]"#))
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::UnknownId { kind: "attack", .. }));
    assert!(message.contains("rule VGL-T-999"), "{message}");
    assert!(
        message.contains("revoked") && message.contains("cite T1560"),
        "{message}"
    );
}

#[test]
fn check_rule_rejects_ids_that_are_not_citable() {
    let f = tables();
    let cases = [
        (r#"cwe = [999999]"#, "cwe", "999999"),
        (r#"cwe = [1345]"#, "cwe", "category or view"),
        (r#"cwe = [71]"#, "cwe", "Prohibited"),
        (r#"cwe = [20]"#, "cwe", "Discouraged"),
        (r#"capec = [5]"#, "capec", "retired"),
        (r#"attack = ["T9999"]"#, "attack", "T9999"),
        (r#"owasp_2021 = ["A01:2025"]"#, "owasp_2021", "A01:2025"),
        (r#"owasp_2025 = ["A11:2025"]"#, "owasp_2025", "A11:2025"),
        (r#"nist_csf = ["PR.AC-01"]"#, "nist_csf", "withdrawn"),
        (r#"nist_csf = ["PR.AA"]"#, "nist_csf", "category"),
        (r#"pci_dss = ["13.1"]"#, "pci_dss", "13.1"),
        (r#"hipaa = ["164.999"]"#, "hipaa", "164.999"),
        (r#"soc2 = ["CC6"]"#, "soc2", "CC6"),
    ];
    for (extra, kind, needle) in cases {
        let err = f.check_rule(&rule(extra)).unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, Error::UnknownId { kind: k, .. } if k == kind),
            "{extra}: {message}"
        );
        assert!(message.contains(needle), "{extra}: {message}");
    }
}

#[test]
fn check_rule_applies_stride_per_element() {
    let mut spoofed_flow = rule("");
    spoofed_flow.category = ThreatCategory::Spoofing;
    spoofed_flow.applies_to = vec![ElementKind::Flow];
    let err = tables().check_rule(&spoofed_flow).unwrap_err();
    assert!(matches!(err, Error::InvalidRule { .. }), "{err}");

    let mut store_repudiation = rule("");
    store_repudiation.category = ThreatCategory::Repudiation;
    store_repudiation.applies_to = vec![ElementKind::DataStore];
    tables().check_rule(&store_repudiation).unwrap();
}
