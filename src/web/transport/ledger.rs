//! The public listener's capacity, and who is using it: connections and requests in flight,
//! per client and in total, and how much each client has used recently.
//!
//! Budgets (`web::middleware::budgets`) say how often a client may ask; the ledger says how
//! much of the server it may hold at once, and decides who is refused when the server is full:
//! - a client may hold `max_connections_per_client` connections, `max_requests_per_client`
//!   requests in flight and `max_uploads_per_client` uploads, whatever else is going on;
//! - past `max_connections` / `max_requests` in total, only *light* clients that hold nothing
//!   are still let in (into a reserve of a quarter more): those that have used little recently
//!   and have no connection (or request) open. A new visitor on a fresh circuit has used
//!   nothing, a flooder a lot; so when the server is saturated, the heaviest are refused first,
//!   a flood spread thin over many circuits cannot fill the reserve a few connections each, and
//!   genuine sources still get through.
//!
//! "Recent use" is a count of connections and requests (and refused junk, charged extra by
//! `middleware::admission`) that halves every `HALF_LIFE`. Entries are kept in memory only, and
//! forgotten once a client holds nothing and its use has decayed away.
//!
//! With `client_address = "none"` every request is `Client::Everyone`: per-client limits would
//! then be global, so they do not apply, and only the totals protect the server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::client::Client;
use crate::config::RateLimits;

/// How fast recent use is forgotten.
const HALF_LIFE: Duration = Duration::from_secs(30);
/// A client whose recent use is below this is light: still served when the server is full.
/// A visitor loads a few pages and sends a form; a flooder passes this within seconds.
pub const LIGHT: f64 = 16.0;
/// What each upload a client already has in progress adds to its weight for the next slot.
const HOLDING: f64 = 64.0;

#[derive(Default)]
struct Usage {
    connections: u32,
    requests: u32,
    uploads: u32,
    recent: f64,
    at: Option<Instant>,
}

impl Usage {
    fn decay(&mut self, now: Instant) {
        if let Some(at) = self.at {
            let halves = now.saturating_duration_since(at).as_secs_f64() / HALF_LIFE.as_secs_f64();
            self.recent *= 0.5f64.powf(halves);
        }
        self.at = Some(now);
    }

    /// How many of `kind` the client holds.
    fn held(&mut self, kind: Kind) -> &mut u32 {
        match kind {
            Kind::Connection => &mut self.connections,
            Kind::Request => &mut self.requests,
            Kind::Upload => &mut self.uploads,
        }
    }

    fn idle(&self) -> bool {
        self.connections == 0 && self.requests == 0 && self.uploads == 0 && self.recent < 0.5
    }
}

#[derive(Default)]
struct State {
    clients: HashMap<Client, Usage>,
    connections: u32,
    requests: u32,
    /// Uploads in progress (bounded in total by the submission slots, not here).
    uploads: u32,
}

impl State {
    /// How many of `kind` are held, all clients together.
    fn total(&mut self, kind: Kind) -> &mut u32 {
        match kind {
            Kind::Connection => &mut self.connections,
            Kind::Request => &mut self.requests,
            Kind::Upload => &mut self.uploads,
        }
    }
}

/// Why the ledger refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// This client already holds its share: `429`.
    ClientFull,
    /// The server is full and this client is not light: `503`.
    ServerFull,
}

pub struct Ledger {
    limits: RateLimits,
    state: Mutex<State>,
}

impl Ledger {
    pub fn new(limits: &RateLimits) -> Arc<Self> {
        let ledger = Arc::new(Self {
            limits: limits.clone(),
            state: Mutex::new(State::default()),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(sweep(Arc::downgrade(&ledger)));
        }
        ledger
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a connection (from a known client; `None` when clients are only told apart per
    /// request, as behind a proxy). Held until the connection closes.
    pub fn connect(self: &Arc<Self>, client: Option<Client>) -> Result<Lease, Refused> {
        let limits = (
            self.limits.max_connections,
            self.limits.max_connections_per_client,
        );
        self.admit(Kind::Connection, client, limits)
    }

    /// Admits a request from `client`. Held until the response has been produced.
    pub fn request(self: &Arc<Self>, client: Client) -> Result<Lease, Refused> {
        let limits = (
            self.limits.max_requests,
            self.limits.max_requests_per_client,
        );
        self.admit(Kind::Request, Some(client), limits)
    }

    /// Counts one more `kind` for `client` within `(max, per_client)`: the client's share
    /// first, then the total; past the total, only a light client holding none of `kind` gets
    /// into the reserve (a quarter more).
    fn admit(
        self: &Arc<Self>,
        kind: Kind,
        client: Option<Client>,
        (max, per_client): (u32, u32),
    ) -> Result<Lease, Refused> {
        let mut state = self.state();
        let total = *state.total(kind);
        if total >= max + max / 4 {
            return Err(Refused::ServerFull);
        }
        match client.filter(|c| *c != Client::Everyone) {
            Some(client) => {
                let usage = use_of(&mut state, client);
                usage.recent += 1.0;
                let light = usage.recent < LIGHT;
                let held = usage.held(kind);
                if *held >= per_client {
                    return Err(Refused::ClientFull);
                }
                if total >= max && !(light && *held == 0) {
                    return Err(Refused::ServerFull);
                }
                *held += 1;
            }
            None if total >= max => return Err(Refused::ServerFull),
            None => {}
        }
        *state.total(kind) += 1;
        Ok(Lease {
            ledger: Arc::clone(self),
            client,
            kind,
        })
    }

    /// Admits an upload (a submission or an addition) from `client`: at most
    /// `max_uploads_per_client` at once, so one client cannot fill the submission slots.
    pub fn upload(self: &Arc<Self>, client: Client) -> Option<Lease> {
        let mut state = self.state();
        if client != Client::Everyone {
            let usage = use_of(&mut state, client);
            if usage.uploads >= self.limits.max_uploads_per_client {
                return None;
            }
            usage.uploads += 1;
        }
        state.uploads += 1;
        Some(Lease {
            ledger: Arc::clone(self),
            client: Some(client),
            kind: Kind::Upload,
        })
    }

    /// Adds `amount` to a client's recent use (junk it sent, seconds it held a slot).
    pub fn charge(&self, client: Client, amount: f64) {
        if client != Client::Everyone {
            use_of(&mut self.state(), client).recent += amount;
        }
    }

    /// A client's weight in the queue for a submission slot, lower first: its recent use, and
    /// much more for each other upload it already has in progress. So a client that holds
    /// slots waits behind one that holds none, however few requests it made.
    pub fn weight(&self, client: Client) -> f64 {
        if client == Client::Everyone {
            return 0.0;
        }
        let mut state = self.state();
        match state.clients.get_mut(&client) {
            Some(usage) => {
                usage.decay(Instant::now());
                usage.recent + HOLDING * f64::from(usage.uploads.saturating_sub(1))
            }
            None => 0.0,
        }
    }

    /// Connections and requests in flight, in total (for tests and benchmarks).
    pub fn in_flight(&self) -> (u32, u32) {
        let state = self.state();
        (state.connections, state.requests)
    }

    /// How many clients the ledger remembers.
    pub fn clients(&self) -> usize {
        self.state().clients.len()
    }

    fn release(&self, client: Option<Client>, kind: Kind) {
        let mut state = self.state();
        let total = state.total(kind);
        *total = total.saturating_sub(1);
        let Some(client) = client.filter(|c| *c != Client::Everyone) else {
            return;
        };
        if let Some(usage) = state.clients.get_mut(&client) {
            let held = usage.held(kind);
            *held = held.saturating_sub(1);
        }
    }

    /// Forgets clients that hold nothing and have not been seen for a while.
    fn forget_idle(&self) {
        let now = Instant::now();
        let mut state = self.state();
        state.clients.retain(|_, usage| {
            usage.decay(now);
            !usage.idle()
        });
        state.clients.shrink_to(64);
    }
}

fn use_of(state: &mut State, client: Client) -> &mut Usage {
    let usage = state.clients.entry(client).or_default();
    usage.decay(Instant::now());
    usage
}

async fn sweep(ledger: Weak<Ledger>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(30));
    loop {
        ticker.tick().await;
        let Some(ledger) = ledger.upgrade() else {
            return;
        };
        ledger.forget_idle();
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Connection,
    Request,
    Upload,
}

/// A connection, request or upload the ledger counts until this is dropped.
pub struct Lease {
    ledger: Arc<Ledger>,
    client: Option<Client>,
    kind: Kind,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.ledger.release(self.client, self.kind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(max_requests: u32) -> Arc<Ledger> {
        Ledger::new(&RateLimits {
            max_requests,
            max_requests_per_client: 2,
            max_connections: 4,
            max_connections_per_client: 2,
            ..RateLimits::default()
        })
    }

    #[test]
    fn a_client_holds_only_its_share() {
        let ledger = ledger(100);
        let a = Client::Circuit(1);
        let _r1 = ledger.request(a).unwrap();
        let r2 = ledger.request(a).unwrap();
        assert_eq!(ledger.request(a).err(), Some(Refused::ClientFull));
        // Another circuit is not affected.
        assert!(ledger.request(Client::Circuit(2)).is_ok());
        drop(r2);
        assert!(ledger.request(a).is_ok());
    }

    #[test]
    fn when_full_the_heavy_are_refused_and_the_light_still_served() {
        let ledger = ledger(4);
        let heavy = Client::Circuit(1);
        ledger.charge(heavy, 100.0);
        let mut held = Vec::new();
        for id in 10..14 {
            held.push(ledger.request(Client::Circuit(id)).unwrap());
        }
        assert_eq!(ledger.request(heavy).err(), Some(Refused::ServerFull));
        // A fresh visitor gets into the reserve; a light one that already has a request in
        // flight does not.
        let light = ledger.request(Client::Circuit(99));
        assert!(light.is_ok());
        assert_eq!(
            ledger.request(Client::Circuit(99)).err(),
            Some(Refused::ServerFull)
        );
        // The reserve is bounded: 4 + 1 in flight now, and a quarter of 4 is 1.
        drop(held.pop());
        held.push(ledger.request(Client::Circuit(97)).unwrap());
        assert_eq!(
            ledger.request(Client::Circuit(98)).err(),
            Some(Refused::ServerFull)
        );
    }

    #[test]
    fn connections_are_capped_per_client_and_in_total() {
        let ledger = ledger(100);
        let a = Some(Client::Circuit(1));
        let _c1 = ledger.connect(a).unwrap();
        let _c2 = ledger.connect(a).unwrap();
        assert_eq!(ledger.connect(a).err(), Some(Refused::ClientFull));
        let _c3 = ledger.connect(None).unwrap();
        let _c4 = ledger.connect(None).unwrap();
        assert_eq!(ledger.connect(None).err(), Some(Refused::ServerFull));
        assert_eq!(ledger.in_flight().0, 4);
    }

    #[test]
    fn a_client_holding_uploads_weighs_more() {
        let ledger = ledger(100);
        let (a, b) = (Client::Circuit(1), Client::Circuit(2));
        let _first = ledger.upload(a).unwrap();
        let _second = ledger.upload(a).unwrap();
        let _only = ledger.upload(b).unwrap();
        assert!(ledger.weight(a) >= HOLDING);
        assert!(ledger.weight(b) < 1.0);
    }

    #[test]
    fn idle_clients_are_forgotten() {
        let ledger = ledger(100);
        drop(ledger.request(Client::Circuit(1)).unwrap());
        assert_eq!(ledger.clients(), 1);
        ledger.charge(Client::Circuit(1), -10.0);
        assert!(ledger.weight(Client::Circuit(1)) < 0.5);
        ledger.forget_idle();
        assert_eq!(ledger.clients(), 0);
    }
}
