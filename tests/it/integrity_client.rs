//! A seized or compromised server cannot turn the review client against the sources (issue
//! 12, findings 1 and 3), over real sockets, real SQLite files and the real PostgreSQL:
//!
//! - the client seals only to reviewer keys its analyst pinned (`tipbox review keys`): a server
//!   that adds a key of its own and lists every item for re-keying gets nothing re-sealed to it,
//!   `--yes` or not;
//! - `review pull` and the desk say when the reviewer keys changed, and which;
//! - a re-keyed item cannot silently hold something else: a forged replacement of the same
//!   length, which the server must accept, is refused by `review pull`; an honest re-keying
//!   passes its check; the desk marks re-keyed items.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::support::analyst::*;
use crate::support::web::*;
use crate::support::*;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};

fn fingerprint(identity: &age::x25519::Identity) -> String {
    tipbox::keyring::Recipient::parse(&identity.to_public().to_string())
        .unwrap()
        .fingerprint()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `tipbox review keys trust` of a reviewer's key, with the fingerprint the reviewer gave.
fn trust(dir: &Path, identity: &age::x25519::Identity, label: &str) {
    review_ok(
        dir,
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

/// A reviewer key of which only the test holds the private half, written to `<name>.key`, not
/// (yet) in the keyring.
fn reviewer_not_added(deployment: &Deployment, name: &str) -> age::x25519::Identity {
    use age::secrecy::ExposeSecret;
    let identity = age::x25519::Identity::generate();
    std::fs::write(
        deployment.identity_file(name),
        format!("{}\n", identity.to_string().expose_secret()),
    )
    .unwrap();
    identity
}

async fn submit(server: &Server, message: &str, attachments: &[(&str, &[u8])]) {
    let mut form = Form::new().text("message", message.to_owned());
    for (name, bytes) in attachments {
        form = form.part(
            "attachment",
            Part::bytes(bytes.to_vec()).file_name(name.to_string()),
        );
    }
    let response = client()
        .post(format!("{}/submit", server.public))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
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

/// Every stored item, as exported: (kind, file).
fn exported(deployment: &Deployment) -> Vec<(String, Vec<u8>)> {
    let (out, manifest) = deployment.export();
    manifest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["kind"].as_str().unwrap().to_owned(),
                std::fs::read(out.join(item["file"].as_str().unwrap())).unwrap(),
            )
        })
        .collect()
}

/// `tipbox review pull --all` (re-keying downloads items too, and counts as pulling them).
fn pull(dir: &Path, identity: &Path, out: &Path) -> std::process::Output {
    review(
        dir,
        &[
            "pull",
            "--all",
            "--identity",
            identity.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        "",
    )
}

/// `pull`, which must succeed; what it said.
fn pull_ok(dir: &Path, identity: &Path, out: &Path) -> String {
    let pulled = pull(dir, identity, out);
    assert!(pulled.status.success(), "{}", text(&pulled.stderr));
    text(&pulled.stdout)
}

/// The desk's queue page.
async fn queue_page(server: &Server, cookie: &str) -> String {
    get(&format!("{}/queue", server.analyst), Some(cookie))
        .await
        .text()
        .await
        .unwrap()
}

fn rekey(dir: &Path, identity: &Path, yes: bool) -> std::process::Output {
    let mut args = vec!["rekey", "--identity", identity.to_str().unwrap()];
    if yes {
        args.push("--yes");
    }
    review(dir, &args, "")
}

/// How many entries of the audit trail record `action`, and by whom.
async fn audited(deployment: &Deployment, action: &str) -> Vec<String> {
    let store = deployment.store().await;
    let entries = store.audit_entries().await.unwrap();
    store.close().await;
    entries
        .into_iter()
        .filter(|e| e.action == action)
        .map(|e| e.actor)
        .collect()
}

/// Signs in on the desk as a browser would; returns the session cookie.
async fn desk_login(server: &Server, name: &str, a: &Analyst, offset: i64) -> String {
    let base = &server.analyst;
    let login_page = get(&format!("{base}/login"), None).await;
    let (login_cookie, _) = cookie_from(&login_page, "__Host-tipbox_login").unwrap();
    let csrf = hidden_csrf(&login_page.text().await.unwrap());
    let signed_in = form(
        &format!("{base}/login"),
        Some(&format!("__Host-tipbox_login={login_cookie}")),
        &[
            ("csrf", &csrf),
            ("username", name),
            ("password", &a.password),
            ("totp", &code(a, offset)),
        ],
    )
    .await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let (session, _) = cookie_from(&signed_in, "__Host-tipbox_session").unwrap();
    format!("__Host-tipbox_session={session}")
}

/// A server that adds a key of its own (with a label that would disguise itself) and lists
/// every item for re-keying — first for a new header, then, the old key revoked, for a fresh
/// encryption — gets nothing re-sealed to it, `--yes` or not; the refusal names the key's full
/// fingerprint. No item opens with that key afterwards.
async fn an_untrusted_key_gets_nothing(backend: Backend) {
    let deployment = Deployment::new(backend, "");
    let alice = deployment.add_reviewer("alice");
    let ana = add_analyst(&deployment, "ana", "analyst");
    let server = deployment.start();
    submit(&server, "an old tip", &[("evidence.txt", b"the evidence")]).await;
    let dir = deployment.path().join("ana-review");
    review_login(&dir, &server, &ana, 0);
    let identity = deployment.identity_file("alice");

    // The keyring changes: bob (a real reviewer) and mallory (the server's own key, whose label
    // hides a bidirectional override) are added, and alice is retired.
    let bob = reviewer_not_added(&deployment, "bob");
    let mallory = reviewer_not_added(&deployment, "mallory");
    deployment.tipbox_ok(&[
        "keys",
        "add",
        &bob.to_public().to_string(),
        "--label",
        "bob",
    ]);
    deployment.tipbox_ok(&[
        "keys",
        "add",
        &mallory.to_public().to_string(),
        "--label",
        "Bob\u{202E}kcab",
    ]);
    deployment.tipbox_ok(&["keys", "retire", "alice"]);

    // Nothing pinned yet: refused, and told how to pin keys.
    for yes in [true, false] {
        let out = rekey(&dir, &identity, yes);
        assert!(!out.status.success());
        let why = text(&out.stderr);
        assert!(why.contains("tipbox review keys trust"), "{why}");
    }

    // The analyst pins alice and bob, not mallory's key.
    trust(&dir, &alice, "alice");
    trust(&dir, &bob, "bob");
    let mallory_fingerprint = fingerprint(&mallory);
    for revoke in [false, true] {
        if revoke {
            deployment.tipbox_ok(&["keys", "revoke", "alice"]);
        }
        for yes in [true, false] {
            let out = rekey(&dir, &identity, yes);
            assert!(!out.status.success(), "revoke {revoke}, --yes {yes}");
            let why = text(&out.stderr);
            assert!(why.contains("do not trust"), "{why}");
            assert!(
                why.contains(&mallory_fingerprint),
                "the full fingerprint: {why}"
            );
            assert!(why.contains("Bobkcab"), "{why}");
            assert!(!why.contains('\u{202E}'), "{why}");
            assert!(!why.contains(&fingerprint(&bob)), "bob is trusted: {why}");
        }
    }
    assert!(audited(&deployment, "item.rekey").await.is_empty());
    let items = exported(&deployment);
    assert_eq!(items.len(), 3);
    for (kind, file) in &items {
        assert!(try_decrypt(&mallory, file).is_none(), "{kind}");
        assert!(try_decrypt(&bob, file).is_none(), "{kind}");
        assert!(try_decrypt(&alice, file).is_some(), "{kind}");
    }
}
on_both_backends!(an_untrusted_key_gets_nothing);

/// `tipbox review keys`: trusting takes the full fingerprint (asked for, or asserted), labels
/// lose their control and formatting characters, files of one key or of an organisation's
/// keys are read as in keys/README.md, private keys are refused, and untrusting removes a key.
#[test]
fn review_keys_trust_list_untrust_import() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("review");
    let (alice, bob, carol) = (
        age::x25519::Identity::generate(),
        age::x25519::Identity::generate(),
        age::x25519::Identity::generate(),
    );
    let alice_recipient = alice.to_public().to_string();
    let list = || {
        let out = review(&dir, &["keys", "list"], "");
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    assert!(list().contains("no trusted keys yet"));

    // Without a confirmation (no terminal here) or with a wrong, short or malformed fingerprint:
    // shown in full, not trusted.
    let unconfirmed = review(
        &dir,
        &["keys", "trust", &alice_recipient, "--label", "alice"],
        "yes\n",
    );
    assert!(!unconfirmed.status.success());
    assert!(text(&unconfirmed.stdout).contains(&fingerprint(&alice)));
    assert!(text(&unconfirmed.stderr).contains("--fingerprint"));
    for wrong in [
        fingerprint(&bob),
        fingerprint(&alice)[..16].to_owned(),
        "zz".repeat(32),
    ] {
        let out = review(
            &dir,
            &[
                "keys",
                "trust",
                &alice_recipient,
                "--label",
                "alice",
                "--fingerprint",
                &wrong,
            ],
            "",
        );
        assert!(!out.status.success(), "{wrong}");
    }
    assert!(list().contains("no trusted keys yet"));

    // Asserted in full (in any case, grouped as people read it out): trusted, label cleaned.
    let grouped: String = fingerprint(&alice)
        .to_uppercase()
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap().to_owned())
        .collect::<Vec<_>>()
        .join(" ");
    review_ok(
        &dir,
        &[
            "keys",
            "trust",
            &alice_recipient,
            "--label",
            "Alice\u{202E}txt.exe\u{7}",
            "--fingerprint",
            &grouped,
        ],
        "",
    );
    let listed = list();
    assert!(listed.contains(&fingerprint(&alice)), "{listed}");
    assert!(listed.contains("Alicetxt.exe"), "{listed}");
    assert!(!listed.contains('\u{202E}') && !listed.contains('\u{7}'));
    use std::os::unix::fs::PermissionsExt;
    let file = dir.join("trusted-keys.json");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // A key file as in keys/: its first comment line is the label.
    let carol_file = home.path().join("carol.age");
    std::fs::write(
        &carol_file,
        format!("# Carol Example (reviewer)\n{}\n", carol.to_public()),
    )
    .unwrap();
    review_ok(
        &dir,
        &[
            "keys",
            "trust",
            carol_file.to_str().unwrap(),
            "--fingerprint",
            &fingerprint(&carol),
        ],
        "",
    );
    assert!(list().contains("Carol Example (reviewer)"));

    // A private key is refused, with the reason.
    use age::secrecy::ExposeSecret;
    let private = review(
        &dir,
        &[
            "keys",
            "trust",
            bob.to_string().expose_secret(),
            "--label",
            "bob",
        ],
        "",
    );
    assert!(!private.status.success());
    assert!(text(&private.stderr).contains("PRIVATE key"));

    // The organisation's keys file: one recipient per line, each labelled by the comment
    // before it; keys trusted already stay as they are.
    let org = home.path().join("org-keys.txt");
    std::fs::write(
        &org,
        format!(
            "# Alice Example (lead reviewer)\n{alice_recipient}\n\n# Bob Example\n{}\n",
            bob.to_public()
        ),
    )
    .unwrap();
    let imported = review(&dir, &["keys", "import", org.to_str().unwrap()], "");
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    let said = text(&imported.stdout);
    assert!(
        said.contains("already trusted") && said.contains("1 key(s) of 2"),
        "{said}"
    );
    let listed = list();
    for identity in [&alice, &bob, &carol] {
        assert!(listed.contains(&fingerprint(identity)), "{listed}");
    }
    assert!(listed.contains("Bob Example"));
    // A file with a line that is no recipient is refused whole.
    std::fs::write(&org, "# Dave\nage1notakey\n").unwrap();
    assert!(
        !review(&dir, &["keys", "import", org.to_str().unwrap()], "")
            .status
            .success()
    );

    // Untrusted: gone; an unknown fingerprint is refused.
    review_ok(&dir, &["keys", "untrust", &fingerprint(&bob)], "");
    assert!(!list().contains(&fingerprint(&bob)));
    assert!(
        !review(&dir, &["keys", "untrust", &fingerprint(&bob)], "")
            .status
            .success()
    );
}

/// `review pull` and the desk say when the current key set changed since the analyst last
/// looked, and which keys were added and removed, with full fingerprints; the desk until the
/// analyst acknowledges what it showed.
async fn key_set_changes_are_visible(backend: Backend) {
    let deployment = Deployment::new(backend, "");
    let alice = deployment.add_reviewer("alice");
    let ana = add_analyst(&deployment, "ana", "analyst");
    let server = deployment.start();
    submit(&server, "a tip", &[]).await;
    let dir = deployment.path().join("ana-review");
    review_login(&dir, &server, &ana, -1);
    let identity = deployment.identity_file("alice");

    // The first look lists the keys; a second one, with nothing changed, says nothing of them.
    let out = deployment.path().join("out1");
    assert!(pull_ok(&dir, &identity, &out).contains(&fingerprint(&alice)));
    let again = pull_ok(&dir, &identity, &out);
    assert!(!again.contains("changed"), "{again}");

    // The desk, on first sign-in, lists the keys new tips are sealed to.
    let cookie = desk_login(&server, "ana", &ana, 0).await;
    let base = &server.analyst;
    let queue = queue_page(&server, &cookie).await;
    assert!(queue.contains("id=\"key-change\""), "{queue}");
    assert!(queue.contains(&fingerprint(&alice)));
    let csrf = hidden_csrf(&queue);
    let acknowledge = |key_set: String| {
        let (url, cookie, csrf) = (
            format!("{base}/keys/acknowledge"),
            cookie.clone(),
            csrf.clone(),
        );
        async move {
            form(
                &url,
                Some(&cookie),
                &[("csrf", &csrf), ("key_set", &key_set)],
            )
            .await
        }
    };
    let keys: serde_json::Value =
        serde_json::from_str(&deployment.tipbox_ok(&["keys", "status", "--json"])).unwrap();
    let first_set = keys["current_key_set"].as_i64().unwrap().to_string();
    // Not without the session's CSRF token.
    let forged = form(
        &format!("{base}/keys/acknowledge"),
        Some(&cookie),
        &[("csrf", "wrong"), ("key_set", &first_set)],
    )
    .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(acknowledge(first_set).await.status(), StatusCode::SEE_OTHER);
    let queue = queue_page(&server, &cookie).await;
    assert!(!queue.contains("id=\"key-change\""));

    // An admin adds bob (with a disguising label) and retires alice.
    let bob = reviewer_not_added(&deployment, "bob");
    deployment.tipbox_ok(&[
        "keys",
        "add",
        &bob.to_public().to_string(),
        "--label",
        "bob\u{202E}evil",
    ]);
    deployment.tipbox_ok(&["keys", "retire", "alice"]);

    let said = pull_ok(&dir, &identity, &out);
    assert!(said.contains("changed since you last looked"), "{said}");
    let added = said.lines().find(|l| l.contains("added:")).unwrap();
    assert!(added.contains(&fingerprint(&bob)), "{said}");
    assert!(
        added.contains("bobevil") && added.contains("NOT trusted"),
        "{said}"
    );
    let removed = said.lines().find(|l| l.contains("removed:")).unwrap();
    assert!(removed.contains(&fingerprint(&alice)), "{said}");
    let again = pull_ok(&dir, &identity, &out);
    assert!(!again.contains("changed"), "{again}");

    // Any analyst reads the current key set from the API.
    let ana_token = token(&server, &ana, 1).await;
    let (status, current) = api(
        reqwest::Method::GET,
        format!("{base}/api/v1/keys/current"),
        Some(&ana_token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{current}");
    assert_eq!(
        current["key_set"]["keys"][0]["fingerprint"],
        fingerprint(&bob)
    );
    assert_eq!(current["key_set"]["keys"].as_array().unwrap().len(), 1);

    // The desk shows the change until it is acknowledged.
    let queue = queue_page(&server, &cookie).await;
    let banner = &queue[queue.find("id=\"key-change\"").expect("a banner")..];
    let banner = &banner[..banner.find("</section>").unwrap()];
    let added = &banner[banner.find("id=\"keys-added\"").unwrap()..];
    let added = &added[..added.find("</table>").unwrap()];
    assert!(
        added.contains(&fingerprint(&bob)) && added.contains("bobevil"),
        "{banner}"
    );
    assert!(!banner.contains('\u{202E}'));
    let removed = &banner[banner.find("id=\"keys-removed\"").unwrap()..];
    assert!(removed.contains(&fingerprint(&alice)), "{banner}");
    let new_set = current["key_set"]["id"].as_i64().unwrap().to_string();
    assert_eq!(acknowledge(new_set).await.status(), StatusCode::SEE_OTHER);
    let queue = queue_page(&server, &cookie).await;
    assert!(!queue.contains("id=\"key-change\""));
}
on_both_backends!(key_set_changes_are_visible);

/// The plaintext length of a small sealed item (one age chunk): what a forger learns from the
/// stored file's size.
fn plaintext_len(file: &[u8]) -> usize {
    let header = tipbox::rekey::Header::parse(file).unwrap();
    file.len() - header.len() - 16 - 16
}

fn seal_to(identity: &age::x25519::Identity, plaintext: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let recipient = identity.to_public();
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .unwrap();
    let mut out = Vec::new();
    let mut writer = encryptor.wrap_output(&mut out).unwrap();
    writer.write_all(plaintext).unwrap();
    writer.finish().unwrap();
    out
}

async fn download(server: &Server, token: &str, item: &str) -> Vec<u8> {
    client()
        .get(format!("{}/api/v1/items/{item}/sealed", server.analyst))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

/// An analyst who holds no reviewer key replaces every item of a tip sealed to a revoked key
/// by a fresh encryption of the same length to the current key — the facts too, carrying a
/// commitment key of the forger's own. The server accepts each (it cannot see plaintext, and a
/// fresh encryption is what a revoked key calls for), and the desk marks them. `review pull`
/// refuses every one of them: nothing is written under the items' names, and it ends with an
/// error naming the items, who replaced them and when.
async fn a_forged_replacement_is_refused(backend: Backend) {
    let deployment = Deployment::new(backend, "");
    deployment.add_reviewer("alice");
    let bob = deployment.add_reviewer("bob");
    let ana = add_analyst(&deployment, "ana", "analyst");
    let eve = add_analyst(&deployment, "eve", "analyst");
    let server = deployment.start();
    submit(
        &server,
        "the officers came on Tuesday",
        &[("evidence.txt", b"the real evidence")],
    )
    .await;
    deployment.tipbox_ok(&["keys", "revoke", "alice"]);

    let base = &server.analyst;
    let eve_token = token(&server, &eve, 0).await;
    let (_, page) = api(
        reqwest::Method::GET,
        format!("{base}/api/v1/rekey"),
        Some(&eve_token),
        None,
    )
    .await;
    let to = page["key_set"]["id"].as_i64().unwrap();
    let items = page["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 3);
    let id_of = |kind: &str| {
        items.iter().find(|i| i["kind"] == kind).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (message_id, facts_id, attachment_id) =
        (id_of("message"), id_of("facts"), id_of("attachment"));
    // The forger's facts commit, under a key of its own, to its forged message and attachment.
    let forger_key = tipbox::commitment::CommitmentKey::generate();
    for item in &items {
        let id = item["id"].as_str().unwrap();
        let length = plaintext_len(&download(&server, &eve_token, id).await);
        let mut forged = match item["kind"].as_str().unwrap() {
            "facts" => serde_json::to_vec(&serde_json::json!({
                "format": "tipbox-facts/1",
                "attachments": [{ "item_id": attachment_id, "file_name": "evidence.txt" }],
                "item_commitments": tipbox::commitment::SealedCommitments::new(
                    &forger_key,
                    vec![message_id.clone(), facts_id.clone(), attachment_id.clone()],
                ),
            }))
            .unwrap(),
            _ => b"forged".to_vec(),
        };
        assert!(forged.len() <= length);
        forged.resize(length, b' ');
        let file = seal_to(&bob, &forged);
        let response = client()
            .put(format!(
                "{base}/api/v1/items/{id}/sealed?from_key_set={}&to_key_set={to}",
                item["key_set"]
            ))
            .bearer_auth(&eve_token)
            .header("content-type", "application/octet-stream")
            .body(file)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "the server accepts it");
    }
    assert_eq!(audited(&deployment, "item.rekey").await, ["eve"; 3]);

    // The API and the desk say who replaced them.
    let ana_token = token(&server, &ana, -1).await;
    let tip_id = items[0]["tip"].as_str().unwrap();
    let (_, tip) = api(
        reqwest::Method::GET,
        format!("{base}/api/v1/tips/{tip_id}"),
        Some(&ana_token),
        None,
    )
    .await;
    for item in tip["items"].as_array().unwrap() {
        assert_eq!(item["replaced_by"], "eve", "{tip}");
        assert!(item["replaced_at"].is_string());
        assert_eq!(item["commitment"].as_str().unwrap().len(), 64);
    }
    let cookie = desk_login(&server, "ana", &ana, 0).await;
    let page = get(&format!("{base}/tips/{tip_id}"), Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    let row = &page[page.find(&format!("id=\"item-{message_id}\"")).unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("replaced") && row.contains("by eve"), "{row}");

    // The honest analyst pulls with bob's identity: every item refused.
    let dir = deployment.path().join("ana-review");
    review_login(&dir, &server, &ana, 1);
    let out = deployment.path().join("pulled");
    let pulled = pull(&dir, &deployment.identity_file("bob"), &out);
    assert!(!pulled.status.success());
    let why = text(&pulled.stderr);
    for id in [&message_id, &facts_id, &attachment_id] {
        let line = why
            .lines()
            .find(|l| l.contains(id.as_str()))
            .unwrap_or_else(|| panic!("{why}"));
        assert!(
            line.contains("FAILED") && line.contains("re-keyed by eve"),
            "{line}"
        );
        assert!(out.join(tip_id).join("unverified").join(id).exists());
    }
    assert!(why.contains("3 item(s) failed"), "{why}");
    let tip_dir = out.join(tip_id);
    assert!(!tip_dir.join("message.txt").exists());
    assert!(!tip_dir.join("facts.json").exists());
    assert!(!tip_dir.join("attachments").join("evidence.txt").exists());
    assert!(
        std::fs::read_dir(tip_dir.join("attachments"))
            .unwrap()
            .next()
            .is_none()
    );
}
on_both_backends!(a_forged_replacement_is_refused);

/// The honest path: items re-keyed with a new header (a retired key), then encrypted afresh (a
/// revoked key) by the client, notes and replies included, pass `review pull`'s check and are
/// reported as verified; the stock `age` CLI still opens them.
async fn an_honest_rekey_passes(backend: Backend) {
    let deployment = Deployment::new(backend, "");
    deployment.add_reviewer("alice");
    let bob = deployment.add_reviewer("bob");
    deployment.add_reviewer("carol");
    let ana = add_analyst(&deployment, "ana", "analyst");
    let server = deployment.start();
    let big: Vec<u8> = (0..1_500_000u32).map(|n| (n % 251) as u8).collect();
    submit(
        &server,
        "an honest tip",
        &[("big.bin", &big), ("small.txt", b"small")],
    )
    .await;
    let base = &server.analyst;
    let ana_token = token(&server, &ana, -1).await;
    let (_, page) = api(
        reqwest::Method::GET,
        format!("{base}/api/v1/tips"),
        Some(&ana_token),
        None,
    )
    .await;
    let tip_id = page["tips"][0]["id"].as_str().unwrap().to_owned();
    for (path, text) in [("notes", "a note"), ("replies", "a reply")] {
        let (status, body) = api(
            reqwest::Method::POST,
            format!("{base}/api/v1/tips/{tip_id}/{path}"),
            Some(&ana_token),
            Some(serde_json::json!({ "text": text })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let dir = deployment.path().join("ana-review");
    review_login(&dir, &server, &ana, 0);
    let alice: age::x25519::Identity = {
        let text = std::fs::read_to_string(deployment.identity_file("alice")).unwrap();
        text.trim().parse().unwrap()
    };
    trust(&dir, &alice, "alice");
    trust(&dir, &bob, "bob");

    // A new header for the retired key, then a fresh encryption for the revoked one.
    deployment.tipbox_ok(&["keys", "retire", "carol"]);
    let out = rekey(&dir, &deployment.identity_file("alice"), true);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("6 with a new header"),
        "{}",
        text(&out.stdout)
    );
    deployment.tipbox_ok(&["keys", "revoke", "alice"]);
    let out = rekey(&dir, &deployment.identity_file("bob"), true);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("6 encrypted afresh"),
        "{}",
        text(&out.stdout)
    );
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));

    let pulled_dir: PathBuf = deployment.path().join("pulled");
    let said = pull_ok(&dir, &deployment.identity_file("bob"), &pulled_dir);
    assert_eq!(
        said.matches("re-keyed by ana").count(),
        6,
        "every item: {said}"
    );
    assert_eq!(said.matches("content verified").count(), 6, "{said}");
    let tip_dir = pulled_dir.join(&tip_id);
    assert_eq!(
        std::fs::read_to_string(tip_dir.join("message.txt")).unwrap(),
        "an honest tip"
    );
    assert_eq!(
        std::fs::read(tip_dir.join("attachments/big.bin")).unwrap(),
        big
    );
    assert_eq!(
        std::fs::read(tip_dir.join("attachments/small.txt")).unwrap(),
        b"small"
    );
    let note = std::fs::read_dir(tip_dir.join("notes"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let note: serde_json::Value =
        serde_json::from_slice(&std::fs::read(note.path()).unwrap()).unwrap();
    assert_eq!(note["text"], "a note");
    assert!(!tip_dir.join("unverified").exists());
    // The facts name the items their key commits to.
    let facts: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tip_dir.join("facts.json")).unwrap()).unwrap();
    assert_eq!(
        facts["item_commitments"]["items"].as_array().unwrap().len(),
        4
    );
    // Items are still standard age files whose plaintext is unchanged.
    for (kind, file) in exported(&deployment) {
        let opened = try_decrypt(&bob, &file).unwrap();
        if kind == "message" {
            assert_eq!(opened, b"an honest tip");
        }
    }
}
on_both_backends!(an_honest_rekey_passes);
