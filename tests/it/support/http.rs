//! HTTP over loopback, and the source's side of it: submitting the form and reading the
//! receipt off the page.

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};

use super::deployment::Deployment;
use super::server::Server;

/// reqwest is built without a default TLS provider (tipbox installs ring): install it here.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP client that follows no redirects (tests look at each answer).
pub fn client() -> reqwest::Client {
    install_tls_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_loopback_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    getrandom::fill(&mut v).unwrap();
    v
}

/// `PREFIX-` and 24 random hex digits: text to look for where it must not be.
pub fn random_marker(prefix: &str) -> String {
    format!("{prefix}-{}", hex::encode(random_bytes(12)))
}

/// The form with a message and attachments (file name, bytes).
pub fn tip_form(message: &str, attachments: &[(&str, Vec<u8>)]) -> Form {
    let mut form = Form::new().text("message", message.to_owned());
    for (name, bytes) in attachments {
        form = form.part(
            "attachment",
            Part::bytes(bytes.clone()).file_name(name.to_string()),
        );
    }
    form
}

/// Posts the submission form in `lang`; the status and the page.
pub async fn submit(server: &Server, form: Form, lang: &str) -> (StatusCode, String) {
    submit_at(&server.public, form, lang).await
}

/// Posts the submission form to the public listener at `public` (or a relay in front of it).
pub async fn submit_at(public: &str, form: Form, lang: &str) -> (StatusCode, String) {
    let response = client()
        .post(format!("{public}/submit?lang={lang}"))
        .multipart(form)
        .send()
        .await
        .expect("the server answers (never a reset connection)");
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// Submits `form` in English, which must be accepted; the receipt.
pub async fn submit_ok(server: &Server, form: Form) -> String {
    let (status, page) = submit(server, form, "en").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    receipt_from(&page)
}

/// Submits a tip with `message` alone, which must be accepted; its receipt.
pub async fn submit_message(server: &Server, message: &str) -> String {
    submit_ok(server, tip_form(message, &[])).await
}

/// Submits `form` in English, which must be accepted; the receipt and the new tip's id.
pub async fn submit_form_tip(
    deployment: &Deployment,
    server: &Server,
    form: Form,
) -> (String, String) {
    let before = deployment.tip_ids().await;
    let receipt = submit_ok(server, form).await;
    let id = deployment
        .tip_ids()
        .await
        .into_iter()
        .find(|id| !before.contains(id))
        .expect("the new tip");
    (receipt, id)
}

/// Submits a tip with `message` alone; its receipt and its id.
pub async fn submit_tip(
    deployment: &Deployment,
    server: &Server,
    message: &str,
) -> (String, String) {
    submit_form_tip(deployment, server, tip_form(message, &[])).await
}

/// The text of the element with `id="receipt"`.
pub fn receipt_from(html: &str) -> String {
    let at = html
        .find("id=\"receipt\"")
        .expect("receipt element on the page");
    let start = html[at..].find('>').unwrap() + at + 1;
    let end = html[start..].find('<').unwrap() + start;
    html[start..end].trim().to_owned()
}
