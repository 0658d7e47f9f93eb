//! The load client, and the raw requests it sends.
//!
//! It is built to cost next to nothing, so that the figures are the server's: each request is
//! built once and written raw over keep-alive connections, the answer is parsed just enough to
//! find its status, its length and a marker, and the connections share one current-thread
//! Tokio runtime.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
        tally(&self.other)
    }

    /// Every status received in the window: `401×130, 500×2`, or `none`.
    pub fn statuses_text(&self) -> String {
        tally(&self.statuses)
    }
}

/// `what×count, …` in the map's order, or `none`.
pub fn tally<K: std::fmt::Display>(counts: &BTreeMap<K, u64>) -> String {
    if counts.is_empty() {
        return "none".to_owned();
    }
    counts
        .iter()
        .map(|(k, v)| format!("{k}×{v}"))
        .collect::<Vec<_>>()
        .join(", ")
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

/// One request alone before the load starts, which must get `status` and `marker`: a setup
/// problem shows with the server's answer, not as a run of errors. How long it took.
pub async fn setup_request(
    addr: SocketAddr,
    request: &[u8],
    status: u16,
    marker: &[u8],
    what: &str,
) -> Duration {
    let (answer, buf, took) = one_request(addr, request, marker).await;
    assert!(
        answer.status == status && answer.marker,
        "{what} answered {}: {}",
        answer.status,
        String::from_utf8_lossy(&buf[..buf.len().min(2000)])
    );
    took
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
    submit_request(addr, &boundary, &body)
}

/// `POST /submit` with the multipart `body` (parts separated by `boundary`), as raw bytes.
pub fn submit_request(addr: SocketAddr, boundary: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST /submit?lang=en HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: {}\r\nAccept-Language: en\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
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
