//! Model (in progress).
use crate::extract::Facts;
use vigil_catalog::Lexicon;
use vigil_core::Dfd;
/// Builds.
pub fn build(_f: &Facts, _l: &Lexicon) -> Dfd {
    Dfd::default()
}
