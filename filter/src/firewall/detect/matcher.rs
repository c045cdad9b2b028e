//! The linear-time matcher of the token-sequence rules of `lexicon`.
//!
//! Matching is one pass over the tokens per text. For every rule we remember, for each
//! step, the most recent token where the rule's prefix up to that step completed; a token
//! that belongs to step `k` extends the match when step `k-1` completed within the allowed
//! gap. Keeping the most recent completion is enough (a later start can only shorten the
//! gap), so the cost is `tokens × rule steps`, with no backtracking on any input.
//!
//! Which rules a token reaches is found by set arithmetic, not by visiting lists: every
//! class bit and every literal word of the rules has two precompiled rule sets (the rules
//! it can start, the rules it appears in at all), and a token's rules are the union of
//! its starters and, among the rules already under way, those it appears in. A token
//! that belongs to no rule costs one table probe; one that does visits exactly the rules
//! whose state it can change.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use super::super::lexicon::RULES;
use super::super::Category;
use super::classes::{Fnv, Lexicon};
use super::tokenize::Token;
use super::{recent_slot, Hit, RECENT_WORDS};
use crate::work;

/// Index of a literal word of the rules (0: the token is none of them).
type WordId = u16;

/// 64-bit words of a [`RuleSet`]: enough for every rule of `RULES` (checked when the
/// matcher is compiled).
const SET_WORDS: usize = 6;

/// A set of rules, one bit per rule index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct RuleSet([u64; SET_WORDS]);

impl RuleSet {
    fn insert(&mut self, r: usize) {
        if let Some(word) = self.0.get_mut(r / 64) {
            *word |= 1 << (r % 64);
        }
    }

    fn remove(&mut self, r: usize) {
        if let Some(word) = self.0.get_mut(r / 64) {
            *word &= !(1 << (r % 64));
        }
    }

    fn union(&mut self, other: &RuleSet) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
    }

    /// `self | (reach & active)`.
    fn union_masked(&mut self, reach: &RuleSet, active: &RuleSet) {
        for ((a, b), c) in self.0.iter_mut().zip(reach.0).zip(active.0) {
            *a |= b & c;
        }
    }

    /// `self & !other`.
    fn subtract(&mut self, other: &RuleSet) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a &= !b;
        }
    }

    fn contains(&self, r: usize) -> bool {
        self.0
            .get(r / 64)
            .is_some_and(|word| word & (1 << (r % 64)) != 0)
    }

    fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }

    /// The rule indices in the set, ascending.
    fn iter(self) -> impl Iterator<Item = usize> {
        self.0.into_iter().enumerate().flat_map(|(i, mut word)| {
            std::iter::from_fn(move || {
                if word == 0 {
                    return None;
                }
                let bit = word.trailing_zeros() as usize;
                word &= word - 1;
                Some(i * 64 + bit)
            })
        })
    }
}

/// One step of a rule: the token belongs to one of `classes`, or is one of the literal
/// words `words` (a range of [`Matcher::step_words`]).
#[derive(Debug)]
struct Step {
    classes: u128,
    words: std::ops::Range<usize>,
    /// Largest number of tokens allowed between this step and the previous one.
    gap: usize,
    /// Whether this step and the previous one must be in the same sentence.
    same_sentence: bool,
}

#[derive(Debug)]
struct Rule {
    name: &'static str,
    category: Category,
    weight: f32,
    /// Where the rule's steps start in [`Matcher::steps`] (and in the state's `done`).
    first_step: usize,
    step_count: usize,
    /// The first step does not count when one of the two tokens before it is in this set
    /// (`do not ignore …`).
    not_after: u128,
    /// The rule does not fire when one of the three tokens after its last step is in this
    /// set (`no boundaries are breached`: the limits are kept, not removed).
    not_before: u128,
    /// Union of the classes of all steps: a hit's place among the hits of one token
    /// follows the lowest class bit the token shares with it (see [`Matcher::scan`]).
    any_class: u128,
    /// Times the rule may match in one text: once for a signal (repeating a phrase does
    /// not raise the score), [`DATA_RULE_MAX_HITS`] for the weightless `data:` markers,
    /// whose every place matters (an attacker may put a harmless "let's say" first).
    max_hits: u8,
}

/// The matcher's working state, all rules at rest between texts.
#[derive(Debug)]
pub(in crate::firewall) struct MatchState {
    /// `done[first_step(r) + k]` = (token index where step k of rule r last completed,
    /// index of the rule's first token).
    done: Vec<Option<(usize, usize)>>,
    hit_count: Vec<u8>,
    /// Rules whose first step completed (their `done` is not all `None`).
    active: RuleSet,
    /// Rules whose state the text changed, to reset.
    touched: RuleSet,
    /// Rules that matched their `max_hits` times in this text.
    spent: RuleSet,
    /// Hits of the current token, to order as the rules' listing does.
    token_hits: Vec<(u32, Hit)>,
}

/// Matches kept per weightless `data:` rule in one text.
const DATA_RULE_MAX_HITS: u8 = 16;

/// The compiled rules and, per class bit and per literal word, the rules it can start
/// and the rules it appears in.
#[derive(Debug)]
pub(super) struct Matcher {
    rules: Vec<Rule>,
    steps: Vec<Step>,
    /// The literal words of the steps, as [`WordId`]s.
    step_words: Vec<WordId>,
    /// Each literal word of the rules → its [`WordId`].
    word_ids: HashMap<&'static str, WordId, BuildHasherDefault<Fnv>>,
    /// Bit `len` (capped at 63) of entry `b`: some literal word starts with byte `b` and
    /// is `len` bytes long. Most tokens are no literal word, and two loads tell.
    word_shapes: Box<[u64; 256]>,
    starts_by_class: Vec<RuleSet>,
    reach_by_class: Vec<RuleSet>,
    /// Indexed by [`WordId`] (entry 0 empty).
    starts_by_word: Vec<RuleSet>,
    reach_by_word: Vec<RuleSet>,
}

fn word_shape(word: &str) -> (usize, u64) {
    let first = word.as_bytes().first().copied().map_or(0, usize::from);
    (first, 1u64 << word.len().min(63))
}

impl Matcher {
    /// Compiles `RULES` against `lexicon`'s class names. Errors name the rule at fault.
    pub(super) fn compile(lexicon: &Lexicon) -> Result<Matcher, String> {
        if RULES.len() > SET_WORDS * 64 {
            return Err(format!("{} rules, at most {}", RULES.len(), SET_WORDS * 64));
        }
        let class_of = |name: &str, class: &str| {
            lexicon
                .names
                .get(class)
                .copied()
                .ok_or_else(|| format!("rule {name}: unknown class {class}"))
        };
        let mut rules = Vec::with_capacity(RULES.len());
        let mut steps = Vec::new();
        let mut step_words = Vec::new();
        let mut word_ids: HashMap<&'static str, WordId, BuildHasherDefault<Fnv>> =
            HashMap::default();
        for &(name, category, weight, pattern) in RULES {
            let first_step = steps.len();
            let mut gap = 0usize;
            let mut same_sentence = false;
            let mut not_after = 0u128;
            let mut not_before = 0u128;
            let mut any_class = 0u128;
            for part in pattern.split_whitespace() {
                let gap_spec = part
                    .strip_prefix('~')
                    .map(|n| (n, false))
                    .or_else(|| part.strip_prefix('^').map(|n| (n, true)));
                if let Some((n, same)) = gap_spec {
                    gap = n
                        .parse()
                        .map_err(|_| format!("rule {name}: bad gap {part}"))?;
                    same_sentence = same;
                    continue;
                }
                if let Some(classes) = part.strip_prefix("!>") {
                    for class in classes.split('|') {
                        not_before |= class_of(name, class)?;
                    }
                    continue;
                }
                if let Some(classes) = part.strip_prefix('!') {
                    for class in classes.split('|') {
                        not_after |= class_of(name, class)?;
                    }
                    continue;
                }
                let words_from = step_words.len();
                let mut classes = 0u128;
                if part.chars().any(|c| c.is_ascii_uppercase()) {
                    classes = class_of(name, part)?;
                    any_class |= classes;
                } else {
                    for word in part.split('|') {
                        let next = WordId::try_from(word_ids.len() + 1)
                            .map_err(|_| format!("rule {name}: too many literal words"))?;
                        let id = *word_ids.entry(word).or_insert(next);
                        step_words.push(id);
                    }
                }
                steps.push(Step {
                    classes,
                    words: words_from..step_words.len(),
                    gap,
                    same_sentence,
                });
                gap = 0;
                same_sentence = false;
            }
            if steps.len() == first_step {
                return Err(format!("rule {name}: empty pattern"));
            }
            let max_hits = if name.starts_with("data:") {
                DATA_RULE_MAX_HITS
            } else {
                1
            };
            rules.push(Rule {
                name,
                category,
                weight,
                first_step,
                step_count: steps.len() - first_step,
                not_after,
                not_before,
                any_class,
                max_hits,
            });
        }
        let mut word_shapes = Box::new([0u64; 256]);
        for word in word_ids.keys() {
            let (first, len_bit) = word_shape(word);
            if let Some(slot) = word_shapes.get_mut(first) {
                *slot |= len_bit;
            }
        }
        let mut starts_by_class = vec![RuleSet::default(); 128];
        let mut reach_by_class = vec![RuleSet::default(); 128];
        let mut starts_by_word = vec![RuleSet::default(); word_ids.len() + 1];
        let mut reach_by_word = vec![RuleSet::default(); word_ids.len() + 1];
        for (r, rule) in rules.iter().enumerate() {
            let rule_steps = steps
                .get(rule.first_step..rule.first_step + rule.step_count)
                .unwrap_or_default();
            for (k, step) in rule_steps.iter().enumerate() {
                for bit in 0..128usize {
                    if step.classes & (1u128 << bit) != 0 {
                        let sets = [reach_by_class.get_mut(bit), starts_by_class.get_mut(bit)];
                        for set in sets.into_iter().take(if k == 0 { 2 } else { 1 }).flatten() {
                            set.insert(r);
                        }
                    }
                }
                for &id in step_words.get(step.words.clone()).unwrap_or_default() {
                    let id = usize::from(id);
                    let sets = [reach_by_word.get_mut(id), starts_by_word.get_mut(id)];
                    for set in sets.into_iter().take(if k == 0 { 2 } else { 1 }).flatten() {
                        set.insert(r);
                    }
                }
            }
        }
        Ok(Matcher {
            rules,
            steps,
            step_words,
            word_ids,
            word_shapes,
            starts_by_class,
            reach_by_class,
            starts_by_word,
            reach_by_word,
        })
    }

    /// A matching state for [`Matcher::scan`], to be used for many texts.
    pub(in crate::firewall) fn state(&self) -> MatchState {
        MatchState {
            done: vec![None; self.steps.len()],
            hit_count: vec![0; self.rules.len()],
            active: RuleSet::default(),
            touched: RuleSet::default(),
            spent: RuleSet::default(),
            token_hits: Vec::new(),
        }
    }

    /// The [`WordId`] of a token (0 when it is no literal word of the rules).
    fn word_id(&self, text: &str) -> WordId {
        let (first, len_bit) = word_shape(text);
        if self.word_shapes.get(first).is_none_or(|s| s & len_bit == 0) {
            return 0;
        }
        self.word_ids.get(text).copied().unwrap_or(0)
    }

    /// Appends a hit for every rule that matches `tokens` (each at most its `max_hits`).
    /// `state` comes from [`Matcher::state`] and is left as it came, ready for the next
    /// text: only the rules this text reached are reset, so a short text (a decoded
    /// view, one identifier read as words) costs its tokens, not the rule table.
    ///
    /// Hits of one token come in the order of the rules' listing by class bit and then
    /// by literal word: by the lowest class bit the token shares with the rule's steps
    /// (rules sharing none after the others), then by rule.
    pub(super) fn scan(
        &self,
        tokens: &[Token<'_>],
        classes: &[u128],
        state: &mut MatchState,
        hits: &mut Vec<Hit>,
    ) {
        // Words come back: the literal-word reading of the last word seen in each of a
        // few slots is kept, so a repeated word costs a comparison, not a probe.
        let mut recent: [(&str, WordId); RECENT_WORDS] = [("", 0); RECENT_WORDS];
        for (i, tok) in tokens.iter().enumerate() {
            work::charge(tok.text.len() + 1);
            let cls = classes.get(i).copied().unwrap_or(0);
            let word = match recent.get_mut(recent_slot(tok.text.as_bytes())) {
                Some((seen, id)) if *seen == tok.text => *id,
                Some(entry) => {
                    let id = self.word_id(tok.text);
                    *entry = (tok.text, id);
                    id
                }
                None => self.word_id(tok.text),
            };
            if cls == 0 && word == 0 {
                continue;
            }
            let mut visit = RuleSet::default();
            let mut reach = RuleSet::default();
            let mut rest = cls;
            while rest != 0 {
                let bit = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                work::charge(1);
                if let (Some(starts), Some(reaches)) =
                    (self.starts_by_class.get(bit), self.reach_by_class.get(bit))
                {
                    visit.union(starts);
                    reach.union(reaches);
                }
            }
            if word != 0 {
                if let (Some(starts), Some(reaches)) = (
                    self.starts_by_word.get(usize::from(word)),
                    self.reach_by_word.get(usize::from(word)),
                ) {
                    visit.union(starts);
                    reach.union(reaches);
                }
            }
            visit.union_masked(&reach, &state.active);
            // A rule that matched its most times in this text is done with it.
            visit.subtract(&state.spent);
            if visit.is_empty() {
                continue;
            }
            state.touched.union(&visit);
            for r in visit.iter() {
                self.advance(r, i, tokens, classes, cls, word, state);
            }
            match state.token_hits.len() {
                0 => {}
                1 => hits.extend(state.token_hits.drain(..).map(|(_, hit)| hit)),
                _ => {
                    state.token_hits.sort_by_key(|&(order, _)| order);
                    hits.extend(state.token_hits.drain(..).map(|(_, hit)| hit));
                }
            }
        }
        self.reset(state);
    }

    /// Moves rule `r` on at token `i` (which belongs to one of its steps, or can start
    /// it), recording a hit in `state.token_hits` when the rule completes.
    #[allow(clippy::too_many_arguments)]
    fn advance(
        &self,
        r: usize,
        i: usize,
        tokens: &[Token<'_>],
        classes: &[u128],
        cls: u128,
        word: WordId,
        state: &mut MatchState,
    ) {
        let Some(rule) = self.rules.get(r) else {
            return;
        };
        let n = rule.step_count;
        work::charge(n);
        // A rule at rest can only start: its later steps wait for earlier ones.
        let from_step = if state.active.contains(r) { n } else { 1 };
        let (Some(tok), Some(steps), Some(done)) = (
            tokens.get(i),
            self.steps.get(rule.first_step..rule.first_step + n),
            state.done.get_mut(rule.first_step..rule.first_step + n),
        ) else {
            return;
        };
        for k in (0..from_step).rev() {
            let Some(step) = steps.get(k) else {
                continue;
            };
            let matches = cls & step.classes != 0
                || (word != 0
                    && self
                        .step_words
                        .get(step.words.clone())
                        .is_some_and(|ids| ids.contains(&word)));
            if !matches {
                continue;
            }
            if k == 0 {
                // Only a word of the same sentence negates ("do not ignore"); a
                // "no" that ends the sentence before does not.
                let negated = rule.not_after != 0
                    && (1..=2).any(|back| {
                        i.checked_sub(back).is_some_and(|j| {
                            classes.get(j).is_some_and(|c| c & rule.not_after != 0)
                                && tokens.get(j).is_some_and(|t| t.sentence == tok.sentence)
                        })
                    });
                if !negated {
                    if let Some(slot) = done.get_mut(0) {
                        *slot = Some((i, i));
                        state.active.insert(r);
                    }
                }
            } else if let Some(Some((prev, first))) = done.get(k - 1).copied() {
                let (prev_pos, prev_sentence) =
                    tokens.get(prev).map_or((0, 0), |t| (t.pos, t.sentence));
                let near = tok.pos - prev_pos <= 2 * (step.gap + 1);
                if prev < i && near && (!step.same_sentence || prev_sentence == tok.sentence) {
                    if let Some(slot) = done.get_mut(k) {
                        *slot = Some((i, first));
                    }
                }
            }
        }
        let Some(Some((_, first))) = done.get(n - 1).copied() else {
            return;
        };
        let kept = rule.not_before != 0
            && (1..=3).any(|ahead| {
                classes
                    .get(i + ahead)
                    .is_some_and(|c| c & rule.not_before != 0)
            });
        if kept {
            // A later token may still complete the rule.
            if let Some(slot) = done.get_mut(n - 1) {
                *slot = None;
            }
            return;
        }
        if let Some(count) = state.hit_count.get_mut(r) {
            *count += 1;
            if *count >= rule.max_hits {
                state.spent.insert(r);
            }
        }
        // Matched: a rule that may match again starts over after it.
        done.iter_mut().for_each(|slot| *slot = None);
        state.active.remove(r);
        let shared = cls & rule.any_class;
        let listed_at = if shared == 0 {
            128
        } else {
            shared.trailing_zeros()
        };
        let order = (listed_at << 16) | u32::try_from(r).unwrap_or(u32::MAX >> 16);
        let start = tokens.get(first).map_or(0, |t| t.start);
        state.token_hits.push((
            order,
            Hit {
                name: rule.name,
                category: rule.category,
                weight: rule.weight,
                start,
                end: tok.end,
            },
        ));
    }

    /// Puts every rule the text reached back at rest.
    fn reset(&self, state: &mut MatchState) {
        let touched = std::mem::take(&mut state.touched);
        work::charge(SET_WORDS);
        for r in touched.iter() {
            work::charge(1);
            if let Some(rule) = self.rules.get(r) {
                let steps = rule.first_step..rule.first_step + rule.step_count;
                if let Some(done) = state.done.get_mut(steps) {
                    done.iter_mut().for_each(|slot| *slot = None);
                }
            }
            if let Some(count) = state.hit_count.get_mut(r) {
                *count = 0;
            }
        }
        state.active = RuleSet::default();
        state.spent = RuleSet::default();
    }
}
