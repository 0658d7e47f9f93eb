//! What both benchmarks share: starting the server (at the production log level, or through the
//! test harness), reading a process's CPU time and memory from /proc, and tuning by environment.
//!
//! Everything here talks only to 127.0.0.1 and to /proc of this machine.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
    Direct { child: Child, public: String },
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
            let found = fresh.lines().map(strip_ansi).find_map(|line| {
                let marker = "public listener on ";
                line.find(marker)
                    .map(|at| line[at + marker.len()..].trim().to_owned())
            });
            if let Some(public) = found {
                return Self::Direct { child, public };
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

    /// `127.0.0.1:PORT`, refusing anything that is not loopback.
    pub fn public_addr(&self) -> std::net::SocketAddr {
        let url = self.public_url();
        let addr: std::net::SocketAddr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap_or_else(|_| panic!("public listener {url:?} is not an address"));
        assert!(addr.ip().is_loopback(), "benchmarks only talk to loopback");
        addr
    }
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

/// User + system CPU time a process has used so far, in seconds.
pub fn process_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
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
