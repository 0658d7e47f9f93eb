//! The source's pages that only show something: the landing page, the submission form (empty,
//! or back after a refusal), "not found" — and the templates' data.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::PublicState;
use super::error::{Back, PageError, Refusal};
use super::shown::FormKey;
use crate::config::Limits;
use crate::i18n::Lang;
use crate::intake::{IncidentType, KeyState};
use crate::web::shared::lang::PageLang;
use crate::web::shared::pages::{Chrome, message_page, render};
use zeroize::Zeroizing;

#[derive(Template)]
#[template(path = "landing.html")]
pub struct LandingPage {
    pub chrome: Chrome,
}

#[derive(Template)]
#[template(path = "submit.html")]
struct SubmitPage<'a> {
    chrome: Chrome,
    incident_options: Vec<(&'static str, String)>,
    attachments_help: String,
    /// This form's own key (`shown::FormKey`): the same form sent twice stores one tip.
    form_key: &'a str,
    /// What the source typed, when the form comes back after a refusal.
    form: &'a Refill,
    /// What went wrong, when it comes back: a title and what to do.
    problem: Option<&'a Problem>,
}

/// What went wrong with a submission, above the form that comes back.
pub struct Problem {
    pub title: String,
    pub lines: Vec<String>,
}

/// A refused submission's text, put back into the form (files cannot be: the page says so,
/// and names the file that was refused).
#[derive(Default)]
pub struct Refill {
    pub message: Zeroizing<String>,
    pub incident_type: String,
    pub country: Zeroizing<String>,
    pub city: Zeroizing<String>,
    pub when: Zeroizing<String>,
    pub refused_file: Option<String>,
    /// The limits in words, as on the form (computed where the limits are known).
    pub attachments_help: String,
}

impl std::fmt::Debug for Refill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // What a source typed never reaches a log.
        f.write_str("Refill(<redacted>)")
    }
}

/// The submission form: empty, or back after a refusal with what was typed and `problems`.
pub fn submit_page(
    status: StatusCode,
    lang: Lang,
    form_key: &FormKey,
    form: &Refill,
    problem: Option<&Problem>,
) -> Response {
    render(
        status,
        &SubmitPage {
            chrome: Chrome {
                lang,
                path: "/submit",
            },
            incident_options: IncidentType::ALL
                .into_iter()
                .map(|t| (t.name(), lang.t(&format!("incident-{}", t.name()))))
                .collect(),
            attachments_help: form.attachments_help.clone(),
            form_key: form_key.as_str(),
            form,
            problem,
        },
    )
}

/// What a source may attach, in words: how many files, how large each, how large together.
pub fn attachments_help(lang: Lang, limits: &Limits) -> String {
    lang.t_args(
        "submit-attachments-help",
        &[
            ("count", lang.number(limits.max_attachments)),
            ("size", lang.size(limits.max_attachment_bytes)),
            ("total", lang.size(limits.max_total_bytes)),
        ],
    )
}

/// `GET /`: what this is, who reads tips, how to stay safe.
pub async fn landing(PageLang(lang): PageLang) -> Response {
    render(
        StatusCode::OK,
        &LandingPage {
            chrome: Chrome { lang, path: "/" },
        },
    )
}

/// `GET /submit`: the form, or "paused" when no reviewer key can seal a submission.
pub async fn submit_form(
    State(app): State<PublicState>,
    PageLang(lang): PageLang,
) -> Result<Response, PageError> {
    match app.intake.keys.for_submission(&app.intake.store).await {
        Ok(KeyState::Ready(_)) => Ok(submit_page(
            StatusCode::OK,
            lang,
            &FormKey::generate(),
            &Refill {
                attachments_help: attachments_help(lang, &app.limits),
                ..Refill::default()
            },
            None,
        )),
        Ok(KeyState::NoKeys | KeyState::Unusable(_)) => {
            Err(PageError::refused(lang, Refusal::Paused, Back::SUBMIT))
        }
        Err(error) => Err(PageError::internal(
            lang,
            Refusal::Internal,
            Back::SUBMIT,
            "could not read the keyring",
            error,
        )),
    }
}

/// `GET /favicon.ico`: nothing, said plainly. Browsers ask for it on a first visit; a 404
/// page rendered for it would be wasted work and noise in the source's budget of page loads.
pub async fn no_favicon() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// Any other address.
pub async fn not_found(PageLang(lang): PageLang) -> Response {
    message_page(
        StatusCode::NOT_FOUND,
        lang,
        "not-found-title",
        vec![lang.t("not-found-body")],
        None,
    )
}
