//! `/api/v1/tips` and `/api/v1/items`: the review queue, one tip with its items and replies,
//! triage, notes and replies, and sealed downloads.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::ids::valid_id;
use crate::store::{QueueFilter, ReplyStatus, STATUSES, TipSummary};
use crate::web::analyst::AnalystState;
use crate::web::analyst::actions::{self, Triage, Writing, viewed};
use crate::web::analyst::downloads;
use crate::web::analyst::error::{ApiError, internal};
use crate::web::analyst::extract::ApiAnalyst;

/// A time as the API writes it: RFC 3339, UTC, whole seconds.
pub fn rfc3339(time: i64) -> String {
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(time.max(0) as u64),
    )
    .to_string()
}

/// A tip as the API shows it (also the manifest of a tip's archive).
pub fn tip_json(tip: &TipSummary) -> serde_json::Value {
    serde_json::json!({
        "id": tip.id,
        "received_at": rfc3339(tip.received_at),
        "status": tip.status,
        "labels": tip.labels,
        "assignee": tip.assignee,
        "items": tip.items.iter().map(|i| serde_json::json!({
            "id": i.id, "kind": i.kind, "size": i.size, "key_set": i.key_set,
            "added_at": i.added_at.map(rfc3339),
        })).collect::<Vec<_>>(),
        "key_set": tip.key_set,
        "source_activity_at": tip.source_activity_at().map(rfc3339),
    })
}

/// The replies of a tip as analysts see them: when each was sent, read and deleted.
fn replies_json(replies: &[ReplyStatus]) -> serde_json::Value {
    replies
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "created_at": rfc3339(r.created_at),
                "read_at": r.read_at.map(rfc3339),
                "deleted_by_source_at": r.deleted_at.map(rfc3339),
            })
        })
        .collect()
}

/// A queue cursor, `<received_at>.<id>`: the `next` of the previous page.
pub fn parse_cursor(cursor: &str) -> Option<(i64, String)> {
    let (time, id) = cursor.split_once('.')?;
    let valid_id = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    valid_id.then_some((time.parse().ok()?, id.to_owned()))
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    label: Option<String>,
    assignee: Option<String>,
    #[serde(default)]
    unpulled: bool,
    #[serde(default)]
    followed_up: bool,
    before: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/tips`: newest first; `next` is the `before` cursor of the following page.
pub async fn list(
    State(app): State<AnalystState>,
    ApiAnalyst(analyst): ApiAnalyst,
    query: Result<Query<ListQuery>, QueryRejection>,
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
    Ok(Json(serde_json::json!({
        "tips": tips.iter().map(tip_json).collect::<Vec<_>>(),
        "next": next,
    }))
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
    viewed(&app, &analyst, &id).await;
    let mut json = tip_json(&tip);
    json["replies"] = replies_json(&replies);
    Ok(Json(json).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriageRequest {
    status: Option<String>,
    labels: Option<Vec<String>>,
    /// A username, or null to unassign.
    #[serde(default, with = "double_option")]
    assignee: Option<Option<String>>,
}

/// Distinguishes an absent field (leave as is) from `null` (clear it).
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

/// `PATCH /api/v1/tips/{id}`: status, labels and assignee; answers with the tip as it is now.
pub async fn update(
    State(app): State<AnalystState>,
    ApiAnalyst(analyst): ApiAnalyst,
    Path(id): Path<String>,
    body: Result<Json<TriageRequest>, JsonRejection>,
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
    Ok(Json(tip_json(&tip)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WritingRequest {
    text: Zeroizing<String>,
}

/// `POST /api/v1/tips/{id}/notes` and `/replies`: `{"text"}` → the new note or reply.
async fn add_writing(
    app: AnalystState,
    analyst: crate::auth::signin::Analyst,
    id: String,
    what: Writing,
    body: Result<Json<WritingRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(|_| ApiError::bad_request("expected JSON {\"text\"}"))?;
    let id = actions::write(&app, &analyst, &id, what, request.text).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "id": id, "kind": what.kind() })),
    )
        .into_response())
}

/// `POST /api/v1/tips/{id}/notes`: an internal note, sealed to the reviewer keys.
pub async fn add_note(
    State(app): State<AnalystState>,
    ApiAnalyst(analyst): ApiAnalyst,
    Path(id): Path<String>,
    body: Result<Json<WritingRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    add_writing(app, analyst, id, Writing::Note, body).await
}

/// `POST /api/v1/tips/{id}/replies`: a reply the source reads when it signs in with its
/// receipt.
pub async fn add_reply(
    State(app): State<AnalystState>,
    ApiAnalyst(analyst): ApiAnalyst,
    Path(id): Path<String>,
    body: Result<Json<WritingRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    add_writing(app, analyst, id, Writing::Reply, body).await
}

/// `GET /api/v1/items/{id}/sealed`: the item's age file, streamed chunk by chunk.
pub async fn download_item(
    State(app): State<AnalystState>,
    ApiAnalyst(analyst): ApiAnalyst,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(downloads::sealed_item(&app, &analyst, &id).await?)
}
