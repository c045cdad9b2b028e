//! Policy rules and tool mediation in real Envoy: a policy in the plugin
//! configuration, MCP tool calls allowed and denied, and a policy file
//! hot-reloaded through the real control plane.

// A failed expectation panics: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use kalguard_e2e::stack::{Options, Stack};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn chat_with(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello"}]})
}

fn tool_call(name: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}})
}

/// gpt-4o-mini for everyone, read-only tools.
fn policy() -> Value {
    json!({"version": "1", "rules": [
        {"id": "read-only-tools", "match": {"actions": ["tool:execute"], "tools": ["search", "read_*"]}, "decision": "allow"},
        {"id": "other-tools", "match": {"actions": ["tool:execute"]}, "decision": "deny", "reason": "only read-only tools are allowed"},
        {"id": "mini", "match": {"models": ["gpt-4o-mini"]}, "decision": "allow"}],
        "defaultDecision": "deny", "defaultReason": "model not allowed"})
}

fn upstream_saw(stack: &Stack, needle: &str) -> bool {
    stack
        .upstream_requests()
        .iter()
        .any(|r| String::from_utf8_lossy(&r.body).contains(needle))
}

#[test]
fn a_policy_in_the_plugin_configuration_judges_models_and_mcp_tools() {
    let config =
        json!({"hold_request_headers": true, "control_plane_cluster": "", "policy": policy()});
    let stack = start(Options {
        plugin_config: Some(config.to_string()),
        ..options()
    });
    let t = token(&["prompt:send", "tool:execute"]);

    assert_eq!(
        post(
            &stack,
            "/v1/chat/completions",
            Some(&t),
            &chat_with("gpt-4o-mini")
        )
        .status,
        200
    );
    let refused = post(
        &stack,
        "/v1/chat/completions",
        Some(&t),
        &chat_with("gpt-4o"),
    );
    refused.assert_refused(403, "POLICY_DENY");
    assert_eq!(refused.json()["message"], "model not allowed");

    let allowed = post(
        &stack,
        "/mcp",
        Some(&t),
        &tool_call("search", json!({"q": "rust"})),
    );
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    assert!(
        allowed.body.contains("tool search called"),
        "{}",
        allowed.body
    );

    let denied = post(
        &stack,
        "/mcp",
        Some(&t),
        &tool_call("delete_repo", json!({"name": "kalguard"})),
    );
    denied.assert_refused(403, "TOOL_DENIED");
    let body = denied.json();
    assert_eq!(body["message"], "only read-only tools are allowed");
    assert_eq!(body["data"]["ruleId"], "other-tools");
    assert_eq!(body["data"]["tool"], "delete_repo");
    assert!(
        !upstream_saw(&stack, "delete_repo"),
        "a denied tool call reached the MCP server"
    );

    let leak = post(
        &stack,
        "/mcp",
        Some(&t),
        &tool_call("search", json!({"q": "AKIAIOSFODNN7EXAMPLE"})),
    );
    leak.assert_refused(403, "TOOL_DENIED");
    assert!(!upstream_saw(&stack, "AKIAIOSFODNN7EXAMPLE"));

    // tools/list is protocol housekeeping, not a tool call: it passes.
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    assert_eq!(post(&stack, "/mcp", Some(&t), &list).status, 200);

    // The check API answers with the same engine.
    assert_eq!(
        check(
            &stack,
            "/v1/tool/check",
            &t,
            &json!({"toolName": "read_file"})
        )
        .status,
        200
    );
    check(&stack, "/v1/tool/check", &t, &json!({"toolName": "shell"}))
        .assert_refused(403, "TOOL_DENIED");
}

fn policy_file(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/e2e")
        .join(format!("policy-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("policy.json")
}

fn write(path: &Path, value: &Value) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, value.to_string()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn allow_only(model: &str) -> Value {
    json!({"rules": [{"id": "model", "match": {"models": [model]}, "decision": "allow"}],
           "defaultDecision": "deny", "defaultReason": format!("only {model}")})
}

/// Waits until `model` gets `status`; returns how long that took.
fn until_status(stack: &Stack, token: &str, model: &str, status: u16, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let reply = post(
            stack,
            "/v1/chat/completions",
            Some(token),
            &chat_with(model),
        );
        if reply.status == status {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{model} still answered {} after {limit:?}: {}",
            reply.status,
            reply.body
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_policy_file_edit_takes_effect_within_two_seconds_and_an_invalid_edit_changes_nothing() {
    let path = policy_file("reload");
    write(&path, &allow_only("gpt-4o-mini"));
    let stack = start(Options {
        control_plane: Some(vec![
            ("KALGUARD_TOKEN_SECRET".to_owned(), SECRET.to_owned()),
            (
                "KALGUARD_POLICY_PATH".to_owned(),
                path.display().to_string(),
            ),
        ]),
        ..options()
    });
    let t = token(&["prompt:send"]);
    // The first snapshot reaches the filter.
    until_status(&stack, &t, "gpt-4o", 403, Duration::from_secs(10));
    assert_eq!(
        post(
            &stack,
            "/v1/chat/completions",
            Some(&t),
            &chat_with("gpt-4o-mini")
        )
        .status,
        200
    );

    write(&path, &allow_only("gpt-4o"));
    let took = until_status(&stack, &t, "gpt-4o", 200, Duration::from_secs(2));
    eprintln!("policy edit took effect in {took:?}");
    post(
        &stack,
        "/v1/chat/completions",
        Some(&t),
        &chat_with("gpt-4o-mini"),
    )
    .assert_refused(403, "POLICY_DENY");

    // An invalid edit: the policy in force stays, on every worker.
    let mut broken = allow_only("gpt-4o-mini");
    broken["rules"][0]["match"]["models"] = json!([]);
    write(&path, &broken);
    std::thread::sleep(Duration::from_millis(1500));
    for _ in 0..6 {
        assert_eq!(
            post(
                &stack,
                "/v1/chat/completions",
                Some(&t),
                &chat_with("gpt-4o")
            )
            .status,
            200
        );
        post(
            &stack,
            "/v1/chat/completions",
            Some(&t),
            &chat_with("gpt-4o-mini"),
        )
        .assert_refused(403, "POLICY_DENY");
    }

    // Fixed: in force again within 2 s.
    write(&path, &allow_only("gpt-4o-mini"));
    until_status(&stack, &t, "gpt-4o-mini", 200, Duration::from_secs(2));
}

/// A chat request offering `search` and `delete_repo`, whose answer (from the
/// stand-in) calls `tool`.
fn asking_for(tool: &str, stream: bool) -> Value {
    json!({"model": "gpt-4o-mini", "stream": stream,
        "messages": [{"role": "user", "content": format!("please [[tool:{tool}]]")}],
        "tools": [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}},
                  {"type": "function", "function": {"name": "delete_repo", "parameters": {"type": "object"}}}]})
}

/// The data payloads of an SSE body.
fn sse_data(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter_map(|event| event.lines().find_map(|l| l.strip_prefix("data: ")))
        .filter_map(|data| serde_json::from_str(data).ok())
        .collect()
}

#[test]
fn a_streamed_tool_call_to_a_tool_the_agent_may_not_call_is_refused_and_audited() {
    // The basic tier: the advanced one scans every answer for PII, so it asks for each
    // uncompressed, and only the tool check below would decide that.
    let config = json!({"hold_request_headers": true, "firewall": {"tier": "basic"}});
    let stack = start(Options {
        plugin_config: Some(config.to_string()),
        ..options()
    });
    let t = token(&["prompt:send", "tool:execute:search"]);

    let allowed = post(
        &stack,
        "/v1/chat/completions",
        Some(&t),
        &asking_for("search", true),
    );
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    let events = sse_data(&allowed.body);
    assert_eq!(
        events[1]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
        "search"
    );
    assert!(allowed.body.ends_with("data: [DONE]\n\n"));

    let refused = post(
        &stack,
        "/v1/chat/completions",
        Some(&t),
        &asking_for("delete_repo", true),
    );
    assert_eq!(
        refused.status, 200,
        "the stream had started: {}",
        refused.body
    );
    assert!(
        !refused.body.contains("\"name\":\"delete_repo\""),
        "{}",
        refused.body
    );
    let events = sse_data(&refused.body);
    let error = events
        .iter()
        .find(|e| e.get("error").is_some())
        .expect("an error event");
    assert_eq!(error["error"]["code"], "TOOL_DENIED");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("delete_repo"));
    assert!(
        !refused.body.contains("finish_reason\":\"tool_calls"),
        "{}",
        refused.body
    );
    assert_eq!(refusals(&stack, "TOOL_DENIED"), 1, "{}", stack.prometheus());

    // Whole answers: the held headers let the refusal carry its own status.
    // Istio cannot hold them: the upstream's 200 stays, the body is the refusal.
    let whole = post(
        &stack,
        "/v1/chat/completions",
        Some(&t),
        &asking_for("delete_repo", false),
    );
    if istio::active() {
        assert_eq!(whole.status, 200, "{}", whole.body);
        assert_eq!(whole.json()["errorCode"], "TOOL_DENIED", "{}", whole.body);
        assert!(
            !whole.body.contains("\"name\":\"delete_repo\""),
            "{}",
            whole.body
        );
    } else {
        whole.assert_refused(403, "TOOL_DENIED");
    }
    assert_eq!(whole.json()["data"]["deniedTools"], json!(["delete_repo"]));
    // Only a request whose answer must be checked asks upstream for an uncompressed one.
    let with_gzip = |body: &Value| {
        let headers = [
            ("content-type", "application/json"),
            ("x-kalguard-token", t.as_str()),
            ("accept-encoding", "gzip"),
        ];
        send(
            "POST",
            &stack.url("/v1/chat/completions"),
            &headers,
            Some(body.to_string().as_bytes()),
        );
        stack
            .upstream_requests()
            .last()
            .unwrap()
            .header("accept-encoding")
            .map(str::to_owned)
    };
    // Headers that cannot wait (Istio) leave before the body says whether its
    // tools are checked: the answer is asked uncompressed then (docs/exchange.md).
    let unchecked = if istio::active() { None } else { Some("gzip") };
    assert_eq!(with_gzip(&chat_with("gpt-4o-mini")).as_deref(), unchecked);
    assert_eq!(with_gzip(&asking_for("search", false)), None);
    let fine = post(
        &stack,
        "/v1/chat/completions",
        Some(&t),
        &asking_for("search", false),
    );
    assert_eq!(
        fine.json()["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "search"
    );
}

#[test]
fn in_remove_mode_a_streamed_anthropic_tool_use_is_dropped_and_the_turn_ends() {
    let config = json!({"hold_request_headers": true, "response_tool_calls": "remove",
        "routes": [{"path": "/v1/models*", "action": "pass"}]});
    let stack = start(Options {
        plugin_config: Some(config.to_string()),
        ..options()
    });
    let t = token(&["prompt:send", "tool:execute:search"]);
    let request = json!({"model": "claude-3-5-haiku-latest", "max_tokens": 64, "stream": true,
        "messages": [{"role": "user", "content": "please [[tool:delete_repo]]"}],
        "tools": [{"name": "search", "input_schema": {"type": "object"}},
                  {"name": "delete_repo", "input_schema": {"type": "object"}}]});
    let reply = post(&stack, "/v1/messages", Some(&t), &request);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(!reply.body.contains("delete_repo"), "{}", reply.body);
    let events = sse_data(&reply.body);
    let stop = events
        .iter()
        .find(|e| e["type"] == "message_delta")
        .unwrap();
    assert_eq!(stop["delta"]["stop_reason"], "end_turn");
    // The advanced tier's redactor may release the text in other pieces.
    let text: String = events
        .iter()
        .filter_map(|e| e["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "Calling a tool.", "{}", reply.body);
    assert!(events.iter().any(|e| e["type"] == "message_stop"));
    assert!(events.iter().all(|e| e["index"].as_u64().unwrap_or(0) == 0));
}

#[test]
fn mcp_tools_list_answers_show_only_the_tools_the_agent_may_call() {
    let config = json!({"hold_request_headers": true, "policy": {"rules": [
        {"id": "no-search", "match": {"tools": ["search"]}, "decision": "deny"}], "defaultDecision": "allow"}});
    let stack = start(Options {
        plugin_config: Some(config.to_string()),
        ..options()
    });
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let names = |token: &str| -> Vec<String> {
        let reply = post(&stack, "/mcp", Some(token), &list);
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    // The stand-in offers search and delete_repo.
    assert_eq!(names(&token(&["tool:execute"])), ["delete_repo"]);
    assert!(names(&token(&["tool:execute:search"])).is_empty());
    assert!(names(&token(&["prompt:send"])).is_empty());
}
