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

use std::path::PathBuf;

use reqwest::StatusCode;

use crate::support::analyst::{
    Analyst, add_analyst, api_call, api_get, fingerprint, put_sealed, review, review_login,
    review_ok, review_pull, review_pull_output, review_rekey, review_trust, sealed_item, token,
};
use crate::support::web::{desk_sign_in, form, get, hidden_csrf};
use crate::support::{
    Backend, CommitmentKey, Deployment, SealedCommitments, Server, on_both_backends, open_report,
    plaintext_len, submit_message, submit_ok, tip_form, try_decrypt,
};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
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

/// `review pull` asked for every item: re-keying downloads items too, and counts as pulling them.
const ALL: &[&str] = &["--all"];

/// Who made the entries of the audit trail that record `action`.
async fn audited(deployment: &Deployment, action: &str) -> Vec<String> {
    deployment
        .audit_entries()
        .await
        .into_iter()
        .filter(|e| e.action == action)
        .map(|e| e.actor)
        .collect()
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
    submit_ok(
        &server,
        tip_form("an old tip", &[("evidence.txt", b"the evidence".to_vec())]),
    )
    .await;
    let dir = deployment.path().join("ana-review");
    review_login(&dir, &server, &ana, 0);
    let identity = deployment.identity_file("alice");

    // The keyring changes: bob (a real reviewer) and mallory (the server's own key, whose label
    // hides a bidirectional override) are added, and alice is retired.
    let bob = deployment.new_identity("bob");
    let mallory = deployment.new_identity("mallory");
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
        let out = review_rekey(&dir, &identity, yes);
        assert!(!out.status.success());
        let why = text(&out.stderr);
        assert!(why.contains("tipbox review keys trust"), "{why}");
    }

    // The analyst pins alice and bob, not mallory's key.
    review_trust(&dir, &alice, "alice");
    review_trust(&dir, &bob, "bob");
    let mallory_fingerprint = fingerprint(&mallory);
    for revoke in [false, true] {
        if revoke {
            deployment.tipbox_ok(&["keys", "revoke", "alice"]);
        }
        for yes in [true, false] {
            let out = review_rekey(&dir, &identity, yes);
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
    assert_eq!(items.len(), 2, "the report and the attachment");
    for (kind, file) in &items {
        assert!(try_decrypt(&mallory, file).is_none(), "{kind}");
        assert!(try_decrypt(&bob, file).is_none(), "{kind}");
        assert!(try_decrypt(&alice, file).is_some(), "{kind}");
    }
}
on_both_backends!(an_untrusted_key_gets_nothing);

/// Three reviewers' keys, and an analyst's review client that trusts none of them yet.
struct ReviewKeys {
    home: tempfile::TempDir,
    /// The review client's configuration directory.
    dir: PathBuf,
    alice: age::x25519::Identity,
    bob: age::x25519::Identity,
    carol: age::x25519::Identity,
}

fn three_untrusted_keys() -> ReviewKeys {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("review");
    ReviewKeys {
        home,
        dir,
        alice: age::x25519::Identity::generate(),
        bob: age::x25519::Identity::generate(),
        carol: age::x25519::Identity::generate(),
    }
}

impl ReviewKeys {
    /// `tipbox review keys list`, which must succeed; what it said.
    fn list(&self) -> String {
        review_ok(&self.dir, &["keys", "list"], "")
    }

    /// `tipbox review keys ARGS`, which may fail.
    fn run(&self, args: &[&str], stdin: &str) -> std::process::Output {
        review(&self.dir, &[&["keys"][..], args].concat(), stdin)
    }
}

/// `tipbox review keys trust` takes a key only with its full fingerprint: without a
/// confirmation (no terminal here) or with a wrong, short or malformed fingerprint, the key is
/// shown in full and not trusted.
#[test]
fn review_keys_trust_takes_only_the_full_fingerprint() {
    let keys = three_untrusted_keys();
    let alice_recipient = keys.alice.to_public().to_string();
    assert!(keys.list().contains("no trusted keys yet"));
    let unconfirmed = keys.run(&["trust", &alice_recipient, "--label", "alice"], "yes\n");
    assert!(!unconfirmed.status.success());
    assert!(text(&unconfirmed.stdout).contains(&fingerprint(&keys.alice)));
    assert!(text(&unconfirmed.stderr).contains("--fingerprint"));
    for wrong in [
        fingerprint(&keys.bob),
        fingerprint(&keys.alice)[..16].to_owned(),
        "zz".repeat(32),
    ] {
        let out = keys.run(
            &[
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
    assert!(keys.list().contains("no trusted keys yet"));
}

/// A fingerprint asserted in full (in any case, grouped as people read it out) trusts the key;
/// its label loses its control and formatting characters; the list of trusted keys is the
/// analyst's alone to read.
#[test]
fn review_keys_trust_takes_a_grouped_fingerprint_and_cleans_the_label() {
    let keys = three_untrusted_keys();
    let grouped: String = fingerprint(&keys.alice)
        .to_uppercase()
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap().to_owned())
        .collect::<Vec<_>>()
        .join(" ");
    review_ok(
        &keys.dir,
        &[
            "keys",
            "trust",
            &keys.alice.to_public().to_string(),
            "--label",
            "Alice\u{202E}txt.exe\u{7}",
            "--fingerprint",
            &grouped,
        ],
        "",
    );
    let listed = keys.list();
    assert!(listed.contains(&fingerprint(&keys.alice)), "{listed}");
    assert!(listed.contains("Alicetxt.exe"), "{listed}");
    assert!(!listed.contains('\u{202E}') && !listed.contains('\u{7}'));
    use std::os::unix::fs::PermissionsExt;
    let file = keys.dir.join("trusted-keys.json");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

/// A key file as in keys/: its first comment line is the label.
#[test]
fn review_keys_trust_reads_a_key_file() {
    let keys = three_untrusted_keys();
    let carol_file = keys.home.path().join("carol.age");
    std::fs::write(
        &carol_file,
        format!("# Carol Example (reviewer)\n{}\n", keys.carol.to_public()),
    )
    .unwrap();
    review_ok(
        &keys.dir,
        &[
            "keys",
            "trust",
            carol_file.to_str().unwrap(),
            "--fingerprint",
            &fingerprint(&keys.carol),
        ],
        "",
    );
    assert!(keys.list().contains("Carol Example (reviewer)"));
}

/// A private key is refused, with the reason.
#[test]
fn review_keys_trust_refuses_a_private_key() {
    use age::secrecy::ExposeSecret;
    let keys = three_untrusted_keys();
    let private = keys.run(
        &[
            "trust",
            keys.bob.to_string().expose_secret(),
            "--label",
            "bob",
        ],
        "",
    );
    assert!(!private.status.success());
    assert!(text(&private.stderr).contains("PRIVATE key"));
}

/// The organisation's keys file: one recipient per line, each labelled by the comment before
/// it; keys trusted already stay as they are. A file with a line that is no recipient is
/// refused whole.
#[test]
fn review_keys_import_reads_an_organisation_s_keys_file() {
    let keys = three_untrusted_keys();
    review_trust(&keys.dir, &keys.alice, "alice");
    review_trust(&keys.dir, &keys.carol, "carol");
    let org = keys.home.path().join("org-keys.txt");
    std::fs::write(
        &org,
        format!(
            "# Alice Example (lead reviewer)\n{}\n\n# Bob Example\n{}\n",
            keys.alice.to_public(),
            keys.bob.to_public()
        ),
    )
    .unwrap();
    let imported = keys.run(&["import", org.to_str().unwrap()], "");
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    let said = text(&imported.stdout);
    assert!(
        said.contains("already trusted") && said.contains("1 key(s) of 2"),
        "{said}"
    );
    let listed = keys.list();
    for identity in [&keys.alice, &keys.bob, &keys.carol] {
        assert!(listed.contains(&fingerprint(identity)), "{listed}");
    }
    assert!(listed.contains("Bob Example"));
    std::fs::write(&org, "# Dave\nage1notakey\n").unwrap();
    assert!(
        !keys
            .run(&["import", org.to_str().unwrap()], "")
            .status
            .success()
    );
}

/// Untrusting removes a key; an unknown fingerprint is refused.
#[test]
fn review_keys_untrust_removes_a_key() {
    let keys = three_untrusted_keys();
    review_trust(&keys.dir, &keys.bob, "bob");
    review_ok(&keys.dir, &["keys", "untrust", &fingerprint(&keys.bob)], "");
    assert!(!keys.list().contains(&fingerprint(&keys.bob)));
    assert!(
        !keys
            .run(&["untrust", &fingerprint(&keys.bob)], "")
            .status
            .success()
    );
}

/// ana watching the reviewer keys of a deployment with one tip, sealed to alice: signed in to
/// the review client and to the desk.
struct Watching {
    deployment: Deployment,
    alice: age::x25519::Identity,
    ana: Analyst,
    server: Server,
    /// ana's review client.
    dir: PathBuf,
    /// The desk session's `Cookie` header value.
    cookie: String,
}

async fn watching_the_keys(backend: Backend) -> Watching {
    let deployment = Deployment::new(backend, "");
    let alice = deployment.add_reviewer("alice");
    let ana = add_analyst(&deployment, "ana", "analyst");
    let server = deployment.start();
    submit_message(&server, "a tip").await;
    let dir = deployment.path().join("ana-review");
    review_login(&dir, &server, &ana, -1);
    let (cookie, _) = desk_sign_in(&server, &ana, 0).await;
    Watching {
        deployment,
        alice,
        ana,
        server,
        dir,
        cookie,
    }
}

impl Watching {
    /// `tipbox review pull --all` with alice's identity, which must succeed; what it said.
    fn pull(&self) -> String {
        let identity = self.deployment.identity_file("alice");
        let out = self.deployment.path().join("out1");
        review_pull(&self.dir, &identity, &out, ALL)
    }

    /// The desk's queue page.
    async fn queue_page(&self) -> String {
        get(
            &format!("{}/queue", self.server.analyst),
            Some(&self.cookie),
        )
        .await
        .text()
        .await
        .unwrap()
    }

    /// The id of the key set new tips are sealed to, from `tipbox keys status`.
    fn current_key_set(&self) -> String {
        let keys: serde_json::Value =
            serde_json::from_str(&self.deployment.tipbox_ok(&["keys", "status", "--json"]))
                .unwrap();
        keys["current_key_set"].as_i64().unwrap().to_string()
    }

    /// Acknowledges on the desk that the analyst saw `key_set`, with the form token `csrf`.
    async fn acknowledge(&self, csrf: &str, key_set: &str) -> reqwest::Response {
        form(
            &format!("{}/keys/acknowledge", self.server.analyst),
            Some(&self.cookie),
            &[("csrf", csrf), ("key_set", key_set)],
        )
        .await
    }
}

/// `review pull` lists the keys on the first look; a second one, with nothing changed, says
/// nothing of them.
async fn review_pull_lists_the_keys_on_the_first_look(backend: Backend) {
    let watching = watching_the_keys(backend).await;
    assert!(watching.pull().contains(&fingerprint(&watching.alice)));
    let again = watching.pull();
    assert!(!again.contains("changed"), "{again}");
}

/// The desk, on first sign-in, lists the keys new tips are sealed to, until the analyst
/// acknowledges them with the session's CSRF token.
async fn the_desk_lists_the_keys_until_they_are_acknowledged(backend: Backend) {
    let watching = watching_the_keys(backend).await;
    let queue = watching.queue_page().await;
    assert!(queue.contains("id=\"key-change\""), "{queue}");
    assert!(queue.contains(&fingerprint(&watching.alice)));
    let csrf = hidden_csrf(&queue);
    let first_set = watching.current_key_set();
    let forged = watching.acknowledge("wrong", &first_set).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let acknowledged = watching.acknowledge(&csrf, &first_set).await;
    assert_eq!(acknowledged.status(), StatusCode::SEE_OTHER);
    let queue = watching.queue_page().await;
    assert!(!queue.contains("id=\"key-change\""));
}

/// ana has pulled and acknowledged the keys; then an admin adds bob (with a disguising label)
/// and retires alice.
struct KeysChanged {
    watching: Watching,
    bob: age::x25519::Identity,
}

async fn keys_changed(backend: Backend) -> KeysChanged {
    let watching = watching_the_keys(backend).await;
    watching.pull();
    let csrf = hidden_csrf(&watching.queue_page().await);
    let first_set = watching.current_key_set();
    let acknowledged = watching.acknowledge(&csrf, &first_set).await;
    assert_eq!(acknowledged.status(), StatusCode::SEE_OTHER);
    let deployment = &watching.deployment;
    let bob = deployment.new_identity("bob");
    deployment.tipbox_ok(&[
        "keys",
        "add",
        &bob.to_public().to_string(),
        "--label",
        "bob\u{202E}evil",
    ]);
    deployment.tipbox_ok(&["keys", "retire", "alice"]);
    KeysChanged { watching, bob }
}

/// `review pull` says once that the keys changed since the analyst last looked, and which were
/// added (not trusted, the label cleaned) and removed, with full fingerprints.
async fn review_pull_says_which_keys_changed(backend: Backend) {
    let KeysChanged { watching, bob } = keys_changed(backend).await;
    let said = watching.pull();
    assert!(said.contains("changed since you last looked"), "{said}");
    let added = said.lines().find(|l| l.contains("added:")).unwrap();
    assert!(added.contains(&fingerprint(&bob)), "{said}");
    assert!(
        added.contains("bobevil") && added.contains("NOT trusted"),
        "{said}"
    );
    let removed = said.lines().find(|l| l.contains("removed:")).unwrap();
    assert!(removed.contains(&fingerprint(&watching.alice)), "{said}");
    let again = watching.pull();
    assert!(!again.contains("changed"), "{again}");
}

/// Any analyst reads the current key set from the API.
async fn any_analyst_reads_the_current_key_set(backend: Backend) {
    let KeysChanged { watching, bob } = keys_changed(backend).await;
    let ana_token = token(&watching.server, &watching.ana, 1).await;
    let current = api_get(&watching.server, &ana_token, "/api/v1/keys/current").await;
    assert_eq!(
        current["key_set"]["keys"][0]["fingerprint"],
        fingerprint(&bob)
    );
    assert_eq!(current["key_set"]["keys"].as_array().unwrap().len(), 1);
}

/// The desk shows which keys were added and removed, labels cleaned, until the analyst
/// acknowledges the change.
async fn the_desk_shows_a_change_of_keys_until_it_is_acknowledged(backend: Backend) {
    let KeysChanged { watching, bob } = keys_changed(backend).await;
    let queue = watching.queue_page().await;
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
    assert!(removed.contains(&fingerprint(&watching.alice)), "{banner}");
    let csrf = hidden_csrf(&queue);
    let new_set = watching.current_key_set();
    let acknowledged = watching.acknowledge(&csrf, &new_set).await;
    assert_eq!(acknowledged.status(), StatusCode::SEE_OTHER);
    let queue = watching.queue_page().await;
    assert!(!queue.contains("id=\"key-change\""));
}

on_both_backends!(
    review_pull_lists_the_keys_on_the_first_look,
    the_desk_lists_the_keys_until_they_are_acknowledged,
    review_pull_says_which_keys_changed,
    any_analyst_reads_the_current_key_set,
    the_desk_shows_a_change_of_keys_until_it_is_acknowledged,
);

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

/// A tip (a report — message and facts — and an attachment) sealed to alice and bob, and
/// alice's key revoked; then eve, an analyst who holds no reviewer key, replaces every item of
/// the tip by a fresh encryption of the same length to bob's key — the report carrying a
/// commitment key of the forger's own. The server accepts each: it cannot see plaintext, and a
/// fresh encryption is what a revoked key calls for. ana is an honest analyst.
struct Forged {
    deployment: Deployment,
    ana: Analyst,
    server: Server,
    tip_id: String,
    report_id: String,
    attachment_id: String,
}

async fn forged_by_eve(backend: Backend) -> Forged {
    let deployment = Deployment::new(backend, "");
    deployment.add_reviewer("alice");
    let bob = deployment.add_reviewer("bob");
    let ana = add_analyst(&deployment, "ana", "analyst");
    let eve = add_analyst(&deployment, "eve", "analyst");
    let server = deployment.start();
    let evidence = ("evidence.txt", b"the real evidence".to_vec());
    submit_ok(
        &server,
        tip_form("the officers came on Tuesday", &[evidence]),
    )
    .await;
    deployment.tipbox_ok(&["keys", "revoke", "alice"]);

    let eve_token = token(&server, &eve, 0).await;
    let page = api_get(&server, &eve_token, "/api/v1/rekey").await;
    let to = page["key_set"]["id"].as_i64().unwrap();
    let items = page["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    let id_of = |kind: &str| {
        items.iter().find(|i| i["kind"] == kind).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (report_id, attachment_id) = (id_of("report"), id_of("attachment"));
    // The forger's report commits, under a key of its own, to itself and its forged attachment.
    let forger_key = CommitmentKey::generate();
    for item in &items {
        let id = item["id"].as_str().unwrap();
        let length = plaintext_len(&sealed_item(&server, &eve_token, id).await);
        let mut forged = match item["kind"].as_str().unwrap() {
            "report" => serde_json::to_vec(&serde_json::json!({
                "format": "tipbox-report/1",
                "attachments": [{ "item_id": attachment_id, "file_name": "evidence.txt" }],
                "item_commitments": SealedCommitments::new(
                    &forger_key,
                    vec![report_id.clone(), attachment_id.clone()],
                ),
                "message": "forged",
            }))
            .unwrap(),
            _ => b"forged".to_vec(),
        };
        assert!(forged.len() <= length);
        forged.resize(length, b' ');
        let from = item["key_set"].as_i64().unwrap();
        let (status, _) =
            put_sealed(&server, &eve_token, id, from, to, seal_to(&bob, &forged)).await;
        assert_eq!(status, StatusCode::OK, "the server accepts it");
    }
    let tip_id = items[0]["tip"].as_str().unwrap().to_owned();
    Forged {
        deployment,
        ana,
        server,
        tip_id,
        report_id,
        attachment_id,
    }
}

/// The audit trail, the API and the desk say who replaced the forged items.
async fn the_forger_is_named_wherever_the_items_are_shown(backend: Backend) {
    let forged = forged_by_eve(backend).await;
    assert_eq!(audited(&forged.deployment, "item.rekey").await, ["eve"; 2]);
    let ana_token = token(&forged.server, &forged.ana, -1).await;
    let tip_path = format!("/api/v1/tips/{}", forged.tip_id);
    let tip = api_get(&forged.server, &ana_token, &tip_path).await;
    for item in tip["items"].as_array().unwrap() {
        assert_eq!(item["replaced_by"], "eve", "{tip}");
        assert!(item["replaced_at"].is_string());
        assert_eq!(item["commitment"].as_str().unwrap().len(), 64);
    }
    let (cookie, _) = desk_sign_in(&forged.server, &forged.ana, 0).await;
    let page = get(
        &format!("{}/tips/{}", forged.server.analyst, forged.tip_id),
        Some(&cookie),
    )
    .await
    .text()
    .await
    .unwrap();
    let row = &page[page
        .find(&format!("id=\"item-{}\"", forged.report_id))
        .unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("replaced") && row.contains("by eve"), "{row}");
}

/// `review pull` with bob's identity refuses every forged item: nothing is written under the
/// items' names, and it ends with an error naming the items, who replaced them and when.
async fn a_forged_replacement_is_refused(backend: Backend) {
    let forged = forged_by_eve(backend).await;
    let dir = forged.deployment.path().join("ana-review");
    review_login(&dir, &forged.server, &forged.ana, 1);
    let out = forged.deployment.path().join("pulled");
    let identity = forged.deployment.identity_file("bob");
    let pulled = review_pull_output(&dir, &identity, &out, ALL);
    assert!(!pulled.status.success());
    let why = text(&pulled.stderr);
    for id in [&forged.report_id, &forged.attachment_id] {
        let line = why
            .lines()
            .find(|l| l.contains(id.as_str()))
            .unwrap_or_else(|| panic!("{why}"));
        assert!(
            line.contains("FAILED") && line.contains("re-keyed by eve"),
            "{line}"
        );
        assert!(
            out.join(&forged.tip_id)
                .join("unverified")
                .join(id)
                .exists()
        );
    }
    assert!(why.contains("2 item(s) failed"), "{why}");
    let tip_dir = out.join(&forged.tip_id);
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

on_both_backends!(
    the_forger_is_named_wherever_the_items_are_shown,
    a_forged_replacement_is_refused,
);

/// The honest path: a tip (a message and two attachments, one large) with a note and a reply,
/// sealed to alice, bob and carol; ana, who pinned alice's and bob's keys, re-keys it with
/// a new header once carol's key is retired, then encrypts it afresh once alice's is revoked.
struct HonestlyRekeyed {
    deployment: Deployment,
    bob: age::x25519::Identity,
    /// Served (dropping it would stop the server).
    _server: Server,
    /// ana's review client.
    dir: PathBuf,
    tip_id: String,
    big: Vec<u8>,
    /// What the re-keying for the retired key said, then the one for the revoked key.
    new_header: std::process::Output,
    afresh: std::process::Output,
}

async fn honestly_rekeyed(backend: Backend) -> HonestlyRekeyed {
    let deployment = Deployment::new(backend, "");
    let alice = deployment.add_reviewer("alice");
    let bob = deployment.add_reviewer("bob");
    deployment.add_reviewer("carol");
    let ana = add_analyst(&deployment, "ana", "analyst");
    let server = deployment.start();
    let big: Vec<u8> = (0..1_500_000u32).map(|n| (n % 251) as u8).collect();
    let attachments = [("big.bin", big.clone()), ("small.txt", b"small".to_vec())];
    submit_ok(&server, tip_form("an honest tip", &attachments)).await;
    let ana_token = token(&server, &ana, -1).await;
    let page = api_get(&server, &ana_token, "/api/v1/tips").await;
    let tip_id = page["tips"][0]["id"].as_str().unwrap().to_owned();
    for (path, text) in [("notes", "a note"), ("replies", "a reply")] {
        let (status, body) = api_call(
            &server,
            &ana_token,
            reqwest::Method::POST,
            &format!("/api/v1/tips/{tip_id}/{path}"),
            Some(serde_json::json!({ "text": text })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let dir = deployment.path().join("ana-review");
    review_login(&dir, &server, &ana, 0);
    review_trust(&dir, &alice, "alice");
    review_trust(&dir, &bob, "bob");

    deployment.tipbox_ok(&["keys", "retire", "carol"]);
    let new_header = review_rekey(&dir, &deployment.identity_file("alice"), true);
    assert!(new_header.status.success(), "{}", text(&new_header.stderr));
    deployment.tipbox_ok(&["keys", "revoke", "alice"]);
    let afresh = review_rekey(&dir, &deployment.identity_file("bob"), true);
    assert!(afresh.status.success(), "{}", text(&afresh.stderr));
    HonestlyRekeyed {
        deployment,
        bob,
        _server: server,
        dir,
        tip_id,
        big,
        new_header,
        afresh,
    }
}

/// Every item, notes and replies included, gets a new header for the retired key, then a
/// fresh encryption for the revoked one, without a complaint.
async fn an_honest_rekey_reaches_every_item(backend: Backend) {
    let rekeyed = honestly_rekeyed(backend).await;
    let said = text(&rekeyed.new_header.stdout);
    assert!(said.contains("5 with a new header"), "{said}");
    let said = text(&rekeyed.afresh.stdout);
    assert!(said.contains("5 encrypted afresh"), "{said}");
    let complained = text(&rekeyed.afresh.stderr);
    assert!(complained.is_empty(), "{complained}");
}

/// Honestly re-keyed items pass `review pull`'s check, are reported as verified, and hold what
/// was sent; the facts name the items their key commits to.
async fn an_honest_rekey_passes(backend: Backend) {
    let rekeyed = honestly_rekeyed(backend).await;
    let pulled_dir = rekeyed.deployment.path().join("pulled");
    let identity = rekeyed.deployment.identity_file("bob");
    let said = review_pull(&rekeyed.dir, &identity, &pulled_dir, ALL);
    assert_eq!(
        said.matches("re-keyed by ana").count(),
        5,
        "every item: {said}"
    );
    assert_eq!(said.matches("content verified").count(), 5, "{said}");
    let tip_dir = pulled_dir.join(&rekeyed.tip_id);
    assert_eq!(
        std::fs::read_to_string(tip_dir.join("message.txt")).unwrap(),
        "an honest tip"
    );
    assert_eq!(
        std::fs::read(tip_dir.join("attachments/big.bin")).unwrap(),
        rekeyed.big
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
    let facts: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tip_dir.join("facts.json")).unwrap()).unwrap();
    assert_eq!(
        facts["item_commitments"]["items"].as_array().unwrap().len(),
        3,
        "the report and two attachments"
    );
    assert!(
        facts.get("message").is_none(),
        "the message is in message.txt"
    );
}

/// Honestly re-keyed items are still standard age files whose plaintext is unchanged.
async fn honestly_rekeyed_items_are_still_age_files(backend: Backend) {
    let rekeyed = honestly_rekeyed(backend).await;
    for (kind, file) in exported(&rekeyed.deployment) {
        let opened = try_decrypt(&rekeyed.bob, &file).unwrap();
        if kind == "report" {
            assert_eq!(open_report(&opened).0, "an honest tip");
        }
    }
}

on_both_backends!(
    an_honest_rekey_reaches_every_item,
    an_honest_rekey_passes,
    honestly_rekeyed_items_are_still_age_files,
);
