//! Queries for two-way follow-up: finding a tip by its receipt, a source's additions to a
//! tip, and analysts' replies (the reviewers' copy is an item of kind `reply`, the source's
//! copy a row of `replies`).

use super::{NewItem, Pool, Result, SealedBody, Store, StoreError};

/// What a source's session needs to know about its tip.
#[derive(Debug, Clone)]
pub struct SourceTip {
    pub id: String,
    pub status: String,
}

/// A reply as the source's session sees it: the source's sealed copy.
#[derive(Debug, Clone)]
pub struct SealedReply {
    pub id: String,
    pub created_at: i64,
    pub sealed: Vec<u8>,
    pub read_at: Option<i64>,
}

/// A reply as analysts see it: when it was written, read and deleted by the source.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReplyStatus {
    pub id: String,
    pub created_at: i64,
    pub read_at: Option<i64>,
    pub deleted_at: Option<i64>,
}

/// Refuses, inside a write transaction, anything sealed to a key set with a revoked key (as
/// the first submission's commit does, store/commit.rs): on SQLite the transaction already
/// holds the write lock, on PostgreSQL the key set's row is share-locked until the commit, so
/// a revocation falls wholly before or after it.
macro_rules! refuse_revoked {
    ($store:expr, $tx:ident, $key_set_id:expr) => {{
        let q = if $store.is_sqlite() {
            "SELECT revoked_at FROM key_sets WHERE id = $1"
        } else {
            "SELECT revoked_at FROM key_sets WHERE id = $1 FOR SHARE"
        };
        let revoked: Option<i64> = sqlx::query_scalar(q)
            .bind($key_set_id)
            .fetch_one(&mut *$tx)
            .await?;
        if revoked.is_some() {
            return Err(StoreError::KeySetRevoked);
        }
    }};
}

/// On PostgreSQL, locks a tip's row for the rest of the transaction, so that items added to
/// one tip at the same moment get distinct positions (SQLite's `BEGIN IMMEDIATE` already
/// serializes writers).
macro_rules! lock_tip {
    ($store:expr, $tx:ident, $tip_id:expr) => {{
        if !$store.is_sqlite() {
            sqlx::query("SELECT id FROM tips WHERE id = $1 FOR UPDATE")
                .bind($tip_id)
                .execute(&mut *$tx)
                .await?;
        }
    }};
}
pub(crate) use lock_tip;

impl Store {
    /// The tip whose receipt has this lookup hash.
    pub async fn tip_by_receipt(&self, receipt_hash: &[u8]) -> Result<Option<SourceTip>> {
        const Q: &str = "SELECT id, status FROM tips WHERE receipt_hash = $1";
        let row: Option<(String, String)> = super::on_pool!(self, p => sqlx::query_as(Q).bind(receipt_hash).fetch_optional(p).await?);
        Ok(row.map(|(id, status)| SourceTip { id, status }))
    }

    /// A tip's current status (for a source's page), or `None` if it no longer exists.
    pub async fn tip_status(&self, tip_id: &str) -> Result<Option<String>> {
        const Q: &str = "SELECT status FROM tips WHERE id = $1";
        Ok(super::on_pool!(self, p => sqlx::query_scalar(Q).bind(tip_id).fetch_optional(p).await?))
    }

    /// Adds a source's follow-up items to an existing tip in one durable transaction, after the
    /// tip's other items. Staged attachments are attached and checked as in the first
    /// submission. False if there is no such tip (nothing is written then).
    pub async fn commit_followup(
        &self,
        tip_id: &str,
        items: &[NewItem],
        added_at: i64,
    ) -> Result<bool> {
        const Q_NEXT: &str = "SELECT COALESCE(MAX(position), -1) + 1 FROM items WHERE tip_id = $1";
        // On PostgreSQL the tip's row is locked, so concurrent additions to one tip (a follow-up,
        // a reply, a note) number their items one after another instead of alike.
        let q_exists = if self.is_sqlite() {
            "SELECT COUNT(*) FROM tips WHERE id = $1"
        } else {
            "SELECT COUNT(*) FROM (SELECT id FROM tips WHERE id = $1 FOR UPDATE) t"
        };
        const Q_ITEM: &str = "INSERT INTO items (id, tip_id, position, kind, size, key_set_id, staged_at, added_at) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, $7)";
        const Q_CHUNK: &str = "INSERT INTO item_chunks (item_id, seq, data) VALUES ($1, 0, $2)";
        const Q_ATTACH: &str = "UPDATE items SET tip_id = $1, position = $2, kind = $3, size = $4, \
             staged_at = NULL, added_at = $7 WHERE id = $5 AND tip_id IS NULL AND key_set_id = $6";
        const Q_CHUNKS: &str =
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(data)), 0) FROM item_chunks WHERE item_id = $1";
        super::write_tx!(self, "SET LOCAL synchronous_commit = on", tx => {
            let exists: i64 = sqlx::query_scalar(q_exists).bind(tip_id).fetch_one(&mut *tx).await?;
            if exists == 0 {
                return Ok(false);
            }
            let mut key_sets: Vec<i64> = items.iter().map(|i| i.key_set_id).collect();
            key_sets.sort_unstable();
            key_sets.dedup();
            for key_set_id in key_sets {
                refuse_revoked!(self, tx, key_set_id);
            }
            let first: i64 = sqlx::query_scalar(Q_NEXT).bind(tip_id).fetch_one(&mut *tx).await?;
            for (offset, item) in items.iter().enumerate() {
                let position = first + offset as i64;
                match &item.body {
                    SealedBody::Inline(data) => {
                        sqlx::query(Q_ITEM)
                            .bind(&item.id)
                            .bind(tip_id)
                            .bind(position)
                            .bind(item.kind)
                            .bind(item.size)
                            .bind(item.key_set_id)
                            .bind(added_at)
                            .execute(&mut *tx)
                            .await?;
                        sqlx::query(Q_CHUNK).bind(&item.id).bind(data.as_slice()).execute(&mut *tx).await?;
                    }
                    SealedBody::Staged => {
                        let attached = sqlx::query(Q_ATTACH)
                            .bind(tip_id)
                            .bind(position)
                            .bind(item.kind)
                            .bind(item.size)
                            .bind(&item.id)
                            .bind(item.key_set_id)
                            .bind(added_at)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                        let (chunks, bytes): (i64, i64) =
                            sqlx::query_as(Q_CHUNKS).bind(&item.id).fetch_one(&mut *tx).await?;
                        if attached != 1 || chunks == 0 || bytes != item.size {
                            // Dropping the transaction rolls everything back.
                            return Err(StoreError::StagedItemMissing(item.id.clone()));
                        }
                    }
                }
            }
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Stores an analyst's reply: the reviewers' copy as an item of kind `reply` after the
    /// tip's other items, and the source's copy, in one transaction. False if there is no tip.
    pub async fn add_reply(
        &self,
        tip_id: &str,
        reply_id: &str,
        key_set_id: i64,
        for_reviewers: &[u8],
        for_source: &[u8],
        created_at: i64,
    ) -> Result<bool> {
        const Q_ITEM: &str = "INSERT INTO items (id, tip_id, position, kind, size, key_set_id, staged_at, added_at) \
             SELECT $1, t.id, (SELECT COALESCE(MAX(position), -1) + 1 FROM items WHERE tip_id = t.id), \
             'reply', $3, $4, NULL, $5 FROM tips t WHERE t.id = $2";
        const Q_CHUNK: &str = "INSERT INTO item_chunks (item_id, seq, data) VALUES ($1, 0, $2)";
        const Q_REPLY: &str =
            "INSERT INTO replies (id, tip_id, created_at, sealed) VALUES ($1, $2, $3, $4)";
        super::write_tx!(self, "SET LOCAL synchronous_commit = on", tx => {
            lock_tip!(self, tx, tip_id);
            let added = sqlx::query(Q_ITEM)
                .bind(reply_id)
                .bind(tip_id)
                .bind(for_reviewers.len() as i64)
                .bind(key_set_id)
                .bind(created_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if added != 1 {
                return Ok(false);
            }
            refuse_revoked!(self, tx, key_set_id);
            sqlx::query(Q_CHUNK).bind(reply_id).bind(for_reviewers).execute(&mut *tx).await?;
            sqlx::query(Q_REPLY)
                .bind(reply_id)
                .bind(tip_id)
                .bind(created_at)
                .bind(for_source)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// The source's copies of a tip's replies that the source has not deleted, oldest first.
    pub async fn source_replies(&self, tip_id: &str) -> Result<Vec<SealedReply>> {
        const Q: &str = "SELECT id, created_at, sealed, read_at FROM replies \
             WHERE tip_id = $1 AND sealed IS NOT NULL ORDER BY created_at, id";
        let rows: Vec<(String, i64, Vec<u8>, Option<i64>)> =
            super::on_pool!(self, p => sqlx::query_as(Q).bind(tip_id).fetch_all(p).await?);
        Ok(rows
            .into_iter()
            .map(|(id, created_at, sealed, read_at)| SealedReply {
                id,
                created_at,
                sealed,
                read_at,
            })
            .collect())
    }

    /// Records that the source has read these replies of its tip (the first time only).
    pub async fn mark_replies_read(&self, tip_id: &str, ids: &[String], at: i64) -> Result<()> {
        const Q: &str =
            "UPDATE replies SET read_at = $3 WHERE tip_id = $1 AND id = $2 AND read_at IS NULL";
        for id in ids {
            super::on_pool!(self, p => sqlx::query(Q).bind(tip_id).bind(id).bind(at).execute(p).await?.rows_affected());
        }
        Ok(())
    }

    /// Erases the source's copy of a reply it has read. Only a reply of this tip, and only once
    /// read: a source cannot delete what it has not seen. False if there is no such reply.
    pub async fn delete_source_reply(&self, tip_id: &str, reply_id: &str, at: i64) -> Result<bool> {
        const Q: &str = "UPDATE replies SET sealed = NULL, deleted_at = $3 \
             WHERE tip_id = $1 AND id = $2 AND read_at IS NOT NULL AND sealed IS NOT NULL";
        let n = super::on_pool!(self, p => sqlx::query(Q).bind(tip_id).bind(reply_id).bind(at).execute(p).await?.rows_affected());
        Ok(n == 1)
    }

    /// A tip's replies as analysts see them, oldest first.
    pub async fn reply_statuses(&self, tip_id: &str) -> Result<Vec<ReplyStatus>> {
        const Q: &str = "SELECT id, created_at, read_at, deleted_at FROM replies \
             WHERE tip_id = $1 ORDER BY created_at, id";
        let rows: Vec<(String, i64, Option<i64>, Option<i64>)> =
            super::on_pool!(self, p => sqlx::query_as(Q).bind(tip_id).fetch_all(p).await?);
        Ok(rows
            .into_iter()
            .map(|(id, created_at, read_at, deleted_at)| ReplyStatus {
                id,
                created_at,
                read_at,
                deleted_at,
            })
            .collect())
    }

    /// The reply recipient (public) of a tip, for sealing a reply.
    pub async fn reply_recipient(&self, tip_id: &str) -> Result<Option<String>> {
        const Q: &str = "SELECT reply_recipient FROM tips WHERE id = $1";
        Ok(super::on_pool!(self, p => sqlx::query_scalar(Q).bind(tip_id).fetch_optional(p).await?))
    }
}
