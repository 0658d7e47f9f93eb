//! The request body of a submission: read by multer, watched by us.
//!
//! - Slow senders: after a grace period, an upload slower than the configured average rate is
//!   cut off, so a few trickling clients cannot hold every submission slot.
//! - Part headers: multer buffers a part's headers until their end; a budget per part stops a
//!   client that never ends them from growing that buffer without bound.
//! - Draining: when a submission is refused part way, the client is usually still uploading.
//!   Closing the socket with unread data makes the kernel send a reset, and the browser shows
//!   "connection reset" instead of our page; so we read and discard the rest first — bounded
//!   in bytes and in time, and after the submission slot has been given back.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, BodyDataStream, Bytes};
use futures_util::{Stream, StreamExt};

/// How long one read may stall before we give up on the client.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The most time spent draining a refused request.
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// Why we stopped reading a body early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    TooSlow,
    HeadersTooLarge,
}

struct Inner {
    stream: BodyDataStream,
    received: u64,
    started: Instant,
    min_bytes_per_second: u64,
    rate_grace: Duration,
    /// Bytes still allowed before the current part's headers end (`None`: no budget).
    header_budget: Option<u64>,
    violation: Option<Violation>,
}

#[derive(Clone)]
pub struct SharedBody(Arc<Mutex<Inner>>);

impl SharedBody {
    /// `min_bytes_per_second` applies once the upload has run for `rate_grace`.
    pub fn new(body: Body, min_bytes_per_second: u64, rate_grace: Duration) -> Self {
        Self(Arc::new(Mutex::new(Inner {
            stream: body.into_data_stream(),
            received: 0,
            started: Instant::now(),
            min_bytes_per_second,
            rate_grace,
            header_budget: None,
            violation: None,
        })))
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

    /// Reads and discards the rest of the body, up to `max_bytes` and a few seconds.
    pub async fn drain(&self, max_bytes: u64) {
        let deadline = tokio::time::Instant::now() + DRAIN_TIME;
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
        let polled = inner.stream.poll_next_unpin(cx);
        let Poll::Ready(Some(Ok(chunk))) = polled else {
            return polled;
        };
        inner.received += chunk.len() as u64;
        let elapsed = inner.started.elapsed();
        if inner.min_bytes_per_second > 0
            && elapsed > inner.rate_grace
            && inner.received < inner.min_bytes_per_second.saturating_mul(elapsed.as_secs())
        {
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
