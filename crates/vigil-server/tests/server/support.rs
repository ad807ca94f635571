//! Building a service over the SQLite stores in a temporary folder and talking to it without a
//! socket.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tower::ServiceExt;

use vigil_analysis::Engine;
use vigil_connectors::{ConnectorConfig, Tool};
use vigil_server::sqlite::open_stores;
use vigil_server::{issue_token, router, AppState, Role, ServerConfig};

/// The webhook secret of connector `gh`.
pub const SECRET: &str = "webhook-secret";

/// A service under test with one token per role.
pub struct Service {
    pub state: Arc<AppState>,
    pub app: Router,
    pub tokens: BTreeMap<&'static str, String>,
    /// The data directory, removed when the service is dropped.
    pub _dir: tempfile::TempDir,
}

/// A fixture file's bytes.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A ready service with a 64 KiB body limit and a GitHub connector `gh`.
pub async fn service() -> Service {
    service_with(|_| {}).await
}

/// [`service`] with its configuration adjusted first.
pub async fn service_with(adjust: impl FnOnce(&mut ServerConfig)) -> Service {
    let mut config = ServerConfig {
        body_limit: 64 * 1024,
        workers: 1,
        retry_base_ms: 10,
        ..ServerConfig::default()
    };
    adjust(&mut config);
    let mut connectors = BTreeMap::new();
    connectors.insert(
        "gh".to_owned(),
        ConnectorConfig {
            tool: Tool::Github,
            secret: Some(SECRET.to_owned()),
            basic_user: None,
            basic_password: None,
            header_name: None,
            header_value: None,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let stores = open_stores(dir.path(), std::time::Duration::from_secs(5))
        .await
        .unwrap();
    let engine = Arc::new(Engine::with_defaults().unwrap());
    let state = AppState::new(config, connectors, engine, stores.clone()).unwrap();
    let mut tokens = BTreeMap::new();
    for role in Role::ALL {
        let issued = issue_token(role.as_str(), role, 1).unwrap();
        stores.tokens.insert(&issued.record).await.unwrap();
        tokens.insert(role.as_str(), issued.secret);
    }
    state.mark_ready();
    Service {
        app: router(state.clone()),
        state,
        tokens,
        _dir: dir,
    }
}

/// The response's status, headers' content type and body.
pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends a request through the router.
pub async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Answer {
        status,
        headers,
        content_type,
        body,
    }
}

/// A request with a bearer token (None: without).
pub fn request(method: &str, uri: &str, token: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        builder = builder.header("authorization", format!("Bearer {t}"));
    }
    if !body.is_empty() {
        builder = builder.header("content-type", "application/json");
    }
    builder.body(Body::from(body)).unwrap()
}

/// HMAC-SHA256 of `body` with `secret`, as GitHub writes it.
pub fn github_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// A signed GitHub webhook request to connector `gh`.
pub fn github_hook(delivery: &str, body: &[u8]) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri("/hooks/github/gh")
        .header("content-type", "application/json")
        .header("x-github-event", "issues")
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", github_signature(SECRET, body))
        .body(Body::from(body.to_vec()))
        .unwrap()
}

/// Waits until the inbox has `done` events processed, or panics after five seconds.
pub async fn wait_processed(state: &AppState, done: u64) {
    for _ in 0..500 {
        if state.inbox.depth().await.unwrap().done >= done {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!(
        "events not processed: {:?}",
        state.inbox.depth().await.unwrap()
    );
}
