//! Source receipts: 128 random bits shown as 12 BIP39 words in the source's language.
//!
//! BIP39 has word lists for English and both Chinese scripts among our languages, and none
//! for Uyghur, Tibetan, Russian or Persian; we never invent one (a list must be checked for
//! words that look or sound alike, and a receipt must read the same in every server). Those
//! pages show receipts in English words (`Lang::receipt_words`), which any keyboard can type.
//!
//! The receipt is the source's only credential. The server stores neither it nor anything it
//! can be recovered from: only an HMAC of it under a server subkey (to find the tip again) and
//! the public half of an age identity derived from it (so analysts can seal replies that only
//! the receipt holder can open). Because the receipt carries 128 bits of entropy, a fast keyed
//! hash is enough — no memory-hard KDF is needed on the public path, which keeps intake cheap
//! under flood.
//!
//! The lookup hash and the reply recipient are stored on the tip with a binding
//! (`TipBindingKey`): a MAC, under another subkey, over the tip's id and both values. Someone
//! who can write the database but does not hold the server secret can copy a receipt hash or a
//! reply recipient from one tip to another, but not its binding, so the copy opens nothing.

use bip39::{Language, Mnemonic};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::i18n::Lang;

/// Bytes of entropy in a receipt (12 BIP39 words with a 4-bit checksum).
pub const RECEIPT_ENTROPY_BYTES: usize = 16;

/// Subkey purposes (see `ServerSecret::subkey`).
pub const LOOKUP_KEY_PURPOSE: &str = "receipt lookup";
pub const REPLY_SALT_PURPOSE: &str = "receipt reply identity salt";
pub const BINDING_KEY_PURPOSE: &str = "tip binding";

pub struct ReceiptCode {
    entropy: Zeroizing<[u8; RECEIPT_ENTROPY_BYTES]>,
}

impl std::fmt::Debug for ReceiptCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReceiptCode(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReceiptError {
    #[error("the receipt must have 12 words")]
    WordCount,
    /// Word `position` (from 1) is in no word list; `suggestions`: the nearest words of the
    /// list the other words come from (none for Chinese, whose words are single characters).
    #[error("word {position} of the receipt is not in the word list")]
    UnknownWord {
        position: usize,
        suggestions: Vec<&'static str>,
    },
    #[error("the receipt's checksum does not match: a word is mistyped")]
    Checksum,
}

fn bip39_language(lang: Lang) -> Language {
    match lang.receipt_words() {
        Lang::ZhHans => Language::SimplifiedChinese,
        Lang::ZhHant => Language::TraditionalChinese,
        Lang::En | Lang::Ug | Lang::Bo | Lang::Ru | Lang::Fa => Language::English,
    }
}

/// The word lists a typed receipt is read with: the page's own first, then every other list
/// once (several languages share the English list).
fn lists_to_try(preferred: Lang) -> Vec<Language> {
    let mut lists = vec![bip39_language(preferred)];
    for language in Lang::ALL.into_iter().map(bip39_language) {
        if !lists.contains(&language) {
            lists.push(language);
        }
    }
    lists
}

/// Which word of `normalized` (12 words, one space apart) is in no list: the first one missing
/// from the list that holds most of the others, with that list's nearest words by edit
/// distance (at most 3, at most 2 edits away; none for single-character Chinese words).
fn unknown_word(normalized: &str, preferred: Lang) -> ReceiptError {
    let words: Vec<&str> = normalized.split(' ').collect();
    let language = lists_to_try(preferred)
        .into_iter()
        // The most words found; the earliest language (the page's first) on a tie.
        .min_by_key(|language| {
            std::cmp::Reverse(
                words
                    .iter()
                    .filter(|w| language.find_word(w).is_some())
                    .count(),
            )
        })
        .unwrap_or(Language::English);
    let position = words
        .iter()
        .position(|w| language.find_word(w).is_none())
        .unwrap_or(0);
    let typed = words.get(position).copied().unwrap_or_default();
    let suggestions = if language == Language::English {
        // Nearest first; among equals, the one that starts most like what was typed.
        let shared = |candidate: &str| {
            typed
                .chars()
                .zip(candidate.chars())
                .take_while(|(a, b)| a == b)
                .count()
        };
        let mut near: Vec<(usize, std::cmp::Reverse<usize>, &'static str)> = language
            .word_list()
            .iter()
            .map(|candidate| {
                let distance = strsim::damerau_levenshtein(typed, candidate);
                (distance, std::cmp::Reverse(shared(candidate)), *candidate)
            })
            .filter(|(distance, _, _)| *distance <= 2)
            .collect();
        near.sort();
        near.into_iter().take(3).map(|(_, _, word)| word).collect()
    } else {
        Vec::new()
    };
    ReceiptError::UnknownWord {
        position: position + 1,
        suggestions,
    }
}

impl ReceiptCode {
    pub fn generate() -> Self {
        let mut entropy = Zeroizing::new([0u8; RECEIPT_ENTROPY_BYTES]);
        getrandom::fill(entropy.as_mut()).expect("the operating system's random source works");
        Self { entropy }
    }

    /// The receipt as the source sees it: 12 words, space separated.
    ///
    /// Written straight into a string allocated at its final length: no list of the words (whose
    /// pointers into the word list spell the receipt) and no smaller buffer outgrown on the way
    /// is left behind in freed memory.
    pub fn words(&self, lang: Lang) -> Zeroizing<String> {
        let mnemonic = Mnemonic::from_entropy_in(bip39_language(lang), self.entropy.as_ref())
            .expect("16 bytes is a valid BIP39 entropy length");
        let length = mnemonic.words().map(str::len).sum::<usize>() + mnemonic.word_count() - 1;
        let mut words = Zeroizing::new(String::with_capacity(length));
        for (i, word) in mnemonic.words().enumerate() {
            if i > 0 {
                words.push(' ');
            }
            words.push_str(word);
        }
        debug_assert_eq!(words.capacity(), length, "never grown");
        drop(mnemonic); // bip39's `zeroize` feature clears it
        words
    }

    /// Reads a receipt typed back by a source, in any of the supported word lists, whatever
    /// the page's language. Word lists overlap between the two Chinese scripts, so every list
    /// in which the words form a valid receipt gives one reading (the caller looks each up),
    /// the preferred language's list first.
    pub fn parse(text: &str, preferred: Lang) -> Result<Vec<ReceiptCode>, ReceiptError> {
        // Every intermediate copy of the words is cleared when dropped.
        let words: Zeroizing<Vec<String>> = Zeroizing::new(
            text.split(|c: char| {
                c.is_whitespace() || matches!(c, ',' | '，' | '、' | '-' | '.' | '。')
            })
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect(),
        );
        let mut normalized = Zeroizing::new(words.join(" "));
        // Chinese receipts are often typed without spaces: one character per word.
        if words.len() == 1 && words[0].chars().count() == 12 {
            let characters: Zeroizing<Vec<String>> =
                Zeroizing::new(words[0].chars().map(String::from).collect());
            normalized = Zeroizing::new(characters.join(" "));
        }
        if normalized.split(' ').count() != 12 {
            return Err(ReceiptError::WordCount);
        }
        let mut found = Vec::new();
        let mut any_checksum_error = false;
        for language in lists_to_try(preferred) {
            match Mnemonic::parse_in_normalized(language, &normalized) {
                Ok(m) => {
                    let (mut bytes, len) = m.to_entropy_array();
                    let mut entropy = Zeroizing::new([0u8; RECEIPT_ENTROPY_BYTES]);
                    if len == RECEIPT_ENTROPY_BYTES {
                        entropy.copy_from_slice(&bytes[..len]);
                        found.push(ReceiptCode { entropy });
                    }
                    bytes.zeroize();
                }
                Err(bip39::Error::InvalidChecksum) => any_checksum_error = true,
                Err(_) => {}
            }
        }
        if found.is_empty() {
            return Err(if any_checksum_error {
                ReceiptError::Checksum
            } else {
                unknown_word(&normalized, preferred)
            });
        }
        Ok(found)
    }

    /// The keyed hash stored to find this receipt's tip.
    pub fn lookup_hash(&self, lookup_key: &[u8; 32]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(lookup_key).expect("any key length");
        mac.update(self.entropy.as_ref());
        mac.finalize().into_bytes().to_vec()
    }

    /// The age identity replies to this source are sealed to. Only its public half is stored.
    pub fn reply_identity(&self, reply_salt: &[u8; 32]) -> age::x25519::Identity {
        let hk = Hkdf::<Sha256>::new(Some(reply_salt), self.entropy.as_ref());
        let mut scalar = Zeroizing::new([0u8; 32]);
        hk.expand(b"tipbox v1 reply identity", scalar.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let hrp = bech32::Hrp::parse("age-secret-key-").expect("static HRP is valid");
        // Upper case directly: no lower-case copy of the secret is left behind unzeroized.
        let encoded = Zeroizing::new(
            bech32::encode_upper::<bech32::Bech32>(hrp, scalar.as_ref())
                .expect("32 bytes fit in a Bech32 string"),
        );
        encoded
            .parse()
            .expect("a Bech32-encoded 32-byte scalar is a valid age identity")
    }
}

/// The key that binds a tip's receipt hash and reply recipient to the tip (see the module
/// documentation). `bind` at intake, `verifies` before either value is trusted.
pub struct TipBindingKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for TipBindingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TipBindingKey(<redacted>)")
    }
}

impl TipBindingKey {
    pub fn new(secret: &crate::secrets::ServerSecret) -> Self {
        Self(secret.subkey(BINDING_KEY_PURPOSE))
    }

    fn mac(&self, tip_id: &str, receipt_hash: &[u8], reply_recipient: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.as_ref()).expect("any key length");
        // Each field with its length first: no two different triples encode alike.
        for field in [tip_id.as_bytes(), receipt_hash, reply_recipient.as_bytes()] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field);
        }
        mac
    }

    /// The binding to store with a new tip.
    pub fn bind(&self, tip_id: &str, receipt_hash: &[u8], reply_recipient: &str) -> Vec<u8> {
        self.mac(tip_id, receipt_hash, reply_recipient)
            .finalize()
            .into_bytes()
            .to_vec()
    }

    /// Whether `binding` is this tip's binding of these values, compared in constant time. No
    /// binding (`None`: a row stored before bindings existed and never bound) does not verify,
    /// after the same work.
    pub fn verifies(
        &self,
        tip_id: &str,
        receipt_hash: &[u8],
        reply_recipient: &str,
        binding: Option<&[u8]>,
    ) -> bool {
        let mac = self.mac(tip_id, receipt_hash, reply_recipient);
        match binding {
            Some(binding) => mac.verify_slice(binding).is_ok(),
            None => {
                let _ = mac.finalize();
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binding_verifies_only_for_its_own_tip_and_values() {
        let dir = tempfile::tempdir().unwrap();
        let secret = crate::secrets::ServerSecret::create(dir.path()).unwrap();
        let key = TipBindingKey::new(&secret);
        let binding = key.bind("tip-a", b"hash-a", "age1a");
        assert!(key.verifies("tip-a", b"hash-a", "age1a", Some(&binding)));
        for (tip, hash, recipient) in [
            ("tip-b", &b"hash-a"[..], "age1a"),
            ("tip-a", &b"hash-b"[..], "age1a"),
            ("tip-a", &b"hash-a"[..], "age1b"),
            // Bytes moved from one field to the next.
            ("tip-", &b"ahash-a"[..], "age1a"),
        ] {
            assert!(!key.verifies(tip, hash, recipient, Some(&binding)));
        }
        assert!(!key.verifies("tip-a", b"hash-a", "age1a", None));
        assert!(!key.verifies("tip-a", b"hash-a", "age1a", Some(&binding[..16])));
        let other_dir = tempfile::tempdir().unwrap();
        let other =
            TipBindingKey::new(&crate::secrets::ServerSecret::create(other_dir.path()).unwrap());
        assert!(!other.verifies("tip-a", b"hash-a", "age1a", Some(&binding)));
    }

    #[test]
    fn the_words_fill_exactly_the_string_they_are_written_into() {
        let code = ReceiptCode::generate();
        for lang in Lang::ALL {
            let words = code.words(lang);
            assert_eq!(words.capacity(), words.len(), "{}", lang.tag());
        }
    }

    #[test]
    fn a_receipt_round_trips_in_every_language() {
        let code = ReceiptCode::generate();
        let key = [1u8; 32];
        for lang in Lang::ALL {
            let words = code.words(lang);
            assert_eq!(words.split(' ').count(), 12);
            let parsed = ReceiptCode::parse(&words, lang).unwrap();
            assert!(
                parsed
                    .iter()
                    .any(|p| p.lookup_hash(&key) == code.lookup_hash(&key)),
                "{}",
                lang.tag()
            );
            assert_eq!(parsed[0].lookup_hash(&key), code.lookup_hash(&key));
        }
        let chinese: String = code.words(Lang::ZhHans).split(' ').collect();
        let parsed = ReceiptCode::parse(&chinese, Lang::ZhHans).unwrap();
        assert_eq!(parsed[0].lookup_hash(&key), code.lookup_hash(&key));
    }

    #[test]
    fn languages_without_a_bip39_list_get_english_words_read_on_any_page() {
        let code = ReceiptCode::generate();
        let key = [1u8; 32];
        let english = code.words(Lang::En);
        for lang in [Lang::Ug, Lang::Bo, Lang::Ru, Lang::Fa] {
            assert_eq!(*code.words(lang), *english, "{}", lang.tag());
            // One reading only: the shared English list is not tried once per language.
            let parsed = ReceiptCode::parse(&english, lang).unwrap();
            assert_eq!(parsed.len(), 1, "{}", lang.tag());
            assert_eq!(parsed[0].lookup_hash(&key), code.lookup_hash(&key));
        }
        // A Chinese receipt typed on a Persian page, and an English one on a Chinese page.
        let chinese = code.words(Lang::ZhHant);
        let parsed = ReceiptCode::parse(&chinese, Lang::Fa).unwrap();
        assert!(
            parsed
                .iter()
                .any(|p| p.lookup_hash(&key) == code.lookup_hash(&key))
        );
        let parsed = ReceiptCode::parse(&english, Lang::ZhHans).unwrap();
        assert_eq!(parsed[0].lookup_hash(&key), code.lookup_hash(&key));
        // A mistyped English word on a Russian page is still named, with suggestions.
        let mut words = original_words(&english);
        words[2].push('x');
        if Language::English.find_word(&words[2]).is_none() {
            match ReceiptCode::parse(&words.join(" "), Lang::Ru).unwrap_err() {
                ReceiptError::UnknownWord {
                    position,
                    suggestions,
                } => {
                    assert_eq!(position, 3);
                    assert!(!suggestions.is_empty());
                }
                other => panic!("{other:?}"),
            }
        }
    }

    fn original_words(words: &str) -> Vec<String> {
        words.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn a_chinese_receipt_names_the_character_not_in_the_list() {
        let code = ReceiptCode::generate();
        let mut characters: Vec<String> = original_words(&code.words(Lang::ZhHans));
        characters[7] = "龘".into();
        let error = ReceiptCode::parse(&characters.concat(), Lang::ZhHans).unwrap_err();
        assert_eq!(
            error,
            ReceiptError::UnknownWord {
                position: 8,
                suggestions: Vec::new()
            }
        );
    }

    #[test]
    fn the_checksum_catches_mistyped_words() {
        let code = ReceiptCode::generate();
        let words = code.words(Lang::En);
        let mut list: Vec<&str> = words.split(' ').collect();
        // A word that is not in the list at all: named by its position.
        list[3] = "tipboxx";
        assert!(matches!(
            ReceiptCode::parse(&list.join(" "), Lang::En).unwrap_err(),
            ReceiptError::UnknownWord { position: 4, .. }
        ));
        // A typo: the nearest words are suggested, the right one first.
        let right = list[5];
        let mut typo: Vec<char> = right.chars().collect();
        typo.swap(1, 2);
        let typo: String = typo.into_iter().collect();
        if Language::English.find_word(&typo).is_none() {
            let mut mistyped = original_words(&words);
            mistyped[5] = typo.clone();
            match ReceiptCode::parse(&mistyped.join(" "), Lang::En).unwrap_err() {
                ReceiptError::UnknownWord {
                    position,
                    suggestions,
                } => {
                    assert_eq!(position, 6);
                    assert!(suggestions.contains(&right), "{typo}: {suggestions:?}");
                }
                other => panic!("{other:?}"),
            }
        }
        // Swapping in other valid words: the 4-bit checksum rejects about 15 in 16 of them,
        // and a mistyped receipt that slips through only fails to find a tip.
        let original: Vec<&str> = words.split(' ').collect();
        let alternatives = &Language::English.word_list()[..256];
        let caught = alternatives
            .iter()
            .filter(|w| **w != original[11])
            .filter(|w| {
                let mut l = original.clone();
                l[11] = w;
                ReceiptCode::parse(&l.join(" "), Lang::En).is_err()
            })
            .count();
        assert!(caught >= 200, "caught only {caught} of 255");
        assert_eq!(
            ReceiptCode::parse("abandon abandon", Lang::En).unwrap_err(),
            ReceiptError::WordCount
        );
    }

    #[test]
    fn the_reply_identity_is_derived_not_random() {
        let code = ReceiptCode::generate();
        let salt = [9u8; 32];
        let a = code.reply_identity(&salt).to_public().to_string();
        let b = code.reply_identity(&salt).to_public().to_string();
        assert_eq!(a, b);
        assert!(a.starts_with("age1"));
        assert_ne!(a, code.reply_identity(&[8u8; 32]).to_public().to_string());
    }
}
