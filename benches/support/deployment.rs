//! Starting the server for a benchmark (at the production log level, or through the test
//! harness), and the accounts and settings of its deployment.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::server::strip_ansi;
use crate::harness::{Deployment, Server, TIPBOX};

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

/// Adds an x25519 reviewer key and returns its identity: with the harness
/// (`Deployment::add_reviewer`), or, when `BENCH_TIPBOX` names another build, with that build
/// (its schema may differ).
pub fn add_reviewer(deployment: &Deployment, name: &str) -> age::x25519::Identity {
    let Ok(binary) = std::env::var("BENCH_TIPBOX") else {
        return deployment.add_reviewer(name);
    };
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    tipbox_with(
        &binary,
        deployment,
        &["keys", "add", &recipient, "--label", name],
    );
    identity
}

/// Runs `BINARY --config <deployment> ARGS…`, which must succeed; its standard output.
fn tipbox_with(binary: &str, deployment: &Deployment, args: &[&str]) -> Vec<u8> {
    let out = Command::new(binary)
        .arg("--config")
        .arg(&deployment.config_path)
        .args(args)
        .env_remove("TIPBOX_CONFIG")
        .current_dir(deployment.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{binary} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Adds an analyst account (`tipbox analyst add NAME --json`, with the `BENCH_TIPBOX` build
/// when set) and returns what it prints once: `{"username", "password", "totp_secret",
/// "otpauth_uri"}`.
pub fn add_analyst(deployment: &Deployment, name: &str) -> serde_json::Value {
    let binary = std::env::var("BENCH_TIPBOX").unwrap_or_else(|_| TIPBOX.to_owned());
    let out = tipbox_with(&binary, deployment, &["analyst", "add", name, "--json"]);
    serde_json::from_slice(&out).expect("`analyst add --json` prints one JSON object")
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

pub fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}
