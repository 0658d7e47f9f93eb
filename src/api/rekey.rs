//! Re-keying: what is sealed to retired or revoked keys, the current key set to re-seal it to,
//! and the replacements clients send (`/api/v1/rekey`, `/api/v1/items/{id}/header|sealed`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema::header_pattern;

/// The query of `GET /api/v1/rekey`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RekeyQuery {
    /// The `next` of the previous page (empty or absent: from the start).
    pub after: Option<String>,
    /// Items per page: 100 if absent, clamped to 1..=500.
    pub limit: Option<i64>,
}

/// `GET /api/v1/rekey`: a page of items to re-key, in item id order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RekeyPage {
    pub items: Vec<RekeyItem>,
    /// The current key set; clients check each fingerprint against its recipient and the
    /// set's fingerprint against theirs. Null when no key is active.
    pub key_set: Option<CurrentKeySet>,
    pub keyring_version: i64,
    /// The `after` of the following page; null on the last one.
    pub next: Option<String>,
    pub remaining: Remaining,
}

/// The key set new items are sealed to, with the recipients to wrap file keys to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CurrentKeySet {
    /// SHA-256 over its keys' fingerprints (`keyring::key_set_fingerprint`).
    pub fingerprint: String,
    pub id: i64,
    pub keys: Vec<KeySetMember>,
}

/// A key of the current key set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KeySetMember {
    pub fingerprint: String,
    pub id: i64,
    /// x25519, ssh-ed25519, ssh-rsa or plugin:NAME.
    pub kind: String,
    pub label: String,
    /// The public key (age recipient).
    pub recipient: String,
}

/// How many items still need re-keying, by mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Remaining {
    pub header: i64,
    pub payload: i64,
}

/// An item sealed to a key set with a retired or revoked key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RekeyItem {
    /// Header mode: the item's age header, base64 (null if the stored item is damaged).
    pub header: Option<String>,
    pub id: String,
    /// The key set it is sealed to now.
    pub key_set: i64,
    pub kind: String,
    pub mode: RekeyMode,
    pub size: i64,
    /// The tip it belongs to.
    pub tip: String,
}

/// What re-keying an item takes: `header` for an item sealed to a retired key (none revoked),
/// whose file key is re-wrapped (`PUT …/header`); `payload` for one sealed to a revoked key,
/// which is encrypted afresh (`PUT …/sealed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RekeyMode {
    Header,
    Payload,
}

/// `PUT /api/v1/items/{id}/header`: the item's file key re-wrapped to the current key set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderReplacement {
    /// The key set the item was sealed to when its header was fetched.
    pub from_key_set: i64,
    /// The new age header (through its MAC line), base64 with padding; at most 65536 bytes
    /// decoded (a longer one is refused with 413).
    #[schemars(length(max = 87384), pattern(header_pattern()))]
    pub header: String,
    /// SHA-256 (hex) of the header that was re-wrapped.
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub replaces: String,
    /// The key set the new header is for; must still be the current one.
    pub to_key_set: i64,
}

/// The query of `PUT /api/v1/items/{id}/sealed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedQuery {
    pub from_key_set: i64,
    pub to_key_set: i64,
}

/// The answer to a re-keyed item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Rekeyed {
    pub from_key_set: i64,
    pub id: String,
    /// The key set the item is now sealed to.
    pub key_set: i64,
    pub mode: RekeyMode,
}
