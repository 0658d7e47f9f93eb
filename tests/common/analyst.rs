//! Analysts in tests: accounts made with `tipbox analyst add --json`, TOTP codes computed
//! from their secrets, API sign-in and calls, and the `tipbox review` client.

use std::process::{Command, Stdio};

use reqwest::StatusCode;

use super::{Deployment, Server, TIPBOX, client};

pub struct Analyst {
    pub password: String,
    pub totp_secret: Vec<u8>,
}

pub fn add_analyst(deployment: &Deployment, name: &str, role: &str) -> Analyst {
    let out = deployment.tipbox_ok(&["analyst", "add", name, "--role", role, "--json"]);
    let json: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    Analyst {
        password: json["password"].as_str().unwrap().to_owned(),
        totp_secret: totp_rs::Secret::try_from_base32(json["totp_secret"].as_str().unwrap())
            .unwrap()
            .as_bytes()
            .to_vec(),
    }
}

pub fn code(a: &Analyst, offset_steps: i64) -> String {
    let now = tipbox::clock::now() + offset_steps * 30;
    tipbox::auth::totp::totp(&a.totp_secret, "x")
        .generate(now as u64)
        .to_string()
}

pub async fn token(server: &Server, name: &str, a: &Analyst, offset: i64) -> String {
    let response = client()
        .post(format!("{}/api/v1/session", server.analyst))
        .header("content-type", "application/json")
        .body(serde_json::json!({ "username": name, "password": a.password, "totp": code(a, offset) }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    body["token"].as_str().unwrap().to_owned()
}

pub async fn api(
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let mut request = client().request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (
        status,
        serde_json::from_str(&response.text().await.unwrap()).unwrap_or_default(),
    )
}

pub fn review(review_dir: &std::path::Path, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(TIPBOX)
        .args(["review"])
        .args(args)
        .env("TIPBOX_REVIEW_DIR", review_dir)
        .env_remove("TIPBOX_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `tipbox review ARGS`, which must succeed.
pub fn review_ok(review_dir: &std::path::Path, args: &[&str], stdin: &str) {
    let out = review(review_dir, args, stdin);
    assert!(
        out.status.success(),
        "tipbox review {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `tipbox review login` as `name`, with a TOTP code `offset` steps from now.
pub fn review_login(
    review_dir: &std::path::Path,
    server: &Server,
    name: &str,
    a: &Analyst,
    offset: i64,
) {
    review_ok(
        review_dir,
        &["login", "--server", &server.analyst, "--user", name],
        &format!("{}\n{}\n", a.password, code(a, offset)),
    );
}

/// `tipbox review pull --identity IDENTITY --out OUT [EXTRA…]`, which must succeed.
pub fn review_pull(
    review_dir: &std::path::Path,
    identity: &std::path::Path,
    out: &std::path::Path,
    extra: &[&str],
) {
    let mut args = vec![
        "pull",
        "--identity",
        identity.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    review_ok(review_dir, &args, "");
}
