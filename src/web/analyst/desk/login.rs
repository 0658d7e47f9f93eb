//! Signing in to the desk (password and TOTP), and out.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::auth::signin::SignInError;
use crate::clock::now;
use crate::web::analyst::AnalystState;
use crate::web::analyst::extract::{CsrfForm, DeskForm, DeskSession, SESSION_COOKIE};
use crate::web::shared::cookies::{clear_cookie, form_token, paired_form_token, set_cookie};
use crate::web::shared::pages::render;

/// Pairs the sign-in form with the browser that loaded it.
const LOGIN_COOKIE: &str = "__Host-tipbox_login";
/// How long a loaded sign-in form stays usable.
const LOGIN_FORM_SECONDS: i64 = 600;

#[derive(Template)]
#[template(path = "analyst/login.html")]
struct LoginPage {
    signed_in: Option<String>,
    csrf: String,
    problem: Option<&'static str>,
}

fn login_page(status: StatusCode, problem: Option<&'static str>) -> Response {
    let token = form_token(now(), LOGIN_FORM_SECONDS);
    let mut response = render(
        status,
        &LoginPage {
            signed_in: None,
            csrf: token.clone(),
            problem,
        },
    );
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, &token));
    response
}

/// `GET /`: the queue when signed in, the sign-in page otherwise.
pub async fn home(State(app): State<AnalystState>, headers: HeaderMap) -> Response {
    match DeskSession::of(&app, &headers).await {
        Some(_) => Redirect::to("/queue").into_response(),
        None => Redirect::to("/login").into_response(),
    }
}

/// `GET /login`.
pub async fn show() -> Response {
    login_page(StatusCode::OK, None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    csrf: String,
    username: String,
    password: Zeroizing<String>,
    totp: String,
}

/// `POST /login`: a session cookie and the queue, or the form again saying what went wrong.
pub async fn submit(
    State(app): State<AnalystState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if !paired_form_token(&headers, LOGIN_COOKIE, &form.csrf, now()) {
        return login_page(
            StatusCode::FORBIDDEN,
            Some("The sign-in form expired. Please try again."),
        );
    }
    let now = now();
    let analyst = match app
        .auth
        .sign_in(&form.username, form.password, &form.totp, now)
        .await
    {
        Ok(analyst) => analyst,
        Err(SignInError::Busy) => {
            return login_page(
                StatusCode::SERVICE_UNAVAILABLE,
                Some("Too many sign-ins at once. Please try again in a moment."),
            );
        }
        Err(SignInError::Invalid) => {
            return login_page(
                StatusCode::UNAUTHORIZED,
                Some(
                    "Wrong user name, password or code. (Each code works once: wait for the next.)",
                ),
            );
        }
        Err(SignInError::Internal(error)) => {
            tracing::error!(%error, "sign-in failed");
            return login_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some("Sign-in failed on the server."),
            );
        }
    };
    match app.auth.start_session(&analyst, "web", now).await {
        Ok(session) => {
            let mut response = Redirect::to("/queue").into_response();
            let headers = response.headers_mut();
            headers.append(
                header::SET_COOKIE,
                set_cookie(SESSION_COOKIE, &session.token),
            );
            headers.append(header::SET_COOKIE, clear_cookie(LOGIN_COOKIE));
            response
        }
        Err(error) => {
            tracing::error!(%error, "could not start a session");
            login_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some("Sign-in failed on the server."),
            )
        }
    }
}

/// A form that carries nothing but its CSRF token.
#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

impl CsrfForm for CsrfOnly {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /logout`: ends the session and clears the browser.
pub async fn logout(State(app): State<AnalystState>, desk: DeskForm<CsrfOnly>) -> Response {
    let session = desk.session;
    if let Err(error) = app
        .auth
        .end_session(session.token(), &session.analyst, now())
        .await
    {
        tracing::error!(%error, "could not end a session");
    }
    let mut response = Redirect::to("/login").into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, clear_cookie(SESSION_COOKIE));
    headers.insert(
        "clear-site-data",
        HeaderValue::from_static("\"cookies\", \"storage\""),
    );
    response
}
