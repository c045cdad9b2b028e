//! MCP pinning's answer reading, attacked in real Envoy with the real
//! control plane (`docs/mcp-pinning.md`): an answer whose body a client
//! would decode on any of its `content-encoding` lines is refused, never
//! passed as unreadable plain bytes.

// A failed expectation panics: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use kalguard_e2e::stack::{Options, Stack};
use kalguard_e2e::stub::{CONTENT_ENCODINGS_HEADER, MCP_RAW_HEADER, MCP_TOOLS_HEADER};
use serde_json::{json, Value};

fn pinning_stack() -> Stack {
    start(Options {
        plugin_config: Some(
            json!({"hold_request_headers": true, "mcp_pinning": true, "mcp_paths": ["/mcp"]})
                .to_string(),
        ),
        control_plane: Some(vec![("KALGUARD_TOKEN_SECRET".into(), SECRET.into())]),
        ..options()
    })
}

/// One MCP request to `/mcp`, the stand-in server told by `told` headers.
fn mcp(stack: &Stack, message: &Value, told: &[(&str, &str)]) -> Reply {
    let token = token(&["tool:execute"]);
    let mut headers = vec![
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("x-kalguard-token", token.as_str()),
    ];
    headers.extend_from_slice(told);
    send(
        "POST",
        &stack.url("/mcp"),
        &headers,
        Some(message.to_string().as_bytes()),
    )
}

/// A `tools/call` of `search`, the server answering `raw` with the
/// `content-encoding` lines `encodings` (`|`-separated).
fn call_encoded(stack: &Stack, raw: &str, encodings: &str) -> Reply {
    let raw = json!(raw).to_string();
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "search", "arguments": {"q": "x"}}});
    let told = [
        (MCP_RAW_HEADER, raw.as_str()),
        (CONTENT_ENCODINGS_HEADER, encodings),
    ];
    mcp(stack, &call, &told)
}

#[test]
fn an_answer_encoded_on_a_later_content_encoding_line_is_refused() {
    let stack = pinning_stack();
    // `search` is listed (and pinned) first.
    let tools = json!([{"name": "search", "description": "Search the web"}]).to_string();
    let list = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"});
    let listed = mcp(&stack, &list, &[(MCP_TOOLS_HEADER, tools.as_str())]);
    assert_eq!(listed.json()["result"]["tools"][0]["name"], "search");
    // Bytes that read as neither JSON nor events (as brotli's do): a client
    // that applies both lines decodes them into whatever list they hold.
    let coded = "\u{1b}\u{5}compressed tool list";
    for encodings in ["identity|br", "IDENTITY|gzip", "br, identity"] {
        let reply = call_encoded(&stack, coded, encodings);
        assert_eq!(reply.status, 503, "{encodings}: {}", reply.body);
        assert!(!reply.body.contains("compressed tool list"), "{encodings}");
    }
    // Plain on every line: the answer goes on byte for byte.
    let plain = json!({"jsonrpc": "2.0", "id": 1, "result": {"content": []}}).to_string();
    let reply = call_encoded(&stack, &plain, "identity|Identity");
    assert_eq!((reply.status, reply.body.as_str()), (200, plain.as_str()));
}
