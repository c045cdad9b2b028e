//! Redaction with typed placeholders, for whole texts and for streams.
//!
//! A [`RedactionSession`] lives for one request (or one response): the same value always
//! gets the same placeholder (`[EMAIL_1]`), in every segment, so the model can still tell
//! that two mentions are one person. A [`StreamRedactor`] applies a session to text that
//! arrives in pieces, holding back a bounded tail so a value split across pieces is still
//! found whole.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::cache::{self, Reading, Scope, TextDigest};
use super::sensitive::{find_from, folded, growing_tail, Finding, SensitiveKind, SensitiveScanner};
use super::Cache;
use crate::work;

/// What a text is, for redaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextForm {
    /// Text as people read it.
    Prose,
    /// JSON source text, as a model writes a tool call's arguments
    /// (`{"to": "bob\u0040example.com"}`): it is scanned as the characters its escapes
    /// stand for, so a value spelled with escapes (`\u0040`, `\/`, `\\`) is still found,
    /// and a placeholder replaces whole escapes, so the JSON stays valid.
    Json,
}

/// JSON source text read as the characters it stands for, with where each came from.
struct JsonText {
    /// The decoded characters (an escape that is not one is kept as written).
    text: String,
    /// For each byte of `text`: the source range of the character or escape it
    /// comes from (every byte of one character has the same).
    from: Vec<(usize, usize)>,
    /// Bytes of source read.
    len: usize,
}

/// The four hex digits at `at`, as a number (a `\u` escape's code unit).
fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = bytes.get(at..at + 4)?;
    digits
        .iter()
        .try_fold(0u32, |n, &d| char::from(d).to_digit(16).map(|v| n * 16 + v))
}

/// The character the escape at `bytes[at]` (a backslash) stands for, and where
/// the escape ends; `None` when it is no complete escape (it is then read as
/// written, one character at a time).
fn unescape_at(bytes: &[u8], at: usize) -> Option<(char, usize)> {
    let simple = |c: char| Some((c, at + 2));
    match bytes.get(at + 1)? {
        b'"' => simple('"'),
        b'\\' => simple('\\'),
        b'/' => simple('/'),
        b'b' => simple('\u{8}'),
        b'f' => simple('\u{c}'),
        b'n' => simple('\n'),
        b'r' => simple('\r'),
        b't' => simple('\t'),
        b'u' => {
            let unit = hex4(bytes, at + 2)?;
            if (0xD800..0xDC00).contains(&unit) {
                // A surrogate pair is one character, from two escapes.
                let low = (bytes.get(at + 6..at + 8) == Some(b"\\u"))
                    .then(|| hex4(bytes, at + 8))
                    .flatten()
                    .filter(|low| (0xDC00..0xE000).contains(low));
                if let Some(low) = low {
                    let code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                    return Some((char::from_u32(code).unwrap_or('\u{FFFD}'), at + 12));
                }
            }
            Some((char::from_u32(unit).unwrap_or('\u{FFFD}'), at + 6))
        }
        _ => None,
    }
}

impl JsonText {
    fn decode(source: &str) -> JsonText {
        work::charge(source.len());
        let bytes = source.as_bytes();
        let mut text = String::with_capacity(source.len());
        let mut from = Vec::with_capacity(source.len());
        let mut at = 0;
        while at < bytes.len() {
            let (c, end) = match bytes.get(at) {
                Some(b'\\') => unescape_at(bytes, at).unwrap_or(('\\', at + 1)),
                _ => match source.get(at..).and_then(|rest| rest.chars().next()) {
                    Some(c) => (c, at + c.len_utf8()),
                    None => break,
                },
            };
            text.push(c);
            from.resize(text.len(), (at, end));
            at = end;
        }
        JsonText {
            text,
            from,
            len: source.len(),
        }
    }

    /// `findings` in the decoded text, located in the source: whole escapes.
    fn locate(&self, findings: Vec<Finding>) -> Vec<Located> {
        findings
            .into_iter()
            .filter_map(|f| {
                let (start, _) = *self.from.get(f.start)?;
                let (_, end) = *self.from.get(f.end.checked_sub(1)?)?;
                let value = self.text.get(f.start..f.end)?.to_string();
                Some(Located {
                    at: Finding { start, end, ..f },
                    value: Some(value),
                })
            })
            .collect()
    }

    /// The start of the character or escape `at` falls in (or `at` at the end).
    fn boundary_at_or_before(&self, at: usize) -> usize {
        if at >= self.len {
            return self.len;
        }
        let k = self.from.partition_point(|&(start, _)| start <= at);
        k.checked_sub(1)
            .and_then(|k| self.from.get(k))
            .map_or(0, |&(start, _)| start)
    }

    /// Where the decoded byte `at` comes from in the source (the end for the end).
    fn source_at(&self, at: usize) -> usize {
        self.from.get(at).map_or(self.len, |&(start, _)| start)
    }

    /// Where the source ends with an escape cut short (`\u00`, a lone `\`, a high
    /// surrogate without its low half): what it stands for is not known yet.
    fn unfinished_escape(&self, source: &[u8]) -> Option<usize> {
        // An escape is at most 12 bytes (a surrogate pair).
        let from = self.len.saturating_sub(12);
        let k = self.from.partition_point(|&(start, _)| start < from);
        let tail = self.from.get(k..)?;
        let cut_short = tail
            .iter()
            .rev()
            .find(|&&(start, end)| end == start + 1 && source.get(start) == Some(&b'\\'))
            .map(|&(start, _)| start);
        // A high surrogate's escape just before waits for its low half.
        let before = cut_short.unwrap_or(self.len);
        let high = tail
            .iter()
            .rev()
            .find(|&&(start, _)| start < before)
            .filter(|&&(start, end)| {
                end == before
                    && end - start == 6
                    && hex4(source, start + 2).is_some_and(|u| (0xD800..0xDC00).contains(&u))
            })
            .map(|&(start, _)| start);
        high.or(cut_short)
    }

    /// What more text could still make into a value, in the source: an escape cut
    /// short may stand for any character, so what precedes it is judged as text that
    /// goes on.
    fn growing_tail(&self, source: &str, limit: usize) -> usize {
        match self.unfinished_escape(source.as_bytes()) {
            Some(escape) => {
                let k = self.from.partition_point(|&(start, _)| start < escape);
                let settled = self.text.get(..k).unwrap_or_default();
                self.source_at(growing_tail(settled, limit)).min(escape)
            }
            None => self.source_at(growing_tail(&self.text, limit)),
        }
    }

    /// The first character or escape starting at or after `at`.
    fn boundary_at_or_after(&self, at: usize) -> usize {
        let k = self.from.partition_point(|&(start, _)| start < at);
        self.from.get(k).map_or(self.len, |&(start, _)| start)
    }
}

/// A finding in the text being rewritten; for JSON, with the decoded value it
/// stands for (else the value is the text it covers).
#[derive(Debug, Clone)]
pub(super) struct Located {
    at: Finding,
    value: Option<String>,
}

impl Located {
    fn as_written(at: Finding) -> Located {
        Located { at, value: None }
    }
}

/// The findings in `text`, read as `form`; for JSON, with its decoding.
fn scan_as(
    scanner: &SensitiveScanner,
    text: &str,
    form: TextForm,
) -> (Vec<Located>, Option<JsonText>) {
    match form {
        TextForm::Prose => {
            let found = scanner.scan(text);
            (found.into_iter().map(Located::as_written).collect(), None)
        }
        TextForm::Json => {
            let decoded = JsonText::decode(text);
            let found = decoded.locate(scanner.scan(&decoded.text));
            (found, Some(decoded))
        }
    }
}

/// What a scan found: scanned now, or remembered from an earlier one.
enum Found {
    Scanned(Vec<Located>),
    Remembered(Arc<[Located]>),
}

impl std::ops::Deref for Found {
    type Target = [Located];

    fn deref(&self) -> &[Located] {
        match self {
            Found::Scanned(found) => found,
            Found::Remembered(found) => found,
        }
    }
}

/// About how many bytes `found` holds, for the verdict cache's bound.
fn heap_bytes(found: &[Located]) -> usize {
    let values: usize = found
        .iter()
        .filter_map(|f| f.value.as_ref())
        .map(String::capacity)
        .sum();
    std::mem::size_of_val(found) + values + cache::ENTRY_OVERHEAD_BYTES
}

/// Consistent placeholders for one request or response.
#[derive(Debug)]
pub struct RedactionSession {
    /// Shared with the firewall that made the session, so a session (and a
    /// stream redactor) can outlive any borrow of it, e.g. across callbacks.
    scanner: Arc<SensitiveScanner>,
    /// The firewall's verdict cache and the scope (agent) of the texts, for
    /// sessions that remember findings.
    cache: Option<(Arc<Cache>, String)>,
    placeholders: HashMap<(SensitiveKind, String), String>,
    next_index: HashMap<SensitiveKind, usize>,
    counts: BTreeMap<SensitiveKind, usize>,
}

/// The identity of a value for placeholder reuse: digits only for numbers, lowercase for
/// addresses, as written otherwise.
fn canonical(kind: SensitiveKind, value: &str) -> String {
    let value = &*folded(value);
    match kind {
        SensitiveKind::CreditCard | SensitiveKind::Phone | SensitiveKind::UsSsn => {
            value.chars().filter(char::is_ascii_digit).collect()
        }
        SensitiveKind::Email | SensitiveKind::Iban | SensitiveKind::IpAddress => value
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase(),
        _ => value.to_string(),
    }
}

impl RedactionSession {
    pub(super) fn new(scanner: Arc<SensitiveScanner>) -> Self {
        RedactionSession {
            scanner,
            cache: None,
            placeholders: HashMap::new(),
            next_index: HashMap::new(),
            counts: BTreeMap::new(),
        }
    }

    /// This session, finding values through `cache` within its scope (`None`:
    /// always scanning).
    pub(super) fn remembering(mut self, cache: Option<(Arc<Cache>, String)>) -> Self {
        self.cache = cache;
        self
    }

    /// The findings in `text` read as `form`: remembered, else scanned.
    /// `known` may be the text's digest (see [`RedactionSession::redact_known`]).
    fn find<'t>(&self, text: &'t str, form: TextForm, known: Option<TextDigest<'t>>) -> Found {
        let Some((cache, scope)) = &self.cache else {
            return Found::Scanned(scan_as(&self.scanner, text, form).0);
        };
        let digest = cache.digest(Scope(scope), text, known);
        let reading = Reading::Findings(form as u8);
        let found = cache.findings(&digest, reading, || {
            let (found, _) = scan_as(&self.scanner, text, form);
            let bytes = heap_bytes(&found);
            (Arc::from(found), bytes)
        });
        Found::Remembered(found)
    }

    /// `text` with every sensitive value replaced, or `None` when nothing was found (the
    /// caller then forwards the original bytes untouched).
    pub fn redact(&mut self, text: &str) -> Option<String> {
        self.redact_as(text, TextForm::Prose)
    }

    /// [`RedactionSession::redact`] for a text of this `form`.
    pub fn redact_as(&mut self, text: &str, form: TextForm) -> Option<String> {
        self.redact_known(text, form, None)
    }

    /// [`RedactionSession::redact_as`] with the text's digest, if the caller
    /// has it ([`Firewall::text_digest`](super::Firewall::text_digest)), so a
    /// remembering session does not hash the text again.
    pub fn redact_known<'t>(
        &mut self,
        text: &'t str,
        form: TextForm,
        known: Option<TextDigest<'t>>,
    ) -> Option<String> {
        let found = self.find(text, form, known);
        if found.is_empty() {
            return None;
        }
        Some(self.apply(text, &found, 0))
    }

    /// Parts of one prose text the model reads joined (the content parts of a
    /// message), redacted as that text: a value split across parts is found,
    /// its placeholder goes where it starts and the rest of it is removed from
    /// the parts it runs into. A value whole in its part is taken as the part
    /// has it (`bob@example.com` + `ok` does not become `bob@example.comok`).
    /// Each part's new text, `None` where unchanged.
    pub fn redact_parts(&mut self, parts: &[&str]) -> Vec<Option<String>> {
        let mut out = vec![None; parts.len()];
        let joined = parts.concat();
        let mut ends = Vec::with_capacity(parts.len());
        let mut found: Vec<Located> = Vec::new();
        let mut start = 0;
        for part in parts {
            let in_part = self.find(part, TextForm::Prose, None);
            found.extend(in_part.iter().cloned().map(|mut located| {
                located.at.start += start;
                located.at.end += start;
                located
            }));
            start += part.len();
            ends.push(start);
        }
        let across = self.find(&joined, TextForm::Prose, None);
        let found = merge_across(found, across.to_vec(), &ends);
        if found.is_empty() {
            return out;
        }
        // Each finding is visited once per part it overlaps; findings do not
        // overlap, so the work is linear in parts plus findings.
        let mut first = 0;
        let mut start = 0;
        for ((slot, part), end) in out.iter_mut().zip(parts).zip(ends) {
            while found.get(first).is_some_and(|f| f.at.end <= start) {
                first += 1;
            }
            if found.get(first).is_none_or(|f| f.at.start >= end) {
                start = end;
                continue;
            }
            let mut text = String::with_capacity(part.len());
            let mut at = start;
            for Located { at: f, value } in found[first..].iter().take_while(|f| f.at.start < end) {
                if f.start >= start {
                    text.push_str(joined.get(at..f.start).unwrap_or_default());
                    let value = match value {
                        Some(value) => value.as_str(),
                        None => joined.get(f.start..f.end).unwrap_or_default(),
                    };
                    let placeholder = self.placeholder(f.kind, value);
                    text.push_str(&placeholder);
                }
                at = f.end.min(end);
            }
            text.push_str(joined.get(at..end).unwrap_or_default());
            *slot = Some(text);
            start = end;
        }
        out
    }

    /// Values replaced so far, per kind (for audit counters; never the values).
    pub fn counts(&self) -> &BTreeMap<SensitiveKind, usize> {
        &self.counts
    }

    /// Whether anything was replaced so far.
    pub fn found_any(&self) -> bool {
        !self.counts.is_empty()
    }

    fn placeholder(&mut self, kind: SensitiveKind, value: &str) -> String {
        *self.counts.entry(kind).or_insert(0) += 1;
        let key = (kind, canonical(kind, value));
        if let Some(p) = self.placeholders.get(&key) {
            return p.clone();
        }
        let n = self.next_index.entry(kind).or_insert(0);
        *n += 1;
        let p = format!("[{}_{}]", kind.label(), n);
        self.placeholders.insert(key, p.clone());
        p
    }

    /// Rewrites `text[skip..]`, replacing `found` (offsets into `text`, sorted, not
    /// overlapping). A finding that starts before `skip` is replaced from `skip` on.
    fn apply(&mut self, text: &str, found: &[Located], skip: usize) -> String {
        work::charge(text.len().saturating_sub(skip));
        let mut out = String::with_capacity(text.len().saturating_sub(skip));
        let mut at = skip;
        for Located { at: f, value } in found {
            if f.end <= at {
                continue;
            }
            let start = f.start.max(at);
            out.push_str(text.get(at..start).unwrap_or_default());
            let value = match value {
                Some(value) => value.as_str(),
                None => text.get(f.start..f.end).unwrap_or_default(),
            };
            let p = self.placeholder(f.kind, value);
            out.push_str(&p);
            at = f.end;
        }
        out.push_str(text.get(at..).unwrap_or_default());
        out
    }
}

/// The findings of each part (`in_parts`, offsets in the joined text) and
/// those of the joined text that cross a part's end (`ends`) and overlap none
/// of them, in order. Both lists are sorted and free of overlaps, and so is
/// the result; one pass over each.
fn merge_across(in_parts: Vec<Located>, across: Vec<Located>, ends: &[usize]) -> Vec<Located> {
    let mut merged = Vec::with_capacity(in_parts.len());
    let mut in_parts = in_parts.into_iter().peekable();
    let mut boundary = 0;
    for candidate in across {
        while ends
            .get(boundary)
            .is_some_and(|&end| end <= candidate.at.start)
        {
            boundary += 1;
        }
        let crosses = ends
            .get(boundary)
            .is_some_and(|&end| end < candidate.at.end);
        while let Some(before) = in_parts.next_if(|f| f.at.end <= candidate.at.start) {
            merged.push(before);
        }
        let overlapped = in_parts
            .peek()
            .is_some_and(|f| f.at.start < candidate.at.end);
        if crosses && !overlapped {
            merged.push(candidate);
        }
    }
    merged.extend(in_parts);
    merged
}

/// Most bytes ever held back (an unterminated PEM block or a very long unbroken token);
/// past this the oldest held text is released.
pub const STREAM_MAX_HOLD_BYTES: usize = 20 * 1024;
/// Most bytes held back for an unbroken word (a JWT, an API key); only an unterminated PEM
/// block is held up to [`STREAM_MAX_HOLD_BYTES`].
const WORD_HOLD_BYTES: usize = 1024;
/// New bytes gathered before the held text is scanned again when none of them can
/// settle it (no space, no character a value cannot hold): a long unbroken word costs
/// about one scan per this many bytes.
const RESCAN_BYTES: usize = 64;
/// A long hold is scanned again only once the new bytes are this fraction (1/n) of it:
/// then every scan reads at most n + 1 times the bytes that arrived since the last one,
/// where a scan every [`RESCAN_BYTES`] would read a 20 KiB hold for every 64 new bytes.
const RESCAN_FRACTION: usize = 4;
/// Most bytes kept back at a release inside an unterminated PEM block: with the bytes
/// that arrive before the next scan, at most [`STREAM_MAX_HOLD_BYTES`].
const PEM_HOLD_BYTES: usize = STREAM_MAX_HOLD_BYTES * RESCAN_FRACTION / (RESCAN_FRACTION + 1);
/// Bytes of already released text kept as context for the next scan (`password = ` just
/// before a value).
const CONTEXT_BYTES: usize = 64;

/// Redacts a stream of text arriving in pieces.
///
/// Feed it either the raw bytes of a plain-text stream ([`StreamRedactor::push_bytes`]) or,
/// for server-sent events, the *decoded delta strings* in order
/// ([`StreamRedactor::push_text`]): e.g. each OpenAI `choices[0].delta.content` or
/// Anthropic `delta.text`. Working on the concatenated delta text is what catches a value
/// split across two events. Each call returns the text that is now safe to forward (put
/// it in the outgoing event; it may be empty); [`StreamRedactor::finish`] returns the rest.
/// Only what more text could still make into a sensitive value is held back
/// ([`growing_tail`]: the unfinished last word, an open number run or IBAN, an assignment
/// to a secret name whose value has not begun, …), at most 1 KiB of it, or
/// [`STREAM_MAX_HOLD_BYTES`] inside an unterminated PEM block: plain words go out as soon
/// as the space after them arrives. A piece with no space (nor any character a value
/// cannot hold) settles nothing and is batched to 64 bytes before the next scan, and a
/// long hold is scanned again only after a quarter of its size has arrived.
#[derive(Debug)]
pub struct StreamRedactor {
    session: RedactionSession,
    form: TextForm,
    /// The released text kept as context (`context_len` bytes), then the held text:
    /// one buffer, so a release copies neither into a new window.
    window: String,
    context_len: usize,
    utf8_tail: Vec<u8>,
    unscanned: usize,
}

impl StreamRedactor {
    pub(super) fn new(session: RedactionSession) -> Self {
        StreamRedactor {
            session,
            form: TextForm::Prose,
            window: String::new(),
            context_len: 0,
            utf8_tail: Vec::new(),
            unscanned: 0,
        }
    }

    /// The same redactor for a stream of this `form` (see [`TextForm::Json`]).
    pub fn of_form(mut self, form: TextForm) -> Self {
        self.form = form;
        self
    }

    /// Adds raw bytes; returns the bytes safe to forward. A multibyte UTF-8 character cut
    /// between two chunks is held until complete; invalid bytes are forwarded as U+FFFD.
    pub fn push_bytes(&mut self, chunk: &[u8]) -> Vec<u8> {
        work::charge(self.utf8_tail.len() + chunk.len());
        self.utf8_tail.extend_from_slice(chunk);
        let mut text = String::new();
        let mut rest: &[u8] = &self.utf8_tail;
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    text.push_str(valid);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    text.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        Some(bad) => {
                            text.push('\u{FFFD}');
                            rest = after.get(bad..).unwrap_or_default();
                        }
                        None => {
                            rest = after;
                            break;
                        }
                    }
                }
            }
        }
        self.utf8_tail = rest.to_vec();
        self.push_text(&text).into_bytes()
    }

    /// Adds text; returns the text safe to forward now (often empty for tiny pieces).
    pub fn push_text(&mut self, text: &str) -> String {
        self.window.push_str(text);
        self.unscanned += text.len();
        let held = self.window.len() - self.context_len - self.unscanned;
        // Only a space or a character no value is made of can end what came before it.
        let settles = text.bytes().any(|b| b <= b' ' || b >= 0x7F);
        let due = if settles {
            held / RESCAN_FRACTION
        } else {
            RESCAN_BYTES.max(held / RESCAN_FRACTION)
        };
        if self.unscanned < due.max(1) {
            return String::new();
        }
        self.unscanned = 0;
        self.release(false)
    }

    /// Ends the stream: returns everything still held, redacted.
    pub fn finish(&mut self) -> String {
        if !self.utf8_tail.is_empty() {
            let tail = std::mem::take(&mut self.utf8_tail);
            self.window.push_str(&String::from_utf8_lossy(&tail));
        }
        self.release(true)
    }

    /// Whether any value was found so far (for `response_mode = block`).
    pub fn found_any(&self) -> bool {
        self.session.found_any()
    }

    /// Values replaced so far, per kind.
    pub fn counts(&self) -> &BTreeMap<SensitiveKind, usize> {
        self.session.counts()
    }

    /// Releases what is safe of the held text. For JSON, the context always starts
    /// at a character or escape, so the window decodes as the stream does, and the
    /// cut never splits an escape.
    fn release(&mut self, all: bool) -> String {
        // The window is scanned (charged by the scanners), then cut, and what stays is
        // moved to its front.
        work::charge(3 * self.window.len());
        let ctx_len = self.context_len;
        let window = &self.window;
        let (found, decoded) = scan_as(&self.session.scanner, window, self.form);

        let mut cut = window.len();
        if !all {
            let max_hold = if window
                .get(ctx_len..)
                .is_some_and(|p| find_from(p.as_bytes(), 0, b"-----BEGIN ", 0).is_some())
            {
                PEM_HOLD_BYTES
            } else {
                WORD_HOLD_BYTES
            };
            let floor = window.len().saturating_sub(max_hold).max(ctx_len);
            // Hold what more text could still make into a value.
            let growing = match &decoded {
                Some(decoded) => decoded.growing_tail(window, max_hold),
                None => growing_tail(window, max_hold),
            };
            cut = growing.max(floor);
            // Never cut inside a value, nor after one that reaches the end: it may grow.
            for Located { at: f, .. } in &found {
                if f.start < cut && (f.end > cut || f.end == window.len()) {
                    cut = f.start.max(floor);
                }
            }
            if let Some(decoded) = &decoded {
                cut = decoded.boundary_at_or_before(cut).max(ctx_len);
            }
            while cut > ctx_len && !window.is_char_boundary(cut) {
                cut -= 1;
            }
        }
        let inside: Vec<Located> = found
            .into_iter()
            .filter(|l| l.at.start < cut && l.at.end > ctx_len)
            .map(|Located { at, value }| Located {
                at: Finding {
                    end: at.end.min(cut),
                    ..at
                },
                value,
            })
            .collect();
        let head = window.get(..cut).unwrap_or_default();
        let out = self.session.apply(head, &inside, ctx_len);

        let released = head;
        let mut ctx_start = released.len().saturating_sub(CONTEXT_BYTES);
        if let Some(decoded) = &decoded {
            ctx_start = decoded.boundary_at_or_after(ctx_start).min(released.len());
        }
        while ctx_start < released.len() && !released.is_char_boundary(ctx_start) {
            ctx_start += 1;
        }
        // What stays: the last of the released text as context, then the held text.
        self.window.drain(..ctx_start);
        self.context_len = cut - ctx_start;
        out
    }
}

#[cfg(test)]
mod tests;
