//! `POST /submit`: a source's first report — received, validated, sealed and committed; the
//! answer is the receipt, shown only once the whole submission is durable.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use zeroize::Zeroizing;

use super::PublicState;
use super::error::{Back, PageError, Refusal};
use super::pages::ReceiptPage;
use super::upload::{FormText, MAX_DETAIL_CHARS, Upload, refused, watched_body};
use crate::i18n::Lang;
use crate::intake::{Facts, IncidentType};
use crate::web::shared::lang::PageLang;
use crate::web::shared::pages::{Chrome, render};
use crate::web::transport::body::SharedBody;

/// The fields of the submission form.
const FIELDS: [&str; 6] = [
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
    match receive_submission(&app, lang, &parts, &body).await {
        Ok(response) => Ok(response),
        Err(refusal) => Err(refused(&parts, &body, refusal, lang, &app.limits, Back::SUBMIT).await),
    }
}

/// Receives, validates, seals and commits one submission while holding a submission slot.
async fn receive_submission(
    app: &PublicState,
    lang: Lang,
    parts: &axum::http::request::Parts,
    body: &SharedBody,
) -> Result<Response, Refusal> {
    let mut upload = Upload::start(app, parts, body, &FIELDS).await?;
    let mut form = FormText::default();
    let received = upload.receive(body, &mut form, &app.limits).await;
    let (submission, _slot) = upload.into_submission();
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
