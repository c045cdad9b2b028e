//! Values in text: e-mail addresses, number runs (payment cards, phone numbers, US
//! SSNs, IPv4), IBANs and IPv6 addresses, each validated before it counts.

use super::*;

pub(super) fn is_local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

pub(super) fn emails(text: &str, found: &mut Vec<Finding>) {
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
pub(super) fn number_runs(text: &str, found: &mut Vec<Finding>) {
    number_runs_with(text, found, classify_number);
}

/// How a run is judged: [`classify_number`] (a test passes the reading it replaced).
pub(super) type Classify = fn(&str, usize, &str, &mut Vec<Finding>);

/// [`number_runs`], judging each run with `classify`.
pub(super) fn number_runs_with(text: &str, found: &mut Vec<Finding>, classify: Classify) {
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
                classify(text, start, text_run, found);
            }
        }
        i = j.max(i + 1);
    }
}

/// The fewest digits any value read from a run holds: an IPv4 address (`1.2.3.4`). A
/// card, SSN or phone number holds more, and a date is followed by one of these.
const MIN_VALUE_DIGITS: usize = 4;

pub(super) fn classify_number(text: &str, start: usize, run: &str, found: &mut Vec<Finding>) {
    // A handful of passes over the run (at most 40 bytes).
    work::charge(8 * run.len());
    // Most runs are a number or two (`:1:2:3`, `page 12`): nothing to read in them, and
    // no need to collect their digits.
    if run.bytes().filter(u8::is_ascii_digit).count() < MIN_VALUE_DIGITS {
        return;
    }
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

pub(super) fn is_ssn_shape(run: &str) -> bool {
    let b = run.as_bytes();
    b.len() == 11
        && (b.get(3) == Some(&b'-') && b.get(6) == Some(&b'-')
            || b.get(3) == Some(&b' ') && b.get(6) == Some(&b' '))
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 3 || i == 6 || c.is_ascii_digit())
}

/// SSA rules: area not 000, 666 or 900–999; group not 00; serial not 0000.
pub(super) fn ssn_valid(d: &[u8]) -> bool {
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

pub(super) fn luhn(d: &[u8]) -> bool {
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
pub(super) struct CardRange {
    from: u32,
    to: u32,
    digits: usize,
    lengths: u32,
    luhn: bool,
}

/// Bit mask of the card lengths `min..=max`.
pub(super) const fn lengths(min: u32, max: u32) -> u32 {
    (u32::MAX >> (31 - max)) & !((1 << min) - 1)
}

pub(super) const fn card(from: u32, to: u32, lengths: u32) -> CardRange {
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
pub(super) const CARD_RANGES: &[CardRange] = &[
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
pub(super) const CARD_DIGITS: std::ops::RangeInclusive<usize> = 12..=19;

/// Whether `d` (the digits of a number) is a card number of some network: its issuer
/// range, its length and, where the network uses one, its Luhn check digit.
pub(super) fn is_card_number(d: &[u8]) -> bool {
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

pub(super) fn looks_like_date_or_decimal(run: &str) -> bool {
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
pub(super) fn date_then_space(run: &str) -> Option<usize> {
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
pub(super) fn ibans(text: &str, found: &mut Vec<Finding>) {
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
pub(super) const IBAN_LENGTHS: &[([u8; 2], usize)] = &[
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
pub(super) fn iban_length(country: [u8; 2]) -> Option<usize> {
    IBAN_LENGTHS
        .binary_search_by(|(code, _)| code.cmp(&country))
        .ok()
        .and_then(|k| IBAN_LENGTHS.get(k))
        .map(|&(_, len)| len)
}

/// ISO 13616 mod-97 check of a compact, uppercase IBAN.
pub(super) fn iban_checksum_ok(iban: &[u8]) -> bool {
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

pub(super) fn ipv6(text: &str, found: &mut Vec<Finding>) {
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
pub(super) fn ipv6_candidate(text: &str, start: usize, end: usize, found: &mut Vec<Finding>) {
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
