//! The source's pages that only show something: the landing page, the submission form, the
//! receipt, "not found" — and the templates' data.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::PublicState;
use super::error::{Back, PageError, Refusal};
use crate::config::Limits;
use crate::i18n::Lang;
use crate::intake::{IncidentType, KeyState};
use crate::web::shared::lang::PageLang;
use crate::web::shared::pages::{Chrome, message_page, render};

#[derive(Template)]
#[template(path = "landing.html")]
pub struct LandingPage {
    pub chrome: Chrome,
}

#[derive(Template)]
#[template(path = "submit.html")]
pub struct SubmitPage {
    pub chrome: Chrome,
    pub incident_options: Vec<(&'static str, String)>,
    pub attachments_help: String,
}

#[derive(Template)]
#[template(path = "receipt.html")]
pub struct ReceiptPage<'a> {
    pub chrome: Chrome,
    pub receipt: &'a str,
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
        Ok(KeyState::Ready(_)) => Ok(render(
            StatusCode::OK,
            &SubmitPage {
                chrome: Chrome {
                    lang,
                    path: "/submit",
                },
                incident_options: IncidentType::ALL
                    .into_iter()
                    .map(|t| (t.name(), lang.t(&format!("incident-{}", t.name()))))
                    .collect(),
                attachments_help: attachments_help(lang, &app.limits),
            },
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
