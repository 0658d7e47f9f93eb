//! `/api/v1/session`: signing in with password and TOTP for a bearer token, who the token
//! belongs to, and signing out.

use crate::api;
use crate::auth::signin::SignInError;
use crate::clock::now;
use crate::web::analyst::AnalystState;
use crate::web::analyst::error::ApiError;
use crate::web::analyst::extract::ApiSession;
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// `POST /api/v1/session`: `{"username", "password", "totp"}` → `{"token", "expires_at"}`.
pub async fn create(
    State(app): State<AnalystState>,
    body: Result<Json<api::SignIn>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(|_| {
        ApiError::bad_request("expected JSON {\"username\", \"password\", \"totp\"}")
    })?;
    let now = now();
    let analyst = app
        .auth
        .sign_in(&request.username, request.password, &request.totp, now)
        .await
        .map_err(|error| match error {
            SignInError::Invalid => ApiError::new(StatusCode::UNAUTHORIZED, "invalid credentials"),
            SignInError::Busy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many sign-ins at once; try again shortly",
            ),
            SignInError::Internal(error) => ApiError::internal("sign-in failed", error),
        })?;
    let session = app
        .auth
        .start_session(&analyst, "api", now)
        .await
        .map_err(|error| ApiError::internal("could not start a session", error))?;
    Ok(Json(api::NewSession {
        expires_at: session.expires_at,
        token: session.token,
    })
    .into_response())
}

/// `GET /api/v1/session`: who the token belongs to, and until when.
pub async fn current(session: ApiSession) -> Json<api::Session> {
    Json(api::Session {
        expires_at: session.expires_at,
        role: session.analyst.role.into(),
        username: session.analyst.username,
    })
}

/// `DELETE /api/v1/session`: signs out; the token stops working at once.
pub async fn delete(
    State(app): State<AnalystState>,
    session: ApiSession,
) -> Result<StatusCode, ApiError> {
    app.auth
        .end_session(&session.token, &session.analyst, now())
        .await
        .map_err(|error| ApiError::internal("could not sign out", error))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/analysts`: who a tip can be assigned to.
pub async fn analysts(
    State(app): State<AnalystState>,
    _session: ApiSession,
) -> Result<Response, ApiError> {
    let analysts = app
        .intake
        .store
        .list_analysts()
        .await
        .map_err(crate::web::analyst::error::internal)?
        .into_iter()
        .filter(|a| !a.disabled)
        .map(|a| a.username)
        .collect();
    Ok(Json(api::AnalystList { analysts }).into_response())
}
