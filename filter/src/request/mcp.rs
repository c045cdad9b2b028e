//! MCP JSON-RPC over HTTP: which methods a client body calls, and the tool
//! arguments it sends.

use serde_json::Value;

use super::{bad, index, key, BadRequest, Reader, Role};

/// One JSON-RPC message from the MCP client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// The method, or `None` for a client's response to a server request.
    pub method: Option<String>,
    /// The request's `id`; `None` for a notification (or a response).
    pub id: Option<Value>,
    /// For `tools/call`: the tool's name.
    pub tool: Option<String>,
}

/// Reads a JSON-RPC message or a batch of them.
pub(super) fn read(body: &Value, reader: &mut Reader) -> Result<(), BadRequest> {
    match body {
        Value::Array(batch) if !batch.is_empty() => {
            for (i, message) in batch.iter().enumerate() {
                one(message, &index("", i), reader)?;
            }
            Ok(())
        }
        Value::Object(_) => one(body, "", reader),
        _ => Err(bad(
            "MCP body must be a JSON-RPC object or a non-empty batch",
        )),
    }
}

fn one(message: &Value, at: &str, reader: &mut Reader) -> Result<(), BadRequest> {
    if !message.is_object() || message.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(bad("MCP message must be a JSON-RPC 2.0 object"));
    }
    let method = match message.get("method") {
        Some(Value::String(method)) => Some(method.clone()),
        None if message.get("result").is_some() || message.get("error").is_some() => None,
        _ => return Err(bad("MCP message needs a string `method`")),
    };
    let params_at = key(at, "params");
    let tool = if method.as_deref() == Some("tools/call") {
        let params = message.get("params");
        let name = params
            .and_then(|p| p.get("name"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| bad("MCP tools/call needs `params.name`"))?;
        if let Some(arguments) = params.and_then(|p| p.get("arguments")) {
            reader.strings(Role::ToolCall, arguments, &key(&params_at, "arguments"));
        }
        Some(name.to_owned())
    } else {
        // A client's reply to a server request (sampling, elicitation) carries
        // text the server will act on: read it as a tool result.
        if let Some(result) = message.get("result") {
            reader.strings(Role::ToolResult, result, &key(at, "result"));
        }
        None
    };
    let id = method
        .as_ref()
        .and_then(|_| message.get("id"))
        .filter(|id| !id.is_null())
        .cloned();
    reader.mcp_calls.push(Call { method, id, tool });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Call;
    use crate::request::{parse, Role};
    use crate::route::Format;

    #[test]
    fn tools_call_names_the_tool_and_reads_arguments() {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/etc/passwd","n":3}}}"#;
        let req = parse(Format::Mcp, body.as_bytes()).unwrap();
        assert_eq!(
            req.mcp_calls,
            [Call {
                method: Some("tools/call".into()),
                id: Some(serde_json::json!(1)),
                tool: Some("read_file".into())
            }]
        );
        assert_eq!(req.segments.len(), 1);
        assert_eq!(
            (req.segments[0].role, req.segments[0].text.as_str()),
            (Role::ToolCall, "/etc/passwd")
        );
        assert_eq!(req.segments[0].pointer, "/params/arguments/path");
    }

    #[test]
    fn batches_and_other_methods() {
        let body = r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},
                       {"jsonrpc":"2.0","method":"notifications/initialized"},
                       {"jsonrpc":"2.0","id":7,"result":{"content":"sampled text"}}]"#;
        let req = parse(Format::Mcp, body.as_bytes()).unwrap();
        assert_eq!(req.mcp_calls.len(), 3);
        assert_eq!(req.mcp_calls[2].method, None);
        // Requests have IDs; a notification and a response to the server have none.
        let ids: Vec<_> = req.mcp_calls.iter().map(|c| c.id.clone()).collect();
        assert_eq!(ids, [Some(serde_json::json!(1)), None, None]);
        assert_eq!(req.segments[0].role, Role::ToolResult);
    }

    #[test]
    fn malformed_messages_are_refused() {
        let err = |b: &str| parse(Format::Mcp, b.as_bytes()).unwrap_err().0;
        assert!(err(r#"{"id":1,"method":"tools/call"}"#).contains("JSON-RPC 2.0"));
        assert!(
            err(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#)
                .contains("params.name")
        );
        assert!(err(r#"[]"#).contains("non-empty batch"));
        assert!(err(r#""text""#).contains("JSON-RPC"));
        assert!(err(r#"{"jsonrpc":"2.0","id":1}"#).contains("method"));
    }
}
