//! Request budgets (tower-governor): how often each client may ask.
//!
//! On the public listener every budget is per client — a Tor circuit with
//! `client_address = "tor-circuit"`, an address with `"peer"` or `"forwarded"` — and there are
//! three, so that no kind of request can starve another: page loads, forms that cost work
//! (submissions and additions), and receipt sign-ins. One client's flood spends only its own
//! budgets; what protects the server as a whole is capacity (`transport::ledger`), not a global
//! budget that one client could use up. With `"none"` every client is the same client: the
//! budgets are then `SHARED_BY_ALL` times the per-client ones (about what tipbox's global
//! budgets were before clients could be told apart), shared by all, and `serve` warns at
//! start-up that one client can lock sources out.
//!
//! Clients live only in the limiters' memory: never logged, never stored; the sweeper forgets
//! idle ones. Over budget: `429` with `Retry-After`, rendered by `refusals`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use governor::middleware::NoOpMiddleware;
use tower_governor::GovernorError;
use tower_governor::GovernorLayer;
use tower_governor::governor::{GovernorConfig, GovernorConfigBuilder};
use tower_governor::key_extractor::{GlobalKeyExtractor, KeyExtractor};

use super::refusals::{Refusal, refusal};
use crate::config::{ClientAddress, RateLimits};
use crate::web::transport::client::Client;

/// Keys a budget by the request's `Client`, which `admission` puts in its extensions.
#[derive(Clone, Copy, Debug)]
pub struct ClientKey;

impl KeyExtractor for ClientKey {
    type Key = Client;

    fn extract<T>(&self, request: &axum::http::Request<T>) -> Result<Client, GovernorError> {
        // Never missing behind `admission`; if it were, one shared bucket (fail closed).
        Ok(request
            .extensions()
            .get::<Client>()
            .copied()
            .unwrap_or(Client::Everyone))
    }
}

type Layer<K> = GovernorLayer<K, NoOpMiddleware, Body>;

/// A budget of `per_minute` requests on average with `burst` on top.
fn budget<K>(
    key: K,
    per_minute: u32,
    burst: u32,
) -> (Layer<K>, Arc<GovernorConfig<K, NoOpMiddleware>>)
where
    K: KeyExtractor + Send + Sync + 'static,
    K::Key: Send + Sync,
{
    let period = Duration::from_nanos(60_000_000_000 / u64::from(per_minute.max(1)));
    let config = Arc::new(
        GovernorConfigBuilder::default()
            .key_extractor(key)
            .period(period)
            .burst_size(burst.max(1))
            .finish()
            .expect("a positive period and burst"),
    );
    let layer = GovernorLayer::new(Arc::clone(&config)).error_handler(over_budget);
    (layer, config)
}

/// A per-client budget whose idle clients are forgotten every minute.
fn per_client(per_minute: u32, burst: u32) -> Layer<ClientKey> {
    let (layer, config) = budget(ClientKey, per_minute, burst);
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let limiter = Arc::downgrade(&config);
        runtime.spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(60));
            loop {
                ticker.tick().await;
                let Some(config) = limiter.upgrade() else {
                    return;
                };
                config.limiter().retain_recent();
                config.limiter().shrink_to_fit();
            }
        });
    }
    layer
}

fn over_budget(error: GovernorError) -> Response {
    let wait = match error {
        GovernorError::TooManyRequests { wait_time, .. } => wait_time,
        _ => 1,
    };
    refusal(Refusal::Limited, Some(wait))
}

/// With `client_address = "none"`, how many clients' worth of budget everyone shares.
pub const SHARED_BY_ALL: u32 = 50;

/// The public listener's three budgets.
pub struct PublicBudgets {
    pub pages: Layer<ClientKey>,
    pub forms: Layer<ClientKey>,
    pub signins: Layer<ClientKey>,
}

impl PublicBudgets {
    pub fn new(limits: &RateLimits) -> Self {
        let scale = if limits.client_address == ClientAddress::None {
            SHARED_BY_ALL
        } else {
            1
        };
        let budget = |per_minute: u32, burst: u32| {
            per_client(
                per_minute.saturating_mul(scale),
                burst.saturating_mul(scale),
            )
        };
        Self {
            pages: budget(limits.pages_per_minute, limits.pages_burst),
            forms: budget(limits.forms_per_minute, limits.forms_burst),
            signins: budget(limits.signins_per_minute, limits.signins_burst),
        }
    }
}

/// Applies the analyst listener's budget: analysts are few and authenticated, so one budget
/// for the listener bounds what a flood of sign-in attempts can cost.
pub fn analyst(limits: &RateLimits, router: axum::Router) -> axum::Router {
    let (layer, _) = budget(
        GlobalKeyExtractor,
        limits.analyst_per_second.saturating_mul(60),
        limits.analyst_burst,
    );
    router.layer(layer)
}
