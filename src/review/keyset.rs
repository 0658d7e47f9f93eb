//! The server's current key set, as this client checks it: before anything is sealed to it
//! (each recipient's fingerprint computed here, every key pinned in the analyst's trusted keys,
//! then the analyst's confirmation), and whenever the client looks at it (what changed since it
//! last did, remembered in the client's directory).

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::session::{client_dir, write_private};
use super::trust::TrustedKeys;
use crate::api;
use crate::keyring::{Recipient, printable};

/// The recipients of the current key set, ready to wrap file keys to.
pub(super) type Recipients = Vec<Box<dyn age::Recipient + Send + Sync>>;

/// The current key set's recipients, checked here rather than taken on the server's word: each
/// fingerprint is computed from its recipient, and the set's fingerprint from theirs.
pub(super) fn check_key_set(set: &api::CurrentKeySet) -> anyhow::Result<Recipients> {
    let mut fingerprints = Vec::new();
    let mut recipients = Vec::new();
    for key in &set.keys {
        let label = printable(&key.label);
        let recipient = Recipient::parse(&key.recipient)
            .with_context(|| format!("the server's key {label}"))?;
        if recipient.fingerprint() != key.fingerprint {
            bail!(
                "the server's key {label} does not have the fingerprint it claims: refusing to re-seal to it"
            );
        }
        recipient
            .check_usable()
            .with_context(|| format!("key {label} ({})", key.kind))?;
        recipients.push(recipient.to_age()?);
        fingerprints.push(key.fingerprint.clone());
    }
    if set.keys.is_empty() || crate::keyring::key_set_fingerprint(&fingerprints) != set.fingerprint
    {
        bail!(
            "the server's key set {} does not match its keys: refusing to re-seal to it",
            set.id
        );
    }
    Ok(recipients)
}

/// Refuses unless the analyst trusts every key of the set (`tipbox review keys`), naming each
/// key they do not with its full fingerprint, computed here. Nothing overrides this: a server
/// that adds a key of its own gets nothing re-sealed to it.
pub(super) fn require_trusted(set: &api::CurrentKeySet) -> anyhow::Result<()> {
    let Some(trusted) = TrustedKeys::load()? else {
        bail!(
            "refusing to re-seal: you have not pinned any reviewer key on this machine. Get each \
             reviewer's key and its fingerprint from them out of band, then run \
             `tipbox review keys trust RECIPIENT_OR_FILE` for each (or `tipbox review keys import \
             FILE` with the keys file your organisation distributes), and re-key again"
        );
    };
    let mut untrusted = Vec::new();
    for key in &set.keys {
        let fingerprint = Recipient::parse(&key.recipient)?.fingerprint();
        if trusted.get(&fingerprint).is_none() {
            untrusted.push(format!(
                "  {fingerprint}  {:<13} {}",
                printable(&key.kind),
                printable(&key.label)
            ));
        }
    }
    if !untrusted.is_empty() {
        bail!(
            "refusing to re-seal: the server's current key set {} holds {} key(s) you do not trust:\n\
             {}\n\
             Everything re-sealed would open for them. If a key is really your reviewer's (compare \
             its full fingerprint with the one they give you in person or on a call), trust it with \
             `tipbox review keys trust RECIPIENT --label NAME` and re-key again; otherwise tell \
             your organisation. (--yes does not skip this check.)",
            set.id,
            untrusted.len(),
            untrusted.join("\n")
        );
    }
    Ok(())
}

/// Asks before re-sealing anything: every item re-sealed becomes readable by each key listed,
/// shown with its full fingerprint.
pub(super) fn confirm_key_set(
    set: &api::CurrentKeySet,
    remaining: &api::Remaining,
    yes: bool,
) -> anyhow::Result<()> {
    println!(
        "{} item(s) are sealed to a retired key (they get a new header) and {} to a revoked key \
         (they are encrypted afresh).",
        remaining.header, remaining.payload
    );
    println!(
        "They will be re-sealed to key set {}, whose keys you all trust:",
        set.id
    );
    for key in &set.keys {
        println!(
            "  {}  {:<13} {}",
            key.fingerprint,
            printable(&key.kind),
            printable(&key.label)
        );
    }
    println!("Each of these keys will be able to open them.");
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "not re-sealing without a confirmation: check the keys above, then run again with --yes"
        );
    }
    eprint!("Re-seal to these keys? [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        bail!("nothing was re-sealed");
    }
    Ok(())
}

/// The key set this client last saw on a server (`seen-key-set.json` in its directory).
#[derive(Serialize, Deserialize)]
struct SeenKeySet {
    server: String,
    key_set: i64,
    /// By fingerprint (computed here): kind and label.
    keys: BTreeMap<String, SeenKey>,
}

#[derive(Clone, Serialize, Deserialize)]
struct SeenKey {
    kind: String,
    label: String,
}

/// Tells the analyst when the server's current key set is not the one this client saw there
/// last, and which keys were added and removed (full fingerprints, computed here from the
/// recipients; whether the analyst trusts each added key); then remembers it.
pub(super) fn report_changes(
    server: &str,
    current: Option<&api::CurrentKeySet>,
) -> anyhow::Result<()> {
    let Some(set) = current else {
        println!("The server has no active reviewer key: submissions are paused.");
        return Ok(());
    };
    let mut keys = BTreeMap::new();
    for key in &set.keys {
        let label = printable(&key.label);
        let Ok(recipient) = Recipient::parse(&key.recipient) else {
            println!("WARNING: the server's key {label} is not a recipient this client reads");
            continue;
        };
        let fingerprint = recipient.fingerprint();
        if fingerprint != key.fingerprint {
            println!(
                "WARNING: the server claims the fingerprint {} for the key {label}, whose \
                 recipient has the fingerprint {fingerprint}",
                printable(&key.fingerprint)
            );
        }
        keys.insert(
            fingerprint,
            SeenKey {
                kind: recipient.kind.as_db(),
                label,
            },
        );
    }
    let path = client_dir()?.join("seen-key-set.json");
    let before = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| serde_json::from_str::<SeenKeySet>(&text).ok())
        .filter(|seen| seen.server == server);
    let trusted = TrustedKeys::load()?;
    let trust_note = |fingerprint: &str| match &trusted {
        Some(trusted) if trusted.get(fingerprint).is_some() => "trusted",
        _ => "NOT trusted by you",
    };
    match &before {
        Some(seen) if seen.key_set == set.id && seen.keys.keys().eq(keys.keys()) => {}
        Some(seen) => {
            println!(
                "The reviewer keys changed since you last looked: new tips are now sealed to key \
                 set {} (was {}).",
                set.id, seen.key_set
            );
            for (fingerprint, key) in keys.iter().filter(|(f, _)| !seen.keys.contains_key(*f)) {
                println!(
                    "  added:   {fingerprint}  {:<13} {}  [{}]",
                    key.kind,
                    key.label,
                    trust_note(fingerprint)
                );
            }
            for (fingerprint, key) in seen.keys.iter().filter(|(f, _)| !keys.contains_key(*f)) {
                println!(
                    "  removed: {fingerprint}  {:<13} {}",
                    key.kind,
                    printable(&key.label)
                );
            }
            println!(
                "Every added key can open every new tip: compare its full fingerprint with the one \
                 its reviewer gives you out of band."
            );
        }
        None => {
            println!(
                "New tips are sealed to key set {}; each of these keys can open them:",
                set.id
            );
            for (fingerprint, key) in &keys {
                println!(
                    "  {fingerprint}  {:<13} {}  [{}]",
                    key.kind,
                    key.label,
                    trust_note(fingerprint)
                );
            }
        }
    }
    let seen = SeenKeySet {
        server: server.to_owned(),
        key_set: set.id,
        keys,
    };
    write_private(&path, serde_json::to_string_pretty(&seen)?.as_bytes())?;
    Ok(())
}
