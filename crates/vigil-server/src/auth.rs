//! Who may call what: bearer API tokens (random, shown once, stored as their SHA-256) or a
//! console session opened with one (see `console.rs`), the five roles, and the route table that
//! says which roles each route admits. The table is the single source of authorization: a route
//! missing from it answers 403 to everyone, so a new route is closed until someone decides who
//! may use it.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::error::{Error, Result};
use crate::store::TokenRecord;

/// Prefix of every API token, so a leaked one is recognisable by secret scanners.
pub const TOKEN_PREFIX: &str = "vgl_";

/// A caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including tokens and the dead-letter list.
    Admin,
    /// Security architects: submit, read and triage.
    Security,
    /// Engineering teams: submit artifacts and read their reviews.
    Developer,
    /// ALM connectors and internal services: submit artifacts.
    Connector,
    /// Auditors: read everything, change nothing.
    Auditor,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Security,
        Role::Developer,
        Role::Connector,
        Role::Auditor,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Security => "security",
            Role::Developer => "developer",
            Role::Connector => "connector",
            Role::Auditor => "auditor",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| Error::BadRequest(format!("unknown role `{s}`")))
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: health checks only.
    Public,
    /// Verified by the sender's webhook signature, not by a token.
    Signed,
    /// The console's login: anyone may try, the body carries the token, failures are limited.
    Login,
    /// The console's static files (page, script, styles): no data, no credentials needed.
    Console,
    /// A bearer token of one of these roles.
    Roles(&'static [Role]),
}

/// One route: method, axum path pattern and who may call it.
#[derive(Debug, Clone)]
pub struct RouteAccess {
    /// HTTP method.
    pub method: Method,
    /// Path pattern as registered in the router.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
}

const READERS: &[Role] = &[Role::Admin, Role::Security, Role::Developer, Role::Auditor];
const SUBMITTERS: &[Role] = &[
    Role::Admin,
    Role::Security,
    Role::Developer,
    Role::Connector,
];
const TRIAGERS: &[Role] = &[Role::Admin, Role::Security];
const OPERATORS: &[Role] = &[Role::Admin, Role::Security, Role::Auditor];
const ADMINS: &[Role] = &[Role::Admin];
const EVERYONE: &[Role] = &Role::ALL;

const fn route(method: Method, path: &'static str, access: Access) -> RouteAccess {
    RouteAccess {
        method,
        path,
        access,
    }
}

/// Every route of the router and who may call it.
pub const ROUTES: &[RouteAccess] = &[
    route(Method::GET, "/healthz", Access::Public),
    route(Method::GET, "/readyz", Access::Public),
    route(Method::GET, "/", Access::Console),
    route(Method::GET, "/assets/{file}", Access::Console),
    route(Method::POST, "/api/v1/session", Access::Login),
    route(Method::GET, "/api/v1/session", Access::Roles(EVERYONE)),
    route(Method::DELETE, "/api/v1/session", Access::Roles(EVERYONE)),
    route(Method::GET, "/metrics", Access::Roles(OPERATORS)),
    route(Method::POST, "/hooks/{tool}/{connector}", Access::Signed),
    route(Method::GET, "/api/openapi.json", Access::Roles(EVERYONE)),
    route(Method::GET, "/api/docs", Access::Roles(EVERYONE)),
    route(Method::POST, "/api/v1/artifacts", Access::Roles(SUBMITTERS)),
    route(Method::GET, "/api/v1/reviews", Access::Roles(READERS)),
    route(Method::GET, "/api/v1/reviews/{id}", Access::Roles(READERS)),
    route(
        Method::GET,
        "/api/v1/reviews/{id}/dfd",
        Access::Roles(READERS),
    ),
    route(
        Method::GET,
        "/api/v1/reviews/{id}/export",
        Access::Roles(READERS),
    ),
    route(Method::GET, "/api/v1/findings", Access::Roles(READERS)),
    route(
        Method::GET,
        "/api/v1/findings/export",
        Access::Roles(READERS),
    ),
    route(Method::GET, "/api/v1/findings/{id}", Access::Roles(READERS)),
    route(
        Method::POST,
        "/api/v1/findings/{id}/triage",
        Access::Roles(TRIAGERS),
    ),
    route(
        Method::GET,
        "/api/v1/findings/{id}/history",
        Access::Roles(READERS),
    ),
    route(Method::GET, "/api/v1/artifacts", Access::Roles(READERS)),
    route(
        Method::GET,
        "/api/v1/artifacts/{id}",
        Access::Roles(READERS),
    ),
    route(
        Method::GET,
        "/api/v1/artifacts/{id}/versions",
        Access::Roles(READERS),
    ),
    route(
        Method::GET,
        "/api/v1/artifacts/{id}/versions/{version}",
        Access::Roles(READERS),
    ),
    route(
        Method::GET,
        "/api/v1/reviews/{id}/versions",
        Access::Roles(READERS),
    ),
    route(
        Method::GET,
        "/api/v1/reviews/{id}/diff",
        Access::Roles(READERS),
    ),
    route(Method::GET, "/api/v1/decisions", Access::Roles(READERS)),
    route(Method::POST, "/api/v1/decisions", Access::Roles(TRIAGERS)),
    route(
        Method::GET,
        "/api/v1/decisions/{id}",
        Access::Roles(READERS),
    ),
    route(Method::GET, "/api/v1/search", Access::Roles(READERS)),
    route(Method::POST, "/api/v1/guidance", Access::Roles(READERS)),
    route(Method::GET, "/api/v1/dashboard", Access::Roles(READERS)),
    route(Method::GET, "/api/v1/inbox", Access::Roles(OPERATORS)),
    route(
        Method::POST,
        "/api/v1/inbox/{id}/retry",
        Access::Roles(TRIAGERS),
    ),
    route(Method::GET, "/api/v1/tokens", Access::Roles(ADMINS)),
    route(Method::POST, "/api/v1/tokens", Access::Roles(ADMINS)),
    route(Method::DELETE, "/api/v1/tokens/{id}", Access::Roles(ADMINS)),
];

/// Who may call `method path`; None when the route is not in the table.
pub fn access_for(method: &Method, path: &str) -> Option<Access> {
    ROUTES
        .iter()
        .find(|r| r.method == method && r.path == path)
        .map(|r| r.access)
}

/// The authenticated caller, put in the request's extensions for handlers.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Token id.
    pub token_id: String,
    /// Token name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// The console session the request came with; None for a bearer token.
    pub session: Option<ConsoleSession>,
}

/// A console session behind a request.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    /// SHA-256 of the session secret, hex.
    pub hash: String,
    /// The CSRF token its state-changing requests must carry.
    pub csrf: String,
}

/// A new token: the secret (shown once) and the record stored for it.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The bearer secret; not stored anywhere.
    pub secret: String,
    /// What is stored: id, name, role and the secret's hash.
    pub record: TokenRecord,
}

/// Longest token name, in characters.
pub const MAX_TOKEN_NAME: usize = 100;

/// A token's name, trimmed: not empty, at most [`MAX_TOKEN_NAME`] characters, and no control
/// characters (a terminal would act on an escape sequence a listing prints).
pub fn token_name(name: &str) -> Result<&str> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::BadRequest("a token needs a name".to_owned()));
    }
    let chars = name.chars().count();
    if chars > MAX_TOKEN_NAME {
        return Err(Error::BadRequest(format!(
            "a token name has at most {MAX_TOKEN_NAME} characters; this one has {chars}"
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| c.is_control() || vigil_store::decisions::is_invisible(c))
    {
        return Err(Error::BadRequest(format!(
            "a token name cannot hold control characters (or invisible ones); this one holds {}",
            c.escape_default()
        )));
    }
    Ok(name)
}

/// Creates a token of `role` named `name` (checked by [`token_name`]): 32 random bytes from the
/// operating system.
pub fn issue_token(name: &str, role: Role, now_ms: u64) -> Result<IssuedToken> {
    let name = token_name(name)?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::Store(format!("no randomness: {e}")))?;
    let secret = format!("{TOKEN_PREFIX}{}", hex(&bytes));
    let hash = token_hash(&secret);
    let record = TokenRecord {
        id: hash[..12].to_owned(),
        name: name.to_owned(),
        role,
        hash,
        created_ms: now_ms,
        revoked_ms: None,
    };
    Ok(IssuedToken { secret, record })
}

/// SHA-256 of a token, hex: what the store keeps. The token carries 256 random bits, so a fast
/// hash is enough; there is nothing to guess.
pub fn token_hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// Middleware: admits the request when the route table allows the caller.
pub async fn authorize(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> std::result::Result<Response, Error> {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let method = request.method().clone();

    // Paths the router does not know fall through to its 404, which needs no credentials.
    let Some(route) = route else {
        return Ok(next.run(request).await);
    };
    match access_for(&method, &route) {
        Some(Access::Public | Access::Signed | Access::Login | Access::Console) => {
            Ok(next.run(request).await)
        }
        Some(Access::Roles(roles)) => {
            let caller = authenticate(&state, credentials(&request)).await?;
            if let Some(session) = &caller.session {
                crate::console::check_csrf(session, &method, request.headers())?;
            }
            if !roles.contains(&caller.role) {
                return Err(forbidden(caller.role, &method, &route));
            }
            request.extensions_mut().insert(caller);
            Ok(next.run(request).await)
        }
        None => {
            // A known route, another method: 405 with the methods it takes, to callers only.
            authenticate(&state, credentials(&request)).await?;
            let allow: Vec<&str> = ROUTES
                .iter()
                .filter(|r| r.path == route)
                .map(|r| r.method.as_str())
                .collect();
            Err(Error::MethodNotAllowed {
                method: method.to_string(),
                allow: allow.join(", "),
            })
        }
    }
}

fn forbidden(role: Role, method: &Method, route: &str) -> Error {
    Error::Forbidden {
        role: role.as_str(),
        method: method.to_string(),
        route: route.to_owned(),
    }
}

/// The bearer token of a request, when it carries one of ours.
fn bearer(request: &Request) -> Option<String> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| t.starts_with(TOKEN_PREFIX))
        .map(str::to_owned)
}

/// What a request offers as proof of who sent it: a bearer token, a session cookie. Read before
/// any await, as a request (its body) cannot be shared across threads.
type Credentials = (Option<String>, Option<String>);

fn credentials(request: &Request) -> Credentials {
    (
        bearer(request),
        crate::console::session_cookie(request.headers()),
    )
}

/// The caller: by bearer token when the request has one, else by console session cookie.
async fn authenticate(state: &AppState, credentials: Credentials) -> Result<Caller> {
    match credentials {
        (Some(secret), _) => token_caller(state, &secret).await,
        (None, Some(secret)) => crate::console::session_caller(state, &secret).await,
        (None, None) => Err(Error::Unauthorized),
    }
}

async fn token_caller(state: &AppState, secret: &str) -> Result<Caller> {
    let record = state
        .tokens
        .find_by_hash(&token_hash(secret))
        .await?
        .filter(|r| r.revoked_ms.is_none())
        .ok_or(Error::Unauthorized)?;
    Ok(Caller {
        token_id: record.id,
        name: record.name,
        role: record.role,
        session: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_stored_as_hashes() {
        let a = issue_token("a", Role::Admin, 0).unwrap();
        let b = issue_token("b", Role::Admin, 0).unwrap();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with(TOKEN_PREFIX) && a.secret.len() == 4 + 64);
        assert_eq!(a.record.hash, token_hash(&a.secret));
        assert!(!a.record.hash.contains(&a.secret[4..]));
    }

    #[test]
    fn only_health_is_public_and_every_route_is_listed_once() {
        let open = |access: Access| -> Vec<&str> {
            ROUTES
                .iter()
                .filter(|r| r.access == access)
                .map(|r| r.path)
                .collect()
        };
        assert_eq!(open(Access::Public), ["/healthz", "/readyz"]);
        assert_eq!(open(Access::Console), ["/", "/assets/{file}"]);
        assert_eq!(open(Access::Login), ["/api/v1/session"]);
        for (i, r) in ROUTES.iter().enumerate() {
            assert!(
                !ROUTES[..i]
                    .iter()
                    .any(|o| o.method == r.method && o.path == r.path),
                "{} {} listed twice",
                r.method,
                r.path
            );
        }
    }
}
