//! Upload memory: the server's resident memory while a 1 GiB attachment streams in.
//!
//! `cargo bench --bench upload_memory`
//!
//! A SQLite deployment with one x25519 reviewer key and the limits raised to 1.2 GB (so a
//! 1 GiB file is allowed) is started on 127.0.0.1. After one small warm-up tip, the server's
//! VmRSS/VmHWM are read from /proc/PID/status and its peak is reset (clear_refs 5); then a
//! multipart form with a short message and a 1 GiB attachment is posted through reqwest, the
//! attachment generated on the fly in 256 KiB pieces (a stream: it is never held whole, on
//! either side). VmRSS is sampled every 50 ms during the upload. The answer must be 200 with a
//! receipt. Reported: peak growth over the baseline (target: under 64 MiB), time, throughput.
//!
//! Tuning (environment):
//!   BENCH_UPLOAD_MIB=1024     attachment size in MiB
//!   BENCH_PIECE_KIB=256       size of each generated piece
//!   BENCH_BACKEND=sqlite      or `postgres` (the harness's, on 127.0.0.1:5432)
//!   BENCH_SERVER_LOG=info     the server's TIPBOX_LOG; `harness` = the test harness's start()
//!   BENCH_TIPBOX=             serve (and add the key) with another build of the binary
//!   BENCH_KEEP_LOGS=DIR       copy the server log there
//!
//! Network: only the server's loopback listener. The sampler stops when the upload ends, or
//! after UPLOAD_TIMEOUT at the latest.

// The integration tests' harness (deployments, servers, PostgreSQL schemas); a benchmark uses
// a part of it.
#[allow(unused)]
#[path = "../tests/it/support/mod.rs"]
mod harness;
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use harness::{Backend, Deployment, Header, decrypt, receipt_from, stored_item};
use reqwest::multipart::{Form, Part};
use support::{deployment::*, proc::*, settings::*};

const UPLOAD_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const SAMPLE_EVERY: Duration = Duration::from_millis(50);
const TARGET_GROWTH_MIB: f64 = 64.0;

fn main() {
    let upload_mib = env_u64("BENCH_UPLOAD_MIB", 1024).max(1);
    let piece_kib = env_u64("BENCH_PIECE_KIB", 256).max(1);
    let log = server_log();
    let backend_name = std::env::var("BENCH_BACKEND").unwrap_or_else(|_| "sqlite".to_owned());
    let backend = backend_named(&backend_name);
    if backend == Backend::Postgres {
        require_postgres();
    }
    let total_bytes = upload_mib * 1024 * 1024;
    let piece_bytes = piece_kib * 1024;
    // At least 1.1 GiB, and room for the requested upload.
    let limit = (total_bytes + total_bytes / 8).max(1_200_000_000);

    print_preamble("upload_memory");
    println!(
        "settings: {backend_name}; {upload_mib} MiB attachment in {piece_kib} KiB pieces; limits {limit} B; \
         server TIPBOX_LOG={log}; RSS sampled every {} ms",
        SAMPLE_EVERY.as_millis()
    );

    let deployment = Deployment::new(
        backend,
        &format!("[limits]\nmax_attachment_bytes = {limit}\nmax_total_bytes = {limit}\n"),
    );
    let alice = add_reviewer(&deployment, "alice");
    let server = RunningServer::start(&deployment, &log);
    let pid = server.pid();
    let url = format!("{}/submit?lang=en", server.public_url());
    assert!(server.public_addr().ip().is_loopback());

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    harness::install_tls_provider();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(UPLOAD_TIMEOUT)
        .build()
        .unwrap();

    // Warm-up: one small tip with a small attachment, so one-time allocations (database
    // connections, templates, the key set) are in the baseline.
    runtime.block_on(async {
        let form = Form::new().text("message", "warm-up").part(
            "attachment",
            Part::bytes(vec![7u8; 4096]).file_name("w.bin"),
        );
        let response = client.post(&url).multipart(form).send().await.unwrap();
        assert_eq!(response.status(), 200, "warm-up submission");
    });
    std::thread::sleep(Duration::from_millis(500));

    let rss_before = status_kib(pid, "VmRSS").expect("VmRSS of the server");
    let hwm_before = status_kib(pid, "VmHWM").expect("VmHWM of the server");
    let peak_reset = reset_peak_rss(pid);
    let cpu_before = process_cpu_seconds(pid);
    println!(
        "before: VmRSS {:.1} MiB, VmHWM {:.1} MiB (since start){}",
        mib(rss_before),
        mib(hwm_before),
        if peak_reset {
            "; VmHWM reset to VmRSS"
        } else {
            "; could not reset VmHWM (it keeps the start-up peak)"
        }
    );

    // The sampler: a thread reading /proc/PID/status every 50 ms until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let peak_rss = Arc::new(AtomicU64::new(rss_before));
    let sampler = {
        let stop = Arc::clone(&stop);
        let peak_rss = Arc::clone(&peak_rss);
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut samples = 0u64;
            let mut timeline = Vec::new();
            while !stop.load(Ordering::Relaxed) && started.elapsed() < UPLOAD_TIMEOUT {
                if let Some(rss) = status_kib(pid, "VmRSS") {
                    peak_rss.fetch_max(rss, Ordering::Relaxed);
                    samples += 1;
                    if samples % 20 == 1 {
                        timeline.push((started.elapsed().as_secs_f64(), rss));
                    }
                }
                std::thread::sleep(SAMPLE_EVERY);
            }
            (samples, timeline)
        })
    };

    let started = Instant::now();
    let (status, page) = runtime.block_on(async {
        let piece = {
            let mut bytes = vec![0u8; piece_bytes as usize];
            getrandom::fill(&mut bytes).unwrap();
            axum::body::Bytes::from(bytes)
        };
        let pieces = total_bytes.div_ceil(piece_bytes);
        let stream = futures_util::stream::iter((0..pieces).map(move |i| {
            let left = total_bytes - i * piece_bytes;
            // Each piece shares one random buffer (cloning `Bytes` copies nothing): the client
            // costs next to nothing and the server still sees incompressible data.
            Ok::<_, std::io::Error>(piece.slice(..left.min(piece_bytes) as usize))
        }));
        let attachment = Part::stream_with_length(reqwest::Body::wrap_stream(stream), total_bytes)
            .file_name("recording.bin")
            .mime_str("application/octet-stream")
            .unwrap();
        let form = Form::new()
            .text("message", "A 1 GiB recording is attached.")
            .part("attachment", attachment);
        let response = client
            .post(&url)
            .multipart(form)
            .send()
            .await
            .expect("the server answers the upload");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    });
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (samples, timeline) = sampler.join().unwrap();
    let cpu = process_cpu_seconds(pid) - cpu_before;
    let rss_after = status_kib(pid, "VmRSS").unwrap_or(0);
    let hwm_after = status_kib(pid, "VmHWM").unwrap_or(0);
    let peak_sampled = peak_rss.load(Ordering::Relaxed);

    let receipt_ok = status == 200 && page.contains("id=\"receipt\"");
    let receipt_words = if receipt_ok {
        receipt_from(&page).split(' ').count()
    } else {
        0
    };
    let counts = runtime.block_on(deployment.counts());
    let stored = receipt_ok.then(|| runtime.block_on(stored_attachment(&deployment, &alice)));
    let db_bytes = file_size(&deployment.data_dir().join("tipbox.db"))
        + file_size(&deployment.data_dir().join("tipbox.db-wal"));
    drop(server);
    if let Ok(dir) = std::env::var("BENCH_KEEP_LOGS") {
        let _ = std::fs::create_dir_all(&dir);
        let name = format!("server-upload-{backend_name}.log");
        let _ = std::fs::copy(&deployment.log_path, std::path::Path::new(&dir).join(name));
    }

    let growth_sampled = mib(peak_sampled.saturating_sub(rss_before));
    let growth_hwm = if peak_reset {
        mib(hwm_after.saturating_sub(rss_before))
    } else {
        f64::NAN
    };
    let growth = growth_sampled.max(if growth_hwm.is_nan() { 0.0 } else { growth_hwm });
    println!(
        "RSS timeline (s, MiB): {}",
        timeline
            .iter()
            .map(|(t, kib)| format!("{t:.0}:{:.0}", mib(*kib)))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "answer: HTTP {status}, receipt {} ({receipt_words} words); stored: {} tips, {} items, {} chunks; SQLite files {:.0} MiB",
        if receipt_ok { "shown" } else { "MISSING" },
        counts.tips,
        counts.items,
        counts.chunks,
        db_bytes as f64 / (1024.0 * 1024.0)
    );
    println!(
        "after: VmRSS {:.1} MiB, VmHWM {:.1} MiB; peak sampled VmRSS {:.1} MiB ({samples} samples)",
        mib(rss_after),
        mib(hwm_after),
        mib(peak_sampled)
    );
    println!(
        "RESULT: {upload_mib} MiB in {elapsed:.1} s = {:.1} MB/s ({:.1} MiB/s); server CPU {cpu:.1} s ({:.2} cores); \
         peak RSS growth {growth:.1} MiB (sampled {growth_sampled:.1}, VmHWM {growth_hwm:.1}); target < {TARGET_GROWTH_MIB} MiB: {}",
        total_bytes as f64 / 1e6 / elapsed,
        upload_mib as f64 / elapsed,
        cpu / elapsed,
        if growth < TARGET_GROWTH_MIB {
            "met"
        } else {
            "NOT MET"
        }
    );
    assert!(
        receipt_ok,
        "the upload was not accepted: HTTP {status}: {}",
        &page[..page.len().min(2000)]
    );
    let stored = stored.expect("looked up after a receipt");
    let expected_sealed = stored.header_bytes + sealed_payload_bytes(total_bytes);
    println!(
        "stored attachment: {} B declared in the sealed facts (sent {total_bytes}); {} B of \
         ciphertext in {} chunks, recorded size {} B, expected {expected_sealed} B",
        stored.declared, stored.chunk_bytes, stored.chunks, stored.recorded
    );
    if stored.declared != total_bytes
        || stored.chunk_bytes != expected_sealed
        || stored.recorded != expected_sealed
    {
        fail("the stored attachment is not the whole upload");
    }
}

/// The 1 GiB attachment as stored: the size its sealed facts declare, the size recorded for
/// the item, and its ciphertext (the chunks' total, and the age header's length).
struct StoredAttachment {
    declared: u64,
    recorded: u64,
    chunk_bytes: u64,
    chunks: u64,
    header_bytes: u64,
}

async fn stored_attachment(
    deployment: &Deployment,
    identity: &age::x25519::Identity,
) -> StoredAttachment {
    let store = deployment.store().await;
    let items = store.list_items().await.unwrap();
    let attachment = items
        .iter()
        .filter(|i| i.kind == "attachment")
        .max_by_key(|i| i.size)
        .expect("an attachment is stored");
    let facts = items
        .iter()
        .find(|i| tipbox::report::carries_facts(&i.kind) && i.tip_id == attachment.tip_id)
        .expect("the tip's report");
    let facts: serde_json::Value = serde_json::from_slice(&decrypt(
        identity,
        &stored_item(&store, &facts.item_id).await,
    ))
    .expect("the facts are JSON");
    let declared = facts["attachments"][0]["size"]
        .as_u64()
        .expect("the attachment's size in the facts");
    // Chunk by chunk: the ciphertext is never held whole.
    let (mut chunk_bytes, mut chunks, mut header_bytes) = (0u64, 0u64, 0u64);
    while let Some(chunk) = store
        .item_chunk(&attachment.item_id, chunks as i64)
        .await
        .unwrap()
    {
        if chunks == 0 {
            header_bytes = Header::parse(&chunk).expect("an age header").len() as u64;
        }
        chunk_bytes += chunk.len() as u64;
        chunks += 1;
    }
    store.close().await;
    StoredAttachment {
        declared,
        recorded: attachment.size as u64,
        chunk_bytes,
        chunks,
        header_bytes,
    }
}

/// The size of an age payload for `plaintext` bytes: a 16-byte nonce, then the plaintext in
/// chunks of 64 KiB, each with a 16-byte tag (age v1's STREAM; the last chunk may be short,
/// never empty unless the plaintext is).
fn sealed_payload_bytes(plaintext: u64) -> u64 {
    const CHUNK: u64 = 64 * 1024;
    16 + plaintext + 16 * plaintext.div_ceil(CHUNK).max(1)
}
