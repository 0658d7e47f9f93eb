//! What analysts write on a tip: internal notes (sealed to the reviewer keys) and replies
//! (sealed to the tip's source and, as a separate item, to the reviewer keys). The server
//! seals them and never stores their plaintext. The reviewers' copy carries its own
//! commitment key (`crate::commitment`), and its item the commitment to it.

use serde::Serialize;
use zeroize::Zeroizing;

use super::{Intake, IntakeError, KeyState, json_to_seal};
use crate::audit::{Audit, AuditAction};
use crate::clock::{coarsen, now};
use crate::commitment::CommitmentKey;
use crate::ids::random_id;
use crate::seal::{seal_bytes, seal_to_source};

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

impl ForReviewers<'_> {
    /// The reviewers' copy of what `author` wrote, written now, as JSON to seal, carrying
    /// `commitment_key`.
    fn json(
        format: &'static str,
        author: &str,
        text: &str,
        commitment_key: &CommitmentKey,
    ) -> Zeroizing<Vec<u8>> {
        let written_at =
            humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
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
}

/// A reply as its source opens it.
#[derive(Serialize)]
struct ForSource<'a> {
    format: &'static str,
    text: &'a str,
}

impl Intake {
    /// Seals an analyst's internal note to the active key set and adds it to the tip, with its
    /// audit entry (`author` is the actor). The server never stores the note's plaintext.
    /// Returns the note's item id, or `None` if there is no such tip.
    pub async fn add_note(
        &self,
        tip_id: &str,
        author: &str,
        text: Zeroizing<String>,
    ) -> Result<Option<String>, IntakeError> {
        let KeyState::Ready(keys) = self.keys.for_submission(&self.store).await? else {
            return Err(IntakeError::Paused);
        };
        let commitment_key = CommitmentKey::generate();
        let note = ForReviewers::json("tipbox-note/1", author, &text, &commitment_key);
        drop(text);
        let item_id = random_id();
        let commitment = commitment_key.commit(&item_id, &note);
        let key_set_id = keys.id;
        let sealed = tokio::task::spawn_blocking(move || seal_bytes(&keys, &note))
            .await
            .map_err(|e| IntakeError::Task(e.to_string()))??;
        let audit = Audit {
            at: now(),
            actor: author,
            action: AuditAction::NoteAdd,
            subject: tip_id,
            detail: serde_json::json!({ "note": item_id }),
        };
        Ok(self
            .store
            .add_note(
                tip_id,
                &item_id,
                key_set_id,
                &sealed,
                commitment,
                coarsen(now(), self.time_granularity),
                &audit,
            )
            .await?
            .then_some(item_id))
    }

    /// Seals an analyst's reply twice — the reviewers' copy to the active key set (with its
    /// author), the source's copy to the tip's reply recipient only — and stores both in one
    /// transaction with its audit entry. Returns the reply's id, or `None` if there is no such
    /// tip.
    pub async fn add_reply(
        &self,
        tip_id: &str,
        author: &str,
        text: Zeroizing<String>,
    ) -> Result<Option<String>, IntakeError> {
        let KeyState::Ready(keys) = self.keys.for_submission(&self.store).await? else {
            return Err(IntakeError::Paused);
        };
        // Refused unless the tip's binding verifies: a recipient copied onto this tip from
        // another would hand the reply to whoever holds that other tip's receipt.
        let Some(recipient) = self
            .store
            .reply_recipient(tip_id, &self.binding_key)
            .await?
        else {
            return Ok(None);
        };
        let recipient: age::x25519::Recipient = recipient
            .parse()
            .map_err(|e: &str| IntakeError::Task(format!("stored reply recipient: {e}")))?;
        let commitment_key = CommitmentKey::generate();
        let for_reviewers = ForReviewers::json("tipbox-reply/1", author, &text, &commitment_key);
        let reply_id = random_id();
        let commitment = commitment_key.commit(&reply_id, &for_reviewers);
        let for_source = json_to_seal(
            &ForSource {
                format: "tipbox-reply/1",
                text: &text,
            },
            false,
        );
        drop(text);
        let key_set_id = keys.id;
        let (for_reviewers, for_source) =
            tokio::task::spawn_blocking(move || -> Result<_, IntakeError> {
                Ok((
                    seal_bytes(&keys, &for_reviewers)?,
                    seal_to_source(&recipient, &for_source)?,
                ))
            })
            .await
            .map_err(|e| IntakeError::Task(e.to_string()))??;
        let created_at = coarsen(now(), self.time_granularity);
        let audit = Audit {
            at: now(),
            actor: author,
            action: AuditAction::ReplyAdd,
            subject: tip_id,
            detail: serde_json::json!({ "reply": reply_id }),
        };
        Ok(self
            .store
            .add_reply(
                tip_id,
                &reply_id,
                key_set_id,
                &for_reviewers,
                commitment,
                &for_source,
                created_at,
                &audit,
            )
            .await?
            .then_some(reply_id))
    }
}
