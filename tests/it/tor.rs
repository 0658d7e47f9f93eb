//! The shipped torrc against Debian's real `tor`. Safety rule for every tor a test starts: it
//! has `DisableNetwork 1` (or private `DirAuthority` lines); none may ever reach the public Tor
//! network.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Creates `path` (and its parents) readable by its owner only, as tor wants its directories.
pub fn private_dir(path: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
    path.to_owned()
}

/// `tor --verify-config` accepts `deploy/torrc` as shipped, with its paths pointed at a
/// temporary directory.
#[test]
fn the_shipped_torrc_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/torrc")).unwrap();
    assert!(shipped.contains("HiddenServiceDir /var/lib/tor/tipbox-public/"));
    assert!(shipped.contains("HiddenServiceDir /var/lib/tor/tipbox-analyst/"));
    assert!(shipped.contains("HiddenServicePoWDefensesEnabled 1"));
    // Circuit ids for the public service (tipbox's rate_limits.client_address = "tor-circuit"),
    // and only for it: the analyst listener does not read a PROXY line.
    let (public, analyst) = shipped
        .split_once("HiddenServiceDir /var/lib/tor/tipbox-analyst/")
        .unwrap();
    assert!(public.contains("\nHiddenServiceExportCircuitID haproxy\n"));
    assert!(!analyst.contains("\nHiddenServiceExportCircuitID"));
    for service in ["tipbox-public", "tipbox-analyst"] {
        private_dir(&base.join(service));
    }
    let data = private_dir(&base.join("data"));
    let torrc = format!(
        "DisableNetwork 1\nSocksPort 0\nDataDirectory {}\nLog notice stderr\n{}",
        data.display(),
        shipped.replace("/var/lib/tor/", &format!("{}/", base.display()))
    );
    assert!(!torrc.contains("/var/lib/tor/"));
    let file = base.join("torrc");
    std::fs::write(&file, &torrc).unwrap();
    let out = Command::new("tor")
        .arg("--verify-config")
        .arg("-f")
        .arg(&file)
        .output()
        .expect("Debian's `tor` must be installed (scripts/test installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("Configuration was valid"),
        "tor refused deploy/torrc:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
