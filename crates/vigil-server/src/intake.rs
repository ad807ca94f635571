//! Durable intake with group commit: request handlers hand verified events to one writer task,
//! which stores everything waiting in a single transaction (one fsync for the batch) and then
//! answers each handler. A handler answers 202 only after its event's transaction is on disk.
//!
//! Memory stays bounded under a burst: a handler takes one of `intake_in_flight` permits before
//! it reads a body and holds it until the body is on disk, so at most that many bodies are in
//! memory (and in the writer's channel); beyond it a webhook is answered 503 with Retry-After.
//! One client address may hold at most `intake_per_client` of them (then 429), and a body must
//! arrive within the body timeout, so a sender that opens requests and stalls cannot take every
//! place from the others.
//! What was acknowledged waits on disk in the inbox, and each worker claims one event at a time
//! from there.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};
use crate::store::{Enqueued, InboxStore, NewEvent};

/// Most events written in one transaction.
const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<Enqueued>>;

/// The handle request handlers submit events through.
#[derive(Debug, Clone)]
pub struct Intake {
    tx: mpsc::UnboundedSender<(NewEvent, Reply)>,
    permits: Arc<Semaphore>,
    limit: usize,
    per_client: usize,
    clients: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One admitted webhook's place, given back when dropped.
#[derive(Debug)]
pub struct Admission {
    _slot: Option<ClientSlot>,
    _permit: OwnedSemaphorePermit,
}

/// One of a client address's places.
#[derive(Debug)]
struct ClientSlot {
    ip: IpAddr,
    clients: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = clients.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                clients.remove(&self.ip);
            }
        }
    }
}

impl Intake {
    /// Starts the writer task over `inbox` (on the current tokio runtime), admitting at most
    /// `in_flight` events at once, `per_client` of them from one address. It stops when every
    /// handle is dropped.
    pub fn start(inbox: Arc<dyn InboxStore>, in_flight: usize, per_client: usize) -> Intake {
        let (tx, rx) = mpsc::unbounded_channel::<(NewEvent, Reply)>();
        tokio::spawn(write_loop(inbox, rx));
        Intake {
            tx,
            permits: Arc::new(Semaphore::new(in_flight)),
            limit: in_flight,
            per_client,
            clients: Arc::default(),
        }
    }

    /// A place for one event from `client`, to take before reading its body and hold until it
    /// is stored; [`Error::BusyClient`] when that address holds its share already,
    /// [`Error::Busy`] when every place is taken.
    pub fn admit(&self, client: Option<IpAddr>) -> Result<Admission> {
        let slot = match client {
            Some(ip) => {
                let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
                let n = clients.entry(ip).or_insert(0);
                if *n >= self.per_client {
                    return Err(Error::BusyClient {
                        limit: self.per_client,
                    });
                }
                *n += 1;
                Some(ClientSlot {
                    ip,
                    clients: self.clients.clone(),
                })
            }
            None => None,
        };
        // A refusal here drops the slot, which gives the address's place back.
        let permit = self
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| Error::Busy { limit: self.limit })?;
        Ok(Admission {
            _slot: slot,
            _permit: permit,
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryInbox, NewEvent};

    fn event(delivery: &str) -> NewEvent {
        NewEvent {
            connector: "gh".into(),
            tool: "github".into(),
            delivery_id: delivery.into(),
            event: "issues".into(),
            body: vec![b'x'; 1024],
            received_ms: 1,
        }
    }

    #[tokio::test]
    async fn a_burst_beyond_the_limit_is_refused_not_buffered() {
        let intake = Intake::start(Arc::new(MemoryInbox::default()), 2, 2);
        let first = intake.admit(None).unwrap();
        let second = intake.admit(None).unwrap();
        assert!(matches!(intake.admit(None), Err(Error::Busy { limit: 2 })));

        assert_eq!(
            intake.submit(event("a")).await.unwrap(),
            Enqueued::Accepted(1)
        );
        drop(first);
        let third = intake.admit(None).unwrap();
        assert_eq!(
            intake.submit(event("b")).await.unwrap(),
            Enqueued::Accepted(2)
        );
        drop((second, third));
        assert_eq!(intake.permits.available_permits(), 2);
    }

    #[tokio::test]
    async fn one_address_takes_at_most_its_share() {
        let intake = Intake::start(Arc::new(MemoryInbox::default()), 4, 2);
        let noisy: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let a = intake.admit(Some(noisy)).unwrap();
        let b = intake.admit(Some(noisy)).unwrap();
        assert!(matches!(
            intake.admit(Some(noisy)),
            Err(Error::BusyClient { limit: 2 })
        ));
        // The refusal took no global place; another sender still gets one.
        let c = intake.admit(Some(other)).unwrap();
        assert_eq!(intake.permits.available_permits(), 1);
        drop(a);
        let d = intake.admit(Some(noisy)).unwrap();
        drop((b, c, d));
        assert_eq!(intake.permits.available_permits(), 4);
        assert!(intake.clients.lock().unwrap().is_empty());
    }
}
