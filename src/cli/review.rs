//! `tipbox review …`: the analyst's own client, on the analyst's machine (no server
//! configuration, no database).

use std::path::PathBuf;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum ReviewCommand {
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

pub async fn run(command: ReviewCommand) -> anyhow::Result<()> {
    match command {
        ReviewCommand::Login {
            server,
            user,
            proxy,
        } => crate::review::login(&server, &user, proxy).await,
        ReviewCommand::Pull { identity, out, all } => {
            crate::review::pull(identity, &out, all).await
        }
        ReviewCommand::Rekey { identity, yes } => crate::review::rekey(identity, yes).await,
    }
}
