//! `tipbox audit verify` (the hash chain of the audit trail) and `tipbox retention run` (the
//! retention policy, now).

use anyhow::bail;
use clap::Subcommand;

use crate::config::Config;

#[derive(Subcommand)]
pub enum RetentionCommand {
    /// Delete the tips the policy says are old enough, now (`serve` also does it on a schedule).
    Run,
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain; exits non-zero and names the first bad entry if it was tampered with.
    Verify,
}

/// `tipbox retention run`: deletes the tips the policy says are old enough, now.
pub async fn retention_run(config: &Config) -> anyhow::Result<()> {
    if !config.retention.enabled() {
        println!(
            "no retention policy is set ([retention] closed_after_days and all_after_days are 0): nothing deleted"
        );
        return Ok(());
    }
    let store = crate::app::open_audited_store(config).await?;
    let deleted = crate::retention::run(&store, &config.retention, crate::clock::now()).await?;
    store.close().await;
    println!("deleted {deleted} tips under the retention policy");
    Ok(())
}

pub async fn verify(config: &Config) -> anyhow::Result<()> {
    use crate::audit::{ChainStatus, verify};
    let store = crate::app::open_audited_store(config).await?;
    let entries = store.audit_entries().await?;
    let secret = crate::app::load_secret(config, &store).await?;
    store.close().await;
    match verify(&crate::audit::AuditKey::new(&secret), &entries) {
        ChainStatus::Intact { entries, head } => {
            println!("audit trail intact: {entries} entries; head {head}");
            println!(
                "(note the head hash somewhere else: a later check can then show that no entry was cut off)"
            );
            Ok(())
        }
        ChainStatus::Broken { seq, why } => bail!("audit trail TAMPERED: entry {seq}: {why}"),
    }
}
