//! Redaction with typed placeholders, for whole texts and for streams.
//!
//! A [`RedactionSession`] lives for one request (or one response): the same value always
//! gets the same placeholder (`[EMAIL_1]`), in every segment, so the model can still tell
//! that two mentions are one person. A [`StreamRedactor`] applies a session to text that
//! arrives in pieces, holding back a bounded tail so a value split across pieces is still
//! found whole.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::sensitive::{find_from, Finding, SensitiveKind, SensitiveScanner};

/// What a text is, for redaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextForm {
    /// Text as people read it.
    Prose,
    /// JSON source text, as a model writes a tool call's arguments
    /// (`{"to": "bob\u0040example.com"}`): its escapes are read before scanning.
    /// An escaped printable ASCII character (`\u0040`) is written as itself, the
    /// same JSON, so a value spelled with escapes is still found; other escapes
    /// (`\n`, `\"`, `\u00e9`) separate words and are never cut by a placeholder.
    Json,
}

/// The printable ASCII character a `\uXXXX` escape stands for, unless JSON needs
/// it escaped (`"` and `\`).
fn escaped_printable(hex: &[u8]) -> Option<char> {
    let code = u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
    let c = char::from_u32(code).filter(|c| (' '..='~').contains(c))?;
    (c != '"' && c != '\\').then_some(c)
}

/// Where the JSON escape starting at `text[at]` (a backslash) ends, or `None` when
/// `text` ends first.
fn escape_end(text: &[u8], at: usize) -> Option<usize> {
    match text.get(at + 1)? {
        b'u' => (at + 6 <= text.len()).then_some(at + 6),
        _ => Some(at + 2),
    }
}

/// `text` with each escaped printable ASCII character written as itself. An
/// escape cut off by the end of `text` is left as it is; `tail` is set to its
/// length (for a stream, to wait for the rest), else to 0.
fn unescape_printable<'a>(text: &'a str, tail: &mut usize) -> Cow<'a, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut at = 0;
    *tail = 0;
    while let Some(offset) = bytes
        .get(at..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\\'))
    {
        let start = at + offset;
        let Some(end) = escape_end(bytes, start) else {
            *tail = text.len() - start;
            break;
        };
        if end - start == 6 {
            if let Some(c) = bytes.get(start + 2..end).and_then(escaped_printable) {
                let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
                out.push_str(text.get(copied..start).unwrap_or_default());
                out.push(c);
                copied = end;
            }
        }
        at = end;
    }
    match out {
        Some(mut out) => {
            out.push_str(text.get(copied..).unwrap_or_default());
            Cow::Owned(out)
        }
        None => Cow::Borrowed(text),
    }
}

/// `text` with every JSON escape blanked to spaces, for scanning: the same length,
/// so a finding's offsets are the text's, and no finding starts or ends inside an
/// escape.
fn blank_escapes(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    if !bytes.contains(&b'\\') {
        return Cow::Borrowed(text);
    }
    let mut out = bytes.to_vec();
    let mut at = 0;
    while let Some(offset) = bytes
        .get(at..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\\'))
    {
        let start = at + offset;
        let end = escape_end(bytes, start).unwrap_or(bytes.len());
        // The escape's bytes are ASCII (a `\u` escape is read as hex digits only
        // when they are; otherwise its end is two bytes on): char boundaries stay.
        let end = if bytes
            .get(start + 2..end)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
        {
            end
        } else {
            (start + 2).min(bytes.len())
        };
        for b in out.get_mut(start..end).into_iter().flatten() {
            if b.is_ascii() {
                *b = b' ';
            }
        }
        at = end;
    }
    Cow::Owned(String::from_utf8(out).unwrap_or_else(|_| text.to_string()))
}

/// Consistent placeholders for one request or response.
#[derive(Debug)]
pub struct RedactionSession {
    /// Shared with the firewall that made the session, so a session (and a
    /// stream redactor) can outlive any borrow of it, e.g. across callbacks.
    scanner: Arc<SensitiveScanner>,
    placeholders: HashMap<(SensitiveKind, String), String>,
    next_index: HashMap<SensitiveKind, usize>,
    counts: BTreeMap<SensitiveKind, usize>,
}

/// The identity of a value for placeholder reuse: digits only for numbers, lowercase for
/// addresses, as written otherwise.
fn canonical(kind: SensitiveKind, value: &str) -> String {
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
            placeholders: HashMap::new(),
            next_index: HashMap::new(),
            counts: BTreeMap::new(),
        }
    }

    /// `text` with every sensitive value replaced, or `None` when nothing was found (the
    /// caller then forwards the original bytes untouched).
    pub fn redact(&mut self, text: &str) -> Option<String> {
        let findings = self.scanner.scan(text);
        if findings.is_empty() {
            return None;
        }
        Some(self.apply(text, &findings, 0))
    }

    /// [`RedactionSession::redact`] for a text of this `form`.
    pub fn redact_as(&mut self, text: &str, form: TextForm) -> Option<String> {
        if form == TextForm::Prose {
            return self.redact(text);
        }
        let text = unescape_printable(text, &mut 0);
        let findings = self.scanner.scan(&blank_escapes(&text));
        if findings.is_empty() {
            return None;
        }
        Some(self.apply(&text, &findings, 0))
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

    /// Rewrites `text[skip..]`, replacing `findings` (offsets into `text`, sorted, not
    /// overlapping). A finding that starts before `skip` is replaced from `skip` on.
    fn apply(&mut self, text: &str, findings: &[Finding], skip: usize) -> String {
        let mut out = String::with_capacity(text.len().saturating_sub(skip));
        let mut at = skip;
        for f in findings {
            if f.end <= at {
                continue;
            }
            let start = f.start.max(at);
            out.push_str(text.get(at..start).unwrap_or_default());
            let value = text.get(f.start..f.end).unwrap_or_default();
            let p = self.placeholder(f.kind, value);
            out.push_str(&p);
            at = f.end;
        }
        out.push_str(text.get(at..).unwrap_or_default());
        out
    }
}

/// Bytes of text always held back from the end of what has arrived.
pub const STREAM_HOLD_BYTES: usize = 128;
/// Most bytes ever held back (an unterminated PEM block or a very long unbroken token);
/// past this the oldest held text is released.
pub const STREAM_MAX_HOLD_BYTES: usize = 20 * 1024;
/// Most bytes held back for an unbroken word (a JWT, an API key); only an unterminated PEM
/// block is held up to [`STREAM_MAX_HOLD_BYTES`].
const WORD_HOLD_BYTES: usize = 1024;
/// New bytes gathered before the held text is scanned again: tiny SSE deltas are batched
/// so a stream costs about one scan per this many bytes.
const RESCAN_BYTES: usize = 64;
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
/// Held-back text is normally about [`STREAM_HOLD_BYTES`] plus the unfinished word at the
/// end (at most 1 KiB of word), at most [`STREAM_MAX_HOLD_BYTES`] inside an unterminated
/// PEM block; pieces under 64 bytes are batched before the next scan.
#[derive(Debug)]
pub struct StreamRedactor {
    session: RedactionSession,
    form: TextForm,
    /// A JSON escape cut off by the end of the last piece ([`TextForm::Json`]).
    escape_tail: String,
    pending: String,
    context: String,
    utf8_tail: Vec<u8>,
    unscanned: usize,
}

impl StreamRedactor {
    pub(super) fn new(session: RedactionSession) -> Self {
        StreamRedactor {
            session,
            form: TextForm::Prose,
            escape_tail: String::new(),
            pending: String::new(),
            context: String::new(),
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
        if self.form == TextForm::Json {
            let mut piece = std::mem::take(&mut self.escape_tail);
            piece.push_str(text);
            let mut tail = 0;
            let unescaped = unescape_printable(&piece, &mut tail);
            let (ready, held) = unescaped.split_at(unescaped.len() - tail);
            self.pending.push_str(ready);
            self.escape_tail = held.to_string();
        } else {
            self.pending.push_str(text);
        }
        self.unscanned += text.len();
        if self.unscanned < RESCAN_BYTES {
            return String::new();
        }
        self.unscanned = 0;
        self.release(false)
    }

    /// Ends the stream: returns everything still held, redacted.
    pub fn finish(&mut self) -> String {
        if !self.utf8_tail.is_empty() {
            let tail = std::mem::take(&mut self.utf8_tail);
            self.pending.push_str(&String::from_utf8_lossy(&tail));
        }
        let escape_tail = std::mem::take(&mut self.escape_tail);
        self.pending.push_str(&escape_tail);
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

    fn release(&mut self, all: bool) -> String {
        let ctx_len = self.context.len();
        let mut window = String::with_capacity(ctx_len + self.pending.len());
        window.push_str(&self.context);
        window.push_str(&self.pending);
        let scanned = match self.form {
            TextForm::Prose => Cow::Borrowed(window.as_str()),
            TextForm::Json => blank_escapes(&window),
        };
        let findings = self.session.scanner.scan(&scanned);

        let mut cut = window.len();
        if !all {
            cut = cut.saturating_sub(STREAM_HOLD_BYTES).max(ctx_len);
            let max_hold = if window
                .get(ctx_len..)
                .is_some_and(|p| find_from(p.as_bytes(), 0, b"-----BEGIN ", 0).is_some())
            {
                STREAM_MAX_HOLD_BYTES
            } else {
                WORD_HOLD_BYTES
            };
            let floor = window.len().saturating_sub(max_hold).max(ctx_len);
            // Do not cut inside a word: values are unbroken runs.
            while cut > floor
                && scanned
                    .as_bytes()
                    .get(cut - 1)
                    .is_some_and(|b| !b.is_ascii_whitespace())
            {
                cut -= 1;
            }
            // Nor inside a value, or before a value that reaches the end and may grow.
            for f in &findings {
                if f.end > cut && f.start < cut {
                    cut = f.start.max(floor);
                }
            }
            while cut > ctx_len && !window.is_char_boundary(cut) {
                cut -= 1;
            }
        }
        let inside: Vec<Finding> = findings
            .iter()
            .filter(|f| f.start < cut && f.end > ctx_len)
            .map(|f| Finding {
                end: f.end.min(cut),
                ..*f
            })
            .collect();
        let head = window.get(..cut).unwrap_or_default();
        let out = self.session.apply(head, &inside, ctx_len);

        let released = head;
        let mut ctx_start = released.len().saturating_sub(CONTEXT_BYTES);
        while ctx_start < released.len() && !released.is_char_boundary(ctx_start) {
            ctx_start += 1;
        }
        self.context = released.get(ctx_start..).unwrap_or_default().to_string();
        self.pending = window.get(cut..).unwrap_or_default().to_string();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanner() -> Arc<SensitiveScanner> {
        Arc::new(SensitiveScanner::compile(true, true).unwrap())
    }

    #[test]
    fn same_value_same_placeholder_across_texts() {
        let s = scanner();
        let mut session = RedactionSession::new(s.clone());
        let a = session
            .redact("mail bob@example.com or amy@example.com")
            .unwrap();
        let b = session
            .redact("again BOB@example.com, card 4111-1111-1111-1111")
            .unwrap();
        assert_eq!(a, "mail [EMAIL_1] or [EMAIL_2]");
        assert_eq!(b, "again [EMAIL_1], card [CREDIT_CARD_1]");
        assert_eq!(session.counts().get(&SensitiveKind::Email), Some(&3));
        assert!(session.redact("nothing here").is_none());
    }

    fn stream(pieces: &[&str]) -> String {
        let s = scanner();
        let mut r = StreamRedactor::new(RedactionSession::new(s.clone()));
        let mut out = String::new();
        for p in pieces {
            out.push_str(&r.push_text(p));
        }
        out.push_str(&r.finish());
        out
    }

    #[test]
    fn value_split_across_pieces_is_caught() {
        let key = "sk-proj-abcdefghijklmnopqrstuvwxyz012345";
        let text = format!(
            "{} here is the key {key} and mail bob@example.com end",
            "x ".repeat(100)
        );
        let expected = text
            .replace(key, "[OPENAI_KEY_1]")
            .replace("bob@example.com", "[EMAIL_1]");
        for size in [1, 3, 7, 64, 1000] {
            let bytes: Vec<char> = text.chars().collect();
            let pieces: Vec<String> = bytes.chunks(size).map(|c| c.iter().collect()).collect();
            let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
            assert_eq!(stream(&refs), expected, "piece size {size}");
        }
    }

    #[test]
    fn long_values_longer_than_the_hold_window_are_held_whole() {
        let jwt = format!(
            "eyJhbGciOiJIUzI1NiJ9.eyJ{}.c2lnbmF0dXJlXzEyMw",
            "c3ViIjoiYWdlbnQi".repeat(20)
        );
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----",
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n".repeat(10)
        );
        let text = format!("token {jwt} and key {pem} done");
        let chars: Vec<char> = text.chars().collect();
        let pieces: Vec<String> = chars.chunks(7).map(|c| c.iter().collect()).collect();
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        assert_eq!(stream(&refs), "token [JWT_1] and key [PRIVATE_KEY_1] done");
    }

    #[test]
    fn multibyte_char_split_across_byte_chunks() {
        let s = scanner();
        let mut r = StreamRedactor::new(RedactionSession::new(s.clone()));
        let text = "héllo wörld 😀 bob@example.com ".repeat(20);
        let mut out = Vec::new();
        for chunk in text.as_bytes().chunks(5) {
            out.extend(r.push_bytes(chunk));
        }
        out.extend(r.finish().into_bytes());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            text.replace("bob@example.com", "[EMAIL_1]")
        );
    }

    #[test]
    fn json_text_is_read_through_its_escapes() {
        let mut session = RedactionSession::new(scanner());
        let mut redact = |text: &str| session.redact_as(text, TextForm::Json);
        // An escaped `@` is written as itself, and the value found.
        assert_eq!(
            redact(r#"{"to": "bob\u0040example.com", "n": 1}"#).as_deref(),
            Some(r#"{"to": "[EMAIL_1]", "n": 1}"#)
        );
        // Digits spelled as escapes, right after a line-break escape.
        assert_eq!(
            redact(r#"{"card": "x\n\u0033\u003782822463\u00310005"}"#).as_deref(),
            Some(r#"{"card": "x\n[CREDIT_CARD_1]"}"#)
        );
        // The letter of an escape is never taken into a value, so the escape stays whole.
        assert_eq!(
            redact(r#"{"note": "a\nbob@example.com\t\"amy@example.com\""}"#).as_deref(),
            Some(r#"{"note": "a\n[EMAIL_1]\t\"[EMAIL_2]\""}"#)
        );
        // An escaped backslash is not the start of an escape.
        assert_eq!(redact(r#"{"p": "c:\\u0040x"}"#), None);
        // Prose has no escapes: `nbob@example.com` is another address.
        assert_eq!(
            session.redact("a\\nbob@example.com").as_deref(),
            Some("a\\[EMAIL_3]")
        );
    }

    /// A JSON text of tool arguments whose string values hold `values`, with the
    /// printable characters at every `step`-th place spelled as `\u00XX` escapes.
    fn escaped_arguments(values: &[&str], step: usize) -> String {
        let plain = serde_json::to_string(&serde_json::json!({ "values": values })).unwrap();
        let mut out = String::new();
        let mut in_string = false;
        let mut escaped = false;
        for (i, c) in plain.chars().enumerate() {
            let plain_char = in_string && !escaped && c != '\\' && c != '"' && c.is_ascii_graphic();
            if plain_char && i % step == 0 {
                out.push_str(&format!("\\u{:04x}", c as u32));
            } else {
                out.push(c);
            }
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = !in_string;
            }
        }
        out
    }

    #[test]
    fn streamed_json_arguments_stay_json_and_lose_every_value() {
        let values = [
            "line one\nbob@example.com",
            "quoted \"amy@example.com\" and tab\t4111 1111 1111 1111",
            "café ünïcode 😀 AKIAIOSFODNN7EXAMPLE end",
            "back\\slash bob@example.com",
        ];
        for step in [1, 2, 3, 5, 7, 1000] {
            let text = escaped_arguments(&values, step);
            let chars: Vec<char> = text.chars().collect();
            for size in [1, 2, 5, 6, 7, 64, 10_000] {
                let mut r =
                    StreamRedactor::new(RedactionSession::new(scanner())).of_form(TextForm::Json);
                let mut out = String::new();
                for piece in chars.chunks(size) {
                    out.push_str(&r.push_text(&piece.iter().collect::<String>()));
                }
                out.push_str(&r.finish());
                let parsed: serde_json::Value = serde_json::from_str(&out)
                    .unwrap_or_else(|e| panic!("step {step} size {size}: {e}: {out}"));
                let all = parsed.to_string();
                for value in ["bob@example.com", "amy@example.com", "4111", "AKIA"] {
                    assert!(!all.contains(value), "step {step} size {size}: {all}");
                }
                assert!(
                    all.contains("[EMAIL_1]") && all.contains("[EMAIL_2]"),
                    "{all}"
                );
                assert!(
                    all.contains("café ünïcode 😀") && all.contains("back\\\\slash"),
                    "{all}"
                );
            }
        }
    }

    #[test]
    fn stream_releases_text_as_it_goes() {
        let s = scanner();
        let mut r = StreamRedactor::new(RedactionSession::new(s.clone()));
        let out = r.push_text(&"word ".repeat(200));
        assert!(out.len() >= 1000 - STREAM_HOLD_BYTES - 5);
        // A tiny piece is batched, then released with the next scan.
        assert_eq!(r.push_text("ab"), "");
        assert!(!r.found_any());
    }
}
