//! Spotlighting through real Envoy: for each provider format and both modes,
//! exactly what reaches the upstream — the tool results marked (the original
//! text recoverable), one instruction added to the system prompt in the
//! provider's form, nothing else changed, the length right — and a request
//! without tool results forwarded byte for byte. The official SDKs' requests
//! go through it too.

// A failed expectation panics: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::*;
use kalguard_e2e::stack::{envoy_binary, Options, Stack};
use serde_json::{json, Value};
use std::process::Command;

/// A tool's output with line breaks, a double space, a tab, and characters the
/// datamark strips (a zero-width space, a private-use character).
const RESULT: &str = "Meeting moved to 3 pm.\n\nBring the  slides\tand the budget.\u{200B}\u{E000}";
/// [`RESULT`] without the characters the datamark strips.
const RESULT_STRIPPED: &str = "Meeting moved to 3 pm.\n\nBring the  slides\tand the budget.";

fn spotlit(mode: &str) -> Stack {
    let config = json!({"hold_request_headers": true, "spotlight": {"mode": mode}});
    start(Options {
        plugin_config: Some(config.to_string()),
        ..options()
    })
}

/// The one request the upstream received: its JSON, after checking its length.
fn forwarded(stack: &Stack) -> Value {
    let upstream = stack.upstream_requests();
    assert_eq!(upstream.len(), 1);
    let length = upstream[0]
        .header("content-length")
        .expect("a held request carries its length");
    assert_eq!(length.parse::<usize>().unwrap(), upstream[0].body.len());
    serde_json::from_slice(&upstream[0].body).expect("upstream got valid JSON")
}

/// The datamark's marker, as the instruction names it: `ˆ` + 8 of [a-z2-7] + `ˆ`.
fn marker_in(instruction: &str) -> String {
    let start = instruction
        .find('ˆ')
        .expect("the instruction names the marker");
    let marker: String = instruction[start..].chars().take(10).collect();
    let inner: Vec<char> = marker.chars().collect();
    assert_eq!(inner.len(), 10, "{instruction}");
    assert_eq!(inner[9], 'ˆ', "{instruction}");
    assert!(inner[1..9]
        .iter()
        .all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(c)));
    marker
}

/// The text a datamark hides, recovered independently of the filter's code:
/// a leading marker goes; a marker before whitespace goes; one before anything
/// else stood for a single space.
fn unmark(marked: &str, marker: &str) -> String {
    let rest = marked
        .strip_prefix(marker)
        .expect("a marked result starts with the marker");
    let mut out = String::new();
    for (i, piece) in rest.split(marker).enumerate() {
        if i > 0 && !piece.starts_with(char::is_whitespace) {
            out.push(' ');
        }
        out.push_str(piece);
    }
    out
}

/// What the tool result became, checked against the mode; the marker if datamarked.
fn assert_marked(mode: &str, sent: &str, instruction: &str) -> Option<String> {
    if mode == "encode" {
        assert!(instruction.contains("base64"), "{instruction}");
        assert_eq!(STANDARD.decode(sent).unwrap(), RESULT.as_bytes());
        return None;
    }
    let marker = marker_in(instruction);
    assert_eq!(unmark(sent, &marker), RESULT_STRIPPED);
    assert!(
        !sent.contains(' ') || sent.contains("  "),
        "single spaces are marked: {sent}"
    );
    Some(marker)
}

/// Sends `body` on `path` through a stack spotlighting in `mode`; the upstream's copy.
fn through(mode: &str, path: &str, body: &Value) -> Value {
    let stack = spotlit(mode);
    let t = token(&["prompt:send"]);
    let reply = post(&stack, path, Some(&t), body);
    assert_eq!(reply.status, 200, "{}", reply.body);
    forwarded(&stack)
}

const INSTRUCTION_START: &str = "Security notice from the gateway";

#[test]
fn openai_chat_tool_messages_are_spotlighted() {
    let body = json!({"model": "gpt-4o", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What changed in my calendar?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "read_calendar", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": RESULT}]});
    for mode in ["datamark", "encode"] {
        let sent = through(mode, "/v1/chat/completions", &body);
        let system = sent["messages"][0]["content"].as_str().unwrap();
        let instruction = system.strip_prefix("Be brief.\n\n").expect(system);
        assert!(instruction.starts_with(INSTRUCTION_START), "{instruction}");
        let result = sent["messages"][3]["content"].as_str().unwrap();
        assert_marked(mode, result, instruction);
        // Nothing else changed.
        let mut expected = body.clone();
        expected["messages"][0]["content"] = system.into();
        expected["messages"][3]["content"] = result.into();
        assert_eq!(sent, expected, "{mode}");
    }
    // Without a system message, one is put first.
    let mut bare = body.clone();
    bare["messages"].as_array_mut().unwrap().remove(0);
    let sent = through("datamark", "/v1/chat/completions", &bare);
    assert_eq!(sent["messages"].as_array().unwrap().len(), 4);
    assert_eq!(sent["messages"][0]["role"], "system");
    let instruction = sent["messages"][0]["content"].as_str().unwrap();
    assert_marked(
        "datamark",
        sent["messages"][3]["content"].as_str().unwrap(),
        instruction,
    );
}

#[test]
fn openai_responses_function_call_outputs_are_spotlighted() {
    let body = json!({"model": "gpt-4.1", "instructions": "Be brief.", "input": [
        {"role": "user", "content": "What changed in my calendar?"},
        {"type": "function_call", "call_id": "c1", "name": "read_calendar", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": RESULT}]});
    for mode in ["datamark", "encode"] {
        let sent = through(mode, "/v1/responses", &body);
        let instructions = sent["instructions"].as_str().unwrap();
        let instruction = instructions
            .strip_prefix("Be brief.\n\n")
            .expect(instructions);
        assert!(instruction.starts_with(INSTRUCTION_START));
        let output = sent["input"][2]["output"].as_str().unwrap();
        assert_marked(mode, output, instruction);
        let mut expected = body.clone();
        expected["instructions"] = instructions.into();
        expected["input"][2]["output"] = output.into();
        assert_eq!(sent, expected, "{mode}");
    }
}

#[test]
fn anthropic_tool_results_are_spotlighted() {
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 256,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "What changed in my calendar?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "read_calendar", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                "content": [{"type": "text", "text": RESULT}]}]}]});
    for mode in ["datamark", "encode"] {
        let sent = through(mode, "/v1/messages", &body);
        let system = sent["system"].as_array().unwrap();
        assert_eq!(system.len(), 2);
        assert_eq!(
            system[0], body["system"][0],
            "the cached block stays as it was"
        );
        assert_eq!(system[1]["type"], "text");
        let instruction = system[1]["text"].as_str().unwrap();
        assert!(instruction.starts_with(INSTRUCTION_START));
        let text = sent["messages"][2]["content"][0]["content"][0]["text"]
            .as_str()
            .unwrap();
        assert_marked(mode, text, instruction);
        let mut expected = body.clone();
        expected["system"] = sent["system"].clone();
        expected["messages"][2]["content"][0]["content"][0]["text"] = text.into();
        assert_eq!(sent, expected, "{mode}");
    }
    // A string result, and a string system prompt.
    let mut plain = body.clone();
    plain["system"] = "Be brief.".into();
    plain["messages"][2]["content"][0]["content"] = RESULT.into();
    let sent = through("datamark", "/v1/messages", &plain);
    let instruction = sent["system"]
        .as_str()
        .unwrap()
        .strip_prefix("Be brief.\n\n")
        .unwrap();
    let result = sent["messages"][2]["content"][0]["content"]
        .as_str()
        .unwrap();
    assert_marked("datamark", result, instruction);
}

#[test]
fn each_request_gets_a_fresh_marker() {
    let stack = spotlit("datamark");
    let t = token(&["prompt:send"]);
    let body = json!({"model": "gpt-4o", "messages": [
        {"role": "tool", "tool_call_id": "c1", "content": "same words"}]});
    for _ in 0..3 {
        let reply = post(&stack, "/v1/chat/completions", Some(&t), &body);
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let markers: Vec<String> = stack
        .upstream_requests()
        .iter()
        .map(|r| {
            let sent: Value = serde_json::from_slice(&r.body).unwrap();
            marker_in(sent["messages"][0]["content"].as_str().unwrap())
        })
        .collect();
    assert_eq!(markers.len(), 3);
    assert!(
        markers[0] != markers[1] && markers[1] != markers[2] && markers[0] != markers[2],
        "{markers:?}"
    );
}

#[test]
fn requests_without_tool_results_go_byte_for_byte() {
    let stack = spotlit("datamark");
    let t = token(&["prompt:send"]);
    let bodies = [
        (
            "/v1/chat/completions",
            r#"{"model":"gpt-4o",  "messages":[{"role":"system","content":"a  b"},{"role":"user","content":"hello there"}]}"#,
        ),
        (
            "/v1/responses",
            r#"{"model":"gpt-4.1","input":"hello there" ,"instructions":"x"}"#,
        ),
        (
            "/v1/messages",
            r#"{"model":"claude","max_tokens":9,"messages":[{"role":"user","content":[{"type":"text","text":"hello there"}]}]}"#,
        ),
    ];
    for (path, body) in bodies {
        let reply = send(
            "POST",
            &stack.url(path),
            &[
                ("content-type", "application/json"),
                ("x-kalguard-token", t.as_str()),
            ],
            Some(body.as_bytes()),
        );
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    }
    let upstream = stack.upstream_requests();
    assert_eq!(upstream.len(), 3);
    for (recorded, (path, body)) in upstream.iter().zip(bodies) {
        assert_eq!(recorded.body, body.as_bytes(), "{path}");
    }
}

#[test]
fn spotlighting_is_off_unless_configured() {
    let stack = start(options());
    let t = token(&["prompt:send"]);
    let body = r#"{"model":"gpt-4o","messages":[{"role":"tool","tool_call_id":"c","content":"two words"}]}"#;
    let reply = send(
        "POST",
        &stack.url("/v1/chat/completions"),
        &[
            ("content-type", "application/json"),
            ("x-kalguard-token", t.as_str()),
        ],
        Some(body.as_bytes()),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(stack.upstream_requests()[0].body, body.as_bytes());
}

/// The SDKs send a conversation with a tool result in each format and print
/// the answer's text; they must get an answer, not an error.
const SDK_SCRIPT: &str = r#"
import json, os
import anthropic, openai

base, token = os.environ["BASE"], os.environ["TOKEN"]
headers = {"x-kalguard-token": token}
oa = openai.OpenAI(base_url=base + "/v1", api_key="sk-unused", default_headers=headers, max_retries=0, timeout=20)
an = anthropic.Anthropic(base_url=base, api_key="sk-unused", default_headers=headers, max_retries=0, timeout=20)
result = "Meeting moved to 3 pm. Bring the slides."

chat = oa.chat.completions.create(model="gpt-4o", messages=[
    {"role": "user", "content": "calendar?"},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
        "function": {"name": "read_calendar", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": result}])
print(json.dumps({"case": "chat", "text": chat.choices[0].message.content}))

resp = oa.responses.create(model="gpt-4.1", input=[
    {"role": "user", "content": "calendar?"},
    {"type": "function_call", "call_id": "c1", "name": "read_calendar", "arguments": "{}"},
    {"type": "function_call_output", "call_id": "c1", "output": result}])
print(json.dumps({"case": "responses", "text": resp.output_text}))

msg = an.messages.create(model="claude", max_tokens=64, messages=[
    {"role": "user", "content": "calendar?"},
    {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "read_calendar", "input": {}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": result}]}])
print(json.dumps({"case": "anthropic", "text": "".join(b.text for b in msg.content)}))
"#;

#[test]
fn the_official_sdks_work_through_spotlighting() {
    let python = envoy_binary().with_file_name("python");
    let sdks = Command::new(&python)
        .args(["-c", "import anthropic, openai"])
        .status()
        .is_ok_and(|s| s.success());
    if !sdks {
        assert!(
            std::env::var_os("CI").is_none(),
            "the OpenAI and Anthropic SDKs are missing from {} (make tools)",
            python.display()
        );
        eprintln!(
            "SKIP: no OpenAI/Anthropic SDK beside {} (make tools)",
            python.display()
        );
        return;
    }
    for mode in ["datamark", "encode"] {
        let stack = spotlit(mode);
        let out = Command::new(&python)
            .args(["-c", SDK_SCRIPT])
            .env("BASE", format!("http://127.0.0.1:{}", stack.listener_port))
            .env("TOKEN", token(&["prompt:send"]))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{mode}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout.lines().count(), 3, "{stdout}");
        // Each SDK request reached the upstream spotlighted.
        let upstream = stack.upstream_requests();
        assert_eq!(upstream.len(), 3);
        for recorded in &upstream {
            let length = recorded.header("content-length").unwrap();
            assert_eq!(length.parse::<usize>().unwrap(), recorded.body.len());
            let sent = String::from_utf8_lossy(&recorded.body);
            assert!(
                sent.contains(INSTRUCTION_START),
                "{mode} {}: {sent}",
                recorded.path
            );
            assert!(
                !sent.contains("Meeting moved to 3 pm."),
                "{mode} {}: {sent}",
                recorded.path
            );
        }
    }
}

#[test]
fn a_policy_rule_marks_only_the_results_of_its_tools() {
    // Spotlighting is off in the plugin configuration; the policy's rule turns
    // it on for web_fetch alone.
    let policy = json!({"rules": [
        {"id": "web", "match": {"tools": ["web_fetch"]}, "decision": "allow", "spotlight": "datamark"},
        {"id": "rest", "match": {}, "decision": "allow"}], "defaultDecision": "deny"});
    let config = json!({"hold_request_headers": true, "policy": policy});
    let stack = start(Options {
        plugin_config: Some(config.to_string()),
        ..options()
    });
    let body = json!({"model": "gpt-4o", "messages": [
        {"role": "user", "content": "Fetch it and add it up."},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "web_fetch", "arguments": "{}"}},
            {"id": "b", "type": "function", "function": {"name": "calculator", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "a", "content": RESULT},
        {"role": "tool", "tool_call_id": "b", "content": "4 + 2 = 6"}]});
    let t = token(&["prompt:send"]);
    let reply = post(&stack, "/v1/chat/completions", Some(&t), &body);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let sent = forwarded(&stack);
    assert_eq!(sent["messages"][0]["role"], "system");
    let instruction = sent["messages"][0]["content"].as_str().unwrap();
    assert_marked(
        "datamark",
        sent["messages"][3]["content"].as_str().unwrap(),
        instruction,
    );
    assert_eq!(sent["messages"][4]["content"], "4 + 2 = 6");
}

#[test]
fn a_policy_from_the_control_plane_spotlights_and_the_audit_log_says_so() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/e2e")
        .join(format!("spotlight-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("policy.json");
    let policy = json!({"rules": [
        {"id": "mail", "match": {"tools": ["read_email"]}, "decision": "allow", "spotlight": "encode"},
        {"id": "rest", "match": {}, "decision": "allow"}], "defaultDecision": "deny"});
    std::fs::write(&path, policy.to_string()).unwrap();
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
    let body = json!({"model": "gpt-4o", "messages": [
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "read_email", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "a", "content": RESULT}]});
    // Until the snapshot arrives the plugin configuration (spotlighting off) rules.
    let mut request_id = String::new();
    wait_for("the policy's spotlighting to take effect", || {
        let reply = post(&stack, "/v1/chat/completions", Some(&t), &body);
        assert_eq!(reply.status, 200, "{}", reply.body);
        request_id = reply.header("x-kalguard-request-id").unwrap().to_owned();
        let last = stack.upstream_requests().pop().unwrap();
        !String::from_utf8_lossy(&last.body).contains("Meeting moved")
    });
    let last = stack.upstream_requests().pop().unwrap();
    let sent: Value = serde_json::from_slice(&last.body).unwrap();
    let encoded = sent["messages"][2]["content"].as_str().unwrap();
    assert_eq!(STANDARD.decode(encoded).unwrap(), RESULT.as_bytes());

    let audit_path = stack.data_dir.join("audit.jsonl");
    wait_for("the decision in the audit log", || {
        std::fs::read_to_string(&audit_path)
            .unwrap_or_default()
            .contains(&request_id)
    });
    let audit = std::fs::read_to_string(&audit_path).unwrap();
    let line = audit.lines().find(|l| l.contains(&request_id)).unwrap();
    let event = serde_json::from_str::<Value>(line).unwrap()["event"].clone();
    assert_eq!(event["metadata"]["spotlighted"], 1, "{event}");
    assert_eq!(event["metadata"]["spotlightMode"], 2, "{event}");
    assert_eq!(event["metadata"]["spotlightSegments"], 1, "{event}");
    assert!(
        !audit.contains("Meeting"),
        "tool output must never reach the audit log"
    );
}
