//! The one error path of the public listener: `PageError`, a page in the source's language
//! that says what went wrong, that nothing was stored when that is so, and where to go back to.
//! Handlers return `Result<Response, PageError>` and use `?`; an internal failure is logged
//! once, here, and never shown.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use zeroize::Zeroizing;

use super::followup::signin_page;
use super::pages::{Problem, Refill, submit_page};
use super::shown::FormKey;
use crate::i18n::Lang;
use crate::web::shared::pages::{message_page, with_retry_after};

/// Where a refusal's page links back to: a path and the key of the link's text.
#[derive(Debug, Clone, Copy)]
pub struct Back {
    pub path: &'static str,
    pub text: &'static str,
}

impl Back {
    pub const SUBMIT: Back = Back {
        path: "/submit",
        text: "error-back",
    };
    pub const SIGNIN: Back = Back {
        path: "/followup",
        text: "followup-back-signin",
    };
    pub const CASE: Back = Back {
        path: "/followup/case",
        text: "followup-back-case",
    };
}

/// Why a source's request was refused. Each maps to a status and a localized explanation;
/// the sizes are the limits in force, for the page to name.
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    Malformed,
    MessageMissing,
    InvalidUtf8,
    UnknownIncident,
    DetailTooLong,
    UnexpectedField,
    MessageTooLarge(u64),
    AttachmentTooLarge(u64),
    TotalTooLarge(u64),
    TooManyAttachments(u32),
    Paused,
    Busy,
    TooSlow,
    /// A reviewer key was revoked while the submission was being received.
    KeysChanged,
    /// Something failed on our side while receiving or storing.
    Internal,
    /// A follow-up without a live session or with a wrong form token.
    SessionEnded,
    /// A follow-up with neither text nor a file.
    NothingToAdd,
    /// The data directory is short of space: nothing is accepted until it is freed.
    DiskFull,
    /// A follow-up page (not an upload) failed on our side.
    FollowupFailed,
    /// The reply a source asked to delete is not there (any more).
    ReplyNotFound,
    /// A reply's deletion was asked without its box ticked.
    DeleteNotConfirmed,
}

impl Refusal {
    /// The status, the title's key and the explanation.
    fn page(self, lang: Lang) -> (StatusCode, &'static str, String) {
        use Refusal::*;
        let error = |key| (StatusCode::BAD_REQUEST, "error-title", lang.t(key));
        let too_large = |key, name, value| {
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                "error-too-large-title",
                lang.t_args(key, &[(name, value)]),
            )
        };
        match self {
            Paused => (
                StatusCode::SERVICE_UNAVAILABLE,
                "paused-title",
                lang.t("paused-body"),
            ),
            Malformed => error("error-bad-request"),
            MessageMissing => error("error-message-missing"),
            InvalidUtf8 => error("error-invalid-utf8"),
            UnknownIncident => error("error-unknown-incident"),
            DetailTooLong => error("error-field-too-long"),
            UnexpectedField => error("error-unexpected-field"),
            NothingToAdd => error("followup-nothing-to-add"),
            MessageTooLarge(limit) => {
                too_large("error-message-too-large", "size", lang.size(limit))
            }
            AttachmentTooLarge(limit) => {
                too_large("error-attachment-too-large", "size", lang.size(limit))
            }
            TotalTooLarge(limit) => too_large("error-total-too-large", "size", lang.size(limit)),
            TooManyAttachments(count) => {
                too_large("error-too-many-attachments", "count", lang.number(count))
            }
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
            FollowupFailed => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "error-title",
                lang.t("error-internal-followup"),
            ),
            ReplyNotFound => (
                StatusCode::NOT_FOUND,
                "error-title",
                lang.t("case-reply-not-found"),
            ),
            DeleteNotConfirmed => (
                StatusCode::BAD_REQUEST,
                "error-title",
                lang.t("case-reply-delete-unconfirmed"),
            ),
        }
    }

    /// Whether the page adds that nothing was stored: every refusal of something sent, but
    /// not a page that failed to show, a reply that is gone, or "paused" (which says so).
    fn about_something_sent(self) -> bool {
        !matches!(
            self,
            Refusal::FollowupFailed
                | Refusal::ReplyNotFound
                | Refusal::DeleteNotConfirmed
                | Refusal::Paused
        )
    }

    /// How long to wait before trying again, for refusals that end by themselves.
    fn retry_after(self, status: StatusCode) -> Option<u64> {
        match self {
            Refusal::Paused => Some(3600),
            _ if status == StatusCode::SERVICE_UNAVAILABLE => Some(60),
            _ => None,
        }
    }
}

/// What a public request gets instead of what it asked for.
#[derive(Debug)]
pub struct PageError {
    lang: Lang,
    kind: Kind,
    /// What failed inside, for the log: a short context and the error's text (never shown).
    cause: Option<(&'static str, String)>,
}

#[derive(Debug)]
enum Kind {
    /// A page that says what was refused, with a link back (none after a 5xx).
    Refused { refusal: Refusal, back: Back },
    /// The submission form again, with what was typed and what was refused.
    Form {
        refusal: Refusal,
        refill: Box<Refill>,
    },
    /// The receipt form again, saying what went wrong.
    SignIn {
        status: StatusCode,
        problem: String,
        /// What the source typed, shown again in the box (a mistyped receipt).
        receipt: Option<Zeroizing<String>>,
    },
}

impl PageError {
    pub fn refused(lang: Lang, refusal: Refusal, back: Back) -> Self {
        Self {
            lang,
            kind: Kind::Refused { refusal, back },
            cause: None,
        }
    }

    /// Something failed on our side: `context` and `cause` go to the log, the source sees
    /// `refusal`'s page.
    pub fn internal(
        lang: Lang,
        refusal: Refusal,
        back: Back,
        context: &'static str,
        cause: impl std::fmt::Display,
    ) -> Self {
        Self {
            cause: Some((context, cause.to_string())),
            ..Self::refused(lang, refusal, back)
        }
    }

    /// The receipt form again, with `problem` above it.
    pub fn signin(lang: Lang, status: StatusCode, problem: String) -> Self {
        Self {
            lang,
            kind: Kind::SignIn {
                status,
                problem,
                receipt: None,
            },
            cause: None,
        }
    }

    /// The receipt form again with `typed` in its box (a sign-in refusal only).
    pub fn with_receipt(mut self, typed: &str) -> Self {
        if let Kind::SignIn { receipt, .. } = &mut self.kind {
            *receipt = Some(Zeroizing::new(typed.to_owned()));
        }
        self
    }

    /// The submission form again instead of a page with a link back: what was typed is not
    /// lost (a refusal of a submission only).
    pub fn with_form(mut self, refill: Refill) -> Self {
        if let Kind::Refused { refusal, .. } = self.kind {
            self.kind = Kind::Form {
                refusal,
                refill: Box::new(refill),
            };
        }
        self
    }

    /// The same page, with a cause for the log.
    pub fn because(mut self, context: &'static str, cause: impl std::fmt::Display) -> Self {
        self.cause = Some((context, cause.to_string()));
        self
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if let Some((context, cause)) = &self.cause {
            tracing::error!(error = %cause, "{context}");
        }
        let lang = self.lang;
        let (refusal, back) = match self.kind {
            Kind::SignIn {
                status,
                problem,
                receipt,
            } => {
                let page = signin_page(
                    status,
                    lang,
                    Some(problem),
                    receipt.as_deref().map(|r| r.as_str()),
                );
                return match status {
                    StatusCode::SERVICE_UNAVAILABLE => with_retry_after(page, 60),
                    _ => page,
                };
            }
            Kind::Refused { refusal, back } => (refusal, back),
            Kind::Form { refusal, refill } => {
                let (status, title, text) = refusal.page(lang);
                let mut problems = vec![text];
                let nothing = lang.t("error-nothing-stored");
                if refusal.about_something_sent() && !problems[0].contains(&nothing) {
                    problems.push(nothing);
                }
                if let Some(name) = &refill.refused_file {
                    problems.push(lang.t_args("submit-refill-file", &[("name", name.clone())]));
                }
                problems.push(lang.t("submit-refill-note"));
                let problem = Problem {
                    title: lang.t(title),
                    lines: problems,
                };
                let page = submit_page(status, lang, &FormKey::generate(), &refill, Some(&problem));
                return match refusal.retry_after(status) {
                    Some(seconds) => with_retry_after(page, seconds),
                    None => page,
                };
            }
        };
        let (status, title, text) = refusal.page(lang);
        let mut lines = vec![text];
        let nothing = lang.t("error-nothing-stored");
        if refusal.about_something_sent() && !lines[0].contains(&nothing) {
            lines.push(nothing);
        }
        let show_back = match refusal {
            Refusal::ReplyNotFound | Refusal::DeleteNotConfirmed => true,
            Refusal::Paused => false,
            _ => !matches!(
                status,
                StatusCode::INTERNAL_SERVER_ERROR | StatusCode::SERVICE_UNAVAILABLE
            ),
        };
        let page = message_page(
            status,
            lang,
            title,
            lines,
            show_back.then_some((back.path, back.text)),
        );
        match refusal.retry_after(status) {
            Some(seconds) => with_retry_after(page, seconds),
            None => page,
        }
    }
}
