//! What the benchmarks share: starting the server (at the production log level, or through the
//! test harness), adding reviewer keys and analyst accounts, a cheap raw-HTTP load client,
//! reading CPU time and memory (of the process and of each of its threads) from /proc, and
//! tuning by environment.
//!
//! Everything here talks only to 127.0.0.1 and to /proc of this machine.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{Deployment, Server, TIPBOX, strip_ansi};

/// Linux reports process CPU time in USER_HZ ticks, which is 100 on every architecture.
const TICKS_PER_SECOND: f64 = 100.0;

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

/// A running `tipbox serve`, started either by the test harness (`TIPBOX_LOG=debug`, stderr
/// copied to the log file through a thread of this process) or directly at a chosen log level
/// with stderr written straight to the deployment's log file (`BENCH_TIPBOX` may then name
/// another build of the binary to serve with).
pub enum RunningServer {
    Harness(Server),
    Direct {
        child: Child,
        public: String,
        analyst: String,
    },
}

impl RunningServer {
    /// `log` is the server's `TIPBOX_LOG`; `"harness"` means `Deployment::start()` as the tests
    /// use it.
    pub fn start(deployment: &Deployment, log: &str) -> Self {
        if log == "harness" {
            return Self::Harness(deployment.start());
        }
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&deployment.log_path)
            .unwrap();
        let already = std::fs::metadata(&deployment.log_path)
            .map(|m| m.len())
            .unwrap_or(0) as usize;
        // BENCH_TIPBOX runs another build of `tipbox serve` (an experiment, an older commit)
        // against the same deployment (`add_reviewer` below uses it too).
        let binary = std::env::var("BENCH_TIPBOX").unwrap_or_else(|_| TIPBOX.to_owned());
        let mut child = Command::new(binary)
            .arg("--config")
            .arg(&deployment.config_path)
            .arg("serve")
            .env_remove("TIPBOX_CONFIG")
            .env("TIPBOX_LOG", log)
            .current_dir(deployment.path())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&deployment.log_path).unwrap_or_default();
            let fresh = text.get(already..).unwrap_or("");
            let listener = |marker: &str| {
                fresh.lines().map(strip_ansi).find_map(|line| {
                    line.find(marker)
                        .map(|at| line[at + marker.len()..].trim().to_owned())
                })
            };
            if let (Some(public), Some(analyst)) = (
                listener("public listener on "),
                listener("analyst listener on "),
            ) {
                return Self::Direct {
                    child,
                    public,
                    analyst,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("tipbox serve exited ({status}); log:\n{fresh}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("tipbox serve did not start in 30 s; log:\n{fresh}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        match self {
            Self::Harness(server) => server.pid(),
            Self::Direct { child, .. } => child.id(),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn public_url(&self) -> &str {
        match self {
            Self::Harness(server) => &server.public,
            Self::Direct { public, .. } => public,
        }
    }

    /// `http://127.0.0.1:PORT` of the analyst listener.
    pub fn analyst_url(&self) -> &str {
        match self {
            Self::Harness(server) => &server.analyst,
            Self::Direct { analyst, .. } => analyst,
        }
    }

    /// `127.0.0.1:PORT`, refusing anything that is not loopback.
    pub fn public_addr(&self) -> SocketAddr {
        loopback_addr(self.public_url())
    }

    /// The analyst listener's `127.0.0.1:PORT`, refusing anything that is not loopback.
    pub fn analyst_addr(&self) -> SocketAddr {
        loopback_addr(self.analyst_url())
    }
}

/// `http://127.0.0.1:PORT` → the address; panics on anything that is not loopback.
pub fn loopback_addr(url: &str) -> SocketAddr {
    let addr: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|_| panic!("listener {url:?} is not an address"));
    assert!(addr.ip().is_loopback(), "benchmarks only talk to loopback");
    addr
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Self::Direct { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Adds an x25519 reviewer key: with the harness (`Deployment::add_reviewer`), or, when
/// `BENCH_TIPBOX` names another build, with that build (its schema may differ).
pub fn add_reviewer(deployment: &Deployment, name: &str) {
    let Ok(binary) = std::env::var("BENCH_TIPBOX") else {
        deployment.add_reviewer(name);
        return;
    };
    let recipient = age::x25519::Identity::generate().to_public().to_string();
    let out = Command::new(&binary)
        .arg("--config")
        .arg(&deployment.config_path)
        .args(["keys", "add", &recipient, "--label", name])
        .env_remove("TIPBOX_CONFIG")
        .current_dir(deployment.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{binary} keys add failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Adds an analyst account (`tipbox analyst add NAME --json`, with the `BENCH_TIPBOX` build
/// when set) and returns what it prints once: `{"username", "password", "totp_secret",
/// "otpauth_uri"}`.
pub fn add_analyst(deployment: &Deployment, name: &str) -> serde_json::Value {
    let binary = std::env::var("BENCH_TIPBOX").unwrap_or_else(|_| TIPBOX.to_owned());
    let out = Command::new(&binary)
        .arg("--config")
        .arg(&deployment.config_path)
        .args(["analyst", "add", name, "--json"])
        .env_remove("TIPBOX_CONFIG")
        .current_dir(deployment.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{binary} analyst add failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("`analyst add --json` prints one JSON object")
}

/// Adds `extra` (TOML) to the deployment's `tipbox.toml`. Keys under a `[section]` the file
/// already has (the harness writes `[public]`, `[analyst]`, `[storage]`, `[database]`,
/// `[keys]`) go right under its header, since TOML allows each header once; other sections
/// are appended.
pub fn add_config(deployment: &Deployment, extra: &str) {
    let mut lines: Vec<String> = std::fs::read_to_string(&deployment.config_path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let mut appended = Vec::new();
    let mut block: (Option<String>, Vec<String>) = (None, Vec::new());
    let mut flush = |lines: &mut Vec<String>, block: &mut (Option<String>, Vec<String>)| {
        let (header, body) = (block.0.take(), std::mem::take(&mut block.1));
        let at = header
            .as_ref()
            .and_then(|h| lines.iter().position(|l| l.trim() == h.as_str()));
        match (header, at) {
            (Some(_), Some(at)) => {
                for (i, line) in body.into_iter().enumerate() {
                    lines.insert(at + 1 + i, line);
                }
            }
            (Some(h), None) => {
                appended.push(h);
                appended.extend(body);
            }
            (None, _) => {
                assert!(
                    body.iter().all(|l| l.trim().is_empty()),
                    "extra config must start with a [section] header: {extra:?}"
                );
            }
        }
    };
    for line in extra.lines() {
        if line.trim_start().starts_with('[') {
            flush(&mut lines, &mut block);
            block.0 = Some(line.trim().to_owned());
        } else {
            block.1.push(line.to_owned());
        }
    }
    flush(&mut lines, &mut block);
    lines.extend(appended);
    std::fs::write(&deployment.config_path, lines.join("\n") + "\n").unwrap();
}

/// User + system CPU time a process has used so far, in seconds.
pub fn process_cpu_seconds(pid: u32) -> f64 {
    stat_cpu_seconds(&format!("/proc/{pid}/stat"))
}

/// Minor page faults a process has taken so far (`minflt`, field 10 of stat(5)).
pub fn minor_faults(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(10 - 3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// utime + stime of a `/proc/…/stat` file (a process's or a thread's), in seconds.
fn stat_cpu_seconds(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")": state is field 3 of stat(5), utime 14 and stime 15.
    let tick = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(14) + tick(15)) / TICKS_PER_SECOND
}

/// One thread of a process at one moment: its name, CPU time and how often it was preempted.
#[derive(Debug, Clone)]
pub struct ThreadSample {
    pub name: String,
    pub cpu_seconds: f64,
    /// `nonvoluntary_ctxt_switches`: taken off the CPU while it still wanted to run.
    pub preempted: u64,
    pub nice: i64,
}

/// Every thread of `pid`, by thread id.
pub fn thread_samples(pid: u32) -> BTreeMap<u32, ThreadSample> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for tid in dir
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
    {
        let base = format!("/proc/{pid}/task/{tid}");
        let name = std::fs::read_to_string(format!("{base}/comm"))
            .unwrap_or_default()
            .trim()
            .to_owned();
        let status = std::fs::read_to_string(format!("{base}/status")).unwrap_or_default();
        let preempted = status
            .lines()
            .find_map(|l| l.strip_prefix("nonvoluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let stat = std::fs::read_to_string(format!("{base}/stat")).unwrap_or_default();
        // Field 19 of stat(5) is the nice value.
        let nice = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(19 - 3))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        out.insert(
            tid,
            ThreadSample {
                name,
                cpu_seconds: stat_cpu_seconds(&format!("{base}/stat")),
                preempted,
                nice,
            },
        );
    }
    out
}

/// Per-thread CPU (cores) and preemptions (per second) between two samples, busiest first.
pub fn thread_usage(
    before: &BTreeMap<u32, ThreadSample>,
    after: &BTreeMap<u32, ThreadSample>,
    seconds: f64,
) -> Vec<(u32, String, i64, f64, f64)> {
    let mut rows: Vec<_> = after
        .iter()
        .map(|(tid, a)| {
            let (cpu0, pre0) = before
                .get(tid)
                .map(|b| (b.cpu_seconds, b.preempted))
                .unwrap_or((0.0, 0));
            (
                *tid,
                a.name.clone(),
                a.nice,
                (a.cpu_seconds - cpu0) / seconds,
                a.preempted.saturating_sub(pre0) as f64 / seconds,
            )
        })
        .collect();
    rows.sort_by(|x, y| y.3.total_cmp(&x.3));
    rows
}

/// CPU by thread name (threads of one name added up), busiest first:
/// `tokio-rt-worker ×14 0.93 cores (410 preemptions/s)`, then what threads that ended during
/// the window used (`process_cores` is the whole process's CPU over the same window).
pub fn describe_threads(rows: &[(u32, String, i64, f64, f64)], process_cores: f64) -> String {
    let mut groups: BTreeMap<(String, i64), (usize, f64, f64)> = BTreeMap::new();
    for (_, name, nice, cores, pre) in rows {
        let g = groups.entry((name.clone(), *nice)).or_default();
        g.0 += 1;
        g.1 += cores;
        g.2 += pre;
    }
    let mut groups: Vec<_> = groups.into_iter().filter(|(_, g)| g.1 >= 0.005).collect();
    groups.sort_by(|x, y| y.1.1.total_cmp(&x.1.1));
    let listed: f64 = rows.iter().map(|r| r.3).sum();
    let mut parts: Vec<String> = groups
        .iter()
        .map(|((name, nice), (n, cores, pre))| {
            format!(
                "{name}{}{} {cores:.2} cores ({pre:.0} preemptions/s)",
                if *n > 1 {
                    format!(" ×{n}")
                } else {
                    String::new()
                },
                if *nice != 0 {
                    format!(" (nice {nice})")
                } else {
                    String::new()
                }
            )
        })
        .collect();
    let ended = process_cores - listed;
    if ended >= 0.02 {
        parts.push(format!("threads that ended in the window {ended:.2} cores"));
    }
    parts.join(", ")
}

/// CPU time of every process whose command name is `name` (e.g. the PostgreSQL backends).
pub fn cpu_seconds_of_all(name: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name)
        })
        .map(process_cpu_seconds)
        .sum()
}

/// (busy, total) jiffies of the whole machine, from the first line of /proc/stat.
pub fn machine_cpu() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = stat.lines().next().unwrap_or("");
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Fraction of all cores busy between two `machine_cpu()` readings.
pub fn machine_busy(before: (u64, u64), after: (u64, u64)) -> f64 {
    let busy = after.0.saturating_sub(before.0) as f64;
    let total = after.1.saturating_sub(before.1) as f64;
    if total > 0.0 { busy / total } else { 0.0 }
}

/// A field of /proc/PID/status in KiB (`VmRSS`, `VmHWM`, …).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Resets the process's VmHWM (peak RSS) to its current RSS (Linux ≥ 4.0); false if refused.
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// What else is running, so that figures can be read with the machine's load in mind.
pub fn describe_machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let busy_compilers = busy_processes(&["rustc", "cargo", "cc", "ld", "clippy-driver"]);
    format!(
        "{cores} cores ({model}); loadavg {}; compilers running now: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        if busy_compilers == 0 {
            "none".to_owned()
        } else {
            busy_compilers.to_string()
        }
    )
}

fn busy_processes(names: &[&str]) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| names.contains(&c.trim()))
        })
        .count()
}

/// The backend named in `BENCH_BACKENDS`.
pub fn backend_named(name: &str) -> crate::common::Backend {
    match name {
        "sqlite" => crate::common::Backend::Sqlite,
        "postgres" | "postgresql" | "pg" => crate::common::Backend::Postgres,
        other => panic!("unknown backend {other:?} (sqlite or postgres)"),
    }
}

/// Whether the harness's PostgreSQL (`TIPBOX_TEST_POSTGRES_URL`, default 127.0.0.1:5432) is on
/// loopback and accepts connections. Benchmarks never talk to another host, so a URL naming
/// one is refused here (before the harness, which would panic, is asked for a deployment).
pub fn postgres_reachable() -> Result<(), String> {
    let url = crate::common::postgres_base_url();
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

pub fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Cores of this machine.
pub fn cores() -> f64 {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64
}

/// CPU readings at one moment: the server, PostgreSQL, this benchmark process and the machine.
#[derive(Debug, Clone, Copy)]
pub struct UsageSample {
    server: f64,
    server_faults: u64,
    postgres: f64,
    client: f64,
    machine: (u64, u64),
    at: Instant,
}

impl UsageSample {
    pub fn now(server_pid: u32, with_postgres: bool) -> Self {
        Self {
            server: process_cpu_seconds(server_pid),
            server_faults: minor_faults(server_pid),
            postgres: if with_postgres {
                cpu_seconds_of_all("postgres")
            } else {
                0.0
            },
            client: process_cpu_seconds(std::process::id()),
            machine: machine_cpu(),
            at: Instant::now(),
        }
    }

    /// What was used between this sample and a later one.
    pub fn until(&self, later: &Self) -> Usage {
        Usage {
            server_cpu: later.server - self.server,
            server_faults: later.server_faults.saturating_sub(self.server_faults),
            postgres_cpu: later.postgres - self.postgres,
            client_cpu: later.client - self.client,
            machine_busy: machine_busy(self.machine, later.machine),
            seconds: (later.at - self.at).as_secs_f64(),
        }
    }
}

/// CPU used over a window: seconds of CPU, and the machine's busy share.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub server_cpu: f64,
    /// Minor page faults of the server (memory it touched for the first time).
    pub server_faults: u64,
    pub postgres_cpu: f64,
    pub client_cpu: f64,
    pub machine_busy: f64,
    pub seconds: f64,
}

impl Usage {
    /// Cores kept busy by everything but the server, PostgreSQL and this client.
    pub fn other_load(&self) -> f64 {
        if self.seconds <= 0.0 {
            return 0.0;
        }
        (self.machine_busy * cores()
            - (self.server_cpu + self.postgres_cpu + self.client_cpu) / self.seconds)
            .max(0.0)
    }
}

// The load client. It is built to cost next to nothing, so that the figures are the server's:
// each request is built once and written raw over keep-alive connections, the answer is parsed
// just enough to find its status, its length and a marker, and the connections share one
// current-thread Tokio runtime.

/// A request that takes longer than this is counted as timed out and its connection dropped.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// A hard cap on requests per connection and run, on top of the time bound.
pub const MAX_REQUESTS_PER_CONNECTION: u64 = 1_000_000;
/// What an accepted submission's page holds.
pub const RECEIPT_MARKER: &[u8] = b"id=\"receipt\"";

/// What one kind of load sends and what counts as a good answer.
pub struct Load {
    pub addr: SocketAddr,
    /// Sent in turn on each connection; connection `i` starts with request `i % len`.
    pub requests: Vec<Vec<u8>>,
    /// A good answer has this status and holds `marker`.
    pub good_status: u16,
    pub marker: &'static [u8],
    /// Answers received from here to `until` are counted; no request is sent after `until`.
    pub measure_from: Instant,
    pub until: Instant,
    /// A request still unanswered at this time is given up and counted as `unfinished`, not as
    /// an error (for load the server may queue for long, which must still stop with the
    /// window). `None`: wait up to `REQUEST_TIMEOUT`.
    pub give_up_at: Option<Instant>,
}

/// What the connections of one `Load` saw.
#[derive(Default)]
pub struct ConnStats {
    pub connections_opened: u64,
    /// Good answers received in the window.
    pub good_in_window: u64,
    /// Good answers received at any time (warm-up included).
    pub good_total: u64,
    /// Latency of each good answer in the window, in µs (sorted by `run_connections`).
    pub latencies_us: Vec<u32>,
    /// Status of every answer received in the window, good or not.
    pub statuses: BTreeMap<u16, u64>,
    /// In the window: answers that were not good (`HTTP 500`, …), errors and timeouts.
    pub other: BTreeMap<String, u64>,
    /// Requests given up at `give_up_at` without an answer.
    pub unfinished: u64,
}

impl ConnStats {
    fn other(&mut self, what: String) {
        *self.other.entry(what).or_default() += 1;
    }

    pub fn merge(&mut self, more: ConnStats) {
        self.connections_opened += more.connections_opened;
        self.good_in_window += more.good_in_window;
        self.good_total += more.good_total;
        self.latencies_us.extend(more.latencies_us);
        for (k, v) in more.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        for (k, v) in more.other {
            *self.other.entry(k).or_default() += v;
        }
        self.unfinished += more.unfinished;
    }

    /// `p`-th percentile (0–100) of the good answers' latency, in ms (NaN when there are none).
    pub fn percentile_ms(&self, p: f64) -> f64 {
        percentile_ms(&self.latencies_us, p)
    }

    /// The answers and failures that were not good: `HTTP 503×2, timeout×1`, or `none`.
    pub fn other_text(&self) -> String {
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

    /// Every status received in the window: `401×130, 500×2`, or `none`.
    pub fn statuses_text(&self) -> String {
        if self.statuses.is_empty() {
            "none".to_owned()
        } else {
            self.statuses
                .iter()
                .map(|(k, v)| format!("{k}×{v}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
}

/// `p`-th percentile (0–100) of sorted latencies in µs, in ms (nearest rank; NaN if empty).
pub fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted_us.len() - 1) as f64).round() as usize;
    sorted_us[rank] as f64 / 1000.0
}

/// Runs `connections` keep-alive connections of `load` on the current runtime until its window
/// ends, and adds up what they saw (latencies sorted).
pub async fn run_connections(load: Arc<Load>, connections: usize) -> ConnStats {
    let tasks: Vec<_> = (0..connections)
        .map(|i| tokio::spawn(connection(Arc::clone(&load), i)))
        .collect();
    let mut total = ConnStats::default();
    for task in tasks {
        total.merge(task.await.expect("client task"));
    }
    total.latencies_us.sort_unstable();
    total
}

/// One keep-alive connection sending `load`'s requests back to back until `load.until`.
pub async fn connection(load: Arc<Load>, index: usize) -> ConnStats {
    let mut stats = ConnStats::default();
    let mut stream: Option<TcpStream> = None;
    let mut buf = Vec::with_capacity(16 * 1024);
    for n in 0..MAX_REQUESTS_PER_CONNECTION {
        if Instant::now() >= load.until {
            break;
        }
        let conn = match stream.as_mut() {
            Some(conn) => conn,
            None => {
                match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(load.addr))
                    .await
                {
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
        let request = &load.requests[(index + n as usize) % load.requests.len()];
        let sent = Instant::now();
        let deadline = match load.give_up_at {
            Some(at) => at.min(sent + REQUEST_TIMEOUT),
            None => sent + REQUEST_TIMEOUT,
        };
        let outcome = tokio::time::timeout_at(
            deadline.into(),
            exchange(conn, request, load.marker, &mut buf),
        )
        .await;
        let done = Instant::now();
        let in_window = done >= load.measure_from && done <= load.until;
        match outcome {
            Ok(Ok(answer)) => {
                if in_window {
                    *stats.statuses.entry(answer.status).or_default() += 1;
                }
                if answer.status == load.good_status && answer.marker {
                    stats.good_total += 1;
                    if in_window {
                        stats.good_in_window += 1;
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
            Err(_) if load.give_up_at.is_some_and(|at| done >= at) => {
                // The connection is dropped with the request still in the server's queue.
                stats.unfinished += 1;
                break;
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

/// The parts of an answer the load client looks at.
pub struct Answer {
    pub status: u16,
    /// Whether the body holds the marker.
    pub marker: bool,
    /// The server will close the connection after this answer.
    pub close: bool,
}

/// Writes the request and reads one answer into `buf`.
pub async fn exchange(
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
    let marker = find(&buf[head_end..], marker).is_some();
    Ok(Answer {
        status,
        marker,
        close,
    })
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One request and its answer on a fresh connection (a setup check before the load starts).
pub async fn one_request(
    addr: SocketAddr,
    request: &[u8],
    marker: &[u8],
) -> (Answer, Vec<u8>, Duration) {
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("connect to the server");
    let mut buf = Vec::new();
    let started = Instant::now();
    let answer = tokio::time::timeout(
        REQUEST_TIMEOUT,
        exchange(&mut stream, request, marker, &mut buf),
    )
    .await
    .expect("request timed out")
    .expect("request failed");
    (answer, buf, started.elapsed())
}

/// The whole HTTP request for a text tip: headers and a multipart body as Tor Browser would
/// send the form (a `message_bytes` message in English and Chinese, the four facts fields and
/// the empty file input).
pub fn build_submit_request(addr: SocketAddr, message_bytes: usize) -> Vec<u8> {
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

/// A JSON `POST` request, as raw bytes.
pub fn build_json_post(addr: SocketAddr, path: &str, body: &serde_json::Value) -> Vec<u8> {
    let body = body.to_string();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body.as_bytes());
    request
}
