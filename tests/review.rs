//! The whole analyst path over real sockets: a source submits, an analyst signs in with a
//! computed TOTP code, finds the tip, triages it through the API, and pulls and decrypts it on
//! "their own machine" with `tipbox review`.

mod common;

use std::process::{Command, Stdio};

use common::analyst::*;
use common::*;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};

async fn analyst_story(backend: Backend) {
    let deployment = Deployment::new(backend, "");
    deployment.add_reviewer("alice");
    let ana = add_analyst(&deployment, "ana", "analyst");
    let root = add_analyst(&deployment, "root", "admin");
    let server = deployment.start();

    // Two tips from sources; one carries hostile file names.
    for (message, files) in [
        ("first tip", vec![("photo.jpg", b"JPEGDATA".to_vec())]),
        (
            "second tip",
            vec![
                ("../../escape.txt", b"one".to_vec()),
                ("/etc/passwd", b"two".to_vec()),
                ("..", b"three".to_vec()),
                ("photo.jpg", b"four".to_vec()),
                ("photo.jpg", b"five".to_vec()),
            ],
        ),
    ] {
        let mut form = Form::new().text("message", message);
        for (name, bytes) in files {
            form = form.part("attachment", Part::bytes(bytes).file_name(name));
        }
        let response = client()
            .post(format!("{}/submit", server.public))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    // Without a session, every API route is refused.
    let base = &server.analyst;
    for (method, path) in [
        (reqwest::Method::GET, "/api/v1/tips".to_owned()),
        (
            reqwest::Method::GET,
            format!("/api/v1/tips/{}", "0".repeat(32)),
        ),
        (
            reqwest::Method::PATCH,
            format!("/api/v1/tips/{}", "0".repeat(32)),
        ),
        (
            reqwest::Method::GET,
            format!("/api/v1/items/{}/sealed", "0".repeat(32)),
        ),
        (reqwest::Method::GET, "/api/v1/audit".to_owned()),
        (reqwest::Method::GET, "/api/v1/session".to_owned()),
        (reqwest::Method::DELETE, "/api/v1/session".to_owned()),
    ] {
        for bad_token in [None, Some("not-a-token")] {
            let (status, _) = api(
                method.clone(),
                format!("{base}{path}"),
                bad_token,
                Some(serde_json::json!({})),
            )
            .await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {bad_token:?}"
            );
        }
    }

    let ana_token = token(&server, "ana", &ana, 0).await;
    // The queue, newest first, one per page.
    let (status, page) = api(
        reqwest::Method::GET,
        format!("{base}/api/v1/tips?limit=1"),
        Some(&ana_token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["tips"].as_array().unwrap().len(), 1);
    let next = page["next"].as_str().unwrap().to_owned();
    let (_, page2) = api(
        reqwest::Method::GET,
        format!("{base}/api/v1/tips?limit=1&before={next}"),
        Some(&ana_token),
        None,
    )
    .await;
    assert_eq!(page2["tips"].as_array().unwrap().len(), 1);
    assert_ne!(page["tips"][0]["id"], page2["tips"][0]["id"]);
    let (_, all) = api(
        reqwest::Method::GET,
        format!("{base}/api/v1/tips"),
        Some(&ana_token),
        None,
    )
    .await;
    let tips = all["tips"].as_array().unwrap().clone();
    assert_eq!(tips.len(), 2);
    for tip in &tips {
        assert_eq!(tip["status"], "new");
        assert!(tip["received_at"].as_str().unwrap().ends_with(":00:00Z"));
        assert!(tip["key_set"].is_i64());
        for item in tip["items"].as_array().unwrap() {
            assert!(item["size"].as_i64().unwrap() > 0);
        }
    }
    let second = tips
        .iter()
        .find(|t| t["items"].as_array().unwrap().len() == 7)
        .unwrap();
    let second_id = second["id"].as_str().unwrap();

    // Triage: status, labels, assignee; the filters find it.
    let (status, updated) = api(
        reqwest::Method::PATCH,
        format!("{base}/api/v1/tips/{second_id}"),
        Some(&ana_token),
        Some(serde_json::json!({ "status": "in_review", "labels": ["family", "surveillance"], "assignee": "ana" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["status"], "in_review");
    assert_eq!(
        updated["labels"],
        serde_json::json!(["family", "surveillance"])
    );
    assert_eq!(updated["assignee"], "ana");
    for query in ["status=in_review", "label=family", "assignee=ana"] {
        let (_, found) = api(
            reqwest::Method::GET,
            format!("{base}/api/v1/tips?{query}"),
            Some(&ana_token),
            None,
        )
        .await;
        let ids: Vec<&str> = found["tips"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [second_id], "{query}");
    }
    let (status, _) = api(
        reqwest::Method::PATCH,
        format!("{base}/api/v1/tips/{second_id}"),
        Some(&ana_token),
        Some(serde_json::json!({ "status": "deleted" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // An internal note, sealed like the tip itself.
    let (status, note) = api(
        reqwest::Method::POST,
        format!("{base}/api/v1/tips/{second_id}/notes"),
        Some(&ana_token),
        Some(serde_json::json!({ "text": "Called the source's lawyer." })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{note}");
    let note_id = note["id"].as_str().unwrap().to_owned();
    // Analysts work the queue; only admins read the audit trail.
    let (status, _) = api(
        reqwest::Method::GET,
        format!("{base}/api/v1/audit"),
        Some(&ana_token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // On the analyst's own machine: sign in, pull, decrypt.
    let review_dir = deployment.path().join("ana-config");
    let login = review(
        &review_dir,
        &["login", "--server", base, "--user", "ana"],
        &format!("{}\n{}\n", ana.password, code(&ana, 1)),
    );
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    let session_file = review_dir.join("session.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&session_file)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let out = deployment.path().join("pulled");
    let identity = deployment.identity_file("alice");
    let pull = review(
        &review_dir,
        &[
            "pull",
            "--identity",
            identity.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        "",
    );
    assert!(
        pull.status.success(),
        "{}",
        String::from_utf8_lossy(&pull.stderr)
    );
    let tip_dir = out.join(second_id);
    assert_eq!(
        std::fs::read_to_string(tip_dir.join("message.txt")).unwrap(),
        "second tip"
    );
    let facts: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tip_dir.join("facts.json")).unwrap())
            .unwrap();
    assert_eq!(facts["attachments"].as_array().unwrap().len(), 5);
    let attachments = tip_dir.join("attachments");
    for (name, content) in [
        ("escape.txt", "one"),
        ("passwd", "two"),
        ("attachment", "three"),
        ("photo.jpg", "four"),
        ("photo (2).jpg", "five"),
    ] {
        let got = std::fs::read_to_string(attachments.join(name));
        // The two photo.jpg files may arrive in either order; the contents must both be there.
        if name.starts_with("photo") {
            assert!(got.is_ok(), "{name}");
        } else {
            assert_eq!(got.unwrap(), content, "{name}");
        }
    }
    let mut photos: Vec<String> = ["photo.jpg", "photo (2).jpg"]
        .iter()
        .map(|n| std::fs::read_to_string(attachments.join(n)).unwrap())
        .collect();
    photos.sort();
    assert_eq!(photos, ["five", "four"]);
    assert!(!deployment.path().join("escape.txt").exists() && !out.join("escape.txt").exists());
    let pulled_note: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tip_dir.join("notes").join(format!("{note_id}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(pulled_note["text"], "Called the source's lawyer.");
    assert_eq!(pulled_note["author"], "ana");
    assert_eq!(
        std::fs::read_to_string(
            out.join(
                tips.iter().find(|t| t["id"] != second_id).unwrap()["id"]
                    .as_str()
                    .unwrap()
            )
            .join("attachments/photo.jpg")
        )
        .unwrap(),
        "JPEGDATA"
    );
    // Nothing is left half-written, and a second pull finds nothing new.
    let leftovers: Vec<_> = walk(&out)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let again = review(
        &review_dir,
        &[
            "pull",
            "--identity",
            identity.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        "",
    );
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("pulled 0 tips"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );

    // The admin reads an intact audit trail with every view, change and download in it.
    let root_token = token(&server, "root", &root, 0).await;
    let (status, trail) = api(
        reqwest::Method::GET,
        format!("{base}/api/v1/audit"),
        Some(&root_token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(trail["chain"]["intact"], true);
    let actions: Vec<&str> = trail["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "analyst.add",
        "key.add",
        "signin.success",
        "tip.update",
        "item.download",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    assert_eq!(
        actions.iter().filter(|a| **a == "item.download").count(),
        11,
        "3 + 7 items, and a note"
    );
    assert!(actions.contains(&"note.add"));
}
on_both_backends!(analyst_path, analyst_story);

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A passphrase-protected identity file works too: the passphrase is asked through pinentry
/// (here a stand-in that answers the Assuan protocol as a person typing would).
#[tokio::test(flavor = "multi_thread")]
async fn pull_with_a_passphrase_protected_identity() {
    use age::secrecy::{ExposeSecret, SecretString};
    let deployment = Deployment::new(Backend::Sqlite, "");
    let identity = age::x25519::Identity::generate();
    deployment.tipbox_ok(&[
        "keys",
        "add",
        &identity.to_public().to_string(),
        "--label",
        "dana",
    ]);
    // The identity file, encrypted with a passphrase (as `age -p` would).
    let encrypted_path = deployment.path().join("dana.key.age");
    {
        let encryptor = age::Encryptor::with_user_passphrase(SecretString::from(
            "correct horse battery".to_owned(),
        ));
        let mut out = Vec::new();
        let mut writer = encryptor.wrap_output(&mut out).unwrap();
        use std::io::Write;
        writer
            .write_all(format!("{}\n", identity.to_string().expose_secret()).as_bytes())
            .unwrap();
        writer.finish().unwrap();
        std::fs::write(&encrypted_path, out).unwrap();
    }
    let pinentry = deployment.path().join("pinentry-stand-in");
    std::fs::write(
        &pinentry,
        "#!/bin/sh\necho 'OK ready'\nwhile read -r cmd rest; do\n  case \"$cmd\" in\n    GETPIN) echo 'D correct horse battery'; echo OK ;;\n    BYE) echo OK; exit 0 ;;\n    *) echo OK ;;\n  esac\ndone\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pinentry, std::fs::Permissions::from_mode(0o755)).unwrap();

    let dana = add_analyst(&deployment, "dana", "analyst");
    let server = deployment.start();
    let response = client()
        .post(format!("{}/submit", server.public))
        .multipart(Form::new().text("message", "sealed to a protected key"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let review_dir = deployment.path().join("dana-config");
    let login = review(
        &review_dir,
        &["login", "--server", &server.analyst, "--user", "dana"],
        &format!("{}\n{}\n", dana.password, code(&dana, 0)),
    );
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    let out = deployment.path().join("pulled");
    let pull = Command::new(TIPBOX)
        .args([
            "review",
            "pull",
            "--identity",
            encrypted_path.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .env("TIPBOX_REVIEW_DIR", &review_dir)
        .env("PINENTRY_PROGRAM", &pinentry)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        pull.status.success(),
        "{}",
        String::from_utf8_lossy(&pull.stderr)
    );
    let tip_dir = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(
        std::fs::read_to_string(tip_dir.join("message.txt")).unwrap(),
        "sealed to a protected key"
    );
}
