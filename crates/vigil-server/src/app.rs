//! The service assembled: shared state, the router (built here so tests use it without the
//! binary), and `serve`, which listens (HTTP or HTTPS), runs the workers and shuts down
//! gracefully: stop accepting, finish in-flight requests, let workers finish what they hold.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::Router;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use vigil_analysis::Engine;
use vigil_connectors::ConnectorConfig;
use vigil_core::{Artifact, Review};

use crate::config::ServerConfig;
use crate::console::{self, ClientAddr, LoginLimiter};
use crate::error::{Error, Result};
use crate::intake::Intake;
use crate::metrics::Metrics;
use crate::store::{InboxStore, ReviewStore, TokenStore};
use crate::{api, auth, hooks, knowledge, tls, worker};

/// Everything a request handler or worker needs.
pub struct AppState {
    /// `[server]`.
    pub config: ServerConfig,
    /// `[connectors.NAME]`, by name.
    pub connectors: BTreeMap<String, ConnectorConfig>,
    /// The analysis.
    pub engine: Arc<Engine>,
    /// API tokens.
    pub tokens: Arc<dyn TokenStore>,
    /// The webhook inbox.
    pub inbox: Arc<dyn InboxStore>,
    /// Reviews and findings.
    pub reviews: Arc<dyn ReviewStore>,
    /// Durable intake into the inbox.
    pub intake: Intake,
    /// Metrics.
    pub metrics: Metrics,
    /// Set once the service can do its work.
    pub ready: AtomicBool,
    /// Wakes idle workers when an event arrives.
    pub wake: Notify,
    /// Failed console logins per client address.
    pub logins: LoginLimiter,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .field("connectors", &self.connectors)
            .finish_non_exhaustive()
    }
}

/// The stores a service runs on.
#[derive(Clone)]
pub struct Stores {
    /// API tokens.
    pub tokens: Arc<dyn TokenStore>,
    /// The webhook inbox.
    pub inbox: Arc<dyn InboxStore>,
    /// Reviews and findings.
    pub reviews: Arc<dyn ReviewStore>,
}

impl AppState {
    /// State over these stores (call inside a tokio runtime); not ready until [`AppState::mark_ready`] or [`serve`].
    pub fn new(
        config: ServerConfig,
        connectors: BTreeMap<String, ConnectorConfig>,
        engine: Arc<Engine>,
        stores: Stores,
    ) -> Result<Arc<AppState>> {
        config.check()?;
        let intake = Intake::start(
            stores.inbox.clone(),
            config.intake_in_flight,
            config.intake_per_client,
        );
        Ok(Arc::new(AppState {
            connectors,
            engine,
            tokens: stores.tokens,
            inbox: stores.inbox,
            reviews: stores.reviews,
            intake,
            metrics: Metrics::default(),
            ready: AtomicBool::new(false),
            wake: Notify::new(),
            logins: LoginLimiter::new(config.login_failures_per_minute),
            config,
        }))
    }

    /// Marks the service ready (`/readyz` answers 200).
    pub fn mark_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    /// Whether the service is ready.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

/// The router with every route, authorization and metrics.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/", get(console::index))
        .route("/assets/{file}", get(console::asset))
        .route(
            "/api/v1/session",
            post(console::login)
                .get(console::current)
                .delete(console::logout),
        )
        .route("/metrics", get(api::metrics))
        .route("/hooks/{tool}/{connector}", post(hooks::receive))
        .route("/api/openapi.json", get(crate::openapi::document))
        .route("/api/docs", get(crate::openapi::reference_page))
        .route(
            "/api/v1/artifacts",
            post(api::submit_artifact).get(knowledge::list_artifacts),
        )
        .route("/api/v1/artifacts/{id}", get(knowledge::get_artifact))
        .route(
            "/api/v1/artifacts/{id}/versions",
            get(knowledge::artifact_versions),
        )
        .route(
            "/api/v1/artifacts/{id}/versions/{version}",
            get(knowledge::artifact_version),
        )
        .route("/api/v1/reviews", get(api::list_reviews))
        .route("/api/v1/reviews/{id}", get(api::get_review))
        .route("/api/v1/reviews/{id}/dfd", get(api::review_dfd))
        .route("/api/v1/reviews/{id}/export", get(api::export_review))
        .route(
            "/api/v1/reviews/{id}/versions",
            get(knowledge::review_versions),
        )
        .route("/api/v1/reviews/{id}/diff", get(knowledge::review_diff))
        .route("/api/v1/findings", get(api::list_findings))
        .route("/api/v1/findings/export", get(api::export_findings))
        .route("/api/v1/findings/{id}", get(api::get_finding))
        .route("/api/v1/findings/{id}/triage", post(api::triage_finding))
        .route(
            "/api/v1/findings/{id}/history",
            get(knowledge::finding_history),
        )
        .route(
            "/api/v1/decisions",
            get(knowledge::list_decisions).post(knowledge::create_decision),
        )
        .route("/api/v1/decisions/{id}", get(knowledge::get_decision))
        .route("/api/v1/search", get(knowledge::search))
        .route("/api/v1/guidance", post(knowledge::guidance))
        .route("/api/v1/dashboard", get(knowledge::dashboard))
        .route("/api/v1/inbox", get(api::inbox))
        .route("/api/v1/inbox/{id}/retry", post(api::retry_event))
        .route(
            "/api/v1/tokens",
            get(api::list_tokens).post(api::create_token),
        )
        .route("/api/v1/tokens/{id}", delete(api::revoke_token))
        .fallback(api::no_route)
        // Bodies are read by the handlers, which answer 413 in the service's JSON form.
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authorize,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_request,
        ))
        .with_state(state)
}

async fn record_request(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let private = !request.uri().path().starts_with("/assets/");

    let mut response = next.run(request).await;
    // Findings, designs and tokens are nobody's to keep: no cache stores an answer (the
    // console's static files excepted), and over HTTPS browsers are told to stay on it.
    let headers = response.headers_mut();
    if private && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if state.config.tls_cert.is_some() {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }

    let status = response.status().as_u16();
    state
        .metrics
        .request(&method, &route, status, started.elapsed());
    tracing::debug!(%method, %route, status, "request served");
    response
}

/// Serves until `shutdown` completes, then drains: in-flight requests finish, workers finish
/// the event they hold (within `shutdown_grace_secs`), and the function returns.
pub async fn serve(
    state: Arc<AppState>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let requeued = state.inbox.requeue_in_flight().await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let workers = worker::spawn_workers(state.clone(), state.config.workers, stop_rx);
    let addr = listener.local_addr()?;
    let app = router(state.clone());

    // Ready once memory's search index is in place; health answers meanwhile.
    let preparing = state.clone();
    tokio::spawn(async move {
        match preparing.reviews.prepare().await {
            Ok(()) => preparing.mark_ready(),
            Err(err) => tracing::error!(error = %err, "cannot prepare the memory index"),
        }
    });
    let tls = match (&state.config.tls_cert, &state.config.tls_key) {
        (Some(cert), Some(key)) => Some(tls::server_config(cert, key)?),
        _ => None,
    };
    tracing::info!(%addr, tls = tls.is_some(), requeued, workers = workers.len(), "server started");
    let served = match tls {
        Some(tls) => {
            let listener = tls::TlsListener::new(listener, tls)?;
            let app = app.into_make_service_with_connect_info::<ClientAddr>();
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => {
            let app = app.into_make_service_with_connect_info::<ClientAddr>();
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    };

    state.ready.store(false, Ordering::SeqCst);
    tracing::info!("server stopping; draining workers");
    let _ = stop_tx.send(true);
    let grace = Duration::from_secs(state.config.shutdown_grace_secs);
    let drained = tokio::time::timeout(grace, async {
        for w in workers {
            let _ = w.await;
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "workers did not finish within the grace period; their events will be retried"
        );
    }
    tracing::info!("server stopped");
    served.map_err(Error::Io)
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Normalizes `bytes` (from `origin`) and analyses every artifact they hold, keeping each
/// artifact with its review (the artifact's text goes to memory).
pub fn analyse(engine: &Engine, origin: &str, bytes: &[u8]) -> Result<Vec<(Artifact, Review)>> {
    let artifacts = vigil_analysis::normalize::normalize(origin, bytes, engine.limits())?;
    Ok(review_each(engine, artifacts))
}

/// Analyses every artifact, keeping each with its review.
pub fn review_each(engine: &Engine, artifacts: Vec<Artifact>) -> Vec<(Artifact, Review)> {
    artifacts
        .into_iter()
        .map(|a| {
            let review = engine.analyze_artifact(&a);
            (a, review)
        })
        .collect()
}

/// A review's id: the first 16 hex digits of SHA-256 over the artifact id and content hash, so
/// the same content analysed twice has the same id.
pub fn review_id(review: &Review) -> String {
    short_digest(&[review.artifact.as_bytes(), review.content_hash.as_bytes()])
}

/// The first 16 hex digits of SHA-256 over `parts`, each after the first preceded by a zero
/// byte: the form of every derived review id.
pub(crate) fn short_digest(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            h.update([0]);
        }
        h.update(part);
    }
    auth::hex(&h.finalize()[..8])
}
