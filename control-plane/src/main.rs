//! `kalguard`: the KalGuard control plane that runs beside Envoy.
//!
//! `kalguard token create|verify` mints and checks agent tokens in local mode;
//! `kalguard serve` runs the control plane's HTTP API (health for now; the
//! Cloud sync, usage spool, audit log and the filter's state channel build on
//! it).

mod serve;
mod token;

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
    Serve(serve::Args),
    /// Mint and check agent tokens (local mode, KALGUARD_TOKEN_SECRET).
    #[command(subcommand)]
    Token(token::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Token(command) => token::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("kalguard: {message}");
            ExitCode::FAILURE
        }
    }
}
