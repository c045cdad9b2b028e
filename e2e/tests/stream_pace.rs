//! Streamed answers keep their pace through the advanced tier, in real Envoy: each event
//! the upstream sends carries its own words on to the client, except the tail that could
//! still grow into a sensitive value; split values are still redacted. Counted in events,
//! not timed, so a busy machine cannot fail it.

// A failed expectation panics: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use kalguard_e2e::stack::Options;
use serde_json::{json, Value};

fn advanced() -> Options {
    Options {
        plugin_config: Some(json!({"firewall": {"tier": "advanced"}}).to_string()),
        ..options()
    }
}

/// The text of each event of a chat stream, in order (empty for an event without text).
fn event_texts(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| event.trim().strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .map(|data| {
            let event: Value = serde_json::from_str(data).unwrap();
            event
                .pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// Streams `pieces` from the stand-in through KalGuard; the text of each event received.
fn stream(pieces: &[&str]) -> Vec<String> {
    let stack = start(advanced());
    let reply = stream_pieces(&stack, "How did the quarter go?", pieces);
    assert_eq!(reply.status, 200, "{}", reply.body);
    event_texts(&reply.body)
}

#[test]
fn each_event_carries_its_words_on() {
    // Tokens as models send them: a word with the space before it.
    let words: Vec<String> =
        "The quarterly figures look good and churn fell in every region we track"
            .split(' ')
            .enumerate()
            .map(|(i, w)| {
                if i == 0 {
                    w.to_owned()
                } else {
                    format!(" {w}")
                }
            })
            .collect();
    let pieces: Vec<&str> = words.iter().map(String::as_str).collect();
    let texts = stream(&pieces);
    // The role event, then one event per piece: each releases the word before it (its
    // end was unknown until the space came), and the last word goes out at the end.
    let with_text: Vec<&String> = texts.iter().filter(|t| !t.is_empty()).collect();
    assert!(
        with_text.len() >= pieces.len() - 1,
        "{} of {} events carried text: {texts:?}",
        with_text.len(),
        pieces.len()
    );
    for (k, text) in texts.iter().skip(2).take(pieces.len() - 1).enumerate() {
        assert_eq!(
            text,
            &format!("{} ", pieces[k].trim_start()),
            "event {k}: {texts:?}"
        );
    }
    assert_eq!(texts.concat(), pieces.concat());
}

#[test]
fn only_a_value_that_may_still_grow_is_held_and_it_is_redacted_whole() {
    // A card number in 4-digit pieces, an address in three: held until complete.
    let pieces = [
        "Charge",
        " the",
        " card",
        " 4111",
        " 1111",
        " 1111",
        " 1111",
        " and",
        " mail",
        " jane",
        ".roe@",
        "example.org",
        " today",
        " please",
        " thanks",
    ];
    let texts = stream(&pieces);
    let all = texts.concat();
    assert_eq!(
        all,
        "Charge the card [CREDIT_CARD_1] and mail [EMAIL_1] today please thanks"
    );
    // No event carries part of a value, and the words before it did not wait for it.
    for text in &texts {
        assert!(
            !text.contains("4111") && !text.contains("jane"),
            "{texts:?}"
        );
    }
    let before_card = texts.iter().position(|t| t.contains("card")).unwrap();
    let card = texts
        .iter()
        .position(|t| t.contains("[CREDIT_CARD_1]"))
        .unwrap();
    assert!(before_card < card, "{texts:?}");
    assert!(
        texts.iter().filter(|t| !t.is_empty()).count() >= 8,
        "words around the values were batched: {texts:?}"
    );
}
