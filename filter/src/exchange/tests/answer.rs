//! The answer's side: stamp, hold, strip, redact, gate and refuse.

use super::*;

const PII_ANSWER: &[u8] = br#"{"choices":[{"message":{"role":"assistant","content":"Write to jane.doe@example.com today."}}]}"#;

/// A chat request forwarded (its answer scanned when `g` says so).
fn scanned<'g>(g: &'g Guard) -> Trip<'g> {
    let mut trip = Trip::new(g);
    let t = token(&["prompt:send"]);
    trip.head(&head("POST", "/v1/chat/completions", Some(&t)));
    let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    assert_eq!(trip.body(body), Seen::Forwarded(None));
    trip
}

#[test]
fn a_whole_answer_is_held_to_its_end_and_redacted() {
    let g = configured(|c| c.firewall.tier = Tier::Advanced);
    let mut trip = scanned(&g);
    let json = [
        ("content-type", "application/json"),
        ("content-length", "90"),
    ];
    assert_eq!(trip.answer_head(&json, false), Flow::Continue);
    assert_eq!(trip.host.removed(Side::Answer), ["content-length"]);
    let (first, rest) = PII_ANSWER.split_at(40);
    assert_eq!(trip.answer_chunk(first, false), Flow::Pause);
    assert_eq!(trip.answer_chunk(rest, true), Flow::Continue);
    let delivered = String::from_utf8(trip.delivered.clone()).unwrap();
    assert!(
        delivered.contains("[EMAIL_1]") && !delivered.contains("jane.doe"),
        "{delivered}"
    );
    // A redaction is no refusal.
    assert_eq!(trip.host.tallies(), [Tally::Allowed]);
}

#[test]
fn a_blocked_answer_gets_the_refusal_status_when_its_headers_wait() {
    for hold in [true, false] {
        let g = configured(|c| {
            c.hold_request_headers = hold;
            c.firewall.tier = Tier::Advanced;
            c.firewall.response_mode = ResponseMode::Block;
        });
        let mut trip = scanned(&g);
        let json = [(":status", "200"), ("content-type", "application/json")];
        assert_eq!(trip.answer_head(&json, false), Flow::hold_if(hold));
        assert_eq!(trip.answer_chunk(PII_ANSWER, true), Flow::Continue);
        let status = trip.host.header(Side::Answer, ":status");
        assert_eq!(status, Some(if hold { "403" } else { "200" }));
        let delivered: Value = serde_json::from_slice(&trip.delivered).unwrap();
        assert_eq!(delivered["errorCode"], "PROMPT_BLOCKED");
        let events = trip.host.events();
        let answer = events.last().unwrap();
        assert_eq!(answer.error_code.as_deref(), Some("PROMPT_BLOCKED"));
        assert_eq!(answer.metadata[ANSWER], 1);
        assert_eq!(answer.timestamp, 1_800_000_500_000, "the time it happened");
        assert_eq!(
            trip.host.tallies().last(),
            Some(&Tally::AnswerRefused(ErrorCode::PromptBlocked))
        );
        // Headers with no body to follow are never held.
        let mut trip = scanned(&g);
        assert_eq!(trip.answer_head(&json, true), Flow::Continue);
    }
}

#[test]
fn an_answer_that_cannot_be_read_is_refused() {
    let g = configured(|c| c.firewall.tier = Tier::Advanced);
    let mut trip = scanned(&g);
    let gzip = [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
    ];
    assert_eq!(trip.answer_head(&gzip, false), Flow::Pause);
    let reply = &trip.host.replies()[0];
    assert_eq!(reply.status, 503);
    assert_eq!(
        trip.host.tallies().last(),
        Some(&Tally::AnswerRefused(ErrorCode::KalguardUnavailable))
    );
    // Audio, images and other bytes pass unread.
    let mut trip = scanned(&g);
    assert_eq!(
        trip.answer_head(&[("content-type", "audio/mpeg")], false),
        Flow::Continue
    );
    assert!(trip.host.removed(Side::Answer).is_empty());
    assert_eq!(
        trip.answer_chunk(b"ID3 jane.doe@example.com", true),
        Flow::Continue
    );
    assert_eq!(trip.delivered, b"ID3 jane.doe@example.com");
}

#[test]
fn a_streamed_answer_is_redacted_across_chunks() {
    let g = configured(|c| c.firewall.tier = Tier::Advanced);
    let mut trip = scanned(&g);
    let sse = [("content-type", "text/event-stream")];
    assert_eq!(trip.answer_head(&sse, false), Flow::Continue);
    let event = |text: &str| {
        let delta = json!({"choices":[{"index":0,"delta":{"content":text}}]});
        format!("data: {delta}\n\n")
    };
    let stream = [
        event("mail jane.doe@"),
        event("example.com now "),
        "data: [DONE]\n\n".into(),
    ]
    .concat();
    for piece in stream.as_bytes().chunks(7) {
        assert_eq!(trip.answer_chunk(piece, false), Flow::Continue);
    }
    assert_eq!(trip.answer_chunk(b"", true), Flow::Continue);
    let delivered = String::from_utf8(trip.delivered.clone()).unwrap();
    assert!(
        !delivered.contains("jane.doe") && delivered.contains("[DONE]"),
        "{delivered}"
    );
}

#[test]
fn a_json_answer_calling_a_tool_the_agent_may_not_call_is_refused_whole() {
    let g = configured(|c| c.hold_request_headers = true);
    let t = token(&["prompt:send", "tool:execute:search"]);
    let mut trip = Trip::new(&g);
    trip.head(&head("POST", "/v1/chat/completions", Some(&t)));
    let offer = json!({"model":"m","messages":[{"role":"user","content":"hi"}],
        "tools":[{"type":"function","function":{"name":"search"}},{"type":"function","function":{"name":"rm"}}]});
    assert_eq!(
        trip.body(offer.to_string().as_bytes()),
        Seen::Forwarded(None)
    );
    let json = [
        (":status", "200"),
        ("content-type", "application/json"),
        ("content-length", "80"),
    ];
    assert_eq!(trip.answer_head(&json, false), Flow::Pause);
    let call = json!({"choices":[{"message":{"tool_calls":[{"function":{"name":"rm","arguments":"{}"}}]}}]});
    let call = call.to_string();
    let (first, rest) = call.as_bytes().split_at(30);
    assert_eq!(trip.answer_chunk(first, false), Flow::Pause);
    assert_eq!(trip.answer_chunk(rest, true), Flow::Continue);
    assert_eq!(trip.host.header(Side::Answer, ":status"), Some("403"));
    let delivered: Value = serde_json::from_slice(&trip.delivered).unwrap();
    assert_eq!(delivered["errorCode"], "TOOL_DENIED");
    assert_eq!(delivered["data"]["deniedTools"], json!(["rm"]));
    let events = trip.host.events();
    let answer = events.last().unwrap();
    assert_eq!(answer.event_type, EventType::ToolCheck);
    assert_eq!(
        (
            answer.metadata["toolCallsDenied"].clone(),
            answer.metadata["answerRefused"].clone()
        ),
        (json!(1), json!(1))
    );
}

#[test]
fn a_stream_that_ends_in_trailers_with_an_event_held_is_refused() {
    let g = configured(|c| c.firewall.tier = Tier::Advanced);
    let mut trip = scanned(&g);
    assert_eq!(
        trip.answer_head(&[("content-type", "text/event-stream")], false),
        Flow::Continue
    );
    assert_eq!(
        trip.answer_chunk(b"data: {\"choices\":[", false),
        Flow::Continue
    );
    assert_eq!(trip.answer_trailers(), Flow::Pause);
    assert_eq!(trip.host.replies()[0].status, 503);
}

/// A chat request offering `search` and `rm` from an agent that may call
/// only `search`, its answer both gated (calls removed) and scanned.
fn gated_and_scanned(g: &Guard) -> Trip<'_> {
    let t = token(&["prompt:send", "tool:execute:search"]);
    let mut trip = Trip::new(g);
    trip.head(&head("POST", "/v1/chat/completions", Some(&t)));
    let offer = json!({"model":"m","messages":[{"role":"user","content":"hi"}],
        "tools":[{"type":"function","function":{"name":"search"}},{"type":"function","function":{"name":"rm"}}]});
    assert_eq!(
        trip.body(offer.to_string().as_bytes()),
        Seen::Forwarded(None)
    );
    trip
}

#[test]
fn the_tool_gate_and_the_scan_rewrite_one_answer_in_turn() {
    let g = configured(|c| {
        c.firewall.tier = Tier::Advanced;
        c.response_tool_calls = crate::answer::tool_calls::ToolCallMode::Remove;
    });
    // Whole: the denied call goes, then the address in the text.
    let mut trip = gated_and_scanned(&g);
    assert_eq!(
        trip.answer_head(&[("content-type", "application/json")], false),
        Flow::Continue
    );
    let answer = json!({"choices":[{"index":0,"message":{"role":"assistant",
        "content":"Mail jane.doe@example.com now.",
        "tool_calls":[{"id":"c1","type":"function","function":{"name":"rm","arguments":"{}"}}]}}]})
    .to_string();
    let (first, rest) = answer.as_bytes().split_at(50);
    assert_eq!(trip.answer_chunk(first, false), Flow::Pause);
    assert_eq!(trip.answer_chunk(rest, true), Flow::Continue);
    let delivered: Value = serde_json::from_slice(&trip.delivered).unwrap();
    let message = &delivered["choices"][0]["message"];
    assert_eq!(message["content"], "Mail [EMAIL_1] now.", "{delivered}");
    assert!(
        !trip.delivered.windows(4).any(|w| w == b"\"rm\""),
        "{delivered}"
    );

    // Streamed: each chunk passes the gate, then the scan.
    let mut trip = gated_and_scanned(&g);
    let sse = [("content-type", "text/event-stream")];
    assert_eq!(trip.answer_head(&sse, false), Flow::Continue);
    let event = |delta: Value| {
        format!(
            "data: {}\n\n",
            json!({"choices":[{"index":0,"delta":delta}]})
        )
    };
    let stream = [
        event(json!({"content":"mail jane.doe@"})),
        event(json!({"content":"example.com now "})),
        event(json!({"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"rm","arguments":""}}]})),
        event(json!({"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]})),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    for piece in stream.as_bytes().chunks(11) {
        assert_eq!(trip.answer_chunk(piece, false), Flow::Continue);
    }
    assert_eq!(trip.answer_chunk(b"", true), Flow::Continue);
    let delivered = String::from_utf8(trip.delivered.clone()).unwrap();
    assert!(!delivered.contains("jane.doe"), "{delivered}");
    assert!(!delivered.contains("\"rm\""), "{delivered}");
    assert!(delivered.ends_with("data: [DONE]\n\n"), "{delivered}");
    let denied = trip.host.events();
    assert_eq!(denied.last().unwrap().metadata["toolCallsDenied"], 1);
}

/// An MCP `tools/list` from an agent that may call only `search`.
fn listing(g: &Guard) -> Trip<'_> {
    let t = token(&["tool:execute:search"]);
    let mut trip = Trip::new(g);
    trip.head(&head("POST", "/mcp", Some(&t)));
    let list = br#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#;
    assert_eq!(trip.body(list), Seen::Forwarded(None));
    trip
}

#[test]
fn a_tools_list_answer_keeps_only_the_tools_the_agent_may_call() {
    let g = guard();
    let tools =
        json!({"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"search"},{"name":"rm"}]}})
            .to_string();
    // Whole JSON, then as an SSE event: the same tools go.
    let sse = format!("event: message\ndata: {tools}\n\n");
    for (content_type, answer) in [("application/json", &tools), ("text/event-stream", &sse)] {
        let mut trip = listing(&g);
        let head = [("content-type", content_type), ("content-length", "90")];
        assert_eq!(trip.answer_head(&head, false), Flow::Continue);
        assert_eq!(trip.host.removed(Side::Answer), ["content-length"]);
        for piece in answer.as_bytes().chunks(13) {
            trip.answer_chunk(piece, false);
        }
        assert_eq!(trip.answer_chunk(b"", true), Flow::Continue);
        let delivered = String::from_utf8(trip.delivered.clone()).unwrap();
        assert!(
            delivered.contains("search") && !delivered.contains("\"rm\""),
            "{content_type}: {delivered}"
        );
        assert!(trip.host.events().iter().all(|e| e.error_code.is_none()));
    }
}

#[test]
fn a_gated_answer_that_cannot_be_read_is_refused_and_other_bytes_pass() {
    let g = guard();
    let mut trip = listing(&g);
    let gzip = [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
    ];
    assert_eq!(trip.answer_head(&gzip, false), Flow::Pause);
    assert_eq!(trip.host.replies()[0].status, 503);
    let events = trip.host.events();
    let answer = events.last().unwrap();
    assert_eq!(
        (answer.event_type, answer.error_code.as_deref()),
        (EventType::ToolCheck, Some("KALGUARD_UNAVAILABLE"))
    );
    // Bytes that are not text: nothing the gate can name in them, so they pass as they are.
    let mut trip = listing(&g);
    let bytes = [("content-type", "image/png"), ("content-length", "4")];
    assert_eq!(trip.answer_head(&bytes, false), Flow::Continue);
    assert!(trip.host.removed(Side::Answer).is_empty());
    assert_eq!(trip.answer_chunk(b"rm\n", true), Flow::Continue);
    assert_eq!(trip.delivered, b"rm\n");
}

/// A chat request offering `search` and `rm` from an agent that may call only
/// `search`, with headers held.
fn offering_rm(g: &Guard) -> Trip<'_> {
    let t = token(&["prompt:send", "tool:execute:search"]);
    let mut trip = Trip::new(g);
    trip.head(&head("POST", "/v1/chat/completions", Some(&t)));
    let offer = json!({"model":"m","messages":[{"role":"user","content":"hi"}],
        "tools":[{"type":"function","function":{"name":"search"}},{"type":"function","function":{"name":"rm"}}]});
    assert_eq!(
        trip.body(offer.to_string().as_bytes()),
        Seen::Forwarded(None)
    );
    trip
}

#[test]
fn the_gate_reads_every_answer_the_scan_reads() {
    // A client SDK parses an answer labelled as any text (or as nothing) as
    // JSON: its tool calls are judged whatever its text type.
    let g = configured(|c| c.hold_request_headers = true);
    let call = json!({"choices":[{"message":{"tool_calls":[{"function":{"name":"rm","arguments":"{}"}}]}}]})
        .to_string();
    for head in [
        vec![(":status", "200"), ("content-type", "text/plain")],
        vec![
            (":status", "200"),
            ("content-type", "text/html; charset=utf-8"),
        ],
        vec![(":status", "200")],
    ] {
        let mut trip = offering_rm(&g);
        assert_eq!(trip.answer_head(&head, false), Flow::Pause, "{head:?}");
        assert_eq!(trip.answer_chunk(call.as_bytes(), true), Flow::Continue);
        assert_eq!(trip.host.header(Side::Answer, ":status"), Some("403"));
        let delivered: Value = serde_json::from_slice(&trip.delivered).unwrap();
        assert_eq!(delivered["errorCode"], "TOOL_DENIED", "{head:?}");
    }
    // A compressed answer cannot be read, whatever type it claims.
    let mut trip = offering_rm(&g);
    let gzip = [("content-type", "image/png"), ("content-encoding", "gzip")];
    assert_eq!(trip.answer_head(&gzip, false), Flow::Pause);
    assert_eq!(trip.host.replies()[0].status, 503);
}

#[test]
fn a_stream_cut_at_an_event_too_long_to_read_is_reported_once() {
    let g = configured(|c| c.max_body_bytes = 200);
    let mut trip = listing(&g);
    let sse = [("content-type", "text/event-stream")];
    assert_eq!(trip.answer_head(&sse, false), Flow::Continue);
    let long = format!("data: {{\"result\":\"{}", "x".repeat(300));
    for piece in long.as_bytes().chunks(50) {
        assert_eq!(trip.answer_chunk(piece, false), Flow::Continue);
    }
    assert_eq!(trip.answer_chunk(b"\"}\n\n", true), Flow::Continue);
    assert!(!trip.delivered.windows(10).any(|w| w == b"xxxxxxxxxx"));
    let cut: Vec<_> = trip
        .host
        .events()
        .into_iter()
        .filter(|e| e.error_code.as_deref() == Some("KALGUARD_UNAVAILABLE"))
        .cloned()
        .collect();
    assert_eq!(cut.len(), 1, "{cut:?}");
    assert_eq!(cut[0].event_type, EventType::ToolCheck);
    assert_eq!(cut[0].metadata[ANSWER], 1);
}
