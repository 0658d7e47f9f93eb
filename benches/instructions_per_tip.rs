//! Instructions per tip: the CPU work of one text submission, counted, not timed — the
//! regression gate's measurement (`scripts/instruction-gate`, run by `.ci/run`).
//!
//! `scripts/instruction-gate` runs this under `valgrind --tool=callgrind`; alone
//! (`cargo bench --bench instructions_per_tip`) it only checks that every submission got its
//! receipt and prints the time it took.
//!
//! One process holds both sides. The server is the real one, as `tipbox serve` builds it
//! (`App::build`, `App::run`: the serve loop, every middleware layer, intake, the group-commit
//! writer and the maintenance tasks), on a fresh SQLite deployment (WAL, `synchronous=FULL`)
//! with **three x25519 reviewer keys**, budgets lifted as in the tests, logging as in
//! production (`info,sqlx=error`, to the deployment's log file). It runs on a current-thread
//! Tokio runtime (sealing still runs on Tokio's blocking threads and SQLite on sqlx's worker
//! thread, as in production). The client, on the same runtime, posts the `intake_throughput`
//! form (a 2 KiB English and Chinese message, the four facts, the empty file input) over one
//! keep-alive loopback connection, one submission at a time: each is then a group commit of
//! its own, so the work does not depend on timing.
//!
//! After `GATE_WARMUP` submissions (connections opened, statements prepared, pages cached),
//! `measurement_starts` is called, then `GATE_SUBMISSIONS` submissions, then
//! `measurement_ends`. Under callgrind, `--zero-before=*measurement_starts*` and
//! `--dump-before=*measurement_ends*` make the dump hold exactly the instructions of every
//! thread in between; divided by `GATE_SUBMISSIONS`, that is the figure the gate compares. The
//! client's own share (writing a prepared request, finding the receipt in the page) is in it,
//! and small.
//!
//! Tuning (environment):
//!   GATE_SUBMISSIONS=200      measured submissions
//!   GATE_WARMUP=20            before the measurement
//!   GATE_KEYS=3               x25519 reviewer keys
//!   GATE_MESSAGE_BYTES=2048
//!
//! Network: only the in-process server's loopback listeners.

// The integration tests' harness (deployments, reviewer keys); a benchmark uses a part of it.
#[allow(unused)]
#[path = "../tests/it/support/mod.rs"]
mod harness;
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use harness::{Backend, Deployment};
use support::load::{RECEIPT_MARKER, build_submit_request, exchange};
use support::settings::{env_u64, fail};
use tokio::net::{TcpListener, TcpStream};

/// How long one submission may take (under valgrind, about 50 times slower than natively).
const SUBMISSION_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the counted work begins: callgrind zeroes its counters when this is entered.
#[inline(never)]
fn measurement_starts(submissions: u64) {
    println!("measurement starts: {}", std::hint::black_box(submissions));
}

/// Where the counted work ends: callgrind dumps its counters when this is entered.
#[inline(never)]
fn measurement_ends(submissions: u64) {
    println!("measurement ends: {}", std::hint::black_box(submissions));
}

fn main() {
    let submissions = env_u64("GATE_SUBMISSIONS", 200).max(1);
    let warmup = env_u64("GATE_WARMUP", 20).max(1);
    let keys = env_u64("GATE_KEYS", 3).max(1);
    let message_bytes = env_u64("GATE_MESSAGE_BYTES", 2048).max(1) as usize;

    let deployment = Deployment::new(Backend::Sqlite, "");
    for i in 0..keys {
        deployment.add_reviewer(&format!("reviewer{i}"));
    }
    let (mut config, _) = tipbox::config::Config::load(Some(&deployment.config_path))
        .unwrap_or_else(|e| fail(&format!("the deployment's configuration: {e}")));
    // The harness re-reads the keyring every second, for its rotation tests; a deployment's
    // default is rarer. Every submission still checks the keyring's version itself.
    config.keys.refresh_seconds = tipbox::config::Config::default().keys.refresh_seconds;
    log_as_in_production(&deployment);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let measured = runtime.block_on(async move {
        let app = tipbox::app::App::build(config)
            .await
            .unwrap_or_else(|e| fail(&format!("building the server: {e:#}")));
        let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let analyst = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = public.local_addr().unwrap();
        assert!(addr.ip().is_loopback());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = app.run(public, analyst, async {
            let _ = stopped.await;
        });
        let client = async move {
            let measured = post_tips(addr, message_bytes, warmup, submissions).await;
            let _ = stop.send(());
            measured
        };
        let (served, measured) = tokio::join!(server, client);
        if let Err(e) = served {
            fail(&format!("the server failed: {e:#}"));
        }
        measured
    });
    let tips = runtime.block_on(deployment.counts()).tips;
    println!(
        "{submissions} submissions measured after {warmup} warm-up ones ({keys} x25519 keys, \
         {message_bytes} B message): {:.1} s, {:.2} ms each; {:.1} s in all; tips in the \
         database: {tips}",
        measured.as_secs_f64(),
        measured.as_secs_f64() * 1000.0 / submissions as f64,
        started.elapsed().as_secs_f64()
    );
    support::settings::require_every_receipt_stored(warmup + submissions, tips);
}

/// Posts `warmup` submissions, then `submissions` between the two markers, one at a time over
/// one keep-alive connection; every answer must be a receipt. The time of the measured ones.
async fn post_tips(
    addr: SocketAddr,
    message_bytes: usize,
    warmup: u64,
    submissions: u64,
) -> Duration {
    let request = build_submit_request(addr, message_bytes);
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("connect to the server");
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut post = async |n: u64| {
        let answer = tokio::time::timeout(
            SUBMISSION_TIMEOUT,
            exchange(&mut stream, &request, RECEIPT_MARKER, &mut buf),
        )
        .await
        .unwrap_or_else(|_| fail(&format!("submission {n} timed out")))
        .unwrap_or_else(|e| fail(&format!("submission {n} failed: {e}")));
        if answer.status != 200 || !answer.marker || answer.close {
            fail(&format!(
                "submission {n} answered {} without a receipt (or closed the connection): {}",
                answer.status,
                String::from_utf8_lossy(&buf[..buf.len().min(2000)])
            ));
        }
    };
    for n in 0..warmup {
        post(n).await;
    }
    measurement_starts(submissions);
    let started = Instant::now();
    for n in warmup..warmup + submissions {
        post(n).await;
    }
    let took = started.elapsed();
    measurement_ends(submissions);
    took
}

/// The server's log as `tipbox serve` writes it (`TIPBOX_LOG` unset: `info,sqlx=error`),
/// into the deployment's log file: the spans and events that cost something in production
/// cost the same here.
fn log_as_in_production(deployment: &Deployment) {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&deployment.log_path)
        .unwrap();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info,sqlx=error"))
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_target(false)
        .init();
}
