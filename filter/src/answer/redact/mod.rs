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
//! Events come whole from the answer's pipeline (`crate::answer::Pipeline`),
//! read the way clients read them (`crate::stream`). Where each provider's
//! events carry text is in [`deltas`] (and the provider files it reads); the
//! common event is read in place by [`probe`]; whole bodies by [`body`].
//! A stream the rewriter cannot judge is cut short, never passed unread: an event
//! longer than the limit ends the stream with an error event, and so does any
//! value found when `response_mode` is `block`.

use serde_json::Value;
use std::collections::BTreeMap;

use super::Transform;
use crate::firewall::TextForm;
use crate::stream::{error_event, event_data, Event, EventData, Events, StreamStop};
use crate::work;
use deltas::{closed_streams, delta_slot, delta_texts, template, ClosedStreams, Stream};
use probe::LastShape;

mod body;
pub(crate) mod deltas;
mod probe;

pub use body::{drop_logprobs, redact_body, redact_strings, Redact};

/// A redactor for one delta stream (see `firewall::StreamRedactor`).
pub trait DeltaRedactor {
    /// Adds text; returns what is safe to forward now (possibly empty).
    fn push(&mut self, text: &str) -> String;
    /// Returns everything still held.
    fn finish(&mut self) -> String;
    /// Whether a value was found so far (redacted, or for `block`, to refuse).
    fn found_any(&self) -> bool;
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
    /// The envelope of the last event read in place around its one text.
    last_shape: LastShape,
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
            last_shape: LastShape::default(),
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
        let Some((mut deltas, closed)) = self.last_shape.deltas(data) else {
            return false;
        };
        // Spliced in the order they sit in the event (`delta` may come before `choices`).
        deltas.sort_by_key(|&(_, _, (start, _))| start);
        let closed = ClosedStreams::new(closed);
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
        let event = stream.flush_event(rest, template);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::Piped;
    use crate::stream::StreamStop;
    use serde_json::json;

    /// Redacts the word SECRET-<digits>, holding back the unfinished last word
    /// like the firewall's stream redactor does for real values.
    pub(super) struct Fake {
        held: String,
        found: bool,
    }

    pub(super) fn redact_all(text: &str) -> String {
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
    pub(super) type FakeRewriter =
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

    pub(super) fn openai_stream(pieces: &[&str]) -> Vec<u8> {
        let mut s = String::new();
        for p in pieces {
            s.push_str(&format!("data: {}\n\n", json!({"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":p},"finish_reason":null}]})));
        }
        s.push_str(&format!("data: {}\n\n", json!({"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})));
        s.push_str("data: [DONE]\n\n");
        s.into_bytes()
    }

    /// The text a client reassembles from an OpenAI stream.
    pub(super) fn openai_text(stream: &[u8]) -> String {
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

    pub(super) fn run(input: &[u8], chunk: usize) -> Vec<u8> {
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
    pub(super) fn blocking() -> Piped<FakeRewriter> {
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
    pub(super) fn strings(value: &Value, each: &mut dyn FnMut(&str)) {
        match value {
            Value::String(s) => each(s),
            Value::Array(items) => items.iter().for_each(|v| strings(v, each)),
            Value::Object(map) => map.values().for_each(|v| strings(v, each)),
            _ => {}
        }
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
}
