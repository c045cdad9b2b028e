//! Misspelt override words in decoded text (see `Detector::token_classes_tolerant`).

/// Long words an override is made of. In decoded text a word one slip away from one of
/// them (`inore`, `hignore`, `previuos`) gets its classes: a payload someone bothered to
/// encode is not proofread, and a misspelt trigger word there is evasion, not chance.
pub(super) const TYPO_ANCHORS: &[&str] =
    &["ignore", "disregard", "previous", "instructions", "forget"];

/// Shortest word compared with [`TYPO_ANCHORS`] (shorter words are too often one slip
/// away from something).
pub(super) const TYPO_MIN_LEN: usize = 5;

/// `true` when `a` becomes `b` by one inserted, deleted or replaced byte, or by two
/// neighbouring bytes swapped (not when equal).
pub(super) fn one_edit_apart(a: &[u8], b: &[u8]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if long.len() - short.len() > 1 || a == b {
        return false;
    }
    let prefix = short
        .iter()
        .zip(long.iter())
        .take_while(|(x, y)| x == y)
        .count();
    let (Some(short_rest), Some(long_rest)) = (short.get(prefix..), long.get(prefix..)) else {
        return false;
    };
    if short.len() == long.len() {
        // One letter changed, or two neighbours swapped (the commonest typo).
        let swapped = matches!((short_rest, long_rest), ([a, b, ..], [c, d, ..]) if a == d && b == c)
            && short_rest.get(2..) == long_rest.get(2..);
        short_rest.get(1..) == long_rest.get(1..) || swapped
    } else {
        Some(short_rest) == long_rest.get(1..)
    }
}
