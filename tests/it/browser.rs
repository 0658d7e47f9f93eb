//! The public pages in a real browser with JavaScript OFF, as in Tor Browser at its Safest
//! level: headless Chromium driven over the W3C WebDriver HTTP API (chromedriver), with plain
//! reqwest + serde_json. A source opens the landing page, switches to 简体中文, follows the link
//! to the form, fills it in, attaches two files, submits, and reads the receipt; the export then
//! decrypts to exactly what was typed and attached. Another source comes back with its receipt
//! in Traditional Chinese, reads a reply, adds a message, deletes the reply and signs out.
//!
//! Needs Debian's `chromium` and `chromium-driver` (scripts/test installs them). Without them this test
//! fails; it does not skip. For a meaningful screenshot (`target/browser-receipt.png`) the
//! machine needs a CJK font (Debian `fonts-noto-cjk`); without one the Chinese text renders as
//! boxes, which does not affect the assertions.
//!
//! Everything stays on 127.0.0.1: chromedriver listens on a loopback port, Chromium runs with
//! background networking, component updates, sync and QUIC off and only ever loads tipbox
//! pages (plus one `data:` page for the JavaScript check).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::analyst::{Analyst, add_analyst, api, api_get, sealed_item, token};
use crate::support::{
    Backend, Deployment, Lang, ReceiptCode, Server, attachment_item, decrypt, free_loopback_port,
    install_tls_provider, items_of, receipt_from, submit, tip_form,
};

/// Where the receipt page screenshot goes, for a person to look at.
fn screenshot_path() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target dir>/tmp`; the screenshot goes next to it.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("browser-receipt.png")
}

fn required_binary(name: &str, package: &str) -> PathBuf {
    which::which(name).unwrap_or_else(|_| {
        panic!(
            "`{name}` is not on the PATH: the browser test needs Debian's `{package}` \
             (apt-get install chromium chromium-driver); scripts/test installs it"
        )
    })
}

/// A running chromedriver (and, through it, Chromium). Dropping it ends the browser session,
/// asks chromedriver to shut down, and kills what is left of the process group it was
/// started in — only processes this test started.
struct Chromedriver {
    child: Child,
    port: u16,
    log_path: PathBuf,
    session: Option<String>,
    profile: tempfile::TempDir,
}

impl Chromedriver {
    fn start(work_dir: &Path) -> Self {
        let chromedriver = required_binary("chromedriver", "chromium-driver");
        required_binary("chromium", "chromium");
        let profile = tempfile::tempdir().unwrap();
        let log_path = work_dir.join("chromedriver.log");
        let port = free_loopback_port();
        let child = {
            use std::os::unix::process::CommandExt;
            Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log_path.display()))
                // Only loopback clients (the default, said explicitly).
                .arg("--allowed-ips=")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own process group, so that cleanup can reach Chromium's processes too.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", chromedriver.display()))
        };
        let mut driver = Self {
            child,
            port,
            log_path,
            session: None,
            profile,
        };
        // Wait for it to listen; it exits at once if the port was taken meanwhile.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = driver.child.try_wait().unwrap() {
                panic!(
                    "chromedriver exited ({status}) before it was ready; log:\n{}",
                    driver.log()
                );
            }
            if raw_http(port, "GET", "/status").is_some_and(|r| r.contains("\"ready\":true")) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready; log:\n{}",
                driver.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        // The last part is what matters.
        let keep = log.len().saturating_sub(8000);
        let start = (keep..log.len())
            .find(|&i| log.is_char_boundary(i))
            .unwrap_or(log.len());
        log[start..].to_owned()
    }

    /// A new headless Chromium session with JavaScript disabled for every site.
    async fn new_session(&mut self) -> Browser {
        let chromium = which::which("chromium").unwrap();
        let profile = self.profile.path().display().to_string();
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "goog:chromeOptions": {
                        "binary": chromium,
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-quic",
                            "--no-first-run",
                            "--disable-background-networking",
                            "--disable-component-update",
                            "--disable-sync",
                            "--disable-default-apps",
                            "--lang=en-US",
                            "--window-size=1000,1300",
                            format!("--user-data-dir={profile}"),
                        ],
                        "prefs": {
                            // "Don't allow sites to use JavaScript", as a policy would set it.
                            "profile.managed_default_content_settings.javascript": 2,
                            "webkit.webprefs.javascript_enabled": false,
                            // No guessing from the machine's locale: a plain English browser.
                            "intl.accept_languages": "en-US,en",
                        },
                    },
                },
            },
        });
        install_tls_provider();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let response = webdriver(
            &http,
            "POST",
            &format!("{}/session", self.base()),
            Some(capabilities),
        )
        .await
        .unwrap_or_else(|e| {
            panic!(
                "creating a Chromium session failed: {e}\nchromedriver log:\n{}",
                self.log()
            )
        });
        let id = response["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        self.session = Some(id.clone());
        Browser {
            http,
            session: format!("{}/session/{id}", self.base()),
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // Quit the browser (this ends Chromium), then chromedriver itself.
        if let Some(id) = self.session.take() {
            raw_http(self.port, "DELETE", &format!("/session/{id}"));
        }
        raw_http(self.port, "GET", "/shutdown");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Whatever is left in the group this test started (by its id, not by name).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal blocking HTTP/1.1 request to chromedriver, for readiness checks and for cleanup
/// in `Drop` (where no async runtime can be relied on). Returns the response, if any.
fn raw_http(port: u16, method: &str, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let body = if method == "GET" { "" } else { "{}" };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    // chromedriver keeps the connection open despite `Connection: close`: read the headers,
    // then exactly Content-Length bytes.
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&response);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if response.len() >= end + 4 + length {
                break;
            }
        }
    }
    Some(String::from_utf8_lossy(&response).into_owned())
}

/// One WebDriver command; the W3C answer is `{"value": …}`, errors carry `value.error`.
async fn webdriver(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let request = match method {
        "GET" => http.get(url),
        "DELETE" => http.delete(url),
        _ => http
            .post(url)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body.unwrap_or_else(|| json!({}))).unwrap()),
    };
    let response = request
        .send()
        .await
        .map_err(|e| format!("{method} {url}: {e}"))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| format!("{method} {url}: {e}"))?;
    let parsed: Value = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "{method} {url}: {status}, not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    })?;
    let value = parsed["value"].clone();
    if !status.is_success() || value.get("error").is_some() {
        return Err(format!(
            "{method} {url}: {status} {}: {}",
            value["error"].as_str().unwrap_or("?"),
            value["message"]
                .as_str()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
        ));
    }
    Ok(value)
}

/// The W3C key for an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One browser session.
struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
}

struct Element(String);

impl Browser {
    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        webdriver(&self.http, method, &format!("{}{path}", self.session), body).await
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.cmd(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    async fn goto(&self, url: &str) {
        self.ok("POST", "/url", Some(json!({ "url": url }))).await;
    }

    async fn current_url(&self) -> String {
        self.ok("GET", "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn source(&self) -> String {
        self.ok("GET", "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn find(&self, css: &str) -> Element {
        let value = self
            .cmd(
                "POST",
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await
            .unwrap_or_else(|e| panic!("finding `{css}`: {e}"));
        Element(
            value[ELEMENT_KEY]
                .as_str()
                .unwrap_or_else(|| panic!("an element reference for `{css}`: {value}"))
                .to_owned(),
        )
    }

    async fn find_all(&self, css: &str) -> Vec<Element> {
        let value = self
            .ok(
                "POST",
                "/elements",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|e| Element(e[ELEMENT_KEY].as_str().unwrap().to_owned()))
            .collect()
    }

    async fn attribute(&self, element: &Element, name: &str) -> Option<String> {
        let value = self
            .ok(
                "GET",
                &format!("/element/{}/attribute/{name}", element.0),
                None,
            )
            .await;
        value.as_str().map(str::to_owned)
    }

    async fn property(&self, element: &Element, name: &str) -> Value {
        self.ok(
            "GET",
            &format!("/element/{}/property/{name}", element.0),
            None,
        )
        .await
    }

    async fn text(&self, element: &Element) -> String {
        let value = self
            .ok("GET", &format!("/element/{}/text", element.0), None)
            .await;
        value.as_str().unwrap().to_owned()
    }

    async fn click(&self, element: &Element) {
        self.ok(
            "POST",
            &format!("/element/{}/click", element.0),
            Some(json!({})),
        )
        .await;
    }

    async fn type_into(&self, element: &Element, text: &str) {
        self.ok(
            "POST",
            &format!("/element/{}/value", element.0),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Clicks and waits until the browser has left `from` (the navigation the click started
    /// has committed) and the new document is there.
    async fn click_and_wait(&self, element: &Element, from: &str) {
        self.click(element).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.current_url().await == from {
            assert!(
                Instant::now() < deadline,
                "the click on a link or button did not navigate away from {from}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn screenshot_png(&self) -> Vec<u8> {
        let value = self.ok("GET", "/screenshot", None).await;
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap())
            .expect("WebDriver screenshots are standard base64")
    }
}

/// Waits until an element matching `css` is on the page; panics with the page after 20 s.
async fn wait_for(browser: &Browser, css: &str) -> Element {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = browser
            .cmd(
                "POST",
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        if let Ok(value) = found {
            return Element(value[ELEMENT_KEY].as_str().unwrap().to_owned());
        }
        assert!(
            Instant::now() < deadline,
            "no {css}; page:\n{}",
            browser.source().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    let messages = items_of(&manifest, "message");
    assert_eq!(messages.len(), 1);
    let sealed_message = String::from_utf8(decrypt(&at.alice, &read(messages[0]))).unwrap();
    assert_eq!(sealed_message, submitted.message.replace('\n', "\r\n"));

    let facts: Value =
        serde_json::from_slice(&decrypt(&at.alice, &read(items_of(&manifest, "facts")[0])))
            .unwrap();
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
    assert_eq!(items.len(), 4, "message, facts and two attachments");
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
        .find(|i| i["kind"] == "message" && i["added_at"].is_string())
        .unwrap_or_else(|| panic!("a follow-up message: {tip}"));
    let sealed = sealed_item(&back.at.server, &back.token, added["id"].as_str().unwrap()).await;
    assert_eq!(
        String::from_utf8(decrypt(&back.at.alice, &sealed)).unwrap(),
        addition
    );
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
