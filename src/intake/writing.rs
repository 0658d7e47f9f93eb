//! What analysts write on a tip: internal notes (sealed to the reviewer keys) and replies
//! (sealed to the tip's source and, as a separate item, to the reviewer keys). The server
//! seals them and never stores their plaintext. The reviewers' copy carries its own
//! commitment key (`crate::commitment`), and its item the commitment to it.

use zeroize::Zeroizing;

use super::{Intake, IntakeError, KeyState};
use crate::audit::{Audit, AuditAction};
use crate::clock::{coarsen, now};
use crate::commitment::{CommitmentKey, WRITING_FIELD};
use crate::ids::random_id;
use crate::seal::{seal_bytes, seal_to_source};

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
        let note = Zeroizing::new(
            serde_json::to_vec_pretty(&serde_json::json!({
                "format": "tipbox-note/1",
                "author": author,
                "written_at": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
                "text": text.as_str(),
                WRITING_FIELD: commitment_key.to_hex().as_str(),
            }))
            .expect("a note serializes"),
        );
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
        let Some(recipient) = self.store.reply_recipient(tip_id).await? else {
            return Ok(None);
        };
        let recipient: age::x25519::Recipient = recipient
            .parse()
            .map_err(|e: &str| IntakeError::Task(format!("stored reply recipient: {e}")))?;
        let written_at =
            humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let commitment_key = CommitmentKey::generate();
        let for_reviewers = Zeroizing::new(
            serde_json::to_vec_pretty(&serde_json::json!({
                "format": "tipbox-reply/1",
                "author": author,
                "written_at": written_at,
                "text": text.as_str(),
                WRITING_FIELD: commitment_key.to_hex().as_str(),
            }))
            .expect("a reply serializes"),
        );
        let reply_id = random_id();
        let commitment = commitment_key.commit(&reply_id, &for_reviewers);
        let for_source = Zeroizing::new(
            serde_json::to_vec(&serde_json::json!({
                "format": "tipbox-reply/1",
                "text": text.as_str(),
            }))
            .expect("a reply serializes"),
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
