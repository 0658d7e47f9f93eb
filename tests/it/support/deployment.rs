//! A deployment: a directory with a configuration file, a data directory, a log file and a
//! database (a SQLite file, or a schema of its own in the test PostgreSQL), and the `tipbox`
//! commands an operator runs on it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::library::{AuditEntry, Counts, QueueFilter, Store};
use super::server::Server;

pub const TIPBOX: &str = env!("CARGO_BIN_EXE_tipbox");

/// The PostgreSQL the tests use; CI and every developer machine of this project run one. On
/// loopback the default goes without TLS: a handshake per connection (in a debug build, for
/// every command and pool) costs ~0.3 s and protects nothing there.
pub fn postgres_base_url() -> String {
    std::env::var("TIPBOX_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test?sslmode=disable".to_owned())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct Deployment {
    pub dir: tempfile::TempDir,
    pub backend: Backend,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    pub database_url: String,
    pg_schema: Option<String>,
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).unwrap();
    hex::encode(bytes)
}

/// The standard output of `command`, which must have succeeded.
pub fn succeeded(command: String, out: Output) -> String {
    assert!(
        out.status.success(),
        "{command} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `f` to completion on a thread of its own with its own runtime: callers may already be
/// inside a runtime (async tests), or in `Drop`.
fn run_blocking<F: std::future::Future<Output = T> + Send + 'static, T: Send + 'static>(f: F) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    })
    .join()
    .unwrap()
}

/// Runs one statement on the test PostgreSQL's base database (outside any deployment's schema).
fn on_postgres_base(sql: String) -> Result<(), sqlx::Error> {
    run_blocking(async move {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&postgres_base_url()).await?;
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await?;
        Ok(())
    })
}

impl Deployment {
    /// A new deployment; `extra_toml` is appended to the configuration (sections and keys).
    pub fn new(backend: Backend, extra_toml: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let (database_url, pg_schema) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", data_dir.join("tipbox.db").display()),
                None,
            ),
            Backend::Postgres => {
                let schema = format!("tipbox_test_{}", random_suffix());
                on_postgres_base(format!("CREATE SCHEMA {schema}")).expect(
                    "PostgreSQL at TIPBOX_TEST_POSTGRES_URL (default 127.0.0.1:5432/test) must be running",
                );
                let base = postgres_base_url();
                let separator = if base.contains('?') { '&' } else { '?' };
                (
                    format!("{base}{separator}options[search_path]={schema}"),
                    Some(schema),
                )
            }
        };
        let config_path = dir.path().join("tipbox.toml");
        // Tests send far more than a real tip line sees, all from one address: request budgets
        // and capacity are out of the way, except those a test sets itself (limits.rs, flood.rs).
        let extra_toml = with_lifted_rate_limits(extra_toml);
        let config = format!(
            "[public]\nlisten = \"127.0.0.1:0\"\n[analyst]\nlisten = \"127.0.0.1:0\"\n\
             [storage]\ndata_dir = \"{}\"\n[database]\nurl = \"{}\"\n[keys]\nrefresh_seconds = 1\n\
             {extra_toml}\n",
            data_dir.display(),
            database_url,
        );
        std::fs::write(&config_path, config).unwrap();
        let log_path = dir.path().join("server.log");
        Self {
            backend,
            config_path,
            log_path,
            database_url,
            pg_schema,
            dir,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Adds `lines` (TOML `key = value` lines) to a section the configuration already has, such
    /// as `public` or `analyst` (appending a second `[public]` would not parse).
    pub fn add_to_section(&self, section: &str, lines: &str) {
        let config = std::fs::read_to_string(&self.config_path).unwrap();
        let header = format!("[{section}]\n");
        assert!(
            config.contains(&header),
            "no [{section}] in the configuration"
        );
        let config = config.replacen(&header, &format!("{header}{}\n", lines.trim_end()), 1);
        std::fs::write(&self.config_path, config).unwrap();
    }

    /// Replaces `old` with `new` in the configuration file, which must contain `old`.
    pub fn edit_config(&self, old: &str, new: &str) {
        let config = std::fs::read_to_string(&self.config_path).unwrap();
        assert!(config.contains(old), "no {old:?} in the configuration");
        std::fs::write(&self.config_path, config.replace(old, new)).unwrap();
    }

    /// `tipbox --config <this deployment> ARGS…`, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(TIPBOX);
        command
            .arg("--config")
            .arg(&self.config_path)
            .args(args)
            .env_remove("TIPBOX_CONFIG")
            .current_dir(self.dir.path());
        command
    }

    /// Runs `tipbox --config <this deployment> ARGS…`.
    pub fn tipbox(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Like `tipbox` but the command must succeed; its standard output.
    pub fn tipbox_ok(&self, args: &[&str]) -> String {
        succeeded(format!("tipbox {args:?}"), self.tipbox(args))
    }

    /// Makes a reviewer identity, writes it to `<name>.key` (for the `age` CLI) and adds its
    /// recipient to the keyring.
    pub fn add_reviewer(&self, name: &str) -> age::x25519::Identity {
        let identity = self.new_identity(name);
        let recipient = identity.to_public().to_string();
        self.tipbox_ok(&["keys", "add", &recipient, "--label", name]);
        identity
    }

    /// Makes a reviewer identity and writes it to `<name>.key`, without adding it to the
    /// keyring.
    pub fn new_identity(&self, name: &str) -> age::x25519::Identity {
        use age::secrecy::ExposeSecret;
        let identity = age::x25519::Identity::generate();
        std::fs::write(
            self.identity_file(name),
            format!("{}\n", identity.to_string().expose_secret()),
        )
        .unwrap();
        identity
    }

    pub fn identity_file(&self, name: &str) -> PathBuf {
        self.path().join(format!("{name}.key"))
    }

    /// `tipbox serve` on this deployment (at log level debug), not yet started: for `Server::spawn`.
    pub fn serve_command(&self) -> Command {
        self.serve_command_via(&[])
    }

    /// `tipbox serve` run by `wrapper` (a program and its first arguments, such as a shell
    /// script that changes the process's limits and `exec`s the rest).
    pub fn serve_command_via(&self, wrapper: &[&str]) -> Command {
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(TIPBOX);
                command
            }
            None => Command::new(TIPBOX),
        };
        command
            .arg("--config")
            .arg(&self.config_path)
            .arg("serve")
            .env_remove("TIPBOX_CONFIG")
            .env("TIPBOX_LOG", "debug")
            .current_dir(self.path());
        command
    }

    pub fn start(&self) -> Server {
        Server::spawn(self, self.serve_command())
    }

    pub async fn store(&self) -> Store {
        Store::connect(&self.database_url, 2).await.unwrap()
    }

    pub async fn counts(&self) -> Counts {
        let store = self.store().await;
        let counts = store.counts().await.unwrap();
        store.close().await;
        counts
    }

    /// The ids of every stored tip, sorted.
    pub async fn tip_ids(&self) -> Vec<String> {
        let store = self.store().await;
        let filter = QueueFilter {
            limit: 1000,
            ..QueueFilter::default()
        };
        let mut ids: Vec<String> = store
            .list_tips(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.id)
            .collect();
        store.close().await;
        ids.sort();
        ids
    }

    /// Runs a statement directly on the database, bypassing tipbox (to play the adversary, or
    /// to age what is stored). Panics if the database refuses it.
    pub async fn execute_sql(&self, sql: impl Into<String>) {
        self.execute_sql_with(sql, Vec::new()).await
    }

    /// Like `execute_sql`, with `values` bound to the statement's `$1`, `$2`, …: what someone
    /// who can write the database (a PostgreSQL administrator) but holds no secret of tipbox's
    /// can store.
    pub async fn execute_sql_with(&self, sql: impl Into<String>, values: Vec<SqlValue>) {
        let db = Direct::open(self).await.unwrap();
        let done = db.execute(sql.into(), values).await;
        db.close().await;
        done.unwrap_or_else(|e| panic!("{e}"));
    }

    /// Like `execute_sql`, returning the database's refusal.
    pub async fn try_execute_sql(&self, sql: impl Into<String>) -> Result<(), sqlx::Error> {
        let db = Direct::open(self).await?;
        let done = db.execute(sql.into(), Vec::new()).await;
        db.close().await;
        done
    }

    /// One value from the database (`SELECT …` of a single row and column), bypassing tipbox.
    pub async fn query_bytes(&self, sql: &str) -> Option<Vec<u8>> {
        let db = Direct::open(self).await.unwrap();
        let value = db.bytes(sql.to_owned()).await;
        db.close().await;
        value
    }

    /// Every row of a `SELECT`, bypassing tipbox, as a tuple of its columns.
    pub async fn query_rows<R: Row>(&self, sql: &str) -> Vec<R> {
        let db = Direct::open(self).await.unwrap();
        let rows = db.rows(sql.to_owned()).await;
        db.close().await;
        rows
    }

    /// The first column of every row of a `SELECT`, bypassing tipbox.
    pub async fn query_column<T>(&self, sql: &str) -> Vec<T>
    where
        (T,): Row,
    {
        let rows: Vec<(T,)> = self.query_rows(sql).await;
        rows.into_iter().map(|(value,)| value).collect()
    }

    /// The audit trail, in order.
    pub async fn audit_entries(&self) -> Vec<AuditEntry> {
        let store = self.store().await;
        let entries = store.audit_entries().await.unwrap();
        store.close().await;
        entries
    }

    /// Every row of every table, as text, by table (rows sorted): to compare the database
    /// before and after something that must change nothing, and to look for what must not be
    /// stored. On PostgreSQL `bytea` values appear hex-encoded (`\x…`), on SQLite as `X'…'`.
    pub async fn tables(&self) -> BTreeMap<String, Vec<String>> {
        let db = Direct::open(self).await.unwrap();
        let list = match self.backend {
            Backend::Sqlite => "SELECT name FROM sqlite_schema \
                 WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                .to_owned(),
            Backend::Postgres => "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = current_schema()"
                .to_owned(),
        };
        let mut tables = BTreeMap::new();
        for table in db.strings(list).await {
            let rows = match self.backend {
                Backend::Sqlite => {
                    let columns = db
                        .strings(format!("SELECT name FROM pragma_table_info('{table}')"))
                        .await;
                    let row: Vec<String> =
                        columns.iter().map(|c| format!("quote(\"{c}\")")).collect();
                    format!("SELECT {} FROM \"{table}\"", row.join(" || ',' || "))
                }
                Backend::Postgres => format!("SELECT t::text FROM \"{table}\" t"),
            };
            let mut rows = db.strings(rows).await;
            rows.sort();
            tables.insert(table, rows);
        }
        db.close().await;
        tables
    }

    /// Everything stored but the sessions (which note when a session was last used, on every
    /// request): what a refused request must leave exactly as it was.
    pub async fn stored(&self) -> BTreeMap<String, Vec<String>> {
        let mut tables = self.tables().await;
        tables.remove("sessions");
        tables
    }

    /// Exports into a new directory and returns it with the parsed manifest.
    pub fn export(&self) -> (PathBuf, serde_json::Value) {
        let out = self.path().join(format!("export-{}", random_suffix()));
        self.tipbox_ok(&["export", "--out", out.to_str().unwrap()]);
        let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
        (out, serde_json::from_str(&manifest).unwrap())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

/// A value bound into a statement run directly on the database (`Deployment::execute_sql_with`).
pub enum SqlValue {
    Text(String),
    Bytes(Vec<u8>),
}

/// A row type (a tuple of column types) that either backend's rows can be read as
/// (`Deployment::query_rows`).
pub trait Row:
    Send
    + Unpin
    + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
    + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
{
}

impl<R> Row for R where
    R: Send
        + Unpin
        + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
{
}

/// A connection pool straight to a deployment's database, bypassing tipbox.
enum Direct {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Direct {
    async fn open(deployment: &Deployment) -> Result<Self, sqlx::Error> {
        Ok(match deployment.backend {
            Backend::Sqlite => {
                Self::Sqlite(sqlx::SqlitePool::connect(&deployment.database_url).await?)
            }
            Backend::Postgres => {
                Self::Postgres(sqlx::PgPool::connect(&deployment.database_url).await?)
            }
        })
    }

    async fn execute(&self, sql: String, values: Vec<SqlValue>) -> Result<(), sqlx::Error> {
        let sql = sqlx::AssertSqlSafe(sql);
        // The same binding for either backend's query type.
        macro_rules! bound {
            ($query:expr) => {{
                let mut query = $query;
                for value in values {
                    query = match value {
                        SqlValue::Text(text) => query.bind(text),
                        SqlValue::Bytes(bytes) => query.bind(bytes),
                    };
                }
                query
            }};
        }
        match self {
            Self::Sqlite(pool) => bound!(sqlx::query(sql)).execute(pool).await.map(drop),
            Self::Postgres(pool) => bound!(sqlx::query(sql)).execute(pool).await.map(drop),
        }
    }

    async fn rows<R: Row>(&self, sql: String) -> Vec<R> {
        let sql = sqlx::AssertSqlSafe(sql);
        match self {
            Self::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await,
            Self::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await,
        }
        .unwrap()
    }

    /// The first column of every row, as text.
    async fn strings(&self, sql: String) -> Vec<String> {
        let rows: Vec<(String,)> = self.rows(sql).await;
        rows.into_iter().map(|(text,)| text).collect()
    }

    /// The one value of a one-row, one-column query.
    async fn bytes(&self, sql: String) -> Option<Vec<u8>> {
        let sql = sqlx::AssertSqlSafe(sql);
        match self {
            Self::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
            Self::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        }
        .unwrap()
    }

    async fn close(self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if let Some(schema) = self.pg_schema.take() {
            // Best effort: a schema left behind is only clutter in the test database.
            let _ = on_postgres_base(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    }
}

/// Every `[rate_limits]` setting, lifted far above what tests send.
const LIFTED_RATE_LIMITS: &[(&str, &str)] = &[
    ("pages_per_minute", "1000000"),
    ("pages_burst", "1000000"),
    ("forms_per_minute", "1000000"),
    ("forms_burst", "1000000"),
    ("signins_per_minute", "1000000"),
    ("signins_burst", "1000000"),
    ("analyst_per_second", "1000000"),
    ("analyst_burst", "1000000"),
    ("max_connections", "1000000"),
    ("max_connections_per_client", "1000000"),
    ("max_requests", "1000000"),
    ("max_requests_per_client", "1000000"),
    ("max_uploads_per_client", "1000000"),
];

/// `extra_toml` with a `[rate_limits]` section holding every lifted setting it does not set
/// itself (TOML allows a table only once, so they go into the test's own section if it has one).
pub fn with_lifted_rate_limits(extra_toml: &str) -> String {
    let header = "[rate_limits]\n";
    let (before, own) = match extra_toml.find(header) {
        Some(at) => (&extra_toml[..at], &extra_toml[at + header.len()..]),
        None => (extra_toml, ""),
    };
    let sets = |key: &str| {
        own.lines()
            .take_while(|line| !line.starts_with('['))
            .any(|line| line.split('=').next().is_some_and(|k| k.trim() == key))
    };
    let mut section = String::from(header);
    for (key, value) in LIFTED_RATE_LIMITS {
        if !sets(key) {
            section.push_str(&format!("{key} = {value}\n"));
        }
    }
    format!("{before}\n{section}{own}")
}

/// A `[rate_limits]` section with every budget and capacity limit as shipped (the defaults),
/// for tests that must meet them rather than have them lifted.
pub fn shipped_rate_limits(client_address: &str) -> String {
    let d = tipbox::config::RateLimits::default();
    format!(
        "[rate_limits]\nclient_address = \"{client_address}\"\n\
         pages_per_minute = {}\npages_burst = {}\nforms_per_minute = {}\nforms_burst = {}\n\
         signins_per_minute = {}\nsignins_burst = {}\nanalyst_per_second = {}\n\
         analyst_burst = {}\nmax_connections = {}\nmax_connections_per_client = {}\n\
         max_requests = {}\nmax_requests_per_client = {}\nmax_uploads_per_client = {}\n",
        d.pages_per_minute,
        d.pages_burst,
        d.forms_per_minute,
        d.forms_burst,
        d.signins_per_minute,
        d.signins_burst,
        d.analyst_per_second,
        d.analyst_burst,
        d.max_connections,
        d.max_connections_per_client,
        d.max_requests,
        d.max_requests_per_client,
        d.max_uploads_per_client,
    )
}

/// An operator's `[site]` section with every text, as long as deploy/tipbox.example.toml's
/// examples: what a page weighs and how it reads with the operator's words on it.
pub const EXAMPLE_SITE: &str = "[site]\nname = \"Exile Voices tip line\"\n\
    organisation = \"Run by Example Rights, a human-rights group registered in the Netherlands.\"\n\
    reports = \"Two researchers read every report. We publish patterns, never names, and never \
    share a report without your consent.\"\n\
    reply_time = \"We reply within a week. Come back with your receipt to read it.\"\n\
    contact = \"We only ever reply here. We will never ask for your receipt, by phone, by message \
    or in person.\"\n\
    emergency = \"If you or your family are detained or told to return: call +00 000 000 000 \
    (Signal, day and night).\"\n\
    verify_address = \"Our onion address is printed on our website and in our annual report; \
    compare all 56 characters.\"\n";
