//! `tipbox review`: the analyst's own client. It signs in to the analyst API, fetches sealed
//! items and decrypts them locally with the analyst's age identity, and re-seals items when
//! reviewer keys were retired or revoked. Plaintext and identity never travel to the server.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::ids::valid_id;

/// What `review login` keeps (mode 0600) in the user's config directory.
#[derive(Serialize, Deserialize)]
struct SavedSession {
    server: String,
    username: String,
    token: String,
    expires_at: i64,
    proxy: Option<String>,
}

impl Drop for SavedSession {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.token);
    }
}

/// The session file; `TIPBOX_REVIEW_DIR` overrides the config directory (tests, several
/// deployments).
fn session_path() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("TIPBOX_REVIEW_DIR") {
        return Ok(PathBuf::from(dir).join("session.json"));
    }
    Ok(dirs::config_dir()
        .context("no configuration directory for this user (set TIPBOX_REVIEW_DIR)")?
        .join("tipbox")
        .join("session.json"))
}

fn http_client(proxy: Option<&str>) -> anyhow::Result<reqwest::Client> {
    // One process-wide TLS provider (ring, as elsewhere in tipbox); a second install is a no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("tipbox-review/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(proxy) = proxy {
        // e.g. socks5h://127.0.0.1:9050 to reach an onion service through Tor.
        builder = builder.proxy(reqwest::Proxy::all(proxy).context("--proxy")?);
    }
    Ok(builder.build()?)
}

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

pub async fn login(server: &str, user: &str, proxy: Option<String>) -> anyhow::Result<()> {
    let server = server.trim_end_matches('/').to_owned();
    let (password, code) = read_credentials()?;
    let client = http_client(proxy.as_deref())?;
    let body = Zeroizing::new(
        serde_json::json!({ "username": user, "password": password.as_str(), "totp": code.as_str() }).to_string(),
    );
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
    let answer: serde_json::Value = serde_json::from_str(&text)?;
    let session = SavedSession {
        server,
        username: user.to_owned(),
        token: answer["token"]
            .as_str()
            .context("no token in the answer")?
            .to_owned(),
        expires_at: answer["expires_at"].as_i64().unwrap_or(0),
        proxy,
    };
    let path = session_path()?;
    write_private(&path, serde_json::to_string_pretty(&session)?.as_bytes())?;
    println!("signed in as {user}; session saved in {}", path.display());
    Ok(())
}

fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        crate::secrets::create_private_dir(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    // `mode` applies only when the file is created; an existing one is made private too.
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(data)?;
    Ok(())
}

fn load_session() -> anyhow::Result<SavedSession> {
    let path = session_path()?;
    let text = Zeroizing::new(std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no session in {} (run `tipbox review login` first)",
            path.display()
        )
    })?);
    Ok(serde_json::from_str(&text)?)
}

struct Api {
    client: reqwest::Client,
    session: SavedSession,
}

impl Api {
    /// Sends a request; an ended session is an error, any other answer is returned as it is.
    /// Over the server's request budget (429), it waits as `Retry-After` says and sends again,
    /// a few times, when the request can be repeated (a streamed upload cannot).
    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let request = request.bearer_auth(&self.session.token);
        let mut attempts = 0;
        let response = loop {
            let again = request.try_clone();
            let response = match again {
                Some(copy) => copy.send().await?,
                None => break request.send().await?,
            };
            attempts += 1;
            if response.status() != reqwest::StatusCode::TOO_MANY_REQUESTS || attempts >= 8 {
                break response;
            }
            tokio::time::sleep(retry_after(&response)).await;
        };
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            bail!("the session has ended; run `tipbox review login` again");
        }
        Ok(response)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.session.server)
    }

    async fn get(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        let response = self
            .send(self.client.get(format!("{}{path}", self.session.server)))
            .await?;
        if !response.status().is_success() {
            bail!("{path}: HTTP {}", response.status());
        }
        Ok(response)
    }
}

/// How long a 429 answer asks to wait (`Retry-After` in seconds), between 1 and 60 seconds.
fn retry_after(response: &reqwest::Response) -> std::time::Duration {
    let seconds = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1);
    std::time::Duration::from_secs(seconds.clamp(1, 60))
}

/// A name from the sealed facts, made safe to create inside `dir`: one path component, no
/// control characters, never `.`/`..`, never hidden, and never an existing file.
pub fn safe_file_name(dir: &Path, wanted: &str) -> PathBuf {
    let last = wanted.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut name: String = last
        .chars()
        // Control characters, and invisible formatting ones (bidirectional overrides could
        // disguise `invoice\u{202E}fdp.sh` as "invoicehs.pdf").
        .filter(|c| !c.is_control() && !is_invisible_format(*c))
        .collect::<String>()
        .trim()
        .trim_start_matches('.')
        .to_owned();
    if name.is_empty() {
        name = "attachment".to_owned();
    }
    while name.len() > 200 {
        name.pop();
    }
    let (stem, extension) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.len() <= 16 => {
            (stem.to_owned(), format!(".{ext}"))
        }
        _ => (name.clone(), String::new()),
    };
    let mut candidate = dir.join(&name);
    let mut n = 2;
    while candidate.exists() {
        candidate = dir.join(format!("{stem} ({n}){extension}"));
        n += 1;
    }
    candidate
}

fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Fetches and decrypts into `out/<tip id>/`: `message.txt`, `facts.json`,
/// `attachments/<original name>`, the source's later additions under `followups/`, and
/// `notes/<id>.json` and `replies/<id>.json`. Items already pulled into `out` (listed in
/// `out/<tip id>/.pulled`) are not fetched again.
pub async fn pull(identity_files: Vec<String>, out: &Path, all: bool) -> anyhow::Result<()> {
    let mut stdin_guard = age::cli_common::StdinGuard::new(false);
    let identities = age::cli_common::read_identities(identity_files, None, &mut stdin_guard)
        .map_err(|e| anyhow::anyhow!("reading the identity: {e}"))?;
    let session = load_session()?;
    let api = Api {
        client: http_client(session.proxy.as_deref())?,
        session,
    };

    // Everything to fetch, page by page.
    let mut tips = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!(
            "/api/v1/tips?limit=200{}",
            if all { "" } else { "&unpulled=true" }
        );
        if let Some(c) = &cursor {
            path.push_str(&format!("&before={c}"));
        }
        let page: serde_json::Value = serde_json::from_str(&api.get(&path).await?.text().await?)?;
        tips.extend(page["tips"].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let total: u64 = tips
        .iter()
        .map(|t| t["items"].as_array().map_or(0, |i| i.len() as u64))
        .sum();
    let progress = indicatif::ProgressBar::new(total);
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} items  {msg}")
            .expect("static template"),
    );
    crate::secrets::create_private_dir(out)?;
    let mut done_tips = 0;
    for tip in &tips {
        let tip_id = tip["id"].as_str().unwrap_or_default();
        if !valid_id(tip_id) {
            bail!("the server sent a malformed tip id");
        }
        let dir = out.join(tip_id);
        crate::secrets::create_private_dir(&dir.join("attachments"))?;
        let items = tip["items"].as_array().cloned().unwrap_or_default();
        // Items pulled into this directory before (a tip comes back when the source adds to
        // it, or an analyst replies): their ids, one per line.
        let manifest = dir.join(".pulled");
        let mut pulled: std::collections::HashSet<String> = std::fs::read_to_string(&manifest)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        // Facts first: they carry the attachments' original names.
        let mut ordered = items.clone();
        ordered.sort_by_key(|i| i["kind"] != "facts");
        let mut names = std::collections::HashMap::new();
        for item in &ordered {
            let id = item["id"].as_str().unwrap_or_default();
            if !valid_id(id) {
                bail!("the server sent a malformed item id");
            }
            let kind = item["kind"].as_str().unwrap_or_default();
            // Added after the first submission: a source's follow-up, a note or a reply.
            let later = !item["added_at"].is_null();
            if pulled.contains(id) {
                // Facts pulled before still name attachments that may be pulled only now
                // (after an interrupted pull).
                if kind == "facts" {
                    let earlier = if later {
                        dir.join("followups").join(format!("{id}.facts.json"))
                    } else {
                        dir.join("facts.json")
                    };
                    if let Ok(bytes) = std::fs::read(&earlier) {
                        attachment_names(&bytes, &mut names);
                    }
                }
                progress.inc(1);
                continue;
            }
            progress.set_message(format!("{}…/{kind}", &tip_id[..8]));
            let in_subdir = |sub: &str, name: String| -> anyhow::Result<PathBuf> {
                crate::secrets::create_private_dir(&dir.join(sub))?;
                Ok(safe_file_name(&dir.join(sub), &name))
            };
            let target = match kind {
                "message" if later => in_subdir("followups", format!("{id}.txt"))?,
                "facts" if later => in_subdir("followups", format!("{id}.facts.json"))?,
                "message" => safe_file_name(&dir, "message.txt"),
                "facts" => safe_file_name(&dir, "facts.json"),
                "note" => in_subdir("notes", format!("{id}.json"))?,
                "reply" => in_subdir("replies", format!("{id}.json"))?,
                _ => {
                    let wanted: &str = names.get(id).map(String::as_str).unwrap_or(id);
                    safe_file_name(&dir.join("attachments"), wanted)
                }
            };
            fetch_and_decrypt(&api, id, &target, &identities).await?;
            if kind == "facts" {
                attachment_names(&std::fs::read(&target)?, &mut names);
            }
            {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                let mut file = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .mode(0o600)
                    .open(&manifest)?;
                writeln!(file, "{id}")?;
            }
            pulled.insert(id.to_owned());
            progress.inc(1);
        }
        done_tips += 1;
    }
    progress.finish_and_clear();
    println!(
        "pulled {done_tips} tips ({total} items) into {}",
        out.display()
    );
    Ok(())
}

/// Adds the attachments' original names (by item id) from a decrypted facts file.
fn attachment_names(facts: &[u8], names: &mut std::collections::HashMap<String, String>) {
    let Ok(facts) = serde_json::from_slice::<serde_json::Value>(facts) else {
        return;
    };
    for a in facts["attachments"].as_array().cloned().unwrap_or_default() {
        if let (Some(item), Some(name)) = (a["item_id"].as_str(), a["file_name"].as_str()) {
            names.insert(item.to_owned(), name.to_owned());
        }
    }
}

/// Downloads one sealed item next to its target and decrypts it into the target (created new,
/// never overwriting). The ciphertext is removed afterwards.
async fn fetch_and_decrypt(
    api: &Api,
    item: &str,
    target: &Path,
    identities: &[Box<dyn age::Identity>],
) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    let sealed_path = target.with_file_name(format!(".{item}.age.part"));
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&sealed_path)?;
        let mut stream = api
            .get(&format!("/api/v1/items/{item}/sealed"))
            .await?
            .bytes_stream();
        while let Some(chunk) = stream.next().await {
            file.write_all(&chunk?)?;
        }
        file.sync_all()?;
    }
    let result = (|| -> anyhow::Result<()> {
        let sealed = std::io::BufReader::new(std::fs::File::open(&sealed_path)?);
        let decryptor = age::Decryptor::new_buffered(sealed)?;
        let mut reader = decryptor
            .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
            .map_err(|e| anyhow::anyhow!("item {item} does not open with this identity: {e}"))?;
        use std::os::unix::fs::OpenOptionsExt;
        // Decrypted tips are readable by this user only.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(target)?;
        std::io::copy(&mut reader, &mut file)?;
        file.sync_all()?;
        Ok(())
    })();
    let _ = std::fs::remove_file(&sealed_path);
    if result.is_err() {
        let _ = std::fs::remove_file(target);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        for (wanted, expected) in [
            ("../../x", "x"),
            ("/etc/passwd", "passwd"),
            ("C:\\Windows\\evil.exe", "evil.exe"),
            ("a\0b.txt", "ab.txt"),
            ("..", "attachment"),
            (".bashrc", "bashrc"),
            ("", "attachment"),
            ("photo.jpg", "photo.jpg"),
            ("invoice\u{202E}fdp.sh", "invoicefdp.sh"),
        ] {
            let path = safe_file_name(dir.path(), wanted);
            assert_eq!(path.parent().unwrap(), dir.path(), "{wanted}");
            assert_eq!(
                path.file_name().unwrap().to_str().unwrap(),
                expected,
                "{wanted:?}"
            );
        }
        std::fs::write(dir.path().join("photo.jpg"), b"x").unwrap();
        assert_eq!(
            safe_file_name(dir.path(), "photo.jpg").file_name().unwrap(),
            "photo (2).jpg"
        );
    }
}

/// One page of `GET /api/v1/rekey`.
#[derive(Deserialize)]
struct RekeyPage {
    key_set: Option<ServerKeySet>,
    remaining: RekeyRemaining,
    items: Vec<RekeyItem>,
    next: Option<String>,
}

#[derive(Deserialize)]
struct ServerKeySet {
    id: i64,
    fingerprint: String,
    keys: Vec<ServerKey>,
}

#[derive(Deserialize)]
struct ServerKey {
    fingerprint: String,
    label: String,
    kind: String,
    recipient: String,
}

#[derive(Deserialize)]
struct RekeyRemaining {
    header: i64,
    payload: i64,
}

#[derive(Deserialize)]
struct RekeyItem {
    id: String,
    key_set: i64,
    mode: String,
    header: Option<String>,
}

/// The current key set's recipients, checked here rather than taken on the server's word: each
/// fingerprint is computed from its recipient, and the set's fingerprint from theirs.
fn check_key_set(set: &ServerKeySet) -> anyhow::Result<Vec<Box<dyn age::Recipient + Send + Sync>>> {
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
fn confirm_key_set(
    set: &ServerKeySet,
    remaining: &RekeyRemaining,
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

/// What happened to one item.
enum Outcome {
    Rekeyed,
    /// None of the identities opens it: someone holding one of its keys must re-key it.
    NotYours,
}

/// `tipbox review rekey`: re-seals every item the server lists as sealed to a key set with a
/// retired or revoked key to the current key set. For a retired key, the item's file key is
/// opened here with your identity and wrapped to the current keys (a new header; the payload
/// stays on the server untouched). For a revoked key, the item is downloaded, decrypted and
/// encrypted afresh here (a new file key), and the new file uploaded. Plaintext never leaves
/// this process's memory, and only ciphertext is written to disk (in a private directory).
pub async fn rekey(identity_files: Vec<String>, yes: bool) -> anyhow::Result<()> {
    let mut stdin_guard = age::cli_common::StdinGuard::new(false);
    let identities = age::cli_common::read_identities(identity_files, None, &mut stdin_guard)
        .map_err(|e| anyhow::anyhow!("reading the identity: {e}"))?;
    let session = load_session()?;
    let work_dir = session_path()?
        .parent()
        .context("no directory for the session file")?
        .join("rekey-work");
    crate::secrets::create_private_dir(&work_dir)?;
    let api = Api {
        client: http_client(session.proxy.as_deref())?,
        session,
    };

    let mut page = rekey_page(&api, "").await?;
    let Some(set) = page.key_set.take() else {
        bail!("the server has no active reviewer key: there is nothing to re-seal to");
    };
    if page.remaining.header + page.remaining.payload == 0 {
        println!("nothing needs re-keying");
        return Ok(());
    }
    let recipients = check_key_set(&set)?;
    confirm_key_set(&set, &page.remaining, yes)?;

    let (mut headers, mut payloads, mut not_yours, mut failed) = (0u64, 0u64, 0u64, 0u64);
    loop {
        if let Some(now) = &page.key_set
            && now.id != set.id
        {
            bail!(
                "the keyring changed while re-keying (now key set {}); run `tipbox review rekey` again",
                now.id
            );
        }
        for item in &page.items {
            if !valid_id(&item.id) {
                bail!("the server sent a malformed item id");
            }
            let result = match item.mode.as_str() {
                "header" => rekey_header(&api, item, set.id, &identities, &recipients).await,
                "payload" => {
                    rekey_payload(&api, item, set.id, &work_dir, &identities, &recipients).await
                }
                other => Err(anyhow::anyhow!("unknown re-key mode `{other}`")),
            };
            match result {
                Ok(Outcome::Rekeyed) if item.mode == "header" => headers += 1,
                Ok(Outcome::Rekeyed) => payloads += 1,
                Ok(Outcome::NotYours) => not_yours += 1,
                Err(error) => {
                    failed += 1;
                    eprintln!("item {}: {error:#}", item.id);
                }
            }
        }
        let Some(next) = page.next.take() else { break };
        page = rekey_page(&api, &next).await?;
    }
    let _ = std::fs::remove_dir(&work_dir);
    println!(
        "re-keyed {} item(s) to key set {}: {headers} with a new header, {payloads} encrypted afresh",
        headers + payloads,
        set.id
    );
    if not_yours > 0 {
        println!(
            "{not_yours} item(s) do not open with your identity: a holder of one of their keys must re-key them"
        );
    }
    if failed > 0 {
        bail!(
            "{failed} item(s) could not be re-keyed (see above); run `tipbox review rekey` again"
        );
    }
    Ok(())
}

async fn rekey_page(api: &Api, after: &str) -> anyhow::Result<RekeyPage> {
    let path = format!("/api/v1/rekey?limit=100&after={after}");
    Ok(serde_json::from_str(&api.get(&path).await?.text().await?)?)
}

/// Refuses with the server's own explanation.
async fn refused(response: reqwest::Response) -> anyhow::Error {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let why = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_default();
    anyhow::anyhow!("refused (HTTP {status}): {why}")
}

async fn rekey_header(
    api: &Api,
    item: &RekeyItem,
    to_key_set: i64,
    identities: &[Box<dyn age::Identity>],
    recipients: &[Box<dyn age::Recipient + Send + Sync>],
) -> anyhow::Result<Outcome> {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let encoded = item
        .header
        .as_deref()
        .context("the server could not read this item's header (it may be damaged)")?;
    let old = crate::rekey::Header::parse(&engine.decode(encoded)?)?;
    let new = match crate::rekey::rewrap_header(&old, identities, recipients) {
        Ok(new) => new,
        Err(crate::rekey::RekeyError::NotYours) => return Ok(Outcome::NotYours),
        Err(error) => return Err(error.into()),
    };
    let body = serde_json::json!({
        "from_key_set": item.key_set,
        "to_key_set": to_key_set,
        "replaces": old.digest(),
        "header": engine.encode(&new),
    });
    let response = api
        .send(
            api.client
                .put(api.url(&format!("/api/v1/items/{}/header", item.id)))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string()),
        )
        .await?;
    if !response.status().is_success() {
        return Err(refused(response).await);
    }
    Ok(Outcome::Rekeyed)
}

async fn rekey_payload(
    api: &Api,
    item: &RekeyItem,
    to_key_set: i64,
    work_dir: &Path,
    identities: &[Box<dyn age::Identity>],
    recipients: &[Box<dyn age::Recipient + Send + Sync>],
) -> anyhow::Result<Outcome> {
    use futures_util::StreamExt;
    use std::os::unix::fs::OpenOptionsExt;
    let old_path = work_dir.join(format!("{}.old.age", item.id));
    let new_path = work_dir.join(format!("{}.new.age", item.id));
    let result = async {
        {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&old_path)?;
            let mut stream = api
                .get(&format!("/api/v1/items/{}/sealed", item.id))
                .await?
                .bytes_stream();
            while let Some(chunk) = stream.next().await {
                file.write_all(&chunk?)?;
            }
        }
        let (old, new) = (old_path.clone(), new_path.clone());
        // Decrypting and encrypting is blocking work (and may ask a plugin or a passphrase).
        let resealed = tokio::task::block_in_place(|| reseal(&old, &new, identities, recipients))?;
        if let Outcome::NotYours = resealed {
            return Ok(Outcome::NotYours);
        }
        let length = std::fs::metadata(&new_path)?.len();
        let file = tokio::fs::File::open(&new_path).await?;
        let response = api
            .send(
                api.client
                    .put(api.url(&format!(
                        "/api/v1/items/{}/sealed?from_key_set={}&to_key_set={to_key_set}",
                        item.id, item.key_set
                    )))
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .header(reqwest::header::CONTENT_LENGTH, length)
                    .body(reqwest::Body::from(file)),
            )
            .await?;
        if !response.status().is_success() {
            return Err(refused(response).await);
        }
        Ok(Outcome::Rekeyed)
    }
    .await;
    let _ = std::fs::remove_file(&old_path);
    let _ = std::fs::remove_file(&new_path);
    result
}

/// Decrypts the age file `old` with `identities` and encrypts its content afresh (a new file
/// key, a new nonce) to `recipients` into `new`. The plaintext passes through one buffer,
/// cleared afterwards; it is never written anywhere.
fn reseal(
    old: &Path,
    new: &Path,
    identities: &[Box<dyn age::Identity>],
    recipients: &[Box<dyn age::Recipient + Send + Sync>],
) -> anyhow::Result<Outcome> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let decryptor =
        age::Decryptor::new_buffered(std::io::BufReader::new(std::fs::File::open(old)?))?;
    let mut reader =
        match decryptor.decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity)) {
            Ok(reader) => reader,
            Err(age::DecryptError::NoMatchingKeys) => return Ok(Outcome::NotYours),
            Err(error) => bail!("it does not open: {error}"),
        };
    let encryptor = age::Encryptor::with_recipients(
        recipients.iter().map(|r| r.as_ref() as &dyn age::Recipient),
    )?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(new)?;
    let mut writer = encryptor.wrap_output(std::io::BufWriter::new(file))?;
    let mut buffer = Zeroizing::new(vec![0u8; 64 * 1024]);
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        writer.write_all(&buffer[..n])?;
    }
    let file = writer
        .finish()?
        .into_inner()
        .map_err(|e| anyhow::anyhow!("writing the new file: {}", e.error()))?;
    file.sync_all()?;
    Ok(Outcome::Rekeyed)
}
