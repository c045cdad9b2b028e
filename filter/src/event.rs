//! Decision events the filter reports to the control plane (`POST
//! /v1/filter/events`; the contract is `kalguard-control-plane`'s `events`
//! module). They carry who, what and the outcome, never prompt text or tokens.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::refusal::ErrorCode;
use crate::route::{CheckEndpoint, Format, Route};

/// Metadata key (value 1) of an event on a request's answer (a refused or cut
/// answer, tool calls denied in it): the request's own event counted the check,
/// so this one is audited but not counted (`refusal::is_check`).
pub const ANSWER: &str = "answer";

/// What was checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    PromptCheck,
    ToolCheck,
}

impl EventType {
    /// The check a request on `route` is; `None` for traffic that is not a
    /// check (health probes, `pass` routes, MCP session requests), which
    /// reports no event.
    pub fn of(route: Route) -> Option<EventType> {
        match route {
            Route::CheckApi(CheckEndpoint::Health) | Route::Pass | Route::McpSession => None,
            Route::CheckApi(CheckEndpoint::ToolCheck) | Route::Inspect(Format::Mcp) => {
                Some(EventType::ToolCheck)
            }
            _ => Some(EventType::PromptCheck),
        }
    }
}

/// The outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Deny,
    RequireApproval,
}

/// One decision.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub event_type: EventType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    pub decision: Decision,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<&'static str>,
    pub request_id: String,
    /// Unix milliseconds.
    pub timestamp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<&'static str>,
    /// Numbers only (risk score, redaction count, …).
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
}

impl Event {
    pub fn new(event_type: EventType, request_id: &str, timestamp: u64) -> Event {
        Event {
            event_type,
            agent_id: None,
            decision: Decision::Allow,
            error_code: None,
            request_id: request_id.to_owned(),
            timestamp,
            route: None,
            metadata: Map::new(),
        }
    }

    /// Marks the event as a refusal with `code`.
    pub fn refused(mut self, code: ErrorCode) -> Event {
        self.decision = if code == ErrorCode::RequireApproval {
            Decision::RequireApproval
        } else {
            Decision::Deny
        };
        self.error_code = Some(code.as_str());
        self
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// A batch body from encoded events: `{"batchId":"…","events":[…]}`. The
/// control plane records a batch ID once, so a post retried after a lost
/// answer is not audited twice.
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_match_the_control_plane_contract() {
        let mut event = Event::new(EventType::PromptCheck, "req_1", 1_714_694_400_123)
            .refused(ErrorCode::PromptBlocked);
        event.agent_id = Some("agent-42".into());
        event.route = Some("openai_chat");
        event.metadata.insert("riskScore".into(), json!(0.82));
        let value: Value = serde_json::from_slice(&event.encode()).unwrap();
        assert_eq!(
            value,
            json!({"eventType":"prompt_check","agentId":"agent-42","decision":"deny","errorCode":"PROMPT_BLOCKED",
                   "requestId":"req_1","timestamp":1714694400123u64,"route":"openai_chat","metadata":{"riskScore":0.82}})
        );
        let allowed: Value =
            serde_json::from_slice(&Event::new(EventType::ToolCheck, "r", 1).encode()).unwrap();
        assert_eq!(
            allowed,
            json!({"eventType":"tool_check","decision":"allow","requestId":"r","timestamp":1})
        );
    }

    #[test]
    fn batches_are_valid_json() {
        let events = vec![
            Event::new(EventType::PromptCheck, "a", 1).encode(),
            Event::new(EventType::ToolCheck, "b", 2).encode(),
        ];
        let value: Value = serde_json::from_slice(&batch("vm-1-7", &events)).unwrap();
        assert_eq!(value["events"].as_array().map(Vec::len), Some(2));
        assert_eq!(value["batchId"], "vm-1-7");
        assert_eq!(
            serde_json::from_slice::<Value>(&batch("b\"1", &[])).unwrap(),
            json!({"batchId": "b\"1", "events": []})
        );
    }
}
