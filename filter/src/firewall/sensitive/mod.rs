//! PII and secret detection on raw text (advanced tier).
//!
//! The text is read as a model reads it: fullwidth, mathematical and circled forms as
//! ASCII, other scripts' digits as digits, invisible characters and combining marks left
//! out (a folded copy, scanned, each finding mapped back to the characters as written).
//! Digit-based values (payment cards, phone numbers, US SSNs, IPv4) come from one
//! hand-written scan over number-like runs, then each candidate is validated (issuer
//! range, length and Luhn digit of every published card network; SSA rules for SSNs;
//! octet ranges for IPv4), so a 13-digit millisecond timestamp or an order number is not
//! a card. IBANs are read to their registry country's length and mod-97 checked. E-mail,
//! IPv6, URL passwords and credentials assigned to key/secret/password names are
//! hand-scanned too, and so are provider keys with a fixed prefix (AWS, GCP, GitHub,
//! GitLab, OpenAI, Anthropic, Stripe, Slack, Hugging Face) and JWTs: a prefix search,
//! then the key's character set and length.
//! Every scan is linear in the text; overlaps are resolved in favour of the earlier, then
//! longer, value.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use crate::work;

mod secrets;
mod tail;
mod values;

use secrets::*;
pub(super) use tail::growing_tail;
use values::*;

/// A kind of sensitive value, and the label of its placeholder (`[EMAIL_1]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SensitiveKind {
    Email,
    Phone,
    CreditCard,
    Iban,
    UsSsn,
    IpAddress,
    AwsAccessKey,
    GcpApiKey,
    GithubToken,
    GitlabToken,
    OpenaiKey,
    AnthropicKey,
    StripeKey,
    SlackToken,
    HuggingfaceToken,
    PrivateKey,
    Jwt,
    /// A high-entropy value assigned to a key/secret/password/token name.
    Credential,
}

impl SensitiveKind {
    /// Placeholder label: `EMAIL`, `PHONE`, `CREDIT_CARD`, … .
    pub fn label(self) -> &'static str {
        match self {
            SensitiveKind::Email => "EMAIL",
            SensitiveKind::Phone => "PHONE",
            SensitiveKind::CreditCard => "CREDIT_CARD",
            SensitiveKind::Iban => "IBAN",
            SensitiveKind::UsSsn => "US_SSN",
            SensitiveKind::IpAddress => "IP_ADDRESS",
            SensitiveKind::AwsAccessKey => "AWS_ACCESS_KEY",
            SensitiveKind::GcpApiKey => "GCP_API_KEY",
            SensitiveKind::GithubToken => "GITHUB_TOKEN",
            SensitiveKind::GitlabToken => "GITLAB_TOKEN",
            SensitiveKind::OpenaiKey => "OPENAI_KEY",
            SensitiveKind::AnthropicKey => "ANTHROPIC_KEY",
            SensitiveKind::StripeKey => "STRIPE_KEY",
            SensitiveKind::SlackToken => "SLACK_TOKEN",
            SensitiveKind::HuggingfaceToken => "HUGGINGFACE_TOKEN",
            SensitiveKind::PrivateKey => "PRIVATE_KEY",
            SensitiveKind::Jwt => "JWT",
            SensitiveKind::Credential => "SECRET",
        }
    }

    /// Secrets (credentials) rather than personal data.
    pub fn is_secret(self) -> bool {
        !matches!(
            self,
            SensitiveKind::Email
                | SensitiveKind::Phone
                | SensitiveKind::CreditCard
                | SensitiveKind::Iban
                | SensitiveKind::UsSsn
                | SensitiveKind::IpAddress
        )
    }
}

/// One sensitive value: byte range in the scanned text and its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    pub kind: SensitiveKind,
    /// First byte of the value.
    pub start: usize,
    /// One past its last byte.
    pub end: usize,
}

/// Compiled detectors.
#[derive(Debug)]
pub(super) struct SensitiveScanner {
    pii: bool,
    secrets: bool,
}

/// Characters a key body may contain.
#[derive(Debug, Clone, Copy)]
enum Body {
    /// `A-Z 0-9`.
    UpperDigits,
    /// `A-Z a-z 0-9`.
    Alnum,
    /// `A-Z a-z 0-9 _`.
    AlnumUnderscore,
    /// `A-Z a-z 0-9 _ -`.
    UrlSafe,
    /// `A-Z a-z 0-9 -`.
    AlnumDash,
    /// `A-Z a-z 0-9 /`.
    AlnumSlash,
}

impl Body {
    fn allows(self, b: u8) -> bool {
        match self {
            Body::UpperDigits => b.is_ascii_uppercase() || b.is_ascii_digit(),
            Body::Alnum => b.is_ascii_alphanumeric(),
            Body::AlnumUnderscore => b.is_ascii_alphanumeric() || b == b'_',
            Body::UrlSafe => b.is_ascii_alphanumeric() || b == b'_' || b == b'-',
            Body::AlnumDash => b.is_ascii_alphanumeric() || b == b'-',
            Body::AlnumSlash => b.is_ascii_alphanumeric() || b == b'/',
        }
    }
}

/// A provider key: a fixed prefix at a word start, then `min..=max` body characters.
/// With `exact`, the body must end there (`AKIA` + exactly 16).
struct KeyShape {
    kind: SensitiveKind,
    prefix: &'static str,
    body: Body,
    min: usize,
    max: usize,
    exact: bool,
}

const fn shape(
    kind: SensitiveKind,
    prefix: &'static str,
    body: Body,
    min: usize,
    max: usize,
) -> KeyShape {
    KeyShape {
        kind,
        prefix,
        body,
        min,
        max,
        exact: false,
    }
}

/// Longer prefixes first where one prefix extends another (`sk-ant-` before `sk-`).
const KEY_SHAPES: &[KeyShape] = &[
    KeyShape {
        exact: true,
        ..shape(
            SensitiveKind::AwsAccessKey,
            "AKIA",
            Body::UpperDigits,
            16,
            16,
        )
    },
    KeyShape {
        exact: true,
        ..shape(
            SensitiveKind::AwsAccessKey,
            "ASIA",
            Body::UpperDigits,
            16,
            16,
        )
    },
    KeyShape {
        exact: true,
        ..shape(
            SensitiveKind::AwsAccessKey,
            "ABIA",
            Body::UpperDigits,
            16,
            16,
        )
    },
    KeyShape {
        exact: true,
        ..shape(
            SensitiveKind::AwsAccessKey,
            "ACCA",
            Body::UpperDigits,
            16,
            16,
        )
    },
    shape(SensitiveKind::GcpApiKey, "AIza", Body::UrlSafe, 35, 35),
    shape(
        SensitiveKind::GithubToken,
        "github_pat_",
        Body::AlnumUnderscore,
        22,
        255,
    ),
    shape(SensitiveKind::GithubToken, "ghp_", Body::Alnum, 36, 255),
    shape(SensitiveKind::GithubToken, "gho_", Body::Alnum, 36, 255),
    shape(SensitiveKind::GithubToken, "ghu_", Body::Alnum, 36, 255),
    shape(SensitiveKind::GithubToken, "ghs_", Body::Alnum, 36, 255),
    shape(SensitiveKind::GithubToken, "ghr_", Body::Alnum, 36, 255),
    shape(SensitiveKind::GitlabToken, "glpat-", Body::UrlSafe, 20, 255),
    shape(
        SensitiveKind::AnthropicKey,
        "sk-ant-",
        Body::UrlSafe,
        24,
        255,
    ),
    shape(SensitiveKind::OpenaiKey, "sk-", Body::UrlSafe, 20, 255),
    shape(SensitiveKind::StripeKey, "sk_live_", Body::Alnum, 16, 255),
    shape(SensitiveKind::StripeKey, "sk_test_", Body::Alnum, 16, 255),
    shape(SensitiveKind::StripeKey, "rk_live_", Body::Alnum, 16, 255),
    shape(SensitiveKind::StripeKey, "rk_test_", Body::Alnum, 16, 255),
    shape(SensitiveKind::StripeKey, "whsec_", Body::Alnum, 24, 255),
    shape(SensitiveKind::SlackToken, "xoxa-", Body::AlnumDash, 10, 255),
    shape(SensitiveKind::SlackToken, "xoxb-", Body::AlnumDash, 10, 255),
    shape(SensitiveKind::SlackToken, "xoxp-", Body::AlnumDash, 10, 255),
    shape(SensitiveKind::SlackToken, "xoxo-", Body::AlnumDash, 10, 255),
    shape(SensitiveKind::SlackToken, "xoxs-", Body::AlnumDash, 10, 255),
    shape(SensitiveKind::SlackToken, "xoxr-", Body::AlnumDash, 10, 255),
    shape(
        SensitiveKind::SlackToken,
        "https://hooks.slack.com/services/",
        Body::AlnumSlash,
        20,
        255,
    ),
    shape(SensitiveKind::HuggingfaceToken, "hf_", Body::Alnum, 30, 255),
];

/// Byte classes, looked up rather than computed: the scanners test every byte.
const WORD: u8 = 1;
const IDENT: u8 = 2;

const fn byte_classes() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || c == b'_' {
            table[b] |= WORD | IDENT;
        } else if c == b'-' {
            table[b] |= IDENT;
        }
        b += 1;
    }
    table
}

static BYTE_CLASSES: [u8; 256] = byte_classes();

/// `A-Z a-z 0-9 _`.
fn is_word_byte(b: u8) -> bool {
    BYTE_CLASSES[usize::from(b)] & WORD != 0
}

/// For each byte value, the [`KEY_SHAPES`] whose prefix starts with it (bit `k` for
/// shape `k`, in shape order).
static SHAPES_BY_FIRST_BYTE: [u32; 256] = shapes_by_first_byte();

const fn shapes_by_first_byte() -> [u32; 256] {
    assert!(KEY_SHAPES.len() <= 32, "one bit per key shape");
    let mut table = [0u32; 256];
    let mut k = 0;
    while k < KEY_SHAPES.len() {
        let first = KEY_SHAPES[k].prefix.as_bytes()[0];
        table[first as usize] |= 1 << k;
        k += 1;
    }
    table
}

/// Provider keys by prefix, in one pass over the text: only a word start can begin a key,
/// and only the shapes whose prefix starts with that byte are tried there. Each key is
/// found once per shape: after a key, that shape resumes past its end (a key matching
/// two shapes, `sk-ant-` and `sk-`, is settled by `resolve_overlaps`). Linear.
fn provider_keys(text: &str, found: &mut Vec<Finding>) {
    work::charge(text.len());
    let bytes = text.as_bytes();
    let mut resume = [0usize; KEY_SHAPES.len()];
    let mut prev_is_word = false;
    for (start, &b) in bytes.iter().enumerate() {
        let at_word_start = !prev_is_word;
        prev_is_word = is_word_byte(b);
        if !at_word_start {
            continue;
        }
        let mut shapes = SHAPES_BY_FIRST_BYTE[usize::from(b)];
        while shapes != 0 {
            let k = shapes.trailing_zeros() as usize;
            shapes &= shapes - 1;
            let (Some(shape), Some(resume_at)) = (KEY_SHAPES.get(k), resume.get_mut(k)) else {
                continue;
            };
            let prefix = shape.prefix.as_bytes();
            if start < *resume_at
                || bytes.get(start + 1) != prefix.get(1)
                || !bytes
                    .get(start..)
                    .is_some_and(|rest| rest.starts_with(prefix))
            {
                continue;
            }
            let body_start = start + shape.prefix.len();
            let mut end = body_start;
            while end - body_start < shape.max
                && bytes.get(end).is_some_and(|&b| shape.body.allows(b))
            {
                end += 1;
            }
            work::charge(end - start);
            let len = end - body_start;
            let ends_cleanly = !shape.exact || !bytes.get(end).is_some_and(|&b| is_word_byte(b));
            if len >= shape.min && ends_cleanly {
                found.push(Finding {
                    kind: shape.kind,
                    start,
                    end,
                });
                *resume_at = end;
            }
        }
    }
}

/// Where `needle` (short, a constant) first occurs in `bytes` at or after `from`: a scan
/// for its byte at `anchor` (pick one that is rare in prose), then a comparison. Cheaper
/// than `str::find`'s two-way searcher for these needles, in Wasm above all.
pub(super) fn find_from(bytes: &[u8], from: usize, needle: &[u8], anchor: usize) -> Option<usize> {
    let &key = needle.get(anchor)?;
    let mut at = from + anchor;
    loop {
        let rest = bytes.get(at..)?;
        let Some(skip) = rest.iter().position(|&b| b == key) else {
            work::charge(rest.len());
            return None;
        };
        work::charge(skip + needle.len());
        at += skip;
        let start = at - anchor;
        if bytes.get(start..)?.starts_with(needle) {
            return Some(start);
        }
        at += 1;
    }
}

/// `eyJ…` `.` `eyJ…` `.` signature, each part base64url with at least 8 characters.
fn jwts(text: &str, found: &mut Vec<Finding>) {
    let bytes = text.as_bytes();
    let part = |at: usize| {
        let mut end = at;
        while bytes.get(end).is_some_and(|&b| Body::UrlSafe.allows(b)) {
            end += 1;
        }
        work::charge(end - at + 1);
        end
    };
    let mut from = 0;
    while let Some(start) = find_from(bytes, from, b"eyJ", 2) {
        from = start + 3;
        if start > 0 && bytes.get(start - 1).is_some_and(|&b| is_word_byte(b)) {
            continue;
        }
        let head_end = part(start);
        if head_end - start < 11 || bytes.get(head_end) != Some(&b'.') {
            from = head_end.max(from);
            continue;
        }
        let claims = head_end + 1;
        if !bytes.get(claims..).is_some_and(|r| r.starts_with(b"eyJ")) {
            continue;
        }
        let claims_end = part(claims);
        if claims_end - claims < 11 || bytes.get(claims_end) != Some(&b'.') {
            continue;
        }
        let sig_end = part(claims_end + 1);
        if sig_end - (claims_end + 1) < 8 {
            continue;
        }
        found.push(Finding {
            kind: SensitiveKind::Jwt,
            start,
            end: sig_end,
        });
        from = sig_end;
    }
}

impl SensitiveScanner {
    pub(super) fn compile(pii: bool, secrets: bool) -> Result<SensitiveScanner, String> {
        Ok(SensitiveScanner { pii, secrets })
    }

    /// Non-overlapping findings in `text`, in order. Values written in fullwidth forms,
    /// other scripts' digits or with invisible characters between their characters
    /// (`ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ`, `4111\u{200B}1111…`) are found as the model
    /// reads them; each finding covers the characters as written.
    pub(super) fn scan(&self, text: &str) -> Vec<Finding> {
        match FoldedText::of(text) {
            Some(folded) => folded.locate(self.scan_folded(&folded.text)),
            None => self.scan_folded(text),
        }
    }

    /// Non-overlapping findings in `text`, already folded (ASCII forms, no invisible
    /// characters), in order.
    fn scan_folded(&self, text: &str) -> Vec<Finding> {
        let mut found = Vec::new();
        let clues = Clues::of(text.as_bytes());
        if self.secrets {
            if clues.jwt {
                jwts(text, &mut found);
            }
            if clues.long_key_run {
                provider_keys(text, &mut found);
            }
            if clues.pem {
                private_keys(text, &mut found);
            }
            if clues.assignment {
                credentials(text, &mut found);
                url_passwords(text, &mut found);
            }
        }
        if self.pii {
            if clues.at {
                emails(text, &mut found);
            }
            if clues.digit {
                number_runs(text, &mut found);
                ibans(text, &mut found);
            }
            if clues.colon {
                ipv6(text, &mut found);
            }
        }
        resolve_overlaps(found)
    }
}

/// How the scanners read one character of a text.
enum Fold {
    /// As written.
    Keep,
    /// As this ASCII character (a fullwidth form, another script's digit, a space or a
    /// hyphen of another width).
    Ascii(u8),
    /// Not at all: an invisible character a value can be split with.
    Drop,
}

fn fold(c: char) -> Fold {
    let cp = c as u32;
    let digit = |zero: u32| Fold::Ascii(b'0' + (cp - zero) as u8);
    match cp {
        // Fullwidth ASCII: `＠` `．` `ｊ` `４`.
        0xFF01..=0xFF5E => u8::try_from(cp - 0xFEE0).map_or(Fold::Keep, Fold::Ascii),
        0x200B..=0x200F | 0x2060..=0x2064 | 0xFEFF | 0x00AD | 0x034F | 0x180E => Fold::Drop,
        0x202A..=0x202E | 0x2066..=0x2069 | 0xFE00..=0xFE0F | 0xE0000..=0xE007F => Fold::Drop,
        // Combining marks over a value's characters (`4\u{0301}111`).
        0x0300..=0x036F | 0x20D0..=0x20FF | 0xFE20..=0xFE2F => Fold::Drop,
        0x00A0 | 0x2000..=0x200A | 0x202F | 0x205F | 0x3000 => Fold::Ascii(b' '),
        0x2010..=0x2015 | 0x2212 | 0xFE58 | 0xFE63 => Fold::Ascii(b'-'),
        0xFE6B => Fold::Ascii(b'@'),
        0xFE52 => Fold::Ascii(b'.'),
        // Mathematical letters (`𝐣𝐨𝐡𝐧`, `𝔸𝕂𝕀𝔸`): thirteen styles of A–Z then a–z; the
        // gaps in the block are unassigned.
        0x1D400..=0x1D6A3 => {
            let k = ((cp - 0x1D400) % 52) as u8;
            Fold::Ascii(if k < 26 { b'A' + k } else { b'a' + k - 26 })
        }
        // The mathematical letters that live in Letterlike Symbols (the block's gaps).
        0x2102 | 0x212D => Fold::Ascii(b'C'),
        0x210B..=0x210D => Fold::Ascii(b'H'),
        0x2110 | 0x2111 => Fold::Ascii(b'I'),
        0x2112 => Fold::Ascii(b'L'),
        0x2115 => Fold::Ascii(b'N'),
        0x2119 => Fold::Ascii(b'P'),
        0x211A => Fold::Ascii(b'Q'),
        0x211B..=0x211D => Fold::Ascii(b'R'),
        0x2124 | 0x2128 => Fold::Ascii(b'Z'),
        0x212C => Fold::Ascii(b'B'),
        0x2130 => Fold::Ascii(b'E'),
        0x2131 => Fold::Ascii(b'F'),
        0x2133 => Fold::Ascii(b'M'),
        0x210A => Fold::Ascii(b'g'),
        0x210E => Fold::Ascii(b'h'),
        0x2113 => Fold::Ascii(b'l'),
        0x212F => Fold::Ascii(b'e'),
        0x2134 => Fold::Ascii(b'o'),
        // Circled letters (`Ⓐ`, `ⓐ`).
        0x24B6..=0x24CF => Fold::Ascii(b'A' + (cp - 0x24B6) as u8),
        0x24D0..=0x24E9 => Fold::Ascii(b'a' + (cp - 0x24D0) as u8),
        // Decimal digits of other scripts and the mathematical ones.
        0x0660..=0x0669 => digit(0x0660),
        0x06F0..=0x06F9 => digit(0x06F0),
        0x0966..=0x096F => digit(0x0966),
        0x09E6..=0x09EF => digit(0x09E6),
        0x1D7CE..=0x1D7FF => digit(0x1D7CE + (cp - 0x1D7CE) / 10 * 10),
        _ => Fold::Keep,
    }
}

/// A text as the scanners read it ([`fold`]), with where each byte came from.
struct FoldedText {
    text: String,
    /// For each byte of `text`: the source range of the character it comes from.
    from: Vec<(usize, usize)>,
}

impl FoldedText {
    /// The folded text, or `None` when folding changes nothing (all ASCII text, most
    /// other text).
    fn of(source: &str) -> Option<FoldedText> {
        // An ASCII character is kept as written ([`fold`] changes none), so only the
        // others are looked up.
        if source.is_ascii()
            || source
                .chars()
                .all(|c| c.is_ascii() || matches!(fold(c), Fold::Keep))
        {
            return None;
        }
        let mut text = String::with_capacity(source.len());
        let mut from = Vec::with_capacity(source.len());
        for (at, c) in source.char_indices() {
            if c.is_ascii() {
                text.push(c);
                from.push((at, at + 1));
                continue;
            }
            let range = (at, at + c.len_utf8());
            match fold(c) {
                Fold::Keep => text.push(c),
                Fold::Ascii(b) => text.push(char::from(b)),
                Fold::Drop => continue,
            }
            from.resize(text.len(), range);
        }
        Some(FoldedText { text, from })
    }

    /// `findings` in the folded text, located in the source (invisible characters
    /// inside a value are part of it).
    fn locate(&self, findings: Vec<Finding>) -> Vec<Finding> {
        findings
            .into_iter()
            .filter_map(|f| {
                let (start, _) = *self.from.get(f.start)?;
                let (_, end) = *self.from.get(f.end.checked_sub(1)?)?;
                Some(Finding { start, end, ..f })
            })
            .collect()
    }
}

/// `value` as the scanners read it: fullwidth forms and other digits as ASCII, invisible
/// characters left out (so one value written two ways is one value).
pub(super) fn folded(value: &str) -> std::borrow::Cow<'_, str> {
    match FoldedText::of(value) {
        Some(f) => std::borrow::Cow::Owned(f.text),
        None => std::borrow::Cow::Borrowed(value),
    }
}

/// Which detectors can find anything in a text, from one pass over its bytes. Each
/// field is a necessary condition of its detectors' findings, so a detector left out
/// could not have found anything; most prose sets few of them.
#[derive(Default)]
struct Clues {
    /// `eyJ` (every JWT starts so).
    jwt: bool,
    /// `-----B` (a PEM header).
    pem: bool,
    /// `:`, `=` or `--` (every credential assignment, and command-line flags).
    assignment: bool,
    /// `@` (every e-mail).
    at: bool,
    /// A digit (every number, card, phone, SSN, IBAN).
    digit: bool,
    /// `:` (every IPv6 address).
    colon: bool,
    /// A run of at least [`MIN_KEY_LEN`] bytes a provider key is made of.
    long_key_run: bool,
}

impl Clues {
    /// Which clue bytes occur: one load and one `or` per byte. The clues that need
    /// context (`eyJ`, `-----B`, `--`) are searched for only when their key byte occurs,
    /// and a long key run by probing ([`has_key_run`]).
    fn of(bytes: &[u8]) -> Clues {
        work::charge(bytes.len());
        let seen = bytes
            .iter()
            .fold(0u8, |seen, &b| seen | CLUE_CLASSES[usize::from(b)]);
        let double_dash = seen & DASH != 0 && find_from(bytes, 0, b"--", 1).is_some();
        Clues {
            jwt: seen & CAPITAL_J != 0 && find_from(bytes, 0, b"eyJ", 2).is_some(),
            pem: seen & CAPITAL_B != 0 && find_from(bytes, 0, b"-----B", 5).is_some(),
            assignment: seen & (COLON | EQUALS) != 0 || double_dash,
            at: seen & AT != 0,
            digit: seen & DIGIT != 0,
            colon: seen & COLON != 0,
            long_key_run: has_key_run(bytes),
        }
    }
}

/// Whether `bytes` hold a run of at least [`MIN_KEY_LEN`] key bytes. The last byte of
/// the run that would start at `start` is read first, then back towards `start`: prose
/// breaks every run within a word or two, so most bytes are never read, and none twice
/// (`start..verified` are known key bytes).
fn has_key_run(bytes: &[u8]) -> bool {
    let is_key = |b: &u8| CLUE_CLASSES[usize::from(*b)] & KEY_BYTE != 0;
    let (mut start, mut verified) = (0usize, 0usize);
    while let Some(unread) = bytes.get(verified..start + MIN_KEY_LEN) {
        match unread.iter().rposition(|b| !is_key(b)) {
            None => return true,
            Some(k) => {
                let breaks = verified + k;
                verified = start + MIN_KEY_LEN;
                start = breaks + 1;
            }
        }
    }
    false
}

/// Clue bits of a byte ([`Clues::of`]).
const KEY_BYTE: u8 = 1;
const DIGIT: u8 = 1 << 1;
const COLON: u8 = 1 << 2;
const EQUALS: u8 = 1 << 3;
const AT: u8 = 1 << 4;
const CAPITAL_J: u8 = 1 << 5;
const CAPITAL_B: u8 = 1 << 6;
const DASH: u8 = 1 << 7;

static CLUE_CLASSES: [u8; 256] = clue_classes();

/// Each byte's clue bits; a key byte is one a provider key can hold (its prefix's and
/// its body's).
const fn clue_classes() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'/' {
            table[b] |= KEY_BYTE;
        }
        table[b] |= match c {
            b'0'..=b'9' => DIGIT,
            b':' => COLON,
            b'=' => EQUALS,
            b'@' => AT,
            b'J' => CAPITAL_J,
            b'B' => CAPITAL_B,
            b'-' => DASH,
            _ => 0,
        };
        b += 1;
    }
    let mut k = 0;
    while k < KEY_SHAPES.len() {
        let prefix = KEY_SHAPES[k].prefix.as_bytes();
        let mut j = 0;
        while j < prefix.len() {
            table[prefix[j] as usize] |= KEY_BYTE;
            j += 1;
        }
        k += 1;
    }
    table
}

/// The shortest provider key: prefix and fewest body characters.
const MIN_KEY_LEN: usize = {
    let mut shortest = usize::MAX;
    let mut k = 0;
    while k < KEY_SHAPES.len() {
        let len = KEY_SHAPES[k].prefix.len() + KEY_SHAPES[k].min;
        if len < shortest {
            shortest = len;
        }
        k += 1;
    }
    shortest
};

fn resolve_overlaps(mut found: Vec<Finding>) -> Vec<Finding> {
    found.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut out: Vec<Finding> = Vec::with_capacity(found.len());
    for f in found {
        match out.last() {
            Some(last) if f.start < last.end => {}
            _ => out.push(f),
        }
    }
    out
}

#[cfg(test)]
mod differential;
#[cfg(test)]
mod tests;
