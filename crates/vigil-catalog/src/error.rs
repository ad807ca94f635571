//! Errors raised while loading and validating the catalogue.

use std::path::PathBuf;

/// A catalogue that cannot be used, with the file, rule or id at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A data file that does not parse.
    #[error("{file}: {message}")]
    Parse {
        /// File name (embedded name or path).
        file: String,
        /// Parser message.
        message: String,
    },
    /// A rules.d directory or file that cannot be read.
    // The reason is the source, shown by `{:#}` and error chains, not repeated here.
    #[error("cannot read {path}")]
    Io {
        /// Path at fault.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The same id defined twice where ids must be unique.
    #[error("{file}: duplicate id `{id}`")]
    Duplicate {
        /// File name.
        file: String,
        /// The repeated id.
        id: String,
    },
    /// A reference to an id that does not exist.
    #[error("{owner}: unknown {kind} `{id}`{}", hint_suffix(.hint))]
    UnknownId {
        /// What holds the reference (a rule id, a file).
        owner: String,
        /// The kind of id (cwe, capec, attack, component, control, ...).
        kind: &'static str,
        /// The id.
        id: String,
        /// What the id is instead, when it is known but not citable (retired, a category).
        hint: Option<String>,
    },
    /// A rule that is structurally wrong (empty title, no mitigations, ...).
    #[error("rule {rule}: {message}")]
    InvalidRule {
        /// Rule id.
        rule: String,
        /// What is wrong.
        message: String,
    },
}

fn hint_suffix(hint: &Option<String>) -> String {
    hint.as_ref().map(|h| format!(": {h}")).unwrap_or_default()
}

/// Result with the catalogue error.
pub type Result<T> = std::result::Result<T, Error>;
