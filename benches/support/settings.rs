//! Tuning by environment, and what a benchmark needs before it starts: a backend by name, and
//! (for PostgreSQL) the harness's database on loopback — or a clear failure.

use std::time::Duration;

use crate::harness::{Backend, postgres_base_url};

pub fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

pub fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The backend named in `BENCH_BACKENDS`.
pub fn backend_named(name: &str) -> Backend {
    match name {
        "sqlite" => Backend::Sqlite,
        "postgres" | "postgresql" | "pg" => Backend::Postgres,
        other => panic!("unknown backend {other:?} (sqlite or postgres)"),
    }
}

/// Whether the harness's PostgreSQL (`TIPBOX_TEST_POSTGRES_URL`, default 127.0.0.1:5432) is on
/// loopback and accepts connections. Benchmarks never talk to another host, so a URL naming
/// one is refused here (before the harness, which would panic, is asked for a deployment).
pub fn postgres_reachable() -> Result<(), String> {
    let url = postgres_base_url();
    let host_port = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(&url)
        .rsplit_once('@')
        .map(|(_, hp)| hp)
        .unwrap_or_else(|| url.split_once("://").map(|(_, r)| r).unwrap_or(&url));
    let host_port = host_port.split(['/', '?']).next().unwrap_or("");
    let (host, port) = host_port.rsplit_once(':').unwrap_or((host_port, "5432"));
    if !matches!(host, "127.0.0.1" | "localhost") {
        return Err(format!(
            "PostgreSQL host {host:?} is not loopback; benchmarks only use 127.0.0.1"
        ));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("bad port in {host_port:?}"))?;
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )
    .map(|_| ())
    .map_err(|e| format!("nothing accepts connections on 127.0.0.1:{port}: {e}"))
}

/// The first lines of every benchmark's output: which binary serves, and what else the
/// machine is doing.
pub fn print_preamble(benchmark: &str) {
    println!(
        "{benchmark}: tipbox = {}{}",
        crate::harness::TIPBOX,
        std::env::var("BENCH_TIPBOX")
            .map(|b| format!(" (serving with BENCH_TIPBOX={b})"))
            .unwrap_or_default()
    );
    println!("machine: {}", crate::support::proc::describe_machine());
}

/// Ends the benchmark with a failure (exit status 1) and why, after whatever it has printed.
pub fn fail(why: &str) -> ! {
    eprintln!("FAILED: {why}");
    std::process::exit(1)
}

/// The harness's PostgreSQL, which must be there: without it a benchmark that was asked for
/// PostgreSQL fails rather than report figures for SQLite alone.
pub fn require_postgres() {
    if let Err(why) = postgres_reachable() {
        fail(&format!(
            "PostgreSQL was asked for (TIPBOX_TEST_POSTGRES_URL, default 127.0.0.1:5432) and \
             is not usable: {why}"
        ));
    }
}

/// Every receipt shown must be a stored tip, and every stored tip one that was answered with
/// a receipt: otherwise the figures are of work that was not done, and the benchmark fails.
pub fn require_every_receipt_stored(receipts: u64, tips_in_database: i64) {
    if u64::try_from(tips_in_database) != Ok(receipts) {
        fail(&format!(
            "tips in the database ({tips_in_database}) ≠ receipts received ({receipts})"
        ));
    }
}

/// What every load benchmark reads from the environment: the measured window and warm-up, the
/// deployment's reviewer keys, the message size, the server's log level and extra settings.
pub struct LoadSettings {
    /// `BENCH_SECONDS` (10): the measured window.
    pub seconds: u64,
    /// `BENCH_WARMUP_SECONDS` (2): before it, not counted.
    pub warmup: u64,
    /// `BENCH_KEYS` (3): x25519 reviewer keys.
    pub keys: u64,
    /// `BENCH_MESSAGE_BYTES` (2048).
    pub message_bytes: usize,
    /// `BENCH_SERVER_LOG` (`info`): the server's `TIPBOX_LOG`, or `harness`.
    pub log: String,
    /// `BENCH_EXTRA_TOML`: added to `tipbox.toml` (`\n` for newlines).
    pub extra_toml: String,
}

impl LoadSettings {
    pub fn from_env() -> Self {
        Self {
            seconds: env_u64("BENCH_SECONDS", 10).max(1),
            warmup: env_u64("BENCH_WARMUP_SECONDS", 2),
            keys: env_u64("BENCH_KEYS", 3).max(1),
            message_bytes: env_u64("BENCH_MESSAGE_BYTES", 2048).max(1) as usize,
            log: server_log(),
            extra_toml: std::env::var("BENCH_EXTRA_TOML")
                .unwrap_or_default()
                .replace("\\n", "\n"),
        }
    }

    /// `10 s measured after 2 s warm-up; 3 x25519 reviewer keys; …`, for the output's header.
    pub fn describe(&self) -> String {
        format!(
            "{} s measured after {} s warm-up; {} x25519 reviewer keys; {} B message; server \
             TIPBOX_LOG={}{}",
            self.seconds,
            self.warmup,
            self.keys,
            self.message_bytes,
            self.log,
            if self.extra_toml.is_empty() {
                String::new()
            } else {
                format!("; extra config {:?}", self.extra_toml)
            }
        )
    }
}

/// `BENCH_SERVER_LOG` (`info`): the server's `TIPBOX_LOG`; `harness` starts it as the tests do.
pub fn server_log() -> String {
    std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "info".to_owned())
}
