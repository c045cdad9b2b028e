//! Markdown and HTML images whose URL carries a query (exfiltration by rendering).

use super::super::super::weights::{IMAGE_URL_TEMPLATED, IMAGE_URL_WITH_QUERY};
use super::super::super::Category;
use super::super::Hit;
use crate::work;

/// `![` or `<img` (any case) somewhere in `bytes`: one pass, no lowercase copy.
fn has_image_markup(bytes: &[u8]) -> bool {
    work::charge(bytes.len());
    let mut from = 0;
    while let Some(i) = bytes
        .get(from..)
        .and_then(|rest| rest.iter().position(|&b| b == b'!' || b == b'<'))
    {
        let at = from + i;
        let after = bytes.get(at + 1..).unwrap_or_default();
        let opens = match bytes.get(at) {
            Some(b'!') => after.first() == Some(&b'['),
            _ => after
                .get(..3)
                .is_some_and(|tag| tag.eq_ignore_ascii_case(b"img")),
        };
        if opens {
            return true;
        }
        from = at + 1;
    }
    false
}

/// Markdown images and HTML `img` tags whose URL carries a query: rendering them sends
/// whatever the model put in the query to that host, unseen. A template placeholder in
/// the URL (`{conversation}`, `$SECRET`) is a stronger sign. Scanned on the raw text, where
/// URLs are intact; offsets refer to it.
///
/// Linear: one forward pass finds the openers (the latest `![` is remembered, never
/// searched for backwards), and the end of each URL, its `?` and its `=` are found by
/// [`NextMatch`] searches that only move forward, so a text of openers without closers
/// costs a bounded amount per byte.
pub(in super::super::super) fn scan_links(raw: &str) -> Vec<Hit> {
    let mut hits = Vec::new();
    if !has_image_markup(raw.as_bytes()) {
        return hits;
    }
    // The lowercase copy and the pass below.
    work::charge(2 * raw.len());
    let lower = raw.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    // Markdown images first, then `img` tags: the order in which they are judged.
    let mut markdown: Vec<(usize, usize)> = Vec::new();
    let mut tags: Vec<(usize, usize)> = Vec::new();
    let mut last_image_open: Option<usize> = None;
    let mut next_src = NextMatch::new(|t: &str| t.find("src="));
    for (i, pair) in bytes.windows(2).enumerate() {
        match pair {
            b"![" => last_image_open = Some(i),
            b"](" if last_image_open.is_some_and(|j| i - j <= LINK_OPEN_REACH) => {
                markdown.push((i, i + 2));
            }
            b"<i" if bytes.get(i..i + 4) == Some(b"<img") => {
                let src = next_src.at_or_after(&lower, i);
                if src + 4 <= i + LINK_OPEN_REACH && src < lower.len() {
                    tags.push((i, src + 4));
                }
            }
            _ => {}
        }
    }
    for starts in [markdown, tags] {
        // Fresh searches per list: within one, URLs start in increasing order.
        let mut url_end = NextMatch::new(|t: &str| {
            t.find(|c: char| c == ')' || c == '"' || c == '\'' || c.is_whitespace())
        });
        let mut question = NextMatch::new(|t: &str| t.find('?'));
        let mut equals = NextMatch::new(|t: &str| t.find('='));
        for (tag, at) in starts {
            let lead = bytes
                .get(at..)
                .unwrap_or_default()
                .iter()
                .take(LINK_OPEN_REACH)
                .take_while(|b| matches!(b, b'"' | b'\'' | b' '))
                .count();
            work::charge(lead + 1);
            let url_start = at + lead;
            if !bytes
                .get(url_start..)
                .is_some_and(|r| r.starts_with(b"http"))
            {
                continue;
            }
            // The URL ends at a quote, bracket or space, and is read to `MAX_URL` at most
            // (not at all when that cuts a character).
            let url_len = (url_end.at_or_after(&lower, url_start) - url_start).min(MAX_URL);
            let stop = url_start + url_len;
            if !lower.is_char_boundary(stop) {
                continue;
            }
            let q = question.at_or_after(&lower, url_start);
            if q >= stop || equals.at_or_after(&lower, q) >= stop {
                continue;
            }
            let url = lower.get(url_start..stop).unwrap_or_default();
            work::charge(url.len());
            let templated = url.contains(['{', '$', '<', '[']) || url.contains("%7b");
            hits.push(Hit {
                name: "image-url-with-query",
                category: Category::Exfiltration,
                weight: if templated {
                    IMAGE_URL_TEMPLATED
                } else {
                    IMAGE_URL_WITH_QUERY
                },
                start: tag,
                end: (at + url_len).min(raw.len()),
            });
            if hits.len() >= 4 {
                return hits;
            }
        }
    }
    hits
}

/// The first match at or after a position of a forward search (`find` of a character or
/// a string), remembered: asked for positions that never decrease, it reads each byte of
/// the text about once, where a fresh search per position could read the rest of the text
/// each time.
struct NextMatch<F: Fn(&str) -> Option<usize>> {
    find: F,
    found: Option<usize>,
}

impl<F: Fn(&str) -> Option<usize>> NextMatch<F> {
    fn new(find: F) -> Self {
        NextMatch { find, found: None }
    }

    /// Byte offset of the first match at or after `from` (a character boundary, not
    /// smaller than any `from` asked before), or `text.len()` if there is none.
    fn at_or_after(&mut self, text: &str, from: usize) -> usize {
        match self.found {
            Some(p) if p >= from => p,
            _ => {
                let p = text
                    .get(from..)
                    .and_then(|t| (self.find)(t))
                    .map_or(text.len(), |i| from + i);
                work::charge(p.saturating_sub(from) + 1);
                self.found = Some(p);
                p
            }
        }
    }
}

/// Longest URL an image link is read to.
const MAX_URL: usize = 2048;

/// Bytes between `![` and `](` (the alt text), or between `<img` and `src=`, within which
/// they belong to one image.
const LINK_OPEN_REACH: usize = 300;

#[cfg(test)]
mod tests {
    use super::*;

    /// The image scan as it was written before it was made linear (a backward search
    /// per `](`, each URL read to the end of the text): the reference for what it finds.
    fn scan_links_reference(raw: &str) -> Vec<(usize, usize, f32)> {
        let mut hits = Vec::new();
        if !has_image_markup(raw.as_bytes()) {
            return hits;
        }
        let lower = raw.to_ascii_lowercase();
        let mut starts: Vec<(usize, usize)> = Vec::new();
        for (i, _) in lower.match_indices("](") {
            let opened = lower[..i].rfind("![").is_some_and(|j| i - j <= 300);
            if opened {
                starts.push((i, i + 2));
            }
        }
        for (i, _) in lower.match_indices("<img") {
            if let Some(src) = lower[i..(i + 300).min(lower.len())].find("src=") {
                starts.push((i, i + src + 4));
            }
        }
        for (tag, at) in starts {
            let rest = lower[at..].trim_start_matches(['"', '\'', ' ']);
            if !rest.starts_with("http") {
                continue;
            }
            let url_len = rest
                .find(|c: char| c == ')' || c == '"' || c == '\'' || c.is_whitespace())
                .unwrap_or(rest.len())
                .min(2048);
            let url = rest.get(..url_len).unwrap_or_default();
            if !url.find('?').is_some_and(|q| url[q..].contains('=')) {
                continue;
            }
            let templated = url.contains(['{', '$', '<', '[']) || url.contains("%7b");
            hits.push((
                tag,
                (at + url_len).min(raw.len()),
                if templated {
                    IMAGE_URL_TEMPLATED
                } else {
                    IMAGE_URL_WITH_QUERY
                },
            ));
            if hits.len() >= 4 {
                break;
            }
        }
        hits
    }

    #[test]
    fn image_scan_finds_what_the_reference_finds() {
        const PIECES: &[&str] = &[
            "![a](https://h.example/?q=1)",
            "![a](http",
            "<img src=\"http://h/?a=b\">",
            "![",
            "](",
            "http",
            "https://h.example/",
            "?",
            "=",
            "q",
            " ",
            ")",
            "\"",
            "'",
            "<img ",
            "<IMG ",
            "src=",
            "{",
            "$",
            "%7B",
            "é",
            "\u{a0}",
            "\n",
            "!",
            "[",
            "]",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut with_hits = 0;
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let text: String = (0..len)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            let found: Vec<(usize, usize, f32)> = scan_links(&text)
                .iter()
                .map(|h| (h.start, h.end, h.weight))
                .collect();
            assert_eq!(found, scan_links_reference(&text), "{text:?}");
            with_hits += usize::from(!found.is_empty());
        }
        assert!(with_hits > 100, "only {with_hits} texts with an image link");
        // Long URLs are cut at the same place.
        let long = format!("![a](https://h.example/?q={})", "x".repeat(5000));
        let found: Vec<(usize, usize, f32)> = scan_links(&long)
            .iter()
            .map(|h| (h.start, h.end, h.weight))
            .collect();
        assert_eq!(found, scan_links_reference(&long));
    }
}
