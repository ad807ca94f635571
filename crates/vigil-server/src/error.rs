//! The server's error type, and the one place errors become HTTP responses: an exhaustive match
//! gives each variant its status and a stable snake_case `code`; the body is
//! `{"error": {"code": ..., "message": ...}}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// What can go wrong serving a request or running the service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No bearer token or console session, or one that is unknown, revoked or expired.
    #[error("a valid bearer token or console session is required")]
    Unauthorized,
    /// A console session's state-changing request without its CSRF token.
    #[error("the X-CSRF-Token header of this console session is missing or wrong")]
    CsrfRejected,
    /// Too many failed console logins from one address.
    #[error("too many failed logins; try again in {retry_after_secs} s")]
    TooManyLogins {
        /// Seconds until the next attempt is accepted.
        retry_after_secs: u64,
    },
    /// The caller's role may not use this route.
    #[error("role `{role}` may not call {method} {route}")]
    Forbidden {
        /// The caller's role.
        role: &'static str,
        /// The method.
        method: String,
        /// The route pattern.
        route: String,
    },
    /// No such object.
    #[error("{kind} `{id}` not found")]
    NotFound {
        /// What was looked for.
        kind: &'static str,
        /// Its id.
        id: String,
    },
    /// The webhook path names no configured connector for that tool.
    #[error("no connector `{connector}` is configured for tool `{tool}`")]
    UnknownConnector {
        /// The tool in the path.
        tool: String,
        /// The connector in the path.
        connector: String,
    },
    /// The sender could not be verified.
    #[error("webhook rejected: {0}")]
    Unverified(vigil_connectors::Error),
    /// The request is malformed: bad parameters, fields or values.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The body is not valid JSON.
    #[error("invalid JSON body: {0}")]
    InvalidJson(String),
    /// The content type is not one the route accepts.
    #[error("content type `{got}` is not accepted here; send {expected}")]
    UnsupportedMediaType {
        /// What was sent.
        got: String,
        /// What the route takes.
        expected: &'static str,
    },
    /// The body is larger than the configured limit.
    #[error("body exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The artifact could not be analysed (format, encoding, size, depth).
    #[error("artifact cannot be analysed: {0}")]
    Analysis(#[from] vigil_analysis::Error),
    /// The service is starting or stopping.
    #[error("service is not ready")]
    NotReady,
    /// The route exists, but not for this method.
    #[error("{method} is not allowed here; allowed: {allow}")]
    MethodNotAllowed {
        /// The method used.
        method: String,
        /// The methods the route takes, comma separated.
        allow: String,
    },
    /// The request conflicts with what is stored.
    #[error("{0}")]
    Conflict(String),
    /// The body did not arrive within the configured time.
    #[error("the body did not arrive within {secs} s")]
    RequestTimeout {
        /// The deadline in seconds.
        secs: u64,
    },
    /// One client address has too many webhooks in flight; it should retry.
    #[error("too many webhooks in flight from this address (at most {limit}); retry shortly")]
    BusyClient {
        /// The configured limit per address.
        limit: usize,
    },
    /// Too many webhook bodies are in memory already; the sender should retry.
    #[error("too many webhooks in flight (at most {limit}); retry shortly")]
    Busy {
        /// The configured limit.
        limit: usize,
    },
    /// The operational store failed.
    #[error("storage failure: {0}")]
    Store(String),
    /// The configuration is invalid.
    #[error("invalid server configuration: {0}")]
    Config(String),
    /// TLS certificate or key could not be loaded.
    #[error("TLS set-up failed: {0}")]
    Tls(String),
    /// An I/O failure (binding the port, reading files).
    #[error("I/O failure: {0}")]
    Io(#[from] std::io::Error),
}

/// Result with the server's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Code and message of an error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code, for programs.
    pub code: &'static str,
    /// Explanation, for people.
    pub message: String,
}

impl Error {
    /// The status and stable code of this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Error::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Error::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden"),
            Error::CsrfRejected => (StatusCode::FORBIDDEN, "csrf_rejected"),
            Error::TooManyLogins { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_logins"),
            Error::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            Error::UnknownConnector { .. } => (StatusCode::NOT_FOUND, "unknown_connector"),
            Error::Unverified(vigil_connectors::Error::Json(_)) => {
                (StatusCode::BAD_REQUEST, "invalid_json")
            }
            Error::Unverified(vigil_connectors::Error::UnknownTool(_)) => {
                (StatusCode::NOT_FOUND, "unknown_connector")
            }
            Error::Unverified(vigil_connectors::Error::Stale { .. }) => {
                (StatusCode::UNAUTHORIZED, "webhook_stale")
            }
            Error::Unverified(_) => (StatusCode::UNAUTHORIZED, "webhook_unverified"),
            Error::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Error::InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            Error::UnsupportedMediaType { .. } => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Error::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Error::Analysis(_) => (StatusCode::UNPROCESSABLE_ENTITY, "artifact_unprocessable"),
            Error::NotReady => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
            Error::Busy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            Error::BusyClient { .. } => (StatusCode::TOO_MANY_REQUESTS, "busy_client"),
            Error::RequestTimeout { .. } => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            Error::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Error::MethodNotAllowed { .. } => {
                (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
            }
            Error::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "storage_failure"),
            Error::Config(_) | Error::Tls(_) | Error::Io(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        // Internal failures are logged in full and answered in general terms.
        let message = if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(code, error = %self, "request failed");
            "internal error; see the server log".to_owned()
        } else {
            self.to_string()
        };
        let allow = match &self {
            Error::MethodNotAllowed { allow, .. } => HeaderValue::from_str(allow).ok(),
            _ => None,
        };
        let retry_after = match &self {
            Error::TooManyLogins { retry_after_secs } => Some(retry_after_secs.to_string()),
            Error::Busy { .. } | Error::BusyClient { .. } => Some("1".to_owned()),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail { code, message },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = retry_after.and_then(|s| HeaderValue::from_str(&s).ok()) {
            response.headers_mut().insert(header::RETRY_AFTER, secs);
        }
        if let Some(allow) = allow {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_snake_case() {
        let cases = [
            (Error::Unauthorized, 401, "unauthorized"),
            (
                Error::PayloadTooLarge { limit: 1 },
                413,
                "payload_too_large",
            ),
            (Error::InvalidJson("x".into()), 400, "invalid_json"),
            (Error::CsrfRejected, 403, "csrf_rejected"),
            (
                Error::TooManyLogins {
                    retry_after_secs: 3,
                },
                429,
                "too_many_logins",
            ),
            (Error::Store("disk".into()), 500, "storage_failure"),
            (
                Error::Unverified(vigil_connectors::Error::BadSignature("gh".into())),
                401,
                "webhook_unverified",
            ),
        ];
        for (err, status, code) in cases {
            assert_eq!(
                err.status_and_code(),
                (StatusCode::from_u16(status).unwrap(), code)
            );
        }
    }
}
