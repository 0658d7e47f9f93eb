//! Bulk changes: one action (mark spam, close, delete) over many tips at once, for clearing a
//! junk wave. All of it is one write transaction with an audit entry per tip changed: every
//! tip is changed and on record, or none is.

use std::collections::{HashMap, HashSet};

use super::write::{Lock, retrying};
use super::{Result, Store, StoreError};
use crate::audit::Audit;

/// The most tips one bulk change takes: one transaction holds the write lock (on SQLite,
/// intake's too) while it runs, so it stays short.
pub const MAX_BULK: usize = 2000;

/// What a bulk change does to each tip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAction {
    /// Status `spam`, as triage sets it.
    Spam,
    /// Status `closed`, as triage sets it.
    Close,
    /// Deleted with everything of it, as the retention policy deletes tips.
    Delete,
}

impl BulkAction {
    pub const ALL: [BulkAction; 3] = [BulkAction::Spam, BulkAction::Close, BulkAction::Delete];

    /// Its name in the API and the desk's forms.
    pub fn as_str(self) -> &'static str {
        match self {
            BulkAction::Spam => "spam",
            BulkAction::Close => "close",
            BulkAction::Delete => "delete",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The status it sets (one of `STATUSES`); `None` for a deletion.
    pub fn status(self) -> Option<&'static str> {
        match self {
            BulkAction::Spam => Some("spam"),
            BulkAction::Close => Some("closed"),
            BulkAction::Delete => None,
        }
    }
}

/// What a bulk change did, each list in the order the ids were asked (without repeats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkOutcome {
    /// Tips changed (or deleted), each with its audit entry.
    pub changed: Vec<String>,
    /// Tips that already had the status to set: left as they were, with no entry.
    pub unchanged: Vec<String>,
    /// Ids of no tip (never stored, or deleted meanwhile).
    pub missing: Vec<String>,
}

impl Store {
    /// Applies `action` to the tips `ids` (at most `MAX_BULK`; a repeated id counts once) in one
    /// transaction, with an audit entry per tip changed: `audit` with the tip as its subject.
    /// Ids of no tip are reported, not refused. A deletion then scrubs what the deleted
    /// ciphertext left behind, as the retention policy does.
    pub async fn bulk_change(
        &self,
        ids: &[String],
        action: BulkAction,
        audit: &Audit<'_>,
    ) -> Result<BulkOutcome> {
        if ids.len() > MAX_BULK {
            return Err(StoreError::TooManyTips(ids.len()));
        }
        let mut seen = HashSet::new();
        let ids: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|id| seen.insert(*id))
            .collect();
        let ids = &ids;
        let outcome = retrying(move || async move {
            let mut tx = self.write(Lock::Rows).await?;
            let found: HashMap<String, String> = tx.lock_tips(ids).await?.into_iter().collect();
            let mut outcome = BulkOutcome::default();
            for id in ids {
                let list = match found.get(*id) {
                    None => &mut outcome.missing,
                    Some(status) if action.status() == Some(status.as_str()) => {
                        &mut outcome.unchanged
                    }
                    Some(_) => &mut outcome.changed,
                };
                list.push((*id).to_owned());
            }
            let changed: Vec<&str> = outcome.changed.iter().map(String::as_str).collect();
            match action.status() {
                Some(status) => tx.set_status(&changed, status).await?,
                None => tx.delete_tips(&changed).await?,
            };
            let entries: Vec<Audit<'_>> = changed
                .iter()
                .map(|&id| Audit {
                    subject: id,
                    ..audit.clone()
                })
                .collect();
            tx.append_audits(&entries).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(outcome)
        })
        .await?;
        if action == BulkAction::Delete && !outcome.changed.is_empty() {
            // The deletion is committed and answered as done; a scrub that fails here is
            // finished by the next deletion or checkpoint.
            if let Err(error) = self.scrub_deleted().await {
                tracing::warn!(%error, "could not scrub the write-ahead log after a deletion");
            }
        }
        Ok(outcome)
    }
}
