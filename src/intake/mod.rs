//! Intake: turning a source's form into sealed items and one durable commit, and what analysts
//! write on a tip.
//!
//! The web layer feeds a `Submission` (`submission`) field by field; attachments are sealed
//! while they stream in (large ones are staged in the database chunk by chunk), the message
//! and the facts (`facts`) are sealed at the end, and `Submission::commit` hands everything to
//! the group-commit queue. Until that commit succeeds nothing is acknowledged, and a submission
//! that is dropped half way — refused, failed, or abandoned by a disconnecting client — removes
//! its staged chunks. Every submission is sealed to the key set `keys` holds for this node;
//! notes and replies (`writing`) are sealed the same way.

mod facts;
mod keys;
mod submission;
mod writing;

use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::clock::now;
use crate::keyring::{ActiveKeySet, KeyError};
use crate::receipt::{LOOKUP_KEY_PURPOSE, REPLY_SALT_PURPOSE, ReceiptCode, TipBindingKey};
use crate::seal::SealError;
use crate::secrets::ServerSecret;
use crate::store::{CommitQueue, SourceTip, Store, StoreError};

pub use facts::{AttachmentFacts, Facts, IncidentType, json_to_seal};
pub use keys::{KeyState, KeyringCache};
pub use submission::{AttachmentUpload, Submission};
pub use writing::PreSealed;

/// Ciphertext is written to the database in pieces of this size; an attachment that fits in
/// one piece is written only at commit.
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// How long a staged (uncommitted) item may live before the sweeper deletes it.
pub const STAGING_TTL_SECONDS: i64 = 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("sealing task failed: {0}")]
    Task(String),
    #[error("no usable reviewer key: nothing can be sealed")]
    Paused,
    /// Something sealed elsewhere that the server does not accept (and why).
    #[error("{0}")]
    Refused(String),
}

impl IntakeError {
    /// A key of the set this was sealed to was revoked while it was being received.
    pub fn keys_revoked(&self) -> bool {
        matches!(self, IntakeError::Store(StoreError::KeySetRevoked))
    }

    /// The same submission form was sent before and its tip stored then.
    pub fn already_sent(&self) -> bool {
        matches!(self, IntakeError::Store(StoreError::FormAlreadyUsed))
    }
}

/// How long a used submission form's key is remembered: far longer than its receipt page can
/// be reloaded or re-sent, short enough that the table stays small.
const FORM_KEY_TTL_SECONDS: i64 = 24 * 3600;

/// Everything intake needs, shared by all requests.
pub struct Intake {
    pub store: Store,
    pub queue: CommitQueue,
    pub keys: KeyringCache,
    lookup_key: Zeroizing<[u8; 32]>,
    reply_salt: Zeroizing<[u8; 32]>,
    binding_key: TipBindingKey,
    time_granularity: u64,
}

/// What the source gets back.
pub struct Accepted {
    pub receipt: ReceiptCode,
}

impl Intake {
    pub fn new(
        store: Store,
        queue: CommitQueue,
        keys: KeyringCache,
        secret: &ServerSecret,
        time_granularity: u64,
    ) -> Self {
        Self {
            store,
            queue,
            keys,
            lookup_key: secret.subkey(LOOKUP_KEY_PURPOSE),
            reply_salt: secret.subkey(REPLY_SALT_PURPOSE),
            binding_key: TipBindingKey::new(secret),
            time_granularity,
        }
    }

    /// Starts a submission sealed to `keys` (the set active when the request arrived).
    pub fn begin(self: &Arc<Self>, keys: Arc<ActiveKeySet>) -> Submission {
        Submission::new(Arc::clone(self), keys)
    }

    /// Looks up the tip of a receipt typed back by a source (every reading of its words: the
    /// Chinese word lists overlap). Every reading is looked up whether or not an earlier one
    /// matched, so the work done depends on the words only, not on what is stored. A tip whose
    /// binding does not verify is no match (`Store::tip_by_receipt`): the source sees what a
    /// wrong receipt gets. On a match, the reply identity is derived here, in memory; the caller
    /// keeps it only for the source's session.
    pub async fn open_case(
        &self,
        readings: Vec<ReceiptCode>,
    ) -> Result<Option<(SourceTip, age::x25519::Identity)>, IntakeError> {
        let mut found = None;
        for receipt in readings {
            let hash = receipt.lookup_hash(&self.lookup_key);
            if let Some(tip) = self.store.tip_by_receipt(&hash, &self.binding_key).await?
                && found.is_none()
            {
                found = Some((tip, receipt.reply_identity(&self.reply_salt)));
            }
        }
        Ok(found)
    }

    pub fn time_granularity(&self) -> u64 {
        self.time_granularity
    }

    /// Periodically checkpoints the SQLite WAL (every second), re-reads the keyring (so that
    /// health reports and logs follow key changes even when no one submits; submissions check
    /// it themselves) and deletes expired staged items.
    pub fn spawn_maintenance(self: &Arc<Self>, refresh: Duration) -> tokio::task::JoinHandle<()> {
        let intake = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(refresh.min(Duration::from_secs(1)));
            let mut last_sweep = None::<tokio::time::Instant>;
            let mut last_refresh = tokio::time::Instant::now();
            loop {
                ticker.tick().await;
                if let Err(error) = intake.store.checkpoint().await {
                    tracing::error!(%error, "WAL checkpoint failed");
                }
                if last_refresh.elapsed() < refresh {
                    continue;
                }
                last_refresh = tokio::time::Instant::now();
                if let Err(error) = intake.keys.refresh(&intake.store).await {
                    tracing::error!(%error, "could not re-read the reviewer keyring");
                }
                if last_sweep.is_none_or(|t| t.elapsed() > Duration::from_secs(600)) {
                    last_sweep = Some(tokio::time::Instant::now());
                    // Staging times are coarsened too: an upload staged at the start of a period
                    // is dated to that start, so the cutoff allows a whole extra period.
                    let cutoff = now() - STAGING_TTL_SECONDS - intake.time_granularity as i64;
                    match intake.store.sweep_staged(cutoff).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(items = n, "deleted expired staged uploads"),
                        Err(error) => tracing::error!(%error, "could not sweep staged uploads"),
                    }
                    if let Err(error) = intake
                        .store
                        .sweep_submission_forms(now() - FORM_KEY_TTL_SECONDS)
                        .await
                    {
                        tracing::error!(%error, "could not forget used submission forms");
                    }
                }
            }
        })
    }
}
