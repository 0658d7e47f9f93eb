//! `tipbox analyst …`: analysts' accounts (add, list, disable, unlock, reset-2fa) and their tor
//! client authorization for the analyst onion service. Each action is committed with its audit
//! entry.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;

use super::OPERATOR;
use crate::config::Config;

#[derive(Subcommand)]
pub enum AnalystCommand {
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
    /// Disable an account and end its sessions (and remove its onion-service client key, if
    /// analyst.onion_service_dir is set).
    Disable {
        name: String,
        /// Remove the key even if it is the analyst onion's last one: tor then turns client
        /// authorization off, and anyone with the address reaches the analyst listener
        #[arg(long)]
        open_analyst_onion: bool,
    },
    /// End an account's sign-in back-off (after checking who was locked out, and why).
    Unlock { name: String },
    /// Make a tor client-authorization key for the analyst onion service: writes the service's
    /// authorized_clients/NAME.auth and prints the analyst's private .auth_private line once.
    /// Before tor has ever started the service, this makes the service's own key too, so that
    /// tor publishes it with client authorization from the first time (deploy/README.md).
    #[command(name = "onion-key")]
    OnionKey {
        name: String,
        /// tor's HiddenServiceDir of the analyst onion service (default: analyst.onion_service_dir)
        #[arg(long)]
        service_dir: Option<PathBuf>,
        /// Remove NAME's authorization instead (then reload tor)
        #[arg(long)]
        revoke: bool,
        /// With --revoke: remove the key even if it is the last one, which opens the analyst
        /// onion to anyone with its address (tor turns client authorization off)
        #[arg(long, requires = "revoke")]
        open_analyst_onion: bool,
    },
    /// Give an account a new TOTP secret (prints it once) and end its sessions.
    #[command(name = "reset-2fa")]
    Reset2fa {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(config: &Config, command: AnalystCommand) -> anyhow::Result<()> {
    use crate::audit::{Audit, AuditAction};
    use crate::auth::{self, Role, totp};
    let store = crate::app::open_store(config).await?;
    let secret = crate::app::load_secret(config, &store).await?;
    let store = store.with_audit_key(
        crate::audit::AuditKey::new(&secret),
        config.privacy.time_granularity_seconds,
    );
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
                    &totp::seal_secret(&secret, &name, &totp_secret),
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
        AnalystCommand::Disable {
            name,
            open_analyst_onion,
        } => {
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
                            crate::onion::revoke_client(dir, &name, open_analyst_onion)?
                                .then_some(()),
                        )
                    })
                    .await
                    .with_context(|| {
                        format!(
                            "{name}'s account is disabled and their sessions ended, but their onion-service key was kept"
                        )
                    })?
                    .is_some()
            {
                println!(
                    "removed {name}'s onion-service authorization; reload tor to apply it (systemctl reload tor)"
                );
                warn_if_open(dir)?;
            }
        }
        AnalystCommand::OnionKey {
            name,
            service_dir,
            revoke,
            open_analyst_onion,
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
                            crate::onion::revoke_client(&dir, &name, open_analyst_onion)?
                                .then_some(()),
                        )
                    })
                    .await?;
                if revoked.is_none() {
                    bail!("{name} has no authorization in {}", dir.display());
                }
                println!(
                    "removed {name}'s authorization; reload tor to apply it (systemctl reload tor)"
                );
                warn_if_open(&dir)?;
            } else {
                if store.analyst_id(&name).await?.is_none() {
                    bail!("there is no enabled analyst named {name}");
                }
                let (address, new_service) = crate::onion::prepare_service(&dir)?;
                if new_service {
                    eprintln!(
                        "made the analyst onion service's key in {} ({address}.onion); tor has not published it yet. \
                         Point tor's HiddenServiceDir at this directory and start or reload tor: it publishes the service \
                         with client authorization from the first time.",
                        dir.display()
                    );
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
                    &totp::seal_secret(&secret, &name, &totp_secret),
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

/// Says so when the analyst onion has no client key left (after `--open-analyst-onion`).
fn warn_if_open(service_dir: &std::path::Path) -> anyhow::Result<()> {
    if crate::onion::client_keys(service_dir)?.is_empty() {
        eprintln!(
            "warning: the analyst onion service has no client key left: once tor is reloaded, client authorization is off and anyone with its address reaches the analyst listener"
        );
    }
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
    // The QR code only for a person at a terminal: scripts and tests read the lines above.
    let at_terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    if at_terminal {
        println!();
        print!("{}", enrolment.terminal_qr());
    }
    println!();
    println!("This is shown once. Hand it to {name} over a channel you trust; they add the TOTP");
    if at_terminal {
        println!(
            "secret to an authenticator app, or scan the QR code above with it (the code holds"
        );
        println!("the secret: scan it only where no one else sees the screen).");
    } else {
        println!(
            "secret to an authenticator app (or scan the URI as a QR code on their own device)."
        );
    }
}
