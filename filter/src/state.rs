//! What the guard takes from the state snapshot the control plane publishes
//! (the snapshot itself is a wire contract: [`crate::snapshot`]).
//!
//! The sync-lease holder stores the snapshot's JSON in shared data; every worker
//! VM parses it once per version into a [`State`]. A snapshot that does not
//! parse is ignored (the state in force stays): a bad push never opens the door.
//! Nor does a snapshot whose policy does not validate: the previous policy
//! stays in force ([`State::inherit_policy`]).

use std::collections::HashSet;
use std::sync::Arc;

use crate::firewall::Tier;
use crate::guard::Credentials;
use crate::policy::{Policy, PolicyError};
use crate::quota::{self, day_of, CloudUsage, OrgAgents};

pub use crate::cloud::CUSTOM_POLICY_FEATURE;
pub use crate::snapshot::{Mode, Snapshot};

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
    /// The license's limits (Cloud mode).
    pub limits: quota::Limits,
    /// The organisation's standing at the Cloud (Cloud mode, limited plans).
    pub cloud_usage: Option<CloudUsage>,
    /// The organisation's agents today (Cloud mode, plans that limit agents).
    pub org_agents: Option<OrgAgents>,
    /// The snapshot's policy; `None` when it sends none (the plugin
    /// configuration's applies).
    pub policy: Option<Arc<Policy>>,
    /// Why the snapshot's policy was refused, if it was.
    pub policy_error: Option<PolicyError>,
    /// Whether custom policy rules are enforced: always in local and degraded
    /// modes, in Cloud mode only when the plan has `policy:custom`.
    pub custom_policy: bool,
}

impl State {
    /// The plan limits to enforce: the license's in Cloud mode, the
    /// operator's (`local`, from the plugin configuration) in local mode, none
    /// in degraded mode (the Cloud cannot be asked what the plan allows).
    pub fn limits(&self, local: &quota::Limits) -> quota::Limits {
        match self.mode {
            Mode::Cloud => self.limits,
            Mode::Local => *local,
            Mode::Degraded => quota::Limits::default(),
        }
    }

    /// The plan named in responses' `x-kalguard-plan`: Cloud mode only.
    pub fn cloud_plan(&self) -> Option<&str> {
        match self.mode {
            Mode::Cloud => Some(self.plan.as_deref().unwrap_or("unknown")),
            Mode::Local | Mode::Degraded => None,
        }
    }
}

// The snapshot is a wire contract (`crate::snapshot`), compiled into this
// crate: the filter gives it the method that turns it into what it enforces.
impl Snapshot {
    /// The state to enforce; `local` is what the VM's own environment gives,
    /// used where the snapshot says nothing (e.g. a local-mode control plane
    /// started without a secret).
    pub fn into_state(self, local: &Credentials) -> State {
        let tier = match self.mode {
            Mode::Cloud => Some(Tier::from_features(&self.limits.features)),
            Mode::Local | Mode::Degraded => None,
        };
        let custom_policy = self.mode != Mode::Cloud || self.limits.custom_policy();
        let (policy, policy_error) = match self.policy.as_ref().map(Policy::from_value) {
            None => (None, None),
            Some(Ok(policy)) => (Some(Arc::new(policy)), None),
            Some(Err(error)) => (None, Some(error)),
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
            verified: Default::default(),
        };
        // The UTC day the Cloud's figures are about: the one `resetAt` ends.
        let day = self
            .reset_at
            .map(|reset_at| day_of(i64::try_from(reset_at).unwrap_or(i64::MAX) - 1));
        let org_agents = match (self.mode, day, self.agents_today) {
            (Mode::Cloud, Some(day), Some(agents)) => Some(OrgAgents { day, agents }),
            _ => None,
        };
        let cloud_usage = match (self.mode, self.remaining, day) {
            (Mode::Cloud, Some(remaining), Some(day)) => {
                u64::try_from(remaining).ok().map(|remaining| CloudUsage {
                    remaining,
                    day,
                    reported: self.checks_reported,
                })
            }
            _ => None,
        };
        State {
            version: self.version,
            mode: self.mode,
            plan: self.plan,
            credentials,
            tier,
            limits: quota::Limits::from_plan(self.limits.checks_per_day, self.limits.max_agents),
            cloud_usage,
            org_agents,
            policy,
            policy_error,
            custom_policy,
        }
    }
}

impl State {
    /// When this snapshot's policy did not validate, keeps the policy of the
    /// state it replaces; with none to keep, refuses everything rather than
    /// enforce no policy at all (the operator meant to send one).
    pub fn inherit_policy(&mut self, previous: Option<&State>) {
        let Some(error) = &self.policy_error else {
            return;
        };
        self.policy = match previous.and_then(|p| p.policy.clone()) {
            Some(policy) => Some(policy),
            None => Some(Arc::new(Policy::deny_all(format!(
                "the policy in force is invalid ({error}); fix it to restore service"
            )))),
        };
    }

    /// The policy to enforce: the snapshot's, else the plugin configuration's
    /// (`configured`); none in Cloud mode without `policy:custom`.
    pub fn policy_in_force(&self, configured: Option<&Arc<Policy>>) -> Option<Arc<Policy>> {
        if !self.custom_policy {
            return None;
        }
        self.policy.clone().or_else(|| configured.cloned())
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
            ..Credentials::default()
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
        assert_eq!(state.cloud_plan(), Some("pro"));
        let operator = quota::Limits {
            checks_per_day: Some(5),
            max_agents: Some(5),
        };
        assert_eq!(
            state.limits(&operator),
            quota::Limits {
                checks_per_day: Some(100_000),
                max_agents: None
            }
        );
        assert_eq!(
            state.cloud_usage,
            Some(CloudUsage {
                remaining: 99_990,
                day: day_of(1_714_694_400 - 1),
                reported: 0
            })
        );
    }

    #[test]
    fn the_epoch_is_read_and_defaults_to_empty() {
        let with = br#"{"version":1,"epoch":"9f86d081","mode":"local"}"#;
        assert_eq!(Snapshot::parse(with).unwrap().epoch, "9f86d081");
        let without = br#"{"version":1,"mode":"local"}"#;
        assert_eq!(Snapshot::parse(without).unwrap().epoch, "");
    }

    #[test]
    fn plan_limits_by_mode() {
        let operator = quota::Limits {
            checks_per_day: Some(5),
            max_agents: None,
        };
        let json = br#"{"version":1,"mode":"local","limits":{"checksPerDay":1}}"#;
        let state = Snapshot::parse(json).unwrap().into_state(&local());
        assert_eq!(state.limits(&operator), operator, "local: the operator's");
        assert_eq!(state.cloud_plan(), None);
        let degraded = br#"{"version":1,"mode":"degraded","limits":{"checksPerDay":1}}"#;
        let state = Snapshot::parse(degraded).unwrap().into_state(&local());
        assert_eq!(
            state.limits(&operator),
            quota::Limits::default(),
            "degraded: none"
        );
        let unlimited = br#"{"version":1,"mode":"cloud","plan":"enterprise","limits":{"checksPerDay":-1,"maxAgents":-1},
            "remaining":-1,"resetAt":1714694400,"checksReported":3}"#;
        let state = Snapshot::parse(unlimited).unwrap().into_state(&local());
        assert_eq!(state.limits(&operator), quota::Limits::default());
        assert_eq!(state.cloud_usage, None);
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

    fn with_policy(json: &str, previous: Option<&State>) -> State {
        let mut state = Snapshot::parse(json.as_bytes())
            .unwrap()
            .into_state(&local());
        state.inherit_policy(previous);
        state
    }

    const POLICY: &str = r#"{"rules":[{"id":"r","match":{"models":["gpt-*"]},"decision":"allow"}],"defaultDecision":"deny"}"#;

    #[test]
    fn the_snapshot_policy_replaces_the_configured_one() {
        let configured = Arc::new(
            Policy::from_value(&serde_json::json!({"rules":[],"defaultDecision":"deny"})).unwrap(),
        );
        let none = with_policy(r#"{"version":1,"mode":"local"}"#, None);
        assert_eq!(
            none.policy_in_force(Some(&configured)),
            Some(configured.clone())
        );
        let pushed = with_policy(
            &format!(r#"{{"version":2,"mode":"local","policy":{POLICY}}}"#),
            None,
        );
        assert_eq!(
            pushed
                .policy_in_force(Some(&configured))
                .unwrap()
                .rule_count(),
            1
        );
        assert!(pushed.policy_error.is_none());
    }

    #[test]
    fn an_invalid_pushed_policy_keeps_the_previous_one_or_closes() {
        let good = with_policy(
            &format!(r#"{{"version":2,"mode":"local","policy":{POLICY}}}"#),
            None,
        );
        let bad = r#"{"version":3,"mode":"local","policy":{"rules":[{"id":"r","match":{"modelz":["x"]},"decision":"allow"}],"defaultDecision":"deny"}}"#;
        let kept = with_policy(bad, Some(&good));
        assert!(kept
            .policy_error
            .as_ref()
            .unwrap()
            .field
            .ends_with("match.modelz"));
        assert_eq!(kept.policy, good.policy);
        let again = with_policy(bad, Some(&kept));
        assert_eq!(again.policy, good.policy);
        let closed = with_policy(bad, None).policy.unwrap();
        assert_eq!(closed.rule_count(), 0);
        let facts = crate::policy::Facts {
            agent_id: "a",
            action: crate::policy::Action::PromptCheck,
            model: Some("gpt-4o"),
            route: None,
            tool: None,
            capabilities: &[],
            resource: None,
            attributes: None,
            now: 0,
        };
        assert!(closed.refusal(&facts).is_some());
    }

    #[test]
    fn cloud_mode_enforces_custom_rules_only_with_the_feature() {
        let configured = Arc::new(
            Policy::from_value(&serde_json::json!({"rules":[],"defaultDecision":"deny"})).unwrap(),
        );
        let free = with_policy(
            &format!(
                r#"{{"version":2,"mode":"cloud","limits":{{"features":["firewall:basic"]}},"policy":{POLICY}}}"#
            ),
            None,
        );
        assert!(!free.custom_policy);
        assert_eq!(free.policy_in_force(Some(&configured)), None);
        let pro = with_policy(
            &format!(
                r#"{{"version":2,"mode":"cloud","limits":{{"features":["firewall:advanced","pii:redact","policy:custom"]}},"policy":{POLICY}}}"#
            ),
            None,
        );
        assert_eq!(
            pro.policy_in_force(Some(&configured)).unwrap().rule_count(),
            1
        );
        let degraded = with_policy(r#"{"version":2,"mode":"degraded"}"#, None);
        assert_eq!(
            degraded.policy_in_force(Some(&configured)),
            Some(configured)
        );
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
