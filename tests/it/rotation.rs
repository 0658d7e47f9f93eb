//! Reviewer key rotation over real sockets, real SQLite files and the real PostgreSQL: keys are
//! added, retired and revoked while sources submit; the very next submission is sealed to the
//! new set, on every node; old tips are re-keyed by an analyst's `tipbox review rekey` (a new
//! header for a retired key, a fresh encryption for a revoked one) and then open with the new
//! identity and the stock `age` CLI, and no longer with the old one.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::StatusCode;

use crate::support::analyst::{
    Analyst, add_analyst, api_call, api_get, fingerprint, put_sealed, review_login, review_rekey,
    review_rekey_ok, review_trust, sealed_item, token,
};
use crate::support::{
    Backend, Deployment, Header, Server, age_cli_decrypt, age_cli_opens, client, on_both_backends,
    open_report, plaintext_len, random_bytes, rewrap_header, stored_item, submit, submit_ok,
    tip_form, try_decrypt,
};

/// A deployment whose nodes never re-read the keyring on a timer: whatever they seal to after
/// a key change comes from the check every submission makes.
fn deployment(backend: Backend, extra_toml: &str) -> Deployment {
    let deployment = Deployment::new(backend, extra_toml);
    deployment.edit_config("refresh_seconds = 1\n", "refresh_seconds = 3600\n");
    deployment
}

/// Submits a text tip; the status.
async fn submit_text(server: &Server, message: &str) -> StatusCode {
    submit(server, tip_form(message, &[]), "en").await.0
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

/// `PUT /api/v1/items/ITEM/header` with a JSON body.
async fn put_header(
    server: &Server,
    token: &str,
    item: &str,
    body: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    let path = format!("/api/v1/items/{item}/header");
    api_call(server, token, reqwest::Method::PUT, &path, Some(body)).await
}

/// Signs `a` in with `tipbox review login` in a directory of its own; returns that directory.
/// `a`'s review client, signed in, with `trusted` (the reviewer of the current key set) pinned.
fn review_dir_of(
    deployment: &Deployment,
    server: &Server,
    a: &Analyst,
    trusted: &age::x25519::Identity,
) -> PathBuf {
    let dir = deployment.path().join(format!("{}-review", a.name));
    review_login(&dir, server, a, 1);
    review_trust(&dir, trusted, "reviewer");
    dir
}

fn status_json(deployment: &Deployment) -> serde_json::Value {
    serde_json::from_str(&deployment.tipbox_ok(&["keys", "status", "--json"])).unwrap()
}

/// The payload of an age file (everything after its header).
fn payload_of(file: &[u8]) -> Vec<u8> {
    let header = Header::parse(file).unwrap();
    file[header.len()..].to_vec()
}

/// Submissions stream in from several clients while an operator adds bob and retires alice.
/// Not one is lost, every tip is sealed to exactly one key set, and every submission that
/// starts after the retirement returned is sealed to bob alone.
async fn a_rotation_during_a_stream_loses_nothing(backend: Backend) {
    let deployment = Arc::new(deployment(backend, ""));
    let alice = deployment.add_reviewer("alice");
    let bob = deployment.new_identity("bob");
    let server = Arc::new(deployment.start());

    struct Sent {
        message: String,
        started: Instant,
        answered: Instant,
        status: StatusCode,
    }
    let sent = Arc::new(Mutex::new(Vec::<Sent>::new()));
    let rotated_at = Arc::new(Mutex::new(None::<Instant>));
    let mut workers = Vec::new();
    for worker in 0..6 {
        let (server, sent, rotated_at) = (server.clone(), sent.clone(), rotated_at.clone());
        workers.push(tokio::spawn(async move {
            let mut after_rotation = 0;
            for n in 0.. {
                let message = format!("stream tip {worker}-{n}");
                let started = Instant::now();
                let (status, _) = submit(&server, tip_form(&message, &[]), "en").await;
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
        let file = std::fs::read(&tip.files["report"][0]).unwrap();
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
        let (message, _) = open_report(&message.unwrap());
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
on_both_backends!(a_rotation_during_a_stream_loses_nothing);

/// A tip with a message and two attachments (one large) sealed to alice; then bob's key is
/// added and alice's retired. ana is an analyst.
struct Retired {
    deployment: Deployment,
    alice: age::x25519::Identity,
    bob: age::x25519::Identity,
    ana: Analyst,
    server: Server,
    tip_id: String,
    /// The tip as exported before the retirement.
    tip: ExportedTip,
    attachments: [Vec<u8>; 2],
    /// What `keys retire alice` printed.
    retired: String,
}

async fn retired_alice(backend: Backend) -> Retired {
    let deployment = deployment(backend, "");
    let alice = deployment.add_reviewer("alice");
    let ana = add_analyst(&deployment, "ana", "analyst");
    let server = deployment.start();
    let attachments = [random_bytes(1_500_000), b"a small attachment".to_vec()];
    let form = tip_form(
        "an old tip",
        &[
            ("big.bin", attachments[0].clone()),
            ("small.txt", attachments[1].clone()),
        ],
    );
    submit_ok(&server, form).await;
    let (tip_id, tip) = exported_tips(&deployment).into_iter().next().unwrap();
    assert_eq!(tip.labels, labels(&["alice"]));
    let bob = deployment.add_reviewer("bob");
    let retired = deployment.tipbox_ok(&["keys", "retire", "alice"]);
    Retired {
        deployment,
        alice,
        bob,
        ana,
        server,
        tip_id,
        tip,
        attachments,
        retired,
    }
}

/// An item of the re-key queue: its id, the key set it is sealed to, the one to re-key it to,
/// and its current header.
struct QueuedItem {
    id: String,
    from: i64,
    to: i64,
    header: Header,
}

/// A re-keyed header in the API's JSON: `header` (base64) to replace the one whose digest is
/// `replaces`, from one key set to another.
fn header_upload(from: i64, to: i64, replaces: &str, header: &[u8]) -> serde_json::Value {
    let engine = base64::engine::general_purpose::STANDARD;
    serde_json::json!({ "from_key_set": from, "to_key_set": to, "replaces": replaces, "header": engine.encode(header) })
}

impl Retired {
    /// The payloads of the tip's sealed files, sorted.
    fn payloads(tip: &ExportedTip) -> Vec<Vec<u8>> {
        let mut payloads: Vec<Vec<u8>> = tip
            .files
            .values()
            .flatten()
            .map(|p| payload_of(&std::fs::read(p).unwrap()))
            .collect();
        payloads.sort();
        payloads
    }

    /// The re-key queue as the analyst sees it: the target key set and the items.
    async fn rekey_queue(&self, token: &str) -> serde_json::Value {
        api_get(&self.server, token, "/api/v1/rekey").await
    }

    /// The report (message and facts) of the re-key queue.
    async fn message_to_rekey(&self, token: &str) -> QueuedItem {
        let page = self.rekey_queue(token).await;
        let items = page["items"].as_array().unwrap();
        let message = items.iter().find(|i| i["kind"] == "report").unwrap();
        let engine = base64::engine::general_purpose::STANDARD;
        let header = engine.decode(message["header"].as_str().unwrap()).unwrap();
        QueuedItem {
            id: message["id"].as_str().unwrap().to_owned(),
            from: message["key_set"].as_i64().unwrap(),
            to: page["key_set"]["id"].as_i64().unwrap(),
            header: Header::parse(&header).unwrap(),
        }
    }

    /// A new header of `header` for bob, made with alice's identity (as her holder would).
    fn rewrap_for_bob(&self, header: &Header) -> Vec<u8> {
        rewrap_header(
            header,
            &[Box::new(self.alice.clone()) as Box<dyn age::Identity>],
            &[Box::new(self.bob.to_public()) as Box<dyn age::Recipient + Send + Sync>],
        )
        .unwrap()
    }

    /// How many items `keys status` says still need re-keying for the retired key.
    fn assert_left_to_rekey(&self, items: u64) {
        let status = status_json(&self.deployment);
        assert_eq!(status["needs_rekey"]["retired"]["items"], items, "{status}");
    }

    /// ana's review client, signed in, with bob's key pinned.
    fn review_dir(&self) -> PathBuf {
        review_dir_of(&self.deployment, &self.server, &self.ana, &self.bob)
    }

    fn rekey_with_alice(&self) -> String {
        let dir = self.review_dir();
        review_rekey_ok(&dir, &self.deployment.identity_file("alice"))
    }
}

/// `keys retire` says what stays readable; `keys status` counts what needs re-keying.
async fn retiring_a_key_says_what_stays_readable(backend: Backend) {
    let retired = retired_alice(backend).await;
    assert!(
        retired.retired.contains("retired reviewer key"),
        "{}",
        retired.retired
    );
    assert!(
        retired.retired.contains("1 tip(s) stay readable"),
        "{}",
        retired.retired
    );
    let status = status_json(&retired.deployment);
    assert_eq!(status["needs_rekey"]["retired"]["items"], 3);
    assert_eq!(status["needs_rekey"]["retired"]["tips"], 1);
    assert_eq!(status["needs_rekey"]["revoked"]["items"], 0);
}

/// Retired, not gone: alice still opens the stored tip until it is re-keyed, and bob not yet.
async fn a_retired_key_opens_its_tips_until_they_are_rekeyed(backend: Backend) {
    let retired = retired_alice(backend).await;
    let still = exported_tips(&retired.deployment);
    let path = &still[&retired.tip_id].files["report"][0];
    let file = std::fs::read(path).unwrap();
    assert_eq!(
        open_report(&try_decrypt(&retired.alice, &file).unwrap()).0,
        "an old tip"
    );
    assert!(age_cli_opens(
        &retired.deployment.identity_file("alice"),
        path
    ));
    assert!(try_decrypt(&retired.bob, &file).is_none());
}

/// The re-key queue offers each item of the tip with its header, for a new header.
async fn the_rekey_queue_offers_new_headers_for_a_retired_key(backend: Backend) {
    let retired = retired_alice(backend).await;
    let token = token(&retired.server, &retired.ana, 0).await;
    let page = retired.rekey_queue(&token).await;
    assert_eq!(page["remaining"]["header"], 3);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(
        items
            .iter()
            .all(|i| i["mode"] == "header" && i["header"].is_string())
    );
}

/// What the API refuses for an item sealed to a retired key, each refusal changing nothing: a
/// whole file whose payload differs (here: the same length, sealed afresh — a retired key calls
/// for a new header only); anything sealed to a key set that is not the current one (a whole
/// file, or a header); a header that is not one; a header made from another header than the
/// stored one.
async fn the_api_takes_only_a_new_header_for_the_current_key_set(backend: Backend) {
    let retired = retired_alice(backend).await;
    let token = token(&retired.server, &retired.ana, 0).await;
    let message = retired.message_to_rekey(&token).await;
    let (from, to, id) = (message.from, message.to, &message.id);
    let stored = sealed_item(&retired.server, &token, id).await;
    let imposter = {
        let recipient = retired.bob.to_public();
        let encryptor =
            age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
                .unwrap();
        let mut out = Vec::new();
        let mut writer = encryptor.wrap_output(&mut out).unwrap();
        // As long as the stored report: only the payload differs.
        writer
            .write_all(&vec![b'x'; plaintext_len(&stored)])
            .unwrap();
        writer.finish().unwrap();
        out
    };
    let new_header = retired.rewrap_for_bob(&message.header);
    let digest = message.header.digest();
    for (what, refused, error) in [
        (
            "a whole file with another payload",
            put_sealed(&retired.server, &token, id, from, to, imposter).await,
            Some((StatusCode::CONFLICT, "payload differs")),
        ),
        (
            "a whole file for a key set that is not current",
            put_sealed(&retired.server, &token, id, from, from, b"x".to_vec()).await,
            Some((StatusCode::CONFLICT, "keyring changed")),
        ),
        (
            "a header for a key set that is not current",
            put_header(
                &retired.server,
                &token,
                id,
                header_upload(from, from, &digest, &new_header),
            )
            .await,
            None,
        ),
        (
            "a header that is not one",
            put_header(
                &retired.server,
                &token,
                id,
                header_upload(from, to, "00", b"not a header"),
            )
            .await,
            Some((StatusCode::UNPROCESSABLE_ENTITY, "")),
        ),
        (
            "a header that replaces another",
            put_header(
                &retired.server,
                &token,
                id,
                header_upload(from, to, &"ab".repeat(32), &new_header),
            )
            .await,
            None,
        ),
    ] {
        let (status, body) = refused;
        let (expected, says) = error.unwrap_or((StatusCode::CONFLICT, ""));
        assert_eq!(status, expected, "{what}: {body}");
        assert!(
            body["error"].as_str().unwrap_or_default().contains(says),
            "{what}: {body}"
        );
    }
    retired.assert_left_to_rekey(3);
}

/// A whole file with a new header and the very same payload is a header re-key, and fine.
async fn a_whole_file_with_a_new_header_and_the_same_payload_is_accepted(backend: Backend) {
    let retired = retired_alice(backend).await;
    let token = token(&retired.server, &retired.ana, 0).await;
    let page = retired.rekey_queue(&token).await;
    let to = page["key_set"]["id"].as_i64().unwrap();
    let small = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "attachment" && i["size"].as_i64().unwrap() < 1000)
        .unwrap();
    let from = small["key_set"].as_i64().unwrap();
    let small_old = retired.tip.files["attachment"]
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .find(|f| f.len() < 1000)
        .unwrap();
    let small_header = Header::parse(&small_old).unwrap();
    let mut rekeyed = retired.rewrap_for_bob(&small_header);
    rekeyed.extend_from_slice(&small_old[small_header.len()..]);
    let small_id = small["id"].as_str().unwrap();
    let (status, body) = put_sealed(&retired.server, &token, small_id, from, to, rekeyed).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["mode"], "header");
    retired.assert_left_to_rekey(2);
}

/// Not without a confirmation: the analyst first sees whom the tips would be sealed to, and
/// nothing is re-keyed.
async fn review_rekey_shows_the_new_recipients_and_waits_for_yes(backend: Backend) {
    let retired = retired_alice(backend).await;
    let dir = retired.review_dir();
    let identity = retired.deployment.identity_file("alice");
    let unconfirmed = review_rekey(&dir, &identity, false);
    assert!(!unconfirmed.status.success());
    let shown = String::from_utf8_lossy(&unconfirmed.stdout);
    let bob_fingerprint = fingerprint(&retired.bob);
    assert!(shown.contains(&bob_fingerprint[..16]), "{shown}");
    assert!(
        String::from_utf8_lossy(&unconfirmed.stderr).contains("--yes"),
        "{}",
        String::from_utf8_lossy(&unconfirmed.stderr)
    );
    retired.assert_left_to_rekey(3);
}

/// `tipbox review rekey` gives every item a new header: bob opens them (in process and with
/// the stock `age` CLI), alice no longer does, and every payload is the one stored before,
/// byte for byte. A second run finds nothing to do.
async fn review_rekey_gives_every_item_a_new_header(backend: Backend) {
    let retired = retired_alice(backend).await;
    let dir = retired.review_dir();
    let out = review_rekey_ok(&dir, &retired.deployment.identity_file("alice"));
    assert!(out.contains("re-keyed 3 item(s)"), "{out}");
    assert!(out.contains("3 with a new header"), "{out}");
    let out = review_rekey_ok(&dir, &retired.deployment.identity_file("alice"));
    assert!(out.contains("nothing needs re-keying"), "{out}");

    let after = exported_tips(&retired.deployment);
    let tip = &after[&retired.tip_id];
    assert_eq!(tip.labels, labels(&["bob"]));
    let (bob_file, alice_file) = (
        retired.deployment.identity_file("bob"),
        retired.deployment.identity_file("alice"),
    );
    for path in tip.files.values().flatten() {
        let file = std::fs::read(path).unwrap();
        assert!(
            try_decrypt(&retired.bob, &file).is_some(),
            "bob opens {path:?}"
        );
        assert!(
            try_decrypt(&retired.alice, &file).is_none(),
            "alice no longer opens {path:?}"
        );
        assert!(age_cli_opens(&bob_file, path));
        assert!(!age_cli_opens(&alice_file, path));
    }
    assert_eq!(
        Retired::payloads(tip),
        Retired::payloads(&retired.tip),
        "only headers changed"
    );
    assert_eq!(
        open_report(&age_cli_decrypt(&bob_file, &tip.files["report"][0])).0,
        "an old tip"
    );
    let attachments: Vec<Vec<u8>> = tip.files["attachment"]
        .iter()
        .map(|p| try_decrypt(&retired.bob, &std::fs::read(p).unwrap()).unwrap())
        .collect();
    assert!(retired.attachments.iter().all(|a| attachments.contains(a)));
    retired.assert_left_to_rekey(0);
}

/// Every key change and every re-key is in an intact audit trail, each re-key by its analyst.
async fn every_key_change_and_rekey_is_audited(backend: Backend) {
    let retired = retired_alice(backend).await;
    retired.rekey_with_alice();
    let verified = retired.deployment.tipbox_ok(&["audit", "verify"]);
    assert!(verified.contains("intact"), "{verified}");
    let entries = retired.deployment.audit_entries().await;
    let count = |action: &str| entries.iter().filter(|e| e.action == action).count();
    assert_eq!(count("key.add"), 2);
    assert_eq!(count("key.retire"), 1);
    assert_eq!(count("item.rekey"), 3);
    assert!(
        entries
            .iter()
            .filter(|e| e.action == "item.rekey")
            .all(|e| e.actor == "ana")
    );
}

on_both_backends!(
    retiring_a_key_says_what_stays_readable,
    a_retired_key_opens_its_tips_until_they_are_rekeyed,
    the_rekey_queue_offers_new_headers_for_a_retired_key,
    the_api_takes_only_a_new_header_for_the_current_key_set,
    a_whole_file_with_a_new_header_and_the_same_payload_is_accepted,
    review_rekey_shows_the_new_recipients_and_waits_for_yes,
    review_rekey_gives_every_item_a_new_header,
    every_key_change_and_rekey_is_audited,
);

/// A tip sealed to alice and bob; then alice's key is revoked through the admin API (after a
/// compromise) by the admin root.
struct Revoked {
    deployment: Deployment,
    alice: age::x25519::Identity,
    bob: age::x25519::Identity,
    server: Server,
    root_token: String,
    old_tip: String,
    old_message: Vec<u8>,
    /// The API's answer to the revocation.
    answer: serde_json::Value,
}

async fn revoked_alice(backend: Backend) -> Revoked {
    let deployment = deployment(backend, "");
    let alice = deployment.add_reviewer("alice");
    let bob = deployment.add_reviewer("bob");
    let root = add_analyst(&deployment, "root", "admin");
    let server = deployment.start();
    assert_eq!(
        submit_text(&server, "before the compromise").await,
        StatusCode::OK
    );
    let (old_tip, tip) = exported_tips(&deployment).into_iter().next().unwrap();
    assert_eq!(tip.labels, labels(&["alice", "bob"]));
    let old_message = std::fs::read(&tip.files["report"][0]).unwrap();
    let root_token = token(&server, &root, 0).await;
    let (status, answer) = api_call(
        &server,
        &root_token,
        reqwest::Method::POST,
        "/api/v1/keys/alice/revoke",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    Revoked {
        deployment,
        alice,
        bob,
        server,
        root_token,
        old_tip,
        old_message,
        answer,
    }
}

/// The API's answer lists what alice can still open, and warns that one key is left.
async fn revoking_through_the_api_lists_what_the_key_still_opens(backend: Backend) {
    let revoked = revoked_alice(backend).await;
    let answer = &revoked.answer;
    assert_eq!(answer["key"]["state"], "revoked");
    assert_eq!(
        answer["tips_still_open"],
        serde_json::json!([revoked.old_tip])
    );
    assert_eq!(answer["active_keys"], 1);
    assert!(answer["warnings"][0].as_str().unwrap().contains("only one"));
}

/// The very next submission is sealed to bob alone.
async fn after_a_revocation_the_next_submission_is_sealed_to_the_rest(backend: Backend) {
    let revoked = revoked_alice(backend).await;
    assert_eq!(
        submit_text(&revoked.server, "after the compromise").await,
        StatusCode::OK
    );
    let tips = exported_tips(&revoked.deployment);
    let new_tip = tips.keys().find(|t| **t != revoked.old_tip).unwrap();
    assert_eq!(tips[new_tip].labels, labels(&["bob"]));
    let file = std::fs::read(&tips[new_tip].files["report"][0]).unwrap();
    assert!(try_decrypt(&revoked.alice, &file).is_none());
    assert_eq!(
        open_report(&try_decrypt(&revoked.bob, &file).unwrap()).0,
        "after the compromise"
    );
}

/// `keys status` lists the tips a revoked key still opens (their items need a fresh
/// encryption).
async fn keys_status_lists_what_a_revoked_key_still_opens(backend: Backend) {
    let revoked = revoked_alice(backend).await;
    let status = status_json(&revoked.deployment);
    assert_eq!(status["needs_rekey"]["revoked"]["items"], 1);
    assert_eq!(
        status["revoked_keys"][0]["tips_still_open"],
        serde_json::json!([revoked.old_tip])
    );
    let text = revoked.deployment.tipbox_ok(&["keys", "status"]);
    assert!(text.contains(&revoked.old_tip), "{text}");
}

/// bob is the last active key: it cannot be retired, on the command line or the API.
async fn the_last_active_key_cannot_be_retired(backend: Backend) {
    let revoked = revoked_alice(backend).await;
    let refused = revoked.deployment.tipbox(&["keys", "retire", "bob"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("last active reviewer key"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let (status, body) = api_call(
        &revoked.server,
        &revoked.root_token,
        reqwest::Method::POST,
        "/api/v1/keys/bob/retire",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let keys: serde_json::Value =
        serde_json::from_str(&revoked.deployment.tipbox_ok(&["keys", "list", "--json"])).unwrap();
    assert_eq!(keys[1]["state"], "active", "{keys}");
}

/// A new header would not do: alice may have kept the old one. The queue asks for a fresh
/// encryption, and a header is refused.
async fn a_revoked_key_calls_for_a_fresh_encryption(backend: Backend) {
    let revoked = revoked_alice(backend).await;
    let ana = add_analyst(&revoked.deployment, "ana", "analyst");
    let ana_token = token(&revoked.server, &ana, 0).await;
    let page = api_get(&revoked.server, &ana_token, "/api/v1/rekey").await;
    assert_eq!(
        page["remaining"]["payload"], 1,
        "the report of the tip received before"
    );
    let item = &page["items"][0];
    assert_eq!(item["mode"], "payload");
    assert!(item["header"].is_null());
    let body = header_upload(
        item["key_set"].as_i64().unwrap(),
        page["key_set"]["id"].as_i64().unwrap(),
        "00",
        b"",
    );
    let (status, body) = put_header(
        &revoked.server,
        &ana_token,
        item["id"].as_str().unwrap(),
        body,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("revoked"),
        "{body}"
    );
}

/// bob's holder re-keys: a fresh encryption under a new file key, which alice cannot open even
/// with her copy of the old header; what is stored is the new file.
async fn review_rekey_encrypts_afresh_what_a_revoked_key_opened(backend: Backend) {
    let revoked = revoked_alice(backend).await;
    let ana = add_analyst(&revoked.deployment, "ana", "analyst");
    let dir = review_dir_of(&revoked.deployment, &revoked.server, &ana, &revoked.bob);
    let out = review_rekey_ok(&dir, &revoked.deployment.identity_file("bob"));
    assert!(out.contains("1 encrypted afresh"), "{out}");

    let after = exported_tips(&revoked.deployment);
    assert_eq!(after[&revoked.old_tip].labels, labels(&["bob"]));
    let path = &after[&revoked.old_tip].files["report"][0];
    let new_message = std::fs::read(path).unwrap();
    let (alice, bob) = (&revoked.alice, &revoked.bob);
    assert_eq!(
        open_report(&try_decrypt(bob, &new_message).unwrap()).0,
        "before the compromise"
    );
    assert!(age_cli_opens(
        &revoked.deployment.identity_file("bob"),
        path
    ));
    assert!(try_decrypt(alice, &new_message).is_none());
    assert!(!age_cli_opens(
        &revoked.deployment.identity_file("alice"),
        path
    ));
    let old_message = &revoked.old_message;
    let old_header = Header::parse(old_message).unwrap();
    let new_header = Header::parse(&new_message).unwrap();
    let (old_payload, new_payload) = (
        &old_message[old_header.len()..],
        &new_message[new_header.len()..],
    );
    assert_eq!(old_payload.len(), new_payload.len());
    assert_ne!(old_payload, new_payload);
    assert_ne!(old_payload[..16], new_payload[..16], "a fresh nonce");
    let mut spliced = old_header.as_bytes().to_vec();
    spliced.extend_from_slice(new_payload);
    assert!(try_decrypt(alice, &spliced).is_none());
    // Alice's old header still opens the old payload — which the item no longer holds.
    assert!(try_decrypt(alice, old_message).is_some());
    let store = revoked.deployment.store().await;
    let item_id = path.file_stem().unwrap().to_str().unwrap();
    assert_eq!(stored_item(&store, item_id).await, new_message);
    store.close().await;

    let status = status_json(&revoked.deployment);
    assert_eq!(status["needs_rekey"]["revoked"]["items"], 0);
    assert_eq!(
        status["revoked_keys"][0]["tips_still_open"],
        serde_json::json!([])
    );
}

on_both_backends!(
    revoking_through_the_api_lists_what_the_key_still_opens,
    after_a_revocation_the_next_submission_is_sealed_to_the_rest,
    keys_status_lists_what_a_revoked_key_still_opens,
    the_last_active_key_cannot_be_retired,
    a_revoked_key_calls_for_a_fresh_encryption,
    review_rekey_encrypts_afresh_what_a_revoked_key_opened,
);

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

/// alice, bob and carol's keys; served.
fn three_reviewers(backend: Backend) -> (Deployment, Server) {
    let deployment = deployment(backend, "");
    deployment.add_reviewer("alice");
    deployment.add_reviewer("bob");
    deployment.add_reviewer("carol");
    let server = deployment.start();
    (deployment, server)
}

/// A submission already being received when a key of its set is retired is committed as it
/// was sealed, and listed for re-keying.
async fn a_submission_in_flight_when_a_key_is_retired_is_committed(backend: Backend) {
    let (deployment, server) = three_reviewers(backend);
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
        2
    );
}

/// One whose key set lost a revoked key is refused — nothing is stored — and the source is
/// asked to send it again; sent again, it is sealed to the keys left.
async fn a_submission_in_flight_when_a_key_is_revoked_is_refused(backend: Backend) {
    let (deployment, server) = three_reviewers(backend);
    deployment.tipbox_ok(&["keys", "retire", "carol"]);
    let before = deployment.tables().await;
    let (status, page) = submit_in_two_parts(&deployment, &server, "revoked meanwhile", || {
        deployment.tipbox_ok(&["keys", "revoke", "alice"]);
    })
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{page}");
    assert!(
        page.contains("keys changed while you were sending"),
        "{page}"
    );
    let after = deployment.tables().await;
    for table in ["tips", "items", "item_chunks"] {
        assert_eq!(
            after[table], before[table],
            "nothing of it is stored in {table}"
        );
    }
    assert_eq!(submit_text(&server, "sent again").await, StatusCode::OK);
    let tips = exported_tips(&deployment);
    assert_eq!(tips.len(), 1);
    assert!(tips.values().all(|t| t.labels == labels(&["bob"])));
}

on_both_backends!(
    a_submission_in_flight_when_a_key_is_retired_is_committed,
    a_submission_in_flight_when_a_key_is_revoked_is_refused,
);

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
        submit_text(&second, "via the second node, before").await,
        StatusCode::OK
    );

    // Through the first node's admin API: add bob, retire alice.
    let bob = age::x25519::Identity::generate();
    let root_token = token(&first, &root, 0).await;
    let (status, added) = api_call(
        &first,
        &root_token,
        reqwest::Method::POST,
        "/api/v1/keys",
        Some(serde_json::json!({ "recipient": bob.to_public().to_string(), "label": "bob", "owner": "Bob Example" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(added["key"]["owner"], "Bob Example");
    let (status, retired) = api_call(
        &first,
        &root_token,
        reqwest::Method::POST,
        "/api/v1/keys/alice/retire",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{retired}");
    assert!(retired["keyring_version"].as_i64() > added["keyring_version"].as_i64());

    // At once, the second node seals to bob alone.
    assert_eq!(
        submit_text(&second, "via the second node, after").await,
        StatusCode::OK
    );
    let store = deployment.store().await;
    let mut found = BTreeMap::new();
    for item in store.list_items().await.unwrap() {
        if item.kind != "report" {
            continue;
        }
        let file = stored_item(&store, &item.item_id).await;
        let text = try_decrypt(&bob, &file)
            .or_else(|| try_decrypt(&alice, &file))
            .unwrap();
        found.insert(
            open_report(&text).0,
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
    let list = api_get(&first, &root_token, "/api/v1/keys").await;
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
    assert_eq!(submit_text(&server, "with bob").await, StatusCode::OK);
    deployment
        .execute_sql("UPDATE keyring SET version = 1, key_set_id = 1")
        .await;
    assert_eq!(submit_text(&server, "as restored").await, StatusCode::OK);
    let tips = exported_tips(&deployment);
    let sets: BTreeSet<BTreeSet<String>> = tips.values().map(|t| t.labels.clone()).collect();
    assert_eq!(
        sets,
        BTreeSet::from([labels(&["bob"]), labels(&["alice"])]),
        "the second tip is sealed to the restored key set"
    );
}
