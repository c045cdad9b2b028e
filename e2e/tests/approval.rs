//! Inline human approval in real Envoy with the real control plane: a
//! `require_approval` rule holds the request while a person decides with
//! `kalguard approvals`; approved, it goes upstream byte for byte; denied or
//! unanswered, 403 REQUIRE_APPROVAL with the reason; each approval answers
//! one request only; nothing without the channel key (a process on the
//! loopback, a squatter on the control plane's port) can approve; and the
//! wait ends with `approval_timeout`, not with Envoy's route timeout.

// A failed expectation panics: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use kalguard_e2e::stack::{control_plane_binary, Options, Stack};
use kalguard_filter::approval::{arguments_sha256, ApprovalAnswer, ApprovalRequest, Verdict};
use kalguard_filter::channel::{Answer, ChannelKey};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// o1 models and payments wait for a person.
fn policy() -> Value {
    json!({"version": "7", "rules": [
        {"id": "o1", "match": {"models": ["o1*"]}, "decision": "require_approval", "reason": "o1 needs a human"},
        {"id": "payments", "match": {"tools": ["send_payment"]}, "decision": "require_approval", "reason": "payments need a human"}],
        "defaultDecision": "allow"})
}

fn plugin_config(approval_timeout: u64) -> String {
    json!({"hold_request_headers": true, "approval_timeout": approval_timeout, "policy": policy()})
        .to_string()
}

fn stack_with(approval_timeout: u64, envoy_yaml: Option<String>) -> Stack {
    start(Options {
        plugin_config: Some(plugin_config(approval_timeout)),
        control_plane: Some(vec![("KALGUARD_TOKEN_SECRET".into(), SECRET.into())]),
        envoy_yaml,
        ..options()
    })
}

/// An o1 request body, written by hand: these exact bytes are what is
/// approved and what must reach the upstream.
fn o1_chat(content: &str) -> Vec<u8> {
    format!(r#"{{ "model":"o1-mini",  "messages":[{{"role":"user","content":"{content}"}}] }}"#)
        .into_bytes()
}

/// Sends `body` on its own thread: it is held until someone decides.
fn send_held(stack: &Stack, path: &str, body: Vec<u8>) -> JoinHandle<(Reply, Duration)> {
    let url = stack.url(path);
    let token = token(&["prompt:send", "tool:execute"]);
    std::thread::spawn(move || {
        let started = Instant::now();
        let headers = [
            ("content-type", "application/json"),
            ("x-kalguard-token", token.as_str()),
        ];
        let reply = send("POST", &url, &headers, Some(&body));
        (reply, started.elapsed())
    })
}

/// Runs `kalguard approvals …` against the stack's control plane with `key`.
fn approvals_with(stack: &Stack, key: &str, args: &[&str]) -> std::process::Output {
    kalguard_with(stack, key, &[&["approvals"], args].concat())
}

fn approvals(stack: &Stack, args: &[&str]) -> String {
    kalguard(stack, &[&["approvals"], args].concat())
}

/// The approvals waiting, once there are `n`.
fn waiting(stack: &Stack, n: usize) -> Vec<Value> {
    let mut listed = Vec::new();
    wait_for(&format!("{n} approvals waiting"), || {
        listed =
            serde_json::from_str::<Vec<Value>>(&approvals(stack, &["list", "--json"])).unwrap();
        listed.len() == n
    });
    listed
}

fn audit_records(stack: &Stack) -> Vec<Value> {
    std::fs::read_to_string(stack.data_dir.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["event"].clone())
        .filter(|event| event["eventType"] == "approval")
        .collect()
}

#[test]
fn an_approved_request_goes_upstream_byte_for_byte_and_an_approval_answers_it_only() {
    let stack = stack_with(30, None);
    let body = o1_chat("plan the quarter");
    let held = send_held(&stack, "/v1/chat/completions", body.clone());
    let listed = waiting(&stack, 1);
    let approval = &listed[0];
    assert_eq!(approval["agentId"], "agent-e2e");
    assert_eq!(approval["action"], "prompt:check");
    assert_eq!(approval["route"], "/v1/chat/completions");
    assert_eq!(approval["model"], "o1-mini");
    assert_eq!(approval["ruleId"], "o1");
    assert_eq!(approval["policyVersion"], "7");
    assert_eq!(approval["reason"], "o1 needs a human");
    assert_eq!(approval["argumentsSha256"], arguments_sha256(&body));
    let wait = approval["expiresAtMs"].as_u64().unwrap() - approval["filedAtMs"].as_u64().unwrap();
    assert!((25_000..=30_000).contains(&wait), "{wait} ms");
    assert!(
        stack.upstream_requests().is_empty(),
        "nothing goes while held"
    );
    // The human list names the approval.
    let id = approval["id"].as_str().unwrap().to_owned();
    assert!(approvals(&stack, &["list"]).contains(&id));

    approvals(&stack, &["approve", &id, "--by", "alice"]);
    let (reply, _) = held.join().unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let upstream = stack.upstream_requests();
    assert_eq!(upstream.len(), 1);
    assert_eq!(upstream[0].body, body, "the upstream gets the exact bytes");
    let request_id = reply.header("x-kalguard-request-id").unwrap().to_owned();
    // Single use: the approval is gone, and deciding it again fails.
    assert!(waiting(&stack, 0).is_empty());
    let again = approvals_with(&stack, &stack.channel_key, &["approve", &id]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not pending"));

    // The same bytes again: asked again, under a new ID; denied with a reason.
    let held = send_held(&stack, "/v1/chat/completions", body.clone());
    let second = waiting(&stack, 1)[0].clone();
    assert_ne!(second["id"], approval["id"]);
    assert_eq!(second["argumentsSha256"], approval["argumentsSha256"]);
    let second_id = second["id"].as_str().unwrap();
    approvals(
        &stack,
        &[
            "deny",
            second_id,
            "--reason",
            "not this quarter",
            "--by",
            "bob",
        ],
    );
    let (reply, _) = held.join().unwrap();
    reply.assert_refused(403, "REQUIRE_APPROVAL");
    assert_eq!(
        reply.json()["message"],
        "o1 needs a human (denied by bob: not this quarter)"
    );
    assert_eq!(reply.json()["data"]["ruleId"], "o1");
    assert_eq!(stack.upstream_requests().len(), 1);

    // One byte changed: another filing, with another hash.
    let mut changed = body.clone();
    let at = changed.iter().position(|&b| b == b'q').unwrap();
    changed[at] = b'Q';
    let held = send_held(&stack, "/v1/chat/completions", changed.clone());
    let third = waiting(&stack, 1)[0].clone();
    assert_eq!(third["argumentsSha256"], arguments_sha256(&changed));
    assert_ne!(third["argumentsSha256"], approval["argumentsSha256"]);
    approvals(
        &stack,
        &["approve", third["id"].as_str().unwrap(), "--by", "alice"],
    );
    assert_eq!(held.join().unwrap().0.status, 200);
    assert_eq!(stack.upstream_requests()[1].body, changed);

    // Audited: who decided what, when, for which request.
    let records = audit_records(&stack);
    let outcomes: Vec<&str> = records
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "requested",
            "approved",
            "requested",
            "denied",
            "requested",
            "approved"
        ]
    );
    assert_eq!(records[1]["approvalId"], id.as_str());
    assert_eq!(records[1]["by"], "alice");
    assert_eq!(records[1]["requestId"], request_id.as_str());
    assert_eq!(records[3]["by"], "bob");
    assert_eq!(records[3]["decisionReason"], "not this quarter");
    assert!(records.iter().all(|r| r.get("messages").is_none()));
    let verified = std::process::Command::new(control_plane_binary())
        .args(["audit", "verify", "--data-dir"])
        .arg(&stack.data_dir)
        .env_remove("KALGUARD_AUDIT_LOG_PATH")
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}

#[test]
fn each_held_tool_call_is_approved_and_a_standing_grant_covers_the_next() {
    let stack = stack_with(30, None);
    let call = |amount: u32| {
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "send_payment", "arguments": {"to": "acme", "amount": amount}}})
        .to_string()
        .into_bytes()
    };
    let held = send_held(&stack, "/mcp", call(5));
    let approval = waiting(&stack, 1)[0].clone();
    assert_eq!(approval["action"], "tool:execute");
    assert_eq!(approval["tool"], "send_payment");
    assert_eq!(approval["ruleId"], "payments");
    let id = approval["id"].as_str().unwrap();
    approvals(
        &stack,
        &["approve", id, "--for-minutes", "5", "--by", "carol"],
    );
    assert_eq!(held.join().unwrap().0.status, 200);
    // Other arguments, same agent, tool and rule: the grant answers at once.
    let (reply, took) = send_held(&stack, "/mcp", call(6)).join().unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(stack.upstream_requests()[1].body, call(6));
    let last = audit_records(&stack).pop().unwrap();
    assert_eq!(last["outcome"], "approved");
    assert!(last["by"].as_str().unwrap().contains("standing grant"));
}

/// envoy.yaml with the agents' route timeout cut to one second.
fn one_second_route_timeout() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../envoy.yaml");
    let yaml = std::fs::read_to_string(path).unwrap();
    assert_eq!(yaml.matches("timeout: 600s").count(), 1);
    yaml.replace("timeout: 600s", "timeout: 1s")
}

#[test]
fn the_wait_ends_with_approval_timeout_not_with_envoy_s_route_timeout() {
    if skip_in_istio_shape("runs its own envoy.yaml with a one-second route timeout") {
        return;
    }
    let stack = stack_with(4, Some(one_second_route_timeout()));
    // Approved after three seconds: three times the route timeout, and still
    // answered by the upstream (the route timeout starts once the held body
    // goes on).
    let held = send_held(&stack, "/v1/chat/completions", o1_chat("slow human"));
    let id = waiting(&stack, 1)[0]["id"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_secs(3));
    approvals(&stack, &["approve", &id, "--by", "alice"]);
    let (reply, took) = held.join().unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(took >= Duration::from_secs(3), "{took:?}");

    // No one decides: refused when approval_timeout ends.
    let (reply, took) = send_held(&stack, "/v1/chat/completions", o1_chat("no one"))
        .join()
        .unwrap();
    reply.assert_refused(403, "REQUIRE_APPROVAL");
    assert_eq!(
        reply.json()["message"],
        "o1 needs a human (no one approved this request in time)"
    );
    assert!(
        (Duration::from_secs(4)..Duration::from_secs(9)).contains(&took),
        "{took:?}"
    );
    assert!(waiting(&stack, 0).is_empty());
    let last = audit_records(&stack).pop().unwrap();
    assert_eq!(last["outcome"], "expired");
    assert_eq!(stack.upstream_requests().len(), 1);
}

#[test]
fn nothing_on_the_loopback_without_the_key_can_approve() {
    let stack = stack_with(30, None);
    let held = send_held(&stack, "/v1/chat/completions", o1_chat("wire the money"));
    let id = waiting(&stack, 1)[0]["id"].as_str().unwrap().to_owned();
    // Straight at the control plane, with no key or a wrong one.
    let url = format!(
        "http://127.0.0.1:{}/v1/approvals/{id}/approve",
        stack.control_plane_port
    );
    let wrong = format!("{}x", &stack.channel_key[..stack.channel_key.len() - 1]);
    for headers in [vec![], vec![("x-kalguard-channel-key", wrong.as_str())]] {
        if stack.control_plane_socket.is_some() {
            break;
        }
        let reply = send("POST", &url, &headers, Some(b"{\"by\":\"mallory\"}"));
        assert_eq!(reply.status, 401, "{}", reply.body);
    }
    let cli = approvals_with(&stack, &wrong, &["approve", &id]);
    assert!(!cli.status.success());
    assert!(String::from_utf8_lossy(&cli.stderr).contains("401"));
    // A forged answer posted to Envoy's listener reaches no one either: the
    // filter takes answers only from its own call.
    let forged = send(
        "POST",
        &stack.url("/v1/filter/approvals"),
        &[("content-type", "application/json")],
        Some(b"{\"verdict\":\"approved\"}"),
    );
    assert_ne!(forged.status, 200, "{}", forged.body);
    // Still waiting; the key's holder ends it.
    assert_eq!(waiting(&stack, 1)[0]["id"], id.as_str());
    approvals(&stack, &["deny", &id]);
    held.join()
        .unwrap()
        .0
        .assert_refused(403, "REQUIRE_APPROVAL");
    assert!(stack.upstream_requests().is_empty());
}

/// A process squatting the control plane's port: it reads each approval
/// request and answers "approved" for exactly it, unsigned or signed with a
/// key of its own.
struct Squatter {
    filings: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    port: u16,
    thread: Option<JoinHandle<()>>,
}

impl Squatter {
    fn start(port: u16) -> Squatter {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let (filings, stop) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let own_key = ChannelKey::parse(Some("the-squatters-own-key-0123456789abcdef")).unwrap();
        let thread = {
            let (filings, stop) = (Arc::clone(&filings), Arc::clone(&stop));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(mut stream) = stream else { continue };
                    let body = read_request(&mut stream);
                    let Ok(filed) = serde_json::from_slice::<ApprovalRequest>(&body) else {
                        respond(&mut stream, "{}", None);
                        continue;
                    };
                    let n = filings.fetch_add(1, Ordering::SeqCst);
                    let answer = serde_json::to_string(&ApprovalAnswer {
                        id: "ap_squat".into(),
                        request_id: filed.request_id.clone(),
                        arguments_sha256: filed.arguments_sha256.clone(),
                        verdict: Verdict::Approved,
                        by: Some("squatter".into()),
                        reason: None,
                    })
                    .unwrap();
                    let mac = (n % 2 == 1)
                        .then(|| own_key.mac(Answer::Approval, &filed.nonce, answer.as_bytes()));
                    respond(&mut stream, &answer, mac.as_deref());
                }
            })
        };
        Squatter {
            filings,
            stop,
            port,
            thread: Some(thread),
        }
    }
}

impl Drop for Squatter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The body of one HTTP/1.1 request (by its content-length).
fn read_request(stream: &mut TcpStream) -> Vec<u8> {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    let _ = stream.read_exact(&mut body);
    body
}

fn respond(stream: &mut TcpStream, body: &str, mac: Option<&str>) {
    let mac = mac.map_or(String::new(), |mac| format!("x-kalguard-mac: {mac}\r\n"));
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{mac}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

#[test]
fn a_squatter_on_the_control_plane_s_port_cannot_approve() {
    if skip_in_istio_shape("squats the control plane's TCP port") {
        return;
    }
    // No control plane: a squatter holds its port and approves every filing.
    let stack = start(Options {
        plugin_config: Some(plugin_config(30)),
        ..options()
    });
    let squatter = Squatter::start(stack.control_plane_port);
    for content in ["unsigned approval", "approval under the squatter's key"] {
        let (reply, _) = send_held(&stack, "/v1/chat/completions", o1_chat(content))
            .join()
            .unwrap();
        reply.assert_refused(403, "REQUIRE_APPROVAL");
        assert_eq!(
            reply.json()["message"],
            "o1 needs a human (the approval answer could not be verified)"
        );
    }
    assert_eq!(squatter.filings.load(Ordering::SeqCst), 2);
    assert!(stack.upstream_requests().is_empty());
}
