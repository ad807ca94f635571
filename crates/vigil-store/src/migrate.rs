//! Named schema migrations for the operational store.
//!
//! Each module that keeps tables in the operational store declares its migrations as a slice of
//! [`Migration`]s with names unique across the product, conventionally `<module>/<nnnn>_<what>`
//! (`ops/0001_reviews`, `inbox/0001_events`). Names rather than numbers let modules written
//! apart add migrations without colliding. Migrations are applied in the order they are
//! registered, each in its own transaction together with its row in
//! `schema_migrations(id TEXT PRIMARY KEY, applied_at TEXT)`; one already recorded is skipped.
//! A migration is never edited once released: a change is a new migration.

use rusqlite::{Connection, OptionalExtension};
use std::collections::HashSet;

use crate::{Error, Result};

/// One schema change: a unique name and the SQL that makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Unique name, `<module>/<nnnn>_<what>`.
    pub id: &'static str,
    /// One or more SQL statements, run in one transaction.
    pub sql: &'static str,
}

/// The bookkeeping table, created before any migration runs.
const BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    id TEXT PRIMARY KEY,
    applied_at TEXT NOT NULL
)";

/// Applies the migrations not yet recorded, in order; returns the names of those applied now.
pub fn apply(conn: &mut Connection, migrations: &[Migration]) -> Result<Vec<&'static str>> {
    check_unique(migrations)?;
    conn.execute_batch(BOOKKEEPING)?;

    let mut applied = Vec::new();
    for migration in migrations {
        if apply_one(conn, migration)? {
            tracing::info!(id = migration.id, "schema migration applied");
            applied.push(migration.id);
        }
    }
    Ok(applied)
}

/// The names recorded in `schema_migrations`, oldest first.
pub fn applied(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT id FROM schema_migrations ORDER BY applied_at, rowid")?;
    let ids = stmt
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(ids)
}

fn check_unique(migrations: &[Migration]) -> Result<()> {
    let mut seen = HashSet::new();
    for m in migrations {
        if !seen.insert(m.id) {
            return Err(Error::DuplicateMigration(m.id.to_owned()));
        }
    }
    Ok(())
}

/// Runs one migration unless recorded; `true` when it ran.
fn apply_one(conn: &mut Connection, migration: &Migration) -> Result<bool> {
    let fail = |source| Error::Migration {
        id: migration.id.to_owned(),
        source,
    };
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(fail)?;
    let done = tx
        .query_row(
            "SELECT 1 FROM schema_migrations WHERE id = ?1",
            [migration.id],
            |_| Ok(()),
        )
        .optional()
        .map_err(fail)?
        .is_some();
    if done {
        return Ok(false);
    }

    tx.execute_batch(migration.sql).map_err(fail)?;
    tx.execute(
        "INSERT INTO schema_migrations (id, applied_at) \
         VALUES (?1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
        [migration.id],
    )
    .map_err(fail)?;
    tx.commit().map_err(fail)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Migration = Migration {
        id: "a/0001_t",
        sql: "CREATE TABLE t (x INTEGER);",
    };
    const B: Migration = Migration {
        id: "b/0001_u",
        sql: "CREATE TABLE u (y INTEGER); INSERT INTO u VALUES (1);",
    };

    #[test]
    fn applies_once_in_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(apply(&mut conn, &[A, B]).unwrap(), vec![A.id, B.id]);
        assert!(apply(&mut conn, &[A, B]).unwrap().is_empty());
        assert_eq!(applied(&conn).unwrap(), vec![A.id, B.id]);
    }

    #[test]
    fn a_failing_migration_leaves_nothing_behind() {
        let bad = Migration {
            id: "c/0001_bad",
            sql: "CREATE TABLE v (z INTEGER); INSERT INTO nope VALUES (1);",
        };
        let mut conn = Connection::open_in_memory().unwrap();
        let err = apply(&mut conn, &[A, bad]).unwrap_err();
        assert!(err.to_string().contains("c/0001_bad"), "{err}");
        assert_eq!(applied(&conn).unwrap(), vec![A.id]);
        let v: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'v'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(v, 0);
    }

    #[test]
    fn duplicate_names_are_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        let err = apply(&mut conn, &[A, A]).unwrap_err();
        assert!(matches!(err, Error::DuplicateMigration(id) if id == A.id));
    }
}
