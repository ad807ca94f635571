//! The whole deterministic pipeline, from bytes to reviews.

use sha2::{Digest, Sha256};

use vigil_catalog::Catalog;
use vigil_core::{Artifact, Review};

use crate::error::Result;
use crate::normalize::{self, Limits};
use crate::score::ScoringConfig;
use crate::{extract, model, paths, score, threats};

/// Runs the analysis with one catalogue and one scoring configuration.
#[derive(Debug, Clone)]
pub struct Engine {
    catalog: Catalog,
    scoring: ScoringConfig,
    limits: Limits,
    matcher: extract::Matcher,
}

impl Engine {
    /// An engine over `catalog` with the given scoring configuration and input limits.
    pub fn new(catalog: Catalog, scoring: ScoringConfig, limits: Limits) -> Engine {
        let matcher = extract::Matcher::new(&catalog.lexicon);
        Engine { catalog, scoring, limits, matcher }
    }

    /// An engine over the embedded catalogue and defaults.
    pub fn with_defaults() -> Result<Engine> {
        Ok(Engine::new(Catalog::embedded()?, ScoringConfig::default(), Limits::default()))
    }

    /// The catalogue in use.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Normalizes `bytes` (read from `origin`) and analyses every artifact they hold.
    pub fn analyze_bytes(&self, origin: &str, bytes: &[u8]) -> Result<Vec<Review>> {
        let artifacts = normalize::normalize(origin, bytes, &self.limits)?;
        Ok(artifacts.iter().map(|a| self.analyze_artifact(a)).collect())
    }

    /// Analyses one normalized artifact.
    pub fn analyze_artifact(&self, artifact: &Artifact) -> Review {
        let facts = extract::extract(artifact, &self.catalog.lexicon, &self.matcher);
        let dfd = model::build(&facts, &self.catalog.lexicon);
        let mut findings = threats::generate(&dfd, &facts, &self.catalog);
        score::score_all(&mut findings, &dfd, artifact, &self.catalog, &self.scoring);
        let attack_paths = paths::find(&dfd, &findings, &self.catalog.lexicon, 5);
        Review {
            artifact: artifact.id.clone(),
            title: artifact.title.clone(),
            format: artifact.format,
            origin: artifact.origin.clone(),
            meta: artifact.meta.clone(),
            content_hash: content_hash(artifact),
            dfd,
            findings,
            attack_paths,
        }
    }
}

fn content_hash(artifact: &Artifact) -> String {
    let mut hasher = Sha256::new();
    hasher.update(artifact.title.as_bytes());
    for section in &artifact.sections {
        hasher.update([0u8]);
        hasher.update(section.text.as_bytes());
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
