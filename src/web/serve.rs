//! Serving a router on a listener: hyper with timeouts, so that slow or idle clients cannot hold
//! connections open, and a graceful shutdown that lets requests in flight finish.
//!
//! `axum::serve` sets no timer, so a client that sends its request headers one byte a minute
//! (or opens connections and sends nothing) would keep them forever. Here:
//! - HTTP/1: the whole request head must arrive within `limits.header_read_timeout_seconds`
//!   (20), and that clock
//!   also runs while a kept-alive connection waits for its next request, so an idle connection
//!   is closed after the same time;
//! - HTTP/2: connections are pinged, and closed when the client stops answering;
//! - bodies: uploads have their own per-read timeout and minimum rate (`web::body`); other
//!   routes' bodies must arrive within `limits.body_timeout_seconds` (30; `body_timeout`).
//!
//! The peer address is put in the request's extensions as `ConnectInfo` for the per-client
//! budget (`web::limits`), and nowhere else.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// How long shutdown waits for requests in flight before closing their connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// A layer that ends a request whose (small) body does not arrive in time.
pub fn body_timeout(
    limits: &crate::config::Limits,
) -> tower_http::timeout::RequestBodyTimeoutLayer {
    tower_http::timeout::RequestBodyTimeoutLayer::new(Duration::from_secs(
        limits.body_timeout_seconds,
    ))
}

/// Serves `router` on `listener` until `shutdown` completes, then finishes the requests in
/// flight (for at most `SHUTDOWN_GRACE`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &crate::config::Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let header_timeout = Duration::from_secs(limits.header_read_timeout_seconds);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(header_timeout))
        .keep_alive_timeout(header_timeout)
        .max_concurrent_streams(64);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a moment, do not spin.
                    tracing::warn!(%error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = router.clone().map_request(
            move |mut request: axum::extract::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(peer));
                request.map(axum::body::Body::new)
            },
        );
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Errors here are clients going away or timing out: nothing to log about them.
            let _ = connection.await;
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still running after the shutdown grace period were cut off");
    }
    Ok(())
}
