//! The analysts' pages (server-rendered, no JavaScript) on the analyst listener: sign-in with
//! password and TOTP, the queue, a tip's page with its sealed items, triage, sign-out.
//!
//! Sessions live in the database; the browser holds only a `__Host-` cookie (Secure,
//! HttpOnly, SameSite=Strict — `Secure` cookies work over TLS, on onion services and on
//! localhost). Every form that changes something carries a CSRF token that is checked: the
//! sign-in form a token paired with a short-lived cookie, the others the session's own token.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::AppState;
use super::pages::render;
use crate::audit::{Audit, AuditAction};
use crate::auth::signin::{Analyst, Authenticator, SignInError};
use crate::clock::now;
use crate::store::{QueueFilter, STATUSES, TriageUpdate};

const SESSION_COOKIE: &str = "__Host-tipbox_session";
const LOGIN_COOKIE: &str = "__Host-tipbox_login";

pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub(super) fn set_cookie(name: &str, value: &str, max_age: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}"
    ))
    .expect("cookie values are base64url")
}

/// A signed-in analyst in the browser.
pub struct WebSession {
    pub analyst: Analyst,
    token: Zeroizing<String>,
    csrf_hash: Vec<u8>,
}

impl WebSession {
    fn csrf(&self, auth: &Authenticator) -> Zeroizing<String> {
        auth.csrf_token(&self.token)
    }

    fn check_csrf(&self, submitted: &str) -> bool {
        Authenticator::csrf_matches(submitted, &self.csrf_hash)
    }
}

async fn web_session(app: &AppState, headers: &HeaderMap) -> Option<WebSession> {
    let token = cookie(headers, SESSION_COOKIE)?;
    match app.auth.session(token, "web", now()).await {
        Ok(Some((analyst, csrf_hash, _))) => Some(WebSession {
            analyst,
            token: Zeroizing::new(token.to_owned()),
            csrf_hash,
        }),
        Ok(None) => None,
        Err(error) => {
            tracing::error!(%error, "could not read a session");
            None
        }
    }
}

fn forbidden(why: &str) -> Response {
    (StatusCode::FORBIDDEN, why.to_owned()).into_response()
}

fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

#[derive(Template)]
#[template(path = "analyst/login.html")]
struct LoginPage {
    signed_in: Option<String>,
    csrf: String,
    problem: Option<&'static str>,
}

fn login_page(status: StatusCode, problem: Option<&'static str>) -> Response {
    let token = crate::ids::random_id();
    let mut response = render(
        status,
        &LoginPage {
            signed_in: None,
            csrf: token.clone(),
            problem,
        },
    );
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, &token, 600));
    response
}

pub async fn show_login() -> Response {
    login_page(StatusCode::OK, None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    csrf: String,
    username: String,
    password: Zeroizing<String>,
    totp: String,
}

pub async fn submit_login(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let paired = cookie(&headers, LOGIN_COOKIE)
        .is_some_and(|c| subtle::ConstantTimeEq::ct_eq(c.as_bytes(), form.csrf.as_bytes()).into());
    if !paired {
        return login_page(
            StatusCode::FORBIDDEN,
            Some("The sign-in form expired. Please try again."),
        );
    }
    let now = now();
    match app
        .auth
        .sign_in(&form.username, form.password, &form.totp, now)
        .await
    {
        Ok(analyst) => match app.auth.start_session(&analyst, "web", now).await {
            Ok(session) => {
                let mut response = Redirect::to("/queue").into_response();
                let headers = response.headers_mut();
                headers.append(
                    header::SET_COOKIE,
                    set_cookie(SESSION_COOKIE, &session.token, app.auth.policy.max_seconds),
                );
                headers.append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, "", 0));
                response
            }
            Err(error) => {
                tracing::error!(%error, "could not start a session");
                login_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Some("Sign-in failed on the server."),
                )
            }
        },
        Err(SignInError::Busy) => login_page(
            StatusCode::SERVICE_UNAVAILABLE,
            Some("Too many sign-ins at once. Please try again in a moment."),
        ),
        Err(SignInError::Invalid) => login_page(
            StatusCode::UNAUTHORIZED,
            Some("Wrong user name, password or code. (Each code works once: wait for the next.)"),
        ),
        Err(SignInError::Internal(error)) => {
            tracing::error!(%error, "sign-in failed");
            login_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some("Sign-in failed on the server."),
            )
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn logout(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(session) = web_session(&app, &headers).await else {
        return forbidden("not signed in");
    };
    if !session.check_csrf(&form.csrf) {
        return forbidden("bad CSRF token");
    }
    if let Err(error) = app
        .auth
        .end_session(&session.token, &session.analyst, now())
        .await
    {
        tracing::error!(%error, "could not end a session");
    }
    let mut response = Redirect::to("/login").into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0));
    headers.insert(
        "clear-site-data",
        HeaderValue::from_static("\"cookies\", \"storage\""),
    );
    response
}

pub async fn home(State(app): State<AppState>, headers: HeaderMap) -> Response {
    match web_session(&app, &headers).await {
        Some(_) => Redirect::to("/queue").into_response(),
        None => to_login(),
    }
}

struct QueueRow {
    id: String,
    short_id: String,
    received: String,
    status: String,
    labels: String,
    assignee: String,
    items: usize,
    /// When the source last added something, if it has.
    source_activity: String,
}

#[derive(Template)]
#[template(path = "analyst/queue.html")]
struct QueuePage {
    signed_in: Option<String>,
    csrf: String,
    statuses: &'static [&'static str],
    filter_status: String,
    filter_label: String,
    filter_assignee: String,
    filter_followed_up: bool,
    tips: Vec<QueueRow>,
    next_href: Option<String>,
}

#[derive(Deserialize)]
pub struct QueueQuery {
    status: Option<String>,
    label: Option<String>,
    assignee: Option<String>,
    followed_up: Option<String>,
    before: Option<String>,
}

const PAGE_SIZE: i64 = 50;

fn time(t: i64) -> String {
    let text = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64),
    )
    .to_string();
    text.trim_end_matches(":00Z").replace('T', " ")
}

pub async fn queue(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<QueueQuery>,
) -> Response {
    let Some(session) = web_session(&app, &headers).await else {
        return to_login();
    };
    let nonempty = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let status = nonempty(&q.status).filter(|s| STATUSES.contains(&s.as_str()));
    let label = nonempty(&q.label);
    let assignee = nonempty(&q.assignee);
    let before = q.before.as_deref().and_then(super::analyst::parse_cursor);
    let filter = QueueFilter {
        status: status.clone(),
        label: label.clone(),
        assignee: assignee.clone(),
        unpulled_by: None,
        followed_up: q.followed_up.is_some(),
        before,
        limit: PAGE_SIZE,
    };
    let tips = match app.intake.store.list_tips(&filter).await {
        Ok(tips) => tips,
        Err(error) => {
            tracing::error!(%error, "could not list tips");
            return (StatusCode::INTERNAL_SERVER_ERROR, "could not list tips").into_response();
        }
    };
    let next_href = (tips.len() as i64 == PAGE_SIZE).then(|| {
        let last = tips.last().expect("a full page");
        let mut href = format!("/queue?before={}.{}", last.received_at, last.id);
        for (k, v) in [
            ("status", &status),
            ("label", &label),
            ("assignee", &assignee),
        ] {
            if let Some(v) = v {
                href.push_str(&format!(
                    "&{k}={}",
                    form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                ));
            }
        }
        if q.followed_up.is_some() {
            href.push_str("&followed_up=1");
        }
        href
    });
    let rows = tips
        .iter()
        .map(|t| QueueRow {
            id: t.id.clone(),
            short_id: t.id[..8].to_owned(),
            source_activity: t.source_activity_at().map(time).unwrap_or_default(),
            received: time(t.received_at),
            status: t.status.clone(),
            labels: t.labels.join(", "),
            assignee: t.assignee.clone().unwrap_or_default(),
            items: t.items.len(),
        })
        .collect();
    render(
        StatusCode::OK,
        &QueuePage {
            signed_in: Some(session.analyst.username.clone()),
            csrf: session.csrf(&app.auth).to_string(),
            statuses: &STATUSES,
            filter_status: status.unwrap_or_default(),
            filter_label: label.unwrap_or_default(),
            filter_assignee: assignee.unwrap_or_default(),
            filter_followed_up: q.followed_up.is_some(),
            tips: rows,
            next_href,
        },
    )
}

struct ItemRow {
    id: String,
    kind: String,
    size: String,
    key_set: i64,
}

#[derive(Template)]
#[template(path = "analyst/tip.html")]
struct TipPage {
    signed_in: Option<String>,
    csrf: String,
    statuses: &'static [&'static str],
    id: String,
    short_id: String,
    received: String,
    status: String,
    labels: String,
    assignee: String,
    key_set: String,
    source_activity: String,
    items: Vec<ItemRow>,
    replies: Vec<ReplyRow>,
}

struct ReplyRow {
    id: String,
    sent: String,
    read: String,
    deleted: String,
}

pub async fn tip(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some(session) = web_session(&app, &headers).await else {
        return to_login();
    };
    if !crate::ids::valid_id(&id) {
        return (StatusCode::NOT_FOUND, "no such tip").into_response();
    }
    let tip = match app.intake.store.tip(&id).await {
        Ok(Some(tip)) => tip,
        Ok(None) => return (StatusCode::NOT_FOUND, "no such tip").into_response(),
        Err(error) => {
            tracing::error!(%error, "could not read a tip");
            return (StatusCode::INTERNAL_SERVER_ERROR, "could not read the tip").into_response();
        }
    };
    let replies = match app.intake.store.reply_statuses(&id).await {
        Ok(replies) => replies,
        Err(error) => {
            tracing::error!(%error, "could not read a tip's replies");
            return (StatusCode::INTERNAL_SERVER_ERROR, "could not read the tip").into_response();
        }
    };
    super::analyst::audit(
        &app,
        &session.analyst,
        AuditAction::TipView,
        &id,
        serde_json::json!({}),
    )
    .await;
    render(
        StatusCode::OK,
        &TipPage {
            signed_in: Some(session.analyst.username.clone()),
            csrf: session.csrf(&app.auth).to_string(),
            statuses: &STATUSES,
            short_id: tip.id[..8].to_owned(),
            received: time(tip.received_at),
            status: tip.status.clone(),
            labels: tip.labels.join(", "),
            assignee: tip.assignee.clone().unwrap_or_default(),
            key_set: tip.key_set.map(|k| k.to_string()).unwrap_or_default(),
            source_activity: tip.source_activity_at().map(time).unwrap_or_default(),
            replies: replies
                .into_iter()
                .map(|r| ReplyRow {
                    sent: time(r.created_at),
                    read: r.read_at.map(time).unwrap_or_else(|| "not yet".into()),
                    deleted: r.deleted_at.map(time).unwrap_or_default(),
                    id: r.id,
                })
                .collect(),
            items: tip
                .items
                .iter()
                .map(|i| ItemRow {
                    id: i.id.clone(),
                    kind: i.kind.clone(),
                    size: crate::i18n::Lang::En.size(i.size.max(0) as u64),
                    key_set: i.key_set,
                })
                .collect(),
            id: tip.id,
        },
    )
}

#[derive(Deserialize)]
pub struct TriageForm {
    csrf: String,
    status: String,
    labels: String,
    assignee: String,
}

pub async fn triage(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<TriageForm>,
) -> Response {
    let Some(session) = web_session(&app, &headers).await else {
        return forbidden("not signed in");
    };
    if !session.check_csrf(&form.csrf) {
        return forbidden("bad CSRF token");
    }
    if !crate::ids::valid_id(&id) || !STATUSES.contains(&form.status.as_str()) {
        return (StatusCode::BAD_REQUEST, "bad triage request").into_response();
    }
    let labels: Vec<String> = form
        .labels
        .split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if labels.len() > 20 || !labels.iter().all(|l| super::analyst::valid_label(l)) {
        return (
            StatusCode::BAD_REQUEST,
            "at most 20 labels of 1 to 64 characters",
        )
            .into_response();
    }
    let store = &app.intake.store;
    let assignee = form.assignee.trim();
    let assignee_id = if assignee.is_empty() {
        None
    } else {
        match store.analyst_id(assignee).await {
            Ok(Some(id)) => Some(id),
            Ok(None) => {
                return (StatusCode::BAD_REQUEST, "no such analyst to assign").into_response();
            }
            Err(error) => {
                tracing::error!(%error, "could not look up an analyst");
                return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
            }
        }
    };
    let update = TriageUpdate {
        status: Some(form.status.clone()),
        labels: Some(labels.clone()),
        assignee_id: Some(assignee_id),
    };
    let audit = Audit {
        at: now(),
        actor: &session.analyst.username,
        action: AuditAction::TipUpdate,
        subject: &id,
        detail: serde_json::json!({ "status": form.status, "labels": labels, "assignee": (!assignee.is_empty()).then_some(assignee) }),
    };
    match store.update_tip(&id, &update, &audit).await {
        Ok(true) => {}
        Ok(false) => return (StatusCode::NOT_FOUND, "no such tip").into_response(),
        Err(error) => {
            tracing::error!(%error, "could not update a tip");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
        }
    }
    Redirect::to(&format!("/tips/{id}")).into_response()
}

pub async fn download_item(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some(session) = web_session(&app, &headers).await else {
        return to_login();
    };
    super::analyst::sealed_item_response(&app, &session.analyst, &id).await
}

pub async fn download_archive(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some(session) = web_session(&app, &headers).await else {
        return to_login();
    };
    super::analyst::tip_archive_response(&app, &session.analyst, &id).await
}

#[derive(Deserialize)]
pub struct NoteForm {
    csrf: String,
    text: Zeroizing<String>,
}

pub async fn add_note(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<NoteForm>,
) -> Response {
    write_on_tip(app, headers, id, super::analyst::Writing::Note, form).await
}

pub async fn add_reply(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<NoteForm>,
) -> Response {
    write_on_tip(app, headers, id, super::analyst::Writing::Reply, form).await
}

/// A note or a reply from the tip page's forms; back to the tip page when it is sealed.
async fn write_on_tip(
    app: AppState,
    headers: HeaderMap,
    id: String,
    what: super::analyst::Writing,
    form: NoteForm,
) -> Response {
    let Some(session) = web_session(&app, &headers).await else {
        return forbidden("not signed in");
    };
    if !session.check_csrf(&form.csrf) {
        return forbidden("bad CSRF token");
    }
    match super::analyst::seal_writing(&app, &session.analyst, &id, what, form.text).await {
        Ok(_) => Redirect::to(&format!("/tips/{id}")).into_response(),
        Err(response) => response,
    }
}
