//! The API's answers made from what the store, the keyring and the audit trail hand the
//! server: reshaping only, no queries and no decisions.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{
    AuditEntry, BulkAction, BulkChanged, ChainStatus, CurrentKeySet, CurrentKeys, Exposure,
    IntakeState, Item, Key, KeyChange, KeySetMember, KeySetStatus, KeyState, KeyringStatus,
    NeedsRekey, RekeyItem, RekeyMode, Rekeyed, Reply, RevokedKey, Role, Time, Tip,
};
use crate::keyring::{KeyStatus, ReviewerKey, policy_warnings};
use crate::store;

fn warnings(active_keys: usize) -> Vec<String> {
    policy_warnings(active_keys)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// A tip as the queue lists it (without its replies: `GET /api/v1/tips/{id}` adds them).
impl From<&store::TipSummary> for Tip {
    fn from(tip: &store::TipSummary) -> Self {
        Self {
            assignee: tip.assignee.clone(),
            id: tip.id.clone(),
            items: tip.items.iter().map(Item::from).collect(),
            key_set: tip.key_set,
            labels: tip.labels.clone(),
            received_at: Time(tip.received_at),
            reply_recipient: None,
            replies: None,
            source_activity_at: tip.source_activity_at().map(Time),
            status: tip.status.clone(),
        }
    }
}

impl From<&store::ItemSummary> for Item {
    fn from(item: &store::ItemSummary) -> Self {
        Self {
            added_at: item.added_at.map(Time),
            commitment: item.commitment.as_ref().map(hex::encode),
            id: item.id.clone(),
            key_set: item.key_set,
            kind: item.kind.clone(),
            replaced_at: item.replaced.as_ref().map(|r| Time(r.at)),
            replaced_by: item.replaced.as_ref().map(|r| r.by.clone()),
            size: item.size,
        }
    }
}

impl From<BulkAction> for store::BulkAction {
    fn from(action: BulkAction) -> Self {
        match action {
            BulkAction::Spam => store::BulkAction::Spam,
            BulkAction::Close => store::BulkAction::Close,
            BulkAction::Delete => store::BulkAction::Delete,
        }
    }
}

impl BulkChanged {
    /// The answer to the bulk change `action`, which came out as `outcome`.
    pub fn new(action: BulkAction, outcome: store::BulkOutcome) -> Self {
        Self {
            action,
            changed: outcome.changed.len(),
            missing: outcome.missing,
            unchanged: outcome.unchanged,
        }
    }
}

impl From<&store::ReplyStatus> for Reply {
    fn from(reply: &store::ReplyStatus) -> Self {
        Self {
            created_at: Time(reply.created_at),
            deleted_by_source_at: reply.deleted_at.map(Time),
            id: reply.id.clone(),
            read_at: reply.read_at.map(Time),
        }
    }
}

impl From<crate::auth::Role> for Role {
    fn from(role: crate::auth::Role) -> Self {
        match role {
            crate::auth::Role::Admin => Role::Admin,
            crate::auth::Role::Analyst => Role::Analyst,
        }
    }
}

impl From<&crate::intake::KeyState> for IntakeState {
    fn from(state: &crate::intake::KeyState) -> Self {
        match state {
            crate::intake::KeyState::Ready(_) => IntakeState::Accepting,
            crate::intake::KeyState::NoKeys => IntakeState::NoActiveKey,
            crate::intake::KeyState::Unusable(_) => IntakeState::KeysUnusable,
        }
    }
}

impl From<KeyStatus> for KeyState {
    fn from(status: KeyStatus) -> Self {
        match status {
            KeyStatus::Active => KeyState::Active,
            KeyStatus::Retired => KeyState::Retired,
            KeyStatus::Revoked => KeyState::Revoked,
        }
    }
}

impl From<&ReviewerKey> for Key {
    fn from(key: &ReviewerKey) -> Self {
        Self {
            added_at: key.added_at,
            fingerprint: key.fingerprint.clone(),
            id: key.id,
            kind: key.recipient.kind.as_db(),
            label: key.label.clone(),
            owner: key.owner.clone(),
            recipient: key.recipient.text.clone(),
            retired_at: key.retired_at,
            revoked_at: key.revoked_at,
            state: key.status().into(),
        }
    }
}

/// The answer to adding or retiring a key (a revocation also sets `tips_still_open`).
impl From<&store::KeyChange> for KeyChange {
    fn from(change: &store::KeyChange) -> Self {
        Self {
            active_keys: change.active_keys,
            current_key_set: change.keyring.key_set_id,
            key: Key::from(&change.key),
            keyring_version: change.keyring.version,
            tips_still_open: None,
            warnings: warnings(change.active_keys),
        }
    }
}

impl From<&store::KeyringStatus> for KeyringStatus {
    fn from(status: &store::KeyringStatus) -> Self {
        Self {
            keyring_version: status.keyring_version,
            current_key_set: status.current_key_set,
            active_keys: status.active_keys,
            key_sets: status.key_sets.iter().map(KeySetStatus::from).collect(),
            needs_rekey: NeedsRekey {
                retired: Exposure::from(status.needs_rekey.retired),
                revoked: Exposure::from(status.needs_rekey.revoked),
            },
            revoked_keys: status.revoked_keys.iter().map(RevokedKey::from).collect(),
            warnings: status.warnings.iter().map(|w| (*w).to_owned()).collect(),
        }
    }
}

impl From<&store::KeySetStatus> for KeySetStatus {
    fn from(set: &store::KeySetStatus) -> Self {
        Self {
            id: set.id,
            fingerprint: set.fingerprint.clone(),
            current: set.current,
            retired_at: set.retired_at,
            revoked_at: set.revoked_at,
            keys: set.keys.clone(),
            items: set.items,
            tips: set.tips,
        }
    }
}

impl From<store::Exposure> for Exposure {
    fn from(exposure: store::Exposure) -> Self {
        Self {
            items: exposure.items,
            tips: exposure.tips,
        }
    }
}

impl From<&store::RevokedKeyExposure> for RevokedKey {
    fn from(key: &store::RevokedKeyExposure) -> Self {
        Self {
            id: key.id,
            label: key.label.clone(),
            fingerprint: key.fingerprint.clone(),
            revoked_at: key.revoked_at,
            tips_still_open: key.tips_still_open.clone(),
        }
    }
}

impl From<&store::KeyringSnapshot> for CurrentKeys {
    fn from(snapshot: &store::KeyringSnapshot) -> Self {
        Self {
            key_set: CurrentKeySet::of(snapshot),
            keyring_version: snapshot.version,
        }
    }
}

impl CurrentKeySet {
    /// The snapshot's current key set, if any key is active.
    pub fn of(snapshot: &store::KeyringSnapshot) -> Option<Self> {
        snapshot
            .key_set
            .as_ref()
            .map(|(id, fingerprint, keys)| Self {
                fingerprint: fingerprint.clone(),
                id: *id,
                keys: keys.iter().map(KeySetMember::from).collect(),
            })
    }
}

impl From<&ReviewerKey> for KeySetMember {
    fn from(key: &ReviewerKey) -> Self {
        Self {
            fingerprint: key.fingerprint.clone(),
            id: key.id,
            kind: key.recipient.kind.as_db(),
            label: key.label.clone(),
            recipient: key.recipient.text.clone(),
        }
    }
}

impl From<&store::ItemToRekey> for RekeyItem {
    fn from(item: &store::ItemToRekey) -> Self {
        Self {
            header: item.header.as_ref().map(|h| BASE64.encode(h)),
            id: item.id.clone(),
            key_set: item.key_set_id,
            kind: item.kind.clone(),
            mode: item.mode.into(),
            size: item.size,
            tip: item.tip_id.clone(),
        }
    }
}

impl From<store::RekeyMode> for RekeyMode {
    fn from(mode: store::RekeyMode) -> Self {
        match mode {
            store::RekeyMode::Header => RekeyMode::Header,
            store::RekeyMode::Payload => RekeyMode::Payload,
        }
    }
}

impl Rekeyed {
    /// The answer for the item `id` after the swap the store reports.
    pub fn new(id: &str, rekeyed: &store::Rekeyed) -> Self {
        Self {
            from_key_set: rekeyed.from_key_set,
            id: id.to_owned(),
            key_set: rekeyed.to_key_set,
            mode: rekeyed.mode.into(),
        }
    }
}

impl From<&crate::audit::AuditEntry> for AuditEntry {
    fn from(entry: &crate::audit::AuditEntry) -> Self {
        Self {
            action: entry.action.clone(),
            actor: entry.actor.clone(),
            at: entry.at,
            detail: entry.detail.clone(),
            hash: entry.hash.clone(),
            prev_hash: entry.prev_hash.clone(),
            seq: entry.seq,
            subject: entry.subject.clone(),
        }
    }
}

impl From<&crate::audit::ChainStatus> for ChainStatus {
    fn from(status: &crate::audit::ChainStatus) -> Self {
        match status {
            crate::audit::ChainStatus::Intact { .. } => Self {
                broken_at: None,
                intact: true,
                why: None,
            },
            crate::audit::ChainStatus::Broken { seq, why } => Self {
                broken_at: Some(*seq),
                intact: false,
                why: Some(why.clone()),
            },
        }
    }
}
