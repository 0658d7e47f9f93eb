//! The analyst listener: the desk (server-rendered pages) and the JSON API under `/api/v1`,
//! and `/health`. Never reachable from the public listener.
//!
//! Its state, `AnalystState`, holds intake (the store and sealing) and analyst
//! authentication; both surfaces act through `actions` and `downloads`, so a tip is triaged,
//! written on and downloaded the same way from either.

mod actions;
mod api;
mod desk;
mod downloads;
mod error;
mod extract;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;

use crate::auth::signin::Authenticator;
use crate::config::Config;
use crate::intake::Intake;
use crate::web::middleware::deadline::{self, BodyDeadline};
use crate::web::middleware::{budgets, refusals, with_common_layers};
use crate::web::shared::pages::stylesheet;

/// What the analyst handlers can reach.
#[derive(Clone)]
pub struct AnalystState {
    pub intake: Arc<Intake>,
    pub auth: Arc<Authenticator>,
    /// The fewest active reviewer keys a retirement may leave (`keys.min_active`).
    pub min_active_keys: usize,
}

impl AnalystState {
    pub fn new(intake: Arc<Intake>, auth: Arc<Authenticator>, config: &Config) -> Self {
        Self {
            intake,
            auth,
            min_active_keys: config.keys.min_active as usize,
        }
    }
}

/// The largest body the analyst listener reads (re-keyed headers; everything else is smaller).
const MAX_BODY_BYTES: usize = 192 * 1024;

/// The analyst router: desk, API and health behind the listener's budget, with the common
/// layers. Request bodies are small here (64 KiB) and must arrive whole before a deadline, but
/// for re-keyed items, which stream; refusals are JSON on the API.
pub fn router(state: AnalystState, config: &Config) -> Router {
    let router = Router::new()
        .route("/health", get(api::health))
        .merge(api::router())
        .merge(desk::router())
        .route("/static/style.css", get(stylesheet))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn_with_state(
            BodyDeadline::new(&config.limits, MAX_BODY_BYTES),
            deadline::whole_body,
        ))
        .merge(api::uploads())
        .with_state(state);
    let router = budgets::analyst(&config.rate_limits, router)
        .layer(axum::middleware::from_fn(refusals::analyst));
    with_common_layers(router)
}
