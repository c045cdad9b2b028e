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

/// The needles of [`LITERALS`] by their first two bytes: for a first byte (`<`, `[`,
/// newline: [`first_slot`]) and a second byte, the set of needles (bit `k` for
/// `LITERALS[k]`) that start so. A one-byte needle is in every second byte's set. So
/// a position visits only the needles that can start there, where reading each needle's
/// head took `LITERALS.len()` steps a position (text of `<` or `[` at every byte).
const NEEDLES_BY_HEAD: [[u64; 256]; 3] = {
    assert!(LITERALS.len() <= 64, "at most 64 literal markers");
    let mut table = [[0u64; 256]; 3];
    let mut k = 0;
    while k < LITERALS.len() {
        let head = LITERALS[k].3.as_bytes();
        let slot = match first_slot(head[0]) {
            Some(slot) => slot,
            None => panic!("a literal marker starts with `<`, `[` or a newline"),
        };
        let mut second = 0;
        while second < 256 {
            if head.len() == 1 || head[1] as usize == second {
                table[slot][second] |= 1 << k;
            }
            second += 1;
        }
        k += 1;
    }
    table
};

/// The row of [`NEEDLES_BY_HEAD`] of a needle's first byte.
const fn first_slot(b: u8) -> Option<usize> {
    match b {
        b'<' => Some(0),
        b'[' => Some(1),
        b'\n' => Some(2),
        _ => None,
    }
}

pub(in super::super) fn scan_literals(text: &str, hits: &mut Vec<Hit>) {
    if text.contains('\n') {
        scan_fake_turns(text, hits);
    }
    // Every needle starts with one of these bytes: visit only their positions. A role
    // label also counts at the very start of the text (as if after a newline).
    let bytes = text.as_bytes();
    let all: u64 = if LITERALS.len() == 64 {
        u64::MAX
    } else {
        (1 << LITERALS.len()) - 1
    };
    let mut found = 0u64;
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
        // The needles that can start here, and have not been found yet.
        let candidates = if at == usize::MAX {
            all
        } else {
            let first = bytes.get(at).copied().and_then(first_slot);
            let second = bytes.get(at + 1).copied().map_or(0, usize::from);
            first
                .and_then(|slot| NEEDLES_BY_HEAD.get(slot))
                .and_then(|row| row.get(second))
                .copied()
                .unwrap_or(0)
        };
        let mut rest = candidates & !found;
        work::charge(1 + rest.count_ones() as usize);
        while rest != 0 {
            let k = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            let Some(&(name, category, weight, needle)) = LITERALS.get(k) else {
                continue;
            };
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
            found |= 1 << k;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every needle read at every position of the text, in order: what
    /// [`scan_literals`] finds through [`NEEDLES_BY_HEAD`].
    fn plain_literals(text: &str) -> Vec<Hit> {
        let mut hits: Vec<Hit> = Vec::new();
        let mut found = vec![false; LITERALS.len()];
        let positions = std::iter::once(None).chain((0..text.len()).map(Some));
        for at in positions {
            for (k, &(name, category, weight, needle)) in LITERALS.iter().enumerate() {
                if found[k] {
                    continue;
                }
                let (start, matched) = match at {
                    None => (
                        0,
                        needle
                            .strip_prefix('\n')
                            .is_some_and(|l| text.starts_with(l)),
                    ),
                    Some(at) => (at, text.as_bytes()[at..].starts_with(needle.as_bytes())),
                };
                if !matched {
                    continue;
                }
                found[k] = true;
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
        hits
    }

    #[test]
    fn needles_by_head_find_what_every_needle_at_every_position_finds() {
        // Pieces of every needle, whole and cut, glued in many orders.
        let mut pieces: Vec<String> = vec!["<".into(), "[".into(), "\n".into(), "x ".into()];
        for &(_, _, _, needle) in LITERALS {
            pieces.push(needle.to_owned());
            pieces.push(
                needle
                    .get(..needle.len() / 2)
                    .unwrap_or_default()
                    .to_owned(),
            );
            pieces.push(needle.get(1..).unwrap_or_default().to_owned());
        }
        for seed in 0..400usize {
            let mut text = String::new();
            for i in 0..(seed % 23 + 1) {
                text.push_str(&pieces[(seed * 31 + i * 17 + i * i) % pieces.len()]);
            }
            let mut hits = Vec::new();
            scan_literals(&text, &mut hits);
            let mut expected = Vec::new();
            if text.contains('\n') {
                scan_fake_turns(&text, &mut expected);
            }
            expected.extend(plain_literals(&text));
            assert_eq!(hits, expected, "{text:?}");
        }
    }
}
