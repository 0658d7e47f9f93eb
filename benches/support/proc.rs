//! Reading CPU time and memory from /proc: of the server, of each of its threads, of the
//! PostgreSQL backends, of this benchmark and of the whole machine.

use std::collections::BTreeMap;
use std::time::Instant;

/// Linux reports process CPU time in USER_HZ ticks, which is 100 on every architecture.
const TICKS_PER_SECOND: f64 = 100.0;

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
