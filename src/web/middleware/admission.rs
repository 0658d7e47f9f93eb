//! Admission on the public listener: who the client is, whether the server has room for its
//! request (`transport::ledger`), and what its junk costs it.
//!
//! A request that the server refuses as unreadable — an empty or broken form, a bad or missing
//! CSRF token, an unknown field — has cost the server little,
//! and costs its sender more than a good one: it is charged `JUNK_COST` in the ledger's recent
//! use, so a client sending junk is among the first refused when the server is full, and its
//! budgets (keyed by the same client) are spent by its own requests only.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use super::refusals::{Refusal, refusal};
use crate::config::{ClientAddress, RateLimits};
use crate::web::transport::client::Client;
use crate::web::transport::ledger::{Ledger, Refused};

/// What refused junk adds to its sender's recent use (a good request adds 1).
pub const JUNK_COST: f64 = 4.0;

/// The admission layer's state.
#[derive(Clone)]
pub struct Admission {
    pub ledger: Arc<Ledger>,
    mode: ClientAddress,
    trusted: Arc<Vec<IpAddr>>,
}

impl Admission {
    pub fn new(ledger: Arc<Ledger>, limits: &RateLimits) -> Self {
        Self {
            ledger,
            mode: limits.client_address,
            trusted: Arc::new(limits.trusted_proxies.clone()),
        }
    }

    /// The request's client: set by the transport (a circuit, a peer address, everyone), or,
    /// behind a trusted proxy, the last hop it appended to `X-Forwarded-For` (a request from
    /// anyone else is keyed by its own peer address, so a forged header buys nothing).
    fn client(&self, request: &Request) -> Client {
        if let Some(client) = request.extensions().get::<Client>() {
            return *client;
        }
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        match self.mode {
            ClientAddress::None => Client::Everyone,
            // Exactly the last hop, the one the proxy appended: if it does not parse (a port,
            // brackets, "unknown"), the proxy's own address, never an earlier hop the client
            // may have written itself.
            ClientAddress::Forwarded if self.trusted.contains(&peer) => request
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .next_back()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|hop| hop.trim().parse::<IpAddr>().ok())
                .map_or(Client::address(peer), Client::address),
            _ => Client::address(peer),
        }
    }
}

/// Admits a request to the public listener, or refuses it at once: `429` when its client
/// already has its share in flight, `503` (closing the connection) when the server is full and
/// the client is not among the light ones.
pub async fn admit(
    State(admission): State<Admission>,
    mut request: Request,
    next: Next,
) -> Response {
    let client = admission.client(&request);
    request.extensions_mut().insert(client);
    let lease = match admission.ledger.request(client) {
        Ok(lease) => lease,
        Err(Refused::ClientFull) => return refusal(Refusal::Limited, Some(1)),
        Err(Refused::ServerFull) => return refusal(Refusal::Busy, Some(5)),
    };
    let response = next.run(request).await;
    drop(lease);
    if is_junk(response.status()) {
        admission.ledger.charge(client, JUNK_COST);
    }
    response
}

/// Answers to requests that were junk: unreadable or forged. Not "too slow" or "too large":
/// a genuine source on a bad circuit, or with too big a file, gets those too, and should not
/// then be among the first refused.
fn is_junk(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_REQUEST
            | StatusCode::FORBIDDEN
            | StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::UNSUPPORTED_MEDIA_TYPE
            | StatusCode::UNPROCESSABLE_ENTITY
    )
}
