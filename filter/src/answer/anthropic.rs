//! Anthropic Messages answers: where a streamed event carries the text the
//! model writes (a content block's deltas), what closes it, and the shape
//! held text is sent in; the `tool_use` blocks an answer asks for, judged
//! whole or event by event.

use serde_json::{json, Value};

use super::index_of;
use super::tool_calls::{ToolCallGate, ToolCallMode, ToolCallStream, MAX_TOOL_CALLS};
use crate::work;

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

/// The tool an Anthropic content block calls, if it is a `tool_use`.
pub(crate) fn tool_use_name(block: &Value) -> Option<&str> {
    (block.get("type").and_then(Value::as_str) == Some("tool_use"))
        .then(|| block.get("name").and_then(Value::as_str).unwrap_or(""))
}

impl ToolCallGate {
    /// A whole Messages answer's `tool_use` blocks of tools the agent may not
    /// call, each collected in `denied` (and removed when `remove`).
    pub(crate) fn anthropic_body(&self, value: &mut Value, remove: bool, denied: &mut Vec<String>) {
        if value.get("type").and_then(Value::as_str) == Some("message") {
            let removed = self.retain(value, "content", tool_use_name, remove, denied);
            let left = value
                .get("content")
                .and_then(Value::as_array)
                .is_some_and(|c| c.iter().any(|b| b["type"] == "tool_use"));
            if removed && !left && value["stop_reason"] == "tool_use" {
                value["stop_reason"] = json!("end_turn");
            }
        }
    }
}

impl ToolCallStream {
    /// Anthropic content block events: `None` drops the event (a removed
    /// block), else whether it changed (renumbered).
    pub(crate) fn anthropic_block(&mut self, value: &mut Value) -> Option<bool> {
        let index = value.get("index").and_then(Value::as_u64).unwrap_or(0);
        if value["type"] == "content_block_start" && value["content_block"]["type"] == "tool_use" {
            self.anthropic_tool_blocks += 1;
            if self.anthropic_tool_blocks > MAX_TOOL_CALLS {
                self.refused = true;
                self.cut = true;
                return Some(false);
            }
            let tool = value["content_block"]["name"].as_str().unwrap_or("");
            if self.gate.allows(tool) {
                self.anthropic_kept = true;
            } else {
                self.denied.push(tool.to_owned());
                if self.gate.mode != ToolCallMode::Remove {
                    self.refused = true;
                    return Some(false);
                }
                self.anthropic_removed.insert(index);
            }
        }
        if self.anthropic_removed.contains(&index) {
            return None;
        }
        work::charge(self.anthropic_removed.len());
        let shift = self.anthropic_removed.range(..index).count() as u64;
        if shift == 0 {
            return Some(false);
        }
        value["index"] = json!(index - shift);
        Some(true)
    }

    pub(crate) fn anthropic_stop_reason(&mut self, value: &mut Value) -> bool {
        if !self.anthropic_removed.is_empty()
            && !self.anthropic_kept
            && value["delta"]["stop_reason"] == "tool_use"
        {
            value["delta"]["stop_reason"] = json!("end_turn");
            return true;
        }
        false
    }
}
