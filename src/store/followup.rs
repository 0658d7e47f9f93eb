//! Queries for two-way follow-up: finding a tip by its receipt, a source's additions to a
//! tip, and analysts' replies (the reviewers' copy is an item of kind `reply`, the source's
//! copy a row of `replies`).

use super::write::{Lock, WriteTx, retrying};
use super::{NewItem, Result, SealedBody, Store, StoreError, on_backend};
use crate::audit::Audit;
use crate::receipt::TipBindingKey;

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

/// One of a source's sends, as the source may see it: when, whether it had a message, how many
/// files and how large they are sealed (close to their own size). Never what they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub at: i64,
    pub message: bool,
    pub files: u32,
    pub file_bytes: i64,
}

impl Store {
    /// What a tip holds from its source, one entry per send (the first report, then each
    /// addition), oldest first. Every send has exactly one `report` (message and facts) or
    /// `facts` item (no message) before its files; a send stored before reports existed has a
    /// `message` item, then its `facts` (`crate::report`). Replies and notes are not the
    /// source's.
    pub async fn source_received(&self, tip_id: &str) -> Result<Vec<Received>> {
        const Q: &str = "SELECT i.kind, i.size, COALESCE(i.added_at, t.received_at) \
             FROM items i JOIN tips t ON t.id = i.tip_id \
             WHERE i.tip_id = $1 AND i.kind IN ('report', 'message', 'facts', 'attachment') ORDER BY i.position";
        let rows: Vec<(String, i64, i64)> =
            on_backend!(&self.pool, p => sqlx::query_as(Q).bind(tip_id).fetch_all(p).await?);
        let mut sends: Vec<Received> = Vec::new();
        // Whether the last send is still waiting for its facts (it began with a message item).
        let mut open = false;
        for (kind, size, at) in rows {
            match kind.as_str() {
                "report" | "message" => {
                    sends.push(Received {
                        at,
                        message: true,
                        files: 0,
                        file_bytes: 0,
                    });
                    open = kind == "message";
                }
                "facts" if open => open = false,
                "facts" => sends.push(Received {
                    at,
                    message: false,
                    files: 0,
                    file_bytes: 0,
                }),
                _ => {
                    if let Some(last) = sends.last_mut() {
                        last.files += 1;
                        last.file_bytes += size;
                    }
                }
            }
        }
        Ok(sends)
    }

    /// The tip whose receipt has this lookup hash, if its binding verifies. A row whose binding
    /// does not (a receipt hash or reply recipient copied from another tip, or never bound) is
    /// not found, exactly as for a receipt that was never issued, after the same work.
    pub async fn tip_by_receipt(
        &self,
        receipt_hash: &[u8],
        binding_key: &TipBindingKey,
    ) -> Result<Option<SourceTip>> {
        const Q: &str =
            "SELECT id, status, reply_recipient, binding FROM tips WHERE receipt_hash = $1";
        type Row = (String, String, String, Option<Vec<u8>>);
        let row: Option<Row> = on_backend!(&self.pool, p => sqlx::query_as(Q).bind(receipt_hash).fetch_optional(p).await?);
        let Some((id, status, reply_recipient, binding)) = row else {
            // The same work as a row whose binding does not verify.
            let _ = binding_key.verifies("", receipt_hash, "", None);
            return Ok(None);
        };
        let bound = binding_key.verifies(&id, receipt_hash, &reply_recipient, binding.as_deref());
        Ok(bound.then_some(SourceTip { id, status }))
    }

    /// A tip's current status (for a source's page), or `None` if it no longer exists.
    pub async fn tip_status(&self, tip_id: &str) -> Result<Option<String>> {
        const Q: &str = "SELECT status FROM tips WHERE id = $1";
        Ok(
            on_backend!(&self.pool, p => sqlx::query_scalar(Q).bind(tip_id).fetch_optional(p).await?),
        )
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
        retrying(move || async move {
            let mut tx = self.write(Lock::Acknowledged).await?;
            if !tx.lock_tip(tip_id).await? {
                return Ok(false);
            }
            tx.refuse_revoked(items.iter().map(|i| i.key_set_id))
                .await?;
            let first = tx.next_position(tip_id).await?;
            for (offset, item) in (0..).zip(items) {
                tx.write_item(tip_id, item, first + offset, Some(added_at))
                    .await?;
            }
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    /// Stores an analyst's reply, with its audit entry: the reviewers' copy as an item of kind
    /// `reply` after the tip's other items (with `commitment` to its plaintext), and the
    /// source's copy, in one transaction. False if there is no tip.
    #[allow(clippy::too_many_arguments)]
    pub async fn add_reply(
        &self,
        tip_id: &str,
        reply_id: &str,
        key_set_id: i64,
        for_reviewers: &[u8],
        commitment: [u8; crate::commitment::COMMITMENT_BYTES],
        for_source: &[u8],
        created_at: i64,
        audit: &Audit<'_>,
    ) -> Result<bool> {
        const Q_REPLY: &str =
            "INSERT INTO replies (id, tip_id, created_at, sealed) VALUES ($1, $2, $3, $4)";
        let item = &analyst_item(reply_id, "reply", key_set_id, for_reviewers, commitment);
        retrying(move || async move {
            let mut tx = self.write(Lock::Acknowledged).await?;
            if !tx.add_item(tip_id, item, created_at).await? {
                return Ok(false);
            }
            on_backend!(tx.conn(), c => sqlx::query(Q_REPLY)
                .bind(reply_id)
                .bind(tip_id)
                .bind(created_at)
                .bind(for_source)
                .execute(c)
                .await?
                .rows_affected());
            tx.append_audit(audit).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    /// The source's copies of a tip's replies that the source has not deleted, oldest first.
    pub async fn source_replies(&self, tip_id: &str) -> Result<Vec<SealedReply>> {
        const Q: &str = "SELECT id, created_at, sealed, read_at FROM replies \
             WHERE tip_id = $1 AND sealed IS NOT NULL ORDER BY created_at, id";
        let rows: Vec<(String, i64, Vec<u8>, Option<i64>)> =
            on_backend!(&self.pool, p => sqlx::query_as(Q).bind(tip_id).fetch_all(p).await?);
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
            on_backend!(&self.pool, p => sqlx::query(Q).bind(tip_id).bind(id).bind(at).execute(p).await?.rows_affected());
        }
        Ok(())
    }

    /// Erases the source's copy of a reply it has read. Only a reply of this tip, and only once
    /// read: a source cannot delete what it has not seen. False if there is no such reply.
    pub async fn delete_source_reply(&self, tip_id: &str, reply_id: &str, at: i64) -> Result<bool> {
        const Q: &str = "UPDATE replies SET sealed = NULL, deleted_at = $3 \
             WHERE tip_id = $1 AND id = $2 AND read_at IS NOT NULL AND sealed IS NOT NULL";
        let n = on_backend!(&self.pool, p => sqlx::query(Q).bind(tip_id).bind(reply_id).bind(at).execute(p).await?.rows_affected());
        if n == 1 {
            // The old ciphertext must not stay behind in the write-ahead log either.
            self.scrub_deleted().await?;
        }
        Ok(n == 1)
    }

    /// A tip's replies as analysts see them, oldest first.
    pub async fn reply_statuses(&self, tip_id: &str) -> Result<Vec<ReplyStatus>> {
        const Q: &str = "SELECT id, created_at, read_at, deleted_at FROM replies \
             WHERE tip_id = $1 ORDER BY created_at, id";
        let rows: Vec<(String, i64, Option<i64>, Option<i64>)> =
            on_backend!(&self.pool, p => sqlx::query_as(Q).bind(tip_id).fetch_all(p).await?);
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

    /// The reply recipient (public) of a tip, for sealing a reply; `None` if there is no such
    /// tip. Refused (`StoreError::UnboundRecipient`) unless the tip's binding verifies: a
    /// recipient copied from another tip would let its holder read the reply.
    pub async fn reply_recipient(
        &self,
        tip_id: &str,
        binding_key: &TipBindingKey,
    ) -> Result<Option<String>> {
        const Q: &str = "SELECT receipt_hash, reply_recipient, binding FROM tips WHERE id = $1";
        type Row = (Vec<u8>, String, Option<Vec<u8>>);
        let row: Option<Row> =
            on_backend!(&self.pool, p => sqlx::query_as(Q).bind(tip_id).fetch_optional(p).await?);
        let Some((receipt_hash, reply_recipient, binding)) = row else {
            return Ok(None);
        };
        if !binding_key.verifies(tip_id, &receipt_hash, &reply_recipient, binding.as_deref()) {
            return Err(StoreError::UnboundRecipient(tip_id.to_owned()));
        }
        Ok(Some(reply_recipient))
    }

    /// Binds every tip stored without a binding (before migration 0007), in batches of
    /// `batch` per write transaction; returns how many were bound. `bind` makes a tip's binding
    /// from its id, receipt hash and reply recipient. Run once per deployment, by
    /// `app::bind_rows_stored_before_bindings`: after that, a missing binding is a tampered
    /// row, and binding it would launder it.
    pub async fn bind_unbound_tips(
        &self,
        bind: impl Fn(&str, &[u8], &str) -> Vec<u8>,
        batch: i64,
    ) -> Result<u64> {
        const Q_SELECT: &str = "SELECT id, receipt_hash, reply_recipient FROM tips \
             WHERE binding IS NULL ORDER BY id LIMIT $1";
        const Q_BIND: &str = "UPDATE tips SET binding = $2 WHERE id = $1 AND binding IS NULL";
        let bind = &bind;
        let mut bound = 0;
        loop {
            let in_batch = retrying(move || async move {
                let mut tx = self.write(Lock::Rows).await?;
                let rows: Vec<(String, Vec<u8>, String)> = on_backend!(tx.conn(), c => sqlx::query_as(Q_SELECT).bind(batch).fetch_all(c).await?);
                for (id, receipt_hash, reply_recipient) in &rows {
                    let binding = bind(id, receipt_hash, reply_recipient);
                    on_backend!(tx.conn(), c => sqlx::query(Q_BIND).bind(id).bind(&binding).execute(c).await?.rows_affected());
                }
                tx.commit().await?;
                Ok::<_, StoreError>(rows.len() as u64)
            })
            .await?;
            bound += in_batch;
            if in_batch < batch as u64 {
                return Ok(bound);
            }
        }
    }
}

/// An analyst's note or reply (the reviewers' copy), to add after a tip's other items.
pub(super) fn analyst_item(
    id: &str,
    kind: &'static str,
    key_set_id: i64,
    sealed: &[u8],
    commitment: [u8; crate::commitment::COMMITMENT_BYTES],
) -> NewItem {
    NewItem {
        id: id.to_owned(),
        // Unused: `WriteTx::add_item` places it after the items there are when it commits.
        position: 0,
        kind,
        size: sealed.len() as i64,
        key_set_id,
        body: SealedBody::Inline(sealed.to_vec()),
        commitment,
    }
}

impl WriteTx {
    /// The position after a tip's last item (call `lock_tip` first).
    async fn next_position(&mut self, tip_id: &str) -> Result<i64> {
        const Q: &str = "SELECT COALESCE(MAX(position), -1) + 1 FROM items WHERE tip_id = $1";
        Ok(on_backend!(self.conn(), c => sqlx::query_scalar(Q).bind(tip_id).fetch_one(c).await?))
    }

    /// Adds one item after a tip's others (an analyst's note or reply), refused if its key set
    /// has a revoked key; false if there is no such tip.
    pub(super) async fn add_item(
        &mut self,
        tip_id: &str,
        item: &NewItem,
        added_at: i64,
    ) -> Result<bool> {
        if !self.lock_tip(tip_id).await? {
            return Ok(false);
        }
        self.refuse_revoked([item.key_set_id]).await?;
        let position = self.next_position(tip_id).await?;
        self.write_item(tip_id, item, position, Some(added_at))
            .await?;
        Ok(true)
    }
}
