//! How fast the review queue lists with 100,000 tips: the first page, deep pages (keyset
//! pagination), and each filter, on SQLite and PostgreSQL.
//!
//! `cargo bench --bench queue_listing` (env: BENCH_TIPS, default 100000; BENCH_BACKENDS,
//! default `sqlite,postgres`). Tips are written through the real group-commit path with small
//! stand-in sealed items (listing never opens them), then queried through `Store::list_tips`,
//! the function behind `GET /api/v1/tips` and `/queue`.

// The integration tests' harness (deployments, servers, PostgreSQL schemas); a benchmark uses
// a part of it.
#[allow(unused)]
#[path = "../tests/it/support/mod.rs"]
mod harness;

use std::time::{Duration, Instant};

use harness::{Backend, Deployment};
use tipbox::audit::{Audit, AuditAction, AuditKey};
use tipbox::clock::{coarsen, now};
use tipbox::ids::random_id;
use tipbox::store::{CommitQueue, NewItem, NewTip, QueueFilter, SealedBody, Store, TriageUpdate};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

async fn fill(store: &Store, key_set: i64, tips: usize) -> Duration {
    let started = Instant::now();
    let (queue, writer) = CommitQueue::start(store.clone());
    let now = now();
    let mut pending = Vec::new();
    for n in 0..tips {
        let tip = NewTip {
            id: random_id(),
            // Spread over the last ~11 weeks, hour by hour.
            received_at: coarsen(now - (n as i64 % 1900) * 3600, 3600),
            receipt_hash: random_id().into_bytes(),
            reply_recipient: "age1stand-in".to_owned(),
            // The listing never checks bindings.
            binding: Vec::new(),
            items: (0..2)
                .map(|position| NewItem {
                    id: random_id(),
                    position,
                    kind: if position == 0 { "message" } else { "facts" },
                    size: 300,
                    key_set_id: key_set,
                    body: SealedBody::Inline(vec![7u8; 300]),
                    commitment: [7u8; 32],
                })
                .collect(),
            form_key_hash: None,
        };
        let queue = queue.clone();
        pending.push(tokio::spawn(async move { queue.commit(tip).await }));
        if pending.len() >= 512 {
            for p in pending.drain(..) {
                p.await.unwrap().unwrap();
            }
        }
    }
    for p in pending {
        p.await.unwrap().unwrap();
    }
    drop(queue);
    writer.await.unwrap();
    started.elapsed()
}

async fn time_it(store: &Store, filter: &QueueFilter, runs: usize) -> (Duration, usize) {
    let mut times = Vec::with_capacity(runs);
    let mut found = 0;
    for _ in 0..runs {
        let started = Instant::now();
        found = store.list_tips(filter).await.unwrap().len();
        times.push(started.elapsed());
    }
    times.sort();
    (times[runs / 2], found)
}

async fn run(backend: Backend, tips: usize) {
    let deployment = Deployment::new(backend, "");
    deployment.add_reviewer("alice");
    deployment.tipbox_ok(&["analyst", "add", "ana", "--json"]);
    // Triage is audited: the store appends with the deployment's own audit key.
    let secret = tipbox::secrets::ServerSecret::load(&deployment.data_dir()).unwrap();
    let store = Store::connect(&deployment.database_url, 10)
        .await
        .unwrap()
        .with_audit_key(AuditKey::new(&secret), 3600);
    store.migrate().await.unwrap();
    let key_set = store.keyring_version().await.unwrap().key_set_id.unwrap();
    let filled = fill(&store, key_set, tips).await;
    println!(
        "{backend:?}: wrote {tips} tips in {:.1} s",
        filled.as_secs_f64()
    );

    // Some triage, so the filters have something to find: every 50th tip verified with a
    // label and an assignee.
    let ana = store.analyst_id("ana").await.unwrap().unwrap();
    let sample = store
        .list_tips(&QueueFilter {
            limit: tips as i64,
            ..Default::default()
        })
        .await
        .unwrap();
    for tip in sample.iter().step_by(50) {
        let update = TriageUpdate {
            status: Some("verified".into()),
            labels: Some(vec!["police-station".into()]),
            assignee_id: Some(Some(ana)),
        };
        let audit = Audit {
            at: tipbox::clock::now(),
            actor: "ana",
            action: AuditAction::TipUpdate,
            subject: &tip.id,
            detail: serde_json::json!({ "status": "verified" }),
        };
        store.update_tip(&tip.id, &update, &audit).await.unwrap();
    }

    let page = |filter: QueueFilter| QueueFilter {
        limit: 50,
        ..filter
    };
    let first = store
        .list_tips(&page(QueueFilter::default()))
        .await
        .unwrap();
    let mut deep_cursor = None;
    let mut cursor = first.last().map(|t| (t.received_at, t.id.clone()));
    for _ in 0..200 {
        let next = store
            .list_tips(&page(QueueFilter {
                before: cursor.clone(),
                ..Default::default()
            }))
            .await
            .unwrap();
        cursor = next.last().map(|t| (t.received_at, t.id.clone()));
        deep_cursor = cursor.clone();
    }
    let cases: Vec<(&str, QueueFilter)> = vec![
        (
            "first page (50, newest first)",
            page(QueueFilter::default()),
        ),
        (
            "page 200 (keyset cursor)",
            page(QueueFilter {
                before: deep_cursor,
                ..Default::default()
            }),
        ),
        (
            "status = verified",
            page(QueueFilter {
                status: Some("verified".into()),
                ..Default::default()
            }),
        ),
        (
            "status = new",
            page(QueueFilter {
                status: Some("new".into()),
                ..Default::default()
            }),
        ),
        (
            "label = police-station",
            page(QueueFilter {
                label: Some("police-station".into()),
                ..Default::default()
            }),
        ),
        (
            "assignee = ana",
            page(QueueFilter {
                assignee: Some("ana".into()),
                ..Default::default()
            }),
        ),
        (
            "unassigned",
            page(QueueFilter {
                assignee: Some(String::new()),
                ..Default::default()
            }),
        ),
        (
            "not yet pulled by ana",
            page(QueueFilter {
                unpulled_by: Some(ana),
                ..Default::default()
            }),
        ),
    ];
    println!("| backend | query | tips returned | median ms (21 runs) |");
    println!("|---|---|---|---|");
    for (name, filter) in cases {
        let (median, found) = time_it(&store, &filter, 21).await;
        println!(
            "| {backend:?} | {name} | {found} | {:.2} |",
            median.as_secs_f64() * 1000.0
        );
    }
    store.close().await;
}

fn main() {
    let tips: usize = env_or("BENCH_TIPS", "100000").parse().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for backend in env_or("BENCH_BACKENDS", "sqlite,postgres").split(',') {
        let backend = match backend.trim() {
            "sqlite" => Backend::Sqlite,
            "postgres" => Backend::Postgres,
            other => panic!("unknown backend {other}"),
        };
        runtime.block_on(run(backend, tips));
    }
}
