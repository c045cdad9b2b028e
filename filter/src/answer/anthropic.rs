//! Anthropic Messages answers: where a streamed event carries the text the
//! model writes (a content block's deltas), what closes it, and the shape
//! held text is sent in.

use serde_json::{json, Value};

use super::index_of;

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

/// The delta texts of a `content_block_delta` (`kind` is the event's type):
/// the block's index and each text it carries (at `delta.<key>`).
pub(crate) fn delta_texts(value: &Value, kind: &str) -> Vec<(u64, BlockText)> {
    if kind != "content_block_delta" {
        return Vec::new();
    }
    let i = index_of(value, "index", 0);
    BlockText::ALL
        .into_iter()
        .filter(|text| {
            value
                .get("delta")
                .and_then(|d| d.get(text.key()))
                .is_some_and(Value::is_string)
        })
        .map(|text| (i, text))
        .collect()
}

/// The block a `content_block_stop` closes.
pub(crate) fn closed(value: &Value, kind: &str) -> Option<u64> {
    (kind == "content_block_stop").then(|| index_of(value, "index", 0))
}

/// The event that sends `rest`, the text held of block `i`.
pub(crate) fn flush_event(i: u64, text: BlockText, rest: String) -> String {
    let mut delta = json!({"type": text.delta_type()});
    delta[text.key()] = Value::String(rest);
    let event = json!({"type": "content_block_delta", "index": i, "delta": delta});
    format!("event: content_block_delta\ndata: {event}\n\n")
}
