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

/// A reviewer key as stored.
#[derive(Debug, Clone)]
pub struct ReviewerKey {
    pub id: i64,
    pub label: String,
    pub recipient: Recipient,
    pub fingerprint: String,
    pub active: bool,
    pub added_at: i64,
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

    #[test]
    fn key_set_fingerprint_ignores_order() {
        let a = vec!["aa".to_string(), "bb".to_string()];
        let b = vec!["bb".to_string(), "aa".to_string()];
        assert_eq!(key_set_fingerprint(&a), key_set_fingerprint(&b));
        assert_ne!(key_set_fingerprint(&a), key_set_fingerprint(&a[..1]));
    }
}
