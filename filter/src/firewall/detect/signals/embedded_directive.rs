//! A directive that scripts the reader's answer, inside a document the user supplied.

use super::super::super::lexicon::EMBEDDED_DIRECTIVE_MIN_GAP;
use super::super::super::weights::EMBEDDED_DIRECTIVE_WEIGHT;
use super::super::super::Category;
use super::super::tokenize::Token;
use super::super::Hit;
use crate::work;

/// Turns a `data:directive` found inside a document the user supplied into one
/// `answer-scripted-in-data` signal, and drops the weightless `data:` hits.
///
/// Inside means after a `data:intro` ("summarise this page", "given the following
/// table") and at least [`EMBEDDED_DIRECTIVE_MIN_GAP`] bytes of the document. Documents
/// say "let's say" and "we could assume" for their own reasons, so the directive must
/// also script the answer to the question asked: a content word of the request before the
/// document ("what is the *capital* …", "the *output* of this code") in the
/// [`SCRIPT_WINDOW`] tokens it starts. A directive inside an HTML comment, which no reader of
/// the page sees, needs no such link.
pub(in super::super) fn score_embedded_directive(
    text: &str,
    tokens: &[Token<'_>],
    hits: &mut Vec<Hit>,
) {
    work::charge(hits.len());
    let intro = hits
        .iter()
        .filter(|h| h.name == "data:intro")
        .map(|h| (h.start, h.end))
        .min();
    let directive = intro.and_then(|(intro_start, intro_end)| {
        let asked = request_words(text, tokens, intro_start, intro_end);
        let mut candidates: Vec<(usize, usize)> = hits
            .iter()
            .filter(|h| h.name == "data:directive")
            .filter(|h| h.start >= intro_end + EMBEDDED_DIRECTIVE_MIN_GAP)
            .map(|h| (h.start, h.end))
            .collect();
        // In text order, so the comment state is read once up to the last directive,
        // not from the start for each (a data rule fires up to 16 times).
        candidates.sort_unstable();
        let mut comments = CommentState::default();
        candidates.into_iter().find(|&(start, _)| {
            comments.inside(text, start) || scripts_an_asked_word(tokens, start, &asked)
        })
    });
    hits.retain(|h| !h.name.starts_with("data:"));
    if let Some((start, end)) = directive {
        hits.push(Hit {
            name: "answer-scripted-in-data",
            category: Category::IndirectInjection,
            weight: EMBEDDED_DIRECTIVE_WEIGHT,
            start,
            end,
        });
    }
}

/// Tokens from the start of a directive searched for a word of the request.
const SCRIPT_WINDOW: usize = 12;

/// Most request words kept (the question before a document is short).
const MAX_REQUEST_WORDS: usize = 16;

/// Content words of the request: the tokens before the document's introduction (which
/// starts at byte `intro_start` and ends at `intro_end`) and up to three after it in its
/// sentence ("what does this function *return*"), unless the document has begun by then
/// (a colon, quote, tag or line break after the introduction: "summarise this review:
/// The battery …"), of three characters or more, not function words.
fn request_words<'t>(
    text: &str,
    tokens: &[Token<'t>],
    intro_start: usize,
    intro_end: usize,
) -> Vec<&'t str> {
    const FUNCTION_WORDS: &[&str] = &[
        "the", "and", "are", "was", "what", "which", "who", "whom", "whose", "why", "when",
        "where", "how", "does", "did", "can", "could", "would", "should", "will", "you", "your",
        "this", "that", "these", "those", "for", "from", "with", "about", "into", "please", "tell",
        "give", "based", "given", "all", "any", "its", "it's", "there", "their", "them", "they",
        "have", "has", "had", "not", "but", "our", "out", "use",
    ];
    work::charge(tokens.len());
    let before = tokens.iter().take_while(|t| t.end <= intro_start);
    let after = tokens.iter().skip_while(|t| t.start < intro_end);
    let intro_sentence = tokens
        .iter()
        .find(|t| t.start >= intro_start)
        .map(|t| t.sentence);
    let document_begun = |t: &Token<'_>| {
        text.get(intro_end..t.start)
            .is_none_or(|between| between.contains([':', '\'', '"', '<', '\n', '`']))
    };
    before
        .chain(
            after
                .take(3)
                .filter(|t| Some(t.sentence) == intro_sentence && !document_begun(t)),
        )
        .filter(|t| t.text.chars().count() >= 3 && !FUNCTION_WORDS.contains(&t.text))
        .map(|t| t.text)
        .take(MAX_REQUEST_WORDS)
        .collect()
}

/// Whether one of the [`SCRIPT_WINDOW`] tokens from the one starting at byte `start` (the
/// directive and the claim it scripts) shares a stem with a request word. Only what follows
/// counts: the document before it naturally repeats the question's words.
fn scripts_an_asked_word(tokens: &[Token<'_>], start: usize, asked: &[&str]) -> bool {
    work::charge(tokens.len().max(2).ilog2() as usize + SCRIPT_WINDOW * asked.len());
    let at = tokens.partition_point(|t| t.start < start);
    tokens
        .get(at..(at + SCRIPT_WINDOW).min(tokens.len()))
        .unwrap_or_default()
        .iter()
        .any(|t| asked.iter().any(|w| same_stem(t.text, w)))
}

/// Equal, or one a prefix of the other longer by at most three bytes (`conclusion`,
/// `conclusions`), for words of five bytes or more.
fn same_stem(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short == long || (short.len() >= 5 && long.len() - short.len() <= 3 && long.starts_with(short))
}

/// Whether a byte of a text lies inside an HTML comment (`<!-- … -->`), asked at
/// ascending bytes: the last opener and closer seen so far, each byte read once.
#[derive(Default)]
struct CommentState {
    /// Bytes before this one are read.
    read: usize,
    /// Start of the last `<!--` and of the last `-->` wholly before `read`.
    open: Option<usize>,
    close: Option<usize>,
}

impl CommentState {
    /// Whether byte `at` of `text` lies inside an HTML comment; `at` never less than
    /// the last asked.
    fn inside(&mut self, text: &str, at: usize) -> bool {
        let bytes = text.as_bytes();
        let at = at.min(bytes.len());
        if at > self.read {
            // A marker ending after `read` starts at most three bytes before it.
            let from = self.read.saturating_sub(3);
            let span = bytes.get(from..at).unwrap_or_default();
            work::charge(span.len());
            let last = |marker: &[u8]| {
                span.windows(marker.len())
                    .rposition(|w| w == marker)
                    .map(|p| from + p)
            };
            self.open = last(b"<!--").max(self.open);
            self.close = last(b"-->").max(self.close);
            self.read = at;
        }
        match (self.open, self.close) {
            (Some(open), Some(close)) => open > close,
            (Some(_), None) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether byte `at` lies inside an HTML comment, read from the text's start: what
    /// [`CommentState`] answers in one pass.
    fn inside_from_start(text: &str, at: usize) -> bool {
        let before = text.get(..at).unwrap_or_default();
        match (before.rfind("<!--"), before.rfind("-->")) {
            (Some(open), Some(close)) => open > close,
            (Some(_), None) => true,
            _ => false,
        }
    }

    #[test]
    fn comment_state_answers_as_a_read_from_the_start() {
        let pieces = ["<!--", "-->", "<!-->", "<!", "--", ">", "a", " ", "<", "-"];
        let mut seed = 5u64;
        for _ in 0..2000 {
            let mut text = String::new();
            for _ in 0..20 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                text.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
            }
            let mut state = CommentState::default();
            let mut at = 0;
            while at <= text.len() {
                assert_eq!(
                    state.inside(&text, at),
                    inside_from_start(&text, at),
                    "{text:?} at {at}"
                );
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                at += (seed >> 33) as usize % 4;
            }
        }
    }
}
