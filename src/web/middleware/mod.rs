//! What wraps every request before a handler sees it: security headers, request logging, and
//! the request budgets that keep the listeners up under a flood.

pub mod budgets;
pub mod headers;
pub mod logging;

use axum::middleware::from_fn;

/// Applies the layers every router shares: the security headers (outermost, so that even a
/// refusal by an inner layer carries them) and request logging.
pub fn with_common_layers(router: axum::Router) -> axum::Router {
    router
        .layer(from_fn(logging::log_requests))
        .layer(from_fn(headers::security_headers))
}
