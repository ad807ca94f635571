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
    /// What language and embedding models added; absent when the analysis ran without them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<ModelContribution>,
}

/// What models added to a review, so a reader can tell the deterministic part from the rest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelContribution {
    /// The embeddings model that widened extraction, if one ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embeddings_model: Option<String>,
    /// The chat model that reviewed the diagram, if one ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_model: Option<String>,
    /// Data classes and risk signals recognised by meaning rather than by their words.
    pub facts_by_meaning: usize,
    /// Threats the chat model proposed.
    pub proposals: usize,
    /// Proposals kept as findings (their origin is `model`).
    pub proposals_kept: usize,
    /// Proposals dropped, with the reason for each.
    pub proposals_dropped: Vec<DroppedProposal>,
    /// A short summary for developers, written by the chat model from the findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Model steps that failed; the analysis went on without them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// A model's proposal that was not kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroppedProposal {
    /// Rule id as proposed.
    pub rule: String,
    /// Element id as proposed.
    pub element: String,
    /// Why it was dropped.
    pub reason: String,
}
