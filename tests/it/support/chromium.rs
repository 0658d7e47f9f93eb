//! Headless Chromium over the W3C WebDriver HTTP API (chromedriver), with plain reqwest +
//! serde_json: the browser the page tests drive (browser.rs, a11y.rs).
//!
//! Needs Debian's `chromium` and `chromium-driver` (scripts/test installs them). Without them
//! a test fails; it does not skip. Everything stays on 127.0.0.1: chromedriver listens on a
//! loopback port, Chromium runs with background networking, component updates, sync and QUIC
//! off and only ever loads what the test points it at.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{free_loopback_port, install_tls_provider};

/// Whether a session's pages may run JavaScript. Sources browse with it off (Tor Browser at its
/// Safest level), and so do the page tests; `On` is for a session that only runs a checker
/// (axe-core) injected over WebDriver, which needs the page's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scripts {
    Off,
    On,
}

pub fn required_binary(name: &str, package: &str) -> PathBuf {
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
pub struct Chromedriver {
    child: Child,
    port: u16,
    log_path: PathBuf,
    /// The sessions started, each ended when chromedriver is dropped.
    sessions: Vec<String>,
    /// One profile per session: two Chromiums cannot share one.
    profiles: Vec<tempfile::TempDir>,
}

impl Chromedriver {
    pub fn start(work_dir: &Path) -> Self {
        let chromedriver = required_binary("chromedriver", "chromium-driver");
        required_binary("chromium", "chromium");
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
            sessions: Vec::new(),
            profiles: Vec::new(),
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

    pub fn log(&self) -> String {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        // The last part is what matters.
        let keep = log.len().saturating_sub(8000);
        let start = (keep..log.len())
            .find(|&i| log.is_char_boundary(i))
            .unwrap_or(log.len());
        log[start..].to_owned()
    }

    /// A new headless Chromium session with JavaScript disabled for every site.
    pub async fn new_session(&mut self) -> Browser {
        self.new_session_with(Scripts::Off).await
    }

    /// A new headless Chromium session, a browser of its own (own profile), with pages'
    /// JavaScript off or on.
    pub async fn new_session_with(&mut self, scripts: Scripts) -> Browser {
        let chromium = which::which("chromium").unwrap();
        let profile = tempfile::tempdir().unwrap();
        let profile_dir = profile.path().display().to_string();
        self.profiles.push(profile);
        let prefs = match scripts {
            Scripts::Off => json!({
                // "Don't allow sites to use JavaScript", as a policy would set it.
                "profile.managed_default_content_settings.javascript": 2,
                "webkit.webprefs.javascript_enabled": false,
                // No guessing from the machine's locale: a plain English browser.
                "intl.accept_languages": "en-US,en",
            }),
            Scripts::On => json!({ "intl.accept_languages": "en-US,en" }),
        };
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
                            format!("--user-data-dir={profile_dir}"),
                        ],
                        "prefs": prefs,
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
        self.sessions.push(id.clone());
        Browser {
            http,
            session: format!("{}/session/{id}", self.base()),
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // Quit the browsers (this ends Chromium), then chromedriver itself.
        for id in self.sessions.drain(..) {
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
pub const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One browser session.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
}

pub struct Element(pub String);

impl Browser {
    pub async fn cmd(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        webdriver(&self.http, method, &format!("{}{path}", self.session), body).await
    }

    pub async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.cmd(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub async fn goto(&self, url: &str) {
        self.ok("POST", "/url", Some(json!({ "url": url }))).await;
    }

    pub async fn current_url(&self) -> String {
        self.ok("GET", "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn source(&self) -> String {
        self.ok("GET", "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn find(&self, css: &str) -> Element {
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

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
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

    pub async fn attribute(&self, element: &Element, name: &str) -> Option<String> {
        let value = self
            .ok(
                "GET",
                &format!("/element/{}/attribute/{name}", element.0),
                None,
            )
            .await;
        value.as_str().map(str::to_owned)
    }

    pub async fn property(&self, element: &Element, name: &str) -> Value {
        self.ok(
            "GET",
            &format!("/element/{}/property/{name}", element.0),
            None,
        )
        .await
    }

    pub async fn text(&self, element: &Element) -> String {
        let value = self
            .ok("GET", &format!("/element/{}/text", element.0), None)
            .await;
        value.as_str().unwrap().to_owned()
    }

    pub async fn click(&self, element: &Element) {
        self.ok(
            "POST",
            &format!("/element/{}/click", element.0),
            Some(json!({})),
        )
        .await;
    }

    pub async fn type_into(&self, element: &Element, text: &str) {
        self.ok(
            "POST",
            &format!("/element/{}/value", element.0),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Clicks and waits until the browser has left `from` (the navigation the click started
    /// has committed) and the new document is there.
    pub async fn click_and_wait(&self, element: &Element, from: &str) {
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

    /// Runs `script` (a function body; `arguments` are `args`) in the page and returns what it
    /// returns; if that is a promise, WebDriver waits for it (up to the session's script
    /// timeout, 30 s by default). It runs with the page's JavaScript off too: chromedriver
    /// evaluates it over the DevTools protocol, which neither the content setting nor the
    /// page's CSP stops. But timers do not fire in a page with JavaScript off, so a script
    /// that waits on one needs a session with `Scripts::On`.
    pub async fn try_execute(&self, script: &str, args: Value) -> Result<Value, String> {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.try_execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("running a script in the page: {e}"))
    }

    /// Resizes the window to `width` × `height` CSS pixels (headless: the viewport follows).
    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.ok(
            "POST",
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await;
    }

    /// Empties a text field.
    pub async fn clear(&self, element: &Element) {
        self.ok(
            "POST",
            &format!("/element/{}/clear", element.0),
            Some(json!({})),
        )
        .await;
    }

    pub async fn screenshot_png(&self) -> Vec<u8> {
        let value = self.ok("GET", "/screenshot", None).await;
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap())
            .expect("WebDriver screenshots are standard base64")
    }
}

/// Waits until an element matching `css` is on the page; panics with the page after 20 s.
pub async fn wait_for(browser: &Browser, css: &str) -> Element {
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
