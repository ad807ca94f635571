//! Vigil's storage.
//!
//! - [`OpsStore`]: the operational store, one SQLite file in WAL mode (`<data_dir>/vigil.db`)
//!   for what changes often and must be transactional: reviews and their versions
//!   ([`workflow`]), finding workflow state and history, jobs, connector cursors, used through an
//!   async API.
//! - [`Memory`]: institutional memory in LanceDB (`<data_dir>/lance/`): artifact versions,
//!   chunks, finding texts and [`decisions`] with embeddings; hybrid search (see [`memory`] for
//!   how the two stores commit together).
//! - [`recall`]: memory consulted before a review is final.
//! - [`reviews`]: the reviews the service serves, the findings list and triage state.
//! - [`lineage`]: new, unchanged, changed and gone findings between review versions.
//! - The data directory layout is [`DataDir`] (see [`layout`]).
//!
//! # Adding tables to the operational store
//!
//! A module that keeps tables in the operational store declares its schema as named
//! migrations and registers them in [`migrations`]:
//!
//! ```
//! use vigil_store::Migration;
//!
//! /// The inbox's schema, oldest first; released entries are never edited.
//! pub const MIGRATIONS: &[Migration] = &[Migration {
//!     id: "inbox/0001_events",
//!     sql: "CREATE TABLE inbox_events (id TEXT PRIMARY KEY, body BLOB NOT NULL);",
//! }];
//! ```
//!
//! then adds `inbox::MIGRATIONS` to the list in [`migrations`]. Names are
//! `<module>/<nnnn>_<what>`, so modules developed apart never collide; each migration runs once,
//! in registration order, in its own transaction, and is recorded in `schema_migrations`. A
//! caller outside this crate (a test, a plug-in) can pass further migrations to
//! [`OpsStore::open`].

pub mod decisions;
pub mod embed;
pub mod error;
pub mod inbox;
mod lance;
pub mod layout;
pub mod lineage;
pub mod memory;
pub mod migrate;
pub mod ops;
pub mod recall;
pub mod reviews;
pub mod sessions;
pub mod snapshot;
pub mod tokens;
pub mod workflow;

pub use decisions::{Decision, DecisionKind, DecisionScope};
pub use embed::TextEmbedder;
pub use error::{Error, Result};
pub use layout::DataDir;
pub use memory::{ArtifactRecord, FindingHit, Memory, PutOutcome, SearchFilter};
pub use migrate::Migration;
pub use ops::{OpsOptions, OpsStore};
pub use recall::{recall, RecallConfig, RecallContext};

/// Every migration of the operational store, in the order they are applied: each module's list
/// in turn.
pub fn migrations() -> Vec<Migration> {
    let modules: &[&[Migration]] = &[
        workflow::MIGRATIONS,
        memory::MIGRATIONS,
        inbox::MIGRATIONS,
        tokens::MIGRATIONS,
        reviews::MIGRATIONS,
        sessions::MIGRATIONS,
    ];
    modules.iter().flat_map(|m| m.iter().copied()).collect()
}
