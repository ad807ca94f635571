//! A review: the analysis of one artifact version, with its diagram, ranked findings and the
//! attack paths through them.

use serde::{Deserialize, Serialize};

use crate::artifact::{ArtifactMeta, SourceFormat};
use crate::dfd::Dfd;
use crate::finding::Finding;

/// One hop of an attack path: an element and the findings that let an attacker through it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttackStep {
    /// Node id.
    pub element: String,
    /// Node name.
    pub element_name: String,
    /// Finding ids exploited at this step.
    pub findings: Vec<String>,
}

/// A chain from an entry point to a sensitive store through findings on the way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttackPath {
    /// Path id (`p1`, ...).
    pub id: String,
    /// The steps, entry point first.
    pub steps: Vec<AttackStep>,
    /// Path score, 0..=10: the weakest link's exploitability times the target's value.
    pub score: f64,
    /// A one-line story of the path.
    pub summary: String,
}

/// The analysis of one artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    /// Artifact id.
    pub artifact: String,
    /// Artifact title.
    pub title: String,
    /// Format it was read from.
    pub format: SourceFormat,
    /// Path it was read from.
    pub origin: String,
    /// Tool metadata.
    pub meta: ArtifactMeta,
    /// Content hash of the normalized text (sha256, hex).
    pub content_hash: String,
    /// Data-flow diagram.
    pub dfd: Dfd,
    /// Findings, highest score first.
    pub findings: Vec<Finding>,
    /// Top attack paths, highest score first.
    pub attack_paths: Vec<AttackPath>,
}
