//! The command line: `init`, `serve`, `keys`, `export`, `migrate`, `analyst`, `audit`, and the
//! analyst's own `review` client.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::config::{self, Config};
use crate::keyring::{KeyFile, Recipient};
use crate::secrets::{SecretError, ServerSecret};
use crate::store::Store;

#[derive(Parser)]
#[command(name = "tipbox", version, about = "A secure, anonymous tip line")]
struct Cli {
    /// Configuration file [default: ./tipbox.toml, or built-in defaults if it does not exist]
    #[arg(long, global = true, env = "TIPBOX_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a commented configuration file and create the data directory with server secrets.
    Init {
        /// Overwrite an existing configuration file (the server secret is never overwritten).
        #[arg(long)]
        force: bool,
    },
    /// Run the public and the analyst listeners.
    Serve,
    /// Manage reviewers' public keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Write every sealed item as a standalone .age file, plus manifest.json, into a new directory.
    Export {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Create or update the database schema.
    Migrate,
    /// Manage analyst accounts.
    #[command(subcommand)]
    Analyst(AnalystCommand),
    /// Apply the retention policy ([retention] in the configuration).
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// The tamper-evident audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The analyst's own client: sign in to a server, pull and decrypt tips locally.
    #[command(subcommand)]
    Review(ReviewCommand),
}

#[derive(Subcommand)]
enum ReviewCommand {
    /// Sign in; reads the password and TOTP code from the terminal (or two lines of stdin).
    Login {
        /// The analyst listener, e.g. http://127.0.0.1:8081 or http://….onion
        #[arg(long)]
        server: String,
        #[arg(long)]
        user: String,
        /// A proxy for reaching the server, e.g. socks5h://127.0.0.1:9050 (Tor)
        #[arg(long)]
        proxy: Option<String>,
    },
    /// Re-seal every item sealed to a retired or revoked key to the current keys: a new header
    /// for retired keys, a fresh encryption for revoked ones. Needs an identity that opens them.
    Rekey {
        /// Your age identity: a plain, passphrase-protected or plugin identity file, or an SSH key
        #[arg(long, required = true)]
        identity: Vec<String>,
        /// Do not ask before re-sealing to the keys the server names (check them first)
        #[arg(long)]
        yes: bool,
    },
    /// Fetch what you have not pulled yet and decrypt it into DIR/<tip id>/.
    Pull {
        /// Your age identity: a plain, passphrase-protected or plugin identity file, or an SSH key
        #[arg(long, required = true)]
        identity: Vec<String>,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Fetch everything again, not only what is new to you
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand)]
enum AnalystCommand {
    /// Create an account; prints its generated password and TOTP secret once.
    Add {
        name: String,
        #[arg(long, default_value = "analyst", value_parser = ["admin", "analyst"])]
        role: String,
        /// Print a JSON object (username, password, totp_secret, otpauth_uri).
        #[arg(long)]
        json: bool,
    },
    /// List accounts.
    List,
    /// Disable an account and end its sessions.
    Disable { name: String },
    /// End an account's sign-in back-off (after checking who was locked out, and why).
    Unlock { name: String },
    /// Make a tor client-authorization key for the analyst onion service: writes the service's
    /// authorized_clients/NAME.auth and prints the analyst's private .auth_private line once.
    #[command(name = "onion-key")]
    OnionKey {
        name: String,
        /// tor's HiddenServiceDir of the analyst onion service (default: analyst.onion_service_dir)
        #[arg(long)]
        service_dir: Option<PathBuf>,
        /// Remove NAME's authorization instead (then reload tor)
        #[arg(long)]
        revoke: bool,
    },
    /// Give an account a new TOTP secret (prints it once) and end its sessions.
    #[command(name = "reset-2fa")]
    Reset2fa {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// Delete the tips the policy says are old enough, now (`serve` also does it on a schedule).
    Run,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain; exits non-zero and names the first bad entry if it was tampered with.
    Verify,
}

#[derive(Subcommand)]
enum KeysCommand {
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

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tipbox: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tipbox: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TIPBOX_LOG")
        // sqlx's own warnings (slow statements, slow acquires) carry exact times of intake
        // activity; only its errors are logged.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init { force } => return init(cli.config.as_deref(), force),
        // The review client runs on the analyst's machine: no server configuration.
        Command::Review(ReviewCommand::Login {
            server,
            user,
            proxy,
        }) => {
            return crate::review::login(&server, &user, proxy).await;
        }
        Command::Review(ReviewCommand::Pull { identity, out, all }) => {
            return crate::review::pull(identity, &out, all).await;
        }
        Command::Review(ReviewCommand::Rekey { identity, yes }) => {
            return crate::review::rekey(identity, yes).await;
        }
        _ => {}
    }
    let (config, source) = Config::load(cli.config.as_deref())?;
    if let config::Source::Defaults = source {
        tracing::info!(
            "no {} here: using built-in defaults (run `tipbox init` to write one)",
            config::DEFAULT_PATH
        );
    }
    match cli.command {
        Command::Init { .. } | Command::Review(_) => unreachable!("handled above"),
        Command::Serve => crate::app::serve(config).await,
        Command::Migrate => {
            let store = crate::app::open_store(&config).await?;
            store.close().await;
            println!("database schema is up to date");
            Ok(())
        }
        Command::Analyst(command) => analyst_command(&config, command).await,
        Command::Audit(AuditCommand::Verify) => audit_verify(&config).await,
        Command::Retention(RetentionCommand::Run) => {
            if !config.retention.enabled() {
                println!(
                    "no retention policy is set ([retention] closed_after_days and all_after_days are 0): nothing deleted"
                );
                return Ok(());
            }
            let store = crate::app::open_audited_store(&config).await?;
            let deleted =
                crate::retention::run(&store, &config.retention, crate::clock::now()).await?;
            store.close().await;
            println!("deleted {deleted} tips under the retention policy");
            Ok(())
        }
        Command::Keys(command) => keys_command(&config, command).await,
        Command::Export { out } => {
            let store = crate::app::open_store(&config).await?;
            let summary = crate::export::export(&store, &out).await?;
            store.close().await;
            println!(
                "exported {} items of {} tips to {} (see manifest.json; decrypt with `age -d -i YOUR_KEY FILE`)",
                summary.items,
                summary.tips,
                out.display()
            );
            Ok(())
        }
    }
}

fn init(explicit: Option<&Path>, force: bool) -> anyhow::Result<()> {
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
    println!(
        "next: add a reviewer key (`tipbox keys add keys/alice.age --label alice`), then `tipbox serve`"
    );
    Ok(())
}

async fn keys_command(config: &Config, command: KeysCommand) -> anyhow::Result<()> {
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

/// Who the audit trail names for actions taken on the server's command line.
const OPERATOR: &str = "operator (command line)";

async fn analyst_command(config: &Config, command: AnalystCommand) -> anyhow::Result<()> {
    use crate::audit::{Audit, AuditAction};
    use crate::auth::{self, Role, totp};
    let store = crate::app::open_store(config).await?;
    let secret = crate::app::load_secret(config, &store).await?;
    let store = store.with_audit_key(crate::audit::AuditKey::new(&secret));
    let now = crate::clock::now();
    let audit = |action, name| Audit {
        at: now,
        actor: OPERATOR,
        action,
        subject: name,
        detail: serde_json::json!({}),
    };
    match command {
        AnalystCommand::Add { name, role, json } => {
            if !auth::valid_username(&name) {
                bail!(
                    "`{name}` is not a valid user name: 2 to 64 characters, lower-case letters, digits, '-', '_' or '.'"
                );
            }
            let role = Role::parse(&role).expect("clap checked the role");
            let password = auth::generate_password();
            let hash = auth::password::hash_blocking(config.analyst.hash_params(), &password)?;
            let totp_secret = totp::generate_secret();
            store
                .create_analyst(
                    &name,
                    role.as_str(),
                    &hash,
                    &totp::seal_secret(&secret, &totp_secret),
                    now,
                    &Audit {
                        detail: serde_json::json!({ "role": role.as_str() }),
                        ..audit(AuditAction::AnalystAdd, &name)
                    },
                )
                .await?;
            print_credentials(
                &name,
                Some(&password),
                &totp::enrolment(&totp_secret, &name),
                json,
            );
        }
        AnalystCommand::List => {
            let analysts = store.list_analysts().await?;
            if analysts.is_empty() {
                println!("no analysts yet (add one with `tipbox analyst add NAME --role admin`)");
            } else {
                println!("{:<24} {:<8} STATE", "USERNAME", "ROLE");
                for a in analysts {
                    println!(
                        "{:<24} {:<8} {}",
                        a.username,
                        a.role,
                        if a.disabled { "disabled" } else { "active" }
                    );
                }
            }
        }
        AnalystCommand::Disable { name } => {
            if !store
                .disable_analyst(&name, &audit(AuditAction::AnalystDisable, &name))
                .await?
            {
                bail!("there is no analyst named {name}");
            }
            println!("disabled {name} and ended their sessions");
            if let Some(dir) = &config.analyst.onion_service_dir
                && store
                    .audited(&audit(AuditAction::AnalystOnionKeyRevoke, &name), || {
                        Ok::<_, anyhow::Error>(
                            crate::onion::revoke_client(dir, &name)?.then_some(()),
                        )
                    })
                    .await?
                    .is_some()
            {
                println!(
                    "removed {name}'s onion-service authorization; reload tor to apply it (systemctl reload tor)"
                );
            }
        }
        AnalystCommand::OnionKey {
            name,
            service_dir,
            revoke,
        } => {
            let Some(dir) = service_dir.or_else(|| config.analyst.onion_service_dir.clone()) else {
                bail!(
                    "which onion service? give --service-dir (tor's HiddenServiceDir of the analyst service) or set analyst.onion_service_dir"
                );
            };
            if revoke {
                let revoked = store
                    .audited(&audit(AuditAction::AnalystOnionKeyRevoke, &name), || {
                        Ok::<_, anyhow::Error>(
                            crate::onion::revoke_client(&dir, &name)?.then_some(()),
                        )
                    })
                    .await?;
                if revoked.is_none() {
                    bail!("{name} has no authorization in {}", dir.display());
                }
                println!(
                    "removed {name}'s authorization; reload tor to apply it (systemctl reload tor)"
                );
            } else {
                if store.analyst_id(&name).await?.is_none() {
                    bail!("there is no enabled analyst named {name}");
                }
                let key = store
                    .audited(&audit(AuditAction::AnalystOnionKey, &name), || {
                        Ok::<_, anyhow::Error>(Some(crate::onion::add_client(&dir, &name)?))
                    })
                    .await?
                    .context("the onion key was not added")?;
                eprintln!(
                    "wrote {}; reload tor (systemctl reload tor). Give {name} this line, once, over a safe channel, \
                     for their tor's ClientOnionAuthDir (file {name}.auth_private) or Tor Browser's onion key prompt:",
                    dir.join("authorized_clients")
                        .join(format!("{name}.auth"))
                        .display()
                );
                println!("{}", key.private_line.as_str());
            }
        }
        AnalystCommand::Unlock { name } => {
            if !store
                .clear_backoff(&name, &audit(AuditAction::AnalystUnlock, &name))
                .await?
            {
                bail!("there is no analyst named {name}");
            }
            println!("ended {name}'s sign-in back-off");
        }
        AnalystCommand::Reset2fa { name, json } => {
            let totp_secret = totp::generate_secret();
            if !store
                .reset_totp(
                    &name,
                    &totp::seal_secret(&secret, &totp_secret),
                    &audit(AuditAction::AnalystReset2fa, &name),
                )
                .await?
            {
                bail!("there is no analyst named {name}");
            }
            print_credentials(&name, None, &totp::enrolment(&totp_secret, &name), json);
        }
    }
    store.close().await;
    Ok(())
}

/// Prints credentials once, to standard output only (never to the log).
fn print_credentials(
    name: &str,
    password: Option<&zeroize::Zeroizing<String>>,
    enrolment: &crate::auth::totp::Enrolment,
    json: bool,
) {
    if json {
        let mut object = serde_json::json!({
            "username": name,
            "totp_secret": enrolment.secret_base32.as_str(),
            "otpauth_uri": enrolment.otpauth_uri.as_str(),
        });
        if let Some(password) = password {
            object["password"] = serde_json::Value::from(password.as_str());
        }
        println!("{object}");
        return;
    }
    println!("analyst:      {name}");
    if let Some(password) = password {
        println!("password:     {}", password.as_str());
    }
    println!("TOTP secret:  {}", enrolment.secret_base32.as_str());
    println!("otpauth URI:  {}", enrolment.otpauth_uri.as_str());
    println!();
    println!("This is shown once. Hand it to {name} over a channel you trust; they add the TOTP");
    println!("secret to an authenticator app (or scan the URI as a QR code on their own device).");
}

async fn audit_verify(config: &Config) -> anyhow::Result<()> {
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
