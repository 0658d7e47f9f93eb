//! Group commit: every acknowledged submission is committed durably, and many submissions
//! share one transaction (and so one fsync) when they arrive together.
//!
//! A handler hands its fully sealed submission to the queue and waits; one writer task takes
//! whatever is waiting, writes it all in a single transaction — text-only batches as a few
//! multi-row statements, otherwise (or when that fails) each submission inside its own
//! savepoint, so one bad submission cannot fail the others — commits, and only then answers
//! each handler. A receipt is therefore shown only for a submission that is on disk.

use tokio::sync::{mpsc, oneshot};

use super::write::{WriteTx, retrying};
use super::{Result, Store, StoreError, on_backend};

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
    /// The commitment to its plaintext (`crate::commitment`), stored once and never changed.
    pub commitment: [u8; crate::commitment::COMMITMENT_BYTES],
}

pub struct NewTip {
    pub id: String,
    pub received_at: i64,
    pub receipt_hash: Vec<u8>,
    pub reply_recipient: String,
    /// `receipt::TipBindingKey::bind` of the id, the receipt hash and the reply recipient.
    pub binding: Vec<u8>,
    pub items: Vec<NewItem>,
    /// The hash of the submission form's key, when the form carried one: recorded with the
    /// tip so that the same form sent twice never stores a second tip.
    pub form_key_hash: Option<[u8; 32]>,
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
        let results = store.commit_tips(&tips).await;
        for ((_, done), result) in batch.drain(..).zip(results) {
            let _ = done.send(result);
        }
    }
}

impl Store {
    /// Commits a batch; one outcome per tip, in order.
    ///
    /// Text-only batches (the common case, and the flood case) go in a few multi-row
    /// statements; if that fails for any reason, the batch is replayed tip by tip so that only
    /// the submission at fault is refused. sqlx 0.9.1 sets TCP_NODELAY, so on PostgreSQL a
    /// large multi-row statement no longer waits on Nagle's algorithm (0.9.0 did, ~40 ms).
    ///
    /// A commit that fails may still have taken effect: a PostgreSQL connection cut after its
    /// COMMIT reached the server. So after any failed commit, the tips of the batch are looked
    /// up on another connection, and those found are told they were stored — tip ids are
    /// random and written nowhere else, so a tip found was stored by this batch, whole (its
    /// items are in the same transaction). The rest are replayed (after a multi-row attempt)
    /// or refused. The lookup can only err towards "not stored": a commit still in progress
    /// when it runs is not seen, and its source is told nothing was stored (and will likely
    /// send it again); a receipt is never shown for a tip that is not there.
    async fn commit_tips(&self, tips: &[&NewTip]) -> Vec<Result<()>> {
        let all_inline = tips.iter().all(|t| {
            t.items
                .iter()
                .all(|i| matches!(i.body, SealedBody::Inline(_)))
        });
        let mut stored = std::collections::HashSet::new();
        if all_inline {
            match self.commit_inline_batch(tips).await {
                Ok(()) => return tips.iter().map(|_| Ok(())).collect(),
                // Refused before anything was written; replayed to refuse only the culprit.
                Err(StoreError::KeySetRevoked | StoreError::FormAlreadyUsed) => {}
                Err(error) => {
                    tracing::warn!(%error, submissions = tips.len(), "multi-row commit failed; replaying the batch tip by tip");
                    stored = self.stored_of(tips).await;
                }
            }
        }
        let rest: Vec<&NewTip> = tips
            .iter()
            .filter(|t| !stored.contains(&t.id))
            .copied()
            .collect();
        let mut outcomes = match self.commit_batch(&rest).await {
            Ok(per_tip) => per_tip,
            Err(error) => {
                tracing::error!(%error, submissions = rest.len(), "commit failed");
                let found = self.stored_of(&rest).await;
                rest.iter()
                    .map(|t| {
                        if found.contains(&t.id) {
                            Ok(())
                        } else {
                            Err(StoreError::Setup(
                                "the database did not commit the submission".into(),
                            ))
                        }
                    })
                    .collect()
            }
        }
        .into_iter();
        tips.iter()
            .map(|t| {
                if stored.contains(&t.id) {
                    Ok(())
                } else {
                    outcomes.next().expect("one outcome per tip replayed")
                }
            })
            .collect()
    }

    /// The ids of `tips` that are in the database, read on the shared pool; none if that read
    /// fails too.
    async fn stored_of(&self, tips: &[&NewTip]) -> std::collections::HashSet<String> {
        let mut found = std::collections::HashSet::new();
        for chunk in tips.chunks(ROWS_PER_STATEMENT) {
            let read: Result<Vec<String>> = async {
                Ok(on_backend!(&self.pool, p => {
                    let mut q = sqlx::QueryBuilder::new("SELECT id FROM tips WHERE id IN (");
                    let mut ids = q.separated(", ");
                    for tip in chunk {
                        ids.push_bind(&tip.id);
                    }
                    q.push(")");
                    q.build_query_scalar().fetch_all(p).await?
                }))
            }
            .await;
            match read {
                Ok(ids) => found.extend(ids),
                Err(error) => {
                    tracing::error!(%error, "could not look up which submissions were stored");
                    return std::collections::HashSet::new();
                }
            }
        }
        if !found.is_empty() {
            tracing::warn!(
                submissions = found.len(),
                "a failed commit had stored these submissions after all; their sources are told so"
            );
        }
        found
    }
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
        let items = &items;
        retrying(move || async move {
            let mut tx = self.write_on_commit_pool().await?;
            // A tip sealed to a revoked set: this whole batch is refused, and replayed tip by
            // tip (`commit_batch`), which refuses only that one.
            tx.refuse_revoked(key_sets_of(tips)).await?;
            on_backend!(tx.conn(), c => {
                for chunk in tips.chunks(ROWS_PER_STATEMENT) {
                    let mut q = QueryBuilder::new(
                        "INSERT INTO tips (id, received_at, receipt_hash, reply_recipient, binding, status) ",
                    );
                    q.push_values(chunk, |mut row, tip| {
                        row.push_bind(&tip.id)
                            .push_bind(tip.received_at)
                            .push_bind(&tip.receipt_hash)
                            .push_bind(&tip.reply_recipient)
                            .push_bind(&tip.binding)
                            .push_bind("new");
                    });
                    q.build().execute(&mut *c).await?;
                }
                let forms: Vec<(&[u8; 32], i64)> = tips
                    .iter()
                    .filter_map(|t| t.form_key_hash.as_ref().map(|k| (k, t.received_at)))
                    .collect();
                for chunk in forms.chunks(ROWS_PER_STATEMENT) {
                    let mut q = QueryBuilder::new("INSERT INTO submission_forms (key_hash, used_at) ");
                    q.push_values(chunk, |mut row, (key, used_at)| {
                        row.push_bind(key.as_slice()).push_bind(*used_at);
                    });
                    // A form sent twice: the whole batch is replayed tip by tip, which refuses
                    // only the second (a unique violation here would be retried in vain).
                    q.push(" ON CONFLICT (key_hash) DO NOTHING");
                    if q.build().execute(&mut *c).await?.rows_affected() != chunk.len() as u64 {
                        return Err(StoreError::FormAlreadyUsed);
                    }
                }
                for chunk in items.chunks(ROWS_PER_STATEMENT) {
                    let mut q = QueryBuilder::new(
                        "INSERT INTO items (id, tip_id, position, kind, size, key_set_id, staged_at, commitment) ",
                    );
                    q.push_values(chunk, |mut row, (tip, item, _)| {
                        row.push_bind(&item.id)
                            .push_bind(&tip.id)
                            .push_bind(item.position)
                            .push_bind(item.kind)
                            .push_bind(item.size)
                            .push_bind(item.key_set_id)
                            .push_bind(None::<i64>)
                            .push_bind(item.commitment.as_slice());
                    });
                    q.build().execute(&mut *c).await?;
                    let mut q = QueryBuilder::new("INSERT INTO item_chunks (item_id, seq, data) ");
                    q.push_values(chunk, |mut row, (_, item, data)| {
                        row.push_bind(&item.id).push_bind(0i64).push_bind(*data);
                    });
                    q.build().execute(&mut *c).await?;
                }
            });
            tx.commit().await
        })
        .await
    }

    /// Writes every tip in one transaction; the outer result fails only if the commit itself
    /// fails (then nothing was stored, unless the commit took effect and only its answer was
    /// lost: `commit_tips` looks), the inner ones say which tips were rolled back.
    async fn commit_batch(&self, tips: &[&NewTip]) -> Result<Vec<Result<()>>> {
        const Q_TIP: &str = "INSERT INTO tips (id, received_at, receipt_hash, reply_recipient, binding, status) \
             VALUES ($1, $2, $3, $4, $5, 'new')";
        const Q_FORM: &str = "INSERT INTO submission_forms (key_hash, used_at) VALUES ($1, $2) \
             ON CONFLICT (key_hash) DO NOTHING";
        retrying(move || async move {
            let mut tx = self.write_on_commit_pool().await?;
            let revoked = tx.revoked_key_sets(key_sets_of(tips)).await?;
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
                // Each submission in a savepoint of its own: one at fault is rolled back alone.
                tx.execute("SAVEPOINT submission").await?;
                let written: Result<()> = async {
                    if let Some(key) = &tip.form_key_hash {
                        let recorded = on_backend!(tx.conn(), c => sqlx::query(Q_FORM)
                            .bind(key.as_slice())
                            .bind(tip.received_at)
                            .execute(c)
                            .await?
                            .rows_affected());
                        if recorded == 0 {
                            return Err(StoreError::FormAlreadyUsed);
                        }
                    }
                    on_backend!(tx.conn(), c => sqlx::query(Q_TIP)
                        .bind(&tip.id)
                        .bind(tip.received_at)
                        .bind(&tip.receipt_hash)
                        .bind(&tip.reply_recipient)
                        .bind(&tip.binding)
                        .execute(c)
                        .await?
                        .rows_affected());
                    for item in &tip.items {
                        tx.write_item(&tip.id, item, item.position, None).await?;
                    }
                    Ok(())
                }
                .await;
                if written.is_err() {
                    tx.execute("ROLLBACK TO SAVEPOINT submission").await?;
                }
                tx.execute("RELEASE SAVEPOINT submission").await?;
                results.push(written);
            }
            tx.commit().await?;
            Ok(results)
        })
        .await
    }
}

/// Every key set the items of `tips` are sealed to.
fn key_sets_of<'a>(tips: &'a [&NewTip]) -> impl Iterator<Item = i64> + 'a {
    tips.iter()
        .flat_map(|tip| tip.items.iter().map(|item| item.key_set_id))
}

impl WriteTx {
    /// Writes one item of a tip at `position`: an inline item with its one chunk, or a staged
    /// attachment attached, after checking that its chunks add up to exactly what was sealed
    /// (never acknowledge a tip with missing ciphertext). `added_at` is set for what is added
    /// after the tip itself.
    pub(super) async fn write_item(
        &mut self,
        tip_id: &str,
        item: &NewItem,
        position: i64,
        added_at: Option<i64>,
    ) -> Result<()> {
        const Q_ITEM: &str = "INSERT INTO items (id, tip_id, position, kind, size, key_set_id, staged_at, added_at, commitment) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8)";
        const Q_CHUNK: &str = "INSERT INTO item_chunks (item_id, seq, data) VALUES ($1, 0, $2)";
        // Only an item staged for this key set, and not yet attached to any tip.
        const Q_ATTACH: &str = "UPDATE items SET tip_id = $1, position = $2, kind = $3, size = $4, \
             staged_at = NULL, added_at = $7, commitment = $8 \
             WHERE id = $5 AND tip_id IS NULL AND key_set_id = $6";
        // After attaching (the row is now locked by this transaction).
        const Q_CHUNKS: &str =
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(data)), 0) FROM item_chunks WHERE item_id = $1";
        match &item.body {
            SealedBody::Inline(data) => on_backend!(self.conn(), c => {
                sqlx::query(Q_ITEM)
                    .bind(&item.id)
                    .bind(tip_id)
                    .bind(position)
                    .bind(item.kind)
                    .bind(item.size)
                    .bind(item.key_set_id)
                    .bind(added_at)
                    .bind(item.commitment.as_slice())
                    .execute(&mut *c)
                    .await?;
                sqlx::query(Q_CHUNK)
                    .bind(&item.id)
                    .bind(data.as_slice())
                    .execute(c)
                    .await?;
            }),
            SealedBody::Staged => {
                let attached = on_backend!(self.conn(), c => sqlx::query(Q_ATTACH)
                    .bind(tip_id)
                    .bind(position)
                    .bind(item.kind)
                    .bind(item.size)
                    .bind(&item.id)
                    .bind(item.key_set_id)
                    .bind(added_at)
                    .bind(item.commitment.as_slice())
                    .execute(c)
                    .await?
                    .rows_affected());
                if attached != 1 {
                    return Err(StoreError::StagedItemMissing(item.id.clone()));
                }
                let (chunks, bytes): (i64, i64) = on_backend!(self.conn(), c => sqlx::query_as(Q_CHUNKS)
                    .bind(&item.id)
                    .fetch_one(c)
                    .await?);
                if chunks == 0 || bytes != item.size {
                    return Err(StoreError::StagedItemMissing(item.id.clone()));
                }
            }
        }
        Ok(())
    }
}
