//! The connectors' error type.

/// What can go wrong verifying or mapping a webhook event.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The path names a tool Vigil has no connector for.
    #[error("unknown tool `{0}`")]
    UnknownTool(String),
    /// A header the scheme needs is absent or malformed.
    #[error("missing or malformed header `{0}`")]
    MissingHeader(&'static str),
    /// A body field the scheme needs is absent or malformed.
    #[error("missing or malformed body field `{0}`")]
    MissingField(&'static str),
    /// The signature or credentials do not match the configured secret.
    #[error("signature does not match for connector `{0}`")]
    BadSignature(String),
    /// The event's time is further from now than the sender's scheme allows (replay
    /// protection): too old, or in the future.
    #[error("event timestamp is {age_ms} ms {}, more than {max_ms} ms", if *.future { "ahead of this clock" } else { "old" })]
    Stale {
        /// How far the event's time is from now.
        age_ms: u64,
        /// Whether it lies in the future.
        future: bool,
        /// Largest age accepted.
        max_ms: u64,
    },
    /// The connector is configured without any way to verify its sender.
    #[error("connector `{0}` has no secret, basic credentials or header configured")]
    Unverifiable(String),
    /// The body is not the JSON the tool sends.
    #[error("payload is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Result with the connectors' [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
