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

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{json, Value};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// A redactor for one delta stream (see `firewall::StreamRedactor`).
pub trait DeltaRedactor {
    /// Adds text; returns what is safe to forward now (possibly empty).
    fn push(&mut self, text: &str) -> String;
    /// Returns everything still held.
    fn finish(&mut self) -> String;
}

/// Where an event's delta text sits, and which delta stream it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Stream {
    /// OpenAI chat `choices[i].delta.content`.
    Choice(u64),
    /// Anthropic `content_block_delta` text of block `i`.
    Block(u64),
    /// OpenAI Responses `response.output_text.delta` of output `i`, part `j`.
    OutputText(u64, u64),
}

/// Most bytes of one incomplete event held while waiting for its end; a longer
/// "event" is not SSE the filter understands and is forwarded as it came.
const MAX_EVENT_BYTES: usize = 1 << 20;

/// Rewrites an SSE response stream. `new_redactor` makes one redactor per
/// delta stream; `redact_text` redacts a whole text (final summaries that
/// repeat the streamed text).
pub struct SseRewriter<R, N, W>
where
    R: DeltaRedactor,
    N: FnMut() -> R,
    W: FnMut(&str) -> Option<String>,
{
    new_redactor: N,
    redact_text: W,
    redactors: BTreeMap<Stream, (R, Value)>,
    partial: Vec<u8>,
}

impl<R, N, W> SseRewriter<R, N, W>
where
    R: DeltaRedactor,
    N: FnMut() -> R,
    W: FnMut(&str) -> Option<String>,
{
    pub fn new(new_redactor: N, redact_text: W) -> Self {
        SseRewriter {
            new_redactor,
            redact_text,
            redactors: BTreeMap::new(),
            partial: Vec::new(),
        }
    }

    /// Adds a network chunk; returns the bytes to forward now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.partial.extend_from_slice(chunk);
        let mut out = Vec::with_capacity(chunk.len());
        // Events are read in place; the bytes of complete events are dropped once, at
        // the end (dropping each from the front would move the rest every time).
        let partial = std::mem::take(&mut self.partial);
        let mut at = 0;
        while let Some((end, separator)) = partial.get(at..).and_then(event_end) {
            let event = partial.get(at..at + end).unwrap_or_default();
            let separator_bytes = partial
                .get(at + end..at + end + separator)
                .unwrap_or_default();
            self.rewrite_event(event, separator_bytes, &mut out);
            at += end + separator;
        }
        self.partial = partial;
        self.partial.drain(..at);
        if self.partial.len() > MAX_EVENT_BYTES {
            out.append(&mut self.partial);
        }
        out
    }

    /// The end of the stream: whatever is held goes out.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let streams: Vec<Stream> = self.redactors.keys().copied().collect();
        for stream in streams {
            self.flush(stream, &mut out);
        }
        out.append(&mut self.partial);
        out
    }

    fn rewrite_event(&mut self, event: &[u8], separator: &[u8], out: &mut Vec<u8>) {
        let Some((prefix, data)) = single_data_line(event) else {
            out.extend_from_slice(event);
            out.extend_from_slice(separator);
            return;
        };
        if data.trim() == "[DONE]" {
            let streams: Vec<Stream> = self.redactors.keys().copied().collect();
            for stream in streams {
                self.flush(stream, out);
            }
            out.extend_from_slice(event);
            out.extend_from_slice(separator);
            return;
        }
        if self.rewrite_in_place(&prefix, data, separator, out) {
            return;
        }
        let Ok(mut value) = serde_json::from_str::<Value>(data) else {
            out.extend_from_slice(event);
            out.extend_from_slice(separator);
            return;
        };
        for stream in closed_streams(&value) {
            self.flush(stream, out);
        }
        let mut changed = false;
        for (stream, at) in delta_texts(&value) {
            let Some(text) = delta_slot(&mut value, at)
                .and_then(|slot| slot.as_str())
                .map(str::to_owned)
            else {
                continue;
            };
            // The event is kept as the template of a later flush only for a
            // stream's first delta: no copy per event on the streaming path.
            let new_redactor = &mut self.new_redactor;
            let (redactor, _) = self
                .redactors
                .entry(stream)
                .or_insert_with(|| (new_redactor(), value.clone()));
            let safe = redactor.push(&text);
            if safe != text {
                if let Some(slot) = delta_slot(&mut value, at) {
                    *slot = Value::String(safe);
                    changed = true;
                }
            }
        }
        changed |= self.redact_summaries(&mut value);
        if changed {
            let event_start = out.len();
            out.extend_from_slice(prefix.as_bytes());
            out.extend_from_slice(b"data: ");
            if serde_json::to_writer(&mut *out, &value).is_err() {
                // Cannot happen for a parsed value; if it did, the event is dropped
                // rather than forwarded unredacted.
                out.truncate(event_start);
                return;
            }
        } else {
            out.extend_from_slice(event);
        }
        out.extend_from_slice(separator);
    }

    /// The common event, handled without building a `Value`: its delta texts are read
    /// in place (borrowed: no escapes in them) and the redacted text is spliced into the
    /// event's own bytes. `false`, having written nothing, for anything else (escaped
    /// text, summaries, fields of unexpected types): the `Value` path handles those.
    fn rewrite_in_place(
        &mut self,
        prefix: &str,
        data: &str,
        separator: &[u8],
        out: &mut Vec<u8>,
    ) -> bool {
        let Ok(probe) = serde_json::from_str::<Probe<'_>>(data) else {
            return false;
        };
        if probe.is_summary() {
            return false;
        }
        let mut deltas = Vec::new();
        for (stream, text) in probe.delta_texts() {
            let Some(span) = quoted_span(data, text) else {
                return false;
            };
            deltas.push((stream, text, span));
        }
        // Spliced in the order they sit in the event (`delta` may come before `choices`).
        deltas.sort_by_key(|&(_, _, (start, _))| start);
        for stream in probe.closed_streams() {
            self.flush(stream, out);
        }
        let mut spliced = String::new();
        let mut copied = 0;
        for (stream, text, (start, end)) in deltas {
            let redactor = match self.redactors.entry(stream) {
                std::collections::btree_map::Entry::Occupied(held) => &mut held.into_mut().0,
                std::collections::btree_map::Entry::Vacant(slot) => {
                    // A stream's first delta is the template of its later flush.
                    let template = serde_json::from_str::<Value>(data).unwrap_or(Value::Null);
                    &mut slot.insert(((self.new_redactor)(), template)).0
                }
            };
            let safe = redactor.push(text);
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
        out.extend_from_slice(prefix.as_bytes());
        out.extend_from_slice(b"data: ");
        if copied == 0 {
            out.extend_from_slice(data.as_bytes());
        } else {
            spliced.push_str(data.get(copied..).unwrap_or_default());
            out.extend_from_slice(spliced.as_bytes());
        }
        out.extend_from_slice(separator);
        true
    }

    /// Final events that repeat the whole text (`response.output_text.done`,
    /// `response.completed`) are redacted whole.
    fn redact_summaries(&mut self, value: &mut Value) -> bool {
        match value.get("type").and_then(Value::as_str) {
            Some(
                "response.output_text.done"
                | "response.completed"
                | "response.content_part.done"
                | "response.output_item.done",
            ) => redact_strings(value, &mut self.redact_text),
            _ => false,
        }
    }

    /// Sends what `stream`'s redactor holds, in a delta event shaped like the
    /// ones that stream carried.
    fn flush(&mut self, stream: Stream, out: &mut Vec<u8>) {
        let Some((mut redactor, template)) = self.redactors.remove(&stream) else {
            return;
        };
        let rest = redactor.finish();
        if rest.is_empty() {
            return;
        }
        let event = match stream {
            Stream::Choice(i) => {
                let mut chunk = template;
                chunk["choices"] =
                    json!([{"index": i, "delta": {"content": rest}, "finish_reason": null}]);
                format!("data: {chunk}\n\n")
            }
            Stream::Block(i) => {
                let delta = json!({"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": rest}});
                format!("event: content_block_delta\ndata: {delta}\n\n")
            }
            Stream::OutputText(output, part) => {
                let mut delta = template;
                delta["delta"] = Value::String(rest);
                delta["output_index"] = json!(output);
                delta["content_index"] = json!(part);
                format!("event: response.output_text.delta\ndata: {delta}\n\n")
            }
        };
        out.extend_from_slice(event.as_bytes());
    }
}

/// The end of the first complete event in `buf`: (index of the separator, its length).
fn event_end(buf: &[u8]) -> Option<(usize, usize)> {
    // Both separators hold a `\n`: visit only those (a `\r\n\r\n` starts one byte
    // before its first `\n`, so it is met no later than a `\n\n` after it).
    let mut from = 0;
    loop {
        let i = from + find_newline(buf.get(from..)?)?;
        if i > 0 && buf.get(i - 1..i + 3) == Some(b"\r\n\r\n") {
            return Some((i - 1, 4));
        }
        if buf.get(i..i + 2) == Some(b"\n\n") {
            return Some((i, 2));
        }
        from = i + 1;
    }
}

/// Index of the first `\n` in `bytes`, skipping eight bytes at a time where there is
/// none: streams are mostly JSON between newlines, and this is their every byte.
fn find_newline(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut skipped = 0;
    for chunk in bytes.chunks_exact(8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        // Zero bytes of `word ^ "\n\n…"` are newlines; this is non-zero iff one is.
        let x = u64::from_le_bytes(word) ^ (ONES * u64::from(b'\n'));
        if x.wrapping_sub(ONES) & !x & HIGHS != 0 {
            break;
        }
        skipped += 8;
    }
    let rest = bytes.get(skipped..)?;
    rest.iter().position(|&b| b == b'\n').map(|i| skipped + i)
}

/// An event with exactly one `data:` line, as (the lines before it, its value).
/// Others (comments, multi-line data) pass through untouched.
fn single_data_line(event: &[u8]) -> Option<(String, &str)> {
    let text = std::str::from_utf8(event).ok()?;
    let mut prefix = String::new();
    let mut data = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(value) = line.strip_prefix("data:") {
            if data.is_some() {
                return None;
            }
            data = Some(value.strip_prefix(' ').unwrap_or(value));
        } else if data.is_some() {
            return None;
        } else {
            prefix.push_str(line);
            prefix.push('\n');
        }
    }
    data.map(|d| (prefix, d))
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
}

#[derive(Deserialize)]
struct ProbeChoice<'a> {
    index: Option<u64>,
    #[serde(borrow)]
    delta: Option<ChoiceDelta<'a>>,
    finish_reason: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct ChoiceDelta<'a> {
    #[serde(borrow)]
    content: Option<&'a str>,
}

/// A top-level `delta`: text (Responses API), an object with `text` (Anthropic), or
/// anything else.
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
                    if key != "text" {
                        map.next_value::<IgnoredAny>()?;
                        continue;
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
    /// Events that repeat the whole text, redacted whole on the `Value` path.
    fn is_summary(&self) -> bool {
        matches!(
            self.kind,
            Some(
                "response.output_text.done"
                    | "response.completed"
                    | "response.content_part.done"
                    | "response.output_item.done"
            )
        )
    }

    /// As [`delta_texts`], with the texts.
    fn delta_texts(&self) -> Vec<(Stream, &'a str)> {
        let mut found = Vec::new();
        for (position, choice) in self.choices.iter().flatten().enumerate() {
            if let Some(text) = choice.delta.as_ref().and_then(|d| d.content) {
                let index = choice.index.unwrap_or(position as u64);
                found.push((Stream::Choice(index), text));
            }
        }
        match (self.kind, &self.delta) {
            (Some("content_block_delta"), Some(ProbeDelta::Object(Some(text)))) => {
                found.push((Stream::Block(self.index.unwrap_or(0)), *text));
            }
            (Some("response.output_text.delta"), Some(ProbeDelta::Text(text))) => {
                let stream = Stream::OutputText(
                    self.output_index.unwrap_or(0),
                    self.content_index.unwrap_or(0),
                );
                found.push((stream, *text));
            }
            _ => {}
        }
        found
    }

    /// As [`closed_streams`] (summaries, which also close a stream, are not read here).
    fn closed_streams(&self) -> Vec<Stream> {
        let mut closed = Vec::new();
        for (position, choice) in self.choices.iter().flatten().enumerate() {
            if choice.finish_reason.is_some() {
                closed.push(Stream::Choice(choice.index.unwrap_or(position as u64)));
            }
        }
        if self.kind == Some("content_block_stop") {
            closed.push(Stream::Block(self.index.unwrap_or(0)));
        }
        closed
    }
}

/// Where an event carries delta text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DeltaAt {
    /// `choices[i].delta.content` (`i` the position in the array).
    ChoiceContent(usize),
    /// `delta.text`.
    DeltaText,
    /// `delta`.
    Delta,
}

/// The value at `at` in an event.
fn delta_slot(value: &mut Value, at: DeltaAt) -> Option<&mut Value> {
    match at {
        DeltaAt::ChoiceContent(position) => value
            .get_mut("choices")?
            .get_mut(position)?
            .get_mut("delta")?
            .get_mut("content"),
        DeltaAt::DeltaText => value.get_mut("delta")?.get_mut("text"),
        DeltaAt::Delta => value.get_mut("delta"),
    }
}

/// The delta texts an event carries, with their stream and place.
fn delta_texts(value: &Value) -> Vec<(Stream, DeltaAt)> {
    let mut found = Vec::new();
    if let Some(choices) = value.get("choices").and_then(Value::as_array) {
        for (position, choice) in choices.iter().enumerate() {
            if choice
                .get("delta")
                .and_then(|delta| delta.get("content"))
                .is_some_and(Value::is_string)
            {
                let index = choice
                    .get("index")
                    .and_then(Value::as_u64)
                    .unwrap_or(position as u64);
                found.push((Stream::Choice(index), DeltaAt::ChoiceContent(position)));
            }
        }
    }
    match value.get("type").and_then(Value::as_str) {
        Some("content_block_delta")
            if value
                .get("delta")
                .and_then(|delta| delta.get("text"))
                .is_some_and(Value::is_string) =>
        {
            let index = value.get("index").and_then(Value::as_u64).unwrap_or(0);
            found.push((Stream::Block(index), DeltaAt::DeltaText));
        }
        Some("response.output_text.delta") if value.get("delta").is_some_and(Value::is_string) => {
            let output = value
                .get("output_index")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let part = value
                .get("content_index")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            found.push((Stream::OutputText(output, part), DeltaAt::Delta));
        }
        _ => {}
    }
    found
}

/// The delta streams an event closes: held text must go out before it.
fn closed_streams(value: &Value) -> Vec<Stream> {
    let mut closed = Vec::new();
    if let Some(choices) = value.get("choices").and_then(Value::as_array) {
        for (position, choice) in choices.iter().enumerate() {
            if choice.get("finish_reason").is_some_and(|f| !f.is_null()) {
                closed.push(Stream::Choice(
                    choice
                        .get("index")
                        .and_then(Value::as_u64)
                        .unwrap_or(position as u64),
                ));
            }
        }
    }
    match value.get("type").and_then(Value::as_str) {
        Some("content_block_stop") => closed.push(Stream::Block(
            value.get("index").and_then(Value::as_u64).unwrap_or(0),
        )),
        Some("response.output_text.done") => closed.push(Stream::OutputText(
            value
                .get("output_index")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            value
                .get("content_index")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        )),
        _ => {}
    }
    closed
}

/// Keys whose string values are identifiers or enums, never generated text.
const NON_TEXT_KEYS: [&str; 13] = [
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

/// Redacts every generated string in `value`; whether anything changed.
pub fn redact_strings(value: &mut Value, redact: &mut dyn FnMut(&str) -> Option<String>) -> bool {
    match value {
        Value::String(text) => match redact(text) {
            Some(redacted) => {
                *text = redacted;
                true
            }
            None => false,
        },
        Value::Array(items) => items.iter_mut().fold(false, |changed, item| {
            redact_strings(item, redact) | changed
        }),
        Value::Object(map) => map
            .iter_mut()
            .filter(|(key, _)| !NON_TEXT_KEYS.contains(&key.as_str()))
            .fold(false, |changed, (_, item)| {
                redact_strings(item, redact) | changed
            }),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// A whole (non-streaming) response body with its generated text redacted;
/// `None` when nothing changed. A body that is not JSON is redacted as text.
pub fn redact_body(body: &[u8], redact: &mut dyn FnMut(&str) -> Option<String>) -> Option<Vec<u8>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(mut value) => redact_strings(&mut value, redact).then(|| value.to_string().into_bytes()),
        Err(_) => redact(&String::from_utf8_lossy(body)).map(String::into_bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Redacts the word SECRET-<digits>, holding back the unfinished last word
    /// like the firewall's stream redactor does for real values.
    struct Fake {
        held: String,
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
            redact_all(&release)
        }
        fn finish(&mut self) -> String {
            redact_all(&std::mem::take(&mut self.held))
        }
    }

    fn rewriter() -> SseRewriter<Fake, impl FnMut() -> Fake, impl FnMut(&str) -> Option<String>> {
        SseRewriter::new(
            || Fake {
                held: String::new(),
            },
            |t: &str| {
                let r = redact_all(t);
                (r != t).then_some(r)
            },
        )
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

    #[test]
    fn whole_bodies_redact_text_but_not_identifiers() {
        let body = json!({"id":"SECRET-1","object":"chat.completion","choices":[{"message":{"role":"assistant","content":"use SECRET-42"}}]});
        let mut redact = |t: &str| {
            let r = redact_all(t);
            (r != t).then_some(r)
        };
        let out: Value =
            serde_json::from_slice(&redact_body(body.to_string().as_bytes(), &mut redact).unwrap())
                .unwrap();
        assert_eq!(out["choices"][0]["message"]["content"], "use [SECRET_1]");
        assert_eq!(out["id"], "SECRET-1");
        assert!(redact_body(br#"{"a":"clean"}"#, &mut redact).is_none());
    }

    #[test]
    fn an_endless_event_is_not_held_forever() {
        let mut r = rewriter();
        let mut forwarded = 0;
        for _ in 0..(MAX_EVENT_BYTES / 1024 + 2) {
            forwarded += r.push(&[b'x'; 1024]).len();
        }
        assert!(forwarded > 0);
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
        let input = "data: {\"z\":1,\"choices\":[{\"index\":0,\"delta\":{\"content\":\"SECRET-3 x \"},\"finish_reason\":null}],\"a\":2}\n\n";
        let out = String::from_utf8(run(input.as_bytes(), input.len())).unwrap();
        assert!(
            out.starts_with("data: {\"z\":1,\"choices\":[{\"index\":0,\"delta\":{\"content\":\"[SECRET_1] x \"},\"finish_reason\":null}],\"a\":2}\n\n"),
            "{out}"
        );
    }

    #[test]
    fn event_ends_are_found_wherever_they_fall() {
        // Against the plain definition, on every sequence of five pieces: separators
        // straddle the eight-byte words the search skips by.
        let naive = |buf: &[u8]| {
            (0..buf.len()).find_map(|i| {
                if buf[i..].starts_with(b"\n\n") {
                    Some((i, 2))
                } else if buf[i..].starts_with(b"\r\n\r\n") {
                    Some((i, 4))
                } else {
                    None
                }
            })
        };
        let pieces: [&[u8]; 6] = [b"data: x", b"\n", b"\r", b"\n\n", b"\r\n\r\n", b"{\"a\":1}"];
        for mut n in 0..6usize.pow(5) {
            let mut buf = Vec::new();
            for _ in 0..5 {
                buf.extend_from_slice(pieces[n % 6]);
                n /= 6;
            }
            assert_eq!(
                event_end(&buf),
                naive(&buf),
                "{:?}",
                String::from_utf8_lossy(&buf)
            );
        }
    }
}
