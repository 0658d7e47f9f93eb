//! Intake throughput: text tips per second through the real `tipbox serve`, end to end.
//!
//! `cargo bench --bench intake_throughput`
//!
//! For each backend and each client concurrency, a fresh deployment (three x25519 reviewer
//! keys, default limits, durable SQLite — WAL, `synchronous=FULL` — or PostgreSQL) is started
//! on 127.0.0.1, and N keep-alive connections each post the same pre-built multipart form (a
//! 2 KiB message plus the short facts fields and the empty file input a browser sends) back to
//! back, for a warm-up and then a measured window. Only `200` answers whose page holds
//! `id="receipt"` count; each is a tip committed durably before it was answered.
//!
//! The client is deliberately cheap, so that the figure is the server's: the whole HTTP request
//! (headers and body) is built once and written raw over each connection, the answer is parsed
//! just enough to find its status, length and the receipt, and every connection runs on one
//! current-thread Tokio runtime (one core at most, in practice a few per cent of one).
//!
//! Tuning (environment):
//!   BENCH_SECONDS=10          measured window per run
//!   BENCH_WARMUP_SECONDS=2    warm-up before it (not counted)
//!   BENCH_CONCURRENCY=32,64,128
//!   BENCH_BACKENDS=sqlite,postgres
//!   BENCH_KEYS=3              reviewer keys (x25519)
//!   BENCH_MESSAGE_BYTES=2048
//!   BENCH_SERVER_LOG=info     the server's TIPBOX_LOG; `harness` = the test harness's start()
//!                             (TIPBOX_LOG=debug, stderr copied through this process)
//!   BENCH_EXTRA_TOML=         appended to the deployment's tipbox.toml (use \n for newlines)
//!   BENCH_KEEP_LOGS=DIR       copy each run's server log there (e.g. with
//!                             BENCH_SERVER_LOG=info,sqlx=debug for every statement's timing)
//!   BENCH_MODE=submit         `form`: GET /submit instead (the empty form page: the HTTP path
//!                             alone, without sealing or committing), for comparison
//!   BENCH_TIPBOX=             serve (and add the keys) with another build of the binary
//!
//! Network: only the server's loopback listener and the harness's PostgreSQL on 127.0.0.1.
//! Every loop ends at the window's end (and after at most MAX_REQUESTS_PER_CONNECTION).

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Backend, Deployment};
use support::*;

/// What a good answer holds in `BENCH_MODE=form`: the message field of the form.
const FORM_MARKER: &[u8] = b"name=\"message\"";

struct Settings {
    seconds: u64,
    warmup: u64,
    keys: u64,
    message_bytes: usize,
    log: String,
    extra_toml: String,
    form_only: bool,
}

fn main() {
    let settings = Settings {
        seconds: env_u64("BENCH_SECONDS", 10).max(1),
        warmup: env_u64("BENCH_WARMUP_SECONDS", 2),
        keys: env_u64("BENCH_KEYS", 3).max(1),
        message_bytes: env_u64("BENCH_MESSAGE_BYTES", 2048).max(1) as usize,
        log: std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "info".to_owned()),
        extra_toml: std::env::var("BENCH_EXTRA_TOML")
            .unwrap_or_default()
            .replace("\\n", "\n"),
        form_only: match std::env::var("BENCH_MODE").as_deref() {
            Ok("form") => true,
            Ok("submit") | Err(_) => false,
            Ok(other) => panic!("BENCH_MODE={other:?}: submit or form"),
        },
    };
    let levels: Vec<usize> = env_list("BENCH_CONCURRENCY", "32,64,128")
        .iter()
        .map(|c| {
            c.parse()
                .expect("BENCH_CONCURRENCY: numbers, comma separated")
        })
        .collect();
    let backends = env_list("BENCH_BACKENDS", "sqlite,postgres");

    println!(
        "intake_throughput: tipbox = {}{}",
        common::TIPBOX,
        std::env::var("BENCH_TIPBOX")
            .map(|b| format!(" (serving with BENCH_TIPBOX={b})"))
            .unwrap_or_default()
    );
    println!("machine: {}", describe_machine());
    println!(
        "settings: {}{} s measured after {} s warm-up; {} x25519 reviewer keys; {} B message; server TIPBOX_LOG={}{}",
        if settings.form_only {
            "GET /submit (form page only, nothing stored); "
        } else {
            ""
        },
        settings.seconds,
        settings.warmup,
        settings.keys,
        settings.message_bytes,
        settings.log,
        if settings.extra_toml.is_empty() {
            String::new()
        } else {
            format!("; extra config {:?}", settings.extra_toml)
        }
    );

    let mut rows = Vec::new();
    for backend_name in &backends {
        let backend = backend_named(backend_name);
        if backend == Backend::Postgres
            && let Err(why) = postgres_reachable()
        {
            println!("{backend_name}: skipped: {why}");
            rows.push(format!("| {backend_name} | – | skipped: {why} |"));
            continue;
        }
        for &concurrency in &levels {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run(backend, concurrency, &settings)
            }));
            match outcome {
                Ok(report) => {
                    println!("{backend_name:<8} {}", report.line());
                    rows.push(report.row(backend_name));
                }
                Err(panic) => {
                    let why = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "panicked".to_owned());
                    println!("{backend_name:<8} c={concurrency}: FAILED: {why}");
                    let first = why.lines().next().unwrap_or_default();
                    rows.push(format!(
                        "| {backend_name} | {concurrency} | FAILED: {first} |"
                    ));
                }
            }
        }
    }
    println!();
    println!(
        "| backend | clients | tips/s | p50 ms | p90 ms | p99 ms | max ms | receipts | other answers | server CPU (cores) | server CPU ms/tip | machine busy | other load (cores) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
}

struct Report {
    concurrency: usize,
    seconds: f64,
    receipts: u64,
    latencies_us: Vec<u32>,
    other: BTreeMap<String, u64>,
    server_cpu: f64,
    postgres_cpu: f64,
    client_cpu: f64,
    machine_busy: f64,
    answered_total: u64,
    tips_in_database: i64,
    connections_opened: u64,
    form_only: bool,
}

impl Report {
    fn rate(&self) -> f64 {
        self.receipts as f64 / self.seconds
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        percentile_ms(&self.latencies_us, p)
    }

    fn other_text(&self) -> String {
        if self.other.is_empty() {
            "none".to_owned()
        } else {
            self.other
                .iter()
                .map(|(k, v)| format!("{k}×{v}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    }

    fn server_ms_per_tip(&self) -> f64 {
        if self.receipts == 0 {
            f64::NAN
        } else {
            self.server_cpu * 1000.0 / self.receipts as f64
        }
    }

    /// Cores kept busy by everything but the server, PostgreSQL and this client.
    fn other_load(&self) -> f64 {
        Usage {
            server_cpu: self.server_cpu,
            server_faults: 0,
            postgres_cpu: self.postgres_cpu,
            client_cpu: self.client_cpu,
            machine_busy: self.machine_busy,
            seconds: self.seconds,
        }
        .other_load()
    }

    fn line(&self) -> String {
        let secs = self.seconds;
        format!(
            "c={:<4} {:>8.1} tips/s  p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms  \
             receipts {}  other answers: {}  server CPU {:.2} cores ({:.2} ms/tip){}  \
             client CPU {:.2} cores  machine busy {:.0}% (other load {:.2} cores)  \
             connections opened {}  ({})",
            self.concurrency,
            self.rate(),
            self.percentile_ms(50.0),
            self.percentile_ms(90.0),
            self.percentile_ms(99.0),
            self.percentile_ms(100.0),
            self.receipts,
            self.other_text(),
            self.server_cpu / secs,
            self.server_ms_per_tip(),
            if self.postgres_cpu > 0.0 {
                format!("  postgres CPU {:.2} cores", self.postgres_cpu / secs)
            } else {
                String::new()
            },
            self.client_cpu / secs,
            self.machine_busy * 100.0,
            self.other_load(),
            self.connections_opened,
            if self.form_only {
                "form page only: nothing stored".to_owned()
            } else {
                format!(
                    "tips in database {} = receipts incl. warm-up {}: {}",
                    self.tips_in_database,
                    self.answered_total,
                    if self.tips_in_database as u64 == self.answered_total {
                        "ok"
                    } else {
                        "MISMATCH"
                    }
                )
            }
        )
    }

    fn row(&self, backend: &str) -> String {
        format!(
            "| {backend} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {:.2}{} | {:.2} | {:.0}% | {:.2} |",
            self.concurrency,
            self.rate(),
            self.percentile_ms(50.0),
            self.percentile_ms(90.0),
            self.percentile_ms(99.0),
            self.percentile_ms(100.0),
            self.receipts,
            self.other_text(),
            self.server_cpu / self.seconds,
            if self.postgres_cpu > 0.0 {
                format!(" (+{:.2} postgres)", self.postgres_cpu / self.seconds)
            } else {
                String::new()
            },
            self.server_ms_per_tip(),
            self.machine_busy * 100.0,
            self.other_load()
        )
    }
}

fn run(backend: Backend, concurrency: usize, settings: &Settings) -> Report {
    let deployment = Deployment::new(backend, &settings.extra_toml);
    for i in 0..settings.keys {
        add_reviewer(&deployment, &format!("reviewer{i}"));
    }
    let server = RunningServer::start(&deployment, &settings.log);
    let addr = server.public_addr();
    let request = if settings.form_only {
        format!("GET /submit?lang=en HTTP/1.1\r\nHost: {addr}\r\nAccept-Language: en\r\n\r\n")
            .into_bytes()
    } else {
        build_submit_request(addr, settings.message_bytes)
    };
    let marker: &'static [u8] = if settings.form_only {
        FORM_MARKER
    } else {
        RECEIPT_MARKER
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut report = runtime.block_on(drive(
        addr,
        request,
        marker,
        concurrency,
        settings,
        server.pid(),
        backend,
    ));
    report.tips_in_database = runtime.block_on(deployment.counts()).tips;
    report.form_only = settings.form_only;
    drop(server);
    if let Ok(dir) = std::env::var("BENCH_KEEP_LOGS") {
        let name = format!("server-{:?}-c{concurrency}.log", backend).to_lowercase();
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::copy(&deployment.log_path, Path::new(&dir).join(name));
    }
    report
}

async fn drive(
    addr: SocketAddr,
    request: Vec<u8>,
    marker: &'static [u8],
    concurrency: usize,
    settings: &Settings,
    server_pid: u32,
    backend: Backend,
) -> Report {
    // One submission first: a setup problem shows here with the server's page, not as a
    // run of errors.
    {
        let (answer, buf, _) = one_request(addr, &request, marker).await;
        assert!(
            answer.status == 200 && answer.marker,
            "first request answered {}: {}",
            answer.status,
            String::from_utf8_lossy(&buf[..buf.len().min(2000)])
        );
    }
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(settings.warmup);
    let until = measure_from + Duration::from_secs(settings.seconds);
    let with_postgres = backend == Backend::Postgres;
    let sampler = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        let before = UsageSample::now(server_pid, with_postgres);
        tokio::time::sleep_until(until.into()).await;
        before.until(&UsageSample::now(server_pid, with_postgres))
    });
    let load = Arc::new(Load {
        addr,
        requests: vec![request],
        good_status: 200,
        marker,
        measure_from,
        until,
        give_up_at: None,
    });
    let total = run_connections(load, concurrency).await;
    let usage = sampler.await.unwrap();
    Report {
        concurrency,
        seconds: settings.seconds as f64,
        receipts: total.good_in_window,
        latencies_us: total.latencies_us,
        other: total.other,
        server_cpu: usage.server_cpu,
        postgres_cpu: usage.postgres_cpu,
        client_cpu: usage.client_cpu,
        machine_busy: usage.machine_busy,
        // +1: the first submission above.
        answered_total: total.good_total + 1,
        tips_in_database: 0,
        connections_opened: total.connections_opened,
        form_only: false,
    }
}
