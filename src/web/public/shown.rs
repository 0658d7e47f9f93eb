//! Receipts just shown, held in memory for a short while so that the source cannot lose one
//! by accident.
//!
//! A receipt is the only way back to a tip, and its page is shown once. Without this, the
//! language switch on that page, a Reload, or Back and Forward would either lose the receipt or
//! send the form again. So each submission form carries a random key (`FormKey`); when its tip
//! is stored, the receipt is kept here under the key's hash until the source shows they have
//! written it down (by typing its last word back), or for `KEEP` at most. The same form sent
//! again shows the same receipt (and the store refuses a second tip for it in any case:
//! `submission_forms`); the language switch on the receipt page posts the key, not the receipt.
//!
//! Only in this node's memory, never on disk; the entries are zeroized when dropped. The key
//! travels only in form bodies, never in a URL. A server that is compromised while it runs
//! sees every receipt as it is made anyway; one seized while off finds nothing here.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::i18n::Lang;
use crate::receipt::ReceiptCode;

/// How long a receipt is kept for its page to be shown again.
pub const KEEP: Duration = Duration::from_secs(30 * 60);
/// Most receipts kept at once; the oldest goes first.
const CAPACITY: usize = 8192;

/// A submission form's own key: 256 random bits, in the form as URL-safe base64.
pub struct FormKey(Zeroizing<String>);

impl FormKey {
    pub fn generate() -> Self {
        use base64::Engine;
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut()).expect("the operating system's random source works");
        FormKey(Zeroizing::new(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes[..]),
        ))
    }

    /// A key as sent back in a form: exactly the shape `generate` makes, or nothing.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        (text.len() == 43
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| FormKey(Zeroizing::new(text.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What is stored and looked up: never the key itself.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

struct Shown {
    /// `None` once the source has shown they wrote it down.
    receipt: Option<ReceiptCode>,
    since: Instant,
}

/// What is known of a form key here.
pub enum Lookup {
    /// The receipt, in the words of the language asked for.
    Receipt(Zeroizing<String>),
    /// The source wrote the receipt down; it is not shown again.
    WrittenDown,
    /// Nothing (never sent, expired, or sent through another node).
    Unknown,
}

/// The outcome of checking the word a source typed back.
pub enum Check {
    /// Right: the receipt is forgotten here.
    Right,
    /// Wrong: the receipt is still here, in these words, to be shown again.
    Wrong(Zeroizing<String>),
    WrittenDown,
    Unknown,
}

#[derive(Default)]
pub struct ShownReceipts {
    shown: Mutex<Kept>,
}

/// The receipts, and their keys in the order they were kept: the oldest (the first to expire,
/// and the first to go when full) is always at the front, so that keeping one never walks over
/// the others. (It did: under a flood, at capacity, every submission compared all 8,192
/// entries' ages, 15 % of the server's time in benches/README.md's profile.)
#[derive(Default)]
struct Kept {
    by_key: HashMap<[u8; 32], Shown>,
    order: VecDeque<([u8; 32], Instant)>,
}

impl Kept {
    /// Drops from the front what has expired and, while more than `room` are kept, the oldest.
    fn drop_oldest(&mut self, room: usize) {
        while let Some(&(key, since)) = self.order.front() {
            if since.elapsed() < KEEP && self.by_key.len() <= room {
                break;
            }
            self.order.pop_front();
            // The same key kept again later has a later time, and stays.
            if self.by_key.get(&key).is_some_and(|s| s.since == since) {
                self.by_key.remove(&key);
            }
        }
    }
}

impl ShownReceipts {
    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.shown.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `receipt`, just stored for the form with `key_hash`. Full (a flood of
    /// submissions): the oldest receipt goes.
    pub fn keep(&self, key_hash: [u8; 32], receipt: ReceiptCode) {
        let mut kept = self.lock();
        kept.drop_oldest(CAPACITY - 1);
        let since = Instant::now();
        kept.order.push_back((key_hash, since));
        kept.by_key.insert(
            key_hash,
            Shown {
                receipt: Some(receipt),
                since,
            },
        );
    }

    pub fn lookup(&self, key_hash: &[u8; 32], lang: Lang) -> Lookup {
        match self.lock().by_key.get(key_hash) {
            Some(s) if s.since.elapsed() < KEEP => match &s.receipt {
                Some(receipt) => Lookup::Receipt(receipt.words(lang)),
                None => Lookup::WrittenDown,
            },
            _ => Lookup::Unknown,
        }
    }

    /// Checks `typed` against the receipt's last word (in any word list it can be shown in,
    /// ignoring case and surrounding spaces); when right, the receipt is forgotten.
    pub fn check_last_word(&self, key_hash: &[u8; 32], typed: &str, lang: Lang) -> Check {
        let mut shown = self.lock();
        let Some(entry) = shown
            .by_key
            .get_mut(key_hash)
            .filter(|s| s.since.elapsed() < KEEP)
        else {
            return Check::Unknown;
        };
        let Some(receipt) = &entry.receipt else {
            return Check::WrittenDown;
        };
        let typed = typed.trim().to_lowercase();
        let right = !typed.is_empty()
            && Lang::ALL.into_iter().any(|l| {
                let words = receipt.words(l);
                words.split(' ').next_back().is_some_and(|last| {
                    subtle::ConstantTimeEq::ct_eq(last.as_bytes(), typed.as_bytes()).into()
                })
            });
        if right {
            entry.receipt = None;
            Check::Right
        } else {
            Check::Wrong(receipt.words(lang))
        }
    }

    /// Drops what has expired (called now and then, so that receipts do not outlive `KEEP`
    /// in memory when nobody submits).
    pub fn sweep(&self) {
        self.lock().drop_oldest(CAPACITY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_keys_round_trip_and_refuse_other_shapes() {
        let key = FormKey::generate();
        let parsed = FormKey::parse(key.as_str()).unwrap();
        assert_eq!(parsed.hash(), key.hash());
        assert_ne!(FormKey::generate().hash(), key.hash());
        assert!(FormKey::parse("short").is_none());
        assert!(FormKey::parse(&"a".repeat(44)).is_none());
        assert!(FormKey::parse(&format!("{}=", &key.as_str()[..42])).is_none());
    }

    #[test]
    fn a_receipt_is_shown_again_until_its_last_word_is_typed_back() {
        let shown = ShownReceipts::default();
        let key = FormKey::generate().hash();
        let receipt = ReceiptCode::generate();
        let english = receipt.words(Lang::En);
        let chinese = receipt.words(Lang::ZhHans);
        shown.keep(key, receipt);
        match shown.lookup(&key, Lang::ZhHans) {
            Lookup::Receipt(words) => assert_eq!(*words, *chinese),
            _ => panic!("the receipt is kept"),
        }
        assert!(matches!(
            shown.check_last_word(&key, "not-a-word", Lang::En),
            Check::Wrong(words) if *words == *english
        ));
        let last = english.split(' ').next_back().unwrap().to_uppercase();
        assert!(matches!(
            shown.check_last_word(&key, &format!(" {last} "), Lang::En),
            Check::Right
        ));
        assert!(matches!(shown.lookup(&key, Lang::En), Lookup::WrittenDown));
        assert!(matches!(
            shown.lookup(&FormKey::generate().hash(), Lang::En),
            Lookup::Unknown
        ));
    }

    /// Full, the oldest receipt goes first, and only it; a sweep keeps what has not expired.
    #[test]
    fn when_full_the_oldest_receipt_goes() {
        let shown = ShownReceipts::default();
        let keys: Vec<[u8; 32]> = (0..=CAPACITY).map(|_| FormKey::generate().hash()).collect();
        for key in &keys {
            shown.keep(*key, ReceiptCode::generate());
        }
        assert_eq!(shown.lock().by_key.len(), CAPACITY);
        assert!(matches!(shown.lookup(&keys[0], Lang::En), Lookup::Unknown));
        for key in [&keys[1], &keys[CAPACITY]] {
            assert!(matches!(shown.lookup(key, Lang::En), Lookup::Receipt(_)));
        }
        shown.sweep();
        assert_eq!(shown.lock().by_key.len(), CAPACITY);
        assert_eq!(shown.lock().order.len(), CAPACITY);
    }

    #[test]
    fn the_last_chinese_character_counts_too() {
        let shown = ShownReceipts::default();
        let key = FormKey::generate().hash();
        let receipt = ReceiptCode::generate();
        let last = receipt.words(Lang::ZhHant);
        let last = last.split(' ').next_back().unwrap().to_owned();
        shown.keep(key, receipt);
        assert!(matches!(
            shown.check_last_word(&key, &last, Lang::En),
            Check::Right
        ));
    }
}
