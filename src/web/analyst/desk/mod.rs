//! The analysts' pages (server-rendered, no JavaScript): sign-in with password and TOTP, the
//! queue (with what changed in the reviewer keys since the analyst last looked), bulk changes
//! over a selection of it, a tip's page with its sealed items (re-keyed ones marked), triage,
//! notes and replies, sign-out.
//!
//! Sessions live in the database; the browser holds only a `__Host-` cookie (Secure,
//! HttpOnly, SameSite=Strict). Every form that changes something carries a CSRF token that is
//! checked (`extract::DeskForm`): the sign-in form a token paired with a short-lived cookie,
//! the others the session's own token.

mod bulk;
mod keys;
mod login;
mod queue;
mod tip;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use super::AnalystState;

/// Every desk page and form.
pub fn router() -> Router<AnalystState> {
    Router::new()
        .route("/", get(login::home))
        .route("/login", get(login::show).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/queue", get(queue::queue))
        .route("/keys/acknowledge", post(keys::acknowledge))
        .route("/tips/bulk", post(bulk::review))
        // The confirmation lists up to 2000 tips, in a field each.
        .route(
            "/tips/bulk/confirm",
            post(bulk::confirm).layer(DefaultBodyLimit::max(128 * 1024)),
        )
        .route("/tips/{id}", get(tip::tip))
        .route("/tips/{id}/triage", post(tip::triage))
        .route("/tips/{id}/notes", post(tip::add_note))
        .route("/tips/{id}/replies", post(tip::add_reply))
        .route("/tips/{id}/archive", get(tip::download_archive))
        .route("/items/{id}/sealed", get(tip::download_item))
}

/// A time as the desk shows it: `YYYY-MM-DD HH:MM` (UTC; seconds dropped when zero).
fn time(t: i64) -> String {
    let text = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64),
    )
    .to_string();
    text.trim_end_matches(":00Z").replace('T', " ")
}
