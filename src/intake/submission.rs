//! A submission being received: attachments sealed as they stream in (large ones staged in
//! the database chunk by chunk), the message and facts sealed at the end as one item, and one
//! commit through the group-commit queue. A submission dropped half way removes its staged
//! chunks.
//!
//! Each submission (the first one, and each addition) draws a commitment key: every item's
//! plaintext is committed to as it is sealed (`crate::commitment`), and the key is sealed in
//! the submission's report (or facts) item with the ids of the items it covers.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::facts::{SealedCommitments, SealedFacts, json_to_seal};
use super::{Accepted, AttachmentFacts, CHUNK_BYTES, Facts, Intake, IntakeError};
use crate::clock::{coarsen, now};
use crate::commitment::{CommitmentKey, Committer};
use crate::i18n::Lang;
use crate::ids::random_id;
use crate::keyring::ActiveKeySet;
use crate::receipt::ReceiptCode;
use crate::report::{ADDITION_FORMAT, REPORT, REPORT_FORMAT};
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
    /// Commits to every item of this submission; sealed in its facts.
    commitment_key: Arc<CommitmentKey>,
}

/// An attachment being received and sealed.
pub struct AttachmentUpload {
    item_id: String,
    sealer: Option<ItemSealer>,
    committer: Option<Committer>,
    file_name: String,
    content_type: Option<String>,
    staged_chunks: i64,
    staged_bytes: i64,
    /// The last chunk's write to the database, still running: the next chunk is received and
    /// sealed meanwhile (on another core than SQLite's thread or PostgreSQL), and awaited before
    /// another write starts or the attachment is finished. One at a time keeps memory bounded
    /// and the chunks in order. If the upload is abandoned, a write still running either lands
    /// before its staged item is discarded (and goes with it) or fails on the item's foreign
    /// key once the item is gone: nothing is left behind.
    writing: Option<tokio::task::JoinHandle<Result<(), crate::store::StoreError>>>,
}

impl AttachmentUpload {
    /// Waits for the chunk being written, if any.
    async fn written(&mut self) -> Result<(), IntakeError> {
        match self.writing.take() {
            Some(write) => Ok(write
                .await
                .map_err(|e| IntakeError::Task(e.to_string()))??),
            None => Ok(()),
        }
    }
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
            commitment_key: Arc::new(CommitmentKey::generate()),
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
        let item_id = random_id();
        Ok(AttachmentUpload {
            committer: Some(self.commitment_key.committer(&item_id)),
            item_id,
            sealer: Some(sealer),
            file_name,
            content_type,
            staged_chunks: 0,
            staged_bytes: 0,
            writing: None,
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
        upload
            .committer
            .as_mut()
            .expect("attachment not finished yet")
            .update(data);
        if sealer.pending() >= CHUNK_BYTES {
            let chunk = sealer.drain();
            self.write_staged_chunk(upload, chunk).await?;
        }
        Ok(())
    }

    /// Starts writing `chunk` to the database once the previous one is written, and returns
    /// without waiting for it (`AttachmentUpload::writing`).
    async fn write_staged_chunk(
        &mut self,
        upload: &mut AttachmentUpload,
        chunk: Vec<u8>,
    ) -> Result<(), IntakeError> {
        upload.written().await?;
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
        let (store, item_id, seq) = (store.clone(), upload.item_id.clone(), upload.staged_chunks);
        upload.staged_chunks += 1;
        upload.staged_bytes += chunk.len() as i64;
        upload.writing = Some(tokio::spawn(async move {
            store.append_chunk(&item_id, seq, &chunk).await
        }));
        Ok(())
    }

    pub async fn finish_attachment(
        &mut self,
        mut upload: AttachmentUpload,
    ) -> Result<(), IntakeError> {
        let mut sealer = upload.sealer.take().expect("attachment finished once");
        let commitment = upload
            .committer
            .take()
            .expect("attachment finished once")
            .finish();
        let plaintext_len = sealer.plaintext_len();
        let mut rest = sealer.drain();
        rest.extend(sealer.finish()?);
        let body = if upload.staged_chunks == 0 {
            SealedBody::Inline(rest)
        } else {
            if !rest.is_empty() {
                self.write_staged_chunk(&mut upload, rest).await?;
            }
            upload.written().await?;
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
            commitment,
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

    /// Seals a source's follow-up (an optional message, the attachments already received, and
    /// its facts) and adds it to the source's tip in one durable transaction. Only after this
    /// returns `Ok(true)` may the source be told it was stored. `Ok(false)`: the tip no longer
    /// exists, and nothing was stored.
    ///
    /// The message and the facts are one sealed item (`crate::report`): a `report` when there is
    /// a message, a `facts` item when the addition is files only.
    pub async fn commit_followup(
        mut self,
        tip_id: &str,
        message: Option<Zeroizing<String>>,
        lang: Lang,
    ) -> Result<bool, IntakeError> {
        let keys = Arc::clone(&self.keys);
        let attachments = std::mem::take(&mut self.attachments);
        let commitment_key = Arc::clone(&self.commitment_key);
        let kind = if message.is_some() { REPORT } else { "facts" };
        let facts_id = random_id();
        let covered = SealedCommitments::new(
            &commitment_key,
            [&facts_id]
                .into_iter()
                .chain(attachments.iter().map(|a| &a.item_id))
                .cloned()
                .collect(),
        );
        let sealed_id = facts_id.clone();
        let sealed = tokio::task::spawn_blocking(move || -> Result<_, IntakeError> {
            // Every addition has facts: the attachments' original names, sealed like those of
            // the first submission, and the key its items are committed to.
            let json = json_to_seal(
                &SealedFacts {
                    format: ADDITION_FORMAT,
                    form_language: lang.tag(),
                    facts: &Facts::default(),
                    attachments: &attachments,
                    item_commitments: &covered,
                    message: message.as_deref().map(String::as_str),
                },
                true,
            );
            drop(message);
            Ok((
                seal_bytes(&keys, &json)?,
                commitment_key.commit(&sealed_id, &json),
            ))
        })
        .await
        .map_err(|e| IntakeError::Task(e.to_string()));
        let (data, commitment) = match sealed {
            Ok(Ok(sealed)) => sealed,
            Ok(Err(e)) | Err(e) => {
                self.staged.discard().await;
                return Err(e);
            }
        };
        let mut items = vec![NewItem {
            id: facts_id,
            position: 0, // numbered by the store, after the tip's other items
            kind,
            size: data.len() as i64,
            key_set_id: self.keys.id,
            body: SealedBody::Inline(data),
            commitment,
        }];
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

    /// Seals the message and facts (one `report` item, `crate::report`), and commits the whole
    /// submission durably. Only after this returns `Ok` may a receipt be shown. `form_key_hash`
    /// is the hash of the form's own key: a form already sent is refused
    /// (`IntakeError::already_sent`) and nothing is stored again.
    pub async fn commit(
        mut self,
        message: Zeroizing<String>,
        facts: Facts,
        lang: Lang,
        form_key_hash: Option<[u8; 32]>,
    ) -> Result<Accepted, IntakeError> {
        let keys = Arc::clone(&self.keys);
        let intake = Arc::clone(&self.intake);
        let attachments = std::mem::take(&mut self.attachments);
        let commitment_key = Arc::clone(&self.commitment_key);
        let report_id = random_id();
        let covered = SealedCommitments::new(
            &commitment_key,
            [&report_id]
                .into_iter()
                .chain(attachments.iter().map(|a| &a.item_id))
                .cloned()
                .collect(),
        );
        let sealed_id = report_id.clone();
        // Public-key work (one age header, the reply identity): off the async threads.
        let sealed = tokio::task::spawn_blocking(move || -> Result<_, IntakeError> {
            let json = json_to_seal(
                &SealedFacts {
                    format: REPORT_FORMAT,
                    form_language: lang.tag(),
                    facts: &facts,
                    attachments: &attachments,
                    item_commitments: &covered,
                    message: Some(message.as_str()),
                },
                true,
            );
            drop((message, facts));
            let report = (
                seal_bytes(&keys, &json)?,
                commitment_key.commit(&sealed_id, &json),
            );
            drop(json);
            let receipt = ReceiptCode::generate();
            let receipt_hash = receipt.lookup_hash(&intake.lookup_key);
            let reply_recipient = receipt
                .reply_identity(&intake.reply_salt)
                .to_public()
                .to_string();
            Ok((report, receipt, receipt_hash, reply_recipient))
        })
        .await
        .map_err(|e| IntakeError::Task(e.to_string()))?;
        let ((data, commitment), receipt, receipt_hash, reply_recipient) = match sealed {
            Ok(s) => s,
            Err(e) => {
                self.staged.discard().await;
                return Err(e);
            }
        };
        let mut items = vec![NewItem {
            id: report_id,
            position: 0,
            kind: REPORT,
            size: data.len() as i64,
            key_set_id: self.keys.id,
            body: SealedBody::Inline(data),
            commitment,
        }];
        items.extend(std::mem::take(&mut self.items));
        for (position, item) in items.iter_mut().enumerate().skip(1) {
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
            form_key_hash,
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
