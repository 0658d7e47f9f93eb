//! Group commit: every acknowledged submission is committed durably, and many submissions
//! share one transaction (and so one fsync) when they arrive together.
//!
//! A handler hands its fully sealed submission to the queue and waits; one writer task takes
//! whatever is waiting, writes it all in a single transaction — each submission inside its own
//! savepoint, so one bad submission cannot fail the others — commits, and only then answers
//! each handler. A receipt is therefore shown only for a submission that is on disk.

use tokio::sync::{mpsc, oneshot};

use super::{Pool, Result, Store, StoreError};

/// Most submissions in one transaction.
const MAX_BATCH: usize = 256;

/// The sealed body of an item.
pub enum SealedBody {
    /// Small items: the whole age file, written in the commit.
    Inline(Vec<u8>),
    /// Large attachments: already written as staged chunks; the commit attaches them.
    Staged,
}

pub struct NewItem {
    pub id: String,
    pub position: i64,
    pub kind: &'static str,
    pub size: i64,
    pub key_set_id: i64,
    pub body: SealedBody,
}

pub struct NewTip {
    pub id: String,
    pub received_at: i64,
    pub receipt_hash: Vec<u8>,
    pub reply_recipient: String,
    pub items: Vec<NewItem>,
}

type Job = (NewTip, oneshot::Sender<Result<()>>);

/// The handle handlers use; cloning is cheap.
#[derive(Clone)]
pub struct CommitQueue {
    sender: mpsc::Sender<Job>,
}

impl CommitQueue {
    /// Starts the writer task. It ends when every `CommitQueue` handle is dropped, after
    /// committing whatever is still queued.
    pub fn start(store: Store) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(4 * MAX_BATCH);
        let writer = tokio::spawn(run_writer(store, receiver));
        (Self { sender }, writer)
    }

    /// Commits `tip`; returns once it is durable (or has definitely failed).
    pub async fn commit(&self, tip: NewTip) -> Result<()> {
        let (done, wait) = oneshot::channel();
        self.sender
            .send((tip, done))
            .await
            .map_err(|_| StoreError::QueueClosed)?;
        wait.await.map_err(|_| StoreError::QueueClosed)?
    }
}

async fn run_writer(store: Store, mut receiver: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let tips: Vec<&NewTip> = batch.iter().map(|(tip, _)| tip).collect();
        // Text-only batches (the common case, and the flood case) go in a few multi-row
        // statements; if that fails for any reason, the batch is replayed tip by tip so that
        // only the submission at fault is refused.
        //
        // SQLite only: sqlx 0.9.0 leaves Nagle's algorithm on for PostgreSQL connections
        // (launchbadge/sqlx#4335), and a large multi-row statement then stalls ~40 ms per batch.
        let all_inline = store.is_sqlite()
            && tips.iter().all(|t| {
                t.items
                    .iter()
                    .all(|i| matches!(i.body, SealedBody::Inline(_)))
            });
        let inline = if all_inline {
            match store.commit_inline_batch(&tips).await {
                Ok(()) => true,
                Err(StoreError::KeySetRevoked) => false,
                Err(error) => {
                    tracing::warn!(%error, submissions = tips.len(), "multi-row commit failed; replaying the batch tip by tip");
                    false
                }
            }
        } else {
            false
        };
        let outcome = if inline {
            Ok(tips.iter().map(|_| Ok(())).collect())
        } else {
            store.commit_batch(&tips).await
        };
        match outcome {
            Ok(per_tip) => {
                for ((_, done), result) in batch.drain(..).zip(per_tip) {
                    let _ = done.send(result);
                }
            }
            Err(error) => {
                tracing::error!(%error, submissions = batch.len(), "commit failed; nothing of this batch was stored");
                for (_, done) in batch.drain(..) {
                    let _ = done.send(Err(StoreError::Setup(
                        "the database did not commit the submission".into(),
                    )));
                }
            }
        }
    }
}

/// The key sets, among those the items of `$tips` are sealed to, that have a revoked key (a
/// `HashSet<i64>`), read inside the commit transaction `$tx`.
///
/// This is what makes revocation strict: nothing is committed sealed to a set with a revoked
/// key. SQLite commits hold the write lock, so a revocation is entirely before or after them.
/// On PostgreSQL (`$lock` = `FOR SHARE`) the sets' rows stay locked until the commit: a
/// revocation, which updates them, either committed first and is seen here, or waits until
/// this commit is done — and then lists these tips among those to re-key.
macro_rules! revoked_key_sets {
    ($tx:ident, $tips:expr, $share_lock:expr) => {{
        let mut ids: Vec<i64> = $tips
            .iter()
            .flat_map(|tip| tip.items.iter().map(|item| item.key_set_id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut revoked = std::collections::HashSet::new();
        for piece in ids.chunks(ROWS_PER_STATEMENT) {
            let mut q =
                sqlx::QueryBuilder::new("SELECT id, revoked_at FROM key_sets WHERE id IN (");
            let mut list = q.separated(", ");
            for id in piece {
                list.push_bind(*id);
            }
            q.push(")");
            if $share_lock {
                q.push(" FOR SHARE");
            }
            let rows: Vec<(i64, Option<i64>)> = q.build_query_as().fetch_all(&mut *$tx).await?;
            revoked.extend(
                rows.into_iter()
                    .filter(|(_, at)| at.is_some())
                    .map(|(id, _)| id),
            );
        }
        revoked
    }};
}

/// Rows per multi-row INSERT: keeps every statement far below both backends' bind limits
/// (SQLite 32766, PostgreSQL 65535).
const ROWS_PER_STATEMENT: usize = 500;

impl Store {
    /// Writes a batch of tips whose items are all inline, in one transaction of multi-row
    /// INSERTs. All or nothing: an error rolls the whole batch back.
    async fn commit_inline_batch(&self, tips: &[&NewTip]) -> Result<()> {
        use sqlx::QueryBuilder;
        let items: Vec<(&NewTip, &NewItem, &[u8])> = tips
            .iter()
            .flat_map(|tip| {
                tip.items.iter().filter_map(move |item| match &item.body {
                    SealedBody::Inline(data) => Some((*tip, item, data.as_slice())),
                    SealedBody::Staged => None,
                })
            })
            .collect();
        macro_rules! write_rows {
            ($tx:ident) => {{
                // A tip sealed to a revoked set: this whole batch is refused, and replayed tip
                // by tip (`commit_batch`), which refuses only that one.
                if !revoked_key_sets!($tx, tips, false).is_empty() {
                    return Err(StoreError::KeySetRevoked);
                }
                for chunk in tips.chunks(ROWS_PER_STATEMENT) {
                    let mut q = QueryBuilder::new(
                        "INSERT INTO tips (id, received_at, receipt_hash, reply_recipient, status) ",
                    );
                    q.push_values(chunk, |mut row, tip| {
                        row.push_bind(&tip.id)
                            .push_bind(tip.received_at)
                            .push_bind(&tip.receipt_hash)
                            .push_bind(&tip.reply_recipient)
                            .push_bind("new");
                    });
                    q.build().execute(&mut *$tx).await?;
                }
                for chunk in items.chunks(ROWS_PER_STATEMENT) {
                    let mut q = QueryBuilder::new(
                        "INSERT INTO items (id, tip_id, position, kind, size, key_set_id, staged_at) ",
                    );
                    q.push_values(chunk, |mut row, (tip, item, _)| {
                        row.push_bind(&item.id)
                            .push_bind(&tip.id)
                            .push_bind(item.position)
                            .push_bind(item.kind)
                            .push_bind(item.size)
                            .push_bind(item.key_set_id)
                            .push_bind(None::<i64>);
                    });
                    q.build().execute(&mut *$tx).await?;
                    let mut q = QueryBuilder::new("INSERT INTO item_chunks (item_id, seq, data) ");
                    q.push_values(chunk, |mut row, (_, item, data)| {
                        row.push_bind(&item.id).push_bind(0i64).push_bind(*data);
                    });
                    q.build().execute(&mut *$tx).await?;
                }
                $tx.commit().await?;
                Ok(())
            }};
        }
        match &self.commit_pool {
            Pool::Sqlite(p) => {
                let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                write_rows!(tx)
            }
            Pool::Postgres(p) => {
                let mut tx = p.begin().await?;
                sqlx::query("SET LOCAL synchronous_commit = on")
                    .execute(&mut *tx)
                    .await?;
                write_rows!(tx)
            }
        }
    }

    /// Writes every tip in one transaction; the outer result fails only if the commit itself
    /// fails (then nothing was stored), the inner ones say which tips were rolled back.
    async fn commit_batch(&self, tips: &[&NewTip]) -> Result<Vec<Result<()>>> {
        const Q_TIP: &str = "INSERT INTO tips (id, received_at, receipt_hash, reply_recipient, status) \
             VALUES ($1, $2, $3, $4, 'new')";
        const Q_ITEM: &str = "INSERT INTO items (id, tip_id, position, kind, size, key_set_id, staged_at) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL)";
        const Q_CHUNK: &str = "INSERT INTO item_chunks (item_id, seq, data) VALUES ($1, 0, $2)";
        const Q_ATTACH: &str = "UPDATE items SET tip_id = $1, position = $2, kind = $3, size = $4, staged_at = NULL \
             WHERE id = $5 AND tip_id IS NULL AND key_set_id = $6";
        // After attaching (the row is now locked by this transaction), the chunks must add up
        // to exactly what was sealed: never acknowledge a tip with missing ciphertext.
        const Q_CHUNKS: &str =
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(data)), 0) FROM item_chunks WHERE item_id = $1";

        macro_rules! write_batch {
            ($tx:ident, $share_lock:expr) => {{
                let revoked = revoked_key_sets!($tx, tips, $share_lock);
                let mut results = Vec::with_capacity(tips.len());
                for tip in tips {
                    if tip
                        .items
                        .iter()
                        .any(|item| revoked.contains(&item.key_set_id))
                    {
                        results.push(Err(StoreError::KeySetRevoked));
                        continue;
                    }
                    sqlx::query("SAVEPOINT submission")
                        .execute(&mut *$tx)
                        .await?;
                    let written: Result<()> = async {
                        sqlx::query(Q_TIP)
                            .bind(&tip.id)
                            .bind(tip.received_at)
                            .bind(&tip.receipt_hash)
                            .bind(&tip.reply_recipient)
                            .execute(&mut *$tx)
                            .await?;
                        for item in &tip.items {
                            match &item.body {
                                SealedBody::Inline(data) => {
                                    sqlx::query(Q_ITEM)
                                        .bind(&item.id)
                                        .bind(&tip.id)
                                        .bind(item.position)
                                        .bind(item.kind)
                                        .bind(item.size)
                                        .bind(item.key_set_id)
                                        .execute(&mut *$tx)
                                        .await?;
                                    sqlx::query(Q_CHUNK)
                                        .bind(&item.id)
                                        .bind(data.as_slice())
                                        .execute(&mut *$tx)
                                        .await?;
                                }
                                SealedBody::Staged => {
                                    let attached = sqlx::query(Q_ATTACH)
                                        .bind(&tip.id)
                                        .bind(item.position)
                                        .bind(item.kind)
                                        .bind(item.size)
                                        .bind(&item.id)
                                        .bind(item.key_set_id)
                                        .execute(&mut *$tx)
                                        .await?
                                        .rows_affected();
                                    if attached != 1 {
                                        return Err(StoreError::StagedItemMissing(item.id.clone()));
                                    }
                                    let (chunks, bytes): (i64, i64) = sqlx::query_as(Q_CHUNKS)
                                        .bind(&item.id)
                                        .fetch_one(&mut *$tx)
                                        .await?;
                                    if chunks == 0 || bytes != item.size {
                                        return Err(StoreError::StagedItemMissing(item.id.clone()));
                                    }
                                }
                            }
                        }
                        Ok(())
                    }
                    .await;
                    if written.is_err() {
                        sqlx::query("ROLLBACK TO SAVEPOINT submission")
                            .execute(&mut *$tx)
                            .await?;
                    }
                    sqlx::query("RELEASE SAVEPOINT submission")
                        .execute(&mut *$tx)
                        .await?;
                    results.push(written);
                }
                $tx.commit().await?;
                Ok(results)
            }};
        }

        match &self.commit_pool {
            // IMMEDIATE takes the write lock up front (waiting on busy_timeout) instead of
            // failing when a reader would have to upgrade.
            Pool::Sqlite(p) => {
                let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                write_batch!(tx, false)
            }
            Pool::Postgres(p) => {
                let mut tx = p.begin().await?;
                // Whatever the role or URL says: a receipt is shown only after a durable commit.
                sqlx::query("SET LOCAL synchronous_commit = on")
                    .execute(&mut *tx)
                    .await?;
                write_batch!(tx, true)
            }
        }
    }
}
