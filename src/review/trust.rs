//! The reviewer keys this analyst trusts, pinned in a file of the client's own
//! (`trusted-keys.json` in the client's directory, readable by this user only), and the
//! `tipbox review keys` commands that keep it. Nothing is ever sealed to a key that is not in
//! it, whatever the server says (`keyset::require_trusted`).
//!
//! A key gets there only by an explicit command on the analyst's machine: `trust`, after the
//! analyst compared its full fingerprint with the one its reviewer gave them out of band (or
//! asserted it with `--fingerprint`), or `import` of a keys file the organisation distributes.
//! Fingerprints are always computed here, from the recipient, never read from elsewhere.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::session::{client_dir, write_private};
use crate::api::Time;
use crate::keyring::{KeyFile, Recipient, printable};

/// The trusted keys, as the file holds them.
#[derive(Default, Serialize, Deserialize)]
pub(super) struct TrustedKeys {
    keys: Vec<TrustedKey>,
}

/// One trusted key.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct TrustedKey {
    /// SHA-256 (hex) of the canonical recipient, as `keyring::Recipient::fingerprint`.
    pub fingerprint: String,
    pub recipient: String,
    /// The analyst's name for it, without control or invisible formatting characters.
    pub label: String,
    pub added_at: Time,
}

fn trusted_keys_path() -> anyhow::Result<PathBuf> {
    Ok(client_dir()?.join("trusted-keys.json"))
}

impl TrustedKeys {
    /// The file, or `None` if the analyst has not trusted any key yet. Each entry's fingerprint
    /// is checked against its recipient: a file edited by hand does not get to say otherwise.
    pub fn load() -> anyhow::Result<Option<Self>> {
        let path = trusted_keys_path()?;
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
        };
        let keys: Self =
            serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
        for key in &keys.keys {
            let computed = Recipient::parse(&key.recipient)
                .with_context(|| format!("{}: key {}", path.display(), key.fingerprint))?
                .fingerprint();
            if computed != key.fingerprint {
                bail!(
                    "{}: the key labelled {:?} does not have the fingerprint recorded for it; \
                     remove the entry (`tipbox review keys untrust {}`) and trust the key again",
                    path.display(),
                    printable(&key.label),
                    key.fingerprint
                );
            }
        }
        Ok(Some(keys))
    }

    fn save(&self) -> anyhow::Result<PathBuf> {
        let path = trusted_keys_path()?;
        write_private(&path, serde_json::to_string_pretty(self)?.as_bytes())?;
        Ok(path)
    }

    /// The trusted key with this fingerprint (64 lower-case hex digits).
    pub fn get(&self, fingerprint: &str) -> Option<&TrustedKey> {
        self.keys.iter().find(|k| k.fingerprint == fingerprint)
    }

    /// Adds a key; `None` if it was trusted already (the existing entry is kept).
    fn add(&mut self, recipient: &Recipient, label: &str) -> Option<&TrustedKey> {
        let fingerprint = recipient.fingerprint();
        if self.get(&fingerprint).is_some() {
            return None;
        }
        self.keys.push(TrustedKey {
            fingerprint,
            recipient: recipient.text.clone(),
            label: label.to_owned(),
            added_at: Time(crate::clock::now()),
        });
        self.keys.last()
    }
}

/// A label as it is kept and shown: printable, trimmed, and not empty.
fn clean_label(label: &str) -> anyhow::Result<String> {
    let label = printable(label).trim().to_owned();
    if label.is_empty() {
        bail!("the key needs a label: give --label NAME");
    }
    Ok(label)
}

/// A fingerprint as typed: case, spaces and colons do not matter; all 64 hex digits do.
fn normalized_fingerprint(typed: &str) -> anyhow::Result<String> {
    let fingerprint: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    if fingerprint.len() != 64 || !fingerprint.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(
            "a fingerprint here is all 64 hex digits of the key's SHA-256 (`tipbox review keys list`, \
             keys/README.md), not a prefix"
        );
    }
    Ok(fingerprint)
}

/// `tipbox review keys trust RECIPIENT_OR_FILE`: pins one reviewer key. Its full fingerprint is
/// shown and the analyst confirms that it is the one the reviewer gave them out of band, or
/// asserts it beforehand with `--fingerprint`. A file is read as in `keys/` (one recipient; its
/// first comment line is the label unless `--label` is given).
pub fn trust(
    recipient_or_file: &str,
    label: Option<String>,
    fingerprint: Option<String>,
) -> anyhow::Result<()> {
    let path = Path::new(recipient_or_file);
    let (recipient, file_label) = if path.is_file() {
        let file = KeyFile::read(path)?;
        (file.recipient, file.owner_comment)
    } else {
        (Recipient::parse(recipient_or_file)?, None)
    };
    let label = clean_label(label.or(file_label).as_deref().unwrap_or_default())?;
    let computed = recipient.fingerprint();
    println!("Key:         {}", recipient.text);
    println!("Kind:        {}", recipient.kind.as_db());
    println!("Label:       {label}");
    println!("Fingerprint: {computed}");
    match fingerprint {
        Some(expected) => {
            if normalized_fingerprint(&expected)? != computed {
                bail!(
                    "the fingerprint you gave is not this key's: not trusting it. Ask the reviewer \
                     again, over a channel other than the one the key came by"
                );
            }
        }
        None => confirm_fingerprint()?,
    }
    let mut trusted = TrustedKeys::load()?.unwrap_or_default();
    if trusted.add(&recipient, &label).is_none() {
        println!("already trusted: {computed}");
        return Ok(());
    }
    let path = trusted.save()?;
    println!("trusted {computed} ({label}); kept in {}", path.display());
    Ok(())
}

/// Asks the analyst, on a terminal, whether the fingerprint shown is the reviewer's.
fn confirm_fingerprint() -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "not trusting a key without a confirmation: compare the fingerprint above with the one \
             the reviewer gave you (in person, or on a call), then run again on a terminal or with \
             --fingerprint FINGERPRINT"
        );
    }
    eprint!(
        "Is this exactly the fingerprint the key's reviewer gave you, out of band (in person, or on \
         a call in which you recognised them)? Type yes to trust it: "
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        bail!("not trusted");
    }
    Ok(())
}

/// `tipbox review keys list`: the trusted keys, with full fingerprints.
pub fn list() -> anyhow::Result<()> {
    let path = trusted_keys_path()?;
    let Some(trusted) = TrustedKeys::load()? else {
        println!(
            "no trusted keys yet ({} does not exist): add your reviewers' keys with \
             `tipbox review keys trust RECIPIENT_OR_FILE` or `tipbox review keys import FILE`",
            path.display()
        );
        return Ok(());
    };
    println!(
        "{:<64}  {:<20}  {:<13}  LABEL",
        "FINGERPRINT (SHA-256)", "TRUSTED SINCE", "KIND"
    );
    for key in &trusted.keys {
        let kind = Recipient::parse(&key.recipient)
            .map(|r| r.kind.as_db())
            .unwrap_or_default();
        println!(
            "{}  {:<20}  {:<13}  {}",
            key.fingerprint,
            key.added_at.to_string(),
            kind,
            printable(&key.label)
        );
    }
    Ok(())
}

/// `tipbox review keys untrust FINGERPRINT`: nothing is sealed to that key from this machine
/// any more.
pub fn untrust(fingerprint: &str) -> anyhow::Result<()> {
    let fingerprint = normalized_fingerprint(fingerprint)?;
    let mut trusted = TrustedKeys::load()?.unwrap_or_default();
    let Some(at) = trusted
        .keys
        .iter()
        .position(|k| k.fingerprint == fingerprint)
    else {
        bail!("no trusted key has the fingerprint {fingerprint} (`tipbox review keys list`)");
    };
    let key = trusted.keys.remove(at);
    trusted.save()?;
    println!("untrusted {} ({})", key.fingerprint, printable(&key.label));
    Ok(())
}

/// `tipbox review keys import FILE`: trusts every key of a keys file the organisation
/// distributes (obtained over a channel the analyst trusts): one recipient per line, the first
/// `#` comment line since the previous recipient labelling it (else an SSH key's own comment),
/// as in `keys/README.md` — the concatenation of a deployment's `keys/` files is one. Any line
/// that is not a recipient refuses the whole file.
pub fn import(file: &Path) -> anyhow::Result<()> {
    let keys = read_keys_file(file)?;
    let mut trusted = TrustedKeys::load()?.unwrap_or_default();
    let mut added = 0;
    for (recipient, label) in &keys {
        let fingerprint = recipient.fingerprint();
        match trusted.add(recipient, label) {
            Some(_) => {
                added += 1;
                println!("trusted          {fingerprint}  {label}");
            }
            None => println!("already trusted  {fingerprint}  {label}"),
        }
    }
    let path = trusted.save()?;
    println!(
        "{added} key(s) of {} added to {}",
        keys.len(),
        path.display()
    );
    Ok(())
}

/// The recipients of a keys file with their labels (see `import`).
fn read_keys_file(path: &Path) -> anyhow::Result<Vec<(Recipient, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut keys = Vec::new();
    let mut comment: Option<String> = None;
    for (number, line) in (1..).zip(text.lines()) {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(text) = line.strip_prefix('#') {
            let text = text.trim();
            if comment.is_none() && !text.is_empty() {
                comment = Some(text.to_owned());
            }
            continue;
        }
        let recipient =
            Recipient::parse(line).with_context(|| format!("{}, line {number}", path.display()))?;
        let ssh_comment = line.starts_with("ssh-").then(|| {
            line.split_whitespace()
                .skip(2)
                .collect::<Vec<_>>()
                .join(" ")
        });
        let label = comment.take().or(ssh_comment).unwrap_or_default();
        let label = clean_label(&label).with_context(|| {
            format!(
                "{}, line {number}: no `# label` comment line before this key",
                path.display()
            )
        })?;
        keys.push((recipient, label));
    }
    if keys.is_empty() {
        bail!("{} holds no recipient", path.display());
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipient() -> String {
        age::x25519::Identity::generate().to_public().to_string()
    }

    #[test]
    fn a_keys_file_labels_each_key_by_the_comment_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (recipient(), recipient());
        let path = dir.path().join("keys.txt");
        std::fs::write(
            &path,
            format!(
                "# Alice Example (lead reviewer)\n# made 2026-03-02\n{a}\n\n# Bob\u{202E}gnp.exe\n{b}\n"
            ),
        )
        .unwrap();
        let keys = read_keys_file(&path).unwrap();
        let labels: Vec<&str> = keys.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(labels, ["Alice Example (lead reviewer)", "Bobgnp.exe"]);
        assert_eq!(keys[1].0.text, b);

        // A key without a label, a private key, garbage: the whole file is refused.
        for bad in [
            format!("# Alice\n{a}\n{b}\n"),
            "# Alice\nAGE-SECRET-KEY-1QQQQ\n".to_owned(),
            "# Alice\nhello\n".to_owned(),
            "# nothing here\n".to_owned(),
        ] {
            std::fs::write(&path, &bad).unwrap();
            assert!(read_keys_file(&path).is_err(), "{bad}");
        }
    }

    #[test]
    fn fingerprints_are_typed_in_full() {
        let full = "ab".repeat(32);
        assert_eq!(normalized_fingerprint(&full.to_uppercase()).unwrap(), full);
        let spaced: String = full
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(normalized_fingerprint(&spaced).unwrap(), full);
        assert!(normalized_fingerprint(&full[..16]).is_err());
        assert!(normalized_fingerprint(&"g".repeat(64)).is_err());
    }
}
