//! `/api/v1/audit` (the audit trail and whether its chain is intact, for admins) and
//! `/health` (whether this node can reach its database and accept tips).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::audit::ChainStatus;
use crate::intake::KeyState;
use crate::web::analyst::AnalystState;
use crate::web::analyst::error::{ApiError, internal};
use crate::web::analyst::extract::ApiAdmin;

/// `GET /api/v1/audit` (admins): the audit trail and whether its chain is intact.
pub async fn trail(
    State(app): State<AnalystState>,
    ApiAdmin(_): ApiAdmin,
) -> Result<Response, ApiError> {
    let entries = app.intake.store.audit_entries().await.map_err(internal)?;
    let status = match crate::audit::verify(&app.auth.audit_key(), &entries) {
        ChainStatus::Intact { .. } => serde_json::json!({ "intact": true }),
        ChainStatus::Broken { seq, why } => {
            serde_json::json!({ "intact": false, "broken_at": seq, "why": why })
        }
    };
    Ok(Json(serde_json::json!({ "chain": status, "entries": entries })).into_response())
}

/// `GET /health`: the database answers, and whether tips are accepted now.
pub async fn health(State(app): State<AnalystState>) -> Response {
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
