//! Item commitments: what lets every later reader check that a sealed item still holds what was
//! received, after any number of re-keyings, without giving the server anything that confirms
//! a guessed plaintext.
//!
//! At intake the server draws a random 32-byte key for each submission (the first one and each
//! addition) and seals it inside that submission's facts item, next to the ids of the
//! submission's items; a note or a reply carries its own key inside its own sealed JSON. For
//! every item it stores `HMAC-SHA256(key, "tipbox item commitment v1" || item id || plaintext)`
//! in clear (`items.commitment`), and never changes it afterwards: a re-keying swaps the
//! ciphertext, not the commitment.
//!
//! A reader who opens the facts learns the key, recomputes the commitment of each item it
//! decrypts and compares. A replacement with other content does not match unless its author
//! could also rewrite the stored commitment (a database writer), and the key is sealed, so a
//! seized database cannot test a guess of an item's content against it. The server itself
//! cannot check a fresh encryption: it never holds the key or the plaintext.
//!
//! The item id in the input binds each commitment to its item (a commitment copied onto another
//! item does not match); ids are fixed-length, so the concatenation is unambiguous.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Bytes of a commitment (an HMAC-SHA256 tag).
pub const COMMITMENT_BYTES: usize = 32;

/// What every commitment's input starts with, so that this HMAC is never confused with another
/// use of the same key.
const DOMAIN: &[u8] = b"tipbox item commitment v1";

/// The key of one submission's (or one note's or reply's) commitments. Cleared when dropped.
pub struct CommitmentKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for CommitmentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommitmentKey(…)")
    }
}

impl CommitmentKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut()).expect("the operating system's random source works");
        Self(key)
    }

    /// The key as it is sealed inside the JSON it belongs to (64 lower-case hex digits).
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(&self.0[..]))
    }

    /// A key read back from decrypted JSON; `None` unless it is exactly 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut key = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text, key.as_mut()).ok()?;
        Some(Self(key))
    }

    /// Starts the commitment of item `item_id`; feed it the item's plaintext.
    pub fn committer(&self, item_id: &str) -> Committer {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0[..]).expect("HMAC takes any key length");
        mac.update(DOMAIN);
        mac.update(item_id.as_bytes());
        Committer(mac)
    }

    /// The commitment of item `item_id` holding `plaintext`.
    pub fn commit(&self, item_id: &str, plaintext: &[u8]) -> [u8; COMMITMENT_BYTES] {
        let mut committer = self.committer(item_id);
        committer.update(plaintext);
        committer.finish()
    }
}

/// A commitment being computed over a plaintext that arrives in pieces.
pub struct Committer(Hmac<Sha256>);

impl Committer {
    pub fn update(&mut self, plaintext: &[u8]) {
        self.0.update(plaintext);
    }

    pub fn finish(self) -> [u8; COMMITMENT_BYTES] {
        self.0.finalize().into_bytes().into()
    }
}

/// The name of the construction above, as the sealed JSON states it.
pub const SCHEME: &str = "tipbox-item-commitment/1";

/// The field of a submission's facts JSON that holds [`SealedCommitments`].
pub const FACTS_FIELD: &str = "item_commitments";

/// The field of a note's or reply's JSON that holds its own key (hex); its one item is itself.
pub const WRITING_FIELD: &str = "commitment_key";

/// What a submission's facts item carries (in [`FACTS_FIELD`]): the key, and the ids of every
/// item of the submission that it commits to, the facts item itself included.
#[derive(Serialize, Deserialize)]
pub struct SealedCommitments {
    pub scheme: String,
    pub key: Zeroizing<String>,
    pub items: Vec<String>,
}

impl SealedCommitments {
    pub fn new(key: &CommitmentKey, items: Vec<String>) -> Self {
        Self {
            scheme: SCHEME.to_owned(),
            key: key.to_hex(),
            items,
        }
    }

    /// The key, if the scheme is this one and the key well-formed.
    pub fn key(&self) -> Option<CommitmentKey> {
        (self.scheme == SCHEME)
            .then(|| CommitmentKey::from_hex(&self.key))
            .flatten()
    }
}

/// Whether a stored commitment (as the API shows it, hex) is `computed`, compared in constant
/// time. A malformed one matches nothing.
pub fn matches(stored_hex: &str, computed: &[u8; COMMITMENT_BYTES]) -> bool {
    let mut stored = [0u8; COMMITMENT_BYTES];
    hex::decode_to_slice(stored_hex, &mut stored).is_ok()
        && subtle::ConstantTimeEq::ct_eq(&stored[..], &computed[..]).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commitment_binds_key_item_and_content() {
        let key = CommitmentKey::generate();
        let item = "0".repeat(32);
        let other = "1".repeat(32);
        let commitment = key.commit(&item, b"the tip");
        // In pieces, the same.
        let mut pieces = key.committer(&item);
        pieces.update(b"the ");
        pieces.update(b"tip");
        assert_eq!(pieces.finish(), commitment);
        assert!(matches(&hex::encode(commitment), &commitment));
        assert_ne!(key.commit(&item, b"the tiq"), commitment);
        assert_ne!(key.commit(&other, b"the tip"), commitment);
        assert_ne!(
            CommitmentKey::generate().commit(&item, b"the tip"),
            commitment
        );
        // Read back from its hex, the key commits alike.
        let again = CommitmentKey::from_hex(&key.to_hex()).unwrap();
        assert_eq!(again.commit(&item, b"the tip"), commitment);
        for bad in ["", "00", &"g".repeat(64), &"0".repeat(66)] {
            assert!(CommitmentKey::from_hex(bad).is_none(), "{bad}");
            assert!(!matches(bad, &commitment), "{bad}");
        }
    }

    /// The construction, written out with the `hmac` crate directly: a client in another
    /// language can check items from this definition alone.
    #[test]
    fn the_definition() {
        let key = CommitmentKey::from_hex(&"ab".repeat(32)).unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&[0xab; 32]).unwrap();
        mac.update(b"tipbox item commitment v1");
        mac.update("c".repeat(32).as_bytes());
        mac.update(b"plaintext");
        let expected: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(key.commit(&"c".repeat(32), b"plaintext"), expected);
    }
}
