//! The audit trail: an append-only log of analyst and operator actions, chained by hashes.
//!
//! Each entry's hash is an HMAC, under a subkey of the server secret, over its own fields and
//! the previous entry's hash. Editing or deleting an entry breaks every hash after it and
//! `tipbox audit verify` points at the first break; and because the key lives in the data
//! directory, not in the database, someone who can only write the database cannot recompute a
//! consistent chain. The chain cannot show that its newest entries were cut off; `audit verify`
//! prints the head hash so that an admin can note it elsewhere and compare later. Entries never
//! contain an IP address, a User-Agent, a receipt or any tip content.
//!
//! An entry about a tip or an item (viewed, downloaded, triaged, written on, re-keyed, deleted
//! by an analyst or by retention) is dated as coarsely as the tip's received time: an analyst's
//! exact first look at a new tip would otherwise narrow down when it arrived. Entries about
//! analysts, accounts and keys keep their exact time (see `AuditAction::refers_to_tips`).

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use zeroize::Zeroizing;

/// The key that chains the audit trail.
pub struct AuditKey(Zeroizing<[u8; 32]>);

impl AuditKey {
    pub fn new(secret: &crate::secrets::ServerSecret) -> Self {
        Self(secret.subkey("audit chain"))
    }
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(<redacted>)")
    }
}

/// Every action the audit trail records. `as_str` is the name stored in an entry and covered by
/// its hash: a name never changes, or older entries would no longer verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    AnalystAdd,
    AnalystDisable,
    AnalystUnlock,
    AnalystReset2fa,
    AnalystOnionKey,
    AnalystOnionKeyRevoke,
    SigninSuccess,
    SigninFailure,
    Signout,
    /// An analyst changed their own password (on the desk).
    PasswordChange,
    /// An attempt to change one's password with a wrong password or code (it counts against
    /// the account's sign-in back-off, like `SigninFailure`).
    PasswordChangeFailure,
    TipView,
    TipUpdate,
    TipDelete,
    TipDownloadAll,
    ItemDownload,
    NoteAdd,
    ReplyAdd,
    KeyAdd,
    KeyRetire,
    KeyRevoke,
    ItemRekey,
    RetentionDelete,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::AnalystAdd => "analyst.add",
            AuditAction::AnalystDisable => "analyst.disable",
            AuditAction::AnalystUnlock => "analyst.unlock",
            AuditAction::AnalystReset2fa => "analyst.reset_2fa",
            AuditAction::AnalystOnionKey => "analyst.onion_key",
            AuditAction::AnalystOnionKeyRevoke => "analyst.onion_key_revoke",
            AuditAction::SigninSuccess => "signin.success",
            AuditAction::SigninFailure => "signin.failure",
            AuditAction::Signout => "signout",
            AuditAction::PasswordChange => "password.change",
            AuditAction::PasswordChangeFailure => "password.change_failure",
            AuditAction::TipView => "tip.view",
            AuditAction::TipUpdate => "tip.update",
            AuditAction::TipDelete => "tip.delete",
            AuditAction::TipDownloadAll => "tip.download_all",
            AuditAction::ItemDownload => "item.download",
            AuditAction::NoteAdd => "note.add",
            AuditAction::ReplyAdd => "reply.add",
            AuditAction::KeyAdd => "key.add",
            AuditAction::KeyRetire => "key.retire",
            AuditAction::KeyRevoke => "key.revoke",
            AuditAction::ItemRekey => "item.rekey",
            AuditAction::RetentionDelete => "retention.delete",
        }
    }
}

impl AuditAction {
    /// Whether an entry of this action is about a tip or an item, and so is dated like a
    /// received time (`privacy.time_granularity_seconds`). Sign-ins, sign-outs, account and key
    /// changes are about analysts and operators, whom the trail exists to hold to account: they
    /// keep the exact time.
    pub fn refers_to_tips(self) -> bool {
        use AuditAction::*;
        match self {
            TipView | TipUpdate | TipDelete | TipDownloadAll | ItemDownload | NoteAdd
            | ReplyAdd | ItemRekey | RetentionDelete => true,
            AnalystAdd
            | AnalystDisable
            | AnalystUnlock
            | AnalystReset2fa
            | AnalystOnionKey
            | AnalystOnionKeyRevoke
            | SigninSuccess
            | SigninFailure
            | Signout
            | PasswordChange
            | PasswordChangeFailure
            | KeyAdd
            | KeyRetire
            | KeyRevoke => false,
        }
    }
}

/// An entry to append, in the same transaction as the action it records (the store methods
/// that perform an audited action take one).
#[derive(Debug, Clone)]
pub struct Audit<'a> {
    pub at: i64,
    /// An analyst's username, or a fixed name for the command line and the server itself.
    pub actor: &'a str,
    pub action: AuditAction,
    /// What was acted on: an analyst, a tip, an item, a key fingerprint.
    pub subject: &'a str,
    /// A JSON object with what else matters; never tip content, an address or a User-Agent.
    pub detail: serde_json::Value,
}

impl Audit<'_> {
    /// The time stored (and hashed) for this entry: `at` rounded down to `time_granularity`
    /// seconds if the entry is about a tip, `at` itself otherwise.
    pub fn stored_time(&self, time_granularity: u64) -> i64 {
        if self.action.refers_to_tips() {
            crate::clock::coarsen(self.at, time_granularity)
        } else {
            self.at
        }
    }
}

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

/// The hash of an entry: HMAC-SHA256 over an unambiguous (JSON array) encoding of its fields
/// and the previous hash.
#[allow(clippy::too_many_arguments)]
pub fn entry_hash(
    key: &AuditKey,
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
    let mut mac = Hmac::<Sha256>::new_from_slice(key.0.as_ref()).expect("any key length");
    mac.update(&encoded);
    hex::encode(mac.finalize().into_bytes())
}

#[derive(Debug, PartialEq, Eq)]
pub enum ChainStatus {
    /// The chain is intact: this many entries, ending in this hash.
    Intact { entries: usize, head: String },
    /// The first entry at which the chain is broken, and how.
    Broken { seq: i64, why: String },
}

/// Checks a whole chain, in `seq` order.
pub fn verify(key: &AuditKey, entries: &[AuditEntry]) -> ChainStatus {
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
            key,
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

    fn key() -> AuditKey {
        AuditKey(Zeroizing::new([42u8; 32]))
    }

    fn chain(key: &AuditKey, n: i64) -> Vec<AuditEntry> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let hash = entry_hash(
                    key,
                    seq,
                    100 + seq,
                    "cli",
                    "analyst.add",
                    "alice",
                    "{}",
                    &prev,
                );
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
        let key = key();
        let good = chain(&key, 5);
        assert!(matches!(
            verify(&key, &good),
            ChainStatus::Intact { entries: 5, .. }
        ));
        let mut edited = good.clone();
        edited[2].subject = "mallory".into();
        assert_eq!(
            verify(&key, &edited),
            ChainStatus::Broken {
                seq: 3,
                why: "its content does not match its hash (it was edited)".into()
            }
        );
        let mut deleted = good.clone();
        deleted.remove(1);
        assert!(matches!(
            verify(&key, &deleted),
            ChainStatus::Broken { seq: 2, .. }
        ));
        // Deleting and renumbering is caught by the hash links.
        let mut renumbered = good.clone();
        renumbered.remove(1);
        for (i, e) in renumbered.iter_mut().enumerate() {
            e.seq = i as i64 + 1;
        }
        assert!(matches!(
            verify(&key, &renumbered),
            ChainStatus::Broken { seq: 2, .. }
        ));
    }

    /// The stored names, exactly as entries written before the enum carry them (the hash chain
    /// covers them).
    #[test]
    fn action_names_are_the_stored_ones() {
        use AuditAction::*;
        for (action, stored) in [
            (AnalystAdd, "analyst.add"),
            (AnalystDisable, "analyst.disable"),
            (AnalystUnlock, "analyst.unlock"),
            (AnalystReset2fa, "analyst.reset_2fa"),
            (AnalystOnionKey, "analyst.onion_key"),
            (AnalystOnionKeyRevoke, "analyst.onion_key_revoke"),
            (SigninSuccess, "signin.success"),
            (SigninFailure, "signin.failure"),
            (Signout, "signout"),
            (PasswordChange, "password.change"),
            (PasswordChangeFailure, "password.change_failure"),
            (TipView, "tip.view"),
            (TipUpdate, "tip.update"),
            (TipDelete, "tip.delete"),
            (TipDownloadAll, "tip.download_all"),
            (ItemDownload, "item.download"),
            (NoteAdd, "note.add"),
            (ReplyAdd, "reply.add"),
            (KeyAdd, "key.add"),
            (KeyRetire, "key.retire"),
            (KeyRevoke, "key.revoke"),
            (ItemRekey, "item.rekey"),
            (RetentionDelete, "retention.delete"),
        ] {
            assert_eq!(action.as_str(), stored);
        }
    }

    #[test]
    fn entries_about_tips_are_dated_like_received_times() {
        let entry = |action| Audit {
            at: 7_199,
            actor: "ana",
            action,
            subject: "t",
            detail: serde_json::json!({}),
        };
        for action in [
            AuditAction::TipView,
            AuditAction::ItemDownload,
            AuditAction::NoteAdd,
            AuditAction::ReplyAdd,
            AuditAction::TipUpdate,
            AuditAction::TipDelete,
            AuditAction::ItemRekey,
        ] {
            assert_eq!(entry(action).stored_time(3600), 3600, "{action:?}");
        }
        for action in [AuditAction::SigninSuccess, AuditAction::KeyAdd] {
            assert_eq!(entry(action).stored_time(3600), 7_199, "{action:?}");
        }
    }

    /// Someone who can write the database but lacks the key cannot forge a consistent chain.
    #[test]
    fn a_chain_rebuilt_without_the_key_does_not_verify() {
        let forged = chain(&AuditKey(Zeroizing::new([7u8; 32])), 3);
        assert!(matches!(
            verify(&key(), &forged),
            ChainStatus::Broken { seq: 1, .. }
        ));
    }
}
