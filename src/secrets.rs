//! The server secret: 32 random bytes in `<data_dir>/server.secret` (mode 0600), from which
//! purpose-bound subkeys are derived with HKDF.
//!
//! It keys the receipt lookup hash and salts the reply-identity derivation, so that a copy of
//! the database alone is not enough to test guessed receipts. It never leaves the data
//! directory and is never stored in the database; the database keeps only a check value so
//! that a node started with the wrong secret refuses to run instead of issuing receipts that
//! can never be looked up.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

pub const SECRET_FILE: &str = "server.secret";

/// The root secret. Subkeys are derived on demand; nothing here is ever logged.
pub struct ServerSecret {
    root: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecret(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "server secret {0} does not exist (run `tipbox init`, or copy it from another node of this deployment)"
    )]
    Missing(PathBuf),
    #[error("server secret {path} is unreadable: {why}")]
    Unreadable { path: PathBuf, why: String },
    #[error(
        "server secret {0} is readable by other users; run `chmod 600` on it (and 700 on its directory)"
    )]
    TooOpen(PathBuf),
    #[error("could not create {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ServerSecret {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(SECRET_FILE)
    }

    /// Creates the data directory (0700) and a fresh secret (0600). Refuses to overwrite.
    pub fn create(data_dir: &Path) -> Result<Self, SecretError> {
        create_private_dir(data_dir)?;
        let path = Self::path(data_dir);
        let mut root = Zeroizing::new([0u8; 32]);
        getrandom::fill(root.as_mut()).map_err(|e| SecretError::Create {
            path: path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let mut encoded = Zeroizing::new(hex::encode(&root[..]));
        encoded.push('\n');
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| SecretError::Create {
                path: path.clone(),
                source,
            })?;
        file.write_all(encoded.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|source| SecretError::Create {
                path: path.clone(),
                source,
            })?;
        Ok(Self { root })
    }

    pub fn load(data_dir: &Path) -> Result<Self, SecretError> {
        let path = Self::path(data_dir);
        let unreadable = |why: String| SecretError::Unreadable {
            path: path.clone(),
            why,
        };
        let metadata = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SecretError::Missing(path));
            }
            Err(e) => return Err(unreadable(e.to_string())),
        };
        if metadata.permissions().mode() & 0o077 != 0 {
            return Err(SecretError::TooOpen(path));
        }
        let text =
            Zeroizing::new(fs::read_to_string(&path).map_err(|e| unreadable(e.to_string()))?);
        let mut bytes = hex::decode(text.trim())
            .map_err(|_| unreadable("not a hex-encoded 32-byte secret".into()))?;
        let mut root = Zeroizing::new([0u8; 32]);
        if bytes.len() != 32 {
            bytes.zeroize();
            return Err(unreadable("not a hex-encoded 32-byte secret".into()));
        }
        root.copy_from_slice(&bytes);
        bytes.zeroize();
        Ok(Self { root })
    }

    /// A 32-byte subkey bound to `purpose`; different purposes give independent keys.
    pub fn subkey(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        let hk = Hkdf::<Sha256>::new(Some(b"tipbox server secret v1"), self.root.as_ref());
        let mut out = Zeroizing::new([0u8; 32]);
        hk.expand(purpose.as_bytes(), out.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        out
    }

    /// A value stored in the database to recognise this secret without revealing it.
    pub fn check_value(&self) -> String {
        let key = self.subkey("database check");
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_ref()).expect("any key length");
        mac.update(b"tipbox: this database belongs to this server secret");
        hex::encode(mac.finalize().into_bytes())
    }
}

/// Creates a directory readable only by its owner (and its parents as needed).
pub fn create_private_dir(dir: &Path) -> Result<(), SecretError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| SecretError::Create {
            path: dir.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_secret_loads_back_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let created = ServerSecret::create(&data).unwrap();
        let loaded = ServerSecret::load(&data).unwrap();
        assert_eq!(created.check_value(), loaded.check_value());
        assert_eq!(*created.subkey("a"), *loaded.subkey("a"));
        assert_ne!(*created.subkey("a"), *created.subkey("b"));
        let mode = fs::metadata(ServerSecret::path(&data))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            fs::metadata(&data).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert!(ServerSecret::create(&data).is_err(), "never overwrites");
    }

    #[test]
    fn a_world_readable_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        ServerSecret::create(dir.path()).unwrap();
        let path = ServerSecret::path(dir.path());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            ServerSecret::load(dir.path()),
            Err(SecretError::TooOpen(_))
        ));
    }
}
