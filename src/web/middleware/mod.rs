//! What wraps every request before a handler sees it: security headers, request logging,
//! admission and budgets that keep the public listener up under a flood, deadlines for small
//! bodies, and the one way their refusals are shown.

pub mod admission;
pub mod budgets;
pub mod deadline;
pub mod headers;
pub mod logging;
pub mod refusals;

use axum::middleware::from_fn;

/// Applies the layers every router shares: the security headers (outermost, so that even a
/// refusal by an inner layer carries them) and request logging.
pub fn with_common_layers(router: axum::Router) -> axum::Router {
    router
        .layer(from_fn(logging::log_requests))
        .layer(from_fn(headers::security_headers))
}
