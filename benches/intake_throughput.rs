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

// The integration tests' harness (deployments, servers, PostgreSQL schemas); a benchmark uses
// a part of it.
#[allow(unused)]
#[path = "../tests/it/support/mod.rs"]
mod harness;
mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::{Backend, Deployment};
use support::{deployment::*, load::*, proc::*, settings::*};

/// What a good answer holds in `BENCH_MODE=form`: the message field of the form.
const FORM_MARKER: &[u8] = b"name=\"message\"";

struct Settings {
    load: LoadSettings,
    form_only: bool,
}

fn main() {
    let settings = Settings {
        load: LoadSettings::from_env(),
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

    print_preamble("intake_throughput");
    println!(
        "settings: {}{}",
        if settings.form_only {
            "GET /submit (form page only, nothing stored); "
        } else {
            ""
        },
        settings.load.describe()
    );

    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for backend_name in &backends {
        let backend = backend_named(backend_name);
        if backend == Backend::Postgres {
            require_postgres();
        }
        for &concurrency in &levels {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run(backend, concurrency, &settings)
            }));
            match outcome {
                Ok(report) => {
                    println!("{backend_name:<8} {}", report.line());
                    rows.push(report.row(backend_name));
                    if !report.form_only && report.tips_in_database as u64 != report.answered_total
                    {
                        failures.push(format!(
                            "{backend_name} c={concurrency}: tips in the database ({}) ≠ receipts \
                             received ({})",
                            report.tips_in_database, report.answered_total
                        ));
                    }
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
                    failures.push(format!("{backend_name} c={concurrency}: {first}"));
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
    if !failures.is_empty() {
        fail(&failures.join("; "));
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

    /// p50, p90, p99 and the slowest, in ms.
    fn latency_ms(&self) -> [f64; 4] {
        [50.0, 90.0, 99.0, 100.0].map(|p| percentile_ms(&self.latencies_us, p))
    }

    fn other_text(&self) -> String {
        tally(&self.other)
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
        let [p50, p90, p99, max] = self.latency_ms();
        format!(
            "c={:<4} {:>8.1} tips/s  p50 {p50:.1} ms  p90 {p90:.1} ms  p99 {p99:.1} ms  \
             max {max:.1} ms  receipts {}  other answers: {}  server CPU {:.2} cores \
             ({:.2} ms/tip){}  client CPU {:.2} cores  machine busy {:.0}% (other load {:.2} \
             cores)  connections opened {}  ({})",
            self.concurrency,
            self.rate(),
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
        let [p50, p90, p99, max] = self.latency_ms();
        format!(
            "| {backend} | {} | {:.0} | {p50:.1} | {p90:.1} | {p99:.1} | {max:.1} | {} | {} | {:.2}{} | {:.2} | {:.0}% | {:.2} |",
            self.concurrency,
            self.rate(),
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
    let deployment = Deployment::new(backend, &settings.load.extra_toml);
    for i in 0..settings.load.keys {
        add_reviewer(&deployment, &format!("reviewer{i}"));
    }
    let server = RunningServer::start(&deployment, &settings.load.log);
    let addr = server.public_addr();
    let request = if settings.form_only {
        format!("GET /submit?lang=en HTTP/1.1\r\nHost: {addr}\r\nAccept-Language: en\r\n\r\n")
            .into_bytes()
    } else {
        build_submit_request(addr, settings.load.message_bytes)
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
    setup_request(addr, &request, 200, marker, "the first request").await;
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(settings.load.warmup);
    let until = measure_from + Duration::from_secs(settings.load.seconds);
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
        seconds: settings.load.seconds as f64,
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
