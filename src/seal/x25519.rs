//! age's X25519 recipient — the `X25519` stanza of age v1, exactly as `age::x25519::Recipient`
//! writes it — with the two X25519 operations done by ring instead of curve25519-dalek.
//!
//! Sealing is most of a submission's CPU, and it is these two operations per reviewer key and
//! item (benches/README.md, "Instructions per tip"). ring's X25519 (fiat-crypto's field
//! arithmetic, with assembly where the CPU has ADX and BMI2) takes about half the instructions
//! of curve25519-dalek's portable one. Everything else is age's own: its HKDF and
//! ChaCha20-Poly1305 (`age_core::primitives`), its stanza type, and the header MAC and payload
//! that `age::Encryptor` writes around the stanzas. Any age identity opens what this seals
//! (tested below against `age::x25519::Identity`, and by the integration tests with the `age`
//! CLI).

use std::collections::HashSet;
use std::io;

use age_core::format::{FileKey, Stanza};
use age_core::primitives::{aead_encrypt, hkdf};
use age_core::secrecy::ExposeSecret;
use base64::Engine;
use base64::prelude::BASE64_STANDARD_NO_PAD;
use ring::agreement::{EphemeralPrivateKey, UnparsedPublicKey, X25519, agree_ephemeral};
use ring::rand::SystemRandom;

/// The stanza's tag and the HKDF label of age v1's X25519 recipient type.
const STANZA_TAG: &str = "X25519";
const WRAP_KEY_LABEL: &[u8] = b"age-encryption.org/v1/X25519";

/// A reviewer's `age1…` public key, sealed to with ring's X25519.
pub struct X25519Recipient {
    public_key: [u8; 32],
}

impl X25519Recipient {
    /// The recipient of an `age1…` key that age itself has parsed.
    pub fn new(recipient: &age::x25519::Recipient) -> Self {
        let (_, data) = bech32::decode(&recipient.to_string())
            .expect("age's own encoding of a recipient is valid bech32");
        let public_key = data
            .try_into()
            .expect("an age X25519 recipient is 32 bytes");
        Self { public_key }
    }
}

impl age::Recipient for X25519Recipient {
    /// A fresh ephemeral key per stanza; the file key wrapped under
    /// HKDF-SHA256(salt = ephemeral public key ‖ recipient, ikm = shared secret), as age does.
    fn wrap_file_key(
        &self,
        file_key: &FileKey,
    ) -> Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
        let failed = |what: &str| {
            age::EncryptError::Io(io::Error::other(format!("X25519 sealing failed: {what}")))
        };
        let ephemeral = EphemeralPrivateKey::generate(&X25519, &SystemRandom::new())
            .map_err(|_| failed("no randomness for an ephemeral key"))?;
        let ephemeral_public = ephemeral
            .compute_public_key()
            .map_err(|_| failed("ephemeral public key"))?;
        let mut salt = [0u8; 64];
        salt[..32].copy_from_slice(ephemeral_public.as_ref());
        salt[32..].copy_from_slice(&self.public_key);
        // ring refuses an all-zero shared secret (a recipient key of small order), where age
        // would stop the process: either way nothing is sealed to such a key.
        let wrap_key = agree_ephemeral(
            ephemeral,
            &UnparsedPublicKey::new(&X25519, &self.public_key),
            |shared| hkdf(&salt, WRAP_KEY_LABEL, shared),
        )
        .map_err(|_| failed("the recipient key is not a usable X25519 key"))?;
        let body = aead_encrypt(&wrap_key, file_key.expose_secret());
        Ok((
            vec![Stanza {
                tag: STANZA_TAG.to_owned(),
                args: vec![BASE64_STANDARD_NO_PAD.encode(ephemeral_public.as_ref())],
                body,
            }],
            HashSet::new(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    fn seal(recipients: &[&dyn age::Recipient], plaintext: &[u8]) -> Vec<u8> {
        let encryptor = age::Encryptor::with_recipients(recipients.iter().copied()).unwrap();
        let mut sealed = Vec::new();
        let mut writer = encryptor.wrap_output(&mut sealed).unwrap();
        writer.write_all(plaintext).unwrap();
        writer.finish().unwrap();
        sealed
    }

    fn open(identity: &age::x25519::Identity, sealed: &[u8]) -> Option<Vec<u8>> {
        let decryptor = age::Decryptor::new(sealed).ok()?;
        let mut reader = decryptor
            .decrypt(std::iter::once(identity as &dyn age::Identity))
            .ok()?;
        let mut plaintext = Vec::new();
        reader.read_to_end(&mut plaintext).ok()?;
        Some(plaintext)
    }

    /// The header's X25519 stanza lines (`-> X25519 <epk>`), as age writes them (age adds a
    /// random "grease" stanza of its own to every header).
    fn stanza_lines(sealed: &[u8]) -> Vec<String> {
        String::from_utf8_lossy(sealed)
            .lines()
            .take_while(|line| !line.starts_with("---"))
            .filter(|line| line.starts_with("-> X25519 "))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn every_reviewer_opens_what_is_sealed_to_the_set_with_age_itself() {
        let identities: Vec<_> = (0..3).map(|_| age::x25519::Identity::generate()).collect();
        let ours: Vec<_> = identities
            .iter()
            .map(|i| X25519Recipient::new(&i.to_public()))
            .collect();
        let recipients: Vec<&dyn age::Recipient> =
            ours.iter().map(|r| r as &dyn age::Recipient).collect();
        for plaintext in [&b""[..], b"a tip", &[7u8; 200_000]] {
            let sealed = seal(&recipients, plaintext);
            for identity in &identities {
                assert_eq!(open(identity, &sealed).as_deref(), Some(plaintext));
            }
            assert!(open(&age::x25519::Identity::generate(), &sealed).is_none());
        }
    }

    #[test]
    fn stanzas_have_the_shape_of_ages_own() {
        let identity = age::x25519::Identity::generate();
        let theirs = seal(&[&identity.to_public()], b"x");
        let ours = seal(&[&X25519Recipient::new(&identity.to_public())], b"x");
        let (theirs, ours) = (stanza_lines(&theirs), stanza_lines(&ours));
        assert_eq!(ours.len(), 1);
        let shape = |line: &str| {
            let words: Vec<&str> = line.split(' ').collect();
            (words.len(), words[1].to_owned(), words[2].len())
        };
        // `-> X25519 <43 characters of unpadded base64: a 32-byte ephemeral key>`
        assert_eq!(shape(&ours[0]), shape(&theirs[0]));
        assert_eq!(shape(&ours[0]), (3, "X25519".to_owned(), 43));
        assert_ne!(ours, theirs, "a fresh ephemeral key every time");
    }

    #[test]
    fn the_recipient_key_is_the_one_age_parsed() {
        let identity = age::x25519::Identity::generate();
        let ours = X25519Recipient::new(&identity.to_public());
        let encoded =
            bech32::encode::<bech32::Bech32>(bech32::Hrp::parse("age").unwrap(), &ours.public_key)
                .unwrap();
        assert_eq!(encoded, identity.to_public().to_string());
    }
}
