//! The audit trail's rows: events that are nothing but an entry, actions outside the database
//! committed with their entry, and reading the trail back for `tipbox audit verify`. (An action
//! on the database appends its entry itself, in its own transaction: `WriteTx::append_audit`.)

use sqlx::Row;

use super::write::{Lock, retrying};
use super::{Result, Store, StoreError, on_backend};
use crate::audit::{Audit, AuditEntry};

impl Store {
    /// Appends an entry that records an event with nothing else to write (a tip viewed, a
    /// sign-in attempt).
    pub async fn append_audit(&self, audit: &Audit<'_>) -> Result<()> {
        retrying(move || async move {
            let mut tx = self.write(Lock::Rows).await?;
            tx.append_audit(audit).await?;
            tx.commit().await
        })
        .await
    }

    /// Performs `action`, something outside the database (tor's client authorizations), with
    /// its entry: the entry is appended first, the action runs only once it is, and the entry is
    /// committed only if the action did something (`Ok(Some(..))`). `Ok(None)` (nothing to do)
    /// and an error keep no entry.
    pub async fn audited<T, E>(
        &self,
        audit: &Audit<'_>,
        action: impl FnOnce() -> Result<Option<T>, E>,
    ) -> Result<Option<T>, E>
    where
        E: From<StoreError>,
    {
        // Only the append is retried: the action runs once, after the race for the next
        // sequence number is won (nothing after it in this transaction can lose one).
        let tx = retrying(move || async move {
            let mut tx = self.write(Lock::Rows).await?;
            tx.append_audit(audit).await?;
            Ok::<_, StoreError>(tx)
        })
        .await?;
        let Some(done) = action()? else {
            return Ok(None);
        };
        tx.commit().await?;
        Ok(Some(done))
    }

    pub async fn audit_entries(&self) -> Result<Vec<AuditEntry>> {
        const Q: &str = "SELECT seq, at, actor, action, subject, detail, prev_hash, hash FROM audit_log ORDER BY seq";
        on_backend!(&self.pool, p => sqlx::query(Q)
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| -> Result<AuditEntry> {
                Ok(AuditEntry {
                    seq: r.try_get("seq")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    subject: r.try_get("subject")?,
                    detail: r.try_get("detail")?,
                    prev_hash: r.try_get("prev_hash")?,
                    hash: r.try_get("hash")?,
                })
            })
            .collect())
    }
}
