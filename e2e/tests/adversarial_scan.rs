//! Denial of service by scanning, through real Envoy: inputs built to make a scanner do
//! the most work per byte (openers without closers, a URL that never ends) are judged as
//! fast as prose of the same size, and the filter keeps answering `/health` while several
//! of them are scanned at once. `docs/linearity.md` has the per-scanner proofs.

// A failed expectation panics: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use kalguard_e2e::stack::{Options, Stack};
use serde_json::json;

/// A request's bound on a quiet machine: Wasm in Envoy scans 256 KB of prose in some tens
/// of milliseconds; the quadratic image-link scan took 1.1-7 s on these inputs. Every
/// bound is stretched by [`slowness`], so a busy machine slows bound and scan alike.
const REQUEST_BOUND: Duration = Duration::from_millis(500);

/// What 256 KB of prose takes through the stack on a quiet 2-core machine, at most.
const QUIET_PROSE: Duration = Duration::from_millis(150);

/// How much slower than quiet this machine runs now: 256 KB of prose through the stack
/// (the better of two), against [`QUIET_PROSE`]; at least 1.
fn slowness(stack: &Stack, token: &str) -> f64 {
    let prose = "The weather in Oslo is mild today and we walk by the fjord. ".repeat(4400);
    let best = (0..2)
        .map(|_| {
            let (status, took) = timed_chat(stack, token, &prose);
            assert_eq!(status, 200);
            took
        })
        .min()
        .unwrap_or_default();
    let factor = (best.as_secs_f64() / QUIET_PROSE.as_secs_f64()).max(1.0);
    println!("256 KB of prose: {best:?}; bounds stretched {factor:.1}x");
    factor
}

/// `/health` must answer within this while four adversarial requests are scanned.
const HEALTH_BOUND: Duration = Duration::from_millis(500);

/// 128 KB of `![a](http`: an image whose URL never ends, repeated.
fn unclosed_urls() -> String {
    "![a](http".repeat(14563)
}

/// 256 KB of `![x` then `](x`: every closer far from the openers.
fn openers_then_closers() -> String {
    let half = 256 * 1024 / 2 / 3;
    format!("{}{}", "![x".repeat(half), "](x".repeat(half))
}

fn advanced() -> Options {
    let config = json!({"firewall": {"tier": "advanced"}});
    Options {
        plugin_config: Some(config.to_string()),
        ..options()
    }
}

/// Posts `text` as one user message; returns the status and how long the answer took.
fn timed_chat(stack: &Stack, token: &str, text: &str) -> (u16, Duration) {
    let body = chat(text);
    let started = Instant::now();
    let reply = post(stack, "/v1/chat/completions", Some(token), &body);
    (reply.status, started.elapsed())
}

/// Posts the chat `body` with the stand-in's `header` set to `count` (an answer built to
/// make a reader work hardest); returns the reply and how long it took.
fn timed_stub_answer(
    stack: &Stack,
    token: &str,
    body: &serde_json::Value,
    header: &str,
    count: usize,
) -> (Reply, Duration) {
    let count = count.to_string();
    let body = body.to_string();
    let headers = [
        ("content-type", "application/json"),
        ("x-kalguard-token", token),
        (header, count.as_str()),
    ];
    let started = Instant::now();
    let reply = send(
        "POST",
        &stack.url("/v1/chat/completions"),
        &headers,
        Some(body.as_bytes()),
    );
    (reply, started.elapsed())
}

#[test]
fn adversarial_image_links_are_judged_as_fast_as_prose() {
    let stack = start(advanced());
    let t = token(&["prompt:send"]);
    // Warms both workers' VMs too.
    let bound = REQUEST_BOUND.mul_f64(slowness(&stack, &t));
    for (name, text) in [
        ("128 KB of `![a](http`", unclosed_urls()),
        ("256 KB of `![x` then `](x`", openers_then_closers()),
    ] {
        let (status, took) = timed_chat(&stack, &t, &text);
        println!("{name}: {took:?} (bound {bound:?})");
        // Neither is an attack on its own: the stand-in upstream answers.
        assert_eq!(status, 200, "{name}");
        assert!(took < bound, "{name} took {took:?} (bound {bound:?})");
    }
}

#[test]
fn health_answers_while_adversarial_scans_run() {
    let stack = start(advanced());
    let t = token(&["prompt:send"]);
    let slow = slowness(&stack, &t);
    let started = Instant::now();
    let scans: Vec<_> = (0..4)
        .map(|i| {
            let url = stack.url("/v1/chat/completions");
            let t = t.clone();
            let text = if i % 2 == 0 {
                openers_then_closers()
            } else {
                unclosed_urls()
            };
            std::thread::spawn(move || {
                let body = chat(&text).to_string();
                let headers = [
                    ("content-type", "application/json"),
                    ("x-kalguard-token", t.as_str()),
                ];
                send("POST", &url, &headers, Some(body.as_bytes())).status
            })
        })
        .collect();
    // Let the four bodies arrive, then ask for /health while they are scanned.
    std::thread::sleep(Duration::from_millis(50));
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let asked = Instant::now();
        let health = send("GET", &stack.url("/health"), &[], None);
        assert_eq!(health.status, 200);
        slowest = slowest.max(asked.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    for scan in scans {
        assert_eq!(scan.join().unwrap(), 200);
    }
    let all = started.elapsed();
    println!("/health at worst {slowest:?}; four adversarial requests in {all:?}");
    assert!(
        slowest < HEALTH_BOUND.mul_f64(slow),
        "/health took {slowest:?} while four adversarial requests were scanned"
    );
    assert!(
        all < (4 * REQUEST_BOUND).mul_f64(slow),
        "four adversarial requests took {all:?} in all"
    );
}

/// An MCP call whose arguments put `values` under one 128 KB key.
fn long_key_call(values: &str, count: usize) -> serde_json::Value {
    let items = vec![values; count].join(",");
    let raw = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"x","arguments":{{"{}":[{items}]}}}}}}"#,
        "k".repeat(128 * 1024)
    );
    serde_json::from_str(&raw).unwrap()
}

#[test]
fn a_long_key_above_many_values_costs_no_pointer_per_value() {
    let stack = start(advanced());
    let t = token(&["tool:execute:x"]);
    let slow = slowness(&stack, &token(&["prompt:send"]));
    // 16,384 one-letter texts below the key: every text's JSON pointer would repeat the
    // key (2 GiB in all). Refused as unreadable, at once.
    let started = Instant::now();
    let reply = post(&stack, "/mcp", Some(&t), &long_key_call(r#""a""#, 16_384));
    let took = started.elapsed();
    println!("long key above 16,384 texts: {} in {took:?}", reply.status);
    reply.assert_refused(400, "BAD_REQUEST");
    assert!(took < REQUEST_BOUND.mul_f64(slow), "refused after {took:?}");
    // Numbers below it carry no text and need no pointer: forwarded, at once.
    let started = Instant::now();
    let reply = post(&stack, "/mcp", Some(&t), &long_key_call("0", 32_768));
    let took = started.elapsed();
    println!(
        "long key above 32,768 numbers: {} in {took:?}",
        reply.status
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        took < REQUEST_BOUND.mul_f64(slow),
        "answered after {took:?}"
    );
}

#[test]
fn an_answer_event_of_many_data_lines_is_read_in_linear_time() {
    let stack = start(advanced());
    let t = token(&["prompt:send"]);
    let slow = slowness(&stack, &t);
    // One event of 262,144 `data:` lines (2 MiB): each line once copied all the lines
    // before it into the event's data.
    let lines = (2usize << 20) / 8;
    let body = json!({"model": "gpt-4o-mini", "stream": true,
        "messages": [{"role": "user", "content": "hello"}]});
    let (reply, took) = timed_stub_answer(
        &stack,
        &t,
        &body,
        kalguard_e2e::stub::SSE_DATA_LINES_HEADER,
        lines,
    );
    println!("2 MiB event of data lines: {} in {took:?}", reply.status);
    assert_eq!(reply.status, 200);
    assert!(
        reply.body.len() >= lines,
        "the event was not forwarded whole"
    );
    assert!(
        took < REQUEST_BOUND.mul_f64(slow),
        "answered after {took:?}"
    );
}

#[test]
fn an_answer_event_of_many_closing_choices_is_read_in_linear_time() {
    let stack = start(advanced());
    let t = token(&["prompt:send"]);
    let slow = slowness(&stack, &t);
    // One chunk of 16,384 choices that each close, beside a 3 MB field (3.9 MB in all):
    // each new stream copied the event's other fields (48 GB in all), and each delta
    // searched the list of closed choices.
    let choices = 16_384;
    let body = json!({"model": "gpt-4o-mini", "stream": true,
        "messages": [{"role": "user", "content": "hello"}]});
    let (reply, took) = timed_stub_answer(
        &stack,
        &t,
        &body,
        kalguard_e2e::stub::SSE_CLOSING_CHOICES_HEADER,
        choices,
    );
    println!(
        "event of {choices} closing choices: {} in {took:?}",
        reply.status
    );
    assert_eq!(reply.status, 200);
    assert!(reply.body.contains("[DONE]"), "the stream did not end");
    // Wasm reads this event at some 2 MB/s (a redactor per choice): the bound leaves
    // room for that, not for a copy per choice.
    assert!(
        took < (5 * REQUEST_BOUND).mul_f64(slow),
        "answered after {took:?}"
    );
}

#[test]
fn an_answer_of_many_tool_calls_is_gated_in_linear_time() {
    let stack = start(advanced());
    // The request declares a tool the token may not call: the answer's calls are gated.
    let t = token(&["prompt:send", "tool:execute:search"]);
    let slow = slowness(&stack, &t);
    let calls = 32_768;
    let tool =
        |name: &str| json!({"type": "function", "function": {"name": name, "parameters": {}}});
    let body = json!({"model": "gpt-4o-mini", "stream": true,
        "tools": [tool("search"), tool("delete_repo")],
        "messages": [{"role": "user", "content": "hello"}]});
    // 32,768 calls (4.6 MB), each its own event and body callback: each call once
    // counted the calls before it.
    let (reply, took) = timed_stub_answer(
        &stack,
        &t,
        &body,
        kalguard_e2e::stub::SSE_TOOL_CALLS_HEADER,
        calls,
    );
    println!("answer of {calls} tool calls: {} in {took:?}", reply.status);
    assert_eq!(reply.status, 200);
    // Past 256 calls the stream is cut with an error event.
    assert!(
        reply.body.contains("KALGUARD_UNAVAILABLE"),
        "{}",
        &reply.body[..reply.body.len().min(500)]
    );
    // Envoy calls the filter once per event (some 40 µs each in Wasm): the bound
    // leaves room for that, not for a count of the calls before each.
    assert!(
        took < (6 * REQUEST_BOUND).mul_f64(slow),
        "answered after {took:?}"
    );
}
