//! The reviewer keyring, for admins: `/api/v1/keys…`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema::{key_label_pattern, key_owner_pattern};

/// `GET /api/v1/keys`: every key with its history, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KeyList {
    /// The key set the very next submission is sealed to (null: no active key, paused).
    pub current_key_set: Option<i64>,
    pub keyring_version: i64,
    pub keys: Vec<Key>,
    /// `keys.min_active` of the server's configuration: retiring below it is refused.
    pub min_active: u32,
    pub warnings: Vec<String>,
}

/// `GET /api/v1/keys/current` (any signed-in analyst): the key set every new item is sealed
/// to, with its keys' recipients, so that each analyst can see it change (`tipbox review pull`
/// says which keys were added and removed since it last looked). Clients compute each
/// fingerprint from its recipient rather than take it on the server's word.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CurrentKeys {
    /// Null when no key is active (submissions are paused).
    pub key_set: Option<super::CurrentKeySet>,
    pub keyring_version: i64,
}

/// A reviewer key and its history. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Key {
    pub added_at: i64,
    /// SHA-256 of the canonical recipient.
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub fingerprint: String,
    pub id: i64,
    /// x25519, ssh-ed25519, ssh-rsa or plugin:NAME.
    pub kind: String,
    pub label: String,
    /// Who holds the key, if the admin said.
    pub owner: Option<String>,
    /// The public key (age recipient).
    pub recipient: String,
    pub retired_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub state: KeyState,
}

/// Where a key is in its life, active → retired → revoked or active → revoked: every new item
/// is sealed to an `active` key; a `retired` one is no longer sealed to (its items get a new
/// header when re-keyed); a `revoked` one is assumed compromised (its items need a fresh
/// encryption).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    Active,
    Retired,
    Revoked,
}

/// `POST /api/v1/keys`: a reviewer's public key to add to the active set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// Trimmed, then 1 to 200 characters without control characters.
    #[schemars(pattern(key_label_pattern()))]
    pub label: String,
    /// Like `label`; empty or only white space counts as none.
    #[schemars(pattern(key_owner_pattern()))]
    pub owner: Option<String>,
    /// age1…, ssh-ed25519 …, ssh-rsa … or an age plugin recipient (whose plugin the server has).
    /// Private keys are refused.
    #[schemars(extend("format" = "age-recipient"))]
    pub recipient: String,
}

/// The answer to a key change (add, retire, revoke): the key and the keyring after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KeyChange {
    /// Keys in the active set after the change.
    pub active_keys: usize,
    /// The key set the very next submission is sealed to (null: no active key, submissions
    /// paused).
    pub current_key_set: Option<i64>,
    pub key: Key,
    /// Incremented by every change of the active set; every node reads it at the start of
    /// each submission.
    pub keyring_version: i64,
    /// Revocation only: the tips the revoked key can still open until they are re-keyed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<String>")]
    pub tips_still_open: Option<Vec<String>>,
    pub warnings: Vec<String>,
}

/// `GET /api/v1/keys/status`: items per key set, and what still needs re-keying. (Serialized
/// from a struct on the server: fields in that struct's order.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KeyringStatus {
    pub keyring_version: i64,
    pub current_key_set: Option<i64>,
    pub active_keys: usize,
    pub key_sets: Vec<KeySetStatus>,
    pub needs_rekey: NeedsRekey,
    pub revoked_keys: Vec<RevokedKey>,
    pub warnings: Vec<String>,
}

/// One key set and what is sealed to it. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KeySetStatus {
    pub id: i64,
    pub fingerprint: String,
    /// Every item sealed from now on goes to this set.
    pub current: bool,
    /// When a member was retired or revoked: its items should be re-keyed.
    pub retired_at: Option<i64>,
    /// When a member was revoked: its items need a fresh encryption.
    pub revoked_at: Option<i64>,
    /// The ids of its keys.
    pub keys: Vec<i64>,
    /// Committed items sealed to it.
    pub items: i64,
    /// The tips those items belong to.
    pub tips: i64,
}

/// Items and tips still sealed to sets with a retired (only) or a revoked key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NeedsRekey {
    /// A new header suffices.
    pub retired: Exposure,
    /// A fresh encryption is needed.
    pub revoked: Exposure,
}

/// How many items, of how many tips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Exposure {
    pub items: i64,
    pub tips: i64,
}

/// A revoked key and the tips it can still open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RevokedKey {
    pub id: i64,
    pub label: String,
    pub fingerprint: String,
    /// Unix time.
    pub revoked_at: Option<i64>,
    pub tips_still_open: Vec<String>,
}
