//! Plan enforcement in real Envoy: the daily check quota is exact however many
//! worker threads race for it, the agent limit refuses newcomers only, and in
//! Cloud mode every response carries the plan headers while the count is
//! reconciled with the Cloud's `remaining` without counting a check twice.

// A failed expectation panics: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::cloud::{next_midnight, Cloud, Org};
use common::*;
use kalguard_e2e::stack::{Options, Stack};
use kalguard_filter::token::{mint, Claims};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};

fn agent_token(agent: &str) -> String {
    mint(
        &Claims {
            sub: agent.into(),
            capabilities: vec!["prompt:send".into()],
            exp: now() + 3600,
            iat: Some(now()),
            nbf: None,
            iss: Some("kalguard".into()),
            metadata: None,
        },
        SECRET,
    )
}

/// A chat completion as `agent`.
fn chat_as(stack: &Stack, agent: &str) -> Reply {
    post(
        stack,
        "/v1/chat/completions",
        Some(&agent_token(agent)),
        &chat("hi"),
    )
}

/// `GET /v1/models`: a pass route, not a check, yet it carries the plan headers.
fn models(stack: &Stack, token: &str) -> Reply {
    send(
        "GET",
        &stack.url("/v1/models"),
        &[("x-kalguard-token", token)],
        None,
    )
}

/// Waits until the Cloud's license (plan `free`) is in force in the filter.
fn wait_for_the_license(stack: &Stack, token: &str) {
    wait_for("the Cloud license to reach the filter", || {
        models(stack, token).header("x-kalguard-plan") == Some("free")
    });
}

/// The plugin configuration of envoy.yaml with local plan limits, and no
/// control plane.
fn limited(limits: Value) -> Option<String> {
    Some(
        json!({
            "hold_request_headers": true,
            "routes": [{"path": "/v1/models*", "action": "pass"}],
            "control_plane_cluster": "",
            "limits": limits,
        })
        .to_string(),
    )
}

#[test]
fn exactly_the_daily_limit_gets_through_however_many_workers_race() {
    const LIMIT: usize = 40;
    let stack = start(Options {
        plugin_config: limited(json!({"checks_per_day": LIMIT})),
        concurrency: 4,
        ..options()
    });
    let stack = Arc::new(stack);
    let token = Arc::new(token(&["prompt:send"]));
    let (threads, per_thread) = (16, 10);
    let barrier = Arc::new(Barrier::new(threads));
    let replies: Vec<Reply> = (0..threads)
        .map(|_| {
            let (stack, token, barrier) = (stack.clone(), token.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                (0..per_thread)
                    .map(|_| post(&stack, "/v1/chat/completions", Some(&token), &chat("hi")))
                    .collect::<Vec<_>>()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();

    let admitted = replies.iter().filter(|r| r.status == 200).count();
    let refused: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    assert_eq!(admitted, LIMIT, "exactly the limit is admitted");
    assert_eq!(
        refused.len(),
        threads * per_thread - LIMIT,
        "the rest get 429"
    );
    assert_eq!(
        stack.upstream_requests().len(),
        LIMIT,
        "upstream saw only admitted requests"
    );

    let refusal = refused[0];
    refusal.assert_refused(429, "RATE_LIMIT_EXCEEDED");
    let reset = next_midnight();
    assert_eq!(
        refusal.json()["data"],
        json!({"remaining": 0, "resetAt": reset})
    );
    assert_eq!(
        refusal.header("x-ratelimit-reset"),
        Some(reset.to_string().as_str())
    );
    let retry_after: i64 = refusal.header("retry-after").unwrap().parse().unwrap();
    assert!(
        (1..=86_400).contains(&retry_after),
        "retry-after {retry_after}"
    );
    assert!(
        (reset - now() - retry_after).abs() <= 2,
        "retry-after counts down to the reset"
    );
    assert_eq!(
        refusal.header("x-kalguard-plan"),
        None,
        "plan headers are for Cloud mode"
    );
    assert_eq!(refusals(&stack, "RATE_LIMIT_EXCEEDED"), 120);
}

#[test]
fn agents_beyond_the_limit_are_refused_and_admitted_ones_keep_working() {
    let stack = start(Options {
        plugin_config: limited(json!({"max_agents": 2})),
        concurrency: 2,
        ..options()
    });
    assert_eq!(chat_as(&stack, "agent-a").status, 200);
    assert_eq!(chat_as(&stack, "agent-b").status, 200);
    chat_as(&stack, "agent-c").assert_refused(403, "AGENT_LIMIT_EXCEEDED");
    for _ in 0..4 {
        assert_eq!(
            chat_as(&stack, "agent-a").status,
            200,
            "admitted agents keep working"
        );
        assert_eq!(chat_as(&stack, "agent-b").status, 200);
    }
    chat_as(&stack, "agent-c").assert_refused(403, "AGENT_LIMIT_EXCEEDED");
}

#[test]
fn cloud_mode_carries_plan_headers_and_reconciles_with_the_clouds_remaining() {
    // A free plan of 5 checks and 1 agent a day.
    let org = Org::free(5, 1, SECRET);
    let cloud = Cloud::start(org.clone());

    let stack = start(cloud.options());
    let token = agent_token("agent-e2e");
    let reset = next_midnight().to_string();
    let models = || models(&stack, &token);
    wait_for_the_license(&stack, &token);
    let before = models();
    assert_eq!(before.header("x-kalguard-usage-remaining"), Some("5"));
    assert_eq!(before.header("x-ratelimit-reset"), Some(reset.as_str()));

    for left in ["4", "3"] {
        let reply = post(&stack, "/v1/chat/completions", Some(&token), &chat("hi"));
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.header("x-kalguard-plan"), Some("free"));
        assert_eq!(reply.header("x-kalguard-usage-remaining"), Some(left));
        assert_eq!(reply.header("x-ratelimit-reset"), Some(reset.as_str()));
    }
    // Another sidecar of the organisation spends one check; the Cloud now
    // has 5 - 2 - 1 = 2 left, of which none are this sidecar's to lose twice.
    org.other_sidecar_spends.store(1, Ordering::SeqCst);
    wait_for("the usage report's remaining to reach the filter", || {
        models().header("x-kalguard-usage-remaining") == Some("2")
    });
    assert_eq!(org.remaining.load(Ordering::SeqCst), 2);

    let other = post(
        &stack,
        "/v1/chat/completions",
        Some(&agent_token("second-agent")),
        &chat("hi"),
    );
    other.assert_refused(403, "AGENT_LIMIT_EXCEEDED");
    assert_eq!(
        other.header("x-kalguard-plan"),
        Some("free"),
        "refusals carry the plan headers"
    );

    for left in ["1", "0"] {
        let reply = post(&stack, "/v1/chat/completions", Some(&token), &chat("hi"));
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.header("x-kalguard-usage-remaining"), Some(left));
    }
    let exhausted = post(&stack, "/v1/chat/completions", Some(&token), &chat("hi"));
    exhausted.assert_refused(429, "RATE_LIMIT_EXCEEDED");
    assert_eq!(exhausted.header("x-kalguard-plan"), Some("free"));
    assert_eq!(exhausted.header("x-kalguard-usage-remaining"), Some("0"));
    assert_eq!(exhausted.header("x-ratelimit-reset"), Some(reset.as_str()));

    wait_for("every check reported to the Cloud", || {
        org.remaining.load(Ordering::SeqCst) == 0
    });
    wait_for(
        "the plan gate's refusals reported, with their agents",
        || {
            let refusals = org.refusals.lock().unwrap();
            refusals.contains(&"second-agent AGENT_LIMIT_EXCEEDED".to_owned())
                && refusals.contains(&"agent-e2e RATE_LIMIT_EXCEEDED".to_owned())
        },
    );
    let chats = stack
        .upstream_requests()
        .iter()
        .filter(|r| r.path == "/v1/chat/completions")
        .count();
    assert_eq!(chats, 4, "only admitted checks reached upstream");
}

#[test]
fn the_agent_limit_holds_across_the_organisations_sidecars() {
    // A free plan's one agent already checked in today through another sidecar.
    let org = Org::free(100, 1, SECRET);
    org.agents_today
        .lock()
        .unwrap()
        .push("agent-on-another-sidecar".into());
    let cloud = Cloud::start(org.clone());
    let stack = start(cloud.options());
    wait_for_the_license(&stack, &agent_token("probe"));
    chat_as(&stack, "agent-e2e").assert_refused(403, "AGENT_LIMIT_EXCEEDED");
    let same = chat_as(&stack, "agent-on-another-sidecar");
    assert_eq!(
        same.status, 200,
        "the organisation's agent is no new agent: {}",
        same.body
    );
}
