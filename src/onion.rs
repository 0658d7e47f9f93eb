//! Tor v3 onion-service client authorization for the analyst listener: one x25519 key pair per
//! analyst. The service side gets `authorized_clients/NAME.auth` (the public half); the analyst
//! gets one `.auth_private` line (the private half) for their own Tor Browser or tor, printed
//! once and never stored by tipbox. Without a valid key, an analyst's tor cannot even fetch the
//! service's descriptor, so the analyst listener is unreachable, not merely password-protected.
//!
//! File formats (tor's `rend-spec-v3`, "client authorization"):
//!   `<service dir>/authorized_clients/NAME.auth`:  `descriptor:x25519:<base32 public key>`
//!   `NAME.auth_private` (the analyst's):           `<onion address without .onion>:descriptor:x25519:<base32 private key>`
//! Base32 is RFC 4648, upper case, without padding (52 characters for 32 bytes).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum OnionError {
    #[error(
        "analyst name {0:?} cannot name a tor authorization file: use 1 to 64 letters, digits, '-' or '_'"
    )]
    BadName(String),
    #[error(
        "{0}: no onion address yet — tor writes it when it first starts the analyst onion service (HiddenServiceDir); start or reload tor, then try again"
    )]
    NoHostname(PathBuf),
    #[error("{0}: not an onion v3 address")]
    BadHostname(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{0} already exists: revoke the old key first (`tipbox analyst onion-key NAME --revoke`)"
    )]
    Exists(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OnionError + '_ {
    move |source| OnionError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A new key pair, as the two lines tor reads.
pub struct ClientKey {
    /// `descriptor:x25519:<public>` for the service's `authorized_clients/NAME.auth`.
    pub auth_line: String,
    /// `<address>:descriptor:x25519:<private>` for the analyst's `NAME.auth_private`.
    pub private_line: Zeroizing<String>,
}

fn base32(bytes: &[u8]) -> String {
    base32::encode(base32::Alphabet::Rfc4648 { padding: false }, bytes)
}

fn check_name(name: &str) -> Result<(), OnionError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(OnionError::BadName(name.to_owned()))
    }
}

/// The onion address (without `.onion`) tor wrote into the service directory.
pub fn service_address(service_dir: &Path) -> Result<String, OnionError> {
    let path = service_dir.join("hostname");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(OnionError::NoHostname(path));
        }
        Err(e) => return Err(io(&path)(e)),
    };
    let address = text.trim().strip_suffix(".onion").unwrap_or(text.trim());
    let valid = address.len() == 56
        && address
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b));
    if !valid {
        return Err(OnionError::BadHostname(path));
    }
    Ok(address.to_owned())
}

/// Makes a key pair for `address` (without `.onion`).
pub fn generate(address: &str) -> ClientKey {
    let mut secret_bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(secret_bytes.as_mut()).expect("the operating system's random source works");
    let secret = x25519_dalek::StaticSecret::from(*secret_bytes);
    let public = x25519_dalek::PublicKey::from(&secret);
    let private_b32 = Zeroizing::new(base32(secret.as_bytes()));
    ClientKey {
        auth_line: format!("descriptor:x25519:{}", base32(public.as_bytes())),
        private_line: Zeroizing::new(format!("{address}:descriptor:x25519:{}", *private_b32)),
    }
}

fn auth_path(service_dir: &Path, name: &str) -> PathBuf {
    service_dir
        .join("authorized_clients")
        .join(format!("{name}.auth"))
}

/// Makes a key pair for analyst `name`, writes the public half into the service directory
/// (owned like the directory, mode 0600, so that tor can read it when this runs as root), and
/// returns both lines. Refuses to replace an existing key.
pub fn add_client(service_dir: &Path, name: &str) -> Result<ClientKey, OnionError> {
    check_name(name)?;
    let address = service_address(service_dir)?;
    let dir = service_dir.join("authorized_clients");
    if !dir.exists() {
        fs::create_dir(&dir).map_err(io(&dir))?;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(io(&dir))?;
        follow_owner(service_dir, &dir)?;
    }
    let path = auth_path(service_dir, name);
    let key = generate(&address);
    let mut file = match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(OnionError::Exists(path));
        }
        Err(e) => return Err(io(&path)(e)),
    };
    writeln!(file, "{}", key.auth_line)
        .and_then(|()| file.sync_all())
        .map_err(io(&path))?;
    follow_owner(service_dir, &path)?;
    Ok(key)
}

/// Removes analyst `name`'s authorization; true if there was one. tor must be reloaded.
pub fn revoke_client(service_dir: &Path, name: &str) -> Result<bool, OnionError> {
    check_name(name)?;
    let path = auth_path(service_dir, name);
    match fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io(&path)(e)),
    }
}

/// Gives `path` the owner of the service directory (tor's user) when we may (as root);
/// otherwise leaves it ours, which is already right when we run as that user.
fn follow_owner(service_dir: &Path, path: &Path) -> Result<(), OnionError> {
    let owner = fs::metadata(service_dir).map_err(io(service_dir))?;
    let mine = fs::metadata(path).map_err(io(path))?;
    if (owner.uid(), owner.gid()) == (mine.uid(), mine.gid()) {
        return Ok(());
    }
    std::os::unix::fs::chown(path, Some(owner.uid()), Some(owner.gid())).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDRESS: &str = "p53lf57qovyuvwsc6xnrppyply3vtqm7l6pcobkmyqsiofyeznfu5uqd";

    #[test]
    fn lines_have_tors_format_and_the_halves_match() {
        let key = generate(ADDRESS);
        let public = key.auth_line.strip_prefix("descriptor:x25519:").unwrap();
        let private = key
            .private_line
            .strip_prefix(&format!("{ADDRESS}:descriptor:x25519:"))
            .unwrap();
        assert_eq!(public.len(), 52);
        assert_eq!(private.len(), 52);
        assert!(
            public
                .bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        );
        let decode = |s: &str| {
            let bytes = base32::decode(base32::Alphabet::Rfc4648 { padding: false }, s).unwrap();
            <[u8; 32]>::try_from(bytes).unwrap()
        };
        let secret = x25519_dalek::StaticSecret::from(decode(private));
        assert_eq!(
            x25519_dalek::PublicKey::from(&secret).as_bytes(),
            &decode(public)
        );
        assert_ne!(generate(ADDRESS).auth_line, key.auth_line);
    }

    #[test]
    fn files_are_written_once_and_revoked() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            add_client(dir.path(), "ana"),
            Err(OnionError::NoHostname(_))
        ));
        fs::write(dir.path().join("hostname"), format!("{ADDRESS}.onion\n")).unwrap();
        let key = add_client(dir.path(), "ana").unwrap();
        let path = dir.path().join("authorized_clients/ana.auth");
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{}\n", key.auth_line)
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(key.private_line.starts_with(ADDRESS));
        assert!(matches!(
            add_client(dir.path(), "ana"),
            Err(OnionError::Exists(_))
        ));
        assert!(matches!(
            add_client(dir.path(), "../x"),
            Err(OnionError::BadName(_))
        ));
        assert!(revoke_client(dir.path(), "ana").unwrap());
        assert!(!path.exists());
        assert!(!revoke_client(dir.path(), "ana").unwrap());
    }
}
