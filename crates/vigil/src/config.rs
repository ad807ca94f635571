//! The typed configuration: compiled-in defaults, then `config/vigil.toml` (or `--config`), then
//! `VIGIL__SECTION__KEY` environment variables, then command-line flags. Unknown keys are an
//! error wherever they come from.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use vigil_analysis::assist::ReviewerConfig;
use vigil_analysis::normalize::Limits;
use vigil_analysis::score::ScoringConfig;
use vigil_analysis::threats::FindingLimits;
use vigil_connectors::ConnectorConfig;
use vigil_server::ServerConfig;

/// Where the configuration file is looked for when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "config/vigil.toml";

/// Deepest nesting that may be configured: deeper documents are refused, never parsed.
pub const MAX_DEPTH_LIMIT: usize = 1024;

/// Where customer rules are read from when no folder is configured, if it exists.
pub const DEFAULT_RULES_DIR: &str = "config/rules.d";

/// `[analysis]`: input limits and customer rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysisConfig {
    /// Largest input file accepted, in bytes.
    pub max_input_bytes: usize,
    /// Deepest nesting accepted in JSON and markup.
    pub max_depth: usize,
    /// Most findings kept on one element over all categories, best-evidenced first (0: all).
    pub max_findings_per_element: usize,
    /// Most findings kept on one element in one category (0: all).
    pub max_findings_per_category: usize,
    /// Folder of customer rules (`*.toml`) that add to or override the catalogue; by default
    /// `config/rules.d` when it exists.
    pub rules_dir: Option<PathBuf>,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        let limits = Limits::default();
        let findings = FindingLimits::default();
        AnalysisConfig {
            max_input_bytes: limits.max_bytes,
            max_depth: limits.max_depth,
            max_findings_per_element: findings.per_element,
            max_findings_per_category: findings.per_category,
            rules_dir: None,
        }
    }
}

impl AnalysisConfig {
    /// How many findings are kept per element.
    pub fn finding_limits(&self) -> FindingLimits {
        FindingLimits {
            per_element: self.max_findings_per_element,
            per_category: self.max_findings_per_category,
        }
    }

    /// The input limits.
    pub fn limits(&self) -> Limits {
        Limits {
            max_bytes: self.max_input_bytes,
            max_depth: self.max_depth,
        }
    }
}

/// `[log]`: level and format of diagnostics on stderr.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter: `warn`, `info`, `vigil=debug`, ...
    pub level: String,
    /// `human` or `json`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "warn".to_owned(),
            format: LogFormat::Human,
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// For people.
    Human,
    /// One JSON object a line, for log collectors.
    Json,
}

/// `[models]`: where model files are and which manifest describes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// Folder searched first for model files (before `VIGIL_MODELS_DIR` and `./models`).
    pub dir: Option<PathBuf>,
    /// A model manifest to use instead of the built-in one.
    pub manifest: Option<PathBuf>,
}

/// When the analysis uses the models.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LlmMode {
    /// Use the models when their files are found; otherwise analyse without them, with a warning.
    #[default]
    Auto,
    /// Require the models: a missing or corrupt model file is an error.
    On,
    /// Never load a model: the deterministic analysis alone.
    Off,
}

/// `[llm]`: what the embeddings and chat models add to the analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    /// auto, on or off (`--no-llm` sets off).
    pub mode: LlmMode,
    /// Recognise data classes and risk signals by meaning with the embeddings model.
    pub embeddings: bool,
    /// Cosine similarity to a catalogue exemplar needed to recognise a fact (0..1).
    pub similarity: f32,
    /// Let the chat model propose threats the rules missed, and write a summary.
    pub reviewer: bool,
    /// Limits of the chat model's review.
    pub review: ReviewerConfig,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            mode: LlmMode::Auto,
            embeddings: true,
            similarity: vigil_analysis::assist::semantic::DEFAULT_THRESHOLD,
            reviewer: true,
            review: ReviewerConfig::default(),
        }
    }
}

/// `[store]`: where Vigil keeps its data (see `vigil_store::layout` for the folder's layout).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The data directory: `vigil.db` (operational store) and `lance/` (memory) inside it.
    pub data_dir: PathBuf,
    /// How long an operational-store statement waits for a lock held elsewhere, in milliseconds.
    pub busy_timeout_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            busy_timeout_ms: 5000,
        }
    }
}

/// The data directory when none is configured.
pub const DEFAULT_DATA_DIR: &str = ".vigil";

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Analysis limits and rules.
    pub analysis: AnalysisConfig,
    /// Scoring weights, severity bands and SLAs.
    pub scoring: ScoringConfig,
    /// Logging.
    pub log: LogConfig,
    /// Model files.
    pub models: ModelsConfig,
    /// What the models add to the analysis.
    pub llm: LlmConfig,
    /// Where data is kept.
    pub store: StoreConfig,
    /// How memory is consulted before a review is final.
    pub memory: vigil_store::RecallConfig,
    /// The HTTP service (`vigil serve`).
    pub server: ServerConfig,
    /// Webhook senders by name: `[connectors.NAME]`, received at `/hooks/TOOL/NAME`.
    pub connectors: BTreeMap<String, ConnectorConfig>,
}

impl Config {
    /// Loads defaults < file < environment. `explicit` is `--config`: it must exist; without
    /// it, `config/vigil.toml` is read when present.
    pub fn load(explicit: Option<&Path>) -> Result<Config> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Config::load_from(explicit, &env)
    }

    /// As [`Config::load`], with the environment given.
    pub fn load_from(explicit: Option<&Path>, env: &[(String, String)]) -> Result<Config> {
        let mut tree = toml::Table::new();
        let file = match explicit {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from(DEFAULT_CONFIG)).filter(|p| p.is_file()),
        };
        if let Some(path) = &file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            tree = toml::from_str(&text)
                .with_context(|| format!("invalid TOML in {}", path.display()))?;
        }
        for (key, value) in env {
            let Some(rest) = key.strip_prefix("VIGIL__") else {
                continue;
            };
            set_path(&mut tree, rest, value)
                .with_context(|| format!("environment variable {key}"))?;
        }
        let origin = file.map_or_else(|| "defaults".to_owned(), |p| p.display().to_string());
        let config: Config = toml::Value::Table(tree).try_into().with_context(|| {
            format!("invalid configuration (from {origin} and VIGIL__ variables)")
        })?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<()> {
        let s = &self.scoring;
        let b = &s.bands;
        if !(b.critical > b.high
            && b.high > b.medium
            && b.medium > b.low
            && b.low >= 0.0
            && b.critical <= 10.0)
        {
            bail!("scoring.bands must satisfy 10 >= critical > high > medium > low >= 0");
        }
        if !(0.0..=1.0).contains(&s.urgency_share) {
            bail!("scoring.urgency_share must be between 0 and 1");
        }
        if s.exploitability_weight <= 0.0 || s.blast_radius_weight <= 0.0 {
            bail!("scoring.exploitability_weight and blast_radius_weight must be positive");
        }
        if self.analysis.max_input_bytes == 0 || self.analysis.max_depth == 0 {
            bail!("analysis.max_input_bytes and analysis.max_depth must be positive");
        }
        if self.analysis.max_depth > MAX_DEPTH_LIMIT {
            bail!("analysis.max_depth must be at most {MAX_DEPTH_LIMIT}");
        }
        if !(0.0..=1.0).contains(&self.llm.similarity) {
            bail!("llm.similarity must be between 0 and 1");
        }
        let m = &self.memory;
        let shares = [
            m.decision_similarity,
            m.pattern_similarity,
            m.precedent_similarity,
        ];
        if shares.iter().any(|s| !(0.0..=1.0).contains(s))
            || !(0.0..=1.0).contains(&m.feedback_false_positive_share)
            || !(0.0..=1.0).contains(&m.feedback_score_factor)
        {
            bail!("memory similarities, feedback_false_positive_share and feedback_score_factor must be between 0 and 1");
        }
        if self.store.data_dir.as_os_str().is_empty() {
            bail!("store.data_dir must not be empty");
        }
        self.server.check()?;
        if let Some(date) = &s.as_of {
            if date.len() != 10 || vigil_analysis::score::days_from_date(date).is_none() {
                bail!("scoring.as_of must be a date written YYYY-MM-DD, not `{date}`");
            }
        }
        Ok(())
    }
}

/// Sets `SECTION__KEY[__SUBKEY]` in the tree; the value is read as TOML when it parses as a
/// TOML value (numbers, booleans, arrays), else as a string.
fn set_path(tree: &mut toml::Table, path: &str, value: &str) -> Result<()> {
    let parts: Vec<String> = path.split("__").map(str::to_lowercase).collect();
    if parts.iter().any(String::is_empty) {
        bail!("malformed name: use VIGIL__SECTION__KEY");
    }
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    let (last, sections) = parts.split_last().expect("split yields at least one part");
    let mut table = tree;
    for section in sections {
        let entry = table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry
            .as_table_mut()
            .with_context(|| format!("`{section}` is not a section"))?;
    }
    table.insert(last.clone(), parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_load_without_a_file() {
        let c = Config::load_from(None, &[]).unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn environment_overrides_file() {
        let dir = std::env::temp_dir().join(format!("vigil-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("vigil.toml");
        std::fs::write(
            &path,
            "[scoring]\nurgency_share = 0.5\n[scoring.bands]\nhigh = 6.5\n",
        )
        .unwrap();
        let c = Config::load_from(
            Some(&path),
            &env(&[("VIGIL__SCORING__URGENCY_SHARE", "0.1")]),
        )
        .unwrap();
        assert_eq!(c.scoring.urgency_share, 0.1);
        assert_eq!(c.scoring.bands.high, 6.5);
        let c = Config::load_from(Some(&path), &env(&[("VIGIL__LOG__LEVEL", "debug")])).unwrap();
        assert_eq!(c.log.level, "debug");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = Config::load_from(None, &env(&[("VIGIL__SCORING__URGENCY", "1")])).unwrap_err();
        assert!(format!("{err:#}").contains("urgency"), "{err:#}");
        let err = Config::load_from(None, &env(&[("VIGIL__NOPE__X", "1")])).unwrap_err();
        assert!(format!("{err:#}").contains("nope"), "{err:#}");
    }

    #[test]
    fn bad_bands_are_rejected() {
        let err =
            Config::load_from(None, &env(&[("VIGIL__SCORING__BANDS__HIGH", "9.5")])).unwrap_err();
        assert!(err.to_string().contains("bands"));
    }

    #[test]
    fn shipped_example_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/vigil.toml");
        assert_eq!(
            Config::load_from(Some(&path), &[]).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn depth_and_dates_are_bounded() {
        let err = Config::load_from(None, &env(&[("VIGIL__ANALYSIS__MAX_DEPTH", "1000000")]))
            .unwrap_err();
        assert!(err.to_string().contains("max_depth"));
        let err =
            Config::load_from(None, &env(&[("VIGIL__SCORING__AS_OF", "2026-13-45")])).unwrap_err();
        assert!(err.to_string().contains("as_of"));
        let ok = Config::load_from(None, &env(&[("VIGIL__SCORING__AS_OF", "2026-12-04")])).unwrap();
        assert_eq!(ok.scoring.as_of.as_deref(), Some("2026-12-04"));
    }

    #[test]
    fn server_and_connectors_are_configured_by_file_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.toml");
        std::fs::write(
            &path,
            "[server]\nworkers = 4\n[connectors.gh]\ntool = \"github\"\nsecret = \"s\"\n",
        )
        .unwrap();
        let c = Config::load_from(
            Some(&path),
            &env(&[("VIGIL__SERVER__LISTEN", "127.0.0.1:9090")]),
        )
        .unwrap();
        assert_eq!(c.server.workers, 4);
        assert_eq!(c.server.listen.port(), 9090);
        assert_eq!(c.connectors["gh"].secret.as_deref(), Some("s"));
        let err =
            Config::load_from(None, &env(&[("VIGIL__SERVER__TLS_CERT", "c.pem")])).unwrap_err();
        assert!(err.to_string().contains("tls_key"), "{err}");
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let err = Config::load_from(Some(Path::new("/nonexistent/vigil.toml")), &[]).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/vigil.toml"));
    }
}
