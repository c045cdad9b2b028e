//! Technique detection on normalised text, in pieces: the tokeniser (`tokenize`), the
//! word → class lookup (`classes`), the linear-time rule matcher (`matcher`), typo
//! tolerance for decoded text (`typo`), and one file per signal that is not a plain rule
//! (`signals`). Every weight a signal adds is in `weights`, beside the rule table's own.

mod classes;
#[cfg(test)]
mod equivalence;
mod matcher;
#[cfg(test)]
mod matcher_oracle;
mod signals;
mod tokenize;
mod typo;

pub(super) use signals::{scan_adversarial_suffix, scan_links};
pub(super) use tokenize::{tokenize, Token};

use super::lexicon::FICTION_DISCOUNTED;
use super::weights::{FICTION_FACTOR, QUOTED_FACTOR};
use super::{Category, Source};
use crate::work;
use classes::Lexicon;
pub(super) use matcher::MatchState;
use matcher::Matcher;
use typo::{one_edit_apart, TYPO_ANCHORS, TYPO_MIN_LEN};

/// Slots of the recent words [`Detector::token_classes`] remembers (a power of two).
const RECENT_WORDS: usize = 128;

/// A word's slot among the recent words: from its length and three of its bytes
/// (a slot shared by two words only costs the second a lookup).
fn recent_slot(word: &[u8]) -> usize {
    let byte = |i: usize| usize::from(word.get(i).copied().unwrap_or(0));
    let last = byte(word.len().saturating_sub(1));
    (word.len() * 7 + byte(0) * 31 + byte(1) * 3 + last * 17) & (RECENT_WORDS - 1)
}

/// A signal raised by a rule or marker: which, in what category, how strong, and where in
/// the normalised text (byte range).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Hit {
    pub name: &'static str,
    pub category: Category,
    pub weight: f32,
    pub start: usize,
    pub end: usize,
}

/// The compiled classes and rules.
#[derive(Debug)]
pub(super) struct Detector {
    lexicon: Lexicon,
    matcher: Matcher,
    /// Class bit of `FICTIONFRAME` (see `FICTION_DISCOUNTED`).
    fiction_frame: u128,
    /// Each of [`TYPO_ANCHORS`] with its classes (see [`Detector::token_classes_tolerant`]).
    typo_anchors: Vec<(&'static str, u128)>,
    /// Classes read by the instructions-in-data signal.
    data_classes: signals::DataClasses,
}

impl Detector {
    /// Compiles `lexicon`'s tables. Errors name the class or rule at fault (a programming
    /// error caught by the unit tests, reported rather than panicking).
    pub(super) fn compile() -> Result<Detector, String> {
        let lexicon = Lexicon::compile()?;
        let matcher = Matcher::compile(&lexicon)?;
        let fiction_frame = *lexicon
            .names
            .get("FICTIONFRAME")
            .ok_or("word class FICTIONFRAME missing")?;
        let typo_anchors = TYPO_ANCHORS
            .iter()
            .map(|&w| (w, lexicon.classes(w)))
            .collect();
        let class = |name: &str| {
            lexicon
                .names
                .get(name)
                .copied()
                .ok_or(format!("word class {name} missing"))
        };
        let data_classes = signals::DataClasses {
            addressee: class("ADDRESSEE")?,
            act: class("ACTVERB")?,
            say: class("SAYSTATE")? | class("REVEAL")?,
            if_: class("IF")?,
            you: class("YOU")?,
        };
        Ok(Detector {
            lexicon,
            matcher,
            fiction_frame,
            typo_anchors,
            data_classes,
        })
    }

    /// Classes of each token of `text` (shared with the learned scorer's features). A
    /// word of three or more characters in a script without spaces (`เพิกเฉย`, `無視して`)
    /// gives its classes to the pair tokens it starts and ends with, so a rule's gap is
    /// measured from the end of the word, as for a word between spaces.
    pub(super) fn token_classes(&self, text: &str, tokens: &[Token<'_>]) -> Vec<u128> {
        work::charge(tokens.iter().map(|t| t.text.len() + 1).sum());
        let mut classes = Vec::with_capacity(tokens.len());
        // Thai, Chinese and Japanese letters take three bytes in UTF-8, led by 0xE0 or
        // more: most texts have none, and one byte per token tells.
        let mut three_byte = false;
        // Words come back (`the`, `and`, the text's own terms): the classes of the
        // last word seen in each of a few slots are kept, so a repeated word costs a
        // comparison instead of its table lookups.
        let mut recent: [(&str, u128); RECENT_WORDS] = [("", 0); RECENT_WORDS];
        for t in tokens {
            three_byte |= t.text.as_bytes().first().is_some_and(|&b| b >= 0xE0);
            let slot = recent_slot(t.text.as_bytes());
            match recent.get_mut(slot) {
                Some((word, mask)) if *word == t.text => classes.push(*mask),
                Some(entry) => {
                    let mask = self.lexicon.classes(t.text);
                    *entry = (t.text, mask);
                    classes.push(mask);
                }
                None => classes.push(self.lexicon.classes(t.text)),
            }
        }
        if !three_byte {
            return classes;
        }
        let mut found = Vec::new();
        for (i, t) in tokens.iter().enumerate() {
            if !t.text.starts_with(tokenize::is_pair_script) {
                continue;
            }
            let read = self
                .lexicon
                .run_words(text.get(t.start..).unwrap_or_default(), &mut found);
            work::charge(read + 1);
            for &(mask, chars) in &found {
                // Pair tokens advance one character each: the word's last pair is
                // `chars - 2` tokens on.
                for at in [i, i + chars - 2] {
                    if let Some(c) = classes.get_mut(at) {
                        *c |= mask;
                    }
                }
            }
        }
        classes
    }

    /// [`Detector::token_classes`] for decoded text: a word of at least [`TYPO_MIN_LEN`]
    /// ASCII letters one edit away from a [`TYPO_ANCHORS`] word gets that word's classes
    /// too. Linear: each word is compared with a handful of short anchors.
    pub(super) fn token_classes_tolerant(&self, text: &str, tokens: &[Token<'_>]) -> Vec<u128> {
        let exact = self.token_classes(text, tokens);
        tokens
            .iter()
            .zip(exact)
            .map(|(t, mut cls)| {
                work::charge(t.text.len() + 1);
                let word = t.text.as_bytes();
                if word.len() >= TYPO_MIN_LEN && word.iter().all(u8::is_ascii_lowercase) {
                    for &(anchor, anchor_cls) in &self.typo_anchors {
                        work::charge(anchor.len());
                        if cls & anchor_cls != anchor_cls && one_edit_apart(word, anchor.as_bytes())
                        {
                            cls |= anchor_cls;
                        }
                    }
                }
                cls
            })
            .collect()
    }

    /// The rule matcher's state, for [`Detector::scan_in`]: one serves every text a
    /// request reads.
    pub(super) fn match_state(&self) -> MatchState {
        self.matcher.state()
    }

    /// Every rule and marker that fires on `text` (normalised, from `source`), each at
    /// most once.
    #[cfg(test)]
    pub(super) fn scan(
        &self,
        text: &str,
        tokens: &[Token<'_>],
        classes: &[u128],
        source: Source,
    ) -> Vec<Hit> {
        self.scan_in(text, tokens, classes, source, &mut self.match_state())
    }

    /// [`Detector::scan`] with a matcher state from [`Detector::match_state`].
    pub(super) fn scan_in(
        &self,
        text: &str,
        tokens: &[Token<'_>],
        classes: &[u128],
        source: Source,
        state: &mut MatchState,
    ) -> Vec<Hit> {
        let mut hits = Vec::new();
        self.matcher.scan(tokens, classes, state, &mut hits);
        let fiction = classes.iter().any(|c| c & self.fiction_frame != 0);
        for hit in &mut hits {
            if signals::is_quoted(text, hit.start, hit.end) {
                hit.weight *= QUOTED_FACTOR;
            }
            if fiction && FICTION_DISCOUNTED.contains(&hit.name) {
                hit.weight *= FICTION_FACTOR;
            }
        }
        // Quotes around each hit: a few characters either side.
        work::charge(8 * hits.len());
        signals::scan_literals(text, &mut hits);
        signals::scan_repeats(tokens, &mut hits);
        let data_from = hits
            .iter()
            .filter(|h| h.name == "data:intro")
            .map(|h| h.end)
            .min();
        signals::scan_instructions_in_data(
            text,
            tokens,
            classes,
            self.data_classes,
            source,
            data_from,
            &mut hits,
        );
        signals::score_embedded_directive(text, tokens, &mut hits);
        signals::score_setup(&mut hits);
        hits
    }
}

#[cfg(test)]
mod tests;
