//! What a source must not lose: the receipt (shown once, kept for its page while it is written
//! down, never a second tip for the same form), the words typed into a refused form, and the
//! operator's own words on every page — over real HTTP, on both backends where the store is
//! involved.

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};

use crate::support::on_both_backends;
use crate::support::web::{case_page, form, get, hidden, source_sign_in};
use crate::support::{Backend, Deployment, Lang, ReceiptCode, random_bytes, receipt_from, submit};

/// The submission form's page, and its own key.
async fn fresh_form(public: &str, lang: &str) -> (String, String) {
    let page = get(&format!("{public}/submit?lang={lang}"), None)
        .await
        .text()
        .await
        .unwrap();
    let key = hidden(&page, "form_key");
    assert_eq!(key.len(), 43, "256 random bits, URL-safe base64");
    (page, key)
}

fn keyed_form(key: &str, message: &str) -> Form {
    Form::new()
        .text("form_key", key.to_owned())
        .text("message", message.to_owned())
        .text("country", "Netherlands")
}

fn the_same(a: &str, a_lang: Lang, b: &str, b_lang: Lang) -> bool {
    let a = ReceiptCode::parse(a, a_lang).unwrap();
    let b = ReceiptCode::parse(b, b_lang).unwrap();
    a.iter()
        .any(|x| b.iter().any(|y| x.words(Lang::En) == y.words(Lang::En)))
}

async fn the_same_form_sent_twice_stores_one_tip(backend: Backend) {
    let deployment = Deployment::new(backend, "");
    deployment.add_reviewer("alice");
    let server = deployment.start();
    let public = &server.public;
    let (_, key) = fresh_form(public, "en").await;
    let (status, first) = submit(&server, keyed_form(&key, "one visit"), "en").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert!(first.contains(&Lang::En.t("receipt-once")));
    let receipt = receipt_from(&first);
    // Reload: the browser sends the same form again. The same receipt, no second tip.
    let (status, again) = submit(&server, keyed_form(&key, "one visit"), "en").await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(receipt_from(&again), receipt);
    assert_eq!(deployment.counts().await.tips, 1);

    // The language switch on the receipt page posts the key and shows the same receipt, in
    // the words of the other language.
    let switched = form(
        &format!("{public}/receipt"),
        None,
        &[("form_key", &key), ("lang", "zh-Hans")],
    )
    .await;
    assert_eq!(switched.status(), StatusCode::OK);
    let switched = switched.text().await.unwrap();
    assert!(switched.contains("<html lang=\"zh-Hans\""));
    let chinese = receipt_from(&switched);
    assert_ne!(chinese, receipt);
    assert!(the_same(&receipt, Lang::En, &chinese, Lang::ZhHans));
    // The page has no plain link away before the check (only the form's buttons).
    assert!(!switched.contains("href=\"/submit"), "{switched}");

    // A wrong last word: the receipt again, with what to do.
    let check = |word: String, lang: &'static str| {
        let key = key.clone();
        async move {
            let response = form(
                &format!("{public}/receipt/check"),
                None,
                &[("form_key", &key), ("lang", lang), ("last_word", &word)],
            )
            .await;
            assert_eq!(response.status(), StatusCode::OK);
            response.text().await.unwrap()
        }
    };
    let wrong = check("zzzz".into(), "en").await;
    assert!(wrong.contains(&html_escape(&Lang::En.t("receipt-check-wrong"))));
    assert_eq!(receipt_from(&wrong), receipt);
    // The right one, typed from the Chinese receipt: done, and the receipt is not shown again.
    let last = chinese.split(' ').next_back().unwrap().to_owned();
    let done = check(last, "zh-Hans").await;
    assert!(
        done.contains(&Lang::ZhHans.t("receipt-done-title")),
        "{done}"
    );
    assert!(!done.contains("id=\"receipt\""));
    let (status, resent) = submit(&server, keyed_form(&key, "one visit"), "en").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!resent.contains("id=\"receipt\""));
    assert!(resent.contains(&html_escape(&Lang::En.t("receipt-already-sent"))));
    assert_eq!(deployment.counts().await.tips, 1);

    // After a restart (nothing kept in memory), the store still knows the form was sent.
    let (_, key2) = fresh_form(public, "en").await;
    let (status, page) = submit(&server, keyed_form(&key2, "second visit"), "en").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    drop(server);
    let server = deployment.start();
    let (status, resent) = submit(&server, keyed_form(&key2, "second visit"), "en").await;
    assert_eq!(status, StatusCode::OK);
    assert!(resent.contains(&html_escape(&Lang::En.t("receipt-already-sent"))));
    assert!(!resent.contains("id=\"receipt\""));
    // Two sends at once with one key (a double click): one tip.
    let (_, key3) = fresh_form(&server.public, "en").await;
    let (a, b) = tokio::join!(
        submit(&server, keyed_form(&key3, "double"), "en"),
        submit(&server, keyed_form(&key3, "double"), "en"),
    );
    assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK));
    assert_eq!(deployment.counts().await.tips, 3);
    // The receipt still works, and forms without a key (scripts, old pages) still work.
    let (status, page) = submit(&server, crate::support::tip_form("no key", &[]), "en").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    source_sign_in(&server, &receipt).await;
    assert_eq!(deployment.counts().await.tips, 4);
}

on_both_backends!(the_same_form_sent_twice_stores_one_tip);

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_or_expired_key_shows_no_receipt() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    deployment.add_reviewer("alice");
    let server = deployment.start();
    for key in ["", "not-a-key", &"A".repeat(43)] {
        let page = form(
            &format!("{}/receipt", server.public),
            None,
            &[("form_key", key), ("lang", "zh-Hant")],
        )
        .await;
        assert_eq!(page.status(), StatusCode::OK);
        let page = page.text().await.unwrap();
        assert!(
            page.contains(&Lang::ZhHant.t("receipt-gone-title")),
            "{page}"
        );
        assert!(!page.contains("id=\"receipt\""));
    }
}

/// As askama escapes text on the pages.
fn html_escape(s: &str) -> String {
    s.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// The value of the input `name` on a page (`value="…"` after `name="…"`).
fn input_value(page: &str, name: &str) -> String {
    let at = page.find(&format!("name=\"{name}\" value=\"")).unwrap() + name.len() + 15;
    page[at..at + page[at..].find('"').unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_form_comes_back_with_what_was_typed() {
    let deployment = Deployment::new(
        Backend::Sqlite,
        "[limits]\nmax_attachment_bytes = 100000\nmax_total_bytes = 300000",
    );
    deployment.add_reviewer("alice");
    let server = deployment.start();
    let message = "他们给我在国内的父母打电话 <b>&</b> asked me to come back.\nSecond line.";
    let typed = || {
        Form::new()
            .text("message", message)
            .text("incident_type", "threats_to_family")
            .text("country", "Nederland")
            .text("city", "Den Haag")
            .text("when", "last week")
    };
    // A file over the per-file limit: 413, the form again with everything typed, the file named.
    let (status, page) = submit(
        &server,
        typed().part(
            "attachment",
            Part::bytes(random_bytes(150_000)).file_name("photo 1.jpg"),
        ),
        "en",
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let assert_refilled = |page: &str, lang: Lang| {
        assert!(page.contains(&html_escape(message)), "{page}");
        assert_eq!(input_value(page, "country"), "Nederland");
        assert_eq!(input_value(page, "city"), "Den Haag");
        assert_eq!(input_value(page, "when"), "last week");
        assert!(page.contains("value=\"threats_to_family\" selected"));
        assert!(page.contains(&html_escape(&lang.t("submit-refill-note"))));
        assert!(page.contains("name=\"form_key\""));
        assert!(page.contains("role=\"alert\""));
    };
    assert_refilled(&page, Lang::En);
    assert!(page.contains("“photo 1.jpg”"), "{page}");
    // Declared larger than allowed altogether (refused at the first file, before sealing it),
    // in Chinese: the same, with sizes in the page's units.
    let (status, page) = submit(
        &server,
        typed().part(
            "attachment",
            Part::bytes(random_bytes(400_000)).file_name("录音.m4a"),
        ),
        "zh-Hans",
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_refilled(&page, Lang::ZhHans);
    assert!(page.contains("文件“录音.m4a”"), "{page}");
    assert!(!page.contains("bytes"), "{page}");
    // A detail too long: 400, the form again.
    let (status, page) = submit(
        &server,
        Form::new()
            .text("message", message)
            .text("city", "x".repeat(201)),
        "en",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains(&html_escape(message)));
    assert_eq!(deployment.counts().await.tips, 0);
    // And what comes back can be sent as it is.
    let key = hidden(&page, "form_key");
    let (status, page) = submit(&server, keyed_form(&key, message), "en").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(deployment.counts().await.tips, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operators_words_are_on_every_page() {
    let deployment = Deployment::new(Backend::Sqlite, "[site]");
    let texts = deployment.path().join("texts");
    std::fs::create_dir_all(&texts).unwrap();
    std::fs::write(
        texts.join("zh-Hans.ftl"),
        "# 我们的话\nsite-name = 流亡者之声\nsite-emergency = 如被拘留，请拨打 +31 000 000 000。\n",
    )
    .unwrap();
    deployment.add_to_section(
        "site",
        &format!(
            "name = \"Exile Voices\"\norganisation = \"Run by Example Rights.\"\n\
             reply_time = \"We reply within a week.\"\n\
             emergency = \"If you are detained, call +31 000 000 000.\"\ntexts_dir = \"{}\"",
            texts.display()
        ),
    );
    deployment.add_reviewer("alice");
    let server = deployment.start();
    let public = &server.public;
    let (_, key) = fresh_form(public, "en").await;
    let (_, receipt_page) = submit(&server, keyed_form(&key, "hello"), "en").await;
    let receipt = receipt_from(&receipt_page);
    let session = source_sign_in(&server, &receipt).await;
    let mut pages = vec![("receipt".to_owned(), "en", receipt_page)];
    for lang in ["en", "zh-Hans"] {
        for path in ["/", "/submit", "/followup", "/nowhere", "/followup/case"] {
            let response = get(&format!("{public}{path}?lang={lang}"), Some(&session)).await;
            pages.push((path.to_owned(), lang, response.text().await.unwrap()));
        }
        let (_, refused) = submit(&server, Form::new().text("message", " "), lang).await;
        pages.push(("a refusal".to_owned(), lang, refused));
    }
    for (path, lang, page) in &pages {
        let (name, emergency) = match *lang {
            "zh-Hans" => ("流亡者之声", "如被拘留，请拨打 +31 000 000 000。"),
            _ => ("Exile Voices", "If you are detained, call +31 000 000 000."),
        };
        assert!(
            page.contains("class=\"site\"") && page.contains(&format!("· {name}</title>")),
            "{path} {lang}: {page}"
        );
        assert!(page.contains(emergency), "{path} {lang}");
        assert!(!page.contains("tipbox</title>"), "{path} {lang}");
    }
    // The landing page says who runs the line, in the section's words where no file has them.
    let landing = &pages
        .iter()
        .find(|(p, l, _)| p == "/" && *l == "zh-Hans")
        .unwrap()
        .2;
    assert!(landing.contains("Run by Example Rights."));
    assert!(landing.contains("We reply within a week."));
    assert!(landing.contains(&Lang::ZhHans.t("landing-about-title")));
    // The case page says what was received, never what it holds.
    let case = &pages
        .iter()
        .find(|(p, l, _)| p == "/followup/case" && *l == "en")
        .unwrap()
        .2;
    assert!(case.contains("id=\"received\""), "{case}");
    assert!(case.contains(&Lang::En.t("case-received-yes")));
    assert!(!case.contains("hello"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mistake_in_the_site_texts_refuses_the_start() {
    let deployment = Deployment::new(Backend::Sqlite, "[site]");
    let texts = deployment.path().join("texts");
    std::fs::create_dir_all(&texts).unwrap();
    std::fs::write(texts.join("en.ftl"), "site-emergncy = call us\n").unwrap();
    deployment.add_to_section("site", &format!("texts_dir = \"{}\"", texts.display()));
    deployment.add_reviewer("alice");
    let out = deployment
        .serve_command()
        .output()
        .expect("tipbox serve runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("en.ftl") && stderr.contains("unknown id `site-emergncy`"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_case_page_counts_each_send() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    deployment.add_reviewer("alice");
    let server = deployment.start();
    let (_, page) = submit(
        &server,
        crate::support::tip_form(
            "first",
            &[("a.pdf", random_bytes(3000)), ("b.jpg", random_bytes(5000))],
        ),
        "en",
    )
    .await;
    let receipt = receipt_from(&page);
    let session = source_sign_in(&server, &receipt).await;
    let case = case_page(&server, &session).await;
    let table = &case[case.find("id=\"received\"").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    assert_eq!(
        table.matches("<tr>").count(),
        2,
        "a header and one send: {table}"
    );
    assert!(table.contains("<td>2</td>"), "{table}");
    assert!(table.contains(" KB</td>"), "{table}");
}
