//! Analyst accounts from the command line, and the audit trail that records them.

mod common;

use common::*;

fn json_of(out: &str) -> serde_json::Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

async fn accounts_and_audit(backend: Backend) {
    let deployment = Deployment::new(backend, "");
    let created =
        json_of(&deployment.tipbox_ok(&["analyst", "add", "alice", "--role", "admin", "--json"]));
    for key in ["username", "password", "totp_secret", "otpauth_uri"] {
        assert!(created[key].is_string(), "{key} in {created}");
    }
    assert_eq!(created["username"], "alice");
    let password = created["password"].as_str().unwrap();
    assert!(password.len() >= 20, "{password}");
    let uri = created["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/tipbox:alice?"), "{uri}");
    assert!(uri.contains(created["totp_secret"].as_str().unwrap()));

    // Stored: an argon2id hash at 64 MiB and 3 passes, and a sealed TOTP secret.
    let store = deployment.store().await;
    let alice = store.analyst("alice").await.unwrap().unwrap();
    assert!(
        alice
            .password_hash
            .starts_with("$argon2id$v=19$m=65536,t=3,p=1$"),
        "{}",
        alice.password_hash
    );
    assert!(!alice.password_hash.contains(password));
    let totp_secret = created["totp_secret"].as_str().unwrap();
    let raw = totp_rs::Secret::try_from_base32(totp_secret).unwrap();
    assert!(
        !alice.totp_secret.windows(20).any(|w| w == raw.as_bytes()),
        "the TOTP secret is sealed"
    );
    assert_eq!(alice.role, "admin");

    // Same name twice, a bad name, an unknown role.
    assert!(
        !deployment
            .tipbox(&["analyst", "add", "alice"])
            .status
            .success()
    );
    assert!(
        !deployment
            .tipbox(&["analyst", "add", "../Alice"])
            .status
            .success()
    );
    assert!(
        !deployment
            .tipbox(&["analyst", "add", "bob", "--role", "root"])
            .status
            .success()
    );

    let human = deployment.tipbox_ok(&["analyst", "add", "bob"]);
    assert!(
        human.contains("password:") && human.contains("otpauth://"),
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
    assert!(
        deployment
            .tipbox_ok(&["analyst", "list"])
            .contains("disabled")
    );
    assert!(
        !deployment
            .tipbox(&["analyst", "disable", "nobody"])
            .status
            .success()
    );
    deployment.add_reviewer("carol");

    // Every change is in the audit trail, which verifies.
    let entries = store.audit_entries().await.unwrap();
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

    // Tampering: an edited entry, then a deleted one, are found and named.
    let raw_sql = |sql: &'static str| deployment.execute_sql(sql);
    raw_sql("UPDATE audit_log SET subject = 'mallory' WHERE seq = 2").await;
    let out = deployment.tipbox(&["audit", "verify"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TAMPERED") && err.contains("entry 2"), "{err}");
    raw_sql("UPDATE audit_log SET subject = 'bob' WHERE seq = 2").await;
    assert!(
        deployment.tipbox(&["audit", "verify"]).status.success(),
        "restored"
    );
    raw_sql("DELETE FROM audit_log WHERE seq = 3").await;
    let out = deployment.tipbox(&["audit", "verify"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("entry 3"));
    store.close().await;
}
on_both_backends!(accounts, accounts_and_audit);
