//! A request body that multer can read and that we can take back afterwards, to drain what the
//! client is still sending.
//!
//! When a submission is refused part way (over a limit, bad input, paused), the client is
//! usually still uploading. Closing the socket with unread data makes the kernel send a
//! reset, and the browser then shows "connection reset" instead of our page. So we read and
//! discard the rest — up to a cap, and never waiting on a stalled client for long — before
//! answering.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, BodyDataStream, Bytes};
use futures_util::{Stream, StreamExt};

/// How long one read may stall before we give up on the client.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct SharedBody(Arc<Mutex<BodyDataStream>>);

impl SharedBody {
    pub fn new(body: Body) -> Self {
        Self(Arc::new(Mutex::new(body.into_data_stream())))
    }

    /// Reads and discards the rest of the body, up to `max_bytes`.
    pub async fn drain(&self, max_bytes: u64) {
        let mut stream = self.clone();
        let mut drained = 0u64;
        while drained <= max_bytes {
            match tokio::time::timeout(IDLE_TIMEOUT, stream.next()).await {
                Ok(Some(Ok(chunk))) => drained += chunk.len() as u64,
                Ok(Some(Err(_)) | None) | Err(_) => return,
            }
        }
    }
}

impl Stream for SharedBody {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut inner = self.0.lock().unwrap_or_else(|p| p.into_inner());
        inner.poll_next_unpin(cx)
    }
}
