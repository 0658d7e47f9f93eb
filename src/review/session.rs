//! The client's own files: the saved session (readable by this user only) in the client's
//! directory, which also holds the re-keying work directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// What `review login` keeps (mode 0600) for the other commands.
#[derive(Serialize, Deserialize)]
pub(super) struct SavedSession {
    pub server: String,
    pub username: String,
    pub token: String,
    pub expires_at: i64,
    pub proxy: Option<String>,
}

impl Drop for SavedSession {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.token);
    }
}

/// The client's directory: `TIPBOX_REVIEW_DIR`, or `tipbox/` in the user's configuration
/// directory (the variable serves tests and analysts of several deployments).
pub(super) fn client_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("TIPBOX_REVIEW_DIR") {
        return Ok(PathBuf::from(dir));
    }
    Ok(dirs::config_dir()
        .context("no configuration directory for this user (set TIPBOX_REVIEW_DIR)")?
        .join("tipbox"))
}

fn session_path() -> anyhow::Result<PathBuf> {
    Ok(client_dir()?.join("session.json"))
}

impl SavedSession {
    /// Writes the session file (mode 0600, in a private directory); returns its path.
    pub fn save(&self) -> anyhow::Result<PathBuf> {
        let path = session_path()?;
        write_private(&path, serde_json::to_string_pretty(self)?.as_bytes())?;
        Ok(path)
    }

    /// The session `review login` saved.
    pub fn load() -> anyhow::Result<Self> {
        let path = session_path()?;
        let text = Zeroizing::new(std::fs::read_to_string(&path).with_context(|| {
            format!(
                "no session in {} (run `tipbox review login` first)",
                path.display()
            )
        })?);
        Ok(serde_json::from_str(&text)?)
    }
}

/// Writes `data` to `path`, readable by this user only, in a private directory: through a
/// `.part` file beside it, synced and renamed into place, so that `path` is never half written.
pub(super) fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        crate::secrets::create_private_dir(dir)?;
    }
    let mut part_name = path.file_name().unwrap_or_default().to_os_string();
    part_name.push(".part");
    let part = path.with_file_name(part_name);
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&part)?;
        // `mode` applies only when the file is created; a leftover one is made private too.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(data)?;
        file.sync_all()?;
        std::fs::rename(&part, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    written.with_context(|| format!("writing {}", path.display()))
}
