//! The retention policy: old tips are deleted on a schedule inside `serve` (and by hand with
//! `tipbox retention run`), with an entry in the audit trail for each run that deleted any (one
//! per batch of deletions, committed with it, when a run deletes more than a batch).

use std::time::Duration;

use crate::audit::{Audit, AuditAction};
use crate::config::RetentionConfig;
use crate::store::{Store, StoreError};

const DAY: i64 = 24 * 3600;

/// Applies the policy once at `now`; returns how many tips were deleted.
pub async fn run(store: &Store, policy: &RetentionConfig, now: i64) -> Result<u64, StoreError> {
    if !policy.enabled() {
        return Ok(0);
    }
    let before = |days: u32| (days > 0).then(|| now - i64::from(days) * DAY);
    store
        .delete_expired_tips(
            before(policy.closed_after_days),
            before(policy.all_after_days),
            |deleted| Audit {
                at: now,
                actor: "(retention)",
                action: AuditAction::RetentionDelete,
                subject: "",
                detail: serde_json::json!({
                    "deleted_tips": deleted,
                    "closed_after_days": policy.closed_after_days,
                    "all_after_days": policy.all_after_days,
                }),
            },
        )
        .await
}

/// Applies the policy at start and then every `policy.interval_minutes`, until the process
/// ends. A failed run is logged and tried again at the next interval.
pub fn spawn(store: Store, policy: RetentionConfig) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if !policy.enabled() {
            return;
        }
        let mut ticker =
            tokio::time::interval(Duration::from_secs(u64::from(policy.interval_minutes) * 60));
        loop {
            ticker.tick().await;
            match run(&store, &policy, crate::clock::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(tips = n, "retention: deleted old tips"),
                Err(error) => tracing::error!(%error, "retention: could not delete old tips"),
            }
        }
    })
}
