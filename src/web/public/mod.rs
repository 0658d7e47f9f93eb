//! The public listener: what sources see. Landing, the submission form and the receipt, and a
//! source's return with the receipt. No JavaScript, no third-party resources; everything
//! works in Tor Browser at its Safest level.
//!
//! Its state, `PublicState`, holds intake and the sources' in-memory sessions — and nothing
//! of analysts: no handler here can reach analyst authentication.

mod error;
mod followup;
mod pages;
mod submit;
mod upload;

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::sync::Semaphore;

use crate::config::{Config, FollowupConfig, Limits};
use crate::followup::SourceSessions;
use crate::intake::Intake;
use crate::web::middleware::{budgets, headers, with_common_layers};
use crate::web::shared::pages::stylesheet;
use crate::web::transport::body_timeout;

/// What the public handlers can reach.
#[derive(Clone)]
pub struct PublicState {
    pub intake: Arc<Intake>,
    /// Sources signed in with their receipt (held in memory only).
    pub sources: Arc<SourceSessions>,
    /// Bounds the submissions being received at once (and so the memory they hold).
    pub submissions: Arc<Semaphore>,
    pub limits: Arc<Limits>,
    pub followup: Arc<FollowupConfig>,
    /// Where the free-space guard looks before an upload is accepted.
    pub data_dir: Arc<Path>,
}

impl PublicState {
    pub fn new(intake: Arc<Intake>, config: &Config) -> Self {
        Self {
            intake,
            sources: Arc::new(SourceSessions::new(&config.followup)),
            submissions: Arc::new(Semaphore::new(
                config.limits.max_concurrent_submissions as usize,
            )),
            limits: Arc::new(config.limits.clone()),
            followup: Arc::new(config.followup.clone()),
            data_dir: config.storage.data_dir.clone().into(),
        }
    }
}

/// The public router: pages and forms, each behind their own budget, with the common layers
/// and, when an onion address is configured, `Onion-Location`.
pub fn router(state: PublicState, config: &Config) -> Router {
    let pages = Router::new()
        .route("/", get(pages::landing))
        .route("/submit", get(pages::submit_form))
        .route("/followup", get(followup::show_signin))
        .route("/followup/case", get(followup::case))
        .route("/followup/case/delete-reply", post(followup::delete_reply))
        .route("/followup/signout", post(followup::signout))
        .route("/static/style.css", get(stylesheet))
        .fallback(pages::not_found)
        .layer(body_timeout(&config.limits));
    // The forms that cost work: sealing and storing, or a receipt lookup. Our own limits apply
    // to uploads, field by field, with a page that says which.
    let forms = Router::new()
        .route(
            "/submit",
            post(submit::submit).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/followup",
            post(followup::signin).layer(body_timeout(&config.limits)),
        )
        .route(
            "/followup/case/add",
            post(followup::add).layer(DefaultBodyLimit::disable()),
        );
    let router = budgets::public(&config.rate_limits, pages, forms).with_state(state);
    let router = with_common_layers(router);
    match config.public.onion_address.as_deref() {
        Some(onion) => router.layer(axum::middleware::from_fn_with_state(
            Arc::<str>::from(onion),
            headers::onion_location,
        )),
        None => router,
    }
}
