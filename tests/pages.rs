//! The public pages over HTTP: languages, security headers, no script and nothing from
//! elsewhere, and the separation of the two listeners.

mod common;

use common::*;
use reqwest::StatusCode;

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

#[tokio::test(flavor = "multi_thread")]
async fn pages_speak_three_languages() {
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
        ] {
            let response = get(&format!("{}{path}{query}", server.public), accept).await;
            assert_eq!(response.status(), StatusCode::OK);
            let page = response.text().await.unwrap();
            assert_eq!(html_lang(&page), expected, "{path}{query} {accept:?}");
            let lang = tipbox::i18n::Lang::from_tag(expected).unwrap();
            // The page is in that language, and the switch links to the others.
            assert!(
                page.contains(&html_escape(&lang.t("nav-submit"))),
                "{path}{query}"
            );
            for other in ["en", "zh-Hans", "zh-Hant"] {
                assert!(
                    page.contains(&format!("href=\"{path}?lang={other}\"")),
                    "{path}: switch to {other}"
                );
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
            landing.contains(&html_escape(&tipbox::i18n::Lang::ZhHans.t(key))),
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

#[tokio::test(flavor = "multi_thread")]
async fn every_response_carries_the_security_headers() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    deployment.add_reviewer("alice");
    let server = deployment.start();
    let urls = [
        format!("{}/", server.public),
        format!("{}/submit", server.public),
        format!("{}/static/style.css", server.public),
        format!("{}/no/such/page", server.public),
        format!("{}/health", server.analyst),
    ];
    for url in &urls {
        let response = get(url, None).await;
        let h = response.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'none'",
            "style-src 'self'",
            "img-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{url}: {csp}");
        }
        assert!(!csp.contains("script-src"), "no script is ever allowed");
        assert_eq!(h["referrer-policy"], "no-referrer", "{url}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{url}");
        assert_eq!(h["cache-control"], "no-store", "{url}");
        assert_eq!(h["cross-origin-opener-policy"], "same-origin", "{url}");
        assert_eq!(h["cross-origin-embedder-policy"], "require-corp", "{url}");
        assert_eq!(h["cross-origin-resource-policy"], "same-origin", "{url}");
        assert!(h.get("server").is_none(), "{url}: no Server header");
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
            .contains(&tipbox::i18n::Lang::ZhHant.t("not-found-title"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_have_no_script_and_nothing_from_elsewhere() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    deployment.add_reviewer("alice");
    let server = deployment.start();
    let receipt_page = client()
        .post(format!("{}/submit", server.public))
        .multipart(reqwest::multipart::Form::new().text("message", "hello"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The case page of a source signed in with that receipt.
    let receipt = receipt_from(&receipt_page);
    let form_page = get(&format!("{}/followup", server.public), None).await;
    let pairing = form_page
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-tipbox_signin="))
        .unwrap();
    let token = pairing.split_once('=').unwrap().1.to_owned();
    let signed_in = common::web::form(
        &format!("{}/followup", server.public),
        Some(&pairing),
        &[("csrf", &token), ("receipt", &receipt)],
    )
    .await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let session = signed_in
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-tipbox_case="))
        .unwrap();
    let mut pages = vec![receipt_page];
    for lang in ["en", "zh-Hans", "zh-Hant"] {
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
