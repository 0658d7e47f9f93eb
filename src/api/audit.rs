//! The audit trail, for admins: `GET /api/v1/audit`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `GET /api/v1/audit`: every entry, oldest first, and whether the hash chain is intact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuditTrail {
    pub chain: ChainStatus,
    pub entries: Vec<AuditEntry>,
}

/// Whether every entry's hash follows from the one before (`{"intact": true}`), or where the
/// chain first breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChainStatus {
    /// The `seq` of the first entry that does not follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broken_at: Option<i64>,
    pub intact: bool,
    /// How it breaks there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// One action in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuditEntry {
    /// What was done, e.g. `tip.view`, `key.revoke`.
    pub action: String,
    /// The analyst (or operator command) who did it.
    pub actor: String,
    /// Unix time.
    pub at: i64,
    /// JSON text with the action's details.
    pub detail: String,
    /// HMAC-SHA256 (hex) over this entry and `prev_hash`.
    pub hash: String,
    /// The previous entry's `hash` (64 zeros for the first).
    pub prev_hash: String,
    pub seq: i64,
    /// What it was done to (a tip, an item, a key, an analyst).
    pub subject: String,
}
