//! The compatibility check API, with the original sidecar's shapes:
//! `POST /v1/prompt/check` (alias `/v1/llm/check`), `POST /v1/tool/check`,
//! `GET /health`. Agents built on the KalGuard SDK call these directly.

use serde_json::{json, Map, Value};

use crate::request::{bad, BadRequest, Joint, Role, Segment};

/// A `POST /v1/prompt/check` body: `{"messages":[{"role","content","name"?}]}`.
pub fn prompt_check_segments(body: &[u8]) -> Result<Vec<Segment>, BadRequest> {
    let value: Value = serde_json::from_slice(body).map_err(|_| bad("Invalid JSON"))?;
    let messages = value
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| bad("Missing or invalid messages"))?;
    let mut segments = Vec::with_capacity(messages.len());
    for (i, message) in messages.iter().enumerate() {
        let (Some(role), Some(content)) = (
            message.get("role").and_then(Value::as_str),
            message.get("content").and_then(Value::as_str),
        ) else {
            return Err(bad("Missing or invalid messages"));
        };
        let role = match role {
            "system" | "developer" => Role::System,
            "assistant" => Role::Assistant,
            "tool" | "function" => Role::ToolResult,
            // The original accepts any role string; an unknown one is scored as a user's.
            _ => Role::User,
        };
        let mut segment =
            Segment::value(role, content.to_owned(), format!("/messages/{i}/content"));
        if i > 0 {
            segment.joint = Joint::Next;
        }
        segments.push(segment);
    }
    Ok(segments)
}

/// The check request's `messages` with the firewall's rewrites applied, for
/// the response's `sanitizedMessages`.
pub fn sanitized_messages(
    body: &[u8],
    segments: &[Segment],
    rewrites: &[(usize, String)],
) -> Value {
    let mut value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    crate::screen::apply_rewrites(&mut value, segments, rewrites);
    value.get("messages").cloned().unwrap_or(Value::Null)
}

/// A `POST /v1/tool/check` body: `{"toolName", "arguments"|"args"}`.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolCheck {
    pub tool: String,
    pub arguments: Map<String, Value>,
}

pub fn parse_tool_check(body: &[u8]) -> Result<ToolCheck, BadRequest> {
    let value: Value = serde_json::from_slice(body).map_err(|_| bad("Invalid JSON"))?;
    let tool = value
        .get("toolName")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("Missing or invalid toolName/arguments"))?;
    let arguments = match value.get("arguments").or_else(|| value.get("args")) {
        Some(Value::Object(map)) => map.clone(),
        None | Some(Value::Null) => Map::new(),
        Some(_) => return Err(bad("Missing or invalid toolName/arguments")),
    };
    Ok(ToolCheck {
        tool: tool.to_owned(),
        arguments,
    })
}

/// The 200 envelope of an allowed check.
pub fn allowed(request_id: &str, data: Value) -> Vec<u8> {
    json!({"allowed": true, "decision": "allow", "message": "OK", "requestId": request_id, "data": data})
        .to_string()
        .into_bytes()
}

/// `GET /health`: answered without a token, so probes need none.
pub fn health(request_id: &str) -> Vec<u8> {
    json!({"status": "ok", "service": "kalguard-filter", "version": env!("CARGO_PKG_VERSION"), "requestId": request_id})
        .to_string()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_check_reads_messages() {
        let segments = prompt_check_segments(
            br#"{"messages":[{"role":"system","content":"s"},{"role":"user","content":"u","name":"bob"}]}"#,
        )
        .unwrap();
        assert_eq!(segments.len(), 2);
        assert_eq!(
            (segments[1].role, segments[1].text.as_str()),
            (Role::User, "u")
        );
    }

    #[test]
    fn prompt_check_rejects_like_the_original() {
        for body in [
            r#"{}"#,
            r#"{"messages":[]}"#,
            r#"{"messages":[{"role":"user"}]}"#,
            r#"{"messages":[{"role":"user","content":[]}]}"#,
        ] {
            assert_eq!(
                prompt_check_segments(body.as_bytes()).unwrap_err().0,
                "Missing or invalid messages"
            );
        }
        assert_eq!(
            prompt_check_segments(b"nope").unwrap_err().0,
            "Invalid JSON"
        );
    }

    #[test]
    fn tool_check_accepts_arguments_or_args() {
        let a = parse_tool_check(br#"{"toolName":"search","arguments":{"q":"x"}}"#).unwrap();
        let b = parse_tool_check(br#"{"toolName":"search","args":{"q":"x"}}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            parse_tool_check(br#"{"toolName":"t"}"#)
                .unwrap()
                .arguments
                .len(),
            0
        );
        assert!(parse_tool_check(br#"{"toolName":""}"#).is_err());
        assert!(parse_tool_check(br#"{"toolName":"t","args":[1]}"#).is_err());
    }

    #[test]
    fn envelopes() {
        let body: Value =
            serde_json::from_slice(&allowed("req_1", json!({"allowed": true}))).unwrap();
        assert_eq!(
            body,
            json!({"allowed":true,"decision":"allow","message":"OK","requestId":"req_1","data":{"allowed":true}})
        );
        let health: Value = serde_json::from_slice(&health("req_2")).unwrap();
        assert_eq!(health["status"], "ok");
    }
}
