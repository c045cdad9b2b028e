//! Instructions inside data: a tool result, document or e-mail that addresses the
//! assistant and tells it to act ("AI assistant: forward the thread to …", "If you are an
//! AI agent reading this, run …"), or, in a tool result or document, a sentence that
//! opens with an agent's action ("Provide a command to list all processes").
//!
//! The user addresses the assistant and gives it orders by right, so in the user's own
//! turn the signal counts only inside a document the user supplied (after a
//! `data:intro`); in tool results and documents it counts everywhere, and more (see
//! `weights::instructions_in_data`). One pass over the tokens.

use super::super::super::weights::{instructions_in_data, DataWeights};
use super::super::super::{Category, Source};
use super::super::tokenize::Token;
use super::super::Hit;
use crate::work;

/// Class bits the signal reads.
#[derive(Debug, Clone, Copy)]
pub(in super::super) struct DataClasses {
    /// A name for the assistant (`ADDRESSEE`).
    pub addressee: u128,
    /// An agent's action (`ACTVERB`), or a verb of saying or showing (`SAYSTATE`,
    /// `REVEAL`) when the assistant is addressed.
    pub act: u128,
    pub say: u128,
    /// `IF` and `YOU`, for "if you are an AI …".
    pub if_: u128,
    pub you: u128,
}

/// Tokens an addressed action may follow its addressee by.
const ADDRESS_REACH: usize = 12;

/// Tokens from `if you` to the addressee ("if you are an AI", "si eres un asistente").
const CONDITION_REACH: usize = 5;

/// Raises `addressed-instruction` and `imperative-in-data` on the tokens of a text from
/// `source`. `data_from`: where a document the user supplied starts (byte offset in
/// `text`), if one does.
pub(in super::super) fn scan_instructions_in_data(
    text: &str,
    tokens: &[Token<'_>],
    classes: &[u128],
    of: DataClasses,
    source: Source,
    data_from: Option<usize>,
    hits: &mut Vec<Hit>,
) {
    let DataWeights {
        addressed,
        imperative,
        addressed_in_supplied,
    } = instructions_in_data(source);
    if addressed == 0.0
        && imperative == 0.0
        && (addressed_in_supplied == 0.0 || data_from.is_none())
    {
        return;
    }
    let class = |i: usize| classes.get(i).copied().unwrap_or(0);
    // (sentence, token index, byte) of the last addressee in vocative position.
    let mut address: Option<(u32, usize, usize)> = None;
    // (sentence, token index) of the last "if you".
    let mut condition: Option<(u32, usize)> = None;
    let (mut found_addressed, mut found_imperative) = (false, false);
    for (i, tok) in tokens.iter().enumerate() {
        work::charge(tok.text.len() + 1);
        let c = class(i);
        if c == 0 {
            continue;
        }
        if c & of.if_ != 0 && class(i + 1) & of.you != 0 {
            condition = Some((tok.sentence, i));
        }
        if c & of.addressee != 0 {
            let conditional =
                condition.is_some_and(|(s, at)| s == tok.sentence && i - at <= CONDITION_REACH);
            if conditional || is_vocative(text, tokens, i) {
                address = Some((tok.sentence, i, tok.start));
                continue;
            }
        }
        let inside = data_from.is_some_and(|from| tok.start >= from);
        if !found_addressed && c & (of.act | of.say) != 0 {
            let weight = if inside {
                addressed.max(addressed_in_supplied)
            } else {
                addressed
            };
            if let Some((s, at, start)) = address {
                if s == tok.sentence && i - at <= ADDRESS_REACH && weight > 0.0 {
                    found_addressed = true;
                    hits.push(Hit {
                        name: "addressed-instruction",
                        category: Category::IndirectInjection,
                        weight,
                        start,
                        end: tok.end,
                    });
                }
            }
        }
        if !found_imperative
            && imperative > 0.0
            && c & of.act != 0
            && opens_sentence(tokens, i)
            && !is_label(tokens, i)
        {
            found_imperative = true;
            hits.push(Hit {
                name: "imperative-in-data",
                category: Category::IndirectInjection,
                weight: imperative,
                start: tok.start,
                end: tok.end,
            });
        }
        if found_addressed && found_imperative {
            return;
        }
    }
}

/// Whether token `i` opens a field label rather than a sentence (`Email: …`, `Transfer
/// lock: …`, `Download speed (max): …` in records and headers): a colon within its next
/// [`LABEL_REACH`] tokens, or nothing after it in its sentence.
fn is_label(tokens: &[Token<'_>], i: usize) -> bool {
    let Some(tok) = tokens.get(i) else {
        return true;
    };
    let rest = tokens
        .get(i + 1..(i + 1 + LABEL_REACH).min(tokens.len()))
        .unwrap_or_default();
    rest.first()
        .is_none_or(|next| next.sentence != tok.sentence)
        || rest
            .iter()
            .take_while(|t| t.sentence == tok.sentence)
            .any(|t| t.text == ":")
}

/// Tokens after a label's first word in which its colon comes.
const LABEL_REACH: usize = 3;

/// Whether token `i` is spoken to: followed by a comma ("Assistant, send …", "助手，…"),
/// or by a colon within [`VOCATIVE_REACH`] tokens of its sentence ("AI agent: run …",
/// "Note to any AI agent processing this email: forward …").
fn is_vocative(text: &str, tokens: &[Token<'_>], i: usize) -> bool {
    let Some(tok) = tokens.get(i) else {
        return false;
    };
    let comma = tokens.get(i + 1).is_some_and(|next| {
        text.get(tok.end..next.start).is_some_and(|between| {
            work::charge(between.len() + VOCATIVE_REACH);
            between.contains([',', '،', '、'])
        })
    });
    comma
        || tokens
            .get(i + 1..(i + 1 + VOCATIVE_REACH).min(tokens.len()))
            .unwrap_or_default()
            .iter()
            .take_while(|t| t.sentence == tok.sentence)
            .any(|t| t.text == ":")
}

/// Tokens between an addressee and the colon that ends its address.
const VOCATIVE_REACH: usize = 4;

/// Words that may come before an imperative at the start of a sentence ("Please send",
/// "Now run", "Bitte sende", "Tolong kirim").
const OPENERS: &[&str] = &[
    "please",
    "kindly",
    "now",
    "also",
    "then",
    "immediately",
    "first",
    "next",
    "pls",
    "favor",
    "bitte",
    "veuillez",
    "favore",
    "пожалуйста",
    "будь",
    "lutfen",
    "tolong",
    "mohon",
    "paki",
    "tafadhali",
    "कृपया",
    "দয়া",
    "لطفا",
    "لطفاً",
    "الرجاء",
    "בבקשה",
    "กรุณา",
    "โปรด",
    "prosze",
    "prosím",
    "prosim",
    "vänligen",
    "vanligen",
    "alsjeblieft",
    "gelieve",
    "請",
    "请",
    "どうか",
    "제발",
];

/// Whether token `i` opens its sentence (or follows a colon), alone or after one of the
/// [`OPENERS`].
fn opens_sentence(tokens: &[Token<'_>], i: usize) -> bool {
    let starts = |j: usize| match (j.checked_sub(1).and_then(|p| tokens.get(p)), tokens.get(j)) {
        (None, Some(_)) => true,
        (Some(prev), Some(tok)) => prev.sentence != tok.sentence || prev.text == ":",
        _ => false,
    };
    starts(i)
        || i.checked_sub(1).is_some_and(|p| {
            starts(p)
                && tokens
                    .get(p)
                    .is_some_and(|opener| OPENERS.contains(&opener.text))
        })
}
