//! Typed, validated configuration: a TOML file overlaid with `TIPBOX_<SECTION>__<KEY>` variables.
//!
//! Validation happens once, at start, and every refusal names the offending key, so that a
//! misconfigured server never comes up half-working (fail closed).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The commented configuration that `tipbox init` writes; also the operators' reference.
pub const TEMPLATE: &str = include_str!("../deploy/tipbox.example.toml");

/// The default configuration path, used when neither `--config` nor `TIPBOX_CONFIG` is given.
pub const DEFAULT_PATH: &str = "tipbox.toml";

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub public: ListenerConfig,
    pub analyst: AnalystConfig,
    pub storage: StorageConfig,
    pub database: DatabaseConfig,
    pub limits: Limits,
    pub privacy: PrivacyConfig,
    pub keys: KeysConfig,
    pub followup: FollowupConfig,
    pub rate_limits: RateLimits,
    pub retention: RetentionConfig,
    pub site: crate::site::SiteConfig,
}

/// Automatic deletion of old tips. Ages count from a tip's (rounded) received time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Tips marked closed or spam are deleted this many days after they were received
    /// (0: never).
    pub closed_after_days: u32,
    /// Every tip, whatever its status, is deleted this many days after it was received
    /// (0: never).
    pub all_after_days: u32,
    /// How often `serve` applies the policy, in minutes.
    pub interval_minutes: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            closed_after_days: 0,
            all_after_days: 0,
            interval_minutes: 60,
        }
    }
}

impl RetentionConfig {
    pub fn enabled(&self) -> bool {
        self.closed_after_days > 0 || self.all_after_days > 0
    }
}

/// How a client is told apart from another, for per-client request budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAddress {
    /// Clients cannot be told apart: every budget is shared by all of them, so one client can
    /// use up what every source needs (`serve` warns at start-up).
    None,
    /// Clients connect directly: the peer address.
    Peer,
    /// Behind a reverse proxy listed in `trusted_proxies`: the last `X-Forwarded-For` hop.
    Forwarded,
    /// Behind tor with `HiddenServiceExportCircuitID haproxy`: the circuit id tor sends in a
    /// PROXY protocol header on every connection (`web::transport::client`).
    #[serde(rename = "tor-circuit")]
    TorCircuit,
}

/// Request budgets, per client (a Tor circuit or an address; see `client_address`), and the
/// capacity limits that protect the server as a whole. Kept in memory only.
///
/// Budgets are per client so that no client can use up another's; the global limits are
/// capacity (connections, requests in flight), and when they are reached the clients that
/// have used the most are refused first (`web::transport::ledger`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    pub client_address: ClientAddress,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Page loads (everything but the forms below) per client and minute, and a burst.
    pub pages_per_minute: u32,
    pub pages_burst: u32,
    /// Submissions and additions per client and minute, and a burst.
    pub forms_per_minute: u32,
    pub forms_burst: u32,
    /// Receipt sign-ins per client and minute, and a burst.
    pub signins_per_minute: u32,
    pub signins_burst: u32,
    /// Every request to the analyst listener (analysts are few and authenticated).
    pub analyst_per_second: u32,
    pub analyst_burst: u32,
    /// Open connections to the public listener, all clients together and per client.
    pub max_connections: u32,
    pub max_connections_per_client: u32,
    /// Requests being served at once on the public listener, all together and per client.
    /// Past `max_requests`, only clients that have used little recently are still served.
    pub max_requests: u32,
    pub max_requests_per_client: u32,
    /// Uploads (submissions and additions) one client may have in progress at once.
    pub max_uploads_per_client: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            client_address: ClientAddress::Peer,
            trusted_proxies: Vec::new(),
            pages_per_minute: 120,
            pages_burst: 60,
            forms_per_minute: 6,
            forms_burst: 5,
            signins_per_minute: 10,
            signins_burst: 10,
            analyst_per_second: 20,
            analyst_burst: 100,
            max_connections: 2048,
            max_connections_per_client: 16,
            max_requests: 1024,
            max_requests_per_client: 8,
            max_uploads_per_client: 2,
        }
    }
}

/// Settings that were replaced, with what replaces them: named in the error instead of a bare
/// "unknown field", so that an operator upgrading knows what to write.
const RETIRED: &[(&str, &str)] = &[
    (
        "rate_limits.public_per_second",
        "budgets are per client now: rate_limits.pages_per_minute and pages_burst",
    ),
    ("rate_limits.public_burst", "use rate_limits.pages_burst"),
    (
        "rate_limits.submissions_per_second",
        "budgets are per client now: rate_limits.forms_per_minute and forms_burst",
    ),
    (
        "rate_limits.submissions_burst",
        "use rate_limits.forms_burst",
    ),
    (
        "rate_limits.per_client_per_second",
        "every public budget is per client now: rate_limits.pages_per_minute, \
         forms_per_minute and signins_per_minute",
    ),
    (
        "rate_limits.per_client_burst",
        "use rate_limits.pages_burst, forms_burst and signins_burst",
    ),
    (
        "followup.signins_per_second",
        "receipt sign-ins are budgeted per client now: rate_limits.signins_per_minute",
    ),
    ("followup.signin_burst", "use rate_limits.signins_burst"),
    (
        "limits.upload_rate_grace_seconds",
        "the upload rate is measured over a sliding window now: \
         limits.upload_rate_window_seconds",
    ),
];

/// Sources coming back with their receipt.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FollowupConfig {
    /// A source's session unused for this long ends (and its key is forgotten).
    pub session_idle_seconds: u64,
    /// A source's session ends this long after sign-in, used or not.
    pub session_max_seconds: u64,
    /// Source sessions held at once on this node; beyond it, sign-ins are answered "busy".
    pub max_sessions: usize,
}

impl Default for FollowupConfig {
    fn default() -> Self {
        Self {
            session_idle_seconds: 15 * 60,
            session_max_seconds: 2 * 3600,
            max_sessions: 10_000,
        }
    }
}

/// The public listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerConfig {
    pub listen: SocketAddr,
    /// TLS certificate chain (PEM); with `tls_key`, the listener speaks HTTPS only.
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// The tip line's v3 onion address (`<56 characters>.onion`), advertised to clearnet
    /// visitors with `Onion-Location`.
    pub onion_address: Option<String>,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls_cert: None,
            tls_key: None,
            onion_address: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalystConfig {
    pub listen: SocketAddr,
    /// TLS certificate chain (PEM); with `tls_key`, the listener speaks HTTPS only.
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// argon2id memory per password hash, in KiB (at least 65536: 64 MiB).
    pub argon2_memory_kib: u32,
    /// argon2id passes (at least 3).
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Password hashes computed at once; each holds `argon2_memory_kib` while it runs.
    pub max_concurrent_hashes: u32,
    /// A session unused for this long ends.
    pub session_idle_minutes: u32,
    /// A session ends this long after sign-in, used or not.
    pub session_max_hours: u32,
    /// tor's HiddenServiceDir of the analyst onion service, for `tipbox analyst onion-key`
    /// (and `analyst disable`, which revokes the analyst's key there).
    pub onion_service_dir: Option<PathBuf>,
}

impl Default for AnalystConfig {
    fn default() -> Self {
        let hash = crate::auth::password::HashParams::default();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            tls_cert: None,
            tls_key: None,
            argon2_memory_kib: hash.memory_kib,
            argon2_iterations: hash.iterations,
            argon2_parallelism: hash.parallelism,
            // One: on a small machine each hash takes a core; two let a sign-in flood take
            // both and starve intake (benches/README.md, signin_flood).
            max_concurrent_hashes: 1,
            session_idle_minutes: 30,
            session_max_hours: 12,
            onion_service_dir: None,
        }
    }
}

impl AnalystConfig {
    pub fn session_policy(&self) -> crate::auth::signin::SessionPolicy {
        crate::auth::signin::SessionPolicy {
            idle_seconds: i64::from(self.session_idle_minutes) * 60,
            max_seconds: i64::from(self.session_max_hours) * 3600,
        }
    }

    pub fn hash_params(&self) -> crate::auth::password::HashParams {
        crate::auth::password::HashParams {
            memory_kib: self.argon2_memory_kib,
            iterations: self.argon2_iterations,
            parallelism: self.argon2_parallelism,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://…` or `postgres://…`; unset means SQLite at `<data_dir>/tipbox.db`.
    pub url: Option<String>,
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 10,
        }
    }
}

/// A database URL may carry a password: never print it.
impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.url.as_ref().map(|_| "<redacted>"))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// The largest `limits.max_message_bytes` accepted (`Config::validate`).
const MAX_MESSAGE_BYTES: u64 = 2 * 1024 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_message_bytes: u64,
    pub max_attachment_bytes: u64,
    pub max_total_bytes: u64,
    pub max_attachments: u32,
    pub max_concurrent_submissions: u32,
    /// An upload that sent less than this per second over the last
    /// `upload_rate_window_seconds` is cut off, so that slow senders cannot hold the submission
    /// slots (0 turns the check off). A sliding window, not an average since the start: a fast
    /// start buys no time for a trickle afterwards.
    pub min_upload_bytes_per_second: u64,
    /// The window over which the upload rate is measured (and the longest a read may stall).
    pub upload_rate_window_seconds: u64,
    /// How long a client may take to send a request's head (from its first byte, and also the
    /// PROXY header tor sends), or leave a connection idle.
    pub header_read_timeout_seconds: u64,
    /// How long a small request body (a form that is not an upload) may take to arrive, all of
    /// it: a deadline from the end of the head, not an inactivity timer.
    pub body_timeout_seconds: u64,
    /// Below this much free space in the data directory, new submissions are refused (503)
    /// before any byte is written, instead of failing half way.
    pub min_free_disk_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 256 * 1024,
            max_attachment_bytes: 256 * 1024 * 1024,
            max_total_bytes: 512 * 1024 * 1024,
            max_attachments: 20,
            max_concurrent_submissions: 64,
            min_upload_bytes_per_second: 2048,
            upload_rate_window_seconds: 30,
            header_read_timeout_seconds: 20,
            body_timeout_seconds: 20,
            min_free_disk_bytes: 1 << 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    pub time_granularity_seconds: u64,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        Self {
            time_granularity_seconds: 3600,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    pub refresh_seconds: u64,
    /// `keys retire` refuses to leave fewer active reviewer keys than this (and never none).
    pub min_active: u32,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            refresh_seconds: 5,
            min_active: 1,
        }
    }
}

/// Where the configuration came from, for messages a person can act on.
#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    /// The default path did not exist: built-in defaults plus the environment.
    Defaults,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist (run `tipbox init` to create one)")]
    Missing(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads the configuration. `explicit` is the path given by `--config`/`TIPBOX_CONFIG`:
    /// a missing explicit file is an error, a missing default file means built-in defaults.
    pub fn load(explicit: Option<&Path>) -> Result<(Self, Source), ConfigError> {
        let (path, source) = match explicit {
            Some(path) if !path.exists() => return Err(ConfigError::Missing(path.to_owned())),
            Some(path) => (Some(path.to_owned()), Source::File(path.to_owned())),
            None if Path::new(DEFAULT_PATH).exists() => (
                Some(PathBuf::from(DEFAULT_PATH)),
                Source::File(PathBuf::from(DEFAULT_PATH)),
            ),
            None => (None, Source::Defaults),
        };
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = &path {
            figment = figment.merge(Toml::file_exact(path));
        }
        // Only TIPBOX_<SECTION>__<KEY> variables are configuration; TIPBOX_CONFIG and
        // TIPBOX_LOG are read elsewhere.
        figment = figment.merge(
            Env::prefixed("TIPBOX_")
                .filter(|key| key.as_str().contains("__"))
                .split("__"),
        );
        for (key, instead) in RETIRED {
            if figment.contains(key) {
                return Err(ConfigError::Invalid(format!(
                    "{key} is no longer a setting: {instead}"
                )));
            }
        }
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(describe_figment_error(e)))?;
        config.validate()?;
        Ok((config, source))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError::Invalid(format!("{key}: {why}")));
        let l = &self.limits;
        if l.max_message_bytes == 0 {
            return bad("limits.max_message_bytes", "must be greater than 0");
        }
        if l.max_message_bytes > MAX_MESSAGE_BYTES {
            return bad(
                "limits.max_message_bytes",
                "must be at most 2 MiB (2097152): the message is sealed inside the report's \
                 JSON, which reviewers' clients open in memory (up to 16 MiB, and JSON escaping \
                 can make text up to 6 times longer); longer material belongs in an attachment",
            );
        }
        if l.max_attachment_bytes == 0 {
            return bad("limits.max_attachment_bytes", "must be greater than 0");
        }
        if l.max_total_bytes < l.max_message_bytes {
            return bad(
                "limits.max_total_bytes",
                "must be at least limits.max_message_bytes",
            );
        }
        if l.max_concurrent_submissions == 0 {
            return bad(
                "limits.max_concurrent_submissions",
                "must be greater than 0",
            );
        }
        if !(1..=86_400).contains(&self.privacy.time_granularity_seconds) {
            return bad(
                "privacy.time_granularity_seconds",
                "must be from 1 (exact times) to 86400 (a day); 3600 rounds to the hour",
            );
        }
        // Sizes beyond 1 TiB are a typo, and keep every sum of limits far from overflowing.
        const MAX_BYTES: u64 = 1 << 40;
        for (key, value) in [
            ("limits.max_message_bytes", l.max_message_bytes),
            ("limits.max_attachment_bytes", l.max_attachment_bytes),
            ("limits.max_total_bytes", l.max_total_bytes),
        ] {
            if value > MAX_BYTES {
                return bad(key, "must be at most 1 TiB (1099511627776)");
            }
        }
        if l.min_free_disk_bytes > 1 << 50 {
            return bad("limits.min_free_disk_bytes", "must be at most 1 PiB");
        }
        if l.min_upload_bytes_per_second > 1 << 30 {
            return bad(
                "limits.min_upload_bytes_per_second",
                "must be at most 1 GiB/s",
            );
        }
        let a = &self.analyst;
        if a.argon2_memory_kib < 65_536 || a.argon2_memory_kib > 4 * 1024 * 1024 {
            return bad(
                "analyst.argon2_memory_kib",
                "must be from 65536 (64 MiB) to 4194304 (4 GiB)",
            );
        }
        if !(3..=100).contains(&a.argon2_iterations) {
            return bad("analyst.argon2_iterations", "must be from 3 to 100");
        }
        if !(1..=16).contains(&a.argon2_parallelism) {
            return bad("analyst.argon2_parallelism", "must be from 1 to 16");
        }
        if !(1..=64).contains(&a.max_concurrent_hashes) {
            return bad("analyst.max_concurrent_hashes", "must be from 1 to 64");
        }
        if !(1..=24 * 60).contains(&a.session_idle_minutes) {
            return bad("analyst.session_idle_minutes", "must be from 1 to 1440");
        }
        if !(1..=24 * 7).contains(&a.session_max_hours) {
            return bad("analyst.session_max_hours", "must be from 1 to 168");
        }
        for (key, value) in [
            (
                "limits.header_read_timeout_seconds",
                l.header_read_timeout_seconds,
            ),
            ("limits.body_timeout_seconds", l.body_timeout_seconds),
        ] {
            if !(1..=3600).contains(&value) {
                return bad(key, "must be from 1 to 3600");
            }
        }
        let k = &self.retention;
        for (key, value) in [
            ("retention.closed_after_days", k.closed_after_days),
            ("retention.all_after_days", k.all_after_days),
        ] {
            if value > 36_500 {
                return bad(
                    key,
                    "must be at most 36500 (a hundred years); 0 means never",
                );
            }
        }
        if !(1..=7 * 24 * 60).contains(&k.interval_minutes) {
            return bad(
                "retention.interval_minutes",
                "must be from 1 to 10080 (a week)",
            );
        }
        if !(1..=3600).contains(&l.upload_rate_window_seconds) {
            return bad(
                "limits.upload_rate_window_seconds",
                "must be from 1 to 3600",
            );
        }
        for (key, value) in [
            (
                "limits.header_read_timeout_seconds",
                l.header_read_timeout_seconds,
            ),
            ("limits.body_timeout_seconds", l.body_timeout_seconds),
        ] {
            if !(1..=3600).contains(&value) {
                return bad(key, "must be from 1 to 3600");
            }
        }
        let r = &self.rate_limits;
        for (key, value) in [
            ("rate_limits.pages_per_minute", r.pages_per_minute),
            ("rate_limits.pages_burst", r.pages_burst),
            ("rate_limits.forms_per_minute", r.forms_per_minute),
            ("rate_limits.forms_burst", r.forms_burst),
            ("rate_limits.signins_per_minute", r.signins_per_minute),
            ("rate_limits.signins_burst", r.signins_burst),
            ("rate_limits.analyst_per_second", r.analyst_per_second),
            ("rate_limits.analyst_burst", r.analyst_burst),
            ("rate_limits.max_connections", r.max_connections),
            (
                "rate_limits.max_connections_per_client",
                r.max_connections_per_client,
            ),
            ("rate_limits.max_requests", r.max_requests),
            (
                "rate_limits.max_requests_per_client",
                r.max_requests_per_client,
            ),
            (
                "rate_limits.max_uploads_per_client",
                r.max_uploads_per_client,
            ),
        ] {
            if !(1..=1_000_000).contains(&value) {
                return bad(key, "must be from 1 to 1000000");
            }
        }
        if r.client_address == ClientAddress::Forwarded && r.trusted_proxies.is_empty() {
            return bad(
                "rate_limits.trusted_proxies",
                "must list the reverse proxy's address when client_address = \"forwarded\"",
            );
        }
        let f = &self.followup;
        if !(5..=24 * 3600).contains(&f.session_idle_seconds) {
            return bad("followup.session_idle_seconds", "must be from 5 to 86400");
        }
        if !(f.session_idle_seconds..=7 * 24 * 3600).contains(&f.session_max_seconds) {
            return bad(
                "followup.session_max_seconds",
                "must be at least followup.session_idle_seconds and at most 604800 (a week)",
            );
        }
        if !(1..=1_000_000).contains(&f.max_sessions) {
            return bad("followup.max_sessions", "must be from 1 to 1000000");
        }
        if self.keys.refresh_seconds == 0 {
            return bad("keys.refresh_seconds", "must be at least 1");
        }
        if !(1..=32).contains(&self.keys.min_active) {
            return bad(
                "keys.min_active",
                "must be from 1 to 32 (the last active key can never be retired)",
            );
        }
        if self.database.max_connections == 0 {
            return bad("database.max_connections", "must be at least 1");
        }
        if self.public.listen == self.analyst.listen && self.public.listen.port() != 0 {
            return bad(
                "analyst.listen",
                "must differ from public.listen: the analyst side has its own listener",
            );
        }
        self.validate_tls()?;
        if let Some(url) = &self.database.url
            && !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
        {
            return bad(
                "database.url",
                "must start with sqlite:, postgres:// or postgresql://",
            );
        }
        Ok(())
    }

    /// TLS files come in pairs; the onion address must be a v3 onion hostname. (The files
    /// themselves are read by `serve`, which refuses to start if they do not load.)
    fn validate_tls(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError::Invalid(format!("{key}: {why}")));
        for (section, cert, key) in [
            ("public", &self.public.tls_cert, &self.public.tls_key),
            ("analyst", &self.analyst.tls_cert, &self.analyst.tls_key),
        ] {
            match (cert, key) {
                (Some(_), None) => {
                    return bad(
                        &format!("{section}.tls_key"),
                        &format!("must be set together with {section}.tls_cert"),
                    );
                }
                (None, Some(_)) => {
                    return bad(
                        &format!("{section}.tls_cert"),
                        &format!("must be set together with {section}.tls_key"),
                    );
                }
                _ => {}
            }
            for (name, path) in [("tls_cert", cert), ("tls_key", key)] {
                if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                    return bad(&format!("{section}.{name}"), "must not be empty");
                }
            }
        }
        if let Some(onion) = &self.public.onion_address
            && !is_v3_onion_hostname(onion)
        {
            return bad(
                "public.onion_address",
                "must be a v3 onion hostname (56 lowercase letters and digits, then \".onion\", \
                 as in tor's hostname file; no http:// or path), with a valid checksum",
            );
        }
        Ok(())
    }

    /// The database URL, defaulting to SQLite inside the data directory.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}",
                self.storage.data_dir.join("tipbox.db").display()
            ),
        }
    }
}

/// A v3 onion service's hostname: `base32(public key (32 bytes) | checksum (2) | version (3))`
/// in lowercase, then `.onion`, where the checksum is the start of
/// `SHA3-256(".onion checksum" | public key | version)` (tor's rend-spec), so a mistyped
/// address is refused.
fn is_v3_onion_hostname(name: &str) -> bool {
    use sha3::{Digest, Sha3_256};
    let Some(label) = name.strip_suffix(".onion") else {
        return false;
    };
    if label.len() != 56 {
        return false;
    }
    // 56 characters of 5 bits: exactly 35 bytes.
    let mut bytes = Vec::with_capacity(35);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in label.bytes() {
        let value = match c {
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return false,
        };
        acc = (acc << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            bytes.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    let (public_key, rest) = bytes.split_at(32);
    let (checksum, version) = rest.split_at(2);
    if version != [3] {
        return false;
    }
    let digest = Sha3_256::new()
        .chain_update(b".onion checksum")
        .chain_update(public_key)
        .chain_update(version)
        .finalize();
    digest[..2] == *checksum
}

/// Names the offending key the way the operator wrote it: `section.key` for the file, the
/// `TIPBOX_SECTION__KEY` variable for the environment.
fn describe_figment_error(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let from_env = e
                .metadata
                .as_ref()
                .is_some_and(|m| m.name.contains("environment"));
            let key = if e.path.is_empty() {
                String::new()
            } else if from_env {
                format!("TIPBOX_{}: ", e.path.join("__").to_uppercase())
            } else {
                format!("{}: ", e.path.join(".").to_lowercase())
            };
            let source = match &e.metadata {
                Some(m) if !from_env => m
                    .source
                    .as_ref()
                    .map(|s| format!(" (in {s})"))
                    .unwrap_or_default(),
                _ => String::new(),
            };
            format!("{key}{}{source}", e.kind)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_a_valid_configuration_with_the_defaults() {
        let from_template: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(TEMPLATE))
            .extract()
            .expect("template parses");
        from_template.validate().expect("template validates");
        let defaults = Config::default();
        assert_eq!(from_template.public.listen, defaults.public.listen);
        assert_eq!(from_template.analyst.listen, defaults.analyst.listen);
        assert_eq!(
            from_template.limits.max_total_bytes,
            defaults.limits.max_total_bytes
        );
        assert_eq!(
            from_template.limits.max_attachment_bytes,
            defaults.limits.max_attachment_bytes
        );
        assert!(from_template.public.tls_cert.is_none() && from_template.analyst.tls_key.is_none());
        assert!(from_template.public.onion_address.is_none());
    }

    fn with_toml(toml: &str) -> Result<(), ConfigError> {
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(toml))
            .extract()
            .map_err(|e| ConfigError::Invalid(describe_figment_error(e)))?;
        config.validate()
    }

    fn refusal(toml: &str) -> String {
        with_toml(toml).expect_err("refused").to_string()
    }

    #[test]
    fn tls_files_come_in_pairs_on_either_listener() {
        with_toml("[public]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"").unwrap();
        with_toml("[analyst]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"").unwrap();
        let missing_key = refusal("[public]\ntls_cert = \"c.pem\"");
        assert!(
            missing_key.contains("public.tls_key: must be set together with public.tls_cert"),
            "{missing_key}"
        );
        let missing_cert = refusal("[analyst]\ntls_key = \"k.pem\"");
        assert!(
            missing_cert.contains("analyst.tls_cert: must be set together with analyst.tls_key"),
            "{missing_cert}"
        );
        let empty = refusal("[analyst]\ntls_cert = \"\"\ntls_key = \"k.pem\"");
        assert!(
            empty.contains("analyst.tls_cert: must not be empty"),
            "{empty}"
        );
        let unknown = refusal("[public]\ntls_certificate = \"c.pem\"");
        assert!(unknown.contains("tls_certificate"), "{unknown}");
    }

    #[test]
    fn the_onion_address_must_be_a_v3_hostname_with_its_checksum() {
        // The Tor Project's own onion service.
        let good = "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion";
        assert!(is_v3_onion_hostname(good));
        with_toml(&format!("[public]\nonion_address = \"{good}\"")).unwrap();
        let typo = good.replacen("2gzy", "2gzz", 1);
        for bad in [
            typo.as_str(),
            "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid",
            "http://2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion",
            "2GZYXA5IHM7NSGGFXNU52RCK2VV4RVMDLKIU3ZZUI5DU4XYCLEN53WID.onion",
            "expyuzz4wqqyqhjn.onion",
            "",
        ] {
            assert!(!is_v3_onion_hostname(bad), "{bad}");
            let refused = refusal(&format!("[public]\nonion_address = \"{bad}\""));
            assert!(refused.contains("public.onion_address:"), "{refused}");
        }
    }
}
