//! The composition root: opens the store with its server secret, builds each listener's state,
//! spawns the maintenance tasks, and runs both listeners until shutdown. `tipbox serve` calls
//! `serve`; the other commands use `open_store`, `open_audited_store` and `load_secret`.
//!
//! Data flows one way from here: a request reaches `web`, which hands a submission to
//! `intake` (sealing with `seal` to the `keyring`), which commits it to the `store`.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::auth::password::PasswordHasherPool;
use crate::auth::signin::Authenticator;
use crate::config::{ClientAddress, Config};
use crate::intake::{Intake, KeyState, KeyringCache};
use crate::secrets::{SecretError, ServerSecret};
use crate::store::{CommitQueue, SecretCheck, Store};
use crate::web::transport::ledger::Ledger;
use crate::web::transport::tls::{Tls, TlsFiles};
use crate::web::{AnalystState, PublicState, analyst, public, transport};

/// Opens the database named by the configuration and brings its schema up to date.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database_url(), config.database.max_connections)
        .await
        .context("opening the database")?;
    store.migrate().await?;
    Ok(store)
}

/// The store with the audit trail's key, for commands that record what they do.
pub async fn open_audited_store(config: &Config) -> anyhow::Result<Store> {
    let store = open_store(config).await?;
    let secret = load_secret(config, &store).await?;
    Ok(store.with_audit_key(
        crate::audit::AuditKey::new(&secret),
        config.privacy.time_granularity_seconds,
    ))
}

/// Loads the server secret, creating it on the very first start of a fresh deployment (so the
/// quick start is one command), and refuses a secret that does not belong to this database.
pub async fn load_secret(config: &Config, store: &Store) -> anyhow::Result<ServerSecret> {
    let data_dir = &config.storage.data_dir;
    let secret = match ServerSecret::load(data_dir) {
        Ok(secret) => secret,
        Err(SecretError::Missing(path)) if !store.has_secret_check().await? => {
            let secret = ServerSecret::create(data_dir)?;
            tracing::info!(path = %path.display(), "created a new server secret for this new deployment");
            secret
        }
        Err(e) => return Err(e.into()),
    };
    match store.check_secret(&secret.check_value()).await? {
        SecretCheck::Matches | SecretCheck::FirstUse => Ok(secret),
        SecretCheck::Mismatch => bail!(
            "the server secret in {} is not the one this database was set up with; \
             copy the deployment's server.secret here (every node needs the same one)",
            data_dir.display()
        ),
    }
}

/// The file next to the server secret that says this deployment's rows stored before bindings
/// existed have been bound (`bind_rows_stored_before_bindings`).
pub const BINDINGS_MADE_FILE: &str = "bindings-made";

/// Binds, once per deployment, what was stored before tips' receipts and analysts' TOTP
/// secrets were bound (migration 0007): tips without a binding get one, and TOTP secrets sealed
/// without their account are sealed again for it.
///
/// Once, and never again: after this pass a tip without a binding, or a TOTP secret sealed
/// without its account, is one that someone put there by writing the database, and binding it
/// would launder the forgery. Two records say it is done: `bindings_made` in the database's
/// settings (so that other nodes of the deployment skip it), and `BINDINGS_MADE_FILE` in the
/// data directory, next to the server secret, where someone who can only write the database
/// cannot remove it. A node whose data directory has the file never binds anything, whatever
/// the database says.
pub async fn bind_rows_stored_before_bindings(
    data_dir: &Path,
    store: &Store,
    secret: &ServerSecret,
) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let marker = data_dir.join(BINDINGS_MADE_FILE);
    if marker.exists() {
        return Ok(());
    }
    if !store.bindings_made().await? {
        let key = crate::receipt::TipBindingKey::new(secret);
        let tips = store
            .bind_unbound_tips(|id, hash, recipient| key.bind(id, hash, recipient), 500)
            .await
            .context("binding the receipts of tips stored before bindings existed")?;
        let accounts = store
            .reseal_totp_secrets(|username, sealed| {
                crate::auth::totp::reseal_unbound_secret(secret, username, sealed)
            })
            .await
            .context("binding TOTP secrets stored before bindings existed to their accounts")?;
        if tips + accounts > 0 {
            tracing::info!(
                tips,
                accounts,
                "bound the receipts of tips and the TOTP secrets of accounts stored before bindings existed"
            );
        }
        store.record_bindings_made().await?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&marker)
        .with_context(|| format!("writing {}", marker.display()))?;
    file.write_all(
        b"tipbox: the tips and TOTP secrets stored before bindings existed have been bound.\n\
          While this file exists, tipbox never binds a row without a binding. Keep it with server.secret.\n",
    )
    .and_then(|()| file.sync_all())
    .with_context(|| format!("writing {}", marker.display()))?;
    Ok(())
}

/// `tipbox serve`: both listeners on the configured addresses until SIGTERM or Ctrl-C.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    protect_process_memory()?;
    let shutdown = shutdown_signal()?;
    let app = App::build(config).await?;
    let public = listen(app.config.public.listen)
        .with_context(|| format!("binding public.listen {}", app.config.public.listen))?;
    let analyst = listen(app.config.analyst.listen)
        .with_context(|| format!("binding analyst.listen {}", app.config.analyst.listen))?;
    app.run(public, analyst, shutdown).await
}

/// Connections the kernel queues for a listener before tipbox accepts them. tokio's default
/// (128) overflows under a flood of connections, and the kernel then drops new ones — genuine
/// sources' among them — before tipbox can decide whom to serve.
const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `address` with a deep accept queue (`LISTEN_BACKLOG`).
fn listen(address: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// A server, built and ready to run on two listeners.
pub struct App {
    config: Arc<Config>,
    store: Store,
    intake: Arc<Intake>,
    auth: Arc<Authenticator>,
    /// The group-commit writer; it ends once the last handle to `intake` is dropped.
    writer: JoinHandle<()>,
    public_tls: Option<Arc<Tls>>,
    analyst_tls: Option<Arc<Tls>>,
    /// The operator's texts on the public pages.
    site: Arc<crate::site::Site>,
    /// Background work that ends with the server (key refresh, sweepers, retention, TLS
    /// reloads on SIGHUP).
    tasks: Vec<JoinHandle<()>>,
}

impl App {
    /// Loads TLS, opens the store with its secret, checks the reviewer keys and starts the
    /// commit writer and the maintenance tasks. Anything that would make the server unsafe to
    /// run (a TLS pair that does not load, a secret that is not this database's, a key that
    /// cannot be used here) refuses the start.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        // The operator's texts: a file that does not parse refuses the start, before anything
        // else is opened.
        let site = Arc::new(crate::site::Site::load(&config.site)?);
        // TLS certificates and keys load first: one that does not load refuses the start, so a
        // listener meant for HTTPS never comes up as plain HTTP. SIGHUP reloads them from now on.
        let public_tls = load_tls(
            "public",
            config.public.tls_cert.as_deref(),
            config.public.tls_key.as_deref(),
        )?;
        let analyst_tls = load_tls(
            "analyst",
            config.analyst.tls_cert.as_deref(),
            config.analyst.tls_key.as_deref(),
        )?;
        let tls_reloader = transport::tls::spawn_reloader(
            [&public_tls, &analyst_tls]
                .into_iter()
                .flatten()
                .cloned()
                .collect(),
        )
        .context("installing the SIGHUP handler")?;
        let config = Arc::new(config);
        let store = open_store(&config).await?;
        let secret = load_secret(&config, &store).await?;
        let store = store.with_audit_key(
            crate::audit::AuditKey::new(&secret),
            config.privacy.time_granularity_seconds,
        );
        bind_rows_stored_before_bindings(&config.storage.data_dir, &store, &secret).await?;
        let keys = KeyringCache::load(&store).await?;
        match keys.current() {
            KeyState::Ready(set) => tracing::info!(
                keys = set.keys.len(),
                key_set = set.id,
                "reviewer keys loaded"
            ),
            KeyState::NoKeys => tracing::warn!(
                "no active reviewer key: the tip line will answer 'submissions are paused' until one is added with `tipbox keys add`"
            ),
            // A key that cannot be used here is a configuration error: refuse to start.
            KeyState::Unusable(why) => bail!("{why}"),
        }
        let (queue, writer) = CommitQueue::start(store.clone());
        let intake = Arc::new(Intake::new(
            store.clone(),
            queue,
            keys,
            &secret,
            config.privacy.time_granularity_seconds,
        ));
        let hasher = PasswordHasherPool::new(
            config.analyst.hash_params(),
            config.analyst.max_concurrent_hashes as usize,
        )?;
        let auth = Arc::new(Authenticator::new(
            store.clone(),
            hasher,
            Arc::new(secret),
            config.analyst.session_policy(),
            config.privacy.time_granularity_seconds,
        ));
        let tasks = vec![
            tls_reloader,
            intake.spawn_maintenance(Duration::from_secs(config.keys.refresh_seconds)),
            spawn_session_sweeper(Arc::clone(&auth)),
            crate::retention::spawn(store.clone(), config.retention.clone()),
        ];
        Ok(App {
            config,
            store,
            intake,
            auth,
            writer,
            public_tls,
            analyst_tls,
            site,
            tasks,
        })
    }

    /// Serves the public router on `public` and the analyst router on `analyst` until
    /// `shutdown` completes; then finishes the requests in flight, commits what is queued and
    /// closes the store.
    pub async fn run(
        self,
        public: TcpListener,
        analyst: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let App {
            config,
            store,
            intake,
            auth,
            writer,
            public_tls,
            analyst_tls,
            site,
            mut tasks,
        } = self;
        warn_about_clients(&config, &public)?;
        let ledger = Ledger::new(&config.rate_limits);
        let public_state =
            PublicState::new(Arc::clone(&intake), Arc::clone(&ledger), site, &config);
        // Expired source sessions are dropped (and their reply keys zeroized) within a minute
        // even if nobody comes back to them; so are receipts kept for their page.
        tasks.push(public_state.sources.spawn_sweeper(Duration::from_secs(30)));
        tasks.push(public_state.spawn_shown_sweeper(Duration::from_secs(30)));
        let analyst_state = AnalystState::new(Arc::clone(&intake), auth, &config);
        let scheme = |tls: &Option<Arc<Tls>>| if tls.is_some() { "https" } else { "http" };
        tracing::info!(
            "public listener on {}://{}",
            scheme(&public_tls),
            public.local_addr()?
        );
        tracing::info!(
            "analyst listener on {}://{}",
            scheme(&analyst_tls),
            analyst.local_addr()?
        );
        tracing::info!(database = store.backend_name(), "tipbox is serving");

        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        // Slow and idle clients are cut off (web::transport); who a client is (a circuit, an
        // address) reaches only the ledger and the budgets (rate_limits.client_address), and
        // nothing logs or stores it.
        let clients = transport::Clients {
            mode: config.rate_limits.client_address,
            ledger,
            trusted: Arc::new(config.rate_limits.trusted_proxies.clone()),
        };
        let public_server = transport::serve(
            public,
            public::router(public_state, &config),
            &config.limits,
            public_tls,
            Some(clients),
            stopped(stop_rx.clone()),
        );
        let analyst_server = transport::serve(
            analyst,
            analyst::router(analyst_state, &config),
            &config.limits,
            analyst_tls,
            None,
            stopped(stop_rx),
        );
        let signals = async move {
            shutdown.await;
            tracing::info!("shutting down: finishing requests in flight");
            let _ = stop_tx.send(true);
        };
        let (public_result, analyst_result, ()) =
            tokio::join!(public_server, analyst_server, signals);
        public_result.context("public listener")?;
        analyst_result.context("analyst listener")?;
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
        // Dropping the last handle lets the commit writer finish what is queued, then stop.
        drop(intake);
        let _ = writer.await;
        store.close().await;
        Ok(())
    }
}

/// Says at start-up what the way clients are told apart means for sources. With `"none"` one
/// client can spend the budgets every source needs; with `"peer"` on a loopback listener, the
/// usual place behind tor, every visitor is the same address and the same thing happens.
fn warn_about_clients(config: &Config, public: &TcpListener) -> anyhow::Result<()> {
    let loopback = public.local_addr()?.ip().is_loopback();
    match config.rate_limits.client_address {
        ClientAddress::None => tracing::warn!(
            "rate_limits.client_address = \"none\": every client shares one set of budgets, so a \
             single client sending junk can lock every source out. Behind tor, set \
             client_address = \"tor-circuit\" with `HiddenServiceExportCircuitID haproxy` in the \
             torrc (deploy/torrc)"
        ),
        ClientAddress::Peer if loopback => tracing::warn!(
            "rate_limits.client_address = \"peer\" on a loopback listener: if this is behind tor, \
             every visitor has the same address and shares one set of budgets, so a single \
             client can lock sources out. Behind tor, set client_address = \"tor-circuit\" with \
             `HiddenServiceExportCircuitID haproxy` in the torrc (deploy/torrc)"
        ),
        ClientAddress::TorCircuit => tracing::info!(
            "public listener expects tor's PROXY header on every connection (tor-circuit); {}",
            transport::client::TORRC_HINT
        ),
        _ => {}
    }
    Ok(())
}

/// Ended analyst sessions are deleted every minute, so the database keeps no history of
/// sign-ins.
fn spawn_session_sweeper(auth: Arc<Authenticator>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(60));
        loop {
            ticker.tick().await;
            if let Err(error) = auth.sweep_sessions(crate::clock::now()).await {
                tracing::error!(%error, "could not delete ended sessions");
            }
        }
    })
}

/// Plaintext of submissions passes through this process's memory: keep it out of core dumps
/// and away from other processes of the same user (ptrace).
fn protect_process_memory() -> anyhow::Result<()> {
    use nix::sys::resource::{Resource, setrlimit};
    setrlimit(Resource::RLIMIT_CORE, 0, 0).context("disabling core dumps")?;
    nix::sys::prctl::set_dumpable(false).context("marking the process not dumpable")?;
    Ok(())
}

/// A listener's TLS, if its configuration names a certificate and key.
fn load_tls(
    section: &'static str,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> anyhow::Result<Option<Arc<Tls>>> {
    let Some(files) = TlsFiles::from_config(section, cert, key) else {
        return Ok(None);
    };
    let tls = Tls::load(files).context("invalid configuration")?;
    tracing::info!("{section} listener: TLS 1.2/1.3 with the certificate in {section}.tls_cert");
    Ok(Some(Arc::new(tls)))
}

/// SIGTERM or Ctrl-C. The handlers are installed here, before anything is served (a future
/// that installed them when first polled would leave a window in which SIGTERM kills the
/// process outright, with no requests finished).
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = term.recv() => {}
        }
    })
}
