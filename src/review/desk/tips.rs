//! The tips as the local desk shows them: fetched sealed from the analyst API, opened in this
//! process's memory with the analyst's identity, checked against the commitments made at
//! intake (`super::super::verify`), and kept in memory only — the search index is this
//! memory. Notes and replies are sealed here too, before anything is sent.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use zeroize::Zeroizing;

use super::super::http::{Api, refused};
use super::super::keyset::{check_key_set, require_trusted};
use super::super::verify::{Check, TipKeys, check, check_self_keyed, is_self_keyed};
use crate::api;
use crate::commitment::CommitmentKey;
use crate::ids::{random_id, valid_id};
use crate::report::{REPORT, carries_facts, take_message};
use crate::writings;

/// The largest attachment the desk opens in memory.
pub const MAX_OPEN_BYTES: i64 = 512 * 1024 * 1024;

/// The analyst's identities live in a thread of their own (age identities are not `Send`):
/// what to open is sent there, the plaintext comes back.
pub struct Opener {
    jobs: std::sync::mpsc::Sender<Job>,
}

type Opened = anyhow::Result<Option<Zeroizing<Vec<u8>>>>;
type Job = (Vec<u8>, tokio::sync::oneshot::Sender<Opened>);

impl Opener {
    /// Reads the identities (asking for a passphrase on the terminal if one needs it) and
    /// starts the thread.
    pub fn start(identity_files: Vec<String>) -> anyhow::Result<Self> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let (ready, started) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("desk-identity".into())
            .spawn(move || {
                let identities = match super::super::read_identities(identity_files) {
                    Ok(identities) => {
                        let _ = ready.send(Ok(()));
                        identities
                    }
                    Err(error) => {
                        let _ = ready.send(Err(error));
                        return;
                    }
                };
                for (sealed, done) in queue {
                    let _ = done.send(super::super::verify::open_in_memory(&sealed, &identities));
                }
            })?;
        started.recv().context("the identity thread ended")??;
        Ok(Self { jobs })
    }

    /// The plaintext of an age file, or `None` if the identity does not open it.
    pub async fn open(&self, sealed: Vec<u8>) -> Opened {
        let (done, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send((sealed, done))
            .map_err(|_| anyhow::anyhow!("the identity thread ended"))?;
        answer.await?
    }
}

/// One opened item: its plaintext (cleared from memory when dropped) and its verdict.
pub struct OpenedItem {
    pub plaintext: Zeroizing<Vec<u8>>,
    pub check: Check,
}

impl OpenedItem {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.plaintext).into_owned()
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.plaintext).ok()
    }

    /// What an item of one of the source's sends says: its message (a `message` item, or a
    /// report's) and its facts as JSON (a `facts` item, or the rest of a report).
    pub fn send(&self, kind: &str) -> (Option<String>, Option<serde_json::Value>) {
        if kind == "message" {
            return (Some(self.text()), None);
        }
        let Some(mut json) = self.json() else {
            return (None, None);
        };
        let message = if kind == REPORT {
            take_message(&mut json).map(|m| m.as_str().to_owned())
        } else {
            None
        };
        (message, Some(json))
    }
}

/// What the desk holds: the opened small items (message, facts, notes, replies) by item id —
/// an item's content never changes, re-keying keeps it, its commitment proves it — and what
/// this analyst has read.
pub struct Memory {
    items: Mutex<HashMap<String, Arc<OpenedItem>>>,
    read: ReadMarks,
}

impl Memory {
    pub fn new(read: ReadMarks) -> Self {
        Self {
            items: Mutex::default(),
            read,
        }
    }

    fn cached(&self, id: &str) -> Option<Arc<OpenedItem>> {
        self.items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    fn keep(&self, id: &str, item: Arc<OpenedItem>) {
        self.items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned(), item);
    }

    /// Whether `tip` holds an item this analyst has not seen on its page (a new tip, or one the
    /// source added to, or someone replied to).
    pub fn is_unread(&self, tip: &api::Tip) -> bool {
        let seen = self.read.seen.lock().unwrap_or_else(|p| p.into_inner());
        tip.items.iter().any(|i| !seen.contains(&i.id))
    }

    /// Every item of `tip` has been shown on its page.
    pub fn mark_read(&self, tip: &api::Tip) -> anyhow::Result<()> {
        let mut seen = self.read.seen.lock().unwrap_or_else(|p| p.into_inner());
        let before = seen.len();
        seen.extend(tip.items.iter().map(|i| i.id.clone()));
        if seen.len() == before {
            return Ok(());
        }
        let mut ids: Vec<&String> = seen.iter().collect();
        ids.sort();
        let text: String = ids.into_iter().map(|id| format!("{id}\n")).collect();
        super::super::session::write_private(&self.read.path, text.as_bytes())
    }
}

/// What this analyst has read on this machine, per server: the ids of the items shown on a
/// tip's page (random ids, no content), in a private file of the client's directory, so that
/// "unread" survives the desk.
pub struct ReadMarks {
    path: std::path::PathBuf,
    seen: Mutex<HashSet<String>>,
}

impl ReadMarks {
    pub fn load(server: &str, username: &str) -> anyhow::Result<Self> {
        use sha2::Digest;
        // One file per server and analyst, named without either in clear.
        let name = hex::encode(&sha2::Sha256::digest(format!("{server}\n{username}"))[..8]);
        let path = super::super::session::client_dir()?.join(format!("read-{name}.txt"));
        let seen = match std::fs::read_to_string(&path) {
            Ok(text) => text
                .lines()
                .filter(|l| valid_id(l))
                .map(str::to_owned)
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashSet::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(Self {
            path,
            seen: Mutex::new(seen),
        })
    }
}

/// The desk's connection to the server and what it has opened.
pub struct Tips {
    pub api: Api,
    pub opener: Opener,
    pub memory: Memory,
}

/// Every tip of the queue, newest first (at most `limit`), as the API lists them.
pub async fn list(api: &Api, query: &str, limit: usize) -> anyhow::Result<Vec<api::Tip>> {
    let mut tips = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/tips?limit=200{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&before={c}"));
        }
        let page: api::TipPage = api.get_json(&path).await?;
        tips.extend(page.tips);
        match page.next {
            Some(next) if tips.len() < limit => cursor = Some(next),
            _ => break,
        }
    }
    tips.truncate(limit);
    for tip in &tips {
        if !valid_id(&tip.id) || tip.items.iter().any(|i| !valid_id(&i.id)) {
            bail!("the server sent a malformed id");
        }
    }
    Ok(tips)
}

impl Tips {
    /// The sealed bytes of an item.
    async fn fetch(&self, item: &api::Item) -> anyhow::Result<Vec<u8>> {
        if item.size > MAX_OPEN_BYTES {
            bail!("item {} is larger than the desk opens in memory", item.id);
        }
        Ok(self
            .api
            .get(&format!("/api/v1/items/{}/sealed", item.id))
            .await?
            .bytes()
            .await?
            .to_vec())
    }

    /// Opens `item` (from memory if opened before) and checks it: against the commitment key
    /// it carries itself (facts, notes, replies), or the one its submission's facts gave
    /// (`keys`; so facts are opened first).
    pub async fn open(&self, item: &api::Item, keys: &TipKeys) -> anyhow::Result<Arc<OpenedItem>> {
        let small = item.kind != "attachment";
        if small && let Some(opened) = self.memory.cached(&item.id) {
            return Ok(opened);
        }
        let sealed = self.fetch(item).await?;
        let plaintext = self
            .opener
            .open(sealed)
            .await
            .with_context(|| format!("item {}", item.id))?
            .ok_or_else(|| anyhow::anyhow!("item {} does not open with your identity", item.id))?;
        let verdict = if is_self_keyed(&item.kind) {
            check_self_keyed(item, &plaintext)
        } else {
            let key = keys.key_for(&item.id);
            let computed = key.map(|k| k.commit(&item.id, &plaintext));
            check(item, computed.as_ref(), key.is_some())
        };
        let opened = Arc::new(OpenedItem {
            plaintext,
            check: verdict,
        });
        if small {
            self.memory.keep(&item.id, Arc::clone(&opened));
        }
        Ok(opened)
    }

    /// The commitment keys a tip's reports and facts give (each opened and checked first).
    pub async fn keys(&self, tip: &api::Tip) -> anyhow::Result<TipKeys> {
        let mut keys = TipKeys::default();
        for item in tip.items.iter().filter(|i| carries_facts(&i.kind)) {
            let facts = self.open(item, &keys).await?;
            if facts.check.passed() {
                keys.learn(&facts.plaintext);
            }
        }
        Ok(keys)
    }

    /// The current key set, checked here and trusted by this analyst, ready to seal to.
    async fn recipients(&self) -> anyhow::Result<(i64, super::super::keyset::Recipients)> {
        let current: api::CurrentKeys = self.api.get_json("/api/v1/keys/current").await?;
        let Some(set) = current.key_set else {
            bail!("the server has no active reviewer key: nothing can be sealed");
        };
        let recipients = check_key_set(&set)?;
        require_trusted(&set)?;
        Ok((set.id, recipients))
    }

    /// Seals a note (`reply` false) or a reply here — the reviewers' copy to the current key
    /// set, checked and trusted; a reply's source copy to the tip's reply recipient — and
    /// sends only the ciphertext. Returns the new item's id.
    pub async fn write(&self, tip_id: &str, reply: bool, text: &str) -> anyhow::Result<String> {
        if text.trim().is_empty() || text.len() > writings::MAX_WRITING_BYTES {
            bail!("a note or reply is 1 byte to 32 KiB of text");
        }
        let (key_set, recipients) = self.recipients().await?;
        let id = random_id();
        let commitment_key = CommitmentKey::generate();
        let format = if reply {
            writings::REPLY_FORMAT
        } else {
            writings::NOTE_FORMAT
        };
        let json = writings::for_reviewers(format, self.api.username(), text, &commitment_key);
        let commitment = commitment_key.commit(&id, &json);
        let sealed = seal(
            recipients.iter().map(|r| r.as_ref() as &dyn age::Recipient),
            &json,
        )?;
        drop(json);
        let for_source = if reply {
            let tip: api::Tip = self.api.get_json(&format!("/api/v1/tips/{tip_id}")).await?;
            let recipient: age::x25519::Recipient = tip
                .reply_recipient
                .as_deref()
                .context("the server gives no reply recipient for this tip")?
                .parse()
                .map_err(|e: &str| anyhow::anyhow!("the tip's reply recipient: {e}"))?;
            let json = writings::for_source(text);
            Some(seal(
                std::iter::once(&recipient as &dyn age::Recipient),
                &json,
            )?)
        } else {
            None
        };
        use base64::Engine;
        let base64 = base64::engine::general_purpose::STANDARD;
        let (sealed, commitment) = (base64.encode(&sealed), hex::encode(commitment));
        let response = match for_source {
            Some(for_source) => {
                let body = api::SealedReply {
                    id,
                    key_set,
                    sealed,
                    commitment,
                    for_source: base64.encode(for_source),
                };
                let path = format!("/api/v1/tips/{tip_id}/replies/sealed");
                self.api
                    .send_json(reqwest::Method::POST, &path, &body)
                    .await?
            }
            None => {
                let body = api::SealedNote {
                    id,
                    key_set,
                    sealed,
                    commitment,
                };
                let path = format!("/api/v1/tips/{tip_id}/notes/sealed");
                self.api
                    .send_json(reqwest::Method::POST, &path, &body)
                    .await?
            }
        };
        if response.status() != reqwest::StatusCode::CREATED {
            return Err(refused(response).await);
        }
        let created: api::WritingCreated = serde_json::from_str(&response.text().await?)?;
        Ok(created.id)
    }
}

/// An age file of `plaintext` to `recipients`, in memory.
fn seal<'a>(
    recipients: impl Iterator<Item = &'a dyn age::Recipient>,
    plaintext: &[u8],
) -> anyhow::Result<Vec<u8>> {
    use std::io::Write;
    let encryptor = age::Encryptor::with_recipients(recipients)?;
    let mut out = Vec::with_capacity(plaintext.len() + 1024);
    let mut writer = encryptor.wrap_output(&mut out)?;
    writer.write_all(plaintext)?;
    writer.finish()?;
    Ok(out)
}
