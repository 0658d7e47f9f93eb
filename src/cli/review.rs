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
    /// for retired keys, a fresh encryption for revoked ones. Needs an identity that opens them,
    /// and refuses unless you trust every current key (`review keys`).
    Rekey {
        /// Your age identity: a plain, passphrase-protected or plugin identity file, or an SSH key
        #[arg(long, required = true)]
        identity: Vec<String>,
        /// Do not ask before re-sealing to the current keys (all of which you must trust)
        #[arg(long)]
        yes: bool,
    },
    /// Mark tips as spam, close them, or delete them (admins only), at most 2000 at once, in
    /// one transaction on the server.
    Bulk {
        #[arg(value_parser = ["spam", "close", "delete"])]
        action: String,
        /// A tip's id (32 hex digits); once for each tip
        #[arg(long = "id", value_name = "TIP", required = true)]
        ids: Vec<String>,
        /// Delete without asking again (deleting cannot be undone)
        #[arg(long)]
        yes: bool,
    },
    /// Read and answer tips in your browser, decrypted only on this machine: serves a local
    /// review desk on loopback, prints its address and a one-time code, and seals replies and
    /// notes here (to the keys you trust) before sending them.
    Desk {
        /// Your age identity: a plain, passphrase-protected or plugin identity file, or an SSH key
        #[arg(long, required = true)]
        identity: Vec<String>,
        /// Where to listen (loopback only); port 0 picks a free one
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
    },
    /// The reviewer keys you trust, kept on this machine: nothing is sealed to any other.
    #[command(subcommand)]
    Keys(ReviewKeysCommand),
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
pub enum ReviewKeysCommand {
    /// Trust one reviewer key, after comparing its full fingerprint with the one its reviewer
    /// gave you out of band (asked on the terminal, or given with --fingerprint).
    Trust {
        /// A recipient (age1…, ssh-ed25519 …, ssh-rsa …) or a key file as in keys/README.md
        #[arg(value_name = "RECIPIENT_OR_FILE")]
        key: String,
        /// Your name for the key [default: the file's first comment line]
        #[arg(long)]
        label: Option<String>,
        /// The key's full fingerprint (64 hex digits) as its reviewer gave it to you: the key is
        /// trusted only if it matches, without asking
        #[arg(long, value_name = "FP")]
        fingerprint: Option<String>,
    },
    /// List the keys you trust, with full fingerprints.
    List,
    /// Stop trusting a key.
    Untrust {
        /// Its full fingerprint (64 hex digits)
        fingerprint: String,
    },
    /// Trust every key of a keys file your organisation distributes: one recipient per line,
    /// each after a `# label` comment line (the deployment's keys/ files, concatenated).
    Import {
        #[arg(value_name = "FILE")]
        file: PathBuf,
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
        ReviewCommand::Desk { identity, listen } => crate::review::desk(identity, listen).await,
        ReviewCommand::Bulk { action, ids, yes } => {
            let action = serde_json::from_value(serde_json::Value::String(action))?;
            crate::review::bulk(action, ids, yes).await
        }
        ReviewCommand::Keys(command) => match command {
            ReviewKeysCommand::Trust {
                key,
                label,
                fingerprint,
            } => crate::review::trust_key(&key, label, fingerprint),
            ReviewKeysCommand::List => crate::review::list_keys(),
            ReviewKeysCommand::Untrust { fingerprint } => crate::review::untrust_key(&fingerprint),
            ReviewKeysCommand::Import { file } => crate::review::import_keys(&file),
        },
    }
}
