//! The review queue: tips with their items and replies, triage, and notes and replies written
//! on a tip (`/api/v1/tips…`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::Time;
use super::schema::{labels_schema, writing_pattern};

/// `GET /api/v1/tips`: one page of the queue, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TipPage {
    /// The `before` of the following page; null on the last one.
    pub next: Option<String>,
    pub tips: Vec<Tip>,
}

/// A tip as analysts see it: its triage and its sealed items (never their content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Tip {
    /// The analyst it is assigned to.
    pub assignee: Option<String>,
    #[schemars(regex(pattern = r"^[0-9a-f]{32}$"))]
    pub id: String,
    pub items: Vec<Item>,
    /// The key set of the tip's message.
    pub key_set: Option<i64>,
    pub labels: Vec<String>,
    /// Coarsened (to the hour by default).
    pub received_at: Time,
    /// Only in `GET /api/v1/tips/{id}`: the age recipient a reply's source copy is sealed to
    /// (derived from the source's receipt), when the tip's binding verifies. For clients that
    /// seal replies themselves (`POST …/replies/sealed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^age1[0-9a-z]{58}$"))]
    pub reply_recipient: Option<String>,
    /// Only in `GET /api/v1/tips/{id}`: the tip's replies to its source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<Reply>")]
    pub replies: Option<Vec<Reply>>,
    /// When the source last added something with its receipt, if ever. Coarsened.
    pub source_activity_at: Option<Time>,
    #[schemars(with = "Status")]
    pub status: String,
}

/// A sealed item of a tip: an age file only reviewers' identities open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Item {
    /// When the item was added after the tip itself (a source's follow-up, a note, a reply);
    /// null for the first submission's items. Coarsened.
    pub added_at: Option<Time>,
    /// HMAC-SHA256 (hex) of the item's plaintext, made at intake under a key sealed with the
    /// item's submission (in its facts; in a note's or reply's own JSON) and never changed:
    /// readers recompute it to check that a re-keyed item still holds what was received
    /// (`src/commitment.rs`). Null for items received before commitments existed.
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub commitment: Option<String>,
    #[schemars(regex(pattern = r"^[0-9a-f]{32}$"))]
    pub id: String,
    /// The reviewer key set the item is sealed to.
    pub key_set: i64,
    #[schemars(with = "ItemKind")]
    pub kind: String,
    /// When the item was last re-keyed (a new header or a fresh encryption); null if never.
    /// Coarsened.
    pub replaced_at: Option<Time>,
    /// Who re-keyed it last (a username); null if no one.
    pub replaced_by: Option<String>,
    /// Bytes of the sealed (age) file.
    pub size: i64,
}

/// What an item holds once opened: a `report` (JSON: one send's message and its facts — the
/// attachments' names, sizes… — together), the `facts` of an addition of files only, an
/// `attachment`, an analyst's internal `note`, or the reviewers' copy of a `reply` to the
/// source. Tips received before reports existed have a `message` (UTF-8 text) and `facts` item
/// per send instead of a `report` (`src/report.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Report,
    Message,
    Facts,
    Attachment,
    Note,
    Reply,
}

/// A tip's triage status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    New,
    InReview,
    Verified,
    Closed,
    Spam,
}

/// A reply to the source, as analysts see it: when it was sent, read and deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Reply {
    pub created_at: Time,
    /// When the source deleted its copy (the reviewers' copy stays). Coarsened.
    pub deleted_by_source_at: Option<Time>,
    /// Also the id of the reviewers' sealed copy (an item of kind `reply`).
    #[schemars(regex(pattern = r"^[0-9a-f]{32}$"))]
    pub id: String,
    /// When the source first read it. Coarsened.
    pub read_at: Option<Time>,
}

/// The query of `GET /api/v1/tips` (every filter optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TipsQuery {
    pub status: Option<String>,
    /// Matched regardless of case.
    pub label: Option<String>,
    /// A username; empty for unassigned tips.
    pub assignee: Option<String>,
    /// Only tips with items this analyst has not downloaded yet.
    #[serde(default)]
    pub unpulled: bool,
    /// Only tips the source added to after the first submission.
    #[serde(default)]
    pub followed_up: bool,
    /// The `next` of the previous page.
    pub before: Option<String>,
    /// Tips per page: 50 if absent, clamped to 1..=500.
    pub limit: Option<i64>,
}

/// `PATCH /api/v1/tips/{id}`: any of status, labels and assignee; an absent field stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Triage {
    /// A username, or null to unassign.
    #[serde(
        default,
        deserialize_with = "super::absent_null_or_value",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<String>")]
    pub assignee: Option<Option<String>>,
    /// Replaces every label: at most 20, each 1 to 64 characters without control characters.
    /// Labels that differ only in case are one label: kept once, spelled as another tip
    /// already spells it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "labels_schema")]
    pub labels: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Status>")]
    pub status: Option<String>,
}

/// `POST /api/v1/tips/{id}/notes` and `…/replies`: the text, which the server seals at once.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Writing {
    /// Not only white space; at most 32 KiB of UTF-8 (32768 bytes, which is fewer characters
    /// when some take several bytes).
    #[schemars(with = "String", length(max = 32768), pattern(writing_pattern()))]
    pub text: Zeroizing<String>,
}

/// `POST /api/v1/tips/{id}/notes/sealed`: an internal note sealed on the analyst's machine, so
/// that the server never sees its plaintext. It must be sealed to exactly the current key set
/// (one stanza per key, of its type; a header cannot show which X25519 key a stanza is for, so
/// the clients seal only to keys their analyst pinned).
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SealedNote {
    /// The new item's id, chosen by the client (its commitment covers it).
    #[schemars(regex(pattern = r"^[0-9a-f]{32}$"))]
    pub id: String,
    /// The key set the reviewers' copy is sealed to: the current one.
    pub key_set: i64,
    /// The reviewers' copy: an age file (standard base64), whose JSON carries its commitment
    /// key.
    #[schemars(regex(
        pattern = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
    ))]
    pub sealed: String,
    /// HMAC-SHA256 (hex) of the reviewers' copy's plaintext under its commitment key.
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub commitment: String,
}

/// `POST /api/v1/tips/{id}/replies/sealed`: a reply sealed on the analyst's machine — the
/// reviewers' copy as a note's, and the source's copy to the tip's `reply_recipient` alone.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SealedReply {
    #[schemars(regex(pattern = r"^[0-9a-f]{32}$"))]
    pub id: String,
    pub key_set: i64,
    #[schemars(regex(
        pattern = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
    ))]
    pub sealed: String,
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub commitment: String,
    /// The source's copy: an age file (standard base64) to the tip's `reply_recipient`.
    #[schemars(regex(
        pattern = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
    ))]
    pub for_source: String,
}

/// The answer to a new note or reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WritingCreated {
    /// The sealed item's id (for a reply, also the reply's).
    #[schemars(regex(pattern = r"^[0-9a-f]{32}$"))]
    pub id: String,
    pub kind: WritingKind,
}

/// What an analyst wrote on a tip: an internal `note`, sealed to the reviewer keys, or a
/// `reply` for the source, sealed to its reply key and (a copy) to the reviewer keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WritingKind {
    Note,
    Reply,
}

/// `POST /api/v1/tips/bulk`: one action over many tips, all in one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkChange {
    pub action: BulkAction,
    /// 1 to 2000 tip ids; an id given twice counts once.
    #[schemars(
        length(min = 1, max = crate::store::MAX_BULK),
        inner(regex(pattern = r"^[0-9a-f]{32}$"))
    )]
    pub ids: Vec<String>,
}

/// What a bulk change does to each tip: `spam` and `close` set its status (`spam`, `closed`)
/// as a triage does; `delete` (admins only) deletes it with everything of it — its sealed
/// items, notes, replies and labels — as the retention policy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    Spam,
    Close,
    Delete,
}

/// The answer to a bulk change: what became of each tip asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BulkChanged {
    pub action: BulkAction,
    /// How many tips were changed (or deleted), each with its entry in the audit trail.
    pub changed: usize,
    /// Ids of no tip (never stored, or deleted meanwhile), as asked.
    #[schemars(inner(regex(pattern = r"^[0-9a-f]{32}$")))]
    pub missing: Vec<String>,
    /// Tips that already had the status to set: left as they were, without an entry.
    #[schemars(inner(regex(pattern = r"^[0-9a-f]{32}$")))]
    pub unchanged: Vec<String>,
}
