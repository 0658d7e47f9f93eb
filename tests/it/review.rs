//! The whole analyst path over real sockets: a source submits, an analyst signs in with a
//! computed TOTP code, finds the tip, triages it through the API, and pulls and decrypts it on
//! "their own machine" with `tipbox review`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use reqwest::StatusCode;

use crate::support::analyst::{
    Analyst, add_analyst, api, api_get, code, review_login, review_ok, review_pull, token,
};
use crate::support::at_rest::files_under;
use crate::support::{
    Backend, Deployment, Server, TIPBOX, on_both_backends, submit_message, submit_ok, tip_form,
};

/// Two tips from sources, the first with a photo, the second with five attachments under
/// hostile file names; the analyst ana, signed in.
struct Queue {
    deployment: Deployment,
    server: Server,
    ana: Analyst,
    ana_token: String,
    first_id: String,
    second_id: String,
}

async fn queue(backend: Backend) -> Queue {
    let deployment = Deployment::new(backend, "");
    deployment.add_reviewer("alice");
    let ana = add_analyst(&deployment, "ana", "analyst");
    let server = deployment.start();
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
        submit_ok(&server, tip_form(message, &files)).await;
    }
    let ana_token = token(&server, &ana, 0).await;
    let tips = api_get(&server, &ana_token, "/api/v1/tips").await;
    let tips = tips["tips"].as_array().unwrap();
    let id_with = |items: usize| {
        tips.iter()
            .find(|t| t["items"].as_array().unwrap().len() == items)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (first_id, second_id) = (id_with(2), id_with(6));
    Queue {
        deployment,
        server,
        ana,
        ana_token,
        first_id,
        second_id,
    }
}

impl Queue {
    /// An admin's API token (the admin made now, while serve runs).
    async fn admin_token(&self) -> String {
        let root = add_analyst(&self.deployment, "root", "admin");
        token(&self.server, &root, 0).await
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (StatusCode, serde_json::Value) {
        let url = format!("{}{path}", self.server.analyst);
        api(method, url, Some(&self.ana_token), body).await
    }

    async fn add_note(&self, text: &str) -> String {
        let path = format!("/api/v1/tips/{}/notes", self.second_id);
        let body = serde_json::json!({ "text": text });
        let (status, note) = self.call(reqwest::Method::POST, &path, Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{note}");
        note["id"].as_str().unwrap().to_owned()
    }

    /// ana signs in with `tipbox review login` and pulls with alice's key: the pull directory.
    fn pull(&self) -> PathBuf {
        let review_dir = self.deployment.path().join("ana-config");
        review_login(&review_dir, &self.server, &self.ana, 1);
        let out = self.deployment.path().join("pulled");
        review_pull(
            &review_dir,
            &self.deployment.identity_file("alice"),
            &out,
            &[],
        );
        out
    }
}

async fn without_a_session_every_api_route_is_refused(backend: Backend) {
    let queue = queue(backend).await;
    let base = &queue.server.analyst;
    let tip = &queue.second_id;
    for (method, path) in [
        (reqwest::Method::GET, "/api/v1/tips".to_owned()),
        (reqwest::Method::GET, format!("/api/v1/tips/{tip}")),
        (reqwest::Method::PATCH, format!("/api/v1/tips/{tip}")),
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
}

/// The queue, one per page (both tips arrived in the same hour, the precision kept); every tip
/// new, received at the hour, sealed to a key set, with items that are not empty.
async fn the_queue_pages_newest_first(backend: Backend) {
    let queue = queue(backend).await;
    let page = api_get(&queue.server, &queue.ana_token, "/api/v1/tips?limit=1").await;
    assert_eq!(page["tips"].as_array().unwrap().len(), 1);
    let next = page["next"].as_str().unwrap();
    let path = format!("/api/v1/tips?limit=1&before={next}");
    let page2 = api_get(&queue.server, &queue.ana_token, &path).await;
    assert_eq!(page2["tips"].as_array().unwrap().len(), 1);
    assert_ne!(page["tips"][0]["id"], page2["tips"][0]["id"]);
    let all = api_get(&queue.server, &queue.ana_token, "/api/v1/tips").await;
    let tips = all["tips"].as_array().unwrap();
    assert_eq!(tips.len(), 2);
    for tip in tips {
        assert_eq!(tip["status"], "new");
        assert!(tip["received_at"].as_str().unwrap().ends_with(":00:00Z"));
        assert!(tip["key_set"].is_i64());
        for item in tip["items"].as_array().unwrap() {
            assert!(item["size"].as_i64().unwrap() > 0);
        }
    }
}

async fn triage_sets_status_labels_and_assignee_and_the_filters_find_it(backend: Backend) {
    let queue = queue(backend).await;
    let second_id = queue.second_id.as_str();
    let (status, updated) = queue
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/tips/{second_id}"),
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
        let found = api_get(
            &queue.server,
            &queue.ana_token,
            &format!("/api/v1/tips?{query}"),
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
}

/// A status that is not one of the list is refused, and the tip is as it was.
async fn an_unknown_status_is_refused(backend: Backend) {
    let queue = queue(backend).await;
    let before = queue.deployment.stored().await;
    let (status, _) = queue
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/tips/{}", queue.second_id),
            Some(serde_json::json!({ "status": "deleted" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(queue.deployment.stored().await, before);
}

/// Analysts work the queue; only admins read the audit trail.
async fn only_admins_read_the_audit_trail(backend: Backend) {
    let queue = queue(backend).await;
    let (status, _) = queue
        .call(reqwest::Method::GET, "/api/v1/audit", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let root_token = queue.admin_token().await;
    let trail = api_get(&queue.server, &root_token, "/api/v1/audit").await;
    assert_eq!(trail["chain"]["intact"], true);
}

/// `tipbox review login` keeps its session in a file only its owner reads; `pull` writes each
/// tip's message, facts and attachments in plaintext on the analyst's machine.
async fn review_pull_decrypts_every_tip(backend: Backend) {
    let queue = queue(backend).await;
    let out = queue.pull();
    use std::os::unix::fs::PermissionsExt;
    let session_file = queue.deployment.path().join("ana-config/session.json");
    let mode = std::fs::metadata(&session_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let tip_dir = out.join(&queue.second_id);
    assert_eq!(
        std::fs::read_to_string(tip_dir.join("message.txt")).unwrap(),
        "second tip"
    );
    let facts: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tip_dir.join("facts.json")).unwrap())
            .unwrap();
    assert_eq!(facts["attachments"].as_array().unwrap().len(), 5);
    assert_eq!(
        std::fs::read_to_string(out.join(&queue.first_id).join("attachments/photo.jpg")).unwrap(),
        "JPEGDATA"
    );
}

/// Attachments named to escape the tip's directory land inside it, under safe names; two of
/// the same name both arrive.
async fn hostile_file_names_stay_inside_the_tip_s_directory(backend: Backend) {
    let queue = queue(backend).await;
    let out = queue.pull();
    let attachments = out.join(&queue.second_id).join("attachments");
    for (name, content) in [
        ("escape.txt", "one"),
        ("passwd", "two"),
        ("attachment", "three"),
    ] {
        assert_eq!(
            std::fs::read_to_string(attachments.join(name)).unwrap(),
            content,
            "{name}"
        );
    }
    // The two photo.jpg files may arrive in either order; the contents must both be there.
    let mut photos: Vec<String> = ["photo.jpg", "photo (2).jpg"]
        .iter()
        .map(|n| std::fs::read_to_string(attachments.join(n)).unwrap())
        .collect();
    photos.sort();
    assert_eq!(photos, ["five", "four"]);
    assert!(
        !queue.deployment.path().join("escape.txt").exists() && !out.join("escape.txt").exists()
    );
}

/// Nothing is left half-written, and a second pull finds nothing new.
async fn a_second_pull_finds_nothing_new(backend: Backend) {
    let queue = queue(backend).await;
    let out = queue.pull();
    let leftovers: Vec<_> = files_under(&out)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let again = review_pull(
        &queue.deployment.path().join("ana-config"),
        &queue.deployment.identity_file("alice"),
        &out,
        &[],
    );
    assert!(again.contains("pulled 0 tips"), "{again}");
}

/// An internal note is sealed like the tip, and pulled with its author.
async fn a_note_is_pulled_with_its_author(backend: Backend) {
    let queue = queue(backend).await;
    let note_id = queue.add_note("Called the source's lawyer.").await;
    let out = queue.pull();
    let note = out
        .join(&queue.second_id)
        .join("notes")
        .join(format!("{note_id}.json"));
    let pulled: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(note).unwrap()).unwrap();
    assert_eq!(pulled["text"], "Called the source's lawyer.");
    assert_eq!(pulled["author"], "ana");
}

/// The admin reads an intact audit trail with every sign-in, change, note and download in it.
async fn the_audit_trail_has_every_view_change_and_download(backend: Backend) {
    let queue = queue(backend).await;
    let (status, _) = queue
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/tips/{}", queue.second_id),
            Some(serde_json::json!({ "status": "in_review" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    queue.add_note("Called the source's lawyer.").await;
    queue.pull();
    let root_token = queue.admin_token().await;
    let trail = api_get(&queue.server, &root_token, "/api/v1/audit").await;
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
        "note.add",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    assert_eq!(
        actions.iter().filter(|a| **a == "item.download").count(),
        9,
        "2 + 6 items, and a note"
    );
}

on_both_backends!(
    without_a_session_every_api_route_is_refused,
    the_queue_pages_newest_first,
    triage_sets_status_labels_and_assignee_and_the_filters_find_it,
    an_unknown_status_is_refused,
    only_admins_read_the_audit_trail,
    review_pull_decrypts_every_tip,
    hostile_file_names_stay_inside_the_tip_s_directory,
    a_second_pull_finds_nothing_new,
    a_note_is_pulled_with_its_author,
    the_audit_trail_has_every_view_change_and_download,
);

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
    submit_message(&server, "sealed to a protected key").await;

    let review_dir = deployment.path().join("dana-config");
    review_ok(
        &review_dir,
        &["login", "--server", &server.analyst, "--user", "dana"],
        &format!("{}\n{}\n", dana.password, code(&dana, 0)),
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
