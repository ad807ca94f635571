//! Integration tests of the service through its router: access control over every route, the
//! webhook inbox, API v1, and what the service remembers. Stores are the SQLite ones, on disk
//! in a temporary folder.

mod api;
mod hooks;
mod knowledge;
mod routes;
mod support;
