//! Every public page in every language, the way a source meets it: headless Chromium with
//! JavaScript off walks landing → form → a refused upload (413, the form back filled in) →
//! receipt → a wrong last word typed back → language switch and back → the right last word →
//! follow-up sign-in (empty, then a mistyped receipt) → case page with a reviewer's reply → a
//! refused empty addition (400) → signed out → a missing page. On each page:
//!
//! - **axe-core** finds no violation of impact "serious" or "critical" (each is printed with its
//!   rule, help and offending nodes), and no contrast problem in the dark colour scheme either. axe needs timers, which do not fire in a page with
//!   JavaScript off, so it runs in a second session with JavaScript on that only ever holds
//!   copies of what the source's browser was served: the page's HTML is written into a
//!   document of the same origin (so the stylesheet and the CSP apply as on the real page) and
//!   axe is injected over WebDriver, which Chromium does not hold to the page's CSP.
//! - **What takes focus is in reading order**: each next link or control is below the one
//!   before or, on the same line, after it in the page's direction (`<html dir>`; left of it for
//!   `rtl`). No positive `tabindex`.
//! - **A screenshot** goes to `<target dir>/screenshots/<lang>/<page>.png` (desktop, 1000 px
//!   wide, plus `*-phone.png` at 390 × 844 for some pages), kept for a person and for CI.
//!
//! The languages are the page's language switch (checked against `Lang::ALL`), so a new
//! language is walked as soon as the switch offers it. axe-core comes from the npm registry at
//! the version `tests/axe/package-lock.json` pins (scripts/install-test-deps runs `npm ci`);
//! without it this test fails, it does not skip.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::analyst::{Analyst, add_analyst, api, api_get, token};
use crate::support::chromium::{Browser, Chromedriver, Element, Scripts};
use crate::support::deployment::EXAMPLE_SITE;
use crate::support::{Backend, Deployment, Lang, Server};

/// axe-core's browser build, where `npm ci --prefix tests/axe` puts it.
const AXE_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/axe/node_modules/axe-core/axe.min.js"
);

/// The impacts that fail the check (axe's scale: minor, moderate, serious, critical).
const FAILING_IMPACTS: [&str; 2] = ["serious", "critical"];

/// What the page gets of the window (CSS pixels): a desktop's and a phone's.
const DESKTOP: (u32, u32) = (1000, 1300);
const PHONE: (u32, u32) = (390, 844);

/// The largest attachment the walk's tip line accepts: the walk's file is larger (413).
const ATTACHMENT_LIMIT: usize = 4096;

fn axe_source() -> String {
    std::fs::read_to_string(AXE_PATH).unwrap_or_else(|e| {
        panic!(
            "axe-core is not installed ({AXE_PATH}: {e}). Run scripts/install-test-deps, which \
             installs it from the npm registry at the version tests/axe/package-lock.json pins \
             (npm ci --prefix tests/axe --ignore-scripts)"
        )
    })
}

/// `<target dir>/screenshots`: next to CARGO_TARGET_TMPDIR (`<target dir>/tmp`), where
/// .ci/run says to look.
fn screenshots_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("screenshots")
}

/// The tip line, the source's browser (JavaScript off), the checker's (JavaScript on, for axe)
/// and a reviewer who replies to each tip. (Fields drop in order: sessions, chromedriver,
/// server, deployment.)
struct Walk {
    source: Browser,
    checker: Browser,
    _driver: Chromedriver,
    server: Server,
    deployment: Deployment,
    analyst_token: String,
    axe: String,
    shots: PathBuf,
    tips_seen: HashSet<String>,
    pages_checked: usize,
    /// Everything wrong, per page; the test fails at the end with all of it.
    failures: Vec<String>,
    /// axe's findings below "serious", by rule: shown, not failed.
    minor: Vec<String>,
}

impl Walk {
    async fn start() -> Self {
        let axe = axe_source();
        let deployment = Deployment::new(
            Backend::Sqlite,
            &format!("[limits]\nmax_attachment_bytes = {ATTACHMENT_LIMIT}\n{EXAMPLE_SITE}"),
        );
        deployment.add_reviewer("alice");
        let ana: Analyst = add_analyst(&deployment, "ana", "analyst");
        let server = deployment.start();
        let analyst_token = token(&server, &ana, 0).await;
        let mut driver = Chromedriver::start(deployment.path());
        let source = driver.new_session_with(Scripts::Off).await;
        let checker = driver.new_session_with(Scripts::On).await;
        // The checker's documents live on tipbox's origin (a missing page): the copied pages'
        // stylesheet resolves there and tipbox's CSP is in force.
        checker.goto(&format!("{}/a11y-check", server.public)).await;
        let shots = screenshots_dir();
        if shots.exists() {
            std::fs::remove_dir_all(&shots).unwrap();
        }
        std::fs::create_dir_all(&shots).unwrap();
        Self {
            source,
            checker,
            _driver: driver,
            server,
            deployment,
            analyst_token,
            axe,
            shots,
            tips_seen: HashSet::new(),
            pages_checked: 0,
            failures: Vec::new(),
            minor: Vec::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.public)
    }

    /// The languages the landing page's switch offers, in its order.
    async fn languages(&self) -> Vec<String> {
        self.source.goto(&self.url("/")).await;
        let mut tags = Vec::new();
        for link in self.source.find_all("nav.langs a[hreflang]").await {
            tags.push(self.source.attribute(&link, "hreflang").await.unwrap());
        }
        tags
    }

    /// Screenshot, reading order and axe for what the source's browser shows now.
    async fn check_page(&mut self, lang: &str, page: &str) {
        let what = format!("{lang} {page} ({})", self.source.current_url().await);
        self.screenshot(lang, page).await;
        self.check_reading_order(&what).await;
        self.check_with_axe(&what).await;
        self.pages_checked += 1;
    }

    /// The page at a phone's size too: screenshot and reading order, then back to desktop.
    async fn check_on_a_phone(&mut self, lang: &str, page: &str) {
        self.set_viewport(PHONE).await;
        let what = format!("{lang} {page} on a phone");
        self.screenshot(lang, &format!("{page}-phone")).await;
        self.check_reading_order(&what).await;
        self.set_viewport(DESKTOP).await;
    }

    /// Sizes the source's window so that the page itself gets `width` × `height`.
    async fn set_viewport(&self, (width, height): (u32, u32)) {
        self.source.set_window_size(width, height).await;
        let inner = self
            .source
            .execute("return [window.innerWidth, window.innerHeight]", json!([]))
            .await;
        let short = |i: usize, want: u32| want.saturating_sub(inner[i].as_u64().unwrap() as u32);
        let (wider, taller) = (short(0, width), short(1, height));
        if wider > 0 || taller > 0 {
            self.source
                .set_window_size(width + wider, height + taller)
                .await;
        }
    }

    async fn screenshot(&self, lang: &str, name: &str) {
        let png = self.source.screenshot_png().await;
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG screenshot");
        let dir = self.shots.join(lang);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Each next focusable element (in DOM order, which is the tab order without positive
    /// `tabindex`) comes after the one before in reading order: below it, or on the same line
    /// and further along in the page's direction. Line boxes are compared, so a link that
    /// wraps is judged by where it ends and the next one by where it starts.
    async fn check_reading_order(&mut self, what: &str) {
        let found = self
            .source
            .execute(
                "const dir = (document.documentElement.getAttribute('dir') || 'ltr').toLowerCase();
                 const focusable = [...document.querySelectorAll(
                     'a[href], button, input:not([type=hidden]), select, textarea, [tabindex]')]
                   .filter(e => !e.disabled && e.tabIndex >= 0 && e.getClientRects().length > 0);
                 const box = r => [r.left, r.top, r.right, r.bottom];
                 const name = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                   + (e.getAttribute('name') ? '[name=' + e.getAttribute('name') + ']' : '')
                   + ' ' + JSON.stringify((e.textContent || '').trim().slice(0, 40));
                 return {
                   dir,
                   positive: [...document.querySelectorAll('[tabindex]')]
                     .filter(e => e.tabIndex > 0).map(name),
                   items: focusable.map(e => {
                     const rects = e.getClientRects();
                     return { name: name(e), first: box(rects[0]), last: box(rects[rects.length - 1]) };
                   }),
                 };",
                json!([]),
            )
            .await;
        let dir = found["dir"].as_str().unwrap_or("ltr").to_owned();
        for name in found["positive"].as_array().unwrap() {
            self.failures.push(format!(
                "{what}: positive tabindex on {name} (focus order no longer follows the page)"
            ));
        }
        let items = found["items"].as_array().unwrap();
        if let Some(problem) = reading_order_problem(&dir, items) {
            self.failures.push(format!("{what}: {problem}"));
        }
    }

    /// axe over a copy of the page in the checker's session: every rule in the light colour
    /// scheme, and colour contrast again in the dark one (style.css has both; a phone may ask
    /// for either).
    async fn check_with_axe(&mut self, what: &str) {
        let html = self.source.source().await;
        let mut found = Vec::new();
        let light = self.axe_violations(&html).await;
        self.set_color_scheme("dark").await;
        let dark = self.run_axe(json!({ "runOnly": ["color-contrast"] })).await;
        self.set_color_scheme("light").await;
        for (scheme, result) in [("", light), (" (dark colour scheme)", dark)] {
            match result {
                Ok(violations) => found.extend(violations.into_iter().map(|v| (scheme, v))),
                Err(e) => self
                    .failures
                    .push(format!("{what}{scheme}: axe did not run: {e}")),
            }
        }
        for (scheme, violation) in &found {
            let impact = violation["impact"].as_str().unwrap_or("?");
            let id = violation["id"].as_str().unwrap_or("?");
            if !FAILING_IMPACTS.contains(&impact) {
                self.minor.push(format!("{impact} {id}: {what}{scheme}"));
                continue;
            }
            let mut report = format!(
                "{what}{scheme}: axe {impact} `{id}`: {} ({})",
                violation["help"].as_str().unwrap_or(""),
                violation["helpUrl"].as_str().unwrap_or("")
            );
            for node in violation["nodes"].as_array().unwrap() {
                report.push_str(&format!(
                    "\n    {} {}\n      {}",
                    node["target"],
                    node["html"].as_str().unwrap_or(""),
                    node["summary"]
                        .as_str()
                        .unwrap_or("")
                        .replace('\n', "\n      ")
                ));
            }
            self.failures.push(report);
        }
    }

    /// What the checker's pages get for `prefers-color-scheme`.
    async fn set_color_scheme(&self, scheme: &str) {
        self.checker
            .ok(
                "POST",
                "/goog/cdp/execute",
                Some(json!({
                    "cmd": "Emulation.setEmulatedMedia",
                    "params": { "features": [{ "name": "prefers-color-scheme", "value": scheme }] },
                })),
            )
            .await;
    }

    /// axe's violations (rule, impact, help, nodes) in `html`, written into the checker's
    /// document on tipbox's origin. axe is injected once: `document.open` keeps the window.
    async fn axe_violations(&self, html: &str) -> Result<Vec<Value>, String> {
        let html = if html.trim_start().to_lowercase().starts_with("<!doctype") {
            html.to_owned()
        } else {
            format!("<!DOCTYPE html>\n{html}")
        };
        self.checker
            .execute(
                "document.open(); document.write(arguments[0]); document.close();",
                json!([html]),
            )
            .await;
        let loaded = self
            .checker
            .execute("return typeof window.axe", json!([]))
            .await;
        if loaded != "object" {
            let injected = format!("{}\n;return typeof window.axe;", self.axe);
            let loaded = self.checker.try_execute(&injected, json!([])).await?;
            if loaded != "object" {
                return Err(format!("injecting axe-core gave {loaded}, not an object"));
            }
        }
        self.run_axe(json!({})).await
    }

    /// axe with `options` (beside `resultTypes`) over the checker's document, once it and its
    /// stylesheet are in (both load from tipbox).
    async fn run_axe(&self, options: Value) -> Result<Vec<Value>, String> {
        let violations = self
            .checker
            .try_execute(
                "const options = Object.assign({ resultTypes: ['violations'] }, arguments[0]);
                 const started = Date.now();
                 const ready = () => document.readyState === 'complete' && document.styleSheets.length
                   === document.querySelectorAll('link[rel~=stylesheet]').length;
                 return new Promise((resolve, reject) => {
                   const wait = () => ready() ? resolve()
                     : Date.now() - started > 10000 ? reject(new Error('the stylesheet did not load'))
                     : setTimeout(wait, 10);
                   wait();
                 }).then(() => axe.run(document, options))
                   .then(r => r.violations.map(v => ({
                     id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                     nodes: v.nodes.map(n => ({ target: n.target, html: n.html, summary: n.failureSummary })),
                   })));",
                json!([options]),
            )
            .await?;
        Ok(violations.as_array().cloned().unwrap_or_default())
    }

    /// The checker finds what it is there to find: a page without a language, an image
    /// without a text alternative and a field without a label.
    async fn check_the_checker(&self) {
        let bad = "<!DOCTYPE html><html><head><title>bad</title></head><body><main>\
                   <h1>bad</h1><img src=\"/static/style.css\"><input type=\"text\"></main></body></html>";
        let found = self
            .axe_violations(bad)
            .await
            .unwrap_or_else(|e| panic!("axe did not run: {e}"));
        let ids: Vec<&str> = found.iter().filter_map(|v| v["id"].as_str()).collect();
        for rule in ["html-has-lang", "image-alt", "label"] {
            assert!(
                ids.contains(&rule),
                "axe finds `{rule}` on a bad page: {ids:?}"
            );
        }
    }

    /// Clicks `element` and waits until the browser shows a new document, whatever its URL
    /// (a form may post back to the page's own URL).
    async fn click_to_new_page(&self, element: &Element) {
        self.source
            .execute(
                "document.documentElement.setAttribute('data-walk-left', '')",
                json!([]),
            )
            .await;
        self.source.click(element).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let state = self
                .source
                .try_execute(
                    "return document.documentElement.hasAttribute('data-walk-left') \
                     ? 'old' : document.readyState",
                    json!([]),
                )
                .await;
            if state.is_ok_and(|s| s == "complete") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no new page after a click on {}",
                self.source.current_url().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Follows the language switch to `lang`: a link, or on the receipt page a button (it
    /// posts the form's key so that the receipt is not lost).
    async fn switch_language(&self, lang: &str) {
        let switch = self
            .source
            .find(&format!(
                ".langs a[hreflang=\"{lang}\"], .langs button[value=\"{lang}\"]"
            ))
            .await;
        self.click_to_new_page(&switch).await;
    }

    /// Types `word` into the receipt page's "last word" check and sends it.
    async fn type_last_word(&self, word: &str) {
        let field = self.source.find("input#last_word").await;
        self.source.type_into(&field, word).await;
        let send = self
            .source
            .find("form[action=\"/receipt/check\"] button[type=\"submit\"]")
            .await;
        self.click_to_new_page(&send).await;
    }

    /// A reviewer replies to the tip that has just come in.
    async fn reply_to_the_new_tip(&mut self, lang: &str) {
        let tips = api_get(&self.server, &self.analyst_token, "/api/v1/tips").await;
        let new: Vec<String> = tips["tips"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .filter(|id| !self.tips_seen.contains(id))
            .collect();
        assert_eq!(new.len(), 1, "one new tip: {tips}");
        let tip = new[0].clone();
        self.tips_seen.insert(tip.clone());
        let (status, body) = api(
            reqwest::Method::POST,
            format!("{}/api/v1/tips/{tip}/replies", self.server.analyst),
            Some(&self.analyst_token),
            Some(json!({
                "text": format!("Thank you. When did this happen? (a reply to a tip in {lang})")
            })),
        )
        .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    }

    /// The whole walk in `lang`; `next` is another language, for the switch on the receipt page.
    async fn walk(&mut self, lang: &str, next: &str) {
        let base = self.server.public.clone();
        let source_url = |path: &str| format!("{base}{path}?lang={lang}");

        self.source.goto(&source_url("/")).await;
        self.check_page(lang, "landing").await;
        self.check_on_a_phone(lang, "landing").await;

        let to_form = self.source.find("main a[href^=\"/submit\"]").await;
        self.click_to_new_page(&to_form).await;
        self.check_page(lang, "submit").await;
        self.check_on_a_phone(lang, "submit").await;

        // A file over the limit: refused (413), nothing stored.
        let message = self.source.find("textarea#message").await;
        self.source
            .type_into(&message, "Two men followed me home from the station.")
            .await;
        let big = self.deployment.path().join(format!("video-{lang}.mp4"));
        std::fs::write(&big, crate::support::random_bytes(2 * ATTACHMENT_LIMIT)).unwrap();
        let file = self.source.find("input#attachment").await;
        self.source.type_into(&file, big.to_str().unwrap()).await;
        let send = self.source.find("main form button[type=\"submit\"]").await;
        self.click_to_new_page(&send).await;
        self.check_page(lang, "refused-413").await;

        // The form came back with the message in it: sent again without the file, the receipt.
        let send = self.source.find("main form button[type=\"submit\"]").await;
        self.click_to_new_page(&send).await;
        let receipt_element = self.source.find("#receipt").await;
        let receipt = self.source.text(&receipt_element).await;
        self.check_page(lang, "receipt").await;
        self.check_on_a_phone(lang, "receipt").await;
        self.reply_to_the_new_tip(lang).await;

        // The last word typed back wrong: the receipt again, with a warning.
        self.type_last_word("zzzz").await;
        self.source.find("#receipt").await;
        self.check_page(lang, "receipt-wrong-last-word").await;

        // The language switch shows the same receipt in another language, and back.
        self.switch_language(next).await;
        self.source.find("#receipt").await;
        self.check_page(lang, &format!("receipt-switched-to-{next}"))
            .await;
        self.switch_language(lang).await;
        let last_word = self.source.text(&self.source.find("#receipt").await).await;
        let last_word = last_word.split_whitespace().last().unwrap().to_owned();
        self.type_last_word(&last_word).await;
        self.check_page(lang, "receipt-written-down").await;

        // Coming back: the sign-in, a mistyped receipt, then the right one.
        self.source.goto(&source_url("/followup")).await;
        self.check_page(lang, "followup").await;
        let mut words: Vec<&str> = receipt.split_whitespace().collect();
        assert_eq!(words.len(), 12, "a 12-word receipt: {receipt:?}");
        words[11] = "zzzz";
        let field = self.source.find("textarea#receipt").await;
        self.source.type_into(&field, &words.join(" ")).await;
        let sign_in = self.source.find("main form button[type=\"submit\"]").await;
        self.click_to_new_page(&sign_in).await;
        self.source.find("#problem").await;
        self.check_page(lang, "followup-mistyped").await;
        let field = self.source.find("textarea#receipt").await;
        self.source.clear(&field).await;
        self.source.type_into(&field, &receipt).await;
        let sign_in = self.source.find("main form button[type=\"submit\"]").await;
        self.click_to_new_page(&sign_in).await;
        assert_eq!(
            self.source.current_url().await,
            source_url("/followup/case"),
            "signed in with the receipt"
        );
        self.source.find(".reply-text").await;
        self.check_page(lang, "case").await;
        self.check_on_a_phone(lang, "case").await;

        // An addition with nothing in it: refused (400).
        let add = self
            .source
            .find("form[action^=\"/followup/case/add\"] button")
            .await;
        self.click_to_new_page(&add).await;
        self.check_page(lang, "refused-400").await;

        self.source.goto(&source_url("/followup/case")).await;
        let sign_out = self.source.find("#signout").await;
        self.click_to_new_page(&sign_out).await;
        self.check_page(lang, "signed-out").await;

        self.source.goto(&source_url("/no/such/page")).await;
        self.check_page(lang, "not-found").await;
    }
}

/// The first pair of focusable elements out of reading order in a page of direction `dir`,
/// from the boxes the page reported (`[left, top, right, bottom]` of an element's first and
/// last line box). Two boxes are on the same line when they overlap vertically by more than
/// half the lower one's height (tall line boxes of wrapped lines may touch a little); else
/// the one whose middle is lower is below.
fn reading_order_problem(dir: &str, items: &[Value]) -> Option<String> {
    const SLACK: f64 = 1.0;
    let rect = |item: &Value, which: &str| -> [f64; 4] {
        let r = item[which].as_array().unwrap();
        std::array::from_fn(|i| r[i].as_f64().unwrap())
    };
    let rtl = dir == "rtl";
    for pair in items.windows(2) {
        let [a_left, a_top, a_right, a_bottom] = rect(&pair[0], "last");
        let [b_left, b_top, b_right, b_bottom] = rect(&pair[1], "first");
        let overlap = a_bottom.min(b_bottom) - a_top.max(b_top);
        let same_line = overlap > (a_bottom - a_top).min(b_bottom - b_top) / 2.0;
        let in_order = if same_line {
            if rtl {
                b_right <= a_left + SLACK
            } else {
                b_left >= a_right - SLACK
            }
        } else {
            b_top + b_bottom > a_top + a_bottom
        };
        if !in_order {
            return Some(format!(
                "focus goes from {} to {}, which comes before it in reading order ({dir}): \
                 {:?} then {:?}",
                pair[0]["name"],
                pair[1]["name"],
                rect(&pair[0], "last"),
                rect(&pair[1], "first"),
            ));
        }
    }
    None
}

/// Every public page in every language the switch offers: no serious or critical axe
/// violation, focus in reading order, a screenshot of each (see the module's doc).
#[tokio::test(flavor = "multi_thread")]
async fn every_page_in_every_language_passes_axe_in_reading_order() {
    let started = Instant::now();
    let mut walk = Walk::start().await;
    walk.check_the_checker().await;
    walk.set_viewport(DESKTOP).await;
    let languages = walk.languages().await;
    let expected: Vec<&str> = Lang::ALL.iter().map(|l| l.tag()).collect();
    assert_eq!(
        languages, expected,
        "the language switch offers every language"
    );
    for (i, lang) in languages.iter().enumerate() {
        let next = &languages[(i + 1) % languages.len()];
        walk.walk(lang, next).await;
    }
    eprintln!(
        "a11y: {} pages in {} languages checked in {:?}; screenshots in {}",
        walk.pages_checked,
        languages.len(),
        started.elapsed(),
        walk.shots.display()
    );
    if !walk.minor.is_empty() {
        eprintln!(
            "a11y: axe's findings below \"serious\" (not failed):\n  {}",
            walk.minor.join("\n  ")
        );
    }
    assert!(
        walk.failures.is_empty(),
        "{} problem(s):\n{}",
        walk.failures.len(),
        walk.failures.join("\n")
    );
}

/// The reading-order rule itself, on made-up boxes: left to right, then right to left.
#[test]
fn reading_order_follows_the_direction_of_the_page() {
    let item = |name: &str, b: [f64; 4]| json!({ "name": name, "first": b, "last": b });
    let left = item("left", [0.0, 0.0, 100.0, 20.0]);
    let right = item("right", [200.0, 0.0, 300.0, 20.0]);
    let below = item("below", [250.0, 30.0, 300.0, 50.0]);
    let ltr = [left.clone(), right.clone(), below.clone()];
    assert_eq!(reading_order_problem("ltr", &ltr), None);
    assert!(reading_order_problem("rtl", &ltr).is_some());
    let rtl = [right, left.clone(), below.clone()];
    assert_eq!(reading_order_problem("rtl", &rtl), None);
    assert!(reading_order_problem("ltr", &rtl).is_some());
    assert!(reading_order_problem("ltr", &[below.clone(), left]).is_some());
    // A wrapped row whose tall line boxes touch: the next line is still below.
    let tall = item("tall", [200.0, 0.0, 300.0, 56.0]);
    let next_line = item("next line", [0.0, 52.0, 50.0, 86.0]);
    assert_eq!(
        reading_order_problem("ltr", &[tall.clone(), next_line]),
        None
    );
    assert!(reading_order_problem("ltr", &[below, tall]).is_some());
}
