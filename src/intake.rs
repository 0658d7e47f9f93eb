//! Intake: turning a source's form into sealed items and one durable commit.
//!
//! The web layer feeds a `Submission` field by field; attachments are sealed while they
//! stream in (large ones are staged in the database chunk by chunk), the message and the
//! facts are sealed at the end, and `Submission::commit` hands everything to the group-commit
//! queue. Until that commit succeeds nothing is acknowledged, and a submission that is
//! dropped half way — refused, failed, or abandoned by a disconnecting client — removes its
//! staged chunks.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;
use zeroize::Zeroizing;

use crate::audit::{Audit, AuditAction};
use crate::clock::{coarsen, now};
use crate::i18n::Lang;
use crate::ids::random_id;
use crate::keyring::{ActiveKeySet, KeyError};
use crate::receipt::{LOOKUP_KEY_PURPOSE, REPLY_SALT_PURPOSE, ReceiptCode};
use crate::seal::{ItemSealer, SealError, seal_bytes, seal_to_source};
use crate::secrets::ServerSecret;
use crate::store::{CommitQueue, NewItem, NewTip, SealedBody, SourceTip, Store, StoreError};

/// Ciphertext is written to the database in pieces of this size; an attachment that fits in
/// one piece is written only at commit.
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// How long a staged (uncommitted) item may live before the sweeper deletes it.
pub const STAGING_TTL_SECONDS: i64 = 24 * 3600;

/// The kinds of incident a source can pick; the form and the facts JSON use these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentType {
    ThreatsToFamily,
    PressureToReturn,
    Surveillance,
    SummonsOrVisit,
    OnlineHarassment,
    DetentionOrForcedReturn,
    PoliceStationSighting,
    Other,
}

impl IncidentType {
    pub const ALL: [IncidentType; 8] = [
        IncidentType::ThreatsToFamily,
        IncidentType::PressureToReturn,
        IncidentType::Surveillance,
        IncidentType::SummonsOrVisit,
        IncidentType::OnlineHarassment,
        IncidentType::DetentionOrForcedReturn,
        IncidentType::PoliceStationSighting,
        IncidentType::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            IncidentType::ThreatsToFamily => "threats_to_family",
            IncidentType::PressureToReturn => "pressure_to_return",
            IncidentType::Surveillance => "surveillance",
            IncidentType::SummonsOrVisit => "summons_or_visit",
            IncidentType::OnlineHarassment => "online_harassment",
            IncidentType::DetentionOrForcedReturn => "detention_or_forced_return",
            IncidentType::PoliceStationSighting => "police_station_sighting",
            IncidentType::Other => "other",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// The structured, optional facts of a tip (plaintext: cleared from memory when dropped).
#[derive(Default, Serialize)]
pub struct Facts {
    pub incident_type: Option<IncidentType>,
    pub country: Option<Zeroizing<String>>,
    pub city: Option<Zeroizing<String>>,
    pub when: Option<Zeroizing<String>>,
}

/// What the facts item holds once decrypted: the facts, plus each attachment's original name.
/// File names and content types are recorded here — sealed — and nowhere else.
#[derive(Serialize)]
struct SealedFacts<'a> {
    format: &'static str,
    form_language: &'static str,
    #[serde(flatten)]
    facts: &'a Facts,
    attachments: &'a [AttachmentFacts],
}

#[derive(Debug, Serialize)]
pub struct AttachmentFacts {
    pub item_id: String,
    pub file_name: String,
    pub content_type: Option<String>,
    pub size: u64,
}

/// The state of the reviewer keyring as intake sees it.
#[derive(Clone)]
pub enum KeyState {
    Ready(Arc<ActiveKeySet>),
    /// No active reviewer key: submissions are paused.
    NoKeys,
    /// Keys exist but cannot be used here (e.g. a plugin is missing): paused, and logged.
    Unusable(String),
}

/// The key set new items are sealed to, as this node knows it.
///
/// "The very next submission" after a key change, on every node sharing the database, is
/// sealed to the new set: each submission starts with `for_submission`, one primary-key read of
/// the keyring's version, and reloads the set only when that changed. A submission that was
/// already being received when the keys changed is committed sealed to the set it started with
/// (its attachments were sealed as they arrived and cannot be sealed again) — those items are
/// then listed for re-keying — unless a key of that set was revoked: then the commit refuses it
/// (see `store::commit`), and the source is asked to send it again.
pub struct KeyringCache {
    state: RwLock<(i64, KeyState)>,
    /// One reload at a time; submissions that find the version changed wait for it.
    reload: tokio::sync::Mutex<()>,
    /// The last version check: when it started, and what it read. Checks run one at a time,
    /// and a submission may use a check that *started after it arrived*: that read sees every
    /// key change committed before the submission arrived, which is all "the very next
    /// submission" asks. Submissions that arrive together (a group commit answers many at once,
    /// and their clients send the next ones at once) so share one read instead of each
    /// queueing its own on the database.
    last_check: tokio::sync::Mutex<Option<(tokio::time::Instant, i64)>>,
}

impl KeyringCache {
    pub async fn load(store: &Store) -> Result<Self, StoreError> {
        let cache = Self {
            state: RwLock::new((-1, KeyState::NoKeys)),
            reload: tokio::sync::Mutex::new(()),
            last_check: tokio::sync::Mutex::new(None),
        };
        cache.refresh(store).await?;
        Ok(cache)
    }

    /// The set as last read, without asking the database (health reports, logs).
    pub fn current(&self) -> KeyState {
        self.read().1.clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, (i64, KeyState)> {
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The set a submission (or a note) starting now must be sealed to: checks the keyring's
    /// version in the database and reloads the set if it changed.
    pub async fn for_submission(&self, store: &Store) -> Result<KeyState, StoreError> {
        let arrived = tokio::time::Instant::now();
        let latest = {
            let mut last = self.last_check.lock().await;
            match *last {
                Some((started, version)) if started >= arrived => version,
                _ => {
                    let started = tokio::time::Instant::now();
                    let version = store.keyring_version().await?.version;
                    *last = Some((started, version));
                    version
                }
            }
        };
        if self.read().0 == latest {
            return Ok(self.current());
        }
        self.refresh(store).await?;
        Ok(self.current())
    }

    /// Re-reads the keyring if its version is not the one held (versions only grow, unless
    /// the database was restored from a backup: any difference means "read it again").
    pub async fn refresh(&self, store: &Store) -> Result<(), StoreError> {
        let _one_at_a_time = self.reload.lock().await;
        let latest = store.keyring_version().await?.version;
        if self.read().0 == latest {
            return Ok(());
        }
        let snapshot = store.keyring_snapshot().await?;
        let next = match snapshot.key_set {
            None => KeyState::NoKeys,
            // Building the set checks that plugins are installed; cheap enough here.
            Some((id, fingerprint, keys)) => match ActiveKeySet::new(id, fingerprint, keys) {
                Ok(set) => KeyState::Ready(Arc::new(set)),
                Err(e) => KeyState::Unusable(e.to_string()),
            },
        };
        // Reloads are one at a time, so this snapshot is the newest any of them read.
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        log_transition(&state.1, &next);
        *state = (snapshot.version, next);
        Ok(())
    }
}

fn log_transition(old: &KeyState, new: &KeyState) {
    match (old, new) {
        (KeyState::Ready(a), KeyState::Ready(b)) if a.id == b.id => {}
        (_, KeyState::Ready(set)) => {
            tracing::info!(
                key_set = set.id,
                keys = set.keys.len(),
                "sealing new submissions to key set"
            );
            if set.keys.len() == 1 {
                tracing::warn!(
                    "only one reviewer key is active: if it is lost, so is every tip sealed to it \
                     (add a second, e.g. an offline backup key)"
                );
            }
        }
        (KeyState::NoKeys, KeyState::NoKeys) => {}
        (_, KeyState::NoKeys) => tracing::warn!(
            "no active reviewer key: submissions are paused (add one with `tipbox keys add`)"
        ),
        (KeyState::Unusable(a), KeyState::Unusable(b)) if a == b => {}
        (_, KeyState::Unusable(why)) => {
            tracing::error!(%why, "reviewer keys cannot be used on this node: submissions are paused")
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("sealing task failed: {0}")]
    Task(String),
    #[error("no usable reviewer key: nothing can be sealed")]
    Paused,
}

impl IntakeError {
    /// A key of the set this was sealed to was revoked while it was being received.
    pub fn keys_revoked(&self) -> bool {
        matches!(self, IntakeError::Store(StoreError::KeySetRevoked))
    }
}

/// Everything intake needs, shared by all requests.
pub struct Intake {
    pub store: Store,
    pub queue: CommitQueue,
    pub keys: KeyringCache,
    lookup_key: Zeroizing<[u8; 32]>,
    reply_salt: Zeroizing<[u8; 32]>,
    time_granularity: u64,
}

/// What the source gets back.
pub struct Accepted {
    pub receipt: ReceiptCode,
}

impl Intake {
    pub fn new(
        store: Store,
        queue: CommitQueue,
        keys: KeyringCache,
        secret: &ServerSecret,
        time_granularity: u64,
    ) -> Self {
        Self {
            store,
            queue,
            keys,
            lookup_key: secret.subkey(LOOKUP_KEY_PURPOSE),
            reply_salt: secret.subkey(REPLY_SALT_PURPOSE),
            time_granularity,
        }
    }

    /// Starts a submission sealed to `keys` (the set active when the request arrived).
    pub fn begin(self: &Arc<Self>, keys: Arc<ActiveKeySet>) -> Submission {
        Submission {
            intake: Arc::clone(self),
            keys,
            items: Vec::new(),
            attachments: Vec::new(),
            staged: StagedGuard {
                store: self.store.clone(),
                ids: Vec::new(),
            },
        }
    }

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
        let note = Zeroizing::new(
            serde_json::to_vec_pretty(&serde_json::json!({
                "format": "tipbox-note/1",
                "author": author,
                "written_at": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
                "text": text.as_str(),
            }))
            .expect("a note serializes"),
        );
        drop(text);
        let key_set_id = keys.id;
        let sealed = tokio::task::spawn_blocking(move || seal_bytes(&keys, &note))
            .await
            .map_err(|e| IntakeError::Task(e.to_string()))??;
        let item_id = random_id();
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
        let for_reviewers = Zeroizing::new(
            serde_json::to_vec_pretty(&serde_json::json!({
                "format": "tipbox-reply/1",
                "author": author,
                "written_at": written_at,
                "text": text.as_str(),
            }))
            .expect("a reply serializes"),
        );
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
        let reply_id = random_id();
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
                &for_source,
                created_at,
                &audit,
            )
            .await?
            .then_some(reply_id))
    }

    /// Looks up the tip of a receipt typed back by a source (every reading of its words: the
    /// Chinese word lists overlap). Every reading is looked up whether or not an earlier one
    /// matched, so the work done depends on the words only, not on what is stored. On a match,
    /// the reply identity is derived here, in memory; the caller keeps it only for the
    /// source's session.
    pub async fn open_case(
        &self,
        readings: Vec<ReceiptCode>,
    ) -> Result<Option<(SourceTip, age::x25519::Identity)>, IntakeError> {
        let mut found = None;
        for receipt in readings {
            let hash = receipt.lookup_hash(&self.lookup_key);
            if let Some(tip) = self.store.tip_by_receipt(&hash).await?
                && found.is_none()
            {
                found = Some((tip, receipt.reply_identity(&self.reply_salt)));
            }
        }
        Ok(found)
    }

    pub fn time_granularity(&self) -> u64 {
        self.time_granularity
    }

    /// Periodically checkpoints the SQLite WAL (every second), re-reads the keyring (so that
    /// health reports and logs follow key changes even when no one submits; submissions check
    /// it themselves) and deletes expired staged items.
    pub fn spawn_maintenance(self: &Arc<Self>, refresh: Duration) -> tokio::task::JoinHandle<()> {
        let intake = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(refresh.min(Duration::from_secs(1)));
            let mut last_sweep = None::<tokio::time::Instant>;
            let mut last_refresh = tokio::time::Instant::now();
            loop {
                ticker.tick().await;
                if let Err(error) = intake.store.checkpoint().await {
                    tracing::error!(%error, "WAL checkpoint failed");
                }
                if last_refresh.elapsed() < refresh {
                    continue;
                }
                last_refresh = tokio::time::Instant::now();
                if let Err(error) = intake.keys.refresh(&intake.store).await {
                    tracing::error!(%error, "could not re-read the reviewer keyring");
                }
                if last_sweep.is_none_or(|t| t.elapsed() > Duration::from_secs(600)) {
                    last_sweep = Some(tokio::time::Instant::now());
                    // Staging times are coarsened too: an upload staged at the start of a period
                    // is dated to that start, so the cutoff allows a whole extra period.
                    let cutoff = now() - STAGING_TTL_SECONDS - intake.time_granularity as i64;
                    match intake.store.sweep_staged(cutoff).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(items = n, "deleted expired staged uploads"),
                        Err(error) => tracing::error!(%error, "could not sweep staged uploads"),
                    }
                }
            }
        })
    }
}

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
                let mut json = Zeroizing::new(Vec::with_capacity(64 * 1024));
                serde_json::to_writer_pretty(
                    &mut *json,
                    &SealedFacts {
                        format: "tipbox-followup/1",
                        form_language: lang.tag(),
                        facts: &Facts::default(),
                        attachments: &attachments,
                    },
                )
                .expect("facts serialize");
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
            // Sized up front so that growing it leaves no stray plaintext copies behind.
            let mut facts_json = Zeroizing::new(Vec::with_capacity(64 * 1024));
            serde_json::to_writer_pretty(
                &mut *facts_json,
                &SealedFacts {
                    format: "tipbox-facts/1",
                    form_language: lang.tag(),
                    facts: &facts,
                    attachments: &attachments,
                },
            )
            .expect("facts serialize");
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
        let tip = NewTip {
            id: random_id(),
            received_at: coarsen(now(), self.intake.time_granularity),
            receipt_hash,
            reply_recipient,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_coarsened_down() {
        assert_eq!(coarsen(7199, 3600), 3600);
        assert_eq!(coarsen(7200, 3600), 7200);
        assert_eq!(coarsen(12345, 1), 12345);
    }

    #[test]
    fn incident_names_round_trip() {
        for t in IncidentType::ALL {
            assert_eq!(IncidentType::from_name(t.name()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.name());
        }
        assert_eq!(IncidentType::from_name("alien_abduction"), None);
    }
}
