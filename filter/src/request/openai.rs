//! OpenAI request formats: chat completions, responses, completions, embeddings.

use serde_json::Value;

use super::{array, bad, display, index, key, BadRequest, Reader, Role};
use crate::firewall::TextForm;

/// `POST /v1/chat/completions`.
pub(super) fn chat(body: &Value, reader: &mut Reader) -> Result<(), BadRequest> {
    let messages =
        array(body, "messages", "")?.ok_or_else(|| bad("`messages` must be an array"))?;
    for (i, message) in messages.iter().enumerate() {
        let at = index("/messages", i);
        let role = match message.get("role").and_then(Value::as_str) {
            Some("system" | "developer") => Role::System,
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            Some("tool" | "function") => Role::ToolResult,
            _ => {
                return Err(bad(format!(
                    "`{}.role` must be system, developer, user, assistant or tool",
                    display(&at)
                )))
            }
        };
        content(message.get("content"), role, &key(&at, "content"), reader)?;
        if let Some(refusal) = message.get("refusal").and_then(Value::as_str) {
            reader.text(role, refusal, key(&at, "refusal"));
        }
        for (j, call) in array(message, "tool_calls", &at)?
            .into_iter()
            .flatten()
            .enumerate()
        {
            function_call(
                call.get("function"),
                &key(&index(&key(&at, "tool_calls"), j), "function"),
                reader,
            );
        }
        function_call(
            message.get("function_call"),
            &key(&at, "function_call"),
            reader,
        );
    }
    for (i, tool) in array(body, "tools", "")?.into_iter().flatten().enumerate() {
        let at = key(&index("/tools", i), "function");
        if let Some(function) = tool.get("function") {
            declared_tool(function, &at, reader);
        }
    }
    Ok(())
}

/// A chat message's `content`: absent, a string, or an array of parts.
fn content(
    content: Option<&Value>,
    role: Role,
    at: &str,
    reader: &mut Reader,
) -> Result<(), BadRequest> {
    match content {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(text)) => {
            reader.text(role, text, at.to_owned());
            Ok(())
        }
        Some(Value::Array(parts)) => {
            // Every string of every part, media parts included (an image URL
            // can carry a key); only provably binary payloads are skipped.
            for (i, part) in parts.iter().enumerate() {
                reader.strings(role, part, &index(at, i));
            }
            Ok(())
        }
        Some(_) => Err(bad(format!(
            "`{}` must be a string or an array of content parts",
            display(at)
        ))),
    }
}

/// A replayed tool call: its arguments are text the model wrote for a tool, as a
/// string of JSON text (read through its escapes) or as JSON.
fn function_call(function: Option<&Value>, at: &str, reader: &mut Reader) {
    match function.and_then(|f| f.get("arguments")) {
        Some(Value::String(arguments)) => reader.text_of_form(
            Role::ToolCall,
            arguments,
            key(at, "arguments"),
            TextForm::Json,
        ),
        Some(arguments) => reader.strings(Role::ToolCall, arguments, &key(at, "arguments")),
        None => {}
    }
}

fn declared_tool(function: &Value, at: &str, reader: &mut Reader) {
    if let Some(name) = function.get("name").and_then(Value::as_str) {
        reader.declare_tool(name);
    }
    if let Some(description) = function.get("description").and_then(Value::as_str) {
        reader.text(Role::ToolSpec, description, key(at, "description"));
    }
}

/// `POST /v1/responses`.
pub(super) fn responses(body: &Value, reader: &mut Reader) -> Result<(), BadRequest> {
    if let Some(instructions) = body.get("instructions") {
        match instructions {
            Value::String(text) => reader.text(Role::System, text, "/instructions".into()),
            Value::Null => {}
            _ => return Err(bad("`instructions` must be a string")),
        }
    }
    match body.get("input") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => reader.text(Role::User, text, "/input".into()),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                response_item(item, &index("/input", i), reader)?;
            }
        }
        Some(_) => return Err(bad("`input` must be a string or an array of items")),
    }
    for (i, tool) in array(body, "tools", "")?.into_iter().flatten().enumerate() {
        declared_tool(tool, &index("/tools", i), reader);
    }
    Ok(())
}

fn response_item(item: &Value, at: &str, reader: &mut Reader) -> Result<(), BadRequest> {
    match item.get("type").and_then(Value::as_str) {
        Some("function_call" | "custom_tool_call") => {
            function_call(Some(item), at, reader);
            if let Some(input) = item.get("input") {
                reader.strings(Role::ToolCall, input, &key(at, "input"));
            }
            Ok(())
        }
        Some("function_call_output" | "custom_tool_call_output") => {
            if let Some(output) = item.get("output") {
                reader.strings(Role::ToolResult, output, &key(at, "output"));
            }
            Ok(())
        }
        None | Some("message") => {
            let role = match item.get("role").and_then(Value::as_str) {
                Some("system" | "developer") => Role::System,
                Some("user") => Role::User,
                Some("assistant") => Role::Assistant,
                _ => {
                    return Err(bad(format!(
                        "`{}.role` must be system, developer, user or assistant",
                        display(at)
                    )))
                }
            };
            content(item.get("content"), role, &key(at, "content"), reader)
        }
        // Reasoning summaries, tool outputs of hosted tools, and item types added
        // later: read every string, so nothing new slips past unread.
        Some(_) => {
            reader.strings(Role::ToolResult, item, at);
            Ok(())
        }
    }
}

/// `POST /v1/completions` (`prompt`) and `POST /v1/embeddings` (`input`): a
/// string or an array of strings. Token-ID arrays cannot be read as text, so
/// they are refused rather than forwarded unchecked.
pub(super) fn prompt_field(
    body: &Value,
    field: &str,
    reader: &mut Reader,
) -> Result<(), BadRequest> {
    let at = key("", field);
    let token_ids = || {
        bad(format!(
            "`{field}` given as token IDs cannot be inspected; send text instead"
        ))
    };
    match body.get(field) {
        None | Some(Value::Null) => Err(bad(format!("`{field}` is required"))),
        Some(Value::String(text)) => {
            reader.text(Role::User, text, at);
            Ok(())
        }
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(text) => reader.text(Role::User, text, index(&at, i)),
                    Value::Number(_) | Value::Array(_) => return Err(token_ids()),
                    _ => return Err(bad(format!("`{field}[{i}]` must be a string"))),
                }
            }
            if let Some(suffix) = body.get("suffix").and_then(Value::as_str) {
                reader.text(Role::User, suffix, "/suffix".into());
            }
            Ok(())
        }
        Some(_) => Err(bad(format!(
            "`{field}` must be a string or an array of strings"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use crate::request::{parse, Role};
    use crate::route::Format;

    fn texts(format: Format, body: &str) -> Vec<(Role, String)> {
        parse(format, body.as_bytes())
            .unwrap()
            .segments
            .into_iter()
            .map(|s| (s.role, s.text))
            .collect()
    }

    fn error(format: Format, body: &str) -> String {
        parse(format, body.as_bytes()).unwrap_err().0
    }

    #[test]
    fn chat_reads_every_role_and_part() {
        let body = r#"{"model":"gpt-4o","stream":true,"messages":[
            {"role":"system","content":"be brief"},
            {"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgoAAAANSUhEUg"}}]},
            {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"search","arguments":"{\"q\":\"x\"}"}}]},
            {"role":"tool","tool_call_id":"c1","content":"result text"}],
            "tools":[{"type":"function","function":{"name":"search","description":"web search"}}]}"#;
        let req = parse(Format::OpenAiChat, body.as_bytes()).unwrap();
        assert_eq!(req.model.as_deref(), Some("gpt-4o"));
        assert!(req.stream);
        assert_eq!(req.declared_tools, ["search"]);
        assert_eq!(
            texts(Format::OpenAiChat, body),
            [
                (Role::System, "be brief".into()),
                (Role::User, "look".into()),
                (Role::ToolCall, r#"{"q":"x"}"#.into()),
                (Role::ToolResult, "result text".into()),
                (Role::ToolSpec, "web search".into()),
            ]
        );
    }

    #[test]
    fn chat_rejects_what_it_cannot_read() {
        assert_eq!(
            error(Format::OpenAiChat, r#"{"model":"m"}"#),
            "`messages` must be an array"
        );
        assert_eq!(
            error(Format::OpenAiChat, r#"{"messages":{}}"#),
            "`messages` must be an array"
        );
        assert_eq!(
            error(
                Format::OpenAiChat,
                r#"{"messages":[{"role":"user","content":5}]}"#
            ),
            "`messages[0].content` must be a string or an array of content parts"
        );
        assert!(error(
            Format::OpenAiChat,
            r#"{"messages":[{"role":"hacker","content":"x"}]}"#
        )
        .contains("role"));
        assert_eq!(
            error(Format::OpenAiChat, r#"["messages"]"#),
            "`messages` must be an array"
        );
    }

    #[test]
    fn unknown_content_parts_are_still_read() {
        let body = r#"{"messages":[{"role":"user","content":[{"type":"future_part","payload":{"note":"hidden"}}]}]}"#;
        assert_eq!(
            texts(Format::OpenAiChat, body),
            [
                (Role::User, "hidden".into()),
                (Role::User, "future_part".into())
            ]
        );
    }

    #[test]
    fn responses_reads_instructions_items_and_tool_outputs() {
        let body = r#"{"model":"gpt-4.1","instructions":"sys","input":[
            {"role":"user","content":[{"type":"input_text","text":"hello"}]},
            {"type":"function_call","call_id":"c","name":"f","arguments":"{}"},
            {"type":"function_call_output","call_id":"c","output":"tool said"}],
            "tools":[{"type":"function","name":"f","description":"does f"}]}"#;
        let req = parse(Format::OpenAiResponses, body.as_bytes()).unwrap();
        assert_eq!(req.declared_tools, ["f"]);
        assert_eq!(
            texts(Format::OpenAiResponses, body),
            [
                (Role::System, "sys".into()),
                (Role::User, "hello".into()),
                (Role::ToolCall, "{}".into()),
                (Role::ToolResult, "tool said".into()),
                (Role::ToolSpec, "does f".into()),
            ]
        );
        assert_eq!(
            texts(Format::OpenAiResponses, r#"{"input":"hi"}"#),
            [(Role::User, "hi".into())]
        );
        assert!(error(Format::OpenAiResponses, r#"{"input":7}"#).contains("`input`"));
    }

    #[test]
    fn completions_and_embeddings_refuse_token_ids() {
        assert_eq!(
            texts(Format::OpenAiCompletions, r#"{"prompt":["a","b"]}"#).len(),
            2
        );
        assert_eq!(
            texts(Format::OpenAiEmbeddings, r#"{"input":"text"}"#),
            [(Role::User, "text".into())]
        );
        assert!(error(Format::OpenAiEmbeddings, r#"{"input":[1,2,3]}"#).contains("token IDs"));
        assert!(error(Format::OpenAiEmbeddings, r#"{"input":[[1,2],[3]]}"#).contains("token IDs"));
        assert_eq!(
            error(Format::OpenAiCompletions, r#"{"model":"m"}"#),
            "`prompt` is required"
        );
    }
}
