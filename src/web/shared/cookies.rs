//! Cookies, read and written the one way tipbox uses them: `__Host-` names, `Secure`,
//! `HttpOnly`, `SameSite=Strict`, `Path=/` (`Secure` cookies work over TLS, on onion services
//! and on localhost). Their values are random tokens (base64url or hex), never anything a
//! person typed.
//!
//! Every cookie is a session cookie: no `Max-Age` or `Expires`, so a browser keeps it in
//! memory and forgets it when it closes. A persistent cookie would be written to the profile on
//! disk, and outside Tor Browser that profile then records visits to the tip line (on a phone
//! checked at a border). Sessions still end on the server as configured; a form's pairing token
//! carries its own end (`form_token`), checked here when the form comes back.

use axum::http::{HeaderMap, HeaderValue, header};
use subtle::ConstantTimeEq;

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
