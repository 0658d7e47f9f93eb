//! Security headers on every response of both listeners, and `Onion-Location` on the public
//! one when it is reached by a clearnet name.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::web::transport::Transport;

/// The Content-Security-Policy of every page: nothing but our own stylesheet and images, no
/// script at all, forms post only to us, and no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `Strict-Transport-Security` on responses served over TLS: two years, and no
/// `includeSubDomains` (other sites of the operator's domain are not ours to pin to HTTPS).
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=63072000";

/// Adds the security headers to every response, on both listeners; over TLS, HSTS as well.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let over_tls = request.extensions().get::<Transport>() == Some(&Transport::Tls);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        CONTENT_SECURITY_POLICY,
    );
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::CACHE_CONTROL, "no-store");
    set(
        headers,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        headers,
        HeaderName::from_static("cross-origin-embedder-policy"),
        "require-corp",
    );
    set(
        headers,
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    set(
        headers,
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    );
    if over_tls {
        set(
            headers,
            header::STRICT_TRANSPORT_SECURITY,
            STRICT_TRANSPORT_SECURITY,
        );
    }
    headers.remove(header::SERVER);
    response
}

/// `Onion-Location: http://<onion address><path>` on public responses to requests for a name
/// that is not an onion address (a clearnet site, with TLS in tipbox or in a proxy in front), so
/// that Tor Browser offers the onion service. Requests that came through the onion service
/// (`Host: ….onion`) do not get it.
pub async fn onion_location(
    axum::extract::State(onion): axum::extract::State<Arc<str>>,
    request: Request,
    next: Next,
) -> Response {
    let location = (!requested_onion(&request)).then(|| {
        let path = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .filter(|p| p.starts_with('/'))
            .unwrap_or("/");
        format!("http://{onion}{path}")
    });
    let mut response = next.run(request).await;
    if let Some(value) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("onion-location"), value);
    }
    response
}

/// Whether the request names an onion address: the URI's authority (HTTP/2) or `Host`.
fn requested_onion(request: &Request) -> bool {
    let host = match request.uri().host() {
        Some(host) => host,
        None => match request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
        {
            // An onion name has no brackets or colons: dropping a port is enough.
            Some(host) => host.rsplit_once(':').map_or(host, |(name, _)| name),
            None => return false,
        },
    };
    host.trim_end_matches('.')
        .to_ascii_lowercase()
        .ends_with(".onion")
}
