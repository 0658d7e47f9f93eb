//! The analyst listener. For now: a health endpoint that says whether the database answers
//! and whether submissions are being accepted. Sign-in and the review queue come later, here
//! and never on the public listener.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::AppState;
use crate::intake::KeyState;

pub fn router(state: AppState) -> Router {
    let router = Router::new()
        .route("/health", get(health))
        .with_state(state);
    super::with_common_layers(router)
}

async fn health(State(app): State<AppState>) -> Response {
    let database = app.intake.store.counts().await.is_ok();
    let intake = match app.intake.keys.current() {
        KeyState::Ready(_) => "accepting",
        KeyState::NoKeys => "paused: no active reviewer key",
        KeyState::Unusable(_) => "paused: reviewer keys unusable on this node",
    };
    let status = if database {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({
            "status": if database { "ok" } else { "database unavailable" },
            "intake": intake,
        })),
    )
        .into_response()
}
