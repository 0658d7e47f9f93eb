//! The source-facing pages: landing, the submission form, and the receipt. No JavaScript, no
//! third-party resources; everything works in Tor Browser at its Safest level.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use zeroize::Zeroizing;

use super::AppState;
use super::body::{IDLE_TIMEOUT, SharedBody, Violation};
use super::pages::{Chrome, LandingPage, MessagePage, ReceiptPage, SubmitPage, render};
use crate::i18n::Lang;
use crate::intake::{Facts, IncidentType, KeyState, Submission};

/// Multipart framing (boundaries, part headers) allowed on top of `limits.max_total_bytes`.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;
/// Longest accepted value of a short detail field (country, city, when), in characters.
const MAX_DETAIL_CHARS: usize = 200;
/// Longest recorded attachment file name, in bytes; longer names are cut.
const MAX_FILE_NAME_BYTES: usize = 255;
/// How long a submission may wait for a free slot before "busy" is answered.
const QUEUE_WAIT: Duration = Duration::from_secs(30);

static STYLESHEET: &str = include_str!("../../static/style.css");

pub fn router(state: AppState) -> Router {
    let limits = state.config.rate_limits.clone();
    let onion = state
        .config
        .public
        .onion_address
        .as_deref()
        .map(Arc::<str>::from);
    let pages = Router::new()
        .route("/", get(landing))
        .route("/submit", get(submit_form))
        .route("/followup", get(super::source::show_signin))
        .route("/followup/case", get(super::source::case))
        .route(
            "/followup/case/delete-reply",
            post(super::source::delete_reply),
        )
        .route("/followup/signout", post(super::source::signout))
        .route("/static/style.css", get(stylesheet))
        .fallback(not_found)
        .layer(super::serve::body_timeout(&state.config.limits));
    // The forms that cost work: sealing and storing, or a receipt lookup. Our own limits apply
    // to uploads, field by field, with a page that says which.
    let forms = Router::new()
        .route("/submit", post(submit).layer(DefaultBodyLimit::disable()))
        .route(
            "/followup",
            post(super::source::signin).layer(super::serve::body_timeout(&state.config.limits)),
        )
        .route(
            "/followup/case/add",
            post(super::source::add).layer(DefaultBodyLimit::disable()),
        );
    let router = super::limits::public(&limits, pages, forms).with_state(state);
    let router = super::with_common_layers(router);
    match onion {
        Some(onion) => router.layer(axum::middleware::from_fn_with_state(
            onion,
            super::onion_location,
        )),
        None => router,
    }
}

/// The language of a page: `?lang=` first, then `Accept-Language`, then English.
pub struct PageLang(pub Lang);

impl<S: Send + Sync> FromRequestParts<S> for PageLang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let explicit = parts.uri.query().and_then(|q| {
            q.split('&')
                .filter_map(|pair| pair.strip_prefix("lang="))
                .find_map(Lang::from_tag)
        });
        let lang = explicit.unwrap_or_else(|| {
            parts
                .headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .map(Lang::negotiate)
                .unwrap_or(Lang::En)
        });
        Ok(PageLang(lang))
    }
}

async fn landing(PageLang(lang): PageLang) -> Response {
    render(
        StatusCode::OK,
        &LandingPage {
            chrome: Chrome { lang, path: "/" },
        },
    )
}

async fn submit_form(State(app): State<AppState>, PageLang(lang): PageLang) -> Response {
    match app.intake.keys.for_submission(&app.intake.store).await {
        Ok(KeyState::Ready(_)) => {
            render(StatusCode::OK, &SubmitPage::new(lang, &app.config.limits))
        }
        Ok(KeyState::NoKeys | KeyState::Unusable(_)) => paused(lang),
        Err(error) => {
            tracing::error!(%error, "could not read the keyring");
            Refusal::Internal.respond_with_back(lang, &app.config.limits, ("/submit", "error-back"))
        }
    }
}

pub(super) async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
        .into_response()
}

async fn not_found(PageLang(lang): PageLang) -> Response {
    message_page(
        StatusCode::NOT_FOUND,
        lang,
        "not-found-title",
        vec![lang.t("not-found-body")],
        false,
    )
}

pub(super) fn message_page(
    status: StatusCode,
    lang: Lang,
    title_key: &str,
    lines: Vec<String>,
    show_back: bool,
) -> Response {
    message_page_back(
        status,
        lang,
        title_key,
        lines,
        show_back.then_some(("/submit", "error-back")),
    )
}

/// A page that says one thing, with an optional link back (path and its text's key).
pub(super) fn message_page_back(
    status: StatusCode,
    lang: Lang,
    title_key: &str,
    lines: Vec<String>,
    back: Option<(&'static str, &'static str)>,
) -> Response {
    render(
        status,
        &MessagePage {
            chrome: Chrome {
                lang,
                path: back.map_or("/submit", |(path, _)| path),
            },
            title: lang.t(title_key),
            lines,
            back: back.map(|(path, text)| (format!("{path}?lang={}", lang.tag()), lang.t(text))),
        },
    )
}

pub(super) fn paused(lang: Lang) -> Response {
    let mut response = message_page(
        StatusCode::SERVICE_UNAVAILABLE,
        lang,
        "paused-title",
        vec![lang.t("paused-body")],
        false,
    );
    response.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from_static("3600"),
    );
    response
}

/// Why a submission was refused. Each maps to a status and a localized explanation.
#[derive(Debug)]
pub(super) enum Refusal {
    Malformed,
    MessageMissing,
    InvalidUtf8,
    UnknownIncident,
    DetailTooLong,
    UnexpectedField,
    MessageTooLarge,
    AttachmentTooLarge,
    TotalTooLarge,
    TooManyAttachments,
    Paused,
    Busy,
    TooSlow,
    /// A reviewer key was revoked while the submission was being received.
    KeysChanged,
    Internal,
    /// A follow-up without a live session or with a wrong form token.
    SessionEnded,
    /// A follow-up with neither text nor a file.
    NothingToAdd,
    /// The data directory is short of space: nothing is accepted until it is freed.
    DiskFull,
}

impl Refusal {
    /// The page for this refusal, whose link back (when there is one) goes to `back`.
    pub(super) fn respond_with_back(
        self,
        lang: Lang,
        limits: &crate::config::Limits,
        back: (&'static str, &'static str),
    ) -> Response {
        use Refusal::*;
        let nothing = lang.t("error-nothing-stored");
        let (status, title, text) = match self {
            Paused => return paused(lang),
            Malformed => (
                StatusCode::BAD_REQUEST,
                "error-title",
                lang.t("error-bad-request"),
            ),
            MessageMissing => (
                StatusCode::BAD_REQUEST,
                "error-title",
                lang.t("error-message-missing"),
            ),
            InvalidUtf8 => (
                StatusCode::BAD_REQUEST,
                "error-title",
                lang.t("error-invalid-utf8"),
            ),
            UnknownIncident => (
                StatusCode::BAD_REQUEST,
                "error-title",
                lang.t("error-unknown-incident"),
            ),
            DetailTooLong => (
                StatusCode::BAD_REQUEST,
                "error-title",
                lang.t("error-field-too-long"),
            ),
            UnexpectedField => (
                StatusCode::BAD_REQUEST,
                "error-title",
                lang.t("error-unexpected-field"),
            ),
            MessageTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "error-too-large-title",
                lang.t_args(
                    "error-message-too-large",
                    &[("size", lang.size(limits.max_message_bytes))],
                ),
            ),
            AttachmentTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "error-too-large-title",
                lang.t_args(
                    "error-attachment-too-large",
                    &[("size", lang.size(limits.max_attachment_bytes))],
                ),
            ),
            TotalTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "error-too-large-title",
                lang.t_args(
                    "error-total-too-large",
                    &[("size", lang.size(limits.max_total_bytes))],
                ),
            ),
            TooManyAttachments => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "error-too-large-title",
                lang.t_args(
                    "error-too-many-attachments",
                    &[("count", limits.max_attachments.to_string())],
                ),
            ),
            Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "error-title",
                lang.t("error-busy"),
            ),
            TooSlow => (
                StatusCode::REQUEST_TIMEOUT,
                "error-title",
                lang.t("error-too-slow"),
            ),
            KeysChanged => (
                StatusCode::SERVICE_UNAVAILABLE,
                "error-title",
                lang.t("error-keys-changed"),
            ),
            Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "error-title",
                lang.t("error-internal"),
            ),
            DiskFull => (
                StatusCode::SERVICE_UNAVAILABLE,
                "error-title",
                lang.t("error-disk-full"),
            ),
            SessionEnded => (
                StatusCode::FORBIDDEN,
                "error-title",
                lang.t("followup-upload-session-ended"),
            ),
            NothingToAdd => (
                StatusCode::BAD_REQUEST,
                "error-title",
                lang.t("followup-nothing-to-add"),
            ),
        };
        let show_back = !matches!(
            status,
            StatusCode::INTERNAL_SERVER_ERROR | StatusCode::SERVICE_UNAVAILABLE
        );
        let lines = if text.contains(&nothing) {
            vec![text]
        } else {
            vec![text, nothing]
        };
        let mut page = message_page_back(status, lang, title, lines, show_back.then_some(back));
        if status == StatusCode::SERVICE_UNAVAILABLE
            && !page.headers().contains_key(header::RETRY_AFTER)
        {
            page.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("60"));
        }
        page
    }
}

fn refusal_for(error: &multer::Error) -> Refusal {
    match error {
        multer::Error::FieldSizeExceeded { field_name, .. } => match field_name.as_deref() {
            Some("message") => Refusal::MessageTooLarge,
            Some("attachment") => Refusal::AttachmentTooLarge,
            _ => Refusal::DetailTooLong,
        },
        multer::Error::StreamSizeExceeded { .. } => Refusal::TotalTooLarge,
        multer::Error::UnknownField { .. } => Refusal::UnexpectedField,
        _ => Refusal::Malformed,
    }
}

/// The form's text fields, held until the end of the upload (cleared from memory on drop).
#[derive(Default)]
pub(super) struct FormText {
    pub csrf: Option<Zeroizing<String>>,
    pub message: Option<Zeroizing<String>>,
    incident_type: Option<Zeroizing<String>>,
    country: Option<Zeroizing<String>>,
    city: Option<Zeroizing<String>>,
    when: Option<Zeroizing<String>>,
}

/// The most bytes read while looking for the next part's headers (and the first boundary).
const PART_HEADER_BUDGET: u64 = 1024 * 1024;

async fn submit(
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
    match receive_submission(&app, lang, &parts, &body).await {
        Ok(response) => response,
        Err(refusal) => {
            refused(
                &parts,
                &body,
                refusal,
                lang,
                &limits,
                ("/submit", "error-back"),
            )
            .await
        }
    }
}

/// Answers a refused upload. The submission slot is free again; now let the client finish
/// sending (bounded) so that it reads our page rather than a reset connection. A client that
/// asked for `100 Continue` and was refused before sending anything just gets the page.
pub(super) async fn refused(
    parts: &Parts,
    body: &SharedBody,
    refusal: Refusal,
    lang: Lang,
    limits: &crate::config::Limits,
    back: (&'static str, &'static str),
) -> Response {
    let expects_continue = parts
        .headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if !(expects_continue && body.received() == 0) {
        body.drain(limits.max_total_bytes.max(64 << 20)).await;
    }
    refusal.respond_with_back(lang, limits, back)
}

/// Whether the data directory has less free space than `limits.min_free_disk_bytes`. A
/// directory that cannot be examined counts as short (fail closed), and is logged.
fn disk_is_short(config: &crate::config::Config) -> bool {
    let wanted = config.limits.min_free_disk_bytes;
    if wanted == 0 {
        return false;
    }
    match rustix::fs::statvfs(&config.storage.data_dir) {
        Ok(stat) => {
            let free = stat.f_bavail.saturating_mul(stat.f_frsize);
            if free < wanted {
                tracing::error!(
                    free_bytes = free,
                    min_free_disk_bytes = wanted,
                    "the data directory is short of space: submissions are refused until it is freed"
                );
                return true;
            }
            false
        }
        Err(error) => {
            tracing::error!(%error, "cannot read the data directory's free space: submissions are refused");
            true
        }
    }
}

/// An upload in progress: its submission slot, the multipart reader and the submission that
/// seals what arrives. Dropping it frees the slot.
pub(super) struct Upload {
    pub(super) _slot: tokio::sync::OwnedSemaphorePermit,
    pub multipart: multer::Multipart<'static>,
    pub submission: Submission,
}

/// Takes a submission slot (waiting at most `QUEUE_WAIT`), checks that sealing is possible
/// and that the declared size fits, and starts reading the multipart body with `fields`.
pub(super) async fn start_upload(
    app: &AppState,
    parts: &Parts,
    body: &SharedBody,
    fields: &[&str],
) -> Result<Upload, Refusal> {
    let limits = &app.config.limits;
    let whole_limit = limits.max_total_bytes.saturating_add(MULTIPART_OVERHEAD);
    let slot = std::sync::Arc::clone(&app.submissions).acquire_owned();
    let Ok(Ok(slot)) = tokio::time::timeout(QUEUE_WAIT, slot).await else {
        return Err(Refusal::Busy);
    };
    // The keyring as it is now, on whichever node changed it: the very next submission after
    // a key change is sealed to the new set.
    // Before any byte is read or written: a submission that cannot be stored in full is
    // refused at once, not half way through.
    if disk_is_short(&app.config) {
        return Err(Refusal::DiskFull);
    }
    let keys = match app.intake.keys.for_submission(&app.intake.store).await {
        Ok(KeyState::Ready(keys)) => keys,
        Ok(KeyState::NoKeys | KeyState::Unusable(_)) => return Err(Refusal::Paused),
        Err(error) => {
            tracing::error!(%error, "could not read the keyring");
            return Err(Refusal::Internal);
        }
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > whole_limit) {
        return Err(Refusal::TotalTooLarge);
    }
    let boundary = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or(Refusal::Malformed)?;
    let constraints = multer::Constraints::new()
        .allowed_fields(fields.to_vec())
        .size_limit(
            multer::SizeLimit::new()
                .whole_stream(whole_limit)
                .per_field(4 * MAX_DETAIL_CHARS as u64)
                .for_field("message", limits.max_message_bytes)
                .for_field("attachment", limits.max_attachment_bytes),
        );
    Ok(Upload {
        _slot: slot,
        multipart: multer::Multipart::with_constraints(body.clone(), boundary, constraints),
        submission: app.intake.begin(keys),
    })
}

/// Receives, validates, seals and commits one submission while holding a submission slot.
async fn receive_submission(
    app: &AppState,
    lang: Lang,
    parts: &Parts,
    body: &SharedBody,
) -> Result<Response, Refusal> {
    let limits = &app.config.limits;
    let Upload {
        _slot,
        mut multipart,
        mut submission,
    } = start_upload(
        app,
        parts,
        body,
        &[
            "message",
            "incident_type",
            "country",
            "city",
            "when",
            "attachment",
        ],
    )
    .await?;
    let mut form = FormText::default();
    let received = receive(&mut multipart, body, &mut submission, &mut form, limits).await;
    drop(multipart);
    let (message, facts) = match received.and_then(|()| validate(form)) {
        Ok(valid) => valid,
        Err(refusal) => {
            submission.abandon().await;
            return Err(refusal);
        }
    };
    match submission.commit(message, facts, lang).await {
        Ok(accepted) => {
            let words = accepted.receipt.words(lang);
            Ok(render(
                StatusCode::OK,
                &ReceiptPage {
                    chrome: Chrome {
                        lang,
                        path: "/submit",
                    },
                    receipt: &words,
                },
            ))
        }
        Err(error) if error.keys_revoked() => {
            tracing::warn!("a submission in flight was sealed to a key revoked meanwhile: refused");
            Err(Refusal::KeysChanged)
        }
        Err(error) => {
            tracing::error!(%error, "a submission could not be stored");
            Err(Refusal::Internal)
        }
    }
}

/// Reads the whole form: text fields into memory (bounded), attachments sealed as they stream.
pub(super) async fn receive(
    multipart: &mut multer::Multipart<'static>,
    body: &SharedBody,
    submission: &mut Submission,
    form: &mut FormText,
    limits: &crate::config::Limits,
) -> Result<(), Refusal> {
    let refusal = |e: &multer::Error| match body.violation() {
        Some(Violation::TooSlow) => Refusal::TooSlow,
        Some(Violation::HeadersTooLarge) => Refusal::Malformed,
        None => refusal_for(e),
    };
    loop {
        body.limit_headers(Some(PART_HEADER_BUDGET));
        let next = tokio::time::timeout(IDLE_TIMEOUT, multipart.next_field())
            .await
            .map_err(|_| Refusal::TooSlow)?;
        body.limit_headers(None);
        let mut field = match next {
            Ok(Some(field)) => field,
            Ok(None) => return Ok(()),
            Err(e) => return Err(refusal(&e)),
        };
        let name = field.name().map(str::to_owned).ok_or(Refusal::Malformed)?;
        if name == "attachment" {
            let file_name = field.file_name().unwrap_or_default().to_owned();
            let content_type = field.content_type().map(|m| m.to_string());
            let first = next_chunk(&mut field, &refusal).await?;
            // An empty file input still sends an empty, nameless part: it is not a file.
            if file_name.is_empty() && first.as_ref().is_none_or(|c| c.is_empty()) {
                continue;
            }
            if submission.attachment_count() >= limits.max_attachments as usize {
                return Err(Refusal::TooManyAttachments);
            }
            let mut upload = submission
                .begin_attachment(truncate_name(file_name), content_type)
                .await
                .map_err(|e| internal(&e))?;
            let mut chunk = first;
            while let Some(data) = chunk {
                submission
                    .write_attachment(&mut upload, &data)
                    .await
                    .map_err(|e| internal(&e))?;
                chunk = next_chunk(&mut field, &refusal).await?;
            }
            submission
                .finish_attachment(upload)
                .await
                .map_err(|e| internal(&e))?;
        } else {
            // Sized to the field's limit up front: growing would leave plaintext copies behind.
            let capacity = if name == "message" {
                limits.max_message_bytes
            } else {
                4 * MAX_DETAIL_CHARS as u64
            };
            let mut bytes = Zeroizing::new(Vec::with_capacity(capacity.min(1 << 20) as usize));
            while let Some(data) = next_chunk(&mut field, &refusal).await? {
                bytes.extend_from_slice(&data);
            }
            if std::str::from_utf8(&bytes).is_err() {
                return Err(Refusal::InvalidUtf8);
            }
            let text = Zeroizing::new(
                String::from_utf8(std::mem::take(&mut *bytes)).expect("checked to be UTF-8 above"),
            );
            let slot = match name.as_str() {
                "csrf" => &mut form.csrf,
                "message" => &mut form.message,
                "incident_type" => &mut form.incident_type,
                "country" => &mut form.country,
                "city" => &mut form.city,
                "when" => &mut form.when,
                _ => return Err(Refusal::UnexpectedField),
            };
            if slot.replace(text).is_some() {
                return Err(Refusal::Malformed);
            }
        }
    }
}

async fn next_chunk(
    field: &mut multer::Field<'static>,
    refusal: &impl Fn(&multer::Error) -> Refusal,
) -> Result<Option<axum::body::Bytes>, Refusal> {
    match tokio::time::timeout(IDLE_TIMEOUT, field.chunk()).await {
        Ok(Ok(chunk)) => Ok(chunk),
        Ok(Err(e)) => Err(refusal(&e)),
        Err(_) => Err(Refusal::TooSlow),
    }
}

fn internal(error: &crate::intake::IntakeError) -> Refusal {
    tracing::error!(%error, "sealing an attachment failed");
    Refusal::Internal
}

fn truncate_name(mut name: String) -> String {
    if name.len() > MAX_FILE_NAME_BYTES {
        let mut end = MAX_FILE_NAME_BYTES;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
}

/// Checks the text fields once everything has arrived.
fn validate(form: FormText) -> Result<(Zeroizing<String>, Facts), Refusal> {
    let message = form
        .message
        .filter(|m| !m.trim().is_empty())
        .ok_or(Refusal::MessageMissing)?;
    let incident_type = match form.incident_type.as_deref().map(|v| v.trim()) {
        None | Some("") => None,
        Some(name) => Some(IncidentType::from_name(name).ok_or(Refusal::UnknownIncident)?),
    };
    let detail = |value: Option<Zeroizing<String>>| -> Result<Option<Zeroizing<String>>, Refusal> {
        match value.as_deref().map(|v| v.trim()) {
            None | Some("") => Ok(None),
            Some(v) if v.chars().count() > MAX_DETAIL_CHARS => Err(Refusal::DetailTooLong),
            Some(v) => Ok(Some(Zeroizing::new(v.to_owned()))),
        }
    };
    let facts = Facts {
        incident_type,
        country: detail(form.country)?,
        city: detail(form.city)?,
        when: detail(form.when)?,
    };
    Ok((message, facts))
}
