//! The JSON of the analyst API (`/api/v1`), defined once: the server answers with these types,
//! the review client reads them, and the schemas in `docs/openapi.json` are generated from them
//! (`schema.rs`, whose test fails when the file and the types disagree).
//!
//! Field order is wire order. Answers the server used to build with `serde_json::json!` (whose
//! maps sort their keys) declare their fields in alphabetical order, so that the bytes on the
//! wire stay as they were; answers it serialized from a struct keep that struct's order. Times
//! are what the server sends: RFC 3339 strings where it formats them ([`Time`]), Unix seconds
//! where it sends integers.
//!
//! Nothing here does server work: the `From` impls in `convert.rs` only reshape what the store
//! and the keyring hand the server.

pub mod audit;
mod convert;
pub mod keys;
pub mod rekey;
pub mod schema;
pub mod session;
pub mod tips;
#[cfg(test)]
mod wire;

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use audit::{AuditEntry, AuditTrail, ChainStatus};
pub use keys::{
    CurrentKeys, Exposure, Key, KeyChange, KeyList, KeySetStatus, KeyState, KeyringStatus,
    NeedsRekey, NewKey, RevokedKey,
};
pub use rekey::{
    CurrentKeySet, HeaderReplacement, KeySetMember, RekeyItem, RekeyMode, RekeyPage, RekeyQuery,
    Rekeyed, Remaining, SealedQuery,
};
pub use session::{AnalystList, NewSession, Role, Session, SignIn};
pub use tips::{
    BulkAction, BulkChange, BulkChanged, Item, ItemKind, Reply, SealedNote, SealedReply, Status,
    Tip, TipPage, TipsQuery, Triage, Writing, WritingCreated, WritingKind,
};

/// Every refusal and failure of the API: a status code and `{"error": "…"}`, a sentence for
/// people (clients show it; they do not parse it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Error {
    pub error: String,
}

impl Error {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            error: message.into(),
        }
    }
}

/// `GET /health` on the analyst listener (outside `/api/v1`, no session needed): whether the
/// database answers (HTTP 200, else 503) and whether submissions are being accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    pub intake: IntakeState,
    pub status: HealthStatus,
}

/// Whether the database answered the health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum HealthStatus {
    #[serde(rename = "ok")]
    Ok,
    #[serde(rename = "database unavailable")]
    DatabaseUnavailable,
}

/// Whether this node seals and stores new submissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum IntakeState {
    #[serde(rename = "accepting")]
    Accepting,
    #[serde(rename = "paused: no active reviewer key")]
    NoActiveKey,
    #[serde(rename = "paused: reviewer keys unusable on this node")]
    KeysUnusable,
}

/// A moment the server shows as an RFC 3339 string in UTC, to the second
/// (`2024-05-01T10:00:00Z`); held as Unix seconds. Times before 1970 show as the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub i64);

impl std::fmt::Display for Time {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let since_epoch = std::time::Duration::from_secs(self.0.max(0) as u64);
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + since_epoch).fmt(f)
    }
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        let at = humantime::parse_rfc3339(&text).map_err(serde::de::Error::custom)?;
        let seconds = at
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(serde::de::Error::custom)?
            .as_secs();
        i64::try_from(seconds)
            .map(Time)
            .map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Time {
    fn schema_name() -> Cow<'static, str> {
        "Time".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "format": "date-time" })
    }
}

/// Reads a field that may be absent (outer `None`: leave as it is), `null` (`Some(None)`: clear
/// it) or a value.
pub(crate) fn absent_null_or_value<'de, D, T>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
