//! The webhook inbox: verified events are stored once and processed; everything else gets a 4xx
//! and leaves nothing behind.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use http_body::Frame;

use vigil_server::store::EventStatus;

use crate::support::{
    fixture, github_hook, github_signature, send, service, wait_processed, SECRET,
};

#[tokio::test]
async fn a_signed_event_is_stored_once_and_analysed() {
    let s = service().await;
    let body = fixture("github-issue-opened.json");

    let first = send(&s.app, github_hook("d-1", &body)).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text());
    assert_eq!(first.json()["duplicate"], false);
    let again = send(&s.app, github_hook("d-1", &body)).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.json()["duplicate"], true);
    assert_eq!(again.json()["id"], first.json()["id"]);
    // The same event through a second hook arrives with a new delivery id: the inbox keeps it,
    // and analysis, keyed on content, yields the same review.
    let copy = send(&s.app, github_hook("d-2", &body)).await;
    assert_eq!(copy.json()["duplicate"], false);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let workers = vigil_server::worker::spawn_workers(s.state.clone(), 1, stop_rx);
    wait_processed(&s.state, 2).await;
    stop_tx.send(true).unwrap();
    for w in workers {
        w.await.unwrap();
    }

    let done = s.state.inbox.list(EventStatus::Done, 10).await.unwrap();
    assert_eq!(done.len(), 2);
    assert_eq!(
        done[0].outcome, done[1].outcome,
        "same content, same review"
    );
    let reviews = s.state.reviews.reviews(0, 10).await.unwrap();
    assert_eq!(reviews.total, 1);
    assert!(!reviews.items[0].review.findings.is_empty());
}

fn assert_nothing_stored(depth: vigil_server::store::QueueDepth) {
    assert_eq!(
        depth,
        vigil_server::store::QueueDepth::default(),
        "something was stored"
    );
}

#[tokio::test]
async fn bad_signatures_types_sizes_and_json_leave_nothing_behind() {
    let s = service().await;
    let body = fixture("github-issue-opened.json");

    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let bad_sig = Request::builder()
        .method("POST")
        .uri("/hooks/github/gh")
        .header("content-type", "application/json")
        .header("x-github-delivery", "x")
        .header("x-hub-signature-256", github_signature(SECRET, &body))
        .body(Body::from(tampered))
        .unwrap();
    let wrong_secret = Request::builder()
        .method("POST")
        .uri("/hooks/github/gh")
        .header("content-type", "application/json")
        .header("x-hub-signature-256", github_signature("guess", &body))
        .body(Body::from(body.clone()))
        .unwrap();
    let form = Request::builder()
        .method("POST")
        .uri("/hooks/github/gh")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-hub-signature-256", github_signature(SECRET, &body))
        .body(Body::from(body.clone()))
        .unwrap();
    let malformed = b"{\"action\": \"opened\", ".to_vec();
    let oversized = vec![b' '; 65 * 1024];
    let unknown = Request::builder()
        .method("POST")
        .uri("/hooks/github/nobody")
        .header("content-type", "application/json")
        .body(Body::from(body.clone()))
        .unwrap();
    let wrong_tool = Request::builder()
        .method("POST")
        .uri("/hooks/jira/gh")
        .header("content-type", "application/json")
        .body(Body::from(body.clone()))
        .unwrap();

    let cases = [
        (bad_sig, 401, "webhook_unverified"),
        (wrong_secret, 401, "webhook_unverified"),
        (form, 415, "unsupported_media_type"),
        (github_hook("m", &malformed), 400, "invalid_json"),
        (github_hook("o", &oversized), 413, "payload_too_large"),
        (unknown, 404, "unknown_connector"),
        (wrong_tool, 404, "unknown_connector"),
    ];
    for (req, status, code) in cases {
        let answer = send(&s.app, req).await;
        assert_eq!(answer.status.as_u16(), status, "{}", answer.text());
        assert_eq!(answer.json()["error"]["code"], code);
    }
    assert_nothing_stored(s.state.inbox.depth().await.unwrap());
}

#[tokio::test]
async fn chunked_bodies_over_the_limit_are_refused() {
    let s = service().await;
    let chunks = (0..20).map(|_| Bytes::from(vec![b' '; 4096])).collect();
    let req = Request::builder()
        .method("POST")
        .uri("/hooks/github/gh")
        .header("content-type", "application/json")
        .body(Body::new(Chunks(chunks)))
        .unwrap();
    let answer = send(&s.app, req).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_nothing_stored(s.state.inbox.depth().await.unwrap());
}

#[tokio::test]
async fn a_body_that_stalls_is_answered_408_and_frees_its_place() {
    let s = crate::support::service_with(|c| {
        c.body_timeout_secs = 1;
        c.intake_in_flight = 1;
    })
    .await;
    let stalled = || {
        Request::builder()
            .method("POST")
            .uri("/hooks/github/gh")
            .header("content-type", "application/json")
            .header("content-length", "1000")
            .body(Body::new(Stalls(Some(Bytes::from_static(b"{\"action\"")))))
            .unwrap()
    };
    let started = std::time::Instant::now();
    let answer = send(&s.app, stalled()).await;
    assert_eq!(
        answer.status,
        StatusCode::REQUEST_TIMEOUT,
        "{}",
        answer.text()
    );
    assert_eq!(answer.json()["error"]["code"], "request_timeout");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // The only place was given back: a second stalled sender is timed out the same way, not
    // refused as busy.
    assert_eq!(
        send(&s.app, stalled()).await.status,
        StatusCode::REQUEST_TIMEOUT
    );
    assert_nothing_stored(s.state.inbox.depth().await.unwrap());
}

/// A body that sends its first bytes and then nothing more, ever.
struct Stalls(Option<Bytes>);

impl http_body::Body for Stalls {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.0.take() {
            Some(first) => Poll::Ready(Some(Ok(Frame::data(first)))),
            None => Poll::Pending,
        }
    }
}

/// A body of several chunks with no announced length.
struct Chunks(Vec<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.pop().map(|b| Ok(Frame::data(b))))
    }
}
