//! Word → class lookup: the compiled word classes of `lexicon`, for exact words and
//! prefixes, looked up in one pass over each token's bytes.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::super::lexicon::CLASSES;
use super::super::normalize::normalize;
use super::tokenize::is_pair_script;

/// Letters of the Arabic script (Arabic, Persian, Urdu).
fn is_arabic_letter(c: char) -> bool {
    matches!(c as u32, 0x0620..=0x064A | 0x066E..=0x06D3)
}

/// Short vowels and other marks written on Arabic letters, and the tatweel (a
/// stretching stroke): optional in writing, so a word is looked up without them.
fn is_arabic_mark(c: char) -> bool {
    matches!(c as u32, 0x0610..=0x061A | 0x0640 | 0x064B..=0x065F | 0x0670 | 0x06D6..=0x06ED)
}

/// Identity hasher for keys that already are hashes.
#[derive(Default)]
struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type HashKeyed<V> = HashMap<u64, V, BuildHasherDefault<PreHashed>>;

/// FNV-1a, for the small table every token is looked up in (SipHash's defence
/// against chosen keys costs more than the lookup, and the keys are our own words).
pub(super) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(FNV_OFFSET)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = fnv_extend(self.0, bytes);
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv_extend(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Word → class bit set, for exact words and prefixes. Both tables are keyed by the FNV
/// hash of the entry, so one pass over a token's bytes, extending the hash one character
/// at a time, looks up every prefix and then the whole word; a hit is confirmed against
/// the stored entry.
#[derive(Debug)]
pub(super) struct Lexicon {
    exact: HashKeyed<Vec<(String, u128)>>,
    prefix: HashKeyed<Vec<(String, u128)>>,
    /// Hashes of the prefixes, as bits of a small filter: most stems of most words are
    /// no prefix, and one bit answers that without probing the table.
    prefix_filter: Box<[u64; PREFIX_FILTER_WORDS]>,
    longest_prefix_chars: usize,
    /// Length of the shortest ASCII prefix: no shorter stem of an ASCII word is probed.
    shortest_ascii_prefix: usize,
    /// Words of three or more characters in scripts written without spaces (Thai,
    /// Chinese, Japanese), found in the run of text from a token's first character (see
    /// [`Lexicon::run_words`]).
    runs: HashKeyed<Vec<(String, u128)>>,
    longest_run_chars: usize,
    /// Hashes of the first two characters of the run words, as filter bits: a pair that
    /// starts no word (most) is passed over without reading further.
    run_filter: Box<[u64; PREFIX_FILTER_WORDS]>,
    pub(super) names: HashMap<&'static str, u128>,
}

fn insert(table: &mut HashKeyed<Vec<(String, u128)>>, word: String, mask: u128) {
    let bucket = table
        .entry(fnv_extend(FNV_OFFSET, word.as_bytes()))
        .or_default();
    match bucket.iter_mut().find(|(w, _)| *w == word) {
        Some((_, m)) => *m |= mask,
        None => bucket.push((word, mask)),
    }
}

/// Size of [`Lexicon::prefix_filter`] in 64-bit words (32 Kibit for some 2,000 prefixes).
const PREFIX_FILTER_WORDS: usize = 512;

fn filter_bit(hash: u64) -> (usize, u64) {
    let bit = (hash ^ (hash >> 32)) as usize % (PREFIX_FILTER_WORDS * 64);
    (bit / 64, 1u64 << (bit % 64))
}

fn lookup(table: &HashKeyed<Vec<(String, u128)>>, hash: u64, word: &str) -> u128 {
    table
        .get(&hash)
        .and_then(|bucket| bucket.iter().find(|(w, _)| w == word))
        .map_or(0, |(_, m)| *m)
}

impl Lexicon {
    pub(super) fn compile() -> Result<Lexicon, String> {
        if CLASSES.len() > 128 {
            return Err(format!("{} word classes, at most 128", CLASSES.len()));
        }
        let mut lex = Lexicon {
            exact: HashKeyed::default(),
            prefix: HashKeyed::default(),
            prefix_filter: Box::new([0; PREFIX_FILTER_WORDS]),
            longest_prefix_chars: 0,
            shortest_ascii_prefix: usize::MAX,
            runs: HashKeyed::default(),
            longest_run_chars: 0,
            run_filter: Box::new([0; PREFIX_FILTER_WORDS]),
            names: HashMap::new(),
        };
        for (bit, (name, words)) in CLASSES.iter().enumerate() {
            let mask = 1u128 << bit;
            if lex.names.insert(name, mask).is_some() {
                return Err(format!("word class {name} defined twice"));
            }
            for raw in words.split_whitespace() {
                // Entries are matched against normalised text: normalise them the same way
                // (`önceki` → `onceki`).
                let (body, is_prefix) = match raw.strip_suffix('*') {
                    Some(stem) => (stem, true),
                    None => (raw, false),
                };
                let word = normalize(body).text;
                let chars = word.chars().count();
                if chars > 2 && word.chars().all(is_pair_script) {
                    // Tokens of these scripts are character pairs: a longer word is
                    // looked up in the text that follows a token, never as a prefix.
                    if is_prefix {
                        return Err(format!(
                            "{word} in {name}: no prefixes in Thai, Chinese or Japanese"
                        ));
                    }
                    lex.longest_run_chars = lex.longest_run_chars.max(chars);
                    let first_two: String = word.chars().take(2).collect();
                    let (word_index, bit) =
                        filter_bit(fnv_extend(FNV_OFFSET, first_two.as_bytes()));
                    if let Some(slot) = lex.run_filter.get_mut(word_index) {
                        *slot |= bit;
                    }
                    insert(&mut lex.runs, word, mask);
                    continue;
                }
                if is_prefix {
                    let chars = word.chars().count();
                    if chars < 2 && word.is_ascii() {
                        return Err(format!("prefix {word} in {name} is too short"));
                    }
                    lex.longest_prefix_chars = lex.longest_prefix_chars.max(chars);
                    if word.is_ascii() {
                        lex.shortest_ascii_prefix = lex.shortest_ascii_prefix.min(chars);
                    }
                    let (word_index, bit) = filter_bit(fnv_extend(FNV_OFFSET, word.as_bytes()));
                    if let Some(slot) = lex.prefix_filter.get_mut(word_index) {
                        *slot |= bit;
                    }
                    insert(&mut lex.prefix, word, mask);
                } else {
                    insert(&mut lex.exact, word, mask);
                }
            }
        }
        Ok(lex)
    }

    /// `false` when no prefix has the hash `h`.
    fn may_be_prefix(&self, h: u64) -> bool {
        let (word_index, mask) = filter_bit(h);
        self.prefix_filter
            .get(word_index)
            .is_some_and(|bits| bits & mask != 0)
    }

    /// Classes of one token.
    pub(super) fn classes(&self, word: &str) -> u128 {
        if word.is_ascii() {
            return self.ascii_classes(word);
        }
        let mask = self.word_classes(word);
        if word.starts_with(is_arabic_letter) {
            return mask | self.arabic_stem_classes(word);
        }
        mask
    }

    /// Classes of an Arabic word read without what Arabic writes onto it: short vowels
    /// and the tatweel inside it, and the conjunction (و، ف), preposition (ب، ل، ك) and
    /// article (ال) before it (`وتجاهل` → `تجاهل`, `بالبادئة` → `بادئة`, `للتعليمات` →
    /// `تعليمات`). A stem shorter than three letters is not looked up: a root letter is
    /// never read as a prefix of a short word (`لقد`, `بعد`). At most a dozen lookups of
    /// the word's own length.
    fn arabic_stem_classes(&self, word: &str) -> u128 {
        // Most words carry no marks: copy only those that do.
        let bare: std::borrow::Cow<'_, str> = if word.chars().any(is_arabic_mark) {
            word.chars().filter(|&c| !is_arabic_mark(c)).collect()
        } else {
            word.into()
        };
        let mut mask = 0;
        for conj in ["", "\u{648}", "\u{641}"] {
            let Some(after_conj) = bare.strip_prefix(conj) else {
                continue;
            };
            for prep in ["", "\u{628}", "\u{644}", "\u{643}"] {
                let Some(after_prep) = after_conj.strip_prefix(prep) else {
                    continue;
                };
                // `لل`: ل before the article drops the article's alif.
                let article = if prep == "\u{644}" {
                    "\u{644}"
                } else {
                    "\u{627}\u{644}"
                };
                let stems = [Some(after_prep), after_prep.strip_prefix(article)];
                for stem in stems.into_iter().flatten() {
                    if stem.len() == word.len() || stem.chars().nth(2).is_none() {
                        continue;
                    }
                    crate::work::charge(stem.len());
                    mask |= self.word_classes(stem);
                }
            }
        }
        mask
    }

    /// [`Lexicon::classes`] of a word as written (prefixes and the whole word).
    fn word_classes(&self, word: &str) -> u128 {
        if word.is_ascii() {
            return self.ascii_classes(word);
        }
        let mut mask = 0;
        let mut h = FNV_OFFSET;
        let mut buf = [0u8; 4];
        for (count, (i, c)) in word.char_indices().enumerate() {
            h = fnv_extend(h, c.encode_utf8(&mut buf).as_bytes());
            let end = i + c.len_utf8();
            if count < self.longest_prefix_chars
                && (count >= 1 || !c.is_ascii())
                && self.may_be_prefix(h)
            {
                if let Some(stem) = word.get(..end) {
                    mask |= lookup(&self.prefix, h, stem);
                }
            }
        }
        mask | lookup(&self.exact, h, word)
    }

    /// Classes of the words of three or more characters that start `run` (normalised text
    /// from the first character of a pair token, in a script written without spaces), as
    /// `(classes, characters)` of each word found. At most the longest entry's length is
    /// read, so the work per token is bounded; returns the number of characters read.
    pub(super) fn run_words(&self, run: &str, found: &mut Vec<(u128, usize)>) -> usize {
        found.clear();
        if self.longest_run_chars == 0 {
            return 0;
        }
        let mut read = 0;
        let mut h = FNV_OFFSET;
        let mut buf = [0u8; 4];
        for (count, (i, c)) in run.char_indices().take(self.longest_run_chars).enumerate() {
            if !is_pair_script(c) {
                break;
            }
            read += 1;
            h = fnv_extend(h, c.encode_utf8(&mut buf).as_bytes());
            if count == 1 {
                let (word_index, bit) = filter_bit(h);
                if self
                    .run_filter
                    .get(word_index)
                    .is_none_or(|bits| bits & bit == 0)
                {
                    break;
                }
            }
            if count >= 2 {
                let mask = run
                    .get(..i + c.len_utf8())
                    .map_or(0, |word| lookup(&self.runs, h, word));
                if mask != 0 {
                    found.push((mask, count + 1));
                }
            }
        }
        read
    }

    /// [`Lexicon::classes`] of an ASCII word (most words): a byte is a character, so
    /// no decoding or encoding per character.
    pub(super) fn ascii_classes(&self, word: &str) -> u128 {
        let mut mask = 0;
        let mut h = FNV_OFFSET;
        for (i, &b) in word.as_bytes().iter().enumerate() {
            h = fnv_extend(h, &[b]);
            if i + 1 >= self.shortest_ascii_prefix
                && i < self.longest_prefix_chars
                && self.may_be_prefix(h)
            {
                if let Some(stem) = word.get(..=i) {
                    mask |= lookup(&self.prefix, h, stem);
                }
            }
        }
        mask | lookup(&self.exact, h, word)
    }
}
