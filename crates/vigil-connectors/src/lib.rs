//! Vigil's connectors to the tools teams plan their work in (Jira, Confluence, GitHub, Azure
//! DevOps, Linear): the webhook signature schemes each sender uses, the delivery id each event is
//! de-duplicated on, and the mapping from an event's payload to the artifact Vigil analyses.
//!
//! Nothing here does I/O: the server hands in the request's headers and raw body.

mod error;
mod mapping;
mod verify;

pub use error::{Error, Result};
pub use mapping::{map_event, EventMapping};
pub use verify::{verify, ConnectorConfig, Delivery, Tool, LINEAR_MAX_AGE_MS};
