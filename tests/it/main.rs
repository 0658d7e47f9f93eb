//! The integration tests, one binary: a module per area, over real `tipbox` processes, real
//! sockets, real SQLite files, the real PostgreSQL, `age`, Chromium and tor (support/ has the
//! harness). `cargo test` builds this binary once; `cargo test desk::` runs one area.
#![forbid(unsafe_code)]

mod support;

mod a11y;
mod abuse;
mod analysts;
mod authz;
mod browser;
mod bulk;
mod cli;
mod desk;
mod durability;
mod flood;
mod followup;
mod intake;
mod integrity_client;
mod integrity_server;
mod limits;
mod local_desk;
mod migrations;
mod openapi;
mod pages;
mod retention;
mod review;
mod rotation;
mod signin;
mod sources;
mod tls;
mod tor;
mod tor_network;

/// The private Tor network (tor_network.rs), here at the top so that it sorts first: tests run
/// in the order of their names, and this one, about a minute of waiting for tor, then runs
/// beside all the others instead of after them.
#[tokio::test(flavor = "multi_thread")]
async fn a_private_tor_network_carries_tips_and_analysts() {
    tor_network::tips_and_analysts_over_a_private_tor_network().await
}
