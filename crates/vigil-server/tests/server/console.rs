//! The console's login: a session cookie opened with a token (HttpOnly, SameSite=Strict), the
//! CSRF token on every state-changing request, the token's role kept, logout, revocation,
//! the rate limit on failed logins, and the console's files with their security headers.

use axum::body::Body;
use axum::http::{Request, StatusCode};

use crate::support::{fixture, send, service, Answer, Service};

async fn login(s: &Service, token: &str) -> Answer {
    let body = serde_json::json!({ "token": token }).to_string();
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/session")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    send(&s.app, req).await
}

/// The session cookie (`vigil_session=...`) and CSRF token of a successful login.
async fn session(s: &Service, role: &str) -> (String, String) {
    let answer = login(s, &s.tokens[role]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let set_cookie = answer.headers["set-cookie"].to_str().unwrap().to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let csrf = answer.json()["csrf_token"].as_str().unwrap().to_owned();
    (cookie, csrf)
}

fn with_cookie(
    method: &str,
    uri: &str,
    cookie: &str,
    csrf: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("cookie", cookie)
        .header("content-type", content_type);
    if let Some(token) = csrf {
        builder = builder.header("x-csrf-token", token);
    }
    builder.body(Body::from(body)).unwrap()
}

#[tokio::test]
async fn login_sets_a_strict_http_only_cookie_and_keeps_the_role() {
    let s = service().await;
    let answer = login(&s, &s.tokens["security"]).await;
    assert_eq!(answer.status, StatusCode::OK);
    let set_cookie = answer.headers["set-cookie"].to_str().unwrap();
    assert!(set_cookie.starts_with("vigil_session=vgs_"), "{set_cookie}");
    for flag in ["; HttpOnly", "; SameSite=Strict", "; Path=/"] {
        assert!(set_cookie.contains(flag), "{set_cookie} lacks {flag}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP here");
    let body = answer.json();
    assert_eq!(body["role"], "security");
    assert_eq!(body["name"], "security");
    assert_eq!(body["csrf_token"].as_str().unwrap().len(), 64);
    assert!(!answer.text().contains(&s.tokens["security"][4..]));

    let (cookie, csrf) = session(&s, "security").await;
    let me = send(
        &s.app,
        with_cookie(
            "GET",
            "/api/v1/session",
            &cookie,
            None,
            "text/plain",
            vec![],
        ),
    )
    .await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["csrf_token"], csrf.as_str());
    let tokens = send(
        &s.app,
        with_cookie("GET", "/api/v1/tokens", &cookie, None, "text/plain", vec![]),
    )
    .await;
    assert_eq!(tokens.status, StatusCode::FORBIDDEN, "security is no admin");
}

#[tokio::test]
async fn state_changes_by_cookie_need_the_csrf_token() {
    let s = service().await;
    let (cookie, csrf) = session(&s, "security").await;
    let doc = fixture("partner-webhooks.md");
    let submit = |token: Option<&str>| {
        with_cookie(
            "POST",
            "/api/v1/artifacts",
            &cookie,
            token,
            "text/markdown",
            doc.clone(),
        )
    };

    for wrong in [None, Some("0000"), Some(&csrf[1..])] {
        let refused = send(&s.app, submit(wrong)).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{wrong:?}");
        assert_eq!(refused.json()["error"]["code"], "csrf_rejected");
    }
    let accepted = send(&s.app, submit(Some(&csrf))).await;
    assert_eq!(accepted.status, StatusCode::CREATED, "{}", accepted.text());

    let findings = send(
        &s.app,
        with_cookie(
            "GET",
            "/api/v1/findings",
            &cookie,
            None,
            "text/plain",
            vec![],
        ),
    )
    .await
    .json();
    let id = findings["items"][0]["id"].as_str().unwrap().to_owned();
    let uri = format!("/api/v1/findings/{id}/triage");
    let change = br#"{"status":"confirmed"}"#.to_vec();
    let triaged = send(
        &s.app,
        with_cookie(
            "POST",
            &uri,
            &cookie,
            Some(&csrf),
            "application/json",
            change.clone(),
        ),
    )
    .await;
    assert_eq!(triaged.status, StatusCode::OK, "{}", triaged.text());
    let review = findings["items"][0]["review_id"].as_str().unwrap();
    let dfd = send(
        &s.app,
        with_cookie(
            "GET",
            &format!("/api/v1/reviews/{review}/dfd"),
            &cookie,
            None,
            "text/plain",
            vec![],
        ),
    )
    .await;
    assert_eq!(dfd.content_type, "image/svg+xml");
    let csp = dfd.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");

    let (dev_cookie, dev_csrf) = session(&s, "developer").await;
    let denied = send(
        &s.app,
        with_cookie(
            "POST",
            &uri,
            &dev_cookie,
            Some(&dev_csrf),
            "application/json",
            change,
        ),
    )
    .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(denied.json()["error"]["code"], "forbidden");

    // Bearer callers are unchanged: no CSRF token asked of them.
    let bearer = Request::builder()
        .method("POST")
        .uri(&uri)
        .header("authorization", format!("Bearer {}", s.tokens["admin"]))
        .header("content-type", "application/json")
        .body(Body::from(r#"{"comment":"seen"}"#))
        .unwrap();
    assert_eq!(send(&s.app, bearer).await.status, StatusCode::OK);
}

#[tokio::test]
async fn logout_and_revocation_end_the_session() {
    let s = service().await;
    let (cookie, csrf) = session(&s, "auditor").await;
    let read = || {
        with_cookie(
            "GET",
            "/api/v1/reviews",
            &cookie,
            None,
            "text/plain",
            vec![],
        )
    };
    assert_eq!(send(&s.app, read()).await.status, StatusCode::OK);

    let no_csrf = with_cookie(
        "DELETE",
        "/api/v1/session",
        &cookie,
        None,
        "text/plain",
        vec![],
    );
    assert_eq!(send(&s.app, no_csrf).await.status, StatusCode::FORBIDDEN);
    let out = with_cookie(
        "DELETE",
        "/api/v1/session",
        &cookie,
        Some(&csrf),
        "text/plain",
        vec![],
    );
    let out = send(&s.app, out).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(out.headers["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(send(&s.app, read()).await.status, StatusCode::UNAUTHORIZED);

    let (cookie, _) = session(&s, "auditor").await;
    let auditor = s
        .state
        .tokens
        .find_by_hash(&vigil_server::auth::token_hash(&s.tokens["auditor"]))
        .await
        .unwrap()
        .unwrap();
    s.state.tokens.revoke(&auditor.id, 2).await.unwrap();
    let after = with_cookie(
        "GET",
        "/api/v1/reviews",
        &cookie,
        None,
        "text/plain",
        vec![],
    );
    assert_eq!(send(&s.app, after).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn failed_logins_are_rate_limited() {
    let s = service().await;
    for _ in 0..5 {
        let wrong = login(&s, "vgl_0000").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert!(wrong.headers.get("set-cookie").is_none());
    }
    let limited = login(&s, &s.tokens["admin"]).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.json()["error"]["code"], "too_many_logins");
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(limited.headers.get("set-cookie").is_none());
}

#[tokio::test]
async fn the_console_is_served_with_a_strict_policy() {
    let s = service().await;
    let get = |uri: &str| Request::builder().uri(uri).body(Body::empty()).unwrap();
    let page = send(&s.app, get("/")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    assert!(page.text().contains("/assets/app.js"));

    for (file, content_type) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let answer = send(&s.app, get(&format!("/assets/{file}"))).await;
        assert_eq!(answer.status, StatusCode::OK, "{file}");
        assert_eq!(answer.content_type, content_type);
    }
    let missing = send(&s.app, get("/assets/../Cargo.toml")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let missing = send(&s.app, get("/assets/secrets.txt")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}
