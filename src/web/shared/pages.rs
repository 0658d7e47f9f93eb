//! Server-rendered pages (askama) on both listeners: every page's frame (`Chrome`), the page
//! that says one thing (errors, "paused", "signed out"), the stylesheet, and turning a page
//! into a response.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::i18n::Lang;
use crate::site::{Site, Text};

static STYLESHEET: &str = include_str!("../../../static/style.css");

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

    /// The tip line's name, as its operator calls it in this page's language.
    pub fn site_name(&self) -> String {
        Site::current().name(self.lang).to_owned()
    }

    /// Where to turn in an emergency, in the operator's words (in every page's footer).
    pub fn emergency(&self) -> Option<String> {
        Site::current()
            .text(Text::Emergency, self.lang)
            .map(str::to_owned)
    }

    /// What the operator says about the tip line, in this page's language: each text they
    /// wrote, with its heading (the landing page's "About this tip line").
    pub fn about(&self) -> Vec<(String, String)> {
        let site = Site::current();
        [
            (Text::Organisation, "site-organisation-label"),
            (Text::Reports, "site-reports-label"),
            (Text::ReplyTime, "site-reply-time-label"),
            (Text::Contact, "site-contact-label"),
            (Text::VerifyAddress, "site-verify-address-label"),
        ]
        .into_iter()
        .filter_map(|(text, label)| {
            site.text(text, self.lang)
                .map(|t| (self.lang.t(label), t.to_owned()))
        })
        .collect()
    }

    /// A message with a `$date` in it (a day the server wrote, as the language writes dates).
    pub fn t_date(&self, key: &str, date: &str) -> String {
        self.lang.t_args(key, &[("date", self.lang.day(date))])
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

/// A page that says one thing, with an optional link back (path and its text's key).
pub fn message_page(
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

/// Adds `Retry-After: seconds` to a response (refusals that end when load or keys change).
pub fn with_retry_after(mut response: Response, seconds: u64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// `GET /static/style.css`, on both listeners.
pub async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
        .into_response()
}
