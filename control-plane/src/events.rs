//! The receiving end of the filter → control plane event contract: what `POST
//! /v1/filter/events` accepts. The event types ([`FilterEvent`], and the
//! [`UsageEvent`] that leaves for the Cloud) are `kalguard_wire::event`'s.
//!
//! # Request
//!
//! `POST /v1/filter/events` with `content-type: application/json` and a body that
//! is either a JSON array of events or an object `{"events": [ … ], "batchId": "…"}`
//! (`batchId` optional, 1–128 printable characters, unique per batch: a request
//! retried with the same `batchId` is recorded once, also across a control-plane
//! restart, among the last 10,000 batches). At most [`MAX_EVENTS_PER_POST`]
//! events per request (more → 413). One event:
//!
//! ```json
//! {
//!   "eventType": "prompt_check",          // "prompt_check" | "tool_check"
//!   "agentId": "agent-42",                // the token's `sub`; omit or null when the
//!                                         // request was refused before identification
//!   "decision": "deny",                   // "allow" | "deny" | "require_approval"
//!   "errorCode": "PROMPT_BLOCKED",        // optional; the refusal's error code
//!   "requestId": "req_01HX…",             // the x-kalguard-request-id the agent saw
//!   "timestamp": 1714694400123,           // unix milliseconds of the decision
//!   "route": "openai_chat",               // optional; the route class
//!   "model": "gpt-4o-mini",               // optional; the model the request names
//!   "ruleId": "no-o1",                    // optional; the policy rule that decided
//!   "metadata": {"latencyMs": 3, "riskScore": 0.82}, // optional; numbers only
//!   "categories": ["instruction_override"] // optional; the firewall's findings
//! }
//! ```
//!
//! Limits: `agentId` 1–256, `requestId` 1–128, `errorCode` and `route` 1–64
//! printable characters; `metadata` at most 32 keys of 1–64 characters, every
//! value a JSON number (any other value is dropped, never stored, and named in
//! `errors`; the event itself is kept), `riskScore` from 0 to 1; `categories` at
//! most 16 names of 1–64 lowercase letters, digits and `_` (the Cloud's rule, so
//! an event accepted here is never refused there); `model` 1–128 ASCII letters, digits
//! and `-._:/@+`, `ruleId` 1–128 printable characters; `metadata.wouldRefuse` (a
//! refusal observe mode let pass) is 1 on an `allow` with an `errorCode`, and an
//! `allow` carries an `errorCode` only so. Unknown fields are ignored and never
//! stored (events must not carry prompt text or tokens: the contract has no
//! place for them). An event breaking any other rule is rejected.
//!
//! # Response
//!
//! `200 {"accepted": n, "rejected": m, "errors": ["events[3]: …", …], "duplicate": false}`
//! (`duplicate: true`: that `batchId` was already recorded, nothing was written again):
//! each event is judged alone; valid ones are written to the audit log and (when
//! a Cloud API key is configured) to the usage spool, both fsync'd before the
//! answer. `errors` lists at most ten problems. A body that is not JSON, or not
//! an array / `{events}`, is `400`; too many events `413`; a disk failure `503`
//! (retry later: nothing of that request was acknowledged).
//!
//! Without a `batchId`, a request retried after a lost answer is recorded twice.

use serde_json::Value;

use kalguard_wire::event::{
    model_fits, rule_id_fits, Decision, MAX_MODEL_CHARS, MAX_RULE_ID_CHARS, WOULD_REFUSE,
};
pub use kalguard_wire::event::{FilterEvent, UsageEvent};

/// Most events one `POST /v1/filter/events` may carry.
pub const MAX_EVENTS_PER_POST: usize = 1_000;
/// At most this many problems are listed in a response.
const MAX_ERRORS_LISTED: usize = 10;
const MAX_METADATA_KEYS: usize = 32;

/// Why one event of a batch was rejected (listed in the answer's `errors`).
#[derive(Debug, thiserror::Error)]
enum EventProblem {
    /// Not an event of the contract (a missing field, an unknown `eventType`…).
    #[error("{0}")]
    Shape(#[from] serde_json::Error),
    #[error("{field} must be 1-{max} printable characters")]
    Text { field: &'static str, max: usize },
    #[error("metadata has more than {MAX_METADATA_KEYS} keys")]
    TooManyKeys,
    #[error("metadata.riskScore must be a number from 0 to 1")]
    RiskScore,
    #[error(
        "categories must be at most {MAX_CATEGORIES} names of 1-64 lowercase letters, digits and _"
    )]
    Categories,
    #[error("model must be 1-{MAX_MODEL_CHARS} ASCII letters, digits and -._:/@+")]
    Model,
    #[error("ruleId must be 1-{MAX_RULE_ID_CHARS} printable characters")]
    RuleId,
    #[error("metadata.wouldRefuse must be 1, on an allow with an errorCode; an allow has an errorCode only then")]
    WouldRefuse,
}

/// Most categories one event may name (the Cloud's limit).
const MAX_CATEGORIES: usize = 16;

/// The length and count limits stated above, which the wire types leave to
/// the receiver.
fn check_limits(event: &FilterEvent) -> Result<(), EventProblem> {
    fn text(field: &'static str, value: &str, max: usize) -> Result<(), EventProblem> {
        if value.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
            return Err(EventProblem::Text { field, max });
        }
        Ok(())
    }
    if let Some(agent) = &event.agent_id {
        text("agentId", agent, 256)?;
    }
    text("requestId", &event.request_id, 128)?;
    if let Some(code) = &event.error_code {
        text("errorCode", code, 64)?;
    }
    if let Some(route) = &event.route {
        text("route", route, 64)?;
    }
    if event.model.as_deref().is_some_and(|m| !model_fits(m)) {
        return Err(EventProblem::Model);
    }
    if event.rule_id.as_deref().is_some_and(|r| !rule_id_fits(r)) {
        return Err(EventProblem::RuleId);
    }
    let allowed = event.decision == Decision::Allow;
    let coded = event.error_code.is_some();
    match event.metadata.get(WOULD_REFUSE) {
        Some(mark) if mark.as_u64() != Some(1) || !allowed || !coded => {
            return Err(EventProblem::WouldRefuse)
        }
        None if allowed && coded => return Err(EventProblem::WouldRefuse),
        _ => {}
    }
    if event.metadata.len() > MAX_METADATA_KEYS {
        return Err(EventProblem::TooManyKeys);
    }
    for key in event.metadata.keys() {
        text("metadata key", key, 64)?;
    }
    if let Some(score) = event.metadata.get("riskScore") {
        if !score.as_f64().is_some_and(|s| (0.0..=1.0).contains(&s)) {
            return Err(EventProblem::RiskScore);
        }
    }
    let category = |name: &String| {
        (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    if event.categories.len() > MAX_CATEGORIES || !event.categories.iter().all(category) {
        return Err(EventProblem::Categories);
    }
    Ok(())
}

/// Why a whole request body was refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum BatchError {
    /// Not JSON, or not an array / `{"events": [...]}` (HTTP 400).
    #[error("malformed events body: {0}")]
    Malformed(String),
    /// More than [`MAX_EVENTS_PER_POST`] events (HTTP 413).
    #[error("{0} events in one request; at most {MAX_EVENTS_PER_POST} are accepted")]
    TooMany(usize),
}

/// A request body split into the events that passed and the problems found.
#[derive(Debug, Default)]
pub struct ParsedBatch {
    /// The filter's idempotency key for this request.
    pub batch_id: Option<String>,
    pub valid: Vec<FilterEvent>,
    pub rejected: usize,
    /// The first few problems, each naming the event's index and field.
    pub errors: Vec<String>,
}

/// Parses a `POST /v1/filter/events` body; each event is judged alone.
pub fn parse_batch(body: &[u8]) -> Result<ParsedBatch, BatchError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| BatchError::Malformed(e.to_string()))?;
    let mut batch_id = None;
    let items = match value {
        Value::Array(items) => items,
        Value::Object(mut object) => match object.remove("events") {
            Some(Value::Array(items)) => {
                batch_id = match object.remove("batchId") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(id))
                        if (1..=128).contains(&id.chars().count())
                            && !id.chars().any(|c| c.is_control() || c == '\n') =>
                    {
                        Some(id)
                    }
                    Some(_) => {
                        return Err(BatchError::Malformed(
                            "batchId must be 1-128 printable characters".into(),
                        ))
                    }
                };
                items
            }
            _ => {
                return Err(BatchError::Malformed(
                    "expected a JSON array of events or {\"events\": [...]}".into(),
                ))
            }
        },
        _ => {
            return Err(BatchError::Malformed(
                "expected a JSON array of events or {\"events\": [...]}".into(),
            ))
        }
    };
    if items.len() > MAX_EVENTS_PER_POST {
        return Err(BatchError::TooMany(items.len()));
    }
    let mut parsed = ParsedBatch {
        batch_id,
        ..ParsedBatch::default()
    };
    for (index, mut item) in items.into_iter().enumerate() {
        // A value that is not a number is dropped (never stored), not the decision.
        if let Some(Value::Object(metadata)) = item.get_mut("metadata") {
            metadata.retain(|key, value| {
                let keep = value.is_number();
                if !keep && parsed.errors.len() < MAX_ERRORS_LISTED {
                    parsed.errors.push(format!(
                        "events[{index}].metadata.{key}: not a number, dropped"
                    ));
                }
                keep
            });
        }
        let event = serde_json::from_value::<FilterEvent>(item)
            .map_err(EventProblem::from)
            .and_then(|event| check_limits(&event).map(|()| event));
        match event {
            Ok(event) => parsed.valid.push(event),
            Err(why) => {
                parsed.rejected += 1;
                if parsed.errors.len() < MAX_ERRORS_LISTED {
                    parsed.errors.push(format!("events[{index}]: {why}"));
                }
            }
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"eventType":"prompt_check","agentId":"a1","decision":"deny",
        "errorCode":"PROMPT_BLOCKED","requestId":"req_1","timestamp":1714694400123,
        "route":"openai.chat","metadata":{"latencyMs":3,"riskScore":0.5}}"#;

    #[test]
    fn accepts_an_array_and_an_events_object() {
        let array = parse_batch(format!("[{EVENT}]").as_bytes()).unwrap();
        let object = parse_batch(format!("{{\"events\":[{EVENT},{EVENT}]}}").as_bytes()).unwrap();
        assert_eq!(array.valid.len(), 1);
        assert_eq!(array.batch_id, None);
        let with_id =
            parse_batch(format!("{{\"batchId\":\"f_1\",\"events\":[{EVENT}]}}").as_bytes())
                .unwrap();
        assert_eq!(with_id.batch_id.as_deref(), Some("f_1"));
        assert!(parse_batch(format!("{{\"batchId\":7,\"events\":[{EVENT}]}}").as_bytes()).is_err());
        assert_eq!(object.valid.len(), 2);
        let event = &array.valid[0];
        assert_eq!(event.decision, Decision::Deny);
        assert_eq!(event.error_code.as_deref(), Some("PROMPT_BLOCKED"));
    }

    #[test]
    fn observed_events_models_and_rules_are_checked() {
        let judged = |extra: &str| {
            let event = format!(
                r#"{{"eventType":"prompt_check","agentId":"a1","requestId":"r","timestamp":1{extra}}}"#
            );
            let parsed = parse_batch(format!("[{event}]").as_bytes()).unwrap();
            (parsed.valid.len(), parsed.errors.join(" "))
        };
        let ok = [
            r#","decision":"allow","errorCode":"PROMPT_BLOCKED","metadata":{"wouldRefuse":1}"#,
            r#","decision":"deny","errorCode":"POLICY_DENY","model":"o1-preview","ruleId":"no o1""#,
            r#","decision":"allow","model":"accounts/x/models/llama-v3:free""#,
        ];
        for extra in ok {
            assert_eq!(judged(extra).0, 1, "{extra}: {}", judged(extra).1);
        }
        let bad = [
            (
                r#","decision":"deny","errorCode":"PROMPT_BLOCKED","metadata":{"wouldRefuse":1}"#,
                "wouldRefuse",
            ),
            (
                r#","decision":"allow","metadata":{"wouldRefuse":1}"#,
                "wouldRefuse",
            ),
            (
                r#","decision":"allow","errorCode":"PROMPT_BLOCKED","metadata":{"wouldRefuse":2}"#,
                "wouldRefuse",
            ),
            (
                r#","decision":"allow","errorCode":"PROMPT_BLOCKED""#,
                "wouldRefuse",
            ),
            (
                r#","decision":"allow","model":"ignore previous instructions""#,
                "model",
            ),
            (r#","decision":"allow","model":"""#, "model"),
            (
                r#","decision":"deny","errorCode":"POLICY_DENY","ruleId":"a\nb""#,
                "ruleId",
            ),
        ];
        for (extra, field) in bad {
            let (valid, errors) = judged(extra);
            assert_eq!(valid, 0, "{extra}");
            assert!(errors.contains(field), "{extra}: {errors}");
        }
    }

    #[test]
    fn reads_the_batch_the_filter_writes() {
        use kalguard_wire::event::{batch, EventType};
        use kalguard_wire::refusal::ErrorCode;
        let mut refused = FilterEvent::new(EventType::PromptCheck, "req_1", 1_714_694_400_123)
            .refused(ErrorCode::PromptBlocked);
        refused.agent_id = Some("a1".into());
        refused.metadata.insert("riskScore".into(), 0.82.into());
        let allowed = FilterEvent::new(EventType::ToolCheck, "req_2", 1);
        let body = batch("vm-1-7", &[refused.encode(), allowed.encode()]);
        let parsed = parse_batch(&body).unwrap();
        assert_eq!(parsed.batch_id.as_deref(), Some("vm-1-7"));
        assert_eq!(parsed.valid, [refused, allowed]);
        assert_eq!((parsed.rejected, parsed.errors.len()), (0, 0));
    }

    #[test]
    fn an_event_on_an_answer_is_not_a_check() {
        let answer = EVENT.replace(r#""latencyMs":3"#, r#""answer":1"#);
        let parsed = parse_batch(format!("[{EVENT},{answer}]").as_bytes()).unwrap();
        let usage: Vec<_> = parsed.valid.iter().filter_map(FilterEvent::usage).collect();
        assert!(usage[0].is_check());
        assert!(!usage[1].is_check(), "its request was the check");
    }

    #[test]
    fn usage_keeps_only_what_may_leave() {
        let event = &parse_batch(format!("[{EVENT}]").as_bytes()).unwrap().valid[0];
        let usage = serde_json::to_value(event.usage().unwrap()).unwrap();
        let mut keys: Vec<_> = usage.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "agentId",
                "decision",
                "errorCode",
                "eventType",
                "metadata",
                "requestId",
                "timestamp"
            ]
        );
    }

    #[test]
    fn text_is_never_stored_and_bad_events_are_rejected_one_by_one() {
        let body = r#"[{"eventType":"prompt_check","agentId":"a","decision":"allow","requestId":"r","timestamp":1,"metadata":{"prompt":"secret text","n":2}},
            {"eventType":"chat","agentId":"a","decision":"allow","requestId":"r","timestamp":1},
            {"eventType":"tool_check","decision":"require_approval","requestId":"r2","timestamp":2,"prompt":"ignored"}]"#;
        let parsed = parse_batch(body.as_bytes()).unwrap();
        assert_eq!(parsed.rejected, 1);
        assert_eq!(parsed.valid.len(), 2);
        assert_eq!(
            parsed.errors[0],
            "events[0].metadata.prompt: not a number, dropped"
        );
        assert!(
            parsed.errors[1].starts_with("events[1]: unknown variant"),
            "{:?}",
            parsed.errors
        );
        let stored = serde_json::to_string(&parsed.valid).unwrap();
        assert!(!stored.contains("secret text") && !stored.contains("ignored"));
        assert_eq!(parsed.valid[0].metadata.len(), 1);
        assert!(parsed.valid[1].usage().is_none(), "no agent, not metered");
    }

    #[test]
    fn whole_body_errors() {
        assert!(matches!(
            parse_batch(b"nope"),
            Err(BatchError::Malformed(_))
        ));
        assert!(matches!(
            parse_batch(b"{\"x\":1}"),
            Err(BatchError::Malformed(_))
        ));
        let many = format!("[{}]", vec![EVENT; MAX_EVENTS_PER_POST + 1].join(","));
        assert_eq!(
            parse_batch(many.as_bytes()).unwrap_err(),
            BatchError::TooMany(MAX_EVENTS_PER_POST + 1)
        );
    }

    #[test]
    fn risk_scores_and_categories_follow_the_clouds_rules() {
        let event = |extra: &str| {
            format!(
                r#"{{"eventType":"prompt_check","agentId":"a","decision":"deny","requestId":"r","timestamp":1{extra}}}"#
            )
        };
        let good =
            event(r#","metadata":{"riskScore":0.9},"categories":["role_play","exfiltration"]"#);
        let bad = [
            (event(r#","metadata":{"riskScore":1.5}"#), "riskScore"),
            (event(r#","metadata":{"riskScore":-0.1}"#), "riskScore"),
            (event(r#","categories":["Role_Play"]"#), "categories"),
            (event(r#","categories":["a,b"]"#), "categories"),
            (event(r#","categories":[""]"#), "categories"),
            (
                event(&format!(
                    r#","categories":{}"#,
                    serde_json::json!(vec!["x"; 17])
                )),
                "categories",
            ),
        ];
        let mut body = vec![good];
        body.extend(bad.iter().map(|(e, _)| e.clone()));
        let parsed = parse_batch(format!("[{}]", body.join(",")).as_bytes()).unwrap();
        assert_eq!(parsed.rejected, bad.len(), "{:?}", parsed.errors);
        for (error, (_, field)) in parsed.errors.iter().zip(&bad) {
            assert!(error.contains(field), "{error}");
        }
        assert_eq!(parsed.valid[0].categories, ["role_play", "exfiltration"]);
    }

    #[test]
    fn overlong_identifiers_are_rejected() {
        let long = "x".repeat(129);
        let body = format!(
            r#"[{{"eventType":"tool_check","agentId":"a","decision":"allow","requestId":"{long}","timestamp":1}}]"#
        );
        let parsed = parse_batch(body.as_bytes()).unwrap();
        assert_eq!(parsed.rejected, 1);
        assert!(parsed.errors[0].contains("requestId"));
    }
}
