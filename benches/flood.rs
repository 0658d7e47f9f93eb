//! Flood: do genuine sources still get their receipt while 990 Tor circuits flood the tip line?
//!
//! `cargo bench --bench flood`
//!
//! The goal (the issue's words): "Loopback, client_address = "tor-circuit", connections carrying
//! PROXY headers for 1,000 distinct circuits: 990 flood at ten times the server's measured
//! capacity with a mix of junk (submissions, receipt sign-ins, malformed bodies, slow bodies,
//! idle connections); meanwhile a genuine source arrives every 0.5 s for 60 s, each on a
//! circuit of its own (as Tor Browser gives each visit), fetches the form and submits one tip
//! with a 100 KB attachment. Report the share of genuine submissions that got a receipt (goal
//! ≥ 99%), their p50/p99 latency (goal p99 < 2 s), the server's peak RSS (goal < 256 MiB), how
//! many junk tips were accepted, and that it stayed up. Report the same run with
//! client_address = "none" beside it."
//!
//! Every deployment is SQLite with three x25519 reviewer keys and default limits. The flood's
//! deployments run with the **shipped** request budgets and capacity limits: the benchmark writes
//! every `[rate_limits]` key itself, with the values of `RateLimits::default()` (the test
//! harness would otherwise lift each key it is not given), and refuses to run if any came out
//! lifted.
//!
//! 1. **Capacity.** On a deployment of the same kind (`client_address = "tor-circuit"`) with the
//!    budgets and capacity limits lifted (as the harness does for tests), 128 keep-alive
//!    connections on 128 distinct circuits send requests back to back (closed loop) for a
//!    warm-up second and `BENCH_CAPACITY_SECONDS`: page loads (`GET /submit`) alone, small valid
//!    submissions alone, and the flood's rate-paced mix (below). "Capacity" is the answers per
//!    second of that mix: what this server, on this machine, with the load generator beside it,
//!    answers when it serves everything it is sent. It is not a promise about any other mix.
//! 2. **Flood**, per mode (`BENCH_MODES`): open loop, paced at `BENCH_FLOOD_FACTOR` (10) ×
//!    capacity, whatever the answers. Each request goes to a random one of 990 circuits, on a
//!    keep-alive connection of that circuit (at most 4 per circuit and `BENCH_FLOOD_SOCKETS`
//!    in all; a request whose circuit has no free connection then is counted as *skipped*, never
//!    queued, so the offered rate is the schedule's). The mix: 20 % page loads, 30 % valid small
//!    submissions (200 B message, the facts), 20 % receipt sign-ins with wrong receipts (valid
//!    words and checksum, a CSRF cookie and field pair taken from one `GET /followup`), 15 %
//!    empty sign-in forms, 15 % broken multipart bodies. Beside it, on the same circuits:
//!    `BENCH_FLOOD_SLOW` uploads that declare 1 MB and trickle one byte a second after the
//!    part's headers (started again when the server ends one), and `BENCH_FLOOD_IDLE` idle
//!    connections (half send only tor's line, half also an unfinished request head; opened
//!    again when the server closes them). With `tor-circuit` every connection starts with
//!    `tor_header(circuit)`; with `none` there is no PROXY line (the listener reads none).
//!    Circuits 1–990 flood; each source, the capacity connections and the setup checks have
//!    circuits of their own.
//! 3. **Genuine sources.** After `BENCH_WARMUP_SECONDS` of flood, a source arrives every
//!    `BENCH_SOURCE_INTERVAL_MS` for `BENCH_SECONDS`, each on a fresh circuit: one connection,
//!    `GET /submit` (the form page), then `POST /submit` (2 KiB message, the facts, a 100 KB
//!    `photo.jpg` of random bytes); a receipt is a `200` whose page holds `id="receipt"`. One
//!    try each, no retry; a visit unanswered after `BENCH_VISIT_TIMEOUT_SECONDS` is a failure.
//!    The sources run on a thread and Tokio runtime of their own, so that the flood's busy
//!    generator does not delay their clocks. The flood goes on until the last source is done.
//!
//! It reports per mode: the flood's offered, sent and answered requests per second and every
//! answer by kind; the slow uploads' and idle connections' ends; the sources' share with a
//! receipt (goal ≥ 99 %) and why the others failed; the p50/p99 of a whole visit and of the
//! submission alone, over the visits that got a receipt (goal: visit p99 < 2 s), where their
//! time went (connect, form page, submission) and the five slowest; the server's peak RSS
//! (VmHWM since it started, goal < 256 MiB) and its most open descriptors; how many
//! connections the kernel dropped for a full accept queue meanwhile (`ListenOverflows` of
//! /proc/net/netstat, machine-wide: an idle connection that sent nothing may then never reach
//! the server, and shows as "still open after 60 s"); junk tips
//! accepted (tips in the database minus genuine receipts); whether it stayed up (the process
//! is alive, and the analyst listener's `GET /health` answers 200 at the end of the flood and
//! after it); one more source after the flood; server and client CPU and the machine's other
//! load. The load generator shares the machine's cores with the server: on a 2-core machine
//! the flood takes up to one core (one current-thread runtime), and the server gets the rest.
//! PASS/FAIL is printed per goal; the run fails (exit 1) only if a receipt was shown for a
//! tip the database does not hold, or a setup check fails.
//!
//! Tuning (environment):
//!   BENCH_SECONDS=60              how long genuine sources arrive
//!   BENCH_WARMUP_SECONDS=5        flood before the first source
//!   BENCH_MODES=tor-circuit,none  `rate_limits.client_address` of each run
//!   BENCH_FLOOD_FACTOR=10         offered rate = factor × measured capacity
//!   BENCH_FLOOD_RATE=             offered requests/s, instead of measuring capacity
//!   BENCH_CAPACITY_SECONDS=5      each capacity measurement
//!   BENCH_FLOOD_CIRCUITS=990
//!   BENCH_FLOOD_SOCKETS=1000      connections of the rate-paced flood, at most
//!   BENCH_FLOOD_SLOW=200          slow uploads held open
//!   BENCH_FLOOD_IDLE=300          idle connections held open
//!   BENCH_SOURCE_INTERVAL_MS=500
//!   BENCH_ATTACHMENT_BYTES=100000 the sources' `photo.jpg` (0: a text tip, the empty file input)
//!   BENCH_VISIT_TIMEOUT_SECONDS=60
//!   BENCH_PRINT_VISITS=           set: print every source's visit (arrival, outcome, timings)
//!   BENCH_KEYS=3, BENCH_MESSAGE_BYTES=2048 (the sources' message), BENCH_SERVER_LOG=info,
//!   BENCH_KEEP_LOGS=DIR, BENCH_TIPBOX=   as in `intake_throughput`
//!   BENCH_EXTRA_TOML=             merged into tipbox.toml (\n for newlines); its
//!                                 `[rate_limits]` keys replace the shipped values written here
//!
//! Network: only the server's two loopback listeners. Every loop is bounded in time: the flood
//! stops once the last source is done (at most `BENCH_VISIT_TIMEOUT_SECONDS` after the last
//! arrival), each flood request is given up after 40 s, each slow upload after 120 s.

// The integration tests' harness (deployments, servers, PostgreSQL schemas); a benchmark uses
// a part of it.
#[allow(unused)]
#[path = "../tests/it/support/mod.rs"]
mod harness;
mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::{Backend, Deployment, Lang, ReceiptCode, tor_header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::{deployment::*, load::*, proc::*, settings::*};

/// What the submission form's page holds.
const FORM_MARKER: &[u8] = b"name=\"message\"";
/// Any page (a refusal is a page too); `exchange` needs some marker.
const PAGE_MARKER: &[u8] = b"<html";
/// Circuit ids: flooders from 1, sources, capacity connections and setup checks apart from them.
const SOURCE_CIRCUITS: u32 = 1_000_000;
const CAPACITY_CIRCUITS: u32 = 5_000_000;
const SETUP_CIRCUIT: u32 = 9_000_000;
/// Connections of the capacity measurement (closed loop), one circuit each.
const CAPACITY_CONNECTIONS: usize = 128;
/// A flood request still unanswered after this is given up (the server may queue an upload for
/// a submission slot for up to 30 s).
const FLOOD_REQUEST_TIMEOUT: Duration = Duration::from_secs(40);
/// Rate-paced connections one circuit may hold (the server allows 16).
const SOCKETS_PER_CIRCUIT: u8 = 4;
/// A kept-alive flood connection unused this long is closed rather than reused (the server
/// closes idle ones after its header timeout, 20 s).
const POOL_IDLE_LIMIT: Duration = Duration::from_secs(10);
/// A slow upload is given up after this, whatever the server does.
const SLOW_UPLOAD_LIMIT: Duration = Duration::from_secs(120);
/// What a slow upload declares.
const SLOW_UPLOAD_BYTES: u64 = 1_000_000;
/// An idle connection still open after this is closed by the benchmark.
const IDLE_LIMIT: Duration = Duration::from_secs(60);
/// The goals.
const GOAL_RECEIPT_SHARE: f64 = 0.99;
const GOAL_P99: Duration = Duration::from_secs(2);
const GOAL_PEAK_RSS_MIB: f64 = 256.0;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    TorCircuit,
    None,
}

impl Mode {
    fn named(name: &str) -> Self {
        match name {
            "tor-circuit" | "tor" => Mode::TorCircuit,
            "none" => Mode::None,
            other => panic!("BENCH_MODES: unknown mode {other:?} (tor-circuit or none)"),
        }
    }

    /// The value of `rate_limits.client_address`.
    fn name(self) -> &'static str {
        match self {
            Mode::TorCircuit => "tor-circuit",
            Mode::None => "none",
        }
    }

    /// What a connection on `circuit` sends first.
    fn preface(self, circuit: u32) -> Option<String> {
        match self {
            Mode::TorCircuit => Some(tor_header(circuit)),
            Mode::None => None,
        }
    }
}

struct Settings {
    load: LoadSettings,
    seconds: u64,
    warmup: u64,
    modes: Vec<Mode>,
    factor: f64,
    rate: Option<f64>,
    capacity_seconds: u64,
    circuits: u32,
    sockets: usize,
    slow: usize,
    idle: usize,
    interval: Duration,
    attachment_bytes: usize,
    visit_timeout: Duration,
}

impl Settings {
    fn from_env() -> Self {
        Self {
            load: LoadSettings::from_env(),
            seconds: env_u64("BENCH_SECONDS", 60).max(1),
            warmup: env_u64("BENCH_WARMUP_SECONDS", 5),
            modes: env_list("BENCH_MODES", "tor-circuit,none")
                .iter()
                .map(|m| Mode::named(m))
                .collect(),
            factor: std::env::var("BENCH_FLOOD_FACTOR")
                .ok()
                .map(|v| v.trim().parse().expect("BENCH_FLOOD_FACTOR: a number"))
                .unwrap_or(10.0),
            rate: std::env::var("BENCH_FLOOD_RATE").ok().map(|v| {
                v.trim()
                    .parse()
                    .expect("BENCH_FLOOD_RATE: requests per second")
            }),
            capacity_seconds: env_u64("BENCH_CAPACITY_SECONDS", 5).max(1),
            circuits: env_u64("BENCH_FLOOD_CIRCUITS", 990).clamp(1, SOURCE_CIRCUITS as u64 - 1)
                as u32,
            sockets: env_u64("BENCH_FLOOD_SOCKETS", 1000).max(1) as usize,
            slow: env_u64("BENCH_FLOOD_SLOW", 200) as usize,
            idle: env_u64("BENCH_FLOOD_IDLE", 300) as usize,
            interval: Duration::from_millis(env_u64("BENCH_SOURCE_INTERVAL_MS", 500).max(1)),
            attachment_bytes: env_u64("BENCH_ATTACHMENT_BYTES", 100_000) as usize,
            visit_timeout: Duration::from_secs(env_u64("BENCH_VISIT_TIMEOUT_SECONDS", 60).max(1)),
        }
    }

    fn sources(&self) -> usize {
        (Duration::from_secs(self.seconds).as_millis() / self.interval.as_millis()).max(1) as usize
    }
}

fn main() {
    let settings = Settings::from_env();
    print_preamble("flood");
    println!(
        "settings: sqlite, {} x25519 reviewer keys, default limits, shipped rate limits; flood: \
         {} circuits, ≤ {} rate-paced connections (≤ {SOCKETS_PER_CIRCUIT} per circuit), {} slow \
         uploads, {} idle connections, {} s before the first source; sources: one every {} ms \
         for {} s ({} visits), {} B message + {} B attachment, {} s visit timeout; server \
         TIPBOX_LOG={}{}",
        settings.load.keys,
        settings.circuits,
        settings.sockets,
        settings.slow,
        settings.idle,
        settings.warmup,
        settings.interval.as_millis(),
        settings.seconds,
        settings.sources(),
        settings.load.message_bytes,
        settings.attachment_bytes,
        settings.visit_timeout.as_secs(),
        settings.load.log,
        if settings.load.extra_toml.is_empty() {
            String::new()
        } else {
            format!("; extra config {:?}", settings.load.extra_toml)
        }
    );
    println!(
        "the load generator runs in this process on the same cores as the server: the flood on \
         one current-thread runtime (at most one core), the sources on a thread of their own"
    );

    let rate = match settings.rate {
        Some(rate) => {
            println!("capacity: not measured; BENCH_FLOOD_RATE={rate} requests/s offered");
            rate
        }
        None => {
            let capacity = measure_capacity(&settings);
            let rate = capacity * settings.factor;
            println!(
                "flood offered: {} × {capacity:.0} = {rate:.0} requests/s",
                settings.factor
            );
            rate
        }
    };

    let mut reports = Vec::new();
    let mut failures = Vec::new();
    for &mode in &settings.modes {
        println!();
        let report = run_mode(mode, rate, &settings);
        println!("{}", report.summary());
        if let Some(why) = report.integrity_problem() {
            failures.push(format!("{}: {why}", mode.name()));
        }
        reports.push(report);
    }

    println!();
    println!(
        "| client_address | flood offered req/s | sent req/s | answered req/s | flood answers | sources | with receipt | visit p50 / p99 | submission p50 / p99 | not received | peak RSS | junk tips accepted | stayed up | server CPU | client CPU | other load |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for report in &reports {
        println!("{}", report.row());
    }
    if !failures.is_empty() {
        fail(&failures.join("; "));
    }
}

// ---------------------------------------------------------------------------------------------
// Requests

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Page,
    Tip,
    WrongSignin,
    EmptySignin,
    BrokenMultipart,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Page,
        Kind::Tip,
        Kind::WrongSignin,
        Kind::EmptySignin,
        Kind::BrokenMultipart,
    ];

    /// Share of the rate-paced flood, in per cent.
    fn share(self) -> u32 {
        match self {
            Kind::Page => 20,
            Kind::Tip => 30,
            Kind::WrongSignin => 20,
            Kind::EmptySignin => 15,
            Kind::BrokenMultipart => 15,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Page => "page loads",
            Kind::Tip => "junk tips",
            Kind::WrongSignin => "wrong receipts",
            Kind::EmptySignin => "empty sign-ins",
            Kind::BrokenMultipart => "broken multipart",
        }
    }
}

/// The rate-paced flood's requests, by kind (a few variants of each).
struct FloodRequests {
    by_kind: Vec<Vec<Vec<u8>>>,
}

impl FloodRequests {
    fn build(addr: SocketAddr, signin: &SigninPair) -> Self {
        let by_kind = Kind::ALL
            .iter()
            .map(|kind| match kind {
                Kind::Page => vec![get_request(addr, "/submit?lang=en")],
                Kind::Tip => (0..4).map(|_| build_submit_request(addr, 200)).collect(),
                Kind::WrongSignin => (0..32)
                    .map(|_| {
                        let receipt = ReceiptCode::generate().words(Lang::En);
                        signin_request(addr, Some(signin), &receipt)
                    })
                    .collect(),
                Kind::EmptySignin => vec![signin_request(addr, None, "")],
                Kind::BrokenMultipart => vec![broken_multipart_request(addr)],
            })
            .collect();
        Self { by_kind }
    }

    fn get(&self, kind: Kind, variant: usize) -> &[u8] {
        let variants = &self.by_kind[kind as usize];
        &variants[variant % variants.len()]
    }

    /// One cycle of the mix, the kinds interleaved in their shares (for the closed loop).
    fn mix_cycle(&self) -> Vec<Vec<u8>> {
        let mut cycle = Vec::new();
        for n in 0..100 {
            cycle.push(self.get(Picker::kind_in_order(n), n).to_vec());
        }
        cycle
    }
}

fn get_request(addr: SocketAddr, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept-Language: en\r\n\r\n").into_bytes()
}

/// `POST /followup` with a receipt and, with `pair`, the CSRF cookie and field that
/// `GET /followup` pairs; without, an empty form (no fields, no cookie).
fn signin_request(addr: SocketAddr, pair: Option<&SigninPair>, receipt: &str) -> Vec<u8> {
    let (cookie, body) = match pair {
        Some(pair) => (
            format!("Cookie: {}\r\n", pair.cookie),
            form_urlencoded::Serializer::new(String::new())
                .append_pair("csrf", &pair.token)
                .append_pair("receipt", receipt)
                .finish(),
        ),
        None => (String::new(), String::new()),
    };
    format!(
        "POST /followup?lang=en HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n{cookie}Content-Length: {}\r\n\
         Accept-Language: en\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A multipart body that ends inside its first part's headers.
fn broken_multipart_request(addr: SocketAddr) -> Vec<u8> {
    let body = "--X\r\nnot a part";
    format!(
        "POST /submit?lang=en HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: multipart/form-data; boundary=X\r\nContent-Length: {}\r\n\
         Accept-Language: en\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A genuine source's submission: the form as Tor Browser sends it, with one attachment.
fn source_submission(addr: SocketAddr, message_bytes: usize, attachment: &[u8]) -> Vec<u8> {
    // The text tip of the other benchmarks, with the empty file input replaced by a file
    // (without a file: that text tip).
    let text = build_submit_request(addr, message_bytes);
    if attachment.is_empty() {
        return text;
    }
    let head_end = find(&text, b"\r\n\r\n").expect("a head") + 4;
    let body = &text[head_end..];
    let boundary_line = &body[..find(body, b"\r\n").expect("a boundary line")];
    let boundary = std::str::from_utf8(&boundary_line[2..]).unwrap().to_owned();
    let empty_file = find(body, b"name=\"attachment\"").expect("the file input");
    let part_start = body[..empty_file]
        .windows(boundary_line.len())
        .rposition(|w| w == boundary_line)
        .expect("the file input's boundary");
    let mut new_body = body[..part_start].to_vec();
    new_body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"attachment\"; \
             filename=\"photo.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
        )
        .as_bytes(),
    );
    new_body.extend_from_slice(attachment);
    new_body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    submit_request(addr, &boundary, &new_body)
}

/// A small, fast random source (xorshift64*): which kind, which circuit.
struct Picker(u64);

impl Picker {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn seeded() -> Self {
        let mut seed = [0u8; 8];
        getrandom::fill(&mut seed).unwrap();
        Self::new(u64::from_le_bytes(seed))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A kind, at random in the mix's shares.
    fn kind(&mut self) -> Kind {
        Self::kind_in_order(self.below(100) as usize)
    }

    /// The kind at position `n` (mod 100) of the shares laid end to end, spread out.
    fn kind_in_order(n: usize) -> Kind {
        // 37 is coprime to 100: consecutive positions visit the shares in turn.
        let mut at = ((n * 37) % 100) as u32;
        for kind in Kind::ALL {
            if at < kind.share() {
                return kind;
            }
            at -= kind.share();
        }
        unreachable!("the shares add up to 100")
    }
}

/// Connects to `addr` and sends `preface` (tor's line), if any.
async fn open(addr: SocketAddr, preface: Option<&str>) -> std::io::Result<TcpStream> {
    let mut stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    let _ = stream.set_nodelay(true);
    if let Some(line) = preface {
        stream.write_all(line.as_bytes()).await?;
    }
    Ok(stream)
}

/// What an exchange's error is, in a word.
fn failure_name(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::UnexpectedEof => "closed without answer",
        std::io::ErrorKind::ConnectionReset => "reset",
        std::io::ErrorKind::BrokenPipe => "closed while sending",
        _ => "io error",
    }
}

/// The value of header `name` in the answer held in `buf`.
fn header_value(buf: &[u8], name: &str) -> Option<String> {
    let head_end = find(buf, b"\r\n\r\n")?;
    std::str::from_utf8(&buf[..head_end])
        .ok()?
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_owned())
}

/// One request on a fresh connection of `circuit` (a setup check); the answer and its bytes.
async fn one_on(
    addr: SocketAddr,
    mode: Mode,
    circuit: u32,
    request: &[u8],
    marker: &[u8],
) -> (Answer, Vec<u8>) {
    let mut stream = open(addr, mode.preface(circuit).as_deref())
        .await
        .expect("connect to the public listener");
    let mut buf = Vec::new();
    let answer = tokio::time::timeout(
        REQUEST_TIMEOUT,
        exchange(&mut stream, request, marker, &mut buf),
    )
    .await
    .expect("setup request timed out")
    .expect("setup request failed");
    (answer, buf)
}

fn expect_answer(what: &str, answer: &Answer, buf: &[u8], status: u16) {
    if answer.status != status || !answer.marker {
        fail(&format!(
            "setup: {what} answered {}: {}",
            answer.status,
            String::from_utf8_lossy(&buf[..buf.len().min(2000)])
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Capacity

/// Measures what the server answers, closed loop, with the budgets lifted; returns the flood
/// mix's answers per second.
fn measure_capacity(settings: &Settings) -> f64 {
    // The harness lifts every budget and capacity limit this does not set.
    let deployment = Deployment::new(
        Backend::Sqlite,
        "[rate_limits]\nclient_address = \"tor-circuit\"\n",
    );
    add_config(&deployment, &settings.load.extra_toml);
    for i in 0..settings.load.keys {
        add_reviewer(&deployment, &format!("reviewer{i}"));
    }
    let server = RunningServer::start(&deployment, &settings.load.log);
    let addr = server.public_addr();
    let pid = server.pid();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mix = runtime.block_on(async {
        let token = signin_token(addr, Mode::TorCircuit).await;
        let requests = FloodRequests::build(addr, &token);
        let (answer, buf) = one_on(
            addr,
            Mode::TorCircuit,
            SETUP_CIRCUIT,
            requests.get(Kind::Tip, 0),
            RECEIPT_MARKER,
        )
        .await;
        expect_answer("a small submission (capacity)", &answer, &buf, 200);
        let window = Duration::from_secs(settings.capacity_seconds);
        let mut results = Vec::new();
        for (what, cycle) in [
            (
                "page loads (GET /submit)",
                vec![requests.get(Kind::Page, 0).to_vec()],
            ),
            (
                "small submissions (200 B message)",
                requests.by_kind[Kind::Tip as usize].clone(),
            ),
            ("the flood's mix", requests.mix_cycle()),
        ] {
            let before = UsageSample::now(pid, false);
            let (rate, statuses) =
                closed_loop(addr, Arc::new(cycle), CAPACITY_CONNECTIONS, window).await;
            let usage = before.until(&UsageSample::now(pid, false));
            println!(
                "capacity, {what}: {rate:.0} answers/s ({}; {CAPACITY_CONNECTIONS} connections on \
                 as many circuits, closed loop, budgets lifted; server CPU {:.2} cores, client \
                 CPU {:.2} cores, other load {:.2} cores)",
                tally(&statuses),
                usage.server_cpu / usage.seconds,
                usage.client_cpu / usage.seconds,
                usage.other_load()
            );
            results.push(rate);
        }
        results[2]
    });
    drop(server);
    keep_log(&deployment, "server-flood-capacity.log");
    println!(
        "capacity: {mix:.0} requests/s of the flood's mix — what this server answers on this \
         machine, beside this load generator, when it serves every request (budgets lifted)"
    );
    mix
}

/// `connections` keep-alive connections, each on a circuit of its own, send `cycle` back to
/// back for a second of warm-up and `window`; answers per second in the window, by status.
async fn closed_loop(
    addr: SocketAddr,
    cycle: Arc<Vec<Vec<u8>>>,
    connections: usize,
    window: Duration,
) -> (f64, BTreeMap<String, u64>) {
    let measure_from = Instant::now() + Duration::from_secs(1);
    let until = measure_from + window;
    let tasks: Vec<_> = (0..connections)
        .map(|i| {
            let cycle = Arc::clone(&cycle);
            tokio::spawn(async move {
                let circuit = CAPACITY_CIRCUITS + i as u32;
                let preface = Mode::TorCircuit.preface(circuit);
                let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
                let mut stream: Option<TcpStream> = None;
                let mut buf = Vec::with_capacity(16 * 1024);
                let mut n = i;
                while Instant::now() < until {
                    let conn = match stream.as_mut() {
                        Some(conn) => conn,
                        None => match open(addr, preface.as_deref()).await {
                            Ok(conn) => stream.insert(conn),
                            Err(_) => {
                                *statuses.entry("connect error".into()).or_default() += 1;
                                tokio::time::sleep(Duration::from_millis(10)).await;
                                continue;
                            }
                        },
                    };
                    let request = &cycle[n % cycle.len()];
                    n += 1;
                    let outcome = tokio::time::timeout_at(
                        until.into(),
                        exchange(conn, request, PAGE_MARKER, &mut buf),
                    )
                    .await;
                    let done = Instant::now();
                    let counted = done >= measure_from && done <= until;
                    let what = match outcome {
                        Ok(Ok(answer)) => {
                            if answer.close {
                                stream = None;
                            }
                            answer.status.to_string()
                        }
                        Ok(Err(error)) => {
                            stream = None;
                            failure_name(&error).to_owned()
                        }
                        Err(_) => break,
                    };
                    if counted {
                        *statuses.entry(what).or_default() += 1;
                    }
                }
                statuses
            })
        })
        .collect();
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for task in tasks {
        for (k, v) in task.await.expect("capacity connection") {
            *statuses.entry(k).or_default() += v;
        }
    }
    let answered: u64 = statuses
        .iter()
        .filter(|(k, _)| k.parse::<u16>().is_ok())
        .map(|(_, v)| v)
        .sum();
    (answered as f64 / window.as_secs_f64(), statuses)
}

// ---------------------------------------------------------------------------------------------
// One mode: a deployment with the shipped limits, the flood and the sources

/// `[rate_limits]` with every key the harness would otherwise lift, at its shipped default,
/// except those `extra` (BENCH_EXTRA_TOML) sets itself.
fn shipped_rate_limits(mode: Mode, extra: &str) -> String {
    let d = tipbox::config::RateLimits::default();
    let extra_sets: Vec<String> = extra
        .split("[rate_limits]")
        .nth(1)
        .unwrap_or("")
        .lines()
        .take_while(|l| !l.trim_start().starts_with('['))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_owned()))
        .collect();
    let mut toml = String::from("[rate_limits]\n");
    for (key, value) in [
        ("client_address", format!("\"{}\"", mode.name())),
        ("pages_per_minute", d.pages_per_minute.to_string()),
        ("pages_burst", d.pages_burst.to_string()),
        ("forms_per_minute", d.forms_per_minute.to_string()),
        ("forms_burst", d.forms_burst.to_string()),
        ("signins_per_minute", d.signins_per_minute.to_string()),
        ("signins_burst", d.signins_burst.to_string()),
        ("analyst_per_second", d.analyst_per_second.to_string()),
        ("analyst_burst", d.analyst_burst.to_string()),
        ("max_connections", d.max_connections.to_string()),
        (
            "max_connections_per_client",
            d.max_connections_per_client.to_string(),
        ),
        ("max_requests", d.max_requests.to_string()),
        (
            "max_requests_per_client",
            d.max_requests_per_client.to_string(),
        ),
        (
            "max_uploads_per_client",
            d.max_uploads_per_client.to_string(),
        ),
    ] {
        if !extra_sets.iter().any(|k| k == key) {
            toml.push_str(&format!("{key} = {value}\n"));
        }
    }
    toml
}

/// The deployment's `[rate_limits]` lines; fails the run if the harness lifted any of them.
fn check_shipped_limits(deployment: &Deployment) -> String {
    let config = std::fs::read_to_string(&deployment.config_path).unwrap();
    let section: Vec<&str> = config
        .split("[rate_limits]\n")
        .nth(1)
        .unwrap_or("")
        .lines()
        .take_while(|l| !l.trim_start().starts_with('['))
        .filter(|l| l.contains('='))
        .collect();
    if let Some(lifted) = section.iter().find(|l| l.trim().ends_with("1000000")) {
        fail(&format!(
            "the harness lifted a rate limit ({lifted}): the flood must run with the shipped ones"
        ));
    }
    section
        .iter()
        .map(|l| l.replace(' ', ""))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The sign-in form's CSRF token and the cookie `GET /followup` paired it with (`name=token`;
/// the name depends on the transport). Tokens are not tied to a client.
struct SigninPair {
    cookie: String,
    token: String,
}

async fn signin_token(addr: SocketAddr, mode: Mode) -> SigninPair {
    let (answer, buf) = one_on(
        addr,
        mode,
        SETUP_CIRCUIT,
        &get_request(addr, "/followup?lang=en"),
        b"name=\"csrf\"",
    )
    .await;
    expect_answer("GET /followup", &answer, &buf, 200);
    header_value(&buf, "set-cookie")
        .and_then(|c| {
            let cookie = c.split(';').next()?.trim().to_owned();
            let token = cookie.split_once('=')?.1.to_owned();
            (cookie.contains("signin") && !token.is_empty()).then_some(SigninPair { cookie, token })
        })
        .unwrap_or_else(|| fail("setup: GET /followup set no sign-in cookie"))
}

/// What the flood saw, added up as it goes.
#[derive(Default)]
struct FloodTally {
    offered: u64,
    skipped: u64,
    sent: u64,
    /// Answers and failures of the rate-paced flood, by kind.
    outcomes: BTreeMap<(Kind, String), u64>,
    /// Outcomes since the last progress line.
    recent: BTreeMap<String, u64>,
    recent_sent: u64,
    junk_receipts: u64,
    connections_opened: u64,
    slow: BTreeMap<String, u64>,
    /// How long each slow upload was held, in µs; and how many are open now.
    slow_held_us: Vec<u32>,
    slow_open: i64,
    idle: BTreeMap<String, u64>,
    idle_held_us: Vec<u32>,
    idle_open: i64,
}

impl FloodTally {
    /// Outcomes that were an HTTP status (`true`) or a failure without one (`false`).
    fn outcomes_that_were_answers(&self, answered: bool) -> u64 {
        self.outcomes
            .iter()
            .filter(|((_, what), _)| what.parse::<u16>().is_ok() == answered)
            .map(|(_, n)| n)
            .sum()
    }

    fn answered(&self) -> u64 {
        self.outcomes_that_were_answers(true)
    }

    fn failed(&self) -> u64 {
        self.outcomes_that_were_answers(false)
    }

    /// Every outcome of the rate-paced flood, kinds together.
    fn by_outcome(&self) -> BTreeMap<String, u64> {
        let mut all = BTreeMap::new();
        for ((_, what), n) in &self.outcomes {
            *all.entry(what.clone()).or_default() += n;
        }
        all
    }

    fn of_kind(&self, kind: Kind) -> BTreeMap<String, u64> {
        self.outcomes
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|((_, what), n)| (what.clone(), *n))
            .collect()
    }
}

/// Connections of the rate-paced flood: idle kept-alive ones per circuit, and how many each
/// circuit (and all of them) hold.
struct Pool {
    idle: Vec<Vec<(TcpStream, Instant)>>,
    open: Vec<u8>,
    total: usize,
    cap: usize,
}

enum Checkout {
    Reuse(TcpStream),
    Open,
    Skip,
}

struct Flood {
    addr: SocketAddr,
    mode: Mode,
    requests: FloodRequests,
    pool: Mutex<Pool>,
    tally: Mutex<FloodTally>,
    stop: AtomicBool,
}

impl Flood {
    fn tally(&self) -> std::sync::MutexGuard<'_, FloodTally> {
        self.tally.lock().unwrap()
    }

    fn checkout(&self, circuit: usize) -> Checkout {
        let mut pool = self.pool.lock().unwrap();
        while let Some((stream, since)) = pool.idle[circuit].pop() {
            if since.elapsed() < POOL_IDLE_LIMIT {
                return Checkout::Reuse(stream);
            }
            drop(stream);
            pool.open[circuit] -= 1;
            pool.total -= 1;
        }
        if pool.open[circuit] < SOCKETS_PER_CIRCUIT && pool.total < pool.cap {
            pool.open[circuit] += 1;
            pool.total += 1;
            Checkout::Open
        } else {
            Checkout::Skip
        }
    }

    fn checkin(&self, circuit: usize, stream: TcpStream) {
        let mut pool = self.pool.lock().unwrap();
        if self.stop.load(Ordering::Relaxed) {
            pool.open[circuit] -= 1;
            pool.total -= 1;
            return;
        }
        pool.idle[circuit].push((stream, Instant::now()));
    }

    fn release(&self, circuit: usize) {
        let mut pool = self.pool.lock().unwrap();
        pool.open[circuit] -= 1;
        pool.total -= 1;
    }

    fn circuit_id(circuit: usize) -> u32 {
        1 + circuit as u32
    }

    fn preface(&self, circuit: usize) -> Option<String> {
        self.mode.preface(Self::circuit_id(circuit))
    }

    fn record(&self, kind: Kind, what: String) {
        let mut tally = self.tally();
        *tally.recent.entry(what.clone()).or_default() += 1;
        *tally.outcomes.entry((kind, what)).or_default() += 1;
    }
}

/// Paces the flood: `rate` requests a second, whatever the answers.
async fn pace(flood: Arc<Flood>, rate: f64, circuits: usize) {
    let start = Instant::now();
    let mut picker = Picker::seeded();
    let mut issued = 0u64;
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while !flood.stop.load(Ordering::Relaxed) {
        ticker.tick().await;
        let due = (start.elapsed().as_secs_f64() * rate) as u64;
        let (mut sent, mut skipped) = (0u64, 0u64);
        while issued < due {
            issued += 1;
            let kind = picker.kind();
            let circuit = picker.below(circuits as u64) as usize;
            let variant = picker.below(1 << 16) as usize;
            let conn = match flood.checkout(circuit) {
                Checkout::Reuse(stream) => Some(stream),
                Checkout::Open => None,
                Checkout::Skip => {
                    skipped += 1;
                    continue;
                }
            };
            sent += 1;
            tokio::spawn(shoot(Arc::clone(&flood), circuit, kind, variant, conn));
        }
        let mut tally = flood.tally();
        tally.offered = issued;
        tally.sent += sent;
        tally.recent_sent += sent;
        tally.skipped += skipped;
    }
}

/// One flood request on a connection of `circuit` (opened here when `conn` is `None`).
async fn shoot(
    flood: Arc<Flood>,
    circuit: usize,
    kind: Kind,
    variant: usize,
    conn: Option<TcpStream>,
) {
    let mut stream = match conn {
        Some(stream) => stream,
        None => match open(flood.addr, flood.preface(circuit).as_deref()).await {
            Ok(stream) => {
                flood.tally().connections_opened += 1;
                stream
            }
            Err(_) => {
                flood.record(kind, "connect error".to_owned());
                flood.release(circuit);
                return;
            }
        },
    };
    let marker = if kind == Kind::Tip {
        RECEIPT_MARKER
    } else {
        PAGE_MARKER
    };
    let mut buf = Vec::with_capacity(8 * 1024);
    let request = flood.requests.get(kind, variant);
    let outcome = tokio::time::timeout(
        FLOOD_REQUEST_TIMEOUT,
        exchange(&mut stream, request, marker, &mut buf),
    )
    .await;
    match outcome {
        Ok(Ok(answer)) => {
            if kind == Kind::Tip && answer.status == 200 && answer.marker {
                flood.tally().junk_receipts += 1;
            }
            flood.record(kind, answer.status.to_string());
            if answer.close {
                flood.release(circuit);
            } else {
                flood.checkin(circuit, stream);
            }
        }
        Ok(Err(error)) => {
            flood.record(kind, failure_name(&error).to_owned());
            flood.release(circuit);
        }
        Err(_) => {
            flood.record(kind, "no answer in 40 s".to_owned());
            flood.release(circuit);
        }
    }
}

/// Keeps one slow upload going on `circuit`: the head and the part's headers at once, then a
/// byte a second, until the server answers or closes; then another.
async fn slow_uploads(flood: Arc<Flood>, circuit: usize) {
    let addr = flood.addr;
    let head = format!(
        "POST /submit?lang=en HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: multipart/form-data; boundary=SLOW\r\nContent-Length: {SLOW_UPLOAD_BYTES}\r\n\
         Accept-Language: en\r\n\r\n--SLOW\r\nContent-Disposition: form-data; name=\"attachment\"; \
         filename=\"slow.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    );
    while !flood.stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        flood.tally().slow_open += 1;
        let outcome = match open(addr, flood.preface(circuit).as_deref()).await {
            Ok(mut stream) => trickle(&mut stream, head.as_bytes()).await,
            Err(_) => "connect error".to_owned(),
        };
        let held = started.elapsed();
        {
            let mut tally = flood.tally();
            *tally.slow.entry(outcome).or_default() += 1;
            tally.slow_held_us.push(held.as_micros() as u32);
            tally.slow_open -= 1;
        }
        if held < Duration::from_millis(500) {
            // Refused at once: do not spin.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Sends `head`, then a byte a second; how it ended (`408`, `closed without answer`, …).
async fn trickle(stream: &mut TcpStream, head: &[u8]) -> String {
    let started = Instant::now();
    if stream.write_all(head).await.is_err() {
        return "closed while sending".to_owned();
    }
    let (mut reader, mut writer) = stream.split();
    let mut buf = Vec::with_capacity(4096);
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    let mut writing = true;
    loop {
        if started.elapsed() > SLOW_UPLOAD_LIMIT {
            return "still open after 120 s".to_owned();
        }
        tokio::select! {
            read = reader.read_buf(&mut buf) => match read {
                Ok(0) | Err(_) => {
                    return if buf.is_empty() {
                        "closed without answer".to_owned()
                    } else {
                        status_of(&buf)
                    };
                }
                Ok(_) => {
                    if find(&buf, b"\r\n").is_some() {
                        return status_of(&buf);
                    }
                }
            },
            _ = ticker.tick(), if writing => {
                if writer.write_all(b"x").await.is_err() {
                    // The server stopped reading: wait briefly for its answer.
                    writing = false;
                }
            }
            _ = tokio::time::sleep(Duration::from_secs(5)), if !writing => {
                return "closed while sending".to_owned();
            }
        }
    }
}

fn status_of(buf: &[u8]) -> String {
    std::str::from_utf8(&buf[..find(buf, b"\r\n").unwrap_or(buf.len()).min(64)])
        .ok()
        .and_then(|l| l.split(' ').nth(1))
        .map_or_else(|| "garbage".to_owned(), str::to_owned)
}

/// Keeps one idle connection open on `circuit`: tor's line (and, with `partial_head`, the
/// start of a request), then nothing, until the server closes it; then another.
async fn idle_connections(flood: Arc<Flood>, circuit: usize, partial_head: bool) {
    while !flood.stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        flood.tally().idle_open += 1;
        let outcome = match open(flood.addr, flood.preface(circuit).as_deref()).await {
            Ok(mut stream) => {
                let sent = if partial_head {
                    stream
                        .write_all(b"GET /submit?lang=en HTTP/1.1\r\nHost: x\r\n")
                        .await
                        .is_ok()
                } else {
                    true
                };
                let mut buf = Vec::new();
                match tokio::time::timeout(IDLE_LIMIT, stream.read_to_end(&mut buf)).await {
                    _ if !sent => "closed while sending".to_owned(),
                    Ok(_) if buf.is_empty() => "closed without answer".to_owned(),
                    Ok(_) => status_of(&buf),
                    Err(_) => "still open after 60 s".to_owned(),
                }
            }
            Err(_) => "connect error".to_owned(),
        };
        let held = started.elapsed();
        let kind = if partial_head {
            "partial head"
        } else {
            "nothing sent"
        };
        {
            let mut tally = flood.tally();
            *tally.idle.entry(format!("{kind}: {outcome}")).or_default() += 1;
            tally.idle_held_us.push(held.as_micros() as u32);
            tally.idle_open -= 1;
        }
        if held < Duration::from_millis(500) {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// One genuine source's visit.
struct Visit {
    receipt: bool,
    /// `receipt`, or what went wrong (`submission 429`, `form page closed without answer`, …).
    outcome: String,
    retry_after: Option<String>,
    /// When it arrived, after the first source.
    arrived: Duration,
    visit_us: u32,
    /// Connecting (and sending tor's line); the form page; the submission.
    connect_us: Option<u32>,
    form_us: Option<u32>,
    submit_us: Option<u32>,
}

fn micros(d: Duration) -> u32 {
    d.as_micros().min(u32::MAX as u128) as u32
}

/// A source on a fresh circuit: the form page, then the submission, on one connection (a new
/// one if the server closed it).
async fn visit(
    addr: SocketAddr,
    mode: Mode,
    circuit: u32,
    form: Arc<Vec<u8>>,
    submission: Arc<Vec<u8>>,
    timeout: Duration,
    arrived: Duration,
) -> Visit {
    let started = Instant::now();
    let preface = mode.preface(circuit);
    let (mut connect_us, mut form_us, mut submit_us) = (None, None, None);
    let mut retry_after = None;
    let steps = async {
        let mut stream = open(addr, preface.as_deref())
            .await
            .map_err(|_| "connect error".to_owned())?;
        connect_us = Some(micros(started.elapsed()));
        let mut buf = Vec::with_capacity(32 * 1024);
        let asked = Instant::now();
        let page = exchange(&mut stream, &form, FORM_MARKER, &mut buf)
            .await
            .map_err(|e| format!("form page: {}", failure_name(&e)))?;
        form_us = Some(micros(asked.elapsed()));
        if page.status != 200 || !page.marker {
            retry_after = header_value(&buf, "retry-after");
            return Err(format!("form page {}", page.status));
        }
        if page.close {
            stream = open(addr, preface.as_deref())
                .await
                .map_err(|_| "connect error (submission)".to_owned())?;
        }
        let sent = Instant::now();
        let answer = exchange(&mut stream, &submission, RECEIPT_MARKER, &mut buf)
            .await
            .map_err(|e| format!("submission: {}", failure_name(&e)))?;
        submit_us = Some(micros(sent.elapsed()));
        if answer.status == 200 && answer.marker {
            Ok(())
        } else {
            retry_after = header_value(&buf, "retry-after");
            Err(format!("submission {}", answer.status))
        }
    };
    let result = tokio::time::timeout(timeout, steps).await;
    let visit_us = micros(started.elapsed());
    let outcome = match result {
        Ok(Ok(())) => "receipt".to_owned(),
        Ok(Err(why)) => why,
        Err(_) => format!("no receipt within {} s", timeout.as_secs()),
    };
    Visit {
        receipt: outcome == "receipt",
        outcome,
        retry_after,
        arrived,
        visit_us,
        connect_us,
        form_us,
        submit_us,
    }
}

/// Sources so far, for the progress lines: arrived, with receipt, without.
#[derive(Default)]
struct SourceProgress {
    arrived: u64,
    receipts: u64,
    failed: u64,
}

/// The genuine sources, on a thread and runtime of their own: one every `interval` from
/// `first`, `count` in all; their visits in order of arrival.
#[allow(clippy::too_many_arguments)]
fn run_sources(
    addr: SocketAddr,
    mode: Mode,
    first: Instant,
    interval: Duration,
    count: usize,
    form: Arc<Vec<u8>>,
    submission: Arc<Vec<u8>>,
    timeout: Duration,
    progress: Arc<Mutex<SourceProgress>>,
) -> Vec<Visit> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..count {
            tokio::time::sleep_until((first + interval * i as u32).into()).await;
            progress.lock().unwrap().arrived += 1;
            let (form, submission, progress) = (
                Arc::clone(&form),
                Arc::clone(&submission),
                Arc::clone(&progress),
            );
            tasks.push(tokio::spawn(async move {
                let circuit = SOURCE_CIRCUITS + i as u32;
                let arrived = interval * i as u32;
                let v = visit(addr, mode, circuit, form, submission, timeout, arrived).await;
                let mut p = progress.lock().unwrap();
                if v.receipt {
                    p.receipts += 1;
                } else {
                    p.failed += 1;
                }
                v
            }));
        }
        let mut visits = Vec::new();
        for task in tasks {
            visits.push(task.await.expect("source task"));
        }
        visits
    })
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next().map(str::to_owned))
        })
        .is_some_and(|state| state != "Z" && state != "X")
}

/// `TcpExt: ListenOverflows` of /proc/net/netstat: connections the kernel dropped because a
/// listener's accept queue was full (machine-wide, since boot).
fn listen_overflows() -> u64 {
    let netstat = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let lines: Vec<&str> = netstat
        .lines()
        .filter(|l| l.starts_with("TcpExt:"))
        .collect();
    let [names, values] = lines[..] else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "ListenOverflows")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0)
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// `GET /health` on the analyst listener: its status, or what went wrong.
async fn health(analyst: SocketAddr) -> String {
    let request = format!("GET /health HTTP/1.1\r\nHost: {analyst}\r\nConnection: close\r\n\r\n");
    let attempt = async {
        let mut stream = TcpStream::connect(analyst).await?;
        let mut buf = Vec::new();
        exchange(&mut stream, request.as_bytes(), PAGE_MARKER, &mut buf).await
    };
    match tokio::time::timeout(Duration::from_secs(10), attempt).await {
        Ok(Ok(answer)) => answer.status.to_string(),
        Ok(Err(error)) => failure_name(&error).to_owned(),
        Err(_) => "no answer in 10 s".to_owned(),
    }
}

fn keep_log(deployment: &Deployment, name: &str) {
    if let Ok(dir) = std::env::var("BENCH_KEEP_LOGS") {
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::copy(&deployment.log_path, Path::new(&dir).join(name));
    }
}

struct Report {
    mode: Mode,
    limits: String,
    flood_seconds: f64,
    tally: FloodTally,
    visits: Vec<Visit>,
    after: Visit,
    /// The setup's own receipts (one submission).
    setup_receipts: u64,
    tips_in_database: i64,
    peak_rss_kib: u64,
    max_rss_kib: u64,
    max_fds: usize,
    alive: bool,
    health_during: String,
    health_after: String,
    usage: Usage,
    /// Connections the kernel dropped for a full accept queue while the flood ran.
    listen_overflows: u64,
}

impl Report {
    fn receipts(&self) -> u64 {
        self.visits.iter().filter(|v| v.receipt).count() as u64
    }

    fn share(&self) -> f64 {
        self.receipts() as f64 / self.visits.len().max(1) as f64
    }

    fn sorted(&self, f: impl Fn(&Visit) -> Option<u32>) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .visits
            .iter()
            .filter(|v| v.receipt)
            .filter_map(f)
            .collect();
        v.sort_unstable();
        v
    }

    fn visit_ms(&self, p: f64) -> f64 {
        percentile_ms(&self.sorted(|v| Some(v.visit_us)), p)
    }

    fn submit_ms(&self, p: f64) -> f64 {
        percentile_ms(&self.sorted(|v| v.submit_us), p)
    }

    /// `connect p50/p99, form page p50/p99` over the visits that got a receipt.
    fn breakdown(&self) -> String {
        let connect = self.sorted(|v| v.connect_us);
        let form = self.sorted(|v| v.form_us);
        format!(
            "connect p50 {:.0} ms, p99 {:.0} ms; form page p50 {:.0} ms, p99 {:.0} ms",
            percentile_ms(&connect, 50.0),
            percentile_ms(&connect, 99.0),
            percentile_ms(&form, 50.0),
            percentile_ms(&form, 99.0)
        )
    }

    /// The slowest visits with a receipt: when they arrived and where their time went.
    fn slowest(&self, n: usize) -> String {
        let mut visits: Vec<&Visit> = self.visits.iter().filter(|v| v.receipt).collect();
        visits.sort_by_key(|v| std::cmp::Reverse(v.visit_us));
        let ms = |us: Option<u32>| us.map_or(f64::NAN, |us| us as f64 / 1000.0);
        visits
            .iter()
            .take(n)
            .map(|v| {
                format!(
                    "{:.0} ms at {:.1} s (connect {:.0}, form {:.0}, submission {:.0})",
                    v.visit_us as f64 / 1000.0,
                    v.arrived.as_secs_f64(),
                    ms(v.connect_us),
                    ms(v.form_us),
                    ms(v.submit_us)
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn failures(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for v in self.visits.iter().filter(|v| !v.receipt) {
            *out.entry(v.outcome.clone()).or_default() += 1;
        }
        out
    }

    fn junk_tips(&self) -> i64 {
        self.tips_in_database
            - (self.receipts() + self.setup_receipts + self.after_receipt()) as i64
    }

    fn after_receipt(&self) -> u64 {
        u64::from(self.after.receipt)
    }

    fn stayed_up(&self) -> bool {
        self.alive && self.health_during == "200" && self.health_after == "200"
    }

    fn peak_mib(&self) -> f64 {
        mib(self.peak_rss_kib)
    }

    /// A receipt shown for a tip the database does not hold.
    fn integrity_problem(&self) -> Option<String> {
        let shown =
            self.receipts() + self.setup_receipts + self.after_receipt() + self.tally.junk_receipts;
        (self.tips_in_database < shown as i64).then(|| {
            format!(
                "tips in the database ({}) < receipts shown ({shown})",
                self.tips_in_database
            )
        })
    }

    fn verdict(ok: bool) -> &'static str {
        if ok { "PASS" } else { "FAIL" }
    }

    fn summary(&self) -> String {
        let t = &self.tally;
        let secs = self.flood_seconds;
        let mut out = String::new();
        let line = |out: &mut String, s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(
            &mut out,
            format!(
                "{}: flood {:.0} s: offered {:.0}/s, sent {:.0}/s (skipped for want of a free \
                 connection {:.0}/s), answered {:.0}/s, failed {:.0}/s; {} connections opened",
                self.mode.name(),
                secs,
                t.offered as f64 / secs,
                t.sent as f64 / secs,
                t.skipped as f64 / secs,
                t.answered() as f64 / secs,
                t.failed() as f64 / secs,
                t.connections_opened
            ),
        );
        for kind in Kind::ALL {
            line(
                &mut out,
                format!("  {:<17} {}", kind.name(), tally(&t.of_kind(kind))),
            );
        }
        let held = |us: &Vec<u32>, open: i64| {
            let mut v = us.clone();
            v.sort_unstable();
            format!(
                "{} ended, held p50 {:.1} s, max {:.1} s; {open} open at the end",
                v.len(),
                percentile_ms(&v, 50.0) / 1000.0,
                percentile_ms(&v, 100.0) / 1000.0
            )
        };
        line(
            &mut out,
            format!(
                "  slow uploads      {} ({})",
                tally(&t.slow),
                held(&t.slow_held_us, t.slow_open)
            ),
        );
        line(
            &mut out,
            format!(
                "  idle connections  {} ({})",
                tally(&t.idle),
                held(&t.idle_held_us, t.idle_open)
            ),
        );
        let retry: Vec<u64> = self
            .visits
            .iter()
            .filter_map(|v| v.retry_after.as_deref()?.parse().ok())
            .collect();
        line(
            &mut out,
            format!(
                "  sources: {} arrived, {} with receipt ({:.1} %: {} ≥ {:.0} %); not received: \
                 {}{}",
                self.visits.len(),
                self.receipts(),
                self.share() * 100.0,
                Self::verdict(self.share() >= GOAL_RECEIPT_SHARE),
                GOAL_RECEIPT_SHARE * 100.0,
                tally(&self.failures()),
                if retry.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (Retry-After {}–{} s)",
                        retry.iter().min().unwrap(),
                        retry.iter().max().unwrap()
                    )
                }
            ),
        );
        let p99 = self.visit_ms(99.0);
        line(
            &mut out,
            format!(
                "  visit (connect, form page, submission) p50 {:.0} ms, p99 {:.0} ms, max {:.0} \
                 ms ({}: p99 < {} s); submission alone p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
                self.visit_ms(50.0),
                p99,
                self.visit_ms(100.0),
                Self::verdict(p99 < GOAL_P99.as_secs_f64() * 1000.0),
                GOAL_P99.as_secs(),
                self.submit_ms(50.0),
                self.submit_ms(99.0),
                self.submit_ms(100.0)
            ),
        );
        if self.receipts() > 0 {
            line(
                &mut out,
                format!("  {}; slowest: {}", self.breakdown(), self.slowest(5)),
            );
        }
        line(
            &mut out,
            format!(
                "  server peak RSS (VmHWM) {:.1} MiB ({}: < {GOAL_PEAK_RSS_MIB:.0} MiB); largest \
                 VmRSS sampled {:.1} MiB; most open descriptors {}; accept-queue overflows \
                 (kernel, machine-wide) during the flood {}",
                self.peak_mib(),
                Self::verdict(self.peak_mib() < GOAL_PEAK_RSS_MIB),
                mib(self.max_rss_kib),
                self.max_fds,
                self.listen_overflows
            ),
        );
        line(
            &mut out,
            format!(
                "  junk tips accepted: {} (tips in the database {} − {} genuine receipts − {} \
                 setup − {} after; the flood saw {} receipts)",
                self.junk_tips(),
                self.tips_in_database,
                self.receipts(),
                self.setup_receipts,
                self.after_receipt(),
                t.junk_receipts
            ),
        );
        line(
            &mut out,
            format!(
                "  stayed up: {} (process alive: {}; analyst GET /health at the end of the flood \
                 {}, after it {}); one source after the flood: {} in {:.0} ms",
                if self.stayed_up() { "yes" } else { "NO" },
                self.alive,
                self.health_during,
                self.health_after,
                self.after.outcome,
                self.after.visit_us as f64 / 1000.0
            ),
        );
        let u = &self.usage;
        out.push_str(&format!(
            "  server CPU {:.2} cores, client CPU {:.2} cores, machine busy {:.0}% (other load \
             {:.2} cores); rate limits: {}",
            u.server_cpu / u.seconds,
            u.client_cpu / u.seconds,
            u.machine_busy * 100.0,
            u.other_load(),
            self.limits
        ));
        out
    }

    fn row(&self) -> String {
        let t = &self.tally;
        let secs = self.flood_seconds;
        let answers = self.tally.by_outcome();
        let total: u64 = answers.values().sum::<u64>().max(1);
        let shares = answers
            .iter()
            .filter(|(_, n)| **n * 1000 >= total)
            .map(|(k, n)| format!("{k} {:.1} %", *n as f64 * 100.0 / total as f64))
            .collect::<Vec<_>>()
            .join(", ");
        let u = &self.usage;
        format!(
            "| {} | {:.0} | {:.0} | {:.0} | {shares} | {} | {} ({:.1} %) | {:.0} / {:.0} ms | \
             {:.0} / {:.0} ms | {} | {:.0} MiB | {} | {} | {:.2} | {:.2} | {:.2} |",
            self.mode.name(),
            t.offered as f64 / secs,
            t.sent as f64 / secs,
            t.answered() as f64 / secs,
            self.visits.len(),
            self.receipts(),
            self.share() * 100.0,
            self.visit_ms(50.0),
            self.visit_ms(99.0),
            self.submit_ms(50.0),
            self.submit_ms(99.0),
            tally(&self.failures()),
            self.peak_mib(),
            self.junk_tips(),
            if self.stayed_up() { "yes" } else { "NO" },
            u.server_cpu / u.seconds,
            u.client_cpu / u.seconds,
            u.other_load()
        )
    }
}

fn run_mode(mode: Mode, rate: f64, settings: &Settings) -> Report {
    let extra = &settings.load.extra_toml;
    let deployment = Deployment::new(Backend::Sqlite, &shipped_rate_limits(mode, extra));
    add_config(&deployment, extra);
    let limits = check_shipped_limits(&deployment);
    for i in 0..settings.load.keys {
        add_reviewer(&deployment, &format!("reviewer{i}"));
    }
    let server = RunningServer::start(&deployment, &settings.load.log);
    let pid = server.pid();
    let addr = server.public_addr();
    let analyst = server.analyst_addr();
    println!(
        "{}: server pid {pid}; rate limits: {limits}; machine: {}",
        mode.name(),
        describe_machine()
    );

    let mut attachment = vec![0u8; settings.attachment_bytes];
    getrandom::fill(&mut attachment).unwrap();
    let form = Arc::new(get_request(addr, "/submit?lang=en"));
    let submission = Arc::new(source_submission(
        addr,
        settings.load.message_bytes,
        &attachment,
    ));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Setup checks, each on a circuit of its own: the form page, a genuine submission, and the
    // sign-in token the flood's wrong receipts carry.
    let token = runtime.block_on(async {
        let (answer, buf) = one_on(addr, mode, SETUP_CIRCUIT - 1, &form, FORM_MARKER).await;
        expect_answer("GET /submit", &answer, &buf, 200);
        let (answer, buf) =
            one_on(addr, mode, SETUP_CIRCUIT - 2, &submission, RECEIPT_MARKER).await;
        expect_answer("a genuine submission", &answer, &buf, 200);
        signin_token(addr, mode).await
    });
    let setup_receipts = 1;

    let circuits = settings.circuits as usize;
    let flood = Arc::new(Flood {
        addr,
        mode,
        requests: FloodRequests::build(addr, &token),
        pool: Mutex::new(Pool {
            idle: (0..circuits).map(|_| Vec::new()).collect(),
            open: vec![0; circuits],
            total: 0,
            cap: settings.sockets,
        }),
        tally: Mutex::new(FloodTally::default()),
        stop: AtomicBool::new(false),
    });

    let started = Instant::now();
    let first_source = started + Duration::from_secs(settings.warmup);
    let progress = Arc::new(Mutex::new(SourceProgress::default()));
    let sources = {
        let (form, submission, progress) = (
            Arc::clone(&form),
            Arc::clone(&submission),
            Arc::clone(&progress),
        );
        let (interval, count, timeout) = (
            settings.interval,
            settings.sources(),
            settings.visit_timeout,
        );
        std::thread::spawn(move || {
            run_sources(
                addr,
                mode,
                first_source,
                interval,
                count,
                form,
                submission,
                timeout,
                progress,
            )
        })
    };

    let (usage, max_rss_kib, max_fds, health_during, flood_seconds, listen_overflows) = runtime
        .block_on(async {
            let mut tasks = vec![tokio::spawn(pace(Arc::clone(&flood), rate, circuits))];
            for j in 0..settings.slow {
                let circuit = (j * 7919) % circuits;
                tasks.push(tokio::spawn(slow_uploads(Arc::clone(&flood), circuit)));
            }
            for j in 0..settings.idle {
                let circuit = (j * 104_729 + 13) % circuits;
                tasks.push(tokio::spawn(idle_connections(
                    Arc::clone(&flood),
                    circuit,
                    j % 2 == 1,
                )));
            }
            let before = UsageSample::now(pid, false);
            let overflows_before = listen_overflows();
            let (mut max_rss, mut max_fds) = (0u64, 0usize);
            let mut last_print = Instant::now();
            // Until the last source is done (it is bounded by its own timeout).
            while !sources.is_finished() {
                tokio::time::sleep(Duration::from_millis(250)).await;
                max_rss = max_rss.max(status_kib(pid, "VmRSS").unwrap_or(0));
                max_fds = max_fds.max(open_descriptors(pid));
                if last_print.elapsed() >= Duration::from_secs(10) {
                    let secs = last_print.elapsed().as_secs_f64();
                    last_print = Instant::now();
                    let (sent, recent) = {
                        let mut t = flood.tally();
                        (
                            std::mem::take(&mut t.recent_sent),
                            std::mem::take(&mut t.recent),
                        )
                    };
                    let p = progress.lock().unwrap();
                    println!(
                        "  {:>3.0} s: flood sent {:.0}/s, outcomes/s: {}; sources {} arrived, {} \
                     receipts, {} without; server VmRSS {:.0} MiB, {} descriptors{}",
                        started.elapsed().as_secs_f64(),
                        sent as f64 / secs,
                        recent
                            .iter()
                            .map(|(k, v)| format!("{k} {:.0}", *v as f64 / secs))
                            .collect::<Vec<_>>()
                            .join(", "),
                        p.arrived,
                        p.receipts,
                        p.failed,
                        mib(status_kib(pid, "VmRSS").unwrap_or(0)),
                        open_descriptors(pid),
                        if alive(pid) { "" } else { "; SERVER GONE" }
                    );
                }
            }
            let usage = before.until(&UsageSample::now(pid, false));
            let overflows = listen_overflows() - overflows_before;
            let health_during = health(analyst).await;
            let flood_seconds = started.elapsed().as_secs_f64();
            flood.stop.store(true, Ordering::Relaxed);
            for task in tasks {
                task.abort();
            }
            (
                usage,
                max_rss,
                max_fds,
                health_during,
                flood_seconds,
                overflows,
            )
        });
    let visits = sources.join().expect("the sources' thread");
    if std::env::var_os("BENCH_PRINT_VISITS").is_some() {
        let ms = |us: Option<u32>| us.map_or(f64::NAN, |us| us as f64 / 1000.0);
        for v in &visits {
            println!(
                "  source at {:>5.1} s: {} after {:.0} ms (connect {:.0}, form {:.0}, submission \
                 {:.0}){}",
                v.arrived.as_secs_f64(),
                v.outcome,
                v.visit_us as f64 / 1000.0,
                ms(v.connect_us),
                ms(v.form_us),
                ms(v.submit_us),
                v.retry_after
                    .as_ref()
                    .map(|r| format!(", Retry-After {r}"))
                    .unwrap_or_default()
            );
        }
    }
    // Whatever the flood still had in flight is dropped with its runtime.
    drop(runtime);
    let tally = std::mem::take(&mut *flood.tally());
    drop(flood);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (after, health_after) = runtime.block_on(async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = visit(
            addr,
            mode,
            SETUP_CIRCUIT - 3,
            Arc::clone(&form),
            Arc::clone(&submission),
            settings.visit_timeout,
            Duration::ZERO,
        )
        .await;
        (after, health(analyst).await)
    });
    let alive = alive(pid);
    let peak_rss_kib = status_kib(pid, "VmHWM").unwrap_or(0);
    let tips_in_database = runtime.block_on(deployment.counts()).tips;
    drop(server);
    keep_log(&deployment, &format!("server-flood-{}.log", mode.name()));
    Report {
        mode,
        limits,
        flood_seconds,
        tally,
        visits,
        after,
        setup_receipts,
        tips_in_database,
        peak_rss_kib,
        max_rss_kib,
        max_fds,
        alive,
        health_during,
        health_after,
        usage,
        listen_overflows,
    }
}
