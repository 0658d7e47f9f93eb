//! What one of a source's sends looks like to its readers, shared by intake (which writes it)
//! and the review client (which reads it).
//!
//! A send — the first submission or a later addition — is sealed as **one** item that carries
//! its facts (incident type, place, time, the attachments' original names, the commitment key of
//! the send's items) and, when the send had one, its message:
//!
//! - kind [`REPORT`]: facts and message together, one age file, the message in its `message`
//!   field (`"format": "tipbox-report/1"` for a first submission, `"tipbox-followup/2"` for an
//!   addition). Every first submission since 2026-12, and every addition with a message.
//! - kind `facts`: an addition of files only (no message; `"tipbox-followup/2"`), or — for tips
//!   received before 2026-12 — the facts of a send (`"tipbox-facts/1"`, `"tipbox-followup/1"`)
//!   whose message was sealed separately, as an item of kind `message`.
//!
//! Why one item: sealing is public-key work per reviewer key and per item (one X25519 key
//! agreement per key for every age header). The message and the facts were two items, so two
//! headers; one item halves the public-key work of a text submission (benches/README.md).
//! Older tips are read as they are: nothing re-seals them (the server cannot; it holds no
//! plaintext), and every reader accepts both shapes.
//!
//! Readers that write files (`tipbox review pull`) keep the layout they always had: the report's
//! message goes to `message.txt` and the rest of its JSON to `facts.json`.

use zeroize::Zeroizing;

/// The kind of an item holding a send's facts and message together.
pub const REPORT: &str = "report";

/// The `format` of a first submission's report.
pub const REPORT_FORMAT: &str = "tipbox-report/1";

/// The `format` of an addition's report or facts item: that of `tipbox-followup/1` (the
/// attachments' names and the commitment key), with the `message` field in a report.
pub const ADDITION_FORMAT: &str = "tipbox-followup/2";

/// The field of a report's JSON that holds the source's message.
pub const MESSAGE_FIELD: &str = "message";

/// Whether an item of this kind carries a send's facts: the attachments' names and the key its
/// items are committed to (`crate::commitment::FACTS_FIELD`). Readers open these first.
pub fn carries_facts(kind: &str) -> bool {
    kind == "facts" || kind == REPORT
}

/// Whether an item of this kind holds a source's message (alone, or in a report).
pub fn carries_message(kind: &str) -> bool {
    kind == "message" || kind == REPORT
}

/// A decrypted report taken apart: the source's message, and the rest of its JSON — the facts,
/// shaped as a `facts` item of an older tip is.
pub struct Split {
    pub message: Zeroizing<String>,
    pub facts: Zeroizing<Vec<u8>>,
}

/// Takes a decrypted report apart, or `None` if it is not a JSON object with a text message.
pub fn split(plaintext: &[u8]) -> Option<Split> {
    let mut json: serde_json::Value = serde_json::from_slice(plaintext).ok()?;
    let message = take_message(&mut json)?;
    let facts = serde_json::to_vec_pretty(&json).ok()?;
    Some(Split {
        message,
        facts: Zeroizing::new(facts),
    })
}

/// Removes a report's message from its parsed JSON (which is left as the facts), if it has a
/// text one.
pub fn take_message(json: &mut serde_json::Value) -> Option<Zeroizing<String>> {
    match json.as_object_mut()?.remove(MESSAGE_FIELD)? {
        serde_json::Value::String(message) => Some(Zeroizing::new(message)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_splits_into_its_message_and_the_facts() {
        let report = serde_json::json!({
            "format": REPORT_FORMAT,
            "form_language": "zh-Hans",
            "country": null,
            "attachments": [{ "item_id": "a", "file_name": "照片.jpg" }],
            "item_commitments": { "scheme": "s", "key": "k", "items": ["r"] },
            "message": "他们找了我的父母。\n第二行",
        });
        let split = split(&serde_json::to_vec_pretty(&report).unwrap()).unwrap();
        assert_eq!(split.message.as_str(), "他们找了我的父母。\n第二行");
        let facts: serde_json::Value = serde_json::from_slice(&split.facts).unwrap();
        assert!(facts.get(MESSAGE_FIELD).is_none());
        assert_eq!(facts["attachments"][0]["file_name"], "照片.jpg");
        assert_eq!(facts["item_commitments"]["items"][0], "r");
    }

    #[test]
    fn what_is_not_a_report_does_not_split() {
        for bad in [
            &b"plain text"[..],
            b"[1, 2]",
            br#"{"format": "tipbox-facts/1"}"#,
            br#"{"message": 7}"#,
        ] {
            assert!(split(bad).is_none(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(carries_facts("facts") && carries_facts(REPORT) && !carries_facts("message"));
        assert!(carries_message("message") && carries_message(REPORT) && !carries_message("facts"));
    }
}
