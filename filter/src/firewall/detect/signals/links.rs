//! Markdown and HTML images whose URL carries a query (exfiltration by rendering).

use super::super::super::weights::{IMAGE_URL_TEMPLATED, IMAGE_URL_WITH_QUERY};
use super::super::super::Category;
use super::super::Hit;

/// `![` or `<img` (any case) somewhere in `bytes`: one pass, no lowercase copy.
fn has_image_markup(bytes: &[u8]) -> bool {
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
pub(in super::super::super) fn scan_links(raw: &str) -> Vec<Hit> {
    const MAX_URL: usize = 2048;
    let mut hits = Vec::new();
    if !has_image_markup(raw.as_bytes()) {
        return hits;
    }
    let lower = raw.to_ascii_lowercase();
    let mut starts: Vec<(usize, usize)> = Vec::new();
    for (i, _) in lower.match_indices("](") {
        let opened = lower
            .get(..i)
            .and_then(|t| t.rfind("!["))
            .is_some_and(|j| i - j <= 300);
        if opened {
            starts.push((i, i + 2));
        }
    }
    for (i, _) in lower.match_indices("<img") {
        if let Some(src) = lower
            .get(i..(i + 300).min(lower.len()))
            .and_then(|t| t.find("src="))
        {
            starts.push((i, i + src + 4));
        }
    }
    for (tag, at) in starts {
        let Some(rest) = lower.get(at..) else {
            continue;
        };
        let rest = rest.trim_start_matches(['"', '\'', ' ']);
        if !rest.starts_with("http") {
            continue;
        }
        let url_len = rest
            .find(|c: char| c == ')' || c == '"' || c == '\'' || c.is_whitespace())
            .unwrap_or(rest.len())
            .min(MAX_URL);
        let url = rest.get(..url_len).unwrap_or_default();
        let query = url
            .find('?')
            .is_some_and(|q| url.get(q..).is_some_and(|t| t.contains('=')));
        if !query {
            continue;
        }
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
            break;
        }
    }
    hits
}
