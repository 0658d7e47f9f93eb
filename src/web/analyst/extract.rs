//! Who is asking, on the analyst listener: an API session (bearer token), or a desk session
//! (a `__Host-` cookie), and for the desk's forms the CSRF token checked with it. A handler
//! that takes one of these cannot run for anyone else.

use axum::Form;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use super::AnalystState;
use super::error::{ApiError, DeskError};
use crate::auth::signin::{Analyst, Authenticator};
use crate::clock::now;
use crate::web::shared::cookies::cookie;

/// The cookie of a desk session.
pub const SESSION_COOKIE: &str = "__Host-tipbox_session";

/// The bearer token of an API request, if it carries a plausible one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 128)
}

/// A live API session: the analyst, the token, and when the session ends.
pub struct ApiSession {
    pub analyst: Analyst,
    pub token: Zeroizing<String>,
    pub expires_at: i64,
}

impl FromRequestParts<AnalystState> for ApiSession {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AnalystState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        match app.auth.session(token, "api", now()).await {
            Ok(Some((analyst, _, expires_at))) => Ok(ApiSession {
                analyst,
                token: Zeroizing::new(token.to_owned()),
                expires_at,
            }),
            Ok(None) => Err(ApiError::unauthorized()),
            Err(error) => Err(ApiError::internal("session lookup failed", error)),
        }
    }
}

/// An API request from a signed-in analyst (bearer token of a live session).
pub struct ApiAnalyst(pub Analyst);

impl FromRequestParts<AnalystState> for ApiAnalyst {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AnalystState,
    ) -> Result<Self, Self::Rejection> {
        let session = ApiSession::from_request_parts(parts, app).await?;
        Ok(ApiAnalyst(session.analyst))
    }
}

/// An API request from a signed-in admin.
pub struct ApiAdmin(pub Analyst);

impl FromRequestParts<AnalystState> for ApiAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AnalystState,
    ) -> Result<Self, Self::Rejection> {
        let ApiAnalyst(analyst) = ApiAnalyst::from_request_parts(parts, app).await?;
        if analyst.role != crate::auth::Role::Admin {
            return Err(ApiError::admins_only());
        }
        Ok(ApiAdmin(analyst))
    }
}

/// A signed-in analyst in the browser. As an extractor it sends anyone else to sign-in.
pub struct DeskSession {
    pub analyst: Analyst,
    token: Zeroizing<String>,
    csrf_hash: Vec<u8>,
}

impl DeskSession {
    /// The desk session a request's cookie names, if it is live. A failed lookup is logged
    /// and counts as no session.
    pub async fn of(app: &AnalystState, headers: &HeaderMap) -> Option<Self> {
        let token = cookie(headers, SESSION_COOKIE)?;
        match app.auth.session(token, "web", now()).await {
            Ok(Some((analyst, csrf_hash, _))) => Some(DeskSession {
                analyst,
                token: Zeroizing::new(token.to_owned()),
                csrf_hash,
            }),
            Ok(None) => None,
            Err(error) => {
                tracing::error!(%error, "could not read a session");
                None
            }
        }
    }

    /// The token every form of this session carries.
    pub fn csrf(&self, auth: &Authenticator) -> Zeroizing<String> {
        auth.csrf_token(&self.token)
    }

    fn check_csrf(&self, submitted: &str) -> bool {
        Authenticator::csrf_matches(submitted, &self.csrf_hash)
    }

    /// The session's token (to end it).
    pub fn token(&self) -> &str {
        &self.token
    }
}

impl FromRequestParts<AnalystState> for DeskSession {
    type Rejection = DeskError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AnalystState,
    ) -> Result<Self, Self::Rejection> {
        DeskSession::of(app, &parts.headers)
            .await
            .ok_or(DeskError::SignIn)
    }
}

/// A desk form that carries its session's CSRF token.
pub trait CsrfForm {
    fn csrf(&self) -> &str;
}

/// A form posted from a desk page by its signed-in analyst, with the session's CSRF token
/// checked. Refused: a form that does not parse (as axum refuses it), then no session, then a
/// wrong token (403 each).
pub struct DeskForm<T> {
    pub session: DeskSession,
    pub form: T,
}

impl<T> FromRequest<AnalystState> for DeskForm<T>
where
    T: DeserializeOwned + CsrfForm + Send,
{
    type Rejection = Response;

    async fn from_request(request: Request, app: &AnalystState) -> Result<Self, Self::Rejection> {
        let headers = request.headers().clone();
        let Form(form) = Form::<T>::from_request(request, app)
            .await
            .map_err(IntoResponse::into_response)?;
        let session = DeskSession::of(app, &headers)
            .await
            .ok_or_else(|| DeskError::forbidden("not signed in").into_response())?;
        if !session.check_csrf(form.csrf()) {
            return Err(DeskError::forbidden("bad CSRF token").into_response());
        }
        Ok(DeskForm { session, form })
    }
}
