//! The whole deterministic pipeline, from bytes to reviews.

use sha2::{Digest, Sha256};

use vigil_catalog::Catalog;
use vigil_core::{Artifact, ModelContribution, Review};

use crate::assist::{LlmReview, SemanticIndex};
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
    semantic: Option<(String, SemanticIndex)>,
    reviewer: Option<LlmReview>,
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
            semantic: None,
            reviewer: None,
        }
    }

    /// The same engine recognising data classes and signals by meaning too, with the exemplar
    /// index of the embeddings model `model_name`.
    pub fn with_semantic(mut self, model_name: &str, index: SemanticIndex) -> Engine {
        self.semantic = Some((model_name.to_string(), index));
        self
    }

    /// The same engine asking a chat model for threats the rules missed, and for a summary.
    pub fn with_reviewer(mut self, reviewer: LlmReview) -> Engine {
        self.reviewer = Some(reviewer);
        self
    }

    /// Whether any model takes part in the analysis.
    pub fn uses_models(&self) -> bool {
        self.semantic.is_some() || self.reviewer.is_some()
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

    /// The input limits normalization is held to.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Normalizes `bytes` (read from `origin`) and analyses every artifact they hold.
    pub fn analyze_bytes(&self, origin: &str, bytes: &[u8]) -> Result<Vec<Review>> {
        let artifacts = normalize::normalize(origin, bytes, &self.limits)?;
        Ok(artifacts.iter().map(|a| self.analyze_artifact(a)).collect())
    }

    /// Analyses one normalized artifact.
    pub fn analyze_artifact(&self, artifact: &Artifact) -> Review {
        let mut record = self.uses_models().then(ModelContribution::default);
        let hints = self.semantic_hints(artifact, record.as_mut());
        let facts = extract::extract_with(
            artifact,
            &self.catalog.lexicon,
            &self.matcher,
            hints.as_ref(),
        );
        let model = model::build(&facts, &self.catalog.lexicon);
        let candidates = threats::generate(&model, &self.catalog, self.finding_limits);
        let mut findings =
            score::score_all(candidates, &model, artifact, &self.catalog, &self.scoring);
        if let (Some(reviewer), Some(record)) = (&self.reviewer, record.as_mut()) {
            self.model_review(reviewer, artifact, &model, &mut findings, record);
        }
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
            models: record,
        }
    }

    /// Facts recognised by meaning, when an embeddings model is configured; a failure is
    /// recorded and the analysis goes on with the words alone.
    fn semantic_hints(
        &self,
        artifact: &Artifact,
        record: Option<&mut ModelContribution>,
    ) -> Option<crate::assist::SemanticHints> {
        let ((name, index), record) = self.semantic.as_ref().zip(record)?;
        record.embeddings_model = Some(name.clone());
        match index.hints(artifact) {
            Ok(hints) => {
                record.facts_by_meaning = hints.facts();
                Some(hints)
            }
            Err(e) => {
                record.errors.push(format!("embeddings: {e}"));
                None
            }
        }
    }

    /// Adds the chat model's grounded proposals to `findings`, scored like the rest, and its
    /// summary to the record.
    fn model_review(
        &self,
        reviewer: &LlmReview,
        artifact: &Artifact,
        model: &model::Model,
        findings: &mut Vec<vigil_core::Finding>,
        record: &mut ModelContribution,
    ) {
        let kept = reviewer.review(artifact, model, &self.catalog, findings, record);
        let added = score::score_all(kept, model, artifact, &self.catalog, &self.scoring);
        findings.extend(added);
        score::rank(findings);
        match reviewer.summarise(findings) {
            Ok(summary) => record.summary = summary,
            Err(e) => record.errors.push(format!("summary: {e}")),
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
