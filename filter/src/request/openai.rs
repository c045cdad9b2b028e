//! OpenAI request formats: chat completions, responses, completions, embeddings.

use serde_json::Value;

use super::{array, bad, display, index, key, BadRequest, Joint, Reader, Role};
use crate::firewall::TextForm;

/// Top-level fields the provider keeps or passes on but the model does not
/// read; PII in them is redacted all the same.
const DATA_FIELDS: [&str; 4] = ["metadata", "user", "safety_identifier", "prompt_cache_key"];

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
        reader.begin(Joint::Next);
        content(message.get("content"), role, &key(&at, "content"), reader)?;
        for field in ["refusal", "name"] {
            if let Some(text) = message.get(field).and_then(Value::as_str) {
                reader.text(role, text, key(&at, field));
            }
        }
        for (j, call) in array(message, "tool_calls", &at)?
            .into_iter()
            .flatten()
            .enumerate()
        {
            let call_at = index(&key(&at, "tool_calls"), j);
            function_call(call.get("function"), &key(&call_at, "function"), reader);
            if let Some(input) = call.pointer("/custom/input") {
                reader.strings(
                    Role::ToolCall,
                    input,
                    &key(&key(&call_at, "custom"), "input"),
                );
            }
        }
        function_call(
            message.get("function_call"),
            &key(&at, "function_call"),
            reader,
        );
    }
    for (i, tool) in array(body, "tools", "")?.into_iter().flatten().enumerate() {
        let at = index("/tools", i);
        match tool.get("type").and_then(Value::as_str) {
            Some("custom") => {
                if let Some(custom) = tool.get("custom") {
                    declared_tool(custom, &key(&at, "custom"), reader);
                }
            }
            _ => match tool.get("function") {
                Some(function) => declared_tool(function, &key(&at, "function"), reader),
                None => declared_tool(tool, &at, reader),
            },
        }
    }
    // The legacy form of `tools`: the model is shown them and may call them.
    for (i, function) in array(body, "functions", "")?
        .into_iter()
        .flatten()
        .enumerate()
    {
        declared_tool(function, &index("/functions", i), reader);
    }
    if let Some(format) = body.pointer("/response_format/json_schema") {
        reader.begin(Joint::Apart);
        reader.schema(Role::ToolSpec, format, "/response_format/json_schema");
    }
    // Predicted output: the model is given it as the start of its answer.
    if let Some(prediction) = body.pointer("/prediction/content") {
        reader.begin(Joint::Apart);
        content(
            Some(prediction),
            Role::Assistant,
            "/prediction/content",
            reader,
        )?;
    }
    if body.get("web_search_options").is_some_and(|o| !o.is_null()) {
        reader.provider_tool("web_search".into());
    }
    data(body, &DATA_FIELDS, reader);
    Ok(())
}

/// `fields` of `body`: data for the provider, not text for the model.
fn data(body: &Value, fields: &[&str], reader: &mut Reader) {
    for field in fields {
        if let Some(value) = body.get(*field) {
            reader.begin(Joint::Apart);
            reader.strings(Role::Data, value, &key("", field));
        }
    }
}

/// A message's `content` (or a tool output): absent, a string, or an array of
/// parts, each glued to the one before as the model reads them.
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
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    reader.begin(Joint::Glued);
                }
                content_part(part, role, &index(at, i), reader);
            }
            Ok(())
        }
        Some(_) => Err(bad(format!(
            "`{}` must be a string or an array of content parts",
            display(at)
        ))),
    }
}

/// One content part: its text, or nothing for media; the file name of a file
/// part is shown to the model with it.
fn content_part(part: &Value, role: Role, at: &str, reader: &mut Reader) {
    match part.get("type").and_then(Value::as_str) {
        // Media parts carry no text the firewall can read.
        Some("image_url" | "input_audio" | "input_image") => {}
        Some("file") => {
            if let Some(name) = part.pointer("/file/filename").and_then(Value::as_str) {
                reader.text(role, name, key(&key(at, "file"), "filename"));
            }
        }
        Some("input_file") => {
            if let Some(name) = part.get("filename").and_then(Value::as_str) {
                reader.text(role, name, key(at, "filename"));
            }
        }
        _ => reader.strings(role, part, at),
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

/// A tool the agent runs when the model calls it (`function`, `custom`): its
/// name is known to the answer's gate, and its description, parameter schema
/// and input grammar are shown to the model.
fn declared_tool(tool: &Value, at: &str, reader: &mut Reader) {
    reader.begin(Joint::Apart);
    if let Some(name) = tool.get("name").and_then(Value::as_str) {
        reader.declare_tool(name);
    }
    if let Some(description) = tool.get("description").and_then(Value::as_str) {
        reader.text(Role::ToolSpec, description, key(at, "description"));
    }
    for field in ["parameters", "format"] {
        if let Some(schema) = tool.get(field) {
            reader.schema(Role::ToolSpec, schema, &key(at, field));
        }
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
        Some(Value::String(text)) => {
            reader.begin(Joint::Apart);
            reader.text(Role::User, text, "/input".into());
        }
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                reader.begin(Joint::Next);
                response_item(item, &index("/input", i), reader)?;
            }
        }
        Some(_) => return Err(bad("`input` must be a string or an array of items")),
    }
    // A stored prompt's variables are put into its text as the user's.
    if let Some(variables) = body.pointer("/prompt/variables").and_then(Value::as_object) {
        reader.begin(Joint::Apart);
        for (name, value) in variables {
            let at = key("/prompt/variables", name);
            match value {
                Value::String(text) => reader.text(Role::User, text, at),
                part => content_part(part, Role::User, &at, reader),
            }
        }
    }
    for (i, tool) in array(body, "tools", "")?.into_iter().flatten().enumerate() {
        response_tool(tool, &index("/tools", i), reader)?;
    }
    if let Some(format) = body.pointer("/text/format") {
        reader.begin(Joint::Apart);
        reader.schema(Role::ToolSpec, format, "/text/format");
    }
    data(body, &DATA_FIELDS, reader);
    Ok(())
}

/// One entry of a Responses `tools` list (or of an `additional_tools` item).
fn response_tool(tool: &Value, at: &str, reader: &mut Reader) -> Result<(), BadRequest> {
    let kind = tool
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("function");
    match kind {
        "function" | "custom" => declared_tool(tool, at, reader),
        // Tools the agent runs itself; the answer names them by kind.
        "computer" | "computer_use_preview" | "local_shell" | "shell" | "apply_patch" => {
            reader.declare_tool(client_tool_name(kind));
        }
        "namespace" => {
            reader.begin(Joint::Apart);
            if let Some(description) = tool.get("description").and_then(Value::as_str) {
                reader.text(Role::ToolSpec, description, key(at, "description"));
            }
            for (i, inner) in array(tool, "tools", at)?.into_iter().flatten().enumerate() {
                response_tool(inner, &index(&key(at, "tools"), i), reader)?;
            }
        }
        // A remote MCP server the provider calls for the model, with the
        // agent's credentials: the agent needs the tool capability for it.
        "mcp" => {
            let label = tool
                .get("server_label")
                .and_then(Value::as_str)
                .unwrap_or("");
            reader.provider_tool(format!("mcp:{label}"));
            if let Some(description) = tool.get("server_description").and_then(Value::as_str) {
                reader.begin(Joint::Apart);
                reader.text(Role::ToolSpec, description, key(at, "server_description"));
            }
        }
        _ => {
            if kind.starts_with("web_search") {
                reader.provider_tool("web_search".into());
            }
            // Hosted tools (file search, code interpreter, image generation)
            // and kinds added later: any text they carry is read.
            reader.begin(Joint::Apart);
            reader.strings(Role::ToolSpec, tool, at);
        }
    }
    Ok(())
}

/// The name the answer's gate knows a built-in client tool by: its kind, as in
/// `tool:execute:<name>` (`computer_use_preview` is the computer tool).
pub(crate) fn client_tool_name(kind: &str) -> &str {
    match kind {
        "computer_use_preview" => "computer",
        other => other,
    }
}

fn response_item(item: &Value, at: &str, reader: &mut Reader) -> Result<(), BadRequest> {
    match item.get("type").and_then(Value::as_str) {
        Some("function_call" | "custom_tool_call" | "mcp_call" | "mcp_approval_request") => {
            function_call(Some(item), at, reader);
            if let Some(input) = item.get("input") {
                reader.strings(Role::ToolCall, input, &key(at, "input"));
            }
            for field in ["output", "error"] {
                if let Some(output) = item.get(field) {
                    reader.strings(Role::ToolResult, output, &key(at, field));
                }
            }
            Ok(())
        }
        Some("function_call_output" | "custom_tool_call_output") => content(
            item.get("output"),
            Role::ToolResult,
            &key(at, "output"),
            reader,
        ),
        Some("additional_tools") => {
            for (i, tool) in array(item, "tools", at)?.into_iter().flatten().enumerate() {
                response_tool(tool, &index(&key(at, "tools"), i), reader)?;
            }
            Ok(())
        }
        // Tools an MCP server listed earlier: the model read their descriptions.
        Some("mcp_list_tools") => {
            if let Some(tools) = item.get("tools") {
                reader.schema(Role::ToolSpec, tools, &key(at, "tools"));
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

/// `POST /v1/completions`: the `prompt`, and the `suffix` the model completes
/// towards.
pub(super) fn completions(body: &Value, reader: &mut Reader) -> Result<(), BadRequest> {
    prompt_field(body, "prompt", reader)?;
    if let Some(suffix) = body.get("suffix").and_then(Value::as_str) {
        reader.begin(Joint::Next);
        reader.text(Role::User, suffix, "/suffix".into());
    }
    data(body, &["user"], reader);
    Ok(())
}

/// `POST /v1/embeddings`: the `input`.
pub(super) fn embeddings(body: &Value, reader: &mut Reader) -> Result<(), BadRequest> {
    prompt_field(body, "input", reader)?;
    data(body, &["user"], reader);
    Ok(())
}

/// `prompt` or `input`: a string or an array of strings, each a text of its
/// own. Token-ID arrays cannot be read as text, so they are refused rather
/// than forwarded unchecked.
fn prompt_field(body: &Value, field: &str, reader: &mut Reader) -> Result<(), BadRequest> {
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
                    Value::String(text) => {
                        reader.begin(Joint::Next);
                        reader.text(Role::User, text, index(&at, i));
                    }
                    Value::Number(_) | Value::Array(_) => return Err(token_ids()),
                    _ => return Err(bad(format!("`{field}[{i}]` must be a string"))),
                }
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
            {"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"data:x"}}]},
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
            [(Role::User, "hidden".into())]
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
