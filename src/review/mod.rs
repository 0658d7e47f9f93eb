//! `tipbox review`: the analyst's own client, run on the analyst's machine. It signs in to the
//! analyst API, pulls sealed items and decrypts them locally with the analyst's age identity,
//! re-seals items when reviewer keys were retired or revoked, and applies bulk changes.
//!
//! What it promises: plaintext and the analyst's identity never leave this machine. The server
//! only ever receives the sign-in, requests for sealed items, and ciphertext (a re-wrapped
//! header, or an item encrypted afresh); decrypted files are written readable by this user
//! only, and the client's own files (the session, `session.rs`) live in a private directory.
//!
//! It speaks the API through the shared types of `crate::api` and uses nothing of the server
//! (`web`, `store`, `intake`, `auth`): only `keyring` for recipients and fingerprints, `rekey`
//! for re-wrapping headers, `secrets` for private directories and `ids`.
//!
//! It trusts the server for nothing it can check: it seals only to reviewer keys the analyst
//! pinned on this machine (`trust`), says when the server's key set changed since it last
//! looked, and checks every item it decrypts against the commitment made when the item was
//! received (`verify`, `crate::commitment`), so that a re-keyed item cannot silently hold
//! something else.
//!
//! The rooms: `session` (the saved session), `http` (the API client), `pull`, `rekey`, `bulk`,
//! `desk` (the local review desk: a web app on loopback that decrypts in memory),
//! `trust` (the trusted keys and `review keys`), `keyset` (checking the key set the server
//! names), `verify` (commitments) and `files` (safe names).

mod bulk;
mod desk;
mod files;
mod http;
mod keyset;
mod pull;
mod rekey;
mod session;
mod trust;
mod verify;

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, bail};
use zeroize::Zeroizing;

pub use bulk::bulk;
pub use desk::desk;
pub use files::safe_file_name;
pub use pull::pull;
pub use rekey::rekey;
pub use trust::{
    import as import_keys, list as list_keys, trust as trust_key, untrust as untrust_key,
};

use crate::api;

/// Reads the password and the TOTP code: hidden prompts on a terminal, otherwise one line each
/// from standard input.
fn read_credentials() -> anyhow::Result<(Zeroizing<String>, Zeroizing<String>)> {
    if std::io::stdin().is_terminal() {
        let password = Zeroizing::new(rpassword::prompt_password("Password: ")?);
        eprint!("TOTP code: ");
        std::io::stderr().flush()?;
        let mut code = Zeroizing::new(String::new());
        std::io::stdin().lock().read_line(&mut code)?;
        Ok((password, Zeroizing::new(code.trim().to_owned())))
    } else {
        let mut lines = std::io::stdin().lock().lines();
        let password = Zeroizing::new(
            lines
                .next()
                .context("expected the password on standard input")??,
        );
        let code = Zeroizing::new(
            lines
                .next()
                .context("expected the TOTP code on the second line")??,
        );
        Ok((password, Zeroizing::new(code.trim().to_owned())))
    }
}

/// `tipbox review login`: signs in and saves the session (mode 0600) for the other commands.
pub async fn login(server: &str, user: &str, proxy: Option<String>) -> anyhow::Result<()> {
    let server = server.trim_end_matches('/').to_owned();
    let (password, totp) = read_credentials()?;
    let client = http::client(proxy.as_deref())?;
    let sign_in = api::SignIn {
        password,
        totp,
        username: user.to_owned(),
    };
    let body = Zeroizing::new(serde_json::to_string(&sign_in)?);
    let response = client
        .post(format!("{server}/api/v1/session"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .with_context(|| format!("connecting to {server}"))?;
    let status = response.status();
    let text = Zeroizing::new(response.text().await?);
    if status == reqwest::StatusCode::UNAUTHORIZED {
        bail!(
            "sign-in refused: wrong user name, password or code (a code works only once; wait for the next one)"
        );
    }
    if !status.is_success() {
        bail!("sign-in failed: HTTP {status}");
    }
    let answer: api::NewSession = serde_json::from_str(&text).context("no token in the answer")?;
    let session = session::SavedSession {
        server,
        username: user.to_owned(),
        token: answer.token.to_string(),
        expires_at: answer.expires_at,
        proxy,
    };
    let path = session.save()?;
    println!("signed in as {user}; session saved in {}", path.display());
    Ok(())
}

/// The analyst's age identities, from files (plain, passphrase-protected, plugin or SSH).
fn read_identities(files: Vec<String>) -> anyhow::Result<Vec<Box<dyn age::Identity>>> {
    let mut stdin_guard = age::cli_common::StdinGuard::new(false);
    age::cli_common::read_identities(files, None, &mut stdin_guard)
        .map_err(|e| anyhow::anyhow!("reading the identity: {e}"))
}
