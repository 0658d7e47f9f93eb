//! One shape for every refusal the layers make before a handler runs — over budget, server
//! full, a body too slow or too large, a request that cannot be read — and how each listener
//! shows it: a page in the visitor's language on the public listener, JSON on the analyst API,
//! a short text elsewhere on the analyst listener.
//!
//! A layer answers with `refusal(..)`, which marks the response; the listener's outermost
//! refusal layer renders marked responses. Nothing is stored by a refused request.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::web::shared::lang::PageLang;
use crate::web::shared::pages::message_page;

/// Set on a response refused by a layer, with what kind of refusal it is.
static REFUSED: HeaderName = HeaderName::from_static("x-tipbox-refused");

/// Why a layer refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The client is over its budget or holds its share of the server (`429`).
    Limited,
    /// The server is full, and this client has used more than others (`503`).
    Busy,
    /// The body did not arrive in time (`408`).
    TooSlow,
    /// The body is larger than the route accepts (`413`).
    TooLarge,
    /// The request could not be read (`400`): an empty or broken form, a bad token.
    Unreadable,
}

impl Refusal {
    fn status(self) -> StatusCode {
        match self {
            Refusal::Limited => StatusCode::TOO_MANY_REQUESTS,
            Refusal::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::TooSlow => StatusCode::REQUEST_TIMEOUT,
            Refusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::Unreadable => StatusCode::BAD_REQUEST,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Refusal::Limited => "limited",
            Refusal::Busy => "busy",
            Refusal::TooSlow => "too-slow",
            Refusal::TooLarge => "too-large",
            Refusal::Unreadable => "unreadable",
        }
    }

    fn from_name(name: &[u8]) -> Option<Self> {
        [
            Refusal::Limited,
            Refusal::Busy,
            Refusal::TooSlow,
            Refusal::TooLarge,
            Refusal::Unreadable,
        ]
        .into_iter()
        .find(|r| r.name().as_bytes() == name)
    }

    /// What the analyst listener says (in English, like the rest of the API's errors).
    fn text(self) -> &'static str {
        match self {
            Refusal::Limited => "too many requests; try again shortly",
            Refusal::Busy => "the server is busy; try again shortly",
            Refusal::TooSlow => "the request body did not arrive in time",
            Refusal::TooLarge => "the request body is too large",
            Refusal::Unreadable => "the request could not be read",
        }
    }
}

/// A marked refusal, to be rendered by the listener's refusal layer. `retry_after` seconds go
/// in `Retry-After` (429 and 503). Refusals that leave a connection in doubt (a body not read
/// to its end, a heavy client while the server is full) close it.
pub fn refusal(kind: Refusal, retry_after: Option<u64>) -> Response {
    let mut response = (kind.status(), kind.text()).into_response();
    let headers = response.headers_mut();
    headers.insert(REFUSED.clone(), HeaderValue::from_static(kind.name()));
    if let Some(seconds) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    }
    if matches!(kind, Refusal::TooSlow | Refusal::TooLarge | Refusal::Busy) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

fn marked(response: &Response) -> Option<Refusal> {
    Refusal::from_name(response.headers().get(&REFUSED)?.as_bytes())
}

/// Keeps `Retry-After` and `Connection` of the refusal on what replaces it.
fn carry_over(from: &Response, mut to: Response) -> Response {
    for name in [header::RETRY_AFTER, header::CONNECTION] {
        if let Some(value) = from.headers().get(&name) {
            to.headers_mut().insert(name, value.clone());
        }
    }
    to
}

/// The public listener: a marked refusal, or a bare error from an extractor (plain text, as
/// axum's rejections are), becomes a page in the visitor's language.
pub async fn public_pages(PageLang(lang): PageLang, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let kind = match marked(&response) {
        Some(kind) => kind,
        None if is_bare_client_error(&response) => Refusal::Unreadable,
        None => return response,
    };
    let (title, body) = match kind {
        Refusal::Limited => ("limited-title", "limited-body"),
        Refusal::Busy => ("busy-title", "error-busy"),
        Refusal::TooSlow => ("error-title", "error-too-slow"),
        Refusal::TooLarge | Refusal::Unreadable => ("error-title", "error-bad-request"),
    };
    let status = if marked(&response).is_some() {
        kind.status()
    } else {
        response.status()
    };
    let page = message_page(status, lang, title, vec![lang.t(body)], None);
    carry_over(&response, page)
}

/// The analyst listener: JSON under `/api/`, the short text elsewhere.
pub async fn analyst(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    let Some(kind) = marked(&response) else {
        return response;
    };
    if !api {
        let mut response = response;
        response.headers_mut().remove(&REFUSED);
        return response;
    }
    let json = axum::Json(crate::api::Error::new(kind.text()));
    carry_over(&response, (kind.status(), json).into_response())
}

/// A 4xx answer that no handler rendered: axum's extractor rejections are plain text.
fn is_bare_client_error(response: &Response) -> bool {
    response.status().is_client_error()
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_none_or(|v| v.as_bytes().starts_with(b"text/plain"))
}

/// An empty body with the refusal's status; for tests of the marking.
#[cfg(test)]
fn bare(status: StatusCode) -> Response {
    let mut response = Response::new(axum::body::Body::empty());
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_marked_and_read_back() {
        for kind in [
            Refusal::Limited,
            Refusal::Busy,
            Refusal::TooSlow,
            Refusal::TooLarge,
            Refusal::Unreadable,
        ] {
            let response = refusal(kind, Some(3));
            assert_eq!(marked(&response), Some(kind));
            assert_eq!(response.status(), kind.status());
        }
        assert!(is_bare_client_error(&bare(
            StatusCode::UNPROCESSABLE_ENTITY
        )));
        assert!(!is_bare_client_error(&bare(StatusCode::OK)));
    }
}
