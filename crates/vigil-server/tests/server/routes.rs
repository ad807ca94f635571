//! Every route of the router, walked: only health and the console's own files answer without
//! credentials, a token of a role the route does not admit gets 403, and the route table matches
//! the OpenAPI document.

use std::collections::BTreeSet;

use axum::http::StatusCode;

use vigil_server::auth::{Access, ROUTES};
use vigil_server::Role;

use crate::support::{request, send, service};

fn concrete(path: &str) -> String {
    path.replace("{tool}", "github")
        .replace("{connector}", "gh")
        .replace("{id}", "1")
        .replace("{version}", "1")
        .replace("{file}", "app.js")
}

/// Health aside, only the console's page and static files answer without credentials: they are
/// the same for every visitor, hold no data (the page fetches everything through the API, with
/// the session), and a browser must load them before anyone can log in. The login route takes
/// a token in its body and opens nothing without a valid one.
#[tokio::test]
async fn only_health_and_the_console_files_answer_without_credentials() {
    let s = service().await;
    for route in ROUTES {
        let uri = concrete(route.path);
        let method = route.method.as_str();
        let body = if method == "POST" {
            b"{}".to_vec()
        } else {
            Vec::new()
        };

        let anonymous = send(&s.app, request(method, &uri, None, body.clone())).await;
        let forged = send(&s.app, request(method, &uri, Some("vgl_00"), body.clone())).await;
        match route.access {
            Access::Public => {
                assert_eq!(anonymous.status, StatusCode::OK, "{method} {uri}");
            }
            Access::Console => {
                assert_eq!(anonymous.status, StatusCode::OK, "{method} {uri}");
                assert!(anonymous.headers.get("set-cookie").is_none());
            }
            Access::Login => {
                for answer in [&anonymous, &forged] {
                    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{method} {uri}");
                    assert!(answer.headers.get("set-cookie").is_none());
                }
            }
            Access::Signed => {
                assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
                assert_eq!(anonymous.json()["error"]["code"], "webhook_unverified");
            }
            Access::Roles(_) => {
                for answer in [&anonymous, &forged] {
                    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
                    assert_eq!(answer.json()["error"]["code"], "unauthorized");
                }
            }
        }
    }
}

#[tokio::test]
async fn each_role_reaches_only_its_routes() {
    let s = service().await;
    for route in ROUTES {
        let Access::Roles(allowed) = route.access else {
            continue;
        };
        let uri = concrete(route.path);
        let method = route.method.as_str();
        for role in Role::ALL {
            let token = &s.tokens[role.as_str()];
            let body = if method == "POST" {
                b"{}".to_vec()
            } else {
                Vec::new()
            };
            let answer = send(&s.app, request(method, &uri, Some(token), body)).await;
            if allowed.contains(&role) {
                assert!(
                    answer.status != StatusCode::FORBIDDEN
                        && answer.status != StatusCode::UNAUTHORIZED,
                    "{} should reach {method} {uri}, got {}",
                    role.as_str(),
                    answer.status
                );
            } else {
                assert_eq!(
                    answer.status,
                    StatusCode::FORBIDDEN,
                    "{} must not reach {method} {uri}",
                    role.as_str()
                );
                assert_eq!(answer.json()["error"]["code"], "forbidden");
            }
        }
    }
}

#[tokio::test]
async fn route_table_and_openapi_document_agree() {
    let s = service().await;
    let admin = &s.tokens["admin"];
    let doc = send(
        &s.app,
        request("GET", "/api/openapi.json", Some(admin), Vec::new()),
    )
    .await
    .json();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let table: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect();
    assert_eq!(documented, table);
}

#[tokio::test]
async fn unknown_paths_and_revoked_tokens() {
    let s = service().await;
    let admin = s.tokens["admin"].clone();
    let missing = send(
        &s.app,
        request("GET", "/api/v1/nothing", Some(&admin), Vec::new()),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["error"]["code"], "not_found");
    assert!(
        missing.text().contains("/api/v1/nothing"),
        "{}",
        missing.text()
    );

    // Token names are checked as the command line checks them.
    for name in [
        "\u{1b}[31mred".to_owned(),
        "n".repeat(101),
        "x\u{202e}y".to_owned(),
    ] {
        let body = serde_json::to_vec(&serde_json::json!({"name": name, "role": "auditor"}));
        let bad = send(
            &s.app,
            request("POST", "/api/v1/tokens", Some(&admin), body.unwrap()),
        )
        .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text());
    }

    // A known route with another method: 405 naming the methods it takes.
    let put = send(
        &s.app,
        request("PUT", "/api/v1/findings", Some(&admin), Vec::new()),
    )
    .await;
    assert_eq!(put.status, StatusCode::METHOD_NOT_ALLOWED, "{}", put.text());
    assert_eq!(put.headers["allow"], "GET");
    // Path values that do not parse are answered in the service's JSON form.
    for uri in [
        "/api/v1/inbox/abc/retry",
        "/api/v1/artifacts/x/versions/abc",
    ] {
        let method = if uri.ends_with("retry") {
            "POST"
        } else {
            "GET"
        };
        let bad = send(&s.app, request(method, uri, Some(&admin), Vec::new())).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{uri}: {}", bad.text());
        assert_eq!(bad.json()["error"]["code"], "bad_request", "{uri}");
    }

    let listed = send(
        &s.app,
        request("GET", "/api/v1/tokens", Some(&admin), Vec::new()),
    )
    .await
    .json();
    let auditor_id = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["role"] == "auditor")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!listed.to_string().contains(&s.tokens["auditor"][4..]));
    let uri = format!("/api/v1/tokens/{auditor_id}");
    let revoked = send(&s.app, request("DELETE", &uri, Some(&admin), Vec::new())).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let auditor = &s.tokens["auditor"];
    let denied = send(
        &s.app,
        request("GET", "/api/v1/reviews", Some(auditor), Vec::new()),
    )
    .await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
}
