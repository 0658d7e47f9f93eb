//! Re-keying sealed items, without the server ever holding a key that opens them.
//!
//! An age file is a header — the file key wrapped once per recipient ("stanzas"), closed by a
//! MAC over the header keyed by the file key — followed by the payload: a nonce and the
//! content, encrypted under a key derived from the file key and that nonce. So:
//!
//! - For a **retired** key it suffices to re-wrap the same file key to the current recipients
//!   and write a new header; the payload stays byte for byte as it is. The analyst's client
//!   (`tipbox review rekey`) does that with an identity that opens the old header; the server
//!   only checks the new header and swaps it in.
//! - A **revoked** key's holder may have kept a copy of the old header, and with it the file
//!   key: a new header would not protect a later copy of the payload. Those items are decrypted
//!   and encrypted afresh (new file key, new nonce) on the analyst's machine.
//!
//! Stanzas are parsed and written with age-core's own encoding; the file key is unwrapped and
//! wrapped by age's `Identity` and `Recipient` implementations (x25519, SSH, plugins). The one
//! thing age does not expose is writing a header, so the MAC is computed here as the age
//! specification defines it (HMAC-SHA256 under HKDF-SHA256(file key, info "header")), with
//! age-core's HKDF — and every header written here is then verified by age's own decryptor
//! before it leaves this module.

use std::collections::HashSet;

use age::secrecy::ExposeSecret;
use age_core::format::{FileKey, Stanza};
use base64::Engine;
use base64::prelude::BASE64_STANDARD_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The largest header tipbox accepts or writes (a few hundred bytes per recipient in practice).
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The payload starts with this many bytes of nonce.
pub const NONCE_BYTES: usize = 16;

const INTRO: &[u8] = b"age-encryption.org/v1\n";
const MAC_TAG: &[u8] = b"---";
/// `--- ` + 43 characters of unpadded base64 (32 bytes) + newline.
const MAC_LINE_BYTES: usize = 4 + 43 + 1;
const SCRYPT_TAG: &str = "scrypt";

#[derive(Debug, thiserror::Error)]
pub enum RekeyError {
    #[error("not an age v1 file")]
    NotAgeV1,
    #[error("the age header is malformed or incomplete")]
    Malformed,
    #[error("the age header is larger than {MAX_HEADER_BYTES} bytes")]
    TooLarge,
    #[error("sealed with a passphrase, not to reviewer keys")]
    Passphrase,
    #[error("none of your identities opens this item")]
    NotYours,
    #[error("could not unwrap the file key: {0}")]
    Unwrap(age::DecryptError),
    #[error(
        "the header's MAC does not match its file key: the item is damaged or was tampered with"
    )]
    BadMac,
    #[error("could not wrap the file key to the current keys: {0}")]
    Wrap(age::EncryptError),
    #[error("the current keys cannot be combined in one age file (their plugins' labels differ)")]
    IncompatibleRecipients,
    #[error("age does not accept the file: {0}")]
    Rejected(age::DecryptError),
}

/// The header at the start of a sealed item.
pub struct Header {
    /// Its exact bytes, from `age-encryption.org/v1` through the MAC line.
    bytes: Vec<u8>,
    stanzas: Vec<Stanza>,
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Header")
            .field("bytes", &self.bytes.len())
            .field("stanzas", &self.stanzas.len())
            .finish()
    }
}

impl Header {
    /// Parses the header at the start of `file` (a whole age file, or any prefix of one that
    /// holds the whole header).
    pub fn parse(file: &[u8]) -> Result<Self, RekeyError> {
        let Some(mut rest) = file.strip_prefix(INTRO) else {
            return Err(if file.starts_with(b"age-encryption.org/") {
                RekeyError::NotAgeV1
            } else {
                RekeyError::Malformed
            });
        };
        let mut stanzas = Vec::new();
        loop {
            let at = file.len() - rest.len();
            if at > MAX_HEADER_BYTES {
                return Err(RekeyError::TooLarge);
            }
            if rest.starts_with(MAC_TAG) {
                let line = rest.get(..MAC_LINE_BYTES).ok_or(RekeyError::Malformed)?;
                let mac_ok = line[3] == b' '
                    && line[MAC_LINE_BYTES - 1] == b'\n'
                    && BASE64_STANDARD_NO_PAD
                        .decode(&line[4..MAC_LINE_BYTES - 1])
                        .is_ok_and(|mac| mac.len() == 32);
                if !mac_ok || stanzas.is_empty() {
                    return Err(RekeyError::Malformed);
                }
                let end = at + MAC_LINE_BYTES;
                if end > MAX_HEADER_BYTES {
                    return Err(RekeyError::TooLarge);
                }
                return Ok(Self {
                    bytes: file[..end].to_vec(),
                    stanzas,
                });
            }
            match age_core::format::read::legacy_age_stanza(rest) {
                Ok((after, stanza)) => {
                    stanzas.push(Stanza::from(stanza));
                    rest = after;
                }
                Err(_) => return Err(RekeyError::Malformed),
            }
        }
    }

    /// The header's length in bytes: where the payload (its nonce first) starts.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether the file was sealed with a passphrase rather than to recipients.
    pub fn has_passphrase(&self) -> bool {
        self.stanzas.iter().any(|s| s.tag == SCRYPT_TAG)
    }

    /// Whether the header wraps its file key to exactly `expected`, as far as a header can
    /// show it: one stanza per recipient, of the recipient's type, and for SSH keys with the
    /// key's own tag; age's "grease" stanzas (random, carrying no key) are ignored. An X25519
    /// stanza does not name its recipient (age is anonymous by design), so for those only their
    /// number is checked: a header with one more recipient than the key set — a key slipped in
    /// — never fits.
    pub fn fits(&self, expected: &[crate::keyring::Recipient]) -> Result<(), String> {
        use crate::keyring::KeyKind;
        let mut wanted: Vec<(&str, Option<String>)> = Vec::new();
        let mut plugins = 0usize;
        for recipient in expected {
            match &recipient.kind {
                KeyKind::X25519 => wanted.push(("X25519", None)),
                KeyKind::SshEd25519 => wanted.push(("ssh-ed25519", ssh_tag(&recipient.text))),
                KeyKind::SshRsa => wanted.push(("ssh-rsa", ssh_tag(&recipient.text))),
                KeyKind::Plugin(_) => plugins += 1,
            }
        }
        let mut other = 0usize;
        for stanza in self.stanzas.iter().filter(|s| !s.tag.ends_with("-grease")) {
            let tag = stanza.tag.as_str();
            if matches!(tag, "X25519" | "ssh-ed25519" | "ssh-rsa" | SCRYPT_TAG) {
                let arg = stanza.args.first().cloned();
                let at = wanted
                    .iter()
                    .position(|(t, key_tag)| *t == tag && (key_tag.is_none() || *key_tag == arg))
                    .ok_or_else(|| format!("a {tag} stanza for no key of the current key set"))?;
                wanted.swap_remove(at);
            } else {
                other += 1;
            }
        }
        if !wanted.is_empty() {
            return Err(format!(
                "{} key(s) of the current key set have no stanza",
                wanted.len()
            ));
        }
        if other != plugins {
            return Err(format!(
                "{other} plugin stanza(s) for {plugins} plugin key(s) of the current key set"
            ));
        }
        Ok(())
    }

    /// SHA-256 of the header's bytes (hex): names exactly this header, so that a re-keyed
    /// header replaces only the one it was made from.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(&self.bytes))
    }
}

/// The tag age's SSH recipients write in their stanzas: the first 4 bytes of SHA-256 of the
/// key's wire encoding, unpadded base64 (age's `ssh_tag`).
fn ssh_tag(recipient: &str) -> Option<String> {
    use base64::prelude::BASE64_STANDARD;
    let wire = BASE64_STANDARD
        .decode(recipient.split_whitespace().nth(1)?)
        .ok()?;
    Some(BASE64_STANDARD_NO_PAD.encode(&Sha256::digest(&wire)[..4]))
}

/// The server's check of a header an analyst sends in place of an item's header: a single
/// well-formed age v1 header to recipients (no passphrase, nothing after it), within the size
/// limit, that age itself parses when `nonce` (the item's, unchanged) follows it.
pub fn check_new_header(header: &[u8], nonce: &[u8]) -> Result<Header, RekeyError> {
    let parsed = Header::parse(header)?;
    if parsed.len() != header.len() {
        return Err(RekeyError::Malformed);
    }
    let mut probe = Vec::with_capacity(header.len() + nonce.len());
    probe.extend_from_slice(header);
    probe.extend_from_slice(nonce);
    check_file_start(&probe)?;
    Ok(parsed)
}

/// The server's check of the start of a whole age file (its header and nonce at least): a
/// well-formed age v1 header to recipients, within the size limit, followed by a full nonce,
/// that age itself accepts.
pub fn check_file_start(file_start: &[u8]) -> Result<Header, RekeyError> {
    let header = Header::parse(file_start)?;
    if header.has_passphrase() {
        return Err(RekeyError::Passphrase);
    }
    if file_start.len() < header.len() + NONCE_BYTES {
        return Err(RekeyError::Malformed);
    }
    age::Decryptor::new_buffered(file_start).map_err(RekeyError::Rejected)?;
    Ok(header)
}

/// Re-wraps `old`'s file key, opened with one of `identities`, to `recipients`, and returns the
/// new header. The payload that follows `old` is not needed and stays as it is.
pub fn rewrap_header(
    old: &Header,
    identities: &[Box<dyn age::Identity>],
    recipients: &[Box<dyn age::Recipient + Send + Sync>],
) -> Result<Vec<u8>, RekeyError> {
    if old.has_passphrase() {
        return Err(RekeyError::Passphrase);
    }
    let file_key = identities
        .iter()
        .find_map(|identity| identity.unwrap_stanzas(&old.stanzas))
        .ok_or(RekeyError::NotYours)?
        .map_err(RekeyError::Unwrap)?;
    // The key must be the one this header was made with (age checks the header's MAC): a
    // header whose stanzas were swapped would otherwise hand over some other key.
    verify_mac(old.as_bytes(), &file_key)?;

    // As age's own encryptor: every recipient must agree on its labels.
    let mut stanzas = Vec::new();
    let mut labels: Option<HashSet<String>> = None;
    for recipient in recipients {
        let (mut wrapped, their_labels) = recipient
            .wrap_file_key(&file_key)
            .map_err(RekeyError::Wrap)?;
        match &labels {
            Some(ours) if *ours != their_labels => return Err(RekeyError::IncompatibleRecipients),
            Some(_) => {}
            None if their_labels
                .iter()
                .all(age_core::format::is_arbitrary_string) =>
            {
                labels = Some(their_labels)
            }
            None => return Err(RekeyError::IncompatibleRecipients),
        }
        stanzas.append(&mut wrapped);
    }
    if stanzas.is_empty() {
        return Err(RekeyError::Wrap(age::EncryptError::MissingRecipients));
    }
    // age adds a random stanza to every header it writes, so that parsers keep skipping
    // stanzas they do not know; so do we.
    stanzas.push(age_core::format::grease_the_joint());

    let mut header = INTRO.to_vec();
    for stanza in &stanzas {
        header = cookie_factory::gen_simple(
            age_core::format::write::age_stanza(&stanza.tag, &stanza.args, &stanza.body),
            header,
        )
        .map_err(|_| RekeyError::Malformed)?;
    }
    header.extend_from_slice(MAC_TAG);
    let mac = header_mac(&file_key, &header);
    header.push(b' ');
    header.extend_from_slice(BASE64_STANDARD_NO_PAD.encode(mac).as_bytes());
    header.push(b'\n');
    if header.len() > MAX_HEADER_BYTES {
        return Err(RekeyError::TooLarge);
    }
    // Only what age itself accepts leaves here.
    verify_mac(&header, &file_key)?;
    Ok(header)
}

/// HMAC-SHA256 of the header up to and including `---`, under HKDF-SHA256(file key, "header").
fn header_mac(file_key: &FileKey, header_before_mac: &[u8]) -> [u8; 32] {
    let key = Zeroizing::new(age_core::primitives::hkdf(
        &[],
        b"header",
        file_key.expose_secret(),
    ));
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_ref()).expect("HMAC takes any key length");
    mac.update(header_before_mac);
    mac.finalize().into_bytes().into()
}

/// Checks with age's own decryptor that `header`'s MAC belongs to `file_key`.
fn verify_mac(header: &[u8], file_key: &FileKey) -> Result<(), RekeyError> {
    // age reads the payload's nonce before it checks the header; the MAC does not cover the
    // nonce (only the payload key depends on it, and the payload is never read here).
    let mut probe = Vec::with_capacity(header.len() + NONCE_BYTES);
    probe.extend_from_slice(header);
    probe.extend_from_slice(&[0; NONCE_BYTES]);
    let decryptor = age::Decryptor::new_buffered(&probe[..]).map_err(RekeyError::Rejected)?;
    match decryptor.decrypt(std::iter::once(
        &KnownFileKey(file_key) as &dyn age::Identity
    )) {
        Ok(_) => Ok(()),
        Err(age::DecryptError::InvalidMac) => Err(RekeyError::BadMac),
        Err(error) => Err(RekeyError::Rejected(error)),
    }
}

/// An "identity" that already holds the file key: lets age's decryptor check a header's MAC.
struct KnownFileKey<'a>(&'a FileKey);

impl age::Identity for KnownFileKey<'_> {
    fn unwrap_stanza(&self, _: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        Some(Ok(FileKey::init_with_mut(|key| {
            key.copy_from_slice(self.0.expose_secret())
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn seal(recipients: &[&age::x25519::Identity], plaintext: &[u8]) -> Vec<u8> {
        let publics: Vec<age::x25519::Recipient> =
            recipients.iter().map(|i| i.to_public()).collect();
        let encryptor =
            age::Encryptor::with_recipients(publics.iter().map(|r| r as &dyn age::Recipient))
                .unwrap();
        let mut out = Vec::new();
        let mut writer = encryptor.wrap_output(&mut out).unwrap();
        writer.write_all(plaintext).unwrap();
        writer.finish().unwrap();
        out
    }

    fn open(identity: &age::x25519::Identity, file: &[u8]) -> Result<Vec<u8>, String> {
        let decryptor = age::Decryptor::new_buffered(file).map_err(|e| e.to_string())?;
        let mut reader = decryptor
            .decrypt(std::iter::once(identity as &dyn age::Identity))
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        reader.read_to_end(&mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }

    #[test]
    fn a_header_fits_exactly_its_key_set() {
        use crate::keyring::Recipient;
        let (a, b, c) = (
            age::x25519::Identity::generate(),
            age::x25519::Identity::generate(),
            age::x25519::Identity::generate(),
        );
        let ssh =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA64ms7ElPuyNYoRkl86/SLZteeXwGMZlQkvMltN0Nx4";
        let other_ssh =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIANJegOVIFPTR0FaSTdxfMgDy02+BQzwzYYo/x844UpP";
        let set = |keys: &[&str]| -> Vec<Recipient> {
            keys.iter().map(|k| Recipient::parse(k).unwrap()).collect()
        };
        let (pa, pb, pc) = (
            a.to_public().to_string(),
            b.to_public().to_string(),
            c.to_public().to_string(),
        );
        let sealed_to = |keys: &[&str]| {
            let recipients: Vec<Box<dyn age::Recipient + Send + Sync>> =
                set(keys).iter().map(|r| r.to_age().unwrap()).collect();
            let encryptor = age::Encryptor::with_recipients(
                recipients.iter().map(|r| r.as_ref() as &dyn age::Recipient),
            )
            .unwrap();
            let mut out = Vec::new();
            let mut writer = encryptor.wrap_output(&mut out).unwrap();
            writer.write_all(b"a note").unwrap();
            writer.finish().unwrap();
            Header::parse(&out).unwrap()
        };
        let two = sealed_to(&[&pa, &pb]);
        assert_eq!(two.fits(&set(&[&pa, &pb])), Ok(()));
        // Which X25519 key cannot be seen; how many can.
        assert_eq!(two.fits(&set(&[&pa, &pc])), Ok(()));
        assert!(two.fits(&set(&[&pa])).is_err(), "a key slipped in");
        assert!(two.fits(&set(&[&pa, &pb, &pc])).is_err(), "a key left out");
        let with_ssh = sealed_to(&[&pa, ssh]);
        assert_eq!(with_ssh.fits(&set(&[&pa, ssh])), Ok(()));
        assert!(
            with_ssh.fits(&set(&[&pa, other_ssh])).is_err(),
            "another SSH key"
        );
        assert!(with_ssh.fits(&set(&[&pa, &pb])).is_err());
    }

    fn boxed(identity: &age::x25519::Identity) -> Vec<Box<dyn age::Identity>> {
        vec![Box::new(identity.clone())]
    }

    fn to(identities: &[&age::x25519::Identity]) -> Vec<Box<dyn age::Recipient + Send + Sync>> {
        identities
            .iter()
            .map(|i| Box::new(i.to_public()) as Box<dyn age::Recipient + Send + Sync>)
            .collect()
    }

    #[test]
    fn a_rewrapped_header_opens_the_same_payload_for_the_new_keys_only() {
        let (old, new, other) = (
            age::x25519::Identity::generate(),
            age::x25519::Identity::generate(),
            age::x25519::Identity::generate(),
        );
        let plaintext = vec![7u8; 200_000];
        let file = seal(&[&old], &plaintext);
        let header = Header::parse(&file).unwrap();
        assert!(header.len() < file.len());
        let new_header = rewrap_header(&header, &boxed(&old), &to(&[&new, &other])).unwrap();
        let mut rekeyed = new_header.clone();
        rekeyed.extend_from_slice(&file[header.len()..]);
        assert_eq!(open(&new, &rekeyed).unwrap(), plaintext);
        assert_eq!(open(&other, &rekeyed).unwrap(), plaintext);
        assert!(open(&old, &rekeyed).is_err());
        // The server's check accepts it, and it names a different header.
        let nonce = &file[header.len()..header.len() + NONCE_BYTES];
        let checked = check_new_header(&new_header, nonce).unwrap();
        assert_ne!(checked.digest(), header.digest());
        assert!(check_file_start(&rekeyed).is_ok());
    }

    #[test]
    fn only_a_holder_of_the_old_key_can_rewrap() {
        let (old, stranger) = (
            age::x25519::Identity::generate(),
            age::x25519::Identity::generate(),
        );
        let file = seal(&[&old], b"tip");
        let header = Header::parse(&file).unwrap();
        assert!(matches!(
            rewrap_header(&header, &boxed(&stranger), &to(&[&stranger])),
            Err(RekeyError::NotYours)
        ));
    }

    #[test]
    fn a_tampered_header_is_refused() {
        let (a, b) = (
            age::x25519::Identity::generate(),
            age::x25519::Identity::generate(),
        );
        // The stanzas of one file under the MAC of another: the file key a's stanza yields
        // does not match the MAC.
        let first = seal(&[&a], b"one");
        let second = seal(&[&a], b"two");
        let h1 = Header::parse(&first).unwrap();
        let h2 = Header::parse(&second).unwrap();
        let mac_at = |h: &Header| h.len() - MAC_LINE_BYTES;
        let mut spliced = h1.as_bytes()[..mac_at(&h1)].to_vec();
        spliced.extend_from_slice(&h2.as_bytes()[mac_at(&h2)..]);
        let forged = Header::parse(&spliced).unwrap();
        assert!(matches!(
            rewrap_header(&forged, &boxed(&a), &to(&[&b])),
            Err(RekeyError::BadMac)
        ));
    }

    #[test]
    fn malformed_headers_and_passphrases_are_refused() {
        assert!(matches!(
            Header::parse(b"hello"),
            Err(RekeyError::Malformed)
        ));
        assert!(matches!(
            Header::parse(b"age-encryption.org/v2\n"),
            Err(RekeyError::NotAgeV1)
        ));
        let a = age::x25519::Identity::generate();
        let file = seal(&[&a], b"tip");
        let header = Header::parse(&file).unwrap();
        // Cut anywhere inside the header: refused, never mistaken for a shorter header.
        for cut in [INTRO.len() + 3, header.len() / 2, header.len() - 1] {
            assert!(Header::parse(&file[..cut]).is_err(), "cut at {cut}");
        }
        // A header with something after it is not a header.
        assert!(check_new_header(&file[..header.len() + 1], &[0; 16]).is_err());
        // A passphrase-sealed file is not sealed to reviewers.
        let encryptor = age::Encryptor::with_user_passphrase(age::secrecy::SecretString::from(
            "correct horse".to_owned(),
        ));
        let mut out = Vec::new();
        let mut writer = encryptor.wrap_output(&mut out).unwrap();
        writer.write_all(b"x").unwrap();
        writer.finish().unwrap();
        assert!(matches!(
            check_file_start(&out),
            Err(RekeyError::Passphrase)
        ));
    }
}
