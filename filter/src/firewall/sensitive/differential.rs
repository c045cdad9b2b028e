//! The sensitive scan against the readings it replaced, kept here as oracles: the digit
//! runs' judge and the folding of a text must give the same findings (kinds, positions)
//! and the same folded text, so the same redactions, over the dev set, generated
//! values and every adversarial shape.

use super::*;

/// [`classify_number`] as it was: every run read in full.
fn classify_number_oracle(text: &str, start: usize, run: &str, found: &mut Vec<Finding>) {
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
        if let Some(rest) = run.get(date..) {
            classify_number_oracle(text, start + date, rest, found);
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

/// [`FoldedText::of`] as it was: every character looked up.
fn folded_text_oracle(source: &str) -> Option<(String, Vec<(usize, usize)>)> {
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
    Some((text, from))
}

/// The texts of the dev set and the Presidio records, where the shared data is checked
/// out beside the repository (`shared/data`).
fn data_texts() -> Vec<String> {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(data) = manifest
        .ancestors()
        .map(|dir| dir.join("shared/data"))
        .find(|dir| dir.is_dir())
    else {
        return Vec::new();
    };
    let mut texts = Vec::new();
    let read = |file: &str| std::fs::read_to_string(data.join(file)).unwrap_or_default();
    for line in read("injection/injection-dev.jsonl").lines() {
        if let Ok(row) = serde_json::from_str::<serde_json::Value>(line) {
            texts.extend(row["text"].as_str().map(str::to_string));
        }
    }
    let records = read("pii/presidio-generated-small.json");
    if let Ok(serde_json::Value::Array(records)) = serde_json::from_str(&records) {
        for r in records {
            texts.extend(r["full_text"].as_str().map(str::to_string));
        }
    }
    texts
}

/// The pieces the scanner looks for, valid and nearly so, and what may surround them.
const PIECES: &[&str] = &[
    "john.doe@example.com",
    "ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ",
    "a@b",
    "x@y.c",
    "+1 (415) 555-0132",
    "+44 20 7946 0958",
    "001-668-040-8670x1711",
    "438.812.1525",
    "(027) 7972-805",
    "+91 98765 43210",
    "2125-55-1234",
    "0049-30-12 34 56",
    "DE89 3704 0044 0532 0130 00",
    "GB82WEST12345698765432",
    "NL91ABNA0417164300",
    "de89370400440532013000",
    "DE89-3704",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "378282246310005",
    "5555555555554444",
    "6011111111111117",
    "4111\u{200B}1111\u{200B}1111\u{200B}1111",
    "４１１１１１１１１１１１１１１１",
    "1700000000000",
    "1234567812345678",
    "123-45-6789",
    "078-05-1120",
    "666-12-3456",
    "192.168.1.10",
    "10.0.0.1",
    "0.0.0.0",
    "01.2.3.4",
    "256.1.1.1",
    "1.2.3.4",
    "1.2.3",
    "fe80::1:2:3:4",
    "2001:db8::ff00:42:8329",
    "::1",
    "::ffff:10.0.0.1",
    "a:b:c",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "sk-ant-abcdefghijklmnopqrstuvwxyz",
    "sk-abcdefghijklmnopqrstuvwx",
    "xoxb-1234567890-abcdefghij",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "password=Xk9#mP2$vL8q",
    "api_key: 'abcdef0123456789abcdef'",
    "https://user:pa55w0rd@host.example/x",
    "http://x.y/?q=1",
    "1970-11-23 02:26:26",
    "2013/03/14 12:53",
    "23.11.1970 02:26",
    "11/23/1970 212 555 1234",
    "3.14159",
    "1,234,567.89",
    "12.5%",
    "v1.2.3",
    "page 12",
    "x1711",
    "12",
    "1 2 3 4 5 6 7 8",
    "1-2-3-4-5-6-7-8",
    "(0)",
    "+",
    "(",
    "-",
    ".",
    "/",
    ":",
    "@",
    "_",
    "x",
    " ",
    "\n",
    "\u{00A0}",
    "\u{2011}",
    "\u{0301}",
    "٣",
    "१२३",
    "𝟏𝟐𝟑",
    "ａ",
    "é",
    "字",
];

/// Texts made of [`PIECES`], each joined to the next by every few-byte glue, from a
/// fixed seed: values beside each other, inside words and split by separators.
fn generated_texts() -> Vec<String> {
    let glue = [
        "", " ", "-", ".", "x", ":", "a", "\u{200B}", "/", "(", ")", ",", "@", "0",
    ];
    let mut texts = Vec::new();
    for (i, a) in PIECES.iter().enumerate() {
        texts.push((*a).to_string());
        for (j, b) in PIECES.iter().enumerate() {
            let g = glue[(i * 7 + j * 3) % glue.len()];
            texts.push(format!("{a}{g}{b}"));
        }
    }
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    for _ in 0..3000 {
        let mut text = String::new();
        for _ in 0..8 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let k = usize::try_from(seed % 1_000_003).unwrap_or(0);
            text.push_str(PIECES[k % PIECES.len()]);
            text.push_str(glue[k / PIECES.len() % glue.len()]);
        }
        texts.push(text);
    }
    texts
}

fn all_texts() -> Vec<String> {
    let mut texts = data_texts();
    texts.extend(generated_texts());
    for (_, unit) in crate::firewall::ADVERSARIAL_SHAPES {
        texts.push(unit.repeat(4096 / unit.len().max(1) + 1));
    }
    texts
}

#[test]
fn number_runs_find_what_the_full_reading_found() {
    let texts = all_texts();
    assert!(texts.len() > 10_000, "{} texts", texts.len());
    for text in &texts {
        let folded = folded(text);
        let (mut new, mut old) = (Vec::new(), Vec::new());
        number_runs_with(&folded, &mut new, classify_number);
        number_runs_with(&folded, &mut old, classify_number_oracle);
        assert_eq!(new, old, "{text:?}");
    }
}

#[test]
fn folding_reads_texts_as_before() {
    for text in all_texts() {
        let new = FoldedText::of(&text).map(|f| (f.text, f.from));
        assert_eq!(new, folded_text_oracle(&text), "{text:?}");
    }
}

/// [`secret_name`] as it was: the name's words collected, the last ones lowercased.
fn secret_name_oracle(name: &[u8]) -> Option<SecretName> {
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
    let lower = |w: &[u8]| w.to_ascii_lowercase();
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

/// Names of every shape a credential's name takes, in every case.
const NAMES: &[&str] = &[
    "password",
    "DB_PASS",
    "clientSecret",
    "Authorization",
    "PGPASSWORD",
    "csrftoken",
    "api_key",
    "AWS_SECRET_ACCESS_KEY",
    "access-key",
    "signing.key",
    "MasterKey",
    "key",
    "monkey",
    "keyboard",
    "api",
    "_key",
    "key_",
    "--password",
    "x.y.z",
    "a__b",
    "aB",
    "Ab",
    "ABC",
    "apiKEY",
    "Passwort",
    "user_pwd",
    "myToken2",
    "tokenizer",
    "secret_name",
    "fe80",
    "1",
    "",
    "-",
    "é_key",
    "SÉCRET",
    "authKey",
    "client.Secret.",
    "bearer",
    "APIKEY",
    "pass_",
];

#[test]
fn secret_word_lists_are_lowercase() {
    for list in [SECRET_LAST_WORDS, SECRET_ENDINGS, KEY_QUALIFIERS] {
        for w in list {
            assert_eq!(*w, w.to_ascii_lowercase(), "{w}");
        }
    }
}

#[test]
fn names_read_as_before() {
    let mut names: Vec<Vec<u8>> = NAMES.iter().map(|n| n.as_bytes().to_vec()).collect();
    for a in NAMES {
        for b in NAMES {
            names.push(format!("{a}{b}").into_bytes());
            names.push(format!("{a}_{b}").into_bytes());
        }
    }
    for text in all_texts() {
        let bytes = text.as_bytes();
        let mut start = 0;
        for (i, b) in bytes
            .iter()
            .copied()
            .enumerate()
            .chain([(bytes.len(), b' ')])
        {
            if !is_ident_byte(b) {
                names.extend(bytes.get(start..i).map(<[u8]>::to_vec));
                start = i + 1;
            }
        }
        names.extend(text.split_whitespace().map(|w| w.as_bytes().to_vec()));
    }
    for name in &names {
        let name = name.as_slice();
        assert_eq!(secret_name(name), secret_name_oracle(name), "{name:?}");
    }
}
