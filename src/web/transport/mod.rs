//! Serving a router on a listener: hyper with deadlines, so that slow or idle clients cannot
//! hold connections open; the public listener's clients told apart and counted (`client`,
//! `ledger`); and a graceful shutdown that lets requests in flight finish.
//!
//! `axum::serve` sets no timer, so a client that sends its request headers one byte a minute
//! (or opens connections and sends nothing) would keep them forever. Here:
//! - the PROXY line tor sends (with `client_address = "tor-circuit"`) and, over TLS, the
//!   handshake must each arrive within `limits.header_read_timeout_seconds` (20);
//! - HTTP/1: the whole request head must arrive within that time too — a deadline from its
//!   first byte, not an inactivity timer — and that clock also runs while a kept-alive
//!   connection waits for its next request, so an idle connection is closed after it;
//! - bodies: forms must arrive whole within `limits.body_timeout_seconds`
//!   (`middleware::deadline`), uploads at a minimum rate over a sliding window (`body`);
//! - plain HTTP is HTTP/1.1 only. HTTP/2 would let one connection (one Tor stream) carry many
//!   requests at once, outside the per-connection accounting; over TLS, where browsers expect
//!   it, it is offered with few concurrent streams, each still a request the ledger counts.
//!
//! The client (`client::Client`) and, for `client_address = "forwarded"`, the peer address are
//! put in the request's extensions for the budgets (`web::middleware`), and nowhere else; so is
//! the `Transport` (plain HTTP or TLS), for headers that only make sense over TLS.
//!
//! TLS handshakes and PROXY lines are read in the connection's own task, so a slow client never
//! holds up the accept loop.

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
pub mod client;
pub mod ledger;
pub mod tls;

use client::Client;
use ledger::Ledger;
use tls::Tls;

use crate::config::ClientAddress;

/// How long shutdown waits for requests in flight before closing their connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How a request reached the server; in every request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Plain,
    Tls,
}

/// How the public listener tells its clients apart, and the ledger that counts them.
#[derive(Clone)]
pub struct Clients {
    pub mode: ClientAddress,
    pub ledger: Arc<Ledger>,
    /// Besides loopback, the peers that may send tor's PROXY line (`rate_limits.trusted_proxies`:
    /// a tor in another container, say).
    pub trusted: Arc<Vec<std::net::IpAddr>>,
}

impl Clients {
    fn may_proxy(&self, peer: std::net::IpAddr) -> bool {
        peer.is_loopback() || self.trusted.contains(&peer)
    }
}

/// Serves `router` on `listener` (over TLS when `tls` is given; with the public listener's
/// `clients`) until `shutdown` completes, then finishes the requests in flight (for at most
/// `SHUTDOWN_GRACE`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &crate::config::Limits,
    tls: Option<Arc<Tls>>,
    clients: Option<Clients>,
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
        .max_concurrent_streams(8);
    // HTTP/1.1 only, or (over TLS, when the client chose it by ALPN) HTTP/2 only: never a
    // guess from the first bytes, which has no deadline of its own.
    let http2 = Arc::new(builder.clone().http2_only());
    let builder = Arc::new(builder.http1_only());
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
        // Watched from now on: shutdown waits for a connection still in its handshake too.
        let watcher = graceful.watcher();
        let builder = Arc::clone(&builder);
        let http2 = Arc::clone(&http2);
        let router = router.clone();
        let tls = tls.clone();
        let clients = clients.clone();
        tokio::spawn(async move {
            // Who the client is, and whether there is room for it: before any HTTP is read.
            let (client, stream) = match clients.as_ref().map(|c| c.mode) {
                // Only tor may say which circuit a connection is: anyone else who could reach
                // the listener could name any circuit and have its budgets.
                Some(ClientAddress::TorCircuit)
                    if !clients.as_ref().is_some_and(|c| c.may_proxy(peer.ip())) =>
                {
                    client::warn_refused(client::BadHeader::NotFromTor);
                    return;
                }
                Some(ClientAddress::TorCircuit) => {
                    match client::read_circuit(stream, header_timeout).await {
                        Ok((circuit, stream)) => (Some(Client::Circuit(circuit)), stream),
                        Err(why) => {
                            client::warn_refused(why);
                            return;
                        }
                    }
                }
                Some(ClientAddress::Peer) => (Some(Client::Address(peer.ip())), unbuffered(stream)),
                Some(ClientAddress::None) => (Some(Client::Everyone), unbuffered(stream)),
                // Behind a proxy, clients are told apart per request.
                Some(ClientAddress::Forwarded) | None => (None, unbuffered(stream)),
            };
            let _lease = match &clients {
                Some(clients) => match clients.ledger.connect(client) {
                    Ok(lease) => Some(lease),
                    // Closed at once: a client over its share of connections, or a heavy one
                    // while the server is full, gets nothing to hold.
                    Err(_) => return,
                },
                None => None,
            };
            let service = router.map_request(
                move |mut request: axum::extract::Request<hyper::body::Incoming>| {
                    let extensions = request.extensions_mut();
                    extensions.insert(ConnectInfo::<SocketAddr>(peer));
                    extensions.insert(transport);
                    if let Some(client) = client {
                        extensions.insert(client);
                    }
                    request.map(axum::body::Body::new)
                },
            );
            let service = TowerToHyperService::new(service);
            match tls {
                None => serve_connection(builder, stream, service, watcher).await,
                Some(tls) => {
                    match tokio::time::timeout(header_timeout, tls.acceptor().accept(stream)).await
                    {
                        Ok(Ok(stream)) => {
                            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                            let builder = if h2 { http2 } else { builder };
                            serve_connection(builder, stream, service, watcher).await;
                        }
                        // Scanners, old clients, clients that do not trust the certificate:
                        // logged without anything that tells who the client was.
                        Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
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

/// A connection in the same type as one read through a PROXY line, without a buffer of its
/// own: `BufReader` reads straight from the socket into any buffer at least as large as its
/// own, and hyper's reads are far larger than one byte (a capacity of 0 is not allowed).
fn unbuffered(stream: tokio::net::TcpStream) -> tokio::io::BufReader<tokio::net::TcpStream> {
    tokio::io::BufReader::with_capacity(1, stream)
}

/// Serves HTTP on one connection until it closes or shutdown ends it. No upgrades: nothing
/// here speaks WebSocket, and an upgraded connection would escape the deadlines.
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
        .serve_connection(TokioIo::new(io), service)
        .into_owned();
    // Errors here are clients going away or timing out: nothing to log about them.
    let _ = watcher.watch(connection).await;
}
