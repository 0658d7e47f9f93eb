//! Queries for the reviewer keyring: keys and their history, the keyring's version and the key
//! set every new item is sealed to, and key changes (add, retire, revoke), each committed in
//! one transaction together with its audit entry.
//!
//! Consistency across nodes: the `keyring` row holds the current key set and a version that
//! every key change increments in its own transaction. Key changes lock that row (PostgreSQL
//! `FOR UPDATE`; SQLite serializes writers), so two admins on two nodes cannot, say, both
//! retire "the other" key and leave none. Nodes read the row at the start of every submission.

use super::analysts::append_audit_in;
use super::{Pool, Result, Store, StoreError};
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

impl KeyChangeError {
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

/// The `SELECT` every key query starts with (a macro, so that queries stay `&'static str`).
macro_rules! select_keys {
    () => {
        "SELECT id, fingerprint, recipient, label, owner, active, added_at, retired_at, revoked_at \
         FROM reviewer_keys"
    };
}

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

/// Reads every key inside the transaction `$tx`.
macro_rules! keys_in {
    ($tx:ident) => {{
        let rows: Vec<KeyRow> = sqlx::query_as(concat!(select_keys!(), " ORDER BY id"))
            .fetch_all(&mut *$tx)
            .await?;
        rows.into_iter()
            .map(key_from_row)
            .collect::<Result<Vec<_>>>()?
    }};
}

/// Makes the keyring row name the set of the active keys (creating that set on first use) and
/// increments its version if the set changed; evaluates to the `KeyringVersion`. Runs inside
/// the transaction `$tx`, which must hold the keyring lock.
macro_rules! sync_keyring_in {
    ($tx:ident, $now:expr) => {{
        let (version, current): (i64, Option<i64>) =
            sqlx::query_as("SELECT version, key_set_id FROM keyring WHERE id = 1")
                .fetch_one(&mut *$tx)
                .await?;
        let active: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, fingerprint FROM reviewer_keys WHERE active = TRUE ORDER BY id",
        )
        .fetch_all(&mut *$tx)
        .await?;
        let wanted: Option<i64> = if active.is_empty() {
            None
        } else {
            let fingerprints: Vec<String> = active.iter().map(|(_, f)| f.clone()).collect();
            let fingerprint = key_set_fingerprint(&fingerprints);
            // Looked up first (the keyring lock is held), so that set numbers are not used up
            // by inserts that find the set already there.
            let found: Option<i64> =
                sqlx::query_scalar("SELECT id FROM key_sets WHERE fingerprint = $1")
                    .bind(&fingerprint)
                    .fetch_optional(&mut *$tx)
                    .await?;
            let id: i64 = match found {
                Some(id) => id,
                None => {
                    sqlx::query_scalar(
                        "INSERT INTO key_sets (fingerprint, created_at) VALUES ($1, $2) RETURNING id",
                    )
                    .bind(&fingerprint)
                    .bind($now)
                    .fetch_one(&mut *$tx)
                    .await?
                }
            };
            for (key_id, _) in &active {
                sqlx::query(
                    "INSERT INTO key_set_members (key_set_id, key_id) VALUES ($1, $2) \
                     ON CONFLICT (key_set_id, key_id) DO NOTHING",
                )
                .bind(id)
                .bind(*key_id)
                .execute(&mut *$tx)
                .await?;
            }
            Some(id)
        };
        if wanted != current || version == 0 {
            sqlx::query(
                "UPDATE keyring SET version = version + 1, key_set_id = $1, changed_at = $2 WHERE id = 1",
            )
            .bind(wanted)
            .bind($now)
            .execute(&mut *$tx)
            .await?;
            KeyringVersion {
                version: version + 1,
                key_set_id: wanted,
            }
        } else {
            KeyringVersion {
                version,
                key_set_id: current,
            }
        }
    }};
}

impl Store {
    /// The keyring's version and current key set: one primary-key lookup, cheap enough to run
    /// at the start of every submission.
    pub async fn keyring_version(&self) -> Result<KeyringVersion> {
        const Q: &str = "SELECT version, key_set_id FROM keyring WHERE id = 1";
        let (version, key_set_id): (i64, Option<i64>) =
            on_pool!(self, p => sqlx::query_as(Q).fetch_one(p).await?);
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

    /// A key set's fingerprint and keys.
    pub async fn key_set(&self, set_id: i64) -> Result<(String, Vec<ReviewerKey>)> {
        const Q_SET: &str = "SELECT fingerprint FROM key_sets WHERE id = $1";
        let fingerprint: String =
            on_pool!(self, p => sqlx::query_scalar(Q_SET).bind(set_id).fetch_one(p).await?);
        const Q_KEYS: &str = concat!(
            select_keys!(),
            " WHERE id IN (SELECT key_id FROM key_set_members WHERE key_set_id = $1) ORDER BY id"
        );
        let rows: Vec<KeyRow> =
            on_pool!(self, p => sqlx::query_as(Q_KEYS).bind(set_id).fetch_all(p).await?);
        let keys = rows
            .into_iter()
            .map(key_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok((fingerprint, keys))
    }

    /// Brings the keyring row up to date with the active keys (a database written by an
    /// earlier release has version 0). Run when tipbox opens the database; a no-op otherwise.
    pub async fn sync_keyring(&self, now: i64) -> Result<KeyringVersion> {
        let result: Result<KeyringVersion, KeyChangeError> = with_retries!(
            async {
                super::write_tx!(self, "SELECT version FROM keyring WHERE id = 1 FOR UPDATE", tx => {
                    let keyring = sync_keyring_in!(tx, now);
                    tx.commit().await?;
                    Ok::<_, KeyChangeError>(keyring)
                })
            }
            .await
        );
        result.map_err(|e| match e {
            KeyChangeError::Store(e) => e,
            other => StoreError::Setup(other.to_string()),
        })
    }

    /// Every key, active or not, oldest first.
    pub async fn list_keys(&self) -> Result<Vec<ReviewerKey>> {
        const Q: &str = concat!(select_keys!(), " ORDER BY id");
        let rows: Vec<KeyRow> = on_pool!(self, p => sqlx::query_as(Q).fetch_all(p).await?);
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
        let audit_key = self.audit_key()?;
        let fingerprint = recipient.fingerprint();
        let kind = recipient.kind.as_db();
        with_retries!(async {
            super::write_tx!(self, "SELECT version FROM keyring WHERE id = 1 FOR UPDATE", tx => {
                let existing: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM reviewer_keys WHERE fingerprint = $1")
                        .bind(&fingerprint)
                        .fetch_optional(&mut *tx)
                        .await?;
                if let Some(id) = existing {
                    return Err(KeyChangeError::Duplicate(id));
                }
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO reviewer_keys (fingerprint, recipient, kind, label, owner, active, added_at) \
                     VALUES ($1, $2, $3, $4, $5, TRUE, $6) RETURNING id",
                )
                .bind(&fingerprint)
                .bind(&recipient.text)
                .bind(&kind)
                .bind(label)
                .bind(owner)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                let keyring = sync_keyring_in!(tx, now);
                let keys = keys_in!(tx);
                let detail = serde_json::json!({
                    "id": id, "label": label, "owner": owner, "kind": kind,
                    "key_set": keyring.key_set_id, "keyring_version": keyring.version,
                })
                .to_string();
                append_audit_in!(tx, &audit_key, actor, "key.add", &fingerprint, &detail, now);
                tx.commit().await?;
                finish(keys, id, keyring)
            })
        }
        .await)
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
        let audit_key = self.audit_key()?;
        with_retries!(async {
            super::write_tx!(self, "SELECT version FROM keyring WHERE id = 1 FOR UPDATE", tx => {
                let keys = keys_in!(tx);
                let key = find_key(&keys, wanted)?.clone();
                match key.status() {
                    KeyStatus::Active => {}
                    KeyStatus::Retired => {
                        return Err(KeyChangeError::Refused(format!("{} is already retired", key.label)));
                    }
                    KeyStatus::Revoked => {
                        return Err(KeyChangeError::Refused(format!("{} is revoked, which is more than retired", key.label)));
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
                sqlx::query("UPDATE reviewer_keys SET active = FALSE, retired_at = $2 WHERE id = $1")
                    .bind(key.id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "UPDATE key_sets SET retired_at = $2 WHERE retired_at IS NULL \
                     AND id IN (SELECT key_set_id FROM key_set_members WHERE key_id = $1)",
                )
                .bind(key.id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let keyring = sync_keyring_in!(tx, now);
                let keys = keys_in!(tx);
                let detail = serde_json::json!({
                    "id": key.id, "label": key.label,
                    "key_set": keyring.key_set_id, "keyring_version": keyring.version,
                })
                .to_string();
                append_audit_in!(tx, &audit_key, actor, "key.retire", &key.fingerprint, &detail, now);
                tx.commit().await?;
                finish(keys, key.id, keyring)
            })
        }
        .await)
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
        let audit_key = self.audit_key()?;
        with_retries!(async {
            super::write_tx!(self, "SELECT version FROM keyring WHERE id = 1 FOR UPDATE", tx => {
                let keys = keys_in!(tx);
                let key = find_key(&keys, wanted)?.clone();
                if key.status() == KeyStatus::Revoked {
                    return Err(KeyChangeError::Refused(format!("{} is already revoked", key.label)));
                }
                sqlx::query("UPDATE reviewer_keys SET active = FALSE, revoked_at = $2 WHERE id = $1")
                    .bind(key.id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                // On PostgreSQL this waits for commits that hold these sets `FOR SHARE`, and
                // commits that come later see `revoked_at` (see store/commit.rs).
                sqlx::query(
                    "UPDATE key_sets SET revoked_at = $2, retired_at = COALESCE(retired_at, $2) \
                     WHERE revoked_at IS NULL \
                     AND id IN (SELECT key_set_id FROM key_set_members WHERE key_id = $1)",
                )
                .bind(key.id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let keyring = sync_keyring_in!(tx, now);
                let keys = keys_in!(tx);
                let detail = serde_json::json!({
                    "id": key.id, "label": key.label, "was": key.status().as_str(),
                    "key_set": keyring.key_set_id, "keyring_version": keyring.version,
                })
                .to_string();
                append_audit_in!(tx, &audit_key, actor, "key.revoke", &key.fingerprint, &detail, now);
                tx.commit().await?;
                finish(keys, key.id, keyring)
            })
        }
        .await)
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
        let sets: Vec<SetRow> = on_pool!(self, p => sqlx::query_as(Q_SETS).fetch_all(p).await?);
        let members: Vec<(i64, i64)> =
            on_pool!(self, p => sqlx::query_as(Q_MEMBERS).fetch_all(p).await?);
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
        Ok(on_pool!(self, p => sqlx::query_scalar(Q).bind(key_id).fetch_all(p).await?))
    }
}

fn finish(
    keys: Vec<ReviewerKey>,
    id: i64,
    keyring: KeyringVersion,
) -> Result<KeyChange, KeyChangeError> {
    let active_keys = keys.iter().filter(|k| k.active).count();
    let key = keys
        .into_iter()
        .find(|k| k.id == id)
        .ok_or_else(|| StoreError::Setup("the changed key vanished".into()))?;
    Ok(KeyChange {
        key,
        keyring,
        active_keys,
    })
}
