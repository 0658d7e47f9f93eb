//! Bulk changes, for clearing a junk wave: mark spam, close and delete over a selection, through
//! the API and through the desk (a confirmation page, then the change) — each tip changed with
//! its own audit entry, deleted tips gone with everything of them, and no more than 2000 ids at
//! once. Who may do what is in authz.rs.

use reqwest::header::LOCATION;
use reqwest::{Method, StatusCode};

use crate::support::analyst::{
    Analyst, add_analyst, api_call, review, review_login, review_ok, sealed_item, token,
};
use crate::support::at_rest::assert_not_stored;
use crate::support::web::{desk_sign_in, form, get, hidden_csrf, hidden_values, post_receipt};
use crate::support::{
    Backend, Deployment, Server, now, on_both_backends, random_bytes, submit_form_tip, submit_tip,
    tip_form,
};

/// A junk wave that got through: two junk tips (the first with a photo) and a real one, the
/// analyst ana and the admin ada, each with an API token.
struct Wave {
    deployment: Deployment,
    server: Server,
    ana: Analyst,
    ana_token: String,
    ada: Analyst,
    ada_token: String,
    junk: [String; 2],
    real: String,
    /// The first junk tip's receipt.
    junk_receipt: String,
}

async fn wave(backend: Backend) -> Wave {
    let deployment = Deployment::new(backend, "");
    deployment.add_reviewer("alice");
    let ana = add_analyst(&deployment, "ana", "analyst");
    let ada = add_analyst(&deployment, "ada", "admin");
    let server = deployment.start();
    let photo = tip_form("junk, with a photo", &[("x.jpg", random_bytes(100_000))]);
    let (junk_receipt, first) = submit_form_tip(&deployment, &server, photo).await;
    let (_, second) = submit_tip(&deployment, &server, "more junk").await;
    let (_, real) = submit_tip(&deployment, &server, "a real tip").await;
    let ana_token = token(&server, &ana, 0).await;
    let ada_token = token(&server, &ada, 0).await;
    Wave {
        deployment,
        server,
        ana,
        ana_token,
        ada,
        ada_token,
        junk: [first, second],
        real,
        junk_receipt,
    }
}

impl Wave {
    /// `POST /api/v1/tips/bulk` with `token`: the status and the answer.
    async fn bulk(
        &self,
        token: &str,
        action: &str,
        ids: &[&str],
    ) -> (StatusCode, serde_json::Value) {
        let body = serde_json::json!({ "action": action, "ids": ids });
        api_call(
            &self.server,
            token,
            Method::POST,
            "/api/v1/tips/bulk",
            Some(body),
        )
        .await
    }

    async fn status(&self, id: &str) -> String {
        let store = self.deployment.store().await;
        let tip = store.tip(id).await.unwrap().expect("the tip");
        store.close().await;
        tip.status
    }

    /// The audit trail's entries of `action`: (actor, subject, detail, at).
    async fn entries(&self, action: &str) -> Vec<(String, String, String, i64)> {
        let entries = self.deployment.audit_entries().await;
        entries
            .into_iter()
            .filter(|e| e.action == action)
            .map(|e| (e.actor, e.subject, e.detail, e.at))
            .collect()
    }
}

/// An id of no tip.
const NO_TIP: &str = "00000000000000000000000000000000";

/// ana marks the two junk tips as spam through the API, with an id of no tip among them: those
/// two change, each with its own `tip.update` entry (dated to the hour, like received times),
/// the missing id is reported, and the real tip is untouched.
async fn marking_spam_changes_the_tips_named_each_on_record(backend: Backend) {
    let wave = wave(backend).await;
    let [first, second] = &wave.junk;
    let (status, answer) = wave
        .bulk(&wave.ana_token, "spam", &[first, NO_TIP, second, first])
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer,
        serde_json::json!({ "action": "spam", "changed": 2, "missing": [NO_TIP], "unchanged": [] })
    );
    assert_eq!(wave.status(first).await, "spam");
    assert_eq!(wave.status(second).await, "spam");
    assert_eq!(wave.status(&wave.real).await, "new");
    let mut entries = wave.entries("tip.update").await;
    entries.sort();
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort();
    assert_eq!(
        entries.iter().map(|e| e.1.clone()).collect::<Vec<_>>(),
        expected
    );
    for (actor, _, detail, at) in &entries {
        assert_eq!(actor, "ana");
        let detail: serde_json::Value = serde_json::from_str(detail).unwrap();
        assert_eq!(
            detail,
            serde_json::json!({ "bulk": true, "status": "spam" })
        );
        assert_eq!(at % 3600, 0, "dated like a received time");
        assert!(now() - at < 3600);
    }
    wave.deployment.tipbox_ok(&["audit", "verify"]);
}

/// Closing tips already closed changes nothing and writes no entry; closing spam tips closes
/// them.
async fn closing_reports_the_tips_already_closed(backend: Backend) {
    let wave = wave(backend).await;
    let [first, second] = &wave.junk;
    let (status, _) = wave.bulk(&wave.ana_token, "spam", &[first]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = wave.bulk(&wave.ana_token, "close", &[first, second]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["changed"], 2);
    let (status, answer) = wave
        .bulk(&wave.ana_token, "close", &[second, &wave.real])
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer,
        serde_json::json!({ "action": "close", "changed": 1, "missing": [], "unchanged": [second] })
    );
    for id in [first, second, &wave.real] {
        assert_eq!(wave.status(id).await, "closed");
    }
    // spam, close, close, close: one entry per tip changed.
    assert_eq!(wave.entries("tip.update").await.len(), 4);
}

/// ada deletes the junk: each tip goes with its items, their ciphertext, its note, its reply,
/// its labels and the record of who pulled it, each tip with a `tip.delete` entry; the photo's
/// sealed bytes are nowhere at rest, and the source's receipt finds nothing. The real tip stays
/// whole.
async fn deleting_takes_the_tips_and_everything_of_them(backend: Backend) {
    let wave = wave(backend).await;
    let [first, second] = &wave.junk;
    let on_first = |what: &str| format!("/api/v1/tips/{first}{what}");
    for (method, what, body, answer) in [
        (
            Method::POST,
            "/notes",
            serde_json::json!({ "text": "junk" }),
            StatusCode::CREATED,
        ),
        (
            Method::POST,
            "/replies",
            serde_json::json!({ "text": "no" }),
            StatusCode::CREATED,
        ),
        (
            Method::PATCH,
            "",
            serde_json::json!({ "labels": ["junk"] }),
            StatusCode::OK,
        ),
    ] {
        let (status, _) = api_call(
            &wave.server,
            &wave.ana_token,
            method,
            &on_first(what),
            Some(body),
        )
        .await;
        assert_eq!(status, answer, "{what}");
    }
    let store = wave.deployment.store().await;
    let tip = store.tip(first).await.unwrap().unwrap();
    let photo = tip.items.iter().find(|i| i.kind == "attachment").unwrap();
    let sealed = store.item_chunk(&photo.id, 0).await.unwrap().unwrap();
    store.close().await;
    // Pulled by ana: a row in item_pulls.
    assert_eq!(
        sealed_item(&wave.server, &wave.ana_token, &photo.id)
            .await
            .len() as i64,
        photo.size
    );

    let (status, answer) = wave.bulk(&wave.ada_token, "delete", &[first, second]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["changed"], 2);
    assert_eq!(
        wave.deployment.tip_ids().await,
        std::slice::from_ref(&wave.real)
    );
    let counts = wave.deployment.counts().await;
    // The real tip's report (message and facts), and its ciphertext.
    assert_eq!((counts.tips, counts.items, counts.chunks), (1, 1, 1));
    for table in ["replies", "tip_labels", "item_pulls"] {
        let rows: Vec<i64> = wave
            .deployment
            .query_column(&format!("SELECT COUNT(*) FROM {table}"))
            .await;
        assert_eq!(rows, [0], "{table}");
    }
    let mut deleted: Vec<String> = wave
        .entries("tip.delete")
        .await
        .into_iter()
        .map(|(actor, subject, _, _)| {
            assert_eq!(actor, "ada");
            subject
        })
        .collect();
    deleted.sort();
    let mut junk = wave.junk.to_vec();
    junk.sort();
    assert_eq!(deleted, junk);
    wave.deployment.tipbox_ok(&["audit", "verify"]);
    assert_not_stored(&wave.deployment, &[&sealed[1000..1064]]).await;
    let receipt = post_receipt(&wave.server, &wave.junk_receipt, "en").await;
    assert_eq!(receipt.status(), StatusCode::UNAUTHORIZED);
}

/// More than 2000 ids are refused with the API's JSON error, changing nothing; 2000 are taken.
async fn more_than_2000_ids_are_refused(backend: Backend) {
    let wave = wave(backend).await;
    let mut ids: Vec<String> = (1..=2000).map(|n| format!("{n:032x}")).collect();
    ids[0] = wave.junk[0].clone();
    let before = wave.deployment.stored().await;
    let mut too_many: Vec<&str> = ids.iter().map(String::as_str).collect();
    too_many.push(NO_TIP);
    let (status, answer) = wave.bulk(&wave.ada_token, "delete", &too_many).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("2000"),
        "{answer}"
    );
    assert_eq!(wave.deployment.stored().await, before);

    let (status, answer) = wave.bulk(&wave.ada_token, "spam", &too_many[..2000]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["changed"], 1);
    assert_eq!(answer["missing"].as_array().unwrap().len(), 1999);
    assert_eq!(wave.status(&wave.junk[0]).await, "spam");
}

/// Malformed requests are refused and change nothing: no ids, an id that is not a tip id, an
/// unknown action or field.
async fn malformed_bulk_requests_are_refused(backend: Backend) {
    let wave = wave(backend).await;
    let before = wave.deployment.stored().await;
    let first = wave.junk[0].as_str();
    for body in [
        serde_json::json!({ "action": "spam", "ids": [] }),
        serde_json::json!({ "action": "spam", "ids": [first, "NOT-A-TIP"] }),
        serde_json::json!({ "action": "spam", "ids": [first.to_uppercase()] }),
        serde_json::json!({ "action": "burn", "ids": [first] }),
        serde_json::json!({ "action": "spam", "ids": [first], "also": 1 }),
        serde_json::json!({ "ids": [first] }),
    ] {
        let (status, answer) = api_call(
            &wave.server,
            &wave.ana_token,
            Method::POST,
            "/api/v1/tips/bulk",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(answer["error"].is_string(), "{body}: {answer}");
    }
    assert_eq!(wave.deployment.stored().await, before);
}

/// On the desk: ana ticks the junk tips, gets a page that names the action, the count and the
/// tips — having changed nothing — and confirms; back on the queue, with the same filter, the
/// page says what was done.
async fn the_desk_confirms_before_it_changes_anything(backend: Backend) {
    let wave = wave(backend).await;
    let (cookie, _) = desk_sign_in(&wave.server, &wave.ana, 1).await;
    let url = |path: &str| format!("{}{path}", wave.server.analyst);
    let queue = get(&url("/queue?status=new"), Some(&cookie)).await;
    let queue = queue.text().await.unwrap();
    for id in wave.junk.iter().chain([&wave.real]) {
        assert!(
            queue.contains(&format!("name=\"tip\" value=\"{id}\"")),
            "a box for each tip"
        );
    }
    assert!(!queue.contains("value=\"delete\""), "only admins delete");
    assert!(!queue.contains("<script"));
    let csrf = hidden_csrf(&queue);
    let [first, second] = &wave.junk;
    let before = wave.deployment.stored().await;
    let review = form(
        &url("/tips/bulk"),
        Some(&cookie),
        &[
            ("csrf", &csrf),
            ("status", "new"),
            ("tip", first),
            ("tip", second),
            ("action", "spam"),
        ],
    )
    .await;
    assert_eq!(review.status(), StatusCode::OK);
    let page = review.text().await.unwrap();
    assert!(page.contains("Mark 2 tips as spam?"), "{page}");
    let mut listed = hidden_values(&page, "tip");
    listed.sort();
    let mut junk = wave.junk.to_vec();
    junk.sort();
    assert_eq!(listed, junk);
    assert_eq!(
        wave.deployment.stored().await,
        before,
        "nothing changed yet"
    );

    let mut fields = vec![("csrf", hidden_csrf(&page))];
    for name in ["action", "status", "tip"] {
        fields.extend(hidden_values(&page, name).into_iter().map(|v| (name, v)));
    }
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let done = form(&url("/tips/bulk/confirm"), Some(&cookie), &fields).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let back = done.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(back.starts_with("/queue?status=new&"), "{back}");
    let queue = get(&url(&back), Some(&cookie)).await.text().await.unwrap();
    assert!(queue.contains("2 tips marked as spam."), "{queue}");
    assert_eq!(wave.status(first).await, "spam");
    assert_eq!(wave.status(second).await, "spam");
    assert_eq!(wave.status(&wave.real).await, "new");
    assert_eq!(wave.entries("tip.update").await.len(), 2);
}

/// "Every tip that matches the current filter" selects on every page, by the filter — and the
/// confirmation then applies to the tips it listed, not to one that arrived meanwhile. ada
/// deletes that way.
async fn the_desk_selects_all_that_match_the_filter(backend: Backend) {
    let wave = wave(backend).await;
    let (cookie, _) = desk_sign_in(&wave.server, &wave.ada, 1).await;
    let url = |path: &str| format!("{}{path}", wave.server.analyst);
    let (status, _) = wave
        .bulk(&wave.ada_token, "close", &[wave.real.as_str()])
        .await;
    assert_eq!(status, StatusCode::OK);
    let queue = get(&url("/queue"), Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(queue.contains("value=\"delete\""), "admins may delete");
    let review = form(
        &url("/tips/bulk"),
        Some(&cookie),
        &[
            ("csrf", &hidden_csrf(&queue)),
            ("status", "new"),
            ("all_matching", "1"),
            ("action", "delete"),
        ],
    )
    .await;
    assert_eq!(review.status(), StatusCode::OK);
    let page = review.text().await.unwrap();
    assert!(page.contains("Delete 2 tips?"), "{page}");
    assert!(page.contains("cannot be undone"), "{page}");
    let mut listed = hidden_values(&page, "tip");
    listed.sort();
    let mut junk = wave.junk.to_vec();
    junk.sort();
    assert_eq!(listed, junk);

    let (_, late) = submit_tip(&wave.deployment, &wave.server, "arrived meanwhile").await;
    let mut fields = vec![
        ("csrf", hidden_csrf(&page)),
        ("action", "delete".to_owned()),
        ("status", "new".to_owned()),
    ];
    fields.extend(listed.into_iter().map(|id| ("tip", id)));
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let done = form(&url("/tips/bulk/confirm"), Some(&cookie), &fields).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let back = done.headers()[LOCATION].to_str().unwrap().to_owned();
    let queue = get(&url(&back), Some(&cookie)).await.text().await.unwrap();
    assert!(queue.contains("2 tips deleted."), "{queue}");
    let mut kept = vec![wave.real.clone(), late];
    kept.sort();
    assert_eq!(wave.deployment.tip_ids().await, kept);
    assert_eq!(wave.entries("tip.delete").await.len(), 2);
}

/// `tipbox review bulk`, on the analyst's own machine: by id, each id's fate printed; deleting
/// needs `--yes`, and then an admin. (The server's side is the API's, on both backends above.)
#[tokio::test(flavor = "multi_thread")]
async fn the_review_client_applies_bulk_changes() {
    let wave = wave(Backend::Sqlite).await;
    let dir = wave.deployment.path().join("ana-config");
    review_login(&dir, &wave.server, &wave.ana, 1);
    let [first, second] = &wave.junk;
    let ids = ["--id", first, "--id", second, "--id", NO_TIP];
    let out = review_ok(&dir, &[&["bulk", "close"], &ids[..]].concat(), "");
    assert!(out.contains("2 tips closed"), "{out}");
    assert!(out.contains(&format!("no such tip: {NO_TIP}")), "{out}");
    assert_eq!(wave.status(first).await, "closed");

    let unconfirmed = review(&dir, &["bulk", "delete", "--id", first], "");
    assert!(!unconfirmed.status.success());
    assert!(String::from_utf8_lossy(&unconfirmed.stderr).contains("--yes"));
    let not_admin = review(&dir, &["bulk", "delete", "--id", first, "--yes"], "");
    assert!(!not_admin.status.success());
    let said = String::from_utf8_lossy(&not_admin.stderr);
    assert!(said.contains("403") && said.contains("admins"), "{said}");
    assert_eq!(wave.deployment.tip_ids().await.len(), 3);
}

on_both_backends!(
    marking_spam_changes_the_tips_named_each_on_record,
    closing_reports_the_tips_already_closed,
    deleting_takes_the_tips_and_everything_of_them,
    more_than_2000_ids_are_refused,
    malformed_bulk_requests_are_refused,
    the_desk_confirms_before_it_changes_anything,
    the_desk_selects_all_that_match_the_filter,
);
