//! Reviewer key rotation over real sockets, real SQLite files and the real PostgreSQL: keys are
//! added, retired and revoked while sources submit; the very next submission is sealed to the
//! new set, on every node; old tips are re-keyed by an analyst's `tipbox review rekey` (a new
//! header for a retired key, a fresh encryption for a revoked one) and then open with the new
//! identity and the stock `age` CLI, and no longer with the old one.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};

/// A deployment whose nodes never re-read the keyring on a timer: whatever they seal to after
/// a key change comes from the check every submission makes.
fn deployment(backend: Backend, extra_toml: &str) -> Deployment {
    let deployment = Deployment::new(backend, extra_toml);
    let config = std::fs::read_to_string(&deployment.config_path).unwrap();
    assert!(config.contains("refresh_seconds = 1\n"));
    std::fs::write(
        &deployment.config_path,
        config.replace("refresh_seconds = 1\n", "refresh_seconds = 3600\n"),
    )
    .unwrap();
    deployment
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    getrandom::fill(&mut v).unwrap();
    v
}

async fn submit(server: &Server, message: &str, attachments: &[(&str, Vec<u8>)]) -> StatusCode {
    let mut form = Form::new().text("message", message.to_owned());
    for (name, bytes) in attachments {
        form = form.part(
            "attachment",
            Part::bytes(bytes.clone()).file_name(name.to_string()),
        );
    }
    client()
        .post(format!("{}/submit", server.public))
        .multipart(form)
        .send()
        .await
        .expect("the server answers")
        .status()
}

fn try_decrypt(identity: &age::x25519::Identity, ciphertext: &[u8]) -> Option<Vec<u8>> {
    let decryptor = age::Decryptor::new_buffered(ciphertext).ok()?;
    let mut reader = decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .ok()?;
    let mut out = Vec::new();
    reader.read_to_end(&mut out).ok()?;
    Some(out)
}

/// Whether the stock `age` CLI opens `file` with `identity_file`.
fn age_cli_opens(identity_file: &std::path::Path, file: &std::path::Path) -> bool {
    Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(identity_file)
        .arg(file)
        .output()
        .expect("the `age` CLI must be installed (Debian package `age`)")
        .status
        .success()
}

/// Per tip: its items (kind → file) and the labels of the one key set they are all sealed to.
struct ExportedTip {
    files: BTreeMap<String, Vec<std::path::PathBuf>>,
    labels: BTreeSet<String>,
}

fn exported_tips(deployment: &Deployment) -> BTreeMap<String, ExportedTip> {
    let (out, manifest) = deployment.export();
    let mut set_labels = BTreeMap::new();
    for set in manifest["key_sets"].as_array().unwrap() {
        let labels: BTreeSet<String> = set["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["label"].as_str().unwrap().to_owned())
            .collect();
        set_labels.insert(set["id"].as_i64().unwrap(), labels);
    }
    let mut tips: BTreeMap<String, (BTreeSet<i64>, ExportedTip)> = BTreeMap::new();
    for item in manifest["items"].as_array().unwrap() {
        let (sets, tip) = tips
            .entry(item["tip_id"].as_str().unwrap().to_owned())
            .or_insert_with(|| {
                (
                    BTreeSet::new(),
                    ExportedTip {
                        files: BTreeMap::new(),
                        labels: BTreeSet::new(),
                    },
                )
            });
        let set = item["key_set"]["id"].as_i64().unwrap();
        sets.insert(set);
        tip.labels = set_labels[&set].clone();
        tip.files
            .entry(item["kind"].as_str().unwrap().to_owned())
            .or_default()
            .push(out.join(item["file"].as_str().unwrap()));
    }
    tips.into_iter()
        .map(|(id, (sets, tip))| {
            assert_eq!(sets.len(), 1, "tip {id} is sealed to exactly one key set");
            (id, tip)
        })
        .collect()
}

fn labels(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

struct AnalystLogin {
    password: String,
    totp_secret: Vec<u8>,
}

fn add_analyst(deployment: &Deployment, name: &str, role: &str) -> AnalystLogin {
    let out = deployment.tipbox_ok(&["analyst", "add", name, "--role", role, "--json"]);
    let json: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    AnalystLogin {
        password: json["password"].as_str().unwrap().to_owned(),
        totp_secret: totp_rs::Secret::try_from_base32(json["totp_secret"].as_str().unwrap())
            .unwrap()
            .as_bytes()
            .to_vec(),
    }
}

fn code(a: &AnalystLogin, offset_steps: i64) -> String {
    let now = tipbox::clock::now() + offset_steps * 30;
    tipbox::auth::totp::totp(&a.totp_secret, "x")
        .generate(now as u64)
        .to_string()
}

async fn token(server: &Server, name: &str, a: &AnalystLogin, offset: i64) -> String {
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

async fn api(
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let mut request = client().request(method, url).bearer_auth(token);
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

async fn put_sealed(
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

fn review(review_dir: &std::path::Path, args: &[&str], stdin: &str) -> std::process::Output {
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

/// Signs `name` in with `tipbox review login` in a directory of its own; returns that directory.
fn review_login(
    deployment: &Deployment,
    server: &Server,
    name: &str,
    a: &AnalystLogin,
) -> std::path::PathBuf {
    let dir = deployment.path().join(format!("{name}-review"));
    let login = review(
        &dir,
        &["login", "--server", &server.analyst, "--user", name],
        &format!("{}\n{}\n", a.password, code(a, 1)),
    );
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    dir
}

/// The analyst pins a reviewer's key on their machine (`review rekey` seals to no other).
fn trust(dir: &std::path::Path, reviewer: &age::x25519::Identity) {
    let recipient = reviewer.to_public().to_string();
    let fingerprint = tipbox::keyring::Recipient::parse(&recipient)
        .unwrap()
        .fingerprint();
    let out = review(
        dir,
        &[
            "keys",
            "trust",
            &recipient,
            "--label",
            "reviewer",
            "--fingerprint",
            &fingerprint,
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn rekey(dir: &std::path::Path, identity: &std::path::Path) -> String {
    let out = review(
        dir,
        &["rekey", "--identity", identity.to_str().unwrap(), "--yes"],
        "",
    );
    assert!(
        out.status.success(),
        "review rekey failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn status_json(deployment: &Deployment) -> serde_json::Value {
    serde_json::from_str(&deployment.tipbox_ok(&["keys", "status", "--json"])).unwrap()
}

/// Submissions stream in from several clients while an operator adds bob and retires alice.
/// Not one is lost, every tip is sealed to exactly one key set, and every submission that
/// starts after the retirement returned is sealed to bob alone.
async fn rotation_during_a_stream(backend: Backend) {
    let deployment = Arc::new(deployment(backend, ""));
    let alice = deployment.add_reviewer("alice");
    let bob = {
        use age::secrecy::ExposeSecret;
        let bob = age::x25519::Identity::generate();
        std::fs::write(
            deployment.identity_file("bob"),
            format!("{}\n", bob.to_string().expose_secret()),
        )
        .unwrap();
        bob
    };
    let server = Arc::new(deployment.start());

    struct Sent {
        message: String,
        started: Instant,
        answered: Instant,
        status: StatusCode,
    }
    let sent = Arc::new(std::sync::Mutex::new(Vec::<Sent>::new()));
    let rotated_at = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let mut workers = Vec::new();
    for worker in 0..6 {
        let (server, sent, rotated_at) = (server.clone(), sent.clone(), rotated_at.clone());
        workers.push(tokio::spawn(async move {
            let mut after_rotation = 0;
            for n in 0.. {
                let message = format!("stream tip {worker}-{n}");
                let started = Instant::now();
                let status = submit(&server, &message, &[]).await;
                if rotated_at.lock().unwrap().is_some_and(|t| started > t) {
                    after_rotation += 1;
                }
                sent.lock().unwrap().push(Sent {
                    message,
                    started,
                    answered: Instant::now(),
                    status,
                });
                if after_rotation >= 8 {
                    break;
                }
            }
        }));
    }
    while sent.lock().unwrap().len() < 40 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rotation_began = Instant::now();
    let bob_public = bob.to_public().to_string();
    let operator = deployment.clone();
    tokio::task::spawn_blocking(move || {
        operator.tipbox_ok(&["keys", "add", &bob_public, "--label", "bob"]);
        operator.tipbox_ok(&["keys", "retire", "alice"]);
    })
    .await
    .unwrap();
    *rotated_at.lock().unwrap() = Some(Instant::now());
    let rotated = rotated_at.lock().unwrap().unwrap();
    for worker in workers {
        worker.await.unwrap();
    }

    let sent = std::mem::take(&mut *sent.lock().unwrap());
    assert!(sent.iter().all(|s| s.status == StatusCode::OK));
    let tips = exported_tips(&deployment);
    assert_eq!(tips.len(), sent.len(), "every acknowledged tip is stored");
    let identities = [("alice", &alice), ("bob", &bob)];
    let mut sealed_to = BTreeMap::new();
    for tip in tips.values() {
        let file = std::fs::read(&tip.files["message"][0]).unwrap();
        let mut message = None;
        for (name, identity) in identities {
            let opened = try_decrypt(identity, &file);
            assert_eq!(
                opened.is_some(),
                tip.labels.contains(name),
                "{name} opens exactly what is sealed to a set with {name} in it"
            );
            message = message.or(opened);
        }
        let message = String::from_utf8(message.unwrap()).unwrap();
        assert!(
            sealed_to.insert(message, tip.labels.clone()).is_none(),
            "no tip is stored twice"
        );
    }
    let (mut before, mut after) = (0, 0);
    for s in &sent {
        let set = &sealed_to[&s.message];
        if s.started > rotated {
            assert_eq!(
                *set,
                labels(&["bob"]),
                "{} started after the switch",
                s.message
            );
            after += 1;
        } else if s.answered < rotation_began {
            // (A request sent before the rotation may be handled after it, on a busy machine;
            // one answered before it cannot.)
            assert_eq!(
                *set,
                labels(&["alice"]),
                "{} was stored before it",
                s.message
            );
            before += 1;
        }
    }
    assert!(
        before >= 40 && after >= 48,
        "{before} before, {after} after"
    );
    // The tips sealed to alice's sets are listed for re-keying.
    let status = status_json(&deployment);
    assert_eq!(
        status["needs_rekey"]["retired"]["tips"].as_u64().unwrap() as usize,
        sealed_to.values().filter(|l| l.contains("alice")).count()
    );
}
on_both_backends!(rotate_during_a_stream, rotation_during_a_stream);

/// A tip sealed to alice; alice's key is retired for bob's. Before re-keying, alice opens it;
/// an analyst holding alice's identity runs `tipbox review rekey`; afterwards bob opens it, in
/// process and with the stock `age` CLI, alice no longer does, and every payload is the one
/// that was stored before, byte for byte.
async fn retired_key_story(backend: Backend) {
    let deployment = deployment(backend, "");
    let alice = deployment.add_reviewer("alice");
    let ana = add_analyst(&deployment, "ana", "analyst");
    let server = deployment.start();

    let big = random_bytes(1_500_000);
    let small = b"a small attachment".to_vec();
    let status = submit(
        &server,
        "an old tip",
        &[("big.bin", big.clone()), ("small.txt", small.clone())],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let before = exported_tips(&deployment);
    let (tip_id, tip) = before.iter().next().unwrap();
    let tip_id = tip_id.clone();
    assert_eq!(tip.labels, labels(&["alice"]));
    let old_message = tip.files["message"][0].clone();
    assert_eq!(
        try_decrypt(&alice, &std::fs::read(&old_message).unwrap()).unwrap(),
        b"an old tip"
    );
    assert!(age_cli_opens(
        &deployment.identity_file("alice"),
        &old_message
    ));
    let payload_of = |path: &std::path::Path| {
        let file = std::fs::read(path).unwrap();
        let header = tipbox::rekey::Header::parse(&file).unwrap();
        file[header.len()..].to_vec()
    };
    let mut old_payloads: Vec<Vec<u8>> = tip
        .files
        .values()
        .flatten()
        .map(|p| payload_of(p))
        .collect();
    old_payloads.sort();

    // Retire alice for bob.
    let bob = deployment.add_reviewer("bob");
    let out = deployment.tipbox_ok(&["keys", "retire", "alice"]);
    assert!(out.contains("retired reviewer key"), "{out}");
    assert!(out.contains("1 tip(s) stay readable"), "{out}");
    let status = status_json(&deployment);
    assert_eq!(status["needs_rekey"]["retired"]["items"], 4);
    assert_eq!(status["needs_rekey"]["retired"]["tips"], 1);
    assert_eq!(status["needs_rekey"]["revoked"]["items"], 0);
    // Retired, not gone: alice still opens the stored tip until it is re-keyed, and bob not yet.
    let still = exported_tips(&deployment);
    let file = std::fs::read(&still[&tip_id].files["message"][0]).unwrap();
    assert!(try_decrypt(&alice, &file).is_some());
    assert!(try_decrypt(&bob, &file).is_none());

    // What the API refuses.
    let ana_token = token(&server, "ana", &ana, 0).await;
    let base = &server.analyst;
    let (status, page) = api(
        reqwest::Method::GET,
        format!("{base}/api/v1/rekey"),
        &ana_token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["remaining"]["header"], 4);
    let to = page["key_set"]["id"].as_i64().unwrap();
    let items = page["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 4);
    assert!(
        items
            .iter()
            .all(|i| i["mode"] == "header" && i["header"].is_string())
    );
    let message = items.iter().find(|i| i["kind"] == "message").unwrap();
    let (message_id, from) = (
        message["id"].as_str().unwrap().to_owned(),
        message["key_set"].as_i64().unwrap(),
    );
    // A re-key upload whose payload differs (here: the same length, sealed afresh) is refused:
    // a retired key calls for a new header only.
    let imposter = {
        let recipient = bob.to_public();
        let encryptor =
            age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
                .unwrap();
        let mut out = Vec::new();
        let mut writer = encryptor.wrap_output(&mut out).unwrap();
        writer.write_all(b"forged tip").unwrap(); // as long as "an old tip"
        writer.finish().unwrap();
        out
    };
    let (status, body) = put_sealed(&server, &ana_token, &message_id, from, to, imposter).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("payload differs"),
        "{body}"
    );
    // Nor is anything sealed to a key set that is not the current one.
    let (status, body) =
        put_sealed(&server, &ana_token, &message_id, from, from, b"x".to_vec()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("keyring changed"),
        "{body}"
    );
    // Neither a header that is not one, nor one made from another header.
    let engine = base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    let (status, body) = api(
        reqwest::Method::PUT,
        format!("{base}/api/v1/items/{message_id}/header"),
        &ana_token,
        Some(serde_json::json!({ "from_key_set": from, "to_key_set": to, "replaces": "00", "header": engine.encode("not a header") })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let old_header =
        tipbox::rekey::Header::parse(&engine.decode(message["header"].as_str().unwrap()).unwrap())
            .unwrap();
    let bob_recipients: Vec<Box<dyn age::Recipient + Send + Sync>> =
        vec![Box::new(bob.to_public())];
    let alice_identities: Vec<Box<dyn age::Identity>> = vec![Box::new(alice.clone())];
    let new_header =
        tipbox::rekey::rewrap_header(&old_header, &alice_identities, &bob_recipients).unwrap();
    let (status, body) = api(
        reqwest::Method::PUT,
        format!("{base}/api/v1/items/{message_id}/header"),
        &ana_token,
        Some(serde_json::json!({ "from_key_set": from, "to_key_set": to, "replaces": "ab".repeat(32), "header": engine.encode(&new_header) })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // Nor to a key set that is not the current one.
    let (status, body) = api(
        reqwest::Method::PUT,
        format!("{base}/api/v1/items/{message_id}/header"),
        &ana_token,
        Some(serde_json::json!({ "from_key_set": from, "to_key_set": from, "replaces": old_header.digest(), "header": engine.encode(&new_header) })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // A whole file with a new header and the very same payload is a header re-key, and fine.
    let small_item = items
        .iter()
        .find(|i| i["kind"] == "attachment" && i["size"].as_i64().unwrap() < 1000)
        .unwrap();
    let small_id = small_item["id"].as_str().unwrap();
    let small_old = tip.files["attachment"]
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .find(|f| f.len() < 1000)
        .unwrap();
    let small_header = tipbox::rekey::Header::parse(&small_old).unwrap();
    let mut rekeyed_small =
        tipbox::rekey::rewrap_header(&small_header, &alice_identities, &bob_recipients).unwrap();
    rekeyed_small.extend_from_slice(&small_old[small_header.len()..]);
    let (status, body) = put_sealed(&server, &ana_token, small_id, from, to, rekeyed_small).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["mode"], "header");

    // The analyst re-keys the rest from their own machine.
    let dir = review_login(&deployment, &server, "ana", &ana);
    trust(&dir, &bob);
    // Not without a confirmation: the analyst first sees whom the tips would be sealed to.
    let unconfirmed = review(
        &dir,
        &[
            "rekey",
            "--identity",
            deployment.identity_file("alice").to_str().unwrap(),
        ],
        "",
    );
    assert!(!unconfirmed.status.success());
    let shown = String::from_utf8_lossy(&unconfirmed.stdout);
    let bob_fingerprint = tipbox::keyring::Recipient::parse(&bob.to_public().to_string())
        .unwrap()
        .fingerprint();
    assert!(shown.contains(&bob_fingerprint[..16]), "{shown}");
    assert!(
        String::from_utf8_lossy(&unconfirmed.stderr).contains("--yes"),
        "{}",
        String::from_utf8_lossy(&unconfirmed.stderr)
    );
    assert_eq!(
        status_json(&deployment)["needs_rekey"]["retired"]["items"],
        3
    );
    let out = rekey(&dir, &deployment.identity_file("alice"));
    assert!(out.contains("re-keyed 3 item(s)"), "{out}");
    assert!(out.contains("3 with a new header"), "{out}");
    let out = rekey(&dir, &deployment.identity_file("alice"));
    assert!(out.contains("nothing needs re-keying"), "{out}");

    let after = exported_tips(&deployment);
    let tip = &after[&tip_id];
    assert_eq!(tip.labels, labels(&["bob"]));
    let mut new_payloads = Vec::new();
    for path in tip.files.values().flatten() {
        let file = std::fs::read(path).unwrap();
        assert!(try_decrypt(&bob, &file).is_some(), "bob opens {path:?}");
        assert!(
            try_decrypt(&alice, &file).is_none(),
            "alice no longer opens {path:?}"
        );
        assert!(age_cli_opens(&deployment.identity_file("bob"), path));
        assert!(!age_cli_opens(&deployment.identity_file("alice"), path));
        new_payloads.push(payload_of(path));
    }
    new_payloads.sort();
    assert_eq!(new_payloads, old_payloads, "only headers changed");
    let message = &tip.files["message"][0];
    assert_eq!(
        String::from_utf8(
            Command::new("age")
                .arg("-d")
                .arg("-i")
                .arg(deployment.identity_file("bob"))
                .arg(message)
                .output()
                .unwrap()
                .stdout
        )
        .unwrap(),
        "an old tip"
    );
    let attachments: Vec<Vec<u8>> = tip.files["attachment"]
        .iter()
        .map(|p| try_decrypt(&bob, &std::fs::read(p).unwrap()).unwrap())
        .collect();
    assert!(attachments.contains(&big) && attachments.contains(&small));

    let status = status_json(&deployment);
    assert_eq!(status["needs_rekey"]["retired"]["items"], 0);
    // Every key change and every re-key is in an intact audit trail.
    let verified = deployment.tipbox_ok(&["audit", "verify"]);
    assert!(verified.contains("intact"), "{verified}");
    let store = deployment.store().await;
    let entries = store.audit_entries().await.unwrap();
    store.close().await;
    let count = |action: &str| entries.iter().filter(|e| e.action == action).count();
    assert_eq!(count("key.add"), 2);
    assert_eq!(count("key.retire"), 1);
    assert_eq!(count("item.rekey"), 4);
    assert!(
        entries
            .iter()
            .filter(|e| e.action == "item.rekey")
            .all(|e| e.actor == "ana")
    );
}
on_both_backends!(retired_key, retired_key_story);

/// Alice's key is revoked after a compromise: the next submission is sealed to bob alone, the
/// old tip is listed as still open to alice, and re-keying it gives a fresh encryption that
/// alice cannot open even with the old header. The last key cannot be retired.
async fn revoked_key_story(backend: Backend) {
    let deployment = deployment(backend, "");
    let alice = deployment.add_reviewer("alice");
    let bob = deployment.add_reviewer("bob");
    let ana = add_analyst(&deployment, "ana", "analyst");
    let root = add_analyst(&deployment, "root", "admin");
    let server = deployment.start();

    assert_eq!(
        submit(&server, "before the compromise", &[]).await,
        StatusCode::OK
    );
    let before = exported_tips(&deployment);
    let (old_tip, tip) = before.iter().next().unwrap();
    let old_tip = old_tip.clone();
    assert_eq!(tip.labels, labels(&["alice", "bob"]));
    let old_message = std::fs::read(&tip.files["message"][0]).unwrap();

    // Revoked through the admin API; the answer lists what alice can still open.
    let root_token = token(&server, "root", &root, 0).await;
    let base = &server.analyst;
    let (status, answer) = api(
        reqwest::Method::POST,
        format!("{base}/api/v1/keys/alice/revoke"),
        &root_token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["key"]["state"], "revoked");
    assert_eq!(answer["tips_still_open"], serde_json::json!([old_tip]));
    assert_eq!(answer["active_keys"], 1);
    assert!(answer["warnings"][0].as_str().unwrap().contains("only one"));

    // The very next submission is sealed to bob alone.
    assert_eq!(
        submit(&server, "after the compromise", &[]).await,
        StatusCode::OK
    );
    let tips = exported_tips(&deployment);
    let new_tip = tips.keys().find(|t| **t != old_tip).unwrap();
    assert_eq!(tips[new_tip].labels, labels(&["bob"]));
    let file = std::fs::read(&tips[new_tip].files["message"][0]).unwrap();
    assert!(try_decrypt(&alice, &file).is_none());
    assert_eq!(try_decrypt(&bob, &file).unwrap(), b"after the compromise");

    let status = status_json(&deployment);
    assert_eq!(status["needs_rekey"]["revoked"]["items"], 2);
    assert_eq!(
        status["revoked_keys"][0]["tips_still_open"],
        serde_json::json!([old_tip])
    );
    let text = deployment.tipbox_ok(&["keys", "status"]);
    assert!(text.contains(&old_tip), "{text}");

    // bob is the last active key: it cannot be retired, on the command line or the API.
    let refused = deployment.tipbox(&["keys", "retire", "bob"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("last active reviewer key"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let (status, body) = api(
        reqwest::Method::POST,
        format!("{base}/api/v1/keys/bob/retire"),
        &root_token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // A new header would not do: alice may have kept the old one.
    let ana_token = token(&server, "ana", &ana, 0).await;
    let (_, page) = api(
        reqwest::Method::GET,
        format!("{base}/api/v1/rekey"),
        &ana_token,
        None,
    )
    .await;
    assert_eq!(page["remaining"]["payload"], 2);
    let item = &page["items"][0];
    assert_eq!(item["mode"], "payload");
    assert!(item["header"].is_null());
    let (status, body) = api(
        reqwest::Method::PUT,
        format!("{base}/api/v1/items/{}/header", item["id"].as_str().unwrap()),
        &ana_token,
        Some(serde_json::json!({ "from_key_set": item["key_set"], "to_key_set": page["key_set"]["id"], "replaces": "00", "header": "" })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("revoked"),
        "{body}"
    );

    // bob's holder re-keys: a fresh encryption.
    let dir = review_login(&deployment, &server, "ana", &ana);
    trust(&dir, &bob);
    let out = rekey(&dir, &deployment.identity_file("bob"));
    assert!(out.contains("2 encrypted afresh"), "{out}");

    let after = exported_tips(&deployment);
    assert_eq!(after[&old_tip].labels, labels(&["bob"]));
    let path = &after[&old_tip].files["message"][0];
    let new_message = std::fs::read(path).unwrap();
    assert_eq!(
        try_decrypt(&bob, &new_message).unwrap(),
        b"before the compromise"
    );
    assert!(age_cli_opens(&deployment.identity_file("bob"), path));
    assert!(try_decrypt(&alice, &new_message).is_none());
    assert!(!age_cli_opens(&deployment.identity_file("alice"), path));
    // A new payload under a new file key: alice's copy of the old header does not open it.
    let old_header = tipbox::rekey::Header::parse(&old_message).unwrap();
    let new_header = tipbox::rekey::Header::parse(&new_message).unwrap();
    let (old_payload, new_payload) = (
        &old_message[old_header.len()..],
        &new_message[new_header.len()..],
    );
    assert_eq!(old_payload.len(), new_payload.len());
    assert_ne!(old_payload, new_payload);
    assert_ne!(old_payload[..16], new_payload[..16], "a fresh nonce");
    let mut spliced = old_header.as_bytes().to_vec();
    spliced.extend_from_slice(new_payload);
    assert!(try_decrypt(&alice, &spliced).is_none());
    // Alice's old header still opens the old payload — which the item no longer holds.
    assert!(try_decrypt(&alice, &old_message).is_some());
    let store = deployment.store().await;
    let item_id = path.file_stem().unwrap().to_str().unwrap();
    let mut stored = Vec::new();
    let mut seq = 0;
    while let Some(chunk) = store.item_chunk(item_id, seq).await.unwrap() {
        stored.extend(chunk);
        seq += 1;
    }
    store.close().await;
    assert_eq!(stored, new_message);

    let status = status_json(&deployment);
    assert_eq!(status["needs_rekey"]["revoked"]["items"], 0);
    assert_eq!(
        status["revoked_keys"][0]["tips_still_open"],
        serde_json::json!([])
    );
}
on_both_backends!(revoked_key, revoked_key_story);

/// Sends a multipart submission whose attachment arrives in two parts, running `between`
/// after the first part has been staged; returns the status and page.
async fn submit_in_two_parts(
    deployment: &Deployment,
    server: &Server,
    message: &str,
    between: impl FnOnce(),
) -> (StatusCode, String) {
    let boundary = "tipboxrotationboundary";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\n{message}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"a.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let first = random_bytes(2 * 1024 * 1024 + 100);
    let second = random_bytes(1000);
    let tail = format!("\r\n--{boundary}--\r\n");
    let length = head.len() + first.len() + second.len() + tail.len();
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let stream = futures_util::stream::unfold(receiver, |mut r| async move {
        r.recv().await.map(|chunk| (chunk, r))
    });
    let request = client()
        .post(format!("{}/submit", server.public))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("content-length", length)
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    let baseline = deployment.counts().await.chunks;
    let response = tokio::spawn(request);
    let mut firsts = head.into_bytes();
    firsts.extend_from_slice(&first);
    sender.send(Ok(firsts)).await.unwrap();
    // Wait until the server has staged ciphertext of the attachment.
    let deadline = Instant::now() + Duration::from_secs(30);
    while deployment.counts().await.chunks == baseline {
        assert!(Instant::now() < deadline, "nothing was staged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    between();
    let mut rest = second;
    rest.extend_from_slice(tail.as_bytes());
    sender.send(Ok(rest)).await.unwrap();
    drop(sender);
    let response = response.await.unwrap().unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// Submissions already being received when the keys change: one whose key set lost a retired
/// key is committed as it was sealed (and listed for re-keying); one whose key set lost a
/// revoked key is refused — nothing is stored — and the source is asked to send it again.
async fn in_flight_story(backend: Backend) {
    let deployment = deployment(backend, "");
    deployment.add_reviewer("alice");
    deployment.add_reviewer("bob");
    deployment.add_reviewer("carol");
    let server = deployment.start();

    let (status, page) = submit_in_two_parts(&deployment, &server, "retired meanwhile", || {
        deployment.tipbox_ok(&["keys", "retire", "carol"]);
    })
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let tips = exported_tips(&deployment);
    assert_eq!(
        tips.values().next().unwrap().labels,
        labels(&["alice", "bob", "carol"])
    );
    assert_eq!(
        status_json(&deployment)["needs_rekey"]["retired"]["items"],
        3
    );

    let counts = deployment.counts().await;
    let (status, page) = submit_in_two_parts(&deployment, &server, "revoked meanwhile", || {
        deployment.tipbox_ok(&["keys", "revoke", "alice"]);
    })
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{page}");
    assert!(
        page.contains("keys changed while you were sending"),
        "{page}"
    );
    assert_eq!(deployment.counts().await, counts, "nothing of it is stored");

    // Sent again, it is sealed to bob alone.
    assert_eq!(submit(&server, "sent again", &[]).await, StatusCode::OK);
    let tips = exported_tips(&deployment);
    assert_eq!(tips.len(), 2);
    assert!(tips.values().any(|t| t.labels == labels(&["bob"])));
}
on_both_backends!(in_flight, in_flight_story);

/// Two `tipbox serve` processes on one PostgreSQL database: a rotation made through one
/// node's admin API is used by the other for its very next submission.
#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_share_a_rotation() {
    let deployment = deployment(Backend::Postgres, "");
    let alice = deployment.add_reviewer("alice");
    let root = add_analyst(&deployment, "root", "admin");
    let first = deployment.start();
    let second = deployment.start();
    assert_ne!(first.public, second.public);

    assert_eq!(
        submit(&second, "via the second node, before", &[]).await,
        StatusCode::OK
    );

    // Through the first node's admin API: add bob, retire alice.
    let bob = age::x25519::Identity::generate();
    let root_token = token(&first, "root", &root, 0).await;
    let (status, added) = api(
        reqwest::Method::POST,
        format!("{}/api/v1/keys", first.analyst),
        &root_token,
        Some(serde_json::json!({ "recipient": bob.to_public().to_string(), "label": "bob", "owner": "Bob Example" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(added["key"]["owner"], "Bob Example");
    let (status, retired) = api(
        reqwest::Method::POST,
        format!("{}/api/v1/keys/alice/retire", first.analyst),
        &root_token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{retired}");
    assert!(retired["keyring_version"].as_i64() > added["keyring_version"].as_i64());

    // At once, the second node seals to bob alone.
    assert_eq!(
        submit(&second, "via the second node, after", &[]).await,
        StatusCode::OK
    );
    let store = deployment.store().await;
    let mut found = BTreeMap::new();
    for item in store.list_items().await.unwrap() {
        if item.kind != "message" {
            continue;
        }
        let mut file = Vec::new();
        let mut seq = 0;
        while let Some(chunk) = store.item_chunk(&item.item_id, seq).await.unwrap() {
            file.extend(chunk);
            seq += 1;
        }
        let text = try_decrypt(&bob, &file)
            .or_else(|| try_decrypt(&alice, &file))
            .unwrap();
        found.insert(
            String::from_utf8(text).unwrap(),
            (
                try_decrypt(&alice, &file).is_some(),
                try_decrypt(&bob, &file).is_some(),
            ),
        );
    }
    store.close().await;
    assert_eq!(found["via the second node, before"], (true, false));
    assert_eq!(found["via the second node, after"], (false, true));

    // The list, with history, from the first node.
    let (status, list) = api(
        reqwest::Method::GET,
        format!("{}/api/v1/keys", first.analyst),
        &root_token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let states: Vec<&str> = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["retired", "active"]);
    assert!(list["keys"][0]["retired_at"].is_i64());
}

/// `keys.min_active`, the one-key warning, and `keys list` with history.
#[test]
fn the_key_policy() {
    let deployment = Deployment::new(Backend::Sqlite, "min_active = 2\n");
    let out = deployment.tipbox_ok(&[
        "keys",
        "add",
        &age::x25519::Identity::generate().to_public().to_string(),
        "--label",
        "alice",
        "--owner",
        "Alice Example",
    ]);
    assert!(out.contains("only one reviewer key is active"), "{out}");
    let refused = deployment.tipbox(&["keys", "retire", "alice"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("last active reviewer key"));
    deployment.add_reviewer("bob");
    let refused = deployment.tipbox(&["keys", "retire", "alice"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("keys.min_active = 2"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    deployment.add_reviewer("carol");
    // By fingerprint prefix this time.
    let keys: serde_json::Value =
        serde_json::from_str(&deployment.tipbox_ok(&["keys", "list", "--json"])).unwrap();
    let alice_fingerprint = keys[0]["fingerprint"].as_str().unwrap();
    deployment.tipbox_ok(&["keys", "retire", &alice_fingerprint[..10]]);
    let refused = deployment.tipbox(&["keys", "retire", "alice"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already retired"));
    // A retired key can still be revoked; a revoked key cannot come back.
    deployment.tipbox_ok(&["keys", "revoke", "1"]);
    let again = deployment.tipbox(&[
        "keys",
        "add",
        keys[0]["recipient"].as_str().unwrap(),
        "--label",
        "alice again",
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("cannot come back"));
    let list = deployment.tipbox_ok(&["keys", "list"]);
    let alice_line = list.lines().find(|l| l.contains("alice")).unwrap();
    assert!(alice_line.contains("revoked"), "{list}");
    assert!(alice_line.contains("owner: Alice Example"), "{list}");
    let keys: serde_json::Value =
        serde_json::from_str(&deployment.tipbox_ok(&["keys", "list", "--json"])).unwrap();
    assert_eq!(keys[0]["state"], "revoked");
    assert!(keys[0]["retired_at"].is_i64() && keys[0]["revoked_at"].is_i64());
    assert_eq!(keys[1]["state"], "active");
    // An unknown name is refused (ambiguous ones too: see the keyring's unit tests).
    let unknown = deployment.tipbox(&["keys", "retire", "dave"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no reviewer key matches"));
}

/// A database restored from a backup can carry an older keyring version than a running node
/// holds: the node follows the database, not the larger number.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_follows_a_keyring_that_went_back() {
    let deployment = deployment(Backend::Sqlite, "");
    deployment.add_reviewer("alice"); // key set 1, keyring version 1
    deployment.add_reviewer("bob"); // key set 2, version 2
    deployment.tipbox_ok(&["keys", "retire", "alice"]); // key set 3, version 3
    let server = deployment.start();
    assert_eq!(submit(&server, "with bob", &[]).await, StatusCode::OK);
    deployment
        .execute_sql("UPDATE keyring SET version = 1, key_set_id = 1")
        .await;
    assert_eq!(submit(&server, "as restored", &[]).await, StatusCode::OK);
    let tips = exported_tips(&deployment);
    let sets: BTreeSet<BTreeSet<String>> = tips.values().map(|t| t.labels.clone()).collect();
    assert_eq!(
        sets,
        BTreeSet::from([labels(&["bob"]), labels(&["alice"])]),
        "the second tip is sealed to the restored key set"
    );
}
