//! Threats (in progress).
use crate::extract::Facts;
use vigil_catalog::Catalog;
use vigil_core::{Dfd, Finding};
/// Generates.
pub fn generate(_d: &Dfd, _f: &Facts, _c: &Catalog) -> Vec<Finding> {
    Vec::new()
}
