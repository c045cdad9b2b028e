//! The filter and the real control plane together: the state snapshot reaches
//! every worker, decisions reach the audit log, and no prompt text does.

// A failed expectation panics: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use kalguard_e2e::stack::Options;
use std::time::{Duration, Instant};

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn the_state_channel_delivers_the_default_agent_token_and_decisions_reach_the_audit_log() {
    // The default agent token is only in the control plane's environment: a
    // request without a token can succeed only through the state snapshot.
    let control_plane_env = vec![
        ("KALGUARD_TOKEN_SECRET".to_owned(), SECRET.to_owned()),
        ("KALGUARD_AGENT_TOKEN".to_owned(), token(&["prompt:send"])),
    ];
    let stack = start(Options {
        control_plane: Some(control_plane_env),
        concurrency: 2,
        ..options()
    });
    let secret_prompt = "the launch code is tangerine-42";

    let mut allowed_id = String::new();
    wait_for("the snapshot's default agent token to take effect", || {
        let reply = post(&stack, "/v1/chat/completions", None, &chat(secret_prompt));
        allowed_id = reply
            .header("x-kalguard-request-id")
            .unwrap_or_default()
            .to_owned();
        reply.status == 200
    });
    let forged = token_with("not-the-secret", &["prompt:send"], now() + 60);
    let refused = post(
        &stack,
        "/v1/chat/completions",
        Some(&forged),
        &chat(secret_prompt),
    );
    refused.assert_refused(401, "AUTH_FAILED");
    let refused_id = refused.header("x-kalguard-request-id").unwrap().to_owned();

    let audit_path = stack.data_dir.join("audit.jsonl");
    wait_for("both decisions in the audit log", || {
        let audit = std::fs::read_to_string(&audit_path).unwrap_or_default();
        audit.contains(&allowed_id) && audit.contains(&refused_id)
    });
    let audit = std::fs::read_to_string(&audit_path).unwrap();
    let record = |id: &str| -> serde_json::Value {
        let line = audit.lines().find(|l| l.contains(id)).unwrap();
        serde_json::from_str::<serde_json::Value>(line).unwrap()["event"].clone()
    };
    assert_eq!(record(&allowed_id)["decision"], "allow");
    assert_eq!(record(&allowed_id)["agentId"], "agent-e2e");
    assert_eq!(record(&refused_id)["decision"], "deny");
    assert_eq!(record(&refused_id)["errorCode"], "AUTH_FAILED");
    assert!(
        !audit.contains("tangerine"),
        "prompt text must never reach the audit log"
    );
    assert!(
        !audit.contains(&forged),
        "tokens must never reach the audit log"
    );
}
