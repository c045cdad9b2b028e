//! A jailbreak role-play setup: several of its traits in one text.

use super::super::super::lexicon::{
    SETUP_FRAME_TRAITS, SETUP_PERSONA, SETUP_STRONG_TRAITS, SETUP_TRAITS,
};
use super::super::super::weights::{SETUP_STRONG_PAIR, SETUP_WEIGHTS};
use super::super::super::Category;
use super::super::Hit;

/// Counts the distinct role-play setup traits among `hits` (`SETUP_TRAITS`), drops the
/// trait-only hits and adds one `jailbreak-setup` signal weighted by the count (two traits
/// count when they are a persona and a strong trait).
pub(in super::super) fn score_setup(hits: &mut Vec<Hit>) {
    let mut traits = 0u16;
    let mut span: Option<(usize, usize)> = None;
    for hit in hits.iter() {
        if let Some(&(_, t)) = SETUP_TRAITS.iter().find(|(name, _)| *name == hit.name) {
            traits |= 1 << t;
            span = Some(span.map_or((hit.start, hit.end), |(s, _)| (s.min(hit.start), hit.end)));
        }
    }
    hits.retain(|h| !h.name.starts_with("trait:"));
    if traits & !SETUP_FRAME_TRAITS == 0 {
        return;
    }
    let count = traits.count_ones() as usize;
    let weight = if count == 2 && traits & SETUP_PERSONA != 0 && traits & SETUP_STRONG_TRAITS != 0 {
        SETUP_STRONG_PAIR
    } else {
        SETUP_WEIGHTS
            .get(count)
            .or(SETUP_WEIGHTS.last())
            .copied()
            .unwrap_or(0.0)
    };
    if let (true, Some((start, end))) = (weight > 0.0, span) {
        hits.push(Hit {
            name: "jailbreak-setup",
            category: Category::RolePlay,
            weight,
            start,
            end: end.max(start),
        });
    }
}
