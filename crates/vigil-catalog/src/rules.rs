//! The threat rule catalogue: TOML files, one per category, compiled in; customer rules in
//! `config/rules.d/*.toml` add rules or replace them by id (and can disable one with
//! `enabled = false`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

use vigil_core::{ElementKind, ThreatCategory, TrustZone};

use crate::error::{Error, Result};

/// The embedded rule files, by name.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "rules/spoofing.toml",
        include_str!("../data/rules/spoofing.toml"),
    ),
    (
        "rules/tampering.toml",
        include_str!("../data/rules/tampering.toml"),
    ),
    (
        "rules/repudiation.toml",
        include_str!("../data/rules/repudiation.toml"),
    ),
    (
        "rules/information_disclosure.toml",
        include_str!("../data/rules/information_disclosure.toml"),
    ),
    (
        "rules/denial_of_service.toml",
        include_str!("../data/rules/denial_of_service.toml"),
    ),
    (
        "rules/elevation_of_privilege.toml",
        include_str!("../data/rules/elevation_of_privilege.toml"),
    ),
    (
        "rules/privacy.toml",
        include_str!("../data/rules/privacy.toml"),
    ),
];

/// How likely or how damaging a rule's threat is before the artifact's facts are weighed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
}

impl Level {
    /// The level as a number in 0..=1.
    pub fn value(self) -> f64 {
        match self {
            Level::Low => 0.3,
            Level::Medium => 0.6,
            Level::High => 0.9,
        }
    }
}

/// The facts an element (or flow) must have for a rule to fire. Every list is "any of"; every
/// non-empty condition must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConditions {
    /// Component types of the element (for a flow: of either end).
    #[serde(default)]
    pub components: Vec<String>,
    /// Component types of a flow's source.
    #[serde(default)]
    pub from_components: Vec<String>,
    /// Component types of a flow's target.
    #[serde(default)]
    pub to_components: Vec<String>,
    /// Trust zones of the element (for a flow: of either end).
    #[serde(default)]
    pub zones: Vec<TrustZone>,
    /// Trust zones of a flow's source.
    #[serde(default)]
    pub from_zones: Vec<TrustZone>,
    /// Technologies named for the element.
    #[serde(default)]
    pub technologies: Vec<String>,
    /// Data classes the element holds or the flow carries.
    #[serde(default)]
    pub data: Vec<String>,
    /// Risk signals stated for the element.
    #[serde(default)]
    pub signals: Vec<String>,
    /// Controls that must be stated (the threat is about a control's weak use).
    #[serde(default)]
    pub controls_present: Vec<String>,
    /// Controls the artifact must explicitly rule out.
    #[serde(default)]
    pub controls_ruled_out: Vec<String>,
    /// Interactions of a flow (`calls`, `stores`, `uploads`, ...).
    #[serde(default)]
    pub interactions: Vec<String>,
    /// Whether a flow must (or must not) cross a trust boundary.
    #[serde(default)]
    pub crosses_boundary: Option<bool>,
    /// Whether the element must (or must not) be an entry point.
    #[serde(default)]
    pub entry_point: Option<bool>,
}

/// One threat rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable id (`VGL-S-001`, `VGL-L-003`, ...).
    pub id: String,
    /// STRIDE or LINDDUN category.
    pub category: ThreatCategory,
    /// Short title of the threat.
    pub title: String,
    /// Element kinds it applies to.
    pub applies_to: Vec<ElementKind>,
    /// Conditions on the element's facts.
    #[serde(default)]
    pub when: RuleConditions,
    /// Controls that address the threat: stated for the element, they suppress the finding.
    #[serde(default)]
    pub mitigated_by: Vec<String>,
    /// Why it matters, written for a developer.
    pub rationale: String,
    /// Concrete mitigations.
    pub mitigations: Vec<String>,
    /// How likely the threat is before the artifact's facts are weighed.
    pub likelihood: Level,
    /// How damaging it is before the artifact's facts are weighed.
    pub impact: Level,
    /// Whether the pattern is widely exploited in the wild (raises urgency).
    #[serde(default)]
    pub known_exploited: bool,
    /// CWE ids.
    #[serde(default)]
    pub cwe: Vec<u32>,
    /// CAPEC ids.
    #[serde(default)]
    pub capec: Vec<u32>,
    /// ATT&CK technique ids.
    #[serde(default)]
    pub attack: Vec<String>,
    /// OWASP Top 10 2021 ids.
    #[serde(default)]
    pub owasp_2021: Vec<String>,
    /// OWASP Top 10 2025 ids.
    #[serde(default)]
    pub owasp_2025: Vec<String>,
    /// NIST CSF 2.0 subcategories.
    #[serde(default)]
    pub nist_csf: Vec<String>,
    /// PCI DSS v4 requirements.
    #[serde(default)]
    pub pci_dss: Vec<String>,
    /// HIPAA Security Rule sections.
    #[serde(default)]
    pub hipaa: Vec<String>,
    /// SOC 2 criteria.
    #[serde(default)]
    pub soc2: Vec<String>,
    /// Whether the rule runs; an override sets this to false to switch a rule off.
    #[serde(default = "enabled_default")]
    pub enabled: bool,
}

fn enabled_default() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    rule: Vec<Rule>,
}

/// The loaded rules, keyed by id.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: BTreeMap<String, Rule>,
}

impl RuleSet {
    /// The rules compiled into the binary.
    pub fn embedded() -> Result<RuleSet> {
        let mut set = RuleSet::default();
        for (name, text) in EMBEDDED {
            for rule in parse_file(name, text)? {
                set.insert_new(name, rule)?;
            }
        }
        Ok(set)
    }

    /// Adds or replaces rules from every `*.toml` in `dir`, in file-name order.
    pub fn apply_overrides(&mut self, dir: &Path) -> Result<()> {
        let io = |source| Error::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            for rule in parse_file(&path.display().to_string(), &text)? {
                check_shape(&rule)?;
                self.rules.insert(rule.id.clone(), rule);
            }
        }
        Ok(())
    }

    fn insert_new(&mut self, file: &str, rule: Rule) -> Result<()> {
        check_shape(&rule)?;
        if self.rules.contains_key(&rule.id) {
            return Err(Error::Duplicate {
                file: file.to_owned(),
                id: rule.id,
            });
        }
        self.rules.insert(rule.id.clone(), rule);
        Ok(())
    }

    /// Every rule, enabled or not, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Rule> {
        self.rules.values()
    }

    /// The enabled rules, in id order.
    pub fn enabled(&self) -> impl Iterator<Item = &Rule> {
        self.rules.values().filter(|r| r.enabled)
    }

    /// The rule with this id.
    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.get(id)
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

fn parse_file(name: &str, text: &str) -> Result<Vec<Rule>> {
    let file: RuleFile = toml::from_str(text).map_err(|e| Error::Parse {
        file: name.to_owned(),
        message: e.to_string(),
    })?;
    Ok(file.rule)
}

fn check_shape(rule: &Rule) -> Result<()> {
    let invalid = |message: &str| Error::InvalidRule {
        rule: rule.id.clone(),
        message: message.to_owned(),
    };
    if rule.id.trim().is_empty() {
        return Err(invalid("empty id"));
    }
    if rule.title.trim().is_empty() {
        return Err(invalid("empty title"));
    }
    if rule.rationale.trim().len() < 40 {
        return Err(invalid(
            "rationale must say why the threat matters (40 characters at least)",
        ));
    }
    if rule.mitigations.is_empty() || rule.mitigations.iter().any(|m| m.trim().is_empty()) {
        return Err(invalid("at least one non-empty mitigation is required"));
    }
    if rule.applies_to.is_empty() {
        return Err(invalid("applies_to is empty"));
    }
    let flow_only = !rule.when.from_components.is_empty()
        || !rule.when.to_components.is_empty()
        || !rule.when.from_zones.is_empty()
        || !rule.when.interactions.is_empty()
        || rule.when.crosses_boundary.is_some();
    if flow_only && rule.applies_to.iter().any(|k| *k != ElementKind::Flow) {
        return Err(invalid(
            "flow conditions on a rule that also applies to nodes",
        ));
    }
    Ok(())
}
