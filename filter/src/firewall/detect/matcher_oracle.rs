//! The rule matcher as it was before rule sets (see `matcher`): the oracle of the
//! differential tests in `equivalence`, kept as written.
//!
//! The linear-time matcher of the token-sequence rules of `lexicon`.
//!
//! Matching is one pass over the tokens per text. For every rule we remember, for each
//! step, the most recent token where the rule's prefix up to that step completed; a token
//! that belongs to step `k` extends the match when step `k-1` completed within the allowed
//! gap. Keeping the most recent completion is enough (a later start can only shorten the
//! gap), so the cost is `tokens × rule steps`, with no backtracking on any input.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use super::super::lexicon::RULES;
use super::super::Category;
use super::classes::{Fnv, Lexicon};
use super::tokenize::Token;
use super::Hit;
use crate::work;

#[derive(Debug)]
enum Step {
    Class(u128),
    Word(&'static str),
    /// One of these literal words (`a|b|c` in a pattern).
    Words(Box<[&'static str]>),
}

#[derive(Debug)]
struct Rule {
    name: &'static str,
    category: Category,
    weight: f32,
    /// `(step, largest number of tokens allowed between it and the previous step, whether
    /// both must be in the same sentence)`.
    steps: Vec<(Step, usize, bool)>,
    /// The first step does not count when one of the two tokens before it is in this set
    /// (`do not ignore …`).
    not_after: u128,
    /// The rule does not fire when one of the three tokens after its last step is in this
    /// set (`no boundaries are breached`: the limits are kept, not removed).
    not_before: u128,
    /// Union of the classes of all steps (to index rules by class).
    any_class: u128,
    /// Times the rule may match in one text: once for a signal (repeating a phrase does
    /// not raise the score), [`DATA_RULE_MAX_HITS`] for the weightless `data:` markers,
    /// whose every place matters (an attacker may put a harmless "let's say" first).
    max_hits: u8,
}

/// The matcher's working state, all rules at rest between texts.
#[derive(Debug)]
pub(in crate::firewall) struct MatchState {
    /// `done[offset(r) + k]` = (token index where step k of rule r last completed,
    /// index of the rule's first token).
    done: Vec<Option<(usize, usize)>>,
    hit_count: Vec<u8>,
    /// Token index at which a rule was last visited, to visit it once per token;
    /// `usize::MAX` for a rule the text has not reached.
    visited: Vec<usize>,
    /// The rules the text reached (whose state the scan changed), to reset.
    touched: Vec<usize>,
    candidates: Vec<usize>,
}

/// Matches kept per weightless `data:` rule in one text.
const DATA_RULE_MAX_HITS: u8 = 16;

/// The compiled rules, indexed by the classes and literal words that can advance them.
#[derive(Debug)]
pub(super) struct Matcher {
    rules: Vec<Rule>,
    /// Where each rule's steps start in the matcher's flat state.
    step_offsets: Vec<usize>,
    /// For each class bit, the rules with a step in that class; for each literal word, the
    /// rules using it. A token visits only these.
    rules_by_class: Vec<Vec<usize>>,
    rules_by_word: HashMap<&'static str, Vec<usize>, BuildHasherDefault<Fnv>>,
    total_steps: usize,
}

impl Matcher {
    /// Compiles `RULES` against `lexicon`'s class names. Errors name the rule at fault.
    pub(super) fn compile(lexicon: &Lexicon) -> Result<Matcher, String> {
        let mut rules = Vec::with_capacity(RULES.len());
        for &(name, category, weight, pattern) in RULES {
            let mut steps = Vec::new();
            let mut gap = 0usize;
            let mut same_sentence = false;
            let mut not_after = 0u128;
            let mut not_before = 0u128;
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
                        not_before |= *lexicon
                            .names
                            .get(class)
                            .ok_or_else(|| format!("rule {name}: unknown class {class}"))?;
                    }
                    continue;
                }
                if let Some(classes) = part.strip_prefix('!') {
                    for class in classes.split('|') {
                        not_after |= *lexicon
                            .names
                            .get(class)
                            .ok_or_else(|| format!("rule {name}: unknown class {class}"))?;
                    }
                    continue;
                }
                let step = if part.chars().any(|c| c.is_ascii_uppercase()) {
                    Step::Class(
                        *lexicon
                            .names
                            .get(part)
                            .ok_or_else(|| format!("rule {name}: unknown class {part}"))?,
                    )
                } else {
                    if part.contains('|') {
                        Step::Words(part.split('|').collect())
                    } else {
                        Step::Word(part)
                    }
                };
                steps.push((step, gap, same_sentence));
                gap = 0;
                same_sentence = false;
            }
            if steps.is_empty() {
                return Err(format!("rule {name}: empty pattern"));
            }
            let any_class = steps.iter().fold(0, |acc, (step, _, _)| match step {
                Step::Class(mask) => acc | mask,
                Step::Word(_) | Step::Words(_) => acc,
            });
            let max_hits = if name.starts_with("data:") {
                DATA_RULE_MAX_HITS
            } else {
                1
            };
            rules.push(Rule {
                name,
                category,
                weight,
                steps,
                not_after,
                not_before,
                any_class,
                max_hits,
            });
        }
        let mut step_offsets = Vec::with_capacity(rules.len());
        let mut total_steps = 0;
        let mut rules_by_class = vec![Vec::new(); 128];
        let mut rules_by_word: HashMap<&'static str, Vec<usize>, BuildHasherDefault<Fnv>> =
            HashMap::default();
        for (r, rule) in rules.iter().enumerate() {
            step_offsets.push(total_steps);
            total_steps += rule.steps.len();
            for bit in 0..128usize {
                if rule.any_class & (1u128 << bit) != 0 {
                    if let Some(list) = rules_by_class.get_mut(bit) {
                        list.push(r);
                    }
                }
            }
            for (step, _, _) in &rule.steps {
                let words = match step {
                    Step::Class(_) => &[][..],
                    Step::Word(w) => std::slice::from_ref(w),
                    Step::Words(ws) => &ws[..],
                };
                for w in words {
                    let list = rules_by_word.entry(w).or_default();
                    if list.last() != Some(&r) {
                        list.push(r);
                    }
                }
            }
        }
        Ok(Matcher {
            rules,
            step_offsets,
            rules_by_class,
            rules_by_word,
            total_steps,
        })
    }

    /// A matching state for [`Matcher::scan`], to be used for many texts.
    pub(in crate::firewall) fn state(&self) -> MatchState {
        MatchState {
            done: vec![None; self.total_steps],
            hit_count: vec![0; self.rules.len()],
            visited: vec![usize::MAX; self.rules.len()],
            touched: Vec::new(),
            candidates: Vec::new(),
        }
    }

    /// Appends a hit for every rule that matches `tokens` (each at most its `max_hits`).
    /// `state` comes from [`Matcher::state`] and is left as it came, ready for the next
    /// text: only the rules this text reached are reset, so a short text (a decoded
    /// view, one identifier read as words) costs its tokens, not the rule table.
    pub(super) fn scan(
        &self,
        tokens: &[Token<'_>],
        classes: &[u128],
        state: &mut MatchState,
        hits: &mut Vec<Hit>,
    ) {
        self.scan_from_fresh(tokens, classes, state, hits);
        let MatchState {
            done,
            hit_count,
            visited,
            touched,
            ..
        } = state;
        // Past a few rules, clearing all of it (one fill) is cheaper than rule by rule.
        if touched.len() * 8 > self.rules.len() {
            work::charge(done.len() + 2 * visited.len());
            done.fill(None);
            hit_count.fill(0);
            visited.fill(usize::MAX);
            touched.clear();
            return;
        }
        work::charge(touched.len());
        for &r in touched.iter() {
            let offset = self.step_offsets.get(r).copied().unwrap_or(0);
            let n = self.rules.get(r).map_or(0, |rule| rule.steps.len());
            if let Some(steps) = done.get_mut(offset..offset + n) {
                steps.iter_mut().for_each(|slot| *slot = None);
            }
            if let Some(count) = hit_count.get_mut(r) {
                *count = 0;
            }
            if let Some(v) = visited.get_mut(r) {
                *v = usize::MAX;
            }
        }
        touched.clear();
    }

    fn scan_from_fresh(
        &self,
        tokens: &[Token<'_>],
        classes: &[u128],
        state: &mut MatchState,
        hits: &mut Vec<Hit>,
    ) {
        let MatchState {
            done,
            hit_count,
            visited,
            touched,
            candidates,
        } = state;
        for (i, tok) in tokens.iter().enumerate() {
            work::charge(tok.text.len() + 1);
            let cls = classes.get(i).copied().unwrap_or(0);
            let words = self.rules_by_word.get(tok.text);
            if cls == 0 && words.is_none() {
                continue;
            }
            candidates.clear();
            let mut rest = cls;
            while rest != 0 {
                let bit = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                candidates.extend(self.rules_by_class.get(bit).into_iter().flatten());
            }
            candidates.extend(words.into_iter().flatten());
            for &r in candidates.iter() {
                let Some(rule) = self.rules.get(r) else {
                    continue;
                };
                let offset = self.step_offsets.get(r).copied().unwrap_or(0);
                let n = rule.steps.len();
                work::charge(n);
                // Nothing of the rule matched yet and this token cannot start it: no step
                // can advance (a step completes only after the one before it). Most
                // candidates end here, so this is asked first; asking again for a rule
                // listed under several of the token's classes gives the same answer.
                if done.get(offset).is_some_and(Option::is_none) {
                    let starts = rule.steps.first().is_some_and(|(step, _, _)| match step {
                        Step::Class(mask) => cls & mask != 0,
                        Step::Word(w) => tok.text == *w,
                        Step::Words(ws) => ws.contains(&tok.text),
                    });
                    if !starts {
                        continue;
                    }
                }
                match visited.get_mut(r) {
                    Some(v) if *v != i => {
                        if *v == usize::MAX {
                            touched.push(r);
                        }
                        *v = i;
                    }
                    _ => continue,
                }
                if hit_count.get(r).is_none_or(|&n| n >= rule.max_hits) {
                    continue;
                }
                let Some(state) = done.get_mut(offset..offset + n) else {
                    continue;
                };
                for k in (0..n).rev() {
                    let Some((step, gap, same_sentence)) = rule.steps.get(k) else {
                        continue;
                    };
                    let matches = match step {
                        Step::Class(mask) => cls & mask != 0,
                        Step::Word(w) => tok.text == *w,
                        Step::Words(ws) => ws.contains(&tok.text),
                    };
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
                            if let Some(slot) = state.get_mut(0) {
                                *slot = Some((i, i));
                            }
                        }
                    } else if let Some(Some((prev, first))) = state.get(k - 1).copied() {
                        let (prev_pos, prev_sentence) =
                            tokens.get(prev).map_or((0, 0), |t| (t.pos, t.sentence));
                        let near = tok.pos - prev_pos <= 2 * (*gap + 1);
                        if prev < i && near && (!same_sentence || prev_sentence == tok.sentence) {
                            if let Some(slot) = state.get_mut(k) {
                                *slot = Some((i, first));
                            }
                        }
                    }
                }
                if let Some(Some((_, first))) = state.get(n - 1).copied() {
                    let kept = rule.not_before != 0
                        && (1..=3).any(|ahead| {
                            classes
                                .get(i + ahead)
                                .is_some_and(|c| c & rule.not_before != 0)
                        });
                    if kept {
                        // A later token may still complete the rule.
                        if let Some(slot) = state.get_mut(n - 1) {
                            *slot = None;
                        }
                        continue;
                    }
                    if let Some(n) = hit_count.get_mut(r) {
                        *n += 1;
                    }
                    // Matched: a rule that may match again starts over after it.
                    state.iter_mut().for_each(|slot| *slot = None);
                    let start = tokens.get(first).map_or(0, |t| t.start);
                    hits.push(Hit {
                        name: rule.name,
                        category: rule.category,
                        weight: rule.weight,
                        start,
                        end: tok.end,
                    });
                }
            }
        }
    }
}
