//! The analysts' pages (server-rendered, no JavaScript): sign-in with password and TOTP, the
//! queue (with what changed in the reviewer keys since the analyst last looked), bulk changes
//! over a selection of it, a tip's page with its sealed items (re-keyed ones marked), triage,
//! notes and replies, changing one's own password, sign-out.
//!
//! Sessions live in the database; the browser holds only a `__Host-` cookie (Secure,
//! HttpOnly, SameSite=Strict). Every form that changes something carries a CSRF token that is
//! checked (`extract::DeskForm`): the sign-in form a token paired with a short-lived cookie,
//! the others the session's own token.

mod account;
mod bulk;
mod keys;
mod login;
mod queue;
mod tip;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use super::AnalystState;
use crate::store::{STATUSES, StoreError};

/// Every desk page and form.
pub fn router() -> Router<AnalystState> {
    Router::new()
        .route("/", get(login::home))
        .route("/login", get(login::show).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/queue", get(queue::queue))
        .route(
            "/account/password",
            get(account::show).post(account::change),
        )
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

/// A status as the desk shows it: `in_review` is "In review".
pub fn status_name(status: &str) -> &'static str {
    match status {
        "new" => "New",
        "in_review" => "In review",
        "verified" => "Verified",
        "closed" => "Closed",
        "spam" => "Spam",
        _ => "Unknown",
    }
}

/// Every status as a choice: (value, name), in workflow order.
pub fn status_choices() -> Vec<(&'static str, &'static str)> {
    STATUSES.iter().map(|&s| (s, status_name(s))).collect()
}

/// The user names a tip may be assigned to: every active analyst, sorted.
async fn assignable(app: &AnalystState) -> Result<Vec<String>, StoreError> {
    Ok(app
        .intake
        .store
        .list_analysts()
        .await?
        .into_iter()
        .filter(|a| !a.disabled)
        .map(|a| a.username)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_a_human_name() {
        assert_eq!(status_name("in_review"), "In review");
        for (value, name) in status_choices() {
            assert_ne!(name, "Unknown", "{value}");
            assert!(!name.contains('_'), "{name}");
        }
    }
}
