//! The error paths of the analyst listener: `ApiError` (JSON `{"error": "…"}` for `/api/v1`),
//! `DeskError` (the desk's error page, with a link back; or back to sign-in), and `ActionError`, what
//! an action shared by both (triage, bulk changes, notes, replies, downloads) refuses with, which becomes
//! either. An internal failure is logged once, where it is turned into a response, and only a
//! generic message is shown.

use std::borrow::Cow;

use askama::Template;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::web::shared::pages::render;

/// A refusal of an `/api/v1` request.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: Cow<'static, str>,
    /// What failed inside, for the log (never sent).
    cause: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            message: message.into(),
            cause: None,
        }
    }

    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: &'static str) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "sign in first")
    }

    pub fn admins_only() -> Self {
        Self::new(StatusCode::FORBIDDEN, "admins only")
    }

    /// A failure on our side: `message` is sent (and logged), `cause` is only logged.
    pub fn internal(message: &'static str, cause: impl std::fmt::Display) -> Self {
        Self {
            cause: Some(cause.to_string()),
            ..Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(cause) = &self.cause {
            tracing::error!(error = %cause, "{}", self.message);
        }
        (self.status, Json(crate::api::Error::new(self.message))).into_response()
    }
}

/// `ApiError::internal("internal error", cause)` for any error: `.map_err(internal)?`.
pub fn internal(cause: impl std::fmt::Display) -> ApiError {
    ApiError::internal("internal error", cause)
}

/// A refusal of a desk page or form.
#[derive(Debug)]
pub enum DeskError {
    /// Not signed in (or the session ended): to the sign-in page.
    SignIn,
    /// The desk's error page: what went wrong, with a status, and a link back.
    Refused {
        status: StatusCode,
        message: Cow<'static, str>,
        cause: Option<String>,
        /// Where the link back goes (the queue unless set with `back_to`).
        back: Option<Back>,
    },
}

/// A link back from the error page: its address and its text.
#[derive(Debug)]
pub struct Back {
    pub href: String,
    pub text: &'static str,
}

impl DeskError {
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        DeskError::Refused {
            status,
            message: message.into(),
            cause: None,
            back: None,
        }
    }

    pub fn forbidden(message: &'static str) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// A failure on our side: `message` is shown, `cause` only logged.
    pub fn internal(message: &'static str, cause: impl std::fmt::Display) -> Self {
        DeskError::Refused {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
            cause: Some(cause.to_string()),
            back: None,
        }
    }

    /// The error page links to `href` ("Back to the tip"), rather than to the queue.
    pub fn back_to(self, href: String, text: &'static str) -> Self {
        match self {
            DeskError::Refused {
                status,
                message,
                cause,
                ..
            } => DeskError::Refused {
                status,
                message,
                cause,
                back: Some(Back { href, text }),
            },
            DeskError::SignIn => DeskError::SignIn,
        }
    }
}

/// The desk's error page. It names no analyst: a refusal may come before the session is known.
#[derive(Template)]
#[template(path = "analyst/error.html")]
struct ErrorPage {
    signed_in: Option<String>,
    csrf: String,
    heading: &'static str,
    message: String,
    back: Back,
}

/// The error page's heading for a status.
fn heading(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::SERVICE_UNAVAILABLE => "Not now",
        s if s.is_server_error() => "Something went wrong",
        _ => "That cannot be done",
    }
}

/// A message as a sentence: capitalized, with a full stop.
fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut text: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !text.ends_with(['.', '?', '!', ')']) {
        text.push('.');
    }
    text
}

impl IntoResponse for DeskError {
    fn into_response(self) -> Response {
        match self {
            DeskError::SignIn => Redirect::to("/login").into_response(),
            DeskError::Refused {
                status,
                message,
                cause,
                back,
            } => {
                if let Some(cause) = cause {
                    tracing::error!(error = %cause, "{message}");
                }
                render(
                    status,
                    &ErrorPage {
                        signed_in: None,
                        csrf: String::new(),
                        heading: heading(status),
                        message: sentence(&message),
                        back: back.unwrap_or_else(|| Back {
                            href: "/queue".to_owned(),
                            text: "Back to the queue",
                        }),
                    },
                )
            }
        }
    }
}

/// Why an action that both the desk and the API offer was refused.
#[derive(Debug)]
pub enum ActionError {
    /// No such tip or item (the text says which).
    NotFound(&'static str),
    /// Not for this analyst's role (the text says whose it is).
    Forbidden(&'static str),
    /// The request itself is wrong; the text says how.
    Invalid(Cow<'static, str>),
    /// It cannot be done now (no usable key; keys changed meanwhile): try again later.
    Unavailable(String),
    /// A failure on our side.
    Internal(String),
}

impl ActionError {
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ActionError::Internal(cause.to_string())
    }
}

impl From<crate::store::StoreError> for ActionError {
    fn from(error: crate::store::StoreError) -> Self {
        ActionError::internal(error)
    }
}

impl ActionError {
    fn parts(self) -> (StatusCode, Cow<'static, str>, Option<String>) {
        match self {
            ActionError::NotFound(what) => (StatusCode::NOT_FOUND, what.into(), None),
            ActionError::Forbidden(whose) => (StatusCode::FORBIDDEN, whose.into(), None),
            ActionError::Invalid(why) => (StatusCode::BAD_REQUEST, why, None),
            ActionError::Unavailable(why) => (StatusCode::SERVICE_UNAVAILABLE, why.into(), None),
            ActionError::Internal(cause) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error".into(),
                Some(cause),
            ),
        }
    }
}

impl From<ActionError> for ApiError {
    fn from(error: ActionError) -> Self {
        let (status, message, cause) = error.parts();
        ApiError {
            status,
            message,
            cause,
        }
    }
}

impl From<ActionError> for DeskError {
    fn from(error: ActionError) -> Self {
        let (status, message, cause) = error.parts();
        DeskError::Refused {
            status,
            message,
            cause,
            back: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_sentences() {
        assert_eq!(
            sentence("no such analyst to assign"),
            "No such analyst to assign."
        );
        assert_eq!(sentence("Try again."), "Try again.");
        assert_eq!(sentence(""), "");
    }
}
