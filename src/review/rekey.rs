//! `tipbox review rekey`: items sealed to retired or revoked reviewer keys, re-sealed here to
//! the current key set. Only ciphertext goes back to the server, and only to keys the analyst
//! trusts; what is encrypted afresh is first checked against the commitment made when it was
//! received.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};

use super::http::{Api, refused};
use super::keyset::{Recipients, check_key_set, confirm_key_set, report_changes, require_trusted};
use super::session::client_dir;
use super::verify::{
    Check, Opened, TipKeys, check, check_self_keyed, is_self_keyed, open_into, open_small,
};
use crate::api;
use crate::ids::valid_id;

/// What happened to one item.
enum Outcome {
    Rekeyed,
    /// None of the identities opens it: someone holding one of its keys must re-key it.
    NotYours,
}

/// What this client knows of a tip whose items it encrypts afresh: its items as the server
/// lists them (with their commitments) and the keys its facts hold.
#[derive(Default)]
struct TipCheck {
    items: HashMap<String, api::Item>,
    keys: TipKeys,
}

/// `tipbox review rekey`: re-seals every item the server lists as sealed to a key set with a
/// retired or revoked key to the current key set. For a retired key, the item's file key is
/// opened here with your identity and wrapped to the current keys (a new header; the payload
/// stays on the server untouched). For a revoked key, the item is downloaded, decrypted and
/// encrypted afresh here (a new file key), checked against its commitment, and the new file
/// uploaded. Plaintext never leaves this process's memory, and only ciphertext is written to
/// disk (in a private directory).
///
/// Nothing is re-sealed unless the analyst trusts every key of the current set
/// (`tipbox review keys`); `yes` only skips the confirmation that follows.
pub async fn rekey(identity_files: Vec<String>, yes: bool) -> anyhow::Result<()> {
    let identities = super::read_identities(identity_files)?;
    let api = Api::from_saved_session()?;
    let work_dir = client_dir()?.join("rekey-work");
    crate::secrets::create_private_dir(&work_dir)?;

    let mut page = rekey_page(&api, "").await?;
    report_changes(api.server(), page.key_set.as_ref())?;
    let Some(set) = page.key_set.take() else {
        bail!("the server has no active reviewer key: there is nothing to re-seal to");
    };
    if page.remaining.header + page.remaining.payload == 0 {
        println!("nothing needs re-keying");
        return Ok(());
    }
    let recipients = check_key_set(&set)?;
    require_trusted(&set)?;
    confirm_key_set(&set, &page.remaining, yes)?;
    let mut tips: HashMap<String, Arc<TipCheck>> = HashMap::new();

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
            if !valid_id(&item.id) || !valid_id(&item.tip) {
                bail!("the server sent a malformed item or tip id");
            }
            let result = match item.mode {
                // An item the server says is sealed to the set it would move to needs nothing.
                _ if item.key_set == set.id => Err(anyhow::anyhow!(
                    "the server lists it as sealed to the current key set {}: not re-keyed",
                    set.id
                )),
                api::RekeyMode::Header => {
                    rekey_header(&api, item, set.id, &identities, &recipients).await
                }
                api::RekeyMode::Payload => {
                    let tip = match tips.get(&item.tip) {
                        Some(tip) => Arc::clone(tip),
                        None => {
                            let tip =
                                Arc::new(tip_check(&api, &item.tip, &work_dir, &identities).await?);
                            tips.insert(item.tip.clone(), Arc::clone(&tip));
                            tip
                        }
                    };
                    rekey_payload(
                        &api,
                        item,
                        set.id,
                        &work_dir,
                        &identities,
                        &recipients,
                        &tip,
                    )
                    .await
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

/// A tip's items as the server lists them, and the keys of those of its facts items that open
/// with the analyst's identity and pass their own check, fetched before any of its items is
/// encrypted afresh.
async fn tip_check(
    api: &Api,
    tip_id: &str,
    work_dir: &Path,
    identities: &[Box<dyn age::Identity>],
) -> anyhow::Result<TipCheck> {
    let tip: api::Tip = api.get_json(&format!("/api/v1/tips/{tip_id}")).await?;
    let mut known = TipCheck::default();
    for item in tip
        .items
        .iter()
        .filter(|i| crate::report::carries_facts(&i.kind))
    {
        if !valid_id(&item.id) {
            bail!("the server sent a malformed item id");
        }
        let path = work_dir.join(format!("{}.facts.age", item.id));
        let opened = async {
            api.download_sealed(&item.id, &path).await?;
            tokio::task::block_in_place(|| open_small(&path, identities))
        }
        .await;
        let _ = std::fs::remove_file(&path);
        match opened {
            Ok(Some(facts)) if check_self_keyed(item, &facts).passed() => known.keys.learn(&facts),
            // Its items are then re-sealed unchecked (with a warning) or refused as they are.
            Ok(_) => {}
            Err(error) => eprintln!("facts {}: {error:#}", item.id),
        }
    }
    known.items = tip.items.into_iter().map(|i| (i.id.clone(), i)).collect();
    Ok(known)
}

async fn rekey_payload(
    api: &Api,
    item: &api::RekeyItem,
    to_key_set: i64,
    work_dir: &Path,
    identities: &[Box<dyn age::Identity>],
    recipients: &Recipients,
    tip: &TipCheck,
) -> anyhow::Result<Outcome> {
    let old_path = work_dir.join(format!("{}.old.age", item.id));
    let new_path = work_dir.join(format!("{}.new.age", item.id));
    let listed = tip
        .items
        .get(&item.id)
        .context("the server does not list this item on its tip")?;
    let result = async {
        api.download_sealed(&item.id, &old_path).await?;
        let (old, new) = (old_path.clone(), new_path.clone());
        // Decrypting and encrypting is blocking work (and may ask a plugin or a passphrase).
        let resealed = tokio::task::block_in_place(|| {
            reseal(&old, &new, identities, recipients, listed, &tip.keys)
        })?;
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
/// key, a new nonce) to `recipients` into `new`, while recomputing the commitment of `item`
/// (with the key its facts in `keys` hold, or the one it carries itself). Content that is not
/// what was received is refused, and nothing is uploaded; content that cannot be checked (no
/// key found) is re-sealed with a warning, since readers check it again. The plaintext passes
/// through buffers cleared afterwards; it is never written anywhere.
fn reseal(
    old: &Path,
    new: &Path,
    identities: &[Box<dyn age::Identity>],
    recipients: &Recipients,
    item: &api::Item,
    keys: &TipKeys,
) -> anyhow::Result<Outcome> {
    use std::os::unix::fs::OpenOptionsExt;
    let encryptor = age::Encryptor::with_recipients(
        recipients.iter().map(|r| r.as_ref() as &dyn age::Recipient),
    )?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(new)?;
    let mut writer = encryptor.wrap_output(std::io::BufWriter::new(file))?;
    let verdict = if is_self_keyed(&item.kind) {
        let Some(plaintext) = open_small(old, identities)? else {
            return Ok(Outcome::NotYours);
        };
        let verdict = check_self_keyed(item, &plaintext);
        if verdict.passed() {
            writer.write_all(&plaintext)?;
        }
        verdict
    } else {
        let key = keys.key_for(&item.id);
        let committer = key.map(|k| k.committer(&item.id));
        match open_into(old, identities, &mut writer, committer)? {
            Opened::NotYours => return Ok(Outcome::NotYours),
            Opened::Decrypted(computed) => check(item, computed.as_ref(), key.is_some()),
        }
    };
    match verdict {
        Check::Mismatch(why) => {
            bail!("refusing to re-seal it: {why}. It was replaced before: tell your organisation")
        }
        Check::Unverifiable(why) => eprintln!(
            "item {}: re-sealed without checking its content ({why}); `tipbox review pull` checks \
             it again",
            item.id
        ),
        Check::Verified | Check::Unchecked => {}
    }
    let file = writer
        .finish()?
        .into_inner()
        .map_err(|e| anyhow::anyhow!("writing the new file: {}", e.error()))?;
    file.sync_all()?;
    Ok(Outcome::Rekeyed)
}
