//! Console sessions in the operational store: a browser's login under an API token. Only the
//! SHA-256 of the session secret is kept, with the token it was opened with and when it was
//! opened and last used; the caller decides what idle time ends a session.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::{Migration, Result};

/// The sessions' schema, oldest first.
pub const MIGRATIONS: &[Migration] = &[Migration {
    id: "sessions/0001_console_sessions",
    sql: "CREATE TABLE console_sessions (
        hash TEXT PRIMARY KEY,
        token_id TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        last_seen_ms INTEGER NOT NULL
    );
    CREATE INDEX console_sessions_last_seen ON console_sessions (last_seen_ms);",
}];

/// A stored console session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// SHA-256 of the session secret, hex.
    pub hash: String,
    /// Id of the API token the session was opened with.
    pub token_id: String,
    /// Opening time, Unix milliseconds.
    pub created_ms: u64,
    /// Last use, Unix milliseconds.
    pub last_seen_ms: u64,
}

fn row(r: &Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok(SessionRow {
        hash: r.get(0)?,
        token_id: r.get(1)?,
        created_ms: r.get::<_, i64>(2)? as u64,
        last_seen_ms: r.get::<_, i64>(3)? as u64,
    })
}

/// Stores a new session.
pub fn insert(conn: &Connection, session: &SessionRow) -> Result<()> {
    conn.execute(
        "INSERT INTO console_sessions (hash, token_id, created_ms, last_seen_ms)
         VALUES (?1, ?2, ?3, ?4)",
        params![
            session.hash,
            session.token_id,
            session.created_ms as i64,
            session.last_seen_ms as i64
        ],
    )?;
    Ok(())
}

/// The session with this hash.
pub fn find(conn: &Connection, hash: &str) -> Result<Option<SessionRow>> {
    Ok(conn
        .prepare(
            "SELECT hash, token_id, created_ms, last_seen_ms FROM console_sessions WHERE hash = ?1",
        )?
        .query_row(params![hash], row)
        .optional()?)
}

/// Records a use of the session.
pub fn touch(conn: &Connection, hash: &str, now_ms: u64) -> Result<()> {
    conn.execute(
        "UPDATE console_sessions SET last_seen_ms = max(last_seen_ms, ?2) WHERE hash = ?1",
        params![hash, now_ms as i64],
    )?;
    Ok(())
}

/// Ends a session; false when none has this hash.
pub fn delete(conn: &Connection, hash: &str) -> Result<bool> {
    let n = conn.execute(
        "DELETE FROM console_sessions WHERE hash = ?1",
        params![hash],
    )?;
    Ok(n == 1)
}

/// Removes the sessions last used before `idle_before_ms`; returns how many.
pub fn purge_idle(conn: &Connection, idle_before_ms: u64) -> Result<u64> {
    let n = conn.execute(
        "DELETE FROM console_sessions WHERE last_seen_ms < ?1",
        params![idle_before_ms as i64],
    )?;
    Ok(n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_found_touched_purged_and_ended() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::migrate::apply(&mut c, MIGRATIONS).unwrap();
        let s = SessionRow {
            hash: "h".into(),
            token_id: "t".into(),
            created_ms: 10,
            last_seen_ms: 10,
        };
        insert(&c, &s).unwrap();
        insert(
            &c,
            &SessionRow {
                hash: "old".into(),
                last_seen_ms: 1,
                ..s.clone()
            },
        )
        .unwrap();
        touch(&c, "h", 50).unwrap();
        touch(&c, "h", 20).unwrap();
        assert_eq!(find(&c, "h").unwrap().unwrap().last_seen_ms, 50);
        assert_eq!(purge_idle(&c, 5).unwrap(), 1);
        assert!(find(&c, "old").unwrap().is_none());
        assert!(delete(&c, "h").unwrap());
        assert!(!delete(&c, "h").unwrap());
    }
}
