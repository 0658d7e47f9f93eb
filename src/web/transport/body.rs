//! The request body of a submission: read by multer, watched by us.
//!
//! - Slow senders: an upload that sent less than the minimum rate over the last window
//!   (`limits.upload_rate_window_seconds`, 30) is cut off, and so is a read that stalls for a
//!   whole window; so a few trickling clients cannot hold every submission slot. A sliding
//!   window, not an average since the start: a fast start buys no hours of trickle after it.
//!   While others wait for a slot (`pressed`), the window shrinks to `CONTENDED_WINDOW` and the
//!   rate it needs grows `CONTENDED_RATE` times: a slot held by a client too slow to use it goes
//!   to one that can. (Ten seconds, not less: Tor circuits stall for seconds at a time, and a
//!   genuine upload must survive that.) The clock starts when the server first reads the body,
//!   not while the request waited for its slot. And when a source that holds nothing is
//!   waiting, the slowest upload holding a slot is ended at once (`preempt`, from
//!   `web::public::slots`), rather than at the end of its window.
//! - Part headers: multer buffers a part's headers until their end; a budget per part stops a
//!   client that never ends them from growing that buffer without bound.
//! - Draining: when a submission is refused part way, the client is usually still uploading.
//!   Closing the socket with unread data makes the kernel send a reset, and the browser shows
//!   "connection reset" instead of our page; so we read and discard the rest first — bounded
//!   in bytes and in time, and after the submission slot has been given back.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, BodyDataStream, Bytes};
use futures_util::{Stream, StreamExt};

/// The rate window while others wait for a submission slot.
pub const CONTENDED_WINDOW: Duration = Duration::from_secs(10);
/// How many times the minimum rate an upload must keep while others wait for a slot.
pub const CONTENDED_RATE: u64 = 8;
/// The most time spent draining a refused request.
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// Why we stopped reading a body early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    TooSlow,
    HeadersTooLarge,
}

/// Whether others are waiting for what this upload holds. Called with the body's lock held:
/// it must take no lock of its own that is ever held while calling into a body (the slots'
/// state is, when `preempt` is called), or the two would deadlock.
pub type Pressed = Arc<dyn Fn() -> bool + Send + Sync>;

struct Inner {
    stream: BodyDataStream,
    received: u64,
    /// When the server first read from the body.
    started: Option<Instant>,
    min_bytes_per_second: u64,
    window: Duration,
    pressed: Pressed,
    /// (when, bytes received by then), about one a second, over the last window.
    samples: VecDeque<(Instant, u64)>,
    /// Bytes still allowed before the current part's headers end (`None`: no budget).
    header_budget: Option<u64>,
    violation: Option<Violation>,
    /// Set when a waiting source takes this upload's slot (`preempt`).
    preempted: bool,
    /// The whole body has arrived: nothing left to be slow at.
    ended: bool,
    /// Who to wake when preempted while waiting for the client's next bytes.
    waker: Option<std::task::Waker>,
}

impl Inner {
    /// The window and the rate over it that apply now.
    fn window(&self) -> (Duration, u64) {
        if (self.pressed)() {
            (
                CONTENDED_WINDOW.min(self.window),
                self.min_bytes_per_second.saturating_mul(CONTENDED_RATE),
            )
        } else {
            (self.window, self.min_bytes_per_second)
        }
    }

    /// Records what has arrived by `now`, and whether the last window fell short.
    fn too_slow(&mut self, now: Instant) -> bool {
        if self.min_bytes_per_second == 0 {
            return false;
        }
        if self
            .samples
            .back()
            .is_none_or(|(at, _)| now.duration_since(*at) >= Duration::from_secs(1))
        {
            self.samples.push_back((now, self.received));
        }
        // Keep one sample at or before the start of the longest window.
        while self.samples.len() > 1 && now.duration_since(self.samples[1].0) >= self.window {
            self.samples.pop_front();
        }
        let (window, rate) = self.window();
        let started = *self.started.get_or_insert(now);
        if now.duration_since(started) < window {
            return false;
        }
        let since = now - window;
        // Bytes received by the start of the window: the newest sample at or before it (none:
        // the upload started inside it, with nothing).
        let before = self
            .samples
            .iter()
            .rev()
            .find(|(at, _)| *at <= since)
            .map_or(0, |(_, received)| *received);
        let needed = rate.saturating_mul(window.as_secs().max(1));
        self.received - before < needed
    }
}

#[derive(Clone)]
pub struct SharedBody(Arc<Mutex<Inner>>);

impl SharedBody {
    /// At least `min_bytes_per_second` over every `window` (from the first full window on).
    pub fn new(body: Body, min_bytes_per_second: u64, window: Duration, pressed: Pressed) -> Self {
        Self(Arc::new(Mutex::new(Inner {
            stream: body.into_data_stream(),
            received: 0,
            started: None,
            min_bytes_per_second,
            window,
            pressed,
            samples: VecDeque::new(),
            header_budget: None,
            violation: None,
            preempted: false,
            ended: false,
            waker: None,
        })))
    }

    /// Bytes received over the last `span` (or since the first read, if that was later), with
    /// the time they were received over; `None` before the first read and after the last.
    pub fn received_over(&self, span: Duration) -> Option<(u64, Duration)> {
        let inner = self.inner();
        if inner.ended {
            return None;
        }
        let now = Instant::now();
        let started = inner.started?;
        let span = span.min(now.duration_since(started));
        let since = now - span;
        let before = inner
            .samples
            .iter()
            .rev()
            .find(|(at, _)| *at <= since)
            .map_or(0, |(_, received)| *received);
        Some((inner.received - before, span))
    }

    /// Marks the body as read to its end (the multipart reader may stop before the stream says
    /// so): a slot held while the upload is sealed and committed is not "slow".
    pub fn finished(&self) {
        self.inner().ended = true;
    }

    /// Ends the upload as too slow, now: its slot goes to a source that is waiting. Wakes the
    /// reader if it is waiting for the client's next bytes.
    pub fn preempt(&self) {
        let mut inner = self.inner();
        inner.preempted = true;
        if let Some(waker) = inner.waker.take() {
            waker.wake();
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Limits the bytes read until the next part's headers have been parsed.
    pub fn limit_headers(&self, budget: Option<u64>) {
        self.inner().header_budget = budget;
    }

    pub fn violation(&self) -> Option<Violation> {
        self.inner().violation
    }

    pub fn received(&self) -> u64 {
        self.inner().received
    }

    /// How long one read may stall before the upload is cut off: a whole window (shorter
    /// while others wait for a slot).
    pub fn stall_limit(&self) -> Duration {
        self.inner().window().0
    }

    /// Reads and discards the rest of the body, up to `max_bytes` and a few seconds (one for a
    /// client already found too slow: waiting longer on it would only hold its connection).
    pub async fn drain(&self, max_bytes: u64) {
        let time = if self.violation() == Some(Violation::TooSlow) {
            Duration::from_secs(1)
        } else {
            DRAIN_TIME
        };
        let deadline = tokio::time::Instant::now() + time;
        let mut drained = 0u64;
        while drained <= max_bytes {
            let next = async { self.inner_next().await };
            match tokio::time::timeout_at(deadline, next).await {
                Ok(Some(Ok(chunk))) => drained += chunk.len() as u64,
                Ok(Some(Err(_)) | None) | Err(_) => return,
            }
        }
    }

    /// The next raw chunk, without the checks (draining only).
    async fn inner_next(&self) -> Option<Result<Bytes, axum::Error>> {
        std::future::poll_fn(|cx| self.inner().stream.poll_next_unpin(cx)).await
    }
}

impl Stream for SharedBody {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut inner = self.inner();
        if inner.started.is_none() {
            inner.started = Some(Instant::now());
        }
        if inner.preempted {
            inner.violation = Some(Violation::TooSlow);
            return Poll::Ready(Some(Err(axum::Error::new("upload too slow for its slot"))));
        }
        inner.waker = Some(cx.waker().clone());
        let polled = inner.stream.poll_next_unpin(cx);
        let Poll::Ready(Some(Ok(chunk))) = polled else {
            if matches!(polled, Poll::Ready(None)) {
                inner.ended = true;
            }
            return polled;
        };
        inner.received += chunk.len() as u64;
        if inner.too_slow(Instant::now()) {
            inner.violation = Some(Violation::TooSlow);
            return Poll::Ready(Some(Err(axum::Error::new("upload too slow"))));
        }
        if let Some(budget) = inner.header_budget {
            match budget.checked_sub(chunk.len() as u64) {
                Some(left) => inner.header_budget = Some(left),
                None => {
                    inner.violation = Some(Violation::HeadersTooLarge);
                    return Poll::Ready(Some(Err(axum::Error::new("part headers too large"))));
                }
            }
        }
        Poll::Ready(Some(Ok(chunk)))
    }
}
