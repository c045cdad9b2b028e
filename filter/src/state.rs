//! The state snapshot the control plane publishes (DESIGN.md, "Filter ↔
//! control plane"), and what the guard takes from it.
//!
//! The sync-lease holder stores the snapshot's JSON in shared data; every worker
//! VM parses it once per version into a [`State`]. A snapshot that does not
//! parse is ignored (the state in force stays): a bad push never opens the door.

use serde::Deserialize;
use std::collections::HashSet;

use crate::firewall::Tier;
use crate::guard::Credentials;

/// Where the state in force came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// No API key: the operator's configuration only.
    Local,
    /// A valid KalGuard Cloud license.
    Cloud,
    /// The Cloud was unreachable at start: no plan limits, local enforcement.
    Degraded,
}

/// Plan limits from the license.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Limits {
    /// -1 means unlimited.
    pub checks_per_day: i64,
    pub max_agents: i64,
    pub audit_retention_days: i64,
    pub features: Vec<String>,
}

/// The snapshot as it travels.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub version: u64,
    pub mode: Mode,
    #[serde(default)]
    pub plan: Option<String>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub remaining: Option<i64>,
    #[serde(default)]
    pub reset_at: Option<u64>,
    #[serde(default)]
    pub signing_secrets: Vec<String>,
    #[serde(default)]
    pub revoked_token_hashes: Vec<String>,
    #[serde(default)]
    pub default_agent_token: Option<String>,
}

/// What the guard enforces from a snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct State {
    pub version: u64,
    pub mode: Mode,
    pub plan: Option<String>,
    pub credentials: Credentials,
    /// The firewall tier the plan's features select (`None` in local mode: the
    /// plugin configuration decides).
    pub tier: Option<Tier>,
}

impl Snapshot {
    /// Parses a snapshot; `None` for anything that is not one.
    pub fn parse(json: &[u8]) -> Option<Snapshot> {
        serde_json::from_slice(json).ok()
    }

    /// The state to enforce; `local` is what the VM's own environment gives,
    /// used where the snapshot says nothing (e.g. a local-mode control plane
    /// started without a secret).
    pub fn into_state(self, local: &Credentials) -> State {
        let tier = match self.mode {
            Mode::Cloud => Some(Tier::from_features(&self.limits.features)),
            Mode::Local | Mode::Degraded => None,
        };
        let signing_secrets: Vec<String> = self
            .signing_secrets
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        let credentials = Credentials {
            signing_secrets: if signing_secrets.is_empty() && self.mode != Mode::Cloud {
                local.signing_secrets.clone()
            } else {
                signing_secrets
            },
            revoked_token_hashes: self
                .revoked_token_hashes
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect::<HashSet<_>>(),
            default_agent_token: self
                .default_agent_token
                .filter(|t| !t.is_empty())
                .or_else(|| local.default_agent_token.clone()),
        };
        State {
            version: self.version,
            mode: self.mode,
            plan: self.plan,
            credentials,
            tier,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> Credentials {
        Credentials {
            signing_secrets: vec!["env-secret".into()],
            revoked_token_hashes: HashSet::new(),
            default_agent_token: Some("env-token".into()),
        }
    }

    #[test]
    fn cloud_snapshot_replaces_local_credentials() {
        let json = br#"{"version":7,"mode":"cloud","plan":"pro",
            "limits":{"checksPerDay":100000,"maxAgents":-1,"auditRetentionDays":90,"features":["firewall:advanced","pii:redact"]},
            "remaining":99990,"resetAt":1714694400,"signingSecrets":["new","old"],
            "revokedTokenHashes":["ABCDEF"],"defaultAgentToken":null,"policy":null,"firewall":null}"#;
        let state = Snapshot::parse(json).unwrap().into_state(&local());
        assert_eq!(state.version, 7);
        assert_eq!(state.mode, Mode::Cloud);
        assert_eq!(state.plan.as_deref(), Some("pro"));
        assert_eq!(state.credentials.signing_secrets, ["new", "old"]);
        assert!(state.credentials.revoked_token_hashes.contains("abcdef"));
        assert_eq!(
            state.credentials.default_agent_token.as_deref(),
            Some("env-token")
        );
        assert_eq!(state.tier, Some(Tier::Advanced));
    }

    #[test]
    fn cloud_without_a_secret_trusts_nothing_local() {
        let json = br#"{"version":2,"mode":"cloud","plan":"free","limits":{"features":[]},"signingSecrets":[]}"#;
        let state = Snapshot::parse(json).unwrap().into_state(&local());
        assert!(state.credentials.signing_secrets.is_empty());
        assert_eq!(state.tier, Some(Tier::Basic));
    }

    #[test]
    fn local_snapshot_falls_back_to_the_environment() {
        let json =
            br#"{"version":1,"mode":"local","signingSecrets":[],"defaultAgentToken":"cp-token"}"#;
        let state = Snapshot::parse(json).unwrap().into_state(&local());
        assert_eq!(state.credentials.signing_secrets, ["env-secret"]);
        assert_eq!(
            state.credentials.default_agent_token.as_deref(),
            Some("cp-token")
        );
        assert_eq!(state.tier, None);
    }

    #[test]
    fn garbage_is_not_a_snapshot() {
        for json in [
            &b""[..],
            b"{}",
            b"[]",
            br#"{"version":"x","mode":"cloud"}"#,
            br#"{"version":1,"mode":"open"}"#,
        ] {
            assert!(
                Snapshot::parse(json).is_none(),
                "{:?}",
                String::from_utf8_lossy(json)
            );
        }
    }
}
