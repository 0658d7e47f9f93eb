//! Cookies, read and written the one way tipbox uses them: `__Host-` names, `Secure`,
//! `HttpOnly`, `SameSite=Strict`, `Path=/`. Their values are random tokens (base64url or hex),
//! never anything a person typed.
//!
//! `Secure` cookies work over TLS, and in Tor Browser on an onion service (which it treats as a
//! secure context) — but not in Onion Browser on iOS (WKWebView) or other browsers behind
//! Orbot, which drop them over http, so a source on an iPhone could submit but never come back
//! with the receipt. So on a public listener without TLS — an onion service, whose connection
//! tor already encrypts and authenticates end to end — `sources_over_plain_http` sends the
//! same cookies without `Secure` and without the `__Host-` prefix (which requires `Secure`),
//! and reads them back under their `__Host-` names: handlers know one name per cookie. Over
//! TLS nothing changes. The analyst listener keeps `Secure` everywhere.
//!
//! Every cookie is a session cookie: no `Max-Age` or `Expires`, so a browser keeps it in
//! memory and forgets it when it closes. A persistent cookie would be written to the profile on
//! disk, and outside Tor Browser that profile then records visits to the tip line (on a phone
//! checked at a border). Sessions still end on the server as configured; a form's pairing token
//! carries its own end (`form_token`), checked here when the form comes back.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use crate::web::transport::Transport;

/// The prefix a cookie name loses over plain HTTP.
const HOST_PREFIX: &str = "__Host-";
/// tipbox's own cookie names, without the prefix, all start with this.
const OURS: &str = "tipbox_";

/// On a request over plain HTTP: its `tipbox_*` cookies renamed `__Host-tipbox_*` for the
/// handlers, and the `__Host-` cookies they set sent without the prefix and without `Secure`.
pub async fn sources_over_plain_http(mut request: Request, next: Next) -> Response {
    if request.extensions().get::<Transport>() != Some(&Transport::Plain) {
        return next.run(request).await;
    }
    let incoming: Vec<HeaderValue> = request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| {
            let renamed = value
                .to_str()
                .ok()?
                .split(';')
                .map(|pair| {
                    let pair = pair.trim();
                    if pair.starts_with(OURS) {
                        format!("{HOST_PREFIX}{pair}")
                    } else {
                        pair.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("; ");
            HeaderValue::from_str(&renamed).ok()
        })
        .collect();
    let headers = request.headers_mut();
    headers.remove(header::COOKIE);
    for value in incoming {
        headers.append(header::COOKIE, value);
    }
    let mut response = next.run(request).await;
    let outgoing: Vec<HeaderValue> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| {
            let value = value.to_str().ok()?;
            let plain = match value.strip_prefix(HOST_PREFIX) {
                Some(rest) => rest.replace("; Secure", ""),
                None => value.to_owned(),
            };
            HeaderValue::from_str(&plain).ok()
        })
        .collect();
    let headers = response.headers_mut();
    headers.remove(header::SET_COOKIE);
    for value in outgoing {
        headers.append(header::SET_COOKIE, value);
    }
    response
}

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

/// A `Set-Cookie` value for a session cookie: kept by the browser until it closes, or until
/// cleared (`clear_cookie`).
pub fn set_cookie(name: &str, value: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict"
    ))
    .expect("cookie values are base64url")
}

/// A `Set-Cookie` value that makes the browser forget the cookie `name` now.
pub fn clear_cookie(name: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"
    ))
    .expect("cookie names are plain")
}

/// A token that pairs a form with the browser that loaded it (sent both in the form and in a
/// session cookie), usable for `lifetime_seconds` from `now`: a random id and the time it stops
/// being usable, rounded up to the minute.
pub fn form_token(now: i64, lifetime_seconds: i64) -> String {
    let until = crate::clock::coarsen(now + lifetime_seconds, 60) + 60;
    format!("{}.{until}", crate::ids::random_id())
}

/// Whether a form came back with the token of the cookie `name` (compared in constant time),
/// before that token's end (`form_token`).
pub fn paired_form_token(headers: &HeaderMap, name: &str, submitted: &str, now: i64) -> bool {
    let Some(expected) = cookie(headers, name) else {
        return false;
    };
    let paired = expected.len() == submitted.len()
        && bool::from(expected.as_bytes().ct_eq(submitted.as_bytes()));
    let usable = expected
        .rsplit_once('.')
        .and_then(|(_, until)| until.parse::<i64>().ok())
        .is_some_and(|until| now < until);
    paired && usable
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(name: &str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{name}={value}")).unwrap(),
        );
        headers
    }

    #[test]
    fn cookies_are_session_cookies() {
        let set = set_cookie("__Host-x", "abc");
        let set = set.to_str().unwrap();
        assert!(!set.to_ascii_lowercase().contains("max-age"), "{set}");
        assert!(!set.to_ascii_lowercase().contains("expires"), "{set}");
        assert!(
            clear_cookie("__Host-x")
                .to_str()
                .unwrap()
                .ends_with("Max-Age=0")
        );
    }

    #[test]
    fn a_form_token_pairs_only_with_its_cookie_and_only_until_its_end() {
        let now = 1_800_000_000;
        let token = form_token(now, 600);
        let headers = with_cookie("__Host-f", &token);
        assert!(paired_form_token(&headers, "__Host-f", &token, now));
        assert!(paired_form_token(&headers, "__Host-f", &token, now + 599));
        assert!(!paired_form_token(&headers, "__Host-f", &token, now + 661));
        assert!(!paired_form_token(&headers, "__Host-g", &token, now));
        let other = form_token(now, 600);
        assert!(!paired_form_token(&headers, "__Host-f", &other, now));
        let no_end = crate::ids::random_id();
        let headers = with_cookie("__Host-f", &no_end);
        assert!(!paired_form_token(&headers, "__Host-f", &no_end, now));
    }
}
