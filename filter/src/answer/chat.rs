//! OpenAI chat completions (and legacy completions) answers: where a streamed
//! chunk carries the text the model writes, what closes it, and the shape held
//! text is sent in; the tool calls an answer asks for (`tool_calls`, the
//! legacy `function_call`), judged whole or chunk by chunk.

use serde_json::{json, Value};

use super::index_of;
use super::tool_calls::{ToolCallGate, ToolCallMode, ToolCallStream, MAX_TOOL_CALLS};
use crate::work;

/// The text fields of an OpenAI chat `delta`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ChoiceText {
    /// `content`, `refusal`, `reasoning_content` or `reasoning`.
    Field(&'static str),
    /// `tool_calls[]` with this `index`: `function.arguments`.
    ToolArguments(u64),
    /// The legacy `function_call.arguments`.
    FunctionArguments,
    /// An audio answer's `audio.transcript`.
    AudioTranscript,
    /// A legacy completion's `text` (beside `delta`, not in it).
    CompletionText,
}

/// The plain text fields of a chat `delta` the model writes.
const CHOICE_TEXT_FIELDS: [&str; 4] = ["content", "refusal", "reasoning_content", "reasoning"];

/// Where a chat chunk carries delta text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum At {
    /// `choices[p].delta.<key>` (`p` the position in the array).
    Field(usize, &'static str),
    /// `choices[p].delta.tool_calls[c].function.arguments`.
    ToolArguments(usize, usize),
    /// `choices[p].delta.function_call.arguments`.
    FunctionArguments(usize),
    /// `choices[p].delta.audio.transcript`.
    AudioTranscript(usize),
    /// `choices[p].text`.
    CompletionText(usize),
}

/// The value at `at` in a chunk.
pub(crate) fn slot(value: &mut Value, at: At) -> Option<&mut Value> {
    fn choice_delta(value: &mut Value, p: usize) -> Option<&mut Value> {
        value.get_mut("choices")?.get_mut(p)?.get_mut("delta")
    }
    match at {
        At::Field(p, key) => choice_delta(value, p)?.get_mut(key),
        At::ToolArguments(p, c) => choice_delta(value, p)?
            .get_mut("tool_calls")?
            .get_mut(c)?
            .get_mut("function")?
            .get_mut("arguments"),
        At::FunctionArguments(p) => choice_delta(value, p)?
            .get_mut("function_call")?
            .get_mut("arguments"),
        At::AudioTranscript(p) => choice_delta(value, p)?
            .get_mut("audio")?
            .get_mut("transcript"),
        At::CompletionText(p) => value.get_mut("choices")?.get_mut(p)?.get_mut("text"),
    }
}

/// An event's `choices`, with their positions.
pub(crate) fn choices(value: &Value) -> impl Iterator<Item = (usize, &Value)> {
    value
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

/// The delta texts of a chunk's choices: choice index, which text, where.
pub(crate) fn delta_texts(value: &Value) -> Vec<(u64, ChoiceText, At)> {
    let mut found = Vec::new();
    let is_text = |v: Option<&Value>| v.is_some_and(Value::is_string);
    for (p, choice) in choices(value) {
        let i = index_of(choice, "index", p);
        if is_text(choice.get("text")) {
            found.push((i, ChoiceText::CompletionText, At::CompletionText(p)));
        }
        let Some(delta) = choice.get("delta") else {
            continue;
        };
        for key in CHOICE_TEXT_FIELDS {
            if is_text(delta.get(key)) {
                found.push((i, ChoiceText::Field(key), At::Field(p, key)));
            }
        }
        for (c, call) in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if is_text(call.get("function").and_then(|f| f.get("arguments"))) {
                let text = ChoiceText::ToolArguments(index_of(call, "index", c));
                found.push((i, text, At::ToolArguments(p, c)));
            }
        }
        if is_text(delta.get("function_call").and_then(|f| f.get("arguments"))) {
            found.push((i, ChoiceText::FunctionArguments, At::FunctionArguments(p)));
        }
        if is_text(delta.get("audio").and_then(|a| a.get("transcript"))) {
            found.push((i, ChoiceText::AudioTranscript, At::AudioTranscript(p)));
        }
    }
    found
}

/// The choices a chunk closes (they have a `finish_reason`).
pub(crate) fn closed(value: &Value) -> impl Iterator<Item = u64> + '_ {
    choices(value)
        .filter(|(_, choice)| choice.get("finish_reason").is_some_and(|f| !f.is_null()))
        .map(|(p, choice)| index_of(choice, "index", p))
}

/// The chunk that sends `rest`, the text held of choice `i`'s `text`, in
/// the envelope of the chunk that opened it (`template`).
pub(crate) fn flush_event(i: u64, text: ChoiceText, rest: String, template: Value) -> String {
    match text {
        ChoiceText::CompletionText => {
            let mut chunk = template;
            chunk["choices"] = json!([{"index": i, "text": rest, "finish_reason": null}]);
            format!("data: {chunk}\n\n")
        }
        text => {
            let delta = match text {
                ChoiceText::Field(key) => json!({ key: rest }),
                ChoiceText::ToolArguments(call) => {
                    json!({"tool_calls": [{"index": call, "function": {"arguments": rest}}]})
                }
                ChoiceText::FunctionArguments => json!({"function_call": {"arguments": rest}}),
                ChoiceText::AudioTranscript => json!({"audio": {"transcript": rest}}),
                ChoiceText::CompletionText => Value::Null,
            };
            let mut chunk = template;
            chunk["choices"] = json!([{"index": i, "delta": delta, "finish_reason": null}]);
            format!("data: {chunk}\n\n")
        }
    }
}

/// The tool an OpenAI chat `tool_calls` entry calls (a function or a custom
/// tool); an entry naming neither is a call of the unnamed tool, never allowed.
pub(crate) fn chat_call_name(call: &Value) -> Option<&str> {
    call.pointer("/function/name")
        .or_else(|| call.pointer("/custom/name"))
        .and_then(Value::as_str)
        .or(Some(""))
}

impl ToolCallGate {
    /// A whole chat answer's calls of tools the agent may not call, each
    /// collected in `denied` (and removed when `remove`).
    pub(crate) fn chat_body(&self, value: &mut Value, remove: bool, denied: &mut Vec<String>) {
        if let Some(choices) = value.get_mut("choices").and_then(Value::as_array_mut) {
            for choice in choices {
                let Some(message) = choice.get_mut("message") else {
                    continue;
                };
                let removed = self.retain(message, "tool_calls", chat_call_name, remove, denied);
                let legacy = message
                    .pointer("/function_call/name")
                    .and_then(Value::as_str)
                    .filter(|name| !self.allows(name))
                    .map(str::to_owned);
                if let Some(name) = legacy {
                    denied.push(name);
                    if let Some(message) = message.as_object_mut().filter(|_| remove) {
                        message.remove("function_call");
                    }
                }
                let left = message
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .is_some_and(|calls| !calls.is_empty())
                    || message.get("function_call").is_some();
                if removed && !left {
                    if let Some(message) = message.as_object_mut() {
                        message.remove("tool_calls");
                    }
                    if matches!(
                        choice.get("finish_reason").and_then(Value::as_str),
                        Some("tool_calls" | "function_call")
                    ) {
                        choice["finish_reason"] = json!("stop");
                    }
                }
            }
        }
    }
}

impl ToolCallStream {
    /// OpenAI chat chunk: judges `delta.tool_calls`; removes and renumbers
    /// denied ones (remove mode). Whether the chunk changed.
    pub(crate) fn openai_event(&mut self, value: &mut Value) -> bool {
        let mut changed = false;
        let Some(choices) = value.get_mut("choices").and_then(Value::as_array_mut) else {
            return false;
        };
        for (position, choice) in choices.iter_mut().enumerate() {
            let choice_index = choice
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(position as u64);
            // The legacy `function_call` streams its name once, in its first
            // delta; it cannot be removed from a stream, so it is refused.
            if let Some(tool) = choice
                .pointer("/delta/function_call/name")
                .and_then(Value::as_str)
                .filter(|tool| !self.gate.allows(tool))
            {
                self.denied.push(tool.to_owned());
                self.refused = true;
                return false;
            }
            if let Some(calls) = choice
                .pointer_mut("/delta/tool_calls")
                .and_then(Value::as_array_mut)
            {
                let mut kept = Vec::with_capacity(calls.len());
                for mut call in calls.drain(..) {
                    let index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
                    let allowed = match self.openai.get(&(choice_index, index)) {
                        Some(allowed) => *allowed,
                        None if self.openai.len() >= MAX_TOOL_CALLS => {
                            self.refused = true;
                            self.cut = true;
                            return false;
                        }
                        None => {
                            let tool = chat_call_name(&call).unwrap_or("").to_owned();
                            let allowed = self.gate.allows(&tool);
                            if !allowed {
                                self.denied.push(tool);
                            }
                            self.openai.insert((choice_index, index), allowed);
                            allowed
                        }
                    };
                    if !allowed {
                        if self.gate.mode != ToolCallMode::Remove {
                            self.refused = true;
                            return false;
                        }
                        changed = true;
                        continue;
                    }
                    self.openai_kept.insert(choice_index);
                    // At most MAX_TOOL_CALLS entries to count.
                    work::charge(self.openai.len());
                    let renumbered = self
                        .openai
                        .range((choice_index, 0)..(choice_index, index))
                        .filter(|(_, allowed)| **allowed)
                        .count() as u64;
                    if renumbered != index {
                        call["index"] = json!(renumbered);
                        changed = true;
                    }
                    kept.push(call);
                }
                let empty = kept.is_empty();
                *calls = kept;
                if empty && changed {
                    if let Some(delta) = choice.get_mut("delta").and_then(Value::as_object_mut) {
                        delta.remove("tool_calls");
                    }
                }
            }
            work::charge(self.openai.len());
            let removed_all = self
                .openai
                .iter()
                .any(|((c, _), allowed)| *c == choice_index && !allowed)
                && !self.openai_kept.contains(&choice_index);
            if removed_all && choice["finish_reason"] == "tool_calls" {
                choice["finish_reason"] = json!("stop");
                changed = true;
            }
        }
        changed
    }
}
