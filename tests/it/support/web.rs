//! A browser without JavaScript, by hand: form posts, cookies sent back explicitly (the
//! `__Host-` cookies are `Secure`, which an HTTP client's cookie jar would not send over
//! plain HTTP on loopback), hidden CSRF fields read off the page.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use super::analyst::{Analyst, code};
use super::http::client;
use super::server::Server;

/// The value of the first hidden input `name` on a page.
pub fn hidden(html: &str, name: &str) -> String {
    hidden_values(html, name)
        .into_iter()
        .next()
        .expect("the hidden field")
}

/// The values of every hidden input `name` on a page, in order.
pub fn hidden_values(html: &str, name: &str) -> Vec<String> {
    let marker = format!("type=\"hidden\" name=\"{name}\" value=\"");
    html.match_indices(&marker)
        .map(|(at, _)| {
            let at = at + marker.len();
            html[at..at + html[at..].find('"').unwrap()].to_owned()
        })
        .collect()
}

/// The form's CSRF token.
pub fn hidden_csrf(html: &str) -> String {
    hidden(html, "csrf")
}

/// Every `Set-Cookie` header of the response.
pub fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The cookie `name` the response sets: its value and the whole `Set-Cookie` header.
pub fn cookie_from(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    set_cookies(response)
        .into_iter()
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| {
            let value = v[name.len() + 1..v.find(';').unwrap()].to_owned();
            (value, v)
        })
}

/// Posts a urlencoded form, with the `Cookie` header value `cookie`.
pub async fn form(url: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> reqwest::Response {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let mut request = client()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    request.send().await.unwrap()
}

pub async fn get(url: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = client().get(url);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    request.send().await.unwrap()
}

/// A form as a browser loads it, paired with a cookie that its CSRF token must match.
pub struct PairedForm {
    /// The `Cookie` header value that sends the pairing cookie back.
    pub cookie: String,
    /// The form's CSRF token (the pairing cookie's value).
    pub csrf: String,
    /// Every `Set-Cookie` header of the page.
    pub set_cookies: Vec<String>,
}

/// Loads the form at `url`, which pairs its CSRF token with the cookie `pairing`.
async fn paired_form(url: &str, pairing: &str) -> PairedForm {
    let page = get(url, None).await;
    assert_eq!(page.status(), StatusCode::OK);
    let set_cookies = set_cookies(&page);
    let (value, _) = cookie_from(&page, pairing).expect("a pairing cookie");
    let csrf = hidden_csrf(&page.text().await.unwrap());
    assert_eq!(csrf, value);
    PairedForm {
        cookie: format!("{pairing}={value}"),
        csrf,
        set_cookies,
    }
}

/// The desk's sign-in form as a browser gets it.
pub async fn desk_login_form(server: &Server) -> PairedForm {
    paired_form(&format!("{}/login", server.analyst), "__Host-tipbox_login").await
}

/// Signs in on the desk's sign-in form `login` with the code `offset` steps from now: the
/// answer, which sends the browser to the queue.
pub async fn desk_sign_in_on(
    server: &Server,
    login: &PairedForm,
    a: &Analyst,
    offset: i64,
) -> reqwest::Response {
    let signed_in = form(
        &format!("{}/login", server.analyst),
        Some(&login.cookie),
        &[
            ("csrf", &login.csrf),
            ("username", &a.name),
            ("password", &a.password),
            ("totp", &code(a, offset)),
        ],
    )
    .await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_in.headers()[LOCATION], "/queue");
    signed_in
}

/// Signs in at the desk with the code `offset` steps from now; the session's `Cookie` header
/// value and the `Set-Cookie` header that carried it.
pub async fn desk_sign_in(server: &Server, a: &Analyst, offset: i64) -> (String, String) {
    let login = desk_login_form(server).await;
    let signed_in = desk_sign_in_on(server, &login, a, offset).await;
    let (session, set_cookie) =
        cookie_from(&signed_in, "__Host-tipbox_session").expect("a session cookie");
    (format!("__Host-tipbox_session={session}"), set_cookie)
}

/// The cookie that pairs the receipt form with its CSRF token, as a plain-HTTP listener (an
/// onion service) names it; over TLS it is `__Host-tipbox_signin` (tls.rs).
pub const SIGNIN_COOKIE: &str = "tipbox_signin";
/// The cookie of a source's session, over plain HTTP.
pub const CASE_COOKIE: &str = "tipbox_case";

/// The source's receipt form in `lang`, as a browser gets it.
pub async fn receipt_form(server: &Server, lang: &str) -> PairedForm {
    paired_form(
        &format!("{}/followup?lang={lang}", server.public),
        SIGNIN_COOKIE,
    )
    .await
}

/// Posts `receipt` with the receipt form `page` in `lang`: the response (303 on success).
pub async fn post_receipt_on(
    server: &Server,
    page: &PairedForm,
    receipt: &str,
    lang: &str,
) -> reqwest::Response {
    form(
        &format!("{}/followup?lang={lang}", server.public),
        Some(&page.cookie),
        &[("csrf", &page.csrf), ("receipt", receipt)],
    )
    .await
}

/// Loads the receipt form and posts `receipt` with it: the response (303 on success).
pub async fn post_receipt(server: &Server, receipt: &str, lang: &str) -> reqwest::Response {
    let page = receipt_form(server, lang).await;
    post_receipt_on(server, &page, receipt, lang).await
}

/// The source's case page (English) with the session `cookie`.
pub async fn case_page(server: &Server, cookie: &str) -> String {
    get(
        &format!("{}/followup/case?lang=en", server.public),
        Some(cookie),
    )
    .await
    .text()
    .await
    .unwrap()
}

/// Signs a source in with its receipt; the `Cookie` header value of the session.
pub async fn source_sign_in(server: &Server, receipt: &str) -> String {
    let response = post_receipt(server, receipt, "en").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()[LOCATION].to_str().unwrap(),
        "/followup/case?lang=en"
    );
    let (token, header) = cookie_from(&response, CASE_COOKIE).expect("a session cookie");
    assert_eq!(token.len(), 64, "256 random bits");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(header.contains(attribute), "{header}");
    }
    // Over plain HTTP (an onion service), not `Secure`: Onion Browser on iOS and browsers behind
    // Orbot drop `Secure` cookies there, and tor already encrypts the connection.
    assert!(!header.contains("Secure"), "{header}");
    format!("{CASE_COOKIE}={token}")
}
