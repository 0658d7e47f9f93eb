//! Opening what tipbox sealed: in-process with the age crate, and with the Debian `age` CLI
//! (the Go implementation) as a reviewer would.

use std::path::Path;
use std::process::Command;

use super::library::Store;

/// Decrypts an age file with an identity, in-process; panics if it does not open.
pub fn decrypt(identity: &age::x25519::Identity, ciphertext: &[u8]) -> Vec<u8> {
    try_decrypt(identity, ciphertext).expect("the identity opens the file")
}

/// Decrypts an age file with an identity, in-process, if it opens with it.
pub fn try_decrypt(identity: &age::x25519::Identity, ciphertext: &[u8]) -> Option<Vec<u8>> {
    let decryptor = age::Decryptor::new_buffered(ciphertext).ok()?;
    let mut reader = decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .ok()?;
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut out).ok()?;
    Some(out)
}

fn age_cli(identity_file: &Path, file: &Path) -> std::process::Output {
    Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(identity_file)
        .arg(file)
        .output()
        .expect("the `age` CLI must be installed (Debian package `age`; scripts/test installs it)")
}

/// Decrypts with the `age` CLI, which must succeed.
pub fn age_cli_decrypt(identity_file: &Path, file: &Path) -> Vec<u8> {
    let out = age_cli(identity_file, file);
    assert!(
        out.status.success(),
        "age -d failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Whether the `age` CLI opens `file` with `identity_file`.
pub fn age_cli_opens(identity_file: &Path, file: &Path) -> bool {
    age_cli(identity_file, file).status.success()
}

/// The plaintext length of a small sealed item (one age chunk): what anyone learns from the
/// stored file's size (the header, a 16-byte nonce, the chunk's 16-byte tag).
pub fn plaintext_len(file: &[u8]) -> usize {
    let header = super::library::Header::parse(file).unwrap();
    file.len() - header.len() - 16 - 16
}

/// Items of one kind from an export manifest.
pub fn items_of<'a>(manifest: &'a serde_json::Value, kind: &str) -> Vec<&'a serde_json::Value> {
    manifest["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == kind)
        .collect()
}

/// The one report (message and facts, `tipbox::report`) of a tip's first submission in an
/// export manifest.
pub fn report_item(manifest: &serde_json::Value) -> &serde_json::Value {
    let reports: Vec<_> = items_of(manifest, "report")
        .into_iter()
        .filter(|i| i["position"] == 0)
        .collect();
    assert_eq!(reports.len(), 1, "one first report in {manifest}");
    reports[0]
}

/// A decrypted report: the source's message, and the whole JSON (the facts, and the message).
pub fn open_report(plaintext: &[u8]) -> (String, serde_json::Value) {
    let json: serde_json::Value = serde_json::from_slice(plaintext).expect("a report is JSON");
    let message = json["message"]
        .as_str()
        .expect("a report holds the message")
        .to_owned();
    (message, json)
}

/// The export manifest's item of the attachment that the (decrypted) facts list as `file_name`,
/// with `size` bytes.
pub fn attachment_item<'a>(
    manifest: &'a serde_json::Value,
    facts: &serde_json::Value,
    file_name: &str,
    size: usize,
) -> &'a serde_json::Value {
    let meta = facts["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["file_name"] == file_name)
        .unwrap_or_else(|| panic!("{file_name} in the facts: {facts}"));
    assert_eq!(meta["size"], size, "{file_name}");
    let item = manifest["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["item_id"] == meta["item_id"])
        .unwrap_or_else(|| panic!("{file_name}'s item in the manifest"));
    assert_eq!(item["kind"], "attachment");
    item
}

/// A stored item's sealed file, put together from its chunks in the database.
pub async fn stored_item(store: &Store, item_id: &str) -> Vec<u8> {
    let mut file = Vec::new();
    let mut seq = 0;
    while let Some(chunk) = store.item_chunk(item_id, seq).await.unwrap() {
        file.extend(chunk);
        seq += 1;
    }
    file
}
