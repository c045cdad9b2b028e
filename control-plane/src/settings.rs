//! `kalguard serve` settings: flags and environment variables, checked once at start.

use kalguard_wire::channel::{ChannelKey, KeyError};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Bounds of `KALGUARD_CLOUD_SYNC_INTERVAL_MS` (DESIGN.md: 10 s … 10 min).
pub const MIN_SYNC_INTERVAL_MS: u64 = 10_000;
pub const MAX_SYNC_INTERVAL_MS: u64 = 600_000;

#[derive(clap::Args)]
pub struct Args {
    /// Where the control plane's HTTP API listens (the filter's cluster
    /// `kalguard_control_plane`): `host:port`, or `unix:/path` for a Unix socket.
    #[arg(long, env = "KALGUARD_LISTEN", default_value = "127.0.0.1:9292")]
    pub listen: Listen,
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
    /// OTLP/HTTP collector that receives each decision as a span (JSON,
    /// POST <url>/v1/traces): https://, or http:// on loopback. Off when unset.
    #[arg(long, env = "KALGUARD_OTEL_ENDPOINT")]
    pub otel_endpoint: Option<String>,
    /// Most spans waiting for the collector; past it new spans are dropped and counted.
    #[arg(long, env = "KALGUARD_OTEL_QUEUE_SPANS", default_value_t = 8_192)]
    pub otel_queue_spans: usize,
}

/// Where the API listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    Tcp(SocketAddr),
    /// A Unix socket: in a pod, in a volume only the proxy and the control
    /// plane mount, so no other container can reach the channel at all.
    Unix(PathBuf),
}

/// Why a `--listen` value is not an address.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ListenError {
    #[error("`unix:` needs a socket path, e.g. unix:/run/kalguard/control-plane.sock")]
    NoSocketPath,
    #[error("{text:?} is neither host:port nor unix:/path ({source})")]
    Neither {
        text: String,
        source: std::net::AddrParseError,
    },
}

impl FromStr for Listen {
    type Err = ListenError;

    fn from_str(text: &str) -> Result<Self, ListenError> {
        match text.strip_prefix("unix:") {
            Some("") => Err(ListenError::NoSocketPath),
            Some(path) => Ok(Self::Unix(PathBuf::from(path))),
            None => text
                .parse()
                .map(Self::Tcp)
                .map_err(|source| ListenError::Neither {
                    text: text.to_owned(),
                    source,
                }),
        }
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(addr) => write!(f, "http://{addr}"),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Secrets and tokens come from the environment only (never flags: `ps` shows flags).
pub struct Secrets {
    pub api_key: Option<String>,
    pub token_secret: Option<String>,
    pub agent_token: Option<String>,
    /// `KALGUARD_OTEL_HEADERS`: `name=value,…` sent to the OTLP collector
    /// (its authentication).
    pub otel_headers: Option<String>,
    /// `KALGUARD_CHANNEL_KEY`, shared with the filter ([`kalguard_wire::channel`]).
    pub channel_key: Result<ChannelKey, KeyError>,
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
            otel_headers: get("KALGUARD_OTEL_HEADERS"),
            channel_key: ChannelKey::parse(get(kalguard_wire::channel::ENV_VAR).as_deref()),
        }
    }

    /// The channel key, or why `serve` cannot start without it: in Cloud mode
    /// the snapshot carries the organisation's signing secret, in local mode
    /// the operator's; either way only the filter may read it.
    pub fn require_channel_key(&self) -> Result<ChannelKey, NoChannelKey> {
        let mode = if self.api_key.is_some() {
            "Cloud mode (KALGUARD_API_KEY is set)"
        } else {
            "local mode"
        };
        self.channel_key
            .clone()
            .map_err(|error| NoChannelKey { mode, error })
    }
}

/// `serve` refuses to start without a usable channel key. The message names
/// the variable and how to make a key, never a key.
#[derive(Debug, thiserror::Error)]
#[error("refusing to start in {mode}: {error}. Without it anyone who can reach the control plane's address could read the token signing secret and forge state and events")]
pub struct NoChannelKey {
    mode: &'static str,
    error: KeyError,
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
    fn listen_takes_an_address_or_a_unix_socket() {
        assert_eq!(
            "127.0.0.1:9292".parse(),
            Ok(Listen::Tcp(SocketAddr::from(([127, 0, 0, 1], 9292))))
        );
        assert_eq!(
            "unix:/run/kalguard/cp.sock".parse(),
            Ok(Listen::Unix(PathBuf::from("/run/kalguard/cp.sock")))
        );
        assert!("unix:"
            .parse::<Listen>()
            .unwrap_err()
            .to_string()
            .contains("socket path"));
        assert!("localhost"
            .parse::<Listen>()
            .unwrap_err()
            .to_string()
            .contains("unix:/path"));
    }

    fn secrets(api_key: Option<&str>, channel_key: Option<&str>) -> Secrets {
        Secrets {
            api_key: api_key.map(str::to_owned),
            token_secret: None,
            agent_token: None,
            otel_headers: None,
            channel_key: ChannelKey::parse(channel_key),
        }
    }

    #[test]
    fn no_mode_starts_without_a_channel_key_and_the_message_says_how_to_set_one() {
        for (api_key, mode) in [(Some("kg_test_x"), "Cloud mode"), (None, "local mode")] {
            for channel_key in [None, Some("short")] {
                let message = secrets(api_key, channel_key)
                    .require_channel_key()
                    .unwrap_err()
                    .to_string();
                assert!(message.contains(mode), "{message}");
                assert!(message.contains("KALGUARD_CHANNEL_KEY"), "{message}");
                assert!(message.contains("openssl rand -hex 32"), "{message}");
            }
        }
        let key = "k".repeat(32);
        assert!(secrets(Some("kg_test_x"), Some(&key))
            .require_channel_key()
            .is_ok());
    }

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
