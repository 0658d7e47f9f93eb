//! Reviewer recipients: parsing (age X25519, SSH, age plugins), fingerprints, and the active
//! key set every new submission is sealed to.
//!
//! The server only ever holds public halves. Anything that looks like a private key is
//! refused with a message, so that a reviewer who hands over the wrong file learns it at once.

use std::path::Path;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// What kind of recipient a reviewer key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    X25519,
    SshEd25519,
    SshRsa,
    /// An age plugin recipient (`age1<name>1…`), sealed through the `age-plugin-<name>` binary.
    Plugin(String),
}

impl KeyKind {
    pub fn as_db(&self) -> String {
        match self {
            KeyKind::X25519 => "x25519".into(),
            KeyKind::SshEd25519 => "ssh-ed25519".into(),
            KeyKind::SshRsa => "ssh-rsa".into(),
            KeyKind::Plugin(name) => format!("plugin:{name}"),
        }
    }
}

/// A parsed, canonical reviewer recipient.
#[derive(Debug, Clone)]
pub struct Recipient {
    /// The canonical recipient string (for SSH keys: without the comment).
    pub text: String,
    pub kind: KeyKind,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "this is a PRIVATE key: never hand it to the server. Give only its public half \
         (`age-keygen -y key.txt`, or the .pub file of an SSH key) — see keys/README.md"
    )]
    PrivateKey,
    #[error(
        "not a recipient this server understands ({0}); expected age1…, ssh-ed25519 … or ssh-rsa …"
    )]
    Unrecognised(String),
    #[error("SSH key not usable: {0}")]
    Ssh(String),
    #[error(
        "age plugin `age-plugin-{0}` is not installed on this machine (not found in PATH); \
         install it before adding or using this key"
    )]
    MissingPlugin(String),
    #[error("{path}: {why}")]
    File { path: String, why: String },
}

impl Recipient {
    pub fn parse(input: &str) -> Result<Self, KeyError> {
        let s = input.trim();
        if looks_private(s) {
            return Err(KeyError::PrivateKey);
        }
        if s.starts_with("ssh-") {
            let parsed = age::ssh::Recipient::from_str(s).map_err(|e| {
                use age::ssh::ParseRecipientKeyError as E;
                KeyError::Ssh(match e {
                    E::RsaModulusTooSmall => "RSA keys must have at least 2048 bits".into(),
                    E::RsaModulusTooLarge => "RSA key is larger than age supports".into(),
                    E::Unsupported(kind) => {
                        format!("{kind} keys are not supported by age; use ssh-ed25519 or ssh-rsa")
                    }
                    E::Invalid(why) => why.into(),
                    _ => "not a supported SSH public key".into(),
                })
            })?;
            let kind = match &parsed {
                age::ssh::Recipient::SshEd25519(..) => KeyKind::SshEd25519,
                age::ssh::Recipient::SshRsa(..) => KeyKind::SshRsa,
            };
            return Ok(Self {
                text: parsed.to_string(),
                kind,
            });
        }
        if let Ok(r) = age::x25519::Recipient::from_str(s) {
            return Ok(Self {
                text: r.to_string(),
                kind: KeyKind::X25519,
            });
        }
        if let Ok(r) = age::plugin::Recipient::from_str(s) {
            return Ok(Self {
                text: r.to_string(),
                kind: KeyKind::Plugin(r.plugin().to_owned()),
            });
        }
        let shown: String = s.chars().take(24).collect();
        Err(KeyError::Unrecognised(format!("`{shown}…`")))
    }

    /// A stable identifier for this key: SHA-256 of the canonical recipient, hex.
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(self.text.as_bytes()))
    }

    /// Fails if this recipient needs an age plugin binary that is not installed.
    pub fn check_usable(&self) -> Result<(), KeyError> {
        if let KeyKind::Plugin(name) = &self.kind
            && which::which(format!("age-plugin-{name}")).is_err()
        {
            return Err(KeyError::MissingPlugin(name.clone()));
        }
        Ok(())
    }

    pub fn to_age(&self) -> Result<Box<dyn age::Recipient + Send + Sync>, KeyError> {
        Ok(match &self.kind {
            KeyKind::X25519 => Box::new(
                age::x25519::Recipient::from_str(&self.text)
                    .map_err(|e| KeyError::Unrecognised(e.into()))?,
            ),
            KeyKind::SshEd25519 | KeyKind::SshRsa => Box::new(
                age::ssh::Recipient::from_str(&self.text)
                    .map_err(|_| KeyError::Ssh("stored SSH key no longer parses".into()))?,
            ),
            KeyKind::Plugin(name) => {
                let recipient = age::plugin::Recipient::from_str(&self.text)
                    .map_err(|e| KeyError::Unrecognised(e.into()))?;
                Box::new(
                    age::plugin::RecipientPluginV1::new(name, &[recipient], &[], age::NoCallbacks)
                        .map_err(|_| KeyError::MissingPlugin(name.clone()))?,
                )
            }
        })
    }
}

fn looks_private(s: &str) -> bool {
    let upper = s.to_ascii_uppercase();
    upper.contains("AGE-SECRET-KEY-")
        || upper.contains("AGE-PLUGIN-")
        || upper.contains("PRIVATE KEY")
}

/// A recipient read from a file in `keys/`: one recipient, and `#` comment lines, the first of
/// which names the key's owner.
#[derive(Debug)]
pub struct KeyFile {
    pub recipient: Recipient,
    pub owner_comment: Option<String>,
}

impl KeyFile {
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let file_error = |why: String| KeyError::File {
            path: path.display().to_string(),
            why,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
        let mut owner_comment = None;
        let mut ssh_comment = None;
        let mut recipients = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(comment) = line.strip_prefix('#') {
                let comment = comment.trim();
                if owner_comment.is_none() && !comment.is_empty() {
                    owner_comment = Some(comment.to_owned());
                }
            } else {
                // `Recipient::parse` refuses private keys (an SSH private key's armour
                // lines, an age identity) with an explanation.
                recipients.push(Recipient::parse(line)?);
                if line.starts_with("ssh-") {
                    // An SSH public key line ends in its comment, usually naming its owner.
                    let comment = line
                        .split_whitespace()
                        .skip(2)
                        .collect::<Vec<_>>()
                        .join(" ");
                    ssh_comment = Some(comment).filter(|c| !c.is_empty());
                }
            }
        }
        let owner_comment = owner_comment.or(ssh_comment);
        match recipients.len() {
            1 => Ok(Self {
                recipient: recipients.remove(0),
                owner_comment,
            }),
            0 => Err(file_error("holds no recipient".into())),
            n => Err(file_error(format!(
                "holds {n} recipients; keep one recipient per file"
            ))),
        }
    }
}

/// A reviewer key as stored, with its history.
#[derive(Debug, Clone)]
pub struct ReviewerKey {
    pub id: i64,
    pub label: String,
    /// Who holds the key, if the operator said.
    pub owner: Option<String>,
    pub recipient: Recipient,
    pub fingerprint: String,
    pub active: bool,
    pub added_at: i64,
    pub retired_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// Where a key is in its life. Keys only move forward: active → retired → revoked, or
/// active → revoked; a key that left the active set never comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    /// Every new item is sealed to it.
    Active,
    /// No longer sealed to; items sealed to it should be re-keyed (a new header suffices).
    Retired,
    /// Assumed compromised: out of the active set, and items sealed to it need a fresh
    /// encryption, because its holder may keep copies of their old headers.
    Revoked,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Retired => "retired",
            KeyStatus::Revoked => "revoked",
        }
    }
}

impl ReviewerKey {
    pub fn status(&self) -> KeyStatus {
        if self.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if self.active {
            KeyStatus::Active
        } else {
            KeyStatus::Retired
        }
    }

    /// The key as `keys list --json` and the admin API show it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "fingerprint": self.fingerprint,
            "label": self.label,
            "owner": self.owner,
            "kind": self.recipient.kind.as_db(),
            "recipient": self.recipient.text,
            "state": self.status(),
            "added_at": self.added_at,
            "retired_at": self.retired_at,
            "revoked_at": self.revoked_at,
        })
    }

    /// The first 16 hex digits of the fingerprint, as `keys list` shows it.
    pub fn short_fingerprint(&self) -> &str {
        &self.fingerprint[..16.min(self.fingerprint.len())]
    }
}

/// What the key policy warns about, given how many keys are active.
pub fn policy_warnings(active: usize) -> Vec<&'static str> {
    match active {
        0 => vec!["no reviewer key is active: submissions are paused (`tipbox keys add`)"],
        1 => vec![
            "only one reviewer key is active: if it is lost, so is every tip sealed to it; add a \
             second (an offline backup key is the recommended one)",
        ],
        _ => vec![],
    }
}

/// Why `KEY` (an id, a fingerprint or a label) names no single key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyLookupError {
    #[error("no reviewer key matches `{0}` (see `tipbox keys list`)")]
    NotFound(String),
    #[error("`{0}` matches several keys ({1}); give the key's id or more of its fingerprint")]
    Ambiguous(String, String),
}

/// Finds the one key that `wanted` names: its id, its fingerprint (all 64 hex digits, or a
/// prefix of at least 8), or its exact label. Anything matching more than one key is refused
/// rather than guessed.
pub fn find_key<'a>(
    keys: &'a [ReviewerKey],
    wanted: &str,
) -> Result<&'a ReviewerKey, KeyLookupError> {
    let wanted = wanted.trim();
    let lower = wanted.to_ascii_lowercase();
    let by_fingerprint =
        lower.len() >= 8 && lower.len() <= 64 && lower.bytes().all(|b| b.is_ascii_hexdigit());
    let matching: Vec<&ReviewerKey> = keys
        .iter()
        .filter(|k| {
            wanted.parse::<i64>().is_ok_and(|id| id == k.id)
                || (by_fingerprint && k.fingerprint.starts_with(&lower))
                || k.label == wanted
        })
        .collect();
    match matching.as_slice() {
        [key] => Ok(key),
        [] => Err(KeyLookupError::NotFound(wanted.to_owned())),
        several => Err(KeyLookupError::Ambiguous(
            wanted.to_owned(),
            several
                .iter()
                .map(|k| format!("id {} {}", k.id, k.label))
                .collect::<Vec<_>>()
                .join(", "),
        )),
    }
}

/// The keys every new submission is sealed to, and the key set row that records them.
pub struct ActiveKeySet {
    pub id: i64,
    pub fingerprint: String,
    pub keys: Vec<ReviewerKey>,
    recipients: Vec<Box<dyn age::Recipient + Send + Sync>>,
}

impl std::fmt::Debug for ActiveKeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveKeySet")
            .field("id", &self.id)
            .field("fingerprint", &self.fingerprint)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl ActiveKeySet {
    /// Builds the set; every key must be usable here (plugins installed), or none is used.
    pub fn new(id: i64, fingerprint: String, keys: Vec<ReviewerKey>) -> Result<Self, KeyError> {
        let recipients = keys
            .iter()
            .map(|k| {
                k.recipient.check_usable()?;
                k.recipient.to_age()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            id,
            fingerprint,
            keys,
            recipients,
        })
    }

    /// A fresh encryptor for one sealed item (new file key, one stanza per reviewer).
    pub fn encryptor(&self) -> Result<age::Encryptor, age::EncryptError> {
        age::Encryptor::with_recipients(
            self.recipients
                .iter()
                .map(|r| r.as_ref() as &dyn age::Recipient),
        )
    }
}

/// Text someone else chose (a key's label, an attachment's name) as it may be shown or used as
/// a name: without control characters and without invisible formatting ones, whose
/// bidirectional overrides could disguise it (`invoice\u{202E}fdp.sh` shows as
/// "invoicehs.pdf").
pub fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() && !is_invisible_format(*c))
        .collect()
}

/// Format characters that show nothing themselves: soft hyphens, zero-width characters,
/// bidirectional marks, embeddings, overrides and isolates, invisible operators, the byte order
/// mark, interlinear annotation marks and tag characters.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}'
        | '\u{E0000}'..='\u{E007F}')
}

/// The fingerprint of a set of keys: SHA-256 over their sorted fingerprints.
pub fn key_set_fingerprint(key_fingerprints: &[String]) -> String {
    let mut sorted: Vec<&String> = key_fingerprints.iter().collect();
    sorted.sort();
    let mut hasher = Sha256::new();
    for fp in sorted {
        hasher.update(fp.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x25519_recipients_parse_and_private_keys_are_refused() {
        let identity = age::x25519::Identity::generate();
        let public = identity.to_public().to_string();
        let parsed = Recipient::parse(&format!("  {public}\n")).unwrap();
        assert_eq!(parsed.kind, KeyKind::X25519);
        assert_eq!(parsed.text, public);
        use age::secrecy::ExposeSecret;
        let private = identity.to_string();
        assert!(matches!(
            Recipient::parse(private.expose_secret()),
            Err(KeyError::PrivateKey)
        ));
    }

    #[test]
    fn a_plugin_recipient_without_its_binary_is_a_clear_error() {
        use bech32::{Bech32, Hrp};
        let hrp = Hrp::parse("age1tipboxnosuchplugin").unwrap();
        let text = bech32::encode::<Bech32>(hrp, &[7u8; 33]).unwrap();
        let parsed = Recipient::parse(&text).unwrap();
        assert_eq!(parsed.kind, KeyKind::Plugin("tipboxnosuchplugin".into()));
        let err = parsed.check_usable().unwrap_err().to_string();
        assert!(err.contains("age-plugin-tipboxnosuchplugin"), "{err}");
    }

    #[test]
    fn garbage_is_unrecognised() {
        assert!(matches!(
            Recipient::parse("hello"),
            Err(KeyError::Unrecognised(_))
        ));
    }

    fn stored(id: i64, label: &str) -> ReviewerKey {
        let recipient =
            Recipient::parse(&age::x25519::Identity::generate().to_public().to_string()).unwrap();
        ReviewerKey {
            id,
            label: label.into(),
            owner: None,
            fingerprint: recipient.fingerprint(),
            recipient,
            active: true,
            added_at: 0,
            retired_at: None,
            revoked_at: None,
        }
    }

    #[test]
    fn keys_are_found_by_id_fingerprint_or_label_and_never_guessed() {
        let keys = vec![stored(1, "alice"), stored(2, "bob"), stored(3, "1")];
        assert_eq!(find_key(&keys, "2").unwrap().label, "bob");
        assert_eq!(find_key(&keys, "alice").unwrap().id, 1);
        assert_eq!(find_key(&keys, &keys[1].fingerprint).unwrap().id, 2);
        let prefix = keys[1].fingerprint[..8].to_ascii_uppercase();
        assert_eq!(find_key(&keys, &prefix).unwrap().id, 2);
        // Too short a prefix is not a fingerprint.
        assert!(matches!(
            find_key(&keys, &keys[1].fingerprint[..7]),
            Err(KeyLookupError::NotFound(_))
        ));
        // "1" is key 1's id and key 3's label.
        assert!(matches!(
            find_key(&keys, "1"),
            Err(KeyLookupError::Ambiguous(..))
        ));
        assert!(matches!(
            find_key(&keys, "carol"),
            Err(KeyLookupError::NotFound(_))
        ));
    }

    #[test]
    fn key_status_follows_the_history() {
        let mut key = stored(1, "alice");
        assert_eq!(key.status(), KeyStatus::Active);
        key.active = false;
        key.retired_at = Some(10);
        assert_eq!(key.status(), KeyStatus::Retired);
        key.revoked_at = Some(20);
        assert_eq!(key.status(), KeyStatus::Revoked);
    }

    #[test]
    fn printable_text_hides_nothing() {
        assert_eq!(printable("Bob\u{202E}kcab\u{7}\n"), "Bobkcab");
        assert_eq!(printable("a\u{200B}b\u{2066}c\u{E0041}d\u{FEFF}"), "abcd");
        assert_eq!(
            printable("Алиса 爱丽丝 (reviewer)"),
            "Алиса 爱丽丝 (reviewer)"
        );
    }

    #[test]
    fn key_set_fingerprint_ignores_order() {
        let a = vec!["aa".to_string(), "bb".to_string()];
        let b = vec!["bb".to_string(), "aa".to_string()];
        assert_eq!(key_set_fingerprint(&a), key_set_fingerprint(&b));
        assert_ne!(key_set_fingerprint(&a), key_set_fingerprint(&a[..1]));
    }
}
