//! A stand-in LLM provider and MCP server on loopback.
//!
//! It answers OpenAI (`/v1/chat/completions`, `/v1/responses`,
//! `/v1/completions`, `/v1/embeddings`, `/v1/models`), Anthropic
//! (`/v1/messages`) and MCP JSON-RPC (`/mcp`) shapes, streamed as SSE when the
//! request asks for it, and quotes back the last user message it received — so
//! a user sees exactly what the filter let through, redactions included. Every
//! complete request it receives is recorded, so tests can tell what reached
//! upstream.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use axum::Router;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

/// A request as the upstream saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the stub has received, shared with whoever started it.
pub type Log = Arc<Mutex<Vec<Recorded>>>;

/// Requests remembered; the oldest are forgotten first (the demo runs for hours).
const LOG_LIMIT: usize = 1000;

/// Delay between streamed chunks: long enough that a buffering proxy would show.
const CHUNK_DELAY: Duration = Duration::from_millis(15);

/// Request header that sets another delay between streamed chunks, in
/// milliseconds (`0` streams as fast as it can: the benchmark).
pub const CHUNK_DELAY_HEADER: &str = "x-stub-chunk-delay-ms";

/// Request header that sets the answer's `content-type` (as a provider might).
pub const CONTENT_TYPE_HEADER: &str = "x-stub-content-type";

/// Request header that adds `content-encoding` lines to the answer, one per
/// `|`-separated value, its body unchanged (a hostile server's labels).
pub const CONTENT_ENCODINGS_HEADER: &str = "x-stub-content-encodings";

/// Request header that makes the answer end in HTTP trailers (`x-checksum: 42`)
/// when the request also says `te: trailers`.
pub const TRAILERS_HEADER: &str = "x-stub-trailers";

/// Request header that makes the answer one server-sent event of this many
/// `data: x` lines (an answer built to make an SSE reader work hardest).
pub const SSE_DATA_LINES_HEADER: &str = "x-stub-sse-data-lines";

/// Request header that makes the answer one chat chunk event with this many
/// choices, each with a one-letter delta that closes it, beside a field of 192 bytes
/// per choice (an answer built to make an SSE reader work hardest), then `[DONE]`.
pub const SSE_CLOSING_CHOICES_HEADER: &str = "x-stub-sse-closing-choices";

/// Request header that makes the answer a chat stream of this many events, each
/// opening a new call of the tool `search`, then `[DONE]`.
pub const SSE_TOOL_CALLS_HEADER: &str = "x-stub-sse-tool-calls";

/// Request header that makes a chat answer stream exactly these pieces, one delta
/// event each, paced by [`CHUNK_DELAY_HEADER`]: a JSON array of strings in ASCII (the
/// answer a model would write, tokens and all, whatever the request said).
pub const STREAM_PIECES_HEADER: &str = "x-stub-stream-pieces";

/// Serves the stub on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, log: Log) -> std::io::Result<()> {
    let app = app(log);
    // Streamed events are small writes: without TCP_NODELAY each would wait
    // for the peer's delayed ACK (40 ms on Linux), as no real provider does.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await
}

/// The stub's routes, recording into `log`, for any listener (plain TCP
/// here, TLS in [`crate::tls`]).
pub fn app(log: Log) -> Router {
    Router::new().fallback(handle).with_state(log)
}

/// Binds `addr` and serves the stub on it.
pub async fn bind_and_serve(addr: SocketAddr, log: Log) -> std::io::Result<()> {
    serve(tokio::net::TcpListener::bind(addr).await?, log).await
}

async fn handle(State(log): State<Log>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    // A request whose body never completed (the proxy reset it) is not a
    // request a provider would act on: it is not recorded.
    let Ok(body) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        headers: header_list(&parts.headers),
        body: body.to_vec(),
    };
    if let Ok(mut log) = log.lock() {
        if log.len() >= LOG_LIMIT {
            log.remove(0);
        }
        log.push(recorded);
    }
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let delay = parts
        .headers
        .get(CHUNK_DELAY_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .map_or(CHUNK_DELAY, Duration::from_millis);
    let data_lines = parts
        .headers
        .get(SSE_DATA_LINES_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let closing_choices = parts
        .headers
        .get(SSE_CLOSING_CHOICES_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let tool_calls = parts
        .headers
        .get(SSE_TOOL_CALLS_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let stream_pieces = parts
        .headers
        .get(STREAM_PIECES_HEADER)
        .and_then(|v| serde_json::from_slice::<Vec<String>>(v.as_bytes()).ok());
    let answer = match (&parts.method, parts.uri.path()) {
        _ if stream_pieces.is_some() => {
            let chunk = |delta: Value| {
                data(&json!({"id": "chatcmpl-stub", "object": "chat.completion.chunk",
                    "created": 0, "model": model(&json),
                    "choices": [{"index": 0, "delta": delta, "finish_reason": null}]}))
            };
            let mut events = vec![chunk(json!({"role": "assistant", "content": ""}))];
            events.extend(
                stream_pieces
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| chunk(json!({ "content": p }))),
            );
            events.push("data: [DONE]\n\n".into());
            sse(events, delay)
        }
        _ if tool_calls.is_some() => {
            let mut events: Vec<String> = (0..tool_calls.unwrap_or(0))
                .map(|i| {
                    data(&json!({"object": "chat.completion.chunk", "choices": [{"index": 0,
                        "delta": {"tool_calls": [{"index": i, "id": "c", "type": "function",
                            "function": {"name": "search", "arguments": ""}}]}}]}))
                })
                .collect();
            events.push("data: [DONE]\n\n".into());
            sse(events, Duration::ZERO)
        }
        _ if closing_choices.is_some() => {
            let n = closing_choices.unwrap_or(0);
            let choices: Vec<Value> = (0..n)
                .map(|i| json!({"index": i, "delta": {"content": "a"}, "finish_reason": "stop"}))
                .collect();
            let chunk = json!({"id": "c", "object": "chat.completion.chunk",
                "pad": "p".repeat(192 * n), "choices": choices});
            sse(vec![data(&chunk), "data: [DONE]\n\n".into()], Duration::ZERO)
        }
        _ if data_lines.is_some() => sse(
            vec![format!("{}\n", "data: x\n".repeat(data_lines.unwrap_or(0)))],
            Duration::ZERO,
        ),
        (&Method::POST, "/v1/chat/completions") => chat(&json, delay),
        (&Method::POST, "/v1/responses") => responses(&json, delay),
        (&Method::POST, "/v1/completions") => completion(&json),
        (&Method::POST, "/v1/embeddings") => embeddings(&json),
        (&Method::POST, "/v1/messages") => anthropic(&json, delay),
        (&Method::GET, "/v1/models") => {
            axum::Json(json!({"object":"list","data":[{"id":"stub-model","object":"model","owned_by":"kalguard"}]}))
                .into_response()
        }
        (&Method::POST, path) if path == "/mcp" || path.starts_with("/mcp/") => {
            mcp_as_told(mcp(&json), &json, &parts.headers).await
        }
        _ => (StatusCode::NOT_FOUND, axum::Json(json!({"error":{"message":"stub: no such route"}}))).into_response(),
    };
    let mut answer = answer;
    if let Some(content_type) = parts.headers.get(CONTENT_TYPE_HEADER) {
        answer
            .headers_mut()
            .insert("content-type", content_type.clone());
    }
    let encodings = parts.headers.get(CONTENT_ENCODINGS_HEADER);
    if let Some(encodings) = encodings.and_then(|v| v.to_str().ok()) {
        for encoding in encodings.split('|') {
            if let Ok(value) = axum::http::HeaderValue::from_str(encoding) {
                answer.headers_mut().append("content-encoding", value);
            }
        }
    }
    if !parts.headers.contains_key(TRAILERS_HEADER) {
        return answer;
    }
    let (mut head, body) = answer.into_parts();
    // hyper sends only the trailers the head announces.
    head.headers.insert(
        "trailer",
        axum::http::HeaderValue::from_static("x-checksum"),
    );
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", axum::http::HeaderValue::from_static("42"));
    Response::from_parts(
        head,
        Body::new(WithTrailers {
            body,
            trailers: Some(trailers),
        }),
    )
}

/// A body followed by trailers.
struct WithTrailers {
    body: Body,
    trailers: Option<HeaderMap>,
}

impl http_body::Body for WithTrailers {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(
                self.trailers
                    .take()
                    .map(|t| Ok(http_body::Frame::trailers(t))),
            ),
            other => other,
        }
    }
}

fn header_list(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            (
                name.to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// The text of the last user message, in any of the formats.
fn last_user_text(json: &Value) -> String {
    let from_content = |content: &Value| -> String {
        match content {
            Value::String(s) => s.clone(),
            Value::Array(parts) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            _ => String::new(),
        }
    };
    if let Some(messages) = json.get("messages").and_then(Value::as_array) {
        if let Some(m) = messages
            .iter()
            .rev()
            .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        {
            return from_content(m.get("content").unwrap_or(&Value::Null));
        }
    }
    match json.get("input").or_else(|| json.get("prompt")) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .rev()
            .find_map(|item| match item {
                Value::String(s) => Some(s.clone()),
                other if other.get("role").and_then(Value::as_str) == Some("user") => {
                    Some(from_content(other.get("content").unwrap_or(&Value::Null)))
                }
                _ => None,
            })
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// Marker that makes the stand-in answer with sensitive data of its own, as a
/// model might leak it: what the response scanning must catch.
pub const LEAK_MARKER: &str = "[[leak]]";

/// What the stand-in leaks when asked to.
pub const LEAKED: &str = " Contact jane.roe@example.org with key AKIAIOSFODNN7EXAMPLE now.";

fn answer(json: &Value) -> String {
    let said = last_user_text(json);
    let leak = if said.contains(LEAK_MARKER) {
        LEAKED
    } else {
        ""
    };
    format!("You said: {said}{leak}")
}

/// Marker that makes the stand-in answer with a call of the named tool, as a
/// model asked to use a tool would: `[[tool:delete_repo]]`.
pub const TOOL_MARKER: &str = "[[tool:";

/// The tool the last user message asks the stand-in to call.
fn tool_asked(json: &Value) -> Option<String> {
    let said = last_user_text(json);
    let rest = &said[said.find(TOOL_MARKER)? + TOOL_MARKER.len()..];
    Some(rest[..rest.find("]]")?].to_owned())
}

fn model(json: &Value) -> String {
    json.get("model")
        .and_then(Value::as_str)
        .unwrap_or("stub-model")
        .to_owned()
}

fn wants_stream(json: &Value) -> bool {
    json.get("stream").and_then(Value::as_bool).unwrap_or(false)
}

/// Splits an answer into word-sized pieces, as a model streams it; a leaking
/// answer goes in 5-character slices, so leaked values straddle events.
fn pieces(text: &str) -> Vec<String> {
    if text.contains(LEAK_MARKER) {
        let chars: Vec<char> = text.chars().collect();
        return chars.chunks(5).map(|c| c.iter().collect()).collect();
    }
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        current.push(c);
        if c == ' ' {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// An SSE response from ready-made events, sent with `delay` between them.
fn sse(events: Vec<String>, delay: Duration) -> Response {
    let stream = futures_util::stream::iter(events).then(move |event| async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok::<Bytes, Infallible>(Bytes::from(event))
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn data(value: &Value) -> String {
    format!("data: {value}\n\n")
}

/// Tool arguments that leak, as JSON text a model may write: the address spelled
/// with an escape, the key after a line-break escape.
pub const LEAKED_ARGUMENTS: &str =
    r#"{"to": "jane.roe\u0040example.org", "note": "key:\nAKIAIOSFODNN7EXAMPLE now"}"#;

fn chat(json: &Value, delay: Duration) -> Response {
    let (text, model) = (answer(json), model(json));
    if let Some(tool) = tool_asked(json) {
        let arguments = if last_user_text(json).contains(LEAK_MARKER) {
            LEAKED_ARGUMENTS
        } else {
            r#"{"q":"x"}"#
        };
        return chat_tool_call(&tool, arguments, &model, wants_stream(json), delay);
    }
    if !wants_stream(json) {
        return axum::Json(json!({
            "id": "chatcmpl-stub", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        }))
        .into_response();
    }
    let chunk = |delta: Value, finish: Value| {
        data(
            &json!({"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}),
        )
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    events.extend(
        pieces(&text)
            .into_iter()
            .map(|p| chunk(json!({"content": p}), Value::Null)),
    );
    events.push(chunk(json!({}), json!("stop")));
    events.push("data: [DONE]\n\n".to_owned());
    sse(events, delay)
}

/// A call of `tool` with `arguments`; streamed, the arguments come in 5-character
/// slices, so a value straddles events.
fn chat_tool_call(
    tool: &str,
    arguments: &str,
    model: &str,
    stream: bool,
    delay: Duration,
) -> Response {
    let call = json!({"id": "call_stub", "type": "function", "function": {"name": tool, "arguments": arguments}});
    if !stream {
        return axum::Json(json!({
            "id": "chatcmpl-stub", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [call]}, "finish_reason": "tool_calls"}]
        }))
        .into_response();
    }
    let chunk = |delta: Value, finish: Value| {
        data(
            &json!({"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}),
        )
    };
    let mut events = vec![
        chunk(json!({"role": "assistant", "content": null}), Value::Null),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_stub", "type": "function", "function": {"name": tool, "arguments": ""}}]}),
            Value::Null,
        ),
    ];
    let chars: Vec<char> = arguments.chars().collect();
    events.extend(chars.chunks(5).map(|piece| {
        let piece: String = piece.iter().collect();
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
            Value::Null,
        )
    }));
    events.push(chunk(json!({}), json!("tool_calls")));
    events.push("data: [DONE]\n\n".to_owned());
    sse(events, delay)
}

fn responses(json: &Value, delay: Duration) -> Response {
    let (text, model) = (answer(json), model(json));
    let done = json!({"id": "resp_stub", "object": "response", "status": "completed", "model": model,
        "output": [{"type": "message", "id": "msg_stub", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}],
        "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}});
    if !wants_stream(json) {
        return axum::Json(done).into_response();
    }
    let event = |kind: &str, body: Value| format!("event: {kind}\n{}", data(&body));
    let mut events = vec![event(
        "response.created",
        json!({"type": "response.created", "response": {"id": "resp_stub", "status": "in_progress"}}),
    )];
    events.extend(pieces(&text).into_iter().map(|p| {
        event("response.output_text.delta", json!({"type": "response.output_text.delta", "item_id": "msg_stub", "output_index": 0, "content_index": 0, "delta": p}))
    }));
    events.push(event(
        "response.completed",
        json!({"type": "response.completed", "response": done}),
    ));
    sse(events, delay)
}

fn completion(json: &Value) -> Response {
    axum::Json(
        json!({"id": "cmpl-stub", "object": "text_completion", "created": 0, "model": model(json),
        "choices": [{"index": 0, "text": answer(json), "finish_reason": "stop"}]}),
    )
    .into_response()
}

fn embeddings(json: &Value) -> Response {
    let count = match json.get("input") {
        Some(Value::Array(items)) => items.len(),
        _ => 1,
    };
    let data: Vec<Value> = (0..count)
        .map(|i| json!({"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}))
        .collect();
    axum::Json(json!({"object": "list", "data": data, "model": model(json)})).into_response()
}

fn anthropic(json: &Value, delay: Duration) -> Response {
    let (text, model) = (answer(json), model(json));
    if let Some(tool) = tool_asked(json) {
        return anthropic_tool_use(&tool, &model, wants_stream(json), delay);
    }
    if !wants_stream(json) {
        return axum::Json(json!({
            "id": "msg_stub", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 1, "output_tokens": 1}
        }))
        .into_response();
    }
    let event = |kind: &str, body: Value| format!("event: {kind}\n{}", data(&body));
    let mut events = vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_stub", "type": "message",
            "role": "assistant", "model": model, "content": [], "stop_reason": null, "usage": {"input_tokens": 1, "output_tokens": 0}}}),
        ),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
    ];
    events.extend(pieces(&text).into_iter().map(|p| {
        event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}))
    }));
    events.push(event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push(event("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}})));
    events.push(event("message_stop", json!({"type": "message_stop"})));
    sse(events, delay)
}

fn anthropic_tool_use(tool: &str, model: &str, stream: bool, delay: Duration) -> Response {
    if !stream {
        return axum::Json(json!({
            "id": "msg_stub", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": "Calling a tool."},
                        {"type": "tool_use", "id": "toolu_stub", "name": tool, "input": {"q": "x"}}],
            "stop_reason": "tool_use", "stop_sequence": null, "usage": {"input_tokens": 1, "output_tokens": 1}
        }))
        .into_response();
    }
    let event = |kind: &str, body: Value| format!("event: {kind}\n{}", data(&body));
    sse(
        vec![
            event(
                "message_start",
                json!({"type": "message_start", "message": {"id": "msg_stub", "type": "message",
            "role": "assistant", "model": model, "content": [], "stop_reason": null, "usage": {"input_tokens": 1, "output_tokens": 0}}}),
            ),
            event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ),
            event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Calling a tool."}}),
            ),
            event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ),
            event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_stub", "name": tool, "input": {}}}),
            ),
            event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"q\": \"x\"}"}}),
            ),
            event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 1}),
            ),
            event(
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 1}}),
            ),
            event("message_stop", json!({"type": "message_stop"})),
        ],
        delay,
    )
}

fn mcp(json: &Value) -> Response {
    let id = json.get("id").cloned().unwrap_or(Value::Null);
    let result = match json.get("method").and_then(Value::as_str) {
        Some("initialize") => {
            json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
            "serverInfo": {"name": "kalguard-stub-mcp", "version": "0.1.0"}})
        }
        Some("tools/list") => json!({"tools": [
            {"name": "search", "description": "Search the web", "inputSchema": {"type": "object"}},
            {"name": "delete_repo", "description": "Delete a repository", "inputSchema": {"type": "object"}}]}),
        Some("tools/call") => {
            let name = json
                .pointer("/params/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let args = json
                .pointer("/params/arguments")
                .cloned()
                .unwrap_or(Value::Null);
            json!({"content": [{"type": "text", "text": format!("tool {name} called with {args}")}], "isError": false})
        }
        _ => json!({}),
    };
    axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
}

/// Replaces the stand-in MCP server's `tools/list` tools with the JSON
/// array in this header (the e2e tests of tool pinning change a server's
/// tools between two lists).
pub const MCP_TOOLS_HEADER: &str = "x-stub-mcp-tools";
/// Adds this header's text as the `initialize` result's `instructions`.
pub const MCP_INSTRUCTIONS_HEADER: &str = "x-stub-mcp-instructions";
/// Answers MCP as one SSE `message` event (Streamable HTTP).
pub const MCP_SSE_HEADER: &str = "x-stub-mcp-sse";
/// Answers MCP with exactly this body: the header is a JSON string whose
/// text is sent as it is (a hostile server's answer, with the label
/// [`CONTENT_TYPE_HEADER`] gives it).
pub const MCP_RAW_HEADER: &str = "x-stub-mcp-raw";

/// `answer` (the stand-in MCP server's own) as the test's headers tell it:
/// other tools, instructions, or framed as an SSE event.
async fn mcp_as_told(answer: Response, json: &Value, headers: &axum::http::HeaderMap) -> Response {
    let told = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(raw) = told(MCP_RAW_HEADER).and_then(|v| serde_json::from_str::<String>(v).ok()) {
        return raw.into_response();
    }
    if [MCP_TOOLS_HEADER, MCP_INSTRUCTIONS_HEADER, MCP_SSE_HEADER]
        .iter()
        .all(|name| told(name).is_none())
    {
        return answer;
    }
    let Ok(bytes) = axum::body::to_bytes(answer.into_body(), 1 << 20).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut message: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let method = json.get("method").and_then(Value::as_str);
    if let (Some("tools/list"), Some(tools)) = (method, told(MCP_TOOLS_HEADER)) {
        message["result"]["tools"] = serde_json::from_str(tools).unwrap_or(Value::Null);
    }
    if let (Some("initialize"), Some(text)) = (method, told(MCP_INSTRUCTIONS_HEADER)) {
        message["result"]["instructions"] = Value::String(text.to_owned());
    }
    if told(MCP_SSE_HEADER).is_some() {
        return sse(
            vec![format!("event: message\ndata: {message}\n\n")],
            Duration::ZERO,
        );
    }
    axum::Json(message).into_response()
}
