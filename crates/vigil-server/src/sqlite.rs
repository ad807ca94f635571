//! The stores backed by the operational store (vigil-store's SQLite file, WAL mode,
//! `synchronous = FULL`): API tokens and the webhook inbox are durable there. Every inbox write is
//! one transaction, committed (fsynced) before the caller is answered.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use vigil_store::{inbox, sessions, tokens, DataDir, OpsOptions, OpsStore};

use crate::app::{now_ms, Stores};
use crate::error::{Error, Result};
use crate::store::{
    Enqueued, EventStatus, InboxEvent, InboxStore, MemoryReviews, NewEvent, QueueDepth,
    SessionRecord, StoreFuture, TokenRecord, TokenStore,
};

impl From<vigil_store::Error> for Error {
    fn from(e: vigil_store::Error) -> Error {
        Error::Store(e.to_string())
    }
}

/// Opens the operational store in `data_dir` (waiting up to `busy_timeout` for a lock another
/// process holds) and the stores over it.
pub async fn open_stores(data_dir: &Path, busy_timeout: Duration) -> Result<Stores> {
    let options = OpsOptions { busy_timeout };
    let ops = OpsStore::open(&DataDir::new(data_dir), &options, &[]).await?;
    // TODO(review-store): reviews and finding workflow live in memory until the operational
    // store has review tables; they are lost at restart (the inbox and tokens are not).
    Ok(Stores {
        tokens: Arc::new(SqliteTokens(ops.clone())),
        inbox: Arc::new(SqliteInbox(ops)),
        reviews: Arc::new(MemoryReviews::default()),
    })
}

/// API tokens in the operational store.
#[derive(Debug, Clone)]
pub struct SqliteTokens(pub OpsStore);

fn token_record(row: tokens::TokenRow) -> Result<TokenRecord> {
    Ok(TokenRecord {
        role: row
            .role
            .parse()
            .map_err(|_| Error::Store(format!("token {} has an unknown role", row.id)))?,
        id: row.id,
        name: row.name,
        hash: row.hash,
        created_ms: row.created_ms,
        revoked_ms: row.revoked_ms,
    })
}

impl TokenStore for SqliteTokens {
    fn insert(&self, record: &TokenRecord) -> StoreFuture<'_, ()> {
        let row = tokens::TokenRow {
            id: record.id.clone(),
            name: record.name.clone(),
            role: record.role.as_str().to_owned(),
            hash: record.hash.clone(),
            created_ms: record.created_ms,
            revoked_ms: record.revoked_ms,
        };
        Box::pin(async move { Ok(self.0.call(move |c| tokens::insert(c, &row)).await?) })
    }

    fn find_by_hash(&self, hash: &str) -> StoreFuture<'_, Option<TokenRecord>> {
        let hash = hash.to_owned();
        Box::pin(async move {
            let row = self.0.call(move |c| tokens::find_by_hash(c, &hash)).await?;
            row.map(token_record).transpose()
        })
    }

    fn list(&self) -> StoreFuture<'_, Vec<TokenRecord>> {
        Box::pin(async move {
            let rows = self.0.call(|c| tokens::list(c)).await?;
            rows.into_iter().map(token_record).collect()
        })
    }

    fn revoke(&self, id: &str, now_ms: u64) -> StoreFuture<'_, bool> {
        let id = id.to_owned();
        Box::pin(async move { Ok(self.0.call(move |c| tokens::revoke(c, &id, now_ms)).await?) })
    }

    fn find_by_id(&self, id: &str) -> StoreFuture<'_, Option<TokenRecord>> {
        let id = id.to_owned();
        Box::pin(async move {
            let row = self.0.call(move |c| tokens::find_by_id(c, &id)).await?;
            row.map(token_record).transpose()
        })
    }

    fn open_session(&self, session: &SessionRecord) -> StoreFuture<'_, ()> {
        let row = sessions::SessionRow {
            hash: session.hash.clone(),
            token_id: session.token_id.clone(),
            created_ms: session.created_ms,
            last_seen_ms: session.last_seen_ms,
        };
        Box::pin(async move { Ok(self.0.call(move |c| sessions::insert(c, &row)).await?) })
    }

    fn session(&self, hash: &str) -> StoreFuture<'_, Option<SessionRecord>> {
        let hash = hash.to_owned();
        Box::pin(async move {
            let row = self.0.call(move |c| sessions::find(c, &hash)).await?;
            Ok(row.map(|r| SessionRecord {
                hash: r.hash,
                token_id: r.token_id,
                created_ms: r.created_ms,
                last_seen_ms: r.last_seen_ms,
            }))
        })
    }

    fn touch_session(&self, hash: &str, now_ms: u64) -> StoreFuture<'_, ()> {
        let hash = hash.to_owned();
        Box::pin(async move {
            Ok(self
                .0
                .call(move |c| sessions::touch(c, &hash, now_ms))
                .await?)
        })
    }

    fn end_session(&self, hash: &str) -> StoreFuture<'_, bool> {
        let hash = hash.to_owned();
        Box::pin(async move { Ok(self.0.call(move |c| sessions::delete(c, &hash)).await?) })
    }

    fn purge_sessions(&self, idle_before_ms: u64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            Ok(self
                .0
                .call(move |c| sessions::purge_idle(c, idle_before_ms))
                .await?)
        })
    }
}

/// The webhook inbox in the operational store.
#[derive(Debug, Clone)]
pub struct SqliteInbox(pub OpsStore);

fn status_name(status: EventStatus) -> &'static str {
    status.as_str()
}

fn inbox_event(row: inbox::InboxRow) -> InboxEvent {
    let status = match row.status.as_str() {
        "pending" => EventStatus::Pending,
        "processing" => EventStatus::Processing,
        "done" => EventStatus::Done,
        _ => EventStatus::Dead,
    };
    InboxEvent {
        id: row.id,
        connector: row.connector,
        tool: row.tool,
        delivery_id: row.delivery_id,
        event: row.event,
        body: row.body,
        status,
        attempts: row.attempts,
        last_error: row.last_error,
        outcome: row.outcome,
        received_ms: row.received_ms,
    }
}

impl InboxStore for SqliteInbox {
    fn enqueue_batch(&self, events: &[NewEvent]) -> StoreFuture<'_, Vec<Enqueued>> {
        let rows: Vec<inbox::NewInboxEvent> = events
            .iter()
            .map(|e| inbox::NewInboxEvent {
                connector: e.connector.clone(),
                tool: e.tool.clone(),
                delivery_id: e.delivery_id.clone(),
                event: e.event.clone(),
                body: e.body.clone(),
                received_ms: e.received_ms,
            })
            .collect();
        Box::pin(async move {
            let stored = self
                .0
                .transaction(move |tx| inbox::enqueue(tx, &rows))
                .await?;
            Ok(stored
                .into_iter()
                .map(|s| match s {
                    inbox::Stored::New(id) => Enqueued::Accepted(id),
                    inbox::Stored::Duplicate(id) => Enqueued::Duplicate(id),
                })
                .collect())
        })
    }

    fn claim(&self, now_ms: u64) -> StoreFuture<'_, Option<InboxEvent>> {
        Box::pin(async move {
            let row = self
                .0
                .transaction(move |tx| inbox::claim(tx, now_ms))
                .await?;
            Ok(row.map(inbox_event))
        })
    }

    fn complete(&self, id: i64, outcome: &str) -> StoreFuture<'_, ()> {
        let outcome = outcome.to_owned();
        Box::pin(async move {
            Ok(self
                .0
                .call(move |c| inbox::complete(c, id, &outcome, now_ms()))
                .await?)
        })
    }

    fn fail(&self, id: i64, error: &str, retry_at_ms: Option<u64>) -> StoreFuture<'_, ()> {
        let error = error.to_owned();
        Box::pin(async move {
            Ok(self
                .0
                .call(move |c| inbox::fail(c, id, &error, retry_at_ms, now_ms()))
                .await?)
        })
    }

    fn requeue_in_flight(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move { Ok(self.0.call(|c| inbox::requeue_processing(c)).await?) })
    }

    fn revive(&self, id: i64) -> StoreFuture<'_, bool> {
        Box::pin(async move { Ok(self.0.call(move |c| inbox::revive(c, id, now_ms())).await?) })
    }

    fn depth(&self) -> StoreFuture<'_, QueueDepth> {
        Box::pin(async move {
            let d = self.0.call(|c| inbox::depth(c)).await?;
            Ok(QueueDepth {
                pending: d.pending,
                processing: d.processing,
                done: d.done,
                dead: d.dead,
            })
        })
    }

    fn list(&self, status: EventStatus, limit: usize) -> StoreFuture<'_, Vec<InboxEvent>> {
        let status = status_name(status);
        Box::pin(async move {
            let rows = self.0.call(move |c| inbox::list(c, status, limit)).await?;
            Ok(rows.into_iter().map(inbox_event).collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{issue_token, Role};

    fn event(delivery: &str) -> NewEvent {
        NewEvent {
            connector: "gh".into(),
            tool: "github".into(),
            delivery_id: delivery.into(),
            event: "issues".into(),
            body: b"{}".to_vec(),
            received_ms: 1,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inbox_and_tokens_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let options = Duration::from_secs(5);
        let token = issue_token("ci", Role::Connector, 1).unwrap();
        {
            let stores = open_stores(dir.path(), options).await.unwrap();
            stores.tokens.insert(&token.record).await.unwrap();
            let out = stores
                .inbox
                .enqueue_batch(&[event("a"), event("b")])
                .await
                .unwrap();
            assert_eq!(out, [Enqueued::Accepted(1), Enqueued::Accepted(2)]);
            let claimed = stores.inbox.claim(5).await.unwrap().unwrap();
            assert_eq!(claimed.id, 1);
        }
        let stores = open_stores(dir.path(), options).await.unwrap();
        let found = stores
            .tokens
            .find_by_hash(&token.record.hash)
            .await
            .unwrap();
        assert_eq!(found.unwrap().role, Role::Connector);
        let again = stores.inbox.enqueue_batch(&[event("a")]).await.unwrap();
        assert_eq!(again, [Enqueued::Duplicate(1)]);
        assert_eq!(stores.inbox.requeue_in_flight().await.unwrap(), 1);
        let depth = stores.inbox.depth().await.unwrap();
        assert_eq!((depth.pending, depth.processing), (2, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn console_sessions_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let options = Duration::from_secs(5);
        let token = issue_token("browser", Role::Security, 1).unwrap();
        let session = SessionRecord {
            hash: "h".into(),
            token_id: token.record.id.clone(),
            created_ms: 10,
            last_seen_ms: 10,
        };
        {
            let stores = open_stores(dir.path(), options).await.unwrap();
            stores.tokens.insert(&token.record).await.unwrap();
            stores.tokens.open_session(&session).await.unwrap();
            stores.tokens.touch_session("h", 20).await.unwrap();
        }
        let stores = open_stores(dir.path(), options).await.unwrap();
        let found = stores.tokens.session("h").await.unwrap().unwrap();
        assert_eq!(found.last_seen_ms, 20);
        let owner = stores.tokens.find_by_id(&found.token_id).await.unwrap();
        assert_eq!(owner.unwrap().role, Role::Security);
        assert_eq!(stores.tokens.purge_sessions(21).await.unwrap(), 1);
        assert!(!stores.tokens.end_session("h").await.unwrap());
    }
}
