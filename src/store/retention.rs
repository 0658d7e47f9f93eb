//! Deleting tips: the one way a tip is deleted (`WriteTx::delete_tips`, used by the retention
//! policy here and by analysts' bulk deletions, `store/bulk.rs`), and scrubbing what deleted
//! ciphertext leaves behind. A tip's deletion takes everything of it (`ON DELETE CASCADE`:
//! items, their ciphertext, replies, labels, pulls).

use super::write::{Lock, WriteTx, retrying};
use super::{Backend, Result, Store, StoreError, on_backend};
use crate::audit::Audit;

/// How many tips one transaction deletes: short transactions, so intake never waits long.
const BATCH: i64 = 200;

impl Store {
    /// Deletes tips received before `all_before`, and tips closed or marked spam received
    /// before `closed_before` (either may be `None`: no such rule). Returns how many.
    ///
    /// Each batch is one transaction with its audit entry, `audit(tips deleted in it)`: what is
    /// deleted is always on record, even if a later batch fails.
    pub async fn delete_expired_tips<'a>(
        &self,
        closed_before: Option<i64>,
        all_before: Option<i64>,
        audit: impl Fn(u64) -> Audit<'a>,
    ) -> Result<u64> {
        // i64::MIN never matches: a rule that is off.
        let closed_before = closed_before.unwrap_or(i64::MIN);
        let all_before = all_before.unwrap_or(i64::MIN);
        const Q: &str = "SELECT id FROM tips \
             WHERE received_at < $2 OR (status IN ('closed', 'spam') AND received_at < $1) LIMIT $3";
        let audit = &audit;
        let mut total = 0;
        loop {
            let deleted: u64 = retrying(move || async move {
                let mut tx = self.write(Lock::Rows).await?;
                let expired: Vec<String> = on_backend!(tx.conn(), c => sqlx::query_scalar(Q)
                    .bind(closed_before)
                    .bind(all_before)
                    .bind(BATCH)
                    .fetch_all(c)
                    .await?);
                let expired: Vec<&str> = expired.iter().map(String::as_str).collect();
                let n = tx.delete_tips(&expired).await?;
                if n > 0 {
                    tx.append_audit(&audit(n)).await?;
                }
                tx.commit().await?;
                Ok::<_, StoreError>(n)
            })
            .await?;
            total += deleted;
            if deleted < BATCH as u64 {
                break;
            }
        }
        if total > 0 {
            self.scrub_deleted().await?;
        }
        Ok(total)
    }

    /// After something sealed was deleted: on SQLite the deleted pages are zeroed in the
    /// database file (secure_delete); copy them there now and cut the write-ahead log back, so
    /// that no frame of it keeps the old ciphertext. (Readers in progress can hold the log;
    /// then the next deletion or checkpoint finishes it.) PostgreSQL keeps dead row versions
    /// until vacuum.
    pub(super) async fn scrub_deleted(&self) -> Result<()> {
        if let Backend::Sqlite(p) = &self.pool {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(p)
                .await?;
        }
        Ok(())
    }
}

impl WriteTx {
    /// Deletes these tips with everything of them; returns how many there were. Once the
    /// transaction commits, call `Store::scrub_deleted`.
    pub(super) async fn delete_tips(&mut self, tip_ids: &[&str]) -> Result<u64> {
        // IN lists in pieces, far below both backends' bind limits.
        const PER_STATEMENT: usize = 500;
        let mut deleted = 0;
        for piece in tip_ids.chunks(PER_STATEMENT) {
            deleted += on_backend!(self.conn(), c => {
                let mut q = sqlx::QueryBuilder::new("DELETE FROM tips WHERE id IN (");
                let mut list = q.separated(", ");
                for id in piece {
                    list.push_bind(*id);
                }
                q.push(")");
                q.build().execute(c).await?.rows_affected()
            });
        }
        Ok(deleted)
    }
}
