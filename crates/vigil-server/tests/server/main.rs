//! Integration tests of the service through its router: access control over every route, the
//! webhook inbox, and API v1. Stores are the in-memory ones; the SQLite store has its own tests.

mod api;
mod hooks;
mod routes;
mod support;
