//! Random identifiers for tips, items, sessions and form tokens: 128 bits from the operating
//! system, in hex. They reveal nothing about time or order, unlike sequence numbers.
//!
//! The bottom floor of the crate: it uses nothing else of tipbox.

/// A random identifier (128 bits, 32 lower-case hex digits).
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    hex::encode(bytes)
}

/// Whether `id` has the shape of a `random_id` (so that a malformed one is refused before any
/// lookup).
pub fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
