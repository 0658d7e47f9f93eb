//! The error paths of the analyst listener: `ApiError` (JSON `{"error": "…"}` for `/api/v1`),
//! `DeskError` (the desk's pages: a short text, or back to sign-in), and `ActionError`, what
//! an action shared by both (triage, bulk changes, notes, replies, downloads) refuses with, which becomes
//! either. An internal failure is logged once, where it is turned into a response, and only a
//! generic message is shown.

use std::borrow::Cow;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

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
    /// A short text with a status.
    Refused {
        status: StatusCode,
        message: Cow<'static, str>,
        cause: Option<String>,
    },
}

impl DeskError {
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        DeskError::Refused {
            status,
            message: message.into(),
            cause: None,
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
        }
    }
}

impl IntoResponse for DeskError {
    fn into_response(self) -> Response {
        match self {
            DeskError::SignIn => Redirect::to("/login").into_response(),
            DeskError::Refused {
                status,
                message,
                cause,
            } => {
                if let Some(cause) = cause {
                    tracing::error!(error = %cause, "{message}");
                }
                (status, message.into_owned()).into_response()
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
        }
    }
}
