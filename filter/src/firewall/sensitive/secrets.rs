//! Secrets: PEM private keys, credentials assigned to key/secret/password names,
//! passwords in URLs, and the checks that tell a real secret from a placeholder.

use super::*;

pub(super) fn private_keys(text: &str, found: &mut Vec<Finding>) {
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
pub(super) const SECRET_NAMES: &[&str] = &[
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
pub(super) const SECRET_LAST_WORDS: &[&str] = &[
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
pub(super) const SECRET_ENDINGS: &[&str] = &["password", "passwd", "secret", "token", "apikey"];

/// Words before a final `key` that make it a secret key (`api_key`, `AWS_SECRET_ACCESS_KEY`).
pub(super) const KEY_QUALIFIERS: &[&str] = &[
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
pub(super) const AUTH_SCHEMES: &[&str] = &["bearer", "basic", "token", "digest", "bot", "apikey"];

/// How surely a name announces a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SecretName {
    /// Its value is a secret when it looks random.
    Weak,
    /// Its value is a secret unless it is a placeholder or a reference.
    Strong,
}

/// The last two words of an identifier, split at `_`, `-`, `.` and lower-to-upper case
/// changes: (the one before the last, the last). Not collected: a name is read at every
/// `:` or `=` after a word, so at every few bytes of some texts.
fn last_two_words(name: &[u8]) -> (Option<&[u8]>, Option<&[u8]>) {
    fn shift<'a>(words: &mut (Option<&'a [u8]>, Option<&'a [u8]>), word: Option<&'a [u8]>) {
        if let Some(word) = word.filter(|w| !w.is_empty()) {
            *words = (words.1, Some(word));
        }
    }
    let mut words = (None, None);
    let mut start = 0;
    for (i, &b) in name.iter().enumerate() {
        let camel = b.is_ascii_uppercase()
            && i.checked_sub(1)
                .and_then(|p| name.get(p))
                .is_some_and(u8::is_ascii_lowercase);
        if matches!(b, b'_' | b'-' | b'.') || camel {
            shift(&mut words, name.get(start..i));
            start = if camel { i } else { i + 1 };
        }
    }
    shift(&mut words, name.get(start..));
    words
}

/// Whether `word` ends with `ending` (lowercase), in any case.
fn ends_with_ignore_case(word: &[u8], ending: &str) -> bool {
    word.len()
        .checked_sub(ending.len())
        .and_then(|k| word.get(k..))
        .is_some_and(|tail| tail.eq_ignore_ascii_case(ending.as_bytes()))
}

/// Whether `name` announces a secret, and how surely. The word lists are lowercase, so
/// comparing in any case is comparing the lowercased name.
pub(super) fn secret_name(name: &[u8]) -> Option<SecretName> {
    let is =
        |word: &[u8], list: &[&str]| list.iter().any(|w| word.eq_ignore_ascii_case(w.as_bytes()));
    let (before_last, last) = last_two_words(name);
    if let Some(last) = last {
        let strong = is(last, SECRET_LAST_WORDS)
            || SECRET_ENDINGS
                .iter()
                .any(|w| ends_with_ignore_case(last, w))
            || (last.eq_ignore_ascii_case(b"key")
                && before_last.is_some_and(|q| is(q, KEY_QUALIFIERS)));
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
pub(super) fn is_ident_byte(b: u8) -> bool {
    BYTE_CLASSES[usize::from(b)] & IDENT != 0
}

/// `name = value`, `"name": "value"`, `name: value`, `--name value` and
/// `Authorization: Bearer value`, where the name announces a secret ([`secret_name`])
/// and the value is one: random-looking for a name that only contains a secret word,
/// any real value (not empty, a placeholder or a reference to one) for a name that ends
/// in one. A quoted value under such a name runs to its closing quote.
pub(super) fn credentials(text: &str, found: &mut Vec<Finding>) {
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
pub(super) const MAX_USERINFO: usize = 256;

/// The password of a URL that carries one (`postgres://app:S3cr3t!@db:5432/x`,
/// `https://user:tok3n@host`): between the first `:` after `://` and the last `@`
/// before the host, when it is a real secret ([`is_real_secret`]). Each byte is read at
/// most once: the next search starts where the last URL's user part ended.
pub(super) fn url_passwords(text: &str, found: &mut Vec<Finding>) {
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
pub(super) fn after_auth_scheme(bytes: &[u8], at: usize) -> usize {
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
pub(super) const PLACEHOLDERS: &[&str] = &[
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

pub(super) fn is_placeholder(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    PLACEHOLDERS.iter().any(|p| lower.contains(p))
}

pub(super) fn looks_random(value: &str) -> bool {
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
pub(super) fn is_real_secret(value: &str) -> bool {
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
pub(super) fn is_identifier_path(bytes: &[u8]) -> bool {
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

pub(super) fn shannon_entropy(s: &str) -> f32 {
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
