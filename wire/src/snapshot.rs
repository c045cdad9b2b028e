//! The state snapshot the control plane publishes and the filter long-polls
//! (`GET /v1/filter/state`, answered over the authenticated channel,
//! [`crate::channel`]): the mode, the plan and its limits, the credentials and
//! the operator's policy. The control plane writes every field (absent values
//! as `null`); the filter reads a missing field as its default, and refuses a
//! document that is not a snapshot (the state in force stays).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cloud::Limits;

/// Where the state in force comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// No API key: the operator's configuration only.
    Local,
    /// A valid KalGuard Cloud license is in force.
    Cloud,
    /// An API key is set but no license is in force (Cloud unreachable, key
    /// refused, license expired): no plan limits, local enforcement unchanged.
    Degraded,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Cloud => "cloud",
            Self::Degraded => "degraded",
        }
    }
}

/// The snapshot as it travels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// Counts up within one epoch (unix milliseconds, at least one above the
    /// previous version).
    pub version: u64,
    /// The control-plane process that made it: the filter adopts a new
    /// epoch's snapshot whatever its version.
    #[serde(default)]
    pub epoch: String,
    pub mode: Mode,
    /// The license's tier (Cloud mode).
    #[serde(default)]
    pub plan: Option<String>,
    #[serde(default)]
    pub limits: Limits,
    /// Checks the organisation has left today (Cloud mode; -1 unlimited).
    #[serde(default)]
    pub remaining: Option<i64>,
    /// Unix seconds of the next reset.
    #[serde(default)]
    pub reset_at: Option<u64>,
    /// Checks of this sidecar that `remaining` already counts (the control
    /// plane's reports the Cloud accepted for the day before `resetAt`).
    #[serde(default)]
    pub checks_reported: u64,
    /// The organisation's agents with a check on the day before `resetAt`
    /// (plans that limit agents).
    #[serde(default)]
    pub agents_today: Option<Vec<String>>,
    /// Every valid token-signing secret, current first.
    #[serde(default)]
    pub signing_secrets: Vec<String>,
    /// SHA-256 hex of revoked tokens.
    #[serde(default)]
    pub revoked_token_hashes: Vec<String>,
    /// The token used for requests that carry none (`KALGUARD_AGENT_TOKEN`).
    #[serde(default)]
    pub default_agent_token: Option<String>,
    /// The operator's policy document ([`crate::policy`]), validated by the
    /// control plane and again by the filter.
    #[serde(default)]
    pub policy: Option<Value>,
    /// Firewall overrides: reserved by the original KalGuard contract, always
    /// written as `null` and never read (the filter's firewall settings are
    /// its plugin configuration's).
    #[serde(skip_deserializing)]
    pub firewall: Option<Value>,
}

impl Snapshot {
    /// Parses a snapshot; `None` for anything that is not one.
    pub fn parse(json: &[u8]) -> Option<Snapshot> {
        serde_json::from_slice(json).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::golden::assert_round_trip;

    #[test]
    fn golden_cloud_snapshot() {
        let snapshot: Snapshot = assert_round_trip(
            r#"{"version":1714694400123,"epoch":"9f86d081884c7d659a2feaa0c55ad015","mode":"cloud","plan":"pro",
                "limits":{"checksPerDay":100000,"maxAgents":5,"auditRetentionDays":90,"features":["firewall:advanced","policy:custom"]},
                "remaining":99990,"resetAt":1714694400,"checksReported":3,"agentsToday":["a1","a2"],
                "signingSecrets":["new","old"],"revokedTokenHashes":["abcdef"],"defaultAgentToken":null,
                "policy":{"rules":[],"defaultDecision":"deny"},"firewall":null}"#,
        );
        assert_eq!(snapshot.version, 1_714_694_400_123);
        assert_eq!(snapshot.epoch, "9f86d081884c7d659a2feaa0c55ad015");
        assert_eq!(snapshot.mode, Mode::Cloud);
        assert_eq!(snapshot.plan.as_deref(), Some("pro"));
        assert_eq!(snapshot.limits.checks_per_day, 100_000);
        assert_eq!(snapshot.limits.max_agents, 5);
        assert_eq!(snapshot.limits.audit_retention_days, 90);
        assert!(snapshot.limits.custom_policy());
        assert_eq!(snapshot.remaining, Some(99_990));
        assert_eq!(snapshot.reset_at, Some(1_714_694_400));
        assert_eq!(snapshot.checks_reported, 3);
        assert_eq!(snapshot.agents_today.as_ref().map(Vec::len), Some(2));
        assert_eq!(snapshot.signing_secrets, ["new", "old"]);
        assert_eq!(snapshot.revoked_token_hashes, ["abcdef"]);
        assert_eq!(snapshot.default_agent_token, None);
        assert_eq!(snapshot.policy.unwrap()["defaultDecision"], "deny");
        assert_eq!(snapshot.firewall, None);
    }

    #[test]
    fn golden_local_snapshot() {
        let snapshot: Snapshot = assert_round_trip(
            r#"{"version":7,"epoch":"e1","mode":"local","plan":null,
                "limits":{"checksPerDay":-1,"maxAgents":-1,"auditRetentionDays":-1,"features":[]},
                "remaining":null,"resetAt":null,"checksReported":0,"agentsToday":null,
                "signingSecrets":["local-secret"],"revokedTokenHashes":[],"defaultAgentToken":"tok",
                "policy":null,"firewall":null}"#,
        );
        assert_eq!(snapshot.mode, Mode::Local);
        assert_eq!(snapshot.limits, Limits::unlimited(-1));
        assert_eq!(snapshot.default_agent_token.as_deref(), Some("tok"));
    }

    #[test]
    fn missing_fields_read_as_defaults() {
        let bare = Snapshot::parse(br#"{"version":1,"mode":"degraded"}"#).unwrap();
        assert_eq!(bare.epoch, "");
        assert_eq!(bare.limits, Limits::default());
        assert!(bare.signing_secrets.is_empty() && bare.policy.is_none());
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
