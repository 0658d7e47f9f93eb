//! `/api/v1/rekey` and the item replacements: re-keying, for any analyst who holds a key that
//! opens old items. What needs it; a new header for an item sealed to a retired key; a fresh
//! encryption for an item sealed to a revoked key. Every swap is in the audit trail; no
//! plaintext or private key ever reaches these routes.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::StreamExt;

use crate::api;
use crate::clock::{coarsen, now};
use crate::ids::{random_id, valid_id};
use crate::intake::CHUNK_BYTES;
use crate::rekey::MAX_HEADER_BYTES;
use crate::store::{RekeyMode, RekeyRefusal};
use crate::web::analyst::AnalystState;
use crate::web::analyst::error::{ApiError, internal};
use crate::web::analyst::extract::ApiAnalyst;

/// `GET /api/v1/rekey`: the current key set (with its recipients, for the client to wrap to),
/// how many items still need re-keying, and a page of them in id order (`after`: the `next`
/// of the previous page). Items in `header` mode come with their current header.
pub async fn items(
    State(app): State<AnalystState>,
    ApiAnalyst(_): ApiAnalyst,
    query: Result<Query<api::RekeyQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|_| ApiError::bad_request("bad query parameters"))?;
    let after = query.after.unwrap_or_default();
    if !(after.is_empty() || valid_id(&after)) {
        return Err(ApiError::bad_request("bad cursor"));
    }
    let limit = query.limit.unwrap_or(100).clamp(1, 500);
    let store = &app.intake.store;
    let snapshot = store.keyring_snapshot().await.map_err(internal)?;
    let sets = store.key_set_status().await.map_err(internal)?;
    let (mut header, mut payload) = (0, 0);
    for set in &sets {
        if set.revoked_at.is_some() {
            payload += set.items;
        } else if set.retired_at.is_some() {
            header += set.items;
        }
    }
    let items = store
        .items_to_rekey(&after, limit)
        .await
        .map_err(internal)?;
    let next = (items.len() as i64 == limit)
        .then(|| items.last().map(|i| i.id.clone()))
        .flatten();
    Ok(Json(api::RekeyPage {
        items: items.iter().map(api::RekeyItem::from).collect(),
        key_set: api::CurrentKeySet::of(&snapshot),
        keyring_version: snapshot.version,
        next,
        remaining: api::Remaining { header, payload },
    })
    .into_response())
}

fn refusal(error: RekeyRefusal) -> ApiError {
    use RekeyRefusal::*;
    let status = match &error {
        NoSuchItem => StatusCode::NOT_FOUND,
        NotNeeded | NeedsFreshEncryption | PayloadChanged | PayloadNotFresh | Changed
        | KeyringChanged(_) => StatusCode::CONFLICT,
        WrongLength { .. } | Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Damaged(_) | Store(_) => return internal(error),
    };
    ApiError::new(status, error.to_string())
}

/// `PUT /api/v1/items/{id}/header`: for an item sealed to a retired key (none revoked), its
/// file key re-wrapped to the current keys. The payload stays as it is, byte for byte.
pub async fn replace_header(
    State(app): State<AnalystState>,
    ApiAnalyst(analyst): ApiAnalyst,
    Path(id): Path<String>,
    body: Result<Json<api::HeaderReplacement>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(|_| {
        ApiError::bad_request(
            "expected JSON {\"from_key_set\", \"to_key_set\", \"replaces\", \"header\"}",
        )
    })?;
    if !valid_id(&id) {
        return Err(ApiError::not_found("no such item"));
    }
    let header = BASE64
        .decode(request.header.as_bytes())
        .map_err(|_| ApiError::bad_request("header: expected base64"))?;
    if header.len() > MAX_HEADER_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the header is too large",
        ));
    }
    let rekeyed = app
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
            coarsen(now(), app.intake.time_granularity()),
        )
        .await
        .map_err(refusal)?;
    Ok(Json(api::Rekeyed::new(&id, &rekeyed)).into_response())
}

/// `PUT /api/v1/items/{id}/sealed?from_key_set=N&to_key_set=M`: a complete age file, sealed to
/// the current keys, in place of the stored one. For an item sealed to a revoked key it must be
/// a fresh encryption (new file key and nonce); for one whose keys were only retired, its
/// payload must be the stored one, byte for byte (only the header may change). Streamed into
/// staged chunks, checked, then swapped in one transaction.
pub async fn replace_sealed(
    State(app): State<AnalystState>,
    ApiAnalyst(analyst): ApiAnalyst,
    Path(id): Path<String>,
    query: Result<Query<api::SealedQuery>, QueryRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    let Query(query) =
        query.map_err(|_| ApiError::bad_request("expected ?from_key_set=N&to_key_set=M"))?;
    if !valid_id(&id) {
        return Err(ApiError::not_found("no such item"));
    }
    let store = &app.intake.store;
    // Refusals that need no upload come first.
    let target = store.rekey_target(&id).await.map_err(refusal)?;
    if target.key_set_id != query.from_key_set {
        return Err(refusal(RekeyRefusal::Changed));
    }
    // Checked again in the swap's transaction; here so that a stale client uploads nothing.
    let keyring = store.keyring_version().await.map_err(internal)?;
    if keyring.key_set_id != Some(query.to_key_set) {
        return Err(refusal(RekeyRefusal::KeyringChanged(keyring.key_set_id)));
    }
    let limit = target.size as u64 + MAX_HEADER_BYTES as u64;
    let staged_id = random_id();
    let swapped = match stage_upload(&app, &staged_id, query.to_key_set, body, limit).await {
        Ok(size) => store
            .replace_sealed(
                &id,
                &target,
                &staged_id,
                size,
                query.to_key_set,
                &analyst.username,
                now(),
                coarsen(now(), app.intake.time_granularity()),
            )
            .await
            .map_err(refusal),
        Err(error) => Err(error),
    };
    match swapped {
        Ok(rekeyed) => {
            if rekeyed.mode == RekeyMode::Payload {
                tracing::info!("an item sealed to a revoked key was encrypted afresh");
            }
            Ok(Json(api::Rekeyed::new(&id, &rekeyed)).into_response())
        }
        Err(error) => {
            discard(&app, &staged_id).await;
            Err(error)
        }
    }
}

async fn discard(app: &AnalystState, staged_id: &str) {
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
    app: &AnalystState,
    staged_id: &str,
    key_set: i64,
    body: Body,
    limit: u64,
) -> Result<i64, ApiError> {
    let store = &app.intake.store;
    let staged_at = coarsen(now(), app.intake.time_granularity());
    store
        .stage_item(staged_id, key_set, staged_at)
        .await
        .map_err(internal)?;
    let mut stream = body.into_data_stream();
    let (mut pending, mut seq, mut total) = (Vec::with_capacity(CHUNK_BYTES), 0i64, 0u64);
    loop {
        let next = tokio::time::timeout(std::time::Duration::from_secs(60), stream.next())
            .await
            .map_err(|_| ApiError::new(StatusCode::REQUEST_TIMEOUT, "the upload stalled"))?;
        let Some(piece) = next else { break };
        let piece = piece.map_err(|_| ApiError::bad_request("the upload was cut off"))?;
        total += piece.len() as u64;
        if total > limit {
            return Err(ApiError::new(
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
