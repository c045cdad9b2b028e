//! `kalguard token create` and `kalguard token verify`: agent tokens in local
//! mode, signed with `KALGUARD_TOKEN_SECRET` exactly as the filter verifies them.

use clap::{Args, Subcommand};
use kalguard_wire::token::{mint, token_hash, Claims, Verifier, ISSUER};
use serde_json::{Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest token lifetime `--ttl` accepts: ten years.
const MAX_TTL_SECS: i64 = 3650 * 86_400;

/// Why `kalguard token` did not mint or accept a token. Messages name the
/// flag at fault and never show the secret or the token.
#[derive(Debug, thiserror::Error)]
pub enum TokenCliError {
    #[error("KALGUARD_TOKEN_SECRET is not set: export the signing secret the filter uses (or pass --secret)")]
    NoSecret,
    #[error("--agent-id must not be empty")]
    EmptyAgentId,
    #[error("--agent-id {0}")]
    AgentId(String),
    #[error("invalid --ttl {0:?}: use a number with s, m, h or d, e.g. 24h")]
    Ttl(String),
    #[error("--ttl {0} is out of range: between 1s and 3650d")]
    TtlRange(String),
    #[error("invalid --metadata {0:?}: use key=value")]
    Metadata(String),
    #[error("{0}")]
    Refused(kalguard_wire::token::TokenError),
}

#[derive(Subcommand)]
pub enum Command {
    /// Mint a token; prints it alone on stdout (details go to stderr).
    Create(CreateArgs),
    /// Verify a token and print its claims as JSON.
    Verify(VerifyArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    /// The agent ID (the token's `sub`).
    #[arg(long)]
    agent_id: String,
    /// Comma-separated capabilities, e.g. prompt:send,tool:execute,tool:execute:search,model:gpt-4o*
    #[arg(long, value_delimiter = ',')]
    capabilities: Vec<String>,
    /// Lifetime: a number with s, m, h or d (30m, 24h, 90d).
    #[arg(long, default_value = "24h")]
    ttl: String,
    /// Metadata entries, key=value (repeatable).
    #[arg(long = "metadata", value_name = "KEY=VALUE")]
    metadata: Vec<String>,
    /// The signing secret.
    #[arg(long, env = "KALGUARD_TOKEN_SECRET", hide_env_values = true)]
    secret: Option<String>,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// The token to check.
    token: String,
    /// The signing secret.
    #[arg(long, env = "KALGUARD_TOKEN_SECRET", hide_env_values = true)]
    secret: Option<String>,
}

pub fn run(command: Command) -> Result<(), TokenCliError> {
    match command {
        Command::Create(args) => create(args),
        Command::Verify(args) => verify(args),
    }
}

fn secret(secret: Option<String>) -> Result<String, TokenCliError> {
    secret
        .filter(|s| !s.trim().is_empty())
        .ok_or(TokenCliError::NoSecret)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn create(args: CreateArgs) -> Result<(), TokenCliError> {
    let secret = secret(args.secret)?;
    if args.agent_id.is_empty() {
        return Err(TokenCliError::EmptyAgentId);
    }
    if let Some(why) = kalguard_wire::agent_id::problem(&args.agent_id) {
        return Err(TokenCliError::AgentId(why));
    }
    let ttl = parse_ttl(&args.ttl)?;
    let capabilities: Vec<String> = args
        .capabilities
        .iter()
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect();
    let metadata = parse_metadata(&args.metadata)?;
    let issued = now();
    let claims = Claims {
        sub: args.agent_id,
        capabilities,
        exp: issued.saturating_add(ttl),
        iat: Some(issued),
        nbf: None,
        iss: Some(ISSUER.into()),
        metadata: (!metadata.is_empty()).then_some(metadata),
    };
    let token = mint(&claims, &secret);
    eprintln!(
        "kalguard: token for agent {} with capabilities [{}], expires at unix {} ({}s from now)",
        claims.sub,
        claims.capabilities.join(", "),
        claims.exp,
        ttl
    );
    println!("{token}");
    Ok(())
}

fn verify(args: VerifyArgs) -> Result<(), TokenCliError> {
    let secrets = vec![secret(args.secret)?];
    let not_revoked = |_: &str| false;
    let agent = Verifier {
        secrets: &secrets,
        is_revoked: &not_revoked,
    }
    .verify(args.token.trim(), now())
    .map_err(TokenCliError::Refused)?;
    let report = serde_json::json!({
        "valid": true,
        "agentId": agent.id.as_str(),
        "expiresAt": agent.expires_at,
        "tokenHash": token_hash(args.token.trim()),
    });
    println!("{report}");
    Ok(())
}

/// `30s`, `15m`, `24h`, `90d` → seconds.
fn parse_ttl(ttl: &str) -> Result<i64, TokenCliError> {
    let ttl = ttl.trim();
    let invalid = || TokenCliError::Ttl(ttl.to_owned());
    let unit = ttl.chars().last().ok_or_else(invalid)?;
    let multiplier = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(invalid()),
    };
    let count: i64 = ttl[..ttl.len() - 1].parse().map_err(|_| invalid())?;
    let seconds = count.checked_mul(multiplier).ok_or_else(invalid)?;
    if seconds <= 0 || seconds > MAX_TTL_SECS {
        return Err(TokenCliError::TtlRange(ttl.to_owned()));
    }
    Ok(seconds)
}

fn parse_metadata(entries: &[String]) -> Result<Map<String, Value>, TokenCliError> {
    let mut map = Map::new();
    for entry in entries {
        let (key, value) = entry
            .split_once('=')
            .filter(|(k, _)| !k.trim().is_empty())
            .ok_or_else(|| TokenCliError::Metadata(entry.clone()))?;
        map.insert(key.trim().to_owned(), Value::String(value.to_owned()));
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_units_and_bounds() {
        assert_eq!(parse_ttl("30s").ok(), Some(30));
        assert_eq!(parse_ttl("15m").ok(), Some(900));
        assert_eq!(parse_ttl("24h").ok(), Some(86_400));
        assert_eq!(parse_ttl("90d").ok(), Some(90 * 86_400));
        for bad in [
            "",
            "h",
            "24",
            "-1h",
            "0s",
            "1w",
            "99999999999999999d",
            "3651d",
        ] {
            assert!(parse_ttl(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn metadata_pairs() {
        let map = parse_metadata(&["team=payments".into(), "env=prod=eu".into()]).unwrap();
        assert_eq!(map["team"], "payments");
        assert_eq!(map["env"], "prod=eu");
        assert!(parse_metadata(&["novalue".into()]).is_err());
        assert!(parse_metadata(&["=x".into()]).is_err());
    }
}
