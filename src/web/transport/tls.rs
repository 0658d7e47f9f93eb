//! TLS on a listener, with rustls and its `ring` provider, when the listener has a certificate
//! and key configured (`public.tls_cert`/`public.tls_key`, and the same under `analyst`).
//!
//! - Protocol versions: TLS 1.3 and TLS 1.2 only, with rustls's cipher suites (all AEAD with
//!   forward secrecy: no CBC, no RSA key exchange, nothing older than TLS 1.2).
//! - ALPN: `h2`, then `http/1.1`.
//! - No session resumption (no tickets, no session cache): a client's visits cannot be linked by
//!   resumption state, and every connection is a full handshake with the certificate in force.
//! - The certificate and key are read at start (a missing, unreadable or malformed file, or a
//!   key that is not the certificate's, refuses the start) and again on SIGHUP: the new pair is
//!   served from the next handshake on, connections already open keep theirs, and a pair that
//!   does not load is logged and the previous one kept. A listener with TLS never falls back to
//!   plain HTTP.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, NoServerSessionStorage, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use zeroize::Zeroizing;

/// A listener's certificate and key files, with the configuration keys that named them.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The configuration section: `public` or `analyst`.
    pub section: &'static str,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// The files of a listener, if its configuration names them (config validation has
    /// already made sure that both or neither are set).
    pub fn from_config(
        section: &'static str,
        cert: Option<&Path>,
        key: Option<&Path>,
    ) -> Option<Self> {
        match (cert, key) {
            (Some(cert), Some(key)) => Some(Self {
                section,
                cert: cert.to_owned(),
                key: key.to_owned(),
            }),
            _ => None,
        }
    }
}

/// Why a certificate and key could not be used. The message names the configuration key and
/// the file; it never contains key material.
#[derive(Debug, thiserror::Error)]
#[error("{section}.{key} ({}): {why}", path.display())]
pub struct TlsError {
    section: &'static str,
    key: &'static str,
    path: PathBuf,
    why: String,
}

/// A listener's TLS: the rustls configuration every handshake uses, and the certificate it
/// serves, which `reload` replaces.
#[derive(Debug)]
pub struct Tls {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: Arc<CurrentCert>,
    config: Arc<ServerConfig>,
}

/// Hands every handshake the certificate in force when it starts.
#[derive(Debug)]
struct CurrentCert(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.0.read().unwrap_or_else(PoisonError::into_inner),
        ))
    }
}

impl Tls {
    /// Loads the certificate and key and builds the listener's TLS configuration.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        // Explicitly ring: the process need not have a default provider installed.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certified = load_pair(&files, &provider)?;
        let current = Arc::new(CurrentCert(RwLock::new(Arc::new(certified))));
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError {
                section: files.section,
                key: "tls_cert",
                path: files.cert.clone(),
                why: format!("the TLS provider cannot be used: {e}"),
            })?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&current) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        // No resumption state that could link one client's connections, and every connection
        // gets the certificate in force (see the module documentation).
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        config.max_early_data_size = 0;
        Ok(Self {
            files,
            provider,
            current,
            config: Arc::new(config),
        })
    }

    /// Reads the certificate and key again and serves them from the next handshake on. On an
    /// error the certificate in force stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let certified = load_pair(&self.files, &self.provider)?;
        *self
            .current
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(certified);
        Ok(())
    }

    /// The acceptor for the next connection.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(Arc::clone(&self.config))
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }
}

/// Reads a certificate chain and its private key (PEM), and checks that they belong together.
fn load_pair(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let cert_error = |why: String| TlsError {
        section: files.section,
        key: "tls_cert",
        path: files.cert.clone(),
        why,
    };
    let key_error = |why: String| TlsError {
        section: files.section,
        key: "tls_key",
        path: files.key.clone(),
        why,
    };
    let cert_pem =
        std::fs::read(&files.cert).map_err(|e| cert_error(format!("cannot be read: {e}")))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(format!("is not a valid PEM file: {e}")))?;
    if chain.is_empty() {
        return Err(cert_error(
            "holds no certificate (expected PEM \"BEGIN CERTIFICATE\" blocks, the server's \
             certificate first, then its intermediates)"
                .to_owned(),
        ));
    }
    let key_pem = Zeroizing::new(
        std::fs::read(&files.key).map_err(|e| key_error(format!("cannot be read: {e}")))?,
    );
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => key_error(
            "holds no private key (expected a PEM \"PRIVATE KEY\", \"RSA PRIVATE KEY\" or \
             \"EC PRIVATE KEY\" block)"
                .to_owned(),
        ),
        e => key_error(format!("is not a valid PEM file: {e}")),
    })?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| key_error(format!("is not a usable private key: {e}")))?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(key_error(format!(
                "is not the private key of the certificate in {}.tls_cert ({})",
                files.section,
                files.cert.display()
            )))
        }
        // ring can tell the public key of every key type it loads; a key it cannot check is
        // refused rather than served unchecked.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Err(key_error(
            "cannot be checked against the certificate (unsupported key type)".to_owned(),
        )),
        Err(e) => Err(cert_error(format!(
            "the first certificate cannot be parsed: {e}"
        ))),
    }
}

/// Reloads every listener's certificate and key on each SIGHUP (`systemctl reload tipbox`),
/// until aborted. The handler is installed before this returns, so a SIGHUP never ends the
/// process once the listeners are up.
pub fn spawn_reloader(listeners: Vec<Arc<Tls>>) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            if listeners.is_empty() {
                tracing::info!("SIGHUP: no TLS certificate is configured, nothing to reload");
            }
            for tls in &listeners {
                let files = tls.files();
                match tls.reload() {
                    Ok(()) => tracing::info!(
                        cert = %files.cert.display(),
                        "{} listener: reloaded the TLS certificate and key; new connections get them",
                        files.section
                    ),
                    Err(error) => tracing::error!(
                        "{} listener: could not reload the TLS certificate and key, still serving the previous ones: {error}",
                        files.section
                    ),
                }
            }
        }
    }))
}
