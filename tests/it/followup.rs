//! Two-way follow-up over real sockets: a source submits, an analyst replies, the source comes
//! back with the receipt (a form, never a URL), reads the reply, adds a message and a file,
//! deletes the reply; the analyst's client decrypts everything. Plus typo, wrong and unknown
//! receipts, session expiry and sign-out, the sign-in budget, and the walls between tips.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use reqwest::header::COOKIE;
use reqwest::multipart::{Form, Part};

use crate::support::analyst::{
    Analyst, add_analyst, api, api_get, review_login, review_pull, sealed_item, token,
};
use crate::support::at_rest::{assert_not_logged, assert_not_stored, contains, files_under};
use crate::support::web::{
    CASE_COOKIE, cookie_from, form, get, hidden_csrf, post_receipt, source_sign_in,
};
use crate::support::{
    Backend, Deployment, Lang, ReceiptCode, Server, client, decrypt, on_both_backends, open_report,
    random_marker, submit_message,
};

/// A source signed in to its case page with its receipt; the analyst ana, signed in to the API.
struct Case {
    deployment: Deployment,
    alice: age::x25519::Identity,
    ana: Analyst,
    server: Server,
    receipt: String,
    /// The source's session: the `Cookie` header value.
    cookie: String,
    /// The case page's form token.
    csrf: String,
    token: String,
    tip_id: String,
}

async fn signed_in_source(backend: Backend) -> Case {
    let deployment = Deployment::new(backend, "");
    let alice = deployment.add_reviewer("alice");
    let ana = add_analyst(&deployment, "ana", "analyst");
    let server = deployment.start();
    let receipt = submit_message(&server, "they visited my parents").await;
    let cookie = source_sign_in(&server, &receipt).await;
    let token = token(&server, &ana, 0).await;
    let tip_id = only_tip(&server, &token).await;
    let mut case = Case {
        deployment,
        alice,
        ana,
        server,
        receipt,
        cookie,
        csrf: String::new(),
        token,
        tip_id,
    };
    let (status, page) = case.page().await;
    assert_eq!(status, StatusCode::OK);
    case.csrf = hidden_csrf(&page);
    case
}

/// The one tip in the queue.
async fn only_tip(server: &Server, token: &str) -> String {
    let page = api_get(server, token, "/api/v1/tips").await;
    let tips = page["tips"].as_array().unwrap();
    assert_eq!(tips.len(), 1);
    tips[0]["id"].as_str().unwrap().to_owned()
}

/// The ids of the tips the source has added to (`?followed_up=true`).
async fn followed_up(server: &Server, token: &str) -> Vec<String> {
    let page = api_get(server, token, "/api/v1/tips?followed_up=true").await;
    page["tips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The source's case page: its status and HTML.
async fn case_page(server: &Server, cookie: &str) -> (StatusCode, String) {
    let response = get(
        &format!("{}/followup/case?lang=en", server.public),
        Some(cookie),
    )
    .await;
    (response.status(), response.text().await.unwrap())
}

/// Adds a message and files to the case of the session `cookie`, with the form token `csrf`.
async fn add(
    server: &Server,
    cookie: &str,
    csrf: &str,
    message: &str,
    files: &[(&str, &[u8])],
) -> reqwest::Response {
    let mut form = Form::new()
        .text("csrf", csrf.to_owned())
        .text("message", message.to_owned());
    for (name, bytes) in files {
        form = form.part(
            "attachment",
            Part::bytes(bytes.to_vec()).file_name(name.to_string()),
        );
    }
    client()
        .post(format!("{}/followup/case/add?lang=en", server.public))
        .header(COOKIE, cookie)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

async fn delete_reply(server: &Server, cookie: &str, csrf: &str, reply: &str) -> reqwest::Response {
    form(
        &format!("{}/followup/case/delete-reply?lang=en", server.public),
        Some(cookie),
        &[("csrf", csrf), ("reply", reply), ("confirm", "yes")],
    )
    .await
}

/// An analyst's reply to `tip_id` through the API; its id.
async fn reply_to(server: &Server, token: &str, tip_id: &str, text: &str) -> String {
    let (status, reply) = api(
        reqwest::Method::POST,
        format!("{}/api/v1/tips/{tip_id}/replies", server.analyst),
        Some(token),
        Some(serde_json::json!({ "text": text })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(reply["kind"], "reply");
    reply["id"].as_str().unwrap().to_owned()
}

/// A conversation on a case: a reply (read by the source), and an addition with a file, each
/// carrying a marker to look for.
struct Conversation {
    reply_marker: String,
    followup_marker: String,
    file_marker: String,
    reply_id: String,
}

impl Case {
    async fn converse(&self) -> Conversation {
        let reply_marker = random_marker("REPLY");
        let followup_marker = random_marker("FOLLOWUP");
        let file_marker = random_marker("FILE");
        let reply_id = self.reply(&reply_marker).await;
        self.page().await;
        let response = self
            .add(
                &format!("More: {followup_marker}"),
                &[("map.png", file_marker.as_bytes())],
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        Conversation {
            reply_marker,
            followup_marker,
            file_marker,
            reply_id,
        }
    }

    async fn page(&self) -> (StatusCode, String) {
        case_page(&self.server, &self.cookie).await
    }

    async fn reply(&self, text: &str) -> String {
        reply_to(&self.server, &self.token, &self.tip_id, text).await
    }

    async fn add(&self, message: &str, files: &[(&str, &[u8])]) -> reqwest::Response {
        add(&self.server, &self.cookie, &self.csrf, message, files).await
    }

    async fn delete_reply(&self, reply: &str) -> reqwest::Response {
        delete_reply(&self.server, &self.cookie, &self.csrf, reply).await
    }

    async fn tip(&self) -> serde_json::Value {
        api_get(
            &self.server,
            &self.token,
            &format!("/api/v1/tips/{}", self.tip_id),
        )
        .await
    }

    async fn sign_out(&self) -> reqwest::Response {
        form(
            &format!("{}/followup/signout?lang=en", self.server.public),
            Some(&self.cookie),
            &[("csrf", &self.csrf)],
        )
        .await
    }

    /// The source's sealed copy of a reply, as stored (`None` once erased).
    async fn source_copy(&self, reply: &str) -> Option<Vec<u8>> {
        self.deployment
            .query_bytes(&format!("SELECT sealed FROM replies WHERE id = '{reply}'"))
            .await
    }
}

/// The case page of a fresh tip: received, no replies yet.
async fn a_receipt_opens_the_case_page(backend: Backend) {
    let case = signed_in_source(backend).await;
    let (_, page) = case.page().await;
    assert!(page.contains("Received. The reviewers have not started on it yet."));
    assert!(page.contains("id=\"no-replies\""));
}

/// The reviewers' copy of a reply is an item of kind reply, sealed to the reviewer keys, with
/// its author; the reply is not yet read.
async fn a_reply_is_sealed_for_the_reviewers_too(backend: Backend) {
    let case = signed_in_source(backend).await;
    let marker = random_marker("REPLY");
    let reply_id = case.reply(&format!("Thank you. {marker}")).await;
    let tip = case.tip().await;
    assert_eq!(tip["replies"][0]["id"], reply_id.as_str());
    assert!(tip["replies"][0]["read_at"].is_null());
    let item = tip["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "reply")
        .unwrap();
    assert_eq!(item["id"], reply_id.as_str());
    let sealed = sealed_item(&case.server, &case.token, &reply_id).await;
    let opened: serde_json::Value = serde_json::from_slice(&decrypt(&case.alice, &sealed)).unwrap();
    assert_eq!(opened["author"], "ana");
    assert!(opened["text"].as_str().unwrap().contains(&marker));
}

/// The source reads the reply as text (HTML in it is escaped, not interpreted), and the
/// analysts see it was read.
async fn the_source_reads_a_reply_and_it_is_marked_read(backend: Backend) {
    let case = signed_in_source(backend).await;
    let marker = random_marker("REPLY");
    let reply_id = case
        .reply(&format!("Thank you. {marker} <b>When</b>?"))
        .await;
    let (_, page) = case.page().await;
    assert!(page.contains(&marker), "{page}");
    assert!(
        page.contains("&#60;b&#62;When&#60;/b&#62;?"),
        "HTML in a reply is shown as text"
    );
    assert!(page.contains(&format!("id=\"reply-{reply_id}\"")));
    let tip = case.tip().await;
    assert!(tip["replies"][0]["read_at"].is_string());
    assert!(tip["source_activity_at"].is_null());
}

/// The source adds a message and a file: they land on the same tip, after the reply, as new
/// activity; the page says so only right after adding.
async fn the_source_adds_to_the_same_tip(backend: Backend) {
    let case = signed_in_source(backend).await;
    case.reply("Can you tell us more?").await;
    let response = case.add("More details", &[("map.png", b"PNG")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, page) = case.page().await;
    assert!(!page.contains("id=\"added\""), "only right after adding");
    let response = get(
        &format!("{}/followup/case?lang=en&added=1", case.server.public),
        Some(&case.cookie),
    )
    .await;
    assert!(response.text().await.unwrap().contains("id=\"added\""));
    assert_eq!(only_tip(&case.server, &case.token).await, case.tip_id);
    assert_eq!(
        followed_up(&case.server, &case.token).await,
        std::slice::from_ref(&case.tip_id)
    );
    let tip = case.tip().await;
    assert!(tip["source_activity_at"].is_string());
    let kinds: Vec<&str> = tip["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["report", "reply", "report", "attachment"],
        "the first report, the reply, the addition's report (message and facts) and its file"
    );
}

/// Deleting a read reply erases the source's sealed copy — the stored value is gone, and its
/// bytes are nowhere at rest once the server has stopped — while the analysts see it was read
/// and deleted.
async fn deleting_a_reply_erases_the_source_s_copy(backend: Backend) {
    let case = signed_in_source(backend).await;
    let marker = random_marker("REPLY");
    let reply_id = case.reply(&marker).await;
    case.page().await;
    let copy = case
        .source_copy(&reply_id)
        .await
        .expect("the source's copy");
    // Without the box ticked, nothing is deleted, and the page says what to do.
    let unconfirmed = form(
        &format!("{}/followup/case/delete-reply?lang=en", case.server.public),
        Some(&case.cookie),
        &[("csrf", &case.csrf), ("reply", &reply_id)],
    )
    .await;
    assert_eq!(unconfirmed.status(), StatusCode::BAD_REQUEST);
    assert!(unconfirmed.text().await.unwrap().contains("tick the box"));
    assert!(case.page().await.1.contains(&marker), "still there");
    let response = case.delete_reply(&reply_id).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, page) = case.page().await;
    assert!(!page.contains(&marker));
    let tip = case.tip().await;
    assert!(tip["replies"][0]["deleted_by_source_at"].is_string());
    assert!(tip["replies"][0]["read_at"].is_string());
    assert_eq!(
        case.source_copy(&reply_id).await,
        None,
        "erased in the database"
    );
    let Case {
        deployment, server, ..
    } = case;
    server.stop();
    assert_not_stored(&deployment, &[&copy[copy.len() / 2..][..48]]).await;
}

/// While serve runs, too: a deleted reply's sealed copy is in no file of the data directory (the
/// SQLite WAL included), as retention makes sure for deleted tips.
#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_reply_is_in_no_file_while_serve_runs() {
    let case = signed_in_source(Backend::Sqlite).await;
    let reply_id = case.reply(&random_marker("REPLY")).await;
    case.page().await;
    let copy = case
        .source_copy(&reply_id)
        .await
        .expect("the source's copy");
    assert_eq!(
        case.delete_reply(&reply_id).await.status(),
        StatusCode::SEE_OTHER
    );
    let piece = &copy[copy.len() / 2..][..48];
    for file in files_under(&case.deployment.data_dir()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !contains(&bytes, piece),
            "{} holds the deleted reply",
            file.display()
        );
    }
}

/// The source's additions and the reply, decrypted by `tipbox review pull` on the analyst's
/// machine; a second pull duplicates nothing.
async fn the_review_client_decrypts_the_conversation(backend: Backend) {
    let case = signed_in_source(backend).await;
    let talk = case.converse().await;
    let review_dir = case.deployment.path().join("review-home");
    review_login(&review_dir, &case.server, &case.ana, 1);
    let pulled = case.deployment.path().join("pulled");
    let identity = case.deployment.identity_file("alice");
    review_pull(&review_dir, &identity, &pulled, &[]);
    let dir = pulled.join(&case.tip_id);
    assert_eq!(
        std::fs::read_to_string(dir.join("message.txt")).unwrap(),
        "they visited my parents"
    );
    let followups: Vec<_> = std::fs::read_dir(dir.join("followups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    assert_eq!(followups.len(), 1);
    assert!(
        std::fs::read_to_string(&followups[0])
            .unwrap()
            .contains(&talk.followup_marker)
    );
    assert_eq!(
        std::fs::read(dir.join("followups").join("map.png")).unwrap(),
        talk.file_marker.as_bytes(),
        "a file the source added later is with its addition"
    );
    assert_eq!(
        std::fs::read_dir(dir.join("attachments")).unwrap().count(),
        0,
        "not with the first submission's files"
    );
    let reply_file =
        std::fs::read_to_string(dir.join("replies").join(format!("{}.json", talk.reply_id)))
            .unwrap();
    assert!(reply_file.contains(&talk.reply_marker));
    let followups = std::fs::read_dir(dir.join("followups")).unwrap().count();
    review_pull(&review_dir, &identity, &pulled, &["--all"]);
    assert!(!dir.join("message (2).txt").exists());
    assert_eq!(
        std::fs::read_dir(dir.join("followups")).unwrap().count(),
        followups
    );
}

/// A tip pulled before the source added to it comes back in the next pull, which downloads
/// only what was added — not the tip again in full — and leaves what was pulled as it was.
async fn a_pull_after_a_follow_up_downloads_only_what_is_new(backend: Backend) {
    let case = signed_in_source(backend).await;
    let review_dir = case.deployment.path().join("review-home");
    review_login(&review_dir, &case.server, &case.ana, 1);
    let pulled = case.deployment.path().join("pulled");
    let identity = case.deployment.identity_file("alice");
    review_pull(&review_dir, &identity, &pulled, &[]);
    let downloads = async || -> Vec<String> {
        let entries = case.deployment.audit_entries().await;
        let items = entries.into_iter().filter(|e| e.action == "item.download");
        items.map(|e| e.subject).collect()
    };
    let first = downloads().await;
    assert_eq!(first.len(), 1, "the report: {first:?}");

    let response = case.add("one more thing", &[("photo.jpg", b"jpeg")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let mut added: Vec<String> = case.tip().await["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| !i["added_at"].is_null())
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(added.len(), 2, "a report (message and facts) and the file");
    let again = review_pull(&review_dir, &identity, &pulled, &[]);
    assert!(again.contains("pulled 1 tips"), "{again}");
    let mut second = downloads().await.split_off(first.len());
    second.sort();
    added.sort();
    assert_eq!(second, added, "only the new items were downloaded");
    let dir = pulled.join(&case.tip_id);
    assert_eq!(
        std::fs::read_to_string(dir.join("message.txt")).unwrap(),
        "they visited my parents"
    );
    assert_eq!(
        std::fs::read(dir.join("followups/photo.jpg")).unwrap(),
        b"jpeg"
    );
    assert!(!dir.join("message (2).txt").exists());
}

/// Sign-out ends the session on the server and clears the browser.
async fn signing_out_ends_the_session_and_clears_the_browser(backend: Backend) {
    let case = signed_in_source(backend).await;
    let response = case.sign_out().await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("clear-site-data"));
    let (_, cleared) = cookie_from(&response, CASE_COOKIE).unwrap();
    assert!(cleared.contains("Max-Age=0"));
    let (status, page) = case.page().await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("You are no longer signed in"));
}

/// After a whole conversation (reply, addition with a file, deletion, sign-out), nothing of the
/// reply, the addition or the receipt is at rest or in the log.
async fn nothing_of_the_conversation_is_at_rest_or_logged(backend: Backend) {
    let case = signed_in_source(backend).await;
    let talk = case.converse().await;
    assert_eq!(
        case.delete_reply(&talk.reply_id).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(case.sign_out().await.status(), StatusCode::OK);
    let Case {
        deployment,
        server,
        receipt,
        ..
    } = case;
    server.stop();
    let needles = [
        talk.reply_marker.as_bytes(),
        talk.followup_marker.as_bytes(),
        talk.file_marker.as_bytes(),
        receipt.as_bytes(),
        b"map.png".as_slice(),
    ];
    assert_not_stored(&deployment, &needles).await;
    assert_not_logged(&deployment, &needles);
}

on_both_backends!(
    a_receipt_opens_the_case_page,
    a_reply_is_sealed_for_the_reviewers_too,
    the_source_reads_a_reply_and_it_is_marked_read,
    the_source_adds_to_the_same_tip,
    deleting_a_reply_erases_the_source_s_copy,
    the_review_client_decrypts_the_conversation,
    a_pull_after_a_follow_up_downloads_only_what_is_new,
    signing_out_ends_the_session_and_clears_the_browser,
    nothing_of_the_conversation_is_at_rest_or_logged,
);

/// A tip whose receipt a source will type, served.
async fn one_receipt(extra_toml: &str) -> (Deployment, Server, String) {
    let deployment = Deployment::new(Backend::Sqlite, extra_toml);
    deployment.add_reviewer("alice");
    let server = deployment.start();
    let receipt = submit_message(&server, "a tip").await;
    (deployment, server, receipt)
}

/// Mistyped receipts get a message that helps: too few words, a word not in the list, a
/// checksum that does not match, and in Chinese too, typed without spaces.
#[tokio::test(flavor = "multi_thread")]
async fn mistyped_receipts_get_a_helpful_message() {
    let (_deployment, server, receipt) = one_receipt("").await;
    let words: Vec<&str> = receipt.split(' ').collect();
    let mut unknown = words.clone();
    unknown[4] = "tipboxx";
    // Swap the last word for other list words until the checksum no longer matches.
    let mistyped = bip39::Language::English
        .word_list()
        .iter()
        .map(|w| {
            let mut l = words.clone();
            l[11] = w;
            l.join(" ")
        })
        .find(|r| ReceiptCode::parse(r, Lang::En).is_err())
        .unwrap();
    // A typo in word 7: named, with the right word among the suggestions, and what was typed
    // still in the box.
    let mut typo = words.clone();
    let right = words[6];
    let misspelt = format!("{}{}", &right[..right.len() - 1], "q");
    typo[6] = &misspelt;
    let response = post_receipt(&server, &typo.join(" "), "en").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let page = response.text().await.unwrap();
    if bip39::Language::English.find_word(&misspelt).is_none() {
        assert!(page.contains("Word 7 is not a receipt word"), "{page}");
        assert!(
            page.contains("Perhaps you meant:") && page.contains(right),
            "{page}"
        );
    }
    assert!(
        page.contains(&typo.join(" ")),
        "the box keeps what was typed"
    );
    for (typed, lang, says) in [
        (words[..11].join(" "), "en", "exactly 12 words"),
        (unknown.join(" "), "en", "Word 5 is not a receipt word"),
        (mistyped, "en", "probably mistyped"),
        ("的的的".to_owned(), "zh-Hans", "回执正好有 12 个字"),
    ] {
        let response = post_receipt(&server, &typed, lang).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{typed}");
        assert!(response.text().await.unwrap().contains(says), "{typed}");
    }
}

/// A wrong receipt (well-formed, never issued) and one whose report was deleted get the very
/// same page, and no session.
#[tokio::test(flavor = "multi_thread")]
async fn wrong_and_unknown_receipts_get_the_same_page() {
    let (deployment, server, receipt) = one_receipt("").await;
    let wrong = ReceiptCode::generate().words(Lang::En);
    let wrong_page = post_receipt(&server, &wrong, "en").await;
    assert_eq!(wrong_page.status(), StatusCode::UNAUTHORIZED);
    assert!(cookie_from(&wrong_page, CASE_COOKIE).is_none());
    let wrong_page = wrong_page.text().await.unwrap();
    deployment.execute_sql("DELETE FROM tips").await;
    let unknown_page = post_receipt(&server, &receipt, "en").await;
    assert_eq!(unknown_page.status(), StatusCode::UNAUTHORIZED);
    assert!(cookie_from(&unknown_page, CASE_COOKIE).is_none());
    let unknown_page = unknown_page.text().await.unwrap();
    let without_token = |page: &str| page.replace(&hidden_csrf(page), "");
    assert_eq!(without_token(&wrong_page), without_token(&unknown_page));
    assert!(wrong_page.contains("No report matches this receipt"));
}

/// A receipt form posted without its pairing cookie (from another site) is refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_receipt_form_without_its_pairing_cookie_is_refused() {
    let (_deployment, server, receipt) = one_receipt("").await;
    let response = form(
        &format!("{}/followup?lang=en", server.public),
        None,
        &[("csrf", "x"), ("receipt", &receipt)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(cookie_from(&response, CASE_COOKIE).is_none());
}

const SHORT_SESSIONS: &str = "[followup]\nsession_idle_seconds = 5\nsession_max_seconds = 60\n\
     [rate_limits]\nsignins_per_minute = 60\nsignins_burst = 3\n";

/// A session ends after its idle time; posting to it then is refused, says why, and stores
/// nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_session_ends_after_its_idle_time() {
    let (deployment, server, receipt) = one_receipt(SHORT_SESSIONS).await;
    let cookie = source_sign_in(&server, &receipt).await;
    assert_eq!(case_page(&server, &cookie).await.0, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let (status, page) = case_page(&server, &cookie).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("You are no longer signed in"));
    let before = deployment.stored().await;
    let response = add(&server, &cookie, "x", "late", &[]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("You are no longer signed in"),
        "the page says why"
    );
    assert_eq!(deployment.stored().await, before);
}

/// One session per tip: signing in again ends the earlier session; signing out from a stale
/// tab (an older form token) still signs out.
#[tokio::test(flavor = "multi_thread")]
async fn one_session_per_tip_and_a_stale_tab_still_signs_out() {
    let (_deployment, server, receipt) = one_receipt(SHORT_SESSIONS).await;
    let first = source_sign_in(&server, &receipt).await;
    let second = source_sign_in(&server, &receipt).await;
    assert_eq!(case_page(&server, &first).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(case_page(&server, &second).await.0, StatusCode::OK);
    let response = form(
        &format!("{}/followup/signout?lang=en", server.public),
        Some(&second),
        &[("csrf", "stale")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        case_page(&server, &second).await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// A client's sign-in budget (3 at once, one more a second) refuses with "wait a minute" and
/// `Retry-After` once spent; it refills. (Other clients have their own: flood.rs.)
#[tokio::test(flavor = "multi_thread")]
async fn sign_ins_are_budgeted() {
    let (_deployment, server, receipt) = one_receipt(SHORT_SESSIONS).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = post_receipt(&server, &receipt, "en").await;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key("retry-after"));
            assert!(response.text().await.unwrap().contains("wait a minute"));
        } else {
            assert_eq!(status, StatusCode::SEE_OTHER);
        }
        statuses.push(status);
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        post_receipt(&server, &receipt, "en").await.status(),
        StatusCode::SEE_OTHER
    );
}

/// Two sources, A and B, both signed in; the analyst has replied to A (a reply A has read).
struct TwoSources {
    deployment: Deployment,
    server: Server,
    token: String,
    tip_a: String,
    reply_for_a: String,
    secret_for_a: String,
    cookie_a: String,
    cookie_b: String,
    csrf_a: String,
    csrf_b: String,
}

async fn two_sources() -> TwoSources {
    let deployment = Deployment::new(Backend::Sqlite, "");
    let alice = deployment.add_reviewer("alice");
    let ana = add_analyst(&deployment, "ana", "analyst");
    let server = deployment.start();
    let receipt_a = submit_message(&server, "tip A").await;
    let receipt_b = submit_message(&server, "tip B").await;
    let token = token(&server, &ana, 0).await;
    // Find tip A by decrypting each tip's report with the reviewer key.
    let mut opened = BTreeMap::new();
    for id in deployment.tip_ids().await {
        let tip = api_get(&server, &token, &format!("/api/v1/tips/{id}")).await;
        let report = tip["items"][0]["id"].as_str().unwrap().to_owned();
        let sealed = sealed_item(&server, &token, &report).await;
        opened.insert(open_report(&decrypt(&alice, &sealed)).0, id);
    }
    let tip_a = opened["tip A"].clone();
    let secret_for_a = random_marker("FOR-A");
    let reply_for_a = reply_to(&server, &token, &tip_a, &secret_for_a).await;
    let cookie_a = source_sign_in(&server, &receipt_a).await;
    let cookie_b = source_sign_in(&server, &receipt_b).await;
    let (_, page_a) = case_page(&server, &cookie_a).await;
    let (_, page_b) = case_page(&server, &cookie_b).await;
    TwoSources {
        deployment,
        server,
        token,
        tip_a,
        reply_for_a,
        secret_for_a,
        cookie_a,
        cookie_b,
        csrf_a: hidden_csrf(&page_a),
        csrf_b: hidden_csrf(&page_b),
    }
}

impl TwoSources {
    /// Whether A's case page shows the reply for A.
    async fn a_sees_the_reply(&self) -> bool {
        let (_, page_a) = case_page(&self.server, &self.cookie_a).await;
        page_a.contains(&self.secret_for_a)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_source_cannot_read_another_s_reply() {
    let two = two_sources().await;
    let (_, page_b) = case_page(&two.server, &two.cookie_b).await;
    assert!(!page_b.contains(&two.secret_for_a));
    assert!(page_b.contains("id=\"no-replies\""));
    assert!(two.a_sees_the_reply().await);
}

/// B cannot delete A's (read) reply, even knowing its id.
#[tokio::test(flavor = "multi_thread")]
async fn one_source_cannot_delete_another_s_reply() {
    let two = two_sources().await;
    let before = two.deployment.stored().await;
    let response = delete_reply(&two.server, &two.cookie_b, &two.csrf_b, &two.reply_for_a).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(two.deployment.stored().await, before);
    assert!(two.a_sees_the_reply().await);
}

/// A's form token does not work in B's session, nor B's in A's: refused, and nothing stored.
#[tokio::test(flavor = "multi_thread")]
async fn another_session_s_form_token_is_refused_and_stores_nothing() {
    let two = two_sources().await;
    let before = two.deployment.stored().await;
    let response = add(&two.server, &two.cookie_b, &two.csrf_a, "forged", &[]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = delete_reply(&two.server, &two.cookie_a, &two.csrf_b, &two.reply_for_a).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(two.deployment.stored().await, before);
}

/// An empty addition is refused with a message and stores nothing; B's real addition lands on
/// tip B only.
#[tokio::test(flavor = "multi_thread")]
async fn an_addition_lands_on_its_own_tip_only() {
    let two = two_sources().await;
    let before = two.deployment.stored().await;
    let response = add(&two.server, &two.cookie_b, &two.csrf_b, "   ", &[]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(two.deployment.stored().await, before);
    assert!(followed_up(&two.server, &two.token).await.is_empty());
    let response = add(&two.server, &two.cookie_b, &two.csrf_b, "more for B", &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let listed = followed_up(&two.server, &two.token).await;
    assert_eq!(listed.len(), 1);
    assert_ne!(listed[0], two.tip_a);
    let tip = api_get(
        &two.server,
        &two.token,
        &format!("/api/v1/tips/{}", two.tip_a),
    )
    .await;
    assert!(tip["source_activity_at"].is_null());
}

/// A browser that drops `Secure` cookies over http — Onion Browser on iOS, browsers behind
/// Orbot — still comes back with its receipt on an onion service (a plain-HTTP listener), and
/// reads its case.
#[tokio::test(flavor = "multi_thread")]
async fn a_browser_that_drops_secure_cookies_over_http_comes_back() {
    let (_deployment, server, receipt) = one_receipt("").await;
    // What such a browser keeps of a response's cookies: those without `Secure`.
    let kept = |response: &reqwest::Response| -> Vec<String> {
        response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter(|c| {
                !c.split(';')
                    .any(|a| a.trim().eq_ignore_ascii_case("secure"))
            })
            .filter(|c| !c.contains("Max-Age=0"))
            .filter_map(|c| c.split(';').next())
            .map(str::to_owned)
            .collect()
    };
    let page = get(&format!("{}/followup?lang=en", server.public), None).await;
    let jar = kept(&page).join("; ");
    assert!(!jar.is_empty(), "the receipt form's cookie is kept");
    let csrf = hidden_csrf(&page.text().await.unwrap());
    let signed_in = form(
        &format!("{}/followup?lang=en", server.public),
        Some(&jar),
        &[("csrf", &csrf), ("receipt", &receipt)],
    )
    .await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let jar = kept(&signed_in).join("; ");
    let case = get(
        &format!("{}/followup/case?lang=en", server.public),
        Some(&jar),
    )
    .await;
    assert_eq!(
        case.status(),
        StatusCode::OK,
        "{}",
        case.text().await.unwrap()
    );
}
