//! Anthropic `POST /v1/messages`.

use serde_json::Value;

use super::{array, bad, display, index, key, BadRequest, Reader, Role};

pub(super) fn messages(body: &Value, reader: &mut Reader) -> Result<(), BadRequest> {
    match body.get("system") {
        None | Some(Value::Null) => {}
        Some(system @ (Value::String(_) | Value::Array(_))) => {
            blocks(system, Role::System, "/system", reader)?
        }
        Some(_) => {
            return Err(bad(
                "`system` must be a string or an array of content blocks",
            ))
        }
    }
    let messages =
        array(body, "messages", "")?.ok_or_else(|| bad("`messages` must be an array"))?;
    for (i, message) in messages.iter().enumerate() {
        let at = index("/messages", i);
        let role = match message.get("role").and_then(Value::as_str) {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            _ => {
                return Err(bad(format!(
                    "`{}.role` must be user or assistant",
                    display(&at)
                )))
            }
        };
        match message.get("content") {
            Some(content @ (Value::String(_) | Value::Array(_))) => {
                blocks(content, role, &key(&at, "content"), reader)?
            }
            _ => {
                return Err(bad(format!(
                    "`{}.content` must be a string or an array of content blocks",
                    display(&at)
                )))
            }
        }
    }
    for (i, tool) in array(body, "tools", "")?.into_iter().flatten().enumerate() {
        if let Some(name) = tool.get("name").and_then(Value::as_str) {
            reader.declare_tool(name);
        }
        if let Some(description) = tool.get("description").and_then(Value::as_str) {
            reader.text(
                Role::ToolSpec,
                description,
                key(&index("/tools", i), "description"),
            );
        }
    }
    Ok(())
}

/// A string, or an array of content blocks.
fn blocks(content: &Value, role: Role, at: &str, reader: &mut Reader) -> Result<(), BadRequest> {
    let items = match content {
        Value::String(text) => {
            reader.text(role, text, at.to_owned());
            return Ok(());
        }
        Value::Array(items) => items,
        _ => {
            return Err(bad(format!(
                "`{}` must be a string or an array of content blocks",
                display(at)
            )))
        }
    };
    for (i, block) in items.iter().enumerate() {
        let block_at = index(at, i);
        match block.get("type").and_then(Value::as_str) {
            Some("document") => document(block, role, &block_at, reader),
            Some("tool_use" | "server_tool_use") => {
                if let Some(input) = block.get("input") {
                    reader.strings(Role::ToolCall, input, &key(&block_at, "input"));
                }
            }
            Some("tool_result") => {
                if let Some(content) = block.get("content") {
                    blocks(
                        content,
                        Role::ToolResult,
                        &key(&block_at, "content"),
                        reader,
                    )?;
                }
            }
            // Text, thinking, citations, images (a URL source can carry a key;
            // base64 image data is skipped as binary) and block types added
            // later: every string.
            _ => reader.strings(role, block, &block_at),
        }
    }
    Ok(())
}

/// A document block: plain-text sources are read; base64 PDFs are binary.
fn document(block: &Value, role: Role, at: &str, reader: &mut Reader) {
    let source = block.get("source");
    if source.and_then(|s| s.get("type")).and_then(Value::as_str) == Some("text") {
        if let Some(data) = source.and_then(|s| s.get("data")).and_then(Value::as_str) {
            reader.text(role, data, key(&key(at, "source"), "data"));
        }
    }
    for field in ["title", "context"] {
        if let Some(text) = block.get(field).and_then(Value::as_str) {
            reader.text(role, text, key(at, field));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::request::{parse, Role};
    use crate::route::Format;

    #[test]
    fn messages_read_system_blocks_tools_and_results() {
        let body = r#"{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,
            "system":[{"type":"text","text":"be kind"}],
            "messages":[
              {"role":"user","content":"question"},
              {"role":"assistant","content":[{"type":"text","text":"let me look"},
                 {"type":"tool_use","id":"t1","name":"search","input":{"q":"weather"}}]},
              {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"sunny"}]},
                 {"type":"document","source":{"type":"text","media_type":"text/plain","data":"doc body"}},
                 {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgoAAAANSUhEUg"}}]}],
            "tools":[{"name":"search","description":"find","input_schema":{}}]}"#;
        let req = parse(Format::AnthropicMessages, body.as_bytes()).unwrap();
        assert!(req.stream);
        assert_eq!(req.model.as_deref(), Some("claude-sonnet-4-5"));
        assert_eq!(req.declared_tools, ["search"]);
        let texts: Vec<_> = req
            .segments
            .iter()
            .map(|s| (s.role, s.text.as_str()))
            .collect();
        assert_eq!(
            texts,
            [
                (Role::System, "be kind"),
                (Role::User, "question"),
                (Role::Assistant, "let me look"),
                (Role::ToolCall, "weather"),
                (Role::ToolResult, "sunny"),
                (Role::User, "doc body"),
                (Role::ToolSpec, "find"),
            ]
        );
    }

    #[test]
    fn messages_reject_what_they_cannot_read() {
        let err = |b: &str| {
            parse(Format::AnthropicMessages, b.as_bytes())
                .unwrap_err()
                .0
        };
        assert_eq!(err(r#"{"model":"m"}"#), "`messages` must be an array");
        assert_eq!(
            err(r#"{"messages":[{"role":"user"}]}"#),
            "`messages[0].content` must be a string or an array of content blocks"
        );
        assert_eq!(
            err(r#"{"messages":[{"role":"system","content":"x"}]}"#),
            "`messages[0].role` must be user or assistant"
        );
        assert_eq!(
            err(r#"{"system":5,"messages":[]}"#),
            "`system` must be a string or an array of content blocks"
        );
    }
}
