//! Literal markers (chat-template tokens, role labels, tags) and fake conversation turns.

use super::super::super::lexicon::LITERALS;
use super::super::super::weights::FAKE_CONVERSATION;
use super::super::super::Category;
use super::super::Hit;
use crate::work;

/// Role labels opening a line; two different ones make a fake conversation.
const ROLE_LABELS: &[&str] = &[
    "user:",
    "assistant:",
    "human:",
    "ai:",
    "system:",
    "bot:",
    "gpt:",
];

fn scan_fake_turns(text: &str, hits: &mut Vec<Hit>) {
    work::charge(text.len());
    let mut seen = [false; 7];
    let mut first = None;
    for (idx, line) in text.split('\n').enumerate().take(10_000) {
        let line = line.trim_start();
        for (k, label) in ROLE_LABELS.iter().enumerate() {
            if line.starts_with(label) {
                if let Some(s) = seen.get_mut(k) {
                    *s = true;
                }
                first.get_or_insert(idx);
            }
        }
    }
    if seen.iter().filter(|&&s| s).count() >= 2 {
        hits.push(Hit {
            name: "fake-conversation",
            category: Category::DelimiterInjection,
            weight: FAKE_CONVERSATION,
            start: 0,
            end: 0,
        });
    }
}

pub(in super::super) fn scan_literals(text: &str, hits: &mut Vec<Hit>) {
    if text.contains('\n') {
        scan_fake_turns(text, hits);
    }
    // Every needle starts with one of these bytes: visit only their positions. A role
    // label also counts at the very start of the text (as if after a newline).
    let bytes = text.as_bytes();
    let mut found = vec![false; LITERALS.len()];
    let mut from = 0;
    let starts = std::iter::once(usize::MAX).chain(std::iter::from_fn(|| {
        let at = from
            + bytes
                .get(from..)?
                .iter()
                .position(|&b| matches!(b, b'<' | b'[' | b'\n'))?;
        from = at + 1;
        Some(at)
    }));
    work::charge(text.len());
    for at in starts {
        work::charge(LITERALS.len());
        for (k, &(name, category, weight, needle)) in LITERALS.iter().enumerate() {
            if found.get(k).copied().unwrap_or(true) {
                continue;
            }
            // Most positions start no needle: their first two bytes settle it, without
            // a comparison call per needle (a text of `<` or `[` spent most of its time
            // there).
            let head = needle.as_bytes();
            if at != usize::MAX
                && (head.first() != bytes.get(at)
                    || (head.len() > 1 && head.get(1) != bytes.get(at + 1)))
            {
                continue;
            }
            let (start, matched) = if at == usize::MAX {
                (
                    0,
                    needle
                        .strip_prefix('\n')
                        .is_some_and(|l| text.starts_with(l)),
                )
            } else {
                (
                    at,
                    bytes
                        .get(at..)
                        .is_some_and(|rest| rest.starts_with(needle.as_bytes())),
                )
            };
            if !matched {
                continue;
            }
            if let Some(f) = found.get_mut(k) {
                *f = true;
            }
            if hits.iter().any(|h| h.name == name) {
                continue;
            }
            hits.push(Hit {
                name,
                category,
                weight,
                start,
                end: (start + needle.len()).min(text.len()),
            });
        }
    }
}
