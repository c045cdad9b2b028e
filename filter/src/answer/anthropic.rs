//! Anthropic Messages answers: where a streamed event carries the text the
//! model writes (a content block's deltas), what closes it, and the shape
//! held text is sent in.

use serde_json::{json, Value};

use super::redact::deltas::{index_of, Closed, DeltaAt, Stream};

/// The text of an Anthropic block delta, by the delta's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum BlockText {
    /// `text_delta` `text`.
    Text,
    /// `input_json_delta` `partial_json` (a tool call's input).
    PartialJson,
    /// `thinking_delta` `thinking`.
    Thinking,
}

impl BlockText {
    pub(crate) const ALL: [BlockText; 3] =
        [BlockText::Text, BlockText::PartialJson, BlockText::Thinking];

    pub(crate) fn key(self) -> &'static str {
        match self {
            BlockText::Text => "text",
            BlockText::PartialJson => "partial_json",
            BlockText::Thinking => "thinking",
        }
    }

    pub(crate) fn delta_type(self) -> &'static str {
        match self {
            BlockText::Text => "text_delta",
            BlockText::PartialJson => "input_json_delta",
            BlockText::Thinking => "thinking_delta",
        }
    }
}

/// The delta texts of a `content_block_delta` (`kind` is the event's type).
pub(crate) fn delta_texts(value: &Value, kind: &str, found: &mut Vec<(Stream, DeltaAt)>) {
    let is_text = |v: Option<&Value>| v.is_some_and(Value::is_string);
    if kind == "content_block_delta" {
        let i = index_of(value, "index", 0);
        for text in BlockText::ALL {
            if is_text(value.get("delta").and_then(|d| d.get(text.key()))) {
                found.push((Stream::Block(i, text), DeltaAt::DeltaKey(text.key())));
            }
        }
    }
}

/// The block a `content_block_stop` closes.
pub(crate) fn closed_streams(value: &Value, kind: &str, closed: &mut Vec<Closed>) {
    if kind == "content_block_stop" {
        closed.push(Closed::Block(index_of(value, "index", 0)));
    }
}

/// The event that sends `rest`, the text held of block `i`.
pub(crate) fn flush_event(i: u64, text: BlockText, rest: String) -> String {
    let mut delta = json!({"type": text.delta_type()});
    delta[text.key()] = Value::String(rest);
    let event = json!({"type": "content_block_delta", "index": i, "delta": delta});
    format!("event: content_block_delta\ndata: {event}\n\n")
}
