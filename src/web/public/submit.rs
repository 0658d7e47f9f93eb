//! `POST /submit`: a source's first report — received, validated, sealed and committed; the
//! answer is the receipt, shown only once the whole submission is durable. A refusal gives the
//! form back with what was typed; the same form sent twice stores one tip.

use axum::extract::{Request, State};
use axum::response::Response;
use zeroize::Zeroizing;

use super::PublicState;
use super::error::{Back, PageError, Refusal};
use super::pages::{Refill, attachments_help};
use super::receipt::{Gone, gone_page, receipt_page, shown_again};
use super::shown::FormKey;
use super::upload::{FormText, MAX_DETAIL_CHARS, Upload, refused, watched_body};
use crate::i18n::Lang;
use crate::intake::{Facts, IncidentType};
use crate::web::shared::lang::PageLang;
use crate::web::transport::body::SharedBody;

/// The fields of the submission form.
const FIELDS: [&str; 7] = [
    "form_key",
    "message",
    "incident_type",
    "country",
    "city",
    "when",
    "attachment",
];

pub async fn submit(
    State(app): State<PublicState>,
    PageLang(lang): PageLang,
    request: Request,
) -> Result<Response, PageError> {
    let (parts, body) = request.into_parts();
    let body = watched_body(body, &app);
    let mut form = FormText::default();
    match receive_submission(&app, lang, &parts, &body, &mut form).await {
        Ok(response) => Ok(response),
        Err(refusal) => {
            let error = refused(&parts, &body, refusal, lang, &app.limits, Back::SUBMIT).await;
            Err(match refusal {
                // Nothing can be sent now: the form would only invite typing in vain.
                Refusal::Paused => error,
                _ => error.with_form(refill(form, lang, &app)),
            })
        }
    }
}

/// Receives, validates, seals and commits one submission while holding a submission slot.
/// The text fields stay in `form` for the form to show again if it is refused.
async fn receive_submission(
    app: &PublicState,
    lang: Lang,
    parts: &axum::http::request::Parts,
    body: &SharedBody,
    form: &mut FormText,
) -> Result<Response, Refusal> {
    let mut upload = Upload::start(app, parts, body, &FIELDS).await?;
    let received = upload.receive(body, form, &app.limits).await;
    let (submission, _slot) = upload.into_submission();
    let (message, facts) = match received.and_then(|()| validate(form)) {
        Ok(valid) => valid,
        Err(refusal) => {
            submission.abandon().await;
            return Err(refusal);
        }
    };
    // A form without its key (an old page, a script) still gets one, for its receipt page.
    let key = form
        .form_key
        .as_deref()
        .and_then(|k| FormKey::parse(k))
        .unwrap_or_else(FormKey::generate);
    // Sent before, and its receipt still kept here: the same receipt, nothing stored again.
    if let Some(page) = shown_again(app, &key, lang, true) {
        submission.abandon().await;
        return Ok(page);
    }
    match submission
        .commit(message, facts, lang, Some(key.hash()))
        .await
    {
        Ok(accepted) => {
            let words = accepted.receipt.words(lang);
            app.shown.keep(key.hash(), accepted.receipt);
            Ok(receipt_page(lang, &words, &key, false))
        }
        // Sent before through another node, or before a restart: stored once, then.
        Err(error) if error.already_sent() => Ok(gone_page(
            lang,
            Gone {
                resent: true,
                written_down: false,
            },
        )),
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

/// What was typed, for the form to show again after a refusal.
fn refill(form: FormText, lang: Lang, app: &PublicState) -> Refill {
    let text = |value: Option<Zeroizing<String>>| value.unwrap_or_default();
    Refill {
        message: text(form.message),
        incident_type: form
            .incident_type
            .as_deref()
            .and_then(|name| IncidentType::from_name(name.trim()))
            .map(|t| t.name().to_owned())
            .unwrap_or_default(),
        country: text(form.country),
        city: text(form.city),
        when: text(form.when),
        refused_file: form.refused_file,
        attachments_help: attachments_help(lang, &app.limits),
    }
}

/// Checks the text fields once everything has arrived.
fn validate(form: &FormText) -> Result<(Zeroizing<String>, Facts), Refusal> {
    let message = form
        .message
        .clone()
        .filter(|m| !m.trim().is_empty())
        .ok_or(Refusal::MessageMissing)?;
    let incident_type = match form.incident_type.as_deref().map(|v| v.trim()) {
        None | Some("") => None,
        Some(name) => Some(IncidentType::from_name(name).ok_or(Refusal::UnknownIncident)?),
    };
    let detail = |value: &Option<Zeroizing<String>>| -> Result<Option<Zeroizing<String>>, Refusal> {
        match value.as_deref().map(|v| v.trim()) {
            None | Some("") => Ok(None),
            Some(v) if v.chars().count() > MAX_DETAIL_CHARS => Err(Refusal::DetailTooLong),
            Some(v) => Ok(Some(Zeroizing::new(v.to_owned()))),
        }
    };
    let facts = Facts {
        incident_type,
        country: detail(&form.country)?,
        city: detail(&form.city)?,
        when: detail(&form.when)?,
    };
    Ok((message, facts))
}
