//! The public listener: what sources see. Landing, the submission form and the receipt, and a
//! source's return with the receipt. No JavaScript, no third-party resources; everything
//! works in Tor Browser at its Safest level.
//!
//! Its state, `PublicState`, holds intake and the sources' in-memory sessions — and nothing
//! of analysts: no handler here can reach analyst authentication.

mod disk;
mod error;
mod followup;
mod pages;
mod receipt;
mod shown;
mod slots;
mod submit;
mod upload;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};

use crate::config::{Config, FollowupConfig, Limits};
use crate::followup::SourceSessions;
use crate::intake::Intake;
use crate::site::Site;
use crate::web::middleware::admission::{self, Admission};
use crate::web::middleware::budgets::PublicBudgets;
use crate::web::middleware::deadline::{self, BodyDeadline};
use crate::web::middleware::{headers, refusals, with_common_layers};
use crate::web::shared::cookies;
use crate::web::shared::pages::stylesheet;
use crate::web::transport::ledger::Ledger;

/// The largest body of a small form (a receipt sign-in, a reply deletion, a sign-out).
const SMALL_FORM_BYTES: usize = 16 * 1024;

/// What the public handlers can reach.
#[derive(Clone)]
pub struct PublicState {
    pub intake: Arc<Intake>,
    /// Sources signed in with their receipt (held in memory only).
    pub sources: Arc<SourceSessions>,
    /// Who is using the listener, and how much (shared with the transport).
    pub ledger: Arc<Ledger>,
    /// The submissions being received at once (bounding the memory they hold), lightest
    /// clients first.
    pub slots: Arc<slots::Slots>,
    /// Room on disk for uploads in progress.
    pub disk: Arc<disk::DiskGuard>,
    pub limits: Arc<Limits>,
    pub followup: Arc<FollowupConfig>,
    /// Receipts just shown, kept until written down (`shown`).
    pub shown: Arc<shown::ShownReceipts>,
    /// The operator's texts, set for every request (`Site::scope`).
    pub site: Arc<Site>,
}

impl PublicState {
    pub fn new(intake: Arc<Intake>, ledger: Arc<Ledger>, site: Arc<Site>, config: &Config) -> Self {
        Self {
            intake,
            sources: Arc::new(SourceSessions::new(&config.followup)),
            ledger: Arc::clone(&ledger),
            slots: slots::Slots::new(
                config.limits.max_concurrent_submissions as usize,
                Arc::clone(&ledger),
                config.limits.min_upload_bytes_per_second,
            ),
            disk: disk::DiskGuard::new(&config.storage.data_dir, config.limits.min_free_disk_bytes),
            limits: Arc::new(config.limits.clone()),
            followup: Arc::new(config.followup.clone()),
            shown: Arc::default(),
            site,
        }
    }

    /// Forgets receipts whose page has expired, every `period`, even if nobody submits.
    pub fn spawn_shown_sweeper(&self, period: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let shown = Arc::clone(&self.shown);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            loop {
                ticker.tick().await;
                shown.sweep();
            }
        })
    }
}

/// The public router. Each client's requests are admitted by the ledger (junk charged to its
/// sender), then spent from one of its three budgets — pages, forms (uploads), receipt
/// sign-ins — so that no kind of request can starve another; small bodies must arrive whole
/// before their deadline; refusals are pages in the visitor's language. With the common
/// layers and, when an onion address is configured, `Onion-Location`.
pub fn router(state: PublicState, config: &Config) -> Router {
    let budgets = PublicBudgets::new(&config.rate_limits);
    let small_bodies = from_fn_with_state(
        BodyDeadline::new(&config.limits, SMALL_FORM_BYTES),
        deadline::whole_body,
    );
    let pages = Router::new()
        .route("/", get(pages::landing))
        .route("/submit", get(pages::submit_form))
        .route("/followup", get(followup::show_signin))
        .route("/followup/case", get(followup::case))
        .route("/followup/case/delete-reply", post(followup::delete_reply))
        .route("/followup/signout", post(followup::signout))
        .route("/static/style.css", get(stylesheet))
        .route("/favicon.ico", get(pages::no_favicon))
        .route("/receipt", post(receipt::show_again))
        .route("/receipt/check", post(receipt::check))
        .fallback(pages::not_found)
        .layer(small_bodies.clone())
        .layer(budgets.pages);
    // Uploads stream under our own limits, field by field, with a page that says which.
    let uploads = Router::new()
        .route(
            "/submit",
            post(submit::submit).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/followup/case/add",
            post(followup::add).layer(DefaultBodyLimit::disable()),
        )
        .layer(budgets.forms);
    let signins = Router::new()
        .route("/followup", post(followup::signin))
        .layer(small_bodies)
        .layer(budgets.signins);
    let admission = Admission::new(Arc::clone(&state.ledger), &config.rate_limits);
    let site = Arc::clone(&state.site);
    let router = pages
        .merge(uploads)
        .merge(signins)
        .with_state(state)
        .layer(from_fn_with_state(admission, admission::admit))
        .layer(from_fn(refusals::public_pages))
        .layer(from_fn(cookies::sources_over_plain_http))
        // Outermost of the public layers: every page, refusals included, shows the site.
        .layer(from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                Site::scope(Arc::clone(&site), next.run(request))
            },
        ));
    let router = with_common_layers(router);
    match config.public.onion_address.as_deref() {
        Some(onion) => router.layer(axum::middleware::from_fn_with_state(
            Arc::<str>::from(onion),
            headers::onion_location,
        )),
        None => router,
    }
}
