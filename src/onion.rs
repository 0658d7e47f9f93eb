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
//!
//! Two ways the analyst onion could be published without client authorization, both closed
//! here. tor authorizes clients only while `authorized_clients/` holds at least one key: removing
//! the last one turns authorization off and opens the service to anyone with its address, so
//! `revoke_client` refuses to remove the last key unless told to open the service. And tor
//! writes the service's address (`hostname`) only when it first publishes the service: a key
//! made after that leaves one publication without authorization. So when the service directory
//! has no address yet, `add_client` makes the service's identity key itself, in tor's own file
//! format (`prepare_service`): the address is known before tor ever starts the service, and tor
//! publishes it with the analyst's key from the first time.

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
    #[error(
        "{0} is the last client key of the analyst onion service. tor turns client authorization off when authorized_clients/ is empty: removing it would open the analyst listener to anyone who knows its address. Add another analyst's key first (`tipbox analyst onion-key OTHER`), or, to open the service on purpose, run this again with --open-analyst-onion"
    )]
    LastClient(PathBuf),
    #[error(
        "{0} holds tor's key of the service but no hostname and no public key: start tor once so that it writes the hostname, then try again"
    )]
    KeyWithoutAddress(PathBuf),
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

/// The files of tor's v3 onion-service identity key (`hs_service.c`), and the 32-byte headers
/// they begin with (`crypto_format.c`: `== <type>: <tag> ==`, padded with NULs).
const SECRET_KEY_FILE: &str = "hs_ed25519_secret_key";
const PUBLIC_KEY_FILE: &str = "hs_ed25519_public_key";
const SECRET_KEY_HEADER: &[u8; 32] = b"== ed25519v1-secret: type0 ==\0\0\0";
const PUBLIC_KEY_HEADER: &[u8; 32] = b"== ed25519v1-public: type0 ==\0\0\0";

/// The v3 onion address (without `.onion`) of a service's ed25519 public key:
/// `base32(public key | checksum | version 3)`, lower case, where the checksum is the first two
/// bytes of `SHA3-256(".onion checksum" | public key | version)` (rend-spec-v3, 6).
pub fn onion_address(public_key: &[u8; 32]) -> String {
    use sha3::{Digest, Sha3_256};
    const VERSION: u8 = 3;
    let checksum = Sha3_256::new()
        .chain_update(b".onion checksum")
        .chain_update(public_key)
        .chain_update([VERSION])
        .finalize();
    let mut bytes = public_key.to_vec();
    bytes.extend_from_slice(&checksum[..2]);
    bytes.push(VERSION);
    base32(&bytes).to_ascii_lowercase()
}

/// A new identity key of an onion service, as tor's two key files, and its address.
///
/// tor keeps the *expanded* ed25519 secret key (RFC 8032, 5.1.5): SHA-512 of a random seed, its
/// first half clamped (the scalar), its second half kept as the nonce prefix. tor itself makes
/// its keys this way (`ed25519_secret_key_from_seed`); the public key is the scalar times the
/// base point. The seed is not kept.
fn service_key() -> (Zeroizing<Vec<u8>>, Vec<u8>, String) {
    use sha2::{Digest, Sha512};
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).expect("the operating system's random source works");
    let mut expanded = Zeroizing::new([0u8; 64]);
    expanded.copy_from_slice(&Sha512::digest(&seed[..]));
    let mut lower = Zeroizing::new([0u8; 32]);
    lower.copy_from_slice(&expanded[..32]);
    let public = curve25519_dalek::EdwardsPoint::mul_base_clamped(*lower)
        .compress()
        .to_bytes();
    expanded[..32].copy_from_slice(&curve25519_dalek::scalar::clamp_integer(*lower));
    let mut secret_file = Zeroizing::new(Vec::with_capacity(96));
    secret_file.extend_from_slice(SECRET_KEY_HEADER);
    secret_file.extend_from_slice(expanded.as_ref());
    let mut public_file = PUBLIC_KEY_HEADER.to_vec();
    public_file.extend_from_slice(&public);
    (secret_file, public_file, onion_address(&public))
}

/// The address of a service whose directory has tor's public key file but no hostname yet.
fn address_from_public_key(service_dir: &Path) -> Result<Option<String>, OnionError> {
    let path = service_dir.join(PUBLIC_KEY_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&path)(e)),
    };
    match bytes.strip_prefix(PUBLIC_KEY_HEADER.as_slice()) {
        Some(key) => match <[u8; 32]>::try_from(key) {
            Ok(key) => Ok(Some(onion_address(&key))),
            Err(_) => Err(OnionError::BadHostname(path)),
        },
        None => Err(OnionError::BadHostname(path)),
    }
}

/// The analyst onion service's address, making the service's key first if tor has not made
/// one yet: creates `service_dir` (mode 0700, owned like its parent directory, which is tor's
/// DataDirectory on a usual install, so that tor accepts it) and writes tor's key files and
/// `hostname` into it. Returns the address (without `.onion`) and whether the key is new.
pub fn prepare_service(service_dir: &Path) -> Result<(String, bool), OnionError> {
    match service_address(service_dir) {
        Err(OnionError::NoHostname(_)) => {}
        known => return known.map(|address| (address, false)),
    }
    if let Some(address) = address_from_public_key(service_dir)? {
        return Ok((address, false));
    }
    if service_dir.join(SECRET_KEY_FILE).exists() {
        return Err(OnionError::KeyWithoutAddress(service_dir.to_owned()));
    }
    if !service_dir.exists() {
        let parent = service_dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        private_dir(service_dir, parent)?;
    }
    let (secret_key, public_key, address) = service_key();
    write_private(service_dir, &service_dir.join(SECRET_KEY_FILE), &secret_key)?;
    write_private(service_dir, &service_dir.join(PUBLIC_KEY_FILE), &public_key)?;
    write_private(
        service_dir,
        &service_dir.join("hostname"),
        format!("{address}.onion\n").as_bytes(),
    )?;
    Ok((address, true))
}

/// Creates `dir` with mode 0700, owned like `owner_of`.
fn private_dir(dir: &Path, owner_of: &Path) -> Result<(), OnionError> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    follow_owner(owner_of, dir)
}

/// Writes a new file (never replacing one), mode 0600, owned like `service_dir`.
fn write_private(service_dir: &Path, path: &Path, contents: &[u8]) -> Result<(), OnionError> {
    let mut file = match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(OnionError::Exists(path.to_owned()));
        }
        Err(e) => return Err(io(path)(e)),
    };
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(io(path))?;
    follow_owner(service_dir, path)
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
/// returns both lines. Refuses to replace an existing key. The service's address must be
/// known: call `prepare_service` first.
pub fn add_client(service_dir: &Path, name: &str) -> Result<ClientKey, OnionError> {
    check_name(name)?;
    let address = service_address(service_dir)?;
    let dir = service_dir.join("authorized_clients");
    if !dir.exists() {
        private_dir(&dir, service_dir)?;
    }
    let key = generate(&address);
    write_private(
        service_dir,
        &auth_path(service_dir, name),
        format!("{}\n", key.auth_line).as_bytes(),
    )?;
    Ok(key)
}

/// The client keys tor reads from the service directory: the `*.auth` files in
/// `authorized_clients/`.
pub fn client_keys(service_dir: &Path) -> Result<Vec<String>, OnionError> {
    let dir = service_dir.join("authorized_clients");
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(&dir)(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io(&dir))?;
        if let Some(name) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.strip_suffix(".auth"))
        {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Removes analyst `name`'s authorization; true if there was one. tor must be reloaded.
///
/// Refuses (`OnionError::LastClient`) to remove the last client key, which would turn client
/// authorization off, unless `open_service` says that is what is wanted.
pub fn revoke_client(
    service_dir: &Path,
    name: &str,
    open_service: bool,
) -> Result<bool, OnionError> {
    check_name(name)?;
    let path = auth_path(service_dir, name);
    if !path.exists() {
        return Ok(false);
    }
    let others = client_keys(service_dir)?
        .into_iter()
        .filter(|other| other != name)
        .count();
    if others == 0 && !open_service {
        return Err(OnionError::LastClient(path));
    }
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
        add_client(dir.path(), "bob").unwrap();
        assert_eq!(client_keys(dir.path()).unwrap(), ["ana", "bob"]);
        assert!(revoke_client(dir.path(), "ana", false).unwrap());
        assert!(!path.exists());
        assert!(!revoke_client(dir.path(), "ana", false).unwrap());
    }

    #[test]
    fn the_last_client_key_stays_unless_the_service_is_opened_on_purpose() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("hostname"), format!("{ADDRESS}.onion\n")).unwrap();
        add_client(dir.path(), "ana").unwrap();
        let path = dir.path().join("authorized_clients/ana.auth");
        assert!(matches!(
            revoke_client(dir.path(), "ana", false),
            Err(OnionError::LastClient(_))
        ));
        assert!(path.exists());
        // Files tor does not read are not keys.
        fs::write(dir.path().join("authorized_clients/notes.txt"), "x").unwrap();
        assert!(matches!(
            revoke_client(dir.path(), "ana", false),
            Err(OnionError::LastClient(_))
        ));
        assert!(revoke_client(dir.path(), "ana", true).unwrap());
        assert!(!path.exists());
    }

    #[test]
    fn a_service_key_made_here_gives_its_address_before_tor_starts() {
        let parent = tempfile::tempdir().unwrap();
        let service = parent.path().join("analyst");
        let (address, new) = prepare_service(&service).unwrap();
        assert!(new);
        assert_eq!(address.len(), 56);
        assert_eq!(
            fs::read_to_string(service.join("hostname")).unwrap(),
            format!("{address}.onion\n")
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&service).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let secret = fs::read(service.join(SECRET_KEY_FILE)).unwrap();
        assert_eq!(secret.len(), 96);
        assert!(secret.starts_with(SECRET_KEY_HEADER));
        // The stored scalar is clamped, and its public key is the one the address names.
        let scalar: [u8; 32] = secret[32..64].try_into().unwrap();
        assert_eq!(curve25519_dalek::scalar::clamp_integer(scalar), scalar);
        let public = curve25519_dalek::EdwardsPoint::mul_base_clamped(scalar)
            .compress()
            .to_bytes();
        assert_eq!(onion_address(&public), address);
        // Known from then on, whether from tor's hostname or its public key file.
        assert_eq!(prepare_service(&service).unwrap(), (address.clone(), false));
        fs::remove_file(service.join("hostname")).unwrap();
        assert_eq!(prepare_service(&service).unwrap(), (address, false));
        fs::remove_file(service.join(PUBLIC_KEY_FILE)).unwrap();
        assert!(matches!(
            prepare_service(&service),
            Err(OnionError::KeyWithoutAddress(_))
        ));
    }

    #[test]
    fn addresses_carry_tors_checksum() {
        // A v3 address whose checksum tor computed, rebuilt from its public key.
        let public = base32::decode(
            base32::Alphabet::Rfc4648 { padding: false },
            &ADDRESS.to_ascii_uppercase(),
        )
        .unwrap();
        let public: [u8; 32] = public[..32].try_into().unwrap();
        assert_eq!(onion_address(&public), ADDRESS);
    }
}
