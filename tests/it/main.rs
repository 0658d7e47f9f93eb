//! The integration tests, one binary: a module per area, over real `tipbox` processes, real
//! sockets, real SQLite files, the real PostgreSQL, `age`, Chromium and tor (support/ has the
//! harness). `cargo test` builds this binary once; `cargo test desk::` runs one area.
#![forbid(unsafe_code)]

mod support;

mod abuse;
mod authz;
mod cli;
mod limits;
mod openapi;
mod pages;
mod tls;
mod tor;
mod tor_network;
