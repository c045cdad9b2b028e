//! The tokeniser: normalised text to words, with a position and a sentence index each.
//! Scripts written without spaces (Chinese, Japanese, Thai) become overlapping character
//! pairs, so rules and the learned scorer see units of about a word in every script, and
//! the lexicon can find longer words in them (see `classes`). One pass, linear.

use crate::work;

/// One token of normalised text: a word, a CJK/Thai character pair, or `:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in super::super) struct Token<'t> {
    pub text: &'t str,
    pub start: usize,
    pub end: usize,
    /// Position in half-words: a word advances it by 2, a Chinese or Japanese character
    /// pair by 1 (pairs overlap), a Thai pair by 1 every other pair (Thai spells a word in
    /// about twice as many characters, vowel and tone marks included), so rule gaps mean
    /// about the same amount of text in every script.
    pub pos: usize,
    /// Index of the sentence (split at `.`, `!`, `?`, `;`, newlines and their CJK forms).
    pub sentence: u32,
}

pub(super) fn is_pair_script(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0E7F      // Thai
        | 0x3040..=0x30FF    // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xF900..=0xFAFF) // CJK compatibility ideographs
}

fn is_thai(c: char) -> bool {
    matches!(c as u32, 0x0E00..=0x0E7F)
}

fn ends_sentence(c: char, next: Option<char>) -> bool {
    match c {
        '\n' | ';' | '。' | '！' | '？' | '；' | '।' => true,
        '.' | '!' | '?' => !next.is_some_and(|n| n.is_ascii() && !n.is_whitespace()),
        _ => false,
    }
}

/// Letters, digits, and the vowel signs and viramas of Indic scripts (some of which are
/// not `Alphabetic` in Unicode but sit inside words).
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c as u32, 0x0900..=0x0963 | 0x0966..=0x0DFF)
}

/// French and Italian elisions (`l'`, `n'`, `qu'`, `un'`) are split off the next word.
fn is_elision(word: &str) -> bool {
    matches!(
        word,
        "l" | "n" | "t" | "d" | "s" | "j" | "m" | "c" | "qu" | "un" | "dell" | "all" | "nell"
    )
}

/// Splits normalised text into tokens. Scripts written without spaces (Chinese, Japanese,
/// Thai) become overlapping character pairs, so a two-character word is a token.
pub(in super::super) fn tokenize<'t>(text: &'t str) -> Vec<Token<'t>> {
    work::charge(text.len());
    if text.is_ascii() {
        return tokenize_ascii(text);
    }
    tokenize_chars(text)
}

/// [`tokenize`] character by character (any text).
fn tokenize_chars<'t>(text: &'t str) -> Vec<Token<'t>> {
    let mut tokens = Vec::with_capacity(text.len() / 5 + 1);
    let mut chars = text.char_indices().peekable();
    let mut pos = 0usize;
    let mut sentence = 0u32;
    let mut push =
        |tokens: &mut Vec<Token<'t>>, start: usize, end: usize, step: usize, sentence| {
            if let Some(t) = text.get(start..end) {
                pos += step;
                tokens.push(Token {
                    text: t,
                    start,
                    end,
                    pos,
                    sentence,
                });
            }
        };
    while let Some((start, c)) = chars.next() {
        if is_pair_script(c) {
            let mut prev = start;
            let mut single = true;
            let mut thai_pairs = 0usize;
            while let Some(&(i, next)) = chars.peek() {
                if !is_pair_script(next) {
                    break;
                }
                let step = if is_thai(next) {
                    thai_pairs += 1;
                    thai_pairs % 2
                } else {
                    1
                };
                push(&mut tokens, prev, i + next.len_utf8(), step, sentence);
                single = false;
                prev = i;
                chars.next();
            }
            if single {
                push(&mut tokens, start, start + c.len_utf8(), 2, sentence);
            }
        } else if is_word_char(c) {
            let mut end = start + c.len_utf8();
            while let Some(&(i, next)) = chars.peek() {
                // ASCII letters and digits (most text) join the word, nothing more to see.
                if next.is_ascii_alphanumeric() {
                    end = i + 1;
                    chars.next();
                    continue;
                }
                let joins = is_word_char(next) && !is_pair_script(next);
                let inner = matches!(next, '\'' | '’' | '-' | '_')
                    && text
                        .get(i + next.len_utf8()..)
                        .and_then(|rest| rest.chars().next())
                        .is_some_and(|after| is_word_char(after) && !is_pair_script(after));
                if !(joins || inner) {
                    break;
                }
                if matches!(next, '\'' | '’') && text.get(start..end).is_some_and(is_elision) {
                    break;
                }
                end = i + next.len_utf8();
                chars.next();
            }
            push(&mut tokens, start, end, 2, sentence);
        } else if c == ':' {
            push(&mut tokens, start, start + 1, 2, sentence);
        } else if ends_sentence(c, chars.peek().map(|&(_, n)| n)) {
            sentence = sentence.saturating_add(1);
        }
    }
    tokens
}

/// ASCII letters and digits: the word bytes of [`tokenize_ascii`] (one load per byte).
static ASCII_WORD: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    table
};

/// [`tokenize`] of ASCII text (most text), on bytes: no pair scripts, and a word
/// character is an ASCII letter or digit.
fn tokenize_ascii(text: &str) -> Vec<Token<'_>> {
    let bytes = text.as_bytes();
    let word = |b: &u8| ASCII_WORD[usize::from(*b)];
    let mut tokens = Vec::with_capacity(text.len() / 5 + 1);
    let mut pos = 0usize;
    let mut sentence = 0u32;
    let mut i = 0usize;
    while let Some(&c) = bytes.get(i) {
        let start = i;
        if word(&c) {
            let mut end = i + 1;
            while let Some(next) = bytes.get(end) {
                if word(next) {
                    end += 1;
                    continue;
                }
                let inner =
                    matches!(next, b'\'' | b'-' | b'_') && bytes.get(end + 1).is_some_and(word);
                if !inner || (*next == b'\'' && text.get(start..end).is_some_and(is_elision)) {
                    break;
                }
                end += 1;
            }
            i = end;
        } else {
            i += 1;
            if c != b':' {
                // `.`, `!` and `?` end a sentence before a space or the end of the text
                // (char::is_whitespace of an ASCII byte).
                let ends = match c {
                    b'\n' | b';' => true,
                    b'.' | b'!' | b'?' => !bytes
                        .get(i)
                        .is_some_and(|n| !matches!(n, b'\t'..=b'\r' | b' ')),
                    _ => false,
                };
                if ends {
                    sentence = sentence.saturating_add(1);
                }
                continue;
            }
        }
        if let Some(t) = text.get(start..i) {
            pos += 2;
            tokens.push(Token {
                text: t,
                start,
                end: i,
                pos,
                sentence,
            });
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_tokens_are_the_character_readings() {
        let units = [
            "word", "l'", "qu'", "a", "9", "'", "-", "_", ":", ".", "!", "?", ";", "\n", " ", "\t",
            "\x0b", "\x1c", "x-y", "don't", "l'homme", ",", "\"", "A1",
        ];
        let mut seed = 11u64;
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..(seed % 9) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                text.push_str(units[(seed >> 33) as usize % units.len()]);
            }
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            assert_eq!(tokenize_ascii(&text), tokenize_chars(&text), "{text:?}");
        }
    }
}
