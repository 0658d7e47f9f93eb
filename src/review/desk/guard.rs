//! Who may drive the local desk: only the analyst who started it, from its own address.
//!
//! The desk listens on loopback, where every local user and every web page the analyst's
//! browser has open can reach it. So:
//! - **A one-time code**, printed by `review desk` on the analyst's terminal, typed once into
//!   the desk's first page (never in a URL, where browser history and screenshots keep it) and
//!   exchanged for a session cookie (`HttpOnly`, `SameSite=Strict`). The code then stops
//!   working: a second browser, or another local user who read the terminal later, gets nothing.
//! - **Its own Host and Origin only**: a request whose `Host` is not `127.0.0.1:<port>` or
//!   `localhost:<port>` is refused (DNS rebinding: a page on `evil.example` resolving to
//!   127.0.0.1), and so is any request with a foreign `Origin`, and any form post without one.
//! - **A CSRF token** in every form, compared in constant time.
//! - The strict headers of the server's own pages: a CSP that allows no script, no framing, no
//!   referrer, and no caching of anything (what it shows is decrypted).

use std::sync::Mutex;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

pub const COOKIE: &str = "tipbox_desk";

/// The paths a visitor without the session may see: the code's form, and the stylesheet.
const OPEN_PATHS: [&str; 3] = ["/", "/unlock", "/style.css"];

pub struct Guard {
    /// `127.0.0.1:<port>` and `localhost:<port>`.
    hosts: [String; 2],
    /// The one-time code, until it is used.
    code: Mutex<Option<Zeroizing<String>>>,
    /// The session's token, once the code was typed.
    session: Mutex<Option<Zeroizing<String>>>,
    csrf: Zeroizing<String>,
}

fn random(bytes: usize) -> Zeroizing<String> {
    let mut raw = Zeroizing::new(vec![0u8; bytes]);
    getrandom::fill(&mut raw).expect("the operating system's random source works");
    Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw[..]))
}

fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

impl Guard {
    pub fn new(port: u16) -> Self {
        // 20 characters from an alphabet without look-alikes (about 100 bits): easy to copy
        // from a terminal, impossible to guess.
        let alphabet = b"abcdefghijkmnpqrstuvwxyz23456789";
        let mut raw = [0u8; 20];
        getrandom::fill(&mut raw).expect("the operating system's random source works");
        let code: String = raw
            .iter()
            .map(|b| alphabet[(*b as usize) % alphabet.len()] as char)
            .collect();
        Self {
            hosts: [format!("127.0.0.1:{port}"), format!("localhost:{port}")],
            code: Mutex::new(Some(Zeroizing::new(code))),
            session: Mutex::new(None),
            csrf: random(32),
        }
    }

    /// The one-time code, to print (`None` once used).
    pub fn code(&self) -> Option<Zeroizing<String>> {
        self.code.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    pub fn csrf_ok(&self, token: &str) -> bool {
        same(token, &self.csrf)
    }

    /// Exchanges the code for a session's token, once. Spaces and dashes typed in are ignored.
    pub fn unlock(&self, typed: &str) -> Option<Zeroizing<String>> {
        let typed: String = typed
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect::<String>()
            .to_lowercase();
        let mut code = self.code.lock().unwrap_or_else(|p| p.into_inner());
        if !code.as_deref().is_some_and(|c| same(c, &typed)) {
            return None;
        }
        *code = None;
        let token = random(32);
        *self.session.lock().unwrap_or_else(|p| p.into_inner()) = Some(token.clone());
        Some(token)
    }

    pub fn has_session(&self, headers: &HeaderMap) -> bool {
        let session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let Some(token) = session.as_deref() else {
            return false;
        };
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .any(|(name, value)| name == COOKIE && same(value, token))
    }

    fn own_host(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|host| self.hosts.iter().any(|h| h == host))
    }

    /// No `Origin`, or this desk's own (`http://` + one of its hosts).
    fn origin(&self, headers: &HeaderMap) -> Option<bool> {
        let origin = headers.get(header::ORIGIN)?.to_str().ok();
        Some(origin.is_some_and(|o| {
            o.strip_prefix("http://")
                .is_some_and(|host| self.hosts.iter().any(|h| h == host))
        }))
    }
}

/// The cookie that carries the session's token.
pub fn session_cookie(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
    ))
    .expect("a base64url token is a valid header value")
}

/// Every request: its own Host, no foreign Origin (and an Origin on every form post), the
/// session (except for the code's form); every response: the strict headers.
pub async fn guard(
    State(guard): State<std::sync::Arc<Guard>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let refused = |why: &'static str| (StatusCode::FORBIDDEN, why).into_response();
    let mut response = if !guard.own_host(headers) {
        refused("this desk answers only at its own address (127.0.0.1 or localhost, its port)")
    } else if guard.origin(headers) == Some(false)
        || (request.method() != Method::GET
            && request.method() != Method::HEAD
            && guard.origin(headers).is_none())
    {
        refused("refused: the request did not come from this desk's own pages")
    } else if !OPEN_PATHS.contains(&request.uri().path()) && !guard.has_session(headers) {
        Redirect::to("/").into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_works_once() {
        let guard = Guard::new(4000);
        let code = guard.code().unwrap();
        assert_eq!(code.len(), 20);
        assert!(guard.unlock("wrong").is_none());
        let spaced = format!("{} {}", &code[..10], &code[10..].to_uppercase());
        let token = guard.unlock(&spaced).unwrap();
        assert!(guard.code().is_none());
        assert!(guard.unlock(&code).is_none(), "used up");
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            format!("a=b; {COOKIE}={}", *token).parse().unwrap(),
        );
        assert!(guard.has_session(&headers));
        headers.insert(header::COOKIE, format!("{COOKIE}=x").parse().unwrap());
        assert!(!guard.has_session(&headers));
    }

    #[test]
    fn only_its_own_host_and_origin() {
        let guard = Guard::new(4000);
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "127.0.0.1:4000".parse().unwrap());
        assert!(guard.own_host(&headers));
        assert_eq!(guard.origin(&headers), None);
        headers.insert(header::ORIGIN, "http://localhost:4000".parse().unwrap());
        assert_eq!(guard.origin(&headers), Some(true));
        headers.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert_eq!(guard.origin(&headers), Some(false));
        headers.insert(header::ORIGIN, "null".parse().unwrap());
        assert_eq!(guard.origin(&headers), Some(false));
        headers.insert(header::HOST, "evil.example:4000".parse().unwrap());
        assert!(!guard.own_host(&headers));
        headers.insert(header::HOST, "127.0.0.1:4001".parse().unwrap());
        assert!(!guard.own_host(&headers));
    }
}
