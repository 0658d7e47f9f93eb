//! Queries for the reviewer keyring: keys and their history, the keyring's version and the key
//! set every new item is sealed to, and key changes (add, retire, revoke), each committed in
//! one transaction together with its audit entry.
//!
//! Consistency across nodes: the `keyring` row holds the current key set and a version that
//! every key change increments in its own transaction. Key changes lock that row (PostgreSQL
//! `FOR UPDATE`; SQLite serializes writers), so two admins on two nodes cannot, say, both
//! retire "the other" key and leave none. Nodes read the row at the start of every submission.

use super::write::{Lock, LostARace, WriteTx, retrying};
use super::{Result, Store, StoreError, on_backend};
use crate::audit::{Audit, AuditAction};
use crate::keyring::{
    KeyLookupError, KeyStatus, Recipient, ReviewerKey, find_key, key_set_fingerprint,
};

#[derive(Debug, thiserror::Error)]
pub enum KeyChangeError {
    #[error(transparent)]
    Lookup(#[from] KeyLookupError),
    #[error(
        "a reviewer key with this fingerprint is already in the keyring (id {0}); a key that was \
         retired or revoked cannot come back: make a new key"
    )]
    Duplicate(i64),
    /// Refused by policy (the last key, the configured minimum, a key already retired…).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for KeyChangeError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(error.into())
    }
}

impl LostARace for KeyChangeError {
    fn lost_a_race(&self) -> bool {
        matches!(self, KeyChangeError::Store(e) if e.lost_a_race())
    }
}

/// The keyring's version and the key set every new item is sealed to (none: paused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct KeyringVersion {
    pub version: i64,
    pub key_set_id: Option<i64>,
}

/// The current key set with its keys, read at one keyring version.
#[derive(Debug, Clone)]
pub struct KeyringSnapshot {
    pub version: i64,
    /// `(key set id, key set fingerprint, its keys)`, or `None` when no key is active.
    pub key_set: Option<(i64, String, Vec<ReviewerKey>)>,
}

/// What a key change did.
#[derive(Debug, Clone)]
pub struct KeyChange {
    pub key: ReviewerKey,
    /// The keyring after the change.
    pub keyring: KeyringVersion,
    /// How many keys are active after the change.
    pub active_keys: usize,
}

/// One key set and what is sealed to it, for `keys status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeySetStatus {
    pub id: i64,
    pub fingerprint: String,
    /// Every item sealed from now on goes to this set.
    pub current: bool,
    /// A member was retired or revoked: its items should be re-keyed.
    pub retired_at: Option<i64>,
    /// A member was revoked: its items need a fresh encryption.
    pub revoked_at: Option<i64>,
    /// The ids of its keys.
    pub keys: Vec<i64>,
    /// Committed items sealed to it, and the tips they belong to.
    pub items: i64,
    pub tips: i64,
}

/// Items and tips still sealed to sets with a retired (only) or a revoked key.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Exposure {
    pub items: i64,
    pub tips: i64,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct NeedsRekey {
    /// Sealed to a set with a retired key and no revoked one: a new header suffices.
    pub retired: Exposure,
    /// Sealed to a set with a revoked key: a fresh encryption is needed.
    pub revoked: Exposure,
}

/// A revoked key and the tips it can still open.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RevokedKeyExposure {
    pub id: i64,
    pub label: String,
    pub fingerprint: String,
    pub revoked_at: Option<i64>,
    pub tips_still_open: Vec<String>,
}

/// `tipbox keys status` and `GET /api/v1/keys/status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyringStatus {
    pub keyring_version: i64,
    pub current_key_set: Option<i64>,
    pub active_keys: usize,
    pub key_sets: Vec<KeySetStatus>,
    pub needs_rekey: NeedsRekey,
    pub revoked_keys: Vec<RevokedKeyExposure>,
    pub warnings: Vec<&'static str>,
}

type KeyRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    bool,
    i64,
    Option<i64>,
    Option<i64>,
);

/// Every key, oldest first.
const Q_ALL_KEYS: &str = "SELECT id, fingerprint, recipient, label, owner, active, added_at, \
     retired_at, revoked_at FROM reviewer_keys ORDER BY id";

fn key_from_row(row: KeyRow) -> Result<ReviewerKey> {
    let (id, fingerprint, text, label, owner, active, added_at, retired_at, revoked_at) = row;
    let recipient =
        Recipient::parse(&text).map_err(|e| StoreError::CorruptKey(id, e.to_string()))?;
    Ok(ReviewerKey {
        id,
        label,
        owner,
        recipient,
        fingerprint,
        active,
        added_at,
        retired_at,
        revoked_at,
    })
}

impl Store {
    /// The keyring's version and current key set: one primary-key lookup, cheap enough to run
    /// at the start of every submission.
    pub async fn keyring_version(&self) -> Result<KeyringVersion> {
        const Q: &str = "SELECT version, key_set_id FROM keyring WHERE id = 1";
        let (version, key_set_id): (i64, Option<i64>) =
            on_backend!(&self.pool, p => sqlx::query_as(Q).fetch_one(p).await?);
        Ok(KeyringVersion {
            version,
            key_set_id,
        })
    }

    /// The current key set and its keys. A key set never changes its members, so reading the
    /// version and then the members is consistent.
    pub async fn keyring_snapshot(&self) -> Result<KeyringSnapshot> {
        let version = self.keyring_version().await?;
        let Some(set_id) = version.key_set_id else {
            return Ok(KeyringSnapshot {
                version: version.version,
                key_set: None,
            });
        };
        let (fingerprint, keys) = self.key_set(set_id).await?;
        Ok(KeyringSnapshot {
            version: version.version,
            key_set: Some((set_id, fingerprint, keys)),
        })
    }

    /// The key set an analyst last acknowledged on the desk, if any.
    pub async fn seen_key_set(&self, analyst_id: i64) -> Result<Option<i64>> {
        const Q: &str = "SELECT seen_key_set FROM analysts WHERE id = $1";
        let seen: Option<Option<i64>> = on_backend!(&self.pool, p => sqlx::query_scalar(Q).bind(analyst_id).fetch_optional(p).await?);
        Ok(seen.flatten())
    }

    /// Records that an analyst has seen key set `key_set_id` (the one the desk showed them);
    /// false if there is no such key set.
    pub async fn acknowledge_key_set(&self, analyst_id: i64, key_set_id: i64) -> Result<bool> {
        const Q: &str = "UPDATE analysts SET seen_key_set = $2 \
             WHERE id = $1 AND EXISTS (SELECT 1 FROM key_sets WHERE id = $2)";
        let n = on_backend!(&self.pool, p => sqlx::query(Q).bind(analyst_id).bind(key_set_id).execute(p).await?.rows_affected());
        Ok(n == 1)
    }

    /// A key set's fingerprint and keys.
    pub async fn key_set(&self, set_id: i64) -> Result<(String, Vec<ReviewerKey>)> {
        const Q_SET: &str = "SELECT fingerprint FROM key_sets WHERE id = $1";
        let fingerprint: String = on_backend!(&self.pool, p => sqlx::query_scalar(Q_SET).bind(set_id).fetch_one(p).await?);
        const Q_KEYS: &str = "SELECT id, fingerprint, recipient, label, owner, active, added_at, \
             retired_at, revoked_at FROM reviewer_keys \
             WHERE id IN (SELECT key_id FROM key_set_members WHERE key_set_id = $1) ORDER BY id";
        let rows: Vec<KeyRow> =
            on_backend!(&self.pool, p => sqlx::query_as(Q_KEYS).bind(set_id).fetch_all(p).await?);
        let keys = rows
            .into_iter()
            .map(key_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok((fingerprint, keys))
    }

    /// Brings the keyring row up to date with the active keys (a database written by an
    /// earlier release has version 0). Run when tipbox opens the database; a no-op otherwise.
    pub async fn sync_keyring(&self, now: i64) -> Result<KeyringVersion> {
        retrying(move || async move {
            let mut tx = self.write(Lock::KeyChange).await?;
            let keyring = tx.sync_keyring(now).await?;
            tx.commit().await?;
            Ok(keyring)
        })
        .await
    }

    /// Every key, active or not, oldest first.
    pub async fn list_keys(&self) -> Result<Vec<ReviewerKey>> {
        let rows: Vec<KeyRow> =
            on_backend!(&self.pool, p => sqlx::query_as(Q_ALL_KEYS).fetch_all(p).await?);
        rows.into_iter().map(key_from_row).collect()
    }

    /// Adds a key to the active set: from the next submission on, every new item is sealed to
    /// it as well.
    pub async fn add_key(
        &self,
        recipient: &Recipient,
        label: &str,
        owner: Option<&str>,
        actor: &str,
        now: i64,
    ) -> Result<KeyChange, KeyChangeError> {
        const Q_FIND: &str = "SELECT id FROM reviewer_keys WHERE fingerprint = $1";
        const Q_ADD: &str = "INSERT INTO reviewer_keys (fingerprint, recipient, kind, label, owner, active, added_at) \
             VALUES ($1, $2, $3, $4, $5, TRUE, $6) RETURNING id";
        let fingerprint = &recipient.fingerprint();
        let kind = &recipient.kind.as_db();
        retrying(move || async move {
            let mut tx = self.write(Lock::KeyChange).await?;
            let existing: Option<i64> = on_backend!(tx.conn(), c => sqlx::query_scalar(Q_FIND)
                .bind(fingerprint)
                .fetch_optional(c)
                .await?);
            if let Some(id) = existing {
                return Err(KeyChangeError::Duplicate(id));
            }
            let id: i64 = on_backend!(tx.conn(), c => sqlx::query_scalar(Q_ADD)
                .bind(fingerprint)
                .bind(&recipient.text)
                .bind(kind)
                .bind(label)
                .bind(owner)
                .bind(now)
                .fetch_one(c)
                .await?);
            let audit = Audit {
                at: now,
                actor,
                action: AuditAction::KeyAdd,
                subject: fingerprint,
                detail: serde_json::json!({ "id": id, "label": label, "owner": owner, "kind": kind }),
            };
            let change = tx.record_key_change(id, audit).await?;
            tx.commit().await?;
            Ok(change)
        })
        .await
    }

    /// Takes a key out of the active set, with no suspicion on it (a reviewer left, a key moved
    /// to a hardware token). Refused if fewer than `min_active` keys (and never none) would
    /// stay active.
    pub async fn retire_key(
        &self,
        wanted: &str,
        min_active: usize,
        actor: &str,
        now: i64,
    ) -> Result<KeyChange, KeyChangeError> {
        const Q_RETIRE: &str =
            "UPDATE reviewer_keys SET active = FALSE, retired_at = $2 WHERE id = $1";
        const Q_RETIRE_SETS: &str = "UPDATE key_sets SET retired_at = $2 WHERE retired_at IS NULL \
             AND id IN (SELECT key_set_id FROM key_set_members WHERE key_id = $1)";
        retrying(move || async move {
            let mut tx = self.write(Lock::KeyChange).await?;
            let keys = tx.keys().await?;
            let key = find_key(&keys, wanted)?.clone();
            match key.status() {
                KeyStatus::Active => {}
                KeyStatus::Retired => {
                    return Err(KeyChangeError::Refused(format!(
                        "{} is already retired",
                        key.label
                    )));
                }
                KeyStatus::Revoked => {
                    return Err(KeyChangeError::Refused(format!(
                        "{} is revoked, which is more than retired",
                        key.label
                    )));
                }
            }
            let remaining = keys.iter().filter(|k| k.active && k.id != key.id).count();
            if remaining == 0 {
                return Err(KeyChangeError::Refused(format!(
                    "{} is the last active reviewer key: add its replacement first, then retire it \
                     (without an active key the tip line cannot accept submissions)",
                    key.label
                )));
            }
            if remaining < min_active {
                return Err(KeyChangeError::Refused(format!(
                    "retiring {} would leave {remaining} active key(s), fewer than keys.min_active = \
                     {min_active}: add another key first",
                    key.label
                )));
            }
            on_backend!(tx.conn(), c => {
                sqlx::query(Q_RETIRE).bind(key.id).bind(now).execute(&mut *c).await?;
                sqlx::query(Q_RETIRE_SETS).bind(key.id).bind(now).execute(c).await?;
            });
            let audit = Audit {
                at: now,
                actor,
                action: AuditAction::KeyRetire,
                subject: &key.fingerprint,
                detail: serde_json::json!({ "id": key.id, "label": key.label }),
            };
            let change = tx.record_key_change(key.id, audit).await?;
            tx.commit().await?;
            Ok(change)
        })
        .await
    }

    /// Revokes a key that must be assumed compromised: out of the active set at once (even if
    /// that leaves none and pauses submissions — better than sealing to a key someone else
    /// holds), nothing more is committed sealed to a set containing it, and every item sealed
    /// to such a set needs a fresh encryption. A retired key can be revoked too.
    pub async fn revoke_key(
        &self,
        wanted: &str,
        actor: &str,
        now: i64,
    ) -> Result<KeyChange, KeyChangeError> {
        const Q_REVOKE: &str =
            "UPDATE reviewer_keys SET active = FALSE, revoked_at = $2 WHERE id = $1";
        // On PostgreSQL this waits for writers that hold these sets `FOR SHARE`, and writers
        // that come later see `revoked_at` (`WriteTx::revoked_key_sets`).
        const Q_REVOKE_SETS: &str = "UPDATE key_sets SET revoked_at = $2, retired_at = COALESCE(retired_at, $2) \
             WHERE revoked_at IS NULL \
             AND id IN (SELECT key_set_id FROM key_set_members WHERE key_id = $1)";
        retrying(move || async move {
            let mut tx = self.write(Lock::KeyChange).await?;
            let keys = tx.keys().await?;
            let key = find_key(&keys, wanted)?.clone();
            if key.status() == KeyStatus::Revoked {
                return Err(KeyChangeError::Refused(format!(
                    "{} is already revoked",
                    key.label
                )));
            }
            on_backend!(tx.conn(), c => {
                sqlx::query(Q_REVOKE).bind(key.id).bind(now).execute(&mut *c).await?;
                sqlx::query(Q_REVOKE_SETS).bind(key.id).bind(now).execute(c).await?;
            });
            let audit = Audit {
                at: now,
                actor,
                action: AuditAction::KeyRevoke,
                subject: &key.fingerprint,
                detail: serde_json::json!({
                    "id": key.id, "label": key.label, "was": key.status().as_str(),
                }),
            };
            let change = tx.record_key_change(key.id, audit).await?;
            tx.commit().await?;
            Ok(change)
        })
        .await
    }

    /// Every key set that has items or is current, with what is sealed to it.
    pub async fn key_set_status(&self) -> Result<Vec<KeySetStatus>> {
        const Q_SETS: &str = "SELECT s.id, s.fingerprint, s.retired_at, s.revoked_at, \
             (SELECT COUNT(*) FROM items i WHERE i.key_set_id = s.id AND i.tip_id IS NOT NULL), \
             (SELECT COUNT(DISTINCT i.tip_id) FROM items i WHERE i.key_set_id = s.id AND i.tip_id IS NOT NULL) \
             FROM key_sets s ORDER BY s.id";
        const Q_MEMBERS: &str =
            "SELECT key_set_id, key_id FROM key_set_members ORDER BY key_set_id, key_id";
        let current = self.keyring_version().await?.key_set_id;
        type SetRow = (i64, String, Option<i64>, Option<i64>, i64, i64);
        let sets: Vec<SetRow> =
            on_backend!(&self.pool, p => sqlx::query_as(Q_SETS).fetch_all(p).await?);
        let members: Vec<(i64, i64)> =
            on_backend!(&self.pool, p => sqlx::query_as(Q_MEMBERS).fetch_all(p).await?);
        Ok(sets
            .into_iter()
            .filter(|s| s.4 > 0 || Some(s.0) == current)
            .map(
                |(id, fingerprint, retired_at, revoked_at, items, tips)| KeySetStatus {
                    current: Some(id) == current,
                    keys: members
                        .iter()
                        .filter(|(set, _)| *set == id)
                        .map(|(_, key)| *key)
                        .collect(),
                    id,
                    fingerprint,
                    retired_at,
                    revoked_at,
                    items,
                    tips,
                },
            )
            .collect())
    }

    /// Every key set with what is sealed to it, what still needs re-keying, and the tips each
    /// revoked key can still open.
    pub async fn keyring_status(&self) -> Result<KeyringStatus> {
        let keyring = self.keyring_version().await?;
        let key_sets = self.key_set_status().await?;
        let keys = self.list_keys().await?;
        let mut needs_rekey = NeedsRekey::default();
        for set in &key_sets {
            let bucket = if set.revoked_at.is_some() {
                &mut needs_rekey.revoked
            } else if set.retired_at.is_some() {
                &mut needs_rekey.retired
            } else {
                continue;
            };
            bucket.items += set.items;
            bucket.tips += set.tips;
        }
        let mut revoked_keys = Vec::new();
        for key in keys.iter().filter(|k| k.revoked_at.is_some()) {
            revoked_keys.push(RevokedKeyExposure {
                id: key.id,
                label: key.label.clone(),
                fingerprint: key.fingerprint.clone(),
                revoked_at: key.revoked_at,
                tips_still_open: self.tips_open_to_key(key.id).await?,
            });
        }
        let active_keys = keys.iter().filter(|k| k.active).count();
        Ok(KeyringStatus {
            keyring_version: keyring.version,
            current_key_set: keyring.key_set_id,
            active_keys,
            key_sets,
            needs_rekey,
            revoked_keys,
            warnings: crate::keyring::policy_warnings(active_keys),
        })
    }

    /// The tips with an item that `key_id` can still open (sealed to a set it belongs to).
    pub async fn tips_open_to_key(&self, key_id: i64) -> Result<Vec<String>> {
        const Q: &str = "SELECT DISTINCT i.tip_id FROM items i \
             JOIN key_set_members m ON m.key_set_id = i.key_set_id \
             WHERE m.key_id = $1 AND i.tip_id IS NOT NULL ORDER BY i.tip_id";
        Ok(on_backend!(&self.pool, p => sqlx::query_scalar(Q).bind(key_id).fetch_all(p).await?))
    }
}

impl WriteTx {
    /// Ends a key change to key `key_id` (the caller commits): makes the keyring name the set
    /// of the active keys, appends `audit` with the resulting key set and keyring version added
    /// to its detail, and tells what the change did.
    async fn record_key_change(&mut self, key_id: i64, mut audit: Audit<'_>) -> Result<KeyChange> {
        let keyring = self.sync_keyring(audit.at).await?;
        if let Some(detail) = audit.detail.as_object_mut() {
            detail.insert("key_set".into(), keyring.key_set_id.into());
            detail.insert("keyring_version".into(), keyring.version.into());
        }
        let keys = self.keys().await?;
        self.append_audit(&audit).await?;
        let active_keys = keys.iter().filter(|k| k.active).count();
        let key = keys
            .into_iter()
            .find(|k| k.id == key_id)
            .ok_or_else(|| StoreError::Setup("the changed key vanished".into()))?;
        Ok(KeyChange {
            key,
            keyring,
            active_keys,
        })
    }

    /// Every key, oldest first, as this transaction sees them.
    async fn keys(&mut self) -> Result<Vec<ReviewerKey>> {
        let rows: Vec<KeyRow> =
            on_backend!(self.conn(), c => sqlx::query_as(Q_ALL_KEYS).fetch_all(c).await?);
        rows.into_iter().map(key_from_row).collect()
    }

    /// Makes the keyring row name the set of the active keys (creating that set on first use)
    /// and increments its version if the set changed. Only in a `Lock::KeyChange` transaction.
    async fn sync_keyring(&mut self, now: i64) -> Result<KeyringVersion> {
        const Q_KEYRING: &str = "SELECT version, key_set_id FROM keyring WHERE id = 1";
        const Q_ACTIVE: &str =
            "SELECT id, fingerprint FROM reviewer_keys WHERE active = TRUE ORDER BY id";
        const Q_FIND_SET: &str = "SELECT id FROM key_sets WHERE fingerprint = $1";
        const Q_ADD_SET: &str =
            "INSERT INTO key_sets (fingerprint, created_at) VALUES ($1, $2) RETURNING id";
        const Q_ADD_MEMBER: &str = "INSERT INTO key_set_members (key_set_id, key_id) VALUES ($1, $2) \
             ON CONFLICT (key_set_id, key_id) DO NOTHING";
        const Q_UPDATE: &str = "UPDATE keyring SET version = version + 1, key_set_id = $1, changed_at = $2 \
             WHERE id = 1";
        let (version, current): (i64, Option<i64>) =
            on_backend!(self.conn(), c => sqlx::query_as(Q_KEYRING).fetch_one(c).await?);
        let active: Vec<(i64, String)> =
            on_backend!(self.conn(), c => sqlx::query_as(Q_ACTIVE).fetch_all(c).await?);
        let wanted = if active.is_empty() {
            None
        } else {
            let fingerprints: Vec<String> = active.iter().map(|(_, f)| f.clone()).collect();
            let fingerprint = key_set_fingerprint(&fingerprints);
            Some(on_backend!(self.conn(), c => {
                // Looked up first (the keyring lock is held), so that set numbers are not used
                // up by inserts that find the set already there.
                let found: Option<i64> = sqlx::query_scalar(Q_FIND_SET)
                    .bind(&fingerprint)
                    .fetch_optional(&mut *c)
                    .await?;
                let id: i64 = match found {
                    Some(id) => id,
                    None => {
                        sqlx::query_scalar(Q_ADD_SET)
                            .bind(&fingerprint)
                            .bind(now)
                            .fetch_one(&mut *c)
                            .await?
                    }
                };
                for (key_id, _) in &active {
                    sqlx::query(Q_ADD_MEMBER).bind(id).bind(*key_id).execute(&mut *c).await?;
                }
                id
            }))
        };
        if wanted == current && version > 0 {
            return Ok(KeyringVersion {
                version,
                key_set_id: current,
            });
        }
        on_backend!(self.conn(), c => sqlx::query(Q_UPDATE)
            .bind(wanted)
            .bind(now)
            .execute(c)
            .await?
            .rows_affected());
        Ok(KeyringVersion {
            version: version + 1,
            key_set_id: wanted,
        })
    }
}
