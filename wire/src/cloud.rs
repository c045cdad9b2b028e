//! The Cloud's sidecar API: `POST /api/v1/license/validate` answers a
//! [`LicenseAnswer`]; `POST /api/v1/usage/report` takes a [`UsageReport`] and
//! answers a [`UsageAnswer`]. The plan [`Limits`] a license grants travel on to
//! the filter in the state snapshot ([`crate::snapshot`]).
//!
//! Instants the original KalGuard Cloud wrote as RFC 3339 text and this one
//! may write as unix seconds (`expiresAt`, `resetAt`) stay JSON values here:
//! the reader accepts either form.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::event::UsageEvent;

/// The plan feature that lets the operator's own policy rules be enforced in
/// Cloud mode.
pub const CUSTOM_POLICY_FEATURE: &str = "policy:custom";

/// Plan limits, as the license, the control plane and the snapshot spell them.
/// The Cloud and the control plane always write every figure. The filter takes
/// a missing one in a snapshot as 0 (no checks, no agents: closed, never open);
/// the control plane refuses a license without every figure
/// ([`LicenseAnswer::limits`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Limits {
    /// Inspected requests per UTC day; -1 is unlimited.
    pub checks_per_day: i64,
    /// Distinct agents per UTC day; -1 is unlimited.
    pub max_agents: i64,
    /// -1 means keep forever.
    pub audit_retention_days: i64,
    /// Feature flags the filter reads (`firewall:advanced`, `pii:redact` select
    /// the advanced firewall; [`CUSTOM_POLICY_FEATURE`] allows custom rules).
    pub features: Vec<String>,
}

impl Limits {
    /// No plan limits (local and degraded modes); retention as configured.
    pub fn unlimited(audit_retention_days: i64) -> Self {
        Self {
            checks_per_day: -1,
            max_agents: -1,
            audit_retention_days,
            features: Vec::new(),
        }
    }

    /// Whether the plan enforces the operator's custom policy rules.
    pub fn custom_policy(&self) -> bool {
        self.features.iter().any(|f| f == CUSTOM_POLICY_FEATURE)
    }
}

/// The Cloud's answer to `POST /api/v1/license/validate`. Every field but
/// `valid` may be missing from a `valid: false` answer (then `message` says why).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseAnswer {
    pub valid: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    /// Read with every figure required: a retention read as 0 would empty
    /// the control plane's audit log.
    #[serde(
        default,
        deserialize_with = "every_figure",
        skip_serializing_if = "Option::is_none"
    )]
    pub limits: Option<Limits>,
    /// The license is in force until then: RFC 3339 text or unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Value>,
    /// The current token-signing secret (the original KalGuard's one secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_signing_secret: Option<String>,
    /// Every secret currently valid, newest first (rotation).
    #[serde(default)]
    pub token_signing_secrets: Vec<String>,
    /// SHA-256 hex of every revoked, unexpired token ([`crate::token::token_hash`]).
    #[serde(default)]
    pub revoked_token_hashes: Vec<String>,
    /// Checks the organisation has left today; -1 when unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<i64>,
    /// When `remaining` resets: unix seconds or RFC 3339 text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_at: Option<Value>,
    /// The organisation's agents with a check today, when the plan limits agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents_today: Option<Vec<String>>,
    /// Why a license is not valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Reads a license's limits, refusing them without every figure.
fn every_figure<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Limits>, D::Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Stated {
        checks_per_day: i64,
        max_agents: i64,
        audit_retention_days: i64,
        #[serde(default)]
        features: Vec<String>,
    }
    Ok(
        Option::<Stated>::deserialize(deserializer)?.map(|stated| Limits {
            checks_per_day: stated.checks_per_day,
            max_agents: stated.max_agents,
            audit_retention_days: stated.audit_retention_days,
            features: stated.features,
        }),
    )
}

/// `POST /api/v1/usage/report` as the control plane sends it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageReport {
    /// Unique per batch: a retried batch is counted once.
    pub batch_id: String,
    pub events: Vec<UsageEvent>,
}

/// The Cloud's answer to a usage report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageAnswer {
    /// Events recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<i64>,
    /// Checks newly counted against today's quota (0 for a retried batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted: Option<i64>,
    /// As in the license.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<i64>,
    /// As in the license.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_at: Option<Value>,
    /// The organisation's plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// As in the license.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents_today: Option<Vec<String>>,
}

/// `GET /api/v1/license/watch?version=N`: the organisation's license version, answered
/// when it differs from `N` or when the Cloud's hold ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchAnswer {
    pub version: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Decision, EventType};
    use crate::golden::assert_round_trip;

    #[test]
    fn golden_license_answer() {
        let answer: LicenseAnswer = assert_round_trip(
            r#"{"valid":true,"tier":"pro","orgId":"org_1",
                "limits":{"checksPerDay":100000,"maxAgents":-1,"auditRetentionDays":90,"features":["firewall:advanced","pii:redact","policy:custom"]},
                "expiresAt":"2030-01-01T00:00:00Z","tokenSigningSecret":"s2","tokenSigningSecrets":["s2","s1"],
                "revokedTokenHashes":["ab"],"remaining":5,"resetAt":1714694400,"agentsToday":["a1"]}"#,
        );
        assert!(answer.valid);
        assert_eq!(answer.tier.as_deref(), Some("pro"));
        assert_eq!(answer.org_id.as_deref(), Some("org_1"));
        let limits = answer.limits.as_ref().unwrap();
        assert_eq!(
            (
                limits.checks_per_day,
                limits.max_agents,
                limits.audit_retention_days
            ),
            (100_000, -1, 90)
        );
        assert!(limits.custom_policy());
        assert_eq!(answer.expires_at, Some(Value::from("2030-01-01T00:00:00Z")));
        assert_eq!(answer.token_signing_secret.as_deref(), Some("s2"));
        assert_eq!(answer.token_signing_secrets, ["s2", "s1"]);
        assert_eq!(answer.revoked_token_hashes, ["ab"]);
        assert_eq!(answer.remaining, Some(5));
        assert_eq!(answer.reset_at, Some(Value::from(1_714_694_400)));
        assert_eq!(answer.agents_today.as_deref(), Some(&["a1".to_owned()][..]));
        assert_eq!(answer.message, None);
    }

    #[test]
    fn golden_refused_license_and_original_kalguard_shape() {
        let refused: LicenseAnswer = assert_round_trip(
            r#"{"valid":false,"tokenSigningSecrets":[],"revokedTokenHashes":[],"message":"key revoked"}"#,
        );
        assert!(!refused.valid);
        assert_eq!(refused.message.as_deref(), Some("key revoked"));
        // The original KalGuard Cloud: one secret, no list, no usage figures.
        let original: LicenseAnswer = serde_json::from_str(
            r#"{"valid":true,"tier":"free","orgId":"o","limits":{"checksPerDay":1000,"maxAgents":3,"auditRetentionDays":7},
                "expiresAt":"2030-01-01T00:00:00Z","tokenSigningSecret":"s","revokedTokenHashes":[]}"#,
        )
        .unwrap();
        assert_eq!(original.token_signing_secret.as_deref(), Some("s"));
        assert!(original.token_signing_secrets.is_empty());
        assert!(original.limits.unwrap().features.is_empty());
    }

    #[test]
    fn a_missing_figure_reads_as_zero_in_a_snapshot_and_refuses_a_license() {
        let limits: Limits = serde_json::from_str(r#"{"checksPerDay":1}"#).unwrap();
        assert_eq!(
            (
                limits.checks_per_day,
                limits.max_agents,
                limits.audit_retention_days
            ),
            (1, 0, 0)
        );
        let partial = r#"{"valid":true,"limits":{"checksPerDay":1000,"maxAgents":1}}"#;
        assert!(serde_json::from_str::<LicenseAnswer>(partial).is_err());
        let null = serde_json::from_str::<LicenseAnswer>(r#"{"valid":true,"limits":null}"#);
        assert_eq!(null.unwrap().limits, None);
    }

    #[test]
    fn golden_watch_answer() {
        let answer: WatchAnswer = serde_json::from_str(r#"{"version": 7}"#).unwrap();
        assert_eq!(answer, WatchAnswer { version: 7 });
        assert_eq!(serde_json::to_string(&answer).unwrap(), r#"{"version":7}"#);
    }

    #[test]
    fn golden_usage_report_and_answer() {
        let report: UsageReport = assert_round_trip(
            r#"{"batchId":"cp_1","events":[{"eventType":"prompt_check","agentId":"a1","decision":"allow",
                "timestamp":1714694400123,"requestId":"req_1","metadata":{"latencyMs":3}}]}"#,
        );
        assert_eq!(report.batch_id, "cp_1");
        let event = &report.events[0];
        assert_eq!(event.event_type, EventType::PromptCheck);
        assert_eq!(event.decision, Decision::Allow);
        assert_eq!(event.metadata["latencyMs"].as_u64(), Some(3));
        let answer: UsageAnswer = assert_round_trip(
            r#"{"accepted":1,"counted":1,"remaining":99,"resetAt":1714694400,"tier":"pro","agentsToday":["a1"]}"#,
        );
        assert_eq!(answer.accepted, Some(1));
        assert_eq!(answer.counted, Some(1));
        assert_eq!(answer.remaining, Some(99));
        assert_eq!(answer.reset_at, Some(Value::from(1_714_694_400)));
        assert_eq!(answer.tier.as_deref(), Some("pro"));
        assert_eq!(answer.agents_today.unwrap(), ["a1"]);
        // An empty 2xx answer still reads.
        assert_eq!(
            serde_json::from_str::<UsageAnswer>("{}").unwrap(),
            UsageAnswer::default()
        );
    }
}
