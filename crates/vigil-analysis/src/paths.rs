//! Paths (in progress).
use vigil_catalog::Lexicon;
use vigil_core::{AttackPath, Dfd, Finding};
/// Finds.
pub fn find(_d: &Dfd, _f: &[Finding], _l: &Lexicon, _n: usize) -> Vec<AttackPath> {
    Vec::new()
}
