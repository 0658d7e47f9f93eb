//! The command line, one file per group of commands: `server` (init, migrate, export; `serve`
//! is `crate::app`), `keys`, `analyst`, `audit` (the audit trail and retention), and `review`,
//! the analyst's own client.

mod analyst;
mod audit;
mod keys;
mod review;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{self, Config};
use analyst::AnalystCommand;
use audit::{AuditCommand, RetentionCommand};
use keys::KeysCommand;
use review::ReviewCommand;

/// Who the audit trail names for actions taken on the server's command line.
const OPERATOR: &str = "operator (command line)";

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
        .with_ansi(colour_on_stderr())
        .with_target(false)
        .init();
}

/// Colour codes only for a person at a terminal: a log written to a file, a pipe or the
/// journal gets plain text (no escape sequences to strip, none to confuse a log reader), and
/// `NO_COLOR` (no-color.org) turns colour off everywhere.
fn colour_on_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let command = match cli.command {
        Command::Init { force } => return server::init(cli.config.as_deref(), force),
        // The review client runs on the analyst's machine: no server configuration.
        Command::Review(command) => return review::run(command).await,
        command => command,
    };
    let (config, source) = Config::load(cli.config.as_deref())?;
    if let config::Source::Defaults = source {
        tracing::info!(
            "no {} here: using built-in defaults (run `tipbox init` to write one)",
            config::DEFAULT_PATH
        );
    }
    match command {
        Command::Init { .. } | Command::Review(_) => unreachable!("handled above"),
        Command::Serve => crate::app::serve(config).await,
        Command::Migrate => server::migrate(&config).await,
        Command::Export { out } => server::export(&config, &out).await,
        Command::Keys(command) => keys::run(&config, command).await,
        Command::Analyst(command) => analyst::run(&config, command).await,
        Command::Audit(AuditCommand::Verify) => audit::verify(&config).await,
        Command::Retention(RetentionCommand::Run) => audit::retention_run(&config).await,
    }
}
