//! Queries for re-keying: which committed items are sealed to a key set with a retired or
//! revoked key, and swapping in a re-keyed header or a fresh encryption. Each swap is one
//! transaction with its audit entry, onto the key set that is current at that moment, and
//! only if the item is still what the analyst's client re-keyed. A swap marks the item as
//! re-keyed (who, when) and never touches its commitment (`crate::commitment`): readers check
//! the new ciphertext's plaintext against the commitment made at intake.

use sha2::{Digest, Sha256};

use super::write::{Lock, LostARace, WriteTx, retrying};
use super::{Result, Store, StoreError, on_backend};
use crate::audit::{Audit, AuditAction};
use crate::rekey::{Header, NONCE_BYTES, RekeyError, check_file_start, check_new_header};

/// What re-keying an item takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RekeyMode {
    /// Sealed to a set with a retired key (none revoked): a new header; the payload stays.
    Header,
    /// Sealed to a set with a revoked key: a fresh encryption (new file key, new payload).
    Payload,
}

impl RekeyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RekeyMode::Header => "header",
            RekeyMode::Payload => "payload",
        }
    }
}

/// A committed item that needs re-keying.
#[derive(Debug, Clone)]
pub struct ItemToRekey {
    pub id: String,
    pub tip_id: String,
    pub kind: String,
    pub size: i64,
    pub key_set_id: i64,
    pub mode: RekeyMode,
    /// For `Header` mode: the item's current header, which the client re-wraps. `None` if the
    /// stored item does not start with a header tipbox can parse (it is damaged).
    pub header: Option<Vec<u8>>,
}

/// An item about to be re-keyed, as stored.
#[derive(Debug, Clone)]
pub struct RekeyTarget {
    pub tip_id: String,
    pub key_set_id: i64,
    pub mode: RekeyMode,
    pub size: i64,
    pub header_len: usize,
    pub nonce: [u8; NONCE_BYTES],
}

impl RekeyTarget {
    /// The bytes after the header: the nonce and the encrypted content.
    pub fn payload_len(&self) -> i64 {
        self.size - self.header_len as i64
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RekeyRefusal {
    #[error("no such item")]
    NoSuchItem,
    #[error("this item is not sealed to a retired or revoked key: it needs no re-keying")]
    NotNeeded,
    #[error(
        "this item is sealed to a revoked key, whose holder may keep its old header: a new header \
         would not protect it; upload a fresh encryption (PUT /api/v1/items/{{id}}/sealed)"
    )]
    NeedsFreshEncryption,
    #[error(
        "this item's keys were retired, not revoked: only its header may change, and the uploaded \
         payload differs from the stored one"
    )]
    PayloadChanged,
    #[error(
        "this item is sealed to a revoked key: its payload must be encrypted afresh (a new file \
         key and nonce), not kept"
    )]
    PayloadNotFresh,
    #[error("the item changed since it was fetched (re-keyed by someone else?); fetch it again")]
    Changed,
    #[error(
        "the keyring changed (the current key set is now {0:?}): fetch the current keys and re-key again"
    )]
    KeyringChanged(Option<i64>),
    #[error(
        "the new payload is {got} bytes and the stored one {expected}: a new encryption of the same \
         content has the same length"
    )]
    WrongLength { got: i64, expected: i64 },
    #[error("{0}")]
    Invalid(#[from] RekeyError),
    #[error("the stored item is damaged: {0}")]
    Damaged(RekeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for RekeyRefusal {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(error.into())
    }
}

impl LostARace for RekeyRefusal {
    fn lost_a_race(&self) -> bool {
        matches!(self, RekeyRefusal::Store(e) if e.lost_a_race())
    }
}

/// What a swap did.
#[derive(Debug, Clone, Copy)]
pub struct Rekeyed {
    pub from_key_set: i64,
    pub to_key_set: i64,
    pub mode: RekeyMode,
}

impl Rekeyed {
    /// The swap's audit entry.
    fn audit<'a>(self, actor: &'a str, item_id: &'a str, tip_id: &str, now: i64) -> Audit<'a> {
        Audit {
            at: now,
            actor,
            action: AuditAction::ItemRekey,
            subject: item_id,
            detail: serde_json::json!({
                "tip": tip_id, "mode": self.mode.as_str(),
                "from_key_set": self.from_key_set, "to_key_set": self.to_key_set,
            }),
        }
    }
}

/// The start of an item's first chunk that always holds its header and nonce (a header is at
/// most `rekey::MAX_HEADER_BYTES`, 65536; a literal so that both databases take it as an
/// integer). See the test below.
const Q_HEAD: &str =
    "SELECT substr(data, 1, 65552) FROM item_chunks WHERE item_id = $1 AND seq = 0";

impl Store {
    /// Committed items sealed to a key set with a retired or revoked key, in id order, after
    /// `after` (a cursor: the last id of the previous page).
    pub async fn items_to_rekey(&self, after: &str, limit: i64) -> Result<Vec<ItemToRekey>> {
        const Q: &str = "SELECT i.id, i.tip_id, i.kind, i.size, i.key_set_id, s.revoked_at \
             FROM items i JOIN key_sets s ON s.id = i.key_set_id \
             WHERE s.retired_at IS NOT NULL AND i.tip_id IS NOT NULL AND i.id > $1 \
             ORDER BY i.id LIMIT $2";
        let rows: Vec<(String, String, String, i64, i64, Option<i64>)> = on_backend!(&self.pool, p => sqlx::query_as(Q).bind(after).bind(limit).fetch_all(p).await?);
        let mut items = Vec::with_capacity(rows.len());
        for (id, tip_id, kind, size, key_set_id, revoked_at) in rows {
            let mode = if revoked_at.is_some() {
                RekeyMode::Payload
            } else {
                RekeyMode::Header
            };
            let header = match mode {
                RekeyMode::Payload => None,
                RekeyMode::Header => {
                    let head: Option<Vec<u8>> = on_backend!(&self.pool, p => sqlx::query_scalar(Q_HEAD).bind(&id).fetch_optional(p).await?);
                    match head.as_deref().map(Header::parse) {
                        Some(Ok(header)) => Some(header.as_bytes().to_vec()),
                        Some(Err(error)) => {
                            tracing::error!(item = %id, %error, "a stored item does not start with an age header");
                            None
                        }
                        None => None,
                    }
                }
            };
            items.push(ItemToRekey {
                id,
                tip_id,
                kind,
                size,
                key_set_id,
                mode,
                header,
            });
        }
        Ok(items)
    }

    /// The item as it is stored now, if it needs re-keying.
    pub async fn rekey_target(&self, item_id: &str) -> Result<RekeyTarget, RekeyRefusal> {
        const Q: &str = "SELECT i.tip_id, i.key_set_id, i.size, s.retired_at, s.revoked_at \
             FROM items i JOIN key_sets s ON s.id = i.key_set_id \
             WHERE i.id = $1 AND i.tip_id IS NOT NULL";
        type TargetRow = (String, i64, i64, Option<i64>, Option<i64>);
        let row: Option<TargetRow> =
            on_backend!(&self.pool, p => sqlx::query_as(Q).bind(item_id).fetch_optional(p).await?);
        let Some((tip_id, key_set_id, size, retired_at, revoked_at)) = row else {
            return Err(RekeyRefusal::NoSuchItem);
        };
        if retired_at.is_none() {
            return Err(RekeyRefusal::NotNeeded);
        }
        let head: Option<Vec<u8>> = on_backend!(&self.pool, p => sqlx::query_scalar(Q_HEAD).bind(item_id).fetch_optional(p).await?);
        let head = head.unwrap_or_default();
        let header = Header::parse(&head).map_err(RekeyRefusal::Damaged)?;
        let nonce: [u8; NONCE_BYTES] = head
            .get(header.len()..header.len() + NONCE_BYTES)
            .and_then(|n| n.try_into().ok())
            .ok_or(RekeyRefusal::Damaged(RekeyError::Malformed))?;
        Ok(RekeyTarget {
            tip_id,
            key_set_id,
            mode: if revoked_at.is_some() {
                RekeyMode::Payload
            } else {
                RekeyMode::Header
            },
            size,
            header_len: header.len(),
            nonce,
        })
    }

    /// Replaces the header of an item sealed to a set with a retired key by `new_header`, a
    /// re-wrap of the same file key to the current set `to_key_set`. `replaces` is the digest
    /// of the header the client re-wrapped (`rekey::Header::digest`): if the stored header is
    /// another one, nothing changes. The payload is never sent, so it stays byte for byte.
    /// `now` dates the audit entry, `replaced_at` (rounded) the item's re-key mark.
    #[allow(clippy::too_many_arguments)]
    pub async fn replace_header(
        &self,
        item_id: &str,
        from_key_set: i64,
        replaces: &str,
        new_header: &[u8],
        to_key_set: i64,
        actor: &str,
        now: i64,
        replaced_at: i64,
    ) -> Result<Rekeyed, RekeyRefusal> {
        let target = self.rekey_target(item_id).await?;
        if target.mode == RekeyMode::Payload {
            return Err(RekeyRefusal::NeedsFreshEncryption);
        }
        if target.key_set_id != from_key_set {
            return Err(RekeyRefusal::Changed);
        }
        let new = check_new_header(new_header, &target.nonce)?;
        const Q_CHUNK: &str = "SELECT data FROM item_chunks WHERE item_id = $1 AND seq = 0";
        const Q_SWAP: &str = "UPDATE item_chunks SET data = $2 WHERE item_id = $1 AND seq = 0";
        const Q_SIZE: &str = "UPDATE items SET size = size + $2 WHERE id = $1";
        let swap = Rekeyed {
            from_key_set,
            to_key_set,
            mode: RekeyMode::Header,
        };
        let audit = &swap.audit(actor, item_id, &target.tip_id, now);
        let new = &new;
        retrying(move || async move {
            let mut tx = self.write(Lock::KeySwap).await?;
            tx.claim_item(item_id, swap, actor, replaced_at).await?;
            let chunk: Vec<u8> = on_backend!(tx.conn(), c => sqlx::query_scalar(Q_CHUNK)
                .bind(item_id)
                .fetch_one(c)
                .await?);
            let old = Header::parse(&chunk).map_err(RekeyRefusal::Damaged)?;
            if old.digest() != replaces {
                return Err(RekeyRefusal::Changed);
            }
            let mut data = Vec::with_capacity(chunk.len() - old.len() + new.len());
            data.extend_from_slice(new.as_bytes());
            data.extend_from_slice(&chunk[old.len()..]);
            let grown = new.len() as i64 - old.len() as i64;
            on_backend!(tx.conn(), c => {
                sqlx::query(Q_SWAP).bind(item_id).bind(&data).execute(&mut *c).await?;
                sqlx::query(Q_SIZE).bind(item_id).bind(grown).execute(c).await?;
            });
            tx.append_audit(audit).await?;
            tx.commit().await?;
            Ok(swap)
        })
        .await
    }

    /// Replaces an item by the complete age file staged as `staged_id` (`staged_size` bytes),
    /// sealed to the current set `to_key_set`. For an item sealed to a revoked key, that must
    /// be a fresh encryption; for one whose keys were only retired, its payload must be the
    /// stored one, byte for byte. The old ciphertext is deleted in the same transaction. The
    /// caller deletes the staged item if this fails. The server cannot tell whether a fresh
    /// encryption holds the same plaintext (it holds neither key nor plaintext): readers do,
    /// against the item's commitment. `now` dates the audit entry, `replaced_at` (rounded) the
    /// item's re-key mark.
    #[allow(clippy::too_many_arguments)]
    pub async fn replace_sealed(
        &self,
        item_id: &str,
        target: &RekeyTarget,
        staged_id: &str,
        staged_size: i64,
        to_key_set: i64,
        actor: &str,
        now: i64,
        replaced_at: i64,
    ) -> Result<Rekeyed, RekeyRefusal> {
        let first = self
            .item_chunk(staged_id, 0)
            .await?
            .ok_or(RekeyRefusal::Invalid(RekeyError::Malformed))?;
        let new = check_file_start(&first)?;
        let got = staged_size - new.len() as i64;
        if got != target.payload_len() {
            return Err(RekeyRefusal::WrongLength {
                got,
                expected: target.payload_len(),
            });
        }
        match target.mode {
            RekeyMode::Payload => {
                // A fresh encryption has a fresh random nonce; the old one means the old payload
                // (whose file key the revoked key's holder may know).
                if first[new.len()..new.len() + NONCE_BYTES] == target.nonce {
                    return Err(RekeyRefusal::PayloadNotFresh);
                }
            }
            RekeyMode::Header => {
                let stored = self.payload_digest(item_id, target.header_len).await?;
                let uploaded = self.payload_digest(staged_id, new.len()).await?;
                if stored != uploaded {
                    return Err(RekeyRefusal::PayloadChanged);
                }
            }
        }
        const Q_SIZE: &str = "UPDATE items SET size = $2 WHERE id = $1";
        const Q_DROP_OLD: &str = "DELETE FROM item_chunks WHERE item_id = $1";
        const Q_MOVE_NEW: &str = "UPDATE item_chunks SET item_id = $1 WHERE item_id = $2";
        const Q_DROP_STAGED: &str = "DELETE FROM items WHERE id = $1 AND tip_id IS NULL";
        let swap = Rekeyed {
            from_key_set: target.key_set_id,
            to_key_set,
            mode: target.mode,
        };
        let audit = &swap.audit(actor, item_id, &target.tip_id, now);
        retrying(move || async move {
            let mut tx = self.write(Lock::KeySwap).await?;
            tx.claim_item(item_id, swap, actor, replaced_at).await?;
            on_backend!(tx.conn(), c => {
                sqlx::query(Q_SIZE).bind(item_id).bind(staged_size).execute(&mut *c).await?;
                sqlx::query(Q_DROP_OLD).bind(item_id).execute(&mut *c).await?;
                sqlx::query(Q_MOVE_NEW).bind(item_id).bind(staged_id).execute(&mut *c).await?;
                sqlx::query(Q_DROP_STAGED).bind(staged_id).execute(c).await?;
            });
            tx.append_audit(audit).await?;
            tx.commit().await?;
            Ok(swap)
        })
        .await
    }

    /// The length and SHA-256 of an item's bytes after its first `skip` bytes (its header),
    /// read one chunk at a time.
    async fn payload_digest(&self, item_id: &str, skip: usize) -> Result<(i64, [u8; 32])> {
        let mut hasher = Sha256::new();
        let (mut seq, mut skip, mut len) = (0i64, skip, 0i64);
        while let Some(chunk) = self.item_chunk(item_id, seq).await? {
            let from = skip.min(chunk.len());
            skip -= from;
            hasher.update(&chunk[from..]);
            len += (chunk.len() - from) as i64;
            seq += 1;
        }
        Ok((len, hasher.finalize().into()))
    }
}

impl WriteTx {
    /// In a swap: refuses unless its target set is the current key set and the set it comes from
    /// still calls for its mode; then moves the item over, marked as re-keyed by `actor` at
    /// `replaced_at` (refused if it is no longer sealed to the set it comes from).
    async fn claim_item(
        &mut self,
        item_id: &str,
        swap: Rekeyed,
        actor: &str,
        replaced_at: i64,
    ) -> Result<(), RekeyRefusal> {
        const Q_CURRENT: &str = "SELECT key_set_id FROM keyring WHERE id = 1";
        const Q_FROM: &str = "SELECT retired_at, revoked_at FROM key_sets WHERE id = $1";
        const Q_MOVE: &str = "UPDATE items SET key_set_id = $3, replaced_at = $4, replaced_by = $5 \
             WHERE id = $1 AND key_set_id = $2 AND tip_id IS NOT NULL";
        let current: Option<i64> =
            on_backend!(self.conn(), c => sqlx::query_scalar(Q_CURRENT).fetch_one(c).await?);
        let (from, to) = (swap.from_key_set, swap.to_key_set);
        if current != Some(to) {
            return Err(RekeyRefusal::KeyringChanged(current));
        }
        let (retired_at, revoked_at): (Option<i64>, Option<i64>) =
            on_backend!(self.conn(), c => sqlx::query_as(Q_FROM).bind(from).fetch_one(c).await?);
        match (retired_at, revoked_at, swap.mode) {
            (None, _, _) => return Err(RekeyRefusal::NotNeeded),
            (Some(_), Some(_), RekeyMode::Header) => {
                return Err(RekeyRefusal::NeedsFreshEncryption);
            }
            (Some(_), None, RekeyMode::Payload) => return Err(RekeyRefusal::Changed),
            _ => {}
        }
        let moved = on_backend!(self.conn(), c => sqlx::query(Q_MOVE)
            .bind(item_id)
            .bind(from)
            .bind(to)
            .bind(replaced_at)
            .bind(actor)
            .execute(c)
            .await?
            .rows_affected());
        if moved != 1 {
            return Err(RekeyRefusal::Changed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_head_query_covers_the_largest_header_and_its_nonce() {
        let limit = crate::rekey::MAX_HEADER_BYTES + crate::rekey::NONCE_BYTES;
        assert!(super::Q_HEAD.contains(&format!(", 1, {limit})")));
    }
}
