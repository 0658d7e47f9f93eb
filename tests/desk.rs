//! The analysts' pages over a real socket, as a browser without JavaScript uses them: sign-in
//! (CSRF-paired form, `__Host-` session cookie), the queue, a tip, triage, downloads, sign-out —
//! and every way in without a valid session or CSRF token refused.

mod common;

use common::web::*;
use common::*;
use reqwest::StatusCode;
use reqwest::header::LOCATION;

async fn desk_story(backend: Backend) {
    let deployment = Deployment::new(backend, "");
    let alice = deployment.add_reviewer("alice");
    let out = deployment.tipbox_ok(&["analyst", "add", "ana", "--json"]);
    let ana: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let secret = totp_rs::Secret::try_from_base32(ana["totp_secret"].as_str().unwrap())
        .unwrap()
        .as_bytes()
        .to_vec();
    let code = tipbox::auth::totp::totp(&secret, "x")
        .generate(tipbox::clock::now() as u64)
        .to_string();
    let server = deployment.start();
    let response = client()
        .post(format!("{}/submit", server.public))
        .multipart(
            reqwest::multipart::Form::new()
                .text("message", "a tip for the desk")
                .part(
                    "attachment",
                    reqwest::multipart::Part::bytes(b"evidence".to_vec()).file_name("e.txt"),
                ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let base = server.analyst.clone();

    // Without a session: pages send you to sign in, changes are refused.
    for path in ["/", "/queue", &format!("/tips/{}", "0".repeat(32))] {
        let response = get(&format!("{base}{path}"), None).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(response.headers()[LOCATION], "/login");
    }
    let refused = form(
        &format!("{base}/tips/{}/triage", "0".repeat(32)),
        None,
        &[
            ("csrf", "x"),
            ("status", "spam"),
            ("labels", ""),
            ("assignee", ""),
        ],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // Sign in: the form's token must match its cookie.
    let login_page = get(&format!("{base}/login"), None).await;
    let (login_cookie, _) = cookie_from(&login_page, "__Host-tipbox_login").unwrap();
    let csrf = hidden_csrf(&login_page.text().await.unwrap());
    assert_eq!(csrf, login_cookie);
    let password = ana["password"].as_str().unwrap();
    let unpaired = form(
        &format!("{base}/login"),
        None,
        &[
            ("csrf", &csrf),
            ("username", "ana"),
            ("password", password),
            ("totp", &code),
        ],
    )
    .await;
    assert_eq!(unpaired.status(), StatusCode::FORBIDDEN);
    let login_cookie_header = format!("__Host-tipbox_login={login_cookie}");
    let wrong = form(
        &format!("{base}/login"),
        Some(&login_cookie_header),
        &[
            ("csrf", &csrf),
            ("username", "ana"),
            ("password", "nope"),
            ("totp", &code),
        ],
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let signed_in = form(
        &format!("{base}/login"),
        Some(&login_cookie_header),
        &[
            ("csrf", &csrf),
            ("username", "ana"),
            ("password", password),
            ("totp", &code),
        ],
    )
    .await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_in.headers()[LOCATION], "/queue");
    let (session, attributes) = cookie_from(&signed_in, "__Host-tipbox_session").unwrap();
    for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(attributes.contains(attribute), "{attributes}");
    }
    let cookie = format!("__Host-tipbox_session={session}");

    // The queue and the tip.
    let queue = get(&format!("{base}/queue"), Some(&cookie)).await;
    assert_eq!(queue.status(), StatusCode::OK);
    let queue_html = queue.text().await.unwrap();
    let at = queue_html.find("href=\"/tips/").unwrap() + 12;
    let tip_id = queue_html[at..at + 32].to_owned();
    let tip_page = get(&format!("{base}/tips/{tip_id}"), Some(&cookie)).await;
    assert_eq!(tip_page.status(), StatusCode::OK);
    let tip_html = tip_page.text().await.unwrap();
    assert!(tip_html.contains("Sealed to key set") && tip_html.contains("attachment"));
    assert!(!tip_html.contains("<script"));
    let session_csrf = hidden_csrf(&tip_html);

    // Triage: missing or wrong CSRF refused, the right one applies.
    let triage_url = format!("{base}/tips/{tip_id}/triage");
    let fields = |csrf: &'static str| {
        vec![
            ("csrf", csrf),
            ("status", "verified"),
            ("labels", "family, threats"),
            ("assignee", "ana"),
        ]
    };
    assert_ne!(
        form(&triage_url, Some(&cookie), &fields("")[1..])
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        form(&triage_url, Some(&cookie), &fields("wrong-token"))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let good: Vec<(&str, &str)> = vec![
        ("csrf", &session_csrf),
        ("status", "verified"),
        ("labels", "family, threats"),
        ("assignee", "ana"),
    ];
    let applied = form(&triage_url, Some(&cookie), &good).await;
    assert_eq!(applied.status(), StatusCode::SEE_OTHER);
    let tip = deployment
        .store()
        .await
        .tip(&tip_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tip.status, "verified");
    assert_eq!(tip.labels, ["family", "threats"]);
    assert_eq!(tip.assignee.as_deref(), Some("ana"));

    // A note from the tip page is sealed: its text is nowhere in the database.
    let marker = format!("NOTE-MARKER-{}", tipbox::ids::random_id());
    let noted = form(
        &format!("{base}/tips/{tip_id}/notes"),
        Some(&cookie),
        &[("csrf", &session_csrf), ("text", &marker)],
    )
    .await;
    assert_eq!(noted.status(), StatusCode::SEE_OTHER);
    let tip = deployment
        .store()
        .await
        .tip(&tip_id)
        .await
        .unwrap()
        .unwrap();
    let note = tip
        .items
        .iter()
        .find(|i| i.kind == "note")
        .expect("a note item");
    let sealed_note = get(&format!("{base}/items/{}/sealed", note.id), Some(&cookie))
        .await
        .bytes()
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&decrypt(&alice, &sealed_note)).contains(&marker));
    if backend == Backend::Sqlite {
        for entry in std::fs::read_dir(deployment.data_dir()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(!bytes.windows(marker.len()).any(|w| w == marker.as_bytes()));
        }
    }

    // Downloads: one sealed item, and everything as one archive; both open with the key.
    let message_item = tip.items.iter().find(|i| i.kind == "message").unwrap();
    let sealed = get(
        &format!("{base}/items/{}/sealed", message_item.id),
        Some(&cookie),
    )
    .await
    .bytes()
    .await
    .unwrap();
    assert_eq!(decrypt(&alice, &sealed), b"a tip for the desk");
    let archive = get(&format!("{base}/tips/{tip_id}/archive"), Some(&cookie))
        .await
        .bytes()
        .await
        .unwrap();
    let mut entries = tar::Archive::new(archive.as_ref());
    let mut opened = 0;
    for entry in entries.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        if path.ends_with(".age") {
            decrypt(&alice, &data);
            opened += 1;
        } else {
            assert!(path.ends_with("manifest.json"));
        }
    }
    assert_eq!(opened, 4, "message, facts, attachment, note");

    // An expired session is refused.
    deployment
        .execute_sql("UPDATE sessions SET expires_at = 0")
        .await;
    assert_eq!(
        get(&format!("{base}/queue"), Some(&cookie)).await.status(),
        StatusCode::SEE_OTHER
    );

    // Sign in again and sign out: the session is gone server-side and the browser is told to
    // forget it.
    let login_page = get(&format!("{base}/login"), None).await;
    let (login_cookie, _) = cookie_from(&login_page, "__Host-tipbox_login").unwrap();
    let csrf = hidden_csrf(&login_page.text().await.unwrap());
    let next_code = tipbox::auth::totp::totp(&secret, "x")
        .generate(tipbox::clock::now() as u64 + 30)
        .to_string();
    let again = form(
        &format!("{base}/login"),
        Some(&format!("__Host-tipbox_login={login_cookie}")),
        &[
            ("csrf", &csrf),
            ("username", "ana"),
            ("password", password),
            ("totp", &next_code),
        ],
    )
    .await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    let (session, _) = cookie_from(&again, "__Host-tipbox_session").unwrap();
    let cookie = format!("__Host-tipbox_session={session}");
    let page = get(&format!("{base}/queue"), Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    let csrf = hidden_csrf(&page);
    assert_eq!(
        form(
            &format!("{base}/logout"),
            Some(&cookie),
            &[("csrf", "wrong")]
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );
    let out = form(&format!("{base}/logout"), Some(&cookie), &[("csrf", &csrf)]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(
        out.headers()["clear-site-data"]
            .to_str()
            .unwrap()
            .contains("cookies")
    );
    assert_eq!(
        get(&format!("{base}/queue"), Some(&cookie)).await.status(),
        StatusCode::SEE_OTHER
    );

    // None of this exists on the public listener.
    for path in ["/login", "/queue", &format!("/tips/{tip_id}")] {
        assert_eq!(
            get(&format!("{}{path}", server.public), None)
                .await
                .status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
}
on_both_backends!(analyst_pages, desk_story);
