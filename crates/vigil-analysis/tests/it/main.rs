//! Integration tests of the analysis pipeline, one module per area.

mod assist;
mod eval;
mod normalize;
mod pipeline;
mod report;
