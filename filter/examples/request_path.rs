//! The filter's request path, natively: what one guarded OpenAI chat request costs the
//! decision core (token check, body parse, firewall inspection, PII/secret redaction of
//! the request, redaction of the JSON answer or of its SSE stream), without Envoy.
//!
//! `cargo run --release -p kalguard-filter --example request_path [SIZE_BYTES] [SECONDS]`
//!
//! With `KALGUARD_PROFILE_ITERATIONS=N` it runs exactly N requests of each kind (or only
//! of `KALGUARD_PROFILE_KIND`, `json` or `sse`) and prints nothing else: a fixed workload
//! to run under `valgrind --tool=callgrind`.
//!
//! Every request here sends the same body, so the verdict cache is off: the figures are
//! those of new text. `KALGUARD_PROFILE_CACHE=on` turns it on, for the cost of a body
//! read before (all of it found in the cache).

use std::time::{Duration, Instant};

use kalguard_filter::answer::Piped;
use kalguard_filter::config::Config;
use kalguard_filter::guard::{
    AnswerDecision, BodyDecision, Credentials, Guard, Head, HeadDecision, Standing,
};
use kalguard_filter::token::{mint, Claims};

const SECRET: &str = "bench-signing-secret";
const NOW: i64 = 1_750_000_000;

/// The body `kalguard-bench` sends (its `user_text` and `chat_body`: keep them alike):
/// system prompt, then a user turn of about `size` bytes.
fn chat_body(size: usize, stream: bool) -> String {
    let sentences = [
        "Summarise the quarterly revenue figures for the EMEA region and flag any anomalies. ",
        "Compare the churn rate in Germany with the previous two quarters, by plan. ",
        "The finance team noted that invoices from March were booked late; adjust for that. ",
        "List the three largest accounts whose usage dropped by more than 20% and suggest why. ",
    ];
    let mut history = String::new();
    for sentence in sentences.iter().cycle() {
        if history.len() + 200 >= size {
            break;
        }
        history.push_str(sentence);
    }
    serde_json::json!({
        "model": "gpt-4o-mini",
        "stream": stream,
        "messages": [
            {"role": "system", "content": "You are a careful financial analyst."},
            {"role": "user", "content": history},
        ]
    })
    .to_string()
}

/// The stand-in upstream's answer to `body`: its last user message quoted back.
fn answer_text(body: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let said = json["messages"][1]["content"].as_str().unwrap_or_default();
    format!("You said: {said}")
}

fn json_answer(text: &str) -> Vec<u8> {
    serde_json::json!({
        "id": "chatcmpl-stub", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    })
    .to_string()
    .into_bytes()
}

/// The answer as OpenAI streams it: one SSE event per word, delivered in 16 KiB chunks.
fn sse_answer(text: &str) -> Vec<Vec<u8>> {
    let event = |delta: serde_json::Value, finish: serde_json::Value| {
        format!(
            "data: {}\n\n",
            serde_json::json!({"id": "chatcmpl-stub", "object": "chat.completion.chunk",
                "created": 0, "model": "gpt-4o-mini",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let mut stream = event(
        serde_json::json!({"role": "assistant", "content": ""}),
        serde_json::Value::Null,
    );
    for word in text.split_inclusive(' ') {
        stream.push_str(&event(
            serde_json::json!({ "content": word }),
            serde_json::Value::Null,
        ));
    }
    stream.push_str(&event(serde_json::json!({}), serde_json::json!("stop")));
    stream.push_str("data: [DONE]\n\n");
    stream
        .as_bytes()
        .chunks(16 * 1024)
        .map(<[u8]>::to_vec)
        .collect()
}

struct Fixture {
    guard: Guard,
    credentials: Credentials,
    token: String,
    body: String,
    answer: Vec<u8>,
    stream_body: String,
    stream_answer: Vec<Vec<u8>>,
}

fn fixture(size: usize) -> Result<Fixture, String> {
    let cache = if std::env::var("KALGUARD_PROFILE_CACHE").as_deref() == Ok("on") {
        r#"{}"#
    } else {
        r#"{"entries":0}"#
    };
    let config = Config::parse(
        format!(
            r#"{{"hold_request_headers":true,"firewall":{{"tier":"advanced","verdict_cache":{cache}}},"control_plane_cluster":""}}"#
        )
        .as_bytes(),
    )
    .map_err(|e| e.to_string())?;
    let guard = Guard::new(config).map_err(|e| e.to_string())?;
    let token = mint(
        &Claims {
            sub: "bench-agent".into(),
            capabilities: vec!["prompt:send".into()],
            exp: NOW + 3600,
            iat: Some(NOW),
            nbf: None,
            iss: Some("kalguard".into()),
            metadata: None,
        },
        SECRET,
    );
    let body = chat_body(size, false);
    let stream_body = chat_body(size, true);
    let answer = json_answer(&answer_text(&body));
    let stream_answer = sse_answer(&answer_text(&stream_body));
    Ok(Fixture {
        guard,
        credentials: Credentials {
            signing_secrets: vec![SECRET.into()],
            ..Credentials::default()
        },
        token,
        body,
        answer,
        stream_body,
        stream_answer,
    })
}

/// One request through the guard: head, body, answer. Returns the bytes forwarded, so the
/// work cannot be optimised away.
fn one_request(f: &Fixture, stream: bool) -> Result<usize, String> {
    let head = Head {
        method: "POST",
        path: "/v1/chat/completions",
        token: Some(&f.token),
        content_encoding: None,
        authorization: None,
        has_body: true,
    };
    let standing = Standing {
        credentials: &f.credentials,
        tier: None,
        policy: f.guard.config().policy.as_ref(),
        now: NOW,
    };
    let route = f.guard.classify(&head);
    let no_plan = &mut |_: &_| Ok(());
    let pending = match f
        .guard
        .on_head(route, &head, &standing, "req_bench", no_plan)
    {
        HeadDecision::Inspect(pending) => pending,
        other => return Err(format!("expected inspection, got {other:?}")),
    };
    let body = if stream { &f.stream_body } else { &f.body };
    let forwarded = match f
        .guard
        .judge_body(&pending, body.as_bytes(), "req_bench")
        .decision
    {
        BodyDecision::Forward(rewritten) => rewritten.map_or(body.len(), |b| b.len()),
        other => return Err(format!("expected forwarding, got {other:?}")),
    };
    if !f.guard.scans_responses(&pending) {
        return Err("responses are not scanned: not the full configuration".into());
    }
    let answered = if stream {
        let rewriter = f.guard.response_stream(pending.route);
        let mut rewriter = Piped::new(rewriter, f.guard.max_body_bytes());
        let mut out = 0;
        for chunk in &f.stream_answer {
            out += rewriter.push(chunk).len();
        }
        out + rewriter.finish().len()
    } else {
        match f.guard.judge_answer(&f.answer) {
            AnswerDecision::Clean => f.answer.len(),
            AnswerDecision::Redacted(body) => body.len(),
            AnswerDecision::Blocked(refusal) => return Err(format!("answer blocked: {refusal:?}")),
        }
    };
    Ok(forwarded + answered)
}

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4608);
    let seconds: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2.0);
    let f = fixture(size)?;
    if let Some(n) = std::env::var("KALGUARD_PROFILE_ITERATIONS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        let kind = std::env::var("KALGUARD_PROFILE_KIND").unwrap_or_default();
        for _ in 0..n {
            if kind != "sse" {
                std::hint::black_box(one_request(&f, false)?);
            }
            if kind != "json" {
                std::hint::black_box(one_request(&f, true)?);
            }
        }
        return Ok(());
    }
    println!(
        "request body {} B (streamed: {} B), answer {} B, SSE answer {} B in {} chunks",
        f.body.len(),
        f.stream_body.len(),
        f.answer.len(),
        f.stream_answer.iter().map(Vec::len).sum::<usize>(),
        f.stream_answer.len()
    );
    for stream in [false, true] {
        let mut runs = 0u32;
        let started = Instant::now();
        while runs < 10 || started.elapsed() < Duration::from_secs_f64(seconds) {
            std::hint::black_box(one_request(&f, stream)?);
            runs += 1;
        }
        let per = started.elapsed() / runs;
        let bytes = f.body.len() + f.answer.len();
        println!(
            "  {:<13} {:>8.1} µs per request  ({:.1} MB/s of request + answer)",
            if stream { "SSE answer" } else { "JSON answer" },
            per.as_secs_f64() * 1e6,
            bytes as f64 / (1 << 20) as f64 / per.as_secs_f64()
        );
    }
    Ok(())
}
