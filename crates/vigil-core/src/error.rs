//! The error type shared by the domain types.

/// Errors raised when domain values are built from untrusted input.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A category name that is neither a STRIDE nor a LINDDUN category.
    #[error("unknown threat category `{0}`")]
    UnknownCategory(String),
    /// A severity name outside critical, high, medium, low, info.
    #[error("unknown severity `{0}`")]
    UnknownSeverity(String),
    /// A trust zone name outside the fixed set.
    #[error("unknown trust zone `{0}`")]
    UnknownTrustZone(String),
    /// An element kind outside process, data_store, external_entity, flow.
    #[error("unknown element kind `{0}`")]
    UnknownElementKind(String),
}

/// Result with the domain error.
pub type Result<T> = std::result::Result<T, Error>;
