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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A request that takes longer than this is counted as timed out and its connection dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// A hard cap on requests per connection and run, on top of the time bound.
const MAX_REQUESTS_PER_CONNECTION: u64 = 1_000_000;
const RECEIPT_MARKER: &[u8] = b"id=\"receipt\"";
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
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * (self.latencies_us.len() - 1) as f64).round() as usize;
        self.latencies_us[rank] as f64 / 1000.0
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
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1) as f64;
        (self.machine_busy * cores
            - (self.server_cpu + self.postgres_cpu + self.client_cpu) / self.seconds)
            .max(0.0)
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
    let request = Arc::new(if settings.form_only {
        format!("GET /submit?lang=en HTTP/1.1\r\nHost: {addr}\r\nAccept-Language: en\r\n\r\n")
            .into_bytes()
    } else {
        build_request(addr, settings.message_bytes)
    });
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

/// The whole HTTP request: headers and a multipart body as Tor Browser would send the form.
fn build_request(addr: SocketAddr, message_bytes: usize) -> Vec<u8> {
    let mut suffix = [0u8; 12];
    getrandom::fill(&mut suffix).unwrap();
    let boundary = format!("----tipboxbench{}", hex::encode(suffix));
    let mut message = String::with_capacity(message_bytes + 64);
    let sentence = "They came to my parents' home in Fujian and said I must stop speaking out. \
                    我的家人在国内被警察威胁，要求我回国。";
    while message.len() < message_bytes {
        message.push_str(sentence);
        message.push(' ');
    }
    let mut cut = message_bytes.min(message.len());
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    message.truncate(cut);
    while message.len() < message_bytes {
        message.push('.');
    }
    let mut body = Vec::new();
    for (name, value) in [
        ("message", message.as_str()),
        ("incident_type", "threats_to_family"),
        ("country", "Netherlands"),
        ("city", "Rotterdam"),
        ("when", "March 2026"),
    ] {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    // An empty file input: browsers send a nameless, empty part.
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n\r\n--{boundary}--\r\n"
        )
        .as_bytes(),
    );
    let mut request = format!(
        "POST /submit?lang=en HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: {}\r\nAccept-Language: en\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    request
}

#[derive(Default)]
struct ConnStats {
    connections_opened: u64,
    receipts_in_window: u64,
    answered_total: u64,
    latencies_us: Vec<u32>,
    other: BTreeMap<String, u64>,
}

impl ConnStats {
    fn other(&mut self, what: String) {
        *self.other.entry(what).or_default() += 1;
    }
}

struct Answer {
    status: u16,
    receipt: bool,
    close: bool,
}

async fn drive(
    addr: SocketAddr,
    request: Arc<Vec<u8>>,
    marker: &'static [u8],
    concurrency: usize,
    settings: &Settings,
    server_pid: u32,
    backend: Backend,
) -> Report {
    // One submission first: a setup problem shows here with the server's page, not as a
    // run of errors.
    {
        let mut stream = TcpStream::connect(addr)
            .await
            .expect("connect to the server");
        let mut buf = Vec::new();
        let answer = tokio::time::timeout(
            REQUEST_TIMEOUT,
            exchange(&mut stream, &request, marker, &mut buf),
        )
        .await
        .expect("first request timed out")
        .expect("first request failed");
        assert!(
            answer.status == 200 && answer.receipt,
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
        let sample = || {
            (
                process_cpu_seconds(server_pid),
                if with_postgres {
                    cpu_seconds_of_all("postgres")
                } else {
                    0.0
                },
                process_cpu_seconds(std::process::id()),
                machine_cpu(),
            )
        };
        tokio::time::sleep_until(measure_from.into()).await;
        let before = sample();
        let measured_from = Instant::now();
        tokio::time::sleep_until(until.into()).await;
        let after = sample();
        let measured = measured_from.elapsed().as_secs_f64();
        (
            after.0 - before.0,
            after.1 - before.1,
            after.2 - before.2,
            machine_busy(before.3, after.3),
            measured,
        )
    });
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            tokio::spawn(connection(
                addr,
                Arc::clone(&request),
                marker,
                measure_from,
                until,
            ))
        })
        .collect();
    let mut total = ConnStats::default();
    for task in tasks {
        let stats = task.await.expect("client task");
        total.connections_opened += stats.connections_opened;
        total.receipts_in_window += stats.receipts_in_window;
        total.answered_total += stats.answered_total;
        total.latencies_us.extend(stats.latencies_us);
        for (k, v) in stats.other {
            *total.other.entry(k).or_default() += v;
        }
    }
    let (server_cpu, postgres_cpu, client_cpu, busy, _measured) = sampler.await.unwrap();
    total.latencies_us.sort_unstable();
    Report {
        concurrency,
        seconds: settings.seconds as f64,
        receipts: total.receipts_in_window,
        latencies_us: total.latencies_us,
        other: total.other,
        server_cpu,
        postgres_cpu,
        client_cpu,
        machine_busy: busy,
        // +1: the first submission above.
        answered_total: total.answered_total + 1,
        tips_in_database: 0,
        connections_opened: total.connections_opened,
        form_only: false,
    }
}

/// One keep-alive connection posting the form back to back until `until`.
async fn connection(
    addr: SocketAddr,
    request: Arc<Vec<u8>>,
    marker: &'static [u8],
    measure_from: Instant,
    until: Instant,
) -> ConnStats {
    let mut stats = ConnStats::default();
    let mut stream: Option<TcpStream> = None;
    let mut buf = Vec::with_capacity(16 * 1024);
    for _ in 0..MAX_REQUESTS_PER_CONNECTION {
        if Instant::now() >= until {
            break;
        }
        let conn = match stream.as_mut() {
            Some(conn) => conn,
            None => {
                match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await {
                    Ok(Ok(conn)) => {
                        stats.connections_opened += 1;
                        let _ = conn.set_nodelay(true);
                        stream.insert(conn)
                    }
                    _ => {
                        stats.other("connect error".to_owned());
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                }
            }
        };
        let sent = Instant::now();
        let outcome =
            tokio::time::timeout(REQUEST_TIMEOUT, exchange(conn, &request, marker, &mut buf)).await;
        let done = Instant::now();
        let in_window = done >= measure_from && done <= until;
        match outcome {
            Ok(Ok(answer)) => {
                if answer.status == 200 && answer.receipt {
                    stats.answered_total += 1;
                    if in_window {
                        stats.receipts_in_window += 1;
                        let us = (done - sent).as_micros().min(u32::MAX as u128) as u32;
                        stats.latencies_us.push(us);
                    }
                } else if in_window {
                    stats.other(format!("HTTP {}", answer.status));
                }
                if answer.close {
                    stream = None;
                }
            }
            Ok(Err(error)) => {
                if in_window {
                    stats.other(format!("io error ({})", error.kind()));
                }
                stream = None;
            }
            Err(_) => {
                if in_window {
                    stats.other("timeout".to_owned());
                }
                stream = None;
            }
        }
    }
    stats
}

/// Writes the request and reads one answer into `buf`.
async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    marker: &[u8],
    buf: &mut Vec<u8>,
) -> std::io::Result<Answer> {
    use std::io::{Error, ErrorKind};
    stream.write_all(request).await?;
    buf.clear();
    let head_end = loop {
        if let Some(at) = find(buf, b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() > 64 * 1024 {
            return Err(Error::new(ErrorKind::InvalidData, "response head too long"));
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(Error::new(
                ErrorKind::UnexpectedEof,
                "closed before the answer",
            ));
        }
    };
    let head = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| Error::new(ErrorKind::InvalidData, "response head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::new(ErrorKind::InvalidData, "no status"))?;
    let mut length = None;
    let mut chunked = false;
    let mut close = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    if let Some(length) = length {
        while buf.len() < head_end + length {
            if stream.read_buf(buf).await? == 0 {
                return Err(Error::new(ErrorKind::UnexpectedEof, "closed in the body"));
            }
        }
    } else if chunked {
        while !buf[head_end..].ends_with(b"0\r\n\r\n") {
            if stream.read_buf(buf).await? == 0 {
                return Err(Error::new(ErrorKind::UnexpectedEof, "closed in the body"));
            }
        }
    } else {
        // Read to the end of the connection.
        while stream.read_buf(buf).await? > 0 {}
        close = true;
    }
    let receipt = find(&buf[head_end..], marker).is_some();
    Ok(Answer {
        status,
        receipt,
        close,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
