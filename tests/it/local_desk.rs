//! `tipbox review desk`, the analyst's local review desk, end to end over loopback: a server,
//! a source (with a photo that says where it was taken, and a follow-up), another analyst's
//! reply, and the desk on "the analyst's machine" — which shows what tips say, decrypted in
//! its own memory, warns about the photo and strips it, seals a reply that the source then
//! reads, and lets nobody else drive it. The server refuses a pre-sealed reply with a
//! recipient too many.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use img_parts::ImageEXIF;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, HOST, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::multipart::{Form, Part};

use crate::support::analyst::{add_analyst, api_call, review_login, review_trust, token};
use crate::support::at_rest::{assert_not_stored, contains, files_under};
use crate::support::chromium::{Chromedriver, wait_for};
use crate::support::web::{case_page, get, hidden, source_sign_in};
use crate::support::{Backend, Deployment, TIPBOX, client, random_marker, receipt_from, submit};

/// A photo from a phone: a JPEG whose EXIF says which phone, and where.
fn photo_with_position() -> Vec<u8> {
    use exif::{Field, In, Rational, Tag, Value};
    let fields = [
        Field {
            tag: Tag::Make,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![b"Phone".to_vec()]),
        },
        Field {
            tag: Tag::GPSLatitude,
            ifd_num: In::PRIMARY,
            value: Value::Rational(vec![
                Rational::from((52, 1)),
                Rational::from((4, 1)),
                Rational::from((30, 1)),
            ]),
        },
    ];
    let mut writer = exif::experimental::Writer::new();
    for field in &fields {
        writer.push_field(field);
    }
    let mut exif = std::io::Cursor::new(Vec::new());
    writer.write(&mut exif, false).unwrap();
    let tiny = include_bytes!("../../src/review/desk/testdata/red-8x8.jpg");
    let mut jpeg = img_parts::jpeg::Jpeg::from_bytes(tiny.to_vec().into()).unwrap();
    jpeg.set_exif(Some(exif.into_inner().into()));
    jpeg.encoder().bytes().to_vec()
}

/// `<target dir>/screenshots-desk`: the local desk's pages (apart from the public pages'
/// `screenshots`, which their walk empties when it starts).
fn screenshots_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("screenshots-desk")
}

/// The desk, running; killed when dropped.
struct LocalDesk {
    child: Child,
    url: String,
    code: String,
    host: String,
}

impl Drop for LocalDesk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_desk(review_dir: &Path, identity: &Path, temp: &Path) -> LocalDesk {
    let mut child = Command::new(TIPBOX)
        .args(["review", "desk", "--identity"])
        .arg(identity)
        .args(["--listen", "127.0.0.1:0"])
        .env("TIPBOX_REVIEW_DIR", review_dir)
        .env("TMPDIR", temp.join("tmp"))
        .env("XDG_CACHE_HOME", temp.join("cache"))
        .env_remove("TIPBOX_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut url, mut code) = (None, None);
    while url.is_none() || code.is_none() {
        let line = lines
            .next()
            .expect("the desk prints its address and code")
            .unwrap();
        if let Some(rest) = line.strip_prefix("The review desk is on ") {
            url = Some(
                rest.split_whitespace()
                    .next()
                    .unwrap()
                    .trim_end_matches('/')
                    .to_owned(),
            );
        }
        if let Some((_, c)) = line.split_once("one-time code: ") {
            code = Some(c.trim().to_owned());
        }
    }
    let url = url.unwrap();
    let host = url.strip_prefix("http://").unwrap().to_owned();
    // Keep reading its output so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    LocalDesk {
        child,
        url,
        code: code.unwrap(),
        host,
    }
}

impl LocalDesk {
    async fn get(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        get(&format!("{}{path}", self.url), cookie).await
    }

    async fn post(
        &self,
        path: &str,
        cookie: Option<&str>,
        origin: Option<&str>,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut request = client()
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        if let Some(origin) = origin {
            request = request.header(ORIGIN, origin);
        }
        request.send().await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_local_desk_reads_and_answers_tips_decrypted_only_on_the_analysts_machine() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    let alice = deployment.add_reviewer("alice");
    let ana = add_analyst(&deployment, "ana", "analyst");
    let bob = add_analyst(&deployment, "bob", "analyst");
    let server = deployment.start();

    // A source's tip: a message, facts, and a photo that says where it was taken.
    let said = random_marker("said");
    let (status, page) = submit(
        &server,
        Form::new()
            .text("message", format!("They called my mother. {said}"))
            .text("incident_type", "threats_to_family")
            .text("country", "Netherlands")
            .text("city", "Rotterdam")
            .part(
                "attachment",
                Part::bytes(photo_with_position()).file_name("IMG_0001.jpg"),
            ),
        "en",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let receipt = receipt_from(&page);
    let tip_id = deployment.tip_ids().await.pop().unwrap();
    // The source adds more; another analyst replies from the server's desk API.
    let added = random_marker("added");
    let session = source_sign_in(&server, &receipt).await;
    let case = case_page(&server, &session).await;
    let response = client()
        .post(format!("{}/followup/case/add?lang=en", server.public))
        .header(COOKIE, &session)
        .multipart(
            Form::new()
                .text("csrf", hidden(&case, "csrf"))
                .text("message", added.clone()),
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection(), "{}", response.status());
    // And then a file alone: an addition of its own, not part of the message before it.
    let case = case_page(&server, &session).await;
    let response = client()
        .post(format!("{}/followup/case/add?lang=en", server.public))
        .header(COOKIE, &session)
        .multipart(Form::new().text("csrf", hidden(&case, "csrf")).part(
            "attachment",
            Part::bytes(b"the address".to_vec()).file_name("address-note.txt"),
        ))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection(), "{}", response.status());
    let bob_token = token(&server, &bob, 0).await;
    let bob_said = random_marker("bob");
    let (status, _) = api_call(
        &server,
        &bob_token,
        reqwest::Method::POST,
        &format!("/api/v1/tips/{tip_id}/replies"),
        Some(serde_json::json!({ "text": bob_said })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    // Ana, on her own machine: signed in, alice's key pinned, the desk started.
    let machine = tempfile::tempdir().unwrap();
    let review_dir = machine.path().join("review");
    review_login(&review_dir, &server, &ana, 1);
    review_trust(&review_dir, &alice, "alice");
    for dir in ["tmp", "cache"] {
        std::fs::create_dir_all(machine.path().join(dir)).unwrap();
    }
    let desk = start_desk(
        &review_dir,
        &deployment.identity_file("alice"),
        machine.path(),
    );
    let own = format!("http://{}", desk.host);

    // Nobody else drives it: no session, a foreign Host (DNS rebinding), a foreign Origin,
    // a form post without Origin, a wrong code.
    let response = desk.get("/queue", None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = client()
        .get(format!("{}/", desk.url))
        .header(
            HOST,
            format!("evil.example:{}", desk.host.rsplit(':').next().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let code = desk.code.clone();
    for origin in [Some("http://evil.example"), Some("null"), None] {
        let response = desk.post("/unlock", None, origin, &[("code", &code)]).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{origin:?}");
    }
    let response = desk
        .post("/unlock", None, Some(&own), &[("code", "not-the-code")])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // The code, once: a session cookie.
    let response = desk
        .post("/unlock", None, Some(&own), &[("code", &code)])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/queue");
    let set = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_owned();
    let again = desk
        .post("/unlock", None, Some(&own), &[("code", &code)])
        .await;
    assert_eq!(again.status(), StatusCode::FORBIDDEN, "the code works once");

    // The queue: what the tip says, decrypted here; searched here.
    let response = desk.get("/queue", Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    let queue = response.text().await.unwrap();
    assert!(queue.contains(&said), "{queue}");
    assert!(queue.contains("Rotterdam"));
    assert!(queue.contains("Unread"));
    assert!(queue.contains("Source added more"));
    let found = desk
        .get(&format!("/queue?q={}", &said[5..]), Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(found.contains("1 tip(s)"), "{found}");
    let none = desk.get("/queue?q=nothing-like-this", Some(&cookie)).await;
    assert!(none.text().await.unwrap().contains("0 tip(s)"));
    // In bulk: a label, in whatever case, added once.
    let csrf = hidden(&queue, "csrf");
    for label in ["Urgent", "urgent"] {
        let picked = [
            ("csrf", csrf.as_str()),
            ("action", "label"),
            ("label", label),
            ("assignee", ""),
            ("id", tip_id.as_str()),
        ];
        let response = desk.post("/bulk", Some(&cookie), Some(&own), &picked).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()[LOCATION], "/queue?done=label");
    }
    let labelled = desk
        .get("/queue?done=label", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(labelled.contains("The label was added to the tips."));
    assert_eq!(labelled.matches("Urgent").count(), 1, "{labelled}");
    assert!(!labelled.contains(">urgent"));

    // The tip as one conversation: message and facts, the photo's warning, the source's
    // addition, the other analyst's reply.
    let page = desk
        .get(&format!("/tips/{tip_id}"), Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    for expected in [
        &said,
        &added,
        &bob_said,
        "IMG_0001.jpg",
        "GPS position",
        "Rotterdam",
    ] {
        assert!(page.contains(expected), "{expected}: {page}");
    }
    // Two additions, each its own entry: the message, then the file that came alone.
    assert_eq!(page.matches("The source added").count(), 2, "{page}");
    let second = page.rfind("The source added").unwrap();
    assert!(page.find(added.as_str()).unwrap() < second, "{page}");
    assert!(page.find("address-note.txt").unwrap() > second, "{page}");
    let csrf = hidden(&page, "csrf");
    // Triage with the assignee chosen from the analysts' list; labels in any case are one.
    assert!(
        page.contains("<option value=\"bob\">bob</option>"),
        "{page}"
    );
    let triage = [
        ("csrf", csrf.as_str()),
        ("status", "in_review"),
        ("labels", "Family, family, Rotterdam, Urgent"),
        ("assignee", "bob"),
    ];
    let response = desk
        .post(
            &format!("/tips/{tip_id}/triage"),
            Some(&cookie),
            Some(&own),
            &triage,
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let triaged = desk
        .get(&format!("/tips/{tip_id}?done=triage"), Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(triaged.contains("The tip was updated."));
    assert!(
        triaged.contains("In review · Family, Rotterdam, Urgent · assigned to bob"),
        "{triaged}"
    );
    // Read now: not unread in the queue any more, nor after the desk restarts (the second
    // desk below).
    let queue = desk
        .get("/queue", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(!queue.contains("<strong>Unread</strong>"), "{queue}");
    // The photo, saved without its metadata: no EXIF at all, the picture the same.
    let file = page
        .split("/files/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let clean = desk
        .get(
            &format!("/tips/{tip_id}/files/{file}?clean=1"),
            Some(&cookie),
        )
        .await
        .bytes()
        .await
        .unwrap();
    assert!(
        img_parts::jpeg::Jpeg::from_bytes(clean.clone())
            .unwrap()
            .exif()
            .is_none()
    );
    assert!(clean.len() < photo_with_position().len());
    let original = desk
        .get(&format!("/tips/{tip_id}/files/{file}"), Some(&cookie))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        original.to_vec(),
        photo_with_position(),
        "as the source sent it"
    );

    // Forms need the desk's token.
    let path = format!("/tips/{tip_id}/write");
    let reply = random_marker("reply");
    let text = format!("Thank you. {reply}");
    let forged = [
        ("csrf", "forged"),
        ("kind", "reply"),
        ("text", text.as_str()),
    ];
    let response = desk.post(&path, Some(&cookie), Some(&own), &forged).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // The reply, sealed here.
    let good = [
        ("csrf", csrf.as_str()),
        ("kind", "reply"),
        ("text", text.as_str()),
    ];
    let response = desk.post(&path, Some(&cookie), Some(&own), &good).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let shown = desk
        .get(&format!("/tips/{tip_id}?done=reply"), Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(shown.contains("sealed on this machine and sent"));
    assert!(shown.contains(&reply), "the reviewers' copy opens here");
    // The source reads it with the receipt.
    let session = source_sign_in(&server, &receipt).await;
    let case = case_page(&server, &session).await;
    assert!(case.contains(&reply), "{case}");
    // The server holds it sealed only: its plaintext is nowhere in the database.
    assert_not_stored(&deployment, &[reply.as_bytes()]).await;

    // A pre-sealed reply with a recipient too many is refused by the server.
    // (Bob's session: Ana's codes are spent on her own machine.)
    let api_token = &bob_token;
    let (_, detail) = api_call(
        &server,
        api_token,
        reqwest::Method::GET,
        &format!("/api/v1/tips/{tip_id}"),
        None,
    )
    .await;
    let source: age::x25519::Recipient =
        detail["reply_recipient"].as_str().unwrap().parse().unwrap();
    let intruder = age::x25519::Identity::generate().to_public();
    let seal = |to: &[&dyn age::Recipient], text: &[u8]| {
        use std::io::Write;
        let encryptor = age::Encryptor::with_recipients(to.iter().copied()).unwrap();
        let mut out = Vec::new();
        let mut writer = encryptor.wrap_output(&mut out).unwrap();
        writer.write_all(text).unwrap();
        writer.finish().unwrap();
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(out)
    };
    let key_set = detail["key_set"].as_i64().unwrap();
    let body = |reviewers: &[&dyn age::Recipient]| {
        serde_json::json!({
            "id": tipbox::ids::random_id(),
            "key_set": key_set,
            "sealed": seal(reviewers, b"{\"text\":\"x\"}"),
            "commitment": "00".repeat(32),
            "for_source": seal(&[&source], b"{\"text\":\"x\"}"),
        })
    };
    let alice_public = alice.to_public();
    let (status, answer) = api_call(
        &server,
        api_token,
        reqwest::Method::POST,
        &format!("/api/v1/tips/{tip_id}/replies/sealed"),
        Some(body(&[&alice_public, &intruder])),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("exactly the current key set"),
        "{answer}"
    );
    // And a source copy to the source and someone else.
    let mut two = body(&[&alice_public]);
    two["for_source"] = seal(&[&source, &intruder], b"{}").into();
    let (status, answer) = api_call(
        &server,
        api_token,
        reqwest::Method::POST,
        &format!("/api/v1/tips/{tip_id}/replies/sealed"),
        Some(two),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");

    // In a real browser with JavaScript off: the code typed into the first page, the queue,
    // the tip; screenshots of both kept next to the public pages' (`.ci/run` names the place).
    drop(desk);
    let desk = start_desk(
        &review_dir,
        &deployment.identity_file("alice"),
        machine.path(),
    );
    let mut driver = Chromedriver::start(machine.path());
    let browser = driver.new_session().await;
    browser.set_window_size(1200, 1400).await;
    browser.goto(&format!("{}/", desk.url)).await;
    let field = wait_for(&browser, "#code").await;
    browser.type_into(&field, &desk.code).await;
    let open = browser.find("button[type=submit]").await;
    browser
        .click_and_wait(&open, &format!("{}/", desk.url))
        .await;
    wait_for(&browser, "#queue").await;
    let listed = browser.source().await;
    assert!(listed.contains(&said));
    assert!(
        !listed.contains("<strong>Unread</strong>"),
        "read marks outlive the desk"
    );
    let shots = screenshots_dir();
    std::fs::create_dir_all(&shots).unwrap();
    std::fs::write(shots.join("queue.png"), browser.screenshot_png().await).unwrap();
    let link = browser.find(&format!("a[href=\"/tips/{tip_id}\"]")).await;
    let queue_url = browser.current_url().await;
    browser.click_and_wait(&link, &queue_url).await;
    wait_for(&browser, ".metadata-warning").await;
    assert!(browser.source().await.contains(&reply));
    std::fs::write(shots.join("tip.png"), browser.screenshot_png().await).unwrap();
    drop(browser);
    drop(driver);

    // Nothing decrypted was left on the analyst's machine: not in its temp or cache
    // directories, not in the client's own.
    drop(desk);
    for file in files_under(machine.path()) {
        let bytes = std::fs::read(&file).unwrap();
        for needle in [&said, &added, &bob_said, &reply] {
            assert!(
                !contains(&bytes, needle.as_bytes()),
                "{} holds {needle}",
                file.display()
            );
        }
    }
    for dir in ["tmp", "cache"] {
        assert!(files_under(&machine.path().join(dir)).is_empty(), "{dir}");
    }
}
