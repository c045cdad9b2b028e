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
    // Parsing the body, then walking its fields.
    crate::work::charge(2 * body.len());
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("request body is not valid JSON: {e}")))?;
    let mut reader = Reader::new(POINTER_BYTES_PER_BODY_BYTE * body.len() + MIN_POINTER_BYTES);
    match format {
        Format::OpenAiChat => openai::chat(&value, &mut reader)?,
        Format::OpenAiResponses => openai::responses(&value, &mut reader)?,
        Format::OpenAiCompletions => openai::completions(&value, &mut reader)?,
        Format::OpenAiEmbeddings => openai::embeddings(&value, &mut reader)?,
        Format::AnthropicMessages => anthropic::messages(&value, &mut reader)?,
        Format::Mcp => mcp::read(&value, &mut reader)?,
        Format::Json => reader.strings(Role::User, &value, ""),
    }
    if reader.pointer_bytes_left.is_none() {
        return Err(bad(format!(
            "the JSON pointers of the body's text add up to more than \
             {POINTER_BYTES_PER_BODY_BYTE} times the body (long keys above many values)"
        )));
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

/// Most bytes of JSON pointers kept per byte of body. Every text segment carries its
/// pointer, so a long key above many short strings (`{"<100 KB>": ["a", "a", …]}`)
/// would make the pointers grow with the square of the body; a body past this bound is
/// refused. Ordinary bodies stay far below it (a pointer is some tens of bytes; the text
/// it leads to, its key and its quotes are in the body).
const POINTER_BYTES_PER_BODY_BYTE: usize = 16;

/// Pointer bytes any body may use, however short.
const MIN_POINTER_BYTES: usize = 64 * 1024;

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
    /// Bytes of pointers the walks of arbitrary JSON ([`Reader::strings`],
    /// [`Reader::schema`]) may still write; `None` once they ran out.
    pointer_bytes_left: Option<usize>,
}

impl Reader {
    fn new(pointer_bytes: usize) -> Reader {
        Reader {
            segments: Vec::new(),
            declared_tools: Vec::new(),
            provider_tools: Vec::new(),
            mcp_calls: Vec::new(),
            joint: Joint::Apart,
            pointer_bytes_left: Some(pointer_bytes),
        }
    }

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

    /// A copy of the pointer `path` for a segment, within the pointer budget: `None`
    /// once the walks of arbitrary JSON have copied more than it allows (the body is
    /// then refused).
    fn pointer_for(&mut self, path: &str) -> Option<String> {
        let left = self.pointer_bytes_left?.checked_sub(path.len());
        self.pointer_bytes_left = left;
        left.map(|_| {
            crate::work::charge(path.len());
            path.to_owned()
        })
    }

    /// A JSON schema the model is shown (tool parameters, an answer's format):
    /// every string in it but `type` keywords, and the names of its properties,
    /// as `role` text, each a field of its own read after the one before.
    ///
    /// Like [`Reader::strings`], the walk keeps one pointer buffer and copies it
    /// only for a text.
    fn schema(&mut self, role: Role, schema: &Value, pointer: &str) {
        let mut path = pointer.to_owned();
        self.schema_at(role, schema, &mut path);
    }

    fn schema_at(&mut self, role: Role, schema: &Value, path: &mut String) {
        if self.pointer_bytes_left.is_none() {
            // The body is refused: nothing more to read.
            return;
        }
        let depth = path.len();
        match schema {
            Value::String(s) if !s.is_empty() => {
                if let Some(pointer) = self.pointer_for(path) {
                    crate::work::charge(s.len());
                    self.text(role, s, pointer);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    push_index(path, i);
                    self.schema_at(role, item, path);
                    path.truncate(depth);
                }
            }
            Value::Object(map) => {
                for (k, v) in map {
                    push_key(path, k);
                    match (k.as_str(), v) {
                        ("type", Value::String(_)) => {}
                        (
                            "properties" | "patternProperties" | "$defs" | "definitions",
                            Value::Object(named),
                        ) => {
                            let at = path.len();
                            for (name, property) in named {
                                push_key(path, name);
                                if !name.is_empty() {
                                    if let Some(pointer) = self.pointer_for(path) {
                                        self.push(role, name, pointer, TextForm::Prose, Slot::Name);
                                    }
                                }
                                self.schema_at(role, property, path);
                                path.truncate(at);
                            }
                        }
                        _ => self.schema_at(role, v, path),
                    }
                    path.truncate(depth);
                }
            }
            Value::String(_) | Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// Every string inside `value` as text of `role`, under whatever key,
    /// except what is provably not text ([`payload::is_not_text`]): a key's
    /// name proves nothing about its value (`{"data": "AKIA…"}` is a credential).
    ///
    /// The pointer is one buffer that grows by a step on the way down and shrinks on
    /// the way up; it is copied only for a text, within the reader's pointer budget.
    /// Numbers, booleans and nulls cost no pointer at all.
    fn strings(&mut self, role: Role, value: &Value, pointer: &str) {
        let mut path = pointer.to_owned();
        self.strings_at(role, None, value, &mut path);
    }

    fn strings_at(&mut self, role: Role, key_of: Option<&str>, value: &Value, path: &mut String) {
        let holds_text = |v: &Value| {
            matches!(v, Value::String(s) if !s.is_empty())
                || matches!(v, Value::Array(a) if !a.is_empty())
                || matches!(v, Value::Object(m) if !m.is_empty())
        };
        if self.pointer_bytes_left.is_none() {
            // The body is refused: nothing more to read.
            return;
        }
        let depth = path.len();
        match value {
            Value::String(s) => {
                // Read for a binary payload's signature, then copied as the text.
                crate::work::charge(2 * s.len());
                if payload::is_not_text(key_of, s) || s.is_empty() {
                    return;
                }
                if let Some(pointer) = self.pointer_for(path) {
                    self.text(role, s, pointer);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate().filter(|(_, v)| holds_text(v)) {
                    push_index(path, i);
                    self.strings_at(role, None, item, path);
                    path.truncate(depth);
                }
            }
            Value::Object(map) => {
                for (k, v) in map.iter().filter(|(_, v)| holds_text(v)) {
                    push_key(path, k);
                    self.strings_at(role, Some(k), v, path);
                    path.truncate(depth);
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
    push_key(&mut out, key);
    out
}

/// JSON pointer of array element `i` under `pointer`.
pub(crate) fn index(pointer: &str, i: usize) -> String {
    format!("{pointer}/{i}")
}

/// Appends the step to `key` (escaped) to the pointer `path`.
fn push_key(path: &mut String, key: &str) {
    crate::work::charge(key.len() + 1);
    path.push('/');
    for c in key.chars() {
        match c {
            '~' => path.push_str("~0"),
            '/' => path.push_str("~1"),
            c => path.push(c),
        }
    }
}

/// Appends the step to array element `i` to the pointer `path`.
fn push_index(path: &mut String, i: usize) {
    use std::fmt::Write;
    crate::work::charge(1);
    // Writing to a String cannot fail.
    let _ = write!(path, "/{i}");
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
    fn pointers_of_nested_arbitrary_json_resolve_to_their_text() {
        let body = br#"{"a":[1,"x",{"b/c":{"d~e":["",["y"]]}},null,{}],"z":"w"}"#;
        let req = parse(Format::Json, body).unwrap();
        let found: Vec<_> = req
            .segments
            .iter()
            .map(|s| (s.pointer.as_str(), s.text.as_str()))
            .collect();
        assert_eq!(
            found,
            [("/a/1", "x"), ("/a/2/b~1c/d~0e/1/0", "y"), ("/z", "w")]
        );
        for segment in &req.segments {
            assert_eq!(
                req.body.pointer(&segment.pointer).and_then(Value::as_str),
                Some(segment.text.as_str())
            );
        }
    }

    #[test]
    fn a_long_key_above_many_texts_is_refused_not_copied_into_every_pointer() {
        // 128 KB of key above 16,384 one-letter strings: their pointers alone would be
        // 2 GiB.
        let strings = vec![r#""a""#; 16_384].join(",");
        let body = format!(r#"{{"{}":[{strings}]}}"#, "k".repeat(128 * 1024));
        let err = parse(Format::Json, body.as_bytes()).unwrap_err();
        assert!(err.0.contains("JSON pointers"), "{err}");
        // The same texts under a short key are read.
        let body = format!(r#"{{"k":[{strings}]}}"#);
        assert_eq!(
            parse(Format::Json, body.as_bytes()).unwrap().segments.len(),
            16_384
        );
        // And a long key above numbers costs no pointer at all.
        let numbers = vec!["0"; 16_384].join(",");
        let body = format!(r#"{{"{}":[{numbers}],"t":"x"}}"#, "k".repeat(128 * 1024));
        assert_eq!(
            parse(Format::Json, body.as_bytes()).unwrap().segments.len(),
            1
        );
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
