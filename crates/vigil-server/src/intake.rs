//! Durable intake with group commit: request handlers hand verified events to one writer task,
//! which stores everything waiting in a single transaction (one fsync for the batch) and then
//! answers each handler. A handler answers 202 only after its event's transaction is on disk.

use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use crate::store::{Enqueued, InboxStore, NewEvent};

/// Most events written in one transaction.
const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<Enqueued>>;

/// The handle request handlers submit events through.
#[derive(Debug, Clone)]
pub struct Intake {
    tx: mpsc::UnboundedSender<(NewEvent, Reply)>,
}

impl Intake {
    /// Starts the writer task over `inbox` (on the current tokio runtime). It stops when every
    /// handle is dropped.
    pub fn start(inbox: Arc<dyn InboxStore>) -> Intake {
        let (tx, rx) = mpsc::unbounded_channel::<(NewEvent, Reply)>();
        tokio::spawn(write_loop(inbox, rx));
        Intake { tx }
    }

    /// Stores `event` durably; returns once it is on disk (or known to be a duplicate).
    pub async fn submit(&self, event: NewEvent) -> Result<Enqueued> {
        let (reply, answer) = oneshot::channel();
        self.tx.send((event, reply)).map_err(|_| Error::NotReady)?;
        answer.await.map_err(|_| Error::NotReady)?
    }
}

async fn write_loop(
    inbox: Arc<dyn InboxStore>,
    mut rx: mpsc::UnboundedReceiver<(NewEvent, Reply)>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let (events, replies): (Vec<NewEvent>, Vec<Reply>) = batch.into_iter().unzip();
        match inbox.enqueue_batch(&events).await {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(Ok(result));
                }
            }
            Err(error) => {
                tracing::error!(%error, events = events.len(), "inbox write failed");
                for reply in replies {
                    let _ = reply.send(Err(Error::Store("inbox write failed".to_owned())));
                }
            }
        }
    }
}
