//! The integration tests, one binary: a module per area, over real `tipbox` processes, real
//! sockets, real SQLite files, the real PostgreSQL, `age`, Chromium and tor (support/ has the
//! harness). `cargo test` builds this binary once; `cargo test desk::` runs one area.
#![forbid(unsafe_code)]

mod support;

mod abuse;
mod analysts;
mod authz;
mod browser;
mod cli;
mod desk;
mod durability;
mod followup;
mod intake;
mod limits;
mod migrations;
mod openapi;
mod pages;
mod retention;
mod review;
mod rotation;
mod signin;
mod tls;
mod tor;
mod tor_network;
