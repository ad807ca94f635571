//! The web console's side of the service: its login (a server-side session opened with an API
//! token, kept in an HttpOnly, SameSite=Strict cookie, with a CSRF token for every state-changing
//! request), the rate limit on failed logins per client address, and the console's static files
//! (`web/`, embedded in the binary) served under a strict Content-Security-Policy.
//!
//! A session carries the role of the token it was opened with, so the route table in `auth.rs`
//! decides for sessions exactly as for bearer tokens; revoking the token ends its sessions.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::net::TcpListener;
use utoipa::ToSchema;

use crate::api::{read_body, require_json};
use crate::app::{now_ms, AppState};
use crate::auth::{hex, token_hash, Caller, ConsoleSession, Role};
use crate::error::{Error, ErrorBody, Result};
use crate::store::SessionRecord;
use crate::tls::TlsListener;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "vigil_session";

/// Prefix of every session secret.
const SESSION_PREFIX: &str = "vgs_";

/// A session's last use is written at most this often, so reading pages does not write the
/// store on every request.
const TOUCH_EVERY_MS: u64 = 60_000;

/// The policy every console file is served with: nothing but the console's own files, no
/// inline script or style, never framed.
pub const CONSOLE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// The console's files: name, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../../web/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../web/app.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../../web/favicon.svg"),
    ),
];

/// The client's address, as the listener saw it (for the login rate limit and the webhook
/// intake's share per address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

impl ClientAddr {
    /// The client's IP address, when the request came through a listener (not in tests that
    /// call the router directly).
    pub fn ip_of(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
        extensions
            .get::<ConnectInfo<ClientAddr>>()
            .map(|c| c.0 .0.ip())
    }
}

impl Connected<IncomingStream<'_, TcpListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

/// Failed logins per client address over a sliding minute.
#[derive(Debug)]
pub struct LoginLimiter {
    max: u32,
    window: Duration,
    failures: Mutex<HashMap<Option<IpAddr>, VecDeque<Instant>>>,
}

impl LoginLimiter {
    /// At most `max` failures per minute and address. Requests without a known address (tests
    /// through the router alone) share one allowance.
    pub fn new(max: u32) -> LoginLimiter {
        LoginLimiter {
            max,
            window: Duration::from_secs(60),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Refuses an attempt while `client` has used up its failures.
    pub fn check(&self, client: Option<IpAddr>, now: Instant) -> Result<()> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let Some(recent) = failures.get_mut(&client) else {
            return Ok(());
        };
        prune(recent, now, self.window);
        match recent.front() {
            Some(oldest) if recent.len() >= self.max as usize => {
                let wait = self.window.saturating_sub(now.duration_since(*oldest));
                Err(Error::TooManyLogins {
                    retry_after_secs: wait.as_secs() + 1,
                })
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed attempt.
    pub fn record_failure(&self, client: Option<IpAddr>, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() > 10_000 {
            failures.retain(|_, recent| {
                prune(recent, now, self.window);
                !recent.is_empty()
            });
        }
        failures.entry(client).or_default().push_back(now);
    }
}

fn prune(recent: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while recent
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        recent.pop_front();
    }
}

/// The CSRF token of a session: derived from its secret, so the server keeps nothing more and a
/// page reload can ask for it again; only the holder of the cookie can learn it.
pub fn csrf_token(secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"vigil-csrf\0");
    h.update(secret.as_bytes());
    hex(&h.finalize())
}

/// The session secret in the request's cookies, when it carries one of ours.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == SESSION_COOKIE && value.starts_with(SESSION_PREFIX))
        .map(|(_, value)| value.to_owned())
}

/// The caller behind a session secret: unknown, idle or revoked-token sessions are refused (and
/// the idle and revoked ones ended).
pub async fn session_caller(state: &AppState, secret: &str) -> Result<Caller> {
    let hash = token_hash(secret);
    let session = state
        .tokens
        .session(&hash)
        .await?
        .ok_or(Error::Unauthorized)?;
    let now = now_ms();
    let idle_ms = state.config.session_idle_mins.saturating_mul(60_000);
    let token = state
        .tokens
        .find_by_id(&session.token_id)
        .await?
        .filter(|t| t.revoked_ms.is_none());
    let Some(token) = token.filter(|_| now.saturating_sub(session.last_seen_ms) <= idle_ms) else {
        state.tokens.end_session(&hash).await?;
        tracing::debug!("console session ended: idle or token revoked");
        return Err(Error::Unauthorized);
    };

    if now.saturating_sub(session.last_seen_ms) >= TOUCH_EVERY_MS {
        state.tokens.touch_session(&hash, now).await?;
    }
    Ok(Caller {
        token_id: token.id,
        name: token.name,
        role: token.role,
        session: Some(ConsoleSession {
            hash,
            csrf: csrf_token(secret),
        }),
    })
}

/// Whether a request of this session may go on: every method but GET, HEAD and OPTIONS must
/// carry the session's CSRF token in `X-CSRF-Token`.
pub fn check_csrf(
    session: &ConsoleSession,
    method: &axum::http::Method,
    headers: &HeaderMap,
) -> Result<()> {
    use axum::http::Method;
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let sent = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if constant_time_eq(sent.as_bytes(), session.csrf.as_bytes()) {
        Ok(())
    } else {
        Err(Error::CsrfRejected)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A login: the API token to open the session with.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// An API token (`vgl_...`).
    pub token: String,
}

/// Who the session belongs to, and the CSRF token its state-changing requests must carry.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    /// Name of the token the session was opened with.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Send it as `X-CSRF-Token` on every request but GET; absent for bearer-token callers.
    pub csrf_token: Option<String>,
    /// Minutes of inactivity after which the session ends.
    pub idle_timeout_mins: u64,
}

/// Opens a console session with an API token; failed attempts are limited per client address.
#[utoipa::path(post, path = "/api/v1/session", tag = "console", security(()),
    request_body = Login,
    responses(
        (status = 200, description = "Logged in; the session cookie is set", body = SessionInfo,
            headers(("set-cookie" = String, description = "vigil_session, HttpOnly, \
                SameSite=Strict, Secure over TLS"))),
        (status = 401, description = "Unknown or revoked token", body = ErrorBody),
        (status = 429, description = "Too many failed logins; see Retry-After",
            body = ErrorBody)))]
pub async fn login(State(state): State<Arc<AppState>>, request: Request) -> Result<Response> {
    let client = ClientAddr::ip_of(request.extensions());
    state.logins.check(client, Instant::now())?;
    let (parts, body) = request.into_parts();
    require_json(&parts.headers)?;
    let bytes = read_body(body, &parts.headers, 64 * 1024, state.config.body_timeout()).await?;
    let login: Login =
        serde_json::from_slice(&bytes).map_err(|e| Error::InvalidJson(e.to_string()))?;

    let token = state
        .tokens
        .find_by_hash(&token_hash(login.token.trim()))
        .await?
        .filter(|t| t.revoked_ms.is_none());
    let Some(token) = token else {
        state.logins.record_failure(client, Instant::now());
        tracing::info!(client = ?client, "console login refused");
        return Err(Error::Unauthorized);
    };
    let secret = new_session_secret()?;
    let now = now_ms();
    let idle_ms = state.config.session_idle_mins.saturating_mul(60_000);
    state
        .tokens
        .purge_sessions(now.saturating_sub(idle_ms))
        .await?;
    state
        .tokens
        .open_session(&SessionRecord {
            hash: token_hash(&secret),
            token_id: token.id.clone(),
            created_ms: now,
            last_seen_ms: now,
        })
        .await?;
    tracing::info!(token = %token.id, role = token.role.as_str(), "console session opened");

    let info = SessionInfo {
        name: token.name,
        role: token.role,
        csrf_token: Some(csrf_token(&secret)),
        idle_timeout_mins: state.config.session_idle_mins,
    };
    let cookie = session_set_cookie(&secret, state.config.tls_cert.is_some());
    Ok(with_cookie(Json(info).into_response(), &cookie))
}

fn new_session_secret() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::Store(format!("no randomness: {e}")))?;
    Ok(format!("{SESSION_PREFIX}{}", hex(&bytes)))
}

/// The `Set-Cookie` value of a new session.
pub fn session_set_cookie(secret: &str, tls: bool) -> String {
    let secure = if tls { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={secret}; HttpOnly; SameSite=Strict; Path=/{secure}")
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// The caller of this request, and the CSRF token when it is a console session.
#[utoipa::path(get, path = "/api/v1/session", tag = "console",
    responses((status = 200, description = "The caller", body = SessionInfo),
        (status = 401, description = "No valid session or token", body = ErrorBody)))]
pub async fn current(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> Json<SessionInfo> {
    Json(SessionInfo {
        name: caller.name,
        role: caller.role,
        csrf_token: caller.session.map(|s| s.csrf),
        idle_timeout_mins: state.config.session_idle_mins,
    })
}

/// Ends the console session of this request and clears its cookie.
#[utoipa::path(delete, path = "/api/v1/session", tag = "console",
    responses((status = 204, description = "Logged out"),
        (status = 403, description = "Without the session's X-CSRF-Token", body = ErrorBody)))]
pub async fn logout(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> Result<Response> {
    if let Some(session) = &caller.session {
        state.tokens.end_session(&session.hash).await?;
        tracing::info!(token = %caller.token_id, "console session closed");
    }

    let secure = if state.config.tls_cert.is_some() {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}");
    Ok(with_cookie(StatusCode::NO_CONTENT.into_response(), &cookie))
}

/// The console (its login page when no session is open).
#[utoipa::path(get, path = "/", tag = "console", security(()),
    responses((status = 200, description = "The console's page", body = String)))]
pub async fn index() -> Response {
    asset_response(ASSETS[0].1, ASSETS[0].2)
}

/// One of the console's static files (script, style sheet, icon).
#[utoipa::path(get, path = "/assets/{file}", tag = "console", security(()),
    params(("file" = String, Path, description = "File name")),
    responses((status = 200, description = "The file", body = String),
        (status = 404, description = "No such file", body = ErrorBody)))]
pub async fn asset(Path(file): Path<String>) -> Result<Response> {
    ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .map(|(_, content_type, bytes)| asset_response(content_type, bytes))
        .ok_or(Error::NotFound {
            kind: "console file",
            id: file,
        })
}

fn asset_response(content_type: &'static str, bytes: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CONSOLE_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_limited_per_address_for_a_minute() {
        let limiter = LoginLimiter::new(3);
        let a = Some(IpAddr::from([127, 0, 0, 1]));
        let b = Some(IpAddr::from([127, 0, 0, 2]));
        let t0 = Instant::now();
        for i in 0..3 {
            limiter.check(a, t0 + Duration::from_secs(i)).unwrap();
            limiter.record_failure(a, t0 + Duration::from_secs(i));
        }
        let err = limiter.check(a, t0 + Duration::from_secs(10)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::TooManyLogins {
                    retry_after_secs: 51
                }
            ),
            "{err:?}"
        );
        limiter.check(b, t0 + Duration::from_secs(10)).unwrap();
        limiter.check(a, t0 + Duration::from_secs(60)).unwrap();
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; vigil_session=vgs_abc; x=1"),
        );
        assert_eq!(session_cookie(&headers).as_deref(), Some("vgs_abc"));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("vigil_session=forged"),
        );
        assert_eq!(session_cookie(&headers), None);
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_over_tls() {
        let plain = session_set_cookie("vgs_1", false);
        assert_eq!(
            plain,
            "vigil_session=vgs_1; HttpOnly; SameSite=Strict; Path=/"
        );
        assert!(session_set_cookie("vgs_1", true).ends_with("; Secure"));
        assert_ne!(csrf_token("vgs_1"), csrf_token("vgs_2"));
    }

    #[test]
    fn every_console_file_is_embedded() {
        for (name, content_type, bytes) in ASSETS {
            assert!(!bytes.is_empty(), "{name}");
            assert!(content_type.contains('/'));
        }
    }
}
