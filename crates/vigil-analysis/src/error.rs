//! Errors of the analysis pipeline. Each names the input it is about.

/// Why an input could not be analysed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file is empty or holds only whitespace.
    #[error("{origin}: the file is empty")]
    Empty {
        /// File path or label.
        origin: String,
    },
    /// The bytes are not UTF-8 text.
    #[error("{origin}: not UTF-8 text (invalid byte at offset {offset})")]
    InvalidUtf8 {
        /// File path or label.
        origin: String,
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// Bytes that are not text (a NUL byte).
    #[error("{origin}: a binary file, not text (NUL byte at offset {offset})")]
    Binary {
        /// File path or label.
        origin: String,
        /// Offset of the first NUL byte.
        offset: usize,
    },
    /// JSON that does not parse.
    #[error("{origin}: invalid JSON at byte {offset}: {message}")]
    InvalidJson {
        /// File path or label.
        origin: String,
        /// Byte offset of the problem.
        offset: usize,
        /// What is wrong.
        message: String,
    },
    /// Input nested deeper than the parser accepts.
    #[error("{origin}: nested more than {limit} levels deep")]
    TooDeep {
        /// File path or label.
        origin: String,
        /// The limit.
        limit: usize,
    },
    /// Input larger than the configured limit.
    #[error("{origin}: {size} bytes is over the {limit}-byte limit")]
    TooLarge {
        /// File path or label.
        origin: String,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// JSON whose shape is not one of the supported tools' items.
    #[error("{origin}: unrecognised JSON: {message}")]
    UnknownShape {
        /// File path or label.
        origin: String,
        /// What was expected.
        message: String,
    },
    /// A document in a known format that is malformed (bad ADF node, ...).
    #[error("{origin}: malformed {format}: {message}")]
    Malformed {
        /// File path or label.
        origin: String,
        /// Format name.
        format: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A document with no text to analyse.
    #[error("{origin}: no text to analyse")]
    NoText {
        /// File path or label.
        origin: String,
    },
    /// An evaluation case folder that is unusable.
    #[error("{case}: {message}")]
    EvalCase {
        /// Case folder.
        case: String,
        /// What is wrong.
        message: String,
    },
    /// The catalogue failed to load.
    #[error(transparent)]
    Catalog(#[from] vigil_catalog::Error),
}

/// Result with the analysis error.
pub type Result<T> = std::result::Result<T, Error>;
