//! Request budgets (tower-governor) that keep the listeners up under a flood.
//!
//! Behind tor every client is 127.0.0.1, so budgets keyed by address would put every source in
//! one bucket; there (the default, `rate_limits.client_address = "none"`) the public listener
//! has a global budget for every request and a separate, smaller one for what costs the server
//! work (submissions, additions, receipt sign-ins), so a flood of page loads cannot use up the
//! budget of the forms, and neither can take the server down. When clients connect directly
//! (`"peer"`) or through a trusted reverse proxy (`"forwarded"`), each address also gets its
//! own budget. Addresses live only in the limiter's memory: never logged, never stored; the
//! sweeper forgets idle ones.
//!
//! Over budget: `429` with `Retry-After`; on the public listener a localized page
//! (`localize_limited`), on the analyst listener a short text.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderName, HeaderValue, Response, StatusCode, header};
use axum::middleware::Next;
use governor::middleware::NoOpMiddleware;
use tower_governor::GovernorError;
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::{GlobalKeyExtractor, KeyExtractor};

use crate::config::{ClientAddress, RateLimits};
use crate::web::shared::lang::PageLang;
use crate::web::shared::pages::message_page;

/// Set on a response refused for being over budget, so the page layer can localize it.
static LIMITED: HeaderName = HeaderName::from_static("x-tipbox-limited");

/// The client's address, as far as it can be known: the peer's (`"peer"`), or the last hop a
/// trusted proxy appended to `X-Forwarded-For` (`"forwarded"`; a request from anyone else is
/// keyed by its own peer address, so a forged header buys nothing).
#[derive(Clone, Debug)]
pub struct ClientKey {
    mode: ClientAddress,
    trusted: Arc<Vec<IpAddr>>,
}

impl KeyExtractor for ClientKey {
    type Key = IpAddr;

    fn extract<T>(&self, request: &axum::http::Request<T>) -> Result<IpAddr, GovernorError> {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            // Without connection info (never when served by `serve`): one shared bucket.
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        if self.mode != ClientAddress::Forwarded || !self.trusted.contains(&peer) {
            return Ok(peer);
        }
        let forwarded = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
            .next_back();
        Ok(forwarded.unwrap_or(peer))
    }
}

type Layer<K> = GovernorLayer<K, NoOpMiddleware, Body>;

fn layer<K: KeyExtractor + Send + Sync + 'static>(
    key: K,
    per_second: u32,
    burst: u32,
) -> (
    Layer<K>,
    Arc<tower_governor::governor::GovernorConfig<K, NoOpMiddleware>>,
)
where
    K::Key: Send + Sync,
{
    let period = Duration::from_nanos(1_000_000_000 / u64::from(per_second.max(1)));
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

/// The answer to a request over budget; `localize_limited` turns it into a page.
fn over_budget(error: GovernorError) -> Response<Body> {
    let wait = match error {
        GovernorError::TooManyRequests { wait_time, .. } => wait_time.max(1),
        _ => 1,
    };
    let mut response = Response::new(Body::from("too many requests; try again shortly\n"));
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(wait));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(LIMITED.clone(), HeaderValue::from_static("1"));
    response
}

/// Applies the public listener's budgets: `pages` (everything but the costly forms) share
/// one, `forms` (submissions, additions, receipt sign-ins) another, so a flood of either
/// cannot use up the other's; then each client's own budget around both (when clients can be
/// told apart), then the localized 429 page.
pub fn public<S>(
    limits: &RateLimits,
    pages: axum::Router<S>,
    forms: axum::Router<S>,
) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let (pages_budget, _) = layer(
        GlobalKeyExtractor,
        limits.public_per_second,
        limits.public_burst,
    );
    let (forms_budget, _) = layer(
        GlobalKeyExtractor,
        limits.submissions_per_second,
        limits.submissions_burst,
    );
    let router = pages.layer(pages_budget).merge(forms.layer(forms_budget));
    let router = match limits.client_address {
        ClientAddress::None => router,
        mode => {
            let key = ClientKey {
                mode,
                trusted: Arc::new(limits.trusted_proxies.clone()),
            };
            let (per_client, config) =
                layer(key, limits.per_client_per_second, limits.per_client_burst);
            // Forget clients whose budget has refilled: the map follows the clients active now.
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
            router.layer(per_client)
        }
    };
    router.layer(axum::middleware::from_fn(localize_limited))
}

/// Applies the analyst listener's global budget.
pub fn analyst(limits: &RateLimits, router: axum::Router) -> axum::Router {
    let (global, _) = layer(
        GlobalKeyExtractor,
        limits.analyst_per_second,
        limits.analyst_burst,
    );
    router.layer(global)
}

/// Turns an over-budget answer on the public listener into a page in the visitor's language.
pub async fn localize_limited(
    PageLang(lang): PageLang,
    request: Request,
    next: Next,
) -> axum::response::Response {
    let response = next.run(request).await;
    if !response.headers().contains_key(&LIMITED) {
        return response;
    }
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    let mut page = message_page(
        StatusCode::TOO_MANY_REQUESTS,
        lang,
        "limited-title",
        vec![lang.t("limited-body")],
        None,
    );
    if let Some(value) = retry_after {
        page.headers_mut().insert(header::RETRY_AFTER, value);
    }
    page
}
