//! The JSON API under `/api/v1`: sessions, the review queue, triage and bulk changes, notes and
//! replies, sealed downloads, the audit trail, reviewer keys and re-keying. Described in
//! `docs/openapi.json`, which a test keeps in step with `pub fn router` below.

mod audit;
mod keys;
mod rekey;
mod session;
pub mod tips;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};

use super::AnalystState;

pub use audit::health;

/// Every `/api/v1` route but `uploads()`.
pub fn router() -> Router<AnalystState> {
    Router::new()
        .route(
            "/api/v1/session",
            get(session::current)
                .post(session::create)
                .delete(session::delete),
        )
        .route("/api/v1/analysts", get(session::analysts))
        .route("/api/v1/tips", get(tips::list))
        // Up to 2000 ids of 34 bytes each in JSON.
        .route(
            "/api/v1/tips/bulk",
            post(tips::bulk).layer(DefaultBodyLimit::max(128 * 1024)),
        )
        .route("/api/v1/tips/{id}", get(tips::get).patch(tips::update))
        .route("/api/v1/tips/{id}/notes", post(tips::add_note))
        .route("/api/v1/tips/{id}/replies", post(tips::add_reply))
        .route(
            "/api/v1/tips/{id}/notes/sealed",
            post(tips::add_sealed_note),
        )
        .route(
            "/api/v1/tips/{id}/replies/sealed",
            post(tips::add_sealed_reply),
        )
        .route("/api/v1/items/{id}/sealed", get(tips::download_item))
        // A header of up to 64 KiB, in base64 inside JSON.
        .route(
            "/api/v1/items/{id}/header",
            put(rekey::replace_header).layer(DefaultBodyLimit::max(128 * 1024)),
        )
        .route("/api/v1/audit", get(audit::trail))
        .route("/api/v1/keys", get(keys::list).post(keys::add))
        .route("/api/v1/keys/status", get(keys::status))
        .route("/api/v1/keys/current", get(keys::current))
        .route("/api/v1/keys/{id}/retire", post(keys::retire))
        .route("/api/v1/keys/{id}/revoke", post(keys::revoke))
        .route("/api/v1/rekey", get(rekey::items))
}

/// The routes whose bodies stream (a re-keyed item, as large as the item): not read whole
/// before the handler, which bounds and stages them itself.
pub fn uploads() -> Router<AnalystState> {
    Router::new().route("/api/v1/items/{id}/sealed", put(rekey::replace_sealed))
}
