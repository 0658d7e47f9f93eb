//! Two-way follow-up over real sockets: a source submits, an analyst replies, the source comes
//! back with the receipt (a form, never a URL), reads the reply, adds a message and a file,
//! deletes the reply; the analyst's client decrypts everything. Plus typo, wrong and unknown
//! receipts, session expiry and sign-out, the sign-in budget, and the walls between tips.

mod common;

use common::analyst::*;
use common::web::*;
use common::*;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION};
use reqwest::multipart::{Form, Part};

const CASE_COOKIE: &str = "__Host-tipbox_case";
const SIGNIN_COOKIE: &str = "__Host-tipbox_signin";

fn random_marker(prefix: &str) -> String {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).unwrap();
    format!("{prefix}-{}", hex::encode(bytes))
}

async fn submit(server: &Server, message: &str) -> String {
    let response = client()
        .post(format!("{}/submit?lang=en", server.public))
        .multipart(Form::new().text("message", message.to_owned()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    receipt_from(&response.text().await.unwrap())
}

/// Loads the receipt form and posts `receipt` with it: the response (303 on success).
async fn post_receipt(server: &Server, receipt: &str, lang: &str) -> reqwest::Response {
    let page = get(&format!("{}/followup?lang={lang}", server.public), None).await;
    assert_eq!(page.status(), StatusCode::OK);
    let (pairing, _) = cookie_from(&page, SIGNIN_COOKIE).expect("a pairing cookie");
    let csrf = hidden_csrf(&page.text().await.unwrap());
    assert_eq!(csrf, pairing);
    form(
        &format!("{}/followup?lang={lang}", server.public),
        Some(&format!("{SIGNIN_COOKIE}={pairing}")),
        &[("csrf", &csrf), ("receipt", receipt)],
    )
    .await
}

/// Signs in with a receipt; returns the `Cookie` header value of the session.
async fn sign_in(server: &Server, receipt: &str) -> String {
    let response = post_receipt(server, receipt, "en").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()[LOCATION].to_str().unwrap(),
        "/followup/case?lang=en"
    );
    let (token, header) = cookie_from(&response, CASE_COOKIE).expect("a session cookie");
    assert_eq!(token.len(), 64, "256 random bits");
    for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(header.contains(attribute), "{header}");
    }
    format!("{CASE_COOKIE}={token}")
}

async fn case(server: &Server, cookie: &str) -> (StatusCode, String) {
    let response = get(
        &format!("{}/followup/case?lang=en", server.public),
        Some(cookie),
    )
    .await;
    (response.status(), response.text().await.unwrap())
}

/// The value of the first hidden input `name` on a page.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = html.find(&marker).expect("the hidden field") + marker.len();
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

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

async fn only_tip(server: &Server, token: &str) -> String {
    let (status, page) = api(
        reqwest::Method::GET,
        format!("{}/api/v1/tips", server.analyst),
        Some(token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let tips = page["tips"].as_array().unwrap();
    assert_eq!(tips.len(), 1);
    tips[0]["id"].as_str().unwrap().to_owned()
}

/// The ids of the tips the source has added to (`?followed_up=true`).
async fn followed_up(server: &Server, token: &str) -> Vec<String> {
    let (status, page) = api(
        reqwest::Method::GET,
        format!("{}/api/v1/tips?followed_up=true", server.analyst),
        Some(token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    page["tips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn tip_json(server: &Server, token: &str, id: &str) -> serde_json::Value {
    let (status, tip) = api(
        reqwest::Method::GET,
        format!("{}/api/v1/tips/{id}", server.analyst),
        Some(token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    tip
}

async fn conversation(backend: Backend) {
    let deployment = Deployment::new(backend, "");
    let alice = deployment.add_reviewer("alice");
    let ana = add_analyst(&deployment, "ana", "analyst");
    let server = deployment.start();
    let reply_marker = random_marker("REPLY");
    let followup_marker = random_marker("FOLLOWUP");
    let file_marker = random_marker("FILE");

    let receipt = submit(&server, "they visited my parents").await;
    let cookie = sign_in(&server, &receipt).await;
    let (status, page) = case(&server, &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Received. The reviewers have not started on it yet."));
    assert!(page.contains("id=\"no-replies\""));

    // The analyst replies through the API.
    let token = token(&server, "ana", &ana, 0).await;
    let tip_id = only_tip(&server, &token).await;
    let (status, reply) = api(
        reqwest::Method::POST,
        format!("{}/api/v1/tips/{tip_id}/replies", server.analyst),
        Some(&token),
        Some(serde_json::json!({ "text": format!("Thank you. {reply_marker} <b>When</b>?") })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(reply["kind"], "reply");
    let reply_id = reply["id"].as_str().unwrap().to_owned();
    let tip = tip_json(&server, &token, &tip_id).await;
    assert_eq!(tip["replies"][0]["id"], reply_id.as_str());
    assert!(tip["replies"][0]["read_at"].is_null());
    // The reviewers' copy is an item of kind reply, sealed to the reviewer keys.
    let item = tip["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "reply")
        .unwrap();
    assert_eq!(item["id"], reply_id.as_str());
    let sealed = client()
        .get(format!("{}/api/v1/items/{reply_id}/sealed", server.analyst))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let opened: serde_json::Value = serde_json::from_slice(&decrypt(&alice, &sealed)).unwrap();
    assert_eq!(opened["author"], "ana");
    assert!(opened["text"].as_str().unwrap().contains(&reply_marker));

    // The source reads it (escaped, not interpreted), and it is marked read.
    let (_, page) = case(&server, &cookie).await;
    assert!(page.contains(&reply_marker), "{page}");
    assert!(
        page.contains("&#60;b&#62;When&#60;/b&#62;?"),
        "HTML in a reply is shown as text"
    );
    assert!(page.contains(&format!("id=\"reply-{reply_id}\"")));
    let tip = tip_json(&server, &token, &tip_id).await;
    assert!(tip["replies"][0]["read_at"].is_string());
    assert!(tip["source_activity_at"].is_null());

    // The source adds a message and a file.
    let csrf = hidden(&page, "csrf");
    let response = add(
        &server,
        &cookie,
        &csrf,
        &format!("More: {followup_marker}"),
        &[("map.png", file_marker.as_bytes())],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, page) = case(&server, &cookie).await;
    assert!(!page.contains("id=\"added\""), "only right after adding");
    let response = get(
        &format!("{}/followup/case?lang=en&added=1", server.public),
        Some(&cookie),
    )
    .await;
    assert!(response.text().await.unwrap().contains("id=\"added\""));
    // It shows up on the same tip as new activity.
    assert_eq!(only_tip(&server, &token).await, tip_id);
    assert_eq!(
        followed_up(&server, &token).await,
        std::slice::from_ref(&tip_id)
    );
    let tip = tip_json(&server, &token, &tip_id).await;
    assert!(tip["source_activity_at"].is_string());
    let kinds: Vec<&str> = tip["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "message",
            "facts",
            "reply",
            "message",
            "facts",
            "attachment"
        ]
    );

    // Deleting the reply erases the source's copy; the analysts see it was read and deleted.
    let response = form(
        &format!("{}/followup/case/delete-reply?lang=en", server.public),
        Some(&cookie),
        &[("csrf", &csrf), ("reply", &reply_id)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, page) = case(&server, &cookie).await;
    assert!(!page.contains(&reply_marker));
    let tip = tip_json(&server, &token, &tip_id).await;
    assert!(tip["replies"][0]["deleted_by_source_at"].is_string());
    assert!(tip["replies"][0]["read_at"].is_string());

    // The analyst's client decrypts everything on "their own machine".
    let review_dir = deployment.path().join("review-home");
    review_login(&review_dir, &server, "ana", &ana, 1);
    let pulled = deployment.path().join("pulled");
    let identity = deployment.identity_file("alice");
    review_pull(&review_dir, &identity, &pulled, &[]);
    let dir = pulled.join(&tip_id);
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
            .contains(&followup_marker)
    );
    assert_eq!(
        std::fs::read(dir.join("attachments").join("map.png")).unwrap(),
        file_marker.as_bytes()
    );
    let reply_file =
        std::fs::read_to_string(dir.join("replies").join(format!("{reply_id}.json"))).unwrap();
    assert!(reply_file.contains(&reply_marker));
    // A second pull fetches nothing again: no duplicates appear.
    review_pull(&review_dir, &identity, &pulled, &["--all"]);
    assert!(!dir.join("message (2).txt").exists());
    assert_eq!(
        std::fs::read_dir(dir.join("attachments")).unwrap().count(),
        1
    );

    // Sign-out ends the session on the server and clears the browser.
    let response = form(
        &format!("{}/followup/signout?lang=en", server.public),
        Some(&cookie),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("clear-site-data"));
    let (_, cleared) = cookie_from(&response, CASE_COOKIE).unwrap();
    assert!(cleared.contains("Max-Age=0"));
    let (status, page) = case(&server, &cookie).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("You are no longer signed in"));
    server.stop();

    // Nothing of the reply, the follow-up or the receipt is at rest or in the log.
    let needles = [
        reply_marker.as_bytes(),
        followup_marker.as_bytes(),
        file_marker.as_bytes(),
        receipt.as_bytes(),
        b"map.png".as_slice(),
    ];
    let mut files = vec![deployment.log_path.clone()];
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
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for needle in needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} contains {}",
                file.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
    if backend == Backend::Sqlite {
        assert!(files.iter().any(|f| f.ends_with("tipbox.db")));
    } else {
        // PostgreSQL's files are not ours to read: look at every stored value instead.
        let rows = deployment.postgres_rows_as_text().await;
        assert!(rows.contains(&tip_id), "the dump holds the tips");
        for needle in needles {
            let text = String::from_utf8_lossy(needle);
            assert!(!rows.contains(text.as_ref()), "the database holds {text}");
            assert!(
                !rows.contains(&hex::encode(needle)),
                "the database holds {text}"
            );
        }
    }
}
on_both_backends!(a_full_conversation, conversation);

/// Mistyped receipts get a helpful message; a wrong receipt and one for a report that no longer
/// exists get the very same page; nothing in the form shows up in a URL.
#[tokio::test(flavor = "multi_thread")]
async fn typo_wrong_and_unknown_receipts() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    deployment.add_reviewer("alice");
    let server = deployment.start();
    let receipt = submit(&server, "a tip that will be deleted").await;
    let words: Vec<&str> = receipt.split(' ').collect();

    let response = post_receipt(&server, &words[..11].join(" "), "en").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("exactly 12 words"));

    let mut unknown = words.clone();
    unknown[4] = "tipboxx";
    let response = post_receipt(&server, &unknown.join(" "), "en").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("not a receipt word")
    );

    // Swap the last word for other list words until the checksum no longer matches.
    let list = bip39::Language::English.word_list();
    let mistyped = list
        .iter()
        .map(|w| {
            let mut l = words.clone();
            l[11] = w;
            l.join(" ")
        })
        .find(|r| tipbox::receipt::ReceiptCode::parse(r, tipbox::i18n::Lang::En).is_err())
        .unwrap();
    let response = post_receipt(&server, &mistyped, "en").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("probably mistyped"));

    // In Chinese too, typed without spaces.
    let response = post_receipt(&server, "的的的", "zh-Hans").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("回执正好有 12 个词")
    );

    // Wrong (well-formed, never issued) and unknown (its report deleted): the same answer.
    let wrong = tipbox::receipt::ReceiptCode::generate().words(tipbox::i18n::Lang::En);
    let wrong_page = post_receipt(&server, &wrong, "en").await;
    assert_eq!(wrong_page.status(), StatusCode::UNAUTHORIZED);
    assert!(cookie_from(&wrong_page, CASE_COOKIE).is_none());
    let wrong_page = wrong_page.text().await.unwrap();
    deployment.execute_sql("DELETE FROM tips").await;
    let unknown_page = post_receipt(&server, &receipt, "en").await;
    assert_eq!(unknown_page.status(), StatusCode::UNAUTHORIZED);
    let unknown_page = unknown_page.text().await.unwrap();
    let without_token = |page: &str| page.replace(&hidden_csrf(page), "");
    assert_eq!(without_token(&wrong_page), without_token(&unknown_page));
    assert!(wrong_page.contains("No report matches this receipt"));

    // A form posted without its pairing cookie (from another site) is refused.
    let response = form(
        &format!("{}/followup?lang=en", server.public),
        None,
        &[("csrf", "x"), ("receipt", &wrong)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

/// A session ends after its idle time; the sign-in budget is shared by everyone and refuses
/// with "busy" once spent.
#[tokio::test(flavor = "multi_thread")]
async fn sessions_expire_and_signins_are_budgeted() {
    let deployment = Deployment::new(
        Backend::Sqlite,
        "[followup]\nsession_idle_seconds = 5\nsession_max_seconds = 60\nsignins_per_second = 1\nsignin_burst = 3\n",
    );
    deployment.add_reviewer("alice");
    let server = deployment.start();
    let receipt = submit(&server, "expiring").await;
    let cookie = sign_in(&server, &receipt).await;
    assert_eq!(case(&server, &cookie).await.0, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let (status, page) = case(&server, &cookie).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("You are no longer signed in"));
    // Posting to an ended session stores nothing.
    let before = deployment.counts().await;
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
    assert_eq!(deployment.counts().await, before);

    // One session per tip: signing in again ends the earlier session.
    let first = sign_in(&server, &receipt).await;
    let second = sign_in(&server, &receipt).await;
    assert_eq!(case(&server, &first).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(case(&server, &second).await.0, StatusCode::OK);
    // Signing out from a stale tab (an older form token) still signs out.
    let response = form(
        &format!("{}/followup/signout?lang=en", server.public),
        Some(&second),
        &[("csrf", "stale")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(case(&server, &second).await.0, StatusCode::UNAUTHORIZED);

    // The budget: 3 at once (one was used above, one refills per second).
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = post_receipt(&server, &receipt, "en").await;
        let status = response.status();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert!(response.headers().contains_key("retry-after"));
            assert!(response.text().await.unwrap().contains("wait a minute"));
        }
        statuses.push(status);
    }
    assert!(
        statuses.contains(&StatusCode::SERVICE_UNAVAILABLE),
        "{statuses:?}"
    );
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        post_receipt(&server, &receipt, "en").await.status(),
        StatusCode::SEE_OTHER
    );
}

/// One source can neither read nor delete another's replies, nor add to another's tip; forms
/// without the session's token are refused and store nothing.
#[tokio::test(flavor = "multi_thread")]
async fn sources_are_walled_off_from_each_other() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    let alice = deployment.add_reviewer("alice");
    let ana = add_analyst(&deployment, "ana", "analyst");
    let server = deployment.start();
    let receipt_a = submit(&server, "tip A").await;
    let receipt_b = submit(&server, "tip B").await;
    let token = token(&server, "ana", &ana, 0).await;
    let (_, page) = api(
        reqwest::Method::GET,
        format!("{}/api/v1/tips", server.analyst),
        Some(&token),
        None,
    )
    .await;
    let ids: Vec<String> = page["tips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    // Find tip A by decrypting each tip's message with the reviewer key.
    let mut tip_a = None;
    for id in &ids {
        let tip = tip_json(&server, &token, id).await;
        let item = tip["items"][0]["id"].as_str().unwrap().to_owned();
        let sealed = client()
            .get(format!("{}/api/v1/items/{item}/sealed", server.analyst))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        if decrypt(&alice, &sealed) == b"tip A" {
            tip_a = Some(id.clone());
        }
    }
    let tip_a = tip_a.unwrap();
    let secret = random_marker("FOR-A");
    let (status, reply) = api(
        reqwest::Method::POST,
        format!("{}/api/v1/tips/{tip_a}/replies", server.analyst),
        Some(&token),
        Some(serde_json::json!({ "text": secret })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let reply_id = reply["id"].as_str().unwrap().to_owned();

    let cookie_a = sign_in(&server, &receipt_a).await;
    let cookie_b = sign_in(&server, &receipt_b).await;
    let (_, page_b) = case(&server, &cookie_b).await;
    assert!(!page_b.contains(&secret));
    assert!(page_b.contains("id=\"no-replies\""));
    let (_, page_a) = case(&server, &cookie_a).await;
    assert!(page_a.contains(&secret));

    // B cannot delete A's (read) reply, even knowing its id.
    let csrf_b = hidden(&page_b, "csrf");
    let response = form(
        &format!("{}/followup/case/delete-reply?lang=en", server.public),
        Some(&cookie_b),
        &[("csrf", &csrf_b), ("reply", &reply_id)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(case(&server, &cookie_a).await.1.contains(&secret));
    // A's token does not work in B's session, and a missing token stores nothing.
    let csrf_a = hidden(&page_a, "csrf");
    let before = deployment.counts().await;
    let response = add(&server, &cookie_b, &csrf_a, "forged", &[]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = form(
        &format!("{}/followup/case/delete-reply?lang=en", server.public),
        Some(&cookie_a),
        &[("csrf", &csrf_b), ("reply", &reply_id)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(deployment.counts().await, before);
    // An empty addition is refused with a message; B's real addition lands on tip B only.
    let response = add(&server, &cookie_b, &csrf_b, "   ", &[]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(followed_up(&server, &token).await.is_empty());
    let response = add(&server, &cookie_b, &csrf_b, "more for B", &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let listed = followed_up(&server, &token).await;
    assert_eq!(listed.len(), 1);
    assert_ne!(listed[0], tip_a);
    let tip = tip_json(&server, &token, &tip_a).await;
    assert!(tip["source_activity_at"].is_null());
}
