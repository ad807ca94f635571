//! Vigil's domain types, shared by every layer: artifacts and their sections with offsets into
//! the original bytes, the data-flow diagram, findings with their scores, attack paths and the
//! review that bundles them. No I/O happens here.

pub mod artifact;
pub mod dfd;
pub mod error;
pub mod finding;
pub mod review;

pub use artifact::{Artifact, ArtifactMeta, OffsetMap, Section, Segment, SourceFormat};
pub use dfd::{DataFlow, Dfd, DfdNode, ElementKind, TrustBoundary, TrustZone};
pub use error::{Error, Result};
pub use finding::{
    Evidence, Factor, FactorGroup, Finding, FindingOrigin, FrameworkRefs, Score, Severity,
    ThreatCategory,
};
pub use review::{AttackPath, AttackStep, DroppedProposal, ModelContribution, Review};
