//! Server-rendered pages (askama): the templates' data, and turning a page into a response.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::i18n::Lang;
use crate::intake::IncidentType;

/// What every page's frame needs: the language, and the path the language switch links to.
pub struct Chrome {
    pub lang: Lang,
    pub path: &'static str,
}

pub struct LangLink {
    pub href: String,
    pub tag: &'static str,
    pub name: &'static str,
    pub current: bool,
}

impl Chrome {
    pub fn t(&self, key: &str) -> String {
        self.lang.t(key)
    }

    /// A message with a `$date` in it.
    pub fn t_date(&self, key: &str, date: &str) -> String {
        self.lang.t_args(key, &[("date", date.to_owned())])
    }

    pub fn lang_links(&self) -> Vec<LangLink> {
        Lang::ALL
            .into_iter()
            .map(|l| LangLink {
                href: format!("{}?lang={}", self.path, l.tag()),
                tag: l.tag(),
                name: l.native_name(),
                current: l == self.lang,
            })
            .collect()
    }
}

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

impl SubmitPage {
    pub fn new(lang: Lang, limits: &crate::config::Limits) -> Self {
        Self {
            chrome: Chrome {
                lang,
                path: "/submit",
            },
            incident_options: IncidentType::ALL
                .into_iter()
                .map(|t| (t.name(), lang.t(&format!("incident-{}", t.name()))))
                .collect(),
            attachments_help: lang.t_args(
                "submit-attachments-help",
                &[
                    ("count", limits.max_attachments.to_string()),
                    ("size", lang.size(limits.max_attachment_bytes)),
                    ("total", lang.size(limits.max_total_bytes)),
                ],
            ),
        }
    }
}

#[derive(Template)]
#[template(path = "receipt.html")]
pub struct ReceiptPage<'a> {
    pub chrome: Chrome,
    pub receipt: &'a str,
}

/// A page that says one thing: an error, or that submissions are paused.
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub chrome: Chrome,
    pub title: String,
    pub lines: Vec<String>,
    /// A link back: its address and its text.
    pub back: Option<(String, String)>,
}

/// Renders a page with a status. A template that fails to render is a bug; answer 500 without
/// echoing anything.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}
