//! `tipbox review rekey`: items sealed to retired or revoked reviewer keys, re-sealed here to
//! the current key set. Only ciphertext goes back to the server.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use zeroize::Zeroizing;

use super::http::{Api, refused};
use super::keyset::{Recipients, check_key_set, confirm_key_set};
use super::session::client_dir;
use crate::api;
use crate::ids::valid_id;

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
    let identities = super::read_identities(identity_files)?;
    let api = Api::from_saved_session()?;
    let work_dir = client_dir()?.join("rekey-work");
    crate::secrets::create_private_dir(&work_dir)?;

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
            let result = match item.mode {
                api::RekeyMode::Header => {
                    rekey_header(&api, item, set.id, &identities, &recipients).await
                }
                api::RekeyMode::Payload => {
                    rekey_payload(&api, item, set.id, &work_dir, &identities, &recipients).await
                }
            };
            match result {
                Ok(Outcome::Rekeyed) if item.mode == api::RekeyMode::Header => headers += 1,
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

async fn rekey_page(api: &Api, after: &str) -> anyhow::Result<api::RekeyPage> {
    api.get_json(&format!("/api/v1/rekey?limit=100&after={after}"))
        .await
}

async fn rekey_header(
    api: &Api,
    item: &api::RekeyItem,
    to_key_set: i64,
    identities: &[Box<dyn age::Identity>],
    recipients: &Recipients,
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
    let body = api::HeaderReplacement {
        from_key_set: item.key_set,
        header: engine.encode(&new),
        replaces: old.digest(),
        to_key_set,
    };
    let response = api
        .send(
            api.client
                .put(api.url(&format!("/api/v1/items/{}/header", item.id)))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_string(&body)?),
        )
        .await?;
    if !response.status().is_success() {
        return Err(refused(response).await);
    }
    Ok(Outcome::Rekeyed)
}

async fn rekey_payload(
    api: &Api,
    item: &api::RekeyItem,
    to_key_set: i64,
    work_dir: &Path,
    identities: &[Box<dyn age::Identity>],
    recipients: &Recipients,
) -> anyhow::Result<Outcome> {
    let old_path = work_dir.join(format!("{}.old.age", item.id));
    let new_path = work_dir.join(format!("{}.new.age", item.id));
    let result = async {
        api.download_sealed(&item.id, &old_path).await?;
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
    recipients: &Recipients,
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
