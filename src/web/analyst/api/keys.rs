//! `/api/v1/keys`: the reviewer keyring, for admins — list, add, retire, revoke, and what is
//! sealed to which key set — and, for every analyst, the current key set. Every change is in
//! the audit trail; no private key ever reaches these routes.

use crate::api;
use crate::clock::now;
use crate::keyring::{KeyLookupError, Recipient};
use crate::store::KeyChangeError;
use crate::web::analyst::AnalystState;
use crate::web::analyst::error::{ApiError, internal};
use crate::web::analyst::extract::{ApiAdmin, ApiAnalyst};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

fn key_change_error(error: KeyChangeError) -> ApiError {
    match error {
        KeyChangeError::Lookup(e @ KeyLookupError::NotFound(_)) => {
            ApiError::new(StatusCode::NOT_FOUND, e.to_string())
        }
        KeyChangeError::Lookup(e @ KeyLookupError::Ambiguous(..)) => {
            ApiError::new(StatusCode::CONFLICT, e.to_string())
        }
        e @ (KeyChangeError::Duplicate(_) | KeyChangeError::Refused(_)) => {
            ApiError::new(StatusCode::CONFLICT, e.to_string())
        }
        KeyChangeError::Store(e) => internal(e),
    }
}

/// `GET /api/v1/keys` (admins): every key with its history, and the keyring's version.
pub async fn list(
    State(app): State<AnalystState>,
    ApiAdmin(_): ApiAdmin,
) -> Result<Response, ApiError> {
    let store = &app.intake.store;
    let keys = store.list_keys().await.map_err(internal)?;
    let keyring = store.keyring_version().await.map_err(internal)?;
    let active = keys.iter().filter(|k| k.active).count();
    Ok(Json(api::KeyList {
        current_key_set: keyring.key_set_id,
        keyring_version: keyring.version,
        keys: keys.iter().map(api::Key::from).collect(),
        min_active: app.min_active_keys as u32,
        warnings: crate::keyring::policy_warnings(active)
            .into_iter()
            .map(str::to_owned)
            .collect(),
    })
    .into_response())
}

fn valid_name(name: &str) -> bool {
    (1..=200).contains(&name.chars().count()) && !name.chars().any(char::is_control)
}

/// `POST /api/v1/keys` (admins): `{"recipient", "label", "owner"?}` adds a key to the active
/// set; the very next submission, on every node, is sealed to it.
pub async fn add(
    State(app): State<AnalystState>,
    ApiAdmin(analyst): ApiAdmin,
    body: Result<Json<api::NewKey>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(|_| {
        ApiError::bad_request("expected JSON {\"recipient\", \"label\", \"owner\"?}")
    })?;
    let label = request.label.trim();
    let owner = request
        .owner
        .as_deref()
        .map(str::trim)
        .filter(|o| !o.is_empty());
    if !valid_name(label) || owner.is_some_and(|o| !valid_name(o)) {
        return Err(ApiError::bad_request(
            "label and owner are 1 to 200 characters, without control characters",
        ));
    }
    // Refuses private keys (with an explanation) and keys whose plugin is missing here.
    let recipient = Recipient::parse(&request.recipient)
        .and_then(|r| {
            r.check_usable()?;
            Ok(r)
        })
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    let change = app
        .intake
        .store
        .add_key(&recipient, label, owner, &analyst.username, now())
        .await
        .map_err(key_change_error)?;
    Ok((StatusCode::CREATED, Json(api::KeyChange::from(&change))).into_response())
}

/// `POST /api/v1/keys/{id}/retire` (admins): `{id}` is the key's id, fingerprint or label.
pub async fn retire(
    State(app): State<AnalystState>,
    ApiAdmin(analyst): ApiAdmin,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let change = app
        .intake
        .store
        .retire_key(&key, app.min_active_keys, &analyst.username, now())
        .await
        .map_err(key_change_error)?;
    Ok(Json(api::KeyChange::from(&change)).into_response())
}

/// `POST /api/v1/keys/{id}/revoke` (admins): out of the active set at once; the answer lists
/// the tips the key can still open until they are re-keyed.
pub async fn revoke(
    State(app): State<AnalystState>,
    ApiAdmin(analyst): ApiAdmin,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let store = &app.intake.store;
    let change = store
        .revoke_key(&key, &analyst.username, now())
        .await
        .map_err(key_change_error)?;
    let tips_still_open = store
        .tips_open_to_key(change.key.id)
        .await
        .map_err(internal)?;
    Ok(Json(api::KeyChange {
        tips_still_open: Some(tips_still_open),
        ..api::KeyChange::from(&change)
    })
    .into_response())
}

/// `GET /api/v1/keys/status` (admins): items per key set, and what still needs re-keying.
pub async fn status(
    State(app): State<AnalystState>,
    ApiAdmin(_): ApiAdmin,
) -> Result<Response, ApiError> {
    let status = app.intake.store.keyring_status().await.map_err(internal)?;
    Ok(Json(api::KeyringStatus::from(&status)).into_response())
}

/// `GET /api/v1/keys/current` (any analyst): the key set every new item is sealed to, with its
/// keys' recipients, so that analysts see when it changes.
pub async fn current(
    State(app): State<AnalystState>,
    ApiAnalyst(_): ApiAnalyst,
) -> Result<Response, ApiError> {
    let snapshot = app
        .intake
        .store
        .keyring_snapshot()
        .await
        .map_err(internal)?;
    Ok(Json(api::CurrentKeys::from(&snapshot)).into_response())
}
