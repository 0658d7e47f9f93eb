//! Issue 12, the server's side: what a database writer without the server secret, the shipped
//! deployment files and the web layer can no longer do. Receipts, reply recipients and TOTP
//! secrets copied between rows open nothing; the analyst onion is never left without client
//! authorization; the systemd unit lets the hashing threads lower their priority; times about
//! tips are rounded; cookies are session cookies; the build context and base images are pinned
//! down; logs off a terminal are plain text.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use reqwest::StatusCode;

use crate::support::analyst::{
    add_analyst, api_call, code, sealed_item, sign_in, sign_in_text, token,
};
use crate::support::web::{
    CASE_COOKIE, SIGNIN_COOKIE, cookie_from, desk_login_form, desk_sign_in_on, form, get,
    hidden_csrf, post_receipt, post_receipt_on, receipt_form, set_cookies,
};
use crate::support::{
    BINDINGS_MADE_FILE, Backend, Deployment, Lang, ReceiptCode, Server, ServerSecret, SqlValue,
    TIPBOX, on_both_backends, submit_message, submit_tip,
};

/// A tip's stored receipt hash, reply recipient and binding.
async fn tip_row(deployment: &Deployment, id: &str) -> (Vec<u8>, String, Option<Vec<u8>>) {
    let sql = format!("SELECT receipt_hash, reply_recipient, binding FROM tips WHERE id = '{id}'");
    let rows = deployment.query_rows(&sql).await;
    rows.into_iter().next().expect("the tip")
}

/// Posts a receipt with a freshly loaded form: the status, the session cookie if one was set,
/// and the page without its form token (which differs on every load).
async fn receipt_answer(server: &Server, receipt: &str) -> (StatusCode, Option<String>, String) {
    let response = post_receipt(server, receipt, "en").await;
    let status = response.status();
    let session = cookie_from(&response, CASE_COOKIE).map(|(token, _)| token);
    let body = response.text().await.unwrap();
    let body = if body.contains("name=\"csrf\"") {
        body.replace(&hidden_csrf(&body), "")
    } else {
        body
    };
    (status, session, body)
}

/// What a receipt that was never issued gets.
async fn wrong_receipt_answer(server: &Server) -> (StatusCode, Option<String>, String) {
    let wrong = ReceiptCode::generate().words(Lang::En);
    let answer = receipt_answer(server, &wrong).await;
    assert_eq!(answer.0, StatusCode::UNAUTHORIZED);
    assert!(answer.1.is_none());
    answer
}

// --- Finding 2: receipts and reply recipients bound to their tip ---------------------------------

/// A database writer who copies their own receipt hash onto a victim's tip, with or without the
/// reply recipient and the binding, gets the answer a wrong receipt gets; the victim's own
/// receipt still works until then.
async fn a_copied_receipt_opens_nothing_for_its_new_holder(backend: Backend) {
    let deployment = Deployment::new(backend, "");
    deployment.add_reviewer("alice");
    let server = deployment.start();
    let (victim_receipt, victim) = submit_tip(&deployment, &server, "the victim's tip").await;
    let (attacker_receipt, attacker) = submit_tip(&deployment, &server, "the attacker's tip").await;
    let wrong = wrong_receipt_answer(&server).await;
    assert_eq!(
        receipt_answer(&server, &victim_receipt).await.0,
        StatusCode::SEE_OTHER
    );

    let (hash, recipient, binding) = tip_row(&deployment, &attacker).await;
    assert!(binding.is_some(), "new tips are stored bound");
    // The receipt hash is unique: move the attacker's own out of the way first.
    deployment
        .execute_sql_with(
            "UPDATE tips SET receipt_hash = $1 WHERE id = $2",
            vec![SqlValue::Bytes(vec![0]), SqlValue::Text(attacker.clone())],
        )
        .await;
    deployment
        .execute_sql_with(
            "UPDATE tips SET receipt_hash = $1 WHERE id = $2",
            vec![
                SqlValue::Bytes(hash.clone()),
                SqlValue::Text(victim.clone()),
            ],
        )
        .await;
    assert_eq!(receipt_answer(&server, &attacker_receipt).await, wrong);

    // The whole row's receipt, recipient and binding: the binding names the attacker's tip.
    deployment
        .execute_sql_with(
            "UPDATE tips SET reply_recipient = $1, binding = $2 WHERE id = $3",
            vec![
                SqlValue::Text(recipient),
                SqlValue::Bytes(binding.unwrap()),
                SqlValue::Text(victim.clone()),
            ],
        )
        .await;
    assert_eq!(receipt_answer(&server, &attacker_receipt).await, wrong);
}
on_both_backends!(a_copied_receipt_opens_nothing_for_its_new_holder);

/// A reply recipient copied onto a victim's tip (so that replies would open for the writer,
/// not the source) makes a reply to that tip fail, loudly, with nothing sealed or stored.
async fn a_copied_reply_recipient_gets_no_reply_sealed_to_it(backend: Backend) {
    let deployment = Deployment::new(backend, "");
    deployment.add_reviewer("alice");
    let ana = add_analyst(&deployment, "ana", "analyst");
    let server = deployment.start();
    let (_, victim) = submit_tip(&deployment, &server, "the victim's tip").await;
    let (_, attacker) = submit_tip(&deployment, &server, "the attacker's tip").await;
    let token = token(&server, &ana, 0).await;
    let reply = |tip: String| {
        let (server, token) = (&server, token.clone());
        async move {
            api_call(
                server,
                &token,
                reqwest::Method::POST,
                &format!("/api/v1/tips/{tip}/replies"),
                Some(serde_json::json!({ "text": "Thank you. When was this?" })),
            )
            .await
        }
    };
    let (status, _) = reply(victim.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "a bound tip gets its reply");

    let (_, recipient, binding) = tip_row(&deployment, &attacker).await;
    for (sql, args) in [
        (
            "UPDATE tips SET reply_recipient = $1 WHERE id = $2",
            vec![
                SqlValue::Text(recipient.clone()),
                SqlValue::Text(victim.clone()),
            ],
        ),
        (
            "UPDATE tips SET reply_recipient = $1, binding = $2 WHERE id = $3",
            vec![
                SqlValue::Text(recipient.clone()),
                SqlValue::Bytes(binding.clone().unwrap()),
                SqlValue::Text(victim.clone()),
            ],
        ),
    ] {
        deployment.execute_sql_with(sql, args).await;
        let (status, body) = reply(victim.clone()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
        let replies: Vec<i64> = deployment
            .query_column("SELECT COUNT(*) FROM replies")
            .await;
        assert_eq!(replies, [1], "only the reply sent before the copy");
        let items: Vec<i64> = deployment
            .query_column("SELECT COUNT(*) FROM items WHERE kind = 'reply'")
            .await;
        assert_eq!(items, [1]);
    }
    assert!(
        deployment.log().contains("does not match its binding"),
        "the refusal is logged"
    );
}
on_both_backends!(a_copied_reply_recipient_gets_no_reply_sealed_to_it);

/// Someone who can write the database copies their own password hash and TOTP secret onto
/// another account: the copied secret does not open there, and the sign-in fails like a wrong
/// code.
#[tokio::test(flavor = "multi_thread")]
async fn a_copied_totp_secret_opens_nothing() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    let _alice = add_analyst(&deployment, "alice", "admin");
    let mallory = add_analyst(&deployment, "mallory", "analyst");
    let carol = add_analyst(&deployment, "carol", "analyst");
    deployment
        .execute_sql(
            "UPDATE analysts SET \
             password_hash = (SELECT password_hash FROM analysts WHERE username = 'mallory'), \
             totp_secret = (SELECT totp_secret FROM analysts WHERE username = 'mallory') \
             WHERE username = 'alice'",
        )
        .await;
    let server = deployment.start();
    let as_alice = sign_in_text(&server, "alice", &mallory.password, &code(&mallory, 0)).await;
    let wrong_code = sign_in_text(&server, "carol", &carol.password, "000000").await;
    assert_eq!(as_alice.0, StatusCode::UNAUTHORIZED, "{}", as_alice.1);
    assert_eq!(as_alice, wrong_code, "the same answer as a wrong code");
    // Mallory's own credentials are right where they belong.
    let (status, _) = sign_in(&server, "mallory", &mallory.password, &code(&mallory, 0)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(deployment.log().contains("does not open for it"));
}

/// The XChaCha20-Poly1305 sealing TOTP secrets had before they were bound to their account
/// (no associated data), made here from the deployment's own server secret.
fn sealed_without_account(deployment: &Deployment, secret: &[u8]) -> Vec<u8> {
    use chacha20poly1305::aead::{Aead, KeyInit};
    let server = ServerSecret::load(&deployment.data_dir()).unwrap();
    let key = server.subkey("totp secrets");
    let cipher =
        chacha20poly1305::XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&key[..]));
    let mut sealed = vec![5u8; 24];
    let ciphertext = cipher
        .encrypt(chacha20poly1305::XNonce::from_slice(&sealed), secret)
        .unwrap();
    sealed.extend(ciphertext);
    sealed
}

/// Rows as they were before bindings: no tip bound, ana's TOTP secret sealed without her name
/// (`legacy`), and no record in the database that the one-time pass ran.
async fn unbind(deployment: &Deployment, legacy: &[u8]) {
    deployment
        .execute_sql_with(
            "UPDATE analysts SET totp_secret = $1 WHERE username = 'ana'",
            vec![SqlValue::Bytes(legacy.to_vec())],
        )
        .await;
    deployment
        .execute_sql("UPDATE tips SET binding = NULL")
        .await;
    deployment
        .execute_sql("DELETE FROM settings WHERE name = 'bindings_made'")
        .await;
}

/// A database from before bindings: its tips and TOTP secrets are bound by the first start, and
/// from then on a missing binding (or a secret sealed without its account) never opens, however
/// often the server starts again.
#[tokio::test(flavor = "multi_thread")]
async fn rows_stored_before_bindings_are_bound_once_and_never_again() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    deployment.add_reviewer("alice");
    let mut ana = add_analyst(&deployment, "ana", "analyst");
    let server = deployment.start();
    let (receipt, _) = submit_tip(&deployment, &server, "a tip from before bindings").await;
    server.stop();
    let marker = deployment.data_dir().join(BINDINGS_MADE_FILE);
    assert!(marker.exists());

    // The state of a database before migration 0007 was first served.
    ana.totp_secret = vec![0x42; 20];
    let legacy = sealed_without_account(&deployment, &ana.totp_secret);
    unbind(&deployment, &legacy).await;
    std::fs::remove_file(&marker).unwrap();
    let server = deployment.start();
    assert_eq!(
        receipt_answer(&server, &receipt).await.0,
        StatusCode::SEE_OTHER
    );
    let (status, _) = sign_in(&server, "ana", &ana.password, &code(&ana, 0)).await;
    assert_eq!(status, StatusCode::OK);
    server.stop();
    assert!(marker.exists());

    // Now the same rows are forgeries: nothing binds them again, even without the database's
    // own record of the pass.
    unbind(&deployment, &legacy).await;
    let server = deployment.start();
    let wrong = wrong_receipt_answer(&server).await;
    assert_eq!(receipt_answer(&server, &receipt).await, wrong);
    let (status, _) = sign_in(&server, "ana", &ana.password, &code(&ana, 1)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

// --- Finding 4: the analyst onion is never without client authorization ------------------------

/// `tipbox ARGS` with the analyst onion's service directory set (as `serve` would read it).
fn tipbox_with_onion_dir(
    deployment: &Deployment,
    service: &Path,
    args: &[&str],
) -> std::process::Output {
    deployment
        .command(args)
        .env("TIPBOX_ANALYST__ONION_SERVICE_DIR", service)
        .output()
        .unwrap()
}

/// Before tor has ever started the analyst service, `onion-key` makes the service's key itself:
/// the analyst's line carries the address tor then uses, and tor (the real one, offline) loads
/// the key and the client authorization from its first start.
#[test]
fn the_analyst_onion_is_authorized_from_its_first_publication() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    deployment.tipbox_ok(&["analyst", "add", "ana"]);
    let service = deployment.path().join("tor-analyst");
    let out = deployment.tipbox(&[
        "analyst",
        "onion-key",
        "ana",
        "--service-dir",
        service.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let (address, _) = line.split_once(':').unwrap();
    assert_eq!(address.len(), 56);
    assert!(String::from_utf8_lossy(&out.stderr).contains("tor has not published it yet"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&service).unwrap().permissions().mode() & 0o777,
        0o700
    );

    // tor derives the address from the secret key alone: remove what tipbox derived.
    std::fs::remove_file(service.join("hostname")).unwrap();
    std::fs::remove_file(service.join("hs_ed25519_public_key")).unwrap();
    let secret_before = std::fs::read(service.join("hs_ed25519_secret_key")).unwrap();
    let data = deployment.path().join("tor-data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let log = deployment.path().join("tor.log");
    let torrc = deployment.path().join("torrc");
    std::fs::write(
        &torrc,
        format!(
            "DisableNetwork 1\nSocksPort 0\nDataDirectory {}\nLog info file {}\n\
             HiddenServiceDir {}\nHiddenServicePort 80 127.0.0.1:9\n",
            data.display(),
            log.display(),
            service.display()
        ),
    )
    .unwrap();
    let verified = Command::new("tor")
        .args(["--verify-config", "-f"])
        .arg(&torrc)
        .output()
        .expect("Debian's `tor` must be installed (.ci/run installs it)");
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    let mut tor = Command::new("tor")
        .arg("-f")
        .arg(&torrc)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let hostname = service.join("hostname");
    while !hostname.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = tor.kill();
    let _ = tor.wait();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        std::fs::read_to_string(&hostname)
            .unwrap_or_else(|_| panic!("tor wrote no hostname:\n{log}")),
        format!("{address}.onion\n"),
        "tor computed the same address from the key tipbox made"
    );
    assert_eq!(
        std::fs::read(service.join("hs_ed25519_secret_key")).unwrap(),
        secret_before,
        "tor kept the key"
    );
    assert!(
        log.contains("Loaded a client authorization key file ana.auth"),
        "{log}"
    );
}

/// The analysts ana and bob, each with a client key for the analyst onion; then bob's key is
/// revoked, which is not the last one and goes as before: ana's is the last key.
struct LastOnionKey {
    deployment: Deployment,
    /// The analyst onion's service directory.
    service: PathBuf,
}

fn one_onion_key_left() -> LastOnionKey {
    let deployment = Deployment::new(Backend::Sqlite, "");
    let service = deployment.path().join("tor-analyst");
    let dir = service.to_str().unwrap();
    for name in ["ana", "bob"] {
        deployment.tipbox_ok(&["analyst", "add", name]);
        deployment.tipbox_ok(&["analyst", "onion-key", name, "--service-dir", dir]);
    }
    deployment.tipbox_ok(&[
        "analyst",
        "onion-key",
        "bob",
        "--service-dir",
        dir,
        "--revoke",
    ]);
    assert!(!service.join("authorized_clients/bob.auth").exists());
    LastOnionKey {
        deployment,
        service,
    }
}

impl LastOnionKey {
    /// Whether ana's client key is still there.
    fn ana_s_key_is_kept(&self) -> bool {
        self.service.join("authorized_clients/ana.auth").exists()
    }
}

/// tor turns client authorization off when authorized_clients/ is empty: `onion-key --revoke`
/// does not remove the last key unless `--open-analyst-onion` says so.
#[test]
fn the_last_onion_key_is_not_removed_silently() {
    let last = one_onion_key_left();
    let out = last.deployment.tipbox(&[
        "analyst",
        "onion-key",
        "ana",
        "--service-dir",
        last.service.to_str().unwrap(),
        "--revoke",
    ]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("last client key") && said.contains("--open-analyst-onion"),
        "{said}"
    );
    assert!(last.ana_s_key_is_kept());
}

/// Disabling the analyst of the last onion key still disables the account, but keeps the key
/// and fails loudly, unless `--open-analyst-onion` says to remove it.
#[test]
fn disabling_the_last_onion_key_s_analyst_keeps_the_key_unless_told() {
    let last = one_onion_key_left();
    let deployment = &last.deployment;
    let out = tipbox_with_onion_dir(deployment, &last.service, &["analyst", "disable", "ana"]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("account is disabled") && said.contains("--open-analyst-onion"),
        "{said}"
    );
    assert!(last.ana_s_key_is_kept());
    assert!(
        deployment
            .tipbox_ok(&["analyst", "list"])
            .contains("disabled")
    );

    let out = tipbox_with_onion_dir(
        deployment,
        &last.service,
        &["analyst", "disable", "ana", "--open-analyst-onion"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!last.ana_s_key_is_kept());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no client key left"));
    deployment.tipbox_ok(&["audit", "verify"]);
}

// --- Finding 5: the systemd unit lets the hashing threads lower their priority -----------------

fn systemd_analyze(args: &[&str]) -> std::process::Output {
    Command::new("systemd-analyze").args(args).output().unwrap_or_else(|e| {
        panic!(
            "systemd-analyze is needed to check deploy/tipbox.service (Debian package `systemd`): {e}"
        )
    })
}

/// The system calls a `SystemCallFilter=` item names: a call, or a `@group` expanded (with
/// its nested groups) by systemd's own table.
fn syscalls_of(item: &str, out: &mut std::collections::BTreeSet<String>) {
    if !item.starts_with('@') {
        out.insert(item.to_owned());
        return;
    }
    let listed = systemd_analyze(&["syscall-filter", item]);
    assert!(
        listed.status.success(),
        "systemd-analyze syscall-filter {item}"
    );
    for line in String::from_utf8_lossy(&listed.stdout).lines().skip(1) {
        let name = line.trim();
        if name.is_empty() || name.starts_with('#') {
            continue;
        }
        if name.starts_with('@') {
            syscalls_of(name, out);
        } else {
            out.insert(name.to_owned());
        }
    }
}

/// The shipped unit verifies, and its system-call filter lets `setpriority` through (the
/// password-hash threads lower their own priority with it) while the rest of `@resources` stays
/// filtered. The filter is read as systemd.exec(5) says: the first `SystemCallFilter=` decides
/// whether it is an allow list; later ones add to it, or take away with `~`.
#[test]
fn the_unit_lets_the_hashing_threads_lower_their_priority() {
    let shipped = std::fs::read_to_string("deploy/tipbox.service").unwrap();
    let dir = tempfile::tempdir().unwrap();
    // verify wants the ExecStart binary to exist: the one this test run built.
    let unit = dir.path().join("tipbox.service");
    std::fs::write(&unit, shipped.replace("/usr/local/bin/tipbox", TIPBOX)).unwrap();
    let verified = systemd_analyze(&["verify", unit.to_str().unwrap()]);
    assert!(
        verified.status.success(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verified.stderr)
    );

    let mut allow_list: Option<bool> = None;
    let mut filtered = std::collections::BTreeSet::new();
    for value in shipped
        .lines()
        .filter_map(|l| l.trim().strip_prefix("SystemCallFilter="))
    {
        let (deny, items) = match value.strip_prefix('~') {
            Some(items) => (true, items),
            None => (false, value),
        };
        let mut named = std::collections::BTreeSet::new();
        for item in items.split_whitespace() {
            syscalls_of(item, &mut named);
        }
        let allowing = *allow_list.get_or_insert(!deny);
        if deny == allowing {
            filtered.retain(|s| !named.contains(s));
        } else {
            filtered.extend(named);
        }
    }
    assert_eq!(allow_list, Some(true), "the unit's filter is an allow list");
    assert!(
        filtered.contains("setpriority"),
        "deploy/tipbox.service filters out setpriority: the hashing threads cannot lower their priority"
    );
    for still_refused in [
        "setrlimit",
        "sched_setscheduler",
        "sched_setattr",
        "ioprio_set",
        "reboot",
    ] {
        assert!(
            !filtered.contains(still_refused),
            "{still_refused} is allowed"
        );
    }
    // systemd's own reading of the unit agrees.
    let security = systemd_analyze(&[
        "security",
        "--offline=true",
        "--json=short",
        unit.to_str().unwrap(),
    ]);
    let report: serde_json::Value =
        serde_json::from_slice(&security.stdout).expect("systemd-analyze security --json");
    let resources = report
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["name"] == "SystemCallFilter=~@resources")
        .unwrap();
    assert!(
        resources["description"]
            .as_str()
            .unwrap()
            .contains("setpriority is allowed"),
        "{resources}"
    );
    assert!(
        shipped.contains("\nLimitNICE=0\n"),
        "raising a priority stays impossible"
    );
}

// --- Finding 6: times that refer to tips are rounded --------------------------------------------

/// Audit entries about a tip or an item, and a session's last use, are dated to the hour (the
/// default `privacy.time_granularity_seconds`), like the tip's received time; sign-ins keep
/// their exact time; the chain still verifies.
#[tokio::test(flavor = "multi_thread")]
async fn times_about_tips_are_rounded_like_received_times() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    deployment.add_reviewer("alice");
    let ana = add_analyst(&deployment, "ana", "analyst");
    let server = deployment.start();
    let (_, tip) = submit_tip(&deployment, &server, "a tip to look at").await;
    let token = token(&server, &ana, 0).await;
    let call = |method: reqwest::Method, path: String, body: Option<serde_json::Value>| {
        let (server, token) = (&server, &token);
        async move { api_call(server, token, method, &path, body).await }
    };
    let (status, tip_json) = call(reqwest::Method::GET, format!("/api/v1/tips/{tip}"), None).await;
    assert_eq!(status, StatusCode::OK);
    let item = tip_json["items"][0]["id"].as_str().unwrap().to_owned();
    sealed_item(&server, &token, &item).await;
    let (status, _) = call(
        reqwest::Method::POST,
        format!("/api/v1/tips/{tip}/notes"),
        Some(serde_json::json!({ "text": "checked" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = call(
        reqwest::Method::PATCH,
        format!("/api/v1/tips/{tip}"),
        Some(serde_json::json!({ "status": "in_review" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let entries = deployment.audit_entries().await;
    for action in ["tip.view", "item.download", "note.add", "tip.update"] {
        let entry = entries
            .iter()
            .find(|e| e.action == action)
            .unwrap_or_else(|| panic!("no {action} entry"));
        assert_eq!(entry.at % 3600, 0, "{action} at {}", entry.at);
    }
    let last_seen: Vec<i64> = deployment
        .query_column("SELECT last_seen_at FROM sessions")
        .await;
    assert!(!last_seen.is_empty());
    assert!(last_seen.iter().all(|t| t % 3600 == 0), "{last_seen:?}");
    // The session is still good: its idle time is kept to the second in memory.
    let (status, _) = call(reqwest::Method::GET, "/api/v1/tips".into(), None).await;
    assert_eq!(status, StatusCode::OK);
    deployment.tipbox_ok(&["audit", "verify"]);
}

// --- Finding 7: session cookies only ------------------------------------------------------------

/// Loads `page` with the session `cookie` and posts its form token to `sign_out`, as a browser
/// signs out: every `Set-Cookie` of both answers.
async fn sign_out(page: String, sign_out: String, cookie: &str) -> Vec<String> {
    let page = get(&page, Some(cookie)).await;
    let mut set = set_cookies(&page);
    let csrf = hidden_csrf(&page.text().await.unwrap());
    let signed_out = form(&sign_out, Some(cookie), &[("csrf", &csrf)]).await;
    assert!(signed_out.status().is_success() || signed_out.status().is_redirection());
    set.extend(set_cookies(&signed_out));
    set
}

/// A cookie that a browser would keep on disk: one with an `Expires`, or a `Max-Age` other
/// than the `Max-Age=0` that clears a cookie.
fn persistent(cookie: &str) -> bool {
    cookie.split(';').map(str::trim).any(|attribute| {
        let lower = attribute.to_ascii_lowercase();
        lower.starts_with("expires") || (lower.starts_with("max-age") && lower != "max-age=0")
    })
}

/// Every cookie of `names` was set, and cleared, among the `Set-Cookie` headers `seen`; none of
/// those is persistent.
fn assert_session_cookies_only(seen: &[String], names: &[&str]) {
    for name in names {
        assert!(
            seen.iter()
                .any(|c| c.starts_with(&format!("{name}=")) && !c.contains("Max-Age=0")),
            "{name} was set: {seen:#?}"
        );
        assert!(
            seen.iter().any(|c| c.starts_with(&format!("{name}=;"))),
            "{name} was cleared: {seen:#?}"
        );
    }
    for cookie in seen {
        assert!(!persistent(cookie), "a persistent cookie: {cookie}");
    }
}

/// No `Set-Cookie` of the public listener makes a persistent cookie: the receipt form's
/// pairing cookie, the source's session, and their clearing (the receipt form, signing in, the
/// case page, signing out).
#[tokio::test(flavor = "multi_thread")]
async fn every_cookie_of_the_source_is_a_session_cookie() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    deployment.add_reviewer("alice");
    let server = deployment.start();
    let receipt = submit_message(&server, "a tip").await;
    let page = receipt_form(&server, "en").await;
    let mut seen = page.set_cookies.clone();
    let signed_in = post_receipt_on(&server, &page, &receipt, "en").await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    seen.extend(set_cookies(&signed_in));
    let (session, _) = cookie_from(&signed_in, CASE_COOKIE).unwrap();
    seen.extend(
        sign_out(
            format!("{}/followup/case?lang=en", server.public),
            format!("{}/followup/signout?lang=en", server.public),
            &format!("{CASE_COOKIE}={session}"),
        )
        .await,
    );
    assert_session_cookies_only(&seen, &[SIGNIN_COOKIE, CASE_COOKIE]);
}

/// No `Set-Cookie` of the analyst listener makes a persistent cookie: the desk's sign-in form's
/// pairing cookie, the desk's session, and their clearing (the sign-in form, signing in,
/// signing out).
#[tokio::test(flavor = "multi_thread")]
async fn every_cookie_of_the_desk_is_a_session_cookie() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    deployment.add_reviewer("alice");
    let ana = add_analyst(&deployment, "ana", "analyst");
    let server = deployment.start();
    let login = desk_login_form(&server).await;
    let mut seen = login.set_cookies.clone();
    let desk = desk_sign_in_on(&server, &login, &ana, 0).await;
    seen.extend(set_cookies(&desk));
    let (desk_session, _) = cookie_from(&desk, "__Host-tipbox_session").unwrap();
    seen.extend(
        sign_out(
            format!("{}/queue", server.analyst),
            format!("{}/logout", server.analyst),
            &format!("__Host-tipbox_session={desk_session}"),
        )
        .await,
    );
    assert_session_cookies_only(&seen, &["__Host-tipbox_login", "__Host-tipbox_session"]);
}

// --- Finding 8: the smaller ones -----------------------------------------------------------------

/// The container build context is an allow list: everything is left out, then only the
/// build's own inputs come back — every file the source includes at compile time among them —
/// and never the data directory, a configuration, a key or a build output.
#[test]
fn the_build_context_holds_only_the_builds_inputs() {
    let ignore = std::fs::read_to_string(".dockerignore").unwrap();
    let patterns: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(patterns.first(), Some(&"*"), "everything is left out first");
    let let_back: Vec<&str> = patterns
        .iter()
        .skip(1)
        .map(|p| p.strip_prefix('!').expect("after `*`, only exceptions"))
        .map(|p| p.trim_end_matches('/'))
        .collect();
    for path in &let_back {
        for never in [
            "data",
            "tipbox.toml",
            "keys",
            "target",
            ".git",
            "tests",
            "docs",
        ] {
            assert!(
                *path != never && !path.starts_with(&format!("{never}/")),
                "{path} lets {never} into the build context"
            );
        }
        assert!(Path::new(path).exists(), "{path} does not exist");
    }
    let included = |file: &str| {
        let_back
            .iter()
            .any(|p| file == *p || file.starts_with(&format!("{p}/")))
    };
    // What the build reads: the manifest, the sources, and what they pull in at compile time.
    let mut needed = vec![
        "Cargo.toml".to_owned(),
        "Cargo.lock".to_owned(),
        "src/main.rs".to_owned(),
        "templates".to_owned(),
        "locales".to_owned(),
    ];
    let mut stack = vec![std::path::PathBuf::from("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            // Binary files (test images) include nothing.
            let Ok(source) = String::from_utf8(std::fs::read(&path).unwrap()) else {
                continue;
            };
            for marker in ["include_str!(\"", "include_bytes!(\"", "migrate!(\""] {
                for piece in source.split(marker).skip(1) {
                    let quoted = &piece[..piece.find('"').unwrap()];
                    let target = if marker == "migrate!(\"" {
                        Path::new(quoted).to_path_buf()
                    } else {
                        path.parent().unwrap().join(quoted)
                    };
                    // Normalized relative to the repository root.
                    let mut parts: Vec<String> = Vec::new();
                    for component in target.components() {
                        match component {
                            std::path::Component::ParentDir => {
                                parts.pop();
                            }
                            std::path::Component::Normal(c) => {
                                parts.push(c.to_string_lossy().into_owned())
                            }
                            _ => {}
                        }
                    }
                    needed.push(parts.join("/"));
                }
            }
        }
    }
    let manifest = std::fs::read_to_string("Cargo.toml").unwrap();
    for bench in manifest.split("[[bench]]").skip(1) {
        let name = bench.split('"').nth(1).unwrap();
        needed.push(format!("benches/{name}.rs"));
    }
    assert!(needed.iter().any(|n| n == "deploy/tipbox.example.toml"));
    assert!(needed.iter().any(|n| n == "migrations/sqlite"));
    for file in &needed {
        assert!(
            included(file),
            "the build needs {file}, which .dockerignore leaves out"
        );
    }
}

/// Both base images are pinned by digest.
#[test]
fn the_base_images_are_pinned_by_digest() {
    let containerfile = std::fs::read_to_string("deploy/Containerfile").unwrap();
    let images: Vec<&str> = containerfile
        .lines()
        .filter_map(|l| l.strip_prefix("FROM "))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(images.len(), 2, "{images:?}");
    for image in images {
        let digest = image
            .split_once("@sha256:")
            .unwrap_or_else(|| panic!("{image} is not pinned by digest"))
            .1;
        assert!(
            digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
            "{image}"
        );
    }
}

/// A server whose log goes to a file (here the harness's log file, through a pipe; or the
/// journal) writes it without colour codes. (Meaningful where `NO_COLOR` is unset, as on this
/// project's machines: with it set, colour was off before too.)
#[test]
fn logs_off_a_terminal_carry_no_colour_codes() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    let server = deployment.start();
    server.stop();
    let log = deployment.log();
    assert!(log.contains("tipbox is serving"), "{log}");
    assert!(log.contains("INFO"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log that is not a terminal: {log:?}"
    );
}
