//! Intake end to end, on SQLite and on PostgreSQL: a source submits over real HTTP, the tip is
//! sealed and committed, an operator exports it, and a reviewer decrypts it — in-process and
//! with the Debian `age` CLI.

mod common;

use common::*;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};

fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    getrandom::fill(&mut v).unwrap();
    v
}

async fn submit(server: &Server, form: Form, lang: &str) -> (StatusCode, String) {
    let response = client()
        .post(format!("{}/submit?lang={lang}", server.public))
        .multipart(form)
        .send()
        .await
        .expect("the server answers (never a reset connection)");
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// Message, facts and two attachments (one large enough to be staged in several chunks) go
/// in; the export decrypts to exactly what was sent, with either reviewer key and either age
/// implementation.
async fn submission_round_trip(backend: Backend) {
    let deployment = Deployment::new(backend, "");
    let alice = deployment.add_reviewer("alice");
    // A second reviewer with an SSH key: every item is sealed to both.
    let ssh_key = deployment.path().join("bob_ed25519");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "bob", "-f"])
        .arg(&ssh_key)
        .status()
        .unwrap();
    assert!(status.success());
    deployment.tipbox_ok(&[
        "keys",
        "add",
        ssh_key.with_extension("pub").to_str().unwrap(),
        "--label",
        "bob",
    ]);
    let server = deployment.start();

    let message = "我的家人在国内被警察威胁。They asked me to come back.";
    let big = random_bytes(3 * 1024 * 1024 + 12345);
    let small = b"small evidence file\n".to_vec();
    let form = Form::new()
        .text("message", message)
        .text("incident_type", "threats_to_family")
        .text("country", "Netherlands")
        .text("city", "Rotterdam")
        .text("when", "March 2026")
        .part(
            "attachment",
            Part::bytes(big.clone())
                .file_name("recording.bin")
                .mime_str("application/octet-stream")
                .unwrap(),
        )
        .part(
            "attachment",
            Part::bytes(small.clone())
                .file_name("照片说明.txt")
                .mime_str("text/plain")
                .unwrap(),
        );
    let (status, page) = submit(&server, form, "zh-Hant").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let receipt = receipt_from(&page);
    assert_eq!(receipt.split(' ').count(), 12, "{receipt}");
    assert!(tipbox::receipt::ReceiptCode::parse(&receipt, tipbox::i18n::Lang::ZhHant).is_ok());

    let (out, manifest) = deployment.export();
    let items = manifest["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    let tip_id = items[0]["tip_id"].as_str().unwrap();
    assert!(items.iter().all(|i| i["tip_id"] == tip_id));
    let key_set = &manifest["key_sets"][0];
    assert_eq!(key_set["keys"].as_array().unwrap().len(), 2);
    for item in items {
        assert_eq!(item["key_set"]["id"], key_set["id"]);
        assert!(
            item["received_at"].as_str().unwrap().ends_with(":00:00Z"),
            "coarsened to the hour"
        );
        assert!(item["item_id"].as_str().unwrap().len() >= 32);
        let on_disk = std::fs::metadata(out.join(item["file"].as_str().unwrap()))
            .unwrap()
            .len();
        assert_eq!(
            item["size"], on_disk,
            "the recorded size is the sealed file's size"
        );
    }
    let read =
        |item: &serde_json::Value| std::fs::read(out.join(item["file"].as_str().unwrap())).unwrap();

    let message_item = items_of(&manifest, "message")[0];
    assert_eq!(decrypt(&alice, &read(message_item)), message.as_bytes());
    let cli_message = age_cli_decrypt(
        &deployment.identity_file("alice"),
        &out.join(message_item["file"].as_str().unwrap()),
    );
    assert_eq!(cli_message, message.as_bytes());
    // Bob's SSH key opens it too, with stock age.
    assert_eq!(
        age_cli_decrypt(&ssh_key, &out.join(message_item["file"].as_str().unwrap())),
        message.as_bytes()
    );

    let facts: serde_json::Value =
        serde_json::from_slice(&decrypt(&alice, &read(items_of(&manifest, "facts")[0]))).unwrap();
    assert_eq!(facts["incident_type"], "threats_to_family");
    assert_eq!(facts["country"], "Netherlands");
    assert_eq!(facts["city"], "Rotterdam");
    assert_eq!(facts["when"], "March 2026");
    assert_eq!(facts["form_language"], "zh-Hant");
    let attachments = facts["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 2);

    for (expected_name, expected_bytes) in [("recording.bin", &big), ("照片说明.txt", &small)] {
        let meta = attachments
            .iter()
            .find(|a| a["file_name"] == expected_name)
            .unwrap();
        assert_eq!(meta["size"], expected_bytes.len());
        let item = items
            .iter()
            .find(|i| i["item_id"] == meta["item_id"])
            .unwrap();
        assert_eq!(item["kind"], "attachment");
        let file = out.join(item["file"].as_str().unwrap());
        assert_eq!(
            &decrypt(&alice, &std::fs::read(&file).unwrap()),
            expected_bytes
        );
        assert_eq!(
            &age_cli_decrypt(&deployment.identity_file("alice"), &file),
            expected_bytes
        );
    }
    // No file name is stored outside the sealed facts.
    let export_text = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(!export_text.contains("recording.bin"));
    let counts = deployment.counts().await;
    assert_eq!((counts.tips, counts.items), (1, 4));
    server.stop();
}
on_both_backends!(round_trip, submission_round_trip);

/// Without an active reviewer key nothing can be sealed: the form says submissions are paused
/// (503, in the source's language) and nothing is stored.
async fn no_key_means_paused(backend: Backend) {
    let deployment = Deployment::new(backend, "");
    let server = deployment.start();
    assert!(
        deployment.log().contains("no active reviewer key"),
        "serve warns at start"
    );
    let form_page = client()
        .get(format!("{}/submit?lang=zh-Hans", server.public))
        .send()
        .await
        .unwrap();
    assert_eq!(form_page.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = form_page.text().await.unwrap();
    assert!(
        text.contains(&tipbox::i18n::Lang::ZhHans.t("paused-title")),
        "{text}"
    );
    let form = Form::new().text("message", "hello").part(
        "attachment",
        Part::bytes(vec![1u8; 200_000]).file_name("a.bin"),
    );
    let (status, page) = submit(&server, form, "en").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.contains("Submissions are paused"));
    let counts = deployment.counts().await;
    assert_eq!((counts.tips, counts.items, counts.chunks), (0, 0, 0));

    // Adding a key resumes intake without a restart.
    deployment.add_reviewer("alice");
    let mut resumed = false;
    for _ in 0..50 {
        let (status, _) = submit(&server, Form::new().text("message", "now"), "en").await;
        if status == StatusCode::OK {
            resumed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        resumed,
        "a key added with `tipbox keys add` is picked up by the running server"
    );
}
on_both_backends!(no_key, no_key_means_paused);

const SMALL_LIMITS: &str = "[limits]\nmax_message_bytes = 1000\nmax_attachment_bytes = 1500000\n\
     max_total_bytes = 2000000\nmax_attachments = 2\n";

/// Every limit answers 413 with a page that names it — never a reset connection — and leaves
/// nothing behind, including the chunks of a large attachment staged before the limit hit.
async fn limits_answer_413(backend: Backend) {
    let deployment = Deployment::new(backend, SMALL_LIMITS);
    deployment.add_reviewer("alice");
    let server = deployment.start();

    let cases: Vec<(&str, Form, &str)> = vec![
        (
            "message too large",
            Form::new().text("message", "x".repeat(1001)),
            "The message is longer than",
        ),
        (
            "attachment too large (after staging some chunks)",
            Form::new().text("message", "hi").part(
                "attachment",
                Part::bytes(random_bytes(1_500_001)).file_name("big.bin"),
            ),
            "the limit for one file",
        ),
        (
            "attachment far too large, sent without a length (chunked)",
            Form::new().text("message", "hi").part(
                "attachment",
                Part::stream(reqwest::Body::wrap_stream(futures_util::stream::iter(
                    (0..40).map(|_| Ok::<_, std::io::Error>(random_bytes(256 * 1024))),
                )))
                .file_name("huge.bin"),
            ),
            "the limit for one file",
        ),
        (
            "too many attachments",
            Form::new()
                .text("message", "hi")
                .part("attachment", Part::bytes(vec![1]).file_name("1"))
                .part("attachment", Part::bytes(vec![2]).file_name("2"))
                .part("attachment", Part::bytes(vec![3]).file_name("3")),
            "at most 2 files",
        ),
        (
            "whole submission too large",
            Form::new()
                .text("message", "hi")
                .part(
                    "attachment",
                    Part::bytes(random_bytes(1_100_000)).file_name("1"),
                )
                .part(
                    "attachment",
                    Part::bytes(random_bytes(1_100_000)).file_name("2"),
                ),
            "the limit for one report",
        ),
    ];
    for (what, form, says) in cases {
        let (status, page) = submit(&server, form, "en").await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{what}: {page}");
        assert!(page.contains(says), "{what}: {page}");
        assert!(
            page.contains("Nothing from this attempt was stored"),
            "{what}"
        );
    }
    // Localized too.
    let (status, page) = submit(
        &server,
        Form::new().text("message", "x".repeat(1001)),
        "zh-Hans",
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(page.contains(&tipbox::i18n::Lang::ZhHans.t("error-too-large-title")));

    // Give abandoned staging a moment, then nothing may remain.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let counts = deployment.counts().await;
    assert_eq!(
        (counts.tips, counts.items, counts.chunks),
        (0, 0, 0),
        "{what}",
        what = "after refusals"
    );
}
on_both_backends!(limits, limits_answer_413);

/// Bad input gets a clear 400 page and stores nothing.
async fn bad_input_answers_400(backend: Backend) {
    let deployment = Deployment::new(backend, "");
    deployment.add_reviewer("alice");
    let server = deployment.start();
    let url = format!("{}/submit?lang=en", server.public);

    let raw = |content_type: &'static str, body: &'static [u8]| {
        client()
            .post(&url)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    for (what, response, says) in [
        (
            "malformed multipart",
            raw("multipart/form-data; boundary=XYZ", b"--XYZ\r\ngarbage")
                .await
                .unwrap(),
            "could not be read",
        ),
        (
            "not multipart",
            raw("application/x-www-form-urlencoded", b"message=hello")
                .await
                .unwrap(),
            "could not be read",
        ),
    ] {
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{what}");
        assert!(response.text().await.unwrap().contains(says), "{what}");
    }
    let cases: Vec<(&str, Form, &str)> = vec![
        (
            "missing message",
            Form::new().text("country", "NL"),
            "Please write a message",
        ),
        (
            "blank message",
            Form::new().text("message", "  \n "),
            "Please write a message",
        ),
        (
            "invalid UTF-8",
            Form::new().part("message", Part::bytes(vec![b'h', 0xff, 0xfe, b'i'])),
            "not valid text",
        ),
        (
            "unknown incident type",
            Form::new()
                .text("message", "hi")
                .text("incident_type", "alien_abduction"),
            "not one of the choices",
        ),
        (
            "unknown field",
            Form::new()
                .text("message", "hi")
                .text("source_ip", "1.2.3.4"),
            "does not know",
        ),
        (
            "invalid UTF-8 after an attachment was sealed",
            Form::new()
                .part(
                    "attachment",
                    Part::bytes(random_bytes(1_200_000)).file_name("a.bin"),
                )
                .part("message", Part::bytes(vec![0xc3, 0x28])),
            "not valid text",
        ),
    ];
    for (what, form, says) in cases {
        let (status, page) = submit(&server, form, "en").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {page}");
        assert!(page.contains(says), "{what}: {page}");
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let counts = deployment.counts().await;
    assert_eq!((counts.tips, counts.items, counts.chunks), (0, 0, 0));
}
on_both_backends!(bad_input, bad_input_answers_400);

/// A receipt means the tip is on disk: SIGKILL right after it is shown loses nothing.
async fn receipts_survive_sigkill(backend: Backend) {
    let deployment = Deployment::new(backend, "");
    let alice = deployment.add_reviewer("alice");
    let server = deployment.start();
    let mut receipts = Vec::new();
    let submissions = (0..20).map(|i| {
        let form = Form::new().text("message", format!("tip number {i}")).part(
            "attachment",
            Part::bytes(random_bytes(1_100_000 + i)).file_name("f.bin"),
        );
        submit(&server, form, "en")
    });
    for (status, page) in futures_util::future::join_all(submissions).await {
        assert_eq!(status, StatusCode::OK);
        receipts.push(receipt_from(&page));
    }
    server.kill9();
    let server = deployment.start();
    let (out, manifest) = deployment.export();
    let messages = items_of(&manifest, "message");
    assert_eq!(messages.len(), 20);
    let mut texts: Vec<String> = messages
        .iter()
        .map(|m| {
            String::from_utf8(decrypt(
                &alice,
                &std::fs::read(out.join(m["file"].as_str().unwrap())).unwrap(),
            ))
            .unwrap()
        })
        .collect();
    texts.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("tip number {i}")).collect();
    expected.sort();
    assert_eq!(texts, expected);
    assert_eq!(items_of(&manifest, "attachment").len(), 20);
    drop(server);
}
on_both_backends!(sigkill, receipts_survive_sigkill);

/// A unique marker in the message and in an attachment appears nowhere on disk: not in the
/// data directory, not in the database or its WAL, not in the server's log.
#[tokio::test(flavor = "multi_thread")]
async fn plaintext_never_reaches_disk_or_logs() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    deployment.add_reviewer("alice");
    let server = deployment.start();
    let marker = format!("MARKER-{}", hex::encode(random_bytes(12)));
    let attachment_marker = format!("ATTACH-{}", hex::encode(random_bytes(12)));
    let name_marker = format!("NAME-{}", hex::encode(random_bytes(8)));
    let mut attachment = random_bytes(2_500_000);
    attachment[1_000_000..1_000_000 + attachment_marker.len()]
        .copy_from_slice(attachment_marker.as_bytes());
    let form = Form::new()
        .text("message", format!("the secret is {marker}"))
        .text("city", marker.clone())
        .part(
            "attachment",
            Part::bytes(attachment).file_name(format!("{name_marker}.jpg")),
        )
        .part(
            "attachment",
            Part::bytes(attachment_marker.clone().into_bytes()).file_name("small.txt"),
        );
    let (status, page) = submit(&server, form, "en").await;
    assert_eq!(status, StatusCode::OK);
    let receipt = receipt_from(&page);
    // One more request of every kind, so the log has seen them all.
    client()
        .get(format!("{}/?lang=zh-Hans", server.public))
        .header("user-agent", "UA-MARKER-xyz")
        .send()
        .await
        .unwrap();
    client()
        .get(format!("{}/health", server.analyst))
        .send()
        .await
        .unwrap();
    server.stop();

    let needles: Vec<Vec<u8>> = vec![
        marker.clone().into_bytes(),
        attachment_marker.clone().into_bytes(),
        name_marker.clone().into_bytes(),
        receipt.clone().into_bytes(),
        b"UA-MARKER-xyz".to_vec(),
        b"127.0.0.1:".to_vec(),
    ];
    let mut files = Vec::new();
    let mut stack = vec![deployment.data_dir()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    assert!(files.iter().any(|f| f.ends_with("tipbox.db")));
    files.push(deployment.log_path.clone());
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for needle in &needles {
            // The log names its own listening address at start; that is not a client's.
            if file == &deployment.log_path && needle.as_slice() == b"127.0.0.1:" {
                continue;
            }
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                "{} contains {}",
                file.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
    let log = deployment.log();
    assert!(
        log.contains("request"),
        "request logging is on at debug level, and still says nothing identifying"
    );
}
