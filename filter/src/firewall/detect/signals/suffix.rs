//! A machine-searched adversarial suffix after a plain request.

use super::super::super::weights::SUFFIX_WEIGHT;
use super::super::super::Category;
use super::super::Hit;
use crate::work;

/// A plain request followed by a machine-searched suffix (GCG, DSN and similar attacks
/// append tokens optimised to make the model comply): after at least
/// [`SUFFIX_PLAIN_WORDS`] plain words, a tail in which pieces of words are glued to
/// brackets and symbols (`](textit`, `={\TV`, `$\{fen`) and brackets do not pair up.
/// Found on the raw text (symbols intact), at the end of the last line of a short text: a
/// suffix is appended to a one-line request, while code, markup and formulas come in
/// several lines, in fences, with closing tags or between `$` pairs, with their brackets
/// paired. One pass over the last line; a small stack of open brackets, capped.
pub(in super::super::super) fn scan_adversarial_suffix(raw: &str) -> Option<Hit> {
    // The split into lines, then a few passes over the last line.
    work::charge(raw.len());
    const MAX_LINES: usize = 3;
    const TAIL_CHUNKS: usize = 40;
    const MAX_DOLLARS: usize = 3;
    let mut lines = 0;
    let mut last = None;
    let mut offset = 0;
    for line in raw.split('\n') {
        if !line.trim().is_empty() {
            lines += 1;
            if lines > MAX_LINES {
                return None;
            }
            last = Some((offset, line));
        }
        offset += line.len() + 1;
    }
    let (line_start, line) = last?;
    work::charge(8 * line.len());
    // No glued chunk without one of its symbols: no suffix.
    if !has_glue_symbol(line) {
        return None;
    }
    let markup = line.contains("```") || line.contains("</");
    if markup || line.matches('$').nth(MAX_DOLLARS).is_some() {
        return None;
    }
    let mut plain = 0;
    let mut tail_start = None;
    let mut glued = 0;
    let mut chunks = 0;
    let mut unpaired = 0;
    let mut open: Vec<u8> = Vec::new();
    let mut end = 0;
    // Chunks are slices of `line`: their offset is the distance between the pointers.
    let base = line.as_ptr() as usize;
    for chunk in line.split_whitespace() {
        let at = chunk.as_ptr() as usize - base;
        if tail_start.is_none() {
            if plain >= SUFFIX_PLAIN_WORDS && is_glued(chunk) {
                tail_start = Some(at);
            } else {
                plain += usize::from(is_plain_word(chunk));
                continue;
            }
        }
        chunks += 1;
        if chunks > TAIL_CHUNKS {
            // Symbols in the middle of a long line: a template or data, not a suffix.
            return None;
        }
        glued += usize::from(is_glued(chunk));
        end = at + chunk.len();
        for b in chunk.bytes() {
            match b {
                b'(' | b'[' | b'{' if open.len() < 64 => open.push(b),
                b'(' | b'[' | b'{' => unpaired += 1,
                b')' | b']' | b'}' => {
                    let opener = match b {
                        b')' => b'(',
                        b']' => b'[',
                        _ => b'{',
                    };
                    if open.last() == Some(&opener) {
                        open.pop();
                    } else {
                        unpaired += 1;
                    }
                }
                _ => {}
            }
        }
    }
    let start = tail_start?;
    unpaired += open.len();
    let suffix = (glued >= 1 && unpaired >= 2) || glued >= 3;
    suffix.then(|| Hit {
        name: "adversarial-suffix",
        category: Category::AdversarialSuffix,
        weight: SUFFIX_WEIGHT,
        start: line_start + start,
        end: line_start + end,
    })
}

/// Plain words before a suffix: the request it is appended to.
const SUFFIX_PLAIN_WORDS: usize = 8;

/// A word of letters (hyphens and apostrophes inside), with punctuation around it.
fn is_plain_word(chunk: &str) -> bool {
    let word = chunk.trim_matches(|c: char| is_word_edge(c) || matches!(c, '«' | '»'));
    !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_alphabetic() || matches!(c, '-' | '\'' | '’'))
}

/// Quotes and sentence punctuation around a word.
fn is_word_edge(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | '“' | '”' | '‘' | '’' | '.' | ',' | ';' | ':' | '!' | '?' | '(' | ')'
    )
}

/// Letters glued to a bracket or symbol inside the chunk (`](textit`, `={\TV`, `${x`),
/// not a word in brackets (`[City]`, `\[topic\]`), inline code (`` `f()` ``), a price
/// (`$/month`), a URL or an address.
fn is_glued(chunk: &str) -> bool {
    // A necessary condition, and rare in prose: most words end here.
    if !has_glue_symbol(chunk)
        || chunk.contains("://")
        || chunk.starts_with("www.")
        || chunk.contains('@')
    {
        return false;
    }
    let edge = |c: char| {
        is_word_edge(c)
            || matches!(c, '[' | ']' | '{' | '}' | '<' | '>' | '*' | '`' | '\\')
            || (!c.is_ascii() && !c.is_alphanumeric())
    };
    let core = chunk.trim_matches(edge);
    let symbol = core.contains(|c: char| {
        matches!(
            c,
            '{' | '}' | '[' | ']' | '<' | '>' | '|' | '^' | '~' | '=' | '`'
        )
    }) || core.split('$').skip(1).any(|after| {
        after.starts_with(|c: char| c.is_ascii_alphabetic() || matches!(c, '{' | '(' | '\\'))
    });
    symbol && core.contains(char::is_alphabetic)
}

/// Whether `text` holds a byte [`is_glued`] needs (a bracket or symbol, or `$`).
fn has_glue_symbol(text: &str) -> bool {
    text.bytes().any(|b| GLUE_SYMBOLS[usize::from(b)])
}

static GLUE_SYMBOLS: [bool; 256] = {
    let mut table = [false; 256];
    let symbols = b"{}[]<>|^~=`$";
    let mut i = 0;
    while i < symbols.len() {
        table[symbols[i] as usize] = true;
        i += 1;
    }
    table
};
