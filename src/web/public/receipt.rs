//! The receipt page, which must not lose the receipt: shown once with "write it down now",
//! shown again in another language or after a Reload (from `shown`, by the form's key, never by
//! anything in a URL), and closed by typing its last word back.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::PublicState;
use super::shown::{Check, FormKey, Lookup};
use crate::i18n::Lang;
use crate::web::shared::pages::{Chrome, message_page, render};

#[derive(Template)]
#[template(path = "receipt.html")]
struct ReceiptPage<'a> {
    chrome: Chrome,
    receipt: &'a str,
    form_key: &'a str,
    /// The word typed back was not the last one.
    wrong: bool,
}

/// The receipt page for the form with `form_key`.
pub fn receipt_page(lang: Lang, receipt: &str, form_key: &FormKey, wrong: bool) -> Response {
    render(
        StatusCode::OK,
        &ReceiptPage {
            chrome: Chrome {
                lang,
                path: "/submit",
            },
            receipt,
            form_key: form_key.as_str(),
            wrong,
        },
    )
}

/// Why the receipt is not shown.
#[derive(Clone, Copy)]
pub struct Gone {
    /// The same form was sent again (a Reload, a second click).
    pub resent: bool,
    /// The source typed its last word back.
    pub written_down: bool,
}

/// "The receipt is not shown again": what happened to the report, and what to do next.
pub fn gone_page(lang: Lang, gone: Gone) -> Response {
    let mut lines = Vec::new();
    if gone.resent {
        lines.push(lang.t("receipt-already-sent"));
    }
    lines.push(lang.t("receipt-gone-body"));
    if !gone.written_down {
        lines.push(lang.t("receipt-gone-lost"));
    }
    message_page(
        StatusCode::OK,
        lang,
        "receipt-gone-title",
        lines,
        Some(("/followup", "receipt-followup")),
    )
}

/// What a form kept for an earlier submission shows when it is sent again: the same receipt
/// while it is kept, or why it is not.
pub fn shown_again(app: &PublicState, key: &FormKey, lang: Lang, resent: bool) -> Option<Response> {
    match app.shown.lookup(&key.hash(), lang) {
        Lookup::Receipt(words) => Some(receipt_page(lang, &words, key, false)),
        Lookup::WrittenDown => Some(gone_page(
            lang,
            Gone {
                resent,
                written_down: true,
            },
        )),
        Lookup::Unknown => None,
    }
}

#[derive(Deserialize)]
pub struct SwitchForm {
    form_key: String,
    lang: String,
}

/// `POST /receipt`: the receipt page again, in the language asked for.
pub async fn show_again(State(app): State<PublicState>, Form(form): Form<SwitchForm>) -> Response {
    let lang = Lang::from_tag(&form.lang).unwrap_or(Lang::En);
    FormKey::parse(&form.form_key)
        .and_then(|key| shown_again(&app, &key, lang, false))
        .unwrap_or_else(|| {
            gone_page(
                lang,
                Gone {
                    resent: false,
                    written_down: false,
                },
            )
        })
}

#[derive(Deserialize)]
pub struct CheckForm {
    form_key: String,
    lang: String,
    last_word: Zeroizing<String>,
}

/// `POST /receipt/check`: the last word typed back. Right: the receipt is forgotten here, and
/// the page says where to come back. Wrong: the receipt again, with what to compare.
pub async fn check(State(app): State<PublicState>, Form(form): Form<CheckForm>) -> Response {
    let lang = Lang::from_tag(&form.lang).unwrap_or(Lang::En);
    let gone = |written_down| {
        gone_page(
            lang,
            Gone {
                resent: false,
                written_down,
            },
        )
    };
    let Some(key) = FormKey::parse(&form.form_key) else {
        return gone(false);
    };
    match app
        .shown
        .check_last_word(&key.hash(), &form.last_word, lang)
    {
        Check::Right | Check::WrittenDown => message_page(
            StatusCode::OK,
            lang,
            "receipt-done-title",
            vec![lang.t("receipt-done-body")],
            Some(("/followup", "receipt-followup")),
        ),
        Check::Wrong(words) => receipt_page(lang, &words, &key, true),
        Check::Unknown => gone(false),
    }
}
