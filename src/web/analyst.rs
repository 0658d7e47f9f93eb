//! The analyst listener: a health endpoint and the JSON API's sessions (`/api/v1/session`).
//! The review queue comes later, here and never on the public listener.

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::AppState;
use crate::auth::signin::{Analyst, SignInError};
use crate::intake::{KeyState, now};

pub fn router(state: AppState) -> Router {
    let router = Router::new()
        .route("/health", get(health))
        .route(
            "/api/v1/session",
            get(current_session)
                .post(create_session)
                .delete(delete_session),
        )
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(state);
    super::with_common_layers(router)
}

fn api_error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

#[derive(Deserialize)]
struct SignInRequest {
    username: String,
    password: Zeroizing<String>,
    totp: String,
}

/// `POST /api/v1/session`: `{"username", "password", "totp"}` → `{"token", "expires_at"}`.
async fn create_session(
    State(app): State<AppState>,
    body: Result<Json<SignInRequest>, JsonRejection>,
) -> Response {
    let Ok(Json(request)) = body else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "expected JSON {\"username\", \"password\", \"totp\"}",
        );
    };
    let now = now();
    match app
        .auth
        .sign_in(&request.username, request.password, &request.totp, now)
        .await
    {
        Ok(analyst) => match app.auth.start_session(&analyst, "api", now).await {
            Ok(session) => Json(serde_json::json!({
                "token": session.token.as_str(),
                "expires_at": session.expires_at,
            }))
            .into_response(),
            Err(error) => {
                tracing::error!(%error, "could not start a session");
                api_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "could not start a session",
                )
            }
        },
        Err(SignInError::Invalid) => api_error(StatusCode::UNAUTHORIZED, "invalid credentials"),
        Err(SignInError::Internal(error)) => {
            tracing::error!(%error, "sign-in failed");
            api_error(StatusCode::INTERNAL_SERVER_ERROR, "sign-in failed")
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 128)
}

/// The analyst behind an API request's bearer token, if it is a live API session.
async fn api_analyst(app: &AppState, headers: &HeaderMap) -> Result<(Analyst, i64), Response> {
    let unauthorized = || api_error(StatusCode::UNAUTHORIZED, "sign in first");
    let token = bearer(headers).ok_or_else(unauthorized)?;
    match app.auth.session(token, now()).await {
        Ok(Some((analyst, _, expires_at))) => Ok((analyst, expires_at)),
        Ok(None) => Err(unauthorized()),
        Err(error) => {
            tracing::error!(%error, "could not read a session");
            Err(api_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "session lookup failed",
            ))
        }
    }
}

/// `GET /api/v1/session`: who the token belongs to, and until when.
async fn current_session(State(app): State<AppState>, headers: HeaderMap) -> Response {
    match api_analyst(&app, &headers).await {
        Ok((analyst, expires_at)) => Json(serde_json::json!({
            "username": analyst.username,
            "role": analyst.role,
            "expires_at": expires_at,
        }))
        .into_response(),
        Err(response) => response,
    }
}

/// `DELETE /api/v1/session`: signs out; the token stops working at once.
async fn delete_session(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let (analyst, _) = match api_analyst(&app, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let token = bearer(&headers).expect("checked by api_analyst");
    match app.auth.end_session(token, &analyst, now()).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => {
            tracing::error!(%error, "could not end a session");
            api_error(StatusCode::INTERNAL_SERVER_ERROR, "could not sign out")
        }
    }
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
