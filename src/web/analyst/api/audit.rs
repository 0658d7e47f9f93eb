//! `/api/v1/audit` (the audit trail and whether its chain is intact, for admins) and
//! `/health` (whether this node can reach its database and accept tips).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::api;
use crate::web::analyst::AnalystState;
use crate::web::analyst::error::{ApiError, internal};
use crate::web::analyst::extract::ApiAdmin;

/// `GET /api/v1/audit` (admins): the audit trail and whether its chain is intact.
pub async fn trail(
    State(app): State<AnalystState>,
    ApiAdmin(_): ApiAdmin,
) -> Result<Response, ApiError> {
    let entries = app.intake.store.audit_entries().await.map_err(internal)?;
    let chain = crate::audit::verify(&app.auth.audit_key(), &entries);
    Ok(Json(api::AuditTrail {
        chain: api::ChainStatus::from(&chain),
        entries: entries.iter().map(api::AuditEntry::from).collect(),
    })
    .into_response())
}

/// `GET /health`: the database answers, and whether tips are accepted now.
pub async fn health(State(app): State<AnalystState>) -> Response {
    let database = app.intake.store.counts().await.is_ok();
    let (code, status) = if database {
        (StatusCode::OK, api::HealthStatus::Ok)
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            api::HealthStatus::DatabaseUnavailable,
        )
    };
    let health = api::Health {
        intake: api::IntakeState::from(&app.intake.keys.current()),
        status,
    };
    (code, Json(health)).into_response()
}
