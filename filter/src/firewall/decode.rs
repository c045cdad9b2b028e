//! Decode-and-rescan: finds text hidden in an encoding (base64, hex, URL-encoding, ROT13,
//! reversed text, Morse, 8-bit binary) or split across quoted variables, and returns the readable views so the
//! detector can scan them too, and the layers that are themselves encoded (base64 of
//! base64, hex of base64, double URL-encoding) so the caller decodes them again. Every
//! decoder is one linear pass; the caller bounds depth and total decoded size.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};

use crate::work;

/// How a view was hidden in its parent text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// Base64 (standard or URL-safe alphabet).
    Base64,
    /// Hexadecimal bytes (`69676e…`, `\x69\x67`, `69 67 6e`).
    Hex,
    /// Percent-encoding.
    Url,
    /// ROT13.
    Rot13,
    /// Text written backwards.
    Reversed,
    /// ASCII carried by invisible Unicode Tag characters.
    TagCharacters,
    /// Pieces assigned to variables (`a = "ign"; b = "ore …"`), joined.
    SplitPayload,
    /// Morse code (`.. --. -. --- .-. .`, words split by `/`).
    Morse,
    /// Bytes written as groups of eight binary digits (`01101001 01100111`).
    Binary,
    /// Sentences with their letters shifted by one fixed amount (a Caesar cipher: `Ljqruh`
    /// for `Ignore`), found sentence by sentence so a shifted sentence inside plain text
    /// is read too.
    Caesar,
}

const MIN_BASE64: usize = 20;
const MIN_HEX_DIGITS: usize = 16;

/// One layer decoded from a text.
#[derive(Debug, PartialEq)]
pub(super) struct View {
    pub encoding: Encoding,
    pub text: String,
    /// The layer reads as text and is worth scanning. A layer that does not may still
    /// hold another encoding (base64 of base64, hex of base64, double URL-encoding): it
    /// is kept to be decoded again, not scanned.
    pub readable: bool,
}

/// Views hidden in `text` (readable ones, and encoded middle layers to decode again), at
/// most `budget` bytes of them in total.
pub(super) fn hidden_views(text: &str, budget: usize) -> Vec<View> {
    let mut views = Vec::new();
    let left = std::cell::Cell::new(budget);
    let push = |views: &mut Vec<View>, encoding: Encoding, s: String| {
        if s.len() > left.get() {
            return;
        }
        let readable = is_texty(&s);
        if readable || is_encoded_layer(&s) {
            left.set(left.get() - s.len());
            views.push(View {
                encoding,
                text: s,
                readable,
            });
        }
    };
    let clues = Clues::of(text.as_bytes());
    if clues.base64 {
        for s in base64_runs(text) {
            push(&mut views, Encoding::Base64, s);
        }
    }
    if clues.hex {
        for s in hex_runs(text) {
            push(&mut views, Encoding::Hex, s);
        }
    }
    if clues.percent {
        if let Some(s) = percent_decode(text) {
            push(&mut views, Encoding::Url, s);
        }
    }
    if clues.quotes {
        if let Some(s) = split_payload(text) {
            push(&mut views, Encoding::SplitPayload, s);
        }
    }
    if clues.morse {
        if let Some(s) = morse_decode(text) {
            push(&mut views, Encoding::Morse, s);
        }
    }
    if clues.binary {
        if let Some(s) = binary_decode(text) {
            push(&mut views, Encoding::Binary, s);
        }
    }
    let words = WordScan::of(text);
    let (plain, rot, rev) = (words.plain, words.rotated, words.reversed);
    if rot >= 3 && rot > 2 * plain {
        work::charge(text.len());
        push(
            &mut views,
            Encoding::Rot13,
            text.chars().map(rot13).collect(),
        );
    }
    if rev >= 3 && rev > 2 * plain {
        work::charge(text.len());
        push(&mut views, Encoding::Reversed, text.chars().rev().collect());
    }
    let whole_text_rot13 = views.iter().any(|v| v.encoding == Encoding::Rot13);
    if let Some(s) = caesar_sentences(text, &words.shifted, whole_text_rot13, left.get()) {
        push(&mut views, Encoding::Caesar, s);
    }
    views
}

/// Which decoders can find anything in a text, from one pass over its bytes. Each flag is
/// a necessary condition of its decoder's output, so a decoder left out could not have
/// found anything; most prose sets none of them.
#[derive(Debug, Default)]
struct Clues {
    /// A run of at least [`MIN_BASE64`] base64 bytes.
    base64: bool,
    /// At least [`MIN_HEX_DIGITS`] hex digits in a stretch of digits and the separators
    /// `hex_runs` skips.
    hex: bool,
    /// At least three percent escapes.
    percent: bool,
    /// At least four quote bytes: two quoted pieces.
    quotes: bool,
    /// A Morse pair (`.-` or `-.`).
    morse: bool,
    /// A binary group start (`0100` or `0110`).
    binary: bool,
}

impl Clues {
    fn of(bytes: &[u8]) -> Clues {
        work::charge(bytes.len());
        let mut escapes = 0usize;
        let mut quotes = 0usize;
        let mut clues = Clues {
            base64: long_runs(bytes, BASE64, MIN_BASE64).next().is_some(),
            // Digits between separators count on; any other byte ends the stretch.
            hex: long_runs(bytes, HEX_DIGIT | HEX_SEPARATOR, MIN_HEX_DIGITS).any(|run| {
                let digits = bytes.get(run).unwrap_or_default().iter();
                digits
                    .filter(|&&b| CLUE_CLASSES[usize::from(b)] & HEX_DIGIT != 0)
                    .count()
                    >= MIN_HEX_DIGITS
            }),
            ..Clues::default()
        };
        for (i, &b) in bytes.iter().enumerate() {
            if CLUE_CLASSES[usize::from(b)] & RARE == 0 {
                continue;
            }
            let before = |n: usize| i.checked_sub(n).and_then(|j| bytes.get(j)).copied();
            match b {
                b'%' => {
                    let hex_at = |j: usize| bytes.get(j).copied().and_then(hex_value).is_some();
                    escapes += usize::from(hex_at(i + 1) && hex_at(i + 2));
                }
                b'"' | b'`' | b'\'' => quotes += 1,
                b'.' => clues.morse |= before(1) == Some(b'-'),
                b'-' => clues.morse |= before(1) == Some(b'.'),
                b'0' => {
                    let group = (before(3), before(2), before(1));
                    clues.binary |= matches!(group, (Some(b'0'), Some(b'1'), Some(b'0' | b'1')));
                }
                _ => {}
            }
        }
        clues.percent = escapes >= 3;
        clues.quotes = quotes >= 4;
        clues
    }
}

/// The maximal runs of bytes in `class` at least `len` long, as ranges. The last byte a
/// run starting at `start` would need is read first, then back towards `start`: text
/// breaks most runs within a word, so most bytes are never read, and none twice
/// (`start..verified` are known to be in the class).
fn long_runs(
    bytes: &[u8],
    class: u8,
    len: usize,
) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let in_class = move |b: &u8| CLUE_CLASSES[usize::from(*b)] & class != 0;
    let (mut start, mut verified) = (0usize, 0usize);
    std::iter::from_fn(move || {
        while let Some(unread) = bytes.get(verified..start + len) {
            if let Some(k) = unread.iter().rposition(|b| !in_class(b)) {
                let breaks = verified + k;
                verified = start + len;
                start = breaks + 1;
                continue;
            }
            let end = bytes
                .get(start..)
                .and_then(|rest| rest.iter().position(|b| !in_class(b)))
                .map_or(bytes.len(), |k| start + k);
            let run = start..end;
            // Past the byte that ended the run (or the end of the text).
            start = end + 1;
            verified = start;
            return Some(run);
        }
        None
    })
}

const BASE64: u8 = 1;
const HEX_DIGIT: u8 = 2;
/// Bytes `hex_runs` may skip between digits (`0x`, `\x`, spaces, commas, colons).
const HEX_SEPARATOR: u8 = 4;
/// Bytes that start or end another clue.
const RARE: u8 = 8;

/// Byte classes for [`Clues::of`].
const CLUE_CLASSES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        let mut class = 0;
        if byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'/' | b'=' | b'_' | b'-') {
            class |= BASE64;
        }
        if byte.is_ascii_hexdigit() {
            class |= HEX_DIGIT;
        }
        if matches!(byte, b'x' | b'X' | b'\\' | b' ' | b',' | b':') {
            class |= HEX_SEPARATOR;
        }
        if matches!(byte, b'%' | b'"' | b'`' | b'\'' | b'.' | b'-' | b'0') {
            class |= RARE;
        }
        table[b] = class;
        b += 1;
    }
    table
};

/// Decoded bytes that are themselves encoded text: printable ASCII in which a decoder
/// can find something (a base64 or hex run, percent escapes, binary groups).
fn is_encoded_layer(s: &str) -> bool {
    let printable = s
        .bytes()
        .all(|b| b.is_ascii_graphic() || b == b' ' || b == b'\n');
    if !printable {
        return false;
    }
    let clues = Clues::of(s.as_bytes());
    clues.base64 || clues.hex || clues.percent || clues.binary
}

/// Decoded text worth scanning: mostly printable, mostly letters, sentence-like.
fn is_texty(s: &str) -> bool {
    work::charge(s.len());
    let mut total = 0usize;
    let mut printable = 0usize;
    let mut letters = 0usize;
    let mut spaces = 0usize;
    for c in s.chars() {
        total += 1;
        if c == ' ' {
            spaces += 1;
        }
        if !c.is_control() || c == '\n' || c == '\t' {
            printable += 1;
        }
        if c.is_alphabetic() {
            letters += 1;
        }
    }
    total >= 8 && printable * 10 >= total * 9 && letters * 2 >= total && spaces >= 2
}

/// Lenient base64: padding optional, trailing bits allowed (hidden payloads are
/// often cut). Built at compile time: the decode tables are not rebuilt per text.
const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

fn is_base64_byte(b: u8) -> bool {
    CLUE_CLASSES[usize::from(b)] & BASE64 != 0
}

/// Base64 runs of `text`, decoded. Each line's run is read alone, and a run wrapped over
/// lines (MIME and PEM wrap at 64 or 76 characters) is read whole too ([`wrapped_runs`]).
fn base64_runs(text: &str) -> Vec<String> {
    // The split, and each run's checks and decoding (each byte in one run).
    work::charge(4 * text.len());
    let mut out = Vec::new();
    // Blocks of base64 bytes and line breaks (any other byte, those of multibyte
    // characters included, ends one).
    let blocks = text
        .as_bytes()
        .split(|&b| !is_base64_byte(b) && b != b'\n' && b != b'\r');
    for block in blocks {
        let lines: Vec<&[u8]> = block
            .split(|&b| b == b'\n' || b == b'\r')
            .filter(|line| !line.is_empty())
            .collect();
        out.extend(lines.iter().filter_map(|run| decode_base64_run(run)));
        if lines.len() > 1 {
            for whole in wrapped_runs(&lines) {
                out.extend(decode_base64_run(&whole));
            }
        }
    }
    out
}

/// The runs wrapped over consecutive `lines`, joined: lines of one length (a multiple of
/// four, at least [`MIN_BASE64`]), then a shorter line of a length that is a multiple of
/// four (the padded end), if one follows. A line of any other length (a word after the
/// run) ends the run without joining it.
fn wrapped_runs(lines: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut runs = Vec::new();
    let mut k = 0;
    while k < lines.len() {
        let width = lines.get(k).map_or(0, |l| l.len());
        let mut end = k + 1;
        if width >= MIN_BASE64 && width % 4 == 0 {
            while lines.get(end).is_some_and(|l| l.len() == width) {
                end += 1;
            }
            if lines
                .get(end)
                .is_some_and(|l| l.len() < width && l.len() % 4 == 0)
            {
                end += 1;
            }
        }
        if end - k > 1 {
            runs.push(lines.get(k..end).unwrap_or_default().concat());
        }
        k = end;
    }
    runs
}

/// One run of base64 bytes decoded to UTF-8 text, without its `=` padding; `None` when
/// it is too short, has no capital (prose words and identifiers in lowercase), or does
/// not decode to UTF-8.
fn decode_base64_run(run: &[u8]) -> Option<String> {
    let mut run = run;
    while let [rest @ .., b'='] = run {
        run = rest;
    }
    if run.len() < MIN_BASE64 || !run.iter().any(u8::is_ascii_uppercase) {
        return None;
    }
    // A lone trailing character cannot be base64; drop it.
    let usable = if run.len() % 4 == 1 {
        run.len() - 1
    } else {
        run.len()
    };
    let body = run.get(..usable)?;
    let engine = if body.iter().any(|&b| b == b'-' || b == b'_') {
        &URL_SAFE_LENIENT
    } else {
        &STANDARD_LENIENT
    };
    String::from_utf8(engine.decode(body).ok()?).ok()
}

/// Fewest Morse letters (or binary bytes) in a row worth decoding: shorter runs occur in
/// ordinary punctuation.
const MIN_CODED_SYMBOLS: usize = 8;

/// Quotes and punctuation that may cling to the ends of a coded word.
fn trim_clinging(word: &str) -> &str {
    word.trim_matches(|c: char| {
        matches!(
            c,
            '\'' | '"' | '`' | '?' | ',' | ':' | '(' | ')' | '[' | ']'
        )
    })
}

fn morse_letter(code: &str) -> Option<char> {
    const TABLE: &[(&str, char)] = &[
        (".-", 'a'),
        ("-...", 'b'),
        ("-.-.", 'c'),
        ("-..", 'd'),
        (".", 'e'),
        ("..-.", 'f'),
        ("--.", 'g'),
        ("....", 'h'),
        ("..", 'i'),
        (".---", 'j'),
        ("-.-", 'k'),
        (".-..", 'l'),
        ("--", 'm'),
        ("-.", 'n'),
        ("---", 'o'),
        (".--.", 'p'),
        ("--.-", 'q'),
        (".-.", 'r'),
        ("...", 's'),
        ("-", 't'),
        ("..-", 'u'),
        ("...-", 'v'),
        (".--", 'w'),
        ("-..-", 'x'),
        ("-.--", 'y'),
        ("--..", 'z'),
        ("-----", '0'),
        (".----", '1'),
        ("..---", '2'),
        ("...--", '3'),
        ("....-", '4'),
        (".....", '5'),
        ("-....", '6'),
        ("--...", '7'),
        ("---..", '8'),
        ("----.", '9'),
        ("..--..", '?'),
        (".-.-.-", '.'),
        ("--..--", ','),
    ];
    TABLE.iter().find(|(k, _)| *k == code).map(|&(_, c)| c)
}

/// The longest run of Morse words (`/`, `|` or a wider space between words), decoded;
/// `None` unless it holds at least [`MIN_CODED_SYMBOLS`] letters. One pass over the text
/// split at each whitespace character (an empty piece is a second space in a row).
/// Called only for a text with a Morse pair ([`Clues::morse`]): runs of one symbol alone
/// (`. . . .`) are punctuation, not Morse.
fn morse_decode(text: &str) -> Option<String> {
    work::charge(2 * text.len());
    let mut best = String::new();
    let mut run = String::new();
    let mut letters = 0usize;
    let mut best_letters = 0usize;
    for word in text.split(char::is_whitespace) {
        let word = trim_clinging(word);
        if word.is_empty() || word == "/" || word == "|" {
            if letters > 0 && !run.ends_with(' ') {
                run.push(' ');
            }
            continue;
        }
        let coded =
            !word.is_empty() && word.len() <= 6 && word.bytes().all(|b| b == b'.' || b == b'-');
        match coded.then(|| morse_letter(word)).flatten() {
            Some(c) => {
                run.push(c);
                letters += 1;
            }
            None => {
                if letters > best_letters {
                    best_letters = letters;
                    best = std::mem::take(&mut run);
                }
                run.clear();
                letters = 0;
            }
        }
    }
    if letters > best_letters {
        best_letters = letters;
        best = run;
    }
    (best_letters >= MIN_CODED_SYMBOLS).then(|| best.trim().to_string())
}

/// Runs of space-separated 8-bit binary groups, decoded as ASCII; `None` unless a run holds
/// at least [`MIN_CODED_SYMBOLS`] bytes. Called only for a text with a group that starts
/// like a letter's ([`Clues::binary`]).
fn binary_decode(text: &str) -> Option<String> {
    work::charge(2 * text.len());
    let mut best = String::new();
    let mut run = String::new();
    for word in text.split_whitespace() {
        let word = trim_clinging(word);
        let byte = (word.len() == 8 && word.bytes().all(|b| b == b'0' || b == b'1'))
            .then(|| u8::from_str_radix(word, 2).ok())
            .flatten()
            .filter(|b| b.is_ascii() && (*b >= 0x20 || *b == b'\n'));
        match byte {
            Some(b) => run.push(char::from(b)),
            None => {
                if run.len() > best.len() {
                    best = std::mem::take(&mut run);
                }
                run.clear();
            }
        }
    }
    if run.len() > best.len() {
        best = run;
    }
    (best.len() >= MIN_CODED_SYMBOLS).then_some(best)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Runs of hex digit pairs, optionally separated by spaces, commas, colons, `\x` or `0x`.
fn hex_runs(text: &str) -> Vec<String> {
    work::charge(2 * text.len());
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut digits: Vec<u8> = Vec::new();
    let mut i = 0;
    let flush = |digits: &mut Vec<u8>, out: &mut Vec<String>| {
        if digits.len() >= MIN_HEX_DIGITS && digits.len() & 1 == 0 {
            let decoded: Vec<u8> = digits.chunks(2).map(|p| p[0] * 16 + p[1]).collect();
            if let Ok(s) = String::from_utf8(decoded) {
                out.push(s);
            }
        }
        digits.clear();
    };
    while i < bytes.len() {
        let b = bytes.get(i).copied().unwrap_or(0);
        let next = bytes.get(i + 1).copied().unwrap_or(0);
        if let Some(v) = hex_value(b) {
            // `0x` prefix: skip it rather than read the 0 as a digit.
            if b == b'0' && (next == b'x' || next == b'X') && digits.len() & 1 == 0 {
                i += 2;
                continue;
            }
            digits.push(v);
            i += 1;
        } else if b == b'\\' && (next == b'x' || next == b'X') && digits.len() & 1 == 0 {
            i += 2;
        } else if matches!(b, b' ' | b',' | b':') && digits.len() & 1 == 0 && !digits.is_empty() {
            i += 1;
        } else {
            if !digits.is_empty() {
                flush(&mut digits, &mut out);
            }
            i += 1;
        }
    }
    flush(&mut digits, &mut out);
    out
}

/// The whole text percent-decoded. Called only for a text with at least three escapes
/// ([`Clues::percent`]).
fn percent_decode(text: &str) -> Option<String> {
    // Decoding, then the comparison with the text.
    work::charge(2 * text.len());
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes.get(i).copied().unwrap_or(0);
        let hi = bytes.get(i + 1).copied().and_then(hex_value);
        let lo = bytes.get(i + 2).copied().and_then(hex_value);
        match (b, hi, lo) {
            (b'%', Some(h), Some(l)) => {
                out.push(h * 16 + l);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok().filter(|s| s != text)
}

/// Quoted pieces (`a = "ign"; b = "ore …"`, `take 'Disregard the ' and 'rules above'`),
/// joined in order, when there are at least two of them.
fn split_payload(text: &str) -> Option<String> {
    const MAX_PIECES: usize = 32;
    const MAX_PIECE: usize = 200;
    let bytes = text.as_bytes();
    let mut pieces: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < bytes.len() && pieces.len() < MAX_PIECES {
        let Some(&quote) = bytes.get(i) else { break };
        let opens =
            matches!(quote, b'"' | b'`') || (quote == b'\'' && is_opening_apostrophe(bytes, i));
        if !opens {
            i += 1;
            continue;
        }
        let start = i + 1;
        let close = bytes.get(start..).and_then(|rest| {
            rest.iter()
                .take(MAX_PIECE)
                .position(|&b| b == quote || b == b'\n')
        });
        work::charge(close.map_or(MAX_PIECE, |len| len + 1));
        match close {
            Some(len) if bytes.get(start + len) == Some(&quote) && len > 0 => {
                if let Some(piece) = text.get(start..start + len) {
                    pieces.push(piece);
                }
                i = start + len + 1;
            }
            _ => i = start,
        }
    }
    if pieces.len() < 2 {
        return None;
    }
    Some(pieces.concat())
}

/// An apostrophe opens a quote when it does not sit between two letters (`don't`).
fn is_opening_apostrophe(bytes: &[u8], i: usize) -> bool {
    let before = i.checked_sub(1).and_then(|j| bytes.get(j));
    !before.is_some_and(u8::is_ascii_alphanumeric)
}

fn rot13(c: char) -> char {
    match c {
        'a'..='m' | 'A'..='M' => char::from(c as u8 + 13),
        'n'..='z' | 'N'..='Z' => char::from(c as u8 - 13),
        _ => c,
    }
}

/// Distance (0–25) from lowercase letter `s` up to letter `w` (either case).
const fn distance(w: u8, s: u8) -> u8 {
    let d = (w | 0x20) + 26 - (s | 0x20);
    if d >= 26 {
        d - 26
    } else {
        d
    }
}

/// A word's letters as distances from its first letter, five bits each: two words are the
/// same word under some Caesar shift exactly when their shapes (and lengths) are equal.
/// `word` is ASCII letters, at most 12 of them.
const fn shape(word: &[u8]) -> u64 {
    let mut key = 0u64;
    let mut i = 1;
    while i < word.len() {
        key = key << 5 | distance(word[i], word[0]) as u64;
        i += 1;
    }
    key
}

/// Shape and first letter of each stop word of [`STOPWORDS`], by length (index =
/// length), to find the shift that turns a word into one of them.
const STOPWORD_SHAPES: [&[(u64, u8)]; 13] = {
    const fn entry(word: &[u8]) -> (u64, u8) {
        (shape(word), word[0])
    }
    [
        &[],
        &[],
        &[
            entry(b"to"),
            entry(b"of"),
            entry(b"is"),
            entry(b"in"),
            entry(b"it"),
            entry(b"be"),
            entry(b"me"),
        ],
        &[
            entry(b"the"),
            entry(b"and"),
            entry(b"you"),
            entry(b"all"),
            entry(b"are"),
            entry(b"for"),
            entry(b"not"),
            entry(b"how"),
        ],
        &[
            entry(b"that"),
            entry(b"your"),
            entry(b"with"),
            entry(b"this"),
            entry(b"what"),
        ],
        &[],
        &[entry(b"ignore")],
        &[],
        &[entry(b"previous")],
        &[],
        &[],
        &[],
        &[entry(b"instructions")],
    ]
};

/// Fewest stop words a sentence must read as under one shift to be taken as shifted.
const MIN_SHIFTED_STOPWORDS: usize = 3;

/// Most stop words a shifted sentence may have as written (a coincidence or two).
const MAX_PLAIN_STOPWORDS: usize = 1;

/// Sentences that read as English under one Caesar shift (at least
/// [`MIN_SHIFTED_STOPWORDS`] stop words of three letters or more under that shift, one in
/// five of its words, and at most [`MAX_PLAIN_STOPWORDS`] as written), shifted back and
/// joined, the first ones that fit in `room` bytes (so a long text of shifted filler keeps
/// its start); `None` when there are none. Shift 13 is left out when `skip_rot13` (the
/// whole text was already read as ROT13). The sentences come from [`WordScan::of`].
fn caesar_sentences(
    text: &str,
    candidates: &[ShiftedCandidate],
    skip_rot13: bool,
    room: usize,
) -> Option<String> {
    let mut out = String::new();
    for candidate in candidates {
        // Terminators are ASCII: the range's ends are character boundaries.
        let (Some(shift), Some(sentence)) = (
            candidate.counts.shift(skip_rot13),
            text.get(candidate.sentence.clone()),
        ) else {
            continue;
        };
        let sentence = sentence.trim();
        if out.len() + sentence.len() + 1 > room {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        work::charge(sentence.len());
        out.extend(sentence.chars().map(|c| shift_back(c, shift)));
    }
    (!out.is_empty()).then_some(out)
}

/// A sentence (its byte range, terminator included) that may read as English under a
/// Caesar shift, with its stop-word counts.
struct ShiftedCandidate {
    sentence: std::ops::Range<usize>,
    counts: ShiftCounts,
}

/// What the readings of a text as ROT13, backwards or Caesar-shifted need from its ASCII
/// words (runs of ASCII letters), from one pass over its bytes: the stop words as
/// written, after ROT13 and backwards, and the sentences that may be shifted. Prose costs
/// a letter test a byte and a table probe a word of a stop word's length; a sentence's
/// words are compared with the stop words under every shift only when it ends with at
/// most [`MAX_PLAIN_STOPWORDS`] plain stop words, which few English sentences do.
struct WordScan {
    plain: usize,
    rotated: usize,
    reversed: usize,
    /// Sentences with at most [`MAX_PLAIN_STOPWORDS`] plain stop words and at least
    /// [`MIN_SHIFTED_STOPWORDS`] shifted ones, in order: any other cannot be shifted.
    shifted: Vec<ShiftedCandidate>,
}

impl WordScan {
    fn of(text: &str) -> WordScan {
        // The stop-word readings, and the Caesar search, which reads a sentence's bytes
        // again when it may be shifted.
        work::charge(6 * text.len());
        let bytes = text.as_bytes();
        let mut scan = WordScan {
            plain: 0,
            rotated: 0,
            reversed: 0,
            shifted: Vec::new(),
        };
        // The sentence's plain stop words, and its words that may be a stop word of
        // three letters or more under some shift.
        let (mut sentence_plain, mut sentence_long) = (0usize, 0usize);
        let (mut word_start, mut sentence_start) = (0usize, 0usize);
        for (i, &b) in bytes.iter().enumerate() {
            // Bytes of multibyte characters are not ASCII letters either: they end words
            // as the characters would.
            if b.is_ascii_alphabetic() {
                continue;
            }
            if i > word_start {
                let (plain, long) = scan.add_word(bytes.get(word_start..i).unwrap_or_default());
                sentence_plain += plain;
                sentence_long += long;
            }
            word_start = i + 1;
            if matches!(b, b'.' | b'!' | b'?' | b';' | b':' | b'\n') {
                let sentence = sentence_start..i + 1;
                scan.end_sentence(bytes, sentence, sentence_plain, sentence_long);
                sentence_start = i + 1;
                (sentence_plain, sentence_long) = (0, 0);
            }
        }
        if bytes.len() > word_start {
            let (plain, long) = scan.add_word(bytes.get(word_start..).unwrap_or_default());
            sentence_plain += plain;
            sentence_long += long;
        }
        if bytes.len() > sentence_start {
            let sentence = sentence_start..bytes.len();
            scan.end_sentence(bytes, sentence, sentence_plain, sentence_long);
        }
        scan
    }

    /// Counts one word's stop-word readings; returns whether it is a stop word as written
    /// (1 or 0), and whether it has the length of a stop word of three letters or more.
    fn add_word(&mut self, word: &[u8]) -> (usize, usize) {
        // Only lengths a stop word has can read as one.
        if !matches!(word.len(), 2..=4 | 6 | 8 | 12) {
            return (0, 0);
        }
        let views = STOPWORD_VIEWS.views(pack_lowercase(word));
        let plain = usize::from(views & PLAIN != 0);
        self.plain += plain;
        self.rotated += usize::from(views & ROTATED != 0);
        self.reversed += usize::from(views & REVERSED != 0);
        (plain, usize::from(word.len() > 2))
    }

    /// Ends the sentence `range` of `bytes`, which has `plain` stop words as written and
    /// `long` words of the length of a stop word of three letters or more: one with few
    /// enough plain ones and enough long ones has its words counted under every shift. A
    /// shift needs [`MIN_SHIFTED_STOPWORDS`] words, each counted once under it.
    fn end_sentence(
        &mut self,
        bytes: &[u8],
        range: std::ops::Range<usize>,
        plain: usize,
        long: usize,
    ) {
        if plain > MAX_PLAIN_STOPWORDS || long < MIN_SHIFTED_STOPWORDS {
            return;
        }
        let mut counts = ShiftCounts::default();
        let sentence = bytes.get(range.clone()).unwrap_or_default();
        for word in sentence.split(|b| !b.is_ascii_alphabetic()) {
            if !word.is_empty() {
                counts.add_word(word);
            }
        }
        if counts.shifted >= MIN_SHIFTED_STOPWORDS {
            self.shifted.push(ShiftedCandidate {
                sentence: range,
                counts,
            });
        }
    }
}

/// Stop words of one sentence as written and under each Caesar shift.
#[derive(Default)]
struct ShiftCounts {
    per_shift: [usize; 26],
    /// The sum of `per_shift`.
    shifted: usize,
    plain: usize,
    words: usize,
}

impl ShiftCounts {
    /// Counts one word (ASCII letters, not empty).
    fn add_word(&mut self, word: &[u8]) {
        self.words += 1;
        let (Some(candidates), Some(&first)) = (STOPWORD_SHAPES.get(word.len()), word.first())
        else {
            return;
        };
        if candidates.is_empty() {
            return;
        }
        let key = shape(word);
        let mut seen = 0u32;
        for &(stop_key, stop_first) in candidates.iter() {
            if stop_key != key {
                continue;
            }
            let shift = distance(first, stop_first);
            if seen & (1 << shift) != 0 {
                continue;
            }
            seen |= 1 << shift;
            if shift == 0 {
                self.plain += 1;
            } else if word.len() >= 3 {
                // Two-letter words fit some shift of a two-letter stop word too often.
                if let Some(n) = self.per_shift.get_mut(usize::from(shift)) {
                    *n = n.saturating_add(1);
                    self.shifted = self.shifted.saturating_add(1);
                }
            }
        }
    }

    /// The shift (1–25) under which the sentence reads as English, if one does.
    fn shift(&self, skip_rot13: bool) -> Option<u8> {
        // Fewer shifted stop words in all than one shift needs (most sentences, and
        // every piece of a text cut into one-byte sentences): no shift to look for.
        if self.plain > MAX_PLAIN_STOPWORDS || self.shifted < MIN_SHIFTED_STOPWORDS {
            return None;
        }
        let (shift, &count) = self
            .per_shift
            .iter()
            .enumerate()
            .filter(|&(k, _)| !(skip_rot13 && k == 13))
            .max_by_key(|&(_, n)| *n)?;
        let shifted = count >= MIN_SHIFTED_STOPWORDS && count * 5 >= self.words;
        shifted.then_some(shift as u8)
    }
}

/// `c` shifted back by `shift` letters (ASCII letters only).
fn shift_back(c: char, shift: u8) -> char {
    let base = match c {
        'a'..='z' => b'a',
        'A'..='Z' => b'A',
        _ => return c,
    };
    char::from((c as u8 - base + 26 - shift % 26) % 26 + base)
}

/// Readings of a word under which it is a stop word ([`StopwordViews`]).
const PLAIN: u8 = 1;
const ROTATED: u8 = 2;
const REVERSED: u8 = 4;

/// Common English words (and three an override uses), to tell text from ROT13 or
/// reversed text by which of the three readings has more of them.
const STOPWORDS: [&[u8]; 23] = [
    b"the",
    b"and",
    b"you",
    b"to",
    b"of",
    b"is",
    b"in",
    b"that",
    b"your",
    b"all",
    b"are",
    b"for",
    b"with",
    b"this",
    b"it",
    b"be",
    b"not",
    b"me",
    b"what",
    b"how",
    b"previous",
    b"instructions",
    b"ignore",
];

/// An ASCII word of at most 16 letters, lowercased, as one number (its first byte
/// highest): two words are equal exactly when their numbers are, whatever their lengths.
const fn pack_lowercase(word: &[u8]) -> u128 {
    let mut packed = 0u128;
    let mut i = 0;
    while i < word.len() && i < 16 {
        packed = packed << 8 | (word[i] | 0x20) as u128;
        i += 1;
    }
    packed
}

/// Every word that is a stop word as written, after ROT13 or backwards, with the readings
/// that make it one: an open-addressed table built at compile time, so a word costs one
/// hash and a probe or two instead of a comparison with each stop word in each reading.
struct StopwordViews {
    slots: [(u128, u8); STOPWORD_SLOTS],
}

const STOPWORD_SLOTS: usize = 128;

const fn stopword_slot(packed: u128) -> usize {
    let mixed = (packed as u64 ^ (packed >> 64) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed >> 57) as usize
}

impl StopwordViews {
    const fn build() -> StopwordViews {
        let mut table = StopwordViews {
            slots: [(0, 0); STOPWORD_SLOTS],
        };
        let mut w = 0;
        while w < STOPWORDS.len() {
            let word = STOPWORDS[w];
            let mut rotated = [0u8; 16];
            let mut reversed = [0u8; 16];
            let mut i = 0;
            while i < word.len() {
                rotated[i] = rot13_byte(word[i]);
                reversed[word.len() - 1 - i] = word[i];
                i += 1;
            }
            let (rotated, _) = rotated.split_at(word.len());
            let (reversed, _) = reversed.split_at(word.len());
            table.insert(pack_lowercase(word), PLAIN);
            // `rot13(x)` is a stop word exactly when `x` is a stop word's ROT13.
            table.insert(pack_lowercase(rotated), ROTATED);
            table.insert(pack_lowercase(reversed), REVERSED);
            w += 1;
        }
        table
    }

    const fn insert(&mut self, packed: u128, view: u8) {
        let mut slot = stopword_slot(packed);
        loop {
            let (key, views) = self.slots[slot];
            if key == packed || views == 0 {
                self.slots[slot] = (packed, views | view);
                return;
            }
            slot = (slot + 1) % STOPWORD_SLOTS;
        }
    }

    /// The readings under which the word packed as `packed` is a stop word (0: none).
    fn views(&self, packed: u128) -> u8 {
        let mut slot = stopword_slot(packed);
        // The table is at most half full: a probe ends at an empty slot within a few.
        for _ in 0..STOPWORD_SLOTS {
            let Some(&(key, views)) = self.slots.get(slot) else {
                return 0;
            };
            if views == 0 || key == packed {
                return if key == packed { views } else { 0 };
            }
            slot = (slot + 1) % STOPWORD_SLOTS;
        }
        0
    }
}

static STOPWORD_VIEWS: StopwordViews = StopwordViews::build();

const fn rot13_byte(b: u8) -> u8 {
    match b {
        b'a'..=b'm' | b'A'..=b'M' => b + 13,
        b'n'..=b'z' | b'N'..=b'Z' => b - 13,
        _ => b,
    }
}

#[cfg(test)]
mod tests;
