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
        if source.is_ascii() || source.chars().all(|c| matches!(fold(c), Fold::Keep)) {
            return None;
        }
        let mut text = String::with_capacity(source.len());
        let mut from = Vec::with_capacity(source.len());
        for (at, c) in source.char_indices() {
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
    /// One branch-free pass: each byte's clue bits are or-ed in, and the key run
    /// grows or drops to zero by multiplication. The two clues that need context
    /// (`eyJ`, `-----B`) are searched for only when their last byte occurs.
    fn of(bytes: &[u8]) -> Clues {
        work::charge(bytes.len());
        let mut seen = 0u8;
        let mut key_run = 0usize;
        let mut long_key_run = false;
        let mut double_dash = false;
        let mut prev = 0u8;
        for &b in bytes {
            let class = CLUE_CLASSES[usize::from(b)];
            seen |= class;
            double_dash |= b == b'-' && prev == b'-';
            prev = b;
            key_run = (key_run + 1) * usize::from(class & KEY_BYTE);
            long_key_run |= key_run >= MIN_KEY_LEN;
        }
        Clues {
            jwt: seen & CAPITAL_J != 0 && find_from(bytes, 0, b"eyJ", 2).is_some(),
            pem: seen & CAPITAL_B != 0 && find_from(bytes, 0, b"-----B", 5).is_some(),
            assignment: seen & (COLON | EQUALS) != 0 || double_dash,
            at: seen & AT != 0,
            digit: seen & DIGIT != 0,
            colon: seen & COLON != 0,
            long_key_run,
        }
    }
}

/// Clue bits of a byte ([`Clues::of`]). `KEY_BYTE` is bit 0: the key run multiplies by it.
const KEY_BYTE: u8 = 1;
const DIGIT: u8 = 1 << 1;
const COLON: u8 = 1 << 2;
const EQUALS: u8 = 1 << 3;
const AT: u8 = 1 << 4;
const CAPITAL_J: u8 = 1 << 5;
const CAPITAL_B: u8 = 1 << 6;

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

fn private_keys(text: &str, found: &mut Vec<Finding>) {
    const MAX_KEY: usize = 16 * 1024;
    let mut from = 0;
    while let Some(start) = find_from(text.as_bytes(), from, b"-----BEGIN ", 0) {
        let header_end = text
            .get(start..)
            .and_then(|t| t.get(11..).and_then(|h| h.find("-----")))
            .map(|i| start + 11 + i);
        let Some(header_end) = header_end else {
            break;
        };
        work::charge(header_end - start);
        let header = text.get(start..header_end).unwrap_or_default();
        if !header.ends_with("PRIVATE KEY") || header_end - start > 64 {
            from = start + 11;
            continue;
        }
        // Through the END line, or to the end of the text when it is cut (a stream).
        let limit = (start + MAX_KEY).min(text.len());
        let end = text
            .get(header_end..limit)
            .and_then(|t| t.find("-----END "))
            .and_then(|i| {
                let end_at = header_end + i + 9;
                text.get(end_at..limit)
                    .and_then(|t| t.find("-----"))
                    .map(|j| end_at + j + 5)
            })
            .unwrap_or(limit);
        work::charge(end.saturating_sub(header_end));
        found.push(Finding {
            kind: SensitiveKind::PrivateKey,
            start,
            end,
        });
        from = end.max(start + 11);
    }
}

/// Names that announce a secret value anywhere inside them (`db_password`, `X-Api-Key`):
/// their value counts when it looks random.
const SECRET_NAMES: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "api-key",
    "key",
    "credential",
    "auth",
];

/// Last words of a name (`DB_PASS`, `clientSecret`, `Authorization`) that make its value
/// a secret whatever it looks like, unless it is empty, a placeholder or a reference.
const SECRET_LAST_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "passcode",
    "pass",
    "pwd",
    "secret",
    "token",
    "apikey",
    "credential",
    "credentials",
    "authorization",
    "bearer",
    // "Password" in other languages written in ASCII.
    "passwort",
    "kennwort",
    "contrasena",
    "senha",
    "wachtwoord",
    "haslo",
    "heslo",
    "salasana",
    "passord",
    "losenord",
    "adgangskode",
    "jelszo",
    "sifre",
    "parola",
    "parol",
];

/// Last words that make a name's last word a secret as its ending (`PGPASSWORD`,
/// `clientsecret`, `csrftoken`).
const SECRET_ENDINGS: &[&str] = &["password", "passwd", "secret", "token", "apikey"];

/// Words before a final `key` that make it a secret key (`api_key`, `AWS_SECRET_ACCESS_KEY`).
const KEY_QUALIFIERS: &[&str] = &[
    "api",
    "access",
    "secret",
    "private",
    "auth",
    "signing",
    "encryption",
    "master",
    "client",
];

/// HTTP authentication schemes written before a credential (`Authorization: Bearer …`).
const AUTH_SCHEMES: &[&str] = &["bearer", "basic", "token", "digest", "bot", "apikey"];

/// How surely a name announces a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SecretName {
    /// Its value is a secret when it looks random.
    Weak,
    /// Its value is a secret unless it is a placeholder or a reference.
    Strong,
}

/// The words of an identifier: split at `_`, `-`, `.` and lower-to-upper case changes.
fn name_words(name: &[u8]) -> Vec<&[u8]> {
    let mut words = Vec::new();
    let mut start = 0;
    for (i, &b) in name.iter().enumerate() {
        let camel = b.is_ascii_uppercase()
            && i.checked_sub(1)
                .and_then(|p| name.get(p))
                .is_some_and(u8::is_ascii_lowercase);
        if matches!(b, b'_' | b'-' | b'.') || camel {
            words.extend(name.get(start..i).filter(|w| !w.is_empty()));
            start = if camel { i } else { i + 1 };
        }
    }
    words.extend(name.get(start..).filter(|w| !w.is_empty()));
    words
}

/// Whether `name` announces a secret, and how surely.
fn secret_name(name: &[u8]) -> Option<SecretName> {
    let lower = |w: &[u8]| w.to_ascii_lowercase();
    let words = name_words(name);
    let last = words.last().copied();
    let before_last = words
        .len()
        .checked_sub(2)
        .and_then(|k| words.get(k))
        .copied();
    if let Some(last) = last.map(lower) {
        let strong = SECRET_LAST_WORDS.iter().any(|w| last == w.as_bytes())
            || SECRET_ENDINGS.iter().any(|w| last.ends_with(w.as_bytes()))
            || (last == b"key"
                && before_last
                    .map(lower)
                    .is_some_and(|q| KEY_QUALIFIERS.iter().any(|k| q == k.as_bytes())));
        if strong {
            return Some(SecretName::Strong);
        }
    }
    SECRET_NAMES
        .iter()
        .any(|n| {
            name.windows(n.len())
                .any(|w| w.eq_ignore_ascii_case(n.as_bytes()))
        })
        .then_some(SecretName::Weak)
}

/// `A-Z a-z 0-9 _ -`.
fn is_ident_byte(b: u8) -> bool {
    BYTE_CLASSES[usize::from(b)] & IDENT != 0
}

/// `name = value`, `"name": "value"`, `name: value`, `--name value` and
/// `Authorization: Bearer value`, where the name announces a secret ([`secret_name`])
/// and the value is one: random-looking for a name that only contains a secret word,
/// any real value (not empty, a placeholder or a reference to one) for a name that ends
/// in one. A quoted value under such a name runs to its closing quote.
fn credentials(text: &str, found: &mut Vec<Finding>) {
    work::charge(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // Find the end of an identifier containing a secret name.
        let Some(b) = bytes.get(i) else { break };
        if !is_ident_byte(*b) {
            i += 1;
            continue;
        }
        let start = i;
        while bytes.get(i).is_some_and(|&b| is_ident_byte(b)) && i - start < 64 {
            i += 1;
        }
        let name = bytes.get(start..i).unwrap_or_default();
        // An assignment first (rare in prose), then a secret word in its name.
        let mut j = i;
        if matches!(bytes.get(j), Some(b'"' | b'\'')) {
            j += 1;
        }
        while bytes.get(j) == Some(&b' ') {
            j += 1;
        }
        let flag = name.starts_with(b"--") && j > i && bytes.get(i) == Some(&b' ');
        match (bytes.get(j), bytes.get(j + 1)) {
            (Some(b':'), Some(b'=')) | (Some(b'='), Some(b'>')) => j += 2,
            (Some(b':' | b'='), _) => j += 1,
            _ if flag => {}
            _ => continue,
        }
        // The name (at most 64 bytes) is searched for each secret word.
        work::charge(j - start + name.len() * 16);
        let Some(strength) = secret_name(name) else {
            continue;
        };
        while bytes.get(j) == Some(&b' ') {
            j += 1;
        }
        let quote = bytes
            .get(j)
            .copied()
            .filter(|b| matches!(b, b'"' | b'\'' | b'`'));
        if quote.is_some() {
            j += 1;
        }
        j = after_auth_scheme(bytes, j);
        let value_start = j;
        let quoted_to_close = quote.filter(|_| strength == SecretName::Strong);
        while bytes.get(j).is_some_and(|&b| match quoted_to_close {
            Some(q) => b != q && b != b'\n',
            None => b > b' ' && !matches!(b, b'"' | b'\'' | b'`' | b',' | b';' | b'}' | b')'),
        }) && j - value_start < 256
        {
            j += 1;
        }
        let value = text.get(value_start..j).unwrap_or_default();
        work::charge(2 * (j - value_start));
        let secret = match strength {
            SecretName::Weak => looks_random(value),
            SecretName::Strong => is_real_secret(value),
        };
        if secret {
            found.push(Finding {
                kind: SensitiveKind::Credential,
                start: value_start,
                end: j,
            });
        }
        i = j.max(i);
    }
}

/// Longest user-and-password part of a URL read.
const MAX_USERINFO: usize = 256;

/// The password of a URL that carries one (`postgres://app:S3cr3t!@db:5432/x`,
/// `https://user:tok3n@host`): between the first `:` after `://` and the last `@`
/// before the host, when it is a real secret ([`is_real_secret`]). Each byte is read at
/// most once: the next search starts where the last URL's user part ended.
fn url_passwords(text: &str, found: &mut Vec<Finding>) {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(at) = find_from(bytes, from, b"://", 1) {
        let start = at + 3;
        let mut end = start;
        let mut colon = None;
        let mut last_at = None;
        while end - start < MAX_USERINFO {
            match bytes.get(end) {
                Some(b'@') => last_at = Some(end),
                Some(b':') if colon.is_none() => colon = Some(end),
                Some(&b)
                    if b > b' '
                        && !matches!(b, b'/' | b'?' | b'#' | b'"' | b'\'' | b'<' | b'>' | b'`') => {
                }
                _ => break,
            }
            end += 1;
        }
        from = end.max(at + 3);
        let (Some(colon), Some(last_at)) = (colon, last_at) else {
            continue;
        };
        if colon + 1 >= last_at {
            continue;
        }
        let password = text.get(colon + 1..last_at).unwrap_or_default();
        if is_real_secret(password) {
            found.push(Finding {
                kind: SensitiveKind::Credential,
                start: colon + 1,
                end: last_at,
            });
        }
    }
}

/// Past an HTTP authentication scheme and its space at `at` (`Bearer abc` → `abc`), or
/// `at` when there is none.
fn after_auth_scheme(bytes: &[u8], at: usize) -> usize {
    let word_len = bytes
        .get(at..)
        .unwrap_or_default()
        .iter()
        .take(8)
        .take_while(|b| b.is_ascii_alphabetic())
        .count();
    let word = bytes.get(at..at + word_len).unwrap_or_default();
    let is_scheme = AUTH_SCHEMES
        .iter()
        .any(|s| word.eq_ignore_ascii_case(s.as_bytes()));
    if !is_scheme || bytes.get(at + word_len) != Some(&b' ') {
        return at;
    }
    let mut j = at + word_len;
    while bytes.get(j) == Some(&b' ') {
        j += 1;
    }
    j
}

/// Parts of values that mark a placeholder, an example or an empty value.
const PLACEHOLDERS: &[&str] = &[
    "xxx",
    "***",
    "your",
    "<",
    "${",
    "{{",
    "example",
    "changeme",
    "process.env",
    "os.environ",
    "null",
    "none",
    "true",
    "false",
    "redacted",
    "placeholder",
    "[",
    "...",
];

fn is_placeholder(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    PLACEHOLDERS.iter().any(|p| lower.contains(p))
}

fn looks_random(value: &str) -> bool {
    if value.len() < 8 || value.len() > 256 || is_placeholder(value) {
        return false;
    }
    let digit = value.bytes().any(|b| b.is_ascii_digit());
    let upper = value.bytes().any(|b| b.is_ascii_uppercase());
    let lower_case = value.bytes().any(|b| b.is_ascii_lowercase());
    let symbol = value.bytes().any(|b| !b.is_ascii_alphanumeric());
    let classes = [digit, upper, lower_case, symbol]
        .iter()
        .filter(|&&c| c)
        .count();
    classes >= 2 && shannon_entropy(value) >= 3.0
}

/// A value given to a name that ends in a secret word: a real secret unless it is short,
/// a placeholder, or a reference to one in code (`$DB_PASS`, `self.password`,
/// `os.getenv(…)`, `DB_PASSWORD`, `access_token`). Letters alone are a word or a type
/// (`String`), digits alone a count: a secret mixes letters with digits or symbols.
fn is_real_secret(value: &str) -> bool {
    let bytes = value.as_bytes();
    if value.len() < 6 || value.len() > 256 || is_placeholder(value) {
        return false;
    }
    let reference = matches!(bytes.first(), Some(b'$' | b'%' | b'@' | b'&' | b'*' | b'+'))
        || matches!(bytes.last(), Some(b'+' | b'(' | b'.'))
        || bytes.contains(&b'(')
        || is_identifier_path(bytes)
        || bytes.iter().all(|&b| b.is_ascii_lowercase() || b == b'_')
        || (bytes.contains(&b'_')
            && bytes
                .iter()
                .all(|&b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'));
    if reference {
        return false;
    }
    let letter = bytes.iter().any(u8::is_ascii_alphabetic);
    let digit = bytes.iter().any(u8::is_ascii_digit);
    let symbol = bytes
        .iter()
        .any(|&b| !b.is_ascii_alphanumeric() && b != b' ');
    let spaced = bytes.contains(&b' ');
    letter && (digit || symbol) || (!spaced && looks_random(value))
}

/// `a.b` or `a.b.c`: identifiers joined by dots, as code names a field (`self.password`,
/// `config.db.secret`).
fn is_identifier_path(bytes: &[u8]) -> bool {
    let mut parts = 0;
    for part in bytes.split(|&b| b == b'.') {
        let starts_ok = part
            .first()
            .is_some_and(|&b| b.is_ascii_alphabetic() || b == b'_');
        if !starts_ok || !part.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_') {
            return false;
        }
        parts += 1;
    }
    parts >= 2
}

fn shannon_entropy(s: &str) -> f32 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        if let Some(c) = counts.get_mut(usize::from(b)) {
            *c += 1;
        }
    }
    let n = s.len() as f32;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f32 / n;
            -p * p.log2()
        })
        .sum()
}

fn is_local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn emails(text: &str, found: &mut Vec<Finding>) {
    work::charge(text.len());
    let bytes = text.as_bytes();
    for (at, _) in text.match_indices('@') {
        let mut s = at;
        while s > 0 && bytes.get(s - 1).is_some_and(|&b| is_local_byte(b)) && at - s < 64 {
            s -= 1;
        }
        while bytes.get(s) == Some(&b'.') {
            s += 1;
        }
        if s == at {
            continue;
        }
        let mut e = at + 1;
        while bytes
            .get(e)
            .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && e - at < 254
        {
            e += 1;
        }
        while e > at + 1 && matches!(bytes.get(e - 1), Some(b'.' | b'-')) {
            e -= 1;
        }
        work::charge(2 * (e - s));
        let domain = text.get(at + 1..e).unwrap_or_default();
        let Some(dot) = domain.rfind('.') else {
            continue;
        };
        let tld = domain.get(dot + 1..).unwrap_or_default();
        if dot == 0 || tld.len() < 2 || !tld.bytes().all(|b| b.is_ascii_alphabetic()) {
            continue;
        }
        found.push(Finding {
            kind: SensitiveKind::Email,
            start: s,
            end: e,
        });
    }
}

/// Scans runs made of digits and phone/card separators, then classifies each run.
fn number_runs(text: &str, found: &mut Vec<Finding>) {
    work::charge(text.len());
    let bytes = text.as_bytes();
    let is_sep = |b: u8| matches!(b, b' ' | b'-' | b'.' | b'(' | b')' | b'/');
    let mut i = 0;
    while i < bytes.len() {
        // A run starts at a digit or just before one: skip to there.
        let Some(digit) = bytes
            .get(i..)
            .and_then(|rest| rest.iter().position(u8::is_ascii_digit))
        else {
            break;
        };
        i = (i + digit).saturating_sub(1).max(i);
        let Some(&b) = bytes.get(i) else { break };
        let starts = b.is_ascii_digit()
            || ((b == b'+' || b == b'(') && bytes.get(i + 1).is_some_and(|n| n.is_ascii_digit()));
        let after_word = || {
            i > 0
                && bytes
                    .get(i - 1)
                    .is_some_and(|&p| p.is_ascii_alphanumeric() || p == b'_' || p == b'@')
        };
        if !starts || after_word() {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i;
        let mut j = i + 1;
        if b.is_ascii_digit() {
            end = i + 1;
        }
        let mut seps = 0;
        while j < bytes.len() && j - start < 40 {
            let Some(&c) = bytes.get(j) else { break };
            if c.is_ascii_digit() {
                seps = 0;
                j += 1;
                end = j;
            } else if is_sep(c) && seps < 2 {
                seps += 1;
                j += 1;
            } else {
                break;
            }
        }
        work::charge(j - start);
        // A closing parenthesis right after the digits belongs to `(027)` forms only.
        let run_end = end;
        let followed_by_word = bytes
            .get(run_end)
            .is_some_and(|&n| n.is_ascii_alphabetic() && n != b'x' || n == b'_' || n == b'@');
        if !followed_by_word {
            if let Some(text_run) = text.get(start..run_end) {
                classify_number(text, start, text_run, found);
            }
        }
        i = j.max(i + 1);
    }
}

fn classify_number(text: &str, start: usize, run: &str, found: &mut Vec<Finding>) {
    // A handful of passes over the run (at most 40 bytes).
    work::charge(8 * run.len());
    let digits: Vec<u8> = run
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect();
    let n = digits.len();
    let end = start + run.len();
    let push = |found: &mut Vec<Finding>, kind, end| found.push(Finding { kind, start, end });

    if let Ok(ip) = run.parse::<Ipv4Addr>() {
        if !ip.is_unspecified() && run.split('.').all(|p| p.len() == 1 || !p.starts_with('0')) {
            push(found, SensitiveKind::IpAddress, end);
        }
        return;
    }
    if is_ssn_shape(run) && ssn_valid(&digits) {
        push(found, SensitiveKind::UsSsn, end);
        return;
    }
    let card_seps = run
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b' ' | b'-' | b'.'));
    if card_seps && is_card_number(&digits) {
        push(found, SensitiveKind::CreditCard, end);
        return;
    }
    if let Some(date) = date_then_space(run) {
        // A date is no phone number; what follows it (a time, or a number of its own)
        // is judged alone.
        if let Some(rest) = run.get(date..) {
            classify_number(text, start + date, rest, found);
        }
        return;
    }
    if looks_like_date_or_decimal(run) {
        return;
    }
    let has_sep = run.bytes().any(|b| !b.is_ascii_digit());
    if (7..=15).contains(&n) && has_sep {
        let groups = run
            .split(|c: char| !c.is_ascii_digit())
            .filter(|g| !g.is_empty())
            .count();
        if groups >= 2 {
            // Include an extension (`x1711`).
            let bytes = text.as_bytes();
            let mut e = end;
            if bytes.get(e) == Some(&b'x') {
                let mut k = e + 1;
                while bytes.get(k).is_some_and(u8::is_ascii_digit) && k - e <= 6 {
                    k += 1;
                }
                if k > e + 1 && !bytes.get(k).is_some_and(u8::is_ascii_alphanumeric) {
                    e = k;
                }
            }
            push(found, SensitiveKind::Phone, e);
        }
    }
}

fn is_ssn_shape(run: &str) -> bool {
    let b = run.as_bytes();
    b.len() == 11
        && (b.get(3) == Some(&b'-') && b.get(6) == Some(&b'-')
            || b.get(3) == Some(&b' ') && b.get(6) == Some(&b' '))
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 3 || i == 6 || c.is_ascii_digit())
}

/// SSA rules: area not 000, 666 or 900–999; group not 00; serial not 0000.
fn ssn_valid(d: &[u8]) -> bool {
    let num = |r: std::ops::Range<usize>| {
        d.get(r)
            .map(|s| s.iter().fold(0u32, |acc, &x| acc * 10 + u32::from(x)))
    };
    match (num(0..3), num(3..5), num(5..9)) {
        (Some(area), Some(group), Some(serial)) => {
            area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
        }
        _ => false,
    }
}

fn luhn(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let x = u32::from(x);
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                x
            }
        })
        .sum();
    sum.checked_rem(10) == Some(0)
}

/// One issuer range of a card network: the first `digits` digits of the number lie in
/// `from..=to`, its length is one of `lengths` (bit `n` for `n` digits), and it carries a
/// Luhn check digit when `luhn`.
struct CardRange {
    from: u32,
    to: u32,
    digits: usize,
    lengths: u32,
    luhn: bool,
}

/// Bit mask of the card lengths `min..=max`.
const fn lengths(min: u32, max: u32) -> u32 {
    (u32::MAX >> (31 - max)) & !((1 << min) - 1)
}

const fn card(from: u32, to: u32, lengths: u32) -> CardRange {
    let mut digits = 1;
    let mut n = from / 10;
    while n > 0 {
        digits += 1;
        n /= 10;
    }
    CardRange {
        from,
        to,
        digits,
        lengths,
        luhn: true,
    }
}

/// The issuer ranges and lengths the card networks publish. Ranges that an earlier,
/// wider one already covers are listed anyway where the network is a distinct brand, so
/// the table reads as the networks' own.
const CARD_RANGES: &[CardRange] = &[
    // Visa (Electron and V Pay included): 13, 16 or 19 digits.
    card(4, 4, 1 << 13 | 1 << 16 | 1 << 19),
    // Mastercard, 51–55 and the 2-series.
    card(51, 55, 1 << 16),
    card(2221, 2720, 1 << 16),
    // American Express.
    card(34, 34, 1 << 15),
    card(37, 37, 1 << 15),
    // Discover (and the UnionPay co-brand range it accepts).
    card(6011, 6011, lengths(16, 19)),
    card(644, 649, lengths(16, 19)),
    card(65, 65, lengths(16, 19)),
    card(622126, 622925, lengths(16, 19)),
    // Diners Club International.
    card(300, 305, lengths(14, 19)),
    card(3095, 3095, lengths(14, 19)),
    card(36, 36, lengths(14, 19)),
    card(38, 39, lengths(14, 19)),
    // JCB, and its 15-digit 1800 and 2131 ranges.
    card(3528, 3589, lengths(15, 19)),
    card(1800, 1800, 1 << 15),
    card(2131, 2131, 1 << 15),
    // Maestro (Dankort, Verve, Elo and other domestic debit ranges fall in these).
    card(50, 50, lengths(12, 19)),
    card(56, 69, lengths(12, 19)),
    // UnionPay: some of its cards carry no Luhn digit.
    CardRange {
        luhn: false,
        ..card(62, 62, lengths(16, 19))
    },
    CardRange {
        luhn: false,
        ..card(81, 81, lengths(16, 19))
    },
    // Mir and BORICA.
    card(2200, 2205, lengths(16, 19)),
    // RuPay (its 60, 65, 508, 353 and 356 ranges are above).
    card(81, 82, 1 << 16),
    // Troy.
    card(9792, 9792, 1 << 16),
    // UATP.
    card(1, 1, 1 << 15),
    // China T-Union.
    card(31, 31, 1 << 19),
    // GPN (Indonesia), Humo and Uzcard (Uzbekistan), NAPAS (Vietnam).
    card(1946, 1946, 1 << 16 | 1 << 18 | 1 << 19),
    card(9860, 9860, 1 << 16),
    card(8600, 8600, 1 << 16),
    card(9704, 9704, 1 << 16 | 1 << 19),
];

/// Shortest and longest card number of any network.
const CARD_DIGITS: std::ops::RangeInclusive<usize> = 12..=19;

/// Whether `d` (the digits of a number) is a card number of some network: its issuer
/// range, its length and, where the network uses one, its Luhn check digit.
fn is_card_number(d: &[u8]) -> bool {
    let prefix = |k: usize| {
        d.get(..k)
            .map(|s| s.iter().fold(0u32, |acc, &x| acc * 10 + u32::from(x)))
    };
    let len = d.len();
    if !CARD_DIGITS.contains(&len) {
        return false;
    }
    let mut luhn_checked = None;
    CARD_RANGES.iter().any(|r| {
        let in_range = prefix(r.digits).is_some_and(|p| (r.from..=r.to).contains(&p));
        in_range
            && r.lengths & (1 << len) != 0
            && (!r.luhn || *luhn_checked.get_or_insert_with(|| luhn(d)))
    })
}

fn looks_like_date_or_decimal(run: &str) -> bool {
    let groups: Vec<&str> = run
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    let seps: Vec<char> = run.chars().filter(|c| !c.is_ascii_digit()).collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    let date = matches!(
        lens.as_slice(),
        [4, 2, 2] | [2, 2, 4] | [1 | 2, 1 | 2, 4] | [4, 1 | 2, 1 | 2]
    ) && seps.iter().all(|&c| matches!(c, '-' | '/' | '.'));
    let decimal = seps.len() == 1 && seps.first() == Some(&'.');
    date || decimal
}

/// The length of a calendar date and the space after it at the start of `run`
/// (`1970-11-23 02:26`, `23/11/1970 212 555 1234`), if it starts so.
fn date_then_space(run: &str) -> Option<usize> {
    let b = run.as_bytes();
    let digits = |from: usize| {
        b.get(from..).map_or(0, |rest| {
            rest.iter().take_while(|c| c.is_ascii_digit()).count()
        })
    };
    let number = |from: usize, len: usize| {
        b.get(from..from + len).map_or(0, |d| {
            d.iter().fold(0u32, |n, &c| n * 10 + u32::from(c - b'0'))
        })
    };
    let (l0, at1) = (digits(0), digits(0) + 1);
    let (l1, at2) = (digits(at1), at1 + digits(at1) + 1);
    let (l2, after) = (digits(at2), at2 + digits(at2));
    let sep = b.get(l0).copied();
    let same_date_sep = matches!(sep, Some(b'-' | b'/' | b'.')) && b.get(at2 - 1).copied() == sep;
    if !same_date_sep || b.get(after) != Some(&b' ') {
        return None;
    }
    let year = |y: u32| (1900..=2099).contains(&y);
    let month_day = |m: u32, d: u32| (1..=12).contains(&m) && (1..=31).contains(&d);
    let date = match (l0, l1, l2) {
        (4, 1 | 2, 1 | 2) => year(number(0, 4)) && month_day(number(at1, l1), number(at2, l2)),
        (1 | 2, 1 | 2, 4) => {
            let (a, c) = (number(0, l0), number(at1, l1));
            year(number(at2, 4)) && (month_day(a, c) || month_day(c, a))
        }
        _ => false,
    };
    date.then_some(after + 1)
}

/// IBANs: a country code and two check digits at a word start, then exactly the
/// country's number of characters (a single space or dash allowed between groups). What follows
/// the last group (`… 0130 00 by Friday`) is not part of it, but the value must end where
/// a group ends: a longer unbroken token is no IBAN.
fn ibans(text: &str, found: &mut Vec<Finding>) {
    work::charge(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(&[b0, b1, b2, b3]) = bytes.get(i..i + 4) {
        // Two digits after two letters: rare, and the cheapest test, so first. When
        // the fourth byte is no digit, the next position fails too (its third byte).
        if !b3.is_ascii_digit() {
            i += 2;
            continue;
        }
        if !b2.is_ascii_digit() {
            i += 1;
            continue;
        }
        let boundary = i == 0 || !bytes.get(i - 1).is_some_and(u8::is_ascii_alphanumeric);
        let country = [b0.to_ascii_uppercase(), b1.to_ascii_uppercase()];
        let len = iban_length(country).filter(|_| boundary);
        let Some(len) = len else {
            i += 1;
            continue;
        };
        let mut compact = Vec::with_capacity(len);
        let mut j = i;
        let mut end = i;
        while compact.len() < len {
            let Some(&c) = bytes.get(j) else { break };
            if c.is_ascii_alphanumeric() {
                compact.push(c.to_ascii_uppercase());
                j += 1;
                end = j;
            } else if matches!(c, b' ' | b'-')
                && bytes.get(j + 1).is_some_and(u8::is_ascii_alphanumeric)
            {
                j += 1;
            } else {
                break;
            }
        }
        work::charge(j - i);
        let ends_a_group = !bytes.get(end).is_some_and(u8::is_ascii_alphanumeric);
        if compact.len() == len && ends_a_group && iban_checksum_ok(&compact) {
            found.push(Finding {
                kind: SensitiveKind::Iban,
                start: i,
                end,
            });
            i = end;
        } else {
            i += 1;
        }
    }
}

/// IBAN length of every country in the SWIFT IBAN registry (release 99, 2025), by
/// ISO 3166 code. Territories (Åland, the French overseas departments, Jersey, …) use
/// their parent's code and format. Sorted by code.
#[rustfmt::skip]
const IBAN_LENGTHS: &[([u8; 2], usize)] = &[
    (*b"AD", 24), (*b"AE", 23), (*b"AL", 28), (*b"AT", 20), (*b"AZ", 28), (*b"BA", 20),
    (*b"BE", 16), (*b"BG", 22), (*b"BH", 22), (*b"BI", 27), (*b"BR", 29), (*b"BY", 28),
    (*b"CH", 21), (*b"CR", 22), (*b"CY", 28), (*b"CZ", 24), (*b"DE", 22), (*b"DJ", 27),
    (*b"DK", 18), (*b"DO", 28), (*b"EE", 20), (*b"EG", 29), (*b"ES", 24), (*b"FI", 18),
    (*b"FK", 18), (*b"FO", 18), (*b"FR", 27), (*b"GB", 22), (*b"GE", 22), (*b"GI", 23),
    (*b"GL", 18), (*b"GR", 27), (*b"GT", 28), (*b"HN", 28), (*b"HR", 21), (*b"HU", 28),
    (*b"IE", 22), (*b"IL", 23), (*b"IQ", 23), (*b"IS", 26), (*b"IT", 27), (*b"JO", 30),
    (*b"KW", 30), (*b"KZ", 20), (*b"LB", 28), (*b"LC", 32), (*b"LI", 21), (*b"LT", 20),
    (*b"LU", 20), (*b"LV", 21), (*b"LY", 25), (*b"MC", 27), (*b"MD", 24), (*b"ME", 22),
    (*b"MK", 19), (*b"MN", 20), (*b"MR", 27), (*b"MT", 31), (*b"MU", 30), (*b"NI", 28),
    (*b"NL", 18), (*b"NO", 15), (*b"OM", 23), (*b"PK", 24), (*b"PL", 28), (*b"PS", 29),
    (*b"PT", 25), (*b"QA", 29), (*b"RO", 24), (*b"RS", 22), (*b"RU", 33), (*b"SA", 24),
    (*b"SC", 31), (*b"SD", 18), (*b"SE", 24), (*b"SI", 19), (*b"SK", 24), (*b"SM", 27),
    (*b"SO", 23), (*b"ST", 25), (*b"SV", 28), (*b"TL", 23), (*b"TN", 24), (*b"TR", 26),
    (*b"UA", 29), (*b"VA", 22), (*b"VG", 24), (*b"XK", 20), (*b"YE", 30),
];

/// The IBAN length of a registry country (uppercase code).
fn iban_length(country: [u8; 2]) -> Option<usize> {
    IBAN_LENGTHS
        .binary_search_by(|(code, _)| code.cmp(&country))
        .ok()
        .and_then(|k| IBAN_LENGTHS.get(k))
        .map(|&(_, len)| len)
}

/// ISO 13616 mod-97 check of a compact, uppercase IBAN.
fn iban_checksum_ok(iban: &[u8]) -> bool {
    let rearranged = iban.iter().skip(4).chain(iban.iter().take(4));
    let mut rem: u32 = 0;
    for &c in rearranged {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn ipv6(text: &str, found: &mut Vec<Finding>) {
    work::charge(text.len());
    let bytes = text.as_bytes();
    let is_v6 = |b: u8| b.is_ascii_hexdigit() || b == b':' || b == b'.';
    // An address needs colons: only the runs of address characters around a colon are
    // read, each byte at most twice. `done` is where the last run read ended.
    let mut done = 0;
    for (colon, _) in text.match_indices(':') {
        if colon < done {
            continue;
        }
        let mut run_start = colon;
        while run_start > done && bytes.get(run_start - 1).is_some_and(|&b| is_v6(b)) {
            run_start -= 1;
        }
        let mut run_end = colon;
        while bytes.get(run_end).is_some_and(|&b| is_v6(b)) {
            run_end += 1;
        }
        work::charge(run_end - run_start);
        done = run_end;
        // A run is read in pieces of at most 64 bytes from its start.
        let mut start = run_start;
        while start < run_end {
            let end = (start + 64).min(run_end);
            ipv6_candidate(text, start, end, found);
            start = end;
        }
    }
}

/// An IPv6 address in `text[start..end]` (a run of hex digits, colons and dots).
fn ipv6_candidate(text: &str, start: usize, end: usize, found: &mut Vec<Finding>) {
    // Counting, trimming and parsing the piece (at most 64 bytes).
    work::charge(4 * (end - start));
    let bytes = text.as_bytes();
    let boundary_left = start == 0 || !bytes.get(start - 1).is_some_and(|&b| is_ident_byte(b));
    let boundary_right = !bytes.get(end).is_some_and(|&b| is_ident_byte(b));
    let run = text
        .get(start..end)
        .unwrap_or_default()
        .trim_end_matches('.');
    let colons = run.bytes().filter(|&b| b == b':').count();
    let hex = run.bytes().filter(u8::is_ascii_hexdigit).count();
    if boundary_left && boundary_right && colons >= 2 && hex >= 4 && run.parse::<Ipv6Addr>().is_ok()
    {
        found.push(Finding {
            kind: SensitiveKind::IpAddress,
            start,
            end: start + run.len(),
        });
    }
}

/// Where the part of `text` that more text could still make into a sensitive value, or
/// into part of one, begins: before it every value is whole and stays as it is whatever
/// follows, so a stream may release it. Only the last `limit` bytes are read (the
/// caller's longest hold). It errs one way only: it may hold text that comes to nothing,
/// never release the start of a value. Work is linear in `limit`.
///
/// Plain words followed by a space are settled; what may still grow is:
/// - the unfinished last word (a key, an address, a token, a number);
/// - a run of digits and separators that a further digit would extend (a card number
///   with spaces, a phone number);
/// - an IBAN's groups after its country code;
/// - an assignment to a secret name whose value has not begun (`password = `);
/// - a quoted value under a secret name whose closing quote has not come;
/// - a PEM header whose line has not ended;
/// - a URL's user part (a password may follow).
pub(super) fn growing_tail(text: &str, limit: usize) -> usize {
    let mut from = text.len().saturating_sub(limit);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let tail = text.get(from..).unwrap_or_default();
    work::charge(tail.len());
    match FoldedText::of(tail) {
        Some(folded) => {
            let at = growing_in(folded.text.as_bytes());
            from + folded.from.get(at).map_or(tail.len(), |&(start, _)| start)
        }
        None => from + growing_in(tail.as_bytes()),
    }
}

/// [`growing_tail`] of folded text: the earliest start any rule finds, or the end.
fn growing_in(b: &[u8]) -> usize {
    // Each rule reads back from the end a bounded stretch, at most all of `b`.
    work::charge(8 * b.len().min(512));
    // A rule that needs a byte the end of the text lacks cannot find anything: most
    // prose has no digit, quote or colon near its end, and a stream asks once per word.
    let near = Nearest::of(b);
    [
        Some(unfinished_word(b)),
        (near.digit < 3).then(|| open_number_run(b)),
        (near.digit < 72).then(|| open_iban(b)),
        Some(open_assignment(b)),
        (near.quote < 260).then(|| open_secret_quote(b)),
        (near.dash < 75).then(|| open_pem_header(b)),
        (near.colon < 259).then(|| open_url_userinfo(b)),
    ]
    .into_iter()
    .flatten()
    .flatten()
    .min()
    .unwrap_or(b.len())
}

/// How far from the end of a text (0 for its last byte) the nearest byte of each kind a
/// rule of [`growing_in`] needs is, within the last 260 bytes (`usize::MAX` if none):
/// a digit (within 3 bytes for a number run, which allows two separators in a row, and
/// within an IBAN's span), a quote, a dash (a PEM header), a colon (a URL's `://`).
struct Nearest {
    digit: usize,
    quote: usize,
    dash: usize,
    colon: usize,
}

impl Nearest {
    fn of(b: &[u8]) -> Nearest {
        let mut near = Nearest {
            digit: usize::MAX,
            quote: usize::MAX,
            dash: usize::MAX,
            colon: usize::MAX,
        };
        for (d, &c) in b.iter().rev().take(260).enumerate() {
            let slot = match c {
                b'0'..=b'9' => &mut near.digit,
                b'"' | b'\'' | b'`' => &mut near.quote,
                b'-' => &mut near.dash,
                b':' => &mut near.colon,
                _ => continue,
            };
            *slot = (*slot).min(d);
        }
        near
    }
}

/// A byte a value can be made of: printable ASCII (folded text keeps other characters
/// as written, and no value but a quoted one or a URL's user part holds them).
fn is_value_byte(b: u8) -> bool {
    b > b' ' && b < 0x7F
}

/// The last word when the text does not end with a space.
fn unfinished_word(b: &[u8]) -> Option<usize> {
    let start = b.len() - b.iter().rev().take_while(|&&c| is_value_byte(c)).count();
    (start < b.len()).then_some(start)
}

/// A run of digits and separators at the end that another digit would continue
/// ([`number_runs`] allows two separators in a row): from its start, when it holds a
/// digit.
fn open_number_run(b: &[u8]) -> Option<usize> {
    let is_sep = |c: u8| matches!(c, b' ' | b'-' | b'.' | b'(' | b')' | b'/' | b'+');
    let mut k = b.len();
    let mut seps = 0;
    let mut digit = false;
    while let Some(&c) = k.checked_sub(1).and_then(|p| b.get(p)) {
        if c.is_ascii_digit() {
            digit = true;
            seps = 0;
        } else if is_sep(c) && seps < 2 {
            seps += 1;
        } else {
            break;
        }
        k -= 1;
    }
    // A run starts at a digit, or at `+` or `(` just before one.
    while b
        .get(k)
        .is_some_and(|&c| is_sep(c) && c != b'+' && c != b'(')
    {
        k += 1;
    }
    digit.then_some(k)
}

/// An IBAN still arriving: a country code and check digits at a word start, then
/// letters, digits and single spaces or dashes to the end (at most an IBAN's length).
fn open_iban(b: &[u8]) -> Option<usize> {
    const SPAN: usize = 34 * 2;
    let mut k = b.len();
    let mut after_sep = false;
    while let Some(&c) = k.checked_sub(1).and_then(|p| b.get(p)) {
        if b.len() - k >= SPAN {
            break;
        }
        if c.is_ascii_alphanumeric() {
            after_sep = false;
        } else if matches!(c, b' ' | b'-') && !after_sep {
            after_sep = true;
        } else {
            break;
        }
        k -= 1;
    }
    (k..b.len()).find(|&p| {
        let at_word_start = p == 0 || !b.get(p - 1).is_some_and(u8::is_ascii_alphanumeric);
        match b.get(p..p + 4) {
            Some(&[c0, c1, d0, d1]) => {
                at_word_start
                    && c0.is_ascii_alphabetic()
                    && c1.is_ascii_alphabetic()
                    && d0.is_ascii_digit()
                    && d1.is_ascii_digit()
                    && iban_length([c0.to_ascii_uppercase(), c1.to_ascii_uppercase()]).is_some()
            }
            _ => false,
        }
    })
}

/// Steps back over spaces from `k`.
fn back_over_spaces(b: &[u8], mut k: usize) -> usize {
    while k > 0 && b.get(k - 1) == Some(&b' ') {
        k -= 1;
    }
    k
}

/// The start of the secret name whose assignment ends at `k` (`name = `, `"name": `,
/// `name => `, `name := `), skipping the spaces before `k`; `None` when there is none.
fn secret_name_before(b: &[u8], k: usize) -> Option<(usize, SecretName)> {
    let mut k = back_over_spaces(b, k);
    match (
        k.checked_sub(2).and_then(|p| b.get(p)),
        b.get(k.checked_sub(1)?),
    ) {
        (Some(b':'), Some(b'=')) | (Some(b'='), Some(b'>')) => k -= 2,
        (_, Some(b':' | b'=')) => k -= 1,
        _ => return None,
    }
    k = back_over_spaces(b, k);
    if matches!(k.checked_sub(1).and_then(|p| b.get(p)), Some(b'"' | b'\'')) {
        k -= 1;
    }
    let name_end = k;
    while k > 0 && name_end - k < 64 && b.get(k - 1).is_some_and(|&c| is_ident_byte(c)) {
        k -= 1;
    }
    let strength = secret_name(b.get(k..name_end)?)?;
    Some((k, strength))
}

/// An assignment to a secret name whose value has not ended its first word:
/// `password = `, `"token": "hun`, `Authorization: Bearer ab`, `--password hu`. The
/// name is held with the value, so the value is read beside its name however many
/// spaces come between (a stream keeps only a little released text as context).
fn open_assignment(b: &[u8]) -> Option<usize> {
    let value_start = unfinished_word(b).unwrap_or(b.len());
    let mut k = back_over_spaces(b, value_start);
    let spaced = k < value_start;
    // An HTTP authentication scheme with its space (`Bearer `).
    let word = b
        .get(..k)?
        .iter()
        .rev()
        .take_while(|c| c.is_ascii_alphabetic())
        .count();
    let scheme = b.get(k - word..k)?;
    if spaced
        && word > 0
        && AUTH_SCHEMES
            .iter()
            .any(|s| scheme.eq_ignore_ascii_case(s.as_bytes()))
    {
        k = back_over_spaces(b, k - word);
    }
    if matches!(
        k.checked_sub(1).and_then(|p| b.get(p)),
        Some(b'"' | b'\'' | b'`')
    ) {
        k -= 1;
    }
    if let Some((name, _)) = secret_name_before(b, k) {
        return Some(name);
    }
    // A command-line flag and its space: `--password `.
    let flag_end = back_over_spaces(b, value_start);
    let flag_len = b
        .get(..flag_end)?
        .iter()
        .rev()
        .take_while(|&&c| is_ident_byte(c))
        .count();
    let flag = b.get(flag_end - flag_len..flag_end)?;
    (flag_end < value_start && flag.starts_with(b"--") && secret_name(flag).is_some())
        .then_some(flag_end - flag_len)
}

/// A quoted value under a secret name ([`credentials`] reads it to its closing quote,
/// across spaces) whose closing quote has not come on its line: from the name.
fn open_secret_quote(b: &[u8]) -> Option<usize> {
    // A quoted value is read to 256 bytes at most: one opened further back is over.
    let line = b.iter().rposition(|&c| c == b'\n').map_or(0, |p| p + 1);
    let from = line.max(b.len().saturating_sub(260));
    let mut open: Option<(usize, u8)> = None;
    for (i, &c) in b.iter().enumerate().skip(from) {
        match open {
            Some((_, q)) if c == q => open = None,
            Some(_) => {}
            None if matches!(c, b'"' | b'\'' | b'`') => {
                if let Some((name, SecretName::Strong)) = secret_name_before(b, i) {
                    open = Some((name, c));
                }
            }
            None => {}
        }
    }
    open.map(|(name, _)| name)
}

/// A PEM header whose closing dashes have not come (`-----BEGIN RSA PRIV`).
fn open_pem_header(b: &[u8]) -> Option<usize> {
    const HEADER: &[u8] = b"-----BEGIN ";
    let from = b.len().saturating_sub(64 + HEADER.len());
    let tail = b.get(from..)?;
    let at = tail.windows(HEADER.len()).rposition(|w| w == HEADER)?;
    let after = tail.get(at + HEADER.len()..)?;
    (!after.windows(5).any(|w| w == b"-----")).then_some(from + at)
}

/// A URL whose user part is still arriving (`postgres://app:S3cr`), from its `://`.
fn open_url_userinfo(b: &[u8]) -> Option<usize> {
    let from = b.len().saturating_sub(MAX_USERINFO + 3);
    let tail = b.get(from..)?;
    let at = tail.windows(3).rposition(|w| w == b"://")?;
    let rest = tail.get(at + 3..)?;
    rest.iter()
        .all(|&c| c > b' ' && !matches!(c, b'/' | b'?' | b'#' | b'"' | b'\'' | b'<' | b'>' | b'`'))
        .then_some(from + at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(SensitiveKind, String)> {
        let s = SensitiveScanner::compile(true, true).unwrap();
        s.scan(text)
            .into_iter()
            .map(|f| (f.kind, text[f.start..f.end].to_string()))
            .collect()
    }

    #[test]
    fn cards_need_luhn_issuer_and_length() {
        assert_eq!(
            kinds("card 4111 1111 1111 1111 ok"),
            [(SensitiveKind::CreditCard, "4111 1111 1111 1111".into())]
        );
        assert_eq!(
            kinds("amex 378282246310005")[0].0,
            SensitiveKind::CreditCard
        );
        // A millisecond timestamp and an order number are not cards.
        assert!(kinds("ts 1700000000000").is_empty());
        assert!(kinds("order 1234567812345678").is_empty());
    }

    #[test]
    fn a_date_and_time_is_not_a_phone_number() {
        for text in [
            "When: 1970-11-23 02:26:26",
            "at 2013/03/14 12:53",
            "on 23.11.1970 02:26",
            "on 11/23/1970 14:02",
        ] {
            assert!(kinds(text).is_empty(), "{text}: {:?}", kinds(text));
        }
        // Digits that only look like a date's start are still a phone.
        assert_eq!(kinds("call 2125-55-1234 12 now")[0].0, SensitiveKind::Phone);
        assert_eq!(
            kinds("call 0049-30-12 34 56 now")[0].0,
            SensitiveKind::Phone
        );
    }

    #[test]
    fn phones_in_international_formats() {
        for p in [
            "+1 (415) 555-0132",
            "+44 20 7946 0958",
            "001-668-040-8670x1711",
            "438.812.1525",
            "(027) 7972-805",
            "+91 98765 43210",
        ] {
            let found = kinds(&format!("call {p} now"));
            assert_eq!(found, [(SensitiveKind::Phone, p.to_string())], "{p}");
        }
        assert!(kinds("on 2024-05-17 we paid 3.14159").is_empty());
    }

    #[test]
    fn ssn_validity_rules() {
        assert_eq!(kinds("ssn 536-32-3065")[0].0, SensitiveKind::UsSsn);
        assert_ne!(
            kinds("ssn 666-32-3065").first().map(|f| f.0),
            Some(SensitiveKind::UsSsn)
        );
        assert_ne!(
            kinds("ssn 536-00-3065").first().map(|f| f.0),
            Some(SensitiveKind::UsSsn)
        );
    }

    #[test]
    fn iban_email_ip() {
        assert_eq!(
            kinds("iban GB82 WEST 1234 5698 7654 32.")[0].0,
            SensitiveKind::Iban
        );
        assert!(kinds("GB82WEST12345698765433").is_empty());
        assert_eq!(
            kinds("mail Lars.Wiik@jourrapide.com."),
            [(SensitiveKind::Email, "Lars.Wiik@jourrapide.com".into())]
        );
        assert_eq!(
            kinds("hosts 10.218.6.131 and 2001:db8::8a2e:370:7334"),
            [
                (SensitiveKind::IpAddress, "10.218.6.131".into()),
                (SensitiveKind::IpAddress, "2001:db8::8a2e:370:7334".into())
            ]
        );
        assert!(kinds("at 12:30:45 version 1.2").is_empty());
    }

    #[test]
    fn provider_secrets() {
        let cases = [
            ("AKIAIOSFODNN7EXAMPLE", SensitiveKind::AwsAccessKey),
            (
                "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
                SensitiveKind::GithubToken,
            ),
            ("glpat-abcdefghij0123456789", SensitiveKind::GitlabToken),
            (
                "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
                SensitiveKind::OpenaiKey,
            ),
            (
                "sk-ant-api03-abcdefghijklmnopqrstuvwxyz",
                SensitiveKind::AnthropicKey,
            ),
            ("sk_live_abcdefghijklmnop1234", SensitiveKind::StripeKey),
            ("xoxb-1234567890-abcdefghij", SensitiveKind::SlackToken),
            (
                "hf_abcdefghijklmnopqrstuvwxyz01234567",
                SensitiveKind::HuggingfaceToken,
            ),
            (
                "AIzaSyA-abcdefghijklmnopqrstuvwxyz01234",
                SensitiveKind::GcpApiKey,
            ),
            (
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJlXzEyMw",
                SensitiveKind::Jwt,
            ),
        ];
        for (secret, kind) in cases {
            assert_eq!(
                kinds(&format!("use {secret} here")),
                [(kind, secret.to_string())],
                "{secret}"
            );
        }
    }

    #[test]
    fn pem_and_assigned_credentials() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----";
        assert_eq!(
            kinds(&format!("k: {pem}\nbye")),
            [(SensitiveKind::PrivateKey, pem.into())]
        );
        assert_eq!(
            kinds(r#"{"db_password": "Xk9#mP2$vL8q"}"#),
            [(SensitiveKind::Credential, "Xk9#mP2$vL8q".into())]
        );
        assert!(kinds("password = your_password_here").is_empty());
        assert!(kinds("the key: important").is_empty());
    }

    /// `digits` (without its check digit) completed with a Luhn check digit.
    fn with_luhn(digits: &str) -> String {
        (0..10)
            .map(|d| format!("{digits}{d}"))
            .find(|n| luhn(&n.bytes().map(|b| b - b'0').collect::<Vec<_>>()))
            .unwrap()
    }

    #[test]
    fn cards_of_every_network_and_length() {
        let cases = [
            ("4", 13),    // Visa
            ("4", 19),    // Visa
            ("2221", 16), // Mastercard 2-series
            ("2720", 16), // Mastercard 2-series
            ("55", 16),   // Mastercard
            ("37", 15),   // Amex
            ("6011", 19), // Discover
            ("3095", 14), // Diners
            ("36", 19),   // Diners
            ("3530", 15), // JCB
            ("1800", 15), // JCB 15-digit
            ("2131", 15), // JCB 15-digit
            ("5018", 12), // Maestro
            ("6759", 19), // Maestro
            ("2200", 16), // Mir
            ("2204", 19), // Mir
            ("8200", 16), // RuPay
            ("9792", 16), // Troy
            ("1", 15),    // UATP
            ("31", 19),   // China T-Union
            ("9704", 19), // NAPAS
        ];
        for (prefix, len) in cases {
            let body = format!("{prefix}{}", "3".repeat(len - 1 - prefix.len()));
            let number = with_luhn(&body);
            assert_eq!(
                kinds(&format!("pay with {number} today")),
                [(SensitiveKind::CreditCard, number.clone())],
                "{prefix} × {len}"
            );
        }
        assert_eq!(
            kinds("card 4111.1111.1111.1111 ok"),
            [(SensitiveKind::CreditCard, "4111.1111.1111.1111".into())]
        );
        // UnionPay numbers without a Luhn digit are cards too.
        let unionpay = "6212345678901235";
        assert!(!luhn(
            &unionpay.bytes().map(|b| b - b'0').collect::<Vec<_>>()
        ));
        assert_eq!(kinds(unionpay)[0].0, SensitiveKind::CreditCard);
        // Other networks need the Luhn digit, the issuer range and the length.
        let visa = with_luhn("411111111111111");
        let wrong_check = format!("{}{}", &visa[..15], (visa.as_bytes()[15] - b'0' + 1) % 10);
        assert!(kinds(&wrong_check).is_empty(), "{wrong_check}");
        assert!(
            kinds(&with_luhn("3700000000000")).is_empty(),
            "Amex is 15 digits"
        );
        assert!(
            kinds(&with_luhn("7000000000000000")).is_empty(),
            "no network at 7"
        );
    }

    #[test]
    fn an_iban_ends_where_its_country_says() {
        assert_eq!(
            kinds("Pay to IBAN DE89 3704 0044 0532 0130 00 by Friday"),
            [(SensitiveKind::Iban, "DE89 3704 0044 0532 0130 00".into())]
        );
        assert_eq!(
            kinds("IBAN: GB29NWBK60161331926819, thanks"),
            [(SensitiveKind::Iban, "GB29NWBK60161331926819".into())]
        );
        assert_eq!(
            kinds("IBAN DE89-3704-0044-0532-0130-00."),
            [(SensitiveKind::Iban, "DE89-3704-0044-0532-0130-00".into())]
        );
        // One character too many in an unbroken token is no IBAN.
        assert!(kinds("DE893704004405320130001").is_empty());
    }

    #[test]
    fn ibans_of_registry_countries() {
        for iban in [
            "AL47 2121 1009 0000 0002 3569 8741",
            "BI42 1000 0100 0100 0033 2045 181",
            "EG38 0019 0005 0000 0000 2631 8000 2",
            "LC55 HEMM 0001 0001 0012 0012 0002 3015",
            "MU17 BOMM 0101 1010 3030 0200 000M UR",
            "NO93 8601 1117 947",
            "SC18 SSCB 1101 0000 0000 0000 1497 USD",
            "XK05 1212 0123 4567 8906",
            "VA59 0011 2300 0012 3456 78",
        ] {
            assert_eq!(
                kinds(&format!("account {iban} please")),
                [(SensitiveKind::Iban, iban.to_string())],
                "{iban}"
            );
        }
        assert!(IBAN_LENGTHS.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
    }

    #[test]
    fn fullwidth_and_invisible_forms_are_found_where_written() {
        let email = "ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ";
        assert_eq!(
            kinds(&format!("mail {email} now")),
            [(SensitiveKind::Email, email.into())]
        );
        let card = "4111\u{200B}1111\u{200B}1111\u{200B}1111";
        assert_eq!(
            kinds(&format!("card {card}.")),
            [(SensitiveKind::CreditCard, card.into())]
        );
        let key = "AKIA\u{200D}IOSF\u{2060}ODNN7EXAMPLE";
        assert_eq!(
            kinds(&format!("key {key} here")),
            [(SensitiveKind::AwsAccessKey, key.into())]
        );
        let fullwidth_card = "４１１１ １１１１ １１１１ １１１１";
        assert_eq!(kinds(fullwidth_card)[0].0, SensitiveKind::CreditCard);
        let bold = "𝐣𝐨𝐡𝐧@𝐞𝐱𝐚𝐦𝐩𝐥𝐞.𝐜𝐨𝐦";
        assert_eq!(kinds(bold), [(SensitiveKind::Email, bold.into())]);
        let double_struck = "𝔸𝕂𝕀𝔸𝕀𝕆𝕊𝔽𝕆𝔻ℕℕ𝟟𝔼𝕏𝔸𝕄ℙ𝕃𝔼";
        assert_eq!(
            kinds(&format!("key {double_struck} ok")),
            [(SensitiveKind::AwsAccessKey, double_struck.into())]
        );
        let accented = "4\u{0301}111 1111 1111 1111";
        assert_eq!(kinds(accented)[0].0, SensitiveKind::CreditCard);
        let arabic_digits = "٤١١١١١١١١١١١١١١١";
        assert_eq!(kinds(arabic_digits)[0].0, SensitiveKind::CreditCard);
        assert!(kinds("日本語のテキスト、メールなし。").is_empty());
    }

    #[test]
    fn key_value_credentials() {
        for (text, value) in [
            ("password=hunter22", "hunter22"),
            ("DB_PASS=s3cr3t!x", "s3cr3t!x"),
            ("export PGPASSWORD='Tr0ub4dor'", "Tr0ub4dor"),
            ("Authorization: Bearer abc123def456ghi", "abc123def456ghi"),
            ("-H 'authorization: Basic dXNlcjpwYXNz'", "dXNlcjpwYXNz"),
            ("api_key: a1b2c3d4e5", "a1b2c3d4e5"),
            (r#"{"secret": "my s3cret phrase"}"#, "my s3cret phrase"),
            (r#"{"clientSecret":"Zq9-Lm2"}"#, "Zq9-Lm2"),
            ("X-Api-Key: key-12345678", "key-12345678"),
            ("login --password hunter2x", "hunter2x"),
            ("Passwort: Geheim123", "Geheim123"),
            (
                "DATABASE_URL=postgres://app:S3cr3t!x@db.internal:5432/app",
                "S3cr3t!x",
            ),
            (
                "clone https://bob:tok3n!abc@git.example.net/repo.git",
                "tok3n!abc",
            ),
        ] {
            assert_eq!(
                kinds(text),
                [(SensitiveKind::Credential, value.to_string())],
                "{text}"
            );
        }
    }

    #[test]
    fn credential_names_without_a_secret_are_left_alone() {
        for text in [
            "password=",
            "password: ",
            "password=your_password_here",
            "password = <password>",
            "password=${DB_PASS}",
            "password=$DB_PASS",
            "password=os.getenv('DB_PASS')",
            "password=self.password",
            "DB_PASS=DB_PASSWORD_FILE",
            "password: str",
            "password: String,",
            "token: access_token",
            "max_tokens: 4096",
            "token_count=12345678",
            "\"password\": \"Passwort eingeben\"",
            "Bearer tokens are short-lived.",
            "the password: reset it weekly",
            "password: ********",
            "postgres://user:password@localhost/db",
            "https://example.com/a:b@c",
            "redis://:${REDIS_PASSWORD}@cache:6379",
            "see https://docs.example.net/path?x=1 and http://[::1]:8080/a@b",
        ] {
            assert!(kinds(text).is_empty(), "{text}: {:?}", kinds(text));
        }
    }
}
