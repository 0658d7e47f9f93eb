//! The reviewer key set new items are sealed to, as this node knows it, kept current with the
//! keyring in the database.

use std::sync::{Arc, RwLock};

use crate::keyring::ActiveKeySet;
use crate::store::{Store, StoreError};

/// The state of the reviewer keyring as intake sees it.
#[derive(Clone)]
pub enum KeyState {
    Ready(Arc<ActiveKeySet>),
    /// No active reviewer key: submissions are paused.
    NoKeys,
    /// Keys exist but cannot be used here (e.g. a plugin is missing): paused, and logged.
    Unusable(String),
}

/// The key set new items are sealed to, as this node knows it.
///
/// "The very next submission" after a key change, on every node sharing the database, is
/// sealed to the new set: each submission starts with `for_submission`, one primary-key read of
/// the keyring's version, and reloads the set only when that changed. A submission that was
/// already being received when the keys changed is committed sealed to the set it started with
/// (its attachments were sealed as they arrived and cannot be sealed again) — those items are
/// then listed for re-keying — unless a key of that set was revoked: then the commit refuses it
/// (see `store::commit`), and the source is asked to send it again.
pub struct KeyringCache {
    state: RwLock<(i64, KeyState)>,
    /// One reload at a time; submissions that find the version changed wait for it.
    reload: tokio::sync::Mutex<()>,
    /// The last version check: when it started, and what it read. Checks run one at a time,
    /// and a submission may use a check that *started after it arrived*: that read sees every
    /// key change committed before the submission arrived, which is all "the very next
    /// submission" asks. Submissions that arrive together (a group commit answers many at once,
    /// and their clients send the next ones at once) so share one read instead of each
    /// queueing its own on the database.
    last_check: tokio::sync::Mutex<Option<(tokio::time::Instant, i64)>>,
}

impl KeyringCache {
    pub async fn load(store: &Store) -> Result<Self, StoreError> {
        let cache = Self {
            state: RwLock::new((-1, KeyState::NoKeys)),
            reload: tokio::sync::Mutex::new(()),
            last_check: tokio::sync::Mutex::new(None),
        };
        cache.refresh(store).await?;
        Ok(cache)
    }

    /// The set as last read, without asking the database (health reports, logs).
    pub fn current(&self) -> KeyState {
        self.read().1.clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, (i64, KeyState)> {
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The set a submission (or a note) starting now must be sealed to: checks the keyring's
    /// version in the database and reloads the set if it changed.
    pub async fn for_submission(&self, store: &Store) -> Result<KeyState, StoreError> {
        let arrived = tokio::time::Instant::now();
        let latest = {
            let mut last = self.last_check.lock().await;
            match *last {
                Some((started, version)) if started >= arrived => version,
                _ => {
                    let started = tokio::time::Instant::now();
                    let version = store.keyring_version().await?.version;
                    *last = Some((started, version));
                    version
                }
            }
        };
        if self.read().0 == latest {
            return Ok(self.current());
        }
        self.refresh(store).await?;
        Ok(self.current())
    }

    /// Re-reads the keyring if its version is not the one held (versions only grow, unless
    /// the database was restored from a backup: any difference means "read it again").
    pub async fn refresh(&self, store: &Store) -> Result<(), StoreError> {
        let _one_at_a_time = self.reload.lock().await;
        let latest = store.keyring_version().await?.version;
        if self.read().0 == latest {
            return Ok(());
        }
        let snapshot = store.keyring_snapshot().await?;
        let next = match snapshot.key_set {
            None => KeyState::NoKeys,
            // Building the set checks that plugins are installed; cheap enough here.
            Some((id, fingerprint, keys)) => match ActiveKeySet::new(id, fingerprint, keys) {
                Ok(set) => KeyState::Ready(Arc::new(set)),
                Err(e) => KeyState::Unusable(e.to_string()),
            },
        };
        // Reloads are one at a time, so this snapshot is the newest any of them read.
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        log_transition(&state.1, &next);
        *state = (snapshot.version, next);
        Ok(())
    }
}

fn log_transition(old: &KeyState, new: &KeyState) {
    match (old, new) {
        (KeyState::Ready(a), KeyState::Ready(b)) if a.id == b.id => {}
        (_, KeyState::Ready(set)) => {
            tracing::info!(
                key_set = set.id,
                keys = set.keys.len(),
                "sealing new submissions to key set"
            );
            if set.keys.len() == 1 {
                tracing::warn!(
                    "only one reviewer key is active: if it is lost, so is every tip sealed to it \
                     (add a second, e.g. an offline backup key)"
                );
            }
        }
        (KeyState::NoKeys, KeyState::NoKeys) => {}
        (_, KeyState::NoKeys) => tracing::warn!(
            "no active reviewer key: submissions are paused (add one with `tipbox keys add`)"
        ),
        (KeyState::Unusable(a), KeyState::Unusable(b)) if a == b => {}
        (_, KeyState::Unusable(why)) => {
            tracing::error!(%why, "reviewer keys cannot be used on this node: submissions are paused")
        }
    }
}
