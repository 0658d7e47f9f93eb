//! `tipbox keys …`: reviewers' public keys — add, list, retire, revoke, and what is sealed to
//! which key set.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;

use super::OPERATOR;
use crate::config::Config;
use crate::keyring::{KeyFile, Recipient};
use crate::store::Store;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Add a reviewer's public key: an age1… recipient, an SSH public key, or a file from keys/.
    /// The very next submission is sealed to it as well.
    Add {
        #[arg(value_name = "RECIPIENT_OR_FILE")]
        recipient: String,
        /// The key's name in lists and manifests [default: the file's first comment line]
        #[arg(long, value_name = "NAME")]
        label: Option<String>,
        /// Who holds the key (optional; stored in clear, like the label)
        #[arg(long, value_name = "NAME")]
        owner: Option<String>,
    },
    /// List reviewer keys and their history (added, retired, revoked).
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Stop sealing to a key, with no suspicion on it (a reviewer left, a key moved to a
    /// hardware token). Items sealed to it stay readable by it until re-keyed
    /// (`tipbox review rekey`).
    Retire {
        /// The key's id, fingerprint (at least 8 hex digits) or label, from `keys list`
        #[arg(value_name = "KEY")]
        key: String,
    },
    /// Revoke a key that may be compromised: out of the active set at once; lists the tips it
    /// can still open until they are re-keyed with a fresh encryption.
    Revoke {
        /// The key's id, fingerprint (at least 8 hex digits) or label, from `keys list`
        #[arg(value_name = "KEY")]
        key: String,
    },
    /// What is sealed to which key set, and what still needs re-keying.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(config: &Config, command: KeysCommand) -> anyhow::Result<()> {
    let store = crate::app::open_audited_store(config).await?;
    let result = match command {
        KeysCommand::Add {
            recipient,
            label,
            owner,
        } => keys_add(&store, &recipient, label, owner).await,
        KeysCommand::List { json } => keys_list(&store, json).await,
        KeysCommand::Retire { key } => keys_retire(config, &store, &key).await,
        KeysCommand::Revoke { key } => keys_revoke(&store, &key).await,
        KeysCommand::Status { json } => keys_status(&store, json).await,
    };
    store.close().await;
    result
}

async fn keys_add(
    store: &Store,
    input: &str,
    label: Option<String>,
    owner: Option<String>,
) -> anyhow::Result<()> {
    let path = Path::new(input);
    let (recipient, comment) = if path.is_file() {
        let file = KeyFile::read(path)?;
        (file.recipient, file.owner_comment)
    } else {
        (Recipient::parse(input)?, None)
    };
    recipient.check_usable()?;
    let label = label.or(comment).filter(|l| !l.trim().is_empty()).context(
        "give the key's owner with --label NAME (or a `# name` comment line in its file)",
    )?;
    let owner = owner.map(|o| o.trim().to_owned()).filter(|o| !o.is_empty());
    let change = store
        .add_key(
            &recipient,
            label.trim(),
            owner.as_deref(),
            OPERATOR,
            crate::clock::now(),
        )
        .await?;
    let key = &change.key;
    println!(
        "added reviewer key {} ({}, {}) as {}: the very next submission is sealed to it \
         (keyring version {}, key set {})",
        key.short_fingerprint(),
        key.recipient.kind.as_db(),
        key.label,
        key.id,
        change.keyring.version,
        change.keyring.key_set_id.unwrap_or_default(),
    );
    warn_about_policy(change.active_keys);
    Ok(())
}

/// A time as `YYYY-MM-DD HH:MM` (UTC), for tables.
fn short_time(time: Option<i64>) -> String {
    match time {
        None => "-".to_owned(),
        Some(t) => {
            let full = humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + Duration::from_secs(t.max(0) as u64),
            )
            .to_string();
            full[..16].replace('T', " ")
        }
    }
}

async fn keys_list(store: &Store, json: bool) -> anyhow::Result<()> {
    let keys = store.list_keys().await?;
    if json {
        println!(
            "{}",
            serde_json::Value::from(keys.iter().map(|k| k.to_json()).collect::<Vec<_>>())
        );
        return Ok(());
    }
    if keys.is_empty() {
        println!("no reviewer keys: submissions are paused (add one with `tipbox keys add`)");
        return Ok(());
    }
    println!(
        "{:<4} {:<8} {:<17} {:<14} {:<17} {:<17} {:<17} LABEL",
        "ID", "STATE", "FINGERPRINT", "KIND", "ADDED", "RETIRED", "REVOKED"
    );
    for key in &keys {
        let owner = key
            .owner
            .as_deref()
            .map(|o| format!(" (owner: {o})"))
            .unwrap_or_default();
        println!(
            "{:<4} {:<8} {:<17} {:<14} {:<17} {:<17} {:<17} {}{owner}",
            key.id,
            key.status().as_str(),
            key.short_fingerprint(),
            key.recipient.kind.as_db(),
            short_time(Some(key.added_at)),
            short_time(key.retired_at),
            short_time(key.revoked_at),
            key.label
        );
    }
    warn_about_policy(keys.iter().filter(|k| k.active).count());
    Ok(())
}

async fn keys_retire(config: &Config, store: &Store, wanted: &str) -> anyhow::Result<()> {
    let change = store
        .retire_key(
            wanted,
            config.keys.min_active as usize,
            OPERATOR,
            crate::clock::now(),
        )
        .await?;
    let key = &change.key;
    println!(
        "retired reviewer key {} ({}): the very next submission is no longer sealed to it \
         (keyring version {}, key set {})",
        key.short_fingerprint(),
        key.label,
        change.keyring.version,
        change.keyring.key_set_id.unwrap_or_default(),
    );
    let tips = store.tips_open_to_key(key.id).await?;
    if !tips.is_empty() {
        println!(
            "{} tip(s) stay readable by it until re-keyed: run `tipbox review rekey` with an identity \
             that opens them (`tipbox keys status` shows what is left)",
            tips.len()
        );
    }
    warn_about_policy(change.active_keys);
    Ok(())
}

async fn keys_revoke(store: &Store, wanted: &str) -> anyhow::Result<()> {
    let change = store
        .revoke_key(wanted, OPERATOR, crate::clock::now())
        .await?;
    let key = &change.key;
    println!(
        "REVOKED reviewer key {} ({}): nothing new is sealed to it from the very next submission on \
         (keyring version {})",
        key.short_fingerprint(),
        key.label,
        change.keyring.version,
    );
    let tips = store.tips_open_to_key(key.id).await?;
    if tips.is_empty() {
        println!("no stored tip is sealed to it");
    } else {
        println!(
            "{} tip(s) can still be opened with it until they are re-keyed (`tipbox review rekey`, \
             which encrypts them afresh):",
            tips.len()
        );
        for tip in &tips {
            println!("  {tip}");
        }
    }
    if change.active_keys == 0 {
        println!(
            "warning: no reviewer key is active any more: submissions are PAUSED until one is added"
        );
    }
    warn_about_policy(change.active_keys);
    Ok(())
}

async fn keys_status(store: &Store, json: bool) -> anyhow::Result<()> {
    let status = serde_json::to_value(store.keyring_status().await?)?;
    if json {
        println!("{status}");
        return Ok(());
    }
    let keys = store.list_keys().await?;
    let label = |id: &serde_json::Value| {
        keys.iter()
            .find(|k| Some(k.id) == id.as_i64())
            .map(|k| format!("{} ({})", k.label, k.status().as_str()))
            .unwrap_or_else(|| id.to_string())
    };
    println!(
        "keyring version {}; new items are sealed to key set {}",
        status["keyring_version"],
        status["current_key_set"]
            .as_i64()
            .map_or("(none: submissions are paused)".to_owned(), |s| s
                .to_string())
    );
    println!(
        "{:<4} {:<9} {:>8} {:>6}  KEYS",
        "SET", "STATE", "ITEMS", "TIPS"
    );
    for set in status["key_sets"].as_array().into_iter().flatten() {
        let state = if set["current"] == true {
            "current"
        } else if !set["revoked_at"].is_null() {
            "revoked"
        } else if !set["retired_at"].is_null() {
            "retired"
        } else {
            "ok"
        };
        let members: Vec<String> = set["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .map(label)
            .collect();
        println!(
            "{:<4} {:<9} {:>8} {:>6}  {}",
            set["id"].as_i64().unwrap_or_default(),
            state,
            set["items"].as_i64().unwrap_or_default(),
            set["tips"].as_i64().unwrap_or_default(),
            members.join(", ")
        );
    }
    let needs = &status["needs_rekey"];
    println!(
        "still sealed to a retired key: {} item(s) of {} tip(s) (re-key: a new header)",
        needs["retired"]["items"], needs["retired"]["tips"]
    );
    println!(
        "still sealed to a revoked key: {} item(s) of {} tip(s) (re-key: a fresh encryption)",
        needs["revoked"]["items"], needs["revoked"]["tips"]
    );
    for key in status["revoked_keys"].as_array().into_iter().flatten() {
        let tips: Vec<&str> = key["tips_still_open"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str())
            .collect();
        if !tips.is_empty() {
            println!(
                "revoked key {} ({}) can still open {} tip(s):",
                key["id"],
                key["label"].as_str().unwrap_or_default(),
                tips.len()
            );
            for tip in tips {
                println!("  {tip}");
            }
        }
    }
    for warning in status["warnings"].as_array().into_iter().flatten() {
        println!("warning: {}", warning.as_str().unwrap_or_default());
    }
    Ok(())
}

fn warn_about_policy(active: usize) {
    for warning in crate::keyring::policy_warnings(active) {
        if active > 0 {
            println!("warning: {warning}");
        }
    }
}
