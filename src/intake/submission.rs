//! A submission being received: attachments sealed as they stream in (large ones staged in
//! the database chunk by chunk), the message and facts sealed at the end, and one commit
//! through the group-commit queue. A submission dropped half way removes its staged chunks.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::facts::{SealedFacts, json_to_seal};
use super::{Accepted, AttachmentFacts, CHUNK_BYTES, Facts, Intake, IntakeError};
use crate::clock::{coarsen, now};
use crate::i18n::Lang;
use crate::ids::random_id;
use crate::keyring::ActiveKeySet;
use crate::receipt::ReceiptCode;
use crate::seal::{ItemSealer, seal_bytes};
use crate::store::{NewItem, NewTip, SealedBody, Store};

/// Deletes a submission's staged items unless they were committed.
struct StagedGuard {
    store: Store,
    ids: Vec<String>,
}

impl StagedGuard {
    /// Deletes now, waiting for it (used on refusals, so the response means "nothing stored").
    async fn discard(&mut self) {
        let ids = std::mem::take(&mut self.ids);
        if !ids.is_empty()
            && let Err(error) = self.store.discard_staged(&ids).await
        {
            tracing::error!(%error, "could not delete staged items; the sweeper will");
        }
    }
}

impl Drop for StagedGuard {
    fn drop(&mut self) {
        let ids = std::mem::take(&mut self.ids);
        if ids.is_empty() {
            return;
        }
        let store = self.store.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = store.discard_staged(&ids).await {
                    tracing::error!(%error, "could not delete abandoned staged items; the sweeper will");
                }
            });
        }
    }
}

/// A submission being received.
pub struct Submission {
    intake: Arc<Intake>,
    keys: Arc<ActiveKeySet>,
    items: Vec<NewItem>,
    attachments: Vec<AttachmentFacts>,
    staged: StagedGuard,
}

/// An attachment being received and sealed.
pub struct AttachmentUpload {
    item_id: String,
    sealer: Option<ItemSealer>,
    file_name: String,
    content_type: Option<String>,
    staged_chunks: i64,
    staged_bytes: i64,
}

impl Submission {
    pub(super) fn new(intake: Arc<Intake>, keys: Arc<ActiveKeySet>) -> Self {
        let staged = StagedGuard {
            store: intake.store.clone(),
            ids: Vec::new(),
        };
        Submission {
            intake,
            keys,
            items: Vec::new(),
            attachments: Vec::new(),
            staged,
        }
    }

    pub fn attachment_count(&self) -> usize {
        self.attachments.len()
    }

    pub async fn begin_attachment(
        &mut self,
        file_name: String,
        content_type: Option<String>,
    ) -> Result<AttachmentUpload, IntakeError> {
        let keys = Arc::clone(&self.keys);
        let sealer = tokio::task::spawn_blocking(move || ItemSealer::new(&keys))
            .await
            .map_err(|e| IntakeError::Task(e.to_string()))??;
        Ok(AttachmentUpload {
            item_id: random_id(),
            sealer: Some(sealer),
            file_name,
            content_type,
            staged_chunks: 0,
            staged_bytes: 0,
        })
    }

    /// Seals a piece of an attachment; full chunks of ciphertext go to the database now.
    pub async fn write_attachment(
        &mut self,
        upload: &mut AttachmentUpload,
        data: &[u8],
    ) -> Result<(), IntakeError> {
        let sealer = upload.sealer.as_mut().expect("attachment not finished yet");
        sealer.write(data)?;
        if sealer.pending() >= CHUNK_BYTES {
            let chunk = sealer.drain();
            self.write_staged_chunk(upload, &chunk).await?;
        }
        Ok(())
    }

    async fn write_staged_chunk(
        &mut self,
        upload: &mut AttachmentUpload,
        chunk: &[u8],
    ) -> Result<(), IntakeError> {
        let store = &self.intake.store;
        if upload.staged_chunks == 0 {
            let staged_at = coarsen(now(), self.intake.time_granularity);
            // Registered for cleanup before the insert, so a cancellation in between leaves
            // nothing behind either.
            self.staged.ids.push(upload.item_id.clone());
            store
                .stage_item(&upload.item_id, self.keys.id, staged_at)
                .await?;
        }
        store
            .append_chunk(&upload.item_id, upload.staged_chunks, chunk)
            .await?;
        upload.staged_chunks += 1;
        upload.staged_bytes += chunk.len() as i64;
        Ok(())
    }

    pub async fn finish_attachment(
        &mut self,
        mut upload: AttachmentUpload,
    ) -> Result<(), IntakeError> {
        let mut sealer = upload.sealer.take().expect("attachment finished once");
        let plaintext_len = sealer.plaintext_len();
        let mut rest = sealer.drain();
        rest.extend(sealer.finish()?);
        let body = if upload.staged_chunks == 0 {
            SealedBody::Inline(rest)
        } else {
            if !rest.is_empty() {
                self.write_staged_chunk(&mut upload, &rest).await?;
            }
            SealedBody::Staged
        };
        let size = match &body {
            SealedBody::Inline(data) => data.len() as i64,
            SealedBody::Staged => upload.staged_bytes,
        };
        self.items.push(NewItem {
            id: upload.item_id.clone(),
            position: 0, // numbered at commit
            kind: "attachment",
            size,
            key_set_id: self.keys.id,
            body,
        });
        self.attachments.push(AttachmentFacts {
            item_id: upload.item_id,
            file_name: upload.file_name,
            content_type: upload.content_type,
            size: plaintext_len,
        });
        Ok(())
    }

    /// Refuses the submission: deletes whatever was staged before returning.
    pub async fn abandon(mut self) {
        self.staged.discard().await;
    }

    /// Seals a source's follow-up (an optional message and the attachments already received)
    /// and adds it to the source's tip in one durable transaction. Only after this returns
    /// `Ok(true)` may the source be told it was stored. `Ok(false)`: the tip no longer exists,
    /// and nothing was stored.
    pub async fn commit_followup(
        mut self,
        tip_id: &str,
        message: Option<Zeroizing<String>>,
        lang: Lang,
    ) -> Result<bool, IntakeError> {
        let keys = Arc::clone(&self.keys);
        let attachments = std::mem::take(&mut self.attachments);
        let sealed = tokio::task::spawn_blocking(move || -> Result<_, IntakeError> {
            let message = message
                .map(|m| seal_bytes(&keys, m.as_bytes()))
                .transpose()?;
            // The attachments' original names, sealed like those of the first submission.
            let facts = if attachments.is_empty() {
                None
            } else {
                let json = json_to_seal(
                    &SealedFacts {
                        format: "tipbox-followup/1",
                        form_language: lang.tag(),
                        facts: &Facts::default(),
                        attachments: &attachments,
                    },
                    true,
                );
                Some(seal_bytes(&keys, &json)?)
            };
            Ok((message, facts))
        })
        .await
        .map_err(|e| IntakeError::Task(e.to_string()));
        let (message, facts) = match sealed {
            Ok(Ok(sealed)) => sealed,
            Ok(Err(e)) | Err(e) => {
                self.staged.discard().await;
                return Err(e);
            }
        };
        let key_set_id = self.keys.id;
        let inline = |kind: &'static str, data: Vec<u8>| NewItem {
            id: random_id(),
            position: 0, // numbered by the store, after the tip's other items
            kind,
            size: data.len() as i64,
            key_set_id,
            body: SealedBody::Inline(data),
        };
        let mut items = Vec::new();
        items.extend(message.map(|m| inline("message", m)));
        items.extend(facts.map(|f| inline("facts", f)));
        items.extend(std::mem::take(&mut self.items));
        let added_at = coarsen(now(), self.intake.time_granularity);
        match self
            .intake
            .store
            .commit_followup(tip_id, &items, added_at)
            .await
        {
            Ok(true) => {
                self.staged.ids.clear();
                Ok(true)
            }
            Ok(false) => {
                self.staged.discard().await;
                Ok(false)
            }
            Err(e) => {
                self.staged.discard().await;
                Err(e.into())
            }
        }
    }

    /// Seals the message and facts, and commits the whole submission durably. Only after this
    /// returns `Ok` may a receipt be shown.
    pub async fn commit(
        mut self,
        message: Zeroizing<String>,
        facts: Facts,
        lang: Lang,
    ) -> Result<Accepted, IntakeError> {
        let keys = Arc::clone(&self.keys);
        let intake = Arc::clone(&self.intake);
        let attachments = std::mem::take(&mut self.attachments);
        // Public-key work (two age headers, the reply identity): off the async threads.
        let sealed = tokio::task::spawn_blocking(move || -> Result<_, IntakeError> {
            let sealed_message = seal_bytes(&keys, message.as_bytes())?;
            drop(message);
            let facts_json = json_to_seal(
                &SealedFacts {
                    format: "tipbox-facts/1",
                    form_language: lang.tag(),
                    facts: &facts,
                    attachments: &attachments,
                },
                true,
            );
            drop(facts);
            let sealed_facts = seal_bytes(&keys, &facts_json)?;
            let receipt = ReceiptCode::generate();
            let receipt_hash = receipt.lookup_hash(&intake.lookup_key);
            let reply_recipient = receipt
                .reply_identity(&intake.reply_salt)
                .to_public()
                .to_string();
            Ok((
                sealed_message,
                sealed_facts,
                receipt,
                receipt_hash,
                reply_recipient,
            ))
        })
        .await
        .map_err(|e| IntakeError::Task(e.to_string()))?;
        let (sealed_message, sealed_facts, receipt, receipt_hash, reply_recipient) = match sealed {
            Ok(s) => s,
            Err(e) => {
                self.staged.discard().await;
                return Err(e);
            }
        };
        let key_set_id = self.keys.id;
        let mut items = vec![
            NewItem {
                id: random_id(),
                position: 0,
                kind: "message",
                size: sealed_message.len() as i64,
                key_set_id,
                body: SealedBody::Inline(sealed_message),
            },
            NewItem {
                id: random_id(),
                position: 1,
                kind: "facts",
                size: sealed_facts.len() as i64,
                key_set_id,
                body: SealedBody::Inline(sealed_facts),
            },
        ];
        items.extend(std::mem::take(&mut self.items));
        for (position, item) in items.iter_mut().enumerate().skip(2) {
            item.position = position as i64;
        }
        let tip_id = random_id();
        let binding = self
            .intake
            .binding_key
            .bind(&tip_id, &receipt_hash, &reply_recipient);
        let tip = NewTip {
            id: tip_id,
            received_at: coarsen(now(), self.intake.time_granularity),
            receipt_hash,
            reply_recipient,
            binding,
            items,
        };
        match self.intake.queue.commit(tip).await {
            Ok(()) => {
                // Committed: the staged items now belong to the tip.
                self.staged.ids.clear();
                Ok(Accepted { receipt })
            }
            Err(e) => {
                self.staged.discard().await;
                Err(e.into())
            }
        }
    }
}
