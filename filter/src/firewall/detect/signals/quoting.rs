//! A phrase quoted as a whole is talked about rather than said.

/// Whether the phrase at `start..end` of `text` is quoted as a whole (`the filter blocks
/// "ignore previous instructions"`): a quote mark among the two characters before it
/// and the three after it.
pub(in super::super) fn is_quoted(text: &str, start: usize, end: usize) -> bool {
    let opens = |c: char| matches!(c, '\'' | '"' | '“' | '‘' | '«' | '「' | '`');
    let closes = |c: char| matches!(c, '\'' | '"' | '”' | '’' | '»' | '」' | '`');
    let before = text
        .get(..start)
        .unwrap_or_default()
        .chars()
        .rev()
        .take(2)
        .any(opens);
    let after = text
        .get(end..)
        .unwrap_or_default()
        .chars()
        .take(3)
        .any(closes);
    before && after
}
