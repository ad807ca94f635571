//! Integration tests of the service through its router: access control over every route, the
//! webhook inbox, API v1, what the service remembers, and the console's login and files. Stores
//! are the SQLite ones, on disk in a temporary folder. HTTPS is tested over a real socket.

mod api;
mod console;
mod hooks;
mod knowledge;
mod routes;
mod support;
mod tls;
