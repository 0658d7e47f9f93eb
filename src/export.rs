//! `tipbox export`: every committed sealed item as a standalone `.age` file, plus a manifest,
//! for offline or air-gapped review. Nothing here can decrypt; reviewers run `age -d` (or
//! `tipbox review`) on their own machines.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::store::{KeySetListing, Store};

#[derive(Serialize)]
struct Manifest<'a> {
    format: &'static str,
    key_sets: &'a [KeySetListing],
    items: Vec<ManifestItem<'a>>,
}

#[derive(Serialize)]
struct ManifestItem<'a> {
    tip_id: &'a str,
    item_id: &'a str,
    kind: &'a str,
    position: i64,
    /// The tip's received time, coarsened when it was stored (RFC 3339, UTC).
    received_at: String,
    key_set: KeySetRef<'a>,
    size: i64,
    /// Path of the `.age` file, relative to the manifest.
    file: String,
}

#[derive(Serialize)]
struct KeySetRef<'a> {
    id: i64,
    fingerprint: &'a str,
}

pub struct ExportSummary {
    pub tips: usize,
    pub items: usize,
}

/// Writes the export into `out`, which must not exist yet or be empty. The files are first
/// written to a sibling directory and renamed into place, so a failed export leaves no
/// half-written directory that looks complete.
pub async fn export(store: &Store, out: &Path) -> anyhow::Result<ExportSummary> {
    if out.exists() && fs::read_dir(out)?.next().is_some() {
        bail!(
            "{} exists and is not empty; export into a new directory",
            out.display()
        );
    }
    // A fresh sibling directory of our own; nothing that exists is ever removed.
    let mut partial_name = out
        .file_name()
        .context("--out must name a directory")?
        .to_os_string();
    partial_name.push(format!(".partial-{}", crate::ids::random_id()));
    let partial = out.with_file_name(partial_name);
    crate::secrets::create_private_dir(&partial)?;

    let items = store.list_items().await?;
    // The sets these items are sealed to (a key change records a set even before anything
    // is sealed to it).
    let used: std::collections::HashSet<i64> = items.iter().map(|i| i.key_set_id).collect();
    let key_sets: Vec<KeySetListing> = store
        .list_key_sets()
        .await?
        .into_iter()
        .filter(|s| used.contains(&s.id))
        .collect();
    let mut manifest_items = Vec::with_capacity(items.len());
    let mut tips = std::collections::HashSet::new();
    for item in &items {
        let tip_dir = partial.join(&item.tip_id);
        if tips.insert(item.tip_id.clone()) {
            fs::create_dir(&tip_dir)?;
        }
        let relative = format!("{}/{}.age", item.tip_id, item.item_id);
        let mut file = fs::File::create(partial.join(&relative))?;
        let mut seq = 0;
        while let Some(chunk) = store.item_chunk(&item.item_id, seq).await? {
            file.write_all(&chunk)?;
            seq += 1;
        }
        file.sync_all()?;
        let fingerprint = key_sets
            .iter()
            .find(|s| s.id == item.key_set_id)
            .map(|s| s.fingerprint.as_str())
            .unwrap_or("");
        manifest_items.push(ManifestItem {
            tip_id: &item.tip_id,
            item_id: &item.item_id,
            kind: &item.kind,
            position: item.position,
            received_at: humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH
                    + std::time::Duration::from_secs(item.received_at.max(0) as u64),
            )
            .to_string(),
            key_set: KeySetRef {
                id: item.key_set_id,
                fingerprint,
            },
            size: item.size,
            file: relative,
        });
    }
    let manifest = Manifest {
        format: "tipbox-export/1",
        key_sets: &key_sets,
        items: manifest_items,
    };
    let mut file = fs::File::create(partial.join("manifest.json"))?;
    serde_json::to_writer_pretty(&mut file, &manifest)?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    if out.exists() {
        fs::remove_dir(out)?;
    }
    fs::rename(&partial, out).with_context(|| format!("moving the export to {}", out.display()))?;
    Ok(ExportSummary {
        tips: tips.len(),
        items: items.len(),
    })
}
