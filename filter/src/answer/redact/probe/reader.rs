//! The common streamed event read by hand, in one pass over its bytes and
//! with no `Value`: what [`Probe`]'s serde reading gives, for the events it is
//! built for (a chat chunk with `content`, an Anthropic text delta, a
//! Responses output text delta). It accepts only JSON that serde's reading
//! accepts too, and gives the same [`Probe`] for it; anything it is unsure of
//! (an escape in a key or in text it would borrow, a number that is not a
//! plain integer, a duplicate key, an unknown key, deep nesting, logprobs)
//! gives `None`, and the event goes to serde's reading as before. So this
//! reader decides nothing of its own: it is only faster where it answers.

use serde::de::IgnoredAny;

use super::{ChoiceDelta, NoText, Probe, ProbeChoice, ProbeDelta};

/// Deepest nesting of a skipped value this reader follows (serde's limit is
/// 128; deeper events go to serde's reading).
const MAX_DEPTH: usize = 32;

/// Most digits of a number this reader takes: any such integer fits `i64`, so
/// serde reads it as a number whichever way it reads it.
const MAX_DIGITS: usize = 18;

/// The bytes that end a string's plain run: its end, an escape, a control
/// character (which serde refuses in a string).
const STOPS: [bool; 256] = {
    let mut stops = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        stops[b] = true;
        b += 1;
    }
    stops[b'"' as usize] = true;
    stops[b'\\' as usize] = true;
    stops
};

/// `data` read as serde reads a [`Probe`] from it, or `None` where this reader
/// leaves it to serde.
pub(super) fn read(data: &str) -> Option<Probe<'_>> {
    let mut cursor = Cursor { data, at: 0 };
    let probe = cursor.probe()?;
    cursor.space();
    (cursor.at == data.len()).then_some(probe)
}

/// A place in an event's data.
struct Cursor<'a> {
    data: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    /// The bytes from here on.
    fn rest(&self) -> &'a [u8] {
        self.data.as_bytes().get(self.at..).unwrap_or_default()
    }

    fn peek(&self) -> Option<u8> {
        self.data.as_bytes().get(self.at).copied()
    }

    /// JSON's whitespace (serde's: no other).
    fn space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// Takes `byte` (after whitespace), or fails.
    fn expect(&mut self, byte: u8) -> Option<()> {
        self.space();
        (self.peek() == Some(byte)).then(|| self.at += 1)
    }

    /// Takes a `null` (after whitespace): whether there was one.
    fn null(&mut self) -> bool {
        self.space();
        let found = self.rest().starts_with(b"null");
        if found {
            self.at += 4;
        }
        found
    }

    /// A string without escapes, borrowed (serde borrows only such strings).
    fn plain_str(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        let rest = self.data.as_bytes().get(start..)?;
        let len = rest.iter().position(|&b| STOPS[usize::from(b)])?;
        if rest.get(len) != Some(&b'"') {
            return None;
        }
        self.at = start + len + 1;
        self.data.get(start..start + len)
    }

    /// A string skipped, escapes checked as serde checks a string it ignores.
    fn skip_str(&mut self) -> Option<()> {
        self.expect(b'"')?;
        let bytes = self.data.as_bytes();
        loop {
            let rest = bytes.get(self.at..)?;
            let stop = rest.iter().position(|&b| STOPS[usize::from(b)])?;
            self.at += stop + 1;
            match rest.get(stop)? {
                b'"' => return Some(()),
                b'\\' => {
                    let escape = *bytes.get(self.at)?;
                    self.at += 1;
                    match escape {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            let hex = bytes.get(self.at..self.at + 4)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.at += 4;
                        }
                        _ => return None,
                    }
                }
                // A control character: serde refuses it in a string.
                _ => return None,
            }
        }
    }

    /// An integer of at most [`MAX_DIGITS`] digits, without sign, fraction or
    /// exponent (serde reads those otherwise, or refuses them).
    fn uint(&mut self) -> Option<u64> {
        let bytes = self.data.as_bytes();
        let start = self.at;
        let digits = bytes
            .get(start..)?
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        // A leading zero is a number only alone.
        if digits == 0 || digits > MAX_DIGITS || (digits > 1 && bytes.get(start) == Some(&b'0')) {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = bytes.get(start + digits) {
            return None;
        }
        self.at = start + digits;
        // At most 18 digits: no overflow.
        let digits = bytes.get(start..self.at)?;
        Some(digits.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')))
    }

    /// `null` or an integer ([`Cursor::uint`]).
    fn opt_uint(&mut self) -> Option<Option<u64>> {
        // (`null` takes the whitespace before the value.)
        if self.null() {
            return Some(None);
        }
        self.uint().map(Some)
    }

    /// `null`, or a string without escapes.
    fn opt_plain_str(&mut self) -> Option<Option<&'a str>> {
        if self.null() {
            return Some(None);
        }
        self.plain_str().map(Some)
    }

    /// Any value skipped (`null` is `None`, as serde reads an optional field).
    fn opt_ignored(&mut self) -> Option<Option<IgnoredAny>> {
        if self.null() {
            return Some(None);
        }
        self.skip(0, Strings::Skipped)?;
        Some(Some(IgnoredAny))
    }

    /// A value without strings skipped ([`NoText`]; `null` is `None`).
    fn opt_no_text(&mut self) -> Option<Option<NoText>> {
        if self.null() {
            return Some(None);
        }
        self.skip(0, Strings::Refused)?;
        Some(Some(NoText))
    }

    /// Any value skipped, no deeper than [`MAX_DEPTH`]; with a string in it (keys
    /// aside) only when `strings` allows.
    fn skip(&mut self, depth: usize, strings: Strings) -> Option<()> {
        self.space();
        match self.peek()? {
            b'"' if strings == Strings::Skipped => self.skip_str(),
            b'{' if depth < MAX_DEPTH => self.members(|cursor, _| cursor.skip(depth + 1, strings)),
            b'[' if depth < MAX_DEPTH => self.items(|cursor| cursor.skip(depth + 1, strings)),
            b'-' => {
                self.at += 1;
                self.uint().map(drop)
            }
            b'0'..=b'9' => self.uint().map(drop),
            _ => {
                let rest = self.rest();
                let word = [&b"true"[..], b"false", b"null"]
                    .into_iter()
                    .find(|word| rest.starts_with(word))?;
                self.at += word.len();
                Some(())
            }
        }
    }

    /// An object: `member` reads the value of each key (keys without escapes).
    fn members(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.expect(b'{')?;
        self.space();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Some(());
        }
        loop {
            let key = self.plain_str()?;
            self.expect(b':')?;
            member(self, key)?;
            self.space();
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An array: `item` reads each element.
    fn items(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.expect(b'[')?;
        self.space();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Some(());
        }
        loop {
            item(self)?;
            self.space();
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// The event ([`Probe`]'s fields; any other key, or one twice: `None`).
    fn probe(&mut self) -> Option<Probe<'a>> {
        // The most common keys first (OpenAI's chunks, then Anthropic's and the
        // Responses API's events): a key is found by comparing it with these in turn.
        const NAMES: [&str; 17] = [
            "id",
            "object",
            "created",
            "model",
            "choices",
            "type",
            "index",
            "delta",
            "system_fingerprint",
            "service_tier",
            "usage",
            "obfuscation",
            "item_id",
            "output_index",
            "content_index",
            "sequence_number",
            "logprobs",
        ];
        let mut probe = Probe::default();
        let mut seen = Seen::default();
        self.members(|cursor, key| {
            match seen.first(key, &NAMES)? {
                0 => probe._id = cursor.opt_ignored()?,
                1 => probe._object = cursor.opt_ignored()?,
                2 => probe._created = cursor.opt_no_text()?,
                3 => probe._model = cursor.opt_ignored()?,
                4 => {
                    if !cursor.null() {
                        let mut choices = Vec::new();
                        cursor.items(|cursor| {
                            choices.push(cursor.choice()?);
                            Some(())
                        })?;
                        probe.choices = Some(choices);
                    }
                }
                5 => probe.kind = cursor.opt_plain_str()?,
                6 => probe.index = cursor.opt_uint()?,
                7 => probe.delta = cursor.delta()?,
                8 => probe._system_fingerprint = cursor.opt_ignored()?,
                9 => probe._service_tier = cursor.opt_ignored()?,
                10 => probe._usage = cursor.opt_no_text()?,
                11 => probe._obfuscation = cursor.opt_ignored()?,
                12 => probe._item_id = cursor.opt_ignored()?,
                13 => probe.output_index = cursor.opt_uint()?,
                14 => probe.content_index = cursor.opt_uint()?,
                15 => probe._sequence_number = cursor.opt_no_text()?,
                // Logprobs make it a `Value` path event: serde's reading says so.
                _ => {
                    if !cursor.null() {
                        return None;
                    }
                }
            }
            Some(())
        })?;
        Some(probe)
    }

    /// One of `choices` (an object: serde would read an array too, this
    /// reader leaves that to it).
    fn choice(&mut self) -> Option<ProbeChoice<'a>> {
        const NAMES: [&str; 4] = ["index", "delta", "finish_reason", "logprobs"];
        let mut choice = ProbeChoice {
            index: None,
            delta: None,
            finish_reason: None,
            logprobs: None,
        };
        let mut seen = Seen::default();
        self.members(|cursor, key| {
            match seen.first(key, &NAMES)? {
                0 => choice.index = cursor.opt_uint()?,
                1 => {
                    if !cursor.null() {
                        choice.delta = Some(cursor.choice_delta()?);
                    }
                }
                2 => choice.finish_reason = cursor.opt_ignored()?,
                _ => choice.logprobs = cursor.opt_ignored()?,
            }
            Some(())
        })?;
        Some(choice)
    }

    /// A chat choice's `delta`.
    fn choice_delta(&mut self) -> Option<ChoiceDelta<'a>> {
        const NAMES: [&str; 3] = ["content", "role", "refusal"];
        let mut delta = ChoiceDelta {
            content: None,
            _role: None,
            refusal: None,
        };
        let mut seen = Seen::default();
        self.members(|cursor, key| {
            match seen.first(key, &NAMES)? {
                0 => delta.content = cursor.opt_plain_str()?,
                1 => delta._role = cursor.opt_ignored()?,
                _ => delta.refusal = cursor.opt_ignored()?,
            }
            Some(())
        })?;
        Some(delta)
    }

    /// The top-level `delta` ([`ProbeDelta`]'s reading; `null` is `None`).
    fn delta(&mut self) -> Option<Option<ProbeDelta<'a>>> {
        if self.null() {
            return Some(None);
        }
        self.space();
        match self.peek()? {
            b'"' => self.plain_str().map(|text| Some(ProbeDelta::Text(text))),
            b'{' => {
                let mut text = None;
                let mut seen_text = false;
                self.members(|cursor, key| match key {
                    // `type` may come twice: serde's reading skips every one.
                    "type" => cursor.skip(0, Strings::Skipped),
                    "text" if !seen_text => {
                        seen_text = true;
                        text = cursor.opt_plain_str()?;
                        Some(())
                    }
                    _ => None,
                })?;
                Some(Some(ProbeDelta::Object(text)))
            }
            b'[' | b't' | b'f' | b'-' | b'0'..=b'9' => {
                self.skip(0, Strings::Skipped)?;
                Some(Some(ProbeDelta::Other))
            }
            _ => None,
        }
    }
}

/// Whether a skipped value may hold strings: not in a field whose strings the
/// `Value` path judges ([`NoText`]).
#[derive(Clone, Copy, PartialEq)]
enum Strings {
    Skipped,
    Refused,
}

/// The fields of one object read so far (serde's reading refuses a field
/// twice), by their place in the object's list of names.
#[derive(Default)]
struct Seen(u32);

impl Seen {
    /// `key`'s place in `names`; `None` for an unknown key or one read before.
    fn first(&mut self, key: &str, names: &[&str]) -> Option<usize> {
        let at = names.iter().position(|name| *name == key)?;
        let bit = 1 << at;
        if self.0 & bit != 0 {
            return None;
        }
        self.0 |= bit;
        Some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events of every shape the hand reader meets, and shapes near them.
    fn corpus() -> Vec<String> {
        let mut events: Vec<String> = [
            // The common events: OpenAI chat chunks, Anthropic and Responses deltas.
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
            r#"{"choices":[{"delta":{"content":"word "},"finish_reason":null,"index":0}],"created":0,"id":"c","model":"m","object":"chat.completion.chunk"}"#,
            r#"{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"total_tokens":2,"details":[1,25,-3,true,null]}}"#,
            r#"{"id":"c","choices":[{"index":1,"delta":{"content":"a SECRET-1"}},{"index":0,"delta":{"content":"b"},"finish_reason":"length"}],"system_fingerprint":"fp","service_tier":"default","obfuscation":"xyz"}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hello SECRET-2 "}}"#,
            r#"{"type":"content_block_delta","index":3,"delta":{"type":"text_delta","type":"x","text":null}}"#,
            r#"{"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":"some text","sequence_number":7,"logprobs":null}"#,
            r#"{"type":"response.output_text.delta","output_index":2,"content_index":1,"delta":"x"}"#,
            // Whitespace everywhere JSON allows it.
            " \t\r\n{ \"choices\" : [ { \"index\" : 0 , \"delta\" : { \"content\" : \"w \" } } ] } \n",
            // Escapes: in text (serde copies it: the `Value` path), in keys, in ignored strings.
            r#"{"choices":[{"index":0,"delta":{"content":"line\nnext"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"caf\u00e9 \ud83d\ude00"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"con\u0074ent":"SECRET-3"}}]}"#,
            r#"{"id":"a\"b\\c\/\b\f\n\r\t\u0041\ud800","choices":[{"index":0,"delta":{"content":"ok"}}]}"#,
            r#"{"id":"\x","choices":[]}"#,
            r#"{"id":"\u12G4","choices":[]}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a\"b"}}"#,
            r#"{"type":"response.output_text.delta","delta":"\u0053ECRET-4"}"#,
            r#"{"type":"content_block_\u0064elta","delta":{"text":"SECRET-4"}}"#,
            // Numbers.
            r#"{"index":0,"output_index":18446744073709551615,"content_index":123456789012345678,"delta":"x","type":"response.output_text.delta"}"#,
            r#"{"index":01,"type":"content_block_delta","delta":{"text":"x"}}"#,
            r#"{"index":-1,"type":"content_block_delta","delta":{"text":"x"}}"#,
            r#"{"index":-0,"type":"content_block_delta","delta":{"text":"x"}}"#,
            r#"{"index":1.0,"type":"content_block_delta","delta":{"text":"x"}}"#,
            r#"{"index":1e2,"type":"content_block_delta","delta":{"text":"x"}}"#,
            r#"{"created":2.5,"usage":-3e2,"choices":[]}"#,
            r#"{"created":1234567890123456789012345678901234567890,"choices":[]}"#,
            r#"{"created":-,"choices":[]}"#,
            r#"{"created":- 1,"choices":[]}"#,
            // Other shapes of `delta`.
            r#"{"delta":5}"#,
            r#"{"delta":[1,[2,{"a":"SECRET-5"}]]}"#,
            r#"{"delta":true,"type":"content_block_delta"}"#,
            r#"{"delta":{"text":"a","text":"SECRET-6"},"type":"content_block_delta"}"#,
            r#"{"delta":{"partial_json":"{}"},"type":"content_block_delta"}"#,
            r#"{"type":"content_block_delta","delta":{"type":"thinking_delta","thinking":"SECRET-7"}}"#,
            // What the hand reader leaves to serde (or serde refuses).
            r#"{"choices":[{"index":0,"delta":{"content":"x","tool_calls":[]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"x","refusal":null}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"x","refusal":"no"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"x"},"logprobs":{"content":[]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"x"},"logprobs":null}]}"#,
            r#"{"choices":[[0,{"content":"SECRET-8"},null,null]]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"x"}}],"choices":[]}"#,
            r#"{"id":null,"id":null,"choices":[]}"#,
            r#"{"choices":[{"index":0,"index":1,"delta":{"content":"x"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"x","content":"y"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"x"},}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"x"}}],}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"x"}}]} {}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"x"}}],"note":"SECRET-9"}"#,
            r#"{"choices":null,"type":null,"index":null,"delta":null,"logprobs":null}"#,
            r#"{"type":"response.output_text.delta","delta":"x","logprobs":[]}"#,
            r#"{"type":"response.output_text.delta","delta":"x","logprobs":[{"token":"x"}]}"#,
            r#"[{"choices":[]}]"#,
            r#"{}"#,
            r#"{"usage":tru,"choices":[]}"#,
            r#"{"usage":nul}"#,
            "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tab\tinside\"}}]}",
            "\u{a0}{\"choices\":[]}",
            // A string where the `Value` path would judge it: left to serde, which refuses it.
            r#"{"id":"c","choices":[],"usage":{"prompt_tokens":1,"details":[1,25,-3,true,null,"x"]}}"#,
            r#"{"created":"SECRET-16","choices":[]}"#,
            r#"{"type":"response.output_text.delta","delta":"x","sequence_number":["SECRET-16"]}"#,
            r#"{"type":"response.output_text.delta","delta":"x","usage":{"SECRET-16":1}}"#,
            // Tool calls and their arguments: never text this reader reads.
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"k\":\"SECRET-10\"}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":null,"tool_calls":[{"index":0,"id":"t","type":"function","function":{"name":"f","arguments":"SECRET-10"}}]}}]}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"k\": \"SECRET-11"}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"partial_json":"SECRET-11","type":"input_json_delta"}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","text":"x","partial_json":"SECRET-11"}}"#,
            r#"{"type":"response.function_call_arguments.delta","item_id":"fc","output_index":0,"delta":"SECRET-12"}"#,
            r#"{"type":"response.reasoning_summary_text.delta","output_index":0,"delta":"SECRET-12"}"#,
            r#"{"type":"response.output_text.delta","delta":{"text":"SECRET-12"}}"#,
            r#"{"type":"content_block_delta","delta":"SECRET-12"}"#,
            // Keys twice at the top: `delta`, `type`, `index`.
            r#"{"type":"response.output_text.delta","delta":"a","delta":"SECRET-13"}"#,
            r#"{"type":"content_block_delta","type":"response.output_text.delta","delta":"SECRET-13"}"#,
            r#"{"type":"content_block_delta","index":0,"index":1,"delta":{"text":"SECRET-13"}}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"a"}},{"index":0,"delta":{"content":"SECRET-13"}}]}"#,
            // Keys that differ from a known one only in case or by a space.
            r#"{"choices":[{"index":0,"delta":{"Content":"SECRET-14"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content ":"SECRET-14"}}]}"#,
            r#"{"Type":"content_block_delta","delta":{"text":"SECRET-14"}}"#,
            // Escapes that decode to a quote, a NUL, a lone surrogate, in text and around it.
            r#"{"choices":[{"index":0,"delta":{"content":"a\u0022b"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"a\u0000b"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"a\udc00b"}}]}"#,
            r#"{"id":"\ud800","choices":[{"index":0,"delta":{"content":"SECRET-15"}}]}"#,
            r#"{"id":"\u0000","choices":[{"index":0,"delta":{"content":"SECRET-15"}}]}"#,
            r#"{"id":"\u","choices":[]}"#,
            r#"{"id":"\u00","choices":[]}"#,
            // Byte order mark, other spaces, control and high bytes.
            "\u{feff}{\"choices\":[]}",
            "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\u{feff}",
            "{\u{b}\"choices\":[]}",
            "{\u{c}\"choices\":[]}",
            "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\u{7f}\u{85}\u{2028}\u{feff}\"}}]}",
            "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\0b\"}}]}",
            "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\u{1f}b\"}}]}",
            // Numbers in other spellings.
            r#"{"index":+1,"type":"content_block_delta","delta":{"text":"x"}}"#,
            r#"{"index":1E2,"type":"content_block_delta","delta":{"text":"x"}}"#,
            r#"{"index":0x1,"type":"content_block_delta","delta":{"text":"x"}}"#,
            r#"{"index":999999999999999999,"type":"content_block_delta","delta":{"text":"x"}}"#,
            r#"{"index":9999999999999999999,"type":"content_block_delta","delta":{"text":"x"}}"#,
            r#"{"created":-01,"choices":[]}"#,
            r#"{"created":-0.5,"choices":[]}"#,
            r#"{"created":1.,"choices":[]}"#,
            r#"{"created":Infinity,"choices":[]}"#,
            r#"{"created":NaN,"choices":[]}"#,
            "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\u{e9}\u{2713} \u{1F600}\"}}]}",
        ]
        .iter()
        .map(|e| e.to_string())
        .collect();
        // Deep nesting of an ignored value, past this reader's depth and serde's.
        for depth in [30, 31, 32, 33, 126, 127, 128, 129, 200] {
            events.push(format!(
                r#"{{"usage":{}1{},"choices":[]}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            ));
            events.push(format!(
                r#"{{"usage":{}1{},"choices":[]}}"#,
                r#"{"a":"#.repeat(depth),
                "}".repeat(depth)
            ));
        }
        events
    }

    /// Whether the hand reader reads `data`; when it does, its reading is serde's, texts
    /// borrowed at the same places.
    fn agrees(data: &str) -> bool {
        let Some(hand) = read(data) else {
            return false;
        };
        let serde: Probe<'_> = serde_json::from_str(data)
            .unwrap_or_else(|e| panic!("serde refuses what the hand reader read ({e}): {data:?}"));
        assert_eq!(hand, serde, "{data:?}");
        let places = |probe: &Probe<'_>| {
            probe.delta_texts().map(|texts| {
                texts
                    .into_iter()
                    .map(|(stream, text)| (stream, text.as_ptr() as usize, text.len()))
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(places(&hand), places(&serde), "{data:?}");
        assert_eq!(hand.closed_streams(), serde.closed_streams(), "{data:?}");
        true
    }

    #[test]
    fn reads_what_serde_reads_or_leaves_it_to_serde() {
        let by_hand = corpus().iter().filter(|event| agrees(event)).count();
        assert!(by_hand >= 20, "{by_hand}");
        // The common events are read by hand (the speed of the common case).
        for common in corpus().iter().take(9) {
            assert!(read(common).is_some(), "{common}");
        }
        // Escaped text, escaped keys, numbers serde reads otherwise: left to serde.
        for left in [
            r#"{"choices":[{"index":0,"delta":{"content":"line\nnext"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"con\u0074ent":"SECRET-3"}}]}"#,
            r#"{"type":"response.output_text.delta","delta":"\u0053ECRET-4"}"#,
            r#"{"index":1.0,"type":"content_block_delta","delta":{"text":"x"}}"#,
        ] {
            assert!(read(left).is_none(), "{left}");
        }
    }

    #[test]
    fn every_cut_and_changed_byte_reads_as_serde_reads() {
        // Every prefix of each event, and each byte replaced by bytes that matter to
        // a JSON reader: never a reading that differs from serde's.
        const BYTES: &[u8] = b"\"\\{}[],:0-1.e nu\x01\x7f";
        for event in corpus() {
            let bytes = event.as_bytes();
            for end in 0..bytes.len() {
                if let Some(prefix) = event.get(..end) {
                    agrees(prefix);
                }
            }
            for at in 0..bytes.len() {
                for &b in BYTES {
                    let mut changed = bytes.to_vec();
                    changed[at] = b;
                    if let Ok(changed) = std::str::from_utf8(&changed) {
                        agrees(changed);
                    }
                }
            }
        }
    }
}
