//! The webhook inbox and its job queue, in the operational store: every verified event as it
//! arrived (raw body included), keyed by connector and delivery id so a redelivery is recognised,
//! with its processing state: pending (possibly until a retry time), processing, done or dead
//! (the dead-letter list).
//!
//! The functions take a connection or transaction so callers choose the transaction's extent:
//! the server writes a whole batch of events in one transaction (one fsync, as the store runs
//! with `synchronous = FULL`) before acknowledging any of them.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::{Migration, Result};

/// The inbox's schema, oldest first.
pub const MIGRATIONS: &[Migration] = &[Migration {
    id: "inbox/0001_events",
    sql: "CREATE TABLE inbox_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        connector TEXT NOT NULL,
        tool TEXT NOT NULL,
        delivery_id TEXT NOT NULL,
        event TEXT NOT NULL,
        body BLOB NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'processing', 'done', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_ms INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        outcome TEXT,
        received_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        UNIQUE (connector, delivery_id)
    );
    CREATE INDEX inbox_events_due ON inbox_events (status, next_attempt_ms, id);",
}];

/// An event to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInboxEvent {
    /// Connector name.
    pub connector: String,
    /// Tool name.
    pub tool: String,
    /// Delivery id, unique per connector.
    pub delivery_id: String,
    /// Event name.
    pub event: String,
    /// Raw body.
    pub body: Vec<u8>,
    /// Arrival, Unix milliseconds.
    pub received_ms: u64,
}

/// Whether an event was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Written under this id.
    New(i64),
    /// Already there under this id.
    Duplicate(i64),
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxRow {
    /// Id.
    pub id: i64,
    /// Connector name.
    pub connector: String,
    /// Tool name.
    pub tool: String,
    /// Delivery id.
    pub delivery_id: String,
    /// Event name.
    pub event: String,
    /// Raw body.
    pub body: Vec<u8>,
    /// `pending`, `processing`, `done` or `dead`.
    pub status: String,
    /// Attempts made.
    pub attempts: u32,
    /// Last failure.
    pub last_error: Option<String>,
    /// Outcome of processing.
    pub outcome: Option<String>,
    /// Arrival, Unix milliseconds.
    pub received_ms: u64,
}

/// Events per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depth {
    /// Pending.
    pub pending: u64,
    /// Processing.
    pub processing: u64,
    /// Done.
    pub done: u64,
    /// Dead.
    pub dead: u64,
}

const COLUMNS: &str = "id, connector, tool, delivery_id, event, body, status, attempts, \
    last_error, outcome, received_ms";

fn row(r: &Row<'_>) -> rusqlite::Result<InboxRow> {
    Ok(InboxRow {
        id: r.get(0)?,
        connector: r.get(1)?,
        tool: r.get(2)?,
        delivery_id: r.get(3)?,
        event: r.get(4)?,
        body: r.get(5)?,
        status: r.get(6)?,
        attempts: r.get(7)?,
        last_error: r.get(8)?,
        outcome: r.get(9)?,
        received_ms: r.get::<_, i64>(10)? as u64,
    })
}

/// Stores events not yet stored (by connector and delivery id); call inside one transaction.
pub fn enqueue(conn: &Connection, events: &[NewInboxEvent]) -> Result<Vec<Stored>> {
    let mut insert = conn.prepare(
        "INSERT INTO inbox_events
            (connector, tool, delivery_id, event, body, received_ms, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT (connector, delivery_id) DO NOTHING",
    )?;
    let mut existing =
        conn.prepare("SELECT id FROM inbox_events WHERE connector = ?1 AND delivery_id = ?2")?;
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let changed = insert.execute(params![
            e.connector,
            e.tool,
            e.delivery_id,
            e.event,
            e.body,
            e.received_ms as i64
        ])?;
        if changed == 1 {
            out.push(Stored::New(conn.last_insert_rowid()));
        } else {
            let id: i64 = existing.query_row(params![e.connector, e.delivery_id], |r| r.get(0))?;
            out.push(Stored::Duplicate(id));
        }
    }
    Ok(out)
}

/// Claims the oldest pending event due at `now_ms`, counting an attempt; call inside one
/// transaction.
pub fn claim(conn: &Connection, now_ms: u64) -> Result<Option<InboxRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM inbox_events
         WHERE status = 'pending' AND next_attempt_ms <= ?1 ORDER BY id LIMIT 1"
    );
    let Some(mut event) = conn
        .prepare(&sql)?
        .query_row(params![now_ms as i64], row)
        .optional()?
    else {
        return Ok(None);
    };
    conn.prepare(
        "UPDATE inbox_events SET status = 'processing', attempts = attempts + 1, updated_ms = ?2
         WHERE id = ?1",
    )?
    .execute(params![event.id, now_ms as i64])?;
    event.status = "processing".to_owned();
    event.attempts += 1;
    Ok(Some(event))
}

/// Marks an event done with its outcome.
pub fn complete(conn: &Connection, id: i64, outcome: &str, now_ms: u64) -> Result<()> {
    conn.prepare(
        "UPDATE inbox_events SET status = 'done', outcome = ?2, updated_ms = ?3 WHERE id = ?1",
    )?
    .execute(params![id, outcome, now_ms as i64])?;
    Ok(())
}

/// Records a failed attempt: pending again from `retry_at_ms`, or dead when None.
pub fn fail(
    conn: &Connection,
    id: i64,
    error: &str,
    retry_at_ms: Option<u64>,
    now_ms: u64,
) -> Result<()> {
    let (status, next) = match retry_at_ms {
        Some(at) => ("pending", at as i64),
        None => ("dead", 0),
    };
    conn.prepare(
        "UPDATE inbox_events SET status = ?2, next_attempt_ms = ?3, last_error = ?4,
            updated_ms = ?5
         WHERE id = ?1",
    )?
    .execute(params![id, status, next, error, now_ms as i64])?;
    Ok(())
}

/// Puts events left `processing` by a stopped process back to pending; returns how many.
pub fn requeue_processing(conn: &Connection) -> Result<u64> {
    let n = conn.execute(
        "UPDATE inbox_events SET status = 'pending', next_attempt_ms = 0
         WHERE status = 'processing'",
        [],
    )?;
    Ok(n as u64)
}

/// Puts a dead event back to pending with its attempts reset; false when it is not dead.
pub fn revive(conn: &Connection, id: i64, now_ms: u64) -> Result<bool> {
    let n = conn.execute(
        "UPDATE inbox_events SET status = 'pending', attempts = 0, next_attempt_ms = 0,
            updated_ms = ?2
         WHERE id = ?1 AND status = 'dead'",
        params![id, now_ms as i64],
    )?;
    Ok(n == 1)
}

/// Events per status.
pub fn depth(conn: &Connection) -> Result<Depth> {
    let mut stmt = conn.prepare("SELECT status, count(*) FROM inbox_events GROUP BY status")?;
    let mut depth = Depth::default();
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for entry in rows {
        let (status, n) = entry?;
        let n = n as u64;
        match status.as_str() {
            "pending" => depth.pending = n,
            "processing" => depth.processing = n,
            "done" => depth.done = n,
            _ => depth.dead = n,
        }
    }
    Ok(depth)
}

/// Up to `limit` events with this status, newest first.
pub fn list(conn: &Connection, status: &str, limit: usize) -> Result<Vec<InboxRow>> {
    let sql =
        format!("SELECT {COLUMNS} FROM inbox_events WHERE status = ?1 ORDER BY id DESC LIMIT ?2");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params![status, limit as i64], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::migrate::apply(&mut conn, MIGRATIONS).unwrap();
        conn
    }

    fn event(delivery: &str) -> NewInboxEvent {
        NewInboxEvent {
            connector: "gh".into(),
            tool: "github".into(),
            delivery_id: delivery.into(),
            event: "issues".into(),
            body: b"{}".to_vec(),
            received_ms: 5,
        }
    }

    #[test]
    fn deduplicates_claims_retries_and_dead_letters() {
        let c = conn();
        let stored = enqueue(&c, &[event("a"), event("b"), event("a")]).unwrap();
        assert_eq!(
            stored,
            [Stored::New(1), Stored::New(2), Stored::Duplicate(1)]
        );

        let first = claim(&c, 10).unwrap().unwrap();
        assert_eq!(
            (first.id, first.attempts, first.status.as_str()),
            (1, 1, "processing")
        );
        fail(&c, 1, "store down", Some(100), 10).unwrap();
        assert_eq!(claim(&c, 10).unwrap().unwrap().id, 2);
        assert!(claim(&c, 50).unwrap().is_none());
        let again = claim(&c, 100).unwrap().unwrap();
        assert_eq!((again.id, again.attempts), (1, 2));
        fail(&c, 1, "still down", None, 100).unwrap();
        complete(&c, 2, "reviews: r1", 100).unwrap();

        let d = depth(&c).unwrap();
        assert_eq!((d.pending, d.processing, d.done, d.dead), (0, 0, 1, 1));
        let dead = list(&c, "dead", 10).unwrap();
        assert_eq!(dead[0].last_error.as_deref(), Some("still down"));
        assert!(revive(&c, 1, 200).unwrap());
        assert!(!revive(&c, 2, 200).unwrap());
    }

    #[test]
    fn claimed_events_are_requeued_after_a_crash() {
        let c = conn();
        enqueue(&c, &[event("a")]).unwrap();
        claim(&c, 1).unwrap().unwrap();
        assert_eq!(requeue_processing(&c).unwrap(), 1);
        assert_eq!(claim(&c, 1).unwrap().unwrap().attempts, 2);
    }
}
