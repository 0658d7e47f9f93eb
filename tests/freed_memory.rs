//! What freed memory keeps of a receipt or of plaintext to be sealed: nothing.
//!
//! A buffer that grows leaves its outgrown copy in freed memory, where nothing clears it; a
//! temporary list or value leaves its contents there when it is dropped. To see that, this
//! test binary's global allocator looks into every block as it is freed, while a test watches
//! for a pattern. Each test also shows the detector catching the way the code used to do it, so
//! that a pass cannot come from a detector that sees nothing.
//!
//! A test binary of its own (the lead: keep it out of the merged test binary): the allocator is
//! global, and `unsafe` is needed to write one (the library itself forbids `unsafe`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};

use tipbox::i18n::Lang;
use tipbox::intake::{AttachmentFacts, json_to_seal};
use tipbox::receipt::ReceiptCode;

/// The patterns to look for (`None`: any byte); set before `WATCHING`, never changed while it
/// is on.
static PATTERNS: RwLock<Vec<Vec<Option<u8>>>> = RwLock::new(Vec::new());
static WATCHING: AtomicBool = AtomicBool::new(false);
static FOUND: AtomicUsize = AtomicUsize::new(0);
/// One watch at a time: the tests of this binary run on several threads.
static ONE_WATCH: Mutex<()> = Mutex::new(());

struct InspectingAllocator;

// SAFETY: every call is passed on to the system allocator unchanged; `dealloc` only reads the
// block it is given (which is still allocated, `layout.size()` bytes long) before freeing it.
unsafe impl GlobalAlloc for InspectingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if WATCHING.load(Ordering::SeqCst) {
            // SAFETY: see the impl.
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            // Never wait (or allocate) inside the allocator: the patterns are written before
            // watching starts, so while it is on every thread can read them at once.
            if let Ok(patterns) = PATTERNS.try_read()
                && patterns.iter().any(|p| holds(block, p))
            {
                FOUND.fetch_add(1, Ordering::SeqCst);
            }
        }
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: InspectingAllocator = InspectingAllocator;

/// Whether `block` holds `pattern` anywhere.
fn holds(block: &[u8], pattern: &[Option<u8>]) -> bool {
    !pattern.is_empty()
        && block.windows(pattern.len()).any(|window| {
            window
                .iter()
                .zip(pattern)
                .all(|(byte, wanted)| wanted.is_none_or(|w| w == *byte))
        })
}

fn exactly(bytes: &[u8]) -> Vec<Option<u8>> {
    bytes.iter().copied().map(Some).collect()
}

/// How many blocks freed while `work` ran held one of `patterns`.
fn freed_blocks_holding(patterns: Vec<Vec<Option<u8>>>, work: impl FnOnce()) -> usize {
    let _one = ONE_WATCH.lock().unwrap_or_else(|p| p.into_inner());
    *PATTERNS.write().unwrap() = patterns;
    FOUND.store(0, Ordering::SeqCst);
    WATCHING.store(true, Ordering::SeqCst);
    work();
    WATCHING.store(false, Ordering::SeqCst);
    let found = FOUND.load(Ordering::SeqCst);
    PATTERNS.write().unwrap().clear();
    found
}

/// A list of `&str` as it sits in memory: for each, an address (any: the word list's copy
/// differs from crate to crate) and then its length.
fn list_of_strs(words: &[&str]) -> Vec<Option<u8>> {
    let mut pattern = Vec::new();
    for word in words {
        pattern.extend([None; std::mem::size_of::<usize>()]);
        pattern.extend(word.len().to_ne_bytes().map(Some));
    }
    pattern
}

/// `ReceiptCode::words` leaves neither the receipt's text nor a list of its words (pointers
/// into the word list, which spell the receipt as surely as the words do) in freed memory.
#[test]
fn the_words_of_a_receipt_leave_nothing_behind() {
    let code = ReceiptCode::generate();
    let text = code.words(Lang::En).to_string();
    let words: Vec<&str> = text.split(' ').collect();
    assert_eq!(
        std::mem::size_of::<&str>(),
        2 * std::mem::size_of::<usize>()
    );
    let patterns = vec![exactly(text.as_bytes()), list_of_strs(&words)];

    let found = freed_blocks_holding(patterns.clone(), || {
        drop(code.words(Lang::En));
    });
    assert_eq!(found, 0, "freed memory holds the receipt");

    // The detector at work: the words collected into a vector first, as they used to be.
    let mnemonic = bip39::Mnemonic::parse_in(bip39::Language::English, &text).unwrap();
    let found = freed_blocks_holding(patterns, || {
        let words = zeroize::Zeroizing::new(mnemonic.words().collect::<Vec<_>>().join(" "));
        drop(words);
    });
    assert!(found > 0, "the detector sees the old way's list of words");
}

/// Facts far larger than any pre-sized buffer are written into one buffer, allocated once at
/// their length, and cleared when dropped: no freed block holds any of them.
#[test]
fn json_to_seal_leaves_no_plaintext_behind() {
    let mut marker = [0u8; 12];
    getrandom::fill(&mut marker).unwrap();
    let marker = format!("NAME-{}", hex::encode(marker));
    let attachments: Vec<AttachmentFacts> = (0..600)
        .map(|n| AttachmentFacts {
            item_id: format!("{n:032x}"),
            file_name: format!("{marker}-{n:04}-{}", "x".repeat(100)),
            content_type: Some("application/pdf".into()),
            size: n,
        })
        .collect();
    let patterns = vec![exactly(marker.as_bytes())];

    for pretty in [true, false] {
        let found = freed_blocks_holding(patterns.clone(), || {
            let json = json_to_seal(&attachments, pretty);
            assert!(json.len() > 64 * 1024);
            drop(json);
        });
        assert_eq!(
            found, 0,
            "freed memory holds the plaintext (pretty: {pretty})"
        );
    }

    // The detector at work: a buffer pre-sized to 64 KiB and grown past it, as it used to be.
    let found = freed_blocks_holding(patterns, || {
        let mut json = zeroize::Zeroizing::new(Vec::with_capacity(64 * 1024));
        serde_json::to_writer_pretty(&mut *json, &attachments).unwrap();
        drop(json);
    });
    assert!(found > 0, "the detector sees the outgrown buffer");
}
