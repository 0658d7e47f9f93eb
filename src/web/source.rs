//! Sources coming back with their receipt (public listener, no JavaScript): the receipt form,
//! the case page (where the report stands, replies, a form to add more), deleting a read
//! reply, and signing out.
//!
//! The receipt travels only in a POST body, never in a URL. A session is a random token in a
//! `__Host-` cookie that names an in-memory session (`crate::followup`); the reply key is
//! derived from the receipt at sign-in and never written anywhere. Every form carries a token:
//! the receipt form one paired with a short-lived cookie (so another site cannot sign a
//! visitor into a case of its choosing), the others the session's own.

use std::time::Duration;

use askama::Template;
use axum::Form;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::AppState;
use super::body::SharedBody;
use super::desk::{cookie, set_cookie};
use super::pages::{Chrome, render};
use super::public::{FormText, PageLang, Refusal, Upload, receive, refused, start_upload};
use crate::clock::{coarsen, now};
use crate::followup::{OpenError, SESSION_COOKIE, SourceSession};
use crate::i18n::Lang;
use crate::receipt::{ReceiptCode, ReceiptError};

/// Pairs the receipt form with the browser that loaded it.
const SIGNIN_COOKIE: &str = "__Host-tipbox_signin";
/// The longest receipt field read (12 words, however spaced, are far shorter).
const MAX_RECEIPT_BYTES: usize = 1024;
/// How long a loaded receipt form stays usable.
const SIGNIN_FORM_SECONDS: i64 = 3600;

#[derive(Template)]
#[template(path = "followup.html")]
struct SigninPage {
    chrome: Chrome,
    csrf: String,
    problem: Option<String>,
}

struct ReplyView {
    id: String,
    date: String,
    text: Zeroizing<String>,
}

#[derive(Template)]
#[template(path = "case.html")]
struct CasePage {
    chrome: Chrome,
    csrf: String,
    status: String,
    added: bool,
    replies: Vec<ReplyView>,
    attachments_help: String,
    signout_help: String,
}

fn back_to_signin() -> (&'static str, &'static str) {
    ("/followup", "followup-back-signin")
}

fn signin_page(status: StatusCode, lang: Lang, problem: Option<String>) -> Response {
    let token = crate::ids::random_id();
    let mut response = render(
        status,
        &SigninPage {
            chrome: Chrome {
                lang,
                path: "/followup",
            },
            csrf: token.clone(),
            problem,
        },
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SIGNIN_COOKIE, &token, SIGNIN_FORM_SECONDS),
    );
    response
}

fn session_ended(app: &AppState, lang: Lang) -> Response {
    signin_page(
        StatusCode::UNAUTHORIZED,
        lang,
        Some(lang.t_args(
            "followup-session-ended",
            &[("minutes", idle_minutes(app).to_string())],
        )),
    )
}

fn idle_minutes(app: &AppState) -> u64 {
    app.config.followup.session_idle_seconds.div_ceil(60)
}

/// The live source session of a request, with its token.
fn source_session(
    app: &AppState,
    headers: &HeaderMap,
) -> Option<(SourceSession, Zeroizing<String>)> {
    let token = cookie(headers, SESSION_COOKIE)?;
    let session = app.sources.get(token)?;
    Some((session, Zeroizing::new(token.to_owned())))
}

/// `GET /followup`: the receipt form.
pub async fn show_signin(PageLang(lang): PageLang) -> Response {
    signin_page(StatusCode::OK, lang, None)
}

#[derive(Deserialize)]
pub struct SigninForm {
    csrf: String,
    receipt: Zeroizing<String>,
}

/// `POST /followup`: checks the receipt and opens a session for its tip.
pub async fn signin(
    State(app): State<AppState>,
    PageLang(lang): PageLang,
    headers: HeaderMap,
    Form(form): Form<SigninForm>,
) -> Response {
    let paired = cookie(&headers, SIGNIN_COOKIE).is_some_and(|expected| {
        expected.len() == form.csrf.len()
            && bool::from(expected.as_bytes().ct_eq(form.csrf.as_bytes()))
    });
    if !paired {
        return signin_page(
            StatusCode::FORBIDDEN,
            lang,
            Some(lang.t("followup-error-form-expired")),
        );
    }
    // A mistyped receipt is told apart from a wrong one: the words and their checksum say so
    // without looking anything up. Twelve words take far less than this.
    let parsed = if form.receipt.len() <= MAX_RECEIPT_BYTES {
        ReceiptCode::parse(&form.receipt, lang)
    } else {
        Err(ReceiptError::WordCount)
    };
    let readings = match parsed {
        Ok(readings) => readings,
        Err(error) => {
            let key = match error {
                ReceiptError::WordCount => "followup-error-word-count",
                ReceiptError::UnknownWord => "followup-error-unknown-word",
                ReceiptError::Checksum => "followup-error-checksum",
            };
            return signin_page(StatusCode::BAD_REQUEST, lang, Some(lang.t(key)));
        }
    };
    drop(form);
    // A session this browser already had ends here, whichever tip it was for.
    if let Some(old) = cookie(&headers, SESSION_COOKIE) {
        app.sources.end(old);
    }
    if !app.sources.allow_signin() {
        return busy(lang);
    }
    let found = match app.intake.open_case(readings).await {
        Ok(found) => found,
        Err(error) => {
            tracing::error!(%error, "could not look up a receipt");
            return signin_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                lang,
                Some(lang.t("error-internal-followup")),
            );
        }
    };
    // A wrong receipt and one whose report no longer exists get the same page.
    let Some((tip, identity)) = found else {
        return signin_page(
            StatusCode::UNAUTHORIZED,
            lang,
            Some(lang.t("followup-error-no-match")),
        );
    };
    let token = match app.sources.open(tip.id, identity) {
        Ok(token) => token,
        Err(OpenError::Full) => return busy(lang),
    };
    let mut response = Redirect::to(&format!("/followup/case?lang={}", lang.tag())).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            &token,
            app.config.followup.session_max_seconds as i64,
        ),
    );
    headers.append(header::SET_COOKIE, set_cookie(SIGNIN_COOKIE, "", 0));
    response
}

fn busy(lang: Lang) -> Response {
    let mut response = signin_page(
        StatusCode::SERVICE_UNAVAILABLE,
        lang,
        Some(lang.t("followup-error-busy")),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    response
}

#[derive(Deserialize)]
pub struct CaseQuery {
    #[serde(default)]
    added: Option<String>,
}

/// `GET /followup/case`: where the report stands, the replies (opened here with the session's
/// key, marked read), and the forms to add more and to sign out.
pub async fn case(
    State(app): State<AppState>,
    PageLang(lang): PageLang,
    Query(query): Query<CaseQuery>,
    headers: HeaderMap,
) -> Response {
    let Some((session, token)) = source_session(&app, &headers) else {
        return session_ended(&app, lang);
    };
    let store = &app.intake.store;
    let status = match store.tip_status(&session.tip_id).await {
        Ok(Some(status)) => status,
        Ok(None) => {
            app.sources.end(&token);
            return signin_page(
                StatusCode::UNAUTHORIZED,
                lang,
                Some(lang.t("followup-error-no-match")),
            );
        }
        Err(error) => return internal(lang, &error),
    };
    let sealed = match store.source_replies(&session.tip_id).await {
        Ok(replies) => replies,
        Err(error) => return internal(lang, &error),
    };
    let mut replies = Vec::with_capacity(sealed.len());
    let mut newly_read = Vec::new();
    for reply in sealed {
        let text = match open_reply(&session, &reply.sealed) {
            Ok(text) => text,
            Err(error) => {
                // Not shown, not marked read: the analysts will see it was never read.
                tracing::error!(%error, "a reply to a source could not be opened");
                continue;
            }
        };
        if reply.read_at.is_none() {
            newly_read.push(reply.id.clone());
        }
        replies.push(ReplyView {
            date: date(reply.created_at),
            id: reply.id,
            text,
        });
    }
    let read_at = coarsen(now(), app.intake.time_granularity());
    if let Err(error) = store
        .mark_replies_read(&session.tip_id, &newly_read, read_at)
        .await
    {
        return internal(lang, &error);
    }
    let limits = &app.config.limits;
    render(
        StatusCode::OK,
        &CasePage {
            chrome: Chrome {
                lang,
                path: "/followup/case",
            },
            csrf: session.csrf().to_owned(),
            status: lang.t(status_key(&status)),
            added: query.added.is_some(),
            replies,
            attachments_help: lang.t_args(
                "submit-attachments-help",
                &[
                    ("count", limits.max_attachments.to_string()),
                    ("size", lang.size(limits.max_attachment_bytes)),
                    ("total", lang.size(limits.max_total_bytes)),
                ],
            ),
            signout_help: lang.t_args(
                "case-signout-help",
                &[("minutes", idle_minutes(&app).to_string())],
            ),
        },
    )
}

/// What a source is told of a status: received, being reviewed, or closed. A tip marked as
/// spam reads as closed.
fn status_key(status: &str) -> &'static str {
    match status {
        "new" => "case-status-received",
        "in_review" | "verified" => "case-status-reviewing",
        _ => "case-status-closed",
    }
}

fn date(time: i64) -> String {
    let text = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + Duration::from_secs(time.max(0) as u64),
    )
    .to_string();
    text[..10].to_owned()
}

/// Opens the source's copy of a reply with the session's key: `{"format", "text"}`.
fn open_reply(session: &SourceSession, sealed: &[u8]) -> anyhow::Result<Zeroizing<String>> {
    #[derive(Deserialize)]
    struct Reply {
        text: Zeroizing<String>,
    }
    let plaintext = crate::seal::open_for_source(&session.identity, sealed)?;
    let reply: Reply = serde_json::from_slice(&plaintext)?;
    Ok(reply.text)
}

fn internal(lang: Lang, error: &dyn std::fmt::Display) -> Response {
    tracing::error!(%error, "a follow-up page failed");
    super::public::message_page_back(
        StatusCode::INTERNAL_SERVER_ERROR,
        lang,
        "error-title",
        vec![lang.t("error-internal-followup")],
        None,
    )
}

/// `POST /followup/case/add`: more text and files for the same tip, sealed and limited like a
/// first submission.
pub async fn add(
    State(app): State<AppState>,
    PageLang(lang): PageLang,
    request: Request,
) -> Response {
    let limits = app.config.limits.clone();
    let (parts, body) = request.into_parts();
    let body = SharedBody::new(
        body,
        limits.min_upload_bytes_per_second,
        Duration::from_secs(limits.upload_rate_grace_seconds),
    );
    let back = ("/followup/case", "followup-back-case");
    let Some((session, token)) = source_session(&app, &parts.headers) else {
        return refused(
            &parts,
            &body,
            Refusal::SessionEnded,
            lang,
            &limits,
            back_to_signin(),
        )
        .await;
    };
    match receive_followup(&app, lang, &parts, &body, &session).await {
        Ok(response) => {
            // An upload can outlast the idle time: it was activity, so the session lives on
            // and the confirmation page can be shown.
            let _ = app.sources.get(&token);
            response
        }
        Err(Refusal::SessionEnded) => {
            refused(
                &parts,
                &body,
                Refusal::SessionEnded,
                lang,
                &limits,
                back_to_signin(),
            )
            .await
        }
        Err(refusal) => refused(&parts, &body, refusal, lang, &limits, back).await,
    }
}

async fn receive_followup(
    app: &AppState,
    lang: Lang,
    parts: &axum::http::request::Parts,
    body: &SharedBody,
    session: &SourceSession,
) -> Result<Response, Refusal> {
    let Upload {
        _slot,
        mut multipart,
        mut submission,
    } = start_upload(app, parts, body, &["csrf", "message", "attachment"]).await?;
    let mut form = FormText::default();
    let received = receive(
        &mut multipart,
        body,
        &mut submission,
        &mut form,
        &app.config.limits,
    )
    .await;
    drop(multipart);
    let checked = received.and_then(|()| {
        if !form.csrf.as_deref().is_some_and(|t| session.check_csrf(t)) {
            return Err(Refusal::SessionEnded);
        }
        let message = form.message.take().filter(|m| !m.trim().is_empty());
        if message.is_none() && submission.attachment_count() == 0 {
            return Err(Refusal::NothingToAdd);
        }
        Ok(message)
    });
    let message = match checked {
        Ok(message) => message,
        Err(refusal) => {
            submission.abandon().await;
            return Err(refusal);
        }
    };
    match submission
        .commit_followup(&session.tip_id, message, lang)
        .await
    {
        Ok(true) => Ok(
            Redirect::to(&format!("/followup/case?lang={}&added=1", lang.tag())).into_response(),
        ),
        Ok(false) => Err(Refusal::SessionEnded),
        Err(error) if error.keys_revoked() => {
            tracing::warn!("a follow-up in flight was sealed to a key revoked meanwhile: refused");
            Err(Refusal::KeysChanged)
        }
        Err(error) => {
            tracing::error!(%error, "a follow-up could not be stored");
            Err(Refusal::Internal)
        }
    }
}

#[derive(Deserialize)]
pub struct DeleteForm {
    csrf: String,
    reply: String,
}

/// `POST /followup/case/delete-reply`: erases the source's copy of a reply it has read.
pub async fn delete_reply(
    State(app): State<AppState>,
    PageLang(lang): PageLang,
    headers: HeaderMap,
    Form(form): Form<DeleteForm>,
) -> Response {
    let Some((session, _)) = source_session(&app, &headers) else {
        return session_ended(&app, lang);
    };
    if !session.check_csrf(&form.csrf) {
        return session_ended(&app, lang);
    }
    let at = coarsen(now(), app.intake.time_granularity());
    match app
        .intake
        .store
        .delete_source_reply(&session.tip_id, &form.reply, at)
        .await
    {
        Ok(true) => Redirect::to(&format!("/followup/case?lang={}", lang.tag())).into_response(),
        Ok(false) => super::public::message_page_back(
            StatusCode::NOT_FOUND,
            lang,
            "error-title",
            vec![lang.t("case-reply-not-found")],
            Some(("/followup/case", "followup-back-case")),
        ),
        Err(error) => internal(lang, &error),
    }
}

#[derive(Deserialize)]
pub struct SignoutForm {
    csrf: String,
}

/// `POST /followup/signout`: ends the session (its key is dropped) and clears the browser.
pub async fn signout(
    State(app): State<AppState>,
    PageLang(lang): PageLang,
    headers: HeaderMap,
    Form(form): Form<SignoutForm>,
) -> Response {
    // Always ends the session the cookie names and clears the browser, token or not: a
    // sign-out must never leave replies readable (an older tab carries an older token), and a
    // cross-site sign-out cannot happen (the cookie is SameSite=Strict) and would harm no one.
    let _ = form.csrf;
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        app.sources.end(token);
    }
    let mut response = super::public::message_page_back(
        StatusCode::OK,
        lang,
        "signedout-title",
        vec![lang.t("signedout-body")],
        Some(("/", "nav-home")),
    );
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0));
    headers.insert(
        axum::http::HeaderName::from_static("clear-site-data"),
        HeaderValue::from_static("\"cache\", \"cookies\""),
    );
    response
}
