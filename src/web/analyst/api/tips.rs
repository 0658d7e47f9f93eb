//! `/api/v1/tips` and `/api/v1/items`: the review queue, one tip with its items and replies,
//! triage, bulk changes, notes and replies, and sealed downloads.

use crate::api;
use crate::ids::valid_id;
use crate::store::{MAX_BULK, QueueFilter, STATUSES};
use crate::web::analyst::AnalystState;
use crate::web::analyst::actions::{self, Triage, Writing, viewed};
use crate::web::analyst::downloads;
use crate::web::analyst::error::{ApiError, internal};
use crate::web::analyst::extract::ApiAnalyst;
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A queue cursor, `<received_at>.<id>`: the `next` of the previous page.
pub fn parse_cursor(cursor: &str) -> Option<(i64, String)> {
    let (time, id) = cursor.split_once('.')?;
    let valid_id = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    valid_id.then_some((time.parse().ok()?, id.to_owned()))
}

/// `GET /api/v1/tips`: newest first; `next` is the `before` cursor of the following page.
pub async fn list(
    State(app): State<AnalystState>,
    ApiAnalyst(analyst): ApiAnalyst,
    query: Result<Query<api::TipsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|_| ApiError::bad_request("bad query parameters"))?;
    if query
        .status
        .as_deref()
        .is_some_and(|s| !STATUSES.contains(&s))
    {
        return Err(ApiError::bad_request("unknown status"));
    }
    let before = match query.before.as_deref().map(parse_cursor) {
        None => None,
        Some(Some(cursor)) => Some(cursor),
        Some(None) => return Err(ApiError::bad_request("bad cursor")),
    };
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let filter = QueueFilter {
        status: query.status,
        label: query.label,
        assignee: query.assignee,
        unpulled_by: query.unpulled.then_some(analyst.id),
        followed_up: query.followed_up,
        before,
        limit,
    };
    let tips = app
        .intake
        .store
        .list_tips(&filter)
        .await
        .map_err(internal)?;
    let next = (tips.len() as i64 == limit)
        .then(|| tips.last().map(|t| format!("{}.{}", t.received_at, t.id)))
        .flatten();
    Ok(Json(api::TipPage {
        next,
        tips: tips.iter().map(api::Tip::from).collect(),
    })
    .into_response())
}

/// `GET /api/v1/tips/{id}`.
pub async fn get(
    State(app): State<AnalystState>,
    ApiAnalyst(analyst): ApiAnalyst,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !valid_id(&id) {
        return Err(ApiError::not_found("no such tip"));
    }
    let store = &app.intake.store;
    let tip = store
        .tip(&id)
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError::not_found("no such tip"))?;
    let replies = store.reply_statuses(&id).await.map_err(internal)?;
    let reply_recipient = app.intake.reply_recipient(&id).await.map_err(internal)?;
    viewed(&app, &analyst, &id).await;
    let tip = api::Tip {
        reply_recipient,
        replies: Some(replies.iter().map(api::Reply::from).collect()),
        ..api::Tip::from(&tip)
    };
    Ok(Json(tip).into_response())
}

/// `PATCH /api/v1/tips/{id}`: status, labels and assignee; answers with the tip as it is now.
pub async fn update(
    State(app): State<AnalystState>,
    ApiAnalyst(analyst): ApiAnalyst,
    Path(id): Path<String>,
    body: Result<Json<api::Triage>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(|_| {
        ApiError::bad_request("expected JSON with any of \"status\", \"labels\", \"assignee\"")
    })?;
    let triage = Triage {
        status: request.status,
        labels: request.labels,
        assignee: request.assignee,
    };
    actions::triage(&app, &analyst, &id, triage).await?;
    let tip = app
        .intake
        .store
        .tip(&id)
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError::not_found("no such tip"))?;
    Ok(Json(api::Tip::from(&tip)).into_response())
}

/// `POST /api/v1/tips/bulk`: `{"action", "ids"}`, one action over up to 2000 tips in one
/// transaction → how many changed, and which were unchanged or missing.
pub async fn bulk(
    State(app): State<AnalystState>,
    ApiAnalyst(analyst): ApiAnalyst,
    body: Result<Json<api::BulkChange>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("a bulk change takes 1 to {MAX_BULK} tips"),
            )
        } else {
            ApiError::bad_request("expected JSON {\"action\", \"ids\"}")
        }
    })?;
    let outcome = actions::bulk(&app, &analyst, request.action.into(), &request.ids).await?;
    Ok(Json(api::BulkChanged::new(request.action, outcome)).into_response())
}

/// `POST /api/v1/tips/{id}/notes` and `/replies`: `{"text"}` → the new note or reply.
async fn add_writing(
    app: AnalystState,
    analyst: crate::auth::signin::Analyst,
    id: String,
    what: Writing,
    body: Result<Json<api::Writing>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(|_| ApiError::bad_request("expected JSON {\"text\"}"))?;
    let id = actions::write(&app, &analyst, &id, what, request.text).await?;
    let kind = match what {
        Writing::Note => api::WritingKind::Note,
        Writing::Reply => api::WritingKind::Reply,
    };
    Ok((StatusCode::CREATED, Json(api::WritingCreated { id, kind })).into_response())
}

/// `POST /api/v1/tips/{id}/notes`: an internal note, sealed to the reviewer keys.
pub async fn add_note(
    State(app): State<AnalystState>,
    ApiAnalyst(analyst): ApiAnalyst,
    Path(id): Path<String>,
    body: Result<Json<api::Writing>, JsonRejection>,
) -> Result<Response, ApiError> {
    add_writing(app, analyst, id, Writing::Note, body).await
}

/// `POST /api/v1/tips/{id}/replies`: a reply the source reads when it signs in with its
/// receipt.
pub async fn add_reply(
    State(app): State<AnalystState>,
    ApiAnalyst(analyst): ApiAnalyst,
    Path(id): Path<String>,
    body: Result<Json<api::Writing>, JsonRejection>,
) -> Result<Response, ApiError> {
    add_writing(app, analyst, id, Writing::Reply, body).await
}

/// `POST /api/v1/tips/{id}/notes/sealed` and `…/replies/sealed`: a note or reply sealed on the
/// analyst's machine (`for_source`: a reply's source copy) → the new note or reply. A tip that
/// does not exist is answered 404 before anything of the body is looked at.
#[allow(clippy::too_many_arguments)]
async fn add_sealed(
    app: AnalystState,
    analyst: crate::auth::signin::Analyst,
    tip_id: String,
    (id, key_set): (String, i64),
    sealed: &str,
    commitment: &str,
    for_source: Option<&str>,
) -> Result<Response, ApiError> {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as BASE64;
    let exists = valid_id(&tip_id)
        && app
            .intake
            .store
            .tip_status(&tip_id)
            .await
            .map_err(internal)?
            .is_some();
    if !exists {
        return Err(ApiError::not_found("no such tip"));
    }
    let bytes = |text: &str, what: &str| {
        BASE64
            .decode(text)
            .map_err(|_| ApiError::bad_request(format!("{what} is not base64")))
    };
    let commitment: [u8; crate::commitment::COMMITMENT_BYTES] = hex::decode(commitment)
        .ok()
        .and_then(|c| c.try_into().ok())
        .ok_or_else(|| ApiError::bad_request("the commitment must be 64 hex digits"))?;
    let kind = if for_source.is_some() {
        api::WritingKind::Reply
    } else {
        api::WritingKind::Note
    };
    let pre_sealed = crate::intake::PreSealed {
        id,
        key_set,
        for_reviewers: bytes(sealed, "sealed")?,
        commitment,
        for_source: for_source.map(|s| bytes(s, "for_source")).transpose()?,
    };
    let id = actions::write_sealed(&app, &analyst, &tip_id, pre_sealed).await?;
    Ok((StatusCode::CREATED, Json(api::WritingCreated { id, kind })).into_response())
}

/// `POST /api/v1/tips/{id}/notes/sealed`.
pub async fn add_sealed_note(
    State(app): State<AnalystState>,
    ApiAnalyst(analyst): ApiAnalyst,
    Path(tip_id): Path<String>,
    body: Result<Json<api::SealedNote>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(note) = body.map_err(|_| {
        ApiError::bad_request("expected JSON {\"id\", \"key_set\", \"sealed\", \"commitment\"}")
    })?;
    let (sealed, commitment) = (note.sealed, note.commitment);
    add_sealed(
        app,
        analyst,
        tip_id,
        (note.id, note.key_set),
        &sealed,
        &commitment,
        None,
    )
    .await
}

/// `POST /api/v1/tips/{id}/replies/sealed`.
pub async fn add_sealed_reply(
    State(app): State<AnalystState>,
    ApiAnalyst(analyst): ApiAnalyst,
    Path(tip_id): Path<String>,
    body: Result<Json<api::SealedReply>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(reply) = body.map_err(|_| {
        ApiError::bad_request(
            "expected JSON {\"id\", \"key_set\", \"sealed\", \"commitment\", \"for_source\"}",
        )
    })?;
    add_sealed(
        app,
        analyst,
        tip_id,
        (reply.id, reply.key_set),
        &reply.sealed,
        &reply.commitment,
        Some(&reply.for_source),
    )
    .await
}

/// `GET /api/v1/items/{id}/sealed`: the item's age file, streamed chunk by chunk.
pub async fn download_item(
    State(app): State<AnalystState>,
    ApiAnalyst(analyst): ApiAnalyst,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(downloads::sealed_item(&app, &analyst, &id).await?)
}
