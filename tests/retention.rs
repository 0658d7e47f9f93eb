//! Retention: old tips are deleted exactly as the policy says — by `tipbox retention run` and
//! on `serve`'s schedule — with everything of them, an audit entry, and (SQLite) no trace of
//! their sealed bytes left in the database files.

mod common;

use common::*;
use reqwest::multipart::{Form, Part};
use tipbox::store::QueueFilter;

const DAY: i64 = 24 * 3600;

async fn submit(server: &Server, message: &str, attachment: Option<Vec<u8>>) {
    let mut form = Form::new().text("message", message.to_owned());
    if let Some(bytes) = attachment {
        form = form.part("attachment", Part::bytes(bytes).file_name("photo.jpg"));
    }
    let response = client()
        .post(format!("{}/submit", server.public))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
}

async fn tip_ids(deployment: &Deployment) -> Vec<String> {
    let store = deployment.store().await;
    let mut ids: Vec<String> = store
        .list_tips(&QueueFilter {
            limit: 100,
            ..QueueFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    store.close().await;
    ids.sort();
    ids
}

async fn retention(backend: Backend) {
    let deployment = Deployment::new(
        backend,
        "[retention]\nclosed_after_days = 30\nall_after_days = 365\n",
    );
    deployment.add_reviewer("alice");
    let server = deployment.start();
    let mut photo = vec![0u8; 200_000];
    getrandom::fill(&mut photo).unwrap();
    for (message, attachment) in [
        ("closed, 40 days old", None),
        ("new, 40 days old", None),
        ("spam, 10 days old", None),
        ("new, 400 days old", Some(photo)),
    ] {
        submit(&server, message, attachment).await;
    }
    server.stop();

    // Give each tip its age and status, directly in the database. The one with the photo is
    // the oldest.
    let store = deployment.store().await;
    let mut with_photo = None;
    let mut others = Vec::new();
    for id in tip_ids(&deployment).await {
        let tip = store.tip(&id).await.unwrap().unwrap();
        match tip.items.iter().find(|i| i.kind == "attachment") {
            Some(item) => with_photo = Some((id, item.id.clone())),
            None => others.push(id),
        }
    }
    let (oldest, photo_item) = with_photo.unwrap();
    assert_eq!(others.len(), 3);
    let ids = [
        others[0].clone(),
        others[1].clone(),
        others[2].clone(),
        oldest,
    ];
    let now = tipbox::clock::now();
    let plan = [
        (&ids[0], "closed", 40),
        (&ids[1], "new", 40),
        (&ids[2], "spam", 10),
        (&ids[3], "new", 400),
    ];
    for (id, status, days) in plan {
        deployment
            .execute_owned_sql(format!(
                "UPDATE tips SET status = '{status}', received_at = {} WHERE id = '{id}'",
                now - days * DAY
            ))
            .await;
    }
    // A piece of the oldest tip's sealed photo, to look for afterwards.
    let chunk = store.item_chunk(&photo_item, 0).await.unwrap().unwrap();
    let needle = chunk[1000..1064].to_vec();
    store.close().await;

    // By hand.
    let out = deployment.tipbox_ok(&["retention", "run"]);
    assert!(out.contains("deleted 2 tips"), "{out}");
    let mut kept = vec![ids[1].clone(), ids[2].clone()];
    kept.sort();
    assert_eq!(tip_ids(&deployment).await, kept);
    let counts = deployment.counts().await;
    assert_eq!(counts.tips, 2);
    // Only the two kept tips' message and facts remain, with their ciphertext.
    assert_eq!((counts.items, counts.chunks), (4, 4));
    // The audit chain is intact, with the run in it.
    deployment.tipbox_ok(&["audit", "verify"]);
    let out = deployment.tipbox_ok(&["retention", "run"]);
    assert!(out.contains("deleted 0 tips"), "{out}");

    if backend == Backend::Sqlite {
        for name in ["tipbox.db", "tipbox.db-wal", "tipbox.db-shm"] {
            let path = deployment.data_dir().join(name);
            if let Ok(bytes) = std::fs::read(&path) {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                    "{name} still holds sealed bytes of a deleted tip"
                );
            }
        }
    }

    // On serve's schedule (it applies the policy when it starts): the new tip ages past a year.
    deployment
        .execute_owned_sql(format!(
            "UPDATE tips SET received_at = {} WHERE id = '{}'",
            now - 366 * DAY,
            ids[1]
        ))
        .await;
    let server = deployment.start();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while tip_ids(&deployment).await.len() != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not apply the policy"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(tip_ids(&deployment).await, vec![ids[2].clone()]);
    server.stop();
    let store = deployment.store().await;
    let entries = store.audit_entries().await.unwrap();
    let deletions: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "retention.delete")
        .collect();
    assert_eq!(
        deletions.len(),
        2,
        "one entry per run that deleted something"
    );
    store.close().await;
}
on_both_backends!(old_tips_are_deleted_as_the_policy_says, retention);

#[test]
fn without_a_policy_nothing_is_deleted() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    let out = deployment.tipbox_ok(&["retention", "run"]);
    assert!(out.contains("no retention policy"), "{out}");
}
