//! `tipbox review pull`: what the analyst has not pulled yet, fetched sealed and decrypted here
//! into a private directory, one directory per tip, each item checked against the commitment
//! made when it was received.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::bail;
use zeroize::Zeroizing;

use super::files::safe_file_name;
use super::http::Api;
use super::keyset::report_changes;
use super::session::write_private;
use super::verify::{
    Check, Opened, TipKeys, check, check_self_keyed, is_self_keyed, open_into, open_small, replaced,
};
use crate::api;
use crate::commitment::CommitmentKey;
use crate::ids::valid_id;
use crate::report::{self, REPORT, carries_facts};

/// Fetches and decrypts into `out/<tip id>/`: `message.txt`, `facts.json`,
/// `attachments/<original name>`, the source's later additions under `followups/` (each
/// message as `<id>.txt`, its facts as `<id>.facts.json`, its files under their original
/// names), and `notes/<id>.json` and `replies/<id>.json`. A report (a send's message and facts
/// sealed as one item, `crate::report`) is written as the two files a tip received before
/// reports has, so the layout does not depend on how a tip was stored. Items already pulled
/// into `out` (listed in `out/<tip id>/.pulled`) are not fetched again: a tip the source added
/// to comes back, and only what is new is downloaded.
///
/// First it says whether the reviewer keys changed since this client last looked. Every item
/// is checked against the commitment made when it was received (`verify`): one whose content
/// is not what was received is not written under its name (its plaintext goes to
/// `out/<tip id>/unverified/<item id>`, for inspection), and the pull ends with an error
/// naming it, who re-keyed it and when. A re-keyed item that passes is reported as verified.
pub async fn pull(identity_files: Vec<String>, out: &Path, all: bool) -> anyhow::Result<()> {
    let identities = super::read_identities(identity_files)?;
    let api = Api::from_saved_session()?;
    let current = api
        .send(api.client.get(api.url("/api/v1/keys/current")))
        .await?;
    if current.status() == reqwest::StatusCode::NOT_FOUND {
        println!("The server does not show its key set (it runs an older tipbox).");
    } else if !current.status().is_success() {
        bail!("/api/v1/keys/current: HTTP {}", current.status());
    } else {
        let current: api::CurrentKeys = serde_json::from_str(&current.text().await?)?;
        report_changes(api.server(), current.key_set.as_ref())?;
    }

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
        let page: api::TipPage = api.get_json(&path).await?;
        tips.extend(page.tips);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let total: u64 = tips.iter().map(|t| t.items.len() as u64).sum();
    let progress = indicatif::ProgressBar::new(total);
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} items  {msg}")
            .expect("static template"),
    );
    crate::secrets::create_private_dir(out)?;
    let (mut done_tips, mut failed) = (0, 0u64);
    for tip in &tips {
        let tip_id = tip.id.as_str();
        if !valid_id(tip_id) {
            bail!("the server sent a malformed tip id");
        }
        let dir = out.join(tip_id);
        crate::secrets::create_private_dir(&dir.join("attachments"))?;
        // Items pulled into this directory before (a tip comes back when the source adds to
        // it, or an analyst replies): their ids, one per line.
        let manifest = dir.join(".pulled");
        let mut pulled: std::collections::HashSet<String> = std::fs::read_to_string(&manifest)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        // Reports and facts first: they carry the attachments' original names and the keys the
        // other items are committed to.
        let mut ordered = tip.items.clone();
        ordered.sort_by_key(|i| !carries_facts(&i.kind));
        let mut names = std::collections::HashMap::new();
        let mut keys = TipKeys::default();
        for item in &ordered {
            let id = item.id.as_str();
            if !valid_id(id) {
                bail!("the server sent a malformed item id");
            }
            let kind = item.kind.as_str();
            // Added after the first submission: a source's follow-up, a note or a reply.
            let later = item.added_at.is_some();
            if pulled.contains(id) {
                // Facts pulled (and checked) before still name attachments, and hold keys,
                // for items that may be pulled only now (after an interrupted pull).
                if carries_facts(kind) {
                    let earlier = if later {
                        dir.join("followups").join(format!("{id}.facts.json"))
                    } else {
                        dir.join("facts.json")
                    };
                    if let Ok(bytes) = std::fs::read(&earlier) {
                        attachment_names(&bytes, &mut names);
                        keys.learn(&bytes);
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
            // Where a report's message goes (its facts go to `target`).
            let message_target = match kind {
                REPORT if later => Some(in_subdir("followups", format!("{id}.txt"))?),
                REPORT => Some(safe_file_name(&dir, "message.txt")),
                _ => None,
            };
            let target = match kind {
                "message" if later => in_subdir("followups", format!("{id}.txt"))?,
                "facts" | REPORT if later => in_subdir("followups", format!("{id}.facts.json"))?,
                "message" => safe_file_name(&dir, "message.txt"),
                "facts" | REPORT => safe_file_name(&dir, "facts.json"),
                "note" => in_subdir("notes", format!("{id}.json"))?,
                "reply" => in_subdir("replies", format!("{id}.json"))?,
                // A file the source added later: with the rest of that addition.
                _ if later => {
                    let wanted = names.get(id).cloned().unwrap_or_else(|| id.to_owned());
                    in_subdir("followups", wanted)?
                }
                _ => {
                    let wanted: &str = names.get(id).map(String::as_str).unwrap_or(id);
                    safe_file_name(&dir.join("attachments"), wanted)
                }
            };
            let key = keys.key_for(id).cloned();
            let fetched = fetch_and_decrypt(&api, item, &target, &identities, key).await?;
            let replaced = replaced(item);
            match &fetched.check {
                Check::Verified | Check::Unchecked => {}
                Check::Unverifiable(why) | Check::Mismatch(why) => {
                    failed += 1;
                    let quarantine = dir.join("unverified");
                    crate::secrets::create_private_dir(&quarantine)?;
                    let kept = quarantine.join(id);
                    std::fs::rename(&fetched.plaintext, &kept)?;
                    progress.suspend(|| {
                        eprintln!(
                            "item {id} ({kind}) of tip {tip_id} FAILED its integrity check: {why}. {}. \
                             It was not written under its name; what it decrypts to is in {} for \
                             inspection.",
                            replaced
                                .as_deref()
                                .unwrap_or("No re-keying of it is on record"),
                            kept.display()
                        )
                    });
                    progress.inc(1);
                    continue;
                }
            }
            match (&message_target, &fetched.facts) {
                (Some(message_target), Some(plaintext)) => {
                    let result = write_report(plaintext, message_target, &target);
                    let _ = std::fs::remove_file(&fetched.plaintext);
                    result.map_err(|error| error.context(format!("item {id} of tip {tip_id}")))?;
                }
                _ => std::fs::rename(&fetched.plaintext, &target)?,
            }
            if let Some(replaced) = &replaced {
                progress.suspend(|| {
                    if fetched.check == Check::Verified {
                        println!(
                            "item {id} ({kind}) of tip {tip_id}: {replaced}; content verified"
                        );
                    } else {
                        println!(
                            "item {id} ({kind}) of tip {tip_id}: {replaced}; it was received \
                             before item commitments, so its content cannot be verified"
                        );
                    }
                });
            }
            if let Some(facts) = &fetched.facts {
                attachment_names(facts, &mut names);
                keys.learn(facts);
            }
            {
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
    if failed > 0 {
        bail!(
            "{failed} item(s) failed their integrity check (see above): they are not what was \
             received, or cannot be checked; they were not written under their names"
        );
    }
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

/// Writes a checked report as the two files of a send: its message, and its facts without the
/// message (each a private file, written beside its name and renamed into place).
fn write_report(plaintext: &[u8], message: &Path, facts: &Path) -> anyhow::Result<()> {
    let split = report::split(plaintext)
        .ok_or_else(|| anyhow::anyhow!("it is not a report this client can read"))?;
    write_private(message, split.message.as_bytes())?;
    write_private(facts, &split.facts)
}

/// An item fetched and decrypted, not yet under its name.
struct Fetched {
    /// A private file next to the target holding the plaintext.
    plaintext: PathBuf,
    check: Check,
    /// A report's or facts item's plaintext, once it passed its check (its names and keys).
    facts: Option<Zeroizing<Vec<u8>>>,
}

/// Downloads one sealed item next to its target and decrypts it into a private file there,
/// recomputing its commitment on the way (with `key`, its submission's, unless it carries its
/// own). The ciphertext is removed afterwards, and the plaintext if anything fails.
async fn fetch_and_decrypt(
    api: &Api,
    item: &api::Item,
    target: &Path,
    identities: &[Box<dyn age::Identity>],
    key: Option<Arc<CommitmentKey>>,
) -> anyhow::Result<Fetched> {
    use std::os::unix::fs::OpenOptionsExt;
    let id = item.id.as_str();
    let sealed_path = target.with_file_name(format!(".{id}.age.part"));
    let plaintext_path = target.with_file_name(format!(".{id}.part"));
    api.download_sealed(id, &sealed_path).await?.sync_all()?;
    let not_yours = || anyhow::anyhow!("item {id} does not open with this identity");
    let result = (|| -> anyhow::Result<Fetched> {
        // Decrypted tips are readable by this user only.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&plaintext_path)?;
        let (check, facts) = if is_self_keyed(&item.kind) {
            let plaintext = open_small(&sealed_path, identities)?.ok_or_else(not_yours)?;
            file.write_all(&plaintext)?;
            let check = check_self_keyed(item, &plaintext);
            let facts = (carries_facts(&item.kind) && check.passed()).then_some(plaintext);
            (check, facts)
        } else {
            let committer = key.as_ref().map(|k| k.committer(id));
            let Opened::Decrypted(computed) =
                open_into(&sealed_path, identities, &mut file, committer)?
            else {
                return Err(not_yours());
            };
            (check(item, computed.as_ref(), key.is_some()), None)
        };
        file.sync_all()?;
        Ok(Fetched {
            plaintext: plaintext_path.clone(),
            check,
            facts,
        })
    })()
    .map_err(|error| error.context(format!("item {id}")));
    let _ = std::fs::remove_file(&sealed_path);
    if result.is_err() {
        let _ = std::fs::remove_file(&plaintext_path);
    }
    result
}
