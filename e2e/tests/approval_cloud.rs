//! Inline approval in Cloud mode, with everything real: Envoy with the
//! filter, the control plane, and the self-hosted Cloud (`kalguard-cloud`,
//! `KALGUARD_CLOUD_BIN` or the workspace's newest build; skipped, loudly,
//! without one unless `KALGUARD_TEST_REQUIRE_ALL=1`). A held request is
//! relayed to the Cloud; approved on its dashboard it goes upstream byte for
//! byte, denied there the agent reads who denied it and why; the CLI still
//! decides in Cloud mode, the Cloud then shows it settled and offers no
//! second decision.

// A failed expectation panics: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::real_cloud::*;
use common::*;
use kalguard_e2e::stack::Stack;
use serde_json::{json, Value};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// o1 models wait for a person.
fn plugin_config() -> String {
    json!({"hold_request_headers": true, "approval_timeout": 30, "policy": {"version": "7", "rules": [
        {"id": "o1", "match": {"models": ["o1*"]}, "decision": "require_approval", "reason": "o1 needs a human"}],
        "defaultDecision": "allow"}})
    .to_string()
}

fn o1_chat(content: &str) -> Vec<u8> {
    format!(r#"{{ "model":"o1-mini",  "messages":[{{"role":"user","content":"{content}"}}] }}"#)
        .into_bytes()
}

fn send_held(stack: &Stack, token: &str, body: Vec<u8>) -> JoinHandle<Reply> {
    let url = stack.url("/v1/chat/completions");
    let token = token.to_owned();
    std::thread::spawn(move || {
        send(
            "POST",
            &url,
            &[
                ("content-type", "application/json"),
                ("x-kalguard-token", token.as_str()),
            ],
            Some(&body),
        )
    })
}

impl Dashboard {
    /// The ID of the one approval waiting on the Approvals page, once there is one.
    fn waiting_approval(&mut self) -> (String, String) {
        let mut found = None;
        wait_for("the approval to reach the Cloud", || {
            let page = self.get("/approvals");
            let waiting = page.split("<h3>Ended</h3>").next().unwrap_or_default();
            found = waiting
                .split("data-approval-id=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .map(|id| (id.to_owned(), page.clone()));
            found.is_some()
        });
        found.unwrap()
    }

    /// Decides on the Approvals page with the session's CSRF token.
    fn decide(&mut self, id: &str, verdict: &str, fields: &[(&str, &str)]) -> String {
        let csrf = csrf_of(&self.get("/approvals"));
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        let (status, location) = self.post(&format!("/approvals/{id}/{verdict}"), &form);
        assert_eq!(status, 303, "{verdict} {id}: {location}");
        location
    }
}

fn approval_audit(stack: &Stack) -> Vec<Value> {
    std::fs::read_to_string(stack.data_dir.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["event"].clone())
        .filter(|event| event["eventType"] == "approval")
        .collect()
}

#[test]
fn a_request_approved_on_the_clouds_dashboard_goes_upstream_and_one_denied_there_is_refused() {
    let Some((cloud, stack)) = cloud_and_stack(plugin_config()) else {
        return;
    };
    let mut owner = Dashboard::login(&cloud);
    let upstream_before = stack.upstream_requests().len();

    let body = o1_chat("plan the quarter");
    let held = send_held(&stack, &cloud.token, body.clone());
    let (id, page) = owner.waiting_approval();
    assert!(id.starts_with("ap_"), "{id}");
    for shown in [
        "agent-e2e",
        "prompt:check o1-mini",
        "o1 needs a human",
        "/v1/chat/completions",
    ] {
        assert!(page.contains(shown), "{shown} not on the Approvals page");
    }
    assert_eq!(stack.upstream_requests().len(), upstream_before, "held");

    let clicked = Instant::now();
    assert_eq!(
        owner.decide(&id, "approve", &[]),
        "/approvals?notice=approved"
    );
    let reply = held.join().unwrap();
    let took = clicked.elapsed();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(took < Duration::from_secs(5), "picked up after {took:?}");
    let upstream = stack.upstream_requests();
    assert_eq!(upstream.len(), upstream_before + 1);
    assert_eq!(upstream.last().unwrap().body, body, "byte for byte");
    let audited = approval_audit(&stack);
    let approved = audited.iter().find(|r| r["outcome"] == "approved").unwrap();
    assert_eq!(approved["approvalId"], id.as_str());
    assert_eq!(approved["by"], format!("{OWNER} (Cloud)"));
    // Decided once: the dashboard offers no second decision.
    assert_eq!(
        owner.decide(&id, "deny", &[]),
        "/approvals?notice=approval_gone"
    );
    let log = owner.get("/admin-log");
    assert!(log.contains("approval.approved") && log.contains(&id));

    // Denied on the dashboard: the agent reads who and why.
    let held = send_held(&stack, &cloud.token, o1_chat("plan the year"));
    let (second, _) = owner.waiting_approval();
    assert_ne!(second, id);
    assert_eq!(
        owner.decide(&second, "deny", &[("reason", "not this quarter")]),
        "/approvals?notice=denied"
    );
    let reply = held.join().unwrap();
    reply.assert_refused(403, "REQUIRE_APPROVAL");
    assert_eq!(
        reply.json()["message"],
        format!("o1 needs a human (denied by {OWNER} (Cloud): not this quarter)")
    );
    assert_eq!(stack.upstream_requests().len(), upstream_before + 1);
}

#[test]
fn in_cloud_mode_the_cli_still_decides_and_the_cloud_shows_it_settled() {
    let Some((cloud, stack)) = cloud_and_stack(plugin_config()) else {
        return;
    };
    let mut owner = Dashboard::login(&cloud);
    let held = send_held(&stack, &cloud.token, o1_chat("plan the week"));
    let (id, _) = owner.waiting_approval();

    kalguard(&stack, &["approvals", "approve", &id, "--by", "alice"]);
    assert_eq!(held.join().unwrap().status, 200);
    wait_for("the Cloud to show the CLI's approval", || {
        let page = owner.get("/approvals");
        let ended = page.split("<h3>Ended</h3>").nth(1).unwrap_or_default();
        ended.contains(&id) && ended.contains("alice (control plane)")
    });
    assert_eq!(
        owner.decide(&id, "deny", &[]),
        "/approvals?notice=approval_gone"
    );
}
