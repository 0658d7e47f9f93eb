//! Retention: old tips are deleted exactly as the policy says — by `tipbox retention run` and
//! on `serve`'s schedule — with everything of them, an audit entry per run that deleted
//! something, and no trace of their sealed bytes left at rest.

use std::time::{Duration, Instant};

use crate::support::at_rest::assert_not_stored;
use crate::support::{
    Backend, Deployment, now, on_both_backends, random_bytes, submit_ok, tip_form,
};

const DAY: i64 = 24 * 3600;

/// Four tips under the policy "closed or spam after 30 days, all after 365", given their age
/// and status directly in the database: `ids[0]` closed, 40 days old; `ids[1]` new, 40 days;
/// `ids[2]` spam, 10 days; `ids[3]` new, 400 days, with a photo — and a piece of that photo's
/// sealed bytes, to look for after it is deleted.
struct Aged {
    deployment: Deployment,
    ids: [String; 4],
    sealed_photo_piece: Vec<u8>,
}

async fn aged(backend: Backend) -> Aged {
    let deployment = Deployment::new(
        backend,
        "[retention]\nclosed_after_days = 30\nall_after_days = 365\n",
    );
    deployment.add_reviewer("alice");
    let server = deployment.start();
    for (message, attachments) in [
        ("closed, 40 days old", vec![]),
        ("new, 40 days old", vec![]),
        ("spam, 10 days old", vec![]),
        (
            "new, 400 days old",
            vec![("photo.jpg", random_bytes(200_000))],
        ),
    ] {
        submit_ok(&server, tip_form(message, &attachments)).await;
    }
    server.stop();

    let store = deployment.store().await;
    let mut with_photo = None;
    let mut others = Vec::new();
    for id in deployment.tip_ids().await {
        let tip = store.tip(&id).await.unwrap().unwrap();
        match tip.items.iter().find(|i| i.kind == "attachment") {
            Some(item) => with_photo = Some((id, item.id.clone())),
            None => others.push(id),
        }
    }
    let (oldest, photo_item) = with_photo.unwrap();
    let [a, b, c] = <[String; 3]>::try_from(others).unwrap();
    let ids = [a, b, c, oldest];
    let plan = [("closed", 40), ("new", 40), ("spam", 10), ("new", 400)];
    for (id, (status, days)) in ids.iter().zip(plan) {
        deployment
            .execute_sql(format!(
                "UPDATE tips SET status = '{status}', received_at = {} WHERE id = '{id}'",
                now() - days * DAY
            ))
            .await;
    }
    let chunk = store.item_chunk(&photo_item, 0).await.unwrap().unwrap();
    store.close().await;
    Aged {
        deployment,
        ids,
        sealed_photo_piece: chunk[1000..1064].to_vec(),
    }
}

async fn retention_deletions(deployment: &Deployment) -> usize {
    deployment
        .audit_entries()
        .await
        .iter()
        .filter(|e| e.action == "retention.delete")
        .count()
}

/// `tipbox retention run` deletes the closed tip past 30 days and the one past a year, with
/// their items and ciphertext; a second run finds nothing. The run is audited, once.
async fn retention_run_deletes_what_the_policy_says(backend: Backend) {
    let tips = aged(backend).await;
    let deployment = &tips.deployment;
    let out = deployment.tipbox_ok(&["retention", "run"]);
    assert!(out.contains("deleted 2 tips"), "{out}");
    let mut kept = vec![tips.ids[1].clone(), tips.ids[2].clone()];
    kept.sort();
    assert_eq!(deployment.tip_ids().await, kept);
    let counts = deployment.counts().await;
    // Only the two kept tips' reports remain, with their ciphertext.
    assert_eq!((counts.tips, counts.items, counts.chunks), (2, 2, 2));
    let out = deployment.tipbox_ok(&["retention", "run"]);
    assert!(out.contains("deleted 0 tips"), "{out}");
    assert_eq!(retention_deletions(deployment).await, 1);
    deployment.tipbox_ok(&["audit", "verify"]);
}

/// Once deleted, the oldest tip's sealed photo is nowhere: not in the SQLite database, its WAL
/// or shared memory (pages overwritten, WAL truncated), not in any value PostgreSQL holds.
async fn a_deleted_tip_leaves_no_sealed_bytes_at_rest(backend: Backend) {
    let tips = aged(backend).await;
    tips.deployment.tipbox_ok(&["retention", "run"]);
    assert_not_stored(&tips.deployment, &[&tips.sealed_photo_piece]).await;
}

/// serve applies the policy when it starts: the tip that was new at 40 days ages past a year.
async fn serve_applies_the_policy_on_its_schedule(backend: Backend) {
    let tips = aged(backend).await;
    let deployment = &tips.deployment;
    deployment
        .execute_sql(format!(
            "UPDATE tips SET received_at = {} WHERE id = '{}'",
            now() - 366 * DAY,
            tips.ids[1]
        ))
        .await;
    let server = deployment.start();
    let deadline = Instant::now() + Duration::from_secs(20);
    while deployment.tip_ids().await.len() != 1 {
        assert!(Instant::now() < deadline, "serve did not apply the policy");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(deployment.tip_ids().await, vec![tips.ids[2].clone()]);
    server.stop();
    assert_eq!(retention_deletions(deployment).await, 1);
}

on_both_backends!(
    retention_run_deletes_what_the_policy_says,
    a_deleted_tip_leaves_no_sealed_bytes_at_rest,
    serve_applies_the_policy_on_its_schedule,
);

#[test]
fn without_a_policy_nothing_is_deleted() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    let out = deployment.tipbox_ok(&["retention", "run"]);
    assert!(out.contains("no retention policy"), "{out}");
}
