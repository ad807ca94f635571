//! `[server]`: where the service listens, TLS, body limits, the worker pool and its retries, and
//! how many webhook bodies may be in memory at once.
//! The binary embeds this section in its one configuration struct.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// Default largest request body: 25 MiB, GitHub's largest webhook payload.
pub const DEFAULT_BODY_LIMIT: usize = 25 * 1024 * 1024;

/// `[server]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on; loopback unless changed.
    pub listen: SocketAddr,
    /// PEM certificate chain; with `tls_key`, the service speaks HTTPS only.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Largest request body accepted, in bytes (413 beyond).
    pub body_limit: usize,
    /// Analysis workers draining the webhook inbox.
    pub workers: usize,
    /// Attempts at one event before it goes to the dead-letter list.
    pub max_attempts: u32,
    /// First retry delay in milliseconds; doubled at each further attempt.
    pub retry_base_ms: u64,
    /// Seconds given to in-flight work at shutdown before the process exits anyway.
    pub shutdown_grace_secs: u64,
    /// Minutes a console session may stay unused before it ends.
    pub session_idle_mins: u64,
    /// Failed console logins one client address may make per minute before it gets 429.
    pub login_failures_per_minute: u32,
    /// Webhook bodies held in memory at once (being read or waiting for their write); beyond
    /// it a webhook is answered 503 with Retry-After.
    pub intake_in_flight: usize,
    /// Of those, how many one client address may hold; beyond it that address is answered 429
    /// with Retry-After, so one sender cannot take every place.
    pub intake_per_client: usize,
    /// Seconds a request body may take to arrive in full; a slower one is answered 408.
    pub body_timeout_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls_cert: None,
            tls_key: None,
            body_limit: DEFAULT_BODY_LIMIT,
            workers: 2,
            max_attempts: 5,
            retry_base_ms: 1000,
            shutdown_grace_secs: 30,
            session_idle_mins: 720,
            login_failures_per_minute: 5,
            intake_in_flight: 256,
            intake_per_client: 32,
            body_timeout_secs: 30,
        }
    }
}

impl ServerConfig {
    /// How long a request body may take to arrive.
    pub fn body_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.body_timeout_secs)
    }

    /// Checks the values that serde cannot.
    pub fn check(&self) -> Result<()> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(Error::Config(
                "server.tls_cert and server.tls_key must be given together".to_owned(),
            ));
        }
        if self.body_limit == 0
            || self.workers == 0
            || self.max_attempts == 0
            || self.intake_in_flight == 0
            || self.intake_per_client == 0
            || self.body_timeout_secs == 0
        {
            return Err(Error::Config(
                "server.body_limit, server.workers, server.max_attempts, \
                 server.intake_in_flight, server.intake_per_client and server.body_timeout_secs \
                 must be positive"
                    .to_owned(),
            ));
        }
        if self.session_idle_mins == 0 || self.login_failures_per_minute == 0 {
            return Err(Error::Config(
                "server.session_idle_mins and server.login_failures_per_minute must be positive"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// The retry delay after `attempts` failed attempts: base x 2^(attempts-1), capped at an
    /// hour.
    pub fn retry_delay_ms(&self, attempts: u32) -> u64 {
        let shift = attempts.saturating_sub(1).min(20);
        self.retry_base_ms.saturating_mul(1 << shift).min(3_600_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_listen_on_loopback_with_a_25_mib_limit() {
        let c = ServerConfig::default();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.body_limit, 26_214_400);
        c.check().unwrap();
    }

    #[test]
    fn retries_back_off_exponentially() {
        let c = ServerConfig::default();
        assert_eq!(
            [1, 2, 3, 4].map(|n| c.retry_delay_ms(n)),
            [1000, 2000, 4000, 8000]
        );
        assert_eq!(c.retry_delay_ms(40), 3_600_000);
    }

    #[test]
    fn tls_needs_both_files() {
        let c = ServerConfig {
            tls_cert: Some("cert.pem".into()),
            ..ServerConfig::default()
        };
        assert!(c.check().is_err());
    }
}
