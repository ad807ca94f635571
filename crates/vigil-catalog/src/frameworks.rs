//! Framework tables (CWE, CAPEC, ATT&CK Enterprise, OWASP Top 10 2021/2025, NIST CSF 2.0,
//! PCI DSS v4, the HIPAA Security Rule, SOC 2, STRIDE and LINDDUN) loaded from the JSON
//! reference files in `data/frameworks/`, validated on load, and the check that a rule cites
//! only current ids. The notices those files require sit beside them in `NOTICE`.

mod records;
mod validate;

pub use records::{
    AttackMitigation, AttackPattern, CsfCategory, CsfFunction, CsfSubcategory, CweGrouping,
    CweMapping, ElementApplicability, HipaaItem, HipaaSection, MethodCategory, OwaspEntry, PciGoal,
    PciRequirement, RetiredPattern, RetiredTechnique, Soc2Criterion, Soc2Group, Tactic, Technique,
    Weakness,
};

use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use vigil_core::{ElementKind, ThreatCategory};

use crate::error::{Error, Result};
use crate::rules::Rule;

const CWE: &str = include_str!("../data/frameworks/cwe.json");
const CAPEC: &str = include_str!("../data/frameworks/capec.json");
const ATTACK: &str = include_str!("../data/frameworks/attack.json");
const OWASP: &str = include_str!("../data/frameworks/owasp_top10.json");
const NIST_CSF: &str = include_str!("../data/frameworks/nist_csf_2.json");
const PCI_DSS: &str = include_str!("../data/frameworks/pci_dss_4.json");
const HIPAA: &str = include_str!("../data/frameworks/hipaa_security.json");
const SOC2: &str = include_str!("../data/frameworks/soc2_tsc.json");
const STRIDE: &str = include_str!("../data/frameworks/stride.json");
const LINDDUN: &str = include_str!("../data/frameworks/linddun.json");

/// The text of each reference file.
#[derive(Debug, Clone, Copy)]
struct Sources<'a> {
    cwe: &'a str,
    capec: &'a str,
    attack: &'a str,
    owasp: &'a str,
    nist_csf: &'a str,
    pci_dss: &'a str,
    hipaa: &'a str,
    soc2: &'a str,
    stride: &'a str,
    linddun: &'a str,
}

impl Sources<'static> {
    const EMBEDDED: Sources<'static> = Sources {
        cwe: CWE,
        capec: CAPEC,
        attack: ATTACK,
        owasp: OWASP,
        nist_csf: NIST_CSF,
        pci_dss: PCI_DSS,
        hipaa: HIPAA,
        soc2: SOC2,
        stride: STRIDE,
        linddun: LINDDUN,
    };
}

/// The frameworks a rule or finding can cite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameworkKind {
    /// CWE weaknesses.
    Cwe,
    /// CAPEC attack patterns.
    Capec,
    /// ATT&CK Enterprise techniques.
    Attack,
    /// OWASP Top 10 2021.
    Owasp2021,
    /// OWASP Top 10 2025.
    Owasp2025,
    /// NIST CSF 2.0 subcategories.
    NistCsf,
    /// PCI DSS v4 requirements and sub-requirements.
    PciDss,
    /// HIPAA Security Rule standards and implementation specifications.
    Hipaa,
    /// SOC 2 Trust Services Criteria.
    Soc2,
}

impl FrameworkKind {
    /// The kind as errors and rule files name it (`cwe`, `owasp_2021`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            FrameworkKind::Cwe => "cwe",
            FrameworkKind::Capec => "capec",
            FrameworkKind::Attack => "attack",
            FrameworkKind::Owasp2021 => "owasp_2021",
            FrameworkKind::Owasp2025 => "owasp_2025",
            FrameworkKind::NistCsf => "nist_csf",
            FrameworkKind::PciDss => "pci_dss",
            FrameworkKind::Hipaa => "hipaa",
            FrameworkKind::Soc2 => "soc2",
        }
    }
}

impl fmt::Display for FrameworkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an ATT&CK id is in the tables.
#[derive(Debug, Clone, Copy)]
pub enum AttackStatus<'a> {
    /// A current technique.
    Current(&'a Technique),
    /// A revoked or deprecated technique, with its current successor if it has one.
    Retired {
        /// The retired entry.
        retired: &'a RetiredTechnique,
        /// The current technique it resolves to.
        replaced_by: Option<&'a Technique>,
    },
}

/// A reference in the reference files to an id that is known but retired (or outside the
/// ATT&CK matrix Vigil carries). Upstream data, kept as is and reported by `vigil doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetiredReference {
    /// Who cites it (`CWE-285`, `CAPEC-641`).
    pub owner: String,
    /// What it cites (`CAPEC-5`, `T1574.002`).
    pub id: String,
    /// Why it is not current.
    pub note: String,
}

/// STRIDE or LINDDUN: its categories and which apply to each kind of element.
#[derive(Debug, Clone)]
pub struct MethodTable {
    /// Categories in the method's order.
    pub categories: Vec<MethodCategory>,
    /// Applicability per element kind.
    pub elements: Vec<ElementApplicability>,
}

impl MethodTable {
    /// Whether category `id` applies (always or conditionally) to elements of `kind`.
    pub fn applies(&self, kind: ElementKind, id: &str) -> bool {
        let key = element_key(kind);
        self.elements
            .iter()
            .filter(|e| e.id == key)
            .any(|e| e.applies.iter().chain(&e.conditional).any(|c| c == id))
    }
}

/// The framework tables, indexed by id.
#[derive(Debug, Clone)]
pub struct Frameworks {
    cwe: BTreeMap<u32, Weakness>,
    cwe_groupings: BTreeMap<u32, CweGrouping>,
    capec: BTreeMap<u32, AttackPattern>,
    capec_retired: BTreeMap<u32, RetiredPattern>,
    tactics: BTreeMap<String, Tactic>,
    techniques: BTreeMap<String, Technique>,
    techniques_retired: BTreeMap<String, RetiredTechnique>,
    attack_mitigations: BTreeMap<String, AttackMitigation>,
    owasp_2021: BTreeMap<String, OwaspEntry>,
    owasp_2025: BTreeMap<String, OwaspEntry>,
    csf_functions: BTreeMap<String, CsfFunction>,
    csf_categories: BTreeMap<String, CsfCategory>,
    csf_subcategories: BTreeMap<String, CsfSubcategory>,
    csf_withdrawn: BTreeSet<String>,
    pci_goals: BTreeMap<u32, PciGoal>,
    pci: BTreeMap<String, PciRequirement>,
    hipaa_sections: BTreeMap<String, HipaaSection>,
    hipaa: BTreeMap<String, HipaaItem>,
    soc2_groups: BTreeMap<String, Soc2Group>,
    soc2: BTreeMap<String, Soc2Criterion>,
    stride: MethodTable,
    linddun: MethodTable,
    retired_references: Vec<RetiredReference>,
}

impl Frameworks {
    /// The tables compiled into the binary, validated.
    pub fn embedded() -> Result<Frameworks> {
        Frameworks::from_sources(&Sources::EMBEDDED)
    }

    fn from_sources(s: &Sources<'_>) -> Result<Frameworks> {
        let files = validate::Files {
            cwe: parse("frameworks/cwe.json", s.cwe)?,
            capec: parse("frameworks/capec.json", s.capec)?,
            attack: parse("frameworks/attack.json", s.attack)?,
            owasp: parse("frameworks/owasp_top10.json", s.owasp)?,
            csf: parse("frameworks/nist_csf_2.json", s.nist_csf)?,
            pci: parse("frameworks/pci_dss_4.json", s.pci_dss)?,
            hipaa: parse("frameworks/hipaa_security.json", s.hipaa)?,
            soc2: parse("frameworks/soc2_tsc.json", s.soc2)?,
            stride: parse("frameworks/stride.json", s.stride)?,
            linddun: parse("frameworks/linddun.json", s.linddun)?,
        };

        let mut frameworks = validate::index(files)?;
        frameworks.retired_references = validate::references(&frameworks)?;
        Ok(frameworks)
    }

    /// A CWE weakness by id (not a category or view).
    pub fn cwe(&self, id: u32) -> Option<&Weakness> {
        self.cwe.get(&id)
    }

    /// A CWE category or view by id.
    pub fn cwe_grouping(&self, id: u32) -> Option<&CweGrouping> {
        self.cwe_groupings.get(&id)
    }

    /// A current CAPEC attack pattern.
    pub fn capec(&self, id: u32) -> Option<&AttackPattern> {
        self.capec.get(&id)
    }

    /// A retired CAPEC pattern.
    pub fn capec_retired(&self, id: u32) -> Option<&RetiredPattern> {
        self.capec_retired.get(&id)
    }

    /// A current ATT&CK Enterprise technique or sub-technique.
    pub fn attack(&self, id: &str) -> Option<&Technique> {
        self.techniques.get(id)
    }

    /// What an ATT&CK id is: current, or retired with the technique it resolves to.
    pub fn attack_status(&self, id: &str) -> Option<AttackStatus<'_>> {
        if let Some(technique) = self.techniques.get(id) {
            return Some(AttackStatus::Current(technique));
        }
        let retired = self.techniques_retired.get(id)?;
        let replaced_by = retired
            .replaced_by
            .as_deref()
            .and_then(|r| self.techniques.get(r));
        Some(AttackStatus::Retired {
            retired,
            replaced_by,
        })
    }

    /// The current technique an ATT&CK id stands for, following a retired id to its successor.
    pub fn attack_resolved(&self, id: &str) -> Option<&Technique> {
        match self.attack_status(id)? {
            AttackStatus::Current(technique) => Some(technique),
            AttackStatus::Retired { replaced_by, .. } => replaced_by,
        }
    }

    /// An ATT&CK tactic.
    pub fn tactic(&self, id: &str) -> Option<&Tactic> {
        self.tactics.get(id)
    }

    /// The ATT&CK mitigations that address a technique.
    pub fn attack_mitigations(&self, technique: &str) -> impl Iterator<Item = &AttackMitigation> {
        let technique = technique.to_owned();
        self.attack_mitigations
            .values()
            .filter(move |m| m.techniques.contains(&technique))
    }

    /// An OWASP Top 10 2021 entry (`A03:2021`).
    pub fn owasp_2021(&self, id: &str) -> Option<&OwaspEntry> {
        self.owasp_2021.get(id)
    }

    /// An OWASP Top 10 2025 entry (`A05:2025`).
    pub fn owasp_2025(&self, id: &str) -> Option<&OwaspEntry> {
        self.owasp_2025.get(id)
    }

    /// The OWASP Top 10 entries of an edition (2021 or 2025) that list a CWE.
    pub fn owasp_for_cwe(&self, edition: u16, cwe: u32) -> Vec<&OwaspEntry> {
        let table = match edition {
            2021 => &self.owasp_2021,
            2025 => &self.owasp_2025,
            _ => return Vec::new(),
        };
        table.values().filter(|e| e.cwe.contains(&cwe)).collect()
    }

    /// A current NIST CSF 2.0 subcategory (`PR.AA-01`); withdrawn CSF 1.1 ids are not.
    pub fn nist_csf(&self, id: &str) -> Option<&CsfSubcategory> {
        self.csf_subcategories.get(id)
    }

    /// A NIST CSF 2.0 category (`PR.AA`).
    pub fn nist_csf_category(&self, id: &str) -> Option<&CsfCategory> {
        self.csf_categories.get(id)
    }

    /// Whether an id is a CSF 1.1 id that CSF 2.0 withdrew.
    pub fn nist_csf_withdrawn(&self, id: &str) -> bool {
        self.csf_withdrawn.contains(id)
    }

    /// A PCI DSS v4 requirement (`"8"`) or sub-requirement (`"8.4"`).
    pub fn pci_dss(&self, id: &str) -> Option<&PciRequirement> {
        self.pci.get(id)
    }

    /// A HIPAA Security Rule standard or implementation specification (`164.312(b)`).
    pub fn hipaa(&self, id: &str) -> Option<&HipaaItem> {
        self.hipaa.get(id)
    }

    /// A SOC 2 criterion (`CC6.1`).
    pub fn soc2(&self, id: &str) -> Option<&Soc2Criterion> {
        self.soc2.get(id)
    }

    /// The STRIDE table.
    pub fn stride(&self) -> &MethodTable {
        &self.stride
    }

    /// The LINDDUN table.
    pub fn linddun(&self) -> &MethodTable {
        &self.linddun
    }

    /// References in the reference files to retired or out-of-matrix ids, known and tolerated.
    pub fn retired_references(&self) -> &[RetiredReference] {
        &self.retired_references
    }

    /// The display name of a current id (`CWE-89`, `89`, `T1190`, `PR.AA-01`, ...).
    pub fn name(&self, kind: FrameworkKind, id: &str) -> Option<&str> {
        let number = || id.rsplit('-').next().and_then(|n| n.parse::<u32>().ok());
        match kind {
            FrameworkKind::Cwe => self.cwe(number()?).map(|w| w.name.as_str()),
            FrameworkKind::Capec => self.capec(number()?).map(|p| p.name.as_str()),
            FrameworkKind::Attack => self.attack(id).map(|t| t.name.as_str()),
            FrameworkKind::Owasp2021 => self.owasp_2021(id).map(|e| e.name.as_str()),
            FrameworkKind::Owasp2025 => self.owasp_2025(id).map(|e| e.name.as_str()),
            FrameworkKind::NistCsf => self.nist_csf(id).map(|s| s.statement.as_str()),
            FrameworkKind::PciDss => self.pci_dss(id).map(|r| r.title.as_str()),
            FrameworkKind::Hipaa => self.hipaa(id).map(|i| i.name.as_str()),
            FrameworkKind::Soc2 => self.soc2(id).map(|c| c.title.as_str()),
        }
    }

    /// `CWE-89: Improper Neutralization ...`, `T1552.001: Credentials In Files`, ...; `None` for
    /// an id that is not current.
    pub fn display(&self, kind: FrameworkKind, id: &str) -> Option<String> {
        let name = self.name(kind, id)?;
        let label = match kind {
            FrameworkKind::Cwe if !id.starts_with("CWE-") => format!("CWE-{id}"),
            FrameworkKind::Capec if !id.starts_with("CAPEC-") => format!("CAPEC-{id}"),
            FrameworkKind::PciDss => format!("PCI DSS {id}"),
            FrameworkKind::Hipaa => format!("45 CFR {id}"),
            FrameworkKind::Soc2 => format!("SOC 2 {id}"),
            _ => id.to_owned(),
        };
        Some(format!("{label}: {name}"))
    }

    /// Checks every framework id a rule cites is current and citable, and that its category
    /// applies to its element kinds under STRIDE per element.
    pub fn check_rule(&self, rule: &Rule) -> Result<()> {
        let owner = format!("rule {}", rule.id);
        for &id in &rule.cwe {
            self.check_cwe(&owner, id)?;
        }
        for &id in &rule.capec {
            self.check_capec(&owner, id)?;
        }
        for id in &rule.attack {
            self.check_attack(&owner, id)?;
        }
        self.check_simple(&owner, FrameworkKind::Owasp2021, &rule.owasp_2021, |id| {
            self.owasp_2021(id).is_some()
        })?;
        self.check_simple(&owner, FrameworkKind::Owasp2025, &rule.owasp_2025, |id| {
            self.owasp_2025(id).is_some()
        })?;
        for id in &rule.nist_csf {
            self.check_csf(&owner, id)?;
        }
        self.check_simple(&owner, FrameworkKind::PciDss, &rule.pci_dss, |id| {
            self.pci_dss(id).is_some()
        })?;
        self.check_simple(&owner, FrameworkKind::Hipaa, &rule.hipaa, |id| {
            self.hipaa(id).is_some()
        })?;
        self.check_simple(&owner, FrameworkKind::Soc2, &rule.soc2, |id| {
            self.soc2(id).is_some()
        })?;
        self.check_applicability(rule)
    }

    fn check_cwe(&self, owner: &str, id: u32) -> Result<()> {
        let unknown = |hint: String| unknown(owner, FrameworkKind::Cwe, id, Some(hint));
        if let Some(grouping) = self.cwe_grouping(id) {
            let hint = format!(
                "CWE-{id} is a category or view ({}), not a weakness",
                grouping.name
            );
            return Err(unknown(hint));
        }
        let Some(weakness) = self.cwe(id) else {
            return Err(Error::UnknownId {
                owner: owner.to_owned(),
                kind: "cwe",
                id: id.to_string(),
                hint: None,
            });
        };
        if !weakness.mapping.is_citable() {
            let hint = format!(
                "CWE-{id} ({}) is {} for mapping; cite a more precise weakness",
                weakness.name,
                weakness.mapping.as_str()
            );
            return Err(unknown(hint));
        }
        Ok(())
    }

    fn check_capec(&self, owner: &str, id: u32) -> Result<()> {
        if self.capec(id).is_some() {
            return Ok(());
        }
        let hint = self
            .capec_retired(id)
            .map(|r| format!("CAPEC-{id} ({}) is retired ({})", r.name, r.status));
        Err(unknown(owner, FrameworkKind::Capec, id, hint))
    }

    fn check_attack(&self, owner: &str, id: &str) -> Result<()> {
        let hint = match self.attack_status(id) {
            Some(AttackStatus::Current(_)) => return Ok(()),
            Some(AttackStatus::Retired {
                retired,
                replaced_by,
            }) => Some(match replaced_by {
                Some(t) => format!(
                    "{id} ({}) is a {} ATT&CK technique; cite {} ({}) instead",
                    retired.name, retired.status, t.id, t.name
                ),
                None => format!(
                    "{id} ({}) is a {} ATT&CK technique with no successor",
                    retired.name, retired.status
                ),
            }),
            None => None,
        };
        Err(unknown(owner, FrameworkKind::Attack, id, hint))
    }

    fn check_csf(&self, owner: &str, id: &str) -> Result<()> {
        if self.nist_csf(id).is_some() {
            return Ok(());
        }
        let hint = if self.nist_csf_withdrawn(id) {
            Some(format!("{id} is a CSF 1.1 id withdrawn from CSF 2.0"))
        } else if self.nist_csf_category(id).is_some() {
            Some(format!(
                "{id} is a CSF category; cite one of its subcategories"
            ))
        } else {
            None
        };
        Err(unknown(owner, FrameworkKind::NistCsf, id, hint))
    }

    fn check_simple(
        &self,
        owner: &str,
        kind: FrameworkKind,
        ids: &[String],
        exists: impl Fn(&str) -> bool,
    ) -> Result<()> {
        match ids.iter().find(|id| !exists(id)) {
            Some(id) => Err(unknown(owner, kind, id, None)),
            None => Ok(()),
        }
    }

    fn check_applicability(&self, rule: &Rule) -> Result<()> {
        let Some(id) = stride_id(rule.category) else {
            return Ok(());
        };
        match rule
            .applies_to
            .iter()
            .find(|kind| !self.stride.applies(**kind, id))
        {
            Some(kind) => Err(Error::InvalidRule {
                rule: rule.id.clone(),
                message: format!(
                    "STRIDE per element does not apply {} to a {}",
                    rule.category.as_str(),
                    kind.as_str()
                ),
            }),
            None => Ok(()),
        }
    }
}

/// The STRIDE letter of a category, `None` for LINDDUN categories.
pub fn stride_id(category: ThreatCategory) -> Option<&'static str> {
    Some(match category {
        ThreatCategory::Spoofing => "S",
        ThreatCategory::Tampering => "T",
        ThreatCategory::Repudiation => "R",
        ThreatCategory::InformationDisclosure => "I",
        ThreatCategory::DenialOfService => "D",
        ThreatCategory::ElevationOfPrivilege => "E",
        _ => return None,
    })
}

/// The LINDDUN id of a category, `None` for STRIDE categories.
pub fn linddun_id(category: ThreatCategory) -> Option<&'static str> {
    Some(match category {
        ThreatCategory::Linking => "L",
        ThreatCategory::Identifying => "I",
        ThreatCategory::NonRepudiationPrivacy => "Nr",
        ThreatCategory::Detecting => "D",
        ThreatCategory::DataDisclosure => "Dd",
        ThreatCategory::Unawareness => "U",
        ThreatCategory::NonCompliance => "Nc",
        _ => return None,
    })
}

fn element_key(kind: ElementKind) -> &'static str {
    match kind {
        ElementKind::Flow => "data_flow",
        other => other.as_str(),
    }
}

fn unknown(owner: &str, kind: FrameworkKind, id: impl fmt::Display, hint: Option<String>) -> Error {
    Error::UnknownId {
        owner: owner.to_owned(),
        kind: kind.as_str(),
        id: id.to_string(),
        hint,
    }
}

fn parse<T: DeserializeOwned>(file: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::Parse {
        file: file.to_owned(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests;
