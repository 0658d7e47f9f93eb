//! The analyst listener: a health endpoint and the JSON API under `/api/v1` (sessions, the
//! review queue, triage, sealed downloads, the audit trail, reviewer keys and re-keying — the
//! last two in `keys.rs`). Never reachable from the public listener. The API is described in
//! `docs/openapi.json`, which a test keeps in step.

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{AppState, desk, keys};
use crate::audit::{Audit, AuditAction};
use crate::auth::Role;
use crate::auth::signin::{Analyst, SignInError};
use crate::clock::now;
use crate::ids::valid_id;
use crate::intake::KeyState;
use crate::store::{QueueFilter, ReplyStatus, STATUSES, TipSummary, TriageUpdate};

pub fn router(state: AppState) -> Router {
    let limits = state.config.rate_limits.clone();
    let router = Router::new()
        .route("/health", get(health))
        .route(
            "/api/v1/session",
            get(current_session)
                .post(create_session)
                .delete(delete_session),
        )
        .route("/api/v1/tips", get(list_tips))
        .route("/api/v1/tips/{id}", get(get_tip).patch(update_tip))
        .route("/api/v1/tips/{id}/notes", post(add_note))
        .route("/api/v1/tips/{id}/replies", post(add_reply))
        .route(
            "/api/v1/items/{id}/sealed",
            get(download_item).put(keys::replace_sealed),
        )
        // A header of up to 64 KiB, in base64 inside JSON.
        .route(
            "/api/v1/items/{id}/header",
            put(keys::replace_header).layer(DefaultBodyLimit::max(128 * 1024)),
        )
        .route("/api/v1/audit", get(audit_trail))
        .route("/api/v1/keys", get(keys::list_keys).post(keys::add_key))
        .route("/api/v1/keys/status", get(keys::key_status))
        .route("/api/v1/keys/{id}/retire", post(keys::retire_key))
        .route("/api/v1/keys/{id}/revoke", post(keys::revoke_key))
        .route("/api/v1/rekey", get(keys::items_to_rekey))
        .route("/", get(desk::home))
        .route("/login", get(desk::show_login).post(desk::submit_login))
        .route("/logout", post(desk::logout))
        .route("/queue", get(desk::queue))
        .route("/tips/{id}", get(desk::tip))
        .route("/tips/{id}/triage", post(desk::triage))
        .route("/tips/{id}/notes", post(desk::add_note))
        .route("/tips/{id}/replies", post(desk::add_reply))
        .route("/tips/{id}/archive", get(desk::download_archive))
        .route("/items/{id}/sealed", get(desk::download_item))
        .route("/static/style.css", get(super::public::stylesheet))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(state);
    super::with_common_layers(super::limits::analyst(&limits, router))
}

pub(super) fn api_error(status: StatusCode, message: &str) -> Response {
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
        Err(SignInError::Busy) => api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many sign-ins at once; try again shortly",
        ),
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
    match app.auth.session(token, "api", now()).await {
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

/// An API request from a signed-in analyst (bearer token of a live session).
pub struct ApiAnalyst(pub Analyst);

impl FromRequestParts<AppState> for ApiAnalyst {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        api_analyst(app, &parts.headers)
            .await
            .map(|(a, _)| ApiAnalyst(a))
    }
}

fn rfc3339(time: i64) -> String {
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(time.max(0) as u64),
    )
    .to_string()
}

fn tip_json(tip: &TipSummary) -> serde_json::Value {
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
pub(super) fn replies_json(replies: &[ReplyStatus]) -> serde_json::Value {
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

/// Writes the audit entry of an event with nothing else to write (a tip viewed); a failure is
/// logged, not shown. (An action that writes takes its entry into its own transaction.)
pub(super) async fn audit(
    app: &AppState,
    analyst: &Analyst,
    action: AuditAction,
    subject: &str,
    detail: serde_json::Value,
) {
    let audit = Audit {
        at: now(),
        actor: &analyst.username,
        action,
        subject,
        detail,
    };
    if let Err(error) = app.intake.store.append_audit(&audit).await {
        tracing::error!(%error, "could not write the audit trail");
    }
}

pub(super) fn internal(error: impl std::fmt::Display) -> Response {
    tracing::error!(%error, "analyst API request failed");
    api_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

#[derive(Deserialize)]
struct ListQuery {
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
async fn list_tips(
    State(app): State<AppState>,
    ApiAnalyst(analyst): ApiAnalyst,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return api_error(StatusCode::BAD_REQUEST, "bad query parameters");
    };
    if query
        .status
        .as_deref()
        .is_some_and(|s| !STATUSES.contains(&s))
    {
        return api_error(StatusCode::BAD_REQUEST, "unknown status");
    }
    let before = match query.before.as_deref().map(parse_cursor) {
        None => None,
        Some(Some(cursor)) => Some(cursor),
        Some(None) => return api_error(StatusCode::BAD_REQUEST, "bad cursor"),
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
    match app.intake.store.list_tips(&filter).await {
        Ok(tips) => {
            let next = (tips.len() as i64 == limit)
                .then(|| tips.last().map(|t| format!("{}.{}", t.received_at, t.id)))
                .flatten();
            Json(serde_json::json!({
                "tips": tips.iter().map(tip_json).collect::<Vec<_>>(),
                "next": next,
            }))
            .into_response()
        }
        Err(error) => internal(error),
    }
}

pub(super) fn parse_cursor(cursor: &str) -> Option<(i64, String)> {
    let (time, id) = cursor.split_once('.')?;
    let valid_id = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    valid_id.then_some((time.parse().ok()?, id.to_owned()))
}

/// `GET /api/v1/tips/{id}`.
async fn get_tip(
    State(app): State<AppState>,
    ApiAnalyst(analyst): ApiAnalyst,
    Path(id): Path<String>,
) -> Response {
    if !valid_id(&id) {
        return api_error(StatusCode::NOT_FOUND, "no such tip");
    }
    match app.intake.store.tip(&id).await {
        Ok(Some(tip)) => {
            let replies = match app.intake.store.reply_statuses(&id).await {
                Ok(replies) => replies,
                Err(error) => return internal(error),
            };
            audit(
                &app,
                &analyst,
                AuditAction::TipView,
                &id,
                serde_json::json!({}),
            )
            .await;
            let mut json = tip_json(&tip);
            json["replies"] = replies_json(&replies);
            Json(json).into_response()
        }
        Ok(None) => api_error(StatusCode::NOT_FOUND, "no such tip"),
        Err(error) => internal(error),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TriageRequest {
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

pub(super) fn valid_label(label: &str) -> bool {
    (1..=64).contains(&label.chars().count()) && !label.chars().any(char::is_control)
}

/// `PATCH /api/v1/tips/{id}`: status, labels and assignee.
async fn update_tip(
    State(app): State<AppState>,
    ApiAnalyst(analyst): ApiAnalyst,
    Path(id): Path<String>,
    body: Result<Json<TriageRequest>, JsonRejection>,
) -> Response {
    let Ok(Json(request)) = body else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "expected JSON with any of \"status\", \"labels\", \"assignee\"",
        );
    };
    if !valid_id(&id) {
        return api_error(StatusCode::NOT_FOUND, "no such tip");
    }
    if request
        .status
        .as_deref()
        .is_some_and(|s| !STATUSES.contains(&s))
    {
        return api_error(
            StatusCode::BAD_REQUEST,
            "status must be one of new, in_review, verified, closed, spam",
        );
    }
    if let Some(labels) = &request.labels
        && (labels.len() > 20 || !labels.iter().all(|l| valid_label(l)))
    {
        return api_error(
            StatusCode::BAD_REQUEST,
            "at most 20 labels of 1 to 64 characters",
        );
    }
    let store = &app.intake.store;
    let assignee_id = match &request.assignee {
        None => None,
        Some(None) => Some(None),
        Some(Some(name)) => match store.analyst_id(name).await {
            Ok(Some(id)) => Some(Some(id)),
            Ok(None) => return api_error(StatusCode::BAD_REQUEST, "no such analyst to assign"),
            Err(error) => return internal(error),
        },
    };
    let update = TriageUpdate {
        status: request.status.clone(),
        labels: request.labels.clone(),
        assignee_id,
    };
    let audit = Audit {
        at: now(),
        actor: &analyst.username,
        action: AuditAction::TipUpdate,
        subject: &id,
        detail: serde_json::json!({ "status": request.status, "labels": request.labels, "assignee": request.assignee }),
    };
    match store.update_tip(&id, &update, &audit).await {
        Ok(true) => {}
        Ok(false) => return api_error(StatusCode::NOT_FOUND, "no such tip"),
        Err(error) => return internal(error),
    }
    match store.tip(&id).await {
        Ok(Some(tip)) => Json(tip_json(&tip)).into_response(),
        Ok(None) => api_error(StatusCode::NOT_FOUND, "no such tip"),
        Err(error) => internal(error),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteRequest {
    text: Zeroizing<String>,
}

/// What an analyst writes on a tip: an internal note, or a reply the source will read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Writing {
    Note,
    Reply,
}

impl Writing {
    fn kind(self) -> &'static str {
        match self {
            Writing::Note => "note",
            Writing::Reply => "reply",
        }
    }
}

/// The longest note or reply, in bytes.
pub(super) const MAX_WRITING_BYTES: usize = 32 * 1024;

/// Seals a note (to the reviewer keys) or a reply (to the tip's source and the reviewer keys),
/// stored with its audit entry, and answers with its id, or an error response.
pub(super) async fn seal_writing(
    app: &AppState,
    analyst: &Analyst,
    tip_id: &str,
    what: Writing,
    text: Zeroizing<String>,
) -> Result<String, Response> {
    let kind = what.kind();
    if !valid_id(tip_id) {
        return Err(api_error(StatusCode::NOT_FOUND, "no such tip"));
    }
    if text.trim().is_empty() || text.len() > MAX_WRITING_BYTES {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            &format!("a {kind} is 1 byte to 32 KiB of text"),
        ));
    }
    let sealed = match what {
        Writing::Note => app.intake.add_note(tip_id, &analyst.username, text).await,
        Writing::Reply => app.intake.add_reply(tip_id, &analyst.username, text).await,
    };
    match sealed {
        Ok(Some(id)) => Ok(id),
        Ok(None) => Err(api_error(StatusCode::NOT_FOUND, "no such tip")),
        Err(crate::intake::IntakeError::Paused) => Err(api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("no usable reviewer key: the {kind} cannot be sealed"),
        )),
        Err(error) if error.keys_revoked() => Err(api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "a reviewer key was revoked while the {kind} was sealed; nothing was stored: send it again"
            ),
        )),
        Err(error) => Err(internal(error)),
    }
}

/// `POST /api/v1/tips/{id}/notes` and `/replies`: `{"text"}` → the new note or reply.
async fn add_writing(
    app: AppState,
    analyst: Analyst,
    id: String,
    what: Writing,
    body: Result<Json<NoteRequest>, JsonRejection>,
) -> Response {
    let Ok(Json(request)) = body else {
        return api_error(StatusCode::BAD_REQUEST, "expected JSON {\"text\"}");
    };
    match seal_writing(&app, &analyst, &id, what, request.text).await {
        Ok(id) => (
            StatusCode::CREATED,
            Json(serde_json::json!({ "id": id, "kind": what.kind() })),
        )
            .into_response(),
        Err(response) => response,
    }
}

/// `POST /api/v1/tips/{id}/notes`: an internal note, sealed to the reviewer keys.
async fn add_note(
    State(app): State<AppState>,
    ApiAnalyst(analyst): ApiAnalyst,
    Path(id): Path<String>,
    body: Result<Json<NoteRequest>, JsonRejection>,
) -> Response {
    add_writing(app, analyst, id, Writing::Note, body).await
}

/// `POST /api/v1/tips/{id}/replies`: a reply the source reads when it signs in with its
/// receipt.
async fn add_reply(
    State(app): State<AppState>,
    ApiAnalyst(analyst): ApiAnalyst,
    Path(id): Path<String>,
    body: Result<Json<NoteRequest>, JsonRejection>,
) -> Response {
    add_writing(app, analyst, id, Writing::Reply, body).await
}

/// `GET /api/v1/items/{id}/sealed`: the item's age file, streamed chunk by chunk.
async fn download_item(
    State(app): State<AppState>,
    ApiAnalyst(analyst): ApiAnalyst,
    Path(id): Path<String>,
) -> Response {
    sealed_item_response(&app, &analyst, &id).await
}

/// Streams one sealed item (audited as a download, and remembered as pulled).
pub(super) async fn sealed_item_response(app: &AppState, analyst: &Analyst, id: &str) -> Response {
    if !valid_id(id) {
        return api_error(StatusCode::NOT_FOUND, "no such item");
    }
    let store = app.intake.store.clone();
    match store.item_tip(id).await {
        Ok(Some(tip)) => {
            let audit = Audit {
                at: now(),
                actor: &analyst.username,
                action: AuditAction::ItemDownload,
                subject: id,
                detail: serde_json::json!({ "tip": tip }),
            };
            if let Err(error) = store.record_pulls(analyst.id, &[id], &audit).await {
                return internal(error);
            }
        }
        Ok(None) => return api_error(StatusCode::NOT_FOUND, "no such item"),
        Err(error) => return internal(error),
    }
    let item = id.to_owned();
    let chunks = futures_util::stream::unfold((store, 0i64, false), move |(store, seq, done)| {
        let item = item.clone();
        async move {
            if done {
                return None;
            }
            match store.item_chunk(&item, seq).await {
                Ok(Some(chunk)) => {
                    Some((Ok(axum::body::Bytes::from(chunk)), (store, seq + 1, false)))
                }
                Ok(None) => None,
                Err(error) => Some((
                    Err(std::io::Error::other(error.to_string())),
                    (store, seq, true),
                )),
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{id}.age\""),
            ),
        ],
        axum::body::Body::from_stream(chunks),
    )
        .into_response()
}

/// Streams every sealed item of a tip as one tar archive (`<tip>/<item>.age` plus a
/// `manifest.json`), built on a blocking thread and handed over in bounded pieces.
pub(super) async fn tip_archive_response(app: &AppState, analyst: &Analyst, id: &str) -> Response {
    if !valid_id(id) {
        return api_error(StatusCode::NOT_FOUND, "no such tip");
    }
    let store = app.intake.store.clone();
    let tip = match store.tip(id).await {
        Ok(Some(tip)) => tip,
        Ok(None) => return api_error(StatusCode::NOT_FOUND, "no such tip"),
        Err(error) => return internal(error),
    };
    let audit = Audit {
        at: now(),
        actor: &analyst.username,
        action: AuditAction::TipDownloadAll,
        subject: id,
        detail: serde_json::json!({ "items": tip.items.len() }),
    };
    let items: Vec<&str> = tip.items.iter().map(|item| item.id.as_str()).collect();
    if let Err(error) = store.record_pulls(analyst.id, &items, &audit).await {
        return internal(error);
    }
    let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<axum::body::Bytes>>(4);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let writer = ChannelWriter(sender.clone());
        let mut archive = tar::Builder::new(writer);
        let result = (|| -> std::io::Result<()> {
            let manifest =
                serde_json::to_vec_pretty(&tip_json(&tip)).map_err(std::io::Error::other)?;
            append(
                &mut archive,
                &format!("{}/manifest.json", tip.id),
                manifest.len() as u64,
                manifest.as_slice(),
            )?;
            for item in &tip.items {
                let reader = ChunkReader {
                    store: store.clone(),
                    runtime: runtime.clone(),
                    item: item.id.clone(),
                    seq: 0,
                    buffer: Vec::new(),
                    at: 0,
                };
                append(
                    &mut archive,
                    &format!("{}/{}.age", tip.id, item.id),
                    item.size.max(0) as u64,
                    reader,
                )?;
            }
            archive.finish()
        })();
        if let Err(error) = result {
            let _ = sender.blocking_send(Err(error));
        }
    });
    let body =
        futures_util::stream::unfold(
            receiver,
            |mut r| async move { r.recv().await.map(|c| (c, r)) },
        );
    (
        [
            (header::CONTENT_TYPE, "application/x-tar".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"tip-{id}.tar\""),
            ),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}

fn append<W: std::io::Write>(
    archive: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    data: impl std::io::Read,
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    archive.append_data(&mut header, path, data)
}

/// Hands what tar writes to the response body.
struct ChannelWriter(tokio::sync::mpsc::Sender<std::io::Result<axum::body::Bytes>>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(axum::body::Bytes::copy_from_slice(data)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads an item's chunks from the database, one at a time, on a blocking thread.
struct ChunkReader {
    store: crate::store::Store,
    runtime: tokio::runtime::Handle,
    item: String,
    seq: i64,
    buffer: Vec<u8>,
    at: usize,
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.buffer.len() {
            let next = self
                .runtime
                .block_on(self.store.item_chunk(&self.item, self.seq))
                .map_err(std::io::Error::other)?;
            match next {
                Some(chunk) => {
                    self.buffer = chunk;
                    self.at = 0;
                    self.seq += 1;
                }
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buffer.len() - self.at);
        out[..n].copy_from_slice(&self.buffer[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// `GET /api/v1/audit` (admins): the audit trail and whether its chain is intact.
async fn audit_trail(State(app): State<AppState>, ApiAnalyst(analyst): ApiAnalyst) -> Response {
    if analyst.role != Role::Admin {
        return api_error(StatusCode::FORBIDDEN, "admins only");
    }
    let entries = match app.intake.store.audit_entries().await {
        Ok(entries) => entries,
        Err(error) => return internal(error),
    };
    let status = match crate::audit::verify(&app.auth.audit_key(), &entries) {
        crate::audit::ChainStatus::Intact { .. } => serde_json::json!({ "intact": true }),
        crate::audit::ChainStatus::Broken { seq, why } => {
            serde_json::json!({ "intact": false, "broken_at": seq, "why": why })
        }
    };
    Json(serde_json::json!({ "chain": status, "entries": entries })).into_response()
}
