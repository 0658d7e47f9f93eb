//! Cookies, read and written the one way tipbox uses them: `__Host-` names, `Secure`,
//! `HttpOnly`, `SameSite=Strict`, `Path=/` (`Secure` cookies work over TLS, on onion services
//! and on localhost). Their values are random tokens (base64url or hex), never anything a
//! person typed.

use axum::http::{HeaderMap, HeaderValue, header};

/// The value of the cookie `name` in a request, if it has one.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value; `max_age` 0 with an empty value clears the cookie.
pub fn set_cookie(name: &str, value: &str, max_age: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}"
    ))
    .expect("cookie values are base64url")
}
