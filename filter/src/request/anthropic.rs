//! Anthropic `POST /v1/messages`.

use serde_json::Value;

use super::{array, bad, display, index, key, BadRequest, Joint, Reader, Role};

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
            Some("system") => Role::System,
            _ => {
                return Err(bad(format!(
                    "`{}.role` must be user, assistant or system",
                    display(&at)
                )))
            }
        };
        reader.begin(Joint::Next);
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
        reader.unknown_members(role, message, &at, &["role", "content"]);
    }
    for (i, tool) in array(body, "tools", "")?.into_iter().flatten().enumerate() {
        declared_tool(tool, &index("/tools", i), reader);
    }
    // MCP servers the provider calls for the model, with the agent's
    // credentials: the agent needs the tool capability for each.
    for server in array(body, "mcp_servers", "")?.into_iter().flatten() {
        let name = server.get("name").and_then(Value::as_str).unwrap_or("");
        reader.provider_tool(format!("mcp:{name}"));
    }
    for format in ["/output_config/format", "/output_format"] {
        if let Some(schema) = body.pointer(format) {
            reader.begin(Joint::Apart);
            reader.schema(Role::ToolSpec, schema, format);
        }
    }
    if let Some(metadata) = body.get("metadata") {
        reader.begin(Joint::Apart);
        reader.strings(Role::Data, metadata, "/metadata");
    }
    reader.unknown_members(Role::User, body, "", FIELDS);
    Ok(())
}

/// Messages fields read above, or that carry no text: IDs, enums, numbers,
/// MCP server addresses and their credentials, and stop sequences (matched
/// against the answer, never shown to the model).
const FIELDS: &[&str] = &[
    "system",
    "messages",
    "tools",
    "mcp_servers",
    "output_config",
    "output_format",
    "metadata",
    "model",
    "max_tokens",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "tool_choice",
    "thinking",
    "service_tier",
    "container",
    "context_management",
    "inference_geo",
    "speed",
    "cache_control",
    "diagnostics",
];

/// One entry of `tools`: a tool the agent runs (custom tools, and the client
/// tools bash, text editor, computer and memory) is known to the answer's
/// gate; a server tool that reaches outside (web fetch, MCP toolsets) needs
/// the tool capability; every description and schema is shown to the model.
fn declared_tool(tool: &Value, at: &str, reader: &mut Reader) {
    reader.begin(Joint::Apart);
    let kind = tool.get("type").and_then(Value::as_str).unwrap_or("custom");
    let name = tool.get("name").and_then(Value::as_str);
    if kind.starts_with("web_fetch") {
        reader.provider_tool("web_fetch".into());
    } else if kind.starts_with("web_search") {
        reader.provider_tool("web_search".into());
    } else if kind == "mcp_toolset" {
        let server = tool
            .get("mcp_server_name")
            .and_then(Value::as_str)
            .unwrap_or("");
        reader.provider_tool(format!("mcp:{server}"));
    } else if !is_sandboxed_server_tool(kind) {
        if let Some(name) = name {
            reader.declare_tool(name);
        }
    }
    if let Some(description) = tool.get("description").and_then(Value::as_str) {
        reader.text(Role::ToolSpec, description, key(at, "description"));
    }
    for field in ["input_schema", "input_examples"] {
        if let Some(schema) = tool.get(field) {
            reader.schema(Role::ToolSpec, schema, &key(at, field));
        }
    }
}

/// Server tools the provider runs in its own sandbox, reaching no one else.
fn is_sandboxed_server_tool(kind: &str) -> bool {
    kind.starts_with("code_execution") || kind.starts_with("tool_search")
}

/// A string, or an array of content blocks, each glued to the one before as
/// the model reads them (a tool result's blocks are read after the one before).
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
        let kind = block.get("type").and_then(Value::as_str).unwrap_or("");
        if i > 0 {
            reader.begin(if kind.ends_with("tool_result") {
                Joint::Next
            } else {
                Joint::Glued
            });
        }
        match kind {
            // Opaque to the model as text; an image block is read below like
            // any other (a URL source can carry a key; base64 data is skipped
            // as binary).
            "redacted_thinking" | "container_upload" => {}
            "text" => {
                if let Some(text) = block.get("text").and_then(Value::as_str) {
                    reader.text(role, text, key(&block_at, "text"));
                }
                if let Some(citations) = block.get("citations") {
                    reader.strings(role, citations, &key(&block_at, "citations"));
                }
            }
            "thinking" => {
                if let Some(text) = block.get("thinking").and_then(Value::as_str) {
                    reader.text(role, text, key(&block_at, "thinking"));
                }
            }
            "document" => document(block, role, &block_at, reader)?,
            "search_result" => {
                for field in ["title", "source"] {
                    if let Some(text) = block.get(field).and_then(Value::as_str) {
                        reader.text(role, text, key(&block_at, field));
                    }
                }
                if let Some(content) = block.get("content") {
                    reader.begin(Joint::Next);
                    blocks(content, role, &key(&block_at, "content"), reader)?;
                }
            }
            "tool_use" | "server_tool_use" | "mcp_tool_use" => {
                if let Some(input) = block.get("input") {
                    reader.strings(Role::ToolCall, input, &key(&block_at, "input"));
                }
            }
            "tool_result" | "mcp_tool_result" => {
                if let Some(content) = block.get("content") {
                    blocks(
                        content,
                        Role::ToolResult,
                        &key(&block_at, "content"),
                        reader,
                    )?;
                }
            }
            // A fetched page is a document.
            "web_fetch_tool_result" => match block.pointer("/content/content") {
                Some(page) if page.get("type").and_then(Value::as_str) == Some("document") => {
                    document(
                        page,
                        Role::ToolResult,
                        &key(&key(&block_at, "content"), "content"),
                        reader,
                    )?
                }
                _ => reader.strings(Role::ToolResult, block, &block_at),
            },
            // Results of the provider's tools (search, code execution), and
            // block types added later: every string.
            kind if kind.ends_with("tool_result") => {
                reader.strings(Role::ToolResult, block, &block_at)
            }
            _ => reader.strings(role, block, &block_at),
        }
    }
    Ok(())
}

/// A document block: plain-text and content sources are read as the
/// document's text. Other sources (base64, URL, file) are read string by
/// string like any JSON: a PDF in base64 is skipped as binary, while a URL
/// or a base64 payload that is no PDF can still carry a key. What the
/// provider fetches from a URL or file is beyond reach.
fn document(block: &Value, role: Role, at: &str, reader: &mut Reader) -> Result<(), BadRequest> {
    for field in ["title", "context"] {
        if let Some(text) = block.get(field).and_then(Value::as_str) {
            reader.text(role, text, key(at, field));
        }
    }
    let source_at = key(at, "source");
    let source = block.get("source");
    match source.and_then(|s| s.get("type")).and_then(Value::as_str) {
        Some("text") => {
            if let Some(data) = source.and_then(|s| s.get("data")).and_then(Value::as_str) {
                reader.begin(Joint::Next);
                reader.text(role, data, key(&source_at, "data"));
            }
        }
        Some("content") => {
            if let Some(content) = source.and_then(|s| s.get("content")) {
                reader.begin(Joint::Next);
                blocks(content, role, &key(&source_at, "content"), reader)?;
            }
        }
        _ => {
            if let Some(source) = source {
                reader.begin(Joint::Next);
                reader.strings(role, source, &source_at);
            }
        }
    }
    Ok(())
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
            err(r#"{"messages":[{"role":"tool","content":"x"}]}"#),
            "`messages[0].role` must be user, assistant or system"
        );
        assert_eq!(
            err(r#"{"system":5,"messages":[]}"#),
            "`system` must be a string or an array of content blocks"
        );
    }
}

/// Every field of a Messages request that carries text, one body each: the
/// text `T` read with the role it is judged as.
#[cfg(test)]
mod fields {
    use crate::request::{parse, Joint, Role, Slot};
    use crate::route::Format;

    fn roles_of_t(body: &str) -> Vec<Role> {
        let req = parse(Format::AnthropicMessages, body.as_bytes()).unwrap();
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

    fn user(block: &str) -> String {
        format!(r#"{{"messages":[{{"role":"user","content":[{block}]}}]}}"#)
    }

    #[test]
    fn every_messages_field_the_model_reads_is_read() {
        let m = r#""messages":[{"role":"user","content":"hi"}]"#;
        let cases = [
            (format!(r#"{{"system":"T",{m}}}"#), Role::System),
            (format!(r#"{{"system":[{{"type":"text","text":"T","cache_control":{{"type":"ephemeral"}}}}],{m}}}"#), Role::System),
            (r#"{"messages":[{"role":"system","content":"T"}]}"#.to_owned(), Role::System),
            (user(r#"{"type":"text","text":"T"}"#), Role::User),
            (user(r#"{"type":"text","text":"x","citations":[{"type":"char_location","cited_text":"T","document_index":0,"start_char_index":0,"end_char_index":1}]}"#), Role::User),
            (user(r#"{"type":"document","source":{"type":"text","media_type":"text/plain","data":"T"}}"#), Role::User),
            (user(r#"{"type":"document","source":{"type":"content","content":"T"}}"#), Role::User),
            (user(r#"{"type":"document","source":{"type":"content","content":[{"type":"text","text":"T"}]}}"#), Role::User),
            (user(r#"{"type":"document","title":"T","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0xLjQK"}}"#), Role::User),
            (user(r#"{"type":"document","context":"T","source":{"type":"url","url":"https://x"}}"#), Role::User),
            (user(r#"{"type":"search_result","source":"https://x","title":"t","content":[{"type":"text","text":"T"}]}"#), Role::User),
            (user(r#"{"type":"search_result","source":"https://x","title":"T","content":[]}"#), Role::User),
            (user(r#"{"type":"tool_result","tool_use_id":"t","content":"T"}"#), Role::ToolResult),
            (user(r#"{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"T"}]}"#), Role::ToolResult),
            (user(r#"{"type":"tool_result","tool_use_id":"t","content":[{"type":"search_result","source":"s","title":"t","content":[{"type":"text","text":"T"}]}]}"#), Role::ToolResult),
            (user(r#"{"type":"tool_result","tool_use_id":"t","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"T"}}]}"#), Role::ToolResult),
            (user(r#"{"type":"web_fetch_tool_result","tool_use_id":"t","content":{"type":"web_fetch_result","url":"u","content":{"type":"document","source":{"type":"text","media_type":"text/plain","data":"T"}}}}"#), Role::ToolResult),
            (user(r#"{"type":"web_search_tool_result","tool_use_id":"t","content":[{"type":"web_search_result","url":"u","title":"T","encrypted_content":"e"}]}"#), Role::ToolResult),
            (user(r#"{"type":"code_execution_tool_result","tool_use_id":"t","content":{"type":"code_execution_result","stdout":"T","stderr":"","return_code":0,"content":[]}}"#), Role::ToolResult),
            (r#"{"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{"q":"T"}}]}]}"#.into(), Role::ToolCall),
            (r#"{"messages":[{"role":"assistant","content":[{"type":"thinking","thinking":"T","signature":"s"}]}]}"#.into(), Role::Assistant),
            (format!(r#"{{{m},"tools":[{{"name":"f","description":"T","input_schema":{{}}}}]}}"#), Role::ToolSpec),
            (format!(r#"{{{m},"tools":[{{"name":"f","input_schema":{{"type":"object","properties":{{"q":{{"type":"string","description":"T"}}}}}}}}]}}"#), Role::ToolSpec),
            (format!(r#"{{{m},"tools":[{{"name":"f","input_schema":{{"type":"object","properties":{{"T":{{"type":"string"}}}}}}}}]}}"#), Role::ToolSpec),
            (format!(r#"{{{m},"output_config":{{"format":{{"type":"json_schema","schema":{{"properties":{{"a":{{"description":"T"}}}}}}}}}}}}"#), Role::ToolSpec),
            (format!(r#"{{{m},"metadata":{{"user_id":"T"}}}}"#), Role::Data),
            (format!(r#"{{{m},"future_field":["T"]}}"#), Role::User),
            (r#"{"messages":[{"role":"user","content":"x","note":"T"}]}"#.into(), Role::User),
        ];
        for (body, role) in cases {
            assert_eq!(roles_of_t(&body), [role], "{body}");
        }
    }

    #[test]
    fn ids_enums_and_numbers_are_not_text() {
        let body = r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"hi"},
            {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgoAAAANSUhEUg"}},
            {"type":"redacted_thinking","data":"xyz"},{"type":"container_upload","file_id":"f"}]}],
            "tool_choice":{"type":"tool","name":"f"},"stop_sequences":["x"],"thinking":{"type":"enabled","budget_tokens":1024},
            "mcp_servers":[{"type":"url","url":"https://mcp.example","name":"github","authorization_token":"secret"}]}"#;
        let req = parse(Format::AnthropicMessages, body.as_bytes()).unwrap();
        let texts: Vec<_> = req.segments.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["hi"]);
        assert_eq!(req.provider_tools, ["mcp:github"]);
    }

    #[test]
    fn client_tools_are_declared_and_server_tools_that_reach_out_are_named() {
        let body = r#"{"messages":[],"tools":[{"name":"search","input_schema":{}},
            {"type":"bash_20250124","name":"bash"},{"type":"text_editor_20250728","name":"str_replace_based_edit_tool"},
            {"type":"web_search_20250305","name":"web_search"},{"type":"web_fetch_20250910","name":"web_fetch"},
            {"type":"code_execution_20250825","name":"code_execution"},
            {"type":"mcp_toolset","mcp_server_name":"linear"}]}"#;
        let req = parse(Format::AnthropicMessages, body.as_bytes()).unwrap();
        assert_eq!(
            req.declared_tools,
            ["search", "bash", "str_replace_based_edit_tool"]
        );
        assert_eq!(
            req.provider_tools,
            ["web_search", "web_fetch", "mcp:linear"]
        );
    }

    #[test]
    fn blocks_of_a_message_are_glued_and_tool_results_follow() {
        let body = r#"{"messages":[{"role":"user","content":[
            {"type":"tool_result","tool_use_id":"a","content":[{"type":"text","text":"a1"},{"type":"text","text":"a2"}]},
            {"type":"tool_result","tool_use_id":"b","content":"b"},
            {"type":"text","text":"c"},{"type":"text","text":"d"}]}]}"#;
        let req = parse(Format::AnthropicMessages, body.as_bytes()).unwrap();
        let joints: Vec<_> = req
            .segments
            .iter()
            .map(|s| (s.text.as_str(), s.joint))
            .collect();
        assert_eq!(
            joints,
            [
                ("a1", Joint::Next),
                ("a2", Joint::Glued),
                ("b", Joint::Next),
                ("c", Joint::Glued),
                ("d", Joint::Glued),
            ]
        );
    }
}
