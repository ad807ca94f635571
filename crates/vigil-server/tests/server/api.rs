//! API v1: submit an artifact, read its review and findings with filters, triage, diagrams,
//! exports, the OpenAPI document, its reference page, and metrics.

use axum::body::Body;
use axum::http::{Request, StatusCode};

use crate::support::{fixture, request, send, service};

async fn submit(s: &crate::support::Service, token: &str) -> serde_json::Value {
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/artifacts")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "text/markdown")
        .body(Body::from(fixture("partner-webhooks.md")))
        .unwrap();
    let answer = send(&s.app, req).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    answer.json()
}

#[tokio::test]
async fn submit_read_filter_triage_and_export() {
    let s = service().await;
    let dev = s.tokens["developer"].clone();
    let sec = s.tokens["security"].clone();

    let submitted = submit(&s, &s.tokens["connector"]).await;
    let review = &submitted["reviews"][0];
    let id = review["id"].as_str().unwrap().to_owned();
    assert!(review["findings"].as_u64().unwrap() > 0);
    let again = submit(&s, &dev).await;
    assert_eq!(
        again["reviews"][0]["id"], review["id"],
        "same content, same review"
    );

    let detail = send(
        &s.app,
        request("GET", &format!("/api/v1/reviews/{id}"), Some(&dev), vec![]),
    )
    .await
    .json();
    assert_eq!(detail["id"], id);
    assert!(detail["review"]["dfd"]["nodes"].as_array().unwrap().len() > 1);
    let list = send(
        &s.app,
        request("GET", "/api/v1/reviews?limit=5", Some(&dev), vec![]),
    )
    .await
    .json();
    assert_eq!(list["total"], 1);

    let all = send(
        &s.app,
        request("GET", "/api/v1/findings", Some(&dev), vec![]),
    )
    .await
    .json();
    let total = all["total"].as_u64().unwrap();
    let scores: Vec<f64> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "sorted by score");
    let first = all["items"][0].clone();
    let severity = first["severity"].as_str().unwrap();
    let by_severity = send(
        &s.app,
        request(
            "GET",
            &format!("/api/v1/findings?severity={severity}&limit=1"),
            Some(&dev),
            vec![],
        ),
    )
    .await
    .json();
    assert_eq!(by_severity["items"].as_array().unwrap().len(), 1);
    assert!(by_severity["total"].as_u64().unwrap() <= total);
    let by_cwe = send(
        &s.app,
        request("GET", "/api/v1/findings?framework=cwe", Some(&dev), vec![]),
    )
    .await
    .json();
    assert!(by_cwe["total"].as_u64().unwrap() > 0);
    // The framework filter agrees with the findings' own mappings, in score order.
    let every = send(
        &s.app,
        request("GET", "/api/v1/findings?limit=500", Some(&dev), vec![]),
    )
    .await
    .json();
    let with_cwe: Vec<&serde_json::Value> = every["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["finding"]["cwe"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
        })
        .map(|f| &f["id"])
        .collect();
    let cwe_page = send(
        &s.app,
        request(
            "GET",
            "/api/v1/findings?framework=cwe&limit=500",
            Some(&dev),
            vec![],
        ),
    )
    .await
    .json();
    let listed: Vec<&serde_json::Value> = cwe_page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["id"])
        .collect();
    assert_eq!(listed, with_cwe);
    assert_eq!(cwe_page["total"].as_u64().unwrap() as usize, with_cwe.len());
    let bad = send(
        &s.app,
        request("GET", "/api/v1/findings?severity=dire", Some(&dev), vec![]),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let unknown = send(
        &s.app,
        request("GET", "/api/v1/findings?colour=red", Some(&dev), vec![]),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);

    let fid = first["id"].as_str().unwrap();
    let change =
        br#"{"status":"false_positive","assignee":"ana","comment":"compensating control"}"#;
    let uri = format!("/api/v1/findings/{fid}/triage");
    let denied = send(&s.app, request("POST", &uri, Some(&dev), change.to_vec())).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let triaged = send(&s.app, request("POST", &uri, Some(&sec), change.to_vec())).await;
    assert_eq!(triaged.status, StatusCode::OK, "{}", triaged.text());
    assert_eq!(triaged.json()["comments"][0]["author"], "security");
    let malformed = send(
        &s.app,
        request("POST", &uri, Some(&sec), b"{\"status\":".to_vec()),
    )
    .await;
    assert_eq!(malformed.json()["error"]["code"], "invalid_json");
    // Accepting a risk needs its terms: triage refuses it and points to decisions.
    let bare = br#"{"status":"risk_accepted"}"#.to_vec();
    let refused = send(&s.app, request("POST", &uri, Some(&sec), bare)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.text().contains("/api/v1/decisions"),
        "{}",
        refused.text()
    );
    let long = serde_json::to_vec(&serde_json::json!({"comment": "x".repeat(10_001)})).unwrap();
    let refused = send(&s.app, request("POST", &uri, Some(&sec), long)).await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{}",
        refused.text()
    );
    let count_only = send(
        &s.app,
        request("GET", "/api/v1/findings?limit=0", Some(&dev), vec![]),
    )
    .await
    .json();
    assert_eq!(count_only["total"].as_u64(), Some(total));
    assert_eq!(count_only["items"].as_array().map(Vec::len), Some(0));
    let accepted = send(
        &s.app,
        request(
            "GET",
            "/api/v1/findings?status=false_positive",
            Some(&dev),
            vec![],
        ),
    )
    .await
    .json();
    assert_eq!(accepted["total"], 1);
    assert_eq!(accepted["items"][0]["state"]["assignee"], "ana");
    // A framework filter by one id, combined with the triaged status, finds the finding.
    let cwe = &first["finding"]["cwe"][0];
    assert!(cwe.is_u64(), "the top finding cites a CWE: {first}");
    let by_id = send(
        &s.app,
        request(
            "GET",
            &format!("/api/v1/findings?framework=CWE-{cwe}&status=false_positive"),
            Some(&dev),
            vec![],
        ),
    )
    .await
    .json();
    assert_eq!(by_id["total"], 1, "{by_id}");
    assert_eq!(by_id["items"][0]["id"], first["id"]);

    let svg = send(
        &s.app,
        request(
            "GET",
            &format!("/api/v1/reviews/{id}/dfd"),
            Some(&dev),
            vec![],
        ),
    )
    .await;
    assert_eq!(svg.content_type, "image/svg+xml");
    assert!(svg.text().starts_with("<svg") || svg.text().contains("<svg"));
    let mermaid = send(
        &s.app,
        request(
            "GET",
            &format!("/api/v1/reviews/{id}/dfd?format=mermaid"),
            Some(&dev),
            vec![],
        ),
    )
    .await;
    assert!(mermaid.text().contains("flowchart"));

    let csv = send(
        &s.app,
        request(
            "GET",
            "/api/v1/findings/export?format=csv",
            Some(&dev),
            vec![],
        ),
    )
    .await;
    assert!(csv.content_type.starts_with("text/csv"));
    assert_eq!(csv.text().lines().count() as u64, total + 1);
    assert!(csv.text().contains("\"false_positive\""));
    let sarif = send(
        &s.app,
        request(
            "GET",
            &format!("/api/v1/reviews/{id}/export?format=sarif"),
            Some(&dev),
            vec![],
        ),
    )
    .await;
    let sarif: serde_json::Value = serde_json::from_slice(&sarif.body).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let json = send(
        &s.app,
        request(
            "GET",
            "/api/v1/findings/export?severity=critical",
            Some(&dev),
            vec![],
        ),
    )
    .await
    .json();
    assert!(json.is_array());
}

#[tokio::test]
async fn unreadable_artifacts_and_missing_objects() {
    let s = service().await;
    let dev = s.tokens["developer"].clone();
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/artifacts")
        .header("authorization", format!("Bearer {dev}"))
        .body(Body::from(vec![0u8, 159, 146, 150]))
        .unwrap();
    let answer = send(&s.app, req).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.json()["error"]["code"], "artifact_unprocessable");
    let missing = send(
        &s.app,
        request("GET", "/api/v1/reviews/nope", Some(&dev), vec![]),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn openapi_reference_health_and_metrics() {
    let s = service().await;
    let auditor = s.tokens["auditor"].clone();
    let doc = send(
        &s.app,
        request("GET", "/api/openapi.json", Some(&auditor), vec![]),
    )
    .await
    .json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let page = send(&s.app, request("GET", "/api/docs", Some(&auditor), vec![])).await;
    assert!(page.content_type.starts_with("text/html"));
    let html = page.text();
    assert!(html.contains("/api/v1/findings/{id}/triage"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external assets"
    );

    assert_eq!(
        send(&s.app, request("GET", "/healthz", None, vec![]))
            .await
            .text(),
        "ok"
    );
    s.state
        .ready
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let not_ready = send(&s.app, request("GET", "/readyz", None, vec![])).await;
    assert_eq!(not_ready.status, StatusCode::SERVICE_UNAVAILABLE);

    let metrics = send(&s.app, request("GET", "/metrics", Some(&auditor), vec![])).await;
    assert_eq!(metrics.headers["cache-control"], "no-store");
    let text = metrics.text();
    assert!(text.contains(
        "vigil_http_requests_total{method=\"GET\",route=\"/api/docs\",status=\"200\"} 1"
    ));
    assert!(text.contains("vigil_inbox_events{status=\"pending\"} 0"));
    assert!(text.contains("# TYPE vigil_model_tokens_total counter"));
    assert!(text.contains("vigil_model_tokens_total{kind=\"generated\"}"));
}

#[tokio::test]
async fn version_numbers_in_queries_are_read_as_numbers() {
    let s = service().await;
    let admin = s.tokens["admin"].clone();
    submit(&s, &admin).await;
    let changed = String::from_utf8(fixture("partner-webhooks.md"))
        .unwrap()
        .replace("HMAC", "a shared password");
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/artifacts")
        .header("authorization", format!("Bearer {admin}"))
        .body(Body::from(changed))
        .unwrap();
    let second = send(&s.app, req).await.json();
    let id = second["reviews"][0]["id"].as_str().unwrap().to_owned();

    let diff = send(
        &s.app,
        request(
            "GET",
            &format!("/api/v1/reviews/{id}/diff?from=1&to=2"),
            Some(&admin),
            vec![],
        ),
    )
    .await;
    assert_eq!(diff.status, StatusCode::OK, "{}", diff.text());
    assert_eq!(
        (diff.json()["from"].clone(), diff.json()["to"].clone()),
        (1.into(), 2.into())
    );
    let dashboard = send(
        &s.app,
        request("GET", "/api/v1/dashboard?weeks=4", Some(&admin), vec![]),
    )
    .await;
    assert_eq!(dashboard.status, StatusCode::OK, "{}", dashboard.text());
    assert_eq!(dashboard.json()["weeks"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn documents_are_named_by_the_name_given_or_by_their_title() {
    let s = service().await;
    let admin = s.tokens["admin"].clone();
    let post = |uri: &str, body: String| {
        Request::builder()
            .method("POST")
            .uri(uri)
            .header("authorization", format!("Bearer {admin}"))
            .body(Body::from(body))
            .unwrap()
    };
    let design = String::from_utf8(fixture("partner-webhooks.md")).unwrap();
    let other =
        "# Payroll export\n\nThe payroll service sends salary files to the bank over SFTP.\n";

    // Unnamed documents: one artifact per title; an edit under the same title is a new version.
    let first = send(&s.app, post("/api/v1/artifacts", design.clone()))
        .await
        .json();
    let second = send(&s.app, post("/api/v1/artifacts", other.to_owned()))
        .await
        .json();
    let edited = send(
        &s.app,
        post(
            "/api/v1/artifacts",
            design.replace("HMAC", "a shared password"),
        ),
    )
    .await
    .json();
    let a = first["reviews"][0]["artifact"].as_str().unwrap().to_owned();
    let b = second["reviews"][0]["artifact"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        a.starts_with("doc-") && b == "doc-payroll-export",
        "{a} {b}"
    );
    assert_ne!(a, b);
    assert_eq!(edited["reviews"][0]["artifact"], a.as_str());
    let versions = send(
        &s.app,
        request(
            "GET",
            &format!("/api/v1/artifacts/{a}/versions"),
            Some(&admin),
            vec![],
        ),
    )
    .await
    .json();
    assert_eq!(versions.as_array().map(Vec::len), Some(2), "{versions}");

    // A name given: its stem is the id, as the command line names files.
    let named = send(
        &s.app,
        post(
            "/api/v1/artifacts?name=designs/payroll-export.md",
            other.to_owned(),
        ),
    )
    .await;
    assert_eq!(named.status, StatusCode::CREATED, "{}", named.text());
    assert_eq!(named.json()["reviews"][0]["artifact"], "payroll-export");
    let bad = send(
        &s.app,
        post("/api/v1/artifacts?name=%1B%5B31m", other.to_owned()),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text());
    let listed = send(
        &s.app,
        request("GET", "/api/v1/artifacts", Some(&admin), vec![]),
    )
    .await;
    assert_eq!(listed.json()["total"], 3, "{}", listed.text());

    // Untitled documents are told apart by their content, and titled by their first line.
    let u1 = send(
        &s.app,
        post("/api/v1/artifacts", "the mobile app uploads photos".into()),
    )
    .await;
    let u2 = send(
        &s.app,
        post(
            "/api/v1/artifacts",
            "the billing worker reads invoices".into(),
        ),
    )
    .await;
    let (u1, u2) = (u1.json(), u2.json());
    assert_ne!(
        u1["reviews"][0]["artifact"], u2["reviews"][0]["artifact"],
        "{u1} {u2}"
    );
    assert_eq!(u1["reviews"][0]["title"], "the mobile app uploads photos");

    // A name cannot turn a ticket into a document.
    let ticket = r#"{"key": "QS-1187", "fields": {"summary": "Checkout card storage",
        "description": "The checkout API stores card numbers in the orders database.",
        "issuetype": {"name": "Story"}}}"#;
    let t = send(&s.app, post("/api/v1/artifacts", ticket.to_owned())).await;
    assert_eq!(t.status, StatusCode::CREATED, "{}", t.text());
    let key = t.json()["reviews"][0]["artifact"]
        .as_str()
        .unwrap()
        .to_owned();
    let taken = send(
        &s.app,
        post(
            &format!("/api/v1/artifacts?name={key}.md"),
            other.to_owned(),
        ),
    )
    .await;
    assert_eq!(
        taken.status,
        StatusCode::CONFLICT,
        "{key}: {}",
        taken.text()
    );
}
