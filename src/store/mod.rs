//! The store: sqlx pools for SQLite (the embedded default) and PostgreSQL (several stateless
//! nodes on one database), migrations, and every query tipbox runs.
//!
//! Queries are runtime-checked and written once: both backends accept `$n` placeholders, and
//! `on_backend!` expands a query once per backend so each is type-checked against its own
//! driver. Only the schema differs per backend (`migrations/sqlite`, `migrations/postgres`).
//! Everything stored is ciphertext or deliberately coarse metadata.
//!
//! There is one way to write more than a single statement: `Store::write` (and, for the
//! group-commit writer, `Store::write_on_commit_pool`) runs a body in a `WriteTx`
//! (store/write.rs). On SQLite it begins with `BEGIN IMMEDIATE`, so the write lock is held from
//! the first read; on PostgreSQL the `Lock` names the row lock or setting the body relies on (the
//! keyring row for a key change or a re-key swap, a durable commit for what a receipt waits
//! on). The body uses the shared steps as methods (`append_audit(s)`, `refuse_revoked`,
//! `lock_tip(s)`, `set_status`, `delete_tips`), and the whole transaction runs again, under one
//! retry policy (`retrying`), when it lost a race with another writer. An audited action passes
//! its `audit::Audit` entry to the store method that performs it, which appends it in the same
//! transaction: both are stored, or neither.

mod analysts;
mod audit;
mod bulk;
mod commit;
#[cfg(test)]
mod durability;
mod followup;
mod keys;
mod queue;
mod rekey;
mod retention;
mod write;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tracing::instrument;

pub use analysts::{AnalystRecord, SessionRecord};
pub use bulk::{BulkAction, BulkOutcome, MAX_BULK};
pub use commit::{CommitQueue, NewItem, NewTip, SealedBody};
pub use followup::{ReplyStatus, SealedReply, SourceTip};
pub use keys::{
    Exposure, KeyChange, KeyChangeError, KeySetStatus, KeyringSnapshot, KeyringStatus,
    KeyringVersion, NeedsRekey, RevokedKeyExposure,
};
pub use queue::{
    ItemSummary, QueueFilter, Replacement, STATUSES, TipSummary, TriageUpdate, same_label,
};
pub use rekey::{ItemToRekey, RekeyMode, RekeyRefusal, RekeyTarget, Rekeyed};
use write::LostARace;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored reviewer key {0} no longer parses: {1}")]
    CorruptKey(i64, String),
    #[error(
        "a reviewer key in the key set this was sealed to has been revoked since; nothing was stored"
    )]
    KeySetRevoked,
    #[error("staged item {0} was not found (it may have expired); the submission was not stored")]
    StagedItemMissing(String),
    /// The submission form was sent before, and its tip stored then: nothing was stored now.
    #[error("this submission form was already sent; nothing was stored again")]
    FormAlreadyUsed,
    #[error("the commit queue has shut down")]
    QueueClosed,
    #[error(
        "tip {0}'s receipt hash or reply recipient does not match its binding (changed in the database outside tipbox?): nothing was sealed to it"
    )]
    UnboundRecipient(String),
    #[error("a bulk change takes at most {max} tips; {0} were asked", max = bulk::MAX_BULK)]
    TooManyTips(usize),
    #[error("{0}")]
    Setup(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One thing per backend: a pool, a transaction, a connection.
#[derive(Clone)]
enum Backend<S, P> {
    Sqlite(S),
    Postgres(P),
}

type Pool = Backend<SqlitePool, PgPool>;

/// Evaluates `$body` with `$x` bound to the SQLite or the PostgreSQL side of `$backend` (a
/// `Backend`), so that a query written once is type-checked against each driver. A `match` and
/// nothing else: any `?` or `return` is in the body, where the reader sees it.
macro_rules! on_backend {
    ($backend:expr, $x:ident => $body:expr) => {
        match $backend {
            $crate::store::Backend::Sqlite($x) => $body,
            $crate::store::Backend::Postgres($x) => $body,
        }
    };
}

use on_backend;

#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// A connection of its own for the group-commit writer, so that acknowledging
    /// submissions never waits behind uploads for a pooled connection.
    commit_pool: Pool,
    /// Connections for a large attachment's chunks while it streams in (`stage_item`,
    /// `append_chunk`), which commit without waiting for the disk (SQLite `synchronous=NORMAL`,
    /// PostgreSQL `synchronous_commit=off`). Nothing acknowledged depends on that: a staged
    /// chunk belongs to no tip until its submission's own commit, which does wait for the disk
    /// (`synchronous=FULL`, `synchronous_commit=on`), and both databases write their log in
    /// order — SQLite fsyncs the whole WAL file, PostgreSQL flushes its WAL up to the commit —
    /// so that wait makes every chunk staged before it durable too. A crash before that commit
    /// loses only chunks of a submission that was never acknowledged. Why: one fsync per MiB
    /// held a 1 GiB upload to the disk's fsync rate (benches/README.md, upload_memory).
    staging_pool: Pool,
    /// Chains the audit trail; set with `with_audit_key` by whoever holds the server secret.
    audit_key: Option<std::sync::Arc<crate::audit::AuditKey>>,
    /// `privacy.time_granularity_seconds`: audit entries about tips are dated this coarsely.
    time_granularity: u64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.backend_name())
    }
}

impl LostARace for StoreError {
    /// A unique sequence number taken first (two audit entries at once), a serialization
    /// failure, a deadlock, SQLite busy: running the same transaction again may succeed.
    fn lost_a_race(&self) -> bool {
        let StoreError::Database(sqlx::Error::Database(db)) = self else {
            return false;
        };
        db.is_unique_violation()
            || matches!(db.code().as_deref(), Some("40001" | "40P01" | "5" | "517"))
    }
}

/// The outcome of comparing the server secret with the one the database was set up with.
#[derive(Debug, PartialEq, Eq)]
pub enum SecretCheck {
    Matches,
    FirstUse,
    Mismatch,
}

/// One committed sealed item, for export and review.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ItemListing {
    pub tip_id: String,
    pub item_id: String,
    pub kind: String,
    pub position: i64,
    pub size: i64,
    pub received_at: i64,
    pub key_set_id: i64,
}

/// A key set and the keys in it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeySetListing {
    pub id: i64,
    pub fingerprint: String,
    pub keys: Vec<KeySetMember>,
    /// When one of its keys was retired or revoked (its items should be re-keyed), if ever.
    pub retired_at: Option<i64>,
    /// When one of its keys was revoked (its items need a fresh encryption), if ever.
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct KeySetMember {
    pub fingerprint: String,
    pub label: String,
    pub kind: String,
}

/// Row counts, for operators (and tests) to see what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub tips: i64,
    pub items: i64,
    pub chunks: i64,
}

impl Store {
    /// Opens (and for SQLite creates, mode 0600) the database named by `url`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        use sqlx::ConnectOptions;
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // FULL: a commit is on disk before the receipt is shown, even on power loss.
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(30))
                // Deleted ciphertext (expired staging, later: deleted tips) is overwritten.
                .pragma("secure_delete", "ON")
                // Large uploads grow the WAL; truncate it back after checkpoints.
                .pragma("journal_size_limit", "67108864")
                // sqlx's statement logs carry exact times of intake activity.
                .disable_statement_logging();
            prepare_sqlite_file(options.get_filename())?;
            let pool = sqlite_pool(max_connections.max(2))
                .connect_with(options.clone())
                .await?;
            let staging_pool = sqlite_pool(STAGING_CONNECTIONS)
                .connect_with(options.clone().synchronous(SqliteSynchronous::Normal))
                .await?;
            // The commit connection never checkpoints inside a commit (on the path every
            // receipt waits for): `checkpoint` does it every second in the background.
            let commit_pool = sqlite_pool(1)
                .connect_with(options.pragma("wal_autocheckpoint", "0"))
                .await?;
            Ok(Self {
                pool: Pool::Sqlite(pool),
                commit_pool: Pool::Sqlite(commit_pool),
                staging_pool: Pool::Sqlite(staging_pool),
                audit_key: None,
                time_granularity: 1,
            })
        } else {
            let options = PgConnectOptions::from_str(url)?.disable_statement_logging();
            let pool = pg_pool(max_connections)
                .connect_with(options.clone())
                .await?;
            // Set after connecting rather than as a startup parameter, which connection
            // poolers such as PgBouncer refuse.
            let staging_pool = pg_pool(STAGING_CONNECTIONS)
                .after_connect(|connection, _| {
                    Box::pin(async move {
                        use sqlx::Executor;
                        connection.execute("SET synchronous_commit = off").await?;
                        Ok(())
                    })
                })
                .connect_with(options.clone())
                .await?;
            let commit_pool = pg_pool(1).connect_with(options).await?;
            let store = Self {
                pool: Pool::Postgres(pool),
                commit_pool: Pool::Postgres(commit_pool),
                staging_pool: Pool::Postgres(staging_pool),
                audit_key: None,
                time_granularity: 1,
            };
            store.check_postgres_settings().await?;
            Ok(store)
        }
    }

    /// Refuses a PostgreSQL server on which a shown receipt would not mean a durable tip, or
    /// which records exact commit times.
    async fn check_postgres_settings(&self) -> Result<()> {
        let Pool::Postgres(p) = &self.pool else {
            return Ok(());
        };
        let fsync: String = sqlx::query_scalar("SHOW fsync").fetch_one(p).await?;
        if fsync != "on" {
            return Err(StoreError::Setup(
                "PostgreSQL runs with fsync=off: commits are not durable, so receipts could be lost; \
                 turn fsync on"
                    .into(),
            ));
        }
        let timestamps: String = sqlx::query_scalar("SHOW track_commit_timestamp")
            .fetch_one(p)
            .await?;
        if timestamps != "off" {
            return Err(StoreError::Setup(
                "PostgreSQL records commit timestamps (track_commit_timestamp=on), which would keep \
                 the exact time of every submission; turn it off"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Copies the SQLite WAL back into the database file without blocking writers (a
    /// no-op on PostgreSQL). Run periodically by `serve`.
    pub async fn checkpoint(&self) -> Result<()> {
        if let Pool::Sqlite(p) = &self.pool {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(p)
                .await?;
        }
        Ok(())
    }

    /// This store, able to append to the audit trail; entries about tips and items are dated
    /// to `time_granularity` seconds (`privacy.time_granularity_seconds`), like received times.
    pub fn with_audit_key(mut self, key: crate::audit::AuditKey, time_granularity: u64) -> Self {
        self.audit_key = Some(std::sync::Arc::new(key));
        self.time_granularity = time_granularity;
        self
    }

    pub fn backend_name(&self) -> &'static str {
        match &self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Creates or updates the schema, and brings the keyring's current key set up to date
    /// (a database from before key rotation has none recorded yet).
    #[instrument(skip_all)]
    pub async fn migrate(&self) -> Result<()> {
        match &self.pool {
            Pool::Sqlite(p) => sqlx::migrate!("./migrations/sqlite").run(p).await?,
            Pool::Postgres(p) => sqlx::migrate!("./migrations/postgres").run(p).await?,
        }
        self.sync_keyring(crate::clock::now()).await?;
        Ok(())
    }

    pub async fn close(&self) {
        on_backend!(&self.pool, p => p.close().await);
        on_backend!(&self.commit_pool, p => p.close().await);
        on_backend!(&self.staging_pool, p => p.close().await);
    }

    /// Compares `check_value` with the one recorded at first use, recording it if there is none.
    #[instrument(skip_all)]
    pub async fn check_secret(&self, check_value: &str) -> Result<SecretCheck> {
        const Q_INSERT: &str = "INSERT INTO settings (name, value) VALUES ('secret_check', $1) ON CONFLICT (name) DO NOTHING";
        const Q_SELECT: &str = "SELECT value FROM settings WHERE name = 'secret_check'";
        let inserted = on_backend!(&self.pool, p => sqlx::query(Q_INSERT).bind(check_value).execute(p).await?.rows_affected());
        if inserted == 1 {
            return Ok(SecretCheck::FirstUse);
        }
        let stored: String =
            on_backend!(&self.pool, p => sqlx::query_scalar(Q_SELECT).fetch_one(p).await?);
        Ok(
            if subtle::ConstantTimeEq::ct_eq(stored.as_bytes(), check_value.as_bytes()).into() {
                SecretCheck::Matches
            } else {
                SecretCheck::Mismatch
            },
        )
    }

    /// Whether the rows stored before bindings existed (tips without a binding, TOTP secrets
    /// sealed without their account) have been bound (`record_bindings_made`).
    pub async fn bindings_made(&self) -> Result<bool> {
        const Q: &str = "SELECT COUNT(*) FROM settings WHERE name = 'bindings_made'";
        let n: i64 = on_backend!(&self.pool, p => sqlx::query_scalar(Q).fetch_one(p).await?);
        Ok(n > 0)
    }

    /// Records that the rows stored before bindings existed have been bound: from now on no
    /// node binds a row that has no binding.
    pub async fn record_bindings_made(&self) -> Result<()> {
        const Q: &str = "INSERT INTO settings (name, value) VALUES ('bindings_made', 'v1') \
             ON CONFLICT (name) DO NOTHING";
        on_backend!(&self.pool, p => sqlx::query(Q).execute(p).await?.rows_affected());
        Ok(())
    }

    /// Whether this database has been used with some server secret already.
    pub async fn has_secret_check(&self) -> Result<bool> {
        const Q: &str = "SELECT COUNT(*) FROM settings WHERE name = 'secret_check'";
        let n: i64 = on_backend!(&self.pool, p => sqlx::query_scalar(Q).fetch_one(p).await?);
        Ok(n > 0)
    }

    /// Starts a staged item: a large attachment whose ciphertext is written in chunks while it
    /// is received, before its submission is committed.
    pub async fn stage_item(&self, item_id: &str, key_set_id: i64, staged_at: i64) -> Result<()> {
        const Q: &str = "INSERT INTO items (id, tip_id, position, kind, size, key_set_id, staged_at) \
             VALUES ($1, NULL, 0, 'attachment', 0, $2, $3)";
        on_backend!(&self.staging_pool, p => sqlx::query(Q).bind(item_id).bind(key_set_id).bind(staged_at).execute(p).await?.rows_affected());
        Ok(())
    }

    pub async fn append_chunk(&self, item_id: &str, seq: i64, data: &[u8]) -> Result<()> {
        const Q: &str = "INSERT INTO item_chunks (item_id, seq, data) VALUES ($1, $2, $3)";
        on_backend!(&self.staging_pool, p => sqlx::query(Q).bind(item_id).bind(seq).bind(data).execute(p).await?.rows_affected());
        Ok(())
    }

    /// Deletes staged items that were never committed (an upload that failed or was refused).
    ///
    /// One statement per item: deleting the item row locks it against a concurrent commit
    /// attaching it (the commit then finds nothing to attach and fails), and its chunks go
    /// with it by `ON DELETE CASCADE`. An item already committed is left alone.
    pub async fn discard_staged(&self, item_ids: &[String]) -> Result<()> {
        const Q: &str = "DELETE FROM items WHERE id = $1 AND tip_id IS NULL";
        for id in item_ids {
            on_backend!(&self.pool, p => sqlx::query(Q).bind(id).execute(p).await?.rows_affected());
        }
        Ok(())
    }

    /// Deletes staged items older than `cutoff` (left behind by a crash); returns how many.
    #[instrument(skip_all)]
    pub async fn sweep_staged(&self, cutoff: i64) -> Result<u64> {
        const Q: &str = "SELECT id FROM items WHERE tip_id IS NULL AND staged_at < $1";
        let ids: Vec<String> =
            on_backend!(&self.pool, p => sqlx::query_scalar(Q).bind(cutoff).fetch_all(p).await?);
        self.discard_staged(&ids).await?;
        Ok(ids.len() as u64)
    }

    /// Forgets the submission forms used before `cutoff` (their receipt pages are long gone).
    pub async fn sweep_submission_forms(&self, cutoff: i64) -> Result<u64> {
        const Q: &str = "DELETE FROM submission_forms WHERE used_at < $1";
        Ok(
            on_backend!(&self.pool, p => sqlx::query(Q).bind(cutoff).execute(p).await?.rows_affected()),
        )
    }

    /// Whether a submission form with this key hash has been sent and its tip stored.
    pub async fn form_used(&self, key_hash: &[u8; 32]) -> Result<bool> {
        const Q: &str = "SELECT COUNT(*) FROM submission_forms WHERE key_hash = $1";
        let count: i64 = on_backend!(&self.pool, p => sqlx::query_scalar(Q).bind(key_hash.as_slice()).fetch_one(p).await?);
        Ok(count > 0)
    }

    /// Every committed item, oldest tip first.
    #[instrument(skip_all)]
    pub async fn list_items(&self) -> Result<Vec<ItemListing>> {
        const Q: &str = "SELECT i.id, i.tip_id, i.kind, i.position, i.size, i.key_set_id, t.received_at \
             FROM items i JOIN tips t ON t.id = i.tip_id ORDER BY t.received_at, t.id, i.position";
        let rows = on_backend!(&self.pool, p => {
            sqlx::query(Q).fetch_all(p).await?.iter().map(|r| -> Result<ItemListing> {
                Ok(ItemListing {
                    item_id: r.try_get("id")?,
                    tip_id: r.try_get("tip_id")?,
                    kind: r.try_get("kind")?,
                    position: r.try_get("position")?,
                    size: r.try_get("size")?,
                    key_set_id: r.try_get("key_set_id")?,
                    received_at: r.try_get("received_at")?,
                })
            }).collect::<Result<Vec<_>>>()?
        });
        Ok(rows)
    }

    #[instrument(skip_all)]
    pub async fn list_key_sets(&self) -> Result<Vec<KeySetListing>> {
        const Q: &str = "SELECT s.id, s.fingerprint AS set_fingerprint, s.retired_at, s.revoked_at, \
             k.fingerprint, k.label, k.kind FROM key_sets s JOIN key_set_members m ON m.key_set_id = s.id \
             JOIN reviewer_keys k ON k.id = m.key_id ORDER BY s.id, k.id";
        let mut sets: Vec<KeySetListing> = Vec::new();
        on_backend!(&self.pool, p => {
            for r in sqlx::query(Q).fetch_all(p).await? {
                let id: i64 = r.try_get("id")?;
                let member = KeySetMember {
                    fingerprint: r.try_get("fingerprint")?,
                    label: r.try_get("label")?,
                    kind: r.try_get("kind")?,
                };
                match sets.last_mut() {
                    Some(set) if set.id == id => set.keys.push(member),
                    _ => sets.push(KeySetListing {
                        id,
                        fingerprint: r.try_get("set_fingerprint")?,
                        keys: vec![member],
                        retired_at: r.try_get("retired_at")?,
                        revoked_at: r.try_get("revoked_at")?,
                    }),
                }
            }
        });
        Ok(sets)
    }

    /// One chunk of an item's ciphertext, or `None` past the last one.
    pub async fn item_chunk(&self, item_id: &str, seq: i64) -> Result<Option<Vec<u8>>> {
        const Q: &str = "SELECT data FROM item_chunks WHERE item_id = $1 AND seq = $2";
        Ok(
            on_backend!(&self.pool, p => sqlx::query_scalar(Q).bind(item_id).bind(seq).fetch_optional(p).await?),
        )
    }

    pub async fn counts(&self) -> Result<Counts> {
        const Q: &str = "SELECT (SELECT COUNT(*) FROM tips), (SELECT COUNT(*) FROM items), (SELECT COUNT(*) FROM item_chunks)";
        let (tips, items, chunks): (i64, i64, i64) =
            on_backend!(&self.pool, p => sqlx::query_as(Q).fetch_one(p).await?);
        Ok(Counts {
            tips,
            items,
            chunks,
        })
    }
}

/// Connections of the staging pool (`Store::staging_pool`). SQLite has one writer at a time
/// whatever the pool; on PostgreSQL a chunk's insert is short, so a few serve many uploads.
const STAGING_CONNECTIONS: u32 = 4;

fn sqlite_pool(max_connections: u32) -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(max_connections)
        .acquire_slow_level(log::LevelFilter::Off)
}

fn pg_pool(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(30))
        .acquire_slow_level(log::LevelFilter::Off)
}

/// SQLite creates its file with the process umask; create it 0600 first (its WAL and shared
/// memory files inherit the database file's mode), in a 0700 directory.
fn prepare_sqlite_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if path.as_os_str().is_empty() || path == Path::new(":memory:") {
        return Ok(());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::secrets::create_private_dir(parent).map_err(|e| StoreError::Setup(e.to_string()))?;
    }
    if !path.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| StoreError::Setup(format!("could not create {}: {e}", path.display())))?;
    }
    Ok(())
}
