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
use zeroize::Zeroizing;

use super::PublicState;
use super::error::{Back, PageError, Refusal};
use super::pages::attachments_help;
use super::upload::{FormText, Upload, refused, watched_body};
use crate::clock::{coarsen, now};
use crate::followup::{OpenError, SESSION_COOKIE, SourceSession};
use crate::i18n::Lang;
use crate::receipt::{ReceiptCode, ReceiptError};
use crate::web::shared::cookies::{
    clear_cookie, cookie, form_token, paired_form_token, set_cookie,
};
use crate::web::shared::lang::PageLang;
use crate::web::shared::pages::{Chrome, message_page, render};
use crate::web::transport::body::SharedBody;

/// Pairs the receipt form with the browser that loaded it.
const SIGNIN_COOKIE: &str = "__Host-tipbox_signin";
/// The longest receipt field read (12 words, however spaced, are far shorter).
const MAX_RECEIPT_BYTES: usize = 1024;
/// How long a loaded receipt form stays usable.
const SIGNIN_FORM_SECONDS: i64 = 3600;

#[derive(Template)]
#[template(path = "followup.html")]
struct SigninPage<'a> {
    chrome: Chrome,
    csrf: String,
    problem: Option<String>,
    /// What was typed, when it was only mistyped.
    receipt: Option<&'a str>,
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
    /// What was received, per send: (when, message or not, files, their size), in words.
    received: Vec<ReceivedView>,
    attachments_help: String,
    signout_help: String,
}

struct ReceivedView {
    when: String,
    message: String,
    files: String,
    size: String,
}

/// The receipt form, with a fresh token paired with a short-lived cookie, what went wrong
/// last time if anything did, and what was typed if it was only mistyped.
pub(super) fn signin_page(
    status: StatusCode,
    lang: Lang,
    problem: Option<String>,
    receipt: Option<&str>,
) -> Response {
    let token = form_token(now(), SIGNIN_FORM_SECONDS);
    let mut response = render(
        status,
        &SigninPage {
            chrome: Chrome {
                lang,
                path: "/followup",
            },
            csrf: token.clone(),
            problem,
            receipt,
        },
    );
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(SIGNIN_COOKIE, &token));
    response
}

impl PublicState {
    /// How long a source session may sit idle, in whole minutes (for the pages to say).
    fn idle_minutes(&self) -> u64 {
        self.followup.session_idle_seconds.div_ceil(60)
    }

    /// The receipt form again, because the session has ended (or never was).
    fn session_ended(&self, lang: Lang) -> PageError {
        PageError::signin(
            lang,
            StatusCode::UNAUTHORIZED,
            lang.t_args(
                "followup-session-ended",
                &[("minutes", lang.number(self.idle_minutes()))],
            ),
        )
    }

    /// The live source session of a request, with its token.
    fn source_session(&self, headers: &HeaderMap) -> Option<(SourceSession, Zeroizing<String>)> {
        let token = cookie(headers, SESSION_COOKIE)?;
        let session = self.sources.get(token)?;
        Some((session, Zeroizing::new(token.to_owned())))
    }
}

/// A wrong receipt and one whose report no longer exists get the same page.
fn no_match(lang: Lang) -> PageError {
    PageError::signin(
        lang,
        StatusCode::UNAUTHORIZED,
        lang.t("followup-error-no-match"),
    )
}

fn busy(lang: Lang) -> PageError {
    PageError::signin(
        lang,
        StatusCode::SERVICE_UNAVAILABLE,
        lang.t("followup-error-busy"),
    )
}

/// A follow-up page that failed on our side.
fn failed(lang: Lang, error: impl std::fmt::Display) -> PageError {
    PageError::internal(
        lang,
        Refusal::FollowupFailed,
        Back::CASE,
        "a follow-up page failed",
        error,
    )
}

/// `GET /followup`: the receipt form.
pub async fn show_signin(PageLang(lang): PageLang) -> Response {
    signin_page(StatusCode::OK, lang, None, None)
}

#[derive(Deserialize)]
pub struct SigninForm {
    csrf: String,
    receipt: Zeroizing<String>,
}

/// `POST /followup`: checks the receipt and opens a session for its tip.
pub async fn signin(
    State(app): State<PublicState>,
    PageLang(lang): PageLang,
    headers: HeaderMap,
    Form(form): Form<SigninForm>,
) -> Result<Response, PageError> {
    if !paired_form_token(&headers, SIGNIN_COOKIE, &form.csrf, now()) {
        return Err(PageError::signin(
            lang,
            StatusCode::FORBIDDEN,
            lang.t("followup-error-form-expired"),
        ));
    }
    // A mistyped receipt is told apart from a wrong one: the words and their checksum say so
    // without looking anything up. Twelve words take far less than this.
    let parsed = if form.receipt.len() <= MAX_RECEIPT_BYTES {
        ReceiptCode::parse(&form.receipt, lang)
    } else {
        Err(ReceiptError::WordCount)
    };
    let readings = parsed.map_err(|error| {
        let problem = match error {
            ReceiptError::WordCount => lang.t("followup-error-word-count"),
            ReceiptError::UnknownWord {
                position,
                suggestions,
            } => {
                let mut problem = lang.t_args(
                    "followup-error-unknown-word-at",
                    &[("position", lang.number(position as u64))],
                );
                if !suggestions.is_empty() {
                    // Chinese sentences follow each other without a space, and list with 、.
                    problem.push_str(lang.sentence_gap());
                    problem.push_str(&lang.t_args(
                        "followup-error-did-you-mean",
                        &[("words", suggestions.join(lang.list_separator()))],
                    ));
                }
                problem
            }
            ReceiptError::Checksum => lang.t("followup-error-checksum"),
        };
        // The box keeps what was typed: one mistyped word must not cost all twelve.
        PageError::signin(lang, StatusCode::BAD_REQUEST, problem).with_receipt(&form.receipt)
    })?;
    drop(form);
    // A session this browser already had ends here, whichever tip it was for.
    if let Some(old) = cookie(&headers, SESSION_COOKIE) {
        app.sources.end(old);
    }
    let found = app.intake.open_case(readings).await.map_err(|error| {
        PageError::signin(
            lang,
            StatusCode::INTERNAL_SERVER_ERROR,
            lang.t("error-internal-followup"),
        )
        .because("could not look up a receipt", error)
    })?;
    let (tip, identity) = found.ok_or_else(|| no_match(lang))?;
    let token = match app.sources.open(tip.id, identity) {
        Ok(token) => token,
        Err(OpenError::Full) => return Err(busy(lang)),
    };
    let mut response = Redirect::to(&format!("/followup/case?lang={}", lang.tag())).into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &token));
    headers.append(header::SET_COOKIE, clear_cookie(SIGNIN_COOKIE));
    Ok(response)
}

#[derive(Deserialize)]
pub struct CaseQuery {
    #[serde(default)]
    added: Option<String>,
}

/// `GET /followup/case`: where the report stands, the replies (opened here with the session's
/// key, marked read), and the forms to add more and to sign out.
pub async fn case(
    State(app): State<PublicState>,
    PageLang(lang): PageLang,
    Query(query): Query<CaseQuery>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let (session, token) = app
        .source_session(&headers)
        .ok_or_else(|| app.session_ended(lang))?;
    let store = &app.intake.store;
    let Some(status) = store
        .tip_status(&session.tip_id)
        .await
        .map_err(|e| failed(lang, e))?
    else {
        app.sources.end(&token);
        return Err(no_match(lang));
    };
    let sealed = store
        .source_replies(&session.tip_id)
        .await
        .map_err(|e| failed(lang, e))?;
    let received = store
        .source_received(&session.tip_id)
        .await
        .map_err(|e| failed(lang, e))?
        .into_iter()
        .enumerate()
        .map(|(n, send)| ReceivedView {
            // Dates and counts as the page's language writes them (Persian digits on Persian pages).
            when: if n == 0 {
                lang.t_args("case-received-first", &[("date", lang.day(&date(send.at)))])
            } else {
                lang.day(&date(send.at))
            },
            message: lang.t(if send.message {
                "case-received-yes"
            } else {
                "case-received-no"
            }),
            files: lang.number(send.files),
            size: if send.files == 0 {
                String::new()
            } else {
                lang.size(send.file_bytes.max(0) as u64)
            },
        })
        .collect();
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
    store
        .mark_replies_read(&session.tip_id, &newly_read, read_at)
        .await
        .map_err(|e| failed(lang, e))?;
    Ok(render(
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
            received,
            attachments_help: attachments_help(lang, &app.limits),
            signout_help: lang.t_args(
                "case-signout-help",
                &[("minutes", lang.number(app.idle_minutes()))],
            ),
        },
    ))
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

/// `POST /followup/case/add`: more text and files for the same tip, sealed and limited like a
/// first submission.
pub async fn add(
    State(app): State<PublicState>,
    PageLang(lang): PageLang,
    request: Request,
) -> Result<Response, PageError> {
    let (parts, body) = request.into_parts();
    let body = watched_body(body, &app);
    let refuse = async |refusal: Refusal| {
        let back = match refusal {
            Refusal::SessionEnded => Back::SIGNIN,
            _ => Back::CASE,
        };
        refused(&parts, &body, refusal, lang, &app.limits, back).await
    };
    let Some((session, token)) = app.source_session(&parts.headers) else {
        return Err(refuse(Refusal::SessionEnded).await);
    };
    match receive_followup(&app, lang, &parts, &body, &session).await {
        Ok(response) => {
            // An upload can outlast the idle time: it was activity, so the session lives on
            // and the confirmation page can be shown.
            let _ = app.sources.get(&token);
            Ok(response)
        }
        Err(refusal) => Err(refuse(refusal).await),
    }
}

async fn receive_followup(
    app: &PublicState,
    lang: Lang,
    parts: &axum::http::request::Parts,
    body: &SharedBody,
    session: &SourceSession,
) -> Result<Response, Refusal> {
    let mut upload = Upload::start(app, parts, body, &["csrf", "message", "attachment"]).await?;
    let mut form = FormText::default();
    let received = upload.receive(body, &mut form, &app.limits).await;
    let (submission, _slot) = upload.into_submission();
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
    /// The box the source ticks to say yes, delete it: one click must not erase a reply.
    #[serde(default)]
    confirm: Option<String>,
}

/// `POST /followup/case/delete-reply`: erases the source's copy of a reply it has read.
pub async fn delete_reply(
    State(app): State<PublicState>,
    PageLang(lang): PageLang,
    headers: HeaderMap,
    Form(form): Form<DeleteForm>,
) -> Result<Response, PageError> {
    let session = app
        .source_session(&headers)
        .map(|(session, _)| session)
        .filter(|session| session.check_csrf(&form.csrf))
        .ok_or_else(|| app.session_ended(lang))?;
    if form.confirm.as_deref() != Some("yes") {
        return Err(PageError::refused(
            lang,
            Refusal::DeleteNotConfirmed,
            Back::CASE,
        ));
    }
    let at = coarsen(now(), app.intake.time_granularity());
    let deleted = app
        .intake
        .store
        .delete_source_reply(&session.tip_id, &form.reply, at)
        .await
        .map_err(|e| failed(lang, e))?;
    if !deleted {
        return Err(PageError::refused(lang, Refusal::ReplyNotFound, Back::CASE));
    }
    Ok(Redirect::to(&format!("/followup/case?lang={}", lang.tag())).into_response())
}

#[derive(Deserialize)]
pub struct SignoutForm {
    csrf: String,
}

/// `POST /followup/signout`: ends the session (its key is dropped) and clears the browser.
pub async fn signout(
    State(app): State<PublicState>,
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
    let mut response = message_page(
        StatusCode::OK,
        lang,
        "signedout-title",
        vec![lang.t("signedout-body")],
        Some(("/", "nav-home")),
    );
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, clear_cookie(SESSION_COOKIE));
    headers.insert(
        axum::http::HeaderName::from_static("clear-site-data"),
        HeaderValue::from_static("\"cache\", \"cookies\""),
    );
    response
}
