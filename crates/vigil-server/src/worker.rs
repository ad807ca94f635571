//! The worker pool draining the webhook inbox: each worker claims the oldest due event, maps it
//! to an artifact (vigil-connectors), analyses it and stores the review (memory is consulted
//! first, by the review store), then marks the event done. Store failures are retried with exponential backoff; an event that cannot be mapped or
//! analysed, or that fails every attempt, goes to the dead-letter list.
//!
//! Processing is idempotent: a review's id is derived from the artifact and its content, and
//! storing an existing review changes nothing, so an event processed again after a crash (claimed
//! but not marked done) has the same effect as once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use vigil_connectors::{map_event, EventMapping, Tool};

use crate::app::{analyse, now_ms, review_id, AppState};
use crate::store::{InboxEvent, StoredReview};

/// How often an idle worker looks for due retries.
const IDLE_POLL: Duration = Duration::from_millis(500);

/// Why processing an event failed.
enum Failure {
    /// Worth another attempt (the store failed).
    Transient(String),
    /// Will fail the same way every time (unknown tool, unreadable payload).
    Permanent(String),
}

/// Starts `count` workers; they stop claiming when `stop` turns true and finish what they hold.
pub fn spawn_workers(
    state: Arc<AppState>,
    count: usize,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    (0..count)
        .map(|n| tokio::spawn(run_worker(state.clone(), n, stop.clone())))
        .collect()
}

async fn run_worker(state: Arc<AppState>, n: usize, mut stop: watch::Receiver<bool>) {
    tracing::debug!(worker = n, "worker started");
    while !*stop.borrow() {
        match state.inbox.claim(now_ms()).await {
            Ok(Some(event)) => process(&state, event).await,
            Ok(None) => {
                tokio::select! {
                    _ = state.wake.notified() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = stop.changed() => {}
                }
            }
            Err(error) => {
                tracing::error!(%error, worker = n, "claiming an inbox event failed");
                tokio::time::sleep(IDLE_POLL).await;
            }
        }
    }
    tracing::debug!(worker = n, "worker stopped");
}

async fn process(state: &Arc<AppState>, event: InboxEvent) {
    let (id, attempts) = (event.id, event.attempts);
    let started = Instant::now();
    let result = analyse_event(state, &event).await;
    state.metrics.analysis(started.elapsed(), result.is_ok());

    let retry_at = now_ms() + state.config.retry_delay_ms(attempts);
    let recorded = match result {
        Ok(outcome) => state.inbox.complete(id, &outcome).await,
        Err(Failure::Transient(error)) if attempts < state.config.max_attempts => {
            tracing::warn!(event = id, attempts, "event processing failed; will retry");
            state.inbox.fail(id, &error, Some(retry_at)).await
        }
        Err(Failure::Transient(error)) | Err(Failure::Permanent(error)) => {
            tracing::warn!(event = id, attempts, "event moved to the dead-letter list");
            state.inbox.fail(id, &error, None).await
        }
    };
    match recorded {
        Ok(()) => tracing::debug!(event = id, "event processed"),
        Err(error) => tracing::error!(%error, event = id, "recording an event's outcome failed"),
    }
}

/// Maps and analyses one event, storing its reviews; returns the outcome to record.
async fn analyse_event(state: &Arc<AppState>, event: &InboxEvent) -> Result<String, Failure> {
    let tool = Tool::from_path(&event.tool).map_err(|e| Failure::Permanent(e.to_string()))?;
    let mapping = map_event(tool, &event.event, &event.body)
        .map_err(|e| Failure::Permanent(e.to_string()))?;
    let bytes = match mapping {
        EventMapping::Artifact(bytes) => bytes,
        EventMapping::Ignored(reason) => return Ok(format!("ignored: {reason}")),
    };

    let origin = format!("webhook:{}/{}", event.connector, event.delivery_id);
    let engine = state.engine.clone();
    let analysed = tokio::task::spawn_blocking(move || analyse(&engine, &origin, &bytes))
        .await
        .map_err(|e| Failure::Transient(format!("analysis task failed: {e}")))?
        .map_err(|e| Failure::Permanent(e.to_string()))?;

    let mut ids = Vec::with_capacity(analysed.len());
    for (artifact, review) in analysed {
        let stored = StoredReview {
            id: review_id(&review),
            source: format!("webhook:{}", event.connector),
            created_ms: now_ms(),
            review,
        };
        let done = state
            .reviews
            .put_analysis(stored, artifact)
            .await
            .map_err(|e| Failure::Transient(e.to_string()))?;
        ids.push(done.review_id);
    }
    Ok(format!("reviews: {}", ids.join(",")))
}
