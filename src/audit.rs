//! The audit trail: an append-only log of analyst and operator actions, chained by hashes.
//!
//! Each entry's hash covers its own fields and the previous entry's hash, so editing or
//! deleting an entry breaks every hash after it and `tipbox audit verify` points at the first
//! break. The chain cannot show that its newest entries were cut off; `audit verify` prints the
//! head hash so that an admin can note it elsewhere and compare later. Entries never contain an
//! IP address, a User-Agent, a receipt or any tip content.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The hash of an entry: SHA-256 over an unambiguous (JSON array) encoding of its fields and
/// the previous hash.
pub fn entry_hash(
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
    prev_hash: &str,
) -> String {
    let encoded = serde_json::to_vec(&(seq, at, actor, action, subject, detail, prev_hash))
        .expect("strings and integers serialize");
    hex::encode(Sha256::digest(&encoded))
}

#[derive(Debug, PartialEq, Eq)]
pub enum ChainStatus {
    /// The chain is intact: this many entries, ending in this hash.
    Intact { entries: usize, head: String },
    /// The first entry at which the chain is broken, and how.
    Broken { seq: i64, why: String },
}

/// Checks a whole chain, in `seq` order.
pub fn verify(entries: &[AuditEntry]) -> ChainStatus {
    let mut prev = GENESIS.to_owned();
    for (expected_seq, e) in (1..).zip(entries) {
        if e.seq != expected_seq {
            return ChainStatus::Broken {
                seq: expected_seq,
                why: format!("entry {expected_seq} is missing (next is {})", e.seq),
            };
        }
        if e.prev_hash != prev {
            return ChainStatus::Broken {
                seq: e.seq,
                why: "it does not follow the entry before it (an entry was deleted or replaced)"
                    .into(),
            };
        }
        let computed = entry_hash(
            e.seq,
            e.at,
            &e.actor,
            &e.action,
            &e.subject,
            &e.detail,
            &e.prev_hash,
        );
        if computed != e.hash {
            return ChainStatus::Broken {
                seq: e.seq,
                why: "its content does not match its hash (it was edited)".into(),
            };
        }
        prev = e.hash.clone();
    }
    ChainStatus::Intact {
        entries: entries.len(),
        head: prev,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let hash = entry_hash(seq, 100 + seq, "cli", "analyst.add", "alice", "{}", &prev);
                let e = AuditEntry {
                    seq,
                    at: 100 + seq,
                    actor: "cli".into(),
                    action: "analyst.add".into(),
                    subject: "alice".into(),
                    detail: "{}".into(),
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                e
            })
            .collect()
    }

    #[test]
    fn edits_and_deletions_are_found() {
        let good = chain(5);
        assert!(matches!(
            verify(&good),
            ChainStatus::Intact { entries: 5, .. }
        ));
        let mut edited = good.clone();
        edited[2].subject = "mallory".into();
        assert_eq!(
            verify(&edited),
            ChainStatus::Broken {
                seq: 3,
                why: "its content does not match its hash (it was edited)".into()
            }
        );
        let mut deleted = good.clone();
        deleted.remove(1);
        assert!(matches!(
            verify(&deleted),
            ChainStatus::Broken { seq: 2, .. }
        ));
        // Deleting and renumbering is caught by the hash links.
        let mut renumbered = good.clone();
        renumbered.remove(1);
        for (i, e) in renumbered.iter_mut().enumerate() {
            e.seq = i as i64 + 1;
        }
        assert!(matches!(
            verify(&renumbered),
            ChainStatus::Broken { seq: 2, .. }
        ));
    }
}
