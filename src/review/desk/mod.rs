//! `tipbox review desk`: the analyst's review desk, served by the analyst's own machine to the
//! analyst's own browser, on loopback only. It reads and answers tips through the analyst API
//! with the session `review login` saved (through its proxy, as `review pull` does), and
//! decrypts in this process's memory with the analyst's identity: readable tips, and nothing
//! decrypted outside this machine — not on the server, not on disk here (unless the analyst
//! saves a file).
//!
//! The rooms: `guard` (who may drive it: the one-time code, Host and Origin, CSRF, headers),
//! `tips` (fetching, opening, checking and sealing; the in-memory index), `pages` (the
//! server-rendered pages, no JavaScript) and `metadata` (what attachments say about their
//! makers, and copies without it).

mod guard;
mod metadata;
mod pages;
mod tips;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};

use super::http::Api;
use guard::Guard;
use tips::{Memory, Opener, Tips};

/// What the desk's pages reach.
pub struct Desk {
    guard: Arc<Guard>,
    tips: Tips,
}

/// Serves the desk on `listen` (loopback only; port 0 picks a free one) until interrupted,
/// after printing its address and one-time code.
pub async fn desk(identity_files: Vec<String>, listen: SocketAddr) -> anyhow::Result<()> {
    if !listen.ip().is_loopback() {
        bail!(
            "the desk shows decrypted tips: it listens on loopback only (127.0.0.1 or ::1), not {}",
            listen.ip()
        );
    }
    let api = Api::from_saved_session()?;
    let opener = Opener::start(identity_files)?;
    // The keys must check out before anything is shown that an answer would be sealed to.
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let address = listener.local_addr()?;
    let guard = Arc::new(Guard::new(address.port()));
    let memory = Memory::default();
    // Unread: what this analyst had not fetched when the desk started.
    match tips::list(&api, "&unpulled=true", 2000).await {
        Ok(unread) => memory.mark_unread(unread.into_iter().map(|t| t.id)),
        Err(error) => bail!("reaching the server: {error:#}"),
    }
    let desk = Arc::new(Desk {
        guard: Arc::clone(&guard),
        tips: Tips {
            api,
            opener,
            memory,
        },
    });
    let code = guard.code().expect("a new guard has its code");
    println!("The review desk is on http://{address}/ (this machine only).");
    println!(
        "Open it in your browser and type this one-time code: {}",
        code.as_str()
    );
    println!("Stop it with Ctrl-C: what it decrypted lives in its memory only, and goes with it.");
    use std::io::Write;
    std::io::stdout().flush()?;
    drop(code);
    let app = Router::new()
        .route("/", get(pages::start))
        .route("/unlock", post(pages::unlock))
        .route("/style.css", get(pages::stylesheet))
        .route("/queue", get(pages::queue))
        .route("/bulk", post(pages::bulk))
        .route("/tips/{id}", get(pages::tip))
        .route("/tips/{id}/triage", post(pages::triage))
        .route("/tips/{id}/write", post(pages::write))
        .route("/tips/{tip}/files/{item}", get(pages::file))
        .with_state(desk)
        .layer(from_fn_with_state(guard, guard::guard));
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
