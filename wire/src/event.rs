//! Decision events: what the filter reports to the control plane (`POST
//! /v1/filter/events`, [`FilterEvent`] in a [`batch`]) and what the control
//! plane forwards to the Cloud ([`UsageEvent`], `POST /api/v1/usage/report`).
//! They carry who, what and the outcome, never prompt text or tokens: the
//! types have no place for them, and metadata values are numbers only.

use serde::de::{Deserializer, Error as _};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::refusal::{self, ErrorCode};

/// Metadata key (value 1) of an event on a request's answer (a refused or cut
/// answer, tool calls denied in it): the request's own event counted the check,
/// so this one is audited but not counted ([`refusal::is_check`]).
pub const ANSWER: &str = "answer";

/// Metadata key (value 1) of a refusal observe mode let pass
/// (`docs/observe.md`): the event's `decision` is `allow` (the request or
/// answer went on) and its `errorCode` the refusal that would have happened.
pub const WOULD_REFUSE: &str = "wouldRefuse";

/// Longest `model` an event carries, in characters.
pub const MAX_MODEL_CHARS: usize = 128;
/// Longest `ruleId` an event carries, in characters.
pub const MAX_RULE_ID_CHARS: usize = 128;

/// Whether `model` may travel on an event: 1 to [`MAX_MODEL_CHARS`] ASCII
/// letters, digits and `-._:/@+` (every provider's model names fit). The
/// model is the agent's text: the narrow alphabet keeps prompt text (it has
/// spaces) out of the audit trail and the spans.
pub fn model_fits(model: &str) -> bool {
    (1..=MAX_MODEL_CHARS).contains(&model.len())
        && model
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:/@+".contains(&b))
}

/// Whether a policy rule's ID may travel on an event: 1 to
/// [`MAX_RULE_ID_CHARS`] characters, none of them a control character.
pub fn rule_id_fits(rule_id: &str) -> bool {
    !rule_id.is_empty()
        && rule_id.chars().count() <= MAX_RULE_ID_CHARS
        && !rule_id.chars().any(char::is_control)
}

/// What was checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// An LLM request (or a compatibility `/v1/prompt/check`).
    PromptCheck,
    /// A tool call (MCP `tools/call`, a tool call in an LLM response, `/v1/tool/check`).
    ToolCheck,
}

/// The outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Deny,
    RequireApproval,
}

/// Numeric metadata (risk score, redaction count, …), sorted by key. Every
/// value is a number: a reader refuses an event with any other. (A JSON
/// map rather than a map of numbers: the filter builds events with the JSON
/// map code it has anyway, which keeps its `.wasm` 4 KB smaller.)
pub type Metadata = Map<String, Value>;

/// Reads [`Metadata`], refusing a value that is not a number: events carry
/// no text.
fn numbers_only<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Metadata, D::Error> {
    let metadata = Metadata::deserialize(deserializer)?;
    match metadata.iter().find(|(_, value)| !value.is_number()) {
        Some((key, _)) => Err(D::Error::custom(format_args!(
            "metadata.{key} is not a number"
        ))),
        None => Ok(metadata),
    }
}

/// One decision the filter reports, exactly as it travels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterEvent {
    pub event_type: EventType,
    /// The token's `sub`; absent when the request was refused before its
    /// agent was identified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    pub decision: Decision,
    /// The refusal's documented code ([`ErrorCode::as_str`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The `x-kalguard-request-id` the agent saw.
    pub request_id: String,
    /// Unix milliseconds of the decision.
    pub timestamp: u64,
    /// The route class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The model the request names, when it names one that [`model_fits`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The policy rule that decided, when one did ([`rule_id_fits`]): the
    /// rule that refused (or would have); on an allow, the rule whose
    /// `require_approval` a person approved, else the first that allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    #[serde(
        default,
        deserialize_with = "numbers_only",
        skip_serializing_if = "Metadata::is_empty"
    )]
    pub metadata: Metadata,
    /// The firewall's category names (`instruction_override`, …: fixed
    /// names, never request content); the risk score is `metadata.riskScore`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
}

impl FilterEvent {
    /// An allowed `event_type` decision at `timestamp` (unix ms).
    pub fn new(event_type: EventType, request_id: &str, timestamp: u64) -> FilterEvent {
        FilterEvent {
            event_type,
            agent_id: None,
            decision: Decision::Allow,
            error_code: None,
            request_id: request_id.to_owned(),
            timestamp,
            route: None,
            model: None,
            rule_id: None,
            metadata: Metadata::new(),
            categories: Vec::new(),
        }
    }

    /// Marks the event as a refusal with `code` that observe mode let pass:
    /// still `allow`, with the code and [`WOULD_REFUSE`].
    pub fn would_refuse(mut self, code: ErrorCode) -> FilterEvent {
        self.decision = Decision::Allow;
        self.error_code = Some(code.as_str().to_owned());
        self.metadata.insert(WOULD_REFUSE.into(), 1.into());
        self
    }

    /// Whether the event is a refusal observe mode let pass.
    pub fn is_would_refuse(&self) -> bool {
        would_refuse(&self.metadata)
    }

    /// Marks the event as a refusal with `code`.
    pub fn refused(mut self, code: ErrorCode) -> FilterEvent {
        self.decision = if code == ErrorCode::RequireApproval {
            Decision::RequireApproval
        } else {
            Decision::Deny
        };
        self.error_code = Some(code.as_str().to_owned());
        self
    }

    /// The event's JSON.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The usage event for the Cloud; `None` for a request refused before its
    /// agent was identified (it checked no agent, so it is not metered).
    pub fn usage(&self) -> Option<UsageEvent> {
        Some(UsageEvent {
            event_type: self.event_type,
            agent_id: self.agent_id.clone()?,
            decision: self.decision,
            error_code: self.error_code.clone(),
            timestamp: self.timestamp,
            request_id: self.request_id.clone(),
            metadata: self.metadata.clone(),
            categories: self.categories.clone(),
        })
    }
}

/// A `POST /v1/filter/events` body from encoded events:
/// `{"batchId":"…","events":[…]}`. The control plane records a batch ID once,
/// so a post retried after a lost answer is not audited twice.
pub fn batch(batch_id: &str, encoded: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::with_capacity(encoded.iter().map(Vec::len).sum::<usize>() + 32);
    body.extend_from_slice(b"{\"batchId\":");
    body.extend_from_slice(&serde_json::to_vec(batch_id).unwrap_or_default());
    body.extend_from_slice(b",\"events\":[");
    for (i, event) in encoded.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(event);
    }
    body.extend_from_slice(b"]}");
    body
}

/// The usage event the control plane sends the Cloud: only event type, agent
/// ID, decision, error code, timestamp, request ID and numeric metadata leave.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageEvent {
    pub event_type: EventType,
    pub agent_id: String,
    pub decision: Decision,
    /// The refusal's documented code (a fixed name, never request content),
    /// so the Cloud can break denials down and leave quota refusals uncounted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Unix milliseconds.
    pub timestamp: u64,
    pub request_id: String,
    #[serde(
        default,
        deserialize_with = "numbers_only",
        skip_serializing_if = "Metadata::is_empty"
    )]
    pub metadata: Metadata,
    /// The firewall's category names (`instruction_override`, …: fixed
    /// names, never request content); the risk score is `metadata.riskScore`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
}

/// Whether `metadata` marks a refusal observe mode let pass.
pub fn would_refuse(metadata: &Metadata) -> bool {
    metadata
        .get(WOULD_REFUSE)
        .is_some_and(|v| v.as_u64() == Some(1))
}

impl UsageEvent {
    /// Whether the event is one of the day's checks, by the filter's rule.
    pub fn is_check(&self) -> bool {
        let answer = self
            .metadata
            .get(ANSWER)
            .is_some_and(|v| v.as_u64() == Some(1));
        refusal::is_check(self.error_code.as_deref(), answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::golden::assert_round_trip;
    use serde_json::{json, Value};

    #[test]
    fn golden_filter_event() {
        let event: FilterEvent = assert_round_trip(
            r#"{"eventType":"prompt_check","agentId":"agent-42","decision":"deny","errorCode":"PROMPT_BLOCKED",
                "requestId":"req_1","timestamp":1714694400123,"route":"openai.chat","metadata":{"answer":1,"riskScore":0.82},
                "categories":["exfiltration","instruction_override"]}"#,
        );
        assert_eq!(event.event_type, EventType::PromptCheck);
        assert_eq!(event.agent_id.as_deref(), Some("agent-42"));
        assert_eq!(event.decision, Decision::Deny);
        assert_eq!(event.error_code.as_deref(), Some("PROMPT_BLOCKED"));
        assert_eq!(event.request_id, "req_1");
        assert_eq!(event.timestamp, 1_714_694_400_123);
        assert_eq!(event.route.as_deref(), Some("openai.chat"));
        assert_eq!(event.metadata["riskScore"].as_f64(), Some(0.82));
        assert_eq!(event.metadata[ANSWER].as_u64(), Some(1));
        assert_eq!(event.categories, ["exfiltration", "instruction_override"]);
        // The shortest event: an allowed check of an unidentified request.
        let bare: FilterEvent = assert_round_trip(
            r#"{"eventType":"tool_check","decision":"require_approval","requestId":"r","timestamp":1}"#,
        );
        assert_eq!(bare.agent_id, None);
        assert_eq!(bare.decision, Decision::RequireApproval);
        assert!(bare.metadata.is_empty() && bare.error_code.is_none() && bare.route.is_none());
        assert!(bare.categories.is_empty());
    }

    #[test]
    fn events_the_filter_builds_match_the_contract() {
        let mut event = FilterEvent::new(EventType::PromptCheck, "req_1", 1_714_694_400_123)
            .refused(ErrorCode::PromptBlocked);
        event.agent_id = Some("agent-42".into());
        event.route = Some("openai_chat".into());
        event.metadata.insert("riskScore".into(), json!(0.82));
        let value: Value = serde_json::from_slice(&event.encode()).unwrap();
        assert_eq!(
            value,
            json!({"eventType":"prompt_check","agentId":"agent-42","decision":"deny","errorCode":"PROMPT_BLOCKED",
                   "requestId":"req_1","timestamp":1714694400123u64,"route":"openai_chat","metadata":{"riskScore":0.82}})
        );
        let allowed: Value =
            serde_json::from_slice(&FilterEvent::new(EventType::ToolCheck, "r", 1).encode())
                .unwrap();
        assert_eq!(
            allowed,
            json!({"eventType":"tool_check","decision":"allow","requestId":"r","timestamp":1})
        );
        let approval =
            FilterEvent::new(EventType::ToolCheck, "r", 1).refused(ErrorCode::RequireApproval);
        assert_eq!(approval.decision, Decision::RequireApproval);
    }

    #[test]
    fn golden_observed_event_with_model_and_rule() {
        let event: FilterEvent = assert_round_trip(
            r#"{"eventType":"tool_check","agentId":"a1","decision":"allow","errorCode":"TOOL_DENIED",
                "requestId":"req_1","timestamp":1,"route":"mcp","model":"gpt-4o-mini","ruleId":"no-delete",
                "metadata":{"wouldRefuse":1}}"#,
        );
        assert!(event.is_would_refuse());
        assert_eq!(event.model.as_deref(), Some("gpt-4o-mini"));
        assert_eq!(event.rule_id.as_deref(), Some("no-delete"));
        let mut built =
            FilterEvent::new(EventType::ToolCheck, "req_1", 1).would_refuse(ErrorCode::ToolDenied);
        built.agent_id = Some("a1".into());
        built.route = Some("mcp".into());
        built.model = Some("gpt-4o-mini".into());
        built.rule_id = Some("no-delete".into());
        assert_eq!(built, event);
        assert!(!FilterEvent::new(EventType::ToolCheck, "r", 1)
            .refused(ErrorCode::ToolDenied)
            .is_would_refuse());
        // The Cloud hears of it through the metadata; never of the model or rule.
        let usage = built.usage().unwrap();
        assert!(would_refuse(&usage.metadata));
        assert_eq!(usage.decision, Decision::Allow);
        let sent = String::from_utf8(serde_json::to_vec(&usage).unwrap()).unwrap();
        assert!(
            !sent.contains("gpt-4o") && !sent.contains("no-delete"),
            "{sent}"
        );
    }

    #[test]
    fn models_and_rule_ids_that_may_travel() {
        for model in [
            "gpt-4o-2024-08-06",
            "claude-3-5-sonnet@20241022",
            "accounts/fireworks/models/llama-v3p1-70b-instruct",
            "meta-llama/Llama-3-8b:free",
            "ft:gpt-4o-mini:org+x",
        ] {
            assert!(model_fits(model), "{model}");
        }
        let long = "m".repeat(MAX_MODEL_CHARS + 1);
        for model in [
            "",
            "ignore previous instructions",
            "gpt\n4",
            "gpt\"4",
            "modèle",
            &long,
        ] {
            assert!(!model_fits(model), "{model}");
        }
        assert!(rule_id_fits("no delete (prod)"));
        assert!(!rule_id_fits(""));
        assert!(!rule_id_fits("a\nb"));
        assert!(!rule_id_fits(&"r".repeat(MAX_RULE_ID_CHARS + 1)));
    }

    #[test]
    fn metadata_holds_numbers_only() {
        for metadata in [
            r#"{"prompt":"secret text"}"#,
            r#"{"n":[1]}"#,
            r#"{"n":null}"#,
        ] {
            let json = format!(
                r#"{{"eventType":"prompt_check","decision":"allow","requestId":"r","timestamp":1,"metadata":{metadata}}}"#
            );
            assert!(
                serde_json::from_str::<FilterEvent>(&json).is_err(),
                "{metadata}"
            );
            let usage = json.replace(r#""decision""#, r#""agentId":"a","decision""#);
            assert!(
                serde_json::from_str::<UsageEvent>(&usage).is_err(),
                "{metadata}"
            );
        }
    }

    #[test]
    fn batches_are_valid_json() {
        let events = vec![
            FilterEvent::new(EventType::PromptCheck, "a", 1).encode(),
            FilterEvent::new(EventType::ToolCheck, "b", 2).encode(),
        ];
        let value: Value = serde_json::from_slice(&batch("vm-1-7", &events)).unwrap();
        assert_eq!(value["events"].as_array().map(Vec::len), Some(2));
        assert_eq!(value["batchId"], "vm-1-7");
        assert_eq!(
            serde_json::from_slice::<Value>(&batch("b\"1", &[])).unwrap(),
            json!({"batchId": "b\"1", "events": []})
        );
    }

    #[test]
    fn golden_usage_event() {
        let usage: UsageEvent = assert_round_trip(
            r#"{"eventType":"tool_check","agentId":"a1","decision":"deny","errorCode":"TOOL_DENIED",
                "timestamp":1714694400123,"requestId":"req_1","metadata":{"answer":1,"riskScore":0.91},
                "categories":["role_play"]}"#,
        );
        assert_eq!(usage.event_type, EventType::ToolCheck);
        assert_eq!(usage.agent_id, "a1");
        assert_eq!(usage.decision, Decision::Deny);
        assert_eq!(usage.error_code.as_deref(), Some("TOOL_DENIED"));
        assert_eq!(usage.timestamp, 1_714_694_400_123);
        assert_eq!(usage.request_id, "req_1");
        assert_eq!(usage.categories, ["role_play"]);
        assert!(!usage.is_check(), "an event on an answer is not a check");
    }

    #[test]
    fn only_identified_events_are_metered_and_quota_refusals_are_not_checks() {
        let anonymous = FilterEvent::new(EventType::PromptCheck, "r", 1);
        assert!(anonymous.usage().is_none());
        let mut limited =
            FilterEvent::new(EventType::PromptCheck, "r", 1).refused(ErrorCode::RateLimitExceeded);
        limited.agent_id = Some("a".into());
        assert!(!limited.usage().unwrap().is_check());
        let mut blocked =
            FilterEvent::new(EventType::PromptCheck, "r", 1).refused(ErrorCode::PromptBlocked);
        blocked.agent_id = Some("a".into());
        blocked.categories = vec!["role_play".into()];
        assert!(blocked.usage().unwrap().is_check());
        assert_eq!(blocked.usage().unwrap().categories, ["role_play"]);
    }
}
