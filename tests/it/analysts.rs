//! Analyst accounts from the command line, and the audit trail that records them.

use crate::support::{Backend, Deployment, on_both_backends};

fn json_of(out: &str) -> serde_json::Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// A deployment with the admin alice, and what `analyst add --json` printed for her.
fn with_alice(backend: Backend) -> (Deployment, serde_json::Value) {
    let deployment = Deployment::new(backend, "");
    let created =
        json_of(&deployment.tipbox_ok(&["analyst", "add", "alice", "--role", "admin", "--json"]));
    (deployment, created)
}

/// A deployment where two analysts were added, one had their 2FA reset and was disabled, and
/// a reviewer key was added: five audited changes.
fn with_history(backend: Backend) -> Deployment {
    let (deployment, _) = with_alice(backend);
    deployment.tipbox_ok(&["analyst", "add", "bob"]);
    deployment.tipbox_ok(&["analyst", "reset-2fa", "bob", "--json"]);
    deployment.tipbox_ok(&["analyst", "disable", "bob"]);
    deployment.add_reviewer("carol");
    deployment
}

async fn analyst_add_prints_the_credentials_once(backend: Backend) {
    let (_deployment, created) = with_alice(backend);
    for key in ["username", "password", "totp_secret", "otpauth_uri"] {
        assert!(created[key].is_string(), "{key} in {created}");
    }
    assert_eq!(created["username"], "alice");
    let password = created["password"].as_str().unwrap();
    assert!(password.len() >= 20, "{password}");
    let uri = created["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/tipbox:alice?"), "{uri}");
    assert!(uri.contains(created["totp_secret"].as_str().unwrap()));
}

/// Stored: an argon2id hash at 64 MiB and 3 passes, and a sealed TOTP secret.
async fn the_password_is_hashed_and_the_totp_secret_sealed(backend: Backend) {
    let (deployment, created) = with_alice(backend);
    let store = deployment.store().await;
    let alice = store.analyst("alice").await.unwrap().unwrap();
    store.close().await;
    assert!(
        alice
            .password_hash
            .starts_with("$argon2id$v=19$m=65536,t=3,p=1$"),
        "{}",
        alice.password_hash
    );
    assert!(
        !alice
            .password_hash
            .contains(created["password"].as_str().unwrap())
    );
    let raw = totp_rs::Secret::try_from_base32(created["totp_secret"].as_str().unwrap()).unwrap();
    assert!(
        !alice.totp_secret.windows(20).any(|w| w == raw.as_bytes()),
        "the TOTP secret is sealed"
    );
    assert_eq!(alice.role, "admin");
}

async fn a_taken_name_a_bad_name_and_an_unknown_role_are_refused(backend: Backend) {
    let (deployment, _) = with_alice(backend);
    for args in [
        &["analyst", "add", "alice"][..],
        &["analyst", "add", "../Alice"],
        &["analyst", "add", "bob", "--role", "root"],
        &["analyst", "disable", "nobody"],
    ] {
        assert!(!deployment.tipbox(args).status.success(), "{args:?}");
    }
    let list = deployment.tipbox_ok(&["analyst", "list"]);
    assert!(!list.contains("bob"), "{list}");
}

async fn list_reset_2fa_and_disable(backend: Backend) {
    let (deployment, _) = with_alice(backend);
    let human = deployment.tipbox_ok(&["analyst", "add", "bob"]);
    assert!(
        human.contains("password:") && human.contains("otpauth://"),
        "{human}"
    );
    // Not a terminal: the lines scripts read, and no QR code (which only a terminal shows).
    let fields: Vec<&str> = human
        .lines()
        .take_while(|l| !l.is_empty())
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["analyst", "password", "TOTP secret", "otpauth URI"],
        "{human}"
    );
    assert!(
        !human.contains('\u{2580}') && !human.contains('\x1b'),
        "{human}"
    );
    let list = deployment.tipbox_ok(&["analyst", "list"]);
    assert!(
        list.contains("alice") && list.contains("admin") && list.contains("bob"),
        "{list}"
    );
    let reset = json_of(&deployment.tipbox_ok(&["analyst", "reset-2fa", "bob", "--json"]));
    assert!(reset["totp_secret"].is_string() && reset.get("password").is_none());
    deployment.tipbox_ok(&["analyst", "disable", "bob"]);
    let list = deployment.tipbox_ok(&["analyst", "list"]);
    let bob = list.lines().find(|l| l.contains("bob")).unwrap();
    assert!(bob.contains("disabled"), "{list}");
}

async fn every_change_is_in_an_audit_trail_that_verifies(backend: Backend) {
    let deployment = with_history(backend);
    let entries = deployment.audit_entries().await;
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "analyst.add",
            "analyst.add",
            "analyst.reset_2fa",
            "analyst.disable",
            "key.add"
        ]
    );
    let verified = deployment.tipbox_ok(&["audit", "verify"]);
    assert!(verified.contains("intact: 5 entries"), "{verified}");
}

/// An edited entry, then a deleted one, are found and named.
async fn tampering_with_the_audit_trail_is_found_and_named(backend: Backend) {
    let deployment = with_history(backend);
    deployment
        .execute_sql("UPDATE audit_log SET subject = 'mallory' WHERE seq = 2")
        .await;
    let out = deployment.tipbox(&["audit", "verify"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TAMPERED") && err.contains("entry 2"), "{err}");
    deployment
        .execute_sql("UPDATE audit_log SET subject = 'bob' WHERE seq = 2")
        .await;
    assert!(
        deployment.tipbox(&["audit", "verify"]).status.success(),
        "restored"
    );
    deployment
        .execute_sql("DELETE FROM audit_log WHERE seq = 3")
        .await;
    let out = deployment.tipbox(&["audit", "verify"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("entry 3"));
}

on_both_backends!(
    analyst_add_prints_the_credentials_once,
    the_password_is_hashed_and_the_totp_secret_sealed,
    a_taken_name_a_bad_name_and_an_unknown_role_are_refused,
    list_reset_2fa_and_disable,
    every_change_is_in_an_audit_trail_that_verifies,
    tampering_with_the_audit_trail_is_found_and_named,
);
