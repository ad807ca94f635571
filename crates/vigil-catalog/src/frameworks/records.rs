//! The records of the framework reference files, with only the fields Vigil uses: ids, names
//! and the relations between ids. The files carry more (statements, platforms, likelihoods);
//! serde skips it.

use serde::Deserialize;

/// How CWE allows an entry to be used as the root cause of a finding (its mapping notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum CweMapping {
    /// Fine to map to.
    Allowed,
    /// Fine to map to after checking that no more precise child fits.
    #[serde(rename = "Allowed-with-Review")]
    AllowedWithReview,
    /// Too abstract or misused; map to a child instead.
    Discouraged,
    /// Never map to (categories, views, deprecated entries).
    Prohibited,
}

impl CweMapping {
    /// Whether a finding may cite an entry with this usage.
    pub fn is_citable(self) -> bool {
        matches!(self, CweMapping::Allowed | CweMapping::AllowedWithReview)
    }

    /// The usage as CWE spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            CweMapping::Allowed => "Allowed",
            CweMapping::AllowedWithReview => "Allowed-with-Review",
            CweMapping::Discouraged => "Discouraged",
            CweMapping::Prohibited => "Prohibited",
        }
    }
}

/// A CWE weakness (Pillar, Class, Base, Variant or Compound).
#[derive(Debug, Clone, Deserialize)]
pub struct Weakness {
    /// Numeric id (`89`).
    pub id: u32,
    /// CWE name.
    pub name: String,
    /// Abstraction level (`Base`, `Class`, ...).
    pub abstraction: String,
    /// Entry status (`Stable`, `Draft`, `Incomplete`, `Deprecated`).
    pub status: String,
    /// Whether findings may map to it.
    pub mapping: CweMapping,
    /// Parents in the research view (1000).
    pub parents: Vec<u32>,
    /// Related CAPEC attack patterns.
    pub capec: Vec<u32>,
}

/// A CWE category or view: a grouping of entries, not a root cause.
#[derive(Debug, Clone, Deserialize)]
pub struct CweGrouping {
    /// Numeric id (`1345`).
    pub id: u32,
    /// CWE name.
    pub name: String,
    /// Whether findings may map to it (almost always `Prohibited`).
    pub mapping: CweMapping,
    /// Member entries.
    pub members: Vec<u32>,
}

/// A current CAPEC attack pattern.
#[derive(Debug, Clone, Deserialize)]
pub struct AttackPattern {
    /// Numeric id (`66`).
    pub id: u32,
    /// CAPEC name.
    pub name: String,
    /// Parent patterns.
    pub parents: Vec<u32>,
    /// Related CWE weaknesses.
    pub cwe: Vec<u32>,
    /// ATT&CK techniques CAPEC maps the pattern to.
    pub attack: Vec<String>,
}

/// A retired (deprecated or obsolete) CAPEC pattern, kept so old ids are recognised.
#[derive(Debug, Clone, Deserialize)]
pub struct RetiredPattern {
    /// Numeric id.
    pub id: u32,
    /// CAPEC name.
    pub name: String,
    /// `Deprecated` or `Obsolete`.
    pub status: String,
}

/// An ATT&CK Enterprise tactic.
#[derive(Debug, Clone, Deserialize)]
pub struct Tactic {
    /// Id (`TA0001`).
    pub id: String,
    /// Kill-chain phase name (`initial-access`).
    pub shortname: String,
    /// Display name.
    pub name: String,
}

/// A current ATT&CK Enterprise technique or sub-technique.
#[derive(Debug, Clone, Deserialize)]
pub struct Technique {
    /// Id (`T1190`, `T1552.001`).
    pub id: String,
    /// Name (a sub-technique's name comes without its parent's).
    pub name: String,
    /// Tactic ids.
    pub tactics: Vec<String>,
    /// Parent technique of a sub-technique.
    pub subtechnique_of: Option<String>,
}

/// A revoked or deprecated ATT&CK technique, with the current technique that replaced it.
#[derive(Debug, Clone, Deserialize)]
pub struct RetiredTechnique {
    /// Id.
    pub id: String,
    /// Name when it was current.
    pub name: String,
    /// `revoked` or `deprecated`.
    pub status: String,
    /// Current successor, if ATT&CK names one.
    pub replaced_by: Option<String>,
}

/// An ATT&CK mitigation.
#[derive(Debug, Clone, Deserialize)]
pub struct AttackMitigation {
    /// Id (`M1032`).
    pub id: String,
    /// Name.
    pub name: String,
    /// Techniques it mitigates.
    pub techniques: Vec<String>,
}

/// One OWASP Top 10 entry.
#[derive(Debug, Clone, Deserialize)]
pub struct OwaspEntry {
    /// Id (`A03:2021`).
    pub id: String,
    /// Rank 1..=10.
    pub rank: u8,
    /// Name.
    pub name: String,
    /// Mapped CWE ids (weaknesses and a few categories).
    pub cwe: Vec<u32>,
    /// The CWE category for the entry (2021 only).
    #[serde(default)]
    pub cwe_category: Option<u32>,
}

/// A NIST CSF 2.0 function.
#[derive(Debug, Clone, Deserialize)]
pub struct CsfFunction {
    /// Id (`PR`).
    pub id: String,
    /// Name.
    pub name: String,
}

/// A NIST CSF 2.0 category.
#[derive(Debug, Clone, Deserialize)]
pub struct CsfCategory {
    /// Id (`PR.AA`).
    pub id: String,
    /// Function id.
    pub function: String,
    /// Name.
    pub name: String,
}

/// A current NIST CSF 2.0 subcategory.
#[derive(Debug, Clone, Deserialize)]
pub struct CsfSubcategory {
    /// Id (`PR.AA-01`).
    pub id: String,
    /// Category id.
    pub category: String,
    /// Function id.
    pub function: String,
    /// NIST's outcome statement.
    pub statement: String,
}

/// A CSF 1.1 id that CSF 2.0 withdrew.
#[derive(Debug, Clone, Deserialize)]
pub struct CsfWithdrawn {
    /// Id (`PR.AC-01`).
    pub id: String,
}

/// A PCI DSS v4 goal.
#[derive(Debug, Clone, Deserialize)]
pub struct PciGoal {
    /// Goal number.
    pub id: u32,
    /// Own-word title.
    pub title: String,
}

/// A PCI DSS v4 requirement (`"8"`) or sub-requirement (`"8.4"`).
#[derive(Debug, Clone, Deserialize)]
pub struct PciRequirement {
    /// Id.
    pub id: String,
    /// Own-word title.
    pub title: String,
    /// Goal of a requirement.
    #[serde(default)]
    pub goal: Option<u32>,
    /// Parent requirement of a sub-requirement.
    #[serde(default)]
    pub requirement: Option<String>,
}

/// A HIPAA Security Rule section (`164.312`).
#[derive(Debug, Clone, Deserialize)]
pub struct HipaaSection {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
}

/// A HIPAA Security Rule standard or implementation specification.
#[derive(Debug, Clone, Deserialize)]
pub struct HipaaItem {
    /// CFR paragraph (`164.312(a)(2)(iv)`).
    pub id: String,
    /// Section id.
    pub section: String,
    /// `standard` or `implementation_specification`.
    pub kind: String,
    /// The standard of an implementation specification.
    pub parent: Option<String>,
    /// Short heading.
    pub name: String,
    /// `R` (required), `A` (addressable) or none.
    pub required: Option<String>,
}

/// A SOC 2 criteria group (`CC6`).
#[derive(Debug, Clone, Deserialize)]
pub struct Soc2Group {
    /// Id.
    pub id: String,
    /// Own-word title.
    pub title: String,
}

/// A SOC 2 criterion (`CC6.1`).
#[derive(Debug, Clone, Deserialize)]
pub struct Soc2Criterion {
    /// Id.
    pub id: String,
    /// Group id.
    pub group: String,
    /// Own-word title.
    pub title: String,
}

/// A STRIDE or LINDDUN category.
#[derive(Debug, Clone, Deserialize)]
pub struct MethodCategory {
    /// Short id (`S`, `Dd`).
    pub id: String,
    /// snake_case key (`spoofing`, `data_disclosure`).
    pub key: String,
    /// Name.
    pub name: String,
}

/// Which categories of a method apply to one kind of diagram element.
#[derive(Debug, Clone, Deserialize)]
pub struct ElementApplicability {
    /// Element kind (`process`, `data_store`, `external_entity`, `data_flow`).
    pub id: String,
    /// Category ids that apply.
    pub applies: Vec<String>,
    /// Category ids that apply only in some cases (STRIDE: repudiation on stores of logs).
    #[serde(default)]
    pub conditional: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct CweFile {
    pub weaknesses: Vec<Weakness>,
    pub categories: Vec<CweGrouping>,
    pub views: Vec<CweGrouping>,
}

#[derive(Debug, Deserialize)]
pub(super) struct CapecFile {
    pub attack_patterns: Vec<AttackPattern>,
    pub retired: Vec<RetiredPattern>,
}

#[derive(Debug, Deserialize)]
pub(super) struct AttackFile {
    pub tactics: Vec<Tactic>,
    pub techniques: Vec<Technique>,
    pub retired: Vec<RetiredTechnique>,
    pub mitigations: Vec<AttackMitigation>,
}

#[derive(Debug, Deserialize)]
pub(super) struct OwaspFile {
    #[serde(rename = "2021")]
    pub y2021: Vec<OwaspEntry>,
    #[serde(rename = "2025")]
    pub y2025: Vec<OwaspEntry>,
}

#[derive(Debug, Deserialize)]
pub(super) struct CsfFile {
    pub functions: Vec<CsfFunction>,
    pub categories: Vec<CsfCategory>,
    pub subcategories: Vec<CsfSubcategory>,
    pub withdrawn: Vec<CsfWithdrawn>,
}

#[derive(Debug, Deserialize)]
pub(super) struct PciFile {
    pub goals: Vec<PciGoal>,
    pub requirements: Vec<PciRequirement>,
    pub sub_requirements: Vec<PciRequirement>,
}

#[derive(Debug, Deserialize)]
pub(super) struct HipaaFile {
    pub sections: Vec<HipaaSection>,
    pub items: Vec<HipaaItem>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Soc2File {
    pub groups: Vec<Soc2Group>,
    pub criteria: Vec<Soc2Criterion>,
}

#[derive(Debug, Deserialize)]
pub(super) struct MethodFile {
    pub categories: Vec<MethodCategory>,
    pub elements: Vec<ElementApplicability>,
}
