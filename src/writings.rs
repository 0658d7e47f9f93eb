//! What analysts write on a tip — internal notes and replies — as the sealed JSON reviewers
//! and sources open. Made by the server (the desk and `POST …/notes`, `…/replies`, which seal
//! on the server) and by the analyst's local desk (`tipbox review desk`, which seals on the
//! analyst's machine and sends only ciphertext) alike, so that both read the same.

use serde::Serialize;
use zeroize::Zeroizing;

use crate::commitment::CommitmentKey;
use crate::seal::json_to_seal;

pub const NOTE_FORMAT: &str = "tipbox-note/1";
pub const REPLY_FORMAT: &str = "tipbox-reply/1";

/// The most text a note or reply holds, in bytes.
pub const MAX_WRITING_BYTES: usize = 32 * 1024;

/// A note or a reply as the reviewers open it. Borrowed fields, serialized straight into the
/// buffer that is sealed: no copy of the text (a `serde_json::Value` would make one) is left
/// behind in freed memory. Fields in the order the JSON has always had.
#[derive(Serialize)]
struct ForReviewers<'a> {
    author: &'a str,
    /// The key its item's commitment is made with (`crate::commitment::WRITING_FIELD`).
    commitment_key: &'a str,
    format: &'static str,
    text: &'a str,
    written_at: &'a str,
}

/// The reviewers' copy of what `author` wrote, written now, as JSON to seal, carrying
/// `commitment_key`. `format` is `NOTE_FORMAT` or `REPLY_FORMAT`.
pub fn for_reviewers(
    format: &'static str,
    author: &str,
    text: &str,
    commitment_key: &CommitmentKey,
) -> Zeroizing<Vec<u8>> {
    let written_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let key = commitment_key.to_hex();
    json_to_seal(
        &ForReviewers {
            author,
            commitment_key: &key,
            format,
            text,
            written_at: &written_at,
        },
        true,
    )
}

/// A reply as its source opens it.
#[derive(Serialize)]
struct ForSource<'a> {
    format: &'static str,
    text: &'a str,
}

/// The source's copy of a reply, as JSON to seal to the tip's reply recipient.
pub fn for_source(text: &str) -> Zeroizing<Vec<u8>> {
    json_to_seal(
        &ForSource {
            format: REPLY_FORMAT,
            text,
        },
        false,
    )
}
