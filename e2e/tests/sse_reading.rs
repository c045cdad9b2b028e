//! Streamed answers read without a JSON value, in real Envoy: events in one envelope
//! (read by comparing bytes), events whose text has escapes (read by serde), values
//! split across both kinds. Every value is redacted and every other word arrives.

// A failed expectation panics: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use kalguard_e2e::stack::Options;
use serde_json::{json, Value};

/// The text a client reassembles from a chat stream.
fn stream_text(body: &str) -> String {
    body.split("\n\n")
        .filter_map(|event| event.trim().strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .filter_map(|event| {
            event
                .pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect()
}

/// Streams `pieces` (one event each, in one envelope) through KalGuard's advanced tier.
fn stream(pieces: &[&str]) -> String {
    let stack = start(Options {
        plugin_config: Some(json!({"firewall": {"tier": "advanced"}}).to_string()),
        ..options()
    });
    let reply = stream_pieces(&stack, "Who do I write to?", pieces);
    assert_eq!(reply.status, 200, "{}", reply.body);
    stream_text(&reply.body)
}

#[test]
fn values_split_across_plain_and_escaped_events_are_redacted() {
    let text = stream(&[
        "Write to jane.d",
        "oe@example.com",
        " or \"call\" +1 415 555 01",
        "32 now.\nThe key: AKIA",
        "IOSFODNN7EXAMPLE",
        " and x\",\"refusal\":\"bob.smith@corp.example.org",
        " then ok.",
    ]);
    for value in [
        "jane.doe@example.com",
        "oe@example.com",
        "555 0132",
        "AKIAIOSFODNN7EXAMPLE",
        "bob.smith@corp.example.org",
    ] {
        assert!(!text.contains(value), "{value} in {text:?}");
    }
    assert!(
        text.contains("[EMAIL_1]") && text.contains("[EMAIL_2]"),
        "{text:?}"
    );
    assert!(text.starts_with("Write to "), "{text:?}");
    assert!(
        text.contains(" or \"call\" ") && text.contains("\nThe key: "),
        "{text:?}"
    );
    assert!(text.contains(" and x\",\"refusal\":\""), "{text:?}");
    assert!(text.ends_with(" then ok."), "{text:?}");
}
