//! `kalguard serve` settings: flags and environment variables, checked once at start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Bounds of `KALGUARD_CLOUD_SYNC_INTERVAL_MS` (DESIGN.md: 10 s … 10 min).
pub const MIN_SYNC_INTERVAL_MS: u64 = 10_000;
pub const MAX_SYNC_INTERVAL_MS: u64 = 600_000;

#[derive(clap::Args)]
pub struct Args {
    /// Address of the control plane's HTTP API (the filter's cluster `kalguard_control_plane`).
    #[arg(long, env = "KALGUARD_LISTEN", default_value = "127.0.0.1:9292")]
    pub listen: SocketAddr,
    /// Directory for the license cache, the usage spool and (by default) the audit log.
    #[arg(long, env = "KALGUARD_DATA_DIR", default_value = "./.kalguard")]
    pub data_dir: PathBuf,
    /// The audit log (JSONL, hash-chained); default `<data dir>/audit.jsonl`.
    #[arg(long, env = "KALGUARD_AUDIT_LOG_PATH")]
    pub audit_log_path: Option<PathBuf>,
    /// Base URL of KalGuard Cloud (used when KALGUARD_API_KEY is set).
    #[arg(
        long,
        env = "KALGUARD_CLOUD_URL",
        default_value = "https://api.kalguard.dev"
    )]
    pub cloud_url: String,
    /// License refresh interval in ms; clamped to 10 s … 10 min.
    #[arg(
        long,
        env = "KALGUARD_CLOUD_SYNC_INTERVAL_MS",
        default_value_t = 300_000
    )]
    pub sync_interval_ms: u64,
    /// Audit retention in days outside Cloud mode (-1: keep forever); Cloud mode uses the plan's.
    #[arg(
        long,
        env = "KALGUARD_AUDIT_RETENTION_DAYS",
        default_value_t = -1,
        allow_negative_numbers = true
    )]
    pub audit_retention_days: i64,
    /// The operator's policy file (JSON), watched for changes and pushed to the filter.
    #[arg(long, env = "KALGUARD_POLICY_PATH")]
    pub policy_path: Option<PathBuf>,
    /// Most usage events the spool keeps while the Cloud is unreachable.
    #[arg(long, env = "KALGUARD_SPOOL_MAX_EVENTS", default_value_t = 1_000_000)]
    pub spool_max_events: usize,
}

/// Secrets and tokens come from the environment only (never flags: `ps` shows flags).
pub struct Secrets {
    pub api_key: Option<String>,
    pub token_secret: Option<String>,
    pub agent_token: Option<String>,
}

impl Secrets {
    pub fn from_env() -> Self {
        let get = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        Self {
            api_key: get("KALGUARD_API_KEY"),
            token_secret: get("KALGUARD_TOKEN_SECRET"),
            agent_token: get("KALGUARD_AGENT_TOKEN"),
        }
    }
}

/// The sync interval within bounds, and a message when it had to be clamped.
pub fn clamp_sync_interval(ms: u64) -> (Duration, Option<String>) {
    let clamped = ms.clamp(MIN_SYNC_INTERVAL_MS, MAX_SYNC_INTERVAL_MS);
    let note = (clamped != ms).then(|| {
        format!(
            "KALGUARD_CLOUD_SYNC_INTERVAL_MS={ms} is outside {MIN_SYNC_INTERVAL_MS}..{MAX_SYNC_INTERVAL_MS}: using {clamped} ms"
        )
    });
    (Duration::from_millis(clamped), note)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_is_clamped_with_a_message() {
        assert_eq!(
            clamp_sync_interval(300_000),
            (Duration::from_secs(300), None)
        );
        let (low, note) = clamp_sync_interval(1);
        assert_eq!(low, Duration::from_secs(10));
        assert!(note.unwrap().contains("using 10000 ms"));
        assert_eq!(clamp_sync_interval(u64::MAX).0, Duration::from_secs(600));
    }
}
