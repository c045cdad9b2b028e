//! The filter and the real control plane together: the state snapshot reaches
//! every worker, decisions reach the audit log, and no prompt text does.

// A failed expectation panics: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::cloud::{Cloud, Org};
use common::*;
use kalguard_e2e::stack::Options;
use std::time::{Duration, Instant};

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

/// DESIGN.md: a token revoked in the Cloud is refused on the next request after
/// the control plane's next sync; the filter side (long-poll, shared data,
/// every worker's next request) adds under a second. The sync is triggered
/// with SIGHUP rather than waited for (the interval is at least 10 s).
#[test]
fn a_token_revoked_in_the_cloud_is_refused_right_after_the_next_sync() {
    let org = Org::free(1_000, 10, SECRET);
    let cloud = Cloud::start(org.clone());
    let stack = start(cloud.options());
    let agent = token(&["prompt:send"]);
    let ask = || post(&stack, "/v1/chat/completions", Some(&agent), &chat("hi"));
    wait_for("the license's signing secret to reach the filter", || {
        ask().status == 200
    });
    let hash = kalguard_filter::token::token_hash(&agent);
    let revocation_published = || {
        stack
            .control_plane("/v1/filter/state?version=0")
            .contains(&hash)
    };
    org.revoked_token_hashes.lock().unwrap().push(hash.clone());
    let hangup = Instant::now();
    let pid = stack.control_plane_pid().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());

    let (mut published, mut refused) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while refused.is_none() && Instant::now() < deadline {
        if published.is_none() && revocation_published() {
            published = Some(Instant::now());
        }
        let reply = ask();
        if reply.status == 401 {
            reply.assert_refused(401, "TOKEN_REVOKED");
            refused = Some(Instant::now());
        } else {
            assert_eq!(reply.status, 200, "{}", reply.body);
        }
    }
    let refused = refused.expect("the revoked token was never refused");
    let published = published.unwrap_or(refused);
    let filter_side = refused.saturating_duration_since(published);
    println!(
        "revocation: refused {:?} after the sync was asked for; filter side (control plane published → refused) {:?}",
        refused - hangup,
        filter_side
    );
    assert!(
        filter_side < Duration::from_secs(1),
        "the filter side took {filter_side:?}"
    );
    assert!(org.validations.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    wait_for(
        "the revoked token's refusals audited in the Cloud under its agent",
        || {
            org.refusals
                .lock()
                .unwrap()
                .contains(&"agent-e2e TOKEN_REVOKED".to_owned())
        },
    );
}
