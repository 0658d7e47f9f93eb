//! A browser without JavaScript, by hand: form posts, cookies sent back explicitly (the
//! `__Host-` cookies are `Secure`, which an HTTP client's cookie jar would not send over
//! plain HTTP on loopback), hidden CSRF fields read off the page.

use reqwest::header::{COOKIE, SET_COOKIE};

use super::client;

pub fn hidden_csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

pub fn cookie_from(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| {
            let value = v[name.len() + 1..v.find(';').unwrap()].to_owned();
            (value, v)
        })
}

pub async fn form(url: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> reqwest::Response {
    let body: String = fields
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
            )
        })
        .collect::<Vec<_>>()
        .join("&");
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
