//! An analyst's own account on the desk: changing one's password (`/account/password`), with
//! the current password and a TOTP code, under the same back-off as signing in.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::auth::signin::SignInError;
use crate::auth::{MIN_PASSWORD_CHARS, check_new_password, generate_password};
use crate::clock::now;
use crate::web::analyst::AnalystState;
use crate::web::analyst::error::DeskError;
use crate::web::analyst::extract::{CsrfForm, DeskForm, DeskSession};
use crate::web::shared::pages::render;

#[derive(Template)]
#[template(path = "analyst/password.html")]
struct PasswordPage {
    signed_in: Option<String>,
    csrf: String,
    min_chars: usize,
    /// A generated password the analyst may take (as strong as `analyst add`'s); never stored.
    suggestion: Zeroizing<String>,
    problem: Option<String>,
    /// What the change that sent the analyst here did.
    done: Option<String>,
}

fn password_page(
    app: &AnalystState,
    session: &DeskSession,
    status: StatusCode,
    problem: Option<String>,
    done: Option<String>,
) -> Response {
    render(
        status,
        &PasswordPage {
            signed_in: Some(session.analyst.username.clone()),
            csrf: session.csrf(&app.auth).to_string(),
            min_chars: MIN_PASSWORD_CHARS,
            suggestion: generate_password(),
            problem,
            done,
        },
    )
}

#[derive(Deserialize)]
pub struct Changed {
    /// How many other sessions the change ended.
    changed: Option<u64>,
}

/// `GET /account/password`: the form (and, after a change, what it did).
pub async fn show(
    State(app): State<AnalystState>,
    session: DeskSession,
    Query(changed): Query<Changed>,
) -> Response {
    let done = changed.changed.map(|ended| {
        let sessions = match ended {
            0 => "You had no other sessions.".to_owned(),
            1 => "Your 1 other session (another browser or `tipbox review login`) was signed out."
                .to_owned(),
            n => format!(
                "Your {n} other sessions (other browsers or `tipbox review login`) were signed out."
            ),
        };
        format!("Your password was changed. Use the new one from now on. {sessions}")
    });
    password_page(&app, &session, StatusCode::OK, None, done)
}

/// The form. Every field but the token may be missing (and is then empty), so that a form
/// without its token is refused for that (by `DeskForm`) whatever else it lacks.
#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    #[serde(default)]
    current_password: Zeroizing<String>,
    #[serde(default)]
    new_password: Zeroizing<String>,
    #[serde(default)]
    new_password_again: Zeroizing<String>,
    #[serde(default)]
    totp: String,
}

impl CsrfForm for PasswordForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /account/password`: changes the password, ends the analyst's other sessions, and
/// goes back to the page saying so; or the form again saying what was wrong.
pub async fn change(
    State(app): State<AnalystState>,
    DeskForm { session, form }: DeskForm<PasswordForm>,
) -> Result<Response, DeskError> {
    let again = |status: StatusCode, problem: String| {
        Ok(password_page(&app, &session, status, Some(problem), None))
    };
    if *form.new_password != *form.new_password_again {
        return again(
            StatusCode::BAD_REQUEST,
            "The new password and its repetition differ: type the same new password twice."
                .to_owned(),
        );
    }
    if let Err(problem) = check_new_password(&form.new_password, &session.analyst.username) {
        return again(StatusCode::BAD_REQUEST, problem);
    }
    if *form.new_password == *form.current_password {
        return again(
            StatusCode::BAD_REQUEST,
            "The new password is your current one: choose another.".to_owned(),
        );
    }
    let changed = app
        .auth
        .change_password(
            &session.analyst,
            session.token(),
            form.current_password,
            &form.totp,
            form.new_password,
            now(),
        )
        .await;
    match changed {
        Ok(ended) => {
            Ok(Redirect::to(&format!("/account/password?changed={ended}")).into_response())
        }
        Err(SignInError::Invalid) => again(
            StatusCode::FORBIDDEN,
            "Wrong current password or code; nothing was changed. (Each code works once: wait \
             for the next. Repeated failures pause sign-ins to your account, as wrong sign-ins do.)"
                .to_owned(),
        ),
        Err(SignInError::Busy) => again(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many sign-ins at once; nothing was changed. Please try again in a moment."
                .to_owned(),
        ),
        Err(SignInError::Internal(error)) => Err(DeskError::internal(
            "the password could not be changed",
            error,
        )
        .back_to("/account/password".to_owned(), "Back to the form")),
    }
}
