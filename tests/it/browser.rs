//! The public pages in a real browser with JavaScript OFF, as in Tor Browser at its Safest
//! level: headless Chromium driven over the W3C WebDriver HTTP API (chromedriver), with plain
//! reqwest + serde_json. A source opens the landing page, switches to 简体中文, follows the link
//! to the form, fills it in, attaches two files, submits, and reads the receipt; the export then
//! decrypts to exactly what was typed and attached. Another source comes back with its receipt
//! in Traditional Chinese, reads a reply, adds a message, deletes the reply and signs out.
//!
//! The browser is support/chromium.rs; it only ever loads tipbox pages on 127.0.0.1 (plus one
//! `data:` page for the JavaScript check). For a meaningful screenshot
//! (`target/browser-receipt.png`) the machine needs a CJK font (Debian `fonts-noto-cjk`);
//! without one the Chinese text renders as boxes, which does not affect the assertions.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::analyst::{Analyst, add_analyst, api, api_get, sealed_item, token};
use crate::support::chromium::{Browser, Chromedriver, Element, wait_for};
use crate::support::{
    Backend, Deployment, Lang, ReceiptCode, Server, attachment_item, decrypt, open_report,
    receipt_from, report_item, submit, tip_form,
};

/// Where the receipt page screenshot goes, for a person to look at.
fn screenshot_path() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target dir>/tmp`; the screenshot goes next to it.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("browser-receipt.png")
}

/// A Chromium with JavaScript off, and tipbox with alice's key, served on loopback. (Fields
/// drop in order: the browser session, chromedriver, the server, the deployment.)
struct InBrowser {
    browser: Browser,
    _driver: Chromedriver,
    server: Server,
    alice: age::x25519::Identity,
    deployment: Deployment,
}

async fn in_browser() -> InBrowser {
    let deployment = Deployment::new(Backend::Sqlite, "");
    let alice = deployment.add_reviewer("alice");
    let server = deployment.start();
    assert!(
        server.public.starts_with("http://127.0.0.1:"),
        "{}",
        server.public
    );
    let mut driver = Chromedriver::start(deployment.path());
    let browser = driver.new_session().await;
    InBrowser {
        browser,
        _driver: driver,
        server,
        alice,
        deployment,
    }
}

impl InBrowser {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.public)
    }

    async fn html_lang(&self) -> Option<String> {
        let html = self.browser.find("html").await;
        self.browser.attribute(&html, "lang").await
    }
}

/// JavaScript is really off. chromedriver's own commands (find element, execute/sync, …) are
/// injected over the DevTools protocol, which Chromium's JavaScript content setting does not
/// block: with the setting at "block" they keep working, and so do element lookups. That
/// proves nothing about the page, so the check is page-level: a script in a page must not run,
/// and its <noscript> must show. (A `data:` page: no network, and no CSP to get in the way,
/// unlike tipbox's own pages, whose strict CSP forbids scripts anyway.)
#[tokio::test(flavor = "multi_thread")]
async fn javascript_is_off_in_the_browser_under_test() {
    let at = in_browser().await;
    let browser = &at.browser;
    browser
        .goto(
            "data:text/html;charset=utf-8,<p id=probe>script did not run</p>\
             <noscript><p id=ns>noscript shown</p></noscript>\
             <script>document.getElementById('probe').textContent='script ran'</script>",
        )
        .await;
    let probe = browser.find("#probe").await;
    assert_eq!(
        browser.text(&probe).await,
        "script did not run",
        "JavaScript must be disabled in the browser under test"
    );
    let noscript = browser.find("#ns").await;
    assert_eq!(browser.text(&noscript).await, "noscript shown");
}

/// The landing page, with no ?lang and an English browser, is English and has no script; the
/// language switch (a link per language) leads to 简体中文 and marks it current.
#[tokio::test(flavor = "multi_thread")]
async fn the_landing_page_switches_to_simplified_chinese() {
    let at = in_browser().await;
    let browser = &at.browser;
    let landing_url = at.url("/");
    browser.goto(&landing_url).await;
    assert_eq!(at.html_lang().await.as_deref(), Some("en"));
    assert!(
        !browser.source().await.contains("<script"),
        "no script on the landing page"
    );
    let switch = browser.find("nav.langs a[hreflang=\"zh-Hans\"]").await;
    assert_eq!(browser.text(&switch).await, "简体中文");
    browser.click_and_wait(&switch, &landing_url).await;
    assert_eq!(at.html_lang().await.as_deref(), Some("zh-Hans"));
    assert_eq!(browser.current_url().await, at.url("/?lang=zh-Hans"));
    let current = browser.find("nav.langs a[aria-current]").await;
    assert_eq!(
        browser.attribute(&current, "hreflang").await.as_deref(),
        Some("zh-Hans")
    );
}

/// The landing page's link leads to the form, in the same language, with no script.
#[tokio::test(flavor = "multi_thread")]
async fn the_landing_page_links_to_the_form_in_its_language() {
    let at = in_browser().await;
    let browser = &at.browser;
    let landing_zh = at.url("/?lang=zh-Hans");
    browser.goto(&landing_zh).await;
    let to_form = browser.find("main a[href^=\"/submit\"]").await;
    browser.click_and_wait(&to_form, &landing_zh).await;
    assert_eq!(browser.current_url().await, at.url("/submit?lang=zh-Hans"));
    assert_eq!(at.html_lang().await.as_deref(), Some("zh-Hans"));
    assert!(
        !browser.source().await.contains("<script"),
        "no script on the form"
    );
}

/// What a source typed and attached in the browser, and the receipt element it got back.
struct Submitted {
    at: InBrowser,
    message: String,
    country: &'static str,
    files: [(PathBuf, Vec<u8>); 2],
    receipt: Element,
    form_url: String,
}

/// A source fills in the form in Simplified Chinese — a message, an incident type, a country,
/// two files (one with a Chinese name) — and submits it (a plain form POST).
async fn submitted_in_the_browser() -> Submitted {
    let started = Instant::now();
    let at = in_browser().await;
    let browser = &at.browser;
    browser.goto(&at.url("/submit?lang=zh-Hans")).await;
    let marker = format!("browser-marker-{}", std::process::id());
    let message = format!(
        "{marker}\n我在阿姆斯特丹的中餐馆外被两个人跟踪，他们拍了我的照片。\n\
         他们说认识我在福州的父母。"
    );
    let country = "荷兰";
    let textarea = browser.find("textarea#message").await;
    browser.type_into(&textarea, &message).await;
    assert_eq!(browser.property(&textarea, "value").await, json!(message));
    let option = browser
        .find("select#incident_type option[value=\"surveillance\"]")
        .await;
    browser.click(&option).await;
    let select = browser.find("select#incident_type").await;
    assert_eq!(
        browser.property(&select, "value").await,
        json!("surveillance")
    );
    let country_input = browser.find("#country").await;
    browser.type_into(&country_input, country).await;
    assert_eq!(
        browser.property(&country_input, "value").await,
        json!(country)
    );

    let uploads = at.deployment.path().join("uploads");
    std::fs::create_dir(&uploads).unwrap();
    let files = [
        (
            uploads.join("photo-0412.jpg"),
            crate::support::random_bytes(300_000),
        ),
        (
            uploads.join("跟踪记录.txt"),
            format!("{marker} 证据说明：跟踪者的车牌号。\n").into_bytes(),
        ),
    ];
    for (path, bytes) in &files {
        std::fs::write(path, bytes).unwrap();
    }
    let file_input = browser.find("input#attachment").await;
    let paths: Vec<&str> = files.iter().map(|(p, _)| p.to_str().unwrap()).collect();
    browser.type_into(&file_input, &paths.join("\n")).await;
    // chromedriver serializes the FileList as an array of File objects.
    let chosen = browser.property(&file_input, "files").await;
    let chosen_names: Vec<&str> = chosen
        .as_array()
        .unwrap_or_else(|| panic!("a file list: {chosen}"))
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        chosen_names,
        ["photo-0412.jpg", "跟踪记录.txt"],
        "both files chosen"
    );

    let buttons = browser.find_all("form button[type=\"submit\"]").await;
    assert_eq!(buttons.len(), 1);
    let form_url = browser.current_url().await;
    // The form posts back to the same URL, so wait for the receipt element instead.
    browser.click(&buttons[0]).await;
    let receipt = wait_for(browser, "#receipt").await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
    Submitted {
        at,
        message,
        country,
        files,
        receipt,
        form_url,
    }
}

/// The receipt is shown on the form's own URL, in Simplified Chinese: 12 words of Chinese
/// characters, a valid receipt, the same as in the page's HTML. A screenshot is kept for a
/// person to look at.
#[tokio::test(flavor = "multi_thread")]
async fn the_receipt_is_twelve_chinese_words() {
    let submitted = submitted_in_the_browser().await;
    let (at, browser) = (&submitted.at, &submitted.at.browser);
    assert_eq!(browser.current_url().await, submitted.form_url);
    assert_eq!(at.html_lang().await.as_deref(), Some("zh-Hans"));
    let receipt = browser.text(&submitted.receipt).await;
    let words: Vec<&str> = receipt.split(' ').collect();
    assert_eq!(words.len(), 12, "12 words: {receipt:?}");
    for word in &words {
        assert!(
            !word.is_empty() && word.chars().all(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
            "Chinese characters only: {receipt:?}"
        );
    }
    assert!(
        ReceiptCode::parse(&receipt, Lang::ZhHans).is_ok(),
        "a valid receipt: {receipt:?}"
    );
    assert_eq!(receipt_from(&browser.source().await), receipt);

    let png = browser.screenshot_png().await;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG screenshot");
    let shot = screenshot_path();
    std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
    std::fs::write(&shot, &png).unwrap();
    eprintln!("receipt page screenshot: {}", shot.display());
}

/// What the reviewer gets is exactly what was typed and attached: the message (a form submits
/// a textarea's line breaks as CRLF), the facts with the form's language, each file by name.
#[tokio::test(flavor = "multi_thread")]
async fn the_reviewer_decrypts_what_was_typed_and_attached() {
    let submitted = submitted_in_the_browser().await;
    let at = &submitted.at;
    let (out, manifest) = at.deployment.export();
    let read = |item: &Value| std::fs::read(out.join(item["file"].as_str().unwrap())).unwrap();
    let (sealed_message, facts) = open_report(&decrypt(&at.alice, &read(report_item(&manifest))));
    assert_eq!(sealed_message, submitted.message.replace('\n', "\r\n"));
    assert_eq!(facts["incident_type"], "surveillance", "{facts}");
    assert_eq!(facts["country"], submitted.country, "{facts}");
    assert_eq!(facts["form_language"], "zh-Hans", "{facts}");
    assert_eq!(facts["attachments"].as_array().unwrap().len(), 2, "{facts}");
    for (path, bytes) in &submitted.files {
        let name = path.file_name().unwrap().to_str().unwrap();
        let item = attachment_item(&manifest, &facts, name, bytes.len());
        assert_eq!(
            &decrypt(&at.alice, &read(item)),
            bytes,
            "{name} decrypts to the original"
        );
    }
    let items = manifest["items"].as_array().unwrap();
    assert_eq!(
        items.len(),
        3,
        "the report (message and facts) and two attachments"
    );
}

/// A source that submitted in Traditional Chinese and got a reply from ana comes back with
/// JavaScript off, types the receipt (without spaces) and lands on its case page.
struct BackWithReceipt {
    at: InBrowser,
    token: String,
    tip_id: String,
    reply: String,
}

async fn back_with_the_receipt() -> BackWithReceipt {
    let at = in_browser().await;
    let ana: Analyst = add_analyst(&at.deployment, "ana", "analyst");
    let (status, page) = submit(&at.server, tip_form("他們來找過我的父母", &[]), "zh-Hant").await;
    assert_eq!(status, reqwest::StatusCode::OK);
    let receipt = receipt_from(&page);
    let token = token(&at.server, &ana, 0).await;
    let tips = api_get(&at.server, &token, "/api/v1/tips").await;
    let tip_id = tips["tips"][0]["id"].as_str().unwrap().to_owned();
    let reply = format!("請問他們是什麼時候來的？ reply-{}", std::process::id());
    let (status, _) = api(
        reqwest::Method::POST,
        format!("{}/api/v1/tips/{tip_id}/replies", at.server.analyst),
        Some(&token),
        Some(json!({ "text": reply })),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::CREATED);

    let browser = &at.browser;
    browser.goto(&at.url("/followup?lang=zh-Hant")).await;
    let field = browser.find("textarea#receipt").await;
    browser.type_into(&field, &receipt.replace(' ', "")).await;
    let button = browser.find("main form button[type=\"submit\"]").await;
    let form_url = browser.current_url().await;
    browser.click_and_wait(&button, &form_url).await;
    assert_eq!(
        browser.current_url().await,
        at.url("/followup/case?lang=zh-Hant")
    );
    BackWithReceipt {
        at,
        token,
        tip_id,
        reply,
    }
}

impl BackWithReceipt {
    async fn tip(&self) -> Value {
        let path = format!("/api/v1/tips/{}", self.tip_id);
        api_get(&self.at.server, &self.token, &path).await
    }
}

/// The case page says the tip was received and shows the analyst's reply.
#[tokio::test(flavor = "multi_thread")]
async fn a_receipt_typed_without_spaces_opens_the_case_with_the_reply() {
    let back = back_with_the_receipt().await;
    let browser = &back.at.browser;
    let status = browser.find("#status").await;
    assert_eq!(
        browser.text(&status).await,
        Lang::ZhHant.t("case-status-received")
    );
    let text = browser.find(".reply-text").await;
    assert_eq!(browser.text(&text).await, back.reply);
}

/// A message added from the case page reaches the analysts, sealed, on the same tip.
#[tokio::test(flavor = "multi_thread")]
async fn an_addition_from_the_case_page_reaches_the_analysts() {
    let back = back_with_the_receipt().await;
    let browser = &back.at.browser;
    let addition = "補充：他們開一輛白色的車。";
    let message = browser.find("textarea#message").await;
    browser.type_into(&message, addition).await;
    let send = browser
        .find("form[action^=\"/followup/case/add\"] button")
        .await;
    browser.click(&send).await;
    wait_for(browser, "#added").await;
    let tip = back.tip().await;
    let added = tip["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "report" && i["added_at"].is_string())
        .unwrap_or_else(|| panic!("a follow-up with a message: {tip}"));
    let sealed = sealed_item(&back.at.server, &back.token, added["id"].as_str().unwrap()).await;
    let (message, report) = open_report(&decrypt(&back.at.alice, &sealed));
    assert_eq!(message, addition);
    assert_eq!(report["format"], "tipbox-followup/2");
}

/// Deleting the reply and signing out are plain forms too; afterwards the case page is closed
/// to this browser, and the analysts see that the reply was read and deleted.
#[tokio::test(flavor = "multi_thread")]
async fn deleting_the_reply_and_signing_out_work_without_javascript() {
    let back = back_with_the_receipt().await;
    let (at, browser) = (&back.at, &back.at.browser);
    // One click is not enough: the box must be ticked first.
    let confirm = browser
        .find("form[action^=\"/followup/case/delete-reply\"] input[name=confirm]")
        .await;
    browser.click(&confirm).await;
    let delete = browser
        .find("form[action^=\"/followup/case/delete-reply\"] button")
        .await;
    browser.click(&delete).await;
    wait_for(browser, "#no-replies").await;
    let signout = browser.find("#signout").await;
    let case_url = browser.current_url().await;
    browser.click_and_wait(&signout, &case_url).await;
    let page = browser.source().await;
    assert!(page.contains(&Lang::ZhHant.t("signedout-title")));
    browser.goto(&at.url("/followup/case?lang=zh-Hant")).await;
    wait_for(browser, "#problem").await;
    let tip = back.tip().await;
    assert!(tip["replies"][0]["read_at"].is_string(), "{tip}");
    assert!(
        tip["replies"][0]["deleted_by_source_at"].is_string(),
        "{tip}"
    );
}
