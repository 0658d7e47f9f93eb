//! Checking what an item holds against the commitment made when it was received
//! (`crate::commitment`): decrypting with the analyst's identity while the commitment is
//! recomputed, and the verdict. `pull` refuses an item that fails; `rekey` re-seals none whose
//! content is not what was received.
//!
//! Which key commits to an item: a report or facts item, a note and a reply carry their own in
//! their JSON ("self-keyed"); an attachment (or an older tip's separate message) is committed to
//! with the key of the report or facts item of its submission, which lists it. So a tip's
//! reports and facts are opened first, and each lends its key only once it has passed its own
//! check.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::bail;
use zeroize::Zeroizing;

use crate::api;
use crate::commitment::{
    COMMITMENT_BYTES, CommitmentKey, Committer, FACTS_FIELD, SealedCommitments, WRITING_FIELD,
};

/// The largest facts item, note or reply this client decrypts into memory.
const MAX_SELF_KEYED_BYTES: u64 = 16 * 1024 * 1024;

/// An item's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Check {
    /// It holds what was received.
    Verified,
    /// Received before commitments existed: nothing to check it against.
    Unchecked,
    /// It has a commitment, but no key to check it with was found.
    Unverifiable(String),
    /// Its content is not what was received, or its commitment was removed.
    Mismatch(String),
}

impl Check {
    /// Whether a reader may take the content as what was received (or, for an item from before
    /// commitments, as what is stored).
    pub fn passed(&self) -> bool {
        matches!(self, Check::Verified | Check::Unchecked)
    }
}

/// The verdict for `item`, given the commitment recomputed over what it decrypted to
/// (`computed`, if a key was known) and whether a key claims it (`expected`: its submission's
/// facts list it, or its own JSON carries one).
pub(super) fn check(
    item: &api::Item,
    computed: Option<&[u8; COMMITMENT_BYTES]>,
    expected: bool,
) -> Check {
    match (&item.commitment, computed) {
        (Some(stored), Some(computed)) if crate::commitment::matches(stored, computed) => {
            Check::Verified
        }
        (Some(_), Some(_)) => Check::Mismatch(
            "its content is not what was received: it does not match the commitment made at \
             intake"
                .into(),
        ),
        (Some(_), None) => Check::Unverifiable(
            "no key to check its commitment with: its submission's facts do not list it, or did \
             not open or pass their own check"
                .into(),
        ),
        (None, _) if expected => Check::Mismatch(
            "its commitment was removed from the server (its submission committed to it when it \
             was received)"
                .into(),
        ),
        (None, _) => Check::Unchecked,
    }
}

/// Whether an item of this kind carries its own commitment key.
pub(super) fn is_self_keyed(kind: &str) -> bool {
    crate::report::carries_facts(kind) || matches!(kind, "note" | "reply")
}

/// The commitment key a self-keyed item carries in its own (decrypted) JSON.
pub(super) fn own_key(kind: &str, plaintext: &[u8]) -> Option<CommitmentKey> {
    let json: serde_json::Value = serde_json::from_slice(plaintext).ok()?;
    match kind {
        "facts" | "report" => {
            serde_json::from_value::<SealedCommitments>(json.get(FACTS_FIELD)?.clone())
                .ok()?
                .key()
        }
        "note" | "reply" => CommitmentKey::from_hex(json.get(WRITING_FIELD)?.as_str()?),
        _ => None,
    }
}

/// The commitment keys of one tip's submissions, by item, learned from its facts.
#[derive(Default)]
pub(super) struct TipKeys {
    by_item: HashMap<String, Arc<CommitmentKey>>,
}

impl TipKeys {
    /// Learns the key of a decrypted report or facts item, for every item it lists. Call it only
    /// for one that passed its own check.
    pub fn learn(&mut self, facts: &[u8]) {
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(facts) else {
            return;
        };
        let Some(sealed) = json
            .get(FACTS_FIELD)
            .and_then(|v| serde_json::from_value::<SealedCommitments>(v.clone()).ok())
        else {
            return;
        };
        let Some(key) = sealed.key() else { return };
        let key = Arc::new(key);
        for item in sealed.items {
            self.by_item.entry(item).or_insert_with(|| Arc::clone(&key));
        }
    }

    /// The key a facts item of this tip claims for `item_id`.
    pub fn key_for(&self, item_id: &str) -> Option<&Arc<CommitmentKey>> {
        self.by_item.get(item_id)
    }
}

/// What opening an item gave.
pub(super) enum Opened {
    /// Decrypted; the commitment recomputed over the plaintext if a committer was given.
    Decrypted(Option<[u8; COMMITMENT_BYTES]>),
    /// None of the identities opens it.
    NotYours,
}

/// Decrypts the age file at `sealed` with `identities` into `out`, feeding the plaintext to
/// `committer` too. age authenticates every chunk: a damaged or truncated file is an error.
pub(super) fn open_into(
    sealed: &Path,
    identities: &[Box<dyn age::Identity>],
    out: &mut dyn Write,
    committer: Option<Committer>,
) -> anyhow::Result<Opened> {
    let file = std::io::BufReader::new(std::fs::File::open(sealed)?);
    open_from(file, identities, out, committer)
}

/// Decrypts an age file held in memory (the local desk's) into memory that is cleared when
/// dropped, sized once from the sealed file (the plaintext is never longer) so that it never
/// moves. `None`: none of the identities opens it.
pub(super) fn open_in_memory(
    sealed: &[u8],
    identities: &[Box<dyn age::Identity>],
) -> anyhow::Result<Option<Zeroizing<Vec<u8>>>> {
    let mut plaintext = Zeroizing::new(Vec::with_capacity(sealed.len()));
    let mut bounded = Bounded(&mut plaintext);
    match open_from(sealed, identities, &mut bounded, None)? {
        Opened::Decrypted(_) => Ok(Some(plaintext)),
        Opened::NotYours => Ok(None),
    }
}

fn open_from(
    sealed: impl std::io::BufRead,
    identities: &[Box<dyn age::Identity>],
    out: &mut dyn Write,
    mut committer: Option<Committer>,
) -> anyhow::Result<Opened> {
    let decryptor = age::Decryptor::new_buffered(sealed)?;
    let mut reader =
        match decryptor.decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity)) {
            Ok(reader) => reader,
            Err(age::DecryptError::NoMatchingKeys) => return Ok(Opened::NotYours),
            Err(error) => bail!("it does not open: {error}"),
        };
    let mut buffer = Zeroizing::new(vec![0u8; 64 * 1024]);
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        if let Some(committer) = &mut committer {
            committer.update(&buffer[..n]);
        }
        out.write_all(&buffer[..n])?;
    }
    Ok(Opened::Decrypted(committer.map(Committer::finish)))
}

/// Decrypts a self-keyed item (a facts item, a note, a reply) into memory that is cleared when
/// dropped, sized once from the sealed file (the plaintext is never longer) so that it never
/// moves.
pub(super) fn open_small(
    sealed: &Path,
    identities: &[Box<dyn age::Identity>],
) -> anyhow::Result<Option<Zeroizing<Vec<u8>>>> {
    let length = std::fs::metadata(sealed)?.len();
    if length > MAX_SELF_KEYED_BYTES {
        bail!("larger than such an item can be ({length} bytes)");
    }
    let mut plaintext = Zeroizing::new(Vec::with_capacity(length as usize));
    let mut bounded = Bounded(&mut plaintext);
    match open_into(sealed, identities, &mut bounded, None)? {
        Opened::Decrypted(_) => Ok(Some(plaintext)),
        Opened::NotYours => Ok(None),
    }
}

/// A writer into a vector that refuses to grow it (a reallocation would leave a copy behind).
struct Bounded<'a>(&'a mut Vec<u8>);

impl Write for Bounded<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + data.len() > self.0.capacity() {
            return Err(std::io::Error::other(
                "the plaintext is longer than its ciphertext",
            ));
        }
        self.0.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The verdict for a self-keyed item decrypted to `plaintext`.
pub(super) fn check_self_keyed(item: &api::Item, plaintext: &[u8]) -> Check {
    let key = own_key(&item.kind, plaintext);
    let computed = key.as_ref().map(|k| k.commit(&item.id, plaintext));
    check(item, computed.as_ref(), key.is_some())
}

/// How a re-keyed item is described: by whom and when.
pub(super) fn replaced(item: &api::Item) -> Option<String> {
    let by = item
        .replaced_by
        .as_deref()
        .map(crate::keyring::printable)
        .unwrap_or_else(|| "someone".into());
    item.replaced_at
        .map(|at| format!("re-keyed by {by} at {at} (rounded)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(kind: &str, commitment: Option<[u8; 32]>) -> api::Item {
        api::Item {
            added_at: None,
            commitment: commitment.map(hex::encode),
            id: "a".repeat(32),
            key_set: 1,
            kind: kind.into(),
            replaced_at: None,
            replaced_by: None,
            size: 0,
        }
    }

    #[test]
    fn verdicts() {
        let key = CommitmentKey::generate();
        let id = "a".repeat(32);
        let right = key.commit(&id, b"what was received");
        let wrong = key.commit(&id, b"what was forged!!");
        assert_eq!(
            check(&item("message", Some(right)), Some(&right), true),
            Check::Verified
        );
        assert!(matches!(
            check(&item("message", Some(right)), Some(&wrong), true),
            Check::Mismatch(_)
        ));
        assert!(matches!(
            check(&item("message", Some(right)), None, false),
            Check::Unverifiable(_)
        ));
        assert!(matches!(
            check(&item("message", None), Some(&right), true),
            Check::Mismatch(_)
        ));
        assert_eq!(check(&item("message", None), None, false), Check::Unchecked);
    }

    #[test]
    fn self_keyed_items_carry_their_key() {
        let key = CommitmentKey::generate();
        let id = "a".repeat(32);
        let note = serde_json::to_vec(&serde_json::json!({
            "text": "a note", WRITING_FIELD: key.to_hex().as_str(),
        }))
        .unwrap();
        let commitment = key.commit(&id, &note);
        assert_eq!(
            check_self_keyed(&item("note", Some(commitment)), &note),
            Check::Verified
        );
        // A note forged with a key of its own does not match the stored commitment.
        let forger = CommitmentKey::generate();
        let forged = serde_json::to_vec(&serde_json::json!({
            "text": "a forged note", WRITING_FIELD: forger.to_hex().as_str(),
        }))
        .unwrap();
        assert!(matches!(
            check_self_keyed(&item("note", Some(commitment)), &forged),
            Check::Mismatch(_)
        ));
        // Facts lend their key to the items they list.
        let facts = serde_json::to_vec(&serde_json::json!({
            FACTS_FIELD: SealedCommitments::new(&key, vec!["b".repeat(32)]),
        }))
        .unwrap();
        let mut keys = TipKeys::default();
        keys.learn(&facts);
        assert!(keys.key_for(&"b".repeat(32)).is_some());
        assert!(keys.key_for(&id).is_none());
    }
}
