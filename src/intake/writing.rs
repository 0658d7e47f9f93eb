//! What analysts write on a tip: internal notes (sealed to the reviewer keys) and replies
//! (sealed to the tip's source and, as a separate item, to the reviewer keys). The server
//! seals them and never stores their plaintext. The reviewers' copy carries its own
//! commitment key (`crate::commitment`), and its item the commitment to it.

use zeroize::Zeroizing;

use super::{Intake, IntakeError, KeyState};
use crate::audit::{Audit, AuditAction};
use crate::clock::{coarsen, now};
use crate::commitment::CommitmentKey;
use crate::ids::random_id;
use crate::seal::{seal_bytes, seal_to_source};
use crate::writings;

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
        let note = writings::for_reviewers(writings::NOTE_FORMAT, author, &text, &commitment_key);
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
        let for_reviewers =
            writings::for_reviewers(writings::REPLY_FORMAT, author, &text, &commitment_key);
        let reply_id = random_id();
        let commitment = commitment_key.commit(&reply_id, &for_reviewers);
        let for_source = writings::for_source(&text);
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

/// A note or reply sealed on the analyst's own machine (`tipbox review desk`): the server
/// never sees its plaintext, checks what a header shows, and stores it as it is.
pub struct PreSealed {
    /// Its item id, chosen by the client: the commitment covers it.
    pub id: String,
    /// The key set the client sealed the reviewers' copy to: it must be the current one.
    pub key_set: i64,
    /// The reviewers' copy (an age file).
    pub for_reviewers: Vec<u8>,
    /// The commitment to the reviewers' copy's plaintext, made with the key sealed inside it.
    pub commitment: [u8; crate::commitment::COMMITMENT_BYTES],
    /// A reply's source copy (an age file to the tip's reply recipient alone).
    pub for_source: Option<Vec<u8>>,
}

impl Intake {
    /// The tip's reply recipient (an `age1…` string), if its binding verifies.
    pub async fn reply_recipient(&self, tip_id: &str) -> Result<Option<String>, IntakeError> {
        Ok(self
            .store
            .reply_recipient(tip_id, &self.binding_key)
            .await?)
    }
}

/// The largest pre-sealed copy accepted: the longest writing, in JSON, and its age framing.
const MAX_PRE_SEALED_BYTES: usize = 2 * crate::writings::MAX_WRITING_BYTES + 16 * 1024;

impl Intake {
    /// Stores a pre-sealed note (`for_source` none) or reply, with its audit entry, after
    /// checking it: sealed to the current key set and to nothing else (one stanza per key of
    /// it, of its type; `rekey::Header::fits`), a reply's source copy to exactly one X25519
    /// recipient, and well-formed age files within the size limit. For a reply, the tip's
    /// binding must verify, as when the server seals. `None`: no such tip.
    pub async fn add_pre_sealed(
        &self,
        tip_id: &str,
        author: &str,
        sealed: PreSealed,
    ) -> Result<Option<String>, IntakeError> {
        let KeyState::Ready(keys) = self.keys.for_submission(&self.store).await? else {
            return Err(IntakeError::Paused);
        };
        if sealed.key_set != keys.id {
            return Err(IntakeError::Refused(format!(
                "sealed to key set {}, but the current key set is {}: fetch it and seal again",
                sealed.key_set, keys.id
            )));
        }
        let expected: Vec<_> = keys.keys.iter().map(|k| k.recipient.clone()).collect();
        let header = |file: &[u8], what: &str| {
            if file.len() > MAX_PRE_SEALED_BYTES {
                return Err(IntakeError::Refused(format!("{what} is too large")));
            }
            crate::rekey::check_file_start(file)
                .map_err(|e| IntakeError::Refused(format!("{what}: {e}")))
        };
        header(&sealed.for_reviewers, "the reviewers' copy")?
            .fits(&expected)
            .map_err(|why| {
                IntakeError::Refused(format!(
                    "the reviewers' copy is not sealed to exactly the current key set: {why}"
                ))
            })?;
        let created_at = coarsen(now(), self.time_granularity);
        let (action, detail) = match &sealed.for_source {
            None => (
                AuditAction::NoteAdd,
                serde_json::json!({ "note": sealed.id }),
            ),
            Some(_) => (
                AuditAction::ReplyAdd,
                serde_json::json!({ "reply": sealed.id }),
            ),
        };
        let audit = Audit {
            at: now(),
            actor: author,
            action,
            subject: tip_id,
            detail,
        };
        let stored = match &sealed.for_source {
            None => {
                self.store
                    .add_note(
                        tip_id,
                        &sealed.id,
                        keys.id,
                        &sealed.for_reviewers,
                        sealed.commitment,
                        created_at,
                        &audit,
                    )
                    .await?
            }
            Some(for_source) => {
                // Only to the tip's own, bound, reply recipient: one X25519 stanza and nothing
                // else. (Which key it is, a header cannot show; the source's identity opening
                // it is what makes it readable there.)
                let Some(recipient) = self
                    .store
                    .reply_recipient(tip_id, &self.binding_key)
                    .await?
                else {
                    return Ok(None);
                };
                let recipient = crate::keyring::Recipient::parse(&recipient)
                    .map_err(|e| IntakeError::Task(format!("stored reply recipient: {e}")))?;
                header(for_source, "the source's copy")?
                    .fits(std::slice::from_ref(&recipient))
                    .map_err(|why| {
                        IntakeError::Refused(format!(
                            "the source's copy is not sealed to exactly one X25519 recipient: {why}"
                        ))
                    })?;
                self.store
                    .add_reply(
                        tip_id,
                        &sealed.id,
                        keys.id,
                        &sealed.for_reviewers,
                        sealed.commitment,
                        for_source,
                        created_at,
                        &audit,
                    )
                    .await?
            }
        };
        Ok(stored.then_some(sealed.id))
    }
}
