//! `tipbox review pull`: what the analyst has not pulled yet, fetched sealed and decrypted here
//! into a private directory, one directory per tip.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::bail;

use super::files::safe_file_name;
use super::http::Api;
use crate::api;
use crate::ids::valid_id;

/// Fetches and decrypts into `out/<tip id>/`: `message.txt`, `facts.json`,
/// `attachments/<original name>`, the source's later additions under `followups/`, and
/// `notes/<id>.json` and `replies/<id>.json`. Items already pulled into `out` (listed in
/// `out/<tip id>/.pulled`) are not fetched again.
pub async fn pull(identity_files: Vec<String>, out: &Path, all: bool) -> anyhow::Result<()> {
    let identities = super::read_identities(identity_files)?;
    let api = Api::from_saved_session()?;

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
    let mut done_tips = 0;
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
        // Facts first: they carry the attachments' original names.
        let mut ordered = tip.items.clone();
        ordered.sort_by_key(|i| i.kind != "facts");
        let mut names = std::collections::HashMap::new();
        for item in &ordered {
            let id = item.id.as_str();
            if !valid_id(id) {
                bail!("the server sent a malformed item id");
            }
            let kind = item.kind.as_str();
            // Added after the first submission: a source's follow-up, a note or a reply.
            let later = item.added_at.is_some();
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
    let sealed_path = target.with_file_name(format!(".{item}.age.part"));
    api.download_sealed(item, &sealed_path).await?.sync_all()?;
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
