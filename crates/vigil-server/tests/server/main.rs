//! Integration tests of the service through its router: access control over every route, the
//! webhook inbox, API v1 and the console's login and files. Stores are the in-memory ones; the SQLite store has its own tests.

mod api;
mod console;
mod hooks;
mod routes;
mod support;
