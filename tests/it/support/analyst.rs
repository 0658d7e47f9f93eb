//! Analysts in tests: accounts made with `tipbox analyst add --json`, TOTP codes computed
//! from their secrets, API sign-in and calls, and the `tipbox review` client.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use reqwest::StatusCode;

use super::deployment::{Deployment, TIPBOX, succeeded};
use super::http::client;
use super::library::{Recipient, now, totp};
use super::server::Server;

#[derive(Clone)]
pub struct Analyst {
    pub name: String,
    pub password: String,
    pub totp_secret: Vec<u8>,
}

/// `tipbox analyst add NAME --role ROLE --json`: the account and what it printed once.
pub fn add_analyst(deployment: &Deployment, name: &str, role: &str) -> Analyst {
    let out = deployment.tipbox_ok(&["analyst", "add", name, "--role", role, "--json"]);
    analyst_from_json(name, out.trim())
}

/// The account printed by `analyst add --json` (or `reset-2fa --json`, given the password).
pub fn analyst_from_json(name: &str, printed: &str) -> Analyst {
    let json: serde_json::Value =
        serde_json::from_str(printed).unwrap_or_else(|e| panic!("{e}: {printed}"));
    Analyst {
        name: name.to_owned(),
        password: json["password"].as_str().unwrap().to_owned(),
        totp_secret: totp_rs::Secret::try_from_base32(json["totp_secret"].as_str().unwrap())
            .unwrap()
            .as_bytes()
            .to_vec(),
    }
}

/// The analyst's TOTP code `offset_steps` steps of 30 s from now (a code is accepted once).
pub fn code(a: &Analyst, offset_steps: i64) -> String {
    // A code one step off is accepted only while the server's clock is in the step it was
    // made in: made in a step's last seconds, it can reach the server (which hashes the
    // password first) in the next step, two steps off, and be refused. Near the end of a step,
    // wait for the next one.
    let into_step = now().rem_euclid(30);
    if into_step >= 25 {
        std::thread::sleep(std::time::Duration::from_secs((30 - into_step) as u64));
    }
    let at = now() + offset_steps * 30;
    totp(&a.totp_secret, "x").generate(at as u64).to_string()
}

/// `POST /api/v1/session`: the status and the JSON answer.
pub async fn sign_in(
    server: &Server,
    username: &str,
    password: &str,
    totp: &str,
) -> (StatusCode, serde_json::Value) {
    let (status, text) = sign_in_text(server, username, password, totp).await;
    (status, serde_json::from_str(&text).unwrap_or_default())
}

/// `POST /api/v1/session`: the status and the answer as sent (to compare two answers byte for
/// byte).
pub async fn sign_in_text(
    server: &Server,
    username: &str,
    password: &str,
    totp: &str,
) -> (StatusCode, String) {
    api_text(
        reqwest::Method::POST,
        format!("{}/api/v1/session", server.analyst),
        None,
        Some(serde_json::json!({ "username": username, "password": password, "totp": totp })),
    )
    .await
}

/// An API token for the analyst, signed in with the code `offset` steps from now.
pub async fn token(server: &Server, a: &Analyst, offset: i64) -> String {
    let (status, body) = sign_in(server, &a.name, &a.password, &code(a, offset)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

/// One API call: the status and the JSON answer (`null` when the body is not JSON).
pub async fn api(
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let (status, text) = api_text(method, url, token, body).await;
    (status, serde_json::from_str(&text).unwrap_or_default())
}

/// One API call: the status and the body as sent.
pub async fn api_text(
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (StatusCode, String) {
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
    (status, response.text().await.unwrap())
}

/// A call with `token` to `path` on the analyst listener: the status and the JSON answer.
pub async fn api_call(
    server: &Server,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    api(
        method,
        format!("{}{path}", server.analyst),
        Some(token),
        body,
    )
    .await
}

/// `GET` on the analyst API, which must answer 200; the JSON answer.
pub async fn api_get(server: &Server, token: &str, path: &str) -> serde_json::Value {
    let (status, body) = api_call(server, token, reqwest::Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

/// A stored item's sealed file, downloaded through the API.
pub async fn sealed_item(server: &Server, token: &str, item_id: &str) -> Vec<u8> {
    let response = client()
        .get(format!("{}/api/v1/items/{item_id}/sealed", server.analyst))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.bytes().await.unwrap().to_vec()
}

/// `PUT /api/v1/items/ITEM/sealed`: `file` replaces the item, re-keyed from key set `from` to
/// `to`; the status and the JSON answer.
pub async fn put_sealed(
    server: &Server,
    token: &str,
    item: &str,
    from: i64,
    to: i64,
    file: Vec<u8>,
) -> (StatusCode, serde_json::Value) {
    let response = client()
        .put(format!(
            "{}/api/v1/items/{item}/sealed?from_key_set={from}&to_key_set={to}",
            server.analyst
        ))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(file)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (
        status,
        serde_json::from_str(&response.text().await.unwrap()).unwrap_or_default(),
    )
}

/// `tipbox review ARGS` with `stdin`, its configuration in `review_dir`.
pub fn review(review_dir: &Path, args: &[&str], stdin: &str) -> Output {
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

/// `tipbox review ARGS`, which must succeed; its standard output.
pub fn review_ok(review_dir: &Path, args: &[&str], stdin: &str) -> String {
    succeeded(
        format!("tipbox review {args:?}"),
        review(review_dir, args, stdin),
    )
}

/// `tipbox review login` as the analyst, with a TOTP code `offset` steps from now.
pub fn review_login(review_dir: &Path, server: &Server, a: &Analyst, offset: i64) {
    review_ok(
        review_dir,
        &["login", "--server", &server.analyst, "--user", &a.name],
        &format!("{}\n{}\n", a.password, code(a, offset)),
    );
}

/// `tipbox review pull --identity IDENTITY --out OUT [EXTRA…]`, which must succeed; its
/// standard output.
pub fn review_pull(review_dir: &Path, identity: &Path, out: &Path, extra: &[&str]) -> String {
    review_ok(review_dir, &pull_args(identity, out, extra), "")
}

/// `tipbox review pull --identity IDENTITY --out OUT [EXTRA…]`, which may fail.
pub fn review_pull_output(
    review_dir: &Path,
    identity: &Path,
    out: &Path,
    extra: &[&str],
) -> Output {
    review(review_dir, &pull_args(identity, out, extra), "")
}

fn pull_args<'a>(identity: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "pull",
        "--identity",
        identity.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args
}

/// `tipbox review rekey --identity IDENTITY`, confirmed with `--yes` or not; it may fail.
pub fn review_rekey(review_dir: &Path, identity: &Path, yes: bool) -> Output {
    let mut args = vec!["rekey", "--identity", identity.to_str().unwrap()];
    if yes {
        args.push("--yes");
    }
    review(review_dir, &args, "")
}

/// `tipbox review rekey --identity IDENTITY --yes`, which must succeed; its standard output.
pub fn review_rekey_ok(review_dir: &Path, identity: &Path) -> String {
    review_ok(
        review_dir,
        &["rekey", "--identity", identity.to_str().unwrap(), "--yes"],
        "",
    )
}

/// The fingerprint of a reviewer's key, as `tipbox keys` and `tipbox review keys` show it.
pub fn fingerprint(identity: &age::x25519::Identity) -> String {
    Recipient::parse(&identity.to_public().to_string())
        .unwrap()
        .fingerprint()
}

/// `tipbox review keys trust` of a reviewer's key, under `label`, with the fingerprint the
/// reviewer gave: the analyst pins the key on their machine (`review rekey` seals to no other).
pub fn review_trust(review_dir: &Path, identity: &age::x25519::Identity, label: &str) {
    review_ok(
        review_dir,
        &[
            "keys",
            "trust",
            &identity.to_public().to_string(),
            "--label",
            label,
            "--fingerprint",
            &fingerprint(identity),
        ],
        "",
    );
}
