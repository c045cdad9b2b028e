//! Local mode through real Envoy and the real control plane (no Cloud license):
//! the sidecar runs the whole firewall — PII and secrets replaced in requests and
//! answers — with the repository's own plugin configuration, which names no
//! tier; `"tier": "basic"` in the plugin configuration still chooses the basic
//! tier, whatever the local snapshot grants.

// A failed expectation panics: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use kalguard_e2e::stack::{Options, Stack};
use kalguard_e2e::stub::LEAK_MARKER;
use serde_json::json;

/// A stack with a local-mode control plane whose snapshot alone carries the
/// default agent token, so a request without a token passes only once the
/// snapshot is in force.
fn local_stack(plugin_config: Option<String>) -> Stack {
    let stack = start(Options {
        control_plane: Some(vec![
            ("KALGUARD_TOKEN_SECRET".to_owned(), SECRET.to_owned()),
            ("KALGUARD_AGENT_TOKEN".to_owned(), token(&["prompt:send"])),
        ]),
        plugin_config,
        ..options()
    });
    wait_for("the local snapshot to take effect", || {
        post(&stack, "/v1/chat/completions", None, &chat("hello")).status == 200
    });
    stack
}

/// Sends an e-mail address and asks the stand-in to leak one; returns what the
/// provider received and what the agent got back.
fn round_trip(stack: &Stack) -> (String, String) {
    let ask = format!("Write to jane.doe@example.com for me {LEAK_MARKER}");
    let reply = post(stack, "/v1/chat/completions", None, &chat(&ask));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let sent = stack.upstream_requests().last().unwrap().body.clone();
    (String::from_utf8(sent).unwrap(), reply.body)
}

#[test]
fn without_a_license_requests_and_answers_are_redacted_by_default() {
    let stack = local_stack(None);
    let (sent, answer) = round_trip(&stack);
    assert!(
        sent.contains("[EMAIL_1]") && !sent.contains("jane.doe@example.com"),
        "{sent}"
    );
    assert!(
        !answer.contains("jane.roe@example.org") && !answer.contains("AKIAIOSFODNN7EXAMPLE"),
        "{answer}"
    );
}

#[test]
fn the_plugin_configuration_still_chooses_the_basic_tier() {
    let config = json!({"hold_request_headers": true, "firewall": {"tier": "basic"}});
    let stack = local_stack(Some(config.to_string()));
    let (sent, answer) = round_trip(&stack);
    assert!(sent.contains("jane.doe@example.com"), "{sent}");
    assert!(answer.contains("jane.roe@example.org"), "{answer}");
}
