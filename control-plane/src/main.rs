//! `kalguard`: the KalGuard control plane that runs beside Envoy.
//!
//! `kalguard serve` runs the control plane: the filter's state long-poll and
//! event sink, the Cloud license sync, the usage spool, the audit log and the
//! OpenTelemetry span export.
//! `kalguard token create|verify` mints and checks agent tokens in local mode;
//! `kalguard audit verify` checks the audit log's hash chain; `kalguard policy
//! check` validates a policy file before it is deployed; `kalguard probe` asks a
//! running control plane's `/healthz` (a Kubernetes `exec` probe); `kalguard
//! approvals list|approve|deny` decides the requests a policy holds for a person;
//! `kalguard tools list|approve|forget` reviews MCP tool pins.

mod api;
mod approvals;
mod audit;
mod clock;
mod cloud;
mod ctx;
mod events;
mod fsutil;
mod license;
mod metrics;
mod otel;
mod pins;
mod policy;
mod probe;
mod recent;
mod reported;
mod serve;
mod settings;
mod spool;
mod state;
mod sync;
mod token;
mod usage;
mod watch;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "kalguard",
    version,
    about = "KalGuard control plane: guards AI agents' LLM and tool calls from beside Envoy"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane next to Envoy.
    Serve(settings::Args),
    /// Mint and check agent tokens (local mode, KALGUARD_TOKEN_SECRET).
    #[command(subcommand)]
    Token(token::Command),
    /// Check the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Check policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Ask a running control plane's /healthz (a Kubernetes exec probe); exits 1 unless it answers 200.
    Probe(probe::Args),
    /// List, approve and deny the requests a require_approval rule holds.
    #[command(subcommand)]
    Approvals(approvals::cli::Command),
    /// List, approve and forget MCP tool pins (rug-pull protection).
    #[command(subcommand)]
    Tools(pins::cli::Command),
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate a policy file with the filter's own rules; exits 1 naming the field at fault.
    Check {
        /// The policy file (JSON).
        path: std::path::PathBuf,
    },
}

/// Why a command failed; `main` prints it after `kalguard: ` and exits 1.
#[derive(Debug, thiserror::Error)]
enum Error {
    #[error(transparent)]
    Serve(#[from] serve::ServeError),
    #[error(transparent)]
    Token(#[from] token::TokenCliError),
    #[error("audit verify failed: {0}")]
    AuditVerify(#[from] audit::AuditError),
    #[error(transparent)]
    Policy(#[from] policy::PolicyError),
    #[error(transparent)]
    Probe(#[from] probe::ProbeError),
    #[error(transparent)]
    Approvals(#[from] approvals::cli::CliError),
    #[error(transparent)]
    Tools(#[from] pins::cli::CliError),
}

fn policy_check(command: PolicyCommand) -> Result<(), Error> {
    let PolicyCommand::Check { path } = command;
    let (loaded, _) = policy::load(&path)?;
    println!(
        "policy file {} is valid: version {}, {} rules",
        path.display(),
        loaded.version,
        loaded.rules
    );
    Ok(())
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the audit log's hash chain (rotated files included); exits 1 on a break.
    Verify {
        /// The audit log; default KALGUARD_AUDIT_LOG_PATH, else <KALGUARD_DATA_DIR>/audit.jsonl.
        #[arg(long, env = "KALGUARD_AUDIT_LOG_PATH")]
        path: Option<std::path::PathBuf>,
        /// The data dir whose audit.jsonl is checked when no path is given.
        #[arg(long, env = "KALGUARD_DATA_DIR", default_value = "./.kalguard")]
        data_dir: std::path::PathBuf,
    },
}

fn audit(command: AuditCommand) -> Result<(), Error> {
    let AuditCommand::Verify { path, data_dir } = command;
    let path = path.unwrap_or_else(|| data_dir.join("audit.jsonl"));
    let verified = audit::verify(&path)?;
    let start = match (verified.starts_mid_chain, verified.first_seq) {
        (true, Some(seq)) => {
            format!(" (starts at record {seq}: earlier records were removed by retention)")
        }
        _ => String::new(),
    };
    println!(
        "audit log intact: {} records in {} file(s){start}; last hash {}",
        verified.records, verified.files, verified.last_hash
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args).map_err(Error::from),
        Command::Token(command) => token::run(command).map_err(Error::from),
        Command::Audit(command) => audit(command),
        Command::Policy(command) => policy_check(command),
        Command::Probe(args) => probe::run(args).map_err(Error::from),
        Command::Approvals(command) => approvals::cli::run(command).map_err(Error::from),
        Command::Tools(command) => pins::cli::run(command).map_err(Error::from),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("kalguard: {message}");
            ExitCode::FAILURE
        }
    }
}
