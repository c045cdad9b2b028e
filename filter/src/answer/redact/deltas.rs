//! Where a streamed answer's events carry the text the model writes: its
//! delta streams (one per choice, block or output part and text), where each
//! event holds their pieces, which events close them, and the shape their held
//! text is sent in. Each provider's shapes are in its own file
//! (`answer::chat`, `answer::anthropic`, `answer::responses`).

use serde_json::Value;

use crate::answer::anthropic::{self, BlockText};
use crate::answer::chat::{self, ChoiceText};
use crate::answer::responses::{self, ResponsesText};
use crate::firewall::TextForm;
use crate::work;

/// A delta stream: text the model writes piece by piece across events. A value can
/// straddle two of its pieces, so each stream has its own redactor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stream {
    /// OpenAI chat, choice `i`.
    Choice(u64, ChoiceText),
    /// Anthropic `content_block_delta`s of block `i`.
    Block(u64, BlockText),
    /// OpenAI Responses `response.<kind>.delta`s of output `i`, part `j` (its content
    /// or summary index).
    Output(ResponsesText, u64, u64),
}

impl Stream {
    /// JSON text (a tool call's arguments) or prose.
    pub(crate) fn form(self) -> TextForm {
        match self {
            Stream::Choice(_, ChoiceText::ToolArguments(_) | ChoiceText::FunctionArguments)
            | Stream::Block(_, BlockText::PartialJson)
            | Stream::Output(
                ResponsesText::FunctionCallArguments | ResponsesText::McpCallArguments,
                _,
                _,
            ) => TextForm::Json,
            _ => TextForm::Prose,
        }
    }
    /// The event that sends `rest`, the text this stream still held, shaped
    /// like the ones it carried (`template`: see [`template`]).
    pub(crate) fn flush_event(self, rest: String, template: Value) -> String {
        match self {
            Stream::Choice(i, text) => chat::flush_event(i, text, rest, template),
            Stream::Block(i, text) => anthropic::flush_event(i, text, rest),
            Stream::Output(text, output, part) => {
                responses::flush_event(text, output, part, rest, template)
            }
        }
    }
}

/// Where an event carries delta text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeltaAt {
    /// In a chat chunk's choices.
    Chat(chat::At),
    /// `delta.<key>` (Anthropic).
    DeltaKey(&'static str),
    /// `delta` (Responses).
    Delta,
}

/// The value at `at` in an event.
pub(crate) fn delta_slot(value: &mut Value, at: DeltaAt) -> Option<&mut Value> {
    match at {
        DeltaAt::Chat(at) => chat::slot(value, at),
        DeltaAt::DeltaKey(key) => value.get_mut("delta")?.get_mut(key),
        DeltaAt::Delta => value.get_mut("delta"),
    }
}

/// Delta streams an event closes: held text must go out before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Closed {
    /// Every stream of choice `i` (it has a `finish_reason`).
    Choice(u64),
    /// Every stream of block `i` (`content_block_stop`).
    Block(u64),
    /// One Responses stream (its `.done` event).
    Output(ResponsesText, u64, u64),
}

impl Closed {
    pub(crate) fn closes(self, stream: Stream) -> bool {
        match (self, stream) {
            (Closed::Choice(i), Stream::Choice(j, _)) | (Closed::Block(i), Stream::Block(j, _)) => {
                i == j
            }
            (Closed::Output(k, o, p), Stream::Output(k2, o2, p2)) => (k, o, p) == (k2, o2, p2),
            _ => false,
        }
    }
}

/// The streams an event closes, asked of every delta of the event: the closed choices
/// are kept sorted, so that an event of many choices that each close costs n log n,
/// where a list searched per delta cost n².
pub(crate) struct ClosedStreams {
    choices: Vec<u64>,
    /// Blocks and Responses parts: one at most (the event's own type closes it).
    others: Vec<Closed>,
}

impl ClosedStreams {
    pub(crate) fn new(closed: Vec<Closed>) -> ClosedStreams {
        let mut choices = Vec::new();
        let mut others = Vec::new();
        for c in closed {
            match c {
                Closed::Choice(i) => choices.push(i),
                other => others.push(other),
            }
        }
        work::charge(choices.len().max(2).ilog2() as usize * choices.len());
        choices.sort_unstable();
        ClosedStreams { choices, others }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.choices.is_empty() && self.others.is_empty()
    }

    pub(crate) fn closes(&self, stream: Stream) -> bool {
        work::charge(self.choices.len().max(2).ilog2() as usize + self.others.len());
        match stream {
            Stream::Choice(i, _) => self.choices.binary_search(&i).is_ok(),
            _ => self.others.iter().any(|c| c.closes(stream)),
        }
    }
}

/// The delta texts an event carries, with their stream and place.
pub(crate) fn delta_texts(value: &Value) -> Vec<(Stream, DeltaAt)> {
    let mut found: Vec<(Stream, DeltaAt)> = chat::delta_texts(value)
        .into_iter()
        .map(|(i, text, at)| (Stream::Choice(i, text), DeltaAt::Chat(at)))
        .collect();
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    for (i, text) in anthropic::delta_texts(value, kind) {
        found.push((Stream::Block(i, text), DeltaAt::DeltaKey(text.key())));
    }
    if let Some((text, output, part)) = responses::delta_text(value, kind) {
        found.push((Stream::Output(text, output, part), DeltaAt::Delta));
    }
    found
}

/// The delta streams an event closes.
pub(crate) fn closed_streams(value: &Value) -> Vec<Closed> {
    let mut closed: Vec<Closed> = chat::closed(value).map(Closed::Choice).collect();
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    closed.extend(anthropic::closed(value, kind).map(Closed::Block));
    if let Some((text, output, part)) = responses::closed(value, kind) {
        closed.push(Closed::Output(text, output, part));
    }
    closed
}

/// The shape a stream's held text is flushed in, from the event that opened it: a
/// chat chunk's envelope without its choices, a Responses event without its text
/// and logprobs (an Anthropic delta is built whole). Small, whatever the event: only
/// the first [`TEMPLATE_MAX_FIELDS`] fields are looked at, and only scalars among them
/// are kept, within [`TEMPLATE_MAX_BYTES`] (an envelope's `id`, `object`, `created`,
/// `model`, … are some hundred bytes). A template is built for every stream an event
/// opens, so a copy of a large field each time would cost the event's size squared.
pub(crate) fn template(event: &Value, stream: Stream) -> Value {
    let Some(fields) = event.as_object() else {
        return Value::Null;
    };
    let drop: &[&str] = match stream {
        Stream::Choice(..) => &["choices"],
        Stream::Output(..) => &["delta", "logprobs"],
        Stream::Block(..) => return Value::Null,
    };
    let mut room = TEMPLATE_MAX_BYTES;
    let mut kept = serde_json::Map::new();
    for (key, value) in fields
        .iter()
        .filter(|(key, _)| !drop.contains(&key.as_str()))
        .take(TEMPLATE_MAX_FIELDS)
    {
        let size = key.len()
            + match value {
                Value::String(s) => s.len(),
                Value::Number(_) | Value::Bool(_) | Value::Null => 8,
                Value::Array(_) | Value::Object(_) => continue,
            };
        if size > room {
            continue;
        }
        room -= size;
        work::charge(size);
        kept.insert(key.clone(), value.clone());
    }
    Value::Object(kept)
}

/// Fields of an event looked at for a stream's template.
const TEMPLATE_MAX_FIELDS: usize = 16;

/// Bytes of keys and values a stream's template keeps.
const TEMPLATE_MAX_BYTES: usize = 1024;

#[cfg(test)]
mod tests {
    use crate::answer::redact::tests::{blocking, run, strings};
    use crate::stream::StreamStop;
    use serde_json::{json, Value};

    /// The text a client reassembles from the stream: every string of every event,
    /// in order (enough to tell whether a value got through, whole or in pieces).
    fn all_text(out: &[u8]) -> String {
        let mut text = String::new();
        for data in String::from_utf8_lossy(out)
            .split("\n\n")
            .filter_map(|e| e.split("data: ").nth(1))
        {
            if let Ok(value) = serde_json::from_str::<Value>(data) {
                strings(&value, &mut |s| text.push_str(s));
            }
        }
        text
    }

    #[test]
    fn every_text_the_model_streams_is_judged() {
        let chat = |delta: Value| json!({"id": "c", "choices": [{"index": 0, "delta": delta}]});
        let done =
            json!({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
        let block = |kind: &str, key: &str, text: &str| json!({"type": "content_block_delta", "index": 1, "delta": {"type": kind, key: text}});
        let output = |kind: &str, text: &str| json!({"type": format!("response.{kind}.delta"), "output_index": 0, "content_index": 0, "delta": text});
        let streams: Vec<(&str, Vec<Value>)> = vec![
            (
                "tool call arguments",
                vec![
                    chat(
                        json!({"tool_calls": [{"index": 0, "id": "t", "type": "function", "function": {"name": "send", "arguments": "{\"key\": \"SEC"}}]}),
                    ),
                    chat(
                        json!({"tool_calls": [{"index": 0, "function": {"arguments": "RET-42 \"}"}}]}),
                    ),
                    done.clone(),
                ],
            ),
            (
                "an audio answer's transcript",
                vec![
                    chat(json!({"audio": {"id": "a", "transcript": "say SECR"}})),
                    chat(json!({"audio": {"transcript": "ET-5 twice "}})),
                    done.clone(),
                ],
            ),
            (
                "a refusal",
                vec![
                    chat(json!({"refusal": "no, SECRET-"})),
                    chat(json!({"refusal": "7 stays "})),
                    done.clone(),
                ],
            ),
            (
                "reasoning",
                vec![
                    chat(json!({"reasoning_content": "the key SECRET-9 "})),
                    done.clone(),
                ],
            ),
            (
                "a tool call's input",
                vec![
                    block("input_json_delta", "partial_json", "{\"k\": \"SECRE"),
                    block("input_json_delta", "partial_json", "T-3 \"}"),
                    json!({"type": "content_block_stop", "index": 1}),
                ],
            ),
            (
                "thinking",
                vec![
                    block("thinking_delta", "thinking", "SECRET-8 "),
                    json!({"type": "content_block_stop", "index": 1}),
                ],
            ),
            (
                "Responses function arguments",
                vec![
                    output("function_call_arguments", "{\"k\": \"SECRET-"),
                    output("function_call_arguments", "11 \"}"),
                    json!({"type": "response.function_call_arguments.done", "output_index": 0, "arguments": "{\"k\": \"SECRET-11 \"}"}),
                ],
            ),
            (
                "a field no stream reads",
                vec![
                    json!({"type": "response.created", "response": {"instructions": "SECRET-6 x"}}),
                ],
            ),
        ];
        for (case, events) in streams {
            let input: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
            for chunk in [1, 7, input.len()] {
                let out = run(input.as_bytes(), chunk);
                let text = all_text(&out);
                assert!(!text.contains("SECRET-"), "{case}, chunk {chunk}: {text}");
                assert!(text.contains("[SECRET_1]"), "{case}, chunk {chunk}: {text}");
            }
            let mut r = blocking();
            let mut out = r.push(input.as_bytes());
            out.extend(r.finish());
            assert_eq!(r.stopped(), Some(StreamStop::Blocked), "{case}");
            assert!(!all_text(&out).contains("SECRET-"), "{case}");
        }
    }
}
