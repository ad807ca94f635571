//! Findings: a threat raised against one element or flow, with the evidence that caused it, its
//! framework mappings and an explained score.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::dfd::ElementKind;
use crate::error::Error;

/// STRIDE and LINDDUN threat categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreatCategory {
    /// STRIDE S.
    Spoofing,
    /// STRIDE T.
    Tampering,
    /// STRIDE R.
    Repudiation,
    /// STRIDE I.
    InformationDisclosure,
    /// STRIDE D.
    DenialOfService,
    /// STRIDE E.
    ElevationOfPrivilege,
    /// LINDDUN L.
    Linking,
    /// LINDDUN I.
    Identifying,
    /// LINDDUN N (non-repudiation as a privacy threat).
    NonRepudiationPrivacy,
    /// LINDDUN D.
    Detecting,
    /// LINDDUN D (data disclosure).
    DataDisclosure,
    /// LINDDUN U.
    Unawareness,
    /// LINDDUN N (non-compliance).
    NonCompliance,
}

impl ThreatCategory {
    /// Every category, STRIDE first.
    pub const ALL: [ThreatCategory; 13] = [
        ThreatCategory::Spoofing,
        ThreatCategory::Tampering,
        ThreatCategory::Repudiation,
        ThreatCategory::InformationDisclosure,
        ThreatCategory::DenialOfService,
        ThreatCategory::ElevationOfPrivilege,
        ThreatCategory::Linking,
        ThreatCategory::Identifying,
        ThreatCategory::NonRepudiationPrivacy,
        ThreatCategory::Detecting,
        ThreatCategory::DataDisclosure,
        ThreatCategory::Unawareness,
        ThreatCategory::NonCompliance,
    ];

    /// Stable snake_case name, as in the evaluation format.
    pub fn as_str(self) -> &'static str {
        match self {
            ThreatCategory::Spoofing => "spoofing",
            ThreatCategory::Tampering => "tampering",
            ThreatCategory::Repudiation => "repudiation",
            ThreatCategory::InformationDisclosure => "information_disclosure",
            ThreatCategory::DenialOfService => "denial_of_service",
            ThreatCategory::ElevationOfPrivilege => "elevation_of_privilege",
            ThreatCategory::Linking => "linking",
            ThreatCategory::Identifying => "identifying",
            ThreatCategory::NonRepudiationPrivacy => "non_repudiation_privacy",
            ThreatCategory::Detecting => "detecting",
            ThreatCategory::DataDisclosure => "data_disclosure",
            ThreatCategory::Unawareness => "unawareness",
            ThreatCategory::NonCompliance => "non_compliance",
        }
    }

    /// A human label.
    pub fn label(self) -> &'static str {
        match self {
            ThreatCategory::Spoofing => "Spoofing",
            ThreatCategory::Tampering => "Tampering",
            ThreatCategory::Repudiation => "Repudiation",
            ThreatCategory::InformationDisclosure => "Information disclosure",
            ThreatCategory::DenialOfService => "Denial of service",
            ThreatCategory::ElevationOfPrivilege => "Elevation of privilege",
            ThreatCategory::Linking => "Linking",
            ThreatCategory::Identifying => "Identifying",
            ThreatCategory::NonRepudiationPrivacy => "Non-repudiation",
            ThreatCategory::Detecting => "Detecting",
            ThreatCategory::DataDisclosure => "Data disclosure",
            ThreatCategory::Unawareness => "Unawareness",
            ThreatCategory::NonCompliance => "Non-compliance",
        }
    }

    /// Whether this is a LINDDUN (privacy) category.
    pub fn is_privacy(self) -> bool {
        !matches!(
            self,
            ThreatCategory::Spoofing
                | ThreatCategory::Tampering
                | ThreatCategory::Repudiation
                | ThreatCategory::InformationDisclosure
                | ThreatCategory::DenialOfService
                | ThreatCategory::ElevationOfPrivilege
        )
    }
}

impl fmt::Display for ThreatCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ThreatCategory {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        ThreatCategory::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| Error::UnknownCategory(s.to_owned()))
    }
}

/// Severity band of a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Informational.
    Info,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            other => return Err(Error::UnknownSeverity(other.to_owned())),
        })
    }
}

/// A quote from the artifact with its byte range in the original file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The quoted text, as normalized.
    pub text: String,
    /// Start byte in the original file.
    pub start: usize,
    /// End byte (exclusive) in the original file.
    pub end: usize,
    /// Heading path of the section it sits in, joined with " > ".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub section: String,
}

/// One named input to a score, with its value and why it has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Factor {
    /// Factor name (`attack_complexity`, `data_class`, `due_date`, ...).
    pub name: String,
    /// Value in 0..=1.
    pub value: f64,
    /// Weight within its group.
    pub weight: f64,
    /// Why it has this value, in words.
    pub reason: String,
}

/// A weighted group of factors: exploitability, blast radius or urgency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactorGroup {
    /// Weighted mean of the factors, 0..=1.
    pub value: f64,
    /// The factors.
    pub factors: Vec<Factor>,
}

/// A finding's risk score on 0..=10 and its explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Score, one decimal.
    pub value: f64,
    /// Band from the configured thresholds.
    pub severity: Severity,
    /// How easy the threat is to realise.
    pub exploitability: FactorGroup,
    /// How much is lost if it is.
    pub blast_radius: FactorGroup,
    /// How soon it matters.
    pub urgency: FactorGroup,
    /// Adjustments applied after the formula (a stated control, an organisation's feedback).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adjustments: Vec<String>,
    /// The formula, in words.
    pub formula: String,
    /// Days allowed to fix a finding of this severity, from the configured SLAs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla_days: Option<u32>,
}

/// Framework references for a finding, all validated against the catalogue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameworkRefs {
    /// OWASP Top 10 2021 ids (`A01:2021`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owasp_2021: Vec<String>,
    /// OWASP Top 10 2025 ids (`A01:2025`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owasp_2025: Vec<String>,
    /// NIST CSF 2.0 subcategories (`PR.AA-01`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nist_csf: Vec<String>,
    /// PCI DSS v4 requirements (`3.5`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pci_dss: Vec<String>,
    /// HIPAA Security Rule sections (`164.312(a)(1)`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hipaa: Vec<String>,
    /// SOC 2 criteria (`CC6.1`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub soc2: Vec<String>,
}

/// Where a finding came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingOrigin {
    /// A catalogue rule matched the diagram.
    Rule,
    /// A language model proposed it and it was grounded in the artifact.
    Model,
}

/// A threat raised against one element or flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable fingerprint of rule, element identity and evidence.
    pub id: String,
    /// Rule id from the catalogue.
    pub rule: String,
    /// Short title.
    pub title: String,
    /// STRIDE or LINDDUN category.
    pub category: ThreatCategory,
    /// Node or flow id in the diagram.
    pub element: String,
    /// Node name, or "Source -> Target" for a flow.
    pub element_name: String,
    /// Kind of the element.
    pub element_kind: ElementKind,
    /// Why it matters here.
    pub rationale: String,
    /// What to do about it.
    pub mitigations: Vec<String>,
    /// CWE ids.
    pub cwe: Vec<u32>,
    /// CAPEC ids.
    pub capec: Vec<u32>,
    /// ATT&CK technique ids.
    pub attack: Vec<String>,
    /// Other framework references.
    pub frameworks: FrameworkRefs,
    /// The explained score.
    pub score: Score,
    /// Quotes from the artifact that caused it.
    pub evidence: Vec<Evidence>,
    /// Rule or model.
    pub origin: FindingOrigin,
}
