//! Vigil's knowledge, kept as data and validated when loaded: the framework tables (CWE, CAPEC,
//! ATT&CK, OWASP Top 10, NIST CSF 2.0, PCI DSS v4, HIPAA, SOC 2), the lexicons the extractor
//! matches (components, actors, data classes, controls, risk signals, interactions) and the
//! threat rule catalogue, with customer overrides from `rules.d`.

pub mod error;
pub mod frameworks;
pub mod lexicon;
pub mod rules;

pub use error::{Error, Result};
pub use frameworks::Frameworks;
pub use lexicon::Lexicon;
pub use rules::{Rule, RuleConditions, RuleSet};

use std::path::Path;

/// Everything the analysis needs to know, loaded and cross-checked.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Framework tables.
    pub frameworks: Frameworks,
    /// Extraction lexicons.
    pub lexicon: Lexicon,
    /// Threat rules.
    pub rules: RuleSet,
}

impl Catalog {
    /// The catalogue compiled into the binary.
    pub fn embedded() -> Result<Catalog> {
        let frameworks = Frameworks::embedded()?;
        let lexicon = Lexicon::embedded()?;
        let rules = RuleSet::embedded()?;
        let catalog = Catalog {
            frameworks,
            lexicon,
            rules,
        };
        catalog.validate()?;
        Ok(catalog)
    }

    /// The embedded catalogue with the rules in `dir` (`*.toml`) added or overriding by id.
    pub fn with_overrides(dir: &Path) -> Result<Catalog> {
        let mut catalog = Catalog::embedded()?;
        catalog.rules.apply_overrides(dir)?;
        catalog.validate()?;
        Ok(catalog)
    }

    /// Checks every rule against the lexicons and the framework tables.
    pub fn validate(&self) -> Result<()> {
        for rule in self.rules.iter() {
            self.lexicon.check_rule(rule)?;
            self.frameworks.check_rule(rule)?;
        }
        Ok(())
    }
}
