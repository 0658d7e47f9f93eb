//! An absolute deadline for small request bodies, on both listeners.
//!
//! `tower_http`'s body timeout restarts with every frame, so a form trickled one byte every
//! few seconds held its connection for as long as the client liked. Here the whole body must
//! arrive within `limits.body_timeout_seconds` of the handler being reached (the head has its
//! own deadline in the transport), and no larger than the route accepts; it is read before the
//! handler runs, so a slow body never holds anything but its own connection. Uploads are not
//! under this layer: they stream, watched for their rate over a sliding window
//! (`transport::body`).

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::refusals::{Refusal, refusal};

/// How long a small body may take, and how large it may be.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline {
    pub within: Duration,
    pub max_bytes: usize,
}

impl BodyDeadline {
    pub fn new(limits: &crate::config::Limits, max_bytes: usize) -> Self {
        Self {
            within: Duration::from_secs(limits.body_timeout_seconds),
            max_bytes,
        }
    }
}

/// Reads the request's body whole, within the deadline, then runs the handler on it.
pub async fn whole_body(
    State(deadline): State<BodyDeadline>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let read = axum::body::to_bytes(body, deadline.max_bytes);
    match tokio::time::timeout(deadline.within, read).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(error)) if is_too_large(&error) => refusal(Refusal::TooLarge, None),
        // The client went away or sent a broken body.
        Ok(Err(_)) => refusal(Refusal::Unreadable, None),
        Err(_) => refusal(Refusal::TooSlow, None),
    }
}

fn is_too_large(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = error.source();
    }
    false
}
