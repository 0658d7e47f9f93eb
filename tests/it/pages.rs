//! The public pages over HTTP: languages, security headers, no script and nothing from
//! elsewhere, and the separation of the two listeners.

use reqwest::StatusCode;
use reqwest::multipart::Form;

use crate::support::web::{CASE_COOKIE, cookie_from, post_receipt, source_sign_in};
use crate::support::{Backend, Deployment, Lang, ReceiptCode, client, receipt_from, submit};

async fn get(url: &str, accept_language: Option<&str>) -> reqwest::Response {
    let mut request = client().get(url);
    if let Some(al) = accept_language {
        request = request.header("accept-language", al);
    }
    request.send().await.unwrap()
}

fn html_lang(page: &str) -> &str {
    let at = page.find("<html lang=\"").unwrap() + 12;
    &page[at..at + page[at..].find('"').unwrap()]
}

/// The `<html>` start tag of a page.
fn html_tag(page: &str) -> &str {
    let at = page.find("<html").expect("an html element");
    &page[at..at + page[at..].find('>').unwrap() + 1]
}

/// The text of the element with `id="{id}"` (no markup inside it).
fn element_text<'a>(page: &'a str, id: &str) -> &'a str {
    let at = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("#{id}"));
    let start = page[at..].find('>').unwrap() + at + 1;
    &page[start..start + page[start..].find('<').unwrap()]
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_speak_every_language() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    deployment.add_reviewer("alice");
    let server = deployment.start();
    for path in ["/", "/submit", "/followup"] {
        for (query, accept, expected) in [
            ("", None, "en"),
            ("", Some("zh-CN,zh;q=0.9"), "zh-Hans"),
            ("", Some("zh-TW"), "zh-Hant"),
            ("?lang=zh-Hant", Some("zh-CN"), "zh-Hant"),
            ("?lang=zh-Hans", None, "zh-Hans"),
            ("?lang=en", Some("zh-TW"), "en"),
            ("?lang=klingon", Some("zh-HK"), "zh-Hant"),
            ("", Some("ug-CN,ug;q=0.9,zh-CN;q=0.8"), "ug"),
            ("", Some("bo-CN,bo;q=0.9"), "bo"),
            ("", Some("ru-RU,ru;q=0.9,en-US;q=0.8"), "ru"),
            ("", Some("fa-IR,fa;q=0.9,en;q=0.8"), "fa"),
            ("?lang=fa", Some("ru-RU"), "fa"),
            ("?lang=ug", None, "ug"),
            ("?lang=bo", Some("zh-CN"), "bo"),
            ("?lang=ru", Some("fa-IR"), "ru"),
        ] {
            let response = get(&format!("{}{path}{query}", server.public), accept).await;
            assert_eq!(response.status(), StatusCode::OK);
            let page = response.text().await.unwrap();
            assert_eq!(html_lang(&page), expected, "{path}{query} {accept:?}");
            let lang = Lang::from_tag(expected).unwrap();
            // The page is in that language, and the switch links to the others.
            assert!(
                page.contains(&html_escape(&lang.t("nav-submit"))),
                "{path}{query}"
            );
            assert_eq!(
                html_tag(&page),
                format!("<html lang=\"{expected}\" dir=\"{}\">", lang.dir()),
                "{path}{query} {accept:?}"
            );
            // The switch offers all seven languages, each named in its own.
            for other in Lang::ALL {
                assert!(
                    page.contains(&format!(
                        "href=\"{path}?lang={0}\" hreflang=\"{0}\" lang=\"{0}\"",
                        other.tag()
                    )),
                    "{path}: switch to {}",
                    other.tag()
                );
                assert!(page.contains(other.native_name()), "{}", other.tag());
            }
            // The form posts back in the same language.
            if path == "/submit" {
                assert!(page.contains(&format!("action=\"/submit?lang={expected}\"")));
                assert!(page.contains("enctype=\"multipart/form-data\""));
            }
            if path == "/followup" {
                assert!(page.contains(&format!("action=\"/followup?lang={expected}\"")));
                assert!(page.contains(&html_escape(&lang.t("followup-receipt-label"))));
            }
        }
    }
    // The landing page carries the safety advice.
    let landing = get(&format!("{}/?lang=zh-Hans", server.public), None)
        .await
        .text()
        .await
        .unwrap();
    for key in [
        "landing-safety-tor",
        "landing-safety-device",
        "landing-safety-photos",
    ] {
        assert!(
            landing.contains(&html_escape(&Lang::ZhHans.t(key))),
            "{key}"
        );
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// The headers every answer carries, whatever its status.
fn assert_security_headers(what: &str, h: &reqwest::header::HeaderMap) {
    let csp = h["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{what}: {csp}");
    }
    assert!(!csp.contains("script-src"), "no script is ever allowed");
    assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(h["cache-control"], "no-store", "{what}");
    assert_eq!(h["cross-origin-opener-policy"], "same-origin", "{what}");
    assert_eq!(h["cross-origin-embedder-policy"], "require-corp", "{what}");
    assert_eq!(h["cross-origin-resource-policy"], "same-origin", "{what}");
    assert!(h.get("server").is_none(), "{what}: no Server header");
}

/// Pages, the stylesheet, a missing page, the health check, the receipt page and every error
/// page a source can meet (400, 413, 429, 503).
#[tokio::test(flavor = "multi_thread")]
async fn every_response_carries_the_security_headers() {
    let deployment = Deployment::new(
        Backend::Sqlite,
        "[limits]\nmax_message_bytes = 100\n\
         [rate_limits]\nforms_per_minute = 60\nforms_burst = 3\n",
    );
    deployment.add_reviewer("alice");
    let server = deployment.start();
    let mut seen = Vec::new();
    for (url, status) in [
        (format!("{}/", server.public), StatusCode::OK),
        (format!("{}/submit", server.public), StatusCode::OK),
        (
            format!("{}/static/style.css", server.public),
            StatusCode::OK,
        ),
        (
            format!("{}/no/such/page", server.public),
            StatusCode::NOT_FOUND,
        ),
        // Asked for by browsers on a first visit: answered with nothing, not a 404 page.
        (
            format!("{}/favicon.ico", server.public),
            StatusCode::NO_CONTENT,
        ),
        (format!("{}/health", server.analyst), StatusCode::OK),
    ] {
        seen.push((url.clone(), status, get(&url, None).await));
    }
    // The receipt, a form that cannot be read, a message over the limit, and then the
    // submissions' budget (three at once) spent.
    let post_form = |body: Form| {
        client()
            .post(format!("{}/submit?lang=en", server.public))
            .multipart(body)
    };
    let receipt = post_form(Form::new().text("message", "hello"))
        .send()
        .await
        .unwrap();
    assert!(
        receipt.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("text/html")
    );
    seen.push(("the receipt page".into(), StatusCode::OK, receipt));
    let unreadable = client()
        .post(format!("{}/submit?lang=en", server.public))
        .header("content-type", "multipart/form-data; boundary=XYZ")
        .body("--XYZ\r\ngarbage")
        .send()
        .await
        .unwrap();
    seen.push((
        "a form that cannot be read".into(),
        StatusCode::BAD_REQUEST,
        unreadable,
    ));
    let too_large = post_form(Form::new().text("message", "x".repeat(101)))
        .send()
        .await
        .unwrap();
    seen.push((
        "a message over the limit".into(),
        StatusCode::PAYLOAD_TOO_LARGE,
        too_large,
    ));
    let mut limited = None;
    for _ in 0..10 {
        let response = post_form(Form::new().text("message", "again"))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
    }
    let limited = limited.expect("the submissions' budget runs out");
    seen.push((
        "over the budget".into(),
        StatusCode::TOO_MANY_REQUESTS,
        limited,
    ));
    // Without a reviewer key, intake is paused.
    let paused = Deployment::new(Backend::Sqlite, "");
    let paused_server = paused.start();
    let response = get(&format!("{}/submit", paused_server.public), None).await;
    seen.push((
        "the paused form".into(),
        StatusCode::SERVICE_UNAVAILABLE,
        response,
    ));

    for (what, status, response) in seen {
        assert_eq!(response.status(), status, "{what}");
        assert_security_headers(&what, response.headers());
    }
    let missing = get(
        &format!("{}/no/such/page?lang=zh-Hant", server.public),
        None,
    )
    .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(
        missing
            .text()
            .await
            .unwrap()
            .contains(&Lang::ZhHant.t("not-found-title"))
    );
}

/// What a page and its stylesheet may weigh together, as served: a source on a slow circuit or
/// a phone plan waits for every byte.
const PAGE_BUDGET: usize = 30_000;

/// Every page a source can meet, in every language, is under 30 KB with the stylesheet and
/// has no script, with an operator's texts on it: landing, form, refusals (413, 400), receipt
/// (and with a wrong last word), sign-in (empty and with a mistyped receipt), case page with a
/// reply, a missing page.
#[tokio::test(flavor = "multi_thread")]
async fn every_page_with_its_stylesheet_is_under_30_kb_in_every_language() {
    use crate::support::analyst::{add_analyst, api, token};
    use crate::support::deployment::EXAMPLE_SITE;
    use crate::support::web::{form, hidden, hidden_csrf, post_receipt};
    use crate::support::{random_bytes, submit_form_tip, tip_form};

    // The operator's own words on every page.
    let deployment = Deployment::new(
        Backend::Sqlite,
        &format!("[limits]\nmax_attachment_bytes = 1000\n{EXAMPLE_SITE}"),
    );
    deployment.add_reviewer("alice");
    let ana = add_analyst(&deployment, "ana", "analyst");
    let server = deployment.start();
    let analyst = token(&server, &ana, 0).await;
    let stylesheet = get(&format!("{}/static/style.css", server.public), None)
        .await
        .bytes()
        .await
        .unwrap()
        .len();

    // A source with a long reply waiting (replies are part of the page).
    let (receipt, tip) =
        submit_form_tip(&deployment, &server, tip_form("They came again.", &[])).await;
    let (status, body) = api(
        reqwest::Method::POST,
        format!("{}/api/v1/tips/{tip}/replies", server.analyst),
        Some(&analyst),
        Some(serde_json::json!({ "text": "Thank you for telling us. ".repeat(40) })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let session = source_sign_in(&server, &receipt).await;
    let mut mistyped: Vec<&str> = receipt.split(' ').collect();
    mistyped[11] = "zzzz";
    let mistyped = mistyped.join(" ");

    let mut heaviest = (0, String::new());
    for lang in Lang::ALL.map(Lang::tag) {
        let url = |path: &str| format!("{}{path}?lang={lang}", server.public);
        let mut pages: Vec<(&str, reqwest::Response)> = Vec::new();
        for (name, path) in [
            ("landing", "/"),
            ("submit", "/submit"),
            ("followup", "/followup"),
            ("not found", "/no/such/page"),
        ] {
            pages.push((name, get(&url(path), None).await));
        }
        let post_form = |body: Form| client().post(url("/submit")).multipart(body).send();
        let receipt_page = post_form(tip_form("Two men followed me.", &[]))
            .await
            .unwrap();
        assert_eq!(receipt_page.status(), StatusCode::OK);
        let receipt_page = receipt_page.text().await.unwrap();
        // The last word typed back wrong: the receipt page again, with a warning.
        let wrong_word = form(
            &url("/receipt/check"),
            None,
            &[
                ("form_key", &hidden(&receipt_page, "form_key")),
                ("lang", lang),
                ("last_word", "zzzz"),
            ],
        )
        .await;
        pages.push(("wrong last word", wrong_word));
        pages.push((
            "413",
            post_form(tip_form(
                "Two men followed me.",
                &[("a.jpg", random_bytes(2000))],
            ))
            .await
            .unwrap(),
        ));
        pages.push((
            "mistyped receipt",
            post_receipt(&server, &mistyped, lang).await,
        ));
        let case = client()
            .get(url("/followup/case"))
            .header(reqwest::header::COOKIE, &session)
            .send()
            .await
            .unwrap();
        assert_eq!(case.status(), StatusCode::OK);
        let case = case.text().await.unwrap();
        assert!(
            case.contains("Thank you for telling us."),
            "{lang}: the reply"
        );
        let nothing_to_add = client()
            .post(url("/followup/case/add"))
            .header(reqwest::header::COOKIE, &session)
            .multipart(
                Form::new()
                    .text("csrf", hidden_csrf(&case))
                    .text("message", ""),
            )
            .send()
            .await
            .unwrap();
        pages.push(("400", nothing_to_add));

        let mut served = vec![
            ("case", StatusCode::OK, case.into_bytes()),
            ("receipt", StatusCode::OK, receipt_page.into_bytes()),
        ];
        for (name, response) in pages {
            let status = response.status();
            served.push((name, status, response.bytes().await.unwrap().to_vec()));
        }
        let expected = |name| match name {
            "not found" => StatusCode::NOT_FOUND,
            "413" => StatusCode::PAYLOAD_TOO_LARGE,
            "mistyped receipt" | "400" => StatusCode::BAD_REQUEST,
            _ => StatusCode::OK,
        };
        for (name, status, body) in served {
            assert_eq!(status, expected(name), "{lang} {name}");
            let html = String::from_utf8(body).unwrap();
            assert!(
                html.contains(&format!("lang=\"{lang}\"")),
                "{lang} {name}: in its language"
            );
            assert!(
                !html.to_lowercase().contains("<script"),
                "{lang} {name}: no script"
            );
            assert!(
                html.contains("(Signal, day and night)"),
                "{lang} {name}: the operator's emergency text is on the page"
            );
            let weight = html.len() + stylesheet;
            if weight > heaviest.0 {
                heaviest = (weight, format!("{lang} {name}"));
            }
            assert!(
                weight < PAGE_BUDGET,
                "{lang} {name}: {} bytes of HTML + {stylesheet} of stylesheet = {weight} bytes, \
                 over {PAGE_BUDGET}",
                html.len()
            );
        }
    }
    eprintln!(
        "heaviest page: {} at {} bytes with the stylesheet ({stylesheet})",
        heaviest.1, heaviest.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_have_no_script_and_nothing_from_elsewhere() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    deployment.add_reviewer("alice");
    let server = deployment.start();
    let (status, receipt_page) = submit(&server, Form::new().text("message", "hello"), "en").await;
    assert_eq!(status, StatusCode::OK);
    // The case page of a source signed in with that receipt.
    let session = source_sign_in(&server, &receipt_from(&receipt_page)).await;
    let mut pages = vec![receipt_page];
    for lang in Lang::ALL.map(Lang::tag) {
        let case = client()
            .get(format!("{}/followup/case?lang={lang}", server.public))
            .header(reqwest::header::COOKIE, &session)
            .send()
            .await
            .unwrap();
        assert_eq!(case.status(), StatusCode::OK);
        pages.push(case.text().await.unwrap());
        for path in ["/", "/submit", "/followup", "/nowhere"] {
            pages.push(
                get(&format!("{}{path}?lang={lang}", server.public), None)
                    .await
                    .text()
                    .await
                    .unwrap(),
            );
        }
    }
    pages.push(
        get(&format!("{}/static/style.css", server.public), None)
            .await
            .text()
            .await
            .unwrap(),
    );
    for page in &pages {
        let lower = page.to_lowercase();
        assert!(!lower.contains("<script"), "no script element");
        assert!(!lower.contains("javascript:"), "no javascript: URL");
        assert!(
            !lower.contains("onclick=") && !lower.contains("onload="),
            "no inline handlers"
        );
        assert!(
            !lower.contains("http://") && !lower.contains("https://"),
            "no resource or link to another site"
        );
        assert!(
            !lower.contains("@import") && !lower.contains("url("),
            "the stylesheet loads nothing"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_listeners_are_separate() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    let server = deployment.start();
    let health = get(&format!("{}/health", server.analyst), None).await;
    assert_eq!(health.status(), StatusCode::OK);
    let body: serde_json::Value = serde_json::from_str(&health.text().await.unwrap()).unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["intake"], "paused: no active reviewer key");
    // The analyst side is not reachable through the public listener, nor the public pages
    // through the analyst one.
    assert_eq!(
        get(&format!("{}/health", server.public), None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&format!("{}/submit", server.analyst), None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

/// Every public page a source can meet, in each language: `lang` and `dir` on `<html>`.
#[tokio::test(flavor = "multi_thread")]
async fn every_public_page_has_its_language_and_direction() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    deployment.add_reviewer("alice");
    let server = deployment.start();
    let paused = Deployment::new(Backend::Sqlite, "");
    let paused_server = paused.start();
    let (_, receipt_page) = submit(&server, Form::new().text("message", "hello"), "en").await;
    let session = source_sign_in(&server, &receipt_from(&receipt_page)).await;
    for lang in Lang::ALL {
        let tag = lang.tag();
        let expected = format!("<html lang=\"{tag}\" dir=\"{}\">", lang.dir());
        let mut pages = Vec::new();
        for path in ["/", "/submit", "/followup", "/nowhere"] {
            let url = format!("{}{path}?lang={tag}", server.public);
            pages.push((path.to_owned(), get(&url, None).await));
        }
        let url = format!("{}/submit?lang={tag}", paused_server.public);
        pages.push(("the paused form".into(), get(&url, None).await));
        let case = client()
            .get(format!("{}/followup/case?lang={tag}", server.public))
            .header(reqwest::header::COOKIE, &session)
            .send()
            .await
            .unwrap();
        pages.push(("the case page".into(), case));
        let wrong = post_receipt(&server, "only three words", tag).await;
        pages.push(("a wrong receipt".into(), wrong));
        let (status, receipt) = submit(&server, Form::new().text("message", "hi"), tag).await;
        assert_eq!(status, StatusCode::OK);
        for (what, response) in pages {
            let page = response.text().await.unwrap();
            assert_eq!(html_tag(&page), expected, "{what} in {tag}");
        }
        assert_eq!(html_tag(&receipt), expected, "the receipt page in {tag}");
    }
    assert_eq!(Lang::Fa.dir(), "rtl");
    assert_eq!(Lang::Ug.dir(), "rtl");
}

/// A source on a Persian page gets a receipt in English words, shown left to right and said to
/// be English; it signs in from a page in any language, and the case page writes its numbers
/// in Persian digits.
#[tokio::test(flavor = "multi_thread")]
async fn a_persian_source_gets_an_english_receipt_and_signs_in_with_it() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    deployment.add_reviewer("alice");
    let server = deployment.start();
    let (status, page) = submit(&server, Form::new().text("message", "سلام"), "fa").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(html_tag(&page).contains("dir=\"rtl\""));
    assert!(
        page.contains("class=\"receipt\" id=\"receipt\" lang=\"en\" dir=\"ltr\""),
        "the words read left to right, as English"
    );
    let receipt = receipt_from(&page);
    assert_eq!(receipt.split(' ').count(), 12);
    assert!(receipt.chars().all(|c| c.is_ascii_lowercase() || c == ' '));
    assert_eq!(ReceiptCode::parse(&receipt, Lang::En).unwrap().len(), 1);
    assert_eq!(
        element_text(&page, "receipt-words"),
        html_escape(&Lang::Fa.t("receipt-english-words"))
    );
    // Pages whose language has a BIP39 list of its own say nothing of the kind.
    let (_, english) = submit(&server, Form::new().text("message", "hi"), "en").await;
    assert!(!english.contains("id=\"receipt-words\""));
    let (_, chinese) = submit(&server, Form::new().text("message", "你好"), "zh-Hans").await;
    assert!(!chinese.contains("id=\"receipt-words\""));
    assert!(chinese.contains("lang=\"zh-Hans\" dir=\"ltr\""));

    // The receipt box reads left to right on a right-to-left page.
    let form = get(&format!("{}/followup?lang=fa", server.public), None)
        .await
        .text()
        .await
        .unwrap();
    assert!(form.contains("spellcheck=\"false\" dir=\"ltr\""), "{form}");

    // Signed in from a Uyghur page, a Persian page and a Russian one alike.
    for lang in ["ug", "ru", "fa"] {
        let response = post_receipt(&server, &receipt, lang).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{lang}");
        assert_eq!(
            response.headers()["location"].to_str().unwrap(),
            format!("/followup/case?lang={lang}")
        );
        let (token, _) = cookie_from(&response, CASE_COOKIE).expect("a session cookie");
        let case = client()
            .get(format!("{}/followup/case?lang={lang}", server.public))
            .header(reqwest::header::COOKIE, format!("{CASE_COOKIE}={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(case.status(), StatusCode::OK);
        let case = case.text().await.unwrap();
        let lang = Lang::from_tag(lang).unwrap();
        assert!(case.contains(&html_escape(&lang.t("case-status-received"))));
        if lang == Lang::Fa {
            // The idle minutes and the attachment limits, in Persian digits only.
            let help = element_text(&case, "attachment-help");
            assert!(help.contains('۲'), "{help}");
            assert!(!help.chars().any(|c| c.is_ascii_digit()), "{help}");
            // What was received: the date and the count of files, in Persian digits too.
            let table = &case[case.find("<table class=\"received\"").unwrap()..];
            let table = &table[..table.find("</table>").unwrap()];
            assert!(table.contains('۲') && table.contains('۰'), "{table}");
            // Year/month/day with slashes: hyphens would show reversed after Persian words.
            let persian_digit = |c: char| ('۰'..='۹').contains(&c);
            let chars: Vec<char> = table.chars().collect();
            assert!(
                chars
                    .windows(3)
                    .any(|w| persian_digit(w[0]) && w[1] == '/' && persian_digit(w[2])),
                "{table}"
            );
            assert!(!table.chars().any(|c| c.is_ascii_digit()), "{table}");
        }
    }
    // A mistyped word is named in Persian digits, with English suggestions.
    let mut words: Vec<String> = receipt.split(' ').map(str::to_owned).collect();
    words[10].push_str("qq");
    let response = post_receipt(&server, &words.join(" "), "fa").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let problem = response.text().await.unwrap();
    let problem = element_text(&problem, "problem");
    assert!(problem.contains("۱۱"), "{problem}");
    assert!(!problem.chars().any(|c| c.is_ascii_digit()), "{problem}");
}
