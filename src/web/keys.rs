//! The analyst API for reviewer keys: the keyring for admins (list, add, retire, revoke,
//! status), and re-keying for any analyst who holds a key that opens old items (what needs
//! it; a new header for items sealed to a retired key; a fresh encryption for items sealed to
//! a revoked key). Every change is in the audit trail; no plaintext or private key ever
//! reaches these routes.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::StreamExt;
use serde::Deserialize;

use super::AppState;
use super::analyst::{ApiAnalyst, api_error, internal};
use crate::auth::Role;
use crate::auth::signin::Analyst;
use crate::clock::{coarsen, now};
use crate::ids::random_id;
use crate::ids::valid_id;
use crate::intake::CHUNK_BYTES;
use crate::keyring::{KeyLookupError, Recipient};
use crate::rekey::MAX_HEADER_BYTES;
use crate::store::{KeyChange, KeyChangeError, RekeyMode, RekeyRefusal, Rekeyed};

/// The refusal for anyone but an admin.
fn refuse_unless_admin(analyst: &Analyst) -> Option<Response> {
    (analyst.role != Role::Admin).then(|| api_error(StatusCode::FORBIDDEN, "admins only"))
}

fn key_change_error(error: KeyChangeError) -> Response {
    match error {
        KeyChangeError::Lookup(e @ KeyLookupError::NotFound(_)) => {
            api_error(StatusCode::NOT_FOUND, &e.to_string())
        }
        KeyChangeError::Lookup(e @ KeyLookupError::Ambiguous(..)) => {
            api_error(StatusCode::CONFLICT, &e.to_string())
        }
        e @ (KeyChangeError::Duplicate(_) | KeyChangeError::Refused(_)) => {
            api_error(StatusCode::CONFLICT, &e.to_string())
        }
        KeyChangeError::Store(e) => internal(e),
    }
}

/// The answer to a key change: the key, the keyring after it, and the policy's warnings.
fn key_change_json(change: &KeyChange) -> serde_json::Value {
    serde_json::json!({
        "key": change.key.to_json(),
        "keyring_version": change.keyring.version,
        "current_key_set": change.keyring.key_set_id,
        "active_keys": change.active_keys,
        "warnings": crate::keyring::policy_warnings(change.active_keys),
    })
}

/// `GET /api/v1/keys` (admins): every key with its history, and the keyring's version.
pub(super) async fn list_keys(
    State(app): State<AppState>,
    ApiAnalyst(analyst): ApiAnalyst,
) -> Response {
    if let Some(refusal) = refuse_unless_admin(&analyst) {
        return refusal;
    }
    let store = &app.intake.store;
    let (keys, keyring) = match (store.list_keys().await, store.keyring_version().await) {
        (Ok(keys), Ok(keyring)) => (keys, keyring),
        (Err(e), _) | (_, Err(e)) => return internal(e),
    };
    let active = keys.iter().filter(|k| k.active).count();
    Json(serde_json::json!({
        "keyring_version": keyring.version,
        "current_key_set": keyring.key_set_id,
        "min_active": app.config.keys.min_active,
        "keys": keys.iter().map(|k| k.to_json()).collect::<Vec<_>>(),
        "warnings": crate::keyring::policy_warnings(active),
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AddKeyRequest {
    recipient: String,
    label: String,
    owner: Option<String>,
}

fn valid_name(name: &str) -> bool {
    (1..=200).contains(&name.chars().count()) && !name.chars().any(char::is_control)
}

/// `POST /api/v1/keys` (admins): `{"recipient", "label", "owner"?}` adds a key to the active
/// set; the very next submission, on every node, is sealed to it.
pub(super) async fn add_key(
    State(app): State<AppState>,
    ApiAnalyst(analyst): ApiAnalyst,
    body: Result<Json<AddKeyRequest>, JsonRejection>,
) -> Response {
    if let Some(refusal) = refuse_unless_admin(&analyst) {
        return refusal;
    }
    let Ok(Json(request)) = body else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "expected JSON {\"recipient\", \"label\", \"owner\"?}",
        );
    };
    let label = request.label.trim();
    let owner = request
        .owner
        .as_deref()
        .map(str::trim)
        .filter(|o| !o.is_empty());
    if !valid_name(label) || owner.is_some_and(|o| !valid_name(o)) {
        return api_error(
            StatusCode::BAD_REQUEST,
            "label and owner are 1 to 200 characters, without control characters",
        );
    }
    // Refuses private keys (with an explanation) and keys whose plugin is missing here.
    let recipient = match Recipient::parse(&request.recipient).and_then(|r| {
        r.check_usable()?;
        Ok(r)
    }) {
        Ok(recipient) => recipient,
        Err(error) => return api_error(StatusCode::BAD_REQUEST, &error.to_string()),
    };
    match app
        .intake
        .store
        .add_key(&recipient, label, owner, &analyst.username, now())
        .await
    {
        Ok(change) => (StatusCode::CREATED, Json(key_change_json(&change))).into_response(),
        Err(error) => key_change_error(error),
    }
}

/// `POST /api/v1/keys/{id}/retire` (admins): `{id}` is the key's id, fingerprint or label.
pub(super) async fn retire_key(
    State(app): State<AppState>,
    ApiAnalyst(analyst): ApiAnalyst,
    Path(key): Path<String>,
) -> Response {
    if let Some(refusal) = refuse_unless_admin(&analyst) {
        return refusal;
    }
    let min_active = app.config.keys.min_active as usize;
    match app
        .intake
        .store
        .retire_key(&key, min_active, &analyst.username, now())
        .await
    {
        Ok(change) => Json(key_change_json(&change)).into_response(),
        Err(error) => key_change_error(error),
    }
}

/// `POST /api/v1/keys/{id}/revoke` (admins): out of the active set at once; the answer lists
/// the tips the key can still open until they are re-keyed.
pub(super) async fn revoke_key(
    State(app): State<AppState>,
    ApiAnalyst(analyst): ApiAnalyst,
    Path(key): Path<String>,
) -> Response {
    if let Some(refusal) = refuse_unless_admin(&analyst) {
        return refusal;
    }
    let store = &app.intake.store;
    let change = match store.revoke_key(&key, &analyst.username, now()).await {
        Ok(change) => change,
        Err(error) => return key_change_error(error),
    };
    let mut answer = key_change_json(&change);
    match store.tips_open_to_key(change.key.id).await {
        Ok(tips) => answer["tips_still_open"] = tips.into(),
        Err(error) => return internal(error),
    }
    Json(answer).into_response()
}

/// `GET /api/v1/keys/status` (admins): items per key set, and what still needs re-keying.
pub(super) async fn key_status(
    State(app): State<AppState>,
    ApiAnalyst(analyst): ApiAnalyst,
) -> Response {
    if let Some(refusal) = refuse_unless_admin(&analyst) {
        return refusal;
    }
    match app.intake.store.keyring_status().await {
        Ok(status) => Json(status).into_response(),
        Err(error) => internal(error),
    }
}

#[derive(Deserialize)]
pub(super) struct RekeyQuery {
    after: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/rekey`: the current key set (with its recipients, for the client to wrap to),
/// how many items still need re-keying, and a page of them in id order (`after`: the `next`
/// of the previous page). Items in `header` mode come with their current header.
pub(super) async fn items_to_rekey(
    State(app): State<AppState>,
    ApiAnalyst(_): ApiAnalyst,
    query: Result<Query<RekeyQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return api_error(StatusCode::BAD_REQUEST, "bad query parameters");
    };
    let after = query.after.unwrap_or_default();
    if !(after.is_empty() || valid_id(&after)) {
        return api_error(StatusCode::BAD_REQUEST, "bad cursor");
    }
    let limit = query.limit.unwrap_or(100).clamp(1, 500);
    let store = &app.intake.store;
    let snapshot = match store.keyring_snapshot().await {
        Ok(snapshot) => snapshot,
        Err(error) => return internal(error),
    };
    let sets = match store.key_set_status().await {
        Ok(sets) => sets,
        Err(error) => return internal(error),
    };
    let (mut header, mut payload) = (0, 0);
    for set in &sets {
        if set.revoked_at.is_some() {
            payload += set.items;
        } else if set.retired_at.is_some() {
            header += set.items;
        }
    }
    let items = match store.items_to_rekey(&after, limit).await {
        Ok(items) => items,
        Err(error) => return internal(error),
    };
    let next = (items.len() as i64 == limit)
        .then(|| items.last().map(|i| i.id.clone()))
        .flatten();
    let key_set = snapshot.key_set.map(|(id, fingerprint, keys)| {
        serde_json::json!({
            "id": id,
            "fingerprint": fingerprint,
            "keys": keys.iter().map(|k| serde_json::json!({
                "id": k.id,
                "fingerprint": k.fingerprint,
                "label": k.label,
                "kind": k.recipient.kind.as_db(),
                "recipient": k.recipient.text,
            })).collect::<Vec<_>>(),
        })
    });
    Json(serde_json::json!({
        "keyring_version": snapshot.version,
        "key_set": key_set,
        "remaining": { "header": header, "payload": payload },
        "items": items.iter().map(|i| serde_json::json!({
            "id": i.id,
            "tip": i.tip_id,
            "kind": i.kind,
            "size": i.size,
            "key_set": i.key_set_id,
            "mode": i.mode,
            "header": i.header.as_ref().map(|h| BASE64.encode(h)),
        })).collect::<Vec<_>>(),
        "next": next,
    }))
    .into_response()
}

fn rekey_refusal(error: RekeyRefusal) -> Response {
    use RekeyRefusal::*;
    let status = match &error {
        NoSuchItem => StatusCode::NOT_FOUND,
        NotNeeded | NeedsFreshEncryption | PayloadChanged | PayloadNotFresh | Changed
        | KeyringChanged(_) => StatusCode::CONFLICT,
        WrongLength { .. } | Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Damaged(_) | Store(_) => return internal(error),
    };
    api_error(status, &error.to_string())
}

fn rekeyed_json(item: &str, rekeyed: &Rekeyed) -> Response {
    Json(serde_json::json!({
        "id": item,
        "mode": rekeyed.mode,
        "from_key_set": rekeyed.from_key_set,
        "key_set": rekeyed.to_key_set,
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HeaderRequest {
    /// The key set the item was sealed to when the client fetched its header.
    from_key_set: i64,
    /// The key set the new header wraps the file key to: must still be the current one.
    to_key_set: i64,
    /// The SHA-256 (hex) of the header the client re-wrapped.
    replaces: String,
    /// The new header, base64.
    header: String,
}

/// `PUT /api/v1/items/{id}/header`: for an item sealed to a retired key (none revoked), its
/// file key re-wrapped to the current keys. The payload stays as it is, byte for byte.
pub(super) async fn replace_header(
    State(app): State<AppState>,
    ApiAnalyst(analyst): ApiAnalyst,
    Path(id): Path<String>,
    body: Result<Json<HeaderRequest>, JsonRejection>,
) -> Response {
    let Ok(Json(request)) = body else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "expected JSON {\"from_key_set\", \"to_key_set\", \"replaces\", \"header\"}",
        );
    };
    if !valid_id(&id) {
        return api_error(StatusCode::NOT_FOUND, "no such item");
    }
    let Ok(header) = BASE64.decode(request.header.as_bytes()) else {
        return api_error(StatusCode::BAD_REQUEST, "header: expected base64");
    };
    if header.len() > MAX_HEADER_BYTES {
        return api_error(StatusCode::PAYLOAD_TOO_LARGE, "the header is too large");
    }
    match app
        .intake
        .store
        .replace_header(
            &id,
            request.from_key_set,
            &request.replaces,
            &header,
            request.to_key_set,
            &analyst.username,
            now(),
        )
        .await
    {
        Ok(rekeyed) => rekeyed_json(&id, &rekeyed),
        Err(error) => rekey_refusal(error),
    }
}

#[derive(Deserialize)]
pub(super) struct SealedQuery {
    from_key_set: i64,
    to_key_set: i64,
}

/// `PUT /api/v1/items/{id}/sealed?from_key_set=N&to_key_set=M`: a complete age file, sealed to
/// the current keys, in place of the stored one. For an item sealed to a revoked key it must be
/// a fresh encryption (new file key and nonce); for one whose keys were only retired, its
/// payload must be the stored one, byte for byte (only the header may change). Streamed into
/// staged chunks, checked, then swapped in one transaction.
pub(super) async fn replace_sealed(
    State(app): State<AppState>,
    ApiAnalyst(analyst): ApiAnalyst,
    Path(id): Path<String>,
    query: Result<Query<SealedQuery>, QueryRejection>,
    body: Body,
) -> Response {
    let Ok(Query(query)) = query else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "expected ?from_key_set=N&to_key_set=M",
        );
    };
    if !valid_id(&id) {
        return api_error(StatusCode::NOT_FOUND, "no such item");
    }
    let store = &app.intake.store;
    // Refusals that need no upload come first.
    let target = match store.rekey_target(&id).await {
        Ok(target) => target,
        Err(error) => return rekey_refusal(error),
    };
    if target.key_set_id != query.from_key_set {
        return rekey_refusal(RekeyRefusal::Changed);
    }
    // Checked again in the swap's transaction; here so that a stale client uploads nothing.
    match store.keyring_version().await {
        Ok(keyring) if keyring.key_set_id == Some(query.to_key_set) => {}
        Ok(keyring) => return rekey_refusal(RekeyRefusal::KeyringChanged(keyring.key_set_id)),
        Err(error) => return internal(error),
    }
    let limit = target.size as u64 + MAX_HEADER_BYTES as u64;
    let staged_id = random_id();
    let staged = stage_upload(&app, &staged_id, query.to_key_set, body, limit).await;
    let result = match staged {
        Ok(size) => {
            store
                .replace_sealed(
                    &id,
                    &target,
                    &staged_id,
                    size,
                    query.to_key_set,
                    &analyst.username,
                    now(),
                )
                .await
        }
        Err(response) => {
            discard(&app, &staged_id).await;
            return response;
        }
    };
    match result {
        Ok(rekeyed) => {
            if rekeyed.mode == RekeyMode::Payload {
                tracing::info!("an item sealed to a revoked key was encrypted afresh");
            }
            rekeyed_json(&id, &rekeyed)
        }
        Err(error) => {
            discard(&app, &staged_id).await;
            rekey_refusal(error)
        }
    }
}

async fn discard(app: &AppState, staged_id: &str) {
    if let Err(error) = app
        .intake
        .store
        .discard_staged(&[staged_id.to_owned()])
        .await
    {
        tracing::error!(%error, "could not delete a staged re-key upload; the sweeper will");
    }
}

/// Streams the request body into staged chunks of the item `staged_id` (at most `limit` bytes;
/// swept like any staged upload if left behind); returns its size.
async fn stage_upload(
    app: &AppState,
    staged_id: &str,
    key_set: i64,
    body: Body,
    limit: u64,
) -> Result<i64, Response> {
    let store = &app.intake.store;
    let staged_at = coarsen(now(), app.config.privacy.time_granularity_seconds);
    store
        .stage_item(staged_id, key_set, staged_at)
        .await
        .map_err(internal)?;
    let mut stream = body.into_data_stream();
    let (mut pending, mut seq, mut total) = (Vec::with_capacity(CHUNK_BYTES), 0i64, 0u64);
    loop {
        let next = tokio::time::timeout(std::time::Duration::from_secs(60), stream.next())
            .await
            .map_err(|_| api_error(StatusCode::REQUEST_TIMEOUT, "the upload stalled"))?;
        let Some(piece) = next else { break };
        let piece =
            piece.map_err(|_| api_error(StatusCode::BAD_REQUEST, "the upload was cut off"))?;
        total += piece.len() as u64;
        if total > limit {
            return Err(api_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "larger than the item it replaces could be",
            ));
        }
        pending.extend_from_slice(&piece);
        // Every chunk but the last is exactly CHUNK_BYTES, so the first one holds the header.
        while pending.len() >= CHUNK_BYTES {
            let rest = pending.split_off(CHUNK_BYTES);
            store
                .append_chunk(staged_id, seq, &pending)
                .await
                .map_err(internal)?;
            seq += 1;
            pending = rest;
        }
    }
    if !pending.is_empty() || seq == 0 {
        store
            .append_chunk(staged_id, seq, &pending)
            .await
            .map_err(internal)?;
    }
    Ok(total as i64)
}
