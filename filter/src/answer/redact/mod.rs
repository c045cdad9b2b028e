//! LLM responses on their way back to the agent: the text in them is passed
//! through a redactor, whole for JSON bodies and piece by piece for streams.
//!
//! Streams are server-sent events. A value (an e-mail, a key) can straddle two
//! events, so the redactor works on the *concatenated delta text* of each
//! stream of deltas (an OpenAI choice, an Anthropic content block, a Responses
//! API output part) and may hold back a bounded tail; the held text is released
//! in a delta event of the same shape just before the event that closes that
//! delta stream. Events that carry no delta text pass through unchanged, and
//! bytes are never decoded per network chunk: an event is handled only once it
//! is complete.
//!
//! Events are read the way clients read them (the SSE rules): lines end in LF,
//! CR or CRLF; several `data:` lines are one value joined by `\n`; other fields
//! may come before or after the data; bytes that are not UTF-8 read as U+FFFD.
//! A stream the rewriter cannot judge is cut short, never passed unread: an event
//! longer than the limit ends the stream with an error event, and so does any
//! value found when `response_mode` is `block`.

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{json, Value};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use super::Transform;
use crate::firewall::TextForm;
use crate::stream::{error_event, event_data, Event, EventData, Events, StreamStop};
use crate::work;

/// A redactor for one delta stream (see `firewall::StreamRedactor`).
pub trait DeltaRedactor {
    /// Adds text; returns what is safe to forward now (possibly empty).
    fn push(&mut self, text: &str) -> String;
    /// Returns everything still held.
    fn finish(&mut self) -> String;
    /// Whether a value was found so far (redacted, or for `block`, to refuse).
    fn found_any(&self) -> bool;
}

/// A delta stream: text the model writes piece by piece across events. A value can
/// straddle two of its pieces, so each stream has its own redactor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Stream {
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
    fn form(self) -> TextForm {
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
}

/// The text fields of an OpenAI chat `delta`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum ChoiceText {
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

/// The text of an Anthropic block delta, by the delta's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum BlockText {
    /// `text_delta` `text`.
    Text,
    /// `input_json_delta` `partial_json` (a tool call's input).
    PartialJson,
    /// `thinking_delta` `thinking`.
    Thinking,
}

impl BlockText {
    const ALL: [BlockText; 3] = [BlockText::Text, BlockText::PartialJson, BlockText::Thinking];

    fn key(self) -> &'static str {
        match self {
            BlockText::Text => "text",
            BlockText::PartialJson => "partial_json",
            BlockText::Thinking => "thinking",
        }
    }

    fn delta_type(self) -> &'static str {
        match self {
            BlockText::Text => "text_delta",
            BlockText::PartialJson => "input_json_delta",
            BlockText::Thinking => "thinking_delta",
        }
    }
}

/// The Responses API's streamed texts: `response.<kind>.delta` events, closed by
/// `response.<kind>.done` (which repeats the whole text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum ResponsesText {
    OutputText,
    Refusal,
    FunctionCallArguments,
    CustomToolCallInput,
    McpCallArguments,
    CodeInterpreterCallCode,
    AudioTranscript,
    ReasoningText,
    ReasoningSummaryText,
}

impl ResponsesText {
    const ALL: [ResponsesText; 9] = [
        ResponsesText::OutputText,
        ResponsesText::Refusal,
        ResponsesText::FunctionCallArguments,
        ResponsesText::CustomToolCallInput,
        ResponsesText::McpCallArguments,
        ResponsesText::CodeInterpreterCallCode,
        ResponsesText::AudioTranscript,
        ResponsesText::ReasoningText,
        ResponsesText::ReasoningSummaryText,
    ];

    fn name(self) -> &'static str {
        match self {
            ResponsesText::OutputText => "output_text",
            ResponsesText::Refusal => "refusal",
            ResponsesText::FunctionCallArguments => "function_call_arguments",
            ResponsesText::CustomToolCallInput => "custom_tool_call_input",
            ResponsesText::McpCallArguments => "mcp_call_arguments",
            ResponsesText::CodeInterpreterCallCode => "code_interpreter_call_code",
            ResponsesText::AudioTranscript => "audio.transcript",
            ResponsesText::ReasoningText => "reasoning_text",
            ResponsesText::ReasoningSummaryText => "reasoning_summary_text",
        }
    }

    /// The kind of a `response.<kind>.<suffix>` event type.
    fn of(event_type: &str, suffix: &str) -> Option<ResponsesText> {
        let kind = event_type.strip_prefix("response.")?.strip_suffix(suffix)?;
        ResponsesText::ALL.into_iter().find(|k| k.name() == kind)
    }

    /// The field that numbers its parts.
    fn part_key(self) -> &'static str {
        match self {
            ResponsesText::ReasoningSummaryText => "summary_index",
            _ => "content_index",
        }
    }
}

/// Rewrites an SSE response stream. `new_redactor` makes one redactor per
/// delta stream; `redact_text` redacts a whole text (final summaries that
/// repeat the streamed text).
pub struct SseRewriter<R, N, W>
where
    R: DeltaRedactor,
    N: FnMut(TextForm) -> R,
    W: FnMut(&str, TextForm) -> Option<String>,
{
    new_redactor: N,
    redact_text: W,
    redactors: BTreeMap<Stream, (R, Value)>,
    /// `response_mode` `block`: a value found stops the stream.
    block: bool,
    /// A value was found (in `block` mode: the stream stops after this event).
    found: bool,
    /// The last `event:` name seen: the dialect of an error event.
    event_name: Option<String>,
    stopped: Option<StreamStop>,
    /// More delta streams than [`MAX_STREAMS`]: the stream is cut.
    too_many: bool,
}

/// Most delta streams one answer may open (choices × texts); past it the answer is
/// not read further (each stream holds a redactor).
const MAX_STREAMS: usize = 256;

impl<R, N, W> SseRewriter<R, N, W>
where
    R: DeltaRedactor,
    N: FnMut(TextForm) -> R,
    W: FnMut(&str, TextForm) -> Option<String>,
{
    /// A redacting rewriter.
    pub fn new(new_redactor: N, redact_text: W) -> Self {
        SseRewriter {
            new_redactor,
            redact_text,
            redactors: BTreeMap::new(),
            block: false,
            found: false,
            event_name: None,
            stopped: None,
            too_many: false,
        }
    }

    /// `response_mode` `block`: the first value found ends the stream with an error
    /// event instead of a placeholder.
    pub fn blocking(mut self, block: bool) -> Self {
        self.block = block;
        self
    }

    /// The dialect of an error event sent before any event named one: an event
    /// name of the API the request was for ([`crate::stream::dialect`]).
    pub fn dialect(mut self, event_name: Option<&str>) -> Self {
        self.event_name = event_name.map(str::to_owned);
        self
    }

    /// Why the stream was cut short, once it was.
    pub fn stopped(&self) -> Option<StreamStop> {
        self.stopped
    }

    /// Runs `step`, which writes to `out`; in `block` mode, a value found in it
    /// replaces what it wrote with the error event. Whether the stream goes on.
    fn judged(&mut self, step: impl FnOnce(&mut Self, &mut Events), out: &mut Events) -> bool {
        let mark = out.mark();
        step(self, out);
        let stop = if self.too_many {
            StreamStop::Unreadable
        } else if self.block && self.found {
            StreamStop::Blocked
        } else {
            return true;
        };
        out.rewind(mark);
        self.stop(stop, out);
        false
    }

    /// The redactor of `stream`, made with `template` (the shape of its flush) on
    /// its first delta; `None`, and the stream is cut, past [`MAX_STREAMS`].
    fn redactor(&mut self, stream: Stream, template: impl FnOnce() -> Value) -> Option<&mut R> {
        use std::collections::btree_map::Entry;
        let open = self.redactors.len();
        match self.redactors.entry(stream) {
            Entry::Occupied(held) => Some(&mut held.into_mut().0),
            Entry::Vacant(_) if open >= MAX_STREAMS => {
                self.too_many = true;
                None
            }
            Entry::Vacant(slot) => Some(
                &mut slot
                    .insert(((self.new_redactor)(stream.form()), template()))
                    .0,
            ),
        }
    }

    /// Pushes `text` of `stream`: the text safe to send now, and all of it when
    /// the event also closes the stream (`closes`).
    fn push_delta(
        &mut self,
        stream: Stream,
        text: &str,
        closes: bool,
        template: impl FnOnce() -> Value,
    ) -> Option<String> {
        let redactor = self.redactor(stream, template)?;
        let mut safe = redactor.push(text);
        if closes {
            safe.push_str(&redactor.finish());
        }
        let found = redactor.found_any();
        if closes {
            self.redactors.remove(&stream);
        }
        self.found |= found;
        Some(safe)
    }

    /// Ends the stream with an error event; nothing held goes out.
    fn stop(&mut self, why: StreamStop, out: &mut Events) {
        self.stopped = Some(why);
        self.redactors.clear();
        out.generated(&error_event(
            self.event_name.as_deref(),
            why.code(),
            why.message(),
        ));
    }

    /// Rewrites one event.
    fn rewrite_event(&mut self, whole: Event<'_>, out: &mut Events) {
        let Event {
            bytes: event,
            separator,
            one_line,
        } = whole;
        // Reading the event's data and its JSON, and writing it out again.
        work::charge(3 * event.len() + separator.len());
        let Some(EventData {
            prefix,
            data,
            name,
            joined,
        }) = event_data(event, one_line)
        else {
            out.pass(whole);
            return;
        };
        if name.is_some() {
            self.event_name = name;
        }
        let data: &str = &data;
        if data.trim() == "[DONE]" {
            let streams: Vec<Stream> = self.redactors.keys().copied().collect();
            for stream in streams {
                self.flush(stream, out);
            }
            out.pass(whole);
            return;
        }
        if !joined && self.rewrite_in_place(whole, &prefix, data, out) {
            return;
        }
        let Ok(mut value) = serde_json::from_str::<Value>(data) else {
            self.rewrite_unparsed(whole, &prefix, data, out);
            return;
        };
        // Delta texts go to their streams' redactors; every other string of the event
        // (summaries, fields no stream reads) is judged whole, with the delta texts
        // taken out of it meanwhile. Logprobs repeat the text token by token, which no
        // redaction can follow: they go.
        let closed = ClosedStreams::new(closed_streams(&value));
        let deltas = delta_texts(&value);
        drop_logprobs(&mut value);
        let texts: Vec<Option<String>> = deltas
            .iter()
            .map(
                |&(_, at)| match delta_slot(&mut value, at).map(Value::take) {
                    Some(Value::String(text)) => Some(text),
                    _ => None,
                },
            )
            .collect();
        let mut changed = redact_strings(&mut value, &mut self.redact_text);
        self.found |= changed;
        for ((stream, at), text) in deltas.into_iter().zip(texts) {
            let Some(text) = text else {
                continue;
            };
            let closes = closed.closes(stream);
            let Some(safe) = self.push_delta(stream, &text, closes, || template(&value, stream))
            else {
                return;
            };
            changed |= safe != text;
            if let Some(slot) = delta_slot(&mut value, at) {
                *slot = Value::String(safe);
            }
        }
        // Streams this event closes without a delta of theirs: what they hold goes
        // just before it.
        self.flush_closed(&closed, out);
        if changed {
            let mark = out.mark();
            let writer = out.writer();
            writer.extend_from_slice(prefix.as_bytes());
            writer.extend_from_slice(b"data: ");
            if serde_json::to_writer(&mut *writer, &value).is_err() {
                // Cannot happen for a parsed value; if it did, the event is dropped
                // rather than forwarded unredacted.
                out.rewind(mark);
                return;
            }
            out.close(separator, None);
        } else {
            out.pass(whole);
        }
    }

    /// The common event, handled without building a `Value`: its delta texts are read
    /// in place (borrowed: no escapes in them) and the redacted text is spliced into the
    /// event's own bytes. `false`, having written nothing, for anything else (escaped
    /// text, summaries, fields of unexpected types): the `Value` path handles those,
    /// and data of several lines (`data` must be one line to splice).
    fn rewrite_in_place(
        &mut self,
        whole: Event<'_>,
        prefix: &str,
        data: &str,
        out: &mut Events,
    ) -> bool {
        // A derived struct also reads a JSON array: only objects here.
        if !data.trim_start().starts_with('{') {
            return false;
        }
        let Ok(probe) = serde_json::from_str::<Probe<'_>>(data) else {
            return false;
        };
        let Some(texts) = probe.delta_texts() else {
            return false;
        };
        let mut deltas = Vec::new();
        for (stream, text) in texts {
            let Some(span) = quoted_span(data, text) else {
                return false;
            };
            deltas.push((stream, text, span));
        }
        // Spliced in the order they sit in the event (`delta` may come before `choices`).
        deltas.sort_by_key(|&(_, _, (start, _))| start);
        let closed = ClosedStreams::new(probe.closed_streams());
        // The event, parsed once, for the flush templates of the streams it opens.
        let mut parsed: Option<Value> = None;
        let mut spliced = String::new();
        let mut copied = 0;
        for (stream, text, (start, end)) in deltas {
            let closes = closed.closes(stream);
            let Some(safe) = self.push_delta(stream, text, closes, || {
                let event =
                    parsed.get_or_insert_with(|| serde_json::from_str(data).unwrap_or(Value::Null));
                template(event, stream)
            }) else {
                return true;
            };
            if safe == text {
                continue;
            }
            let (Some(before), Ok(quoted)) =
                (data.get(copied..start), serde_json::to_string(&safe))
            else {
                // Cannot happen (spans are in order, on quotes); if it did, the event
                // is dropped rather than forwarded unredacted.
                return true;
            };
            spliced.push_str(before);
            spliced.push_str(&quoted);
            copied = end;
        }
        self.flush_closed(&closed, out);
        if copied == 0 {
            out.pass(whole);
        } else {
            spliced.push_str(data.get(copied..).unwrap_or_default());
            let writer = out.writer();
            writer.extend_from_slice(prefix.as_bytes());
            writer.extend_from_slice(b"data: ");
            writer.extend_from_slice(spliced.as_bytes());
            out.close(whole.separator, None);
        }
        true
    }

    /// Data the JSON reader refuses (`NaN`, a lone surrogate escape, deep nesting)
    /// that a lenient client may still read: its raw text is redacted whole.
    fn rewrite_unparsed(&mut self, whole: Event<'_>, prefix: &str, data: &str, out: &mut Events) {
        let Some(redacted) = (self.redact_text)(data, TextForm::Json) else {
            out.pass(whole);
            return;
        };
        self.found = true;
        let writer = out.writer();
        writer.extend_from_slice(prefix.as_bytes());
        for (i, line) in redacted.split('\n').enumerate() {
            if i > 0 {
                writer.push(b'\n');
            }
            writer.extend_from_slice(b"data: ");
            writer.extend_from_slice(line.as_bytes());
        }
        out.close(whole.separator, None);
    }

    /// Sends what the streams `closed` holds, before the event that closes them.
    fn flush_closed(&mut self, closed: &ClosedStreams, out: &mut Events) {
        if closed.is_empty() {
            return;
        }
        let streams: Vec<Stream> = self
            .redactors
            .keys()
            .filter(|&&stream| closed.closes(stream))
            .copied()
            .collect();
        for stream in streams {
            self.flush(stream, out);
        }
    }

    /// Sends what `stream`'s redactor holds, in a delta event shaped like the
    /// ones that stream carried.
    fn flush(&mut self, stream: Stream, out: &mut Events) {
        let Some((mut redactor, template)) = self.redactors.remove(&stream) else {
            return;
        };
        let rest = redactor.finish();
        self.found |= redactor.found_any();
        if rest.is_empty() {
            return;
        }
        let event = match stream {
            Stream::Choice(i, ChoiceText::CompletionText) => {
                let mut chunk = template;
                chunk["choices"] = json!([{"index": i, "text": rest, "finish_reason": null}]);
                format!("data: {chunk}\n\n")
            }
            Stream::Choice(i, text) => {
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
            Stream::Block(i, text) => {
                let mut delta = json!({"type": text.delta_type()});
                delta[text.key()] = Value::String(rest);
                let event = json!({"type": "content_block_delta", "index": i, "delta": delta});
                format!("event: content_block_delta\ndata: {event}\n\n")
            }
            Stream::Output(text, output, part) => {
                let mut delta = template;
                delta["delta"] = Value::String(rest);
                delta["output_index"] = json!(output);
                delta[text.part_key()] = json!(part);
                format!("event: response.{}.delta\ndata: {delta}\n\n", text.name())
            }
        };
        out.generated(event.as_bytes());
    }
}

impl<R, N, W> Transform for SseRewriter<R, N, W>
where
    R: DeltaRedactor,
    N: FnMut(TextForm) -> R,
    W: FnMut(&str, TextForm) -> Option<String>,
{
    fn event(&mut self, event: Event<'_>, out: &mut Events) {
        if self.stopped.is_some() {
            return;
        }
        self.judged(|this, out| this.rewrite_event(event, out), out);
    }

    fn too_long(&mut self, out: &mut Events) {
        if self.stopped.is_none() {
            self.stop(StreamStop::Unreadable, out);
        }
    }

    /// What the delta streams still hold goes out.
    fn finish(&mut self, out: &mut Events) {
        if self.stopped.is_some() {
            return;
        }
        self.judged(
            |this, out| {
                let streams: Vec<Stream> = this.redactors.keys().copied().collect();
                for stream in streams {
                    this.flush(stream, out);
                }
            },
            out,
        );
    }

    fn stopped(&self) -> bool {
        self.stopped.is_some()
    }
}

/// The shape a stream's held text is flushed in, from the event that opened it: a
/// chat chunk's envelope without its choices, a Responses event without its text
/// and logprobs (an Anthropic delta is built whole). Small, whatever the event: only
/// the first [`TEMPLATE_MAX_FIELDS`] fields are looked at, and only scalars among them
/// are kept, within [`TEMPLATE_MAX_BYTES`] (an envelope's `id`, `object`, `created`,
/// `model`, … are some hundred bytes). A template is built for every stream an event
/// opens, so a copy of a large field each time would cost the event's size squared.
fn template(event: &Value, stream: Stream) -> Value {
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

/// Removes logprobs wherever they are (`null` for an object, `[]` for a list): they
/// repeat the text token by token, and a value split across tokens cannot be
/// redacted there. Whether anything went.
pub fn drop_logprobs(value: &mut Value) -> bool {
    match value {
        Value::Object(map) => map.iter_mut().fold(false, |changed, (key, item)| {
            if key == "logprobs" {
                let empty = match item {
                    Value::Array(items) if !items.is_empty() => Value::Array(Vec::new()),
                    Value::Object(_) => Value::Null,
                    _ => return changed,
                };
                *item = empty;
                true
            } else {
                drop_logprobs(item) | changed
            }
        }),
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, item| drop_logprobs(item) | changed),
        _ => false,
    }
}

/// `text`'s place in `data` with its quotes, as a byte range: `text` must be a slice of
/// `data` (a borrowed JSON string, so it had no escapes) between two quotes.
fn quoted_span(data: &str, text: &str) -> Option<(usize, usize)> {
    let start = (text.as_ptr() as usize).checked_sub(data.as_ptr() as usize)?;
    let end = start + text.len();
    let quoted = data.as_bytes().get(start.checked_sub(1)?..end + 1)?;
    (quoted.first() == Some(&b'"') && quoted.last() == Some(&b'"')).then_some((start - 1, end + 1))
}

/// The fields of an event the rewriter reads, without a `Value`: text is borrowed from
/// the event, so a string with escapes, like a field of another type than these, fails
/// the parse, and the event takes the `Value` path, which reads it as [`delta_texts`]
/// and [`closed_streams`] say.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Probe<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<&'a str>,
    index: Option<u64>,
    output_index: Option<u64>,
    content_index: Option<u64>,
    #[serde(borrow)]
    choices: Option<Vec<ProbeChoice<'a>>>,
    #[serde(borrow)]
    delta: Option<ProbeDelta<'a>>,
    /// Responses: the text token by token; any makes it a `Value` path event.
    logprobs: Option<Vec<IgnoredAny>>,
    // The envelope the provider writes; any other field: the `Value` path.
    #[serde(rename = "id")]
    _id: Option<IgnoredAny>,
    #[serde(rename = "object")]
    _object: Option<IgnoredAny>,
    #[serde(rename = "created")]
    _created: Option<IgnoredAny>,
    #[serde(rename = "model")]
    _model: Option<IgnoredAny>,
    #[serde(rename = "system_fingerprint")]
    _system_fingerprint: Option<IgnoredAny>,
    #[serde(rename = "service_tier")]
    _service_tier: Option<IgnoredAny>,
    #[serde(rename = "usage")]
    _usage: Option<IgnoredAny>,
    #[serde(rename = "item_id")]
    _item_id: Option<IgnoredAny>,
    #[serde(rename = "sequence_number")]
    _sequence_number: Option<IgnoredAny>,
    #[serde(rename = "obfuscation")]
    _obfuscation: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeChoice<'a> {
    index: Option<u64>,
    #[serde(borrow)]
    delta: Option<ChoiceDelta<'a>>,
    finish_reason: Option<IgnoredAny>,
    /// Repeats the text token by token: such events take the `Value` path.
    logprobs: Option<IgnoredAny>,
}

/// A chat delta with text and nothing else the model writes: any other field (tool
/// calls, reasoning) fails the parse, and the event takes the `Value` path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChoiceDelta<'a> {
    #[serde(borrow)]
    content: Option<&'a str>,
    #[serde(rename = "role")]
    _role: Option<IgnoredAny>,
    /// Text when the model refuses (`null` otherwise).
    refusal: Option<IgnoredAny>,
}

/// A top-level `delta`: text (Responses API), an object with `type` and `text`
/// (Anthropic), or anything else.
enum ProbeDelta<'a> {
    Text(&'a str),
    Object(Option<&'a str>),
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for ProbeDelta<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DeltaVisitor;
        impl<'de> Visitor<'de> for DeltaVisitor {
            type Value = ProbeDelta<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a delta")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(ProbeDelta::Text(v))
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut text = None;
                let mut seen = false;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "type" {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                    // Any text but `text` (a tool call's `partial_json`, `thinking`)
                    // is for the `Value` path.
                    if key != "text" {
                        return Err(serde::de::Error::unknown_field(&key, &["type", "text"]));
                    }
                    // A client reads the last of two `text`s; the `Value` path
                    // decides which one is redacted.
                    if seen {
                        return Err(serde::de::Error::duplicate_field("text"));
                    }
                    seen = true;
                    text = map.next_value::<Option<&'de str>>()?;
                }
                Ok(ProbeDelta::Object(text))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(ProbeDelta::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(ProbeDelta::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(ProbeDelta::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(ProbeDelta::Other)
            }
            fn visit_seq<S: serde::de::SeqAccess<'de>>(
                self,
                mut seq: S,
            ) -> Result<Self::Value, S::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ProbeDelta::Other)
            }
        }
        deserializer.deserialize_any(DeltaVisitor)
    }
}

impl<'a> Probe<'a> {
    /// As [`delta_texts`], with the texts; `None` for events this reader leaves to
    /// the `Value` path: any but a chat chunk, an Anthropic text delta and a
    /// Responses output text delta, and those with more than text in their delta.
    fn delta_texts(&self) -> Option<Vec<(Stream, &'a str)>> {
        if self.logprobs.as_ref().is_some_and(|l| !l.is_empty()) {
            return None;
        }
        let mut found = Vec::new();
        match (self.kind, &self.delta, &self.choices) {
            (None, None, Some(choices)) => {
                for (position, choice) in choices.iter().enumerate() {
                    if choice.logprobs.is_some() {
                        return None;
                    }
                    let Some(delta) = &choice.delta else {
                        continue;
                    };
                    if delta.refusal.is_some() {
                        return None;
                    }
                    if let Some(text) = delta.content {
                        let index = choice.index.unwrap_or(position as u64);
                        found.push((Stream::Choice(index, ChoiceText::Field("content")), text));
                    }
                }
            }
            (Some("content_block_delta"), Some(ProbeDelta::Object(text)), None) => {
                if let Some(text) = text {
                    found.push((
                        Stream::Block(self.index.unwrap_or(0), BlockText::Text),
                        *text,
                    ));
                }
            }
            (Some("response.output_text.delta"), Some(ProbeDelta::Text(text)), None) => {
                let stream = Stream::Output(
                    ResponsesText::OutputText,
                    self.output_index.unwrap_or(0),
                    self.content_index.unwrap_or(0),
                );
                found.push((stream, *text));
            }
            _ => return None,
        }
        Some(found)
    }

    /// As [`closed_streams`], for the events [`Probe::delta_texts`] reads.
    fn closed_streams(&self) -> Vec<Closed> {
        let mut closed = Vec::new();
        for (position, choice) in self.choices.iter().flatten().enumerate() {
            if choice.finish_reason.is_some() {
                closed.push(Closed::Choice(choice.index.unwrap_or(position as u64)));
            }
        }
        closed
    }
}

/// Where an event carries delta text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DeltaAt {
    /// `choices[p].delta.<key>` (`p` the position in the array).
    Choice(usize, &'static str),
    /// `choices[p].delta.tool_calls[c].function.arguments`.
    ToolArguments(usize, usize),
    /// `choices[p].delta.function_call.arguments`.
    FunctionArguments(usize),
    /// `choices[p].delta.audio.transcript`.
    AudioTranscript(usize),
    /// `choices[p].text`.
    CompletionText(usize),
    /// `delta.<key>`.
    DeltaKey(&'static str),
    /// `delta`.
    Delta,
}

/// The value at `at` in an event.
fn delta_slot(value: &mut Value, at: DeltaAt) -> Option<&mut Value> {
    fn choice_delta(value: &mut Value, p: usize) -> Option<&mut Value> {
        value.get_mut("choices")?.get_mut(p)?.get_mut("delta")
    }
    match at {
        DeltaAt::Choice(p, key) => choice_delta(value, p)?.get_mut(key),
        DeltaAt::ToolArguments(p, c) => choice_delta(value, p)?
            .get_mut("tool_calls")?
            .get_mut(c)?
            .get_mut("function")?
            .get_mut("arguments"),
        DeltaAt::FunctionArguments(p) => choice_delta(value, p)?
            .get_mut("function_call")?
            .get_mut("arguments"),
        DeltaAt::AudioTranscript(p) => choice_delta(value, p)?
            .get_mut("audio")?
            .get_mut("transcript"),
        DeltaAt::CompletionText(p) => value.get_mut("choices")?.get_mut(p)?.get_mut("text"),
        DeltaAt::DeltaKey(key) => value.get_mut("delta")?.get_mut(key),
        DeltaAt::Delta => value.get_mut("delta"),
    }
}

/// `v`'s `key` number, or `default` (an index a provider left out: the position).
fn index_of(v: &Value, key: &str, default: usize) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(default as u64)
}

/// An event's `choices`, with their positions.
fn choices(value: &Value) -> impl Iterator<Item = (usize, &Value)> {
    value
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

/// The delta texts an event carries, with their stream and place.
fn delta_texts(value: &Value) -> Vec<(Stream, DeltaAt)> {
    let is_text = |v: Option<&Value>| v.is_some_and(Value::is_string);
    let mut found = Vec::new();
    for (p, choice) in choices(value) {
        let i = index_of(choice, "index", p);
        if is_text(choice.get("text")) {
            found.push((
                Stream::Choice(i, ChoiceText::CompletionText),
                DeltaAt::CompletionText(p),
            ));
        }
        let Some(delta) = choice.get("delta") else {
            continue;
        };
        for key in CHOICE_TEXT_FIELDS {
            if is_text(delta.get(key)) {
                found.push((
                    Stream::Choice(i, ChoiceText::Field(key)),
                    DeltaAt::Choice(p, key),
                ));
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
                let stream =
                    Stream::Choice(i, ChoiceText::ToolArguments(index_of(call, "index", c)));
                found.push((stream, DeltaAt::ToolArguments(p, c)));
            }
        }
        if is_text(delta.get("function_call").and_then(|f| f.get("arguments"))) {
            found.push((
                Stream::Choice(i, ChoiceText::FunctionArguments),
                DeltaAt::FunctionArguments(p),
            ));
        }
        if is_text(delta.get("audio").and_then(|a| a.get("transcript"))) {
            found.push((
                Stream::Choice(i, ChoiceText::AudioTranscript),
                DeltaAt::AudioTranscript(p),
            ));
        }
    }
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kind == "content_block_delta" {
        let i = index_of(value, "index", 0);
        for text in BlockText::ALL {
            if is_text(value.get("delta").and_then(|d| d.get(text.key()))) {
                found.push((Stream::Block(i, text), DeltaAt::DeltaKey(text.key())));
            }
        }
    } else if let Some(text) = ResponsesText::of(kind, ".delta") {
        if is_text(value.get("delta")) {
            let stream = Stream::Output(
                text,
                index_of(value, "output_index", 0),
                index_of(value, text.part_key(), 0),
            );
            found.push((stream, DeltaAt::Delta));
        }
    }
    found
}

/// Delta streams an event closes: held text must go out before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Closed {
    /// Every stream of choice `i` (it has a `finish_reason`).
    Choice(u64),
    /// Every stream of block `i` (`content_block_stop`).
    Block(u64),
    /// One Responses stream (its `.done` event).
    Output(ResponsesText, u64, u64),
}

impl Closed {
    fn closes(self, stream: Stream) -> bool {
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
struct ClosedStreams {
    choices: Vec<u64>,
    /// Blocks and Responses parts: one at most (the event's own type closes it).
    others: Vec<Closed>,
}

impl ClosedStreams {
    fn new(closed: Vec<Closed>) -> ClosedStreams {
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

    fn is_empty(&self) -> bool {
        self.choices.is_empty() && self.others.is_empty()
    }

    fn closes(&self, stream: Stream) -> bool {
        work::charge(self.choices.len().max(2).ilog2() as usize + self.others.len());
        match stream {
            Stream::Choice(i, _) => self.choices.binary_search(&i).is_ok(),
            _ => self.others.iter().any(|c| c.closes(stream)),
        }
    }
}

/// The delta streams an event closes.
fn closed_streams(value: &Value) -> Vec<Closed> {
    let mut closed = Vec::new();
    for (p, choice) in choices(value) {
        if choice.get("finish_reason").is_some_and(|f| !f.is_null()) {
            closed.push(Closed::Choice(index_of(choice, "index", p)));
        }
    }
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kind == "content_block_stop" {
        closed.push(Closed::Block(index_of(value, "index", 0)));
    } else if let Some(text) = ResponsesText::of(kind, ".done") {
        closed.push(Closed::Output(
            text,
            index_of(value, "output_index", 0),
            index_of(value, text.part_key(), 0),
        ));
    }
    closed
}

/// Keys whose string values are identifiers, enums or opaque blobs (signatures,
/// encrypted reasoning, images), never generated text: a placeholder in a blob
/// would break it. Not applied inside a tool call's input, which the model writes
/// whole.
const NON_TEXT_KEYS: [&str; 17] = [
    "signature",
    "encrypted_content",
    "partial_image_b64",
    "b64_json",
    "id",
    "object",
    "model",
    "type",
    "role",
    "finish_reason",
    "stop_reason",
    "system_fingerprint",
    "status",
    "tool_call_id",
    "call_id",
    "item_id",
    "service_tier",
];

/// How a text is redacted: `redact(text, form)` gives the redacted text, or `None`.
pub type Redact<'a> = dyn FnMut(&str, TextForm) -> Option<String> + 'a;

/// Redacts every generated string in `value`; whether anything changed. A tool
/// call's `arguments` string is JSON text ([`TextForm::Json`]).
pub fn redact_strings(value: &mut Value, redact: &mut Redact) -> bool {
    redact_within(value, redact, true, TextForm::Prose)
}

/// [`redact_strings`], skipping [`NON_TEXT_KEYS`] when `skip_keys`; the object a
/// tool call takes as `input` or `arguments` is the model's, every key of it.
fn redact_within(value: &mut Value, redact: &mut Redact, skip_keys: bool, form: TextForm) -> bool {
    match value {
        Value::String(text) => match redact(text, form) {
            Some(redacted) => {
                *text = redacted;
                true
            }
            None => false,
        },
        Value::Array(items) => items.iter_mut().fold(false, |changed, item| {
            redact_within(item, redact, skip_keys, TextForm::Prose) | changed
        }),
        Value::Object(map) => map.iter_mut().fold(false, |changed, (key, item)| {
            let key = key.as_str();
            if skip_keys && NON_TEXT_KEYS.contains(&key) {
                return changed;
            }
            let tool_input = matches!(key, "input" | "arguments") && item.is_object();
            // The envelope's `arguments` string (chat and Responses tool calls) is JSON
            // text; inside a tool's input, a key of that name is the tool's own.
            let form = if skip_keys && key == "arguments" && item.is_string() {
                TextForm::Json
            } else {
                TextForm::Prose
            };
            redact_within(item, redact, skip_keys && !tool_input, form) | changed
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// A whole (non-streaming) response body with its generated text redacted and its
/// logprobs removed; `None` when nothing changed. A body that is not JSON is
/// redacted as text.
pub fn redact_body(body: &[u8], redact: &mut Redact) -> Option<Vec<u8>> {
    // Parsing the body, walking its strings and writing it out again.
    work::charge(3 * body.len());
    match serde_json::from_slice::<Value>(body) {
        Ok(mut value) => {
            let changed = drop_logprobs(&mut value) | redact_strings(&mut value, redact);
            changed.then(|| value.to_string().into_bytes())
        }
        Err(_) => redact(&String::from_utf8_lossy(body), TextForm::Prose).map(String::into_bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::Piped;

    /// Redacts the word SECRET-<digits>, holding back the unfinished last word
    /// like the firewall's stream redactor does for real values.
    struct Fake {
        held: String,
        found: bool,
    }

    fn redact_all(text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(at) = rest.find("SECRET-") {
            out.push_str(&rest[..at]);
            let digits = rest[at + 7..]
                .chars()
                .take_while(char::is_ascii_digit)
                .count();
            out.push_str("[SECRET_1]");
            rest = &rest[at + 7 + digits..];
        }
        out.push_str(rest);
        out
    }

    impl DeltaRedactor for Fake {
        fn push(&mut self, text: &str) -> String {
            // Hold back the unfinished last word, as the real redactor does.
            self.held.push_str(text);
            let cut = self.held.rfind(' ').map_or(0, |space| space + 1);
            let release: String = self.held.drain(..cut).collect();
            let out = redact_all(&release);
            self.found |= out != release;
            out
        }
        fn finish(&mut self) -> String {
            let held = std::mem::take(&mut self.held);
            let out = redact_all(&held);
            self.found |= out != held;
            out
        }
        fn found_any(&self) -> bool {
            self.found
        }
    }

    const MAX_EVENT: usize = 1 << 20;

    /// The rewriter over the fake redactor.
    type FakeRewriter =
        SseRewriter<Fake, fn(TextForm) -> Fake, fn(&str, TextForm) -> Option<String>>;

    fn rewriter() -> Piped<FakeRewriter> {
        rewriter_holding(MAX_EVENT)
    }

    /// A rewriter that holds at most `max_event_bytes` of one event.
    fn rewriter_holding(max_event_bytes: usize) -> Piped<FakeRewriter> {
        Piped::new(bare(), max_event_bytes)
    }

    /// The rewriter, without a stream around it.
    fn bare() -> FakeRewriter {
        fn new_redactor(_: TextForm) -> Fake {
            Fake {
                held: String::new(),
                found: false,
            }
        }
        fn redact_whole(t: &str, _: TextForm) -> Option<String> {
            let r = redact_all(t);
            (r != t).then_some(r)
        }
        SseRewriter::new(new_redactor, redact_whole)
    }

    fn openai_stream(pieces: &[&str]) -> Vec<u8> {
        let mut s = String::new();
        for p in pieces {
            s.push_str(&format!("data: {}\n\n", json!({"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":p},"finish_reason":null}]})));
        }
        s.push_str(&format!("data: {}\n\n", json!({"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})));
        s.push_str("data: [DONE]\n\n");
        s.into_bytes()
    }

    /// The text a client reassembles from an OpenAI stream.
    fn openai_text(stream: &[u8]) -> String {
        String::from_utf8_lossy(stream)
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|v| {
                v.pointer("/choices/0/delta/content")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect()
    }

    fn run(input: &[u8], chunk: usize) -> Vec<u8> {
        let mut r = rewriter();
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            out.extend(r.push(piece));
        }
        out.extend(r.finish());
        out
    }

    #[test]
    fn a_value_split_across_events_and_chunks_is_redacted() {
        let input = openai_stream(&[
            "Your key is SEC",
            "RET-12",
            "345 and ",
            "that is all. ",
            "Ünïcödé ✓",
        ]);
        for chunk in [1, 3, 7, 64, input.len()] {
            let out = run(&input, chunk);
            assert_eq!(
                openai_text(&out),
                "Your key is [SECRET_1] and that is all. Ünïcödé ✓",
                "chunk {chunk}"
            );
            assert!(
                !String::from_utf8_lossy(&out).contains("SECRET-"),
                "chunk {chunk}"
            );
            assert!(String::from_utf8_lossy(&out).ends_with("data: [DONE]\n\n"));
        }
    }

    #[test]
    fn clean_streams_are_forwarded_byte_for_byte() {
        let input = b": keep-alive\n\nevent: ping\ndata: {\"type\":\"ping\"}\n\n".to_vec();
        assert_eq!(run(&input, 5), input);
    }

    #[test]
    fn anthropic_blocks_flush_before_their_stop() {
        let event = |kind: &str, body: Value| format!("event: {kind}\ndata: {body}\n\n");
        let mut input = String::new();
        input += &event(
            "content_block_delta",
            json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"key SECRET-9"}}),
        );
        input += &event(
            "content_block_delta",
            json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"9 end"}}),
        );
        input += &event(
            "content_block_stop",
            json!({"type":"content_block_stop","index":0}),
        );
        let out = String::from_utf8(run(input.as_bytes(), 4)).unwrap();
        let text: String = out
            .split("\n\n")
            .filter_map(|e| e.split("data: ").nth(1))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|v| {
                v.pointer("/delta/text")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect();
        assert_eq!(text, "key [SECRET_1] end");
        assert!(out.find("[SECRET_1]").unwrap() < out.find("content_block_stop").unwrap());
    }

    /// `body` through [`redact_body`] with the fake redaction; `None` if unchanged.
    fn redacted_body(body: &Value) -> Option<Value> {
        let mut redact = |t: &str, _| {
            let r = redact_all(t);
            (r != t).then_some(r)
        };
        let out = redact_body(body.to_string().as_bytes(), &mut redact)?;
        serde_json::from_slice(&out).ok()
    }

    #[test]
    fn whole_bodies_redact_text_but_not_identifiers() {
        let body = json!({"id":"SECRET-1","object":"chat.completion","choices":[{"message":{"role":"assistant","content":"use SECRET-42"}}]});
        let out = redacted_body(&body).unwrap();
        assert_eq!(out["choices"][0]["message"]["content"], "use [SECRET_1]");
        assert_eq!(out["id"], "SECRET-1");
        assert!(redacted_body(&json!({"a": "clean"})).is_none());
    }

    #[test]
    fn an_endless_event_ends_the_stream_unread() {
        let mut r = rewriter_holding(4096);
        let first = r.push(b"event: content_block_delta\ndata: {}\n\ndata: SECRET-1 ");
        assert_eq!(first, b"event: content_block_delta\ndata: {}\n\n");
        let mut out = Vec::new();
        for _ in 0..5 {
            out.extend(r.push(&[b'x'; 1024]));
        }
        out.extend(r.push(b"\n\ndata: more\n\n"));
        out.extend(r.finish());
        assert_eq!(r.stopped(), Some(StreamStop::Unreadable));
        let out = String::from_utf8(out).unwrap();
        // Anthropic's dialect (the last event name), and nothing of the event.
        assert!(out.starts_with("event: error\ndata: "), "{out}");
        assert!(out.contains("KALGUARD_UNAVAILABLE"));
        assert!(!out.contains("SECRET") && !out.contains("xx") && !out.contains("more"));
    }

    /// The rewriter in `block` mode.
    fn blocking() -> Piped<FakeRewriter> {
        Piped::new(bare().blocking(true), MAX_EVENT)
    }

    #[test]
    fn block_mode_ends_the_stream_at_the_first_value() {
        let input = openai_stream(&["The key ", "is SEC", "RET-12", "3 and more ", "text."]);
        for chunk in [1, 4, input.len()] {
            let mut r = blocking();
            let mut out = Vec::new();
            for piece in input.chunks(chunk) {
                out.extend(r.push(piece));
            }
            out.extend(r.finish());
            assert_eq!(r.stopped(), Some(StreamStop::Blocked), "chunk {chunk}");
            let out = String::from_utf8(out).unwrap();
            assert!(!out.contains("SECRET") && !out.contains("more"), "{out}");
            assert_eq!(openai_text(out.as_bytes()), "The key is ", "chunk {chunk}");
            // The SDKs raise on the error; the stream then ends.
            assert!(out.contains(r#""code":"PROMPT_BLOCKED""#), "{out}");
            assert!(out.ends_with("data: [DONE]\n\n"));
            assert_eq!(out.matches("[DONE]").count(), 1);
        }
        // A clean stream goes through whole.
        let clean = openai_stream(&["nothing ", "to see"]);
        let mut r = blocking();
        let mut out = r.push(&clean);
        out.extend(r.finish());
        assert_eq!(openai_text(&out), "nothing to see");
        assert!(out.ends_with(b"data: [DONE]\n\n"));
        assert_eq!(r.stopped(), None);
    }

    #[test]
    fn a_stream_cut_before_any_named_event_speaks_its_api() {
        use crate::route::Format;
        use crate::stream::dialect as stream_dialect;
        let mut r = Piped::new(
            bare().dialect(stream_dialect(Format::AnthropicMessages)),
            64,
        );
        let out = String::from_utf8(r.push(&[b'x'; 100])).unwrap();
        assert!(out.starts_with("event: error\ndata: {\"error\""), "{out}");
        assert_eq!(stream_dialect(Format::OpenAiChat), None);
    }

    #[test]
    fn block_mode_catches_values_held_to_the_end_and_in_summaries() {
        // The value is the held tail, found only when the stream closes.
        let mut r = blocking();
        let mut out = r.push(&openai_stream(&["ends with SECRET-9"])[..]);
        out.extend(r.finish());
        assert_eq!(r.stopped(), Some(StreamStop::Blocked));
        assert!(!String::from_utf8_lossy(&out).contains("SECRET-9"));
        // A Responses API summary repeating the text.
        let mut r = blocking();
        let done = json!({"type":"response.output_text.done","text":"SECRET-5 here"});
        let out = r.push(format!("event: response.output_text.done\ndata: {done}\n\n").as_bytes());
        assert_eq!(r.stopped(), Some(StreamStop::Blocked));
        let out = String::from_utf8(out).unwrap();
        assert!(out.starts_with("event: error\n") && out.contains(r#""code":"PROMPT_BLOCKED""#));
        assert!(!out.contains("SECRET-5"));
        assert!(r.push(b"data: {}\n\n").is_empty() && r.finish().is_empty());
    }

    /// One OpenAI chunk's JSON carrying `text`.
    fn chunk_json(text: &str) -> String {
        json!({"choices":[{"index":0,"delta":{"content":text}}]}).to_string()
    }

    #[test]
    fn any_bytes_in_any_chunks_are_handled() {
        // Streams stitched from pieces that matter to the reader, cut anywhere: no
        // panic, and a stream cut short says why.
        let pieces: [&[u8]; 16] = [
            b"data: ",
            b"data:",
            br#"{"choices":[{"index":0,"delta":{"content":""#,
            br#""}}]}"#,
            b"SECRET-",
            b"42 ",
            b"\n",
            b"\r",
            b"\r\n",
            b"event: content_block_delta",
            b"[DONE]",
            b"\xff\xfe",
            b"id: 1",
            b"\\u00e9\\\"",
            br#"{"type":"response.output_text.done","text":"SECRET-1"}"#,
            "é✓".as_bytes(),
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: usize| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) as usize % n
        };
        for round in 0..3000 {
            let mut input = Vec::new();
            for _ in 0..next(40) {
                input.extend_from_slice(pieces[next(pieces.len())]);
            }
            let chunk = 1 + next(17);
            let mut r = Piped::new(bare().blocking(round % 2 == 1), MAX_EVENT);
            let mut out = Vec::new();
            for piece in input.chunks(chunk) {
                out.extend(r.push(piece));
            }
            out.extend(r.finish());
            if r.stopped().is_some() {
                assert!(String::from_utf8_lossy(&out).contains("PROMPT_BLOCKED"));
            }
            // No string a client parses out of an event holds a whole value.
            for data in String::from_utf8_lossy(&out)
                .split(['\n', '\r'])
                .filter_map(|line| line.strip_prefix("data:"))
            {
                if let Ok(value) = serde_json::from_str::<Value>(data.trim_start()) {
                    let mut text = String::new();
                    strings(&value, &mut |s| text.push_str(&format!("{s}\u{0}")));
                    let leaked = text
                        .match_indices("SECRET-")
                        .any(|(at, _)| text[at + 7..].starts_with(|c: char| c.is_ascii_digit()));
                    assert!(
                        !leaked,
                        "round {round}: {text:?} from {:?}",
                        String::from_utf8_lossy(&input)
                    );
                }
            }
        }
    }

    /// Calls `each` on every string in `value`.
    fn strings(value: &Value, each: &mut dyn FnMut(&str)) {
        match value {
            Value::String(s) => each(s),
            Value::Array(items) => items.iter().for_each(|v| strings(v, each)),
            Value::Object(map) => map.values().for_each(|v| strings(v, each)),
            _ => {}
        }
    }

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

    #[test]
    fn shapes_the_fast_path_must_leave_to_the_value_path() {
        let chunk = |choice: Value| json!({"id": "c", "choices": [choice]});
        let cases: Vec<(&str, Vec<Value>)> = vec![
            (
                "a legacy completion's text",
                vec![
                    chunk(json!({"index": 0, "text": "key SEC"})),
                    chunk(json!({"index": 0, "text": "RET-5 ok "})),
                    chunk(json!({"index": 0, "text": "", "finish_reason": "stop"})),
                ],
            ),
            (
                "the last text in the closing chunk",
                vec![
                    chunk(json!({"index": 0, "delta": {"content": "key SEC"}})),
                    chunk(
                        json!({"index": 0, "delta": {"content": "RET-12 end "}, "finish_reason": "stop"}),
                    ),
                ],
            ),
            (
                "a field the fast path does not know",
                vec![
                    json!({"id": "c", "note": "SECRET-6 x", "choices": [{"index": 0, "delta": {"content": "ok "}}]}),
                ],
            ),
            (
                "logprobs",
                vec![chunk(json!({"index": 0, "delta": {"content": "SECRET-9 "},
                    "logprobs": {"content": [{"token": "SEC"}, {"token": "RET-9"}]}}))],
            ),
        ];
        for (case, events) in cases {
            let input: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
            for chunk in [1, 9, input.len()] {
                let out = String::from_utf8(run(input.as_bytes(), chunk)).unwrap();
                assert!(
                    !out.contains("SECRET-") && !out.contains("RET-"),
                    "{case}, chunk {chunk}: {out}"
                );
                assert!(out.contains("[SECRET_1]"), "{case}, chunk {chunk}: {out}");
            }
        }
        // The closing chunk carries the held text itself: nothing after it.
        let input = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a SEC\"}}]}\n\n\
                     data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"RET-1 b\"},\"finish_reason\":\"stop\"}]}\n\n";
        let out = String::from_utf8(run(input.as_bytes(), 4)).unwrap();
        assert!(
            out.trim_end().ends_with("\"finish_reason\":\"stop\"}]}"),
            "{out}"
        );
        assert_eq!(openai_text(out.as_bytes()), "a [SECRET_1] b");
    }

    #[test]
    fn hostile_events_cost_little_and_cannot_crash_the_rewriter() {
        // A JSON array reads as a derived struct: it must not become a template.
        let mut r = rewriter();
        let mut out =
            r.push(b"data: [\"response.output_text.delta\",null,null,null,null,\"abc\"]\n\n");
        out.extend(r.push(b"data: [null,[{\"delta\":{\"content\":\"x\"}}]]\n\n"));
        out.extend(r.finish());
        assert!(!out.is_empty());
        // Thousands of streams in one event: cut at MAX_STREAMS, in linear time.
        let choices: Vec<Value> = (0..4000)
            .map(|i| json!({"index": i, "delta": {"content": "word "}}))
            .collect();
        let event = format!("data: {}\n\n", json!({"choices": choices}));
        let started = std::time::Instant::now();
        let mut r = rewriter();
        let out = String::from_utf8(r.push(event.as_bytes())).unwrap();
        assert_eq!(r.stopped(), Some(StreamStop::Unreadable));
        assert!(out.contains("KALGUARD_UNAVAILABLE") && !out.contains("word"));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        // An event in many small chunks is searched once, not once per chunk.
        let mut r = rewriter();
        let started = std::time::Instant::now();
        let big = format!("data: {}", chunk_json(&"x".repeat(900_000)));
        for piece in big.as_bytes().chunks(64) {
            assert!(r.push(piece).is_empty());
        }
        assert!(!r.push(b"\n\n").is_empty());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn whole_bodies_judge_tool_inputs_and_keep_blobs() {
        let body = json!({"content": [
            {"type": "tool_use", "id": "t1", "name": "mail", "input": {"id": "SECRET-31", "to": "x"}},
            {"type": "thinking", "thinking": "fine", "signature": "SECRET-32"},
        ], "choices": [{"logprobs": {"content": [{"token": "SECRET-"}]}}]});
        let out = redacted_body(&body).unwrap();
        assert_eq!(out["content"][0]["input"]["id"], "[SECRET_1]");
        assert_eq!(out["content"][0]["id"], "t1");
        assert_eq!(
            out["content"][1]["signature"], "SECRET-32",
            "a placeholder would break it"
        );
        assert_eq!(out["choices"][0]["logprobs"], Value::Null);
    }

    #[test]
    fn json_the_reader_refuses_is_redacted_as_text() {
        // `NaN` is no JSON to serde, but Python's `json` reads it.
        let input =
            b"data: {\"choices\":[{\"delta\":{\"content\":\"key SECRET-12 \"}}],\"x\":NaN}\n\n";
        let out = String::from_utf8(run(input, 5)).unwrap();
        assert!(
            !out.contains("SECRET-") && out.contains("[SECRET_1]"),
            "{out}"
        );
        let mut r = blocking();
        let out = r.push(input);
        assert_eq!(r.stopped(), Some(StreamStop::Blocked));
        assert!(!String::from_utf8_lossy(&out).contains("SECRET-"));
    }

    #[test]
    fn the_stream_edges_hide_nothing() {
        // A byte-order mark before the first event (EventSource skips it).
        let mut input = b"\xEF\xBB\xBF".to_vec();
        input.extend_from_slice(format!("data: {}\n\n", chunk_json("key SECRET-77 ")).as_bytes());
        for chunk in [1, 2, input.len()] {
            let out = run(&input, chunk);
            assert!(out.starts_with(b"\xEF\xBB\xBF"));
            assert!(
                !String::from_utf8_lossy(&out).contains("SECRET-77"),
                "chunk {chunk}"
            );
        }
        // An unterminated last event is ended before what the stream still holds.
        let input = format!(
            "data: {}\n\ndata: {}",
            chunk_json("one SECRET-"),
            chunk_json("2")
        );
        let out = String::from_utf8(run(input.as_bytes(), 3)).unwrap();
        assert!(
            out.split("\n\n").all(|e| e.matches("data: ").count() <= 1),
            "{out}"
        );
        assert!(!out.contains("SECRET-2"), "{out}");
    }

    #[test]
    fn an_event_ended_by_a_return_goes_at_once() {
        // Nothing follows the `\r` that ends the empty line yet: a client has the
        // event, so the rewriter must not hold it back for a `\n` that may come.
        let mut r = rewriter();
        let event = format!("data: {}\r\r", chunk_json("hi "));
        let out = r.push(event.as_bytes());
        assert_eq!(
            openai_text(
                &out.iter()
                    .map(|&b| if b == b'\r' { b'\n' } else { b })
                    .collect::<Vec<u8>>()
            ),
            "hi "
        );
        // A `\n` that then follows is an empty line of its own, passed as it came.
        let mut out = r.push(b"\ndata: [DONE]\n\n");
        out.extend(r.finish());
        assert_eq!(out, b"\ndata: [DONE]\n\n");
    }

    #[test]
    fn events_are_read_as_clients_read_them() {
        let value = chunk_json("key SECRET-77 ");
        let (head, tail) = value.split_at(value.find("\"delta\"").unwrap());
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "data over two lines",
                format!("data: {head}\ndata: {tail}\n\n").into_bytes(),
            ),
            (
                "an id after the data",
                format!("data: {value}\nid: 7\n\n").into_bytes(),
            ),
            ("CR line ends", format!("data: {value}\r\r").into_bytes()),
            (
                "mixed line ends",
                format!("event: x\r\ndata: {value}\n\r\n").into_bytes(),
            ),
            (
                "`data:` without a space",
                format!("data:{value}\n\n").into_bytes(),
            ),
            (
                "no end before the stream's",
                format!("data: {value}").into_bytes(),
            ),
            ("bytes that are not UTF-8", {
                let mut bytes = format!("data: {}", chunk_json("~key SECRET-77 ")).into_bytes();
                let at = bytes.iter().position(|&b| b == b'~').unwrap();
                bytes[at] = 0xff;
                bytes.extend_from_slice(b"\n\n");
                bytes
            }),
        ];
        for (case, input) in cases {
            for chunk in [1, 3, input.len()] {
                let out = run(&input, chunk);
                let text = String::from_utf8_lossy(&out);
                assert!(!text.contains("SECRET-77"), "{case}, chunk {chunk}: {text}");
                assert!(text.contains("[SECRET_1]"), "{case}, chunk {chunk}: {text}");
            }
        }
    }

    #[test]
    fn escaped_and_plain_events_redact_alike() {
        // Plain pieces take the in-place path, escaped ones (newline, quote, \u) the
        // `Value` path; a value split across the two kinds is still one value.
        let input = openai_stream(&[
            "line one\nkey SEC",
            "RET-4",
            "2 \"quoted\" ",
            "caf\u{e9} SECRET-7",
            "7 done ",
        ]);
        for chunk in [1, 5, input.len()] {
            let out = run(&input, chunk);
            assert_eq!(
                openai_text(&out),
                "line one\nkey [SECRET_1] \"quoted\" caf\u{e9} [SECRET_1] done ",
                "chunk {chunk}"
            );
            assert!(!String::from_utf8_lossy(&out).contains("SECRET-"));
        }
    }

    #[test]
    fn a_repeated_text_key_is_not_smuggled_past_redaction() {
        // A client keeps the last `text`: it must be the redacted one.
        let input = "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"ok \",\"text\":\"SECRET-1 \"}}\n\ndata: [DONE]\n\n";
        let out = String::from_utf8(run(input.as_bytes(), input.len())).unwrap();
        assert!(!out.contains("SECRET-"), "{out}");
        assert!(out.contains("[SECRET_1]"), "{out}");
    }

    #[test]
    fn deltas_are_spliced_in_the_order_they_sit_in_the_event() {
        // A Responses-style `delta` before `choices`, both carrying text.
        let input = "data: {\"type\":\"response.output_text.delta\",\"delta\":\"SECRET-5 a \",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"SECRET-6 b \"}}]}\n\ndata: [DONE]\n\n";
        let out = String::from_utf8(run(input.as_bytes(), input.len())).unwrap();
        assert!(!out.contains("SECRET-"), "{out}");
        let event: Value = serde_json::from_str(
            out.split("\n\n")
                .next()
                .unwrap()
                .trim_start_matches("data: "),
        )
        .unwrap();
        assert_eq!(event["delta"], "[SECRET_1] a ");
        assert_eq!(event["choices"][0]["delta"]["content"], "[SECRET_1] b ");
    }

    #[test]
    fn an_event_keeps_its_own_bytes_around_the_redacted_text() {
        let input = "data: {\"model\":1,\"choices\":[{\"index\":0,\"delta\":{\"content\":\"SECRET-3 x \"},\"finish_reason\":null}],\"id\":2}\n\n";
        let out = String::from_utf8(run(input.as_bytes(), input.len())).unwrap();
        assert!(
            out.starts_with("data: {\"model\":1,\"choices\":[{\"index\":0,\"delta\":{\"content\":\"[SECRET_1] x \"},\"finish_reason\":null}],\"id\":2}\n\n"),
            "{out}"
        );
    }
}
