//! Intake end to end, on SQLite and on PostgreSQL: a source submits over real HTTP, the tip is
//! sealed and committed, an operator exports it, and a reviewer decrypts it — in-process and
//! with the Debian `age` CLI. Refused submissions (no key, over a limit, unreadable) store
//! nothing, and nothing a source sent is found in plaintext at rest or in the log.

use std::path::PathBuf;

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};

use crate::support::at_rest::{assert_not_logged, assert_not_stored, log_names_no_client};
use crate::support::{
    Backend, Deployment, Lang, ReceiptCode, age_cli_decrypt, attachment_item, client, decrypt,
    items_of, on_both_backends, open_report, random_bytes, random_marker, receipt_from,
    report_item, submit,
};

/// A tip with a message, facts and two attachments (one large enough to be staged in several
/// chunks), submitted in Traditional Chinese to alice's age key and bob's SSH key, and exported.
struct RoundTrip {
    deployment: Deployment,
    alice: age::x25519::Identity,
    bob_ssh_key: PathBuf,
    receipt: String,
    export: PathBuf,
    manifest: serde_json::Value,
    message: &'static str,
    attachments: [(&'static str, Vec<u8>); 2],
}

impl RoundTrip {
    fn file(&self, item: &serde_json::Value) -> PathBuf {
        self.export.join(item["file"].as_str().unwrap())
    }

    fn read(&self, item: &serde_json::Value) -> Vec<u8> {
        std::fs::read(self.file(item)).unwrap()
    }
}

async fn round_trip(backend: Backend) -> RoundTrip {
    let deployment = Deployment::new(backend, "");
    let alice = deployment.add_reviewer("alice");
    // A second reviewer with an SSH key: every item is sealed to both.
    let bob_ssh_key = deployment.path().join("bob_ed25519");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "bob", "-f"])
        .arg(&bob_ssh_key)
        .status()
        .unwrap();
    assert!(status.success());
    deployment.tipbox_ok(&[
        "keys",
        "add",
        bob_ssh_key.with_extension("pub").to_str().unwrap(),
        "--label",
        "bob",
    ]);
    let server = deployment.start();

    let message = "我的家人在国内被警察威胁。They asked me to come back.";
    let attachments = [
        ("recording.bin", random_bytes(3 * 1024 * 1024 + 12345)),
        ("照片说明.txt", b"small evidence file\n".to_vec()),
    ];
    let mut form = Form::new()
        .text("message", message)
        .text("incident_type", "threats_to_family")
        .text("country", "Netherlands")
        .text("city", "Rotterdam")
        .text("when", "March 2026");
    for (name, bytes) in &attachments {
        form = form.part(
            "attachment",
            Part::bytes(bytes.clone())
                .file_name(*name)
                .mime_str("application/octet-stream")
                .unwrap(),
        );
    }
    let (status, page) = submit(&server, form, "zh-Hant").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    server.stop();
    let (export, manifest) = deployment.export();
    RoundTrip {
        deployment,
        alice,
        bob_ssh_key,
        receipt: receipt_from(&page),
        export,
        manifest,
        message,
        attachments,
    }
}

async fn the_receipt_is_twelve_words_in_the_form_s_language(backend: Backend) {
    let tip = round_trip(backend).await;
    assert_eq!(tip.receipt.split(' ').count(), 12, "{}", tip.receipt);
    assert!(ReceiptCode::parse(&tip.receipt, Lang::ZhHant).is_ok());
}

/// One tip of three items (the report and two attachments), each sealed to the one key set of
/// both keys, received at the hour, with the sealed file's size; no file name outside the
/// sealed report.
async fn the_export_lists_every_item_of_the_tip(backend: Backend) {
    let tip = round_trip(backend).await;
    let items = tip.manifest["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let tip_id = items[0]["tip_id"].as_str().unwrap();
    assert!(items.iter().all(|i| i["tip_id"] == tip_id));
    let key_set = &tip.manifest["key_sets"][0];
    assert_eq!(key_set["keys"].as_array().unwrap().len(), 2);
    for item in items {
        assert_eq!(item["key_set"]["id"], key_set["id"]);
        assert!(
            item["received_at"].as_str().unwrap().ends_with(":00:00Z"),
            "coarsened to the hour"
        );
        assert!(item["item_id"].as_str().unwrap().len() >= 32);
        let on_disk = std::fs::metadata(tip.file(item)).unwrap().len();
        assert_eq!(
            item["size"], on_disk,
            "the recorded size is the sealed file's size"
        );
    }
    let manifest_text = std::fs::read_to_string(tip.export.join("manifest.json")).unwrap();
    assert!(!manifest_text.contains("recording.bin"));
    let counts = tip.deployment.counts().await;
    assert_eq!((counts.tips, counts.items), (1, 3));
}

/// The export decrypts to exactly what was sent: the report (message and facts, one item) opens
/// with alice's age key (in-process and with the `age` CLI) and with bob's SSH key (with stock
/// age); it holds the message and what the form said, with each attachment's name and size;
/// each attachment decrypts to exactly the bytes sent.
async fn the_export_decrypts_to_what_was_sent(backend: Backend) {
    let tip = round_trip(backend).await;
    let report = report_item(&tip.manifest);
    assert_eq!(report["position"], 0);
    assert!(items_of(&tip.manifest, "message").is_empty());
    assert!(items_of(&tip.manifest, "facts").is_empty());
    let expected = tip.message;
    let (message, facts) = open_report(&decrypt(&tip.alice, &tip.read(report)));
    assert_eq!(message, expected);
    let alice_file = tip.deployment.identity_file("alice");
    let (with_cli, same) = open_report(&age_cli_decrypt(&alice_file, &tip.file(report)));
    assert_eq!((with_cli.as_str(), &same), (expected, &facts));
    let (with_ssh, _) = open_report(&age_cli_decrypt(&tip.bob_ssh_key, &tip.file(report)));
    assert_eq!(with_ssh, expected);
    assert_eq!(facts["format"], "tipbox-report/1");
    assert_eq!(facts["incident_type"], "threats_to_family");
    assert_eq!(facts["country"], "Netherlands");
    assert_eq!(facts["city"], "Rotterdam");
    assert_eq!(facts["when"], "March 2026");
    assert_eq!(facts["form_language"], "zh-Hant");
    assert_eq!(facts["attachments"].as_array().unwrap().len(), 2);
    for (name, bytes) in &tip.attachments {
        let item = attachment_item(&tip.manifest, &facts, name, bytes.len());
        assert_eq!(&decrypt(&tip.alice, &tip.read(item)), bytes);
        assert_eq!(&age_cli_decrypt(&alice_file, &tip.file(item)), bytes);
    }
}

/// Without an active reviewer key nothing can be sealed: the form says submissions are paused
/// (503, in the source's language) and nothing is stored.
async fn without_a_key_intake_is_paused(backend: Backend) {
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
    assert!(text.contains(&Lang::ZhHans.t("paused-title")), "{text}");
    let form = Form::new().text("message", "hello").part(
        "attachment",
        Part::bytes(vec![1u8; 200_000]).file_name("a.bin"),
    );
    let (status, page) = submit(&server, form, "en").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.contains("Submissions are paused"));
    let counts = deployment.counts().await;
    assert_eq!((counts.tips, counts.items, counts.chunks), (0, 0, 0));
}

async fn a_key_added_resumes_intake_without_a_restart(backend: Backend) {
    let deployment = Deployment::new(backend, "");
    let server = deployment.start();
    let (status, _) = submit(&server, Form::new().text("message", "paused"), "en").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    deployment.add_reviewer("alice");
    let mut resumed = false;
    for _ in 0..50 {
        let (status, _) = submit(&server, Form::new().text("message", "now"), "en").await;
        if status == StatusCode::OK {
            resumed = true;
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        resumed,
        "a key added with `tipbox keys add` is picked up by the running server"
    );
    assert_eq!(deployment.counts().await.tips, 1);
}

const SMALL_LIMITS: &str = "[limits]\nmax_message_bytes = 1000\nmax_attachment_bytes = 1500000\n\
     max_total_bytes = 2000000\nmax_attachments = 2\n";

/// Every limit answers 413 with a page that names it — never a reset connection — and leaves
/// nothing behind, including the chunks of a large attachment staged before the limit hit.
async fn every_limit_answers_413_and_stores_nothing(backend: Backend) {
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
    assert!(page.contains(&Lang::ZhHans.t("error-too-large-title")));

    // Give abandoned staging a moment, then nothing may remain.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let counts = deployment.counts().await;
    assert_eq!(
        (counts.tips, counts.items, counts.chunks),
        (0, 0, 0),
        "after refusals"
    );
}

/// Bad input gets a clear 400 page and stores nothing.
async fn bad_input_answers_400_and_stores_nothing(backend: Backend) {
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

/// A unique marker in the message, a detail field, an attachment and a file name appears
/// nowhere at rest: not in the data directory (the SQLite database and its WAL), not in any
/// value PostgreSQL holds, not in the server's log; nor does the receipt, the User-Agent or a
/// client's address.
async fn plaintext_never_reaches_disk_or_logs(backend: Backend) {
    let deployment = Deployment::new(backend, "");
    deployment.add_reviewer("alice");
    let server = deployment.start();
    let marker = random_marker("MARKER");
    let attachment_marker = random_marker("ATTACH");
    let name_marker = random_marker("NAME");
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

    let needles = [
        marker.as_bytes(),
        attachment_marker.as_bytes(),
        name_marker.as_bytes(),
        receipt.as_bytes(),
        b"UA-MARKER-xyz",
    ];
    assert_not_stored(&deployment, &needles).await;
    assert_not_stored(&deployment, &[b"127.0.0.1:"]).await;
    assert_not_logged(&deployment, &needles);
    // The log names its own listening addresses at start; never a client's.
    assert!(log_names_no_client(&deployment));
    assert!(
        deployment.log().contains("request"),
        "request logging is on at debug level, and still says nothing identifying"
    );
}

on_both_backends!(
    the_receipt_is_twelve_words_in_the_form_s_language,
    the_export_lists_every_item_of_the_tip,
    the_export_decrypts_to_what_was_sent,
    without_a_key_intake_is_paused,
    a_key_added_resumes_intake_without_a_restart,
    every_limit_answers_413_and_stores_nothing,
    bad_input_answers_400_and_stores_nothing,
    plaintext_never_reaches_disk_or_logs,
);
