//! `tipbox init`, `migrate` and `export`: setting a deployment up and getting its sealed items
//! out. (`serve` is `crate::app::serve`.)

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::{self, Config};
use crate::secrets::{SecretError, ServerSecret};

pub fn init(explicit: Option<&Path>, force: bool) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = explicit.map_or_else(|| PathBuf::from(config::DEFAULT_PATH), Path::to_path_buf);
    if path.exists() && !force {
        println!(
            "{} exists; keeping it (use --force to overwrite)",
            path.display()
        );
    } else {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        file.write_all(config::TEMPLATE.as_bytes())?;
        println!("wrote {}", path.display());
    }
    let (config, _) = Config::load(Some(&path))?;
    let data_dir = &config.storage.data_dir;
    match ServerSecret::load(data_dir) {
        Ok(_) => println!("server secret in {} exists; keeping it", data_dir.display()),
        Err(SecretError::Missing(_)) => {
            ServerSecret::create(data_dir)?;
            println!(
                "created {} with a new server secret (mode 0600); back it up with the database",
                data_dir.display()
            );
        }
        Err(e) => return Err(e.into()),
    }
    write_site_example(&config.site.texts_dir)?;
    println!(
        "next: add a reviewer key (`tipbox keys add keys/alice.age --label alice`), then `tipbox serve`"
    );
    Ok(())
}

/// The per-language site texts to start from (`[site]` in the configuration): written once,
/// as `<texts_dir>/en.ftl.example`, never over a file the operator has.
fn write_site_example(dir: &Path) -> anyhow::Result<()> {
    const EXAMPLE: &str = include_str!("../../deploy/site.en.ftl.example");
    if dir.as_os_str().is_empty() {
        return Ok(());
    }
    let path = dir.join("en.ftl.example");
    if path.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(&path, EXAMPLE).with_context(|| format!("writing {}", path.display()))?;
    println!(
        "wrote {} (your own words on the public pages: copy it to {}/<language>.ftl, see [site] in the configuration)",
        path.display(),
        dir.display()
    );
    Ok(())
}

/// `tipbox migrate`: creates or updates the schema.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = crate::app::open_store(config).await?;
    store.close().await;
    println!("database schema is up to date");
    Ok(())
}

/// `tipbox export --out DIR`.
pub async fn export(config: &Config, out: &Path) -> anyhow::Result<()> {
    let store = crate::app::open_store(config).await?;
    let summary = crate::export::export(&store, out).await?;
    store.close().await;
    println!(
        "exported {} items of {} tips to {} (see manifest.json; decrypt with `age -d -i YOUR_KEY FILE`)",
        summary.items,
        summary.tips,
        out.display()
    );
    Ok(())
}
