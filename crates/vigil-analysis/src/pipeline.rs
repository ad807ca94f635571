//! The whole deterministic pipeline, from bytes to reviews.

use sha2::{Digest, Sha256};

use vigil_catalog::Catalog;
use vigil_core::{Artifact, Review};

use crate::error::Result;
use crate::normalize::{self, Limits};
use crate::score::ScoringConfig;
use crate::threats::FindingLimits;
use crate::{extract, model, paths, score, threats};

/// Attack paths reported per artifact.
const MAX_PATHS: usize = 5;

/// Runs the analysis with one catalogue and one scoring configuration.
#[derive(Debug, Clone)]
pub struct Engine {
    catalog: Catalog,
    scoring: ScoringConfig,
    limits: Limits,
    finding_limits: FindingLimits,
    matcher: extract::Matcher,
}

impl Engine {
    /// An engine over `catalog` with the given scoring configuration and input limits.
    pub fn new(catalog: Catalog, scoring: ScoringConfig, limits: Limits) -> Engine {
        let matcher = extract::Matcher::new(&catalog.lexicon);
        Engine {
            catalog,
            scoring,
            limits,
            finding_limits: FindingLimits::default(),
            matcher,
        }
    }

    /// The same engine keeping at most this many findings per element.
    pub fn with_finding_limits(mut self, finding_limits: FindingLimits) -> Engine {
        self.finding_limits = finding_limits;
        self
    }

    /// An engine over the embedded catalogue and defaults.
    pub fn with_defaults() -> Result<Engine> {
        Ok(Engine::new(
            Catalog::embedded()?,
            ScoringConfig::default(),
            Limits::default(),
        ))
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
        let model = model::build(&facts, &self.catalog.lexicon);
        let candidates = threats::generate(&model, &self.catalog, self.finding_limits);
        let findings = score::score_all(candidates, &model, artifact, &self.catalog, &self.scoring);
        let attack_paths = paths::find(&model.dfd, &findings, &self.catalog.lexicon, MAX_PATHS);
        let dfd = model.dfd;
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
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
