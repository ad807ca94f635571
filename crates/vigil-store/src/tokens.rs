//! API tokens in the operational store: never the secret, only its SHA-256, with the token's
//! name, role and revocation time.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::{Migration, Result};

/// The tokens' schema, oldest first.
pub const MIGRATIONS: &[Migration] = &[Migration {
    id: "tokens/0001_api_tokens",
    sql: "CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        created_ms INTEGER NOT NULL,
        revoked_ms INTEGER
    );",
}];

/// A stored token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// Short id.
    pub id: String,
    /// What it is for.
    pub name: String,
    /// Role name.
    pub role: String,
    /// SHA-256 of the secret, hex.
    pub hash: String,
    /// Creation, Unix milliseconds.
    pub created_ms: u64,
    /// Revocation, Unix milliseconds.
    pub revoked_ms: Option<u64>,
}

const COLUMNS: &str = "id, name, role, hash, created_ms, revoked_ms";

fn row(r: &Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: r.get(0)?,
        name: r.get(1)?,
        role: r.get(2)?,
        hash: r.get(3)?,
        created_ms: r.get::<_, i64>(4)? as u64,
        revoked_ms: r.get::<_, Option<i64>>(5)?.map(|v| v as u64),
    })
}

/// Stores a token.
pub fn insert(conn: &Connection, token: &TokenRow) -> Result<()> {
    conn.execute(
        "INSERT INTO api_tokens (id, name, role, hash, created_ms, revoked_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            token.id,
            token.name,
            token.role,
            token.hash,
            token.created_ms as i64,
            token.revoked_ms.map(|v| v as i64)
        ],
    )?;
    Ok(())
}

/// The token with this hash, revoked or not.
pub fn find_by_hash(conn: &Connection, hash: &str) -> Result<Option<TokenRow>> {
    let sql = format!("SELECT {COLUMNS} FROM api_tokens WHERE hash = ?1");
    Ok(conn
        .prepare(&sql)?
        .query_row(params![hash], row)
        .optional()?)
}

/// The token with this id, revoked or not.
pub fn find_by_id(conn: &Connection, id: &str) -> Result<Option<TokenRow>> {
    let sql = format!("SELECT {COLUMNS} FROM api_tokens WHERE id = ?1");
    Ok(conn.prepare(&sql)?.query_row(params![id], row).optional()?)
}

/// Every token, oldest first.
pub fn list(conn: &Connection) -> Result<Vec<TokenRow>> {
    let sql = format!("SELECT {COLUMNS} FROM api_tokens ORDER BY created_ms, id");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Revokes an active token; false when none has this id.
pub fn revoke(conn: &Connection, id: &str, now_ms: u64) -> Result<bool> {
    let n = conn.execute(
        "UPDATE api_tokens SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL",
        params![id, now_ms as i64],
    )?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_by_hash_and_revoked_once() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::migrate::apply(&mut c, MIGRATIONS).unwrap();
        let t = TokenRow {
            id: "abc".into(),
            name: "ci".into(),
            role: "connector".into(),
            hash: "h".into(),
            created_ms: 1,
            revoked_ms: None,
        };
        insert(&c, &t).unwrap();
        assert_eq!(find_by_hash(&c, "h").unwrap(), Some(t.clone()));
        assert_eq!(find_by_id(&c, "abc").unwrap(), Some(t));
        assert!(revoke(&c, "abc", 2).unwrap());
        assert!(!revoke(&c, "abc", 3).unwrap());
        assert_eq!(list(&c).unwrap()[0].revoked_ms, Some(2));
    }
}
