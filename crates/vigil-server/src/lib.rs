//! Vigil's HTTP service as a library: the axum router with API v1 and its OpenAPI description,
//! bearer-token access by role, the durable webhook inbox and the workers that analyse what
//! arrives, Prometheus metrics, TLS, and graceful shutdown. The `vigil serve` command builds the
//! state from configuration and calls [`serve`]; tests build [`router`] directly.

pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod console;
mod csv;
pub mod error;
pub mod hooks;
pub mod intake;
pub mod knowledge;
pub mod loadgen;
pub mod metrics;
pub mod openapi;
pub mod sqlite;
pub mod store;
pub mod tls;
pub mod worker;

pub use app::{router, serve, shutdown_signal, AppState, Stores};
pub use auth::{issue_token, IssuedToken, Role};
pub use config::ServerConfig;
pub use error::{Error, Result};
