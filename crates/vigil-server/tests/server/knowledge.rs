//! API v1 over what the service remembers, on the SQLite store: artifacts and versions, review
//! versions and diffs, decisions (and memory applying them to the next review), finding
//! history, search, guidance and the dashboard.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};

use crate::support::{fixture, request, send, service, Service};

async fn submit(s: &Service, text: &str) -> Value {
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/artifacts")
        .header("authorization", format!("Bearer {}", s.tokens["security"]))
        .header("content-type", "text/markdown")
        .body(Body::from(text.to_owned()))
        .unwrap();
    let answer = send(&s.app, req).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    answer.json()["reviews"][0].clone()
}

async fn get(s: &Service, uri: &str) -> Value {
    let answer = send(
        &s.app,
        request("GET", uri, Some(&s.tokens["developer"]), vec![]),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{uri}: {}", answer.text());
    answer.json()
}

async fn post(s: &Service, uri: &str, body: Value) -> (StatusCode, Value) {
    let bytes = serde_json::to_vec(&body).unwrap();
    let answer = send(
        &s.app,
        request("POST", uri, Some(&s.tokens["security"]), bytes),
    )
    .await;
    (answer.status, answer.json())
}

/// Percent-encodes everything but letters, digits, `-`, `_` and `.`.
fn encode(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn design() -> String {
    String::from_utf8(fixture("partner-webhooks.md")).unwrap()
}

#[tokio::test]
async fn artifacts_versions_and_diffs() {
    let s = service().await;
    let first = submit(&s, &design()).await;
    let second = submit(&s, &design().replace("HMAC", "a shared password")).await;
    assert_ne!(first["id"], second["id"]);
    let artifact = first["artifact"].as_str().unwrap();

    let list = get(&s, "/api/v1/artifacts?tool=markdown").await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["review_id"], second["id"]);
    let detail = get(&s, &format!("/api/v1/artifacts/{}", encode(artifact))).await;
    assert_eq!(detail["latest_version"], 2);
    assert_eq!(detail["versions"].as_array().unwrap().len(), 2);
    let v1 = get(
        &s,
        &format!("/api/v1/artifacts/{}/versions/1", encode(artifact)),
    )
    .await;
    assert!(v1["text"].as_str().unwrap().contains("HMAC"));

    let id = second["id"].as_str().unwrap();
    let versions = get(&s, &format!("/api/v1/reviews/{id}/versions")).await;
    assert_eq!(versions.as_array().unwrap().len(), 2);
    assert_eq!(versions[1]["review_id"], second["id"]);
    let diff = get(&s, &format!("/api/v1/reviews/{id}/diff?from=1&to=2")).await;
    let changes: Vec<&str> = diff["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["change"].as_str().unwrap())
        .collect();
    assert!(changes.contains(&"unchanged"), "{changes:?}");
    let missing = send(
        &s.app,
        request(
            "GET",
            &format!("/api/v1/reviews/{id}/diff?from=1&to=9"),
            Some(&s.tokens["developer"]),
            vec![],
        ),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn decisions_set_status_history_and_apply_to_the_next_review() {
    let s = service().await;
    submit(&s, &design()).await;
    let findings = get(&s, "/api/v1/findings?limit=500").await;
    let items = findings["items"].as_array().unwrap();
    let (fp, other) = (&items[0], &items[1]);
    let fp_id = fp["id"].as_str().unwrap();

    let (status, _) = post(
        &s,
        "/api/v1/decisions",
        json!({"kind": "risk_accepted", "scope": "finding", "fingerprint": fp_id,
               "rationale": "partner contract caps exposure", "owner": "ana"}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "an acceptance needs an approver"
    );
    for (terms, why) in [
        (
            json!({"owner": "ana", "approver": "ciso", "expires_on": "2020-01-01"}),
            "past",
        ),
        (
            json!({"owner": "ana", "approver": "ciso", "expires_on": "2027-13-45"}),
            "no date",
        ),
        (
            json!({"owner": "ana", "approver": " Ana ", "expires_on": "2999-12-31"}),
            "self-approved",
        ),
        (
            json!({"owner": "ana", "approver": "ana\u{200b}", "expires_on": "2999-12-31"}),
            "self-approved behind a zero-width space",
        ),
    ] {
        let mut body = json!({"kind": "risk_accepted", "scope": "finding", "fingerprint": fp_id,
               "rationale": "partner contract caps exposure"});
        body.as_object_mut()
            .unwrap()
            .extend(terms.as_object().unwrap().clone());
        let (status, answer) = post(&s, "/api/v1/decisions", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{why}: {answer}");
    }
    let (status, recorded) = post(
        &s,
        "/api/v1/decisions",
        json!({"kind": "false_positive", "scope": "finding", "fingerprint": fp_id,
               "rationale": "the gateway already strips it"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{recorded}");
    assert_eq!(recorded["finding_state"]["status"], "false_positive");
    let decision_id = recorded["decision"]["id"].as_str().unwrap();
    assert_eq!(recorded["decision"]["rule"], fp["rule"]);

    let history = get(&s, &format!("/api/v1/findings/{fp_id}/history")).await;
    let events: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["new", "status"]);
    let listed = get(&s, "/api/v1/decisions?kind=false_positive&state=active").await;
    assert_eq!(listed["total"], 1);
    let one = get(&s, &format!("/api/v1/decisions/{decision_id}")).await;
    assert_eq!(one["kind"], "false_positive");

    // A risk acceptance of one rule on one component applies to the next version's finding.
    let (status, _) = post(
        &s,
        "/api/v1/decisions",
        json!({"kind": "risk_accepted", "scope": "rule_on_component",
               "rule": other["rule"], "component": other["finding"]["element_name"],
               "rationale": "accepted for the pilot", "owner": "ana", "approver": "ciso",
               "expires_on": "2999-12-31"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    submit(&s, &format!("{}\n\nOne more paragraph.\n", design())).await;
    let later = get(
        &s,
        &format!("/api/v1/findings/{}", other["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(later["state"]["status"], "risk_accepted", "{later}");
    assert_eq!(later["recall"]["disposition"], "accepted");
}

#[tokio::test]
async fn search_guidance_and_dashboard() {
    let s = service().await;
    submit(&s, &design()).await;

    let found = get(&s, "/api/v1/search?q=partner%20webhooks&tool=markdown").await;
    assert!(!found["chunks"].as_array().unwrap().is_empty(), "{found}");

    // The filters narrow findings and decisions as they narrow passages.
    let findings = get(&s, "/api/v1/findings?limit=1").await;
    let title = findings["items"][0]["finding"]["title"].as_str().unwrap();
    let words: String = title
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (status, _) = post(
        &s,
        "/api/v1/decisions",
        json!({"kind": "approved_pattern", "scope": "pattern", "team": "identity",
               "rationale": format!("{title}: calls between services use mTLS through the mesh")}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let count = |hits: &serde_json::Value, kind: &str| hits[kind].as_array().unwrap().len();
    let all = get(&s, &format!("/api/v1/search?q={words}")).await;
    assert!(
        count(&all, "findings") > 0 && count(&all, "decisions") == 1,
        "{all}"
    );
    let markdown = get(&s, &format!("/api/v1/search?q={words}&tool=markdown")).await;
    assert!(count(&markdown, "findings") > 0, "{markdown}");
    let jira = get(&s, &format!("/api/v1/search?q={words}&tool=jira")).await;
    assert_eq!(
        (count(&jira, "chunks"), count(&jira, "findings")),
        (0, 0),
        "{jira}"
    );
    assert_eq!(
        count(&jira, "decisions"),
        1,
        "a decision naming no tool holds for all"
    );
    let payments = get(&s, &format!("/api/v1/search?q={words}&team=payments")).await;
    assert_eq!(count(&payments, "decisions"), 0, "{payments}");
    assert_eq!(count(&payments, "findings"), 0, "the design names no team");
    let identity = get(&s, &format!("/api/v1/search?q={words}&team=identity")).await;
    assert_eq!(count(&identity, "decisions"), 1, "{identity}");
    let future = get(&s, &format!("/api/v1/search?q={words}&since=2999-01-01")).await;
    assert_eq!(
        (count(&future, "findings"), count(&future, "decisions")),
        (0, 0),
        "{future}"
    );
    let (status, _) = post(&s, "/api/v1/guidance", json!({"task": " "})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, guidance) = post(&s, "/api/v1/guidance", json!({"task": design()})).await;
    assert_eq!(status, StatusCode::OK);
    let requirements = guidance["requirements"].as_array().unwrap();
    assert!(!requirements.is_empty());
    assert!(requirements
        .iter()
        .all(|r| r["rule"].as_str().unwrap().starts_with("VGL-")));

    let dashboard = get(&s, "/api/v1/dashboard?weeks=4").await;
    assert_eq!(
        (
            dashboard["artifacts"].as_u64(),
            dashboard["reviewed"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(dashboard["coverage"], 1.0);
    let open: u64 = dashboard["open_by_severity"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(open > 0);
    assert_eq!(dashboard["weeks"].as_array().unwrap().len(), 4);
    assert_eq!(dashboard["weeks"][3]["raised"].as_u64(), Some(open));
}
