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
//! - bodies: uploads have their own per-read timeout and minimum rate (`body`); other
//!   routes' bodies must arrive within `limits.body_timeout_seconds` (30; `body_timeout`).
//!
//! The peer address is put in the request's extensions as `ConnectInfo` for the per-client
//! budget (`web::middleware::budgets`), and nowhere else; so is the `Transport` (plain HTTP or TLS), for
//! headers that only make sense over TLS.
//!
//! With TLS (`tls`), the handshake runs in the connection's own task, so a slow client
//! never holds up the accept loop, and must finish within the header-read timeout.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::Watcher;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tower::ServiceExt;

pub mod body;
pub mod tls;

use tls::Tls;

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

/// How a request reached the server; in every request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Plain,
    Tls,
}

/// Serves `router` on `listener` (over TLS when `tls` is given) until `shutdown` completes,
/// then finishes the requests in flight (for at most `SHUTDOWN_GRACE`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &crate::config::Limits,
    tls: Option<Arc<Tls>>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let header_timeout = Duration::from_secs(limits.header_read_timeout_seconds);
    let transport = if tls.is_some() {
        Transport::Tls
    } else {
        Transport::Plain
    };
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
    let builder = Arc::new(builder);
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
                let extensions = request.extensions_mut();
                extensions.insert(ConnectInfo::<SocketAddr>(peer));
                extensions.insert(transport);
                request.map(axum::body::Body::new)
            },
        );
        let service = TowerToHyperService::new(service);
        // Watched from now on: shutdown waits for a connection still in its TLS handshake too.
        let watcher = graceful.watcher();
        let builder = Arc::clone(&builder);
        match &tls {
            None => {
                tokio::spawn(serve_connection(builder, stream, service, watcher));
            }
            Some(tls) => {
                let acceptor = tls.acceptor();
                tokio::spawn(async move {
                    match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            serve_connection(builder, stream, service, watcher).await;
                        }
                        // Scanners, old clients, clients that do not trust the certificate:
                        // logged without anything that tells who the client was.
                        Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                });
            }
        }
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

/// Serves HTTP/1 or HTTP/2 on one connection until it closes or shutdown ends it.
async fn serve_connection<I, S>(
    builder: Arc<Builder<TokioExecutor>>,
    io: I,
    service: S,
    watcher: Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let connection = builder
        .serve_connection_with_upgrades(TokioIo::new(io), service)
        .into_owned();
    // Errors here are clients going away or timing out: nothing to log about them.
    let _ = watcher.watch(connection).await;
}
