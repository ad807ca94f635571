//! Integration tests of the service through its router: access control over every route, the
//! webhook inbox, and API v1. Stores are the SQLite ones, on disk in a temporary folder.

mod api;
mod hooks;
mod routes;
mod support;
