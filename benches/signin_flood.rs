//! Sign-in flood: does a flood of wrong-password sign-ins slow down the public tip line?
//!
//! `cargo bench --bench signin_flood`
//!
//! The goal: "While 200 concurrent wrong-password sign-ins run, public submission latency
//! (p99) rises by less than 2×."
//!
//! One SQLite deployment (three x25519 reviewer keys, one analyst account, default limits and
//! argon2id parameters) serves on 127.0.0.1. K keep-alive connections post the same text tip
//! as `intake_throughput` (2 KiB message, facts, the empty file input) back to back, in three
//! phases, each a warm-up and then a measured window:
//!
//!   A  baseline: submissions only;
//!   B  flood: the same submissions while 200 connections post wrong-password sign-ins
//!      (`POST /api/v1/session`) to the analyst listener without pause, half of them for the
//!      existing analyst and half for unknown user names;
//!   A' after: submissions only again, once the server is idle: how much the baseline drifted.
//!
//! It reports each phase's submission p50/p90/p99, the ratio p99(B)/p99(A) with PASS/FAIL
//! against 2×, the sign-in attempts answered per second and their statuses (each must be a
//! refusal: `401` after a hash, or `503` when no hashing slot came free in time; a `200`,
//! another `5xx` or a timeout fails the run), the server's CPU (and its busiest
//! threads) and the machine's other load.
//!
//! Tuning (environment):
//!   BENCH_SECONDS=10          measured window per phase
//!   BENCH_WARMUP_SECONDS=2    warm-up before each window (not counted)
//!   BENCH_CONCURRENCY=8       submitting connections
//!   BENCH_ATTACKERS=200       sign-in connections in phase B
//!   BENCH_KEYS=3              reviewer keys (x25519)
//!   BENCH_MESSAGE_BYTES=2048
//!   BENCH_MAX_P99_RATIO=2     the goal
//!   BENCH_SERVER_LOG=info     the server's TIPBOX_LOG; `harness` = the test harness's start()
//!   BENCH_EXTRA_TOML=         added to tipbox.toml (\n for newlines; keys of a section the
//!                             harness writes go under its header), e.g.
//!                             `[analyst]\nmax_concurrent_hashes = 1`
//!   BENCH_KEEP_LOGS=DIR       copy the server log there
//!   BENCH_TIPBOX=             serve (and add the keys and the analyst) with another build
//!
//! Network: only the server's two loopback listeners. Every loop ends with its window (and
//! after at most MAX_REQUESTS_PER_CONNECTION requests); a sign-in still queued when the flood's
//! window ends is given up.

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

/// What a refused sign-in's JSON body says.
const REFUSED_MARKER: &[u8] = b"invalid credentials";
/// How long to wait, at most, for the server to finish the flood's queued hashes.
const SETTLE_LIMIT: Duration = Duration::from_secs(90);

struct Settings {
    load: LoadSettings,
    concurrency: usize,
    attackers: usize,
    max_ratio: f64,
}

fn main() {
    let settings = Settings {
        load: LoadSettings::from_env(),
        concurrency: env_u64("BENCH_CONCURRENCY", 8).max(1) as usize,
        attackers: env_u64("BENCH_ATTACKERS", 200).max(1) as usize,
        max_ratio: std::env::var("BENCH_MAX_P99_RATIO")
            .ok()
            .map(|v| v.trim().parse().expect("BENCH_MAX_P99_RATIO: a number"))
            .unwrap_or(2.0),
    };
    print_preamble("signin_flood");
    println!(
        "settings: sqlite; {} submitting connections; {} sign-in connections in phase B; per \
         phase {}",
        settings.concurrency,
        settings.attackers,
        settings.load.describe()
    );

    let deployment = Deployment::new(Backend::Sqlite, "");
    // Merged into the harness's sections: `[analyst]` is already there.
    add_config(&deployment, &settings.load.extra_toml);
    for i in 0..settings.load.keys {
        add_reviewer(&deployment, &format!("reviewer{i}"));
    }
    let analyst = add_analyst(&deployment, "analyst");
    let username = analyst["username"]
        .as_str()
        .expect("username in analyst add --json")
        .to_owned();
    let password = analyst["password"]
        .as_str()
        .expect("password in analyst add --json")
        .to_owned();
    let server = RunningServer::start(&deployment, &settings.load.log);
    let pid = server.pid();
    let public = server.public_addr();
    let analyst_addr = server.analyst_addr();
    let submit = build_submit_request(public, settings.load.message_bytes);
    let attacks = attack_requests(analyst_addr, &username, &password);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime.block_on(async {
        // Setup checks: one submission and one wrong sign-in of each kind, alone. A setup
        // problem shows here with the server's answer, not as a run of errors.
        let took =
            setup_request(public, &submit, 200, RECEIPT_MARKER, "the first submission").await;
        println!(
            "one submission alone: {:.1} ms",
            took.as_secs_f64() * 1000.0
        );
        for (what, request) in [
            ("existing user", &attacks[0]),
            ("unknown user", &attacks[1]),
        ] {
            let took = setup_request(analyst_addr, request, 401, REFUSED_MARKER, what).await;
            println!(
                "one wrong sign-in alone ({what}): {:.1} ms (401)",
                took.as_secs_f64() * 1000.0
            );
        }

        let a = phase("A", public, &submit, None, &settings, pid).await;
        println!("{}", a.line());
        let b = phase(
            "B",
            public,
            &submit,
            Some((analyst_addr, &attacks)),
            &settings,
            pid,
        )
        .await;
        println!("{}", b.line());
        let settled = settle(pid).await;
        println!(
            "server idle again {:.1} s after the flood's window",
            settled.as_secs_f64()
        );
        let after = phase("A'", public, &submit, None, &settings, pid).await;
        println!("{}", after.line());
        (a, b, after)
    });
    let (a, b, after) = outcome;
    let tips_in_database = runtime.block_on(deployment.counts()).tips;
    // +1: the setup submission.
    let receipts_total = a.submits.good_total + b.submits.good_total + after.submits.good_total + 1;
    drop(server);
    if let Ok(dir) = std::env::var("BENCH_KEEP_LOGS") {
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::copy(
            &deployment.log_path,
            Path::new(&dir).join("server-signin-flood.log"),
        );
    }

    println!();
    println!(
        "| phase | sign-in connections | tips/s | p50 ms | p90 ms | p99 ms | max ms | other answers | sign-ins/s | sign-in answers | sign-in p50 ms | server CPU (cores) | client CPU | machine busy | other load (cores) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for p in [&a, &b, &after] {
        println!("{}", p.row());
    }
    println!();

    let ratio = b.submits.percentile_ms(99.0) / a.submits.percentile_ms(99.0);
    // Two decimals, or three where two would round onto the limit.
    let shown = |r: f64| {
        if (r - settings.max_ratio).abs() < 0.005 {
            format!("{r:.3}")
        } else {
            format!("{r:.2}")
        }
    };
    let ratio_after = b.submits.percentile_ms(99.0) / after.submits.percentile_ms(99.0);
    let mut failures = Vec::new();
    if ratio.partial_cmp(&settings.max_ratio) != Some(std::cmp::Ordering::Less) {
        failures.push(format!(
            "p99 rose {}× (goal: under {}×)",
            shown(ratio),
            settings.max_ratio
        ));
    }
    for p in [&a, &b, &after] {
        if !p.submits.other.is_empty() {
            failures.push(format!(
                "phase {}: submissions answered {}",
                p.name,
                p.submits.other_text()
            ));
        }
    }
    let flood = b.attacks.as_ref().expect("phase B has a flood");
    // Two answers refuse a wrong sign-in: `401 invalid credentials` after a hash, and `503`
    // "too many sign-ins at once" when no hashing slot came free within the server's wait.
    // The second is load shedding, by design: a bounded hash queue has to turn the overflow
    // away, and it does so before looking at the name or the password, so it tells a guesser
    // nothing. Anything else (a 200, another 5xx, a timeout) fails the run.
    let busy = flood.statuses.get(&503).copied().unwrap_or(0);
    let not_refused: BTreeMap<String, u64> = flood
        .other
        .iter()
        .filter(|(what, _)| what.as_str() != "HTTP 503")
        .map(|(what, count)| (what.clone(), *count))
        .collect();
    if !not_refused.is_empty() {
        failures.push(format!(
            "sign-ins answered other than 401 or 503: {}",
            tally(&not_refused)
        ));
    }
    if busy > 0 {
        println!("{busy} sign-ins were turned away with 503 (no hashing slot in time)");
    }
    if flood.good_in_window == 0 {
        failures.push("no sign-in was answered in the flood's window".to_owned());
    }
    if tips_in_database as u64 != receipts_total {
        failures.push(format!(
            "tips in database {tips_in_database} ≠ receipts {receipts_total}"
        ));
    }
    println!(
        "submission p99: A {:.1} ms, B {:.1} ms, A' {:.1} ms; p99(B)/p99(A) = {}× \
         (p99(B)/p99(A') = {ratio_after:.2}×); sign-ins in B: {:.1}/s, answers {}; tips in \
         database {tips_in_database} = receipts {receipts_total}: {}",
        a.submits.percentile_ms(99.0),
        b.submits.percentile_ms(99.0),
        after.submits.percentile_ms(99.0),
        shown(ratio),
        flood.statuses.values().sum::<u64>() as f64 / b.usage.seconds,
        flood.statuses_text(),
        if tips_in_database as u64 == receipts_total {
            "ok"
        } else {
            "MISMATCH"
        }
    );
    if failures.is_empty() {
        println!(
            "PASS: while {} wrong-password sign-ins ran, submission p99 rose {}× (< {}×)",
            settings.attackers,
            shown(ratio),
            settings.max_ratio
        );
    } else {
        println!("FAIL: {}", failures.join("; "));
    }
    require_every_receipt_stored(receipts_total, tips_in_database);
}

/// Wrong-password sign-ins, in turn: the existing analyst with a wrong password, then an
/// unknown user name (a valid one, so that it is looked up), and so on. Every attacking
/// connection starts at a different one, so about half of the attempts at any moment are for
/// the existing account.
fn attack_requests(addr: SocketAddr, username: &str, password: &str) -> Vec<Vec<u8>> {
    let wrong = |n: usize| {
        // As long as a real password, never the real one.
        let mut guess = format!("guess-{n}-{}", "x".repeat(password.len().saturating_sub(8)));
        if guess == password {
            guess.push('!');
        }
        guess
    };
    let mut requests = Vec::new();
    for (n, unknown) in ["m.chen-ops", "reviewer2", "admin", "j_doe"]
        .into_iter()
        .enumerate()
    {
        assert_ne!(unknown, username);
        for user in [username, unknown] {
            requests.push(build_json_post(
                addr,
                "/api/v1/session",
                &serde_json::json!({
                    "username": user,
                    "password": wrong(n),
                    "totp": format!("{:06}", 123_456 + n),
                }),
            ));
        }
    }
    requests
}

struct Phase {
    name: &'static str,
    attackers: usize,
    submits: ConnStats,
    attacks: Option<ConnStats>,
    usage: Usage,
    threads: Vec<(u32, String, i64, f64, f64)>,
}

impl Phase {
    fn tips_per_second(&self) -> f64 {
        self.submits.good_in_window as f64 / self.usage.seconds
    }

    fn signins_per_second(&self) -> Option<f64> {
        self.attacks
            .as_ref()
            .map(|s| s.statuses.values().sum::<u64>() as f64 / self.usage.seconds)
    }

    fn line(&self) -> String {
        let s = &self.submits;
        let secs = self.usage.seconds;
        format!(
            "phase {:<2} {:>7.1} tips/s  p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms  \
             receipts {}  other answers: {}{}  server CPU {:.2} cores ({:.0} page faults/s)  client CPU {:.2} \
             cores  machine busy {:.0}% (other load {:.2} cores)\n         server CPU by thread: {}",
            self.name,
            self.tips_per_second(),
            s.percentile_ms(50.0),
            s.percentile_ms(90.0),
            s.percentile_ms(99.0),
            s.percentile_ms(100.0),
            s.good_in_window,
            s.other_text(),
            match &self.attacks {
                Some(f) => format!(
                    "  |  sign-ins: {} connections, {:.1}/s answered ({}), p50 {:.0} ms, \
                     given up at the end {}, other: {}  |",
                    self.attackers,
                    self.signins_per_second().unwrap_or(0.0),
                    f.statuses_text(),
                    f.percentile_ms(50.0),
                    f.unfinished,
                    f.other_text()
                ),
                None => String::new(),
            },
            self.usage.server_cpu / secs,
            self.usage.server_faults as f64 / secs,
            self.usage.client_cpu / secs,
            self.usage.machine_busy * 100.0,
            self.usage.other_load(),
            describe_threads(&self.threads, self.usage.server_cpu / secs)
        )
    }

    fn row(&self) -> String {
        let s = &self.submits;
        let (rate, answers, p50) = match &self.attacks {
            Some(f) => (
                format!("{:.1}", self.signins_per_second().unwrap_or(0.0)),
                f.statuses_text(),
                format!("{:.0}", f.percentile_ms(50.0)),
            ),
            None => ("–".to_owned(), "–".to_owned(), "–".to_owned()),
        };
        format!(
            "| {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {rate} | {answers} | {p50} | {:.2} | {:.2} | {:.0}% | {:.2} |",
            self.name,
            self.attackers,
            self.tips_per_second(),
            s.percentile_ms(50.0),
            s.percentile_ms(90.0),
            s.percentile_ms(99.0),
            s.percentile_ms(100.0),
            s.other_text(),
            self.usage.server_cpu / self.usage.seconds,
            self.usage.client_cpu / self.usage.seconds,
            self.usage.machine_busy * 100.0,
            self.usage.other_load()
        )
    }
}

/// One phase: the submitters (and, with `flood`, the attackers, started at the same moment)
/// for a warm-up and a measured window.
async fn phase(
    name: &'static str,
    public: SocketAddr,
    submit: &[u8],
    flood: Option<(SocketAddr, &Vec<Vec<u8>>)>,
    settings: &Settings,
    server_pid: u32,
) -> Phase {
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(settings.load.warmup);
    let until = measure_from + Duration::from_secs(settings.load.seconds);
    let sampler = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        let before = (
            UsageSample::now(server_pid, false),
            thread_samples(server_pid),
        );
        tokio::time::sleep_until(until.into()).await;
        let after = (
            UsageSample::now(server_pid, false),
            thread_samples(server_pid),
        );
        let usage = before.0.until(&after.0);
        let threads = thread_usage(&before.1, &after.1, usage.seconds);
        (usage, threads)
    });
    let attackers = flood.map(|(addr, requests)| {
        let load = Arc::new(Load {
            addr,
            requests: requests.clone(),
            good_status: 401,
            marker: REFUSED_MARKER,
            measure_from,
            until,
            // Sign-ins queue behind the hashing limit for many seconds: the flood stops with
            // the window, whatever is still queued.
            give_up_at: Some(until),
        });
        tokio::spawn(run_connections(load, settings.attackers))
    });
    let submitters = Arc::new(Load {
        addr: public,
        requests: vec![submit.to_vec()],
        good_status: 200,
        marker: RECEIPT_MARKER,
        measure_from,
        until,
        give_up_at: None,
    });
    let submits = run_connections(submitters, settings.concurrency).await;
    let attacks = match attackers {
        Some(task) => Some(task.await.expect("attackers")),
        None => None,
    };
    let (usage, threads) = sampler.await.unwrap();
    Phase {
        name,
        attackers: if attacks.is_some() {
            settings.attackers
        } else {
            0
        },
        submits,
        attacks,
        usage,
        threads,
    }
}

/// Waits (at most `SETTLE_LIMIT`) until the server has used under 2 % of a core for half a
/// second: the hashes the flood queued are done.
async fn settle(pid: u32) -> Duration {
    let started = Instant::now();
    let mut last = process_cpu_seconds(pid);
    while started.elapsed() < SETTLE_LIMIT {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = process_cpu_seconds(pid);
        if now - last < 0.01 {
            break;
        }
        last = now;
    }
    started.elapsed()
}
