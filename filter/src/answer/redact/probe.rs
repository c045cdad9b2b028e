//! The common streamed event read without building a `Value`: its delta
//! texts borrowed in place (no escapes in them), so the redacted text can be
//! spliced into the event's own bytes. Anything else (escaped text, fields of
//! unexpected types, more than text in a delta) fails the parse, and the
//! event takes the `Value` path ([`super::deltas`]). The common event is read
//! by hand ([`reader`]), the rest by serde, with the same result.

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;

use super::deltas::{Closed, Stream};
use crate::answer::anthropic::BlockText;
use crate::answer::chat::ChoiceText;
use crate::answer::responses::ResponsesText;
use crate::work;

mod reader;

/// The event's [`Probe`], or `None` when serde's reading of it fails: read by
/// hand where [`reader`] can, else by serde (the same [`Probe`] either way).
pub(crate) fn probe(data: &str) -> Option<Probe<'_>> {
    #[cfg(test)]
    if tests::SERDE_ONLY.with(std::cell::Cell::get) {
        return serde_json::from_str(data).ok();
    }
    reader::read(data).or_else(|| serde_json::from_str(data).ok())
}

/// An event's delta texts with their streams and their places in the event with
/// their quotes ([`quoted_span`]), and the streams it closes.
pub(crate) type Deltas<'a> = (Vec<(Stream, &'a str, (usize, usize))>, Vec<Closed>);

/// The envelope of the last event read in place that carried one delta text:
/// its bytes up to the text's opening quote and from its closing quote. A
/// provider sends every word in the same envelope, so the next event is
/// mostly the same bytes around another text: JSON read from the same bytes
/// around a string of plain characters (no quote, backslash or control
/// character, which alone could end or escape it) is the same JSON with
/// another string there, so the event's reading is the last one's with this
/// text, found by comparing bytes instead of reading them.
#[derive(Default)]
pub(crate) struct LastShape {
    /// The bytes before the text, then those after it.
    envelope: Vec<u8>,
    before: usize,
    /// The text's stream, and the streams the event closes.
    read: Option<(Stream, Vec<Closed>)>,
}

impl LastShape {
    /// The delta texts `data` carries and the streams it closes, as
    /// [`Probe::delta_texts`] and [`Probe::closed_streams`] give them; `None`
    /// where the event is not read in place.
    pub(crate) fn deltas<'a>(&mut self, data: &'a str) -> Option<Deltas<'a>> {
        if let Some(same) = self.same(data) {
            return Some(same);
        }
        let probe = probe(data)?;
        let texts = probe
            .delta_texts()?
            .into_iter()
            .map(|(stream, text)| Some((stream, text, quoted_span(data, text)?)))
            .collect::<Option<Vec<_>>>()?;
        let closed = probe.closed_streams();
        self.remember(&texts, &closed, data);
        Some((texts, closed))
    }

    /// `data`'s reading when it is the last envelope around a plain text.
    fn same<'a>(&self, data: &'a str) -> Option<Deltas<'a>> {
        #[cfg(test)]
        if tests::SERDE_ONLY.with(std::cell::Cell::get) {
            return None;
        }
        let (stream, closed) = self.read.as_ref()?;
        let (before, after) = self.envelope.split_at(self.before);
        let bytes = data.as_bytes();
        let end = bytes.len().checked_sub(after.len())?;
        if end < before.len() || !bytes.starts_with(before) || !bytes.ends_with(after) {
            return None;
        }
        let text = data.get(before.len()..end)?;
        if text.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
            return None;
        }
        let span = (before.len() - 1, end + 1);
        Some((vec![(*stream, text, span)], closed.clone()))
    }

    /// Keeps the envelope of `data` when it carries one text.
    fn remember(
        &mut self,
        texts: &[(Stream, &str, (usize, usize))],
        closed: &[Closed],
        data: &str,
    ) {
        let [(stream, _, (start, end))] = *texts else {
            return;
        };
        let (Some(before), Some(after)) = (data.get(..start + 1), data.get(end - 1..)) else {
            return;
        };
        work::charge(data.len());
        self.envelope.clear();
        self.envelope.extend_from_slice(before.as_bytes());
        self.envelope.extend_from_slice(after.as_bytes());
        self.before = before.len();
        self.read = Some((stream, closed.to_vec()));
    }
}

/// `text`'s place in `data` with its quotes, as a byte range: `text` must be a slice of
/// `data` (a borrowed JSON string, so it had no escapes) between two quotes.
pub(crate) fn quoted_span(data: &str, text: &str) -> Option<(usize, usize)> {
    let start = (text.as_ptr() as usize).checked_sub(data.as_ptr() as usize)?;
    let end = start + text.len();
    let quoted = data.as_bytes().get(start.checked_sub(1)?..end + 1)?;
    (quoted.first() == Some(&b'"') && quoted.last() == Some(&b'"')).then_some((start - 1, end + 1))
}

/// The fields of an event the rewriter reads, without a `Value`: text is borrowed from
/// the event, so a string with escapes, like a field of another type than these, fails
/// the parse, and the event takes the `Value` path, which reads it as [`delta_texts`]
/// and [`closed_streams`] say.
#[derive(Deserialize, Default, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Probe<'a> {
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
    _created: Option<NoText>,
    #[serde(rename = "model")]
    _model: Option<IgnoredAny>,
    #[serde(rename = "system_fingerprint")]
    _system_fingerprint: Option<IgnoredAny>,
    #[serde(rename = "service_tier")]
    _service_tier: Option<IgnoredAny>,
    #[serde(rename = "usage")]
    _usage: Option<NoText>,
    #[serde(rename = "item_id")]
    _item_id: Option<IgnoredAny>,
    #[serde(rename = "sequence_number")]
    _sequence_number: Option<NoText>,
    #[serde(rename = "obfuscation")]
    _obfuscation: Option<IgnoredAny>,
}

/// A field of the envelope the `Value` path judges the strings of (any not under a
/// key that holds no text, `body::NON_TEXT_KEYS`): read in place only with
/// no string in it (keys aside), so a string there is judged on the `Value` path.
#[derive(Debug, PartialEq)]
pub(crate) struct NoText;

impl<'de> Deserialize<'de> for NoText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NoTextVisitor;
        impl<'de> Visitor<'de> for NoTextVisitor {
            type Value = NoText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value without strings")
            }
            fn visit_bool<E>(self, _: bool) -> Result<NoText, E> {
                Ok(NoText)
            }
            fn visit_i64<E>(self, _: i64) -> Result<NoText, E> {
                Ok(NoText)
            }
            fn visit_u64<E>(self, _: u64) -> Result<NoText, E> {
                Ok(NoText)
            }
            fn visit_f64<E>(self, _: f64) -> Result<NoText, E> {
                Ok(NoText)
            }
            fn visit_unit<E>(self) -> Result<NoText, E> {
                Ok(NoText)
            }
            fn visit_seq<S: serde::de::SeqAccess<'de>>(
                self,
                mut seq: S,
            ) -> Result<NoText, S::Error> {
                while seq.next_element::<NoText>()?.is_some() {}
                Ok(NoText)
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<NoText, M::Error> {
                while map.next_entry::<IgnoredAny, NoText>()?.is_some() {}
                Ok(NoText)
            }
        }
        deserializer.deserialize_any(NoTextVisitor)
    }
}

#[derive(Deserialize, Debug, PartialEq)]
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
#[derive(Deserialize, Debug, PartialEq)]
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
#[derive(Debug, PartialEq)]
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
    pub(crate) fn delta_texts(&self) -> Option<Vec<(Stream, &'a str)>> {
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
    pub(crate) fn closed_streams(&self) -> Vec<Closed> {
        let mut closed = Vec::new();
        for (position, choice) in self.choices.iter().flatten().enumerate() {
            if choice.finish_reason.is_some() {
                closed.push(Closed::Choice(choice.index.unwrap_or(position as u64)));
            }
        }
        closed
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::answer::redact::tests::{openai_stream, openai_text, run};
    use serde_json::{json, Value};

    thread_local! {
        /// Events read by serde alone (the reading before [`super::reader`]), for
        /// the tests that compare the two.
        pub(crate) static SERDE_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
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
    fn a_string_in_an_envelope_field_read_in_place_is_judged_as_the_value_path_judges_it() {
        // The `Value` path judges every string of an event but those under keys that
        // hold no text (`id`, `model`, `obfuscation`, ...): an event read in place must
        // not pass one it would have judged, whatever its text (plain: in place;
        // escaped: the `Value` path).
        for (field, judged) in [
            (r#""usage":{"note":"SECRET-1"}"#, true),
            (r#""usage":[1,{"a":["SECRET-1"]}]"#, true),
            (r#""created":"SECRET-1""#, true),
            (r#""sequence_number":"SECRET-1""#, true),
            (r#""obfuscation":"SECRET-1""#, false),
            (r#""id":"SECRET-1""#, false),
        ] {
            for text in ["ok ", r"ok\n"] {
                let chat = format!(
                    "data: {{{field},\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}}}}]}}\n\n"
                );
                let output = format!(
                    "data: {{\"type\":\"response.output_text.delta\",{field},\"delta\":\"{text}\"}}\n\n"
                );
                for input in [chat, output] {
                    let out = String::from_utf8(run(input.as_bytes(), input.len())).unwrap();
                    assert_eq!(out.contains("SECRET-1"), !judged, "{input} gave {out}");
                }
            }
        }
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

#[cfg(test)]
mod shapes {
    use super::LastShape;

    /// The reading of `next` by a memory that read `first`, and by a fresh one: the same.
    fn after(first: &str, next: &str) {
        let mut remembered = LastShape::default();
        remembered.deltas(first);
        let places = |read: Option<super::Deltas<'_>>| {
            read.map(|(texts, closed)| {
                let texts: Vec<_> = texts
                    .into_iter()
                    .map(|(stream, text, span)| (stream, text.as_ptr() as usize, text.len(), span))
                    .collect();
                (texts, closed)
            })
        };
        assert_eq!(
            places(remembered.deltas(next)),
            places(LastShape::default().deltas(next)),
            "{first} then {next}"
        );
    }

    #[test]
    fn the_same_envelope_reads_as_a_fresh_read_whatever_the_text() {
        let chat = |text: &str| {
            format!(
                r#"{{"id":"c","choices":[{{"index":0,"delta":{{"content":"{text}"}},"finish_reason":null}}]}}"#
            )
        };
        let block = |text: &str| {
            format!(
                r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"{text}"}}}}"#
            )
        };
        let output =
            |text: &str| format!(r#"{{"type":"response.output_text.delta","delta":"{text}"}}"#);
        let texts = [
            "word ",
            "",
            "caf\u{e9} \u{1F600}",
            r#"x","refusal":"SECRET-1"#,
            r#"x"},"finish_reason":"stop"}],"id":"d"#,
            r#"a\"b"#,
            r#"\u0053ECRET"#,
            "tab\there",
            "new\nline",
            r#"x"}]}"#,
            r#"","content":"SECRET-2"#,
        ];
        let envelopes: [&dyn Fn(&str) -> String; 3] = [&chat, &block, &output];
        for envelope in envelopes {
            for first in texts {
                for next in texts {
                    after(&envelope(first), &envelope(next));
                }
            }
            // The envelope around nothing but itself, cut short, twice.
            let whole = envelope("word ");
            after(&whole, &whole[..whole.len() - 1]);
            after(&whole, &whole[1..]);
            after(&whole, &format!("{whole}{whole}"));
        }
        // Another envelope, or the same one closing its choice.
        after(&chat("a "), &block("b "));
        // Attacks on the comparison of envelopes: another event type or path in the
        // same bytes around the text, tool call arguments, a quote by escape.
        let args = |text: &str| {
            format!(
                r#"{{"type":"response.function_call_arguments.delta","output_index":0,"delta":"{text}"}}"#
            )
        };
        let json_delta = |text: &str| {
            format!(
                r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"input_json_delta","partial_json":"{text}"}}}}"#
            )
        };
        let tool = |text: &str| {
            format!(
                r#"{{"id":"c","choices":[{{"index":0,"delta":{{"tool_calls":[{{"index":0,"function":{{"arguments":"{text}"}}}}]}},"finish_reason":null}}]}}"#
            )
        };
        let twice = |text: &str| {
            format!(r#"{{"type":"response.output_text.delta","delta":"a","delta":"{text}"}}"#)
        };
        for (first, next) in [
            (output("a "), args("SECRET-3")),
            (output("a "), json_delta("SECRET-3")),
            (block("a "), json_delta("SECRET-3")),
            (chat("a "), tool("SECRET-3")),
            (output("a "), twice("SECRET-3")),
            (
                output(r#"a","delta":"b"#),
                output(r#"a","delta":"SECRET-3"#),
            ),
            (
                output("a"),
                output(r#"a\u0022,\u0022x\u0022:\u0022SECRET-3"#),
            ),
            (output("a"), output("SECRET-3\u{feff}\u{7f}\u{2028}")),
            (output("a"), output(r#"SECRET-3"}  {"x":""#)),
            (block("a"), block(r#"a","text":"SECRET-3"#)),
            (block("a"), block(r#"a"},"delta":{"text":"SECRET-3"#)),
            (
                chat("a"),
                chat(r#"a"}},{"index":1,"delta":{"content":"SECRET-3"#),
            ),
        ] {
            after(&first, &next);
        }
        after(
            &chat("a "),
            &chat("b ").replace(r#""finish_reason":null"#, r#""finish_reason":"stop""#),
        );
    }
}

#[cfg(test)]
mod equivalence {
    use super::tests::SERDE_ONLY;
    use crate::answer::Piped;
    use crate::config::Config;
    use crate::guard::Guard;
    use crate::route::{Format, Route};

    /// `input` through the real answer rewriter of `format`, cut in two at `cut`, then
    /// in pieces of `piece` bytes; with events read by serde alone when `serde_only`.
    fn rewrite(
        guard: &Guard,
        format: Format,
        input: &[u8],
        cut: usize,
        serde_only: bool,
    ) -> Vec<u8> {
        SERDE_ONLY.with(|only| only.set(serde_only));
        let mut stream = Piped::new(guard.response_stream(Route::Inspect(format)), 1 << 20);
        let (head, tail) = input.split_at(cut);
        let mut out = stream.push(head);
        out.extend(stream.push(tail));
        out.extend(stream.finish());
        SERDE_ONLY.with(|only| only.set(false));
        out
    }

    /// Streams with PII and secrets split across events, in text with and without
    /// escapes, in every event shape the hand reader reads and some it leaves.
    fn streams() -> Vec<(Format, String)> {
        let chat = |content: &str| {
            format!(
                "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{content}\"}},\"finish_reason\":null}}]}}\n\n"
            )
        };
        let openai = [
            chat("mail jane.d"),
            chat("oe@example.com or call "),
            chat("+1 415 555 01"),
            chat("32 now\\nkey AKIA"),
            chat("IOSFODNN7EXAMPLE \\\"q\\\" caf\\u00e9 \\ud83d\\ude00 "),
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"jo@ex\"}}],\r\ndata: \"id\":\"x\"}\r\n\r\n".to_string(),
            ": a comment\n\n".to_string(),
            chat("ample.org end"),
            // The same envelope around text that would change its shape: a quote that
            // ends the text early (another field after it), an escape, a raw tab.
            chat(r#"x","refusal":"mail sam@example.com "#),
            chat(r#"a\"b\\ sue@example.com "#),
            chat("tab\there@example.com "),
            chat(""),
            chat("ok "),
            "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\r\r".to_string(),
            "data: [DONE]\n\n".to_string(),
        ]
        .concat();
        let block = |text: &str| {
            format!(
                "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{text}\"}}}}\n\n"
            )
        };
        let anthropic = [
            block("write to bob.s"),
            block("mith@corp.example.com\\n"),
            block("card 4111 1111 "),
            block("1111 1111 ok"),
            "event: content_block_stop\r\ndata: {\"type\":\"content_block_stop\",\"index\":0}\r\n\r\n".to_string(),
        ]
        .concat();
        let output = |delta: &str| {
            format!(
                "event: response.output_text.delta\ndata: {{\"type\":\"response.output_text.delta\",\"item_id\":\"m\",\"output_index\":0,\"content_index\":0,\"delta\":\"{delta}\"}}\n\n"
            )
        };
        let responses = [
            output("ssn 078-05"),
            output("-1120 and ann@"),
            output("example.net\\u0021 "),
            "event: response.output_text.done\ndata: {\"type\":\"response.output_text.done\",\"output_index\":0,\"content_index\":0,\"text\":\"ssn 078-05-1120 and ann@example.net! \"}\n\n".to_string(),
        ]
        .concat();
        vec![
            (Format::OpenAiChat, openai),
            (Format::AnthropicMessages, anthropic),
            (Format::OpenAiResponses, responses),
        ]
    }

    #[test]
    fn streams_rewrite_alike_with_the_hand_reader_and_without() {
        let guard = Guard::new(Config::default()).unwrap();
        for (format, input) in streams() {
            let input = input.as_bytes();
            let whole = rewrite(&guard, format, input, input.len(), true);
            // The values were found (the test is not vacuous).
            let text = String::from_utf8_lossy(&whole);
            assert!(
                !text.contains("example.com") && !text.contains("example.net"),
                "{text}"
            );
            assert!(!text.contains("4111") && !text.contains("1120"), "{text}");
            for cut in 0..=input.len() {
                assert_eq!(
                    String::from_utf8_lossy(&rewrite(&guard, format, input, cut, false)),
                    String::from_utf8_lossy(&rewrite(&guard, format, input, cut, true)),
                    "{format:?}, cut at {cut}"
                );
            }
        }
    }
}
