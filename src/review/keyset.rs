//! The key set the server asks the client to re-seal to, checked before anything is sealed to
//! it: its recipients must match the fingerprints claimed for them, and the analyst confirms
//! the keys. (Keys the analyst pins in a trusted-keys file of the client's own directory will
//! be checked here too, before the prompt, so that no `--yes` skips them.)

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, bail};

use crate::api;

/// The recipients of the current key set, ready to wrap file keys to.
pub(super) type Recipients = Vec<Box<dyn age::Recipient + Send + Sync>>;

/// The current key set's recipients, checked here rather than taken on the server's word: each
/// fingerprint is computed from its recipient, and the set's fingerprint from theirs.
pub(super) fn check_key_set(set: &api::CurrentKeySet) -> anyhow::Result<Recipients> {
    let mut fingerprints = Vec::new();
    let mut recipients = Vec::new();
    for key in &set.keys {
        let recipient = crate::keyring::Recipient::parse(&key.recipient)
            .with_context(|| format!("the server's key {}", key.label))?;
        if recipient.fingerprint() != key.fingerprint {
            bail!(
                "the server's key {} does not have the fingerprint it claims: refusing to re-seal to it",
                key.label
            );
        }
        recipient
            .check_usable()
            .with_context(|| format!("key {} ({})", key.label, key.kind))?;
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

/// Asks before re-sealing anything: every item re-sealed becomes readable by each key listed,
/// so the analyst compares them with the fingerprints the reviewers gave them.
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
    println!("They will be re-sealed to key set {}:", set.id);
    for key in &set.keys {
        println!(
            "  {}  {:<14} {}",
            &key.fingerprint[..16.min(key.fingerprint.len())],
            key.kind,
            key.label
                .chars()
                .filter(|c| !c.is_control())
                .collect::<String>()
        );
    }
    println!(
        "Each of these keys will be able to open them. Compare the fingerprints with the ones your \
         reviewers gave you (keys/README.md)."
    );
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
