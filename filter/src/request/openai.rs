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
        reader.unknown_members(role, message, &at, MESSAGE_FIELDS);
    }
    for (i, tool) in array(body, "tools", "")?.into_iter().flatten().enumerate() {
        let at = index("/tools", i);
        match (tool.get("function"), tool.get("custom")) {
            (Some(function), _) => declared_tool(function, &key(&at, "function"), reader),
            (None, Some(custom)) => declared_tool(custom, &key(&at, "custom"), reader),
            // Another kind, as a compatible server may take the Responses
            // API's (an `mcp` server): read as there.
            (None, None) => response_tool(tool, &at, reader)?,
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
    if let Some(options) = body.get("web_search_options").filter(|o| !o.is_null()) {
        reader.provider_tool("web_search".into());
        reader.begin(Joint::Apart);
        reader.strings(Role::Data, options, "/web_search_options");
    }
    data(body, &DATA_FIELDS, reader);
    reader.unknown_members(Role::User, body, "", CHAT_FIELDS);
    Ok(())
}

/// Chat message fields read above, or that carry no text. Any other (a
/// compatible server's `reasoning_content`) is read as the message's text.
const MESSAGE_FIELDS: &[&str] = &[
    "role",
    "content",
    "name",
    "refusal",
    "tool_calls",
    "function_call",
    "tool_call_id",
    "audio",
];

/// Chat fields read above, or that carry no text: IDs, enums, numbers, and
/// stop sequences (matched against the answer, never shown to the model).
const CHAT_FIELDS: &[&str] = &[
    "messages",
    "tools",
    "functions",
    "response_format",
    "prediction",
    "web_search_options",
    "metadata",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "model",
    "stream",
    "stream_options",
    "temperature",
    "top_p",
    "n",
    "max_tokens",
    "max_completion_tokens",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "seed",
    "stop",
    "tool_choice",
    "parallel_tool_calls",
    "function_call",
    "modalities",
    "audio",
    "reasoning_effort",
    "service_tier",
    "store",
    "verbosity",
    "prompt_cache_retention",
];

/// Responses fields read here, or that carry no text.
const RESPONSES_FIELDS: &[&str] = &[
    "instructions",
    "input",
    "prompt",
    "tools",
    "text",
    "metadata",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "model",
    "stream",
    "stream_options",
    "temperature",
    "top_p",
    "max_output_tokens",
    "max_tool_calls",
    "parallel_tool_calls",
    "tool_choice",
    "truncation",
    "store",
    "background",
    "include",
    "reasoning",
    "service_tier",
    "top_logprobs",
    "previous_response_id",
    "conversation",
    "context_management",
    "prompt_cache_retention",
];

/// Completions fields read here, or that carry no text.
const COMPLETIONS_FIELDS: &[&str] = &[
    "prompt",
    "suffix",
    "user",
    "model",
    "max_tokens",
    "temperature",
    "top_p",
    "n",
    "stream",
    "stream_options",
    "logprobs",
    "echo",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "best_of",
    "logit_bias",
    "seed",
];

/// Embeddings fields read here, or that carry no text.
const EMBEDDINGS_FIELDS: &[&str] = &["input", "user", "model", "encoding_format", "dimensions"];

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

/// One content part.
fn content_part(part: &Value, role: Role, at: &str, reader: &mut Reader) {
    // Every string of every part, media parts included (an image URL, a file's
    // name or ID can carry a key); only provably binary payloads (an image,
    // audio or PDF in base64) are skipped, by `Reader::strings`.
    reader.strings(role, part, at);
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
    reader.unknown_members(Role::User, body, "", RESPONSES_FIELDS);
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
    reader.unknown_members(Role::User, body, "", COMPLETIONS_FIELDS);
    Ok(())
}

/// `POST /v1/embeddings`: the `input`.
pub(super) fn embeddings(body: &Value, reader: &mut Reader) -> Result<(), BadRequest> {
    prompt_field(body, "input", reader)?;
    data(body, &["user"], reader);
    reader.unknown_members(Role::User, body, "", EMBEDDINGS_FIELDS);
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

/// Every field of the OpenAI formats that carries text, one body each: the
/// text `T` read with the role it is judged as.
#[cfg(test)]
mod fields {
    use crate::request::{parse, Joint, Role, Slot};
    use crate::route::Format;

    fn roles_of_t(format: Format, body: &str) -> Vec<Role> {
        let req = parse(format, body.as_bytes()).unwrap();
        req.segments
            .iter()
            .filter(|s| s.text == "T")
            .map(|s| {
                assert_eq!(
                    req.body.pointer(&s.pointer).and_then(|v| v.as_str()),
                    (s.slot == Slot::Value).then_some("T"),
                    "{body}"
                );
                s.role
            })
            .collect()
    }

    #[test]
    fn every_chat_field_the_model_reads_is_read() {
        let m = r#""messages":[{"role":"user","content":"hi"}]"#;
        let cases = [
            (r#"{"messages":[{"role":"user","content":"T"}]}"#.to_owned(), Role::User),
            (r#"{"messages":[{"role":"developer","content":[{"type":"text","text":"T"}]}]}"#.into(), Role::System),
            (r#"{"messages":[{"role":"user","name":"T","content":"x"}]}"#.into(), Role::User),
            (r#"{"messages":[{"role":"assistant","refusal":"T"}]}"#.into(), Role::Assistant),
            (r#"{"messages":[{"role":"assistant","content":[{"type":"refusal","refusal":"T"}]}]}"#.into(), Role::Assistant),
            (r#"{"messages":[{"role":"user","content":[{"type":"file","file":{"filename":"T","file_data":"QUJD"}}]}]}"#.into(), Role::User),
            (r#"{"messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"custom","custom":{"name":"f","input":"T"}}]}]}"#.into(), Role::ToolCall),
            (r#"{"messages":[{"role":"function","name":"f","content":"T"}]}"#.into(), Role::ToolResult),
            (format!(r#"{{{m},"tools":[{{"type":"function","function":{{"name":"f","description":"T"}}}}]}}"#), Role::ToolSpec),
            (format!(r#"{{{m},"tools":[{{"type":"function","function":{{"name":"f","parameters":{{"type":"object","properties":{{"q":{{"type":"string","description":"T"}}}}}}}}}}]}}"#), Role::ToolSpec),
            (format!(r#"{{{m},"tools":[{{"type":"function","function":{{"name":"f","parameters":{{"properties":{{"T":{{"type":"string"}}}}}}}}}}]}}"#), Role::ToolSpec),
            (format!(r#"{{{m},"tools":[{{"type":"custom","custom":{{"name":"f","description":"T"}}}}]}}"#), Role::ToolSpec),
            (format!(r#"{{{m},"tools":[{{"type":"custom","custom":{{"name":"f","format":{{"type":"grammar","grammar":{{"syntax":"lark","definition":"T"}}}}}}}}]}}"#), Role::ToolSpec),
            (format!(r#"{{{m},"functions":[{{"name":"f","description":"T"}}]}}"#), Role::ToolSpec),
            (format!(r#"{{{m},"functions":[{{"name":"f","parameters":{{"properties":{{"q":{{"description":"T"}}}}}}}}]}}"#), Role::ToolSpec),
            (format!(r#"{{{m},"response_format":{{"type":"json_schema","json_schema":{{"name":"s","description":"T"}}}}}}"#), Role::ToolSpec),
            (format!(r#"{{{m},"response_format":{{"type":"json_schema","json_schema":{{"name":"T","schema":{{}}}}}}}}"#), Role::ToolSpec),
            (format!(r#"{{{m},"response_format":{{"type":"json_schema","json_schema":{{"name":"s","schema":{{"properties":{{"a":{{"description":"T"}}}}}}}}}}}}"#), Role::ToolSpec),
            (format!(r#"{{{m},"prediction":{{"type":"content","content":"T"}}}}"#), Role::Assistant),
            (format!(r#"{{{m},"prediction":{{"type":"content","content":[{{"type":"text","text":"T"}}]}}}}"#), Role::Assistant),
            (format!(r#"{{{m},"user":"T"}}"#), Role::Data),
            (format!(r#"{{{m},"safety_identifier":"T"}}"#), Role::Data),
            (format!(r#"{{{m},"prompt_cache_key":"T"}}"#), Role::Data),
            (format!(r#"{{{m},"metadata":{{"k":"T"}}}}"#), Role::Data),
            (format!(r#"{{{m},"web_search_options":{{"user_location":{{"type":"approximate","approximate":{{"city":"T"}}}}}}}}"#), Role::Data),
            // A field the reader does not know, which a compatible server may template in.
            (format!(r#"{{{m},"chat_template_kwargs":{{"x":"T"}}}}"#), Role::User),
            (r#"{"messages":[{"role":"assistant","content":"x","reasoning_content":"T"}]}"#.into(), Role::Assistant),
        ];
        for (body, role) in cases {
            assert_eq!(roles_of_t(Format::OpenAiChat, &body), [role], "{body}");
        }
    }

    #[test]
    fn every_responses_field_the_model_reads_is_read() {
        let cases = [
            (r#"{"instructions":"T"}"#, Role::System),
            (r#"{"input":"T"}"#, Role::User),
            (r#"{"input":[{"role":"user","content":"T"}]}"#, Role::User),
            (
                r#"{"input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"T"}]}]}"#,
                Role::User,
            ),
            (
                r#"{"input":[{"role":"user","content":[{"type":"input_file","filename":"T","file_data":"QUJD"}]}]}"#,
                Role::User,
            ),
            (
                r#"{"input":[{"type":"message","role":"assistant","content":[{"type":"output_text","text":"T","annotations":[]}]}]}"#,
                Role::Assistant,
            ),
            (
                r#"{"input":[{"type":"function_call_output","call_id":"c","output":"T"}]}"#,
                Role::ToolResult,
            ),
            (
                r#"{"input":[{"type":"function_call_output","call_id":"c","output":[{"type":"input_text","text":"T"}]}]}"#,
                Role::ToolResult,
            ),
            (
                r#"{"input":[{"type":"custom_tool_call","call_id":"c","name":"f","input":"T"}]}"#,
                Role::ToolCall,
            ),
            (
                r#"{"input":[{"type":"custom_tool_call_output","call_id":"c","output":"T"}]}"#,
                Role::ToolResult,
            ),
            (
                r#"{"input":[{"type":"mcp_call","id":"m","server_label":"s","name":"f","arguments":"{}","output":"T"}]}"#,
                Role::ToolResult,
            ),
            (
                r#"{"input":[{"type":"mcp_list_tools","id":"l","server_label":"s","tools":[{"name":"f","description":"T","input_schema":{}}]}]}"#,
                Role::ToolSpec,
            ),
            (
                r#"{"input":[{"type":"reasoning","id":"r","summary":[{"type":"summary_text","text":"T"}]}]}"#,
                Role::ToolResult,
            ),
            (
                r#"{"input":[{"type":"local_shell_call_output","id":"o","output":"T"}]}"#,
                Role::ToolResult,
            ),
            (
                r#"{"input":[{"type":"additional_tools","role":"developer","tools":[{"type":"function","name":"f","description":"T"}]}]}"#,
                Role::ToolSpec,
            ),
            (
                r#"{"prompt":{"id":"p","variables":{"city":"T"}}}"#,
                Role::User,
            ),
            (
                r#"{"prompt":{"id":"p","variables":{"city":{"type":"input_text","text":"T"}}}}"#,
                Role::User,
            ),
            (
                r#"{"tools":[{"type":"function","name":"f","description":"T"}]}"#,
                Role::ToolSpec,
            ),
            (
                r#"{"tools":[{"type":"function","name":"f","parameters":{"properties":{"q":{"description":"T"}}}}]}"#,
                Role::ToolSpec,
            ),
            (
                r#"{"tools":[{"type":"custom","name":"f","description":"T"}]}"#,
                Role::ToolSpec,
            ),
            (
                r#"{"tools":[{"type":"namespace","name":"n","description":"T","tools":[]}]}"#,
                Role::ToolSpec,
            ),
            (
                r#"{"tools":[{"type":"namespace","name":"n","description":"d","tools":[{"type":"function","name":"f","description":"T"}]}]}"#,
                Role::ToolSpec,
            ),
            (
                r#"{"tools":[{"type":"mcp","server_label":"s","server_description":"T"}]}"#,
                Role::ToolSpec,
            ),
            (
                r#"{"text":{"format":{"type":"json_schema","name":"s","description":"T","schema":{}}}}"#,
                Role::ToolSpec,
            ),
            (
                r#"{"text":{"format":{"type":"json_schema","name":"s","schema":{"properties":{"a":{"description":"T"}}}}}}"#,
                Role::ToolSpec,
            ),
            (r#"{"user":"T"}"#, Role::Data),
            (r#"{"metadata":{"k":"T"}}"#, Role::Data),
            (r#"{"input":"x","future_field":{"note":"T"}}"#, Role::User),
        ];
        for (body, role) in cases {
            assert_eq!(roles_of_t(Format::OpenAiResponses, body), [role], "{body}");
        }
    }

    #[test]
    fn completions_read_the_suffix_whatever_the_prompt_and_embeddings_the_input() {
        for body in [
            r#"{"prompt":"def f(","suffix":"T"}"#,
            r#"{"prompt":["a","b"],"suffix":"T"}"#,
        ] {
            assert_eq!(
                roles_of_t(Format::OpenAiCompletions, body),
                [Role::User],
                "{body}"
            );
        }
        assert_eq!(
            roles_of_t(Format::OpenAiCompletions, r#"{"prompt":"x","user":"T"}"#),
            [Role::Data]
        );
        assert_eq!(
            roles_of_t(Format::OpenAiEmbeddings, r#"{"input":["a","T"]}"#),
            [Role::User]
        );
        assert_eq!(
            roles_of_t(Format::OpenAiEmbeddings, r#"{"input":"x","user":"T"}"#),
            [Role::Data]
        );
    }

    #[test]
    fn ids_enums_and_numbers_are_not_text() {
        let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],
            "tool_choice":{"type":"function","function":{"name":"f"}},"function_call":{"name":"f"},
            "stop":["x"],"logit_bias":{"50256":-100},"modalities":["text"],"audio":{"voice":"alloy","format":"mp3"},
            "reasoning_effort":"low","service_tier":"auto","seed":1,"n":1,"stream_options":{"include_usage":true}}"#;
        let req = parse(Format::OpenAiChat, body.as_bytes()).unwrap();
        let texts: Vec<_> = req.segments.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["hi"]);
    }

    #[test]
    fn every_declaration_is_known_and_provider_tools_are_named() {
        let chat = r#"{"messages":[],"tools":[{"type":"function","function":{"name":"a"}},{"type":"custom","custom":{"name":"b"}},
            {"type":"mcp","server_label":"github","server_url":"https://mcp.example"}],
            "functions":[{"name":"delete_repo"}],"web_search_options":{}}"#;
        let req = parse(Format::OpenAiChat, chat.as_bytes()).unwrap();
        assert_eq!(req.declared_tools, ["a", "b", "delete_repo"]);
        assert_eq!(req.provider_tools, ["mcp:github", "web_search"]);
        let responses = r#"{"input":[{"type":"additional_tools","role":"developer","tools":[{"type":"function","name":"late"}]}],
            "tools":[{"type":"function","name":"a"},{"type":"custom","name":"b"},
            {"type":"namespace","name":"n","description":"d","tools":[{"type":"function","name":"c"}]},
            {"type":"computer_use_preview","display_width":1,"display_height":1,"environment":"linux"},
            {"type":"local_shell"},{"type":"shell"},{"type":"apply_patch"},
            {"type":"mcp","server_label":"github","server_url":"https://mcp.example","authorization":"secret"},
            {"type":"web_search"},{"type":"file_search","vector_store_ids":["vs"]},{"type":"code_interpreter","container":{"type":"auto"}}]}"#;
        let req = parse(Format::OpenAiResponses, responses.as_bytes()).unwrap();
        assert_eq!(
            req.declared_tools,
            [
                "late",
                "a",
                "b",
                "c",
                "computer",
                "local_shell",
                "shell",
                "apply_patch"
            ]
        );
        assert_eq!(req.provider_tools, ["mcp:github", "web_search"]);
        assert!(!req.segments.iter().any(|s| s.text == "secret"));
        assert!(!req.stored_tools);
        let stored = parse(
            Format::OpenAiResponses,
            br#"{"previous_response_id":"resp_1","input":"hi"}"#,
        )
        .unwrap();
        assert!(stored.stored_tools);
    }

    #[test]
    fn parts_of_a_message_are_glued_and_messages_follow() {
        let body = r#"{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgoAAAANSUhEUg"}},{"type":"text","text":"b"}]},
            {"role":"user","content":"c"}],"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"properties":{"p":{"description":"e"}}}}}]}"#;
        let req = parse(Format::OpenAiChat, body.as_bytes()).unwrap();
        let joints: Vec<_> = req
            .segments
            .iter()
            .map(|s| (s.text.as_str(), s.joint))
            .collect();
        assert_eq!(
            joints,
            [
                ("a", Joint::Next),
                ("b", Joint::Glued),
                ("c", Joint::Next),
                ("d", Joint::Apart),
                ("p", Joint::Next),
                ("e", Joint::Next),
            ]
        );
    }
}
