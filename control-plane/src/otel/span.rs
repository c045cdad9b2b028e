//! One filter decision as an OpenTelemetry span, and a batch of them as an
//! OTLP/HTTP JSON `ExportTraceServiceRequest` (`POST /v1/traces`).
//!
//! The span follows the GenAI semantic conventions where the event says
//! enough: `gen_ai.operation.name` (`chat`, `text_completion`, `embeddings`,
//! `execute_tool`), `gen_ai.provider.name` and its older name `gen_ai.system`
//! (when the route names the provider), `gen_ai.agent.id` and
//! `gen_ai.agent.name` (the token's `sub`: KalGuard has no other name for an
//! agent). The guard's own attributes sit under `kalguard.`: `decision`,
//! `error_code` (and `error.type` with the span status ERROR on a refusal),
//! `event_type`, `request_id`, `route`, `risk_score`, `on_answer`, and every
//! other numeric metadata value as `kalguard.metadata.<key>`.
//!
//! A span carries only what the event carries, and an event has no place for
//! prompt text or tokens ([`kalguard_wire::event`]): neither can reach the
//! collector. The trace ID is derived from the request ID, so the events of
//! one request (its check and its answer's) fall in one trace.

use kalguard_wire::event::{Decision, EventType, FilterEvent, ANSWER};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// The instrumentation scope and `service.name` of every span.
pub const SERVICE: &str = "kalguard";
/// OTLP `SPAN_KIND_INTERNAL`: the check runs inside the proxy, before any call.
const SPAN_KIND_INTERNAL: u8 = 1;
/// OTLP `STATUS_CODE_ERROR`.
const STATUS_ERROR: u8 = 2;
/// Metadata with a named attribute of its own.
const RISK_SCORE: &str = "riskScore";
const LATENCY_MS: &str = "latencyMs";

/// What the route (or, without one, the event type) says the request was.
struct Operation {
    name: &'static str,
    provider: Option<&'static str>,
}

fn operation(event: &FilterEvent) -> Operation {
    let by_route = |name, provider| Operation {
        name,
        provider: Some(provider),
    };
    match event.route.as_deref() {
        Some("openai_chat" | "openai_responses") => by_route("chat", "openai"),
        Some("openai_completions") => by_route("text_completion", "openai"),
        Some("openai_embeddings") => by_route("embeddings", "openai"),
        Some("anthropic_messages") => by_route("chat", "anthropic"),
        _ => Operation {
            name: match event.event_type {
                EventType::PromptCheck => "chat",
                EventType::ToolCheck => "execute_tool",
            },
            provider: None,
        },
    }
}

/// The span of one event; `span_id` is drawn by the caller (fixed in tests).
pub fn span(event: &FilterEvent, span_id: [u8; 8]) -> Value {
    let operation = operation(event);
    let mut attributes = Vec::new();
    let mut text = |key: &str, value: &str| attributes.push(attribute(key, string(value)));
    text("gen_ai.operation.name", operation.name);
    if let Some(provider) = operation.provider {
        text("gen_ai.provider.name", provider);
        text("gen_ai.system", provider);
    }
    if let Some(agent) = &event.agent_id {
        text("gen_ai.agent.id", agent);
        text("gen_ai.agent.name", agent);
    }
    text("kalguard.decision", decision(event.decision));
    if let Some(code) = &event.error_code {
        text("kalguard.error_code", code);
        text("error.type", code);
    }
    text(
        "kalguard.event_type",
        match event.event_type {
            EventType::PromptCheck => "prompt_check",
            EventType::ToolCheck => "tool_check",
        },
    );
    text("kalguard.request_id", &event.request_id);
    if let Some(route) = &event.route {
        text("kalguard.route", route);
    }
    for (key, value) in &event.metadata {
        let name = match key.as_str() {
            RISK_SCORE => "kalguard.risk_score".to_owned(),
            ANSWER => {
                // The filter's rule: 1 marks an event on the answer.
                let on_answer = value.as_u64() == Some(1);
                attributes.push(attribute(
                    "kalguard.on_answer",
                    json!({"boolValue": on_answer}),
                ));
                continue;
            }
            other => format!("kalguard.metadata.{other}"),
        };
        if let Some(number) = number(value) {
            attributes.push(attribute(&name, number));
        }
    }
    let start = u128::from(event.timestamp) * 1_000_000;
    let latency_ms = event
        .metadata
        .get(LATENCY_MS)
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let end = start + u128::from(latency_ms) * 1_000_000;
    let mut span = Map::new();
    span.insert("traceId".into(), hex(&trace_id(&event.request_id)).into());
    span.insert("spanId".into(), hex(&span_id).into());
    span.insert("name".into(), operation.name.into());
    span.insert("kind".into(), SPAN_KIND_INTERNAL.into());
    span.insert("startTimeUnixNano".into(), start.to_string().into());
    span.insert("endTimeUnixNano".into(), end.to_string().into());
    span.insert("attributes".into(), attributes.into());
    if let Some(code) = &event.error_code {
        span.insert(
            "status".into(),
            json!({"code": STATUS_ERROR, "message": format!("refused: {code}")}),
        );
    }
    Value::Object(span)
}

/// The `POST /v1/traces` body for `spans` (each from [`span`]).
pub fn export_request(spans: Vec<Value>) -> Vec<u8> {
    json!({
        "resourceSpans": [{
            "resource": {"attributes": [
                attribute("service.name", string(SERVICE)),
                attribute("service.version", string(env!("CARGO_PKG_VERSION"))),
            ]},
            "scopeSpans": [{
                "scope": {"name": SERVICE, "version": env!("CARGO_PKG_VERSION")},
                "spans": spans,
            }],
        }],
    })
    .to_string()
    .into_bytes()
}

fn decision(decision: Decision) -> &'static str {
    match decision {
        Decision::Allow => "allow",
        Decision::Deny => "deny",
        Decision::RequireApproval => "require_approval",
    }
}

fn attribute(key: &str, value: Value) -> Value {
    json!({"key": key, "value": value})
}

fn string(value: &str) -> Value {
    json!({"stringValue": value})
}

/// An OTLP number: `intValue` (a decimal string, as int64 travels in JSON)
/// for integers, `doubleValue` otherwise.
fn number(value: &Value) -> Option<Value> {
    if let Some(int) = value.as_i64() {
        return Some(json!({"intValue": int.to_string()}));
    }
    value.as_f64().map(|double| json!({"doubleValue": double}))
}

/// 16 bytes of SHA-256 over the request ID: every event of one request in one
/// trace, and a request ID cannot be read back from it.
fn trace_id(request_id: &str) -> [u8; 16] {
    let digest = Sha256::digest(format!("kalguard-trace:{request_id}").as_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    // An all-zero trace ID is invalid in OTLP.
    if id == [0; 16] {
        id[15] = 1;
    }
    id
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kalguard_wire::refusal::ErrorCode;

    const SPAN_ID: [u8; 8] = [0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18];

    fn refused() -> FilterEvent {
        let mut event = FilterEvent::new(EventType::PromptCheck, "req_1", 1_714_694_400_123)
            .refused(ErrorCode::PromptBlocked);
        event.agent_id = Some("agent-42".into());
        event.route = Some("openai_chat".into());
        event.metadata.insert(RISK_SCORE.into(), json!(0.82));
        event.metadata.insert(LATENCY_MS.into(), json!(3));
        event
    }

    #[test]
    fn golden_refused_prompt_span() {
        let span = span(&refused(), SPAN_ID);
        let trace = hex(&trace_id("req_1"));
        assert_eq!(
            span,
            json!({
                "traceId": trace,
                "spanId": "a1b2c3d4e5f60718",
                "name": "chat",
                "kind": 1,
                "startTimeUnixNano": "1714694400123000000",
                "endTimeUnixNano": "1714694400126000000",
                "attributes": [
                    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                    {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                    {"key": "gen_ai.system", "value": {"stringValue": "openai"}},
                    {"key": "gen_ai.agent.id", "value": {"stringValue": "agent-42"}},
                    {"key": "gen_ai.agent.name", "value": {"stringValue": "agent-42"}},
                    {"key": "kalguard.decision", "value": {"stringValue": "deny"}},
                    {"key": "kalguard.error_code", "value": {"stringValue": "PROMPT_BLOCKED"}},
                    {"key": "error.type", "value": {"stringValue": "PROMPT_BLOCKED"}},
                    {"key": "kalguard.event_type", "value": {"stringValue": "prompt_check"}},
                    {"key": "kalguard.request_id", "value": {"stringValue": "req_1"}},
                    {"key": "kalguard.route", "value": {"stringValue": "openai_chat"}},
                    {"key": "kalguard.metadata.latencyMs", "value": {"intValue": "3"}},
                    {"key": "kalguard.risk_score", "value": {"doubleValue": 0.82}},
                ],
                "status": {"code": 2, "message": "refused: PROMPT_BLOCKED"},
            })
        );
        assert_eq!(trace.len(), 32);
    }

    #[test]
    fn golden_allowed_tool_call_on_an_answer() {
        let mut event = FilterEvent::new(EventType::ToolCheck, "req_2", 5);
        event.agent_id = Some("a".into());
        event.metadata.insert(ANSWER.into(), json!(1));
        assert_eq!(
            span(&event, SPAN_ID),
            json!({
                "traceId": hex(&trace_id("req_2")),
                "spanId": "a1b2c3d4e5f60718",
                "name": "execute_tool",
                "kind": 1,
                "startTimeUnixNano": "5000000",
                "endTimeUnixNano": "5000000",
                "attributes": [
                    {"key": "gen_ai.operation.name", "value": {"stringValue": "execute_tool"}},
                    {"key": "gen_ai.agent.id", "value": {"stringValue": "a"}},
                    {"key": "gen_ai.agent.name", "value": {"stringValue": "a"}},
                    {"key": "kalguard.decision", "value": {"stringValue": "allow"}},
                    {"key": "kalguard.event_type", "value": {"stringValue": "tool_check"}},
                    {"key": "kalguard.request_id", "value": {"stringValue": "req_2"}},
                    {"key": "kalguard.on_answer", "value": {"boolValue": true}},
                ],
            })
        );
    }

    #[test]
    fn an_unidentified_refusal_has_no_agent_and_the_route_names_the_operation() {
        let mut event =
            FilterEvent::new(EventType::PromptCheck, "req_3", 1).refused(ErrorCode::AuthFailed);
        event.route = Some("openai_embeddings".into());
        let span = span(&event, SPAN_ID);
        let keys: Vec<&str> = span["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["key"].as_str().unwrap())
            .collect();
        assert!(!keys.iter().any(|k| k.starts_with("gen_ai.agent")));
        assert_eq!(span["name"], "embeddings");
        assert_eq!(span["attributes"][0]["value"]["stringValue"], "embeddings");
    }

    #[test]
    fn one_request_one_trace() {
        let first = span(&refused(), SPAN_ID);
        let mut answer = refused();
        answer.metadata.insert(ANSWER.into(), json!(1));
        let second = span(&answer, [9; 8]);
        assert_eq!(first["traceId"], second["traceId"]);
        assert_ne!(first["spanId"], second["spanId"]);
        let mut other = FilterEvent::new(EventType::PromptCheck, "req_other", 1);
        other.metadata.insert(ANSWER.into(), json!(0));
        let other = span(&other, SPAN_ID);
        assert_ne!(first["traceId"], other["traceId"]);
        assert_eq!(
            other["attributes"].as_array().unwrap().last().unwrap(),
            &json!({"key": "kalguard.on_answer", "value": {"boolValue": false}})
        );
    }

    #[test]
    fn golden_export_request() {
        let body: Value =
            serde_json::from_slice(&export_request(vec![json!({"name": "chat"})])).unwrap();
        assert_eq!(
            body,
            json!({"resourceSpans": [{
                "resource": {"attributes": [
                    {"key": "service.name", "value": {"stringValue": "kalguard"}},
                    {"key": "service.version", "value": {"stringValue": env!("CARGO_PKG_VERSION")}},
                ]},
                "scopeSpans": [{
                    "scope": {"name": "kalguard", "version": env!("CARGO_PKG_VERSION")},
                    "spans": [{"name": "chat"}],
                }],
            }]})
        );
    }
}
