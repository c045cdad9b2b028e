//! Server-sent events, read the way clients read them (the SSE rules): an
//! event ends with an empty line; lines end in LF, CR or CRLF; several
//! `data:` lines are one value joined by `\n`; other fields may come before
//! or after the data; bytes that are not UTF-8 read as U+FFFD; a byte-order
//! mark may start the stream. An answer's stream is split into events here,
//! once ([`EventSplitter`]); what ends a stream the filter cut short is in
//! [`error`].

use serde_json::Value;
use std::borrow::Cow;

use crate::work;

pub mod error;

pub use error::{cut_event, dialect, error_event, StreamStop, ANSWER_BLOCKED};

/// The UTF-8 byte-order mark a stream may start with (clients skip it).
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One complete event of a stream: its bytes, the separator that ended it
/// (empty for a byte-order mark that starts the stream, which comes as an
/// event of its own), and whether it is one line (no break in `bytes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event<'a> {
    pub bytes: &'a [u8],
    pub separator: &'a [u8],
    pub one_line: bool,
}

/// Complete events in one buffer: what a stage of an answer's checks passes
/// on, read by the next as events without splitting the bytes again.
#[derive(Debug)]
pub struct Events {
    bytes: Vec<u8>,
    ends: Vec<End>,
    /// Where each event ends is kept (not for the bytes that go out, which
    /// no stage reads again).
    bounded: bool,
}

impl Default for Events {
    fn default() -> Events {
        Events::new()
    }
}

/// Where one event of [`Events`] ends.
#[derive(Clone, Copy, Debug)]
struct End {
    /// The end of its bytes (where its separator starts).
    body: usize,
    /// The end of its separator.
    end: usize,
    /// Whether it is one line, when known.
    one_line: Option<bool>,
}

/// A place in [`Events`] to come back to ([`Events::rewind`]).
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    bytes: usize,
    ends: usize,
}

impl Events {
    /// Events for the next stage to read.
    pub fn new() -> Events {
        Events {
            bytes: Vec::new(),
            ends: Vec::new(),
            bounded: true,
        }
    }

    /// The bytes that go out, room made for `capacity` of them: no stage
    /// reads them as events again.
    pub fn output(capacity: usize) -> Events {
        Events {
            bytes: Vec::with_capacity(capacity),
            ends: Vec::new(),
            bounded: false,
        }
    }

    /// Passes `event` on as it came.
    pub fn pass(&mut self, event: Event<'_>) {
        self.bytes.extend_from_slice(event.bytes);
        self.close(event.separator, Some(event.one_line));
    }

    /// The bytes of the event being written (closed by [`Events::close`]).
    pub fn writer(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// Ends the event written since the last one with `separator`.
    pub fn close(&mut self, separator: &[u8], one_line: Option<bool>) {
        let body = self.bytes.len();
        self.bytes.extend_from_slice(separator);
        if !self.bounded {
            return;
        }
        self.ends.push(End {
            body,
            end: self.bytes.len(),
            one_line,
        });
    }

    /// Adds events the filter wrote whole (an error event, a JSON-RPC error),
    /// each ended by `\n\n` (JSON escapes every line break in its strings).
    pub fn generated(&mut self, events: &[u8]) {
        if !self.bounded {
            self.bytes.extend_from_slice(events);
            return;
        }
        for event in events.split_inclusive(|&b| b == b'\n') {
            self.bytes.extend_from_slice(event);
            if event == b"\n" {
                let body = self.bytes.len() - 2;
                let last = self.ends.last().map_or(0, |end| end.end);
                let one_line = !self
                    .bytes
                    .get(last..body)
                    .is_some_and(|e| e.contains(&b'\n'));
                self.ends.push(End {
                    body,
                    end: self.bytes.len(),
                    one_line: Some(one_line),
                });
            }
        }
    }

    pub fn mark(&self) -> Mark {
        Mark {
            bytes: self.bytes.len(),
            ends: self.ends.len(),
        }
    }

    /// Drops what was added since `mark`.
    pub fn rewind(&mut self, mark: Mark) {
        self.bytes.truncate(mark.bytes);
        self.ends.truncate(mark.ends);
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    /// The events, in order (none for [`Events::output`]).
    pub fn iter(&self) -> impl Iterator<Item = Event<'_>> {
        let mut start = 0;
        self.ends.iter().map(move |end| {
            let bytes = self.bytes.get(start..end.body).unwrap_or_default();
            let separator = self.bytes.get(end.body..end.end).unwrap_or_default();
            start = end.end;
            let one_line = end
                .one_line
                .unwrap_or_else(|| find_line_break(bytes).is_none());
            Event {
                bytes,
                separator,
                one_line,
            }
        })
    }

    /// The bytes of every event.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Splits a byte stream into complete events ([`event_end`]), holding at most
/// `max_event_bytes` of one while waiting for its end. (`Default` is an empty
/// placeholder, for while a splitter is taken out of its owner.)
#[derive(Default)]
pub struct EventSplitter {
    partial: Vec<u8>,
    max_event_bytes: usize,
    /// Past a byte-order mark the stream may start with.
    started: bool,
    /// Bytes of `partial` already searched for an event's end in vain.
    scanned: usize,
}

impl EventSplitter {
    pub fn new(max_event_bytes: usize) -> EventSplitter {
        EventSplitter {
            max_event_bytes,
            ..EventSplitter::default()
        }
    }

    /// Adds `chunk` and hands `each` every event it completes (its bytes, its
    /// separator, whether it is one line) until `each` returns `false`, which drops
    /// what is held. A byte-order mark that starts the stream comes first, as an
    /// event of its own with no separator. `false` when an event outgrew the limit
    /// (what is held is dropped).
    pub fn push(&mut self, chunk: &[u8], mut each: impl FnMut(&[u8], &[u8], bool) -> bool) -> bool {
        work::charge(chunk.len());
        self.partial.extend_from_slice(chunk);
        if !self.started {
            if self.partial.len() < BOM.len() && BOM.starts_with(&self.partial) {
                return true;
            }
            self.started = true;
            if self.partial.starts_with(BOM) {
                self.partial.drain(..BOM.len());
                if !each(BOM, b"", false) {
                    self.clear();
                    return true;
                }
            }
        }
        // Events are read in place; the bytes of complete events are dropped once, at
        // the end (dropping each from the front would move the rest every time).
        let partial = std::mem::take(&mut self.partial);
        let mut at = 0;
        while let Some((end, separator, one_line)) = self.next_end(&partial, at) {
            let event = partial.get(at..at + end).unwrap_or_default();
            let separator_bytes = partial
                .get(at + end..at + end + separator)
                .unwrap_or_default();
            at += end + separator;
            if !each(event, separator_bytes, one_line) {
                self.clear();
                return true;
            }
        }
        self.partial = partial;
        if at > 0 {
            // The unfinished event moves to the front.
            work::charge(self.partial.len() - at);
        }
        self.partial.drain(..at);
        self.scanned = self.scanned.saturating_sub(at);
        if self.partial.len() > self.max_event_bytes {
            self.clear();
            return false;
        }
        true
    }

    /// The rest of the stream: an event that never ended (empty if none).
    pub fn rest(&mut self) -> Vec<u8> {
        self.scanned = 0;
        std::mem::take(&mut self.partial)
    }

    /// Drops what is held.
    pub fn clear(&mut self) {
        self.partial = Vec::new();
        self.scanned = 0;
    }

    /// [`event_end`] of the event that starts at `at` in `buf`, resuming where an
    /// earlier search left off (`scanned`: how far `buf` was searched in vain), so
    /// that an event arriving in many chunks is searched once, not once per chunk.
    fn next_end(&mut self, buf: &[u8], at: usize) -> Option<(usize, usize, bool)> {
        let scanned = &mut self.scanned;
        // A separator (at most 4 bytes) may straddle the end of the last search.
        let from = scanned.saturating_sub(3).max(at);
        let Some((end, separator, one_line)) = buf.get(from..).and_then(event_end) else {
            *scanned = buf.len();
            return None;
        };
        *scanned = 0;
        let end = from - at + end;
        let one_line = if from == at {
            one_line
        } else {
            buf.get(at..at + end)
                .is_some_and(|event| find_line_break(event).is_none())
        };
        Some((end, separator, one_line))
    }
}

/// The end of the first complete event in `buf`: (where the separator starts, its
/// length). An event ends with an empty line; lines end in `\n`, `\r` or `\r\n`, so
/// the separator is the last line's end and the empty line's (`\n\n`, `\r\n\r\n`,
/// `\r\r`, …). A `\r` that ends `buf` after a line may be half of a `\r\n`, so it
/// ends nothing yet; one that ends the empty line ends the event (as a client reads
/// it: a `\n` that follows is then an empty line of its own, which clients skip).
/// The third field tells whether the event is one line (no break before its end).
fn event_end(buf: &[u8]) -> Option<(usize, usize, bool)> {
    let line_end = |at: usize, last: bool| match (buf.get(at), buf.get(at + 1)) {
        (Some(b'\n'), _) => Some(1),
        (Some(b'\r'), Some(b'\n')) => Some(2),
        (Some(b'\r'), Some(_)) => Some(1),
        (Some(b'\r'), None) if last => Some(1),
        _ => None,
    };
    let mut from = 0;
    loop {
        let i = from + find_line_break(buf.get(from..)?)?;
        let first = line_end(i, false)?;
        if let Some(second) = line_end(i + first, true) {
            return Some((i, first + second, from == 0));
        }
        from = i + first;
    }
}

/// Index of the first `\n` or `\r` in `bytes`, skipping eight bytes at a time where
/// there is none: streams are mostly JSON between line breaks, and this is their
/// every byte.
pub fn find_line_break(bytes: &[u8]) -> Option<usize> {
    let found = find_line_break_uncharged(bytes);
    work::charge(found.map_or(bytes.len(), |i| i + 1));
    found
}

fn find_line_break_uncharged(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut skipped = 0;
    for chunk in bytes.chunks_exact(8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        // Non-zero iff a byte is below 0x0E: every `\n` (0x0A) and `\r` (0x0D), and the
        // rare other control byte (a tab), which the byte search below then passes.
        if word.wrapping_sub(ONES * 0x0E) & !word & HIGHS != 0 {
            break;
        }
        skipped += 8;
    }
    let rest = bytes.get(skipped..)?;
    rest.iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .map(|i| skipped + i)
}

/// What an event carries, read as clients read it.
pub struct EventData<'a> {
    /// Its lines other than `data:`, each ending in `\n` (kept when it is rewritten).
    pub prefix: String,
    /// Its `data:` lines' values, joined by `\n`.
    pub data: Cow<'a, str>,
    /// Its `event:` name, if it has one.
    pub name: Option<String>,
    /// Whether `data` was joined from several `data:` lines.
    pub joined: bool,
}

/// `event`'s data, or `None` when it has none (comments, a lone `id:`). Bytes that
/// are not UTF-8 read as U+FFFD, as an `EventSource` reads them. `one_line`: the
/// event has no line break (as [`event_end`] tells).
pub fn event_data(event: &[u8], one_line: bool) -> Option<EventData<'_>> {
    match std::str::from_utf8(event) {
        Ok(text) => split_event(text, one_line),
        Err(_) => {
            let text = String::from_utf8_lossy(event);
            split_event(&text, one_line).map(|e| EventData {
                data: Cow::Owned(e.data.into_owned()),
                ..e
            })
        }
    }
}

fn split_event(text: &str, one_line: bool) -> Option<EventData<'_>> {
    // The common event is one `data:` line: no line to split, nothing to keep.
    if one_line {
        let value = text.strip_prefix("data")?;
        if !(value.is_empty() || value.starts_with(':')) {
            return None;
        }
        let value = value.strip_prefix(':').unwrap_or(value);
        return Some(EventData {
            prefix: String::new(),
            data: Cow::Borrowed(value.strip_prefix(' ').unwrap_or(value)),
            name: None,
            joined: false,
        });
    }
    let mut prefix = String::new();
    let mut data: Option<Cow<'_, str>> = None;
    let mut name = None;
    let mut joined = false;
    for line in lines(text) {
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        if field == "data" {
            data = Some(match data {
                None => Cow::Borrowed(value),
                Some(before) => {
                    // Appended in place: a copy of all the lines before per line would
                    // make an event of many `data:` lines cost its square.
                    joined = true;
                    let mut all = before.into_owned();
                    work::charge(value.len() + 1);
                    all.push('\n');
                    all.push_str(value);
                    Cow::Owned(all)
                }
            });
            continue;
        }
        if field == "event" {
            name = Some(value.to_owned());
        }
        prefix.push_str(line);
        prefix.push('\n');
    }
    data.map(|data| EventData {
        prefix,
        data,
        name,
        joined,
    })
}

/// The lines of an event (without the separator that ended it).
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let text = rest?;
        let Some(i) = find_line_break(text.as_bytes()) else {
            rest = None;
            return Some(text);
        };
        let next = if text.get(i..i + 2) == Some("\r\n") {
            i + 2
        } else {
            i + 1
        };
        rest = text.get(next..).filter(|r| !r.is_empty());
        text.get(..i)
    })
}

/// What an event's data holds, for a check that reads it as JSON.
pub enum Parsed {
    /// No data, or data that is not JSON: nothing a check can name.
    Other,
    /// Its `event:` name and its JSON.
    Json(Option<String>, Value),
    /// JSON the reader refuses (`NaN`, a lone surrogate escape, deep nesting) that a
    /// lenient client may still read: it cannot be judged.
    Unreadable(Option<String>),
}

/// Reads `event`'s data as JSON.
pub fn parse_event(event: Event<'_>) -> Parsed {
    // Reading the event's data, then its JSON.
    work::charge(2 * event.bytes.len());
    let Some(data) = event_data(event.bytes, event.one_line) else {
        return Parsed::Other;
    };
    match serde_json::from_str(&data.data) {
        Ok(value) => Parsed::Json(data.name, value),
        Err(_)
            if data.data.trim() != "[DONE]" && data.data.trim_start().starts_with(['{', '[']) =>
        {
            Parsed::Unreadable(data.name)
        }
        Err(_) => Parsed::Other,
    }
}

/// Writes an event named `name` (if any) whose data is `value`.
pub fn write_json(out: &mut Events, name: Option<&str>, value: &Value) {
    let event = match name {
        Some(name) => format!("event: {name}\ndata: {value}"),
        None => format!("data: {value}"),
    };
    out.writer().extend_from_slice(event.as_bytes());
    out.close(b"\n\n", Some(name.is_none()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ends_are_found_wherever_they_fall() {
        // Against the plain definition, on every sequence of five pieces: separators
        // straddle the eight-byte words the search skips by.
        // The first line break followed by another; a `\r` at the end is undecided
        // after a line, final after the empty one.
        let naive = |buf: &[u8]| {
            let line_end = |i: usize| match (buf.get(i), buf.get(i + 1)) {
                (Some(b'\n'), _) => Some(1),
                (Some(b'\r'), Some(b'\n')) => Some(2),
                (Some(b'\r'), Some(_)) => Some(1),
                _ => None,
            };
            let mut i = 0;
            while i < buf.len() {
                if buf[i] == b'\n' || buf[i] == b'\r' {
                    let first = line_end(i)?;
                    match (line_end(i + first), buf.get(i + first)) {
                        (Some(second), _) => return Some((i, first + second)),
                        (None, Some(b'\r')) => return Some((i, first + 1)),
                        _ => i += first,
                    }
                } else {
                    i += 1;
                }
            }
            None
        };
        let pieces: [&[u8]; 6] = [b"data: x", b"\n", b"\r", b"\n\n", b"\r\n\r\n", b"{\"a\":1}"];
        for mut n in 0..6usize.pow(5) {
            let mut buf = Vec::new();
            for _ in 0..5 {
                buf.extend_from_slice(pieces[n % 6]);
                n /= 6;
            }
            let found = event_end(&buf);
            if let Some((at, _, one_line)) = found {
                assert_eq!(one_line, find_line_break(&buf[..at]).is_none());
            }
            assert_eq!(
                found.map(|(at, separator, _)| (at, separator)),
                naive(&buf),
                "{:?}",
                String::from_utf8_lossy(&buf)
            );
        }
    }
}
