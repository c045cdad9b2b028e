//! Where a streamed text may still grow into a sensitive value ([`growing_tail`]):
//! what a stream must hold back, and nothing more.

use super::*;

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
pub(in crate::firewall) fn growing_tail(text: &str, limit: usize) -> usize {
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
pub(super) fn growing_in(b: &[u8]) -> usize {
    // Each rule reads back from the end a bounded stretch, at most all of `b`.
    work::charge(8 * b.len().min(512));
    // A rule that needs a byte the end of the text lacks cannot find anything: most
    // prose has no digit, quote or colon near its end, and a stream asks once per word.
    let near = Nearby::of(b);
    [
        Some(unfinished_word(b)),
        near.digit_within_3.then(|| open_number_run(b)),
        near.digit_within_72.then(|| open_iban(b)),
        Some(open_assignment(b)),
        near.quote_within_260.then(|| open_secret_quote(b)),
        near.dash_within_75.then(|| open_pem_header(b)),
        near.colon_within_259.then(|| open_url_userinfo(b)),
    ]
    .into_iter()
    .flatten()
    .flatten()
    .min()
    .unwrap_or(b.len())
}

/// Whether a byte of each kind a rule of [`growing_in`] needs lies within the last so
/// many bytes of a text: a digit (within 3 bytes for a number run, which allows two
/// separators in a row, and within an IBAN's span), a quote, a dash (a PEM header), a
/// colon (a URL's `://`).
pub(super) struct Nearby {
    digit_within_3: bool,
    digit_within_72: bool,
    dash_within_75: bool,
    colon_within_259: bool,
    quote_within_260: bool,
}

/// [`Nearby`]'s kinds of byte, by byte value, one bit each (0: none of them): one load
/// and one `or` per byte, where a `match` on ranges would compare each byte several
/// times.
const NEARBY_KIND: [u8; 256] = {
    let mut kinds = [0u8; 256];
    let mut b = b'0';
    while b <= b'9' {
        kinds[b as usize] = NEAR_DIGIT;
        b += 1;
    }
    kinds[b'"' as usize] = NEAR_QUOTE;
    kinds[b'\'' as usize] = NEAR_QUOTE;
    kinds[b'`' as usize] = NEAR_QUOTE;
    kinds[b'-' as usize] = NEAR_DASH;
    kinds[b':' as usize] = NEAR_COLON;
    kinds
};
const NEAR_DIGIT: u8 = 1;
const NEAR_QUOTE: u8 = 2;
const NEAR_DASH: u8 = 4;
const NEAR_COLON: u8 = 8;

impl Nearby {
    fn of(b: &[u8]) -> Nearby {
        // The kinds found ever further back, each stretch read once: a text a stream
        // asks about (its context and the new word) is mostly read in the first.
        let within_3 = kinds_between(b, 0, 3);
        let within_72 = within_3 | kinds_between(b, 3, 72);
        let within_75 = within_72 | kinds_between(b, 72, 75);
        let within_259 = within_75 | kinds_between(b, 75, 259);
        let within_260 = within_259 | kinds_between(b, 259, 260);
        Nearby {
            digit_within_3: within_3 & NEAR_DIGIT != 0,
            digit_within_72: within_72 & NEAR_DIGIT != 0,
            dash_within_75: within_75 & NEAR_DASH != 0,
            colon_within_259: within_259 & NEAR_COLON != 0,
            quote_within_260: within_260 & NEAR_QUOTE != 0,
        }
    }
}

/// The [`NEARBY_KIND`] bits of the bytes `near..far` from the end of `b` (0: its last
/// byte).
fn kinds_between(b: &[u8], near: usize, far: usize) -> u8 {
    let stretch = b
        .get(b.len().saturating_sub(far)..b.len().saturating_sub(near))
        .unwrap_or_default();
    stretch
        .iter()
        .fold(0, |kinds, &c| kinds | NEARBY_KIND[usize::from(c)])
}

/// A byte a value can be made of: printable ASCII (folded text keeps other characters
/// as written, and no value but a quoted one or a URL's user part holds them).
pub(super) fn is_value_byte(b: u8) -> bool {
    b > b' ' && b < 0x7F
}

/// The last word when the text does not end with a space.
pub(super) fn unfinished_word(b: &[u8]) -> Option<usize> {
    let start = b.len() - b.iter().rev().take_while(|&&c| is_value_byte(c)).count();
    (start < b.len()).then_some(start)
}

/// A run of digits and separators at the end that another digit would continue
/// ([`number_runs`] allows two separators in a row): from its start, when it holds a
/// digit.
pub(super) fn open_number_run(b: &[u8]) -> Option<usize> {
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
pub(super) fn open_iban(b: &[u8]) -> Option<usize> {
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
pub(super) fn back_over_spaces(b: &[u8], mut k: usize) -> usize {
    while k > 0 && b.get(k - 1) == Some(&b' ') {
        k -= 1;
    }
    k
}

/// The start of the secret name whose assignment ends at `k` (`name = `, `"name": `,
/// `name => `, `name := `), skipping the spaces before `k`; `None` when there is none.
pub(super) fn secret_name_before(b: &[u8], k: usize) -> Option<(usize, SecretName)> {
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
pub(super) fn open_assignment(b: &[u8]) -> Option<usize> {
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
pub(super) fn open_secret_quote(b: &[u8]) -> Option<usize> {
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
pub(super) fn open_pem_header(b: &[u8]) -> Option<usize> {
    const HEADER: &[u8] = b"-----BEGIN ";
    let from = b.len().saturating_sub(64 + HEADER.len());
    let tail = b.get(from..)?;
    let at = tail.windows(HEADER.len()).rposition(|w| w == HEADER)?;
    let after = tail.get(at + HEADER.len()..)?;
    (!after.windows(5).any(|w| w == b"-----")).then_some(from + at)
}

/// A URL whose user part is still arriving (`postgres://app:S3cr`), from its `://`.
pub(super) fn open_url_userinfo(b: &[u8]) -> Option<usize> {
    let from = b.len().saturating_sub(MAX_USERINFO + 3);
    let tail = b.get(from..)?;
    let at = tail.windows(3).rposition(|w| w == b"://")?;
    let rest = tail.get(at + 3..)?;
    rest.iter()
        .all(|&c| c > b' ' && !matches!(c, b'/' | b'?' | b'#' | b'"' | b'\'' | b'<' | b'>' | b'`'))
        .then_some(from + at)
}
