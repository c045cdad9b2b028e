//! Linearity of the readers around the firewall, proved by counting work (`crate::work`):
//! the SSE reader and answer redaction, the tool-call gate, whole-body redaction and
//! request parsing, each on inputs built to make it work hardest per byte, at 8 to
//! 64 KiB; the work may at most about double per doubling. The firewall's own scanners
//! are in `firewall::linearity`; `docs/linearity.md` lists all of them.

use crate::answer::mcp::ToolListStream;
use crate::answer::redact::{redact_body, SseRewriter};
use crate::answer::tool_calls::{ToolCallGate, ToolCallMode};
use crate::answer::Piped;
use crate::firewall::{Firewall, FirewallConfig, Scope, TextForm, Tier};
use crate::request::parse;
use crate::route::Format;
use crate::screen::screen;
use crate::work::{assert_linear, repeat, Input};
use serde_json::{json, Value};

/// Server-sent event streams that are hardest to read, by name.
fn streams() -> Vec<(&'static str, Input)> {
    let tiny = r#"data: {"choices":[{"index":0,"delta":{"content":"a"}}]}"#;
    vec![
        (
            "many tiny events",
            Box::new(move |n| repeat(&format!("{tiny}\n\n"), n)),
        ),
        (
            "many tiny events, CRLF",
            Box::new(move |n| repeat(&format!("{tiny}\r\n\r\n"), n)),
        ),
        ("blank events", Box::new(|n| repeat("\n\n", n))),
        ("lone carriage returns", Box::new(|n| repeat("\r", n))),
        (
            "one event of many data lines",
            Box::new(|n| repeat("data: x\n", n)),
        ),
        (
            "one event that never ends",
            Box::new(|n| format!("data: \"{}", "a".repeat(n)).into_boxed_str()),
        ),
        (
            "deltas full of escapes",
            Box::new(|n| {
                let unit = r#"data: {"choices":[{"index":0,"delta":{"content":"\u00e9\"\\\n"}}]}"#;
                repeat(&format!("{unit}\n\n"), n)
            }),
        ),
        (
            "deltas with e-mail pieces",
            Box::new(|n| {
                let unit = r#"data: {"choices":[{"index":0,"delta":{"content":"a@"}}]}"#;
                repeat(&format!("{unit}\n\n"), n)
            }),
        ),
        (
            "deeply nested JSON events",
            Box::new(|n| {
                let depth = 100;
                let unit = format!("data: {}1{}\n\n", "[".repeat(depth), "]".repeat(depth));
                repeat(&unit, n)
            }),
        ),
        (
            "events in one long envelope, texts to compare it around",
            Box::new(|n| {
                let id = "i".repeat(256);
                let unit = format!(
                    r#"data: {{"id":"{id}","choices":[{{"index":0,"delta":{{"content":"a@b "}},"finish_reason":null}}]}}"#
                );
                repeat(&format!("{unit}\n\n"), n)
            }),
        ),
        (
            "events with ignored values nested as deep as the hand reader reads",
            Box::new(|n| {
                let unit = format!(
                    r#"data: {{"usage":{}1{},"choices":[{{"index":0,"delta":{{"content":"a "}}}}]}}"#,
                    "[".repeat(32),
                    "]".repeat(32)
                );
                repeat(&format!("{unit}\n\n"), n)
            }),
        ),
        (
            "one event of many closing choices",
            Box::new(|n| {
                let choice = r#"{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}"#;
                let choices: Vec<String> = (0..n / choice.len())
                    .map(|i| choice.replace("\"index\":0", &format!("\"index\":{i}")))
                    .collect();
                format!("data: {{\"choices\":[{}]}}\n\n", choices.join(",")).into_boxed_str()
            }),
        ),
        (
            "closing choices beside a large field",
            Box::new(|n| {
                let choice = r#"{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}"#;
                let choices: Vec<String> = (0..n / 2 / choice.len())
                    .map(|i| choice.replace("\"index\":0", &format!("\"index\":{i}")))
                    .collect();
                let pad = "p".repeat(n / 2);
                format!(
                    "data: {{\"pad\":\"{pad}\",\"choices\":[{}]}}\n\n",
                    choices.join(",")
                )
                .into_boxed_str()
            }),
        ),
        (
            "a new tool call in every event",
            Box::new(|n| {
                let unit = r#"data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"search","arguments":""}}]}}]}"#;
                let events: Vec<String> = (0..n / unit.len())
                    .map(|i| unit.replace("\"index\":0,\"f", &format!("\"index\":{i},\"f")))
                    .collect();
                format!("{}\n\n", events.join("\n\n")).into_boxed_str()
            }),
        ),
        (
            "a new Anthropic tool block in every event",
            Box::new(|n| {
                let unit = r#"event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"rm","input":{}}}"#;
                let events: Vec<String> = (0..n / unit.len())
                    .map(|i| unit.replace("\"index\":0", &format!("\"index\":{i}")))
                    .collect();
                format!("{}\n\n", events.join("\n\n")).into_boxed_str()
            }),
        ),
        (
            "tool-call argument deltas",
            Box::new(|n| {
                let unit = r#"data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":"}}]}}]}"#;
                repeat(&format!("{unit}\n\n"), n)
            }),
        ),
    ]
}

/// Whole JSON bodies that are hardest to read, by name.
fn bodies() -> Vec<(&'static str, Input)> {
    vec![
        (
            "one long message",
            Box::new(|n| {
                format!(
                    r#"{{"model":"m","messages":[{{"role":"user","content":"{}"}}]}}"#,
                    "a@b. ".repeat(n / 5)
                )
                .into_boxed_str()
            }),
        ),
        (
            "many tiny messages",
            Box::new(|n| {
                let messages = vec![r#"{"role":"user","content":"a"}"#; n / 30].join(",");
                format!(r#"{{"model":"m","messages":[{messages}]}}"#).into_boxed_str()
            }),
        ),
        (
            "many tiny parts",
            Box::new(|n| {
                let parts = vec![r#"{"type":"text","text":"a"}"#; n / 27].join(",");
                format!(r#"{{"model":"m","messages":[{{"role":"user","content":[{parts}]}}]}}"#)
                    .into_boxed_str()
            }),
        ),
        (
            "a message of escapes",
            Box::new(|n| {
                format!(
                    r#"{{"model":"m","messages":[{{"role":"user","content":"{}"}}]}}"#,
                    "\\u00e9\\n".repeat(n / 8)
                )
                .into_boxed_str()
            }),
        ),
        (
            "nested arrays in a field",
            Box::new(|n| {
                let nested = format!("{}1{}", "[".repeat(100), "]".repeat(100));
                let items = vec![nested.as_str(); n / 202].join(",");
                format!(r#"{{"model":"m","messages":[],"metadata":[{items}]}}"#).into_boxed_str()
            }),
        ),
        (
            "a long key above many numbers",
            Box::new(|n| {
                let numbers = vec!["0"; n / 4].join(",");
                let key = "k".repeat(n / 2);
                format!(r#"{{"params":{{"arguments":{{"{key}":[{numbers}]}}}}}}"#).into_boxed_str()
            }),
        ),
        (
            "a long key above many short strings",
            Box::new(|n| {
                let strings = vec![r#""a""#; n / 8].join(",");
                let key = "k".repeat(n / 2);
                format!(r#"{{"params":{{"arguments":{{"{key}":[{strings}]}}}}}}"#).into_boxed_str()
            }),
        ),
        (
            "long keys nested 100 deep above a string",
            Box::new(|n| {
                let open = format!(r#"{{"{}":"#, "k".repeat(n / 110)).repeat(100);
                let close = "}".repeat(100);
                format!(r#"{{"params":{{"arguments":{open}"a"{close}}}}}"#).into_boxed_str()
            }),
        ),
        (
            "many tool calls",
            Box::new(|n| {
                let call =
                    r#"{"id":"c","type":"function","function":{"name":"x","arguments":"{}"}}"#;
                let calls = vec![call; n / 70].join(",");
                format!(
                    r#"{{"choices":[{{"message":{{"role":"assistant","tool_calls":[{calls}]}}}}]}}"#
                )
                .into_boxed_str()
            }),
        ),
    ]
}

fn firewall() -> Firewall {
    Firewall::new(&FirewallConfig::default()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn sse_answer_redaction_is_linear() {
    let fw = firewall();
    for (shape, input) in streams() {
        for piece in [1, 100] {
            assert_linear("SSE rewriter", shape, &input, |text: &str| {
                let mut session = fw.redaction_session();
                let rewriter =
                    SseRewriter::new(fw.stream_redactors(), move |t: &str, form: TextForm| {
                        session.redact_as(t, form)
                    });
                let mut rewriter = Piped::new(rewriter, 1 << 20);
                for chunk in text.as_bytes().chunks(piece) {
                    rewriter.push(chunk);
                }
                rewriter.finish();
            });
        }
    }
}

#[test]
fn tool_call_gate_is_linear() {
    let refuse = ToolCallGate::new(["search".to_owned()].into(), ToolCallMode::Refuse);
    let remove = ToolCallGate::new(["search".to_owned()].into(), ToolCallMode::Remove);
    for (shape, input) in streams() {
        for gate in [&refuse, &remove] {
            // Three-byte chunks split every separator somewhere.
            assert_linear("tool-call gate, stream", shape, &input, |text: &str| {
                let mut stream = Piped::new(gate.stream(), 1 << 20);
                for chunk in text.as_bytes().chunks(3) {
                    stream.push(chunk);
                }
                stream.finish();
            });
        }
    }
    for (shape, input) in bodies() {
        assert_linear("tool-call gate, body", shape, &input, |text: &str| {
            remove.body(text.as_bytes());
        });
    }
}

#[test]
fn screening_a_parsed_request_is_linear() {
    let fw = firewall();
    for (shape, input) in bodies() {
        for format in [Format::OpenAiChat, Format::Mcp] {
            assert_linear("parse + screen (advanced)", shape, &input, |text: &str| {
                if let Ok(request) = parse(format, text.as_bytes()) {
                    screen(&fw, Tier::Advanced, &request.segments, Scope("agent"));
                }
            });
        }
    }
}

#[test]
fn mcp_tool_list_filter_is_linear() {
    // A batch of tools/list requests answered by one batch event, then an event the
    // reader refuses: the cut answers every request the batch did not.
    // The requests are as many as the batch answers twice over (its `id`s counted).
    assert_linear(
        "tools/list stream",
        "a batch answering half of many requests, then a cut",
        |n| {
            let count = n / 64;
            let replies: Vec<Value> = (0..count)
                .map(
                    |i| json!({"jsonrpc": "2.0", "id": 2 * count - 1 - i, "result": {"tools": []}}),
                )
                .collect();
            let stream = format!(
                "event: message\ndata: {}\n\ndata: {{\"x\": NaN}}\n\n",
                Value::Array(replies)
            );
            stream.into_boxed_str()
        },
        |text: &str| {
            let count = text.matches("\"id\"").count() * 2;
            let ids: Vec<Value> = (0..count).map(|i| json!(i)).collect();
            let mut list = Piped::new(ToolListStream::new(|_: &str| true).answering(&ids), 1 << 20);
            list.push(text.as_bytes());
            list.finish();
        },
    );
}

#[test]
fn body_redaction_and_request_parsing_are_linear() {
    let fw = firewall();
    for (shape, input) in bodies() {
        assert_linear("redact_body", shape, &input, |text: &str| {
            let mut session = fw.redaction_session();
            redact_body(text.as_bytes(), &mut |t: &str, form: TextForm| {
                session.redact_as(t, form)
            });
        });
        for format in [
            Format::OpenAiChat,
            Format::AnthropicMessages,
            Format::OpenAiResponses,
            Format::Mcp,
            Format::Json,
        ] {
            assert_linear("request::parse", shape, &input, |text: &str| {
                let _ = parse(format, text.as_bytes());
            });
        }
    }
}
