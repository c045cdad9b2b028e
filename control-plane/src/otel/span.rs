//! One filter decision as an OpenTelemetry span, and a batch of them as an
//! OTLP/HTTP JSON `ExportTraceServiceRequest` (`POST /v1/traces`).
//!
//! The span follows the GenAI semantic conventions where the event says
//! enough: `gen_ai.operation.name` (`chat`, `text_completion`, `embeddings`,
//! `execute_tool`), `gen_ai.provider.name` and its older name `gen_ai.system`
//! (when the route names the provider), `gen_ai.agent.id` and
//! `gen_ai.agent.name` (the token's `sub`: KalGuard has no other name for an
//! agent), `gen_ai.request.model` (when the request names one). The guard's
//! own attributes sit under `kalguard.`: `decision`, `error_code` (and
//! `error.type` with the span status ERROR on a refusal carried out),
//! `event_type`, `request_id`, `route`, `rule_id` (the policy rule that
//! decided), `risk_score`, `on_answer`, `would_refuse` (a refusal observe
//! mode let pass: no error), and every other numeric metadata value as
//! `kalguard.metadata.<key>`.
//!
//! A span carries only what the event carries, and an event has no place for
//! prompt text or tokens ([`kalguard_wire::event`]): neither can reach the
//! collector. The trace ID is derived from the request ID, so the events of
//! one request (its check and its answer's) fall in one trace.

use kalguard_wire::event::{Decision, EventType, FilterEvent, ANSWER, WOULD_REFUSE};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// The instrumentation scope and `service.name` of every span.
pub const SERVICE: &str = "kalguard";
/// OTLP `SPAN_KIND_INTERNAL`: the check runs inside the proxy, before any call.
const SPAN_KIND_INTERNAL: u8 = 1;
/// OTLP `STATUS_CODE_ERROR`.
const STATUS_ERROR: u8 = 2;
/// Metadata with a named attribute of its own.
const RISK_SCORE: &str = "riskScore";
const LATENCY_MS: &str = "latencyMs";

/// An OTLP span in its JSON encoding, borrowing from its event.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Span<'a> {
    trace_id: String,
    span_id: String,
    name: &'static str,
    kind: u8,
    /// Unix nanoseconds; int64 travels as a decimal string in OTLP JSON.
    start_time_unix_nano: String,
    end_time_unix_nano: String,
    attributes: Vec<KeyValue<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Status>,
}

#[derive(Serialize)]
struct KeyValue<'a> {
    key: Cow<'a, str>,
    value: AnyValue<'a>,
}

/// OTLP `AnyValue`: `{"stringValue": …}` and its kin.
#[derive(Serialize)]
enum AnyValue<'a> {
    #[serde(rename = "stringValue")]
    String(&'a str),
    /// int64 as a decimal string.
    #[serde(rename = "intValue")]
    Int(String),
    #[serde(rename = "doubleValue")]
    Double(f64),
    #[serde(rename = "boolValue")]
    Bool(bool),
    #[serde(rename = "arrayValue")]
    Array(ArrayValue<'a>),
}

#[derive(Serialize)]
struct ArrayValue<'a> {
    values: Vec<AnyValue<'a>>,
}

#[derive(Serialize)]
struct Status {
    code: u8,
    message: String,
}

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
pub fn span(event: &FilterEvent, span_id: [u8; 8]) -> Span<'_> {
    let operation = operation(event);
    let mut attributes = Vec::with_capacity(12 + event.metadata.len());
    attributes.push(text("gen_ai.operation.name", operation.name));
    if let Some(provider) = operation.provider {
        attributes.push(text("gen_ai.provider.name", provider));
        attributes.push(text("gen_ai.system", provider));
    }
    if let Some(agent) = &event.agent_id {
        attributes.push(text("gen_ai.agent.id", agent));
        attributes.push(text("gen_ai.agent.name", agent));
    }
    if let Some(model) = &event.model {
        attributes.push(text("gen_ai.request.model", model));
    }
    attributes.push(text("kalguard.decision", decision(event.decision)));
    // A refusal observe mode let pass is no error: the request went on.
    let refused = event
        .error_code
        .as_deref()
        .filter(|_| !event.is_would_refuse());
    if let Some(code) = &event.error_code {
        attributes.push(text("kalguard.error_code", code));
    }
    if let Some(code) = refused {
        attributes.push(text("error.type", code));
    }
    let event_type = match event.event_type {
        EventType::PromptCheck => "prompt_check",
        EventType::ToolCheck => "tool_check",
    };
    attributes.push(text("kalguard.event_type", event_type));
    attributes.push(text("kalguard.request_id", &event.request_id));
    if let Some(route) = &event.route {
        attributes.push(text("kalguard.route", route));
    }
    if let Some(rule) = &event.rule_id {
        attributes.push(text("kalguard.rule_id", rule));
    }
    if !event.categories.is_empty() {
        let values = event
            .categories
            .iter()
            .map(|c| AnyValue::String(c))
            .collect();
        attributes.push(KeyValue {
            key: Cow::Borrowed("kalguard.categories"),
            value: AnyValue::Array(ArrayValue { values }),
        });
    }
    for (key, value) in &event.metadata {
        let key = match key.as_str() {
            RISK_SCORE => Cow::Borrowed("kalguard.risk_score"),
            ANSWER | WOULD_REFUSE => {
                // The filter's rule: 1 marks an event on the answer, or a
                // refusal observe mode let pass.
                let key = match key.as_str() {
                    ANSWER => "kalguard.on_answer",
                    _ => "kalguard.would_refuse",
                };
                attributes.push(KeyValue {
                    key: Cow::Borrowed(key),
                    value: AnyValue::Bool(value.as_u64() == Some(1)),
                });
                continue;
            }
            other => Cow::Owned(format!("kalguard.metadata.{other}")),
        };
        if let Some(value) = number(value) {
            attributes.push(KeyValue { key, value });
        }
    }
    let start = u128::from(event.timestamp) * 1_000_000;
    let latency_ms = event
        .metadata
        .get(LATENCY_MS)
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let end = start + u128::from(latency_ms) * 1_000_000;
    Span {
        trace_id: hex(&trace_id(&event.request_id)),
        span_id: hex(&span_id),
        name: operation.name,
        kind: SPAN_KIND_INTERNAL,
        start_time_unix_nano: start.to_string(),
        end_time_unix_nano: end.to_string(),
        attributes,
        status: refused.map(|code| Status {
            code: STATUS_ERROR,
            message: format!("refused: {code}"),
        }),
    }
}

/// The `POST /v1/traces` body for `spans` (each from [`span`]).
pub fn export_request(spans: &[Span<'_>]) -> Vec<u8> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Request<'a> {
        resource_spans: [ResourceSpans<'a>; 1],
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ResourceSpans<'a> {
        resource: Value,
        scope_spans: [ScopeSpans<'a>; 1],
    }
    #[derive(Serialize)]
    struct ScopeSpans<'a> {
        scope: Value,
        spans: &'a [Span<'a>],
    }
    let version = env!("CARGO_PKG_VERSION");
    let request = Request {
        resource_spans: [ResourceSpans {
            resource: json!({"attributes": [
                {"key": "service.name", "value": {"stringValue": SERVICE}},
                {"key": "service.version", "value": {"stringValue": version}},
            ]}),
            scope_spans: [ScopeSpans {
                scope: json!({"name": SERVICE, "version": version}),
                spans,
            }],
        }],
    };
    // Plain data with string keys: serialising cannot fail.
    serde_json::to_vec(&request).unwrap_or_default()
}

fn text<'a>(key: &'static str, value: &'a str) -> KeyValue<'a> {
    KeyValue {
        key: Cow::Borrowed(key),
        value: AnyValue::String(value),
    }
}

fn decision(decision: Decision) -> &'static str {
    match decision {
        Decision::Allow => "allow",
        Decision::Deny => "deny",
        Decision::RequireApproval => "require_approval",
    }
}

/// An OTLP number: `intValue` for integers, `doubleValue` otherwise.
fn number(value: &Value) -> Option<AnyValue<'static>> {
    if let Some(int) = value.as_i64() {
        return Some(AnyValue::Int(int.to_string()));
    }
    value.as_f64().map(AnyValue::Double)
}

/// 16 bytes of SHA-256 over the request ID: every event of one request in one
/// trace, and a request ID cannot be read back from it.
fn trace_id(request_id: &str) -> [u8; 16] {
    let mut hasher = Sha256::new();
    hasher.update(b"kalguard-trace:");
    hasher.update(request_id.as_bytes());
    let digest = hasher.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    // An all-zero trace ID is invalid in OTLP.
    if id == [0; 16] {
        id[15] = 1;
    }
    id
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use kalguard_wire::refusal::ErrorCode;

    const SPAN_ID: [u8; 8] = [0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18];

    fn to_value(span: Span<'_>) -> Value {
        serde_json::to_value(span).unwrap()
    }

    #[test]
    fn hex_and_trace_ids() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        let digest = Sha256::digest(b"kalguard-trace:req_1");
        assert_eq!(trace_id("req_1")[..], digest[..16]);
    }

    fn refused() -> FilterEvent {
        let mut event = FilterEvent::new(EventType::PromptCheck, "req_1", 1_714_694_400_123)
            .refused(ErrorCode::PromptBlocked);
        event.agent_id = Some("agent-42".into());
        event.route = Some("openai_chat".into());
        event.metadata.insert(RISK_SCORE.into(), json!(0.82));
        event.metadata.insert(LATENCY_MS.into(), json!(3));
        event.categories = vec!["instruction_override".into(), "role_play".into()];
        event
    }

    #[test]
    fn golden_refused_prompt_span() {
        let span = to_value(span(&refused(), SPAN_ID));
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
                    {"key": "kalguard.categories", "value": {"arrayValue": {"values": [
                        {"stringValue": "instruction_override"}, {"stringValue": "role_play"}]}}},
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
            to_value(span(&event, SPAN_ID)),
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
        let span = to_value(span(&event, SPAN_ID));
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
    fn golden_would_be_refusal_with_model_and_rule() {
        let mut event = FilterEvent::new(EventType::PromptCheck, "req_4", 1)
            .would_refuse(ErrorCode::PolicyDeny);
        event.agent_id = Some("beta".into());
        event.route = Some("openai_chat".into());
        event.model = Some("o1-preview".into());
        event.rule_id = Some("no-o1".into());
        assert_eq!(
            to_value(span(&event, SPAN_ID)),
            json!({
                "traceId": hex(&trace_id("req_4")),
                "spanId": "a1b2c3d4e5f60718",
                "name": "chat",
                "kind": 1,
                "startTimeUnixNano": "1000000",
                "endTimeUnixNano": "1000000",
                "attributes": [
                    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                    {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                    {"key": "gen_ai.system", "value": {"stringValue": "openai"}},
                    {"key": "gen_ai.agent.id", "value": {"stringValue": "beta"}},
                    {"key": "gen_ai.agent.name", "value": {"stringValue": "beta"}},
                    {"key": "gen_ai.request.model", "value": {"stringValue": "o1-preview"}},
                    {"key": "kalguard.decision", "value": {"stringValue": "allow"}},
                    {"key": "kalguard.error_code", "value": {"stringValue": "POLICY_DENY"}},
                    {"key": "kalguard.event_type", "value": {"stringValue": "prompt_check"}},
                    {"key": "kalguard.request_id", "value": {"stringValue": "req_4"}},
                    {"key": "kalguard.route", "value": {"stringValue": "openai_chat"}},
                    {"key": "kalguard.rule_id", "value": {"stringValue": "no-o1"}},
                    {"key": "kalguard.would_refuse", "value": {"boolValue": true}},
                ],
            })
        );
        // Enforced, the same decision is an error with the same model and rule.
        let mut denied = event.clone().refused(ErrorCode::PolicyDeny);
        denied.metadata.clear();
        let denied = to_value(span(&denied, SPAN_ID));
        assert_eq!(denied["status"]["code"], 2);
        let attributes = denied["attributes"].as_array().unwrap();
        assert!(attributes
            .contains(&json!({"key": "error.type", "value": {"stringValue": "POLICY_DENY"}})));
        assert!(attributes
            .contains(&json!({"key": "kalguard.rule_id", "value": {"stringValue": "no-o1"}})));
    }

    #[test]
    fn one_request_one_trace() {
        let first = to_value(span(&refused(), SPAN_ID));
        let mut answer = refused();
        answer.metadata.insert(ANSWER.into(), json!(1));
        let second = to_value(span(&answer, [9; 8]));
        assert_eq!(first["traceId"], second["traceId"]);
        assert_ne!(first["spanId"], second["spanId"]);
        let mut other = FilterEvent::new(EventType::PromptCheck, "req_other", 1);
        other.metadata.insert(ANSWER.into(), json!(0));
        let other = to_value(span(&other, SPAN_ID));
        assert_ne!(first["traceId"], other["traceId"]);
        assert_eq!(
            other["attributes"].as_array().unwrap().last().unwrap(),
            &json!({"key": "kalguard.on_answer", "value": {"boolValue": false}})
        );
    }

    #[test]
    fn golden_export_request() {
        let event = FilterEvent::new(EventType::ToolCheck, "r", 1);
        let spans = [span(&event, SPAN_ID)];
        let body: Value = serde_json::from_slice(&export_request(&spans)).unwrap();
        assert_eq!(
            body,
            json!({"resourceSpans": [{
                "resource": {"attributes": [
                    {"key": "service.name", "value": {"stringValue": "kalguard"}},
                    {"key": "service.version", "value": {"stringValue": env!("CARGO_PKG_VERSION")}},
                ]},
                "scopeSpans": [{
                    "scope": {"name": "kalguard", "version": env!("CARGO_PKG_VERSION")},
                    "spans": [to_value(span(&event, SPAN_ID))],
                }],
            }]})
        );
    }
}
