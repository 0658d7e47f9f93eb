//! The test harness: real `tipbox` processes, real sockets, real SQLite files and the real
//! PostgreSQL on 127.0.0.1:5432 (database `test`, one fresh schema per deployment).
//!
//! The benchmarks (benches/) include this module too, for deployments and servers.

pub mod analyst;
pub mod at_rest;
pub mod chromium;
pub mod circuits;
pub mod deployment;
pub mod http;
pub mod library;
pub mod sealed;
pub mod server;
pub mod web;

pub use deployment::{
    Backend, Deployment, SqlValue, TIPBOX, postgres_base_url, shipped_rate_limits,
};
pub use http::{
    client, free_loopback_port, install_tls_provider, random_bytes, random_marker, receipt_from,
    submit, submit_at, submit_form_tip, submit_message, submit_ok, submit_tip, tip_form,
};
pub use library::*;
pub use sealed::{
    age_cli_decrypt, age_cli_opens, attachment_item, decrypt, items_of, open_report, plaintext_len,
    report_item, stored_item, try_decrypt,
};
pub use server::Server;

/// Runs each named `async fn NAME(backend: Backend)` of the calling module against each
/// backend, as the tests `NAME::sqlite` and `NAME::postgres`.
macro_rules! on_both_backends {
    ($($test:ident),+ $(,)?) => {
        $(
            mod $test {
                #[tokio::test(flavor = "multi_thread")]
                async fn sqlite() {
                    super::$test($crate::support::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread")]
                async fn postgres() {
                    super::$test($crate::support::Backend::Postgres).await
                }
            }
        )+
    };
}
pub(crate) use on_both_backends;
