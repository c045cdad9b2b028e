//! Firewall configuration: what the operator (or the plan) may change, and its validation.

use std::fmt;

use serde::Deserialize;

use super::{Source, VerdictCacheConfig};

/// How much of the engine runs on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Injection categories on normalised text (every plan).
    Basic,
    /// Basic, plus decode-and-rescan of hidden payloads, PII and secret detection/redaction.
    Advanced,
}

impl Tier {
    /// The tier a plan's feature flags grant: `firewall:advanced` or `pii:redact` select
    /// [`Tier::Advanced`]; anything else is [`Tier::Basic`]. Unknown flags are ignored.
    pub fn from_features<S: AsRef<str>>(features: &[S]) -> Tier {
        let advanced = features
            .iter()
            .any(|f| matches!(f.as_ref(), "firewall:advanced" | "pii:redact"));
        if advanced {
            Tier::Advanced
        } else {
            Tier::Basic
        }
    }
}

/// What to do when an LLM response carries a secret or PII value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ResponseMode {
    /// Replace each value with a typed placeholder and forward the rest.
    #[default]
    Redact,
    /// Refuse the response (the host layer decides how: non-streaming → 403, streaming →
    /// the stream is cut).
    Block,
    /// Do not scan responses.
    Off,
}

/// Which kinds of sensitive values are looked for (advanced tier).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensitiveKinds {
    /// E-mail, phone, payment card, IBAN, US SSN, IP addresses.
    pub pii: bool,
    /// API keys, private keys, JWTs, credentials assigned to key/secret/password names.
    pub secrets: bool,
}

impl Default for SensitiveKinds {
    fn default() -> Self {
        SensitiveKinds {
            pii: true,
            secrets: true,
        }
    }
}

/// Prompt-firewall settings. Every field has a default, so `{}` is a valid configuration.
///
/// ```json
/// {"tier":"advanced","block_threshold":0.8,"sanitize_threshold":0.5,
///  "scored_sources":["user_message","tool_result","tool_arguments","document"],
///  "redact_requests":true,"response_mode":"redact"}
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FirewallConfig {
    /// `basic` or `advanced` (the default). In Cloud mode the plan's features decide
    /// instead (see [`Tier::from_features`]); without a Cloud license this field is the
    /// choice, and the open-source sidecar runs the whole engine unless told otherwise:
    /// plans shape Cloud mode, not local mode.
    pub tier: Tier,
    /// Score at or above which a request is refused with `PROMPT_BLOCKED` (0.0–1.0).
    pub block_threshold: f32,
    /// Score at or above which (and below the block threshold) a request is sanitised.
    pub sanitize_threshold: f32,
    /// Segment sources scored for injection. Operator system prompts are left out by
    /// default: the operator wrote them.
    pub scored_sources: Vec<Source>,
    /// Kinds of sensitive values detected in requests and responses (advanced tier).
    pub sensitive: SensitiveKinds,
    /// Replace PII and secrets in requests with placeholders before forwarding (advanced).
    pub redact_requests: bool,
    /// What to do with PII and secrets found in LLM responses (advanced).
    pub response_mode: ResponseMode,
    /// Decode-and-rescan nesting depth (base64 inside URL-encoding inside …), advanced tier.
    pub max_decode_depth: u8,
    /// Total bytes decoded from one segment (advanced tier).
    pub max_decoded_bytes: usize,
    /// Characters of matched text quoted in evidence (0 = none). Evidence is for the
    /// operator's logs; it never goes into Cloud events.
    pub evidence_chars: usize,
    /// Bounds of the verdict cache, which remembers what was found in texts
    /// already read (a conversation's history, resent on every turn).
    pub verdict_cache: VerdictCacheConfig,
}

impl Default for FirewallConfig {
    fn default() -> Self {
        FirewallConfig {
            tier: Tier::Advanced,
            block_threshold: 0.8,
            sanitize_threshold: 0.5,
            scored_sources: vec![
                Source::UserMessage,
                Source::ToolResult,
                Source::ToolArguments,
                Source::Document,
            ],
            sensitive: SensitiveKinds::default(),
            redact_requests: true,
            response_mode: ResponseMode::Redact,
            max_decode_depth: 2,
            max_decoded_bytes: 64 * 1024,
            evidence_chars: 60,
            verdict_cache: VerdictCacheConfig::default(),
        }
    }
}

impl FirewallConfig {
    /// Checks ranges and relations between fields; the error names the field at fault.
    pub fn validate(&self) -> Result<(), FirewallConfigError> {
        let unit = |field: &'static str, v: f32| {
            if v.is_finite() && (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(FirewallConfigError::new(
                    field,
                    "must be a number from 0.0 to 1.0",
                ))
            }
        };
        unit("block_threshold", self.block_threshold)?;
        unit("sanitize_threshold", self.sanitize_threshold)?;
        if self.sanitize_threshold > self.block_threshold {
            return Err(FirewallConfigError::new(
                "sanitize_threshold",
                "must not exceed block_threshold",
            ));
        }
        if self.max_decode_depth > 4 {
            return Err(FirewallConfigError::new(
                "max_decode_depth",
                "must be at most 4 (each level rescans the decoded text)",
            ));
        }
        if self.max_decoded_bytes > 1 << 20 {
            return Err(FirewallConfigError::new(
                "max_decoded_bytes",
                "must be at most 1048576",
            ));
        }
        if self.evidence_chars > 400 {
            return Err(FirewallConfigError::new(
                "evidence_chars",
                "must be at most 400",
            ));
        }
        if self.verdict_cache.entries > VerdictCacheConfig::MAX_ENTRIES {
            return Err(FirewallConfigError::new(
                "verdict_cache.entries",
                "must be at most 1048576",
            ));
        }
        if self.verdict_cache.bytes > VerdictCacheConfig::MAX_BYTES {
            return Err(FirewallConfigError::new(
                "verdict_cache.bytes",
                "must be at most 268435456",
            ));
        }
        Ok(())
    }
}

/// A configuration value the firewall cannot run with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallConfigError {
    /// The configuration field at fault, as spelled in the JSON.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FirewallConfigError {
    fn new(field: &'static str, reason: &'static str) -> Self {
        FirewallConfigError { field, reason }
    }
}

impl fmt::Display for FirewallConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "firewall.{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for FirewallConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_object_gives_defaults() {
        let cfg: FirewallConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(cfg, FirewallConfig::default());
        assert!(cfg.validate().is_ok());
        assert!(!cfg.scored_sources.contains(&Source::SystemPrompt));
    }

    #[test]
    fn unknown_field_is_refused() {
        let err = serde_json::from_str::<FirewallConfig>(r#"{"blockThreshold":0.9}"#);
        assert!(err.is_err());
    }

    #[test]
    fn validation_names_the_field() {
        let cfg = FirewallConfig {
            sanitize_threshold: 0.9,
            block_threshold: 0.8,
            ..FirewallConfig::default()
        };
        assert_eq!(cfg.validate().unwrap_err().field, "sanitize_threshold");
        let cfg = FirewallConfig {
            block_threshold: f32::NAN,
            ..FirewallConfig::default()
        };
        assert_eq!(cfg.validate().unwrap_err().field, "block_threshold");
    }

    #[test]
    fn plan_features_select_the_tier() {
        assert_eq!(Tier::from_features(&["firewall:advanced"]), Tier::Advanced);
        assert_eq!(Tier::from_features(&["pii:redact", "x"]), Tier::Advanced);
        assert_eq!(Tier::from_features(&["audit"]), Tier::Basic);
        let parsed: FirewallConfig =
            serde_json::from_str(r#"{"tier":"advanced","response_mode":"block"}"#).unwrap();
        assert_eq!(parsed.tier, Tier::Advanced);
        assert_eq!(parsed.response_mode, ResponseMode::Block);
    }

    #[test]
    fn the_whole_engine_runs_unless_the_configuration_chooses_basic() {
        let unset: FirewallConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(unset.tier, Tier::Advanced);
        assert_eq!(FirewallConfig::default().tier, Tier::Advanced);
        let basic: FirewallConfig = serde_json::from_str(r#"{"tier":"basic"}"#).unwrap();
        assert_eq!(basic.tier, Tier::Basic);
    }
}
