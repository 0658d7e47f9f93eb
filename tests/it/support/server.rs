//! A running `tipbox serve`: its listeners' URLs, read from its log as it starts, and the
//! signals an operator (or a crash) sends it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::deployment::Deployment;

/// A running `tipbox serve`; killed when dropped.
pub struct Server {
    child: Child,
    /// The thread that copies the server's stderr into the deployment's log.
    log_copier: Option<std::thread::JoinHandle<()>>,
    pub public: String,
    pub analyst: String,
}

impl Server {
    /// Starts `command` (a `tipbox serve`, see `Deployment::serve_command`), copies its stderr
    /// into the deployment's log and waits until both listeners are up.
    pub fn spawn(deployment: &Deployment, mut command: Command) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&deployment.log_path)
            .unwrap();
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log_copier = std::thread::spawn(move || {
            use std::io::Write;
            let mut log = log;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
                let plain = strip_ansi(&line);
                for (kind, marker) in [
                    ("public", "public listener on "),
                    ("analyst", "analyst listener on "),
                ] {
                    if let Some(at) = plain.find(marker) {
                        let _ = tx.send((kind, plain[at + marker.len()..].trim().to_owned()));
                    }
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut public, mut analyst) = (None, None);
        while public.is_none() || analyst.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(("public", url)) => public = Some(url),
                Ok((_, url)) => analyst = Some(url),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("tipbox serve did not start; log:\n{}", deployment.log());
                }
            }
        }
        Self {
            child,
            log_copier: Some(log_copier),
            public: public.unwrap(),
            analyst: analyst.unwrap(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.pid() as i32).expect("a process id");
        rustix::process::kill_process(pid, signal).unwrap();
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.finish_log();
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.signal(rustix::process::Signal::TERM);
        let status = self.child.wait().unwrap();
        self.finish_log();
        status
    }

    /// Waits until all the exited server wrote is in the deployment's log.
    fn finish_log(&mut self) {
        if let Some(copier) = self.log_copier.take() {
            copier.join().unwrap();
        }
    }

    /// SIGHUP (what `systemctl reload` sends): reloads the TLS certificates.
    pub fn hangup(&self) {
        self.signal(rustix::process::Signal::HUP);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A log line without its colour codes.
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
