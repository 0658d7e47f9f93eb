//! The one way to write: `WriteTx`, a write transaction over either backend, opened only by
//! `Store::write` (or, for the group-commit writer, `Store::write_on_commit_pool`); the steps
//! writers share, as its methods; and `retrying`, the one policy for a transaction that lost a
//! race.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnection, Postgres};
use sqlx::sqlite::{Sqlite, SqliteConnection};

use super::{Backend, Pool, Result, Store, StoreError, on_backend};
use crate::audit::{Audit, AuditKey};

/// What a write transaction must hold on PostgreSQL before its body runs. (On SQLite every
/// write transaction begins with `BEGIN IMMEDIATE`: it holds the database's one write lock
/// from its first read, which covers all of these.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lock {
    /// Only the row locks the body's own statements (and its shared steps) take.
    Rows,
    /// A key change: the keyring row `FOR UPDATE`, so that key changes on several nodes follow
    /// one another (two admins cannot both retire "the other" key and leave none).
    KeyChange,
    /// A re-key swap: the keyring row `FOR SHARE`, so that the current key set the item moves
    /// to cannot change before the swap commits.
    KeySwap,
    /// Something a receipt or an acknowledgement waits on: `synchronous_commit = on`, whatever
    /// the role or the URL says, so that the commit is durable before the answer.
    Acknowledged,
}

impl Lock {
    fn postgres_prelude(self) -> Option<&'static str> {
        match self {
            Lock::Rows => None,
            Lock::KeyChange => Some("SELECT version FROM keyring WHERE id = 1 FOR UPDATE"),
            Lock::KeySwap => Some("SELECT version FROM keyring WHERE id = 1 FOR SHARE"),
            Lock::Acknowledged => Some("SET LOCAL synchronous_commit = on"),
        }
    }
}

/// An error that may say its transaction lost a race with another one, so that running the
/// same transaction again may succeed.
pub(super) trait LostARace {
    fn lost_a_race(&self) -> bool;
}

/// How many times `retrying` runs a transaction that keeps losing races.
const ATTEMPTS: u64 = 9;

/// Runs `transaction` (all of it: `Store::write`, the body, the commit) again, with a growing
/// pause, while it fails because it lost a race (`LostARace`), up to `ATTEMPTS` times; any
/// other outcome is returned as it is.
///
/// Call it as `retrying(move || async move { … })`, the closure capturing only references, so
/// that every attempt starts from the same inputs. (Not an `AsyncFnMut`: the futures of async
/// closures that capture references cannot yet be proven `Send`, which handlers need.)
pub(super) async fn retrying<T, E, F>(mut transaction: impl FnMut() -> F) -> Result<T, E>
where
    E: LostARace,
    F: Future<Output = Result<T, E>>,
{
    let mut attempt = 1;
    loop {
        match transaction().await {
            Err(error) if error.lost_a_race() && attempt < ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(5 * attempt)).await;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// A write transaction on either backend. Dropping it without `commit` rolls back.
pub(super) struct WriteTx {
    tx: Backend<SqliteTx, sqlx::Transaction<'static, Postgres>>,
    audit_key: Option<Arc<AuditKey>>,
    /// How coarsely entries about tips are dated (`Store::with_audit_key`).
    time_granularity: u64,
}

impl Store {
    /// Begins a write transaction on the shared pool, holding `lock`.
    pub(super) async fn write(&self, lock: Lock) -> Result<WriteTx> {
        WriteTx::begin(&self.pool, lock, self).await
    }

    /// Begins a write transaction on the group-commit writer's own connection, always
    /// `Lock::Acknowledged`: a receipt waits on every commit made there.
    pub(super) async fn write_on_commit_pool(&self) -> Result<WriteTx> {
        WriteTx::begin(&self.commit_pool, Lock::Acknowledged, self).await
    }
}

/// A SQLite write transaction on a pooled connection, begun and ended with plain statements.
///
/// Not sqlx's `Transaction`: when a COMMIT fails on a disk error, SQLite has already rolled the
/// transaction back itself, sqlx's ROLLBACK on drop then fails, and its bookkeeping keeps the
/// connection "in a transaction" for ever — with one commit connection, intake would stay down
/// until a restart. Here a transaction that did not commit closes its connection instead of
/// handing it back (closing rolls back whatever is left), and the pool opens a fresh one.
pub(super) struct SqliteTx {
    conn: sqlx::pool::PoolConnection<Sqlite>,
    open: bool,
}

impl SqliteTx {
    async fn begin(pool: &sqlx::SqlitePool) -> Result<Self> {
        let mut conn = pool.acquire().await?;
        // IMMEDIATE: the write lock from the first statement, waiting on busy_timeout, rather
        // than failing later when a read would have to upgrade.
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        Ok(Self { conn, open: true })
    }

    async fn commit(mut self) -> Result<()> {
        sqlx::query("COMMIT").execute(&mut *self.conn).await?;
        self.open = false;
        Ok(())
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if self.open {
            self.conn.close_on_drop();
        }
    }
}

impl WriteTx {
    /// Where every write transaction begins.
    async fn begin(pool: &Pool, lock: Lock, store: &Store) -> Result<Self> {
        let tx = match pool {
            Backend::Sqlite(p) => Backend::Sqlite(SqliteTx::begin(p).await?),
            Backend::Postgres(p) => {
                let mut tx = p.begin().await?;
                if let Some(prelude) = lock.postgres_prelude() {
                    sqlx::query(prelude).execute(&mut *tx).await?;
                }
                Backend::Postgres(tx)
            }
        };
        Ok(Self {
            tx,
            audit_key: store.audit_key.clone(),
            time_granularity: store.time_granularity,
        })
    }

    /// The connection the transaction runs on, for `on_backend!`.
    pub(super) fn conn(&mut self) -> Backend<&mut SqliteConnection, &mut PgConnection> {
        match &mut self.tx {
            Backend::Sqlite(tx) => Backend::Sqlite(&mut *tx.conn),
            Backend::Postgres(tx) => Backend::Postgres(&mut **tx),
        }
    }

    pub(super) fn is_sqlite(&self) -> bool {
        matches!(self.tx, Backend::Sqlite(_))
    }

    /// Runs a statement that takes no parameters (a savepoint's).
    pub(super) async fn execute(&mut self, statement: &'static str) -> Result<()> {
        on_backend!(self.conn(), c => sqlx::query(statement).execute(c).await?.rows_affected());
        Ok(())
    }

    pub(super) async fn commit(self) -> Result<()> {
        match self.tx {
            Backend::Sqlite(tx) => tx.commit().await,
            Backend::Postgres(tx) => Ok(tx.commit().await?),
        }
    }

    /// Appends `audit` to the audit trail, chained to the entry before it, dated as
    /// `Audit::stored_time` says (an entry about a tip no more exactly than its received time).
    /// Call it last, just before the commit: the next sequence number is the one thing every
    /// audited writer contends for, and on PostgreSQL a second writer waits on it until this one
    /// commits (then loses the race on the primary key and runs again).
    pub(super) async fn append_audit(&mut self, audit: &Audit<'_>) -> Result<()> {
        self.append_audits(std::slice::from_ref(audit)).await
    }

    /// Appends `audits` to the audit trail in this order, each chained to the one before (see
    /// `append_audit`): one action on many tips, with an entry per tip. The head is read once
    /// and the entries are written in multi-row statements.
    pub(super) async fn append_audits(&mut self, audits: &[Audit<'_>]) -> Result<()> {
        const Q_HEAD: &str = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";
        // 8 values a row: far below both backends' bind limits.
        const ROWS_PER_STATEMENT: usize = 500;
        if audits.is_empty() {
            return Ok(());
        }
        let key = self
            .audit_key
            .clone()
            .ok_or_else(|| StoreError::Setup("the audit trail needs the server secret".into()))?;
        let head: Option<(i64, String)> =
            on_backend!(self.conn(), c => sqlx::query_as(Q_HEAD).fetch_optional(c).await?);
        let (mut seq, mut prev) =
            head.map_or((1, crate::audit::GENESIS.to_owned()), |(s, h)| (s + 1, h));
        let mut rows = Vec::with_capacity(audits.len());
        for audit in audits {
            let action = audit.action.as_str();
            let detail = audit.detail.to_string();
            // Rounded before hashing: the chain covers the time as stored.
            let at = audit.stored_time(self.time_granularity);
            let hash = crate::audit::entry_hash(
                &key,
                seq,
                at,
                audit.actor,
                action,
                audit.subject,
                &detail,
                &prev,
            );
            let prev_hash = std::mem::replace(&mut prev, hash.clone());
            rows.push((seq, at, audit, action, detail, prev_hash, hash));
            seq += 1;
        }
        for piece in rows.chunks(ROWS_PER_STATEMENT) {
            on_backend!(self.conn(), c => {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev_hash, hash) ",
                );
                q.push_values(piece, |mut row, (seq, at, audit, action, detail, prev_hash, hash)| {
                    row.push_bind(*seq)
                        .push_bind(*at)
                        .push_bind(audit.actor)
                        .push_bind(*action)
                        .push_bind(audit.subject)
                        .push_bind(detail)
                        .push_bind(prev_hash)
                        .push_bind(hash);
                });
                q.build().execute(c).await?.rows_affected()
            });
        }
        Ok(())
    }

    /// Which of these key sets have a revoked key.
    ///
    /// This is what makes revocation strict: nothing is committed sealed to a set with a revoked
    /// key. On SQLite the transaction holds the write lock, so a revocation is wholly before or
    /// after it. On PostgreSQL the sets' rows stay share-locked until the commit: a revocation,
    /// which updates them, either committed first and is seen here, or waits until this
    /// transaction is done (and then counts what it wrote among what to re-key).
    pub(super) async fn revoked_key_sets(
        &mut self,
        ids: impl IntoIterator<Item = i64>,
    ) -> Result<HashSet<i64>> {
        // IN lists in pieces, far below both backends' bind limits.
        const PER_STATEMENT: usize = 500;
        let mut ids: Vec<i64> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        let share_lock = if self.is_sqlite() { "" } else { " FOR SHARE" };
        let mut revoked = HashSet::new();
        for piece in ids.chunks(PER_STATEMENT) {
            let rows: Vec<(i64, Option<i64>)> = on_backend!(self.conn(), c => {
                let mut q =
                    sqlx::QueryBuilder::new("SELECT id, revoked_at FROM key_sets WHERE id IN (");
                let mut list = q.separated(", ");
                for id in piece {
                    list.push_bind(*id);
                }
                q.push(")").push(share_lock);
                q.build_query_as().fetch_all(c).await?
            });
            revoked.extend(
                rows.into_iter()
                    .filter(|(_, at)| at.is_some())
                    .map(|(id, _)| id),
            );
        }
        Ok(revoked)
    }

    /// Refuses (`StoreError::KeySetRevoked`) if any of these key sets has a revoked key (see
    /// `revoked_key_sets`).
    pub(super) async fn refuse_revoked(
        &mut self,
        ids: impl IntoIterator<Item = i64>,
    ) -> Result<()> {
        if self.revoked_key_sets(ids).await?.is_empty() {
            Ok(())
        } else {
            Err(StoreError::KeySetRevoked)
        }
    }

    /// Locks a tip before something is added to or changed on it; false if there is no such
    /// tip (see `lock_tips`).
    pub(super) async fn lock_tip(&mut self, tip_id: &str) -> Result<bool> {
        Ok(!self.lock_tips(&[tip_id]).await?.is_empty())
    }

    /// Locks tips before something is added to or changed on them; those that exist, with
    /// their status, in id order. On PostgreSQL their rows stay locked until the commit (taken
    /// in id order, so that two writers on overlapping tips wait rather than deadlock), so that
    /// items added to one tip at the same moment (a follow-up, a note, a reply) get distinct
    /// positions and a change sees the status it replaces; on SQLite the write lock already
    /// serializes them.
    pub(super) async fn lock_tips(&mut self, tip_ids: &[&str]) -> Result<Vec<(String, String)>> {
        // IN lists in pieces, far below both backends' bind limits.
        const PER_STATEMENT: usize = 500;
        let mut ids = tip_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let lock = if self.is_sqlite() { "" } else { " FOR UPDATE" };
        let mut found = Vec::new();
        for piece in ids.chunks(PER_STATEMENT) {
            let rows: Vec<(String, String)> = on_backend!(self.conn(), c => {
                let mut q = sqlx::QueryBuilder::new("SELECT id, status FROM tips WHERE id IN (");
                let mut list = q.separated(", ");
                for id in piece {
                    list.push_bind(*id);
                }
                q.push(") ORDER BY id").push(lock);
                q.build_query_as().fetch_all(c).await?
            });
            found.extend(rows);
        }
        Ok(found)
    }
}
