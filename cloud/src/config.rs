//! Server configuration: command-line flags, each with an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything `kalguard-cloud serve` needs; also built directly by tests.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Address the API and dashboard listen on.
    #[arg(long, env = "KALGUARD_CLOUD_ADDR", default_value = "127.0.0.1:9393")]
    pub addr: SocketAddr,

    /// Public base URL of this Cloud, used in links (Stripe return URLs).
    #[arg(
        long,
        env = "KALGUARD_CLOUD_PUBLIC_URL",
        default_value = "http://127.0.0.1:9393"
    )]
    pub public_url: String,

    /// Proxies (addresses or CIDR ranges, comma separated) whose `X-Forwarded-For`
    /// names the client, e.g. `10.0.0.0/8,::1`. Empty: the peer address is the
    /// client, and the header is ignored.
    #[arg(
        long,
        env = "KALGUARD_CLOUD_TRUSTED_PROXIES",
        value_delimiter = ',',
        num_args = 0..
    )]
    pub trusted_proxies: Vec<crate::net::Cidr>,

    /// Send cookies with `Secure` (implied when `--public-url` is https).
    #[arg(long, env = "KALGUARD_CLOUD_SECURE_COOKIES", default_value_t = false)]
    pub secure_cookies: bool,

    /// A dashboard session ends after this long without a request, seconds.
    #[arg(
        long,
        env = "KALGUARD_CLOUD_SESSION_IDLE_SECS",
        default_value_t = 1_800
    )]
    pub session_idle_secs: i64,

    /// How long a license answer stays valid at the sidecar (`expiresAt`), seconds.
    #[arg(
        long,
        env = "KALGUARD_CLOUD_LICENSE_TTL_SECS",
        default_value_t = 86_400
    )]
    pub license_ttl_secs: i64,

    /// How long `GET /api/v1/license/watch` holds a request open before answering
    /// "no change", seconds (below the idle timeout of any proxy in front).
    #[arg(
        long,
        env = "KALGUARD_CLOUD_LICENSE_WATCH_SECS",
        default_value_t = 25,
        value_parser = clap::value_parser!(u64).range(1..=300)
    )]
    pub license_watch_secs: u64,

    /// How often alert rules are evaluated and due alert webhooks sent, seconds.
    #[arg(
        long,
        env = "KALGUARD_CLOUD_ALERT_INTERVAL_SECS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub alert_interval_secs: u64,

    /// Let alert webhooks target loopback, private and link-local addresses (a
    /// receiver inside the operator's own network).
    #[arg(
        long,
        env = "KALGUARD_CLOUD_ALERT_ALLOW_PRIVATE_TARGETS",
        default_value_t = false
    )]
    pub alert_allow_private_targets: bool,

    /// How long the previous token-signing secret stays in the license after a
    /// rotation: at least one sidecar sync interval (the maximum is 10 min).
    #[arg(long, env = "KALGUARD_CLOUD_SECRET_GRACE_SECS", default_value_t = 600)]
    pub secret_grace_secs: i64,

    /// How long the old API key keeps working after "rotate", seconds.
    #[arg(
        long,
        env = "KALGUARD_CLOUD_KEY_ROTATION_GRACE_SECS",
        default_value_t = 86_400
    )]
    pub key_rotation_grace_secs: i64,

    /// How often expired audit events are purged, seconds.
    #[arg(
        long,
        env = "KALGUARD_CLOUD_PURGE_INTERVAL_SECS",
        default_value_t = 3_600
    )]
    pub purge_interval_secs: u64,

    /// argon2id memory cost for new password hashes, KiB (OWASP: 19456).
    #[arg(
        long,
        env = "KALGUARD_CLOUD_ARGON2_MEMORY_KIB",
        default_value_t = 19_456
    )]
    pub argon2_memory_kib: u32,

    /// Stripe API secret key (`sk_…`): enables Checkout and the Billing Portal.
    #[arg(long, env = "STRIPE_SECRET_KEY", hide_env_values = true)]
    pub stripe_secret_key: Option<String>,

    /// Stripe API base URL (a stand-in in tests).
    #[arg(
        long,
        env = "KALGUARD_CLOUD_STRIPE_API_BASE",
        default_value = "https://api.stripe.com"
    )]
    pub stripe_api_base: String,

    /// Stripe webhook signing secret (`whsec_…`); webhooks are refused without it.
    #[arg(long, env = "STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    pub stripe_webhook_secret: Option<String>,

    /// Stripe price IDs mapped to plans: `price_abc=pro,price_def=enterprise`.
    #[arg(long, env = "KALGUARD_CLOUD_STRIPE_PRICES", default_value = "")]
    pub stripe_prices: String,
}

impl Config {
    /// A configuration for tests and tools: defaults, loopback, no Stripe.
    pub fn for_tests() -> Config {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: "http://127.0.0.1:9393".to_string(),
            trusted_proxies: Vec::new(),
            secure_cookies: false,
            session_idle_secs: 1_800,
            license_ttl_secs: 86_400,
            license_watch_secs: 25,
            alert_interval_secs: 30,
            alert_allow_private_targets: false,
            secret_grace_secs: 600,
            key_rotation_grace_secs: 86_400,
            purge_interval_secs: 3_600,
            argon2_memory_kib: 256,
            stripe_secret_key: None,
            stripe_api_base: "https://api.stripe.com".to_string(),
            stripe_webhook_secret: None,
            stripe_prices: String::new(),
        }
    }
}

/// Where the database lives: `KALGUARD_CLOUD_DATABASE_URL`, else SQLite in the data dir.
#[derive(Clone, Debug, clap::Args)]
pub struct DatabaseArgs {
    /// `sqlite://path` or `postgres://user:pass@host/db`.
    #[arg(
        long,
        global = true,
        env = "KALGUARD_CLOUD_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Data directory; the default SQLite file is `cloud.db` inside it.
    #[arg(
        long,
        global = true,
        env = "KALGUARD_DATA_DIR",
        default_value = "./.kalguard"
    )]
    pub data_dir: PathBuf,
}

impl DatabaseArgs {
    /// The URL to connect to, creating the data dir when SQLite is the default.
    pub fn url(&self) -> std::io::Result<String> {
        match &self.database_url {
            Some(url) => Ok(url.clone()),
            None => {
                std::fs::create_dir_all(&self.data_dir)?;
                Ok(format!(
                    "sqlite://{}?mode=rwc",
                    self.data_dir.join("cloud.db").display()
                ))
            }
        }
    }
}

impl Config {
    /// Cookies carry `Secure` when asked, or when the dashboard's public address is
    /// HTTPS (a browser would then never send them over plain HTTP).
    pub fn cookies_secure(&self) -> bool {
        self.secure_cookies
            || self
                .public_url
                .get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    }
}
