//! Extraction (in progress).
use vigil_catalog::Lexicon;
use vigil_core::Artifact;

/// Compiled matchers.
#[derive(Debug, Clone)]
pub struct Matcher;
impl Matcher {
    /// Builds the matcher.
    pub fn new(_lexicon: &Lexicon) -> Matcher {
        Matcher
    }
}
/// Facts.
#[derive(Debug, Clone, Default)]
pub struct Facts;
/// Extracts.
pub fn extract(_a: &Artifact, _l: &Lexicon, _m: &Matcher) -> Facts {
    Facts
}
