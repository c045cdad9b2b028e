//! Request bodies: every provider format read into one model of text segments.
//!
//! The guard and the firewall never look at provider JSON directly: they see
//! [`InspectedRequest`], whose [`Segment`]s say who wrote each piece of text
//! (system, user, tool result, …) and where it sits in the body (a JSON
//! pointer), so a redaction can rewrite it in place, and how it joins the
//! piece before it ([`Joint`]), so the text is judged as the model reads it:
//! parts of one message as one text. A body the filter cannot read is a
//! [`BadRequest`]: nothing unchecked is forwarded. `docs/request-fields.md`
//! lists every field of every format and how it is read.

mod anthropic;
pub mod mcp;
mod openai;
pub mod payload;

use serde_json::Value;
use std::fmt;

use crate::firewall::TextForm;
use crate::route::Format;

/// Who wrote a piece of text, which decides how the firewall treats it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The operator's system or developer prompt.
    System,
    User,
    /// Earlier assistant turns replayed in the conversation.
    Assistant,
    /// Output of a tool, fed back to the model (indirect injection lands here).
    ToolResult,
    /// Arguments of a tool call (an MCP `tools/call` or a replayed call).
    ToolCall,
    /// A tool's declared description and parameter schema, or an answer's
    /// declared format: text the provider shows the model.
    ToolSpec,
    /// Text sent to the provider that the model does not read (metadata,
    /// end-user IDs): PII and secrets in it are redacted; it is not scored.
    Data,
}

/// How a segment's text follows the segment before it, as the model reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Joint {
    /// Another field: judged on its own.
    Apart,
    /// Read right after it as another turn, result or field of the same thing
    /// (consecutive messages, tool results, a tool's description and schema):
    /// scored together, redacted apart.
    Next,
    /// The next part of the same text (content parts of one message, blocks of
    /// one tool result): the model reads them as one string, so they are scored
    /// and redacted as one.
    Glued,
}

/// What of the JSON member at a segment's pointer the text is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// The string value.
    Value,
    /// The member's name (a parameter name in a JSON schema's `properties`).
    Name,
}

/// One piece of text in a request body.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub role: Role,
    pub text: String,
    /// JSON pointer (RFC 6901) of the string in the body.
    pub pointer: String,
    /// Prose, or the JSON text of a replayed tool call's `arguments` string.
    pub form: TextForm,
    pub joint: Joint,
    pub slot: Slot,
}

impl Segment {
    /// The prose string value at `pointer`, on its own.
    pub fn value(role: Role, text: String, pointer: String) -> Segment {
        Segment {
            role,
            text,
            pointer,
            form: TextForm::Prose,
            joint: Joint::Apart,
            slot: Slot::Value,
        }
    }
}

/// A request body read into the common model.
#[derive(Clone, Debug, PartialEq)]
pub struct InspectedRequest {
    pub format: Format,
    /// The parsed body, kept so a redaction can rewrite segments in place.
    pub body: Value,
    pub model: Option<String>,
    pub stream: bool,
    pub segments: Vec<Segment>,
    /// Names of the tools the request offers the model, which the agent
    /// runs when the model calls them.
    pub declared_tools: Vec<String>,
    /// Tools the provider runs for the request, outside the agent (MCP servers,
    /// web fetch and search), named as their capability is: `mcp:<label>`,
    /// `web_fetch`, `web_search`.
    pub provider_tools: Vec<String>,
    /// The JSON-RPC calls of an MCP body (empty for other formats).
    pub mcp_calls: Vec<mcp::Call>,
    /// The request draws on state stored at the provider (a prompt template,
    /// an earlier response, a conversation) that may offer the model tools the
    /// filter cannot see.
    pub stored_tools: bool,
}

/// Why a body could not be read; the message is safe to show the agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadRequest(pub String);

impl fmt::Display for BadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) fn bad(message: impl Into<String>) -> BadRequest {
    BadRequest(message.into())
}

/// Reads `body` as `format`.
pub fn parse(format: Format, body: &[u8]) -> Result<InspectedRequest, BadRequest> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("request body is not valid JSON: {e}")))?;
    let mut reader = Reader::default();
    match format {
        Format::OpenAiChat => openai::chat(&value, &mut reader)?,
        Format::OpenAiResponses => openai::responses(&value, &mut reader)?,
        Format::OpenAiCompletions => openai::completions(&value, &mut reader)?,
        Format::OpenAiEmbeddings => openai::embeddings(&value, &mut reader)?,
        Format::AnthropicMessages => anthropic::messages(&value, &mut reader)?,
        Format::Mcp => mcp::read(&value, &mut reader)?,
        Format::Json => reader.strings(Role::User, &value, ""),
    }
    let model = value
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let stream = value
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(InspectedRequest {
        format,
        model,
        stream,
        segments: reader.segments,
        declared_tools: reader.declared_tools,
        provider_tools: reader.provider_tools,
        mcp_calls: reader.mcp_calls,
        stored_tools: format == Format::OpenAiResponses
            && ["prompt", "previous_response_id", "conversation"]
                .iter()
                .any(|field| value.get(field).is_some_and(|v| !v.is_null())),
        body: value,
    })
}

/// Collects segments while the format readers walk a body.
pub(crate) struct Reader {
    segments: Vec<Segment>,
    declared_tools: Vec<String>,
    provider_tools: Vec<String>,
    mcp_calls: Vec<mcp::Call>,
    /// The joint of the next segment. After a segment it is [`Joint::Next`]
    /// (another field of the same thing); readers glue content parts and begin
    /// messages, tools and top-level fields.
    joint: Joint,
}

impl Default for Reader {
    fn default() -> Reader {
        Reader {
            segments: Vec::new(),
            declared_tools: Vec::new(),
            provider_tools: Vec::new(),
            mcp_calls: Vec::new(),
            joint: Joint::Apart,
        }
    }
}

impl Reader {
    /// The next segment starts a new thing, joined to the one before by `joint`.
    fn begin(&mut self, joint: Joint) {
        self.joint = joint;
    }

    fn text(&mut self, role: Role, text: &str, pointer: String) {
        self.text_of_form(role, text, pointer, TextForm::Prose);
    }

    fn text_of_form(&mut self, role: Role, text: &str, pointer: String, form: TextForm) {
        self.push(role, text, pointer, form, Slot::Value);
    }

    fn push(&mut self, role: Role, text: &str, pointer: String, form: TextForm, slot: Slot) {
        if !text.is_empty() {
            self.segments.push(Segment {
                role,
                text: text.to_owned(),
                pointer,
                form,
                joint: self.joint,
                slot,
            });
            self.joint = Joint::Next;
        }
    }

    /// A JSON schema the model is shown (tool parameters, an answer's format):
    /// every string in it but `type` keywords, and the names of its properties,
    /// as `role` text, each a field of its own read after the one before.
    fn schema(&mut self, role: Role, schema: &Value, pointer: &str) {
        match schema {
            Value::String(s) => self.text(role, s, pointer.to_owned()),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.schema(role, item, &index(pointer, i));
                }
            }
            Value::Object(map) => {
                for (k, v) in map {
                    let at = key(pointer, k);
                    match (k.as_str(), v) {
                        ("type", Value::String(_)) => {}
                        (
                            "properties" | "patternProperties" | "$defs" | "definitions",
                            Value::Object(named),
                        ) => {
                            for (name, property) in named {
                                let property_at = key(&at, name);
                                self.push(
                                    role,
                                    name,
                                    property_at.clone(),
                                    TextForm::Prose,
                                    Slot::Name,
                                );
                                self.schema(role, property, &property_at);
                            }
                        }
                        _ => self.schema(role, v, &at),
                    }
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// Every string inside `value` as text of `role`, under whatever key,
    /// except what is provably not text ([`payload::is_not_text`]): a key's
    /// name proves nothing about its value (`{"data": "AKIA…"}` is a credential).
    fn strings(&mut self, role: Role, value: &Value, pointer: &str) {
        self.strings_under(role, None, value, pointer);
    }

    fn strings_under(&mut self, role: Role, key_of: Option<&str>, value: &Value, pointer: &str) {
        match value {
            Value::String(s) if payload::is_not_text(key_of, s) => {}
            Value::String(s) => self.text(role, s, pointer.to_owned()),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.strings_under(role, None, item, &index(pointer, i));
                }
            }
            Value::Object(map) => {
                for (k, v) in map {
                    self.strings_under(role, Some(k), v, &key(pointer, k));
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// Members of `object` (at `pointer`) its format's reader does not know
    /// (`known` lists those it reads or knows carry no text): a provider that
    /// accepts them may show them to the model, so every string in them is
    /// read as `role` text.
    fn unknown_members(&mut self, role: Role, object: &Value, pointer: &str, known: &[&str]) {
        let Some(members) = object.as_object() else {
            return;
        };
        for (name, value) in members {
            if !known.contains(&name.as_str()) {
                self.begin(Joint::Apart);
                self.strings(role, value, &key(pointer, name));
            }
        }
    }

    fn declare_tool(&mut self, name: &str) {
        self.declared_tools.push(name.to_owned());
    }

    fn provider_tool(&mut self, name: String) {
        self.provider_tools.push(name);
    }
}

/// JSON pointer of `key` under `pointer`.
pub(crate) fn key(pointer: &str, key: &str) -> String {
    let mut out = String::with_capacity(pointer.len() + key.len() + 1);
    out.push_str(pointer);
    out.push('/');
    for c in key.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
    out
}

/// JSON pointer of array element `i` under `pointer`.
pub(crate) fn index(pointer: &str, i: usize) -> String {
    format!("{pointer}/{i}")
}

/// A field that must be an array when present.
fn array<'a>(
    value: &'a Value,
    field: &str,
    at: &str,
) -> Result<Option<&'a Vec<Value>>, BadRequest> {
    match value.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(_) => Err(bad(format!(
            "`{}` must be an array",
            display(&key(at, field))
        ))),
    }
}

/// A JSON pointer as a reader-friendly path: `/messages/3/content` → `messages[3].content`.
pub(crate) fn display(pointer: &str) -> String {
    let mut out = String::new();
    for step in pointer.split('/').skip(1) {
        if step.bytes().all(|b| b.is_ascii_digit()) && !step.is_empty() {
            out.push('[');
            out.push_str(step);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&step.replace("~1", "/").replace("~0", "~"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_escape_and_display() {
        assert_eq!(key("", "a/b~c"), "/a~1b~0c");
        assert_eq!(display(&index(&key("", "messages"), 3)), "messages[3]");
        assert_eq!(
            display("/messages/3/content/0/text"),
            "messages[3].content[0].text"
        );
    }

    #[test]
    fn segment_pointers_resolve_to_their_text() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}"#;
        let req = parse(Format::OpenAiChat, body).unwrap();
        for segment in &req.segments {
            assert_eq!(
                req.body.pointer(&segment.pointer).and_then(Value::as_str),
                Some(segment.text.as_str())
            );
        }
    }

    #[test]
    fn invalid_json_is_a_bad_request() {
        for format in [
            Format::OpenAiChat,
            Format::AnthropicMessages,
            Format::Mcp,
            Format::Json,
        ] {
            let err = parse(format, br#"{"messages": [}"#).unwrap_err();
            assert!(err.0.starts_with("request body is not valid JSON"), "{err}");
        }
        assert!(parse(Format::OpenAiChat, b"").is_err());
    }

    #[test]
    fn generic_json_reads_every_string_under_every_key() {
        let req = parse(
            Format::Json,
            br#"{"a":"one","b":[{"c":"two","type":"three","data":"four","id":"five"}],"n":3}"#,
        )
        .unwrap();
        let texts: Vec<_> = req.segments.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["one", "two", "four", "five", "three"]);
        let typed = parse(Format::Json, br#"{"type":"text","text":"hi"}"#).unwrap();
        assert_eq!(typed.segments.len(), 1, "a known type name is no text");
    }

    #[test]
    fn only_binary_payloads_are_skipped() {
        let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
        let body = serde_json::json!({
            "image": {"data": png, "url": format!("data:image/png;base64,{png}")},
            "keys": {"data": "AKIAIOSFODNN7EXAMPLE", "image_url": {"url": "https://x.example/?k=AKIAIOSFODNN7EXAMPLE"},
                     "tool_call_id": "call_AKIAIOSFODNN7EXAMPLE", "media_type": "text/plain"}});
        let req = parse(Format::Json, body.to_string().as_bytes()).unwrap();
        let texts: Vec<_> = req.segments.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "AKIAIOSFODNN7EXAMPLE",
                "https://x.example/?k=AKIAIOSFODNN7EXAMPLE",
                "text/plain",
                "call_AKIAIOSFODNN7EXAMPLE"
            ]
        );
    }
}
