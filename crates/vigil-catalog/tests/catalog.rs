//! The embedded rule catalogue: counts, coverage, id validity and customer overrides.

use std::collections::BTreeMap;
use std::path::PathBuf;

use vigil_catalog::frameworks::{linddun_id, stride_id};
use vigil_catalog::{Catalog, Error, Rule};
use vigil_core::ThreatCategory;

fn catalog() -> Catalog {
    Catalog::embedded().expect("embedded catalogue loads and validates")
}

fn counts(catalog: &Catalog) -> BTreeMap<ThreatCategory, usize> {
    let mut counts = BTreeMap::new();
    for rule in catalog.rules.iter() {
        *counts.entry(rule.category).or_default() += 1;
    }
    counts
}

/// A scratch rules.d directory, removed when dropped.
struct RulesDir(PathBuf);

impl RulesDir {
    fn new(name: &str) -> RulesDir {
        let dir = std::env::temp_dir().join(format!("vigil-rules-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        RulesDir(dir)
    }

    fn write(&self, file: &str, text: &str) {
        std::fs::write(self.0.join(file), text).unwrap();
    }
}

impl Drop for RulesDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A rules.d file holding one rule.
fn rules_file(rule: &Rule) -> String {
    #[derive(serde::Serialize)]
    struct RuleFile<'a> {
        rule: [&'a Rule; 1],
    }
    toml::to_string(&RuleFile { rule: [rule] }).expect("rule serialises")
}

#[test]
fn catalogue_has_enough_rules_in_every_category() {
    let catalog = catalog();
    let counts = counts(&catalog);
    let stride: usize = counts
        .iter()
        .filter(|(c, _)| stride_id(**c).is_some())
        .map(|(_, n)| n)
        .sum();
    let linddun: usize = counts
        .iter()
        .filter(|(c, _)| linddun_id(**c).is_some())
        .map(|(_, n)| n)
        .sum();
    assert!(stride >= 130, "{counts:?}");
    assert!(linddun >= 18, "{counts:?}");
    for category in ThreatCategory::ALL {
        let n = counts.get(&category).copied().unwrap_or(0);
        let floor = match category {
            ThreatCategory::Repudiation | ThreatCategory::DenialOfService => 10,
            c if stride_id(c).is_some() => 10,
            _ => 2,
        };
        assert!(n >= floor, "{category:?}: {n} rules");
    }
}

#[test]
fn every_rule_is_well_formed_and_discriminating() {
    let catalog = catalog();
    for rule in catalog.rules.iter() {
        let prefix = match stride_id(rule.category) {
            Some(letter) => format!("VGL-{letter}-"),
            None => "VGL-P-".to_owned(),
        };
        assert!(
            rule.id.starts_with(&prefix) && rule.id.len() == 9,
            "{}",
            rule.id
        );
        assert!(
            (2..=4).contains(&rule.mitigations.len()),
            "{}: 2-4 mitigations",
            rule.id
        );
        assert!(
            !rule.mitigated_by.is_empty(),
            "{}: no mitigating control",
            rule.id
        );
        assert!(
            (1..=3).contains(&rule.cwe.len()),
            "{}: cite 1-3 CWE",
            rule.id
        );
        assert!(!rule.nist_csf.is_empty(), "{}: no CSF subcategory", rule.id);
        assert!(rule.enabled, "{}", rule.id);
        assert!(
            discriminating(rule),
            "{}: fires on every element of its kind",
            rule.id
        );
        if linddun_id(rule.category).is_some() {
            assert!(
                personal(rule),
                "{}: privacy rule without personal data",
                rule.id
            );
            let table = catalog.frameworks.linddun();
            let id = linddun_id(rule.category).unwrap();
            assert!(
                rule.applies_to.iter().all(|k| table.applies(*k, id)),
                "{}",
                rule.id
            );
        }
    }
}

/// Component types common enough that a rule keyed on them alone would fire everywhere.
const BROAD_COMPONENTS: [&str; 8] = [
    "service",
    "api",
    "web_app",
    "database",
    "worker",
    "function",
    "object_store",
    "end_user",
];

fn discriminating(rule: &Rule) -> bool {
    let w = &rule.when;
    let narrow_components = !w.components.is_empty()
        && w.components.len() <= 2
        && !w
            .components
            .iter()
            .any(|c| BROAD_COMPONENTS.contains(&c.as_str()));
    narrow_components
        || !w.signals.is_empty()
        || !w.controls_ruled_out.is_empty()
        || !w.data.is_empty()
        || !w.technologies.is_empty()
        || !w.from_components.is_empty()
        || !w.to_components.is_empty()
        || w.entry_point == Some(true)
        || (!w.components.is_empty() && !w.controls_present.is_empty())
}

fn personal(rule: &Rule) -> bool {
    rule.when
        .data
        .iter()
        .any(|d| ["personal", "location", "health"].contains(&d.as_str()))
}

#[test]
fn validate_rejects_a_rule_citing_a_bogus_cwe_or_attack_id() {
    let dir = RulesDir::new("bogus");
    let sqli = catalog()
        .rules
        .iter()
        .find(|r| r.cwe.contains(&89))
        .unwrap()
        .clone();

    let mut bogus_cwe = sqli.clone();
    bogus_cwe.cwe = vec![99_999];
    dir.write("bogus.toml", &rules_file(&bogus_cwe));
    let mut catalog = catalog();
    catalog.rules.apply_overrides(&dir.0).unwrap();
    let err = catalog.validate().unwrap_err();
    assert!(matches!(err, Error::UnknownId { kind: "cwe", .. }), "{err}");

    let mut retired = sqli;
    retired.attack = vec!["T1002".to_owned()];
    dir.write("bogus.toml", &rules_file(&retired));
    let err = Catalog::with_overrides(&dir.0).unwrap_err();
    assert!(
        matches!(err, Error::UnknownId { kind: "attack", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("cite T1560"), "{err}");
}

#[test]
fn overrides_replace_and_disable_rules_by_id() {
    let dir = RulesDir::new("override");
    let mut replaced = catalog().rules.get("VGL-S-001").unwrap().clone();
    replaced.title = "Credential stuffing against the partner portal".to_owned();
    replaced.likelihood = vigil_catalog::rules::Level::Medium;
    let mut disabled = catalog().rules.get("VGL-I-011").unwrap().clone();
    disabled.enabled = false;
    dir.write("10-replace.toml", &rules_file(&replaced));
    dir.write("20-disable.toml", &rules_file(&disabled));
    dir.write("notes.txt", "not a rules file");

    let catalog = Catalog::with_overrides(&dir.0).unwrap();
    assert_eq!(catalog.rules.len(), self::catalog().rules.len());
    let rule = catalog.rules.get("VGL-S-001").unwrap();
    assert_eq!(rule.title, "Credential stuffing against the partner portal");
    assert!(!catalog.rules.get("VGL-I-011").unwrap().enabled);
    assert!(catalog.rules.enabled().all(|r| r.id != "VGL-I-011"));
}

#[test]
fn a_malformed_override_file_is_reported_by_name() {
    let dir = RulesDir::new("malformed");
    dir.write("broken.toml", "[[rule]]\nid = \"CUSTOM-001\"\ntitle = 3\n");
    let err = Catalog::with_overrides(&dir.0).unwrap_err();
    assert!(matches!(err, Error::Parse { .. }), "{err}");
    assert!(err.to_string().contains("broken.toml"), "{err}");
}

#[test]
fn the_rules_d_readme_example_loads() {
    let readme = include_str!("../../../config/rules.d/README.md");
    let example = readme
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README has a TOML example");
    let dir = RulesDir::new("readme");
    dir.write("10-acme.toml", example);

    let catalog = Catalog::with_overrides(&dir.0).unwrap();
    assert!(catalog.rules.get("ACME-001").is_some_and(|r| r.enabled));
    assert!(!catalog.rules.get("VGL-I-011").unwrap().enabled);
}
