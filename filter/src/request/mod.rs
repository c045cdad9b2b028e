//! Request bodies: every provider format read into one model of text segments.
//!
//! The guard and the firewall never look at provider JSON directly: they see
//! [`InspectedRequest`], whose [`Segment`]s say who wrote each piece of text
//! (system, user, tool result, …) and where it sits in the body (a JSON
//! pointer), so a redaction can rewrite it in place. A body the filter cannot
//! read is a [`BadRequest`]: nothing unchecked is forwarded.

mod anthropic;
pub mod mcp;
mod openai;

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
    /// A tool's declared description.
    ToolSpec,
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
    /// Names of the tools the request offers the model.
    pub declared_tools: Vec<String>,
    /// The JSON-RPC calls of an MCP body (empty for other formats).
    pub mcp_calls: Vec<mcp::Call>,
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
        Format::OpenAiCompletions => openai::prompt_field(&value, "prompt", &mut reader)?,
        Format::OpenAiEmbeddings => openai::prompt_field(&value, "input", &mut reader)?,
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
        mcp_calls: reader.mcp_calls,
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
    mcp_calls: Vec<mcp::Call>,
    /// Bytes of pointers the walk of arbitrary JSON ([`Reader::strings`]) may still
    /// write; `None` once it ran out.
    pointer_bytes_left: Option<usize>,
}

impl Reader {
    fn new(pointer_bytes: usize) -> Reader {
        Reader {
            segments: Vec::new(),
            declared_tools: Vec::new(),
            mcp_calls: Vec::new(),
            pointer_bytes_left: Some(pointer_bytes),
        }
    }

    fn text(&mut self, role: Role, text: &str, pointer: String) {
        self.text_of_form(role, text, pointer, TextForm::Prose);
    }

    fn text_of_form(&mut self, role: Role, text: &str, pointer: String, form: TextForm) {
        if !text.is_empty() {
            self.segments.push(Segment {
                role,
                text: text.to_owned(),
                pointer,
                form,
            });
        }
    }

    /// Every string inside `value` as text of `role`, except the values of keys
    /// that never carry prose (`type`, IDs, media payloads).
    ///
    /// The pointer is one buffer that grows by a step on the way down and shrinks on
    /// the way up; it is copied only for a text, within the reader's pointer budget.
    /// Numbers, booleans and nulls cost no pointer at all.
    fn strings(&mut self, role: Role, value: &Value, pointer: &str) {
        let mut path = pointer.to_owned();
        self.strings_at(role, value, &mut path);
    }

    fn strings_at(&mut self, role: Role, value: &Value, path: &mut String) {
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
            Value::String(s) if !s.is_empty() => {
                self.pointer_bytes_left = self
                    .pointer_bytes_left
                    .and_then(|left| left.checked_sub(path.len()));
                if self.pointer_bytes_left.is_some() {
                    crate::work::charge(path.len() + s.len());
                    self.text(role, s, path.clone());
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate().filter(|(_, v)| holds_text(v)) {
                    push_index(path, i);
                    self.strings_at(role, item, path);
                    path.truncate(depth);
                }
            }
            Value::Object(map) => {
                for (k, v) in map {
                    if !NON_PROSE_KEYS.contains(&k.as_str()) && holds_text(v) {
                        push_key(path, k);
                        self.strings_at(role, v, path);
                        path.truncate(depth);
                    }
                }
            }
            Value::String(_) | Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    fn declare_tool(&mut self, name: &str) {
        self.declared_tools.push(name.to_owned());
    }
}

/// Keys whose values are identifiers or binary payloads, never prose.
const NON_PROSE_KEYS: [&str; 8] = [
    "type",
    "id",
    "tool_call_id",
    "call_id",
    "tool_use_id",
    "media_type",
    "data",
    "image_url",
];

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
    fn generic_json_reads_every_string() {
        let req = parse(
            Format::Json,
            br#"{"a":"one","b":[{"c":"two","type":"skip"}],"n":3}"#,
        )
        .unwrap();
        let texts: Vec<_> = req.segments.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["one", "two"]);
    }
}
