//! Vigil's analysis pipeline. Every stage is deterministic and needs no model: the same bytes
//! give the same review.
//!
//! normalize (bytes -> artifacts with sections) -> extract (mentions of components, data,
//! controls, signals) -> model (data-flow diagram) -> threats (catalogue rules) -> score ->
//! paths -> report.

pub mod assist;
pub mod error;
pub mod eval;
pub mod extract;
pub mod model;
pub mod normalize;
pub mod paths;
pub mod pipeline;
pub mod report;
pub mod score;
pub mod text;
pub mod threats;

pub use error::{Error, Result};
pub use pipeline::Engine;
