//! The test harness: real `tipbox` processes, real sockets, real SQLite files and the real
//! PostgreSQL on 127.0.0.1:5432 (database `test`, one fresh schema per deployment).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tipbox::store::{Counts, Store};

pub mod analyst;
pub mod web;

pub const TIPBOX: &str = env!("CARGO_BIN_EXE_tipbox");

/// The PostgreSQL the tests use; CI and every developer machine of this project run one.
pub fn postgres_base_url() -> String {
    std::env::var("TIPBOX_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A deployment: a directory with a config file, a data directory, a log file and a database.
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

fn run_blocking<F: std::future::Future<Output = T> + Send + 'static, T: Send + 'static>(f: F) -> T {
    // Tests may already be inside a runtime; run on a fresh thread with its own.
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
                let base = postgres_base_url();
                let create = format!("CREATE SCHEMA {schema}");
                run_blocking(async move {
                    use sqlx::Connection;
                    let mut conn = sqlx::PgConnection::connect(&base)
                        .await
                        .expect("PostgreSQL at TIPBOX_TEST_POSTGRES_URL (default 127.0.0.1:5432/test) must be running");
                    sqlx::query(sqlx::AssertSqlSafe(create))
                        .execute(&mut conn)
                        .await
                        .unwrap();
                });
                let sep = if postgres_base_url().contains('?') {
                    '&'
                } else {
                    '?'
                };
                (
                    format!("{}{sep}options[search_path]={schema}", postgres_base_url()),
                    Some(schema),
                )
            }
        };
        let config_path = dir.path().join("tipbox.toml");
        // Tests and benchmarks send far more than a real tip line sees: request budgets are
        // out of the way unless a test sets its own (tests/limits.rs).
        let budgets = if extra_toml.contains("[rate_limits]") {
            ""
        } else {
            "[rate_limits]\npublic_per_second = 1000000\npublic_burst = 1000000\n\
             submissions_per_second = 1000000\nsubmissions_burst = 1000000\n\
             analyst_per_second = 1000000\nanalyst_burst = 1000000\n"
        };
        let extra_toml = format!("{extra_toml}\n{budgets}");
        let config = format!(
            "[public]\nlisten = \"127.0.0.1:0\"\n[analyst]\nlisten = \"127.0.0.1:0\"\n\
             [storage]\ndata_dir = \"{}\"\n[database]\nurl = \"{}\"\n[keys]\nrefresh_seconds = 1\n{}",
            data_dir.display(),
            database_url,
            extra_toml
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

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs `tipbox --config <this deployment> ARGS…`.
    pub fn tipbox(&self, args: &[&str]) -> Output {
        Command::new(TIPBOX)
            .arg("--config")
            .arg(&self.config_path)
            .args(args)
            .env_remove("TIPBOX_CONFIG")
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }

    /// Like `tipbox` but the command must succeed.
    pub fn tipbox_ok(&self, args: &[&str]) -> String {
        let out = self.tipbox(args);
        assert!(
            out.status.success(),
            "tipbox {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Makes a reviewer identity, writes it to `<name>.key` (for the `age` CLI) and adds its
    /// recipient to the keyring.
    pub fn add_reviewer(&self, name: &str) -> age::x25519::Identity {
        use age::secrecy::ExposeSecret;
        let identity = age::x25519::Identity::generate();
        std::fs::write(
            self.path().join(format!("{name}.key")),
            format!("{}\n", identity.to_string().expose_secret()),
        )
        .unwrap();
        let recipient = identity.to_public().to_string();
        self.tipbox_ok(&["keys", "add", &recipient, "--label", name]);
        identity
    }

    pub fn identity_file(&self, name: &str) -> PathBuf {
        self.path().join(format!("{name}.key"))
    }

    pub fn start(&self) -> Server {
        Server::start(self)
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

    /// Runs a statement directly on the database, bypassing tipbox (to play the adversary).
    pub async fn execute_sql(&self, sql: &'static str) {
        match self.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&self.database_url).await.unwrap();
                sqlx::query(sql).execute(&pool).await.unwrap();
                pool.close().await;
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&self.database_url).await.unwrap();
                sqlx::query(sql).execute(&pool).await.unwrap();
                pool.close().await;
            }
        }
    }

    /// Every row of every table of this deployment's PostgreSQL schema, as text (`bytea` values
    /// appear hex-encoded, `\x…`): to look for what must not be stored.
    pub async fn postgres_rows_as_text(&self) -> String {
        let schema = self.pg_schema.clone().expect("a PostgreSQL deployment");
        let pool = sqlx::PgPool::connect(&self.database_url).await.unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
        )
        .bind(&schema)
        .fetch_all(&pool)
        .await
        .unwrap();
        let mut all = String::new();
        for table in tables {
            let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT t::text FROM {schema}.{table} t"
            )))
            .fetch_all(&pool)
            .await
            .unwrap();
            all.extend(rows.into_iter().map(|r| r + "\n"));
        }
        pool.close().await;
        all
    }

    /// Like `execute_sql`, for a statement built at run time.
    pub async fn execute_owned_sql(&self, sql: String) {
        match self.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&self.database_url).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&self.database_url).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
            }
        }
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

impl Drop for Deployment {
    fn drop(&mut self) {
        if let Some(schema) = self.pg_schema.take() {
            let base = postgres_base_url();
            let drop_sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
            run_blocking(async move {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&base).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(drop_sql))
                        .execute(&mut conn)
                        .await;
                }
            });
        }
    }
}

/// A running `tipbox serve`; killed when dropped.
pub struct Server {
    child: Child,
    pub public: String,
    pub analyst: String,
}

impl Server {
    fn start(deployment: &Deployment) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&deployment.log_path)
            .unwrap();
        let mut child = Command::new(TIPBOX)
            .arg("--config")
            .arg(&deployment.config_path)
            .arg("serve")
            .env_remove("TIPBOX_CONFIG")
            .env("TIPBOX_LOG", "debug")
            .current_dir(deployment.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Copy stderr into the log file while watching for the listening lines.
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut log = log;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
                let plain = strip_ansi(&line);
                for (kind, marker) in [
                    ("public", "public listener on "),
                    ("analyst", "analyst listener on "),
                ] {
                    if let Some(at) = plain.find(marker) {
                        let _ = tx.send((kind, plain[at + marker.len()..].trim().to_owned()));
                    }
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut public, mut analyst) = (None, None);
        while public.is_none() || analyst.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(("public", url)) => public = Some(url),
                Ok((_, url)) => analyst = Some(url),
                Err(_) => {
                    let _ = child.kill();
                    panic!("tipbox serve did not start; log:\n{}", deployment.log());
                }
            }
        }
        Self {
            child,
            public: public.unwrap(),
            analyst: analyst.unwrap(),
        }
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGHUP (what `systemctl reload` sends): reloads the TLS certificates.
    pub fn hangup(&self) {
        let pid = rustix::process::Pid::from_raw(self.pid() as i32).expect("a process id");
        rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// reqwest is built without a default TLS provider (tipbox installs ring): install it here.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn client() -> reqwest::Client {
    install_tls_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The text of the element with `id="receipt"`.
pub fn receipt_from(html: &str) -> String {
    let at = html
        .find("id=\"receipt\"")
        .expect("receipt element on the page");
    let start = html[at..].find('>').unwrap() + at + 1;
    let end = html[start..].find('<').unwrap() + start;
    html[start..end].trim().to_owned()
}

/// Decrypts an age file with an identity, in-process.
pub fn decrypt(identity: &age::x25519::Identity, ciphertext: &[u8]) -> Vec<u8> {
    let decryptor = age::Decryptor::new(ciphertext).unwrap();
    let mut reader = decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .unwrap();
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut out).unwrap();
    out
}

/// Decrypts with the Debian `age` CLI (the Go implementation).
pub fn age_cli_decrypt(identity_file: &Path, file: &Path) -> Vec<u8> {
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(identity_file)
        .arg(file)
        .output()
        .expect("the `age` CLI must be installed (Debian package `age`)");
    assert!(
        out.status.success(),
        "age -d failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Items of one kind from an export manifest.
pub fn items_of<'a>(manifest: &'a serde_json::Value, kind: &str) -> Vec<&'a serde_json::Value> {
    manifest["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == kind)
        .collect()
}

/// Runs one async test body against each backend, as separate tests.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $body:path) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                $body($crate::common::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                $body($crate::common::Backend::Postgres).await
            }
        }
    };
}
